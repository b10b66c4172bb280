//! The web pages of `etalon serve`: participants take a campaign's assessment in a browser, and an
//! organisation signs in to manage its banks and campaigns and watch results arrive.
//!
//! Pages are rendered on the server (maud templates, escaped by construction) over the same
//! [`Service`](crate::service::Service) as the JSON API, so they record the same answers in the same
//! log. They work without JavaScript — every step is an HTML form, posted once and answered with a
//! redirect (post/redirect/get), so a reload or the back button never records an answer twice (the
//! position sent with each answer makes a repeat a replay) — and a small script only adds what a
//! browser can: a submit button that cannot be clicked twice, and the live campaign view refreshing
//! itself. Assets are embedded in the binary.
//!
//! Security: a participant's page carries the question's text and options only ([`ItemView`]); its
//! session is an HttpOnly, `SameSite=Lax` cookie holding the session token. The organisation signs in
//! with its key, which buys an HttpOnly, `SameSite=Strict` cookie with a random sign-in token (stored
//! hashed, expiring); every form posted carries a CSRF token derived from the cookie's secret.
//! Every page is sent with a strict Content-Security-Policy (no inline script or style).
//!
//! [`ItemView`]: etalon_assessment::ItemView

pub mod i18n;
mod lti;
mod org;
mod participant;

use crate::api::AppState;
use crate::auth;
use crate::error::ApiError;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use i18n::Lang;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use std::sync::OnceLock;

/// The stylesheet.
const STYLE: &str = include_str!("assets/style.css");
/// The script (progressive enhancement only).
const SCRIPT: &str = include_str!("assets/app.js");

/// Cookie naming the page language.
const LANG_COOKIE: &str = "etalon_lang";

/// The routes of the pages.
pub fn routes(max_body: usize) -> Router<AppState> {
    Router::new()
        .route("/", get(participant::home))
        .route("/join", get(participant::join_page).post(participant::join))
        .route("/take", get(participant::question).post(participant::answer))
        .route("/result", get(participant::result))
        .route("/leave", post(participant::leave))
        .route("/org", get(org::dashboard))
        .route("/org/signin", post(org::sign_in))
        .route("/org/signout", post(org::sign_out))
        .route("/org/banks", post(org::upload))
        .route("/org/banks/{id}", get(org::bank))
        .route("/org/banks/{id}/items/{item}", get(org::item))
        .route("/org/campaigns", post(org::create_campaign))
        .route("/org/campaigns/new", get(org::new_campaign))
        .route("/org/campaigns/{id}", get(org::campaign))
        .route("/org/campaigns/{id}/live", get(org::campaign_live))
        .route("/org/campaigns/{id}/open", post(org::set_open))
        .route("/org/campaigns/{id}/results.csv", get(org::results_csv))
        .route("/lti/login", get(lti::login_get).post(lti::login_post))
        .route("/lti/launch", post(lti::launch))
        .route("/lti/deep-link", post(lti::deep_link))
        .route("/lti/jwks", get(lti::jwks))
        .route("/lang/{code}", get(switch_language))
        .route("/assets/{name}", get(asset))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
}

/// What every page handler knows of the request: the language and the path (for the switch link).
pub struct Ctx {
    /// The page language: the cookie, else the browser's `Accept-Language`, else English.
    pub lang: Lang,
    /// Path and query of the request.
    pub path: String,
    /// Host the browser used (join links are built on it), with its scheme.
    pub origin: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let lang = jar
            .get(LANG_COOKIE)
            .and_then(|c| Lang::parse(c.value()))
            .unwrap_or_else(|| {
                Lang::from_accept_language(header_text(&parts.headers, header::ACCEPT_LANGUAGE))
            });
        let host = header_text(&parts.headers, header::HOST);
        let scheme = match header_text(&parts.headers, "x-forwarded-proto") {
            "https" => "https",
            _ => "http",
        };
        Ok(Ctx {
            lang,
            path: parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_string()),
            origin: if host.is_empty() {
                String::new()
            } else {
                format!("{scheme}://{host}")
            },
        })
    }
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The CSRF token of forms posted under a cookie secret (a sign-in or session token): a hash of it,
/// which a page can show and another site cannot compute.
pub fn csrf(secret: &str) -> String {
    auth::hash(&format!("csrf:{secret}"))
}

/// An HTML page answer: no caching (a page shows a session's state), strict CSP.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    r
}

/// A 303 to `to` (post/redirect/get).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The version stamp of the assets (a hash of their text): URLs change when the assets do, so they
/// can be cached for a year.
fn asset_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| auth::hash(&format!("{STYLE}{SCRIPT}"))[..12].to_string())
}

/// A page: header (home, organisation space, language switch), `main` with `body`, footer.
/// `signed_in` adds the organisation's name and a sign-out button (its CSRF token given).
pub fn layout(ctx: &Ctx, title: &str, signed_in: Option<(&str, &str)>, body: Markup) -> Markup {
    let t = ctx.lang.t();
    let other = ctx.lang.other();
    let v = asset_version();
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Etalon" }
                link rel="stylesheet" href={ "/assets/style.css?v=" (v) };
                script src={ "/assets/app.js?v=" (v) } defer {}
            }
            body {
                a.skip href="#main" { (t.skip) }
                header.top {
                    a.brand href="/" { "Etalon" }
                    nav aria-label=(t.main_nav) {
                        ul {
                            li { a href="/" aria-current=[(!ctx.path.starts_with("/org")).then_some("page")] { (t.home) } }
                            li { a href="/org" aria-current=[ctx.path.starts_with("/org").then_some("page")] { (t.org_space) } }
                            li {
                                a href={ "/lang/" (other.code()) "?back=" (url_escape(&ctx.path)) }
                                    lang=(other.code()) hreflang=(other.code()) { (t.switch_to) }
                            }
                        }
                    }
                }
                @if let Some((org, token)) = signed_in {
                    div.signed {
                        span { (i18n::fill(t.signed_in_as, &[("org", &org)])) }
                        form method="post" action="/org/signout" {
                            input type="hidden" name="csrf" value=(token);
                            button.link type="submit" { (t.sign_out) }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
                footer { p { "Etalon — " (env!("CARGO_PKG_VERSION")) } }
            }
        }
    }
}

/// `s` escaped for a URL query value.
pub fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error shown as a page: its status (4xx, or 503 with Retry-After) and message, in the page's
/// language, with a way back.
pub fn error_page(ctx: &Ctx, e: &ApiError) -> Response {
    let t = ctx.lang.t();
    let message = match e.status {
        503 => t.unavailable.to_string(),
        404 => format!("{} {}", t.not_found, e.message),
        _ => e.message.clone(),
    };
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = page(
        status,
        layout(
            ctx,
            t.error_title,
            None,
            html! {
                h1 { (t.error_title) }
                p.error role="alert" { (message) }
                p { a href="/" { (t.back_home) } }
            },
        ),
    );
    if e.status == 503 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

#[derive(Deserialize)]
struct Back {
    back: Option<String>,
}

/// `GET /lang/{code}?back=PATH`: remember the language in a cookie, and go back.
async fn switch_language(Path(code): Path<String>, Query(q): Query<Back>, jar: CookieJar) -> Response {
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let Some(lang) = Lang::parse(&code) else {
        return see_other(&back);
    };
    let cookie = Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .max_age(time_days(365))
        .same_site(SameSite::Lax)
        .http_only(true)
        .build();
    (jar.add(cookie), see_other(&back)).into_response()
}

/// A cookie lifetime of `days`.
pub fn time_days(days: i64) -> cookie::time::Duration {
    cookie::time::Duration::days(days)
}

/// `GET /assets/{name}`: the embedded stylesheet and script, cacheable for a year (their URLs carry
/// a version).
async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return ApiError::not_found("no such asset").into_response(),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
