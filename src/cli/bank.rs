//! `etalon bank …`: validate, convert and write item banks.

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use etalon::items::{self, BankError, ModelKind};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BankCommand {
    /// Check a bank; print a JSON summary (items per model, competence, status), or list every
    /// problem on standard error and exit 1.
    Validate {
        /// Bank file (.csv or .json, optionally .gz); the embedded example bank when omitted.
        bank: Option<PathBuf>,
    },
    /// Convert a bank between formats (chosen by the extensions), or import a mirt coefficient table.
    Convert {
        /// Input bank.
        input: PathBuf,
        /// Output bank.
        output: PathBuf,
        /// Input format: an Etalon bank (default) or a mirt coefficient table (`item,a,b,g,u` or `item,a,b1,…`).
        #[arg(long, value_enum, default_value_t = Source::Etalon)]
        from: Source,
        /// Model of the imported items (with `--from mirt`).
        #[arg(long, value_parser = parse_model)]
        model: Option<ModelKind>,
    },
    /// Write the embedded example bank.
    Example {
        /// Output file (.json keeps content and tutorials; .csv only parameters).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Source {
    /// An Etalon bank (.csv or .json).
    Etalon,
    /// A mirt coefficient table.
    Mirt,
}

pub fn parse_model(s: &str) -> Result<ModelKind, String> {
    ModelKind::parse(s)
        .ok_or_else(|| format!("unknown model `{s}` (rasch, 1pl, 2pl, 3pl, 4pl, graded, gpcm)"))
}

/// Print a bank error: every problem on its own line.
fn report(e: &BankError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn run(cmd: BankCommand) -> Result<ExitCode> {
    match cmd {
        BankCommand::Validate { bank } => {
            let bank = match bank {
                Some(path) => items::read_bank(&path).map_err(|e| report(&e))?,
                None => items::example::example_bank(),
            };
            crate::cli::output::emit(&serde_json::to_value(bank.summary())?)?;
        }
        BankCommand::Convert {
            input,
            output,
            from,
            model,
        } => {
            items::bank_format(&output).map_err(|e| report(&e))?;
            etalon::assessment::files::check_outputs(&[&output], &[&input])?;
            let bank = match from {
                Source::Etalon => items::read_bank(&input).map_err(|e| report(&e))?,
                Source::Mirt => {
                    let model =
                        model.context("--from mirt needs --model (the model the table was fitted with)")?;
                    items::import_mirt(&input, model).map_err(|e| report(&e))?
                }
            };
            items::write_bank(&bank, &output).map_err(|e| report(&e))?;
            let mut summary = serde_json::to_value(bank.summary())?;
            summary["written"] = serde_json::Value::String(output.display().to_string());
            crate::cli::output::emit(&summary)?;
        }
        BankCommand::Example { out } => {
            items::bank_format(&out).map_err(|e| report(&e))?;
            etalon::assessment::files::check_outputs(&[&out], &[])?;
            let bank = items::example::example_bank();
            items::write_bank(&bank, &out).map_err(|e| report(&e))?;
            let mut summary = serde_json::to_value(bank.summary())?;
            summary["written"] = serde_json::Value::String(out.display().to_string());
            crate::cli::output::emit(&summary)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
