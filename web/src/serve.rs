//! One way to serve a router over HTTPS, for the gateway and the console alike.

use crate::limit::{LimitAcceptor, MAX_CONNECTIONS};
use crate::WebError;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The longest a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A server that is listening.
pub struct Listening {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds `listen` (port 0 picks a free port: tests) and serves `app` until `cancel`, with the
/// connection cap, the header-read timeout and [`security_headers`].
pub fn serve(
    listen: &str,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    cancel: CancellationToken,
) -> Result<Listening, WebError> {
    let listen_err = |message: String| WebError::Listen {
        addr: listen.to_string(),
        message,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(|e| listen_err(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| listen_err(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| listen_err(e.to_string()))?;
    let app = app.layer(axum::middleware::from_fn(security_headers));
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .map_err(|e| listen_err(e.to_string()))?
    .map(|tls| tls.acceptor(LimitAcceptor::new(MAX_CONNECTIONS)))
    .handle(handle.clone());
    // A client that sends its request head slower than this is cut off, so a few hundred
    // slow connections cannot sit on the descriptors the rest of the program needs.
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
    Ok(Listening { addr, task })
}

/// On every answer: HTTPS only from now on (HSTS), and nothing from the API kept in a cache
/// (answers carry alerts, configuration and tokens).
pub async fn security_headers(
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

/// The embedded page: its HTML with a CSP that allows no inline script and no third-party
/// source (`img_src`: what images may come from besides the server itself, e.g. `data:`).
pub fn page(html: &'static str, img_src: &str) -> Response {
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'{img_src}; frame-ancestors 'none'"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        html,
    )
        .into_response()
}

/// The page's script, a file of its own so the CSP can forbid inline script.
pub fn script(js: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        js,
    )
        .into_response()
}
