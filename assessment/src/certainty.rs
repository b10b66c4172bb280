//! How sure a level is, in words a layperson reads: "very likely independent" rather than "83 %".
//!
//! A level's probability p is the posterior probability that the person's ability lies in that
//! level's interval (normal approximation N(θ̂, SE²), [`etalon_items::levels::LevelMap::probabilities`]).
//! The words follow the scale of verbal probability expressions used in risk communication
//! (Mosteller & Youtz 1990; the IPCC's calibrated language): p ≥ 0.9 "very likely", p ≥ 0.75
//! "likely", p ≥ 0.5 "probably", below that "possibly" (another level is then more likely than not).

use serde::{Deserialize, Serialize};

/// A level probability in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Certainty {
    /// p < 0.5.
    Possibly,
    /// 0.5 ≤ p < 0.75.
    Probably,
    /// 0.75 ≤ p < 0.9.
    Likely,
    /// p ≥ 0.9.
    VeryLikely,
}

impl Certainty {
    /// The words for a level probability `p`.
    pub fn of(p: f64) -> Certainty {
        if p >= 0.9 {
            Certainty::VeryLikely
        } else if p >= 0.75 {
            Certainty::Likely
        } else if p >= 0.5 {
            Certainty::Probably
        } else {
            Certainty::Possibly
        }
    }

    /// In English, before a level label ("very likely independent").
    pub fn english(self) -> &'static str {
        match self {
            Certainty::VeryLikely => "very likely",
            Certainty::Likely => "likely",
            Certainty::Probably => "probably",
            Certainty::Possibly => "possibly",
        }
    }

    /// In French, before a level label ("très probablement autonome").
    pub fn french(self) -> &'static str {
        match self {
            Certainty::VeryLikely => "très probablement",
            Certainty::Likely => "probablement",
            Certainty::Probably => "plutôt",
            Certainty::Possibly => "peut-être",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_fall_where_documented() {
        assert_eq!(Certainty::of(0.95), Certainty::VeryLikely);
        assert_eq!(Certainty::of(0.9), Certainty::VeryLikely);
        assert_eq!(Certainty::of(0.89), Certainty::Likely);
        assert_eq!(Certainty::of(0.75), Certainty::Likely);
        assert_eq!(Certainty::of(0.6), Certainty::Probably);
        assert_eq!(Certainty::of(0.49), Certainty::Possibly);
        assert_eq!(Certainty::of(f64::NAN), Certainty::Possibly);
        assert!(Certainty::of(0.95) > Certainty::of(0.8));
    }
}
