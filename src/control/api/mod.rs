//! The authenticated REST API: every `/api` handler, one file per subject, and the OpenAPI
//! document generated from the handlers' annotations (utoipa), served at `/api/openapi.json`.
//!
//! - `access`: the [`Reader`] and [`Admin`] extractors (who may call what).
//! - `account`: setup, login, logout, API tokens.
//! - `config`: the running config, whole or item by item, and rollback.
//! - `alerts`: alerts, snapshots, the live feed, dead letters and replay.
//! - `devices`: cameras, health, sink test alerts.
//!
//! Every refusal is an [`ApiError`], which renders itself as JSON.

mod access;
mod account;
mod alerts;
mod config;
mod devices;

use super::web::Web;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every refusal, the one error type of the API: its status, what went wrong, and for an
/// invalid config each problem with its place. Renders itself as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<crate::config::Problem>>,
    /// With 412 (a stale edit): the running version, and the item as it is now (absent when
    /// it was deleted meanwhile), so the client can show what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub current: Option<serde_json::Value>,
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

pub use crate::control::gateway::Replayed;

/// The sections edited item by item.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    Camera,
    Rule,
    Zone,
    Line,
    Sink,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl ToString) -> Self {
        Self {
            status,
            error: message.to_string(),
            problems: None,
            version: None,
            current: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// An [`ApiError`] as a response, for handlers that answer [`Response`].
pub(super) fn problem(code: StatusCode, message: impl ToString) -> Response {
    ApiError::new(code, message).into_response()
}

/// A shared action's failure as the API answers it.
pub(super) fn action_failed(e: crate::control::gateway::ActionError) -> Response {
    use crate::control::gateway::ActionError;
    match e {
        ActionError::NotFound(m) => problem(StatusCode::NOT_FOUND, m),
        ActionError::Failed(m) => problem(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

/// A JSON body, or why not, as JSON (axum's own rejection is plain text).
pub(super) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|e| ApiError::new(e.status(), e.body_text()))
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
                watchpost_web::auth::SESSION_COOKIE,
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
        account::api_session, account::api_setup, account::api_login, account::api_logout,
        account::api_tokens, devices::api_cameras, devices::api_health, config::api_config,
        alerts::api_replay, alerts::api_replay_one, alerts::api_alerts, alerts::api_events, alerts::api_snapshot,
        devices::api_camera_snapshot,
        config::api_config_put, config::api_rollback, config::api_items, config::api_item_create, config::api_item_put,
        config::api_item_delete, devices::api_sink_test, alerts::api_dead_letters,
        devices::api_lines, devices::api_line_reset, alerts::api_alert, devices::api_dry_run,
    ),
    // Path parameters' schemas are not collected from `params(...)` by themselves.
    components(schemas(Section, crate::config::Severity)),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`: the document above (no secrets in it, so no login needed).
pub(super) async fn api_openapi() -> Response {
    use utoipa::OpenApi;
    Json(ApiDoc::openapi()).into_response()
}

/// Every `/api` route, with the extractor of each handler saying who may call it.
pub(super) fn routes() -> Router<Web> {
    Router::new()
        .route("/api/session", get(account::api_session))
        .route("/api/setup", post(account::api_setup))
        .route("/api/login", post(account::api_login))
        .route("/api/logout", post(account::api_logout))
        .route("/api/tokens", post(account::api_tokens))
        .route("/api/cameras", get(devices::api_cameras))
        .route("/api/health", get(devices::api_health))
        .route("/api/lines", get(devices::api_lines))
        .route("/api/rules/{name}/dry-run", get(devices::api_dry_run))
        .route("/api/lines/{name}/reset", post(devices::api_line_reset))
        .route(
            "/api/config",
            get(config::api_config).put(config::api_config_put),
        )
        .route("/api/config/rollback", post(config::api_rollback))
        .route(
            "/api/config/{section}",
            get(config::api_items).post(config::api_item_create),
        )
        .route(
            "/api/config/{section}/{name}",
            put(config::api_item_put).delete(config::api_item_delete),
        )
        .route("/api/sinks/{name}/test", post(devices::api_sink_test))
        .route("/api/dead-letters", get(alerts::api_dead_letters))
        .route("/api/openapi.json", get(api_openapi))
        .route("/api/dead-letters/replay", post(alerts::api_replay))
        .route(
            "/api/dead-letters/{id}/replay",
            post(alerts::api_replay_one),
        )
        .route("/api/alerts", get(alerts::api_alerts))
        .route("/api/alerts/{id}", get(alerts::api_alert))
        .route("/api/events", get(alerts::api_events))
        .route("/api/snapshots/{id}", get(alerts::api_snapshot))
        .route(
            "/api/cameras/{name}/snapshot",
            get(devices::api_camera_snapshot),
        )
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    /// Every route the server mounts under /api (and the probes) is in the document.
    #[test]
    fn the_document_names_every_route() {
        let doc = super::ApiDoc::openapi();
        let web = concat!(include_str!("mod.rs"), include_str!("../web.rs"));
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
                || ["healthz", "readyz", "metrics", "page.js", ""].contains(&path)
            {
                format!("/{path}")
            } else {
                format!("/api/{path}")
            };
            // The page and its script are not API.
            if full == "/" || full == "/page.js" || full == "/api/openapi.json" {
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
