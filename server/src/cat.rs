//! 1EdTech Computer Adaptive Testing 1.0: delivery systems that follow the standard (TAO has a
//! client) delegate item selection to Etalon over REST, with the organisation's key as bearer token.
//!
//! A *section* is a bank version and a design: its `sectionConfiguration` is base64 JSON
//! `{"bank": BANK_ID, "bank_version"?: N, "config"?: DESIGN}` (the design as `POST /v1/sessions` takes
//! it; the quick profile when absent). A *session* is an Etalon session on it — the same engine, the
//! same stored answers as the v1 API — whose `sessionState` is its token: the delivery system sends it
//! back with each result. Results are QTI `assessmentResult`s whose `itemResult`s carry the scored
//! response as the outcome variable `SCORE` (the response code); each is recorded at the next position,
//! so sending the same results again is a replay. Errors are the standard's status objects.

use crate::error::{ApiError, ApiResult};
use crate::service::{AnswerRequest, Service, StartRequest, check_id};
use crate::storage::{CatSection, Org, now_ms};
use base64::Engine;
use serde_json::{Value, json};

/// The standard's status object for an error, with the same HTTP status.
pub fn status_object(e: &ApiError) -> Value {
    json!({
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": e.message,
        "imsx_codeMinor": {"imsx_codeMinorField": [{
            "imsx_codeMinorFieldName": e.field.clone().unwrap_or_else(|| "sourcedId".into()),
            "imsx_codeMinorFieldValue": match e.status {
                400 | 422 => "invalid_data",
                401 => "unauthorisedrequest",
                404 => "unknownobject",
                409 => "invalid_data",
                413 => "invalid_data",
                503 => "server_busy",
                _ => "internal_server_fault",
            },
        }]},
    })
}

fn next_items(next: Option<&etalon_assessment::ItemView>) -> Value {
    json!({"itemIdentifiers": next.map(|v| vec![v.item.clone()]).unwrap_or_default(), "stageLength": 1})
}

/// The score an `itemResult` carries: its outcome variable `SCORE` (a number, or a number as text,
/// alone or first in a list).
fn item_score(result: &Value) -> Option<i64> {
    let outcome = result["outcomeVariable"]
        .as_array()?
        .iter()
        .find(|o| o["identifier"] == "SCORE")?;
    let value = match &outcome["value"] {
        Value::Array(a) => a.first()?.clone(),
        v => v.clone(),
    };
    let score = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (score.fract() == 0.0 && score.abs() < 1e9).then_some(score as i64)
}

impl Service {
    async fn cat_section(&self, org: &Org, id: &str) -> ApiResult<CatSection> {
        check_id("sectionIdentifier", id).map_err(|_| ApiError::not_found(format!("section `{id}`")))?;
        self.store
            .get_cat_section(org.id, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("section `{id}`")))
    }

    /// `POST /ims/cat/v1p0/sections`.
    pub async fn cat_create_section(&self, org: &Org, body: &Value) -> ApiResult<Value> {
        let encoded = body["sectionConfiguration"].as_str().ok_or_else(|| {
            ApiError::invalid(
                "sectionConfiguration",
                "give `sectionConfiguration` (base64 JSON)",
            )
        })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| ApiError::invalid("sectionConfiguration", format!("not base64: {e}")))?;
        let config: Value = serde_json::from_slice(&decoded)
            .map_err(|e| ApiError::invalid("sectionConfiguration", format!("not JSON: {e}")))?;
        let bank = config["bank"]
            .as_str()
            .ok_or_else(|| ApiError::invalid("sectionConfiguration", "the configuration names no `bank`"))?;
        check_id("bank", bank)?;
        let record = self
            .store
            .get_bank(org.id, bank, config["bank_version"].as_i64())
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "sectionConfiguration",
                    format!("no bank `{bank}` (with that version)"),
                )
            })?;
        let design = match config.get("config") {
            None | Some(Value::Null) => {
                etalon_assessment::presets::default_design(&Service::parse_bank(&record)?)
            }
            Some(v) => etalon_assessment::Design::from_json(&v.to_string())
                .map_err(|e| ApiError::invalid("sectionConfiguration", e.to_string()))?,
        };
        let design =
            serde_json::to_string(&design).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        self.assessor_or(org.id, &record.id, record.version, &design, |e| {
            ApiError::invalid("sectionConfiguration", e.to_string())
        })
        .await?;
        let section = CatSection {
            org: org.id,
            id: crate::auth::new_id(),
            bank: record.id,
            bank_version: record.version,
            design,
            configuration: encoded.trim().to_string(),
            created: now_ms(),
        };
        self.store.put_cat_section(&section).await?;
        Ok(json!({"sectionIdentifier": section.id}))
    }

    /// `GET /ims/cat/v1p0/sections/{id}`.
    pub async fn cat_get_section(&self, org: &Org, id: &str) -> ApiResult<Value> {
        let s = self.cat_section(org, id).await?;
        Ok(json!({"sectionIdentifier": s.id, "sectionConfiguration": s.configuration}))
    }

    /// `DELETE /ims/cat/v1p0/sections/{id}` (its sessions and answers stay recorded).
    pub async fn cat_delete_section(&self, org: &Org, id: &str) -> ApiResult<()> {
        self.cat_section(org, id).await?;
        self.store.delete_cat_section(org.id, id).await?;
        Ok(())
    }

    /// `POST /ims/cat/v1p0/sections/{id}/sessions`: a new session and its first item.
    pub async fn cat_start(&self, org: &Org, section: &str) -> ApiResult<Value> {
        let s = self.cat_section(org, section).await?;
        let design: Value =
            serde_json::from_str(&s.design).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        let started = self
            .start(
                Some(org),
                StartRequest {
                    bank: Some(s.bank),
                    bank_version: Some(s.bank_version),
                    config: Some(design),
                    ..StartRequest::default()
                },
            )
            .await?;
        Ok(json!({
            "sessionIdentifier": started.session,
            "nextItems": next_items(started.next.as_ref()),
            "sessionState": started.token,
        }))
    }

    /// `POST /ims/cat/v1p0/sections/{id}/sessions/{sid}/results`: record the results, answer the next
    /// items (none when the test is over, with the final outcomes).
    pub async fn cat_results(
        &self,
        org: &Org,
        section: &str,
        session: &str,
        body: &Value,
    ) -> ApiResult<Value> {
        self.cat_section(org, section).await?;
        let token = body["sessionState"].as_str().ok_or_else(|| {
            ApiError::invalid("sessionState", "give back the `sessionState` of the last answer")
        })?;
        let results = body["assessmentResult"]["itemResult"]
            .as_array()
            .ok_or_else(|| ApiError::invalid("assessmentResult", "give `assessmentResult.itemResult`"))?;
        let mut status = self.status(session, Some(token), None).await?;
        for r in results {
            let item = r["identifier"]
                .as_str()
                .ok_or_else(|| ApiError::invalid("itemResult", "an itemResult has no `identifier`"))?;
            let score = item_score(r).ok_or_else(|| {
                ApiError::invalid(
                    "itemResult",
                    format!("itemResult `{item}` has no integer outcome `SCORE`"),
                )
            })?;
            // QTI's `sequenceIndex` is the item's position in the test: with it, results sent again are
            // a replay; without it, the next position.
            let position = r["sequenceIndex"].as_i64().unwrap_or(status.answered as i64 + 1);
            let answered = self
                .answer(
                    session,
                    Some(token),
                    AnswerRequest {
                        position,
                        item: item.to_string(),
                        response: Some(score),
                        choice: None,
                    },
                )
                .await?;
            status.answered = answered.answered;
            status.next = answered.next;
        }
        let mut out = json!({"nextItems": next_items(status.next.as_ref()), "sessionState": token});
        if status.next.is_none() {
            let r = self.result(session, Some(token), None).await?.result;
            out["assessmentResult"] = json!({"testResult": {"identifier": section, "outcomeVariable": [
                {"identifier": "THETA", "cardinality": "single", "baseType": "float", "value": r.theta},
                {"identifier": "SE", "cardinality": "single", "baseType": "float", "value": r.se},
                {"identifier": "SCORE", "cardinality": "single", "baseType": "float", "value": r.score},
            ]}});
        }
        Ok(out)
    }

    /// `DELETE /ims/cat/v1p0/sections/{id}/sessions/{sid}`: the delivery system ends the session (its
    /// answers stay recorded).
    pub async fn cat_end(&self, org: &Org, section: &str, session: &str) -> ApiResult<()> {
        self.cat_section(org, section).await?;
        self.status(session, None, Some(org)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_from_the_score_outcome() {
        let r = |v: Value| json!({"identifier": "i", "outcomeVariable": [{"identifier": "X", "value": 9}, {"identifier": "SCORE", "value": v}]});
        assert_eq!(item_score(&r(json!(1))), Some(1));
        assert_eq!(item_score(&r(json!("2"))), Some(2));
        assert_eq!(item_score(&r(json!([0]))), Some(0));
        assert_eq!(item_score(&r(json!(0.5))), None);
        assert_eq!(item_score(&r(json!("x"))), None);
        assert_eq!(item_score(&json!({"identifier": "i"})), None);
    }
}
