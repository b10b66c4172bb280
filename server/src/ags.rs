//! LTI Assignment and Grade Services 2.0: when a session launched from an LMS ends, its score lands in
//! the course's gradebook.
//!
//! The launch's line item is recorded with the session ([`Storage::put_lti_grade`]); the grade is
//! posted once the session has its result, by a durable outbox ([`crate::outbox`]): a background task
//! claims due grades under a lease, asks the platform for an access token (OAuth 2 client credentials
//! with a JWT assertion signed by the tool's key, 1EdTech Security Framework §4.1), and posts the score
//! to `{lineitem}/scores`. A refusal or an unreachable platform is retried with exponential backoff
//! (10 s doubling to 1 h), forever; an accepted score is marked posted and never sent again.
//! (Should a server die between the platform's acceptance and the mark, the retry sends the same
//! score with the same `timestamp`, which AGS platforms take as the same score.)
//!
//! [`Storage::put_lti_grade`]: crate::storage::Storage::put_lti_grade

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::outbox::LEASE_MS;
use crate::service::Service;
use crate::storage::{GradeJob, now_ms};
use etalon_assessment::campaign::ParticipantResult;
use jsonwebtoken::{Algorithm, Header};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// The AGS scope of score posting.
pub const SCORE_SCOPE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// `{lineitem}/scores`, the line item URL's query kept after the path.
pub fn scores_url(lineitem: &str) -> ApiResult<String> {
    let mut url = url::Url::parse(lineitem).map_err(|e| ApiError::invalid("lineitem", e.to_string()))?;
    let path = format!("{}/scores", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url.into())
}

/// A result's levels in a sentence for the gradebook comment ("1.1: level 3 independent; …").
fn comment(result: &ParticipantResult) -> String {
    let levels: Vec<String> = result
        .competences
        .iter()
        .map(|(id, c)| format!("{id}: level {} {}", c.level, c.label))
        .collect();
    format!("Etalon levels — {}", levels.join("; "))
}

impl Service {
    /// An access token for posting scores to a platform (cached until shortly before it expires).
    async fn platform_token(&self, issuer: &str, client_id: &str) -> ApiResult<String> {
        let key = (issuer.to_string(), client_id.to_string());
        if let Some((until, token)) = self.lti.tokens.lock().ok().and_then(|m| m.get(&key).cloned())
            && Instant::now() < until
        {
            return Ok(token);
        }
        let platform = self
            .store
            .lti_platforms(issuer)
            .await?
            .into_iter()
            .find(|p| p.client_id == client_id)
            .ok_or_else(|| ApiError::not_found(format!("platform `{issuer}`")))?;
        let (kid, signing) = self.tool_signing_key().await?;
        let now = now_ms() / 1000;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        let assertion = jsonwebtoken::encode(
            &header,
            &serde_json::json!({
                "iss": client_id, "sub": client_id, "aud": platform.auth_token_url,
                "iat": now, "exp": now + 300, "jti": auth::new_id(),
            }),
            &signing,
        )
        .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        let answer: TokenAnswer = self
            .lti
            .http
            .post(&platform.auth_token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
                ("scope", SCORE_SCOPE),
            ])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| ApiError::new(502, "platform_unreachable", format!("token request: {e}")))?
            .json()
            .await
            .map_err(|e| ApiError::new(502, "platform_unreachable", format!("token answer: {e}")))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600).saturating_sub(60).max(1));
        if let Ok(mut m) = self.lti.tokens.lock() {
            m.insert(key, (Instant::now() + lifetime, answer.access_token.clone()));
        }
        Ok(answer.access_token)
    }

    /// Post one claimed grade.
    async fn post_grade(&self, job: &GradeJob) -> ApiResult<()> {
        let result: ParticipantResult =
            serde_json::from_str(&job.result).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        let timestamp = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(job.finished) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .ok_or_else(|| ApiError::new(500, "internal", "result time out of range"))?;
        let g = &job.grade;
        let score = serde_json::json!({
            "userId": g.user_id,
            "scoreGiven": (result.score * 100.0).round() / 100.0,
            "scoreMaximum": g.score_maximum,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": timestamp,
            "comment": comment(&result),
        });
        let token = self.platform_token(&g.issuer, &g.client_id).await?;
        let response = self
            .lti
            .http
            .post(scores_url(&g.lineitem)?)
            .bearer_auth(&token)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/vnd.ims.lis.v1.score+json",
            )
            .body(score.to_string())
            .send()
            .await
            .map_err(|e| ApiError::new(502, "platform_unreachable", format!("posting the score: {e}")))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED
            && let Ok(mut m) = self.lti.tokens.lock()
        {
            // The token was revoked or expired early: the next attempt asks for a new one.
            m.remove(&(g.issuer.clone(), g.client_id.clone()));
        }
        response
            .error_for_status()
            .map(drop)
            .map_err(|e| ApiError::new(502, "platform_refused", format!("posting the score: {e}")))
    }

    /// Grades of the organisation's launched sessions: (session, `pending`|`posted`, attempts, last
    /// error).
    pub async fn grades(
        &self,
        org: &crate::storage::Org,
    ) -> ApiResult<Vec<(String, String, i64, Option<String>)>> {
        Ok(self.store.lti_grades(org.id).await?)
    }

    /// One pass of the outbox: claim the grades due now and post them. Returns (posted, failed).
    pub async fn post_due_grades(&self) -> ApiResult<(usize, usize)> {
        let now = now_ms();
        let jobs = self.store.claim_due_grades(now, now + LEASE_MS, 50).await?;
        let (mut posted, mut failed) = (0, 0);
        for job in jobs {
            match self.post_grade(&job).await {
                Ok(()) => {
                    self.store.grade_posted(&job.grade.session, now_ms()).await?;
                    posted += 1;
                }
                Err(e) => {
                    tracing::warn!(session = %job.grade.session, attempts = job.attempts + 1, error = %e.message, "grade not posted; will retry");
                    let next = self.retry_at(job.attempts);
                    self.store
                        .grade_failed(&job.grade.session, next, &etalon_assessment::cut(&e.message, 500))
                        .await?;
                    failed += 1;
                }
            }
        }
        Ok((posted, failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_go_after_the_line_item_path() {
        assert_eq!(
            scores_url("https://lms.example/mod/lti/services.php/2/lineitems/7/lineitem?type_id=3").unwrap(),
            "https://lms.example/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=3"
        );
        assert_eq!(
            scores_url("https://lms.example/li/1/").unwrap(),
            "https://lms.example/li/1/scores"
        );
    }
}
