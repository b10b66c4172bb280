//! Databases for the server's integration tests: a fresh SQLite file always, and a fresh PostgreSQL
//! database when `ETALON_POSTGRES_URL` names a server (the admin URL `.ci/postgres start DIR` prints).
//! Each [`TestDb`] is removed when dropped. Usable from plain tests and from `#[tokio::test]`s: the
//! PostgreSQL administration runs on a thread of its own with its own runtime.
//!
//! ```sh
//! export ETALON_POSTGRES_URL=$(.ci/postgres start /tmp/etalon-pg)
//! cargo test -p etalon-server
//! .ci/postgres stop /tmp/etalon-pg
//! ```
//!
//! With `ETALON_REQUIRE_POSTGRES=1` (CI), a missing `ETALON_POSTGRES_URL` fails the tests instead of
//! skipping PostgreSQL.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use etalon_server::storage::{self, Storage};

/// The environment variable naming the PostgreSQL server (admin URL).
pub const POSTGRES_URL_VAR: &str = "ETALON_POSTGRES_URL";
/// Set to `1` to fail, not skip, when PostgreSQL is not configured.
pub const REQUIRE_POSTGRES_VAR: &str = "ETALON_REQUIRE_POSTGRES";

/// A database of its own for one test, removed on drop.
pub struct TestDb {
    /// What `etalon serve --db` and [`storage::open`] take.
    pub url: String,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The SQLite file's directory (kept alive until drop).
    dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database: (admin URL, database name), dropped on drop.
    pg: Option<(String, String)>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .finish()
    }
}

impl TestDb {
    /// A fresh SQLite database file in a temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::Builder::new()
            .prefix("etalon-test-")
            .tempdir()
            .expect("temporary directory");
        let url = format!("sqlite:{}", dir.path().join("etalon.db").display());
        TestDb {
            url,
            backend: "sqlite",
            dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh, empty PostgreSQL database on the server `admin_url` names.
    pub fn postgres(admin_url: &str) -> TestDb {
        let name = format!("etalon_t_{}", random_hex());
        let url = with_database(admin_url, &name);
        let admin = admin_url.to_string();
        let sql = format!("CREATE DATABASE {name}");
        on_own_runtime(move || async move { admin_execute(&admin, &sql).await }).unwrap_or_else(|e| {
            panic!("cannot create a PostgreSQL test database through {POSTGRES_URL_VAR}: {e}")
        });
        TestDb {
            url,
            backend: "postgres",
            dir: None,
            pg: Some((admin_url.to_string(), name)),
        }
    }

    /// Open it as the server does (migrations applied).
    pub async fn open(&self) -> Arc<dyn Storage> {
        match storage::open(&self.url).await {
            Ok(store) => store,
            Err(e) => panic!("opening the {} test database: {e}", self.backend),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // FORCE ends the connections a store still holds.
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = on_own_runtime(move || async move { admin_execute(&admin, &sql).await }) {
                eprintln!("could not drop the PostgreSQL test database {name}: {e}");
            }
        }
        // The SQLite directory goes with `dir`.
    }
}

/// The databases to run a test on: SQLite always, PostgreSQL when configured (see the module doc).
pub fn backends() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite()];
    if let Some(admin) = postgres_admin_url() {
        dbs.push(TestDb::postgres(&admin));
    }
    dbs
}

/// The PostgreSQL admin URL, or `None` (after saying once that PostgreSQL is skipped); panics when
/// PostgreSQL is required but not configured.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            if std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1") {
                panic!(
                    "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: start a server with \
                     `export {POSTGRES_URL_VAR}=$(.ci/postgres start /tmp/etalon-pg)` \
                     (and `.ci/postgres stop /tmp/etalon-pg` afterwards)"
                );
            }
            static SKIPPED: Once = Once::new();
            SKIPPED.call_once(|| {
                // Straight to stderr: the test harness captures `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL tests skipped: set {POSTGRES_URL_VAR} (see .ci/postgres)"
                );
            });
            None
        }
    }
}

/// Run an async job on a new thread with its own runtime (safe inside or outside a runtime).
fn on_own_runtime<F, Fut, T>(job: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(job())
    })
    .join()
    .expect("the database administration thread panicked")
}

/// Run one statement on the admin database.
async fn admin_execute(admin_url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let outcome = client
        .batch_execute(sql)
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        });
    drop(client);
    let _ = driver.await;
    outcome
}

/// The URL with its database (path) replaced: `postgres://u@h:p/admin?x` → `postgres://u@h:p/NAME?x`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// 64 random bits in hex (a database name no other test or run takes).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}
