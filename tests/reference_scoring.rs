//! Ability estimates against mirt 1.45.1 `fscores` (`reference/mirt/`), with mirt's item
//! parameters loaded as banks. Tolerances: EAP, its SD, MAP and its SE to 1e-4; ML, ML SE, WLE and its
//! SE to 1e-3 (SEs relative to max(1, SE)); infinite ML exactly where mirt's is. Graded and GPCM EAP against an independent
//! brute-force integration to 1e-6.

mod common;
use common::reference;
use etalon::engine::estimate::{Answer, EstimateKind, Estimator, EstimatorConfig, Method};
use etalon::items::{self, Bank, DataFormat, ModelKind, Responses};

fn mirt_bank(name: &str, model: ModelKind) -> Bank {
    items::import_mirt(reference().join("mirt").join(name), model).unwrap()
}

fn data(name: &str) -> Responses {
    items::read_responses(reference().join("data").join(name), DataFormat::Wide).unwrap()
}

fn answers_of(r: &Responses, bank: &Bank) -> Vec<Vec<Answer>> {
    let al = r.align(bank).unwrap();
    (0..r.n_persons())
        .map(|p| {
            let mut v = Vec::new();
            r.for_each_answer(p, |j, c| {
                v.push(Answer::new(al.columns[j], al.categories[j][c as usize] as usize));
            });
            v
        })
        .collect()
}

/// Rows of a mirt CSV as maps column → value (`Inf`, `-Inf`, `NA` parsed as ±∞ and NaN).
fn mirt_rows(name: &str) -> Vec<std::collections::HashMap<String, f64>> {
    let mut rdr = csv::Reader::from_path(reference().join("mirt").join(name)).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| {
                    let x = match v {
                        "Inf" => f64::INFINITY,
                        "-Inf" => f64::NEG_INFINITY,
                        "NA" => f64::NAN,
                        _ => v.parse().unwrap(),
                    };
                    (h.clone(), x)
                })
                .collect()
        })
        .collect()
}

fn estimator(bank: &Bank, method: Method) -> Estimator {
    let models = bank.items().iter().map(|i| i.parameters.clone()).collect();
    Estimator::new(
        models,
        EstimatorConfig {
            method,
            ..EstimatorConfig::default()
        },
    )
    .unwrap()
}

fn close(what: &str, person: usize, ours: f64, theirs: f64, tol: f64) {
    if theirs.is_infinite() || theirs.is_nan() {
        assert!(
            ours == theirs || (ours.is_nan() && theirs.is_nan()),
            "{what} person {person}: ours {ours}, mirt {theirs}"
        );
    } else {
        assert!(
            (ours - theirs).abs() <= tol,
            "{what} person {person}: ours {ours}, mirt {theirs} (tol {tol})"
        );
    }
}

fn check(bank: &Bank, persons: &[Vec<Answer>], rows: &[std::collections::HashMap<String, f64>]) {
    assert_eq!(persons.len(), rows.len());
    let mut buf = Vec::new();
    for (method, col, tol) in [
        (Method::Eap, "EAP", 1e-4),
        (Method::Map, "MAP", 1e-4),
        (Method::Ml, "ML", 1e-3),
        (Method::Wle, "WLE", 1e-3),
    ] {
        if !rows[0].contains_key(col) {
            continue;
        }
        let est = estimator(bank, method);
        for (p, (answers, row)) in persons.iter().zip(rows).enumerate() {
            let e = est.estimate(answers, &mut buf).unwrap();
            close(col, p + 1, e.theta, row[col], tol);
            if method == Method::Ml && row[col].is_infinite() {
                assert_eq!(e.kind, EstimateKind::Infinite);
            }
            let se_col = format!("{col}_SE");
            if let Some(&se) = row.get(&se_col) {
                // SEs far out (ML SE 7.3 at θ = 10.2) grow exponentially with θ: relative tolerance.
                close(&se_col, p + 1, e.se, se, tol * se.abs().max(1.0));
            }
        }
    }
}

#[test]
fn sat12_all_persons_all_methods() {
    let bank = mirt_bank("SAT12_2PL.csv", ModelKind::TwoPl);
    let persons = answers_of(&data("SAT12.csv"), &bank);
    check(&bank, &persons, &mirt_rows("SAT12_2PL_fscores_all.csv"));
}

#[test]
fn lsat7_all_persons_and_first20() {
    let bank = mirt_bank("LSAT7_2PL.csv", ModelKind::TwoPl);
    let persons = answers_of(&data("LSAT7.csv"), &bank);
    check(&bank, &persons, &mirt_rows("LSAT7_2PL_fscores_all.csv"));
    check(&bank, &persons[..20], &mirt_rows("LSAT7_2PL_fscores_first20.csv"));
    let sat = mirt_bank("SAT12_2PL.csv", ModelKind::TwoPl);
    let sat_persons = answers_of(&data("SAT12.csv"), &sat);
    check(
        &sat,
        &sat_persons[..20],
        &mirt_rows("SAT12_2PL_fscores_first20.csv"),
    );
}

#[test]
fn lsat7_all_32_patterns() {
    let bank = mirt_bank("LSAT7_2PL.csv", ModelKind::TwoPl);
    let rows = mirt_rows("LSAT7_2PL_fscores_patterns.csv");
    let persons: Vec<Vec<Answer>> = rows
        .iter()
        .map(|r| {
            (0..5)
                .map(|j| Answer::new(j, r[&format!("Item.{}", j + 1)] as usize))
                .collect()
        })
        .collect();
    check(&bank, &persons, &rows);
}

/// Independent EAP: probabilities straight from the model formulas (no log space, no shared code),
/// integrated on the same 61-point grid.
fn brute_force_eap(bank: &Bank, answers: &[Answer]) -> (f64, f64) {
    let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
    for q in 0..61 {
        let theta = -6.0 + 0.2 * q as f64;
        let mut like = (-0.5 * theta * theta).exp();
        for a in answers {
            let m = &bank.items()[a.item as usize].parameters;
            let p = m.polytomous().unwrap();
            let k = a.category as usize;
            let prob = if m.kind() == ModelKind::Graded {
                let star = |i: usize| -> f64 {
                    if i == 0 {
                        1.0
                    } else if i > p.thresholds().len() {
                        0.0
                    } else {
                        1.0 / (1.0 + (-p.a() * (theta - p.thresholds()[i - 1])).exp())
                    }
                };
                star(k) - star(k + 1)
            } else {
                let num = |c: usize| {
                    (0..c)
                        .map(|v| p.a() * (theta - p.thresholds()[v]))
                        .sum::<f64>()
                        .exp()
                };
                num(k) / (0..p.categories()).map(num).sum::<f64>()
            };
            like *= prob;
        }
        s0 += like;
        s1 += like * theta;
        s2 += like * theta * theta;
    }
    let mean = s1 / s0;
    (mean, (s2 / s0 - mean * mean).sqrt())
}

#[test]
fn science_graded_and_gpcm_eap_match_brute_force() {
    for (file, model) in [
        ("Science_graded.csv", ModelKind::Graded),
        ("Science_gpcm.csv", ModelKind::Gpcm),
    ] {
        let bank = mirt_bank(file, model);
        let persons = answers_of(&data("Science.csv"), &bank);
        let est = estimator(&bank, Method::Eap);
        let mut buf = Vec::new();
        for p in [0, 1, 2, 17, 100, 250, 391] {
            let e = est.estimate(&persons[p], &mut buf).unwrap();
            let (mean, sd) = brute_force_eap(&bank, &persons[p]);
            assert!(
                (e.theta - mean).abs() < 1e-6,
                "{file} person {p}: {} vs {mean}",
                e.theta
            );
            assert!((e.se - sd).abs() < 1e-6, "{file} person {p}: {} vs {sd}", e.se);
        }
    }
}

/// mirt's SAT12 2PL bank with `Item.18` reversed (its slope negated, as a calibration of the
/// miskeyed item gives it), and each person's answers with `Item.18` reversed too: the likelihood
/// of every person is unchanged, so every estimate must be mirt's on the original data.
#[test]
fn a_negatively_discriminating_item_scores_as_mirt() {
    let mut bank = mirt_bank("SAT12_2PL.csv", ModelKind::TwoPl);
    bank.update_items(|items| {
        let item = items.iter_mut().find(|i| i.id == "Item.18").unwrap();
        let (a, b) = (item.parameters.slope(), item.parameters.location());
        item.parameters = etalon::items::ItemModel::two_pl(-a, b).unwrap();
    })
    .unwrap();
    assert_eq!(bank.negative_slopes().count(), 1);
    assert!(
        bank.warnings()[0].contains("`Item.18` discriminates negatively"),
        "{:?}",
        bank.warnings()
    );
    let column = bank.position("Item.18").unwrap();
    let persons: Vec<Vec<Answer>> = answers_of(&data("SAT12.csv"), &bank)
        .into_iter()
        .map(|answers| {
            answers
                .into_iter()
                .map(|a| {
                    if a.item as usize == column {
                        Answer::new(column, usize::from(1 - a.category))
                    } else {
                        a
                    }
                })
                .collect()
        })
        .collect();
    check(&bank, &persons, &mirt_rows("SAT12_2PL_fscores_all.csv"));
}
