//! The multidimensional speed targets (issue "profiles that borrow strength"), timed on this machine:
//! (a) the next item of a multidimensional adaptive test on 16 competences and a 640-item bank (target
//! < 100 µs), at 0, 16 and 31 answers; (b) a multidimensional calibration of 100,000 persons × 640
//! items from an adaptive-style log of 32 answers each, two per competence (target < 1 minute).
//!
//! `cargo bench --bench multidim` (add `-- next` or `-- calibration` to run one of them).

use etalon::calibration::multidim::{MultiQuadrature, calibrate_multidimensional};
use etalon::calibration::{CalibrationSpec, em::EmConfig};
use etalon::engine::multidim::{MultiConfig, MultiEngine, MultiModel, synthetic_bank, synthetic_persons};
use etalon::engine::session::Next;
use etalon::items::{Bank, Item, ModelKind, ResponseFunction};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let bank = synthetic_bank(16, 40, 0.6, 0.8, 1515);
    let model = MultiModel::new(&bank).unwrap();
    if run("next") {
        let engine = MultiEngine::new(
            &bank,
            MultiConfig {
                max_items: 48,
                min_items: 48,
                classify: false,
                ..MultiConfig::default()
            },
        )
        .unwrap();
        let people = synthetic_persons(&model, 200, 5);
        for at in [0usize, 16, 31] {
            // Sessions with `at` answers, then the time of one `next` on each (a fresh clone).
            let sessions: Vec<_> = people
                .iter()
                .enumerate()
                .map(|(p, theta)| {
                    let mut s = engine.start(p as u64);
                    let mut rng = Xoshiro256PlusPlus::seed_from_u64(p as u64);
                    for _ in 0..at {
                        let Next::Item(id) = engine.next(&mut s).unwrap() else {
                            unreachable!()
                        };
                        let j = bank.position(&id).unwrap();
                        let prob = bank.items()[j]
                            .parameters
                            .log_prob(theta[model.dimension_of(j)], 1)
                            .exp();
                        engine
                            .record(&mut s, &id, i64::from(rng.random::<f64>() < prob))
                            .unwrap();
                    }
                    s
                })
                .collect();
            let mut copies: Vec<_> = sessions.iter().cycle().take(2000).cloned().collect();
            let t0 = Instant::now();
            for s in &mut copies {
                black_box(engine.next(s).unwrap());
            }
            let us = t0.elapsed().as_secs_f64() * 1e6 / copies.len() as f64;
            println!("next item, 16 competences, 640 items, after {at} answers: {us:.1} µs (mean of 2,000)");
        }
    }
    if run("calibration") {
        let n = std::env::var("ETALON_BENCH_PERSONS").map_or(100_000, |v| v.parse().unwrap());
        let people = synthetic_persons(&model, n, 6);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let (mut persons, mut items, mut codes) = (Vec::new(), Vec::new(), Vec::new());
        for (p, theta) in people.iter().enumerate() {
            for (k, &theta_k) in theta.iter().enumerate() {
                let first = rng.random_range(0..40);
                let second = (first + 1 + rng.random_range(0..39)) % 40;
                for i in [first, second] {
                    let j = k * 40 + i;
                    let prob = bank.items()[j].parameters.log_prob(theta_k, 1).exp();
                    persons.push(format!("P{p}"));
                    items.push(bank.items()[j].id.clone());
                    codes.push(i64::from(rng.random::<f64>() < prob));
                }
            }
        }
        let responses =
            etalon::assessment::tables::long_responses(&persons, &items, &codes, "bench").unwrap();
        // The alternative: 16 separate unidimensional calibrations, one per competence's answers.
        let t0 = Instant::now();
        let mut fits = Vec::new();
        for k in 0..16 {
            let prefix = format!("C{:02}-", k + 1);
            let rows: Vec<usize> = (0..items.len())
                .filter(|&r| items[r].starts_with(&prefix))
                .collect();
            let pick = |v: &[String]| rows.iter().map(|&r| v[r].clone()).collect::<Vec<_>>();
            let codes_k: Vec<i64> = rows.iter().map(|&r| codes[r]).collect();
            let sub =
                etalon::assessment::tables::long_responses(&pick(&persons), &pick(&items), &codes_k, "bench")
                    .unwrap();
            let fit = etalon::calibration::calibrate(&sub, &CalibrationSpec::new(ModelKind::TwoPl), None, ())
                .unwrap();
            fits.push(fit.bank);
        }
        let (bias_a, rmse_a, rmse_b) = recovery(&bank, |id| fits.iter().find_map(|b| b.item(id)));
        println!(
            "16 separate unidimensional calibrations, {n} persons: {:.1} s; slope bias {bias_a:+.4}, RMSE a {rmse_a:.4}, RMSE b {rmse_b:.4}",
            t0.elapsed().as_secs_f64(),
        );
        let dims: BTreeMap<String, String> = bank
            .items()
            .iter()
            .map(|i| (i.id.clone(), i.competence.clone().unwrap()))
            .collect();
        let spec = CalibrationSpec {
            model: ModelKind::TwoPl,
            items: BTreeMap::new(),
            em: EmConfig::default(),
            standard_errors: false,
        };
        for (label, q) in [("21×21 nodes (default)", MultiQuadrature::default())] {
            let t0 = Instant::now();
            let fit = calibrate_multidimensional(&responses, &spec, &dims, q, ()).unwrap();
            let s = t0.elapsed().as_secs_f64();
            // Recovery: slopes and intercepts against the generating bank, correlations against R.
            let (bias_a, rmse_a, rmse_b) = recovery(&bank, |id| fit.calibration.bank.item(id));
            let r = model.correlations();
            let mut rmse_r = 0.0;
            for k in 0..16 {
                for l in 0..16 {
                    if k != l {
                        rmse_r += (fit.correlations[k][l] - r[k * 16 + l]).powi(2);
                    }
                }
            }
            println!(
                "calibration {n} persons × 640 items, 32 answers each, {label}: {s:.1} s, {} cycles, converged {}; \
                 slope bias {:+.4}, RMSE a {:.4}, RMSE b {:.4}, RMSE r {:.4}",
                fit.calibration.cycles,
                fit.calibration.converged,
                bias_a,
                rmse_a,
                rmse_b,
                (rmse_r / 240.0).sqrt()
            );
        }
    }
}

/// Parameter recovery against the generating `bank`: slope bias, slope RMSE and difficulty RMSE over
/// its items, each looked up in the estimates by `estimate`.
fn recovery<'a>(bank: &Bank, estimate: impl Fn(&str) -> Option<&'a Item>) -> (f64, f64, f64) {
    let (mut bias_a, mut sq_a, mut sq_b) = (0.0, 0.0, 0.0);
    for item in bank.items() {
        let est = estimate(&item.id).unwrap();
        let da = est.parameters.slope() - item.parameters.slope();
        let db = est.parameters.location() - item.parameters.location();
        bias_a += da;
        sq_a += da * da;
        sq_b += db * db;
    }
    let m = bank.len() as f64;
    (bias_a / m, (sq_a / m).sqrt(), (sq_b / m).sqrt())
}
