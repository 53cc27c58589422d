//! Who a request is, from its headers: a bearer API token, or the session cookie (and, for a
//! request that changes state, the session's CSRF token and a role allowed to change).

use crate::auth::{same, Auth, Principal, Role, SESSION_COOKIE};
use axum::http::{header, HeaderMap, StatusCode};

/// Why a request was turned away: the status to answer and the reason in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    pub status: StatusCode,
    pub message: &'static str,
}

/// The session cookie's value. By hand: one cookie, `name=value` pairs split on `;`.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
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

/// Who is asking, or 401. `changes`: the request changes state, so the principal must be an
/// admin (403) and a session must also show its CSRF token in `X-CSRF-Token` (403); API
/// tokens need none, a browser never sends them on its own.
pub fn principal(auth: &Auth, headers: &HeaderMap, changes: bool) -> Result<Principal, Denied> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let principal = match bearer {
        Some(t) => auth.token(t.trim()),
        None => session_cookie(headers).and_then(|s| auth.session(&s)),
    }
    .ok_or(Denied {
        status: StatusCode::UNAUTHORIZED,
        message: "log in, or send an API token",
    })?;
    if !changes {
        return Ok(principal);
    }
    if principal.role() == Role::Viewer {
        return Err(Denied {
            status: StatusCode::FORBIDDEN,
            message: "this account may only read",
        });
    }
    if let Principal::Session { csrf, .. } = &principal {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same(sent.as_bytes(), csrf.as_bytes()) {
            return Err(Denied {
                status: StatusCode::FORBIDDEN,
                message: "missing or wrong X-CSRF-Token",
            });
        }
    }
    Ok(principal)
}
