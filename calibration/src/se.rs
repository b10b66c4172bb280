//! Standard errors of item parameters from the observed information.
//!
//! By Fisher's identity the score of the marginal likelihood is the gradient of the expected
//! complete-data log-likelihood at the posterior of the current parameters, S(φ) = ∇_φ' Q(φ' | φ)|φ'=φ.
//! The observed information is minus its Jacobian, -dS/dφ = -(∂²Q/∂φ'² + ∂²Q/∂φ'∂φ) — Oakes' (1999)
//! identity — computed here by central differences of the analytic score (each difference one
//! E-step), symmetrised and inverted. Priors are part of the objective, so their curvature is part
//! of the information (as in mirt). Standard errors of the bank's parameters (b = -d/a, c = σ(logit g),
//! …) follow by the delta method.

use crate::data::CalibData;
use crate::em::{EmPoint, Model, item_objective};
use crate::params::ItemState;
use etalon_items::ModelKind;
use etalon_items::irt::sigmoid;
use nalgebra::DMatrix;
use std::collections::BTreeMap;

/// The score ∇ log L (plus log prior) at `model`, in [`Model::flatten`] order.
pub fn score(data: &CalibData, model: &Model) -> Vec<f64> {
    let q = model.theta.len();
    let table = model.table();
    let e = crate::estep::e_step(
        data,
        &table,
        &model.log_prior(),
        &crate::estep::Workspace::empty(),
    );
    let mut out = Vec::new();
    let mut shared = 0.0;
    let has_shared = model.items.iter().any(|i| i.kind == ModelKind::OnePl && !i.fixed);
    for (j, st) in model.items.iter().enumerate() {
        if st.fixed {
            continue;
        }
        let s = table.offsets[j];
        let r = &e.r[s..s + st.categories() * q];
        let mut g = vec![0.0; st.n_free()];
        item_objective(st, r, &model.theta, &model.priors, Some(&mut g), None);
        out.extend(g);
        if st.kind == ModelKind::OnePl {
            let mut p = [0.0; 2];
            let mut dp = [0.0; 4];
            for (qq, &t) in model.theta.iter().enumerate() {
                st.probs_and_grads(t, &mut p, Some(&mut dp), true);
                shared += r[q + qq] * dp[3] / p[1] - r[qq] * dp[3] / p[0];
            }
        }
    }
    if has_shared {
        out.push(shared);
    }
    // Latent moments: Σ_q n_q ∂ log π_q, with π normalised on the grid.
    let (mu, var) = (model.latent.mean, model.latent.variance);
    let pi: Vec<f64> = model.log_prior().iter().map(|l| l.exp()).collect();
    let total: f64 = e.n.iter().sum();
    if model.free_mean {
        let mean_dev: f64 = pi.iter().zip(&model.theta).map(|(p, t)| p * (t - mu)).sum();
        out.push(
            e.n.iter()
                .zip(&model.theta)
                .map(|(n, t)| n * (t - mu))
                .sum::<f64>()
                / var
                - total * mean_dev / var,
        );
    }
    if model.free_variance {
        let sq: f64 = pi
            .iter()
            .zip(&model.theta)
            .map(|(p, t)| p * (t - mu).powi(2))
            .sum();
        let s: f64 =
            e.n.iter()
                .zip(&model.theta)
                .map(|(n, t)| n * (t - mu).powi(2))
                .sum();
        out.push((s - total * sq) / (2.0 * var * var));
    }
    out
}

/// Covariance matrix of the free parameters (inverse observed information), `None` if singular.
pub fn covariance(data: &CalibData, model: &Model) -> Option<DMatrix<f64>> {
    observed_covariance(model, |m| score(data, m))
}

/// The inverse of the observed information −∂S/∂φ, S = `score` (∇ log L in [`EmPoint::flatten`] order),
/// by central differences of the score (steps 1e-5·max(1, |φ_i|)), symmetrised; `None` if it is not
/// positive definite.
pub(crate) fn observed_covariance<M: EmPoint>(
    model: &M,
    score: impl Fn(&M) -> Vec<f64>,
) -> Option<DMatrix<f64>> {
    let p = model.flatten();
    let n = p.len();
    let mut jac = DMatrix::<f64>::zeros(n, n);
    for i in 0..n {
        let h = 1e-5 * p[i].abs().max(1.0);
        let mut up = model.clone();
        let mut v = p.clone();
        v[i] += h;
        up.unflatten(&v);
        let mut dn = model.clone();
        v[i] -= 2.0 * h;
        dn.unflatten(&v);
        let (su, sd) = (score(&up), score(&dn));
        for k in 0..n {
            jac[(k, i)] = (su[k] - sd[k]) / (2.0 * h);
        }
    }
    let info = -(&jac + jac.transpose()) * 0.5;
    info.cholesky().map(|c| c.inverse())
}

/// Standard errors of the bank parameters of every item (anchors get none), by parameter name.
pub fn standard_errors(data: &CalibData, model: &Model) -> Vec<BTreeMap<String, f64>> {
    let Some(cov) = covariance(data, model) else {
        return vec![BTreeMap::new(); model.items.len()];
    };
    let shared_index = {
        let k: usize = model.items.iter().filter(|i| !i.fixed).map(|i| i.n_free()).sum();
        model
            .items
            .iter()
            .any(|i| i.kind == ModelKind::OnePl && !i.fixed)
            .then_some(k)
    };
    item_standard_errors(&model.items, &cov, shared_index)
}

/// The delta method from the free parameters' covariance `cov` (items' free parameters first, in
/// order, and the shared 1PL slope at `shared_index`) to the bank parameters of every item.
pub(crate) fn item_standard_errors(
    items: &[ItemState],
    cov: &DMatrix<f64>,
    shared_index: Option<usize>,
) -> Vec<BTreeMap<String, f64>> {
    let mut out = vec![BTreeMap::new(); items.len()];
    let mut at = 0;
    for (j, st) in items.iter().enumerate() {
        if st.fixed {
            continue;
        }
        let nf = st.n_free();
        let mut idx: Vec<usize> = (at..at + nf).collect();
        at += nf;
        let (a, d) = (st.a, &st.d);
        // Gradients of each bank parameter with respect to idx (the item's free parameters, then the
        // shared slope for 1PL).
        let mut grads: Vec<(String, Vec<f64>)> = Vec::new();
        match st.kind {
            ModelKind::Rasch => grads.push(("b".into(), vec![-1.0])),
            ModelKind::OnePl => {
                if let Some(s) = shared_index {
                    idx.push(s);
                }
                grads.push(("a".into(), vec![0.0, 1.0]));
                grads.push(("b".into(), vec![-1.0 / a, d[0] / (a * a)]));
            }
            ModelKind::TwoPl | ModelKind::ThreePl | ModelKind::FourPl => {
                let mut ga = vec![0.0; nf];
                ga[0] = 1.0;
                let mut gb = vec![0.0; nf];
                gb[0] = d[0] / (a * a);
                gb[1] = -1.0 / a;
                grads.push(("a".into(), ga));
                grads.push(("b".into(), gb));
                if nf >= 3 {
                    let g = sigmoid(st.gamma);
                    let mut gc = vec![0.0; nf];
                    gc[2] = g * (1.0 - g);
                    grads.push(("c".into(), gc));
                }
                if nf >= 4 {
                    let u = sigmoid(st.upsilon);
                    let mut gd = vec![0.0; nf];
                    gd[3] = u * (1.0 - u);
                    grads.push(("d".into(), gd));
                }
            }
            ModelKind::Graded | ModelKind::Gpcm => {
                let mut ga = vec![0.0; nf];
                ga[0] = 1.0;
                grads.push(("a".into(), ga));
                for k in 0..d.len() {
                    let mut g = vec![0.0; nf];
                    if st.kind == ModelKind::Graded {
                        g[0] = d[k] / (a * a);
                        g[k + 1] = -1.0 / a;
                    } else {
                        let prev = if k == 0 { 0.0 } else { d[k - 1] };
                        g[0] = (d[k] - prev) / (a * a);
                        g[k + 1] = -1.0 / a;
                        if k > 0 {
                            g[k] = 1.0 / a;
                        }
                    }
                    grads.push((format!("b{}", k + 1), g));
                }
            }
        }
        for (name, g) in grads {
            let mut var = 0.0;
            for (x, &ix) in g.iter().zip(&idx) {
                for (y, &iy) in g.iter().zip(&idx) {
                    var += x * y * cov[(ix, iy)];
                }
            }
            if var.is_finite() && var >= 0.0 {
                out[j].insert(name, var.sqrt());
            }
        }
    }
    out
}
