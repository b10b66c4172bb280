//! # etalon-calibration
//!
//! The item side of Etalon: item parameters fitted by marginal maximum likelihood with EM
//! (Bock & Aitkin 1981) — Rasch (latent variance estimated), 1PL, 2PL, 3PL, 4PL, graded and
//! generalised partial credit — on dense or sparse data with any cell missing, in parallel with
//! results independent of the thread count; Bayes modal priors; standard errors (Oakes 1999);
//! fit (log-likelihood, AIC, BIC, S-X² of Orlando & Thissen 2000); anchored calibration of new items;
//! linking of a new calibration to a bank's scale (mean/mean, mean/sigma, Haebara, Stocking–Lord).
//!
//! ```no_run
//! use etalon_calibration::{calibrate, CalibrationSpec};
//! use etalon_items::{read_responses, DataFormat, ModelKind};
//! let data = read_responses("responses.csv", DataFormat::Wide).unwrap();
//! let fit = calibrate(&data, &CalibrationSpec::new(ModelKind::TwoPl), None, ()).unwrap();
//! println!("log-likelihood {}", fit.loglik);
//! ```

pub mod classical;
pub mod data;
pub mod diagnostics;
pub mod dif;
pub mod drift;
pub mod em;
pub mod estep;
pub mod fit;
pub mod groups;
pub mod linking;
pub mod m2;
pub mod multidim;
pub mod params;
pub mod se;
pub mod warning;

use data::CalibData;
use em::{EmConfig, Latent, Model};
use etalon_items::{Bank, Framework, Item, ModelKind, Provenance, Responses};
use params::ItemState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use warning::Warning;

/// What to fit: a model for every item (optionally per item), EM settings, standard errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationSpec {
    /// Model of every item not listed in `items`.
    pub model: ModelKind,
    /// Per-item models.
    #[serde(default)]
    pub items: BTreeMap<String, ModelKind>,
    /// EM settings and priors.
    #[serde(default)]
    pub em: EmConfig,
    /// Compute standard errors.
    #[serde(default)]
    pub standard_errors: bool,
}

impl CalibrationSpec {
    /// Every item under `model`, mirt's default settings.
    pub fn new(model: ModelKind) -> Self {
        CalibrationSpec {
            model,
            items: BTreeMap::new(),
            em: EmConfig::default(),
            standard_errors: false,
        }
    }
    /// The model of item `id`.
    pub fn model_of(&self, id: &str) -> ModelKind {
        self.items.get(id).copied().unwrap_or(self.model)
    }
}

/// Calibration failed: invalid settings, data that cannot be calibrated, anchors that disagree with
/// the data, or (rarely) parameters that do not form a valid bank.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// The data cannot be calibrated under the chosen models.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// `em.quadrature` outside 3..=1001.
    #[error("quadrature points (em.quadrature) must be in 3..=1001 (got {0})")]
    Quadrature(usize),
    /// `em.tol` not a finite number > 0.
    #[error("the convergence tolerance (em.tol) must be a finite number > 0 (got {0})")]
    Tolerance(f64),
    /// `em.max_cycles` is 0.
    #[error("the maximum number of EM cycles (em.max_cycles) must be at least 1 (got 0)")]
    MaxCycles,
    /// A prior that is no distribution.
    #[error("prior em.priors.{name} needs a finite mean and sd > 0 (got mean {mean}, sd {sd})")]
    Prior {
        /// slope, intercept, guessing or upper.
        name: &'static str,
        /// Its mean.
        mean: f64,
        /// Its SD.
        sd: f64,
    },
    /// An anchor item whose number of categories differs from the data's.
    #[error("anchor item `{item}`: {bank} categories in the bank, {data} in the data")]
    AnchorCategories {
        /// Item id.
        item: String,
        /// Categories of the anchor bank's item.
        bank: usize,
        /// Categories of the item in the data.
        data: usize,
    },
    /// Items of the data that the bank does not have ([`evaluate`]).
    #[error("items not in the bank: {}", .0.join(", "))]
    ItemsNotInBank(Vec<String>),
    /// The calibrated parameters of an item do not form a valid item (the cause is the source).
    #[error("item `{item}`: the calibrated parameters do not form a valid item")]
    ItemModel {
        /// Item id.
        item: String,
        /// Why the parameters were rejected.
        source: etalon_items::ModelError,
    },
    /// A multidimensional calibration's dimensions are unusable (items without one, fewer than two).
    #[error("{0}")]
    Dimensions(String),
    /// The calibrated items do not form a valid bank (the problems are the source).
    #[error("the calibrated items do not form a valid bank")]
    Bank(#[source] etalon_items::Problems),
}

/// S-X² item fit of one item.
pub use fit::ItemFit;

/// The outcome of a calibration.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The calibrated bank (anchor items included, unchanged).
    pub bank: Bank,
    /// Marginal log-likelihood.
    pub loglik: f64,
    /// Akaike information criterion, -2 log L + 2k.
    pub aic: f64,
    /// Bayesian information criterion, -2 log L + k ln N.
    pub bic: f64,
    /// Number of estimated parameters k.
    pub n_parameters: usize,
    /// Persons with at least one answer.
    pub persons: usize,
    /// Items calibrated (anchors excluded).
    pub items: usize,
    /// EM cycles.
    pub cycles: usize,
    /// Whether EM converged.
    pub converged: bool,
    /// Largest parameter change of the last cycle.
    pub last_change: f64,
    /// Latent distribution (variance estimated for Rasch, mean and variance when anchored).
    pub latent: Latent,
    /// Item fit (S-X²).
    pub item_fit: Vec<ItemFit>,
    /// Everything a user should know about: degenerate items, dropped persons, non-convergence.
    pub warnings: Vec<Warning>,
}

/// Fit `spec` to `responses`. With `anchor`, items present in that bank keep its parameters and set
/// the scale (the latent mean and variance are then estimated); only the other items are calibrated.
/// `observer` sees every EM cycle and may stop the run ([`em::Observer`]: `()` for none, a closure
/// `|p: &Progress| Control::Continue`, a [`em::TimeLimit`]); a stopped run returns the parameters
/// reached, not converged, with a warning.
pub fn calibrate(
    responses: &Responses,
    spec: &CalibrationSpec,
    anchor: Option<&Bank>,
    mut observer: impl em::Observer,
) -> Result<Calibration, CalibrationError> {
    let em = &spec.em;
    let Start {
        data,
        items,
        mut warnings,
    } = start(responses, spec, anchor)?;
    let anchored = items.iter().any(|i| i.fixed);
    let free_variance = anchored || items.iter().all(|i| i.kind == ModelKind::Rasch);
    let q = em.quadrature;
    let theta: Vec<f64> = (0..q).map(|i| -6.0 + 12.0 * i as f64 / (q - 1) as f64).collect();
    let model = Model {
        theta,
        items,
        latent: Latent {
            mean: 0.0,
            variance: 1.0,
        },
        free_variance,
        free_mean: anchored,
        priors: em.priors,
    };
    let outcome = em::run_em(&data, model, em, &mut observer);
    warnings.extend(Warning::of_run(
        outcome.stopped,
        outcome.converged,
        outcome.cycles,
        outcome.last_change,
        em.tol,
    ));
    let model = outcome.model;
    let ses = if spec.standard_errors {
        Some(se::standard_errors(&data, &model))
    } else {
        None
    };
    let item_fit = match fit::s_x2(&data, &model) {
        Ok(f) => f,
        Err(reason) => {
            // Tell the user unless there was nothing to fit against (a data set without complete
            // patterns, as adaptive logs are, says so in the warning).
            warnings.push(Warning::FitSkipped { reason });
            Vec::new()
        }
    };
    let n_parameters = model.n_parameters();
    let n = data.n_persons() as f64;
    let mut bank_items = Vec::with_capacity(data.n_items());
    for (j, st) in model.items.iter().enumerate() {
        let id = &data.item_ids()[j];
        if let Some(item) = anchor.and_then(|b| b.item(id)) {
            bank_items.push(item.clone());
            continue;
        }
        let mut item = calibrated_item(&data, j, st, &mut warnings)?;
        if let Some(ses) = &ses {
            item.standard_errors = ses[j].clone();
        }
        bank_items.push(item);
    }
    if let Some(b) = anchor {
        for item in b.items() {
            if !data.item_ids().contains(&item.id) {
                bank_items.push(item.clone());
            }
        }
    }
    let calibrated = model.items.iter().filter(|i| !i.fixed).count();
    let provenance = Provenance {
        method: "calibrated".into(),
        description: Some(format!(
            "marginal maximum likelihood by EM, {q} quadrature points on [-6, 6]{}",
            if anchored {
                ", anchored on the parameters of an existing bank"
            } else {
                ""
            }
        )),
        software: Some(format!("etalon-calibration {}", env!("CARGO_PKG_VERSION"))),
        calibration: Some(serde_json::json!({
            "model": spec.model, "log_likelihood": outcome.loglik, "cycles": outcome.cycles,
            "converged": outcome.converged, "latent_mean": model.latent.mean,
            "latent_variance": model.latent.variance, "persons": data.n_persons(),
        })),
        ..Provenance::default()
    };
    let id = anchor.map_or_else(|| "calibrated".to_string(), |b| b.id().to_string());
    let framework = anchor.map_or_else(Framework::default, |b| b.framework().clone());
    // The estimated latent distribution (Rasch, anchored calibrations) is the scale of the parameters:
    // the bank records it unless it is the standard N(0, 1).
    let latent =
        (model.latent.mean != 0.0 || model.latent.variance != 1.0).then_some(etalon_items::BankLatent {
            mean: model.latent.mean,
            variance: model.latent.variance,
        });
    let bank = Bank::new(id, framework, bank_items, provenance)
        .and_then(|bank| bank.with_latent(latent))
        .map_err(|p| CalibrationError::Bank(etalon_items::Problems(p)))?;
    Ok(Calibration {
        bank,
        loglik: outcome.loglik,
        aic: -2.0 * outcome.loglik + 2.0 * n_parameters as f64,
        bic: -2.0 * outcome.loglik + n_parameters as f64 * n.ln(),
        n_parameters,
        persons: data.n_persons(),
        items: calibrated,
        cycles: outcome.cycles,
        converged: outcome.converged,
        last_change: outcome.last_change,
        latent: model.latent,
        item_fit,
        warnings,
    })
}

/// What a calibration starts from: the data prepared for the items' models, the starting item states
/// (anchor items fixed at the bank's parameters), and the warnings about the data.
pub(crate) struct Start {
    pub(crate) data: CalibData,
    pub(crate) items: Vec<ItemState>,
    pub(crate) warnings: Vec<Warning>,
}

/// Check the EM settings, prepare the data and the starting items of a calibration.
pub(crate) fn start(
    responses: &Responses,
    spec: &CalibrationSpec,
    anchor: Option<&Bank>,
) -> Result<Start, CalibrationError> {
    if let Some(b) = anchor.filter(|b| b.structure().is_some()) {
        return Err(CalibrationError::Dimensions(format!(
            "anchor bank `{}` is multidimensional: a unidimensional calibration cannot hold its items fixed",
            b.id()
        )));
    }
    check_em(&spec.em)?;
    let ids = responses.item_ids();
    let kinds: Vec<ModelKind> = ids
        .iter()
        .map(|id| {
            anchor
                .and_then(|b| b.item(id))
                .map_or_else(|| spec.model_of(id), |i| i.parameters.kind())
        })
        .collect();
    let data = CalibData::new(responses, &kinds)?;
    let mut warnings = Vec::new();
    if !data.dropped_items.is_empty() {
        warnings.push(Warning::ItemsWithoutResponses {
            items: data.dropped_items.clone(),
        });
    }
    if data.dropped_persons > 0 {
        warnings.push(Warning::PersonsWithoutResponses {
            count: data.dropped_persons,
        });
    }
    let counts = data.category_counts();
    let mut items = Vec::with_capacity(data.n_items());
    for (j, id) in data.item_ids().iter().enumerate() {
        let kind = kinds[ids.iter().position(|x| x == id).unwrap_or(j)];
        if let Some(item) = anchor.and_then(|b| b.item(id)) {
            if item.parameters.categories() != data.categories(j) && kind.is_polytomous() {
                return Err(CalibrationError::AnchorCategories {
                    item: id.clone(),
                    bank: item.parameters.categories(),
                    data: data.categories(j),
                });
            }
            let mut st = ItemState::from_model(&item.parameters);
            st.fixed = true;
            items.push(st);
            continue;
        }
        let total: usize = counts[j].iter().sum();
        let props: Vec<f64> = counts[j]
            .iter()
            .map(|&c| c as f64 / total.max(1) as f64)
            .collect();
        for (k, &c) in counts[j].iter().enumerate() {
            if c == 0 {
                warnings.push(Warning::CategoryNeverObserved {
                    item: id.clone(),
                    category: k,
                    code: data.codes(j).get(k).copied().unwrap_or(k as i64),
                });
            }
        }
        if kind.is_polytomous() && data.codes(j).len() < 2 {
            warnings.push(Warning::SingleCode { item: id.clone() });
        }
        items.push(ItemState::start(kind, &props));
    }
    Ok(Start {
        data,
        items,
        warnings,
    })
}

/// Refuse EM settings no calibration can run with ([`EmConfig::check`]).
pub(crate) fn check_em(em: &EmConfig) -> Result<(), CalibrationError> {
    em.check()
}

impl EmConfig {
    /// Whether a calibration can run with these settings: quadrature points in 3..=1001, a finite
    /// tolerance > 0, at least one cycle, priors with finite means and SDs > 0. Every calibration
    /// checks them first; front ends may check a settings file before reading the data.
    pub fn check(&self) -> Result<(), CalibrationError> {
        if !(3..=1001).contains(&self.quadrature) {
            return Err(CalibrationError::Quadrature(self.quadrature));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(CalibrationError::Tolerance(self.tol));
        }
        if self.max_cycles == 0 {
            return Err(CalibrationError::MaxCycles);
        }
        let p = &self.priors;
        for (name, prior) in [
            ("slope", p.slope),
            ("intercept", p.intercept),
            ("guessing", p.guessing),
            ("upper", p.upper),
        ] {
            if let Some(em::NormalPrior { mean, sd }) = prior
                && !(mean.is_finite() && sd.is_finite() && sd > 0.0)
            {
                return Err(CalibrationError::Prior { name, mean, sd });
            }
        }
        Ok(())
    }
}

/// Item j of `data` with the calibrated state `st` (its response codes kept when they are not
/// 0, 1, …), and the warnings its parameters call for: a negative or near-zero slope, a location
/// beyond ±6.
pub(crate) fn calibrated_item(
    data: &CalibData,
    j: usize,
    st: &ItemState,
    warnings: &mut Vec<Warning>,
) -> Result<Item, CalibrationError> {
    let id = &data.item_ids()[j];
    let parameters = st.to_model().map_err(|source| CalibrationError::ItemModel {
        item: id.clone(),
        source,
    })?;
    let mut item = Item::new(id.clone(), parameters);
    let codes = data.codes(j);
    if st.kind.is_polytomous() && codes.iter().enumerate().any(|(k, &c)| c != k as i64) {
        item.codes = Some(codes.to_vec());
    }
    let (a, b) = (item.parameters.slope(), item.parameters.location());
    if a < 0.0 {
        warnings.push(Warning::NegativeSlope { item: id.clone(), a });
    } else if st.kind != ModelKind::Rasch && a < 0.2 {
        warnings.push(Warning::NearZeroSlope { item: id.clone(), a });
    }
    if b.abs() > 6.0 {
        warnings.push(Warning::ExtremeDifficulty { item: id.clone(), b });
    }
    Ok(item)
}

/// The starting model of a calibration of `data` under `model` for every item (61 points on [-6, 6],
/// default priors): what the first EM cycle starts from. For benchmarks and tools that drive
/// [`em::em_step`] themselves.
pub fn starting_model(data: &CalibData, model: ModelKind) -> Model {
    let counts = data.category_counts();
    let items = counts
        .iter()
        .map(|c| {
            let total: usize = c.iter().sum();
            let props: Vec<f64> = c.iter().map(|&x| x as f64 / total.max(1) as f64).collect();
            ItemState::start(model, &props)
        })
        .collect();
    Model {
        theta: (0..61).map(|i| -6.0 + 0.2 * i as f64).collect(),
        items,
        latent: Latent {
            mean: 0.0,
            variance: 1.0,
        },
        free_variance: model == ModelKind::Rasch,
        free_mean: false,
        priors: em::Priors::default(),
    }
}

/// Marginal log-likelihood of `responses` under the parameters of `bank` (θ ~ N(0, 1) on `quadrature`
/// equally spaced points in [-6, 6]), and the log prior density of those parameters under `priors`:
/// the two terms of the objective Bayes modal EM maximises. Items of the data must be in the bank.
pub fn evaluate(
    responses: &Responses,
    bank: &Bank,
    quadrature: usize,
    priors: &em::Priors,
) -> Result<(f64, f64), CalibrationError> {
    let ids = responses.item_ids();
    let missing: Vec<String> = ids.iter().filter(|id| bank.item(id).is_none()).cloned().collect();
    if !missing.is_empty() {
        return Err(CalibrationError::ItemsNotInBank(missing));
    }
    let kinds: Vec<ModelKind> = ids
        .iter()
        .map(|id| bank.item(id).map_or(ModelKind::TwoPl, |i| i.parameters.kind()))
        .collect();
    let data = CalibData::new(responses, &kinds)?;
    let items: Vec<ItemState> = data
        .item_ids()
        .iter()
        .filter_map(|id| bank.item(id))
        .map(|i| ItemState::from_model(&i.parameters))
        .collect();
    let q = quadrature.max(3);
    let model = Model {
        theta: (0..q).map(|i| -6.0 + 12.0 * i as f64 / (q - 1) as f64).collect(),
        items,
        latent: Latent {
            mean: 0.0,
            variance: 1.0,
        },
        free_variance: false,
        free_mean: false,
        priors: *priors,
    };
    let log_prior = model
        .items
        .iter()
        .map(|st| em::add_prior(st, priors, None, None))
        .sum();
    Ok((model.e_step(&data).loglik, log_prior))
}

/// Test data: uniform draws in [0, 1) from a 64-bit linear congruential generator (Knuth's MMIX
/// constants), deterministic without a random-number crate.
#[cfg(test)]
pub(crate) fn uniforms(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    }
}
