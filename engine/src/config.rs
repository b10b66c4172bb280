//! Adaptive-session configuration: estimation, item selection, exposure control, content balancing,
//! stopping and start. A plain serde value (read from `--config SESSION.json`), validated against the
//! bank before a session runs (as linfa validates hyper-parameters before fitting).
//!
//! Every field has a default, so `{}` is a valid configuration: EAP on 61 points in [-6, 6],
//! maximum Fisher information, no exposure control, at most 40 items, stop at SE ≤ 0.3, start at θ = 0.

use crate::estimate::{EstimationError, EstimatorConfig};
use etalon_items::Bank;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the next item is chosen among the eligible ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectionRule {
    /// Maximum Fisher information at θ̂ (Lord 1980).
    #[default]
    Mfi,
    /// Maximum posterior-weighted information ∫ I_j(θ) π(θ | x) dθ (van der Linden 1998).
    Mpwi,
    /// Posterior-weighted Kullback–Leibler information ∫ KL_j(θ̂ ‖ θ) π(θ | x) dθ (Chang & Ying 1996).
    Kl,
    /// Closest difficulty to θ̂ (Urry 1970).
    Urry,
    /// Uniformly at random.
    Random,
}

impl SelectionRule {
    /// Parse `mfi`, `mpwi`, `kl`, `urry`, `random`.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase())).ok()
    }
}

/// Exposure control applied to the ranking of the selection rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Exposure {
    /// Always the best item.
    #[default]
    None,
    /// Uniformly among the `k` best (Kingsbury & Zara 1989).
    Randomesque {
        /// How many of the best items to draw from.
        k: usize,
    },
    /// Sympson–Hetter (1985): the selected item is administered with probability equal to its
    /// exposure parameter (bank field `exposure`, 1 when absent); a rejected item is set aside for the
    /// rest of the test and the next best is tried.
    SympsonHetter,
    /// PIX's weighted draw among the five best, with probabilities 0.51, 0.25, 0.12, 0.06, 0.06
    /// (renormalised when fewer items remain).
    Pix,
}

/// Selection: rule and exposure control.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionConfig {
    /// The rule.
    pub rule: SelectionRule,
    /// Exposure control.
    pub exposure: Exposure,
    /// Also administer items that discriminate negatively (slope < 0; left out by default: such an
    /// item is most often miskeyed, and its information says nothing of that).
    pub allow_negative_slopes: bool,
}

impl SelectionConfig {
    /// The status an adaptive test gives `item`: its own, except that an item discriminating
    /// negatively counts as retired unless [`SelectionConfig::allow_negative_slopes`].
    pub fn status_of(&self, item: &etalon_items::Item) -> etalon_items::Status {
        if item.parameters.slope() < 0.0 && !self.allow_negative_slopes {
            etalon_items::Status::Retired
        } else {
            item.status
        }
    }
}

/// Content balancing over the framework's competences (Kingsbury & Zara 1989, style).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentConfig {
    /// Competences the test covers (empty: every competence of the bank, or no balancing if items
    /// carry none).
    pub competences: Vec<String>,
    /// Minimum number of items per competence. Precision and classification stopping wait while a
    /// minimum is unmet and can still be met (the items then come from that competence);
    /// `stopping.max_items` does not wait.
    pub min_items: BTreeMap<String, usize>,
    /// Maximum number of items per competence.
    pub max_items: BTreeMap<String, usize>,
    /// Target proportions per competence: the next item comes from the competence furthest below its
    /// target (Kingsbury–Zara).
    pub target_proportions: BTreeMap<String, f64>,
    /// Visit every competence of the test before repeating one.
    pub visit_all: bool,
    /// Avoid two consecutive items of the same competence when another is possible.
    pub avoid_consecutive: bool,
    /// Tags starting with this prefix name a skill: at most one item per skill in a test
    /// (PIX's one question per skill). Empty: no such rule.
    pub one_per_tag_prefix: String,
    /// 1-based positions at which an unscored `pretest` item is seeded, when one is available.
    pub pretest_positions: Vec<usize>,
}

/// Classification stopping: stop when the confidence interval lies within one band of the cuts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// Strictly increasing cut scores on θ.
    pub cuts: Vec<f64>,
    /// Two-sided confidence level of the interval θ̂ ± z·SE (default 0.95).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_confidence() -> f64 {
    0.95
}

/// When the test ends (rules combine: the first that holds stops the test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoppingConfig {
    /// Maximum number of scored items.
    pub max_items: usize,
    /// Minimum number of scored items before any other rule may stop the test.
    pub min_items: usize,
    /// Stop when the SE is at or below this value.
    pub se_target: Option<f64>,
    /// Stop when the θ interval is within one band of these cuts.
    pub classification: Option<Classification>,
}

impl Default for StoppingConfig {
    fn default() -> Self {
        StoppingConfig {
            max_items: 40,
            min_items: 1,
            se_target: Some(0.3),
            classification: None,
        }
    }
}

/// Where the test starts; the first item is chosen by the selection rule at that θ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
pub enum StartConfig {
    /// A fixed θ.
    Fixed {
        /// The starting θ.
        theta: f64,
    },
    /// θ uniform in [lower, upper], drawn from the session's RNG.
    Random {
        /// Lower end.
        lower: f64,
        /// Upper end.
        upper: f64,
    },
}

impl Default for StartConfig {
    fn default() -> Self {
        StartConfig::Fixed { theta: 0.0 }
    }
}

/// Everything a session needs besides the bank and the seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Ability estimation (method, prior, grid, bounds).
    pub estimator: EstimatorConfig,
    /// Item selection and exposure control.
    pub selection: SelectionConfig,
    /// Content balancing.
    pub content: ContentConfig,
    /// Stopping rules.
    pub stopping: StoppingConfig,
    /// Start.
    pub start: StartConfig,
}

/// A configuration that cannot run on this bank.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Invalid estimator settings.
    #[error("estimator: {0}")]
    Estimator(#[from] EstimationError),
    /// `stopping.max_items` is 0.
    #[error("stopping.max_items must be at least 1")]
    ZeroMaxItems,
    /// `stopping.min_items` above `stopping.max_items`.
    #[error("stopping.min_items ({min}) exceeds stopping.max_items ({max})")]
    MinAboveMax {
        /// The minimum.
        min: usize,
        /// The maximum.
        max: usize,
    },
    /// `stopping.se_target` not finite and positive.
    #[error("stopping.se_target must be finite and > 0 (got {0})")]
    SeTarget(f64),
    /// Classification cuts not finite and strictly increasing.
    #[error("stopping.classification.cuts must be finite and strictly increasing")]
    Cuts,
    /// Classification confidence outside (0, 1).
    #[error("stopping.classification.confidence must be in (0, 1) (got {0})")]
    Confidence(f64),
    /// Randomesque with k = 0.
    #[error("selection.exposure: randomesque k must be at least 1")]
    RandomesqueK,
    /// A fixed start that is not finite.
    #[error("start.theta must be finite (got {0})")]
    StartTheta(f64),
    /// A random start interval that is not finite or reversed.
    #[error("start: need finite lower ≤ upper (got [{lower}, {upper}])")]
    StartRange {
        /// Lower end.
        lower: f64,
        /// Upper end.
        upper: f64,
    },
    /// A content rule names a competence no item measures.
    #[error("content: no item of the bank measures competence `{0}`")]
    UnknownCompetence(String),
    /// A competence's minimum above its maximum.
    #[error("content: competence `{competence}`: min_items {min} > max_items {max}")]
    CompetenceMinAboveMax {
        /// Competence id.
        competence: String,
        /// Its minimum.
        min: usize,
        /// Its maximum.
        max: usize,
    },
    /// A competence's minimum exceeds its active items.
    #[error(
        "content.min_items: competence `{competence}` needs {min} items but the bank has {available} active"
    )]
    MinimumUnreachable {
        /// Competence id.
        competence: String,
        /// Its minimum.
        min: usize,
        /// Active items measuring it.
        available: usize,
    },
    /// The minima add up to more than the test length.
    #[error(
        "content.min_items: the minimum items per competence add up to {total}, more than stopping.max_items {max}"
    )]
    MinimaExceedLength {
        /// Sum of the minima.
        total: usize,
        /// The test length.
        max: usize,
    },
    /// A negative or non-finite target proportion.
    #[error("content.target_proportions: `{competence}` must be finite and ≥ 0 (got {value})")]
    Proportion {
        /// Competence id.
        competence: String,
        /// The value.
        value: f64,
    },
    /// Target proportions that do not sum to 1.
    #[error("content.target_proportions must sum to 1 (got {0})")]
    ProportionSum(f64),
    /// A pretest position 0.
    #[error("content.pretest_positions are 1-based (got 0)")]
    PretestZero,
    /// The bank has no item a session could select.
    #[error("the bank has no active item")]
    NoActiveItem,
}

impl ConfigError {
    /// The configuration field at fault (dotted path), when there is one.
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            ConfigError::Estimator(_) => "estimator",
            ConfigError::ZeroMaxItems | ConfigError::MinAboveMax { .. } => "stopping.max_items",
            ConfigError::SeTarget(_) => "stopping.se_target",
            ConfigError::Cuts => "stopping.classification.cuts",
            ConfigError::Confidence(_) => "stopping.classification.confidence",
            ConfigError::RandomesqueK => "selection.exposure",
            ConfigError::StartTheta(_) | ConfigError::StartRange { .. } => "start",
            ConfigError::UnknownCompetence(_) => "content",
            ConfigError::CompetenceMinAboveMax { .. }
            | ConfigError::MinimumUnreachable { .. }
            | ConfigError::MinimaExceedLength { .. } => "content.min_items",
            ConfigError::Proportion { .. } | ConfigError::ProportionSum(_) => "content.target_proportions",
            ConfigError::PretestZero => "content.pretest_positions",
            ConfigError::NoActiveItem => return None,
        })
    }
}

impl SessionConfig {
    /// Check the configuration against `bank`.
    pub fn validate(&self, bank: &Bank) -> Result<(), ConfigError> {
        self.estimator.validate()?;
        let s = &self.stopping;
        if s.max_items == 0 {
            return Err(ConfigError::ZeroMaxItems);
        }
        if s.min_items > s.max_items {
            return Err(ConfigError::MinAboveMax {
                min: s.min_items,
                max: s.max_items,
            });
        }
        if let Some(t) = s.se_target
            && !(t.is_finite() && t > 0.0)
        {
            return Err(ConfigError::SeTarget(t));
        }
        if let Some(c) = &s.classification {
            if c.cuts.is_empty()
                || c.cuts.windows(2).any(|w| w[0] >= w[1])
                || c.cuts.iter().any(|x| !x.is_finite())
            {
                return Err(ConfigError::Cuts);
            }
            if !(c.confidence > 0.0 && c.confidence < 1.0) {
                return Err(ConfigError::Confidence(c.confidence));
            }
        }
        if let Exposure::Randomesque { k: 0 } = self.selection.exposure {
            return Err(ConfigError::RandomesqueK);
        }
        match self.start {
            StartConfig::Fixed { theta } if !theta.is_finite() => {
                return Err(ConfigError::StartTheta(theta));
            }
            StartConfig::Random { lower, upper }
                if !(lower.is_finite() && upper.is_finite() && lower <= upper) =>
            {
                return Err(ConfigError::StartRange { lower, upper });
            }
            _ => {}
        }
        let known = |c: &String| bank.items().iter().any(|i| i.competence.as_ref() == Some(c));
        let c = &self.content;
        for id in c
            .competences
            .iter()
            .chain(c.min_items.keys())
            .chain(c.max_items.keys())
            .chain(c.target_proportions.keys())
        {
            if !known(id) {
                return Err(ConfigError::UnknownCompetence(id.clone()));
            }
        }
        for (id, &min) in &c.min_items {
            if let Some(&max) = c.max_items.get(id)
                && min > max
            {
                return Err(ConfigError::CompetenceMinAboveMax {
                    competence: id.clone(),
                    min,
                    max,
                });
            }
            let available = bank
                .items()
                .iter()
                .filter(|i| {
                    i.competence.as_ref() == Some(id)
                        && self.selection.status_of(i) == etalon_items::Status::Active
                })
                .count();
            if available < min {
                return Err(ConfigError::MinimumUnreachable {
                    competence: id.clone(),
                    min,
                    available,
                });
            }
        }
        let min_total: usize = c.min_items.values().sum();
        if min_total > s.max_items {
            return Err(ConfigError::MinimaExceedLength {
                total: min_total,
                max: s.max_items,
            });
        }
        for (id, &p) in &c.target_proportions {
            if !(p.is_finite() && p >= 0.0) {
                return Err(ConfigError::Proportion {
                    competence: id.clone(),
                    value: p,
                });
            }
        }
        if !c.target_proportions.is_empty() {
            let sum: f64 = c.target_proportions.values().sum();
            if (sum - 1.0).abs() > 1e-6 {
                return Err(ConfigError::ProportionSum(sum));
            }
        }
        if c.pretest_positions.contains(&0) {
            return Err(ConfigError::PretestZero);
        }
        if !bank
            .items()
            .iter()
            .any(|i| self.selection.status_of(i) == etalon_items::Status::Active)
        {
            return Err(ConfigError::NoActiveItem);
        }
        Ok(())
    }
}
