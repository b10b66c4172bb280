//! Competence minima hold when the test stops on precision or classification: the stopping rule waits
//! for every minimum that can still be met (the test length bound does not wait).

use etalon_engine::config::{Classification, ConfigError, ContentConfig, SessionConfig, StoppingConfig};
use etalon_engine::session::{CatEngine, StopReason};
use etalon_engine::simulate::{self, DrawAll, SimulatedTest};
use etalon_items::{Bank, Framework, Item, ItemModel, Provenance, Status};

/// Competences Y and Z: 30 sharp items each (a = 2); competence X: 8 flat items (a = 0.5) that
/// maximum information never picks on its own.
fn bank(x_skill: bool) -> Bank {
    let mut items = Vec::new();
    for (c, n, a) in [("Y", 30, 2.0), ("Z", 30, 2.0), ("X", 8, 0.5)] {
        for k in 0..n {
            let b = -2.5 + 5.0 * k as f64 / (n - 1) as f64;
            let mut item = Item::new(format!("{c}{k}"), ItemModel::two_pl(a, b).unwrap()).with_competence(c);
            if x_skill && c == "X" {
                item.tags = vec!["skill:x".into()];
            }
            items.push(item);
        }
    }
    Bank::new("minimum", Framework::default(), items, Provenance::default()).unwrap()
}

fn config(min_x: Option<usize>) -> SessionConfig {
    SessionConfig {
        content: ContentConfig {
            min_items: min_x.map(|m| ("X".to_string(), m)).into_iter().collect(),
            one_per_tag_prefix: "skill:".into(),
            ..ContentConfig::default()
        },
        stopping: StoppingConfig {
            max_items: 40,
            min_items: 1,
            se_target: Some(0.4),
            classification: None,
        },
        ..SessionConfig::default()
    }
}

fn thetas() -> Vec<f64> {
    (0..200).map(|i| -2.5 + 5.0 * i as f64 / 199.0).collect()
}

fn x_items(t: &SimulatedTest) -> usize {
    t.result.per_competence.get("X").copied().unwrap_or(0)
}

fn run(bank: &Bank, config: SessionConfig) -> Vec<SimulatedTest> {
    let engine = CatEngine::new(bank, config).unwrap();
    simulate::simulate(&engine, &thetas(), 2024, &DrawAll).unwrap()
}

#[test]
fn precision_does_not_stop_the_test_before_a_competence_minimum() {
    let bank = bank(false);
    // Without a minimum, maximum information gives X to (almost) nobody.
    let free = run(&bank, config(None));
    let without = free.iter().filter(|t| x_items(t) < 3).count();
    assert!(
        without > 150,
        "{without} of 200 below 3 items of X without a minimum"
    );
    // With min_items {"X": 3}: everyone gets at least 3, and the tests still end on precision.
    let tests = run(&bank, config(Some(3)));
    let short: Vec<_> = tests.iter().filter(|t| x_items(t) < 3).collect();
    assert!(
        short.is_empty(),
        "{} of 200 examinees got fewer than 3 items of X",
        short.len()
    );
    assert!(
        tests.iter().all(|t| t.result.length < 40),
        "max_items never reached"
    );
    let precision = tests
        .iter()
        .filter(|t| t.result.reason == Some(StopReason::Precision))
        .count();
    assert_eq!(precision, 200);
    assert!(tests.iter().all(|t| t.result.se <= 0.4));
    // The minimum costs a few items, not the whole test length.
    let mean = |v: &[SimulatedTest]| v.iter().map(|t| t.result.length as f64).sum::<f64>() / v.len() as f64;
    assert!(
        mean(&tests) <= mean(&free) + 3.5,
        "{} vs {}",
        mean(&tests),
        mean(&free)
    );
    eprintln!(
        "content minimum: without it {without}/200 below 3 items of X (mean length {:.2}); with it 0/200 \
         (min {} items of X, mean length {:.2})",
        mean(&free),
        tests.iter().map(x_items).min().unwrap(),
        mean(&tests)
    );
}

#[test]
fn classification_waits_for_the_minimum_too() {
    let bank = bank(false);
    let mut c = config(Some(3));
    c.stopping.se_target = None;
    c.stopping.classification = Some(Classification {
        cuts: vec![0.0],
        confidence: 0.9,
    });
    let tests = run(&bank, c);
    assert!(tests.iter().all(|t| x_items(t) >= 3));
    assert!(
        tests
            .iter()
            .filter(|t| t.result.reason == Some(StopReason::Classified))
            .count()
            > 150
    );
}

#[test]
fn the_test_length_bound_still_stops_the_test() {
    // max_items 5: the minimum is met within it (selection turns to X when the items left are needed)
    // and no test runs past the bound.
    let bank = bank(false);
    let mut c = config(Some(3));
    c.stopping.max_items = 5;
    let tests = run(&bank, c);
    assert!(tests.iter().all(|t| t.result.length <= 5 && x_items(t) >= 3));
}

#[test]
fn a_minimum_that_can_no_longer_be_met_does_not_hold_the_test() {
    // Every X item tests the same skill: one per test, so the minimum of 3 cannot be met, and the test
    // stops on precision with one item of X instead of running to max_items.
    let bank = bank(true);
    let tests = run(&bank, config(Some(3)));
    assert!(tests.iter().all(|t| x_items(t) == 1), "one item of X each");
    assert!(
        tests
            .iter()
            .all(|t| t.result.reason == Some(StopReason::Precision))
    );
}

#[test]
fn a_minimum_the_bank_cannot_meet_is_refused() {
    let mut bank = bank(false);
    let e = CatEngine::new(&bank, config(Some(9))).unwrap_err();
    assert_eq!(
        e,
        ConfigError::MinimumUnreachable {
            competence: "X".into(),
            min: 9,
            available: 8
        }
    );
    assert_eq!(e.field(), Some("content.min_items"));
    assert!(
        e.to_string()
            .contains("`X` needs 9 items but the bank has 8 active"),
        "{e}"
    );
    // Only active items count.
    bank.update_items(|items| {
        for item in items.iter_mut().filter(|i| i.id == "X0" || i.id == "X1") {
            item.status = Status::Pretest;
        }
    })
    .unwrap();
    assert!(CatEngine::new(&bank, config(Some(6))).is_ok());
    assert_eq!(
        CatEngine::new(&bank, config(Some(7))).unwrap_err(),
        ConfigError::MinimumUnreachable {
            competence: "X".into(),
            min: 7,
            available: 6
        }
    );
}
