//! The gateway's HTTPS server.
//!
//! TLS always: the page will carry the admin's password and the device's secrets' presence,
//! and a site LAN is not a trusted network. Without a configured certificate, a self-signed
//! one (ECDSA P-256, names `watchpost`, `localhost`, the device id, 127.0.0.1) is made once
//! in `data_dir/web/` and kept, so its fingerprint, printed in the log, stays valid to pin.

use super::api;
use super::gateway::Gateway;
use super::ControlError;
use crate::config::WebConfig;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use watchpost_web::auth::Auth;

/// A running server.
pub struct WebServer {
    pub addr: SocketAddr,
    /// SHA-256 of the certificate (DER), hex pairs joined by `:`, as browsers show it.
    pub fingerprint: String,
    pub cert_path: PathBuf,
    pub task: tokio::task::JoinHandle<()>,
}

/// The longest a client may take to send a request's head.
pub use watchpost_web::serve::HEADER_READ_TIMEOUT;

fn web_err(e: watchpost_web::WebError) -> ControlError {
    match e {
        watchpost_web::WebError::Certificate { path, message } => {
            ControlError::Certificate { path, message }
        }
        watchpost_web::WebError::Listen { addr, message } => ControlError::Listen { addr, message },
    }
}

/// What the handlers share.
#[derive(Clone)]
/// What every handler can reach (axum's state).
pub(super) struct Web {
    pub(super) gw: Gateway,
    pub(super) auth: Arc<Auth>,
}

/// Binds and serves until `cancel`. Port 0 picks a free port (tests); `addr` says which.
pub async fn start(
    cfg: &WebConfig,
    data_dir: &Path,
    device: &str,
    gw: Gateway,
    cancel: CancellationToken,
) -> Result<WebServer, ControlError> {
    let (auth, code) =
        Auth::open(&data_dir.join("web")).map_err(|e| ControlError::Certificate {
            path: data_dir.join("web/auth.json"),
            message: e.to_string(),
        })?;
    let configured = cfg.cert_file.as_deref().zip(cfg.key_file.as_deref());
    let (cert_path, key_path) = watchpost_web::tls::certificate(
        configured,
        &data_dir.join("web"),
        &["watchpost", "localhost", device, "127.0.0.1"],
    )
    .map_err(web_err)?;
    let (tls, fingerprint) =
        watchpost_web::tls::server_config(&cert_path, &key_path).map_err(web_err)?;
    let state = Web {
        gw,
        auth: Arc::new(auth),
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .route("/page.js", get(page_js))
        .merge(api::routes())
        .with_state(state);
    let watchpost_web::serve::Listening { addr, task } =
        watchpost_web::serve::serve(&cfg.listen, tls, app, cancel).map_err(web_err)?;
    tracing::info!(url = %format!("https://{addr}/"), certificate_sha256 = %fingerprint, "web: listening");
    if let Some(code) = code {
        // The one secret that must reach the log: it is single-use and only sets the first
        // password. Logged once the server listens, so it can be used at once.
        tracing::warn!(setup_code = %code, "web: no admin password yet; set it once on the page with this one-time code");
    }
    Ok(WebServer {
        addr,
        fingerprint,
        cert_path,
        task,
    })
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "the process answers", body = String, content_type = "text/plain")))]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 when the outbox takes writes and (if any camera is configured) at least
/// one camera streams; 503 otherwise, with the reasons as JSON either way.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses((status = 200, body = crate::telemetry::Readiness), (status = 503, body = crate::telemetry::Readiness)))]
pub(super) async fn readyz(State(w): State<Web>) -> Response {
    let r = w.gw.telemetry.readiness().await;
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(r)).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "probes", responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"), (status = 500, body = String, content_type = "text/plain")))]
pub(super) async fn metrics(State(w): State<Web>) -> Response {
    match w.gw.telemetry.metrics().await {
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

/// The web page: one embedded file, no build step, no third-party assets.
const PAGE: &str = include_str!("page.html");
/// Its script, a file of its own so the CSP can forbid inline script.
const PAGE_JS: &str = include_str!("page.js");

async fn page_js() -> Response {
    watchpost_web::serve::script(PAGE_JS)
}

async fn page() -> Response {
    watchpost_web::serve::page(PAGE, "")
}
