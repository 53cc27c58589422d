//! The REST API's configuration, sink and dead-letter endpoints, and the OpenAPI document
//! generated from the handlers' annotations (utoipa), served at `/api/openapi.json`.
//!
//! Every change goes through [`LiveConfig`]: checked exactly as `check-config` checks a file
//! (problems come back with line, column and field, for the page to show beside the input),
//! written atomically, applied live, versioned.

use super::live::{Applied, Refused};
use super::web::{problem, who, Web};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every refusal: what went wrong, and for an invalid config each problem with its place.
#[derive(Serialize, ToSchema)]
pub struct ApiError {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<crate::config::Problem>>,
}

#[derive(Serialize, ToSchema)]
pub struct Csrf {
    /// Send back as `X-CSRF-Token` on every request that changes something.
    pub csrf: String,
}

#[derive(Serialize, ToSchema)]
pub struct SetUpState {
    /// Whether the admin password is set (log in) or not (first-start setup).
    pub set_up: bool,
}

#[derive(Serialize, ToSchema)]
pub struct NewToken {
    pub name: String,
    /// Shown once; only its hash is kept.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConfigText {
    pub version: u64,
    /// The running file, comments kept, secrets as "(set)".
    pub toml: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ConfigBody {
    /// A whole config file; secrets may be sent back as "(set)" (the running ones are kept).
    pub toml: String,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    pub replayed: usize,
}

/// The sections edited item by item.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    Camera,
    Rule,
    Zone,
    Sink,
}

/// A body axum could not read, answered as JSON (axum's own rejection is plain text).
pub(super) struct BadBody(StatusCode, String);

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        problem(self.0, self.1)
    }
}

/// A JSON body, or why not.
pub(super) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, BadBody> {
    body.map(|Json(b)| b)
        .map_err(|e| BadBody(e.status(), e.body_text()))
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
    (code, Json(ApiError { error, problems })).into_response()
}

/// Runs a blocking config change (cameras stop and start) off the async workers.
async fn change(
    w: &Web,
    f: impl FnOnce(&super::live::LiveConfig) -> Result<Applied, Refused> + Send + 'static,
) -> Response {
    let Some(live) = w.live.clone() else {
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
    headers: HeaderMap,
    body: Result<Json<ConfigBody>, JsonRejection>,
) -> Response {
    if let Err(d) = who(&w, &headers, true) {
        return d.into_response();
    }
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
pub(super) async fn api_rollback(State(w): State<Web>, headers: HeaderMap) -> Response {
    if let Err(d) = who(&w, &headers, true) {
        return d.into_response();
    }
    change(&w, |live| live.rollback()).await
}

/// The items of one section as JSON objects (secrets as "(set)").
#[utoipa::path(get, path = "/api/config/{section}", tag = "config",
    params(("section" = Section, Path, description = "camera, rule, zone or sink")),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ApiError), (status = 404, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_items(
    State(w): State<Web>,
    headers: HeaderMap,
    Path(section): Path<String>,
) -> Response {
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    let Some(live) = w.live.clone() else {
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
    headers: HeaderMap,
    Path((section, name)): Path<(String, String)>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    if let Err(d) = who(&w, &headers, true) {
        return d.into_response();
    }
    match json_body(body) {
        Ok(value) => {
            change(&w, move |live| {
                live.edit(|text| super::edit::put_item(text, &section, &name, &value))
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
    headers: HeaderMap,
    Path((section, name)): Path<(String, String)>,
) -> Response {
    if let Err(d) = who(&w, &headers, true) {
        return d.into_response();
    }
    change(&w, move |live| {
        live.edit(|text| super::edit::delete_item(text, &section, &name))
    })
    .await
}

/// Send a test alert (`type = "alert.test"`) through a running sink and return the
/// receiver's answer. Not stored in the outbox.
#[utoipa::path(post, path = "/api/sinks/{name}/test", tag = "sinks",
    params(("name" = String, Path, description = "the sink's name")),
    responses((status = 200, body = crate::deliver::TestAnswer), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_sink_test(
    State(w): State<Web>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(d) = who(&w, &headers, true) {
        return d.into_response();
    }
    match w.telemetry.sinks.test(&name).await {
        Ok(answer) => {
            tracing::info!(sink = %name, delivered = answer.delivered, status = ?answer.status, "test alert sent");
            Json(answer).into_response()
        }
        Err(e @ crate::deliver::DeliverError::NotRunning(_)) => problem(StatusCode::NOT_FOUND, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The dead letters, newest first (at most 200).
#[utoipa::path(get, path = "/api/dead-letters", tag = "alerts",
    responses((status = 200, body = Vec<crate::outbox::ListedRow>), (status = 401, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_dead_letters(State(w): State<Web>, headers: HeaderMap) -> Response {
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    match w
        .telemetry
        .outbox
        .call(|o| o.list(Some(crate::outbox::RowState::Dead), 200))
        .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Session cookie and bearer token, as the document names them.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityScheme;
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "from POST /api/login; changes also need the X-CSRF-Token header",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token from POST /api/tokens"))
                    .build(),
            ),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "watchpost gateway API", description = "Everything the gateway's web page does. HTTPS only."),
    paths(
        super::web::healthz, super::web::readyz, super::web::metrics,
        super::web::api_session, super::web::api_setup, super::web::api_login, super::web::api_logout,
        super::web::api_tokens, super::web::api_cameras, super::web::api_health, super::web::api_config,
        super::web::api_replay, super::web::api_alerts, super::web::api_events, super::web::api_snapshot,
        super::web::api_camera_snapshot,
        api_config_put, api_rollback, api_items, api_item_put, api_item_delete, api_sink_test,
        api_dead_letters,
    ),
    // Path parameters' schemas are not collected from `params(...)` by themselves.
    components(schemas(Section)),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`: the document above (no secrets in it, so no login needed).
pub(super) async fn api_openapi() -> Response {
    use utoipa::OpenApi;
    Json(ApiDoc::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    /// Every route the server mounts under /api (and the probes) is in the document.
    #[test]
    fn the_document_names_every_route() {
        let doc = super::ApiDoc::openapi();
        let web = include_str!("web.rs");
        let mounted: Vec<&str> = web
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".route(\""))
            .chain(web.lines().filter_map(|l| l.trim().strip_prefix("\"/api/")))
            .filter_map(|l| l.split('"').next())
            .map(|p| p.trim_start_matches('/'))
            .collect();
        assert!(mounted.len() > 20, "{mounted:?}");
        for path in mounted {
            let full = if path.starts_with("api/")
                || ["healthz", "readyz", "metrics", ""].contains(&path)
            {
                format!("/{path}")
            } else {
                format!("/api/{path}")
            };
            if full == "/" || full == "/api/openapi.json" {
                continue;
            }
            assert!(
                doc.paths.paths.contains_key(&full),
                "{full} is mounted but not documented"
            );
        }
    }

    /// Every `$ref` points at a component that exists (schemathesis refuses the operation
    /// otherwise).
    #[test]
    fn every_reference_resolves() {
        fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10, "{found:?}");
        for r in found {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} does not resolve"
            );
        }
    }
}
