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
use nalgebra::DMatrix;
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

pub use etalon_items::irt::fast_exp;

/// Σ v with eight independent accumulators (vectorises; the order is fixed, so results are reproducible).
#[inline]
fn lane_sum(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f64>() + rest.iter().sum::<f64>()
}

/// max v with eight lanes.
#[inline]
fn lane_max(v: &[f64]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().chain(rest).copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Turn a person's log-likelihood column into normalised posterior weights; returns log Σ exp.
#[inline]
fn softmax_in_place(col: &mut [f64]) -> f64 {
    let max = lane_max(col);
    for x in col.iter_mut() {
        *x = fast_exp(*x - max);
    }
    let sum = lane_sum(col);
    let inv = 1.0 / sum;
    for x in col.iter_mut() {
        *x *= inv;
    }
    max + sum.ln()
}

/// Number of person blocks: fixed by the data only, never by the thread count. Dense data use blocks
/// of 2,048 persons (small matrices, cache-friendly); sparse data at most 48 blocks, because each
/// block holds accumulators for every item of a possibly large bank.
fn n_blocks(n_persons: usize, dense: bool) -> usize {
    let blocks = n_persons.div_ceil(2048).max(1);
    if dense { blocks } else { blocks.min(48) }
}

/// Per-block accumulators.
struct Acc {
    r: Vec<f64>,
    missing: Vec<f64>,
    n: Vec<f64>,
    loglik: f64,
}

/// Columns of the one-hot design: (item, category) for every category k ≥ 1, and item → first column.
fn design_columns(data: &CalibData) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut cols = Vec::new();
    let mut first = Vec::with_capacity(data.n_items());
    for j in 0..data.n_items() {
        first.push(cols.len());
        for k in 1..data.categories(j) {
            cols.push((j, k));
        }
    }
    (cols, first)
}

/// The one-hot design of one block of persons (built once per fit when memory allows) and its
/// missing cells (block row, item).
pub struct BlockDesign {
    at: DMatrix<f64>,
    missing: Vec<(usize, usize)>,
}

/// Designs of all dense blocks, cached across EM cycles when they take at most `budget` bytes.
pub struct Workspace {
    blocks: Vec<Option<BlockDesign>>,
}

impl Workspace {
    /// Build the cache for `data` (empty for sparse data or when over budget).
    pub fn new(data: &CalibData, budget: usize) -> Self {
        let (cols, first) = design_columns(data);
        let n = data.n_persons();
        let blocks = n_blocks(n, data.dense_cells().is_some());
        let per = n.div_ceil(blocks);
        let fits = data.dense_cells().is_some() && n.saturating_mul(cols.len()).saturating_mul(8) <= budget;
        Workspace {
            blocks: (0..blocks)
                .into_par_iter()
                .map(|b| {
                    fits.then(|| build_design(data, cols.len(), &first, b * per, ((b + 1) * per).min(n)))
                })
                .collect(),
        }
    }
    /// An empty workspace (designs rebuilt each cycle).
    pub fn empty() -> Self {
        Workspace { blocks: Vec::new() }
    }
}

fn build_design(data: &CalibData, m: usize, first: &[usize], lo: usize, hi: usize) -> BlockDesign {
    let nj = data.n_items();
    let cells = data.dense_cells().unwrap_or(&[]);
    let mut at = DMatrix::<f64>::zeros(m, hi - lo);
    let mut missing = Vec::new();
    let raw = at.as_mut_slice();
    for (r, p) in (lo..hi).enumerate() {
        for (j, &c) in cells[p * nj..(p + 1) * nj].iter().enumerate() {
            if c == etalon_items::MISSING {
                missing.push((r, j));
            } else if c > 0 {
                raw[r * m + first[j] + c as usize - 1] = 1.0;
            }
        }
    }
    BlockDesign { at, missing }
}

/// Dense block as matrix products: with Aᵀ the (item, category ≥ 1) × persons one-hot design and Dᵀ
/// the difference rows transposed, (log L)ᵀ = base + Dᵀ·Aᵀ (minus log P_j0 for missing cells),
/// W = softmax per person, R = Aᵀ·W. Persons are columns, so each person's Q values are contiguous.
fn dense_block(
    data: &CalibData,
    table: &LogTable,
    base: &[f64],
    dt: &DMatrix<f64>,
    design: &BlockDesign,
) -> Acc {
    let q = table.q;
    let nj = data.n_items();
    let (at, missing_cells) = (&design.at, &design.missing);
    let mut llt = dt * at; // Q × rows
    let mut acc = Acc {
        r: vec![0.0; table.values.len()],
        missing: vec![0.0; nj * q],
        n: vec![0.0; q],
        loglik: 0.0,
    };
    {
        let raw = llt.as_mut_slice();
        for &(r, j) in missing_cells {
            raw[r * q..(r + 1) * q]
                .iter_mut()
                .zip(table.row(j, 0))
                .for_each(|(x, l)| *x -= l);
        }
        for col in raw.chunks_exact_mut(q) {
            col.iter_mut().zip(base).for_each(|(x, b)| *x += b);
            acc.loglik += softmax_in_place(col);
            col.iter().zip(acc.n.iter_mut()).for_each(|(w, n)| *n += w);
        }
        for &(r, j) in missing_cells {
            acc.missing[j * q..(j + 1) * q]
                .iter_mut()
                .zip(&raw[r * q..(r + 1) * q])
                .for_each(|(m, w)| *m += w);
        }
    }
    let w = llt.transpose(); // rows × Q
    let rk = at * &w; // m × Q
    let mut col = 0;
    for j in 0..nj {
        for k in 1..data.categories(j) {
            let s = table.offsets[j] + k * q;
            for qq in 0..q {
                acc.r[s + qq] = rk[(col, qq)];
            }
            col += 1;
        }
    }
    acc
}

/// Run the E-step. `log_prior` holds log π_q with Σ π_q = 1.
pub fn e_step(data: &CalibData, table: &LogTable, log_prior: &[f64], workspace: &Workspace) -> Expected {
    let q = table.q;
    let n_items = data.n_items();
    let blocks = n_blocks(data.n_persons(), data.dense_cells().is_some());
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
    let (cols, first) = design_columns(data);
    let d_matrix = DMatrix::from_fn(q, cols.len(), |qq, c| {
        let (j, k) = cols[c];
        diff.get(table.offsets[j] + k * q + qq).copied().unwrap_or(0.0)
    });
    let accs: Vec<Acc> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            if dense {
                let lo = b * per;
                let hi = ((b + 1) * per).min(data.n_persons());
                return match workspace.blocks.get(b) {
                    Some(Some(design)) => dense_block(data, table, &base, &d_matrix, design),
                    _ => dense_block(
                        data,
                        table,
                        &base,
                        &d_matrix,
                        &build_design(data, cols.len(), &first, lo, hi),
                    ),
                };
            }
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
                acc.loglik += softmax_in_place(&mut ll);
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
