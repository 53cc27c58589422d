//! watchpost-console: the fleet console every watchpost gateway reports to over MQTT.
//!
//! # Layout
//!
//! ```text
//! broker ──MQTT 5──► ingest ─[Record]─► store (SQLite | PostgreSQL) ◄── web (page, REST, /metrics)
//! ```
//!
//! - [`config`]: `watchpost-console.toml`, checked with every problem located (file, line,
//!   field); secrets never print.
//! - [`store`]: the data layer: one set of queries over SQLite (the embedded default, in
//!   `data_dir`) and PostgreSQL (production, several replicas), versioned migrations for
//!   both, idempotent writes, bounded retention.
//! - [`ingest`]: one persistent MQTT 5 session per replica: retained state by ordinary
//!   subscriptions, alerts and health by shared ones; batches committed, then acknowledged.
//! - [`control`]: requests to gateways: enrolment (control keys), signed commands and config
//!   pushes over MQTT 5 request/response, each in the audit log with its outcome.
//! - [`fleet`]: what a gateway's rows mean: online, stale (no health for 3 intervals) or
//!   offline, and its problems. Pure.
//! - [`alarms`]: the fleet's own alarms (offline, camera down, dead letters, silent rules),
//!   raised once, resolved when cleared, delivered store-and-forward (Standard Webhooks, Slack).
//! - [`metrics`]: the Prometheus registry (`watchpost_console_gateways{state}` and the rest).
//! - [`web`]: the HTTPS server: the embedded page, the REST API with its OpenAPI document,
//!   sign-in (watchpost-web's model, with admin and viewer roles), probes.
//!
//! The wire contracts (topics, payloads, health, control signing) come from
//! `watchpost-contracts`, the HTTPS front door from `watchpost-web`, both shared with the
//! gateway. This crate links neither GStreamer nor tract.

pub mod alarms;
pub mod config;
pub mod control;
pub mod fleet;
pub mod ingest;
pub mod metrics;
pub mod store;
pub mod web;

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error(transparent)]
    Web(#[from] watchpost_web::WebError),
    #[error("{0}")]
    Auth(#[from] watchpost_web::auth::AuthError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A running console (for tests: where it listens).
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub fingerprint: String,
    pub cert_path: std::path::PathBuf,
    pub setup_code: Option<String>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the store, connects to the broker and serves the page until `cancel`.
pub async fn start(
    cfg: &config::Config,
    cancel: CancellationToken,
) -> Result<Running, ConsoleError> {
    let data_dir = cfg.console.data_dir.clone();
    let url = cfg.database.url.as_ref().map(|u| u.expose().to_string());
    let store = {
        let d = data_dir.clone();
        tokio::task::spawn_blocking(move || store::Store::open(url.as_deref(), &d))
            .await
            .map_err(|e| store::StoreError::Database(e.to_string()))??
    };
    let store = Arc::new(store);
    tracing::info!(engine = store.engine().name(), "database open");
    let metrics = Arc::new(metrics::Metrics::new()?);
    let (alerts, _) = tokio::sync::broadcast::channel(1024);
    let ingest = ingest::start(
        &cfg.broker,
        &cfg.console.replica,
        &cfg.console.group,
        store.clone(),
        metrics.clone(),
        alerts.clone(),
        cancel.clone(),
    )?;
    let retention = retention(store.clone(), cfg.console.retention_days, cancel.clone());
    let alarm_tasks = alarms::start(cfg.alarms.clone(), store.clone(), cancel.clone());
    let web_dir = data_dir.join("web");
    let (auth, setup_code) = watchpost_web::auth::Auth::open(&web_dir)?;
    let configured = cfg
        .web
        .cert_file
        .as_deref()
        .zip(cfg.web.key_file.as_deref());
    let (cert_path, key_path) = watchpost_web::tls::certificate(
        configured,
        &web_dir,
        &["watchpost-console", "localhost", "127.0.0.1"],
    )?;
    let (tls, fingerprint) = watchpost_web::tls::server_config(&cert_path, &key_path)?;
    let state = web::Web {
        store: store.clone(),
        metrics,
        auth: Arc::new(auth),
        alerts,
        broker_up: ingest.connected.clone(),
        control: Arc::new(control::Control::new(ingest.client.clone(), store.clone())),
        broker_url: cfg.broker.url.clone(),
    };
    let listening = watchpost_web::serve::serve(&cfg.web.listen, tls, web::router(state), cancel)?;
    tracing::info!(url = %format!("https://{}/", listening.addr), certificate_sha256 = %fingerprint, "console listening");
    if let Some(code) = &setup_code {
        // The one secret that must reach the log: single-use, it only sets the first password.
        tracing::warn!(setup_code = %code, "no admin password yet; set it once on the page with this one-time code");
    }
    Ok(Running {
        addr: listening.addr,
        fingerprint,
        cert_path,
        setup_code,
        tasks: [listening.task, ingest.task, retention]
            .into_iter()
            .chain(alarm_tasks)
            .collect(),
    })
}

/// Hourly: history and alerts older than the retention go.
fn retention(
    store: Arc<store::Store>,
    days: f64,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let before = store::now_ms() - (days * 86_400_000.0) as i64;
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.prune(before)).await {
                Ok(Ok(n)) if n > 0 => tracing::info!(rows = n, "retention: old rows removed"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "retention failed; next hour again"),
                Err(e) => tracing::warn!(error = %e, "retention failed"),
            }
        }
    })
}
