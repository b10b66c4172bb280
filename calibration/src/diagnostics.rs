//! How well a bank fits response data: item fit, person fit, local dependence and reliability, as
//! mirt's `itemfit`, `personfit`, `residuals(type = "Q3")`, `marginal_rxx` and `empirical_rxx`.
//!
//! - **θ̂**: EAP and posterior SD on 121 equally spaced points of [−6, 6] under the bank's latent
//!   distribution (mirt's `fscores` defaults).
//! - **S-X²** (Orlando & Thissen 2000; [`crate::fit`]): on 61 points of [−6, 6] with the latent
//!   density's normalised weights, on the persons who answered every item — or, on incomplete
//!   data, in its generalised form over every person ([`crate::fit::s_x2_incomplete`]).
//! - **Zh / lz** (Drasgow, Levine & Williams 1985), at θ̂: l₀ = Σ_j log P_j,x_j, E = Σ_j Σ_k P_jk log P_jk,
//!   V = Σ_j [Σ_k P_jk (log P_jk)² − (Σ_k P_jk log P_jk)²], Zh = (l₀ − E)/√V (for 0/1 items V = Σ P(1 − P)
//!   [log(P/(1 − P))]²). Large negative values flag aberrant patterns.
//! - **Q3** (Yen 1984): the Pearson correlation over persons of the residuals x_pj − E(X_j | θ̂_p)
//!   (over the persons who answered both items); a pair whose Q3 exceeds the mean Q3 by more than 0.2
//!   is flagged (Christensen, Makransky & Horton 2017).
//! - **Marginal reliability**: ∫ I(θ)/(I(θ) + 1/σ²) φ(θ; μ, σ²) dθ (test information I of the data's
//!   items; mirt's `marginal_rxx` for σ² = 1, and unchanged by a change of scale), on 4,001 points
//!   over μ ± 12σ; **empirical reliability** var(θ̂)/(var(θ̂) + mean(SE²)).
//! - **M2** with RMSEA and its interval, SRMSR, TLI and CFI ([`crate::m2`]): the whole model's fit from
//!   the first- and second-order margins of the complete patterns (0/1 items, at most 60).

use crate::fit::{FitSkipped, ItemFit, SumScoreModel, s_x2_incomplete, s_x2_of};
use crate::m2::{LimitedInformation, M2Skipped, m2_of};
use crate::params::ItemState;
use etalon_items::irt::ResponseFunction;
use etalon_items::{Bank, DataError, ItemModel, Responses};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Why diagnostics cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnosticsError {
    /// The data do not match the bank (unknown item, unknown code).
    #[error(transparent)]
    Data(#[from] DataError),
}

/// Person fit and ability of one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonFit {
    /// Person (id, else the 1-based row number).
    pub person: String,
    /// EAP θ̂.
    pub theta: f64,
    /// Posterior SD.
    pub se: f64,
    /// Drasgow's standardised log-likelihood Zh (NaN without an answer).
    pub zh: f64,
    /// Answers.
    pub answers: usize,
}

/// A pair of items and their residual correlation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemPair {
    /// First item.
    pub item_i: String,
    /// Second item.
    pub item_j: String,
    /// Yen's Q3.
    pub q3: f64,
}

/// Local dependence of the data's items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalDependence {
    /// Item ids (rows and columns of `matrix`).
    pub items: Vec<String>,
    /// Q3, row-major J × J, 1 on the diagonal (NaN where fewer than 3 persons answered both).
    pub matrix: Vec<f64>,
    /// Mean Q3 over the pairs.
    pub mean: f64,
    /// The pair with the largest |Q3|.
    pub max: Option<ItemPair>,
    /// Pairs with Q3 − mean > 0.2, largest first.
    pub flagged: Vec<ItemPair>,
}

/// Everything [`diagnose`] finds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diagnostics {
    /// S-X² per data item (empty when skipped).
    pub items: Vec<ItemFit>,
    /// Why S-X² was skipped.
    pub item_fit_skipped: Option<FitSkipped>,
    /// Per person.
    pub persons: Vec<PersonFit>,
    /// Q3 (`None` beyond [`MAX_Q3_ITEMS`] items).
    pub local_dependence: Option<LocalDependence>,
    /// M2 and the indices derived from it (`None` when skipped).
    pub model_fit: Option<LimitedInformation>,
    /// Why M2 was skipped.
    pub model_fit_skipped: Option<M2Skipped>,
    /// The persons' standard errors (posterior SDs of θ̂), summarised.
    pub standard_errors: SeSummary,
    /// Marginal reliability.
    pub marginal_reliability: f64,
    /// Empirical reliability.
    pub empirical_reliability: f64,
}

/// Summary of the persons' standard errors: where measurement is precise and where it is not.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeSummary {
    /// Persons with at least one answer.
    pub persons: usize,
    /// Mean SE.
    pub mean: f64,
    /// Root mean square SE (√ mean SE², the error term of the empirical reliability).
    pub rms: f64,
    /// Smallest, first quartile, median, third quartile, largest (type-7 quantiles, R's default).
    pub quantiles: [f64; 5],
}

impl SeSummary {
    fn of(mut se: Vec<f64>) -> SeSummary {
        se.sort_by(f64::total_cmp);
        let n = se.len();
        let quantile = |p: f64| {
            if n == 0 {
                return f64::NAN;
            }
            let h = (n - 1) as f64 * p;
            let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
            se[lo] + (h - lo as f64) * (se[hi] - se[lo])
        };
        SeSummary {
            persons: n,
            mean: se.iter().sum::<f64>() / n as f64,
            rms: (se.iter().map(|s| s * s).sum::<f64>() / n as f64).sqrt(),
            quantiles: [0.0, 0.25, 0.5, 0.75, 1.0].map(quantile),
        }
    }
}

/// The most items whose Q3 matrix is computed (it holds J² cells).
pub const MAX_Q3_ITEMS: usize = 500;
/// Q3 above its mean by more than this flags a pair.
pub const Q3_FLAG: f64 = 0.2;

fn grid(points: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..points)
        .map(|i| lo + (hi - lo) * i as f64 / (points - 1) as f64)
        .collect()
}

/// Normalised N(mean, variance) weights on `theta`.
fn weights(theta: &[f64], mean: f64, variance: f64) -> Vec<f64> {
    let w: Vec<f64> = theta
        .iter()
        .map(|t| (-0.5 * (t - mean).powi(2) / variance).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|x| x / total).collect()
}

/// Per person: the (data item, bank category) of each answer.
struct Answers {
    offsets: Vec<usize>,
    items: Vec<u32>,
    categories: Vec<u8>,
}

impl Answers {
    fn of(&self, p: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let r = self.offsets[p]..self.offsets[p + 1];
        self.items[r.clone()]
            .iter()
            .zip(&self.categories[r])
            .map(|(&j, &c)| (j as usize, usize::from(c)))
    }
}

/// Item, person and model fit of `bank` to `data` (every data item must be in the bank).
pub fn diagnose(bank: &Bank, data: &Responses) -> Result<Diagnostics, DiagnosticsError> {
    let alignment = data.align(bank)?;
    let models: Vec<&ItemModel> = alignment
        .columns
        .iter()
        .map(|&pos| &bank.items()[pos].parameters)
        .collect();
    let nj = models.len();
    let n = data.n_persons();
    let mut answers = Answers {
        offsets: Vec::with_capacity(n + 1),
        items: Vec::new(),
        categories: Vec::new(),
    };
    answers.offsets.push(0);
    for p in 0..n {
        data.for_each_answer(p, |j, c| {
            let bank_category = alignment.categories[j][usize::from(c)];
            if bank_category != etalon_items::data::MISSING {
                answers.items.push(j as u32);
                answers.categories.push(bank_category);
            }
        });
        answers.offsets.push(answers.items.len());
    }
    let latent = bank.latent().unwrap_or(etalon_items::bank::Latent::STANDARD);

    // θ̂: EAP on 121 points.
    let theta = grid(121, -6.0, 6.0);
    let prior: Vec<f64> = weights(&theta, latent.mean, latent.variance)
        .iter()
        .map(|w| w.ln())
        .collect();
    let log_p: Vec<Vec<f64>> = models
        .iter()
        .map(|m| {
            let k = m.n_categories();
            let mut table = vec![0.0; k * theta.len()];
            for (q, &t) in theta.iter().enumerate() {
                for c in 0..k {
                    table[c * theta.len() + q] = m.log_prob(t, c);
                }
            }
            table
        })
        .collect();
    let persons: Vec<PersonFit> = (0..n)
        .into_par_iter()
        .map_init(
            || vec![0.0; theta.len()],
            |post, p| {
                post.copy_from_slice(&prior);
                let mut count = 0;
                for (j, c) in answers.of(p) {
                    let row = &log_p[j][c * theta.len()..(c + 1) * theta.len()];
                    post.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    count += 1;
                }
                let max = post.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
                for (l, t) in post.iter().zip(&theta) {
                    let w = (l - max).exp();
                    s0 += w;
                    s1 += w * t;
                    s2 += w * t * t;
                }
                let eap = s1 / s0;
                let se = (s2 / s0 - eap * eap).max(0.0).sqrt();
                PersonFit {
                    person: data.person_label(p),
                    theta: eap,
                    se,
                    zh: zh(&models, answers.of(p), eap),
                    answers: count,
                }
            },
        )
        .collect();

    // S-X² on 61 points.
    let sx_theta = grid(61, -6.0, 6.0);
    let sum_score = SumScoreModel {
        item_ids: data.item_ids(),
        probs: models
            .iter()
            .map(|m| {
                (0..m.n_categories())
                    .map(|c| sx_theta.iter().map(|&t| m.log_prob(t, c).exp()).collect())
                    .collect()
            })
            .collect(),
        weights: weights(&sx_theta, latent.mean, latent.variance),
        n_free: models.iter().map(|m| ItemState::from_model(m).n_free()).collect(),
        n_persons: n,
    };
    // The complete patterns, each as a category per item.
    let complete_rows = |f: &mut dyn FnMut(&[usize])| {
        let mut row = vec![0usize; nj];
        for p in 0..n {
            let r = answers.offsets[p]..answers.offsets[p + 1];
            if r.len() == nj {
                for (j, c) in answers.of(p) {
                    row[j] = c;
                }
                f(&row);
            }
        }
    };
    let all_complete = (0..n).all(|p| answers.offsets[p + 1] - answers.offsets[p] == nj);
    let item_fit = if all_complete {
        s_x2_of(&sum_score, complete_rows)
    } else {
        s_x2_incomplete(&sum_score, n, |p, out| {
            out.clear();
            out.extend(answers.of(p));
        })
    };
    let (items, item_fit_skipped) = match item_fit {
        Ok(items) => (items, None),
        Err(skipped) => (Vec::new(), Some(skipped)),
    };
    let (model_fit, model_fit_skipped) = match m2_of(data.item_ids(), &models, latent, complete_rows) {
        Ok(fit) => (Some(fit), None),
        Err(skipped) => (None, Some(skipped)),
    };

    // Reliabilities.
    let fine = grid(
        4_001,
        latent.mean - 12.0 * latent.variance.sqrt(),
        latent.mean + 12.0 * latent.variance.sqrt(),
    );
    let density = weights(&fine, latent.mean, latent.variance);
    let marginal_reliability = fine
        .iter()
        .zip(&density)
        .map(|(&t, w)| {
            let info: f64 = models.iter().map(|m| m.information(t)).sum();
            // I/(I + 1/σ²): the share of the trait's variance the test recovers at θ (σ² = 1: mirt's).
            w * info / (info + 1.0 / latent.variance)
        })
        .sum();
    let scored: Vec<&PersonFit> = persons.iter().filter(|p| p.answers > 0).collect();
    let m = scored.len() as f64;
    let mean_theta = scored.iter().map(|p| p.theta).sum::<f64>() / m;
    let var_theta = scored.iter().map(|p| (p.theta - mean_theta).powi(2)).sum::<f64>() / (m - 1.0);
    let mean_se2 = scored.iter().map(|p| p.se * p.se).sum::<f64>() / m;
    let empirical_reliability = var_theta / (var_theta + mean_se2);
    let standard_errors = SeSummary::of(scored.iter().map(|p| p.se).collect());

    let local_dependence = (nj <= MAX_Q3_ITEMS).then(|| q3(data.item_ids(), &models, &answers, &persons));
    Ok(Diagnostics {
        items,
        item_fit_skipped,
        persons,
        local_dependence,
        model_fit,
        model_fit_skipped,
        standard_errors,
        marginal_reliability,
        empirical_reliability,
    })
}

/// Zh of one person's answers at θ.
fn zh(models: &[&ItemModel], answers: impl Iterator<Item = (usize, usize)>, theta: f64) -> f64 {
    let (mut l0, mut e, mut v) = (0.0, 0.0, 0.0);
    let mut p = [0.0f64; 256];
    let mut any = false;
    for (j, c) in answers {
        any = true;
        let k = models[j].n_categories();
        models[j].category_probabilities(theta, &mut p[..k]);
        let (mut m1, mut m2) = (0.0, 0.0);
        for &pk in &p[..k] {
            if pk > 0.0 {
                let l = pk.ln();
                m1 += pk * l;
                m2 += pk * l * l;
            }
        }
        l0 += p[c].ln();
        e += m1;
        v += m2 - m1 * m1;
    }
    if any && v > 0.0 {
        (l0 - e) / v.sqrt()
    } else {
        f64::NAN
    }
}

/// Yen's Q3 from the residuals at θ̂, pairwise over the persons who answered both items.
fn q3(ids: &[String], models: &[&ItemModel], answers: &Answers, persons: &[PersonFit]) -> LocalDependence {
    let nj = models.len();
    // Sums per pair: n, Σx, Σy, Σx², Σy², Σxy (x the residual of the row item, y of the column item).
    // Fixed blocks (at most 8: each holds J² sums), so the sums do not depend on the thread count.
    let sums = crate::fit::fold_in_blocks(
        persons.len(),
        8,
        || (vec![[0.0f64; 6]; nj * nj], Vec::new(), [0.0f64; 256]),
        |(mut acc, mut resid, mut p), person| {
            resid.clear();
            for (j, c) in answers.of(person) {
                let k = models[j].n_categories();
                models[j].category_probabilities(persons[person].theta, &mut p[..k]);
                let expected: f64 = p[..k].iter().enumerate().map(|(i, v)| i as f64 * v).sum();
                resid.push((j, c as f64 - expected));
            }
            for &(i, x) in &resid {
                for &(j, y) in &resid {
                    let s = &mut acc[i * nj + j];
                    s[0] += 1.0;
                    s[1] += x;
                    s[2] += y;
                    s[3] += x * x;
                    s[4] += y * y;
                    s[5] += x * y;
                }
            }
            (acc, resid, p)
        },
    )
    .into_iter()
    .map(|(acc, _, _)| acc)
    .reduce(|mut a, b| {
        for (x, y) in a.iter_mut().zip(&b) {
            for (u, v) in x.iter_mut().zip(y) {
                *u += v;
            }
        }
        a
    })
    .unwrap_or_else(|| vec![[0.0f64; 6]; nj * nj]);
    let matrix: Vec<f64> = sums
        .iter()
        .map(|&[n, sx, sy, sxx, syy, sxy]| {
            if n < 3.0 {
                return f64::NAN;
            }
            let cov = sxy - sx * sy / n;
            (cov / ((sxx - sx * sx / n) * (syy - sy * sy / n)).sqrt()).clamp(-1.0, 1.0)
        })
        .collect();
    let mut pairs: Vec<ItemPair> = Vec::new();
    for i in 0..nj {
        for j in (i + 1)..nj {
            let q = matrix[i * nj + j];
            if q.is_finite() {
                pairs.push(ItemPair {
                    item_i: ids[i].clone(),
                    item_j: ids[j].clone(),
                    q3: q,
                });
            }
        }
    }
    let mean = pairs.iter().map(|p| p.q3).sum::<f64>() / pairs.len().max(1) as f64;
    let max = pairs
        .iter()
        .max_by(|a, b| a.q3.abs().total_cmp(&b.q3.abs()))
        .cloned();
    let mut flagged: Vec<ItemPair> = pairs.into_iter().filter(|p| p.q3 - mean > Q3_FLAG).collect();
    flagged.sort_by(|a, b| b.q3.total_cmp(&a.q3));
    let mut matrix = matrix;
    for i in 0..nj {
        matrix[i * nj + i] = 1.0;
    }
    LocalDependence {
        items: ids.to_vec(),
        matrix,
        mean,
        max,
        flagged,
    }
}
