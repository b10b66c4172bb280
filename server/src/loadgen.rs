//! Load generator for `etalon serve` (the CLI's `etalon bench serve`).
//!
//! [`run`] drives N concurrent simulated participants against a running server (usually on loopback)
//! through the public participant flow of API v1 (see `docs/FORMATS.md`):
//!
//! 1. `POST /v1/sessions` with `{"campaign_code", "participant": "load-<run>-<k>-<n>"}` → `201
//!    {"session", "token", "next"}` (`<run>` is a tag drawn per run: a participant id has at most one
//!    session per campaign, so runs against the same database must not reuse ids);
//! 2. while `next` is not null, `POST /v1/sessions/{session}/answers` with the session token and a
//!    random answer (a uniformly drawn `choice`, or a `response` code drawn from `codes` for items
//!    without choices);
//! 3. when the test is finished, the participant starts a new session, until the run ends (at the
//!    deadline or when the answer budget is spent).
//!
//! The generator shares the machine with the server, so it is built to be cheap: one keep-alive
//! HTTP/1.1 connection per participant (hyper's low-level client connection over a
//! `tokio::net::TcpStream`, re-opened when the server closes it), no connection pool, no TLS, a few
//! allocations per request, latency samples in preallocated per-task buffers merged at the end.
//! The connections are opened before the clock starts (a burst of hundreds of connects can overflow
//! the server's accept queue, which would show up as one-second session starts).
//! Every request is bounded by [`LoadOptions::timeout`]; a timed-out, failed or non-2xx request is
//! an error (counted, with a few example messages kept), after which that participant pauses briefly
//! ([`ERROR_BACKOFF`]) and starts a new session.
//!
//! Percentiles are computed exactly from the sorted samples while a run has at most
//! [`MAX_SAMPLES`] answers; beyond that each task keeps a uniform reservoir sample (the mean and
//! maximum stay exact).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Most latency samples kept in memory per series (answers, session starts), over all participants.
pub const MAX_SAMPLES: usize = 4_000_000;

/// Pause of a participant after a failed request, before it starts a new session (keeps a failing
/// server, or a refused connection, from being hammered in a tight loop).
pub const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Most example error messages kept in a [`LoadReport`].
const MAX_ERROR_EXAMPLES: usize = 5;

/// Longest response body excerpt quoted in an error message.
const MAX_BODY_EXCERPT: usize = 300;

/// What to run: where, how many participants, for how long.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base URL of the server, `http://HOST:PORT` (optionally with a path prefix); `https` is not
    /// supported. A URL without a scheme is taken as `http://`.
    pub url: String,
    /// The campaign's join code (e.g. `DEMO`).
    pub code: String,
    /// Number of concurrent simulated participants (each with its own connection).
    pub participants: usize,
    /// How long to run.
    pub duration: Duration,
    /// Stop once this many answers have been sent in total (successful or not; failed ones are
    /// given back to the budget).
    pub max_answers: Option<u64>,
    /// Bound on each request (connecting included); a request that takes longer is an error.
    pub timeout: Duration,
    /// Seed of the participants' answer choices (participant `k` uses a stream derived from it).
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".to_string(),
            code: "DEMO".to_string(),
            participants: 16,
            duration: Duration::from_secs(10),
            max_answers: None,
            timeout: Duration::from_secs(5),
            seed: 1,
        }
    }
}

/// Latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of requests measured (all of them, even when percentiles come from a sample).
    pub count: u64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Slowest request.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Concurrent participants.
    pub participants: usize,
    /// Answers acknowledged by the server (`200`).
    pub answers: u64,
    /// Sessions started (`201`).
    pub sessions_started: u64,
    /// Sessions taken to the end (`next` null).
    pub sessions_finished: u64,
    /// Failed requests: timeouts, connection errors, non-2xx answers, unexpected bodies.
    pub errors: u64,
    /// Of which timeouts.
    pub timeouts: u64,
    /// Connections re-opened after the server (or a timeout) closed one.
    pub reconnects: u64,
    /// A few error messages, as examples.
    pub error_examples: Vec<String>,
    /// The participant ids of this run are `load-<run_tag>-<k>-<n>` (participant `k`'s `n`-th
    /// session, from 0), e.g. to erase them afterwards.
    pub run_tag: String,
    /// Wall-clock length of the run, in seconds.
    pub seconds: f64,
    /// `answers / seconds`.
    pub answers_per_second: f64,
    /// Latency of answer requests (`POST /v1/sessions/{id}/answers`), successful ones only.
    pub latency_ms: Percentiles,
    /// Latency of session starts (`POST /v1/sessions`), successful ones only.
    pub start_latency_ms: Percentiles,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options make no sense (no participants, zero timeout…).
    #[error("invalid load options: {0}")]
    InvalidOptions(String),
    /// The URL cannot be used.
    #[error("bad server URL `{url}`: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection to the server, or no answer from `GET /health`.
    #[error("server at `{url}` unreachable: {reason}")]
    Unreachable {
        /// The URL given.
        url: String,
        /// The connection or request error.
        reason: String,
    },
    /// `GET /health` did not answer 200.
    #[error("server at `{url}` is not healthy: HTTP {status}: {body}")]
    Unhealthy {
        /// The URL given.
        url: String,
        /// The status received.
        status: u16,
        /// The start of the body received.
        body: String,
    },
    /// The first session start was refused (e.g. an unknown campaign code) or not understood.
    #[error("the server refused to start a session with code `{code}`: {reason}")]
    Rejected {
        /// The campaign code given.
        code: String,
        /// Status and body received, or why the body was not understood.
        reason: String,
    },
    /// A participant task failed unexpectedly (a bug).
    #[error("load generator task failed: {0}")]
    Task(String),
}

/// Run the load: check the server (`GET /health`, then one session start with the code), then let
/// `participants` tasks answer until `duration` has passed or `max_answers` are sent.
pub async fn run(options: &LoadOptions) -> Result<LoadReport, LoadError> {
    if options.participants == 0 {
        return Err(LoadError::InvalidOptions(
            "at least one participant is needed".into(),
        ));
    }
    if options.timeout.is_zero() {
        return Err(LoadError::InvalidOptions(
            "the request timeout must be positive".into(),
        ));
    }
    let target = Arc::new(Target::resolve(&options.url).await?);

    // Preflight, with no time limit but the per-request timeout: health, then a first session
    // (handed to participant 0) so that a wrong code fails the run at once.
    let unreachable = |reason: String| LoadError::Unreachable {
        url: options.url.clone(),
        reason,
    };
    let mut first = Conn::new(target.clone());
    let health = tokio::time::timeout(
        options.timeout,
        first.exchange(Method::GET, "/health", None, None),
    )
    .await
    .map_err(|_| unreachable(format!("GET /health timed out after {:?}", options.timeout)))?
    .map_err(|e| unreachable(format!("GET /health: {e}")))?;
    if health.0 != StatusCode::OK {
        return Err(LoadError::Unhealthy {
            url: options.url.clone(),
            status: health.0.as_u16(),
            body: excerpt(&health.1),
        });
    }
    let rejected = |reason: String| LoadError::Rejected {
        code: options.code.clone(),
        reason,
    };
    let run_tag = new_run_tag();
    let body = start_body(&options.code, &participant_id(&run_tag, 0, 0));
    let started_at = Instant::now();
    let (status, bytes) = tokio::time::timeout(
        options.timeout,
        first.exchange(Method::POST, "/v1/sessions", None, Some(body)),
    )
    .await
    .map_err(|_| unreachable(format!("POST /v1/sessions timed out after {:?}", options.timeout)))?
    .map_err(|e| unreachable(format!("POST /v1/sessions: {e}")))?;
    let first_latency = started_at.elapsed();
    if !status.is_success() {
        return Err(rejected(format!("HTTP {}: {}", status.as_u16(), excerpt(&bytes))));
    }
    let first_session = parse_start(&bytes).map_err(rejected)?;

    // Open every participant's connection before the clock starts: hundreds of simultaneous
    // connects can overflow the server's accept queue, and the SYNs retried a second later would
    // show up as one-second session starts. A connection that fails here is opened on first use.
    let mut conns: Vec<Conn> = (1..options.participants)
        .map(|_| Conn::new(target.clone()))
        .collect();
    futures_util::future::join_all(conns.iter_mut().map(|conn| async {
        let _ = tokio::time::timeout(options.timeout, conn.connect()).await;
    }))
    .await;

    let start = Instant::now();
    let shared = Arc::new(Shared {
        deadline: start + options.duration,
        timeout: options.timeout,
        code: options.code.clone(),
        run_tag: run_tag.clone(),
        budget: options.max_answers.map(|max| (max, AtomicU64::new(0))),
        samples_per_task: (MAX_SAMPLES / options.participants).max(1),
    });
    let mut tasks = tokio::task::JoinSet::new();
    // Participant 0 goes on with the preflight's connection and session.
    let mut initial = Some((first_session, first_latency));
    for (k, conn) in std::iter::once(first).chain(conns).enumerate() {
        let initial = initial.take();
        tasks.spawn(participant(
            k,
            participant_seed(options.seed, k),
            shared.clone(),
            conn,
            initial,
        ));
    }
    let mut total = TaskStats::new(0, 0);
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.map_err(|e| LoadError::Task(e.to_string()))?;
        total.merge(stats);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(LoadReport {
        participants: options.participants,
        answers: total.answers,
        sessions_started: total.sessions_started,
        sessions_finished: total.sessions_finished,
        errors: total.errors,
        timeouts: total.timeouts,
        reconnects: total.reconnects,
        error_examples: total.error_examples,
        run_tag,
        seconds,
        answers_per_second: if seconds > 0.0 {
            total.answers as f64 / seconds
        } else {
            0.0
        },
        latency_ms: total.answer_latency.percentiles(),
        start_latency_ms: total.start_latency.percentiles(),
    })
}

// ---------------------------------------------------------------------------------------------
// Target and connection

/// Where the server is.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    /// `Host` header value.
    host: HeaderValue,
    /// Path prefix without trailing slash (usually empty).
    base: String,
}

impl Target {
    /// Parse the base URL and resolve its host (the first address that accepts a connection).
    async fn resolve(url: &str) -> Result<Self, LoadError> {
        let (host, port, authority, base) = parse_base_url(url)?;
        let bad = |reason: String| LoadError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| bad(e.to_string()))?
            .collect();
        let mut last = String::from("the host has no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(_) => {
                    return Ok(Self {
                        addr,
                        host: HeaderValue::from_str(&authority).map_err(|e| bad(e.to_string()))?,
                        base,
                    });
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(LoadError::Unreachable {
            url: url.to_string(),
            reason: last,
        })
    }
}

/// Split `http://host:port/prefix` into host (for resolution, no brackets), port, authority (for
/// `Host`) and path prefix (no trailing slash).
fn parse_base_url(url: &str) -> Result<(String, u16, String, String), LoadError> {
    let bad = |reason: &str| LoadError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let uri: Uri = full
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("https is not supported; use the server's plain http address")),
        _ => return Err(bad("the scheme must be http")),
    }
    if uri.query().is_some() {
        return Err(bad("a base URL has no query"));
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("user information is not supported"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = authority.port_u16().unwrap_or(80);
    let base = uri.path().trim_end_matches('/').to_string();
    Ok((host, port, authority.as_str().to_string(), base))
}

/// Why one exchange failed (timeouts are handled by the caller).
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("handshake: {0}")]
    Handshake(hyper::Error),
    #[error("request: {0}")]
    Build(hyper::http::Error),
    #[error("{0}")]
    Http(hyper::Error),
}

/// One participant's keep-alive connection.
struct Conn {
    target: Arc<Target>,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
    /// Connections opened after the first.
    reconnects: u64,
    opened: bool,
}

impl Conn {
    fn new(target: Arc<Target>) -> Self {
        Self {
            target,
            sender: None,
            reconnects: 0,
            opened: false,
        }
    }

    /// Open a connection (the previous one, if any, is dropped).
    async fn connect(&mut self) -> Result<(), ExchangeError> {
        self.sender = None;
        let stream = TcpStream::connect(self.target.addr)
            .await
            .map_err(ExchangeError::Connect)?;
        // Small request/response pairs: do not let Nagle delay them.
        stream.set_nodelay(true).map_err(ExchangeError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ExchangeError::Handshake)?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the sender is dropped; errors show up
            // on the requests.
            let _ = connection.await;
        });
        if self.opened {
            self.reconnects += 1;
        }
        self.opened = true;
        self.sender = Some(sender);
        Ok(())
    }

    /// Send one request on the connection (opening it if needed) and read the whole response.
    ///
    /// A request that fails on a reused connection before any response (the server closed an idle
    /// keep-alive connection) is sent once more on a new connection: answers are idempotent, and a
    /// session start that never reached the server created nothing.
    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), ExchangeError> {
        let mut retried = false;
        loop {
            let fresh = match &self.sender {
                Some(s) if !s.is_closed() => false,
                _ => {
                    self.connect().await?;
                    true
                }
            };
            let request = self.build(method.clone(), path, token, body.clone())?;
            let sender = self.sender.as_mut().expect("connected above");
            let result = match sender.ready().await {
                Ok(()) => sender.send_request(request).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(response) => {
                    let status = response.status();
                    let bytes = response.into_body().collect().await.map_err(|e| {
                        self.sender = None;
                        ExchangeError::Http(e)
                    })?;
                    return Ok((status, bytes.to_bytes()));
                }
                Err(e) => {
                    self.sender = None;
                    let stale = e.is_canceled() || e.is_closed() || e.is_incomplete_message();
                    if fresh || retried || !stale {
                        return Err(ExchangeError::Http(e));
                    }
                    retried = true;
                }
            }
        }
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<Request<Full<Bytes>>, ExchangeError> {
        let mut uri = String::with_capacity(self.target.base.len() + path.len());
        uri.push_str(&self.target.base);
        uri.push_str(path);
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, self.target.host.clone());
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(b) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Full::new(b)
            }
            None => Full::new(Bytes::new()),
        };
        builder.body(body).map_err(ExchangeError::Build)
    }
}

// ---------------------------------------------------------------------------------------------
// Participants

/// State shared by the participant tasks.
struct Shared {
    deadline: Instant,
    timeout: Duration,
    code: String,
    run_tag: String,
    /// `(max_answers, answers sent so far)`.
    budget: Option<(u64, AtomicU64)>,
    samples_per_task: usize,
}

impl Shared {
    /// Take one answer from the budget; false when it is spent.
    fn reserve(&self) -> bool {
        match &self.budget {
            None => true,
            Some((max, sent)) => sent.fetch_add(1, Ordering::Relaxed) < *max,
        }
    }

    /// Give back an answer that failed.
    fn release(&self) {
        if let Some((_, sent)) = &self.budget {
            sent.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn spent(&self) -> bool {
        self.budget
            .as_ref()
            .is_some_and(|(max, sent)| sent.load(Ordering::Relaxed) >= *max)
    }
}

/// A participant's counters and samples.
struct TaskStats {
    answers: u64,
    sessions_started: u64,
    sessions_finished: u64,
    errors: u64,
    timeouts: u64,
    reconnects: u64,
    error_examples: Vec<String>,
    answer_latency: Recorder,
    start_latency: Recorder,
}

impl TaskStats {
    fn new(capacity: usize, seed: u64) -> Self {
        Self {
            answers: 0,
            sessions_started: 0,
            sessions_finished: 0,
            errors: 0,
            timeouts: 0,
            reconnects: 0,
            error_examples: Vec::new(),
            answer_latency: Recorder::new(capacity, 1 << 16, seed),
            // A session start comes every few dozen answers.
            start_latency: Recorder::new(capacity, 1 << 12, seed ^ 0x5555_5555_5555_5555),
        }
    }

    fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.error_examples.len() < MAX_ERROR_EXAMPLES {
            self.error_examples.push(message());
        }
    }

    fn merge(&mut self, other: TaskStats) {
        self.answers += other.answers;
        self.sessions_started += other.sessions_started;
        self.sessions_finished += other.sessions_finished;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.reconnects += other.reconnects;
        for e in other.error_examples {
            if self.error_examples.len() < MAX_ERROR_EXAMPLES {
                self.error_examples.push(e);
            }
        }
        self.answer_latency.merge(other.answer_latency);
        self.start_latency.merge(other.start_latency);
    }
}

/// How one timed request ended.
enum Outcome {
    /// A complete response.
    Response(StatusCode, Bytes, Duration),
    /// The run's deadline fell during the request: not an error, the participant stops.
    Deadline,
    /// The request's own timeout passed.
    Timeout,
    /// The exchange failed.
    Failed(ExchangeError),
}

/// Send one request bounded by the timeout and the run's deadline.
async fn timed(conn: &mut Conn, shared: &Shared, path: &str, token: Option<&str>, body: Bytes) -> Outcome {
    let begin = Instant::now();
    let own_limit = begin + shared.timeout;
    let limit = own_limit.min(shared.deadline);
    let result = tokio::time::timeout_at(limit, conn.exchange(Method::POST, path, token, Some(body))).await;
    match result {
        Ok(Ok((status, bytes))) => Outcome::Response(status, bytes, begin.elapsed()),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => {
            // hyper closes a connection whose request was abandoned.
            conn.sender = None;
            if limit < own_limit {
                Outcome::Deadline
            } else {
                Outcome::Timeout
            }
        }
    }
}

/// One simulated participant: sessions one after the other until the deadline or the budget.
async fn participant(
    k: usize,
    seed: u64,
    shared: Arc<Shared>,
    mut conn: Conn,
    initial: Option<(Started, Duration)>,
) -> TaskStats {
    let mut rng = SplitMix64::new(seed);
    let mut stats = TaskStats::new(shared.samples_per_task, rng.next_u64());
    let mut n = 0_u64;
    let mut initial = initial;
    'sessions: loop {
        if Instant::now() >= shared.deadline || shared.spent() {
            break;
        }
        let started = match initial.take() {
            Some((started, latency)) => {
                stats.sessions_started += 1;
                stats.start_latency.record(latency);
                n = 1;
                started
            }
            None => {
                let id = participant_id(&shared.run_tag, k, n);
                n += 1;
                match timed(
                    &mut conn,
                    &shared,
                    "/v1/sessions",
                    None,
                    start_body(&shared.code, &id),
                )
                .await
                {
                    Outcome::Response(status, bytes, latency) if status.is_success() => {
                        match parse_start(&bytes) {
                            Ok(started) => {
                                stats.sessions_started += 1;
                                stats.start_latency.record(latency);
                                started
                            }
                            Err(e) => {
                                stats.error(|| format!("start `{id}`: {e}"));
                                backoff(&shared).await;
                                continue 'sessions;
                            }
                        }
                    }
                    Outcome::Response(status, bytes, _) => {
                        stats
                            .error(|| format!("start `{id}`: HTTP {}: {}", status.as_u16(), excerpt(&bytes)));
                        backoff(&shared).await;
                        continue 'sessions;
                    }
                    Outcome::Deadline => break 'sessions,
                    Outcome::Timeout => {
                        stats.timeouts += 1;
                        stats.error(|| format!("start `{id}`: timed out after {:?}", shared.timeout));
                        continue 'sessions;
                    }
                    Outcome::Failed(e) => {
                        stats.error(|| format!("start `{id}`: {e}"));
                        backoff(&shared).await;
                        continue 'sessions;
                    }
                }
            }
        };
        let path = answers_path(&started.session);
        let mut next = started.next;
        while let Some(item) = next.take() {
            let Some(body) = answer_body(&item, &mut rng) else {
                stats.error(|| {
                    format!(
                        "session {}: item `{}` has neither choices nor codes",
                        started.session, item.item
                    )
                });
                backoff(&shared).await;
                continue 'sessions;
            };
            if Instant::now() >= shared.deadline || !shared.reserve() {
                break 'sessions;
            }
            let outcome = timed(&mut conn, &shared, &path, Some(&started.token), body).await;
            let failure = match outcome {
                Outcome::Response(status, bytes, latency) if status.is_success() => {
                    stats.answers += 1;
                    stats.answer_latency.record(latency);
                    match parse_answer(&bytes, item.position) {
                        Ok(Some(following)) => {
                            next = Some(following);
                            continue;
                        }
                        Ok(None) => {
                            stats.sessions_finished += 1;
                            continue 'sessions;
                        }
                        Err(e) => {
                            // The answer was acknowledged: keep it in the budget.
                            stats.error(|| {
                                format!("answer {} of session {}: {e}", item.position, started.session)
                            });
                            backoff(&shared).await;
                            continue 'sessions;
                        }
                    }
                }
                Outcome::Response(status, bytes, _) => {
                    format!("HTTP {}: {}", status.as_u16(), excerpt(&bytes))
                }
                Outcome::Deadline => {
                    shared.release();
                    break 'sessions;
                }
                Outcome::Timeout => {
                    stats.timeouts += 1;
                    shared.release();
                    stats.error(|| {
                        format!(
                            "answer {} of session {}: timed out after {:?}",
                            item.position, started.session, shared.timeout
                        )
                    });
                    continue 'sessions;
                }
                Outcome::Failed(e) => e.to_string(),
            };
            shared.release();
            stats.error(|| {
                format!(
                    "answer {} of session {}: {failure}",
                    item.position, started.session
                )
            });
            backoff(&shared).await;
            continue 'sessions;
        }
        // Only reached when `next` was null from the start (every pass of the loop above leaves
        // through `continue` or `break`): an empty test, finished at once.
        stats.sessions_finished += 1;
    }
    stats.reconnects = conn.reconnects;
    stats
}

/// `/v1/sessions/{id}/answers`.
fn answers_path(session: &str) -> String {
    format!("/v1/sessions/{session}/answers")
}

/// Wait [`ERROR_BACKOFF`], or until the deadline.
async fn backoff(shared: &Shared) {
    let until = (Instant::now() + ERROR_BACKOFF).min(shared.deadline);
    tokio::time::sleep_until(until).await;
}

/// External participant id of participant `k`'s `n`-th session.
fn participant_id(run_tag: &str, k: usize, n: u64) -> String {
    format!("load-{run_tag}-{k}-{n}")
}

/// Eight hex digits telling this run's participants from earlier runs' (clock and process id,
/// mixed; uniqueness only, not secrecy).
fn new_run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut mix = SplitMix64::new(nanos ^ (u64::from(std::process::id()) << 32));
    format!("{:08x}", mix.next_u64() >> 32)
}

/// The RNG seed of participant `k`.
fn participant_seed(seed: u64, k: usize) -> u64 {
    let mut mix = SplitMix64::new(seed ^ (k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    mix.next_u64()
}

// ---------------------------------------------------------------------------------------------
// Bodies

#[derive(Serialize)]
struct StartBody<'a> {
    campaign_code: &'a str,
    participant: &'a str,
}

fn start_body(code: &str, participant: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&StartBody {
            campaign_code: code,
            participant,
        })
        .expect("strings serialise"),
    )
}

#[derive(Serialize)]
struct AnswerBody<'a> {
    position: u64,
    item: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    choice: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<i64>,
}

/// A random answer to `item`: a uniform choice, else a uniform response code; `None` when the item
/// offers neither.
fn answer_body(item: &Next, rng: &mut SplitMix64) -> Option<Bytes> {
    let (choice, response) = if item.choices > 0 {
        (Some(rng.below(item.choices as u64)), None)
    } else if !item.codes.is_empty() {
        (
            None,
            Some(item.codes[rng.below(item.codes.len() as u64) as usize]),
        )
    } else {
        return None;
    };
    let body = AnswerBody {
        position: item.position,
        item: &item.item,
        choice,
        response,
    };
    Some(Bytes::from(serde_json::to_vec(&body).expect("answers serialise")))
}

/// The question offered (`next`), reduced to what answering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Next {
    position: u64,
    item: String,
    /// Number of options (0: answer with a code).
    choices: usize,
    codes: Vec<i64>,
}

#[derive(Deserialize)]
struct NextWire {
    position: u64,
    item: String,
    #[serde(default)]
    choices: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    codes: Vec<i64>,
}

impl From<NextWire> for Next {
    fn from(w: NextWire) -> Self {
        Self {
            position: w.position,
            item: w.item,
            choices: w.choices.len(),
            codes: w.codes,
        }
    }
}

/// A session just started.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Started {
    session: String,
    token: String,
    next: Option<Next>,
}

#[derive(Deserialize)]
struct StartWire {
    session: String,
    token: String,
    next: Option<NextWire>,
}

/// Parse `201 {"session", "token", "next"}`.
fn parse_start(bytes: &[u8]) -> Result<Started, String> {
    let w: StartWire = serde_json::from_slice(bytes)
        .map_err(|e| format!("unexpected session start body ({e}): {}", excerpt(bytes)))?;
    Ok(Started {
        session: w.session,
        token: w.token,
        next: w.next.map(Next::from),
    })
}

#[derive(Deserialize)]
struct AnswerWire {
    next: Option<NextWire>,
    #[serde(default)]
    answered: Option<u64>,
    #[serde(default)]
    status: Option<String>,
}

/// Parse `200 {"next", "answered", "status"}` after answering at `position`, checking that it is
/// consistent: `answered` = `position`, the next position is `position + 1`, and `status` says
/// finished exactly when `next` is null.
fn parse_answer(bytes: &[u8], position: u64) -> Result<Option<Next>, String> {
    let w: AnswerWire = serde_json::from_slice(bytes)
        .map_err(|e| format!("unexpected answer body ({e}): {}", excerpt(bytes)))?;
    if let Some(answered) = w.answered
        && answered != position
    {
        return Err(format!("answered {answered} after answering position {position}"));
    }
    if let Some(next) = &w.next
        && next.position != position + 1
    {
        return Err(format!(
            "next position {} after answering position {position}",
            next.position
        ));
    }
    if let Some(status) = &w.status {
        let finished = status == "finished";
        if finished != w.next.is_none() {
            return Err(format!(
                "status `{status}` with next {}",
                if finished { "set" } else { "null" }
            ));
        }
    }
    Ok(w.next.map(Next::from))
}

/// The start of a body, as text, for messages.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(MAX_BODY_EXCERPT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness and latency

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast, seedable generator, used only to pick
/// simulated answers and reservoir slots. Not cryptographic.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-and-shift (bias below 2^-50 for small `n`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Latency samples in microseconds: all of them up to `capacity`, then a uniform reservoir
/// (algorithm R); count, sum and maximum are exact.
struct Recorder {
    samples: Vec<u32>,
    capacity: usize,
    count: u64,
    sum_us: u64,
    max_us: u32,
    rng: SplitMix64,
}

impl Recorder {
    /// Keep up to `capacity` samples, with room for `prealloc` of them from the start (the buffer
    /// grows, rarely, beyond that).
    fn new(capacity: usize, prealloc: usize, seed: u64) -> Self {
        Self {
            samples: Vec::with_capacity(capacity.min(prealloc)),
            capacity,
            count: 0,
            sum_us: 0,
            max_us: 0,
            rng: SplitMix64::new(seed),
        }
    }

    fn record(&mut self, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.count += 1;
        self.sum_us += u64::from(us);
        self.max_us = self.max_us.max(us);
        if self.samples.len() < self.capacity {
            self.samples.push(us);
        } else {
            let slot = self.rng.below(self.count);
            if let Some(s) = self.samples.get_mut(slot as usize) {
                *s = us;
            }
        }
    }

    fn merge(&mut self, other: Recorder) {
        self.count += other.count;
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
        if self.samples.is_empty() {
            self.samples = other.samples;
        } else {
            self.samples.extend_from_slice(&other.samples);
        }
    }

    fn percentiles(mut self) -> Percentiles {
        let mut p = percentiles(&mut self.samples);
        if self.count > 0 {
            p.count = self.count;
            p.max = f64::from(self.max_us) / 1000.0;
            p.mean = self.sum_us as f64 / self.count as f64 / 1000.0;
        }
        p
    }
}

/// Nearest-rank percentiles of latency samples in microseconds, in milliseconds (sorts `samples`).
fn percentiles(samples: &mut [u32]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let n = samples.len();
    let rank = |p: f64| {
        let r = (p / 100.0 * n as f64).ceil() as usize;
        f64::from(samples[r.clamp(1, n) - 1]) / 1000.0
    };
    let sum: u64 = samples.iter().map(|&s| u64::from(s)).sum();
    Percentiles {
        count: n as u64,
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
        max: f64::from(samples[n - 1]) / 1000.0,
        mean: sum as f64 / n as f64 / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(values: &[u32]) -> Vec<u32> {
        values.to_vec()
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut samples: Vec<u32> = (1..=100).rev().map(|v| v * 1000).collect();
        let p = percentiles(&mut samples);
        assert_eq!(p.count, 100);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert!((p.mean - 50.5).abs() < 1e-12);

        let p = percentiles(&mut us(&[2500]));
        assert_eq!(
            (p.count, p.p50, p.p95, p.p99, p.max, p.mean),
            (1, 2.5, 2.5, 2.5, 2.5, 2.5)
        );

        // 10 samples: p50 is the 5th, p95 and p99 the 10th.
        let p = percentiles(&mut us(&[10, 1, 9, 2, 8, 3, 7, 4, 6, 5]));
        assert_eq!((p.p50, p.p95, p.p99, p.max), (0.005, 0.010, 0.010, 0.010));

        assert_eq!(percentiles(&mut []), Percentiles::default());
    }

    #[test]
    fn recorder_keeps_exact_count_mean_max_beyond_capacity() {
        let mut r = Recorder::new(100, 10, 7);
        for i in 1..=10_000_u64 {
            r.record(Duration::from_micros(i));
        }
        assert_eq!(r.samples.len(), 100);
        let mut other = Recorder::new(100, 10, 8);
        other.record(Duration::from_millis(50));
        r.merge(other);
        let p = r.percentiles();
        assert_eq!(p.count, 10_001);
        assert_eq!(p.max, 50.0);
        let exact_mean = (10_000.0 * 10_001.0 / 2.0 + 50_000.0) / 10_001.0 / 1000.0;
        assert!((p.mean - exact_mean).abs() < 1e-9);
        // The reservoir is a uniform sample of 1..=10000 µs: its median is near 5 ms.
        assert!(p.p50 > 3.0 && p.p50 < 7.0, "{p:?}");
    }

    #[test]
    fn parses_next_with_choices_codes_or_null() {
        let body = br#"{"session": "s1", "token": "t1", "next": {"position": 1, "item": "q7",
            "competence": "c", "competence_name": "C", "prompt": "2+2?", "choices": ["3", "4", "5"]}}"#;
        let started = parse_start(body).unwrap();
        assert_eq!(started.session, "s1");
        assert_eq!(started.token, "t1");
        assert_eq!(
            started.next,
            Some(Next {
                position: 1,
                item: "q7".into(),
                choices: 3,
                codes: vec![]
            })
        );

        let body = br#"{"next": {"position": 2, "item": "likert", "prompt": null, "choices": [],
            "codes": [1, 2, 3, 4]}, "answered": 1, "status": "in_progress"}"#;
        assert_eq!(
            parse_answer(body, 1).unwrap(),
            Some(Next {
                position: 2,
                item: "likert".into(),
                choices: 0,
                codes: vec![1, 2, 3, 4]
            })
        );
        let body = br#"{"next": null, "answered": 5, "status": "finished"}"#;
        assert_eq!(parse_answer(body, 5).unwrap(), None);
        let body = br#"{"session": "s", "token": "t", "next": null}"#;
        assert_eq!(parse_start(body).unwrap().next, None);
    }

    #[test]
    fn rejects_inconsistent_or_malformed_answers() {
        let wrong_next = br#"{"next": {"position": 4, "item": "x", "choices": ["a"]}, "answered": 2}"#;
        assert!(
            parse_answer(wrong_next, 2)
                .unwrap_err()
                .contains("next position 4")
        );
        let wrong_count = br#"{"next": null, "answered": 3, "status": "finished"}"#;
        assert!(parse_answer(wrong_count, 2).unwrap_err().contains("answered 3"));
        let wrong_status = br#"{"next": null, "answered": 2, "status": "in_progress"}"#;
        assert!(parse_answer(wrong_status, 2).is_err());
        assert!(parse_answer(b"not json", 1).unwrap_err().contains("not json"));
        assert!(parse_start(br#"{"session": "s"}"#).is_err());
    }

    #[test]
    fn answers_are_uniform_and_follow_the_item() {
        let mut rng = SplitMix64::new(42);
        let item = Next {
            position: 3,
            item: "q\"1".into(),
            choices: 4,
            codes: vec![],
        };
        let mut counts = [0_u32; 4];
        for _ in 0..40_000 {
            let body: serde_json::Value =
                serde_json::from_slice(&answer_body(&item, &mut rng).unwrap()).unwrap();
            assert_eq!(body["position"], 3);
            assert_eq!(body["item"], "q\"1");
            assert!(body.get("response").is_none());
            counts[body["choice"].as_u64().unwrap() as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_400..10_600).contains(&c)), "{counts:?}");

        let coded = Next {
            position: 1,
            item: "l".into(),
            choices: 0,
            codes: vec![-1, 7],
        };
        let body: serde_json::Value =
            serde_json::from_slice(&answer_body(&coded, &mut rng).unwrap()).unwrap();
        assert!(body.get("choice").is_none());
        assert!([-1, 7].contains(&body["response"].as_i64().unwrap()));

        let neither = Next {
            position: 1,
            item: "x".into(),
            choices: 0,
            codes: vec![],
        };
        assert!(answer_body(&neither, &mut rng).is_none());

        // Same seed, same stream; different participants, different streams.
        let (a, b) = (participant_seed(1, 0), participant_seed(1, 1));
        assert_ne!(a, b);
        assert_eq!(
            SplitMix64::new(a).next_u64(),
            SplitMix64::new(participant_seed(1, 0)).next_u64()
        );
    }

    #[test]
    fn base_urls() {
        let ok = |u: &str| parse_base_url(u).unwrap();
        assert_eq!(
            ok("http://127.0.0.1:8080"),
            ("127.0.0.1".into(), 8080, "127.0.0.1:8080".into(), String::new())
        );
        assert_eq!(
            ok("127.0.0.1:9000/"),
            ("127.0.0.1".into(), 9000, "127.0.0.1:9000".into(), String::new())
        );
        assert_eq!(
            ok("http://localhost/etalon/"),
            ("localhost".into(), 80, "localhost".into(), "/etalon".into())
        );
        assert_eq!(ok("http://[::1]:8080").0, "::1");
        for bad in [
            "https://127.0.0.1:8080",
            "ftp://x",
            "http://x:1/?a=b",
            "http://u@x:1",
            "http://:80",
        ] {
            assert!(
                matches!(parse_base_url(bad), Err(LoadError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    /// A minimal in-process stand-in for `etalon serve`: a 3-question test (two multiple-choice
    /// items around one answered by code), checking tokens and positions.
    mod mock {
        use std::collections::HashMap;
        use std::sync::Mutex;

        use axum::Json;
        use axum::extract::{Path, State};
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{get, post};
        use serde_json::{Value, json};

        #[derive(Default)]
        pub struct Mock {
            pub sessions: Mutex<HashMap<String, (String, u64)>>,
            pub answers: Mutex<u64>,
            pub participants: Mutex<std::collections::HashSet<String>>,
        }

        fn view(position: u64) -> Value {
            match position {
                2 => json!({"position": 2, "item": "coded", "choices": [], "codes": [1, 2, 3]}),
                p => json!({"position": p, "item": format!("q{p}"), "choices": ["a", "b", "c"]}),
            }
        }

        async fn start(
            State(m): State<std::sync::Arc<Mock>>,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            if body["campaign_code"] != "GOOD" {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": {"code": "not_found", "message": "no"}})),
                );
            }
            let participant = body["participant"].as_str().unwrap().to_string();
            if !m.participants.lock().unwrap().insert(participant) {
                return (
                    StatusCode::CONFLICT,
                    Json(json!({"error": {"code": "participant_exists"}})),
                );
            }
            let mut sessions = m.sessions.lock().unwrap();
            let id = format!("s{}", sessions.len());
            let token = format!("t{}", sessions.len());
            sessions.insert(id.clone(), (token.clone(), 0));
            (
                StatusCode::CREATED,
                Json(json!({"session": id, "token": token, "next": view(1)})),
            )
        }

        async fn answer(
            State(m): State<std::sync::Arc<Mock>>,
            Path(id): Path<String>,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> impl axum::response::IntoResponse {
            let mut sessions = m.sessions.lock().unwrap();
            let Some((token, answered)) = sessions.get_mut(&id) else {
                return (StatusCode::NOT_FOUND, HeaderMap::new(), Json(json!({})));
            };
            if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(&format!("Bearer {token}"))
            {
                return (StatusCode::UNAUTHORIZED, HeaderMap::new(), Json(json!({})));
            }
            let position = body["position"].as_u64().unwrap();
            let valid = position == *answered + 1
                && body["item"] == view(position)["item"]
                && if position == 2 {
                    [1, 2, 3].contains(&body["response"].as_i64().unwrap_or(0))
                } else {
                    body["choice"].as_u64().is_some_and(|c| c < 3)
                };
            if !valid {
                return (
                    StatusCode::CONFLICT,
                    HeaderMap::new(),
                    Json(json!({"error": {"code": "conflict", "message": "bad"}})),
                );
            }
            *answered = position;
            let mut count = m.answers.lock().unwrap();
            *count += 1;
            // Every 10th answer closes its connection: the client must reconnect.
            let mut close = HeaderMap::new();
            if *count % 10 == 0 {
                close.insert("connection", "close".parse().unwrap());
            }
            let next = if position < 3 {
                view(position + 1)
            } else {
                Value::Null
            };
            let status = if position < 3 { "in_progress" } else { "finished" };
            (
                StatusCode::OK,
                close,
                Json(json!({"next": next, "answered": position, "status": status})),
            )
        }

        /// Serve on an ephemeral loopback port; returns the base URL.
        pub async fn serve(state: std::sync::Arc<Mock>) -> String {
            let app = axum::Router::new()
                .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
                .route("/v1/sessions", post(start))
                .route("/v1/sessions/{id}/answers", post(answer))
                .with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{addr}")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_against_a_mock_server() {
        let state = std::sync::Arc::new(mock::Mock::default());
        let url = mock::serve(state.clone()).await;
        let options = LoadOptions {
            url: url.clone(),
            code: "GOOD".into(),
            participants: 4,
            duration: Duration::from_secs(30),
            max_answers: Some(300),
            timeout: Duration::from_secs(5),
            seed: 3,
        };
        let report = run(&options).await.unwrap();
        assert_eq!(report.errors, 0, "{:?}", report.error_examples);
        assert_eq!(report.answers, 300);
        assert_eq!(*state.answers.lock().unwrap(), 300);
        assert_eq!(report.latency_ms.count, 300);
        assert!(
            report.sessions_finished >= 96 && report.sessions_finished <= 100,
            "{report:?}"
        );
        assert_eq!(
            report.sessions_started as usize,
            state.sessions.lock().unwrap().len()
        );
        assert!(report.reconnects >= 25, "{report:?}");
        assert!(
            report.latency_ms.p50 <= report.latency_ms.p99 && report.latency_ms.p99 <= report.latency_ms.max
        );
        assert!(report.seconds < 30.0);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["latency_ms"]["p95"].is_number());

        // A deadline-bounded run stops on time.
        let options = LoadOptions {
            max_answers: None,
            duration: Duration::from_millis(300),
            ..options
        };
        let report = run(&options).await.unwrap();
        assert!(
            report.seconds < 1.0 && report.answers > 0 && report.errors == 0,
            "{report:?}"
        );

        let wrong = LoadOptions {
            code: "BAD".into(),
            ..options.clone()
        };
        assert!(matches!(run(&wrong).await, Err(LoadError::Rejected { .. })));
        let closed = LoadOptions {
            url: "http://127.0.0.1:1".into(),
            ..options
        };
        assert!(matches!(run(&closed).await, Err(LoadError::Unreachable { .. })));
    }
}
