//! Adaptive sessions: start, ask for the next item, record an answer, read the result.
//!
//! A [`CatEngine`] holds one bank and one [`SessionConfig`] with everything precomputed from them
//! (log-probability and information tables on the session grid, items ordered by their information
//! bound); it is immutable and `Sync`, shared by every session and thread. A [`Session`] is a plain
//! serde value — the configuration, the RNG state, the history — that can be saved as JSON after any
//! answer and resumed anywhere: the engine then makes exactly the choices the uninterrupted session
//! would have made. A session records the bank's id and fingerprint and is refused by an engine built
//! on another bank or configuration. A session read from outside is verified, not trusted: the first
//! call replays it from its seed and compares every stored field with the replay, and an edited or
//! damaged session is [`SessionError::Corrupt`], naming the field ([`CatEngine::verify`]). Every
//! rejected call leaves the session exactly as it was.
//!
//! Precision and classification stopping wait for the competence minima (`content.min_items`) that
//! can still be met — the next items then come from those competences; `stopping.max_items` does not
//! wait.
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
use crate::estimate::{self, Answer, EapTable, Estimate, EstimateKind, Method, RunningPosterior};
use crate::irt::ResponseFunction;
use crate::quadrature::Grid;
use etalon_items::{Bank, Item, ItemModel, Status};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

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
/// A session from outside (`checked` false) becomes its replay, the first mismatch being
/// [`SessionError::Corrupt`]; one the engine built or verified is left as it is. Call after
/// [`check_identity`].
pub(crate) fn adopt_replay<S>(
    s: &mut S,
    checked: bool,
    replay: impl FnOnce(&S) -> Result<S, Mismatch>,
) -> Result<(), SessionError> {
    if !checked {
        *s = replay(s).map_err(|m| SessionError::Corrupt(m.to_string()))?;
    }
    Ok(())
}

/// A saved session's identity: its format version, then its bank (the id and fingerprint it recorded
/// must be those of the engine's `bank`, whose fingerprint is `fingerprint`), then its configuration
/// (`same_config`: whether it is the engine's).
pub(crate) fn check_identity(
    schema: u32,
    session_bank: &str,
    session_fingerprint: &str,
    bank: &Bank,
    fingerprint: &str,
    same_config: bool,
) -> Result<(), SessionError> {
    check_schema(schema)?;
    if session_fingerprint != fingerprint || session_bank != bank.id() {
        return Err(SessionError::WrongBank {
            session_bank: session_bank.to_string(),
            session_fingerprint: session_fingerprint.to_string(),
            bank: bank.id().to_string(),
            fingerprint: fingerprint.to_string(),
        });
    }
    if !same_config {
        return Err(SessionError::WrongConfig);
    }
    Ok(())
}

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

/// Set once a competence assessment ([`crate::profile::ProfileSession`]) has been verified against its
/// engine (not serialised: a session read from JSON is verified again; equal whatever its value, so it
/// never makes two sessions differ).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Checked(pub(crate) bool);

impl PartialEq for Checked {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What the engine that built or verified a session knows of it, so that the calls of a running test
/// need not establish it again (not serialised: a session read from JSON has none of it and is
/// verified again; equal whatever its value, so it never makes two sessions differ).
#[derive(Debug, Clone, Default)]
pub(crate) struct Verified {
    /// The engine ([`CatEngine`]'s `id`) that built or verified the session: its bank and
    /// configuration are the session's. `None`: read from outside and not yet verified.
    engine: Option<u64>,
    /// Bank position of each history item, in that engine's bank (looked up once, when the answer is
    /// recorded, rather than by id at every step).
    positions: Vec<u32>,
    /// Bank position of the pending item (set when the engine offers it, so that recording the
    /// answer looks nothing up).
    pending: Option<u32>,
    /// The posterior weights of the scored answers (so that recording an answer costs one
    /// multiplication per grid point); empty until the first answer, or when an item does not
    /// allow the product form, and then rebuilt from the history as needed.
    posterior: RunningPosterior,
}

impl PartialEq for Verified {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Ids of engines ([`CatEngine`]'s `id`): every engine built gets a new one.
static NEXT_ENGINE: AtomicU64 = AtomicU64::new(0);

/// Where a saved session departs from its replay: the field, as a JSON path (`history[3].theta`),
/// and how.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mismatch {
    field: String,
    detail: String,
}

impl Mismatch {
    pub(crate) fn new(field: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Mismatch {
            field: field.into(),
            detail: detail.to_string(),
        }
    }
    /// The same mismatch inside `prefix` (`sessions[2]` + `history[0].item`).
    pub(crate) fn within(self, prefix: &str) -> Self {
        Mismatch {
            field: format!("{prefix}.{}", self.field),
            detail: self.detail,
        }
    }
    fn with_note(self, note: impl std::fmt::Display) -> Self {
        Mismatch {
            field: self.field,
            detail: format!("{} ({note})", self.detail),
        }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

/// Stored and recomputed values agree to 1e-9, relative (absolute below 1): floating-point noise
/// between builds (the `std` and `libm` maths) passes, an edited value does not.
pub(crate) fn compare_f64(field: impl Into<String>, stored: f64, recomputed: f64) -> Result<(), Mismatch> {
    let scale = stored.abs().max(recomputed.abs()).max(1.0);
    if stored == recomputed || (stored - recomputed).abs() <= 1e-9 * scale {
        return Ok(());
    }
    Err(Mismatch::new(
        field,
        format_args!("stored {stored}, recomputed {recomputed}"),
    ))
}

/// Compare a stored record with the recomputed one (`at`: its position, `history[3]`).
fn compare_record(at: &str, stored: &Record, recomputed: &Record) -> Result<(), Mismatch> {
    let differ = |field: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
        Mismatch::new(
            format!("{at}.{field}"),
            format_args!("stored {a}, recomputed {b}"),
        )
    };
    if stored.item != recomputed.item {
        return Err(differ("item", &stored.item, &recomputed.item));
    }
    if stored.response != recomputed.response {
        return Err(differ("response", &stored.response, &recomputed.response));
    }
    if stored.category != recomputed.category {
        return Err(differ("category", &stored.category, &recomputed.category));
    }
    if stored.scored != recomputed.scored {
        return Err(differ("scored", &stored.scored, &recomputed.scored));
    }
    compare_f64(format!("{at}.theta"), stored.theta, recomputed.theta)?;
    compare_f64(format!("{at}.se"), stored.se, recomputed.se)
}

/// The four words of a xoshiro256++ state (as serialised).
fn rng_state(rng: &Xoshiro256PlusPlus) -> [u64; 4] {
    #[derive(Deserialize)]
    struct State {
        s: [u64; 4],
    }
    serde_json::to_value(rng)
        .and_then(serde_json::from_value::<State>)
        .map(|x| x.s)
        .unwrap_or_else(|e| unreachable!("a xoshiro256++ state serialises as four words: {e}"))
}

/// An optional value in a message: `` `x` `` or `none`.
fn show(x: Option<&str>) -> String {
    x.map_or_else(|| "none".to_string(), |x| format!("`{x}`"))
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
    verified: Verified,
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
    /// The pending item's bank position, when the engine that offered it (or verified the session)
    /// recorded it.
    pub(crate) fn pending_position(&self) -> Option<usize> {
        self.verified.pending.map(|j| j as usize)
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
    /// A saved session that does not fit its bank, or that its own answers, replayed from its seed,
    /// do not reproduce (edited by hand, or damaged). The message starts with the field at fault, as a
    /// path into the saved JSON: `history[3].theta: stored 5, recomputed 0.412`.
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

/// Buffers of the per-step calls, one set per thread and reused from step to step, so that a step
/// allocates only the item ids it hands out and records.
#[derive(Default)]
struct Scratch {
    /// The scored answers ([`CatEngine::record`]).
    answers: Vec<Answer>,
    /// The log posterior on the grid ([`CatEngine::record`]).
    log_post: Vec<f64>,
    /// The best candidates ([`CatEngine::next`]).
    ranked: Vec<(f64, usize)>,
    /// The posterior being updated ([`CatEngine::record`]).
    posterior: RunningPosterior,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A bank and a configuration, with everything precomputed for fast selection.
#[derive(Debug, Clone)]
pub struct CatEngine {
    /// This engine's id, unique in the process (a clone keeps it: it has the same bank and
    /// configuration), recorded in the sessions it builds or verifies.
    id: u64,
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
    /// The [`STEEPEST`] logistic items of largest a, by location (b, then bank position): where
    /// [`CatEngine::top_k`] looks for its floor.
    steepest: Vec<(f64, u32)>,
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
        let location: Vec<f64> = models.iter().map(ItemModel::location).collect();
        let mut steepest: Vec<(f64, u32)> = by_bound
            .iter()
            .take(STEEPEST)
            .map(|&(_, j)| (location[j as usize], j))
            .collect();
        steepest.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
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
            id: NEXT_ENGINE.fetch_add(1, Ordering::Relaxed),
            // Items that discriminate negatively are never selected unless the configuration allows it.
            status: bank
                .items()
                .iter()
                .map(|i| config.selection.status_of(i))
                .collect(),
            by_competence,
            fingerprint: bank.fingerprint(),
            location,
            steepest,
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
        // Another configuration: sessions of the engine it was cloned from are not trusted as its own.
        self.id = NEXT_ENGINE.fetch_add(1, Ordering::Relaxed);
    }

    /// Start a session with this seed. A random start θ is drawn from the session's RNG.
    pub fn start(&self, seed: u64) -> Session {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let start_theta = match self.config.start {
            StartConfig::Fixed { theta } => theta,
            StartConfig::Random { lower, upper } => lower + (upper - lower) * rng.random::<f64>(),
        };
        // Room for the whole test (up to a point), so answers never move the history.
        let capacity = self.config.stopping.max_items.saturating_add(1).min(128);
        Session {
            schema: SCHEMA_VERSION,
            bank_id: self.bank.id().to_string(),
            bank_fingerprint: self.fingerprint.clone(),
            config: self.config.clone(),
            seed,
            rng,
            start_theta,
            pending: None,
            history: Vec::with_capacity(capacity),
            set_aside: Vec::new(),
            finished: None,
            verified: Verified {
                engine: Some(self.id),
                positions: Vec::with_capacity(capacity),
                pending: None,
                posterior: RunningPosterior::default(),
            },
        }
    }

    /// Verify a session read from outside (JSON, a database) against this engine — now rather than at
    /// the first [`next`](Self::next) or [`record`](Self::record), which do the same. A saved session
    /// is verified, not trusted. First the checks that need no replay, each with its own message: the
    /// RNG state is not xoshiro's forbidden all-zero state; the history is not longer than the test
    /// allows; every answer is to a bank item, answered once, with one of its response codes, the
    /// category of that code, and scored exactly when the item is active; pending and set-aside items
    /// are bank items not answered. Then the session is played again from its seed — a fresh session,
    /// each stored answer recorded in turn, each answered item required to be the very item the engine
    /// offers at that point (pretest seeding and Sympson–Hetter set-asides included) — and the outcome
    /// is compared with the stored state field by field: every record (item, response, category,
    /// scored flag, θ̂ and SE to 1e-9 relative), the pending item, the finished flag (the stopping rules
    /// must give it), the set-aside items and the RNG state. The first difference is
    /// [`SessionError::Corrupt`], naming the field and its position (`history[3].theta: stored 5,
    /// recomputed 0.412`). On success the session becomes the replayed one — identical to the stored
    /// one but for floating-point noise within the tolerance — so the rest of the test is exactly the
    /// engine's own continuation; it is marked verified and not replayed again. Cost: one selection and
    /// one estimate per stored answer.
    pub fn verify(&self, s: &mut Session) -> Result<(), SessionError> {
        self.check(s)
    }

    /// Verify the session unless this engine built or verified it: a session's bank, configuration
    /// and history change only through its engine's calls, so such a session needs no check at every
    /// call of a running test. A session verified by another engine (on the same bank and
    /// configuration, as [`Self::check_identity`] requires) is not replayed again; its bank positions
    /// are looked up again on this engine's bank.
    fn check(&self, s: &mut Session) -> Result<(), SessionError> {
        if s.verified.engine == Some(self.id) {
            return Ok(());
        }
        self.check_identity(s)?;
        if s.verified.engine.is_none() {
            return adopt_replay(s, false, |s| self.replay(s));
        }
        let positions = s
            .history
            .iter()
            .enumerate()
            .map(|(i, r)| match self.bank.position(&r.item) {
                Some(j) => Ok(j as u32),
                None => Err(SessionError::Corrupt(format!(
                    "history[{i}].item: `{}` is not in the bank",
                    r.item
                ))),
            })
            .collect::<Result<_, _>>()?;
        let pending = s
            .pending
            .as_deref()
            .and_then(|p| self.bank.position(p))
            .map(|j| j as u32);
        s.verified = Verified {
            engine: Some(self.id),
            positions,
            pending,
            posterior: RunningPosterior::default(),
        };
        Ok(())
    }

    /// Format version, bank and configuration (compared in full: for sessions from outside).
    pub(crate) fn check_identity(&self, s: &Session) -> Result<(), SessionError> {
        check_identity(
            s.schema,
            &s.bank_id,
            &s.bank_fingerprint,
            &self.bank,
            &self.fingerprint,
            s.config == self.config,
        )
    }

    /// The verification of [`Self::verify`]: the replayed session, or the first mismatch.
    pub(crate) fn replay(&self, s: &Session) -> Result<Session, Mismatch> {
        self.precheck(s)?;
        let mut r = self.start(s.seed);
        compare_f64("start_theta", s.start_theta, r.start_theta)
            .map_err(|m| m.with_note(format_args!("drawn from seed {}", s.seed)))?;
        for (i, stored) in s.history.iter().enumerate() {
            self.replay_answer(&mut r, stored, &format!("history[{i}]"))?;
        }
        let offered = if s.pending.is_some() || s.finished.is_some() {
            Some(self.next(&mut r).map_err(|e| Mismatch::new("history", e))?)
        } else {
            None
        };
        match (&s.pending, s.finished, offered) {
            (Some(p), _, Some(Next::Item(id))) if *p != id => {
                return Err(Mismatch::new(
                    "pending",
                    format_args!("stored `{p}`, but the engine offers `{id}` at this point"),
                ));
            }
            (Some(p), _, Some(Next::Finished(reason))) => {
                return Err(Mismatch::new(
                    "pending",
                    format_args!("stored `{p}`, but the test is over ({})", reason.name()),
                ));
            }
            (None, Some(f), Some(Next::Item(id))) => {
                return Err(Mismatch::new(
                    "finished",
                    format_args!(
                        "stored {}, but the stopping rules continue the test (next item `{id}`)",
                        f.name()
                    ),
                ));
            }
            (None, Some(f), Some(Next::Finished(reason))) if f != reason => {
                return Err(Mismatch::new(
                    "finished",
                    format_args!(
                        "stored {}, but the stopping rules give {}",
                        f.name(),
                        reason.name()
                    ),
                ));
            }
            _ => {}
        }
        self.compare_state(s, &r)?;
        Ok(r)
    }

    /// Offer the next item of the replayed session `r`, require it to be `stored.item`, record the
    /// stored response and compare the new record with the stored one (`at` names it).
    pub(crate) fn replay_answer(&self, r: &mut Session, stored: &Record, at: &str) -> Result<(), Mismatch> {
        match self.next(r).map_err(|e| Mismatch::new(at, e))? {
            Next::Finished(reason) => {
                return Err(Mismatch::new(
                    at,
                    format_args!(
                        "an answer after the end of the test (it ended, {}, after {} answers)",
                        reason.name(),
                        r.history.len()
                    ),
                ));
            }
            Next::Item(id) if id != stored.item => {
                return Err(Mismatch::new(
                    format!("{at}.item"),
                    format_args!(
                        "`{}` was never offered here: the engine offers `{id}` at this point",
                        stored.item
                    ),
                ));
            }
            Next::Item(_) => {}
        }
        self.record(r, &stored.item, stored.response)
            .map_err(|e| Mismatch::new(format!("{at}.response"), e))?;
        let Some(recomputed) = r.history.last() else {
            unreachable!("a recorded answer is in the history")
        };
        compare_record(at, stored, recomputed)
    }

    /// The explicit checks that need no replay, with their own messages: the RNG state, the test
    /// length, each answer (known item, once only, a response code of the item, its category, scored
    /// exactly when the item is active), the pending and set-aside items.
    pub(crate) fn precheck(&self, s: &Session) -> Result<(), Mismatch> {
        if rng_state(&s.rng) == [0; 4] {
            return Err(Mismatch::new(
                "rng",
                "the all-zero state is not a xoshiro256++ state (it would draw 0 for ever)",
            ));
        }
        let st = &self.config.stopping;
        let pretest = self.config.content.pretest_positions.len();
        let scored = s.history.iter().filter(|r| r.scored).count();
        if scored > st.max_items || s.history.len() > st.max_items + pretest {
            return Err(Mismatch::new(
                "history",
                format_args!(
                    "{} answers ({scored} scored), more than the test allows (stopping.max_items {}, {pretest} pretest positions)",
                    s.history.len(),
                    st.max_items
                ),
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(s.history.len());
        for (i, r) in s.history.iter().enumerate() {
            let Some(item) = self.bank.item(&r.item) else {
                return Err(Mismatch::new(
                    format!("history[{i}].item"),
                    format_args!("`{}` is not in the bank", r.item),
                ));
            };
            if let Some(first) = seen.insert(r.item.as_str(), i) {
                return Err(Mismatch::new(
                    format!("history[{i}].item"),
                    format_args!("`{}` was already answered at history[{first}]", r.item),
                ));
            }
            let Some(category) = item.category_of(r.response) else {
                return Err(Mismatch::new(
                    format!("history[{i}].response"),
                    format_args!(
                        "{} is not one of `{}`'s response codes {:?}",
                        r.response,
                        r.item,
                        item.response_codes()
                    ),
                ));
            };
            if r.category as usize != category {
                return Err(Mismatch::new(
                    format!("history[{i}].category"),
                    format_args!(
                        "stored {}, but response {} is category {category} of `{}` ({} categories)",
                        r.category,
                        r.response,
                        r.item,
                        item.parameters.categories()
                    ),
                ));
            }
            let active = item.status == Status::Active;
            if r.scored != active {
                return Err(Mismatch::new(
                    format!("history[{i}].scored"),
                    format_args!(
                        "stored {}, but `{}` is {} (only active items are scored)",
                        r.scored,
                        r.item,
                        item.status.name()
                    ),
                ));
            }
        }
        if let Some(p) = &s.pending {
            if self.bank.item(p).is_none() {
                return Err(Mismatch::new("pending", format_args!("`{p}` is not in the bank")));
            }
            if let Some(i) = seen.get(p.as_str()) {
                return Err(Mismatch::new(
                    "pending",
                    format_args!("`{p}` was already answered at history[{i}]"),
                ));
            }
            if let Some(f) = s.finished {
                return Err(Mismatch::new(
                    "finished",
                    format_args!("stored {}, with item `{p}` still pending", f.name()),
                ));
            }
        }
        let mut aside: HashMap<&str, usize> = HashMap::with_capacity(s.set_aside.len());
        for (i, id) in s.set_aside.iter().enumerate() {
            let at = format!("set_aside[{i}]");
            if self.bank.item(id).is_none() {
                return Err(Mismatch::new(at, format_args!("`{id}` is not in the bank")));
            }
            if let Some(j) = seen.get(id.as_str()) {
                return Err(Mismatch::new(
                    at,
                    format_args!("`{id}` was set aside but answered at history[{j}]"),
                ));
            }
            if let Some(j) = aside.insert(id.as_str(), i) {
                return Err(Mismatch::new(
                    at,
                    format_args!("`{id}` is already set aside at set_aside[{j}]"),
                ));
            }
        }
        Ok(())
    }

    /// Compare the stored session with the replayed one, field by field: start θ, history, pending,
    /// finished, set-aside items, RNG state.
    pub(crate) fn compare_state(&self, stored: &Session, r: &Session) -> Result<(), Mismatch> {
        compare_f64("start_theta", stored.start_theta, r.start_theta)?;
        if stored.history.len() != r.history.len() {
            return Err(Mismatch::new(
                "history",
                format_args!(
                    "stored {} answers, recomputed {}",
                    stored.history.len(),
                    r.history.len()
                ),
            ));
        }
        for (i, (a, b)) in stored.history.iter().zip(&r.history).enumerate() {
            compare_record(&format!("history[{i}]"), a, b)?;
        }
        if stored.pending != r.pending {
            return Err(Mismatch::new(
                "pending",
                format_args!(
                    "stored {}, recomputed {}",
                    show(stored.pending.as_deref()),
                    show(r.pending.as_deref())
                ),
            ));
        }
        if stored.finished != r.finished {
            return Err(Mismatch::new(
                "finished",
                format_args!(
                    "stored {}, recomputed {}",
                    show(stored.finished.map(StopReason::name)),
                    show(r.finished.map(StopReason::name))
                ),
            ));
        }
        for (i, (a, b)) in stored.set_aside.iter().zip(&r.set_aside).enumerate() {
            if a != b {
                return Err(Mismatch::new(
                    format!("set_aside[{i}]"),
                    format_args!("stored `{a}`, recomputed `{b}`"),
                ));
            }
        }
        if stored.set_aside.len() != r.set_aside.len() {
            return Err(Mismatch::new(
                "set_aside",
                format_args!(
                    "stored {} items, recomputed {}",
                    stored.set_aside.len(),
                    r.set_aside.len()
                ),
            ));
        }
        if stored.rng != r.rng {
            return Err(Mismatch::new(
                "rng",
                format_args!(
                    "stored state {:?}, recomputed {:?} (from seed {} and the answers)",
                    rng_state(&stored.rng),
                    rng_state(&r.rng),
                    stored.seed
                ),
            ));
        }
        Ok(())
    }

    /// Each history record of a (checked) session with its item's bank position.
    fn positioned<'s>(&self, s: &'s Session) -> impl Iterator<Item = (&'s Record, usize)> {
        debug_assert_eq!(s.verified.engine, Some(self.id), "a checked session");
        debug_assert_eq!(s.verified.positions.len(), s.history.len());
        s.history
            .iter()
            .zip(&s.verified.positions)
            .map(|(r, &j)| (r, j as usize))
    }

    /// The scored answers of a (checked) session, as bank positions and categories.
    fn answers(&self, s: &Session) -> impl Iterator<Item = Answer> {
        self.positioned(s)
            .filter(|(r, _)| r.scored)
            .map(|(r, j)| Answer::new(j, r.category as usize))
    }

    /// θ̂ and SE from scored answers, with ML/WLE kept inside the bounds (an infinite ML estimate
    /// becomes the bound, as catR does) so that selection always has a finite θ.
    /// `eap`: the answers' EAP, which is the estimate itself, and the modal estimators' starting point.
    fn estimate_answers(&self, answers: &[Answer], eap: Estimate) -> Result<Estimate, SessionError> {
        let cfg = &self.config.estimator;
        let start = eap.theta;
        let e = match cfg.method {
            Method::Eap => eap,
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
        let stop = self.stop_reason(s);
        if let Some(r) = stop
            && (r == StopReason::MaxItems || self.config.content.min_items.is_empty())
        {
            s.finished = Some(r);
            return Ok(Next::Finished(r));
        }
        // Administered and set-aside items (a bit per bank item), skills used (a small list): eligibility
        // is checked only for the items the (pruned) selection scan reaches, never for the whole bank.
        // On the stack for banks of up to 1024 items.
        let words = self.models.len().div_ceil(64);
        let (mut small, mut large) = ([0u64; 16], Vec::new());
        let taken: &mut [u64] = if words <= small.len() {
            &mut small[..words]
        } else {
            large.resize(words, 0);
            &mut large
        };
        let mut take = |j: usize| taken[j / 64] |= 1 << (j % 64);
        let mut used_skill: Vec<u32> = Vec::new();
        let mut counts = vec![0usize; self.competences.len()];
        let mut last_competence = u16::MAX;
        for (r, j) in self.positioned(s) {
            take(j);
            if self.skill[j] != u32::MAX {
                used_skill.push(self.skill[j]);
            }
            if r.scored && self.competence[j] != u16::MAX {
                counts[self.competence[j] as usize] += 1;
                last_competence = self.competence[j];
            }
        }
        s.set_aside
            .iter()
            .filter_map(|id| self.bank.position(id))
            .for_each(take);
        let eligible = |j: usize, status: Status| {
            self.status[j] == status
                && taken[j / 64] & (1 << (j % 64)) == 0
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
                s.verified.pending = Some(j as u32);
                return Ok(Next::Item(id));
            }
        }
        let has_items = |c: u16| {
            self.by_competence[c as usize]
                .iter()
                .any(|&j| eligible(j as usize, Status::Active))
        };
        // Precision and classification wait for the competence minima that can still be met (the
        // test length bound does not): the next items come from those competences.
        let hold = stop.is_some() && self.minimum_pending(&counts, &has_items);
        if let Some(r) = stop
            && !hold
        {
            s.finished = Some(r);
            return Ok(Next::Finished(r));
        }
        let allowed = self.allowed_competences(s, &counts, last_competence, hold, has_items);
        let candidate = |j: usize| {
            eligible(j, Status::Active)
                && match allowed.as_ref() {
                    None => true,
                    Some(a) => self.competence[j] != u16::MAX && a[self.competence[j] as usize],
                }
        };
        let Some(chosen) = self.choose(s, &candidate) else {
            s.finished = Some(StopReason::BankExhausted);
            return Ok(Next::Finished(StopReason::BankExhausted));
        };
        let id = self.bank.items()[chosen].id.clone();
        s.pending = Some(id.clone());
        s.verified.pending = Some(chosen as u32);
        Ok(Next::Item(id))
    }

    /// Whether a competence of the test is below its `content.min_items` and still has an eligible
    /// item (`counts`: scored items per competence).
    fn minimum_pending(&self, counts: &[usize], has_items: &impl Fn(u16) -> bool) -> bool {
        let c = &self.config.content;
        self.test_competences.iter().any(|&k| {
            let name = &self.competences[k as usize];
            c.min_items.get(name).is_some_and(|&m| counts[k as usize] < m)
                && c.max_items.get(name).is_none_or(|&m| counts[k as usize] < m)
                && has_items(k)
        })
    }

    /// Which competences the next item may come from (`None`: no content balancing applies).
    /// `hold`: the test goes on only for unmet competence minima, so the item comes from one of them.
    fn allowed_competences(
        &self,
        s: &Session,
        counts: &[usize],
        last: u16,
        hold: bool,
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
        let short = deficit > 0 && deficit >= remaining;
        if short {
            narrow(&mut allowed, &below_min);
        }
        if c.visit_all {
            narrow(&mut allowed, &|k| counts[k as usize] == 0);
        }
        if hold && !short {
            // After visit_all: every competence is still visited before one is repeated. And with
            // avoid_consecutive, a competence just answered waits one item for its minimum.
            let after_last = |k: u16| !(c.avoid_consecutive && k == last);
            narrow(&mut allowed, &|k| below_min(k) && after_last(k));
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
    fn choose(&self, s: &mut Session, candidate: &impl Fn(usize) -> bool) -> Option<usize> {
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
            post.add_all(&self.table, &self.answers(s).collect::<Vec<_>>());
            let mut w = Vec::with_capacity(self.table.grid().len());
            post.weights_into(&mut w);
            w
        } else {
            Vec::new()
        };
        SCRATCH.with_borrow_mut(|scratch| {
            let ranked = &mut scratch.ranked;
            self.top_k(rule, theta, &weights, candidate, k, ranked);
            self.pick(s, ranked)
        })
    }

    /// The item chosen among the `ranked` candidates (best first) by the exposure control.
    fn pick(&self, s: &mut Session, ranked: &[(f64, usize)]) -> Option<usize> {
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
                for &(_, j) in ranked {
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
    /// ([`CatEngine::distance_terms`]) is below it are skipped without evaluating their information.
    ///
    /// For MFI, first the informations of up to 2k candidates: those located nearest θ on either
    /// side among the [`STEEPEST`] items of largest a (a bisection in `steepest`), the items an MFI
    /// test prefers. The k-th largest — the k-th best criterion of some k candidates, so at most
    /// that of all — is a floor the scan prunes by from its first item on, where the k-th best found
    /// so far would start low. The distance bound being within a few percent of the information near
    /// θ, the scan then evaluates few items besides the winners (25 informations a step fell to about
    /// one on the adaptive workload bench). Only for k ≤ [`FLOOR_PROBES`] (so not for Sympson–
    /// Hetter, which ranks every candidate, nor a randomesque k above it).
    fn top_k(
        &self,
        rule: SelectionRule,
        theta: f64,
        weights: &[f64],
        candidate: &impl Fn(usize) -> bool,
        k: usize,
        best: &mut Vec<(f64, usize)>,
    ) {
        best.clear();
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
        let mut floor = f64::NEG_INFINITY;
        if rule == SelectionRule::Mfi && (1..=FLOOR_PROBES).contains(&k) && theta.is_finite() {
            // The k candidates located nearest θ on either side among the steepest items.
            let at = self.steepest.partition_point(|&(b, _)| b < theta);
            let below = self.steepest[..at]
                .iter()
                .rev()
                .filter(|&&(_, j)| candidate(j as usize))
                .take(k);
            let above = self.steepest[at..]
                .iter()
                .filter(|&&(_, j)| candidate(j as usize))
                .take(k);
            for &(_, j) in below.chain(above) {
                let j = j as usize;
                offer(best, (self.criterion(rule, j, theta, weights), j));
            }
            if best.len() == k {
                // The k-th best of these informations (θ finite, so none is NaN).
                floor = best[k - 1].0;
            }
            best.clear();
        }
        for &(bound, j) in &self.by_bound {
            let j = j as usize;
            let kth = if best.len() == k {
                best[k - 1].0.max(floor)
            } else {
                floor
            };
            if prunable && kth > f64::NEG_INFINITY {
                // Compared with a margin of 10⁻¹², so that rounding never skips an item the exact
                // bound would keep (a computed information may round above its item's a²/4: the
                // floor is one from the first item on).
                if bound * (1.0 + 1e-12) < kth {
                    break;
                }
                if rule == SelectionRule::Mfi {
                    let (a2, denominator) = self.distance_terms(bound, j, theta);
                    if a2 * (1.0 + 1e-12) < kth * denominator {
                        continue;
                    }
                }
            }
            if candidate(j) {
                offer(best, (self.criterion(rule, j, theta, weights), j));
            }
        }
        for &j in &self.polytomous {
            let j = j as usize;
            if candidate(j) {
                offer(best, (self.criterion(rule, j, theta, weights), j));
            }
        }
    }

    /// An upper bound of logistic item j's information at θ without an exponential (`bound` = a²/4):
    /// with z = a(θ − b), I(θ) ≤ a² P*(1 − P*) = a²/(2 + 2 cosh z) (the 3PL's and 4PL's information
    /// is at most the 2PL's of the same a and b), and cosh z ≥ 1 + z²/2 + z⁴/24 (its Taylor series,
    /// every term positive), so
    ///
    ///   I(θ) ≤ a² / (4 + z² + z⁴/12),
    ///
    /// within 0.1 % of a²P*(1 − P*) for |z| ≤ 1 and 2 % at |z| = 2.
    ///
    /// Returned as the numerator a² and the denominator 4 + z² + z⁴/12, to be compared by
    /// multiplying where a division would cost more.
    #[inline]
    fn distance_terms(&self, bound: f64, j: usize, theta: f64) -> (f64, f64) {
        let a2 = 4.0 * bound;
        let d = self.location[j] - theta;
        let u = a2 * d * d;
        (a2, 4.0 + u + u * u * (1.0 / 12.0))
    }

    /// Record the answer `response` (an original response code) to the pending item; returns the new
    /// estimate. Rejected calls (wrong item, repeated item, unknown code, finished test, other bank)
    /// leave the session unchanged.
    pub fn record(&self, s: &mut Session, item: &str, response: i64) -> Result<Estimate, SessionError> {
        self.check(s)?;
        if let Some(r) = s.finished {
            return Err(SessionError::Finished(r));
        }
        // The pending item's position is known since it was offered.
        let offered = s.verified.pending.filter(|_| s.pending.as_deref() == Some(item));
        let Some(j) = offered.map(|j| j as usize).or_else(|| self.bank.position(item)) else {
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
            SCRATCH.with_borrow_mut(
                |Scratch {
                     answers,
                     log_post,
                     posterior,
                     ..
                 }| {
                    answers.clear();
                    answers.extend(self.answers(s));
                    let answer = Answer::new(j, category);
                    answers.push(answer);
                    // The session's running posterior times the new answer (rebuilt from the
                    // history if the session has none); the sum of log-probabilities for items
                    // that do not allow the product form.
                    let earlier = &answers[..answers.len() - 1];
                    let cached = &s.verified.posterior;
                    let running = if cached.is_started() && cached.answers() == earlier.len() {
                        posterior.clone_from(cached);
                        self.table.multiply(posterior, answer)
                    } else {
                        *posterior = self.table.start_posterior();
                        answers.iter().all(|&a| self.table.multiply(posterior, a))
                    };
                    let eap = if running {
                        self.table.running_eap(posterior, answers)
                    } else {
                        self.table.eap(answers, log_post)
                    };
                    let estimate = self.estimate_answers(answers, eap)?;
                    if running {
                        std::mem::swap(&mut s.verified.posterior, posterior);
                    } else {
                        s.verified.posterior = RunningPosterior::default();
                    }
                    Ok::<_, SessionError>(estimate)
                },
            )?
        } else {
            let (theta, se) = s.estimate();
            Estimate {
                theta,
                se,
                kind: EstimateKind::Finite,
            }
        };
        // The pending item's id is the answered one (checked above): it moves into the history.
        let item = s.pending.take().unwrap_or_else(|| item.to_string());
        s.history.push(Record {
            item,
            response,
            category: category as u8,
            scored,
            theta: estimate.theta,
            se: estimate.se,
        });
        s.verified.positions.push(j as u32);
        s.verified.pending = None;
        s.pending = None;
        Ok(estimate)
    }

    /// The result so far (final once [`Session::finished`] is set).
    pub fn result(&self, s: &Session) -> SessionResult {
        let (theta, se) = s.estimate();
        let mut per_competence = std::collections::BTreeMap::new();
        // The items by the positions recorded with the answers, unless another engine built the session.
        let verified = s.verified.engine == Some(self.id);
        for (i, r) in s.history.iter().enumerate().filter(|(_, r)| r.scored) {
            let item = if verified {
                self.bank.items().get(s.verified.positions[i] as usize)
            } else {
                self.bank.item(&r.item)
            };
            if let Some(c) = item.and_then(|i| i.competence.as_ref()) {
                *per_competence.entry(c.clone()).or_insert(0) += 1;
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

/// Largest k for which [`CatEngine::top_k`] first finds the floor of the k-th best criterion (Sympson–
/// Hetter ranks every candidate).
const FLOOR_PROBES: usize = 16;

/// Logistic items of largest a among which [`CatEngine::top_k`] looks for its floor.
const STEEPEST: usize = 32;

#[cfg(test)]
mod selection {
    use super::*;
    use etalon_items::{Framework, Item, Provenance};
    use proptest::prelude::*;

    fn model() -> impl Strategy<Value = ItemModel> {
        prop_oneof![
            (-3.0f64..3.0).prop_map(|b| ItemModel::rasch(b).unwrap()),
            (0.2f64..3.0, -4.0f64..4.0).prop_map(|(a, b)| ItemModel::two_pl(a, b).unwrap()),
            (0.2f64..3.0, -4.0f64..4.0, 0.0f64..0.4)
                .prop_map(|(a, b, c)| ItemModel::three_pl(a, b, c).unwrap()),
            (0.2f64..3.0, -4.0f64..4.0, 0.0f64..0.3, 0.7f64..1.0)
                .prop_map(|(a, b, c, d)| ItemModel::four_pl(a, b, c, d).unwrap()),
            (0.2f64..3.0, prop::collection::vec(-3.0f64..3.0, 1..4))
                .prop_map(|(a, t)| ItemModel::gpcm(a, t).unwrap()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The pruned selection (the floor, the bound a²/4, the distance bound) ranks the same k
        /// items, in the same order, as evaluating every candidate's criterion: MFI and MPWI, with
        /// ties between copies of an item, θ anywhere in the range, some items already taken.
        #[test]
        fn pruned_selection_is_the_exhaustive_ranking(
            models in prop::collection::vec(model(), 1..60),
            copies in 1usize..3,
            theta in -5.0f64..5.0,
            k in 1usize..6,
            taken in any::<u64>(),
            mpwi in any::<bool>(),
        ) {
            let items: Vec<Item> = models.iter().cycle().take(models.len() * copies).enumerate()
                .map(|(j, m)| Item::new(format!("i{j}"), m.clone()))
                .collect();
            let bank = Bank::new("t", Framework::default(), items, Provenance::default()).unwrap();
            let rule = if mpwi { SelectionRule::Mpwi } else { SelectionRule::Mfi };
            let mut config = SessionConfig::default();
            config.selection.rule = rule;
            let engine = CatEngine::new(&bank, config).unwrap();
            let grid = engine.table.grid();
            // Posterior weights (summing to 1, as the session's) about θ.
            let mut weights: Vec<f64> = grid.points().iter()
                .map(|t| (-(t - theta) * (t - theta) / 0.5).exp())
                .collect();
            let total: f64 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= total);
            let candidate = |j: usize| taken >> (j % 64) & 1 == 0;
            let mut ranked = Vec::new();
            engine.top_k(rule, theta, &weights, &candidate, k, &mut ranked);
            let mut all: Vec<(f64, usize)> = (0..bank.items().len())
                .filter(|&j| candidate(j))
                .map(|j| (engine.criterion(rule, j, theta, &weights), j))
                .collect();
            all.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            all.truncate(k);
            prop_assert_eq!(ranked, all);
        }
    }

    /// An information that rounds above its item's bound a²/4 (a Rasch item at θ = b + 2⁻⁵²:
    /// 0.25000000000000006 > 0.25) as the floor does not end the scan before the item it came from:
    /// an all-Rasch bank with b = 0 still offers its first item.
    #[test]
    fn an_information_rounded_above_its_bound_does_not_end_the_selection() {
        let items: Vec<Item> = (0..5)
            .map(|j| Item::new(format!("i{j}"), ItemModel::rasch(0.0).unwrap()))
            .collect();
        let bank = Bank::new("t", Framework::default(), items, Provenance::default()).unwrap();
        let engine = CatEngine::new(&bank, SessionConfig::default()).unwrap();
        let theta = f64::EPSILON;
        assert!(
            engine.criterion(SelectionRule::Mfi, 0, theta, &[]) > 0.25,
            "the case needs the rounding"
        );
        for k in [1, 3] {
            let mut ranked = Vec::new();
            engine.top_k(SelectionRule::Mfi, theta, &[], &|_| true, k, &mut ranked);
            let expected: Vec<usize> = (0..k).collect();
            assert_eq!(ranked.iter().map(|&(_, j)| j).collect::<Vec<_>>(), expected);
        }
    }
}
