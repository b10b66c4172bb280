//! Property tests of the IRT kernel and the estimators.

use etalon_engine::estimate::{self, Answer, EapTable, Estimator, EstimatorConfig, Method, Posterior};
use etalon_engine::irt::{ResponseFunction, sigmoid};
use etalon_engine::quadrature::{Grid, GridSpec, Prior, Rule};
use etalon_items::ItemModel;
use proptest::prelude::*;

fn model() -> impl Strategy<Value = ItemModel> {
    prop_oneof![
        (-4.0f64..4.0).prop_map(|b| ItemModel::rasch(b).unwrap()),
        (0.2f64..3.0, -4.0f64..4.0).prop_map(|(a, b)| ItemModel::two_pl(a, b).unwrap()),
        (0.2f64..3.0, -4.0f64..4.0, 0.0f64..0.4).prop_map(|(a, b, c)| ItemModel::three_pl(a, b, c).unwrap()),
        (0.2f64..3.0, -4.0f64..4.0, 0.0f64..0.3, 0.7f64..1.0)
            .prop_map(|(a, b, c, d)| ItemModel::four_pl(a, b, c, d).unwrap()),
        (0.2f64..3.0, prop::collection::vec(-3.0f64..3.0, 1..5)).prop_map(|(a, mut t)| {
            t.sort_by(f64::total_cmp);
            for i in 1..t.len() {
                if t[i] <= t[i - 1] {
                    t[i] = t[i - 1] + 0.05;
                }
            }
            ItemModel::graded(a, t).unwrap()
        }),
        (0.2f64..3.0, prop::collection::vec(-3.0f64..3.0, 1..5))
            .prop_map(|(a, t)| ItemModel::gpcm(a, t).unwrap()),
    ]
}

/// `copies` copies of `items` one after the other, with `linear_only` the 3PL, 4PL and graded items
/// replaced by 2PL items of the same slope and location (a bank of weighted-score items only).
fn repeated(items: &[ItemModel], copies: usize, linear_only: bool) -> Vec<ItemModel> {
    items
        .iter()
        .cycle()
        .take(items.len() * copies)
        .map(|m| match (linear_only, m.log_odds_line(1)) {
            (true, None) => ItemModel::two_pl(m.slope(), m.location()).unwrap(),
            _ => m.clone(),
        })
        .collect()
}

fn bounds_of(m: &ItemModel) -> (f64, f64) {
    m.logistic().map_or((0.0, 1.0), |l| (l.c(), l.d()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn probabilities_sum_to_one_and_lie_in_c_d(m in model(), theta in -20.0f64..20.0) {
        let mut p = vec![0.0; m.n_categories()];
        m.category_probabilities(theta, &mut p);
        prop_assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        prop_assert!(p.iter().all(|&x| (0.0..=1.0).contains(&x)));
        if m.n_categories() == 2 {
            let (c, d) = bounds_of(&m);
            prop_assert!(p[1] >= c - 1e-15 && p[1] <= d + 1e-15, "P = {} outside [{c}, {d}]", p[1]);
        }
    }

    #[test]
    fn information_is_nonnegative_and_a2pq_for_2pl(m in model(), theta in -20.0f64..20.0) {
        let info = m.information(theta);
        prop_assert!(info >= 0.0 && info.is_finite());
        if let ItemModel::TwoPl(l) = &m {
            let p = sigmoid(l.a() * (theta - l.b()));
            prop_assert!((info - l.a() * l.a() * p * (1.0 - p)).abs() < 1e-12);
        }
        // Information equals -E[∂² log P/∂θ²].
        let mut p = vec![0.0; m.n_categories()];
        m.category_probabilities(theta, &mut p);
        let expected: f64 = (0..m.n_categories()).map(|k| -p[k] * m.log_lik_terms(theta, k).d2).sum();
        prop_assert!((info - expected).abs() < 1e-9 * (1.0 + info), "{info} vs {expected}");
    }

    #[test]
    fn analytic_derivatives_equal_finite_differences(m in model(), theta in -6.0f64..6.0) {
        let h = 1e-5;
        for k in 0..m.n_categories() {
            let t = m.log_lik_terms(theta, k);
            let up = m.log_lik_terms(theta + h, k);
            let dn = m.log_lik_terms(theta - h, k);
            let d1 = (up.log_p - dn.log_p) / (2.0 * h);
            let d2 = (up.d1 - dn.d1) / (2.0 * h);
            prop_assert!((t.d1 - d1).abs() < 1e-5 * (1.0 + t.d1.abs()), "k={k} d1 {} vs {d1}", t.d1);
            prop_assert!((t.d2 - d2).abs() < 1e-5 * (1.0 + t.d2.abs()), "k={k} d2 {} vs {d2}", t.d2);
        }
    }

    #[test]
    fn estimates_do_not_depend_on_answer_order(
        items in prop::collection::vec(model(), 2..12),
        seed in any::<u64>(),
    ) {
        let answers: Vec<Answer> = items.iter().enumerate()
            .map(|(j, m)| Answer::new(j, ((seed >> (j % 60)) as usize) % m.n_categories()))
            .collect();
        let mut reversed = answers.clone();
        reversed.reverse();
        for method in [Method::Eap, Method::Map, Method::Ml, Method::Wle] {
            let est = Estimator::new(items.clone(), EstimatorConfig { method, ..Default::default() }).unwrap();
            let mut buf = Vec::new();
            let a = est.estimate(&answers, &mut buf).unwrap();
            let b = est.estimate(&reversed, &mut buf).unwrap();
            prop_assert!(a.theta == b.theta || (a.theta - b.theta).abs() < 1e-9, "{method:?} {} vs {}", a.theta, b.theta);
        }
    }

    #[test]
    fn incremental_eap_equals_batch(
        items in prop::collection::vec(model(), 1..20),
        seed in any::<u64>(),
    ) {
        let grid = Grid::new(GridSpec::default(), Prior::default()).unwrap();
        let table = EapTable::new(&items, grid.clone());
        let answers: Vec<Answer> = items.iter().enumerate()
            .map(|(j, m)| Answer::new(j, ((seed >> (j % 60)) as usize) % m.n_categories()))
            .collect();
        let mut post = Posterior::new(&grid);
        let mut buf = Vec::new();
        for a in &answers {
            post.add(&table, *a);
        }
        let inc = post.estimate(&grid, &mut buf);
        let batch = table.eap(&answers, &mut buf);
        prop_assert!((inc.theta - batch.theta).abs() < 1e-12 && (inc.se - batch.se).abs() < 1e-12);
    }

    /// Batch EAP by the weighted score equals the EAP of the summed rows, on mixed banks (the 3PL,
    /// 4PL and graded items keep their rows) and on banks of weighted-score items only (whose
    /// complete patterns are walked from the mode by ratios on equally spaced grids), on the three
    /// grids, for complete, nearly complete and sparse patterns, a repeated item, and long tests
    /// whose posterior needs the refined grid.
    #[test]
    fn eap_by_the_weighted_score_is_the_eap(
        items in prop::collection::vec(model(), 1..40),
        seed in any::<u64>(),
        missing in 0usize..4,
        repeat in any::<bool>(),
        copies in 1usize..40,
        linear_only in any::<bool>(),
        rule in prop_oneof![Just(Rule::Rectangle), Just(Rule::Trapezoid), Just(Rule::GaussHermite)],
        points in 15usize..81,
    ) {
        let bank = repeated(&items, copies, linear_only);
        let spec = GridSpec { lower: -5.0, upper: 5.0, points, rule };
        let grid = Grid::new(spec, Prior::default()).unwrap();
        let table = EapTable::new(&bank, grid);
        let mut scratch = estimate::ScoreScratch::default();
        let mut buf = Vec::new();
        let mut answers: Vec<Answer> = bank.iter().enumerate()
            // missing 0: complete; 1: every 7th item skipped; 2: two items in three skipped; 3: one item.
            .filter(|(j, _)| match missing { 0 => true, 1 => j % 7 != 3, 2 => j % 3 == 0, _ => *j == 0 })
            .map(|(j, m)| Answer::new(j, ((seed >> (j % 60)) as usize ^ j) % m.n_categories()))
            .collect();
        if repeat {
            answers.push(answers[0]);
        }
        let direct = table.try_eap(&answers, &mut buf);
        let by_score = table.eap_by_score(&answers, &mut scratch);
        match (direct, by_score) {
            (Ok(d), Ok(s)) => {
                prop_assert!(
                    (d.theta - s.theta).abs() < 1e-10 && (d.se - s.se).abs() < 1e-10 * (1.0 + d.se) && d.kind == s.kind,
                    "{d:?} vs {s:?}"
                );
            }
            (Err(d), Err(s)) => prop_assert_eq!(d, s),
            (d, s) => prop_assert!(false, "{d:?} vs {s:?}"),
        }
    }

    /// Estimating the rows of a response matrix ([`Estimator::estimate_rows`]) gives, bit for bit,
    /// the estimates of their answers in column order ([`Estimator::estimate_many_checked`]): on
    /// banks of weighted-score items only whose columns are the bank's items in another order (where
    /// complete rows are scored from their weighted score alone — the row form is checked to exist),
    /// on mixed banks, with missing cells, a column left out, an item given two columns, every
    /// method and the three grids; long copies of the bank need the refined grid.
    #[test]
    fn estimating_the_rows_is_estimating_their_answers(
        items in prop::collection::vec(model(), 1..30),
        seed in any::<u64>(),
        copies in 1usize..30,
        linear_only in any::<bool>(),
        layout in 0usize..5,
        method in prop_oneof![Just(Method::Eap), Just(Method::Map), Just(Method::Ml), Just(Method::Wle)],
        rule in prop_oneof![Just(Rule::Rectangle), Just(Rule::Trapezoid), Just(Rule::GaussHermite)],
        persons in 1usize..12,
    ) {
        let bank = repeated(&items, copies, linear_only);
        let n = bank.len();
        // layout 0: every item once, in reverse order, no missing cell; 1: the same with missing
        // cells; 2: the last item left out; 3: item 0 given a second column; 4: every item once,
        // the columns padded with answers to item 0 (as the scoring of a file pads them) and cells
        // landing in the padding.
        let mut columns: Vec<usize> = (0..n).rev().collect();
        match layout {
            2 if n > 1 => { columns.pop(); }
            3 => columns.push(0),
            _ => {}
        }
        let stride = bank.iter().map(ItemModel::n_categories).max().unwrap();
        let answers: Vec<Answer> = columns.iter()
            .flat_map(|&j| {
                let top = bank[j].n_categories() - 1;
                (0..stride).map(move |k| match (layout, k > top) {
                    (4, true) => Answer::new(0, 0),
                    _ => Answer::new(j, k.min(top)),
                })
            })
            .collect();
        let width = columns.len();
        let cell = |p: usize, c: usize| {
            let r = (seed ^ (p as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left((c % 64) as u32) as usize ^ c;
            if layout == 1 && r.is_multiple_of(5) { etalon_items::data::MISSING } else { (r % if layout == 4 { stride } else { bank[columns[c]].n_categories() }) as u8 }
        };
        let cells: Vec<u8> = (0..persons * width).map(|i| cell(i / width, i % width)).collect();
        let spec = GridSpec { lower: -5.0, upper: 5.0, points: 41, rule };
        let config = EstimatorConfig { method, grid: spec, ..EstimatorConfig::default() };
        let estimator = Estimator::new(bank.clone(), config).unwrap();
        // The row form needs neighbouring grid values of the complete log posterior within 600 of
        // each other: up to 60 items of slope ≤ 3 and 5 categories, on this grid (h = 0.25), they
        // differ by at most 60 · 3 · 4 · 0.25 = 180.
        if method == Method::Eap && linear_only && rule != Rule::GaussHermite && layout < 2 && n <= 60 {
            prop_assert!(estimator.table().row_form(&answers, stride).is_some());
        }
        let by_rows = estimator.estimate_rows(&cells, width, &answers, stride);
        let by_answers = estimator.estimate_many_checked(persons, |p, out| {
            for (c, &x) in cells[p * width..(p + 1) * width].iter().enumerate() {
                if x != etalon_items::data::MISSING {
                    out.push(answers[c * stride + usize::from(x)]);
                }
            }
        });
        // Debug text: equal bits, NaN SEs (ML's infinite estimates) included.
        prop_assert_eq!(format!("{by_rows:?}"), format!("{by_answers:?}"));
    }

    /// The running posterior of an adaptive test (one multiplication per grid point and answer)
    /// gives the EAP of the summed log-probabilities, answer after answer, on the three grids; built
    /// answer by answer or again from the start it is the same bits; items too far from the grid for
    /// products are refused and leave it unchanged.
    #[test]
    fn the_running_posterior_is_the_eap(
        items in prop::collection::vec(model(), 1..60),
        seed in any::<u64>(),
        rule in prop_oneof![Just(Rule::Rectangle), Just(Rule::Trapezoid), Just(Rule::GaussHermite)],
        far in any::<bool>(),
    ) {
        let mut bank = items.clone();
        if far {
            bank.push(ItemModel::two_pl(50.0, 40.0).unwrap());
        }
        let spec = GridSpec { lower: -4.0, upper: 4.0, points: 33, rule };
        let table = EapTable::new(&bank, Grid::new(spec, Prior::default()).unwrap());
        let answers: Vec<Answer> = items.iter().enumerate()
            .map(|(j, m)| Answer::new(j, ((seed >> (j % 60)) as usize ^ j) % m.n_categories()))
            .collect();
        let mut post = table.start_posterior();
        let mut buf = Vec::new();
        let mut held = 0;
        for n in 1..=answers.len() {
            if !table.multiply(&mut post, answers[n - 1]) {
                // Weights below 2^-1000 of the largest: the product form gives up (the session then
                // sums logarithms) rather than lose them.
                prop_assert!(!post.is_started());
                break;
            }
            held = n;
            let running = table.running_eap(&post, &answers[..n]);
            let summed = table.eap(&answers[..n], &mut buf);
            prop_assert!(
                (running.theta - summed.theta).abs() < 1e-11 && (running.se - summed.se).abs() < 1e-11,
                "after {n}: {running:?} vs {summed:?}"
            );
        }
        let mut again = table.start_posterior();
        for a in &answers[..held] {
            table.multiply(&mut again, *a);
        }
        if held == answers.len() {
            prop_assert_eq!(
                again.weights().iter().map(|w| w.to_bits()).collect::<Vec<_>>(),
                post.weights().iter().map(|w| w.to_bits()).collect::<Vec<_>>()
            );
        }
        if far && post.is_started() {
            let before = post.clone();
            prop_assert!(!table.multiply(&mut post, Answer::new(bank.len() - 1, 1)));
            prop_assert_eq!(post, before);
        }
    }

    #[test]
    fn rasch_eap_is_monotone_in_number_correct(bs in prop::collection::vec(-3.0f64..3.0, 2..15)) {
        let items: Vec<ItemModel> = bs.iter().map(|&b| ItemModel::rasch(b).unwrap()).collect();
        let est = Estimator::new(items.clone(), EstimatorConfig::default()).unwrap();
        let mut buf = Vec::new();
        let mut last = f64::NEG_INFINITY;
        for score in 0..=items.len() {
            let answers: Vec<Answer> = (0..items.len()).map(|j| Answer::new(j, usize::from(j < score))).collect();
            let e = est.estimate(&answers, &mut buf).unwrap();
            prop_assert!(e.theta > last, "score {score}: {} ≤ {last}", e.theta);
            last = e.theta;
        }
    }

    #[test]
    fn wle_is_finite_for_every_pattern(items in prop::collection::vec(model(), 1..10), high in any::<bool>()) {
        let answers: Vec<Answer> = items.iter().enumerate()
            .map(|(j, m)| Answer::new(j, if high { m.n_categories() - 1 } else { 0 }))
            .collect();
        let e = estimate::wle(&items, &answers, (-20.0, 20.0), 0.0).unwrap();
        prop_assert!(e.theta.is_finite() && e.se.is_finite());
    }
}

#[test]
fn the_running_posterior_gives_up_before_it_loses_weights() {
    // An aberrant pattern (60 correct answers to hard items, then 60 wrong ones to easy items) moves
    // the posterior across the grid: products would round the far weights to 0 for good and leave the
    // EAP at 0.195 instead of 0.000. The product form agrees with the sum of logarithms while it holds,
    // then refuses.
    let mut bank: Vec<ItemModel> = (0..60).map(|_| ItemModel::two_pl(2.5, 4.0).unwrap()).collect();
    bank.extend((0..60).map(|_| ItemModel::two_pl(2.5, -4.0).unwrap()));
    let table = EapTable::new(&bank, Grid::new(GridSpec::default(), Prior::default()).unwrap());
    let answers: Vec<Answer> = (0..120).map(|j| Answer::new(j, usize::from(j < 60))).collect();
    let mut post = table.start_posterior();
    let mut buf = Vec::new();
    let mut held = 0;
    for (n, a) in answers.iter().enumerate() {
        if !table.multiply(&mut post, *a) {
            break;
        }
        held = n + 1;
        let running = table.running_eap(&post, &answers[..held]);
        let summed = table.eap(&answers[..held], &mut buf);
        assert!(
            (running.theta - summed.theta).abs() < 1e-11,
            "after {held}: {running:?} vs {summed:?}"
        );
    }
    assert!(held < answers.len() && !post.is_started(), "held {held}");
    let all = table.eap(&answers, &mut buf);
    assert!(all.theta.abs() < 1e-6, "{all:?}");
}

#[test]
fn thousands_of_answers_do_not_underflow() {
    let items: Vec<ItemModel> = (0..5000)
        .map(|j| ItemModel::two_pl(1.5, (j % 7) as f64 - 3.0).unwrap())
        .collect();
    let answers: Vec<Answer> = (0..5000)
        .map(|j| Answer::new(j, usize::from(j % 3 != 0)))
        .collect();
    let est = Estimator::new(items, EstimatorConfig::default()).unwrap();
    let e = est.estimate(&answers, &mut Vec::new()).unwrap();
    assert!(e.theta.is_finite() && e.se.is_finite() && e.se > 0.0, "{e:?}");
}

#[test]
fn bad_input_gets_clear_errors_or_documented_results() {
    let items = vec![
        ItemModel::two_pl(1.0, 0.0).unwrap(),
        ItemModel::graded(1.0, vec![-1.0, 1.0]).unwrap(),
    ];
    let est = Estimator::new(items.clone(), EstimatorConfig::default()).unwrap();
    let mut buf = Vec::new();
    // A category the item does not have.
    let e = est.estimate(&[Answer::new(0, 2)], &mut buf).unwrap_err();
    assert!(e.to_string().contains("category 2"), "{e}");
    // An item the bank does not have.
    assert!(
        est.estimate(&[Answer::new(7, 0)], &mut buf)
            .unwrap_err()
            .to_string()
            .contains("#7")
    );
    // No answers: EAP returns the prior, ML and WLE refuse.
    let e = est.estimate(&[], &mut buf).unwrap();
    assert!(e.theta.abs() < 1e-12 && (e.se - 1.0).abs() < 1e-3, "{e:?}");
    for method in [Method::Ml, Method::Wle] {
        let est = Estimator::new(
            items.clone(),
            EstimatorConfig {
                method,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            est.estimate(&[], &mut buf)
                .unwrap_err()
                .to_string()
                .contains("at least one answer")
        );
    }
    let map = Estimator::new(
        items.clone(),
        EstimatorConfig {
            method: Method::Map,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(map.estimate(&[], &mut buf).unwrap().theta, 0.0);
    // Invalid prior SD.
    for sd in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let cfg = EstimatorConfig {
            prior: Prior { mean: 0.0, sd },
            ..Default::default()
        };
        assert!(
            Estimator::new(items.clone(), cfg)
                .unwrap_err()
                .to_string()
                .contains("prior SD")
        );
    }
}

proptest! {
    #[test]
    fn fast_paths_equal_the_general_formulas(m in model(), theta in -20.0f64..20.0) {
        use etalon_engine::irt::LogLikTerms;
        // The general category sums, written out here, against the specialised overrides.
        let terms: Vec<LogLikTerms> = (0..m.n_categories()).map(|k| m.log_lik_terms(theta, k)).collect();
        let info: f64 = terms.iter().map(|t| t.log_p.exp() * t.d1 * t.d1).sum();
        let j: f64 = terms.iter().map(|t| t.log_p.exp() * t.d1 * (t.d2 + t.d1 * t.d1)).sum();
        let (fi, fj) = m.information_and_warm_j(theta);
        prop_assert!((fi - info).abs() < 1e-10 * (1.0 + info), "I {fi} vs {info}");
        prop_assert!((fj - j).abs() < 1e-9 * (1.0 + j.abs()), "J {fj} vs {j}");
        for (k, t) in terms.iter().enumerate() {
            let (d1, d2) = m.score_terms(theta, k);
            prop_assert!((d1 - t.d1).abs() < 1e-10 * (1.0 + t.d1.abs()) && (d2 - t.d2).abs() < 1e-10 * (1.0 + t.d2.abs()));
        }
    }
}
