//! Classical item analysis: what a psychometrician reads before any IRT model, and scoring of raw
//! multiple-choice answers with a key.
//!
//! On item scores x_pj (the data's codes: 0/1, or Likert 1–4 as recorded), with s² the sample
//! variance (n − 1) and T = Σ_j x_pj the total score:
//!
//! - per item: n, mean (the p-value of a 0/1 item), sd; the item–total correlation r(x_j, T); the
//!   corrected item–total (item–rest) correlation r(x_j, T − x_j); Cronbach's α of the other items;
//! - for the test: mean and sd of T, mean and sd of the J(J − 1)/2 inter-item correlations, Cronbach's
//!   α = J/(J − 1) · (1 − Σ_j s²_j / s²_T) (Cronbach 1951) and its standard error of measurement
//!   s_T √(1 − α).
//!
//! As mirt's `itemstats`. Correlations and α need every item of a person: persons with a missing
//! cell are left out of them (listwise); n, mean and sd use every answer of the item.
//!
//! [`score_with_key`] turns raw choices into 0/1 (mirt's `key2binary`): 1 where the choice is the
//! key, 0 otherwise (an "omitted" code included), missing stays missing. [`distractors`] counts each
//! choice of each item with the mean total score of the persons who made it: a distractor chosen by
//! strong persons points to a miskey.

use etalon_items::Responses;
use etalon_items::data::{MISSING, ResponseMatrix};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Why an analysis cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassicalError {
    /// Too few persons with every item answered.
    #[error("{0} person(s) answered every item; correlations and alpha need at least 3")]
    TooFewComplete(usize),
    /// Fewer than two items.
    #[error("{0} item(s); an item analysis needs at least 2")]
    TooFewItems(usize),
    /// An item of the data has no key.
    #[error("item `{0}` has no key")]
    NoKey(String),
}

/// One item's classical statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemStatistics {
    /// Item id.
    pub item: String,
    /// Persons who answered it.
    pub n: usize,
    /// Response categories observed.
    pub categories: usize,
    /// Mean score (the p-value of a 0/1 item).
    pub mean: f64,
    /// Standard deviation (n − 1).
    pub sd: f64,
    /// Item–total correlation (item included).
    pub total_r: f64,
    /// Corrected item–total (item–rest) correlation.
    pub rest_r: f64,
    /// Cronbach's α without this item.
    pub alpha_if_deleted: f64,
}

/// The test's classical statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestStatistics {
    /// Persons with every item answered (those the correlations and α use).
    pub n: usize,
    /// Items.
    pub items: usize,
    /// Mean total score.
    pub mean_total: f64,
    /// Standard deviation of the total score (n − 1).
    pub sd_total: f64,
    /// Mean inter-item correlation.
    pub average_r: f64,
    /// Standard deviation of the inter-item correlations (n − 1).
    pub sd_r: f64,
    /// Cronbach's α.
    pub alpha: f64,
    /// Standard error of measurement s_T √(1 − α).
    pub sem: f64,
}

/// Cronbach's α of `k` items from the sum of their variances and the variance of their total.
fn cronbach(k: usize, item_variances: f64, total_variance: f64) -> f64 {
    let k = k as f64;
    k / (k - 1.0) * (1.0 - item_variances / total_variance)
}

/// The score of every cell: the data's code, `NaN` when missing.
fn scores(data: &Responses) -> (usize, usize, Vec<f64>) {
    let (n, j) = (data.n_persons(), data.item_ids().len());
    let mut x = vec![f64::NAN; n * j];
    for p in 0..n {
        data.for_each_answer(p, |item, c| {
            x[p * j + item] = data.codes(item)[usize::from(c)] as f64;
        });
    }
    (n, j, x)
}

/// Classical statistics of every item and of the test.
pub fn item_analysis(data: &Responses) -> Result<(Vec<ItemStatistics>, TestStatistics), ClassicalError> {
    let (n, j, x) = scores(data);
    if j < 2 {
        return Err(ClassicalError::TooFewItems(j));
    }
    let complete: Vec<&[f64]> = x.chunks(j).filter(|r| r.iter().all(|v| !v.is_nan())).collect();
    let m = complete.len();
    if m < 3 {
        return Err(ClassicalError::TooFewComplete(m));
    }
    // Covariance matrix of the complete rows: (X − x̄)ᵀ (X − x̄) / (m − 1).
    let mut centred = DMatrix::from_fn(m, j, |p, i| complete[p][i]);
    for mut col in centred.column_iter_mut() {
        let mean = col.mean();
        col.add_scalar_mut(-mean);
    }
    let s = centred.tr_mul(&centred) / (m as f64 - 1.0);
    let totals: Vec<f64> = complete.iter().map(|r| r.iter().sum()).collect();
    let var_total: f64 = s.iter().sum();
    let sum_var: f64 = s.diagonal().iter().sum();
    let mut r = Vec::with_capacity(j * (j - 1) / 2);
    for a in 0..j {
        for b in 0..a {
            r.push(s[(a, b)] / (s[(a, a)] * s[(b, b)]).sqrt());
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sd = |v: &[f64]| {
        let mu = mean(v);
        (v.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (v.len() as f64 - 1.0)).sqrt()
    };
    let items = (0..j)
        .map(|i| {
            let answered: Vec<f64> = x
                .iter()
                .skip(i)
                .step_by(j)
                .copied()
                .filter(|v| !v.is_nan())
                .collect();
            let cov_total: f64 = s.row(i).iter().sum();
            let var_rest = var_total - 2.0 * cov_total + s[(i, i)];
            ItemStatistics {
                item: data.item_ids()[i].clone(),
                n: answered.len(),
                categories: data.codes(i).len(),
                mean: mean(&answered),
                sd: sd(&answered),
                total_r: cov_total / (s[(i, i)] * var_total).sqrt(),
                rest_r: (cov_total - s[(i, i)]) / (s[(i, i)] * var_rest).sqrt(),
                alpha_if_deleted: cronbach(j - 1, sum_var - s[(i, i)], var_rest),
            }
        })
        .collect();
    let alpha = cronbach(j, sum_var, var_total);
    let sd_total = sd(&totals);
    debug_assert!(n >= m);
    Ok((
        items,
        TestStatistics {
            n: m,
            items: j,
            mean_total: mean(&totals),
            sd_total,
            average_r: mean(&r),
            sd_r: sd(&r),
            alpha,
            sem: sd_total * (1.0 - alpha).sqrt(),
        },
    ))
}

/// Raw choices scored with a key (item id → the code of the right choice): 1 for the key, 0 for any
/// other code, missing kept. Person ids are kept.
pub fn score_with_key(
    raw: &ResponseMatrix,
    key: &HashMap<String, i64>,
) -> Result<ResponseMatrix, ClassicalError> {
    let keys: Vec<i64> = raw
        .item_ids()
        .iter()
        .map(|id| {
            key.get(id)
                .copied()
                .ok_or_else(|| ClassicalError::NoKey(id.clone()))
        })
        .collect::<Result<_, _>>()?;
    let j = keys.len();
    let cells: Vec<u8> = raw
        .cells()
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let i = k % j.max(1);
            if c == MISSING {
                MISSING
            } else {
                u8::from(raw.codes(i)[usize::from(c)] == keys[i])
            }
        })
        .collect();
    let mut scored = ResponseMatrix::from_categories(raw.item_ids().to_vec(), raw.n_persons(), cells);
    if let Some(ids) = raw.person_ids() {
        scored = scored.with_person_ids(ids.to_vec());
    }
    Ok(scored)
}

/// How often a choice of an item was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Item id.
    pub item: String,
    /// The raw code.
    pub choice: i64,
    /// Whether it is the key.
    pub correct: bool,
    /// Persons who made it.
    pub n: usize,
    /// Their share of the item's answers.
    pub proportion: f64,
    /// Their mean total (key-scored) score.
    pub mean_total: f64,
}

/// Every choice of every item, with the mean key-scored total of the persons who made it.
pub fn distractors(raw: &ResponseMatrix, key: &HashMap<String, i64>) -> Result<Vec<Choice>, ClassicalError> {
    let scored = score_with_key(raw, key)?;
    let j = raw.n_items();
    let totals: Vec<f64> = (0..raw.n_persons())
        .map(|p| scored.row(p).iter().filter(|&&c| c == 1).count() as f64)
        .collect();
    let mut out = Vec::new();
    for (i, id) in raw.item_ids().iter().enumerate() {
        let codes = raw.codes(i);
        let mut n = vec![0usize; codes.len()];
        let mut sum = vec![0.0; codes.len()];
        for (p, total) in totals.iter().enumerate() {
            let c = raw.cells()[p * j + i];
            if c != MISSING {
                n[usize::from(c)] += 1;
                sum[usize::from(c)] += total;
            }
        }
        let answered: usize = n.iter().sum();
        for (k, &code) in codes.iter().enumerate() {
            out.push(Choice {
                item: id.clone(),
                choice: code,
                correct: key.get(id) == Some(&code),
                n: n[k],
                proportion: n[k] as f64 / answered.max(1) as f64,
                mean_total: if n[k] > 0 { sum[k] / n[k] as f64 } else { f64::NAN },
            });
        }
    }
    Ok(out)
}
