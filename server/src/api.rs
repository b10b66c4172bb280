//! The HTTP API v1 (`docs/FORMATS.md`, "HTTP service"): routes, extractors that turn every bad request
//! into a JSON 4xx, and the OpenAPI document generated from the handlers' annotations (`utoipa`).

use crate::error::{ApiError, ApiResult};
use crate::service::{AnswerRequest, CampaignRequest, Service, StartRequest};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use utoipa::OpenApi;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The service.
    pub service: Arc<Service>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
}

/// The `Authorization: Bearer …` value, if any.
pub struct Bearer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Bearer(None));
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer KEY`"))?;
        Ok(Bearer(Some(token.trim().to_string())))
    }
}

impl Bearer {
    fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
    /// Whether it is an organisation key (rather than a session token).
    fn is_org_key(&self) -> bool {
        self.0
            .as_deref()
            .is_some_and(|k| k.starts_with(crate::auth::KEY_PREFIX))
    }
}

/// A path id (a bad one is a 404: no such thing).
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("that path"))?;
        // An id no one could have created (empty, control characters, too long) names nothing.
        crate::service::check_id("id", &id).map_err(|_| ApiError::not_found("that path"))?;
        Ok(Id(id))
    }
}

/// A query string read into `T` (a bad one is a 400).
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::malformed(format!("query string: {}", e.body_text())))?;
        Ok(Q(q))
    }
}

/// How much of an oversized body is read and thrown away before answering 413, so that the client,
/// still sending, reads the answer instead of a reset connection.
const DRAIN_BYTES: usize = 64 << 20;
/// And for how long at most.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Read a body of at most `limit` bytes (413 beyond).
async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let unreadable = |e: axum::Error| ApiError::malformed(format!("the request body could not be read: {e}"));
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(unreadable)?.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            let mut drained = buf.len() + data.len();
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                while drained < DRAIN_BYTES {
                    match body.frame().await {
                        Some(Ok(f)) => drained += f.data_ref().map_or(0, Bytes::len),
                        _ => break,
                    }
                }
            })
            .await;
            return Err(ApiError::new(
                413,
                "body_too_large",
                format!("the request body exceeds {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Parse JSON: a syntax error is 400, a well-formed body of the wrong shape 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    // A request body is an object: serde would also read a struct from an array of its fields.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        _ => {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::new(422, "invalid", "the body must be a JSON object"),
                Err(e) => ApiError::new(400, "malformed_json", format!("the body is not valid JSON: {e}")),
            });
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    missing_field(&inner.to_string()).unwrap_or_default()
                } else {
                    path
                };
                let message = etalon_assessment::cut(&inner.to_string(), 300);
                if field.is_empty() {
                    ApiError::new(422, "invalid", message)
                } else {
                    ApiError::invalid(field, message)
                }
            }
            _ => ApiError::new(
                400,
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            ),
        }
    })?;
    // Nothing may follow the value.
    de.end()
        .map_err(|e| ApiError::new(400, "malformed_json", format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_string)
}

async fn json_body<T: DeserializeOwned>(state: &AppState, body: Body) -> ApiResult<T> {
    let bytes = read_body(body, state.max_body).await?;
    parse_json(&bytes)
}

fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

fn typed(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::web::routes(state.max_body))
        .route("/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/banks", post(upload_bank).get(list_banks))
        .route("/v1/banks/{id}", get(get_bank))
        .route("/v1/banks/{id}/responses", get(bank_responses))
        .route("/v1/campaigns", post(create_campaign).get(list_campaigns))
        .route("/v1/campaigns/{id}", get(get_campaign).patch(patch_campaign))
        .route("/v1/campaigns/{id}/report", get(campaign_report))
        .route("/v1/campaigns/{id}/results", get(campaign_results))
        .route("/v1/sessions", post(start_session))
        .route("/v1/sessions/{id}", get(session_status))
        .route("/v1/sessions/{id}/answers", post(answer))
        .route("/v1/sessions/{id}/result", get(session_result))
        .route("/v1/participants/{id}", axum::routing::delete(erase_participant))
        .route("/v1/lti/platforms", post(register_platform))
        .route("/v1/xapi", get(get_lrs).put(put_lrs).delete(delete_lrs))
        .route("/ims/cat/v1p0/sections", post(cat_create_section))
        .route(
            "/ims/cat/v1p0/sections/{id}",
            get(cat_get_section).delete(cat_delete_section),
        )
        .route("/ims/cat/v1p0/sections/{id}/sessions", post(cat_start))
        .route(
            "/ims/cat/v1p0/sections/{id}/sessions/{sid}",
            axum::routing::delete(cat_end),
        )
        .route(
            "/ims/cat/v1p0/sections/{id}/sessions/{sid}/results",
            post(cat_results),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                405,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .with_state(state)
}

/// Register an LTI 1.3 platform (an LMS) for the organisation.
#[utoipa::path(post, path = "/v1/lti/platforms",
    responses((status = 201, description = "`{\"issuer\", \"client_id\", \"deployment_ids\", \"auth_login_url\", \"auth_token_url\", \"jwks_url\", \"created\"}`"),
        (status = 400), (status = 401), (status = 409, description = "`platform_exists`"), (status = 422), (status = 503)))]
async fn register_platform(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    body: Body,
) -> ApiResult<Response> {
    let org = state.service.org(bearer.as_deref()).await?;
    let req: crate::lti::PlatformRequest = json_body(&state, body).await?;
    Ok(created(state.service.register_platform(&org, req).await?))
}

/// A CAT answer: the value with its status, or the standard's status object with the error's.
fn cat_reply(status: StatusCode, r: ApiResult<Option<serde_json::Value>>) -> Response {
    match r {
        Ok(Some(v)) => (status, Json(v)).into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            let code = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut r = (code, Json(crate::cat::status_object(&e))).into_response();
            if e.status == 503 {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            r
        }
    }
}

/// 1EdTech CAT: create a section.
async fn cat_create_section(State(state): State<AppState>, Bearer(bearer): Bearer, body: Body) -> Response {
    let r = async {
        let org = state.service.org(bearer.as_deref()).await?;
        let body: serde_json::Value = json_body(&state, body).await?;
        state.service.cat_create_section(&org, &body).await.map(Some)
    };
    cat_reply(StatusCode::CREATED, r.await)
}

/// 1EdTech CAT: a section's configuration.
async fn cat_get_section(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        let org = state.service.org(bearer.as_deref()).await?;
        state.service.cat_get_section(&org, &id).await.map(Some)
    };
    cat_reply(StatusCode::OK, r.await)
}

/// 1EdTech CAT: delete a section.
async fn cat_delete_section(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        let org = state.service.org(bearer.as_deref()).await?;
        state.service.cat_delete_section(&org, &id).await.map(|()| None)
    };
    cat_reply(StatusCode::NO_CONTENT, r.await)
}

/// 1EdTech CAT: start a session.
async fn cat_start(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let r = async {
        let org = state.service.org(bearer.as_deref()).await?;
        // The body (personal needs, demographics, prior data) is optional and not used.
        read_body(body, state.max_body).await?;
        state.service.cat_start(&org, &id).await.map(Some)
    };
    cat_reply(StatusCode::CREATED, r.await)
}

/// 1EdTech CAT: submit results, get the next items.
async fn cat_results(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    Path((id, sid)): Path<(String, String)>,
    body: Body,
) -> Response {
    let r = async {
        let org = state.service.org(bearer.as_deref()).await?;
        let body: serde_json::Value = json_body(&state, body).await?;
        state.service.cat_results(&org, &id, &sid, &body).await.map(Some)
    };
    cat_reply(StatusCode::OK, r.await)
}

/// 1EdTech CAT: end a session.
async fn cat_end(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    Path((id, sid)): Path<(String, String)>,
) -> Response {
    let r = async {
        let org = state.service.org(bearer.as_deref()).await?;
        state.service.cat_end(&org, &id, &sid).await.map(|()| None)
    };
    cat_reply(StatusCode::NO_CONTENT, r.await)
}

/// Liveness.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
async fn health() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "OpenAPI 3 document")))]
async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BankUploadQuery {
    id: Option<String>,
}

/// Upload a bank (FORMATS JSON, or CSV with `Content-Type: text/csv` and `?id=`).
#[utoipa::path(post, path = "/v1/banks", params(("id" = Option<String>, Query, description = "bank id of a CSV upload")),
    responses((status = 201, description = "`{\"id\", \"version\", \"fingerprint\", \"items\", \"created\"}`"),
        (status = 400), (status = 401), (status = 413), (status = 415), (status = 422, description = "invalid bank: `problems` lists every problem"), (status = 503)))]
async fn upload_bank(
    State(s): State<AppState>,
    bearer: Bearer,
    Q(q): Q<BankUploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let csv = match content_type.as_str() {
        "text/csv" => true,
        "application/json" | "" => false,
        other => {
            return Err(ApiError::new(
                415,
                "unsupported_media_type",
                format!("a bank is `application/json` or `text/csv`, not `{other}`"),
            ));
        }
    };
    let bytes = read_body(body, s.max_body).await?;
    let stored = s.service.upload_bank(&org, &bytes, csv, q.id.as_deref()).await?;
    Ok(created(stored))
}

/// The organisation's banks (latest versions).
#[utoipa::path(get, path = "/v1/banks", responses((status = 200), (status = 401), (status = 503)))]
async fn list_banks(State(s): State<AppState>, bearer: Bearer) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    Ok(Json(s.service.banks(&org).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionQuery {
    version: Option<i64>,
}

/// A bank as FORMATS JSON (latest version, or `?version=N`).
#[utoipa::path(get, path = "/v1/banks/{id}", params(("id" = String, Path), ("version" = Option<i64>, Query)),
    responses((status = 200), (status = 400), (status = 401), (status = 404), (status = 503)))]
async fn get_bank(
    State(s): State<AppState>,
    bearer: Bearer,
    Id(id): Id,
    Q(q): Q<VersionQuery>,
) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    let record = s.service.bank(&org, &id, q.version).await?;
    let mut r = typed("application/json", record.body);
    r.headers_mut().insert(
        "etalon-bank-version",
        HeaderValue::from_str(&record.version.to_string()).unwrap_or(HeaderValue::from_static("0")),
    );
    Ok(r)
}

/// Every stored answer to the bank, as long CSV `person,item,response` (person: the session id),
/// streamed.
#[utoipa::path(get, path = "/v1/banks/{id}/responses", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv"), (status = 401), (status = 404), (status = 503)))]
async fn bank_responses(State(s): State<AppState>, bearer: Bearer, Id(id): Id) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    s.service.bank(&org, &id, None).await?;
    let first = s.service.responses_page(org.id, &id, None).await?;
    let service = s.service.clone();
    let stream = futures_util::stream::unfold(
        (Some(first), true, service, org.id, id),
        |(page, header, service, org, bank)| async move {
            let page = page?;
            let mut chunk = String::new();
            if header {
                chunk.push_str("person,item,response\n");
            }
            let Some(last) = page.last() else {
                return if header {
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(chunk)),
                        (None, false, service, org, bank),
                    ))
                } else {
                    None
                };
            };
            let after = (last.person.clone(), last.position);
            for r in &page {
                chunk.push_str(&csv_field(&r.person));
                chunk.push(',');
                chunk.push_str(&csv_field(&r.item));
                chunk.push(',');
                chunk.push_str(&r.code.to_string());
                chunk.push('\n');
            }
            let next = match service.responses_page(org, &bank, Some(after)).await {
                Ok(p) if p.is_empty() => None,
                Ok(p) => Some(p),
                Err(e) => {
                    return Some((
                        Err(std::io::Error::other(e.to_string())),
                        (None, false, service, org, bank),
                    ));
                }
            };
            Some((Ok(Bytes::from(chunk)), (next, false, service, org, bank)))
        },
    );
    Ok(typed("text/csv; charset=utf-8", Body::from_stream(stream)))
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Create a campaign.
#[utoipa::path(post, path = "/v1/campaigns",
    request_body(content = Object, description = "`{\"name\", \"bank\", \"targets\": [{\"competence\", \"target_level\"}], \"assessment\"?, \"id\"?, \"code\"?, \"bank_version\"?, \"open\"?}`"),
    responses((status = 201, description = "the campaign with its `id` and join `code`"), (status = 400), (status = 401),
        (status = 409), (status = 413), (status = 422), (status = 503)))]
async fn create_campaign(State(s): State<AppState>, bearer: Bearer, body: Body) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    let req: CampaignRequest = json_body(&s, body).await?;
    Ok(created(s.service.create_campaign(&org, req).await?))
}

/// The organisation's campaigns.
#[utoipa::path(get, path = "/v1/campaigns", responses((status = 200), (status = 401), (status = 503)))]
async fn list_campaigns(State(s): State<AppState>, bearer: Bearer) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    Ok(Json(s.service.campaigns(&org).await?).into_response())
}

/// One campaign, with its participation.
#[utoipa::path(get, path = "/v1/campaigns/{id}", params(("id" = String, Path)),
    responses((status = 200), (status = 401), (status = 404), (status = 503)))]
async fn get_campaign(State(s): State<AppState>, bearer: Bearer, Id(id): Id) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    Ok(Json(s.service.campaign(&org, &id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignPatch {
    open: bool,
}

/// Open or close a campaign: `{"open": true|false}`.
#[utoipa::path(patch, path = "/v1/campaigns/{id}", params(("id" = String, Path)), request_body(content = Object, description = "`{\"open\": bool}`"),
    responses((status = 200), (status = 400), (status = 401), (status = 404), (status = 422), (status = 503)))]
async fn patch_campaign(
    State(s): State<AppState>,
    bearer: Bearer,
    Id(id): Id,
    body: Body,
) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    let patch: CampaignPatch = json_body(&s, body).await?;
    Ok(Json(s.service.set_open(&org, &id, patch.open).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatQuery {
    format: Option<String>,
}

impl FormatQuery {
    /// The format asked for, one of `allowed` (the first by default).
    fn format<'a>(&self, allowed: &[&'a str]) -> ApiResult<&'a str> {
        let asked = self.format.as_deref().unwrap_or(allowed[0]);
        allowed
            .iter()
            .find(|f| **f == asked)
            .copied()
            .ok_or_else(|| ApiError::malformed(format!("`format` is one of {}", allowed.join(", "))))
    }
}

/// The campaign report (as `etalon campaign report`); `?format=svg` for the chart.
#[utoipa::path(get, path = "/v1/campaigns/{id}/report", params(("id" = String, Path), ("format" = Option<String>, Query, description = "`json` (default) or `svg`")),
    responses((status = 200), (status = 400), (status = 401), (status = 404), (status = 503)))]
async fn campaign_report(
    State(s): State<AppState>,
    bearer: Bearer,
    Id(id): Id,
    Q(q): Q<FormatQuery>,
) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    let format = q.format(&["json", "svg"])?;
    let (report, chart) = s.service.report(&org, &id).await?;
    Ok(match format {
        "svg" => typed("image/svg+xml", chart),
        _ => Json(report).into_response(),
    })
}

/// The results log (one JSON line per finished participant); `?format=csv` for one row per
/// participant and competence.
#[utoipa::path(get, path = "/v1/campaigns/{id}/results", params(("id" = String, Path), ("format" = Option<String>, Query, description = "`ndjson` (default) or `csv`")),
    responses((status = 200), (status = 400), (status = 401), (status = 404), (status = 503)))]
async fn campaign_results(
    State(s): State<AppState>,
    bearer: Bearer,
    Id(id): Id,
    Q(q): Q<FormatQuery>,
) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    let format = q.format(&["ndjson", "csv"])?;
    let results = s.service.results(&org, &id).await?;
    Ok(if format == "csv" {
        let mut out = Vec::new();
        etalon_assessment::results::write_results_csv(&results, &mut out)
            .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        typed("text/csv; charset=utf-8", out)
    } else {
        let text: String = results
            .iter()
            .map(etalon_assessment::results::result_line)
            .collect();
        typed("application/x-ndjson", text)
    })
}

/// Start a session: `{"campaign_code", "participant"?}` (anyone), or with an organisation key
/// `{"bank", "config"?, "seed"?, "participant"?}`.
#[utoipa::path(post, path = "/v1/sessions",
    request_body(content = Object, description = "`{\"campaign_code\", \"participant\"?}` or `{\"bank\", \"bank_version\"?, \"config\"?, \"seed\"?, \"participant\"?}`"),
    responses((status = 201, description = "`{\"session\", \"token\", \"next\", \"max_items\"}`"), (status = 400), (status = 401),
        (status = 404), (status = 409), (status = 413), (status = 422), (status = 503)))]
async fn start_session(State(s): State<AppState>, bearer: Bearer, body: Body) -> ApiResult<Response> {
    let req: StartRequest = json_body(&s, body).await?;
    let org = match bearer.as_deref() {
        Some(_) if req.bank.is_some() => Some(s.service.org(bearer.as_deref()).await?),
        _ => None,
    };
    Ok(created(s.service.start(org.as_ref(), req).await?))
}

/// Organisation of an org-key bearer; `None` for a session token.
async fn org_or_token(
    s: &AppState,
    bearer: &Bearer,
) -> ApiResult<(Option<crate::storage::Org>, Option<String>)> {
    if bearer.is_org_key() {
        Ok((Some(s.service.org(bearer.as_deref()).await?), None))
    } else {
        Ok((None, bearer.0.clone()))
    }
}

/// Where a session stands: `{"session", "status", "answered", "max_items", "next"}`.
#[utoipa::path(get, path = "/v1/sessions/{id}", params(("id" = String, Path)),
    responses((status = 200), (status = 401), (status = 404), (status = 503)))]
async fn session_status(State(s): State<AppState>, bearer: Bearer, Id(id): Id) -> ApiResult<Response> {
    let (org, token) = org_or_token(&s, &bearer).await?;
    Ok(Json(s.service.status(&id, token.as_deref(), org.as_ref()).await?).into_response())
}

/// Answer the question at `position`: `{"position", "item", "response"}` or `{"position", "item",
/// "choice"}`; idempotent.
#[utoipa::path(post, path = "/v1/sessions/{id}/answers", params(("id" = String, Path)),
    request_body(content = Object, description = "`{\"position\", \"item\", \"response\"}` or `{\"position\", \"item\", \"choice\"}`"),
    responses((status = 200, description = "`{\"next\", \"answered\", \"status\"}`"), (status = 400), (status = 401), (status = 404),
        (status = 409), (status = 413), (status = 422), (status = 503)))]
async fn answer(State(s): State<AppState>, bearer: Bearer, Id(id): Id, body: Body) -> ApiResult<Response> {
    if bearer.0.is_none() {
        return Err(ApiError::unauthorized(
            "missing `Authorization: Bearer SESSION_TOKEN`",
        ));
    }
    let req: AnswerRequest = json_body(&s, body).await?;
    Ok(Json(s.service.answer(&id, bearer.as_deref(), req).await?).into_response())
}

/// A session's result (session token or organisation key).
#[utoipa::path(get, path = "/v1/sessions/{id}/result", params(("id" = String, Path)),
    responses((status = 200), (status = 401), (status = 404), (status = 503)))]
async fn session_result(State(s): State<AppState>, bearer: Bearer, Id(id): Id) -> ApiResult<Response> {
    let (org, token) = org_or_token(&s, &bearer).await?;
    Ok(Json(s.service.result(&id, token.as_deref(), org.as_ref()).await?).into_response())
}

/// Erase a participant's sessions, answers and results.
#[utoipa::path(delete, path = "/v1/participants/{id}", params(("id" = String, Path, description = "external participant id")),
    responses((status = 204), (status = 401), (status = 404), (status = 503)))]
async fn erase_participant(State(s): State<AppState>, bearer: Bearer, Id(id): Id) -> ApiResult<Response> {
    let org = s.service.org(bearer.as_deref()).await?;
    s.service.erase(&org, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Configure the organisation's Learning Record Store: answers and completions become xAPI statements.
#[utoipa::path(put, path = "/v1/xapi",
    responses((status = 200, description = "`{\"endpoint\", \"username\", \"homepage\", \"created\", \"statements\"}` (never the password)"),
        (status = 400), (status = 401), (status = 422), (status = 503)))]
async fn put_lrs(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    ctx: crate::web::Ctx,
    body: Body,
) -> ApiResult<Response> {
    let org = state.service.org(bearer.as_deref()).await?;
    let req: crate::xapi::LrsRequest = json_body(&state, body).await?;
    Ok(Json(state.service.configure_lrs(&org, req, &ctx.origin).await?).into_response())
}

/// The organisation's Learning Record Store and where its statements stand.
#[utoipa::path(get, path = "/v1/xapi",
    responses((status = 200, description = "`{\"endpoint\", \"username\", \"homepage\", \"created\", \"statements\": {\"sessions_completed\", \"sessions_open\", \"answers_sent\", \"failing\"}}`"),
        (status = 401), (status = 404), (status = 503)))]
async fn get_lrs(State(state): State<AppState>, Bearer(bearer): Bearer) -> ApiResult<Response> {
    let org = state.service.org(bearer.as_deref()).await?;
    Ok(Json(state.service.lrs(&org).await?).into_response())
}

/// Stop sending statements (what is unsent waits for the next LRS configured).
#[utoipa::path(delete, path = "/v1/xapi", responses((status = 204), (status = 401), (status = 404), (status = 503)))]
async fn delete_lrs(State(state): State<AppState>, Bearer(bearer): Bearer) -> ApiResult<Response> {
    let org = state.service.org(bearer.as_deref()).await?;
    state.service.remove_lrs(&org).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Etalon",
        description = "Adaptive competence assessment service (docs/FORMATS.md, HTTP service)"
    ),
    paths(
        health,
        openapi,
        upload_bank,
        list_banks,
        get_bank,
        bank_responses,
        create_campaign,
        list_campaigns,
        get_campaign,
        patch_campaign,
        campaign_report,
        campaign_results,
        start_session,
        session_status,
        answer,
        session_result,
        erase_participant,
        register_platform,
        get_lrs,
        put_lrs,
        delete_lrs
    )
)]
pub struct ApiDoc;
