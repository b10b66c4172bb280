//! Item fit: S-X² (Orlando & Thissen 2000).
//!
//! Persons are grouped by their summed score S. For item j, the model-expected proportion of category k
//! in group S is E_jk(S) = Σ_q π_q P_jk(θ_q) f_{-j}(S - k | θ_q) / Σ_q π_q f(S | θ_q), where f is the
//! summed-score distribution given θ computed by the Lord–Wingersky (1984) recursion (f_{-j} without
//! item j). S-X²_j = Σ_S N_S Σ_k (O_jk(S) - E_jk(S))² / E_jk(S), after merging adjacent score groups
//! until every expected count N_S·E_jk(S) is at least 1 (mirt's `mincell = 1`); the extreme scores are
//! left out. df = (groups × (K_j - 1)) - (item's free parameters); p from the χ² distribution.
//! Computed on the persons who answered every item; on incomplete data (adaptive logs, booklets)
//! `etalon fit` uses its generalised form, each person's expectation conditioned on the summed score
//! over their own items ([`s_x2_incomplete`]).

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
                "{complete} usable response patterns; S-X² needs at least 20 (a calibration uses the complete patterns; `etalon fit` computes its generalised form on incomplete data)"
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

/// S-X² of one item from its score groups (before merging): mirt's merging, then Σ (O − E)²/E,
/// df = cells − free parameters, p, RMSEA.
fn item_fit(id: &str, groups: Vec<Group>, n_free: usize, n_persons: usize) -> ItemFit {
    let kj = groups.first().map_or(2, |g| g.expected.len());
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
    let df = cells.saturating_sub(n_free);
    let p_value = if df > 0 {
        ChiSquared::new(df as f64).map_or(f64::NAN, |d| d.sf(stat))
    } else {
        f64::NAN
    };
    let rmsea = if df > 0 && n_persons > 1 {
        ((stat / df as f64 - 1.0).max(0.0) / (n_persons as f64 - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    ItemFit {
        item: id.to_string(),
        s_x2: stat,
        df,
        p_value,
        rmsea,
    }
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
        out.push(item_fit(
            &model.item_ids[j],
            groups,
            model.n_free[j],
            model.n_persons,
        ));
    }
    Ok(out)
}

/// One step of the Lord–Wingersky recursion: `dst` = the score distribution of `src` (scores 0 …
/// `top`, score-major with `q` points each) with one more item of category probabilities `probs`
/// (`probs[k][q]`). Only the scores reached (0 … top + K − 1) are written. Returns the new top.
fn add_item(dst: &mut [f64], src: &[f64], probs: &[Vec<f64>], top: usize, q: usize) -> usize {
    dst[..(top + probs.len()) * q].iter_mut().for_each(|x| *x = 0.0);
    for u in 0..=top {
        for (c, pc) in probs.iter().enumerate() {
            for qq in 0..q {
                dst[(u + c) * q + qq] += src[u * q + qq] * pc[qq];
            }
        }
    }
    top + probs.len() - 1
}

/// `body` folded over 0..n in fixed blocks — their number set by n alone (at least 2,048 indices
/// each, at most `max_blocks`), never by the thread count — the blocks in parallel, their states
/// returned in block order: sums over persons that are the same on any machine.
pub(crate) fn fold_in_blocks<S: Send>(
    n: usize,
    max_blocks: usize,
    init: impl Fn() -> S + Sync,
    body: impl Fn(S, usize) -> S + Sync,
) -> Vec<S> {
    use rayon::prelude::*;
    let blocks = n.div_ceil(2048).clamp(1, max_blocks.max(1));
    let per = n.div_ceil(blocks).max(1);
    (0..blocks)
        .into_par_iter()
        .map(|b| ((b * per).min(n)..((b + 1) * per).min(n)).fold(init(), &body))
        .collect()
}

/// S-X² generalised to incomplete data (adaptive logs, linked forms, booklets): each person's expected
/// answer to item j is conditioned on their own summed score S over the items *they* answered,
///
/// E_ijk = Σ_q π_q P_jk(θ_q) f_{A_i∖j}(S_i − k | θ_q) / Σ_q π_q f_{A_i}(S_i | θ_q),
///
/// with f_A the Lord–Wingersky summed-score distribution over the item set A (its leave-one-out
/// forms from prefix and suffix products); persons are grouped by their proportion score, S_i scaled
/// to the longest test's score range and rounded, expected and observed counts summed per group, then
/// merged and summed as S-X² is. When every person answered every item the groups are the summed
/// scores and this is S-X² itself (checked in the tests); persons with an extreme score (0 or their
/// maximum) or a single answer are left out. `answers(p)` gives person p's (item, category) pairs.
pub fn s_x2_incomplete(
    model: &SumScoreModel<'_>,
    n_persons: usize,
    answers: impl Fn(usize, &mut Vec<(usize, usize)>) + Sync,
) -> Result<Vec<ItemFit>, FitSkipped> {
    let nj = model.item_ids.len();
    if nj < 2 {
        return Err(FitSkipped::TooFewItems { items: nj });
    }
    let probs = &model.probs;
    let q = model.weights.len();
    let max_k: usize = probs.iter().map(Vec::len).max().unwrap_or(2);
    // The accumulators hold items × score levels × categories; as many cells as the complete form's
    // limit allows (MAX_FIT_ITEMS items of 300 levels).
    let limit = MAX_FIT_ITEMS * (MAX_FIT_ITEMS + 1) * 2;
    // The longest test's score range: the groups.
    let mut scratch = Vec::new();
    let mut levels = 0usize;
    let mut usable = 0usize;
    for p in 0..n_persons {
        answers(p, &mut scratch);
        let max: usize = scratch.iter().map(|&(j, _)| probs[j].len() - 1).sum();
        let s: usize = scratch.iter().map(|&(_, c)| c).sum();
        levels = levels.max(max);
        usable += usize::from(scratch.len() > 1 && s > 0 && s < max);
    }
    if usable < 20 {
        return Err(FitSkipped::TooFewCompletePatterns { complete: usable });
    }
    if nj.saturating_mul(levels + 1).saturating_mul(max_k) > limit {
        return Err(FitSkipped::TooManyItems { items: nj });
    }
    let cell = |j: usize, g: usize, k: usize| (j * (levels + 1) + g) * max_k + k;
    let size = nj * (levels + 1) * max_k;
    struct Acc {
        observed: Vec<f64>,
        expected: Vec<f64>,
        n: Vec<f64>,
    }
    let new_acc = || Acc {
        observed: vec![0.0; size],
        expected: vec![0.0; size],
        n: vec![0.0; nj * (levels + 1)],
    };
    let w = &model.weights;
    let acc = fold_in_blocks(
        n_persons,
        64,
        || {
            let scratch = (vec![0.0f64; max_k], vec![0.0f64; q], Vec::new());
            (new_acc(), Vec::new(), Vec::new(), Vec::new(), scratch)
        },
        |(mut acc, mut items, mut prefix, mut suffix, (mut expected, mut f, mut tops)), p| {
            answers(p, &mut items);
            let m = items.len();
            let max: usize = items.iter().map(|&(j, _)| probs[j].len() - 1).sum();
            let s: usize = items.iter().map(|&(_, c)| c).sum();
            if m < 2 || s == 0 || s >= max {
                return (acc, items, prefix, suffix, (expected, f, tops));
            }
            let g = (s as f64 * levels as f64 / max as f64).round() as usize;
            // prefix[t]: distribution over the first t items, suffix[t]: over items t.. (each
            // (max + 1) × Q, score-major).
            let width = (max + 1) * q;
            prefix.resize((m + 1) * width, 0.0);
            suffix.resize((m + 1) * width, 0.0);
            prefix[..width].iter_mut().for_each(|x| *x = 0.0);
            prefix[..q].iter_mut().for_each(|x| *x = 1.0);
            let mut top = 0;
            tops.clear();
            for t in 0..m {
                let j = items[t].0;
                tops.push(top);
                let (head, tail) = prefix.split_at_mut((t + 1) * width);
                let (src, dst) = (&head[t * width..], &mut tail[..width]);
                top = add_item(dst, src, &probs[j], top, q);
            }
            suffix[m * width..(m + 1) * width]
                .iter_mut()
                .for_each(|x| *x = 0.0);
            suffix[m * width..m * width + q].iter_mut().for_each(|x| *x = 1.0);
            let mut top = 0;
            for t in (0..m).rev() {
                let j = items[t].0;
                let (head, tail) = suffix.split_at_mut((t + 1) * width);
                let (dst, src) = (&mut head[t * width..], &tail[..width]);
                top = add_item(dst, src, &probs[j], top, q);
            }
            // Leave-one-out at the needed scores: f_{-t}(r) = Σ_u prefix[t](u) suffix[t+1](r − u).
            for t in 0..m {
                let (j, c_obs) = items[t];
                let kj = probs[j].len();
                let (pre, suf) = (
                    &prefix[t * width..(t + 1) * width],
                    &suffix[(t + 1) * width..(t + 2) * width],
                );
                // Scores the items before t reach, and those after t.
                let (before, after) = (tops[t], max - tops[t] - (kj - 1));
                let mut total = 0.0;
                for (k, e) in expected.iter_mut().enumerate().take(kj) {
                    *e = 0.0;
                    if k > s || s - k > before + after {
                        continue;
                    }
                    let r = s - k;
                    f.iter_mut().for_each(|x| *x = 0.0);
                    for u in r.saturating_sub(after)..=r.min(before) {
                        let (a, b) = (&pre[u * q..(u + 1) * q], &suf[(r - u) * q..(r - u + 1) * q]);
                        for ((x, y), z) in f.iter_mut().zip(a).zip(b) {
                            *x += y * z;
                        }
                    }
                    *e = (0..q).map(|qq| w[qq] * probs[j][k][qq] * f[qq]).sum();
                    total += *e;
                }
                if total > 0.0 {
                    for (k, e) in expected.iter().enumerate().take(kj) {
                        acc.expected[cell(j, g, k)] += e / total;
                    }
                }
                acc.observed[cell(j, g, c_obs)] += 1.0;
                acc.n[j * (levels + 1) + g] += 1.0;
            }
            (acc, items, prefix, suffix, (expected, f, tops))
        },
    )
    .into_iter()
    .map(|(acc, ..)| acc)
    .reduce(|mut a, b| {
        for (x, y) in [
            (&mut a.observed, &b.observed),
            (&mut a.expected, &b.expected),
            (&mut a.n, &b.n),
        ] {
            x.iter_mut().zip(y).for_each(|(u, v)| *u += v);
        }
        a
    })
    .unwrap_or_else(new_acc);
    Ok((0..nj)
        .map(|j| {
            let kj = probs[j].len();
            let groups = (0..=levels)
                .filter(|&g| acc.n[j * (levels + 1) + g] > 0.0)
                .map(|g| Group {
                    n: acc.n[j * (levels + 1) + g],
                    expected: (0..kj).map(|k| acc.expected[cell(j, g, k)]).collect(),
                    observed: (0..kj).map(|k| acc.observed[cell(j, g, k)]).collect(),
                })
                .collect();
            item_fit(&model.item_ids[j], groups, model.n_free[j], model.n_persons)
        })
        .collect())
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
    // The complete patterns only: the generalised form ([`s_x2_incomplete`], `etalon fit`) costs
    // Σ_p (answers of p)² per point, too much to add to every calibration of a large adaptive log.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// On complete data the generalised S-X² is S-X²: same groups, same expectations.
    #[test]
    fn the_generalised_form_is_s_x2_on_complete_data() {
        let (n, nj, q) = (800usize, 6usize, 41usize);
        let theta: Vec<f64> = (0..q).map(|i| -6.0 + 12.0 * i as f64 / (q - 1) as f64).collect();
        let raw: Vec<f64> = theta.iter().map(|t| (-0.5 * t * t).exp()).collect();
        let total: f64 = raw.iter().sum();
        // Four 2PL items and two graded items with three categories.
        let probs: Vec<Vec<Vec<f64>>> = (0..nj)
            .map(|j| {
                let (a, b) = (0.7 + 0.25 * j as f64, -1.2 + 0.5 * j as f64);
                let star = |t: f64, d: f64| 1.0 / (1.0 + (-a * (t - d)).exp());
                if j < 4 {
                    vec![
                        theta.iter().map(|&t| 1.0 - star(t, b)).collect(),
                        theta.iter().map(|&t| star(t, b)).collect(),
                    ]
                } else {
                    vec![
                        theta.iter().map(|&t| 1.0 - star(t, b - 0.6)).collect(),
                        theta
                            .iter()
                            .map(|&t| star(t, b - 0.6) - star(t, b + 0.6))
                            .collect(),
                        theta.iter().map(|&t| star(t, b + 0.6)).collect(),
                    ]
                }
            })
            .collect();
        let ids: Vec<String> = (0..nj).map(|j| format!("i{j}")).collect();
        let model = SumScoreModel {
            item_ids: &ids,
            probs,
            weights: raw.iter().map(|r| r / total).collect(),
            n_free: vec![2, 2, 2, 2, 3, 3],
            n_persons: n,
        };
        // Answers drawn with an LCG from the model at θ_p.
        let mut u = crate::uniforms(99);
        let rows: Vec<Vec<usize>> = (0..n)
            .map(|_| {
                // θ_p on the middle half of the grid.
                let qq = q / 4 + (u() * (q / 2) as f64) as usize;
                (0..nj)
                    .map(|j| {
                        let x = u();
                        let mut acc = 0.0;
                        model.probs[j]
                            .iter()
                            .position(|pk| {
                                acc += pk[qq];
                                x < acc
                            })
                            .unwrap_or(model.probs[j].len() - 1)
                    })
                    .collect()
            })
            .collect();
        let standard = s_x2_of(&model, |f| rows.iter().for_each(|r| f(r))).unwrap();
        let general = s_x2_incomplete(&model, n, |p, out| {
            out.clear();
            out.extend(rows[p].iter().copied().enumerate());
        })
        .unwrap();
        for (s, g) in standard.iter().zip(&general) {
            assert_eq!(s.df, g.df, "{}", s.item);
            assert!((s.s_x2 - g.s_x2).abs() < 1e-9 * s.s_x2.max(1.0), "{s:?} vs {g:?}");
        }
        assert!(standard.iter().any(|s| s.s_x2 > 1.0), "{standard:?}");
    }
}
