//! Competence assessment: one test over several competences with a separate θ per competence (each
//! competence is a unidimensional scale, as PIX measures them).
//!
//! A [`ProfileEngine`] holds one [`CatEngine`] per competence, built on that competence's items with the
//! shared session settings, its own budget (`max_items_per_competence`) and classification stopping on
//! its own level map. The test routes between competences: the next item comes from the unfinished
//! competence with the fewest answers (ties: not the one just answered, then framework order), so every
//! competence is visited before any gets a second item and consecutive items differ in competence when
//! possible. A competence is done when it is classified (its θ interval within one level band), reaches
//! its budget, its SE target, or runs out of items; the test ends when every competence is done.
//! A [`ProfileSession`] is a plain serde value like [`Session`], resumable after any answer, and
//! verified like it when read from outside: replayed competence by competence in the stored order,
//! which must be the routing rule's ([`ProfileEngine::verify`]).

use crate::config::{Classification, SessionConfig};
use crate::estimate::Estimate;
use crate::levels::{LevelMap, Levels};
use crate::session::{CatEngine, Checked, Mismatch, Next, Session, SessionError, StopReason};
use crate::simulate::derive_seed;
use etalon_items::{Bank, Framework, Provenance, Status, Tutorial};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of a competence assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// Competences assessed, in order (empty: every competence of the bank's framework that has items).
    pub competences: Vec<String>,
    /// Session settings shared by the competences (estimator, selection, exposure, SE target, start).
    pub session: SessionConfig,
    /// Items per competence at most.
    pub max_items_per_competence: usize,
    /// Items per competence at least before it may stop.
    pub min_items_per_competence: usize,
    /// Stop a competence once its θ interval lies within one level band.
    pub classify: bool,
    /// Two-sided confidence of that interval (default 0.6: PIX's bands are 0.75 logit wide, and an 80%
    /// interval fits in one only once SE < 0.29 — see the closing study in `tests/levels_campaigns.rs`).
    pub confidence: f64,
    /// Level maps (default: PIX's).
    pub levels: Levels,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        let mut session = SessionConfig::default();
        session.stopping.se_target = None;
        session.content.one_per_tag_prefix = "skill:".into();
        ProfileConfig {
            competences: Vec::new(),
            session,
            max_items_per_competence: 6,
            min_items_per_competence: 2,
            classify: true,
            confidence: 0.6,
            levels: Levels::default(),
        }
    }
}

/// An invalid profile configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A competence without active items.
    #[error("competence `{0}` has no active item in the bank")]
    NoItems(String),
    /// Nothing to assess.
    #[error("no competence to assess: the bank's items carry no competence")]
    NoCompetence,
    /// A competence's engine rejected the settings.
    #[error("competence `{competence}`: {source}")]
    Config {
        /// Competence id.
        competence: String,
        /// Why.
        source: crate::config::ConfigError,
    },
    /// `max_items_per_competence` is 0 or below `min_items_per_competence`.
    #[error(
        "need 1 ≤ max_items_per_competence and min_items_per_competence ≤ max_items_per_competence (got min {min}, max {max})"
    )]
    Budget {
        /// `min_items_per_competence`.
        min: usize,
        /// `max_items_per_competence`.
        max: usize,
    },
    /// `confidence` outside (0, 1).
    #[error("confidence must be in (0, 1) (got {0})")]
    Confidence(f64),
    /// A competence's items do not form a valid bank (duplicate ids…).
    #[error("competence `{competence}`: {problems}")]
    Items {
        /// Competence id.
        competence: String,
        /// What is wrong.
        problems: etalon_items::Problems,
    },
}

/// State of one competence assessment: one [`Session`] per competence, and the order of answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSession {
    /// Format version of the saved value ([`crate::session::SCHEMA_VERSION`]); absent in files written
    /// before versioning, which are version 1.
    #[serde(default = "crate::session::schema_v1")]
    schema: u32,
    bank_id: String,
    bank_fingerprint: String,
    competences: Vec<String>,
    sessions: Vec<Session>,
    order: Vec<usize>,
    pending: Option<usize>,
    #[serde(skip)]
    checked: Checked,
}

impl ProfileSession {
    /// The competence assessed by each answer, in order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
    /// The competences, in order.
    pub fn competences(&self) -> &[String] {
        &self.competences
    }
    /// Each competence's session.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }
    /// Total number of answers.
    pub fn answered(&self) -> usize {
        self.order.len()
    }
}

/// The result of one competence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetenceResult {
    /// θ̂.
    pub theta: f64,
    /// SE.
    pub se: f64,
    /// Level 0 … L.
    pub level: usize,
    /// Its label.
    pub label: String,
    /// Probability of that level.
    pub level_probability: f64,
    /// Items answered.
    pub items: usize,
    /// PIX-style points of the competence.
    pub score: f64,
    /// Why this competence stopped (`None` while it is still being assessed).
    pub stop_reason: Option<StopReason>,
}

impl CompetenceResult {
    /// A competence's result from its estimate: level, label and level probability on `map`
    /// (normal approximation, [`LevelMap::probabilities`]), PIX-style points ([`LevelMap::score`]).
    pub fn from_estimate(
        map: &LevelMap,
        theta: f64,
        se: f64,
        items: usize,
        stop_reason: Option<StopReason>,
    ) -> Self {
        let level = map.level(theta);
        CompetenceResult {
            theta,
            se,
            level,
            label: map.label(level).to_string(),
            level_probability: map.probabilities(theta, se)[level],
            items,
            score: map.score(theta),
            stop_reason,
        }
    }
}

/// Per-competence EAP profile of the answers of a *single* adaptive test over several competences:
/// each competence's θ̂ and SE from the answers to its own items only, on `table`'s grid and prior,
/// mapped to levels as [`ProfileEngine::result`] does. `answers` are (bank position, category) pairs
/// of scored answers.
pub fn competence_profile(
    bank: &Bank,
    table: &crate::estimate::EapTable,
    levels: &Levels,
    answers: &[crate::estimate::Answer],
) -> BTreeMap<String, CompetenceResult> {
    let mut by_competence: BTreeMap<&str, Vec<crate::estimate::Answer>> = BTreeMap::new();
    for a in answers {
        if let Some(c) = bank
            .items()
            .get(a.item as usize)
            .and_then(|i| i.competence.as_deref())
        {
            by_competence.entry(c).or_default().push(*a);
        }
    }
    let mut buf = Vec::new();
    by_competence
        .into_iter()
        .map(|(c, answers)| {
            let e = table.eap(&answers, &mut buf);
            let result =
                CompetenceResult::from_estimate(levels.for_competence(c), e.theta, e.se, answers.len(), None);
            (c.to_string(), result)
        })
        .collect()
}

/// The PIX certification's reading of one adaptive test: every competence's level read from the one
/// θ̂ and its SE on that competence's own level map (its cut bounds), as
/// [`CompetenceResult::from_estimate`] does; `items` counts the answers to the competence's items.
/// Competences: `competences`, or when empty every competence of the bank's active items.
pub fn general_profile(
    bank: &Bank,
    levels: &Levels,
    competences: &[String],
    estimate: (f64, f64),
    answers: &[crate::estimate::Answer],
) -> BTreeMap<String, CompetenceResult> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    if competences.is_empty() {
        for item in bank.items().iter().filter(|i| i.status == Status::Active) {
            if let Some(c) = item.competence.as_deref() {
                counts.entry(c).or_default();
            }
        }
    } else {
        for c in competences {
            counts.entry(c).or_default();
        }
    }
    for a in answers {
        if let Some(n) = bank
            .items()
            .get(a.item as usize)
            .and_then(|i| i.competence.as_deref())
            .and_then(|c| counts.get_mut(c))
        {
            *n += 1;
        }
    }
    let (theta, se) = estimate;
    counts
        .into_iter()
        .map(|(c, n)| {
            let result = CompetenceResult::from_estimate(levels.for_competence(c), theta, se, n, None);
            (c.to_string(), result)
        })
        .collect()
}

/// The result of a competence assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileResult {
    /// Per competence.
    pub competences: BTreeMap<String, CompetenceResult>,
    /// Sum of the competences' scores.
    pub score: f64,
    /// Whether every competence is done.
    pub finished: bool,
}

/// Tutorials to show a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Tutorials of the items answered wrongly (lowest category), by item.
    pub missed: Vec<(String, Tutorial)>,
    /// Per competence, tutorials of items just above the person's level (next steps).
    pub next_steps: BTreeMap<String, Vec<Tutorial>>,
}

/// A bank, a profile configuration, and one engine per competence.
#[derive(Debug, Clone)]
pub struct ProfileEngine {
    bank: Bank,
    fingerprint: String,
    config: ProfileConfig,
    competences: Vec<String>,
    engines: Vec<CatEngine>,
}

impl ProfileEngine {
    /// Validate and build.
    pub fn new(bank: &Bank, config: ProfileConfig) -> Result<Self, ProfileError> {
        if config.max_items_per_competence == 0
            || config.min_items_per_competence > config.max_items_per_competence
        {
            return Err(ProfileError::Budget {
                min: config.min_items_per_competence,
                max: config.max_items_per_competence,
            });
        }
        if !(config.confidence > 0.0 && config.confidence < 1.0) {
            return Err(ProfileError::Confidence(config.confidence));
        }
        let competences: Vec<String> = if config.competences.is_empty() {
            let from_framework: Vec<String> = bank.framework().competences().map(|c| c.id.clone()).collect();
            let mut ids: Vec<String> = if from_framework.is_empty() {
                let mut v: Vec<String> = bank.items().iter().filter_map(|i| i.competence.clone()).collect();
                v.sort();
                v.dedup();
                v
            } else {
                from_framework
            };
            ids.retain(|c| {
                bank.items().iter().any(|i| {
                    i.competence.as_deref() == Some(c.as_str())
                        && config.session.selection.status_of(i) == Status::Active
                })
            });
            ids
        } else {
            config.competences.clone()
        };
        if competences.is_empty() {
            return Err(ProfileError::NoCompetence);
        }
        let mut engines = Vec::with_capacity(competences.len());
        for c in &competences {
            let items: Vec<_> = bank
                .items()
                .iter()
                .filter(|i| i.competence.as_deref() == Some(c.as_str()))
                .cloned()
                .collect();
            if !items
                .iter()
                .any(|i| config.session.selection.status_of(i) == Status::Active)
            {
                return Err(ProfileError::NoItems(c.clone()));
            }
            let sub = Bank::new(
                format!("{}#{c}", bank.id()),
                Framework::default(),
                items,
                Provenance::default(),
            )
            .map_err(|p| ProfileError::Items {
                competence: c.clone(),
                problems: etalon_items::Problems(p),
            })?;
            let mut s = config.session.clone();
            s.content = crate::config::ContentConfig {
                one_per_tag_prefix: config.session.content.one_per_tag_prefix.clone(),
                pretest_positions: Vec::new(),
                ..Default::default()
            };
            s.stopping.max_items = config.max_items_per_competence;
            s.stopping.min_items = config.min_items_per_competence;
            s.stopping.classification = config.classify.then(|| Classification {
                cuts: config.levels.for_competence(c).cuts().to_vec(),
                confidence: config.confidence,
            });
            let engine = CatEngine::new(&sub, s).map_err(|source| ProfileError::Config {
                competence: c.clone(),
                source,
            })?;
            engines.push(engine);
        }
        Ok(ProfileEngine {
            fingerprint: bank.fingerprint(),
            bank: bank.clone(),
            config,
            competences,
            engines,
        })
    }

    /// The bank.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }
    /// The competences assessed.
    pub fn competences(&self) -> &[String] {
        &self.competences
    }
    /// The configuration.
    pub fn config(&self) -> &ProfileConfig {
        &self.config
    }
    /// The level map of competence `index`.
    pub fn level_map(&self, index: usize) -> &LevelMap {
        self.config.levels.for_competence(&self.competences[index])
    }

    /// Start a test; each competence's session gets its own seed derived from `seed`.
    pub fn start(&self, seed: u64) -> ProfileSession {
        ProfileSession {
            schema: crate::session::SCHEMA_VERSION,
            bank_id: self.bank.id().to_string(),
            bank_fingerprint: self.fingerprint.clone(),
            competences: self.competences.clone(),
            sessions: self
                .engines
                .iter()
                .enumerate()
                .map(|(i, e)| e.start(derive_seed(seed, i as u64)))
                .collect(),
            order: Vec::new(),
            pending: None,
            checked: Checked(true),
        }
    }

    /// Verify a session read from outside — now rather than at the first [`next`](Self::next) or
    /// [`record`](Self::record), which do the same — as [`CatEngine::verify`] verifies a [`Session`]:
    /// each competence session is checked against its competence's engine, then the whole test is
    /// played again — fresh competence sessions from the stored seeds, the stored answers in the
    /// stored `order` — requiring at each step that the routing rule picks the stored competence and
    /// that its engine offers the stored item; finally every competence session is compared field by
    /// field with its replay. The first difference is [`SessionError::Corrupt`], naming the field
    /// (`order[4]: …`, `sessions[1].history[2].theta: stored 5, recomputed 0.41`). On success the
    /// session becomes the replayed one, marked verified.
    pub fn verify(&self, s: &mut ProfileSession) -> Result<(), SessionError> {
        self.check(s)
    }

    fn check(&self, s: &mut ProfileSession) -> Result<(), SessionError> {
        // Other competences: a profile of another configuration.
        crate::session::check_identity(
            s.schema,
            &s.bank_id,
            &s.bank_fingerprint,
            &self.bank,
            &self.fingerprint,
            s.competences == self.competences,
        )?;
        crate::session::adopt_replay(s, s.checked.0, |s| self.replay(s))
    }

    /// The verification of [`Self::verify`]: the replayed session, or the first mismatch.
    fn replay(&self, s: &ProfileSession) -> Result<ProfileSession, Mismatch> {
        let n = self.engines.len();
        if s.sessions.len() != n {
            return Err(Mismatch::new(
                "sessions",
                format_args!("{} competence sessions for {n} competences", s.sessions.len()),
            ));
        }
        if let Some(c) = s.pending
            && c >= n
        {
            return Err(Mismatch::new(
                "pending",
                format_args!("competence {c} does not exist ({n} competences)"),
            ));
        }
        let mut counts = vec![0usize; n];
        for (i, &c) in s.order.iter().enumerate() {
            if c >= n {
                return Err(Mismatch::new(
                    format!("order[{i}]"),
                    format_args!("competence {c} does not exist ({n} competences)"),
                ));
            }
            counts[c] += 1;
        }
        for (c, (engine, stored)) in self.engines.iter().zip(&s.sessions).enumerate() {
            let at = format!("sessions[{c}]");
            engine
                .check_identity(stored)
                .map_err(|e| Mismatch::new(at.as_str(), e))?;
            engine.precheck(stored).map_err(|m| m.within(&at))?;
            if counts[c] != stored.history().len() {
                return Err(Mismatch::new(
                    "order",
                    format_args!(
                        "{} answers to competence {c} (`{}`), but {at}.history holds {}",
                        counts[c],
                        self.competences[c],
                        stored.history().len()
                    ),
                ));
            }
        }
        let mut r = ProfileSession {
            schema: crate::session::SCHEMA_VERSION,
            bank_id: s.bank_id.clone(),
            bank_fingerprint: s.bank_fingerprint.clone(),
            competences: s.competences.clone(),
            sessions: self
                .engines
                .iter()
                .zip(&s.sessions)
                .map(|(e, stored)| e.start(stored.seed()))
                .collect(),
            order: Vec::with_capacity(s.order.len()),
            pending: None,
            checked: Checked(true),
        };
        let mut answered = vec![0usize; n];
        for (i, &c) in s.order.iter().enumerate() {
            let routed = self
                .route(&mut r)
                .map_err(|e| Mismatch::new(format!("order[{i}]"), e))?;
            match routed {
                None => {
                    return Err(Mismatch::new(
                        format!("order[{i}]"),
                        format_args!(
                            "an answer after the end of the test (every competence was done after {i} answers)"
                        ),
                    ));
                }
                Some(d) if d != c => {
                    return Err(Mismatch::new(
                        format!("order[{i}]"),
                        format_args!(
                            "stored competence {c} (`{}`), but the routing gives competence {d} (`{}`)",
                            self.competences[c], self.competences[d]
                        ),
                    ));
                }
                Some(_) => {}
            }
            let k = answered[c];
            answered[c] += 1;
            let at = format!("sessions[{c}].history[{k}]");
            // The routing has already asked the competence's engine for its item: the replay offers it
            // again (pending) and records the stored answer.
            self.engines[c].replay_answer(&mut r.sessions[c], &s.sessions[c].history()[k], &at)?;
            r.order.push(c);
            r.pending = None;
        }
        if let Some(c) = s.pending {
            match self.route(&mut r).map_err(|e| Mismatch::new("pending", e))? {
                None => {
                    return Err(Mismatch::new(
                        "pending",
                        format_args!("stored competence {c}, but every competence is done"),
                    ));
                }
                Some(d) if d != c => {
                    return Err(Mismatch::new(
                        "pending",
                        format_args!(
                            "stored competence {c} (`{}`), but the routing gives competence {d} (`{}`)",
                            self.competences[c], self.competences[d]
                        ),
                    ));
                }
                Some(_) => {}
            }
        } else if s.sessions.iter().all(|x| x.finished().is_some())
            && let Some(d) = self.route(&mut r).map_err(|e| Mismatch::new("pending", e))?
        {
            // Every competence stored as done: the routing must agree.
            let id = r.sessions[d].pending().unwrap_or_default().to_string();
            return Err(Mismatch::new(
                format!("sessions[{d}].finished"),
                format_args!(
                    "stored {}, but the test goes on with competence {d} (`{}`), item `{id}`",
                    s.sessions[d].finished().map_or("none", StopReason::name),
                    self.competences[d]
                ),
            ));
        }
        for (c, (engine, (stored, replayed))) in self
            .engines
            .iter()
            .zip(s.sessions.iter().zip(&r.sessions))
            .enumerate()
        {
            engine
                .compare_state(stored, replayed)
                .map_err(|m| m.within(&format!("sessions[{c}]")))?;
        }
        Ok(r)
    }

    /// The routing step of [`Self::next`]: the competence whose item comes next (its session then has
    /// that item pending, and so does `s`), or `None` when every competence is done.
    fn route(&self, s: &mut ProfileSession) -> Result<Option<usize>, SessionError> {
        if let Some(c) = s.pending {
            return Ok(Some(c));
        }
        let last = s.order.last().copied();
        loop {
            let open: Vec<usize> = (0..self.engines.len())
                .filter(|&c| s.sessions[c].finished().is_none())
                .collect();
            let Some(&choice) = open
                .iter()
                .min_by_key(|&&c| (s.sessions[c].history().len(), Some(c) == last, c))
            else {
                return Ok(None);
            };
            match self.engines[choice].next(&mut s.sessions[choice])? {
                Next::Item(_) => {
                    s.pending = Some(choice);
                    return Ok(Some(choice));
                }
                Next::Finished(_) => continue,
            }
        }
    }

    /// The next item, or the end of the test.
    pub fn next(&self, s: &mut ProfileSession) -> Result<Next, SessionError> {
        self.check(s)?;
        match self.route(s)? {
            Some(c) => self.engines[c].next(&mut s.sessions[c]),
            None => Ok(Next::Finished(StopReason::EveryCompetence)),
        }
    }

    /// Record the answer to the pending item.
    pub fn record(
        &self,
        s: &mut ProfileSession,
        item: &str,
        response: i64,
    ) -> Result<Estimate, SessionError> {
        self.check(s)?;
        let Some(c) = s.pending else {
            return Err(SessionError::NotOffered {
                item: item.to_string(),
                pending: "nothing".into(),
            });
        };
        let e = self.engines[c].record(&mut s.sessions[c], item, response)?;
        s.order.push(c);
        s.pending = None;
        Ok(e)
    }

    /// Per-competence results and the total score.
    pub fn result(&self, s: &ProfileSession) -> ProfileResult {
        let mut competences = BTreeMap::new();
        let mut score = 0.0;
        for (i, c) in self.competences.iter().enumerate() {
            let (theta, se) = s.sessions[i].estimate();
            let result = CompetenceResult::from_estimate(
                self.level_map(i),
                theta,
                se,
                s.sessions[i].scored_count(),
                s.sessions[i].finished(),
            );
            score += result.score;
            competences.insert(c.clone(), result);
        }
        ProfileResult {
            competences,
            score,
            finished: s.sessions.iter().all(|x| x.finished().is_some()),
        }
    }

    /// Tutorials of missed items, and per competence up to three tutorials of items located just above
    /// the person's θ̂ (within one level band), nearest first.
    pub fn feedback(&self, s: &ProfileSession) -> Feedback {
        let mut missed = Vec::new();
        let mut next_steps = BTreeMap::new();
        for (i, c) in self.competences.iter().enumerate() {
            let session = &s.sessions[i];
            for r in session.history().iter().filter(|r| r.category == 0) {
                if let Some(item) = self.bank.item(&r.item) {
                    missed.extend(item.tutorials.iter().map(|t| (item.id.clone(), t.clone())));
                }
            }
            next_steps.insert(
                c.clone(),
                next_step_tutorials(&self.bank, c, session.estimate().0, self.level_map(i)),
            );
        }
        Feedback { missed, next_steps }
    }
}

/// Up to three tutorials of competence `c`'s items located in (θ, θ + band], nearest first (band: the
/// width of the level band above θ, 0.75 logit for the PIX map).
pub fn next_step_tutorials(bank: &Bank, c: &str, theta: f64, map: &LevelMap) -> Vec<Tutorial> {
    let k = map.level(theta);
    let band = match (map.cuts().get(k), map.cuts().get(k + 1)) {
        (Some(lo), Some(hi)) => hi - lo,
        _ => 1.0,
    };
    let mut above: Vec<(f64, &etalon_items::Item)> = bank
        .items()
        .iter()
        .filter(|i| i.competence.as_deref() == Some(c) && !i.tutorials.is_empty())
        .map(|i| (i.parameters.location() - theta, i))
        .filter(|(d, _)| *d > 0.0 && *d <= band.max(0.75))
        .collect();
    above.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<Tutorial> = Vec::new();
    for (_, item) in above {
        for t in &item.tutorials {
            if !out.contains(t) && out.len() < 3 {
                out.push(t.clone());
            }
        }
    }
    out
}
