//! Command-line definitions (clap) and dispatch.

mod bank;
mod common;
mod data;
mod score;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  etalon bank example --out bank.json          write the embedded example bank
  etalon bank validate bank.json               check a bank, print a JSON summary
  etalon bank convert bank.json bank.csv       convert between JSON and CSV
  etalon bank convert --from mirt --model 2pl SAT12_2PL.csv bank.csv
                                               import a mirt coefficient table
  etalon data info responses.csv.gz            read a response file and summarise it
  etalon score --bank bank.csv --responses data.csv --method eap --out scores.csv
                                               estimate every person's ability";

/// Etalon: adaptive competency assessment — item banks, ability estimation, adaptive tests, calibration.
#[derive(Parser)]
#[command(name = "etalon", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Item banks: validate, convert, write the example.
    #[command(subcommand)]
    Bank(bank::BankCommand),
    /// Response data: read and summarise.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Estimate every person's ability (EAP, MAP, ML or WLE) from a response file.
    Score(score::ScoreArgs),
}

/// Print a JSON value on standard output as one line.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// Parse the command line, run the command, and turn errors into a message and exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bank(cmd) => bank::run(cmd),
        Command::Data(cmd) => data::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Score(args) => score::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
