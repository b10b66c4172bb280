//! `etalon score`: ability estimates for every person of a response file.

use crate::cli::common::{DataArgs, GridArgs, load_bank};
use crate::cli::output::emit;
use anyhow::{Context, Result};
use clap::Args;
use etalon::assessment::files::{check_outputs, read_json, write_atomically};
use etalon::assessment::scoring::{self, PersonScore};
use etalon::engine::estimate::{EstimatorConfig, Method};
use etalon::items::levels::Levels;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ScoreArgs {
    /// Item bank (.csv or .json); the embedded example bank when omitted.
    #[arg(long)]
    bank: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Estimation method (on a multidimensional bank, eap or map: every competence's θ̂ and SE from
    /// the posterior under N(0, R)).
    #[arg(long, default_value = "eap", value_parser = method_parser())]
    method: Method,
    /// Output CSV: person,theta,se.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    grid: GridArgs,
    /// Worker threads (default: all cores; at most 4 per core).
    #[arg(long, allow_hyphen_values = true)]
    threads: Option<usize>,
    /// Level map (LEVELS.json): adds the columns level,label,level_probability.
    #[arg(long)]
    levels: Option<PathBuf>,
}

/// `eap`, `map`, `ml`, `wle`, listed in `--help`.
pub fn method_parser() -> impl clap::builder::TypedValueParser<Value = Method> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["eap", "map", "ml", "wle"])
        .map(|s: String| Method::parse(&s).unwrap_or_default())
}

pub fn run(args: ScoreArgs) -> Result<()> {
    crate::cli::common::set_threads(args.threads)?;
    args.grid.check()?;
    let mut inputs = vec![args.data.path()];
    if let Some(l) = &args.levels {
        inputs.push(l);
    }
    if let Some(b) = &args.bank {
        inputs.push(b);
    }
    check_outputs(&[&args.out], &inputs)?;
    let bank = load_bank(args.bank.as_deref())?;
    let levels: Option<Levels> = args
        .levels
        .as_deref()
        .map(|p| read_json(p, "level map"))
        .transpose()?;
    let start = Instant::now();
    if let Some(structure) = bank.structure() {
        let dimensions = structure.len();
        note!(
            "bank `{}` is multidimensional ({dimensions} dimensions): scoring every competence under N(0, R)",
            bank.id()
        );
        return score_multidimensional(&args, &bank, levels.as_ref(), start);
    }
    let responses = args.data.read()?;
    let read_s = start.elapsed().as_secs_f64();
    let config = EstimatorConfig {
        method: args.method,
        ..args.grid.config(scoring::bank_prior(&bank))?
    };
    let t0 = Instant::now();
    let scores =
        scoring::score(&bank, &responses, config).with_context(|| args.data.path().display().to_string())?;
    let estimation_s = t0.elapsed().as_secs_f64();
    let map = levels.as_ref().map(|l| &l.default);
    write_atomically(&args.out, |w| {
        scoring::write_scores_csv(&scores, map, w).map_err(std::io::Error::other)
    })?;
    let failed: Vec<&PersonScore> = scores.persons.iter().filter(|p| p.estimate.is_err()).collect();
    for p in failed.iter().take(10) {
        if let Err(e) = &p.estimate {
            note!("warning: person {}: {e}", p.person);
        }
    }
    if failed.len() > 10 {
        note!(
            "warning: … and {} more persons could not be scored",
            failed.len() - 10
        );
    }
    if scores.summary.bounded > 0 {
        note!(
            "warning: {} of {} estimates reached the θ range [{}, {}] (--theta-range) and were clipped there",
            scores.summary.bounded,
            scores.summary.persons,
            config.bounds.0,
            config.bounds.1
        );
    }
    let mut value = serde_json::to_value(&scores.summary)?;
    value["prior"] = json!({"mean": config.prior.mean, "sd": config.prior.sd});
    value["read_s"] = json!(read_s);
    value["estimation_s"] = json!(estimation_s);
    value["elapsed_s"] = json!(start.elapsed().as_secs_f64());
    value["out"] = json!(args.out.display().to_string());
    emit(&value)
}

/// `etalon score` on a multidimensional bank: EAP or MAP under N(0, R), one θ̂ and SE per competence
/// and the general level. Options that set a one-θ prior are refused (the prior is the bank's N(0, R)).
fn score_multidimensional(
    args: &ScoreArgs,
    bank: &etalon::items::Bank,
    levels: Option<&Levels>,
    start: Instant,
) -> Result<()> {
    if let Some(option) = args.grid.prior_option() {
        anyhow::bail!(
            "{option} sets a one-θ prior: a multidimensional bank's prior is its N(0, R) (`latent` in the bank)"
        );
    }
    // Settings the bank cannot take are refused before the data are read.
    if let Err(e) = scoring::multidimensional_model(bank, args.method) {
        anyhow::bail!(
            "--method {}: {e} (--method map scores any number of dimensions)",
            args.method.name()
        );
    }
    let responses = args.data.read()?;
    let read_s = start.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let scores = scoring::score_multidimensional(bank, &responses, args.method)
        .with_context(|| args.data.path().display().to_string())?;
    let estimation_s = t0.elapsed().as_secs_f64();
    write_atomically(&args.out, |w| {
        scoring::write_multidimensional_scores_csv(&scores, levels, w).map_err(std::io::Error::other)
    })?;
    let mut value = serde_json::to_value(&scores.summary)?;
    value["dimensions"] = json!(scores.dimensions);
    value["read_s"] = json!(read_s);
    value["estimation_s"] = json!(estimation_s);
    value["elapsed_s"] = json!(start.elapsed().as_secs_f64());
    value["out"] = json!(args.out.display().to_string());
    emit(&value)
}
