//! Multidimensional profiles: every competence estimated from every answer, through the latent
//! correlations a multidimensional bank records ([`etalon_items::Structure`]).
//!
//! **Scoring** ([`MultiModel::map`]): the posterior of θ = (θ_1 … θ_D) given the answers, with the
//! prior N(0, R), is maximised by Fisher scoring —
//!
//! ℓ(θ) = Σ_j log P_j(x_j | θ_{d(j)}) − ½ θᵀ R⁻¹ θ,  θ ← θ + (I(θ) + R⁻¹)⁻¹ ∇ℓ(θ),
//!
//! with I(θ) diagonal (between-item structure: item j informs only its dimension d(j)). The posterior
//! covariance is the inverse of the observed precision at the mode, −∇²ℓ (Laplace; the expected one
//! where a 3PL item makes the observed one indefinite). A competence without answers still moves:
//! its θ̂_k is the regression on the answered ones, E[θ_k | θ_l] = R_kl θ_l, and its SE shrinks below 1
//! by as much as the correlations allow.
//!
//! **Selection** (Segall 1996): the next item maximises the determinant of the posterior precision
//! after it, det(Λ + I_j(θ̂_k) e_k e_kᵀ) = det Λ · (1 + I_j(θ̂_k) C_kk), C = Λ⁻¹; that is, the item's
//! information times the posterior variance of its competence. The test goes where the profile is
//! least certain, and an item informs its competence in proportion to what is still unknown there.
//! Exposure (randomesque, PIX's weighted draw), one item per content tag, per-competence budgets and
//! classification stopping (a competence is done once its interval θ̂_k ± z·SE_k lies in one level
//! band) are those of the unidimensional tests.
//!
//! A [`MultiSession`] is a plain serde value, resumable after any answer; read from outside it is
//! verified by replaying it ([`MultiEngine::verify`]). Every random draw comes from the session's
//! seed and the answer's position: the same seed gives the same test, on any machine.

use crate::config::Exposure;
use crate::profile::CompetenceResult;
use crate::session::{Checked, Mismatch, Next, SessionError, StopReason, compare_f64};
use crate::simulate::derive_seed;
use etalon_items::levels::Levels;
use etalon_items::{Bank, ItemModel, ResponseFunction, Spd, Status};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A bank's items with their dimension, and the prior N(0, R).
#[derive(Debug, Clone)]
pub struct MultiModel {
    dimensions: Vec<String>,
    models: Vec<ItemModel>,
    dim: Vec<usize>,
    /// R⁻¹, row-major.
    precision: Vec<f64>,
    correlations: Vec<f64>,
}

/// A posterior by its mode and covariance (Laplace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiEstimate {
    /// θ̂ per dimension.
    pub theta: Vec<f64>,
    /// Posterior covariance, row-major D × D.
    pub covariance: Vec<f64>,
}

impl MultiEstimate {
    /// SE of dimension k: √C_kk.
    pub fn se(&self, k: usize) -> f64 {
        self.covariance[k * self.theta.len() + k].sqrt()
    }

    /// The general level: the mean of the competences, θ̄ = 1ᵀθ̂ / D, and its SE √(1ᵀC1) / D.
    pub fn general(&self) -> (f64, f64) {
        let d = self.theta.len() as f64;
        (
            self.theta.iter().sum::<f64>() / d,
            self.covariance.iter().sum::<f64>().max(0.0).sqrt() / d,
        )
    }
}

/// Most nodes of a multidimensional EAP ([`MultiModel::eap`]): 21 per dimension up to three dimensions.
pub const MAX_EAP_NODES: usize = 10_000;

/// Why a multidimensional test cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MultiError {
    /// The bank records no latent structure.
    #[error(
        "the bank is not multidimensional: it records no latent dimensions (calibrate with --dimensions)"
    )]
    NotMultidimensional,
    /// A setting out of range.
    #[error("{0}")]
    Config(String),
}

impl MultiModel {
    /// The model of a multidimensional bank.
    pub fn new(bank: &Bank) -> Result<Self, MultiError> {
        let s = bank.structure().ok_or(MultiError::NotMultidimensional)?;
        let d = s.len();
        let correlations = s.matrix();
        let spd = Spd::new(&correlations, d).ok_or(MultiError::NotMultidimensional)?;
        let dim = bank
            .items()
            .iter()
            .map(|i| i.competence.as_deref().and_then(|c| s.dimension(c)))
            .collect::<Option<Vec<_>>>()
            .ok_or(MultiError::NotMultidimensional)?;
        Ok(MultiModel {
            dimensions: s.dimensions.clone(),
            models: bank.items().iter().map(|i| i.parameters.clone()).collect(),
            dim,
            precision: spd.inverse(),
            correlations,
        })
    }

    /// Dimension names.
    pub fn dimensions(&self) -> &[String] {
        &self.dimensions
    }
    /// Dimension of the item at bank position `j`.
    pub fn dimension_of(&self, j: usize) -> usize {
        self.dim[j]
    }
    /// The prior N(0, R)'s precision R⁻¹ as a factor (its inverse is R).
    fn prior(&self) -> Spd {
        Spd::new(&self.precision, self.dimensions.len())
            .unwrap_or_else(|| unreachable!("R⁻¹ of a validated R"))
    }

    /// The latent correlation matrix, row-major.
    pub fn correlations(&self) -> &[f64] {
        &self.correlations
    }

    /// The posterior mode and covariance given `answers` (bank position, category), from `start`
    /// (or 0): Fisher scoring with step halving on the log posterior, to |Δθ| < 1e-8.
    pub fn map(&self, answers: &[(usize, usize)], start: Option<&[f64]>) -> MultiEstimate {
        let d = self.dimensions.len();
        let mut theta = start.map_or_else(|| vec![0.0; d], <[f64]>::to_vec);
        let mut grad = vec![0.0; d];
        let mut info = vec![0.0; d];
        let mut curv = vec![0.0; d];
        let mut value = self.log_posterior(answers, &theta, &mut grad, &mut info, &mut curv);
        for _ in 0..100 {
            let mut precision = self.precision.clone();
            (0..d).for_each(|k| precision[k * d + k] += info[k]);
            let Some(spd) = Spd::new(&precision, d) else { break };
            let mut step = grad.clone();
            spd.solve_in_place(&mut step);
            let mut t = 1.0;
            let mut moved = false;
            for _ in 0..30 {
                let cand: Vec<f64> = theta.iter().zip(&step).map(|(x, s)| x + t * s).collect();
                let (mut g2, mut i2, mut c2) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
                let v = self.log_posterior(answers, &cand, &mut g2, &mut i2, &mut c2);
                if v >= value - 1e-12 * value.abs().max(1.0) {
                    let change = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
                    theta = cand;
                    (value, grad, info, curv) = (v, g2, i2, c2);
                    moved = change >= 1e-8;
                    break;
                }
                t *= 0.5;
            }
            if !moved {
                break;
            }
        }
        // Laplace: the observed precision at the mode, or the expected one if that is not definite.
        let mut observed = self.precision.clone();
        (0..d).for_each(|k| observed[k * d + k] += curv[k]);
        let spd = Spd::new(&observed, d).unwrap_or_else(|| {
            let mut expected = self.precision.clone();
            (0..d).for_each(|k| expected[k * d + k] += info[k]);
            // An information that is not finite (an item's probabilities underflow): the prior.
            Spd::new(&expected, d).unwrap_or_else(|| self.prior())
        });
        MultiEstimate {
            theta,
            covariance: spd.inverse(),
        }
    }

    /// The posterior mean and covariance (EAP) given `answers`, by adaptive Gauss–Hermite quadrature
    /// (Naylor & Smith 1982; Schilling & Bock 2005): a tensor product of `points` nodes per dimension
    /// centred on the posterior mode and spread by the Cholesky factor of its Laplace covariance,
    /// θ_n = μ + L z_n, each weighted by the posterior over the normal the nodes are placed on:
    /// E[θ | x] ≈ Σ_n ω_n θ_n / Σ_n ω_n, ω_n = w_n e^{z_nᵀz_n/2} L(x | θ_n) e^{−θ_nᵀR⁻¹θ_n/2}; the
    /// covariance likewise. `points`^D nodes: refused beyond [`MAX_EAP_NODES`] (use [`MultiModel::map`]).
    pub fn eap(&self, answers: &[(usize, usize)], points: usize) -> Result<MultiEstimate, MultiError> {
        let d = self.dimensions.len();
        let nodes = u32::try_from(d)
            .ok()
            .and_then(|e| points.checked_pow(e))
            .filter(|&n| points >= 2 && n <= MAX_EAP_NODES)
            .ok_or_else(|| {
                MultiError::Config(format!(
                    "EAP on {d} dimensions needs {points}^{d} quadrature nodes (at most {MAX_EAP_NODES}, at least 2 \
                     per dimension): use MAP"
                ))
            })?;
        let (z, w) = etalon_items::quadrature::gauss_hermite(points);
        let z: Vec<f64> = z.iter().map(|x| x * std::f64::consts::SQRT_2).collect();
        let log_w: Vec<f64> = w.iter().map(|w| (w / std::f64::consts::PI.sqrt()).ln()).collect();
        // Adaptive quadrature: the nodes are centred on the posterior mode μ and spread by the Cholesky
        // factor of its Laplace covariance C, θ = μ + L z, and weighted by posterior / proposal:
        // w(z) · e^{zᵀz/2} · L(x | θ) · e^{−θᵀR⁻¹θ/2} (the normal constants cancel). A fixed grid on the
        // prior would leave a narrow posterior (40 answers per dimension) between its nodes.
        let mode = self.map(answers, None);
        let factor = Spd::new(&mode.covariance, d)
            .or_else(|| Spd::new(&self.correlations, d))
            .unwrap_or_else(|| unreachable!("a validated R"));
        let (mut zi, mut theta) = (vec![0.0; d], vec![0.0; nodes * d]);
        let mut log_post = vec![0.0; nodes];
        for (n, lp) in log_post.iter_mut().enumerate() {
            let mut rest = n;
            let mut lw = 0.0;
            for zk in zi.iter_mut() {
                let i = rest % points;
                rest /= points;
                *zk = z[i];
                lw += log_w[i] + 0.5 * z[i] * z[i];
            }
            let t = &mut theta[n * d..(n + 1) * d];
            factor.lower_times(&zi, t);
            t.iter_mut().zip(&mode.theta).for_each(|(x, m)| *x += m);
            let mut quad = 0.0;
            for k in 0..d {
                quad += t[k] * (0..d).map(|l| self.precision[k * d + l] * t[l]).sum::<f64>();
            }
            *lp = lw - 0.5 * quad;
        }
        // θ_k = μ_k + Σ_{l≤k} L_kl z_l depends on the first k + 1 digits of the node index only (the fastest
        // ones): its distinct values are those of nodes 0 … points^{k+1} − 1, where the likelihood of
        // dimension k's answers is computed once.
        let mut ll = Vec::new();
        let mut span = 1usize;
        for k in 0..d {
            span *= points;
            ll.clear();
            ll.extend((0..span).map(|n| {
                answers
                    .iter()
                    .filter(|&&(j, _)| self.dim[j] == k)
                    .map(|&(j, c)| self.models[j].log_prob(theta[n * d + k], c))
                    .sum::<f64>()
            }));
            log_post
                .iter_mut()
                .enumerate()
                .for_each(|(n, lp)| *lp += ll[n % span]);
        }
        let max = log_post.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = log_post.iter().map(|l| (l - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut mean = vec![0.0; d];
        for (n, wn) in weights.iter().enumerate() {
            mean.iter_mut()
                .zip(&theta[n * d..(n + 1) * d])
                .for_each(|(m, t)| *m += wn * t / total);
        }
        let mut covariance = vec![0.0; d * d];
        for (n, wn) in weights.iter().enumerate() {
            let t = &theta[n * d..(n + 1) * d];
            for k in 0..d {
                for l in 0..d {
                    covariance[k * d + l] += wn * (t[k] - mean[k]) * (t[l] - mean[l]) / total;
                }
            }
        }
        Ok(MultiEstimate {
            theta: mean,
            covariance,
        })
    }

    /// ℓ(θ), with its gradient, the Fisher information and the observed curvature −∂²ℓ (likelihood
    /// part, diagonal) of each dimension.
    fn log_posterior(
        &self,
        answers: &[(usize, usize)],
        theta: &[f64],
        grad: &mut [f64],
        info: &mut [f64],
        curv: &mut [f64],
    ) -> f64 {
        let d = theta.len();
        grad.iter_mut().for_each(|x| *x = 0.0);
        info.iter_mut().for_each(|x| *x = 0.0);
        curv.iter_mut().for_each(|x| *x = 0.0);
        let mut value = 0.0;
        for &(j, c) in answers {
            let k = self.dim[j];
            let t = self.models[j].log_lik_terms(theta[k], c);
            value += t.log_p;
            grad[k] += t.d1;
            curv[k] -= t.d2;
            info[k] += self.models[j].information(theta[k]);
        }
        for a in 0..d {
            let row: f64 = (0..d).map(|b| self.precision[a * d + b] * theta[b]).sum();
            value -= 0.5 * theta[a] * row;
            grad[a] -= row;
        }
        value
    }
}

/// Settings of a multidimensional adaptive test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultiConfig {
    /// Questions at most.
    pub max_items: usize,
    /// Questions at least before the test may stop.
    pub min_items: usize,
    /// Questions per competence at most.
    pub max_items_per_competence: usize,
    /// Stop a competence once its interval lies within one level band.
    pub classify: bool,
    /// Two-sided confidence of that interval.
    pub confidence: f64,
    /// Stop once every competence's SE is at most this.
    pub se_target: Option<f64>,
    /// Exposure control (`none`, `randomesque`, `pix`).
    pub exposure: Exposure,
    /// At most one item per tag starting with this prefix (e.g. `skill:`; empty: no rule).
    pub one_per_tag_prefix: String,
    /// Level maps.
    pub levels: Levels,
    /// Competences assessed (empty: every dimension of the bank). A subset runs on the bank of their
    /// items with the structure's marginal over them ([`Bank::restricted`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub competences: Vec<String>,
}

impl Default for MultiConfig {
    fn default() -> Self {
        MultiConfig {
            max_items: 48,
            min_items: 16,
            max_items_per_competence: 6,
            classify: true,
            confidence: 0.6,
            se_target: None,
            exposure: Exposure::None,
            one_per_tag_prefix: "skill:".into(),
            levels: Levels::default(),
            competences: Vec::new(),
        }
    }
}

/// One answer of a multidimensional test, with the profile after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiRecord {
    /// Item id.
    pub item: String,
    /// Response category (0 … K−1).
    pub category: usize,
    /// θ̂ per competence after this answer.
    pub theta: Vec<f64>,
    /// SE per competence after this answer.
    pub se: Vec<f64>,
}

/// State of a multidimensional test: a plain value, resumable after any answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiSession {
    schema: u32,
    bank_id: String,
    bank_fingerprint: String,
    config: MultiConfig,
    seed: u64,
    history: Vec<MultiRecord>,
    pending: Option<String>,
    finished: Option<StopReason>,
    /// Built or verified by an engine (not serialised: a session read from outside is replayed first).
    #[serde(skip)]
    checked: Checked,
}

impl MultiSession {
    /// The answers so far.
    pub fn history(&self) -> &[MultiRecord] {
        &self.history
    }
    /// Why the test ended, if it did.
    pub fn finished(&self) -> Option<StopReason> {
        self.finished
    }
    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// The result of a multidimensional test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiResult {
    /// Per competence: θ̂, SE, level and its probability, items answered.
    pub competences: BTreeMap<String, CompetenceResult>,
    /// The general level: the mean of the competences' θ, with its SE √(1ᵀC1)/D.
    pub general_theta: f64,
    /// Its SE.
    pub general_se: f64,
    /// Sum of the competences' points.
    pub score: f64,
    /// The posterior (mode, covariance).
    pub estimate: MultiEstimate,
    /// Whether the test is over.
    pub finished: bool,
}

/// A multidimensional bank and test settings, ready to run any number of tests.
#[derive(Debug, Clone)]
pub struct MultiEngine {
    bank: Bank,
    fingerprint: String,
    model: MultiModel,
    config: MultiConfig,
    /// Items that may be selected (active, positive slope).
    selectable: Vec<bool>,
    /// Content tag (with the prefix) of each item, as an index into the distinct tags.
    tag: Vec<Option<usize>>,
    /// Normal quantile of the classification interval.
    z: f64,
}

impl MultiEngine {
    /// Validate and build.
    pub fn new(bank: &Bank, config: MultiConfig) -> Result<Self, MultiError> {
        bank.structure().ok_or(MultiError::NotMultidimensional)?;
        let restricted;
        let bank = if config.competences.is_empty() {
            bank
        } else {
            restricted = bank
                .restricted(&config.competences)
                .map_err(|p| MultiError::Config(etalon_items::Problems(p).to_string()))?;
            &restricted
        };
        let model = MultiModel::new(bank)?;
        let bad = |m: String| Err(MultiError::Config(m));
        if config.max_items == 0 || config.min_items > config.max_items {
            return bad(format!(
                "need 1 ≤ max_items and min_items ≤ max_items (got min {}, max {})",
                config.min_items, config.max_items
            ));
        }
        if config.max_items_per_competence == 0 {
            return bad("max_items_per_competence must be at least 1".into());
        }
        if !(config.confidence > 0.0 && config.confidence < 1.0) {
            return bad(format!(
                "confidence must be in (0, 1) (got {})",
                config.confidence
            ));
        }
        if config.se_target.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return bad("se_target must be a finite number > 0".into());
        }
        match config.exposure {
            Exposure::Randomesque { k: 0 } => return bad("randomesque k must be at least 1".into()),
            Exposure::SympsonHetter => {
                return bad("Sympson–Hetter exposure is not available in multidimensional tests (use randomesque or pix)".into());
            }
            _ => {}
        }
        let selectable = bank
            .items()
            .iter()
            .map(|i| i.status == Status::Active && i.parameters.slope() > 0.0)
            .collect();
        let mut tags: Vec<String> = Vec::new();
        let tag = bank
            .items()
            .iter()
            .map(|i| {
                if config.one_per_tag_prefix.is_empty() {
                    return None;
                }
                let t = i
                    .tags
                    .iter()
                    .find(|t| t.starts_with(&config.one_per_tag_prefix))?;
                Some(tags.iter().position(|x| x == t).unwrap_or_else(|| {
                    tags.push(t.clone());
                    tags.len() - 1
                }))
            })
            .collect();
        let z = {
            use statrs::distribution::{ContinuousCDF, Normal};
            Normal::standard().inverse_cdf(0.5 + config.confidence / 2.0)
        };
        Ok(MultiEngine {
            fingerprint: bank.fingerprint(),
            bank: bank.clone(),
            model,
            config,
            selectable,
            tag,
            z,
        })
    }

    /// The bank.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }
    /// The model.
    pub fn model(&self) -> &MultiModel {
        &self.model
    }
    /// The settings.
    pub fn config(&self) -> &MultiConfig {
        &self.config
    }

    /// Start a test.
    pub fn start(&self, seed: u64) -> MultiSession {
        MultiSession {
            schema: crate::session::SCHEMA_VERSION,
            bank_id: self.bank.id().to_string(),
            bank_fingerprint: self.fingerprint.clone(),
            config: self.config.clone(),
            seed,
            history: Vec::new(),
            pending: None,
            finished: None,
            checked: Checked(true),
        }
    }

    fn answers(&self, s: &MultiSession) -> Result<Vec<(usize, usize)>, SessionError> {
        s.history
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let j = self.bank.position(&r.item).ok_or_else(|| {
                    SessionError::Corrupt(format!("history[{i}].item: `{}` is not in the bank", r.item))
                })?;
                Ok((j, r.category))
            })
            .collect()
    }

    /// The current posterior of a session.
    pub fn estimate(&self, s: &mut MultiSession) -> Result<MultiEstimate, SessionError> {
        self.check(s)?;
        let answers = self.answers(s)?;
        Ok(self.posterior(s, &answers))
    }

    /// The posterior given `answers`, from the session's last θ̂ (a warm start).
    fn posterior(&self, s: &MultiSession, answers: &[(usize, usize)]) -> MultiEstimate {
        self.model
            .map(answers, s.history.last().map(|r| r.theta.as_slice()))
    }

    /// Whether competence `k` is done: its budget, its items, or (classification) its interval
    /// within one band after at least one answer.
    fn competence_done(&self, k: usize, answered: usize, theta: f64, se: f64, available: bool) -> bool {
        if answered >= self.config.max_items_per_competence || !available {
            return true;
        }
        if !self.config.classify || answered == 0 {
            return false;
        }
        let map = self.config.levels.for_competence(&self.model.dimensions[k]);
        map.level(theta - self.z * se) == map.level(theta + self.z * se)
    }

    /// The item to ask now, or why the test is over. Asking twice gives the same item.
    pub fn next(&self, s: &mut MultiSession) -> Result<Next, SessionError> {
        self.check(s)?;
        if let Some(r) = s.finished {
            return Ok(Next::Finished(r));
        }
        if let Some(id) = &s.pending {
            return Ok(Next::Item(id.clone()));
        }
        let answers = self.answers(s)?;
        // The profile after the last answer, as `record` computed it (the prior N(0, R) before any:
        // θ = 0, SE = 1): selection needs only θ̂ and the posterior variances.
        let d = self.model.dimensions.len();
        let (prior_theta, prior_se) = (vec![0.0; d], vec![1.0; d]);
        let (theta, se) = s
            .history
            .last()
            .map_or((&prior_theta[..], &prior_se[..]), |r| (&r.theta[..], &r.se[..]));
        match self.select(&answers, theta, se, s.seed) {
            Ok(j) => {
                let id = self.bank.items()[j].id.clone();
                s.pending = Some(id.clone());
                Ok(Next::Item(id))
            }
            Err(reason) => {
                s.finished = Some(reason);
                Ok(Next::Finished(reason))
            }
        }
    }

    /// Segall's selection among the items still allowed, or why the test stops.
    fn select(
        &self,
        answers: &[(usize, usize)],
        theta: &[f64],
        se: &[f64],
        seed: u64,
    ) -> Result<usize, StopReason> {
        let d = self.model.dimensions.len();
        let n = answers.len();
        if n >= self.config.max_items {
            return Err(StopReason::MaxItems);
        }
        let mut taken = vec![false; self.bank.len()];
        let mut per_dim = vec![0usize; d];
        let mut used_tags = Vec::new();
        for &(j, _) in answers {
            taken[j] = true;
            per_dim[self.model.dim[j]] += 1;
            used_tags.extend(self.tag[j]);
        }
        let allowed =
            |j: usize| self.selectable[j] && !taken[j] && self.tag[j].is_none_or(|t| !used_tags.contains(&t));
        let mut available = vec![false; d];
        for j in (0..self.bank.len()).filter(|&j| allowed(j)) {
            available[self.model.dim[j]] = true;
        }
        let open: Vec<bool> = (0..d)
            .map(|k| !self.competence_done(k, per_dim[k], theta[k], se[k], available[k]))
            .collect();
        // Competences that can still take an item once every one is done but the test is below its
        // minimum length: those under their budget.
        let under_budget: Vec<bool> = (0..d)
            .map(|k| available[k] && per_dim[k] < self.config.max_items_per_competence)
            .collect();
        if !open.iter().any(|&o| o) && (n >= self.config.min_items || !under_budget.iter().any(|&u| u)) {
            return Err(if !available.iter().any(|&a| a) {
                StopReason::BankExhausted
            } else {
                StopReason::EveryCompetence
            });
        }
        if n >= self.config.min_items
            && let Some(target) = self.config.se_target
            && se.iter().all(|&x| x <= target)
        {
            return Err(StopReason::Precision);
        }
        // Criterion I_j(θ̂_k) · C_kk over the open competences (all available ones once every
        // competence is done but the minimum length is not reached).
        let any_open = open.iter().any(|&o| o);
        let mut best: Vec<(f64, usize)> = Vec::with_capacity(8);
        let keep = match self.config.exposure {
            Exposure::Randomesque { k } => k,
            Exposure::Pix => 5,
            _ => 1,
        };
        for j in (0..self.bank.len()).filter(|&j| allowed(j)) {
            let k = self.model.dim[j];
            if if any_open { !open[k] } else { !under_budget[k] } {
                continue;
            }
            let v = self.model.models[j].information(theta[k]) * se[k] * se[k];
            if best.len() < keep || v > best[best.len() - 1].0 {
                let at = best.partition_point(|&(b, _)| b >= v);
                best.insert(at, (v, j));
                best.truncate(keep);
            }
        }
        if best.is_empty() {
            return Err(StopReason::BankExhausted);
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(seed, n as u64));
        let pick = match self.config.exposure {
            Exposure::Randomesque { .. } => rng.random_range(0..best.len()),
            Exposure::Pix => {
                let w = &[0.51, 0.25, 0.12, 0.06, 0.06][..best.len()];
                let total: f64 = w.iter().sum();
                let mut u = rng.random::<f64>() * total;
                w.iter()
                    .position(|x| {
                        u -= x;
                        u < 0.0
                    })
                    .unwrap_or(w.len() - 1)
            }
            _ => 0,
        };
        Ok(best[pick].1)
    }

    /// Record the answer (a response code of the item) to the pending item. A call that is refused
    /// leaves the session as it was.
    pub fn record(&self, s: &mut MultiSession, item: &str, response: i64) -> Result<(), SessionError> {
        self.check(s)?;
        if s.pending.as_deref() != Some(item) {
            if s.history.iter().any(|r| r.item == item) {
                return Err(SessionError::AlreadyAnswered(item.to_string()));
            }
            return Err(SessionError::NotOffered {
                item: item.to_string(),
                pending: s.pending.clone().unwrap_or_else(|| "nothing".into()),
            });
        }
        let j = self
            .bank
            .position(item)
            .unwrap_or_else(|| unreachable!("pending items are of the bank"));
        let it = &self.bank.items()[j];
        let Some(category) = it.category_of(response) else {
            return Err(SessionError::InvalidResponse {
                item: item.to_string(),
                code: response,
                allowed: it.response_codes(),
            });
        };
        let mut answers = self.answers(s)?;
        answers.push((j, category));
        let e = self.posterior(s, &answers);
        let d = e.theta.len();
        s.history.push(MultiRecord {
            item: item.to_string(),
            category,
            se: (0..d).map(|k| e.se(k)).collect(),
            theta: e.theta,
        });
        s.pending = None;
        Ok(())
    }

    /// The profile so far.
    pub fn result(&self, s: &MultiSession) -> Result<MultiResult, SessionError> {
        // Checked on a copy: a session from outside is replayed, the caller's value is left as it is.
        let mut copy = s.clone();
        self.check(&mut copy)?;
        let s = &copy;
        let answers = self.answers(s)?;
        let e = self.posterior(s, &answers);
        let d = e.theta.len();
        let mut per_dim = vec![0usize; d];
        answers.iter().for_each(|&(j, _)| per_dim[self.model.dim[j]] += 1);
        let competences: BTreeMap<String, CompetenceResult> = (0..d)
            .map(|k| {
                let name = &self.model.dimensions[k];
                let map = self.config.levels.for_competence(name);
                (
                    name.clone(),
                    CompetenceResult::from_estimate(map, e.theta[k], e.se(k), per_dim[k], s.finished),
                )
            })
            .collect();
        let (general_theta, general_se) = e.general();
        Ok(MultiResult {
            score: competences.values().map(|c| c.score).sum(),
            competences,
            general_theta,
            general_se,
            estimate: e,
            finished: s.finished.is_some(),
        })
    }

    /// Verify a session read from outside — now rather than at the first call, which does the same:
    /// schema, bank and configuration, then a replay from its seed, in which every stored item must be
    /// the one the engine offers, every stored category valid, every stored θ and SE its recomputation
    /// (to 1e-9, relative), and the pending item or stop reason the engine's. On success the session
    /// becomes the replayed one.
    pub fn verify(&self, s: &mut MultiSession) -> Result<(), SessionError> {
        s.checked = Checked(false);
        self.check(s)
    }

    fn check(&self, s: &mut MultiSession) -> Result<(), SessionError> {
        crate::session::check_identity(
            s.schema,
            &s.bank_id,
            &s.bank_fingerprint,
            &self.bank,
            &self.fingerprint,
            s.config == self.config,
        )?;
        crate::session::adopt_replay(s, s.checked.0, |s| self.replay(s))
    }

    /// The replay of [`Self::verify`]: the replayed session, or the first mismatch.
    fn replay(&self, s: &MultiSession) -> Result<MultiSession, Mismatch> {
        let mut r = self.start(s.seed);
        let step = |r: &mut MultiSession| -> Result<Next, Mismatch> {
            self.next(r).map_err(|e| Mismatch::new("history", e))
        };
        for (i, rec) in s.history.iter().enumerate() {
            let at = format!("history[{i}]");
            match step(&mut r)? {
                Next::Item(id) if id == rec.item => {}
                Next::Item(id) => {
                    return Err(Mismatch::new(
                        format!("{at}.item"),
                        format_args!("stored `{}`, but the engine offers `{id}`", rec.item),
                    ));
                }
                Next::Finished(why) => {
                    return Err(Mismatch::new(
                        format!("{at}.item"),
                        format_args!("an answer after the end of the test ({})", why.name()),
                    ));
                }
            }
            let code = self
                .bank
                .item(&rec.item)
                .and_then(|it| it.response_codes().get(rec.category).copied())
                .ok_or_else(|| {
                    Mismatch::new(
                        format!("{at}.category"),
                        format_args!("{} is not a category of the item", rec.category),
                    )
                })?;
            self.record(&mut r, &rec.item, code)
                .map_err(|e| Mismatch::new(at.as_str(), e))?;
            let again = &r.history[i];
            if rec.theta.len() != again.theta.len() || rec.se.len() != again.se.len() {
                return Err(Mismatch::new(
                    format!("{at}.theta"),
                    format_args!("{} values for {} competences", rec.theta.len(), again.theta.len()),
                ));
            }
            for (k, (a, b)) in rec.theta.iter().zip(&again.theta).enumerate() {
                compare_f64(format!("{at}.theta[{k}]"), *a, *b)?;
            }
            for (k, (a, b)) in rec.se.iter().zip(&again.se).enumerate() {
                compare_f64(format!("{at}.se[{k}]"), *a, *b)?;
            }
        }
        if s.pending.is_some() || s.finished.is_some() {
            let next = step(&mut r)?;
            let ok = match (&next, &s.pending, s.finished) {
                (Next::Item(id), Some(p), None) => id == p,
                (Next::Finished(a), None, Some(b)) => *a == b,
                _ => false,
            };
            if !ok {
                return Err(Mismatch::new(
                    "pending",
                    format_args!(
                        "stored {:?}/{:?}, but the engine gives {next:?}",
                        s.pending, s.finished
                    ),
                ));
            }
        }
        Ok(r)
    }
}

/// A synthetic multidimensional 2PL bank for studies and benchmarks: `competences` competences
/// (`C01`, `C02`, …) of `per_competence` items each (a ~ U(0.8, 2), b ~ U(−3, 3)), correlated through a
/// general factor with loadings λ_k evenly spaced on [√r_min, √r_max], so that the correlations
/// r_kl = λ_k λ_l span [r_min, r_max].
pub fn synthetic_bank(competences: usize, per_competence: usize, r_min: f64, r_max: f64, seed: u64) -> Bank {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let names: Vec<String> = (1..=competences).map(|k| format!("C{k:02}")).collect();
    let mut items = Vec::with_capacity(competences * per_competence);
    for name in &names {
        for i in 0..per_competence {
            let a = 0.8 + 1.2 * rng.random::<f64>();
            let b = -3.0 + 6.0 * rng.random::<f64>();
            let mut item = etalon_items::Item::new(
                format!("{name}-{i:02}"),
                ItemModel::two_pl(a, b).unwrap_or_else(|e| unreachable!("a > 0, b finite: {e}")),
            );
            item.competence = Some(name.clone());
            items.push(item);
        }
    }
    let step = if competences > 1 {
        (competences - 1) as f64
    } else {
        1.0
    };
    let l: Vec<f64> = (0..competences)
        .map(|k| r_min.sqrt() + (r_max.sqrt() - r_min.sqrt()) * k as f64 / step)
        .collect();
    let structure = etalon_items::Structure::one_factor(names, &l)
        .unwrap_or_else(|p| unreachable!("loadings below 1 give a correlation matrix: {p:?}"));
    Bank::new(
        "synthetic",
        etalon_items::Framework::default(),
        items,
        etalon_items::Provenance::default(),
    )
    .and_then(|b| b.with_structure(Some(structure)))
    .unwrap_or_else(|p| unreachable!("distinct ids, valid items: {p:?}"))
}

/// `n` persons drawn from N(0, R) of `model`'s structure (θ = L z, R = L Lᵀ).
pub fn synthetic_persons(model: &MultiModel, n: usize, seed: u64) -> Vec<Vec<f64>> {
    let d = model.dimensions.len();
    let spd = Spd::new(&model.correlations, d).unwrap_or_else(|| unreachable!("validated structure"));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut z = vec![0.0; d];
    (0..n)
        .map(|_| {
            z.iter_mut()
                .for_each(|x| *x = rng.sample(rand_distr::StandardNormal));
            let mut theta = vec![0.0; d];
            spd.lower_times(&z, &mut theta);
            theta
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tensor-grid EAP agrees with a Monte Carlo posterior mean: 400,000 draws θ ~ N(0, R)
    /// weighted by the likelihood (an independent route to the same integrals; its own error is about
    /// 0.003 here).
    #[test]
    fn eap_on_the_grid_is_the_monte_carlo_posterior_mean() {
        let bank = synthetic_bank(3, 8, 0.5, 0.75, 11);
        let model = MultiModel::new(&bank).unwrap();
        // Eight answers on the first dimension, three on the second, none on the third.
        let answers: Vec<(usize, usize)> = (0..8)
            .map(|j| (j, j % 2))
            .chain((8..11).map(|j| (j, 1)))
            .collect();
        let e = model.eap(&answers, 21).unwrap();
        let d = 3;
        let factor = Spd::new(model.correlations(), d).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let (mut z, mut t) = (vec![0.0; d], vec![0.0; d]);
        let (mut sum_w, mut sum_t, mut sum_tt) = (0.0, vec![0.0; d], vec![0.0; d]);
        for _ in 0..400_000 {
            z.iter_mut()
                .for_each(|x| *x = rng.sample(rand_distr::StandardNormal));
            factor.lower_times(&z, &mut t);
            let w: f64 = answers
                .iter()
                .map(|&(j, c)| model.models[j].log_prob(t[model.dim[j]], c))
                .sum::<f64>()
                .exp();
            sum_w += w;
            for k in 0..d {
                sum_t[k] += w * t[k];
                sum_tt[k] += w * t[k] * t[k];
            }
        }
        for k in 0..d {
            let mean = sum_t[k] / sum_w;
            let sd = (sum_tt[k] / sum_w - mean * mean).sqrt();
            assert!(
                (e.theta[k] - mean).abs() < 0.01,
                "θ_{k}: EAP {} vs Monte Carlo {mean}",
                e.theta[k]
            );
            assert!(
                (e.se(k) - sd).abs() < 0.01,
                "SE_{k}: EAP {} vs Monte Carlo {sd}",
                e.se(k)
            );
        }
        // A long test (40 answers on each of two dimensions, posterior SD about 0.25): the adaptive
        // grid has converged — 21 and 41 nodes per dimension agree — where a fixed grid on the prior
        // would not.
        let long = synthetic_bank(2, 40, 0.6, 0.6, 12);
        let long_model = MultiModel::new(&long).unwrap();
        let answers: Vec<(usize, usize)> = (0..80).map(|j| (j, usize::from(j % 3 != 0))).collect();
        let (coarse, fine) = (
            long_model.eap(&answers, 21).unwrap(),
            long_model.eap(&answers, 41).unwrap(),
        );
        for k in 0..2 {
            assert!(fine.se(k) < 0.4, "{}", fine.se(k));
            assert!(
                (coarse.theta[k] - fine.theta[k]).abs() < 1e-4,
                "{:?} vs {:?}",
                coarse.theta,
                fine.theta
            );
            assert!(
                (coarse.se(k) - fine.se(k)).abs() < 1e-4,
                "{} vs {}",
                coarse.se(k),
                fine.se(k)
            );
        }
        // The unanswered third dimension still moves with the others (correlated prior).
        assert!(e.theta[2].abs() > 0.05, "{:?}", e.theta);
        // Too many nodes is refused with the way out.
        let big = synthetic_bank(4, 4, 0.5, 0.7, 1);
        let err = MultiModel::new(&big)
            .unwrap()
            .eap(&[], 21)
            .unwrap_err()
            .to_string();
        assert!(err.contains("use MAP"), "{err}");
    }
}
