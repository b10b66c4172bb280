//! xAPI statements to a scripted Learning Record Store over real HTTP, on every database backend.
//!
//! The LRS (an axum server in this test) checks HTTP Basic and the xAPI version header, stores
//! statements by id as xAPI 1.0.3 says (an id it holds is not stored again), and can be told to fail
//! its next N requests. Sessions run through the API while it fails and recovers; in the end it must
//! hold every answer and every completion exactly once, in order per participant, and nothing of a
//! session started before the LRS was configured.

#[path = "common/service.rs"]
mod service;

use base64::Engine as _;
use etalon::assessment::xapi::{ANSWERED, COMPLETED, statement_id};
use serde_json::{Value, json};
use service::{Client, Server, servers};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the LRS saw.
#[derive(Default, Clone)]
struct Lrs {
    /// Statements stored, in the order they arrived.
    stored: Vec<Value>,
    /// Statements received again under an id already stored (the outbox should send none).
    resent: usize,
    /// Requests refused because of their credentials or headers.
    refused_auth: usize,
    /// Requests answered 503 on purpose.
    failed: usize,
    /// Statements sent one by one (`PUT`).
    puts: usize,
}

struct ScriptedLrs {
    endpoint: String,
    state: Arc<Mutex<Lrs>>,
    /// Fail this many of the next requests.
    fail_next: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

const USER: &str = "etalon-key";
const PASSWORD: &str = "etalon-secret";

async fn lrs() -> ScriptedLrs {
    let state = Arc::new(Mutex::new(Lrs::default()));
    let fail_next = Arc::new(AtomicUsize::new(0));
    let (st, fail) = (state.clone(), fail_next.clone());
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let app = axum::Router::new().route(
        "/xapi/statements",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (st, fail, basic) = (st.clone(), fail.clone(), basic.clone());
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
                let mut lrs = st.lock().unwrap();
                if fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    lrs.failed += 1;
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down".to_string());
                }
                if header("authorization") != basic || header("x-experience-api-version") != "1.0.3" {
                    lrs.refused_auth += 1;
                    return (axum::http::StatusCode::UNAUTHORIZED, "who are you".to_string());
                }
                let batch: Vec<Value> = serde_json::from_str(&body).unwrap();
                // An id held with another content: the whole batch is refused (xAPI 1.0.3, Communication
                // §2.1.2).
                if batch
                    .iter()
                    .any(|s| lrs.stored.iter().any(|t| t["id"] == s["id"] && t != s))
                {
                    return (axum::http::StatusCode::CONFLICT, "conflict".to_string());
                }
                let mut ids = Vec::new();
                for s in batch {
                    let id = s["id"].as_str().unwrap().to_string();
                    if lrs.stored.iter().any(|t| t["id"] == s["id"]) {
                        lrs.resent += 1;
                    } else {
                        lrs.stored.push(s);
                    }
                    ids.push(id);
                }
                (axum::http::StatusCode::OK, serde_json::to_string(&ids).unwrap())
            }
        })
        .put({
            let st = state.clone();
            move |query: axum::extract::RawQuery, body: String| {
                let st = st.clone();
                async move {
                    let statement: Value = serde_json::from_str(&body).unwrap();
                    let id = query.0.unwrap_or_default();
                    assert_eq!(id, format!("statementId={}", statement["id"].as_str().unwrap()));
                    let mut lrs = st.lock().unwrap();
                    lrs.puts += 1;
                    match lrs.stored.iter().find(|t| t["id"] == statement["id"]) {
                        Some(t) if *t != statement => axum::http::StatusCode::CONFLICT,
                        Some(_) => axum::http::StatusCode::NO_CONTENT,
                        None => {
                            lrs.stored.push(statement);
                            axum::http::StatusCode::NO_CONTENT
                        }
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/xapi/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    ScriptedLrs {
        endpoint,
        state,
        fail_next,
        _task: task,
    }
}

/// Start a session of the demo campaign for `participant`: (session, token, first question).
async fn start(api: &Client, participant: &str) -> (String, String, Value) {
    let r = api
        .call(
            "POST",
            "/v1/sessions",
            None,
            Some(&json!({"campaign_code": "DEMO", "participant": participant})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.json["session"].as_str().unwrap().to_string(),
        r.json["token"].as_str().unwrap().to_string(),
        r.json["next"].clone(),
    )
}

/// Answer up to `n` questions (choice by position parity); returns the next question (null: done).
async fn answer(api: &Client, session: &str, token: &str, mut next: Value, n: usize) -> Value {
    for _ in 0..n {
        if next.is_null() {
            break;
        }
        let choice = next["position"].as_i64().unwrap() % 2;
        let body = json!({"position": next["position"], "item": next["item"], "choice": choice});
        let r = api.answer(session, token, &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        next = r.json["next"].clone();
    }
    next
}

/// Run outbox passes until one sends nothing and fails nothing (waiting out retry delays).
async fn drain(s: &Server) {
    for _ in 0..200 {
        let (sent, failed) = s.service.send_due_statements().await.unwrap();
        if sent == 0 && failed == 0 && s.service.send_due_statements().await.unwrap() == (0, 0) {
            // Nothing due now; anything waiting for a retry?
            let org = s.service.org(Some(&s.demo_key)).await.unwrap();
            let status = s.service.lrs(&org).await.map(|v| v.statements.failing.len());
            if status.map_or(true, |f| f == 0) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("the outbox never drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_reach_a_failing_lrs_exactly_once_and_in_order() {
    for s in servers().await {
        eprintln!("xAPI on {}", s.backend);
        let api = Client::new(&s.base);
        let lrs = lrs().await;
        s.service.set_retry_delay(Duration::from_millis(20));
        // A session started before the LRS is configured is not sent.
        let (early, early_token, early_next) = start(&api, "before-lrs").await;
        answer(&api, &early, &early_token, early_next, 2).await;
        let put = api
            .call(
                "PUT",
                "/v1/xapi",
                Some(&s.demo_key),
                Some(&json!({"endpoint": lrs.endpoint.trim_end_matches('/'), "username": USER, "password": PASSWORD})),
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text);
        assert_eq!(put.json["endpoint"], json!(lrs.endpoint));
        assert_eq!(
            put.json["homepage"],
            json!(s.base),
            "the default home page is this server"
        );
        assert!(
            !put.text.contains(PASSWORD),
            "the password never comes back: {}",
            put.text
        );
        // Two participants, their answers interleaved with outbox passes while the LRS fails.
        let (a, a_token, a_next) = start(&api, "ana").await;
        let (b, b_token, b_next) = start(&api, "bob").await;
        lrs.fail_next.store(3, Ordering::SeqCst);
        let a_next = answer(&api, &a, &a_token, a_next, 2).await;
        assert_eq!(s.service.send_due_statements().await.unwrap(), (0, 1), "down");
        let b_next = answer(&api, &b, &b_token, b_next, 3).await;
        let org = s.service.org(Some(&s.demo_key)).await.unwrap();
        let view = s.service.lrs(&org).await.unwrap();
        assert_eq!(view.statements.failing.len(), 1);
        assert!(view.statements.failing[0].2.contains("503"), "{view:?}");
        drain(&s).await;
        assert_eq!(
            lrs.state.lock().unwrap().stored.len(),
            5,
            "2 of ana's answers and 3 of bob's"
        );
        // The LRS fails again while both finish.
        lrs.fail_next.store(4, Ordering::SeqCst);
        let a_next = answer(&api, &a, &a_token, a_next, 3).await;
        let _ = s.service.send_due_statements().await.unwrap();
        answer(&api, &b, &b_token, b_next, usize::MAX).await;
        let _ = s.service.send_due_statements().await.unwrap();
        assert!(answer(&api, &a, &a_token, a_next, usize::MAX).await.is_null());
        drain(&s).await;
        // Another server process on the same database finds nothing left to send.
        let other = etalon_server::Service::new(etalon_server::storage::open(&s.db.url).await.unwrap());
        assert_eq!(other.send_due_statements().await.unwrap(), (0, 0));

        let seen = lrs.state.lock().unwrap().clone();
        assert!(seen.failed >= 5, "the LRS did fail: {}", seen.failed);
        assert_eq!(seen.resent, 0, "nothing was sent twice");
        assert_eq!(
            seen.refused_auth, 0,
            "credentials and version header on every request"
        );
        for (session, token, who) in [(&a, &a_token, "ana"), (&b, &b_token, "bob")] {
            let mine: Vec<&Value> = seen
                .stored
                .iter()
                .filter(|st| st["actor"]["account"]["name"] == json!(who))
                .collect();
            let status = api
                .call("GET", &format!("/v1/sessions/{session}"), Some(token), None)
                .await;
            let answered = status.json["answered"].as_u64().unwrap() as usize;
            assert_eq!(mine.len(), answered + 1, "{who}: every answer and the completion");
            for (k, st) in mine[..answered].iter().enumerate() {
                assert_eq!(st["verb"]["id"], json!(ANSWERED));
                assert_eq!(
                    st["context"]["extensions"]["urn:etalon:xapi:position"],
                    json!(k + 1),
                    "{who}: in the order of the test"
                );
                assert_eq!(st["id"], json!(statement_id(session, &(k + 1).to_string())));
                assert_eq!(st["actor"]["account"]["homePage"], json!(s.base));
            }
            let done = mine[answered];
            assert_eq!(done["verb"]["id"], json!(COMPLETED), "{who}: completion last");
            assert_eq!(done["id"], json!(statement_id(session, "completed")));
            let result = api.result(session, token).await;
            let r = &done["result"];
            assert_eq!(r["completion"], json!(true));
            assert!((r["score"]["raw"].as_f64().unwrap() - result["score"].as_f64().unwrap()).abs() < 1e-4);
            let scaled = r["score"]["scaled"].as_f64().unwrap();
            let max = r["score"]["max"].as_f64().unwrap();
            assert!(
                (scaled - result["score"].as_f64().unwrap() / max).abs() < 1e-4,
                "{r}"
            );
            assert!(
                (r["extensions"]["urn:etalon:xapi:theta"].as_f64().unwrap()
                    - result["theta"].as_f64().unwrap())
                .abs()
                    < 1e-4
            );
            let competences = r["extensions"]["urn:etalon:xapi:competences"]
                .as_object()
                .unwrap();
            assert_eq!(
                competences.len(),
                result["competences"].as_object().unwrap().len()
            );
            for (c, v) in competences {
                assert_eq!(v["level"], result["competences"][c]["level"], "{who} {c}");
            }
            assert_eq!(
                done["object"]["id"],
                json!(format!("{}/xapi/campaigns/example-campaign", s.base))
            );
        }
        assert!(
            !seen
                .stored
                .iter()
                .any(|st| st["actor"]["account"]["name"] == json!("before-lrs")),
            "a session started before the LRS was configured is not sent"
        );
        let total = seen.stored.len();
        let view = s.service.lrs(&org).await.unwrap();
        assert_eq!(
            (view.statements.sessions_completed, view.statements.sessions_open),
            (2, 0)
        );
        assert!(view.statements.failing.is_empty());
        let page = service::org_page(&s.base, &s.demo_key).await;
        assert!(page.contains("2 sessions sent in full · 0 in progress"), "{page}");
        assert!(page.contains(&lrs.endpoint) && !page.contains(PASSWORD));

        // Removed, the LRS gets nothing; configured again, it gets what waited for it.
        let (e, e_token, e_next) = start(&api, "eve").await;
        assert_eq!(
            api.call("DELETE", "/v1/xapi", Some(&s.demo_key), None)
                .await
                .status,
            204
        );
        assert_eq!(
            api.call("GET", "/v1/xapi", Some(&s.demo_key), None).await.status,
            404
        );
        answer(&api, &e, &e_token, e_next, 2).await;
        let (c, c_token, c_next) = start(&api, "cleo").await;
        answer(&api, &c, &c_token, c_next, 2).await;
        assert_eq!(
            s.service.send_due_statements().await.unwrap(),
            (0, 0),
            "no LRS, nothing sent"
        );
        let put = api
            .call(
                "PUT",
                "/v1/xapi",
                Some(&s.demo_key),
                Some(&json!({"endpoint": lrs.endpoint, "username": USER, "password": PASSWORD, "homepage": "https://lms.example/"})),
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text);
        assert_eq!(put.json["homepage"], json!("https://lms.example"));
        drain(&s).await;
        let seen = lrs.state.lock().unwrap().clone();
        let names: Vec<&str> = seen.stored[total..]
            .iter()
            .map(|st| st["actor"]["account"]["name"].as_str().unwrap())
            .collect();
        // eve's two answers (her cursor was kept); cleo started with no LRS configured: no cursor.
        assert_eq!(names, ["eve", "eve"]);
        assert_eq!(
            seen.stored[total]["actor"]["account"]["homePage"],
            json!("https://lms.example")
        );
        // Erasing a participant erases their cursor with their answers.
        assert_eq!(
            api.call("DELETE", "/v1/participants/eve", Some(&s.demo_key), None)
                .await
                .status,
            204
        );
        assert!(!s.service.store.dump().await.unwrap().contains(&e));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_the_lrs_holds_otherwise_does_not_block_the_others() {
    for s in servers().await {
        let api = Client::new(&s.base);
        let lrs = lrs().await;
        let put = api
            .call(
                "PUT",
                "/v1/xapi",
                Some(&s.demo_key),
                Some(&json!({"endpoint": lrs.endpoint, "username": USER, "password": PASSWORD})),
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text);
        let (a, token, next) = start(&api, "ana").await;
        // The LRS already holds a different statement under the id of ana's first answer (say, sent
        // under another home page before a restore).
        let held = json!({"id": statement_id(&a, "1"), "verb": {"id": ANSWERED}, "note": "older"});
        lrs.state.lock().unwrap().stored.push(held.clone());
        answer(&api, &a, &token, next, 3).await;
        drain(&s).await;
        let seen = lrs.state.lock().unwrap().clone();
        assert_eq!(seen.stored.len(), 3, "the two others stored, the one held kept");
        assert_eq!(seen.stored[0], held);
        assert_eq!(seen.puts, 3, "one by one after the batch's 409");
        let org = s.service.org(Some(&s.demo_key)).await.unwrap();
        assert_eq!(s.service.lrs(&org).await.unwrap().statements.answers_sent, 3);
    }
}
