//! End to end: `etalon calibrate` (FORMATS.md summary, banks written by extension, SEs, anchors,
//! long format, bad input) and `etalon data generate`.

mod common;
use common::*;

#[test]
fn calibrate_writes_the_bank_and_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let data = reference().join("data/Science.csv");
    for ext in ["csv", "json"] {
        let out = dir.path().join(format!("science.{ext}"));
        let s = json_out(&etalon(&[
            "calibrate",
            data.to_str().unwrap(),
            "--model",
            "graded",
            "--out",
            out.to_str().unwrap(),
            "--se",
        ]));
        for key in [
            "model",
            "persons",
            "items",
            "log_likelihood",
            "aic",
            "bic",
            "cycles",
            "converged",
            "elapsed_s",
            "warnings",
        ] {
            assert!(s.get(key).is_some(), "summary lacks {key}");
        }
        assert_eq!(s["persons"], 392);
        assert!((s["log_likelihood"].as_f64().unwrap() - -1608.8695).abs() < 0.01);
        let v = json_out(&etalon(&["bank", "validate", out.to_str().unwrap()]));
        assert_eq!(v["models"]["graded"], 4);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("se_b1") || text.contains("\"b1\""),
            "standard errors written"
        );
    }
    // The calibrated bank scores the same data.
    let bank = dir.path().join("science.csv");
    let scores = dir.path().join("scores.csv");
    json_out(&etalon(&[
        "score",
        "--bank",
        bank.to_str().unwrap(),
        "--responses",
        data.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
    ]));
}

#[test]
fn anchored_long_format_calibration() {
    let dir = tempfile::tempdir().unwrap();
    // A bank of 30 items, data on 30 + 5 new items, written in long format.
    let full = dir.path().join("full.csv");
    let sat = reference().join("data/SAT12.csv");
    json_out(&etalon(&[
        "calibrate",
        sat.to_str().unwrap(),
        "--model",
        "2pl",
        "--out",
        full.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&full).unwrap();
    let anchor = dir.path().join("anchor.csv");
    std::fs::write(
        &anchor,
        text.lines().take(28).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap(); // header + 27 items
    let out = dir.path().join("new.json");
    let s = json_out(&etalon(&[
        "calibrate",
        sat.to_str().unwrap(),
        "--model",
        "2pl",
        "--anchor",
        anchor.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(s["items"], 5);
    assert!(s["latent"]["mean"].as_f64().unwrap().abs() < 0.05);
    let v = json_out(&etalon(&["bank", "validate", out.to_str().unwrap()]));
    assert_eq!(v["items"], 32);
}

#[test]
fn generate_then_calibrate_long_logs() {
    let dir = tempfile::tempdir().unwrap();
    let bank = reference().join("catR/bank_2pl_500.csv");
    let log = dir.path().join("log.csv.gz");
    let g = json_out(&etalon(&[
        "data",
        "generate",
        "--bank",
        bank.to_str().unwrap(),
        "--persons",
        "3000",
        "--answers",
        "40",
        "--format",
        "long",
        "--out",
        log.to_str().unwrap(),
    ]));
    assert_eq!(g["answers_per_person"], 40);
    let out = dir.path().join("b.csv");
    let s = json_out(&etalon(&[
        "calibrate",
        log.to_str().unwrap(),
        "--format",
        "long",
        "--model",
        "2pl",
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "1",
    ]));
    assert_eq!(s["persons"], 3000);
    assert!(s["converged"].as_bool().unwrap());
}

#[test]
fn bad_calibration_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = reference().join("data/LSAT7.csv");
    let d = data.to_str().unwrap();
    let o = dir.path().join("o.csv");
    let o = o.to_str().unwrap();
    assert_fails_with(&etalon(&["calibrate", d, "--out", o]), &["--model"]);
    assert_fails_with(
        &etalon(&["calibrate", d, "--model", "2pl", "--out", "bank.txt"]),
        &["unsupported extension"],
    );
    assert_fails_with(
        &etalon(&["calibrate", "/no/such.csv", "--model", "2pl", "--out", o]),
        &["no such file"],
    );
    assert_fails_with(
        &etalon(&["calibrate", d, "--model", "2pl", "--out", o, "--quadrature", "1"]),
        &["quadrature"],
    );
    let sci = reference().join("data/Science.csv");
    assert_fails_with(
        &etalon(&["calibrate", sci.to_str().unwrap(), "--model", "3pl", "--out", o]),
        &["0/1"],
    );
    assert_rejects_argument(
        &etalon(&["calibrate", d, "--model", "2pl", "--out", o, "--prior-slope", "0"]),
        "MEAN,SD",
    );
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, r#"{"model": "2pl", "itemz": {}}"#).unwrap();
    assert_fails_with(
        &etalon(&["calibrate", d, "--spec", spec.to_str().unwrap(), "--out", o]),
        &["itemz"],
    );
}

#[test]
fn prior_guessing_works_with_a_prior_and_with_none() {
    // This option panicked on every use (clap read Option<Option<_>> as an optional-value flag).
    let dir = tempfile::tempdir().unwrap();
    let data = common::reference().join("data/LSAT7.csv");
    let mut logliks = Vec::new();
    for prior in ["-1.5,1", "none", "-2,0.5"] {
        let out = dir.path().join("b.csv");
        let o = common::etalon(&[
            "calibrate",
            data.to_str().unwrap(),
            "--model",
            "3pl",
            "--out",
            out.to_str().unwrap(),
            "--prior-guessing",
            prior,
        ]);
        assert!(
            o.status.success(),
            "{prior}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
        logliks.push(common::json_out(&o)["log_likelihood"].as_f64().unwrap());
    }
    assert!(
        logliks[0] != logliks[1] && logliks[0] != logliks[2],
        "the prior changes the fit: {logliks:?}"
    );
    let o = common::etalon(&[
        "calibrate",
        data.to_str().unwrap(),
        "--model",
        "3pl",
        "--out",
        "x.csv",
        "--prior-guessing",
        "abc",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
