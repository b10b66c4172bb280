//! The 1EdTech Computer Adaptive Testing 1.0 REST binding, as a delivery system (TAO's client) uses
//! it: a section from a base64 configuration, a session, results in, next items out, until the test
//! ends with its outcomes — the same session and answers the v1 API sees — and every error as the
//! standard's status object, on SQLite and PostgreSQL.

#[path = "common/service.rs"]
mod service;

use base64::Engine;
use serde_json::{Value, json};
use service::{Client, servers};

/// (what, path, key, body, status) of a refused call.
type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<Value>, u16);

fn config(v: Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

/// A status object naming what went wrong.
fn assert_status_object(r: &service::Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert_eq!(r.json["imsx_codeMajor"], json!("failure"), "{what}: {}", r.text);
    assert_eq!(r.json["imsx_severity"], json!("error"));
    assert!(r.json["imsx_description"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(r.json["imsx_codeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_system_runs_a_cat_through_the_standard() {
    let bank = etalon::items::example::example_bank();
    for s in servers().await {
        let api = Client::new(&s.base);
        let key = Some(s.demo_key.as_str());
        // A section: the example bank, a fixed-length adaptive test of 12 items.
        let design = json!({"adaptive": {"stopping": {"max_items": 12, "min_items": 12, "se_target": 0.01}}});
        let section_config = config(json!({"bank": "etalon-example", "config": design}));
        let r = api
            .call(
                "POST",
                "/ims/cat/v1p0/sections",
                key,
                Some(&json!({"sectionConfiguration": section_config})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let section = r.json["sectionIdentifier"].as_str().unwrap().to_string();
        let got = api
            .call("GET", &format!("/ims/cat/v1p0/sections/{section}"), key, None)
            .await;
        assert_eq!(got.json["sectionConfiguration"], json!(section_config));

        // A session: items in, results out, until no item is left.
        let r = api
            .call(
                "POST",
                &format!("/ims/cat/v1p0/sections/{section}/sessions"),
                key,
                Some(&json!({})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let session = r.json["sessionIdentifier"].as_str().unwrap().to_string();
        let mut state = r.json["sessionState"].as_str().unwrap().to_string();
        let mut next = r.json["nextItems"].clone();
        assert_eq!(next["stageLength"], json!(1));
        let results_path = format!("/ims/cat/v1p0/sections/{section}/sessions/{session}/results");
        let (mut given, mut last) = (0, Value::Null);
        while let Some(item) = next["itemIdentifiers"][0].as_str() {
            // A person of ability 0.5: right on items easier than that.
            let b = bank.item(item).unwrap().parameters.location();
            let score = i64::from(b < 0.5);
            let body = json!({"sessionState": state, "assessmentResult": {"itemResult": [
                {"identifier": item, "sequenceIndex": given + 1,
                 "outcomeVariable": [{"identifier": "SCORE", "cardinality": "single", "baseType": "integer", "value": score}]}]}});
            let r = api.call("POST", &results_path, key, Some(&body)).await;
            assert_eq!(r.status, 200, "{}", r.text);
            if given == 3 {
                // The same results again (a retry): a replay, answered the same, nothing recorded twice.
                let again = api.call("POST", &results_path, key, Some(&body)).await;
                assert_eq!(again.status, 200, "{}", again.text);
                assert_eq!(again.json, r.json);
            }
            given += 1;
            state = r.json["sessionState"].as_str().unwrap().to_string();
            next = r.json["nextItems"].clone();
            last = r.json.clone();
        }
        assert_eq!(given, 12);
        let outcomes = last["assessmentResult"]["testResult"]["outcomeVariable"]
            .as_array()
            .unwrap();
        let theta = outcomes.iter().find(|o| o["identifier"] == "THETA").unwrap()["value"]
            .as_f64()
            .unwrap();
        // The same session and answers through the v1 API.
        let v1 = api
            .call("GET", &format!("/v1/sessions/{session}/result"), key, None)
            .await;
        assert_eq!(v1.json["status"], json!("finished"));
        assert_eq!(v1.json["items"].as_array().unwrap().len(), 12);
        assert_eq!(v1.json["theta"].as_f64().unwrap(), theta);
        let end = api
            .call(
                "DELETE",
                &format!("/ims/cat/v1p0/sections/{section}/sessions/{session}"),
                key,
                None,
            )
            .await;
        assert_eq!(end.status, 204, "{}", end.text);

        // Errors, as status objects; none changes anything.
        let (_, other_key) = s.service.create_org("other").await.unwrap();
        let before = s.service.store.dump().await.unwrap();
        let sessions_path = format!("/ims/cat/v1p0/sections/{section}/sessions");
        let cases: Vec<Case> = vec![
            (
                "no key",
                "/ims/cat/v1p0/sections",
                None,
                Some(json!({"sectionConfiguration": section_config})),
                401,
            ),
            (
                "not base64",
                "/ims/cat/v1p0/sections",
                key,
                Some(json!({"sectionConfiguration": "%%%"})),
                422,
            ),
            (
                "not JSON",
                "/ims/cat/v1p0/sections",
                key,
                Some(json!({"sectionConfiguration": config(json!(1)).replace('=', "")+"AA"})),
                422,
            ),
            (
                "unknown bank",
                "/ims/cat/v1p0/sections",
                key,
                Some(json!({"sectionConfiguration": config(json!({"bank": "nope"}))})),
                422,
            ),
            (
                "bad design",
                "/ims/cat/v1p0/sections",
                key,
                Some(
                    json!({"sectionConfiguration": config(json!({"bank": "etalon-example", "config": {"adaptive": {"stopping": {"max_items": -1}}}}))}),
                ),
                422,
            ),
            (
                "no configuration",
                "/ims/cat/v1p0/sections",
                key,
                Some(json!({})),
                422,
            ),
            (
                "unknown section",
                "/ims/cat/v1p0/sections/nope/sessions",
                key,
                Some(json!({})),
                404,
            ),
            (
                "another organisation's section",
                &sessions_path,
                Some(other_key.as_str()),
                Some(json!({})),
                404,
            ),
            (
                "no session state",
                &results_path,
                key,
                Some(json!({"assessmentResult": {"itemResult": []}})),
                422,
            ),
            (
                "a forged session state",
                &results_path,
                key,
                Some(json!({"sessionState": "ets_forged", "assessmentResult": {"itemResult": []}})),
                401,
            ),
        ];
        for (what, path, k, body, status) in cases {
            let r = api.call("POST", path, k, body.as_ref()).await;
            assert_status_object(&r, status, what);
        }
        assert_eq!(
            s.service.store.dump().await.unwrap(),
            before,
            "no refused call changed anything"
        );
        // A finished session takes no more results.
        let r = api
            .call(
                "POST",
                &results_path,
                key,
                Some(
                    &json!({"sessionState": state, "assessmentResult": {"itemResult": [
                {"identifier": "q1-1-1", "outcomeVariable": [{"identifier": "SCORE", "value": 1}]}]}}),
                ),
            )
            .await;
        assert_status_object(&r, 409, "finished");
        // Deleting the section: it is gone (its session's answers stay).
        assert_eq!(
            api.call("DELETE", &format!("/ims/cat/v1p0/sections/{section}"), key, None)
                .await
                .status,
            204
        );
        assert_status_object(
            &api.call("GET", &format!("/ims/cat/v1p0/sections/{section}"), key, None)
                .await,
            404,
            "deleted",
        );
        assert_eq!(
            api.call("GET", &format!("/v1/sessions/{session}/result"), key, None)
                .await
                .status,
            200
        );
    }
}
