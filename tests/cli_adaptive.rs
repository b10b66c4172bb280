//! End to end: `etalon simulate` (FORMATS.md contract, catR reproduction through the CLI, exposure
//! calibration) and `etalon assess` (an interactive test driven through standard input).

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn simulate_reproduces_catr_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let c = reference().join("catR");
    let out = dir.path().join("results.csv");
    let p = |name: &str| c.join(name).to_string_lossy().into_owned();
    let s = json_out(&etalon(&[
        "simulate",
        "--bank",
        &p("bank_2pl_500.csv"),
        "--thetas",
        &p("thetas_1000.csv"),
        "--responses",
        &p("responses_1000x500.csv.gz"),
        "--quadrature",
        "33",
        "--quadrature-rule",
        "trapezoid",
        "--theta-range",
        "-4,4",
        "--estimator",
        "eap",
        "--select",
        "mfi",
        "--stop-se",
        "0.3",
        "--max-items",
        "40",
        "--start-theta",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]));
    for key in [
        "examinees",
        "mean_length",
        "bias",
        "rmse",
        "mean_se",
        "max_exposure",
        "elapsed_s",
    ] {
        assert!(s.get(key).is_some(), "summary lacks {key}: {s}");
    }
    assert_eq!(s["examinees"], 1000);
    assert!((s["mean_length"].as_f64().unwrap() - 9.844).abs() < 1e-9);
    let ours = std::fs::read_to_string(&out).unwrap();
    let theirs = std::fs::read_to_string(c.join("catR_EAP_results.csv")).unwrap();
    let mut lines = ours.lines();
    assert_eq!(lines.next(), Some("examinee,true_theta,theta,se,length,items"));
    let same = lines
        .zip(theirs.lines().skip(1))
        .filter(|(a, b)| a.rsplit(',').next() == b.rsplit(',').next())
        .count();
    assert_eq!(same, 1000);
}

#[test]
fn simulate_options_config_and_determinism() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("session.json");
    std::fs::write(
        &cfg,
        r#"{"selection": {"rule": "mpwi", "exposure": {"method": "randomesque", "k": 3}},
            "content": {"avoid_consecutive": true, "one_per_tag_prefix": "skill:"},
            "stopping": {"max_items": 12, "se_target": 0.45}}"#,
    )
    .unwrap();
    let run = |threads: &str| {
        let out = dir.path().join(format!("r{threads}.csv"));
        let s = json_out(&etalon(&[
            "simulate",
            "--examinees",
            "300",
            "--seed",
            "7",
            "--config",
            cfg.to_str().unwrap(),
            "--cuts",
            "-1,0,1",
            "--threads",
            threads,
            "--out",
            out.to_str().unwrap(),
        ]));
        (s, std::fs::read_to_string(out).unwrap())
    };
    let (s1, r1) = run("1");
    let (s2, r2) = run("2");
    assert_eq!(r1, r2, "results depend on the thread count");
    assert_eq!(s1["rmse"], s2["rmse"]);
    assert!(s1["length"]["max"].as_u64().unwrap() <= 12);
    assert!(s1["classification_accuracy"].as_f64().unwrap() > 0.3);
    assert!(s1["exposure"]["never_used"].as_f64().unwrap() < 1.0);
    // A typo in the configuration is named.
    std::fs::write(&cfg, r#"{"stopping": {"max_itemz": 12}}"#).unwrap();
    assert_fails_with(
        &etalon(&["simulate", "--examinees", "3", "--config", cfg.to_str().unwrap()]),
        &["max_itemz"],
    );
    assert_fails_with(&etalon(&["simulate"]), &["--thetas", "--examinees"]);
    assert_rejects_argument(
        &etalon(&["simulate", "--examinees", "3", "--exposure", "sometimes"]),
        "exposure",
    );
}

#[test]
fn exposure_calibration_writes_parameters_and_caps_exposure() {
    let dir = tempfile::tempdir().unwrap();
    let bank = reference().join("catR/bank_2pl_500.csv");
    let out = dir.path().join("bank_sh.csv");
    let s = json_out(&etalon(&[
        "simulate",
        "--bank",
        bank.to_str().unwrap(),
        "--examinees",
        "1000",
        "--calibrate-exposure",
        "0.25",
        "--bank-out",
        out.to_str().unwrap(),
        "--max-items",
        "20",
        "--stop-se",
        "0.3",
    ]));
    assert!(s["exposure_calibration"]["items_controlled"].as_u64().unwrap() > 0);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.lines().next().unwrap().contains("exposure"));
    // Without control the most used item is given to everyone; with it, far less.
    assert!(s["max_exposure"].as_f64().unwrap() < 0.45, "{s}");
}

#[test]
fn assess_runs_an_interactive_test() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("session.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_etalon"))
        .args(["assess", "--seed", "11", "--save", save.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A wrong input first (re-asked), then always choice 2.
    let answers = "x\n".to_string() + &"2\n".repeat(40);
    child.stdin.take().unwrap().write_all(answers.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let s = json_out(&out);
    let ui = String::from_utf8_lossy(&out.stderr);
    assert!(
        ui.contains("Question 1") && ui.contains("please type a number"),
        "{ui}"
    );
    assert!(!s["items"].as_array().unwrap().is_empty() && s["se"].as_f64().unwrap() > 0.0);
    // The terminal shows the bound on the length and the competence's name, not its id.
    assert!(ui.contains("Question 1 of at most 32 — "), "{ui}");
    assert!(
        ui.contains("Search for information and follow it over time") || ui.contains("—"),
        "{ui}"
    );
    // The profile: every competence of the example bank, each with why it stopped.
    let competences = s["competences"].as_object().unwrap();
    assert_eq!(competences.len(), 16, "{s}");
    assert!(
        competences
            .values()
            .all(|c| c["stop_reason"].is_string() && c["label"].is_string())
    );
    assert_eq!(s["stop_reason"], "every-competence");
    assert!(
        s["tutorials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["url"].as_str().unwrap().starts_with("https://"))
    );
    assert!(save.exists());
    // Input that ends early: a clear error, not a panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_etalon"))
        .args(["assess", "--seed", "11"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"1\n").unwrap();
    assert_fails_with(&child.wait_with_output().unwrap(), &["input ended"]);
}

/// Run `etalon assess` with these arguments and this input.
fn assess(args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_etalon"))
        .arg("assess")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn assess_quits_saves_and_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("me.json");
    let save_s = save.to_str().unwrap();
    // Three answers, then q: saved, exit 0, told how to resume.
    let out = assess(&["--seed", "5", "--save", save_s], "1\n2\n1\nq\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ui = String::from_utf8_lossy(&out.stderr);
    assert!(
        ui.contains("Saved after 3 answers") && ui.contains(&format!("etalon assess --save {save_s}")),
        "{ui}"
    );
    assert!(out.stdout.is_empty(), "no result before the end");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&save).unwrap()).unwrap();
    assert_eq!(saved["schema"], 1, "saved assessments carry their format version");
    // Resuming says where, and asks question 4 next.
    let out = assess(&["--save", save_s], "q\n");
    let ui = String::from_utf8_lossy(&out.stderr);
    assert!(
        ui.contains("after 3 answers") && ui.contains("Question 4 of at most"),
        "{ui}"
    );
    // A test finished in two sittings equals the one in one sitting.
    let whole = assess(&["--seed", "5", "--json"], &"1\n2\n1\n".repeat(20));
    let _ = std::fs::remove_file(&save);
    let first = assess(&["--seed", "5", "--save", save_s], "1\n2\n1\nq\n");
    assert!(first.status.success());
    let rest = assess(&["--save", save_s, "--json"], &"1\n2\n1\n".repeat(20)[6..]);
    assert_eq!(json_out(&whole), json_out(&rest));
}

#[test]
fn assess_help_states_the_real_stopping_rule() {
    let out = Command::new(env!("CARGO_BIN_EXE_etalon"))
        .args(["assess", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("at most 2 questions per competence"), "{help}");
    assert!(
        !help.contains("SE ≤ 0.4 or 20 items"),
        "the old, wrong rule: {help}"
    );
}

#[test]
fn assess_reads_a_design_or_a_plain_session_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("session.json");
    std::fs::write(&plain, r#"{"stopping": {"max_items": 3}}"#).unwrap();
    let out = assess(
        &["--seed", "1", "--config", plain.to_str().unwrap(), "--json"],
        &"1\n".repeat(5),
    );
    let s = json_out(&out);
    assert_eq!(s["items"].as_array().unwrap().len(), 3, "{s}");
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"profile": {"max_items_per_competence": 1, "min_items_per_competence": 1}}"#,
    )
    .unwrap();
    let out = assess(
        &["--seed", "1", "--config", profile.to_str().unwrap(), "--json"],
        &"1\n".repeat(20),
    );
    assert_eq!(json_out(&out)["items"].as_array().unwrap().len(), 16);
    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, r#"{"profile": {"max_items_per_competense": 1}}"#).unwrap();
    assert_fails_with(
        &assess(&["--config", typo.to_str().unwrap()], ""),
        &["typo.json", "line 1", "max_items_per_competense"],
    );
}

/// A bank holding an item that discriminates negatively (mirt's SAT12 2PL with `Item.18` reversed, the
/// bank's most discriminating item): `bank validate` accepts it with a warning, adaptive tests never
/// give it, unless the configuration allows it — and then they give it often.
#[test]
fn adaptive_tests_leave_out_negatively_discriminating_items() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(reference().join("mirt/SAT12_2PL.csv")).unwrap();
    let reversed: String = text
        .lines()
        .map(|l| {
            if l.starts_with("\"Item.18\",") {
                let mut cells: Vec<String> = l.split(',').map(str::to_string).collect();
                cells[1] = format!("-{}", cells[1]);
                cells.join(",")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mirt = dir.path().join("mirt.csv");
    std::fs::write(&mirt, reversed).unwrap();
    let bank = dir.path().join("bank.csv");
    let bank_s = bank.to_str().unwrap();
    json_out(&etalon(&[
        "bank",
        "convert",
        "--from",
        "mirt",
        "--model",
        "2pl",
        mirt.to_str().unwrap(),
        bank_s,
    ]));
    let summary = json_out(&etalon(&["bank", "validate", bank_s]));
    assert!(
        summary["warnings"][0]
            .as_str()
            .unwrap()
            .contains("`Item.18` discriminates negatively"),
        "{summary}"
    );
    let given = |config: &str| {
        let cfg = dir.path().join("session.json");
        std::fs::write(&cfg, config).unwrap();
        let out = dir.path().join("results.csv");
        json_out(&etalon(&[
            "simulate",
            "--bank",
            bank_s,
            "--examinees",
            "200",
            "--seed",
            "4",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]));
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .skip(1)
            .filter(|l| l.rsplit(',').next().unwrap().split(';').any(|i| i == "Item.18"))
            .count()
    };
    assert_eq!(
        given(r#"{"stopping": {"max_items": 10}}"#),
        0,
        "never selected by default"
    );
    let allowed = given(r#"{"stopping": {"max_items": 10}, "selection": {"allow_negative_slopes": true}}"#);
    assert!(allowed > 50, "selected {allowed} times of 200 once allowed");
}
