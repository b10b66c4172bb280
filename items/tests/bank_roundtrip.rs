//! Property tests: banks survive CSV and JSON round trips exactly; validation rejects invalid parameters.

use etalon_items::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![-6.0f64..6.0, -1e6f64..1e6, Just(0.0), Just(1e-9)]
}
fn slope() -> impl Strategy<Value = f64> {
    prop_oneof![0.01f64..5.0, Just(1.0), 1e-6f64..1e-3]
}

fn model() -> impl Strategy<Value = ItemModel> {
    prop_oneof![
        finite().prop_map(|b| ItemModel::rasch(b).unwrap()),
        (slope(), finite()).prop_map(|(a, b)| ItemModel::two_pl(a, b).unwrap()),
        (slope(), finite(), 0.0f64..0.99).prop_map(|(a, b, c)| ItemModel::three_pl(a, b, c).unwrap()),
        (slope(), finite(), 0.0f64..0.5, 0.5f64..1.0)
            .prop_filter("c < d", |(_, _, c, d)| c < d)
            .prop_map(|(a, b, c, d)| ItemModel::four_pl(a, b, c, d).unwrap()),
        (slope(), prop::collection::vec(-4.0f64..4.0, 1..6)).prop_map(|(a, mut t)| {
            t.sort_by(f64::total_cmp);
            t.dedup();
            ItemModel::graded(a, t).unwrap()
        }),
        (slope(), prop::collection::vec(-4.0f64..4.0, 1..6))
            .prop_map(|(a, t)| ItemModel::gpcm(a, t).unwrap()),
    ]
}

fn item(i: usize) -> impl Strategy<Value = Item> {
    (
        model(),
        prop::option::of(prop::sample::select(vec!["1.1", "1.2", "2.1"])),
        prop::sample::select(vec![Status::Active, Status::Pretest, Status::Retired]),
        prop::option::of(0.05f64..1.0),
        any::<bool>(),
        0.0f64..1.0,
    )
        .prop_map(move |(m, comp, status, exposure, coded, se)| {
            let k = m.categories();
            let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
            let mut it = Item::new(format!("item{i}"), m);
            it.competence = comp.map(String::from);
            it.status = status;
            it.exposure = exposure;
            if coded {
                it.codes = Some((1..=k as i64).collect());
            }
            it.standard_errors = names.into_iter().map(|n| (n, se)).collect::<BTreeMap<_, _>>();
            it
        })
}

/// A latent distribution, sometimes: none, the standard one, or estimated-looking moments.
fn latent() -> impl Strategy<Value = Option<BankLatent>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(BankLatent { mean: 0.0, variance: 1.0 })),
        2 => (finite(), prop_oneof![1e-6f64..10.0, Just(1.0), Just(1e-9), 1.0f64..1e6])
            .prop_map(|(mean, variance)| Some(BankLatent { mean, variance })),
    ]
}

fn bank() -> impl Strategy<Value = Bank> {
    (1usize..12, latent()).prop_flat_map(|(n, latent)| {
        (0..n).map(item).collect::<Vec<_>>().prop_map(move |items| {
            Bank::new("b", Framework::default(), items, Provenance::default())
                .unwrap()
                .with_latent(latent)
                .unwrap()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn csv_round_trip_is_exact(bank in bank()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.csv");
        write_bank(&bank, &path).unwrap();
        let back = read_bank(&path).unwrap();
        prop_assert_eq!(back.items(), bank.items());
        prop_assert_eq!(back.latent(), bank.latent());
        prop_assert_eq!(back.fingerprint(), bank.fingerprint());
        // Writing again gives the same bytes.
        let path2 = dir.path().join("b2.csv");
        write_bank(&back, &path2).unwrap();
        prop_assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&path2).unwrap());
    }

    #[test]
    fn json_round_trip_is_exact(bank in bank()) {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.json", "b.json.gz"] {
            let path = dir.path().join(name);
            write_bank(&bank, &path).unwrap();
            prop_assert_eq!(&read_bank(&path).unwrap(), &bank);
        }
    }

    #[test]
    fn invalid_slopes_never_build(a in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(0.0), Just(-0.0)], b in finite()) {
        prop_assert!(ItemModel::two_pl(a, b).is_err());
        prop_assert!(ItemModel::three_pl(a, b, 0.1).is_err());
        prop_assert!(ItemModel::graded(a, vec![b]).is_err());
    }

    /// Negative slopes: valid for 2PL/3PL (items that discriminate negatively, as in mirt), never for
    /// 1PL, graded or GPCM.
    #[test]
    fn negative_slopes_build_only_dichotomous_free_slope_items(a in -10.0f64..-1e-9, b in finite()) {
        prop_assert!(ItemModel::two_pl(a, b).is_ok());
        prop_assert!(ItemModel::three_pl(a, b, 0.1).is_ok());
        prop_assert!(ItemModel::one_pl(a, b).is_err());
        prop_assert!(ItemModel::graded(a, vec![b]).is_err());
        prop_assert!(ItemModel::gpcm(a, vec![b]).is_err());
    }

    #[test]
    fn asymptotes_validated(c in -1.0f64..2.0, d in -1.0f64..2.0) {
        let ok = (0.0..1.0).contains(&c) && c < d && d <= 1.0 && d > 0.0;
        prop_assert_eq!(ItemModel::four_pl(1.0, 0.0, c, d).is_ok(), ok);
    }

    #[test]
    fn graded_thresholds_must_increase(t in prop::collection::vec(-3.0f64..3.0, 1..6)) {
        let increasing = t.windows(2).all(|w| w[0] < w[1]);
        prop_assert_eq!(ItemModel::graded(1.0, t.clone()).is_ok(), increasing);
        prop_assert!(ItemModel::gpcm(1.0, t).is_ok());
    }
}

#[test]
fn example_bank_is_valid_and_complete() {
    let bank = example::example_bank();
    assert!(bank.len() >= 60);
    assert_eq!(bank.framework().domains.len(), 5);
    assert_eq!(bank.framework().competences().count(), 16);
    for item in bank.items() {
        let c = item.content.as_ref().expect("every example item has content");
        assert!(c.correct.unwrap() < c.choices.len());
        assert!(!item.tutorials.is_empty());
        assert!(
            bank.framework()
                .competence(item.competence.as_deref().unwrap())
                .is_some()
        );
    }
    assert_eq!(bank.provenance().method, "illustrative");
    let bs: Vec<f64> = bank.items().iter().map(|i| i.parameters.location()).collect();
    assert!(bs.iter().cloned().fold(f64::INFINITY, f64::min) < -2.0);
    assert!(bs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) > 2.0);
}

#[test]
fn validation_collects_every_problem() {
    let text = "id,model,a,b\nq1,2pl,NaN,0\nq1,2pl,1,0\nq1,2pl,1,0\n,2pl,1,0\nq5,2pl,0,0\n";
    let err = bank_io::bank_from_csv(text, std::path::Path::new("t.csv")).unwrap_err();
    let problems = err.problems();
    assert_eq!(problems.len(), 4, "{err}");
    assert_eq!(problems[0].line, Some(2));
    assert_eq!(problems[0].field.as_deref(), Some("a"));
    assert!(
        problems
            .iter()
            .any(|p| p.line == Some(4) && p.message.contains("duplicate"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.line == Some(5) && p.message.contains("empty item id"))
    );
}

#[test]
fn json_bank_reports_all_item_problems_with_ids() {
    let text = r#"{"id":"b","items":[
        {"id":"ok","parameters":{"model":"2pl","a":1,"b":0}},
        {"id":"bad1","parameters":{"model":"2pl","a":0,"b":0}},
        {"id":"bad2","parameters":{"model":"graded","a":1,"b":[1,0]}},
        {"id":"ok","parameters":{"model":"rasch","b":0}}
    ]}"#;
    let err = Bank::from_json(text, "b.json").unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.problems().len(), 3, "{msg}");
    assert!(msg.contains("bad1") && msg.contains("field a"), "{msg}");
    assert!(msg.contains("bad2") && msg.contains("b2"), "{msg}");
    assert!(msg.contains("duplicate"), "{msg}");
}

#[test]
fn unknown_competence_rejected_when_framework_given() {
    let fw = Framework {
        id: "f".into(),
        name: "f".into(),
        domains: vec![Domain {
            id: "d".into(),
            name: "d".into(),
            competences: vec![Competence {
                id: "c1".into(),
                name: "c".into(),
                description: None,
            }],
        }],
    };
    let items = vec![Item::new("q", ItemModel::rasch(0.0).unwrap()).with_competence("c9")];
    let problems = Bank::new("b", fw, items, Provenance::default()).unwrap_err();
    assert!(problems[0].to_string().contains("c9"));
}

#[test]
fn update_items_leaves_bank_unchanged_on_error() {
    let mut bank = example::example_bank();
    let before = bank.clone();
    let first = bank.items()[0].id.clone();
    let err = bank.update_items(|items| items[1].id = first.clone());
    assert!(err.is_err());
    assert_eq!(bank, before);
}

#[test]
fn mirt_import_matches_the_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/mirt");
    let bank = import_mirt(dir.join("SAT12_2PL.csv"), ModelKind::TwoPl).unwrap();
    assert_eq!(bank.len(), 32);
    assert!((bank.items()[0].parameters.slope() - 0.801334742548934).abs() < 1e-15);
    let graded = import_mirt(dir.join("Science_graded.csv"), ModelKind::Graded).unwrap();
    assert_eq!(graded.items()[0].parameters.categories(), 4);
    let g3 = import_mirt(dir.join("LSAT7_3PL_gprior.csv"), ModelKind::ThreePl).unwrap();
    assert!((g3.items()[0].parameters.logistic().unwrap().c() - 0.165051267766511).abs() < 1e-15);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// No input, however malformed, makes the readers panic: they return a bank or a located error.
    #[test]
    fn arbitrary_input_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        text in "[a-z0-9_.,;\"\\n{}\\[\\]: -]{0,300}",
        header in prop::sample::select(vec![
            "id,model,a,b",
            "id,model,a,b,c,d,b1,b2",
            "id,model,b,competence,status,codes,exposure,se_b",
            "id,model,b,latent_mean,latent_variance",
            "",
        ]),
    ) {
        let path = std::path::Path::new("fuzz.csv");
        let _ = bank_io::bank_from_csv(&String::from_utf8_lossy(&bytes), path);
        let _ = bank_io::bank_from_csv(&format!("{header}\n{text}"), path);
        let _ = Bank::from_json(&text, "fuzz.json");
        let _ = Bank::from_json(&String::from_utf8_lossy(&bytes), "fuzz.json");
        let dir = tempfile::tempdir().unwrap();
        for name in ["f.csv", "f.json", "f.csv.gz"] {
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            let _ = read_bank(&p);
            let _ = read_responses(&p, DataFormat::Wide);
            let _ = read_responses(&p, DataFormat::Long);
        }
    }
}
