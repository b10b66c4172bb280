//! Profiles that borrow strength: multidimensional calibration against mirt (`reference/toolkit/md_*`,
//! mirt 1.45.1 `mirt.model("F1 = 1-8 / F2 = 9-16 / F3 = 17-24 / COV = F1*F2*F3")`, 15-point grid per
//! dimension), with the tolerances the reference's README derives from mirt's own grid and TOL.

use etalon::calibration::multidim::{MultiQuadrature, calibrate_multidimensional};
use etalon::calibration::{CalibrationSpec, em::EmConfig};
use etalon::items::{self, ModelKind};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn toolkit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference/toolkit")
        .join(name)
}

fn rows(name: &str) -> Vec<Vec<String>> {
    let mut rdr = csv::Reader::from_path(toolkit(name)).unwrap();
    rdr.records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn dimensions() -> BTreeMap<String, String> {
    rows("md_train_dims.csv")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// The 2PL fit of mirt's 3-dimension reference data (with standard errors or not).
fn fit_reference(standard_errors: bool) -> etalon::calibration::multidim::MultiCalibration {
    let responses = items::read_responses(toolkit("md_train.csv"), items::DataFormat::Wide).unwrap();
    let spec = CalibrationSpec {
        model: ModelKind::TwoPl,
        items: BTreeMap::new(),
        em: EmConfig::default(),
        standard_errors,
    };
    calibrate_multidimensional(&responses, &spec, &dimensions(), MultiQuadrature::default(), ()).unwrap()
}

/// Standard errors (`--se`): the items' and the correlations' against the generating values of the
/// mirt reference data (`md_train_truth*.csv`): if the SEs are right, z = (estimate − truth) / SE is
/// about N(0, 1), so the mean z² over 24 slopes, 24 difficulties and 3 correlations is near 1 (a
/// χ²₅₁ / 51 lies in [0.66, 1.40] with probability 0.95).
#[test]
fn standard_errors_cover_the_generating_parameters() {
    let fit = fit_reference(true);
    let truth = rows("md_train_truth.csv");
    let mut z2 = Vec::new();
    for row in &truth {
        let (a, d): (f64, f64) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        let item = fit.calibration.bank.item(&row[0]).unwrap();
        let se = &item.standard_errors;
        let (ea, eb) = (item.parameters.slope(), item.parameters.location());
        assert!(se["a"] > 0.02 && se["a"] < 0.2, "{}: SE a {}", row[0], se["a"]);
        z2.push(((ea - a) / se["a"]).powi(2));
        z2.push(((eb + d / a) / se["b"]).powi(2));
    }
    let r_true = rows("md_train_truth_cor.csv");
    let r_se = fit.correlation_se.as_ref().unwrap();
    for (k, l) in [(0, 1), (0, 2), (1, 2)] {
        let truth: f64 = r_true[k][l + 1].parse().unwrap();
        z2.push(((fit.correlations[k][l] - truth) / r_se[k][l]).powi(2));
        assert!(
            r_se[k][l] > 0.005 && r_se[k][l] < 0.05,
            "SE r{k}{l} {}",
            r_se[k][l]
        );
    }
    let mean = z2.iter().sum::<f64>() / z2.len() as f64;
    println!(
        "mean z² {mean:.3} over {} parameters; loading SEs {:?}",
        z2.len(),
        fit.loading_se
    );
    assert!((0.66..=1.40).contains(&mean), "mean z² {mean}");
}

#[test]
fn three_correlated_dimensions_agree_with_mirt() {
    let fit = fit_reference(false);
    assert!(fit.calibration.converged, "{:?}", fit.calibration.warnings);
    assert_eq!(fit.dimensions, ["F1", "F2", "F3"]);
    // mirt's 15-point rectangular grid is coarse; its log-likelihood moves by 0.009 on finer grids
    // (README): 0.02 is the stated tolerance.
    let mirt_loglik = -33945.6348240031;
    println!(
        "log L {} (mirt {mirt_loglik}), {} cycles",
        fit.calibration.loglik, fit.calibration.cycles
    );
    let cov = rows("md_train_mirt_cov.csv");
    for (k, l) in [(0, 1), (0, 2), (1, 2)] {
        let mirt: f64 = cov[k][l + 1].parse().unwrap();
        let ours = fit.correlations[k][l];
        println!("r{k}{l} {ours:.6} mirt {mirt:.6}");
        assert!(
            (ours - mirt).abs() < 2e-3,
            "correlation ({k}, {l}): {ours} vs mirt {mirt}"
        );
    }
    let bank = &fit.calibration.bank;
    let mut worst: (f64, String) = (0.0, String::new());
    for r in rows("md_train_mirt_2PL.csv") {
        let item = bank.item(&r[0]).unwrap();
        let (a, d): (f64, f64) = (r[1].parse().unwrap(), r[2].parse().unwrap());
        let ours_a = item.parameters.slope();
        let ours_d = -ours_a * item.parameters.location();
        for (what, x, y) in [("a", ours_a, a), ("d", ours_d, d)] {
            if (x - y).abs() > worst.0 {
                worst = ((x - y).abs(), format!("{} {what}: {x} vs mirt {y}", r[0]));
            }
        }
    }
    println!("largest parameter difference {worst:?}");
    assert!(worst.0 < 5e-3, "{worst:?}");
    assert!(
        (fit.calibration.loglik - mirt_loglik).abs() < 0.02,
        "log L {} vs mirt {mirt_loglik}",
        fit.calibration.loglik
    );
    // The bank records the structure, each item on its dimension.
    let s = bank.structure().unwrap();
    assert_eq!(s.dimensions, fit.dimensions);
    let by_item: HashMap<_, _> = dimensions().into_iter().collect();
    for item in bank.items() {
        assert_eq!(item.competence.as_ref(), by_item.get(&item.id));
    }
}

// ---------------------------------------------------------------------------------------------------
// The campaign study: 16 competences × 40 items, latent correlations 0.6–0.8.

use etalon::engine::multidim::{MultiConfig, MultiEngine};
use etalon::engine::profile::{ProfileConfig, ProfileEngine};
use etalon::engine::session::{CatEngine, Next};
use etalon::items::Bank;
use etalon::items::levels::{LevelMap, Levels};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const COMPETENCES: usize = 16;

/// The study bank: 640 2PL items, 40 per competence, correlations 0.6–0.8.
fn study_bank() -> Bank {
    etalon::engine::multidim::synthetic_bank(COMPETENCES, 40, 0.6, 0.8, 1515)
}

fn persons(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let bank = study_bank();
    etalon::engine::multidim::synthetic_persons(
        &etalon::engine::multidim::MultiModel::new(&bank).unwrap(),
        n,
        seed,
    )
}

/// A simulated answer of a person to item `id` (seeded per person and item: every design sees the
/// same answer to the same question).
fn answer(bank: &Bank, theta: &[f64], person: usize, id: &str) -> i64 {
    let j = bank.position(id).unwrap();
    let item = &bank.items()[j];
    let k = j / 40;
    let p = etalon::items::ResponseFunction::log_prob(&item.parameters, theta[k], 1).exp();
    let mut rng =
        Xoshiro256PlusPlus::seed_from_u64(etalon::engine::simulate::derive_seed(person as u64, j as u64));
    i64::from(rng.random::<f64>() < p)
}

/// Per design and length: (exact-level agreement, distinct items used, per-competence level
/// probability and whether the level was right).
struct Outcome {
    agreement: f64,
    items_used: usize,
    certainty: Vec<(f64, bool)>,
}

fn tally(results: Vec<(Vec<usize>, Vec<f64>, Vec<String>)>, truth: &[Vec<usize>]) -> Outcome {
    let mut used = std::collections::HashSet::new();
    let mut right = 0usize;
    let mut certainty = Vec::new();
    for ((levels, probs, items), t) in results.into_iter().zip(truth) {
        used.extend(items);
        for k in 0..COMPETENCES {
            right += usize::from(levels[k] == t[k]);
            certainty.push((probs[k], levels[k] == t[k]));
        }
    }
    Outcome {
        agreement: right as f64 / (truth.len() * COMPETENCES) as f64,
        items_used: used.len(),
        certainty,
    }
}

/// Run one design's test for every person (answers from [`answer`]): each competence's level and level
/// probability, in the bank's dimension order, and the items asked.
fn administer<S>(
    bank: &Bank,
    people: &[Vec<f64>],
    start: impl Fn(u64) -> S,
    next: impl Fn(&mut S) -> Next,
    record: impl Fn(&mut S, &str, i64),
    competences: impl Fn(&S) -> BTreeMap<String, etalon::engine::profile::CompetenceResult>,
) -> Vec<(Vec<usize>, Vec<f64>, Vec<String>)> {
    let dims = &bank.structure().unwrap().dimensions;
    people
        .iter()
        .enumerate()
        .map(|(p, theta)| {
            let mut s = start(p as u64);
            let mut items = Vec::new();
            while let Next::Item(id) = next(&mut s) {
                record(&mut s, &id, answer(bank, theta, p, &id));
                items.push(id);
            }
            let r = competences(&s);
            (
                dims.iter().map(|c| r[c].level).collect(),
                dims.iter().map(|c| r[c].level_probability).collect(),
                items,
            )
        })
        .collect()
}

fn run_designs(length: usize, bank: &Bank, people: &[Vec<f64>], map: &LevelMap) -> [Outcome; 3] {
    let truth: Vec<Vec<usize>> = people
        .iter()
        .map(|t| t.iter().map(|&x| map.level(x)).collect())
        .collect();
    // (a) One adaptive test per competence, length/16 questions each, EAP with N(0, 1).
    let per = length / COMPETENCES;
    let profile = ProfileEngine::new(
        bank,
        ProfileConfig {
            max_items_per_competence: per,
            min_items_per_competence: per,
            classify: false,
            ..ProfileConfig::default()
        },
    )
    .unwrap();
    let a = administer(
        bank,
        people,
        |p| profile.start(p),
        |s| profile.next(s).unwrap(),
        |s, id, x| {
            profile.record(s, id, x).unwrap();
        },
        |s| profile.result(s).competences,
    );
    // (b) PIX: one θ over the whole bank, every competence's level read from it.
    let mut config = etalon::engine::SessionConfig::default();
    config.stopping.max_items = length;
    config.stopping.min_items = length;
    config.stopping.se_target = None;
    let cat = CatEngine::new(bank, config).unwrap();
    let b: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(p, theta)| {
            let mut s = cat.start(p as u64);
            while let Next::Item(id) = cat.next(&mut s).unwrap() {
                let x = answer(bank, theta, p, &id);
                cat.record(&mut s, &id, x).unwrap();
            }
            let r = cat.result(&s);
            let level = map.level(r.theta);
            let prob = map.probabilities(r.theta, r.se)[level];
            (vec![level; COMPETENCES], vec![prob; COMPETENCES], r.items)
        })
        .collect();
    // (c) The multidimensional test.
    let multi = MultiEngine::new(
        bank,
        MultiConfig {
            max_items: length,
            min_items: length,
            max_items_per_competence: length,
            classify: false,
            ..MultiConfig::default()
        },
    )
    .unwrap();
    let c = administer(
        bank,
        people,
        |p| multi.start(p),
        |s| multi.next(s).unwrap(),
        |s, id, x| multi.record(s, id, x).unwrap(),
        |s| multi.result(s).unwrap().competences,
    );
    [tally(a, &truth), tally(b, &truth), tally(c, &truth)]
}

/// The study of the issue: exact-level agreement at 16, 32 and 48 questions for (a) one adaptive
/// test per competence, (b) one θ with PIX-style reading, (c) the multidimensional test; and the
/// reliability of the level certainty the multidimensional profile reports.
#[test]
fn the_multidimensional_test_beats_one_test_per_competence_and_one_theta() {
    let bank = study_bank();
    let n = std::env::var("ETALON_STUDY_PERSONS").map_or(300, |v| v.parse().unwrap());
    let people = persons(n, 77);
    let map = Levels::default().for_competence("C01").clone();
    let mut table = Vec::new();
    let mut certainty = Vec::new();
    for length in [16, 32, 48] {
        let [a, b, c] = run_designs(length, &bank, &people, &map);
        println!(
            "| {length} | {:.3} ({} items) | {:.3} ({} items) | {:.3} ({} items) |",
            a.agreement, a.items_used, b.agreement, b.items_used, c.agreement, c.items_used
        );
        table.push((length, a.agreement, b.agreement, c.agreement));
        certainty.extend(c.certainty);
    }
    for &(length, a, b, c) in &table {
        assert!(
            c > a && c > b,
            "{length} questions: multidimensional {c:.3} vs per competence {a:.3}, one θ {b:.3}"
        );
    }
    let a48 = table[2].1;
    let c32 = table[1].3;
    assert!(
        c32 >= a48,
        "multidimensional at 32 ({c32:.3}) should reach per-competence at 48 ({a48:.3})"
    );
    // Reliability diagram of the reported level probability (all three lengths pooled).
    println!("| reported | mean reported | right | n |");
    for bin in 0..10 {
        let (lo, hi) = (bin as f64 / 10.0, (bin + 1) as f64 / 10.0);
        let inside: Vec<_> = certainty
            .iter()
            .filter(|(p, _)| *p >= lo && (*p < hi || bin == 9))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let n = inside.len() as f64;
        let mean = inside.iter().map(|(p, _)| p).sum::<f64>() / n;
        let right = inside.iter().filter(|(_, r)| *r).count() as f64 / n;
        println!("| {lo:.1}–{hi:.1} | {mean:.3} | {right:.3} | {} |", inside.len());
        if inside.len() >= 300 {
            assert!(
                (mean - right).abs() <= 0.05,
                "bin {lo:.1}–{hi:.1}: reported {mean:.3}, right {right:.3}"
            );
        }
    }
}

#[test]
fn a_person_who_answers_everything_wrong_is_a_novice_everywhere() {
    let bank = study_bank();
    let engine = MultiEngine::new(
        &bank,
        MultiConfig {
            max_items: 32,
            min_items: 32,
            classify: false,
            ..MultiConfig::default()
        },
    )
    .unwrap();
    let mut s = engine.start(3);
    while let Next::Item(id) = engine.next(&mut s).unwrap() {
        engine.record(&mut s, &id, 0).unwrap();
    }
    let r = engine.result(&s).unwrap();
    assert!(r.general_theta < -2.5, "{}", r.general_theta);
    for (c, v) in &r.competences {
        assert_eq!(v.level, 0, "{c}: {v:?}");
    }
    // Resumable: the saved session replays to itself, and a tampered one is refused.
    let json = serde_json::to_string(&s).unwrap();
    let mut back: etalon::engine::multidim::MultiSession = serde_json::from_str(&json).unwrap();
    engine.verify(&mut back).unwrap();
    assert_eq!(back, s);
    let tampered: etalon::engine::multidim::MultiSession =
        serde_json::from_str(&json.replacen("\"category\":0", "\"category\":1", 1)).unwrap();
    assert!(engine.verify(&mut tampered.clone()).is_err());
    // Not only through verify: the first call on a session read from outside replays it, and a
    // refused call leaves it as it was.
    let mut copy = tampered.clone();
    let err = engine.next(&mut copy).unwrap_err().to_string();
    assert!(err.contains("history[0]"), "{err}");
    assert_eq!(copy, tampered);
    assert!(engine.result(&tampered).is_err());
    // A session of another configuration is refused.
    let other = MultiEngine::new(
        &bank,
        MultiConfig {
            max_items: 40,
            min_items: 32,
            classify: false,
            ..MultiConfig::default()
        },
    )
    .unwrap();
    assert!(other.next(&mut back.clone()).is_err());
}

// ---------------------------------------------------------------------------------------------------
// Front ends: the CLI's --dimensions, and assessments of a multidimensional bank.

mod common;
use common::{assert_fails_with, etalon_json, etalon_os};

fn temp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("multidimensional");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn calibrate_with_dimensions_writes_a_multidimensional_bank() {
    let out = temp("md_bank.json");
    let data = toolkit("md_train.csv");
    let dims = toolkit("md_train_dims.csv");
    let summary = etalon_json(&[
        "calibrate".as_ref(),
        data.as_os_str(),
        "--model".as_ref(),
        "2pl".as_ref(),
        "--dimensions".as_ref(),
        dims.as_os_str(),
        "--max-cycles".as_ref(),
        "30".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(summary["dimensions"], serde_json::json!(["F1", "F2", "F3"]));
    assert_eq!(summary["correlations"].as_array().unwrap().len(), 3);
    let bank = items::read_bank(&out).unwrap();
    assert_eq!(bank.structure().unwrap().dimensions, ["F1", "F2", "F3"]);
    // Bad dimension files are refused with their line; options that cannot combine are refused.
    let bad = temp("bad_dims.csv");
    std::fs::write(&bad, "item,dimension\nM01,F1\nM01,F2\n").unwrap();
    let run = |dims: &Path, extra: &[&str]| {
        let model = if extra.contains(&"--model") {
            [].as_slice()
        } else {
            ["--model", "2pl"].as_slice()
        };
        let mut args: Vec<&std::ffi::OsStr> = vec!["calibrate".as_ref(), data.as_os_str()];
        args.extend(model.iter().map(|s| std::ffi::OsStr::new(*s)));
        args.extend([
            "--dimensions".as_ref(),
            dims.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        etalon_os(&args)
    };
    assert_fails_with(&run(&bad, &[]), &["line 3", "listed twice"]);
    std::fs::write(&bad, "item,dimension\nM01,F1\n").unwrap();
    assert_fails_with(&run(&bad, &[]), &["items without a dimension", "M02"]);
    std::fs::write(&bad, "item,dim\nM01,F1\n").unwrap();
    assert_fails_with(&run(&bad, &[]), &["line 1", "`dimension`"]);
    // --se: item SEs in the bank, loading and correlation SEs in the summary.
    let with_se = run(&dims, &["--se", "--json"]);
    assert!(
        with_se.status.success(),
        "{}",
        String::from_utf8_lossy(&with_se.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&with_se.stdout).unwrap();
    assert_eq!(
        summary["correlations_se"].as_array().unwrap().len(),
        3,
        "{summary}"
    );
    assert!(
        summary["general_loadings_se"][0].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    let with_se_bank = items::read_bank(&out).unwrap();
    assert!(with_se_bank.items()[0].standard_errors["a"] > 0.0);
    assert_fails_with(&run(&dims, &["--model", "rasch"]), &["slope"]);
    // Scoring with the multidimensional bank: every competence's θ̂ and SE from the posterior under
    // N(0, R), the general level first.
    let scores = temp("md_scores.csv");
    let score = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "score".as_ref(),
            "--bank".as_ref(),
            out.as_os_str(),
            "--responses".as_ref(),
            data.as_os_str(),
            "--out".as_ref(),
            scores.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        etalon_os(&args)
    };
    let run = score(&["--method", "map", "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["dimensions"], serde_json::json!(["F1", "F2", "F3"]));
    assert_eq!(summary["persons"], 2500);
    let text = std::fs::read_to_string(&scores).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "person,theta,se,theta_F1,se_F1,theta_F2,se_F2,theta_F3,se_F3"
    );
    // Person 1's row is the model's MAP of their answers.
    let first: Vec<f64> = lines
        .next()
        .unwrap()
        .split(',')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let bank = items::read_bank(&out).unwrap(); // the last calibration's (with --se)
    let model = etalon::engine::multidim::MultiModel::new(&bank).unwrap();
    let row = &rows("md_train.csv")[0];
    let header: Vec<String> = csv::Reader::from_path(&data)
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let answers: Vec<(usize, usize)> = header
        .iter()
        .zip(row)
        .map(|(id, x)| (bank.position(id).unwrap(), x.parse().unwrap()))
        .collect();
    let e = model.map(&answers, None);
    for k in 0..3 {
        assert!((first[2 + 2 * k] - e.theta[k]).abs() < 1e-12 && (first[3 + 2 * k] - e.se(k)).abs() < 1e-12);
    }
    assert!((first[0] - e.general().0).abs() < 1e-12);
    // EAP (the default) on the 21³ grid: the posterior mean, near the mode with 8 answers per dimension.
    let eap = score(&[]);
    assert!(eap.status.success(), "{}", String::from_utf8_lossy(&eap.stderr));
    let text = std::fs::read_to_string(&scores).unwrap();
    let first_eap: Vec<f64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let eap_model = model.eap(&answers, 21).unwrap();
    for k in 0..3 {
        assert!((first_eap[2 + 2 * k] - eap_model.theta[k]).abs() < 1e-12);
        assert!(
            (first_eap[2 + 2 * k] - e.theta[k]).abs() < 0.25,
            "EAP {first_eap:?} vs MAP {:?}",
            e.theta
        );
    }
    // A one-θ method or prior is refused with the reason.
    assert_fails_with(
        &score(&["--method", "wle"]),
        &["wle estimates one θ", "eap or map"],
    );
    assert_fails_with(
        &score(&["--method", "map", "--prior-sd", "2"]),
        &["--prior-sd", "N(0, R)"],
    );
}

#[test]
fn an_assessment_on_a_multidimensional_bank_is_multidimensional_and_resumable() {
    use etalon::assessment::{Assessor, Response, presets};
    let bank = study_bank();
    let design = presets::default_design(&bank);
    assert!(matches!(design, etalon::assessment::Design::Multidimensional(_)));
    let assessor = Assessor::new(&bank, design).unwrap();
    let mut a = assessor.start(9);
    let theta = &persons(1, 4)[0];
    let mut asked = 0;
    while let Some(view) = assessor.current(&mut a).unwrap() {
        // Half-way, save and resume: the same test goes on.
        if asked == 10 {
            let saved = assessor.save(&a);
            a = assessor.resume(&saved).unwrap();
            // An edited answer is refused (the replay recomputes every θ).
            let edited = if saved.contains("\"category\":1") {
                saved.replacen("\"category\":1", "\"category\":0", 1)
            } else {
                saved.replacen("\"category\":0", "\"category\":1", 1)
            };
            assert!(assessor.resume(&edited).is_err());
        }
        let x = answer(&bank, theta, 0, &view.item);
        assessor.answer(&mut a, &view.item, Response::Code(x)).unwrap();
        asked += 1;
    }
    let r = assessor.result(&a);
    assert!(r.finished && (16..=32).contains(&asked), "{asked} questions");
    assert_eq!(r.competences.len(), COMPETENCES);
    // Each competence is estimated from every answer: its SE is below what its own ≤ 3 answers give
    // alone under N(0, 1) (about 0.6 at best), and it differs across competences.
    for (c, v) in &r.competences {
        assert!(v.result.se < 0.6, "{c}: SE {}", v.result.se);
    }
}

/// Run `etalon campaign run` on `campaign` (a JSON value written next to the bank) and return its
/// summary and the results' lines.
fn run_campaign(
    name: &str,
    campaign: serde_json::Value,
    participants: &str,
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let file = temp(&format!("{name}.json"));
    std::fs::write(&file, campaign.to_string()).unwrap();
    let out = temp(&format!("{name}-results.jsonl"));
    let _ = std::fs::remove_file(&out);
    let summary = etalon_json(&[
        "campaign".as_ref(),
        "run".as_ref(),
        "--campaign".as_ref(),
        file.as_os_str(),
        "--participants".as_ref(),
        participants.as_ref(),
        "--seed".as_ref(),
        "5".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let lines = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (summary, lines)
}

#[test]
fn a_campaign_on_a_multidimensional_bank_runs_the_design_it_asks_for() {
    let bank_file = temp("campaign_bank.json");
    std::fs::write(&bank_file, study_bank().to_json()).unwrap();
    // Six of the sixteen competences, two questions each.
    let targets: Vec<_> = (1..=6)
        .map(|k| serde_json::json!({"competence": format!("C{k:02}"), "target_level": 3}))
        .collect();
    let campaign = |design: &str| {
        let mut c = serde_json::json!({
            "id": "md", "name": "multidimensional campaign", "bank": "campaign_bank.json",
            "targets": targets, "simulated_correlation": 0.7,
            "assessment": {"max_items_per_competence": 2, "min_items_per_competence": 2, "classify": false},
        });
        if !design.is_empty() {
            c["design"] = design.into();
        }
        c
    };
    let mut agreement = BTreeMap::new();
    for (design, expected) in [
        ("", "multidimensional"),
        ("profile", "profile"),
        ("general", "general"),
    ] {
        let (summary, lines) = run_campaign(&format!("md-{expected}"), campaign(design), "400");
        assert_eq!(summary["design"], expected, "{summary}");
        assert_eq!(summary["competences"], 6);
        assert_eq!(lines.len(), 400);
        for l in &lines {
            // Only the targets are assessed and reported, within the campaign's budget of 12 questions.
            let competences = l["competences"].as_object().unwrap();
            let ids: Vec<&str> = competences.keys().map(String::as_str).collect();
            assert_eq!(ids, ["C01", "C02", "C03", "C04", "C05", "C06"], "{l}");
            let items: u64 = competences.values().map(|c| c["items"].as_u64().unwrap()).sum();
            assert!(items <= 12, "{items} items: {l}");
        }
        agreement.insert(expected, summary["exact_level_agreement"].as_f64().unwrap());
    }
    eprintln!("exact-level agreement, 6 competences × 2 questions, 400 participants: {agreement:?}");
    // Borrowing strength: the multidimensional profile classifies better than one test per competence
    // with the same 12 questions.
    assert!(
        agreement["multidimensional"] > agreement["profile"],
        "{agreement:?}"
    );
    // The report reads multidimensional results like any other.
    let report = temp("md-report.json");
    let status = etalon_os(&[
        "campaign".as_ref(),
        "report".as_ref(),
        temp("md-multidimensional-results.jsonl").as_os_str(),
        "--campaign".as_ref(),
        temp("md-multidimensional.json").as_os_str(),
        "--out".as_ref(),
        report.as_os_str(),
    ]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["participants"], 400);
    // The multidimensional design needs a bank with a latent structure: the example bank has none.
    let mut plain = campaign("multidimensional");
    plain.as_object_mut().unwrap().remove("bank");
    plain["targets"] = serde_json::json!([{"competence": "1.1", "target_level": 3}]);
    let file = temp("md-plain.json");
    std::fs::write(&file, plain.to_string()).unwrap();
    assert_fails_with(
        &etalon_os(&[
            "campaign".as_ref(),
            "run".as_ref(),
            "--campaign".as_ref(),
            file.as_os_str(),
            "--participants".as_ref(),
            "3".as_ref(),
            "--out".as_ref(),
            temp("md-plain-results.jsonl").as_os_str(),
        ]),
        &["md-plain.json", "field `design`", "latent structure"],
    );
}

#[test]
fn the_general_design_reads_every_level_from_one_theta() {
    use etalon::assessment::{Assessor, Design, Response};
    let bank = study_bank();
    let mut config = etalon::engine::SessionConfig::default();
    config.stopping.max_items = 12;
    config.stopping.min_items = 12;
    config.stopping.se_target = None;
    let design = Design::from_json(&serde_json::json!({ "general": config }).to_string()).unwrap();
    let assessor = Assessor::new(&bank, design).unwrap();
    assert_eq!(assessor.design_name(), "general");
    let mut a = assessor.start(3);
    let theta = &persons(1, 8)[0];
    while let Some(view) = assessor.current(&mut a).unwrap() {
        let x = answer(&bank, theta, 0, &view.item);
        assessor.answer(&mut a, &view.item, Response::Code(x)).unwrap();
    }
    let r = assessor.result(&a);
    // Sixteen levels, every one read from the one θ̂ on its competence's map; the answers counted
    // where they were given.
    assert_eq!(r.competences.len(), COMPETENCES);
    let map = assessor.levels().for_competence("C01");
    let mut items = 0;
    for v in r.competences.values() {
        assert_eq!((v.result.theta, v.result.se), (r.theta, r.se));
        assert_eq!(v.result.level, map.level(r.theta));
        items += v.result.items;
    }
    assert_eq!(items, 12);
    // Saved, it resumes under the general design only: a plain adaptive design with the same settings
    // would read the levels differently.
    let saved = assessor.save(&a);
    assert!(assessor.resume(&saved).is_ok());
    let mut config = etalon::engine::SessionConfig::default();
    config.stopping.max_items = 12;
    config.stopping.min_items = 12;
    config.stopping.se_target = None;
    let adaptive = Assessor::new(&bank, Design::Adaptive(config)).unwrap();
    let err = adaptive.resume(&saved).unwrap_err().to_string();
    assert!(err.contains("general"), "{err}");
    let plain = adaptive.save(&adaptive.start(3));
    assert!(
        assessor
            .resume(&plain)
            .unwrap_err()
            .to_string()
            .contains("adaptive")
    );
}

/// Five correlated dimensions (no mirt reference exists for more than three here: R is not on this
/// machine): data simulated from a known 5-dimension bank, 10 items per dimension, 5,000 persons. If
/// estimates and standard errors are right, z = (estimate − truth) / SE over 50 slopes, 50
/// difficulties and 10 correlations is about N(0, 1): the mean z² of 110 lies in [0.74, 1.27] with
/// probability 0.95.
#[test]
fn five_correlated_dimensions_recover_the_generating_values() {
    let truth = etalon::engine::multidim::synthetic_bank(5, 10, 0.4, 0.8, 55);
    let model = etalon::engine::multidim::MultiModel::new(&truth).unwrap();
    let people = etalon::engine::multidim::synthetic_persons(&model, 5000, 56);
    let (mut persons, mut ids, mut codes) = (Vec::new(), Vec::new(), Vec::new());
    for (p, theta) in people.iter().enumerate() {
        for (j, item) in truth.items().iter().enumerate() {
            let prob = etalon::items::ResponseFunction::log_prob(&item.parameters, theta[j / 10], 1).exp();
            let mut rng =
                Xoshiro256PlusPlus::seed_from_u64(etalon::engine::simulate::derive_seed(p as u64, j as u64));
            persons.push(format!("P{p}"));
            ids.push(item.id.clone());
            codes.push(i64::from(rng.random::<f64>() < prob));
        }
    }
    let responses = etalon::assessment::tables::long_responses(&persons, &ids, &codes, "five").unwrap();
    let dims: BTreeMap<String, String> = truth
        .items()
        .iter()
        .map(|i| (i.id.clone(), i.competence.clone().unwrap()))
        .collect();
    let spec = CalibrationSpec {
        model: ModelKind::TwoPl,
        items: BTreeMap::new(),
        em: EmConfig::default(),
        standard_errors: true,
    };
    let fit = calibrate_multidimensional(&responses, &spec, &dims, MultiQuadrature::default(), ()).unwrap();
    assert!(fit.calibration.converged);
    let mut z2 = Vec::new();
    for item in truth.items() {
        let est = fit.calibration.bank.item(&item.id).unwrap();
        let se = &est.standard_errors;
        z2.push(((est.parameters.slope() - item.parameters.slope()) / se["a"]).powi(2));
        z2.push(((est.parameters.location() - item.parameters.location()) / se["b"]).powi(2));
    }
    let names = &fit.dimensions;
    let r_true = truth.structure().unwrap();
    let r_se = fit.correlation_se.as_ref().unwrap();
    for k in 0..5 {
        for l in k + 1..5 {
            let (a, b) = (
                r_true.dimension(&names[k]).unwrap(),
                r_true.dimension(&names[l]).unwrap(),
            );
            z2.push(((fit.correlations[k][l] - r_true.correlations[a][b]) / r_se[k][l]).powi(2));
        }
    }
    let mean = z2.iter().sum::<f64>() / z2.len() as f64;
    println!("5 dimensions: mean z² {mean:.3} over {} parameters", z2.len());
    assert_eq!(z2.len(), 110);
    assert!((0.74..=1.27).contains(&mean), "mean z² {mean}");
}

#[test]
fn eap_on_four_dimensions_is_refused_before_reading_the_data() {
    let bank = temp("four.json");
    std::fs::write(
        &bank,
        etalon::engine::multidim::synthetic_bank(4, 3, 0.5, 0.7, 2).to_json(),
    )
    .unwrap();
    // The data file does not exist: the method is refused first, naming the way out.
    let out = etalon_os(&[
        "score".as_ref(),
        "--bank".as_ref(),
        bank.as_os_str(),
        "--responses".as_ref(),
        temp("no-such-data.csv").as_os_str(),
        "--out".as_ref(),
        temp("four-scores.csv").as_os_str(),
    ]);
    assert_fails_with(&out, &["--method eap", "21^4", "--method map"]);
}
