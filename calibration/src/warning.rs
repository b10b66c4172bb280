//! What a calibration tells its user besides the parameters: degenerate items, data left out,
//! non-convergence. Typed, so that programs can act on them (which item, which category, how many
//! cycles), serialisable with a `kind` tag, and displayed as one readable sentence each.

use serde::Serialize;
use std::fmt;

/// One thing a user should know about a calibration. Every warning about one item names it in
/// its `item` field ([`Warning::item`]).
///
/// Serialised with a `kind` tag and the fields, e.g.
/// `{"kind": "category_never_observed", "item": "q3", "category": 2, "code": 3}`; displayed as a
/// sentence (`item `q3`: category 2 (code 3) never observed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// Items of the data that nobody answered: left out of the calibration and of the bank.
    ItemsWithoutResponses {
        /// Their ids, in data order.
        items: Vec<String>,
    },
    /// Persons of the data without any answer: left out.
    PersonsWithoutResponses {
        /// How many.
        count: usize,
    },
    /// A response category of an item that no person chose: its parameters rest on the model alone.
    CategoryNeverObserved {
        /// Item id.
        item: String,
        /// The category, 0-based.
        category: usize,
        /// The response code of that category in the data.
        code: i64,
    },
    /// A polytomous item whose responses all carry one code.
    SingleCode {
        /// Item id.
        item: String,
    },
    /// An item whose calibrated slope is (nearly) zero: it barely measures the trait.
    NearZeroSlope {
        /// Item id.
        item: String,
        /// The slope a.
        a: f64,
    },
    /// An item whose slope came out negative: the more able answer it worse, most often because
    /// its key is wrong. Kept as estimated (scoring uses it as mirt does); adaptive tests leave it out.
    NegativeSlope {
        /// Item id.
        item: String,
        /// The slope a (< 0).
        a: f64,
    },
    /// An item whose calibrated difficulty (location) lies beyond ±6: almost everyone answers it
    /// the same way.
    ExtremeDifficulty {
        /// Item id.
        item: String,
        /// The difficulty b (the mean threshold of a polytomous item).
        b: f64,
    },
    /// EM used every cycle allowed without reaching the tolerance.
    NotConverged {
        /// Cycles run.
        cycles: usize,
        /// Largest parameter change of the last cycle.
        last_change: f64,
        /// The tolerance asked for.
        tolerance: f64,
    },
    /// The observer stopped the run (cancelled, time limit): the parameters are those reached.
    Stopped {
        /// Cycles run.
        cycles: usize,
    },
    /// S-X² item fit was not computed (the fit itself is unaffected).
    FitSkipped {
        /// Why.
        reason: crate::fit::FitSkipped,
    },
    /// Standard errors were asked for but the observed information is not positive definite.
    StandardErrorsUnavailable,
}

impl Warning {
    /// The item the warning is about, if it is about one item.
    pub fn item(&self) -> Option<&str> {
        match self {
            Warning::CategoryNeverObserved { item, .. }
            | Warning::SingleCode { item }
            | Warning::NearZeroSlope { item, .. }
            | Warning::NegativeSlope { item, .. }
            | Warning::ExtremeDifficulty { item, .. } => Some(item),
            Warning::ItemsWithoutResponses { .. }
            | Warning::PersonsWithoutResponses { .. }
            | Warning::NotConverged { .. }
            | Warning::Stopped { .. }
            | Warning::FitSkipped { .. }
            | Warning::StandardErrorsUnavailable => None,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ItemsWithoutResponses { items } => write!(
                f,
                "items without any response, not calibrated: {}",
                items.join(", ")
            ),
            Warning::PersonsWithoutResponses { count } => {
                write!(f, "{count} persons without any response were left out")
            }
            Warning::CategoryNeverObserved { item, category, code } => write!(
                f,
                "item `{item}`: category {category} (code {code}) never observed"
            ),
            Warning::SingleCode { item } => write!(
                f,
                "item `{item}`: a single response code: the item cannot be calibrated meaningfully"
            ),
            Warning::NearZeroSlope { item, a } => write!(
                f,
                "item `{item}`: near-zero slope (a = {a:.3}): it barely measures the trait"
            ),
            Warning::NegativeSlope { item, a } => write!(
                f,
                "item `{item}` discriminates negatively (a = {a:.3}): check its key; adaptive tests leave it out"
            ),
            Warning::ExtremeDifficulty { item, b } => write!(
                f,
                "item `{item}`: extreme difficulty (b = {b:.2}): almost everyone answers it the same way"
            ),
            Warning::NotConverged {
                cycles,
                last_change,
                tolerance,
            } => write!(
                f,
                "EM did not converge in {cycles} cycles (last largest change {last_change:.3e} > tolerance {tolerance:.0e}); consider a prior or more cycles"
            ),
            Warning::Stopped { cycles } => write!(
                f,
                "calibration stopped by its observer after {cycles} cycles (cancelled or out of time): the parameters are those reached, not converged"
            ),
            Warning::FitSkipped { reason } => write!(f, "S-X² item fit skipped: {reason}"),
            Warning::StandardErrorsUnavailable => write!(
                f,
                "standard errors not computed: the observed information is not positive definite (a parameter \
                 is not identified by these data, or EM stopped far from the maximum)"
            ),
        }
    }
}

impl Warning {
    /// How an EM run ended, when it did not converge: stopped by its observer (a time limit, Ctrl-C)
    /// after `cycles`, or out of cycles with `last_change` still above `tolerance`.
    pub fn of_run(
        stopped: bool,
        converged: bool,
        cycles: usize,
        last_change: f64,
        tolerance: f64,
    ) -> Option<Warning> {
        if stopped {
            Some(Warning::Stopped { cycles })
        } else if !converged {
            Some(Warning::NotConverged {
                cycles,
                last_change,
                tolerance,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_sentence_and_serde_has_the_kind_and_fields() {
        let w = Warning::CategoryNeverObserved {
            item: "q3".into(),
            category: 2,
            code: 3,
        };
        assert_eq!(w.to_string(), "item `q3`: category 2 (code 3) never observed");
        assert_eq!(w.item(), Some("q3"));
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({"kind": "category_never_observed", "item": "q3", "category": 2, "code": 3})
        );
        let w = Warning::NotConverged {
            cycles: 500,
            last_change: 2.5e-3,
            tolerance: 1e-4,
        };
        assert_eq!(
            w.to_string(),
            "EM did not converge in 500 cycles (last largest change 2.500e-3 > tolerance 1e-4); consider a prior or more cycles"
        );
        assert_eq!(w.item(), None);
        assert_eq!(serde_json::to_value(&w).unwrap()["kind"], "not_converged");
        let w = Warning::PersonsWithoutResponses { count: 1 };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({"kind": "persons_without_responses", "count": 1})
        );
        assert_eq!(w.to_string(), "1 persons without any response were left out");
    }
}
