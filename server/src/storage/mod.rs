//! Storage: everything the service keeps, behind one interface with two real databases — embedded
//! SQLite ([`sqlite::SqliteStore`], one file in WAL mode) and PostgreSQL ([`postgres::PgStore`]).
//!
//! The schema is versioned ([`MIGRATIONS`], applied in order at open, each once, recorded in
//! `schema_migrations`). Answers are an append-only log keyed by (session, position): recording an
//! answer inserts one row (and, when it ends the session, its result line in the same transaction);
//! nothing rewrites a session's history, and the unique key is what serialises two concurrent answers
//! to one session, across processes. Every method that reads an organisation's data takes its id, so a
//! query cannot leak another organisation's rows. A method returns only once what it wrote is durable
//! (SQLite `synchronous=FULL`, PostgreSQL's commit).

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;

/// An organisation's database id.
pub type OrgId = i64;

/// The schema, one migration per version (1-based). Written in the SQL both databases accept; the
/// few differences are spelled `{{id}}` (an auto-increment key) and `{{bool}}`, filled per backend.
pub const MIGRATIONS: &[&str] = &[
    // 1: organisations, bank versions, campaigns, sessions, the answers log, results.
    "CREATE TABLE orgs (
        id {{id}},
        name TEXT NOT NULL UNIQUE,
        key_hash TEXT NOT NULL UNIQUE,
        created BIGINT NOT NULL
    );
    CREATE TABLE bank_versions (
        org BIGINT NOT NULL REFERENCES orgs(id),
        bank TEXT NOT NULL,
        version BIGINT NOT NULL,
        fingerprint TEXT NOT NULL,
        items BIGINT NOT NULL,
        body TEXT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (org, bank, version)
    );
    CREATE TABLE campaigns (
        org BIGINT NOT NULL REFERENCES orgs(id),
        id TEXT NOT NULL,
        code TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        bank TEXT NOT NULL,
        bank_version BIGINT NOT NULL,
        spec TEXT NOT NULL,
        open {{bool}} NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (org, id),
        FOREIGN KEY (org, bank, bank_version) REFERENCES bank_versions(org, bank, version)
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        org BIGINT NOT NULL REFERENCES orgs(id),
        campaign TEXT,
        bank TEXT NOT NULL,
        bank_version BIGINT NOT NULL,
        design TEXT NOT NULL,
        seed BIGINT NOT NULL,
        participant TEXT,
        token_hash TEXT NOT NULL,
        created BIGINT NOT NULL,
        FOREIGN KEY (org, bank, bank_version) REFERENCES bank_versions(org, bank, version)
    );
    CREATE INDEX sessions_by_bank ON sessions (org, bank);
    CREATE INDEX sessions_by_participant ON sessions (org, participant);
    CREATE UNIQUE INDEX one_session_per_participant ON sessions (org, campaign, participant)
        WHERE campaign IS NOT NULL AND participant IS NOT NULL;
    CREATE TABLE answers (
        session TEXT NOT NULL REFERENCES sessions(id),
        position BIGINT NOT NULL,
        item TEXT NOT NULL,
        choice BIGINT,
        response BIGINT,
        code BIGINT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (session, position)
    );
    CREATE TABLE results (
        session TEXT PRIMARY KEY REFERENCES sessions(id),
        org BIGINT NOT NULL REFERENCES orgs(id),
        campaign TEXT,
        line TEXT NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE INDEX results_by_campaign ON results (org, campaign, created);",
    // 2: sign-ins to the organisation pages (a random token per browser, stored hashed, expiring).
    "CREATE TABLE web_logins (
        token_hash TEXT PRIMARY KEY,
        org BIGINT NOT NULL REFERENCES orgs(id),
        expires BIGINT NOT NULL
    );
    CREATE INDEX web_logins_by_expiry ON web_logins (expires);",
    // 3: LTI 1.3 — platforms registered by organisations, pending OIDC logins (state and nonce, used
    // once), the tool's signing keys.
    "CREATE TABLE lti_platforms (
        org BIGINT NOT NULL REFERENCES orgs(id),
        issuer TEXT NOT NULL,
        client_id TEXT NOT NULL,
        deployment_ids TEXT NOT NULL,
        auth_login_url TEXT NOT NULL,
        auth_token_url TEXT NOT NULL,
        jwks_url TEXT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (issuer, client_id)
    );
    CREATE TABLE lti_logins (
        state TEXT PRIMARY KEY,
        nonce TEXT NOT NULL UNIQUE,
        issuer TEXT NOT NULL,
        client_id TEXT NOT NULL,
        expires BIGINT NOT NULL
    );
    CREATE INDEX lti_logins_by_expiry ON lti_logins (expires);
    CREATE TABLE tool_keys (
        kid TEXT PRIMARY KEY,
        private_pem TEXT NOT NULL,
        created BIGINT NOT NULL
    );",
    // 4: LTI Assignment and Grade Services — the grade of each launched session, posted to its line
    // item once the session has its result: a durable outbox (state, attempts, next attempt, lease).
    "CREATE TABLE lti_grades (
        session TEXT PRIMARY KEY REFERENCES sessions(id),
        issuer TEXT NOT NULL,
        client_id TEXT NOT NULL,
        lineitem TEXT NOT NULL,
        user_id TEXT NOT NULL,
        score_maximum DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt BIGINT NOT NULL,
        lease_until BIGINT NOT NULL,
        last_error TEXT,
        posted BIGINT
    );
    CREATE INDEX lti_grades_due ON lti_grades (state, next_attempt);",
    // 5: 1EdTech CAT sections: a bank version and a design, under the configuration the delivery
    // system sent.
    "CREATE TABLE cat_sections (
        org BIGINT NOT NULL REFERENCES orgs(id),
        id TEXT NOT NULL,
        bank TEXT NOT NULL,
        bank_version BIGINT NOT NULL,
        design TEXT NOT NULL,
        configuration TEXT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (org, id)
    );",
    // 6: xAPI — an organisation's Learning Record Store, and per session a cursor over its answers log
    // (how many answers went out as statements, whether its completion did): a durable outbox with
    // attempts, next attempt and lease. Sessions get their cursor when they start under a configured
    // LRS, in the same transaction.
    "CREATE TABLE xapi_lrs (
        org BIGINT PRIMARY KEY REFERENCES orgs(id),
        endpoint TEXT NOT NULL,
        username TEXT NOT NULL,
        password TEXT NOT NULL,
        homepage TEXT NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE TABLE xapi_outbox (
        session TEXT PRIMARY KEY REFERENCES sessions(id),
        org BIGINT NOT NULL REFERENCES orgs(id),
        sent BIGINT NOT NULL,
        completed {{bool}} NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt BIGINT NOT NULL,
        lease_until BIGINT NOT NULL,
        last_error TEXT
    );
    CREATE INDEX xapi_outbox_due ON xapi_outbox (completed, next_attempt);",
];

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Database id.
    pub id: OrgId,
    /// Unique name.
    pub name: String,
}

/// One stored version of a bank (immutable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankRecord {
    /// The bank's id (as in its file).
    pub id: String,
    /// 1, 2, … per bank id and organisation.
    pub version: i64,
    /// [`etalon_items::Bank::fingerprint`].
    pub fingerprint: String,
    /// Number of items.
    pub items: i64,
    /// The bank as FORMATS JSON (empty in listings).
    #[serde(skip)]
    pub body: String,
    /// Unix milliseconds.
    pub created: i64,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRecord {
    /// Owner.
    pub org: OrgId,
    /// Id, unique within the organisation.
    pub id: String,
    /// Join code, unique across the service.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Bank id.
    pub bank: String,
    /// The bank version its sessions run on.
    pub bank_version: i64,
    /// The validated campaign (`etalon_assessment::campaign::Campaign`) as JSON.
    pub spec: String,
    /// Whether participants may join.
    pub open: bool,
    /// Unix milliseconds.
    pub created: i64,
}

/// A session as stored (plus what the answers log says of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Random id.
    pub id: String,
    /// Owner.
    pub org: OrgId,
    /// The campaign it belongs to, if any.
    pub campaign: Option<String>,
    /// Bank id.
    pub bank: String,
    /// The bank version it runs on.
    pub bank_version: i64,
    /// The design (`etalon_assessment::Design`) as JSON.
    pub design: String,
    /// Seed of every random choice (a u64 stored bit for bit).
    pub seed: i64,
    /// External participant id.
    pub participant: Option<String>,
    /// SHA-256 of the session token, hex.
    pub token_hash: String,
    /// Unix milliseconds.
    pub created: i64,
    /// Answers recorded (filled on reads; ignored on insert).
    pub answered: i64,
    /// Whether its result is recorded (filled on reads; ignored on insert).
    pub finished: bool,
}

/// One answer of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRecord {
    /// Session id.
    pub session: String,
    /// 1-based position.
    pub position: i64,
    /// Item id.
    pub item: String,
    /// The option index sent, if the answer was a choice.
    pub choice: Option<i64>,
    /// The response code sent, if the answer was a code.
    pub response: Option<i64>,
    /// The scored response code recorded.
    pub code: i64,
    /// Unix milliseconds.
    pub created: i64,
}

/// An LTI 1.3 platform registered by an organisation (issuer and client id identify it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LtiPlatform {
    /// Owner.
    #[serde(skip)]
    pub org: OrgId,
    /// The platform's `iss`.
    pub issuer: String,
    /// The client id the platform gave the tool (the `aud` of its tokens).
    pub client_id: String,
    /// Deployments of the tool on the platform that may launch.
    pub deployment_ids: Vec<String>,
    /// OIDC authorisation endpoint (where logins are redirected).
    pub auth_login_url: String,
    /// OAuth 2 token endpoint (grade passback).
    pub auth_token_url: String,
    /// The platform's public keys.
    pub jwks_url: String,
    /// Unix milliseconds.
    pub created: i64,
}

/// A pending LTI login: the `state` and `nonce` sent to the platform, each usable once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtiLogin {
    /// Random `state`.
    pub state: String,
    /// Random `nonce` the id_token must carry.
    pub nonce: String,
    /// Platform issuer.
    pub issuer: String,
    /// Platform client id.
    pub client_id: String,
    /// Unix milliseconds after which it is refused.
    pub expires: i64,
}

/// A grade to post to an LMS line item (LTI AGS), once its session has a result.
#[derive(Debug, Clone, PartialEq)]
pub struct LtiGrade {
    /// The session.
    pub session: String,
    /// Platform issuer.
    pub issuer: String,
    /// Platform client id.
    pub client_id: String,
    /// The launch's line item URL.
    pub lineitem: String,
    /// The learner's LTI user id (`sub`).
    pub user_id: String,
    /// `scoreMaximum`.
    pub score_maximum: f64,
}

/// A grade due for posting, claimed under a lease: the grade, its attempts so far and the
/// session's result line.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeJob {
    /// The grade.
    pub grade: LtiGrade,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The session's result line (JSON).
    pub result: String,
    /// When the result was recorded (Unix ms): the score's timestamp, the same on every attempt.
    pub finished: i64,
}

/// An organisation's Learning Record Store (xAPI statements go there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XapiLrs {
    /// The LRS endpoint, ending with `/` (statements go to `{endpoint}statements`).
    pub endpoint: String,
    /// HTTP Basic user.
    pub username: String,
    /// HTTP Basic password (kept as given: it is sent to the LRS).
    pub password: String,
    /// The IRI base of actors' accounts and activities.
    pub homepage: String,
    /// Unix milliseconds.
    pub created: i64,
}

/// A session with statements to send, claimed under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementJob {
    /// The session.
    pub session: String,
    /// Its organisation.
    pub org: OrgId,
    /// Answers already sent (the cursor: positions 1..=sent).
    pub sent: i64,
    /// Failed attempts since the last success.
    pub attempts: i64,
}

/// Where an organisation's statements stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatementsSummary {
    /// Sessions whose every statement, completion included, was sent.
    pub sessions_completed: i64,
    /// Sessions still running or with statements waiting.
    pub sessions_open: i64,
    /// Answer statements sent.
    pub answers_sent: i64,
    /// Sessions whose last attempt failed: (session, attempts, last error), at most 10.
    pub failing: Vec<(String, i64, String)>,
}

/// A 1EdTech CAT section: what its sessions run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatSection {
    /// Owner.
    pub org: OrgId,
    /// Random id (`sectionIdentifier`).
    pub id: String,
    /// Bank id.
    pub bank: String,
    /// Bank version.
    pub bank_version: i64,
    /// The design (`etalon_assessment::Design`) as JSON.
    pub design: String,
    /// The `sectionConfiguration` as sent (base64).
    pub configuration: String,
    /// Unix milliseconds.
    pub created: i64,
}

/// What [`Storage::append_answer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The answer (and result, if any) is stored.
    Recorded,
    /// An answer was already stored at that position (returned): nothing was written.
    Exists(AnswerRecord),
    /// The session no longer exists (erased): nothing was written.
    NoSession,
}

/// One row of the long responses CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRow {
    /// Person (the session id: one response pattern per session).
    pub person: String,
    /// Item id.
    pub item: String,
    /// Scored response code.
    pub code: i64,
    /// Position in the session (the paging key with the session).
    pub position: i64,
}

/// Campaign participation counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Participation {
    /// Sessions started.
    pub started: i64,
    /// Sessions finished.
    pub finished: i64,
}

/// Why storage failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database cannot be reached or written (full disk, read-only, connection lost): try later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule refused the write (the name of the rule is given).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database is not one this version can use (newer schema, bad URL).
    #[error("database: {0}")]
    Setup(String),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StorageError>;

/// What the service needs of a database. Both implementations pass the same integration suite.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Create an organisation (`Conflict` if the name is taken).
    async fn create_org(&self, name: &str, key_hash: &str) -> StoreResult<Org>;
    /// The organisation holding the key whose hash is given.
    async fn org_by_key(&self, key_hash: &str) -> StoreResult<Option<Org>>;
    /// How many organisations exist.
    async fn org_count(&self) -> StoreResult<i64>;
    /// Store a bank as the next version of its id, unless the latest version has the same fingerprint
    /// (then that version is returned and `false`).
    async fn put_bank(
        &self,
        org: OrgId,
        bank: &str,
        fingerprint: &str,
        items: i64,
        body: &str,
    ) -> StoreResult<(BankRecord, bool)>;
    /// A version of a bank (the latest when `version` is `None`).
    async fn get_bank(&self, org: OrgId, bank: &str, version: Option<i64>)
    -> StoreResult<Option<BankRecord>>;
    /// Latest version of each bank (bodies empty).
    async fn list_banks(&self, org: OrgId) -> StoreResult<Vec<BankRecord>>;
    /// Create a campaign (`Conflict` if its id or code is taken).
    async fn create_campaign(&self, campaign: &CampaignRecord) -> StoreResult<()>;
    /// One of the organisation's campaigns.
    async fn get_campaign(&self, org: OrgId, id: &str) -> StoreResult<Option<CampaignRecord>>;
    /// The campaign with this join code (any organisation: a code is all a participant has).
    async fn campaign_by_code(&self, code: &str) -> StoreResult<Option<CampaignRecord>>;
    /// The organisation's campaigns, oldest first.
    async fn list_campaigns(&self, org: OrgId) -> StoreResult<Vec<CampaignRecord>>;
    /// Open or close a campaign; `false` if there is no such campaign.
    async fn set_campaign_open(&self, org: OrgId, id: &str, open: bool) -> StoreResult<bool>;
    /// Sessions started and finished in a campaign.
    async fn participation(&self, org: OrgId, campaign: &str) -> StoreResult<Participation>;
    /// Create a session (`Conflict` if the participant already has one in the campaign).
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// A session by id, with its answer count and whether it is finished. Callers check the token or
    /// the organisation.
    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// A session's answers, in order.
    async fn answers(&self, session: &str) -> StoreResult<Vec<AnswerRecord>>;
    /// Append an answer; with `result`, the session's result line is stored in the same transaction.
    async fn append_answer(&self, answer: &AnswerRecord, result: Option<&str>) -> StoreResult<Appended>;
    /// The result lines of a campaign's finished sessions, in the order they finished.
    async fn results(&self, org: OrgId, campaign: &str) -> StoreResult<Vec<String>>;
    /// A session's result line, if it finished.
    async fn result(&self, session: &str) -> StoreResult<Option<String>>;
    /// Answers to a bank (any version) in (session, position) order, `limit` rows after `after`.
    async fn responses(
        &self,
        org: OrgId,
        bank: &str,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> StoreResult<Vec<ResponseRow>>;
    /// Erase a participant's sessions, answers and results; returns the sessions erased.
    async fn erase_participant(&self, org: OrgId, participant: &str) -> StoreResult<u64>;
    /// Record a sign-in to the organisation pages (its token's hash), valid until `expires` (Unix ms);
    /// expired sign-ins are deleted on the way.
    async fn create_login(&self, token_hash: &str, org: OrgId, expires: i64) -> StoreResult<()>;
    /// The organisation a sign-in token (its hash) opens, if it has not expired at `now`.
    async fn org_by_login(&self, token_hash: &str, now: i64) -> StoreResult<Option<Org>>;
    /// Forget a sign-in (signing out).
    async fn delete_login(&self, token_hash: &str) -> StoreResult<()>;
    /// Register an LTI platform (`Conflict` if its issuer and client id are registered).
    async fn put_lti_platform(&self, platform: &LtiPlatform) -> StoreResult<()>;
    /// The platforms with this issuer (any organisation: a launch names only its issuer).
    async fn lti_platforms(&self, issuer: &str) -> StoreResult<Vec<LtiPlatform>>;
    /// The organisation's platforms.
    async fn org_lti_platforms(&self, org: OrgId) -> StoreResult<Vec<LtiPlatform>>;
    /// Record a pending login (expired ones are deleted on the way).
    async fn create_lti_login(&self, login: &LtiLogin) -> StoreResult<()>;
    /// Take (delete and return) the pending login with this state, if it has not expired at `now`:
    /// a state, and its nonce, are used once.
    async fn take_lti_login(&self, state: &str, now: i64) -> StoreResult<Option<LtiLogin>>;
    /// The tool's signing keys (kid, PKCS#1 PEM), oldest first.
    async fn tool_keys(&self) -> StoreResult<Vec<(String, String)>>;
    /// Add a signing key (nothing if its kid exists).
    async fn add_tool_key(&self, kid: &str, private_pem: &str) -> StoreResult<()>;
    /// Give the session of `participant` in a campaign a new token (its hash); returns the session id,
    /// if there is one. (A participant launched again from an LMS resumes.)
    async fn rekey_session(
        &self,
        org: OrgId,
        campaign: &str,
        participant: &str,
        token_hash: &str,
    ) -> StoreResult<Option<String>>;
    /// Record (or, on a relaunch, update while not yet posted) the grade of a launched session.
    async fn put_lti_grade(&self, grade: &LtiGrade) -> StoreResult<()>;
    /// Claim up to `limit` grades due at `now` whose session has its result: each is leased until
    /// `lease_until`, so another process does not post it meanwhile.
    async fn claim_due_grades(&self, now: i64, lease_until: i64, limit: i64) -> StoreResult<Vec<GradeJob>>;
    /// A grade was accepted by the platform: never post it again.
    async fn grade_posted(&self, session: &str, at: i64) -> StoreResult<()>;
    /// A grade failed: record the error, try again at `next_attempt`.
    async fn grade_failed(&self, session: &str, next_attempt: i64, error: &str) -> StoreResult<()>;
    /// Grades by state (`pending`, `posted`) with their attempts and last error, for an organisation's
    /// sessions.
    async fn lti_grades(&self, org: OrgId) -> StoreResult<Vec<(String, String, i64, Option<String>)>>;
    /// Store a CAT section.
    async fn put_cat_section(&self, section: &CatSection) -> StoreResult<()>;
    /// One of the organisation's CAT sections.
    async fn get_cat_section(&self, org: OrgId, id: &str) -> StoreResult<Option<CatSection>>;
    /// Delete a CAT section; `false` if there was none.
    async fn delete_cat_section(&self, org: OrgId, id: &str) -> StoreResult<bool>;
    /// Set (`Some`) or remove the organisation's LRS. Removing it stops sending; the cursors stay,
    /// so setting one again sends what is left.
    async fn put_xapi_lrs(&self, org: OrgId, lrs: Option<&XapiLrs>) -> StoreResult<()>;
    /// The organisation's LRS.
    async fn xapi_lrs(&self, org: OrgId) -> StoreResult<Option<XapiLrs>>;
    /// Lease (until `lease_until`) up to `limit` sessions of organisations with an LRS that have
    /// answers past their cursor or an unsent completion, and whose next attempt is due at `now`.
    async fn claim_due_statements(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<StatementJob>>;
    /// Move a session's cursor after a delivery (answers 1..=`sent` out; `completed`: its completion
    /// too), clearing attempts and the lease.
    async fn statements_sent(&self, session: &str, sent: i64, completed: bool) -> StoreResult<()>;
    /// Record a failed delivery: one more attempt, the next at `next_attempt`, the lease released.
    async fn statements_failed(&self, session: &str, next_attempt: i64, error: &str) -> StoreResult<()>;
    /// Where the organisation's statements stand.
    async fn statements_summary(&self, org: OrgId) -> StoreResult<StatementsSummary>;
    /// Every table's rows in a canonical text form (tests compare it before and after a request).
    async fn dump(&self) -> StoreResult<String>;
}

/// Open the database a `--db` value names: `sqlite:PATH` (or a plain path), or `postgres://…`.
/// Migrations are applied before it returns.
pub async fn open(db: &str) -> StoreResult<Arc<dyn Storage>> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(db).await?))
    } else {
        let path = db.strip_prefix("sqlite:").unwrap_or(db);
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(StorageError::Setup("`--db sqlite:` needs a file path".into()));
        }
        Ok(Arc::new(sqlite::SqliteStore::open(path.as_ref()).await?))
    }
}

/// The migrations as SQL for a backend (`id` and `bool` spelled its way).
pub fn migration_sql(index: usize, id: &str, boolean: &str) -> String {
    MIGRATIONS[index]
        .replace("{{id}}", id)
        .replace("{{bool}}", boolean)
}

// The xAPI outbox's statements, the same on both databases (written with `$N` parameters; SQLite
// runs them through [`sqlite_params`]).

/// A new session's statement cursor, when its organisation has an LRS.
const XAPI_CURSOR: &str = "INSERT INTO xapi_outbox (session, org, sent, completed, attempts, next_attempt, \
     lease_until) SELECT $1, org, 0, FALSE, 0, 0, 0 FROM xapi_lrs WHERE org = $2";
/// Sessions with statements due at `$1`: answers past the cursor or a result whose completion is
/// unsent, under a configured LRS, not leased.
const XAPI_DUE: &str = "SELECT o.session FROM xapi_outbox o JOIN xapi_lrs l ON l.org = o.org \
     WHERE o.completed = FALSE AND o.next_attempt <= $1 AND o.lease_until < $1 \
     AND (EXISTS (SELECT 1 FROM answers a WHERE a.session = o.session AND a.position > o.sent) \
          OR EXISTS (SELECT 1 FROM results r WHERE r.session = o.session)) \
     ORDER BY o.next_attempt";
/// A delivery's new cursor. It only moves forward: a server whose lease ran out while it sent must not
/// take back what another server sent since.
const XAPI_SENT: &str = "UPDATE xapi_outbox SET sent = CASE WHEN sent > $2 THEN sent ELSE $2 END, \
     completed = (completed OR $3), attempts = 0, next_attempt = 0, lease_until = 0, last_error = NULL \
     WHERE session = $1";
/// A failed delivery.
const XAPI_FAILED: &str = "UPDATE xapi_outbox SET attempts = attempts + 1, next_attempt = $2, lease_until = 0, \
     last_error = $3 WHERE session = $1";
/// Sessions completed and open, answers sent.
const XAPI_SUMMARY: &str = "SELECT CAST(COALESCE(SUM(CASE WHEN completed THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN completed THEN 0 ELSE 1 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(sent), 0) AS BIGINT) FROM xapi_outbox WHERE org = $1";
/// The sessions whose last delivery failed, most tried first.
const XAPI_FAILING: &str = "SELECT session, attempts, last_error FROM xapi_outbox \
     WHERE org = $1 AND last_error IS NOT NULL ORDER BY attempts DESC, next_attempt LIMIT 10";

/// A statement written with PostgreSQL's `$N` parameters in SQLite's `?N`.
fn sqlite_params(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Platforms read with their deployment ids as stored (a JSON array).
fn with_deployments(rows: Vec<(LtiPlatform, String)>) -> StoreResult<Vec<LtiPlatform>> {
    rows.into_iter()
        .map(|(mut p, json)| {
            p.deployment_ids = serde_json::from_str(&json)
                .map_err(|e| StorageError::Unavailable(format!("lti_platforms.deployment_ids: {e}")))?;
            Ok(p)
        })
        .collect()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
