//! Saved assessments last: a session saved by this version must be read by every later one. The
//! fixtures in `tests/fixtures/` were written once (by `write_fixtures`, ignored) and are never
//! regenerated when the format changes: a later version must resume them and finish with exactly the
//! recorded result. `*_v0_*` fixtures are in the format before saved sessions carried a schema version.

use etalon_assessment::{Assessment, Assessor, Design, Response, presets};
use etalon_engine::session::CatEngine;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Answer choice `k mod n` at the k-th question until the end.
fn finish(assessor: &Assessor, a: &mut Assessment) -> serde_json::Value {
    while let Some(view) = assessor.current(a).unwrap() {
        let k = view.position % view.choices.len().max(1);
        assessor.answer(a, &view.item, Response::Choice(k)).unwrap();
    }
    serde_json::to_value(assessor.result(a)).unwrap()
}

fn profile_assessor() -> Assessor {
    Assessor::new(
        &etalon_items::example::example_bank(),
        Design::Profile(presets::quick_profile()),
    )
    .unwrap()
}

fn adaptive_assessor() -> Assessor {
    let bank = etalon_items::example::example_bank();
    Assessor::new(&bank, Design::Adaptive(presets::interactive_adaptive(&bank))).unwrap()
}

/// Start, answer five questions, save.
fn five_answers(assessor: &Assessor, seed: u64) -> Assessment {
    let mut a = assessor.start(seed);
    for _ in 0..5 {
        let view = assessor.current(&mut a).unwrap().unwrap();
        let k = view.position % view.choices.len();
        assessor.answer(&mut a, &view.item, Response::Choice(k)).unwrap();
    }
    a
}

#[test]
#[ignore = "writes the fixtures; run once when a new format version is introduced, never to update old ones"]
fn write_fixtures() {
    for (name, assessor) in [("profile", profile_assessor()), ("adaptive", adaptive_assessor())] {
        let mut a = five_answers(&assessor, 3);
        let saved = assessor.save(&a);
        std::fs::write(fixture(&format!("assessment_v1_{name}.json")), &saved).unwrap();
        let result = finish(&assessor, &mut a);
        std::fs::write(
            fixture(&format!("assessment_v1_{name}.expected.json")),
            serde_json::to_string_pretty(&result).unwrap(),
        )
        .unwrap();
    }
}

fn resume_and_compare(assessor: &Assessor, saved: &str, expected: &str) {
    let text = std::fs::read_to_string(fixture(saved)).unwrap();
    let mut a = assessor.resume(&text).unwrap();
    assert_eq!(a.answered(), 5);
    let result = finish(assessor, &mut a);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(expected)).unwrap()).unwrap();
    assert_eq!(
        result["items"], expected["items"],
        "same questions after resuming"
    );
    for key in ["theta", "se", "score"] {
        let (x, y) = (result[key].as_f64().unwrap(), expected[key].as_f64().unwrap());
        assert!((x - y).abs() < 1e-9, "{key}: {x} vs {y}");
    }
    assert_eq!(
        result["competences"].as_object().unwrap().len(),
        expected["competences"].as_object().unwrap().len()
    );
}

#[test]
fn assessments_saved_by_version_1_resume_to_the_same_result() {
    resume_and_compare(
        &profile_assessor(),
        "assessment_v1_profile.json",
        "assessment_v1_profile.expected.json",
    );
    resume_and_compare(
        &adaptive_assessor(),
        "assessment_v1_adaptive.json",
        "assessment_v1_adaptive.expected.json",
    );
}

#[test]
fn engine_sessions_saved_before_schema_versions_still_resume() {
    // A session in the format before the `schema` field (the format of the first releases).
    let text = std::fs::read_to_string(fixture("assessment_v1_adaptive.json")).unwrap();
    let mut saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    let session = saved["adaptive"].as_object_mut().unwrap();
    assert_eq!(session.remove("schema"), Some(serde_json::json!(1)));
    let old: etalon_engine::Session =
        serde_json::from_value(serde_json::Value::Object(session.clone())).unwrap();
    let bank = etalon_items::example::example_bank();
    let engine = CatEngine::new(&bank, presets::interactive_adaptive(&bank)).unwrap();
    let mut s = old.clone();
    assert!(
        engine.next(&mut s).is_ok(),
        "a pre-version session is read as version 1"
    );
}

#[test]
fn sessions_from_a_newer_format_are_refused_by_name() {
    let assessor = profile_assessor();
    let text = std::fs::read_to_string(fixture("assessment_v1_profile.json")).unwrap();
    let newer = text.replacen("\"schema\":1", "\"schema\":99", 1);
    let e = assessor.resume(&newer).unwrap_err().to_string();
    assert!(e.contains("99") && e.contains("not supported"), "{e}");
    // A profile assessment is not resumed by an adaptive assessor.
    let e = adaptive_assessor().resume(&text).unwrap_err().to_string();
    assert!(e.contains("profile"), "{e}");
}
