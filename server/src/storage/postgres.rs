//! PostgreSQL storage: a pool of connections ([`deadpool_postgres`]), prepared statements cached per
//! connection, one transaction per write that needs more than one statement.
//!
//! - Migrations run at open in one transaction holding an advisory lock, so two processes starting
//!   together on one database apply each migration once (the second waits, then finds nothing to do).
//! - Every method returns once PostgreSQL has committed (with the server's default
//!   `synchronous_commit = on`, the commit is on disk).
//! - Errors: a unique violation is [`StorageError::Conflict`] naming the rule as SQLite does
//!   (`orgs.name`, `campaigns.code`, `sessions.org, sessions.campaign, sessions.participant`, …);
//!   anything else (connection lost, pool exhausted, read-only, disk full, …) is
//!   [`StorageError::Unavailable`].
//! - Text is compared and ordered with the `C` collation (bytes), as SQLite does, whatever the
//!   database's default collation.

use super::*;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Transaction};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

/// Lock key held while migrating (any i64 unlikely to be used by another application: "etalon\0\x01").
const MIGRATION_LOCK: i64 = 0x6574_616c_6f6e_0001;

/// Connections kept by default.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections open at once.
    pub pool_size: usize,
    /// How long a call waits for a free connection (or to connect) before it fails as unavailable.
    pub wait: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: DEFAULT_POOL_SIZE,
            wait: Duration::from_secs(10),
        }
    }
}

/// PostgreSQL storage.
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("size", &status.size)
            .field("max_size", &status.max_size)
            .finish()
    }
}

/// Anything PostgreSQL answered, as a storage error.
fn pg_err(e: tokio_postgres::Error) -> StorageError {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => {
            StorageError::Conflict(rule_name(db.constraint().unwrap_or("unique")))
        }
        Some(db) => StorageError::Unavailable(format!("{} ({})", db.message(), db.code().code())),
        None => StorageError::Unavailable(format!("PostgreSQL: {e}")),
    }
}

/// A unique rule named as SQLite names it (`table.column, …`), so that both backends report the same
/// conflict; an unknown constraint keeps its PostgreSQL name.
fn rule_name(constraint: &str) -> String {
    match constraint {
        "orgs_pkey" => "orgs.id",
        "orgs_name_key" => "orgs.name",
        "orgs_key_hash_key" => "orgs.key_hash",
        "bank_versions_pkey" => "bank_versions.org, bank_versions.bank, bank_versions.version",
        "campaigns_pkey" => "campaigns.org, campaigns.id",
        "campaigns_code_key" => "campaigns.code",
        "sessions_pkey" => "sessions.id",
        "one_session_per_participant" => "sessions.org, sessions.campaign, sessions.participant",
        "answers_pkey" => "answers.session, answers.position",
        "results_pkey" => "results.session",
        "schema_migrations_pkey" => "schema_migrations.version",
        other => other,
    }
    .to_string()
}

fn pool_err(e: PoolError) -> StorageError {
    match e {
        PoolError::Backend(e) => pg_err(e),
        e => StorageError::Unavailable(format!("PostgreSQL connection pool: {e}")),
    }
}

/// Whether an error is the database's state of the moment (retry later) rather than a setup problem.
fn transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => {
            let code = code.code();
            code.starts_with("08") // connection exception
                || code.starts_with("40") // transaction rollback (serialization, deadlock)
                || code.starts_with("53") // insufficient resources (disk full, out of memory, too many connections)
                || code.starts_with("57") // operator intervention (shutdown, cannot connect now, canceled)
                || code.starts_with("58") // system error (I/O)
                || code == "25006" // read-only transaction (a standby)
                || code == "55P03" // lock not available
        }
    }
}

/// A 64-bit FNV-1a hash: a lock key that every process computes alike.
fn lock_key(parts: &[&[u8]]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h as i64
}

const BANK_COLUMNS: &str = "bank, version, fingerprint, items, body, created";
const CAMPAIGN_COLUMNS: &str = "org, id, code, name, bank, bank_version, spec, open, created";
const ANSWER_COLUMNS: &str = "session, position, item, choice, response, code, created";

fn bank_row(r: &Row) -> BankRecord {
    BankRecord {
        id: r.get(0),
        version: r.get(1),
        fingerprint: r.get(2),
        items: r.get(3),
        body: r.get(4),
        created: r.get(5),
    }
}

fn campaign_row(r: &Row) -> CampaignRecord {
    CampaignRecord {
        org: r.get(0),
        id: r.get(1),
        code: r.get(2),
        name: r.get(3),
        bank: r.get(4),
        bank_version: r.get(5),
        spec: r.get(6),
        open: r.get(7),
        created: r.get(8),
    }
}

fn answer_row(r: &Row) -> AnswerRecord {
    AnswerRecord {
        session: r.get(0),
        position: r.get(1),
        item: r.get(2),
        choice: r.get(3),
        response: r.get(4),
        code: r.get(5),
        created: r.get(6),
    }
}

impl PgStore {
    /// The LTI platforms matching `filter` (one parameter), by issuer and client id.
    async fn platforms(
        &self,
        filter: &str,
        param: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> StoreResult<Vec<LtiPlatform>> {
        let rows = self
            .rows(
                &format!(
                    "SELECT org, issuer, client_id, deployment_ids, auth_login_url, auth_token_url, jwks_url, \
                            created FROM lti_platforms WHERE {filter} \
                     ORDER BY issuer COLLATE \"C\", client_id COLLATE \"C\""
                ),
                &[param],
            )
            .await?;
        super::with_deployments(
            rows.iter()
                .map(|r| {
                    (
                        LtiPlatform {
                            org: r.get(0),
                            issuer: r.get(1),
                            client_id: r.get(2),
                            deployment_ids: Vec::new(),
                            auth_login_url: r.get(4),
                            auth_token_url: r.get(5),
                            jwks_url: r.get(6),
                            created: r.get(7),
                        },
                        r.get(3),
                    )
                })
                .collect(),
        )
    }

    /// Connect (`postgres://…` URL, as libpq takes it) with the default pool and migrate.
    pub async fn open(url: &str) -> StoreResult<PgStore> {
        Self::open_with(url, PgOptions::default()).await
    }

    /// Connect with these pool settings and migrate.
    pub async fn open_with(url: &str, options: PgOptions) -> StoreResult<PgStore> {
        // The URL is not repeated in messages: it may hold a password.
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StorageError::Setup(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.wait);
        }
        if config.get_application_name().is_none() {
            config.application_name("etalon");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait))
            .create_timeout(Some(options.wait))
            .recycle_timeout(Some(options.wait))
            .build()
            .map_err(|e| StorageError::Setup(format!("PostgreSQL connection pool: {e}")))?;
        let store = PgStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Apply the migrations this database lacks, each once, under an advisory lock.
    async fn migrate(&self) -> StoreResult<()> {
        let setup = |what: &str, e: tokio_postgres::Error| {
            if transient(&e) {
                pg_err(e)
            } else {
                StorageError::Setup(format!("{what}: {}", pg_err(e)))
            }
        };
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| setup("locking the schema", e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
        )
        .await
        .map_err(|e| setup("creating schema_migrations", e))?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await
            .map_err(|e| setup("reading schema_migrations", e))?
            .get(0);
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(StorageError::Setup(format!(
                "database schema version {current} is newer than this etalon ({known})"
            )));
        }
        for version in current + 1..=known {
            let sql = migration_sql(version as usize - 1, "BIGSERIAL PRIMARY KEY", "BOOLEAN");
            tx.batch_execute(&sql)
                .await
                .map_err(|e| setup(&format!("migration {version}"), e))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)",
                &[&version, &now_ms()],
            )
            .await
            .map_err(|e| setup(&format!("recording migration {version}"), e))?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_err)
    }

    /// One query's rows.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.query(&statement, params).await.map_err(pg_err)
    }

    /// One query's row, if any.
    async fn row(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Option<Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.query_opt(&statement, params).await.map_err(pg_err)
    }

    /// One statement (committed when it returns); the rows it changed.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<u64> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.execute(&statement, params).await.map_err(pg_err)
    }
}

/// `execute` in a transaction, with its statement cached.
async fn tx_execute(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<u64> {
    let statement = tx.prepare_cached(sql).await.map_err(pg_err)?;
    tx.execute(&statement, params).await.map_err(pg_err)
}

/// `query_opt` in a transaction, with its statement cached.
async fn tx_row(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<Option<Row>> {
    let statement = tx.prepare_cached(sql).await.map_err(pg_err)?;
    tx.query_opt(&statement, params).await.map_err(pg_err)
}

/// `query` in a transaction, with its statement cached.
async fn tx_rows(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<Vec<Row>> {
    let statement = tx.prepare_cached(sql).await.map_err(pg_err)?;
    tx.query(&statement, params).await.map_err(pg_err)
}

#[async_trait]
impl Storage for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_org(&self, name: &str, key_hash: &str) -> StoreResult<Org> {
        let row = self
            .row(
                "INSERT INTO orgs (name, key_hash, created) VALUES ($1, $2, $3) RETURNING id",
                &[&name, &key_hash, &now_ms()],
            )
            .await?
            .ok_or_else(|| StorageError::Unavailable("INSERT … RETURNING returned no row".into()))?;
        Ok(Org {
            id: row.get(0),
            name: name.to_string(),
        })
    }

    async fn org_by_key(&self, key_hash: &str) -> StoreResult<Option<Org>> {
        let row = self
            .row("SELECT id, name FROM orgs WHERE key_hash = $1", &[&key_hash])
            .await?;
        Ok(row.map(|r| Org {
            id: r.get(0),
            name: r.get(1),
        }))
    }

    async fn org_count(&self) -> StoreResult<i64> {
        let row = self.row("SELECT COUNT(*) FROM orgs", &[]).await?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    async fn put_bank(
        &self,
        org: OrgId,
        bank: &str,
        fingerprint: &str,
        items: i64,
        body: &str,
    ) -> StoreResult<(BankRecord, bool)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Serialises the puts of one bank (two at once would both read version n and write n + 1).
        let key = lock_key(&[b"bank", &org.to_le_bytes(), bank.as_bytes()]);
        tx_execute(&tx, "SELECT pg_advisory_xact_lock($1)", &[&key]).await?;
        let latest = tx_row(
            &tx,
            &format!(
                "SELECT {BANK_COLUMNS} FROM bank_versions WHERE org = $1 AND bank = $2 \
                 ORDER BY version DESC LIMIT 1"
            ),
            &[&org, &bank],
        )
        .await?
        .map(|r| bank_row(&r));
        if let Some(latest) = latest {
            if latest.fingerprint == fingerprint {
                tx.commit().await.map_err(pg_err)?;
                return Ok((latest, false));
            }
            return insert_bank(tx, org, bank, latest.version + 1, fingerprint, items, body).await;
        }
        insert_bank(tx, org, bank, 1, fingerprint, items, body).await
    }

    async fn get_bank(
        &self,
        org: OrgId,
        bank: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<BankRecord>> {
        let row = match version {
            Some(version) => {
                self.row(
                    &format!(
                        "SELECT {BANK_COLUMNS} FROM bank_versions WHERE org = $1 AND bank = $2 AND version = $3"
                    ),
                    &[&org, &bank, &version],
                )
                .await?
            }
            None => {
                self.row(
                    &format!(
                        "SELECT {BANK_COLUMNS} FROM bank_versions WHERE org = $1 AND bank = $2 \
                         ORDER BY version DESC LIMIT 1"
                    ),
                    &[&org, &bank],
                )
                .await?
            }
        };
        Ok(row.map(|r| bank_row(&r)))
    }

    async fn list_banks(&self, org: OrgId) -> StoreResult<Vec<BankRecord>> {
        let rows = self
            .rows(
                "SELECT DISTINCT ON (bank COLLATE \"C\") bank, version, fingerprint, items, '' AS body, created \
                 FROM bank_versions WHERE org = $1 ORDER BY bank COLLATE \"C\", version DESC",
                &[&org],
            )
            .await?;
        Ok(rows.iter().map(bank_row).collect())
    }

    async fn create_campaign(&self, c: &CampaignRecord) -> StoreResult<()> {
        self.execute(
            &format!(
                "INSERT INTO campaigns ({CAMPAIGN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            &[
                &c.org,
                &c.id,
                &c.code,
                &c.name,
                &c.bank,
                &c.bank_version,
                &c.spec,
                &c.open,
                &c.created,
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_campaign(&self, org: OrgId, id: &str) -> StoreResult<Option<CampaignRecord>> {
        let row = self
            .row(
                &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE org = $1 AND id = $2"),
                &[&org, &id],
            )
            .await?;
        Ok(row.map(|r| campaign_row(&r)))
    }

    async fn campaign_by_code(&self, code: &str) -> StoreResult<Option<CampaignRecord>> {
        let row = self
            .row(
                &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE code = $1"),
                &[&code],
            )
            .await?;
        Ok(row.map(|r| campaign_row(&r)))
    }

    async fn list_campaigns(&self, org: OrgId) -> StoreResult<Vec<CampaignRecord>> {
        let rows = self
            .rows(
                &format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE org = $1 ORDER BY created, id COLLATE \"C\""
                ),
                &[&org],
            )
            .await?;
        Ok(rows.iter().map(campaign_row).collect())
    }

    async fn set_campaign_open(&self, org: OrgId, id: &str, open: bool) -> StoreResult<bool> {
        let changed = self
            .execute(
                "UPDATE campaigns SET open = $3 WHERE org = $1 AND id = $2",
                &[&org, &id, &open],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn participation(&self, org: OrgId, campaign: &str) -> StoreResult<Participation> {
        let row = self
            .row(
                "SELECT (SELECT COUNT(*) FROM sessions WHERE org = $1 AND campaign = $2), \
                        (SELECT COUNT(*) FROM results WHERE org = $1 AND campaign = $2)",
                &[&org, &campaign],
            )
            .await?;
        Ok(row.map_or(
            Participation {
                started: 0,
                finished: 0,
            },
            |r| Participation {
                started: r.get(0),
                finished: r.get(1),
            },
        ))
    }

    async fn create_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx_execute(
            &tx,
            "INSERT INTO sessions (id, org, campaign, bank, bank_version, design, seed, participant, token_hash, \
             created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &s.id,
                &s.org,
                &s.campaign,
                &s.bank,
                &s.bank_version,
                &s.design,
                &s.seed,
                &s.participant,
                &s.token_hash,
                &s.created,
            ],
        )
        .await?;
        tx_execute(&tx, XAPI_CURSOR, &[&s.id, &s.org]).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let row = self
            .row(
                "SELECT s.id, s.org, s.campaign, s.bank, s.bank_version, s.design, s.seed, s.participant, \
                        s.token_hash, s.created, \
                        (SELECT COUNT(*) FROM answers a WHERE a.session = s.id), \
                        EXISTS (SELECT 1 FROM results r WHERE r.session = s.id) \
                 FROM sessions s WHERE s.id = $1",
                &[&id],
            )
            .await?;
        Ok(row.map(|r| SessionRecord {
            id: r.get(0),
            org: r.get(1),
            campaign: r.get(2),
            bank: r.get(3),
            bank_version: r.get(4),
            design: r.get(5),
            seed: r.get(6),
            participant: r.get(7),
            token_hash: r.get(8),
            created: r.get(9),
            answered: r.get(10),
            finished: r.get(11),
        }))
    }

    async fn answers(&self, session: &str) -> StoreResult<Vec<AnswerRecord>> {
        let rows = self
            .rows(
                &format!("SELECT {ANSWER_COLUMNS} FROM answers WHERE session = $1 ORDER BY position"),
                &[&session],
            )
            .await?;
        Ok(rows.iter().map(answer_row).collect())
    }

    async fn append_answer(&self, a: &AnswerRecord, result: Option<&str>) -> StoreResult<Appended> {
        if result.is_none() {
            // The common case in one statement (one round trip, committed when it returns): the same
            // session lock and conflict rule as the transaction below.
            let row = self
                .row(
                    &format!(
                        "WITH s AS (SELECT id FROM sessions WHERE id = $1::text FOR KEY SHARE), \
                         ins AS (INSERT INTO answers ({ANSWER_COLUMNS}) \
                                 SELECT $1::text, $2::bigint, $3::text, $4::bigint, $5::bigint, $6::bigint, $7::bigint FROM s \
                                 ON CONFLICT (session, position) DO NOTHING RETURNING 1) \
                         SELECT EXISTS (SELECT 1 FROM s), EXISTS (SELECT 1 FROM ins)"
                    ),
                    &[&a.session, &a.position, &a.item, &a.choice, &a.response, &a.code, &a.created],
                )
                .await?
                .ok_or_else(|| StorageError::Unavailable("an answer insert returned no row".into()))?;
            let (session, inserted): (bool, bool) = (row.get(0), row.get(1));
            if !session {
                return Ok(Appended::NoSession);
            }
            if inserted {
                return Ok(Appended::Recorded);
            }
            let existing = self
                .row(
                    &format!("SELECT {ANSWER_COLUMNS} FROM answers WHERE session = $1 AND position = $2"),
                    &[&a.session, &a.position],
                )
                .await?
                .ok_or_else(|| {
                    StorageError::Unavailable("an answer conflicted but cannot be read back".into())
                })?;
            return Ok(Appended::Exists(answer_row(&existing)));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // The lock keeps an erasure from deleting the session under this transaction (an erasure locks
        // the session FOR UPDATE first, so it waits for this commit, or this waits and finds no row).
        let Some(session) = tx_row(
            &tx,
            "SELECT org, campaign FROM sessions WHERE id = $1 FOR KEY SHARE",
            &[&a.session],
        )
        .await?
        else {
            return Ok(Appended::NoSession);
        };
        let org: OrgId = session.get(0);
        let campaign: Option<String> = session.get(1);
        // A concurrent insert at the same key makes this wait for that transaction, then do nothing.
        let inserted = tx_execute(
            &tx,
            &format!(
                "INSERT INTO answers ({ANSWER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (session, position) DO NOTHING"
            ),
            &[
                &a.session,
                &a.position,
                &a.item,
                &a.choice,
                &a.response,
                &a.code,
                &a.created,
            ],
        )
        .await?;
        if inserted == 0 {
            let existing = tx_row(
                &tx,
                &format!("SELECT {ANSWER_COLUMNS} FROM answers WHERE session = $1 AND position = $2"),
                &[&a.session, &a.position],
            )
            .await?
            .ok_or_else(|| {
                StorageError::Unavailable("an answer conflicted but cannot be read back".into())
            })?;
            tx.rollback().await.map_err(pg_err)?;
            return Ok(Appended::Exists(answer_row(&existing)));
        }
        if let Some(line) = result {
            tx_execute(
                &tx,
                "INSERT INTO results (session, org, campaign, line, created) VALUES ($1, $2, $3, $4, $5)",
                &[&a.session, &org, &campaign, &line, &a.created],
            )
            .await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(Appended::Recorded)
    }

    async fn results(&self, org: OrgId, campaign: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .rows(
                "SELECT line FROM results WHERE org = $1 AND campaign = $2 ORDER BY created, session COLLATE \"C\"",
                &[&org, &campaign],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn result(&self, session: &str) -> StoreResult<Option<String>> {
        let row = self
            .row("SELECT line FROM results WHERE session = $1", &[&session])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn responses(
        &self,
        org: OrgId,
        bank: &str,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> StoreResult<Vec<ResponseRow>> {
        let limit = limit.max(0);
        let rows = match after {
            None => {
                self.rows(
                    "SELECT a.session, a.item, a.code, a.position FROM answers a \
                     JOIN sessions s ON s.id = a.session \
                     WHERE s.org = $1 AND s.bank = $2 \
                     ORDER BY a.session COLLATE \"C\", a.position LIMIT $3",
                    &[&org, &bank, &limit],
                )
                .await?
            }
            Some((session, position)) => {
                self.rows(
                    "SELECT a.session, a.item, a.code, a.position FROM answers a \
                     JOIN sessions s ON s.id = a.session \
                     WHERE s.org = $1 AND s.bank = $2 \
                       AND (a.session COLLATE \"C\" > $3 OR (a.session = $3 AND a.position > $4)) \
                     ORDER BY a.session COLLATE \"C\", a.position LIMIT $5",
                    &[&org, &bank, &session, &position, &limit],
                )
                .await?
            }
        };
        Ok(rows
            .iter()
            .map(|r| ResponseRow {
                person: r.get(0),
                item: r.get(1),
                code: r.get(2),
                position: r.get(3),
            })
            .collect())
    }

    async fn erase_participant(&self, org: OrgId, participant: &str) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let mut attempt = 1;
        loop {
            match erase_once(&mut client, org, participant).await {
                Ok(erased) => return Ok(erased),
                // A row referencing a session that appeared under the erasure (the locks below should
                // prevent it; should one slip through) or a serialization failure: start again, the
                // next attempt sees it and erases it too.
                Err(e) if attempt < ERASE_ATTEMPTS && retry_erasure(&e) => attempt += 1,
                Err(e) => return Err(pg_err(e)),
            }
        }
    }

    async fn create_login(&self, token_hash: &str, org: OrgId, expires: i64) -> StoreResult<()> {
        self.execute("DELETE FROM web_logins WHERE expires < $1", &[&now_ms()])
            .await?;
        self.execute(
            "INSERT INTO web_logins (token_hash, org, expires) VALUES ($1, $2, $3)",
            &[&token_hash, &org, &expires],
        )
        .await
        .map(drop)
    }

    async fn org_by_login(&self, token_hash: &str, now: i64) -> StoreResult<Option<Org>> {
        let row = self
            .row(
                "SELECT o.id, o.name FROM web_logins l JOIN orgs o ON o.id = l.org \
                 WHERE l.token_hash = $1 AND l.expires >= $2",
                &[&token_hash, &now],
            )
            .await?;
        Ok(row.map(|r| Org {
            id: r.get(0),
            name: r.get(1),
        }))
    }

    async fn delete_login(&self, token_hash: &str) -> StoreResult<()> {
        self.execute("DELETE FROM web_logins WHERE token_hash = $1", &[&token_hash])
            .await
            .map(drop)
    }

    async fn put_lti_platform(&self, p: &LtiPlatform) -> StoreResult<()> {
        let deployments =
            serde_json::to_string(&p.deployment_ids).map_err(|e| StorageError::Unavailable(e.to_string()))?;
        self.execute(
            "INSERT INTO lti_platforms (org, issuer, client_id, deployment_ids, auth_login_url, \
                 auth_token_url, jwks_url, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &p.org,
                &p.issuer,
                &p.client_id,
                &deployments,
                &p.auth_login_url,
                &p.auth_token_url,
                &p.jwks_url,
                &p.created,
            ],
        )
        .await
        .map(drop)
    }

    async fn lti_platforms(&self, issuer: &str) -> StoreResult<Vec<LtiPlatform>> {
        self.platforms("issuer = $1", &issuer).await
    }

    async fn org_lti_platforms(&self, org: OrgId) -> StoreResult<Vec<LtiPlatform>> {
        self.platforms("org = $1", &org).await
    }

    async fn create_lti_login(&self, l: &LtiLogin) -> StoreResult<()> {
        self.execute("DELETE FROM lti_logins WHERE expires < $1", &[&now_ms()])
            .await?;
        self.execute(
            "INSERT INTO lti_logins (state, nonce, issuer, client_id, expires) VALUES ($1, $2, $3, $4, $5)",
            &[&l.state, &l.nonce, &l.issuer, &l.client_id, &l.expires],
        )
        .await
        .map(drop)
    }

    async fn take_lti_login(&self, state: &str, now: i64) -> StoreResult<Option<LtiLogin>> {
        let row = self
            .row(
                "DELETE FROM lti_logins WHERE state = $1 RETURNING state, nonce, issuer, client_id, expires",
                &[&state],
            )
            .await?;
        Ok(row
            .map(|r| LtiLogin {
                state: r.get(0),
                nonce: r.get(1),
                issuer: r.get(2),
                client_id: r.get(3),
                expires: r.get(4),
            })
            .filter(|l| l.expires >= now))
    }

    async fn tool_keys(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = self
            .rows(
                "SELECT kid, private_pem FROM tool_keys ORDER BY created, kid COLLATE \"C\"",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn add_tool_key(&self, kid: &str, private_pem: &str) -> StoreResult<()> {
        self.execute(
            "INSERT INTO tool_keys (kid, private_pem, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&kid, &private_pem, &now_ms()],
        )
        .await
        .map(drop)
    }

    async fn rekey_session(
        &self,
        org: OrgId,
        campaign: &str,
        participant: &str,
        token_hash: &str,
    ) -> StoreResult<Option<String>> {
        let row = self
            .row(
                "UPDATE sessions SET token_hash = $1 WHERE org = $2 AND campaign = $3 AND participant = $4 \
                 RETURNING id",
                &[&token_hash, &org, &campaign, &participant],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_lti_grade(&self, g: &LtiGrade) -> StoreResult<()> {
        self.execute(
            "INSERT INTO lti_grades (session, issuer, client_id, lineitem, user_id, score_maximum, state, \
                 attempts, next_attempt, lease_until) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, 0, 0) \
             ON CONFLICT (session) DO UPDATE SET lineitem = excluded.lineitem, user_id = excluded.user_id, \
                 score_maximum = excluded.score_maximum WHERE lti_grades.state = 'pending'",
            &[
                &g.session,
                &g.issuer,
                &g.client_id,
                &g.lineitem,
                &g.user_id,
                &g.score_maximum,
            ],
        )
        .await
        .map(drop)
    }

    async fn claim_due_grades(&self, now: i64, lease_until: i64, limit: i64) -> StoreResult<Vec<GradeJob>> {
        let rows = self
            .rows(
                "WITH due AS ( \
                     SELECT g.session FROM lti_grades g JOIN results r ON r.session = g.session \
                     WHERE g.state = 'pending' AND g.next_attempt <= $1 AND g.lease_until < $1 \
                     ORDER BY g.next_attempt LIMIT $3 FOR UPDATE OF g SKIP LOCKED) \
                 UPDATE lti_grades g SET lease_until = $2 FROM due, results r \
                 WHERE g.session = due.session AND r.session = g.session \
                 RETURNING g.session, g.issuer, g.client_id, g.lineitem, g.user_id, g.score_maximum, \
                     g.attempts, r.line, r.created",
                &[&now, &lease_until, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| GradeJob {
                grade: LtiGrade {
                    session: r.get(0),
                    issuer: r.get(1),
                    client_id: r.get(2),
                    lineitem: r.get(3),
                    user_id: r.get(4),
                    score_maximum: r.get(5),
                },
                attempts: r.get(6),
                result: r.get(7),
                finished: r.get(8),
            })
            .collect())
    }

    async fn grade_posted(&self, session: &str, at: i64) -> StoreResult<()> {
        self.execute(
            "UPDATE lti_grades SET state = 'posted', posted = $2, attempts = attempts + 1, lease_until = 0, \
                 last_error = NULL WHERE session = $1",
            &[&session, &at],
        )
        .await
        .map(drop)
    }

    async fn grade_failed(&self, session: &str, next_attempt: i64, error: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE lti_grades SET attempts = attempts + 1, next_attempt = $2, lease_until = 0, last_error = $3 \
             WHERE session = $1 AND state = 'pending'",
            &[&session, &next_attempt, &error],
        )
        .await
        .map(drop)
    }

    async fn lti_grades(&self, org: OrgId) -> StoreResult<Vec<(String, String, i64, Option<String>)>> {
        let rows = self
            .rows(
                "SELECT g.session, g.state, g.attempts, g.last_error FROM lti_grades g \
                 JOIN sessions s ON s.id = g.session WHERE s.org = $1 ORDER BY g.session COLLATE \"C\"",
                &[&org],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    async fn put_cat_section(&self, c: &CatSection) -> StoreResult<()> {
        self.execute(
            "INSERT INTO cat_sections (org, id, bank, bank_version, design, configuration, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &c.org,
                &c.id,
                &c.bank,
                &c.bank_version,
                &c.design,
                &c.configuration,
                &c.created,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_cat_section(&self, org: OrgId, id: &str) -> StoreResult<Option<CatSection>> {
        let row = self
            .row(
                "SELECT org, id, bank, bank_version, design, configuration, created FROM cat_sections \
                 WHERE org = $1 AND id = $2",
                &[&org, &id],
            )
            .await?;
        Ok(row.map(|r| CatSection {
            org: r.get(0),
            id: r.get(1),
            bank: r.get(2),
            bank_version: r.get(3),
            design: r.get(4),
            configuration: r.get(5),
            created: r.get(6),
        }))
    }

    async fn delete_cat_section(&self, org: OrgId, id: &str) -> StoreResult<bool> {
        let n = self
            .execute(
                "DELETE FROM cat_sections WHERE org = $1 AND id = $2",
                &[&org, &id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn put_xapi_lrs(&self, org: OrgId, lrs: Option<&XapiLrs>) -> StoreResult<()> {
        match lrs {
            Some(l) => {
                self.execute(
                    "INSERT INTO xapi_lrs (org, endpoint, username, password, homepage, created) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org) DO UPDATE SET \
                     endpoint = excluded.endpoint, username = excluded.username, \
                     password = excluded.password, homepage = excluded.homepage",
                    &[
                        &org,
                        &l.endpoint,
                        &l.username,
                        &l.password,
                        &l.homepage,
                        &l.created,
                    ],
                )
                .await?
            }
            None => {
                self.execute("DELETE FROM xapi_lrs WHERE org = $1", &[&org])
                    .await?
            }
        };
        Ok(())
    }

    async fn xapi_lrs(&self, org: OrgId) -> StoreResult<Option<XapiLrs>> {
        let row = self
            .row(
                "SELECT endpoint, username, password, homepage, created FROM xapi_lrs WHERE org = $1",
                &[&org],
            )
            .await?;
        Ok(row.map(|r| XapiLrs {
            endpoint: r.get(0),
            username: r.get(1),
            password: r.get(2),
            homepage: r.get(3),
            created: r.get(4),
        }))
    }

    async fn claim_due_statements(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<StatementJob>> {
        let rows = self
            .rows(
                &format!(
                    "WITH due AS ({XAPI_DUE} LIMIT $3 FOR UPDATE OF o SKIP LOCKED) \
                     UPDATE xapi_outbox o SET lease_until = $2 FROM due WHERE o.session = due.session \
                     RETURNING o.session, o.org, o.sent, o.attempts"
                ),
                &[&now, &lease_until, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StatementJob {
                session: r.get(0),
                org: r.get(1),
                sent: r.get(2),
                attempts: r.get(3),
            })
            .collect())
    }

    async fn statements_sent(&self, session: &str, sent: i64, completed: bool) -> StoreResult<()> {
        self.execute(XAPI_SENT, &[&session, &sent, &completed])
            .await
            .map(drop)
    }

    async fn statements_failed(&self, session: &str, next_attempt: i64, error: &str) -> StoreResult<()> {
        self.execute(XAPI_FAILED, &[&session, &next_attempt, &error])
            .await
            .map(drop)
    }

    async fn statements_summary(&self, org: OrgId) -> StoreResult<StatementsSummary> {
        let counts = self
            .row(XAPI_SUMMARY, &[&org])
            .await?
            .ok_or_else(|| StorageError::Unavailable("an aggregate returned no row".into()))?;
        let failing = self.rows(XAPI_FAILING, &[&org]).await?;
        Ok(StatementsSummary {
            sessions_completed: counts.get(0),
            sessions_open: counts.get(1),
            answers_sent: counts.get(2),
            failing: failing.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect(),
        })
    }

    async fn dump(&self) -> StoreResult<String> {
        // Each row as JSON (columns in table order), each table in primary-key order.
        const TABLES: &[(&str, &str)] = &[
            ("orgs", "SELECT row_to_json(t)::text FROM orgs t ORDER BY t.id"),
            (
                "bank_versions",
                "SELECT row_to_json(t)::text FROM bank_versions t ORDER BY t.org, t.bank COLLATE \"C\", t.version",
            ),
            (
                "campaigns",
                "SELECT row_to_json(t)::text FROM campaigns t ORDER BY t.org, t.id COLLATE \"C\"",
            ),
            (
                "sessions",
                "SELECT row_to_json(t)::text FROM sessions t ORDER BY t.id COLLATE \"C\"",
            ),
            (
                "answers",
                "SELECT row_to_json(t)::text FROM answers t ORDER BY t.session COLLATE \"C\", t.position",
            ),
            (
                "results",
                "SELECT row_to_json(t)::text FROM results t ORDER BY t.session COLLATE \"C\"",
            ),
            (
                "web_logins",
                "SELECT row_to_json(t)::text FROM web_logins t ORDER BY t.token_hash COLLATE \"C\"",
            ),
            (
                "lti_platforms",
                "SELECT row_to_json(t)::text FROM lti_platforms t ORDER BY t.issuer COLLATE \"C\", t.client_id COLLATE \"C\"",
            ),
            (
                "lti_logins",
                "SELECT row_to_json(t)::text FROM lti_logins t ORDER BY t.state COLLATE \"C\"",
            ),
            (
                "lti_grades",
                "SELECT row_to_json(t)::text FROM lti_grades t ORDER BY t.session COLLATE \"C\"",
            ),
            (
                "cat_sections",
                "SELECT row_to_json(t)::text FROM cat_sections t ORDER BY t.org, t.id COLLATE \"C\"",
            ),
            (
                "xapi_lrs",
                "SELECT row_to_json(t)::text FROM xapi_lrs t ORDER BY t.org",
            ),
            (
                "xapi_outbox",
                "SELECT row_to_json(t)::text FROM xapi_outbox t ORDER BY t.session COLLATE \"C\"",
            ),
            (
                "tool_keys",
                "SELECT row_to_json(t)::text FROM tool_keys t ORDER BY t.kid COLLATE \"C\"",
            ),
            (
                "schema_migrations",
                "SELECT json_build_object('version', version)::text FROM schema_migrations ORDER BY version",
            ),
        ];
        let mut client = self.client().await?;
        // One snapshot for every table.
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(pg_err)?;
        let mut out = String::new();
        for (table, sql) in TABLES {
            out.push_str(table);
            out.push('\n');
            for row in tx_rows(&tx, sql, &[]).await? {
                let line: String = row.get(0);
                out.push_str("  ");
                out.push_str(&line);
                out.push('\n');
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }
}

/// How many times an erasure is tried.
const ERASE_ATTEMPTS: u32 = 5;

fn retry_erasure(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        *code == SqlState::FOREIGN_KEY_VIOLATION
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// One attempt at erasing a participant, in one transaction.
async fn erase_once(
    client: &mut deadpool_postgres::Client,
    org: OrgId,
    participant: &str,
) -> Result<u64, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Locking the sessions first waits for the answers being appended to them (see append_answer).
    let statement = tx
        .prepare_cached("SELECT id FROM sessions WHERE org = $1 AND participant = $2 ORDER BY id FOR UPDATE")
        .await?;
    let ids: Vec<String> = tx
        .query(&statement, &[&org, &participant])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ids.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    for sql in [
        "DELETE FROM lti_grades WHERE session = ANY($1)",
        "DELETE FROM xapi_outbox WHERE session = ANY($1)",
        "DELETE FROM results WHERE session = ANY($1)",
        "DELETE FROM answers WHERE session = ANY($1)",
    ] {
        let statement = tx.prepare_cached(sql).await?;
        tx.execute(&statement, &[&ids]).await?;
    }
    let statement = tx
        .prepare_cached("DELETE FROM sessions WHERE id = ANY($1)")
        .await?;
    let erased = tx.execute(&statement, &[&ids]).await?;
    tx.commit().await?;
    Ok(erased)
}

/// Insert a new bank version and commit.
async fn insert_bank(
    tx: Transaction<'_>,
    org: OrgId,
    bank: &str,
    version: i64,
    fingerprint: &str,
    items: i64,
    body: &str,
) -> StoreResult<(BankRecord, bool)> {
    let created = now_ms();
    tx_execute(
        &tx,
        &format!("INSERT INTO bank_versions (org, {BANK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        &[&org, &bank, &version, &fingerprint, &items, &body, &created],
    )
    .await?;
    tx.commit().await.map_err(pg_err)?;
    let record = BankRecord {
        id: bank.to_string(),
        version,
        fingerprint: fingerprint.to_string(),
        items,
        body: body.to_string(),
        created,
    };
    Ok((record, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(
            lock_key(&[b"bank", &1i64.to_le_bytes(), b"a"]),
            lock_key(&[b"bank", &1i64.to_le_bytes(), b"a"])
        );
        assert_ne!(
            lock_key(&[b"bank", &1i64.to_le_bytes(), b"a"]),
            lock_key(&[b"bank", &2i64.to_le_bytes(), b"a"])
        );
        // FNV-1a of the empty input is its offset basis.
        assert_eq!(lock_key(&[]), 0xcbf2_9ce4_8422_2325_u64 as i64);
    }

    #[tokio::test]
    async fn a_bad_url_is_a_setup_error() {
        let e = PgStore::open("postgres://host:notaport/db").await.unwrap_err();
        assert!(matches!(e, StorageError::Setup(_)), "{e:?}");
    }
}
