//! Simulation glue for front ends: true abilities and pre-drawn answers read from any reader, simulated
//! tests written as CSV (`docs/FORMATS.md`, `etalon simulate`).

use crate::scoring::format_estimate;
use etalon_engine::simulate::{PredrawnMatrix, SimulatedTest};
use etalon_items::{Bank, DataError, Responses};
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
    Ok(PredrawnMatrix::new(bank.len(), cells))
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
