//! `etalon plot`: every kind of chart rendered to PNG (resvg: the SVG must parse strictly and draw
//! something), saved under `target/plots/` to be looked at, and its table of values checked against
//! the model (monotone ICCs, SE = 1/√information, TCC within the score range, the Wright map's
//! persons all counted).

mod common;
use common::{assert_fails_with, assert_rejects_argument, etalon_json as etalon, etalon_os};
use std::path::{Path, PathBuf};

fn reference(path: &str) -> PathBuf {
    common::reference().join(path)
}

/// Render an SVG file to PNG next to the screenshots; returns the share of pixels that are not white.
fn render(svg: &Path, name: &str) -> f64 {
    let text = std::fs::read_to_string(svg).unwrap();
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // `sans-serif` maps to Arial by default; take a sans-serif face this machine has (text is then
    // drawn; a machine without fonts still renders the rest).
    let family = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"]
        .into_iter()
        .find(|f| {
            fonts
                .faces()
                .any(|face| face.families.iter().any(|(name, _)| name == f))
        });
    if let Some(f) = family {
        fonts.set_sans_serif_family(f);
    }
    let tree = resvg::usvg::Tree::from_str(&text, &options)
        .unwrap_or_else(|e| panic!("{name}: not a well-formed SVG: {e}"));
    let size = tree.size().to_int_size();
    let (w, h) = (size.width() * 2, size.height() * 2);
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h).unwrap();
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/plots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = pixmap.encode_png().unwrap();
    assert_eq!(&png[1..4], b"PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    let inked = pixmap
        .pixels()
        .iter()
        .filter(|p| p.red() < 250 || p.green() < 250 || p.blue() < 250)
        .count();
    inked as f64 / (w * h) as f64
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let header = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let rows = rdr
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn column(rows: &[Vec<String>], k: usize) -> Vec<f64> {
    rows.iter().map(|r| r[k].parse().unwrap()).collect()
}

#[test]
fn every_plot_renders_and_tabulates_what_the_model_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 2PL bank (SAT12, mirt's fit) with the persons' EAPs, and a graded bank (Science).
    let sat = d.join("sat12.csv");
    let science = d.join("science.csv");
    let from_mirt = |table: &str, model: &str, out: &Path| {
        etalon(&[
            "bank".as_ref(),
            "convert".as_ref(),
            "--from".as_ref(),
            "mirt".as_ref(),
            "--model".as_ref(),
            model.as_ref(),
            reference(table).as_os_str(),
            out.as_os_str(),
        ])
    };
    from_mirt("mirt/SAT12_2PL.csv", "2pl", &sat);
    from_mirt("mirt/Science_graded.csv", "graded", &science);
    let scores = d.join("scores.csv");
    etalon(&[
        "score".as_ref(),
        "--bank".as_ref(),
        sat.as_os_str(),
        "--responses".as_ref(),
        reference("data/SAT12.csv").as_os_str(),
        "--out".as_ref(),
        scores.as_os_str(),
    ]);
    let plot = |name: &str, bank: &Path, extra: &[&str]| {
        let (svg, table) = (d.join(format!("{name}.svg")), d.join(format!("{name}.csv")));
        let mut args: Vec<&std::ffi::OsStr> = vec!["plot".as_ref(), bank.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        args.extend([
            "--out".as_ref(),
            svg.as_os_str(),
            "--csv".as_ref(),
            table.as_os_str(),
        ]);
        etalon(&args);
        let inked = render(&svg, name);
        assert!(inked > 0.01, "{name}: only {inked:.4} of the pixels are drawn");
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.contains("role=\"img\"") && text.contains("<title>"),
            "{name}: accessible name"
        );
        csv_rows(&table)
    };

    // ICCs of three 2PL items: increasing, between 0 and 1, 0.5 at θ = b.
    let (header, rows) = plot("icc", &sat, &["--kind", "icc", "--items", "Item.1,Item.2,Item.3"]);
    assert_eq!(header, ["theta", "Item.1", "Item.2", "Item.3"]);
    assert_eq!(rows.len(), 81);
    for k in 1..=3 {
        let p = column(&rows, k);
        assert!(p.windows(2).all(|w| w[1] > w[0]) && p.iter().all(|&x| x > 0.0 && x < 1.0));
    }
    // Category curves of one graded item: they sum to 1 at every θ.
    let (header, rows) = plot("icc_graded", &science, &["--kind", "icc", "--items", "Comfort"]);
    assert_eq!(header.len(), 5, "{header:?}");
    for r in &rows {
        let total: f64 = r[1..].iter().map(|v| v.parse::<f64>().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
    // Test information and SE: SE = 1/√I at every θ.
    let (header, info) = plot("information", &sat, &["--kind", "information"]);
    assert_eq!(header, ["theta", "test"]);
    let (_, se) = plot("se", &sat, &["--kind", "se"]);
    for (i, s) in column(&info, 1).iter().zip(column(&se, 1)) {
        assert!((s - 1.0 / i.sqrt()).abs() < 1e-9);
    }
    let (header, _) = plot(
        "information_items",
        &sat,
        &["--kind", "information", "--items", "Item.1,Item.18"],
    );
    assert_eq!(header, ["theta", "test", "Item.1", "Item.18"]);
    // TCC: increasing within [0, 32].
    let (_, tcc) = plot("tcc", &sat, &["--kind", "tcc"]);
    let t = column(&tcc, 1);
    assert!(t.windows(2).all(|w| w[1] > w[0]) && t[0] > 0.0 && t[80] < 32.0);
    let (_, tcc) = plot("tcc_graded", &science, &["--kind", "tcc"]);
    assert!(column(&tcc, 1)[80] <= 12.0);
    // Wright map: every person counted once, every item placed.
    let scores_text = scores.to_str().unwrap().to_string();
    let (_, rows) = plot("wright", &sat, &["--kind", "wright", "--scores", &scores_text]);
    let persons: usize = rows
        .iter()
        .filter(|r| r[0] == "persons")
        .map(|r| r[3].parse::<usize>().unwrap())
        .sum();
    assert_eq!(persons, 600);
    assert_eq!(rows.iter().filter(|r| r[0] == "item").count(), 32);
    let (_, rows) = plot(
        "wright_graded",
        &science,
        &["--kind", "wright", "--scores", &scores_text],
    );
    assert_eq!(
        rows.iter().filter(|r| r[0] == "item").count(),
        12,
        "3 thresholds × 4 items"
    );
}

#[test]
fn plot_refuses_what_it_cannot_draw() {
    let dir = tempfile::tempdir().unwrap();
    let bank = dir.path().join("b.json");
    etalon(&[
        "bank".as_ref(),
        "example".as_ref(),
        "--out".as_ref(),
        bank.as_os_str(),
    ]);
    for (args, message) in [
        (vec!["--kind", "wright"], "needs the persons"),
        (
            vec!["--kind", "icc", "--items", "nope"],
            "item `nope` is not in the bank",
        ),
        (
            vec![
                "--kind",
                "icc",
                "--items",
                "q1-1-1,q1-1-2,q1-1-3,q1-1-4,q1-2-1,q1-2-2,q1-2-3,q1-2-4,q1-3-1,q1-3-2,q1-3-3,q1-3-4,q2-1-1",
            ],
            "at most 12",
        ),
        (vec!["--kind", "pie"], "--kind"),
    ] {
        let out = dir.path().join("x.svg");
        let mut all: Vec<&std::ffi::OsStr> = vec!["plot".as_ref(), bank.as_os_str()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        all.extend(["--out".as_ref(), out.as_os_str()]);
        let run = etalon_os(&all);
        if message.starts_with("--") {
            // An unknown value is a usage error (exit 2), naming the option.
            assert_rejects_argument(&run, message);
        } else {
            assert_fails_with(&run, &[message]);
        }
        assert!(!dir.path().join("x.svg").exists());
    }
}

/// `etalon calibrate --se` of one group of the linking references into `out`.
fn calibrate_with_se(group: &str, out: &Path) {
    etalon(&[
        "calibrate".as_ref(),
        reference(&format!("toolkit/link_train_{group}.csv")).as_os_str(),
        "--model".as_ref(),
        "2pl".as_ref(),
        "--se".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
}

#[test]
fn drift_finds_a_moved_item_and_draws_it() {
    // Two groups of the linking references, calibrated apart with standard errors: the same items,
    // no drift planted (θ_old = 0.8 θ_new − 0.4 in the population).
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.csv"), dir.path().join("new.csv"));
    calibrate_with_se("group1", &old);
    calibrate_with_se("group2", &new);
    let (out, chart) = (dir.path().join("drift.csv"), dir.path().join("drift.svg"));
    let run = |new: &Path| {
        etalon(&[
            "drift".as_ref(),
            "--old".as_ref(),
            old.as_os_str(),
            "--new".as_ref(),
            new.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--chart".as_ref(),
            chart.as_os_str(),
        ])
    };
    let clean = run(&new);
    assert_eq!(clean["drifted"], serde_json::json!([]), "{clean}");
    // The constants and their delta-method SEs: the realised-sample values (A 0.812, B −0.413,
    // reference/toolkit/link_train_expected.csv) within two SEs.
    let (a, b) = (clean["A"].as_f64().unwrap(), clean["B"].as_f64().unwrap());
    let (sa, sb) = (
        clean["standard_errors"]["A"].as_f64().unwrap(),
        clean["standard_errors"]["B"].as_f64().unwrap(),
    );
    assert!(sa > 0.005 && sa < 0.05 && sb > 0.005 && sb < 0.05, "{clean}");
    assert!(
        (a - 0.8119).abs() < 2.0 * sa && (b + 0.4127).abs() < 2.0 * sb,
        "{clean}"
    );
    render(&chart, "drift-none");

    // Item L05 made 1 logit harder in the new calibration (on its own scale).
    let text = std::fs::read_to_string(&new).unwrap();
    let moved: String = text
        .lines()
        .map(|line| {
            let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
            if f[0] == "L05" {
                f[3] = (f[3].parse::<f64>().unwrap() + 1.0).to_string();
            }
            f.join(",") + "\n"
        })
        .collect();
    let drifted_bank = dir.path().join("moved.csv");
    std::fs::write(&drifted_bank, moved).unwrap();
    let v = run(&drifted_bank);
    assert_eq!(v["drifted"], serde_json::json!(["L05"]), "{v}");
    assert_eq!(v["linked_through"], 24, "relinked without the drifted item");
    assert!(v["stable"].as_bool().unwrap());
    // Purified, the constants are those of the clean linking, nearly.
    assert!(
        (v["A"].as_f64().unwrap() - a).abs() < sa && (v["B"].as_f64().unwrap() - b).abs() < sb,
        "{v}"
    );
    let (header, rows) = csv_rows(&out);
    assert_eq!(header[..4], ["item", "parameter", "old", "old_se"]);
    assert_eq!(rows.len(), 50, "a and b of 25 items");
    let l05b = rows.iter().find(|r| r[0] == "L05" && r[1] == "b").unwrap();
    // 1 logit on the new scale is A ≈ 0.8 on the old one.
    let diff: f64 = l05b[6].parse().unwrap();
    assert!((diff - 0.8).abs() < 0.3, "{l05b:?}");
    assert_eq!(l05b[10], "true");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.contains("L05") && svg.contains("Slope a") && svg.contains("Difficulty b"));
    assert!(render(&chart, "drift-L05") > 0.01);

    // An item its data barely identify (an SE of 10¹⁷) neither hangs the chart nor stretches it.
    let huge: String = std::fs::read_to_string(&drifted_bank)
        .unwrap()
        .lines()
        .map(|line| {
            let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
            if f[0] == "L09" {
                let last = f.len() - 1;
                f[last] = "1e17".into();
            }
            f.join(",") + "\n"
        })
        .collect();
    let huge_bank = dir.path().join("huge.csv");
    std::fs::write(&huge_bank, huge).unwrap();
    let v = run(&huge_bank);
    assert_eq!(v["drifted"], serde_json::json!(["L05"]), "{v}");
    assert!(std::fs::metadata(&chart).unwrap().len() < 100_000);
    render(&chart, "drift-huge-se");

    // Banks without standard errors cannot be weighed.
    let bare = dir.path().join("bare.csv");
    etalon(&[
        "calibrate".as_ref(),
        reference("toolkit/link_train_group2.csv").as_os_str(),
        "--model".as_ref(),
        "2pl".as_ref(),
        "--out".as_ref(),
        bare.as_os_str(),
    ]);
    let refused = etalon_os(&[
        "drift".as_ref(),
        "--old".as_ref(),
        old.as_os_str(),
        "--new".as_ref(),
        bare.as_os_str(),
        "--out".as_ref(),
        dir.path().join("x.csv").as_os_str(),
    ]);
    assert_fails_with(&refused, &["no standard error for `a`", "--se"]);
    assert!(!dir.path().join("x.csv").exists());
}
