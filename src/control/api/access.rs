//! Who may call what, as axum extractors: a handler that takes [`Reader`] is reached only by
//! someone signed in (a session or an API token); one that takes [`Admin`] also needs the
//! session's CSRF token. No handler checks by hand.

use super::ApiError;
use crate::control::web::Web;
use axum::http::HeaderMap;
use watchpost_web::auth::Principal;

pub(super) use watchpost_web::access::session_cookie;

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

/// Who is asking (see [`watchpost_web::access::principal`]).
fn who(w: &Web, headers: &HeaderMap, changes: bool) -> Result<Principal, ApiError> {
    watchpost_web::access::principal(&w.auth, headers, changes)
        .map_err(|d| ApiError::new(d.status, d.message))
}
