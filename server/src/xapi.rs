//! xAPI: each answer and each completed assessment of an organisation's sessions, as statements
//! sent to the Learning Record Store it configures (`PUT /v1/xapi`).
//!
//! A session started under a configured LRS gets a cursor in the same transaction
//! (`xapi_outbox`: how many of its answers went out, whether its completion did). A background task
//! ([`crate::outbox`]) claims sessions with answers past their cursor, builds their statements from
//! the append-only answers log ([`etalon_assessment::xapi`]) and posts them in order, in one batch
//! (`POST {endpoint}statements`, HTTP Basic, `X-Experience-API-Version: 1.0.3`), then moves the cursor.
//! An LRS that refuses or cannot be reached gets the same statements later (10 s doubling to an hour),
//! so an hour of downtime loses nothing; statements already accepted are never sent again, and should a
//! server die between the LRS's acceptance and the cursor's move, the resend carries the same ids,
//! which the LRS stores once. Statements of one session go out in order, by one server at a time
//! (the lease).

use crate::error::{ApiError, ApiResult};
use crate::outbox::LEASE_MS;
use crate::service::Service;
use crate::storage::{Org, StatementJob, StatementsSummary, XapiLrs, now_ms};
use etalon_assessment::xapi::{LoggedAnswer, SessionStatements, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most statements in one request.
const BATCH: usize = 100;
/// Most sessions claimed per pass.
const SESSIONS_PER_PASS: i64 = 50;

/// `PUT /v1/xapi`: the organisation's Learning Record Store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrsRequest {
    /// The LRS's xAPI endpoint (statements go to `{endpoint}/statements`): https, or http on this
    /// machine.
    pub endpoint: String,
    /// HTTP Basic user (the LRS's key).
    pub username: String,
    /// HTTP Basic password (its secret).
    pub password: String,
    /// Base IRI of the actors' accounts and the activities (default: this server's address).
    pub homepage: Option<String>,
}

/// The organisation's LRS as the API shows it (never the password) and where its statements stand.
#[derive(Debug, Clone, Serialize)]
pub struct LrsView {
    /// Endpoint.
    pub endpoint: String,
    /// HTTP Basic user.
    pub username: String,
    /// Base IRI of accounts and activities.
    pub homepage: String,
    /// Unix milliseconds.
    pub created: i64,
    /// Delivery so far.
    pub statements: StatementsSummary,
}

/// An error of the LRS (its status and the start of its answer), for the outbox's `last_error`.
fn refused(status: reqwest::StatusCode, body: &str) -> ApiError {
    ApiError::new(
        502,
        "lrs_refused",
        format!("the LRS answered {status}: {}", etalon_assessment::cut(body, 200)),
    )
}

fn unreachable(e: reqwest::Error) -> ApiError {
    ApiError::new(502, "lrs_unreachable", format!("sending statements: {e}"))
}

impl Service {
    /// Configure (or replace) the organisation's LRS. `origin` is this server's address as the
    /// request saw it (the default home page).
    pub async fn configure_lrs(&self, org: &Org, req: LrsRequest, origin: &str) -> ApiResult<LrsView> {
        crate::lti::check_url("endpoint", &req.endpoint)?;
        if url::Url::parse(&req.endpoint).is_ok_and(|u| !u.username().is_empty() || u.password().is_some()) {
            return Err(ApiError::invalid(
                "endpoint",
                "give the credentials as `username` and `password`, not in the endpoint",
            ));
        }
        if req.username.is_empty() || req.password.is_empty() {
            let field = if req.username.is_empty() {
                "username"
            } else {
                "password"
            };
            return Err(ApiError::invalid(field, format!("`{field}` is empty")));
        }
        let homepage = match req.homepage {
            Some(h) => {
                url::Url::parse(&h)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| ApiError::invalid("homepage", "`homepage` must be an http(s) IRI"))?;
                h
            }
            None if origin.is_empty() => {
                return Err(ApiError::invalid(
                    "homepage",
                    "give `homepage` (the request named no host to default to)",
                ));
            }
            None => origin.to_string(),
        };
        let endpoint = format!("{}/", req.endpoint.trim_end_matches('/'));
        let lrs = XapiLrs {
            endpoint,
            username: req.username,
            password: req.password,
            homepage: homepage.trim_end_matches('/').to_string(),
            created: now_ms(),
        };
        self.store.put_xapi_lrs(org.id, Some(&lrs)).await?;
        self.lrs(org).await
    }

    /// The organisation's LRS and its delivery summary.
    pub async fn lrs(&self, org: &Org) -> ApiResult<LrsView> {
        let lrs = self
            .store
            .xapi_lrs(org.id)
            .await?
            .ok_or_else(|| ApiError::not_found("no LRS configured (`PUT /v1/xapi`)"))?;
        Ok(LrsView {
            endpoint: lrs.endpoint,
            username: lrs.username,
            homepage: lrs.homepage,
            created: lrs.created,
            statements: self.store.statements_summary(org.id).await?,
        })
    }

    /// Stop sending to the organisation's LRS. Sessions started while it was configured keep their
    /// cursors: what they have not sent goes to the next LRS configured. Sessions started while none is
    /// configured are not sent.
    pub async fn remove_lrs(&self, org: &Org) -> ApiResult<()> {
        self.store
            .xapi_lrs(org.id)
            .await?
            .ok_or_else(|| ApiError::not_found("no LRS configured"))?;
        Ok(self.store.put_xapi_lrs(org.id, None).await?)
    }

    /// One pass of the xAPI outbox: claim the sessions with statements due and send them. Returns
    /// (statements sent, sessions whose delivery failed).
    pub async fn send_due_statements(&self) -> ApiResult<(usize, usize)> {
        let now = now_ms();
        let jobs = self
            .store
            .claim_due_statements(now, now + LEASE_MS, SESSIONS_PER_PASS)
            .await?;
        let (mut sent, mut failed) = (0, 0);
        for job in jobs {
            match self.deliver(&job).await {
                Ok((cursor, completed, n)) => {
                    self.store
                        .statements_sent(&job.session, cursor, completed)
                        .await?;
                    sent += n;
                }
                Err(e) => {
                    tracing::warn!(session = %job.session, attempts = job.attempts + 1, error = %e.message, "statements not sent; will retry");
                    let message = etalon_assessment::cut(&e.message, 500);
                    self.store
                        .statements_failed(&job.session, self.retry_at(job.attempts), &message)
                        .await?;
                    failed += 1;
                }
            }
        }
        Ok((sent, failed))
    }

    /// Send a session's statements past its cursor; returns the new cursor, whether the completion
    /// went, and how many statements went.
    async fn deliver(&self, job: &StatementJob) -> ApiResult<(i64, bool, usize)> {
        let lrs = self
            .store
            .xapi_lrs(job.org)
            .await?
            .ok_or_else(|| ApiError::not_found("the LRS was removed"))?;
        let Some(row) = self.store.get_session(&job.session).await? else {
            // Erased meanwhile: nothing is left to say about it.
            return Ok((job.sent, true, 0));
        };
        let (assessor, answers, result) = self.replayed(&row).await?;
        let statements = SessionStatements {
            homepage: &lrs.homepage,
            session: &row.id,
            participant: row.participant.as_deref(),
            campaign: row.campaign.as_deref(),
            bank: assessor.bank(),
        };
        let pending: Vec<_> = answers.iter().filter(|a| a.position > job.sent).collect();
        let chunk = &pending[..pending.len().min(BATCH)];
        let mut batch: Vec<Value> = chunk
            .iter()
            .map(|a| {
                statements.answered(&LoggedAnswer {
                    position: a.position,
                    item: &a.item,
                    choice: a.choice,
                    response: a.response,
                    code: a.code,
                    at: a.created,
                })
            })
            .collect();
        let cursor = chunk.last().map_or(job.sent, |a| a.position);
        let completed = row.finished && chunk.len() == pending.len();
        if completed {
            let maximum: f64 = result
                .competences
                .keys()
                .map(|c| assessor.levels().for_competence(c).max_score())
                .sum();
            let at = answers.last().map_or(row.created, |a| a.created);
            batch.push(statements.completed(&result, maximum, answers.len() as i64, at));
        }
        if !batch.is_empty() {
            self.post_statements(&lrs, &batch).await?;
        }
        Ok((cursor, completed, batch.len()))
    }

    /// `POST {endpoint}statements` with the batch. An LRS that holds one of the ids with another
    /// content answers 409 to the whole batch: the statements then go one by one
    /// (`PUT …?statementId=`), and those it already holds are left as it holds them.
    async fn post_statements(&self, lrs: &XapiLrs, batch: &[Value]) -> ApiResult<()> {
        let url = format!("{}statements", lrs.endpoint);
        let request = |r: reqwest::RequestBuilder| {
            r.basic_auth(&lrs.username, Some(&lrs.password))
                .header("X-Experience-API-Version", VERSION)
        };
        let response = request(self.lti.http.post(&url))
            .json(batch)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        if status != reqwest::StatusCode::CONFLICT {
            return Err(refused(status, &body));
        }
        for statement in batch {
            let id = statement["id"].as_str().unwrap_or_default();
            let mut one = url::Url::parse(&url).map_err(|e| ApiError::invalid("endpoint", e.to_string()))?;
            one.query_pairs_mut().append_pair("statementId", id);
            let response = request(self.lti.http.put(one))
                .json(statement)
                .send()
                .await
                .map_err(unreachable)?;
            let status = response.status();
            if status == reqwest::StatusCode::CONFLICT {
                tracing::warn!(
                    statement = id,
                    "the LRS holds another statement under this id; kept as it is"
                );
            } else if !status.is_success() {
                return Err(refused(status, &response.text().await.unwrap_or_default()));
            }
        }
        Ok(())
    }
}
