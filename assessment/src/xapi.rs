//! xAPI 1.0.3 statements of an assessment, for an organisation's Learning Record Store.
//!
//! Two verbs tell a session's story: ADL's `answered` once per recorded answer, in the order of the
//! test, and `completed` once when the session has its result. Statements are pure functions of the
//! session's answers log and result, so sending one again after a failure sends the same statement:
//! its `id` is a name-based UUID (RFC 9562 §5.5, version 5) of the session and the position (or
//! `completed`), which an LRS stores once (xAPI 1.0.3, Data §2.4.1: a statement id already stored
//! is not stored again). The actor is an account (`homePage`, `name` = the participant id, or the
//! session id for anonymous sessions); activities are IRIs under the same home page.
//!
//! An answered statement carries the item as a `cmi.interaction` (prompt and options, never the
//! key), the option index or response code given, `success` for keyed items and the scored category
//! as `score.raw`. The completed statement carries `score.scaled` = score / maximum (the PIX-style
//! score over the most the competences can give), `score.raw`/`min`/`max`, and as result
//! extensions the overall θ̂ with its SE and, per competence, θ̂, SE, level, label, level
//! probability and items.
//!
//! Reference: ADL, *Experience API (xAPI) Specification* 1.0.3 (2016), Parts Two (Data) and Three
//! (Communication).

use crate::assessment::{AssessmentResult, Feedback};
use etalon_items::bank::Bank;
use serde_json::{Value, json};

/// The xAPI version statements follow (the `X-Experience-API-Version` header).
pub const VERSION: &str = "1.0.3";
/// ADL's verb of an answer to a question.
pub const ANSWERED: &str = "http://adlnet.gov/expapi/verbs/answered";
/// ADL's verb of a finished activity.
pub const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
/// Activity type of a question.
pub const INTERACTION: &str = "http://adlnet.gov/expapi/activities/cmi.interaction";
/// Activity type of a campaign or a bank's test.
pub const ASSESSMENT: &str = "http://adlnet.gov/expapi/activities/assessment";
/// Prefix of Etalon's extension IRIs (`urn:etalon:xapi:theta`, …).
pub const EXTENSION: &str = "urn:etalon:xapi:";
/// The namespace of statement ids (a version-5 UUID of `etalon:xapi`, itself under the URL
/// namespace), so ids never collide with other tools' name-based ids.
fn namespace() -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:etalon:xapi")
}

/// The id of statement `key` (a position, or `completed`) of session `session`.
pub fn statement_id(session: &str, key: &str) -> String {
    uuid::Uuid::new_v5(&namespace(), format!("{session}/{key}").as_bytes()).to_string()
}

/// The `registration` of a session's statements (one attempt of the test).
pub fn registration(session: &str) -> String {
    uuid::Uuid::new_v5(&namespace(), format!("{session}/registration").as_bytes()).to_string()
}

/// A Unix time in milliseconds as an RFC 3339 timestamp in UTC, to the millisecond.
pub fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format).unwrap_or_default()
}

/// What an identifier keeps as it is in an IRI path segment: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An identifier as one IRI path segment.
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, UNRESERVED).to_string()
}

/// One recorded answer, as the log holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedAnswer<'a> {
    /// 1-based position in the test.
    pub position: i64,
    /// Item id.
    pub item: &'a str,
    /// The option index sent, if the answer was a choice.
    pub choice: Option<i64>,
    /// The response code sent, if it was a code.
    pub response: Option<i64>,
    /// The scored response code.
    pub code: i64,
    /// When it was recorded (Unix ms).
    pub at: i64,
}

/// The statements of one session.
#[derive(Debug, Clone, Copy)]
pub struct SessionStatements<'a> {
    /// Base IRI of accounts and activities, without a trailing `/` (e.g. the server's address).
    pub homepage: &'a str,
    /// Session id.
    pub session: &'a str,
    /// The participant's id (`None`: anonymous, the session id stands for the person).
    pub participant: Option<&'a str>,
    /// The campaign, if the session belongs to one.
    pub campaign: Option<&'a str>,
    /// The bank the session runs on.
    pub bank: &'a Bank,
}

impl SessionStatements<'_> {
    fn home(&self) -> &str {
        self.homepage.trim_end_matches('/')
    }

    fn actor(&self) -> Value {
        json!({
            "objectType": "Agent",
            "account": {"homePage": self.home(), "name": self.participant.unwrap_or(self.session)},
        })
    }

    /// The test as an activity: the campaign, or the bank for a session outside campaigns.
    fn test_activity(&self) -> Value {
        let (id, name) = match self.campaign {
            Some(c) => (
                format!("{}/xapi/campaigns/{}", self.home(), segment(c)),
                c.to_string(),
            ),
            None => (
                format!("{}/xapi/banks/{}", self.home(), segment(self.bank.id())),
                self.bank.name().unwrap_or(self.bank.id()).to_string(),
            ),
        };
        json!({"objectType": "Activity", "id": id,
               "definition": {"type": ASSESSMENT, "name": {"und": name}}})
    }

    fn context(&self, extensions: Value) -> Value {
        json!({
            "registration": registration(self.session),
            "platform": "Etalon",
            "contextActivities": {"parent": [self.test_activity()]},
            "extensions": extensions,
        })
    }

    /// The `answered` statement of one logged answer.
    pub fn answered(&self, a: &LoggedAnswer<'_>) -> Value {
        let item = self.bank.item(a.item);
        let mut definition = json!({"type": INTERACTION, "name": {"und": a.item}});
        if let Some(content) = item.and_then(|i| i.content.as_ref()) {
            definition["description"] = json!({"und": content.prompt});
            if !content.choices.is_empty() {
                definition["interactionType"] = json!("choice");
                definition["choices"] = content
                    .choices
                    .iter()
                    .enumerate()
                    .map(|(k, text)| json!({"id": k.to_string(), "description": {"und": text}}))
                    .collect();
            }
        }
        if definition.get("interactionType").is_none() {
            definition["interactionType"] = json!("other");
        }
        let mut result = json!({
            "response": a.choice.or(a.response).unwrap_or(a.code).to_string(),
            "score": {"raw": a.code},
        });
        if let Some(correct) = item.and_then(|i| Feedback::of(i, a.code).correct) {
            result["success"] = json!(correct);
        }
        let mut extensions = json!({format!("{EXTENSION}position"): a.position});
        if let Some(c) = item.and_then(|i| i.competence.as_deref()) {
            extensions[format!("{EXTENSION}competence")] = json!(c);
        }
        json!({
            "id": statement_id(self.session, &a.position.to_string()),
            "actor": self.actor(),
            "verb": {"id": ANSWERED, "display": {"en-US": "answered", "fr-FR": "a répondu"}},
            "object": {
                "objectType": "Activity",
                "id": format!("{}/xapi/banks/{}/items/{}", self.home(), segment(self.bank.id()), segment(a.item)),
                "definition": definition,
            },
            "result": result,
            "context": self.context(extensions),
            "timestamp": timestamp(a.at),
        })
    }

    /// The `completed` statement: the result, scaled by `maximum` (the most points the session's
    /// competences can give), after `answers` answers, at `at` (Unix ms).
    pub fn completed(&self, result: &AssessmentResult, maximum: f64, answers: i64, at: i64) -> Value {
        let round = |x: f64| (x * 1e4).round() / 1e4;
        let scaled = if maximum > 0.0 {
            (result.score / maximum).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let competences: serde_json::Map<String, Value> = result
            .competences
            .iter()
            .map(|(id, c)| {
                let r = &c.result;
                (
                    id.clone(),
                    json!({"name": c.name, "theta": round(r.theta), "se": round(r.se), "level": r.level,
                           "label": r.label, "level_probability": round(r.level_probability),
                           "items": r.items}),
                )
            })
            .collect();
        json!({
            "id": statement_id(self.session, "completed"),
            "actor": self.actor(),
            "verb": {"id": COMPLETED, "display": {"en-US": "completed", "fr-FR": "a terminé"}},
            "object": self.test_activity(),
            "result": {
                "completion": true,
                "score": {"scaled": round(scaled), "raw": round(result.score), "min": 0.0, "max": round(maximum)},
                "extensions": {
                    format!("{EXTENSION}theta"): round(result.theta),
                    format!("{EXTENSION}se"): round(result.se),
                    format!("{EXTENSION}competences"): competences,
                },
            },
            "context": self.context(json!({format!("{EXTENSION}answers"): answers})),
            "timestamp": timestamp(at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_name_based_and_stable() {
        let a = statement_id("s1", "1");
        assert_eq!(a, statement_id("s1", "1"));
        assert_ne!(a, statement_id("s1", "2"));
        assert_ne!(a, statement_id("s2", "1"));
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 5);
        // The value itself is part of the contract (a resend after an upgrade must keep it); Python's
        // `uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "urn:etalon:xapi"), "s1/completed")` agrees.
        assert_eq!(
            statement_id("s1", "completed"),
            "b1bea485-1982-51be-a12a-c5a4895cea7e"
        );
    }

    #[test]
    fn timestamps_are_utc_to_the_millisecond() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1795000000` prints 2026-11-18T11:06:40.
        assert_eq!(timestamp(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn an_answer_shows_its_question_but_not_its_key() {
        let bank = etalon_items::example::example_bank();
        let item = bank
            .items()
            .iter()
            .find(|i| i.content.as_ref().is_some_and(|c| c.correct.is_some()))
            .unwrap();
        let key = item.content.as_ref().unwrap().correct.unwrap() as i64;
        let s = SessionStatements {
            homepage: "https://etalon.example/",
            session: "abc",
            participant: Some("ana@example.org"),
            campaign: Some("c 1"),
            bank: &bank,
        };
        let a = LoggedAnswer {
            position: 3,
            item: &item.id,
            choice: Some(key),
            response: None,
            code: 1,
            at: 0,
        };
        let st = s.answered(&a);
        assert_eq!(st["verb"]["id"], ANSWERED);
        assert_eq!(st["actor"]["account"]["homePage"], "https://etalon.example");
        assert_eq!(st["actor"]["account"]["name"], "ana@example.org");
        assert_eq!(st["result"]["success"], true);
        assert_eq!(st["result"]["response"], key.to_string());
        assert_eq!(
            st["context"]["contextActivities"]["parent"][0]["id"],
            "https://etalon.example/xapi/campaigns/c%201"
        );
        assert_eq!(st["context"]["extensions"]["urn:etalon:xapi:position"], 3);
        assert_eq!(st["object"]["definition"]["interactionType"], "choice");
        assert!(
            st["object"]["definition"]
                .get("correctResponsesPattern")
                .is_none()
        );
        assert!(!st.to_string().contains("\"correct\""), "{st}");
        assert_eq!(st["id"], statement_id("abc", "3"));
    }
}
