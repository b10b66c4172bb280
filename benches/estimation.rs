//! Criterion benchmarks of ability estimation: one person with 40 answers by each method, one
//! incremental EAP update, and scoring 100,000 persons × 100 items (EAP and ML).

use criterion::{Criterion, criterion_group, criterion_main};
use etalon::engine::estimate::{Answer, EapTable, Estimator, EstimatorConfig, Method, Posterior};
use etalon::engine::quadrature::{Grid, GridSpec, Prior};
use etalon::items::ItemModel;
use std::hint::black_box;

/// A deterministic 2PL bank and answer pattern (no RNG needed for a benchmark).
fn bank(n: usize) -> Vec<ItemModel> {
    (0..n)
        .map(|j| {
            ItemModel::two_pl(
                0.6 + (j * 37 % 100) as f64 / 60.0,
                ((j * 53 % 101) as f64 - 50.0) / 20.0,
            )
            .unwrap()
        })
        .collect()
}

fn pattern(n: usize, person: usize) -> Vec<Answer> {
    (0..n)
        .map(|j| Answer::new(j, usize::from((j * 7 + person * 13) % 10 < 6)))
        .collect()
}

fn one_person(c: &mut Criterion) {
    let models = bank(40);
    let answers = pattern(40, 1);
    let mut group = c.benchmark_group("one person, 40 answers");
    for method in [Method::Eap, Method::Map, Method::Ml, Method::Wle] {
        let est = Estimator::new(
            models.clone(),
            EstimatorConfig {
                method,
                ..Default::default()
            },
        )
        .unwrap();
        let mut buf = Vec::new();
        group.bench_function(format!("{method:?}"), |b| {
            b.iter(|| est.estimate(black_box(&answers), &mut buf).unwrap())
        });
    }
    group.finish();
}

fn incremental(c: &mut Criterion) {
    let models = bank(500);
    let grid = Grid::new(
        GridSpec {
            lower: -4.0,
            upper: 4.0,
            points: 33,
            ..Default::default()
        },
        Prior::default(),
    )
    .unwrap();
    let table = EapTable::new(&models, grid.clone());
    let mut buf = Vec::new();
    c.bench_function("incremental EAP update (33 points)", |b| {
        let mut post = Posterior::new(&grid);
        let mut j = 0usize;
        b.iter(|| {
            j = (j + 1) % 500;
            post.add(&table, Answer::new(j, j % 2));
            black_box(post.estimate(&grid, &mut buf))
        })
    });
}

fn many_persons(c: &mut Criterion) {
    let models = bank(100);
    let persons: Vec<Vec<Answer>> = (0..100_000).map(|p| pattern(100, p)).collect();
    let mut group = c.benchmark_group("100,000 persons × 100 items");
    group.sample_size(10);
    for method in [Method::Eap, Method::Ml] {
        let est = Estimator::new(
            models.clone(),
            EstimatorConfig {
                method,
                ..Default::default()
            },
        )
        .unwrap();
        group.bench_function(format!("{method:?}"), |b| {
            b.iter(|| est.estimate_many(persons.len(), |p, a| a.extend_from_slice(&persons[p])))
        });
    }
    group.finish();
}

criterion_group!(benches, one_person, incremental, many_persons);
criterion_main!(benches);
