//! `etalon drift`: items whose parameters moved between two calibrations, after linking.

use crate::cli::dif::Adjust;
use crate::cli::link::{Method, read};
use crate::cli::output::{emit, write_csv};
use anyhow::{Context, Result};
use clap::Args;
use etalon::assessment::files::{check_outputs, write_atomically};
use etalon::assessment::plots;
use etalon::calibration::drift;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct DriftArgs {
    /// The earlier calibration, whose scale is kept (.csv or .json, with standard errors).
    #[arg(long)]
    old: PathBuf,
    /// The later calibration of (some of) the same items (with standard errors).
    #[arg(long)]
    new: PathBuf,
    /// How the new calibration is linked to the old one.
    #[arg(long, value_enum, default_value_t = Method::StockingLord)]
    method: Method,
    /// Adjustment of p over every parameter compared.
    #[arg(long, value_enum, default_value_t = Adjust::Holm)]
    adjust: Adjust,
    /// Significance level after adjustment.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Output CSV: item,parameter,old,old_se,new,new_se,difference,z,p,p_adjusted,drifted.
    #[arg(long)]
    out: PathBuf,
    /// The chart (.svg): old against new (linked) with ±1.96 SE bars, drifted items in red.
    #[arg(long)]
    chart: Option<PathBuf>,
}

pub fn run(args: DriftArgs) -> Result<()> {
    let outputs: Vec<&std::path::Path> = std::iter::once(args.out.as_path())
        .chain(args.chart.as_deref())
        .collect();
    check_outputs(&outputs, &[&args.old, &args.new])?;
    let (old, new) = (read(&args.old)?, read(&args.new)?);
    let d = drift::drift(&old, &new, args.method.into(), args.adjust.into(), args.alpha)
        .with_context(|| format!("drift of {} against {}", args.new.display(), args.old.display()))?;
    let plot = plots::drift_plot(&d);
    write_csv(&args.out, |c| {
        c.write_record(&plot.columns)?;
        for r in &plot.rows {
            c.write_record(r)?;
        }
        Ok(())
    })?;
    if let Some(path) = &args.chart {
        write_atomically(path, |w| w.write_all(plot.svg.as_bytes()))?;
    }
    let largest: Vec<_> = {
        let mut p: Vec<_> = d
            .parameters
            .iter()
            .filter(|p| d.drifted.contains(&p.item))
            .collect();
        p.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
        p.iter()
            .map(|p| json!({"item": p.item, "parameter": p.parameter, "old": p.old, "new": p.new, "z": p.z, "p_adjusted": p.p_adjusted}))
            .collect()
    };
    emit(&json!({
        "method": d.linking.method,
        "A": d.linking.a,
        "B": d.linking.b,
        "standard_errors": d.linking.standard_errors,
        "common_items": d.parameters.iter().map(|p| &p.item).collect::<std::collections::BTreeSet<_>>().len(),
        "linked_through": d.linking.common_items.len(),
        "drifted": d.drifted,
        "moves": largest,
        "rounds": d.rounds,
        "stable": d.stable,
        "out": args.out.display().to_string(),
        "chart": args.chart.as_ref().map(|p| p.display().to_string()),
    }))
}
