//! Criterion benchmarks of adaptive testing: next-item selection by MFI, MPWI and KL on 500- and
//! 5,000-item banks after 20 answers, and one full simulated test (500 items, EAP on 33 points,
//! SE ≤ 0.3).

use criterion::{Criterion, criterion_group, criterion_main};
use etalon::engine::config::{SelectionRule, SessionConfig};
use etalon::engine::quadrature::{GridSpec, Rule};
use etalon::engine::session::{CatEngine, Next, Session};
use etalon::engine::simulate::{self, DrawAll};
use etalon::items::{Bank, Framework, Item, ItemModel, Provenance};
use std::hint::black_box;

/// A 2PL bank like catR's (a in [0.5, 2.5], b spread over [-3, 3]), deterministic.
fn bank(n: usize) -> Bank {
    let items = (0..n)
        .map(|j| {
            let a = 0.5 + 2.0 * ((j * 7919) % 1000) as f64 / 1000.0;
            let b = -3.0 + 6.0 * ((j * 104_729) % 1000) as f64 / 1000.0;
            Item::new(format!("I{j}"), ItemModel::two_pl(a, b).unwrap())
        })
        .collect();
    Bank::new("bench", Framework::default(), items, Provenance::default()).unwrap()
}

fn config(rule: SelectionRule) -> SessionConfig {
    let mut c = SessionConfig::default();
    c.selection.rule = rule;
    c.estimator.grid = GridSpec {
        lower: -4.0,
        upper: 4.0,
        points: 33,
        rule: Rule::Trapezoid,
    };
    c.estimator.bounds = (-4.0, 4.0);
    c.stopping.se_target = Some(0.01);
    c
}

/// A session after 20 answers (alternating right and wrong).
fn after_20(engine: &CatEngine) -> Session {
    let mut s = engine.start(1);
    for i in 0..20 {
        if let Next::Item(id) = engine.next(&mut s).unwrap() {
            engine.record(&mut s, &id, (i % 2) as i64).unwrap();
        }
    }
    s
}

fn selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("next item after 20 answers");
    for n in [500, 5000] {
        let b = bank(n);
        for rule in [SelectionRule::Mfi, SelectionRule::Mpwi, SelectionRule::Kl] {
            let engine = CatEngine::new(&b, config(rule)).unwrap();
            let s = after_20(&engine);
            group.bench_function(format!("{rule:?} {n} items"), |bench| {
                // The clone is setup, not timed: only the selection is measured.
                bench.iter_batched(
                    || s.clone(),
                    |mut t| black_box(engine.next(&mut t).unwrap()),
                    criterion::BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

fn full_test(c: &mut Criterion) {
    let b = bank(500);
    let mut cfg = config(SelectionRule::Mfi);
    cfg.stopping.se_target = Some(0.3);
    let engine = CatEngine::new(&b, cfg).unwrap();
    let mut i = 0usize;
    c.bench_function(
        "one simulated test (500 items, EAP 33 points, SE <= 0.3)",
        |bench| {
            bench.iter(|| {
                i += 1;
                black_box(
                    simulate::simulate_one(&engine, i, ((i % 41) as f64 - 20.0) / 8.0, 3, &DrawAll).unwrap(),
                )
            })
        },
    );
}

criterion_group!(benches, selection, full_test);
criterion_main!(benches);
