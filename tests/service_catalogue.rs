//! The service's bad-input catalogue, on SQLite and PostgreSQL: malformed JSON, wrong types, huge
//! bodies, unknown ids, another organisation's ids, replayed and conflicting answers, wrong tokens,
//! missing or malformed authorisation, invalid banks, campaigns and configurations, unicode and
//! control characters in ids. Each request gets its documented 4xx as `{"error": {"code",
//! "message"}}` (never a 5xx) and leaves the stored state exactly as it was; the server stays healthy.

mod common;
#[path = "common/service.rs"]
mod service;

use serde_json::{Value, json};
use service::{Client, Reply, Server, TEST_MAX_BODY, servers};

const _: () = assert!(TWO_MIB > TEST_MAX_BODY);

/// Who the request claims to be (`Authorization` header).
#[derive(Debug, Clone, Copy)]
enum Auth {
    /// No `Authorization` header.
    None,
    /// `Bearer DEMO_KEY`.
    Demo,
    /// `Bearer OTHER_KEY` (the second organisation).
    Other,
    /// `Bearer TOKEN` of the live session `{S}`.
    Token,
    /// `Bearer TOKEN` of the demo organisation's second session (participant `bob`).
    Token2,
    /// `Bearer TOKEN` of the other organisation's session `{SO}`.
    OtherToken,
    /// A well-formed session token that opens nothing.
    WrongToken,
    /// A well-formed organisation key that names no organisation.
    WrongKey,
    /// This exact header value (bytes), e.g. `Basic …` or non-ASCII.
    Header(&'static [u8]),
}

/// The request body.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// No body.
    None,
    /// These bytes, with the placeholders of [`Fixture::fill`] replaced.
    Text(&'static str),
    /// These bytes exactly.
    Bytes(&'static [u8]),
    /// A well-formed JSON object of about this many bytes (a long string field).
    Huge(usize),
    /// A well-formed JSON object of exactly this many bytes.
    Exact(usize),
    /// `[[[…]]]` nested this deep.
    Deep(usize),
}

/// One bad request and what it must get.
struct Case {
    name: &'static str,
    method: &'static str,
    /// May hold placeholders (see [`Fixture::fill`]).
    path: &'static str,
    auth: Auth,
    content_type: Option<&'static str>,
    body: Body,
    status: u16,
    /// The error code (empty for the replay, which is a `200`).
    code: &'static str,
    /// The `field` of the error, when the contract or the request makes it certain.
    field: Option<&'static str>,
}

const JSON: Option<&str> = Some("application/json");
const TWO_MIB: usize = 2 << 20;

#[allow(clippy::too_many_arguments)]
const fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    auth: Auth,
    content_type: Option<&'static str>,
    body: Body,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method,
        path,
        auth,
        content_type,
        body,
        status,
        code,
        field,
    }
}

use Auth::{Demo, Other, OtherToken, Token, Token2, WrongKey, WrongToken};
use Body::{Bytes, Deep, Exact, Huge, Text};

#[rustfmt::skip]
fn catalogue() -> Vec<Case> {
    let none = Auth::None;
    let nobody = Body::None;
    vec![
        // ---- Malformed bodies (400) and wrong shapes (422) -------------------------------------
        case("session: body not JSON", "POST", "/v1/sessions", none, JSON, Text("campaign_code=DEMO"), 400, "malformed_json", None),
        case("session: truncated JSON", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO""#), 400, "malformed_json", None),
        case("session: JSON followed by garbage", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO"} trailing"#), 400, "malformed_json", None),
        case("session: two JSON values", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO"}{"campaign_code": "DEMO"}"#), 400, "malformed_json", None),
        case("session: empty body", "POST", "/v1/sessions", none, JSON, nobody, 400, "malformed_json", None),
        case("session: top-level array of an object", "POST", "/v1/sessions", none, JSON, Text(r#"[{"campaign_code": "DEMO"}]"#), 422, "invalid", None),
        case("session: top-level string", "POST", "/v1/sessions", none, JSON, Text(r#""DEMO""#), 422, "invalid", None),
        case("session: JSON nested 100 000 deep", "POST", "/v1/sessions", none, JSON, Deep(100_000), 422, "invalid", None),
        case("session: invalid UTF-8 in a string", "POST", "/v1/sessions", none, JSON, Bytes(b"{\"campaign_code\": \"DEMO\", \"participant\": \"a\xff\xfeb\"}"), 400, "malformed_json", None),
        case("session: lone surrogate escape", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "participant": "\ud800"}"#), 400, "malformed_json", None),
        case("session: unknown field", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "colour": "red"}"#), 422, "invalid", Some("colour")),
        case("session: campaign_code a number", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": 42}"#), 422, "invalid", Some("campaign_code")),
        case("session: participant an object", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "participant": {"id": 1}}"#), 422, "invalid", Some("participant")),
        case("session: neither code nor bank", "POST", "/v1/sessions", none, JSON, Text("{}"), 422, "invalid", Some("campaign_code")),
        case("session: both code and bank", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"campaign_code": "DEMO", "bank": "{B}"}"#), 422, "invalid", Some("bank")),
        case("session: code with a config", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "config": {"adaptive": {}}}"#), 422, "invalid", Some("config")),
        case("session: body over the limit", "POST", "/v1/sessions", none, JSON, Huge(TWO_MIB), 413, "body_too_large", None),
        // ---- Campaign codes and participants ------------------------------------------------------
        case("session: body one byte over the limit", "POST", "/v1/sessions", none, JSON, Exact(TEST_MAX_BODY + 1), 413, "body_too_large", None),
        case("session: body at the limit (read, then refused)", "POST", "/v1/sessions", none, JSON, Exact(TEST_MAX_BODY), 422, "invalid", Some("name")),
        case("session: unknown campaign code", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "NOSUCHCODE"}"#), 404, "not_found", None),
        case("session: look-alike code (zero for O)", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEM0"}"#), 404, "not_found", None),
        case("session: closed campaign", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "SHUT", "participant": "newcomer"}"#), 409, "campaign_closed", None),
        case("session: campaign code with NUL", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DE\u0000MO"}"#), 422, "invalid", Some("campaign_code")),
        case("session: campaign code empty", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": ""}"#), 422, "invalid", Some("campaign_code")),
        case("session: unicode campaign code", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DÉMO😀"}"#), 404, "not_found", None),
        case("session: participant with NUL", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "participant": "a\u0000b"}"#), 422, "invalid", Some("participant")),
        case("session: participant with newline", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "participant": "alice\nbob"}"#), 422, "invalid", Some("participant")),
        case("session: participant with DEL and C1 controls", "POST", "/v1/sessions", none, JSON, Text("{\"campaign_code\": \"DEMO\", \"participant\": \"x\u{7f}\u{85}y\"}"), 422, "invalid", Some("participant")),
        case("session: participant empty", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "participant": ""}"#), 422, "invalid", Some("participant")),
        case("session: participant of 10 000 characters", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "participant": "{LONG10K}"}"#), 422, "invalid", Some("participant")),
        case("session: participant of 201 characters", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO", "participant": "{LONG201}"}"#), 422, "invalid", Some("participant")),
        case("session: duplicate participant", "POST", "/v1/sessions", none, JSON, Text(r#"{"campaign_code": "demo", "participant": "alice"}"#), 409, "participant_exists", None),
        // ---- Sessions on a bank (organisation) -----------------------------------------------------
        case("bank session: no key", "POST", "/v1/sessions", none, JSON, Text(r#"{"bank": "{B}"}"#), 401, "unauthorized", None),
        case("bank session: session token for a key", "POST", "/v1/sessions", Token, JSON, Text(r#"{"bank": "{B}"}"#), 401, "unauthorized", None),
        case("bank session: unknown key", "POST", "/v1/sessions", WrongKey, JSON, Text(r#"{"bank": "{B}"}"#), 401, "unauthorized", None),
        case("bank session: unknown bank", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "no-such-bank"}"#), 404, "not_found", None),
        case("bank session: other organisation's bank", "POST", "/v1/sessions", Other, JSON, Text(r#"{"bank": "{B}"}"#), 404, "not_found", None),
        case("bank session: bank version absent", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "bank_version": 99}"#), 404, "not_found", None),
        case("bank session: bank id with NUL", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}\u0000"}"#), 422, "invalid", Some("bank")),
        case("bank session: config max_items 0", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "config": {"adaptive": {"stopping": {"max_items": 0}}}}"#), 422, "invalid", Some("config")),
        case("bank session: config unknown setting", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "config": {"adaptive": {"speed": "fast"}}}"#), 422, "invalid", Some("config")),
        case("bank session: config a string", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "config": "adaptive"}"#), 422, "invalid", Some("config")),
        case("bank session: config se_target negative", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "config": {"stopping": {"se_target": -1}}}"#), 422, "invalid", Some("config")),
        case("bank session: config nested too deep", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "config": {DEEP200}}"#), 400, "malformed_json", None),
        case("bank session: negative seed", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "seed": -1}"#), 422, "invalid", Some("seed")),
        case("bank session: seed a string", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "seed": "7"}"#), 422, "invalid", Some("seed")),
        case("bank session: seed beyond u64", "POST", "/v1/sessions", Demo, JSON, Text(r#"{"bank": "{B}", "seed": 18446744073709551616}"#), 422, "invalid", Some("seed")),
        // ---- Answers: malformed and wrong types ----------------------------------------------------
        case("answer: body not JSON", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text("position=2&choice=0"), 400, "malformed_json", None),
        case("answer: truncated JSON", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0"#), 400, "malformed_json", None),
        case("answer: JSON followed by garbage", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}}"#), 400, "malformed_json", None),
        case("answer: empty body", "POST", "/v1/sessions/{S}/answers", Token, JSON, nobody, 400, "malformed_json", None),
        case("answer: top-level null", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text("null"), 422, "invalid", None),
        case("answer: position a string", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": "2", "item": "{I2}", "choice": 0}"#), 422, "invalid", Some("position")),
        case("answer: position a float", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2.0, "item": "{I2}", "choice": 0}"#), 422, "invalid", Some("position")),
        case("answer: position beyond i64", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 9223372036854775808, "item": "{I2}", "choice": 0}"#), 422, "invalid", Some("position")),
        case("answer: choice negative", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": -1}"#), 422, "invalid", Some("choice")),
        case("answer: choice a float", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0.5}"#), 422, "invalid", Some("choice")),
        case("answer: choice a string", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": "A"}"#), 422, "invalid", Some("choice")),
        case("answer: item a number", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": 7, "choice": 0}"#), 422, "invalid", Some("item")),
        case("answer: missing position", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"item": "{I2}", "choice": 0}"#), 422, "invalid", Some("position")),
        case("answer: missing item", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "choice": 0}"#), 422, "invalid", Some("item")),
        case("answer: neither choice nor response", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}"}"#), 422, "invalid", Some("response")),
        case("answer: both choice and response", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0, "response": 1}"#), 422, "invalid", Some("choice")),
        case("answer: unknown field", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0, "correct": true}"#), 422, "invalid", Some("correct")),
        case("answer: duplicate field", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "position": 3, "item": "{I2}", "choice": 0}"#), 422, "invalid", None),
        case("answer: body over the limit", "POST", "/v1/sessions/{S}/answers", Token, JSON, Huge(TWO_MIB), 413, "body_too_large", None),
        // ---- Answers: content -------------------------------------------------------------------------
        case("answer: replayed identical answer", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 1, "item": "{I1}", "choice": {C1}}"#), 200, "", None),
        case("answer: conflicting answer at an answered position", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 1, "item": "{I1}", "choice": {C1OTHER}}"#), 409, "answer_conflict", Some("position")),
        case("answer: replay as response instead of choice", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 1, "item": "{I1}", "response": {R1}}"#), 409, "answer_conflict", Some("position")),
        case("answer: another item at an answered position", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 1, "item": "{I2}", "choice": {C1}}"#), 409, "answer_conflict", Some("position")),
        case("answer: position ahead", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 3, "item": "{I2}", "choice": 0}"#), 409, "position_conflict", Some("position")),
        case("answer: position i64::MAX", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 9223372036854775807, "item": "{I2}", "choice": 0}"#), 409, "position_conflict", Some("position")),
        case("answer: position 0", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 0, "item": "{I1}", "choice": 0}"#), 422, "invalid", Some("position")),
        case("answer: position negative", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": -9223372036854775808, "item": "{I1}", "choice": 0}"#), 422, "invalid", Some("position")),
        case("answer: item other than the one offered", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{IOTHER}", "choice": 0}"#), 409, "item_conflict", Some("item")),
        case("answer: item not in the bank", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "no-such-item", "choice": 0}"#), 409, "item_conflict", Some("item")),
        case("answer: item with a control character", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}\u0001", "choice": 0}"#), 422, "invalid", Some("item")),
        case("answer: item empty", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "", "choice": 0}"#), 422, "invalid", Some("item")),
        case("answer: choice index out of range", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": {C2OUT}}"#), 422, "invalid", Some("choice")),
        case("answer: choice i64::MAX", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 9223372036854775807}"#), 422, "invalid", Some("choice")),
        case("answer: response code out of range", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "response": 7}"#), 422, "invalid", Some("response")),
        case("answer: response code negative", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "response": -1}"#), 422, "invalid", Some("response")),
        // ---- Answers: authorisation ---------------------------------------------------------------
        case("answer: response i64::MAX", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "response": 9223372036854775807}"#), 422, "invalid", Some("response")),
        case("answer: response i64::MIN", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "response": -9223372036854775808}"#), 422, "invalid", Some("response")),
        case("answer: item of 10 000 characters", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"{"position": 2, "item": "{LONG10K}", "choice": 0}"#), 422, "invalid", Some("item")),
        case("answer: wrong token", "POST", "/v1/sessions/{S}/answers", WrongToken, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: token of another session", "POST", "/v1/sessions/{S}/answers", Token2, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: token of another organisation's session", "POST", "/v1/sessions/{S}/answers", OtherToken, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: missing Authorization", "POST", "/v1/sessions/{S}/answers", none, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: Authorization Basic", "POST", "/v1/sessions/{S}/answers", Auth::Header(b"Basic ZGVtbzpkZW1v"), JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: Authorization Bearer without token", "POST", "/v1/sessions/{S}/answers", Auth::Header(b"Bearer"), JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: Authorization Bearer empty", "POST", "/v1/sessions/{S}/answers", Auth::Header(b"Bearer    "), JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: Authorization not ASCII", "POST", "/v1/sessions/{S}/answers", Auth::Header(b"Bearer ets_\xe9\xff"), JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: organisation key instead of the token", "POST", "/v1/sessions/{S}/answers", Demo, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        case("answer: another organisation's key", "POST", "/v1/sessions/{S}/answers", Other, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 401, "unauthorized", None),
        // ---- Answers and sessions: ids --------------------------------------------------------------
        case("answer: unknown session", "POST", "/v1/sessions/00000000000000000000000000000000/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 404, "not_found", None),
        case("answer: session id with NUL", "POST", "/v1/sessions/{S}%00/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 404, "not_found", None),
        case("answer: session id unicode", "POST", "/v1/sessions/%E2%82%AC%F0%9F%98%80/answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 404, "not_found", None),
        case("session status: unknown id", "GET", "/v1/sessions/ffffffffffffffffffffffffffffffff", Token, None, nobody, 404, "not_found", None),
        case("session status: id with control characters", "GET", "/v1/sessions/{S}%01%1B%7F", Token, None, nobody, 404, "not_found", None),
        case("session status: id with percent-encoded NUL", "GET", "/v1/sessions/a%00b", Token, None, nobody, 404, "not_found", None),
        case("session status: id of 10 000 characters", "GET", "/v1/sessions/{LONG10K}", Token, None, nobody, 404, "not_found", None),
        case("session status: unicode id", "GET", "/v1/sessions/%C3%A9t%C3%A9%E2%80%AE%F0%9F%98%80", Token, None, nobody, 404, "not_found", None),
        case("session status: id not UTF-8", "GET", "/v1/sessions/%FF%FE", Token, None, nobody, 404, "not_found", None),
        case("session status: wrong token", "GET", "/v1/sessions/{S}", WrongToken, None, nobody, 401, "unauthorized", None),
        case("session status: token of another session", "GET", "/v1/sessions/{S}", Token2, None, nobody, 401, "unauthorized", None),
        case("session status: missing Authorization", "GET", "/v1/sessions/{S}", none, None, nobody, 401, "unauthorized", None),
        case("session status: Authorization Basic", "GET", "/v1/sessions/{S}", Auth::Header(b"Basic ZGVtbzpkZW1v"), None, nobody, 401, "unauthorized", None),
        case("session status: unknown organisation key", "GET", "/v1/sessions/{S}", WrongKey, None, nobody, 401, "unauthorized", None),
        case("session status: another organisation's key", "GET", "/v1/sessions/{S}", Other, None, nobody, 404, "not_found", None),
        case("session status: another organisation's session", "GET", "/v1/sessions/{SO}", Demo, None, nobody, 404, "not_found", None),
        case("session result: wrong token", "GET", "/v1/sessions/{S}/result", WrongToken, None, nobody, 401, "unauthorized", None),
        case("session result: another organisation's key", "GET", "/v1/sessions/{S}/result", Other, None, nobody, 404, "not_found", None),
        case("session result: another organisation's session", "GET", "/v1/sessions/{SO}/result", Demo, None, nobody, 404, "not_found", None),
        case("session result: id with percent-encoded NUL", "GET", "/v1/sessions/%00/result", Demo, None, nobody, 404, "not_found", None),
        case("session result: missing Authorization", "GET", "/v1/sessions/{S}/result", none, None, nobody, 401, "unauthorized", None),
        // ---- Banks ----------------------------------------------------------------------------------------
        case("bank: body not JSON", "POST", "/v1/banks", Demo, JSON, Text("<bank id=\"x\"/>"), 400, "malformed_json", None),
        case("bank: truncated JSON", "POST", "/v1/banks", Demo, JSON, Text(r#"{"id": "t", "items": [{"id": "x1""#), 400, "malformed_json", None),
        case("bank: empty body", "POST", "/v1/banks", Demo, JSON, nobody, 400, "malformed_json", None),
        case("bank: invalid bank JSON", "POST", "/v1/banks", Demo, JSON, Text(r#"{"id": "bad", "version": "1", "name": "bad", "items": [{"id": "x1", "parameters": {"model": "2pl", "a": -1.0, "b": 0.0}}, {"id": "x2", "parameters": {"model": "3pl", "a": 1.0, "b": 0.0, "c": 1.5}}]}"#), 422, "invalid_bank", None),
        case("bank: top-level array", "POST", "/v1/banks", Demo, JSON, Text(r#"[{"id": "x1", "model": "2pl"}]"#), 422, "invalid_bank", None),
        case("bank: invalid CSV", "POST", "/v1/banks?id=badcsv", Demo, Some("text/csv"), Text("id,model,a,b\nx1,2pl,0,0.0\nx2,2pl,1.2,abc\nx1,2pl,1,1\n"), 422, "invalid_bank", None),
        case("bank: CSV not UTF-8", "POST", "/v1/banks?id=latin1", Demo, Some("text/csv"), Bytes(b"id,model,a,b\nx\xe91,2pl,1.0,0.0\n"), 422, "invalid_bank", None),
        case("bank: CSV id with NUL", "POST", "/v1/banks?id=a%00b", Demo, Some("text/csv"), Text("id,model,a,b\nx1,2pl,1.0,0.0\n"), 422, "invalid", Some("id")),
        case("bank: unknown query parameter", "POST", "/v1/banks?unknown=1", Demo, Some("text/csv"), Text("id,model,a,b\nx1,2pl,1.0,0.0\n"), 400, "malformed", None),
        case("bank: JSON bank id with control characters", "POST", "/v1/banks", Demo, JSON, Text(r#"{"id": "x\u0000\u001b", "version": "1", "name": "n", "items": [{"id": "x1", "parameters": {"model": "2pl", "a": 1.0, "b": 0.0}}]}"#), 422, "invalid", Some("id")),
        case("bank: JSON bank id of 10 000 characters", "POST", "/v1/banks", Demo, JSON, Text(r#"{"id": "{LONG10K}", "version": "1", "name": "n", "items": [{"id": "x1", "parameters": {"model": "2pl", "a": 1.0, "b": 0.0}}]}"#), 422, "invalid", Some("id")),
        case("bank: item id with a control character", "POST", "/v1/banks", Demo, JSON, Text(r#"{"id": "ctl-items", "version": "1", "name": "n", "items": [{"id": "x\u00001", "parameters": {"model": "2pl", "a": 1.0, "b": 0.0}}]}"#), 422, "invalid_bank", None),
        case("bank: CSV item id with a control character", "POST", "/v1/banks?id=ctl-csv", Demo, Some("text/csv"), Bytes(b"id,model,a,b\nx\x01,2pl,1.0,0.0\n"), 422, "invalid_bank", None),
        case("bank: unsupported content type", "POST", "/v1/banks", Demo, Some("application/xml"), Text("<bank/>"), 415, "unsupported_media_type", None),
        case("bank: form content type", "POST", "/v1/banks", Demo, Some("application/x-www-form-urlencoded"), Text("id=x"), 415, "unsupported_media_type", None),
        case("bank: body over the limit", "POST", "/v1/banks", Demo, JSON, Huge(TWO_MIB), 413, "body_too_large", None),
        case("bank: CSV body over the limit", "POST", "/v1/banks?id=huge", Demo, Some("text/csv"), Huge(TWO_MIB), 413, "body_too_large", None),
        case("bank: no key", "POST", "/v1/banks", none, JSON, Text("{}"), 401, "unauthorized", None),
        case("bank: session token instead of a key", "POST", "/v1/banks", Token, JSON, Text("{}"), 401, "unauthorized", None),
        case("bank: unknown key", "POST", "/v1/banks", WrongKey, JSON, Text("{}"), 401, "unauthorized", None),
        case("bank: Authorization Basic", "POST", "/v1/banks", Auth::Header(b"Basic ZGVtbzpkZW1v"), JSON, Text("{}"), 401, "unauthorized", None),
        case("get bank: unknown id", "GET", "/v1/banks/no-such-bank", Demo, None, nobody, 404, "not_found", None),
        case("get bank: another organisation's bank", "GET", "/v1/banks/{OB}", Demo, None, nobody, 404, "not_found", None),
        case("get bank: ours, asked by another organisation", "GET", "/v1/banks/{B}", Other, None, nobody, 404, "not_found", None),
        case("get bank: id with percent-encoded NUL", "GET", "/v1/banks/{B}%00", Demo, None, nobody, 404, "not_found", None),
        case("get bank: unicode id", "GET", "/v1/banks/%E2%82%AC%F0%9F%98%80", Demo, None, nobody, 404, "not_found", None),
        case("get bank: id of 10 000 characters", "GET", "/v1/banks/{LONG10K}", Demo, None, nobody, 404, "not_found", None),
        case("get bank: ?version=abc", "GET", "/v1/banks/{B}?version=abc", Demo, None, nobody, 400, "malformed", None),
        case("get bank: ?version beyond i64", "GET", "/v1/banks/{B}?version=99999999999999999999", Demo, None, nobody, 400, "malformed", None),
        case("get bank: ?version= empty", "GET", "/v1/banks/{B}?version=", Demo, None, nobody, 400, "malformed", None),
        case("get bank: ?version twice", "GET", "/v1/banks/{B}?version=1&version=1", Demo, None, nobody, 400, "malformed", None),
        case("get bank: absent version", "GET", "/v1/banks/{B}?version=42", Demo, None, nobody, 404, "not_found", None),
        case("get bank: negative version", "GET", "/v1/banks/{B}?version=-1", Demo, None, nobody, 404, "not_found", None),
        case("get bank: session token", "GET", "/v1/banks/{B}", Token, None, nobody, 401, "unauthorized", None),
        case("bank responses: another organisation's bank", "GET", "/v1/banks/{B}/responses", Other, None, nobody, 404, "not_found", None),
        case("bank responses: id with NUL", "GET", "/v1/banks/%00/responses", Demo, None, nobody, 404, "not_found", None),
        case("list banks: session token", "GET", "/v1/banks", Token, None, nobody, 401, "unauthorized", None),
        // ---- Campaigns ----------------------------------------------------------------------------------
        case("campaign: body not JSON", "POST", "/v1/campaigns", Demo, JSON, Text("name: x"), 400, "malformed_json", None),
        case("campaign: truncated JSON", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "#), 400, "malformed_json", None),
        case("campaign: JSON followed by garbage", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}]},"#), 400, "malformed_json", None),
        case("campaign: targets a string", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": "1.1"}"#), 422, "invalid", Some("targets")),
        case("campaign: target level negative", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": -1}]}"#), 422, "invalid", Some("targets[0].target_level")),
        case("campaign: missing name", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 422, "invalid", Some("name")),
        case("campaign: unknown field", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "colour": "red"}"#), 422, "invalid", Some("colour")),
        case("campaign: unknown competence", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "9.9", "target_level": 2}]}"#), 422, "invalid", Some("targets")),
        case("campaign: target level above the top", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 99}]}"#), 422, "invalid", Some("targets")),
        case("campaign: no targets", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": []}"#), 422, "invalid", Some("targets")),
        case("campaign: duplicate target", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}, {"competence": "1.1", "target_level": 3}]}"#), 422, "invalid", Some("targets")),
        case("campaign: unknown bank", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "no-such-bank", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 422, "invalid", Some("bank")),
        case("campaign: another organisation's bank", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{OB}", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 422, "invalid", Some("bank")),
        case("campaign: absent bank version", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "bank_version": 7, "targets": [{"competence": "1.1", "target_level": 2}]}"#), 422, "invalid", Some("bank")),
        case("campaign: multidimensional design on a bank without a latent structure", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "design": "multidimensional"}"#), 422, "invalid", Some("design")),
        case("campaign: unknown design", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "design": "tensor"}"#), 422, "invalid", Some("design")),
        case("campaign: correlation out of range", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "simulated_correlation": 2.0}"#), 422, "invalid", None),
        case("campaign: name with control characters", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x\u0000\u0007", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 422, "invalid", Some("name")),
        case("campaign: id of 10 000 characters", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"id": "{LONG10K}", "name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 422, "invalid", Some("id")),
        case("campaign: invalid join code", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "code": "D\u0000MO"}"#), 422, "invalid", Some("code")),
        case("campaign: unicode join code", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "code": "ÉTÉ-2026"}"#), 422, "invalid", Some("code")),
        case("campaign: join code taken", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "code": "demo"}"#), 409, "code_taken", None),
        case("campaign: id taken", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"id": "example-campaign", "name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 409, "campaign_exists", None),
        case("campaign: invalid assessment settings", "POST", "/v1/campaigns", Demo, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}], "assessment": {"pace": 3}}"#), 422, "invalid", None),
        case("campaign: body over the limit", "POST", "/v1/campaigns", Demo, JSON, Huge(TWO_MIB), 413, "body_too_large", None),
        case("campaign: no key", "POST", "/v1/campaigns", none, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 401, "unauthorized", None),
        case("campaign: session token instead of a key", "POST", "/v1/campaigns", Token, JSON, Text(r#"{"name": "x", "bank": "{B}", "targets": [{"competence": "1.1", "target_level": 2}]}"#), 401, "unauthorized", None),
        case("get campaign: unknown id", "GET", "/v1/campaigns/no-such-campaign", Demo, None, nobody, 404, "not_found", None),
        case("get campaign: another organisation's campaign", "GET", "/v1/campaigns/{OC}", Demo, None, nobody, 404, "not_found", None),
        case("get campaign: session token", "GET", "/v1/campaigns/example-campaign", Token, None, nobody, 401, "unauthorized", None),
        case("get campaign: id with percent-encoded NUL", "GET", "/v1/campaigns/example-campaign%00", Demo, None, nobody, 404, "not_found", None),
        case("report: id with percent-encoded NUL", "GET", "/v1/campaigns/%00/report", Demo, None, nobody, 404, "not_found", None),
        case("report: ?format=pdf", "GET", "/v1/campaigns/example-campaign/report?format=pdf", Demo, None, nobody, 400, "malformed", None),
        case("report: unknown query parameter", "GET", "/v1/campaigns/example-campaign/report?colour=red", Demo, None, nobody, 400, "malformed", None),
        case("report: another organisation's campaign", "GET", "/v1/campaigns/{OC}/report", Demo, None, nobody, 404, "not_found", None),
        case("report: ours, asked by another organisation", "GET", "/v1/campaigns/example-campaign/report?format=svg", Other, None, nobody, 404, "not_found", None),
        case("report: unicode campaign id", "GET", "/v1/campaigns/%F0%9F%98%80/report", Demo, None, nobody, 404, "not_found", None),
        case("report: ?format= empty", "GET", "/v1/campaigns/example-campaign/report?format=", Demo, None, nobody, 400, "malformed", None),
        case("results: ?format=pdf", "GET", "/v1/campaigns/example-campaign/results?format=pdf", Demo, None, nobody, 400, "malformed", None),
        case("results: another organisation's campaign", "GET", "/v1/campaigns/{OC}/results?format=csv", Demo, None, nobody, 404, "not_found", None),
        case("results: missing Authorization", "GET", "/v1/campaigns/example-campaign/results", none, None, nobody, 401, "unauthorized", None),
        case("patch campaign: open a string", "PATCH", "/v1/campaigns/SHUT-campaign", Demo, JSON, Text(r#"{"open": "yes"}"#), 422, "invalid", Some("open")),
        case("patch campaign: empty object", "PATCH", "/v1/campaigns/SHUT-campaign", Demo, JSON, Text("{}"), 422, "invalid", Some("open")),
        case("patch campaign: id with percent-encoded NUL", "PATCH", "/v1/campaigns/SHUT-campaign%00", Demo, JSON, Text(r#"{"open": true}"#), 404, "not_found", None),
        case("patch campaign: another organisation's campaign", "PATCH", "/v1/campaigns/{OC}", Demo, JSON, Text(r#"{"open": false}"#), 404, "not_found", None),
        case("patch campaign: ours, by another organisation", "PATCH", "/v1/campaigns/SHUT-campaign", Other, JSON, Text(r#"{"open": true}"#), 404, "not_found", None),
        // ---- Participants -------------------------------------------------------------------------
        case("erase: another organisation's participant", "DELETE", "/v1/participants/carol", Demo, None, nobody, 404, "not_found", None),
        case("erase: ours, by another organisation", "DELETE", "/v1/participants/alice", Other, None, nobody, 404, "not_found", None),
        case("erase: unknown participant", "DELETE", "/v1/participants/nobody-at-all", Demo, None, nobody, 404, "not_found", None),
        case("erase: participant with control characters", "DELETE", "/v1/participants/ali%00ce%0A", Demo, None, nobody, 404, "not_found", None),
        case("erase: unicode participant", "DELETE", "/v1/participants/%C3%A9l%C3%A8ve-%F0%9F%98%80", Demo, None, nobody, 404, "not_found", None),
        case("erase: participant of 10 000 characters", "DELETE", "/v1/participants/{LONG10K}", Demo, None, nobody, 404, "not_found", None),
        case("erase: session token", "DELETE", "/v1/participants/alice", Token, None, nobody, 401, "unauthorized", None),
        case("erase: missing Authorization", "DELETE", "/v1/participants/alice", none, None, nobody, 401, "unauthorized", None),
        // ---- xAPI: the organisation's LRS ------------------------------------------------------------
        case("xapi: no key", "PUT", "/v1/xapi", none, JSON, Text(r#"{"endpoint": "https://lrs.example/xapi", "username": "u", "password": "p"}"#), 401, "unauthorized", None),
        case("xapi: session token", "PUT", "/v1/xapi", Token, JSON, Text(r#"{"endpoint": "https://lrs.example/xapi", "username": "u", "password": "p"}"#), 401, "unauthorized", None),
        case("xapi: endpoint not a URL", "PUT", "/v1/xapi", Demo, JSON, Text(r#"{"endpoint": "lrs", "username": "u", "password": "p"}"#), 422, "invalid", Some("endpoint")),
        case("xapi: plain-HTTP endpoint elsewhere", "PUT", "/v1/xapi", Demo, JSON, Text(r#"{"endpoint": "http://lrs.example/xapi", "username": "u", "password": "p"}"#), 422, "invalid", Some("endpoint")),
        case("xapi: credentials in the endpoint", "PUT", "/v1/xapi", Demo, JSON, Text(r#"{"endpoint": "https://key:secret@lrs.example/xapi", "username": "u", "password": "p"}"#), 422, "invalid", Some("endpoint")),
        case("xapi: empty password", "PUT", "/v1/xapi", Demo, JSON, Text(r#"{"endpoint": "https://lrs.example/xapi", "username": "u", "password": ""}"#), 422, "invalid", Some("password")),
        case("xapi: no password", "PUT", "/v1/xapi", Demo, JSON, Text(r#"{"endpoint": "https://lrs.example/xapi", "username": "u"}"#), 422, "invalid", None),
        case("xapi: home page not an IRI", "PUT", "/v1/xapi", Demo, JSON, Text(r#"{"endpoint": "https://lrs.example/xapi", "username": "u", "password": "p", "homepage": "mailto:a@b"}"#), 422, "invalid", Some("homepage")),
        case("xapi: unknown field", "PUT", "/v1/xapi", Demo, JSON, Text(r#"{"endpoint": "https://lrs.example/xapi", "username": "u", "password": "p", "version": "2.0"}"#), 422, "invalid", Some("version")),
        case("xapi: none configured", "GET", "/v1/xapi", Demo, None, nobody, 404, "not_found", None),
        case("xapi: remove none", "DELETE", "/v1/xapi", Demo, None, nobody, 404, "not_found", None),
        case("xapi: wrong method", "POST", "/v1/xapi", Demo, JSON, Text("{}"), 405, "method_not_allowed", None),
        // ---- Routes -----------------------------------------------------------------------------------
        case("erase: empty id", "DELETE", "/v1/participants/", Demo, None, nobody, 404, "not_found", None),
        case("answers: empty session id", "POST", "/v1/sessions//answers", Token, JSON, Text(r#"{"position": 2, "item": "{I2}", "choice": 0}"#), 404, "not_found", None),
        case("unknown route", "GET", "/v1/nothing", Demo, None, nobody, 404, "not_found", None),
        case("unknown API version", "POST", "/v2/sessions", none, JSON, Text(r#"{"campaign_code": "DEMO"}"#), 404, "not_found", None),
        case("wrong method on banks", "PUT", "/v1/banks", Demo, JSON, Text("{}"), 405, "method_not_allowed", None),
        case("wrong method on a session", "DELETE", "/v1/sessions/{S}", Token, None, nobody, 405, "method_not_allowed", None),
        case("wrong method on answers", "GET", "/v1/sessions/{S}/answers", Token, None, nobody, 405, "method_not_allowed", None),
        // ---- Arrays in place of objects, their elements in the fields' order (last: were one
        // accepted, it would record something and upset the cases after it) -------------------------
        case("campaign: top-level array of the fields", "POST", "/v1/campaigns", Demo, JSON, Text(r#"[null, "arrayed", "{B}", null, [{"competence": "1.1", "target_level": 2}], null, null, null, null]"#), 422, "invalid", None),
        case("session: top-level array of the fields", "POST", "/v1/sessions", none, JSON, Text(r#"["DEMO", "arrayed", null, null, null, null]"#), 422, "invalid", None),
        case("answer: top-level array of the fields", "POST", "/v1/sessions/{S}/answers", Token, JSON, Text(r#"[2, "{I2}", null, 0]"#), 422, "invalid", None),
    ]
}

/// What the catalogue's placeholders stand for on one server.
struct Fixture {
    demo_key: String,
    other_key: String,
    /// Session on DEMO (participant `alice`) with one answer: id and token.
    session: String,
    token: String,
    /// Second session on DEMO (participant `bob`).
    token2: String,
    /// The token of the other organisation's session (participant `carol`).
    other_token: String,
    /// Fill-ins: (placeholder, value).
    values: Vec<(&'static str, String)>,
}

impl Fixture {
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.values {
            out = out.replace(k, v);
        }
        assert!(
            !out.contains("{S") && !out.contains("{I") && !out.contains("{C") && !out.contains("{L"),
            "unfilled placeholder in {text}"
        );
        out
    }

    fn header(&self, auth: Auth) -> Option<Vec<u8>> {
        let bearer = |s: &str| Some(format!("Bearer {s}").into_bytes());
        match auth {
            Auth::None => None,
            Auth::Demo => bearer(&self.demo_key),
            Auth::Other => bearer(&self.other_key),
            Auth::Token => bearer(&self.token),
            Auth::Token2 => bearer(&self.token2),
            Auth::OtherToken => bearer(&self.other_token),
            Auth::WrongToken => bearer(&format!("ets_{}", "0".repeat(64))),
            Auth::WrongKey => bearer(&format!("etk_{}", "0".repeat(64))),
            Auth::Header(raw) => Some(raw.to_vec()),
        }
    }

    fn body(&self, body: Body) -> Option<Vec<u8>> {
        match body {
            Body::None => None,
            Body::Text(t) => Some(self.fill(t).into_bytes()),
            Body::Bytes(b) => Some(b.to_vec()),
            Body::Huge(n) => Some(format!(r#"{{"name": "{}"}}"#, "x".repeat(n)).into_bytes()),
            Body::Exact(n) => {
                let filler = n - r#"{"name": ""}"#.len();
                Some(format!(r#"{{"name": "{}"}}"#, "x".repeat(filler)).into_bytes())
            }
            Body::Deep(n) => Some(format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        }
    }
}

/// Send a request exactly as given (any `Authorization` bytes), with a time limit.
async fn send(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    authorization: Option<Vec<u8>>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<Reply, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut r = http.request(method, format!("{base}{path}"));
    if let Some(a) = authorization {
        let value = reqwest::header::HeaderValue::from_bytes(&a).map_err(|e| e.to_string())?;
        r = r.header(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(ct) = content_type {
        r = r.header(reqwest::header::CONTENT_TYPE, ct);
    }
    if let Some(body) = body {
        r = r.body(body);
    }
    let resp = r.send().await.map_err(|e| format!("no answer: {e:?}"))?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.map_err(|e| format!("no body: {e:?}"))?;
    let json = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    Ok(Reply {
        status,
        content_type,
        json,
        text,
    })
}

/// The state every case starts from: a second organisation with a bank, a campaign and a session;
/// a closed campaign `SHUT` of the demo organisation; two sessions on DEMO, the first with one answer.
async fn setup(server: &Server, client: &Client) -> (Fixture, String) {
    let key = server.demo_key.clone();
    let (_, other_key) = server
        .service
        .create_org("other")
        .await
        .expect("a second organisation");
    let demo_campaign = client
        .call("GET", "/v1/campaigns/example-campaign", Some(&key), None)
        .await;
    assert_eq!(demo_campaign.status, 200, "{}", demo_campaign.text);
    let bank_id = demo_campaign.json["bank"]
        .as_str()
        .expect("the campaign's bank")
        .to_string();
    let bank_json = client
        .call("GET", &format!("/v1/banks/{bank_id}"), Some(&key), None)
        .await;
    assert_eq!(bank_json.status, 200, "{}", bank_json.text);

    // The other organisation: the same bank under another id, a campaign, a session of `carol`.
    let mut other_bank = bank_json.json.clone();
    other_bank["id"] = json!("other-bank");
    let r = client
        .call("POST", "/v1/banks", Some(&other_key), Some(&other_bank))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = client
        .call(
            "POST",
            "/v1/campaigns",
            Some(&other_key),
            Some(
                &json!({"id": "other-campaign", "name": "Other", "bank": "other-bank", "code": "OTHER-ORG",
                "targets": [{"competence": "1.1", "target_level": 2}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = client
        .call(
            "POST",
            "/v1/sessions",
            None,
            Some(&json!({"campaign_code": "OTHER-ORG", "participant": "carol"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let other_session = r.json["session"].as_str().unwrap().to_string();
    let other_token = r.json["token"].as_str().unwrap().to_string();

    // A closed campaign of the demo organisation.
    let r = client
        .call(
            "POST",
            "/v1/campaigns",
            Some(&key),
            Some(&json!({"id": "SHUT-campaign", "name": "Closed", "bank": bank_id, "code": "SHUT", "open": false,
                "targets": [{"competence": "1.1", "target_level": 2}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["open"], json!(false), "{}", r.text);

    // Two sessions on DEMO; the first answers its first question.
    let r = client
        .call(
            "POST",
            "/v1/sessions",
            None,
            Some(&json!({"campaign_code": "DEMO", "participant": "alice"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let session = r.json["session"].as_str().unwrap().to_string();
    let token = r.json["token"].as_str().unwrap().to_string();
    let first = r.json["next"].clone();
    let i1 = first["item"].as_str().expect("a first question").to_string();
    let choices1 = first["choices"].as_array().map_or(0, Vec::len);
    assert!(choices1 >= 2, "the first question has choices: {first}");
    let r = client
        .call(
            "POST",
            &format!("/v1/sessions/{session}/answers"),
            Some(&token),
            Some(&json!({"position": 1, "item": i1, "choice": 0})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first_answer = r.text.clone();
    let second = r.json["next"].clone();
    let i2 = second["item"].as_str().expect("a second question").to_string();
    let choices2 = second["choices"].as_array().map_or(0, Vec::len);
    let recorded = server.service.store.answers(&session).await.unwrap();
    assert_eq!(recorded.len(), 1);
    let r = client
        .call(
            "POST",
            "/v1/sessions",
            None,
            Some(&json!({"campaign_code": "DEMO", "participant": "bob"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token2 = r.json["token"].as_str().unwrap().to_string();

    // An item of the bank that is neither question.
    let items: Vec<String> = bank_json.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let i_other = items.iter().find(|i| **i != i1 && **i != i2).unwrap().clone();

    let values = vec![
        ("{SO}", other_session.clone()),
        ("{S}", session.clone()),
        ("{IOTHER}", i_other),
        ("{I1}", i1),
        ("{I2}", i2),
        ("{C1OTHER}", "1".to_string()),
        ("{C1}", "0".to_string()),
        ("{C2OUT}", choices2.max(choices1).max(4).to_string()),
        ("{R1}", recorded[0].code.to_string()),
        ("{OB}", "other-bank".to_string()),
        ("{OC}", "other-campaign".to_string()),
        ("{B}", bank_id),
        ("{LONG10K}", "p".repeat(10_000)),
        ("{LONG201}", "é".repeat(201)),
        (
            "{DEEP200}",
            format!("\"a\": {}{}", "[".repeat(200), "]".repeat(200)),
        ),
    ];
    (
        Fixture {
            demo_key: key,
            other_key,
            session,
            token,
            token2,
            other_token,
            values,
        },
        first_answer,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_4xx_and_changes_nothing() {
    let cases = catalogue();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    etalon_server::install_crypto();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let mut all = Vec::new();
    for server in servers().await {
        let client = Client::new(&server.base);
        let (fx, first_answer) = setup(&server, &client).await;
        let mut failures = Vec::new();
        for c in &cases {
            let path = fx.fill(c.path);
            let before = server.service.store.dump().await.expect("dump");
            let reply = send(
                &http,
                &server.base,
                c.method,
                &path,
                fx.header(c.auth),
                c.content_type,
                fx.body(c.body),
            )
            .await;
            let after = server.service.store.dump().await.expect("dump");
            let mut wrong = Vec::new();
            match &reply {
                Err(e) => wrong.push(e.clone()),
                Ok(r) => {
                    if r.status != c.status {
                        wrong.push(format!("status {} (expected {})", r.status, c.status));
                    }
                    if r.status >= 500 {
                        wrong.push("a 5xx".into());
                    }
                    if c.status == 200 {
                        if r.text != first_answer {
                            wrong.push(format!("not the first answer's reply: {first_answer}"));
                        }
                    } else {
                        if !r.content_type.starts_with("application/json") {
                            wrong.push(format!("content type `{}`", r.content_type));
                        }
                        let error = &r.json["error"];
                        let keys_ok = r.json.as_object().is_some_and(|o| o.len() == 1)
                            && error["code"].is_string()
                            && error["message"].as_str().is_some_and(|m| !m.is_empty());
                        if !keys_ok {
                            wrong.push("not {\"error\": {\"code\", \"message\"}}".into());
                        }
                        let expected_code = fx.fill(c.code);
                        if !expected_code.is_empty() && r.code() != expected_code {
                            wrong.push(format!("code `{}` (expected `{}`)", r.code(), expected_code));
                        }
                        if let Some(f) = c.field
                            && error["field"] != json!(f)
                        {
                            wrong.push(format!("field {} (expected `{f}`)", error["field"]));
                        }
                        if c.code == "invalid_bank"
                            && error["problems"].as_array().is_none_or(|p| p.is_empty())
                        {
                            wrong.push("no `problems`".into());
                        }
                    }
                }
            }
            if after != before {
                wrong.push("the stored state changed".into());
            }
            if !wrong.is_empty() {
                let shown = reply.as_ref().map_or_else(
                    |e| e.clone(),
                    |r| format!("{} {}", r.status, etalon_assessment::cut(&r.text, 400)),
                );
                failures.push(format!(
                    "[{}] {}: {} {} → {}\n    {}",
                    server.backend,
                    c.name,
                    c.method,
                    etalon_assessment::cut(&path, 120),
                    shown,
                    wrong.join("; ")
                ));
            }
        }

        failures.extend(healthy(&server, &client, &fx).await);
        eprintln!(
            "{}: {} cases, {} failed",
            server.backend,
            cases.len(),
            failures.len()
        );
        all.extend(failures);
    }
    assert!(all.is_empty(), "{} failures:\n{}", all.len(), all.join("\n"));
}

/// After the catalogue: the live session continues where it was (one answer), a new session
/// starts, the organisation's endpoints answer. Problems found.
async fn healthy(server: &Server, client: &Client, fx: &Fixture) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("[{}] after the catalogue: {what}", server.backend));
        }
    };
    let path = format!("/v1/sessions/{}", fx.session);
    let status = client.call("GET", &path, Some(&fx.token), None).await;
    check(
        status.status == 200 && status.json["answered"] == 1,
        format!("session status {}", status.text),
    );
    let next = status.json["next"].clone();
    let position = next["position"].as_i64().unwrap_or(0);
    let r = client
        .call(
            "POST",
            &format!("{path}/answers"),
            Some(&fx.token),
            Some(&json!({"position": position, "item": next["item"], "choice": 0})),
        )
        .await;
    check(
        r.status == 200 && r.json["answered"] == position,
        format!("a legitimate answer: {}", r.text),
    );
    let stored = server
        .service
        .store
        .answers(&fx.session)
        .await
        .map_or(0, |a| a.len()) as i64;
    check(
        stored == position,
        format!("{stored} answers stored, expected {position}"),
    );
    let r = client
        .call(
            "POST",
            "/v1/sessions",
            None,
            Some(&json!({"campaign_code": "DEMO", "participant": "dave"})),
        )
        .await;
    check(r.status == 201, format!("a new session: {}", r.text));
    let r = client.call("GET", "/health", None, None).await;
    check(
        r.status == 200 && r.json == json!({"status": "ok"}),
        format!("health: {}", r.text),
    );
    let r = client.call("GET", "/v1/banks", Some(&fx.demo_key), None).await;
    check(r.status == 200, format!("the banks: {}", r.text));
    problems
}

/// A body far over the limit gets its 413 every time (not a reset connection: the server must
/// not hang up while the client is still sending), on each endpoint that takes a body, and stores
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_oversized_bodies_always_get_their_413() {
    const TRIES: usize = 10;
    etalon_server::install_crypto();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for server in servers().await {
        let client = Client::new(&server.base);
        let (fx, _) = setup(&server, &client).await;
        let before = server.service.store.dump().await.expect("dump");
        for (method, path, auth, content_type) in [
            (
                "POST",
                "/v1/banks".to_string(),
                Auth::Demo,
                Some("application/json"),
            ),
            (
                "POST",
                "/v1/banks?id=huge".to_string(),
                Auth::Demo,
                Some("text/csv"),
            ),
            (
                "POST",
                "/v1/campaigns".to_string(),
                Auth::Demo,
                Some("application/json"),
            ),
            (
                "POST",
                "/v1/sessions".to_string(),
                Auth::None,
                Some("application/json"),
            ),
            (
                "POST",
                format!("/v1/sessions/{}/answers", fx.session),
                Auth::Token,
                Some("application/json"),
            ),
        ] {
            for size in [4 << 20, 16 << 20] {
                let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
                for _ in 0..TRIES {
                    let body = fx.body(Body::Huge(size));
                    let outcome = match send(
                        &http,
                        &server.base,
                        method,
                        &path,
                        fx.header(auth),
                        content_type,
                        body,
                    )
                    .await
                    {
                        Ok(r) if r.status == 413 && r.code() == "body_too_large" => "413".to_string(),
                        Ok(r) => format!("{} {}", r.status, etalon_assessment::cut(&r.text, 200)),
                        Err(e) if e.contains("BrokenPipe") => {
                            "no answer: broken pipe while sending".to_string()
                        }
                        Err(e) if e.contains("IncompleteMessage") => {
                            "no answer: connection closed".to_string()
                        }
                        Err(e) if e.contains("ConnectionReset") => "no answer: connection reset".to_string(),
                        Err(e) => etalon_assessment::cut(&e, 200),
                    };
                    *outcomes.entry(outcome).or_default() += 1;
                }
                if outcomes.get("413") != Some(&TRIES) {
                    failures.push(format!(
                        "[{}] {method} {path} with {} MiB, {TRIES} times: {outcomes:?}",
                        server.backend,
                        size >> 20
                    ));
                }
            }
        }
        if server.service.store.dump().await.expect("dump") != before {
            failures.push(format!("[{}] the stored state changed", server.backend));
        }
        failures.extend(healthy(&server, &client, &fx).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
