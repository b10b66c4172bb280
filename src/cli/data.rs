//! `etalon data …`: generate, summarise (and time the read of) response files; classical item analysis
//! and scoring with a key (in `classical`).

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use etalon::assessment::files::{check_outputs, write_atomically};
use etalon::assessment::simulation;
use etalon::items::{self, DataFormat, Responses};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Generate response data from a bank: abilities from N(0, 1), responses drawn from the models.
    Generate {
        /// Item bank; the embedded example bank when omitted.
        #[arg(long)]
        bank: Option<PathBuf>,
        /// Number of persons (1 to 10000000).
        #[arg(long, allow_hyphen_values = true)]
        persons: usize,
        /// Items answered per person, chosen at random (default: all).
        #[arg(long, allow_hyphen_values = true)]
        answers: Option<usize>,
        /// Output layout.
        #[arg(long, value_enum, default_value_t = Format::Wide)]
        format: Format,
        /// Seed.
        #[arg(long, allow_hyphen_values = true, default_value_t = 1)]
        seed: u64,
        /// Output file (gzip when it ends in .gz).
        #[arg(long)]
        out: PathBuf,
        /// Also write the true abilities (`theta` column) here.
        #[arg(long)]
        thetas_out: Option<PathBuf>,
    },
    /// Read a response file; print persons, items, missing cells, codes per item and the time taken.
    Info {
        /// Response file (wide or long CSV, optionally .gz).
        data: PathBuf,
        /// Layout of the file.
        #[arg(long, value_enum, default_value_t = Format::Wide)]
        format: Format,
    },
    /// Classical item analysis: per item n, mean (p-value), sd, item–total and item–rest
    /// correlations, alpha if deleted; Cronbach's alpha. With --key, the data are raw choices: scored
    /// with the key first, and each choice counted.
    Items(crate::cli::classical::ItemsArgs),
    /// Score raw multiple-choice answers with a key: 1 for the key, 0 for any other code (mirt's
    /// key2binary).
    Key(crate::cli::classical::KeyArgs),
}

/// `--format wide|long`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// Header of item ids, one row per person.
    Wide,
    /// `person,item,response`, one row per answer.
    Long,
}

impl From<Format> for DataFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Wide => DataFormat::Wide,
            Format::Long => DataFormat::Long,
        }
    }
}

pub fn run(cmd: DataCommand) -> Result<()> {
    let (data, format) = match cmd {
        DataCommand::Info { data, format } => (data, format),
        DataCommand::Items(args) => return crate::cli::classical::items(args),
        DataCommand::Key(args) => return crate::cli::classical::key(args),
        DataCommand::Generate {
            bank,
            persons,
            answers,
            format,
            seed,
            out,
            thetas_out,
        } => {
            return generate(bank, persons, answers, format, seed, &out, thetas_out.as_deref());
        }
    };
    let start = Instant::now();
    let responses = items::read_responses(&data, format.into())?;
    let elapsed = start.elapsed().as_secs_f64();
    let (persons, n_items) = (responses.n_persons(), responses.item_ids().len());
    let (observed, bytes) = match &responses {
        Responses::Dense(m) => (
            m.cells().iter().filter(|&&c| c != items::MISSING).count(),
            m.heap_bytes(),
        ),
        Responses::Sparse(s) => (s.n_responses(), s.n_responses() * 5),
    };
    let max_codes = (0..n_items).map(|j| responses.codes(j).len()).max().unwrap_or(0);
    crate::cli::output::emit(&json!({
        "persons": persons,
        "items": n_items,
        "responses": observed,
        "missing": persons * n_items - observed,
        "max_categories": max_codes,
        "cell_bytes": bytes,
        "elapsed_s": elapsed,
    }))?;
    Ok(())
}

/// Write `path` safely (temporary file, synced, renamed), gzip-compressed when the name ends in `.gz`.
pub fn write_output(
    path: &std::path::Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> csv::Result<()>,
) -> Result<()> {
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    write_atomically(path, |w| {
        if gz {
            let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
            fill(&mut enc).map_err(std::io::Error::other)?;
            enc.finish()?;
            Ok(())
        } else {
            fill(w).map_err(std::io::Error::other)
        }
    })?;
    Ok(())
}

/// The most person × item cells `data generate` draws (one byte each, in memory).
const MAX_GENERATED_CELLS: usize = 1 << 31;

fn generate(
    bank: Option<PathBuf>,
    persons: usize,
    answers: Option<usize>,
    format: Format,
    seed: u64,
    out: &std::path::Path,
    thetas_out: Option<&std::path::Path>,
) -> Result<()> {
    crate::cli::common::check_count("--persons", persons, 1, 10_000_000)?;
    if let Some(k) = answers {
        crate::cli::common::check_count("--answers", k, 1, usize::MAX)?;
    }
    let mut outputs = vec![out];
    outputs.extend(thetas_out);
    check_outputs(&outputs, &bank.as_deref().into_iter().collect::<Vec<_>>())?;
    let start = Instant::now();
    let bank = crate::cli::common::load_bank(bank.as_deref())?;
    if persons.saturating_mul(bank.len()) > MAX_GENERATED_CELLS {
        anyhow::bail!(
            "--persons {persons} × {} items is more than {MAX_GENERATED_CELLS} responses (generated in memory)",
            bank.len()
        );
    }
    let data = simulation::generate_responses(&bank, persons, answers, seed);
    let layout = match format {
        Format::Wide => simulation::Layout::Wide,
        Format::Long => simulation::Layout::Long,
    };
    write_output(out, |w| simulation::write_generated(&bank, &data, layout, w))?;
    if let Some(path) = thetas_out {
        write_output(path, |w| simulation::write_thetas(&data.thetas, w))?;
    }
    let nj = bank.len();
    crate::cli::output::emit(&json!({
        "persons": persons,
        "items": nj,
        "answers_per_person": answers.unwrap_or(nj).min(nj),
        "out": out.display().to_string(),
        "elapsed_s": start.elapsed().as_secs_f64(),
    }))?;
    Ok(())
}
