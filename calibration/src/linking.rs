//! Linking: a new calibration put on a bank's scale through the items they share.
//!
//! Two calibrations of the same items on different groups each fix their own scale (θ ~ N(0, 1) in
//! each group), so their parameters differ by a linear change of scale θ_bank = A·θ_new + B. The
//! common items (same id in both banks) give A and B; the new items are then carried over:
//! a* = a / A, b* = A·b + B (each threshold of a polytomous item likewise), c and d unchanged, and a
//! recorded latent distribution N(μ, σ²) becomes N(A·μ + B, A²σ²).
//!
//! Methods (Kolen & Brennan 2014, *Test Equating, Scaling, and Linking*, ch. 6):
//! - **mean/mean** (Loyd & Hoover 1980): A = mean(a_new) / mean(a_bank), B = mean(b_bank) − A·mean(b_new);
//! - **mean/sigma** (Marco 1977): A = sd(b_bank) / sd(b_new) (sd with n − 1), B as above;
//! - **Haebara** (1980): A, B minimise Σ_q w_q Σ_j Σ_k [P_jk(θ_q; bank) − P_jk(θ_q; new*)]², the
//!   squared differences of the item characteristic curves (of the category curves k ≥ 1 for
//!   dichotomous items, of every category for polytomous ones, Kim & Lee 2006);
//! - **Stocking–Lord** (1983): A, B minimise Σ_q w_q [Σ_j E_j(θ_q; bank) − Σ_j E_j(θ_q; new*)]², the
//!   squared difference of the test characteristic curves (E_j = Σ_k k·P_jk).
//!
//! The characteristic-curve criteria use 41 equally spaced points on [−4, 4] with normalised N(0, 1)
//! density weights on the bank's scale (one-directional, as plink's and equateIRT's defaults do),
//! and are minimised by Nelder–Mead (`argmin`) from the mean/sigma constants. b values of every
//! threshold enter the moment methods. A Rasch scale fixes the unit: when the new bank holds Rasch
//! items, A = 1 and only B is estimated.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use etalon_items::irt::ResponseFunction;
use etalon_items::{Bank, ItemModel, ModelKind};
use serde::{Deserialize, Serialize};

/// How the linking constants are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkingMethod {
    /// Means of slopes and of difficulties.
    MeanMean,
    /// Mean and standard deviation of the difficulties.
    MeanSigma,
    /// Item characteristic curves (Haebara 1980).
    Haebara,
    /// Test characteristic curve (Stocking & Lord 1983).
    StockingLord,
}

impl LinkingMethod {
    /// The method's name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LinkingMethod::MeanMean => "mean-mean",
            LinkingMethod::MeanSigma => "mean-sigma",
            LinkingMethod::Haebara => "haebara",
            LinkingMethod::StockingLord => "stocking-lord",
        }
    }
}

/// Why two banks cannot be linked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkingError {
    /// Fewer than two items in common.
    #[error("the banks share {0} item(s) (same id); linking needs at least 2")]
    TooFewCommonItems(usize),
    /// A common item with another model or number of categories in the new bank.
    #[error("item `{item}` is {bank} in the bank but {new} in the new calibration: it cannot link them")]
    ModelMismatch {
        /// Item id.
        item: String,
        /// Its model in the bank.
        bank: String,
        /// Its model in the new calibration.
        new: String,
    },
    /// The common items' difficulties do not vary (mean/sigma), or the constants are not finite.
    #[error("no linking: {0}")]
    Degenerate(String),
    /// A multidimensional bank: one (A, B) cannot carry D correlated scales (not built).
    #[error("bank `{0}` is multidimensional: linking carries one scale, not its correlated dimensions")]
    Multidimensional(String),
    /// A transformed item is not a valid item (e.g. a slope that overflows).
    #[error("item `{item}` cannot be carried to the bank's scale: {reason}")]
    Transform {
        /// Item id.
        item: String,
        /// What went wrong.
        reason: String,
    },
}

/// The constants θ_bank = A·θ_new + B and how they were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linking {
    /// The method.
    pub method: LinkingMethod,
    /// The common items, in the new bank's order.
    pub common_items: Vec<String>,
    /// Slope A.
    #[serde(rename = "A")]
    pub a: f64,
    /// Intercept B.
    #[serde(rename = "B")]
    pub b: f64,
    /// The minimised criterion (characteristic-curve methods).
    pub criterion: Option<f64>,
    /// Whether A was fixed at 1 (a Rasch scale).
    pub unit_fixed: bool,
    /// Standard errors of A and B ([`constant_errors`]; `None` when not computed or not defined).
    pub standard_errors: Option<ConstantErrors>,
}

/// Standard errors of the linking constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConstantErrors {
    /// SE of A (0 when the unit is fixed).
    #[serde(rename = "A")]
    pub a: f64,
    /// SE of B.
    #[serde(rename = "B")]
    pub b: f64,
}

/// An item model on the bank's scale: a / A, A·b + B (every threshold), c and d kept.
pub fn transform_model(m: &ItemModel, a: f64, b: f64) -> Result<ItemModel, String> {
    let e = |e: etalon_items::ModelError| e.to_string();
    match m {
        ItemModel::Rasch(l) if a == 1.0 => ItemModel::rasch(l.b() + b).map_err(e),
        ItemModel::Rasch(_) => Err(format!("a Rasch item keeps slope 1, so A must be 1 (A = {a})")),
        ItemModel::OnePl(l) => ItemModel::one_pl(l.a() / a, a * l.b() + b).map_err(e),
        ItemModel::TwoPl(l) => ItemModel::two_pl(l.a() / a, a * l.b() + b).map_err(e),
        ItemModel::ThreePl(l) => ItemModel::three_pl(l.a() / a, a * l.b() + b, l.c()).map_err(e),
        ItemModel::FourPl(l) => ItemModel::four_pl(l.a() / a, a * l.b() + b, l.c(), l.d()).map_err(e),
        ItemModel::Graded(p) | ItemModel::Gpcm(p) => {
            let thresholds = p.thresholds().iter().map(|t| a * t + b).collect();
            if m.kind() == ModelKind::Graded {
                ItemModel::graded(p.a() / a, thresholds).map_err(e)
            } else {
                ItemModel::gpcm(p.a() / a, thresholds).map_err(e)
            }
        }
    }
}

/// The difficulties an item gives the moment methods: b, or every threshold.
fn difficulties(m: &ItemModel) -> Vec<f64> {
    match m.polytomous() {
        Some(p) => p.thresholds().to_vec(),
        None => vec![m.location()],
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn sd(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)).sqrt()
}

/// The characteristic-curve criterion of (A, B) over the common items.
struct Curves<'a> {
    /// Quadrature points and normalised weights on the bank's scale.
    points: Vec<f64>,
    weights: Vec<f64>,
    /// The bank's curves: per point, per item, the probabilities of the categories that count.
    bank: Vec<f64>,
    new: Vec<&'a ItemModel>,
    stocking_lord: bool,
    unit_fixed: bool,
}

impl Curves<'_> {
    /// The values compared at θ for one item model: P_k for k ≥ 1 (dichotomous) or every k, or the
    /// expected score (Stocking–Lord), appended to `out`.
    fn values(&self, m: &ItemModel, theta: f64, p: &mut [f64], out: &mut Vec<f64>) {
        let k = m.n_categories();
        m.category_probabilities(theta, &mut p[..k]);
        if self.stocking_lord {
            out.push(p[..k].iter().enumerate().map(|(c, v)| c as f64 * v).sum());
        } else if k == 2 {
            out.push(p[1]);
        } else {
            out.extend_from_slice(&p[..k]);
        }
    }

    fn evaluate(&self, models: &[ItemModel]) -> Vec<f64> {
        let mut p = vec![
            0.0;
            models
                .iter()
                .map(ResponseFunction::n_categories)
                .max()
                .unwrap_or(2)
        ];
        let mut out = Vec::new();
        for &theta in &self.points {
            let start = out.len();
            for m in models {
                self.values(m, theta, &mut p, &mut out);
            }
            if self.stocking_lord {
                let total: f64 = out.drain(start..).sum();
                out.push(total);
            }
        }
        out
    }

    fn criterion(&self, a: f64, b: f64) -> f64 {
        let Ok(models) = self
            .new
            .iter()
            .map(|m| transform_model(m, a, b))
            .collect::<Result<Vec<_>, _>>()
        else {
            return f64::INFINITY;
        };
        let values = self.evaluate(&models);
        let per_point = values.len() / self.points.len();
        values
            .chunks(per_point)
            .zip(self.bank.chunks(per_point))
            .zip(&self.weights)
            .map(|((n, o), w)| w * n.iter().zip(o).map(|(x, y)| (x - y) * (x - y)).sum::<f64>())
            .sum()
    }
}

impl CostFunction for Curves<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(if self.unit_fixed {
            self.criterion(1.0, p[0])
        } else {
            self.criterion(p[0], p[1])
        })
    }
}

/// Link `new` to `bank` through their common items.
pub fn link(bank: &Bank, new: &Bank, method: LinkingMethod) -> Result<Linking, LinkingError> {
    for b in [bank, new] {
        if b.structure().is_some() {
            return Err(LinkingError::Multidimensional(b.id().to_string()));
        }
    }
    link_through(bank, new, method, |_| true)
}

/// Link `new` to `bank` through the common items `keep` accepts (drift analysis leaves out the items
/// that drifted).
pub fn link_through(
    bank: &Bank,
    new: &Bank,
    method: LinkingMethod,
    keep: impl Fn(&str) -> bool,
) -> Result<Linking, LinkingError> {
    let common = common_items(bank, new)?
        .into_iter()
        .filter(|c| keep(&c.0))
        .collect::<Vec<_>>();
    if common.len() < 2 {
        return Err(LinkingError::TooFewCommonItems(common.len()));
    }
    let unit_fixed = unit_fixed(new);
    let pairs: Vec<(&ItemModel, &ItemModel)> = common.iter().map(|c| (c.1, c.2)).collect();
    let (a, b, criterion) = constants(&pairs, method, unit_fixed)?;
    Ok(Linking {
        method,
        common_items: common.into_iter().map(|c| c.0).collect(),
        a,
        b,
        criterion,
        unit_fixed,
        standard_errors: None,
    })
}

/// A Rasch scale fixes the unit.
fn unit_fixed(new: &Bank) -> bool {
    new.items()
        .iter()
        .any(|i| i.parameters.kind() == ModelKind::Rasch)
}

/// The items of `new` that `bank` holds too (same id), with the bank's and the new model.
#[allow(clippy::type_complexity)]
fn common_items<'a>(
    bank: &'a Bank,
    new: &'a Bank,
) -> Result<Vec<(String, &'a ItemModel, &'a ItemModel)>, LinkingError> {
    let mut common = Vec::new();
    for item in new.items() {
        let Some(old) = bank.item(&item.id) else {
            continue;
        };
        if old.parameters.n_categories() != item.parameters.n_categories()
            || old.parameters.kind().is_polytomous() != item.parameters.kind().is_polytomous()
        {
            return Err(LinkingError::ModelMismatch {
                item: item.id.clone(),
                bank: old.parameters.kind().name().into(),
                new: item.parameters.kind().name().into(),
            });
        }
        common.push((item.id.clone(), &old.parameters, &item.parameters));
    }
    Ok(common)
}

/// A, B (and the minimised criterion) from the common items' (bank, new) models.
fn constants(
    common: &[(&ItemModel, &ItemModel)],
    method: LinkingMethod,
    unit_fixed: bool,
) -> Result<(f64, f64, Option<f64>), LinkingError> {
    let b_old: Vec<f64> = common.iter().flat_map(|c| difficulties(c.0)).collect();
    let b_new: Vec<f64> = common.iter().flat_map(|c| difficulties(c.1)).collect();
    let intercept = |a: f64| mean(&b_old) - a * mean(&b_new);
    let moments = |a: f64| (a, intercept(a));
    let (a_ms, b_ms) = if unit_fixed {
        moments(1.0)
    } else {
        let (s_old, s_new) = (sd(&b_old), sd(&b_new));
        if s_new.is_nan() || s_new <= 0.0 {
            return Err(LinkingError::Degenerate(
                "the common items' difficulties in the new calibration do not vary".into(),
            ));
        }
        moments(s_old / s_new)
    };
    let (a, b, criterion) = match method {
        LinkingMethod::MeanMean if unit_fixed => (1.0, intercept(1.0), None),
        LinkingMethod::MeanMean => {
            let slopes = |side: usize| {
                mean(
                    &common
                        .iter()
                        .map(|c| if side == 0 { c.0.slope() } else { c.1.slope() })
                        .collect::<Vec<_>>(),
                )
            };
            let a = slopes(1) / slopes(0);
            (a, intercept(a), None)
        }
        LinkingMethod::MeanSigma => (a_ms, b_ms, None),
        LinkingMethod::Haebara | LinkingMethod::StockingLord => {
            let points: Vec<f64> = (0..41).map(|q| -4.0 + 0.2 * q as f64).collect();
            let density: Vec<f64> = points.iter().map(|t| (-0.5 * t * t).exp()).collect();
            let total: f64 = density.iter().sum();
            let mut curves = Curves {
                weights: density.iter().map(|d| d / total).collect(),
                points,
                bank: Vec::new(),
                new: common.iter().map(|c| c.1).collect(),
                stocking_lord: method == LinkingMethod::StockingLord,
                unit_fixed,
            };
            let olds: Vec<ItemModel> = common.iter().map(|c| c.0.clone()).collect();
            curves.bank = curves.evaluate(&olds);
            let simplex = if unit_fixed {
                vec![vec![b_ms], vec![b_ms + 0.1]]
            } else {
                vec![vec![a_ms, b_ms], vec![a_ms * 1.05, b_ms], vec![a_ms, b_ms + 0.1]]
            };
            let solver = NelderMead::new(simplex)
                .with_sd_tolerance(1e-15)
                .map_err(|e| LinkingError::Degenerate(e.to_string()))?;
            let result = Executor::new(curves, solver)
                .configure(|s| s.max_iters(5_000))
                .run()
                .map_err(|e| LinkingError::Degenerate(e.to_string()))?;
            let state = result.state();
            let best = state
                .get_best_param()
                .ok_or_else(|| LinkingError::Degenerate("the minimisation found no point".into()))?;
            let (a, b) = if unit_fixed {
                (1.0, best[0])
            } else {
                (best[0], best[1])
            };
            (a, b, Some(state.get_best_cost()))
        }
    };
    if !(a.is_finite() && a > 0.0 && b.is_finite()) {
        return Err(LinkingError::Degenerate(format!("constants A = {a}, B = {b}")));
    }
    Ok((a, b, criterion))
}

/// `m` with its named parameter `name` (as [`ItemModel::named_parameters`] names it) set to `value`.
fn with_parameter(m: &ItemModel, name: &str, value: f64) -> Option<ItemModel> {
    let mut named = m.named_parameters();
    named.iter_mut().find(|(n, _)| n == name)?.1 = value;
    let get = |n: &str| named.iter().find(|(k, _)| k == n).map(|x| x.1);
    let thresholds = named
        .iter()
        .filter(|(k, _)| k.len() > 1 && k.starts_with('b'))
        .map(|x| x.1)
        .collect();
    ItemModel::from_parts(m.kind(), get("a"), get("b"), get("c"), get("d"), thresholds).ok()
}

/// Standard errors of A and B by the delta method (Kolen & Brennan 2014, §7.4; Ogasawara 2001):
/// with g(φ) = (A, B) as a function of the common items' parameters in both calibrations,
/// Var g ≈ J Σ Jᵀ, J = ∂g/∂φ by central differences (the linking itself rerun), Σ the diagonal of
/// the items' squared standard errors (the banks record no covariances: correlated estimates
/// within an item are treated as independent). `None` unless every parameter of every common item
/// has a standard error in both banks.
pub fn constant_errors(bank: &Bank, new: &Bank, linking: &Linking) -> Option<ConstantErrors> {
    let common: Vec<(&etalon_items::Item, &etalon_items::Item)> = linking
        .common_items
        .iter()
        .map(|id| Some((bank.item(id)?, new.item(id)?)))
        .collect::<Option<_>>()?;
    let mut pairs: Vec<(ItemModel, ItemModel)> = common
        .iter()
        .map(|(o, n)| (o.parameters.clone(), n.parameters.clone()))
        .collect();
    let constants_of = |pairs: &[(ItemModel, ItemModel)]| {
        let refs: Vec<(&ItemModel, &ItemModel)> = pairs.iter().map(|(o, n)| (o, n)).collect();
        constants(&refs, linking.method, linking.unit_fixed).ok()
    };
    let (mut var_a, mut var_b) = (0.0, 0.0);
    for (i, (old, newer)) in common.iter().enumerate() {
        for side in 0..2 {
            let item = if side == 0 { old } else { newer };
            for (name, value) in item.parameters.named_parameters() {
                let se = *item.standard_errors.get(&name)?;
                let h = 1e-4 * value.abs().max(1.0);
                // The constants with the parameter moved by ±h; a side outside the model's range (a
                // guessing parameter near 0, thresholds closer than h) falls back on the constants as
                // linked: a one-sided difference.
                let mut moved = [(linking.a, linking.b, 0.0); 2];
                for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
                    let kept = if side == 0 {
                        pairs[i].0.clone()
                    } else {
                        pairs[i].1.clone()
                    };
                    let Some(shifted) = with_parameter(&kept, &name, value + sign * h) else {
                        continue;
                    };
                    if side == 0 {
                        pairs[i].0 = shifted;
                    } else {
                        pairs[i].1 = shifted;
                    }
                    let c = constants_of(&pairs);
                    if side == 0 {
                        pairs[i].0 = kept;
                    } else {
                        pairs[i].1 = kept;
                    }
                    let (a, b, _) = c?;
                    moved[k] = (a, b, sign * h);
                }
                let span = moved[0].2 - moved[1].2;
                if span == 0.0 {
                    return None;
                }
                let (da, db) = ((moved[0].0 - moved[1].0) / span, (moved[0].1 - moved[1].1) / span);
                var_a += da * da * se * se;
                var_b += db * db * se * se;
            }
        }
    }
    Some(ConstantErrors {
        a: var_a.sqrt(),
        b: var_b.sqrt(),
    })
}

/// `new` carried to the bank's scale by `linking`: every item (common or not) and its latent
/// distribution. Standard errors of transformed parameters are dropped (they belong to the old scale).
pub fn transform_bank(new: &Bank, linking: &Linking) -> Result<Bank, LinkingError> {
    if new.structure().is_some() {
        return Err(LinkingError::Multidimensional(new.id().to_string()));
    }
    let mut out = new.clone();
    let mut failed = None;
    let latent = new.latent().map(|l| etalon_items::bank::Latent {
        mean: linking.a * l.mean + linking.b,
        variance: linking.a * linking.a * l.variance,
    });
    out.update_items(|items| {
        for item in items.iter_mut() {
            match transform_model(&item.parameters, linking.a, linking.b) {
                Ok(m) => {
                    item.parameters = m;
                    item.standard_errors.clear();
                }
                Err(reason) => {
                    failed.get_or_insert(LinkingError::Transform {
                        item: item.id.clone(),
                        reason,
                    });
                }
            }
        }
    })
    .map_err(|p| LinkingError::Transform {
        item: String::new(),
        reason: format!("{p:?}"),
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    out.with_latent(latent).map_err(|p| LinkingError::Transform {
        item: String::new(),
        reason: format!("latent distribution: {p:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transform_and_its_inverse_give_the_item_back() {
        let m = ItemModel::graded(1.3, vec![-1.0, 0.2, 1.5]).unwrap();
        let t = transform_model(&m, 0.8, -0.4).unwrap();
        let back = transform_model(&t, 1.0 / 0.8, 0.4 / 0.8).unwrap();
        let (p, q) = (m.polytomous().unwrap(), back.polytomous().unwrap());
        assert!((p.a() - q.a()).abs() < 1e-12);
        for (x, y) in p.thresholds().iter().zip(q.thresholds()) {
            assert!((x - y).abs() < 1e-12);
        }
        // The response function is unchanged once θ is carried over: P*(Aθ + B) = P(θ).
        let (mut u, mut v) = ([0.0; 4], [0.0; 4]);
        m.category_probabilities(0.3, &mut u);
        t.category_probabilities(0.8 * 0.3 - 0.4, &mut v);
        for (x, y) in u.iter().zip(&v) {
            assert!((x - y).abs() < 1e-12);
        }
    }
}
