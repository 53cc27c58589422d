//! The gateway's HTTPS server.
//!
//! TLS always: the page will carry the admin's password and the device's secrets' presence,
//! and a site LAN is not a trusted network. Without a configured certificate, a self-signed
//! one (ECDSA P-256, names `watchpost`, `localhost`, the device id, 127.0.0.1) is made once
//! in `data_dir/web/` and kept, so its fingerprint, printed in the log, stays valid to pin.

use super::api::{self, json_body, ApiError, ConfigText, Csrf, NewToken, Replayed, SetUpState};
use super::auth::{Auth, AuthError, Principal, SESSION_COOKIE};
use super::live::LiveConfig;
use super::ControlError;
use crate::config::WebConfig;
use crate::telemetry::Telemetry;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use sha2::Digest;
use std::collections::HashMap;
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

/// What the handlers share.
#[derive(Clone)]
pub(super) struct Web {
    pub(super) telemetry: Telemetry,
    auth: Arc<Auth>,
    pub(super) live: Option<Arc<LiveConfig>>,
    snapshots: Option<Arc<crate::evidence::SnapshotStore>>,
}

/// Binds and serves until `cancel`. Port 0 picks a free port (tests); `addr` says which.
pub async fn start(
    cfg: &WebConfig,
    data_dir: &Path,
    device: &str,
    telemetry: Telemetry,
    live: Option<Arc<LiveConfig>>,
    snapshots: Option<Arc<crate::evidence::SnapshotStore>>,
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
        telemetry,
        auth: Arc::new(auth),
        live,
        snapshots,
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .route("/api/session", get(api_session))
        .route("/api/setup", post(api_setup))
        .route("/api/login", post(api_login))
        .route("/api/logout", post(api_logout))
        .route("/api/tokens", post(api_tokens))
        .route("/api/cameras", get(api_cameras))
        .route("/api/health", get(api_health))
        .route("/api/config", get(api_config).put(api::api_config_put))
        .route("/api/config/rollback", post(api::api_rollback))
        .route("/api/config/{section}", get(api::api_items))
        .route(
            "/api/config/{section}/{name}",
            put(api::api_item_put).delete(api::api_item_delete),
        )
        .route("/api/sinks/{name}/test", post(api::api_sink_test))
        .route("/api/dead-letters", get(api::api_dead_letters))
        .route("/api/openapi.json", get(api::api_openapi))
        .route("/api/dead-letters/replay", post(api_replay))
        .route("/api/alerts", get(api_alerts))
        .route("/api/events", get(api_events))
        .route("/api/snapshots/{id}", get(api_snapshot))
        .route("/api/cameras/{name}/snapshot", get(api_camera_snapshot))
        .with_state(state);
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .map_err(|e| listen_err(e.to_string()))?
    .handle(handle.clone());
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
    let r = w.telemetry.readiness().await;
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(r)).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "probes", responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"), (status = 500, body = String, content_type = "text/plain")))]
pub(super) async fn metrics(State(w): State<Web>) -> Response {
    match w.telemetry.metrics().await {
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

// ---- The authenticated API -------------------------------------------------------------

pub(super) fn problem(code: StatusCode, message: impl ToString) -> Response {
    (
        code,
        axum::Json(ApiError {
            error: message.to_string(),
            problems: None,
        }),
    )
        .into_response()
}

/// The session cookie's value. By hand: one cookie, `name=value` pairs split on `;`.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
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

/// A refused request: its status and why.
pub(super) struct Denied(StatusCode, &'static str);

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        problem(self.0, self.1)
    }
}

/// Who is asking, or 401. `changes`: the request changes state, so a session must also show
/// its CSRF token (API tokens are never sent by a browser on its own, so they need none).
pub(super) fn who(w: &Web, headers: &HeaderMap, changes: bool) -> Result<Principal, Denied> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let principal = match bearer {
        Some(t) => w.auth.token(t.trim()),
        None => session_cookie(headers).and_then(|s| w.auth.session(&s)),
    }
    .ok_or(Denied(
        StatusCode::UNAUTHORIZED,
        "log in, or send an API token",
    ))?;
    if let (true, Principal::Session { csrf }) = (changes, &principal) {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = sent.len() == csrf.len()
            && sent
                .bytes()
                .zip(csrf.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !ok {
            return Err(Denied(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token",
            ));
        }
    }
    Ok(principal)
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct SetupBody {
    code: String,
    password: String,
}

#[utoipa::path(post, path = "/api/setup", tag = "auth", request_body = SetupBody, responses((status = 204, description = "password set"), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError)))]
pub(super) async fn api_setup(
    State(w): State<Web>,
    body: Result<axum::Json<SetupBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let auth = w.auth.clone();
    match tokio::task::spawn_blocking(move || auth.setup(&b.code, &b.password)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e @ AuthError::BadCode)) => problem(StatusCode::FORBIDDEN, e),
        Ok(Err(e @ AuthError::AlreadySetUp)) => problem(StatusCode::CONFLICT, e),
        Ok(Err(e @ AuthError::WeakPassword)) => problem(StatusCode::BAD_REQUEST, e),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct LoginBody {
    password: String,
}

#[utoipa::path(post, path = "/api/login", tag = "auth", request_body = LoginBody, responses((status = 200, body = Csrf, description = "session cookie set"), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError), (status = 429, body = ApiError)))]
pub(super) async fn api_login(
    State(w): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<axum::Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let auth = w.auth.clone();
    match tokio::task::spawn_blocking(move || auth.login(peer.ip(), &b.password)).await {
        Ok(Ok((session, csrf))) => {
            let cookie = format!(
                "{SESSION_COOKIE}={session}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=43200"
            );
            ([(header::SET_COOKIE, cookie)], axum::Json(Csrf { csrf })).into_response()
        }
        Ok(Err(e @ AuthError::RateLimited(_))) => problem(StatusCode::TOO_MANY_REQUESTS, e),
        Ok(Err(e @ AuthError::NotSetUp)) => problem(StatusCode::CONFLICT, e),
        Ok(Err(e)) => problem(StatusCode::UNAUTHORIZED, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[utoipa::path(post, path = "/api/logout", tag = "auth", responses((status = 204, description = "session ended"), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_logout(State(w): State<Web>, headers: HeaderMap) -> Response {
    if let Err(d) = who(&w, &headers, true) {
        return d.into_response();
    }
    if let Some(s) = session_cookie(&headers) {
        w.auth.logout(&s);
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response()
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct TokenBody {
    name: String,
}

#[utoipa::path(post, path = "/api/tokens", tag = "auth", request_body = TokenBody, responses((status = 200, body = NewToken), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_tokens(
    State(w): State<Web>,
    headers: HeaderMap,
    body: Result<axum::Json<TokenBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let principal = who(&w, &headers, true);
    let b = match (&principal, json_body(body)) {
        (Ok(_), Err(r)) => return r.into_response(),
        (_, Ok(b)) => b,
        (Err(_), Err(_)) => TokenBody {
            name: String::new(),
        },
    };
    match principal {
        Err(d) => d.into_response(),
        // Tokens do not mint tokens: only a person logged in does.
        Ok(Principal::Token(_)) => problem(StatusCode::FORBIDDEN, "log in to create API tokens"),
        Ok(Principal::Session { .. }) => match w.auth.create_token(&b.name) {
            Ok(token) => axum::Json(NewToken {
                name: b.name,
                token,
            })
            .into_response(),
            Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
    }
}

#[utoipa::path(get, path = "/api/cameras", tag = "cameras", responses((status = 200, body = Vec<crate::video::CameraSnapshot>), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_cameras(State(w): State<Web>, headers: HeaderMap) -> Response {
    match who(&w, &headers, false) {
        Err(d) => d.into_response(),
        Ok(_) => axum::Json(w.telemetry.cameras.snapshots()).into_response(),
    }
}

#[utoipa::path(get, path = "/api/health", tag = "cameras", responses((status = 200, body = crate::telemetry::Health), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_health(State(w): State<Web>, headers: HeaderMap) -> Response {
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    match w.telemetry.health().await {
        Ok(h) => axum::Json(h).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[utoipa::path(get, path = "/api/config", tag = "config", responses((status = 200, body = ConfigText), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_config(State(w): State<Web>, headers: HeaderMap) -> Response {
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    match &w.live {
        Some(live) => {
            let (version, toml) = live.redacted();
            axum::Json(ConfigText { version, toml }).into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "not started from a config file"),
    }
}

#[utoipa::path(post, path = "/api/dead-letters/replay", tag = "alerts", responses((status = 200, body = Replayed), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_replay(State(w): State<Web>, headers: HeaderMap) -> Response {
    if let Err(d) = who(&w, &headers, true) {
        return d.into_response();
    }
    let now = chrono::Utc::now().timestamp_millis();
    match w
        .telemetry
        .outbox
        .call(move |o| o.replay_all_dead(now))
        .await
    {
        Ok(n) => axum::Json(Replayed { replayed: n }).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn jpeg(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

/// The newest alerts (`?limit=`, default 50, at most 500).
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(("limit" = Option<u32>, Query, description = "how many, newest first (default 50, at most 500)")), responses((status = 200, body = Vec<crate::outbox::RecentAlert>), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_alerts(
    State(w): State<Web>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .min(500);
    match w
        .telemetry
        .outbox
        .call(move |o| o.recent_alerts(limit))
        .await
    {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// New alerts as they are committed, as Server-Sent Events (one `alert` event each).
#[utoipa::path(get, path = "/api/events", tag = "alerts", responses((status = 200, description = "Server-Sent Events: one `alert` event per committed alert (its payload)", body = String, content_type = "text/event-stream"), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_events(State(w): State<Web>, headers: HeaderMap) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    let rx = w.telemetry.counters.live_alerts.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(body) => {
                    return Some((
                        Ok::<_, std::convert::Infallible>(
                            Event::default().event("alert").data(body),
                        ),
                        rx,
                    ))
                }
                // A slow page misses alerts, not the pipeline: it can reload the list.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An alert's evidence JPEG by snapshot id (the alert id).
#[utoipa::path(get, path = "/api/snapshots/{id}", tag = "alerts", params(("id" = String, Path, description = "the alert id")), responses((status = 200, description = "the alert's evidence", content_type = "image/jpeg", body = Vec<u8>), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_snapshot(
    State(w): State<Web>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    let Some(store) = w.snapshots.clone() else {
        return problem(
            StatusCode::NOT_FOUND,
            "snapshots are off ([snapshots] enabled = false)",
        );
    };
    let id = id.trim_end_matches(".jpg").to_string();
    match tokio::task::spawn_blocking(move || store.read(&id)).await {
        Ok(Ok(bytes)) => jpeg(bytes),
        Ok(Err(e @ crate::evidence::EvidenceError::BadId(_))) => {
            problem(StatusCode::BAD_REQUEST, e)
        }
        Ok(Err(e)) => problem(StatusCode::NOT_FOUND, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// A camera's latest frame as JPEG, at the camera's frame size.
#[utoipa::path(get, path = "/api/cameras/{name}/snapshot", tag = "cameras", params(("name" = String, Path, description = "the camera")), responses((status = 200, description = "the newest frame", content_type = "image/jpeg", body = Vec<u8>), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such camera, or it has not delivered a frame yet")), security(("session" = []), ("token" = [])))]
pub(super) async fn api_camera_snapshot(
    State(w): State<Web>,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    if let Err(d) = who(&w, &headers, false) {
        return d.into_response();
    }
    let frame = match w.telemetry.cameras.latest_frame(&name) {
        Ok(f) => f,
        // No frame yet is the client's "not there (yet)", not a server fault (schemathesis
        // rightly flagged the 503 this once was).
        Err(e) => return problem(StatusCode::NOT_FOUND, e),
    };
    match tokio::task::spawn_blocking(move || crate::evidence::frame_jpeg(&frame, 80)).await {
        Ok(Ok(bytes)) => jpeg(bytes),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The web page: one embedded file, no build step, no third-party assets.
const PAGE: &str = include_str!("page.html");

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

/// For the page after a reload: the session's CSRF token if the cookie is valid (readable
/// only by same-origin script), else 401 with whether the admin password is set.
#[utoipa::path(get, path = "/api/session", tag = "auth", responses((status = 200, body = Csrf, description = "logged in"), (status = 401, body = SetUpState, description = "not logged in")))]
pub(super) async fn api_session(State(w): State<Web>, headers: HeaderMap) -> Response {
    match session_cookie(&headers).and_then(|s| w.auth.session(&s)) {
        Some(Principal::Session { csrf }) => axum::Json(Csrf { csrf }).into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            axum::Json(SetUpState {
                set_up: w.auth.is_set_up(),
            }),
        )
            .into_response(),
    }
}
