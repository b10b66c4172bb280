//! Test harness of the service: a real server on a loopback port over each database backend, and a
//! small JSON client.

#![allow(dead_code)]

#[path = "../../server/tests/common/db.rs"]
pub mod db;

use etalon_server::Service;
use serde_json::Value;
use std::sync::Arc;

/// A server running in this process on 127.0.0.1:PORT.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The service behind it (tests read storage through it).
    pub service: Arc<Service>,
    /// The demo organisation's key.
    pub demo_key: String,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The database (dropped last).
    pub db: db::TestDb,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Body limit of test servers: 1 MiB.
pub const TEST_MAX_BODY: usize = 1 << 20;

/// Start a server on `db` with the demo organisation.
pub async fn start(db: db::TestDb) -> Server {
    let store = etalon_server::storage::open(&db.url)
        .await
        .expect("open the test database");
    let service = Arc::new(Service::new(store));
    let demo_key = service
        .ensure_demo()
        .await
        .expect("demo")
        .expect("a fresh database gets the demo");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = etalon_server::serve::app(service.clone(), TEST_MAX_BODY);
    let task = tokio::spawn(async move {
        let _ = etalon_server::serve::serve_on(listener, app).await;
    });
    Server {
        base,
        backend: service.store.backend(),
        service,
        demo_key,
        db,
        task,
    }
}

/// A server on every backend available (SQLite always; PostgreSQL with `ETALON_POSTGRES_URL`).
pub async fn servers() -> Vec<Server> {
    let mut out = Vec::new();
    for db in db::backends() {
        out.push(start(db).await);
    }
    out
}

/// An HTTP answer: status, content type and body (JSON when it parses, else a string).
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Body as JSON (`Value::String` of the text when it is not JSON).
    pub json: Value,
    /// Body text.
    pub text: String,
}

impl Reply {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of `server`.
    pub fn new(base: &str) -> Self {
        Client {
            http: {
                etalon_server::install_crypto();
                reqwest::Client::builder().build().expect("client")
            },
            base: base.to_string(),
        }
    }

    /// Send a request with an optional bearer and a raw body with its content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = bearer {
            r = r.header("authorization", format!("Bearer {b}"));
        }
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        if let Some(body) = body {
            r = r.body(body);
        }
        let resp = r.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Reply {
            status,
            content_type,
            json,
            text,
        }
    }

    /// Answer in a session; the answer must be accepted (200).
    pub async fn answer(&self, session: &str, token: &str, body: &Value) -> Reply {
        let r = self
            .call(
                "POST",
                &format!("/v1/sessions/{session}/answers"),
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// Send JSON (or nothing).
    /// `GET /v1/sessions/{session}/result` with the session's token: the result as JSON.
    pub async fn result(&self, session: &str, token: &str) -> Value {
        self.call(
            "GET",
            &format!("/v1/sessions/{session}/result"),
            Some(token),
            None,
        )
        .await
        .json
    }

    pub async fn call(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<&Value>) -> Reply {
        self.raw(
            method,
            path,
            bearer,
            body.map(|_| "application/json"),
            body.map(|b| serde_json::to_vec(b).expect("json")),
        )
        .await
    }
}

/// splitmix64: the tests' own seeded stream of choices.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Take a whole session through the API, answering each question with a choice drawn from `seed`;
/// returns (session id, token, answers given).
pub async fn take(client: &Client, code: &str, participant: &str, seed: u64) -> (String, String, usize) {
    let started = client
        .call(
            "POST",
            "/v1/sessions",
            None,
            Some(&serde_json::json!({"campaign_code": code, "participant": participant})),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let session = started.json["session"].as_str().expect("session").to_string();
    let token = started.json["token"].as_str().expect("token").to_string();
    let mut next = started.json["next"].clone();
    let mut state = seed;
    let mut n = 0;
    while !next.is_null() {
        let choices = next["choices"].as_array().map_or(0, Vec::len) as u64;
        let body = serde_json::json!({"position": next["position"], "item": next["item"], "choice": splitmix(&mut state) % choices.max(1)});
        let r = client.answer(&session, &token, &body).await;
        n += 1;
        next = r.json["next"].clone();
    }
    (session, token, n)
}

/// A second server process's worth of state (its own storage pool and caches) on the same database;
/// returns its base URL and the task serving it.
pub async fn another_server(url: &str) -> (String, tokio::task::JoinHandle<()>) {
    let store = etalon_server::storage::open(url)
        .await
        .expect("open the shared database");
    let service = Arc::new(Service::new(store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = etalon_server::serve::app(service, TEST_MAX_BODY);
    let task = tokio::spawn(async move {
        let _ = etalon_server::serve::serve_on(listener, app).await;
    });
    (base, task)
}

/// The value of the first `<input name=NAME value=…>` of a page.
pub fn input(body: &str, name: &str) -> String {
    let at = body
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in {body}"));
    let rest = &body[at + name.len() + 15..];
    rest[..rest.find('"').expect("a closing quote")].to_string()
}

/// The organisation dashboard (`/org`) as the holder of `key` sees it after signing in.
pub async fn org_page(base: &str, key: &str) -> String {
    etalon_server::install_crypto();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed = http
        .post(format!("{base}/org/signin"))
        .form(&[("key", key)])
        .send()
        .await
        .expect("sign in");
    let cookie = signed
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("etalon_org="))
        .expect("a sign-in cookie");
    http.get(format!("{base}/org"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .expect("dashboard")
        .text()
        .await
        .expect("dashboard text")
}
