//! The newcomer's path (issue "one application layer"): what a person trying Etalon for the first time
//! runs into. Each test failed on the code before the application layer.

mod common;
use common::{etalon, reference};
use std::path::Path;

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn score_uses_the_latent_distribution_recorded_in_the_bank_as_mirt_fscores_does() {
    // mirt's Rasch calibration of SAT12 estimates the latent variance (0.82); fscores then scores with
    // that prior. A bank carrying it must score like fscores (121 points, as fscores integrates).
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rasch.csv");
    let out = etalon(&[
        "bank",
        "convert",
        "--from",
        "mirt",
        "--model",
        "rasch",
        p(&reference().join("mirt/SAT12_Rasch.csv")),
        p(&csv),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let variance: f64 = std::fs::read_to_string(reference().join("toolkit/SAT12_Rasch_latent.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // Add the latent columns to every row of the CSV bank.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let mut with_latent = format!("{},latent_mean,latent_variance\n", lines.next().unwrap());
    for l in lines {
        with_latent += &format!("{l},0,{variance}\n");
    }
    let bank = dir.path().join("rasch_latent.csv");
    std::fs::write(&bank, with_latent).unwrap();
    let scores = dir.path().join("scores.csv");
    let out = etalon(&[
        "score",
        "--bank",
        p(&bank),
        "--responses",
        p(&reference().join("data/SAT12.csv")),
        "--quadrature",
        "121",
        "--out",
        p(&scores),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        (summary["prior"]["sd"].as_f64().unwrap() - variance.sqrt()).abs() < 1e-12,
        "{summary}"
    );
    let ours: Vec<(f64, f64)> = std::fs::read_to_string(&scores)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    let mirt: Vec<(f64, f64)> =
        std::fs::read_to_string(reference().join("toolkit/SAT12_Rasch_fscores_all.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect();
    assert_eq!(ours.len(), mirt.len());
    // mirt's item parameters are printed to 15 digits; EAP agrees to 1e-4 (as the 2PL references).
    for (i, (o, m)) in ours.iter().zip(&mirt).enumerate() {
        assert!(
            (o.0 - m.0).abs() < 1e-4 && (o.1 - m.1).abs() < 1e-4,
            "person {}: {o:?} vs mirt {m:?}",
            i + 1
        );
    }
}

#[test]
fn score_writes_ids_with_commas_and_quotes_as_csv_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    std::fs::write(
        &data,
        "person,q1,q2\n\"Doe, Jane\",1,0\n\"say \"\"hi\"\"\",0,0\nplain,1,1\n",
    )
    .unwrap();
    let bank = dir.path().join("b.csv");
    std::fs::write(&bank, "id,model,a,b\nq1,2pl,1,0\nq2,2pl,1.2,0.5\n").unwrap();
    let out_path = dir.path().join("s.csv");
    let out = etalon(&[
        "score",
        "--bank",
        p(&bank),
        "--responses",
        p(&data),
        "--out",
        p(&out_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut rdr = csv::Reader::from_path(&out_path).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.len() == 3), "every row has person,theta,se");
    assert_eq!(&rows[0][0], "Doe, Jane");
    assert_eq!(&rows[1][0], "say \"hi\"");
}

#[test]
fn estimates_clipped_at_the_theta_range_are_counted_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    std::fs::write(&data, "q1,q2,q3\n1,1,1\n0,1,0\n").unwrap();
    let bank = dir.path().join("b.csv");
    std::fs::write(&bank, "id,model,a,b\nq1,2pl,1,3\nq2,2pl,1.2,3.5\nq3,2pl,0.8,4\n").unwrap();
    let out = etalon(&[
        "score",
        "--bank",
        p(&bank),
        "--responses",
        p(&data),
        "--method",
        "map",
        "--theta-range",
        "-2,2",
        "--out",
        p(&dir.path().join("s.csv")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 of 2 estimates reached the θ range [-2, 2]"),
        "{err}"
    );
}

#[test]
fn outputs_are_checked_before_any_work_and_never_overwrite_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    std::fs::write(&data, "q1,q2\n1,0\n").unwrap();
    let before = std::fs::read(&data).unwrap();
    let bank = dir.path().join("b.csv");
    std::fs::write(&bank, "id,model,a,b\nq1,2pl,1,0\nq2,2pl,1.2,0.5\n").unwrap();
    let out = etalon(&[
        "score",
        "--bank",
        p(&bank),
        "--responses",
        p(&data),
        "--out",
        p(&data),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("also an input"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&data).unwrap(), before);
    // An output in a directory that does not exist: refused before scoring.
    let out = etalon(&[
        "score",
        "--bank",
        p(&bank),
        "--responses",
        p(&data),
        "--out",
        p(&dir.path().join("no/such/dir/s.csv")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn exposure_calibration_writes_only_to_bank_out() {
    let dir = tempfile::tempdir().unwrap();
    let bank = dir.path().join("b.csv");
    std::fs::write(
        &bank,
        "id,model,a,b\nq1,2pl,1,0\nq2,2pl,1.2,0.5\nq3,2pl,1.5,-0.5\nq4,2pl,0.9,1\n",
    )
    .unwrap();
    let before = std::fs::read(&bank).unwrap();
    let calibrate_exposure = [
        "simulate",
        "--bank",
        p(&bank),
        "--examinees",
        "50",
        "--calibrate-exposure",
        "0.5",
        "--max-items",
        "2",
    ];
    let out = etalon(&calibrate_exposure);
    assert_ne!(
        out.status.code(),
        Some(0),
        "without --bank-out the input bank is never rewritten"
    );
    assert!(stderr(&out).contains("--bank-out"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&bank).unwrap(), before);
    let out = etalon(&[calibrate_exposure.as_slice(), &["--bank-out", p(&bank)]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("also an input"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&bank).unwrap(), before);
}

#[test]
fn a_chart_is_refused_under_a_name_that_says_another_format() {
    let dir = tempfile::tempdir().unwrap();
    let camp = dir.path().join("c.json");
    assert!(
        etalon(&["campaign", "example", "--out", p(&camp)])
            .status
            .success()
    );
    let results = dir.path().join("r.jsonl");
    assert!(
        etalon(&[
            "campaign",
            "run",
            "--campaign",
            p(&camp),
            "--participants",
            "3",
            "--out",
            p(&results)
        ])
        .status
        .success()
    );
    let out = etalon(&[
        "campaign",
        "report",
        p(&results),
        "--campaign",
        p(&camp),
        "--out",
        p(&dir.path().join("r.json")),
        "--svg",
        p(&dir.path().join("chart.png")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".svg"), "{}", stderr(&out));
    assert!(!dir.path().join("r.json").exists(), "refused before any work");
}

#[test]
fn a_pipe_gets_json_and_json_is_also_given_on_request() {
    // Tests run with standard output piped: the FORMATS JSON object.
    let out = etalon(&["bank", "validate"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"], 64);
    let out = etalon(&["bank", "validate", "--json"]);
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok());
}

#[test]
fn help_shows_defaults_and_allowed_values() {
    let out = etalon(&["score", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[possible values: eap, map, ml, wle]"), "{help}");
    assert!(
        help.contains("[default: eap]") && help.contains("[default: 61]"),
        "{help}"
    );
    let out = etalon(&["simulate", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("mfi, mpwi, kl, urry, random"), "{help}");
}
