//! Fault tests of `etalon serve` (docs/FORMATS.md, "HTTP service"), against the real binary:
//!
//! - the server is killed with SIGKILL while 16 clients answer, three times over on one database:
//!   after each restart every acknowledged answer is there, nothing unacknowledged is half-recorded
//!   (a session's stored answers are exactly positions 1..answered, its last answer has its result
//!   line iff it finished), and every session continues to its end (SQLite, and PostgreSQL when
//!   `ETALON_POSTGRES_URL` names a server);
//! - the database is made read-only while clients answer: every answer is a 2xx or a JSON 503, the
//!   process never dies nor panics, and after the database is writable again (and the server
//!   restarted) every acknowledged answer is there. For SQLite that is the directory and files made
//!   read-only (`chmod`, the server running as an unprivileged user, since root ignores permission
//!   bits), and a file-size limit of 0 (`prlimit --fsize`), which makes every write fail; for
//!   PostgreSQL, the database set read-only with its connections cut.
//!
//! What `chmod` does to a running SQLite server: nothing. SQLite opens the database, its `-wal` and
//! `-shm` once and writes through those descriptors (permission bits are checked at `open` only);
//! WAL mode creates no file while it runs (checkpoints write into the open database file, the WAL is
//! reused from its start), and a read connection opened later falls back to a read-only descriptor,
//! which is all a reader needs (the wal-index is shared in-process). So answers keep being
//! acknowledged (no 503 at all) — and they really are durable: the test checks them after a restart.
//! What a read-only database does change is a *restart*: the server then starts, reads everything
//! acknowledged, and answers every write with a 503 ("attempt to write a readonly database"); the
//! test also accepts a clean refusal to start, never a panic. To see the 503 path of a running
//! server, the file-size limit variant makes the writes themselves fail: that needs the server to
//! survive SIGXFSZ (ignore or handle it), or the kernel ends it at the first write.

use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Concurrent clients.
const CLIENTS: usize = 16;
/// The demo campaign's join code and id (its bank is read from it).
const CODE: &str = "DEMO";
const CAMPAIGN: &str = "example-campaign";
/// The user an unprivileged server runs as (`nobody`).
const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------------------------
// The server process.

/// A running `etalon serve`.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// The demo organisation's key, printed when the database was empty.
    key: Option<String>,
    /// Everything it wrote on standard error.
    log: Arc<Mutex<String>>,
    log_thread: Option<std::thread::JoinHandle<()>>,
}

/// Why a server did not start: its exit status and standard error.
#[derive(Debug)]
struct Refused {
    status: ExitStatus,
    stderr: String,
}

impl Server {
    /// Start `etalon serve` on `db` (behind `prefix`, e.g. `setpriv …`), in `cwd`, on a free port.
    fn start(db: &str, prefix: &[&str], cwd: &Path) -> Result<Server, Refused> {
        let exe = env!("CARGO_BIN_EXE_etalon");
        let mut cmd = match prefix.split_first() {
            None => Command::new(exe),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(exe);
                c
            }
        };
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn etalon serve");
        // Standard error through a pipe, not a file: a file-size limit must not hit the logs.
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        let log_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lock(&sink).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let (mut base, mut key) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Etalon is listening on ") {
                        base = rest.split_whitespace().next().map(str::to_string);
                    } else if let Some(rest) = line.split_once("keep it): ") {
                        key = Some(rest.1.trim().to_string());
                    } else if line.starts_with("Take the demo campaign") {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait");
                    let _ = log_thread.join();
                    let stderr = lock(&log).clone();
                    return Err(Refused { status, stderr });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "etalon serve did not start within 60 s; stderr:\n{}",
                        lock(&log).clone()
                    );
                }
            }
        }
        let base = base.expect("the server prints its address");
        Ok(Server {
            child,
            base,
            key,
            log,
            log_thread: Some(log_thread),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while it runs, else how it ended.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGKILL (what `Child::kill` sends on Unix); returns its standard error.
    fn kill(mut self) -> String {
        self.stop()
    }

    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
        lock(&self.log).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The log, even if a panic poisoned its lock.
fn lock(log: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a process ended, in words (signals named).
fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(25) => "killed by signal 25 (SIGXFSZ: file size limit exceeded)".to_string(),
        Some(s) => format!("killed by signal {s}"),
        None => format!("exited with {status}"),
    }
}

/// Panics if a server's standard error shows a panic.
fn assert_no_panic(what: &str, log: &str) {
    assert!(!log.contains("panicked"), "{what}: the server panicked:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// Databases.

/// The PostgreSQL admin URL, if configured (`ETALON_REQUIRE_POSTGRES=1` makes its absence an error).
fn postgres_admin() -> Option<String> {
    match std::env::var("ETALON_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            if std::env::var("ETALON_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("ETALON_REQUIRE_POSTGRES=1 but ETALON_POSTGRES_URL is not set (see .ci/postgres)");
            }
            eprintln!("PostgreSQL fault tests skipped: set ETALON_POSTGRES_URL (see .ci/postgres)");
            None
        }
    }
}

/// Run SQL through `psql` on `url`; returns its unaligned output.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A fresh PostgreSQL database, dropped on drop.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    fn new(admin: &str) -> PgDb {
        use std::hash::{BuildHasher, Hasher};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        let name = format!("etalon_f_{:016x}", h.finish());
        psql(admin, &format!("CREATE DATABASE {name}")).expect("create a PostgreSQL test database");
        PgDb {
            admin: admin.to_string(),
            url: with_database(admin, &name),
            name,
        }
    }

    /// Wait until no connection to the database is left (PostgreSQL notices a killed client only
    /// when it next reads from it: a transaction whose COMMIT was sent can still commit after the
    /// client died — an unacknowledged answer recorded a moment later, which the checks would see
    /// arrive between two reads).
    fn settle(&self) {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while psql(&self.admin, &sql).expect("pg_stat_activity").trim() != "0" {
            assert!(
                Instant::now() < deadline,
                "the killed server's connections linger"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Make new transactions read-only (or not), and cut every connection to the database, so that
    /// the server's pool reconnects under the new default.
    fn set_read_only(&self, on: bool) {
        let sql = if on {
            format!(
                "ALTER DATABASE {} SET default_transaction_read_only = on",
                self.name
            )
        } else {
            format!("ALTER DATABASE {} RESET default_transaction_read_only", self.name)
        };
        psql(&self.admin, &sql).expect("alter database");
        psql(
            &self.admin,
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{}'",
                self.name
            ),
        )
        .expect("terminate the server's connections");
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Err(e) = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("could not drop the PostgreSQL test database {}: {e}", self.name);
        }
    }
}

/// The URL with its database replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A temporary directory; the uid this process runs as.
fn temp_dir() -> (tempfile::TempDir, u32) {
    let dir = tempfile::Builder::new()
        .prefix("etalon-faults-")
        .tempdir()
        .expect("temporary directory");
    let uid = std::fs::metadata(dir.path()).expect("metadata").uid();
    (dir, uid)
}

// ---------------------------------------------------------------------------------------------
// Clients.

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
    /// 503s that [`Http::patient`] retried.
    retried: Arc<AtomicU64>,
}

struct Resp {
    status: u16,
    json: Value,
    text: String,
}

impl Http {
    fn new(base: &str) -> Http {
        etalon_server::install_crypto();
        Http {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            base: base.to_string(),
            retried: Arc::new(AtomicU64::new(0)),
        }
    }

    /// [`Http::send`], retrying a JSON 503 (storage unavailable: nothing done, try again) for up to
    /// two seconds.
    async fn patient(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        for _ in 0..100 {
            let r = self.send(method, path, bearer, body).await?;
            if r.status != 503 || !r.json["error"]["code"].is_string() {
                return Ok(r);
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            pause().await;
        }
        self.send(method, path, bearer, body).await
    }

    /// A request; `Err` when no HTTP answer came (connection refused or cut).
    async fn send(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(b) = bearer {
            r = r.header("authorization", format!("Bearer {b}"));
        }
        if let Some(body) = body {
            r = r
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).expect("json"));
        }
        let resp = r.send().await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("{e:?}"))?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp { status, json, text })
    }
}

/// splitmix64.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One answer sent.
#[derive(Clone, Debug)]
struct Ans {
    position: i64,
    item: String,
    choice: u64,
}

/// What a client knows of one of its sessions.
#[derive(Clone, Debug)]
struct Track {
    session: String,
    token: String,
    participant: String,
    /// Answers the server acknowledged (200), in order — plus, after a check, an unacknowledged one
    /// found recorded.
    acked: Vec<Ans>,
    /// An answer sent without an acknowledgement (yet).
    pending: Option<Ans>,
    finished: bool,
}

/// What the clients may be answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Only 2xx, until the connection fails (the server was killed).
    UntilKilled,
    /// 2xx or a JSON 503, which is retried; until told to stop.
    Retry503,
    /// Only 2xx: take every session given to its end.
    Finish,
}

#[derive(Default)]
struct Outcome {
    tracks: Vec<Track>,
    /// Anything the mode does not allow.
    problems: Vec<String>,
    /// Answers acknowledged.
    acked: usize,
    /// 503s received.
    unavailable: usize,
    /// Requests with no HTTP answer.
    cut: usize,
}

impl Outcome {
    /// Judge a non-success answer; `true` if it is to be retried.
    fn judge(&mut self, mode: Mode, what: &str, r: &Resp) -> bool {
        if r.status == 503 && mode == Mode::Retry503 {
            if r.json["error"]["code"].is_string() {
                self.unavailable += 1;
                return true;
            }
            self.problems
                .push(format!("{what}: 503 without a JSON error: {}", r.text));
            return false;
        }
        self.problems.push(format!("{what}: {} {}", r.status, r.text));
        false
    }

    fn cut(&mut self, mode: Mode, what: &str, e: String) {
        self.cut += 1;
        if mode != Mode::UntilKilled {
            self.problems
                .push(format!("{what}: no answer from the server: {e}"));
        }
    }

    fn merge(&mut self, o: Outcome) {
        self.tracks.extend(o.tracks);
        self.problems.extend(o.problems);
        self.acked += o.acked;
        self.unavailable += o.unavailable;
        self.cut += o.cut;
    }
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// One client: continue the sessions given (from where the server says they stand), then, with
/// `new`, start sessions of its own (participants `NEW-1`, `NEW-2`, …) and take them.
async fn client(
    http: Http,
    mode: Mode,
    queue: Vec<Track>,
    new: Option<String>,
    mut rng: u64,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut queue: VecDeque<Track> = queue.into();
    let mut current: Option<(Track, Value)> = None;
    let mut starting: Option<String> = None;
    let mut started = 0;
    loop {
        if mode != Mode::Finish && stop.load(Ordering::SeqCst) {
            break;
        }
        let Some((mut t, next)) = current.take() else {
            if let Some(t) = queue.pop_front() {
                assert!(
                    t.pending.is_none(),
                    "a session is continued before its last answer was checked"
                );
                match http
                    .send(
                        "GET",
                        &format!("/v1/sessions/{}", t.session),
                        Some(&t.token),
                        None,
                    )
                    .await
                {
                    Err(e) => {
                        out.cut(mode, "GET session", e);
                        out.tracks.push(t);
                        break;
                    }
                    Ok(r) if r.status == 200 => {
                        if r.json["answered"].as_u64() != Some(t.acked.len() as u64) {
                            out.problems.push(format!(
                                "session {}: answered {} but {} answers are known",
                                t.session,
                                r.json["answered"],
                                t.acked.len()
                            ));
                        }
                        current = Some((t, r.json["next"].clone()));
                    }
                    Ok(r) => {
                        if out.judge(mode, "GET session", &r) {
                            queue.push_front(t);
                            pause().await;
                        } else {
                            out.tracks.push(t);
                        }
                    }
                }
                continue;
            }
            let Some(prefix) = &new else { break };
            // After a 503 the same participant again: had the refused start been recorded, this
            // would be a 409.
            let participant = starting.take().unwrap_or_else(|| {
                started += 1;
                format!("{prefix}-{started}")
            });
            let body = json!({"campaign_code": CODE, "participant": participant});
            match http.send("POST", "/v1/sessions", None, Some(&body)).await {
                Err(e) => {
                    out.cut(mode, "start", e);
                    break;
                }
                Ok(r) if r.status == 201 => {
                    let t = Track {
                        session: r.json["session"].as_str().expect("session").to_string(),
                        token: r.json["token"].as_str().expect("token").to_string(),
                        participant,
                        acked: Vec::new(),
                        pending: None,
                        finished: false,
                    };
                    current = Some((t, r.json["next"].clone()));
                }
                Ok(r) => {
                    if out.judge(mode, "start", &r) {
                        starting = Some(participant);
                        pause().await;
                    }
                }
            }
            continue;
        };
        if next.is_null() {
            t.finished = true;
            out.tracks.push(t);
            continue;
        }
        let ans = match &t.pending {
            Some(p) => p.clone(),
            None => {
                let choices = next["choices"].as_array().map_or(0, Vec::len).max(1) as u64;
                let a = Ans {
                    position: next["position"].as_i64().expect("position"),
                    item: next["item"].as_str().expect("item").to_string(),
                    choice: splitmix(&mut rng) % choices,
                };
                t.pending = Some(a.clone());
                a
            }
        };
        let body = json!({"position": ans.position, "item": ans.item, "choice": ans.choice});
        match http
            .send(
                "POST",
                &format!("/v1/sessions/{}/answers", t.session),
                Some(&t.token),
                Some(&body),
            )
            .await
        {
            Err(e) => {
                out.cut(mode, "answer", e);
                out.tracks.push(t);
                break;
            }
            Ok(r) if r.status == 200 => {
                if r.json["answered"].as_i64() != Some(ans.position) {
                    out.problems.push(format!(
                        "answer {} of {}: answered is {}",
                        ans.position, t.session, r.json["answered"]
                    ));
                }
                t.pending = None;
                t.acked.push(ans);
                out.acked += 1;
                current = Some((t, r.json["next"].clone()));
            }
            Ok(r) => {
                if out.judge(mode, "answer", &r) {
                    pause().await;
                    current = Some((t, next));
                } else {
                    out.tracks.push(t);
                }
            }
        }
    }
    if let Some((t, _)) = current {
        out.tracks.push(t);
    }
    out.tracks.extend(queue);
    out
}

/// Clients running on a server.
struct Clients {
    stop: Arc<AtomicBool>,
    aside: Vec<Track>,
    handles: Vec<tokio::task::JoinHandle<Outcome>>,
}

/// Start [`CLIENTS`] clients: the unfinished sessions of `tracks` shared among them, and with `new`
/// (a participant prefix) new sessions too.
fn clients(http: &Http, mode: Mode, tracks: Vec<Track>, new: Option<&str>, seed: u64) -> Clients {
    let stop = Arc::new(AtomicBool::new(false));
    let (finished, open): (Vec<Track>, Vec<Track>) = tracks.into_iter().partition(|t| t.finished);
    let mut queues: Vec<Vec<Track>> = vec![Vec::new(); CLIENTS];
    for (i, t) in open.into_iter().enumerate() {
        queues[i % CLIENTS].push(t);
    }
    let handles = queues
        .into_iter()
        .enumerate()
        .map(|(i, q)| {
            let new = new.map(|p| format!("{p}-c{i}"));
            tokio::spawn(client(
                http.clone(),
                mode,
                q,
                new,
                seed ^ ((i as u64) << 32),
                stop.clone(),
            ))
        })
        .collect();
    Clients {
        stop,
        aside: finished,
        handles,
    }
}

impl Clients {
    /// Tell them to stop (where the mode listens) and gather what they did.
    async fn join(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        let mut out = Outcome {
            tracks: self.aside,
            ..Outcome::default()
        };
        for h in self.handles {
            let o = tokio::time::timeout(Duration::from_secs(60), h)
                .await
                .expect("a client hangs")
                .expect("a client panicked");
            out.merge(o);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The checks after a fault.

/// What [`check`] found.
#[derive(Debug, Default)]
struct Checked {
    sessions: usize,
    answers: usize,
    finished: usize,
    /// Answers sent without an acknowledgement that turned out recorded (whole).
    recorded_unacknowledged: usize,
    /// Answers sent without an acknowledgement that turned out absent.
    absent_unacknowledged: usize,
    /// 503s answered to the checks' requests (and retried).
    retried_503: u64,
}

/// Check the stored state against what the clients were told, through the API:
/// - the long responses CSV holds, for each session, exactly positions 1..answered (`answered` from
///   `GET /v1/sessions/{id}`): every acknowledged answer (its item at its position), and at most one
///   more — the one in flight when the fault came, whole (its item; resending it is a `200`, so the
///   same choice);
/// - resending a session's last acknowledged answers is a `200` (the same answer is stored);
/// - the campaign's results hold exactly the finished sessions;
/// - no answers to sessions no client started.
///
/// An unacknowledged answer found recorded becomes known (moved to `acked`).
async fn check(http: &Http, key: &str, tracks: &mut Vec<Track>) -> Checked {
    let retried_before = http.retried.load(Ordering::Relaxed);
    let campaign = http
        .patient("GET", &format!("/v1/campaigns/{CAMPAIGN}"), Some(key), None)
        .await
        .expect("campaign");
    assert_eq!(campaign.status, 200, "{}", campaign.text);
    let bank = campaign.json["bank"].as_str().expect("the campaign's bank");
    let csv = http
        .patient("GET", &format!("/v1/banks/{bank}/responses"), Some(key), None)
        .await
        .expect("responses");
    assert_eq!(csv.status, 200, "{}", csv.text);
    let mut lines = csv.text.lines();
    assert_eq!(lines.next(), Some("person,item,response"));
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 3, "CSV row {line:?}");
        rows.entry(cells[0].to_string())
            .or_default()
            .push(cells[1].to_string());
    }
    let results = http
        .patient(
            "GET",
            &format!("/v1/campaigns/{CAMPAIGN}/results"),
            Some(key),
            None,
        )
        .await
        .expect("results");
    assert_eq!(results.status, 200, "{}", results.text);
    let with_result: BTreeSet<String> = results
        .text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a results line is JSON");
            v["participant"].as_str().expect("participant").to_string()
        })
        .collect();

    let mut handles = Vec::new();
    let all = std::mem::take(tracks);
    let chunk = all.len().div_ceil(8).max(1);
    let mut all = all.into_iter().peekable();
    while all.peek().is_some() {
        let part: Vec<(Track, Vec<String>)> = all
            .by_ref()
            .take(chunk)
            .map(|t| {
                let r = rows.remove(&t.session).unwrap_or_default();
                (t, r)
            })
            .collect();
        let http = http.clone();
        handles.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for (t, r) in part {
                done.push(check_session(&http, t, r).await);
            }
            done
        }));
    }
    let mut problems = Vec::new();
    let mut checked = Checked::default();
    for h in handles {
        for (t, p, recorded) in h.await.expect("a check panicked") {
            problems.extend(p);
            match recorded {
                Some(true) => checked.recorded_unacknowledged += 1,
                Some(false) => checked.absent_unacknowledged += 1,
                None => {}
            }
            checked.sessions += 1;
            checked.answers += t.acked.len();
            if t.finished {
                checked.finished += 1;
                if !with_result.contains(&t.participant) {
                    problems.push(format!("session {} finished but has no result line", t.session));
                }
            } else if with_result.contains(&t.participant) {
                problems.push(format!(
                    "session {} is not finished but has a result line",
                    t.session
                ));
            }
            tracks.push(t);
        }
    }
    checked.retried_503 = http.retried.load(Ordering::Relaxed) - retried_before;
    for (person, r) in &rows {
        problems.push(format!(
            "{} answers stored for session {person}, which no client started",
            r.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems after the fault, e.g.:\n{}",
        problems.len(),
        problems.iter().take(12).cloned().collect::<Vec<_>>().join("\n")
    );
    checked
}

/// Check one session (see [`check`]); returns it updated, its problems and, if an answer was in
/// flight, whether it turned out recorded.
async fn check_session(http: &Http, mut t: Track, rows: Vec<String>) -> (Track, Vec<String>, Option<bool>) {
    let mut problems = Vec::new();
    let id = t.session.clone();
    let status = match http
        .patient("GET", &format!("/v1/sessions/{id}"), Some(&t.token), None)
        .await
    {
        Ok(r) if r.status == 200 => r,
        Ok(r) => {
            return (
                t,
                vec![format!("session {id}: GET is {} {}", r.status, r.text)],
                None,
            );
        }
        Err(e) => return (t, vec![format!("session {id}: GET failed: {e}")], None),
    };
    let answered = status.json["answered"].as_u64().expect("answered") as usize;
    let known = t.acked.len();
    if answered < known {
        problems.push(format!(
            "session {id}: {known} answers acknowledged but answered is {answered} (lost)"
        ));
    }
    if rows.len() != answered {
        problems.push(format!(
            "session {id}: answered is {answered} but the CSV has {} rows",
            rows.len()
        ));
    }
    for (k, a) in t.acked.iter().enumerate() {
        match rows.get(k) {
            Some(item) if *item == a.item => {}
            other => problems.push(format!(
                "session {id}: acknowledged answer {} to {} is stored as {other:?}",
                a.position, a.item
            )),
        }
    }
    let mut recorded = None;
    if let Some(p) = t.pending.take() {
        if answered == known + 1 {
            if rows.get(known) != Some(&p.item) {
                problems.push(format!(
                    "session {id}: the answer in flight ({} at {}) is stored as {:?}",
                    p.item,
                    p.position,
                    rows.get(known)
                ));
            }
            t.acked.push(p);
            recorded = Some(true);
        } else {
            recorded = Some(false);
        }
    }
    if answered > t.acked.len() {
        problems.push(format!(
            "session {id}: answered is {answered}, more than the {} answers sent",
            t.acked.len()
        ));
    }
    let finished = status.json["status"] == "finished";
    if finished != status.json["next"].is_null() {
        problems.push(format!(
            "session {id}: status {} with next {}",
            status.json["status"], status.json["next"]
        ));
    }
    t.finished = finished;
    // The same answers again: 200 (what is stored is what was sent, choice included).
    let from = t.acked.len().saturating_sub(3);
    for a in &t.acked[from..] {
        let body = json!({"position": a.position, "item": a.item, "choice": a.choice});
        match http
            .patient(
                "POST",
                &format!("/v1/sessions/{id}/answers"),
                Some(&t.token),
                Some(&body),
            )
            .await
        {
            Ok(r) if r.status == 200 && r.json["answered"].as_i64() == Some(a.position) => {}
            Ok(r) => problems.push(format!(
                "session {id}: resending answer {}: {} {}",
                a.position, r.status, r.text
            )),
            Err(e) => problems.push(format!("session {id}: resending answer {}: {e}", a.position)),
        }
    }
    (t, problems, recorded)
}

/// Take every session to its end (all 2xx), then check again: every session finished.
async fn finish_all(http: &Http, key: &str, tracks: Vec<Track>, seed: u64) -> Vec<Track> {
    let out = clients(http, Mode::Finish, tracks, None, seed).join().await;
    assert!(
        out.problems.is_empty(),
        "continuing the sessions:\n{}",
        out.problems
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut tracks = out.tracks;
    let checked = check(http, key, &mut tracks).await;
    assert_eq!(checked.finished, tracks.len(), "every session is finished");
    tracks
}

fn pending(tracks: &[Track]) -> usize {
    tracks.iter().filter(|t| t.pending.is_some()).count()
}

// ---------------------------------------------------------------------------------------------
// SIGKILL.

/// Three rounds: clients answer (continuing the earlier rounds' sessions first), the server is
/// killed with SIGKILL at a different moment each round, restarted on the same database, checked;
/// finally every session is taken to its end.
async fn killed_while_answering(db: &str, cwd: &Path, backend: &str, settle: impl Fn()) {
    let mut server = Server::start(db, &[], cwd).expect("the server starts");
    let key = server.key.clone().expect("a fresh database prints the demo key");
    let mut tracks: Vec<Track> = Vec::new();
    let mut logs = Vec::new();
    for round in 0..3u64 {
        let http = Http::new(&server.base);
        let running = clients(
            &http,
            Mode::UntilKilled,
            std::mem::take(&mut tracks),
            Some(&format!("k{round}")),
            7 + round,
        );
        tokio::time::sleep(Duration::from_millis(500 + 300 * round)).await;
        assert!(server.exited().is_none(), "{backend}: the server died on its own");
        logs.push(server.kill());
        settle();
        let out = running.join().await;
        assert!(
            out.problems.is_empty(),
            "{backend} round {round}: before the kill:\n{}",
            out.problems.join("\n")
        );
        assert!(
            out.acked > 0,
            "{backend} round {round}: nothing was answered before the kill"
        );
        tracks = out.tracks;
        let in_flight = pending(&tracks);
        server = Server::start(db, &[], cwd).unwrap_or_else(|r| {
            panic!(
                "{backend}: the server does not restart after SIGKILL ({}):\n{}",
                describe(r.status),
                r.stderr
            )
        });
        assert!(
            server.key.is_none(),
            "{backend}: a restart must not create the demo again"
        );
        let checked = check(&Http::new(&server.base), &key, &mut tracks).await;
        eprintln!(
            "{backend} round {round}: {} answers acknowledged before SIGKILL, {in_flight} in flight; after the \
             restart {checked:?}",
            out.acked
        );
    }
    let tracks = finish_all(&Http::new(&server.base), &key, tracks, 99).await;
    eprintln!("{backend}: all {} sessions continued to their end", tracks.len());
    logs.push(server.kill());
    for log in logs {
        assert_no_panic(backend, &log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_killed_while_answering_loses_nothing_acknowledged() {
    let (dir, _) = temp_dir();
    let db = format!("sqlite:{}", dir.path().join("etalon.db").display());
    killed_while_answering(&db, dir.path(), "sqlite", || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_killed_while_answering_loses_nothing_acknowledged() {
    let Some(admin) = postgres_admin() else { return };
    let db = PgDb::new(&admin);
    let (dir, _) = temp_dir();
    killed_while_answering(&db.url, dir.path(), "postgres", || db.settle()).await;
}

// ---------------------------------------------------------------------------------------------
// A database that cannot be written.

/// Clients answer for 0.4 s; `fault()` is applied; they go on for `during`; `repair()`; they go on
/// for `after`. Every answer must be a 2xx or a JSON 503 and the server must stay up without
/// panicking. Returns the sessions (checked), (answers acknowledged, 503s) during the fault, and the
/// answers acknowledged after the repair.
async fn answer_through_fault(
    server: &mut Server,
    seed: u64,
    fault: impl FnOnce(&Server),
    during: Duration,
    repair: impl FnOnce(&Server),
    after: Duration,
    what: &str,
) -> (Vec<Track>, (usize, usize), usize) {
    let http = Http::new(&server.base);
    let running = clients(&http, Mode::Retry503, Vec::new(), Some("f0"), seed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = running.join().await;
    assert!(
        before.problems.is_empty(),
        "{what}, before the fault:\n{}",
        before.problems.join("\n")
    );
    assert!(before.acked > 0, "{what}: nothing answered before the fault");
    let key = server.key.clone().expect("key");
    let mut tracks = before.tracks;
    check(&http, &key, &mut tracks).await;

    // Resume those sessions and start new ones while the fault is on.
    fault(&*server);
    let running = clients(&http, Mode::Retry503, tracks, Some("f1"), seed + 1);
    tokio::time::sleep(during).await;
    let faulted = running.join().await;
    if let Some(status) = server.exited() {
        panic!(
            "{what}: the server died ({}); stderr:\n{}",
            describe(status),
            lock(&server.log).clone()
        );
    }
    assert!(
        faulted.problems.is_empty(),
        "{what}: answers other than 2xx/503 while the fault is on ({} problems), e.g.:\n{}",
        faulted.problems.len(),
        faulted
            .problems
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_no_panic(what, &lock(&server.log).clone());

    repair(&*server);
    let mut tracks = faulted.tracks;
    // Whatever the fault left in flight is settled by the check (it is stored whole or not at all).
    let checked = check(&http, &key, &mut tracks).await;
    eprintln!("{what}: after the repair {checked:?}");
    let running = clients(&http, Mode::Retry503, tracks, Some("f2"), seed + 2);
    tokio::time::sleep(after).await;
    let repaired = running.join().await;
    assert!(
        repaired.problems.is_empty(),
        "{what}: after the repair:\n{}",
        repaired
            .problems
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        server.exited().is_none(),
        "{what}: the server died after the repair"
    );
    let mut tracks = repaired.tracks;
    check(&http, &key, &mut tracks).await;
    (tracks, (faulted.acked, faulted.unavailable), repaired.acked)
}

/// The SQLite files and their directory: read-only, or writable again.
fn set_writable(dir: &Path, writable: bool) {
    let (d, f) = if writable { (0o700, 0o600) } else { (0o500, 0o400) };
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f)).expect("chmod file");
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(d)).expect("chmod dir");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_directory_made_read_only_while_answering() {
    let (dir, uid) = temp_dir();
    // Root ignores permission bits: run the server as `nobody`, owning the directory.
    let prefix: Vec<String> = if uid == 0 {
        assert!(
            Command::new("setpriv")
                .arg("--help")
                .output()
                .is_ok_and(|o| o.status.success()),
            "this test runs the server as nobody with setpriv (util-linux)"
        );
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ]
        .map(String::from)
        .to_vec()
    } else {
        Vec::new()
    };
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let db = format!("sqlite:{}", dir.path().join("etalon.db").display());
    let mut server = Server::start(&db, &prefix, dir.path()).expect("the server starts");
    let key = server.key.clone().expect("key");
    let path = dir.path().to_path_buf();
    let (tracks, (acked_during, unavailable_during), acked_after) = answer_through_fault(
        &mut server,
        11,
        |_| set_writable(&path, false),
        Duration::from_millis(1200),
        |_| {},
        Duration::from_millis(300),
        "sqlite, read-only directory",
    )
    .await;
    eprintln!(
        "sqlite read-only directory: {acked_during} answers acknowledged and {unavailable_during} 503s while \
         read-only ({acked_after} after)"
    );
    // Still read-only: SIGKILL, then a restart is refused cleanly or serves with 503s.
    let mut logs = vec![server.kill()];
    match Server::start(&db, &prefix, dir.path()) {
        Err(refused) => {
            assert_no_panic("restart on a read-only database", &refused.stderr);
            assert!(
                refused.status.code().is_some_and(|c| c != 0),
                "a refused restart is a clean error exit, not {}; stderr:\n{}",
                describe(refused.status),
                refused.stderr
            );
            eprintln!(
                "restart on the read-only database refused: {}",
                refused.stderr.trim()
            );
        }
        Ok(mut s) => {
            let http = Http::new(&s.base);
            // What it reads is everything acknowledged (the same checks, read-only).
            check(&http, &key, &mut tracks.clone()).await;
            let mut ts = tracks.clone();
            let out = clients(&http, Mode::Retry503, std::mem::take(&mut ts), Some("ro"), 5);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let out = out.join().await;
            assert!(
                out.problems.is_empty(),
                "read-only restart:\n{}",
                out.problems.join("\n")
            );
            assert_eq!(out.acked, 0, "a read-only database acknowledged answers");
            assert!(s.exited().is_none());
            let log = s.kill();
            eprintln!(
                "restart on the read-only database: serves, {} 503s; {} problems; log:\n{}",
                out.unavailable,
                out.problems.len(),
                log.lines()
                    .filter(|l| !l.contains("INFO"))
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            logs.push(log);
        }
    }
    set_writable(dir.path(), true);
    let server = Server::start(&db, &prefix, dir.path()).unwrap_or_else(|r| {
        panic!(
            "no restart once writable again ({}):\n{}",
            describe(r.status),
            r.stderr
        )
    });
    let http = Http::new(&server.base);
    let mut tracks = tracks;
    check(&http, &key, &mut tracks).await;
    finish_all(&http, &key, tracks, 12).await;
    logs.push(server.kill());
    for log in logs {
        assert_no_panic("sqlite, read-only directory", &log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_failing_while_answering_are_503s() {
    // A file-size limit of 0 on the running server: every write(2) to a file fails with EFBIG (and
    // raises SIGXFSZ, which ends a process that neither ignores nor handles it).
    let (dir, _) = temp_dir();
    let db = format!("sqlite:{}", dir.path().join("etalon.db").display());
    let mut server = Server::start(&db, &[], dir.path()).expect("the server starts");
    let key = server.key.clone().expect("key");
    let prlimit = |s: &Server, limit: &str| {
        let out = Command::new("prlimit")
            .args(["--pid", &s.pid().to_string(), &format!("--fsize={limit}")])
            .output()
            .expect("prlimit (util-linux)");
        assert!(
            out.status.success(),
            "prlimit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (tracks, (acked_during, unavailable_during), acked_after) = answer_through_fault(
        &mut server,
        21,
        |s| prlimit(s, "0:unlimited"),
        Duration::from_millis(800),
        |s| prlimit(s, "unlimited:unlimited"),
        Duration::from_millis(600),
        "sqlite, writes failing",
    )
    .await;
    eprintln!(
        "sqlite writes failing: {acked_during} answers acknowledged and {unavailable_during} 503s while \
         writes fail; {acked_after} acknowledged after the repair"
    );
    assert!(unavailable_during > 0, "no 503 while no write can succeed");
    assert!(
        acked_after > 0,
        "answers are not acknowledged again once writes succeed"
    );
    let mut logs = vec![server.kill()];
    let server = Server::start(&db, &[], dir.path()).expect("restart");
    let http = Http::new(&server.base);
    let mut tracks = tracks;
    check(&http, &key, &mut tracks).await;
    finish_all(&http, &key, tracks, 22).await;
    logs.push(server.kill());
    for log in logs {
        assert_no_panic("sqlite, writes failing", &log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_made_read_only_while_answering() {
    let Some(admin) = postgres_admin() else { return };
    let pg = PgDb::new(&admin);
    let (dir, _) = temp_dir();
    let mut server = Server::start(&pg.url, &[], dir.path()).expect("the server starts");
    let key = server.key.clone().expect("key");
    let (tracks, (acked_during, unavailable_during), acked_after) = answer_through_fault(
        &mut server,
        31,
        |_| pg.set_read_only(true),
        Duration::from_millis(1000),
        |_| pg.set_read_only(false),
        Duration::from_millis(600),
        "postgres, read-only database",
    )
    .await;
    eprintln!(
        "postgres read-only: {acked_during} answers acknowledged and {unavailable_during} 503s while read-only; \
         {acked_after} acknowledged after"
    );
    assert!(unavailable_during > 0, "no 503 while the database is read-only");
    assert!(
        acked_after > 0,
        "answers are not acknowledged again once the database is writable"
    );
    let mut logs = vec![server.kill()];
    let server = Server::start(&pg.url, &[], dir.path()).expect("restart");
    let http = Http::new(&server.base);
    let mut tracks = tracks;
    check(&http, &key, &mut tracks).await;
    finish_all(&http, &key, tracks, 32).await;
    logs.push(server.kill());
    for log in logs {
        assert_no_panic("postgres, read-only database", &log);
    }
}

// ---------------------------------------------------------------------------------------------
// Scale past one machine: two server processes on one PostgreSQL, no sticky sessions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgres_serve_sessions_alternately() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let db = PgDb::new(&admin);
    let (dir, _) = temp_dir();
    let first = Server::start(&db.url, &[], dir.path()).expect("first server");
    let second = Server::start(&db.url, &[], dir.path()).expect("second server on the same database");
    let key = first
        .key
        .clone()
        .expect("the first server created the demo organisation");
    assert!(
        second.key.is_none(),
        "the second server must find the demo organisation"
    );
    let servers = [Http::new(&first.base), Http::new(&second.base)];
    let mut state = 11u64;
    for p in 0..4 {
        // Start on one process, answer on each in turn, read the status from the other.
        let started = servers[p % 2]
            .send(
                "POST",
                "/v1/sessions",
                None,
                Some(&json!({"campaign_code": "DEMO", "participant": format!("lb-{p}")})),
            )
            .await
            .expect("start");
        assert_eq!(started.status, 201, "{}", started.text);
        let session = started.json["session"].as_str().expect("session").to_string();
        let token = started.json["token"].as_str().expect("token").to_string();
        let mut next = started.json["next"].clone();
        let mut k = 0usize;
        while !next.is_null() {
            let (here, there) = (&servers[(p + k + 1) % 2], &servers[(p + k) % 2]);
            let status = there
                .send("GET", &format!("/v1/sessions/{session}"), Some(&token), None)
                .await
                .expect("status");
            assert_eq!(
                status.json["next"], next,
                "session {p}, answer {k}: the other process disagrees"
            );
            let choices = next["choices"].as_array().map_or(1, Vec::len) as u64;
            let body = json!({"position": next["position"], "item": next["item"], "choice": splitmix(&mut state) % choices});
            let r = here
                .send(
                    "POST",
                    &format!("/v1/sessions/{session}/answers"),
                    Some(&token),
                    Some(&body),
                )
                .await
                .expect("answer");
            assert_eq!(r.status, 200, "{}", r.text);
            // The same answer replayed on the other process is the same 200 and records nothing.
            let again = there
                .send(
                    "POST",
                    &format!("/v1/sessions/{session}/answers"),
                    Some(&token),
                    Some(&body),
                )
                .await
                .expect("replay");
            assert_eq!((again.status, &again.text), (200, &r.text));
            next = r.json["next"].clone();
            k += 1;
        }
        assert!(k >= 16, "{k} answers");
    }
    let results = servers[1]
        .send("GET", "/v1/campaigns/example-campaign/results", Some(&key), None)
        .await
        .expect("results");
    assert_eq!(results.text.lines().count(), 4);
    assert_no_panic("first server", &lock(&first.log));
    assert_no_panic("second server", &lock(&second.log));
}
