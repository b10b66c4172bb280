//! One IRT kernel: the calibrator's slope–intercept formulation of the category probabilities (the
//! M-step's [`ItemState::probs_and_grads`]) and the log-probability table of the E-step
//! ([`Model::table`]) agree with `etalon_items::irt` — the kernel scoring and adaptive testing use —
//! for every model, random valid parameters and θ on a grid over [-6, 6].
//!
//! Log-probabilities are compared to 1e-10 absolute, which is a relative tolerance of 1e-10 on the
//! probabilities, tiny ones included.

use etalon_calibration::em::{Latent, Model, Priors};
use etalon_calibration::params::ItemState;
use etalon_items::{ItemModel, ModelKind, ResponseFunction};
use proptest::prelude::*;

const TOL: f64 = 1e-10;

/// θ from -6 to 6 in steps of 0.25.
fn grid() -> Vec<f64> {
    (0..=48).map(|i| -6.0 + 0.25 * f64::from(i)).collect()
}

/// Check one item: the calibration path against the kernel, category by category, point by point.
fn check(m: &ItemModel) -> Result<(), TestCaseError> {
    let st = ItemState::from_model(m);
    prop_assert_eq!(st.kind, m.kind());
    let k = m.n_categories();
    prop_assert_eq!(st.categories(), k);
    let theta = grid();
    let q = theta.len();
    // The M-step path, with and without the gradients (the probabilities must not depend on it).
    let n = st.n_free() + 1;
    let (mut p, mut p_plain) = (vec![0.0; k], vec![0.0; k]);
    let mut dp = vec![0.0; k * n];
    for &t in &theta {
        let with_slope = matches!(st.kind, ModelKind::Rasch | ModelKind::OnePl);
        let dp = if with_slope {
            &mut dp[..]
        } else {
            &mut dp[..k * (n - 1)]
        };
        st.probs_and_grads(t, &mut p, Some(dp), with_slope);
        st.probs_and_grads(t, &mut p_plain, None, false);
        prop_assert!(
            (p.iter().sum::<f64>() - 1.0).abs() < 1e-12,
            "{m:?} θ={t}: Σ P = {}",
            p.iter().sum::<f64>()
        );
        for c in 0..k {
            let kernel = m.log_prob(t, c);
            prop_assert!(kernel.is_finite(), "{m:?} θ={t} k={c}: kernel log P = {kernel}");
            prop_assert_eq!(p[c], p_plain[c]);
            let calib = p[c].ln();
            prop_assert!(
                (calib - kernel).abs() <= TOL,
                "{:?} θ={} k={}: calibration log P = {} (P = {:e}), kernel {} (P = {:e})",
                m,
                t,
                c,
                calib,
                p[c],
                kernel,
                kernel.exp()
            );
        }
    }
    // The E-step table.
    let model = Model {
        theta: theta.clone(),
        items: vec![st],
        latent: Latent {
            mean: 0.0,
            variance: 1.0,
        },
        free_variance: false,
        free_mean: false,
        priors: Priors::default(),
    };
    let table = model.table();
    prop_assert_eq!(table.q, q);
    for c in 0..k {
        for (&t, &l) in theta.iter().zip(table.row(0, c)) {
            let kernel = m.log_prob(t, c);
            prop_assert!(
                (l - kernel).abs() <= TOL,
                "{m:?} θ={t} k={c}: E-step table log P = {l}, kernel {kernel}"
            );
        }
    }
    Ok(())
}

fn slope() -> impl Strategy<Value = f64> {
    0.2..4.0f64
}

fn location() -> impl Strategy<Value = f64> {
    -4.0..4.0f64
}

/// Strictly increasing graded thresholds, 1 to 6 of them, at least 0.05 apart.
fn ordered_thresholds() -> impl Strategy<Value = Vec<f64>> {
    (-4.0..2.0f64, prop::collection::vec(0.05..2.0f64, 0..6)).prop_map(|(first, steps)| {
        let mut b = vec![first];
        for s in steps {
            b.push(b[b.len() - 1] + s);
        }
        b
    })
}

/// GPCM thresholds in any order (reversals are legitimate), 1 to 6 of them.
fn free_thresholds() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-4.0..4.0f64, 1..7)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rasch(b in location()) {
        check(&ItemModel::rasch(b).unwrap())?;
    }

    #[test]
    fn one_pl(a in slope(), b in location()) {
        check(&ItemModel::one_pl(a, b).unwrap())?;
    }

    #[test]
    fn two_pl(a in slope(), b in location()) {
        check(&ItemModel::two_pl(a, b).unwrap())?;
    }

    // Asymptotes away from exactly 0 and 1: the calibrator holds them as logits, and a bank's c = 0
    // becomes logit(1e-9) (`ItemState::from_model`), a different item, not a different kernel.
    #[test]
    fn three_pl(a in slope(), b in location(), c in 0.01..0.4f64) {
        check(&ItemModel::three_pl(a, b, c).unwrap())?;
    }

    #[test]
    fn four_pl(a in slope(), b in location(), c in 0.01..0.4f64, d in 0.6..0.99f64) {
        check(&ItemModel::four_pl(a, b, c, d).unwrap())?;
    }

    #[test]
    fn graded(a in slope(), b in ordered_thresholds()) {
        check(&ItemModel::graded(a, b).unwrap())?;
    }

    #[test]
    fn gpcm(a in slope(), b in free_thresholds()) {
        check(&ItemModel::gpcm(a, b).unwrap())?;
    }
}

/// The calibrator's own parameters (slope–intercept, logit asymptotes) converted to a bank item
/// describe the same response function: the conversion the calibrated bank is written with.
#[test]
fn slope_intercept_states_convert_to_the_same_item() {
    let theta = grid();
    for (kind, a, d, gamma, upsilon) in [
        (ModelKind::Rasch, 1.0, vec![0.7], -1.5, 1.5),
        (ModelKind::OnePl, 1.4, vec![-2.1], -1.5, 1.5),
        (ModelKind::TwoPl, 0.6, vec![3.3], -1.5, 1.5),
        (ModelKind::ThreePl, 2.2, vec![-0.4], -2.0, 1.5),
        (ModelKind::FourPl, 1.1, vec![0.9], -1.0, 2.5),
        (ModelKind::Graded, 1.7, vec![3.0, 0.5, -0.2, -4.0], -1.5, 1.5),
        (ModelKind::Gpcm, 0.9, vec![1.0, 0.2, 2.5], -1.5, 1.5),
    ] {
        let st = ItemState {
            kind,
            a,
            d,
            gamma,
            upsilon,
            fixed: false,
        };
        let m = st.to_model().unwrap();
        let mut p = vec![0.0; st.categories()];
        for &t in &theta {
            st.probs_and_grads(t, &mut p, None, false);
            for (c, pc) in p.iter().enumerate() {
                let kernel = m.log_prob(t, c);
                assert!(
                    (pc.ln() - kernel).abs() <= TOL,
                    "{kind:?} θ={t} k={c}: {} vs {kernel}",
                    pc.ln()
                );
            }
        }
    }
}
