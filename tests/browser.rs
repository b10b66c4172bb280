//! The web pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`), driven over
//! WebDriver: an organisation signs in, uploads a bank with an error (sees it on its line), uploads a
//! good one and creates a campaign; a participant joins it by code and answers every question with the
//! keyboard only, reloads mid-test and goes on at the same question, double-clicks and goes back
//! without recording twice, finishes and sees a level for every competence; the organisation's live
//! view shows the result without a reload, and the CSV export has it. Every page passes axe-core
//! (no serious or critical violation) and is photographed at desktop and phone widths into
//! `target/screenshots/`. The time from an answer's click to the next question and the weight of a
//! question page are measured and printed.
//!
//! Needs `/usr/bin/chromedriver` and `/usr/bin/chromium`; without them the test says so and passes,
//! unless `ETALON_REQUIRE_BROWSER=1` (as `.ci/run` sets), which makes their absence a failure.

#[path = "common/service.rs"]
mod service;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use service::{Server, db, start};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// axe-core 4.14.1 (MPL-2.0), copied from the npm package (`tests/browser/axe-LICENSE`).
const AXE: &str = include_str!("browser/axe.min.js");

/// A chromedriver process in a process group of its own, with the Chromium it starts: the whole
/// group is killed on drop, so a failing test leaves no browser behind.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Start chromedriver and a headless Chromium session on it (fresh profile, no network but loopback).
async fn browser(profile: &std::path::Path) -> Option<(Driver, Client)> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("ETALON_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "ETALON_REQUIRE_BROWSER=1 but {CHROMEDRIVER} or {CHROMIUM} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED: no {CHROMEDRIVER} / {CHROMIUM}; install chromium and chromium-driver to run the browser tests"
        );
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--lang=en-GB", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {"intl.accept_languages": "en-GB,en"}
        }
    }))
    .expect("capabilities");
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps.clone());
        match builder.connect(&url).await {
            Ok(c) => return Some((driver, c)),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot start a Chromium session: {last:?}");
}

/// What the test carries from page to page: the browser, the server, where screenshots go, and the
/// accessibility verdicts.
struct Tour {
    c: Client,
    base: String,
    shots: PathBuf,
    pages_checked: Vec<String>,
}

impl Tour {
    async fn go(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
        self.loaded().await;
    }

    /// Mark the current document, run `act`, and wait until the next page is there: a new document
    /// loaded, or (the pages' script) the next page's content shown in place.
    async fn navigating<F: std::future::Future<Output = ()>>(&self, act: F) {
        let swaps = self
            .c
            .execute(
                "window.__etalonOld = true; return document.documentElement.getAttribute('data-swaps');",
                vec![],
            )
            .await
            .expect("mark");
        act.await;
        for _ in 0..1000 {
            let fresh = self
                .c
                .execute(
                    "return (window.__etalonOld === undefined && document.readyState === 'complete')
                        || document.documentElement.getAttribute('data-swaps') !== arguments[0];",
                    vec![swaps.clone()],
                )
                .await
                .unwrap_or(Value::Bool(false));
            if fresh == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no new page loaded; still at {:?}", self.c.current_url().await);
    }

    async fn loaded(&self) {
        for _ in 0..400 {
            if self.c.execute("return document.readyState;", vec![]).await.ok() == Some(json!("complete")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("page did not load");
    }

    /// Type `text` into the field `css`.
    async fn type_into(&self, css: &str, text: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .send_keys(text)
            .await
            .expect("keys");
    }

    /// Click `css` and wait for the next page.
    async fn click_to_next(&self, css: &str) {
        self.navigating(async {
            self.c
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
                .click()
                .await
                .expect("click");
        })
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let url = self
            .c
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on {url}: {e}"))
            .text()
            .await
            .expect("text")
    }

    async fn has(&self, css: &str) -> bool {
        !self.c.find_all(Locator::Css(css)).await.expect("find").is_empty()
    }

    async fn keys(&self, keys: &str) {
        self.c
            .active_element()
            .await
            .expect("focused element")
            .send_keys(keys)
            .await
            .expect("keys");
    }

    async fn value(&self, css: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .attr("value")
            .await
            .expect("attr")
            .unwrap_or_default()
    }

    /// axe-core on the current page: no serious or critical violation; then screenshots at desktop
    /// (1280 px) and phone (390 px) widths, each as tall as the page.
    async fn check(&mut self, name: &str) {
        self.c.execute(AXE, vec![]).await.expect("inject axe-core");
        let verdict = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => ({id: v.id, impact: v.impact, help: v.help,
                               nodes: v.nodes.slice(0, 3).map(n => n.html)}))))
                   .catch(e => done([{id: 'axe-error', help: String(e)}]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        assert_eq!(
            verdict,
            json!([]),
            "accessibility violations on page `{name}` ({:?})",
            self.c.current_url().await
        );
        for (width, label) in [(1280u32, "desktop"), (390, "phone")] {
            self.c.set_window_size(width, 900).await.expect("resize");
            let height = self
                .c
                .execute("return document.documentElement.scrollHeight;", vec![])
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(900)
                .clamp(600, 4000) as u32;
            // The window's frame takes a few pixels: ask for the page's height plus a margin.
            self.c.set_window_size(width, height + 100).await.expect("resize");
            let png = self.c.screenshot().await.expect("screenshot");
            std::fs::write(self.shots.join(format!("{name}-{label}.png")), png).expect("write screenshot");
        }
        self.c.set_window_size(1280, 900).await.expect("resize");
        self.pages_checked.push(name.to_string());
    }
}

/// Answer the question on screen with the keyboard only: arrows to the `choice`-th option (space
/// for the first), Tab to the button, Enter. Returns the position answered.
async fn answer_by_keyboard(t: &Tour, choice: usize) -> usize {
    let position: usize = t.value("input[name=position]").await.parse().expect("position");
    // The first option has the focus when the page opens.
    let focused = t.c.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("type").await.expect("attr").as_deref(),
        Some("radio"),
        "the first option has the focus at question {position}"
    );
    let mut keys = String::new();
    if choice == 0 {
        keys.push(' ');
    } else {
        for _ in 0..choice {
            keys.push(char::from(Key::Down));
        }
    }
    t.keys(&keys).await;
    t.keys(&char::from(Key::Tab).to_string()).await;
    let button = t.c.active_element().await.expect("focus");
    assert_eq!(
        button.attr("type").await.expect("attr").as_deref(),
        Some("submit")
    );
    t.navigating(t.keys(&char::from(Key::Enter).to_string())).await;
    position
}

/// Click to next question as the pages' script measured it (from the form's submission to the next
/// question in place: the POST, its redirect, the GET and the new content laid out), and the bytes
/// fetched for it.
async fn swap_timing(t: &Tour) -> (f64, u64) {
    let v =
        t.c.execute(
            "const r = performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch');
             const last = r[r.length - 1];
             return [window.__etalonSwap, last ? last.encodedBodySize : 0];",
            vec![],
        )
        .await
        .expect("timing");
    (v[0].as_f64().unwrap_or(f64::NAN), v[1].as_u64().unwrap_or(0))
}

/// Click to next question without the script, from the Navigation Timing of the page just loaded
/// (navigation start is the form's submission; the POST, its redirect and the GET of the next
/// question are inside), and the bytes the page is made of (HTML, stylesheet, script).
async fn timing(t: &Tour) -> (f64, u64) {
    let v =
        t.c.execute(
            "const n = performance.getEntriesByType('navigation')[0];
             const r = performance.getEntriesByType('resource');
             return [n.loadEventEnd - n.startTime,
                     n.encodedBodySize + r.reduce((s, e) => s + e.encodedBodySize, 0)];",
            vec![],
        )
        .await
        .expect("timing");
    (v[0].as_f64().unwrap_or(f64::NAN), v[1].as_u64().unwrap_or(0))
}

/// Choose a file in the bank upload form and send it.
async fn upload(t: &Tour, path: PathBuf) {
    t.type_into("#bank-file", path.to_str().unwrap()).await;
    t.click_to_next("form[action='/org/banks'] button").await;
}

fn splitmix(state: &mut u64) -> u64 {
    service::splitmix(state)
}

async fn answered(server: &Server, participant: &str) -> usize {
    let dump = server.service.store.dump().await.expect("dump");
    // Rows of the answers table whose session is this participant's.
    let sessions: Vec<String> = dump
        .split("# answers")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains(&format!("\"{participant}\"")))
        .filter_map(|l| l.split('|').next().map(|s| s.trim_matches('"').to_string()))
        .collect();
    let answers = dump
        .split("# answers")
        .nth(1)
        .unwrap_or("")
        .split("# results")
        .next()
        .unwrap_or("");
    answers
        .lines()
        .filter(|l| sessions.iter().any(|s| l.starts_with(&format!("\"{s}\""))))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organisation_and_a_participant_in_a_real_browser() {
    let profile = tempfile::tempdir().expect("profile dir");
    let Some((_driver, client)) = browser(profile.path()).await else {
        return;
    };
    let server = start(db::TestDb::sqlite()).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let mut t = Tour {
        c: client,
        base: server.base.clone(),
        shots: shots.clone(),
        pages_checked: Vec::new(),
    };
    let files = tempfile::tempdir().expect("files");

    // --- The organisation signs in.
    t.go("/org").await;
    assert!(t.has("input#key[type=password]").await);
    t.check("org-sign-in").await;
    t.type_into("#key", "etk_not-a-key").await;
    t.click_to_next("form[action='/org/signin'] button").await;
    assert!(t.text("p.error").await.contains("key"), "a wrong key is refused");
    t.type_into("#key", &server.demo_key).await;
    t.click_to_next("form[action='/org/signin'] button").await;
    assert!(t.text("main h1").await.contains("Organisation space"));
    assert!(
        t.text("main").await.contains("DEMO"),
        "the demo campaign is listed"
    );
    let cookie = t.c.get_named_cookie("etalon_org").await.expect("sign-in cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
    assert!(
        !cookie.value().contains(&server.demo_key),
        "the cookie is not the key"
    );
    t.check("org-dashboard").await;

    // --- A bank with an error on line 3 (a zero slope measures nothing): refused, the problem shown on its line.
    let bad = files.path().join("staff.csv");
    std::fs::write(
        &bad,
        "id,model,a,b,competence\nq1,2pl,1.2,-0.5,1.1\nq2,2pl,0,0.3,1.1\nq3,2pl,0.9,0.8,1.2\n",
    )
    .unwrap();
    upload(&t, bad).await;
    assert!(
        t.text("#upload-error").await.contains("1 problem"),
        "{}",
        t.text("main").await
    );
    let flagged = t.text("table.source tr.bad th").await;
    assert_eq!(flagged, "3", "the problem is on line 3");
    let problem = t.text("table.source tr.problem").await;
    assert!(
        problem.contains("q2") && problem.contains('a'),
        "the problem names the item and field: {problem}"
    );
    t.check("org-bank-upload-error").await;

    // --- A good bank (the example bank under a new id: framework, texts, tutorials).
    let good = files.path().join("staff-2026.json");
    let json =
        etalon::items::example::example_bank()
            .to_json()
            .replacen("\"etalon-example\"", "\"staff-2026\"", 1);
    std::fs::write(&good, json).unwrap();
    upload(&t, good).await;
    assert!(t.text("#stored").await.contains("stored"));
    assert!(t.text("main h1").await.contains("staff-2026"));
    t.check("org-bank").await;
    let first_item = t.c.find(Locator::Css("table tbody th a")).await.unwrap();
    t.navigating(async {
        first_item.click().await.unwrap();
    })
    .await;
    assert_eq!(
        t.c.find_all(Locator::Css("figure.chart svg[role=img]"))
            .await
            .unwrap()
            .len(),
        2,
        "characteristic and information curves"
    );
    t.check("org-item").await;

    // --- A campaign on it: targets per competence, no immediate feedback, a chosen code.
    t.go("/org/campaigns/new?bank=staff-2026").await;
    let targets =
        t.c.find_all(Locator::Css("select[name^='target:']"))
            .await
            .unwrap()
            .len();
    assert!(
        targets >= 16,
        "a target per competence of the framework ({targets})"
    );
    t.check("org-campaign-new").await;
    t.type_into("#name", "Staff 2026").await;
    t.type_into("#join-code", "staff26").await;
    t.click_to_next("form[action='/org/campaigns'] button").await;
    assert_eq!(t.text("#join-code").await, "STAFF26");
    assert!(t.text("#join-link").await.ends_with("/join?code=STAFF26"));
    assert_eq!(t.text("#finished").await, "0");
    t.check("org-campaign-empty").await;
    let live_window = t.c.window().await.unwrap();

    // --- A participant, in another tab, follows the join link and gives an identifier.
    let tab = t.c.new_window(true).await.unwrap();
    t.c.switch_to_window(tab.handle.clone()).await.unwrap();
    t.go("/join?code=STAFF26").await;
    assert_eq!(t.value("#code").await, "STAFF26");
    t.check("participant-join").await;
    t.type_into("#participant", "agent-007").await;
    t.click_to_next("form[action='/join'] button").await;
    let take = t.c.get_named_cookie("etalon_take").await.expect("session cookie");
    assert_eq!(take.http_only(), Some(true));

    // Every question with the keyboard; a reload at question 3, a double click at 5, back at 7.
    let mut rng = 0x5eed_u64;
    let (mut clicks, mut transfers) = (Vec::new(), Vec::new());
    let mut page_bytes = 0;
    let mut max_n = 0;
    let mut shot_question = false;
    loop {
        let url = t.c.current_url().await.unwrap();
        if url.path() == "/result" {
            break;
        }
        let step = t.text("p.step").await;
        let position: usize = t.value("input[name=position]").await.parse().unwrap();
        assert!(
            step.contains(&format!("Question {position} of at most")),
            "{step}"
        );
        max_n = step.rsplit(' ').next().unwrap().parse().unwrap();
        let source = t.c.source().await.unwrap();
        assert!(
            !source.contains("\"correct\"") && !source.contains("data-key") && !source.contains("slope"),
            "no key or parameter reaches the participant"
        );
        if position == 1 {
            // The first question is a page loaded whole: HTML, stylesheet, script.
            page_bytes = timing(&t).await.1;
        } else if position != 4 {
            // The others are shown in place (question 4 follows the reload of question 3, and the
            // double click at 5 is not a person's click).
            let (ms, bytes) = swap_timing(&t).await;
            clicks.push(ms);
            transfers.push(bytes);
        }
        if !shot_question {
            t.check("participant-question").await;
            shot_question = true;
        }
        if position == 3 {
            let item = t.value("input[name=item]").await;
            t.navigating(async {
                t.c.refresh().await.unwrap();
            })
            .await;
            assert_eq!(
                t.value("input[name=position]").await,
                "3",
                "a reload stays at question 3"
            );
            assert_eq!(t.value("input[name=item]").await, item, "… on the same item");
        }
        if position == 5 {
            // Two clicks in a row on the button: one answer recorded.
            t.keys(" ").await;
            t.navigating(async {
                t.c.execute(
                    "const b = document.querySelector('form.question button'); b.click(); b.click(); return true;",
                    vec![],
                )
                .await
                .unwrap();
            })
            .await;
            assert_eq!(
                answered(&server, "agent-007").await,
                5,
                "a double click records once"
            );
            continue;
        }
        let choice = (splitmix(&mut rng) % 3) as usize;
        let done = answer_by_keyboard(&t, choice).await;
        assert_eq!(done, position);
        if position == 7 && t.c.current_url().await.unwrap().path() == "/take" {
            // Back to the page of question 7: the browser asks the server again (no-store) and shows
            // question 8; answering it again is not possible, and nothing is recorded twice.
            t.navigating(async {
                t.c.back().await.unwrap();
            })
            .await;
            assert_eq!(
                t.value("input[name=position]").await,
                "8",
                "back shows where the session is"
            );
            assert_eq!(answered(&server, "agent-007").await, 7);
        }
    }
    let answers = answered(&server, "agent-007").await;
    assert!(
        answers >= 8 && answers <= max_n,
        "{answers} answers of at most {max_n}"
    );

    // The profile: a level for every competence of the campaign.
    assert!(t.text("main h1").await.contains("Your profile"));
    let rows =
        t.c.find_all(Locator::Css("table.profile tbody tr"))
            .await
            .unwrap();
    assert_eq!(rows.len(), targets, "a level for every competence");
    for r in &rows {
        let cells = r.find_all(Locator::Css("td")).await.unwrap();
        let level = cells[0].text().await.unwrap();
        assert!(
            level.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "level shown: {level}"
        );
        let sure = cells[1].text().await.unwrap();
        assert!(
            ["very likely", "likely", "probably", "possibly"]
                .iter()
                .any(|w| sure.starts_with(w)),
            "certainty in words: {sure}"
        );
    }
    assert!(t.has("figure.chart svg[role=img]").await);
    t.check("participant-result").await;

    // --- Back in the organisation's tab: the live view shows the result without a reload.
    t.c.switch_to_window(live_window).await.unwrap();
    let mut seen = String::new();
    for _ in 0..100 {
        seen = t.text("#finished").await;
        if seen == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "1", "the live view counts the finished participant");
    assert!(t.has("#needs tbody tr").await, "training needs are ranked");
    t.check("org-campaign-live").await;
    let csv =
        t.c.execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('#export').href).then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap_or("");
    assert!(csv.lines().count() > targets, "one row per competence: {csv}");
    assert!(
        csv.contains("agent-007"),
        "the CSV export has the participant: {csv}"
    );

    // --- The demo campaign with immediate feedback, in French.
    t.c.switch_to_window(tab.handle.clone()).await.unwrap();
    t.go("/lang/fr?back=/join?code=DEMO").await;
    assert_eq!(
        t.c.execute("return document.documentElement.lang;", vec![])
            .await
            .unwrap(),
        json!("fr")
    );
    assert!(t.text("main h2").await.contains("Rejoindre"));
    t.click_to_next("form[action='/join'] button").await;
    let _ = answer_by_keyboard(&t, 0).await;
    let verdict = t.text("section.feedback h1").await;
    assert!(
        verdict == "Bonne réponse." || verdict == "Pas tout à fait.",
        "{verdict}"
    );
    t.check("participant-feedback-fr").await;
    // The "next question" link has the focus: Enter goes on.
    t.navigating(t.keys(&char::from(Key::Enter).to_string())).await;
    assert_eq!(t.value("input[name=position]").await, "2");
    t.check("participant-question-fr").await;

    // --- Numbers.
    clicks.sort_by(f64::total_cmp);
    let p95 = clicks[((clicks.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)];
    let median = clicks[clicks.len() / 2];
    let heaviest = *transfers.iter().max().unwrap();
    println!(
        "BROWSER {} answers timed: click to next question median {median:.1} ms, p95 {p95:.1} ms; a question page {page_bytes} bytes whole (HTML + CSS + JS), {heaviest} bytes fetched per answer at most; pages checked by axe: {}; screenshots in {}",
        clicks.len(),
        t.pages_checked.join(", "),
        shots.display()
    );
    assert!(
        page_bytes <= 100_000 && heaviest <= 100_000,
        "a question page weighs at most 100 kB: {page_bytes} whole, {heaviest} per answer"
    );
    assert!(
        p95 <= 250.0,
        "click to next question p95 {p95:.1} ms (target 50 ms on a quiet machine)"
    );
    t.c.clone().close().await.unwrap();
}
