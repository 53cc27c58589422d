//! Who may call what, as axum extractors: a handler that takes [`Reader`] is reached only by
//! someone signed in (a session or an API token); one that takes [`Admin`] also needs the
//! session's CSRF token. No handler checks by hand.

use super::ApiError;
use crate::control::web::Web;
use axum::http::{header, HeaderMap, StatusCode};
use watchpost_web::auth::{Principal, SESSION_COOKIE};

/// The session cookie's value. By hand: one cookie, `name=value` pairs split on `;`.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_string())
        })
}

/// A signed-in reader: a session or an API token, or 401. A handler that takes one can only
/// be reached by someone allowed to read.
pub(in crate::control) struct Reader;

/// Someone allowed to change state: a reader who, with a session, also sent its CSRF token
/// (401 or 403 otherwise).
pub(in crate::control) struct Admin(pub(in crate::control) Principal);

impl axum::extract::FromRequestParts<Web> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        w: &Web,
    ) -> Result<Self, ApiError> {
        who(w, &parts.headers, false).map(|_| Reader)
    }
}

impl axum::extract::FromRequestParts<Web> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        w: &Web,
    ) -> Result<Self, ApiError> {
        who(w, &parts.headers, true).map(Admin)
    }
}

/// Who is asking, or 401. `changes`: the request changes state, so a session must also show
/// its CSRF token (API tokens are never sent by a browser on its own, so they need none).
fn who(w: &Web, headers: &HeaderMap, changes: bool) -> Result<Principal, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let principal = match bearer {
        Some(t) => w.auth.token(t.trim()),
        None => session_cookie(headers).and_then(|s| w.auth.session(&s)),
    }
    .ok_or(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "log in, or send an API token",
    ))?;
    if changes && principal.role() == watchpost_web::auth::Role::Viewer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this account may only read",
        ));
    }
    if let (true, Principal::Session { csrf, .. }) = (changes, &principal) {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = watchpost_web::auth::same(sent.as_bytes(), csrf.as_bytes());
        if !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token",
            ));
        }
    }
    Ok(principal)
}
