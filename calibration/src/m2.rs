//! Overall model fit from the first- and second-order margins: M2 (Maydeu-Olivares & Joe 2005, 2006)
//! with its RMSEA and confidence interval, SRMSR, TLI and CFI, as mirt's `M2()`.
//!
//! For J items scored 0/1, the margins are the J proportions of 1s and the J(J−1)/2 proportions of
//! (1, 1) pairs; e = observed − model-implied margins (π_j = Σ_q w_q P_j(θ_q), π_jk = Σ_q w_q P_j P_k on
//! 61 points of [−6, 6] with the latent density's normalised weights w_q); Ξ their covariance under
//! the model (Ξ_ab = π_{a∪b} − π_a π_b, the joint probability of every item in either margin); Δ their
//! derivatives with respect to the model's free parameters. Then
//!
//! - M2 = N e′ [Ξ⁻¹ − Ξ⁻¹Δ (Δ′Ξ⁻¹Δ)⁻¹ Δ′Ξ⁻¹] e, df = J + J(J−1)/2 − k, asymptotically χ²_df;
//! - RMSEA = √(max(M2/df − 1, 0)/(N − 1)), its 90% interval √(λ/(N df)) with λ the non-centrality at
//!   which M2 is the 95th (lower bound) or 5th (upper bound) percentile of χ²_df(λ) (0 when none);
//! - SRMSR = the root mean square over pairs of (observed − model-implied) correlations;
//! - TLI = (M2₀/df₀ − M2/df)/(M2₀/df₀ − 1) and CFI = 1 − max(M2 − df, 0)/max(M2₀ − df₀, M2 − df, 0), against
//!   the independence model (slopes 0: π_j = p_j, df₀ = J(J−1)/2).
//!
//! Persons are those who answered every item (the margins need complete patterns). The covariance
//! matrix holds (J + J(J−1)/2)² cells, so M2 is computed for at most [`MAX_M2_ITEMS`] items.

use crate::params::ItemState;
use etalon_items::ItemModel;
use etalon_items::bank::Latent;
use etalon_items::irt::ResponseFunction;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};
use statrs::function::gamma::ln_gamma;

/// The most items M2 is computed for (1,830 margins, a 1,830² covariance matrix).
pub const MAX_M2_ITEMS: usize = 60;

/// M2 and the fit indices derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitedInformation {
    /// M2.
    pub m2: f64,
    /// Degrees of freedom: margins − free parameters.
    pub df: usize,
    /// P(χ²_df ≥ M2).
    pub p: f64,
    /// RMSEA.
    pub rmsea: f64,
    /// Lower bound of its 90% confidence interval.
    pub rmsea_5: f64,
    /// Upper bound.
    pub rmsea_95: f64,
    /// Standardised root mean square residual of the correlations.
    pub srmsr: f64,
    /// Tucker–Lewis index.
    pub tli: f64,
    /// Comparative fit index.
    pub cfi: f64,
    /// Persons with a complete pattern (the N of M2).
    pub persons: usize,
}

/// Why M2 was not computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "cause", rename_all = "snake_case")]
#[non_exhaustive]
pub enum M2Skipped {
    /// An item with more than two categories (M2* for polytomous items is not built).
    #[error("item `{item}` has more than two categories: M2 is computed for 0/1 items")]
    Polytomous {
        /// Item id.
        item: String,
    },
    /// More items than [`MAX_M2_ITEMS`].
    #[error("{items} items: M2 is computed for at most {max}")]
    TooManyItems {
        /// Items.
        items: usize,
        /// The limit.
        max: usize,
    },
    /// No degrees of freedom left (too few items for the parameters).
    #[error("{margins} margins for {parameters} parameters: M2 has no degrees of freedom")]
    NoDegreesOfFreedom {
        /// Margins.
        margins: usize,
        /// Free parameters.
        parameters: usize,
    },
    /// Too few complete patterns.
    #[error("{complete} persons answered every item: M2 needs at least 20")]
    TooFewCompletePatterns {
        /// Persons with a complete pattern.
        complete: usize,
    },
    /// The covariance of the margins is singular (an item everybody answers alike, say).
    #[error("the covariance of the margins is singular (an item with a proportion of 0 or 1?)")]
    Singular,
}

/// One free parameter's derivatives: ∂P_j(θ_q)/∂φ for the items it moves, ∂w_q/∂φ when it moves
/// the latent weights.
struct Parameter {
    items: Vec<(usize, Vec<f64>)>,
    weights: Option<Vec<f64>>,
}

/// The margins' model: P_j(θ_q), weights, parameters.
struct MarginModel {
    p: Vec<Vec<f64>>,
    w: Vec<f64>,
    params: Vec<Parameter>,
}

/// Index of margin a: the items it is the joint probability of (one or two).
fn margin_items(j: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = (0..j).map(|i| (i, i)).collect();
    for a in 0..j {
        for b in (a + 1)..j {
            out.push((a, b));
        }
    }
    out
}

impl MarginModel {
    /// π_U = Σ_q w_q Π_{i∈U} P_i(θ_q) for the union U of the items of two margins.
    fn joint(&self, u: &[usize]) -> f64 {
        (0..self.w.len())
            .map(|q| self.w[q] * u.iter().map(|&i| self.p[i][q]).product::<f64>())
            .sum()
    }

    /// The margins π (J singles, then the pairs).
    fn margins(&self, idx: &[(usize, usize)]) -> Vec<f64> {
        idx.iter()
            .map(|&(a, b)| {
                if a == b {
                    self.joint(&[a])
                } else {
                    self.joint(&[a, b])
                }
            })
            .collect()
    }

    /// Ξ_ab = π_{a∪b} − π_a π_b.
    fn covariance(&self, idx: &[(usize, usize)], pi: &[f64]) -> DMatrix<f64> {
        let m = idx.len();
        let rows: Vec<Vec<f64>> = (0..m)
            .into_par_iter()
            .map(|r| {
                let mut u = Vec::with_capacity(4);
                (0..m)
                    .map(|c| {
                        u.clear();
                        for i in [idx[r].0, idx[r].1, idx[c].0, idx[c].1] {
                            if !u.contains(&i) {
                                u.push(i);
                            }
                        }
                        self.joint(&u) - pi[r] * pi[c]
                    })
                    .collect()
            })
            .collect();
        DMatrix::from_fn(m, m, |r, c| rows[r][c])
    }

    /// Δ: ∂π_a/∂φ_r.
    fn jacobian(&self, idx: &[(usize, usize)]) -> DMatrix<f64> {
        let q = self.w.len();
        let mut d = DMatrix::zeros(idx.len(), self.params.len());
        for (r, par) in self.params.iter().enumerate() {
            // ∂P_i(θ_q)/∂φ, zero for the items φ does not move.
            let mut dp = vec![None; self.p.len()];
            for (i, v) in &par.items {
                dp[*i] = Some(v.as_slice());
            }
            for (a, &(i, j)) in idx.iter().enumerate() {
                let mut s = 0.0;
                for qq in 0..q {
                    let (pi, pj) = (self.p[i][qq], self.p[j][qq]);
                    let (di, dj) = (dp[i].map_or(0.0, |v| v[qq]), dp[j].map_or(0.0, |v| v[qq]));
                    let (value, dvalue) = if i == j {
                        (pi, di)
                    } else {
                        (pi * pj, di * pj + pi * dj)
                    };
                    s += self.w[qq] * dvalue + par.weights.as_ref().map_or(0.0, |w| w[qq] * value);
                }
                d[(a, r)] = s;
            }
        }
        d
    }

    /// N e′ [Ξ⁻¹ − Ξ⁻¹Δ (Δ′Ξ⁻¹Δ)⁻¹ Δ′Ξ⁻¹] e.
    fn statistic(&self, idx: &[(usize, usize)], observed: &[f64], n: f64) -> Result<f64, M2Skipped> {
        let pi = self.margins(idx);
        let xi = self.covariance(idx, &pi);
        let delta = self.jacobian(idx);
        let e = DVector::from_iterator(idx.len(), observed.iter().zip(&pi).map(|(o, p)| o - p));
        let chol = xi.cholesky().ok_or(M2Skipped::Singular)?;
        let xi_e = chol.solve(&e);
        let xi_d = chol.solve(&delta);
        let dxd = delta.transpose() * &xi_d;
        let dxe = delta.transpose() * &xi_e;
        let inner = dxd.cholesky().ok_or(M2Skipped::Singular)?.solve(&dxe);
        Ok(n * (e.dot(&xi_e) - dxe.dot(&inner)))
    }
}

/// CDF of the non-central χ² with `k` degrees of freedom and non-centrality λ at x: the Poisson
/// mixture Σ_i e^{−λ/2} (λ/2)^i / i! · F_χ²(x; k + 2i), summed until the Poisson weights left are
/// below 1e-15.
fn noncentral_chi2_cdf(x: f64, k: f64, lambda: f64) -> f64 {
    let chi = |df: f64| ChiSquared::new(df).map_or(f64::NAN, |c| c.cdf(x));
    if lambda <= 0.0 {
        return chi(k);
    }
    let half = lambda / 2.0;
    let top = (half + 12.0 * half.sqrt() + 40.0).ceil() as usize;
    let bottom = (half - 12.0 * half.sqrt()).floor().max(0.0) as usize;
    (bottom..=top)
        .map(|i| {
            let i = i as f64;
            let log_w = -half + i * half.ln() - ln_gamma(i + 1.0);
            log_w.exp() * chi(k + 2.0 * i)
        })
        .sum()
}

/// The non-centrality λ ≥ 0 at which F(x; k, λ) = target (decreasing in λ), 0 when F(x; k, 0) is
/// already below the target; by bisection to 1e-12 relative.
fn noncentrality(x: f64, k: f64, target: f64) -> f64 {
    let f = |l: f64| noncentral_chi2_cdf(x, k, l) - target;
    if f(0.0) <= 0.0 {
        return 0.0;
    }
    let mut hi = x.max(1.0);
    while f(hi) > 0.0 {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    while hi - lo > 1e-12 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Normalised N(mean, variance) weights on `theta`, and their derivative with respect to the
/// variance.
fn weights_and_derivative(theta: &[f64], latent: Latent) -> (Vec<f64>, Vec<f64>) {
    let raw: Vec<f64> = theta
        .iter()
        .map(|t| (-0.5 * (t - latent.mean).powi(2) / latent.variance).exp())
        .collect();
    let total: f64 = raw.iter().sum();
    let w: Vec<f64> = raw.iter().map(|x| x / total).collect();
    // ∂ log raw_q/∂σ² = (θ_q − μ)²/(2σ⁴); normalising subtracts its weighted mean.
    let g: Vec<f64> = theta
        .iter()
        .map(|t| (t - latent.mean).powi(2) / (2.0 * latent.variance.powi(2)))
        .collect();
    let mean_g: f64 = w.iter().zip(&g).map(|(a, b)| a * b).sum();
    let dw = w.iter().zip(&g).map(|(w, g)| w * (g - mean_g)).collect();
    (w, dw)
}

/// M2 of `models` (the data's items, 0/1) under `latent`, on the complete patterns `each_row` gives
/// (each a category per item). The free parameters are each item's (as calibrated by Etalon: Rasch
/// an intercept, 1PL an intercept and one shared slope, 2PL a slope and an intercept, 3PL/4PL their
/// asymptotes too) and, when every item is Rasch, the latent variance.
pub fn m2_of(
    ids: &[String],
    models: &[&ItemModel],
    latent: Latent,
    each_row: impl FnOnce(&mut dyn FnMut(&[usize])),
) -> Result<LimitedInformation, M2Skipped> {
    let nj = models.len();
    if let Some(j) = (0..nj).find(|&j| models[j].n_categories() != 2) {
        return Err(M2Skipped::Polytomous { item: ids[j].clone() });
    }
    if nj > MAX_M2_ITEMS {
        return Err(M2Skipped::TooManyItems {
            items: nj,
            max: MAX_M2_ITEMS,
        });
    }
    // Observed margins over the complete patterns.
    let idx = margin_items(nj);
    let mut counts = vec![0.0f64; idx.len()];
    let mut n = 0usize;
    each_row(&mut |row: &[usize]| {
        n += 1;
        for (a, &(i, j)) in idx.iter().enumerate() {
            if row[i] == 1 && row[j] == 1 {
                counts[a] += 1.0;
            }
        }
    });
    if n < 20 {
        return Err(M2Skipped::TooFewCompletePatterns { complete: n });
    }
    let observed: Vec<f64> = counts.iter().map(|c| c / n as f64).collect();
    let nf = n as f64;

    // The model on 61 points.
    let theta: Vec<f64> = (0..61).map(|i| -6.0 + 0.2 * i as f64).collect();
    let (w, dw) = weights_and_derivative(&theta, latent);
    let states: Vec<ItemState> = models.iter().map(|m| ItemState::from_model(m)).collect();
    let mut p = vec![vec![0.0; theta.len()]; nj];
    let mut params: Vec<Parameter> = Vec::new();
    let mut shared_slope: Vec<(usize, Vec<f64>)> = Vec::new();
    for (j, st) in states.iter().enumerate() {
        let with_slope = st.kind == etalon_items::ModelKind::OnePl;
        let cols = st.n_free() + usize::from(with_slope);
        let mut derivs = vec![vec![0.0; theta.len()]; cols];
        let (mut pk, mut dp) = ([0.0; 2], vec![0.0; 2 * cols]);
        for (q, &t) in theta.iter().enumerate() {
            st.probs_and_grads(t, &mut pk, Some(&mut dp), with_slope);
            p[j][q] = pk[1];
            for (c, d) in derivs.iter_mut().enumerate() {
                d[q] = dp[cols + c];
            }
        }
        if with_slope {
            shared_slope.push((j, derivs.pop().unwrap_or_default()));
        }
        for d in derivs {
            params.push(Parameter {
                items: vec![(j, d)],
                weights: None,
            });
        }
    }
    if !shared_slope.is_empty() {
        params.push(Parameter {
            items: shared_slope,
            weights: None,
        });
    }
    if states.iter().all(|s| s.kind == etalon_items::ModelKind::Rasch) {
        params.push(Parameter {
            items: Vec::new(),
            weights: Some(dw),
        });
    }
    let k = params.len();
    let m = idx.len();
    if m <= k {
        return Err(M2Skipped::NoDegreesOfFreedom {
            margins: m,
            parameters: k,
        });
    }
    let model = MarginModel { p, w, params };
    let m2 = model.statistic(&idx, &observed, nf)?;
    let df = m - k;

    // The independence model: P_j = the observed proportion, one intercept per item.
    let props: Vec<f64> = observed[..nj].to_vec();
    let null = MarginModel {
        p: props.iter().map(|&x| vec![x]).collect(),
        w: vec![1.0],
        params: props
            .iter()
            .enumerate()
            .map(|(j, &x)| Parameter {
                items: vec![(j, vec![x * (1.0 - x)])],
                weights: None,
            })
            .collect(),
    };
    let m2_null = null.statistic(&idx, &observed, nf)?;
    let df_null = (m - nj) as f64;

    // Fit indices.
    let dff = df as f64;
    let chi = ChiSquared::new(dff).map_err(|_| M2Skipped::Singular)?;
    let rmsea_of = |lambda: f64| (lambda / (nf * dff)).sqrt();
    let pi = model.margins(&idx);
    let corr = |mg: &[f64], a: usize, i: usize, j: usize| {
        (mg[a] - mg[i] * mg[j]) / (mg[i] * (1.0 - mg[i]) * mg[j] * (1.0 - mg[j])).sqrt()
    };
    let mut sq = 0.0;
    for (a, &(i, j)) in idx.iter().enumerate().skip(nj) {
        sq += (corr(&observed, a, i, j) - corr(&pi, a, i, j)).powi(2);
    }
    let srmsr = (sq / (m - nj) as f64).sqrt();
    let tli = (m2_null / df_null - m2 / dff) / (m2_null / df_null - 1.0);
    // mirt's form: 1 − max(M2 − df, 0) / max(M2₀ − df₀, M2 − df, 0) (1 when both fit perfectly).
    let worst = (m2_null - df_null).max(m2 - dff).max(0.0);
    let cfi = if worst > 0.0 {
        1.0 - (m2 - dff).max(0.0) / worst
    } else {
        1.0
    };
    Ok(LimitedInformation {
        m2,
        df,
        p: chi.sf(m2),
        rmsea: ((m2 / dff - 1.0).max(0.0) / (nf - 1.0)).sqrt(),
        rmsea_5: rmsea_of(noncentrality(m2, dff, 0.95)),
        rmsea_95: rmsea_of(noncentrality(m2, dff, 0.05)),
        srmsr,
        tli,
        cfi,
        persons: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noncentral_chi2_agrees_with_scipy() {
        // scipy 1.17.1: ncx2.cdf(10, 5, 3), chi2.cdf(10, 5), ncx2.cdf(700, 464, 220), ncx2.cdf(12, 5, 30).
        let cases = [
            (10.0, 5.0, 3.0, 0.7172368464311434),
            (10.0, 5.0, 0.0, 0.9247647538534878),
            (700.0, 464.0, 220.0, 0.6528368953047639),
            (12.0, 5.0, 30.0, 0.0066973656006212795),
        ];
        for (x, k, l, f) in cases {
            let got = noncentral_chi2_cdf(x, k, l);
            assert!((got - f).abs() < 1e-10, "F({x}; {k}, {l}) = {got}, scipy {f}");
        }
        let l = noncentrality(10.0, 5.0, 0.7172368464311434);
        assert!((l - 3.0).abs() < 1e-8, "{l}");
        assert_eq!(noncentrality(1.0, 5.0, 0.95), 0.0, "F(1; 5, 0) < 0.95");
    }
}
