//! Multidimensional calibration: between-item MIRT with correlated dimensions, by EM with a
//! higher-order latent structure and dimension reduction.
//!
//! Every item measures one dimension k (its competence) with its own unidimensional model on that
//! dimension's scale. The dimensions are standard normal and correlated through one general factor
//! (the second-order model of Rijmen 2010; Gibbons & Hedeker 1992 for the reduction):
//!
//! θ_k = λ_k g + ψ_k s_k,  g, s_1 … s_D iid N(0, 1),  ψ_k = √(1 − λ_k²),  so corr(θ_k, θ_l) = λ_k λ_l.
//!
//! Given g the dimensions are independent, so a person's marginal likelihood needs only
//! two-dimensional integrals, whatever D:
//!
//! L = ∫ φ(g) Π_k [ ∫ φ(s) Π_{j∈k} P_j(x_j | λ_k g + ψ_k s) ds ] dg,
//!
//! computed on a Gauss–Hermite product grid (G nodes for g, S for s): D·G·S evaluations per person
//! instead of the Q^D of a tensor grid, which is what makes 16 competences and 10⁶ persons tractable.
//! With three dimensions the higher-order model *is* the correlated-factors model (three loadings for
//! three correlations: λ_1² = r_12 r_13 / r_23 …), mirt's `COV = F1*F2*F3`; with two, the loadings are
//! tied (λ_1 = λ_2 = √r_12, r_12 ≥ 0). With more, it constrains the correlations to one factor
//! (r_kl = λ_k λ_l), the structure digital competences show (a general digital literacy behind them).
//!
//! EM (Bock & Aitkin 1981; Cai 2010 for the structural step): the complete data are (g, θ_1 … θ_D).
//! The E-step gives each person's posterior over the nodes (g_i, θ_kim = λ_k g_i + ψ_k s_m) of every
//! dimension, and the expected counts r_jc(i, m) of every item; each item is then maximised as in
//! the unidimensional calibration on its dimension's G·S nodes ([`crate::em::m_step_item`]); each
//! λ_k maximises Σ_im R_k(i, m) log N(θ_kim; λ g_i, 1 − λ²), with R_k the posterior mass of the nodes
//! summed over persons. SQUAREM accelerates it ([`crate::em::squarem`]); convergence as mirt's `TOL`.
//! Persons with the same answers on a dimension share that dimension's work ([`Patterns`]); sums
//! are taken in a fixed order: results do not depend on the number of threads.

use crate::data::CalibData;
use crate::em::{self, EmPoint, Observer, m_step_item};
use crate::params::ItemState;
use crate::warning::Warning;
use crate::{Calibration, CalibrationError, CalibrationSpec, Start, calibrated_item, start};
use etalon_items::quadrature::gauss_hermite;
use etalon_items::{Bank, Framework, Provenance, Responses, Structure};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Most nodes per axis ([`calibrate_multidimensional`] refuses more).
const MAX_NODES: usize = 201;

/// Largest |λ_k|: correlations up to 0.98, ψ_k ≥ 0.14.
const MAX_LOADING: f64 = 0.99;

/// Quadrature of a multidimensional calibration: Gauss–Hermite nodes for the general factor and for
/// each dimension's specific part.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiQuadrature {
    /// Nodes for g.
    pub general: usize,
    /// Nodes for each s_k.
    pub specific: usize,
}

impl Default for MultiQuadrature {
    fn default() -> Self {
        MultiQuadrature {
            general: 21,
            specific: 21,
        }
    }
}

/// The outcome of a multidimensional calibration.
#[derive(Debug, Clone)]
pub struct MultiCalibration {
    /// Items (slopes are loadings on their dimension), the bank carrying the [`Structure`], and the
    /// fit statistics as a unidimensional calibration reports them.
    pub calibration: Calibration,
    /// Dimension names, in order of first appearance in the data.
    pub dimensions: Vec<String>,
    /// Latent correlations (D × D).
    pub correlations: Vec<Vec<f64>>,
    /// Loadings λ_k of the dimensions on the general factor.
    pub loadings: Vec<f64>,
    /// Standard errors of the loadings (with `standard_errors` in the spec; the items' are in the bank).
    pub loading_se: Option<Vec<f64>>,
    /// Standard errors of the correlations r_kl = λ_k λ_l, by the delta method (0 on the diagonal).
    pub correlation_se: Option<Vec<Vec<f64>>>,
}

/// A point of the EM: items, the loadings, and the fixed quadrature.
#[derive(Debug, Clone)]
struct HigherOrder {
    items: Vec<ItemState>,
    /// Dimension of each item.
    dim: Vec<usize>,
    /// λ_k.
    loadings: Vec<f64>,
    /// Two dimensions: one loading for both.
    tied: bool,
    priors: em::Priors,
    g: Vec<f64>,
    g_weights: Vec<f64>,
    s: Vec<f64>,
    s_weights: Vec<f64>,
}

impl HigherOrder {
    fn n_dims(&self) -> usize {
        self.loadings.len()
    }
    fn n_nodes(&self) -> usize {
        self.g.len() * self.s.len()
    }

    /// θ of each node (i, m) of dimension `k`: λ_k g_i + ψ_k s_m, node index i·S + m.
    fn nodes(&self, k: usize) -> Vec<f64> {
        self.nodes_at(self.loadings[k])
    }

    /// The nodes λ g_i + √(1 − λ²) s_m of a dimension with loading λ.
    fn nodes_at(&self, l: f64) -> Vec<f64> {
        let psi = (1.0 - l * l).sqrt();
        self.g
            .iter()
            .flat_map(|&g| self.s.iter().map(move |&s| l * g + psi * s))
            .collect()
    }

    /// P_jc at the nodes of each item's dimension, category-major per item, with each item's offset.
    fn table(&self) -> (Vec<f64>, Vec<usize>) {
        let nodes: Vec<Vec<f64>> = (0..self.n_dims()).map(|k| self.nodes(k)).collect();
        let rows: Vec<Vec<f64>> = self
            .items
            .par_iter()
            .zip(&self.dim)
            .map(|(it, &k)| {
                it.log_probabilities(&nodes[k])
                    .into_iter()
                    .map(f64::exp)
                    .collect()
            })
            .collect();
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        let mut at = 0;
        for r in &rows {
            offsets.push(at);
            at += r.len();
        }
        offsets.push(at);
        (rows.concat(), offsets)
    }

    fn n_parameters(&self) -> usize {
        crate::params::n_free_items(&self.items) + if self.tied { 1 } else { self.n_dims() }
    }
}

impl EmPoint for HigherOrder {
    fn flatten(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .items
            .iter()
            .filter(|i| !i.fixed)
            .flat_map(ItemState::free)
            .collect();
        if self.tied {
            v.push(self.loadings[0]);
        } else {
            v.extend(&self.loadings);
        }
        v
    }
    fn unflatten(&mut self, v: &[f64]) {
        let mut at = 0;
        for it in self.items.iter_mut().filter(|i| !i.fixed) {
            let n = it.n_free();
            it.set_free(&v[at..at + n]);
            at += n;
        }
        if self.tied {
            let l = v[at];
            self.loadings.iter_mut().for_each(|x| *x = l);
        } else {
            self.loadings.copy_from_slice(&v[at..]);
        }
    }
    fn admissible(&self) -> bool {
        self.items.iter().all(ItemState::admissible)
            && self
                .loadings
                .iter()
                .all(|l| l.is_finite() && l.abs() <= MAX_LOADING)
            && (!self.tied || self.loadings[0] >= 0.0)
    }
}

/// Sums of one E-step.
struct Expected {
    /// Expected counts r_jc(node), per item at its table offset.
    r: Vec<f64>,
    /// R_k(node): posterior mass of each dimension's nodes, D × G·S.
    mass: Vec<f64>,
    loglik: f64,
}

impl Expected {
    fn zeros(cells: usize, masses: usize) -> Self {
        Expected {
            r: vec![0.0; cells],
            mass: vec![0.0; masses],
            loglik: 0.0,
        }
    }
}

/// The persons' answers grouped, dimension by dimension, into distinct answer patterns.
///
/// A person's likelihood on dimension k depends only on their answers to k's items, so persons who
/// gave the same answers to the same items of k share L_k(i, m) on all G·S nodes. The E-step works
/// out each distinct pattern's G·S likelihood once, and per person only the G values of the general
/// factor's posterior: D·G·S products per *pattern* and D·G per person, where the direct sum costs
/// D·G·S per person. An adaptive log of two answers per competence from a 40-item pool has at most
/// 3,120 patterns per competence however many persons took it; wide data of 8 dichotomous items per
/// dimension, at most 256. Sums are taken in a fixed order (persons of a pattern in increasing
/// order, patterns of a dimension in order of first appearance): results do not depend on threads.
struct Patterns {
    /// (item, category) of every pattern's answers, flat, items in increasing order.
    answers: Vec<(u32, u32)>,
    /// Pattern p's answers are `answers[start[p]..start[p + 1]]`.
    start: Vec<usize>,
    /// Dimension of each pattern.
    dim: Vec<usize>,
    /// Patterns of each dimension, in order of first appearance.
    of_dim: Vec<Vec<u32>>,
    /// Each person's patterns: `of_person[person_start[i]..person_start[i + 1]]`.
    of_person: Vec<u32>,
    person_start: Vec<usize>,
    /// Persons with each pattern, increasing: `persons[persons_start[p]..persons_start[p + 1]]`.
    persons: Vec<u32>,
    persons_start: Vec<usize>,
    /// Whether every person answered some item of the dimension.
    everyone: Vec<bool>,
}

impl Patterns {
    fn new(data: &CalibData, dim: &[usize], n_dims: usize) -> Self {
        let mut index: HashMap<Vec<(u32, u32)>, u32> = HashMap::new();
        let (mut answers, mut start, mut pdim) = (Vec::new(), vec![0], Vec::new());
        let mut of_dim = vec![Vec::new(); n_dims];
        let (mut of_person, mut person_start) = (Vec::new(), vec![0]);
        let mut touched = vec![0usize; n_dims];
        let mut mine: Vec<(usize, u32, u32)> = Vec::new();
        for p in 0..data.n_persons() {
            mine.clear();
            data.for_each_answer(p, |j, c| mine.push((dim[j], j as u32, c as u32)));
            mine.sort_unstable();
            let mut at = 0;
            while at < mine.len() {
                let k = mine[at].0;
                let end = at + mine[at..].iter().take_while(|a| a.0 == k).count();
                let key: Vec<(u32, u32)> = mine[at..end].iter().map(|a| (a.1, a.2)).collect();
                let id = *index.entry(key).or_insert_with_key(|key| {
                    let id = pdim.len() as u32;
                    answers.extend_from_slice(key);
                    start.push(answers.len());
                    pdim.push(k);
                    of_dim[k].push(id);
                    id
                });
                of_person.push(id);
                touched[k] += 1;
                at = end;
            }
            person_start.push(of_person.len());
        }
        // Persons of each pattern, by a counting sort (persons stay in increasing order).
        let mut persons_start = vec![0usize; pdim.len() + 1];
        for &q in &of_person {
            persons_start[q as usize + 1] += 1;
        }
        for q in 0..pdim.len() {
            persons_start[q + 1] += persons_start[q];
        }
        let mut fill = persons_start.clone();
        let mut persons = vec![0u32; of_person.len()];
        for p in 0..data.n_persons() {
            for &q in &of_person[person_start[p]..person_start[p + 1]] {
                persons[fill[q as usize]] = p as u32;
                fill[q as usize] += 1;
            }
        }
        Patterns {
            answers,
            start,
            dim: pdim,
            of_dim,
            of_person,
            person_start,
            persons,
            persons_start,
            everyone: touched.iter().map(|&t| t == data.n_persons()).collect(),
        }
    }

    fn len(&self) -> usize {
        self.dim.len()
    }

    fn answers(&self, q: usize) -> &[(u32, u32)] {
        &self.answers[self.start[q]..self.start[q + 1]]
    }

    /// Pattern q's likelihood at its dimension's G·S nodes, divided by its largest value, into `l`;
    /// returns the log of that value. Long patterns that underflow are redone in logs.
    fn likelihood(&self, q: usize, table: &[f64], offsets: &[usize], gs: usize, l: &mut [f64]) -> f64 {
        let row = |j: u32, c: u32| {
            let s = offsets[j as usize] + c as usize * gs;
            &table[s..s + gs]
        };
        l.iter_mut().for_each(|x| *x = 1.0);
        for &(j, c) in self.answers(q) {
            l.iter_mut().zip(row(j, c)).for_each(|(x, p)| *x *= p);
        }
        let max = l.iter().copied().fold(0.0, f64::max);
        if max >= 1e-250 {
            let inv = 1.0 / max;
            l.iter_mut().for_each(|x| *x *= inv);
            return max.ln();
        }
        l.iter_mut().for_each(|x| *x = 0.0);
        for &(j, c) in self.answers(q) {
            l.iter_mut()
                .zip(row(j, c))
                .for_each(|(x, p)| *x += p.max(1e-300).ln());
        }
        let lmax = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        l.iter_mut().for_each(|x| *x = (*x - lmax).exp());
        lmax
    }
}

/// One dimension's node masses and its items' expected counts (item, r_jc at its nodes).
type DimSums = (Vec<f64>, Vec<(usize, Vec<f64>)>);

/// The E-step: expected counts, node masses and the marginal log-likelihood at `m`.
///
/// 1. each pattern q of dimension k: its scaled likelihood L_q(i, m), scale c_q and integral over s,
///    I_q(g_i) = Σ_m w_m L_q(i, m);
/// 2. each person: the general factor's posterior π(g_i) ∝ w_i Π_k I_{q_k}(g_i), and
///    log L = log Σ_i w_i Π_k I_{q_k}(g_i) + Σ_k c_{q_k};
/// 3. each pattern: W_q(i) = Σ_{persons with q} π(g_i) / I_q(g_i), so that the posterior mass of
///    node (i, m) of dimension k summed over those persons is W_q(i) w_m L_q(i, m), added to the
///    node masses R_k and to the expected counts of the pattern's answers; persons who answered
///    nothing on k add π(g_i) w_m to R_k.
fn e_step(data: &CalibData, pat: &Patterns, m: &HigherOrder, table: &[f64], offsets: &[usize]) -> Expected {
    let (d, gs, ng, ns) = (m.n_dims(), m.n_nodes(), m.g.len(), m.s.len());
    // 1. Patterns: log I_q(g_i), 1 / I_q(g_i) (0 where I_q vanishes) and the scale c_q.
    let mut log_integral = vec![0.0; pat.len() * ng];
    let mut scale = vec![0.0; pat.len()];
    log_integral
        .par_chunks_mut(ng)
        .zip(scale.par_iter_mut())
        .enumerate()
        .for_each_init(
            || vec![0.0; gs],
            |l, (q, (li, c))| {
                *c = pat.likelihood(q, table, offsets, gs, l);
                for (i, x) in li.iter_mut().enumerate() {
                    let integral: f64 = l[i * ns..(i + 1) * ns]
                        .iter()
                        .zip(&m.s_weights)
                        .map(|(x, w)| x * w)
                        .sum();
                    *x = integral.ln();
                }
            },
        );
    // 2. Persons: π(g_i) and log L.
    let log_w: Vec<f64> = m.g_weights.iter().map(|w| w.ln()).collect();
    let mut post = vec![0.0; data.n_persons() * ng];
    let mut loglik = vec![0.0; data.n_persons()];
    post.par_chunks_mut(ng)
        .zip(loglik.par_iter_mut())
        .enumerate()
        .for_each(|(p, (pi, ll))| {
            pi.copy_from_slice(&log_w);
            let mine = &pat.of_person[pat.person_start[p]..pat.person_start[p + 1]];
            for &q in mine {
                let li = &log_integral[q as usize * ng..(q as usize + 1) * ng];
                pi.iter_mut().zip(li).for_each(|(x, y)| *x += y);
            }
            let max = pi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = pi.iter().map(|x| (x - max).exp()).sum();
            let norm = max + total.ln();
            pi.iter_mut().for_each(|x| *x = (*x - norm).exp());
            *ll = norm + mine.iter().map(|&q| scale[q as usize]).sum::<f64>();
        });
    // 3. Patterns: W_q(i), in place of log I_q(g_i) (one P × G array). Divided by I_q rather than
    // multiplied by e^{−log I_q}, which overflows for I_q below ~1e-308; 0 where I_q vanishes.
    let mut weight = log_integral;
    weight.par_chunks_mut(ng).enumerate().for_each(|(q, wq)| {
        let mut sum = [0.0; MAX_NODES];
        let sum = &mut sum[..ng];
        for &p in &pat.persons[pat.persons_start[q]..pat.persons_start[q + 1]] {
            let pi = &post[p as usize * ng..(p as usize + 1) * ng];
            sum.iter_mut().zip(pi).for_each(|(x, y)| *x += y);
        }
        wq.iter_mut().zip(sum.iter()).for_each(|(x, total)| {
            let integral = x.exp();
            *x = if integral > 0.0 { total / integral } else { 0.0 };
        });
    });
    // Persons without an answer on k: Σ π over them (computed only where there are some).
    let absent: Vec<Vec<f64>> = (0..d)
        .into_par_iter()
        .map(|k| {
            let mut u = vec![0.0; ng];
            if !pat.everyone[k] {
                for p in 0..data.n_persons() {
                    let mine = &pat.of_person[pat.person_start[p]..pat.person_start[p + 1]];
                    if !mine.iter().any(|&q| pat.dim[q as usize] == k) {
                        u.iter_mut()
                            .zip(&post[p * ng..(p + 1) * ng])
                            .for_each(|(x, y)| *x += y);
                    }
                }
            }
            u
        })
        .collect();
    // Node masses and expected counts, dimension by dimension (each dimension's items are its own).
    let per_dim: Vec<DimSums> = (0..d)
        .into_par_iter()
        .map(|k| {
            let mut mass = vec![0.0; gs];
            for i in 0..ng {
                for (a, w) in mass[i * ns..(i + 1) * ns].iter_mut().zip(&m.s_weights) {
                    *a = absent[k][i] * w;
                }
            }
            let mut counts: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            let mut l = vec![0.0; gs];
            for &q in &pat.of_dim[k] {
                let q = q as usize;
                pat.likelihood(q, table, offsets, gs, &mut l);
                let wq = &weight[q * ng..(q + 1) * ng];
                for i in 0..ng {
                    for (x, w) in l[i * ns..(i + 1) * ns].iter_mut().zip(&m.s_weights) {
                        *x *= wq[i] * w;
                    }
                }
                mass.iter_mut().zip(&l).for_each(|(a, b)| *a += b);
                for &(j, c) in pat.answers(q) {
                    let (j, c) = (j as usize, c as usize);
                    let r = counts
                        .entry(j)
                        .or_insert_with(|| vec![0.0; offsets[j + 1] - offsets[j]]);
                    r[c * gs..(c + 1) * gs]
                        .iter_mut()
                        .zip(&l)
                        .for_each(|(a, b)| *a += b);
                }
            }
            (mass, counts.into_iter().collect())
        })
        .collect();
    let mut out = Expected::zeros(table.len(), d * gs);
    for (k, (mass, counts)) in per_dim.into_iter().enumerate() {
        out.mass[k * gs..(k + 1) * gs].copy_from_slice(&mass);
        for (j, r) in counts {
            out.r[offsets[j]..offsets[j + 1]].copy_from_slice(&r);
        }
    }
    out.loglik = loglik.iter().sum();
    out
}

/// The structural M-step, by parameter expansion (PX-EM, Liu, Rubin & Wu 1998): in the expanded
/// model θ_k = β_k g + e_k with var g = v_g and var e_k = σ_k² free, the complete-data maximum is the
/// regression of θ_k on g over the posterior mass of the nodes: v_g = Σ R g² / n, β_k = Σ R g θ / Σ R g²,
/// σ_k² = Σ R θ² / n − β_k² v_g. Reduced to unit variances, λ_k = β_k √v_g / √v_k with
/// v_k = β_k² v_g + σ_k², and every slope on dimension k is multiplied by √v_k (a θ = a √v_k θ/√v_k).
/// The expansion moves the scale and the loadings together, where plain EM creeps (the general factor
/// is weakly determined by a person's answers). Returns each dimension's (λ_k, √v_k).
fn structural_step(m: &HigherOrder, ex: &Expected) -> Vec<(f64, f64)> {
    let gs = m.n_nodes();
    let ns = m.s.len();
    let mut out: Vec<(f64, f64)> = (0..m.n_dims())
        .map(|k| {
            let nodes = m.nodes(k);
            let (mut n, mut sgg, mut sgt, mut stt) = (0.0, 0.0, 0.0, 0.0);
            for (idx, (&r, &t)) in ex.mass[k * gs..(k + 1) * gs].iter().zip(&nodes).enumerate() {
                let g = m.g[idx / ns];
                n += r;
                sgg += r * g * g;
                sgt += r * g * t;
                stt += r * t * t;
            }
            let vg = sgg / n;
            let beta = sgt / sgg;
            let resid = (stt / n - beta * beta * vg).max(1e-6);
            let vk = beta * beta * vg + resid;
            let lambda = (beta * vg.sqrt() / vk.sqrt()).clamp(-MAX_LOADING, MAX_LOADING);
            (lambda, vk.sqrt())
        })
        .collect();
    if m.tied {
        // Two dimensions: r = λ_1 λ_2 of the expanded fit, one loading √r for both.
        let l = (out[0].0 * out[1].0).max(0.0).sqrt().min(MAX_LOADING);
        out.iter_mut().for_each(|x| x.0 = l);
    }
    out
}

/// One EM cycle: the next point and the log-likelihood at `m`.
fn em_step(data: &CalibData, pat: &Patterns, m: &HigherOrder) -> (HigherOrder, f64) {
    let (table, offsets) = m.table();
    let ex = e_step(data, pat, m, &table, &offsets);
    let gs = m.n_nodes();
    let nodes: Vec<Vec<f64>> = (0..m.n_dims()).map(|k| m.nodes(k)).collect();
    let mut next = m.clone();
    next.items = m
        .items
        .par_iter()
        .enumerate()
        .map(|(j, st)| {
            if st.fixed {
                return st.clone();
            }
            let r = &ex.r[offsets[j]..offsets[j + 1]];
            debug_assert_eq!(r.len(), st.categories() * gs);
            m_step_item(st, r, &nodes[m.dim[j]], &m.priors)
        })
        .collect();
    let structural = structural_step(m, &ex);
    for (st, &k) in next.items.iter_mut().zip(&m.dim) {
        if !st.fixed {
            let (lo, hi) = st.slope_range();
            st.a = (st.a * structural[k].1).clamp(lo, hi);
        }
    }
    for (l, s) in next.loadings.iter_mut().zip(&structural) {
        *l = s.0;
    }
    (next, ex.loglik)
}

/// ∇ log L at `m`, in [`EmPoint::flatten`] order. By Fisher's identity it is the gradient of the
/// expected complete-data log-likelihood at m's own posterior: for an item, the unidimensional
/// gradient on its dimension's nodes with the expected counts r_jc; for a loading λ_k — which moves the
/// nodes θ = λ_k g + √(1 − λ_k²) s, the quadrature over (g, s) staying fixed — the derivative of
/// Σ_{j∈k} Σ_nodes r_jc log P_jc(θ(λ_k)), by a central difference (step 1e-6).
fn score(data: &CalibData, pat: &Patterns, m: &HigherOrder) -> Vec<f64> {
    let (table, offsets) = m.table();
    let ex = e_step(data, pat, m, &table, &offsets);
    let nodes: Vec<Vec<f64>> = (0..m.n_dims()).map(|k| m.nodes(k)).collect();
    let counts = |j: usize| &ex.r[offsets[j]..offsets[j + 1]];
    let mut out = Vec::new();
    for (j, st) in m.items.iter().enumerate().filter(|(_, st)| !st.fixed) {
        let mut g = vec![0.0; st.n_free()];
        em::item_objective(st, counts(j), &nodes[m.dim[j]], &m.priors, Some(&mut g), None);
        out.extend(g);
    }
    let expected = |k: usize, l: f64| -> f64 {
        let at = m.nodes_at(l);
        (0..m.items.len())
            .filter(|&j| m.dim[j] == k)
            .map(|j| em::item_objective(&m.items[j], counts(j), &at, &m.priors, None, None))
            .sum()
    };
    let h = 1e-6;
    let by_loading: Vec<f64> = (0..m.n_dims())
        .map(|k| {
            let l = m.loadings[k];
            (expected(k, l + h) - expected(k, l - h)) / (2.0 * h)
        })
        .collect();
    if m.tied {
        out.push(by_loading.iter().sum());
    } else {
        out.extend(by_loading);
    }
    out
}

/// Gauss–Hermite nodes and weights for a standard normal (∫ f(x) φ(x) dx ≈ Σ w_i f(x_i)).
fn normal_nodes(n: usize) -> (Vec<f64>, Vec<f64>) {
    let (x, w) = gauss_hermite(n);
    let sqrt_pi = std::f64::consts::PI.sqrt();
    (
        x.iter().map(|x| x * std::f64::consts::SQRT_2).collect(),
        w.iter().map(|w| w / sqrt_pi).collect(),
    )
}

/// Calibrate a between-item multidimensional model: `dimensions` maps every item of the data to its
/// dimension (items of the map absent from the data are ignored). Dimensions are ordered by first
/// appearance in the data; at least two are needed (one dimension is [`crate::calibrate`]).
pub fn calibrate_multidimensional(
    responses: &Responses,
    spec: &CalibrationSpec,
    dimensions: &BTreeMap<String, String>,
    quadrature: MultiQuadrature,
    mut observer: impl Observer,
) -> Result<MultiCalibration, CalibrationError> {
    if !(2..=MAX_NODES).contains(&quadrature.general) || !(2..=MAX_NODES).contains(&quadrature.specific) {
        return Err(CalibrationError::Dimensions(format!(
            "quadrature points per axis must be in 2..={MAX_NODES} (got {} and {})",
            quadrature.general, quadrature.specific
        )));
    }
    let Start {
        data,
        items,
        mut warnings,
    } = start(responses, spec, None)?;
    if let Some(j) = items.iter().position(|i| {
        matches!(
            i.kind,
            etalon_items::ModelKind::Rasch | etalon_items::ModelKind::OnePl
        )
    }) {
        return Err(CalibrationError::Dimensions(format!(
            "item `{}`: a multidimensional calibration estimates each item's slope on its dimension \
             (2pl, 3pl, 4pl, graded, gpcm), not {}",
            data.item_ids()[j],
            items[j].kind
        )));
    }
    let mut names: Vec<String> = Vec::new();
    let mut dim = Vec::with_capacity(data.n_items());
    let mut missing = Vec::new();
    for id in data.item_ids() {
        match dimensions.get(id) {
            Some(d) if !d.trim().is_empty() => {
                let k = names.iter().position(|n| n == d).unwrap_or_else(|| {
                    names.push(d.clone());
                    names.len() - 1
                });
                dim.push(k);
            }
            _ => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(CalibrationError::Dimensions(format!(
            "items without a dimension: {}",
            missing.join(", ")
        )));
    }
    if names.len() < 2 {
        return Err(CalibrationError::Dimensions(format!(
            "a multidimensional calibration needs at least two dimensions (the data's items measure {})",
            names.len()
        )));
    }
    let (g, g_weights) = normal_nodes(quadrature.general);
    let (s, s_weights) = normal_nodes(quadrature.specific);
    let model = HigherOrder {
        items,
        dim,
        loadings: vec![0.7; names.len()],
        tied: names.len() == 2,
        priors: spec.em.priors,
        g,
        g_weights,
        s,
        s_weights,
    };
    // The loadings creep: they change by less than mirt's TOL per cycle long before they reach the
    // maximum (on mirt's 3-dimension reference, TOL 1e-4 stops 0.35 log-likelihood points short), so
    // convergence here asks a 100 times smaller change.
    let em_config = em::EmConfig {
        tol: spec.em.tol / 100.0,
        ..spec.em.clone()
    };
    let patterns = Patterns::new(&data, &model.dim, names.len());
    let run = em::squarem(model, &em_config, &mut observer, |m| em_step(&data, &patterns, m));
    warnings.extend(Warning::of_run(
        run.stopped,
        run.converged,
        run.cycles,
        run.last_change,
        em_config.tol,
    ));
    let model = run.model;
    let (table, offsets) = model.table();
    let loglik = e_step(&data, &patterns, &model, &table, &offsets).loglik;
    // Standard errors: the inverse observed information (central differences of the score, as the
    // unidimensional calibration), items by the delta method, correlations r_kl = λ_k λ_l too.
    let covariance = if spec.standard_errors {
        let cov = crate::se::observed_covariance(&model, |m| score(&data, &patterns, m));
        if cov.is_none() {
            warnings.push(Warning::StandardErrorsUnavailable);
        }
        cov
    } else {
        None
    };
    let item_ses = covariance
        .as_ref()
        .map(|c| crate::se::item_standard_errors(&model.items, c, None));
    let loading_cov = covariance.as_ref().map(|c| {
        let at = crate::params::n_free_items(&model.items);
        let d = model.n_dims();
        // Index of each dimension's loading among the free parameters (one shared when tied).
        let ix = |k: usize| if model.tied { at } else { at + k };
        (0..d)
            .map(|k| (0..d).map(|l| c[(ix(k), ix(l))]).collect::<Vec<f64>>())
            .collect::<Vec<_>>()
    });
    let loading_se = loading_cov.as_ref().map(|v| {
        (0..v.len())
            .map(|k| v[k][k].max(0.0).sqrt())
            .collect::<Vec<f64>>()
    });
    let correlation_se = loading_cov.as_ref().map(|v| {
        let l = &model.loadings;
        (0..l.len())
            .map(|k| {
                (0..l.len())
                    .map(|m| {
                        if k == m {
                            return 0.0;
                        }
                        let var = l[m] * l[m] * v[k][k] + l[k] * l[k] * v[m][m] + 2.0 * l[k] * l[m] * v[k][m];
                        var.max(0.0).sqrt()
                    })
                    .collect()
            })
            .collect()
    });
    let mut bank_items = Vec::with_capacity(data.n_items());
    for (j, st) in model.items.iter().enumerate() {
        let mut item = calibrated_item(&data, j, st, &mut warnings)?;
        item.competence = Some(names[model.dim[j]].clone());
        if let Some(ses) = &item_ses {
            item.standard_errors = ses[j].clone();
        }
        bank_items.push(item);
    }
    let n_parameters = model.n_parameters();
    let provenance = Provenance {
        method: "calibrated".into(),
        description: Some(format!(
            "multidimensional (between-item, {} correlated dimensions through a general factor) marginal \
             maximum likelihood by EM, {}×{} Gauss–Hermite nodes per dimension",
            names.len(),
            quadrature.general,
            quadrature.specific
        )),
        software: Some(format!("etalon-calibration {}", env!("CARGO_PKG_VERSION"))),
        calibration: Some(serde_json::json!({
            "model": spec.model, "log_likelihood": loglik, "cycles": run.cycles,
            "converged": run.converged, "persons": data.n_persons(),
            "general_loadings": model.loadings,
        })),
        ..Provenance::default()
    };
    let structure = Structure::one_factor(names.clone(), &model.loadings).map_err(|p| {
        CalibrationError::Dimensions(format!(
            "the estimated correlations do not form a valid structure: {}",
            etalon_items::Problems(p)
        ))
    })?;
    let correlations = structure.correlations.clone();
    let bank = Bank::new("calibrated", Framework::default(), bank_items, provenance)
        .and_then(|b| b.with_structure(Some(structure)))
        .map_err(|p| CalibrationError::Bank(etalon_items::Problems(p)))?;
    let n = data.n_persons() as f64;
    let calibration = Calibration {
        bank,
        loglik,
        aic: -2.0 * loglik + 2.0 * n_parameters as f64,
        bic: -2.0 * loglik + n_parameters as f64 * n.ln(),
        n_parameters,
        persons: data.n_persons(),
        items: model.items.iter().filter(|i| !i.fixed).count(),
        cycles: run.cycles,
        converged: run.converged,
        last_change: run.last_change,
        latent: em::Latent {
            mean: 0.0,
            variance: 1.0,
        },
        item_fit: Vec::new(),
        warnings,
    };
    Ok(MultiCalibration {
        calibration,
        dimensions: names,
        correlations,
        loadings: model.loadings,
        loading_se,
        correlation_se,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::needless_range_loop)] // the direct sums index nodes as the formulas do
    use super::*;

    fn log_sum_exp(v: impl Iterator<Item = f64>) -> f64 {
        let v: Vec<f64> = v.collect();
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return max;
        }
        max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
    }

    /// The E-step by answer pattern equals the direct sum over persons, computed here in logs node by
    /// node: with a person who skipped a whole dimension, repeated patterns, and a 200-item dimension
    /// of steep items whose patterns underflow (the likelihood's log fallback) and leave I_q(g_i)
    /// vanishing or below 1e-308 on some rows.
    #[test]
    fn the_e_step_by_pattern_is_the_sum_over_persons() {
        let mut csv = String::new();
        let ids: Vec<String> = (1..=3)
            .map(|i| format!("A{i}"))
            .chain((1..=2).map(|i| format!("B{i}")))
            .chain((1..=200).map(|i| format!("C{i}")))
            .collect();
        csv.push_str(&ids.join(","));
        csv.push('\n');
        for p in 0..9usize {
            let row: Vec<String> = (0..ids.len())
                .map(|j| {
                    if p == 4 && (3..5).contains(&j) {
                        String::new() // person 5 skipped dimension B
                    } else if j >= 5 && p < 2 {
                        "1".into() // persons 1 and 2: every C item right (one repeated pattern)
                    } else {
                        if ((p * 7 + j * 3) % 5) < 2 {
                            "1".into()
                        } else {
                            "0".into()
                        }
                    }
                })
                .collect();
            csv.push_str(&row.join(","));
            csv.push('\n');
        }
        let responses =
            etalon_items::read_responses_from(csv.as_bytes(), etalon_items::DataFormat::Wide, "t.csv")
                .unwrap();
        let spec = CalibrationSpec::new(etalon_items::ModelKind::TwoPl);
        let Start {
            data,
            items: start_items,
            ..
        } = start(&responses, &spec, None).unwrap();
        let mut tiny_rows = 0;
        for (slope, loading) in [
            (2.0, 0.9),
            (2.5, 0.9),
            (3.0, 0.95),
            (3.5, 0.95),
            (4.0, 0.9),
            (4.5, 0.95),
        ] {
            let mut items = start_items.clone();
            let dim: Vec<usize> = (0..items.len())
                .map(|j| [0, 0, 0, 1, 1].get(j).copied().unwrap_or(2))
                .collect();
            for (j, st) in items.iter_mut().enumerate() {
                st.a = if dim[j] == 2 { slope } else { 1.2 };
            }
            let (g, g_weights) = normal_nodes(15);
            let (s, s_weights) = normal_nodes(9);
            let m = HigherOrder {
                items,
                dim: dim.clone(),
                loadings: vec![0.6, 0.7, loading],
                tied: false,
                priors: spec.em.priors,
                g,
                g_weights,
                s,
                s_weights,
            };
            let pat = Patterns::new(&data, &m.dim, 3);
            // Rows where I_q(g_i) is positive but below 1e-308 (1 / I_q overflows there).
            {
                let (table, offsets) = m.table();
                let mut l = vec![0.0; m.n_nodes()];
                let ns = m.s.len();
                for q in 0..pat.len() {
                    pat.likelihood(q, &table, &offsets, m.n_nodes(), &mut l);
                    for i in 0..m.g.len() {
                        let integral: f64 = l[i * ns..(i + 1) * ns]
                            .iter()
                            .zip(&m.s_weights)
                            .map(|(x, w)| x * w)
                            .sum();
                        tiny_rows += usize::from(integral > 0.0 && integral < 1e-308);
                    }
                }
            }
            let (table, offsets) = m.table();
            let ex = e_step(&data, &pat, &m, &table, &offsets);
            // Direct: log L_k(i, m) per person and dimension, everything in logs.
            let (ng, ns, gs) = (m.g.len(), m.s.len(), m.n_nodes());
            let log_p: Vec<Vec<f64>> = (0..m.items.len())
                .map(|j| m.items[j].log_probabilities(&m.nodes(dim[j])))
                .collect();
            let mut r = vec![0.0; table.len()];
            let mut mass = vec![0.0; 3 * gs];
            let mut loglik = 0.0;
            for p in 0..data.n_persons() {
                let mut answers = Vec::new();
                data.for_each_answer(p, |j, c| answers.push((j, c)));
                let mut ll = vec![vec![0.0; gs]; 3];
                for &(j, c) in &answers {
                    ll[dim[j]]
                        .iter_mut()
                        .zip(&log_p[j][c * gs..(c + 1) * gs])
                        .for_each(|(x, y)| *x += y);
                }
                let log_i: Vec<Vec<f64>> = (0..3)
                    .map(|k| {
                        (0..ng)
                            .map(|i| log_sum_exp((0..ns).map(|n| m.s_weights[n].ln() + ll[k][i * ns + n])))
                            .collect()
                    })
                    .collect();
                let log_joint: Vec<f64> = (0..ng)
                    .map(|i| m.g_weights[i].ln() + (0..3).map(|k| log_i[k][i]).sum::<f64>())
                    .collect();
                let marginal = log_sum_exp(log_joint.iter().copied());
                loglik += marginal;
                for k in 0..3 {
                    for i in 0..ng {
                        let others: f64 = (0..3).filter(|&l| l != k).map(|l| log_i[l][i]).sum();
                        for n in 0..ns {
                            let at = i * ns + n;
                            let w = (m.g_weights[i].ln() + others + m.s_weights[n].ln() + ll[k][at]
                                - marginal)
                                .exp();
                            mass[k * gs + at] += w;
                            for &(j, c) in answers.iter().filter(|(j, _)| dim[*j] == k) {
                                r[offsets[j] + c * gs + at] += w;
                            }
                        }
                    }
                }
            }
            assert!(
                (ex.loglik - loglik).abs() < 1e-9 * loglik.abs(),
                "{} vs {loglik}",
                ex.loglik
            );
            for (what, ours, direct) in [("r", &ex.r, &r), ("mass", &ex.mass, &mass)] {
                for (i, (a, b)) in ours.iter().zip(direct.iter()).enumerate() {
                    assert!(
                        a.is_finite() && (a - b).abs() <= 1e-9 * b.abs().max(1e-3),
                        "{what}[{i}]: {a} vs {b}"
                    );
                }
            }
        }
        assert!(tiny_rows > 0, "no row exercised a vanishing I_q");
    }

    /// The score used for standard errors is the gradient of the marginal log-likelihood: checked
    /// against central differences of log L itself, away from the maximum (mirt's 3-dimension data).
    #[test]
    fn the_score_is_the_gradient_of_the_log_likelihood() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/toolkit");
        let responses =
            etalon_items::read_responses(root.join("md_train.csv"), etalon_items::DataFormat::Wide).unwrap();
        let spec = CalibrationSpec::new(etalon_items::ModelKind::TwoPl);
        let Start { data, items, .. } = start(&responses, &spec, None).unwrap();
        // Three dimensions, and two (one loading for both: the tied case).
        for (per, loadings, tied) in [(8, vec![0.5, 0.6, 0.7], false), (12, vec![0.6, 0.6], true)] {
            let dim: Vec<usize> = (0..items.len()).map(|j| j / per).collect();
            let (g, g_weights) = normal_nodes(11);
            let (s, s_weights) = normal_nodes(11);
            let mut m = HigherOrder {
                items: items.clone(),
                dim,
                loadings: loadings.clone(),
                tied,
                priors: spec.em.priors,
                g,
                g_weights,
                s,
                s_weights,
            };
            // Move the items off their starting values so that no gradient is trivially zero.
            let mut v = m.flatten();
            for (i, x) in v.iter_mut().enumerate() {
                *x += 0.05 * ((i % 7) as f64 - 3.0) / 3.0;
            }
            m.unflatten(&v);
            let pat = Patterns::new(&data, &m.dim, loadings.len());
            let loglik = |m: &HigherOrder| {
                let (t, o) = m.table();
                e_step(&data, &pat, m, &t, &o).loglik
            };
            let analytic = score(&data, &pat, &m);
            assert_eq!(analytic.len(), v.len());
            for i in 0..v.len() {
                let h = 1e-5;
                let (mut up, mut dn) = (m.clone(), m.clone());
                let mut w = v.clone();
                w[i] += h;
                up.unflatten(&w);
                w[i] -= 2.0 * h;
                dn.unflatten(&w);
                let numeric = (loglik(&up) - loglik(&dn)) / (2.0 * h);
                assert!(
                    (analytic[i] - numeric).abs() < 1e-4 * numeric.abs().max(1.0),
                    "parameter {i}: score {} vs numerical {numeric}",
                    analytic[i]
                );
            }
        }
    }
}
