//! Extreme but valid banks and grids (issue "Nothing lost, nothing trusted", point 5, "No silent wrong
//! numbers"): an estimate that cannot be computed is an error, never a bound or another method's value;
//! an EAP grid coarser than the posterior is refined, never reported as a grid point with SE 0.

use etalon_engine::config::{SessionConfig, StoppingConfig};
use etalon_engine::estimate::{
    self, Answer, EapTable, Estimate, EstimateKind, EstimationError, Estimator, EstimatorConfig, Method,
    UnscorableReason,
};
use etalon_engine::quadrature::{Grid, GridSpec, Prior, Rule};
use etalon_engine::session::{CatEngine, Next};
use etalon_items::ItemModel;

/// Items of slope 10⁶ at difficulties −10⁶, 10⁶, −10⁶, 10⁶: no information anywhere in the θ range.
fn far_bank() -> Vec<ItemModel> {
    [-1e6, 1e6, -1e6, 1e6]
        .iter()
        .map(|&b| ItemModel::two_pl(1e6, b).unwrap())
        .collect()
}

fn answers(pattern: &[usize]) -> Vec<Answer> {
    pattern
        .iter()
        .enumerate()
        .map(|(j, &c)| Answer::new(j, c))
        .collect()
}

fn estimator(models: &[ItemModel], method: Method) -> Estimator {
    Estimator::new(
        models.to_vec(),
        EstimatorConfig {
            method,
            ..Default::default()
        },
    )
    .unwrap()
}

fn estimate(models: &[ItemModel], method: Method, pattern: &[usize]) -> Result<Estimate, EstimationError> {
    estimator(models, method).estimate(&answers(pattern), &mut Vec::new())
}

fn is_unscorable(r: &Result<Estimate, EstimationError>, method: Method) -> bool {
    matches!(r, Err(EstimationError::Unscorable { method: m, .. }) if *m == method)
}

const PATTERNS: [[usize; 4]; 5] = [
    [1, 0, 1, 0],
    [1, 1, 1, 1],
    [0, 0, 0, 0],
    [1, 1, 0, 0],
    [0, 1, 1, 0],
];

#[test]
fn wle_on_uninformative_items_is_unscorable_not_a_bound() {
    // Before: θ = −20 (the lower bound, flagged Finite) for every pattern; −6 with the CLI's range.
    for p in PATTERNS {
        let r = estimate(&far_bank(), Method::Wle, &p);
        assert!(is_unscorable(&r, Method::Wle), "{p:?}: {r:?}");
        let text = r.unwrap_err().to_string();
        assert!(text.starts_with("WLE estimate cannot be computed"), "{text}");
    }
    // The call an adaptive session makes for an all-correct examinee (before: −20).
    let r = estimate::wle(&far_bank(), &answers(&[1, 1, 1, 1]), (-20.0, 20.0), 0.0);
    assert!(
        matches!(
            r,
            Err(EstimationError::Unscorable {
                reason: UnscorableReason::UndefinedScore { .. },
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn ml_on_a_flat_likelihood_is_unscorable_not_the_eap() {
    // Before: the EAP start value (≈ 0) with an infinite SE (an empty cell), flagged Finite.
    for p in [[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]] {
        let r = estimate(&far_bank(), Method::Ml, &p);
        assert!(
            matches!(
                r,
                Err(EstimationError::Unscorable {
                    method: Method::Ml,
                    reason: UnscorableReason::FlatLikelihood { .. }
                })
            ),
            "{p:?}: {r:?}"
        );
    }
    // Guttman pattern on step-like items: every θ between 0.3 and 1 fits equally (before: the EAP, 0.629).
    let steps: Vec<ItemModel> = [-0.5, 0.3, 1.0, 2.0]
        .iter()
        .map(|&b| ItemModel::two_pl(1e6, b).unwrap())
        .collect();
    for p in [[1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]] {
        let r = estimate(&steps, Method::Ml, &p);
        assert!(is_unscorable(&r, Method::Ml), "{p:?}: {r:?}");
    }
    // All-highest / all-lowest stay ±∞ as documented (mirt does the same).
    let e = estimate(&far_bank(), Method::Ml, &[1, 1, 1, 1]).unwrap();
    assert_eq!((e.theta, e.kind), (f64::INFINITY, EstimateKind::Infinite));
    let e = estimate(&far_bank(), Method::Ml, &[0, 0, 0, 0]).unwrap();
    assert_eq!((e.theta, e.kind), (f64::NEG_INFINITY, EstimateKind::Infinite));
}

#[test]
fn a_maximum_beyond_the_bound_stays_bounded() {
    // One ordinary item answered correctly plus two uninformative ones: the likelihood rises up to
    // θ ≈ 5·10⁵, beyond the bound — a true bounded estimate, not a solver failure.
    let models: Vec<ItemModel> = [(1.0, -1e6), (1.0, 1e6), (1.0, 0.0)]
        .iter()
        .map(|&(a, b)| ItemModel::two_pl(a, b).unwrap())
        .collect();
    let e = estimate(&models, Method::Ml, &[1, 0, 1]).unwrap();
    assert_eq!((e.theta, e.kind), (20.0, EstimateKind::Bounded), "{e:?}");
    let e = estimate(&models, Method::Ml, &[0, 1, 0]).unwrap();
    assert_eq!((e.theta, e.kind), (-20.0, EstimateKind::Bounded), "{e:?}");
    // WLE is interior there: ln 3 (the uninformative items add nothing).
    let e = estimate(&models, Method::Wle, &[1, 0, 1]).unwrap();
    assert!(
        (e.theta - 3f64.ln()).abs() < 1e-9 && e.kind == EstimateKind::Finite,
        "{e:?}"
    );
    // MAP of an all-correct pattern on the far items: the mode is near 10⁶, so bounded.
    let e = estimate(&far_bank(), Method::Map, &[1, 1, 1, 1]).unwrap();
    assert_eq!((e.theta, e.kind), (20.0, EstimateKind::Bounded), "{e:?}");
}

#[test]
fn eap_keeps_its_prior_and_flags_a_posterior_piled_on_the_range_end() {
    // Uninformative answers: the posterior is the prior N(0, 1).
    let e = estimate(&far_bank(), Method::Eap, &[1, 0, 1, 0]).unwrap();
    assert!(e.theta.abs() < 1e-9 && (e.se - 1.0).abs() < 1e-6, "{e:?}");
    // All correct: the posterior rises like exp(2·10⁶ θ) up to the end of the range. Before: θ = 6,
    // SE = 0, Finite. Now: the refined mean just inside 6, a positive SD, flagged Bounded.
    for (p, sign) in [([1, 1, 1, 1], 1.0), ([0, 0, 0, 0], -1.0)] {
        let e = estimate(&far_bank(), Method::Eap, &p).unwrap();
        assert_eq!(e.kind, EstimateKind::Bounded, "{e:?}");
        assert!(sign * e.theta < 6.0 && sign * e.theta > 6.0 - 1e-5, "{e:?}");
        assert!(e.se > 0.0 && e.se < 1e-5, "{e:?}");
    }
}

#[test]
fn a_narrow_posterior_near_the_range_end_is_not_flagged_bounded() {
    // 250 answers to items at b = ∓5.45 (half right): the posterior, SD ≈ 0.05, sits 0.55 inside the
    // range, close enough for the refinement to start at the range end. Weights that far below the
    // mode are 0 in the moments: the piled-at-the-end test reads the log posterior, not 0 ≥ 0.
    for sign in [-1.0, 1.0] {
        let models: Vec<ItemModel> = (0..250)
            .map(|_| ItemModel::two_pl(2.5, sign * 5.45).unwrap())
            .collect();
        let pattern: Vec<usize> = (0..250).map(|j| j % 2).collect();
        for rule in [Rule::Rectangle, Rule::Trapezoid] {
            let est = Estimator::new(
                models.clone(),
                EstimatorConfig {
                    grid: GridSpec {
                        rule,
                        ..GridSpec::default()
                    },
                    ..Default::default()
                },
            )
            .unwrap();
            let e = est.estimate(&answers(&pattern), &mut Vec::new()).unwrap();
            assert_eq!(e.kind, EstimateKind::Finite, "{rule:?} {e:?}");
            assert!(
                (e.theta - sign * 5.45).abs() < 0.05 && e.se < 0.1,
                "{rule:?} {e:?}"
            );
        }
    }
}

/// 5000 answers to 2PL items (a = 1.5): posterior SD ≈ 0.025, an eighth of mirt's grid spacing.
fn long_test() -> (Vec<ItemModel>, Vec<Answer>) {
    let b = |j: usize| ((j % 41) as f64 - 20.0) / 10.0;
    let models = (0..5000).map(|j| ItemModel::two_pl(1.5, b(j)).unwrap()).collect();
    let answers = (0..5000)
        .map(|j| Answer::new(j, usize::from(b(j) < 0.37)))
        .collect();
    (models, answers)
}

#[test]
fn eap_refines_a_grid_coarser_than_the_posterior() {
    let (models, answers) = long_test();
    let mut buf = Vec::new();
    let eap = estimator(&models, Method::Eap)
        .estimate(&answers, &mut buf)
        .unwrap();
    let ml = estimator(&models, Method::Ml)
        .estimate(&answers, &mut buf)
        .unwrap();
    let map = estimator(&models, Method::Map)
        .estimate(&answers, &mut buf)
        .unwrap();
    // Before: θ = 0.39999999999989727 (a grid point), SE = 1.4e-7.
    assert_eq!(eap.kind, EstimateKind::Finite);
    assert!((eap.theta - map.theta).abs() < 1e-3, "{eap:?} vs MAP {map:?}");
    assert!((eap.se / ml.se - 1.0).abs() < 0.01, "{eap:?} vs ML {ml:?}");
    // Any rule: trapezoid (catR) and Gauss–Hermite grids are refined the same way.
    for (rule, points) in [(Rule::Trapezoid, 33), (Rule::GaussHermite, 41)] {
        let est = Estimator::new(
            models.clone(),
            EstimatorConfig {
                grid: GridSpec {
                    lower: -4.0,
                    upper: 4.0,
                    points,
                    rule,
                },
                ..Default::default()
            },
        )
        .unwrap();
        let e = est.estimate(&answers, &mut buf).unwrap();
        assert!(
            (e.theta - eap.theta).abs() < 1e-9 && (e.se - eap.se).abs() < 1e-9,
            "{rule:?}: {e:?}"
        );
    }
}

#[test]
fn eap_on_a_huge_range_is_the_eap_of_the_ordinary_range() {
    // 61 points on [−10⁶, 10⁶]: spacing 33 333, the prior N(0, 1) sits on one point. Before: θ = 1.2e-10,
    // SE = 0 for every person.
    let models: Vec<ItemModel> = (0..20)
        .map(|j| ItemModel::two_pl(1.2, (j as f64 - 10.0) / 5.0).unwrap())
        .collect();
    let answers: Vec<Answer> = (0..20).map(|j| Answer::new(j, usize::from(j % 3 != 0))).collect();
    let huge = Estimator::new(
        models.clone(),
        EstimatorConfig {
            grid: GridSpec {
                lower: -1e6,
                upper: 1e6,
                ..GridSpec::default()
            },
            bounds: (-1e6, 1e6),
            ..Default::default()
        },
    )
    .unwrap();
    let e = huge.estimate(&answers, &mut Vec::new()).unwrap();
    // The reference: a fine grid on [−6, 6], where the prior leaves nothing outside.
    let fine = Estimator::new(
        models,
        EstimatorConfig {
            grid: GridSpec {
                points: 2001,
                ..GridSpec::default()
            },
            ..Default::default()
        },
    )
    .unwrap()
    .estimate(&answers, &mut Vec::new())
    .unwrap();
    assert_eq!(e.kind, EstimateKind::Finite);
    assert!(
        (e.theta - fine.theta).abs() < 1e-8 && (e.se - fine.se).abs() < 1e-8,
        "{e:?} vs {fine:?}"
    );
    // Every method, every person: never θ = 0 with SE = 0.
    for method in [Method::Eap, Method::Map, Method::Ml, Method::Wle] {
        for p in 0..8usize {
            let a: Vec<Answer> = (0..20).map(|j| Answer::new(j, (j * 7 + p * 5) % 3 % 2)).collect();
            let cfg = EstimatorConfig {
                method,
                ..*huge.config()
            };
            let est = Estimator::new(huge.models().to_vec(), cfg).unwrap();
            if let Ok(e) = est.estimate(&a, &mut Vec::new()) {
                assert!(
                    e.se > 1e-3 || e.kind == EstimateKind::Infinite,
                    "{method:?} {p}: {e:?}"
                );
            }
        }
    }
}

#[test]
fn a_posterior_narrower_than_floating_point_is_refused() {
    // Correct on one item and wrong on another of slope 10¹⁷ at the same difficulty: the posterior
    // is a spike of width 10⁻¹⁷ at 0.3, below the resolution of θ there (5.6e-17).
    let models = vec![
        ItemModel::two_pl(1e17, 0.3).unwrap(),
        ItemModel::two_pl(1e17, 0.3).unwrap(),
    ];
    let r = estimate(&models, Method::Eap, &[1, 0]);
    let Err(EstimationError::GridTooCoarse { spacing, sd }) = r else {
        panic!("{r:?}")
    };
    assert!(spacing > 0.0 && sd < spacing, "{spacing} {sd}");
    assert!(
        r.unwrap_err()
            .to_string()
            .contains("narrower than the quadrature grid")
    );
    // The infallible table EAP (used for start values) gives the finest grid's moments: at the spike.
    let grid = Grid::new(GridSpec::default(), Prior::default()).unwrap();
    let e = EapTable::new(&models, grid).eap(&answers(&[1, 0]), &mut Vec::new());
    assert!((e.theta - 0.3).abs() < 1e-12, "{e:?}");
}

#[test]
fn refinement_never_touches_an_ordinary_posterior() {
    // The table EAP equals the plain grid moments bit for bit (mirt's and catR's grids, 1 to 60
    // answers of ordinary items).
    let models: Vec<ItemModel> = (0..60)
        .map(|j| {
            ItemModel::two_pl(
                0.6 + (j * 37 % 100) as f64 / 40.0,
                ((j * 53 % 101) as f64 - 50.0) / 20.0,
            )
            .unwrap()
        })
        .collect();
    for spec in [
        GridSpec::default(),
        GridSpec {
            lower: -4.0,
            upper: 4.0,
            points: 33,
            rule: Rule::Trapezoid,
        },
    ] {
        let grid = Grid::new(spec, Prior::default()).unwrap();
        let table = EapTable::new(&models, grid.clone());
        for n in 1..=60 {
            for person in 0..4usize {
                let a: Vec<Answer> = (0..n)
                    .map(|j| Answer::new(j, usize::from((j * 7 + person * 13) % 10 < 4 + person)))
                    .collect();
                let e = table.eap(&a, &mut Vec::new());
                let mut lp = grid.log_weights().to_vec();
                for x in &a {
                    for (l, r) in lp.iter_mut().zip(table.row(x.item as usize, x.category as usize)) {
                        *l += r;
                    }
                }
                let plain = estimate::posterior_moments(grid.points(), &mut lp);
                assert_eq!(e, plain, "{spec:?} n={n} person={person}");
            }
        }
    }
}

#[test]
fn an_all_correct_examinee_on_an_uninformative_bank_is_not_given_the_bound() {
    // An adaptive session with WLE on items nobody can fail or pass differently. Before: θ = −20 after
    // every correct answer. Now recording the answer reports that the estimate cannot be computed.
    let csv = "id,model,a,b\nx1,2pl,1000000,1000000\nx2,2pl,1000000,-1000000\nx3,2pl,1000000,1000000\n";
    let bank = etalon_items::bank_io::bank_from_csv(csv, std::path::Path::new("far.csv")).unwrap();
    let mut config = SessionConfig {
        stopping: StoppingConfig {
            max_items: 3,
            min_items: 3,
            se_target: None,
            classification: None,
        },
        ..SessionConfig::default()
    };
    config.estimator.method = Method::Wle;
    let engine = CatEngine::new(&bank, config).unwrap();
    let mut s = engine.start(7);
    let Next::Item(id) = engine.next(&mut s).unwrap() else {
        panic!("no first item")
    };
    let r = engine.record(&mut s, &id, 1);
    assert!(r.is_err(), "{r:?}");
    assert!(r.unwrap_err().to_string().contains("cannot be computed"));
}
