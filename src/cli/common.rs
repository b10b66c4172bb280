//! Arguments and helpers shared by several commands.

use anyhow::{Context, Result, bail};
use clap::Args;
use etalon::engine::estimate::EstimatorConfig;
use etalon::engine::quadrature::{Prior, Rule};
use etalon::items::{self, Bank, Responses};
use std::path::{Path, PathBuf};

/// Load a bank, or the embedded example bank.
pub fn load_bank(path: Option<&Path>) -> Result<Bank> {
    Ok(etalon::assessment::files::load_bank(path)?)
}

/// The most worker threads `--threads` may ask for: a few per core (more only thrashes).
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 4
}

/// `s` cut for a message.
fn clip(s: &str) -> String {
    crate::cli::output::clip(s, 40)
}

/// Values are checked before any work; an out-of-range value is an error naming its option (exit 1;
/// the parser rejects only what is not a value of the option's type, exit 2).
pub fn check_count(option: &str, value: usize, lo: usize, hi: usize) -> Result<()> {
    if value < lo || value > hi {
        if hi == usize::MAX {
            bail!("{option} must be at least {lo} (got {value})");
        }
        bail!("{option} must be in {lo}..={hi} (got {value})");
    }
    Ok(())
}

/// A finite number > 0 (see [`check_count`]).
pub fn check_positive(option: &str, value: f64) -> Result<()> {
    if !(value.is_finite() && value > 0.0) {
        bail!("{option} must be a finite number > 0 (got {value})");
    }
    Ok(())
}

/// A finite number (see [`check_count`]).
pub fn check_finite(option: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        bail!("{option} must be a finite number (got {value})");
    }
    Ok(())
}

/// EAP quadrature points: the engine's grid takes 2 to 10,000.
pub const GRID_POINTS: (usize, usize) = (2, 10_000);

/// Size rayon's global pool.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        let max = max_threads();
        if n > max {
            bail!("--threads {n} is more than this machine can use (at most {max}: 4 per core)");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting the thread count")?;
    }
    Ok(())
}

/// `--responses FILE --format wide|long`.
#[derive(Args)]
pub struct DataArgs {
    /// Response data (wide or long CSV, optionally .gz).
    #[arg(long)]
    responses: PathBuf,
    /// Layout of the response file.
    #[arg(long, value_enum, default_value_t = crate::cli::data::Format::Wide)]
    format: crate::cli::data::Format,
}

impl DataArgs {
    /// Read the file.
    pub fn read(&self) -> Result<Responses> {
        Ok(items::read_responses(&self.responses, self.format.into())?)
    }
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.responses
    }
}

/// Prior and grid options shared by scoring and simulation.
#[derive(Args, Clone)]
pub struct GridArgs {
    /// Prior mean (default: the bank's latent mean, else 0).
    #[arg(long, allow_hyphen_values = true)]
    prior_mean: Option<f64>,
    /// Prior standard deviation, > 0 (default: the bank's latent SD, else 1).
    #[arg(long, allow_hyphen_values = true)]
    prior_sd: Option<f64>,
    /// Number of EAP quadrature points (2 to 10000).
    #[arg(long, allow_hyphen_values = true, default_value_t = 61)]
    quadrature: usize,
    /// Quadrature rule: rectangle (mirt), trapezoid (catR), gauss-hermite.
    #[arg(long, default_value = "rectangle", value_parser = parse_quadrature_rule)]
    quadrature_rule: Rule,
    /// θ range: bounds the estimates and is the EAP grid's range (`lo,hi`).
    #[arg(long, default_value = "-6,6", allow_hyphen_values = true, value_parser = parse_range)]
    theta_range: (f64, f64),
}

impl GridArgs {
    /// The prior option given, if any (`--prior-mean` or `--prior-sd`).
    pub fn prior_option(&self) -> Option<&'static str> {
        if self.prior_mean.is_some() {
            Some("--prior-mean")
        } else if self.prior_sd.is_some() {
            Some("--prior-sd")
        } else {
            None
        }
    }
}

/// Parse a quadrature rule name.
pub fn parse_quadrature_rule(s: &str) -> Result<Rule, String> {
    serde_json::from_value(serde_json::json!(s))
        .map_err(|_| format!("unknown rule `{}` (rectangle, trapezoid, gauss-hermite)", clip(s)))
}

/// Parse `lo,hi`.
pub fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').collect();
    let bad = || {
        format!(
            "`{}` is not a range `lo,hi` of finite numbers with lo < hi",
            clip(s)
        )
    };
    if parts.len() != 2 {
        return Err(bad());
    }
    let lo: f64 = parts[0].trim().parse().map_err(|_| bad())?;
    let hi: f64 = parts[1].trim().parse().map_err(|_| bad())?;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl GridArgs {
    /// Check the values before any work, naming the option of a bad one.
    pub fn check(&self) -> Result<()> {
        check_count("--quadrature", self.quadrature, GRID_POINTS.0, GRID_POINTS.1)?;
        if let Some(m) = self.prior_mean {
            check_finite("--prior-mean", m)?;
        }
        if let Some(sd) = self.prior_sd
            && !(sd.is_finite() && sd > 0.0)
        {
            bail!("--prior-sd: the prior SD must be finite and > 0 (got {sd})");
        }
        Ok(())
    }

    /// The estimator settings these options describe (method left at its default); the prior defaults
    /// to `default_prior` (the bank's latent distribution).
    pub fn config(&self, default_prior: Prior) -> Result<EstimatorConfig> {
        self.check()?;
        Ok(etalon::assessment::scoring::estimator_config_with(
            default_prior,
            EstimatorConfig::default().method,
            self.prior_mean,
            self.prior_sd,
            self.quadrature,
            self.quadrature_rule,
            self.theta_range,
        )?)
    }
}
