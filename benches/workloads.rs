//! End-to-end timings of the two workloads the hot paths serve, through the functions the command
//! line calls: (a) EAP scoring of 100,000 persons × 100 items of simulated 2PL responses by
//! `assessment::scoring::score` (`etalon score`, 61 points on [−6, 6]); (b) 1,000 simulated adaptive
//! tests on a 500-item 2PL bank by `engine::simulate::simulate` (`etalon simulate` with its default
//! configuration: MFI, EAP, SE ≤ 0.3 or 40 items).
//!
//! Whole runs take about a second, so this is a plain timing harness rather than criterion: each
//! workload runs `ETALON_BENCH_REPS` times (default 7) after one warm-up run, and the median, minimum
//! and maximum wall times are printed. A checksum of the outputs is printed too, so that two builds
//! can be seen to compute the same numbers (it must not change with an optimisation).
//!
//! `cargo bench --bench workloads` (add `-- scoring` or `-- adaptive` to run one of them).

use etalon::assessment::scoring;
use etalon::assessment::simulation;
use etalon::engine::estimate::Method;
use etalon::engine::session::CatEngine;
use etalon::engine::simulate::{self, DrawAll};
use etalon::items::quadrature::Rule;
use etalon::items::{Bank, Framework, Item, ItemModel, Provenance, ResponseMatrix, Responses};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A 2PL bank like catR's (a in [0.5, 2.5], b spread over [−3, 3]), deterministic.
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

/// Run `f` once to warm up, then `reps` times; print the median, minimum and maximum.
fn time<T>(name: &str, reps: usize, mut f: impl FnMut() -> T) {
    black_box(f());
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            black_box(f());
            t0.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: median {:.1} ms (min {:.1}, max {:.1}, {reps} runs)",
        ms(times[reps / 2]),
        ms(times[0]),
        ms(times[reps - 1])
    );
}

/// A checksum of floating-point results: the bits of every number, mixed in order.
fn checksum(values: impl IntoIterator<Item = f64>) -> u64 {
    values.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        (h ^ v.to_bits()).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn scoring_workload(reps: usize) {
    let bank = bank(100);
    let data = simulation::generate_responses(&bank, 100_000, None, 7);
    let ids = bank.items().iter().map(|i| i.id.clone()).collect();
    let responses = Responses::Dense(ResponseMatrix::from_categories(
        ids,
        data.thetas.len(),
        data.cells,
    ));
    let config =
        scoring::estimator_config(&bank, Method::Eap, None, None, 61, Rule::Rectangle, (-6.0, 6.0)).unwrap();
    let run = || scoring::score(&bank, &responses, config).unwrap();
    let scores = run();
    let sum = checksum(scores.persons.iter().flat_map(|p| {
        let e = p.estimate.as_ref().unwrap();
        [e.theta, e.se]
    }));
    println!("EAP scoring 100,000 × 100: checksum {sum:016x}");
    time("EAP scoring 100,000 × 100", reps, run);
}

fn adaptive_workload(reps: usize) {
    let bank = bank(500);
    let engine = CatEngine::new(&bank, simulation::default_config()).unwrap();
    let thetas = simulation::draw_thetas(1000, 11);
    let run = || simulate::simulate(&engine, &thetas, 11, &DrawAll).unwrap();
    let tests = run();
    let sum = checksum(tests.iter().flat_map(|t| {
        [t.result.theta, t.result.se, t.result.length as f64]
            .into_iter()
            .chain(t.result.items.iter().map(|id| id[1..].parse::<f64>().unwrap()))
    }));
    println!("1,000 adaptive tests: checksum {sum:016x}");
    time("1,000 adaptive tests (500 items)", reps, run);
}

fn main() {
    let reps = std::env::var("ETALON_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7usize)
        .max(1);
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wanted("scoring") {
        scoring_workload(reps);
    }
    if wanted("adaptive") {
        adaptive_workload(reps);
    }
}
