//! The psychometrician's toolkit against its references (`reference/toolkit/`, made by mirt 1.45.1 and
//! the Python cross-checks in `make_toolkit_refs.py`; see `reference/README.md`): linking constants,
//! Mantel–Haenszel DIF, classical item analysis and key2binary, item fit, person fit, Q3 and
//! reliability, with the tolerance each comparison allows stated where it is made.

mod common;
use common::{assert_fails_with, etalon_json, etalon_os};
use etalon::calibration::linking::{self, LinkingMethod};
use etalon::items::{self, ModelKind};
use std::path::{Path, PathBuf};

fn toolkit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference/toolkit")
        .join(name)
}

/// `link_train_constants.csv`: method → (A, B, criterion).
fn constants() -> Vec<(String, f64, f64, Option<f64>)> {
    let mut rdr = csv::Reader::from_path(toolkit("link_train_constants.csv")).unwrap();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_string(),
                r[1].parse().unwrap(),
                r[2].parse().unwrap(),
                r[3].parse().ok(),
            )
        })
        .collect()
}

/// Run etalon expecting a refusal: exit 1, no panic, a message saying `message`.
fn refused(args: &[&std::ffi::OsStr], message: &str) {
    assert_fails_with(&etalon_os(args), &[message]);
}

fn method(name: &str) -> LinkingMethod {
    match name {
        "mean-mean" => LinkingMethod::MeanMean,
        "mean-sigma" => LinkingMethod::MeanSigma,
        "haebara" => LinkingMethod::Haebara,
        "stocking-lord" => LinkingMethod::StockingLord,
        other => panic!("unknown method {other}"),
    }
}

#[test]
fn linking_constants_agree_with_the_reference() {
    let old = items::read_bank(toolkit("link_train_old.csv")).unwrap();
    let new = items::read_bank(toolkit("link_train_new.csv")).unwrap();
    for (name, a, b, criterion) in constants() {
        let l = linking::link(&old, &new, method(&name)).unwrap();
        assert_eq!(l.common_items.len(), 25);
        // Moment methods are closed forms: agreement to rounding. Characteristic-curve methods are
        // minimisations (the reference: scipy BFGS with gtol 1e-12 and Nelder–Mead, the better kept):
        // 1e-6 on A and B, 1e-9 relative on the criterion's minimum.
        let tol = if criterion.is_some() { 1e-6 } else { 1e-12 };
        assert!((l.a - a).abs() < tol, "{name}: A {} vs {a}", l.a);
        assert!((l.b - b).abs() < tol, "{name}: B {} vs {b}", l.b);
        match (criterion, l.criterion) {
            (Some(r), Some(c)) => assert!((c - r).abs() <= 1e-9 * r, "{name}: criterion {c} vs {r}"),
            (None, None) => {}
            other => panic!("{name}: criterion {other:?}"),
        }
        assert_eq!(l.method.name(), name);
    }
}

#[test]
fn a_linked_bank_holds_the_transformed_items_and_scale() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("linked.csv");
    let summary = etalon_json(&[
        "link".as_ref(),
        "--method".as_ref(),
        "stocking-lord".as_ref(),
        "--bank".as_ref(),
        toolkit("link_train_old.csv").as_os_str(),
        "--new".as_ref(),
        toolkit("link_train_new.csv").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let (a, b) = (summary["A"].as_f64().unwrap(), summary["B"].as_f64().unwrap());
    assert_eq!(summary["common_items"], 25);
    assert_eq!(summary["method"], "stocking-lord");
    let new = items::read_bank(toolkit("link_train_new.csv")).unwrap();
    let linked = items::read_bank(&out).unwrap();
    for (n, l) in new.items().iter().zip(linked.items()) {
        assert_eq!(n.id, l.id);
        assert_eq!(l.parameters.kind(), ModelKind::TwoPl);
        assert!((l.parameters.slope() - n.parameters.slope() / a).abs() < 1e-9);
        assert!((l.parameters.location() - (a * n.parameters.location() + b)).abs() < 1e-9);
    }
    // Bad input is a clear error, not a panic: a bank with fewer than two common items.
    let lone = dir.path().join("lone.csv");
    std::fs::write(&lone, "id,model,a,b\nZ01,2pl,1.0,0.0\n").unwrap();
    refused(
        &[
            "link".as_ref(),
            "--bank".as_ref(),
            toolkit("link_train_old.csv").as_os_str(),
            "--new".as_ref(),
            lone.as_os_str(),
            "--out".as_ref(),
            dir.path().join("x.csv").as_os_str(),
        ],
        "share 0 item",
    );
}

/// A CSV file as rows of named fields.
fn table(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let header = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .map(str::to_string)
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn mantel_haenszel_agrees_with_difr() {
    let dir = tempfile::tempdir().unwrap();
    let expected = table(&toolkit("dif_train_MH.csv"));
    for (adjust, column) in [("holm", "p_adjusted_holm"), ("bh", "p_adjusted_bh")] {
        let out = dir.path().join(format!("dif-{adjust}.csv"));
        let summary = etalon_json(&[
            "dif".as_ref(),
            toolkit("dif_train.csv").as_os_str(),
            "--groups".as_ref(),
            toolkit("dif_train_groups.csv").as_os_str(),
            "--adjust".as_ref(),
            adjust.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(summary["reference"]["group"], "reference", "the first group met");
        assert_eq!(summary["focal"]["persons"], 1000);
        let got = table(&out);
        assert_eq!(got.len(), 20);
        // Closed forms computed the same way: 1e-9 relative (the reference is written to 15 digits).
        let close = |a: &str, b: &str, what: &str| {
            let (x, y): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((x - y).abs() <= 1e-9 * y.abs().max(1e-12), "{what}: {x} vs {y}");
        };
        for (g, e) in got.iter().zip(&expected) {
            let item = &e["item"];
            assert_eq!(&g["item"], item);
            for field in ["statistic", "p", "alpha_mh", "delta_mh", "var_log_alpha"] {
                close(&g[field], &e[field], &format!("{item} {field}"));
            }
            close(&g["p_adjusted"], &e[column], &format!("{item} {column}"));
            assert_eq!(g["class"], e["class"], "{item}");
            assert_eq!(g["strata"], e["strata"], "{item}");
        }
        let flagged: Vec<&str> = summary["flagged"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["item"].as_str().unwrap())
            .collect();
        assert_eq!(
            flagged,
            ["I05", "I11", "I15"],
            "the planted items, and difR's false positive (class B)"
        );
    }
}

/// `etalon dif DATA --groups GROUPS --method lr EXTRA… --out OUT`, its JSON summary.
fn lr_dif(data: &Path, groups: &Path, extra: &[&str], out: &Path) -> serde_json::Value {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "dif".as_ref(),
        data.as_os_str(),
        "--groups".as_ref(),
        groups.as_os_str(),
        "--method".as_ref(),
        "lr".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.extend(["--out".as_ref(), out.as_os_str()]);
    etalon_json(&args)
}

#[test]
fn likelihood_ratio_dif_agrees_with_mirt() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lr.csv");
    let summary = lr_dif(
        &toolkit("dif_train.csv"),
        &toolkit("dif_train_groups.csv"),
        &["--adjust", "bh"],
        &out,
    );
    // The baseline multiple-group fit (all items equal, focal mean and variance free): mirt's
    // estimates −0.336258 and 0.980631 and log-likelihood −19950.2206081793, reached by mirt's EM at
    // TOL 1e-4 (ours runs to 1e-6): 2e-3 on the moments, 2e-3 on the log-likelihood.
    let base = &summary["baseline"];
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!((num(&base["focal_mean"]) + 0.336258).abs() < 2e-3, "{base}");
    assert!((num(&base["focal_variance"]) - 0.980631).abs() < 2e-3, "{base}");
    assert!(
        (num(&base["log_likelihood"]) + 19950.2206081793).abs() < 2e-3,
        "{base}"
    );
    assert_eq!(
        base["parameters"], 42,
        "20 × (a, d) + the focal mean and variance"
    );
    let expected = table(&toolkit("dif_train_LR_mirt.csv"));
    let got = table(&out);
    assert_eq!(got.len(), 20);
    for (g, e) in got.iter().zip(&expected) {
        let item = &e["item"];
        assert_eq!(&g["item"], item);
        let f = |t: &std::collections::HashMap<String, String>, k: &str| t[k].parse::<f64>().unwrap();
        // X² is a difference of two EM optima, mirt's at TOL 1e-4: measured within 4.1e-4 of mirt's;
        // allowed 0.01 (the reference README suggests 0.05). p within 1.5e-4 measured; 0.01 allowed.
        assert!(
            (f(g, "statistic") - f(e, "X2")).abs() < 0.01,
            "{item}: X² {} vs {}",
            g["statistic"],
            e["X2"]
        );
        assert!((f(g, "p") - f(e, "p")).abs() < 0.01, "{item}: p");
        assert_eq!(g["df"], "2");
        assert!((f(g, "aic") - f(e, "AIC")).abs() < 0.01, "{item}: AIC");
        assert!((f(g, "bic") - f(e, "BIC")).abs() < 0.01, "{item}: BIC");
        assert_eq!(g["converged"], "true");
    }
    let flagged: Vec<&str> = summary["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["item"].as_str().unwrap())
        .collect();
    // Benjamini–Hochberg keeps the planted items (I05: 0.0027 × 20 / 2 = 0.027) and not I15
    // (0.0089 × 20 / 3 = 0.059); Holm would keep I11 only (I05: 0.0027 × 20 = 0.055).
    assert_eq!(flagged, ["I05", "I11"]);
    // The planted shift lowers the focal intercept by 0.6 logit: I05 and I11 are harder for the focal
    // group once freed.
    for t in got.iter().filter(|t| t["item"] == "I05" || t["item"] == "I11") {
        let b = |k: &str| t[k].parse::<f64>().unwrap();
        assert!(b("b_focal") > b("b_reference"), "{t:?}");
    }

    // Persons outside the groups take no part (N = 1,000 in ΔBIC); an item the focal group never
    // answered is not tested (and not counted by the adjustment).
    let text = std::fs::read_to_string(toolkit("dif_train.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let i08 = header.iter().position(|h| h.trim_matches('"') == "I08").unwrap();
    let blanked: String = text
        .lines()
        .enumerate()
        .map(|(row, line)| {
            let mut f: Vec<&str> = line.split(',').collect();
            if row > 1000 {
                f[i08] = "";
            }
            f.join(",") + "\n"
        })
        .collect();
    let (data2, groups2) = (dir.path().join("blanked.csv"), dir.path().join("groups.csv"));
    std::fs::write(&data2, blanked).unwrap();
    let groups: String = std::fs::read_to_string(toolkit("dif_train_groups.csv"))
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(row, _)| *row == 0 || row % 2 == 1)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&groups2, groups).unwrap();
    let summary = lr_dif(&data2, &groups2, &[], &out);
    assert_eq!(summary["not_tested"], serde_json::json!(["I08"]), "{summary}");
    let got = table(&out);
    let i08_row = got.iter().find(|t| t["item"] == "I08").unwrap();
    assert_eq!(i08_row["statistic"], "NaN");
    for t in got.iter().filter(|t| t["item"] != "I08") {
        let f = |k: &str| t[k].parse::<f64>().unwrap();
        assert!(
            (f("bic") + f("statistic") - 2.0 * 1000f64.ln()).abs() < 1e-6,
            "{t:?}: N = 1,000"
        );
    }

    // Anchored on ten items mirt finds clean: the other ten are tested against them; the planted
    // items still stand out, and anchors are not tested.
    let anchors = "I01,I02,I03,I06,I08,I09,I12,I14,I16,I17";
    let summary = lr_dif(
        &toolkit("dif_train.csv"),
        &toolkit("dif_train_groups.csv"),
        &["--anchors", anchors],
        &out,
    );
    let got = table(&out);
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|t| !anchors.split(',').any(|a| a == t["item"])));
    assert_eq!(
        summary["baseline"]["parameters"], 62,
        "10 equal + 10 freed twice + 2"
    );
    let flagged: Vec<&str> = summary["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["item"].as_str().unwrap())
        .collect();
    assert!(
        flagged.contains(&"I05") && flagged.contains(&"I11"),
        "{flagged:?}"
    );
    for t in &got {
        let x: f64 = t["statistic"].parse().unwrap();
        assert!(x > -1e-3, "{t:?}: a likelihood ratio is not negative");
    }
}

#[test]
fn dif_refuses_bad_groups_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("person,group\n1,a\n2,b\n3,c\n", "a third group `c`"),
        ("person,group\n1,a\n1,b\n", "listed twice"),
        ("person,group\n99999,a\n", "not in the data"),
        ("person,group\n1,a\n2,a\n", "1 group(s) found"),
        ("id,team\n1,a\n", "header must be `person,group`"),
    ];
    for (k, (groups, message)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("groups{k}.csv"));
        std::fs::write(&path, groups).unwrap();
        let out = dir.path().join("x.csv");
        refused(
            &[
                "dif".as_ref(),
                toolkit("dif_train.csv").as_os_str(),
                "--groups".as_ref(),
                path.as_os_str(),
                "--out".as_ref(),
                out.as_os_str(),
            ],
            message,
        );
        assert!(!dir.path().join("x.csv").exists());
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference/data")
        .join(name)
}

#[test]
fn classical_item_statistics_agree_with_mirt_itemstats() {
    // Closed forms: 1e-9 relative (the reference has 15 digits). Science is polytomous (Likert 1–4 on
    // its raw codes), SAT12 0/1.
    for dataset in ["SAT12", "Science"] {
        let v = etalon_json(&[
            "data".as_ref(),
            "items".as_ref(),
            data(&format!("{dataset}.csv")).as_os_str(),
        ]);
        let close = |x: f64, y: &str, what: &str| {
            let y: f64 = y.parse().unwrap();
            assert!(
                (x - y).abs() <= 1e-9 * y.abs().max(1e-12),
                "{dataset} {what}: {x} vs {y}"
            );
        };
        let overall = &table(&toolkit(&format!("{dataset}_alpha.csv")))[0];
        assert_eq!(v["n"].to_string(), overall["N"]);
        for (ours, theirs) in [
            ("mean_total", "mean_total.score"),
            ("sd_total", "sd_total.score"),
            ("average_r", "ave.r"),
            ("sd_r", "sd.r"),
            ("alpha", "alpha"),
            ("sem", "SEM.alpha"),
        ] {
            close(v[ours].as_f64().unwrap(), &overall[theirs], ours);
        }
        let expected = table(&toolkit(&format!("{dataset}_itemstats.csv")));
        let rows = v["items_table"].as_array().unwrap();
        assert_eq!(rows.len(), expected.len());
        for (r, e) in rows.iter().zip(&expected) {
            let item = &e["item"];
            assert_eq!(r["item"], item.as_str());
            assert_eq!(r["n"].to_string(), e["N"], "{item}");
            assert_eq!(r["categories"].to_string(), e["K"], "{item}");
            for (ours, theirs) in [
                ("mean", "mean"),
                ("sd", "sd"),
                ("total_r", "total.r"),
                ("rest_r", "total.r_if_rm"),
                ("alpha_if_deleted", "alpha_if_rm"),
            ] {
                close(r[ours].as_f64().unwrap(), &e[theirs], &format!("{item} {ours}"));
            }
        }
    }
}

#[test]
fn raw_choices_scored_with_the_key_are_the_binary_data() {
    // `SAT12_key2binary_check.txt`: key2binary(SAT12_raw, key) equals SAT12.csv in all 19,200 cells.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scored.csv");
    let v = etalon_json(&[
        "data".as_ref(),
        "key".as_ref(),
        data("SAT12_raw.csv").as_os_str(),
        "--key".as_ref(),
        data("SAT12_key.csv").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(
        (v["persons"].as_u64(), v["items"].as_u64(), v["missing"].as_u64()),
        (Some(600), Some(32), Some(0))
    );
    let ours = items::read_responses(&out, items::DataFormat::Wide).unwrap();
    let theirs = items::read_responses(data("SAT12.csv"), items::DataFormat::Wide).unwrap();
    let cells = |r: &items::Responses| match r {
        items::Responses::Dense(m) => (0..m.n_persons())
            .flat_map(|p| {
                m.row(p)
                    .iter()
                    .enumerate()
                    .map(move |(j, &c)| m.codes(j)[usize::from(c)])
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<i64>>(),
        items::Responses::Sparse(_) => unreachable!("wide"),
    };
    assert_eq!(cells(&ours), cells(&theirs));
    // Scored through `data items --key`, the statistics are those of SAT12.csv; every answer is a choice.
    let choices = dir.path().join("choices.csv");
    let v = etalon_json(&[
        "data".as_ref(),
        "items".as_ref(),
        data("SAT12_raw.csv").as_os_str(),
        "--key".as_ref(),
        data("SAT12_key.csv").as_os_str(),
        "--distractors".as_ref(),
        choices.as_os_str(),
    ]);
    assert!((v["alpha"].as_f64().unwrap() - 0.797891861124153).abs() < 1e-9);
    let rows = table(&choices);
    for item in ["Item.1", "Item.32"] {
        let n: usize = rows
            .iter()
            .filter(|r| r["item"] == item)
            .map(|r| r["n"].parse::<usize>().unwrap())
            .sum();
        assert_eq!(n, 600, "{item}");
        let keyed: Vec<_> = rows
            .iter()
            .filter(|r| r["item"] == item && r["correct"] == "true")
            .collect();
        assert_eq!(keyed.len(), 1, "{item}");
    }
}

/// `path` parsed as numbers by column name.
fn numbers(path: &Path) -> Vec<std::collections::HashMap<String, f64>> {
    table(path)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .filter_map(|(k, v)| v.parse().ok().map(|x| (k, x)))
                .collect()
        })
        .collect()
}

#[test]
fn fit_statistics_agree_with_mirt_given_its_parameters() {
    // Every statistic is a deterministic function of the data and mirt's parameters
    // (`reference/mirt/<ds>_2PL.csv`), so it must agree to rounding: 1e-9 relative, or absolute for
    // values near 0 (p-values, RMSEA at 0). The marginal reliability is R's adaptive `integrate`
    // (accurate to ~3e-10) against our 4,001-point rule: 1e-8.
    let dir = tempfile::tempdir().unwrap();
    for dataset in ["LSAT7", "SAT12"] {
        let bank = dir.path().join(format!("{dataset}.csv"));
        etalon_json(&[
            "bank".as_ref(),
            "convert".as_ref(),
            "--from".as_ref(),
            "mirt".as_ref(),
            "--model".as_ref(),
            "2pl".as_ref(),
            common::reference()
                .join(format!("mirt/{dataset}_2PL.csv"))
                .as_os_str(),
            bank.as_os_str(),
        ]);
        let (items_out, persons_out, q3_out) = (
            dir.path().join("items.csv"),
            dir.path().join("persons.csv"),
            dir.path().join("q3.csv"),
        );
        let v = etalon_json(&[
            "fit".as_ref(),
            "--bank".as_ref(),
            bank.as_os_str(),
            "--responses".as_ref(),
            data(&format!("{dataset}.csv")).as_os_str(),
            "--out".as_ref(),
            items_out.as_os_str(),
            "--persons".as_ref(),
            persons_out.as_os_str(),
            "--q3".as_ref(),
            q3_out.as_os_str(),
        ]);
        let close = |x: f64, y: f64, tol: f64, what: &str| {
            assert!(
                (x - y).abs() <= tol * y.abs().max(1.0),
                "{dataset} {what}: {x} vs {y}"
            );
        };
        let reliability = &numbers(&toolkit(&format!("{dataset}_2PL_reliability.csv")))[0];
        close(
            v["marginal_reliability"].as_f64().unwrap(),
            reliability["marginal_rxx"],
            1e-8,
            "marginal_rxx",
        );
        close(
            v["empirical_reliability"].as_f64().unwrap(),
            reliability["empirical_rxx"],
            1e-9,
            "empirical_rxx",
        );
        let ours = numbers(&items_out);
        let theirs = numbers(&toolkit(&format!("{dataset}_2PL_itemfit.csv")));
        assert_eq!(ours.len(), theirs.len());
        for (k, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            for (a, b) in [
                ("s_x2", "S_X2"),
                ("df", "df.S_X2"),
                ("rmsea", "RMSEA.S_X2"),
                ("p", "p.S_X2"),
            ] {
                close(o[a], t[b], 1e-9, &format!("item {} {a}", k + 1));
            }
        }
        let ours = numbers(&persons_out);
        let theirs = numbers(&toolkit(&format!("{dataset}_2PL_personfit.csv")));
        assert_eq!(ours.len(), theirs.len());
        for (o, t) in ours.iter().zip(&theirs) {
            close(o["lz"], t["Zh"], 1e-8, &format!("person {} Zh", t["person"]));
        }
        let ours = table(&q3_out);
        let theirs = table(&toolkit(&format!("{dataset}_2PL_Q3.csv")));
        for (o, t) in ours.iter().zip(&theirs) {
            for (column, value) in t {
                if column != "item" {
                    close(
                        o[column].parse().unwrap(),
                        value.parse().unwrap(),
                        1e-8,
                        &format!("Q3 {} {column}", t["item"]),
                    );
                }
            }
        }
        // The SE summary: ordered quantiles, the mean inside them, the RMS at least the mean; SAT12's
        // 600 persons, LSAT7's 1,000.
        let se = &v["standard_errors"];
        let q: Vec<f64> = se["quantiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(q.windows(2).all(|w| w[0] <= w[1]) && q[0] > 0.0, "{se}");
        let (mean, rms) = (se["mean"].as_f64().unwrap(), se["rms"].as_f64().unwrap());
        assert!(q[0] <= mean && mean <= q[4] && rms >= mean, "{se}");
        assert_eq!(se["persons"], if dataset == "LSAT7" { 1000 } else { 600 });
        // M2 and its indices from mirt's parameters: closed forms but for the RMSEA interval (uniroot
        // in mirt: 1e-6) and TLI/CFI (mirt's null model has EM-estimated intercepts, ours exact logits:
        // 1e-5, as the reference README says); p absolutely (mirt's 1 − pchisq cancels).
        let m2 = &numbers(&toolkit(&format!("{dataset}_2PL_M2.csv")))[0];
        let ours = &v["m2"];
        let got = |k: &str| {
            ours[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{dataset}: no m2.{k} in {v}"))
        };
        close(got("m2"), m2["M2"], 1e-9, "M2");
        close(got("df"), m2["df"], 0.0, "M2 df");
        assert!((got("p") - m2["p"]).abs() < 1e-9, "{dataset} M2 p");
        close(got("rmsea"), m2["RMSEA"], 1e-9, "RMSEA");
        close(got("rmsea_5"), m2["RMSEA_5"], 1e-6, "RMSEA_5");
        close(got("rmsea_95"), m2["RMSEA_95"], 1e-6, "RMSEA_95");
        close(got("srmsr"), m2["SRMSR"], 1e-9, "SRMSR");
        close(got("tli"), m2["TLI"], 1e-5, "TLI");
        close(got("cfi"), m2["CFI"], 1e-5, "CFI");
        let max = &numbers(&toolkit(&format!("{dataset}_2PL_Q3max.csv")))[0];
        close(
            v["q3_max"]["q3"].as_f64().unwrap(),
            max["q3_signed"],
            1e-8,
            "Q3 max",
        );
    }
}

#[test]
fn item_fit_on_incomplete_data_finds_the_item_the_bank_gets_wrong() {
    // No reference tool computes S-X² on incomplete data (mirt's itemfit wants complete patterns or
    // imputations), so it is checked by simulation: 6,000 persons answer 10 of 30 items at random,
    // drawn from a bank where i07 barely discriminates (a = 0.25); fitted against the same bank except
    // i07 (a = 1.8), only i07 must misfit.
    let dir = tempfile::tempdir().unwrap();
    let bank = |i07: f64| {
        let mut text = String::from("id,model,a,b\n");
        for j in 1..=30 {
            let a = if j == 7 { i07 } else { 0.8 + 0.04 * j as f64 };
            text += &format!("i{j:02},2pl,{a},{}\n", -2.0 + 4.0 * (j - 1) as f64 / 29.0);
        }
        text
    };
    let (truth, fitted) = (dir.path().join("truth.csv"), dir.path().join("fitted.csv"));
    std::fs::write(&truth, bank(0.25)).unwrap();
    std::fs::write(&fitted, bank(1.8)).unwrap();
    let data = dir.path().join("log.csv");
    etalon_json(&[
        "data".as_ref(),
        "generate".as_ref(),
        "--bank".as_ref(),
        truth.as_os_str(),
        "--persons".as_ref(),
        "6000".as_ref(),
        "--answers".as_ref(),
        "10".as_ref(),
        "--format".as_ref(),
        "long".as_ref(),
        "--seed".as_ref(),
        "7".as_ref(),
        "--out".as_ref(),
        data.as_os_str(),
    ]);
    let out = dir.path().join("fit.csv");
    // Item id → its row (rows follow the data's item order: a long file's order of appearance).
    let fit_with = |bank: &Path| {
        etalon_json(&[
            "fit".as_ref(),
            "--bank".as_ref(),
            bank.as_os_str(),
            "--responses".as_ref(),
            data.as_os_str(),
            "--format".as_ref(),
            "long".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        table(&out)
            .into_iter()
            .map(|r| (r["item"].clone(), r))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let num = |r: &std::collections::HashMap<String, String>, k: &str| r[k].parse::<f64>().unwrap();
    let wrong = fit_with(&fitted);
    assert_eq!(wrong.len(), 30);
    assert!(num(&wrong["i07"], "p") < 1e-6, "i07: {:?}", wrong["i07"]);
    // Under the true bank the statistic behaves as a χ²: at most a few of 30 items below .05 (about
    // 1.5 expected), and i07 not among them.
    let right = fit_with(&truth);
    let low: Vec<&String> = right
        .iter()
        .filter(|(_, r)| num(r, "p") < 0.05)
        .map(|(id, _)| id)
        .collect();
    assert!(low.len() <= 4, "{low:?} misfit under the true bank: {right:?}");
    assert!(
        num(&right["i07"], "p") > 0.01,
        "i07 under the true bank: {:?}",
        right["i07"]
    );
    // The same numbers on one thread as on two (persons are summed in fixed blocks).
    let two = std::fs::read(&out).unwrap();
    etalon_json(&[
        "fit".as_ref(),
        "--bank".as_ref(),
        truth.as_os_str(),
        "--responses".as_ref(),
        data.as_os_str(),
        "--format".as_ref(),
        "long".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(std::fs::read(&out).unwrap() == two, "one thread and two differ");
    let df: Vec<f64> = right.values().map(|r| num(r, "df")).collect();
    assert!(
        df.iter().all(|&d| (3.0..=9.0).contains(&d)),
        "10 answers: at most 9 score groups, minus 2: {df:?}"
    );
}
