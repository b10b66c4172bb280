//! Multiple-group calibration (Bock & Zimowski 1997): persons in G groups, each group with its own
//! latent distribution N(μ_g, σ²_g), items equal across groups unless freed.
//!
//! The first group is the reference: N(0, 1) sets the scale (its variance is estimated when every
//! item is Rasch). The other groups' means and variances are estimated — mirt's
//! `multipleGroup(invariance = c("free_means", "free_var", …))` — unless fixed at N(0, 1)
//! (`free_latent = false`). An item that is *equal* across groups has one set of parameters fitted
//! to the expected counts of every group pooled, r_jkq = Σ_g r_gjkq; a *freed* item has one set per
//! group, each fitted to its group's counts. Each EM cycle runs the E-step group by group (each on
//! its own prior weights on the common grid), then these M-steps, then the latent moments of each
//! group from its expected counts; the marginal log-likelihood is Σ_g log L_g. SQUAREM accelerates
//! it as it does a single group ([`crate::em::squarem`]).
//!
//! This is what the likelihood-ratio test for DIF ([`crate::dif::likelihood_ratio`]) compares:
//! an item equal across groups against the same item freed.

use crate::data::CalibData;
use crate::em::{self, EmConfig, EmPoint, Latent, Model, Observer};
use crate::estep::{self, Workspace};
use crate::params::ItemState;
use crate::{CalibrationError, CalibrationSpec, Warning};
use etalon_items::{Bank, Framework, ModelKind, Provenance, Responses};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeSet;

/// What to fit across groups.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// Models, EM settings and priors, as a single-group calibration.
    pub calibration: CalibrationSpec,
    /// Items whose parameters are estimated in each group separately (all others are equal
    /// across groups).
    pub free_items: BTreeSet<String>,
    /// Whether the groups after the reference have their own latent mean and variance (else N(0, 1)).
    pub free_latent: bool,
}

impl GroupSpec {
    /// Every item under `model` and equal across groups; the other groups' means and variances
    /// free; mirt's default EM settings.
    pub fn new(model: ModelKind) -> Self {
        GroupSpec {
            calibration: CalibrationSpec::new(model),
            free_items: BTreeSet::new(),
            free_latent: true,
        }
    }
}

/// Why a multiple-group calibration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The group vector does not match the data.
    #[error("{groups} group entries for {persons} persons")]
    GroupCount {
        /// Entries given.
        groups: usize,
        /// Persons in the data.
        persons: usize,
    },
    /// Fewer than two group names, or a group index without a name.
    #[error("a multiple-group calibration needs at least two groups, each with a name (got {0} names)")]
    Names(usize),
    /// A group nobody with an answer belongs to.
    #[error("group `{0}` has no person with an answer")]
    EmptyGroup(String),
    /// A freed item that a group never answered: its parameters in that group are not identified.
    #[error("item `{item}` is freed across groups but nobody in group `{group}` answered it")]
    FreedItemUnanswered {
        /// Item id.
        item: String,
        /// Group name.
        group: String,
    },
    /// A freed item that is not in the data.
    #[error("item `{0}` is freed across groups but is not in the data")]
    UnknownItem(String),
    /// 1PL items share one slope; across groups this is not supported.
    #[error("the 1PL model's shared slope is not supported across groups: use Rasch or 2PL")]
    OnePl,
    /// The calibration itself failed.
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
}

/// One group's part of a multiple-group calibration.
#[derive(Debug, Clone, Serialize)]
pub struct GroupFit {
    /// The group's name.
    pub name: String,
    /// Persons with at least one answer.
    pub persons: usize,
    /// Its latent distribution on the reference group's scale.
    pub latent: Latent,
    /// Its log-likelihood at the final parameters.
    pub loglik: f64,
    /// The items as this group sees them (equal items identical in every group's bank).
    #[serde(skip)]
    pub bank: Bank,
}

/// The outcome of a multiple-group calibration.
#[derive(Debug, Clone, Serialize)]
pub struct GroupCalibration {
    /// The groups, reference first.
    pub groups: Vec<GroupFit>,
    /// Marginal log-likelihood Σ_g log L_g.
    pub loglik: f64,
    /// −2 log L + 2k.
    pub aic: f64,
    /// −2 log L + k ln N.
    pub bic: f64,
    /// Number of estimated parameters k (items equal across groups count once).
    pub n_parameters: usize,
    /// Persons with at least one answer, all groups.
    pub persons: usize,
    /// EM cycles.
    pub cycles: usize,
    /// Whether EM converged.
    pub converged: bool,
    /// Largest parameter change of the last cycle.
    pub last_change: f64,
    /// Items freed across groups.
    pub free_items: Vec<String>,
    /// Degenerate items, non-convergence.
    pub warnings: Vec<Warning>,
}

/// The EM point: one [`Model`] per group on the same grid; equal items identical in every group.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    models: Vec<Model>,
    free_item: Vec<bool>,
}

impl Groups {
    fn items(&self) -> usize {
        self.models[0].items.len()
    }

    /// Number of estimated parameters: equal items once, freed items once per group, latent moments.
    fn n_parameters(&self) -> usize {
        let mut k = 0;
        for j in 0..self.items() {
            let st = &self.models[0].items[j];
            if !st.fixed {
                k += st.n_free() * if self.free_item[j] { self.models.len() } else { 1 };
            }
        }
        k + self
            .models
            .iter()
            .map(|m| usize::from(m.free_mean) + usize::from(m.free_variance))
            .sum::<usize>()
    }

    /// One EM cycle: the E-step of every group, the pooled or per-group item M-steps, the latent
    /// moments. Returns the next point and the log-likelihood at this one.
    fn step(&self, data: &[CalibData], workspaces: &[Workspace]) -> (Groups, f64) {
        let q = self.models[0].theta.len();
        let tables: Vec<_> = self.models.iter().map(Model::table).collect();
        let expected: Vec<_> = self
            .models
            .iter()
            .enumerate()
            .map(|(g, m)| estep::e_step(&data[g], &tables[g], &m.log_prior(), &workspaces[g]))
            .collect();
        let loglik = expected.iter().map(|e| e.loglik).sum();
        let offsets = &tables[0].offsets;
        let counts = |g: usize, j: usize| -> &[f64] {
            let len = self.models[0].items[j].categories() * q;
            &expected[g].r[offsets[j]..offsets[j] + len]
        };
        let theta = &self.models[0].theta;
        let priors = &self.models[0].priors;
        let columns: Vec<Vec<ItemState>> = (0..self.items())
            .into_par_iter()
            .map(|j| {
                let st = &self.models[0].items[j];
                if st.fixed {
                    self.models.iter().map(|m| m.items[j].clone()).collect()
                } else if self.free_item[j] {
                    self.models
                        .iter()
                        .enumerate()
                        .map(|(g, m)| em::m_step_item(&m.items[j], counts(g, j), theta, priors))
                        .collect()
                } else {
                    let mut pooled = counts(0, j).to_vec();
                    for g in 1..self.models.len() {
                        pooled.iter_mut().zip(counts(g, j)).for_each(|(a, b)| *a += b);
                    }
                    vec![em::m_step_item(st, &pooled, theta, priors); self.models.len()]
                }
            })
            .collect();
        let mut next = self.clone();
        for (g, m) in next.models.iter_mut().enumerate() {
            for (j, column) in columns.iter().enumerate() {
                m.items[j] = column[g].clone();
            }
            m.latent = self.models[g].updated_latent(&expected[g].n);
        }
        (next, loglik)
    }

    /// Free parameters of item j (in one group).
    pub(crate) fn n_free_of(&self, j: usize) -> usize {
        self.models[0].items[j].n_free()
    }

    /// Item j's state in group g.
    pub(crate) fn item(&self, g: usize, j: usize) -> &ItemState {
        &self.models[g].items[j]
    }

    fn logliks(&self, data: &[CalibData], workspaces: &[Workspace]) -> Vec<f64> {
        self.models
            .iter()
            .enumerate()
            .map(|(g, m)| estep::e_step(&data[g], &m.table(), &m.log_prior(), &workspaces[g]).loglik)
            .collect()
    }
}

impl EmPoint for Groups {
    fn flatten(&self) -> Vec<f64> {
        let mut v = Vec::new();
        for j in 0..self.items() {
            if self.models[0].items[j].fixed {
                continue;
            }
            let groups = if self.free_item[j] { self.models.len() } else { 1 };
            for m in &self.models[..groups] {
                v.extend(m.items[j].free());
            }
        }
        for m in &self.models {
            if m.free_mean {
                v.push(m.latent.mean);
            }
            if m.free_variance {
                v.push(m.latent.variance);
            }
        }
        v
    }

    fn unflatten(&mut self, v: &[f64]) {
        let mut at = 0;
        for j in 0..self.items() {
            if self.models[0].items[j].fixed {
                continue;
            }
            let n = self.models[0].items[j].n_free();
            if self.free_item[j] {
                for m in &mut self.models {
                    m.items[j].set_free(&v[at..at + n]);
                    at += n;
                }
            } else {
                for m in &mut self.models {
                    m.items[j].set_free(&v[at..at + n]);
                }
                at += n;
            }
        }
        for m in &mut self.models {
            if m.free_mean {
                m.latent.mean = v[at];
                at += 1;
            }
            if m.free_variance {
                m.latent.variance = v[at];
                at += 1;
            }
        }
    }

    fn admissible(&self) -> bool {
        self.models.iter().all(Model::admissible)
    }
}

/// Data prepared for a multiple-group fit: the groups' data on common items and codes, their
/// E-step workspaces, the starting point.
pub(crate) struct Prepared {
    pub(crate) data: Vec<CalibData>,
    pub(crate) workspaces: Vec<Workspace>,
    pub(crate) start: Groups,
    pub(crate) names: Vec<String>,
    pub(crate) warnings: Vec<Warning>,
    /// Persons in a group (with at least one answer).
    pub(crate) persons: usize,
    /// Answers per group and item.
    pub(crate) answered: Vec<Vec<usize>>,
}

/// Split `responses` by `group` (an index into `names` per person, `None` = left out) and build the
/// starting point: items from the pooled proportions, every group N(0, 1).
pub(crate) fn prepare(
    responses: &Responses,
    group: &[Option<usize>],
    names: &[String],
    spec: &GroupSpec,
) -> Result<Prepared, GroupError> {
    if group.len() != responses.n_persons() {
        return Err(GroupError::GroupCount {
            groups: group.len(),
            persons: responses.n_persons(),
        });
    }
    if names.len() < 2 || group.iter().flatten().any(|&g| g >= names.len()) {
        return Err(GroupError::Names(names.len()));
    }
    let em = &spec.calibration.em;
    crate::check_em(em)?;
    let ids = responses.item_ids();
    let kinds: Vec<ModelKind> = ids.iter().map(|id| spec.calibration.model_of(id)).collect();
    if kinds.contains(&ModelKind::OnePl) {
        return Err(GroupError::OnePl);
    }
    if let Some(id) = spec.free_items.iter().find(|id| !ids.contains(id)) {
        return Err(GroupError::UnknownItem(id.clone()));
    }
    // The items' codes are read from the whole file (a code only persons outside every group used
    // leaves an empty category); those persons take no further part.
    let all = CalibData::new(responses, &kinds).map_err(CalibrationError::from)?;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (p, &row) in all.rows().iter().enumerate() {
        if let Some(g) = group[row] {
            members[g].push(p);
        }
    }
    if let Some(g) = members.iter().position(Vec::is_empty) {
        return Err(GroupError::EmptyGroup(names[g].clone()));
    }
    let data: Vec<CalibData> = members.iter().map(|m| all.subset(m)).collect();
    let free_item: Vec<bool> = all
        .item_ids()
        .iter()
        .map(|id| spec.free_items.contains(id))
        .collect();
    // Answers per group and item: an item freed in a group that never answered it is not identified.
    let answered: Vec<Vec<usize>> = data
        .iter()
        .map(|d| d.category_counts().iter().map(|c| c.iter().sum()).collect())
        .collect();
    for (g, counts) in answered.iter().enumerate() {
        for (j, id) in all.item_ids().iter().enumerate() {
            if free_item[j] && counts[j] == 0 {
                return Err(GroupError::FreedItemUnanswered {
                    item: id.clone(),
                    group: names[g].clone(),
                });
            }
        }
    }
    let mut warnings = Vec::new();
    if !all.dropped_items.is_empty() {
        warnings.push(Warning::ItemsWithoutResponses {
            items: all.dropped_items.clone(),
        });
    }
    let mut counts = data[0].category_counts();
    for d in &data[1..] {
        for (a, b) in counts.iter_mut().zip(d.category_counts()) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }
    let items: Vec<ItemState> = all
        .item_ids()
        .iter()
        .enumerate()
        .map(|(j, id)| {
            let total = counts[j].iter().sum::<usize>().max(1) as f64;
            let props: Vec<f64> = counts[j].iter().map(|&c| c as f64 / total).collect();
            ItemState::start(spec.calibration.model_of(id), &props)
        })
        .collect();
    let rasch = items.iter().all(|i| i.kind == ModelKind::Rasch);
    let q = em.quadrature;
    let theta: Vec<f64> = (0..q).map(|i| -6.0 + 12.0 * i as f64 / (q - 1) as f64).collect();
    let models = (0..names.len())
        .map(|g| Model {
            theta: theta.clone(),
            items: items.clone(),
            latent: Latent {
                mean: 0.0,
                variance: 1.0,
            },
            free_variance: if g == 0 { rasch } else { spec.free_latent },
            free_mean: g > 0 && spec.free_latent,
            priors: em.priors,
        })
        .collect();
    let workspaces = data.iter().map(|d| Workspace::new(d, 128 << 20)).collect();
    Ok(Prepared {
        persons: members.iter().map(Vec::len).sum(),
        answered,
        data,
        workspaces,
        start: Groups { models, free_item },
        names: names.to_vec(),
        warnings,
    })
}

impl Prepared {
    /// The same start with the items of `free` freed (the others equal).
    pub(crate) fn with_free(&self, from: &Groups, free: impl Fn(usize) -> bool) -> Groups {
        let mut g = from.clone();
        for j in 0..g.free_item.len() {
            g.free_item[j] = free(j);
        }
        // An item made equal starts, in every group, from the reference group's parameters.
        for j in (0..g.items()).filter(|&j| !g.free_item[j]) {
            let st = g.models[0].items[j].clone();
            for m in &mut g.models[1..] {
                m.items[j] = st.clone();
            }
        }
        g
    }

    /// Run EM from `start`: the fitted point, the log-likelihood of each group at it, and how EM ended.
    pub(crate) fn fit(
        &self,
        start: Groups,
        config: &EmConfig,
        observer: &mut dyn Observer,
    ) -> (em::Accelerated<Groups>, Vec<f64>) {
        let run = em::squarem(start, config, observer, |g| g.step(&self.data, &self.workspaces));
        let logliks = run.model.logliks(&self.data, &self.workspaces);
        (run, logliks)
    }

    /// The outcome of a fit as banks per group, with fit indices and warnings.
    pub(crate) fn outcome(
        &self,
        run: em::Accelerated<Groups>,
        logliks: Vec<f64>,
        config: &EmConfig,
    ) -> Result<GroupCalibration, GroupError> {
        let mut warnings = self.warnings.clone();
        warnings.extend(Warning::of_run(
            run.stopped,
            run.converged,
            run.cycles,
            run.last_change,
            config.tol,
        ));
        let point = &run.model;
        let mut groups = Vec::with_capacity(point.models.len());
        for (g, m) in point.models.iter().enumerate() {
            let mut items = Vec::with_capacity(m.items.len());
            for (j, st) in m.items.iter().enumerate() {
                // Warnings about an equal item once (from the reference group), about a freed item per group.
                let mut item_warnings = Vec::new();
                items.push(crate::calibrated_item(&self.data[g], j, st, &mut item_warnings)?);
                if g == 0 || point.free_item[j] {
                    warnings.extend(item_warnings);
                }
            }
            let provenance = Provenance {
                method: "calibrated".into(),
                description: Some(format!(
                    "multiple-group marginal maximum likelihood by EM, group `{}` of {}",
                    self.names[g],
                    point.models.len()
                )),
                software: Some(format!("etalon-calibration {}", env!("CARGO_PKG_VERSION"))),
                ..Provenance::default()
            };
            let latent =
                (m.latent.mean != 0.0 || m.latent.variance != 1.0).then_some(etalon_items::BankLatent {
                    mean: m.latent.mean,
                    variance: m.latent.variance,
                });
            let bank = Bank::new(
                format!("calibrated-{}", self.names[g]),
                Framework::default(),
                items,
                provenance,
            )
            .and_then(|b| b.with_latent(latent))
            .map_err(|p| CalibrationError::Bank(etalon_items::Problems(p)))?;
            groups.push(GroupFit {
                name: self.names[g].clone(),
                persons: self.data[g].n_persons(),
                latent: m.latent,
                loglik: logliks[g],
                bank,
            });
        }
        let loglik: f64 = logliks.iter().sum();
        let k = point.n_parameters();
        Ok(GroupCalibration {
            groups,
            loglik,
            aic: -2.0 * loglik + 2.0 * k as f64,
            bic: -2.0 * loglik + k as f64 * (self.persons as f64).ln(),
            n_parameters: k,
            persons: self.persons,
            cycles: run.cycles,
            converged: run.converged,
            last_change: run.last_change,
            free_items: self.data[0]
                .item_ids()
                .iter()
                .zip(&point.free_item)
                .filter(|(_, f)| **f)
                .map(|(id, _)| id.clone())
                .collect(),
            warnings,
        })
    }
}

/// Fit `spec` to `responses` with persons in groups: `group[p]` is person p's index into `names`
/// (`None`: left out); `names[0]` is the reference group. `observer` sees every EM cycle.
pub fn calibrate_groups(
    responses: &Responses,
    group: &[Option<usize>],
    names: &[String],
    spec: &GroupSpec,
    mut observer: impl Observer,
) -> Result<GroupCalibration, GroupError> {
    let prepared = prepare(responses, group, names, spec)?;
    let start = prepared.start.clone();
    let (run, logliks) = prepared.fit(start, &spec.calibration.em, &mut observer);
    prepared.outcome(run, logliks, &spec.calibration.em)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etalon_items::ResponseMatrix;

    /// Two groups that are one population split at random: equal items, a free focal mean near 0;
    /// with one group N(0, 1) fixed too, the fit is the single-group calibration.
    #[test]
    fn two_groups_of_one_population_fit_as_one() {
        // A deterministic pseudo-random 0/1 matrix from a 2PL (LCG draws).
        let (n, j) = (1200usize, 6usize);
        let mut u = crate::uniforms(12345);
        let mut cells = Vec::with_capacity(n * j);
        for _ in 0..n {
            let z = (-2.0 * u().max(1e-300).ln()).sqrt() * (std::f64::consts::TAU * u()).cos();
            for k in 0..j {
                let (a, b) = (0.8 + 0.2 * k as f64, -1.0 + 0.4 * k as f64);
                cells.push(u8::from(u() < 1.0 / (1.0 + (-a * (z - b)).exp())));
            }
        }
        let ids: Vec<String> = (1..=j).map(|k| format!("i{k}")).collect();
        let data = Responses::Dense(ResponseMatrix::from_categories(ids, n, cells));
        let group: Vec<Option<usize>> = (0..n).map(|p| Some(p % 2)).collect();
        let names = vec!["a".to_string(), "b".to_string()];
        let mut spec = GroupSpec::new(ModelKind::TwoPl);
        spec.free_latent = false;
        spec.calibration.em.tol = 1e-7;
        let fixed = calibrate_groups(&data, &group, &names, &spec, ()).unwrap();
        let mut single = spec.calibration.clone();
        single.em.tol = 1e-7;
        let one = crate::calibrate(&data, &single, None, ()).unwrap();
        assert!(
            (fixed.loglik - one.loglik).abs() < 1e-6,
            "{} vs {}",
            fixed.loglik,
            one.loglik
        );
        assert_eq!(fixed.n_parameters, one.n_parameters);
        for item in one.bank.items() {
            let other = fixed.groups[1].bank.item(&item.id).unwrap();
            assert!((item.parameters.slope() - other.parameters.slope()).abs() < 1e-4);
        }
        // Freeing the second group's mean and variance can only raise the likelihood, and by little:
        // X² = 2 Δ log L ~ χ²(2) under this split, below 13.8 but for one time in a thousand.
        spec.free_latent = true;
        let free = calibrate_groups(&data, &group, &names, &spec, ()).unwrap();
        assert!(free.loglik >= fixed.loglik - 1e-6);
        assert!(
            2.0 * (free.loglik - fixed.loglik) < 13.8,
            "{} {}",
            free.loglik,
            fixed.loglik
        );
        assert_eq!(free.n_parameters, fixed.n_parameters + 2);
        assert!(free.groups[1].latent.mean.abs() < 0.2);
        // A freed item: more parameters, a likelihood at least as high.
        spec.free_items.insert("i3".into());
        let freed = calibrate_groups(&data, &group, &names, &spec, ()).unwrap();
        assert_eq!(freed.n_parameters, free.n_parameters + 2);
        assert!(freed.loglik >= free.loglik - 1e-6);
        assert_ne!(
            freed.groups[0].bank.item("i3").unwrap().parameters,
            freed.groups[1].bank.item("i3").unwrap().parameters
        );
        assert_eq!(
            freed.groups[0].bank.item("i2").unwrap().parameters,
            freed.groups[1].bank.item("i2").unwrap().parameters
        );
    }

    #[test]
    fn bad_groups_are_refused() {
        let ids: Vec<String> = vec!["x".into(), "y".into()];
        let data = Responses::Dense(ResponseMatrix::from_categories(
            ids,
            4,
            vec![0, 1, 1, 0, 1, 1, 0, 0],
        ));
        let names = vec!["r".to_string(), "f".to_string()];
        let spec = GroupSpec::new(ModelKind::TwoPl);
        let err = |group: &[Option<usize>], names: &[String], spec: &GroupSpec| {
            calibrate_groups(&data, group, names, spec, ()).unwrap_err()
        };
        assert!(matches!(
            err(&[Some(0); 3], &names, &spec),
            GroupError::GroupCount { .. }
        ));
        assert!(matches!(err(&[Some(0); 4], &names, &spec), GroupError::EmptyGroup(g) if g == "f"));
        assert!(matches!(
            err(&[Some(0); 4], &names[..1], &spec),
            GroupError::Names(1)
        ));
        let mut s = spec.clone();
        s.free_items.insert("z".into());
        let g = [Some(0), Some(0), Some(1), Some(1)];
        assert!(matches!(err(&g, &names, &s), GroupError::UnknownItem(i) if i == "z"));
        assert!(matches!(
            err(&g, &names, &GroupSpec::new(ModelKind::OnePl)),
            GroupError::OnePl
        ));
    }
}
