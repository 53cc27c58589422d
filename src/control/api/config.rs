//! The running config: read it, replace it, roll it back, edit it item by item.
//!
//! Every change goes through `LiveConfig`: checked exactly as `check-config` checks a file
//! (problems come back with line, column and field, for the page to show beside the input),
//! written atomically, applied live, versioned.

use super::access::{Admin, Reader};
use super::{json_body, problem, ApiError, ConfigBody, ConfigText, Section};
use crate::control::live::{Applied, Refused};
use crate::control::web::Web;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[utoipa::path(get, path = "/api/config", tag = "config", responses((status = 200, body = ConfigText), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_config(State(w): State<Web>, _: Reader) -> Response {
    match &w.gw.live {
        Some(live) => {
            let (version, toml) = live.redacted();
            Json(ConfigText { version, toml }).into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "not started from a config file"),
    }
}

fn refused(r: Refused) -> Response {
    let (code, problems) = match &r {
        Refused::Invalid(p) => (StatusCode::UNPROCESSABLE_ENTITY, Some(p.clone())),
        Refused::NotFound(_) => (StatusCode::NOT_FOUND, None),
        Refused::Other(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
    };
    let error = match &r {
        Refused::Invalid(_) => "invalid config; nothing changed".to_string(),
        other => other.to_string(),
    };
    ApiError {
        status: code,
        error,
        problems,
    }
    .into_response()
}

/// Runs a blocking config change (cameras stop and start) off the async workers.
async fn change(
    w: &Web,
    f: impl FnOnce(&crate::control::live::LiveConfig) -> Result<Applied, Refused> + Send + 'static,
) -> Response {
    let Some(live) = w.gw.live.clone() else {
        return problem(StatusCode::NOT_FOUND, "not started from a config file");
    };
    match tokio::task::spawn_blocking(move || f(&live)).await {
        Ok(Ok(applied)) => Json(applied).into_response(),
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
        Ok(b) => change(&w, move |live| live.replace(&b.toml)).await,
        Err(r) => r.into_response(),
    }
}

/// Go back to the config in effect before the last change.
#[utoipa::path(post, path = "/api/config/rollback", tag = "config",
    responses((status = 200, body = Applied), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_rollback(State(w): State<Web>, _: Admin) -> Response {
    change(&w, |live| live.rollback()).await
}

/// The items of one section as JSON objects (secrets as "(set)").
#[utoipa::path(get, path = "/api/config/{section}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone or sink")),
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
    match live.items(&section) {
        Ok(items) => Json(items).into_response(),
        Err(r) => refused(r),
    }
}

/// Add or replace one camera, rule, zone or sink (the fields of its `[[section]]` table).
#[utoipa::path(put, path = "/api/config/{section}/{name}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone or sink"),
           ("name" = String, Path, description = "the item's name")),
    request_body(content = Object, description = "the item's fields, as in the TOML file"),
    responses((status = 200, body = Applied), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 415, body = ApiError),
              (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_item_put(
    State(w): State<Web>,
    _: Admin,
    Path((section, name)): Path<(String, String)>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    match json_body(body) {
        Ok(value) => {
            change(&w, move |live| {
                live.edit(|text| crate::control::edit::put_item(text, &section, &name, &value))
            })
            .await
        }
        Err(r) => r.into_response(),
    }
}

/// Delete one camera, rule, zone or sink.
#[utoipa::path(delete, path = "/api/config/{section}/{name}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone or sink"),
           ("name" = String, Path, description = "the item's name")),
    responses((status = 200, body = Applied), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_item_delete(
    State(w): State<Web>,
    _: Admin,
    Path((section, name)): Path<(String, String)>,
) -> Response {
    change(&w, move |live| {
        live.edit(|text| crate::control::edit::delete_item(text, &section, &name))
    })
    .await
}
