//! Marginal maximum likelihood by EM (Bock & Aitkin 1981), with Bayes modal priors (Mislevy 1986).
//!
//! Each cycle: tabulate log P_jk(θ_q) for every item (in parallel), run the E-step
//! ([`crate::estep`]), then maximise Σ_q Σ_k r_jkq log P_jk(θ_q) + log prior(φ_j) for each item
//! independently (in parallel) by Fisher scoring with step halving; the shared 1PL slope is updated
//! after the intercepts; the latent variance (Rasch) or mean and variance (anchored calibration) are
//! updated from the expected counts at the quadrature points. Convergence: the largest change of any
//! parameter (slope–intercept form, logit asymptotes, latent variance) below the tolerance, as mirt's
//! `TOL`.

use crate::data::CalibData;
use crate::estep::{self, Expected, LogTable};
use crate::params::{ItemState, MAX_INTERCEPT, MAX_SLOPE, MIN_SLOPE};
use etalon_items::ModelKind;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A normal prior N(mean, sd²) on one parameter (lognormal for slopes: normal on log a).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormalPrior {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
}

/// Priors of Bayes modal estimation. The defaults: none on slopes and intercepts; logit g ~ N(-1.5, 1)
/// for 3PL and 4PL (mirt's customary guessing prior, without which 3PL does not converge on SAT12 or
/// ICAR16); logit u ~ N(1.5, 1) for 4PL.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Priors {
    /// log a ~ N(mean, sd²).
    pub slope: Option<NormalPrior>,
    /// d ~ N(mean, sd²) (intercepts, slope–intercept form).
    pub intercept: Option<NormalPrior>,
    /// logit g ~ N(mean, sd²).
    pub guessing: Option<NormalPrior>,
    /// logit u ~ N(mean, sd²).
    pub upper: Option<NormalPrior>,
}

impl Default for Priors {
    fn default() -> Self {
        Priors {
            slope: None,
            intercept: None,
            guessing: Some(NormalPrior { mean: -1.5, sd: 1.0 }),
            upper: Some(NormalPrior { mean: 1.5, sd: 1.0 }),
        }
    }
}

/// EM settings (mirt's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmConfig {
    /// Number of equally spaced quadrature points on [-6, 6].
    pub quadrature: usize,
    /// Largest parameter change that counts as converged.
    pub tol: f64,
    /// Maximum number of EM cycles.
    pub max_cycles: usize,
    /// Priors.
    pub priors: Priors,
}

impl Default for EmConfig {
    fn default() -> Self {
        EmConfig {
            quadrature: 61,
            tol: 1e-4,
            max_cycles: 500,
            priors: Priors::default(),
        }
    }
}

/// Latent distribution N(mean, variance) evaluated on the fixed grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latent {
    /// Mean (0 unless anchored).
    pub mean: f64,
    /// Variance (1 unless Rasch or anchored).
    pub variance: f64,
}

/// The EM state that the standard-error and fit code reuse.
#[derive(Debug, Clone)]
pub struct Model {
    /// Quadrature points.
    pub theta: Vec<f64>,
    /// Item states, data order.
    pub items: Vec<ItemState>,
    /// Latent distribution.
    pub latent: Latent,
    /// Estimate the latent variance (Rasch).
    pub free_variance: bool,
    /// Estimate the latent mean too (anchored calibration).
    pub free_mean: bool,
    /// Priors.
    pub priors: Priors,
}

impl Model {
    /// log π_q of N(mean, variance) on the grid, normalised to Σ π_q = 1.
    pub fn log_prior(&self) -> Vec<f64> {
        let l: Vec<f64> = self
            .theta
            .iter()
            .map(|t| -0.5 * (t - self.latent.mean).powi(2) / self.latent.variance)
            .collect();
        let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let norm = l.iter().map(|x| (x - max).exp()).sum::<f64>().ln() + max;
        l.iter().map(|x| x - norm).collect()
    }

    /// Tabulate log P_jk(θ_q) with the items' IRT kernel ([`ItemState::log_probabilities`]).
    pub fn table(&self) -> LogTable {
        let q = self.theta.len();
        let mut offsets = Vec::with_capacity(self.items.len() + 1);
        let mut total = 0;
        for it in &self.items {
            offsets.push(total);
            total += it.categories() * q;
        }
        offsets.push(total);
        let rows: Vec<Vec<f64>> = self
            .items
            .par_iter()
            .map(|it| it.log_probabilities(&self.theta))
            .collect();
        LogTable {
            offsets,
            values: rows.concat(),
            q,
        }
    }

    /// E-step at the current parameters.
    pub fn e_step(&self, data: &CalibData) -> Expected {
        estep::e_step(data, &self.table(), &self.log_prior(), &estep::Workspace::empty())
    }

    /// Number of estimated parameters (items, shared slope, latent moments).
    pub fn n_parameters(&self) -> usize {
        let items = crate::params::n_free_items(&self.items);
        let shared = usize::from(self.items.iter().any(|i| i.kind == ModelKind::OnePl && !i.fixed));
        items + shared + usize::from(self.free_variance) + usize::from(self.free_mean)
    }
}

/// Log prior density of an item's free parameters, with gradient and (positive) curvature added into
/// `grad` and `info`.
pub fn add_prior(st: &ItemState, priors: &Priors, grad: Option<&mut [f64]>, info: Option<&mut [f64]>) -> f64 {
    let n = st.n_free();
    let names = st.free_names();
    let mut lp = 0.0;
    let mut g = vec![0.0; n];
    let mut h = vec![0.0; n];
    let v = st.free();
    for (i, name) in names.iter().enumerate() {
        let x = v[i];
        match name.as_str() {
            "a" => {
                if let Some(p) = priors.slope {
                    // log a ~ N(μ, σ²): log density -ln a - (ln a - μ)²/(2σ²).
                    let z = x.max(MIN_SLOPE).ln() - p.mean;
                    let s2 = p.sd * p.sd;
                    lp += -x.ln() - z * z / (2.0 * s2);
                    g[i] = -1.0 / x - z / (s2 * x);
                    h[i] = ((1.0 - z) / s2 - 1.0).max(0.0) / (x * x) + 1.0 / (s2 * x * x);
                }
            }
            "logit_g" | "logit_u" => {
                let prior = if name == "logit_g" {
                    priors.guessing
                } else {
                    priors.upper
                };
                if let Some(p) = prior {
                    let s2 = p.sd * p.sd;
                    lp += -(x - p.mean).powi(2) / (2.0 * s2);
                    g[i] = -(x - p.mean) / s2;
                    h[i] = 1.0 / s2;
                }
            }
            _ => {
                if let Some(p) = priors.intercept {
                    let s2 = p.sd * p.sd;
                    lp += -(x - p.mean).powi(2) / (2.0 * s2);
                    g[i] = -(x - p.mean) / s2;
                    h[i] = 1.0 / s2;
                }
            }
        }
    }
    if let Some(grad) = grad {
        grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
    }
    if let Some(info) = info {
        for i in 0..n {
            info[i * n + i] += h[i];
        }
    }
    lp
}

/// Expected complete-data log-likelihood of one item (plus its log prior), and optionally its gradient
/// and Fisher information in the free parameters. `r` holds r_kq (category-major).
pub fn item_objective(
    st: &ItemState,
    r: &[f64],
    theta: &[f64],
    priors: &Priors,
    mut grad: Option<&mut [f64]>,
    mut info: Option<&mut [f64]>,
) -> f64 {
    let k = st.categories();
    let n = st.n_free();
    let q = theta.len();
    let mut p = vec![0.0; k];
    let mut dp = vec![0.0; k * n];
    let want = grad.is_some() || info.is_some();
    if let Some(g) = grad.as_deref_mut() {
        g.iter_mut().for_each(|x| *x = 0.0);
    }
    if let Some(h) = info.as_deref_mut() {
        h.iter_mut().for_each(|x| *x = 0.0);
    }
    let mut f = 0.0;
    for (qq, &t) in theta.iter().enumerate() {
        st.probs_and_grads(t, &mut p, want.then_some(&mut dp[..]), false);
        let nq: f64 = (0..k).map(|c| r[c * q + qq]).sum();
        for c in 0..k {
            let rc = r[c * q + qq];
            let pc = p[c].max(1e-300);
            f += rc * pc.ln();
            if !want {
                continue;
            }
            let row = &dp[c * n..(c + 1) * n];
            if let Some(g) = grad.as_deref_mut() {
                let w = rc / pc;
                g.iter_mut().zip(row).for_each(|(a, b)| *a += w * b);
            }
            if let Some(h) = info.as_deref_mut() {
                let w = nq / pc;
                for i in 0..n {
                    for jj in 0..n {
                        h[i * n + jj] += w * row[i] * row[jj];
                    }
                }
            }
        }
    }
    f + add_prior(st, priors, grad, info)
}

/// Solve `info · x = grad` (Cholesky; a ridge if `info` is not positive definite).
fn newton_step(info: &[f64], grad: &[f64]) -> Vec<f64> {
    let n = grad.len();
    let g = DVector::from_column_slice(grad);
    let mut ridge = 0.0;
    for _ in 0..8 {
        let mut m = DMatrix::from_row_slice(n, n, info);
        for i in 0..n {
            m[(i, i)] += ridge + 1e-12;
        }
        if let Some(ch) = m.cholesky() {
            return ch.solve(&g).iter().copied().collect();
        }
        ridge = if ridge == 0.0 { 1e-6 } else { ridge * 100.0 };
    }
    grad.to_vec()
}

/// The M-step for one item: Fisher scoring with step halving, keeping the parameters admissible.
pub fn m_step_item(st: &ItemState, r: &[f64], theta: &[f64], priors: &Priors) -> ItemState {
    let n = st.n_free();
    let mut cur = st.clone();
    let mut grad = vec![0.0; n];
    let mut info = vec![0.0; n * n];
    let mut f = item_objective(&cur, r, theta, priors, Some(&mut grad), Some(&mut info));
    for _ in 0..50 {
        let step = newton_step(&info, &grad);
        let base = cur.free();
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let mut cand = cur.clone();
            let v: Vec<f64> = base.iter().zip(&step).map(|(x, s)| x + t * s).collect();
            cand.set_free(&v);
            clamp(&mut cand);
            if priors.slope.is_some() {
                // A lognormal prior keeps the slope positive.
                cand.a = cand.a.max(MIN_SLOPE);
            }
            if cand.admissible() {
                let fc = item_objective(&cand, r, theta, priors, None, None);
                if fc >= f - 1e-12 * f.abs().max(1.0) {
                    accepted = Some((cand, fc));
                    break;
                }
            }
            t *= 0.5;
        }
        let Some((cand, fc)) = accepted else { break };
        let moved = cand
            .free()
            .iter()
            .zip(&base)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        cur = cand;
        f = fc;
        if moved < 1e-10 {
            break;
        }
        f = item_objective(&cur, r, theta, priors, Some(&mut grad), Some(&mut info)).max(f);
    }
    cur
}

/// Keep parameters inside the box the bank can hold (finite; a > 0 where the model needs it).
fn clamp(st: &mut ItemState) {
    let (lo, hi) = st.slope_range();
    st.a = st.a.clamp(lo, hi);
    let lim = MAX_INTERCEPT * (1.0 + st.d.len() as f64);
    st.d.iter_mut().for_each(|d| *d = d.clamp(-lim, lim));
}

/// The shared slope of 1PL items: one Fisher-scoring step sequence with the intercepts fixed.
fn m_step_shared_slope(items: &mut [ItemState], r_of: impl Fn(usize) -> Vec<f64>, theta: &[f64]) {
    let idx: Vec<usize> = (0..items.len())
        .filter(|&j| items[j].kind == ModelKind::OnePl && !items[j].fixed)
        .collect();
    if idx.is_empty() {
        return;
    }
    let rs: Vec<Vec<f64>> = idx.iter().map(|&j| r_of(j)).collect();
    let q = theta.len();
    let objective = |items: &[ItemState], a: f64, want: bool| -> (f64, f64, f64) {
        let (mut f, mut g, mut h) = (0.0, 0.0, 0.0);
        let mut p = [0.0; 2];
        let mut dp = [0.0; 4];
        for (n, &j) in idx.iter().enumerate() {
            let mut st = items[j].clone();
            st.a = a;
            for (qq, &t) in theta.iter().enumerate() {
                st.probs_and_grads(t, &mut p, Some(&mut dp), true);
                let (r0, r1) = (rs[n][qq], rs[n][q + qq]);
                f += r0 * p[0].max(1e-300).ln() + r1 * p[1].max(1e-300).ln();
                if want {
                    let d1 = dp[3]; // ∂P1/∂a (slope column)
                    g += (r1 / p[1] - r0 / p[0]) * d1;
                    h += (r0 + r1) * d1 * d1 / (p[0] * p[1]);
                }
            }
        }
        (f, g, h)
    };
    let mut a = items[idx[0]].a;
    for _ in 0..50 {
        let (f, g, h) = objective(items, a, true);
        let step = if h > 0.0 { g / h } else { 0.0 };
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..40 {
            let cand = (a + t * step).clamp(MIN_SLOPE, MAX_SLOPE);
            if objective(items, cand, false).0 >= f - 1e-12 * f.abs() {
                moved = (cand - a).abs() > 1e-11;
                a = cand;
                break;
            }
            t *= 0.5;
        }
        if !moved {
            break;
        }
    }
    for &j in &idx {
        items[j].a = a;
    }
}

/// What one EM run ends with.
#[derive(Debug, Clone)]
pub struct EmOutcome {
    /// Whether an observer stopped the run before convergence.
    pub stopped: bool,
    /// The fitted model.
    pub model: Model,
    /// Log-likelihood at the final parameters.
    pub loglik: f64,
    /// Cycles used.
    pub cycles: usize,
    /// Whether the change fell below the tolerance.
    pub converged: bool,
    /// Largest parameter change of the last cycle.
    pub last_change: f64,
}

impl Model {
    /// All free parameters as one vector: items' free parameters (data order), the shared 1PL slope,
    /// the latent mean and variance when estimated.
    pub fn flatten(&self) -> Vec<f64> {
        let mut v = Vec::new();
        for it in self.items.iter().filter(|i| !i.fixed) {
            v.extend(it.free());
        }
        if let Some(it) = self.items.iter().find(|i| i.kind == ModelKind::OnePl && !i.fixed) {
            v.push(it.a);
        }
        if self.free_mean {
            v.push(self.latent.mean);
        }
        if self.free_variance {
            v.push(self.latent.variance);
        }
        v
    }

    /// Set the free parameters from [`Model::flatten`]'s layout.
    pub fn unflatten(&mut self, v: &[f64]) {
        let mut at = 0;
        for it in self.items.iter_mut().filter(|i| !i.fixed) {
            let n = it.n_free();
            it.set_free(&v[at..at + n]);
            at += n;
        }
        if self.items.iter().any(|i| i.kind == ModelKind::OnePl && !i.fixed) {
            let a = v[at];
            at += 1;
            self.items
                .iter_mut()
                .filter(|i| i.kind == ModelKind::OnePl && !i.fixed)
                .for_each(|i| i.a = a);
        }
        if self.free_mean {
            self.latent.mean = v[at];
            at += 1;
        }
        if self.free_variance {
            self.latent.variance = v[at];
        }
    }

    /// Whether every item and the latent variance are admissible (a slope under a lognormal prior
    /// stays positive).
    pub(crate) fn admissible(&self) -> bool {
        self.latent.variance > 1e-4
            && self.latent.variance.is_finite()
            && self.latent.mean.is_finite()
            && self.items.iter().all(ItemState::admissible)
            && (self.priors.slope.is_none() || self.items.iter().all(|st| st.fixed || st.a >= MIN_SLOPE))
    }
}

/// One EM cycle: E-step at `model` (its log-likelihood is returned) and M-step.
pub fn em_step(data: &CalibData, model: &Model, workspace: &estep::Workspace) -> (Model, f64) {
    let q = model.theta.len();
    let table = model.table();
    let expected = estep::e_step(data, &table, &model.log_prior(), workspace);
    let r_of = |j: usize| -> Vec<f64> {
        let s = table.offsets[j];
        expected.r[s..s + model.items[j].categories() * q].to_vec()
    };
    let mut items: Vec<ItemState> = model
        .items
        .par_iter()
        .enumerate()
        .map(|(j, st)| {
            if st.fixed {
                st.clone()
            } else {
                m_step_item(st, &r_of(j), &model.theta, &model.priors)
            }
        })
        .collect();
    m_step_shared_slope(&mut items, r_of, &model.theta);
    let mut next = Model {
        items,
        ..model.clone()
    };
    next.latent = model.updated_latent(&expected.n);
    (next, expected.loglik)
}

impl Model {
    /// The latent distribution's M-step from the expected number of persons n_q at each point: the
    /// mean Σ n_q θ_q / N when it is estimated, the variance Σ n_q (θ_q − μ)² / N when it is (at
    /// least 1e-4); the fixed moments stay.
    pub fn updated_latent(&self, n: &[f64]) -> Latent {
        if !(self.free_variance || self.free_mean) {
            return self.latent;
        }
        let total: f64 = n.iter().sum();
        let mean = if self.free_mean {
            n.iter().zip(&self.theta).map(|(n, t)| n * t).sum::<f64>() / total
        } else {
            self.latent.mean
        };
        let variance = if self.free_variance {
            let var = n
                .iter()
                .zip(&self.theta)
                .map(|(n, t)| n * (t - mean).powi(2))
                .sum::<f64>()
                / total;
            var.max(1e-4)
        } else {
            self.latent.variance
        };
        Latent { mean, variance }
    }
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// What the EM loop reports after every cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Cycles done.
    pub cycle: usize,
    /// Marginal log-likelihood (penalised by the priors) at the start of the cycle.
    pub loglik: f64,
    /// Largest parameter change of the cycle.
    pub change: f64,
}

/// Whether the EM loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop now and keep the parameters reached (cancelled, time limit).
    Stop,
}

/// Watches a calibration cycle by cycle and may stop it: a progress bar, a cancel button, a time
/// limit, Ctrl-C in Python. `()` watches nothing; any `FnMut(&Progress) -> Control` is an observer.
pub trait Observer {
    /// Called after every EM cycle.
    fn observe(&mut self, progress: &Progress) -> Control;
}

impl Observer for () {
    fn observe(&mut self, _: &Progress) -> Control {
        Control::Continue
    }
}

impl<F: FnMut(&Progress) -> Control> Observer for F {
    fn observe(&mut self, progress: &Progress) -> Control {
        self(progress)
    }
}

/// An observer that stops the run once a wall-clock budget is spent.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy)]
pub struct TimeLimit {
    deadline: std::time::Instant,
}

#[cfg(not(target_arch = "wasm32"))]
impl TimeLimit {
    /// Stop after `budget` from now.
    pub fn new(budget: std::time::Duration) -> Self {
        TimeLimit {
            deadline: std::time::Instant::now() + budget,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Observer for TimeLimit {
    fn observe(&mut self, _: &Progress) -> Control {
        if std::time::Instant::now() >= self.deadline {
            Control::Stop
        } else {
            Control::Continue
        }
    }
}

/// A point that EM moves through: its free parameters as one vector (the layout SQUAREM
/// extrapolates in) and whether a point is admissible. [`Model`] is one; a multiple-group model
/// ([`crate::groups`]) is another.
pub trait EmPoint: Clone {
    /// The free parameters.
    fn flatten(&self) -> Vec<f64>;
    /// Set the free parameters from [`EmPoint::flatten`]'s layout.
    fn unflatten(&mut self, v: &[f64]);
    /// Whether every parameter is inside the space the model can hold.
    fn admissible(&self) -> bool;
}

impl EmPoint for Model {
    fn flatten(&self) -> Vec<f64> {
        Model::flatten(self)
    }
    fn unflatten(&mut self, v: &[f64]) {
        Model::unflatten(self, v)
    }
    fn admissible(&self) -> bool {
        Model::admissible(self)
    }
}

/// Where an accelerated EM run ended.
#[derive(Debug, Clone)]
pub struct Accelerated<M> {
    /// The last point.
    pub model: M,
    /// EM steps taken.
    pub cycles: usize,
    /// Whether one plain EM step changed every parameter by less than the tolerance.
    pub converged: bool,
    /// Largest parameter change of the last step.
    pub last_change: f64,
    /// Whether the observer stopped the run first.
    pub stopped: bool,
}

/// EM from `model` until convergence, accelerated by SQUAREM (Varadhan & Roland 2008, scheme S3):
/// from φ0, two EM steps give φ1, φ2; with r = φ1 - φ0, v = φ2 - 2φ1 + φ0 and α = -‖r‖/‖v‖ (at most
/// -1), the extrapolation φ0 - 2αr + α²v is accepted (after one stabilising EM step) only if it is
/// admissible and its log-likelihood is at least that of φ2; otherwise the plain EM sequence goes on.
/// Convergence is judged on plain EM steps: the largest parameter change of one EM step below `tol`.
/// `step` is one EM cycle (the next point and the log-likelihood at the current one); `observer` sees
/// every step and may stop the run.
pub fn squarem<M: EmPoint>(
    mut model: M,
    config: &EmConfig,
    observer: &mut dyn Observer,
    mut step: impl FnMut(&M) -> (M, f64),
) -> Accelerated<M> {
    let mut cycles = 0usize;
    let mut converged = false;
    let mut last_change = f64::INFINITY;
    let mut stopped = false;
    let mut report = |cycle: usize, loglik: f64, change: f64| {
        observer.observe(&Progress {
            cycle,
            loglik,
            change,
        }) == Control::Stop
    };
    'outer: while cycles < config.max_cycles {
        // Two plain EM steps φ0 → φ1 → φ2; stop as soon as one of them changes less than the tolerance.
        let mut models = vec![model.clone()];
        let mut params = vec![model.flatten()];
        let mut logliks = Vec::with_capacity(2);
        for _ in 0..2 {
            cycles += 1;
            let (next, ll) = step(&models[models.len() - 1]);
            let p = next.flatten();
            last_change = max_abs_diff(&params[params.len() - 1], &p);
            stopped = report(cycles, ll, last_change);
            logliks.push(ll);
            if last_change < config.tol || cycles >= config.max_cycles || stopped {
                model = next;
                converged = last_change < config.tol;
                stopped &= !converged;
                break 'outer;
            }
            models.push(next);
            params.push(p);
        }
        let (p0, p1, p2) = (&params[0], &params[1], &params[2]);
        let ll1 = logliks[1];
        let m2 = models
            .pop()
            .unwrap_or_else(|| unreachable!("two steps were taken"));
        // Extrapolate.
        let r: Vec<f64> = p1.iter().zip(p0).map(|(a, b)| a - b).collect();
        let v: Vec<f64> = p2.iter().zip(p1).zip(&r).map(|((a, b), r)| a - b - r).collect();
        let (nr, nv) = (
            r.iter().map(|x| x * x).sum::<f64>().sqrt(),
            v.iter().map(|x| x * x).sum::<f64>().sqrt(),
        );
        let alpha = if nv > 0.0 { (-nr / nv).min(-1.0) } else { -1.0 };
        let ext: Vec<f64> = p0
            .iter()
            .zip(&r)
            .zip(&v)
            .map(|((p, r), v)| p - 2.0 * alpha * r + alpha * alpha * v)
            .collect();
        let mut candidate = m2.clone();
        candidate.unflatten(&ext);
        if alpha < -1.0 && candidate.admissible() {
            cycles += 1;
            let (m3, ll_ext) = step(&candidate);
            // ll_ext is the log-likelihood at the extrapolated point; φ2's is at least ll1.
            if ll_ext >= ll1 && m3.admissible() {
                last_change = max_abs_diff(&ext, &m3.flatten());
                model = m3;
                if report(cycles, ll_ext, last_change) {
                    stopped = true;
                    break;
                }
                continue;
            }
        }
        model = m2;
    }
    Accelerated {
        model,
        cycles,
        converged,
        last_change,
        stopped,
    }
}

/// Run EM from `model` until convergence, accelerated by SQUAREM ([`squarem`]).
pub fn run_em(data: &CalibData, model: Model, config: &EmConfig, observer: &mut dyn Observer) -> EmOutcome {
    let workspace = estep::Workspace::new(data, 256 << 20);
    let run = squarem(model, config, observer, |m| em_step(data, m, &workspace));
    let model = run.model;
    let loglik = estep::e_step(data, &model.table(), &model.log_prior(), &workspace).loglik;
    EmOutcome {
        stopped: run.stopped,
        model,
        loglik,
        cycles: run.cycles,
        converged: run.converged,
        last_change: run.last_change,
    }
}
