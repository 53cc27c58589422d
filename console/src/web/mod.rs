//! The console's HTTPS server: the fleet page (embedded, no build step), the REST API behind
//! it with its OpenAPI document, and the unauthenticated probes and `/metrics`.

mod account;
mod control_api;
mod fleet_api;

use crate::fleet::{self, State as GwState};
use crate::metrics::Metrics;
use crate::store::{AlertRow, Store, StoreError};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;
use utoipa::OpenApi;
use watchpost_web::auth::{Auth, Principal};

/// What every handler can reach (axum's state).
#[derive(Clone)]
pub struct Web {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Auth>,
    pub alerts: broadcast::Sender<AlertRow>,
    pub broker_up: Arc<AtomicBool>,
    pub control: Arc<crate::control::Control>,
    /// The broker as gateways are told to reach it (enrolment's config lines).
    pub broker_url: String,
}

/// An API error: a status and the reason in words.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl ToString) -> Self {
        Self {
            status,
            error: error.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database read failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)
    }
}

/// A signed-in reader (session or token, any role), or 401.
pub struct Reader(#[allow(dead_code)] pub Principal);
/// An admin, with the session's CSRF token where it is a session (401 / 403 otherwise).
pub struct Admin(pub Principal);

impl axum::extract::FromRequestParts<Web> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        w: &Web,
    ) -> Result<Self, ApiError> {
        watchpost_web::access::principal(&w.auth, &parts.headers, false)
            .map(Reader)
            .map_err(|d| ApiError::new(d.status, d.message))
    }
}

impl axum::extract::FromRequestParts<Web> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        w: &Web,
    ) -> Result<Self, ApiError> {
        watchpost_web::access::principal(&w.auth, &parts.headers, true)
            .map(Admin)
            .map_err(|d| ApiError::new(d.status, d.message))
    }
}

/// Runs a store call off the async workers.
pub async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(ApiError::from)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "watchpost-console", description = "The fleet console's REST API: everything the page does."),
    paths(
        healthz, readyz, metrics,
        account::api_state, account::api_setup, account::api_login, account::api_logout,
        account::api_session, account::api_users, account::api_add_user, account::api_token,
        fleet_api::api_gateways, fleet_api::api_gateway, fleet_api::api_history,
        fleet_api::api_sites, fleet_api::api_alarms, fleet_api::api_alerts, fleet_api::api_snapshot, fleet_api::api_stream,
        control_api::api_enrol, control_api::api_config, control_api::api_command,
        control_api::api_audit, control_api::api_new_rollout, control_api::api_rollout,
        control_api::api_rollouts, control_api::api_rotate, control_api::api_tags,
    ),
    components(schemas(ApiError, Readiness)),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;
impl utoipa::Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                watchpost_web::auth::SESSION_COOKIE,
            ))),
        );
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn router(state: Web) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .route("/page.js", get(page_js))
        .route("/api/openapi.json", get(|| async { Json(openapi()) }))
        .route("/api/state", get(account::api_state))
        .route("/api/setup", post(account::api_setup))
        .route("/api/login", post(account::api_login))
        .route("/api/logout", post(account::api_logout))
        .route("/api/session", get(account::api_session))
        .route(
            "/api/users",
            get(account::api_users).post(account::api_add_user),
        )
        .route("/api/tokens", post(account::api_token))
        .route("/api/sites", get(fleet_api::api_sites))
        .route(
            "/api/gateways",
            get(fleet_api::api_gateways).post(control_api::api_enrol),
        )
        .route(
            "/api/gateways/{device}/config",
            post(control_api::api_config),
        )
        .route(
            "/api/gateways/{device}/commands/{name}",
            post(control_api::api_command),
        )
        .route("/api/gateways/{device}/key", post(control_api::api_rotate))
        .route(
            "/api/gateways/{device}/tags",
            axum::routing::put(control_api::api_tags),
        )
        .route("/api/audit", get(control_api::api_audit))
        .route(
            "/api/rollouts",
            get(control_api::api_rollouts).post(control_api::api_new_rollout),
        )
        .route("/api/rollouts/{id}", get(control_api::api_rollout))
        .route("/api/gateways/{device}", get(fleet_api::api_gateway))
        .route(
            "/api/gateways/{device}/history",
            get(fleet_api::api_history),
        )
        .route("/api/alarms", get(fleet_api::api_alarms))
        .route("/api/alerts", get(fleet_api::api_alerts))
        .route("/api/alerts/stream", get(fleet_api::api_stream))
        .route("/api/alerts/{id}/snapshot", get(fleet_api::api_snapshot))
        .with_state(state)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready to keep what the gateways say: the database answers and the broker session is up.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: bool,
    pub broker: bool,
    /// Which engine the store runs on: `sqlite` or `postgresql`.
    pub engine: String,
    pub problems: Vec<String>,
}

#[utoipa::path(get, path = "/readyz", tag = "probes", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(w): State<Web>) -> Response {
    let s = w.store.clone();
    let database = tokio::task::spawn_blocking(move || s.ping())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let broker = w.broker_up.load(Ordering::Relaxed);
    let mut problems = Vec::new();
    if let Err(e) = &database {
        problems.push(format!("database: {e}"));
    } else if !w.metrics.database_is_up() {
        problems.push("database: the last write failed; ingest is retrying".into());
    }
    if !broker {
        problems.push("broker: not connected; retrying".into());
    }
    let r = Readiness {
        ready: problems.is_empty(),
        database: database.is_ok() && w.metrics.database_is_up(),
        broker,
        engine: w.store.engine().name().into(),
        problems,
    };
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "probes", responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
async fn metrics(State(w): State<Web>) -> Response {
    let now = crate::store::now_ms();
    let counted = blocking(&w.store, move |s| {
        let mut n = [0i64; 3];
        for g in s.gateways()? {
            match fleet::state(&g, now) {
                GwState::Online => n[0] += 1,
                GwState::Stale => n[1] += 1,
                GwState::Offline => n[2] += 1,
            }
        }
        Ok(n)
    })
    .await;
    // The database unreadable: the gauges keep their last values, the rest is served.
    let by_state: Vec<(GwState, i64)> = match counted {
        Ok(n) => GwState::ALL.into_iter().zip(n).collect(),
        Err(_) => Vec::new(),
    };
    match w
        .metrics
        .render(&by_state, w.broker_up.load(Ordering::Relaxed))
    {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

const PAGE: &str = include_str!("page.html");
const PAGE_JS: &str = include_str!("page.js");

async fn page() -> Response {
    // Snapshots from commands come back as data: URLs.
    watchpost_web::serve::page(PAGE, " data: blob:")
}

async fn page_js() -> Response {
    watchpost_web::serve::script(PAGE_JS)
}
