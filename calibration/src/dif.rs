//! Differential item functioning: does an item favour one group of persons of equal ability?
//!
//! **Mantel–Haenszel** (Holland & Thayer 1988), as `difR::difMH(correct = TRUE, purify = FALSE)`:
//! persons are matched on their total score over every item (the studied item included), and in
//! each score level s where both groups are present, with A/B the reference group's right/wrong
//! counts, C/D the focal group's, n_R, n_F, m_1, m_0 and T the margins,
//!
//! - χ²_MH = (|Σ_s (A − n_R m_1 / T)| − ½)² / Σ_s n_R n_F m_1 m_0 / (T² (T − 1)), 1 df (the continuity
//!   correction always applied, as difR does);
//! - α_MH = Σ_s (A D / T) / Σ_s (B C / T) (> 1: the item favours the reference group);
//! - ETS Δ_MH = −2.35 ln α_MH, classed A (|Δ| < 1 or p ≥ .05), C (|Δ| ≥ 1.5 and p < .05), else B
//!   (Zieky 1993); the variance of ln α_MH is Robins, Breslow & Greenland's (1986).
//!
//! **Likelihood ratio** (Thissen, Steinberg & Wainer 1993), as mirt's
//! `DIF(multipleGroup(…, invariance = c(<all items>, "free_means", "free_var")), scheme = "drop")`:
//! a multiple-group calibration ([`crate::groups`]) with every item equal across the groups and the
//! focal group's mean and variance free is the baseline; each item in turn is freed (all its
//! parameters estimated per group, every other item equal) and X² = 2 (log L_freed − log L_baseline)
//! with as many degrees of freedom as parameters freed; ΔAIC = 2 df − X² and ΔBIC = df ln N − X²
//! (negative: the model with the item freed is preferred). With anchors chosen, the baseline has the
//! anchors equal and every other item freed, and each studied item is made equal in turn
//! (X² = 2 (log L_baseline − log L_equal)): the test no longer assumes that the other studied items
//! are free of DIF.
//!
//! p-values over the items are adjusted for multiple comparisons by Holm (1979) or
//! Benjamini & Hochberg (1995), as R's `p.adjust`.

use crate::CalibrationSpec;
use crate::groups::{self, GroupCalibration, GroupError, GroupSpec};
use etalon_items::Responses;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Why DIF cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DifError {
    /// The group vector does not match the data.
    #[error("{groups} group entries for {persons} persons")]
    GroupCount {
        /// Entries given.
        groups: usize,
        /// Persons in the data.
        persons: usize,
    },
    /// A group has nobody.
    #[error("the {0} group is empty")]
    EmptyGroup(&'static str),
    /// Mantel–Haenszel needs right/wrong items.
    #[error("item `{item}` has codes {codes:?}; Mantel–Haenszel needs 0/1 items")]
    NotDichotomous {
        /// Item id.
        item: String,
        /// Its codes.
        codes: Vec<i64>,
    },
    /// An anchor that is not an item of the data.
    #[error("anchor `{0}` is not an item of the data")]
    UnknownAnchor(String),
    /// Anchors that leave nothing to test.
    #[error("every item is an anchor: nothing is left to test")]
    AllAnchors,
    /// The multiple-group calibration failed.
    #[error(transparent)]
    Groups(#[from] GroupError),
}

/// Multiple-comparison adjustment of p-values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Adjustment {
    /// None.
    None,
    /// Holm's step-down (family-wise error).
    #[default]
    Holm,
    /// Benjamini–Hochberg (false discovery rate).
    Bh,
    /// Bonferroni.
    Bonferroni,
}

/// Adjusted p-values, as R's `p.adjust(p, method)`: NaN stays NaN and does not count among the
/// comparisons.
pub fn adjust(p: &[f64], method: Adjustment) -> Vec<f64> {
    let mut out = vec![f64::NAN; p.len()];
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    let n = order.len();
    match method {
        Adjustment::None => return p.to_vec(),
        Adjustment::Bonferroni => return p.iter().map(|v| (v * n as f64).min(1.0)).collect(),
        Adjustment::Holm => {
            order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
            let mut running: f64 = 0.0;
            for (rank, &i) in order.iter().enumerate() {
                running = running.max(((n - rank) as f64 * p[i]).min(1.0));
                out[i] = running;
            }
        }
        Adjustment::Bh => {
            order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
            let mut running: f64 = 1.0;
            for (k, &i) in order.iter().enumerate() {
                let rank = n - k;
                running = running.min(n as f64 / rank as f64 * p[i]).min(1.0);
                out[i] = running;
            }
        }
    }
    out
}

/// Mantel–Haenszel DIF of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MantelHaenszel {
    /// Item id.
    pub item: String,
    /// χ²_MH with continuity correction.
    pub statistic: f64,
    /// Degrees of freedom (1).
    pub df: u32,
    /// Upper-tail p.
    pub p: f64,
    /// p adjusted over the items.
    pub p_adjusted: f64,
    /// Common odds ratio α_MH.
    pub alpha_mh: f64,
    /// ETS Δ_MH = −2.35 ln α_MH.
    pub delta_mh: f64,
    /// ETS class A, B or C (from Δ and p).
    pub class: char,
    /// Robins–Breslow–Greenland variance of ln α_MH.
    pub var_log_alpha: f64,
    /// Score levels where both groups are present.
    pub strata: usize,
    /// Persons who answered the item, per group (reference, focal).
    pub n: (usize, usize),
}

/// ETS class of Δ_MH at p.
fn ets_class(delta: f64, p: f64) -> char {
    if !(delta.abs() >= 1.0 && p < 0.05) {
        'A'
    } else if delta.abs() >= 1.5 {
        'C'
    } else {
        'B'
    }
}

/// Sums over the strata of one item.
#[derive(Default)]
struct Sums {
    a_minus_e: f64,
    var: f64,
    r: f64,
    s: f64,
    pr: f64,
    ps_qr: f64,
    qs: f64,
    strata: usize,
}

/// Mantel–Haenszel DIF of every item; `focal[p]` says whether person p is in the focal group (`None`:
/// in neither, left out). Persons are matched on the total score of the items they answered.
pub fn mantel_haenszel(
    data: &Responses,
    focal: &[Option<bool>],
    adjustment: Adjustment,
) -> Result<Vec<MantelHaenszel>, DifError> {
    let (n_persons, n_items) = (data.n_persons(), data.item_ids().len());
    if focal.len() != n_persons {
        return Err(DifError::GroupCount {
            groups: focal.len(),
            persons: n_persons,
        });
    }
    for (j, id) in data.item_ids().iter().enumerate() {
        let codes = data.codes(j);
        if codes.iter().any(|&c| c != 0 && c != 1) {
            return Err(DifError::NotDichotomous {
                item: id.clone(),
                codes: codes.to_vec(),
            });
        }
    }
    // Right (code 1) or wrong (code 0), whatever categories the codes observed gave.
    let right = |j: usize, c: u8| data.codes(j)[usize::from(c)] == 1;
    if !focal.contains(&Some(false)) {
        return Err(DifError::EmptyGroup("reference"));
    }
    if !focal.contains(&Some(true)) {
        return Err(DifError::EmptyGroup("focal"));
    }
    // Per person: total score; then per item, per score level, the counts (A, B, C, D).
    let mut score = vec![0usize; n_persons];
    for (p, s) in score.iter_mut().enumerate() {
        data.for_each_answer(p, |j, c| *s += usize::from(right(j, c)));
    }
    let levels = n_items + 1;
    let mut counts = vec![[0.0f64; 4]; n_items * levels];
    for p in 0..n_persons {
        let Some(is_focal) = focal[p] else { continue };
        data.for_each_answer(p, |j, c| {
            let cell = usize::from(is_focal) * 2 + usize::from(!right(j, c));
            counts[j * levels + score[p]][cell] += 1.0;
        });
    }
    let chi = ChiSquared::new(1.0).expect("1 degree of freedom");
    let mut out: Vec<MantelHaenszel> = data
        .item_ids()
        .iter()
        .enumerate()
        .map(|(j, id)| {
            let mut s = Sums::default();
            let mut n = (0.0, 0.0);
            for &[a, b, c, d] in &counts[j * levels..(j + 1) * levels] {
                let (nr, nf) = (a + b, c + d);
                n.0 += nr;
                n.1 += nf;
                if nr == 0.0 || nf == 0.0 {
                    continue;
                }
                let t = nr + nf;
                let (m1, m0) = (a + c, b + d);
                s.strata += 1;
                s.a_minus_e += a - nr * m1 / t;
                s.var += nr * nf * m1 * m0 / (t * t * (t - 1.0));
                let (r, q_s) = (a * d / t, b * c / t);
                let (pp, qq) = ((a + d) / t, (b + c) / t);
                s.r += r;
                s.s += q_s;
                s.pr += pp * r;
                s.ps_qr += pp * q_s + qq * r;
                s.qs += qq * q_s;
            }
            // No stratum where both groups vary (an item everyone got right, say): no test.
            let testable = s.strata > 0 && s.var > 0.0;
            let statistic = if testable {
                (s.a_minus_e.abs() - 0.5).powi(2) / s.var
            } else {
                f64::NAN
            };
            let p = if testable { chi.sf(statistic) } else { f64::NAN };
            let alpha = s.r / s.s;
            let delta = -2.35 * alpha.ln();
            MantelHaenszel {
                item: id.clone(),
                statistic,
                df: 1,
                p,
                p_adjusted: p,
                alpha_mh: alpha,
                delta_mh: delta,
                class: ets_class(delta, p),
                var_log_alpha: s.pr / (2.0 * s.r * s.r)
                    + s.ps_qr / (2.0 * s.r * s.s)
                    + s.qs / (2.0 * s.s * s.s),
                strata: s.strata,
                n: (n.0 as usize, n.1 as usize),
            }
        })
        .collect();
    let p: Vec<f64> = out.iter().map(|m| m.p).collect();
    for (m, q) in out.iter_mut().zip(adjust(&p, adjustment)) {
        m.p_adjusted = q;
    }
    Ok(out)
}

/// Likelihood-ratio DIF of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LikelihoodRatio {
    /// Item id.
    pub item: String,
    /// X² = 2 (log L with the item free across groups − log L with it equal).
    pub statistic: f64,
    /// Parameters freed (the item's free parameters).
    pub df: usize,
    /// Upper-tail χ² p.
    pub p: f64,
    /// p adjusted over the items.
    pub p_adjusted: f64,
    /// AIC(item free) − AIC(item equal) = 2 df − X².
    pub aic: f64,
    /// BIC(item free) − BIC(item equal) = df ln N − X².
    pub bic: f64,
    /// The item's slope and location in the reference group when freed.
    pub reference: (f64, f64),
    /// … and in the focal group.
    pub focal: (f64, f64),
    /// Whether both fits converged (false for an item one group never answered: not tested).
    pub converged: bool,
}

/// The likelihood-ratio DIF of every studied item, with the baseline it was tested against.
#[derive(Debug, Clone, Serialize)]
pub struct LikelihoodRatioDif {
    /// The baseline model (all items equal, or the anchors equal and the other items free).
    pub baseline: GroupCalibration,
    /// Anchors (empty: every other item anchors each test).
    pub anchors: Vec<String>,
    /// The studied items, in data order.
    pub items: Vec<LikelihoodRatio>,
}

/// Largest parameter change at which the fits of a likelihood-ratio test count as converged (or the
/// tolerance asked for, if smaller): X² is a difference of two log-likelihoods, each of which must
/// be at its maximum.
pub const LR_TOLERANCE: f64 = 1e-6;

/// Likelihood-ratio DIF of every item between two groups (`focal[p]`: whether person p is in the
/// focal group, `None`: left out), items fitted under `spec` (the focal mean and variance free).
/// `anchors`: `None` tests each item against all others; `Some(a)` anchors on `a` and tests the others.
pub fn likelihood_ratio(
    data: &Responses,
    focal: &[Option<bool>],
    spec: &CalibrationSpec,
    anchors: Option<&[String]>,
    adjustment: Adjustment,
) -> Result<LikelihoodRatioDif, DifError> {
    if focal.len() != data.n_persons() {
        return Err(DifError::GroupCount {
            groups: focal.len(),
            persons: data.n_persons(),
        });
    }
    let ids = data.item_ids();
    if let Some(a) = anchors {
        if let Some(unknown) = a.iter().find(|id| !ids.contains(id)) {
            return Err(DifError::UnknownAnchor(unknown.clone()));
        }
        if ids.iter().all(|id| a.contains(id)) {
            return Err(DifError::AllAnchors);
        }
    }
    let group: Vec<Option<usize>> = focal.iter().map(|f| f.map(usize::from)).collect();
    let names = ["reference".to_string(), "focal".to_string()];
    let mut gspec = GroupSpec {
        calibration: spec.clone(),
        ..GroupSpec::new(spec.model)
    };
    gspec.calibration.em.tol = gspec.calibration.em.tol.min(LR_TOLERANCE);
    let em = gspec.calibration.em.clone();
    let prepared = groups::prepare(data, &group, &names, &gspec)?;
    let item_ids = prepared.data[0].item_ids().to_vec();
    let is_anchor = |j: usize| anchors.is_some_and(|a| a.contains(&item_ids[j]));
    // An item one group never answered cannot differ between the groups: it is not tested (no
    // statistic, as an item Mantel–Haenszel cannot test) and never freed.
    let testable = |j: usize| prepared.answered.iter().all(|a| a[j] > 0);
    // Baseline: everything equal (drop scheme), or only the anchors equal.
    let start = prepared.with_free(&prepared.start, |j| {
        anchors.is_some() && !is_anchor(j) && testable(j)
    });
    let (run, logliks) = prepared.fit(start, &em, &mut ());
    let base_point = run.model.clone();
    let base_loglik: f64 = logliks.iter().sum();
    let baseline = prepared.outcome(run, logliks, &em)?;
    let n = prepared.persons as f64;
    let studied: Vec<usize> = (0..item_ids.len()).filter(|&j| !is_anchor(j)).collect();
    let chi = |df: usize| ChiSquared::new(df as f64).expect("df ≥ 1");
    let tests: Vec<Result<LikelihoodRatio, DifError>> = studied
        .par_iter()
        .map(|&j| {
            if !testable(j) {
                let none = (f64::NAN, f64::NAN);
                return Ok(LikelihoodRatio {
                    item: item_ids[j].clone(),
                    statistic: f64::NAN,
                    df: base_point.n_free_of(j) * (names.len() - 1),
                    p: f64::NAN,
                    p_adjusted: f64::NAN,
                    aic: f64::NAN,
                    bic: f64::NAN,
                    reference: none,
                    focal: none,
                    converged: false,
                });
            }
            let free_j = |k: usize| {
                if anchors.is_some() {
                    k != j && !is_anchor(k) && testable(k)
                } else {
                    k == j
                }
            };
            let start = prepared.with_free(&base_point, free_j);
            let (run, logliks) = prepared.fit(start, &em, &mut ());
            let loglik: f64 = logliks.iter().sum();
            let converged = run.converged && baseline.converged;
            // The model with the item free, and the one with it equal.
            let (free, equal, free_point) = if anchors.is_some() {
                (base_loglik, loglik, &base_point)
            } else {
                (loglik, base_loglik, &run.model)
            };
            let statistic = 2.0 * (free - equal);
            let df = free_point.n_free_of(j) * (names.len() - 1);
            let side = |g: usize| {
                let st = free_point.item(g, j);
                st.to_model()
                    .map_or((f64::NAN, f64::NAN), |m| (m.slope(), m.location()))
            };
            Ok(LikelihoodRatio {
                item: item_ids[j].clone(),
                statistic,
                df,
                p: chi(df).sf(statistic.max(0.0)),
                p_adjusted: f64::NAN,
                aic: 2.0 * df as f64 - statistic,
                bic: df as f64 * n.ln() - statistic,
                reference: side(0),
                focal: side(1),
                converged,
            })
        })
        .collect();
    let mut items = tests.into_iter().collect::<Result<Vec<_>, _>>()?;
    let p: Vec<f64> = items.iter().map(|t| t.p).collect();
    for (t, q) in items.iter_mut().zip(adjust(&p, adjustment)) {
        t.p_adjusted = q;
    }
    Ok(LikelihoodRatioDif {
        baseline,
        anchors: anchors.map(<[String]>::to_vec).unwrap_or_default(),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_nobody_misses_is_not_tested_and_not_flagged() {
        use etalon_items::data::ResponseMatrix;
        // Item `easy`: everyone right; `mixed` and `other` vary within the one score level.
        let cells = vec![1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1];
        let data = Responses::Dense(ResponseMatrix::from_categories(
            vec!["easy".into(), "mixed".into(), "other".into()],
            6,
            cells,
        ));
        let focal = [
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            Some(true),
            Some(true),
        ];
        let out = mantel_haenszel(&data, &focal, Adjustment::Holm).unwrap();
        assert!(out[0].statistic.is_nan() && out[0].p.is_nan() && out[0].p_adjusted.is_nan());
        assert_eq!(out[0].class, 'A');
        // χ² = (|3 − 1.5| − ½)² / 0.45 for `mixed` (and `other`); Holm over the two testable items.
        assert!(
            (out[1].statistic - 1.0 / 0.45).abs() < 1e-12,
            "{}",
            out[1].statistic
        );
        assert!(
            (out[1].p_adjusted - 2.0 * out[1].p).abs() < 1e-12,
            "two comparisons, not three"
        );
    }

    #[test]
    fn adjustments_agree_with_r_p_adjust() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02;
        //    p.adjust(…, "BH") = 0.02 0.04 0.04 0.02.
        let p = [0.01, 0.04, 0.03, 0.005];
        let close = |x: Vec<f64>, y: [f64; 4]| x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-12);
        assert!(close(adjust(&p, Adjustment::Holm), [0.03, 0.06, 0.06, 0.02]));
        assert!(close(adjust(&p, Adjustment::Bh), [0.02, 0.04, 0.04, 0.02]));
        assert!(close(
            adjust(&p, Adjustment::Bonferroni),
            [0.04, 0.16, 0.12, 0.02]
        ));
        // R: p.adjust(c(0.01, NA, 0.04), "holm") = 0.02 NA 0.04.
        let q = adjust(&[0.01, f64::NAN, 0.04], Adjustment::Holm);
        assert!((q[0] - 0.02).abs() < 1e-12 && q[1].is_nan() && (q[2] - 0.04).abs() < 1e-12);
    }
}
