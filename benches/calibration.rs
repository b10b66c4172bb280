//! Criterion benchmarks of calibration: one EM cycle (E-step + M-step) on 10,000 × 50 and
//! 100,000 × 100 dense 2PL data, and a full 2PL fit of 10,000 × 50.

use criterion::{Criterion, criterion_group, criterion_main};
use etalon::calibration::{CalibrationSpec, calibrate};
use etalon::engine::simulate::draw_responses;
use etalon::items::{ItemModel, ModelKind, ResponseMatrix, Responses};

fn data(n: usize, j: usize) -> Responses {
    let models: Vec<ItemModel> = (0..j)
        .map(|k| ItemModel::two_pl(0.7 + (k % 7) as f64 * 0.15, (k as f64 / j as f64) * 4.0 - 2.0).unwrap())
        .collect();
    let thetas: Vec<f64> = (0..n)
        .map(|p| ((p * 7919) % 1000) as f64 / 1000.0 * 6.0 - 3.0)
        .collect();
    let cells = draw_responses(&models, &thetas, 1, None);
    Responses::Dense(ResponseMatrix::from_categories(
        (0..j).map(|k| format!("I{k}")).collect(),
        n,
        cells,
    ))
}

fn em_cycle(c: &mut Criterion) {
    use etalon::calibration::{data::CalibData, em, estep::Workspace, starting_model};
    let mut group = c.benchmark_group("calibration");
    group.sample_size(10);
    for (n, j) in [(10_000, 50), (100_000, 100)] {
        let r = data(n, j);
        let cd = CalibData::new(&r, &vec![ModelKind::TwoPl; j]).unwrap();
        let model = starting_model(&cd, ModelKind::TwoPl);
        let workspace = Workspace::new(&cd, 256 << 20);
        group.bench_function(format!("one EM cycle (E-step + M-step) {n}x{j}"), |b| {
            b.iter(|| em::em_step(&cd, &model, &workspace))
        });
    }
    let r = data(10_000, 50);
    let spec = CalibrationSpec::new(ModelKind::TwoPl);
    group.bench_function("full 2PL fit 10000x50", |b| {
        b.iter(|| calibrate(&r, &spec, None, ()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, em_cycle);
criterion_main!(benches);
