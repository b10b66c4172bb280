//! `etalon calibrate`: fit item parameters by marginal maximum likelihood (FORMATS.md).

use crate::cli::common::{load_bank, set_threads};
use crate::cli::data::Format;
use anyhow::{Context, Result};
use clap::Args;
use etalon::assessment::files::{check_outputs, read_json};
use etalon::calibration::em::{Control, NormalPrior, Progress};
use etalon::calibration::multidim::{MultiQuadrature, calibrate_multidimensional};
use etalon::calibration::{CalibrationSpec, calibrate};
use etalon::items::{self, ModelKind};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct CalibrateArgs {
    /// Response data (wide or long CSV, optionally .gz).
    data: PathBuf,
    /// Model of every item: rasch, 1pl, 2pl, 3pl, 4pl, graded, gpcm.
    #[arg(long, value_parser = crate::cli::bank::parse_model)]
    model: Option<ModelKind>,
    /// JSON specification: `{"model": "2pl", "items": {"q7": "3pl"}, "em": {…}}` (options override it).
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Output bank (.csv or .json).
    #[arg(long)]
    out: PathBuf,
    /// Layout of the data file.
    #[arg(long, value_enum, default_value_t = Format::Wide)]
    format: Format,
    /// Quadrature points on [-6, 6] (3 to 1001; default 61).
    #[arg(long, allow_hyphen_values = true)]
    quadrature: Option<usize>,
    /// Convergence tolerance on the largest parameter change, > 0 (default 1e-4).
    #[arg(long, allow_hyphen_values = true)]
    tol: Option<f64>,
    /// Maximum EM cycles (1 to 1000000; default 500).
    #[arg(long, allow_hyphen_values = true)]
    max_cycles: Option<usize>,
    /// Worker threads (default: all cores; at most 4 per core).
    #[arg(long, allow_hyphen_values = true)]
    threads: Option<usize>,
    /// Multidimensional calibration: `item,dimension` CSV (each item measures one dimension, usually its
    /// competence); the dimensions are correlated, the bank records the correlations (JSON).
    #[arg(long)]
    dimensions: Option<PathBuf>,
    /// Compute standard errors (written as se_* columns).
    #[arg(long)]
    se: bool,
    /// Keep the parameters of the items of this bank fixed and calibrate only the new items, on its scale.
    #[arg(long)]
    anchor: Option<PathBuf>,
    /// Stop after this many seconds of fitting and write the parameters reached (not converged, with a
    /// warning).
    #[arg(long, allow_hyphen_values = true)]
    time_limit: Option<f64>,
    /// Prior on slopes: log a ~ N(MEAN, SD²), as `MEAN,SD`.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_prior)]
    prior_slope: Option<NormalPrior>,
    /// Prior on intercepts d ~ N(MEAN, SD²), as `MEAN,SD`.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_prior)]
    prior_intercept: Option<NormalPrior>,
    /// Prior on logit g (3PL/4PL), as `MEAN,SD` (default -1.5,1), or `none`.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_optional_prior)]
    prior_guessing: Option<GuessingPrior>,
}

/// Calibration quadrature: 3 to 1001 points.
const QUADRATURE: (usize, usize) = (3, 1001);
/// The most EM cycles.
const MAX_CYCLES: usize = 1_000_000;

/// Check the settings of a spec file before any work (the options were checked by their parsers).
fn check_spec(spec: &CalibrationSpec, path: &std::path::Path) -> Result<()> {
    let at = |field: &str, why: String| anyhow::anyhow!("{}: field `{field}`: {why}", path.display());
    let em = &spec.em;
    if !(QUADRATURE.0..=QUADRATURE.1).contains(&em.quadrature) {
        return Err(at(
            "em.quadrature",
            format!(
                "must be in {}..={} (got {})",
                QUADRATURE.0, QUADRATURE.1, em.quadrature
            ),
        ));
    }
    if !(em.tol.is_finite() && em.tol > 0.0) {
        return Err(at(
            "em.tol",
            format!("must be a finite number > 0 (got {})", em.tol),
        ));
    }
    if !(1..=MAX_CYCLES).contains(&em.max_cycles) {
        return Err(at(
            "em.max_cycles",
            format!("must be in 1..={MAX_CYCLES} (got {})", em.max_cycles),
        ));
    }
    // The priors (and anything else the library refuses), named as the library names them.
    em.check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

fn parse_prior(s: &str) -> Result<NormalPrior, String> {
    let (m, sd) = s.split_once(',').ok_or_else(|| format!("`{s}` is not MEAN,SD"))?;
    let mean: f64 = m.trim().parse().map_err(|_| format!("`{m}` is not a number"))?;
    let sd: f64 = sd.trim().parse().map_err(|_| format!("`{sd}` is not a number"))?;
    if !(mean.is_finite() && sd.is_finite() && sd > 0.0) {
        return Err(format!("`{s}`: need a finite mean and SD > 0"));
    }
    Ok(NormalPrior { mean, sd })
}

/// `--prior-guessing`: a prior, or `none` (a newtype: clap reads `Option<Option<T>>` as a flag with an
/// optional value, which is not this option).
#[derive(Clone, Copy)]
pub struct GuessingPrior(Option<NormalPrior>);

fn parse_optional_prior(s: &str) -> Result<GuessingPrior, String> {
    if s.eq_ignore_ascii_case("none") {
        Ok(GuessingPrior(None))
    } else {
        parse_prior(s).map(|p| GuessingPrior(Some(p)))
    }
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    use crate::cli::common::{check_count, check_positive};
    set_threads(args.threads)?;
    if let Some(q) = args.quadrature {
        check_count("--quadrature", q, QUADRATURE.0, QUADRATURE.1)?;
    }
    if let Some(t) = args.tol {
        check_positive("--tol", t)?;
    }
    if let Some(c) = args.max_cycles {
        check_count("--max-cycles", c, 1, MAX_CYCLES)?;
    }
    if let Some(t) = args.time_limit {
        check_positive("--time-limit", t)?;
    }
    let start = Instant::now();
    items::bank_format(&args.out).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut inputs = vec![args.data.as_path()];
    inputs.extend(args.spec.as_deref());
    inputs.extend(args.anchor.as_deref());
    inputs.extend(args.dimensions.as_deref());
    check_outputs(&[&args.out], &inputs)?;
    let mut spec = match &args.spec {
        Some(p) => {
            let spec: CalibrationSpec = read_json(p, "calibration spec")?;
            check_spec(&spec, p)?;
            spec
        }
        None => CalibrationSpec::new(args.model.context("give --model MODEL (or --spec SPEC.json)")?),
    };
    if let Some(m) = args.model {
        spec.model = m;
    }
    if let Some(q) = args.quadrature {
        spec.em.quadrature = q;
    }
    if let Some(t) = args.tol {
        spec.em.tol = t;
    }
    if let Some(c) = args.max_cycles {
        spec.em.max_cycles = c;
    }
    spec.standard_errors |= args.se;
    if args.prior_slope.is_some() {
        spec.em.priors.slope = args.prior_slope;
    }
    if args.prior_intercept.is_some() {
        spec.em.priors.intercept = args.prior_intercept;
    }
    if let Some(GuessingPrior(g)) = args.prior_guessing {
        spec.em.priors.guessing = g;
    }
    let dimensions = match &args.dimensions {
        Some(p) => {
            if args.anchor.is_some() {
                anyhow::bail!(
                    "--dimensions cannot be combined with --anchor (multidimensional linking is not built)"
                );
            }
            if args.quadrature.is_some() {
                anyhow::bail!(
                    "--quadrature sets the unidimensional grid; a multidimensional calibration uses 21 × 21 Gauss–Hermite nodes per dimension"
                );
            }
            Some(etalon::assessment::files::read_dimensions(p)?)
        }
        None => None,
    };
    let anchor = match &args.anchor {
        Some(p) => Some(load_bank(Some(p))?),
        None => None,
    };
    let responses = items::read_responses(&args.data, args.format.into())?;
    let read_s = start.elapsed().as_secs_f64();
    note!(
        "read {} persons × {} items in {read_s:.2} s; fitting {} by EM …",
        responses.n_persons(),
        responses.item_ids().len(),
        spec.model
    );
    let bar = indicatif::ProgressBar::new(spec.em.max_cycles as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("cycle {pos:>4} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let fit_start = Instant::now();
    let deadline = args
        .time_limit
        .and_then(|s| fit_start.checked_add(Duration::try_from_secs_f64(s).ok()?));
    let mut shown = false;
    let observer = |p: &Progress| {
        // Progress only for runs longer than a second.
        if shown || fit_start.elapsed() > Duration::from_secs(1) {
            shown = true;
            bar.set_position(p.cycle as u64);
            bar.set_message(format!(
                "log-likelihood {:.4}  largest change {:.2e}",
                p.loglik, p.change
            ));
        }
        match deadline {
            Some(d) if Instant::now() >= d => Control::Stop,
            _ => Control::Continue,
        }
    };
    let (fit, structure) = match &dimensions {
        Some(d) => {
            let m = calibrate_multidimensional(&responses, &spec, d, MultiQuadrature::default(), observer)
                .with_context(|| format!("{}", args.data.display()))?;
            let mut structure = json!({"dimensions": m.dimensions, "correlations": m.correlations,
                "general_loadings": m.loadings});
            if let (Some(l), Some(r)) = (&m.loading_se, &m.correlation_se) {
                structure["general_loadings_se"] = json!(l);
                structure["correlations_se"] = json!(r);
            }
            (m.calibration, Some(structure))
        }
        None => (
            calibrate(&responses, &spec, anchor.as_ref(), observer)
                .with_context(|| format!("{}", args.data.display()))?,
            None,
        ),
    };
    if structure.is_some() && items::bank_format(&args.out).ok().map(|f| f.0) == Some(items::BankFormat::Csv)
    {
        note!(
            "warning: a CSV bank keeps each item's dimension (competence) but not the correlations: write .json to keep them"
        );
    }
    let fit_s = fit_start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    items::write_bank(&fit.bank, &args.out).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &fit.warnings {
        note!("warning: {w}");
    }
    let mut summary = json!({
        "model": spec.model,
        "persons": fit.persons,
        "items": fit.items,
        "log_likelihood": fit.loglik,
        "aic": fit.aic,
        "bic": fit.bic,
        "parameters": fit.n_parameters,
        "cycles": fit.cycles,
        "converged": fit.converged,
        "last_change": fit.last_change,
        "latent": fit.latent,
        "item_fit": fit.item_fit,
        "read_s": read_s,
        "fit_s": fit_s,
        "elapsed_s": start.elapsed().as_secs_f64(),
        "warnings": fit.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "warning_details": fit.warnings,
        "out": args.out.display().to_string(),
    });
    if let Some(serde_json::Value::Object(extra)) = structure
        && let Some(o) = summary.as_object_mut()
    {
        o.extend(extra);
    }
    crate::cli::output::emit(&summary)?;
    Ok(())
}
