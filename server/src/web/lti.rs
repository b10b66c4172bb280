//! The browser side of LTI 1.3 (see [`crate::lti`]): the login redirect and the launch, answered with
//! pages (a person is in front of them), and the tool's public keys.

use super::participant::take_cookie;
use super::{Ctx, error_page, layout, page, see_other};
use crate::api::AppState;
use crate::lti::{Launch, LaunchForm, LoginRequest};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum_extra::extract::cookie::CookieJar;
use maud::html;

/// `GET /lti/login`: OIDC login initiation by query.
pub(super) async fn login_get(
    ctx: Ctx,
    State(state): State<AppState>,
    Query(q): Query<LoginRequest>,
) -> Response {
    login(ctx, state, q).await
}

/// `POST /lti/login`: the same, by form.
pub(super) async fn login_post(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(q): Form<LoginRequest>,
) -> Response {
    login(ctx, state, q).await
}

async fn login(ctx: Ctx, state: AppState, q: LoginRequest) -> Response {
    let redirect_uri = format!("{}/lti/launch", ctx.origin);
    match state.service.lti_login(q, &redirect_uri).await {
        // A 302 (not 303): the browser goes to the platform with a GET either way.
        Ok(url) => axum::response::Redirect::to(&url).into_response(),
        Err(e) => error_page(&ctx, &e),
    }
}

/// `POST /lti/launch`: validate the id_token; a learner's launch opens their session and goes to the
/// question page, a teacher's deep linking request shows the campaigns to choose from.
pub(super) async fn launch(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Form(f): Form<LaunchForm>,
) -> Response {
    match state.service.lti_launch(f).await {
        Ok(Launch::Resource(l)) => {
            let embedded = ctx.origin.starts_with("https://");
            (
                jar.add(take_cookie(&l.session, &l.token, embedded)),
                see_other("/take"),
            )
                .into_response()
        }
        Ok(Launch::DeepLinking(dl)) => {
            let (context, campaigns) = match (
                state.service.sign_deep_link_context(&dl).await,
                state.service.deep_link_campaigns(dl.org).await,
            ) {
                (Ok(c), Ok(list)) => (c, list),
                (Err(e), _) | (_, Err(e)) => return error_page(&ctx, &e),
            };
            let t = ctx.lang.t();
            page(
                StatusCode::OK,
                layout(
                    &ctx,
                    t.dl_title,
                    None,
                    html! {
                        h1 { (t.dl_title) }
                        @if campaigns.is_empty() { p { (t.no_campaigns) } } @else {
                            form.card method="post" action="/lti/deep-link" {
                                input type="hidden" name="context" value=(context);
                                fieldset {
                                    legend { (t.dl_choose) }
                                    @for (i, c) in campaigns.iter().enumerate() {
                                        div.choice {
                                            input type="radio" name="campaign" value=(c.id) id={ "c" (i) } required autofocus[i == 0];
                                            label for={ "c" (i) } { (c.name) " (" (c.code) ")" }
                                        }
                                    }
                                }
                                button.primary type="submit" { (t.dl_add) }
                            }
                        }
                    },
                ),
            )
        }
        Err(e) => error_page(&ctx, &e),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct DeepLinkForm {
    #[serde(default)]
    context: String,
    #[serde(default)]
    campaign: String,
}

/// `POST /lti/deep-link`: the teacher's choice, sent back to the platform in a signed
/// `LtiDeepLinkingResponse` (a form the page's script posts at once; a button without script).
pub(super) async fn deep_link(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(f): Form<DeepLinkForm>,
) -> Response {
    let launch_url = format!("{}/lti/launch", ctx.origin);
    let (return_url, jwt) = match state
        .service
        .deep_link_response(&f.context, &f.campaign, &launch_url)
        .await
    {
        Ok(x) => x,
        Err(e) => return error_page(&ctx, &e),
    };
    let t = ctx.lang.t();
    let mut r = page(
        StatusCode::OK,
        layout(
            &ctx,
            t.dl_title,
            None,
            html! {
                h1 { (t.dl_title) }
                form.card method="post" action=(return_url) data-autosubmit {
                    input type="hidden" name="JWT" value=(jwt);
                    p { (t.dl_back) }
                    button.primary type="submit" { (t.dl_return) }
                }
            },
        ),
    );
    // This page's form goes to the platform: allow that one origin.
    let origin = url::Url::parse(&return_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self' {origin}; base-uri 'none'; frame-ancestors 'none'"
    )) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// `GET /lti/jwks`: the tool's public keys (JWK set).
pub(super) async fn jwks(ctx: Ctx, State(state): State<AppState>) -> Response {
    match state.service.tool_jwks().await {
        Ok(set) => Json(set).into_response(),
        Err(e) => error_page(&ctx, &e),
    }
}
