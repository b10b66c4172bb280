//! The service's operations, independent of HTTP: what the v1 API (and the LMS endpoints) call.
//!
//! A session is stored as its seed, design and bank version plus the append-only log of its answers;
//! its state is the application layer's [`Assessment`] replayed from them. Each process keeps the
//! states it has built in memory, keyed by session, and trusts one only while the log still has the
//! number of answers it was built from — another process on the same PostgreSQL may have recorded one
//! since, and the next request then replays the log. Answers to one session are serialised twice over:
//! by a per-session lock inside a process, and by the log's unique (session, position) key across
//! processes; the loser of a race learns what was recorded and answers as for a replay.

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::storage::{
    AnswerRecord, Appended, BankRecord, CampaignRecord, Org, OrgId, Participation, ResponseRow,
    SessionRecord, Storage, now_ms,
};
use etalon_assessment::campaign::{self, Campaign, CampaignDesign, CampaignSpec, ParticipantResult, Target};
use etalon_assessment::chart::ProfileBar;
use etalon_assessment::{
    Assessment, AssessmentError, AssessmentResult, Assessor, Design, Feedback, ItemView, Response,
};
use etalon_engine::profile::ProfileConfig;
use etalon_items::Bank;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most characters of an id (bank, campaign, participant, item).
pub const MAX_ID_CHARS: usize = 200;
/// How long a sign-in to the organisation pages lasts, in days.
pub const LOGIN_DAYS: i64 = 7;
/// How many session states a process keeps in memory before it drops idle ones.
const MAX_LIVE_SESSIONS: usize = 200_000;

/// A session's state as this process last built it.
struct Live {
    org: OrgId,
    /// Whether the session's campaign gives immediate feedback.
    feedback: bool,
    participant: Option<String>,
    assessor: Arc<Assessor>,
    answers: Vec<AnswerRecord>,
    assessment: Assessment,
}

type Slot = Arc<tokio::sync::Mutex<Option<Live>>>;

/// Assessors by (organisation, bank, bank version, design JSON).
type AssessorKey = (OrgId, String, i64, String);

/// The service: storage plus this process's caches (assessors per bank version and design, session
/// states). Everything it caches can be rebuilt from storage.
pub struct Service {
    /// The database.
    pub store: Arc<dyn Storage>,
    assessors: Mutex<HashMap<AssessorKey, Arc<Assessor>>>,
    sessions: Mutex<HashMap<String, Slot>>,
    /// LTI: the platforms' key sets fetched, the HTTP client.
    pub(crate) lti: crate::lti::Lti,
}

/// `POST /v1/campaigns`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignRequest {
    /// Id (generated when absent).
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Bank id (its latest version, unless `bank_version`).
    pub bank: String,
    /// Bank version.
    pub bank_version: Option<i64>,
    /// Target level per competence.
    pub targets: Vec<Target>,
    /// Assessment settings (a competence profile).
    pub assessment: Option<ProfileConfig>,
    /// The test participants take: `auto` (default: multidimensional on a bank with a latent
    /// structure, else profile), `profile`, `multidimensional` or `general`. Recorded resolved.
    pub design: Option<CampaignDesign>,
    /// Correlation of simulated participants (campaign files carry it; unused by live sessions).
    pub simulated_correlation: Option<f64>,
    /// Join code (generated when absent): 4 to 32 letters, digits or `-`, case-insensitive.
    pub code: Option<String>,
    /// Whether participants may join now (default true).
    pub open: Option<bool>,
    /// Immediate feedback after each answer: right or wrong, and the tutorials (default false).
    pub feedback: Option<bool>,
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// A campaign's join code.
    pub campaign_code: Option<String>,
    /// External participant id (employee number, LMS user id).
    pub participant: Option<String>,
    /// Bank id (with an organisation key, instead of a campaign code).
    pub bank: Option<String>,
    /// Bank version (default: latest).
    pub bank_version: Option<i64>,
    /// Design: `{"profile": …}`, `{"adaptive": …}` or a plain session configuration.
    pub config: Option<serde_json::Value>,
    /// Seed of every random choice (default: drawn).
    pub seed: Option<u64>,
}

/// `POST /v1/sessions/{id}/answers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// 1-based position of the question answered.
    pub position: i64,
    /// The item answered (the one offered at that position).
    pub item: String,
    /// A response code.
    pub response: Option<i64>,
    /// A chosen option (0-based).
    pub choice: Option<i64>,
}

/// A bank stored.
#[derive(Debug, Clone, Serialize)]
pub struct BankStored {
    /// Bank id.
    pub id: String,
    /// Its version.
    pub version: i64,
    /// Fingerprint.
    pub fingerprint: String,
    /// Number of items.
    pub items: i64,
    /// Whether this upload made a new version (false: identical to the latest).
    pub created: bool,
}

/// A campaign as the organisation sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    /// Id.
    pub id: String,
    /// Join code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Bank id and the version its sessions run on.
    pub bank: String,
    /// Bank version.
    pub bank_version: i64,
    /// Whether participants may join.
    pub open: bool,
    /// Sessions started and finished.
    pub participation: Participation,
    /// The campaign (targets and assessment settings).
    pub campaign: serde_json::Value,
}

/// A session just started.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// Session id.
    pub session: String,
    /// Bearer token for the session's endpoints (shown once).
    pub token: String,
    /// First question (`null` if there is none).
    pub next: Option<ItemView>,
    /// Most questions this session can ask.
    pub max_items: usize,
}

/// Where a session stands.
#[derive(Debug, Clone, Serialize)]
pub struct SessionStatus {
    /// Session id.
    pub session: String,
    /// `in_progress` or `finished`.
    pub status: &'static str,
    /// Answers recorded.
    pub answered: usize,
    /// Most questions this session can ask.
    pub max_items: usize,
    /// The question to answer now.
    pub next: Option<ItemView>,
}

/// The answer to an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answered {
    /// The next question (`null` when the session is finished).
    pub next: Option<ItemView>,
    /// Answers recorded.
    pub answered: usize,
    /// `in_progress` or `finished`.
    pub status: &'static str,
    /// Right or wrong and the tutorials, when the session's campaign gives immediate feedback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
}

/// A session's result.
#[derive(Debug, Clone, Serialize)]
pub struct SessionResult {
    /// Session id.
    pub session: String,
    /// `in_progress` or `finished`.
    pub status: &'static str,
    /// The result (final once finished).
    #[serde(flatten)]
    pub result: AssessmentResult,
}

fn status(finished: bool) -> &'static str {
    if finished { "finished" } else { "in_progress" }
}

/// Check an id given in a request: 1 to [`MAX_ID_CHARS`] characters, none of them a control character.
pub fn check_id(field: &str, id: &str) -> ApiResult<()> {
    if id.is_empty() {
        return Err(ApiError::invalid(field, format!("`{field}` must not be empty")));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` is longer than {MAX_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` contains a control character"),
        ));
    }
    Ok(())
}

fn internal(what: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %what, "stored data cannot be used");
    ApiError::new(
        500,
        "internal",
        "stored data cannot be used; the operator has been told",
    )
}

/// An application-layer refusal of an answer, as a 422 naming the field.
fn refused(e: AssessmentError) -> ApiError {
    let field = match &e {
        AssessmentError::NoSuchChoice { .. } | AssessmentError::NoChoices(_) => "choice",
        _ => "response",
    };
    ApiError::invalid(field, e.to_string())
}

impl Service {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Storage>) -> Self {
        Service {
            store,
            assessors: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            lti: crate::lti::Lti::default(),
        }
    }

    /// The organisation an `Authorization: Bearer KEY` value names.
    pub async fn org(&self, bearer: Option<&str>) -> ApiResult<Org> {
        let key = bearer.ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer ORG_KEY`"))?;
        if !key.starts_with(auth::KEY_PREFIX) {
            return Err(ApiError::unauthorized("not an organisation key"));
        }
        self.store
            .org_by_key(&auth::hash(key))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown organisation key"))
    }

    /// Sign in to the organisation pages with the organisation key: a new random sign-in token (for
    /// an HttpOnly cookie), stored hashed, valid for [`LOGIN_DAYS`] days.
    pub async fn sign_in(&self, key: &str) -> ApiResult<(Org, String)> {
        let org = self.org(Some(key.trim())).await?;
        let token = auth::new_token();
        let expires = now_ms() + LOGIN_DAYS * 86_400_000;
        self.store
            .create_login(&auth::hash(&token), org.id, expires)
            .await?;
        Ok((org, token))
    }

    /// The organisation a sign-in token opens, if it is valid.
    pub async fn signed_in(&self, token: &str) -> ApiResult<Option<Org>> {
        Ok(self.store.org_by_login(&auth::hash(token), now_ms()).await?)
    }

    /// Forget a sign-in token.
    pub async fn sign_out(&self, token: &str) -> ApiResult<()> {
        Ok(self.store.delete_login(&auth::hash(token)).await?)
    }

    /// Create an organisation; returns it and its key (shown once).
    pub async fn create_org(&self, name: &str) -> ApiResult<(Org, String)> {
        check_id("name", name)?;
        let key = auth::new_key();
        match self.store.create_org(name, &auth::hash(&key)).await {
            Ok(org) => Ok((org, key)),
            Err(crate::storage::StorageError::Conflict(_)) => Err(ApiError::conflict(
                "organisation_exists",
                format!("an organisation named `{name}` already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// On an empty database: the `demo` organisation with the example bank and campaign (code
    /// `DEMO`). Returns its key when it was created now.
    pub async fn ensure_demo(&self) -> ApiResult<Option<String>> {
        if self.store.org_count().await? > 0 {
            return Ok(None);
        }
        let (org, key) = match self.create_org("demo").await {
            Ok(x) => x,
            // Another process created it first.
            Err(e) if e.status == 409 => return Ok(None),
            Err(e) => return Err(e),
        };
        let bank = etalon_items::example::example_bank();
        let stored = self.store_bank(org.id, &bank).await?;
        let spec = etalon_assessment::presets::example_campaign().spec().clone();
        self.create_campaign(
            &org,
            CampaignRequest {
                id: Some(spec.id),
                name: spec.name,
                bank: stored.id,
                bank_version: Some(stored.version),
                targets: spec.targets,
                // A short profile (1 to 2 questions per competence): a newcomer finishes in minutes.
                assessment: Some(etalon_assessment::presets::quick_profile()),
                simulated_correlation: Some(spec.simulated_correlation),
                code: Some("DEMO".into()),
                open: Some(true),
                // A newcomer learns from the demo: right or wrong, and the tutorial, after each answer.
                feedback: Some(true),
                design: None,
            },
        )
        .await?;
        Ok(Some(key))
    }

    async fn store_bank(&self, org: OrgId, bank: &Bank) -> ApiResult<BankStored> {
        let body = bank.to_json();
        let (r, created) = self
            .store
            .put_bank(org, bank.id(), &bank.fingerprint(), bank.len() as i64, &body)
            .await?;
        Ok(BankStored {
            id: r.id,
            version: r.version,
            fingerprint: r.fingerprint,
            items: r.items,
            created,
        })
    }

    /// Upload a bank (JSON, or CSV with `id`): validated (every problem listed), then stored as a new
    /// version unless identical to the latest.
    pub async fn upload_bank(
        &self,
        org: &Org,
        body: &[u8],
        csv: bool,
        id: Option<&str>,
    ) -> ApiResult<BankStored> {
        use etalon_items::bank_io::{BankFormat, read_bank_from};
        if let Some(id) = id {
            check_id("id", id)?;
        }
        let (format, source) = if csv {
            (BankFormat::Csv, format!("{}.csv", id.unwrap_or("bank")))
        } else {
            (BankFormat::Json, "upload.json".to_string())
        };
        if !csv && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            return Err(ApiError::new(
                400,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            ));
        }
        let bank = read_bank_from(body, format, &source).map_err(|e| {
            let problems: Vec<serde_json::Value> = e
                .problems()
                .iter()
                .map(|p| serde_json::json!({"line": p.line, "item": p.item, "field": p.field, "message": p.message}))
                .collect();
            let mut err = ApiError::new(422, "invalid_bank", e.to_string().replacen(&format!("{source}: "), "", 1));
            if let etalon_items::BankError::Json { line, column, message, .. } = &e {
                err.problems = vec![serde_json::json!({"line": line, "column": column, "message": message})];
            } else if problems.is_empty() {
                // Not a list of problems (empty file, not UTF-8): the one problem, with its line if known.
                let line = match &e {
                    etalon_items::BankError::NotUtf8 { line, .. } => Some(*line),
                    _ => None,
                };
                err.problems = vec![serde_json::json!({"line": line, "message": err.message})];
            } else {
                err.problems = problems;
            }
            err
        })?;
        check_id("id", bank.id())?;
        // An item id a participant could not send back would leave sessions stuck: refuse the bank.
        let bad_ids: Vec<serde_json::Value> = bank
            .items()
            .iter()
            .filter_map(|i| {
                check_id("id", &i.id).err().map(
                    |e| serde_json::json!({"line": null, "item": i.id, "field": "id", "message": e.message}),
                )
            })
            .collect();
        if !bad_ids.is_empty() {
            let mut err = ApiError::new(
                422,
                "invalid_bank",
                format!("{} item ids cannot be used", bad_ids.len()),
            );
            err.problems = bad_ids;
            return Err(err);
        }
        if let Some(id) = id
            && id != bank.id()
        {
            return Err(ApiError::invalid(
                "id",
                format!("`id` is `{id}` but the bank's own id is `{}`", bank.id()),
            ));
        }
        self.store_bank(org.id, &bank).await
    }

    /// A stored bank version (the latest by default).
    pub async fn bank(&self, org: &Org, id: &str, version: Option<i64>) -> ApiResult<BankRecord> {
        self.store
            .get_bank(org.id, id, version)
            .await?
            .ok_or_else(|| match version {
                Some(v) => ApiError::not_found(format!("bank `{id}` version {v}")),
                None => ApiError::not_found(format!("bank `{id}`")),
            })
    }

    /// The organisation's banks (latest versions).
    pub async fn banks(&self, org: &Org) -> ApiResult<Vec<BankRecord>> {
        Ok(self.store.list_banks(org.id).await?)
    }

    /// The bank a stored version holds.
    pub fn parse_bank(record: &BankRecord) -> ApiResult<Bank> {
        Bank::from_json(&record.body, "<stored bank>").map_err(internal)
    }

    /// Create a campaign over one of the organisation's banks.
    pub async fn create_campaign(&self, org: &Org, req: CampaignRequest) -> ApiResult<CampaignView> {
        check_id("name", &req.name)?;
        check_id("bank", &req.bank)?;
        let id = match req.id {
            Some(id) => {
                check_id("id", &id)?;
                id
            }
            None => format!("c-{}", &auth::new_id()[..12]),
        };
        let code = match req.code {
            Some(c) => {
                let c = c.to_ascii_uppercase();
                if !(4..=32).contains(&c.len()) || !c.chars().all(|x| x.is_ascii_alphanumeric() || x == '-') {
                    return Err(ApiError::invalid(
                        "code",
                        "a join code is 4 to 32 letters, digits or `-`",
                    ));
                }
                c
            }
            None => auth::new_code(),
        };
        let record = self
            .store
            .get_bank(org.id, &req.bank, req.bank_version)
            .await?
            .ok_or_else(|| {
                ApiError::invalid("bank", format!("no bank `{}` (with that version)", req.bank))
            })?;
        let bank = Self::parse_bank(&record)?;
        let campaign = Campaign::new(CampaignSpec {
            id: id.clone(),
            name: req.name.clone(),
            bank: Some(req.bank.clone()),
            targets: req.targets,
            simulated_correlation: req.simulated_correlation.unwrap_or(0.5),
            assessment: req
                .assessment
                .unwrap_or_else(etalon_assessment::presets::quick_profile),
            feedback: req.feedback.unwrap_or(false),
            design: req.design.unwrap_or_default(),
        })
        .map_err(|e| ApiError::invalid(field_of(&e.to_string(), "targets"), e.to_string()))?;
        campaign
            .check_bank(&bank)
            .map_err(|e| ApiError::invalid("targets", e.to_string()))?;
        let campaign = campaign
            .resolved(&bank)
            .map_err(|e| ApiError::invalid(field_of(&e.to_string(), "design"), e.to_string()))?;
        Assessor::new(
            &bank,
            campaign
                .design(&bank)
                .map_err(|e| ApiError::invalid("design", e.to_string()))?,
        )
        .map_err(|e| ApiError::invalid("assessment", e.to_string()))?;
        let spec = serde_json::to_string(&campaign).map_err(internal)?;
        let rec = CampaignRecord {
            org: org.id,
            id,
            code,
            name: req.name,
            bank: record.id,
            bank_version: record.version,
            spec,
            open: req.open.unwrap_or(true),
            created: now_ms(),
        };
        match self.store.create_campaign(&rec).await {
            Err(crate::storage::StorageError::Conflict(rule)) => {
                let (code, what) = if rule.contains("code") {
                    ("code_taken", format!("the join code `{}` is taken", rec.code))
                } else {
                    (
                        "campaign_exists",
                        format!("a campaign `{}` already exists", rec.id),
                    )
                };
                return Err(ApiError::conflict(code, what));
            }
            r => r?,
        }
        self.campaign_view(rec).await
    }

    async fn campaign_view(&self, rec: CampaignRecord) -> ApiResult<CampaignView> {
        let participation = self.store.participation(rec.org, &rec.id).await?;
        Ok(CampaignView {
            campaign: serde_json::from_str(&rec.spec).map_err(internal)?,
            id: rec.id,
            code: rec.code,
            name: rec.name,
            bank: rec.bank,
            bank_version: rec.bank_version,
            open: rec.open,
            participation,
        })
    }

    async fn campaign_record(&self, org: &Org, id: &str) -> ApiResult<CampaignRecord> {
        self.store
            .get_campaign(org.id, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("campaign `{id}`")))
    }

    /// One campaign.
    pub async fn campaign(&self, org: &Org, id: &str) -> ApiResult<CampaignView> {
        let rec = self.campaign_record(org, id).await?;
        self.campaign_view(rec).await
    }

    /// The organisation's campaigns.
    pub async fn campaigns(&self, org: &Org) -> ApiResult<Vec<CampaignView>> {
        let mut out = Vec::new();
        for rec in self.store.list_campaigns(org.id).await? {
            out.push(self.campaign_view(rec).await?);
        }
        Ok(out)
    }

    /// Open or close a campaign.
    pub async fn set_open(&self, org: &Org, id: &str, open: bool) -> ApiResult<CampaignView> {
        if !self.store.set_campaign_open(org.id, id, open).await? {
            return Err(ApiError::not_found(format!("campaign `{id}`")));
        }
        self.campaign(org, id).await
    }

    /// A campaign's finished participants' results.
    pub async fn results(&self, org: &Org, id: &str) -> ApiResult<Vec<ParticipantResult>> {
        self.campaign_record(org, id).await?;
        self.store
            .results(org.id, id)
            .await?
            .iter()
            .map(|l| serde_json::from_str(l).map_err(internal))
            .collect()
    }

    /// A campaign's report (as `etalon campaign report`) and its chart.
    pub async fn report(&self, org: &Org, id: &str) -> ApiResult<(campaign::Report, String)> {
        let (report, campaign) = self.campaign_report(org, id).await?;
        let chart = etalon_assessment::chart::campaign_chart(&report, &campaign);
        Ok((report, chart))
    }

    /// A campaign's report and the campaign (to draw it in any language).
    pub async fn campaign_report(&self, org: &Org, id: &str) -> ApiResult<(campaign::Report, Campaign)> {
        let rec = self.campaign_record(org, id).await?;
        let campaign: Campaign = serde_json::from_str(&rec.spec).map_err(internal)?;
        let bank = Self::parse_bank(&self.bank(org, &rec.bank, Some(rec.bank_version)).await?)?;
        let results = self.results(org, id).await?;
        let report = if results.is_empty() {
            campaign::Report {
                participants: 0,
                competences: Vec::new(),
                training_needs: Vec::new(),
            }
        } else {
            campaign::report(&campaign, &bank, &results, None).map_err(internal)?
        };
        Ok((report, campaign))
    }

    /// The assessor of a stored session's bank version and design (cached per process).
    pub(crate) async fn assessor(
        &self,
        org: OrgId,
        bank: &str,
        version: i64,
        design: &str,
    ) -> ApiResult<Arc<Assessor>> {
        self.assessor_or(org, bank, version, design, internal).await
    }

    /// The assessor of a bank version and design, built once per process; a design the bank refuses is
    /// `refuse(error)`.
    pub(crate) async fn assessor_or(
        &self,
        org: OrgId,
        bank: &str,
        version: i64,
        design: &str,
        refuse: fn(AssessmentError) -> ApiError,
    ) -> ApiResult<Arc<Assessor>> {
        let key = (org, bank.to_string(), version, design.to_string());
        if let Some(a) = self.assessors.lock().map_err(internal)?.get(&key) {
            return Ok(a.clone());
        }
        let record = self
            .store
            .get_bank(org, bank, Some(version))
            .await?
            .ok_or_else(|| internal(format!("bank `{bank}` version {version} is gone")))?;
        let bank = Self::parse_bank(&record)?;
        let design: Design = serde_json::from_str(design).map_err(internal)?;
        let assessor = Arc::new(Assessor::new(&bank, design).map_err(refuse)?);
        self.assessors
            .lock()
            .map_err(internal)?
            .insert(key, assessor.clone());
        Ok(assessor)
    }

    /// Start a session: from a campaign's join code (anyone), or on a bank with a design (the
    /// organisation).
    pub async fn start(&self, org: Option<&Org>, req: StartRequest) -> ApiResult<Started> {
        if let Some(p) = &req.participant {
            check_id("participant", p)?;
        }
        let mut feedback = false;
        let (owner, campaign, bank, version, design, seed) = match (&req.campaign_code, &req.bank) {
            (Some(code), None) => {
                for (field, given) in [
                    ("bank_version", req.bank_version.is_some()),
                    ("config", req.config.is_some()),
                    ("seed", req.seed.is_some()),
                ] {
                    if given {
                        return Err(ApiError::invalid(
                            field,
                            format!("`{field}` is set by the campaign"),
                        ));
                    }
                }
                check_id("campaign_code", code)?;
                let c = self
                    .store
                    .campaign_by_code(&code.to_ascii_uppercase())
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("campaign with code `{code}`")))?;
                if !c.open {
                    return Err(ApiError::conflict("campaign_closed", "this campaign is closed"));
                }
                let campaign: Campaign = serde_json::from_str(&c.spec).map_err(internal)?;
                let design = serde_json::to_string(&campaign.session_design()).map_err(internal)?;
                feedback = campaign.feedback();
                (
                    c.org,
                    Some(c.id),
                    c.bank,
                    c.bank_version,
                    design,
                    auth::new_seed(),
                )
            }
            (None, Some(bank)) => {
                let org = org.ok_or_else(|| {
                    ApiError::unauthorized("a session on a bank needs `Authorization: Bearer ORG_KEY`")
                })?;
                check_id("bank", bank)?;
                let record = self
                    .store
                    .get_bank(org.id, bank, req.bank_version)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("bank `{bank}`")))?;
                let design = match &req.config {
                    // A multidimensional bank gets the multidimensional profile.
                    None => etalon_assessment::presets::default_design(&Self::parse_bank(&record)?),
                    Some(v) => Design::from_json(&v.to_string())
                        .map_err(|e| ApiError::invalid("config", e.to_string()))?,
                };
                let design = serde_json::to_string(&design).map_err(internal)?;
                // Checked against the bank once per process and design (then cached for the session).
                self.assessor_or(org.id, &record.id, record.version, &design, |e| {
                    ApiError::invalid("config", e.to_string())
                })
                .await?;
                (
                    org.id,
                    None,
                    record.id,
                    record.version,
                    design,
                    req.seed.unwrap_or_else(auth::new_seed),
                )
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "bank",
                    "give either `campaign_code` or `bank`, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "campaign_code",
                    "give `campaign_code` (or, with an organisation key, `bank`)",
                ));
            }
        };
        let assessor = self.assessor(owner, &bank, version, &design).await?;
        let token = auth::new_token();
        let record = SessionRecord {
            id: auth::new_id(),
            org: owner,
            campaign,
            bank,
            bank_version: version,
            design,
            seed: seed as i64,
            participant: req.participant.clone(),
            token_hash: auth::hash(&token),
            created: now_ms(),
            answered: 0,
            finished: false,
        };
        match self.store.create_session(&record).await {
            Err(crate::storage::StorageError::Conflict(_)) => {
                return Err(ApiError::conflict(
                    "participant_exists",
                    "this participant already has a session in this campaign",
                ));
            }
            r => r?,
        }
        let mut assessment = assessor.start(seed);
        let next = assessor.current(&mut assessment).map_err(internal)?;
        let max_items = assessor.max_items();
        self.remember(
            &record.id,
            Live {
                org: owner,
                feedback,
                participant: req.participant,
                assessor,
                answers: Vec::new(),
                assessment,
            },
        )?;
        Ok(Started {
            session: record.id,
            token,
            next,
            max_items,
        })
    }

    fn slot(&self, id: &str) -> ApiResult<Slot> {
        let mut map = self.sessions.lock().map_err(internal)?;
        if map.len() >= MAX_LIVE_SESSIONS {
            // Drop the states nobody is using; they are rebuilt from storage when asked for.
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        Ok(map.entry(id.to_string()).or_default().clone())
    }

    fn remember(&self, id: &str, live: Live) -> ApiResult<()> {
        let slot = self.slot(id)?;
        if let Ok(mut s) = slot.try_lock() {
            *s = Some(live);
        }
        Ok(())
    }

    /// The session `id` if `token` opens it, or if `org` owns it.
    async fn authorised(&self, id: &str, token: Option<&str>, org: Option<&Org>) -> ApiResult<SessionRecord> {
        if token.is_none() && org.is_none() {
            return Err(ApiError::unauthorized(
                "missing `Authorization: Bearer SESSION_TOKEN`",
            ));
        }
        let row = self
            .store
            .get_session(id)
            .await?
            .filter(|r| org.is_none_or(|o| o.id == r.org))
            .ok_or_else(|| ApiError::not_found(format!("session `{id}`")))?;
        if let Some(t) = token
            && auth::hash(t) != row.token_hash
        {
            return Err(ApiError::unauthorized("this token does not open this session"));
        }
        Ok(row)
    }

    /// The state of `row`, rebuilt from the answers log unless this process holds it up to date.
    /// A session's assessor, answers and result so far, from its live state (rebuilt from the log
    /// when it is not in memory).
    pub(crate) async fn replayed(
        &self,
        row: &SessionRecord,
    ) -> ApiResult<(Arc<Assessor>, Vec<AnswerRecord>, AssessmentResult)> {
        let slot = self.slot(&row.id)?;
        let mut held = slot.lock().await;
        let live = self.live(row, &mut held).await?;
        let result = live.assessor.result(&live.assessment);
        Ok((live.assessor.clone(), live.answers.clone(), result))
    }

    async fn live<'a>(&self, row: &SessionRecord, held: &'a mut Option<Live>) -> ApiResult<&'a mut Live> {
        let fresh = held
            .as_ref()
            .is_some_and(|l| l.answers.len() as i64 == row.answered);
        if !fresh {
            let assessor = self
                .assessor(row.org, &row.bank, row.bank_version, &row.design)
                .await?;
            let answers = self.store.answers(&row.id).await?;
            let mut assessment = assessor.start(row.seed as u64);
            for a in &answers {
                // The engine records an answer to the question it offers: ask for it, as the person did.
                let offered = assessor.current(&mut assessment).map_err(internal)?;
                if offered.as_ref().map(|v| v.item.as_str()) != Some(a.item.as_str()) {
                    return Err(internal(format!(
                        "session {} cannot be replayed: position {} holds `{}`, the engine offers {:?}",
                        row.id,
                        a.position,
                        a.item,
                        offered.map(|v| v.item)
                    )));
                }
                assessor
                    .answer(&mut assessment, &a.item, Response::Code(a.code))
                    .map_err(|e| internal(format!("session {} cannot be replayed: {e}", row.id)))?;
            }
            let feedback = match &row.campaign {
                Some(c) => self.campaign_of(row.org, c).await?.feedback(),
                None => false,
            };
            *held = Some(Live {
                org: row.org,
                feedback,
                participant: row.participant.clone(),
                assessor,
                answers,
                assessment,
            });
        }
        held.as_mut().ok_or_else(|| internal("no state"))
    }

    /// A campaign by its owner and id, parsed.
    async fn campaign_of(&self, org: OrgId, id: &str) -> ApiResult<Campaign> {
        let rec = self
            .store
            .get_campaign(org, id)
            .await?
            .ok_or_else(|| internal(format!("campaign `{id}` of a session is gone")))?;
        serde_json::from_str(&rec.spec).map_err(internal)
    }

    /// The immediate feedback on the answer at `position` (1-based), if the session's campaign gives
    /// feedback and that answer is recorded.
    pub async fn feedback_at(
        &self,
        id: &str,
        token: Option<&str>,
        position: usize,
    ) -> ApiResult<Option<Feedback>> {
        let row = self.authorised(id, token, None).await?;
        let slot = self.slot(id)?;
        let mut held = slot.lock().await;
        let live = self.live(&row, &mut held).await?;
        if position == 0 || position > live.answers.len() {
            return Ok(None);
        }
        stored_feedback(live, position - 1)
    }

    /// What a participant's result page shows: the result, and the bars of the profile chart (level
    /// per competence against the campaign's targets).
    pub async fn profile(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> ApiResult<(SessionResult, Vec<ProfileBar>)> {
        let row = self.authorised(id, token, None).await?;
        let targets = match &row.campaign {
            Some(c) => self.campaign_of(row.org, c).await?.targets().to_vec(),
            None => Vec::new(),
        };
        let slot = self.slot(id)?;
        let mut held = slot.lock().await;
        let live = self.live(&row, &mut held).await?;
        let result = live.assessor.result(&live.assessment);
        let bars = etalon_assessment::chart::profile_bars(&result, live.assessor.levels(), &targets);
        Ok((
            SessionResult {
                session: row.id,
                status: status(result.finished),
                result,
            },
            bars,
        ))
    }

    /// Where a session stands.
    pub async fn status(&self, id: &str, token: Option<&str>, org: Option<&Org>) -> ApiResult<SessionStatus> {
        let row = self.authorised(id, token, org).await?;
        let slot = self.slot(id)?;
        let mut held = slot.lock().await;
        let live = self.live(&row, &mut held).await?;
        let next = live.assessor.current(&mut live.assessment).map_err(internal)?;
        Ok(SessionStatus {
            session: row.id,
            status: status(next.is_none()),
            answered: live.answers.len(),
            max_items: live.assessor.max_items(),
            next,
        })
    }

    /// A session's result (final once it is finished).
    pub async fn result(&self, id: &str, token: Option<&str>, org: Option<&Org>) -> ApiResult<SessionResult> {
        let row = self.authorised(id, token, org).await?;
        let (_, _, result) = self.replayed(&row).await?;
        Ok(SessionResult {
            session: row.id,
            status: status(result.finished),
            result,
        })
    }

    /// Record an answer (idempotently: the same answer at the same position again is answered as the
    /// first time and records nothing).
    pub async fn answer(&self, id: &str, token: Option<&str>, req: AnswerRequest) -> ApiResult<Answered> {
        if token.is_none() {
            return Err(ApiError::unauthorized(
                "missing `Authorization: Bearer SESSION_TOKEN`",
            ));
        }
        let response = match (req.response, req.choice) {
            (Some(r), None) => Response::Code(r),
            (None, Some(c)) => Response::Choice(
                usize::try_from(c)
                    .map_err(|_| ApiError::invalid("choice", "`choice` is an option index, from 0"))?,
            ),
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "choice",
                    "give `response` or `choice`, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "response",
                    "give `response` (a code) or `choice`",
                ));
            }
        };
        if req.position < 1 {
            return Err(ApiError::invalid("position", "`position` counts answers from 1"));
        }
        check_id("item", &req.item)?;
        let mut row = self.authorised(id, token, None).await?;
        let slot = self.slot(id)?;
        let mut held = slot.lock().await;
        for _attempt in 0..3 {
            let live = self.live(&row, &mut held).await?;
            let n = live.answers.len() as i64;
            if req.position <= n {
                return replayed(live, &req);
            }
            if req.position > n + 1 {
                return Err(ApiError::conflict(
                    "position_conflict",
                    format!(
                        "position {} is ahead: the next position is {}",
                        req.position,
                        n + 1
                    ),
                )
                .field("position"));
            }
            let mut next_state = live.assessment.clone();
            let offered = live.assessor.current(&mut next_state).map_err(internal)?;
            let offered = match offered {
                None => return Err(ApiError::conflict("session_finished", "this session is finished")),
                Some(v) => v,
            };
            if offered.item != req.item {
                return Err(ApiError::conflict(
                    "item_conflict",
                    format!(
                        "the question at position {} is `{}`, not `{}`",
                        req.position, offered.item, req.item
                    ),
                )
                .field("item"));
            }
            let feedback = live
                .assessor
                .answer(&mut next_state, &req.item, response)
                .map_err(refused)?;
            let result_line = if feedback.finished {
                let result = live.assessor.result(&next_state);
                let participant = row.participant.clone().unwrap_or_else(|| row.id.clone());
                let line = campaign::participant_result(row.campaign.as_deref(), &participant, &result);
                Some(serde_json::to_string(&line).map_err(internal)?)
            } else {
                None
            };
            let record = AnswerRecord {
                session: row.id.clone(),
                position: req.position,
                item: req.item.clone(),
                choice: req.choice,
                response: req.response,
                code: feedback.response,
                created: now_ms(),
            };
            match self.store.append_answer(&record, result_line.as_deref()).await? {
                Appended::Recorded => {
                    live.answers.push(record);
                    live.assessment = next_state;
                    let next = live.assessor.current(&mut live.assessment).map_err(internal)?;
                    return Ok(Answered {
                        status: status(next.is_none()),
                        next,
                        answered: live.answers.len(),
                        feedback: live.feedback.then_some(Feedback {
                            correct: feedback.correct,
                            tutorials: feedback.tutorials,
                        }),
                    });
                }
                Appended::NoSession => return Err(ApiError::not_found(format!("session `{id}`"))),
                Appended::Exists(_) => {
                    // Another process recorded this position first: read the log again and answer as
                    // for a replay (or a conflict).
                    *held = None;
                    row = self.authorised(id, token, None).await?;
                }
            }
        }
        Err(ApiError::conflict(
            "answer_conflict",
            "the session changed while answering; ask for it again",
        ))
    }

    /// Every stored answer to one of the organisation's banks, in pages.
    pub async fn responses_page(
        &self,
        org: OrgId,
        bank: &str,
        after: Option<(String, i64)>,
    ) -> ApiResult<Vec<ResponseRow>> {
        Ok(self.store.responses(org, bank, after, 5000).await?)
    }

    /// Erase a participant's sessions, answers and results (and this process's copies of them).
    pub async fn erase(&self, org: &Org, participant: &str) -> ApiResult<()> {
        check_id("participant", participant)
            .map_err(|_| ApiError::not_found(format!("participant `{participant}`")))?;
        let n = self.store.erase_participant(org.id, participant).await?;
        if let Ok(mut map) = self.sessions.lock() {
            map.retain(|_, slot| match slot.try_lock() {
                Ok(s) => !s
                    .as_ref()
                    .is_some_and(|l| l.org == org.id && l.participant.as_deref() == Some(participant)),
                Err(_) => true,
            });
        }
        if n == 0 {
            return Err(ApiError::not_found(format!("participant `{participant}`")));
        }
        Ok(())
    }
}

/// The answer to a replayed position: the same as the first time if it is the same answer, else 409.
fn replayed(live: &mut Live, req: &AnswerRequest) -> ApiResult<Answered> {
    let k = (req.position - 1) as usize;
    let stored = &live.answers[k];
    if stored.item != req.item || stored.choice != req.choice || stored.response != req.response {
        return Err(ApiError::conflict(
            "answer_conflict",
            format!("position {} already has a different answer", req.position),
        )
        .field("position"));
    }
    let next = match live.answers.get(k + 1) {
        Some(after) => {
            let item = live
                .assessor
                .bank()
                .item(&after.item)
                .ok_or_else(|| internal("a recorded item is not in the bank"))?;
            Some(live.assessor.view(item, k + 2))
        }
        None => live.assessor.current(&mut live.assessment).map_err(internal)?,
    };
    Ok(Answered {
        status: status(next.is_none()),
        next,
        answered: k + 1,
        feedback: stored_feedback(live, k)?,
    })
}

/// The immediate feedback on the `k`-th (0-based) recorded answer, if the session gives it.
fn stored_feedback(live: &Live, k: usize) -> ApiResult<Option<Feedback>> {
    if !live.feedback {
        return Ok(None);
    }
    let stored = live.answers.get(k).ok_or_else(|| internal("no such answer"))?;
    let item = live
        .assessor
        .bank()
        .item(&stored.item)
        .ok_or_else(|| internal("a recorded item is not in the bank"))?;
    Ok(Some(Feedback::of(item, stored.code)))
}

/// The field a campaign error message names (`field `x`: …`), or `default`.
fn field_of(message: &str, default: &str) -> String {
    message
        .strip_prefix("field `")
        .and_then(|m| m.split('`').next())
        .unwrap_or(default)
        .to_string()
}
