//! Property tests of adaptive sessions on the example bank (64 items, 16 competences, skill tags).

use etalon_engine::config::{
    Classification, ContentConfig, Exposure, SelectionConfig, SelectionRule, SessionConfig, StartConfig,
    StoppingConfig,
};
use etalon_engine::estimate::Method;
use etalon_engine::session::{CatEngine, Next, Session, SessionError};
use etalon_engine::simulate::{self, DrawAll};
use etalon_items::{Bank, Status, example::example_bank};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn config(rule: usize, exposure: usize, method: usize, balanced: bool, classify: bool) -> SessionConfig {
    let rule = [
        SelectionRule::Mfi,
        SelectionRule::Mpwi,
        SelectionRule::Kl,
        SelectionRule::Urry,
        SelectionRule::Random,
    ][rule];
    let exposure = [
        Exposure::None,
        Exposure::Randomesque { k: 3 },
        Exposure::SympsonHetter,
        Exposure::Pix,
    ][exposure];
    let method = [Method::Eap, Method::Map, Method::Ml, Method::Wle][method];
    let mut c = SessionConfig {
        selection: SelectionConfig {
            rule,
            exposure,
            ..SelectionConfig::default()
        },
        stopping: StoppingConfig {
            max_items: 20,
            min_items: 3,
            se_target: Some(0.35),
            classification: classify.then(|| Classification {
                cuts: vec![-1.0, 0.0, 1.0],
                confidence: 0.9,
            }),
        },
        start: StartConfig::Random {
            lower: -1.0,
            upper: 1.0,
        },
        ..SessionConfig::default()
    };
    c.estimator.method = method;
    c.estimator.bounds = (-6.0, 6.0);
    if balanced {
        c.content = ContentConfig {
            max_items: ["1.1", "2.1", "3.1"].iter().map(|s| (s.to_string(), 2)).collect(),
            min_items: [("4.1".to_string(), 2)].into_iter().collect(),
            visit_all: true,
            avoid_consecutive: true,
            one_per_tag_prefix: "skill:".into(),
            ..ContentConfig::default()
        };
    }
    c
}

/// A deterministic answer for (item, step) from a seed: correct with probability P(θ).
fn answer(bank: &Bank, id: &str, theta: f64, salt: u64) -> i64 {
    let item = bank.item(id).unwrap();
    let l = item.parameters.logistic().unwrap();
    let p = 1.0 / (1.0 + (-l.a() * (theta - l.b())).exp());
    let h = simulate::derive_seed(salt, id.len() as u64 + id.bytes().map(u64::from).sum::<u64>());
    i64::from((h as f64 / u64::MAX as f64) < p)
}

/// Run to the end, interrupting at step `cut` with a JSON round trip if asked.
fn run(engine: &CatEngine, seed: u64, theta: f64, cut: Option<usize>) -> (Vec<String>, String) {
    let mut s = engine.start(seed);
    let mut step = 0;
    loop {
        if Some(step) == cut {
            let json = serde_json::to_string(&s).unwrap();
            s = serde_json::from_str::<Session>(&json).unwrap();
        }
        match engine.next(&mut s).unwrap() {
            Next::Finished(_) => break,
            Next::Item(id) => {
                let r = answer(engine.bank(), &id, theta, seed);
                engine.record(&mut s, &id, r).unwrap();
            }
        }
        step += 1;
    }
    (
        s.history().iter().map(|r| r.item.clone()).collect(),
        serde_json::to_string(&s).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn resuming_from_json_gives_the_identical_rest(
        rule in 0usize..5, exposure in 0usize..4, method in 0usize..4, balanced in any::<bool>(),
        classify in any::<bool>(), seed in any::<u64>(), theta in -2.5f64..2.5, cut in 0usize..25,
    ) {
        let bank = example_bank();
        let engine = CatEngine::new(&bank, config(rule, exposure, method, balanced, classify)).unwrap();
        let (items, json) = run(&engine, seed, theta, None);
        let (items2, json2) = run(&engine, seed, theta, Some(cut));
        prop_assert_eq!(items, items2);
        prop_assert_eq!(json, json2);
    }

    #[test]
    fn no_item_twice_and_content_constraints_hold(
        rule in 0usize..5, exposure in 0usize..4, seed in any::<u64>(), theta in -2.5f64..2.5,
    ) {
        let bank = example_bank();
        let cfg = config(rule, exposure, 0, true, false);
        let engine = CatEngine::new(&bank, cfg.clone()).unwrap();
        let (items, _) = run(&engine, seed, theta, None);
        let mut seen = std::collections::HashSet::new();
        let mut per_comp: BTreeMap<String, usize> = BTreeMap::new();
        let mut skills = std::collections::HashSet::new();
        let mut last: Option<String> = None;
        let mut consecutive = 0;
        for id in &items {
            prop_assert!(seen.insert(id.clone()), "{id} given twice");
            let item = bank.item(id).unwrap();
            let comp = item.competence.clone().unwrap();
            *per_comp.entry(comp.clone()).or_default() += 1;
            for t in item.tags.iter().filter(|t| t.starts_with("skill:")) {
                prop_assert!(skills.insert(t.clone()), "skill {t} twice");
            }
            if last.as_ref() == Some(&comp) { consecutive += 1; }
            last = Some(comp);
        }
        for (c, &max) in &cfg.content.max_items {
            prop_assert!(per_comp.get(c).copied().unwrap_or(0) <= max, "{c} over its maximum");
        }
        // With 16 competences and at most 20 items, no two consecutive items share a competence.
        prop_assert_eq!(consecutive, 0);
        // visit_all: the first 16 items (or all, if fewer) cover distinct competences.
        let first: std::collections::HashSet<_> = items.iter().take(16).map(|id| bank.item(id).unwrap().competence.clone()).collect();
        prop_assert_eq!(first.len(), items.len().min(16));
        // The minimum of 2 items for 4.1 is met whenever the test ran to max_items.
        if items.len() == cfg.stopping.max_items {
            prop_assert!(per_comp.get("4.1").copied().unwrap_or(0) >= 2);
        }
    }

    #[test]
    fn a_rejected_record_leaves_the_session_byte_identical(seed in any::<u64>(), answers in 0usize..6) {
        let bank = example_bank();
        let engine = CatEngine::new(&bank, config(0, 0, 0, false, false)).unwrap();
        let mut s = engine.start(seed);
        let mut done = Vec::new();
        for _ in 0..answers {
            if let Next::Item(id) = engine.next(&mut s).unwrap() {
                engine.record(&mut s, &id, 0).unwrap();
                done.push(id);
            }
        }
        let Next::Item(pending) = engine.next(&mut s).unwrap() else { return Ok(()) };
        let before = serde_json::to_string(&s).unwrap();
        let other = bank.items().iter().find(|i| i.id != pending && !done.contains(&i.id)).unwrap().id.clone();
        let attempts: Vec<(String, i64)> = vec![
            (other, 1),                         // not offered
            ("no-such-item".into(), 1),          // unknown
            (pending.clone(), 7),               // code the item does not have
            (pending.clone(), -1),
        ];
        for (id, code) in attempts {
            prop_assert!(engine.record(&mut s, &id, code).is_err());
            prop_assert_eq!(&serde_json::to_string(&s).unwrap(), &before);
        }
        if let Some(first) = done.first() {
            let e = engine.record(&mut s, first, 1).unwrap_err();
            prop_assert!(matches!(e, SessionError::AlreadyAnswered(_)));
            prop_assert_eq!(&serde_json::to_string(&s).unwrap(), &before);
        }
        // Asking again returns the same pending item and changes nothing.
        prop_assert_eq!(engine.next(&mut s).unwrap(), Next::Item(pending));
        prop_assert_eq!(&serde_json::to_string(&s).unwrap(), &before);
    }
}

#[test]
fn results_are_identical_for_one_and_two_threads() {
    let bank = example_bank();
    let engine = CatEngine::new(&bank, config(0, 3, 0, true, false)).unwrap();
    let thetas: Vec<f64> = (0..400).map(|i| (i as f64 / 80.0) - 2.5).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| simulate::simulate(&engine, &thetas, 99, &DrawAll).unwrap())
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn a_session_refuses_another_bank_or_config() {
    let bank = example_bank();
    let engine = CatEngine::new(&bank, SessionConfig::default()).unwrap();
    let mut s = engine.start(1);
    let mut other = bank.clone();
    other
        .update_items(|items| items[0].parameters = etalon_items::ItemModel::two_pl(2.0, 0.0).unwrap())
        .unwrap();
    let engine2 = CatEngine::new(&other, SessionConfig::default()).unwrap();
    assert!(matches!(
        engine2.next(&mut s),
        Err(SessionError::WrongBank { .. })
    ));
    let engine3 = CatEngine::new(&bank, config(1, 0, 0, false, false)).unwrap();
    assert!(matches!(engine3.next(&mut s), Err(SessionError::WrongConfig)));
}

#[test]
fn a_session_continues_identically_on_another_engine_of_the_same_bank_and_config() {
    // Engines skip the identity check for the sessions they built or verified; a session handed to
    // another engine with the same bank and configuration is checked once and carries on exactly as
    // on its own engine.
    let bank = example_bank();
    let cfg = config(0, 1, 0, true, false);
    let (a, b) = (
        CatEngine::new(&bank, cfg.clone()).unwrap(),
        CatEngine::new(&bank, cfg).unwrap(),
    );
    let answer = |engine: &CatEngine, s: &mut Session, i: usize| match engine.next(s).unwrap() {
        Next::Item(id) => {
            engine.record(s, &id, i64::from(i.is_multiple_of(3))).unwrap();
            true
        }
        Next::Finished(_) => false,
    };
    let mut alone = a.start(5);
    let mut i = 0;
    while answer(&a, &mut alone, i) {
        i += 1;
    }
    let mut moved = a.start(5);
    for i in 0..5 {
        assert!(answer(&a, &mut moved, i));
    }
    let mut i = 5;
    while answer(&b, &mut moved, i) {
        i += 1;
    }
    assert_eq!(moved, alone);
    assert_eq!(b.result(&moved), a.result(&alone));
    // And back again.
    assert_eq!(a.next(&mut moved), a.next(&mut alone.clone()));
}

#[test]
fn stopping_rules_and_pretest_seeding() {
    let mut bank = example_bank();
    bank.update_items(|items| {
        for i in items.iter_mut().take(4) {
            i.status = Status::Pretest;
        }
        items[4].status = Status::Retired;
    })
    .unwrap();
    let retired = bank.items()[4].id.clone();
    let mut cfg = SessionConfig::default();
    cfg.content.pretest_positions = vec![2, 5];
    cfg.stopping = StoppingConfig {
        max_items: 10,
        min_items: 10,
        se_target: Some(0.01),
        classification: None,
    };
    let engine = CatEngine::new(&bank, cfg).unwrap();
    let mut s = engine.start(5);
    while let Next::Item(id) = engine.next(&mut s).unwrap() {
        assert_ne!(id, retired);
        engine.record(&mut s, &id, 1).unwrap();
    }
    let r = engine.result(&s);
    assert_eq!(r.length, 10, "10 scored items");
    assert_eq!(s.history().len(), 12, "plus two pretest items");
    assert!(!s.history()[1].scored && !s.history()[4].scored);
    assert_eq!(r.reason, Some(etalon_engine::session::StopReason::MaxItems));
    assert!(matches!(
        engine.record(&mut s, "q1-1-1", 1),
        Err(SessionError::Finished(_))
    ));
    // Classification stops earlier than precision for the same person.
    let mut c = SessionConfig::default();
    c.stopping.se_target = Some(0.05);
    c.stopping.classification = Some(Classification {
        cuts: vec![0.0],
        confidence: 0.9,
    });
    let engine = CatEngine::new(&example_bank(), c).unwrap();
    let mut s = engine.start(1);
    while let Next::Item(id) = engine.next(&mut s).unwrap() {
        engine.record(&mut s, &id, 1).unwrap();
    }
    assert_eq!(s.finished(), Some(etalon_engine::session::StopReason::Classified));
}

#[test]
fn invalid_configurations_are_rejected() {
    let bank = example_bank();
    let bad: Vec<(SessionConfig, &str)> = vec![
        (
            SessionConfig {
                stopping: StoppingConfig {
                    max_items: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
            "max_items",
        ),
        (
            SessionConfig {
                stopping: StoppingConfig {
                    min_items: 50,
                    ..Default::default()
                },
                ..Default::default()
            },
            "min_items",
        ),
        (
            SessionConfig {
                selection: SelectionConfig {
                    exposure: Exposure::Randomesque { k: 0 },
                    ..Default::default()
                },
                ..Default::default()
            },
            "k",
        ),
        (
            SessionConfig {
                content: ContentConfig {
                    max_items: [("9.9".into(), 1)].into_iter().collect(),
                    ..Default::default()
                },
                ..Default::default()
            },
            "9.9",
        ),
        (
            SessionConfig {
                start: StartConfig::Fixed { theta: f64::NAN },
                ..Default::default()
            },
            "theta",
        ),
    ];
    for (cfg, needle) in bad {
        let e = CatEngine::new(&bank, cfg).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    assert!(
        serde_json::from_str::<SessionConfig>(r#"{"stopping": {"max_itemz": 3}}"#).is_err(),
        "typos are caught"
    );
}

#[test]
fn corrupt_saved_sessions_are_errors_not_panics() {
    let bank = example_bank();
    let engine = CatEngine::new(&bank, SessionConfig::default()).unwrap();
    let mut s = engine.start(3);
    for _ in 0..3 {
        if let Next::Item(id) = engine.next(&mut s).unwrap() {
            engine.record(&mut s, &id, 1).unwrap();
        }
    }
    let json = serde_json::to_value(&s).unwrap();
    let tamper = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = json.clone();
        f(&mut v);
        serde_json::from_value::<Session>(v)
    };
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<Edit> = vec![
        Box::new(|v| v["history"][0]["category"] = 9.into()),
        Box::new(|v| v["history"][1]["item"] = "nope".into()),
        Box::new(|v| v["history"][2]["response"] = 5.into()),
        Box::new(|v| v["pending"] = "ghost".into()),
    ];
    for f in cases {
        let mut t = tamper(&*f).unwrap();
        assert!(matches!(engine.next(&mut t), Err(SessionError::Corrupt(_))));
        assert!(matches!(
            engine.record(&mut t, "q1-1-1", 1),
            Err(SessionError::Corrupt(_))
        ));
    }
}
