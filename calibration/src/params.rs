//! Item parameters as the calibrator estimates them: slope–intercept form, as mirt does.
//!
//! | model | free parameters φ | probability |
//! | --- | --- | --- |
//! | rasch, 1pl | d (the slope is 1, or shared) | P = σ(aθ + d) |
//! | 2pl | a, d | P = σ(aθ + d) |
//! | 3pl | a, d, γ = logit g | P = g + (1 - g) σ(aθ + d) |
//! | 4pl | a, d, γ, υ = logit u | P = g + (u - g) σ(aθ + d) |
//! | graded | a, d_1 > … > d_{K-1} | P(X ≥ k) = σ(aθ + d_k) |
//! | gpcm | a, d_1 … d_{K-1} | P(X = k) ∝ exp(k·aθ + d_k), d_0 = 0 |
//!
//! Conversion to the IRT form of `FORMATS.md`: b = -d/a (graded b_k = -d_k/a; GPCM
//! b_k = -(d_k - d_{k-1})/a), c = g, d = u. [`ItemState::probs_and_grads`] returns P_k and ∂P_k/∂φ,
//! from which the M-step's gradient Σ r_k ∂P_k/(P_k) and Fisher information Σ n ∂P_k ∂P_kᵀ/P_k follow
//! for every model (Bock & Aitkin 1981; Baker & Kim 2004, ch. 6–7).
//!
//! One IRT kernel: the probabilities at θ that the E-step, the marginal log-likelihood and S-X² use
//! come from `etalon_items::irt` ([`ItemState::log_probabilities`]), the kernel scoring and adaptive
//! testing use. [`ItemState::probs_and_grads`] is the M-step's own formulation — P_k together with
//! its gradient in the slope–intercept parameters φ, which the kernel (derivatives in θ only) does
//! not provide, over the whole unconstrained φ space — and `tests/kernel.rs` checks that its P_k
//! equal the kernel's for every model.

use etalon_items::irt::sigmoid;
use etalon_items::{ItemModel, ModelKind, ResponseFunction};

/// One item's parameters during calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    /// The model.
    pub kind: ModelKind,
    /// Slope (1 for Rasch; the shared slope for 1PL).
    pub a: f64,
    /// Intercepts: one for dichotomous models, K - 1 for polytomous ones.
    pub d: Vec<f64>,
    /// logit of the lower asymptote (3PL, 4PL).
    pub gamma: f64,
    /// logit of the upper asymptote (4PL).
    pub upsilon: f64,
    /// Anchored: kept fixed.
    pub fixed: bool,
}

/// Largest |intercept| and slope the calibrator lets an item reach: data that push beyond (an item
/// everyone answered the same way) get a warning and a finite result.
pub const MAX_INTERCEPT: f64 = 25.0;
/// Largest slope.
pub const MAX_SLOPE: f64 = 25.0;
/// Smallest slope of the models whose slope must be positive (1PL, graded, GPCM, and any slope under
/// a lognormal prior); 2PL, 3PL and 4PL slopes are free in [−MAX_SLOPE, MAX_SLOPE], as in mirt, so an
/// item that discriminates negatively reaches its optimum instead of stopping at the boundary.
pub const MIN_SLOPE: f64 = 1e-3;

impl ItemState {
    /// Starting values from the observed category proportions `props` (K values summing to 1).
    pub fn start(kind: ModelKind, props: &[f64]) -> Self {
        let clamp = |p: f64| p.clamp(0.01, 0.99);
        let logit = |p: f64| (clamp(p) / (1.0 - clamp(p))).ln();
        let k = props.len();
        let d = match kind {
            ModelKind::Graded => (1..k).map(|c| logit(props[c..].iter().sum())).collect::<Vec<_>>(),
            ModelKind::Gpcm => {
                // d_k = Σ_{v ≤ k} log(p_v / p_{v-1}): the adjacent-category logits.
                let mut acc = 0.0;
                (1..k)
                    .map(|c| {
                        acc += (props[c].max(0.01) / props[c - 1].max(0.01)).ln();
                        acc
                    })
                    .collect()
            }
            _ => vec![logit(props.get(1).copied().unwrap_or(0.5))],
        };
        let mut d = d;
        if kind == ModelKind::Graded {
            for i in 1..d.len() {
                if d[i] >= d[i - 1] {
                    d[i] = d[i - 1] - 0.1;
                }
            }
        }
        ItemState {
            kind,
            a: 1.0,
            d,
            gamma: -1.5,
            upsilon: 1.5,
            fixed: false,
        }
    }

    /// The state of a bank item (anchors, or starting values from a bank).
    pub fn from_model(m: &ItemModel) -> Self {
        let kind = m.kind();
        match (m.logistic(), m.polytomous()) {
            (Some(l), _) => ItemState {
                kind,
                a: l.a(),
                d: vec![-l.a() * l.b()],
                gamma: logit_clamped(l.c()),
                upsilon: logit_clamped(l.d()),
                fixed: false,
            },
            (None, Some(p)) => {
                let a = p.a();
                let d = if kind == ModelKind::Graded {
                    p.thresholds().iter().map(|b| -a * b).collect()
                } else {
                    let mut acc = 0.0;
                    p.thresholds()
                        .iter()
                        .map(|b| {
                            acc -= a * b;
                            acc
                        })
                        .collect()
                };
                ItemState {
                    kind,
                    a,
                    d,
                    gamma: -1.5,
                    upsilon: 1.5,
                    fixed: false,
                }
            }
            (None, None) => unreachable!("every model is logistic or polytomous"),
        }
    }

    /// Number of categories.
    pub fn categories(&self) -> usize {
        if self.kind.is_polytomous() {
            self.d.len() + 1
        } else {
            2
        }
    }

    /// Number of free parameters estimated for this item alone (the 1PL slope is shared, not counted).
    pub fn n_free(&self) -> usize {
        match self.kind {
            ModelKind::Rasch | ModelKind::OnePl => 1,
            ModelKind::TwoPl => 2,
            ModelKind::ThreePl => 3,
            ModelKind::FourPl => 4,
            ModelKind::Graded | ModelKind::Gpcm => 1 + self.d.len(),
        }
    }

    /// Names of the free parameters, in vector order (`a`, `d`, `logit_g`, `logit_u`, `d1`, …).
    pub fn free_names(&self) -> Vec<String> {
        match self.kind {
            ModelKind::Rasch | ModelKind::OnePl => vec!["d".into()],
            ModelKind::TwoPl => vec!["a".into(), "d".into()],
            ModelKind::ThreePl => vec!["a".into(), "d".into(), "logit_g".into()],
            ModelKind::FourPl => vec!["a".into(), "d".into(), "logit_g".into(), "logit_u".into()],
            ModelKind::Graded | ModelKind::Gpcm => std::iter::once("a".to_string())
                .chain((1..=self.d.len()).map(|k| format!("d{k}")))
                .collect(),
        }
    }

    /// The free parameters as a vector.
    pub fn free(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.n_free());
        match self.kind {
            ModelKind::Rasch | ModelKind::OnePl => v.push(self.d[0]),
            ModelKind::TwoPl => v.extend([self.a, self.d[0]]),
            ModelKind::ThreePl => v.extend([self.a, self.d[0], self.gamma]),
            ModelKind::FourPl => v.extend([self.a, self.d[0], self.gamma, self.upsilon]),
            ModelKind::Graded | ModelKind::Gpcm => {
                v.push(self.a);
                v.extend_from_slice(&self.d);
            }
        }
        v
    }

    /// Set the free parameters from a vector (same order as [`ItemState::free`]).
    pub fn set_free(&mut self, v: &[f64]) {
        match self.kind {
            ModelKind::Rasch | ModelKind::OnePl => self.d[0] = v[0],
            ModelKind::TwoPl => {
                self.a = v[0];
                self.d[0] = v[1];
            }
            ModelKind::ThreePl => {
                self.a = v[0];
                self.d[0] = v[1];
                self.gamma = v[2];
            }
            ModelKind::FourPl => {
                self.a = v[0];
                self.d[0] = v[1];
                self.gamma = v[2];
                self.upsilon = v[3];
            }
            ModelKind::Graded | ModelKind::Gpcm => {
                self.a = v[0];
                self.d.copy_from_slice(&v[1..]);
            }
        }
    }

    /// Whether the slope may be negative: 2PL, 3PL and 4PL items (mirt's unconstrained slopes).
    pub fn signed_slope(&self) -> bool {
        matches!(
            self.kind,
            ModelKind::TwoPl | ModelKind::ThreePl | ModelKind::FourPl
        )
    }

    /// The slopes the calibrator lets this item take.
    pub fn slope_range(&self) -> (f64, f64) {
        if self.signed_slope() {
            (-MAX_SLOPE, MAX_SLOPE)
        } else {
            (MIN_SLOPE, MAX_SLOPE)
        }
    }

    /// Whether the parameters are admissible (slope range, intercept range, graded order, g < u).
    pub fn admissible(&self) -> bool {
        let (lo, hi) = self.slope_range();
        let slope_ok = (lo..=hi).contains(&self.a) && self.a != 0.0;
        let d_ok = self
            .d
            .iter()
            .all(|d| d.is_finite() && d.abs() <= MAX_INTERCEPT * (1.0 + self.d.len() as f64));
        let order_ok = self.kind != ModelKind::Graded || self.d.windows(2).all(|w| w[0] > w[1]);
        let asym_ok = self.gamma.abs() < 30.0
            && self.upsilon.abs() < 30.0
            && (self.kind != ModelKind::FourPl || sigmoid(self.gamma) < sigmoid(self.upsilon));
        slope_ok && d_ok && order_ok && asym_ok
    }

    /// log P_k(θ_q) for every category k and point q of `theta` (category-major: K rows of Q values),
    /// from the items' IRT kernel (`etalon_items::irt`) in log space. States that are no valid bank
    /// item (met only transiently, e.g. by the finite differences of standard errors around
    /// degenerate items: graded intercepts that collapse, g ≥ u) fall back on
    /// [`ItemState::probs_and_grads`], floored at 1e-300.
    pub fn log_probabilities(&self, theta: &[f64]) -> Vec<f64> {
        let k = self.categories();
        let q = theta.len();
        let mut out = vec![0.0; k * q];
        match self.to_model() {
            Ok(m) => {
                for (c, row) in out.chunks_exact_mut(q).enumerate() {
                    for (o, &t) in row.iter_mut().zip(theta) {
                        *o = m.log_prob(t, c);
                    }
                }
            }
            Err(_) => {
                let mut p = vec![0.0; k];
                for (qq, &t) in theta.iter().enumerate() {
                    self.probs_and_grads(t, &mut p, None, false);
                    for (c, pc) in p.iter().enumerate() {
                        out[c * q + qq] = pc.max(1e-300).ln();
                    }
                }
            }
        }
        out
    }

    /// Category probabilities P_k(θ) into `p` (K values), and when `dp` is given, ∂P_k/∂φ for the
    /// free parameters into `dp` (K × n_free, category-major). With `with_slope`, the Rasch/1PL slope
    /// derivative is written as an extra last column (the shared 1PL slope's M-step uses it).
    pub fn probs_and_grads(&self, theta: f64, p: &mut [f64], dp: Option<&mut [f64]>, with_slope: bool) {
        let a = self.a;
        match self.kind {
            ModelKind::Graded => {
                let km1 = self.d.len();
                // P*_k for k = 0 … K (P*_0 = 1, P*_K = 0).
                let star = |k: usize| -> (f64, f64) {
                    if k == 0 {
                        (1.0, 0.0)
                    } else if k > km1 {
                        (0.0, 1.0)
                    } else {
                        let z = a * theta + self.d[k - 1];
                        (sigmoid(z), sigmoid(-z))
                    }
                };
                let n = self.n_free();
                let mut dp = dp;
                for k in 0..=km1 {
                    let (pk, qk) = star(k);
                    let (pk1, qk1) = star(k + 1);
                    // P_k = P*_k - P*_{k+1} = P*_k Q*_{k+1} - Q*_k P*_{k+1} (no cancellation).
                    p[k] = (pk * qk1 - qk * pk1).max(0.0);
                    if let Some(g) = dp.as_deref_mut() {
                        let row = &mut g[k * n..(k + 1) * n];
                        row.iter_mut().for_each(|x| *x = 0.0);
                        let wk = pk * qk;
                        let wk1 = pk1 * qk1;
                        row[0] = theta * (wk - wk1);
                        if k >= 1 {
                            row[k] += wk;
                        }
                        if k < km1 {
                            row[k + 1] -= wk1;
                        }
                    }
                }
            }
            ModelKind::Gpcm => {
                let kk = self.d.len() + 1;
                let mut max = f64::NEG_INFINITY;
                for (k, pk) in p.iter_mut().enumerate().take(kk) {
                    let eta = k as f64 * a * theta + if k == 0 { 0.0 } else { self.d[k - 1] };
                    *pk = eta;
                    max = max.max(eta);
                }
                let mut sum = 0.0;
                for pk in p.iter_mut().take(kk) {
                    *pk = (*pk - max).exp();
                    sum += *pk;
                }
                let mut mean = 0.0;
                for (k, pk) in p.iter_mut().enumerate().take(kk) {
                    *pk /= sum;
                    mean += k as f64 * *pk;
                }
                if let Some(g) = dp {
                    let n = self.n_free();
                    for k in 0..kk {
                        let row = &mut g[k * n..(k + 1) * n];
                        // ∂P_k/∂a = P_k θ (k - E[k]); ∂P_k/∂d_m = P_k (1[k = m] - P_m).
                        row[0] = p[k] * theta * (k as f64 - mean);
                        for m in 1..kk {
                            row[m] = p[k] * (f64::from(u8::from(k == m)) - p[m]);
                        }
                    }
                }
            }
            _ => {
                let z = a * theta + self.d[0];
                let (s, t) = (sigmoid(z), sigmoid(-z));
                let (g, u) = match self.kind {
                    ModelKind::ThreePl => (sigmoid(self.gamma), 1.0),
                    ModelKind::FourPl => (sigmoid(self.gamma), sigmoid(self.upsilon)),
                    _ => (0.0, 1.0),
                };
                let span = u - g;
                p[1] = g + span * s;
                p[0] = (1.0 - u) + span * t;
                if let Some(out) = dp {
                    let n = self.n_free() + usize::from(with_slope);
                    let dz = span * s * t; // ∂P/∂z
                    let mut row = [0.0f64; 5];
                    match self.kind {
                        ModelKind::Rasch | ModelKind::OnePl => {
                            row[0] = dz;
                            row[1] = dz * theta;
                        }
                        ModelKind::TwoPl => {
                            row[0] = dz * theta;
                            row[1] = dz;
                        }
                        ModelKind::ThreePl => {
                            row[0] = dz * theta;
                            row[1] = dz;
                            row[2] = g * (1.0 - g) * t;
                        }
                        _ => {
                            row[0] = dz * theta;
                            row[1] = dz;
                            row[2] = g * (1.0 - g) * t;
                            row[3] = u * (1.0 - u) * s;
                        }
                    }
                    for i in 0..n {
                        out[n + i] = row[i];
                        out[i] = -row[i];
                    }
                }
            }
        }
    }

    /// The item in the bank's (IRT) parameterisation.
    pub fn to_model(&self) -> Result<ItemModel, etalon_items::ModelError> {
        let a = self.a;
        match self.kind {
            ModelKind::Rasch => ItemModel::rasch(-self.d[0]),
            ModelKind::OnePl => ItemModel::one_pl(a, -self.d[0] / a),
            ModelKind::TwoPl => ItemModel::two_pl(a, -self.d[0] / a),
            ModelKind::ThreePl => ItemModel::three_pl(a, -self.d[0] / a, sigmoid(self.gamma)),
            ModelKind::FourPl => {
                ItemModel::four_pl(a, -self.d[0] / a, sigmoid(self.gamma), sigmoid(self.upsilon))
            }
            ModelKind::Graded => ItemModel::graded(a, self.d.iter().map(|d| -d / a).collect()),
            ModelKind::Gpcm => {
                let mut prev = 0.0;
                ItemModel::gpcm(
                    a,
                    self.d
                        .iter()
                        .map(|&d| {
                            let b = -(d - prev) / a;
                            prev = d;
                            b
                        })
                        .collect(),
                )
            }
        }
    }
}

fn logit_clamped(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

/// Free parameters of the items that are estimated (fixed anchor items have none).
pub fn n_free_items(items: &[ItemState]) -> usize {
    items.iter().filter(|i| !i.fixed).map(ItemState::n_free).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> Vec<ItemState> {
        let mut v = vec![
            ItemState::start(ModelKind::TwoPl, &[0.3, 0.7]),
            ItemState::start(ModelKind::Rasch, &[0.6, 0.4]),
            ItemState::start(ModelKind::ThreePl, &[0.3, 0.7]),
            ItemState::start(ModelKind::FourPl, &[0.3, 0.7]),
            ItemState::start(ModelKind::Graded, &[0.1, 0.2, 0.3, 0.4]),
            ItemState::start(ModelKind::Gpcm, &[0.1, 0.2, 0.3, 0.4]),
        ];
        v[0].a = 1.3;
        v[2].a = 0.8;
        v[4].a = 1.7;
        v[5].a = 0.6;
        v
    }

    #[test]
    fn gradients_match_finite_differences() {
        for st in states() {
            let k = st.categories();
            let n = st.n_free();
            for theta in [-2.0, 0.3, 1.7] {
                let mut p = vec![0.0; k];
                let mut g = vec![0.0; k * (n + 1)];
                st.probs_and_grads(theta, &mut p, Some(&mut g), false);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                for i in 0..n {
                    let h = 1e-6;
                    let mut up = st.clone();
                    let mut v = st.free();
                    v[i] += h;
                    up.set_free(&v);
                    let mut dn = st.clone();
                    v[i] -= 2.0 * h;
                    dn.set_free(&v);
                    let (mut pu, mut pd) = (vec![0.0; k], vec![0.0; k]);
                    up.probs_and_grads(theta, &mut pu, None, false);
                    dn.probs_and_grads(theta, &mut pd, None, false);
                    for c in 0..k {
                        let fd = (pu[c] - pd[c]) / (2.0 * h);
                        assert!(
                            (g[c * n + i] - fd).abs() < 1e-7,
                            "{:?} θ={theta} k={c} param {i}: {} vs {fd}",
                            st.kind,
                            g[c * n + i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn conversion_round_trips() {
        for st in states() {
            let m = st.to_model().unwrap();
            let back = ItemState::from_model(&m);
            assert!((back.a - st.a).abs() < 1e-12);
            for (x, y) in back.d.iter().zip(&st.d) {
                assert!((x - y).abs() < 1e-12, "{:?}", st.kind);
            }
        }
    }
}
