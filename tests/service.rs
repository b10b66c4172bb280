//! The service over real HTTP, on SQLite and PostgreSQL: a campaign taken through the API reports as
//! the CLI does on the same answers; a session with a fixed seed and pre-drawn answers makes exactly
//! the choices `etalon simulate` makes; answers are idempotent and serialised; organisations never see
//! each other; the long responses CSV and erasure; the OpenAPI document matches the server.

mod common;
#[path = "common/service.rs"]
mod service;

use serde_json::{Value, json};
use service::{Client, servers, take};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_taken_through_the_api_reports_as_the_cli() {
    for server in servers().await {
        let client = Client::new(&server.base);
        let key = server.demo_key.clone();
        let mut total = 0;
        for p in 0..12 {
            let (_, _, n) = take(&client, "DEMO", &format!("employee-{p}"), 1000 + p).await;
            assert!((16..=32).contains(&n), "{} answers", n);
            total += n;
        }
        let campaign = client
            .call("GET", "/v1/campaigns/example-campaign", Some(&key), None)
            .await;
        assert_eq!(campaign.status, 200, "{}", campaign.text);
        assert_eq!(
            campaign.json["participation"],
            json!({"started": 12, "finished": 12})
        );
        let results = client
            .call("GET", "/v1/campaigns/example-campaign/results", Some(&key), None)
            .await;
        assert_eq!(results.status, 200);
        assert_eq!(results.content_type, "application/x-ndjson");
        assert_eq!(results.text.lines().count(), 12);
        let report = client
            .call("GET", "/v1/campaigns/example-campaign/report", Some(&key), None)
            .await;
        assert_eq!(report.status, 200, "{}", report.text);
        assert_eq!(report.json["participants"], 12);

        // The CLI on the same answers: the stored campaign, its bank version and the results log.
        let dir = tempfile::tempdir().unwrap();
        let mut spec = campaign.json["campaign"].clone();
        spec["bank"] = json!("bank.json");
        std::fs::write(dir.path().join("campaign.json"), spec.to_string()).unwrap();
        let bank = client
            .call(
                "GET",
                &format!("/v1/banks/{}", campaign.json["bank"].as_str().unwrap()),
                Some(&key),
                None,
            )
            .await;
        std::fs::write(dir.path().join("bank.json"), &bank.text).unwrap();
        std::fs::write(dir.path().join("results.jsonl"), &results.text).unwrap();
        let out = common::etalon(&[
            "campaign",
            "report",
            dir.path().join("results.jsonl").to_str().unwrap(),
            "--campaign",
            dir.path().join("campaign.json").to_str().unwrap(),
            "--out",
            dir.path().join("report.json").to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut cli: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
        // The CLI adds what it skipped of the log file; the rest is the same library report.
        assert_eq!(
            cli.as_object_mut().unwrap().remove("skipped_lines"),
            Some(json!(0))
        );
        assert_eq!(
            cli, report.json,
            "{}: the API's report differs from the CLI's",
            server.backend
        );
        let svg = client
            .call(
                "GET",
                "/v1/campaigns/example-campaign/report?format=svg",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(svg.content_type, "image/svg+xml");
        roxmltree::Document::parse(&svg.text).expect("the chart is well-formed SVG");
        let csv = client
            .call(
                "GET",
                "/v1/campaigns/example-campaign/results?format=csv",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            csv.text.lines().next(),
            Some("participant,competence,theta,se,level,label,items,score")
        );
        assert_eq!(csv.text.lines().count(), 1 + 12 * 16);

        // Every answer is in the long responses CSV, one row each.
        let responses = client
            .call(
                "GET",
                &format!("/v1/banks/{}/responses", campaign.json["bank"].as_str().unwrap()),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(responses.status, 200);
        assert_eq!(responses.text.lines().next(), Some("person,item,response"));
        assert_eq!(responses.text.lines().count(), 1 + total, "{}", server.backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_session_makes_the_choices_simulate_makes() {
    use etalon_engine::SessionConfig;
    let bank = etalon::items::example::example_bank();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bank.json"), bank.to_json()).unwrap();
    let mut config = SessionConfig::default();
    config.stopping.max_items = 12;
    config.stopping.se_target = Some(0.4);
    std::fs::write(
        dir.path().join("session.json"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    // Pre-drawn answers for 3 examinees: a fixed 0/1 pattern per item.
    let ids: Vec<&str> = bank.items().iter().map(|i| i.id.as_str()).collect();
    let mut predrawn = ids.join(",") + "\n";
    let mut state = 42u64;
    let mut rows = Vec::new();
    for _ in 0..3 {
        let row: Vec<i64> = ids
            .iter()
            .map(|_| (service::splitmix(&mut state) % 2) as i64)
            .collect();
        predrawn.push_str(&row.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        predrawn.push('\n');
        rows.push(row);
    }
    std::fs::write(dir.path().join("pre.csv"), predrawn).unwrap();
    std::fs::write(dir.path().join("thetas.csv"), "theta\n0\n1\n-1\n").unwrap();
    let out = common::etalon(&[
        "simulate",
        "--bank",
        dir.path().join("bank.json").to_str().unwrap(),
        "--thetas",
        dir.path().join("thetas.csv").to_str().unwrap(),
        "--responses",
        dir.path().join("pre.csv").to_str().unwrap(),
        "--config",
        dir.path().join("session.json").to_str().unwrap(),
        "--seed",
        "7",
        "--out",
        dir.path().join("res.csv").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let simulated: Vec<Vec<String>> = std::fs::read_to_string(dir.path().join("res.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            l.rsplit(',')
                .next()
                .unwrap()
                .split(';')
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert_eq!(simulated.len(), 3);

    for server in servers().await {
        let client = Client::new(&server.base);
        let key = server.demo_key.clone();
        for (i, row) in rows.iter().enumerate() {
            let seed = etalon_engine::simulate::derive_seed(7, i as u64);
            let started = client
                .call(
                    "POST",
                    "/v1/sessions",
                    Some(&key),
                    Some(&json!({"bank": bank.id(), "config": {"adaptive": config}, "seed": seed})),
                )
                .await;
            assert_eq!(started.status, 201, "{}", started.text);
            let (session, token) = (
                started.json["session"].as_str().unwrap(),
                started.json["token"].as_str().unwrap(),
            );
            let mut next = started.json["next"].clone();
            let mut items = Vec::new();
            while !next.is_null() {
                let item = next["item"].as_str().unwrap().to_string();
                let j = ids.iter().position(|x| *x == item).unwrap();
                let r = client
                    .call(
                        "POST",
                        &format!("/v1/sessions/{session}/answers"),
                        Some(token),
                        Some(&json!({"position": next["position"], "item": item, "response": row[j]})),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                items.push(item);
                next = r.json["next"].clone();
            }
            assert_eq!(items, simulated[i], "{} examinee {i}", server.backend);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_serve_a_session_alternately() {
    for server in servers().await {
        let (other, task) = service::another_server(&server.db.url).await;
        let clients = [Client::new(&server.base), Client::new(&other)];
        let key = server.demo_key.clone();
        // The same seeded session twice: once on one server, once alternating answer by answer.
        let mut sequences = Vec::new();
        for alternate in [false, true] {
            let start = json!({"bank": "etalon-example", "seed": 99});
            let s = clients[0]
                .call("POST", "/v1/sessions", Some(&key), Some(&start))
                .await;
            assert_eq!(s.status, 201, "{}", s.text);
            let (session, token) = (
                s.json["session"].as_str().unwrap().to_string(),
                s.json["token"].as_str().unwrap().to_string(),
            );
            let mut next = s.json["next"].clone();
            let mut items = Vec::new();
            let mut k = 0usize;
            while !next.is_null() {
                let client = &clients[if alternate { (k + 1) % 2 } else { 0 }];
                // Each server first reads where the session stands (the other may have moved it on).
                let status = client
                    .call("GET", &format!("/v1/sessions/{session}"), Some(&token), None)
                    .await;
                assert_eq!(status.json["next"], next, "{} answer {k}", server.backend);
                let body = json!({"position": next["position"], "item": next["item"], "choice": (k % 3)});
                let r = client.answer(&session, &token, &body).await;
                items.push(next["item"].as_str().unwrap().to_string());
                next = r.json["next"].clone();
                k += 1;
            }
            let result = clients[1]
                .call(
                    "GET",
                    &format!("/v1/sessions/{session}/result"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(result.json["status"], "finished");
            sequences.push((items, result.json["theta"].clone()));
        }
        assert_eq!(sequences[0], sequences[1], "{}", server.backend);
        task.abort();
    }
}

/// Start a session on the demo campaign; (session, token, first item).
async fn started(client: &Client, participant: Option<&str>) -> (String, String, Value) {
    let mut body = json!({"campaign_code": "DEMO"});
    if let Some(p) = participant {
        body["participant"] = json!(p);
    }
    let r = client.call("POST", "/v1/sessions", None, Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.json["session"].as_str().unwrap().to_string(),
        r.json["token"].as_str().unwrap().to_string(),
        r.json["next"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_idempotent_and_concurrent_ones_serialised() {
    for server in servers().await {
        let client = Client::new(&server.base);
        let (session, token, next) = started(&client, None).await;
        let path = format!("/v1/sessions/{session}/answers");
        // 16 concurrent different answers to position 1: exactly one is recorded.
        let mut tasks = Vec::new();
        for k in 0..16u64 {
            let (client, path, token) = (client.clone(), path.clone(), token.clone());
            let body = json!({"position": 1, "item": next["item"], "choice": k % 4, "response": null});
            let body = if k < 4 {
                body
            } else {
                json!({"position": 1, "item": next["item"], "choice": k % 4})
            };
            tasks.push(tokio::spawn(async move {
                client.call("POST", &path, Some(&token), Some(&body)).await
            }));
        }
        let mut replies = Vec::new();
        for t in tasks {
            replies.push(t.await.unwrap());
        }
        let ok: Vec<&service::Reply> = replies.iter().filter(|r| r.status == 200).collect();
        assert!(!ok.is_empty());
        for r in &replies {
            assert!(
                r.status == 200 || (r.status == 409 && r.code() == "answer_conflict"),
                "{}: {}",
                r.status,
                r.text
            );
        }
        // Every 200 is the same answer (choice k ≡ the recorded one mod 4), and the log has one row.
        let firsts: BTreeSet<String> = ok.iter().map(|r| r.text.clone()).collect();
        assert_eq!(firsts.len(), 1, "{firsts:?}");
        let status = client
            .call("GET", &format!("/v1/sessions/{session}"), Some(&token), None)
            .await;
        assert_eq!(status.json["answered"], 1);
        assert_eq!(server.service.store.answers(&session).await.unwrap().len(), 1);
        // Replaying the recorded answer returns the same 200; a different one is 409.
        let recorded = server.service.store.answers(&session).await.unwrap()[0].clone();
        let same = json!({"position": 1, "item": next["item"], "choice": recorded.choice});
        let again = client.call("POST", &path, Some(&token), Some(&same)).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.text, ok[0].text);
        let other =
            json!({"position": 1, "item": next["item"], "choice": (recorded.choice.unwrap() + 1) % 4});
        assert_eq!(
            client
                .call("POST", &path, Some(&token), Some(&other))
                .await
                .status,
            409
        );
        // The next position with the same choice many times at once: one row more.
        let second = again.json["next"].clone();
        let body = json!({"position": 2, "item": second["item"], "choice": 0});
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (client, path, token, body) = (client.clone(), path.clone(), token.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                client.call("POST", &path, Some(&token), Some(&body)).await
            }));
        }
        let mut texts = BTreeSet::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, 200, "{}", r.text);
            texts.insert(r.text);
        }
        assert_eq!(texts.len(), 1);
        assert_eq!(
            server.service.store.answers(&session).await.unwrap().len(),
            2,
            "{}",
            server.backend
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_never_see_each_other() {
    for server in servers().await {
        let client = Client::new(&server.base);
        let a = server.demo_key.clone();
        let (_, b) = server.service.create_org("other").await.unwrap();
        // A's session, taken by a participant with an external id.
        let (session, token, _) = started(&client, Some("alice")).await;
        let (session2, token2, _) = started(&client, Some("bob")).await;
        let before = server.service.store.dump().await.unwrap();
        for (method, path) in [
            ("GET", "/v1/banks/etalon-example".to_string()),
            ("GET", "/v1/banks/etalon-example?version=1".to_string()),
            ("GET", "/v1/banks/etalon-example/responses".to_string()),
            ("GET", "/v1/campaigns/example-campaign".to_string()),
            ("GET", "/v1/campaigns/example-campaign/report".to_string()),
            (
                "GET",
                "/v1/campaigns/example-campaign/report?format=svg".to_string(),
            ),
            ("GET", "/v1/campaigns/example-campaign/results".to_string()),
            (
                "GET",
                "/v1/campaigns/example-campaign/results?format=csv".to_string(),
            ),
            ("GET", format!("/v1/sessions/{session}")),
            ("GET", format!("/v1/sessions/{session}/result")),
            ("DELETE", "/v1/participants/alice".to_string()),
        ] {
            let r = client.call(method, &path, Some(&b), None).await;
            assert_eq!(
                r.status, 404,
                "{method} {path} with another organisation's key: {}",
                r.text
            );
            assert_eq!(r.code(), "not_found");
        }
        let patch = client
            .call(
                "PATCH",
                "/v1/campaigns/example-campaign",
                Some(&b),
                Some(&json!({"open": false})),
            )
            .await;
        assert_eq!(patch.status, 404);
        let start = client
            .call(
                "POST",
                "/v1/sessions",
                Some(&b),
                Some(&json!({"bank": "etalon-example"})),
            )
            .await;
        assert_eq!(start.status, 404);
        let campaign = client
            .call("POST", "/v1/campaigns", Some(&b), Some(&json!({"name": "x", "bank": "etalon-example", "targets": [{"competence": "1.1", "target_level": 2}]})))
            .await;
        assert_eq!(campaign.status, 422, "{}", campaign.text);
        assert_eq!(
            client.call("GET", "/v1/campaigns", Some(&b), None).await.json,
            json!([])
        );
        assert_eq!(
            client.call("GET", "/v1/banks", Some(&b), None).await.json,
            json!([])
        );
        // One session's token does not open another; no token opens nothing.
        let r = client
            .call("GET", &format!("/v1/sessions/{session2}"), Some(&token), None)
            .await;
        assert_eq!(r.status, 401);
        let r = client
            .call("GET", &format!("/v1/sessions/{session}/result"), None, None)
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(
            server.service.store.dump().await.unwrap(),
            before,
            "{}",
            server.backend
        );
        // A's key does open them.
        assert_eq!(
            client
                .call("GET", &format!("/v1/sessions/{session}/result"), Some(&a), None)
                .await
                .status,
            200
        );
        assert_eq!(
            client
                .call("GET", &format!("/v1/sessions/{session2}"), Some(&token2), None)
                .await
                .status,
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_participant_removes_every_trace() {
    for server in servers().await {
        let client = Client::new(&server.base);
        let key = server.demo_key.clone();
        let (s1, t1, _) = take(&client, "DEMO", "erase-me", 5).await;
        let (_, _, n2) = take(&client, "DEMO", "keep-me", 6).await;
        let responses = |c: Client, k: String| async move {
            c.call("GET", "/v1/banks/etalon-example/responses", Some(&k), None)
                .await
                .text
        };
        let before = responses(client.clone(), key.clone()).await;
        assert!(before.contains(&s1));
        let r = client
            .call("DELETE", "/v1/participants/erase-me", Some(&key), None)
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let after = responses(client.clone(), key.clone()).await;
        assert!(!after.contains(&s1));
        assert_eq!(after.lines().count(), 1 + n2);
        let results = client
            .call("GET", "/v1/campaigns/example-campaign/results", Some(&key), None)
            .await;
        assert_eq!(results.text.lines().count(), 1);
        assert!(!results.text.contains("erase-me"));
        assert_eq!(
            client
                .call("GET", &format!("/v1/sessions/{s1}"), Some(&t1), None)
                .await
                .status,
            404
        );
        assert_eq!(
            client
                .call("DELETE", "/v1/participants/erase-me", Some(&key), None)
                .await
                .status,
            404
        );
        // The participant may take the campaign again.
        take(&client, "DEMO", "erase-me", 7).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banks_are_versioned_and_sessions_keep_theirs() {
    for server in servers().await {
        let client = Client::new(&server.base);
        let key = server.demo_key.clone();
        let mut bank: Value =
            serde_json::from_str(&etalon::items::example::example_bank().to_json()).unwrap();
        let same = client.call("POST", "/v1/banks", Some(&key), Some(&bank)).await;
        assert_eq!(same.status, 201);
        assert_eq!(
            (same.json["version"].as_i64(), same.json["created"].as_bool()),
            (Some(1), Some(false))
        );
        // A session on version 1, then a new version: the session still runs on version 1.
        let s = client
            .call(
                "POST",
                "/v1/sessions",
                Some(&key),
                Some(&json!({"bank": "etalon-example", "seed": 3})),
            )
            .await;
        assert_eq!(s.status, 201, "{}", s.text);
        bank["items"][0]["parameters"]["b"] = json!(2.5);
        let v2 = client.call("POST", "/v1/banks", Some(&key), Some(&bank)).await;
        assert_eq!(v2.json["version"], 2, "{}", v2.text);
        let row = stored_session(&server, &s.json).await;
        assert_eq!(row.bank_version, 1);
        let got = client
            .call("GET", "/v1/banks/etalon-example?version=1", Some(&key), None)
            .await;
        assert_eq!(
            got.json["items"][0]["parameters"]["b"],
            json!(
                etalon::items::example::example_bank().items()[0]
                    .parameters
                    .location()
            )
        );
        let latest = client
            .call("GET", "/v1/banks/etalon-example", Some(&key), None)
            .await;
        assert_eq!(latest.json["items"][0]["parameters"]["b"], json!(2.5));
        // CSV upload with an id; every problem of an invalid one is listed.
        let csv = "id,model,a,b\nx1,2pl,1.0,0.0\nx2,2pl,1.2,0.5\n";
        let up = client
            .raw(
                "POST",
                "/v1/banks?id=small",
                Some(&key),
                Some("text/csv"),
                Some(csv.into()),
            )
            .await;
        assert_eq!(up.status, 201, "{}", up.text);
        let bad = "id,model,a,b\nx1,2pl,0,0.0\nx2,2pl,1.2,abc\nx3,2pl,1,1\nx3,2pl,1,0\n";
        let r = client
            .raw(
                "POST",
                "/v1/banks?id=small",
                Some(&key),
                Some("text/csv"),
                Some(bad.into()),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.code(), "invalid_bank");
        let problems = r.json["error"]["problems"].as_array().unwrap();
        assert!(problems.len() >= 3, "{problems:?}");
        assert!(problems.iter().all(|p| p["line"].is_u64()), "{problems:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_server() {
    let server = service::start(service::db::TestDb::sqlite()).await;
    let client = Client::new(&server.base);
    let doc = client.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.json["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.json["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
            // Called without credentials and without a body, the server answers one of the statuses
            // the document gives for the operation.
            let concrete = path.replace("{id}", "nothing-here");
            let r = client.call(&method.to_uppercase(), &concrete, None, None).await;
            let statuses: BTreeSet<String> = op["responses"].as_object().unwrap().keys().cloned().collect();
            assert!(
                statuses.contains(&r.status.to_string()),
                "{method} {path}: {} not in {statuses:?}",
                r.status
            );
        }
    }
    // Every endpoint of the contract is documented.
    let contract = [
        "GET /health",
        "POST /v1/banks",
        "GET /v1/banks/{id}",
        "GET /v1/banks/{id}/responses",
        "POST /v1/campaigns",
        "GET /v1/campaigns/{id}/report",
        "GET /v1/campaigns/{id}/results",
        "POST /v1/sessions",
        "GET /v1/sessions/{id}",
        "POST /v1/sessions/{id}/answers",
        "GET /v1/sessions/{id}/result",
        "DELETE /v1/participants/{id}",
        "GET /v1/openapi.json",
    ];
    for c in contract {
        assert!(documented.contains(c), "{c} is not documented");
    }
    // And nothing undocumented answers: a method the document does not give is 405, a path 404.
    assert_eq!(client.call("PUT", "/v1/banks", None, None).await.status, 405);
    assert_eq!(client.call("GET", "/v1/nothing", None, None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_feedback_is_a_campaign_setting() {
    let bank = etalon::items::example::example_bank();
    for s in servers().await {
        let client = Client::new(&s.base);
        // Without feedback (the default): answers say nothing of right or wrong.
        let created = client
            .call(
                "POST",
                "/v1/campaigns",
                Some(&s.demo_key),
                Some(
                    &json!({"name": "quiet", "bank": "etalon-example", "code": "QUIET",
                             "targets": [{"competence": "1.1", "target_level": 3}]}),
                ),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert!(created.json["campaign"].get("feedback").is_none());
        for (code, gives) in [("QUIET", false), ("DEMO", true)] {
            let started = client
                .call(
                    "POST",
                    "/v1/sessions",
                    None,
                    Some(&json!({"campaign_code": code})),
                )
                .await;
            let (id, token) = (
                started.json["session"].as_str().unwrap().to_string(),
                started.json["token"].as_str().unwrap().to_string(),
            );
            let mut next = started.json["next"].clone();
            for round in 0..3 {
                let Some(item) = next["item"].as_str() else {
                    assert!(round >= 1, "{code}: at least one question");
                    break;
                };
                let item = bank.item(item).unwrap();
                let key = item.content.as_ref().unwrap().correct.unwrap();
                let n = item.content.as_ref().unwrap().choices.len();
                let choice = if round == 0 { (key + 1) % n } else { key };
                let body = json!({"position": next["position"], "item": next["item"], "choice": choice});
                let r = client.answer(&id, &token, &body).await;
                if gives {
                    let f = &r.json["feedback"];
                    assert_eq!(f["correct"], json!(choice == key), "{code} round {round}");
                    let tutorials = f["tutorials"].as_array().unwrap();
                    assert_eq!(
                        tutorials.len(),
                        if choice == key { 0 } else { item.tutorials.len() }
                    );
                    // A replay answers the same, feedback included.
                    assert_eq!(client.answer(&id, &token, &body).await.json, r.json);
                } else {
                    assert!(r.json.get("feedback").is_none(), "{}", r.text);
                }
                next = r.json["next"].clone();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_on_a_multidimensional_bank_runs_the_multidimensional_profile() {
    for server in servers().await {
        let client = Client::new(&server.base);
        let key = server.demo_key.clone();
        let bank: Value =
            serde_json::from_str(&etalon::engine::multidim::synthetic_bank(4, 10, 0.6, 0.8, 3).to_json())
                .unwrap();
        let r = client.call("POST", "/v1/banks", Some(&key), Some(&bank)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        // Two of the bank's four competences; the design is left to `auto`.
        let targets =
            json!([{"competence": "C01", "target_level": 2}, {"competence": "C03", "target_level": 2}]);
        let c = client
            .call(
                "POST",
                "/v1/campaigns",
                Some(&key),
                Some(&json!({"name": "md", "bank": "synthetic", "targets": targets, "code": "MDIM"})),
            )
            .await;
        assert_eq!(c.status, 201, "{}", c.text);
        // `auto` is recorded resolved: the campaign says which test it runs.
        assert_eq!(c.json["campaign"]["design"], "multidimensional", "{}", c.text);
        let s = client
            .call(
                "POST",
                "/v1/sessions",
                None,
                Some(&json!({"campaign_code": "MDIM"})),
            )
            .await;
        assert_eq!(s.status, 201, "{}", s.text);
        let row = stored_session(&server, &s.json).await;
        let design: Value = serde_json::from_str(&row.design).unwrap();
        assert_eq!(
            design["multidimensional"]["competences"],
            json!(["C01", "C03"]),
            "{design}"
        );
        // Questions come from the targets only, and the test ends with their two levels.
        let (session, token) = (
            s.json["session"].as_str().unwrap(),
            s.json["token"].as_str().unwrap(),
        );
        let mut next = s.json["next"].clone();
        let mut answered = 0;
        while let Some(item) = next["item"].as_str() {
            assert!(item.starts_with("C01-") || item.starts_with("C03-"), "{item}");
            let a = client
                .answer(
                    session,
                    token,
                    &json!({"item": item, "response": answered % 2, "position": next["position"]}),
                )
                .await;
            next = a.json["next"].clone();
            answered += 1;
        }
        assert!(answered > 0);
    }
}

/// The stored record of the session a `POST /v1/sessions` reply started.
async fn stored_session(server: &service::Server, started: &Value) -> etalon_server::storage::SessionRecord {
    server
        .service
        .store
        .get_session(started["session"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap()
}
