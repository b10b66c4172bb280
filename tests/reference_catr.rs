//! Adaptive tests against catR 3.17 `randomCAT` (`reference/catR/`): same 500-item 2PL bank,
//! same true abilities, same pre-drawn answers; EAP on 33 points in [-4, 4] (trapezoid), MFI, stop at
//! SE ≤ 0.3 or 40 items; ML bounded to [-4, 4]. Required: ≥ 95% of the 1,000 item sequences identical,
//! mean length within ±0.3 item and RMSE within ±0.01 of catR's.

mod common;
use common::reference;
use etalon::engine::config::{SessionConfig, StoppingConfig};
use etalon::engine::estimate::{EstimatorConfig, Method};
use etalon::engine::quadrature::{GridSpec, Prior, Rule};
use etalon::engine::session::CatEngine;
use etalon::engine::simulate::{self, PredrawnMatrix};
use etalon::items::{self, Bank, DataFormat};

fn catr_config(method: Method) -> SessionConfig {
    SessionConfig {
        estimator: EstimatorConfig {
            method,
            prior: Prior { mean: 0.0, sd: 1.0 },
            grid: GridSpec {
                lower: -4.0,
                upper: 4.0,
                points: 33,
                rule: Rule::Trapezoid,
            },
            bounds: (-4.0, 4.0),
        },
        stopping: StoppingConfig {
            max_items: 40,
            min_items: 1,
            se_target: Some(0.3),
            classification: None,
        },
        ..SessionConfig::default()
    }
}

fn load() -> (Bank, Vec<f64>, PredrawnMatrix) {
    let dir = reference().join("catR");
    let bank = items::read_bank(dir.join("bank_2pl_500.csv")).unwrap();
    let mut rdr = csv::Reader::from_path(dir.join("thetas_1000.csv")).unwrap();
    let thetas: Vec<f64> = rdr.records().map(|r| r.unwrap()[1].parse().unwrap()).collect();
    let responses = items::read_responses(dir.join("responses_1000x500.csv.gz"), DataFormat::Wide).unwrap();
    let al = responses.align(&bank).unwrap();
    let mut cells = vec![u8::MAX; thetas.len() * bank.len()];
    for p in 0..responses.n_persons() {
        responses.for_each_answer(p, |j, c| {
            cells[p * bank.len() + al.columns[j]] = al.categories[j][c as usize]
        });
    }
    (bank, thetas, PredrawnMatrix::new(500, cells))
}

fn compare(method: Method, file: &str) {
    let (bank, thetas, predrawn) = load();
    let engine = CatEngine::new(&bank, catr_config(method)).unwrap();
    let tests = simulate::simulate(&engine, &thetas, 1, &predrawn).unwrap();
    let mut rdr = csv::Reader::from_path(reference().join("catR").join(file)).unwrap();
    let reference: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let same = tests
        .iter()
        .zip(&reference)
        .filter(|(t, r)| t.result.items.join(";") == r[5])
        .count();
    let n = tests.len() as f64;
    let mean_len = tests.iter().map(|t| t.result.length as f64).sum::<f64>() / n;
    let ref_len = reference
        .iter()
        .map(|r| r[4].parse::<f64>().unwrap())
        .sum::<f64>()
        / n;
    let rmse = (tests
        .iter()
        .map(|t| (t.result.theta - t.true_theta).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let ref_rmse = (reference
        .iter()
        .map(|r| (r[2].parse::<f64>().unwrap() - r[1].parse::<f64>().unwrap()).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    eprintln!(
        "{method:?}: {same}/1000 identical sequences; mean length {mean_len:.3} vs catR {ref_len:.3}; RMSE {rmse:.4} vs {ref_rmse:.4}"
    );
    assert!(
        same >= 950,
        "{method:?}: only {same} of 1000 sequences match catR"
    );
    assert!(
        (mean_len - ref_len).abs() <= 0.3,
        "{method:?}: mean length {mean_len} vs {ref_len}"
    );
    assert!(
        (rmse - ref_rmse).abs() <= 0.01,
        "{method:?}: RMSE {rmse} vs {ref_rmse}"
    );
}

#[test]
fn eap_sequences_match_catr() {
    compare(Method::Eap, "catR_EAP_results.csv");
}

#[test]
fn ml_sequences_match_catr() {
    compare(Method::Ml, "catR_ML_results.csv");
}
