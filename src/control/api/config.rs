//! The running config: read it, replace it, roll it back, edit it item by item.
//!
//! Every change goes through `LiveConfig`: checked exactly as `check-config` checks a file
//! (problems come back with line, column and field, for the page to show beside the input),
//! written atomically, applied live, versioned.

use super::access::{Admin, Reader};
use super::{json_body, problem, ApiError, ConfigBody, ConfigText, Section};
use crate::control::live::{Applied, Refused};
use crate::control::web::Web;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[utoipa::path(get, path = "/api/config", tag = "config", responses((status = 200, body = ConfigText), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_config(State(w): State<Web>, _: Reader) -> Response {
    match &w.gw.live {
        Some(live) => {
            let (version, toml) = live.redacted();
            ([etag(version)], Json(ConfigText { version, toml })).into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "not started from a config file"),
    }
}

fn refused(r: Refused) -> Response {
    let (code, problems) = match &r {
        Refused::Invalid(p) => (StatusCode::UNPROCESSABLE_ENTITY, Some(p.clone())),
        Refused::NotFound(_) => (StatusCode::NOT_FOUND, None),
        Refused::Conflict(_) => (StatusCode::CONFLICT, None),
        Refused::Stale { .. } => (StatusCode::PRECONDITION_FAILED, None),
        Refused::Other(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
    };
    let error = match &r {
        Refused::Invalid(_) => "invalid config; nothing changed".to_string(),
        other => other.to_string(),
    };
    ApiError {
        problems,
        version: match r {
            Refused::Stale { current, .. } => Some(current),
            _ => None,
        },
        ..ApiError::new(code, error)
    }
    .into_response()
}

/// The version an edit started from: `If-Match: "7"` (the `ETag` of the GET it read).
/// `Ok(None)` without the header; an unreadable one is refused rather than ignored.
fn started_from(headers: &HeaderMap) -> Result<Option<u64>, String> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    let bare = text.trim().trim_start_matches("W/").trim_matches('"');
    bare.parse::<u64>().map(Some).map_err(|_| {
        format!("If-Match must be the ETag of the config that was read (e.g. \"7\"), got {text:?}")
    })
}

fn etag(version: u64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// A stale edit's answer: the refusal with the item as it is now.
fn stale(w: &Web, section: &str, name: &str, r: Refused) -> Response {
    let Refused::Stale { current, .. } = &r else {
        return refused(r);
    };
    let now =
        w.gw.live
            .as_ref()
            .and_then(|l| l.items(section).ok())
            .and_then(|items| items.into_iter().find(|i| i["name"] == name));
    ApiError {
        version: Some(*current),
        current: now,
        ..ApiError::new(StatusCode::PRECONDITION_FAILED, r.to_string())
    }
    .into_response()
}

/// Runs a blocking config change (cameras stop and start) off the async workers. `item` is
/// the (section, name) an item edit is about: a stale one is answered with that item as it
/// is now.
async fn change(
    w: &Web,
    item: Option<(String, String)>,
    f: impl FnOnce(&crate::control::live::LiveConfig) -> Result<Applied, Refused> + Send + 'static,
) -> Response {
    let Some(live) = w.gw.live.clone() else {
        return problem(StatusCode::NOT_FOUND, "not started from a config file");
    };
    match tokio::task::spawn_blocking(move || f(&live)).await {
        Ok(Ok(applied)) => Json(applied).into_response(),
        Ok(Err(r @ Refused::Stale { .. })) => match &item {
            Some((section, name)) => stale(w, section, name, r),
            None => refused(r),
        },
        Ok(Err(r)) => refused(r),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Replace the whole config file.
#[utoipa::path(put, path = "/api/config", tag = "config", request_body = ConfigBody,
    responses((status = 200, body = Applied), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 415, body = ApiError),
              (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_config_put(
    State(w): State<Web>,
    _: Admin,
    body: Result<Json<ConfigBody>, JsonRejection>,
) -> Response {
    match json_body(body) {
        Ok(b) => change(&w, None, move |live| live.replace(&b.toml)).await,
        Err(r) => r.into_response(),
    }
}

/// Go back to the config in effect before the last change.
#[utoipa::path(post, path = "/api/config/rollback", tag = "config",
    responses((status = 200, body = Applied), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_rollback(State(w): State<Web>, _: Admin) -> Response {
    change(&w, None, |live| live.rollback()).await
}

/// The items of one section as JSON objects (secrets as "(set)").
#[utoipa::path(get, path = "/api/config/{section}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone, line or sink")),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ApiError), (status = 404, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_items(
    State(w): State<Web>,
    _: Reader,
    Path(section): Path<String>,
) -> Response {
    let Some(live) = w.gw.live.clone() else {
        return problem(StatusCode::NOT_FOUND, "not started from a config file");
    };
    let version = live.version();
    match live.items(&section) {
        Ok(items) => ([etag(version)], Json(items)).into_response(),
        Err(r) => refused(r),
    }
}

/// Add one camera, rule, zone or sink; refused (409) when its name is taken.
#[utoipa::path(post, path = "/api/config/{section}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone, line or sink")),
    request_body(content = Object, description = "the item's fields, as in the TOML file, with its name"),
    responses((status = 200, body = Applied), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 412, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_item_create(
    State(w): State<Web>,
    _: Admin,
    Path(section): Path<String>,
    headers: HeaderMap,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let started = match started_from(&headers) {
        Ok(v) => v,
        Err(m) => return problem(StatusCode::BAD_REQUEST, m),
    };
    match json_body(body) {
        Ok(value) => {
            change(&w, None, move |live| {
                live.edit_from(started, |text| {
                    crate::control::edit::create_item(text, &section, &value).map(|(t, _)| t)
                })
            })
            .await
        }
        Err(r) => r.into_response(),
    }
}

/// Query of an item edit.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub(super) struct EditQuery {
    /// Allow the body's `name` to differ from the path's: the item is renamed.
    #[serde(default)]
    rename: bool,
}

/// Replace one existing camera, rule, zone or sink (the fields of its `[[section]]` table).
/// `If-Match` with the `ETag` it was read at refuses a stale edit (412, with the item as it
/// is now); the body's `name` must be the path's unless `?rename=true`.
#[utoipa::path(put, path = "/api/config/{section}/{name}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone, line or sink"),
           ("name" = String, Path, description = "the item's name"), EditQuery),
    request_body(content = Object, description = "the item's fields, as in the TOML file"),
    responses((status = 200, body = Applied), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 412, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_item_put(
    State(w): State<Web>,
    _: Admin,
    Path((section, name)): Path<(String, String)>,
    query: Result<Query<EditQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(StatusCode::BAD_REQUEST, "rename must be true or false");
    };
    let started = match started_from(&headers) {
        Ok(v) => v,
        Err(m) => return problem(StatusCode::BAD_REQUEST, m),
    };
    let value = match json_body(body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let item = Some((section.clone(), name.clone()));
    change(&w, item, move |live| {
        live.edit_from(started, |text| {
            crate::control::edit::replace_item(text, &section, &name, &value, q.rename)
        })
    })
    .await
}

/// Delete one camera, rule, zone or sink.
#[utoipa::path(delete, path = "/api/config/{section}/{name}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone, line or sink"),
           ("name" = String, Path, description = "the item's name")),
    responses((status = 200, body = Applied), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 412, body = ApiError),
              (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_item_delete(
    State(w): State<Web>,
    _: Admin,
    Path((section, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let started = match started_from(&headers) {
        Ok(v) => v,
        Err(m) => return problem(StatusCode::BAD_REQUEST, m),
    };
    let item = Some((section.clone(), name.clone()));
    change(&w, item, move |live| {
        live.edit_from(started, |text| {
            crate::control::edit::delete_item(text, &section, &name)
        })
    })
    .await
}
