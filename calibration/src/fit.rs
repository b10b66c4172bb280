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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ItemFit {
    /// Item id.
    pub item: String,
    /// The statistic.
    pub s_x2: f64,
    /// Degrees of freedom.
    pub df: usize,
    /// P(χ²_df ≥ S-X²).
    pub p_value: f64,
    /// RMSEA = √(max(S-X²/df − 1, 0) / (N − 1)), N every person of the data.
    pub rmsea: f64,
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

/// What S-X² needs besides the data: the items' category probabilities on a grid and the grid's
/// weights, the items' free parameters (for df), and the number of persons (for RMSEA).
#[derive(Debug, Clone)]
pub struct SumScoreModel<'a> {
    /// Item ids, data order.
    pub item_ids: &'a [String],
    /// P_jk(θ_q) as `probs[j][k][q]`.
    pub probs: Vec<Vec<Vec<f64>>>,
    /// Weights of the grid points (normalised latent density), Σ = 1.
    pub weights: Vec<f64>,
    /// Free parameters of each item (0 for an item held fixed).
    pub n_free: Vec<usize>,
    /// Persons of the data, complete or not (the N of RMSEA).
    pub n_persons: usize,
}

/// A summed-score group of one item: persons, expected and observed counts per category.
#[derive(Debug, Clone)]
struct Group {
    n: f64,
    expected: Vec<f64>,
    observed: Vec<f64>,
}

impl Group {
    fn absorb(&mut self, other: &Group) {
        self.n += other.n;
        self.expected
            .iter_mut()
            .zip(&other.expected)
            .for_each(|(a, b)| *a += b);
        self.observed
            .iter_mut()
            .zip(&other.observed)
            .for_each(|(a, b)| *a += b);
    }
}

/// Merge row `from` into row `into` and remove it.
fn merge(groups: &mut Vec<Group>, from: usize, into: usize) {
    let g = groups[from].clone();
    groups[into].absorb(&g);
    groups.remove(from);
}

/// mirt 1.45's `collapseCells` for the rows of one item (score levels nobody has already left out):
/// a level of exactly one person joins the next (going up; a last level of one joins the one before);
/// then, while some expected count is below 1 (and not 0), the lowest such level joins a neighbour —
/// the first the second, the last the one before, any other the neighbour with fewer persons (a tie
/// to the lower score).
fn collapse(mut groups: Vec<Group>) -> Vec<Group> {
    let mut i = 0;
    while i + 1 < groups.len() {
        if groups[i].n == 1.0 {
            merge(&mut groups, i, i + 1);
        } else {
            i += 1;
        }
    }
    let last = groups.len();
    if last >= 2 && groups[last - 1].n == 1.0 {
        merge(&mut groups, last - 1, last - 2);
    }
    while groups.len() > 1 {
        let Some(i) = groups
            .iter()
            .position(|g| g.expected.iter().any(|&e| e < 1.0 && e != 0.0))
        else {
            break;
        };
        let last = groups.len() - 1;
        let into = if i == 0 {
            1
        } else if i == last || groups[i - 1].n <= groups[i + 1].n {
            i - 1
        } else {
            i + 1
        };
        merge(&mut groups, i, into);
    }
    groups
}

/// S-X² for every item from the complete patterns `each_row` gives (categories in data order), or
/// why it was not computed (checked before anything is allocated).
pub fn s_x2_of(
    model: &SumScoreModel<'_>,
    each_row: impl FnOnce(&mut dyn FnMut(&[usize])),
) -> Result<Vec<ItemFit>, FitSkipped> {
    let nj = model.item_ids.len();
    if nj > MAX_FIT_ITEMS {
        return Err(FitSkipped::TooManyItems { items: nj });
    }
    if nj < 2 {
        return Err(FitSkipped::TooFewItems { items: nj });
    }
    let probs = &model.probs;
    let q = model.weights.len();
    let max_k: usize = probs.iter().map(Vec::len).max().unwrap_or(2);
    let max_total: usize = probs.iter().map(|p| p.len() - 1).sum();
    // One pass over the data: summed score of each complete pattern, observed counts per
    // (item, score, category).
    let mut observed = vec![0.0f64; nj * (max_total + 1) * max_k];
    let mut group_size = vec![0.0f64; max_total + 1];
    let mut complete = 0usize;
    each_row(&mut |row: &[usize]| {
        let t: usize = row.iter().sum();
        complete += 1;
        group_size[t] += 1.0;
        for (j, &c) in row.iter().enumerate() {
            observed[(j * (max_total + 1) + t) * max_k + c] += 1.0;
        }
    });
    if complete < 20 {
        return Err(FitSkipped::TooFewCompletePatterns { complete });
    }
    let prior = &model.weights;
    let max_score = max_total;
    let mut out = Vec::with_capacity(nj);
    for j in 0..nj {
        let kj = probs[j].len();
        let rest = score_distribution(probs, (0..nj).filter(|&i| i != j), q, max_score);
        // Expected and observed per score group S = 1 … max - 1.
        let mut groups: Vec<Group> = Vec::new();
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
            let at = (j * (max_total + 1) + s) * max_k;
            groups.push(Group {
                n: n_s,
                expected: num.iter().map(|n| n_s * n / den.max(1e-300)).collect(),
                observed: observed[at..at + kj].to_vec(),
            });
        }
        let merged = collapse(groups);
        let stat: f64 = merged
            .iter()
            .map(|g| {
                g.expected
                    .iter()
                    .zip(&g.observed)
                    .map(|(e, o)| if *e > 0.0 { (o - e).powi(2) / e } else { 0.0 })
                    .sum::<f64>()
            })
            .sum();
        let cells = merged.len() * (kj - 1);
        let df = cells.saturating_sub(model.n_free[j]);
        let p_value = if df > 0 {
            ChiSquared::new(df as f64).map_or(f64::NAN, |d| d.sf(stat))
        } else {
            f64::NAN
        };
        let rmsea = if df > 0 && model.n_persons > 1 {
            ((stat / df as f64 - 1.0).max(0.0) / (model.n_persons as f64 - 1.0)).sqrt()
        } else {
            f64::NAN
        };
        out.push(ItemFit {
            item: model.item_ids[j].clone(),
            s_x2: stat,
            df,
            p_value,
            rmsea,
        });
    }
    Ok(out)
}

/// S-X² for every item of a calibration, or why it was not computed.
pub fn s_x2(data: &CalibData, model: &Model) -> Result<Vec<ItemFit>, FitSkipped> {
    let nj = data.n_items();
    if nj > MAX_FIT_ITEMS {
        return Err(FitSkipped::TooManyItems { items: nj });
    }
    let weights: Vec<f64> = model.log_prior().iter().map(|l| l.exp()).collect();
    // probs[j][k][q]
    let q = model.theta.len();
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
    let input = SumScoreModel {
        item_ids: data.item_ids(),
        probs,
        weights,
        n_free: model
            .items
            .iter()
            .map(|st| if st.fixed { 0 } else { st.n_free() })
            .collect(),
        n_persons: data.n_persons(),
    };
    s_x2_of(&input, |f| {
        let mut row = vec![usize::MAX; nj];
        for p in 0..data.n_persons() {
            row.iter_mut().for_each(|c| *c = usize::MAX);
            data.for_each_answer(p, |j, c| row[j] = c);
            if !row.contains(&usize::MAX) {
                f(&row);
            }
        }
    })
}
