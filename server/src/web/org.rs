//! The organisation's pages: sign in with the organisation key; banks (upload with every problem
//! shown next to its line; items with their text, parameters and curves); campaigns (create with a
//! target level per competence, join link and code, open and close); the live campaign view
//! (participation, level distribution, training needs, tutorials to recommend, CSV export).

use super::i18n::fill;
use super::{Ctx, csrf, error_page, layout, page, see_other, time_days, url_escape};
use crate::api::AppState;
use crate::error::ApiError;
use crate::service::{CampaignRequest, Service};
use crate::storage::Org;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use etalon_assessment::Target;
use etalon_assessment::chart::{PlotLabels, inline, item_characteristic_chart, item_information_chart};
use etalon_items::Bank;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

/// The cookie holding the sign-in token.
const ORG_COOKIE: &str = "etalon_org";

/// A signed-in organisation and its CSRF token.
struct SignedIn {
    org: Org,
    csrf: String,
}

/// The organisation this browser is signed in as.
async fn signed_in(service: &Service, jar: &CookieJar) -> Result<Option<SignedIn>, ApiError> {
    let Some(token) = jar.get(ORG_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    Ok(service.signed_in(&token).await?.map(|org| SignedIn {
        org,
        csrf: csrf(&token),
    }))
}

/// Run `f` for a signed-in organisation; otherwise the sign-in page (or the error page).
macro_rules! signed {
    ($ctx:expr, $state:expr, $jar:expr) => {
        match signed_in(&$state.service, &$jar).await {
            Ok(Some(s)) => s,
            Ok(None) => return sign_in_page(&$ctx, None, StatusCode::OK),
            Err(e) => return error_page(&$ctx, &e),
        }
    };
}

/// A page for a signed-in organisation.
fn org_page(ctx: &Ctx, s: &SignedIn, title: &str, status: StatusCode, body: Markup) -> Response {
    page(status, layout(ctx, title, Some((&s.org.name, &s.csrf)), body))
}

fn sign_in_page(ctx: &Ctx, error: Option<&str>, status: StatusCode) -> Response {
    let t = ctx.lang.t();
    page(
        status,
        layout(
            ctx,
            t.sign_in_title,
            None,
            html! {
                h1 { (t.org_space) }
                form.card method="post" action="/org/signin" {
                    h2 { (t.sign_in_title) }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    div.field {
                        label for="key" { (t.key) }
                        input #key name="key" type="password" required autocomplete="current-password"
                            spellcheck="false" aria-describedby="key-hint" aria-invalid=[error.map(|_| "true")];
                        p.hint #key-hint { (t.key_hint) }
                    }
                    button.primary type="submit" { (t.sign_in) }
                }
            },
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct KeyForm {
    #[serde(default)]
    key: String,
}

/// `POST /org/signin`: check the key; a sign-in cookie (HttpOnly, SameSite=Strict) on success.
pub(super) async fn sign_in(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Form(f): Form<KeyForm>,
) -> Response {
    match state.service.sign_in(&f.key).await {
        Ok((_, token)) => {
            let cookie = Cookie::build((ORG_COOKIE, token))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .max_age(time_days(crate::service::LOGIN_DAYS))
                .build();
            (jar.add(cookie), see_other("/org")).into_response()
        }
        Err(e) if e.status == 401 => sign_in_page(&ctx, Some(&e.message), StatusCode::UNAUTHORIZED),
        Err(e) => error_page(&ctx, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /org/signout`: forget the sign-in (in the database too).
pub(super) async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(token) = jar.get(ORG_COOKIE).map(|c| c.value().to_string())
        && f.csrf == csrf(&token)
    {
        // Best effort: the cookie goes anyway, and the row expires.
        let _ = state.service.sign_out(&token).await;
        return (jar.remove(Cookie::build(ORG_COOKIE).path("/")), see_other("/org")).into_response();
    }
    see_other("/org")
}

/// The refusal of a form whose CSRF token is not the sign-in's (`None` when it is).
fn refuse_csrf(ctx: &Ctx, s: &SignedIn, given: &str) -> Option<Response> {
    (given != s.csrf).then(|| error_page(ctx, &ApiError::new(403, "csrf", ctx.lang.t().bad_form)))
}

/// `GET /org`: the sign-in form, or the organisation's campaigns and banks.
pub(super) async fn dashboard(ctx: Ctx, State(state): State<AppState>, jar: CookieJar) -> Response {
    let s = signed!(ctx, state, jar);
    let t = ctx.lang.t();
    let (campaigns, banks) = match (
        state.service.campaigns(&s.org).await,
        state.service.banks(&s.org).await,
    ) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(e), _) | (_, Err(e)) => return error_page(&ctx, &e),
    };
    let lms = match lms_part(&ctx, &state, &s.org).await {
        Ok(m) => m,
        Err(e) => return error_page(&ctx, &e),
    };
    org_page(
        &ctx,
        &s,
        t.org_space,
        StatusCode::OK,
        html! {
            h1 { (t.org_space) }
            section aria-labelledby="campaigns-title" {
                h2 #campaigns-title { (t.campaigns) }
                @if campaigns.is_empty() { p { (t.no_campaigns) } } @else {
                    div.scroll tabindex="0" { table {
                        thead { tr {
                            th scope="col" { (t.name) } th scope="col" { (t.join_code) } th scope="col" { (t.state) }
                            th.num scope="col" { (t.started) } th.num scope="col" { (t.finished) } th scope="col" { (t.bank) }
                        } }
                        tbody { @for c in &campaigns { tr {
                            th scope="row" { a href={ "/org/campaigns/" (url_escape(&c.id)) } { (c.name) } }
                            td { code { (c.code) } }
                            td { (if c.open { t.open } else { t.closed }) }
                            td.num { (c.participation.started) }
                            td.num { (c.participation.finished) }
                            td { (c.bank) " v" (c.bank_version) }
                        } } }
                    } }
                }
                @if !banks.is_empty() { p { a.button href="/org/campaigns/new" { (t.new_campaign) } } }
            }
            section aria-labelledby="banks-title" {
                h2 #banks-title { (t.banks) }
                @if !banks.is_empty() {
                    div.scroll tabindex="0" { table {
                        thead { tr { th scope="col" { (t.bank) } th.num scope="col" { (t.version) } th.num scope="col" { (t.items) } } }
                        tbody { @for b in &banks { tr {
                            th scope="row" { a href={ "/org/banks/" (url_escape(&b.id)) } { (b.id) } }
                            td.num { (b.version) }
                            td.num { (b.items) }
                        } } }
                    } }
                }
                (upload_form(&ctx, &s))
            }
            (lms)
        },
    )
}

/// The LMS part of the dashboard: the tool's addresses to give the platform, the platforms
/// registered, and where the grades of launched sessions stand.
async fn lms_part(ctx: &Ctx, state: &AppState, org: &Org) -> Result<Markup, ApiError> {
    let t = ctx.lang.t();
    let platforms = state.service.store.org_lti_platforms(org.id).await?;
    let grades = state.service.grades(org).await?;
    let lrs = match state.service.lrs(org).await {
        Ok(v) => Some(v),
        Err(e) if e.status == 404 => None,
        Err(e) => return Err(e),
    };
    let posted = grades.iter().filter(|g| g.1 == "posted").count();
    let failing: Vec<_> = grades
        .iter()
        .filter(|g| g.1 != "posted" && g.3.is_some())
        .take(5)
        .collect();
    Ok(html! {
        section aria-labelledby="lms-title" {
            h2 #lms-title { (t.lti_title) }
            p.hint { (t.lti_lead) }
            dl.facts {
                dt { (t.lti_tool_url) } dd { code #lti-launch { (ctx.origin) "/lti/launch" } }
                dt { (t.lti_login_url) } dd { code { (ctx.origin) "/lti/login" } }
                dt { (t.lti_jwks_url) } dd { code { (ctx.origin) "/lti/jwks" } }
            }
            h3 { (t.lti_platforms) }
            @if platforms.is_empty() { p { (t.lti_none) } } @else {
                div.scroll tabindex="0" { table #platforms {
                    thead { tr { th scope="col" { (t.issuer) } th scope="col" { (t.client_id) } th scope="col" { (t.deployments) } } }
                    tbody { @for p in &platforms { tr {
                        th scope="row" { (p.issuer) }
                        td { code { (p.client_id) } }
                        td { (p.deployment_ids.join(", ")) }
                    } } }
                } }
            }
            @if !grades.is_empty() {
                h3 { (t.grades_title) }
                p #grades { (posted) " " (t.grades_posted) " · " (grades.len() - posted) " " (t.grades_pending) }
                @for g in failing { p.hint { (t.last_error) " (" (g.0) "): " (g.3.as_deref().unwrap_or("")) } }
            }
            h3 { (t.xapi_title) }
            @match &lrs {
                None => p #xapi { (t.xapi_none) },
                Some(l) => {
                    dl.facts { dt { (t.xapi_endpoint) } dd { code { (l.endpoint) } } }
                    p #xapi {
                        (l.statements.sessions_completed) " " (t.xapi_sessions) " · "
                        (l.statements.sessions_open) " " (t.xapi_open) " · "
                        (l.statements.answers_sent) " " (t.xapi_answers)
                    }
                    @for (session, attempts, error) in &l.statements.failing {
                        p.hint { (t.last_error) " (" (session) ", " (attempts) "×): " (error) }
                    }
                }
            }
        }
    })
}

fn upload_form(ctx: &Ctx, s: &SignedIn) -> Markup {
    let t = ctx.lang.t();
    html! {
        form.card method="post" action="/org/banks" enctype="multipart/form-data" {
            h3 { (t.upload_title) }
            input type="hidden" name="csrf" value=(s.csrf);
            div.field {
                label for="bank-file" { (t.upload_file) }
                input #bank-file name="file" type="file" required accept=".json,.csv,application/json,text/csv"
                    aria-describedby="bank-hint";
                p.hint #bank-hint { (t.upload_hint) }
            }
            button.primary type="submit" { (t.upload) }
        }
    }
}

/// `POST /org/banks` (multipart: `csrf`, `file`): store the bank and show it, or show every problem
/// next to the line it is on.
pub(super) async fn upload(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    mut form: Multipart,
) -> Response {
    let s = signed!(ctx, state, jar);
    let t = ctx.lang.t();
    let (mut token, mut file, mut name) = (String::new(), Vec::new(), String::new());
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let field_name = field.name().unwrap_or("").to_string();
                if field_name == "file" {
                    name = field.file_name().unwrap_or("").to_string();
                }
                match field.bytes().await {
                    Ok(b) if field_name == "csrf" => token = String::from_utf8_lossy(&b).into_owned(),
                    Ok(b) if field_name == "file" => file = b.to_vec(),
                    Ok(_) => {}
                    Err(e) => return error_page(&ctx, &ApiError::malformed(e.body_text())),
                }
            }
            Ok(None) => break,
            Err(e) => {
                let status = e.status().as_u16();
                return error_page(
                    &ctx,
                    &ApiError::new(
                        if status >= 500 { 400 } else { status },
                        "malformed",
                        e.body_text(),
                    ),
                );
            }
        }
    }
    if let Some(r) = refuse_csrf(&ctx, &s, &token) {
        return r;
    }
    let csv = name.to_ascii_lowercase().ends_with(".csv");
    let stem = std::path::Path::new(&name)
        .file_stem()
        .and_then(|x| x.to_str())
        .filter(|x| !x.is_empty())
        .unwrap_or("bank")
        .to_string();
    match state
        .service
        .upload_bank(&s.org, &file, csv, csv.then_some(stem.as_str()))
        .await
    {
        Ok(stored) => see_other(&format!("/org/banks/{}?stored=true", url_escape(&stored.id))),
        Err(e) if e.status < 500 => {
            let text = String::from_utf8_lossy(&file);
            let problems = located_problems(&e, &text);
            org_page(
                &ctx,
                &s,
                t.upload_title,
                StatusCode::UNPROCESSABLE_ENTITY,
                html! {
                    h1 { (t.upload_title) " — " (name) }
                    p.error role="alert" #upload-error { (fill(t.upload_failed, &[("n", &problems.count)])) }
                    @if problems.count == 0 { p.error { (e.message) } }
                    @if !problems.unplaced.is_empty() {
                        h2 { (t.unplaced) }
                        ul.problems { @for p in &problems.unplaced { li { (p) } } }
                    }
                    (annotated_source(&ctx, &text, &problems.by_line))
                    (upload_form(&ctx, &s))
                },
            )
        }
        Err(e) => error_page(&ctx, &e),
    }
}

/// The problems of a refused bank, placed on the lines of its text where possible.
struct Located {
    count: usize,
    by_line: std::collections::BTreeMap<usize, Vec<String>>,
    unplaced: Vec<String>,
}

/// Place each problem on a line: the line it names (CSV, JSON syntax), else the first line that
/// mentions its item id in quotes (JSON banks), else unplaced.
fn located_problems(e: &ApiError, text: &str) -> Located {
    let mut out = Located {
        count: e.problems.len(),
        by_line: Default::default(),
        unplaced: Vec::new(),
    };
    for p in &e.problems {
        let message = p["message"].as_str().unwrap_or("").to_string();
        let field = p["field"].as_str();
        let item = p["item"].as_str();
        let described = match (item, field) {
            (Some(i), Some(f)) => format!("{i} · {f}: {message}"),
            (Some(i), None) => format!("{i}: {message}"),
            (None, Some(f)) => format!("{f}: {message}"),
            (None, None) => message,
        };
        let line = p["line"].as_u64().map(|l| l as usize).or_else(|| {
            let needle = format!("\"{}\"", item?);
            text.lines().position(|l| l.contains(&needle)).map(|i| i + 1)
        });
        match line {
            Some(l) if l >= 1 => out.by_line.entry(l).or_default().push(described),
            _ => out.unplaced.push(described),
        }
    }
    out
}

/// The uploaded text, numbered, each problem right under its line (long files: only the lines
/// around problems).
fn annotated_source(
    ctx: &Ctx,
    text: &str,
    by_line: &std::collections::BTreeMap<usize, Vec<String>>,
) -> Markup {
    let t = ctx.lang.t();
    let lines: Vec<&str> = text.lines().collect();
    let near = |i: usize| by_line.keys().any(|&l| i + 3 >= l && i <= l + 2);
    html! {
        @if !by_line.is_empty() {
            div.scroll tabindex="0" { table.source {
                thead { tr { th scope="col" { (t.line) } th scope="col" { (t.text) " / " (t.problem) } } }
                tbody {
                    @for (i, l) in lines.iter().enumerate() {
                        @if lines.len() <= 60 || near(i + 1) {
                            tr.(if by_line.contains_key(&(i + 1)) { "bad" } else { "" }) {
                                th scope="row" .num { (i + 1) }
                                td { code { (etalon_assessment::cut(l, 160)) } }
                            }
                            @if let Some(ps) = by_line.get(&(i + 1)) {
                                @for p in ps { tr.problem { td {} td { strong { "↑ " (p) } } } }
                            }
                        }
                    }
                    @for (l, ps) in by_line.range(lines.len() + 1..) {
                        @for p in ps { tr.problem { th scope="row" .num { (l) } td { strong { (p) } } } }
                    }
                }
            } }
        }
    }
}

/// An id from a path: one that could not exist (empty, too long, control characters) is not found,
/// without asking the database.
fn path_id(what: &str, id: &str) -> Result<(), ApiError> {
    crate::service::check_id("id", id)
        .map_err(|_| ApiError::not_found(format!("{what} `{}`", id.escape_debug())))
}

async fn load_bank(state: &AppState, org: &Org, id: &str) -> Result<Bank, ApiError> {
    path_id("bank", id)?;
    let record = state.service.bank(org, id, None).await?;
    Service::parse_bank(&record)
}

/// `GET /org/banks/{id}`: the bank's items with their competence, text and parameters.
pub(super) async fn bank(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(q): Query<BankQuery>,
) -> Response {
    let s = signed!(ctx, state, jar);
    let t = ctx.lang.t();
    let bank = match load_bank(&state, &s.org, &id).await {
        Ok(b) => b,
        Err(e) => return error_page(&ctx, &e),
    };
    let stored = q.stored;
    org_page(
        &ctx,
        &s,
        &id,
        StatusCode::OK,
        html! {
            h1 { (t.bank) " " (bank.id()) }
            @if stored { p.notice role="status" #stored { (t.bank_stored) } }
            @if let Some(n) = bank.name() { p.lead { (n) } }
            p { a.button href={ "/org/campaigns/new?bank=" (url_escape(bank.id())) } { (t.new_campaign) } }
            div.scroll tabindex="0" { table {
                thead { tr {
                    th scope="col" { (t.item) } th scope="col" { (t.competence) } th scope="col" { (t.model) }
                    th scope="col" { (t.parameters) } th scope="col" { (t.text) }
                } }
                tbody { @for it in bank.items() { tr {
                    th scope="row" { a href={ "/org/banks/" (url_escape(bank.id())) "/items/" (url_escape(&it.id)) } { (it.id) } }
                    td { (it.competence.as_deref().unwrap_or("—")) }
                    td { (it.parameters.kind().name()) }
                    td { (parameters(&it.parameters)) }
                    td { (it.content.as_ref().map_or(String::new(), |c| etalon_assessment::cut(&c.prompt, 80))) }
                } } }
            } }
        },
    )
}

fn parameters(m: &etalon_items::ItemModel) -> String {
    m.named_parameters()
        .iter()
        .map(|(n, v)| format!("{n} = {v:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /org/banks/{id}/items/{item}`: one item — text, options with the key, parameters,
/// characteristic and information curves.
pub(super) async fn item(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Path((id, item_id)): Path<(String, String)>,
) -> Response {
    let s = signed!(ctx, state, jar);
    let t = ctx.lang.t();
    let bank = match load_bank(&state, &s.org, &id).await {
        Ok(b) => b,
        Err(e) => return error_page(&ctx, &e),
    };
    let Some(it) = bank.item(&item_id) else {
        return error_page(&ctx, &ApiError::not_found(format!("item `{item_id}`")));
    };
    let title = format!("{} {}", t.item, it.id);
    let icc_title = format!("{} — {}", t.icc, it.id);
    let info_title = format!("{} — {}", t.information, it.id);
    let icc = item_characteristic_chart(
        it,
        PlotLabels {
            title: &icc_title,
            x: t.ability,
            y: t.probability,
        },
        |k| {
            if it.parameters.categories() == 2 {
                t.correct_answer.to_string()
            } else {
                fill(t.category, &[("k", &k)])
            }
        },
    );
    let info = item_information_chart(
        it,
        PlotLabels {
            title: &info_title,
            x: t.ability,
            y: t.information,
        },
        t.information,
    );
    org_page(
        &ctx,
        &s,
        &title,
        StatusCode::OK,
        html! {
            p { a href={ "/org/banks/" (url_escape(bank.id())) } { "← " (t.bank) " " (bank.id()) } }
            h1 { (title) }
            dl.facts {
                dt { (t.competence) } dd { (it.competence.as_deref().unwrap_or("—")) }
                dt { (t.model) } dd { (it.parameters.kind().name()) }
                dt { (t.parameters) } dd { (parameters(&it.parameters)) }
            }
            @if let Some(c) = &it.content {
                h2 { (t.text) }
                p { (c.prompt) }
                @if !c.choices.is_empty() {
                    h3 { (t.choices) }
                    ol start="0" { @for (i, ch) in c.choices.iter().enumerate() {
                        li { (ch) @if c.correct == Some(i) { " " strong { (t.correct_choice) } } }
                    } }
                }
            }
            @if !it.tutorials.is_empty() {
                h2 { (t.tutorials) }
                ul { @for tu in &it.tutorials { li { a href=(tu.url) rel="noopener" { (tu.title) } } } }
            }
            div.charts {
                figure.chart tabindex="0" { (PreEscaped(inline(&icc))) }
                figure.chart tabindex="0" { (PreEscaped(inline(&info))) }
            }
        },
    )
}

/// The competences of a bank, with their names: its framework's, else its items' (in order).
fn competences(bank: &Bank) -> Vec<(String, String)> {
    let framework: Vec<(String, String)> = bank
        .framework()
        .competences()
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();
    if !framework.is_empty() {
        return framework;
    }
    let mut seen = Vec::new();
    for it in bank.items() {
        if let Some(c) = &it.competence
            && !seen.iter().any(|(id, _): &(String, String)| id == c)
        {
            seen.push((c.clone(), String::new()));
        }
    }
    seen
}

/// `GET /org/campaigns/new[?bank=ID]`: pick a bank, then name, targets and options.
pub(super) async fn new_campaign(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<BankQuery>,
) -> Response {
    let s = signed!(ctx, state, jar);
    campaign_form(&ctx, &state, &s, q.bank.as_deref(), None, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct BankQuery {
    bank: Option<String>,
    #[serde(default)]
    stored: bool,
}

async fn campaign_form(
    ctx: &Ctx,
    state: &AppState,
    s: &SignedIn,
    chosen: Option<&str>,
    design: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let design = design.unwrap_or("auto");
    let t = ctx.lang.t();
    let banks = match state.service.banks(&s.org).await {
        Ok(b) => b,
        Err(e) => return error_page(ctx, &e),
    };
    let chosen = chosen
        .or(banks.first().map(|b| b.id.as_str()))
        .map(str::to_string);
    let bank = match &chosen {
        Some(id) => match load_bank(state, &s.org, id).await {
            Ok(b) => Some(b),
            Err(e) => return error_page(ctx, &e),
        },
        None => None,
    };
    org_page(
        ctx,
        s,
        t.new_campaign,
        status,
        html! {
            h1 { (t.new_campaign) }
            form.card.inline method="get" action="/org/campaigns/new" {
                div.field {
                    label for="bank-choice" { (t.bank) }
                    select #bank-choice name="bank" {
                        @for b in &banks { option value=(b.id) selected[chosen.as_deref() == Some(b.id.as_str())] { (b.id) " (v" (b.version) ")" } }
                    }
                }
                button.secondary type="submit" { (t.choose_bank) }
            }
            @if let Some(bank) = &bank {
                form.card method="post" action="/org/campaigns" {
                    @if let Some(e) = error { p.error role="alert" #campaign-error { (e) } }
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="bank" value=(bank.id());
                    div.field {
                        label for="name" { (t.name) }
                        input #name name="name" type="text" required maxlength="200";
                    }
                    fieldset {
                        legend { (t.targets) }
                        @for (cid, cname) in competences(bank) {
                            @let map = bank.levels().cloned().unwrap_or_default();
                            @let labels = map.for_competence(&cid).labels().to_vec();
                            div.field.target {
                                label for={ "t-" (cid) } { (cid) " " (cname) }
                                select id={ "t-" (cid) } name={ "target:" (cid) } {
                                    option value="" { "—" }
                                    @for (k, l) in labels.iter().enumerate() {
                                        option value=(k) selected[k == 3.min(labels.len() - 1)] { (k) " · " (l) }
                                    }
                                }
                            }
                        }
                    }
                    div.field {
                        label for="design" { (t.design) }
                        select #design name="design" {
                            option value="auto" selected[design == "auto"] { (t.design_auto) }
                            option value="profile" selected[design == "profile"] { (t.design_profile) }
                            @if bank.structure().is_some() {
                                option value="multidimensional" selected[design == "multidimensional"] { (t.design_multidimensional) }
                            }
                            option value="general" selected[design == "general"] { (t.design_general) }
                        }
                    }
                    div.field.check {
                        input #feedback name="feedback" type="checkbox" value="1";
                        label for="feedback" { (t.feedback_option) }
                    }
                    div.field {
                        label for="join-code" { (t.code_optional) }
                        input #join-code name="code" type="text" maxlength="32" autocomplete="off" spellcheck="false";
                    }
                    button.primary type="submit" { (t.create_campaign) }
                }
            }
        },
    )
}

/// `POST /org/campaigns` (form: `csrf`, `bank`, `name`, `target:COMPETENCE` = level or empty,
/// `design`, `feedback`, `code`): create the campaign and open its live view.
pub(super) async fn create_campaign(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let s = signed!(ctx, state, jar);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
    };
    if let Some(r) = refuse_csrf(&ctx, &s, &get("csrf").unwrap_or_default()) {
        return r;
    }
    let bank = get("bank").unwrap_or_default();
    let targets: Vec<Target> = fields
        .iter()
        .filter_map(|(n, v)| {
            let competence = n.strip_prefix("target:")?;
            let level = v.trim().parse().ok()?;
            Some(Target {
                competence: competence.to_string(),
                target_level: level,
            })
        })
        .collect();
    let design = get("design").filter(|d| !d.is_empty());
    let req = CampaignRequest {
        id: None,
        name: get("name").unwrap_or_default(),
        bank: bank.clone(),
        bank_version: None,
        targets,
        assessment: None,
        simulated_correlation: None,
        code: get("code").filter(|c| !c.is_empty()),
        open: Some(true),
        feedback: Some(get("feedback").is_some()),
        design: match design.as_deref() {
            None => None,
            Some(d) => match serde_json::from_value(serde_json::Value::String(d.to_string())) {
                Ok(x) => Some(x),
                Err(_) => {
                    let message = format!("unknown test design `{d}`");
                    return campaign_form(
                        &ctx,
                        &state,
                        &s,
                        Some(&bank),
                        None,
                        Some(&message),
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await;
                }
            },
        },
    };
    match state.service.create_campaign(&s.org, req).await {
        Ok(c) => see_other(&format!("/org/campaigns/{}", url_escape(&c.id))),
        Err(e) if e.status < 500 => {
            campaign_form(
                &ctx,
                &state,
                &s,
                Some(&bank),
                design.as_deref(),
                Some(&e.message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => error_page(&ctx, &e),
    }
}

/// `GET /org/campaigns/{id}`: the campaign — join link and code, open/close, and the live part.
pub(super) async fn campaign(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let s = signed!(ctx, state, jar);
    let t = ctx.lang.t();
    if let Err(e) = path_id("campaign", &id) {
        return error_page(&ctx, &e);
    }
    let c = match state.service.campaign(&s.org, &id).await {
        Ok(c) => c,
        Err(e) => return error_page(&ctx, &e),
    };
    let live = match live_part(&ctx, &state, &s.org, &id).await {
        Ok(m) => m,
        Err(e) => return error_page(&ctx, &e),
    };
    let link = format!("{}/join?code={}", ctx.origin, c.code);
    org_page(
        &ctx,
        &s,
        &c.name,
        StatusCode::OK,
        html! {
            h1 { (c.name) }
            dl.facts {
                dt { (t.join_code) } dd { code #join-code { (c.code) } }
                dt { (t.join_link) } dd { a #join-link href=(link) { (link) } }
                dt { (t.bank) } dd { a href={ "/org/banks/" (url_escape(&c.bank)) } { (c.bank) } " v" (c.bank_version) }
                dt { (t.state) } dd #state { (if c.open { t.open } else { t.closed }) }
            }
            form method="post" action={ "/org/campaigns/" (url_escape(&c.id)) "/open" } {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="open" value=(if c.open { "false" } else { "true" });
                button.secondary type="submit" { (if c.open { t.close_campaign } else { t.open_campaign }) }
            }
            p { a.button #export href={ "/org/campaigns/" (url_escape(&c.id)) "/results.csv" } download { (t.export_csv) } }
            div #live aria-live="polite" data-refresh={ "/org/campaigns/" (url_escape(&c.id)) "/live" } { (live) }
            p.hint { (t.refreshed) }
        },
    )
}

/// `GET /org/campaigns/{id}/live`: the live part alone (what the page's script refreshes).
pub(super) async fn campaign_live(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let s = match signed_in(&state.service, &jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return ApiError::unauthorized("signed out").into_response(),
        Err(e) => return e.into_response(),
    };
    match live_part(&ctx, &state, &s.org, &id).await {
        Ok(m) => page(StatusCode::OK, m),
        Err(e) => e.into_response(),
    }
}

async fn live_part(ctx: &Ctx, state: &AppState, org: &Org, id: &str) -> Result<Markup, ApiError> {
    let t = ctx.lang.t();
    path_id("campaign", id)?;
    let c = state.service.campaign(org, id).await?;
    let (report, campaign) = state.service.campaign_report(org, id).await?;
    let chart = etalon_assessment::chart::campaign_chart_in(&report, &campaign, ctx.lang.chart_words());
    let mut needs: Vec<&etalon_assessment::campaign::CompetenceReport> = report.competences.iter().collect();
    needs.sort_by(|a, b| b.share_below_target.total_cmp(&a.share_below_target));
    Ok(html! {
        h2 { (t.participation) }
        p.counts {
            span { (ctx.lang.colon(t.started)) strong #started { (c.participation.started) } }
            " · "
            span { (ctx.lang.colon(t.finished)) strong #finished { (c.participation.finished) } }
        }
        @if report.participants == 0 {
            p { (t.no_results) }
        } @else {
            h2 { (t.distribution) }
            figure.chart tabindex="0" { (PreEscaped(inline(&chart))) }
            h2 { (t.training_needs) }
            div.scroll tabindex="0" { table #needs {
                thead { tr { th scope="col" { (t.competence) } th.num scope="col" { (t.target) } th.num scope="col" { (t.below_target) } th.num scope="col" { (t.mean_level) } } }
                tbody { @for n in &needs { tr {
                    th scope="row" { (n.id) " " (n.name) }
                    td.num { (n.target_level) }
                    td.num { (ctx.lang.percent(n.share_below_target)) }
                    td.num { (format!("{:+.2}", n.mean_theta)) }
                } } }
            } }
            h2 { (t.recommend) }
            ul.tutorials {
                @for n in needs.iter().filter(|n| n.share_below_target > 0.0) {
                    @for tu in &n.tutorials { li { a href=(tu.url) rel="noopener" { (tu.title) } " (" (n.id) ")" } }
                }
            }
        }
    })
}

#[derive(Deserialize)]
pub(super) struct OpenForm {
    #[serde(default)]
    csrf: String,
    open: bool,
}

/// `POST /org/campaigns/{id}/open` (`open` = true or false).
pub(super) async fn set_open(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<OpenForm>,
) -> Response {
    let s = signed!(ctx, state, jar);
    if let Some(r) = refuse_csrf(&ctx, &s, &f.csrf) {
        return r;
    }
    if let Err(e) = path_id("campaign", &id) {
        return error_page(&ctx, &e);
    }
    match state.service.set_open(&s.org, &id, f.open).await {
        Ok(_) => see_other(&format!("/org/campaigns/{}", url_escape(&id))),
        Err(e) => error_page(&ctx, &e),
    }
}

/// `GET /org/campaigns/{id}/results.csv`: the results, one row per participant and competence.
pub(super) async fn results_csv(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let s = signed!(ctx, state, jar);
    if let Err(e) = path_id("campaign", &id) {
        return error_page(&ctx, &e);
    }
    let results = match state.service.results(&s.org, &id).await {
        Ok(r) => r,
        Err(e) => return error_page(&ctx, &e),
    };
    let mut out = Vec::new();
    if let Err(e) = etalon_assessment::results::write_results_csv(&results, &mut out) {
        return error_page(&ctx, &ApiError::new(500, "internal", e.to_string()));
    }
    let mut r = out.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-results.csv\"",
        id.replace(['"', '\\', '\r', '\n'], "_")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
