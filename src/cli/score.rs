//! `etalon score`: ability estimates for every person of a response file.

use crate::cli::common::{DataArgs, GridArgs, load_bank};
use anyhow::{Context, Result, bail};
use clap::Args;
use etalon::engine::estimate::{Answer, EstimateKind, Estimator, EstimatorConfig, Method};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ScoreArgs {
    /// Item bank (.csv or .json); the embedded example bank when omitted.
    #[arg(long)]
    bank: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Estimation method.
    #[arg(long, default_value = "eap", value_parser = parse_method)]
    method: Method,
    /// Output CSV: person,theta,se.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    grid: GridArgs,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Level map (LEVELS.json): adds the columns level,label,level_probability.
    #[arg(long)]
    levels: Option<PathBuf>,
}

/// Read a level map file (the default map of a `Levels` file).
pub fn read_levels(path: &std::path::Path) -> Result<etalon::engine::levels::Levels> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid level map", path.display()))
}

pub fn parse_method(s: &str) -> Result<Method, String> {
    Method::parse(s).ok_or_else(|| format!("unknown method `{s}` (eap, map, ml, wle)"))
}

/// Format θ and SE as FORMATS.md says: `-inf`/`inf` with an empty SE for infinite ML.
pub fn format_estimate(theta: f64, se: f64) -> (String, String) {
    let t = if theta == f64::INFINITY {
        "inf".to_string()
    } else if theta == f64::NEG_INFINITY {
        "-inf".to_string()
    } else {
        theta.to_string()
    };
    let s = if se.is_finite() {
        se.to_string()
    } else {
        String::new()
    };
    (t, s)
}

pub fn run(args: ScoreArgs) -> Result<()> {
    crate::cli::common::set_threads(args.threads)?;
    let bank = load_bank(args.bank.as_deref())?;
    let levels = args.levels.as_deref().map(read_levels).transpose()?;
    let start = Instant::now();
    let responses = args.data.read()?;
    let read_s = start.elapsed().as_secs_f64();
    let alignment = responses
        .align(&bank)
        .with_context(|| format!("{}", args.data.path().display()))?;
    let config = EstimatorConfig {
        method: args.method,
        ..args.grid.config()?
    };
    let models = bank.items().iter().map(|i| i.parameters.clone()).collect();
    let estimator = Estimator::new(models, config)?;
    let t0 = Instant::now();
    let results = estimator.estimate_many(responses.n_persons(), |p, answers| {
        responses.for_each_answer(p, |j, c| {
            answers.push(Answer::new(
                alignment.columns[j],
                alignment.categories[j][c as usize] as usize,
            ));
        });
    });
    let estimation_s = t0.elapsed().as_secs_f64();

    let file =
        std::fs::File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(
        w,
        "person,theta,se{}",
        if levels.is_some() {
            ",level,label,level_probability"
        } else {
            ""
        }
    )?;
    let (mut infinite, mut bounded, mut failed) = (0usize, 0usize, Vec::new());
    let mut sum = 0.0;
    let mut finite = 0usize;
    for (p, r) in results.iter().enumerate() {
        let label = responses.person_label(p);
        match r {
            Ok(e) => {
                match e.kind {
                    EstimateKind::Infinite => infinite += 1,
                    EstimateKind::Bounded => bounded += 1,
                    EstimateKind::Finite => {}
                }
                if e.theta.is_finite() {
                    sum += e.theta;
                    finite += 1;
                }
                let (t, s) = format_estimate(e.theta, e.se);
                match &levels {
                    Some(l) => {
                        let map = &l.default;
                        let level = map.level(e.theta);
                        let p = map.probabilities(e.theta, e.se)[level];
                        writeln!(w, "{label},{t},{s},{level},{},{p}", map.label(level))?;
                    }
                    None => writeln!(w, "{label},{t},{s}")?,
                }
            }
            Err(err) => {
                failed.push(format!("person {label}: {err}"));
                writeln!(w, "{label},,{}", if levels.is_some() { ",,," } else { "" })?;
            }
        }
    }
    w.flush()?;
    if failed.len() == results.len() && !results.is_empty() {
        bail!("no person could be scored: {}", failed[0]);
    }
    for f in failed.iter().take(10) {
        eprintln!("warning: {f}");
    }
    crate::cli::print_json(&json!({
        "persons": results.len(),
        "items": responses.item_ids().len(),
        "method": format!("{:?}", args.method).to_lowercase(),
        "mean_theta": if finite > 0 { sum / finite as f64 } else { f64::NAN },
        "infinite": infinite,
        "bounded": bounded,
        "unscored": failed.len(),
        "read_s": read_s,
        "estimation_s": estimation_s,
        "elapsed_s": start.elapsed().as_secs_f64(),
        "out": args.out.display().to_string(),
    }));
    Ok(())
}
