//! Setting the admin password, logging in and out, API tokens.

use super::access::session_cookie;
use super::access::Admin;
use super::{json_body, problem, ApiError, Csrf, NewToken, SetUpState};
use crate::control::web::Web;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::SocketAddr;
use watchpost_web::auth::{AuthError, Principal, SESSION_COOKIE};

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct SetupBody {
    code: String,
    password: String,
}

#[utoipa::path(post, path = "/api/setup", tag = "auth", request_body = SetupBody, responses((status = 204, description = "password set"), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError), (status = 503, body = ApiError, description = "auth.json cannot be read: sign-in is off")))]
pub(super) async fn api_setup(
    State(w): State<Web>,
    body: Result<Json<SetupBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let auth = w.auth.clone();
    match tokio::task::spawn_blocking(move || auth.setup(&b.code, &b.password)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e @ AuthError::BadCode)) => problem(StatusCode::FORBIDDEN, e),
        Ok(Err(e @ AuthError::AlreadySetUp)) => problem(StatusCode::CONFLICT, e),
        Ok(Err(e @ AuthError::WeakPassword)) => problem(StatusCode::BAD_REQUEST, e),
        Ok(Err(e @ AuthError::Damaged(_))) => problem(StatusCode::SERVICE_UNAVAILABLE, e),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct LoginBody {
    password: String,
}

#[utoipa::path(post, path = "/api/login", tag = "auth", request_body = LoginBody, responses((status = 200, body = Csrf, description = "session cookie set"), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError), (status = 429, body = ApiError), (status = 503, body = ApiError, description = "auth.json cannot be read: sign-in is off")))]
pub(super) async fn api_login(
    State(w): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let auth = w.auth.clone();
    match tokio::task::spawn_blocking(move || auth.login(peer.ip(), &b.password)).await {
        Ok(Ok((session, csrf))) => {
            let cookie = format!(
                "{SESSION_COOKIE}={session}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=43200"
            );
            ([(header::SET_COOKIE, cookie)], Json(Csrf { csrf })).into_response()
        }
        Ok(Err(e @ AuthError::RateLimited(_))) => problem(StatusCode::TOO_MANY_REQUESTS, e),
        Ok(Err(e @ AuthError::NotSetUp)) => problem(StatusCode::CONFLICT, e),
        Ok(Err(e @ AuthError::Damaged(_))) => problem(StatusCode::SERVICE_UNAVAILABLE, e),
        Ok(Err(e)) => problem(StatusCode::UNAUTHORIZED, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[utoipa::path(post, path = "/api/logout", tag = "auth", responses((status = 204, description = "session ended"), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_logout(State(w): State<Web>, _: Admin, headers: HeaderMap) -> Response {
    if let Some(s) = session_cookie(&headers) {
        w.auth.logout(&s);
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response()
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct TokenBody {
    name: String,
}

#[utoipa::path(post, path = "/api/tokens", tag = "auth", request_body = TokenBody, responses((status = 200, body = NewToken), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_tokens(
    State(w): State<Web>,
    Admin(principal): Admin,
    body: Result<Json<TokenBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    match principal {
        // Tokens do not mint tokens: only a person logged in does.
        Principal::Token { .. } => problem(StatusCode::FORBIDDEN, "log in to create API tokens"),
        Principal::Session { .. } => match w.auth.create_token(&b.name) {
            Ok(token) => Json(NewToken {
                name: b.name,
                token,
            })
            .into_response(),
            Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
    }
}

/// For the page after a reload: the session's CSRF token if the cookie is valid (readable
/// only by same-origin script), else 401 with whether the admin password is set.
#[utoipa::path(get, path = "/api/session", tag = "auth", responses((status = 200, body = Csrf, description = "logged in"), (status = 401, body = SetUpState, description = "not logged in")))]
pub(super) async fn api_session(State(w): State<Web>, headers: HeaderMap) -> Response {
    match session_cookie(&headers).and_then(|s| w.auth.session(&s)) {
        Some(Principal::Session { csrf, .. }) => Json(Csrf { csrf }).into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(SetUpState {
                set_up: w.auth.is_set_up(),
            }),
        )
            .into_response(),
    }
}
