//! Item parameter drift: between two calibrations of the same items, which items moved beyond what
//! their standard errors allow once both are on one scale?
//!
//! The new calibration is linked to the old one through the common items ([`crate::linking`]), and
//! each parameter of each common item is carried to the old scale (a* = a/A with SE/A, b* = A·b + B
//! with A·SE, every threshold likewise; asymptotes unchanged). Its displacement is tested by
//! z = (φ*_new − φ_old) / √(SE²_old + SE*²_new), p = 2(1 − Φ(|z|)) (Wells, Subkoviak & Serlin 2002;
//! the uncertainty of A and B is neglected), p adjusted over every comparison (Holm by default). An
//! item is drifted when one of its parameters is significant after adjustment.
//!
//! Drifted items would bias the linking they took part in, so the linking is purified (Candell &
//! Drasgow 1988): relinked without the drifted items, and the items tested again, until the set of
//! drifted items no longer changes (at most [`MAX_PURIFICATIONS`] rounds).

use crate::dif::{Adjustment, adjust};
use crate::linking::{self, Linking, LinkingError, LinkingMethod};
use etalon_items::{Bank, Item};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// Rounds of relinking without the drifted items.
pub const MAX_PURIFICATIONS: usize = 10;

/// Why drift cannot be assessed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DriftError {
    /// The linking failed.
    #[error(transparent)]
    Linking(#[from] LinkingError),
    /// A parameter without a standard error.
    #[error(
        "item `{item}`: the {which} calibration has no standard error for `{parameter}` (drift weighs each move \
         against the standard errors: calibrate with standard errors, `etalon calibrate --se`)"
    )]
    MissingStandardError {
        /// `old` or `new`.
        which: &'static str,
        /// Item id.
        item: String,
        /// Parameter name.
        parameter: String,
    },
    /// α outside (0, 1).
    #[error("the significance level must be in (0, 1) (got {0})")]
    Alpha(f64),
}

/// One parameter of one common item, compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterDrift {
    /// Item id.
    pub item: String,
    /// Parameter name (a, b, b1…, c, d).
    pub parameter: String,
    /// In the old calibration.
    pub old: f64,
    /// Its SE.
    pub old_se: f64,
    /// In the new calibration, carried to the old scale.
    pub new: f64,
    /// Its SE on the old scale.
    pub new_se: f64,
    /// new − old.
    pub difference: f64,
    /// difference / √(old_se² + new_se²).
    pub z: f64,
    /// Two-sided p.
    pub p: f64,
    /// p adjusted over every comparison.
    pub p_adjusted: f64,
}

/// Drift between two calibrations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// The final linking (through the items that did not drift).
    pub linking: Linking,
    /// Every parameter of every common item.
    pub parameters: Vec<ParameterDrift>,
    /// Items with a significant move, in the new bank's order.
    pub drifted: Vec<String>,
    /// Linkings run (1 + purification rounds).
    pub rounds: usize,
    /// Whether the drifted set stopped changing within [`MAX_PURIFICATIONS`] rounds.
    pub stable: bool,
    /// Significance level.
    pub alpha: f64,
    /// Adjustment of p.
    pub adjustment: Adjustment,
}

/// A parameter on the old scale: a/A, A·b + B (b, thresholds), asymptotes as they are; value and SE.
fn carried(name: &str, value: f64, se: f64, a: f64, b: f64) -> (f64, f64) {
    match name {
        "a" => (value / a, se / a),
        n if n.starts_with('b') => (a * value + b, a * se),
        _ => (value, se),
    }
}

fn se_of(item: &Item, name: &str, which: &'static str) -> Result<f64, DriftError> {
    item.standard_errors
        .get(name)
        .copied()
        .ok_or_else(|| DriftError::MissingStandardError {
            which,
            item: item.id.clone(),
            parameter: name.to_string(),
        })
}

/// Compare every parameter of the common items under `l`.
fn compare(
    old: &Bank,
    new: &Bank,
    common: &[String],
    l: &Linking,
) -> Result<Vec<ParameterDrift>, DriftError> {
    let normal = Normal::standard();
    let mut out = Vec::new();
    for id in common {
        let (Some(o), Some(n)) = (old.item(id), new.item(id)) else {
            continue;
        };
        let old_named = o.parameters.named_parameters();
        for (name, value) in n.parameters.named_parameters() {
            let Some(&(_, old_value)) = old_named.iter().find(|(k, _)| *k == name) else {
                continue;
            };
            let old_se = se_of(o, &name, "old")?;
            let (new_value, new_se) = carried(&name, value, se_of(n, &name, "new")?, l.a, l.b);
            let difference = new_value - old_value;
            let z = difference / (old_se * old_se + new_se * new_se).sqrt();
            out.push(ParameterDrift {
                item: id.clone(),
                parameter: name,
                old: old_value,
                old_se,
                new: new_value,
                new_se,
                difference,
                z,
                p: if z.is_finite() {
                    2.0 * normal.sf(z.abs())
                } else {
                    f64::NAN
                },
                p_adjusted: f64::NAN,
            });
        }
    }
    Ok(out)
}

/// Drift of the items `new` shares with `old`, linked by `method`, at level `alpha` after `adjustment`.
pub fn drift(
    old: &Bank,
    new: &Bank,
    method: LinkingMethod,
    adjustment: Adjustment,
    alpha: f64,
) -> Result<Drift, DriftError> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(DriftError::Alpha(alpha));
    }
    let common: Vec<String> = linking::link(old, new, method)?.common_items;
    let mut drifted: Vec<String> = Vec::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut l = linking::link_through(old, new, method, |id| !drifted.iter().any(|d| d == id))?;
        l.standard_errors = linking::constant_errors(old, new, &l);
        let mut parameters = compare(old, new, &common, &l)?;
        let p: Vec<f64> = parameters.iter().map(|d| d.p).collect();
        for (d, q) in parameters.iter_mut().zip(adjust(&p, adjustment)) {
            d.p_adjusted = q;
        }
        let now: Vec<String> = common
            .iter()
            .filter(|id| parameters.iter().any(|d| &d.item == *id && d.p_adjusted < alpha))
            .cloned()
            .collect();
        // Stop when the set is stable, when relinking would leave fewer than two items, or after the
        // last round allowed.
        let stable = now == drifted;
        if stable || common.len() - now.len() < 2 || rounds > MAX_PURIFICATIONS {
            return Ok(Drift {
                linking: l,
                parameters,
                drifted: now,
                rounds,
                stable,
                alpha,
                adjustment,
            });
        }
        drifted = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etalon_items::{Framework, ItemModel, Provenance};

    fn bank(items: &[(&str, f64, f64, f64)]) -> Bank {
        let items = items
            .iter()
            .map(|&(id, a, b, se)| {
                let mut item = Item::new(id, ItemModel::two_pl(a, b).unwrap());
                item.standard_errors.insert("a".into(), se);
                item.standard_errors.insert("b".into(), se);
                item
            })
            .collect();
        Bank::new("b", Framework::default(), items, Provenance::default()).unwrap()
    }

    #[test]
    fn a_moved_item_is_found_and_left_out_of_the_linking() {
        // The new scale: θ_old = 0.8 θ_new − 0.4, so a_new = 0.8 a_old and b_new = (b_old + 0.4)/0.8;
        // item i4's difficulty moved by +1 on the old scale.
        let old = [
            ("i1", 1.0, -1.5, 0.05),
            ("i2", 1.4, -0.5, 0.05),
            ("i3", 0.9, 0.0, 0.05),
            ("i4", 1.2, 0.5, 0.05),
            ("i5", 1.6, 1.2, 0.05),
            ("i6", 1.1, 2.0, 0.05),
        ];
        let new: Vec<(&str, f64, f64, f64)> = old
            .iter()
            .map(|&(id, a, b, se)| {
                let b = if id == "i4" { b + 1.0 } else { b };
                (id, 0.8 * a, (b + 0.4) / 0.8, se)
            })
            .collect();
        let d = drift(
            &bank(&old),
            &bank(&new),
            LinkingMethod::MeanSigma,
            Adjustment::Holm,
            0.05,
        )
        .unwrap();
        assert_eq!(d.drifted, ["i4"]);
        // Round 1 links through every item (i4 biases B, so more items look moved), round 2 without
        // those, round 3 finds the same set: stable.
        assert!(d.stable && d.rounds >= 2, "{d:?}");
        // Without i4 the constants are exact again.
        assert!((d.linking.a - 0.8).abs() < 1e-12 && (d.linking.b + 0.4).abs() < 1e-12);
        let b4 = d
            .parameters
            .iter()
            .find(|p| p.item == "i4" && p.parameter == "b")
            .unwrap();
        // z = 1 / √(0.05² + (0.8 · 0.05)²).
        assert!((b4.difference - 1.0).abs() < 1e-12);
        assert!((b4.z - 1.0 / (0.05f64.powi(2) + 0.04f64.powi(2)).sqrt()).abs() < 1e-9);
        assert!(d.linking.common_items.iter().all(|i| i != "i4"));
        let se = d.linking.standard_errors.unwrap();
        assert!(se.a > 0.0 && se.b > 0.0);

        let mut bare = bank(&old);
        bare.update_items(|items| items[2].standard_errors.clear())
            .unwrap();
        let err = drift(
            &bare,
            &bank(&new),
            LinkingMethod::MeanSigma,
            Adjustment::Holm,
            0.05,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("item `i3`: the old calibration has no standard error for `a`"),
            "{err}"
        );
        assert!(matches!(
            drift(
                &bank(&old),
                &bank(&new),
                LinkingMethod::MeanSigma,
                Adjustment::Holm,
                1.5
            ),
            Err(DriftError::Alpha(_))
        ));
    }

    #[test]
    fn delta_method_errors_of_mean_mean_match_the_closed_form() {
        // mean/mean: A = ā_new/ā_old, B = b̄_old − A b̄_new; with diagonal Σ,
        // Var A = Σ_i (se_i / (n ā_old))² (1 + A²) (a_new and a_old terms),
        // Var B = Σ_i [(∂B/∂a_i)² (se_new² + se_old²) + (se_old/n)² + (A se_new / n)²], ∂B/∂a = −b̄_new ∂A/∂a.
        let old = [("x", 1.0, -1.0, 0.1), ("y", 1.5, 0.3, 0.1), ("z", 0.7, 1.1, 0.1)];
        let new = [("x", 0.9, -0.8, 0.1), ("y", 1.3, 0.5, 0.1), ("z", 0.8, 1.6, 0.1)];
        let (ob, nb) = (bank(&old), bank(&new));
        let l = linking::link(&ob, &nb, LinkingMethod::MeanMean).unwrap();
        let se = linking::constant_errors(&ob, &nb, &l).unwrap();
        let n = 3.0;
        let a_old: f64 = old.iter().map(|x| x.1).sum::<f64>() / n;
        let b_new: f64 = new.iter().map(|x| x.2).sum::<f64>() / n;
        let s = 0.1;
        let da_new = 1.0 / (n * a_old);
        let da_old = -l.a / (n * a_old);
        let var_a = n * (da_new * da_new + da_old * da_old) * s * s;
        let var_b = n
            * (b_new * b_new * (da_new * da_new + da_old * da_old) * s * s
                + (s / n).powi(2)
                + (l.a * s / n).powi(2));
        assert!((se.a - var_a.sqrt()).abs() < 1e-7, "{} vs {}", se.a, var_a.sqrt());
        assert!((se.b - var_b.sqrt()).abs() < 1e-7, "{} vs {}", se.b, var_b.sqrt());
    }
}
