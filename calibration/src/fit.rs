//! Item fit: S-X² (Orlando & Thissen 2000).
//!
//! Persons are grouped by their summed score S. For item j, the model-expected proportion of category k
//! in group S is E_jk(S) = Σ_q π_q P_jk(θ_q) f_{-j}(S - k | θ_q) / Σ_q π_q f(S | θ_q), where f is the
//! summed-score distribution given θ computed by the Lord–Wingersky (1984) recursion (f_{-j} without
//! item j). S-X²_j = Σ_S N_S Σ_k (O_jk(S) - E_jk(S))² / E_jk(S), after merging adjacent score groups
//! until every expected count N_S·E_jk(S) is at least 1 (mirt's `mincell = 1`); the extreme scores are
//! left out. df = (groups × (K_j - 1)) - (item's free parameters); p from the χ² distribution.
//! Computed on the persons who answered every item (summed scores need complete patterns).

use crate::data::CalibData;
use crate::em::Model;
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// S-X² of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemFit {
    /// Item id.
    pub item: String,
    /// The statistic.
    pub s_x2: f64,
    /// Degrees of freedom.
    pub df: usize,
    /// P(χ²_df ≥ S-X²).
    pub p_value: f64,
}

/// Summed-score distribution over `items` at each grid point: out[s·Q + q] (Lord & Wingersky 1984).
fn score_distribution(
    probs: &[Vec<Vec<f64>>],
    items: impl Iterator<Item = usize>,
    q: usize,
    max_score: usize,
) -> Vec<f64> {
    let mut f = vec![0.0; (max_score + 1) * q];
    f[..q].iter_mut().for_each(|x| *x = 1.0);
    let mut top = 0;
    let mut next = vec![0.0; (max_score + 1) * q];
    for j in items {
        let k = probs[j].len();
        next[..(top + k) * q].iter_mut().for_each(|x| *x = 0.0);
        for s in 0..=top {
            for (c, pc) in probs[j].iter().enumerate() {
                let (dst, src) = ((s + c) * q, s * q);
                for qq in 0..q {
                    next[dst + qq] += f[src + qq] * pc[qq];
                }
            }
        }
        top += k - 1;
        std::mem::swap(&mut f, &mut next);
    }
    f
}

/// S-X² for every item (empty when fewer than 20 persons answered every item, or with more than
/// 300 items, where summed scores are not a sensible grouping).
/// Why S-X² was not computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FitSkipped {
    /// Its tables grow with the square of the summed-score range; beyond [`MAX_FIT_ITEMS`] items they
    /// would not fit in memory (40,000 items would ask for about 160 GB).
    TooManyItems {
        /// Items calibrated.
        items: usize,
    },
    /// Fewer than two items.
    TooFewItems {
        /// Items calibrated.
        items: usize,
    },
    /// Fewer than 20 persons answered every item (S-X² groups complete patterns by summed score).
    TooFewCompletePatterns {
        /// Persons with a complete pattern.
        complete: usize,
    },
}

impl std::fmt::Display for FitSkipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitSkipped::TooManyItems { items } => write!(
                f,
                "{items} items: S-X² tables grow with the square of the number of items and are computed for at most {MAX_FIT_ITEMS}"
            ),
            FitSkipped::TooFewItems { items } => write!(f, "{items} item(s): S-X² needs at least 2"),
            FitSkipped::TooFewCompletePatterns { complete } => write!(
                f,
                "{complete} persons answered every item; S-X² needs at least 20 complete patterns"
            ),
        }
    }
}

/// The most items S-X² is computed for.
pub const MAX_FIT_ITEMS: usize = 300;

/// S-X² for every item, or why it was not computed (checked before anything is allocated).
pub fn s_x2(data: &CalibData, model: &Model) -> Result<Vec<ItemFit>, FitSkipped> {
    let nj = data.n_items();
    if nj > MAX_FIT_ITEMS {
        return Err(FitSkipped::TooManyItems { items: nj });
    }
    if nj < 2 {
        return Err(FitSkipped::TooFewItems { items: nj });
    }
    let q = model.theta.len();
    // One pass over the data: summed score of each complete pattern, observed counts per
    // (item, score, category).
    let mut row = vec![usize::MAX; nj];
    let mut totals: Vec<usize> = Vec::new();
    let max_k: usize = (0..nj).map(|j| data.categories(j)).max().unwrap_or(2);
    let max_total: usize = (0..nj).map(|j| data.categories(j) - 1).sum();
    let mut observed = vec![0.0f64; nj * (max_total + 1) * max_k];
    for p in 0..data.n_persons() {
        row.iter_mut().for_each(|c| *c = usize::MAX);
        data.for_each_answer(p, |j, c| row[j] = c);
        if row.contains(&usize::MAX) {
            continue;
        }
        let t: usize = row.iter().sum();
        totals.push(t);
        for (j, &c) in row.iter().enumerate() {
            observed[(j * (max_total + 1) + t) * max_k + c] += 1.0;
        }
    }
    if totals.len() < 20 {
        return Err(FitSkipped::TooFewCompletePatterns {
            complete: totals.len(),
        });
    }
    let mut group_size = vec![0.0f64; max_total + 1];
    for &t in &totals {
        group_size[t] += 1.0;
    }
    let prior: Vec<f64> = model.log_prior().iter().map(|l| l.exp()).collect();
    // probs[j][k][q]
    let probs: Vec<Vec<Vec<f64>>> = model
        .items
        .iter()
        .map(|st| {
            let log_p = st.log_probabilities(&model.theta);
            log_p
                .chunks_exact(q)
                .map(|row| row.iter().map(|l| l.exp()).collect())
                .collect()
        })
        .collect();
    let max_score = max_total;
    let mut out = Vec::with_capacity(nj);
    for j in 0..nj {
        let kj = probs[j].len();
        let rest = score_distribution(&probs, (0..nj).filter(|&i| i != j), q, max_score);
        // Expected and observed per score group S = 1 … max - 1.
        let mut groups: Vec<(f64, Vec<f64>, Vec<f64>)> = Vec::new(); // (N_S, expected counts, observed counts)
        for s in 1..max_score {
            let n_s = group_size[s];
            if n_s == 0.0 {
                continue;
            }
            let mut num = vec![0.0; kj];
            let mut den = 0.0;
            for qq in 0..q {
                for (c, n) in num.iter_mut().enumerate() {
                    if s >= c && s - c <= max_score {
                        let v = prior[qq] * probs[j][c][qq] * rest[(s - c) * q + qq];
                        *n += v;
                        den += v;
                    }
                }
            }
            let expected: Vec<f64> = num.iter().map(|n| n_s * n / den.max(1e-300)).collect();
            let at = (j * (max_total + 1) + s) * max_k;
            groups.push((n_s, expected, observed[at..at + kj].to_vec()));
        }
        // Merge adjacent groups until every expected count is ≥ 1.
        let mut merged: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        let mut cur: Option<(Vec<f64>, Vec<f64>)> = None;
        for (_, e, o) in groups {
            let c = cur.get_or_insert_with(|| (vec![0.0; kj], vec![0.0; kj]));
            c.0.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
            c.1.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            if c.0.iter().all(|&x| x >= 1.0) {
                merged.extend(cur.take());
            }
        }
        if let Some(c) = cur {
            match merged.last_mut() {
                Some(last) => {
                    last.0.iter_mut().zip(&c.0).for_each(|(a, b)| *a += b);
                    last.1.iter_mut().zip(&c.1).for_each(|(a, b)| *a += b);
                }
                None => merged.push(c),
            }
        }
        let stat: f64 = merged
            .iter()
            .map(|(e, o)| {
                e.iter()
                    .zip(o)
                    .map(|(e, o)| if *e > 0.0 { (o - e).powi(2) / e } else { 0.0 })
                    .sum::<f64>()
            })
            .sum();
        let cells = merged.len() * (kj - 1);
        let df = cells.saturating_sub(if model.items[j].fixed {
            0
        } else {
            model.items[j].n_free()
        });
        let p_value = if df > 0 {
            ChiSquared::new(df as f64).map_or(f64::NAN, |d| 1.0 - d.cdf(stat))
        } else {
            f64::NAN
        };
        out.push(ItemFit {
            item: data.item_ids()[j].clone(),
            s_x2: stat,
            df,
            p_value,
        });
    }
    Ok(out)
}
