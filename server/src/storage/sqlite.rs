//! Embedded SQLite storage: one database file in WAL mode, `synchronous=FULL`.
//!
//! Every write goes to one writer thread, which commits *groups*: it takes all the writes waiting,
//! runs each inside its own savepoint (a refused write is rolled back alone), commits them in one
//! transaction — one fsync for many answers — and only then answers each caller. That is what lets a
//! single file take thousands of durable answers a second. Reads use a small pool of connections of
//! their own (WAL readers never wait for the writer); they are point reads of microseconds and run on
//! the calling task.

use super::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

/// The most writes committed together.
const MAX_GROUP: usize = 1024;

type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// A write: run on the writer's connection (or, with `None`, refused without running).
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

/// SQLite storage.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// Map a SQLite error: a uniqueness rule → `Conflict`, anything else → `Unavailable`.
fn map_err(e: rusqlite::Error) -> StorageError {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
        && msg.contains("UNIQUE")
    {
        return StorageError::Conflict(msg.trim_start_matches("UNIQUE constraint failed: ").to_string());
    }
    unavailable(e)
}

fn connect(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(|e| {
        // SQLite's message may end with the path already.
        let message = e.to_string();
        let message = message
            .strip_suffix(&format!(": {}", path.display()))
            .unwrap_or(&message);
        StorageError::Setup(format!("{}: {message}", path.display()))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(map_err)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
        .map_err(map_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// The LTI platforms matching `filter` (one parameter), by issuer and client id.
    fn platforms(&self, filter: &str, param: rusqlite::types::Value) -> StoreResult<Vec<LtiPlatform>> {
        let sql = format!(
            "SELECT org, issuer, client_id, deployment_ids, auth_login_url, auth_token_url, jwks_url, created
             FROM lti_platforms WHERE {filter} ORDER BY issuer, client_id"
        );
        let rows: Vec<(LtiPlatform, String)> = self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map([param], |r| {
                    Ok((
                        LtiPlatform {
                            org: r.get(0)?,
                            issuer: r.get(1)?,
                            client_id: r.get(2)?,
                            deployment_ids: Vec::new(),
                            auth_login_url: r.get(4)?,
                            auth_token_url: r.get(5)?,
                            jwks_url: r.get(6)?,
                            created: r.get(7)?,
                        },
                        r.get(3)?,
                    ))
                })?
                .collect()
        })?;
        super::with_deployments(rows)
    }

    /// Open (creating if needed) the database file, switch it to WAL and apply the migrations.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = connect(path)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| StorageError::Setup(format!("{}: {e}", path.display())))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Setup(format!(
                "{}: the database cannot use write-ahead logging (journal mode {mode})",
                path.display()
            )));
        }
        migrate(&conn).map_err(|e| match e {
            StorageError::Unavailable(m) => StorageError::Setup(format!("{}: {m}", path.display())),
            e => e,
        })?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("etalon-sqlite-writer".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(|e| StorageError::Setup(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(tx),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Run `f` on the writer thread inside the next group's transaction; answered after the commit.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(unavailable("the transaction could not begin")),
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, reply)
        });
        self.writer
            .lock()
            .map_err(|_| unavailable("writer lock poisoned"))?
            .send(job)
            .map_err(|_| unavailable("the writer thread has stopped"))?;
        rx.await
            .map_err(|_| unavailable("the writer thread has stopped"))?
    }

    /// Run `f` on a pooled read connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let pooled = self
            .readers
            .lock()
            .map_err(|_| unavailable("reader pool poisoned"))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.path).map_err(|e| unavailable(e.to_string()))?,
        };
        let result = f(&conn).map_err(map_err);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        result
    }
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)?;
    let run = || -> StoreResult<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
        )
        .map_err(map_err)?;
        let current: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        if current > MIGRATIONS.len() as i64 {
            return Err(StorageError::Setup(format!(
                "database schema version {current} is newer than this etalon ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, _) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            conn.execute_batch(&migration_sql(i, "INTEGER PRIMARY KEY", "INTEGER"))
                .map_err(map_err)?;
            conn.execute(
                "INSERT INTO schema_migrations (version, applied) VALUES (?1, ?2)",
                params![i as i64 + 1, now_ms()],
            )
            .map_err(map_err)?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => conn.execute_batch("COMMIT").map_err(map_err),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The writer thread: group commit until every sender is gone.
fn write_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = map_err(e);
            for job in jobs {
                let (_, reply) = job(None);
                reply(Err(e.clone()));
            }
            continue;
        }
        for job in jobs {
            let saved = conn.execute_batch("SAVEPOINT job");
            let (ok, reply) = job(Some(&conn));
            let undo = if ok {
                conn.execute_batch("RELEASE job")
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            };
            replies.push(match (saved, undo) {
                (Ok(()), Ok(())) => reply,
                (Err(e), _) | (_, Err(e)) => {
                    let e = map_err(e);
                    Box::new(move |_| reply(Err(e)))
                }
            });
        }
        let commit = conn.execute_batch("COMMIT").map_err(map_err);
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies.drain(..) {
            reply(commit.clone());
        }
    }
}

fn bank_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BankRecord> {
    Ok(BankRecord {
        id: r.get(0)?,
        version: r.get(1)?,
        fingerprint: r.get(2)?,
        items: r.get(3)?,
        body: r.get(4)?,
        created: r.get(5)?,
    })
}

const CAMPAIGN_COLUMNS: &str = "org, id, code, name, bank, bank_version, spec, open, created";

fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignRecord> {
    Ok(CampaignRecord {
        org: r.get(0)?,
        id: r.get(1)?,
        code: r.get(2)?,
        name: r.get(3)?,
        bank: r.get(4)?,
        bank_version: r.get(5)?,
        spec: r.get(6)?,
        open: r.get::<_, i64>(7)? != 0,
        created: r.get(8)?,
    })
}

fn answer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AnswerRecord> {
    Ok(AnswerRecord {
        session: r.get(0)?,
        position: r.get(1)?,
        item: r.get(2)?,
        choice: r.get(3)?,
        response: r.get(4)?,
        code: r.get(5)?,
        created: r.get(6)?,
    })
}

const ANSWER_COLUMNS: &str = "session, position, item, choice, response, code, created";

#[async_trait]
impl Storage for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_org(&self, name: &str, key_hash: &str) -> StoreResult<Org> {
        let (name, key_hash) = (name.to_string(), key_hash.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO orgs (name, key_hash, created) VALUES (?1, ?2, ?3)",
                params![name, key_hash, now_ms()],
            )
            .map_err(map_err)?;
            Ok(Org {
                id: c.last_insert_rowid(),
                name,
            })
        })
        .await
    }

    async fn org_by_key(&self, key_hash: &str) -> StoreResult<Option<Org>> {
        self.read(|c| {
            c.prepare_cached("SELECT id, name FROM orgs WHERE key_hash = ?1")?
                .query_row([key_hash], |r| {
                    Ok(Org {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                })
                .optional()
        })
    }

    async fn org_count(&self) -> StoreResult<i64> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM orgs", [], |r| r.get(0)))
    }

    async fn put_bank(
        &self,
        org: OrgId,
        bank: &str,
        fingerprint: &str,
        items: i64,
        body: &str,
    ) -> StoreResult<(BankRecord, bool)> {
        let (bank, fingerprint, body) = (bank.to_string(), fingerprint.to_string(), body.to_string());
        self.write(move |c| {
            let latest = c
                .query_row(
                    "SELECT bank, version, fingerprint, items, body, created FROM bank_versions
                     WHERE org = ?1 AND bank = ?2 ORDER BY version DESC LIMIT 1",
                    params![org, bank],
                    bank_row,
                )
                .optional()
                .map_err(map_err)?;
            if let Some(l) = &latest
                && l.fingerprint == fingerprint
            {
                return Ok((l.clone(), false));
            }
            let record = BankRecord {
                id: bank,
                version: latest.map_or(1, |l| l.version + 1),
                fingerprint,
                items,
                body,
                created: now_ms(),
            };
            c.execute(
                "INSERT INTO bank_versions (org, bank, version, fingerprint, items, body, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    org,
                    record.id,
                    record.version,
                    record.fingerprint,
                    record.items,
                    record.body,
                    record.created
                ],
            )
            .map_err(map_err)?;
            Ok((record, true))
        })
        .await
    }

    async fn get_bank(
        &self,
        org: OrgId,
        bank: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<BankRecord>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT bank, version, fingerprint, items, body, created FROM bank_versions
                 WHERE org = ?1 AND bank = ?2 AND (?3 IS NULL OR version = ?3)
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![org, bank, version], bank_row)
            .optional()
        })
    }

    async fn list_banks(&self, org: OrgId) -> StoreResult<Vec<BankRecord>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT bank, version, fingerprint, items, '', created FROM bank_versions b
                 WHERE org = ?1 AND version = (SELECT MAX(version) FROM bank_versions
                                               WHERE org = b.org AND bank = b.bank)
                 ORDER BY bank",
            )?;
            st.query_map([org], bank_row)?.collect()
        })
    }

    async fn create_campaign(&self, campaign: &CampaignRecord) -> StoreResult<()> {
        let k = campaign.clone();
        self.write(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO campaigns ({CAMPAIGN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    k.org,
                    k.id,
                    k.code,
                    k.name,
                    k.bank,
                    k.bank_version,
                    k.spec,
                    k.open,
                    k.created
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_campaign(&self, org: OrgId, id: &str) -> StoreResult<Option<CampaignRecord>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE org = ?1 AND id = ?2"
            ))?
            .query_row(params![org, id], campaign_row)
            .optional()
        })
    }

    async fn campaign_by_code(&self, code: &str) -> StoreResult<Option<CampaignRecord>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE code = ?1"
            ))?
            .query_row([code], campaign_row)
            .optional()
        })
    }

    async fn list_campaigns(&self, org: OrgId) -> StoreResult<Vec<CampaignRecord>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE org = ?1 ORDER BY created, id"
            ))?;
            st.query_map([org], campaign_row)?.collect()
        })
    }

    async fn set_campaign_open(&self, org: OrgId, id: &str, open: bool) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE campaigns SET open = ?1 WHERE org = ?2 AND id = ?3",
                params![open, org, id],
            )
            .map(|n| n > 0)
            .map_err(map_err)
        })
        .await
    }

    async fn participation(&self, org: OrgId, campaign: &str) -> StoreResult<Participation> {
        self.read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM sessions WHERE org = ?1 AND campaign = ?2),
                        (SELECT COUNT(*) FROM results WHERE org = ?1 AND campaign = ?2)",
                params![org, campaign],
                |r| {
                    Ok(Participation {
                        started: r.get(0)?,
                        finished: r.get(1)?,
                    })
                },
            )
        })
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO sessions (id, org, campaign, bank, bank_version, design, seed, participant,
                                       token_hash, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    s.id,
                    s.org,
                    s.campaign,
                    s.bank,
                    s.bank_version,
                    s.design,
                    s.seed,
                    s.participant,
                    s.token_hash,
                    s.created
                ],
            )
            .map_err(map_err)?;
            c.execute(&sqlite_params(XAPI_CURSOR), params![s.id, s.org])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, org, campaign, bank, bank_version, design, seed, participant, token_hash, created,
                        (SELECT COUNT(*) FROM answers WHERE session = s.id),
                        EXISTS (SELECT 1 FROM results WHERE session = s.id)
                 FROM sessions s WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(SessionRecord {
                    id: r.get(0)?,
                    org: r.get(1)?,
                    campaign: r.get(2)?,
                    bank: r.get(3)?,
                    bank_version: r.get(4)?,
                    design: r.get(5)?,
                    seed: r.get(6)?,
                    participant: r.get(7)?,
                    token_hash: r.get(8)?,
                    created: r.get(9)?,
                    answered: r.get(10)?,
                    finished: r.get(11)?,
                })
            })
            .optional()
        })
    }

    async fn answers(&self, session: &str) -> StoreResult<Vec<AnswerRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ANSWER_COLUMNS} FROM answers WHERE session = ?1 ORDER BY position"
            ))?;
            st.query_map([session], answer_row)?.collect()
        })
    }

    async fn append_answer(&self, answer: &AnswerRecord, result: Option<&str>) -> StoreResult<Appended> {
        let (a, result) = (answer.clone(), result.map(str::to_string));
        self.write(move |c| {
            let exists = c
                .prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")
                .and_then(|mut s| s.exists([&a.session]))
                .map_err(map_err)?;
            if !exists {
                return Ok(Appended::NoSession);
            }
            let inserted = c
                .prepare_cached(&format!(
                    "INSERT OR IGNORE INTO answers ({ANSWER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        a.session, a.position, a.item, a.choice, a.response, a.code, a.created
                    ])
                })
                .map_err(map_err)?;
            if inserted == 0 {
                let existing = c
                    .prepare_cached(&format!(
                        "SELECT {ANSWER_COLUMNS} FROM answers WHERE session = ?1 AND position = ?2"
                    ))
                    .and_then(|mut s| s.query_row(params![a.session, a.position], answer_row))
                    .map_err(map_err)?;
                return Ok(Appended::Exists(existing));
            }
            if let Some(line) = result {
                c.prepare_cached(
                    "INSERT INTO results (session, org, campaign, line, created)
                     SELECT id, org, campaign, ?2, ?3 FROM sessions WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![a.session, line, a.created]))
                .map_err(map_err)?;
            }
            Ok(Appended::Recorded)
        })
        .await
    }

    async fn results(&self, org: OrgId, campaign: &str) -> StoreResult<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT line FROM results WHERE org = ?1 AND campaign = ?2 ORDER BY created, session",
            )?;
            st.query_map(params![org, campaign], |r| r.get(0))?.collect()
        })
    }

    async fn result(&self, session: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT line FROM results WHERE session = ?1")?
                .query_row([session], |r| r.get(0))
                .optional()
        })
    }

    async fn responses(
        &self,
        org: OrgId,
        bank: &str,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> StoreResult<Vec<ResponseRow>> {
        let (s0, p0) = after.unwrap_or_default();
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT a.session, a.item, a.code, a.position FROM answers a
                 JOIN sessions s ON s.id = a.session
                 WHERE s.org = ?1 AND s.bank = ?2 AND (a.session > ?3 OR (a.session = ?3 AND a.position > ?4))
                 ORDER BY a.session, a.position LIMIT ?5",
            )?;
            st.query_map(params![org, bank, s0, p0, limit], |r| {
                Ok(ResponseRow {
                    person: r.get(0)?,
                    item: r.get(1)?,
                    code: r.get(2)?,
                    position: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    async fn erase_participant(&self, org: OrgId, participant: &str) -> StoreResult<u64> {
        let participant = participant.to_string();
        self.write(move |c| {
            let scope = "(SELECT id FROM sessions WHERE org = ?1 AND participant = ?2)";
            for table in ["lti_grades", "xapi_outbox"] {
                c.execute(
                    &format!("DELETE FROM {table} WHERE session IN {scope}"),
                    params![org, participant],
                )
                .map_err(map_err)?;
            }
            c.execute(
                &format!("DELETE FROM results WHERE session IN {scope}"),
                params![org, participant],
            )
            .map_err(map_err)?;
            c.execute(
                &format!("DELETE FROM answers WHERE session IN {scope}"),
                params![org, participant],
            )
            .map_err(map_err)?;
            c.execute(
                "DELETE FROM sessions WHERE org = ?1 AND participant = ?2",
                params![org, participant],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn create_login(&self, token_hash: &str, org: OrgId, expires: i64) -> StoreResult<()> {
        let token_hash = token_hash.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM web_logins WHERE expires < ?1", params![now_ms()])
                .map_err(map_err)?;
            c.execute(
                "INSERT INTO web_logins (token_hash, org, expires) VALUES (?1, ?2, ?3)",
                params![token_hash, org, expires],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn org_by_login(&self, token_hash: &str, now: i64) -> StoreResult<Option<Org>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT o.id, o.name FROM web_logins l JOIN orgs o ON o.id = l.org
                 WHERE l.token_hash = ?1 AND l.expires >= ?2",
            )?
            .query_row(params![token_hash, now], |r| {
                Ok(Org {
                    id: r.get(0)?,
                    name: r.get(1)?,
                })
            })
            .optional()
        })
    }

    async fn delete_login(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_string();
        self.write(move |c| {
            c.execute(
                "DELETE FROM web_logins WHERE token_hash = ?1",
                params![token_hash],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn put_lti_platform(&self, p: &LtiPlatform) -> StoreResult<()> {
        let p = p.clone();
        let deployments = serde_json::to_string(&p.deployment_ids).map_err(unavailable)?;
        self.write(move |c| {
            c.execute(
                "INSERT INTO lti_platforms (org, issuer, client_id, deployment_ids, auth_login_url,
                     auth_token_url, jwks_url, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    p.org,
                    p.issuer,
                    p.client_id,
                    deployments,
                    p.auth_login_url,
                    p.auth_token_url,
                    p.jwks_url,
                    p.created
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn lti_platforms(&self, issuer: &str) -> StoreResult<Vec<LtiPlatform>> {
        self.platforms("issuer = ?1", issuer.to_string().into())
    }

    async fn org_lti_platforms(&self, org: OrgId) -> StoreResult<Vec<LtiPlatform>> {
        self.platforms("org = ?1", org.into())
    }

    async fn create_lti_login(&self, login: &LtiLogin) -> StoreResult<()> {
        let l = login.clone();
        self.write(move |c| {
            c.execute("DELETE FROM lti_logins WHERE expires < ?1", params![now_ms()])
                .map_err(map_err)?;
            c.execute(
                "INSERT INTO lti_logins (state, nonce, issuer, client_id, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![l.state, l.nonce, l.issuer, l.client_id, l.expires],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn take_lti_login(&self, state: &str, now: i64) -> StoreResult<Option<LtiLogin>> {
        let state = state.to_string();
        self.write(move |c| {
            c.query_row(
                "DELETE FROM lti_logins WHERE state = ?1 RETURNING state, nonce, issuer, client_id, expires",
                [state],
                |r| {
                    Ok(LtiLogin {
                        state: r.get(0)?,
                        nonce: r.get(1)?,
                        issuer: r.get(2)?,
                        client_id: r.get(3)?,
                        expires: r.get(4)?,
                    })
                },
            )
            .optional()
            .map(|l| l.filter(|l| l.expires >= now))
            .map_err(map_err)
        })
        .await
    }

    async fn tool_keys(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(|c| {
            c.prepare_cached("SELECT kid, private_pem FROM tool_keys ORDER BY created, kid")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    async fn add_tool_key(&self, kid: &str, private_pem: &str) -> StoreResult<()> {
        let (kid, pem) = (kid.to_string(), private_pem.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO tool_keys (kid, private_pem, created) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![kid, pem, now_ms()],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn rekey_session(
        &self,
        org: OrgId,
        campaign: &str,
        participant: &str,
        token_hash: &str,
    ) -> StoreResult<Option<String>> {
        let (campaign, participant, hash) = (
            campaign.to_string(),
            participant.to_string(),
            token_hash.to_string(),
        );
        self.write(move |c| {
            c.query_row(
                "UPDATE sessions SET token_hash = ?1 WHERE org = ?2 AND campaign = ?3 AND participant = ?4
                 RETURNING id",
                params![hash, org, campaign, participant],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn put_lti_grade(&self, g: &LtiGrade) -> StoreResult<()> {
        let g = g.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO lti_grades (session, issuer, client_id, lineitem, user_id, score_maximum, state,
                     attempts, next_attempt, lease_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, 0, 0)
                 ON CONFLICT (session) DO UPDATE SET lineitem = excluded.lineitem, user_id = excluded.user_id,
                     score_maximum = excluded.score_maximum WHERE lti_grades.state = 'pending'",
                params![
                    g.session,
                    g.issuer,
                    g.client_id,
                    g.lineitem,
                    g.user_id,
                    g.score_maximum
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn claim_due_grades(&self, now: i64, lease_until: i64, limit: i64) -> StoreResult<Vec<GradeJob>> {
        self.write(move |c| {
            let mut st = c
                .prepare_cached(
                    "UPDATE lti_grades SET lease_until = ?2 WHERE session IN (
                         SELECT g.session FROM lti_grades g JOIN results r ON r.session = g.session
                         WHERE g.state = 'pending' AND g.next_attempt <= ?1 AND g.lease_until < ?1
                         ORDER BY g.next_attempt LIMIT ?3)
                     RETURNING session, issuer, client_id, lineitem, user_id, score_maximum, attempts,
                         (SELECT line FROM results r WHERE r.session = lti_grades.session),
                         (SELECT created FROM results r WHERE r.session = lti_grades.session)",
                )
                .map_err(map_err)?;
            let rows = st
                .query_map(params![now, lease_until, limit], |r| {
                    Ok(GradeJob {
                        grade: LtiGrade {
                            session: r.get(0)?,
                            issuer: r.get(1)?,
                            client_id: r.get(2)?,
                            lineitem: r.get(3)?,
                            user_id: r.get(4)?,
                            score_maximum: r.get(5)?,
                        },
                        attempts: r.get(6)?,
                        result: r.get(7)?,
                        finished: r.get(8)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
        })
        .await
    }

    async fn grade_posted(&self, session: &str, at: i64) -> StoreResult<()> {
        let session = session.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE lti_grades SET state = 'posted', posted = ?2, attempts = attempts + 1, lease_until = 0,
                     last_error = NULL WHERE session = ?1",
                params![session, at],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn grade_failed(&self, session: &str, next_attempt: i64, error: &str) -> StoreResult<()> {
        let (session, error) = (session.to_string(), error.to_string());
        self.write(move |c| {
            c.execute(
                "UPDATE lti_grades SET attempts = attempts + 1, next_attempt = ?2, lease_until = 0, last_error = ?3
                 WHERE session = ?1 AND state = 'pending'",
                params![session, next_attempt, error],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn lti_grades(&self, org: OrgId) -> StoreResult<Vec<(String, String, i64, Option<String>)>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT g.session, g.state, g.attempts, g.last_error FROM lti_grades g
                 JOIN sessions s ON s.id = g.session WHERE s.org = ?1 ORDER BY g.session",
            )?
            .query_map([org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect()
        })
    }

    async fn put_cat_section(&self, c: &CatSection) -> StoreResult<()> {
        let c = c.clone();
        self.write(move |db| {
            db.execute(
                "INSERT INTO cat_sections (org, id, bank, bank_version, design, configuration, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    c.org,
                    c.id,
                    c.bank,
                    c.bank_version,
                    c.design,
                    c.configuration,
                    c.created
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn get_cat_section(&self, org: OrgId, id: &str) -> StoreResult<Option<CatSection>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT org, id, bank, bank_version, design, configuration, created FROM cat_sections
                 WHERE org = ?1 AND id = ?2",
            )?
            .query_row(params![org, id], |r| {
                Ok(CatSection {
                    org: r.get(0)?,
                    id: r.get(1)?,
                    bank: r.get(2)?,
                    bank_version: r.get(3)?,
                    design: r.get(4)?,
                    configuration: r.get(5)?,
                    created: r.get(6)?,
                })
            })
            .optional()
        })
    }

    async fn delete_cat_section(&self, org: OrgId, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute(
                "DELETE FROM cat_sections WHERE org = ?1 AND id = ?2",
                params![org, id],
            )
            .map(|n| n > 0)
            .map_err(map_err)
        })
        .await
    }

    async fn put_xapi_lrs(&self, org: OrgId, lrs: Option<&XapiLrs>) -> StoreResult<()> {
        let lrs = lrs.cloned();
        self.write(move |c| {
            match lrs {
                Some(l) => c.execute(
                    "INSERT INTO xapi_lrs (org, endpoint, username, password, homepage, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (org) DO UPDATE SET endpoint = excluded.endpoint, username = excluded.username,
                         password = excluded.password, homepage = excluded.homepage",
                    params![org, l.endpoint, l.username, l.password, l.homepage, l.created],
                ),
                None => c.execute("DELETE FROM xapi_lrs WHERE org = ?1", params![org]),
            }
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn xapi_lrs(&self, org: OrgId) -> StoreResult<Option<XapiLrs>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT endpoint, username, password, homepage, created FROM xapi_lrs WHERE org = ?1",
            )?
            .query_row([org], |r| {
                Ok(XapiLrs {
                    endpoint: r.get(0)?,
                    username: r.get(1)?,
                    password: r.get(2)?,
                    homepage: r.get(3)?,
                    created: r.get(4)?,
                })
            })
            .optional()
        })
    }

    async fn claim_due_statements(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<StatementJob>> {
        self.write(move |c| {
            let mut st = c
                .prepare_cached(&sqlite_params(&format!(
                    "UPDATE xapi_outbox SET lease_until = $2 WHERE session IN ({XAPI_DUE} LIMIT $3)
                     RETURNING session, org, sent, attempts"
                )))
                .map_err(map_err)?;
            let rows = st
                .query_map(params![now, lease_until, limit], |r| {
                    Ok(StatementJob {
                        session: r.get(0)?,
                        org: r.get(1)?,
                        sent: r.get(2)?,
                        attempts: r.get(3)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
        })
        .await
    }

    async fn statements_sent(&self, session: &str, sent: i64, completed: bool) -> StoreResult<()> {
        let session = session.to_string();
        self.write(move |c| {
            c.execute(&sqlite_params(XAPI_SENT), params![session, sent, completed])
                .map(drop)
                .map_err(map_err)
        })
        .await
    }

    async fn statements_failed(&self, session: &str, next_attempt: i64, error: &str) -> StoreResult<()> {
        let (session, error) = (session.to_string(), error.to_string());
        self.write(move |c| {
            c.execute(&sqlite_params(XAPI_FAILED), params![session, next_attempt, error])
                .map(drop)
                .map_err(map_err)
        })
        .await
    }

    async fn statements_summary(&self, org: OrgId) -> StoreResult<StatementsSummary> {
        self.read(|c| {
            let mut summary = c
                .prepare_cached(&sqlite_params(XAPI_SUMMARY))?
                .query_row([org], |r| {
                    Ok(StatementsSummary {
                        sessions_completed: r.get(0)?,
                        sessions_open: r.get(1)?,
                        answers_sent: r.get(2)?,
                        failing: Vec::new(),
                    })
                })?;
            summary.failing = c
                .prepare_cached(&sqlite_params(XAPI_FAILING))?
                .query_map([org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(summary)
        })
    }

    async fn dump(&self) -> StoreResult<String> {
        self.read(|c| {
            let mut out = String::new();
            for (table, order) in [
                ("orgs", "id"),
                ("bank_versions", "org, bank, version"),
                ("campaigns", "org, id"),
                ("sessions", "id"),
                ("answers", "session, position"),
                ("results", "session"),
                ("web_logins", "token_hash"),
                ("lti_platforms", "issuer, client_id"),
                ("lti_logins", "state"),
                ("tool_keys", "kid"),
                ("lti_grades", "session"),
                ("cat_sections", "org, id"),
                ("xapi_lrs", "org"),
                ("xapi_outbox", "session"),
            ] {
                out.push_str(&format!("# {table}\n"));
                let mut st = c.prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
                let n = st.column_count();
                let mut rows = st.query([])?;
                while let Some(r) = rows.next()? {
                    let cells: Vec<String> = (0..n)
                        .map(|i| match r.get_ref(i) {
                            Ok(rusqlite::types::ValueRef::Text(t)) => {
                                format!("{:?}", String::from_utf8_lossy(t))
                            }
                            Ok(v) => format!("{v:?}"),
                            Err(e) => format!("<{e}>"),
                        })
                        .collect();
                    out.push_str(&cells.join("|"));
                    out.push('\n');
                }
            }
            Ok(out)
        })
    }
}
