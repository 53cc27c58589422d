//! The gateway's HTTPS server.
//!
//! TLS always: the page will carry the admin's password and the device's secrets' presence,
//! and a site LAN is not a trusted network. Without a configured certificate, a self-signed
//! one (ECDSA P-256, names `watchpost`, `localhost`, the device id, 127.0.0.1) is made once
//! in `data_dir/web/` and kept, so its fingerprint, printed in the log, stays valid to pin.

use super::api;
use super::auth::Auth;
use super::gateway::Gateway;
use super::limit::{LimitAcceptor, MAX_CONNECTIONS};
use super::ControlError;
use crate::config::WebConfig;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::Digest;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A running server.
pub struct WebServer {
    pub addr: SocketAddr,
    /// SHA-256 of the certificate (DER), hex pairs joined by `:`, as browsers show it.
    pub fingerprint: String,
    pub cert_path: PathBuf,
    pub task: tokio::task::JoinHandle<()>,
}

fn cert_err(path: &Path, message: impl ToString) -> ControlError {
    ControlError::Certificate {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The configured pair, or the self-signed one in `data_dir/web/` (made when missing).
fn certificate(
    cfg: &WebConfig,
    data_dir: &Path,
    device: &str,
) -> Result<(PathBuf, PathBuf), ControlError> {
    if let (Some(c), Some(k)) = (&cfg.cert_file, &cfg.key_file) {
        return Ok((c.clone(), k.clone()));
    }
    let dir = data_dir.join("web");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir).map_err(|e| cert_err(&dir, e))?;
    let names = vec![
        "watchpost".to_string(),
        "localhost".to_string(),
        device.to_string(),
        "127.0.0.1".to_string(),
    ];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| cert_err(&cert, e))?;
    // The key first, private from birth; then the certificate that names it.
    write_private(&key, made.key_pair.serialize_pem().as_bytes()).map_err(|e| cert_err(&key, e))?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| cert_err(&cert, e))?;
    tracing::info!(cert = %cert.display(), "web: made a self-signed certificate");
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn tls(cert: &Path, key: &Path) -> Result<(Arc<rustls::ServerConfig>, String), ControlError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect())
        .map_err(|e| cert_err(cert, format!("not a PEM certificate ({e})")))?;
    let first = chain
        .first()
        .ok_or_else(|| cert_err(cert, "holds no certificate"))?;
    let fingerprint = sha2::Sha256::digest(first.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| cert_err(key, format!("not a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_err(cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| cert_err(cert, format!("the key does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), fingerprint))
}

/// The longest a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    let (cert_path, key_path) = certificate(cfg, data_dir, device)?;
    let (tls, fingerprint) = tls(&cert_path, &key_path)?;
    let listen_err = |message: String| ControlError::Listen {
        addr: cfg.listen.clone(),
        message,
    };
    let listener =
        std::net::TcpListener::bind(&cfg.listen).map_err(|e| listen_err(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| listen_err(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| listen_err(e.to_string()))?;
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
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state);
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .map_err(|e| listen_err(e.to_string()))?
    .map(|tls| tls.acceptor(LimitAcceptor::new(MAX_CONNECTIONS)))
    .handle(handle.clone());
    // A client that sends its request head slower than this is cut off, so a few hundred
    // slow connections cannot sit on the descriptors cameras and sinks need.
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let task = tokio::spawn(async move {
        let stop = handle.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            stop.graceful_shutdown(Some(std::time::Duration::from_secs(2)));
        });
        if let Err(e) = server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
        {
            tracing::error!(error = %e, "web server stopped");
        }
    });
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
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE_JS,
    )
        .into_response()
}

/// On every answer: HTTPS only from now on (HSTS), and nothing from the API kept in a cache
/// (answers carry alerts, configuration and tokens).
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        header::HeaderValue::from_static("max-age=31536000"),
    );
    if api {
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    response
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}
