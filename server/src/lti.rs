//! LTI 1.3 (1EdTech Learning Tools Interoperability, core launch): an LMS such as Moodle registers
//! Etalon as an external tool, and a learner opens a campaign from a course without a second login.
//!
//! The flow (1EdTech Security Framework 1.0, OIDC third-party-initiated login):
//! 1. the platform sends the browser to `/lti/login` with its `iss`, a `login_hint` and the
//!    `target_link_uri`; the tool records a random `state` and `nonce` (each usable once, 10 minutes)
//!    and redirects to the platform's OIDC authorisation endpoint;
//! 2. the platform posts a signed `id_token` and the `state` to `/lti/launch`; the tool takes the
//!    state (deleting it: a replay finds nothing), then validates the token with `jsonwebtoken` — RS256
//!    signature against the platform's JWKS (fetched, cached, fetched again when a token names a key
//!    it does not know: key rotation), `iss`, `aud` (the client id), `azp`, `exp` and `iat` with one
//!    minute of leeway, the `nonce`, the deployment id, the message type and the LTI version;
//! 3. the learner's session in the campaign named by the resource link's custom parameter
//!    `campaign` is started — or, when they launch again, resumed under a new token — with the
//!    participant id `SUB@ISSUER`, and the browser goes to the question page.
//!
//! `/lti/jwks` publishes the tool's public keys (RS256, generated once per database and kept in it),
//! which Deep Linking responses and grade passback sign with. No cryptography is written here: keys,
//! signatures and JWK sets are the `rsa` and `jsonwebtoken` crates'.

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::service::{Service, StartRequest, check_id};
use crate::storage::{LtiLogin, LtiPlatform, Org, now_ms};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a login's state and nonce wait for the launch.
const LOGIN_TTL_MS: i64 = 10 * 60 * 1000;
/// Clock skew allowed on `exp` and `iat`, in seconds.
const LEEWAY_S: u64 = 60;
/// A platform's key set is fetched again after this long.
const JWKS_TTL: Duration = Duration::from_secs(600);
/// … or when a token names a key the cached set lacks, at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(2);

/// The LTI claims' names.
const CLAIM: &str = "https://purl.imsglobal.org/spec/lti/claim/";

/// This process's LTI state: the platforms' key sets it fetched, its HTTP client.
pub struct Lti {
    pub(crate) http: reqwest::Client,
    jwks: Mutex<HashMap<String, (Instant, JwkSet)>>,
    /// Access tokens for grade passback, per (issuer, client id), with when they stop being used.
    pub(crate) tokens: Mutex<HashMap<(String, String), (Instant, String)>>,
    /// The first delay before a failed grade or statement delivery is tried again (then doubling).
    pub(crate) first_backoff_ms: std::sync::atomic::AtomicI64,
    /// The tool's keys once read (they never change once created: no query per signature).
    keys: Mutex<Option<Vec<(String, String)>>>,
}

impl Default for Lti {
    fn default() -> Self {
        // reqwest's TLS (rustls) takes its cryptography from the process-wide provider: ring.
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Lti {
            http,
            jwks: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            first_backoff_ms: std::sync::atomic::AtomicI64::new(crate::outbox::FIRST_BACKOFF_MS),
            keys: Mutex::new(None),
        }
    }
}

/// `POST /v1/lti/platforms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformRequest {
    /// The platform's issuer (`iss` of its tokens), e.g. `https://moodle.example.org`.
    pub issuer: String,
    /// The client id the platform gave the tool.
    pub client_id: String,
    /// Deployment ids that may launch.
    pub deployment_ids: Vec<String>,
    /// OIDC authorisation endpoint (Moodle: `/mod/lti/auth.php`).
    pub auth_login_url: String,
    /// OAuth 2 token endpoint (Moodle: `/mod/lti/token.php`).
    pub auth_token_url: String,
    /// Public keyset URL (Moodle: `/mod/lti/certs.php`).
    pub jwks_url: String,
}

/// `GET|POST /lti/login` parameters (third-party-initiated login).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoginRequest {
    /// The platform's issuer.
    pub iss: Option<String>,
    /// Opaque user hint, passed back.
    pub login_hint: Option<String>,
    /// Where the launch should end.
    pub target_link_uri: Option<String>,
    /// Opaque message hint, passed back.
    pub lti_message_hint: Option<String>,
    /// The client id (needed when several registrations share an issuer).
    pub client_id: Option<String>,
    /// The deployment (checked at launch).
    pub lti_deployment_id: Option<String>,
}

/// `POST /lti/launch` form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaunchForm {
    /// The signed OIDC id_token.
    pub id_token: Option<String>,
    /// The state given at login.
    pub state: Option<String>,
    /// Set by platforms when the user refused or something failed.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

/// A validated launch, its session opened.
#[derive(Debug, Clone)]
pub struct Launched {
    /// Session id.
    pub session: String,
    /// A new session token (for the participant's cookie).
    pub token: String,
    /// The participant id (`SUB@ISSUER`).
    pub participant: String,
    /// Whether the session existed (a relaunch).
    pub resumed: bool,
}

/// The claims of an LTI resource link launch that Etalon reads (the rest are ignored).
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    nonce: Option<String>,
    iat: Option<i64>,
    azp: Option<String>,
    #[serde(default)]
    aud: Audience,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti/claim/message_type")]
    message_type: Option<String>,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti/claim/version")]
    version: Option<String>,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti/claim/deployment_id")]
    deployment_id: Option<String>,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti/claim/custom", default)]
    custom: HashMap<String, serde_json::Value>,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint")]
    ags: Option<AgsEndpoint>,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings")]
    deep_linking: Option<DeepLinkingSettings>,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti/claim/roles", default)]
    roles: Vec<String>,
}

/// The Deep Linking settings of a deep linking request.
#[derive(Debug, Deserialize)]
struct DeepLinkingSettings {
    deep_link_return_url: String,
    data: Option<String>,
}

/// The claims' prefix of Deep Linking 2.0.
const DL_CLAIM: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";

/// A validated deep linking request: where to send the teacher's choice. It travels through the
/// choice page as a JWT signed with the tool's key, so the page's form cannot be forged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeepLinkContext {
    /// The organisation whose campaigns are offered.
    pub org: i64,
    /// Platform issuer.
    pub issuer: String,
    /// Platform client id.
    pub client_id: String,
    /// The deployment.
    pub deployment_id: String,
    /// Where the response goes.
    pub return_url: String,
    /// Opaque data to send back.
    pub data: Option<String>,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

/// What a launch opens.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A learner's session.
    Resource(Launched),
    /// A teacher's choice of a campaign for the course.
    DeepLinking(DeepLinkContext),
}

/// The AGS endpoint claim of a launch.
#[derive(Debug, Deserialize)]
struct AgsEndpoint {
    lineitem: Option<String>,
    #[serde(default)]
    scope: Vec<String>,
}

/// `aud`: one string or several.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(#[allow(dead_code)] String),
    Many(Vec<String>),
}

impl Audience {
    fn len(&self) -> usize {
        match self {
            Audience::None => 0,
            Audience::One(_) => 1,
            Audience::Many(v) => v.len(),
        }
    }
}

fn bad_launch(message: impl Into<String>) -> ApiError {
    ApiError::new(401, "lti_launch_refused", message)
}

/// A return URL: https, or http on this machine.
fn check_url_any(value: &str) -> ApiResult<()> {
    check_url("deep_link_return_url", value)
}

/// A URL a platform gives for its endpoints: https, or http on this machine (tests, a local Moodle).
pub(crate) fn check_url(field: &str, value: &str) -> ApiResult<()> {
    let url = url::Url::parse(value)
        .map_err(|e| ApiError::invalid(field, format!("`{field}` is not a URL: {e}")))?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() == "https" || (url.scheme() == "http" && local) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("`{field}` must be an https URL (http only on localhost)"),
        ))
    }
}

impl Service {
    /// Register an LTI 1.3 platform for the organisation.
    pub async fn register_platform(&self, org: &Org, req: PlatformRequest) -> ApiResult<LtiPlatform> {
        check_id("issuer", &req.issuer)?;
        check_id("client_id", &req.client_id)?;
        if req.deployment_ids.is_empty() {
            return Err(ApiError::invalid(
                "deployment_ids",
                "give at least one deployment id",
            ));
        }
        for d in &req.deployment_ids {
            check_id("deployment_ids", d)?;
        }
        for (field, value) in [
            ("auth_login_url", &req.auth_login_url),
            ("auth_token_url", &req.auth_token_url),
            ("jwks_url", &req.jwks_url),
        ] {
            check_url(field, value)?;
        }
        let platform = LtiPlatform {
            org: org.id,
            issuer: req.issuer,
            client_id: req.client_id,
            deployment_ids: req.deployment_ids,
            auth_login_url: req.auth_login_url,
            auth_token_url: req.auth_token_url,
            jwks_url: req.jwks_url,
            created: now_ms(),
        };
        match self.store.put_lti_platform(&platform).await {
            Err(crate::storage::StorageError::Conflict(_)) => Err(ApiError::conflict(
                "platform_exists",
                "this issuer and client id are already registered",
            )),
            r => r.map(|()| platform).map_err(Into::into),
        }
    }

    /// The platform a login or launch names (its issuer, and client id when given).
    async fn platform(&self, issuer: &str, client_id: Option<&str>) -> ApiResult<LtiPlatform> {
        let mut found = self.store.lti_platforms(issuer).await?;
        if let Some(c) = client_id {
            found.retain(|p| p.client_id == c);
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(bad_launch(format!("no LTI platform `{issuer}` is registered"))),
            _ => Err(ApiError::invalid(
                "client_id",
                "several registrations share this issuer: the login must give `client_id`",
            )),
        }
    }

    /// OIDC login initiation: the URL to send the browser to (the platform's authorisation endpoint
    /// with a new `state` and `nonce`). `redirect_uri` is this tool's launch URL.
    pub async fn lti_login(&self, req: LoginRequest, redirect_uri: &str) -> ApiResult<String> {
        let iss = req
            .iss
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid("iss", "missing `iss`"))?;
        let login_hint = req
            .login_hint
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid("login_hint", "missing `login_hint`"))?;
        if req.target_link_uri.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::invalid("target_link_uri", "missing `target_link_uri`"));
        }
        let platform = self.platform(&iss, req.client_id.as_deref()).await?;
        if let Some(d) = &req.lti_deployment_id
            && !platform.deployment_ids.contains(d)
        {
            return Err(bad_launch(format!("deployment `{d}` is not registered")));
        }
        let login = LtiLogin {
            state: auth::new_token(),
            nonce: auth::new_token(),
            issuer: platform.issuer.clone(),
            client_id: platform.client_id.clone(),
            expires: now_ms() + LOGIN_TTL_MS,
        };
        self.store.create_lti_login(&login).await?;
        let mut url = url::Url::parse(&platform.auth_login_url)
            .map_err(|e| ApiError::invalid("auth_login_url", e.to_string()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("scope", "openid")
                .append_pair("response_type", "id_token")
                .append_pair("response_mode", "form_post")
                .append_pair("prompt", "none")
                .append_pair("client_id", &platform.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("login_hint", &login_hint)
                .append_pair("state", &login.state)
                .append_pair("nonce", &login.nonce);
            if let Some(h) = &req.lti_message_hint {
                q.append_pair("lti_message_hint", h);
            }
        }
        Ok(url.into())
    }

    /// Validate a launch and open the learner's session (see the module documentation).
    pub async fn lti_launch(&self, form: LaunchForm) -> ApiResult<Launch> {
        if let Some(e) = form.error {
            return Err(bad_launch(format!(
                "the platform refused the launch: {e} {}",
                form.error_description.unwrap_or_default()
            )));
        }
        let state = form.state.ok_or_else(|| bad_launch("missing `state`"))?;
        let token = form.id_token.ok_or_else(|| bad_launch("missing `id_token`"))?;
        let login = self
            .store
            .take_lti_login(&state, now_ms())
            .await?
            .ok_or_else(|| bad_launch("unknown, expired or already used `state`"))?;
        let platform = self.platform(&login.issuer, Some(&login.client_id)).await?;
        let header = jsonwebtoken::decode_header(&token).map_err(|e| bad_launch(format!("id_token: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad_launch(format!(
                "id_token: algorithm {:?}, expected RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| bad_launch("id_token: no `kid` in its header"))?;
        let key = self.platform_key(&platform.jwks_url, &kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_S;
        validation.set_issuer(&[&platform.issuer]);
        validation.set_audience(&[&platform.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(&token, &key, &validation)
            .map_err(|e| bad_launch(format!("id_token: {e}")))?
            .claims;
        let now_s = now_ms() / 1000;
        match claims.iat {
            Some(iat) if iat <= now_s + LEEWAY_S as i64 => {}
            _ => return Err(bad_launch("id_token: `iat` is in the future")),
        }
        if claims.nonce.as_deref() != Some(login.nonce.as_str()) {
            return Err(bad_launch("id_token: the nonce is not the one this login sent"));
        }
        if (claims.aud.len() > 1 || claims.azp.is_some())
            && claims.azp.as_deref() != Some(platform.client_id.as_str())
        {
            return Err(bad_launch("id_token: `azp` is not this tool's client id"));
        }
        let deployment = claims
            .deployment_id
            .ok_or_else(|| bad_launch(format!("id_token: missing {CLAIM}deployment_id")))?;
        if !platform.deployment_ids.contains(&deployment) {
            return Err(bad_launch(format!("deployment `{deployment}` is not registered")));
        }
        let deep_linking = match claims.message_type.as_deref() {
            Some("LtiResourceLinkRequest") => false,
            Some("LtiDeepLinkingRequest") => true,
            other => {
                return Err(bad_launch(format!(
                    "message type {other:?} is not supported (LtiResourceLinkRequest, LtiDeepLinkingRequest)"
                )));
            }
        };
        if claims.version.as_deref() != Some("1.3.0") {
            return Err(bad_launch(format!(
                "LTI version {:?}, expected 1.3.0",
                claims.version
            )));
        }
        if deep_linking {
            let settings = claims
                .deep_linking
                .ok_or_else(|| bad_launch(format!("id_token: missing {DL_CLAIM}deep_linking_settings")))?;
            check_url_any(&settings.deep_link_return_url).map_err(|e| bad_launch(e.message))?;
            let teaches = claims.roles.iter().any(|r| {
                ["#Instructor", "#Administrator", "#ContentDeveloper"]
                    .iter()
                    .any(|role| r.ends_with(role))
            });
            if !teaches {
                return Err(ApiError::new(
                    403,
                    "lti_role",
                    "choosing an assessment for a course is for its teachers",
                ));
            }
            return Ok(Launch::DeepLinking(DeepLinkContext {
                org: platform.org,
                issuer: platform.issuer,
                client_id: platform.client_id,
                deployment_id: deployment,
                return_url: settings.deep_link_return_url,
                data: settings.data,
                exp: now_s + 3600,
            }));
        }
        let sub = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad_launch("anonymous launch: no `sub`"))?;
        let campaign_id = claims
            .custom
            .get("campaign")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                ApiError::invalid(
                    "campaign",
                    "the resource link has no custom parameter `campaign` (set `campaign=CAMPAIGN_ID` in the activity)",
                )
            })?
            .to_string();
        check_id("campaign", &campaign_id)?;
        let campaign = self
            .store
            .get_campaign(platform.org, &campaign_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("campaign `{campaign_id}`")))?;
        let mut participant = format!("{sub}@{}", platform.issuer);
        if check_id("participant", &participant).is_err() {
            participant = format!("lti-{}", &auth::hash(&participant)[..32]);
        }
        let started = self
            .start(
                None,
                StartRequest {
                    campaign_code: Some(campaign.code.clone()),
                    participant: Some(participant.clone()),
                    ..StartRequest::default()
                },
            )
            .await;
        let launched = match started {
            Ok(s) => Launched {
                session: s.session,
                token: s.token,
                participant,
                resumed: false,
            },
            Err(e) if e.code == "participant_exists" => {
                let token = auth::new_token();
                let session = self
                    .store
                    .rekey_session(platform.org, &campaign.id, &participant, &auth::hash(&token))
                    .await?
                    .ok_or_else(|| {
                        ApiError::conflict(
                            "participant_exists",
                            "the session was erased meanwhile; launch again",
                        )
                    })?;
                Launched {
                    session,
                    token,
                    participant,
                    resumed: true,
                }
            }
            Err(e) => return Err(e),
        };
        // Grade passback: where the score goes when the session ends.
        if let Some(AgsEndpoint {
            lineitem: Some(lineitem),
            scope,
        }) = claims.ags
            && scope.iter().any(|s| s == crate::ags::SCORE_SCOPE)
        {
            crate::ags::scores_url(&lineitem)?;
            let score_maximum = self.score_maximum(&launched.session, &campaign.spec).await?;
            self.store
                .put_lti_grade(&crate::storage::LtiGrade {
                    session: launched.session.clone(),
                    issuer: platform.issuer.clone(),
                    client_id: platform.client_id.clone(),
                    lineitem,
                    user_id: sub,
                    score_maximum,
                })
                .await?;
        }
        Ok(Launch::Resource(launched))
    }

    /// The context of a deep linking request, signed for the choice page.
    pub async fn sign_deep_link_context(&self, ctx: &DeepLinkContext) -> ApiResult<String> {
        let (kid, key) = self.tool_signing_key().await?;
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, ctx, &key).map_err(|e| ApiError::new(500, "internal", e.to_string()))
    }

    /// The teacher's choice: the campaign offered to the platform as an LTI resource link, in a signed
    /// `LtiDeepLinkingResponse` (returned with the URL to post it to).
    pub async fn deep_link_response(
        &self,
        context: &str,
        campaign: &str,
        launch_url: &str,
    ) -> ApiResult<(String, String)> {
        let set = self.tool_jwks().await?;
        let kid = jsonwebtoken::decode_header(context)
            .ok()
            .and_then(|h| h.kid)
            .ok_or_else(|| bad_launch("the choice form was not made by this tool"))?;
        let jwk = set
            .find(&kid)
            .ok_or_else(|| bad_launch("the choice form was not made by this tool"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let ctx = jsonwebtoken::decode::<DeepLinkContext>(context, &key, &validation)
            .map_err(|e| bad_launch(format!("the choice form: {e}")))?
            .claims;
        check_id("campaign", campaign)?;
        let rec = self
            .store
            .get_campaign(ctx.org, campaign)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("campaign `{campaign}`")))?;
        let maximum = {
            let c: etalon_assessment::Campaign =
                serde_json::from_str(&rec.spec).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
            let bank = Service::parse_bank(
                &self
                    .store
                    .get_bank(ctx.org, &rec.bank, Some(rec.bank_version))
                    .await?
                    .ok_or_else(|| ApiError::not_found("bank"))?,
            )?;
            let levels = bank.levels().cloned().unwrap_or_default();
            c.targets()
                .iter()
                .map(|t| levels.for_competence(&t.competence).max_score())
                .sum::<f64>()
        };
        let now = now_ms() / 1000;
        let mut claims = serde_json::json!({
            "iss": ctx.client_id, "aud": ctx.issuer, "iat": now, "exp": now + 600, "nonce": auth::new_id(),
            "https://purl.imsglobal.org/spec/lti/claim/deployment_id": ctx.deployment_id,
            "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiDeepLinkingResponse",
            "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
            "https://purl.imsglobal.org/spec/lti-dl/claim/content_items": [{
                "type": "ltiResourceLink",
                "title": rec.name,
                "url": launch_url,
                "custom": {"campaign": rec.id},
                "lineItem": {"scoreMaximum": maximum, "label": rec.name},
            }],
        });
        if let Some(data) = &ctx.data {
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] = serde_json::json!(data);
        }
        let (kid, key) = self.tool_signing_key().await?;
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        let jwt = jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        Ok((ctx.return_url, jwt))
    }

    /// The campaigns a deep linking teacher may choose from.
    pub async fn deep_link_campaigns(&self, org: i64) -> ApiResult<Vec<crate::storage::CampaignRecord>> {
        Ok(self.store.list_campaigns(org).await?)
    }

    /// The most points a session of a campaign can score: the sum of its competences' maxima.
    async fn score_maximum(&self, session: &str, spec: &str) -> ApiResult<f64> {
        let row = self
            .store
            .get_session(session)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("session `{session}`")))?;
        let assessor = self
            .assessor(row.org, &row.bank, row.bank_version, &row.design)
            .await?;
        let campaign: etalon_assessment::Campaign =
            serde_json::from_str(spec).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        Ok(campaign
            .targets()
            .iter()
            .map(|t| assessor.levels().for_competence(&t.competence).max_score())
            .sum())
    }

    /// The platform's key `kid`, from its cached key set, fetched again when it is old or lacks the key.
    async fn platform_key(&self, jwks_url: &str, kid: &str) -> ApiResult<DecodingKey> {
        let cached = self.lti.jwks.lock().ok().and_then(|m| m.get(jwks_url).cloned());
        let usable = |set: &JwkSet| set.find(kid).map(DecodingKey::from_jwk);
        if let Some((at, set)) = &cached {
            let fresh = at.elapsed() < JWKS_TTL;
            if fresh && let Some(k) = usable(set) {
                return k.map_err(|e| bad_launch(format!("platform key `{kid}`: {e}")));
            }
            if at.elapsed() < JWKS_REFETCH {
                return Err(bad_launch(format!("the platform publishes no key `{kid}`")));
            }
        }
        let set: JwkSet = self
            .lti
            .http
            .get(jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| {
                ApiError::new(
                    502,
                    "platform_unreachable",
                    format!("fetching the platform's keys: {e}"),
                )
            })?
            .json()
            .await
            .map_err(|e| {
                ApiError::new(
                    502,
                    "platform_unreachable",
                    format!("the platform's key set: {e}"),
                )
            })?;
        let key = usable(&set);
        if let Ok(mut m) = self.lti.jwks.lock() {
            m.insert(jwks_url.to_string(), (Instant::now(), set));
        }
        key.ok_or_else(|| bad_launch(format!("the platform publishes no key `{kid}`")))?
            .map_err(|e| bad_launch(format!("platform key `{kid}`: {e}")))
    }

    /// The tool's signing keys (created on first use: RSA 2048, kept in the database).
    async fn tool_keys(&self) -> ApiResult<Vec<(String, String)>> {
        if let Some(keys) = self.lti.keys.lock().ok().and_then(|k| k.clone()) {
            return Ok(keys);
        }
        let mut keys = self.store.tool_keys().await?;
        if keys.is_empty() {
            keys = self.create_tool_key().await?;
        }
        if let Ok(mut cached) = self.lti.keys.lock() {
            *cached = Some(keys.clone());
        }
        Ok(keys)
    }

    /// Create the tool's key (RSA 2048); returns the keys then stored.
    async fn create_tool_key(&self) -> ApiResult<Vec<(String, String)>> {
        let pem = tokio::task::spawn_blocking(|| {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
            Ok::<_, rsa::Error>(key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)?.to_string())
        })
        .await
        .map_err(|e| ApiError::new(500, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(500, "internal", format!("generating the tool's key: {e}")))?;
        self.store.add_tool_key(&auth::new_id()[..16], &pem).await?;
        // Another process may have added one at the same time: everyone uses the oldest.
        Ok(self.store.tool_keys().await?)
    }

    /// The tool's signing key (the oldest) and its kid.
    pub async fn tool_signing_key(&self) -> ApiResult<(String, EncodingKey)> {
        let keys = self.tool_keys().await?;
        let (kid, pem) = keys
            .first()
            .ok_or_else(|| ApiError::new(500, "internal", "no tool key"))?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        Ok((kid.clone(), key))
    }

    /// `GET /lti/jwks`: the tool's public keys.
    pub async fn tool_jwks(&self) -> ApiResult<JwkSet> {
        let mut keys = Vec::new();
        for (kid, pem) in self.tool_keys().await? {
            let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
            let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
                .map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
            jwk.common.key_id = Some(kid);
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
            keys.push(jwk);
        }
        Ok(JwkSet { keys })
    }
}
