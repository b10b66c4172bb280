//! Simulation of adaptive tests: many examinees with known abilities take the test through the same
//! session code an LMS uses, in parallel, with results that do not depend on the number of threads
//! (each examinee has its own seed, derived from the run's seed and its index by SplitMix64).
//!
//! Responses are drawn as catR does, X = 1{P(θ) ≥ U} with U ~ U(0, 1) for dichotomous items (the
//! category of U in the cumulative probabilities for polytomous ones), or taken from pre-drawn
//! responses so that two engines can be compared answer for answer.

use crate::irt::ResponseFunction;
use crate::session::{CatEngine, Next, SessionError, SessionResult, StopReason};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// SplitMix64: decorrelated per-examinee seeds from one run seed.
pub fn derive_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed
        ^ index
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The category drawn by a uniform `u` from category probabilities, catR's convention generalised:
/// X ≥ k when u ≤ P(X ≥ k), so a dichotomous answer is 1{P(θ) ≥ U}.
#[inline]
pub fn draw_category(probs: &[f64], u: f64) -> usize {
    let mut cum = 0.0;
    for k in (1..probs.len()).rev() {
        cum += probs[k];
        if u <= cum {
            return k;
        }
    }
    0
}

/// Pre-drawn answers: row = examinee, column = bank position, category or `None`.
pub trait Predrawn: Sync {
    /// The pre-drawn category of examinee `i` on bank item `j`, if any.
    fn category(&self, examinee: usize, item: usize) -> Option<u8>;
}

/// No pre-drawn answers: everything is drawn.
pub struct DrawAll;

impl Predrawn for DrawAll {
    fn category(&self, _: usize, _: usize) -> Option<u8> {
        None
    }
}

/// One simulated examinee.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatedTest {
    /// 1-based examinee number.
    pub examinee: usize,
    /// True ability.
    pub true_theta: f64,
    /// The session's result.
    pub result: SessionResult,
    /// Items set aside by Sympson–Hetter exposure control.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<String>,
}

/// Simulate examinee `index` with true ability `theta`.
pub fn simulate_one(
    engine: &CatEngine,
    index: usize,
    theta: f64,
    seed: u64,
    predrawn: &dyn Predrawn,
) -> Result<SimulatedTest, SessionError> {
    let examinee_seed = derive_seed(seed, index as u64);
    let mut session = engine.start(examinee_seed);
    let mut answers_rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(examinee_seed, u64::MAX));
    let mut probs = Vec::new();
    loop {
        let id = match engine.next(&mut session)? {
            Next::Finished(_) => break,
            Next::Item(id) => id,
        };
        let j = session
            .pending_position()
            .or_else(|| engine.bank().position(&id))
            .unwrap_or_else(|| unreachable!("the engine offers bank items only"));
        let item = &engine.bank().items()[j];
        let u: f64 = answers_rng.random();
        let category = match predrawn.category(index, j) {
            Some(c) => c as usize,
            None => {
                let m = &engine.models()[j];
                probs.resize(m.n_categories(), 0.0);
                m.category_probabilities(theta, &mut probs);
                draw_category(&probs, u)
            }
        };
        let code = item.response_code(category);
        engine.record(&mut session, &id, code)?;
    }
    Ok(SimulatedTest {
        examinee: index + 1,
        true_theta: theta,
        result: engine.result(&session),
        set_aside: session.set_aside().to_vec(),
    })
}

/// Simulate every examinee in parallel; results in examinee order, identical for any thread count.
pub fn simulate(
    engine: &CatEngine,
    thetas: &[f64],
    seed: u64,
    predrawn: &dyn Predrawn,
) -> Result<Vec<SimulatedTest>, SessionError> {
    #[cfg(feature = "parallel")]
    use rayon::prelude::*;
    #[cfg(feature = "parallel")]
    let examinees = thetas.par_iter();
    #[cfg(not(feature = "parallel"))]
    let examinees = thetas.iter();
    examinees
        .enumerate()
        .map(|(i, &t)| simulate_one(engine, i, t, seed, predrawn))
        .collect()
}

/// Distribution of test lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthDistribution {
    /// Shortest test.
    pub min: usize,
    /// Median length.
    pub median: usize,
    /// 90th percentile.
    pub p90: usize,
    /// Longest test.
    pub max: usize,
    /// Number of tests of each length.
    pub counts: BTreeMap<usize, usize>,
}

/// Item exposure over a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureSummary {
    /// Largest share of examinees who saw one item.
    pub max_rate: f64,
    /// Share of the bank's active items never administered.
    pub never_used: f64,
    /// Expected share of items two examinees have in common (Chen, Ankenmann & Spray 2003:
    /// T = J·S²_r / L̄ + L̄ / J).
    pub mean_overlap: f64,
    /// Administration count per item id (only items used at least once; not serialised).
    #[serde(skip)]
    pub counts: BTreeMap<String, usize>,
}

/// Summary of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulationSummary {
    /// Number of examinees.
    pub examinees: usize,
    /// Mean number of scored items.
    pub mean_length: f64,
    /// Mean of θ̂ - θ.
    pub bias: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean SE.
    pub mean_se: f64,
    /// Largest exposure rate (also in `exposure`).
    pub max_exposure: f64,
    /// Lengths.
    pub length: LengthDistribution,
    /// Exposure.
    pub exposure: ExposureSummary,
    /// Tests per stop reason.
    pub stop_reasons: BTreeMap<String, usize>,
    /// Share of examinees whose estimated band equals their true band, given cut scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification_accuracy: Option<f64>,
}

/// Summarise simulated tests; `cuts` (strictly increasing) enables classification accuracy.
pub fn summarise(engine: &CatEngine, tests: &[SimulatedTest], cuts: Option<&[f64]>) -> SimulationSummary {
    let n = tests.len().max(1) as f64;
    let mut lengths: Vec<usize> = tests.iter().map(|t| t.result.length).collect();
    lengths.sort_unstable();
    let quantile = |p: f64| {
        lengths
            .get(((lengths.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let mut counts_by_len = BTreeMap::new();
    for &l in &lengths {
        *counts_by_len.entry(l).or_insert(0) += 1;
    }
    let mean_length = lengths.iter().sum::<usize>() as f64 / n;
    let errors: Vec<f64> = tests.iter().map(|t| t.result.theta - t.true_theta).collect();
    let bias = errors.iter().sum::<f64>() / n;
    let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
    let mean_se = tests.iter().map(|t| t.result.se).sum::<f64>() / n;
    // Counted by id without a copy of it per administration; one copy per item used.
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for t in tests {
        for id in &t.result.items {
            *by_id.entry(id.as_str()).or_insert(0) += 1;
        }
    }
    let counts: BTreeMap<String, usize> = by_id.into_iter().map(|(id, c)| (id.to_string(), c)).collect();
    let active: Vec<&str> = engine
        .bank()
        .items()
        .iter()
        .filter(|i| i.status == etalon_items::Status::Active)
        .map(|i| i.id.as_str())
        .collect();
    let rates: Vec<f64> = active
        .iter()
        .map(|id| counts.get(*id).copied().unwrap_or(0) as f64 / n)
        .collect();
    let j = rates.len().max(1) as f64;
    let mean_rate = rates.iter().sum::<f64>() / j;
    let var_rate = rates.iter().map(|r| (r - mean_rate).powi(2)).sum::<f64>() / j;
    let max_rate = rates.iter().copied().fold(0.0, f64::max);
    let never_used = rates.iter().filter(|&&r| r == 0.0).count() as f64 / j;
    let mean_overlap = if mean_length > 0.0 {
        j * var_rate / mean_length + mean_length / j
    } else {
        0.0
    };
    let mut stop_reasons = BTreeMap::new();
    for t in tests {
        let key = t.result.reason.map_or("unfinished", StopReason::name);
        *stop_reasons.entry(key.to_string()).or_insert(0) += 1;
    }
    let classification_accuracy = cuts.map(|c| {
        let band = |x: f64| c.partition_point(|&cut| cut <= x);
        tests
            .iter()
            .filter(|t| band(t.result.theta) == band(t.true_theta))
            .count() as f64
            / n
    });
    SimulationSummary {
        examinees: tests.len(),
        mean_length,
        bias,
        rmse,
        mean_se,
        max_exposure: max_rate,
        length: LengthDistribution {
            min: lengths.first().copied().unwrap_or(0),
            median: quantile(0.5),
            p90: quantile(0.9),
            max: lengths.last().copied().unwrap_or(0),
            counts: counts_by_len,
        },
        exposure: ExposureSummary {
            max_rate,
            never_used,
            mean_overlap,
            counts,
        },
        stop_reasons,
        classification_accuracy,
    }
}

/// Sympson–Hetter exposure parameters by iterative simulation (Sympson & Hetter 1985): start from
/// k_j = 1, simulate `examinees` abilities drawn from N(0, 1), and set k_j = r / P(S_j) for items
/// selected more often than the target rate r (else 1), `iterations` times. The engine must use
/// `SympsonHetter` exposure control. Returns the parameters (bank order) and the maximum
/// administration rate of the last round.
pub fn calibrate_sympson_hetter(
    engine: &CatEngine,
    target: f64,
    examinees: usize,
    iterations: usize,
    seed: u64,
) -> Result<(Vec<f64>, f64), SessionError> {
    use rand_distr::{Distribution, StandardNormal};
    let mut engine = engine.clone();
    let n_items = engine.models().len();
    let mut k = vec![1.0; n_items];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let thetas: Vec<f64> = (0..examinees).map(|_| StandardNormal.sample(&mut rng)).collect();
    let mut max_rate = 0.0;
    for round in 0..iterations {
        engine.set_exposure_parameters(&k);
        let selected = selection_counts(&engine, &thetas, derive_seed(seed, round as u64))?;
        let n = examinees.max(1) as f64;
        max_rate = 0.0;
        for j in 0..n_items {
            let ps = selected[j].0 as f64 / n;
            let pa = selected[j].1 as f64 / n;
            max_rate = f64::max(max_rate, pa);
            k[j] = if ps > target { (target / ps).min(1.0) } else { 1.0 };
        }
    }
    Ok((k, max_rate))
}

/// (times selected, times administered) per item over a simulation.
fn selection_counts(
    engine: &CatEngine,
    thetas: &[f64],
    seed: u64,
) -> Result<Vec<(usize, usize)>, SessionError> {
    let mut counts = vec![(0usize, 0usize); engine.models().len()];
    for test in simulate(engine, thetas, seed, &DrawAll)? {
        for id in &test.result.items {
            if let Some(j) = engine.bank().position(id) {
                counts[j].0 += 1;
                counts[j].1 += 1;
            }
        }
        for id in &test.set_aside {
            if let Some(j) = engine.bank().position(id) {
                counts[j].0 += 1;
            }
        }
    }
    Ok(counts)
}

/// Pre-drawn categories in a dense examinee × bank-item matrix (`u8::MAX` = not pre-drawn).
#[derive(Debug, Clone, PartialEq)]
pub struct PredrawnMatrix {
    n_items: usize,
    cells: Vec<u8>,
}

/// Pre-drawn cells that are not examinees × items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pre-drawn responses: {cells} cells are not a whole number of rows of {n_items} items")]
pub struct PredrawnShapeError {
    /// Items per row.
    pub n_items: usize,
    /// Cells given.
    pub cells: usize,
}

impl PredrawnMatrix {
    /// `cells` is row-major, `n_items` (> 0) bank items per examinee.
    pub fn try_new(n_items: usize, cells: Vec<u8>) -> Result<Self, PredrawnShapeError> {
        if n_items == 0 || !cells.len().is_multiple_of(n_items) {
            return Err(PredrawnShapeError {
                n_items,
                cells: cells.len(),
            });
        }
        Ok(PredrawnMatrix { n_items, cells })
    }

    /// [`PredrawnMatrix::try_new`] for shapes known to be right.
    ///
    /// # Panics
    /// If `cells` is not examinees × `n_items`.
    pub fn new(n_items: usize, cells: Vec<u8>) -> Self {
        Self::try_new(n_items, cells).unwrap_or_else(|e| panic!("{e}"))
    }
    /// Number of examinee rows.
    pub fn examinees(&self) -> usize {
        self.cells.len() / self.n_items
    }
}

impl Predrawn for PredrawnMatrix {
    fn category(&self, examinee: usize, item: usize) -> Option<u8> {
        self.cells
            .get(examinee * self.n_items + item)
            .copied()
            .filter(|&c| c != u8::MAX)
    }
}

/// Draw responses of persons with abilities `thetas` to the items `models` (categories, row-major
/// persons × items, [`etalon_items::MISSING`] where not administered). With `answers_per_person`,
/// each person answers that many items chosen uniformly without replacement (the shape of adaptive
/// logs); otherwise every item. Each person has its own seed derived from `seed`, so the result does
/// not depend on the thread count.
pub fn draw_responses(
    models: &[etalon_items::ItemModel],
    thetas: &[f64],
    seed: u64,
    answers_per_person: Option<usize>,
) -> Vec<u8> {
    #[cfg(feature = "parallel")]
    use rayon::prelude::*;
    let nj = models.len();
    let mut cells = vec![etalon_items::MISSING; thetas.len() * nj];
    #[cfg(feature = "parallel")]
    let rows = cells.par_chunks_mut(nj.max(1)).zip(thetas.par_iter());
    #[cfg(not(feature = "parallel"))]
    let rows = cells.chunks_mut(nj.max(1)).zip(thetas.iter());
    rows.enumerate().for_each(|(i, (row, &theta))| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(seed, i as u64));
        let chosen: Vec<usize> = match answers_per_person {
            Some(k) if k < nj => {
                // Partial Fisher–Yates on an index vector.
                let mut idx: Vec<usize> = (0..nj).collect();
                for t in 0..k {
                    let s = rng.random_range(t..nj);
                    idx.swap(t, s);
                }
                idx.truncate(k);
                idx
            }
            _ => (0..nj).collect(),
        };
        let mut probs = Vec::new();
        for j in chosen {
            let m = &models[j];
            probs.resize(m.n_categories(), 0.0);
            m.category_probabilities(theta, &mut probs);
            let u: f64 = rng.random();
            let mut cum = 0.0;
            let mut cat = probs.len() - 1;
            for (k, p) in probs.iter().enumerate() {
                cum += p;
                if u < cum {
                    cat = k;
                    break;
                }
            }
            row[j] = cat as u8;
        }
    });
    cells
}
