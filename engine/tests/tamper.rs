//! Saved sessions are verified, not trusted: a saved [`Session`] or [`ProfileSession`] is replayed
//! from its seed when resumed, and any edit is either harmless (the very same test goes on) or a
//! located error — never a different test.

use etalon_engine::config::{
    ContentConfig, Exposure, SelectionConfig, SessionConfig, StartConfig, StoppingConfig,
};
use etalon_engine::estimate::Method;
use etalon_engine::profile::{ProfileConfig, ProfileEngine, ProfileSession};
use etalon_engine::session::{CatEngine, Next, Session, SessionError};
use etalon_engine::simulate::derive_seed;
use etalon_items::{Bank, Status, example::example_bank};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The example bank with three pretest items and exposure parameters below 1 (so that Sympson–Hetter
/// sets items aside).
fn bank() -> Bank {
    let mut bank = example_bank();
    bank.update_items(|items| {
        for (j, item) in items.iter_mut().enumerate() {
            item.exposure = Some(if j % 3 == 0 { 0.5 } else { 0.9 });
        }
        for j in [5, 21, 40] {
            items[j].status = Status::Pretest;
        }
    })
    .unwrap();
    bank
}

/// An adaptive test with content balancing, pretest seeding, a random start and the given exposure
/// control.
fn cat_config(exposure: Exposure, method: Method) -> SessionConfig {
    let mut c = SessionConfig {
        selection: SelectionConfig {
            exposure,
            ..SelectionConfig::default()
        },
        content: ContentConfig {
            max_items: ["1.1", "2.1", "3.1"].iter().map(|s| (s.to_string(), 2)).collect(),
            min_items: [("4.1".to_string(), 2), ("5.1".to_string(), 2)]
                .into_iter()
                .collect(),
            visit_all: true,
            avoid_consecutive: true,
            one_per_tag_prefix: "skill:".into(),
            pretest_positions: vec![2, 6],
            ..ContentConfig::default()
        },
        stopping: StoppingConfig {
            max_items: 20,
            min_items: 3,
            se_target: Some(0.4),
            classification: None,
        },
        start: StartConfig::Random {
            lower: -1.0,
            upper: 1.0,
        },
        ..SessionConfig::default()
    };
    c.estimator.method = method;
    c
}

const EXPOSURES: [Exposure; 4] = [
    Exposure::None,
    Exposure::Randomesque { k: 3 },
    Exposure::SympsonHetter,
    Exposure::Pix,
];

static CAT: LazyLock<Vec<CatEngine>> = LazyLock::new(|| {
    let bank = bank();
    EXPOSURES
        .iter()
        .flat_map(|&e| [Method::Eap, Method::Map].map(|m| (e, m)))
        .map(|(e, m)| CatEngine::new(&bank, cat_config(e, m)).unwrap())
        .collect()
});

static PROFILE: LazyLock<Vec<ProfileEngine>> = LazyLock::new(|| {
    let bank = bank();
    [Exposure::None, Exposure::Pix]
        .iter()
        .map(|&e| {
            let mut c = ProfileConfig {
                competences: ["1.1", "1.2", "2.1", "3.1"].map(String::from).to_vec(),
                max_items_per_competence: 4,
                ..ProfileConfig::default()
            };
            c.session.selection.exposure = e;
            ProfileEngine::new(&bank, c).unwrap()
        })
        .collect()
});

/// What a test needs of an engine.
trait Tested {
    type S: Serialize + DeserializeOwned + Clone;
    fn start(&self, seed: u64) -> Self::S;
    fn next(&self, s: &mut Self::S) -> Result<Next, SessionError>;
    fn record(&self, s: &mut Self::S, item: &str, code: i64) -> Result<(), SessionError>;
    fn verify(&self, s: &mut Self::S) -> Result<(), SessionError>;
    fn result(&self, s: &Self::S) -> Value;
    fn bank(&self) -> &Bank;
    /// The top-level fields of a saved session.
    fn fields(&self) -> &'static [&'static str];
}

impl Tested for CatEngine {
    type S = Session;
    fn start(&self, seed: u64) -> Session {
        CatEngine::start(self, seed)
    }
    fn next(&self, s: &mut Session) -> Result<Next, SessionError> {
        CatEngine::next(self, s)
    }
    fn record(&self, s: &mut Session, item: &str, code: i64) -> Result<(), SessionError> {
        CatEngine::record(self, s, item, code).map(|_| ())
    }
    fn verify(&self, s: &mut Session) -> Result<(), SessionError> {
        CatEngine::verify(self, s)
    }
    fn result(&self, s: &Session) -> Value {
        serde_json::to_value(CatEngine::result(self, s)).unwrap()
    }
    fn bank(&self) -> &Bank {
        CatEngine::bank(self)
    }
    fn fields(&self) -> &'static [&'static str] {
        &[
            "schema",
            "bank_id",
            "bank_fingerprint",
            "config",
            "seed",
            "rng",
            "start_theta",
            "pending",
            "history",
            "set_aside",
            "finished",
        ]
    }
}

impl Tested for ProfileEngine {
    type S = ProfileSession;
    fn start(&self, seed: u64) -> ProfileSession {
        ProfileEngine::start(self, seed)
    }
    fn next(&self, s: &mut ProfileSession) -> Result<Next, SessionError> {
        ProfileEngine::next(self, s)
    }
    fn record(&self, s: &mut ProfileSession, item: &str, code: i64) -> Result<(), SessionError> {
        ProfileEngine::record(self, s, item, code).map(|_| ())
    }
    fn verify(&self, s: &mut ProfileSession) -> Result<(), SessionError> {
        ProfileEngine::verify(self, s)
    }
    fn result(&self, s: &ProfileSession) -> Value {
        serde_json::to_value(ProfileEngine::result(self, s)).unwrap()
    }
    fn bank(&self) -> &Bank {
        ProfileEngine::bank(self)
    }
    fn fields(&self) -> &'static [&'static str] {
        &[
            "schema",
            "bank_id",
            "bank_fingerprint",
            "competences",
            "sessions",
            "order",
            "pending",
        ]
    }
}

/// A random response pattern: the code of each item follows from the salt and the item alone, so two
/// runs that meet the same item answer it alike.
fn respond(bank: &Bank, salt: u64, id: &str) -> i64 {
    let codes = bank.item(id).unwrap().response_codes();
    let h = derive_seed(
        salt,
        id.bytes()
            .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    codes[(h % codes.len() as u64) as usize]
}

/// Answer until the end; the items administered, the result and the final state.
fn finish<E: Tested>(e: &E, s: &mut E::S, salt: u64) -> Result<(Vec<String>, Value, Value), SessionError> {
    let mut items = Vec::new();
    while let Next::Item(id) = e.next(s)? {
        e.record(s, &id, respond(e.bank(), salt, &id))?;
        items.push(id);
    }
    Ok((items, e.result(s), serde_json::to_value(&*s).unwrap()))
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every node below the root, by path.
fn nodes(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(Step::Key(k.clone()));
                out.push(path.clone());
                nodes(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(Step::Index(i));
                out.push(path.clone());
                nodes(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(v, |v, s| match s {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn show(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Corrupt one node of `v`, chosen by `pick` (three times in four among the state, outside the
/// configurations), in a way chosen by `how`; `x` in [0, 1) gives the amounts. Returns a description.
fn corrupt(v: &mut Value, bank: &Bank, pick: u64, how: u64, x: f64) -> String {
    let mut all = Vec::new();
    nodes(v, &mut Vec::new(), &mut all);
    let state: Vec<Vec<Step>> = all
        .iter()
        .filter(|p| !p.contains(&Step::Key("config".into())))
        .cloned()
        .collect();
    let pool = if pick.is_multiple_of(4) || state.is_empty() {
        &all
    } else {
        &state
    };
    let path = pool[((pick / 4) % pool.len() as u64) as usize].clone();
    let (parent, last) = path.split_at(path.len() - 1);
    let item_id = bank.items()[(x * bank.len() as f64) as usize % bank.len()]
        .id
        .clone();
    // Removing a field is one of the corruptions of any object member.
    if matches!(last[0], Step::Key(_)) && how % 8 == 7 {
        let Step::Key(k) = &last[0] else { unreachable!() };
        at(v, parent).as_object_mut().unwrap().remove(k);
        return format!("removed {}", show(&path));
    }
    let node = at(v, &path);
    let what = match node {
        Value::Number(n) if n.is_u64() || n.is_i64() => {
            let i = n.as_i64().unwrap_or(i64::MAX);
            let new: Value = match how % 5 {
                0 => (i.wrapping_add(1)).into(),
                1 => (i.wrapping_sub(1)).into(),
                2 => (i.wrapping_mul(2)).into(),
                3 => 0.into(),
                _ => u64::MAX.into(),
            };
            *node = new;
            "integer"
        }
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            let new = match how % 6 {
                0 => f + (x - 0.5) * 4.0,
                1 => f * (1.0 + 1e-12),
                2 => 5.0,
                3 => -f,
                4 => 0.0,
                _ => f + 1e-6,
            };
            *node = serde_json::json!(new);
            "number"
        }
        Value::String(s) => {
            *node = match how % 5 {
                0 => format!("{s}x").into(),
                1 | 2 => item_id.into(),
                3 => "precision".into(),
                _ => "".into(),
            };
            "string"
        }
        Value::Bool(b) => {
            *b = !*b;
            "boolean"
        }
        Value::Null => {
            *node = match how % 4 {
                0 | 1 => item_id.into(),
                2 => "max-items".into(),
                _ => 0.into(),
            };
            "null"
        }
        Value::Array(a) => {
            match how % 6 {
                0 => {
                    a.pop();
                }
                1 if !a.is_empty() => a.push(a[a.len() - 1].clone()),
                2 if a.len() >= 2 => {
                    let last = a.len() - 1;
                    a.swap(0, last);
                }
                3 if !a.is_empty() => {
                    a.remove(0);
                }
                4 => a.push(item_id.into()),
                _ => a.push(0.into()),
            }
            "array"
        }
        Value::Object(m) => {
            m.insert("extra".into(), 1.into());
            "object"
        }
    };
    format!("{what} at {}", show(&path))
}

/// Outcomes over the run, printed at the end of the property (`--nocapture`).
#[derive(Default)]
struct Tally {
    cases: AtomicUsize,
    unreadable: AtomicUsize,
    refused: AtomicUsize,
    identical: AtomicUsize,
    earlier: AtomicUsize,
}

/// The error names the field at fault: a typed error about the bank, configuration or format, or a
/// `Corrupt` message that starts with a path into the saved session.
fn located(e: &SessionError, fields: &[&str]) -> Result<(), String> {
    match e {
        SessionError::WrongBank { .. } | SessionError::WrongConfig | SessionError::Schema { .. } => Ok(()),
        SessionError::Corrupt(m) => {
            let path = m.split(": ").next().unwrap_or("");
            let top = path.split(['.', '[']).next().unwrap_or("");
            if fields.contains(&top) && !m[path.len()..].trim_start_matches(": ").is_empty() {
                Ok(())
            } else {
                Err(format!("the error does not name a field of the session: {m}"))
            }
        }
        other => Err(format!("not a located error: {other:?}")),
    }
}

/// Run to `cut` answers (and ask for the next item if `ask`), save, corrupt, resume; compare with the
/// uncorrupted continuation.
/// One generated case: the seed and answer pattern, where to save, and what to corrupt.
struct Case {
    seed: u64,
    salt: u64,
    cut: usize,
    ask: bool,
    pick: u64,
    how: u64,
    x: f64,
}

fn tamper<E: Tested>(e: &E, case: &Case, tally: &Tally) -> Result<(), TestCaseError> {
    let &Case {
        seed,
        salt,
        cut,
        ask,
        pick,
        how,
        x,
    } = case;
    let mut s = e.start(seed);
    let mut answered = 0;
    while answered < cut {
        let Next::Item(id) = e.next(&mut s).unwrap() else {
            break;
        };
        e.record(&mut s, &id, respond(e.bank(), salt, &id)).unwrap();
        answered += 1;
    }
    if ask {
        e.next(&mut s).unwrap();
    }
    let saved = serde_json::to_value(&s).unwrap();
    let expected = finish(e, &mut s.clone(), salt).unwrap();
    // A faithful save resumes to the same test.
    let mut clean: E::S = serde_json::from_value(saved.clone()).unwrap();
    e.verify(&mut clean).unwrap();
    prop_assert_eq!(&finish(e, &mut clean, salt).unwrap(), &expected);

    let mut bad = saved.clone();
    let what = corrupt(&mut bad, e.bank(), pick, how, x);
    tally.cases.fetch_add(1, Ordering::Relaxed);
    let Ok(mut t) = serde_json::from_value::<E::S>(bad) else {
        tally.unreadable.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    match e.verify(&mut t) {
        Err(err) => {
            located(&err, e.fields()).map_err(|m| TestCaseError::fail(format!("{what}: {m}")))?;
            if std::env::var_os("TAMPER_SHOW").is_some() {
                eprintln!("{what} -> {err}");
            }
            tally.refused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(()) => {
            let got = finish(e, &mut t, salt)
                .map_err(|err| TestCaseError::fail(format!("{what}: accepted, then {err}")))?;
            prop_assert_eq!(&got.1, &expected.1, "{}: accepted but another result", what);
            prop_assert_eq!(&got.2, &expected.2, "{}: accepted but another final state", what);
            if got.0 == expected.0 {
                tally.identical.fetch_add(1, Ordering::Relaxed);
            } else {
                // The last answers cut off a session that had nothing pending: that is a genuine
                // earlier state of the same test (what restoring an older save gives), so its
                // continuation asks those items again, then goes on exactly as the uncorrupted one.
                prop_assert!(got.0.ends_with(&expected.0), "{}: accepted but other items", what);
                tally.earlier.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

#[test]
fn a_corrupted_save_resumes_identically_or_is_a_located_error() {
    // TAMPER_CASES=N runs more cases (the default keeps the suite quick).
    let cases = std::env::var("TAMPER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        any::<bool>(),
        0usize..8,
        any::<u64>(),
        any::<u64>(),
        0usize..30,
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        0.0f64..1.0,
    );
    let tally = Tally::default();
    let clock = std::time::Instant::now();
    runner
        .run(
            &strategy,
            |(profile, engine, seed, salt, cut, ask, pick, how, x)| {
                let case = Case {
                    seed,
                    salt,
                    cut,
                    ask,
                    pick,
                    how,
                    x,
                };
                if profile {
                    tamper(&PROFILE[engine % PROFILE.len()], &case, &tally)
                } else {
                    tamper(&CAT[engine], &case, &tally)
                }
            },
        )
        .unwrap();
    let n = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    eprintln!(
        "tamper: {} corrupted saves in {:.1?}: {} unreadable, {} refused with a located error, {} resumed \
         identically, {} resumed as a genuine earlier state of the same test",
        n(&tally.cases),
        clock.elapsed(),
        n(&tally.unreadable),
        n(&tally.refused),
        n(&tally.identical),
        n(&tally.earlier)
    );
    assert!(n(&tally.cases) >= cases as usize);
    assert!(n(&tally.refused) > 0 && n(&tally.identical) > 0 && n(&tally.unreadable) > 0);
}

/// A session of `n` answers on the first adaptive engine (no exposure control).
fn answered(n: usize) -> (&'static CatEngine, Value) {
    let e = &CAT[0];
    let mut s = e.start(7);
    for _ in 0..n {
        let Next::Item(id) = e.next(&mut s).unwrap() else {
            panic!("the test ended early")
        };
        e.record(&mut s, &id, respond(e.bank(), 1, &id)).unwrap();
    }
    (e, serde_json::to_value(&s).unwrap())
}

fn refused(e: &CatEngine, v: Value) -> String {
    let mut s: Session = serde_json::from_value(v).unwrap();
    let err = e.next(&mut s).unwrap_err();
    assert!(matches!(err, SessionError::Corrupt(_)), "{err:?}");
    // The same error on every call: nothing was accepted.
    assert_eq!(e.record(&mut s, "q1-1-1", 1).unwrap_err(), err);
    err.to_string()
}

#[test]
fn an_edited_theta_is_named_with_its_position_and_both_values() {
    let (e, mut v) = answered(5);
    let recomputed = v["history"][3]["theta"].as_f64().unwrap();
    v["history"][3]["theta"] = 5.0.into();
    let m = refused(e, v);
    assert!(
        m.contains(&format!("history[3].theta: stored 5, recomputed {recomputed}")),
        "{m}"
    );
}

#[test]
fn explicit_rejections_name_the_field() {
    let (e, v) = answered(6);
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut w = v.clone();
        f(&mut w);
        refused(e, w)
    };
    let first = v["history"][0]["item"].clone();
    // An active item not answered (not offered at any point of this session).
    let used: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_str().unwrap())
        .collect();
    let unused = e
        .bank()
        .items()
        .iter()
        .rev()
        .find(|i| i.status == Status::Active && !used.contains(&i.id.as_str()))
        .unwrap()
        .id
        .clone();
    let (u1, u2, u3) = (unused.clone(), unused.clone(), unused.clone());
    let never = format!("history[4].item: `{unused}` was never offered");
    let pending = format!("pending: stored `{unused}`");
    type Edit<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let cases: Vec<(Edit<'_>, &str)> = vec![
        // Duplicate item.
        (
            Box::new(|w| w["history"][3]["item"] = first.clone()),
            "history[3].item: `",
        ),
        // A bank item never offered at that point.
        (
            Box::new(move |w| w["history"][4]["item"] = u1.clone().into()),
            &never,
        ),
        // Impossible category, impossible response.
        (
            Box::new(|w| w["history"][1]["category"] = 2.into()),
            "history[1].category",
        ),
        (
            Box::new(|w| w["history"][1]["response"] = 3.into()),
            "history[1].response",
        ),
        // The scored flag of an active item.
        (
            Box::new(|w| w["history"][2]["scored"] = false.into()),
            "history[2].scored",
        ),
        // The all-zero RNG state.
        (
            Box::new(|w| w["rng"]["s"] = serde_json::json!([0, 0, 0, 0])),
            "rng: the all-zero state",
        ),
        // Another RNG state.
        (Box::new(|w| w["rng"]["s"][2] = 12345.into()), "rng: stored state"),
        // A finished flag the stopping rules do not give.
        (
            Box::new(|w| w["finished"] = "precision".into()),
            "finished: stored precision",
        ),
        // A pending item the engine does not offer.
        (Box::new(move |w| w["pending"] = u2.clone().into()), &pending),
        (
            Box::new(move |w| w["set_aside"] = serde_json::json!([u3.clone()])),
            "set_aside",
        ),
        (Box::new(|w| w["start_theta"] = 0.25.into()), "start_theta"),
    ];
    for (f, needle) in cases {
        let m = edit(&*f);
        assert!(m.contains(needle), "expected `{needle}` in: {m}");
    }
    // A history longer than the test allows (20 scored items, 2 pretest positions).
    let mut long = v.clone();
    let record = long["history"][0].clone();
    long["history"] = Value::Array(vec![record; 23]);
    let m = refused(e, long);
    assert!(m.contains("history: 23 answers"), "{m}");
}

#[test]
fn a_finished_flag_must_follow_from_the_stopping_rules() {
    // Run a test to its end: the stored reason is verified, and a changed reason is refused.
    let e = &CAT[0];
    let mut s = e.start(11);
    finish(e, &mut s, 3).unwrap();
    let reason = s.finished().unwrap();
    let mut v = serde_json::to_value(&s).unwrap();
    let mut ok: Session = serde_json::from_value(v.clone()).unwrap();
    e.verify(&mut ok).unwrap();
    assert_eq!(ok, s);
    let other = if reason.name() == "max-items" {
        "precision"
    } else {
        "max-items"
    };
    v["finished"] = other.into();
    let m = refused(e, v);
    assert!(
        m.contains(&format!(
            "finished: stored {other}, but the stopping rules give {}",
            reason.name()
        )),
        "{m}"
    );
}

#[test]
fn profile_sessions_are_replayed_with_their_routing() {
    let e = &PROFILE[0];
    let mut s = e.start(5);
    for _ in 0..6 {
        let Next::Item(id) = e.next(&mut s).unwrap() else {
            panic!()
        };
        e.record(&mut s, &id, respond(e.bank(), 2, &id)).unwrap();
    }
    let v = serde_json::to_value(&s).unwrap();
    let check = |f: &dyn Fn(&mut Value), needle: &str| {
        let mut w = v.clone();
        f(&mut w);
        let mut t: ProfileSession = serde_json::from_value(w).unwrap();
        let m = e.next(&mut t).unwrap_err().to_string();
        assert!(m.contains(needle), "expected `{needle}` in: {m}");
    };
    // Swapping two answers of the order: the routing rule gives another competence.
    check(
        &|w| {
            let a = w["order"][0].clone();
            w["order"][0] = w["order"][1].clone();
            w["order"][1] = a;
        },
        "order[0]: stored competence",
    );
    check(
        &|w| w["sessions"][1]["history"][0]["theta"] = 5.0.into(),
        "sessions[1].history[0].theta: stored 5",
    );
    check(
        &|w| w["sessions"][2]["finished"] = "classified".into(),
        "sessions[2].finished",
    );
    check(&|w| w["order"].as_array_mut().unwrap().push(0.into()), "order: ");
    check(&|w| w["sessions"][0]["rng"]["s"][0] = 1.into(), "sessions[0].rng");
    // An intact save resumes to the same state.
    let mut t: ProfileSession = serde_json::from_value(v.clone()).unwrap();
    e.verify(&mut t).unwrap();
    assert_eq!(t, s);
}

#[test]
fn verified_sessions_continue_exactly_as_the_uninterrupted_ones() {
    // Every engine, every cut: a verified resume gives the same items, result and final state.
    let engines: Vec<&CatEngine> = CAT.iter().collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, e) in engines.into_iter().enumerate() {
        let mut full = e.start(k as u64);
        let expected = finish(e, &mut full, 9).unwrap();
        for cut in 0..=expected.0.len() {
            let mut s = e.start(k as u64);
            for _ in 0..cut {
                let Next::Item(id) = e.next(&mut s).unwrap() else {
                    break;
                };
                e.record(&mut s, &id, respond(e.bank(), 9, &id)).unwrap();
            }
            let mut t: Session = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            e.verify(&mut t).unwrap();
            let (_, result, state) = finish(e, &mut t, 9).unwrap();
            assert_eq!((&result, &state), (&expected.1, &expected.2), "cut {cut}");
            *counts.entry("resumed").or_default() += 1;
        }
    }
    assert!(counts["resumed"] > 8 * 5);
}
