//! `etalon plot`: a bank's curves and Wright map as SVG, and their values as CSV.

use crate::cli::output::emit;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use etalon::assessment::files::{check_outputs, write_atomically};
use etalon::assessment::plots::{self, PlotKind};
use etalon::items;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PlotArgs {
    /// Item bank (.csv or .json).
    bank: PathBuf,
    /// What to draw.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Items to draw, comma-separated (default: every item; the first for an ICC).
    #[arg(long, value_delimiter = ',')]
    items: Option<Vec<String>>,
    /// Persons' scores (`person,theta,…`, as `etalon score` writes) for the Wright map.
    #[arg(long)]
    scores: Option<PathBuf>,
    /// The chart (.svg).
    #[arg(long)]
    out: PathBuf,
    /// The values drawn, as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Item characteristic curves (category curves of one polytomous item).
    Icc,
    /// Item and test information.
    Information,
    /// Test characteristic curve.
    Tcc,
    /// Conditional standard error.
    Se,
    /// Persons beside items (needs --scores).
    Wright,
}

/// The `theta` column of a scores file (values that are not finite numbers, such as ML's `inf`, left out).
fn read_thetas(path: &Path) -> Result<Vec<f64>> {
    let mut rdr = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let header = rdr.headers().with_context(|| path.display().to_string())?.clone();
    let Some(col) = header.iter().position(|h| h == "theta") else {
        bail!(
            "{}: no `theta` column (a scores file from `etalon score`)",
            path.display()
        );
    };
    let mut out = Vec::new();
    for (line, record) in rdr.records().enumerate() {
        let r = record.with_context(|| format!("{}:{}", path.display(), line + 2))?;
        if let Ok(t) = r[col].trim().parse::<f64>()
            && t.is_finite()
        {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn run(args: PlotArgs) -> Result<()> {
    let outputs: Vec<&Path> = std::iter::once(args.out.as_path())
        .chain(args.csv.as_deref())
        .collect();
    let inputs: Vec<&Path> = std::iter::once(args.bank.as_path())
        .chain(args.scores.as_deref())
        .collect();
    check_outputs(&outputs, &inputs)?;
    let bank = items::read_bank(&args.bank).map_err(|e| anyhow::anyhow!("{e}"))?;
    let scores = args.scores.as_deref().map(read_thetas).transpose()?;
    let kind = match args.kind {
        Kind::Icc => PlotKind::Icc,
        Kind::Information => PlotKind::Information,
        Kind::Tcc => PlotKind::Tcc,
        Kind::Se => PlotKind::Se,
        Kind::Wright => PlotKind::Wright,
    };
    let plot = plots::bank_plot(&bank, kind, args.items.as_deref(), scores.as_deref())?;
    write_atomically(&args.out, |w| w.write_all(plot.svg.as_bytes()))?;
    if let Some(path) = &args.csv {
        write_atomically(path, |w| plot.write_csv(w).map_err(std::io::Error::other))?;
    }
    emit(&json!({
        "kind": format!("{:?}", kind).to_lowercase(),
        "series": plot.columns.len().saturating_sub(1),
        "rows": plot.rows.len(),
        "out": args.out.display().to_string(),
        "csv": args.csv.as_ref().map(|p| p.display().to_string()),
    }))
}
