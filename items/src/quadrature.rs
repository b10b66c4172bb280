//! Quadrature grids over θ with a normal prior: the support of EAP estimation and of the
//! integration-based selection rules.
//!
//! A [`Grid`] holds points θ_q and log-weights log w_q = log(quadrature weight × prior density), so that
//! ∫ f(θ) φ(θ) dθ ≈ Σ_q f(θ_q) w_q / Σ_q w_q. Rules:
//!
//! * `rectangle`: equally spaced points, equal quadrature weights (mirt's `fscores` grid: 61 points on
//!   [-6, 6]);
//! * `trapezoid`: equally spaced, end points at half weight (catR's `parInt` integration);
//! * `gauss-hermite`: n Gauss–Hermite nodes mapped to N(μ, σ²) (exact for polynomials of degree 2n - 1
//!   times the prior; the interval is ignored).

use serde::{Deserialize, Serialize};

/// A normal prior N(mean, sd²) on θ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prior {
    /// Prior mean.
    pub mean: f64,
    /// Prior standard deviation (> 0).
    pub sd: f64,
}

impl Default for Prior {
    fn default() -> Self {
        Prior { mean: 0.0, sd: 1.0 }
    }
}

impl Prior {
    /// Check the prior: finite mean, finite positive SD.
    pub fn validate(&self) -> Result<(), GridError> {
        if !self.mean.is_finite() {
            return Err(GridError::PriorMean(self.mean));
        }
        if !(self.sd.is_finite() && self.sd > 0.0) {
            return Err(GridError::PriorSd(self.sd));
        }
        Ok(())
    }
    /// log density up to a constant: -(θ - μ)² / (2σ²).
    #[inline]
    pub fn log_density(&self, theta: f64) -> f64 {
        let z = (theta - self.mean) / self.sd;
        -0.5 * z * z
    }
}

/// How grid points and weights are placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Equally spaced, equal weights (mirt).
    #[default]
    Rectangle,
    /// Equally spaced, end points at half weight (catR).
    Trapezoid,
    /// Gauss–Hermite nodes for the normal prior.
    GaussHermite,
}

/// Where the grid lies: `points` on [`lower`, `upper`] by `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// Lowest point.
    pub lower: f64,
    /// Highest point.
    pub upper: f64,
    /// Number of points.
    pub points: usize,
    /// Placement rule.
    #[serde(default)]
    pub rule: Rule,
}

impl Default for GridSpec {
    /// mirt's default: 61 equally spaced points on [-6, 6].
    fn default() -> Self {
        GridSpec {
            lower: -6.0,
            upper: 6.0,
            points: 61,
            rule: Rule::Rectangle,
        }
    }
}

/// Invalid prior or grid settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    /// The prior SD is not a finite positive number.
    #[error("prior SD must be finite and > 0 (got {0})")]
    PriorSd(f64),
    /// The prior mean is not finite.
    #[error("prior mean must be finite (got {0})")]
    PriorMean(f64),
    /// The interval is empty or not finite.
    #[error("θ range must be finite with lower < upper (got [{0}, {1}])")]
    Range(f64, f64),
    /// Too few or too many points.
    #[error("a grid needs between 2 and 10000 points (got {0})")]
    Points(usize),
}

/// Quadrature points with log-weights that include the prior.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    points: Vec<f64>,
    log_weights: Vec<f64>,
    spec: GridSpec,
    prior: Prior,
}

impl Grid {
    /// Build the grid of `spec` under `prior`.
    pub fn new(spec: GridSpec, prior: Prior) -> Result<Grid, GridError> {
        prior.validate()?;
        if !(spec.lower.is_finite() && spec.upper.is_finite() && spec.lower < spec.upper) {
            return Err(GridError::Range(spec.lower, spec.upper));
        }
        if !(2..=10_000).contains(&spec.points) {
            return Err(GridError::Points(spec.points));
        }
        let n = spec.points;
        let (points, log_weights) = match spec.rule {
            Rule::Rectangle | Rule::Trapezoid => {
                let step = (spec.upper - spec.lower) / (n - 1) as f64;
                let points: Vec<f64> = (0..n).map(|q| spec.lower + step * q as f64).collect();
                let lw = points
                    .iter()
                    .enumerate()
                    .map(|(q, &t)| {
                        let edge = spec.rule == Rule::Trapezoid && (q == 0 || q == n - 1);
                        prior.log_density(t) + if edge { 0.5f64.ln() } else { 0.0 }
                    })
                    .collect();
                (points, lw)
            }
            Rule::GaussHermite => {
                let (x, w) = gauss_hermite(n);
                let points = x
                    .iter()
                    .map(|&x| prior.mean + prior.sd * std::f64::consts::SQRT_2 * x)
                    .collect();
                (points, w.iter().map(|w| w.ln()).collect())
            }
        };
        Ok(Grid {
            points,
            log_weights,
            spec,
            prior,
        })
    }

    /// The points θ_q.
    pub fn points(&self) -> &[f64] {
        &self.points
    }
    /// log(quadrature weight × prior density) at each point.
    pub fn log_weights(&self) -> &[f64] {
        &self.log_weights
    }
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }
    /// Always false: a grid has at least two points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
    /// The spec it was built from.
    pub fn spec(&self) -> GridSpec {
        self.spec
    }
    /// The prior it was built with.
    pub fn prior(&self) -> Prior {
        self.prior
    }
}

/// Gauss–Hermite nodes and weights for ∫ f(x) e^{-x²} dx, by Newton iteration on the orthonormal
/// Hermite recurrence (Golub & Welsch's nodes; the classical `gauher` scheme of Press et al. 2007).
/// Returned in increasing order.
pub fn gauss_hermite(n: usize) -> (Vec<f64>, Vec<f64>) {
    let pim4 = std::f64::consts::PI.powf(-0.25);
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let m = n.div_ceil(2);
    let nf = n as f64;
    let mut z = 0.0f64;
    for i in 0..m {
        z = match i {
            0 => (2.0 * nf + 1.0).sqrt() - 1.85575 * (2.0 * nf + 1.0).powf(-1.0 / 6.0),
            1 => z - 1.14 * nf.powf(0.426) / z,
            2 => 1.86 * z - 0.86 * x[0],
            3 => 1.91 * z - 0.91 * x[1],
            _ => 2.0 * z - x[i - 2],
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let mut p1 = pim4;
            let mut p2 = 0.0;
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                let jf = j as f64;
                p1 = z * (2.0 / (jf + 1.0)).sqrt() * p2 - (jf / (jf + 1.0)).sqrt() * p3;
            }
            pp = (2.0 * nf).sqrt() * p2;
            let z1 = z;
            z = z1 - p1 / pp;
            if (z - z1).abs() <= 1e-14 {
                break;
            }
        }
        x[i] = z;
        x[n - 1 - i] = -z;
        w[i] = 2.0 / (pp * pp);
        w[n - 1 - i] = w[i];
    }
    x.reverse();
    w.reverse();
    (x, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_hermite_integrates_normal_moments() {
        for n in [5, 21, 61] {
            let g = Grid::new(
                GridSpec {
                    rule: Rule::GaussHermite,
                    points: n,
                    ..GridSpec::default()
                },
                Prior { mean: 0.5, sd: 2.0 },
            )
            .unwrap();
            let w: Vec<f64> = g.log_weights().iter().map(|l| l.exp()).collect();
            let total: f64 = w.iter().sum();
            let mean: f64 = g.points().iter().zip(&w).map(|(t, w)| t * w).sum::<f64>() / total;
            let var: f64 = g
                .points()
                .iter()
                .zip(&w)
                .map(|(t, w)| (t - mean).powi(2) * w)
                .sum::<f64>()
                / total;
            assert!(
                (total - std::f64::consts::PI.sqrt()).abs() < 1e-10,
                "n={n} total={total}"
            );
            assert!(
                (mean - 0.5).abs() < 1e-10 && (var - 4.0).abs() < 1e-9,
                "n={n} {mean} {var}"
            );
        }
    }

    #[test]
    fn invalid_settings_rejected() {
        let p = Prior::default();
        assert!(matches!(
            Grid::new(GridSpec::default(), Prior { mean: 0.0, sd: 0.0 }),
            Err(GridError::PriorSd(_))
        ));
        assert!(
            Grid::new(
                GridSpec::default(),
                Prior {
                    mean: 0.0,
                    sd: f64::NAN
                }
            )
            .is_err()
        );
        assert!(
            Grid::new(
                GridSpec {
                    lower: 1.0,
                    upper: -1.0,
                    ..GridSpec::default()
                },
                p
            )
            .is_err()
        );
        assert!(
            Grid::new(
                GridSpec {
                    points: 1,
                    ..GridSpec::default()
                },
                p
            )
            .is_err()
        );
    }
}
