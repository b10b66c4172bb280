//! Arguments and helpers shared by several commands.

use anyhow::{Context, Result, bail};
use clap::Args;
use etalon::engine::estimate::EstimatorConfig;
use etalon::engine::quadrature::{GridSpec, Prior, Rule};
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
    /// Prior standard deviation (default: the bank's latent SD, else 1).
    #[arg(long)]
    prior_sd: Option<f64>,
    /// Number of EAP quadrature points.
    #[arg(long, default_value_t = 61)]
    quadrature: usize,
    /// Quadrature rule: rectangle (mirt), trapezoid (catR), gauss-hermite.
    #[arg(long, default_value = "rectangle", value_parser = parse_quadrature_rule)]
    quadrature_rule: Rule,
    /// θ range: bounds the estimates and is the EAP grid's range (`lo,hi`).
    #[arg(long, default_value = "-6,6", allow_hyphen_values = true, value_parser = parse_range)]
    theta_range: (f64, f64),
}

/// Parse a quadrature rule name.
pub fn parse_quadrature_rule(s: &str) -> Result<Rule, String> {
    serde_json::from_value(serde_json::json!(s))
        .map_err(|_| format!("unknown rule `{s}` (rectangle, trapezoid, gauss-hermite)"))
}

/// Parse `lo,hi`.
pub fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').collect();
    let bad = || format!("`{s}` is not a range `lo,hi` with lo < hi");
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
    /// The estimator settings these options describe (method left at its default); the prior defaults
    /// to `default_prior` (the bank's latent distribution).
    pub fn config(&self, default_prior: Prior) -> Result<EstimatorConfig> {
        let config = EstimatorConfig {
            prior: Prior {
                mean: self.prior_mean.unwrap_or(default_prior.mean),
                sd: self.prior_sd.unwrap_or(default_prior.sd),
            },
            grid: GridSpec {
                lower: self.theta_range.0,
                upper: self.theta_range.1,
                points: self.quadrature,
                rule: self.quadrature_rule,
            },
            bounds: self.theta_range,
            ..EstimatorConfig::default()
        };
        config.validate()?;
        Ok(config)
    }
}
