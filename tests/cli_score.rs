//! End to end: `etalon score` against mirt, output format, bad input.

mod common;
use common::*;

fn score(args: &[&str]) -> (serde_json::Value, Vec<Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.csv");
    let mut all = vec!["score", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let summary = json_out(&etalon(&all));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (summary, rows)
}

fn mirt_bank(dir: &tempfile::TempDir, table: &str, model: &str) -> String {
    let out = dir.path().join(format!("{model}.csv"));
    let src = reference().join("mirt").join(table);
    json_out(&etalon(&[
        "bank",
        "convert",
        "--from",
        "mirt",
        "--model",
        model,
        src.to_str().unwrap(),
        out.to_str().unwrap(),
    ]));
    out.to_string_lossy().into_owned()
}

#[test]
fn sat12_eap_and_ml_through_the_cli_match_mirt() {
    let dir = tempfile::tempdir().unwrap();
    let bank = mirt_bank(&dir, "SAT12_2PL.csv", "2pl");
    let data = reference().join("data/SAT12.csv");
    let mut rdr = csv::Reader::from_path(reference().join("mirt/SAT12_2PL_fscores_all.csv")).unwrap();
    let reference: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let (s, rows) = score(&[
        "--bank",
        &bank,
        "--responses",
        data.to_str().unwrap(),
        "--method",
        "eap",
    ]);
    assert_eq!(s["persons"], 600);
    assert_eq!(rows[0], ["person", "theta", "se"]);
    for (row, r) in rows[1..].iter().zip(&reference) {
        assert_eq!(row[0], r[0].to_string());
        let (t, se): (f64, f64) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        assert!((t - r[1].parse::<f64>().unwrap()).abs() < 1e-4);
        assert!((se - r[2].parse::<f64>().unwrap()).abs() < 1e-4);
    }
    // ML with mirt's bounds (±20): infinite exactly where mirt's is, written `inf` with an empty SE.
    let (s, rows) = score(&[
        "--bank",
        &bank,
        "--responses",
        data.to_str().unwrap(),
        "--method",
        "ml",
        "--theta-range",
        "-20,20",
    ]);
    assert_eq!(s["infinite"], 3);
    for (row, r) in rows[1..].iter().zip(&reference) {
        if &r[5] == "Inf" {
            assert_eq!((row[1].as_str(), row[2].as_str()), ("inf", ""));
        } else {
            assert!((row[1].parse::<f64>().unwrap() - r[5].parse::<f64>().unwrap()).abs() < 1e-3);
        }
    }
    // The default range bounds the estimates at ±6.
    let (s, rows) = score(&[
        "--bank",
        &bank,
        "--responses",
        data.to_str().unwrap(),
        "--method",
        "ml",
    ]);
    assert!(s["bounded"].as_u64().unwrap() >= 1);
    assert!(
        rows[1..]
            .iter()
            .filter(|r| r[1] != "inf")
            .all(|r| r[1].parse::<f64>().unwrap().abs() <= 6.0)
    );
}

#[test]
fn likert_codes_long_format_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let bank = mirt_bank(&dir, "Science_graded.csv", "graded");
    let wide = reference().join("data/Science.csv");
    let (_, rows_wide) = score(&[
        "--bank",
        &bank,
        "--responses",
        wide.to_str().unwrap(),
        "--method",
        "map",
    ]);
    // The same data in long form, persons named, rows shuffled by item.
    let text = std::fs::read_to_string(&wide).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|h| h.trim_matches('"').to_string())
        .collect();
    let mut long = String::from("person,item,response\n");
    let body: Vec<Vec<String>> = lines.map(|l| l.split(',').map(String::from).collect()).collect();
    for (j, item) in header.iter().enumerate().rev() {
        for (p, row) in body.iter().enumerate() {
            long.push_str(&format!("{},{item},{}\n", p + 1, row[j]));
        }
    }
    let lp = dir.path().join("long.csv");
    std::fs::write(&lp, long).unwrap();
    let (_, rows_long) = score(&[
        "--bank",
        &bank,
        "--responses",
        lp.to_str().unwrap(),
        "--format",
        "long",
        "--method",
        "map",
        "--threads",
        "1",
    ]);
    // Same persons, same estimates up to the order of floating-point sums.
    assert_eq!(rows_wide.len(), rows_long.len());
    for (a, b) in rows_wide[1..].iter().zip(&rows_long[1..]) {
        assert_eq!(a[0], b[0]);
        for k in 1..3 {
            let (x, y): (f64, f64) = (a[k].parse().unwrap(), b[k].parse().unwrap());
            assert!((x - y).abs() < 1e-9, "person {}: {x} vs {y}", a[0]);
        }
    }
}

#[test]
fn bad_scoring_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bank = mirt_bank(&dir, "LSAT7_2PL.csv", "2pl");
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let out = dir.path().join("o.csv");
    let o = out.to_str().unwrap();
    let unknown = w("u.csv", "Item.1,Nope,Other\n1,0,1\n");
    assert_fails_with(
        &etalon(&["score", "--bank", &bank, "--responses", &unknown, "--out", o]),
        &["Nope", "Other"],
    );
    let code = w("c.csv", "Item.1,Item.2\n1,0\n3,1\n");
    assert_fails_with(
        &etalon(&["score", "--bank", &bank, "--responses", &code, "--out", o]),
        &["Item.1", "code 3"],
    );
    let ok = w("ok.csv", "Item.1\n1\n");
    assert_fails_with(
        &etalon(&[
            "score",
            "--bank",
            &bank,
            "--responses",
            &ok,
            "--out",
            o,
            "--prior-sd",
            "0",
        ]),
        &["prior SD"],
    );
    assert_rejects_argument(
        &etalon(&[
            "score",
            "--bank",
            &bank,
            "--responses",
            &ok,
            "--out",
            o,
            "--theta-range",
            "3,-3",
        ]),
        "range",
    );
    // An empty response row: EAP gives the prior, ML cannot (row kept, SE empty, warning).
    let empty = w("e.csv", "Item.1,Item.2\n1,0\nNA,NA\n");
    let (_, rows) = score(&["--bank", &bank, "--responses", &empty, "--method", "eap"]);
    assert!(rows[2][1].parse::<f64>().unwrap().abs() < 1e-9);
    let r = etalon(&[
        "score",
        "--bank",
        &bank,
        "--responses",
        &empty,
        "--method",
        "ml",
        "--out",
        o,
    ]);
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("at least one answer"));
    assert_eq!(std::fs::read_to_string(o).unwrap().lines().nth(2), Some("2,,"));
}
