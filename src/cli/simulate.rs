//! `etalon simulate`: adaptive tests for simulated examinees (FORMATS.md), optionally calibrating
//! Sympson–Hetter exposure parameters first.

use crate::cli::common::{load_bank, parse_quadrature_rule, parse_range, set_threads};
use crate::cli::output::emit;
use crate::cli::score::method_parser;
use anyhow::{Context, Result, bail};
use clap::Args;
use etalon::assessment::files::{check_outputs, read_json, write_atomically};
use etalon::assessment::simulation;
use etalon::engine::config::{Classification, Exposure, SelectionRule, SessionConfig, StartConfig};
use etalon::engine::estimate::Method;
use etalon::engine::quadrature::Rule;
use etalon::engine::session::CatEngine;
use etalon::engine::simulate::{self, DrawAll};
use etalon::items::{self, DataFormat};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct SimulateArgs {
    /// Item bank; the embedded example bank when omitted.
    #[arg(long)]
    bank: Option<PathBuf>,
    /// True abilities: CSV with a `theta` column, one examinee per row.
    #[arg(long, conflicts_with = "examinees")]
    thetas: Option<PathBuf>,
    /// Number of examinees, abilities drawn from N(0, 1) (1 to 1000000).
    #[arg(long, allow_hyphen_values = true)]
    examinees: Option<usize>,
    /// Pre-drawn responses (wide CSV, one row per examinee in THETAS order).
    #[arg(long)]
    responses: Option<PathBuf>,
    /// Seed of every random choice.
    #[arg(long, allow_hyphen_values = true, default_value_t = 1)]
    seed: u64,
    /// Session configuration (JSON); the options below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Selection rule: mfi, mpwi, kl, urry, random.
    #[arg(long, value_parser = parse_rule)]
    select: Option<SelectionRule>,
    /// Exposure control: none, randomesque:K, sympson-hetter, pix.
    #[arg(long, value_parser = parse_exposure)]
    exposure: Option<Exposure>,
    /// Estimator: eap, map, ml, wle.
    #[arg(long, value_parser = method_parser())]
    estimator: Option<Method>,
    /// EAP quadrature points (2 to 10000).
    #[arg(long, allow_hyphen_values = true)]
    quadrature: Option<usize>,
    /// Quadrature rule: rectangle (mirt), trapezoid (catR), gauss-hermite.
    #[arg(long, value_parser = parse_quadrature_rule)]
    quadrature_rule: Option<Rule>,
    /// θ range `lo,hi`: bounds the estimates and is the EAP grid's range.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_range)]
    theta_range: Option<(f64, f64)>,
    /// Prior mean.
    #[arg(long, allow_hyphen_values = true)]
    prior_mean: Option<f64>,
    /// Prior SD, > 0.
    #[arg(long, allow_hyphen_values = true)]
    prior_sd: Option<f64>,
    /// Stop when SE ≤ this (> 0).
    #[arg(long, allow_hyphen_values = true)]
    stop_se: Option<f64>,
    /// Maximum number of items (at least 1).
    #[arg(long, allow_hyphen_values = true)]
    max_items: Option<usize>,
    /// Minimum number of items.
    #[arg(long, allow_hyphen_values = true)]
    min_items: Option<usize>,
    /// Starting θ (the first item is chosen by the rule at this θ).
    #[arg(long, allow_hyphen_values = true)]
    start_theta: Option<f64>,
    /// Cut scores `c1,c2,…`: classification stopping and accuracy.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_cuts)]
    cuts: Option<Cuts>,
    /// Calibrate Sympson–Hetter parameters for this maximum exposure rate first, write them into the
    /// bank (see --bank-out) and simulate with them.
    #[arg(long, allow_hyphen_values = true)]
    calibrate_exposure: Option<f64>,
    /// Where to write the bank with exposure parameters (required with --calibrate-exposure; never
    /// the input bank).
    #[arg(long, requires = "calibrate_exposure")]
    bank_out: Option<PathBuf>,
    /// Results CSV: examinee,true_theta,theta,se,length,items.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads (default: all cores; at most 4 per core).
    #[arg(long, allow_hyphen_values = true)]
    threads: Option<usize>,
}

/// The most examinees of one run (each simulated test is kept for the summary).
const MAX_EXAMINEES: usize = 1_000_000;

fn parse_rule(s: &str) -> Result<SelectionRule, String> {
    SelectionRule::parse(s).ok_or_else(|| {
        format!(
            "unknown selection rule `{}` (mfi, mpwi, kl, urry, random)",
            crate::cli::output::clip(s, 40)
        )
    })
}

fn parse_exposure(s: &str) -> Result<Exposure, String> {
    match s.to_ascii_lowercase().as_str() {
        "none" => Ok(Exposure::None),
        "pix" => Ok(Exposure::Pix),
        "sympson-hetter" | "sh" => Ok(Exposure::SympsonHetter),
        other => match other.strip_prefix("randomesque:").map(str::parse::<usize>) {
            Some(Ok(k)) if k > 0 => Ok(Exposure::Randomesque { k }),
            Some(Ok(0)) => Err("randomesque:K needs K ≥ 1 (pick at random among the K best items)".into()),
            _ => Err(format!(
                "unknown exposure control `{}` (none, randomesque:K, sympson-hetter, pix)",
                crate::cli::output::clip(s, 40)
            )),
        },
    }
}

/// Strictly increasing cut scores (a newtype so that clap takes one value).
#[derive(Clone)]
pub struct Cuts(pub Vec<f64>);

pub fn parse_cuts(s: &str) -> Result<Cuts, String> {
    let cuts: Vec<f64> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{}` is not a number", crate::cli::output::clip(x, 40)))
        })
        .collect::<Result<_, _>>()?;
    if cuts.windows(2).any(|w| w[0] >= w[1]) || cuts.iter().any(|c| !c.is_finite()) {
        return Err("cuts must be finite and strictly increasing".into());
    }
    Ok(Cuts(cuts))
}

impl SimulateArgs {
    /// Check the option values before any work, naming the option of a bad one.
    fn check(&self) -> Result<()> {
        use crate::cli::common::{GRID_POINTS, check_count, check_finite, check_positive};
        if let Some(n) = self.examinees {
            check_count("--examinees", n, 1, MAX_EXAMINEES)?;
        }
        if let Some(q) = self.quadrature {
            check_count("--quadrature", q, GRID_POINTS.0, GRID_POINTS.1)?;
        }
        for (option, value) in [
            ("--prior-mean", self.prior_mean),
            ("--start-theta", self.start_theta),
        ] {
            if let Some(v) = value {
                check_finite(option, v)?;
            }
        }
        for (option, value) in [("--prior-sd", self.prior_sd), ("--stop-se", self.stop_se)] {
            if let Some(v) = value {
                check_positive(option, v)?;
            }
        }
        if let Some(n) = self.max_items {
            check_count("--max-items", n, 1, usize::MAX)?;
        }
        if let (Some(lo), Some(hi)) = (self.min_items, self.max_items)
            && lo > hi
        {
            bail!("--min-items {lo} exceeds --max-items {hi}");
        }
        if let Some(r) = self.calibrate_exposure
            && !(r > 0.0 && r <= 1.0)
        {
            bail!("--calibrate-exposure must be a maximum exposure rate in (0, 1] (got {r})");
        }
        if self.calibrate_exposure.is_some() && self.bank_out.is_none() {
            bail!("--calibrate-exposure needs --bank-out BANK (the input bank is never overwritten)");
        }
        if self.thetas.is_none() && self.examinees.is_none() {
            bail!("give --thetas FILE or --examinees N");
        }
        Ok(())
    }

    /// The session configuration: the --config file (or the FORMATS defaults), then the options.
    fn session_config(&self) -> Result<SessionConfig> {
        let mut c = match &self.config {
            Some(p) => read_json(p, "session configuration")?,
            None => etalon::assessment::simulation::default_config(),
        };
        if let Some(r) = self.select {
            c.selection.rule = r;
        }
        if let Some(e) = self.exposure {
            c.selection.exposure = e;
        }
        if let Some(m) = self.estimator {
            c.estimator.method = m;
        }
        if let Some(q) = self.quadrature {
            c.estimator.grid.points = q;
        }
        if let Some(r) = self.quadrature_rule {
            c.estimator.grid.rule = r;
        }
        if let Some((lo, hi)) = self.theta_range {
            c.estimator.grid.lower = lo;
            c.estimator.grid.upper = hi;
            c.estimator.bounds = (lo, hi);
        }
        if let Some(m) = self.prior_mean {
            c.estimator.prior.mean = m;
        }
        if let Some(sd) = self.prior_sd {
            c.estimator.prior.sd = sd;
        }
        if let Some(se) = self.stop_se {
            c.stopping.se_target = Some(se);
        }
        if let Some(n) = self.max_items {
            c.stopping.max_items = n;
        }
        if let Some(n) = self.min_items {
            c.stopping.min_items = n;
        }
        if let Some(t) = self.start_theta {
            c.start = StartConfig::Fixed { theta: t };
        }
        if let Some(cuts) = &self.cuts {
            c.stopping.classification = Some(Classification {
                cuts: cuts.0.clone(),
                confidence: 0.95,
            });
        }
        Ok(c)
    }

    fn thetas(&self) -> Result<Vec<f64>> {
        match (&self.thetas, self.examinees) {
            (Some(p), _) => {
                let file = std::fs::File::open(p).with_context(|| format!("{}: cannot read", p.display()))?;
                let file = items::data::LineLimit::new(file, items::data::MAX_LINE_BYTES);
                let thetas = simulation::read_thetas(file, p)?;
                if thetas.len() > MAX_EXAMINEES {
                    bail!(
                        "{}: {} examinees; a run simulates at most {MAX_EXAMINEES}",
                        p.display(),
                        thetas.len()
                    );
                }
                Ok(thetas)
            }
            (None, Some(n)) => Ok(simulation::draw_thetas(n, self.seed)),
            (None, None) => bail!("give --thetas FILE or --examinees N"),
        }
    }
}

pub fn run(args: SimulateArgs) -> Result<()> {
    set_threads(args.threads)?;
    args.check()?;
    let mut inputs: Vec<&std::path::Path> = Vec::new();
    inputs.extend(args.bank.as_deref());
    inputs.extend(args.thetas.as_deref());
    inputs.extend(args.responses.as_deref());
    inputs.extend(args.config.as_deref());
    let mut outputs: Vec<&std::path::Path> = Vec::new();
    outputs.extend(args.out.as_deref());
    outputs.extend(args.bank_out.as_deref());
    check_outputs(&outputs, &inputs)?;
    if let Some(b) = &args.bank_out {
        items::bank_format(b)?;
    }
    let start = Instant::now();
    let mut bank = load_bank(args.bank.as_deref())?;
    let mut config = args.session_config()?;
    if let Err(e) = CatEngine::new(&bank, config.clone()) {
        return Err(match &args.config {
            Some(p) => anyhow::anyhow!("{}: invalid session configuration: {e}", p.display()),
            None => anyhow::anyhow!("invalid session settings: {e}"),
        });
    }
    let thetas = args.thetas()?;
    let mut calibration = serde_json::Value::Null;
    if let Some(target) = args.calibrate_exposure {
        let out = args
            .bank_out
            .clone()
            .context("--calibrate-exposure needs --bank-out BANK (the input bank is never overwritten)")?;
        note!("calibrating Sympson–Hetter parameters for a maximum exposure of {target} …");
        let (controlled, done) =
            simulation::calibrate_exposure(&bank, config.clone(), target, thetas.len(), args.seed)?;
        bank = controlled;
        config.selection.exposure = Exposure::SympsonHetter;
        items::write_bank(&bank, &out)?;
        calibration = serde_json::to_value(&done)?;
        calibration["bank_out"] = json!(out.display().to_string());
    }
    let engine = CatEngine::new(&bank, config.clone())?;
    let predrawn = match &args.responses {
        Some(p) => {
            let r = items::read_responses(p, DataFormat::Wide)?;
            Some(simulation::predrawn(&r, &bank, thetas.len(), p)?)
        }
        None => None,
    };
    note!("simulating {} examinees …", thetas.len());
    let t0 = Instant::now();
    let tests = match &predrawn {
        Some(m) => simulate::simulate(&engine, &thetas, args.seed, m)?,
        None => simulate::simulate(&engine, &thetas, args.seed, &DrawAll)?,
    };
    let simulation_s = t0.elapsed().as_secs_f64();
    let cuts = config.stopping.classification.as_ref().map(|c| c.cuts.clone());
    let summary = simulate::summarise(&engine, &tests, cuts.as_deref());
    if let Some(out) = &args.out {
        write_atomically(out, |w| {
            simulation::write_simulation_csv(&tests, w).map_err(std::io::Error::other)
        })?;
    }
    let mut value = serde_json::to_value(&summary)?;
    value["elapsed_s"] = json!(start.elapsed().as_secs_f64());
    value["simulation_s"] = json!(simulation_s);
    value["us_per_examinee"] = json!(simulation_s * 1e6 / thetas.len() as f64);
    if !calibration.is_null() {
        value["exposure_calibration"] = calibration;
    }
    emit(&value)
}
