//! Item response functions: category probabilities, log-likelihood and its first two derivatives in θ,
//! Fisher information, for every model of `etalon-items` — one implementation shared by estimation,
//! adaptive sessions, simulation and calibration.
//!
//! Everything is computed in log space from stable logistic pieces, so results stay finite for |θ| up
//! to 20 and beyond with extreme parameters:
//!
//! * dichotomous (Lord 1980; Baker & Kim 2004, ch. 2): with s = σ(z), t = σ(-z), z = a(θ - b),
//!   P = c + (d - c)s, ∂P/∂θ = a(d - c)st, ∂²P/∂θ² = a²(d - c)st(t - s). For c = 0 the derivatives of
//!   log P reduce to a·t and -a²st, for d = 1 those of log Q to -a·s and -a²st, exactly.
//! * graded (Samejima 1969): with P*_k = σ(a(θ - b_k)), P_k = P*_k - P*_{k+1}
//!   = P*_k (1 - P*_{k+1}) (1 - e^{-a(b_{k+1} - b_k)}), so log P_k = log σ(z_k) + log σ(-z_{k+1}) + const,
//!   ∂ log P_k/∂θ = a(1 - P*_k - P*_{k+1}) and ∂² log P_k/∂θ² = -a²(P*_k Q*_k + P*_{k+1} Q*_{k+1}).
//! * generalised partial credit (Muraki 1992): η_k = Σ_{v ≤ k} a(θ - b_v), log P_k = η_k - logsumexp(η),
//!   ∂ log P_k/∂θ = a(k - E[k]), ∂² log P_k/∂θ² = -a² Var[k].
//!
//! Fisher information is I(θ) = Σ_k P_k (∂ log P_k/∂θ)², and Warm's (1989) correction term is
//! J(θ) = Σ_k P_k l'_k (l''_k + l'_k²) (= Σ_k P'_k P''_k / P_k).

use crate::model::{ItemModel, Logistic, Polytomous};

/// Numerically stable log σ(x) = -log(1 + e^-x).
#[inline]
pub fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// Logistic function σ(x) = 1 / (1 + e^-x), computed without overflow.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The log-probability of one response and its first two derivatives in θ.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LogLikTerms {
    /// log P(X = k | θ).
    pub log_p: f64,
    /// ∂ log P / ∂θ.
    pub d1: f64,
    /// ∂² log P / ∂θ².
    pub d2: f64,
}

/// Capability: an item's response function. Implemented by [`ItemModel`] (enum dispatch over models).
pub trait ResponseFunction {
    /// Number of response categories K.
    fn n_categories(&self) -> usize;
    /// log P(X = k | θ) with its first two derivatives in θ.
    fn log_lik_terms(&self, theta: f64, k: usize) -> LogLikTerms;
    /// (∂ log P/∂θ, ∂² log P/∂θ²) of category k: what Newton steps need, without the log-probability.
    fn score_terms(&self, theta: f64, k: usize) -> (f64, f64) {
        let t = self.log_lik_terms(theta, k);
        (t.d1, t.d2)
    }
    /// log P(X = k | θ).
    fn log_prob(&self, theta: f64, k: usize) -> f64 {
        self.log_lik_terms(theta, k).log_p
    }
    /// Fisher information I(θ) = Σ_k P_k (∂ log P_k/∂θ)².
    fn information(&self, theta: f64) -> f64 {
        (0..self.n_categories())
            .map(|k| {
                let t = self.log_lik_terms(theta, k);
                t.log_p.exp() * t.d1 * t.d1
            })
            .sum()
    }
    /// Information and Warm's J(θ) = Σ_k P'_k P''_k / P_k, for the WLE.
    fn information_and_warm_j(&self, theta: f64) -> (f64, f64) {
        (0..self.n_categories()).fold((0.0, 0.0), |(i, j), k| {
            let t = self.log_lik_terms(theta, k);
            let p = t.log_p.exp();
            (i + p * t.d1 * t.d1, j + p * t.d1 * (t.d2 + t.d1 * t.d1))
        })
    }
    /// Category probabilities P(X = k | θ), k = 0 … K-1, written into `out`.
    fn category_probabilities(&self, theta: f64, out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate().take(self.n_categories()) {
            *o = self.log_prob(theta, k).exp();
        }
    }
}

/// Terms of a dichotomous response (`correct` = category 1).
#[inline]
pub fn logistic_terms(l: &Logistic, theta: f64, correct: bool) -> LogLikTerms {
    let (a, c, d) = (l.a(), l.c(), l.d());
    let z = a * (theta - l.b());
    let s = sigmoid(z);
    let t = sigmoid(-z);
    let st = s * t;
    let span = d - c;
    if correct {
        if c == 0.0 {
            LogLikTerms {
                log_p: d.ln() + log_sigmoid(z),
                d1: a * t,
                d2: -a * a * st,
            }
        } else {
            let p = c + span * s;
            let r1 = a * span * st / p;
            let r2 = a * a * span * st * (t - s) / p;
            LogLikTerms {
                log_p: p.ln(),
                d1: r1,
                d2: r2 - r1 * r1,
            }
        }
    } else if d == 1.0 {
        LogLikTerms {
            log_p: (1.0 - c).ln() + log_sigmoid(-z),
            d1: -a * s,
            d2: -a * a * st,
        }
    } else {
        let q = (1.0 - d) + span * t;
        let r1 = -a * span * st / q;
        let r2 = -a * a * span * st * (t - s) / q;
        LogLikTerms {
            log_p: q.ln(),
            d1: r1,
            d2: r2 - r1 * r1,
        }
    }
}

/// log P(X = k | θ) of a dichotomous response alone: [`logistic_terms`]' `log_p`, by the same
/// expressions (so bit for bit), without the derivatives' exponentials. What tabulating a bank on a
/// grid needs.
#[inline]
pub fn logistic_log_prob(l: &Logistic, theta: f64, correct: bool) -> f64 {
    let (c, d) = (l.c(), l.d());
    let z = l.a() * (theta - l.b());
    let span = d - c;
    match (correct, c == 0.0, d == 1.0) {
        (true, true, _) => d.ln() + log_sigmoid(z),
        (true, false, _) => (c + span * sigmoid(z)).ln(),
        (false, _, true) => (1.0 - c).ln() + log_sigmoid(-z),
        (false, _, false) => ((1.0 - d) + span * sigmoid(-z)).ln(),
    }
}

/// (log P(X = 0 | θ), log P(X = 1 | θ)) of a dichotomous item: [`logistic_log_prob`]'s two values,
/// bit for bit. When c = 0 and d = 1 they share e^{−|z|} and its log1p L (z = a(θ − b)):
///
///   log σ(z) = −L (z ≥ 0) or z − L,   log σ(−z) = −L (z ≤ 0) or −z − L,
///
/// the very expressions [`log_sigmoid`] evaluates — one exponential and one logarithm for the two
/// categories instead of two of each, what tabulating a Rasch or 2PL bank on a grid costs.
#[inline]
pub fn logistic_log_probs(l: &Logistic, theta: f64) -> (f64, f64) {
    let (c, d) = (l.c(), l.d());
    if c != 0.0 || d != 1.0 {
        return (
            logistic_log_prob(l, theta, false),
            logistic_log_prob(l, theta, true),
        );
    }
    let z = l.a() * (theta - l.b());
    let log1p = (-z.abs()).exp().ln_1p();
    let correct = if z >= 0.0 { -log1p } else { z - log1p };
    let wrong = if z <= 0.0 { -log1p } else { -z - log1p };
    ((1.0 - c).ln() + wrong, d.ln() + correct)
}

/// P(X = 1 | θ) of a dichotomous item.
#[inline]
pub fn logistic_prob(l: &Logistic, theta: f64) -> f64 {
    l.c() + (l.d() - l.c()) * sigmoid(l.a() * (theta - l.b()))
}

/// exp(x) for x ≤ 0 by range reduction and a degree-12 Taylor polynomial (relative error < 2e-15);
/// arguments below -708 give exp(-708) ≈ 3e-308 instead of 0, which no sum of weights can notice.
/// Branch-free and without float-to-integer conversion (2^k is assembled by shifting the bits of
/// k + 1023 + 2^52), so loops over it vectorise even on the baseline x86-64 target.
#[inline(always)]
pub fn fast_exp(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // 0x3FE62E42FEE00000
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // Round to nearest by adding and removing 1.5·2^52.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let x = x.max(-708.0);
    let k = (x * LOG2E + SHIFTER) - SHIFTER;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // k + 1023 + 2^52 holds k + 1023 in its low mantissa bits; shifting left by 52 moves them into the
    // exponent field (the exponent bits of 2^52 fall off the top).
    let scale = f64::from_bits((k + (1023.0 + 4_503_599_627_370_496.0)).to_bits() << 52);
    p * scale
}

/// (s, t) = (σ(z), σ(-z)) from a single exponential.
#[inline]
fn sigmoid_pair(z: f64) -> (f64, f64) {
    let e = (-z.abs()).exp();
    let r = 1.0 / (1.0 + e);
    if z >= 0.0 { (r, e * r) } else { (e * r, r) }
}

/// (∂ log P/∂θ, ∂² log P/∂θ²) of a dichotomous response, with one exponential.
#[inline]
pub fn logistic_score(l: &Logistic, theta: f64, correct: bool) -> (f64, f64) {
    let (a, c, d) = (l.a(), l.c(), l.d());
    let (s, t) = sigmoid_pair(a * (theta - l.b()));
    if c == 0.0 && d == 1.0 {
        return (if correct { a * t } else { -a * s }, -a * a * s * t);
    }
    let terms = logistic_terms(l, theta, correct);
    (terms.d1, terms.d2)
}

/// Fisher information of a dichotomous item, a²(d - c)² s²t² / (PQ) (= a²PQ when c = 0, d = 1),
/// with one exponential; 0 where P or Q underflows (the limit).
#[inline]
pub fn logistic_info(l: &Logistic, theta: f64) -> f64 {
    let (a, c, d) = (l.a(), l.c(), l.d());
    let (s, t) = sigmoid_pair(a * (theta - l.b()));
    if c == 0.0 && d == 1.0 {
        return a * a * s * t;
    }
    let span = d - c;
    let p = c + span * s;
    let q = (1.0 - d) + span * t;
    let num = a * span * s * t;
    if p * q > 0.0 { num * num / (p * q) } else { 0.0 }
}

/// Terms of a graded response in category `k`.
pub fn graded_terms(p: &Polytomous, theta: f64, k: usize) -> LogLikTerms {
    let a = p.a();
    let b = p.thresholds();
    let kk = b.len(); // K - 1
    // Boundary k (P*_k), with P*_0 = 1 and P*_K = 0.
    let upper = |i: usize| -> (f64, f64, f64) {
        // (log P*_i, P*_i, Q*_i)
        if i == 0 {
            (0.0, 1.0, 0.0)
        } else if i > kk {
            (f64::NEG_INFINITY, 0.0, 1.0)
        } else {
            let z = a * (theta - b[i - 1]);
            (log_sigmoid(z), sigmoid(z), sigmoid(-z))
        }
    };
    let (lp_k, p_k, q_k) = upper(k);
    let (_, p_k1, q_k1) = upper(k + 1);
    let log_p = if k == 0 {
        log_sigmoid(-a * (theta - b[0]))
    } else if k == kk {
        lp_k
    } else {
        let zk1 = a * (theta - b[k]);
        lp_k + log_sigmoid(-zk1) + (-(-(a * (b[k] - b[k - 1]))).exp_m1()).ln()
    };
    LogLikTerms {
        log_p,
        d1: a * (q_k - p_k1),
        d2: -a * a * (p_k * q_k + p_k1 * q_k1),
    }
}

/// Terms of a generalised partial credit response in category `k`.
pub fn gpcm_terms(p: &Polytomous, theta: f64, k: usize) -> LogLikTerms {
    let a = p.a();
    // η_m = Σ_{v ≤ m} a(θ - b_v); log-sum-exp and moments in one pass with a running max.
    let mut eta = 0.0;
    let mut eta_k = 0.0;
    let mut max = 0.0f64;
    for (m, bv) in p.thresholds().iter().enumerate() {
        eta += a * (theta - bv);
        max = max.max(eta);
        if m + 1 == k {
            eta_k = eta;
        }
    }
    let (mut sum, mut mean, mut second) = (0.0, 0.0, 0.0);
    let mut eta = 0.0;
    for m in 0..p.categories() {
        if m > 0 {
            eta += a * (theta - p.thresholds()[m - 1]);
        }
        let w = (eta - max).exp();
        let mf = m as f64;
        sum += w;
        mean += w * mf;
        second += w * mf * mf;
    }
    mean /= sum;
    let var = (second / sum - mean * mean).max(0.0);
    LogLikTerms {
        log_p: eta_k - max - sum.ln(),
        d1: a * (k as f64 - mean),
        d2: -a * a * var,
    }
}

impl ResponseFunction for ItemModel {
    #[inline]
    fn n_categories(&self) -> usize {
        self.categories()
    }

    #[inline]
    fn log_lik_terms(&self, theta: f64, k: usize) -> LogLikTerms {
        match self {
            ItemModel::Rasch(l)
            | ItemModel::OnePl(l)
            | ItemModel::TwoPl(l)
            | ItemModel::ThreePl(l)
            | ItemModel::FourPl(l) => logistic_terms(l, theta, k == 1),
            ItemModel::Graded(p) => graded_terms(p, theta, k),
            ItemModel::Gpcm(p) => gpcm_terms(p, theta, k),
        }
    }

    #[inline]
    fn log_prob(&self, theta: f64, k: usize) -> f64 {
        match self.logistic() {
            Some(l) => logistic_log_prob(l, theta, k == 1),
            None => self.log_lik_terms(theta, k).log_p,
        }
    }

    #[inline]
    fn score_terms(&self, theta: f64, k: usize) -> (f64, f64) {
        match self.logistic() {
            Some(l) => logistic_score(l, theta, k == 1),
            None => {
                let t = self.log_lik_terms(theta, k);
                (t.d1, t.d2)
            }
        }
    }

    #[inline]
    fn information_and_warm_j(&self, theta: f64) -> (f64, f64) {
        match self.logistic() {
            // P'' / P' = a(t - s) for every logistic item, so J = P'P''/(PQ) = I · a(t - s).
            Some(l) => {
                let info = logistic_info(l, theta);
                let (s, t) = sigmoid_pair(l.a() * (theta - l.b()));
                (info, info * l.a() * (t - s))
            }
            None => (0..self.n_categories()).fold((0.0, 0.0), |(i, j), k| {
                let t = self.log_lik_terms(theta, k);
                let p = t.log_p.exp();
                (i + p * t.d1 * t.d1, j + p * t.d1 * (t.d2 + t.d1 * t.d1))
            }),
        }
    }

    #[inline]
    fn information(&self, theta: f64) -> f64 {
        match self.logistic() {
            Some(l) => logistic_info(l, theta),
            None => (0..self.categories())
                .map(|k| {
                    let t = self.log_lik_terms(theta, k);
                    t.log_p.exp() * t.d1 * t.d1
                })
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> Vec<ItemModel> {
        vec![
            ItemModel::rasch(0.3).unwrap(),
            ItemModel::two_pl(1.7, -0.4).unwrap(),
            ItemModel::three_pl(1.2, 0.5, 0.2).unwrap(),
            ItemModel::four_pl(1.2, 0.5, 0.2, 0.9).unwrap(),
            ItemModel::graded(1.3, vec![-1.5, -0.2, 1.1]).unwrap(),
            ItemModel::gpcm(0.8, vec![0.4, -0.9, 1.6]).unwrap(),
        ]
    }

    #[test]
    fn probabilities_sum_to_one_even_far_out() {
        for m in models() {
            for theta in [-20.0, -6.0, -1.0, 0.0, 0.7, 6.0, 20.0] {
                let mut p = vec![0.0; m.n_categories()];
                m.category_probabilities(theta, &mut p);
                let s: f64 = p.iter().sum();
                assert!((s - 1.0).abs() < 1e-12, "{m:?} θ={theta}: {s}");
                for k in 0..m.n_categories() {
                    let t = m.log_lik_terms(theta, k);
                    assert!(
                        t.d1.is_finite() && t.d2.is_finite() && !t.log_p.is_nan(),
                        "{m:?} {theta} {k} {t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn fast_exp_is_accurate() {
        let mut x: f64 = -750.0;
        while x <= 0.0 {
            let (e, f) = (x.exp(), fast_exp(x));
            if x < -708.0 {
                assert!(f < 1e-307);
            } else {
                assert!(((f - e) / e).abs() < 2e-15, "x = {x}: {f} vs {e}");
            }
            x += 0.013_7;
        }
        assert_eq!(fast_exp(0.0), 1.0);
    }

    #[test]
    fn two_pl_information_is_a2pq() {
        let m = ItemModel::two_pl(1.7, -0.4).unwrap();
        for theta in [-3.0, 0.0, 2.0] {
            let p = sigmoid(1.7 * (theta + 0.4));
            assert!((m.information(theta) - 1.7 * 1.7 * p * (1.0 - p)).abs() < 1e-14);
        }
    }

    #[test]
    fn extreme_parameters_stay_finite() {
        let m = ItemModel::two_pl(50.0, 0.0).unwrap();
        let t = m.log_lik_terms(-20.0, 1);
        assert!((t.log_p - (-1000.0)).abs() < 1e-9, "{t:?}");
        assert!(t.d1.is_finite());
        let g = ItemModel::graded(40.0, vec![-0.01, 0.0, 0.01]).unwrap();
        for k in 0..4 {
            let t = g.log_lik_terms(20.0, k);
            assert!(!t.log_p.is_nan() && t.d1.is_finite(), "{k} {t:?}");
        }
    }
}
