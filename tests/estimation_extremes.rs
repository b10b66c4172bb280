//! `etalon score` on extreme but valid banks and grids (issue "Nothing lost, nothing trusted", point 5,
//! "No silent wrong numbers"): no estimate equals a bound unless counted as bounded, no θ = 0 with
//! SE = 0, and a person who cannot be scored gets empty cells and a warning on standard error.

use std::path::Path;
use std::process::Command;

/// Items of slope 10⁶ at ±10⁶ (no information anywhere in the range) and three ordinary items.
const BANK: &str = "id,model,a,b
x1,2pl,1000000,-1000000
x2,2pl,1000000,1000000
x3,2pl,1000000,-1000000
x4,2pl,1000000,1000000
n1,2pl,1.2,-0.5
n2,2pl,0.8,0.3
n3,2pl,1.5,1.0
";

const RESPONSES: &str = "person,x1,x2,x3,x4,n1,n2,n3
mixed,1,0,1,0,NA,NA,NA
allright,1,1,1,1,NA,NA,NA
allwrong,0,0,0,0,NA,NA,NA
plain,NA,NA,NA,NA,1,0,1
both,1,0,1,0,1,0,1
plainhigh,NA,NA,NA,NA,1,1,1
";

/// One person's output cells.
#[derive(Debug)]
struct Row {
    person: String,
    theta: String,
    se: String,
}

/// What a run produced: the summary, the rows, standard error.
struct Run {
    summary: serde_json::Value,
    rows: Vec<Row>,
    stderr: String,
}

fn score(dir: &Path, bank: &str, responses: &str, args: &[&str]) -> Run {
    let out = dir.join("scores.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_etalon"))
        .args([
            "score",
            "--bank",
            bank,
            "--responses",
            responses,
            "--json",
            "--out",
        ])
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut rdr = csv::Reader::from_path(&out).unwrap();
    let rows = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            Row {
                person: r[0].to_string(),
                theta: r[1].to_string(),
                se: r[2].to_string(),
            }
        })
        .collect();
    Run {
        summary,
        rows,
        stderr,
    }
}

/// The contract, for any run with θ range `bounds`.
fn check(run: &Run, bounds: (f64, f64), label: &str) {
    let mut at_bound = 0;
    let mut empty = 0;
    for r in &run.rows {
        if r.theta.is_empty() {
            empty += 1;
            assert!(r.se.is_empty(), "{label}: {r:?}");
            assert!(
                run.stderr.contains(&format!("warning: person {}:", r.person)),
                "{label}: no warning for {r:?}: {}",
                run.stderr
            );
            continue;
        }
        let theta: f64 = r.theta.parse().unwrap();
        if theta.is_infinite() {
            assert!(r.se.is_empty(), "{label}: {r:?}");
            continue;
        }
        if theta == bounds.0 || theta == bounds.1 {
            at_bound += 1;
        }
        if !r.se.is_empty() {
            let se: f64 = r.se.parse().unwrap();
            assert!(se > 0.0, "{label}: SE 0: {r:?}");
        }
        assert!(!(theta == 0.0 && r.se.parse() == Ok(0.0)), "{label}: {r:?}");
    }
    let bounded = run.summary["bounded"].as_u64().unwrap();
    assert!(
        at_bound <= bounded,
        "{label}: {at_bound} at a bound, {bounded} flagged"
    );
    if bounded > 0 {
        assert!(
            run.stderr.contains("reached the θ range"),
            "{label}: {}",
            run.stderr
        );
    }
    assert_eq!(run.summary["unscored"].as_u64().unwrap(), empty, "{label}");
}

fn cells<'a>(run: &'a Run, person: &str) -> (&'a str, &'a str) {
    let r = run.rows.iter().find(|r| r.person == person).unwrap();
    (&r.theta, &r.se)
}

fn num(s: &str) -> f64 {
    s.parse().unwrap()
}

#[test]
fn extreme_bank_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let bank = dir.path().join("bank.csv");
    let resp = dir.path().join("responses.csv");
    std::fs::write(&bank, BANK).unwrap();
    std::fs::write(&resp, RESPONSES).unwrap();
    let (bank, resp) = (bank.to_str().unwrap(), resp.to_str().unwrap());
    let run = |method: &str| {
        let r = score(dir.path(), bank, resp, &["--method", method]);
        check(&r, (-6.0, 6.0), method);
        r
    };

    // WLE: before, −6 for every pattern on the far items; now unscorable with a warning.
    let wle = run("wle");
    for p in ["mixed", "allright", "allwrong"] {
        assert_eq!(cells(&wle, p), ("", ""), "{p}");
        assert!(
            wle.stderr
                .contains(&format!("warning: person {p}: WLE estimate cannot be computed"))
        );
    }
    assert_eq!(wle.summary["unscored"], 3);
    // The far items add nothing to a person who also answered ordinary items.
    assert_eq!(cells(&wle, "both"), cells(&wle, "plain"));
    assert!(num(cells(&wle, "plain").0).abs() < 6.0);

    // ML: before, the EAP (≈ 0) with an empty SE for the flat likelihood; now unscorable. The
    // all-highest and all-lowest patterns stay ±∞ with an empty SE, as documented.
    let ml = run("ml");
    assert_eq!(cells(&ml, "mixed"), ("", ""));
    assert!(
        ml.stderr
            .contains("warning: person mixed: ML estimate cannot be computed")
    );
    assert_eq!(cells(&ml, "allright"), ("inf", ""));
    assert_eq!(cells(&ml, "allwrong"), ("-inf", ""));
    assert_eq!(cells(&ml, "plainhigh"), ("inf", ""));
    assert_eq!(ml.summary["unscored"], 1);
    assert_eq!(ml.summary["infinite"], 3);

    // EAP: before, θ = ±6 with SE 0 (Finite, no warning); now a refined mean just inside the range,
    // a positive SD, counted as bounded with the warning. The uninformative pattern keeps the prior.
    let eap = run("eap");
    for (p, sign) in [("allright", 1.0), ("allwrong", -1.0)] {
        let (t, s) = cells(&eap, p);
        assert!(sign * num(t) < 6.0 && sign * num(t) > 5.99, "{p}: {t}");
        assert!(num(s) > 0.0, "{p}: {s}");
    }
    assert_eq!(eap.summary["bounded"], 2);
    let (t, s) = cells(&eap, "mixed");
    assert!(num(t).abs() < 1e-9 && (num(s) - 1.0).abs() < 1e-6, "{t} {s}");

    // MAP: the modes of the all-correct/all-wrong patterns lie near ±10⁶: at the bounds, flagged.
    let map = run("map");
    assert_eq!(cells(&map, "allright").0, "6");
    assert_eq!(map.summary["bounded"], 2);
    assert_eq!(map.summary["unscored"], 0);
}

#[test]
fn a_huge_theta_range_is_not_theta_zero_se_zero() {
    // 61 points on [−10⁶, 10⁶]: before, θ = 1.2e-10 and SE = 0 for every person.
    let dir = tempfile::tempdir().unwrap();
    let bank = dir.path().join("bank.csv");
    let resp = dir.path().join("responses.csv");
    std::fs::write(&bank, BANK).unwrap();
    std::fs::write(&resp, "person,n1,n2,n3\na,1,0,1\nb,0,0,1\nc,1,1,1\nd,0,0,0\n").unwrap();
    let (bank, resp) = (bank.to_str().unwrap(), resp.to_str().unwrap());
    for method in ["eap", "map", "ml", "wle"] {
        let huge = score(
            dir.path(),
            bank,
            resp,
            &["--method", method, "--theta-range", "-1e6,1e6"],
        );
        check(&huge, (-1e6, 1e6), method);
        let plain = score(dir.path(), bank, resp, &["--method", method]);
        for (h, p) in huge.rows.iter().zip(&plain.rows) {
            if p.theta.ends_with("inf") {
                assert_eq!((&h.theta, &h.se), (&p.theta, &p.se), "{method}");
                continue;
            }
            // The prior N(0, 1) (EAP, MAP) or the likelihood (ML, WLE) leaves nothing beyond ±6.
            let (dt, ds) = (num(&h.theta) - num(&p.theta), num(&h.se) - num(&p.se));
            assert!(dt.abs() < 1e-6 && ds.abs() < 1e-6, "{method} {h:?} vs {p:?}");
            assert!(num(&h.se) > 0.5, "{method} {h:?}");
        }
    }
}

#[test]
fn thousands_of_answers_get_a_resolved_eap() {
    // 3000 answers: posterior SD ≈ 0.03, a seventh of the grid spacing. Before: θ = 0.39999999 (a grid
    // point), SE = 4e-5.
    let dir = tempfile::tempdir().unwrap();
    let b = |j: usize| ((j % 41) as f64 - 20.0) / 10.0;
    let mut bank = String::from("id,model,a,b\n");
    let mut header = Vec::new();
    let mut row = Vec::new();
    for j in 0..3000 {
        bank.push_str(&format!("i{j},2pl,1.5,{}\n", b(j)));
        header.push(format!("i{j}"));
        row.push(if b(j) < 0.37 { "1" } else { "0" });
    }
    let bank_path = dir.path().join("bank.csv");
    let resp_path = dir.path().join("responses.csv");
    std::fs::write(&bank_path, bank).unwrap();
    std::fs::write(&resp_path, format!("{}\n{}\n", header.join(","), row.join(","))).unwrap();
    let (bank, resp) = (bank_path.to_str().unwrap(), resp_path.to_str().unwrap());
    let eap = score(dir.path(), bank, resp, &["--method", "eap"]);
    let ml = score(dir.path(), bank, resp, &["--method", "ml"]);
    check(&eap, (-6.0, 6.0), "eap");
    let (t, s) = (num(&eap.rows[0].theta), num(&eap.rows[0].se));
    let (tm, sm) = (num(&ml.rows[0].theta), num(&ml.rows[0].se));
    assert!((t - tm).abs() < 2e-3, "EAP {t} vs ML {tm}");
    assert!((s / sm - 1.0).abs() < 0.01, "EAP SE {s} vs ML {sm}");
}
