//! Ability estimation: θ̂ and its standard error from a person's answers.
//!
//! | method | estimate | standard error |
//! | --- | --- | --- |
//! | EAP (Bock & Mislevy 1982) | posterior mean on a quadrature grid, in log space | posterior SD |
//! | MAP | posterior mode, safeguarded Newton | 1/√(−∂² log posterior/∂θ²) at the mode |
//! | ML | likelihood maximum, safeguarded Newton | 1/√I(θ̂) (test information) |
//! | WLE (Warm 1989) | root of ∂ log L/∂θ + J(θ)/(2I(θ)) | 1/√I(θ̂) |
//!
//! Modal estimates are bounded to [`EstimatorConfig::bounds`] (mirt's `max_theta` = 20 by default);
//! an estimate that reaches a bound is flagged [`EstimateKind::Bounded`]. ML for an all-lowest or
//! all-highest pattern is −∞/+∞ ([`EstimateKind::Infinite`]) with an undefined (NaN) SE. WLE is finite
//! for every pattern. EAP and MAP without any answer return the prior; ML and WLE refuse.
//!
//! EAP is computed in log space (log-likelihoods summed, max subtracted before exponentiating), so a
//! person with thousands of answers does not underflow (mirt issue #98). [`EapTable`] precomputes
//! log P_jk(θ_q) once per bank so that one person costs one addition per answer and grid point, and
//! [`Posterior`] adds one answer in O(grid) — the update an adaptive session makes after each answer.

use crate::irt::ResponseFunction;
use crate::quadrature::{Grid, GridError, GridSpec, Prior};
use etalon_items::ItemModel;
use serde::{Deserialize, Serialize};

/// One answer: the item's position in the bank and the response category (0 … K-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Answer {
    /// Bank position of the item.
    pub item: u32,
    /// Category 0 … K-1.
    pub category: u8,
}

impl Answer {
    /// An answer to bank item `item` in category `category`.
    pub fn new(item: usize, category: usize) -> Self {
        Answer {
            item: item as u32,
            category: category as u8,
        }
    }
}

/// The estimation method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Expected a posteriori.
    #[default]
    Eap,
    /// Maximum a posteriori.
    Map,
    /// Maximum likelihood.
    Ml,
    /// Warm's weighted likelihood.
    Wle,
}

impl Method {
    /// Parse `eap`, `map`, `ml`, `wle` (case-insensitive).
    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_lowercase().as_str() {
            "eap" => Some(Method::Eap),
            "map" => Some(Method::Map),
            "ml" => Some(Method::Ml),
            "wle" => Some(Method::Wle),
            _ => None,
        }
    }
    /// The name files and the command line use (`eap`, `map`, `ml`, `wle`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Eap => "eap",
            Method::Map => "map",
            Method::Ml => "ml",
            Method::Wle => "wle",
        }
    }
}

/// How an estimate relates to the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstimateKind {
    /// An interior estimate.
    Finite,
    /// The estimate reached a bound of the θ range (the optimum lies at or beyond it).
    Bounded,
    /// ML of an all-lowest (−∞) or all-highest (+∞) pattern.
    Infinite,
}

impl EstimateKind {
    /// `Bounded` when the solver stopped on a bound, else `Finite`.
    fn from_bounded(bounded: bool) -> Self {
        if bounded {
            EstimateKind::Bounded
        } else {
            EstimateKind::Finite
        }
    }
}

/// θ̂ with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate (±∞ only for ML of extreme patterns).
    pub theta: f64,
    /// Its standard error (NaN when undefined: infinite ML).
    pub se: f64,
    /// Interior, bounded or infinite.
    pub kind: EstimateKind,
}

/// Estimation settings, validated by [`EstimatorConfig::validate`] before use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EstimatorConfig {
    /// EAP, MAP, ML or WLE.
    pub method: Method,
    /// Normal prior (EAP, MAP).
    pub prior: Prior,
    /// EAP grid.
    pub grid: GridSpec,
    /// Bounds of modal estimates (MAP, ML, WLE).
    pub bounds: (f64, f64),
}

impl Default for EstimatorConfig {
    fn default() -> Self {
        EstimatorConfig {
            method: Method::Eap,
            prior: Prior::default(),
            grid: GridSpec::default(),
            bounds: (-20.0, 20.0),
        }
    }
}

/// Estimation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimationError {
    /// Invalid prior or grid.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// Invalid bounds.
    #[error("estimate bounds must be finite with lower < upper (got [{0}, {1}])")]
    Bounds(f64, f64),
    /// ML and WLE need at least one answer.
    #[error("{0:?} needs at least one answer (EAP and MAP return the prior)")]
    NoAnswers(Method),
    /// An answer names an item the bank does not have.
    #[error("answer to item #{item}, but the bank has {bank_size} items")]
    UnknownItem {
        /// The item position given.
        item: u32,
        /// Bank size.
        bank_size: usize,
    },
    /// An answer's category is outside the item's categories.
    #[error("category {category} for item #{item}, which has {categories} categories")]
    Category {
        /// Bank position.
        item: u32,
        /// The category given.
        category: u8,
        /// The item's number of categories.
        categories: usize,
    },
}

impl EstimatorConfig {
    /// Check the prior, the grid and the bounds.
    pub fn validate(&self) -> Result<(), EstimationError> {
        Grid::new(self.grid, self.prior)?;
        let (lo, hi) = self.bounds;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(EstimationError::Bounds(lo, hi));
        }
        Ok(())
    }
}

/// Check that every answer names an existing item and one of its categories.
pub fn check_answers(models: &[ItemModel], answers: &[Answer]) -> Result<(), EstimationError> {
    for a in answers {
        let Some(m) = models.get(a.item as usize) else {
            return Err(EstimationError::UnknownItem {
                item: a.item,
                bank_size: models.len(),
            });
        };
        if a.category as usize >= m.categories() {
            return Err(EstimationError::Category {
                item: a.item,
                category: a.category,
                categories: m.categories(),
            });
        }
    }
    Ok(())
}

/// Precomputed log P_jk(θ_q) for every item j, category k and grid point q.
#[derive(Debug, Clone)]
pub struct EapTable {
    grid: Grid,
    offsets: Vec<usize>,
    log_p: Vec<f64>,
}

impl EapTable {
    /// Tabulate `models` on `grid`.
    pub fn new(models: &[ItemModel], grid: Grid) -> Self {
        let q = grid.len();
        let mut offsets = Vec::with_capacity(models.len() + 1);
        let mut total = 0;
        for m in models {
            offsets.push(total);
            total += m.categories() * q;
        }
        offsets.push(total);
        let mut log_p = vec![0.0; total];
        for (j, m) in models.iter().enumerate() {
            for k in 0..m.categories() {
                let row = &mut log_p[offsets[j] + k * q..offsets[j] + (k + 1) * q];
                for (v, &t) in row.iter_mut().zip(grid.points()) {
                    *v = m.log_prob(t, k);
                }
            }
        }
        EapTable { grid, offsets, log_p }
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// log P(X_j = k | θ_q) for all q.
    #[inline]
    pub fn row(&self, item: usize, category: usize) -> &[f64] {
        let q = self.grid.len();
        let start = self.offsets[item] + category * q;
        &self.log_p[start..start + q]
    }

    /// Number of tabulated items.
    pub fn n_items(&self) -> usize {
        self.offsets.len() - 1
    }

    /// EAP of a set of answers (already checked), using `buf` (grid-sized) as scratch.
    pub fn eap(&self, answers: &[Answer], buf: &mut Vec<f64>) -> Estimate {
        buf.clear();
        buf.extend_from_slice(self.grid.log_weights());
        for a in answers {
            for (b, l) in buf.iter_mut().zip(self.row(a.item as usize, a.category as usize)) {
                *b += l;
            }
        }
        posterior_moments(self.grid.points(), buf)
    }
}

/// Posterior mean and SD from unnormalised log posterior values (overwritten by the weights).
pub fn posterior_moments(points: &[f64], log_post: &mut [f64]) -> Estimate {
    let max = log_post.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut s0, mut s1) = (0.0, 0.0);
    for (lp, &t) in log_post.iter_mut().zip(points) {
        let w = (*lp - max).exp();
        *lp = w;
        s0 += w;
        s1 += w * t;
    }
    let mean = s1 / s0;
    let var: f64 = log_post
        .iter()
        .zip(points)
        .map(|(w, t)| w * (t - mean) * (t - mean))
        .sum::<f64>()
        / s0;
    Estimate {
        theta: mean,
        se: var.sqrt(),
        kind: EstimateKind::Finite,
    }
}

/// A running log posterior on a grid: start from the prior, add answers one at a time in O(grid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posterior {
    log_density: Vec<f64>,
}

impl Posterior {
    /// The prior of `grid`.
    pub fn new(grid: &Grid) -> Self {
        Posterior {
            log_density: grid.log_weights().to_vec(),
        }
    }
    /// Add one (checked) answer using the tabulated log-probabilities.
    #[inline]
    pub fn add(&mut self, table: &EapTable, answer: Answer) {
        for (d, l) in self
            .log_density
            .iter_mut()
            .zip(table.row(answer.item as usize, answer.category as usize))
        {
            *d += l;
        }
    }
    /// Unnormalised log posterior at each grid point.
    pub fn log_density(&self) -> &[f64] {
        &self.log_density
    }
    /// Normalised posterior weights written into `out` (grid-sized).
    pub fn weights_into(&self, out: &mut Vec<f64>) {
        out.clear();
        let max = self.log_density.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.extend(self.log_density.iter().map(|l| (l - max).exp()));
        let s: f64 = out.iter().sum();
        out.iter_mut().for_each(|w| *w /= s);
    }
    /// Posterior mean and SD.
    pub fn estimate(&self, grid: &Grid, buf: &mut Vec<f64>) -> Estimate {
        buf.clear();
        buf.extend_from_slice(&self.log_density);
        posterior_moments(grid.points(), buf)
    }
}

/// Sums of the answers' score terms at θ: Σ ∂ log P/∂θ, Σ ∂² log P/∂θ².
#[inline]
fn score_sums(models: &[ItemModel], answers: &[Answer], theta: f64) -> (f64, f64) {
    answers.iter().fold((0.0, 0.0), |(g, h), a| {
        let (d1, d2) = models[a.item as usize].score_terms(theta, a.category as usize);
        (g + d1, h + d2)
    })
}

/// Test information Σ I_j(θ) over the answered items.
pub fn test_information(models: &[ItemModel], answers: &[Answer], theta: f64) -> f64 {
    answers
        .iter()
        .map(|a| models[a.item as usize].information(theta))
        .sum()
}

/// Find the root of a decreasing-through-zero function on [lo, hi] by Newton steps safeguarded by
/// bisection. `f(θ)` returns (g, slope estimate). Returns the root and whether it sits on a bound.
fn bracketed_root(mut f: impl FnMut(f64) -> (f64, f64), lo: f64, hi: f64, start: f64) -> (f64, bool) {
    let (mut lo, mut hi) = (lo, hi);
    let (lo0, hi0) = (lo, hi);
    let mut theta = start.clamp(lo, hi);
    for _ in 0..200 {
        let (g, h) = f(theta);
        if g == 0.0 {
            return (theta, false);
        }
        if g > 0.0 {
            lo = theta;
        } else {
            hi = theta;
        }
        let newton = theta - g / h;
        let next = if h < 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - theta).abs() < 1e-11 || hi - lo < 1e-11 {
            theta = next;
            break;
        }
        theta = next;
    }
    let at_bound = (theta - lo0).abs() < 1e-8 || (theta - hi0).abs() < 1e-8;
    if at_bound {
        // Confirm: the root lies at or beyond the bound only if g keeps its sign there.
        let b = if (theta - lo0).abs() < 1e-8 { lo0 } else { hi0 };
        let (g, _) = f(b);
        let beyond = if b == lo0 { g <= 0.0 } else { g >= 0.0 };
        return (b, beyond);
    }
    (theta, false)
}

/// Whether every answer is in its item's lowest (`Some(false)`) or highest (`Some(true)`) category.
pub fn extreme_pattern(models: &[ItemModel], answers: &[Answer]) -> Option<bool> {
    let low = answers.iter().all(|a| a.category == 0);
    let high = answers
        .iter()
        .all(|a| a.category as usize + 1 == models[a.item as usize].categories());
    match (low, high) {
        (true, _) if !answers.is_empty() => Some(false),
        (_, true) if !answers.is_empty() => Some(true),
        _ => None,
    }
}

/// MAP: mode of the posterior, SE from the observed posterior information.
pub fn map(
    models: &[ItemModel],
    answers: &[Answer],
    prior: Prior,
    bounds: (f64, f64),
    start: f64,
) -> Estimate {
    let prec = 1.0 / (prior.sd * prior.sd);
    let (theta, bounded) = bracketed_root(
        |t| {
            let (g, h) = score_sums(models, answers, t);
            (g - (t - prior.mean) * prec, h - prec)
        },
        bounds.0,
        bounds.1,
        start,
    );
    let (_, h) = score_sums(models, answers, theta);
    Estimate {
        theta,
        se: 1.0 / (prec - h).sqrt(),
        kind: EstimateKind::from_bounded(bounded),
    }
}

/// ML: maximum of the likelihood, SE = 1/√I(θ̂); ±∞ for extreme patterns.
pub fn ml(
    models: &[ItemModel],
    answers: &[Answer],
    bounds: (f64, f64),
    start: f64,
) -> Result<Estimate, EstimationError> {
    if answers.is_empty() {
        return Err(EstimationError::NoAnswers(Method::Ml));
    }
    if let Some(high) = extreme_pattern(models, answers) {
        return Ok(Estimate {
            theta: if high { f64::INFINITY } else { f64::NEG_INFINITY },
            se: f64::NAN,
            kind: EstimateKind::Infinite,
        });
    }
    let (theta, bounded) = bracketed_root(|t| score_sums(models, answers, t), bounds.0, bounds.1, start);
    Ok(Estimate {
        theta,
        se: 1.0 / test_information(models, answers, theta).sqrt(),
        kind: EstimateKind::from_bounded(bounded),
    })
}

/// Warm's weighted score Σ ∂ log P/∂θ + J(θ)/(2I(θ)) and the observed Σ ∂² log P/∂θ².
fn warm_score(models: &[ItemModel], answers: &[Answer], t: f64) -> (f64, f64) {
    let (mut g, mut h, mut info, mut j) = (0.0, 0.0, 0.0, 0.0);
    for a in answers {
        let m = &models[a.item as usize];
        let (d1, d2) = m.score_terms(t, a.category as usize);
        g += d1;
        h += d2;
        let (i, jj) = m.information_and_warm_j(t);
        info += i;
        j += jj;
    }
    (g + j / (2.0 * info), h)
}

/// Warm's WLE: root of the weighted score Σ ∂ log P/∂θ + J(θ)/(2I(θ)). SE = 1/√(−∂/∂θ weighted score)
/// (the curvature of the weighted likelihood, as mirt reports it), by central difference of the
/// analytic weighted score; 1/√I(θ̂) if that curvature is not negative.
pub fn wle(
    models: &[ItemModel],
    answers: &[Answer],
    bounds: (f64, f64),
    start: f64,
) -> Result<Estimate, EstimationError> {
    if answers.is_empty() {
        return Err(EstimationError::NoAnswers(Method::Wle));
    }
    let (theta, bounded) = bracketed_root(|t| warm_score(models, answers, t), bounds.0, bounds.1, start);
    let h = 1e-4;
    let slope =
        (warm_score(models, answers, theta + h).0 - warm_score(models, answers, theta - h).0) / (2.0 * h);
    let se = if slope < 0.0 {
        1.0 / (-slope).sqrt()
    } else {
        1.0 / test_information(models, answers, theta).sqrt()
    };
    Ok(Estimate {
        theta,
        se,
        kind: EstimateKind::from_bounded(bounded),
    })
}

/// A configured estimator over a bank's models: the grid and EAP table built once, then any number of
/// persons estimated (in parallel: it is `Sync`).
#[derive(Debug, Clone)]
pub struct Estimator {
    config: EstimatorConfig,
    models: Vec<ItemModel>,
    table: EapTable,
}

impl Estimator {
    /// Validate `config` and tabulate the models.
    pub fn new(models: Vec<ItemModel>, config: EstimatorConfig) -> Result<Self, EstimationError> {
        config.validate()?;
        let grid = Grid::new(config.grid, config.prior)?;
        let table = EapTable::new(&models, grid);
        Ok(Estimator {
            config,
            models,
            table,
        })
    }

    /// The settings.
    pub fn config(&self) -> &EstimatorConfig {
        &self.config
    }
    /// The item models, in bank order.
    pub fn models(&self) -> &[ItemModel] {
        &self.models
    }
    /// The EAP table.
    pub fn table(&self) -> &EapTable {
        &self.table
    }

    /// Estimate θ from `answers` with the configured method. `buf` is grid-sized scratch (reuse it).
    pub fn estimate(&self, answers: &[Answer], buf: &mut Vec<f64>) -> Result<Estimate, EstimationError> {
        check_answers(&self.models, answers)?;
        self.estimate_checked(answers, buf)
    }

    /// As [`Estimator::estimate`], for answers already checked.
    pub fn estimate_checked(
        &self,
        answers: &[Answer],
        buf: &mut Vec<f64>,
    ) -> Result<Estimate, EstimationError> {
        let (lo, hi) = self.config.bounds;
        match self.config.method {
            Method::Eap => Ok(self.table.eap(answers, buf)),
            Method::Map => {
                let start = self.table.eap(answers, buf).theta;
                Ok(map(&self.models, answers, self.config.prior, (lo, hi), start))
            }
            Method::Ml => {
                let start = self.table.eap(answers, buf).theta;
                ml(&self.models, answers, (lo, hi), start)
            }
            Method::Wle => {
                let start = self.table.eap(answers, buf).theta;
                wle(&self.models, answers, (lo, hi), start)
            }
        }
    }
}

impl Estimator {
    /// Estimate `n` persons in parallel (rayon); `fill(p, answers)` writes person p's answers into the
    /// (cleared) buffer. Results come back in person order, identical whatever the number of threads.
    pub fn estimate_many(
        &self,
        n: usize,
        fill: impl Fn(usize, &mut Vec<Answer>) + Sync,
    ) -> Vec<Result<Estimate, EstimationError>> {
        #[cfg(feature = "parallel")]
        use rayon::prelude::*;
        #[cfg(feature = "parallel")]
        let persons = (0..n).into_par_iter();
        #[cfg(not(feature = "parallel"))]
        let persons = crate::serial::MapInit((0..n).into_iter());
        persons
            .map_init(
                || (Vec::new(), Vec::with_capacity(self.table.grid().len())),
                |(answers, buf), p| {
                    answers.clear();
                    fill(p, answers);
                    self.estimate(answers, buf)
                },
            )
            .collect()
    }
}
