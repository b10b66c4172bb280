//! `etalon data info`: read a response file and summarise it (and time the read).

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use etalon::items::{self, DataFormat, Responses};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Read a response file; print persons, items, missing cells, codes per item and the time taken.
    Info {
        /// Response file (wide or long CSV, optionally .gz).
        data: PathBuf,
        /// Layout of the file.
        #[arg(long, value_enum, default_value_t = Format::Wide)]
        format: Format,
    },
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
    let DataCommand::Info { data, format } = cmd;
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
    crate::cli::print_json(&json!({
        "persons": persons,
        "items": n_items,
        "responses": observed,
        "missing": persons * n_items - observed,
        "max_categories": max_codes,
        "cell_bytes": bytes,
        "elapsed_s": elapsed,
    }));
    Ok(())
}
