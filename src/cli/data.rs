//! `etalon data info`: read a response file and summarise it (and time the read).

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
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
        /// Number of persons.
        #[arg(long)]
        persons: usize,
        /// Items answered per person, chosen at random (default: all).
        #[arg(long)]
        answers: Option<usize>,
        /// Output layout.
        #[arg(long, value_enum, default_value_t = Format::Wide)]
        format: Format,
        /// Seed.
        #[arg(long, default_value_t = 1)]
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

/// A writer that gzips when the name ends in `.gz`.
pub fn create_output(path: &std::path::Path) -> Result<Box<dyn std::io::Write>> {
    use anyhow::Context;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
    Ok(
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
            Box::new(flate2::write::GzEncoder::new(
                buffered,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(buffered)
        },
    )
}

fn generate(
    bank: Option<PathBuf>,
    persons: usize,
    answers: Option<usize>,
    format: Format,
    seed: u64,
    out: &std::path::Path,
    thetas_out: Option<&std::path::Path>,
) -> Result<()> {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    use std::io::Write;
    let start = Instant::now();
    let bank = crate::cli::common::load_bank(bank.as_deref())?;
    let models: Vec<_> = bank.items().iter().map(|i| i.parameters.clone()).collect();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let thetas: Vec<f64> = (0..persons)
        .map(|_| rand_distr::StandardNormal.sample(&mut rng))
        .collect();
    let cells = etalon::engine::simulate::draw_responses(&models, &thetas, seed, answers);
    let nj = models.len();
    let code = |j: usize, c: u8| bank.items()[j].response_codes()[c as usize];
    let mut w = create_output(out)?;
    let mut line = String::new();
    match format {
        Format::Wide => {
            let ids: Vec<&str> = bank.items().iter().map(|i| i.id.as_str()).collect();
            writeln!(w, "{}", ids.join(","))?;
            for row in cells.chunks(nj.max(1)) {
                line.clear();
                for (j, &c) in row.iter().enumerate() {
                    if j > 0 {
                        line.push(',');
                    }
                    if c != items::MISSING {
                        line.push_str(&code(j, c).to_string());
                    }
                }
                line.push('\n');
                w.write_all(line.as_bytes())?;
            }
        }
        Format::Long => {
            writeln!(w, "person,item,response")?;
            for (p, row) in cells.chunks(nj.max(1)).enumerate() {
                for (j, &c) in row.iter().enumerate() {
                    if c != items::MISSING {
                        writeln!(w, "p{},{},{}", p + 1, bank.items()[j].id, code(j, c))?;
                    }
                }
            }
        }
    }
    w.flush()?;
    drop(w);
    if let Some(path) = thetas_out {
        let mut t = create_output(path)?;
        writeln!(t, "theta")?;
        for x in &thetas {
            writeln!(t, "{x}")?;
        }
        t.flush()?;
    }
    crate::cli::output::emit(&json!({
        "persons": persons,
        "items": nj,
        "answers_per_person": answers.unwrap_or(nj).min(nj),
        "out": out.display().to_string(),
        "elapsed_s": start.elapsed().as_secs_f64(),
    }))?;
    Ok(())
}
