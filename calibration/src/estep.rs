//! The E-step of Bock–Aitkin EM: for every person the posterior over the quadrature points, and the
//! expected counts r_jkq = Σ_p w_pq 1[x_pj = k] and the marginal log-likelihood Σ_p log Σ_q π_q L_p(θ_q).
//!
//! Cost is what makes calibration fast or slow (N persons × J items × Q points), so the data are read
//! in their one-byte form and:
//! * dense data start from C_q = Σ_j log P_j0(θ_q) and add the difference row log P_jk - log P_j0 only
//!   for answers in a category k > 0, subtracting log P_j0 for the (rare) missing cells; counts of
//!   category 0 are recovered as (persons answering j) - Σ_{k>0} r_jk. A dense dichotomous person
//!   costs about J·Q additions instead of 2·J·Q.
//! * sparse data (each person a few items of a large bank) add the rows of answered items only; the
//!   dense matrix is never built.
//! * persons are split into a fixed number of blocks (independent of the thread count) reduced in
//!   block order, so results are identical whatever the number of threads.

use crate::data::CalibData;
use rayon::prelude::*;

/// log P_jk(θ_q) for every item, category and point, item-major.
#[derive(Debug, Clone)]
pub struct LogTable {
    /// Start of item j's rows.
    pub offsets: Vec<usize>,
    /// Values: item j, category k, point q at `offsets[j] + k·Q + q`.
    pub values: Vec<f64>,
    /// Number of points Q.
    pub q: usize,
}

impl LogTable {
    /// Row of item j, category k.
    #[inline]
    pub fn row(&self, j: usize, k: usize) -> &[f64] {
        let s = self.offsets[j] + k * self.q;
        &self.values[s..s + self.q]
    }
}

/// What the E-step returns.
#[derive(Debug, Clone)]
pub struct Expected {
    /// r_jkq laid out like the [`LogTable`].
    pub r: Vec<f64>,
    /// Σ_p w_pq: expected number of persons at each point.
    pub n: Vec<f64>,
    /// Σ_p w_pq θ_q² … not stored: computed from `n` by the caller.
    /// Marginal log-likelihood (with the prior weights normalised to sum 1).
    pub loglik: f64,
}

/// exp(x) for x ≤ 0 by range reduction and a degree-12 Taylor polynomial (relative error < 2e-15),
/// written branch-free so that loops over it vectorise; 0 below -708.
#[inline(always)]
pub fn fast_exp(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let under = x < -708.0;
    let x = x.max(-708.0);
    let k = (x * LOG2E + 0.5).floor();
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let scale = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    if under { 0.0 } else { p * scale }
}

/// Number of person blocks: fixed by the data size only, never by the thread count.
fn n_blocks(n_persons: usize) -> usize {
    n_persons.div_ceil(2048).clamp(1, 48)
}

/// Per-block accumulators.
struct Acc {
    r: Vec<f64>,
    missing: Vec<f64>,
    n: Vec<f64>,
    loglik: f64,
}

/// Run the E-step. `log_prior` holds log π_q with Σ π_q = 1.
pub fn e_step(data: &CalibData, table: &LogTable, log_prior: &[f64]) -> Expected {
    let q = table.q;
    let n_items = data.n_items();
    let blocks = n_blocks(data.n_persons());
    let per = data.n_persons().div_ceil(blocks);
    let dense = data.dense_cells().is_some();
    // Dense data: base row and difference rows.
    let (base, diff) = if dense {
        let mut base = log_prior.to_vec();
        let mut diff = table.values.clone();
        for j in 0..n_items {
            let row0 = table.row(j, 0);
            for (b, l) in base.iter_mut().zip(row0) {
                *b += l;
            }
            for k in 0..data.categories(j) {
                let s = table.offsets[j] + k * q;
                for (d, l) in diff[s..s + q].iter_mut().zip(row0) {
                    *d -= l;
                }
            }
        }
        (base, diff)
    } else {
        (log_prior.to_vec(), Vec::new())
    };
    let accs: Vec<Acc> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            let mut acc = Acc {
                r: vec![0.0; table.values.len()],
                missing: if dense { vec![0.0; n_items * q] } else { Vec::new() },
                n: vec![0.0; q],
                loglik: 0.0,
            };
            let mut ll = vec![0.0; q];
            let lo = b * per;
            let hi = ((b + 1) * per).min(data.n_persons());
            for p in lo..hi {
                ll.copy_from_slice(&base);
                if let Some(cells) = data.dense_cells() {
                    let row = &cells[p * n_items..(p + 1) * n_items];
                    for (j, &c) in row.iter().enumerate() {
                        if c == etalon_items::MISSING {
                            let r0 = table.row(j, 0);
                            ll.iter_mut().zip(r0).for_each(|(x, l)| *x -= l);
                        } else if c > 0 {
                            let s = table.offsets[j] + c as usize * q;
                            ll.iter_mut().zip(&diff[s..s + q]).for_each(|(x, d)| *x += d);
                        }
                    }
                } else {
                    let (items, cats) = data.sparse_person(p);
                    for (&j, &c) in items.iter().zip(cats) {
                        ll.iter_mut()
                            .zip(table.row(j as usize, c as usize))
                            .for_each(|(x, l)| *x += l);
                    }
                }
                let max = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for x in ll.iter_mut() {
                    *x = fast_exp(*x - max);
                    sum += *x;
                }
                acc.loglik += max + sum.ln();
                let inv = 1.0 / sum;
                ll.iter_mut().for_each(|x| *x *= inv);
                acc.n.iter_mut().zip(&ll).for_each(|(n, w)| *n += w);
                if let Some(cells) = data.dense_cells() {
                    let row = &cells[p * n_items..(p + 1) * n_items];
                    for (j, &c) in row.iter().enumerate() {
                        if c == etalon_items::MISSING {
                            acc.missing[j * q..(j + 1) * q]
                                .iter_mut()
                                .zip(&ll)
                                .for_each(|(m, w)| *m += w);
                        } else if c > 0 {
                            let s = table.offsets[j] + c as usize * q;
                            acc.r[s..s + q].iter_mut().zip(&ll).for_each(|(r, w)| *r += w);
                        }
                    }
                } else {
                    let (items, cats) = data.sparse_person(p);
                    for (&j, &c) in items.iter().zip(cats) {
                        let s = table.offsets[j as usize] + c as usize * q;
                        acc.r[s..s + q].iter_mut().zip(&ll).for_each(|(r, w)| *r += w);
                    }
                }
            }
            acc
        })
        .collect();
    // Deterministic reduction in block order.
    let mut it = accs.into_iter();
    let mut total = it.next().unwrap_or_else(|| Acc {
        r: vec![0.0; table.values.len()],
        missing: vec![0.0; n_items * q],
        n: vec![0.0; q],
        loglik: 0.0,
    });
    for a in it {
        total.r.iter_mut().zip(&a.r).for_each(|(x, y)| *x += y);
        total
            .missing
            .iter_mut()
            .zip(&a.missing)
            .for_each(|(x, y)| *x += y);
        total.n.iter_mut().zip(&a.n).for_each(|(x, y)| *x += y);
        total.loglik += a.loglik;
    }
    if dense {
        // Category 0: persons answering j at q minus the other categories.
        for j in 0..n_items {
            for qq in 0..q {
                let answered = total.n[qq] - total.missing.get(j * q + qq).copied().unwrap_or(0.0);
                let others: f64 = (1..data.categories(j))
                    .map(|k| total.r[table.offsets[j] + k * q + qq])
                    .sum();
                total.r[table.offsets[j] + qq] = (answered - others).max(0.0);
            }
        }
    }
    Expected {
        r: total.r,
        n: total.n,
        loglik: total.loglik,
    }
}

#[cfg(test)]
mod tests {
    use super::fast_exp;

    #[test]
    fn fast_exp_is_accurate() {
        let mut x = -750.0;
        while x <= 0.0 {
            let e = x.exp();
            let f = fast_exp(x);
            if x < -708.0 {
                assert_eq!(f, 0.0);
            } else {
                assert!(((f - e) / e).abs() < 2e-15, "x = {x}: {f} vs {e}");
            }
            x += 0.013_7;
        }
        assert_eq!(fast_exp(0.0), 1.0);
    }
}
