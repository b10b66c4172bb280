//! Assessment campaigns: many people take a competence assessment over one framework; the organisation
//! sees the level distribution per competence, where the training needs are, and what to recommend.
//!
//! A [`Campaign`] is a bank (a file, or the embedded example bank) plus a target profile (a target level
//! per competence) and the assessment settings ([`ProfileConfig`]); it is valid by construction
//! ([`Campaign::new`], and deserialisation goes through it), so a report can never index a level
//! that does not exist. [`simulate_participant`] runs one simulated participant; [`report`]
//! aggregates participants' results ([`crate::results`] reads and writes the results log,
//! [`crate::chart`] draws the report). The format is `docs/FORMATS.md`, Campaigns.

use crate::assessment::{AssessmentError, Assessor, Design, Response};
use etalon_engine::irt::ResponseFunction;
use etalon_engine::multidim::MultiConfig;
use etalon_engine::profile::ProfileConfig;
use etalon_engine::session::SessionError;
use etalon_engine::simulate::derive_seed;
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

/// The fields of a campaign file, before validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
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
    /// The adaptive test participants take (default `auto`).
    #[serde(default, skip_serializing_if = "CampaignDesign::is_auto")]
    pub design: CampaignDesign,
    /// Immediate feedback: after each answer the participant is told whether it was right and, if
    /// not, the item's tutorials (off by default: a test that teaches as it goes measures less).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub feedback: bool,
}

/// Which adaptive test a campaign's participants take. Every one reads its settings from the campaign's
/// `assessment` (a [`ProfileConfig`]): per-competence budgets become the whole test's budget (budget ×
/// number of targets), and the test covers the target competences only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignDesign {
    /// `multidimensional` when the bank records a latent structure, `profile` otherwise.
    #[default]
    Auto,
    /// One adaptive test per competence, each on its own items (N(0, 1) prior per competence).
    Profile,
    /// The multidimensional profile: answers inform every competence through their correlations (a
    /// bank with a latent structure).
    Multidimensional,
    /// One θ over the target competences' items, every level read from it on its competence's map
    /// (PIX certification's reading), for comparison.
    General,
}

impl CampaignDesign {
    fn is_auto(&self) -> bool {
        *self == CampaignDesign::Auto
    }
}

/// A campaign whose targets fit its level maps (valid by construction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CampaignSpec", into = "CampaignSpec")]
pub struct Campaign {
    spec: CampaignSpec,
}

/// A campaign that cannot be run or reported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// No target.
    #[error("field `targets`: a campaign needs at least one target competence")]
    NoTargets,
    /// A competence targeted twice.
    #[error("field `targets`: competence `{0}` is targeted twice")]
    DuplicateTarget(String),
    /// A target above the top level of its map.
    #[error("field `targets`: competence `{competence}`: target level {level} above the top level {top}")]
    TargetAboveTop {
        /// Competence.
        competence: String,
        /// Target level.
        level: usize,
        /// Top level of its map.
        top: usize,
    },
    /// Correlation outside [0, 1].
    #[error("field `simulated_correlation` must be in [0, 1] (got {0})")]
    Correlation(f64),
    /// `design: multidimensional` on a bank without a latent structure.
    #[error(
        "field `design`: bank `{0}` records no latent structure (calibrate it with --dimensions), so it cannot run the multidimensional design"
    )]
    NotMultidimensional(String),
    /// A target competence the bank does not measure.
    #[error("field `targets`: no active item of bank `{bank}` measures competence `{competence}`")]
    UnknownCompetence {
        /// Bank id.
        bank: String,
        /// Competence.
        competence: String,
    },
}

impl TryFrom<CampaignSpec> for Campaign {
    type Error = CampaignError;
    fn try_from(spec: CampaignSpec) -> Result<Self, CampaignError> {
        Campaign::new(spec)
    }
}

impl From<Campaign> for CampaignSpec {
    fn from(c: Campaign) -> Self {
        c.spec
    }
}

impl Campaign {
    /// Validate: at least one target, each competence once, each target level on its map, a
    /// correlation in [0, 1].
    pub fn new(spec: CampaignSpec) -> Result<Self, CampaignError> {
        if spec.targets.is_empty() {
            return Err(CampaignError::NoTargets);
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &spec.targets {
            if !seen.insert(t.competence.as_str()) {
                return Err(CampaignError::DuplicateTarget(t.competence.clone()));
            }
            let top = spec.assessment.levels.for_competence(&t.competence).top();
            if t.target_level > top {
                return Err(CampaignError::TargetAboveTop {
                    competence: t.competence.clone(),
                    level: t.target_level,
                    top,
                });
            }
        }
        if !(0.0..=1.0).contains(&spec.simulated_correlation) {
            return Err(CampaignError::Correlation(spec.simulated_correlation));
        }
        Ok(Campaign { spec })
    }

    /// Check that `bank` measures every target competence with an active item.
    pub fn check_bank(&self, bank: &Bank) -> Result<(), CampaignError> {
        for t in &self.spec.targets {
            let measured = bank.items().iter().any(|i| {
                i.competence.as_deref() == Some(t.competence.as_str())
                    && i.status == etalon_items::Status::Active
            });
            if !measured {
                return Err(CampaignError::UnknownCompetence {
                    bank: bank.id().to_string(),
                    competence: t.competence.clone(),
                });
            }
        }
        Ok(())
    }

    /// The validated fields.
    pub fn spec(&self) -> &CampaignSpec {
        &self.spec
    }
    /// Identifier.
    pub fn id(&self) -> &str {
        &self.spec.id
    }
    /// Display name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    /// The bank file named by the campaign, if any.
    pub fn bank_file(&self) -> Option<&str> {
        self.spec.bank.as_deref()
    }
    /// Targets, in order.
    pub fn targets(&self) -> &[Target] {
        &self.spec.targets
    }
    /// Assessment settings.
    pub fn assessment(&self) -> &ProfileConfig {
        &self.spec.assessment
    }
    /// Whether participants get immediate feedback after each answer.
    pub fn feedback(&self) -> bool {
        self.spec.feedback
    }
    /// Correlation of simulated participants' competences.
    pub fn simulated_correlation(&self) -> f64 {
        self.spec.simulated_correlation
    }
}

fn default_correlation() -> f64 {
    0.5
}

impl Campaign {
    /// The assessment settings with the target competences.
    pub fn profile_config(&self) -> ProfileConfig {
        let mut c = self.spec.assessment.clone();
        c.competences = self.spec.targets.iter().map(|t| t.competence.clone()).collect();
        c
    }

    /// The test participants take on `bank` ([`CampaignDesign`]; `auto` resolved on the bank).
    pub fn design(&self, bank: &Bank) -> Result<Design, CampaignError> {
        Ok(self
            .resolved(bank)?
            .recorded_design()
            .unwrap_or_else(|| unreachable!("a resolved design is not auto")))
    }

    /// The campaign with `design: auto` and default level maps resolved on `bank` (what the service
    /// records when it creates a campaign, so that its sessions never depend on a later bank, and what
    /// a campaign file runs and reports with); refused when the design needs a latent structure the bank
    /// lacks, or a target is above the top of the bank's level map.
    pub fn resolved(&self, bank: &Bank) -> Result<Campaign, CampaignError> {
        let structured = bank.structure().is_some();
        let design = match self.spec.design {
            CampaignDesign::Auto if structured => CampaignDesign::Multidimensional,
            CampaignDesign::Auto => CampaignDesign::Profile,
            CampaignDesign::Multidimensional if !structured => {
                return Err(CampaignError::NotMultidimensional(bank.id().to_string()));
            }
            d => d,
        };
        let mut spec = self.spec.clone();
        spec.design = design;
        // Level maps left at the default read on the bank's, when it has some (as every assessment
        // does): resolved here once, so that tests, agreement and reports all use the same maps.
        if let Some(levels) = bank.levels()
            && spec.assessment.levels == etalon_items::levels::Levels::default()
        {
            spec.assessment.levels = levels.clone();
        }
        Campaign::new(spec)
    }

    /// The design of the sessions of a stored campaign: the one it records; campaigns stored before
    /// designs were recorded ran one test per competence.
    pub fn session_design(&self) -> Design {
        self.recorded_design()
            .unwrap_or_else(|| Design::Profile(self.profile_config()))
    }

    /// The design of a campaign whose design is set (`None` for `auto`, which needs the bank:
    /// [`Campaign::design`]).
    pub fn recorded_design(&self) -> Option<Design> {
        let p = self.profile_config();
        let n = p.competences.len();
        match self.spec.design {
            CampaignDesign::Auto => None,
            CampaignDesign::Profile => Some(Design::Profile(p)),
            CampaignDesign::Multidimensional => Some(Design::Multidimensional(MultiConfig {
                max_items: p.max_items_per_competence * n,
                min_items: p.min_items_per_competence * n,
                max_items_per_competence: p.max_items_per_competence,
                classify: p.classify,
                confidence: p.confidence,
                se_target: p.session.stopping.se_target,
                exposure: p.session.selection.exposure,
                one_per_tag_prefix: p.session.content.one_per_tag_prefix.clone(),
                levels: p.levels,
                competences: p.competences,
            })),
            CampaignDesign::General => {
                let mut session = p.session;
                session.stopping.max_items = p.max_items_per_competence * n;
                session.stopping.min_items = p.min_items_per_competence * n;
                session.content.competences = p.competences;
                Some(Design::General(session))
            }
        }
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
    /// The campaign the result belongs to (absent in logs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Participant id.
    pub participant: String,
    /// Per competence.
    pub competences: BTreeMap<String, ParticipantCompetence>,
    /// Total PIX-style score.
    pub score: f64,
}

/// Run one simulated participant through `assessor` (built from [`Campaign::design`]): true abilities
/// drawn per target competence, in target order (θ_c = √ρ·g + √(1-ρ)·e_c, ρ the campaign's
/// `simulated_correlation`), answers drawn from the items' models; the result keeps the targets.
pub fn simulate_participant(
    assessor: &Assessor,
    campaign: &Campaign,
    participant: &str,
    seed: u64,
) -> Result<ParticipantResult, AssessmentError> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rho = campaign.simulated_correlation();
    let g: f64 = StandardNormal.sample(&mut rng);
    let truth: BTreeMap<&str, f64> = campaign
        .targets()
        .iter()
        .map(|t| {
            let e: f64 = StandardNormal.sample(&mut rng);
            (t.competence.as_str(), rho.sqrt() * g + (1.0 - rho).sqrt() * e)
        })
        .collect();
    let mut assessment = assessor.start(derive_seed(seed, 1));
    let mut probs = Vec::new();
    while let Some(view) = assessor.current(&mut assessment)? {
        let item = assessor
            .bank()
            .item(&view.item)
            .unwrap_or_else(|| unreachable!("assessments offer bank items"));
        let theta = item
            .competence
            .as_deref()
            .and_then(|c| truth.get(c))
            .ok_or_else(|| {
                SessionError::UnknownItem(format!("{} (outside the campaign's competences)", view.item))
            })?;
        probs.resize(item.parameters.n_categories(), 0.0);
        item.parameters.category_probabilities(*theta, &mut probs);
        let cat = etalon_engine::simulate::draw_category(&probs, rng.random());
        assessor.answer(
            &mut assessment,
            &view.item,
            Response::Code(item.response_codes()[cat]),
        )?;
    }
    let mut result = participant_result(Some(campaign.id()), participant, &assessor.result(&assessment));
    result.competences.retain(|c, _| truth.contains_key(c.as_str()));
    for (c, r) in &mut result.competences {
        r.true_theta = truth.get(c.as_str()).copied();
    }
    Ok(result)
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

/// A result that does not belong in a campaign's report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// No participant.
    #[error("no participant result")]
    Empty,
    /// A result recorded for another campaign.
    #[error("{index} (participant `{participant}`) belongs to campaign `{found}`, not `{expected}`")]
    OtherCampaign {
        /// Where the result is.
        index: Position,
        /// Participant.
        participant: String,
        /// Its campaign.
        found: String,
        /// This campaign.
        expected: String,
    },
    /// A participant counted twice.
    #[error("{index}: participant `{participant}` already has a result ({first})")]
    Duplicate {
        /// Where the result is.
        index: Position,
        /// Participant.
        participant: String,
        /// Where its first result is.
        first: Position,
    },
    /// A competence the campaign does not target.
    #[error(
        "{index} (participant `{participant}`): competence `{competence}` is not a target of the campaign"
    )]
    UnknownCompetence {
        /// Where the result is.
        index: Position,
        /// Participant.
        participant: String,
        /// Competence.
        competence: String,
    },
    /// A level above the top of the competence's map.
    #[error(
        "{index} (participant `{participant}`), competence `{competence}`: level {level} above the top level {top}"
    )]
    ImpossibleLevel {
        /// Where the result is.
        index: Position,
        /// Participant.
        participant: String,
        /// Competence.
        competence: String,
        /// The level.
        level: usize,
        /// The top level.
        top: usize,
    },
    /// θ̂ or SE not finite.
    #[error(
        "{index} (participant `{participant}`), competence `{competence}`: theta {theta} and se {se} must be finite"
    )]
    NotFinite {
        /// Where the result is.
        index: Position,
        /// Participant.
        participant: String,
        /// Competence.
        competence: String,
        /// θ̂.
        theta: f64,
        /// SE.
        se: f64,
    },
}

/// Where a result stands: its 1-based index in a list, or its line in a results log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based index in the list given.
    Result(usize),
    /// 1-based line of the results log.
    Line(usize),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Result(i) => write!(f, "result {i}"),
            Position::Line(l) => write!(f, "line {l}"),
        }
    }
}

/// Check results against the campaign: its own, one per participant, targeted competences, levels on
/// the maps, finite estimates.
/// `lines`, when given, are the log lines of the results (errors then name lines).
pub fn check_results(
    campaign: &Campaign,
    results: &[ParticipantResult],
    lines: Option<&[usize]>,
) -> Result<(), ReportError> {
    if results.is_empty() {
        return Err(ReportError::Empty);
    }
    let mut seen: BTreeMap<&str, Position> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        let index = match lines.and_then(|l| l.get(i)) {
            Some(&line) => Position::Line(line),
            None => Position::Result(i + 1),
        };
        let participant = || r.participant.clone();
        if let Some(found) = &r.campaign
            && found != campaign.id()
        {
            return Err(ReportError::OtherCampaign {
                index,
                participant: participant(),
                found: found.clone(),
                expected: campaign.id().to_string(),
            });
        }
        if let Some(&first) = seen.get(r.participant.as_str()) {
            return Err(ReportError::Duplicate {
                index,
                participant: participant(),
                first,
            });
        }
        seen.insert(&r.participant, index);
        for (c, pc) in &r.competences {
            if !campaign.targets().iter().any(|t| &t.competence == c) {
                return Err(ReportError::UnknownCompetence {
                    index,
                    participant: participant(),
                    competence: c.clone(),
                });
            }
            let top = campaign.assessment().levels.for_competence(c).top();
            if pc.level > top {
                return Err(ReportError::ImpossibleLevel {
                    index,
                    participant: participant(),
                    competence: c.clone(),
                    level: pc.level,
                    top,
                });
            }
            if !(pc.theta.is_finite() && pc.se.is_finite()) {
                return Err(ReportError::NotFinite {
                    index,
                    participant: participant(),
                    competence: c.clone(),
                    theta: pc.theta,
                    se: pc.se,
                });
            }
        }
    }
    Ok(())
}

/// Aggregate participants' results (checked first by [`check_results`]; `lines`: as there).
pub fn report(
    campaign: &Campaign,
    bank: &Bank,
    results: &[ParticipantResult],
    lines: Option<&[usize]>,
) -> Result<Report, ReportError> {
    check_results(campaign, results, lines)?;
    let mut competences = Vec::new();
    for t in campaign.targets() {
        let map = campaign.assessment().levels.for_competence(&t.competence);
        let mut counts = vec![0usize; map.n_levels()];
        let thetas: Vec<f64> = results
            .iter()
            .filter_map(|r| r.competences.get(&t.competence))
            .map(|c| {
                counts[c.level] += 1;
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
    Ok(Report {
        participants: results.len(),
        competences,
        training_needs: needs.into_iter().map(|n| n.2).collect(),
    })
}

/// A participant's result line from a finished assessment in `campaign` (an id) (what the service records when a campaign
/// session ends; the same fields `etalon campaign run` writes for simulated participants, without the
/// true abilities).
pub fn participant_result(
    campaign: Option<&str>,
    participant: &str,
    result: &crate::AssessmentResult,
) -> ParticipantResult {
    ParticipantResult {
        campaign: campaign.map(str::to_string),
        participant: participant.to_string(),
        competences: result
            .competences
            .iter()
            .map(|(c, v)| {
                (
                    c.clone(),
                    ParticipantCompetence {
                        theta: v.result.theta,
                        se: v.result.se,
                        level: v.result.level,
                        label: v.result.label.clone(),
                        items: v.result.items,
                        true_theta: None,
                    },
                )
            })
            .collect(),
        score: result.score,
    }
}
