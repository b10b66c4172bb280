//! The assessment API every front end calls: what a participant sees, how answers are scored, and that
//! a refused call changes nothing.

use etalon_assessment::{AssessmentError, Assessor, Design, Response, presets};
use proptest::prelude::*;

fn assessor() -> Assessor {
    Assessor::new(
        &etalon_items::example::example_bank(),
        Design::Profile(presets::quick_profile()),
    )
    .unwrap()
}

#[test]
fn an_item_view_carries_no_key_and_no_parameters() {
    let a = assessor();
    let mut s = a.start(1);
    let view = a.current(&mut s).unwrap().unwrap();
    let json = serde_json::to_value(&view).unwrap();
    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "choices",
            "competence",
            "competence_name",
            "item",
            "position",
            "prompt"
        ]
    );
    let text = json.to_string();
    for leak in ["correct", "\"a\"", "\"b\"", "parameters", "tutorial"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert_eq!(view.position, 1);
    // The competence's name from the framework, not only its id.
    let bank = etalon_items::example::example_bank();
    let c = view.competence.as_deref().unwrap();
    assert_eq!(
        view.competence_name.as_deref(),
        Some(bank.framework().competence(c).unwrap().name.as_str())
    );
    // Asking again shows the same question.
    assert_eq!(a.current(&mut s).unwrap().unwrap(), view);
}

#[test]
fn a_choice_is_scored_with_the_items_key() {
    let a = assessor();
    let bank = etalon_items::example::example_bank();
    let mut s = a.start(2);
    let view = a.current(&mut s).unwrap().unwrap();
    let right = bank
        .item(&view.item)
        .unwrap()
        .content
        .as_ref()
        .unwrap()
        .correct
        .unwrap();
    let fb = a.answer(&mut s, &view.item, Response::Choice(right)).unwrap();
    assert_eq!((fb.correct, fb.response), (Some(true), 1));
    assert!(fb.tutorials.is_empty());
    let view = a.current(&mut s).unwrap().unwrap();
    let right = bank
        .item(&view.item)
        .unwrap()
        .content
        .as_ref()
        .unwrap()
        .correct
        .unwrap();
    let fb = a
        .answer(
            &mut s,
            &view.item,
            Response::Choice((right + 1) % view.choices.len()),
        )
        .unwrap();
    assert_eq!((fb.correct, fb.response), (Some(false), 0));
    assert!(
        !fb.tutorials.is_empty(),
        "a missed item's tutorial comes with the feedback"
    );
    assert_eq!(a.result(&s).tutorials.len(), fb.tutorials.len());
}

#[test]
fn refused_answers_leave_the_assessment_unchanged() {
    let a = assessor();
    let mut s = a.start(3);
    let view = a.current(&mut s).unwrap().unwrap();
    let before = a.save(&s);
    let other = etalon_items::example::example_bank()
        .items()
        .iter()
        .find(|i| i.id != view.item)
        .unwrap()
        .id
        .clone();
    let cases = [
        (view.item.clone(), Response::Choice(view.choices.len())),
        (view.item.clone(), Response::Code(7)),
        (other, Response::Choice(0)),
        ("no-such-item".to_string(), Response::Choice(0)),
    ];
    for (item, response) in cases {
        let e = a.answer(&mut s, &item, response).unwrap_err();
        assert!(!e.to_string().is_empty());
        assert_eq!(a.save(&s), before, "{e}");
    }
    assert!(matches!(
        a.answer(&mut s, &view.item, Response::Choice(99)),
        Err(AssessmentError::NoSuchChoice { choice: 99, .. })
    ));
}

#[test]
fn an_assessment_of_another_bank_is_refused() {
    let a = assessor();
    let s = a.start(4);
    let saved = a.save(&s);
    let mut bank = etalon_items::example::example_bank();
    bank.update_items(|items| items.truncate(40)).unwrap();
    let other = Assessor::new(&bank, Design::Profile(presets::quick_profile())).unwrap();
    let e = other.resume(&saved).unwrap_err().to_string();
    assert!(e.contains("bank"), "{e}");
    assert!(a.resume("{\"schema\":1,\"profile\":{}}").is_err());
    assert!(a.resume("not json").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Saving and resuming after any answer gives the identical rest of the test.
    #[test]
    fn resuming_after_any_answer_changes_nothing(seed in 0u64..1000, cut in 0usize..20, pattern in proptest::collection::vec(0usize..4, 40)) {
        let a = assessor();
        let run = |resume_at: Option<usize>| {
            let mut s = a.start(seed);
            let mut k = 0;
            while let Some(view) = a.current(&mut s).unwrap() {
                if Some(k) == resume_at {
                    s = a.resume(&a.save(&s)).unwrap();
                }
                a.answer(&mut s, &view.item, Response::Choice(pattern[k % pattern.len()] % view.choices.len())).unwrap();
                k += 1;
            }
            serde_json::to_string(&a.result(&s)).unwrap()
        };
        prop_assert_eq!(run(None), run(Some(cut)));
    }
}
