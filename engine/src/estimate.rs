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
//! an estimate whose optimum lies at or beyond a bound is flagged [`EstimateKind::Bounded`]. ML for an
//! all-lowest or all-highest pattern is −∞/+∞ ([`EstimateKind::Infinite`]) with an undefined (NaN) SE.
//! WLE is finite for every pattern of items that carry information somewhere in the bounds. EAP and
//! MAP without any answer return the prior; ML and WLE refuse.
//!
//! No silent wrong numbers: an estimate that cannot be computed is an error, never a bound or another
//! method's value. When the root search meets a score that is not a number (WLE's J/(2I) is 0/0 where
//! the test information underflows, e.g. slopes of 10⁶ or difficulties of ±10⁶), or the likelihood is
//! numerically flat at the solution (every score term underflowed: no unique maximum, infinite SE),
//! the result is [`EstimationError::Unscorable`]; "the optimum lies beyond the bound" (the score keeps
//! its sign up to the bound) stays [`EstimateKind::Bounded`]. An EAP grid too coarse for the posterior
//! is refined around the mode ([`EapTable::try_eap`]), or refused with
//! [`EstimationError::GridTooCoarse`].
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
    /// The estimate cannot be computed from these answers (the person is unscorable by this method;
    /// no bound or other method's value is substituted).
    #[error("{} estimate cannot be computed: {reason}", .method.name().to_uppercase())]
    Unscorable {
        /// The method that failed.
        method: Method,
        /// Why.
        reason: UnscorableReason,
    },
    /// The EAP posterior is narrower than the quadrature grid can resolve, even after refining the
    /// grid around its mode.
    #[error(
        "EAP: the posterior (SD {sd:e}) is narrower than the quadrature grid resolves (spacing {spacing:e}), \
         even after refining the grid around its mode"
    )]
    GridTooCoarse {
        /// Spacing of the finest grid tried.
        spacing: f64,
        /// Posterior SD on that grid.
        sd: f64,
    },
}

/// Why a modal estimate (MAP, ML, WLE) could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum UnscorableReason {
    /// The score is not a number at `theta`: the test information underflows to 0 there (the items
    /// carry no information at the θ the search reached), so Warm's correction J/(2I) is 0/0.
    #[error(
        "the score is not a number at θ = {theta} (the test information underflows to 0: the answered \
         items carry no information there)"
    )]
    UndefinedScore {
        /// Where.
        theta: f64,
    },
    /// The likelihood is numerically flat at `theta`: the score vanishes there without changing sign
    /// (every term underflowed), or the test information is 0 — no unique maximum, infinite SE.
    #[error(
        "the likelihood is numerically flat at θ = {theta} (test information 0): the answers do not single \
         out an estimate"
    )]
    FlatLikelihood {
        /// Where.
        theta: f64,
    },
    /// The root search did not converge.
    #[error("the root search did not converge in [{lower}, {upper}]")]
    NoConvergence {
        /// Lower end of the last bracket.
        lower: f64,
        /// Upper end of the last bracket.
        upper: f64,
    },
}

fn unscorable(method: Method) -> impl FnOnce(UnscorableReason) -> EstimationError {
    move |reason| EstimationError::Unscorable { method, reason }
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

/// Precomputed log P_jk(θ_q) for every item j, category k and grid point q, with the item models
/// (kept to refine the grid when a posterior is narrower than it; see [`EapTable::try_eap`]).
#[derive(Debug, Clone)]
pub struct EapTable {
    grid: Grid,
    offsets: Vec<usize>,
    log_p: Vec<f64>,
    /// P_jk(θ_q) = exp(log P_jk(θ_q)), laid out as `log_p` (for [`RunningPosterior`]).
    prob: Vec<f64>,
    /// Whether every log P_jk(θ_q) of item j is at least −[`PRODUCT_LOG`], so that products of its
    /// probabilities stay normal numbers ([`RunningPosterior`]).
    multiplicative: Vec<bool>,
    models: Vec<ItemModel>,
    /// Largest distance between neighbouring grid points (the spacing of an equally spaced grid).
    max_spacing: f64,
    sufficient: Sufficient,
}

/// The weighted-score form of the log posterior, for the items whose log-odds against category 0 are
/// linear in θ ([`ItemModel::log_odds_line`]: Rasch, 1PL, 2PL, GPCM): for a set A of such answers,
///
/// log π(θ_q) + Σ_{j∈A} log P_{j,x_j}(θ_q) = log π(θ_q) + Σ_{j∈A} log P_{j0}(θ_q) + θ_q Σ_{j∈A} α_{j,x_j} + const,
///
/// so a person's posterior on the grid costs one addition per answer (the weighted score
/// S = Σ α_{j,x_j}) plus one multiply-add per grid point, instead of one addition per answer and
/// grid point — the sum Σ log P_{j0} being tabulated once over all such items and corrected for the
/// items a person did not answer (or summed directly when they answered fewer than half).
#[derive(Debug, Clone, Default)]
struct Sufficient {
    /// α_jk at `start[j] + k`, for the items of `items`.
    alpha: Vec<f64>,
    /// Where item j's α start, [`NOT_LINEAR`] for the items not in `items`.
    start: Vec<u32>,
    /// The items whose log-odds are linear, in bank order.
    items: Vec<u32>,
    /// log π(θ_q) (with the quadrature weight) + Σ over `items` of log P_{j0}(θ_q).
    complete: Vec<f64>,
    /// The grid spacing h when the grid is equally spaced and neighbouring `complete` values differ
    /// by at most [`PRODUCT_LOG`] (see [`EapTable::moments_by_ratios`]).
    step: Option<f64>,
    /// D_q = C_{q+1} − C_q for C = `complete`, q = 0 … Q − 2 (decreasing: C is concave).
    increments: Vec<f64>,
    /// exp(D_q) and exp(−D_q).
    up: Vec<f64>,
    down: Vec<f64>,
}

/// α_{j,c} of every (column j, category c) of a response matrix, `stride` per column: see
/// [`EapTable::row_form`].
#[derive(Debug, Clone)]
pub struct RowForm {
    alpha: Vec<f64>,
    stride: usize,
}

/// [`Sufficient::start`] of an item outside the weighted-score form.
const NOT_LINEAR: u32 = u32::MAX;

/// Scratch space of [`EapTable::eap_by_score`], one per thread: reuse it across persons.
#[derive(Debug, Clone, Default)]
pub struct ScoreScratch {
    log_post: Vec<f64>,
    seen: Vec<u64>,
    rows: Vec<Answer>,
}

/// Largest |term| an item's weighted-score form may add or remove ([`EapTable::eap_by_score`]).
const MODERATE: f64 = 1e3;
/// Points of each refined grid (see [`EapTable::try_eap`]); arrays of this size live on the stack.
const REFINE_POINTS: usize = 121;
/// At most this many successive refinements (each shrinks the spacing at least 30-fold in practice).
const REFINE_DEPTH: usize = 24;
/// Grid points whose posterior weight relative to the mode is below this carry no mass (e^-36.8).
const NEGLIGIBLE: f64 = 1e-16;
/// Answers whose log-probability rows [`EapTable::add_rows`] adds in one pass over the grid (8 was
/// the fastest of 4, 8 and 16 on a 61-point grid: 40 % less time than one row per pass).
const ROW_BLOCK: usize = 8;
/// Items whose log-probabilities on the grid are all above −600 join [`RunningPosterior`]s: their
/// probabilities (≥ e^−600 ≈ 10⁻²⁶¹) times weights in [1, 2) stay normal numbers.
const PRODUCT_LOG: f64 = 600.0;
/// Tables of at least this many cells are filled in parallel ([`EapTable::new`]).
#[cfg(feature = "parallel")]
const PARALLEL_CELLS: usize = 8192;

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
        let (mut log_p, mut prob) = (vec![0.0; total], vec![0.0; total]);
        let mut multiplicative = vec![false; models.len()];
        // Each item's rows, filled independently (in parallel for large banks: a 500-item bank on 33
        // points is 33,000 logarithms).
        type Part<'a> = (&'a ItemModel, &'a mut [f64], &'a mut [f64], &'a mut bool);
        let mut parts: Vec<Part> = Vec::with_capacity(models.len());
        let (mut logs, mut probs) = (log_p.as_mut_slice(), prob.as_mut_slice());
        for (m, flag) in models.iter().zip(&mut multiplicative) {
            let (l, l_tail) = logs.split_at_mut(m.categories() * q);
            let (p, p_tail) = probs.split_at_mut(m.categories() * q);
            parts.push((m, l, p, flag));
            (logs, probs) = (l_tail, p_tail);
        }
        let points = grid.points();
        let fill = |(m, logs, probs, flag): Part| {
            match m.logistic() {
                // Both categories at once (one exponential and one logarithm a point for c = 0, d = 1).
                Some(l) => {
                    let (wrong, correct) = logs.split_at_mut(q);
                    for ((w, c), &t) in wrong.iter_mut().zip(correct.iter_mut()).zip(points) {
                        (*w, *c) = etalon_items::irt::logistic_log_probs(l, t);
                    }
                }
                None => {
                    for (k, row) in logs.chunks_exact_mut(q).enumerate() {
                        for (v, &t) in row.iter_mut().zip(points) {
                            *v = m.log_prob(t, k);
                        }
                    }
                }
            }
            for (p, l) in probs.iter_mut().zip(logs.iter()) {
                *p = l.exp();
            }
            *flag = logs.iter().all(|&l| l >= -PRODUCT_LOG);
        };
        #[cfg(feature = "parallel")]
        if total >= PARALLEL_CELLS {
            use rayon::prelude::*;
            parts.into_par_iter().with_min_len(16).for_each(fill);
        } else {
            parts.into_iter().for_each(fill);
        }
        #[cfg(not(feature = "parallel"))]
        parts.into_iter().for_each(fill);
        let max_spacing = grid.points().windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let mut table = EapTable {
            grid,
            offsets,
            log_p,
            prob,
            multiplicative,
            models: models.to_vec(),
            max_spacing,
            sufficient: Sufficient::default(),
        };
        table.sufficient = table.tabulate_sufficient();
        table
    }

    /// The weighted-score tables of [`Sufficient`]. An item joins only if its terms are moderate on the
    /// grid (α θ_q and every log P_{jk}(θ_q)), so that adding and removing its rows loses no precision.
    fn tabulate_sufficient(&self) -> Sufficient {
        let points = self.grid.points();
        let reach = points.iter().fold(0.0f64, |m, t| m.max(t.abs()));
        let mut s = Sufficient {
            complete: self.grid.log_weights().to_vec(),
            ..Sufficient::default()
        };
        for (j, m) in self.models.iter().enumerate() {
            let lines: Option<Vec<f64>> = (0..m.categories())
                .map(|k| m.log_odds_line(k).map(|(alpha, _)| alpha))
                .collect();
            // Moderate terms only (|α θ_q|, |log P_jk(θ_q)| ≤ 10³): adding and removing them then costs
            // at most about 2e-13 each in the log posterior. Items far from the grid (locations of
            // ±10⁶) keep their rows.
            let usable = lines.as_ref().is_some_and(|alpha| {
                alpha.iter().all(|a| (a * reach).abs() <= MODERATE)
                    && (0..m.categories()).all(|k| self.row(j, k).iter().all(|l| l.abs() <= MODERATE))
            });
            let start = u32::try_from(s.alpha.len())
                .ok()
                .filter(|&x| usable && x != NOT_LINEAR);
            s.start.push(start.unwrap_or(NOT_LINEAR));
            if let (Some(_), Some(alpha)) = (start, lines) {
                s.alpha.extend(alpha);
                s.items.push(j as u32);
                for (c, l) in s.complete.iter_mut().zip(self.row(j, 0)) {
                    *c += l;
                }
            }
        }
        let h = self.max_spacing;
        let equal = points.windows(2).all(|w| ((w[1] - w[0]) - h).abs() <= 1e-12 * h);
        let moderate = s.complete.windows(2).all(|c| (c[1] - c[0]).abs() <= PRODUCT_LOG);
        if equal && moderate && h > 0.0 {
            s.step = Some(h);
            s.increments = s.complete.windows(2).map(|c| c[1] - c[0]).collect();
            s.up = s.increments.iter().map(|d| d.exp()).collect();
            s.down = s.increments.iter().map(|d| (-d).exp()).collect();
        }
        s
    }

    /// The EAP moments of a person who answered every weighted-score item and no other, on an
    /// equally spaced grid (spacing h): the log posterior is C_q + θ_q S (C: [`Sufficient`]'s
    /// `complete`, S: the weighted score), a concave function of θ. Its mode m is where the increments
    /// D_q + hS (D_q = C_{q+1} − C_q, decreasing in q) turn negative, counted over the tabulated D
    /// (one comparison each, no exponential); from m the weights w_q = exp(C_q + θ_q S − C_m − θ_m S) follow by
    ///
    ///   w_{q+1} = w_q · exp(D_q) · e^{hS},   w_{q−1} = w_q · exp(−D_{q−1}) · e^{−hS}
    ///
    /// (the first factors tabulated): two exponentials a person instead of one a grid point, and the
    /// two walks, up and down from m, interleaved (they are independent chains of multiplications).
    /// Each walk stops where the weights fall below 2⁻⁶⁶ (they only fall further). Each step rounds
    /// once or twice, so a weight 30 points from the mode is within about 10⁻¹⁴ of exp's. A
    /// posterior the grid may not resolve is left to the caller ([`EapTable::score_weights`]).
    fn moments_by_ratios(&self, score: f64, h: f64) -> Estimate {
        const TINY: f64 = 1.0 / (1u128 << 66) as f64;
        let suff = &self.sufficient;
        let points = self.grid.points();
        let n = points.len();
        let hs = h * score;
        let m = suff
            .increments
            .iter()
            .map(|&d| usize::from(d + hs > 0.0))
            .sum::<usize>();
        let centre = points[m];
        let (rise, fall) = (hs.exp(), (-hs).exp());
        // Sums of w, w·d and w·d² (d = θ_q − θ_m) above the mode (with it) and below it.
        let (mut above, mut below) = ([1.0, 0.0, 0.0], [0.0; 3]);
        let add = |sums: &mut [f64; 3], t: f64, w: f64| {
            let d = t - centre;
            sums[0] += w;
            sums[1] += w * d;
            sums[2] += w * d * d;
        };
        let (mut up, mut down) = (m + 1, m);
        let (mut w_up, mut w_down) = (1.0, 1.0);
        while up < n || down > 0 {
            if up < n {
                w_up *= suff.up[up - 1] * rise;
                if w_up < TINY {
                    up = n;
                } else {
                    add(&mut above, points[up], w_up);
                    up += 1;
                }
            }
            if down > 0 {
                w_down *= suff.down[down - 1] * fall;
                if w_down < TINY {
                    down = 0;
                } else {
                    down -= 1;
                    add(&mut below, points[down], w_down);
                }
            }
        }
        moments_about(
            centre,
            above[0] + below[0],
            above[1] + below[1],
            above[2] + below[2],
        )
    }

    /// The posterior weights (1 at the mode, 0 where the log posterior is below it by more than 45)
    /// of a complete set of weighted-score answers of score S, for the refinement of a posterior
    /// [`EapTable::moments_by_ratios`] leaves unresolved.
    #[cold]
    fn score_weights(&self, score: f64, weights: &mut Vec<f64>) -> Estimate {
        weights.clear();
        let points = self.grid.points();
        weights.extend(
            self.sufficient
                .complete
                .iter()
                .zip(points)
                .map(|(c, t)| c + t * score),
        );
        posterior_moments(points, weights)
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

    /// EAP of a set of answers (already checked), using `buf` (grid-sized) as scratch: as
    /// [`EapTable::try_eap`], except that a posterior even refinement cannot resolve (see there) gives
    /// the moments on the finest grid tried instead of an error. Prefer `try_eap` wherever an error
    /// can be reported.
    pub fn eap(&self, answers: &[Answer], buf: &mut Vec<f64>) -> Estimate {
        match self.eap_or_finest(answers, buf) {
            Ok(e) => e,
            Err((_, finest)) => finest,
        }
    }

    /// EAP of a set of answers (already checked), using `buf` (grid-sized) as scratch.
    ///
    /// The posterior mean and SD on the table's grid — mirt's and catR's EAP, the same sums — unless the
    /// grid is too coarse for the posterior: its SD is below half the local grid spacing h (the larger
    /// distance from the highest grid point to its neighbours). Why h/2: a posterior the grid sees on
    /// one or two points has an SD of at most h/2 (two points at equal weight), so the criterion holds
    /// for every such posterior (θ̂ = a grid point, SE ≈ 0: thousands of answers, `--theta-range
    /// -1e6,1e6` on 61 points, slopes of 10⁶). Above it, a normal posterior of SD σ is summed by the
    /// rectangle rule with a relative error of about 2·exp(−2π²σ²/h²) — 1.4 % at σ = h/2 falling to
    /// 3·10⁻⁹ at σ = h — so the grid result stands, as mirt computes it; below it the error of the mean
    /// grows to half a spacing within a few tenths of h. (mirt's 61 points on [−6, 6] have h = 0.2, so
    /// the criterion needs a test information above 100; catR's 33 points on [−4, 4] have h = 0.25 and
    /// its tests stop at SE ≤ 0.3.)
    ///
    /// When the criterion holds, the posterior is recomputed on a finer grid of 121 points spanning
    /// the grid points whose weight exceeds 10⁻¹⁶ of the mode's, plus one point either side (the
    /// whole posterior mass for a unimodal posterior), from the item models and the prior density
    /// (trapezoid weights); then again on that grid, until the SD is at least twice the spacing (where
    /// the rectangle rule is exact to rounding). If the refined posterior's mode is an end of the θ
    /// range, the posterior is piled against it — its mode lies at or beyond the range — and the
    /// estimate is flagged [`EstimateKind::Bounded`]. If the grid cannot shrink further (a posterior
    /// narrower than the floating-point resolution of θ, or a tiny but not negligible far mode), the
    /// result is [`EstimationError::GridTooCoarse`]. Refinement costs nothing in the normal case (one
    /// comparison) and allocates nothing.
    pub fn try_eap(&self, answers: &[Answer], buf: &mut Vec<f64>) -> Result<Estimate, EstimationError> {
        self.eap_or_finest(answers, buf).map_err(|(e, _)| e)
    }

    /// Add the log-probability rows of `answers` (already checked) to `log_post` (grid-sized), in
    /// answer order at every grid point: `log_post[q] + l₁[q] + l₂[q] + …`, summed left to right, so
    /// the result is bit for bit that of adding one answer at a time ([`Posterior::add`]).
    ///
    /// This loop is most of the cost of scoring many persons, and adding one row at a time is bound by
    /// loading and storing the running sums. The rows are therefore added eight answers at a time:
    /// each grid point's running sum is loaded once, the block's terms are added to it in
    /// register, in the answers' order (the order of floating-point additions, hence the bits, does
    /// not change), and it is stored once.
    #[inline]
    pub fn add_rows(&self, log_post: &mut [f64], answers: &[Answer]) {
        let n = log_post.len();
        let (blocks, rest) = answers.as_chunks::<ROW_BLOCK>();
        let mut rows: [&[f64]; ROW_BLOCK] = [&[]; ROW_BLOCK];
        for block in blocks {
            for (row, a) in rows.iter_mut().zip(block) {
                *row = &self.row(a.item as usize, a.category as usize)[..n];
            }
            for (q, sum) in log_post.iter_mut().enumerate() {
                let mut s = *sum;
                for row in &rows {
                    s += row[q];
                }
                *sum = s;
            }
        }
        for a in rest {
            for (sum, l) in log_post
                .iter_mut()
                .zip(self.row(a.item as usize, a.category as usize))
            {
                *sum += l;
            }
        }
    }

    /// As [`EapTable::try_eap`], computing the log posterior from the weighted score ([`Sufficient`])
    /// for the items whose log-odds are linear in θ — the rows of the others (3PL, 4PL, graded) are
    /// added as usual. The same posterior as `try_eap`'s, summed in another order: the two agree to
    /// about 1e-13 in θ̂ and SE, not bit for bit. For many persons at a time ([`Estimator::estimate_many`]);
    /// a person who answered an item twice is scored by `try_eap`.
    pub fn eap_by_score(
        &self,
        answers: &[Answer],
        scratch: &mut ScoreScratch,
    ) -> Result<Estimate, EstimationError> {
        let suff = &self.sufficient;
        if suff.items.is_empty() {
            return self.try_eap(answers, &mut scratch.log_post);
        }
        let ScoreScratch { log_post, seen, rows } = scratch;
        rows.clear();
        let (mut score, mut linear) = (0.0, 0usize);
        let (mut increasing, mut previous) = (true, None);
        for a in answers {
            increasing &= previous < Some(a.item);
            previous = Some(a.item);
            let j = a.item as usize;
            let start = suff.start[j];
            if start != NOT_LINEAR {
                score += suff.alpha[start as usize + a.category as usize];
                linear += 1;
            } else {
                rows.push(*a);
            }
        }
        // Answers in increasing item order (as a response matrix gives them) cannot repeat an item;
        // others are checked on a bitmap of the items seen.
        let mut marked = false;
        if !increasing {
            if mark_items(seen, self.n_items(), answers) {
                return self.try_eap(answers, log_post);
            }
            marked = true;
        }
        let e = if let (true, true, Some(h)) = (rows.is_empty(), linear == suff.items.len(), suff.step) {
            // Complete answers to weighted-score items only.
            let e = self.moments_by_ratios(score, h);
            if self.resolves(&e) {
                return Ok(e);
            }
            self.score_weights(score, log_post);
            e
        } else {
            log_post.clear();
            if 2 * linear >= suff.items.len() {
                // Σ over all linear items, less those not answered.
                log_post.extend_from_slice(&suff.complete);
                if linear < suff.items.len() {
                    if !marked {
                        mark_items(seen, self.n_items(), answers);
                    }
                    for &j in &suff.items {
                        let j = j as usize;
                        if seen[j / 64] & (1u64 << (j % 64)) == 0 {
                            for (l, r) in log_post.iter_mut().zip(self.row(j, 0)) {
                                *l -= r;
                            }
                        }
                    }
                }
            } else {
                log_post.extend_from_slice(self.grid.log_weights());
                rows.extend(
                    answers
                        .iter()
                        .filter(|a| suff.start[a.item as usize] != NOT_LINEAR)
                        .map(|a| Answer::new(a.item as usize, 0)),
                );
            }
            self.add_rows(log_post, rows);
            for (l, t) in log_post.iter_mut().zip(self.grid.points()) {
                *l += t * score;
            }
            posterior_moments(self.grid.points(), log_post)
        };
        self.resolved(answers, log_post, e).map_err(|(e, _)| e)
    }

    /// The weighted-score form of a response matrix's rows, when it has one: `answers[j * stride + c]`
    /// is the (checked) bank answer of column j's category c. It exists when every column's item is a
    /// weighted-score item, no item has two columns, every weighted-score item has one, and the grid
    /// is equally spaced — so that a row without a missing cell is a complete set of weighted-score
    /// answers, whose EAP [`EapTable::eap_of_row`] takes from S = Σ_j α_{j,x_j} alone.
    pub fn row_form(&self, answers: &[Answer], stride: usize) -> Option<RowForm> {
        let suff = &self.sufficient;
        suff.step?;
        if stride == 0 || !answers.len().is_multiple_of(stride) || answers.len() / stride != suff.items.len()
        {
            return None;
        }
        let mut alpha = Vec::with_capacity(answers.len());
        let mut seen = vec![false; self.n_items()];
        for column in answers.chunks_exact(stride) {
            let j = column[0].item as usize;
            let start = *suff.start.get(j)?;
            if start == NOT_LINEAR || std::mem::replace(&mut seen[j], true) {
                return None;
            }
            let categories = self.models[j].categories();
            for a in column {
                // An answer to another item (padding after the column's last category) gets α = NaN:
                // a row holding it is left to the general path, which scores the answer as given.
                let own = a.item as usize == j && (a.category as usize) < categories;
                alpha.push(if own {
                    suff.alpha[start as usize + a.category as usize]
                } else {
                    f64::NAN
                });
            }
        }
        Some(RowForm { alpha, stride })
    }

    /// The EAP of a row of a response matrix with a [`RowForm`] (one category per column, as
    /// [`EapTable::row_form`]'s `answers` index them): `None` when the row has a missing cell (a
    /// category ≥ the stride) or a posterior the grid may not resolve — score those by
    /// [`EapTable::eap_by_score`] on the row's answers. Otherwise the same bits as `eap_by_score`
    /// (S summed in column order, then [`EapTable::moments_by_ratios`]) without making the answers.
    #[inline]
    pub fn eap_of_row(&self, form: &RowForm, row: &[u8]) -> Option<Estimate> {
        let stride = form.stride;
        debug_assert_eq!(row.len() * stride, form.alpha.len());
        let mut score = 0.0;
        for (&c, alpha) in row.iter().zip(form.alpha.chunks_exact(stride)) {
            score += *alpha.get(c as usize)?;
        }
        if score.is_nan() {
            return None;
        }
        let e = self.moments_by_ratios(score, self.sufficient.step?);
        self.resolves(&e).then_some(e)
    }

    /// The prior's weights on the grid: the start of a [`RunningPosterior`] (one whose first
    /// [`EapTable::multiply`] fails if the prior itself spans more than 2^−1000 on the grid).
    pub fn start_posterior(&self) -> RunningPosterior {
        let log_weights = self.grid.log_weights();
        let (max, _) = largest(log_weights);
        let mut post = RunningPosterior {
            weights: log_weights.iter().map(|l| (l - max).exp()).collect(),
            answers: 0,
        };
        post.rescale();
        post
    }

    /// Multiply a (checked) answer into `post`: w_q ← w_q · P_{j,x_j}(θ_q), then rescale. False when
    /// the product form no longer holds the posterior, and then [`EapTable::eap`] (the sum of
    /// logarithms) is needed for these answers:
    ///
    /// - an item whose probabilities on the grid go below e^−600 (far from the grid): `post` is left
    ///   unchanged;
    /// - a weight falling below 2^−1000 of the largest (a long or aberrant pattern whose posterior
    ///   spans more than e^−693 on the grid; or a prior that narrow): such a weight could no longer
    ///   be held as a normal number and would be lost for good, where the sum of logarithms keeps it;
    ///   `post` is then emptied ([`RunningPosterior::is_started`] false).
    pub fn multiply(&self, post: &mut RunningPosterior, answer: Answer) -> bool {
        const FLOOR: f64 = 9.332_636_185_032_189e-302; // 2^-1000
        let j = answer.item as usize;
        if !self.multiplicative[j] || post.weights.len() != self.grid.len() {
            return false;
        }
        let q = self.grid.len();
        let start = self.offsets[j] + answer.category as usize * q;
        for (w, p) in post.weights.iter_mut().zip(&self.prob[start..start + q]) {
            *w *= p;
        }
        post.rescale();
        // The largest is now in [1, 2): every weight must stay a normal number well above 0.
        if post.weights.iter().any(|&w| w < FLOOR || w.is_nan()) {
            *post = RunningPosterior::default();
            return false;
        }
        post.answers += 1;
        true
    }

    /// The EAP of the answers `post` holds (`answers`: those answers, for a posterior narrower than
    /// the grid, which is refined as in [`EapTable::eap`]); equal to `eap`'s to about 10⁻¹⁵.
    pub fn running_eap(&self, post: &RunningPosterior, answers: &[Answer]) -> Estimate {
        debug_assert_eq!(post.answers, answers.len());
        let e = weighted_moments(self.grid.points(), &post.weights);
        match self.resolved(answers, &post.weights, e) {
            Ok(e) | Err((_, e)) => e,
        }
    }

    /// The EAP, or the error with the moments on the finest grid tried.
    fn eap_or_finest(
        &self,
        answers: &[Answer],
        buf: &mut Vec<f64>,
    ) -> Result<Estimate, (EstimationError, Estimate)> {
        buf.clear();
        buf.extend_from_slice(self.grid.log_weights());
        self.add_rows(buf, answers);
        let e = posterior_moments(self.grid.points(), buf);
        self.resolved(answers, buf, e)
    }

    /// Whether the grid resolves a posterior of these moments for certain: its SD is at least half of
    /// every spacing (the fast path of [`EapTable::try_eap`]; below it, [`EapTable::refine`] decides).
    #[inline]
    fn resolves(&self, e: &Estimate) -> bool {
        e.se >= 0.5 * self.max_spacing
    }

    /// The grid's moments `e` of `answers` (whose posterior `weights` are), or, for a posterior the
    /// grid may not resolve, [`EapTable::refine`]'s.
    #[inline]
    fn resolved(
        &self,
        answers: &[Answer],
        weights: &[f64],
        e: Estimate,
    ) -> Result<Estimate, (EstimationError, Estimate)> {
        if self.resolves(&e) {
            return Ok(e);
        }
        self.refine(answers, weights, e)
    }

    /// The refinement of [`EapTable::try_eap`]; `weights` are the posterior weights on the table's grid
    /// (1 at the mode) and `coarse` their moments.
    #[cold]
    fn refine(
        &self,
        answers: &[Answer],
        weights: &[f64],
        coarse: Estimate,
    ) -> Result<Estimate, (EstimationError, Estimate)> {
        let points = self.grid.points();
        let n = points.len();
        let mode = largest(weights).1;
        let local = match mode {
            0 => points[1] - points[0],
            m if m + 1 == n => points[n - 1] - points[n - 2],
            m => (points[m] - points[m - 1]).max(points[m + 1] - points[m]),
        };
        if coarse.se >= 0.5 * local {
            return Ok(coarse);
        }
        let (range_lo, range_hi) = (points[0], points[n - 1]);
        let (i0, i1) = support(weights);
        let (mut x0, mut x1) = (points[i0], points[i1]);
        let prior = self.grid.prior();
        let mut t = [0.0; REFINE_POINTS];
        let mut w = [0.0; REFINE_POINTS];
        let mut finest = (local, coarse);
        for _ in 0..REFINE_DEPTH {
            let h = (x1 - x0) / (REFINE_POINTS - 1) as f64;
            // Points closer than a few units in the last place are no longer distinct.
            if h <= 4.0 * f64::EPSILON * x0.abs().max(x1.abs()) {
                break;
            }
            for (q, (tq, wq)) in t.iter_mut().zip(w.iter_mut()).enumerate() {
                *tq = if q + 1 == REFINE_POINTS {
                    x1
                } else {
                    x0 + h * q as f64
                };
                let edge = if q == 0 || q + 1 == REFINE_POINTS {
                    std::f64::consts::LN_2
                } else {
                    0.0
                };
                *wq = prior.log_density(*tq) - edge
                    + answers
                        .iter()
                        .map(|a| self.models[a.item as usize].log_prob(*tq, a.category as usize))
                        .sum::<f64>();
            }
            // Piled against an end of the range: the density (the end weight is halved) does not fall
            // from that end to its neighbour, so the mode lies at or beyond the end. Read on the log
            // posterior (the moments set weights far below the mode to 0, and 0 ≥ 0).
            let last = REFINE_POINTS - 1;
            let piled = (x0 == range_lo && w[0] + std::f64::consts::LN_2 >= w[1])
                || (x1 == range_hi && w[last] + std::f64::consts::LN_2 >= w[last - 1]);
            let e = posterior_moments(&t, &mut w);
            finest = (h, e);
            if e.se >= 2.0 * h {
                return Ok(Estimate {
                    kind: EstimateKind::from_bounded(piled),
                    ..e
                });
            }
            let (j0, j1) = support(&w);
            if j0 == 0 && j1 + 1 == REFINE_POINTS {
                break;
            }
            (x0, x1) = (t[j0], t[j1]);
        }
        let (spacing, e) = finest;
        Err((EstimationError::GridTooCoarse { spacing, sd: e.se }, e))
    }
}

/// Mark the items of `answers` on the bitmap `seen` (cleared and sized for `n_items` items first);
/// true if an item comes twice.
fn mark_items(seen: &mut Vec<u64>, n_items: usize, answers: &[Answer]) -> bool {
    seen.clear();
    seen.resize(n_items.div_ceil(64), 0);
    let mut repeated = false;
    for a in answers {
        let j = a.item as usize;
        let bit = 1u64 << (j % 64);
        repeated |= seen[j / 64] & bit != 0;
        seen[j / 64] |= bit;
    }
    repeated
}

/// The index range of the weights above [`NEGLIGIBLE`] × the largest, widened by one on each side
/// (within the slice).
fn support(weights: &[f64]) -> (usize, usize) {
    let max = weights.iter().copied().fold(0.0, f64::max);
    let cut = max * NEGLIGIBLE;
    let first = weights.iter().position(|&w| w >= cut).unwrap_or(0);
    let last = weights
        .iter()
        .rposition(|&w| w >= cut)
        .unwrap_or(weights.len() - 1);
    (first.saturating_sub(1), (last + 1).min(weights.len() - 1))
}

/// Log weights this far below the largest are left out of [`posterior_moments`]: each weight left
/// out is below e^−45 ≈ 2.9·10⁻²⁰ of the largest (which is 1), so even a thousand of them change the
/// sums by less than 3·10⁻¹⁷ relative, under a quarter of an ulp.
const WINDOW_LOG: f64 = 45.0;

/// Posterior mean and SD from unnormalised log posterior values on `points`, which are overwritten
/// by the weights exp(log π_q − max) (0 outside the window below):
///
///   θ̂ = Σ_q w_q θ_q / Σ_q w_q,   SE² = Σ_q w_q (θ_q − θ̂)² / Σ_q w_q
///
/// (Bock & Mislevy 1982; mirt's and catR's EAP on the same grid). Only the window of points whose
/// log posterior is within [`WINDOW_LOG`] of the largest is exponentiated (the points outside get
/// weight 0): for a person with 100 answers that is about half of a 61-point grid. The sums are
/// [`weighted_moments`]'. The previous form (every point, two passes) gave the same numbers to within
/// about 10⁻¹⁵; stored sessions, replayed to 10⁻⁹, are unaffected.
pub fn posterior_moments(points: &[f64], log_post: &mut [f64]) -> Estimate {
    let (max, mode) = largest(log_post);
    let cut = max - WINDOW_LOG;
    let lo = log_post.iter().position(|&l| l >= cut).unwrap_or(mode);
    let hi = log_post.iter().rposition(|&l| l >= cut).unwrap_or(mode);
    for l in &mut log_post[lo..=hi] {
        *l = (*l - max).exp();
    }
    log_post[..lo].fill(0.0);
    log_post[hi + 1..].fill(0.0);
    weighted_moments(&points[lo..=hi], &log_post[lo..=hi])
}

/// The largest value (NaNs ignored; −∞ if none) and its first index (0 if none), the maximum taken
/// in four lanes so that the loop vectorises.
fn largest(values: &[f64]) -> (f64, usize) {
    const LANES: usize = 4;
    let mut lanes = [f64::NEG_INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            lanes[k] = if c[k] > lanes[k] { c[k] } else { lanes[k] };
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    (max, values.iter().position(|&v| v == max).unwrap_or(0))
}

/// Mean and SD of the points under (unnormalised, non-negative) `weights`, in one pass: with
/// d_q = θ_q − θ_m about the grid mode θ_m, θ̂ = θ_m + Σw d/Σw and SE² = Σw d²/Σw − (Σw d/Σw)². The
/// mean lies within about a spacing of the mode, so the subtraction loses no more than a few bits
/// when SE ≥ half a spacing (below that, the EAP refines its grid). The sums run in four independent
/// lanes.
fn weighted_moments(points: &[f64], weights: &[f64]) -> Estimate {
    const LANES: usize = 4;
    let centre = points[largest(weights).1];
    let (mut s0, mut s1, mut s2) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let mut w_chunks = weights.chunks_exact(LANES);
    let mut t_chunks = points.chunks_exact(LANES);
    for (w, t) in (&mut w_chunks).zip(&mut t_chunks) {
        for k in 0..LANES {
            let d = t[k] - centre;
            s0[k] += w[k];
            s1[k] += w[k] * d;
            s2[k] += w[k] * d * d;
        }
    }
    for (w, t) in w_chunks.remainder().iter().zip(t_chunks.remainder()) {
        let d = t - centre;
        s0[0] += w;
        s1[0] += w * d;
        s2[0] += w * d * d;
    }
    let (s0, s1, s2) = (
        s0.iter().sum::<f64>(),
        s1.iter().sum::<f64>(),
        s2.iter().sum::<f64>(),
    );
    moments_about(centre, s0, s1, s2)
}

/// Mean and SD from the sums Σw, Σw d, Σw d² of the deviations d = θ − `centre`.
fn moments_about(centre: f64, s0: f64, s1: f64, s2: f64) -> Estimate {
    let shift = s1 / s0;
    Estimate {
        theta: centre + shift,
        se: (s2 / s0 - shift * shift).max(0.0).sqrt(),
        kind: EstimateKind::Finite,
    }
}

/// The posterior weights of a growing set of answers on an [`EapTable`]'s grid, in linear scale:
///
///   w_q ∝ π(θ_q) Π_j P_{j,x_j}(θ_q),
///
/// updated by one multiplication per grid point for each new answer ([`EapTable::multiply`]) where
/// [`EapTable::eap`] sums every answer's log-probabilities again and exponentiates: what an adaptive
/// test needs at each step. After each answer the weights are scaled by a power of two (exactly) so
/// that the largest lies in [1, 2): the weights are the same bits whether built answer by answer or
/// all at once from a saved history. The EAP agrees with [`EapTable::eap`] to about 10⁻¹⁵.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningPosterior {
    weights: Vec<f64>,
    answers: usize,
}

impl RunningPosterior {
    /// How many answers the weights hold (0 for the prior; also 0 for an empty posterior, which
    /// [`RunningPosterior::is_started`] tells apart).
    pub fn answers(&self) -> usize {
        self.answers
    }
    /// Whether this posterior has been started ([`EapTable::start_posterior`]).
    pub fn is_started(&self) -> bool {
        !self.weights.is_empty()
    }
    /// The weights, largest in [1, 2).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// Scale the weights by the power of two that brings the largest into [1, 2) (exact: only
    /// exponents change, none of the weights being subnormal after the scaling).
    fn rescale(&mut self) {
        let (max, _) = largest(&self.weights);
        if !(max.is_finite() && max > 0.0) {
            return;
        }
        // max = m·2^e with m in [1, 2): multiply by 2^(−e), built from its exponent bits.
        let e = ((max.to_bits() >> 52) & 0x7ff) as i64 - 1023;
        if e == 0 || !(-1021..=1022).contains(&e) {
            return;
        }
        let scale = f64::from_bits(((1023 - e) as u64) << 52);
        self.weights.iter_mut().for_each(|w| *w *= scale);
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
        self.add_all(table, std::slice::from_ref(&answer));
    }
    /// Add (checked) answers in order: the same numbers as adding them one at a time, faster
    /// ([`EapTable::add_rows`]).
    pub fn add_all(&mut self, table: &EapTable, answers: &[Answer]) {
        table.add_rows(&mut self.log_density, answers);
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
    /// Posterior mean and SD on the grid — without the refinement of [`EapTable::try_eap`] (no item
    /// models at hand here): equal to the table's EAP whenever the grid resolves the posterior.
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
/// bisection. `f(θ)` returns (g, slope estimate). Returns the root and whether it sits on a bound
/// because the root lies at or beyond it (g keeps its outward sign, or vanishes, up to the bound).
///
/// Fails instead of returning a number the data do not support:
/// * g is NaN at the start, or the root lies next to a point where g is NaN
///   ([`UnscorableReason::UndefinedScore`]); a NaN met elsewhere only makes the search back off towards
///   the last point with a sign;
/// * g is exactly 0 where its slope is not negative and it does not change sign around it: the
///   function is flat there, every term underflowed ([`UnscorableReason::FlatLikelihood`]);
/// * no convergence in 400 steps ([`UnscorableReason::NoConvergence`]; does not happen: after 200
///   steps the search bisects).
fn bracketed_root(
    mut f: impl FnMut(f64) -> (f64, f64),
    lo: f64,
    hi: f64,
    start: f64,
) -> Result<(f64, bool), UnscorableReason> {
    let (mut lo, mut hi) = (lo, hi);
    let (lo0, hi0) = (lo, hi);
    // Whether a side of the bracket comes from a NaN evaluation (its sign assumed, not seen).
    let (mut lo_undefined, mut hi_undefined) = (false, false);
    let mut last_signed: Option<f64> = None;
    let mut theta = if start.is_nan() {
        0.5 * (lo + hi)
    } else {
        start.clamp(lo, hi)
    };
    let mut converged = false;
    // Newton steps for 200 iterations (WLE's slope is only approximate, so they may converge only
    // linearly), then pure bisection of the bracket, which converges in < 100 more.
    for iteration in 0..400 {
        let (g, h) = f(theta);
        let next = if g.is_nan() {
            // Back off towards the last point with a sign: θ lies inside (lo, hi), of which that point
            // is one end.
            let Some(prev) = last_signed else {
                return Err(UnscorableReason::UndefinedScore { theta });
            };
            if theta > prev {
                hi = theta;
                hi_undefined = true;
            } else {
                lo = theta;
                lo_undefined = true;
            }
            0.5 * (lo + hi)
        } else {
            last_signed = Some(theta);
            if g == 0.0 {
                if h < 0.0 || changes_sign(&mut f, theta) {
                    return Ok((theta, false));
                }
                return Err(UnscorableReason::FlatLikelihood { theta });
            }
            if g > 0.0 {
                lo = theta;
                lo_undefined = false;
            } else {
                hi = theta;
                hi_undefined = false;
            }
            let newton = theta - g / h;
            if iteration < 200 && h < 0.0 && newton > lo && newton < hi {
                newton
            } else {
                0.5 * (lo + hi)
            }
        };
        if (next - theta).abs() < 1e-11 || hi - lo < 1e-11 {
            theta = next;
            converged = true;
            break;
        }
        theta = next;
    }
    if !converged {
        return Err(UnscorableReason::NoConvergence { lower: lo, upper: hi });
    }
    if lo_undefined || hi_undefined {
        return Err(UnscorableReason::UndefinedScore { theta });
    }
    let at_bound = (theta - lo0).abs() < 1e-8 || (theta - hi0).abs() < 1e-8;
    if at_bound {
        // The root lies at or beyond the bound only if g keeps its sign there.
        let b = if (theta - lo0).abs() < 1e-8 { lo0 } else { hi0 };
        let (g, _) = f(b);
        if g.is_nan() {
            return Err(UnscorableReason::UndefinedScore { theta: b });
        }
        let beyond = if b == lo0 { g <= 0.0 } else { g >= 0.0 };
        if beyond {
            return Ok((b, true));
        }
    }
    Ok((theta, false))
}

/// Whether g changes sign from + to − across θ (a root where g happens to be exactly 0 while its slope
/// estimate is not negative), rather than vanishing on a whole stretch.
#[cold]
fn changes_sign(f: &mut impl FnMut(f64) -> (f64, f64), theta: f64) -> bool {
    let eps = 1e-6 * theta.abs().max(1.0);
    f(theta - eps).0 > 0.0 && f(theta + eps).0 < 0.0
}

/// Whether every answer is in the category its item gives the lowest persons (`Some(false)`: the
/// likelihood grows without bound as θ → −∞) or the highest (`Some(true)`): the lowest category and
/// the highest, exchanged for an item that discriminates negatively (a < 0).
pub fn extreme_pattern(models: &[ItemModel], answers: &[Answer]) -> Option<bool> {
    let ends = |a: &Answer| {
        let m = &models[a.item as usize];
        let (lowest, highest) = (a.category == 0, a.category as usize + 1 == m.categories());
        if m.slope() < 0.0 {
            (highest, lowest)
        } else {
            (lowest, highest)
        }
    };
    let low = answers.iter().all(|a| ends(a).0);
    let high = answers.iter().all(|a| ends(a).1);
    match (low, high) {
        (true, _) if !answers.is_empty() => Some(false),
        (_, true) if !answers.is_empty() => Some(true),
        _ => None,
    }
}

/// MAP: mode of the posterior, SE from the observed posterior information. Never fails for valid item
/// models (the prior keeps the log posterior's slope finite and strictly decreasing in its tails); see
/// [`try_map`], which reports the impossible failure instead of the NaN estimate returned here.
pub fn map(
    models: &[ItemModel],
    answers: &[Answer],
    prior: Prior,
    bounds: (f64, f64),
    start: f64,
) -> Estimate {
    try_map(models, answers, prior, bounds, start).unwrap_or(Estimate {
        theta: f64::NAN,
        se: f64::NAN,
        kind: EstimateKind::Finite,
    })
}

/// MAP as [`map`], with an error if the mode cannot be found.
pub fn try_map(
    models: &[ItemModel],
    answers: &[Answer],
    prior: Prior,
    bounds: (f64, f64),
    start: f64,
) -> Result<Estimate, EstimationError> {
    let prec = 1.0 / (prior.sd * prior.sd);
    let (theta, bounded) = bracketed_root(
        |t| {
            let (g, h) = score_sums(models, answers, t);
            (g - (t - prior.mean) * prec, h - prec)
        },
        bounds.0,
        bounds.1,
        start,
    )
    .map_err(unscorable(Method::Map))?;
    let (_, h) = score_sums(models, answers, theta);
    Ok(Estimate {
        theta,
        se: 1.0 / (prec - h).sqrt(),
        kind: EstimateKind::from_bounded(bounded),
    })
}

/// ML: maximum of the likelihood, SE = 1/√I(θ̂); ±∞ for extreme patterns. An interior maximum with
/// zero test information (a numerically flat likelihood, e.g. a Guttman pattern on items of slope 10⁶,
/// where every θ between two difficulties fits equally) is [`EstimationError::Unscorable`]; a bounded
/// one keeps its SE at the bound (infinite when the information underflows there).
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
    // With lower or upper asymptotes the likelihood can have several local maxima (and rise again
    // towards a bound): the estimate is then its maximum over the range, found by a scan; otherwise
    // the log-likelihood is concave and the safeguarded Newton search from `start` finds it.
    let (theta, bounded) = if may_be_multimodal(models, answers) {
        global_ml(models, answers, bounds)
    } else {
        bracketed_root(|t| score_sums(models, answers, t), bounds.0, bounds.1, start)
    }
    .map_err(unscorable(Method::Ml))?;
    let se = 1.0 / test_information(models, answers, theta).sqrt();
    if !bounded && !se.is_finite() {
        return Err(unscorable(Method::Ml)(UnscorableReason::FlatLikelihood { theta }));
    }
    Ok(Estimate {
        theta,
        se,
        kind: EstimateKind::from_bounded(bounded),
    })
}

/// Log-likelihood Σ log P(x | θ).
fn log_likelihood(models: &[ItemModel], answers: &[Answer], theta: f64) -> f64 {
    answers
        .iter()
        .map(|a| models[a.item as usize].log_prob(theta, a.category as usize))
        .sum()
}

/// Whether the log-likelihood of these answers can have several local maxima: only items with a lower
/// or upper asymptote (3PL, 4PL) make it non-concave; Rasch, 2PL, graded and GPCM log-likelihoods are
/// concave in θ.
fn may_be_multimodal(models: &[ItemModel], answers: &[Answer]) -> bool {
    answers.iter().any(|a| {
        models[a.item as usize]
            .logistic()
            .is_some_and(|l| l.c() > 0.0 || l.d() < 1.0)
    })
}

/// Points of the scan for the global maximum of a possibly multimodal likelihood.
const ML_SCAN_POINTS: usize = 41;

/// The maximum of the log-likelihood over `[lo, hi]` when it may be multimodal. The score is
/// evaluated on a fixed grid of [`ML_SCAN_POINTS`]; every bracket where it turns from + to − holds a
/// local maximum, refined by the safeguarded Newton search inside it, and a bound towards which the
/// score still points is a candidate too. The candidate with the highest log-likelihood wins (ties to
/// the lower θ). The grid does not depend on the answers' order, so neither does the estimate (the root
/// finder alone, started from the EAP, could meet either maximum depending on rounding).
fn global_ml(
    models: &[ItemModel],
    answers: &[Answer],
    (lo, hi): (f64, f64),
) -> Result<(f64, bool), UnscorableReason> {
    let n = ML_SCAN_POINTS;
    let at = |i: usize| lo + (hi - lo) * i as f64 / (n - 1) as f64;
    let g: Vec<f64> = (0..n).map(|i| score_sums(models, answers, at(i)).0).collect();
    let mut candidates: Vec<(f64, bool)> = Vec::new();
    if g[0] < 0.0 {
        candidates.push((lo, true));
    }
    if g[n - 1] > 0.0 {
        candidates.push((hi, true));
    }
    for i in 0..n - 1 {
        if g[i] >= 0.0 && g[i + 1] < 0.0 {
            let (a, b) = (at(i), at(i + 1));
            let (theta, _) = bracketed_root(|t| score_sums(models, answers, t), a, b, 0.5 * (a + b))?;
            candidates.push((theta, false));
        }
    }
    let mut best: Option<(f64, bool, f64)> = None;
    for (theta, bounded) in candidates {
        let ll = log_likelihood(models, answers, theta);
        if best.is_none_or(|(_, _, b)| ll > b + 1e-9 * b.abs().max(1.0)) {
            best = Some((theta, bounded, ll));
        }
    }
    best.map(|(t, b, _)| (t, b))
        .ok_or(UnscorableReason::FlatLikelihood {
            theta: 0.5 * (lo + hi),
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
/// analytic weighted score; 1/√I(θ̂) if that curvature is not negative. Where the test information
/// underflows to 0 the weighted score is 0/0: if the root cannot be located away from such points, or
/// an interior root has an infinite SE, the result is [`EstimationError::Unscorable`] (never the bound
/// the bisection drifted to).
pub fn wle(
    models: &[ItemModel],
    answers: &[Answer],
    bounds: (f64, f64),
    start: f64,
) -> Result<Estimate, EstimationError> {
    if answers.is_empty() {
        return Err(EstimationError::NoAnswers(Method::Wle));
    }
    let (theta, bounded) = bracketed_root(|t| warm_score(models, answers, t), bounds.0, bounds.1, start)
        .map_err(unscorable(Method::Wle))?;
    let h = 1e-4;
    let slope =
        (warm_score(models, answers, theta + h).0 - warm_score(models, answers, theta - h).0) / (2.0 * h);
    let se = if slope < 0.0 {
        1.0 / (-slope).sqrt()
    } else {
        1.0 / test_information(models, answers, theta).sqrt()
    };
    if !bounded && !se.is_finite() {
        return Err(unscorable(Method::Wle)(UnscorableReason::FlatLikelihood {
            theta,
        }));
    }
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
    /// A person the method cannot score is an error ([`EstimationError::Unscorable`],
    /// [`EstimationError::GridTooCoarse`]), never a bound or another method's value.
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
            Method::Eap => self.table.try_eap(answers, buf),
            Method::Map => {
                let start = self.table.eap(answers, buf).theta;
                try_map(&self.models, answers, self.config.prior, (lo, hi), start)
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
    /// EAP goes by the weighted score ([`EapTable::eap_by_score`]): the same posterior as
    /// [`Estimator::estimate`]'s, within rounding (about 1e-13), and several times faster on
    /// Rasch, 2PL and GPCM banks.
    pub fn estimate_many(
        &self,
        n: usize,
        fill: impl Fn(usize, &mut Vec<Answer>) + Sync,
    ) -> Vec<Result<Estimate, EstimationError>> {
        self.estimate_all(n, fill, true)
    }

    /// As [`Estimator::estimate_many`], for answers known to be valid — every one to an item of the
    /// bank, in one of its categories, as [`check_answers`] requires — e.g. because they are drawn
    /// from a table of answers checked once: each person's answers are then not checked again one by
    /// one. An invalid answer is a logic error (it panics or gives a meaningless estimate).
    pub fn estimate_many_checked(
        &self,
        n: usize,
        fill: impl Fn(usize, &mut Vec<Answer>) + Sync,
    ) -> Vec<Result<Estimate, EstimationError>> {
        self.estimate_all(n, fill, false)
    }

    /// As [`Estimator::estimate_many_checked`], for the rows of a response matrix: `cells` row-major,
    /// `width` cells (columns) a row, the category c of column j being the answer
    /// `answers[j * stride + c]` (checked, as [`check_answers`] requires) and any category of
    /// `stride` or more a missing cell. The same results as `estimate_many_checked` given each row's
    /// answers in column order, bit for bit; for EAP on a [`RowForm`] ([`EapTable::row_form`]), rows
    /// without a missing cell are scored from their weighted score without making their answers.
    ///
    /// # Panics
    /// If `width` is 0, `cells` is not whole rows or `answers` does not hold `stride` answers per
    /// column.
    pub fn estimate_rows(
        &self,
        cells: &[u8],
        width: usize,
        answers: &[Answer],
        stride: usize,
    ) -> Vec<Result<Estimate, EstimationError>> {
        assert!(width > 0 && cells.len().is_multiple_of(width) && answers.len() == width * stride);
        let form = match self.config.method {
            Method::Eap => self.table.row_form(answers, stride),
            _ => None,
        };
        let row = |p: usize| &cells[p * width..(p + 1) * width];
        let fill = |p: usize, out: &mut Vec<Answer>| {
            for (j, &c) in row(p).iter().enumerate() {
                if usize::from(c) < stride {
                    out.push(answers[j * stride + usize::from(c)]);
                }
            }
        };
        let n = cells.len() / width;
        let Some(form) = form else {
            return self.estimate_all(n, fill, false);
        };
        each_person(n, |(list, scratch), p| {
            match self.table.eap_of_row(&form, row(p)) {
                Some(e) => Ok(e),
                None => {
                    list.clear();
                    fill(p, list);
                    self.table.eap_by_score(list, scratch)
                }
            }
        })
    }

    /// [`Estimator::estimate_many`], checking each person's answers when `check` is set.
    fn estimate_all(
        &self,
        n: usize,
        fill: impl Fn(usize, &mut Vec<Answer>) + Sync,
        check: bool,
    ) -> Vec<Result<Estimate, EstimationError>> {
        each_person(n, |(answers, scratch), p| {
            answers.clear();
            fill(p, answers);
            if check {
                check_answers(&self.models, answers)?;
            } else {
                debug_assert_eq!(check_answers(&self.models, answers), Ok(()));
            }
            match self.config.method {
                Method::Eap => self.table.eap_by_score(answers, scratch),
                _ => self.estimate_checked(answers, &mut scratch.log_post),
            }
        })
    }
}

/// `f(scratch, p)` for p = 0 … n − 1, in parallel (rayon) with one scratch space per worker, the
/// results in person order.
fn each_person<R: Send>(
    n: usize,
    f: impl Fn(&mut (Vec<Answer>, ScoreScratch), usize) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "parallel")]
    use rayon::prelude::*;
    #[cfg(feature = "parallel")]
    let persons = (0..n).into_par_iter();
    #[cfg(not(feature = "parallel"))]
    let persons = crate::serial::MapInit((0..n).into_iter());
    persons
        .map_init(|| (Vec::new(), ScoreScratch::default()), f)
        .collect()
}
