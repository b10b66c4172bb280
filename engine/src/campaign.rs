//! Assessment campaigns: many people take a competence assessment over one framework; the organisation
//! sees the level distribution per competence, where the training needs are, and what to recommend.
//!
//! A [`Campaign`] is a bank (a file, or the embedded example bank) plus a target profile (a target level
//! per competence) and the assessment settings ([`ProfileConfig`]). [`simulate_participant`] runs one
//! simulated participant; [`report`] aggregates participants' results. Files and formats are the CLI's
//! business (`FORMATS.md`, Campaigns); this module does no I/O.

use crate::irt::ResponseFunction;
use crate::profile::{ProfileConfig, ProfileEngine};
use crate::session::{Next, SessionError};
use crate::simulate::derive_seed;
use etalon_items::{Bank, Tutorial};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A competence and the level the organisation wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Competence id.
    pub competence: String,
    /// Target level (0 … L).
    pub target_level: usize,
}

/// A campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Bank file (relative to the campaign file); the embedded example bank when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
    /// Target profile.
    pub targets: Vec<Target>,
    /// Correlation between competences of simulated participants (true θ_c = √ρ·g + √(1-ρ)·e_c).
    #[serde(default = "default_correlation")]
    pub simulated_correlation: f64,
    /// Assessment settings; `competences` is taken from the targets.
    #[serde(default)]
    pub assessment: ProfileConfig,
}

fn default_correlation() -> f64 {
    0.5
}

impl Campaign {
    /// The assessment settings with the target competences.
    pub fn profile_config(&self) -> ProfileConfig {
        let mut c = self.assessment.clone();
        c.competences = self.targets.iter().map(|t| t.competence.clone()).collect();
        c
    }

    /// Check targets against the level maps.
    pub fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("a campaign needs at least one target competence".into());
        }
        for t in &self.targets {
            let top = self.assessment.levels.for_competence(&t.competence).top();
            if t.target_level > top {
                return Err(format!(
                    "competence `{}`: target level {} above the top level {top}",
                    t.competence, t.target_level
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.simulated_correlation) {
            return Err(format!(
                "simulated_correlation must be in [0, 1] (got {})",
                self.simulated_correlation
            ));
        }
        Ok(())
    }
}

/// One participant's result for one competence (one line of RESULTS.jsonl holds all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantCompetence {
    /// θ̂.
    pub theta: f64,
    /// SE.
    pub se: f64,
    /// Level.
    pub level: usize,
    /// Label.
    pub label: String,
    /// Items answered.
    pub items: usize,
    /// True θ (simulated participants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_theta: Option<f64>,
}

/// One line of RESULTS.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantResult {
    /// Participant id.
    pub participant: String,
    /// Per competence.
    pub competences: BTreeMap<String, ParticipantCompetence>,
    /// Total PIX-style score.
    pub score: f64,
}

/// Run one simulated participant: true abilities drawn (correlated), answers drawn from the models.
pub fn simulate_participant(
    engine: &ProfileEngine,
    campaign: &Campaign,
    participant: &str,
    seed: u64,
) -> Result<ParticipantResult, SessionError> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rho = campaign.simulated_correlation;
    let g: f64 = StandardNormal.sample(&mut rng);
    let truth: Vec<f64> = engine
        .competences()
        .iter()
        .map(|_| {
            let e: f64 = StandardNormal.sample(&mut rng);
            rho.sqrt() * g + (1.0 - rho).sqrt() * e
        })
        .collect();
    let mut session = engine.start(derive_seed(seed, 1));
    let mut probs = Vec::new();
    while let Next::Item(id) = engine.next(&mut session)? {
        let item = engine
            .bank()
            .item(&id)
            .unwrap_or_else(|| unreachable!("engines offer bank items"));
        let c = engine
            .competences()
            .iter()
            .position(|c| item.competence.as_deref() == Some(c.as_str()))
            .unwrap_or_else(|| unreachable!("items belong to a competence of the test"));
        probs.resize(item.parameters.n_categories(), 0.0);
        item.parameters.category_probabilities(truth[c], &mut probs);
        let cat = crate::simulate::draw_category(&probs, rng.random());
        engine.record(&mut session, &id, item.response_codes()[cat])?;
    }
    let result = engine.result(&session);
    let competences = result
        .competences
        .into_iter()
        .map(|(c, r)| {
            let i = engine.competences().iter().position(|x| *x == c).unwrap_or(0);
            (
                c,
                ParticipantCompetence {
                    theta: r.theta,
                    se: r.se,
                    level: r.level,
                    label: r.label,
                    items: r.items,
                    true_theta: Some(truth[i]),
                },
            )
        })
        .collect();
    Ok(ParticipantResult {
        participant: participant.to_string(),
        competences,
        score: result.score,
    })
}

/// Per-competence part of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompetenceReport {
    /// Competence id.
    pub id: String,
    /// Its name in the framework.
    pub name: String,
    /// Target level.
    pub target_level: usize,
    /// Number of participants at each level 0 … L.
    pub level_counts: Vec<usize>,
    /// Mean θ̂.
    pub mean_theta: f64,
    /// 95% confidence interval of the mean θ̂ (mean ± 1.96·sd/√n).
    pub mean_theta_ci: [f64; 2],
    /// Share of participants below the target level.
    pub share_below_target: f64,
    /// Tutorials of the (up to three) items nearest the target level band, those inside it first:
    /// what participants below the target need to learn.
    pub tutorials: Vec<Tutorial>,
}

/// A campaign report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Participants counted.
    pub participants: usize,
    /// Per competence, in target order.
    pub competences: Vec<CompetenceReport>,
    /// Competence ids, greatest need first (share below target, then mean distance to the target).
    pub training_needs: Vec<String>,
}

/// Aggregate participants' results.
pub fn report(campaign: &Campaign, bank: &Bank, results: &[ParticipantResult]) -> Report {
    let mut competences = Vec::new();
    for t in &campaign.targets {
        let map = campaign.assessment.levels.for_competence(&t.competence);
        let mut counts = vec![0usize; map.n_levels()];
        let thetas: Vec<f64> = results
            .iter()
            .filter_map(|r| r.competences.get(&t.competence))
            .map(|c| {
                counts[c.level.min(map.top())] += 1;
                c.theta
            })
            .collect();
        let n = thetas.len().max(1) as f64;
        let mean = thetas.iter().sum::<f64>() / n;
        let sd = (thetas.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        let half = 1.96 * sd / n.sqrt();
        let below: usize = counts.iter().take(t.target_level).sum();
        let (lo, hi) = (
            if t.target_level == 0 {
                f64::NEG_INFINITY
            } else {
                map.cuts()[t.target_level - 1]
            },
            map.cuts().get(t.target_level).copied().unwrap_or(f64::INFINITY),
        );
        let mut tutorials: Vec<Tutorial> = Vec::new();
        // The items nearest the target band (inside it first), whose tutorials teach what the band asks.
        let mid = match (lo.is_finite(), hi.is_finite()) {
            (true, true) => (lo + hi) / 2.0,
            (true, false) => lo,
            _ => hi,
        };
        let mut items: Vec<&etalon_items::Item> = bank
            .items()
            .iter()
            .filter(|i| i.competence.as_deref() == Some(t.competence.as_str()) && !i.tutorials.is_empty())
            .collect();
        items.sort_by(|a, b| {
            let key = |i: &etalon_items::Item| {
                let b = i.parameters.location();
                (!(lo..hi).contains(&b), (b - mid).abs())
            };
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        });
        items.truncate(3);
        for i in items {
            for tut in &i.tutorials {
                if !tutorials.contains(tut) && tutorials.len() < 5 {
                    tutorials.push(tut.clone());
                }
            }
        }
        competences.push(CompetenceReport {
            id: t.competence.clone(),
            name: bank
                .framework()
                .competence(&t.competence)
                .map_or_else(|| t.competence.clone(), |c| c.name.clone()),
            target_level: t.target_level,
            level_counts: counts,
            mean_theta: mean,
            mean_theta_ci: [mean - half, mean + half],
            share_below_target: below as f64 / n,
            tutorials,
        });
    }
    let mut needs: Vec<(f64, f64, String)> = competences
        .iter()
        .map(|c| {
            let mean_level = c
                .level_counts
                .iter()
                .enumerate()
                .map(|(k, &n)| k as f64 * n as f64)
                .sum::<f64>()
                / c.level_counts.iter().sum::<usize>().max(1) as f64;
            (
                c.share_below_target,
                c.target_level as f64 - mean_level,
                c.id.clone(),
            )
        })
        .collect();
    needs.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
    Report {
        participants: results.len(),
        competences,
        training_needs: needs.into_iter().map(|n| n.2).collect(),
    }
}
