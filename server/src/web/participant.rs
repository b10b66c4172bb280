//! The participant's pages: join a campaign by its code, answer one question at a time, see the
//! profile at the end. The session lives in an HttpOnly cookie (`session.token`), so a reload, a
//! closed tab or a lost connection comes back to the same question.

use super::i18n::{Lang, fill};
use super::{Ctx, csrf, error_page, layout, page, see_other, time_days};
use crate::api::AppState;
use crate::error::ApiError;
use crate::service::{AnswerRequest, StartRequest};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use etalon_assessment::ItemView;
use etalon_assessment::certainty::Certainty;
use etalon_assessment::chart::{inline, profile_chart};
use etalon_items::Tutorial;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

/// The cookie holding `session.token`.
const TAKE_COOKIE: &str = "etalon_take";

/// The cookie of a session this browser takes: HttpOnly, 30 days, `SameSite=Lax` — or, for a page
/// embedded in another site over https (an LMS's iframe), `SameSite=None; Secure`.
pub(super) fn take_cookie(session: &str, token: &str, embedded: bool) -> Cookie<'static> {
    Cookie::build((TAKE_COOKIE, format!("{session}.{token}")))
        .path("/")
        .http_only(true)
        .same_site(if embedded { SameSite::None } else { SameSite::Lax })
        .secure(embedded)
        .max_age(time_days(30))
        .build()
}

/// The session this browser is taking, from its cookie.
fn taking(jar: &CookieJar) -> Option<(String, String)> {
    let value = jar.get(TAKE_COOKIE)?.value().to_string();
    let (id, token) = value.split_once('.')?;
    Some((id.to_string(), token.to_string()))
}

fn join_form(ctx: &Ctx, code: &str, participant: &str, error: Option<&str>) -> Markup {
    let t = ctx.lang.t();
    html! {
        form.card method="post" action="/join" {
            h2 { (t.join_title) }
            @if let Some(e) = error { p.error role="alert" #join-error { (e) } }
            div.field {
                label for="code" { (t.code) }
                input #code name="code" type="text" required autocomplete="off" autocapitalize="characters"
                    spellcheck="false" maxlength="32" value=(code) aria-describedby="code-hint"
                    aria-invalid=[error.map(|_| "true")];
                p.hint #code-hint { (t.code_hint) }
            }
            div.field {
                label for="participant" { (t.identifier) }
                input #participant name="participant" type="text" autocomplete="off" maxlength="200"
                    value=(participant) aria-describedby="participant-hint";
                p.hint #participant-hint { (t.identifier_hint) }
            }
            button.primary type="submit" { (t.start) }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CodeQuery {
    code: Option<String>,
}

/// `GET /`: what Etalon is, the join form, and "continue" when this browser has a session running.
pub(super) async fn home(ctx: Ctx, State(state): State<AppState>, jar: CookieJar) -> Response {
    join_view(&ctx, &state, &jar, "").await
}

/// `GET /join?code=CODE`: the join form with the code filled in (the link an organisation sends).
pub(super) async fn join_page(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<CodeQuery>,
) -> Response {
    join_view(&ctx, &state, &jar, q.code.as_deref().unwrap_or("")).await
}

async fn join_view(ctx: &Ctx, state: &AppState, jar: &CookieJar, code: &str) -> Response {
    let t = ctx.lang.t();
    let running = match taking(jar) {
        Some((id, token)) => state
            .service
            .status(&id, Some(&token), None)
            .await
            .is_ok_and(|s| s.status == "in_progress"),
        None => false,
    };
    page(
        StatusCode::OK,
        layout(
            ctx,
            t.home,
            None,
            html! {
                h1 { (t.home) }
                p.lead { (t.tagline) }
                @if running {
                    section.card aria-labelledby="resume-title" {
                        h2 #resume-title { (t.resume_title) }
                        a.button.primary href="/take" { (t.resume) }
                    }
                }
                (join_form(ctx, code, "", None))
            },
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct JoinForm {
    code: String,
    #[serde(default)]
    participant: String,
}

/// `POST /join`: start a session in the campaign, keep it in a cookie, go to the first question.
pub(super) async fn join(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Form(f): Form<JoinForm>,
) -> Response {
    let code = f.code.trim().to_string();
    let participant = f.participant.trim().to_string();
    let req = StartRequest {
        campaign_code: Some(code.clone()),
        participant: (!participant.is_empty()).then(|| participant.clone()),
        ..StartRequest::default()
    };
    match state.service.start(None, req).await {
        Ok(started) => (
            jar.add(take_cookie(&started.session, &started.token, false)),
            see_other("/take"),
        )
            .into_response(),
        Err(e) if e.status < 500 => {
            let t = ctx.lang.t();
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            page(
                status,
                layout(
                    &ctx,
                    t.join_title,
                    None,
                    html! {
                        h1 { (t.home) }
                        (join_form(&ctx, &code, &participant, Some(&e.message)))
                    },
                ),
            )
        }
        Err(e) => error_page(&ctx, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct AfterQuery {
    after: Option<usize>,
    #[serde(default)]
    replayed: bool,
}

/// `GET /take`: the question to answer now (or, with `?after=K`, the feedback on answer K first).
pub(super) async fn question(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<AfterQuery>,
) -> Response {
    let t = ctx.lang.t();
    let Some((id, token)) = taking(&jar) else {
        return no_session(&ctx);
    };
    let status = match state.service.status(&id, Some(&token), None).await {
        Ok(s) => s,
        Err(e) if matches!(e.status, 401 | 404) => return no_session(&ctx),
        Err(e) => return error_page(&ctx, &e),
    };
    if let Some(k) = q.after {
        match state.service.feedback_at(&id, Some(&token), k).await {
            Ok(Some(f)) => {
                let go = if status.next.is_some() {
                    ("/take", t.next_question)
                } else {
                    ("/result", t.see_profile)
                };
                let title = match f.correct {
                    Some(true) => t.right,
                    Some(false) => t.wrong,
                    None => t.recorded,
                };
                return page(
                    StatusCode::OK,
                    layout(
                        &ctx,
                        title,
                        None,
                        html! {
                            p.step { (fill(t.answered_of, &[("k", &k), ("n", &status.max_items)])) }
                            (progress(ctx.lang, status.answered, status.max_items))
                            section.card.feedback role="status" {
                                h1.(if f.correct == Some(false) { "wrong" } else { "right" }) { (title) }
                                (tutorial_list(t.to_learn, &f.tutorials))
                            }
                            a.button.primary href=(go.0) autofocus data-swap { (go.1) }
                        },
                    ),
                );
            }
            Ok(None) => {}
            Err(e) => return error_page(&ctx, &e),
        }
    }
    let Some(item) = status.next else {
        return see_other("/result");
    };
    question_page(
        &ctx,
        &item,
        status.max_items,
        &csrf(&token),
        q.replayed.then_some(t.already_answered),
        StatusCode::OK,
    )
}

fn progress(lang: Lang, answered: usize, max: usize) -> Markup {
    let t = lang.t();
    html! {
        div.progress {
            label for="progress" { (t.progress) }
            progress #progress max=(max.max(1)) value=(answered.min(max)) { (answered) "/" (max) }
        }
    }
}

fn tutorial_list(heading: &str, tutorials: &[Tutorial]) -> Markup {
    html! {
        @if !tutorials.is_empty() {
            @if !heading.is_empty() { p { (heading) } }
            ul.tutorials {
                @for tu in tutorials { li { a href=(tu.url) rel="noopener" { (tu.title) } } }
            }
        }
    }
}

fn question_page(
    ctx: &Ctx,
    item: &ItemView,
    max: usize,
    csrf: &str,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let t = ctx.lang.t();
    let heading = fill(t.question_of, &[("k", &item.position), ("n", &max)]);
    let prompt = item.prompt.clone().unwrap_or_else(|| item.item.clone());
    // Options: the choices (sent as their index), or the response codes of an item without text.
    let options: Vec<(String, String, String)> = if item.choices.is_empty() {
        item.codes
            .iter()
            .map(|c| ("response".into(), c.to_string(), c.to_string()))
            .collect()
    } else {
        item.choices
            .iter()
            .enumerate()
            .map(|(i, c)| ("choice".into(), i.to_string(), c.clone()))
            .collect()
    };
    page(
        status,
        layout(
            ctx,
            &heading,
            None,
            html! {
                p.step { (heading) }
                (progress(ctx.lang, item.position - 1, max))
                @if let Some(n) = notice { p.notice role="status" { (n) } }
                form.card.question method="post" action="/take" data-once data-swap {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="position" value=(item.position);
                    input type="hidden" name="item" value=(item.item);
                    fieldset {
                        legend {
                            @if let Some(name) = &item.competence_name {
                                span.competence { (t.competence) " " (item.competence.as_deref().unwrap_or("")) " · " (name) }
                            }
                            h1 #prompt { (prompt) }
                        }
                        @for (i, (field, value, text)) in options.iter().enumerate() {
                            div.choice {
                                input type="radio" name=(field) value=(value) id={ "o" (i) } required autofocus[i == 0];
                                label for={ "o" (i) } { (text) }
                            }
                        }
                    }
                    button.primary type="submit" { (t.answer) }
                }
            },
        ),
    )
}

fn no_session(ctx: &Ctx) -> Response {
    let t = ctx.lang.t();
    page(
        StatusCode::OK,
        layout(
            ctx,
            t.home,
            None,
            html! {
                h1 { (t.home) }
                p.notice role="status" { (t.no_session) }
                (join_form(ctx, "", "", None))
            },
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct AnswerForm {
    #[serde(default)]
    csrf: String,
    position: i64,
    item: String,
    choice: Option<i64>,
    response: Option<i64>,
}

/// `POST /take`: record the answer (once: the position makes a repeat a replay), then go to the
/// feedback (if the campaign gives it), the next question or the profile.
pub(super) async fn answer(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<AnswerForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let t = ctx.lang.t();
    let Some((id, token)) = taking(&jar) else {
        return no_session(&ctx);
    };
    let Ok(Form(f)) = form else {
        // No option chosen (the browser enforces it; a script-less robot might not): ask again.
        return match state.service.status(&id, Some(&token), None).await {
            Ok(s) => match s.next {
                Some(item) => question_page(
                    &ctx,
                    &item,
                    s.max_items,
                    &csrf(&token),
                    Some(t.choose_one),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                None => see_other("/result"),
            },
            Err(e) => error_page(&ctx, &e),
        };
    };
    if f.csrf != csrf(&token) {
        return error_page(&ctx, &ApiError::new(403, "csrf", t.bad_form));
    }
    let req = AnswerRequest {
        position: f.position,
        item: f.item,
        response: f.response,
        choice: f.choice,
    };
    match state.service.answer(&id, Some(&token), req).await {
        Ok(a) if a.feedback.is_some() => see_other(&format!("/take?after={}", a.answered)),
        Ok(a) if a.next.is_none() => see_other("/result"),
        Ok(_) => see_other("/take"),
        // Already answered (a second click, the back button, another tab): show where the session is.
        Err(e) if e.status == 409 => see_other("/take?replayed=true"),
        Err(e) if matches!(e.status, 401 | 404) => no_session(&ctx),
        Err(e) => error_page(&ctx, &e),
    }
}

/// `GET /result`: the profile — level, label and certainty per competence, the chart against the
/// campaign's targets, the tutorials of the questions missed and the next steps.
pub(super) async fn result(ctx: Ctx, State(state): State<AppState>, jar: CookieJar) -> Response {
    let t = ctx.lang.t();
    let Some((id, token)) = taking(&jar) else {
        return no_session(&ctx);
    };
    let (r, bars) = match state.service.profile(&id, Some(&token)).await {
        Ok(x) => x,
        Err(e) if matches!(e.status, 401 | 404) => return no_session(&ctx),
        Err(e) => return error_page(&ctx, &e),
    };
    if !r.result.finished {
        return see_other("/take");
    }
    let chart = profile_chart(&bars, t.profile_chart, t.profile_legend);
    let next_steps: Vec<Tutorial> = r
        .result
        .competences
        .values()
        .flat_map(|c| c.next_steps.iter().cloned())
        .collect();
    let missed: Vec<Tutorial> = r
        .result
        .tutorials
        .iter()
        .map(|m| Tutorial {
            title: m.title.clone(),
            url: m.url.clone(),
        })
        .collect();
    page(
        StatusCode::OK,
        layout(
            &ctx,
            t.finished_title,
            None,
            html! {
                h1 { (t.finished_title) }
                p.lead { (t.finished_lead) }
                p.score { (ctx.lang.colon(t.score)) strong { (format!("{:.0}", r.result.score)) } " " (t.points) }
                table.profile {
                    thead { tr { th scope="col" { (t.competence) } th scope="col" { (t.level) } th scope="col" { (t.certainty) } th scope="col" { (t.target) } } }
                    tbody {
                        @for ((cid, c), bar) in r.result.competences.iter().zip(&bars) {
                            tr {
                                th scope="row" { (cid) " " (c.name) }
                                td data-label=(t.level) { (c.result.level) " · " (c.result.label) }
                                td data-label=(t.certainty) { (ctx.lang.certainty(Certainty::of(c.result.level_probability))) " " (c.result.label)
                                     " (" (ctx.lang.percent(c.result.level_probability)) ")" }
                                td data-label=(t.target) { @if let Some(tl) = bar.target {
                                    (tl) " · " (if c.result.level >= tl { t.reached } else { t.not_yet })
                                } @else { "—" } }
                            }
                        }
                    }
                }
                figure.chart tabindex="0" { (PreEscaped(inline(&chart))) }
                section {
                    h2 { (t.missed_title) }
                    @if missed.is_empty() { p { (t.nothing_missed) } } @else { (tutorial_list("", &missed)) }
                }
                @if !next_steps.is_empty() {
                    section {
                        h2 { (t.next_steps_title) }
                        (tutorial_list("", &next_steps))
                    }
                }
                form method="post" action="/leave" {
                    input type="hidden" name="csrf" value=(csrf(&token));
                    button.secondary type="submit" { (t.new_assessment) }
                }
            },
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /leave`: forget this browser's session (its answers stay recorded) and go back home.
pub(super) async fn leave(jar: CookieJar, Form(f): Form<CsrfForm>) -> Response {
    match taking(&jar) {
        Some((_, token)) if f.csrf == csrf(&token) => {
            (jar.remove(Cookie::build(TAKE_COOKIE).path("/")), see_other("/")).into_response()
        }
        _ => see_other("/"),
    }
}
