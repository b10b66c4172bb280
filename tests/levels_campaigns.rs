//! Levels, competence profiles and campaigns: level boundaries and probabilities, `score --levels`,
//! a report checked by hand, truncated results, the SVG chart, and SE versus classification stopping.

mod common;
use common::*;
use etalon::assessment::campaign::{
    self, Campaign, CampaignSpec, ParticipantCompetence, ParticipantResult, Target,
};
use etalon::engine::levels::{LevelMap, Levels};
use etalon::engine::profile::{ProfileConfig, ProfileEngine};
use etalon::engine::simulate::derive_seed;
use etalon::items::{Bank, Competence, Content, Domain, Framework, Item, ItemModel, Provenance, Tutorial};
use proptest::prelude::*;
use std::collections::BTreeMap;

proptest! {
    #[test]
    fn levels_are_monotone_and_probabilities_sum_to_one(a in -6.0f64..6.0, b in -6.0f64..6.0, se in 0.01f64..3.0) {
        let m = LevelMap::pix();
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(m.level(lo) <= m.level(hi));
        prop_assert!(m.score(lo) <= m.score(hi));
        let p = m.probabilities(a, se);
        prop_assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        prop_assert!(p.iter().all(|&x| (0.0..=1.0).contains(&x)));
    }
}

#[test]
fn theta_exactly_on_a_cut_belongs_to_the_upper_level() {
    let m = LevelMap::new(
        vec![-1.0, 0.0, 1.0],
        vec!["a".into(), "b".into(), "c".into(), "d".into()],
    )
    .unwrap();
    assert_eq!((m.level(-1.0), m.level(0.0), m.level(1.0)), (1, 2, 3));
    assert_eq!((m.level(-1.0 - 1e-12), m.level(1.0 - 1e-12)), (0, 2));
    // Per-competence overrides.
    let l: Levels = serde_json::from_str(r#"{"cuts": [0], "labels": ["low", "high"], "competences": {"x": {"cuts": [1], "labels": ["l", "h"]}}}"#).unwrap();
    assert_eq!(l.for_competence("x").level(0.5), 0);
    assert_eq!(l.for_competence("y").level(0.5), 1);
}

#[test]
fn score_with_levels_adds_columns_and_rejects_bad_maps() {
    let dir = tempfile::tempdir().unwrap();
    let bank = dir.path().join("b.csv");
    let src = reference().join("mirt/LSAT7_2PL.csv");
    json_out(&etalon(&[
        "bank",
        "convert",
        "--from",
        "mirt",
        "--model",
        "2pl",
        src.to_str().unwrap(),
        bank.to_str().unwrap(),
    ]));
    let levels = dir.path().join("levels.json");
    std::fs::write(
        &levels,
        r#"{"cuts": [-1, 0, 1], "labels": ["low", "mid-low", "mid-high", "high"]}"#,
    )
    .unwrap();
    let out = dir.path().join("s.csv");
    let data = reference().join("data/LSAT7.csv");
    let args = |l: &str| {
        etalon(&[
            "score",
            "--bank",
            bank.to_str().unwrap(),
            "--responses",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--levels",
            l,
        ])
    };
    json_out(&args(levels.to_str().unwrap()));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("person,theta,se,level,label,level_probability")
    );
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let theta: f64 = f[1].parse().unwrap();
        let level: usize = f[3].parse().unwrap();
        assert_eq!(level, [-1.0, 0.0, 1.0].iter().filter(|&&c| c <= theta).count());
        assert_eq!(f[4], ["low", "mid-low", "mid-high", "high"][level]);
        let p: f64 = f[5].parse().unwrap();
        assert!(p > 0.0 && p <= 1.0);
    }
    std::fs::write(&levels, r#"{"cuts": [0, -1], "labels": ["a", "b", "c"]}"#).unwrap();
    assert_fails_with(
        &args(levels.to_str().unwrap()),
        &["levels.json", "strictly increasing"],
    );
    std::fs::write(&levels, r#"{"cuts": [0, 1], "labels": ["a", "b"]}"#).unwrap();
    assert_fails_with(&args(levels.to_str().unwrap()), &["labels"]);
}

fn pc(theta: f64, level: usize) -> ParticipantCompetence {
    ParticipantCompetence {
        theta,
        se: 0.3,
        level,
        label: String::new(),
        items: 4,
        true_theta: None,
    }
}

#[test]
fn report_matches_a_hand_computed_case() {
    let bank = etalon::items::example::example_bank();
    let c = Campaign::new(CampaignSpec {
        id: "t".into(),
        name: "t".into(),
        bank: None,
        targets: vec![
            Target {
                competence: "1.1".into(),
                target_level: 3,
            },
            Target {
                competence: "4.1".into(),
                target_level: 5,
            },
        ],
        simulated_correlation: 0.5,
        assessment: ProfileConfig::default(),
        feedback: false,
        design: Default::default(),
    })
    .unwrap();
    let people = [
        (-1.2, 2, 0.6, 5),
        (0.1, 4, 1.4, 6),
        (-2.0, 1, -0.4, 3),
        (0.7, 5, 0.6, 5),
    ];
    let results: Vec<ParticipantResult> = people
        .iter()
        .enumerate()
        .map(|(i, &(t1, l1, t4, l4))| ParticipantResult {
            campaign: None,
            participant: format!("P{i}"),
            competences: BTreeMap::from([("1.1".to_string(), pc(t1, l1)), ("4.1".to_string(), pc(t4, l4))]),
            score: 0.0,
        })
        .collect();
    let r = campaign::report(&c, &bank, &results, None).unwrap();
    assert_eq!(r.participants, 4);
    let c11 = &r.competences[0];
    assert_eq!(c11.level_counts, vec![0, 1, 1, 0, 1, 1, 0, 0, 0]);
    assert!((c11.mean_theta - (-1.2 + 0.1 - 2.0 + 0.7) / 4.0).abs() < 1e-12);
    assert_eq!(c11.share_below_target, 0.5); // levels 2 and 1 are below 3
    let c41 = &r.competences[1];
    assert_eq!(c41.level_counts, vec![0, 0, 0, 1, 0, 2, 1, 0, 0]);
    assert_eq!(c41.share_below_target, 0.25);
    assert_eq!(c11.name, "Search for information and follow it over time");
    assert!(!c11.tutorials.is_empty());
    // Sample SD of 1.1's θ̂: hand-computed 95% interval.
    let mean = -0.6;
    let sd = ((0.36f64 + 0.49 + 1.96 + 1.69) / 3.0).sqrt();
    assert!((c11.mean_theta_ci[0] - (mean - 1.96 * sd / 2.0)).abs() < 1e-12);
    assert_eq!(r.training_needs, vec!["1.1", "4.1"]);
}

#[test]
fn campaign_cli_round_trip_truncated_results_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let camp = dir.path().join("campaign.json");
    let results = dir.path().join("results.jsonl");
    let report = dir.path().join("report.json");
    let svg = dir.path().join("chart.svg");
    let p = |x: &std::path::Path| x.to_string_lossy().into_owned();
    json_out(&etalon(&["campaign", "example", "--out", &p(&camp)]));
    let s = json_out(&etalon(&[
        "campaign",
        "run",
        "--campaign",
        &p(&camp),
        "--participants",
        "60",
        "--seed",
        "3",
        "--out",
        &p(&results),
    ]));
    assert_eq!(s["participants"], 60);
    // Appending continues the numbering.
    let s2 = json_out(&etalon(&[
        "campaign",
        "run",
        "--campaign",
        &p(&camp),
        "--participants",
        "5",
        "--out",
        &p(&results),
    ]));
    assert_eq!(s2["first_participant"], "P61");
    let text = std::fs::read_to_string(&results).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["participant"], "P1");
    for key in ["theta", "se", "level", "label", "items", "true_theta"] {
        assert!(
            first["competences"]["1.1"].get(key).is_some(),
            "result line lacks {key}"
        );
    }
    // A crash while writing leaves a truncated last line: skipped and counted.
    let mut truncated = text.clone();
    truncated.push_str(&text.lines().next().unwrap()[..40]);
    std::fs::write(&results, &truncated).unwrap();
    let r = json_out(&etalon(&[
        "campaign",
        "report",
        &p(&results),
        "--campaign",
        &p(&camp),
        "--out",
        &p(&report),
        "--svg",
        &p(&svg),
    ]));
    assert_eq!(r["participants"], 65);
    assert_eq!(r["skipped_lines"], 1);
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["competences"].as_array().unwrap().len(), 16);
    for key in [
        "id",
        "name",
        "target_level",
        "level_counts",
        "mean_theta",
        "share_below_target",
        "tutorials",
    ] {
        assert!(rep["competences"][0].get(key).is_some(), "report lacks {key}");
    }
    assert_eq!(rep["training_needs"].as_array().unwrap().len(), 16);
    // The chart is XML naming every competence.
    let chart = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&chart).expect("the SVG is well-formed XML");
    let texts: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n");
    for c in etalon::items::example::example_bank().framework().competences() {
        assert!(texts.contains(&c.name), "chart lacks {}", c.name);
    }
    // A corrupt line in the middle is an error naming it.
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{not json";
    std::fs::write(&results, lines.join("\n")).unwrap();
    assert_fails_with(
        &etalon(&[
            "campaign",
            "report",
            &p(&results),
            "--campaign",
            &p(&camp),
            "--out",
            &p(&report),
        ]),
        &["line 3"],
    );
}

/// A synthetic bank: `n_comp` competences × `per` 2PL items (a in [1, 2], b spread over [-3, 3]).
pub fn synthetic_bank(n_comp: usize, per: usize) -> Bank {
    let competences: Vec<Competence> = (1..=n_comp)
        .map(|c| Competence {
            id: format!("c{c}"),
            name: format!("Competence {c}"),
            description: None,
        })
        .collect();
    let framework = Framework {
        id: "f".into(),
        name: "f".into(),
        domains: vec![Domain {
            id: "d".into(),
            name: "d".into(),
            competences,
        }],
    };
    let mut items = Vec::new();
    for c in 1..=n_comp {
        for k in 0..per {
            let b = -3.0 + 6.0 * (k as f64 + 0.5) / per as f64;
            let a = 1.0 + ((k * 7 + c * 3) % 10) as f64 / 10.0;
            let mut it = Item::new(format!("c{c}-{k}"), ItemModel::two_pl(a, b).unwrap())
                .with_competence(format!("c{c}"));
            it.tutorials = vec![Tutorial {
                title: format!("t{c}-{k}"),
                url: format!("https://etalon.example/{c}/{k}"),
            }];
            it.content = Some(Content {
                prompt: "q".into(),
                choices: vec!["x".into(), "y".into()],
                correct: Some(0),
            });
            items.push(it);
        }
    }
    Bank::new("synthetic", framework, items, Provenance::default()).unwrap()
}

/// Exact-level agreement and mean items per competence of `n` simulated participants.
fn study(bank: &Bank, classify: Option<f64>, se: Option<f64>, max: usize, n: usize) -> (f64, f64) {
    let mut config = ProfileConfig {
        max_items_per_competence: max,
        min_items_per_competence: 2,
        classify: classify.is_some(),
        confidence: classify.unwrap_or(0.8),
        ..ProfileConfig::default()
    };
    config.session.stopping.se_target = se;
    let c = Campaign::new(CampaignSpec {
        id: "s".into(),
        name: "s".into(),
        bank: None,
        targets: (1..=4)
            .map(|k| Target {
                competence: format!("c{k}"),
                target_level: 4,
            })
            .collect(),
        simulated_correlation: 0.5,
        assessment: config.clone(),
        feedback: false,
        design: Default::default(),
    })
    .unwrap();
    let assessor = etalon::assessment::Assessor::new(bank, c.design(bank).unwrap()).unwrap();
    let (mut agree, mut items, mut cells) = (0usize, 0usize, 0usize);
    for i in 0..n {
        let r = campaign::simulate_participant(&assessor, &c, &format!("P{i}"), derive_seed(42, i as u64))
            .unwrap();
        for comp in r.competences.values() {
            agree += usize::from(LevelMap::pix().level(comp.true_theta.unwrap()) == comp.level);
            items += comp.items;
            cells += 1;
        }
    }
    (agree as f64 / cells as f64, items as f64 / cells as f64)
}

#[test]
fn classification_stopping_classifies_as_well_with_fewer_items() {
    let bank = synthetic_bank(4, 40);
    // ETALON_STUDY=1 prints the trade-off curves (agreement against items) these settings come from.
    if std::env::var("ETALON_STUDY").is_ok() {
        for max in [10, 15, 20] {
            for se in [0.3, 0.35, 0.4, 0.45, 0.5] {
                let (a, i) = study(&bank, None, Some(se), max, 600);
                eprintln!("max {max} SE {se}: agreement {a:.3} items {i:.2}");
            }
            for conf in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
                let (a, i) = study(&bank, Some(conf), None, max, 600);
                eprintln!("max {max} classify {conf}: agreement {a:.3} items {i:.2}");
            }
        }
    }
    // PIX bands are 0.75 logit wide: an 80% interval fits in one only when SE < 0.29, so compare at 60%.
    let (agree_se, items_se) = study(&bank, None, Some(0.35), 20, 600);
    let (agree_cl, items_cl) = study(&bank, Some(0.6), None, 20, 600);
    eprintln!(
        "SE stopping: agreement {agree_se:.3}, {items_se:.2} items; classification: {agree_cl:.3}, {items_cl:.2} items"
    );
    assert!(
        agree_cl >= agree_se - 0.01,
        "classification agreement {agree_cl} < SE agreement {agree_se}"
    );
    assert!(
        items_cl < items_se,
        "classification used {items_cl} items, SE {items_se}"
    );
}

#[test]
fn profile_sessions_resume_from_json() {
    let bank = synthetic_bank(3, 20);
    let engine = ProfileEngine::new(&bank, ProfileConfig::default()).unwrap();
    let run = |cut: Option<usize>| {
        let mut s = engine.start(9);
        let mut n = 0;
        while let etalon::engine::session::Next::Item(id) = engine.next(&mut s).unwrap() {
            if Some(n) == cut {
                s = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            }
            let b = bank.item(&id).unwrap().parameters.location();
            engine.record(&mut s, &id, i64::from(b < 0.3)).unwrap();
            n += 1;
        }
        (serde_json::to_string(&s).unwrap(), engine.result(&s))
    };
    let (a, ra) = run(None);
    let (b, rb) = run(Some(4));
    assert_eq!(a, b);
    assert_eq!(ra, rb);
    assert!(ra.finished && ra.competences.len() == 3);
    // Competences are visited in turn: the first three answers cover the three competences.
    let s: etalon::engine::profile::ProfileSession = serde_json::from_str(&a).unwrap();
    let first: std::collections::HashSet<_> = s.order().iter().take(3).collect();
    assert_eq!(first.len(), 3);
}
