//! Calibration errors and warnings are typed: settings name their field and value, warnings carry
//! their item and numbers, display as readable sentences and serialise with a `kind` tag.

use etalon_calibration::{CalibrationError, CalibrationSpec, Warning, calibrate, em, evaluate};
use etalon_items::{
    Bank, Framework, Item, ItemModel, MISSING, ModelKind, Provenance, ResponseMatrix, Responses,
};

/// 200 persons: `all1` always right, `mixed` right one time in three, `none` never answered, `x4`
/// right every other time; person 5 answered nothing.
fn degenerate() -> Responses {
    let ids = ["all1", "mixed", "none", "x4"].map(String::from).to_vec();
    let mut cells = Vec::new();
    for p in 0..200usize {
        if p == 5 {
            cells.extend([MISSING; 4]);
        } else {
            cells.extend([1, u8::from(p % 3 == 0), MISSING, u8::from(p % 2 == 0)]);
        }
    }
    Responses::Dense(ResponseMatrix::from_categories(ids, 200, cells))
}

#[test]
fn degenerate_data_get_typed_warnings() {
    let f = calibrate(&degenerate(), &CalibrationSpec::new(ModelKind::TwoPl), None, ()).unwrap();
    let w = &f.warnings;
    assert!(
        w.contains(&Warning::ItemsWithoutResponses {
            items: vec!["none".into()]
        }),
        "{w:?}"
    );
    assert!(
        w.contains(&Warning::PersonsWithoutResponses { count: 1 }),
        "{w:?}"
    );
    assert!(
        w.contains(&Warning::CategoryNeverObserved {
            item: "all1".into(),
            category: 0,
            code: 0
        }),
        "{w:?}"
    );
    // Everyone right: the difficulty runs off to the bound.
    assert!(
        w.iter()
            .any(|x| matches!(x, Warning::ExtremeDifficulty { item, b } if item == "all1" && *b < -6.0)),
        "{w:?}"
    );
    for x in w {
        let text = x.to_string();
        if let Some(item) = x.item() {
            assert!(text.contains(&format!("item `{item}`")), "{text}");
        }
        let json = serde_json::to_value(x).unwrap();
        assert!(json["kind"].is_string(), "{json}");
        assert_eq!(json["item"].as_str(), x.item(), "{json}");
    }
    assert_eq!(
        w[0].to_string(),
        "items without any response, not calibrated: none"
    );
}

#[test]
fn stopped_and_unconverged_runs_say_so() {
    let r = degenerate();
    let mut spec = CalibrationSpec::new(ModelKind::TwoPl);
    spec.em.max_cycles = 1;
    let f = calibrate(&r, &spec, None, ()).unwrap();
    assert!(!f.converged);
    assert!(
        f.warnings
            .iter()
            .any(|w| matches!(w, Warning::NotConverged { cycles: 1, tolerance, .. } if *tolerance == 1e-4)),
        "{:?}",
        f.warnings
    );
    let f = calibrate(
        &r,
        &CalibrationSpec::new(ModelKind::TwoPl),
        None,
        |_: &em::Progress| em::Control::Stop,
    )
    .unwrap();
    assert!(
        f.warnings.contains(&Warning::Stopped { cycles: 1 }),
        "{:?}",
        f.warnings
    );
    assert!(
        f.warnings
            .iter()
            .all(|w| !matches!(w, Warning::NotConverged { .. }))
    );
    // A spent time budget stops the run after its first cycle; a generous one changes nothing.
    let spec = CalibrationSpec::new(ModelKind::TwoPl);
    let f = calibrate(&r, &spec, None, em::TimeLimit::new(std::time::Duration::ZERO)).unwrap();
    assert!(!f.converged && f.cycles == 1, "{} cycles", f.cycles);
    let free = calibrate(&r, &spec, None, ()).unwrap();
    let timed = calibrate(
        &r,
        &spec,
        None,
        em::TimeLimit::new(std::time::Duration::from_secs(3600)),
    )
    .unwrap();
    assert_eq!((free.cycles, free.loglik), (timed.cycles, timed.loglik));
}

#[test]
fn settings_errors_name_the_field_and_value() {
    let r = degenerate();
    let spec = |f: &dyn Fn(&mut em::EmConfig)| {
        let mut s = CalibrationSpec::new(ModelKind::TwoPl);
        f(&mut s.em);
        s
    };
    let e = calibrate(&r, &spec(&|em| em.quadrature = 1), None, ()).unwrap_err();
    assert_eq!(e, CalibrationError::Quadrature(1));
    assert_eq!(
        e.to_string(),
        "quadrature points (em.quadrature) must be in 3..=1001 (got 1)"
    );
    let e = calibrate(&r, &spec(&|em| em.tol = -1.0), None, ()).unwrap_err();
    assert_eq!(e, CalibrationError::Tolerance(-1.0));
    assert!(
        e.to_string().contains("em.tol") && e.to_string().contains("-1"),
        "{e}"
    );
    assert!(matches!(
        calibrate(&r, &spec(&|em| em.tol = f64::NAN), None, ()),
        Err(CalibrationError::Tolerance(t)) if t.is_nan()
    ));
    let e = calibrate(&r, &spec(&|em| em.max_cycles = 0), None, ()).unwrap_err();
    assert_eq!(e, CalibrationError::MaxCycles);
    assert!(e.to_string().contains("em.max_cycles"), "{e}");
}

#[test]
fn bank_errors_are_typed() {
    let bank = Bank::new(
        "b",
        Framework::default(),
        vec![
            Item::new("all1", ItemModel::two_pl(1.0, 0.0).unwrap()),
            Item::new("mixed", ItemModel::graded(1.0, vec![-1.0, 1.0]).unwrap()),
        ],
        Provenance::default(),
    )
    .unwrap();
    let e = evaluate(&degenerate(), &bank, 21, &em::Priors::default()).unwrap_err();
    assert_eq!(
        e,
        CalibrationError::ItemsNotInBank(vec!["none".into(), "x4".into()])
    );
    assert_eq!(e.to_string(), "items not in the bank: none, x4");
    // An anchor with three categories for an item with two in the data.
    let spec = CalibrationSpec::new(ModelKind::TwoPl);
    let e = calibrate(&degenerate(), &spec, Some(&bank), ()).unwrap_err();
    assert_eq!(
        e,
        CalibrationError::AnchorCategories {
            item: "mixed".into(),
            bank: 3,
            data: 2
        }
    );
    assert_eq!(
        e.to_string(),
        "anchor item `mixed`: 3 categories in the bank, 2 in the data"
    );
}

#[test]
fn the_sources_of_model_and_bank_errors_are_kept() {
    use std::error::Error;
    let model = ItemModel::two_pl(0.0, 0.0).unwrap_err();
    let e = CalibrationError::ItemModel {
        item: "q1".into(),
        source: model.clone(),
    };
    assert_eq!(
        e.to_string(),
        "item `q1`: the calibrated parameters do not form a valid item"
    );
    assert_eq!(e.source().map(ToString::to_string), Some(model.to_string()));
    let problems = etalon_items::Problems(vec![etalon_items::Problem::new("duplicate id").for_item("q1")]);
    let e = CalibrationError::Bank(problems.clone());
    assert_eq!(e.source().map(ToString::to_string), Some(problems.to_string()));
}
