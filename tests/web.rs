//! The web pages over real HTTP, without a browser: what a browser test cannot see or should not have
//! to — cookie attributes, CSRF refusals that change nothing, sign-out that the server forgets, another
//! organisation's pages, open redirects, what a participant's HTML contains, and bad forms answered
//! with a 4xx page, never a 5xx. (`tests/browser.rs` drives the same pages in Chromium.)

#[path = "common/service.rs"]
mod service;

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;
use service::{Client, db, input, servers, start};

/// A browser without a cookie jar or redirects: every cookie and redirect is checked by hand.
fn http() -> reqwest::Client {
    etalon_server::install_crypto();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

struct Page {
    status: u16,
    location: String,
    cookies: Vec<String>,
    body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Page {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let cookies = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let body = r.text().await.unwrap_or_default();
    Page {
        status,
        location,
        cookies,
        body,
    }
}

/// `name=value` of the cookie `name` set by a page.
fn cookie(page: &Page, name: &str) -> String {
    page.cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no cookie {name} in {:?}", page.cookies))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_speak_the_browsers_language_and_never_redirect_elsewhere() {
    let s = start(db::TestDb::sqlite()).await;
    let h = http();
    let fr = send(h.get(&s.base).header(ACCEPT_LANGUAGE, "fr-FR,fr;q=0.9,en;q=0.5")).await;
    assert_eq!(fr.status, 200);
    assert!(fr.body.contains("<html lang=\"fr\">") && fr.body.contains("Rejoindre une évaluation"));
    let en = send(h.get(&s.base).header(ACCEPT_LANGUAGE, "de-DE,en;q=0.8")).await;
    assert!(en.body.contains("<html lang=\"en\">") && en.body.contains("Join an assessment"));
    // The switch remembers the choice over the browser's language, and goes back where it was.
    let switch = send(h.get(format!("{}/lang/fr?back=/join%3Fcode%3DDEMO", s.base))).await;
    assert_eq!(switch.status, 303);
    assert_eq!(switch.location, "/join?code=DEMO");
    let lang = cookie(&switch, "etalon_lang");
    let page = send(
        h.get(format!("{}/join?code=DEMO", s.base))
            .header(ACCEPT_LANGUAGE, "en")
            .header(COOKIE, &lang),
    )
    .await;
    assert!(page.body.contains("lang=\"fr\"") && page.body.contains("value=\"DEMO\""));
    // No open redirect: only a path of this site.
    for back in [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let r = send(h.get(format!("{}/lang/en", s.base)).query(&[("back", back)])).await;
        assert_eq!((r.status, r.location.as_str()), (303, "/"), "back={back}");
    }
    // Every page has a strict Content-Security-Policy and is not cached.
    let r = h.get(&s.base).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn organisation_pages_need_a_sign_in_and_refuse_forms_without_their_csrf_token() {
    let s = start(db::TestDb::sqlite()).await;
    let h = http();
    let api = Client::new(&s.base);
    // Signed out: the sign-in form, and nothing of the campaign.
    let out = send(h.get(format!("{}/org/campaigns/example-campaign", s.base))).await;
    assert_eq!(out.status, 200);
    assert!(out.body.contains("type=\"password\"") && !out.body.contains("DEMO"));
    let wrong = send(
        h.post(format!("{}/org/signin", s.base))
            .form(&[("key", "etk_nope")]),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.cookies.is_empty());
    // Signed in: a random token in an HttpOnly, SameSite=Strict cookie — not the key.
    let signed = send(
        h.post(format!("{}/org/signin", s.base))
            .form(&[("key", &s.demo_key)]),
    )
    .await;
    assert_eq!((signed.status, signed.location.as_str()), (303, "/org"));
    let set = signed
        .cookies
        .iter()
        .find(|c| c.starts_with("etalon_org="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(
        !set.contains(&s.demo_key[4..]),
        "the cookie does not hold the key"
    );
    let org = cookie(&signed, "etalon_org");
    let page = send(
        h.get(format!("{}/org/campaigns/example-campaign", s.base))
            .header(COOKIE, &org),
    )
    .await;
    assert!(page.body.contains("DEMO"));
    let csrf = input(&page.body, "csrf");
    let is_open = || async {
        api.call("GET", "/v1/campaigns/example-campaign", Some(&s.demo_key), None)
            .await
            .json["open"]
            .clone()
    };
    // A form without the token, or with another, changes nothing.
    let before = s.service.store.dump().await.unwrap();
    for token in ["", "0000", &csrf[1..]] {
        let r = send(
            h.post(format!("{}/org/campaigns/example-campaign/open", s.base))
                .header(COOKIE, &org)
                .form(&[("csrf", token), ("open", "false")]),
        )
        .await;
        assert_eq!(r.status, 403, "csrf {token:?}");
    }
    assert_eq!(s.service.store.dump().await.unwrap(), before);
    assert_eq!(is_open().await, Value::Bool(true));
    let r = send(
        h.post(format!("{}/org/campaigns/example-campaign/open", s.base))
            .header(COOKIE, &org)
            .form(&[("csrf", csrf.as_str()), ("open", "false")]),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(is_open().await, Value::Bool(false));
    // Signing out is forgotten by the server: the old cookie opens nothing.
    let r = send(
        h.post(format!("{}/org/signout", s.base))
            .header(COOKIE, &org)
            .form(&[("csrf", csrf.as_str())]),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(
        r.cookies
            .iter()
            .any(|c| c.starts_with("etalon_org=;") || c.contains("Max-Age=0")),
        "{:?}",
        r.cookies
    );
    let after = send(h.get(format!("{}/org", s.base)).header(COOKIE, &org)).await;
    assert!(after.body.contains("type=\"password\"") && !after.body.contains("DEMO"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_organisations_pages_are_not_found() {
    for s in servers().await {
        let h = http();
        let (_, key) = s.service.create_org("other").await.unwrap();
        let signed = send(h.post(format!("{}/org/signin", s.base)).form(&[("key", &key)])).await;
        let org = cookie(&signed, "etalon_org");
        for path in [
            "/org/campaigns/example-campaign",
            "/org/campaigns/example-campaign/results.csv",
            "/org/banks/etalon-example",
            "/org/banks/etalon-example/items/q1-1-1",
            "/org/campaigns/new?bank=etalon-example",
        ] {
            let r = send(h.get(format!("{}{path}", s.base)).header(COOKIE, &org)).await;
            assert_eq!(r.status, 404, "{path}");
            assert!(
                !r.body.contains("DEMO") && !r.body.contains("digital literacy"),
                "{path}"
            );
        }
        let dashboard = send(h.get(format!("{}/org", s.base)).header(COOKIE, &org)).await;
        assert!(!dashboard.body.contains("DEMO") && !dashboard.body.contains("etalon-example"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_participants_pages_carry_no_key_and_record_each_answer_once() {
    let s = start(db::TestDb::sqlite()).await;
    let h = http();
    let joined = send(
        h.post(format!("{}/join", s.base))
            .form(&[("code", "demo"), ("participant", "p-1")]),
    )
    .await;
    assert_eq!((joined.status, joined.location.as_str()), (303, "/take"));
    let set = joined
        .cookies
        .iter()
        .find(|c| c.starts_with("etalon_take="))
        .unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    let take = cookie(&joined, "etalon_take");
    let session = take["etalon_take=".len()..]
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let bank = etalon::items::example::example_bank();
    let answered = || async {
        s.service
            .status(
                &session,
                None,
                Some(&s.service.org(Some(&s.demo_key)).await.unwrap()),
            )
            .await
            .unwrap()
            .answered
    };
    for round in 0..6 {
        let page = send(h.get(format!("{}/take", s.base)).header(COOKIE, &take)).await;
        assert_eq!(page.status, 200);
        let item_id = input(&page.body, "item");
        let item = bank.item(&item_id).unwrap();
        // Nothing but the question: no key, no parameter, no other participant.
        let content = item.content.as_ref().unwrap();
        assert!(page.body.contains(&content.prompt));
        let correct = content.correct.unwrap();
        assert!(!page.body.contains("(key)") && !page.body.contains("correct"));
        for (name, value) in item.parameters.named_parameters() {
            assert!(
                !page.body.contains(&format!("{value:.3}")),
                "{name} = {value} leaked"
            );
        }
        assert_eq!(
            page.body.matches("data-").count(),
            page.body.matches("data-once").count() + page.body.matches("data-swap").count(),
            "no data attribute but the form's behaviour (data-once, data-swap)"
        );
        let position = input(&page.body, "position");
        let csrf = input(&page.body, "csrf");
        let n = content.choices.len();
        let choice = ((correct + round % 2) % n).to_string();
        let form = [
            ("csrf", csrf.as_str()),
            ("position", &position),
            ("item", &item_id),
            ("choice", &choice),
        ];
        // A wrong token records nothing.
        let mut forged = form;
        forged[0].1 = "forged";
        let r = send(
            h.post(format!("{}/take", s.base))
                .header(COOKIE, &take)
                .form(&forged),
        )
        .await;
        assert_eq!(r.status, 403);
        assert_eq!(answered().await, round);
        // Sent twice (a double click, a reload of the POST): recorded once, both go on.
        let first = send(
            h.post(format!("{}/take", s.base))
                .header(COOKIE, &take)
                .form(&form),
        )
        .await;
        let second = send(
            h.post(format!("{}/take", s.base))
                .header(COOKIE, &take)
                .form(&form),
        )
        .await;
        assert_eq!(first.status, 303);
        assert_eq!(second.status, 303);
        assert_eq!(answered().await, round + 1);
        // The demo campaign gives feedback: right or wrong, as the key says.
        assert_eq!(first.location, format!("/take?after={}", round + 1));
        let feedback = send(
            h.get(format!("{}{}", s.base, first.location))
                .header(COOKIE, &take),
        )
        .await;
        let right = round % 2 == 0;
        assert!(
            feedback
                .body
                .contains(if right { "Right answer." } else { "Not quite." }),
            "round {round}: {}",
            feedback.body
        );
        if !right {
            for tu in &item.tutorials {
                assert!(
                    feedback.body.contains(&tu.url),
                    "the missed item's tutorial is shown"
                );
            }
        }
        // Another answer at that position (the back button, then another choice): not recorded.
        let other = ((correct + 1 + round % 2) % n).to_string();
        let mut changed = form;
        changed[3].1 = &other;
        let r = send(
            h.post(format!("{}/take", s.base))
                .header(COOKIE, &take)
                .form(&changed),
        )
        .await;
        assert_eq!((r.status, r.location.as_str()), (303, "/take?replayed=true"));
        assert_eq!(answered().await, round + 1);
    }
    // Without the cookie there is no session to see.
    let r = send(h.get(format!("{}/take", s.base))).await;
    assert!(r.body.contains("No assessment in progress"));
    let r = send(
        h.get(format!("{}/result", s.base))
            .header(COOKIE, "etalon_take=nope.ets_forged"),
    )
    .await;
    assert!(r.body.contains("No assessment in progress"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_forms_get_a_4xx_page_never_a_5xx() {
    for s in servers().await {
        eprintln!("bad forms on {}", s.backend);
        let h = http();
        let joined = send(h.post(format!("{}/join", s.base)).form(&[("code", "DEMO")])).await;
        let take = cookie(&joined, "etalon_take");
        let signed = send(
            h.post(format!("{}/org/signin", s.base))
                .form(&[("key", &s.demo_key)]),
        )
        .await;
        let org = cookie(&signed, "etalon_org");
        let long = "x".repeat(5000);
        let cases: Vec<(&str, &str, &str, String)> = vec![
            ("POST", "/join", "", String::new()),
            (
                "POST",
                "/join",
                "application/x-www-form-urlencoded",
                "code=".into(),
            ),
            (
                "POST",
                "/join",
                "application/x-www-form-urlencoded",
                "code=NOPE".into(),
            ),
            (
                "POST",
                "/join",
                "application/x-www-form-urlencoded",
                format!("code={long}"),
            ),
            (
                "POST",
                "/join",
                "application/x-www-form-urlencoded",
                "code=DEMO&participant=%00".into(),
            ),
            ("POST", "/join", "application/json", "{\"code\": \"DEMO\"}".into()),
            (
                "POST",
                "/take",
                "application/x-www-form-urlencoded",
                "position=abc".into(),
            ),
            (
                "POST",
                "/take",
                "application/x-www-form-urlencoded",
                String::new(),
            ),
            (
                "POST",
                "/take",
                "application/x-www-form-urlencoded",
                "position=1&item=x&choice=-1".into(),
            ),
            (
                "POST",
                "/org/signin",
                "application/x-www-form-urlencoded",
                String::new(),
            ),
            ("POST", "/org/signin", "text/plain", "key=x".into()),
            (
                "POST",
                "/org/banks",
                "application/x-www-form-urlencoded",
                "file=x".into(),
            ),
            (
                "POST",
                "/org/banks",
                "multipart/form-data; boundary=zz",
                "--zz\r\nbroken".into(),
            ),
            (
                "POST",
                "/org/campaigns",
                "application/x-www-form-urlencoded",
                "name=x".into(),
            ),
            (
                "POST",
                "/org/campaigns/example-campaign/open",
                "application/x-www-form-urlencoded",
                "open=maybe".into(),
            ),
            ("GET", "/org/banks/%00", "", String::new()),
            ("GET", "/org/campaigns/nope", "", String::new()),
            ("GET", "/org/banks/etalon-example/items/nope", "", String::new()),
            ("GET", "/assets/nope.js", "", String::new()),
            ("GET", "/take?after=99999999999999999999999", "", String::new()),
            ("GET", "/lang/xx", "", String::new()),
        ];
        let before = s.service.store.dump().await.unwrap();
        for (method, path, kind, body) in &cases {
            let mut req = h.request(method.parse().unwrap(), format!("{}{path}", s.base));
            req = req.header(COOKIE, format!("{take}; {org}"));
            if !kind.is_empty() {
                req = req.header(CONTENT_TYPE, *kind);
            }
            let r = send(req.body(body.clone())).await;
            assert!(
                (200..500).contains(&r.status),
                "{method} {path} [{kind}] {body:.40} → {}: {:.300}",
                r.status,
                r.body
            );
        }
        assert_eq!(
            s.service.store.dump().await.unwrap(),
            before,
            "no bad form changed anything"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_campaign_form_offers_the_designs_and_keeps_the_choice_on_an_error() {
    let s = start(db::TestDb::sqlite()).await;
    let h = http();
    let signed = send(
        h.post(format!("{}/org/signin", s.base))
            .form(&[("key", &s.demo_key)]),
    )
    .await;
    let org = cookie(&signed, "etalon_org");
    let form = send(
        h.get(format!("{}/org/campaigns/new?bank=etalon-example", s.base))
            .header(COOKIE, &org),
    )
    .await;
    assert_eq!(form.status, 200);
    // The example bank has no latent structure: no multidimensional option, `auto` chosen.
    assert!(form.body.contains("value=\"general\"") && !form.body.contains("value=\"multidimensional\""));
    assert!(form.body.contains("value=\"auto\" selected"), "{}", form.body);
    let csrf = input(&form.body, "csrf");
    // No target: refused, and the page keeps the design chosen.
    let refused = send(
        h.post(format!("{}/org/campaigns", s.base))
            .header(COOKIE, &org)
            .form(&[
                ("csrf", csrf.as_str()),
                ("bank", "etalon-example"),
                ("name", "x"),
                ("design", "general"),
            ]),
    )
    .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("value=\"general\" selected"),
        "{}",
        refused.body
    );
    // A campaign on competence 1.1 with this design.
    let create = |design: &'static str| {
        send(
            h.post(format!("{}/org/campaigns", s.base))
                .header(COOKIE, &org)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("bank", "etalon-example"),
                    ("name", "one theta"),
                    ("target:1.1", "3"),
                    ("design", design),
                ]),
        )
    };
    // An unknown design is named in the error.
    let unknown = create("tensor").await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("unknown test design"), "{}", unknown.body);
    // A general campaign is created and records its design.
    let made = create("general").await;
    assert_eq!(made.status, 303, "{}", made.body);
    let id = made.location.rsplit('/').next().unwrap().to_string();
    let view = Client::new(&s.base)
        .call("GET", &format!("/v1/campaigns/{id}"), Some(&s.demo_key), None)
        .await;
    assert_eq!(view.json["campaign"]["design"], "general", "{}", view.text);
}
