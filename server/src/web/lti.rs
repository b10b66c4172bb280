//! The browser side of LTI 1.3 (see [`crate::lti`]): the login redirect and the launch, answered with
//! pages (a person is in front of them), and the tool's public keys.

use super::participant::take_cookie;
use super::{Ctx, error_page, see_other};
use crate::api::AppState;
use crate::lti::{LaunchForm, LoginRequest};
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Json, Response};
use axum_extra::extract::cookie::CookieJar;

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

/// `POST /lti/launch`: validate the id_token, open the learner's session, go to the question page.
pub(super) async fn launch(
    ctx: Ctx,
    State(state): State<AppState>,
    jar: CookieJar,
    Form(f): Form<LaunchForm>,
) -> Response {
    match state.service.lti_launch(f).await {
        Ok(l) => {
            let embedded = ctx.origin.starts_with("https://");
            (
                jar.add(take_cookie(&l.session, &l.token, embedded)),
                see_other("/take"),
            )
                .into_response()
        }
        Err(e) => error_page(&ctx, &e),
    }
}

/// `GET /lti/jwks`: the tool's public keys (JWK set).
pub(super) async fn jwks(ctx: Ctx, State(state): State<AppState>) -> Response {
    match state.service.tool_jwks().await {
        Ok(set) => Json(set).into_response(),
        Err(e) => error_page(&ctx, &e),
    }
}
