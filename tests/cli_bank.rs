//! End to end: `etalon bank validate | convert | example` on good and bad files.

mod common;
use common::*;

fn tmp(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn example_bank_writes_and_validates_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["json", "csv"] {
        let out = dir.path().join(format!("ex.{ext}"));
        let s = json_out(&etalon(&["bank", "example", "--out", out.to_str().unwrap()]));
        assert!(s["items"].as_u64().unwrap() >= 60);
        let v = json_out(&etalon(&["bank", "validate", out.to_str().unwrap()]));
        assert_eq!(v["items"], s["items"]);
        assert_eq!(v["models"]["2pl"], s["items"]);
        assert_eq!(v["competences"].as_object().unwrap().len(), 16);
    }
}

#[test]
fn mirt_table_converts_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mirt = reference().join("mirt/SAT12_2PL.csv");
    for ext in ["csv", "json"] {
        let out = dir.path().join(format!("sat.{ext}"));
        let s = json_out(&etalon(&[
            "bank",
            "convert",
            "--from",
            "mirt",
            "--model",
            "2pl",
            mirt.to_str().unwrap(),
            out.to_str().unwrap(),
        ]));
        assert_eq!(s["items"], 32);
        let v = json_out(&etalon(&["bank", "validate", out.to_str().unwrap()]));
        assert_eq!(v["models"]["2pl"], 32);
    }
    // CSV → JSON → CSV gives the same bytes.
    let a = dir.path().join("sat.csv");
    let b = dir.path().join("back.json");
    let c = dir.path().join("back.csv");
    json_out(&etalon(&[
        "bank",
        "convert",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]));
    json_out(&etalon(&[
        "bank",
        "convert",
        b.to_str().unwrap(),
        c.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
    // Importing without a model is a clear error.
    assert_fails_with(
        &etalon(&[
            "bank",
            "convert",
            "--from",
            "mirt",
            mirt.to_str().unwrap(),
            c.to_str().unwrap(),
        ]),
        &["--model"],
    );
}

#[test]
fn bad_banks_are_rejected_with_located_messages() {
    let dir = tempfile::tempdir().unwrap();
    let h = "id,model,a,b,c,d,b1,b2\n";
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "nan.csv",
            format!("{h}q1,2pl,NaN,0,,,,\n").into(),
            vec!["line 2", "q1", "`a`"],
        ),
        (
            "inf.csv",
            format!("{h}q1,2pl,inf,0,,,,\n").into(),
            vec!["line 2", "q1", "`a`"],
        ),
        (
            "zero.csv",
            format!("{h}q1,2pl,1,0,,,,\nq2,2pl,0,0,,,,\n").into(),
            vec!["line 3", "q2", "`a`"],
        ),
        (
            "cd.csv",
            format!("{h}q1,4pl,1,0,0.6,0.5,,\n").into(),
            vec!["line 2", "q1", "`c`"],
        ),
        (
            "negc.csv",
            format!("{h}q1,3pl,1,0,-0.2,,,\n").into(),
            vec!["line 2", "q1", "`c`"],
        ),
        (
            "graded.csv",
            format!("{h}q1,graded,1,,,,0.5,-0.5\n").into(),
            vec!["line 2", "q1", "`b2`"],
        ),
        (
            "dupid.csv",
            format!("{h}q1,2pl,1,0,,,,\nq1,2pl,1,1,,,,\n").into(),
            vec!["line 3", "q1", "duplicate"],
        ),
        (
            "emptyid.csv",
            format!("{h} ,2pl,1,0,,,,\n").into(),
            vec!["line 2", "`id`", "empty"],
        ),
        (
            "model.csv",
            format!("{h}q1,5pl,1,0,,,,\n").into(),
            vec!["line 2", "q1", "5pl"],
        ),
        (
            "nocol.csv",
            b"id,a,b\nq1,1,0\n".to_vec(),
            vec!["line 1", "model", "missing"],
        ),
        (
            "dupcol.csv",
            b"id,model,b,b\nq1,rasch,0,0\n".to_vec(),
            vec!["line 1", "`b`", "duplicate"],
        ),
        (
            "nonnum.csv",
            format!("{h}q1,2pl,abc,0,,,,\n").into(),
            vec!["line 2", "q1", "`a`", "abc"],
        ),
        (
            "fields.csv",
            format!("{h}q1,2pl,1,0,,,,,x\n").into(),
            vec!["line 2", "q1", "9 fields"],
        ),
        ("empty.csv", Vec::new(), vec!["empty"]),
        (
            "binary.csv",
            vec![0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0, 0, 0x80, b'\n', 0xc3],
            vec!["not UTF-8", "line 1"],
        ),
        (
            "trunc.json",
            br#"{"id":"b","items":[{"id":"q1","parameters":{"model":"2pl","a":1"#.to_vec(),
            vec!["line 1", "column"],
        ),
        (
            "badjson.json",
            br#"{"id":"b","items":[{"id":"q7","parameters":{"model":"2pl","a":0,"b":0}}]}"#.to_vec(),
            vec!["q7", "field a"],
        ),
        ("bank.txt", b"whatever".to_vec(), vec!["unsupported extension"]),
    ];
    for (name, content, needles) in cases {
        let p = tmp(&dir, name, &content);
        let out = etalon(&["bank", "validate", &p]);
        let mut needles = needles;
        needles.push(name);
        assert_fails_with(&out, &needles);
    }
    let missing = dir.path().join("does-not-exist.csv");
    assert_fails_with(
        &etalon(&["bank", "validate", missing.to_str().unwrap()]),
        &["no such file"],
    );
}

#[test]
fn every_problem_is_listed_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(
        &dir,
        "many.csv",
        b"id,model,a,b\nq1,2pl,NaN,0\nq2,2pl,0,0\nq3,2pl,1,x\nq3,2pl,1,0\nq3,2pl,1,0\n",
    );
    let out = etalon(&["bank", "validate", &p]);
    assert_fails_with(&out, &["4 problems", "line 2", "line 3", "line 4", "line 6"]);
}

#[test]
fn help_shows_examples_and_bad_arguments_fail_cleanly() {
    let out = etalon(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
    let out = etalon(&[
        "bank", "convert", "--from", "mirt", "--model", "9pl", "a.csv", "b.csv",
    ]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn data_info_reads_the_shared_matrix() {
    let p = reference().join("data/SAT12_missingNA.csv");
    let s = json_out(&etalon(&["data", "info", p.to_str().unwrap()]));
    assert_eq!(s["persons"], 600);
    assert_eq!(s["missing"], 69);
}
