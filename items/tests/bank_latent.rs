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

fn two_competence_bank() -> Bank {
    let mut items = Vec::new();
    for (id, c) in [("a1", "A"), ("a2", "A"), ("b1", "B")] {
        let mut item = Item::new(id, ItemModel::two_pl(1.2, 0.1).unwrap());
        item.competence = Some(c.into());
        items.push(item);
    }
    Bank::new("md", Framework::default(), items, Provenance::default()).unwrap()
}

#[test]
fn a_multidimensional_structure_is_kept_by_json_and_changes_the_fingerprint() {
    let bank = two_competence_bank();
    let s = Structure::new(vec!["A".into(), "B".into()], vec![vec![1.0, 0.7], vec![0.7, 1.0]]).unwrap();
    let md = bank.clone().with_structure(Some(s.clone())).unwrap();
    assert_ne!(md.fingerprint(), bank.fingerprint());
    let json = md.to_json();
    assert!(json.contains("\"dimensions\""), "{json}");
    let back = Bank::from_json(&json, "md.json").unwrap();
    assert_eq!(back.structure(), Some(&s));
    assert_eq!(back.fingerprint(), md.fingerprint());
    // An item whose competence is no dimension, a correlation out of range, moments with dimensions:
    // each is reported, with its field.
    let broken = json
        .replace("\"competence\": \"B\"", "\"competence\": \"C\"")
        .replacen("0.7", "1.7", 1)
        .replace(
            "\"dimensions\"",
            "\"mean\": 0.5, \"variance\": 1.0, \"dimensions\"",
        );
    let err = Bank::from_json(&broken, "md.json").unwrap_err().to_string();
    for needle in [
        "symmetric",
        "means 0 and variances 1",
        "`C` is not one of the latent dimensions",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // Half a structure.
    let half = json.replace("\"dimensions\"", "\"ignored\"");
    assert!(Bank::from_json(&half, "md.json").is_err());
    let no_corr = md.to_json().replacen("\"correlations\"", "\"x\"", 1);
    assert!(Bank::from_json(&no_corr, "md.json").is_err());
    // Editing an item away from the dimensions is refused and leaves the bank as it was.
    let mut edited = md.clone();
    let err = edited
        .update_items(|items| items[0].competence = Some("Z".into()))
        .unwrap_err();
    assert!(
        err[0].to_string().contains("not one of the latent dimensions"),
        "{err:?}"
    );
    assert_eq!(edited, md);
}

#[test]
fn a_restricted_bank_keeps_its_competences_items_and_the_marginal_structure() {
    let mut items = Vec::new();
    for (id, c) in [("a1", "A"), ("b1", "B"), ("c1", "C"), ("c2", "C")] {
        let mut item = Item::new(id, ItemModel::two_pl(1.2, 0.1).unwrap());
        item.competence = Some(c.into());
        items.push(item);
    }
    let r = vec![vec![1.0, 0.5, 0.6], vec![0.5, 1.0, 0.7], vec![0.6, 0.7, 1.0]];
    let s = Structure::new(vec!["A".into(), "B".into(), "C".into()], r).unwrap();
    let bank = Bank::new("md3", Framework::default(), items, Provenance::default())
        .unwrap()
        .with_version("4")
        .with_structure(Some(s))
        .unwrap();
    // C then A: rows and columns of N(0, R) in that order.
    let sub = bank.restricted(&["C".into(), "A".into()]).unwrap();
    let ids: Vec<&str> = sub.items().iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["a1", "c1", "c2"]);
    let st = sub.structure().unwrap();
    assert_eq!(st.dimensions, ["C", "A"]);
    assert_eq!(st.correlations, vec![vec![1.0, 0.6], vec![0.6, 1.0]]);
    assert_eq!((sub.id(), sub.version()), ("md3", "4"));
    assert_ne!(sub.fingerprint(), bank.fingerprint());
    // Every competence: the same bank.
    let all = bank.restricted(&["A".into(), "B".into(), "C".into()]).unwrap();
    assert_eq!(all.fingerprint(), bank.fingerprint());
    // Unknown, repeated or no competences are refused, in field `competences`.
    for bad in [vec!["D".to_string()], vec!["A".into(), "A".into()], vec![]] {
        let err = bank.restricted(&bad).unwrap_err();
        assert_eq!(err[0].field.as_deref(), Some("competences"), "{bad:?}: {err:?}");
    }
    // Without a structure, a competence no item measures is refused.
    let plain = two_competence_bank();
    assert_eq!(plain.restricted(&["B".into()]).unwrap().len(), 1);
    assert!(plain.restricted(&["Z".into()]).is_err());
}
