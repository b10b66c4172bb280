//! Levels: from θ to what people act on — a level 0 … L, its label, the probability of each level and
//! a PIX-style score.
//!
//! A [`LevelMap`] holds strictly increasing cut scores c_1 < … < c_L on θ and L + 1 labels; the level of
//! θ is the number of cuts ≤ θ (`FORMATS.md`). PIX's labels are the default: 0 pre-beginner, 1–2
//! novice, 3–4 independent, 5–6 advanced, 7–8 expert. [`Levels`] is the form stored in a bank or a
//! standalone `LEVELS.json`: one map, optionally overridden per competence.
//!
//! Level probabilities: given θ̂ and its SE, P(level k) = Φ((c_{k+1} - θ̂)/SE) - Φ((c_k - θ̂)/SE) (the normal
//! approximation to the posterior, with c_0 = -∞, c_{L+1} = +∞); given a posterior on a grid, the
//! posterior mass of each band.
//!
//! Score (in the spirit of PIX's 0–1024 "pix"): each competence is worth 8 points per level, interpolated
//! linearly within the band — 8·(k + (θ - c_k)/(c_{k+1} - c_k)) in an interior band k, 0 … 8 below c_1
//! over a band as wide as the first interior one, and the full 8·L at or above c_L — so with 8 levels a
//! competence is worth up to 64 points and 16 competences up to 1024.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An invalid level map.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LevelError {
    /// JSON that is not a level map (unknown field, wrong type; the message names it).
    #[error("{0}")]
    Shape(String),
    /// No cut.
    #[error("a level map needs at least one cut")]
    NoCuts,
    /// Cuts not finite or not strictly increasing.
    #[error(
        "cuts must be finite and strictly increasing: cut {index} ({value}) is not above the previous one"
    )]
    Unordered {
        /// 1-based index of the offending cut.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A cut is not finite.
    #[error("cut {index} is not finite ({value})")]
    NotFinite {
        /// 1-based index.
        index: usize,
        /// Value.
        value: f64,
    },
    /// Wrong number of labels.
    #[error("{cuts} cuts need {} labels, got {labels}", cuts + 1)]
    Labels {
        /// Number of cuts.
        cuts: usize,
        /// Number of labels.
        labels: usize,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelMapRepr {
    cuts: Vec<f64>,
    labels: Vec<String>,
}

/// Cut scores and labels, valid by construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LevelMapRepr")]
pub struct LevelMap {
    cuts: Vec<f64>,
    labels: Vec<String>,
}

impl TryFrom<LevelMapRepr> for LevelMap {
    type Error = LevelError;
    fn try_from(r: LevelMapRepr) -> Result<Self, LevelError> {
        LevelMap::new(r.cuts, r.labels)
    }
}

/// PIX's labels of levels 0 … 8.
pub const PIX_LABELS: [&str; 9] = [
    "pre-beginner",
    "novice",
    "novice",
    "independent",
    "independent",
    "advanced",
    "advanced",
    "expert",
    "expert",
];

/// Points per level in the score.
pub const POINTS_PER_LEVEL: f64 = 8.0;

/// Standard normal CDF.
fn phi(x: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().cdf(x)
}

impl LevelMap {
    /// Validate and build.
    pub fn new(cuts: Vec<f64>, labels: Vec<String>) -> Result<Self, LevelError> {
        if cuts.is_empty() {
            return Err(LevelError::NoCuts);
        }
        for (i, &c) in cuts.iter().enumerate() {
            if !c.is_finite() {
                return Err(LevelError::NotFinite {
                    index: i + 1,
                    value: c,
                });
            }
            if i > 0 && c <= cuts[i - 1] {
                return Err(LevelError::Unordered {
                    index: i + 1,
                    value: c,
                });
            }
        }
        if labels.len() != cuts.len() + 1 {
            return Err(LevelError::Labels {
                cuts: cuts.len(),
                labels: labels.len(),
            });
        }
        Ok(LevelMap { cuts, labels })
    }

    /// PIX's eight levels with illustrative cuts for a N(0, 1) population: -2.5, -1.75, -1, -0.25,
    /// 0.5, 1.25, 2, 2.75 (a band of 0.75 logit each; calibrate your own with standard setting).
    pub fn pix() -> Self {
        let cuts = (0..8).map(|k| -2.5 + 0.75 * k as f64).collect();
        LevelMap::new(cuts, PIX_LABELS.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|e| unreachable!("the PIX map is valid: {e}"))
    }

    /// The cuts.
    pub fn cuts(&self) -> &[f64] {
        &self.cuts
    }
    /// The labels.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    /// Number of levels (cuts + 1).
    pub fn n_levels(&self) -> usize {
        self.labels.len()
    }
    /// The highest level.
    pub fn top(&self) -> usize {
        self.cuts.len()
    }

    /// The level of θ: the number of cuts ≤ θ (−∞ is level 0, +∞ the top level).
    pub fn level(&self, theta: f64) -> usize {
        self.cuts.partition_point(|&c| c <= theta)
    }

    /// The label of a level.
    pub fn label(&self, level: usize) -> &str {
        &self.labels[level.min(self.top())]
    }

    /// P(level k | θ̂, SE) under the normal approximation; a point mass when SE is 0, NaN or infinite θ.
    pub fn probabilities(&self, theta: f64, se: f64) -> Vec<f64> {
        let n = self.n_levels();
        if !(theta.is_finite() && se.is_finite() && se > 0.0) {
            let mut p = vec![0.0; n];
            p[self.level(theta)] = 1.0;
            return p;
        }
        let cdf = |k: usize| -> f64 {
            // P(θ < c_k), with c_0 = -∞ and c_{L+1} = +∞.
            if k == 0 {
                0.0
            } else if k > self.top() {
                1.0
            } else {
                phi((self.cuts[k - 1] - theta) / se)
            }
        };
        (0..n).map(|k| (cdf(k + 1) - cdf(k)).max(0.0)).collect()
    }

    /// Posterior mass of each level band, from grid points and normalised weights.
    pub fn probabilities_on_grid(&self, points: &[f64], weights: &[f64]) -> Vec<f64> {
        let mut p = vec![0.0; self.n_levels()];
        for (&t, &w) in points.iter().zip(weights) {
            p[self.level(t)] += w;
        }
        p
    }

    /// Score of one competence: 8 points per level, interpolated within the band (see module docs).
    pub fn score(&self, theta: f64) -> f64 {
        let k = self.level(theta);
        let top = self.top();
        if k >= top {
            return POINTS_PER_LEVEL * top as f64;
        }
        let (lo, hi) = if k == 0 {
            let width = if top >= 2 {
                self.cuts[1] - self.cuts[0]
            } else {
                1.0
            };
            (self.cuts[0] - width, self.cuts[0])
        } else {
            (self.cuts[k - 1], self.cuts[k])
        };
        let frac = ((theta - lo) / (hi - lo)).clamp(0.0, 1.0);
        POINTS_PER_LEVEL * (k as f64 + frac)
    }

    /// Maximum score of one competence.
    pub fn max_score(&self) -> f64 {
        POINTS_PER_LEVEL * self.top() as f64
    }
}

impl Default for LevelMap {
    fn default() -> Self {
        LevelMap::pix()
    }
}

/// A level map with optional per-competence overrides (`{"cuts", "labels", "competences": {id: map}}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    /// The map of every competence without an override.
    #[serde(flatten)]
    pub default: LevelMap,
    /// Per-competence maps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub competences: BTreeMap<String, LevelMap>,
}

impl Levels {
    /// The map of competence `id` (its override, else the default).
    pub fn for_competence(&self, id: &str) -> &LevelMap {
        self.competences.get(id).unwrap_or(&self.default)
    }

    /// Parse from JSON, with the error naming the problem.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, LevelError> {
        Levels::deserialize(value).map_err(|e| LevelError::Shape(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_is_the_number_of_cuts_at_or_below() {
        let m = LevelMap::pix();
        assert_eq!(m.level(-2.5), 1, "θ exactly on a cut is in the upper level");
        assert_eq!(m.level(-2.500_000_1), 0);
        assert_eq!(m.level(f64::NEG_INFINITY), 0);
        assert_eq!(m.level(f64::INFINITY), 8);
        assert_eq!(m.level(2.75), 8);
        assert_eq!(m.label(3), "independent");
    }

    #[test]
    fn invalid_maps_are_rejected() {
        let l = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert!(matches!(LevelMap::new(vec![], l(1)), Err(LevelError::NoCuts)));
        assert!(matches!(
            LevelMap::new(vec![0.0, 0.0], l(3)),
            Err(LevelError::Unordered { index: 2, .. })
        ));
        assert!(matches!(
            LevelMap::new(vec![1.0, 0.0], l(3)),
            Err(LevelError::Unordered { .. })
        ));
        assert!(matches!(
            LevelMap::new(vec![0.0, f64::NAN], l(3)),
            Err(LevelError::NotFinite { .. })
        ));
        assert!(matches!(
            LevelMap::new(vec![0.0, 1.0], l(2)),
            Err(LevelError::Labels { .. })
        ));
        let e =
            serde_json::from_str::<LevelMap>(r#"{"cuts": [1, 0], "labels": ["a", "b", "c"]}"#).unwrap_err();
        assert!(e.to_string().contains("strictly increasing"), "{e}");
    }

    #[test]
    fn probabilities_sum_to_one_and_score_is_monotone() {
        let m = LevelMap::pix();
        let mut last = -1.0;
        for i in 0..=200 {
            let t = -5.0 + i as f64 * 0.05;
            let p = m.probabilities(t, 0.4);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let s = m.score(t);
            assert!(s >= last && (0.0..=64.0).contains(&s));
            last = s;
        }
        assert_eq!(m.score(10.0), 64.0);
        assert_eq!(m.score(-10.0), 0.0);
        assert_eq!(m.score(-2.5), 8.0);
    }
}
