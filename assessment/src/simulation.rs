//! Simulation glue for front ends: true abilities and pre-drawn answers read from any reader, simulated
//! tests written as CSV (`docs/FORMATS.md`, `etalon simulate`).

use crate::scoring::format_estimate;
use etalon_engine::ConfigError;
use etalon_engine::config::{Exposure, SessionConfig};
use etalon_engine::session::{CatEngine, SessionError};
use etalon_engine::simulate::{self, PredrawnMatrix, SimulatedTest};
use etalon_items::{Bank, DataError, MISSING, Responses};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A file of true abilities that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThetasError {
    /// Not CSV, or unreadable.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// No `theta` column.
    #[error("{path}: no `theta` column in the header")]
    NoColumn {
        /// The file.
        path: PathBuf,
    },
    /// A cell that is not a finite number.
    #[error("{path}: line {line}: `{cell}` is not a finite θ")]
    Cell {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The cell (cut to 40 characters).
        cell: String,
    },
    /// No row.
    #[error("{path}: no examinee")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Read a `theta` column from CSV.
pub fn read_thetas(input: impl Read, source: impl AsRef<Path>) -> Result<Vec<f64>, ThetasError> {
    let path = source.as_ref().to_path_buf();
    let csv_err = |e: csv::Error| ThetasError::Csv {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut rdr = csv::Reader::from_reader(input);
    let col = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .position(|h| h.trim() == "theta")
        .ok_or_else(|| ThetasError::NoColumn { path: path.clone() })?;
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(csv_err)?;
        let line = rec.position().map_or(0, |p| p.line());
        let cell = rec.get(col).unwrap_or("");
        match cell.trim().parse::<f64>() {
            Ok(t) if t.is_finite() => out.push(t),
            _ => {
                return Err(ThetasError::Cell {
                    path,
                    line,
                    cell: cell.chars().take(40).collect(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(ThetasError::Empty { path });
    }
    Ok(out)
}

/// Pre-drawn responses (one row per examinee, in order) aligned to the bank's items and categories.
pub fn predrawn(
    responses: &Responses,
    bank: &Bank,
    examinees: usize,
    source: impl AsRef<Path>,
) -> Result<PredrawnMatrix, DataError> {
    if responses.n_persons() < examinees {
        return Err(DataError::Format {
            path: source.as_ref().to_path_buf(),
            line: 0,
            column: None,
            message: format!("{} rows for {examinees} examinees", responses.n_persons()),
        });
    }
    let al = responses.align(bank)?;
    let mut cells = vec![u8::MAX; examinees * bank.len()];
    for p in 0..examinees {
        responses.for_each_answer(p, |j, c| {
            cells[p * bank.len() + al.columns[j]] = al.categories[j][c as usize]
        });
    }
    PredrawnMatrix::try_new(bank.len(), cells).map_err(|e| DataError::Format {
        path: source.as_ref().to_path_buf(),
        line: 0,
        column: None,
        message: e.to_string(),
    })
}

/// Write `examinee,true_theta,theta,se,length,items` (items joined by `;`) through a CSV writer.
pub fn write_simulation_csv(tests: &[SimulatedTest], output: impl Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(output);
    w.write_record(["examinee", "true_theta", "theta", "se", "length", "items"])?;
    for t in tests {
        let (theta, se) = format_estimate(t.result.theta, t.result.se);
        w.write_record([
            t.examinee.to_string(),
            t.true_theta.to_string(),
            theta,
            se,
            t.result.length.to_string(),
            t.result.items.join(";"),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// `n` true abilities drawn from N(0, 1) with a generator seeded from `seed` (the stream `etalon
/// simulate --examinees N` uses).
pub fn draw_thetas(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(simulate::derive_seed(seed, u64::MAX - 1));
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// What a Sympson–Hetter calibration did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureCalibration {
    /// The maximum exposure rate aimed at.
    pub target: f64,
    /// Simulation rounds.
    pub rounds: usize,
    /// The largest exposure rate in the last round.
    pub max_rate_last_round: f64,
    /// Items whose parameter is below 1.
    pub items_controlled: usize,
}

/// An exposure calibration that cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExposureError {
    /// A target outside (0, 1].
    #[error("the exposure target must be in (0, 1] (got {0})")]
    Target(f64),
    /// The configuration does not fit the bank.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The simulation failed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Sympson–Hetter exposure parameters for a maximum exposure rate `target`, by `rounds` rounds of
/// simulation of `examinees` N(0, 1) examinees (at least 1,000): returns the bank with the parameters
/// (the `exposure` of each controlled item) and what was done.
pub fn calibrate_exposure(
    bank: &Bank,
    mut config: SessionConfig,
    target: f64,
    examinees: usize,
    seed: u64,
) -> Result<(Bank, ExposureCalibration), ExposureError> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(ExposureError::Target(target));
    }
    config.selection.exposure = Exposure::SympsonHetter;
    let engine = CatEngine::new(bank, config)?;
    let rounds = 10;
    let (k, max_rate) =
        simulate::calibrate_sympson_hetter(&engine, target, examinees.max(1000), rounds, seed)?;
    let mut out = bank.clone();
    out.update_items(|items| {
        for (item, &kj) in items.iter_mut().zip(&k) {
            item.exposure = (kj < 1.0).then_some(kj);
        }
    })
    .unwrap_or_else(|p| {
        unreachable!(
            "exposure parameters in (0, 1] keep a bank valid: {}",
            etalon_items::Problems(p)
        )
    });
    Ok((
        out,
        ExposureCalibration {
            target,
            rounds,
            max_rate_last_round: max_rate,
            items_controlled: k.iter().filter(|&&x| x < 1.0).count(),
        },
    ))
}

/// Layout of generated response data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Header of item ids, one row per person.
    Wide,
    /// `person,item,response`, one row per answer.
    Long,
}

/// Simulated response data: true abilities and categories (persons × items, [`MISSING`] where not
/// administered).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// True abilities, one per person.
    pub thetas: Vec<f64>,
    /// Categories, row-major.
    pub cells: Vec<u8>,
}

/// Draw `persons` abilities from N(0, 1) and their responses to `bank` (all items, or `answers` chosen
/// at random per person), every random choice from `seed`.
pub fn generate_responses(bank: &Bank, persons: usize, answers: Option<usize>, seed: u64) -> Generated {
    let models: Vec<_> = bank.items().iter().map(|i| i.parameters.clone()).collect();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let thetas: Vec<f64> = (0..persons).map(|_| StandardNormal.sample(&mut rng)).collect();
    let cells = simulate::draw_responses(&models, &thetas, seed, answers);
    Generated { thetas, cells }
}

/// Write generated data in the bank's response codes, wide or long (persons `p1`, `p2`, …).
pub fn write_generated(bank: &Bank, data: &Generated, layout: Layout, output: impl Write) -> csv::Result<()> {
    let nj = bank.len();
    let codes: Vec<Vec<i64>> = bank.items().iter().map(|i| i.response_codes()).collect();
    let mut w = csv::WriterBuilder::new()
        .buffer_capacity(1 << 20)
        .from_writer(output);
    let mut cell = itoa_buffer();
    match layout {
        Layout::Wide => {
            w.write_record(bank.items().iter().map(|i| i.id.as_str()))?;
            for row in data.cells.chunks(nj.max(1)) {
                for (j, &c) in row.iter().enumerate() {
                    if c == MISSING {
                        w.write_field("")?;
                    } else {
                        w.write_field(format_code(&mut cell, codes[j][c as usize]))?;
                    }
                }
                w.write_record(None::<&[u8]>)?;
            }
        }
        Layout::Long => {
            w.write_record(["person", "item", "response"])?;
            for (p, row) in data.cells.chunks(nj.max(1)).enumerate() {
                for (j, &c) in row.iter().enumerate() {
                    if c != MISSING {
                        w.write_record([
                            format!("p{}", p + 1).as_str(),
                            bank.items()[j].id.as_str(),
                            format_code(&mut cell, codes[j][c as usize]),
                        ])?;
                    }
                }
            }
        }
    }
    w.flush()?;
    Ok(())
}

/// Write true abilities as a `theta` column.
pub fn write_thetas(thetas: &[f64], output: impl Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(output);
    w.write_record(["theta"])?;
    for t in thetas {
        w.write_record([t.to_string()])?;
    }
    w.flush()?;
    Ok(())
}

fn itoa_buffer() -> String {
    String::with_capacity(24)
}

fn format_code(buf: &mut String, code: i64) -> &str {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(buf, "{code}");
    buf
}

/// The session configuration `etalon simulate` uses when given none: every default of
/// [`SessionConfig`], with the estimates bounded to the EAP grid's range (the θ range both bounds the
/// estimates and is the grid's range, `docs/FORMATS.md`). Front ends that simulate without a
/// configuration use it to give the command line's numbers.
pub fn default_config() -> SessionConfig {
    let mut c = SessionConfig::default();
    c.estimator.bounds = (c.estimator.grid.lower, c.estimator.grid.upper);
    c
}
