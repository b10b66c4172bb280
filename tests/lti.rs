//! LTI 1.3 launches against a scripted platform over real HTTP: the platform (an axum server in this
//! test) publishes its keys at a JWKS URL and signs id_tokens with them (RS256, `jsonwebtoken`); the
//! test plays the browser between the platform and Etalon. A launch opens the learner's session in
//! the campaign its custom parameter names; a second launch resumes it under a new token; every
//! malformed, forged, expired, replayed or foreign launch is refused and opens nothing; a key rotation
//! at the platform is followed.

#[path = "common/service.rs"]
mod service;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use service::{Client, Server, input, servers};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A platform: its keys (kid → private key) and the key set it publishes now; its token endpoint
/// (which checks the tool's signed assertion against the tool's published keys) and line item
/// scores endpoint (which records what it accepts, and answers 503 while `down`).
struct Platform {
    issuer: String,
    keys: HashMap<String, EncodingKey>,
    published: Arc<Mutex<JwkSet>>,
    scores: Arc<Mutex<Vec<Value>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    _task: tokio::task::JoinHandle<()>,
}

/// The platform's token endpoint: a client-credentials grant whose assertion the tool signed.
async fn token_endpoint(etalon: String, issuer: String, form: HashMap<String, String>) -> (u16, Value) {
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        || form.get("scope").map(String::as_str)
            != Some("https://purl.imsglobal.org/spec/lti-ags/scope/score")
    {
        return (400, json!({"error": "invalid_request"}));
    }
    let assertion = form.get("client_assertion").cloned().unwrap_or_default();
    let set: JwkSet = tool_jwks(&etalon).await;
    let kid = jsonwebtoken::decode_header(&assertion)
        .ok()
        .and_then(|h| h.kid)
        .unwrap_or_default();
    let Some(jwk) = set.find(&kid) else {
        return (401, json!({"error": "invalid_client"}));
    };
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    v.set_audience(&[format!("{issuer}/token")]);
    v.set_issuer(&["etalon-client"]);
    v.sub = Some("etalon-client".into());
    match jsonwebtoken::decode::<Value>(&assertion, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &v) {
        Ok(_) => (
            200,
            json!({"access_token": "platform-token", "token_type": "Bearer", "expires_in": 3600}),
        ),
        Err(e) => (
            401,
            json!({"error": "invalid_client", "error_description": e.to_string()}),
        ),
    }
}

fn rsa_pem() -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .unwrap()
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .unwrap()
        .to_string()
}

fn jwk(key: &EncodingKey, kid: &str) -> Jwk {
    let mut j = Jwk::from_encoding_key(key, Algorithm::RS256).unwrap();
    j.common.key_id = Some(kid.into());
    j
}

async fn platform(etalon: &str) -> Platform {
    let (k1, k2) = (rsa_pem(), rsa_pem());
    let keys: HashMap<String, EncodingKey> = [("k1", &k1), ("k2", &k2)]
        .into_iter()
        .map(|(kid, pem)| {
            (
                kid.to_string(),
                EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            )
        })
        .collect();
    // At first only k1 is published.
    let published = Arc::new(Mutex::new(JwkSet {
        keys: vec![jwk(&keys["k1"], "k1")],
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let set = published.clone();
    let scores = Arc::new(Mutex::new(Vec::new()));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (etalon, iss) = (etalon.to_string(), issuer.clone());
    let (recorded, is_down) = (scores.clone(), down.clone());
    let app = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let set = set.clone();
                async move { axum::Json(set.lock().unwrap().clone()) }
            }),
        )
        .route(
            "/token",
            axum::routing::post(move |body: String| {
                let (etalon, iss) = (etalon.clone(), iss.clone());
                async move {
                    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                    let (status, answer) = token_endpoint(etalon, iss, form).await;
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        axum::Json(answer),
                    )
                }
            }),
        )
        .route(
            "/lineitems/7/lineitem/scores",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (recorded, is_down) = (recorded.clone(), is_down.clone());
                async move {
                    if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let authorised = headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some("Bearer platform-token");
                    let typed = headers.get("content-type").and_then(|v| v.to_str().ok())
                        == Some("application/vnd.ims.lis.v1.score+json");
                    if !authorised || !typed {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    recorded
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    axum::http::StatusCode::OK
                }
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Platform {
        issuer,
        keys,
        published,
        scores,
        down,
        _task: task,
    }
}

/// The tool's published key set (`/lti/jwks` of the Etalon server at `base`).
async fn tool_jwks(base: &str) -> JwkSet {
    http()
        .get(format!("{base}/lti/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn http() -> reqwest::Client {
    etalon_server::install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The registration of platform `p` (as its administrator would copy it from the LMS).
fn registration(p: &Platform) -> Value {
    json!({
        "issuer": p.issuer, "client_id": "etalon-client", "deployment_ids": ["dep-1"],
        "auth_login_url": format!("{}/auth", p.issuer),
        "auth_token_url": format!("{}/token", p.issuer),
        "jwks_url": format!("{}/jwks", p.issuer),
    })
}

/// Register platform `p` with the demo organisation (201 expected).
async fn register(api: &Client, s: &Server, p: &Platform) {
    let r = api
        .call(
            "POST",
            "/v1/lti/platforms",
            Some(&s.demo_key),
            Some(&registration(p)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Start a login at Etalon: the state, nonce and redirect URI it sends the browser to the platform with.
async fn login(s: &Server, p: &Platform, hint: &str) -> (String, String, String) {
    let r = http()
        .get(format!("{}/lti/login", s.base))
        .query(&[
            ("iss", p.issuer.as_str()),
            ("login_hint", hint),
            ("target_link_uri", &format!("{}/lti/launch", s.base)),
            ("lti_message_hint", "msg-1"),
            ("client_id", "etalon-client"),
            ("lti_deployment_id", "dep-1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = url::Url::parse(r.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(&format!("{}/auth", p.issuer)), "{to}");
    let q: HashMap<String, String> = to.query_pairs().into_owned().collect();
    for (k, v) in [
        ("scope", "openid"),
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
        ("prompt", "none"),
        ("client_id", "etalon-client"),
        ("login_hint", hint),
        ("lti_message_hint", "msg-1"),
    ] {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
    }
    (q["state"].clone(), q["nonce"].clone(), q["redirect_uri"].clone())
}

/// The claims of a good launch of `sub` into `campaign`.
fn claims(p: &Platform, nonce: &str, sub: &str, campaign: &str) -> Value {
    json!({
        "iss": p.issuer, "aud": "etalon-client", "sub": sub, "nonce": nonce,
        "iat": now(), "exp": now() + 300,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-1",
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": "x",
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        "https://purl.imsglobal.org/spec/lti/claim/custom": {"campaign": campaign}
    })
}

fn sign(p: &Platform, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &p.keys[kid]).unwrap()
}

struct Launch {
    status: u16,
    location: String,
    cookie: Option<String>,
    body: String,
}

async fn launch(redirect_uri: &str, state: &str, id_token: &str) -> Launch {
    let r = http()
        .post(redirect_uri)
        .form(&[("id_token", id_token), ("state", state)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let cookie = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("etalon_take="))
        .map(|c| c.split(';').next().unwrap().to_string());
    Launch {
        status,
        location,
        cookie,
        body: r.text().await.unwrap_or_default(),
    }
}

/// Sessions started in the example campaign.
async fn sessions(s: &Server) -> i64 {
    let org = s.service.org(Some(&s.demo_key)).await.unwrap();
    s.service
        .store
        .participation(org.id, "example-campaign")
        .await
        .unwrap()
        .started
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lti_launches_from_a_scripted_platform() {
    for s in servers().await {
        eprintln!("LTI on {}", s.backend);
        let p = platform(&s.base).await;
        let api = Client::new(&s.base);
        let registration = registration(&p);
        // Registration: the org key, valid URLs, once.
        assert_eq!(
            api.call("POST", "/v1/lti/platforms", None, Some(&registration))
                .await
                .status,
            401
        );
        let mut http_far = registration.clone();
        http_far["jwks_url"] = json!("http://platform.example/jwks");
        let r = api
            .call("POST", "/v1/lti/platforms", Some(&s.demo_key), Some(&http_far))
            .await;
        assert_eq!(
            (r.status, r.json["error"]["field"].as_str()),
            (422, Some("jwks_url")),
            "{}",
            r.text
        );
        let r = api
            .call(
                "POST",
                "/v1/lti/platforms",
                Some(&s.demo_key),
                Some(&registration),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = api
            .call(
                "POST",
                "/v1/lti/platforms",
                Some(&s.demo_key),
                Some(&registration),
            )
            .await;
        assert_eq!((r.status, r.code()), (409, "platform_exists"));

        // A good launch: the learner's session in the campaign, in a cookie, and the question page.
        let (state, nonce, redirect) = login(&s, &p, "user-1").await;
        assert_eq!(redirect, format!("{}/lti/launch", s.base));
        let token = sign(&p, "k1", &claims(&p, &nonce, "learner-1", "example-campaign"));
        let first = launch(&redirect, &state, &token).await;
        assert_eq!(
            (first.status, first.location.as_str()),
            (303, "/take"),
            "{}",
            first.body
        );
        let cookie = first.cookie.expect("session cookie");
        let page = http()
            .get(format!("{}/take", s.base))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Question 1 of at most"), "{page}");
        let participant = format!("learner-1@{}", p.issuer);
        assert!(s.service.store.dump().await.unwrap().contains(&participant));
        assert_eq!(sessions(&s).await, 1);

        // The same state again (a replayed form post): refused.
        let again = launch(&redirect, &state, &token).await;
        assert_eq!(again.status, 401, "{}", again.body);
        assert!(again.cookie.is_none());

        // Launching again resumes the same session under a new token; the old one opens nothing.
        let (state, nonce, redirect) = login(&s, &p, "user-1").await;
        let second = launch(
            &redirect,
            &state,
            &sign(&p, "k1", &claims(&p, &nonce, "learner-1", "example-campaign")),
        )
        .await;
        assert_eq!(second.status, 303, "{}", second.body);
        let new_cookie = second.cookie.unwrap();
        let session_of = |c: &str| c["etalon_take=".len()..].split('.').next().unwrap().to_string();
        assert_eq!(session_of(&new_cookie), session_of(&cookie));
        assert_ne!(new_cookie, cookie);
        assert_eq!(sessions(&s).await, 1);
        let old = http()
            .get(format!("{}/take", s.base))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(old.contains("No assessment in progress"), "the old token is void");

        // Every bad launch is refused and opens nothing.
        let before = sessions(&s).await;
        // (what, status, claims changed (null: removed), how it is signed)
        let cases: Vec<(&str, u16, Value, &str)> = vec![
            (
                "nonce of another login",
                401,
                json!({"nonce": "not-the-nonce"}),
                "k1",
            ),
            (
                "audience of another tool",
                401,
                json!({"aud": "other-tool"}),
                "k1",
            ),
            (
                "several audiences, azp another",
                401,
                json!({"aud": ["etalon-client", "other"], "azp": "other"}),
                "k1",
            ),
            (
                "another issuer",
                401,
                json!({"iss": "https://evil.example"}),
                "k1",
            ),
            (
                "expired",
                401,
                json!({"exp": now() - 120, "iat": now() - 600}),
                "k1",
            ),
            ("issued in the future", 401, json!({"iat": now() + 600}), "k1"),
            (
                "unregistered deployment",
                401,
                json!({"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-2"}),
                "k1",
            ),
            (
                "other message type",
                401,
                json!({"https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiSubmissionReviewRequest"}),
                "k1",
            ),
            (
                "other LTI version",
                401,
                json!({"https://purl.imsglobal.org/spec/lti/claim/version": "1.1"}),
                "k1",
            ),
            ("no sub", 401, json!({"sub": null}), "k1"),
            (
                "no campaign",
                422,
                json!({"https://purl.imsglobal.org/spec/lti/claim/custom": {}}),
                "k1",
            ),
            (
                "unknown campaign",
                404,
                json!({"https://purl.imsglobal.org/spec/lti/claim/custom": {"campaign": "nope"}}),
                "k1",
            ),
            (
                "signed with a key the kid does not name",
                401,
                json!({}),
                "k2-as-k1",
            ),
            ("a key the platform does not publish", 401, json!({}), "k2"),
            ("HS256 with the public key as secret", 401, json!({}), "hs256"),
            ("unsigned", 401, json!({}), "none"),
        ];
        for (what, status, changes, how) in cases {
            let (state, nonce, redirect) = login(&s, &p, "user-2").await;
            let mut c = claims(&p, &nonce, "learner-2", "example-campaign");
            for (k, v) in changes.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            let token = match how {
                "k1" => sign(&p, "k1", &c),
                "k2" => sign(&p, "k2", &c),
                "k2-as-k1" => {
                    let mut h = Header::new(Algorithm::RS256);
                    h.kid = Some("k1".into());
                    jsonwebtoken::encode(&h, &c, &p.keys["k2"]).unwrap()
                }
                "hs256" => {
                    let mut h = Header::new(Algorithm::HS256);
                    h.kid = Some("k1".into());
                    let public = serde_json::to_vec(&p.published.lock().unwrap().keys[0]).unwrap();
                    jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(&public)).unwrap()
                }
                _ => {
                    // alg "none": header and claims, no signature.
                    use base64::Engine;
                    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                    format!(
                        "{}.{}.",
                        b.encode(br#"{"alg":"none","kid":"k1"}"#),
                        b.encode(serde_json::to_vec(&c).unwrap())
                    )
                }
            };
            let r = launch(&redirect, &state, &token).await;
            assert_eq!(r.status, status, "{what}: {}", r.body);
            assert!(r.cookie.is_none(), "{what}");
            assert!(r.body.contains("<html"), "{what}: a page for the person");
        }
        assert_eq!(sessions(&s).await, before, "no refused launch opened a session");

        // Key rotation: the platform publishes k2 and signs with it; Etalon fetches the set again.
        p.published.lock().unwrap().keys.push(jwk(&p.keys["k2"], "k2"));
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let (state, nonce, redirect) = login(&s, &p, "user-3").await;
        let r = launch(
            &redirect,
            &state,
            &sign(&p, "k2", &claims(&p, &nonce, "learner-3", "example-campaign")),
        )
        .await;
        assert_eq!(r.status, 303, "{}", r.body);

        // The tool's keys: a JWK set whose key verifies what the tool signs.
        let set: JwkSet = tool_jwks(&s.base).await;
        assert_eq!(set.keys.len(), 1);
        let (kid, key) = s.service.tool_signing_key().await.unwrap();
        assert_eq!(set.keys[0].common.key_id.as_deref(), Some(kid.as_str()));
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.clone());
        let signed = jsonwebtoken::encode(&h, &json!({"sub": "x", "exp": now() + 60}), &key).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.validate_aud = false;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&signed, &decoding, &v).is_ok());
        // The same key after a restart (it is in the database).
        let again: JwkSet = tool_jwks(&s.base).await;
        assert_eq!(again.keys[0].common.key_id, set.keys[0].common.key_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grades_reach_the_gradebook_once_through_the_outbox() {
    for s in servers().await {
        eprintln!("AGS on {}", s.backend);
        let p = platform(&s.base).await;
        let api = Client::new(&s.base);
        register(&api, &s, &p).await;
        // The launch names its line item and the score scope.
        let (state, nonce, redirect) = login(&s, &p, "u").await;
        let mut c = claims(&p, &nonce, "learner-9", "example-campaign");
        c["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = json!({
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitem": format!("{}/lineitems/7/lineitem", p.issuer),
        });
        let launched = launch(&redirect, &state, &sign(&p, "k1", &c)).await;
        assert_eq!(launched.status, 303, "{}", launched.body);
        let cookie = launched.cookie.unwrap();
        let (session, token) = cookie["etalon_take=".len()..].split_once('.').unwrap();
        // Nothing to post before the session ends.
        assert_eq!(s.service.post_due_grades().await.unwrap(), (0, 0));
        // The learner finishes (over the API with the launch's token).
        let mut next = api
            .call("GET", &format!("/v1/sessions/{session}"), Some(token), None)
            .await
            .json["next"]
            .clone();
        while !next.is_null() {
            let body = json!({"position": next["position"], "item": next["item"], "choice": 0});
            next = api.answer(session, token, &body).await.json["next"].clone();
        }
        let result = api.result(session, token).await;
        // The platform is down: the grade waits, with its error, and is tried again later.
        p.down.store(true, std::sync::atomic::Ordering::SeqCst);
        s.service.set_retry_delay(std::time::Duration::from_millis(300));
        assert_eq!(s.service.post_due_grades().await.unwrap(), (0, 1));
        let org = s.service.org(Some(&s.demo_key)).await.unwrap();
        let grades = s.service.grades(&org).await.unwrap();
        assert_eq!(grades.len(), 1);
        assert_eq!((grades[0].1.as_str(), grades[0].2), ("pending", 1));
        assert!(grades[0].3.as_deref().unwrap_or("").contains("503"), "{grades:?}");
        assert_eq!(
            s.service.post_due_grades().await.unwrap(),
            (0, 0),
            "not before its retry time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        assert_eq!(s.service.post_due_grades().await.unwrap(), (0, 1), "still down");
        // Back up: the grade lands, once.
        p.down.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(650)).await;
        assert_eq!(s.service.post_due_grades().await.unwrap(), (1, 0));
        assert_eq!(s.service.post_due_grades().await.unwrap(), (0, 0));
        // Another server process on the same database finds nothing to post either.
        let other = etalon_server::Service::new(etalon_server::storage::open(&s.db.url).await.unwrap());
        assert_eq!(other.post_due_grades().await.unwrap(), (0, 0));
        let scores = p.scores.lock().unwrap().clone();
        assert_eq!(scores.len(), 1, "posted exactly once: {scores:?}");
        let score = &scores[0];
        assert_eq!(score["userId"], json!("learner-9"));
        assert_eq!(score["activityProgress"], json!("Completed"));
        assert_eq!(score["gradingProgress"], json!("FullyGraded"));
        let given = score["scoreGiven"].as_f64().unwrap();
        assert!(
            (given - result["score"].as_f64().unwrap()).abs() < 0.01,
            "{score} vs {result}"
        );
        let bank = etalon::items::example::example_bank();
        let levels = bank.levels().cloned().unwrap_or_default();
        let maximum: f64 = etalon::assessment::presets::example_campaign()
            .targets()
            .iter()
            .map(|t| levels.for_competence(&t.competence).max_score())
            .sum();
        assert_eq!(score["scoreMaximum"].as_f64().unwrap(), maximum);
        assert!(given <= maximum);
        assert!(score["timestamp"].as_str().unwrap().ends_with('Z'), "{score}");
        assert!(
            score["comment"].as_str().unwrap().contains("1.1: level"),
            "{score}"
        );
        let grades = s.service.grades(&org).await.unwrap();
        assert_eq!(
            (grades[0].1.as_str(), grades[0].2, grades[0].3.as_deref()),
            ("posted", 3, None)
        );
        // The organisation's page shows the tool's addresses, the platform and the grade posted.
        let page = service::org_page(&s.base, &s.demo_key).await;
        assert!(page.contains(&format!("{}/lti/launch", s.base)), "{page}");
        assert!(page.contains(&p.issuer) && page.contains("etalon-client"));
        assert!(page.contains("1 posted · 0 waiting"), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_teacher_adds_a_campaign_to_a_course_by_deep_linking() {
    for s in servers().await {
        let p = platform(&s.base).await;
        let api = Client::new(&s.base);
        register(&api, &s, &p).await;
        let deep_linking = |c: &mut Value, role: &str| {
            c["https://purl.imsglobal.org/spec/lti/claim/message_type"] = json!("LtiDeepLinkingRequest");
            c["https://purl.imsglobal.org/spec/lti/claim/roles"] = json!([format!(
                "http://purl.imsglobal.org/vocab/lis/v2/membership#{role}"
            )]);
            c["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = json!({
                "deep_link_return_url": format!("{}/dl-return", p.issuer),
                "accept_types": ["ltiResourceLink"], "data": "opaque-1"});
        };
        // A learner may not choose.
        let (state, nonce, redirect) = login(&s, &p, "u").await;
        let mut c = claims(&p, &nonce, "learner-1", "");
        deep_linking(&mut c, "Learner");
        assert_eq!(launch(&redirect, &state, &sign(&p, "k1", &c)).await.status, 403);
        // A teacher sees the organisation's campaigns.
        let (state, nonce, redirect) = login(&s, &p, "u").await;
        let mut c = claims(&p, &nonce, "teacher-1", "");
        deep_linking(&mut c, "Instructor");
        let page = launch(&redirect, &state, &sign(&p, "k1", &c)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("value=\"example-campaign\""), "{}", page.body);
        let context = input(&page.body, "context");
        let choose = |context: String, campaign: &str| {
            let url = format!("{}/lti/deep-link", s.base);
            let campaign = campaign.to_string();
            async move {
                http()
                    .post(url)
                    .form(&[("context", context), ("campaign", campaign)])
                    .send()
                    .await
                    .unwrap()
            }
        };
        // A forged context or an unknown campaign is refused.
        let mut forged = context.clone();
        forged.insert(forged.len() / 2, 'x');
        assert_eq!(choose(forged, "example-campaign").await.status(), 401);
        assert_eq!(choose(context.clone(), "nope").await.status(), 404);
        // The choice goes back to the platform as a signed LtiDeepLinkingResponse.
        let r = choose(context, "example-campaign").await;
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains(&format!("form-action 'self' {}", p.issuer)), "{csp}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains(&format!("action=\"{}/dl-return\"", p.issuer)),
            "{body}"
        );
        let jwt = input(&body, "JWT");
        let set: JwkSet = tool_jwks(&s.base).await;
        let kid = jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&[&p.issuer]);
        v.set_issuer(&["etalon-client"]);
        let claims = jsonwebtoken::decode::<Value>(
            &jwt,
            &jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap(),
            &v,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims["https://purl.imsglobal.org/spec/lti/claim/message_type"],
            json!("LtiDeepLinkingResponse")
        );
        assert_eq!(
            claims["https://purl.imsglobal.org/spec/lti/claim/version"],
            json!("1.3.0")
        );
        assert_eq!(
            claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"],
            json!("dep-1")
        );
        assert_eq!(
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"],
            json!("opaque-1")
        );
        let item = &claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"][0];
        assert_eq!(item["type"], json!("ltiResourceLink"));
        assert_eq!(item["url"], json!(format!("{}/lti/launch", s.base)));
        assert_eq!(item["custom"]["campaign"], json!("example-campaign"));
        assert!(item["lineItem"]["scoreMaximum"].as_f64().unwrap() > 0.0);
    }
}
