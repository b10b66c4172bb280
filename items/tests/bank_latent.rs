//! The latent distribution a bank records: validated, kept by JSON and CSV, covered by the
//! fingerprint only when it is not N(0, 1).

use etalon_items::*;
use std::path::Path;

fn small_bank() -> Bank {
    let items = vec![
        Item::new("q1", ItemModel::rasch(-0.5).unwrap()),
        Item::new("q2", ItemModel::rasch(0.25).unwrap()),
        Item::new("q3", ItemModel::rasch(1.0).unwrap()),
    ];
    Bank::new("small", Framework::default(), items, Provenance::default()).unwrap()
}

const ESTIMATED: BankLatent = BankLatent {
    mean: 0.0,
    variance: 1.8374512,
};

#[test]
fn banks_without_a_latent_keep_their_fingerprint() {
    // The fingerprint of this bank before banks recorded a latent distribution (recomputed
    // independently from the algorithm of the previous release): saved sessions hold it.
    let bank = small_bank();
    assert_eq!(bank.latent(), None);
    assert_eq!(bank.fingerprint(), "56a3334b281b2237");
    // N(0, 1) is what a bank without a latent distribution means: same fingerprint.
    let standard = bank.clone().with_latent(Some(BankLatent::STANDARD)).unwrap();
    assert_eq!(standard.fingerprint(), bank.fingerprint());
    // Any other distribution changes scoring, and the fingerprint.
    let estimated = bank.clone().with_latent(Some(ESTIMATED)).unwrap();
    assert_ne!(estimated.fingerprint(), bank.fingerprint());
    let shifted = bank
        .with_latent(Some(BankLatent {
            mean: 0.3,
            ..ESTIMATED
        }))
        .unwrap();
    assert_ne!(shifted.fingerprint(), estimated.fingerprint());
    assert_eq!(shifted.summary().latent, shifted.latent());
}

#[test]
fn invalid_moments_are_refused_in_field_latent() {
    for (mean, variance) in [(f64::NAN, 1.0), (0.0, 0.0), (0.0, -1.0), (0.0, f64::INFINITY)] {
        let problems = small_bank()
            .with_latent(Some(BankLatent { mean, variance }))
            .unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field.as_deref(), Some("latent"), "{}", problems[0]);
    }
    let json = small_bank().to_json().replace(
        "\"items\"",
        "\"latent\": {\"mean\": 0, \"variance\": -2},\n  \"items\"",
    );
    let err = Bank::from_json(&json, "b.json").unwrap_err();
    assert_eq!(err.problems().len(), 1, "{err}");
    assert_eq!(err.problems()[0].field.as_deref(), Some("latent"));
    assert!(
        err.to_string().contains("latent variance must be finite and > 0"),
        "{err}"
    );
    // Unknown fields are refused.
    let json = small_bank().to_json().replace(
        "\"items\"",
        "\"latent\": {\"mean\": 0, \"variance\": 2, \"sd\": 1},\n  \"items\"",
    );
    assert!(Bank::from_json(&json, "b.json").is_err());
}

#[test]
fn json_and_csv_keep_the_latent_distribution() {
    let bank = small_bank().with_latent(Some(ESTIMATED)).unwrap();
    let json = bank.to_json();
    assert!(
        json.contains("\"latent\": {\n    \"mean\": 0.0,\n    \"variance\": 1.8374512\n  }"),
        "{json}"
    );
    assert_eq!(Bank::from_json(&json, "b.json").unwrap(), bank);
    // Without one, nothing is written.
    assert!(!small_bank().to_json().contains("latent"));
    assert!(!bank_io::bank_to_csv(&small_bank()).contains("latent"));

    let csv = bank_io::bank_to_csv(&bank);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,model,b,status,latent_mean,latent_variance")
    );
    assert!(lines.all(|l| l.ends_with(",0,1.8374512")), "{csv}");
    // The CSV bank takes its id from the file name.
    let back = bank_io::bank_from_csv(&csv, Path::new("small.csv")).unwrap();
    assert_eq!(back.latent(), Some(ESTIMATED));
    assert_eq!(back.fingerprint(), bank.fingerprint());
    assert_eq!(bank_io::bank_to_csv(&back), csv);
}

#[test]
fn csv_rows_must_agree_on_the_latent_distribution() {
    let path = Path::new("b.csv");
    let text =
        "id,model,b,latent_mean,latent_variance\nq1,rasch,0,0,1.5\nq2,rasch,1,0,1.6\nq3,rasch,2,0.1,1.5\n";
    let err = bank_io::bank_from_csv(text, path).unwrap_err();
    let ps = err.problems();
    assert_eq!(ps.len(), 2, "{err}");
    assert_eq!(
        (ps[0].line, ps[0].field.as_deref()),
        (Some(3), Some("latent_variance"))
    );
    assert_eq!(
        (ps[1].line, ps[1].field.as_deref()),
        (Some(4), Some("latent_mean"))
    );
    assert!(ps[0].message.contains("on line 2"), "{err}");
    // An empty cell disagrees too.
    let text = "id,model,b,latent_mean,latent_variance\nq1,rasch,0,0,1.5\nq2,rasch,1,,\n";
    assert_eq!(
        bank_io::bank_from_csv(text, path).unwrap_err().problems().len(),
        2
    );
    // Both columns or neither.
    let err = bank_io::bank_from_csv("id,model,b,latent_variance\nq1,rasch,0,1.5\n", path).unwrap_err();
    assert_eq!(err.problems()[0].field.as_deref(), Some("latent_mean"), "{err}");
    // Both values or neither.
    let err =
        bank_io::bank_from_csv("id,model,b,latent_mean,latent_variance\nq1,rasch,0,0,\n", path).unwrap_err();
    assert_eq!(
        err.problems()[0].field.as_deref(),
        Some("latent_variance"),
        "{err}"
    );
    // Invalid moments, located.
    let err = bank_io::bank_from_csv("id,model,b,latent_mean,latent_variance\nq1,rasch,0,0,-1\n", path)
        .unwrap_err();
    let p = &err.problems()[0];
    assert_eq!(
        (p.line, p.field.as_deref()),
        (Some(2), Some("latent_variance")),
        "{err}"
    );
    // Empty columns: no latent distribution.
    let bank =
        bank_io::bank_from_csv("id,model,b,latent_mean,latent_variance\nq1,rasch,0,,\n", path).unwrap();
    assert_eq!(bank.latent(), None);
}
