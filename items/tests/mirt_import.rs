//! Importing mirt tables: every parameter read is kept, slope-intercept and SE tables are read, and
//! what cannot be read is refused in one located problem. The tables in `tests/data/mirt` are
//! mirt 1.4x output (see `reference/mirt`).

use etalon_items::*;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mirt")
        .join(name)
}

fn import(name: &str, model: ModelKind) -> Result<Bank, BankError> {
    import_mirt(data(name), model)
}

/// Import `text` written to a file `table.csv`; also gives the path that messages name.
fn import_text_at(text: &str, model: ModelKind) -> (Result<Bank, BankError>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.csv");
    std::fs::write(&path, text).unwrap();
    (import_mirt(&path, model), path)
}

fn import_text(text: &str, model: ModelKind) -> Result<Bank, BankError> {
    import_text_at(text, model).0
}

/// The only problem of a refused import.
fn the_problem(result: Result<Bank, BankError>) -> Problem {
    let err = result.expect_err("the import must be refused");
    assert_eq!(err.problems().len(), 1, "{err}");
    err.problems()[0].clone()
}

fn assert_close(x: f64, y: f64, tol: f64, what: &str) {
    assert!(
        (x - y).abs() <= tol,
        "{what}: {x} vs {y} (difference {:e})",
        (x - y).abs()
    );
}

/// Same items, same models, parameters within `tol`.
fn assert_same_parameters(got: &Bank, want: &Bank, tol: f64) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.items().iter().zip(want.items()) {
        assert_eq!(g.id, w.id);
        assert_eq!(g.parameters.kind(), w.parameters.kind());
        let (gp, wp) = (g.parameters.named_parameters(), w.parameters.named_parameters());
        assert_eq!(gp.len(), wp.len(), "item {}", g.id);
        for ((gn, gv), (wn, wv)) in gp.iter().zip(&wp) {
            assert_eq!(gn, wn);
            assert_close(*gv, *wv, tol, &format!("item {} parameter {gn}", g.id));
        }
    }
}

#[test]
fn a_3pl_table_imported_as_2pl_is_refused_naming_g() {
    let p = the_problem(import("SAT12_3PL.csv", ModelKind::TwoPl));
    assert_eq!(p.field.as_deref(), Some("g"));
    assert_eq!(p.line, Some(2));
    assert_eq!(p.item.as_deref(), Some("Item.1"));
    assert!(p.message.contains("lower asymptotes"), "{p}");
    assert!(p.message.contains("0.182 for item Item.1"), "{p}");
    assert!(p.message.contains("a 2pl item cannot keep"), "{p}");
    assert!(p.message.ends_with("import with --model 3pl"), "{p}");
    // Rasch and 1pl lose g as well.
    for model in [ModelKind::Rasch, ModelKind::OnePl, ModelKind::Graded] {
        let err = import("SAT12_3PL.csv", model).unwrap_err();
        assert!(
            err.problems().iter().any(|p| p.field.as_deref() == Some("g")),
            "{err}"
        );
    }
}

#[test]
fn a_3pl_table_imported_as_3pl_keeps_g() {
    let bank = import("SAT12_3PL.csv", ModelKind::ThreePl).unwrap();
    assert_eq!(bank.len(), 32);
    let first = bank.items()[0].parameters.logistic().unwrap();
    assert_eq!(first.a(), 2.42750919194456);
    assert_eq!(first.b(), 1.42547473657087);
    assert_eq!(first.c(), 0.181661414825614);
    // 4pl keeps it too (u = 1).
    let four = import("SAT12_3PL.csv", ModelKind::FourPl).unwrap();
    assert_eq!(four.items()[0].parameters.logistic().unwrap().d(), 1.0);
}

#[test]
fn columns_at_their_defaults_are_accepted() {
    // g = 0 and u = 1 throughout: a 2pl table.
    let bank = import("SAT12_2PL.csv", ModelKind::TwoPl).unwrap();
    assert_eq!(bank.items()[0].parameters.slope(), 0.801334742548934);
    // a = 1 throughout: a Rasch table.
    let rasch = import("LSAT7_Rasch.csv", ModelKind::Rasch).unwrap();
    assert_eq!(rasch.items()[0].parameters.kind(), ModelKind::Rasch);
    assert_eq!(rasch.items()[0].parameters.location(), -1.86807183858757);
}

#[test]
fn slopes_a_rasch_item_cannot_keep_are_refused() {
    let p = the_problem(import("SAT12_2PL.csv", ModelKind::Rasch));
    assert_eq!(p.field.as_deref(), Some("a"));
    assert!(
        p.message.contains("slopes") && p.message.ends_with("--model 2pl"),
        "{p}"
    );
    let p = the_problem(import("SAT12_2PL.csv", ModelKind::OnePl));
    assert!(p.message.contains("1pl items share one slope"), "{p}");
    // Equal slopes other than 1: a 1pl table.
    let p = the_problem(import_text("item,a,b\nq1,1.5,0\nq2,1.5,1\n", ModelKind::Rasch));
    assert!(p.message.ends_with("--model 1pl"), "{p}");
}

#[test]
fn upper_asymptotes_need_4pl() {
    let text = "item,a,b,g,u\nq1,1,0,0.1,1\nq2,1,0,0.2,0.95\n";
    let err = import_text(text, ModelKind::TwoPl).unwrap_err();
    let fields: Vec<_> = err.problems().iter().map(|p| p.field.clone().unwrap()).collect();
    assert_eq!(fields, ["g", "u"], "{err}");
    assert!(
        err.problems().iter().all(|p| p.message.ends_with("--model 4pl")),
        "{err}"
    );
    let p = the_problem(import_text(text, ModelKind::ThreePl));
    assert_eq!(
        (p.field.as_deref(), p.line, p.item.as_deref()),
        (Some("u"), Some(3), Some("q2"))
    );
    let bank = import_text(text, ModelKind::FourPl).unwrap();
    assert_eq!(bank.items()[1].parameters.logistic().unwrap().d(), 0.95);
}

#[test]
fn polytomous_tables_need_a_polytomous_model() {
    let p = the_problem(import("Science_graded.csv", ModelKind::TwoPl));
    assert_eq!(p.field.as_deref(), Some("b1"));
    assert!(
        p.message.contains("category thresholds") && p.message.contains("--model graded"),
        "{p}"
    );
    let p = the_problem(import("SAT12_2PL.csv", ModelKind::Graded));
    assert_eq!(p.field.as_deref(), Some("b"));
    assert!(p.message.ends_with("--model 2pl"), "{p}");
    let p = the_problem(import("Science_gpcm_slopeint.csv", ModelKind::Graded));
    assert!(p.field.as_deref().unwrap().starts_with("ak"), "{p}");
    assert!(p.message.ends_with("--model gpcm"), "{p}");
}

#[test]
fn slope_intercept_3pl_equals_the_irt_table() {
    let si = import("SAT12_3PL_slopeint.csv", ModelKind::ThreePl).unwrap();
    let irt = import("SAT12_3PL.csv", ModelKind::ThreePl).unwrap();
    assert_same_parameters(&si, &irt, 1e-9);
    assert!(
        si.provenance()
            .description
            .as_deref()
            .unwrap()
            .contains("slope-intercept")
    );
    let rasch = import("LSAT7_Rasch_slopeint.csv", ModelKind::Rasch).unwrap();
    assert_same_parameters(
        &rasch,
        &import("LSAT7_Rasch.csv", ModelKind::Rasch).unwrap(),
        1e-12,
    );
}

#[test]
fn slope_intercept_graded_equals_the_irt_table() {
    let si = import("Science_graded_slopeint.csv", ModelKind::Graded).unwrap();
    let irt = import("Science_graded.csv", ModelKind::Graded).unwrap();
    assert_eq!(si.items()[0].parameters.categories(), 4);
    assert_same_parameters(&si, &irt, 1e-9);
}

#[test]
fn slope_intercept_gpcm_equals_the_irt_table() {
    // mirt's gpcm: P(X = k) ∝ exp(ak_k·a·θ + d_k) with ak_k = k and d_0 = 0, so
    // d_k = -a·(b_1 + … + b_k) and b_k = -(d_k - d_{k-1}) / a.
    let si = import("Science_gpcm_slopeint.csv", ModelKind::Gpcm).unwrap();
    let irt = import("Science_gpcm.csv", ModelKind::Gpcm).unwrap();
    assert_same_parameters(&si, &irt, 1e-9);
    let comfort = si.items()[0].parameters.polytomous().unwrap();
    assert_close(comfort.thresholds()[1], -2.88166124309675, 1e-6, "Comfort b2");
    // Without the ak and d0 columns, d_0 = 0 is implied.
    let short =
        "item,a1,d1,d2,d3\nComfort,0.865313788934483,2.83080730170738,5.32434851039708,3.99788916465566\n";
    let bank = import_text(short, ModelKind::Gpcm).unwrap();
    assert_close(
        bank.items()[0].parameters.polytomous().unwrap().thresholds()[2],
        1.53292292657761,
        1e-6,
        "b3",
    );
    // Scores other than 0, 1, 2, … are a nominal model.
    let nominal = "item,a1,ak0,ak1,ak2,d0,d1,d2\nq,1,0,1.5,2,0,1,0.5\n";
    let p = the_problem(import_text(nominal, ModelKind::Gpcm));
    assert_eq!(p.field.as_deref(), Some("ak1"));
    assert!(p.message.contains("nominal"), "{p}");
}

#[test]
fn se_table_gives_the_parameters_and_their_standard_errors() {
    let bank = import("SAT12_2PL_se.csv", ModelKind::TwoPl).unwrap();
    let irt = import("SAT12_2PL.csv", ModelKind::TwoPl).unwrap();
    assert_same_parameters(&bank, &irt, 0.0);
    let first = &bank.items()[0];
    assert_eq!(first.standard_errors.len(), 2, "g and u are fixed (NA)");
    assert_eq!(first.standard_errors["a"], 0.11790263758795);
    assert_eq!(first.standard_errors["b"], 0.201091951578368);
    assert!(bank.items().iter().all(|i| i.standard_errors.len() == 2));
    // They survive the CSV bank.
    let csv = bank_io::bank_to_csv(&bank);
    assert!(csv.lines().next().unwrap().ends_with("se_a,se_b"), "{csv}");
    let back = bank_io::bank_from_csv(&csv, Path::new("b.csv")).unwrap();
    assert_eq!(back.items(), bank.items());
}

#[test]
fn se_tables_map_g_to_c_and_thresholds_by_name() {
    let bank = import("LSAT7_3PL_gprior_se.csv", ModelKind::ThreePl).unwrap();
    assert_same_parameters(
        &bank,
        &import("LSAT7_3PL_gprior.csv", ModelKind::ThreePl).unwrap(),
        0.0,
    );
    let se = &bank.items()[0].standard_errors;
    assert_eq!(se.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    let gpcm = import("Science_gpcm_se.csv", ModelKind::Gpcm).unwrap();
    assert_same_parameters(&gpcm, &import("Science_gpcm.csv", ModelKind::Gpcm).unwrap(), 0.0);
    let se = &gpcm.items()[0].standard_errors;
    assert_eq!(se.keys().collect::<Vec<_>>(), ["a", "b1", "b2", "b3"]);
    assert_eq!(se["b1"], 1.10594338551459);
    // Rasch: the slope is fixed (NA), only b has a standard error.
    let rasch = import("LSAT7_Rasch_se.csv", ModelKind::Rasch).unwrap();
    assert_eq!(rasch.items()[0].standard_errors.keys().collect::<Vec<_>>(), ["b"]);
    // An SE table of a 3PL is refused as a 2pl like the wide one, located on the `g` row.
    let p = the_problem(import("LSAT7_3PL_gprior_se.csv", ModelKind::TwoPl));
    assert_eq!((p.field.as_deref(), p.line), (Some("g"), Some(4)));
    assert!(
        p.message.starts_with("parameter `g` holds lower asymptotes"),
        "{p}"
    );
}

#[test]
fn se_tables_carry_the_latent_distribution_of_group_pars() {
    let text = "item,par,est,se\nq1,a,1,NA\nq1,b,0.5,0.1\nq2,a,1,NA\nq2,b,-0.5,0.1\n\
                GroupPars,MEAN_1,0,NA\nGroupPars,COV_11,1.7,0.2\n";
    let bank = import_text(text, ModelKind::Rasch).unwrap();
    assert_eq!(bank.len(), 2);
    assert_eq!(
        bank.latent(),
        Some(BankLatent {
            mean: 0.0,
            variance: 1.7
        })
    );
    let standard = text.replace("1.7", "1");
    assert_eq!(import_text(&standard, ModelKind::Rasch).unwrap().latent(), None);
    let p = the_problem(import_text(&text.replace("1.7", "-1"), ModelKind::Rasch));
    assert_eq!((p.field.as_deref(), p.line), (Some("COV_11"), Some(7)));
}

#[test]
fn standard_errors_of_intercepts_are_refused() {
    let text = "item,par,est,se\nq1,a1,1.2,0.1\nq1,d,0.5,0.1\n";
    let p = the_problem(import_text(text, ModelKind::TwoPl));
    assert_eq!((p.field.as_deref(), p.line), (Some("d"), Some(3)));
    assert!(p.message.contains("IRTpars = TRUE"), "{p}");
}

#[test]
fn multidimensional_columns_are_refused_in_one_line() {
    let text = "item,a1,a2,d,g,u\nq1,1.1,0.4,0.2,0,1\nq2,0.9,0.7,-0.3,0,1\n";
    let (result, path) = import_text_at(text, ModelKind::TwoPl);
    let err = result.unwrap_err();
    assert_eq!(err.problems().len(), 1, "{err}");
    let p = &err.problems()[0];
    assert_eq!((p.field.as_deref(), p.line), (Some("a2"), Some(1)));
    assert_eq!(
        p.message,
        format!(
            "cannot read mirt table {}: column `a2` (multidimensional slopes) is not supported; \
             supported layouts: IRT parameters (item,a,b,g,u / item,a,b1..), slope-intercept \
             (item,a1,d,g,u / item,a1,d1..), SE tables (item,par,est,se)",
            path.display()
        )
    );
    assert!(!p.message.contains('\n'));
    // Several unknown columns: still one problem naming them all.
    let p = the_problem(import_text(
        "item,a1,a2,a3,d,foo\nq1,1,1,1,0,x\n",
        ModelKind::TwoPl,
    ));
    assert!(
        p.message
            .contains("columns `a2`, `a3` (multidimensional slopes), `foo` are not supported"),
        "{p}"
    );
    // The same in an SE table.
    let p = the_problem(import_text(
        "item,par,est,se\nq1,a1,1,0.1\nq1,a2,1,0.1\nq1,d,0,0.1\n",
        ModelKind::TwoPl,
    ));
    assert_eq!((p.field.as_deref(), p.line), (Some("a2"), Some(3)));
    assert!(
        p.message
            .contains("parameter `a2` (multidimensional slopes) is not supported"),
        "{p}"
    );
}

#[test]
fn problems_are_located() {
    let err = import_text(
        "item,a,b,g,u\nq1,1,0,0,1\nq2,x,0,0,1\nq3,0,0,0,1\n",
        ModelKind::TwoPl,
    )
    .unwrap_err();
    let ps = err.problems();
    assert_eq!(ps.len(), 2, "{err}");
    assert_eq!(
        (ps[0].line, ps[0].item.as_deref(), ps[0].field.as_deref()),
        (Some(3), Some("q2"), Some("a"))
    );
    assert_eq!(
        (ps[1].line, ps[1].item.as_deref(), ps[1].field.as_deref()),
        (Some(4), Some("q3"), Some("a"))
    );
    // A threshold after a gap.
    let p = the_problem(import_text("item,a,b1,b2,b3\nq1,1,-1,NA,1\n", ModelKind::Graded));
    assert_eq!((p.field.as_deref(), p.item.as_deref()), (Some("b3"), Some("q1")));
    assert!(p.message.contains("without b2"), "{p}");
    // Fewer categories for some items: trailing NA.
    let bank = import_text("item,a,b1,b2,b3\nq1,1,-1,0,1\nq2,1,-1,1,NA\n", ModelKind::Graded).unwrap();
    assert_eq!(bank.items()[1].parameters.categories(), 3);
    // A missing column the model needs.
    let p = the_problem(import_text("item,a,b\nq1,1,0\n", ModelKind::ThreePl));
    assert_eq!(p.field.as_deref(), Some("g"));
    // Duplicate slope columns.
    let p = the_problem(import_text("item,a,a1,b\nq1,1,1,0\n", ModelKind::TwoPl));
    assert_eq!(p.field.as_deref(), Some("a1"));
}

#[test]
fn other_spellings_of_the_layouts() {
    // `a1` in an IRT table; R's unnamed row-name column.
    let a1 = import_text("item,a1,b,g,u\nq1,1.2,0.3,0,1\n", ModelKind::TwoPl).unwrap();
    let rownames = import_text(
        "\"\",\"a\",\"b\",\"g\",\"u\"\n\"q1\",1.2,0.3,0,1\n",
        ModelKind::TwoPl,
    )
    .unwrap();
    assert_eq!(a1, rownames);
    // Both b and d (mirt's simulation output): they must agree.
    let both = import_text("item,a,d,b\nI1,1.25,-0.25,0.2\n", ModelKind::TwoPl).unwrap();
    assert_eq!(both.items()[0].parameters.location(), 0.2);
    let p = the_problem(import_text("item,a,d,b\nI1,1.25,0.25,0.2\n", ModelKind::TwoPl));
    assert_eq!(p.field.as_deref(), Some("d"));
}

#[test]
fn arbitrary_tables_never_panic() {
    let headers = [
        "item,a,b,g,u",
        "item,a1,d,g,u",
        "item,a1,d1,d2",
        "item,a1,ak0,ak1,d0,d1",
        "item,a,b1,b2",
        "item,par,est,se",
        "",
    ];
    let cells = [
        "",
        "NA",
        "0",
        "1",
        "-1",
        "2.5",
        "x",
        "NaN",
        "inf",
        "a",
        "GroupPars",
        "COV_11",
        "b2",
    ];
    let mut seed = 12345u64;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.csv");
    for _ in 0..3000 {
        let header = headers[next(headers.len())];
        let width = header.split(',').count().max(1);
        let mut text = format!("{header}\n");
        for _ in 0..next(4) {
            let row: Vec<&str> = (0..width + next(3) / 2)
                .map(|_| cells[next(cells.len())])
                .collect();
            text.push_str(&row.join(","));
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();
        for model in ModelKind::ALL {
            let _ = import_mirt(&path, model);
        }
    }
}
