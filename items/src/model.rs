//! Item response models: the parameters of one item and their validation.
//!
//! Logistic metric without the 1.702 constant (see `FORMATS.md`):
//!
//! | model | probability |
//! | --- | --- |
//! | `rasch` | P = 1 / (1 + e^-(θ - b)) |
//! | `1pl` | as `2pl`, with one slope shared by every `1pl` item of a bank |
//! | `2pl` | P = 1 / (1 + e^-a(θ - b)) |
//! | `3pl` | P = c + (1 - c) / (1 + e^-a(θ - b)) |
//! | `4pl` | P = c + (d - c) / (1 + e^-a(θ - b)) |
//! | `graded` | P(X ≥ k) = 1 / (1 + e^-a(θ - b_k)), b_1 < … < b_{K-1} (Samejima 1969) |
//! | `gpcm` | P(X = k) ∝ exp(Σ_{v ≤ k} a(θ - b_v)) (Muraki 1992) |
//!
//! An [`ItemModel`] can only be built through its validating constructors, and deserialisation goes
//! through the same constructors, so an invalid item cannot exist in memory.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a set of item parameters was rejected. Each variant names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The slope is NaN, infinite, zero, or negative where the model needs it positive (1PL, graded,
    /// GPCM).
    #[error("slope a must be finite and > 0 (got {0})")]
    InvalidSlope(f64),
    /// A 2PL, 3PL or 4PL item's slope is NaN, infinite or zero (it may be negative).
    #[error("slope a must be finite and non-zero (got {0})")]
    UnusableSlope(f64),
    /// A difficulty or threshold is NaN or infinite.
    #[error("{field} must be finite (got {value})")]
    NonFiniteLocation {
        /// `b`, `b1`, `b2`, …
        field: String,
        /// The rejected value.
        value: f64,
    },
    /// The lower asymptote is outside [0, 1) or not finite.
    #[error("lower asymptote c must satisfy 0 ≤ c < d (got c = {c}, d = {d})")]
    InvalidLowerAsymptote {
        /// Lower asymptote.
        c: f64,
        /// Upper asymptote.
        d: f64,
    },
    /// The upper asymptote is outside (c, 1].
    #[error("upper asymptote d must satisfy c < d ≤ 1 (got c = {c}, d = {d})")]
    InvalidUpperAsymptote {
        /// Lower asymptote.
        c: f64,
        /// Upper asymptote.
        d: f64,
    },
    /// Graded thresholds are not strictly increasing.
    #[error("graded thresholds must be strictly increasing: b{k} = {value} is not above b{prev_k} = {prev}")]
    UnorderedThresholds {
        /// 1-based index of the offending threshold.
        k: usize,
        /// Its value.
        value: f64,
        /// 1-based index of the previous threshold.
        prev_k: usize,
        /// The previous threshold.
        prev: f64,
    },
    /// A polytomous item needs at least one threshold (two categories).
    #[error("a polytomous item needs at least two categories (one threshold b1)")]
    TooFewCategories,
    /// More categories than a response cell can hold.
    #[error("at most {max} categories are supported (got {got})")]
    TooManyCategories {
        /// The limit.
        max: usize,
        /// Categories asked for.
        got: usize,
    },
}

impl ModelError {
    /// The name of the parameter field the error is about (`a`, `b`, `c`, `d`, `b3`, …).
    pub fn field(&self) -> String {
        match self {
            ModelError::InvalidSlope(_) | ModelError::UnusableSlope(_) => "a".into(),
            ModelError::NonFiniteLocation { field, .. } => field.clone(),
            ModelError::InvalidLowerAsymptote { .. } => "c".into(),
            ModelError::InvalidUpperAsymptote { .. } => "d".into(),
            ModelError::UnorderedThresholds { k, .. } => format!("b{k}"),
            ModelError::TooFewCategories | ModelError::TooManyCategories { .. } => "b1".into(),
        }
    }
}

/// The largest number of response categories of one item (a response cell is one byte, 255 = missing).
pub const MAX_CATEGORIES: usize = 250;

/// The model names of `FORMATS.md`, as they appear in the `model` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ModelKind {
    /// Rasch: slope 1.
    #[serde(rename = "rasch")]
    Rasch,
    /// One-parameter logistic with a slope common to all `1pl` items.
    #[serde(rename = "1pl")]
    OnePl,
    /// Two-parameter logistic.
    #[serde(rename = "2pl")]
    TwoPl,
    /// Three-parameter logistic (lower asymptote c).
    #[serde(rename = "3pl")]
    ThreePl,
    /// Four-parameter logistic (lower c and upper d asymptotes).
    #[serde(rename = "4pl")]
    FourPl,
    /// Samejima's graded response model.
    #[serde(rename = "graded")]
    Graded,
    /// Muraki's generalised partial credit model.
    #[serde(rename = "gpcm")]
    Gpcm,
}

impl ModelKind {
    /// All models, in `FORMATS.md` order.
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Rasch,
        ModelKind::OnePl,
        ModelKind::TwoPl,
        ModelKind::ThreePl,
        ModelKind::FourPl,
        ModelKind::Graded,
        ModelKind::Gpcm,
    ];

    /// The name used in files (`rasch`, `1pl`, …).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Rasch => "rasch",
            ModelKind::OnePl => "1pl",
            ModelKind::TwoPl => "2pl",
            ModelKind::ThreePl => "3pl",
            ModelKind::FourPl => "4pl",
            ModelKind::Graded => "graded",
            ModelKind::Gpcm => "gpcm",
        }
    }

    /// Parse a model name, case-insensitively (`2PL` and `2pl` are the same model).
    pub fn parse(name: &str) -> Option<ModelKind> {
        let lower = name.trim().to_ascii_lowercase();
        ModelKind::ALL.into_iter().find(|k| k.name() == lower)
    }

    /// Whether items of this model are scored in more than two categories.
    pub fn is_polytomous(self) -> bool {
        matches!(self, ModelKind::Graded | ModelKind::Gpcm)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of a dichotomous logistic item: P = c + (d - c) / (1 + e^-a(θ - b)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Logistic {
    a: f64,
    b: f64,
    c: f64,
    d: f64,
}

impl Logistic {
    /// Slope (discrimination).
    pub fn a(&self) -> f64 {
        self.a
    }
    /// Difficulty (location).
    pub fn b(&self) -> f64 {
        self.b
    }
    /// Lower asymptote (guessing), 0 unless 3PL/4PL.
    pub fn c(&self) -> f64 {
        self.c
    }
    /// Upper asymptote (slipping), 1 unless 4PL.
    pub fn d(&self) -> f64 {
        self.d
    }
    /// Intercept of the slope–intercept form a·θ + d₀ (mirt's `d`): d₀ = -a·b.
    pub fn intercept(&self) -> f64 {
        -self.a * self.b
    }
}

/// Parameters of a polytomous item: a slope and K - 1 thresholds b_1 … b_{K-1}.
#[derive(Debug, Clone, PartialEq)]
pub struct Polytomous {
    a: f64,
    thresholds: Vec<f64>,
}

impl Polytomous {
    /// Slope (discrimination).
    pub fn a(&self) -> f64 {
        self.a
    }
    /// Thresholds b_1 … b_{K-1}.
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }
    /// Number of response categories K.
    pub fn categories(&self) -> usize {
        self.thresholds.len() + 1
    }
}

/// One item's response model and its parameters, valid by construction.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemModel {
    /// `rasch`: slope fixed at 1.
    Rasch(Logistic),
    /// `1pl`: slope shared by all `1pl` items of a bank.
    OnePl(Logistic),
    /// `2pl`.
    TwoPl(Logistic),
    /// `3pl`.
    ThreePl(Logistic),
    /// `4pl`.
    FourPl(Logistic),
    /// `graded` (Samejima).
    Graded(Polytomous),
    /// `gpcm` (Muraki).
    Gpcm(Polytomous),
}

fn check_slope(a: f64) -> Result<f64, ModelError> {
    if a.is_finite() && a > 0.0 {
        Ok(a)
    } else {
        Err(ModelError::InvalidSlope(a))
    }
}

fn check_location(field: &str, value: f64) -> Result<f64, ModelError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::NonFiniteLocation {
            field: field.into(),
            value,
        })
    }
}

/// The slope of a 2PL, 3PL or 4PL item: finite and non-zero. A negative slope (an item that
/// discriminates the wrong way, often a miskey) is a valid model, as in mirt: banks may hold it and
/// scoring uses it; adaptive tests leave it out unless configured to.
fn check_dichotomous_slope(a: f64) -> Result<f64, ModelError> {
    if a.is_finite() && a != 0.0 {
        Ok(a)
    } else {
        Err(ModelError::UnusableSlope(a))
    }
}

fn check_asymptotes(c: f64, d: f64) -> Result<(), ModelError> {
    // NaN fails every comparison below, so it is rejected too.
    if !(d > 0.0 && d <= 1.0) {
        return Err(ModelError::InvalidUpperAsymptote { c, d });
    }
    if !(c >= 0.0 && c < d) {
        return Err(ModelError::InvalidLowerAsymptote { c, d });
    }
    Ok(())
}

fn check_thresholds(thresholds: &[f64], ordered: bool) -> Result<(), ModelError> {
    if thresholds.is_empty() {
        return Err(ModelError::TooFewCategories);
    }
    if thresholds.len() + 1 > MAX_CATEGORIES {
        return Err(ModelError::TooManyCategories {
            max: MAX_CATEGORIES,
            got: thresholds.len() + 1,
        });
    }
    for (k, &t) in thresholds.iter().enumerate() {
        check_location(&format!("b{}", k + 1), t)?;
        if ordered && k > 0 && t <= thresholds[k - 1] {
            return Err(ModelError::UnorderedThresholds {
                k: k + 1,
                value: t,
                prev_k: k,
                prev: thresholds[k - 1],
            });
        }
    }
    Ok(())
}

impl ItemModel {
    /// Rasch item of difficulty `b`.
    pub fn rasch(b: f64) -> Result<Self, ModelError> {
        Ok(ItemModel::Rasch(Logistic {
            a: 1.0,
            b: check_location("b", b)?,
            c: 0.0,
            d: 1.0,
        }))
    }
    /// 1PL item with (shared) slope `a` and difficulty `b`.
    pub fn one_pl(a: f64, b: f64) -> Result<Self, ModelError> {
        Ok(ItemModel::OnePl(Logistic {
            a: check_slope(a)?,
            b: check_location("b", b)?,
            c: 0.0,
            d: 1.0,
        }))
    }
    /// 2PL item (a < 0: discriminates negatively).
    pub fn two_pl(a: f64, b: f64) -> Result<Self, ModelError> {
        Ok(ItemModel::TwoPl(Logistic {
            a: check_dichotomous_slope(a)?,
            b: check_location("b", b)?,
            c: 0.0,
            d: 1.0,
        }))
    }
    /// 3PL item with lower asymptote `c` ∈ [0, 1).
    pub fn three_pl(a: f64, b: f64, c: f64) -> Result<Self, ModelError> {
        let (a, b) = (check_dichotomous_slope(a)?, check_location("b", b)?);
        check_asymptotes(c, 1.0)?;
        Ok(ItemModel::ThreePl(Logistic { a, b, c, d: 1.0 }))
    }
    /// 4PL item with asymptotes 0 ≤ c < d ≤ 1.
    pub fn four_pl(a: f64, b: f64, c: f64, d: f64) -> Result<Self, ModelError> {
        let (a, b) = (check_dichotomous_slope(a)?, check_location("b", b)?);
        check_asymptotes(c, d)?;
        Ok(ItemModel::FourPl(Logistic { a, b, c, d }))
    }
    /// Graded response item with strictly increasing thresholds.
    pub fn graded(a: f64, thresholds: Vec<f64>) -> Result<Self, ModelError> {
        let a = check_slope(a)?;
        check_thresholds(&thresholds, true)?;
        Ok(ItemModel::Graded(Polytomous { a, thresholds }))
    }
    /// Generalised partial credit item (thresholds may be in any order: reversals are legitimate).
    pub fn gpcm(a: f64, thresholds: Vec<f64>) -> Result<Self, ModelError> {
        let a = check_slope(a)?;
        check_thresholds(&thresholds, false)?;
        Ok(ItemModel::Gpcm(Polytomous { a, thresholds }))
    }

    /// Build a model of `kind` from named parameters; parameters a model does not have must be `None`
    /// (the Rasch slope may be given as 1, the 3PL upper asymptote as 1).
    pub fn from_parts(
        kind: ModelKind,
        a: Option<f64>,
        b: Option<f64>,
        c: Option<f64>,
        d: Option<f64>,
        thresholds: Vec<f64>,
    ) -> Result<Self, PartsError> {
        let need = |v: Option<f64>, f: &'static str| v.ok_or(PartsError::Missing(f));
        let forbid = |v: Option<f64>, f: &'static str, allowed: Option<f64>| match (v, allowed) {
            (None, _) => Ok(()),
            (Some(x), Some(ok)) if x == ok => Ok(()),
            (Some(_), _) => Err(PartsError::NotAParameter(f, kind)),
        };
        if kind.is_polytomous() {
            forbid(b, "b", None)?;
            forbid(c, "c", None)?;
            forbid(d, "d", None)?;
            let a = need(a, "a")?;
            let m = if kind == ModelKind::Graded {
                ItemModel::graded(a, thresholds)
            } else {
                ItemModel::gpcm(a, thresholds)
            };
            return m.map_err(PartsError::Invalid);
        }
        if !thresholds.is_empty() {
            return Err(PartsError::NotAParameter("b1", kind));
        }
        let b = need(b, "b")?;
        let m = match kind {
            ModelKind::Rasch => {
                forbid(a, "a", Some(1.0))?;
                forbid(c, "c", Some(0.0))?;
                forbid(d, "d", Some(1.0))?;
                ItemModel::rasch(b)
            }
            ModelKind::OnePl | ModelKind::TwoPl => {
                forbid(c, "c", Some(0.0))?;
                forbid(d, "d", Some(1.0))?;
                let a = need(a, "a")?;
                if kind == ModelKind::OnePl {
                    ItemModel::one_pl(a, b)
                } else {
                    ItemModel::two_pl(a, b)
                }
            }
            ModelKind::ThreePl => {
                forbid(d, "d", Some(1.0))?;
                ItemModel::three_pl(need(a, "a")?, b, need(c, "c")?)
            }
            ModelKind::FourPl => ItemModel::four_pl(need(a, "a")?, b, need(c, "c")?, need(d, "d")?),
            ModelKind::Graded | ModelKind::Gpcm => unreachable!("handled above"),
        };
        m.map_err(PartsError::Invalid)
    }

    /// Which model this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            ItemModel::Rasch(_) => ModelKind::Rasch,
            ItemModel::OnePl(_) => ModelKind::OnePl,
            ItemModel::TwoPl(_) => ModelKind::TwoPl,
            ItemModel::ThreePl(_) => ModelKind::ThreePl,
            ItemModel::FourPl(_) => ModelKind::FourPl,
            ItemModel::Graded(_) => ModelKind::Graded,
            ItemModel::Gpcm(_) => ModelKind::Gpcm,
        }
    }

    /// The logistic parameters of a dichotomous item, `None` for polytomous ones.
    pub fn logistic(&self) -> Option<&Logistic> {
        match self {
            ItemModel::Rasch(l)
            | ItemModel::OnePl(l)
            | ItemModel::TwoPl(l)
            | ItemModel::ThreePl(l)
            | ItemModel::FourPl(l) => Some(l),
            ItemModel::Graded(_) | ItemModel::Gpcm(_) => None,
        }
    }

    /// The parameters of a polytomous item, `None` for dichotomous ones.
    pub fn polytomous(&self) -> Option<&Polytomous> {
        match self {
            ItemModel::Graded(p) | ItemModel::Gpcm(p) => Some(p),
            _ => None,
        }
    }

    /// The log-odds of category `k` against category 0 as a line in θ, for the models of the
    /// exponential family: log P_k(θ) − log P_0(θ) = α_k θ + β_k. For a logistic item without
    /// asymptotes (Rasch, 1PL, 2PL, or a 3PL/4PL with c = 0 and d = 1) α_1 = a and β_1 = −ab; for the
    /// GPCM (Muraki 1992), log P_k − log P_0 = Σ_{v ≤ k} a(θ − b_v), so α_k = ka and
    /// β_k = −a Σ_{v ≤ k} b_v. The likelihood of a pattern then depends on the answers only through
    /// the weighted score Σ_j α_{j,x_j} (the Rasch and 2PL sufficient statistic, Andersen 1977), which
    /// is what makes batch EAP cheap. `None` for the graded model, for items with a guessing or
    /// slipping asymptote, and for `k` out of range. (α_0, β_0) = (0, 0).
    pub fn log_odds_line(&self, k: usize) -> Option<(f64, f64)> {
        if k >= self.categories() {
            return None;
        }
        match self {
            ItemModel::Graded(_) => None,
            ItemModel::Gpcm(p) => {
                let sum_b: f64 = p.thresholds[..k].iter().sum();
                Some((k as f64 * p.a, -p.a * sum_b))
            }
            _ => {
                let l = self.logistic()?;
                (l.c == 0.0 && l.d == 1.0).then(|| if k == 0 { (0.0, 0.0) } else { (l.a, -l.a * l.b) })
            }
        }
    }

    /// Slope a (1 for Rasch).
    pub fn slope(&self) -> f64 {
        match self.logistic() {
            Some(l) => l.a,
            None => self.polytomous().map_or(1.0, |p| p.a),
        }
    }

    /// A single location summary: b for dichotomous items, the mean threshold for polytomous ones.
    pub fn location(&self) -> f64 {
        match self.logistic() {
            Some(l) => l.b,
            None => self.polytomous().map_or(0.0, |p| {
                p.thresholds.iter().sum::<f64>() / p.thresholds.len() as f64
            }),
        }
    }

    /// Number of response categories (2 for dichotomous models).
    pub fn categories(&self) -> usize {
        self.polytomous().map_or(2, Polytomous::categories)
    }

    /// The estimated parameters in file order with their names: `a`, `b`, `c`, `d`, `b1`, ….
    /// Rasch reports only `b`; `1pl` reports its shared `a`.
    pub fn named_parameters(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        match self {
            ItemModel::Rasch(l) => out.push(("b".into(), l.b)),
            ItemModel::OnePl(l) | ItemModel::TwoPl(l) => {
                out.push(("a".into(), l.a));
                out.push(("b".into(), l.b));
            }
            ItemModel::ThreePl(l) => {
                out.extend([("a".into(), l.a), ("b".into(), l.b), ("c".into(), l.c)]);
            }
            ItemModel::FourPl(l) => {
                out.extend([
                    ("a".into(), l.a),
                    ("b".into(), l.b),
                    ("c".into(), l.c),
                    ("d".into(), l.d),
                ]);
            }
            ItemModel::Graded(p) | ItemModel::Gpcm(p) => {
                out.push(("a".into(), p.a));
                for (k, t) in p.thresholds.iter().enumerate() {
                    out.push((format!("b{}", k + 1), *t));
                }
            }
        }
        out
    }
}

/// Why [`ItemModel::from_parts`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PartsError {
    /// A parameter the model needs is absent.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// A parameter was given that the model does not have.
    #[error("{0} is not a parameter of the {1} model")]
    NotAParameter(&'static str, ModelKind),
    /// The parameters are present but invalid.
    #[error(transparent)]
    Invalid(#[from] ModelError),
}

impl PartsError {
    /// The field the error is about.
    pub fn field(&self) -> String {
        match self {
            PartsError::Missing(f) | PartsError::NotAParameter(f, _) => (*f).to_string(),
            PartsError::Invalid(e) => e.field(),
        }
    }
}

/// Serialised form of a model: `{"model": "2pl", "a": 1.2, "b": 0.3}`, polytomous thresholds as
/// `"b": [b1, b2, …]`. Deserialisation goes through [`ItemModel::from_parts`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelRepr {
    model: ModelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Location {
    One(f64),
    Many(Vec<f64>),
}

impl Serialize for ItemModel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let repr = match self {
            ItemModel::Graded(p) | ItemModel::Gpcm(p) => ModelRepr {
                model: self.kind(),
                a: Some(p.a),
                b: Some(Location::Many(p.thresholds.clone())),
                c: None,
                d: None,
            },
            ItemModel::Rasch(l) => ModelRepr {
                model: ModelKind::Rasch,
                a: None,
                b: Some(Location::One(l.b)),
                c: None,
                d: None,
            },
            ItemModel::OnePl(l) | ItemModel::TwoPl(l) | ItemModel::ThreePl(l) | ItemModel::FourPl(l) => {
                let kind = self.kind();
                ModelRepr {
                    model: kind,
                    a: Some(l.a),
                    b: Some(Location::One(l.b)),
                    c: matches!(kind, ModelKind::ThreePl | ModelKind::FourPl).then_some(l.c),
                    d: (kind == ModelKind::FourPl).then_some(l.d),
                }
            }
        };
        repr.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ItemModel {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let r = ModelRepr::deserialize(de)?;
        let (b, thresholds) = match r.b {
            None => (None, Vec::new()),
            Some(Location::One(b)) if !r.model.is_polytomous() => (Some(b), Vec::new()),
            Some(Location::Many(t)) if r.model.is_polytomous() => (None, t),
            Some(_) if r.model.is_polytomous() => {
                return Err(serde::de::Error::custom(format!(
                    "field b of a {} item must be a list of thresholds",
                    r.model
                )));
            }
            Some(_) => {
                return Err(serde::de::Error::custom(format!(
                    "field b of a {} item must be a single number",
                    r.model
                )));
            }
        };
        ItemModel::from_parts(r.model, r.a, b, r.c, r.d, thresholds).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid {} parameters, field {}: {e}",
                r.model,
                e.field()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_reject_invalid_parameters() {
        assert!(matches!(
            ItemModel::two_pl(f64::NAN, 0.0),
            Err(ModelError::UnusableSlope(_))
        ));
        assert!(matches!(
            ItemModel::two_pl(f64::INFINITY, 0.0),
            Err(ModelError::UnusableSlope(_))
        ));
        assert!(matches!(
            ItemModel::two_pl(0.0, 0.0),
            Err(ModelError::UnusableSlope(_))
        ));
        // An item that discriminates negatively is a valid 2PL/3PL/4PL item (as in mirt), not a
        // valid 1PL, graded or GPCM one.
        assert!(ItemModel::two_pl(-1.0, 0.0).is_ok() && ItemModel::three_pl(-1.0, 0.0, 0.2).is_ok());
        assert!(matches!(
            ItemModel::one_pl(-1.0, 0.0),
            Err(ModelError::InvalidSlope(_))
        ));
        assert!(matches!(
            ItemModel::graded(-1.0, vec![0.0]),
            Err(ModelError::InvalidSlope(_))
        ));
        assert!(matches!(
            ItemModel::two_pl(0.0, 0.0),
            Err(ModelError::UnusableSlope(_))
        ));
        assert!(ItemModel::two_pl(1.0, f64::NAN).is_err());
        assert!(matches!(
            ItemModel::three_pl(1.0, 0.0, -0.1),
            Err(ModelError::InvalidLowerAsymptote { .. })
        ));
        assert!(ItemModel::three_pl(1.0, 0.0, 1.0).is_err());
        assert!(ItemModel::four_pl(1.0, 0.0, 0.5, 0.5).is_err());
        assert!(ItemModel::four_pl(1.0, 0.0, 0.6, 0.5).is_err());
        assert!(ItemModel::four_pl(1.0, 0.0, 0.1, 1.2).is_err());
        assert!(ItemModel::four_pl(1.0, 0.0, 0.1, 0.9).is_ok());
        assert!(matches!(
            ItemModel::graded(1.0, vec![0.0, -1.0]),
            Err(ModelError::UnorderedThresholds { k: 2, .. })
        ));
        assert!(ItemModel::graded(1.0, vec![0.0, 0.0]).is_err());
        assert!(matches!(
            ItemModel::graded(1.0, vec![]),
            Err(ModelError::TooFewCategories)
        ));
        assert!(
            ItemModel::gpcm(1.0, vec![0.5, -1.0]).is_ok(),
            "gpcm reversals are allowed"
        );
    }

    #[test]
    fn json_goes_through_validation() {
        let ok: ItemModel = serde_json::from_str(r#"{"model":"3pl","a":1.5,"b":0.2,"c":0.2}"#).unwrap();
        assert_eq!(ok.kind(), ModelKind::ThreePl);
        let bad = serde_json::from_str::<ItemModel>(r#"{"model":"3pl","a":1.5,"b":0.2,"c":1.2}"#);
        assert!(bad.unwrap_err().to_string().contains("field c"));
        let bad = serde_json::from_str::<ItemModel>(r#"{"model":"graded","a":1.5,"b":[1,0]}"#);
        assert!(bad.unwrap_err().to_string().contains("b2"));
        let bad = serde_json::from_str::<ItemModel>(r#"{"model":"2pl","a":1.5,"b":0.2,"c":0.1}"#);
        assert!(bad.is_err());
        let bad = serde_json::from_str::<ItemModel>(r#"{"model":"5pl","a":1.5,"b":0.2}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn json_round_trip() {
        for m in [
            ItemModel::rasch(0.3).unwrap(),
            ItemModel::one_pl(1.3, 0.3).unwrap(),
            ItemModel::two_pl(1.3, -0.3).unwrap(),
            ItemModel::three_pl(1.3, -0.3, 0.2).unwrap(),
            ItemModel::four_pl(1.3, -0.3, 0.2, 0.95).unwrap(),
            ItemModel::graded(1.1, vec![-1.0, 0.5, 2.0]).unwrap(),
            ItemModel::gpcm(0.9, vec![0.4, -1.0]).unwrap(),
        ] {
            let s = serde_json::to_string(&m).unwrap();
            let back: ItemModel = serde_json::from_str(&s).unwrap();
            assert_eq!(back, m, "{s}");
        }
    }

    proptest::proptest! {
        /// The log-odds line equals log P_k − log P_0 computed from the response function, for every
        /// exponential-family model and category; the other models have none.
        #[test]
        fn the_log_odds_line_is_the_log_odds(
            a in 0.2f64..3.0, b in -3.0f64..3.0, step in 0.1f64..1.5, theta in -6.0f64..6.0,
        ) {
            use crate::irt::ResponseFunction;
            let thresholds = vec![b - step, b, b + 2.0 * step];
            let linear = [
                ItemModel::rasch(b).unwrap(),
                ItemModel::one_pl(a, b).unwrap(),
                ItemModel::two_pl(-a, b).unwrap(),
                ItemModel::three_pl(a, b, 0.0).unwrap(),
                ItemModel::gpcm(a, thresholds.clone()).unwrap(),
            ];
            for m in &linear {
                for k in 0..m.categories() {
                    let (alpha, beta) = m.log_odds_line(k).unwrap();
                    let direct = m.log_prob(theta, k) - m.log_prob(theta, 0);
                    proptest::prop_assert!(
                        (alpha * theta + beta - direct).abs() <= 1e-12 * (1.0 + direct.abs()),
                        "{m:?} k={k}: {} vs {direct}", alpha * theta + beta
                    );
                }
                proptest::prop_assert_eq!(m.log_odds_line(m.categories()), None);
            }
            for m in [
                ItemModel::three_pl(a, b, 0.2).unwrap(),
                ItemModel::four_pl(a, b, 0.0, 0.9).unwrap(),
                ItemModel::graded(a, thresholds).unwrap(),
            ] {
                proptest::prop_assert_eq!(m.log_odds_line(1), None);
            }
        }

        /// `log_prob` alone (what grid tables are built from) is `log_lik_terms`' log P bit for bit,
        /// for every dichotomous model, guessing and slipping included, far into the tails.
        #[test]
        fn log_prob_alone_or_in_pairs_is_the_terms_log_prob_bit_for_bit(
            a in 0.05f64..4.0, b in -5.0f64..5.0, c in 0.0f64..0.4, d in 0.6f64..1.0,
            theta in -60.0f64..60.0,
        ) {
            use crate::irt::ResponseFunction;
            for m in [
                ItemModel::rasch(b).unwrap(),
                ItemModel::two_pl(a, b).unwrap(),
                ItemModel::two_pl(-a, b).unwrap(),
                ItemModel::three_pl(a, b, c).unwrap(),
                ItemModel::four_pl(a, b, c, d).unwrap(),
                ItemModel::four_pl(a, b, 0.0, d).unwrap(),
                ItemModel::four_pl(a, b, c, 1.0).unwrap(),
            ] {
                let pair = crate::irt::logistic_log_probs(m.logistic().unwrap(), theta);
                for (k, both) in [pair.0, pair.1].into_iter().enumerate() {
                    let (alone, terms) = (m.log_prob(theta, k), m.log_lik_terms(theta, k).log_p);
                    proptest::prop_assert_eq!(alone.to_bits(), terms.to_bits(), "{:?} k={}", m, k);
                    proptest::prop_assert_eq!(both.to_bits(), terms.to_bits(), "{:?} k={} (pair)", m, k);
                }
            }
        }
    }
}
