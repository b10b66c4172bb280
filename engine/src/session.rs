//! Adaptive sessions: start, ask for the next item, record an answer, read the result.
//!
//! A [`CatEngine`] holds one bank and one [`SessionConfig`] with everything precomputed from them
//! (log-probability and information tables on the session grid, items ordered by their information
//! bound); it is immutable and `Sync`, shared by every session and thread. A [`Session`] is a plain
//! serde value — the configuration, the RNG state, the history — that can be saved as JSON after any
//! answer and resumed anywhere: the engine then makes exactly the choices the uninterrupted session
//! would have made. A session records the bank's id and fingerprint and is refused by an engine built
//! on another bank or configuration. Every rejected call leaves the session exactly as it was.
//!
//! ```
//! use etalon_engine::session::{CatEngine, Next};
//! use etalon_engine::config::SessionConfig;
//! let bank = etalon_items::example::example_bank();
//! let engine = CatEngine::new(&bank, SessionConfig::default()).unwrap();
//! let mut session = engine.start(42);
//! while let Next::Item(id) = engine.next(&mut session).unwrap() {
//!     engine.record(&mut session, &id, 1).unwrap(); // always correct
//! }
//! assert!(engine.result(&session).theta > 1.0);
//! ```

use crate::config::{ConfigError, Exposure, SelectionRule, SessionConfig, StartConfig};
use crate::estimate::{self, Answer, EapTable, Estimate, EstimateKind, Method};
use crate::irt::ResponseFunction;
use crate::quadrature::Grid;
use etalon_items::{Bank, Item, ItemModel, Status};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Why a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StopReason {
    /// The maximum number of items was reached.
    MaxItems,
    /// The SE reached the target.
    Precision,
    /// The θ interval lies within one band of the cut scores.
    Classified,
    /// No eligible item is left.
    BankExhausted,
    /// A competence assessment ended because every competence stopped; each competence's own reason is
    /// in its result.
    EveryCompetence,
}

impl StopReason {
    /// The name used in files and JSON (`max-items`, `precision`, …).
    pub fn name(self) -> &'static str {
        match self {
            StopReason::MaxItems => "max-items",
            StopReason::Precision => "precision",
            StopReason::Classified => "classified",
            StopReason::BankExhausted => "bank-exhausted",
            StopReason::EveryCompetence => "every-competence",
        }
    }
}

/// Format version of saved sessions. A session saved by a version of Etalon is read by every later one;
/// a session from a newer format is refused with [`SessionError::Schema`].
pub const SCHEMA_VERSION: u32 = 1;

/// The version of sessions saved before the field existed.
pub(crate) fn schema_v1() -> u32 {
    1
}

/// Refuse a session saved in a format this version does not know.
pub(crate) fn check_schema(schema: u32) -> Result<(), SessionError> {
    if schema == 0 || schema > SCHEMA_VERSION {
        return Err(SessionError::Schema {
            found: schema,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Next {
    /// Administer this item (its id).
    Item(String),
    /// The test is over.
    Finished(StopReason),
}

/// One administered item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Item id.
    pub item: String,
    /// The response code as given.
    pub response: i64,
    /// Its category 0 … K-1.
    pub category: u8,
    /// Whether it counts for the estimate (`pretest` items do not).
    pub scored: bool,
    /// θ̂ after this answer.
    pub theta: f64,
    /// SE after this answer.
    pub se: f64,
}

/// Set once a session has been checked against its engine's bank (not serialised: a session read
/// from JSON is checked again; equal whatever its value, so it never makes two sessions differ).
#[derive(Debug, Clone, Copy, Default)]
struct Checked(bool);

impl PartialEq for Checked {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The state of one test: a plain value, saved and resumed as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Format version ([`SCHEMA_VERSION`]); absent in files written before versioning (version 1).
    #[serde(default = "schema_v1")]
    schema: u32,
    bank_id: String,
    bank_fingerprint: String,
    config: SessionConfig,
    seed: u64,
    rng: Xoshiro256PlusPlus,
    start_theta: f64,
    pending: Option<String>,
    history: Vec<Record>,
    set_aside: Vec<String>,
    finished: Option<StopReason>,
    #[serde(skip)]
    checked: Checked,
}

impl Session {
    /// The bank's id.
    pub fn bank_id(&self) -> &str {
        &self.bank_id
    }
    /// The bank's fingerprint.
    pub fn bank_fingerprint(&self) -> &str {
        &self.bank_fingerprint
    }
    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
    /// The seed the session was started with.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The item offered and not yet answered.
    pub fn pending(&self) -> Option<&str> {
        self.pending.as_deref()
    }
    /// Every answer so far, in order, with θ̂ and SE after each.
    pub fn history(&self) -> &[Record] {
        &self.history
    }
    /// Items set aside by Sympson–Hetter exposure control.
    pub fn set_aside(&self) -> &[String] {
        &self.set_aside
    }
    /// Why the test ended, once it has.
    pub fn finished(&self) -> Option<StopReason> {
        self.finished
    }
    /// Current θ̂ and SE: after the last scored answer, else the start θ with the prior SD.
    pub fn estimate(&self) -> (f64, f64) {
        self.history
            .iter()
            .rev()
            .find(|r| r.scored)
            .map_or((self.start_theta, self.config.estimator.prior.sd), |r| {
                (r.theta, r.se)
            })
    }
    /// Number of scored answers.
    pub fn scored_count(&self) -> usize {
        self.history.iter().filter(|r| r.scored).count()
    }
}

/// A call the session cannot accept. The session is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session was started on another bank.
    #[error(
        "the session runs on bank `{session_bank}` ({session_fingerprint}), not `{bank}` ({fingerprint})"
    )]
    WrongBank {
        /// Session's bank id.
        session_bank: String,
        /// Session's bank fingerprint.
        session_fingerprint: String,
        /// Engine's bank id.
        bank: String,
        /// Engine's bank fingerprint.
        fingerprint: String,
    },
    /// The session was started with another configuration.
    #[error("the session was started with another configuration than this engine's")]
    WrongConfig,
    /// The item is not in the bank.
    #[error("unknown item `{0}`")]
    UnknownItem(String),
    /// The item was not offered.
    #[error("item `{item}` was not offered (pending: {pending})")]
    NotOffered {
        /// The item answered.
        item: String,
        /// What is pending, if anything.
        pending: String,
    },
    /// The item was already answered.
    #[error("item `{0}` was already answered")]
    AlreadyAnswered(String),
    /// The response code is not one of the item's codes.
    #[error("item `{item}`: response {code} is not one of its codes {allowed:?}")]
    InvalidResponse {
        /// Item id.
        item: String,
        /// The code given.
        code: i64,
        /// The item's codes.
        allowed: Vec<i64>,
    },
    /// The test is over.
    #[error("the test is finished ({0:?})")]
    Finished(StopReason),
    /// Estimation failed.
    #[error("estimation: {0}")]
    Estimation(#[from] estimate::EstimationError),
    /// A saved session whose content does not fit its bank (edited by hand, or damaged).
    #[error("corrupt session: {0}")]
    Corrupt(String),
    /// A session saved in a format this version of Etalon does not know.
    #[error("session format version {found} is not supported (this version reads 1 to {supported})")]
    Schema {
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
}

/// The outcome of a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResult {
    /// Final θ̂.
    pub theta: f64,
    /// Its SE.
    pub se: f64,
    /// Number of scored items.
    pub length: usize,
    /// Every administered item id, in order (pretest items included).
    pub items: Vec<String>,
    /// Why the test ended (`None` while it runs).
    pub reason: Option<StopReason>,
    /// Scored items per competence.
    pub per_competence: std::collections::BTreeMap<String, usize>,
}

/// A bank and a configuration, with everything precomputed for fast selection.
#[derive(Debug, Clone)]
pub struct CatEngine {
    bank: Bank,
    fingerprint: String,
    config: SessionConfig,
    models: Vec<ItemModel>,
    table: EapTable,
    /// I_j(θ_q), item-major (MPWI only).
    info_table: Vec<f64>,
    /// Competence index of each item (into `competences`), `u16::MAX` for none.
    competence: Vec<u16>,
    competences: Vec<String>,
    /// Competences the test covers (indices).
    test_competences: Vec<u16>,
    /// Skill group of each item (`u32::MAX` for none).
    skill: Vec<u32>,
    /// Logistic items by decreasing information bound a²/4; polytomous items listed apart.
    by_bound: Vec<(f64, u32)>,
    polytomous: Vec<u32>,
    location: Vec<f64>,
    exposure: Vec<f64>,
    /// Item statuses, compact (the selection scan reads them).
    status: Vec<Status>,
    /// Items of each competence.
    by_competence: Vec<Vec<u32>>,
    z: f64,
}

/// PIX's draw among the five best items.
const PIX_WEIGHTS: [f64; 5] = [0.51, 0.25, 0.12, 0.06, 0.06];

impl CatEngine {
    /// Validate `config` against `bank` and precompute the tables.
    pub fn new(bank: &Bank, config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate(bank)?;
        let grid = Grid::new(config.estimator.grid, config.estimator.prior)
            .map_err(estimate::EstimationError::from)?;
        let models: Vec<ItemModel> = bank.items().iter().map(|i| i.parameters.clone()).collect();
        let table = EapTable::new(&models, grid.clone());
        let q = grid.len();
        let info_table = if config.selection.rule == SelectionRule::Mpwi {
            models
                .iter()
                .flat_map(|m| grid.points().iter().map(move |&t| m.information(t)))
                .collect()
        } else {
            Vec::new()
        };
        debug_assert!(info_table.is_empty() || info_table.len() == models.len() * q);
        let mut competences: Vec<String> = Vec::new();
        let mut index: HashMap<String, u16> = HashMap::new();
        let competence: Vec<u16> = bank
            .items()
            .iter()
            .map(|i| match &i.competence {
                None => u16::MAX,
                Some(c) => *index.entry(c.clone()).or_insert_with(|| {
                    competences.push(c.clone());
                    (competences.len() - 1) as u16
                }),
            })
            .collect();
        let test_competences = if config.content.competences.is_empty() {
            (0..competences.len() as u16).collect()
        } else {
            config.content.competences.iter().map(|c| index[c]).collect()
        };
        let prefix = &config.content.one_per_tag_prefix;
        let mut skills: HashMap<&str, u32> = HashMap::new();
        let skill = bank
            .items()
            .iter()
            .map(|i| {
                if prefix.is_empty() {
                    return u32::MAX;
                }
                match i.tags.iter().find(|t| t.starts_with(prefix.as_str())) {
                    None => u32::MAX,
                    Some(t) => {
                        let n = skills.len() as u32;
                        *skills.entry(t.as_str()).or_insert(n)
                    }
                }
            })
            .collect();
        let mut by_bound: Vec<(f64, u32)> = Vec::new();
        let mut polytomous = Vec::new();
        for (j, m) in models.iter().enumerate() {
            match m.logistic() {
                Some(l) => by_bound.push((l.a() * l.a() / 4.0, j as u32)),
                None => polytomous.push(j as u32),
            }
        }
        by_bound.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        let z = match &config.stopping.classification {
            Some(c) => {
                use statrs::distribution::{ContinuousCDF, Normal};
                Normal::standard().inverse_cdf(0.5 + c.confidence / 2.0)
            }
            None => f64::NAN,
        };
        let mut by_competence = vec![Vec::new(); competences.len()];
        for (j, &c) in competence.iter().enumerate() {
            if c != u16::MAX {
                by_competence[c as usize].push(j as u32);
            }
        }
        Ok(CatEngine {
            status: bank.items().iter().map(|i| i.status).collect(),
            by_competence,
            fingerprint: bank.fingerprint(),
            location: models.iter().map(ItemModel::location).collect(),
            exposure: bank.items().iter().map(|i| i.exposure.unwrap_or(1.0)).collect(),
            bank: bank.clone(),
            config,
            models,
            table,
            info_table,
            competence,
            competences,
            test_competences,
            skill,
            by_bound,
            polytomous,
            z,
        })
    }

    /// The bank.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }
    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
    /// The item models, in bank order.
    pub fn models(&self) -> &[ItemModel] {
        &self.models
    }
    /// The session grid's log-probability table.
    pub fn table(&self) -> &EapTable {
        &self.table
    }

    /// Replace the Sympson–Hetter exposure parameters (one per bank item, in (0, 1]).
    pub fn set_exposure_parameters(&mut self, k: &[f64]) {
        assert_eq!(k.len(), self.exposure.len(), "one exposure parameter per item");
        self.exposure.copy_from_slice(k);
    }

    /// Start a session with this seed. A random start θ is drawn from the session's RNG.
    pub fn start(&self, seed: u64) -> Session {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let start_theta = match self.config.start {
            StartConfig::Fixed { theta } => theta,
            StartConfig::Random { lower, upper } => lower + (upper - lower) * rng.random::<f64>(),
        };
        Session {
            schema: SCHEMA_VERSION,
            bank_id: self.bank.id().to_string(),
            bank_fingerprint: self.fingerprint.clone(),
            config: self.config.clone(),
            seed,
            rng,
            start_theta,
            pending: None,
            history: Vec::new(),
            set_aside: Vec::new(),
            finished: None,
            checked: Checked(true),
        }
    }

    fn check(&self, s: &mut Session) -> Result<(), SessionError> {
        check_schema(s.schema)?;
        if s.bank_fingerprint != self.fingerprint || s.bank_id != self.bank.id() {
            return Err(SessionError::WrongBank {
                session_bank: s.bank_id.clone(),
                session_fingerprint: s.bank_fingerprint.clone(),
                bank: self.bank.id().to_string(),
                fingerprint: self.fingerprint.clone(),
            });
        }
        if s.config != self.config {
            return Err(SessionError::WrongConfig);
        }
        if s.checked.0 {
            return Ok(());
        }
        // A resumed session is data from outside: every reference must fit the bank (once).
        for (n, r) in s.history.iter().enumerate() {
            let Some(item) = self.bank.item(&r.item) else {
                return Err(SessionError::Corrupt(format!(
                    "answer {} is to unknown item `{}`",
                    n + 1,
                    r.item
                )));
            };
            if r.category as usize >= item.parameters.categories()
                || item.category_of(r.response) != Some(r.category as usize)
            {
                return Err(SessionError::Corrupt(format!(
                    "answer {} to `{}`: response {} / category {} do not fit the item",
                    n + 1,
                    r.item,
                    r.response,
                    r.category
                )));
            }
        }
        if let Some(p) = &s.pending
            && self.bank.item(p).is_none()
        {
            return Err(SessionError::Corrupt(format!(
                "pending item `{p}` is not in the bank"
            )));
        }
        Ok(())
    }

    /// The scored answers of a session, as bank positions and categories.
    fn answers(&self, s: &Session) -> Vec<Answer> {
        s.history
            .iter()
            .filter(|r| r.scored)
            .filter_map(|r| {
                self.bank
                    .position(&r.item)
                    .map(|j| Answer::new(j, r.category as usize))
            })
            .collect()
    }

    /// θ̂ and SE from scored answers, with ML/WLE kept inside the bounds (an infinite ML estimate
    /// becomes the bound, as catR does) so that selection always has a finite θ.
    fn estimate_answers(&self, answers: &[Answer]) -> Result<Estimate, SessionError> {
        let cfg = &self.config.estimator;
        let mut buf = Vec::with_capacity(self.table.grid().len());
        let start = self.table.eap(answers, &mut buf).theta;
        let e = match cfg.method {
            Method::Eap => self.table.eap(answers, &mut buf),
            Method::Map => estimate::map(&self.models, answers, cfg.prior, cfg.bounds, start),
            Method::Ml => estimate::ml(&self.models, answers, cfg.bounds, start)?,
            Method::Wle => estimate::wle(&self.models, answers, cfg.bounds, start)?,
        };
        if e.kind == EstimateKind::Infinite {
            let theta = if e.theta > 0.0 { cfg.bounds.1 } else { cfg.bounds.0 };
            let info = estimate::test_information(&self.models, answers, theta);
            return Ok(Estimate {
                theta,
                se: 1.0 / info.sqrt(),
                kind: EstimateKind::Bounded,
            });
        }
        Ok(e)
    }

    fn stop_reason(&self, s: &Session) -> Option<StopReason> {
        let st = &self.config.stopping;
        let n = s.scored_count();
        if n >= st.max_items {
            return Some(StopReason::MaxItems);
        }
        if n == 0 || n < st.min_items {
            return None;
        }
        let (theta, se) = s.estimate();
        if let Some(t) = st.se_target
            && se <= t
        {
            return Some(StopReason::Precision);
        }
        if let Some(c) = &st.classification {
            let band = |x: f64| c.cuts.partition_point(|&cut| cut <= x);
            if band(theta - self.z * se) == band(theta + self.z * se) {
                return Some(StopReason::Classified);
            }
        }
        None
    }

    /// The next item to administer, or the end of the test. Calling it again before the answer is
    /// recorded returns the same item.
    pub fn next(&self, s: &mut Session) -> Result<Next, SessionError> {
        self.check(s)?;
        if let Some(r) = s.finished {
            return Ok(Next::Finished(r));
        }
        if let Some(p) = &s.pending {
            return Ok(Next::Item(p.clone()));
        }
        if let Some(r) = self.stop_reason(s) {
            s.finished = Some(r);
            return Ok(Next::Finished(r));
        }
        // Administered and set-aside items, skills used: small sorted lists, so that eligibility is
        // checked only for the items the (pruned) selection scan reaches, never for the whole bank.
        let mut taken: Vec<u32> = Vec::with_capacity(s.history.len() + s.set_aside.len());
        let mut used_skill: Vec<u32> = Vec::new();
        let mut counts = vec![0usize; self.competences.len()];
        let mut last_competence = u16::MAX;
        let mut answers: Vec<Answer> = Vec::with_capacity(s.history.len());
        for r in &s.history {
            if let Some(j) = self.bank.position(&r.item) {
                taken.push(j as u32);
                if r.scored {
                    answers.push(Answer::new(j, r.category as usize));
                }
                if self.skill[j] != u32::MAX {
                    used_skill.push(self.skill[j]);
                }
                if r.scored && self.competence[j] != u16::MAX {
                    counts[self.competence[j] as usize] += 1;
                    last_competence = self.competence[j];
                }
            }
        }
        taken.extend(
            s.set_aside
                .iter()
                .filter_map(|id| self.bank.position(id))
                .map(|j| j as u32),
        );
        taken.sort_unstable();
        let eligible = |j: usize, status: Status| {
            self.status[j] == status
                && taken.binary_search(&(j as u32)).is_err()
                && (self.skill[j] == u32::MAX || !used_skill.contains(&self.skill[j]))
        };
        // Pretest seeding at the configured positions.
        let position = s.history.len() + 1;
        if self.config.content.pretest_positions.contains(&position) {
            let pool: Vec<usize> = (0..self.models.len())
                .filter(|&j| eligible(j, Status::Pretest))
                .collect();
            if !pool.is_empty() {
                let j = pool[s.rng.random_range(0..pool.len())];
                let id = self.bank.items()[j].id.clone();
                s.pending = Some(id.clone());
                return Ok(Next::Item(id));
            }
        }
        let allowed = self.allowed_competences(s, &counts, last_competence, |c| {
            self.by_competence[c as usize]
                .iter()
                .any(|&j| eligible(j as usize, Status::Active))
        });
        let candidate = |j: usize| {
            eligible(j, Status::Active)
                && match allowed.as_ref() {
                    None => true,
                    Some(a) => self.competence[j] != u16::MAX && a[self.competence[j] as usize],
                }
        };
        let Some(chosen) = self.choose(s, &answers, &candidate) else {
            s.finished = Some(StopReason::BankExhausted);
            return Ok(Next::Finished(StopReason::BankExhausted));
        };
        let id = self.bank.items()[chosen].id.clone();
        s.pending = Some(id.clone());
        Ok(Next::Item(id))
    }

    /// Which competences the next item may come from (`None`: no content balancing applies).
    fn allowed_competences(
        &self,
        s: &Session,
        counts: &[usize],
        last: u16,
        has_items: impl Fn(u16) -> bool,
    ) -> Option<Vec<bool>> {
        let c = &self.config.content;
        let balancing = !c.competences.is_empty()
            || !c.min_items.is_empty()
            || !c.max_items.is_empty()
            || !c.target_proportions.is_empty()
            || c.visit_all
            || c.avoid_consecutive;
        if !balancing || self.competences.is_empty() {
            return None;
        }
        let name = |k: u16| &self.competences[k as usize];
        let mut allowed = vec![false; self.competences.len()];
        for &k in &self.test_competences {
            let at_max = c.max_items.get(name(k)).is_some_and(|&m| counts[k as usize] >= m);
            allowed[k as usize] = !at_max && has_items(k);
        }
        // Each further rule narrows the set only if something remains.
        let narrow = |allowed: &mut Vec<bool>, keep: &dyn Fn(u16) -> bool| {
            let next: Vec<bool> = (0..allowed.len() as u16)
                .map(|k| allowed[k as usize] && keep(k))
                .collect();
            if next.iter().any(|&x| x) {
                *allowed = next;
            }
        };
        let n = s.scored_count();
        let remaining = self.config.stopping.max_items.saturating_sub(n);
        let below_min = |k: u16| c.min_items.get(name(k)).is_some_and(|&m| counts[k as usize] < m);
        let deficit: usize = c
            .min_items
            .iter()
            .map(|(id, &m)| {
                self.competences
                    .iter()
                    .position(|x| x == id)
                    .map_or(0, |k| m.saturating_sub(counts[k]))
            })
            .sum();
        if deficit > 0 && deficit >= remaining {
            narrow(&mut allowed, &below_min);
        }
        if c.visit_all {
            narrow(&mut allowed, &|k| counts[k as usize] == 0);
        }
        if !c.target_proportions.is_empty() {
            // Kingsbury–Zara: the competence furthest below its target proportion.
            let total = (n + 1) as f64;
            let gap = |k: u16| {
                c.target_proportions.get(name(k)).copied().unwrap_or(0.0) - counts[k as usize] as f64 / total
            };
            let best = (0..allowed.len() as u16)
                .filter(|&k| allowed[k as usize])
                .max_by(|&x, &y| gap(x).total_cmp(&gap(y)).then(y.cmp(&x)));
            if let Some(b) = best {
                narrow(&mut allowed, &|k| k == b);
            }
        }
        if c.avoid_consecutive && last != u16::MAX {
            narrow(&mut allowed, &|k| k != last);
        }
        Some(allowed)
    }

    /// Rank the candidates by the selection rule and apply exposure control; `None` when no item is
    /// eligible.
    fn choose(
        &self,
        s: &mut Session,
        answers: &[Answer],
        candidate: &impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let rule = self.config.selection.rule;
        if rule == SelectionRule::Random {
            let pool: Vec<usize> = (0..self.models.len()).filter(|&j| candidate(j)).collect();
            return (!pool.is_empty()).then(|| pool[s.rng.random_range(0..pool.len())]);
        }
        let k = match self.config.selection.exposure {
            Exposure::None => 1,
            Exposure::Randomesque { k } => k,
            Exposure::Pix => PIX_WEIGHTS.len(),
            Exposure::SympsonHetter => usize::MAX,
        };
        let (theta, _) = s.estimate();
        let weights = if matches!(rule, SelectionRule::Mpwi | SelectionRule::Kl) {
            let mut post = estimate::Posterior::new(self.table.grid());
            for a in answers {
                post.add(&self.table, *a);
            }
            let mut w = Vec::with_capacity(self.table.grid().len());
            post.weights_into(&mut w);
            w
        } else {
            Vec::new()
        };
        let ranked = self.top_k(rule, theta, &weights, candidate, k);
        if ranked.is_empty() {
            return None;
        }
        Some(match &self.config.selection.exposure {
            Exposure::None => ranked[0].1,
            Exposure::Randomesque { .. } => ranked[s.rng.random_range(0..ranked.len())].1,
            Exposure::Pix => {
                let w = &PIX_WEIGHTS[..ranked.len()];
                let total: f64 = w.iter().sum();
                let mut u = s.rng.random::<f64>() * total;
                for (i, &wi) in w.iter().enumerate() {
                    if u < wi {
                        return Some(ranked[i].1);
                    }
                    u -= wi;
                }
                ranked[ranked.len() - 1].1
            }
            Exposure::SympsonHetter => {
                for &(_, j) in &ranked {
                    if s.rng.random::<f64>() < self.exposure[j] {
                        return Some(j);
                    }
                    s.set_aside.push(self.bank.items()[j].id.clone());
                }
                // Every candidate was set aside: give the best one rather than end the test.
                let best = ranked[0].1;
                s.set_aside.retain(|id| *id != self.bank.items()[best].id);
                best
            }
        })
    }

    /// The selection criterion of item `j` (larger is better).
    #[inline]
    fn criterion(&self, rule: SelectionRule, j: usize, theta: f64, weights: &[f64]) -> f64 {
        let m = &self.models[j];
        match rule {
            SelectionRule::Mfi => m.information(theta),
            SelectionRule::Mpwi => {
                let q = weights.len();
                self.info_table[j * q..(j + 1) * q]
                    .iter()
                    .zip(weights)
                    .map(|(i, w)| i * w)
                    .sum()
            }
            SelectionRule::Kl => {
                // KL_j = Σ_k P_k(θ̂) [log P_k(θ̂) - Σ_q w_q log P_k(θ_q)] (the tabulated log P).
                let mean_log =
                    |k: usize| -> f64 { self.table.row(j, k).iter().zip(weights).map(|(l, w)| l * w).sum() };
                match m.logistic() {
                    Some(l) => {
                        let p1 = crate::irt::logistic_prob(l, theta).clamp(1e-300, 1.0 - 1e-16);
                        let (lp1, lp0) = (p1.ln(), (-p1).ln_1p());
                        p1 * (lp1 - mean_log(1)) + (1.0 - p1) * (lp0 - mean_log(0))
                    }
                    None => (0..m.categories())
                        .map(|k| {
                            let lp = m.log_prob(theta, k);
                            lp.exp() * (lp - mean_log(k))
                        })
                        .sum(),
                }
            }
            SelectionRule::Urry => -(self.location[j] - theta).abs(),
            SelectionRule::Random => 0.0,
        }
    }

    /// The `k` best candidates, best first, ties to the lower bank position. Logistic items are
    /// scanned by decreasing information bound and the scan stops once the bound falls below the
    /// k-th best criterion (MFI and MPWI: both are ≤ a²/4); for MFI, items whose distance bound
    /// a²/(4 + a²(θ - b)²) is below it are skipped without evaluating their information.
    fn top_k(
        &self,
        rule: SelectionRule,
        theta: f64,
        weights: &[f64],
        candidate: &impl Fn(usize) -> bool,
        k: usize,
    ) -> Vec<(f64, usize)> {
        let mut best: Vec<(f64, usize)> = Vec::with_capacity(k.min(self.models.len()) + 1);
        let better = |x: &(f64, usize), y: &(f64, usize)| x.0 > y.0 || (x.0 == y.0 && x.1 < y.1);
        let offer = |best: &mut Vec<(f64, usize)>, item: (f64, usize)| {
            if best.len() == k && !better(&item, &best[k - 1]) {
                return;
            }
            let at = best.partition_point(|b| better(b, &item));
            best.insert(at, item);
            if best.len() > k {
                best.pop();
            }
        };
        let prunable = matches!(rule, SelectionRule::Mfi | SelectionRule::Mpwi);
        for &(bound, j) in &self.by_bound {
            let j = j as usize;
            if prunable && best.len() == k {
                let kth = best[k - 1].0;
                if bound < kth {
                    break;
                }
                // MFI: s·t = 1/(2 + 2 cosh z) ≤ 1/(4 + z²), so I(θ) ≤ a²/(4 + a²(θ - b)²) without an exp.
                if rule == SelectionRule::Mfi {
                    let a2 = 4.0 * bound;
                    let z = self.location[j] - theta;
                    if a2 / (4.0 + a2 * z * z) < kth {
                        continue;
                    }
                }
            }
            if candidate(j) {
                offer(&mut best, (self.criterion(rule, j, theta, weights), j));
            }
        }
        for &j in &self.polytomous {
            let j = j as usize;
            if candidate(j) {
                offer(&mut best, (self.criterion(rule, j, theta, weights), j));
            }
        }
        best
    }

    /// Record the answer `response` (an original response code) to the pending item; returns the new
    /// estimate. Rejected calls (wrong item, repeated item, unknown code, finished test, other bank)
    /// leave the session unchanged.
    pub fn record(&self, s: &mut Session, item: &str, response: i64) -> Result<Estimate, SessionError> {
        self.check(s)?;
        if let Some(r) = s.finished {
            return Err(SessionError::Finished(r));
        }
        let Some(j) = self.bank.position(item) else {
            return Err(SessionError::UnknownItem(item.to_string()));
        };
        if s.pending.as_deref() != Some(item) {
            if s.history.iter().any(|r| r.item == item) {
                return Err(SessionError::AlreadyAnswered(item.to_string()));
            }
            return Err(SessionError::NotOffered {
                item: item.to_string(),
                pending: s.pending.clone().unwrap_or_else(|| "nothing".into()),
            });
        }
        let it: &Item = &self.bank.items()[j];
        let Some(category) = it.category_of(response) else {
            return Err(SessionError::InvalidResponse {
                item: item.to_string(),
                code: response,
                allowed: it.response_codes(),
            });
        };
        let scored = it.status == Status::Active;
        let estimate = if scored {
            let mut answers = self.answers(s);
            answers.push(Answer::new(j, category));
            self.estimate_answers(&answers)?
        } else {
            let (theta, se) = s.estimate();
            Estimate {
                theta,
                se,
                kind: EstimateKind::Finite,
            }
        };
        s.history.push(Record {
            item: item.to_string(),
            response,
            category: category as u8,
            scored,
            theta: estimate.theta,
            se: estimate.se,
        });
        s.pending = None;
        Ok(estimate)
    }

    /// The result so far (final once [`Session::finished`] is set).
    pub fn result(&self, s: &Session) -> SessionResult {
        let (theta, se) = s.estimate();
        let mut per_competence = std::collections::BTreeMap::new();
        for r in s.history.iter().filter(|r| r.scored) {
            if let Some(c) = self.bank.item(&r.item).and_then(|i| i.competence.clone()) {
                *per_competence.entry(c).or_insert(0) += 1;
            }
        }
        SessionResult {
            theta,
            se,
            length: s.scored_count(),
            items: s.history.iter().map(|r| r.item.clone()).collect(),
            reason: s.finished,
            per_competence,
        }
    }
}
