//! The embedded default: everything on one machine, no camera or server needed.
//!
//! The bundled clip is served over RTSP in-process, a receiver on 127.0.0.1 verifies every
//! webhook signature, and the real pipeline ([`crate::app::run`]) runs between them with the
//! config below, written to the demo's data folder so `watchpost outbox … --config` works on it.

mod receiver;
mod rtsp;

pub use receiver::{Answer, Received, Receiver, PATH_HEADER};
pub use rtsp::{RtspClipServer, RtspServerError};

use crate::app::{self, AppError, RunOptions};
use crate::config::{Config, ConfigError};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The demo clip, found like the model (beside the binary or in the source tree).
pub const CLIP: &str = "models/media/people-dogs.mp4";

const DEMO_CONFIG: &str = r#"# Written by `watchpost demo`.
[device]
id = "demo-gateway"
site = "demo-site"
data_dir = "{data_dir}"

[model]
# The default model (SSDLite-MobileNetV2 300); NanoDet-g: path = "models/nanodet-416.onnx"
threads = 2

[[camera]]
name = "yard"
url = "{rtsp_url}"
detect_fps = 5
transport = "tcp"

[[zone]]
name = "left-half"
polygon = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]

[[rule]]
name = "person-in-yard"
labels = ["person"]
min_confidence = 0.5
zone = "left-half"
cooldown_seconds = 8
severity = "high"
emit_ended = true
metadata = { zone = "demo-yard" }

[[rule]]
name = "dog-in-yard"
labels = ["dog"]
min_confidence = 0.5
cooldown_seconds = 8
severity = "medium"

[[rule]]
name = "vehicle-in-yard"
labels = ["bicycle", "car", "motorcycle", "truck"]
min_confidence = 0.5
cooldown_seconds = 8
severity = "low"

[[sink]]
name = "local-receiver"
kind = "webhook"
url = "{receiver_url}"
secret = "{secret}"
timeout_seconds = 5

[delivery]
retry_schedule_seconds = [1, 2, 4]
max_backoff_seconds = 10
"#;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Rtsp(#[from] RtspServerError),
    #[error("demo receiver: {0}")]
    Receiver(std::io::Error),
    #[error("demo data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    App(#[from] AppError),
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Stop after this long; `None` runs until cancelled (Ctrl-C).
    pub duration: Option<Duration>,
    pub data_dir: PathBuf,
    pub clip: PathBuf,
    /// Overrides `[tracker] min_hits`.
    pub min_hits: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub alerts_received: usize,
    /// `alert.ended` events delivered.
    pub ended_received: usize,
    pub verified: usize,
    pub failed_verification: usize,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p95_ms: Option<f64>,
    pub run: app::Summary,
    pub config: PathBuf,
}

/// Milliseconds from the frame reaching the appsink to the receiver getting its alert.
pub fn e2e_ms(r: &Received) -> Option<f64> {
    let v = r.json()?;
    let ts = v.pointer("/data/frame_ts")?.as_str()?;
    let frame: DateTime<Utc> = ts.parse().ok()?;
    Some((r.at - frame).num_microseconds()? as f64 / 1000.0)
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx).copied()
}

fn print_alert(r: &Received) {
    let Some(v) = r.json() else {
        println!(
            "{}  (unreadable body, {} bytes)",
            r.at.format("%H:%M:%S%.3f"),
            r.body.len()
        );
        return;
    };
    let s = |p: &str| {
        v.pointer(p)
            .and_then(|x| x.as_str())
            .unwrap_or("?")
            .to_string()
    };
    let conf = v
        .pointer("/data/confidence")
        .and_then(|x| x.as_f64())
        .unwrap_or(0.0);
    let check = match r.verified {
        Some(true) => "signature ok",
        Some(false) => "SIGNATURE INVALID",
        None => "unverified",
    };
    let kind = s("/type");
    if kind == "alert.ended" {
        let secs = v
            .pointer("/data/duration_seconds")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0);
        println!(
            "{}  camera={} rule={} ended after {secs:.1} s  {}",
            r.at.with_timezone(&chrono::Local).format("%H:%M:%S%.3f"),
            s("/data/camera"),
            s("/data/rule"),
            check
        );
        return;
    }
    println!(
        "{}  camera={} rule={} label={} confidence={:.2} severity={} e2e={} ms  {}  snapshot={}",
        r.at.with_timezone(&chrono::Local).format("%H:%M:%S%.3f"),
        s("/data/camera"),
        s("/data/rule"),
        s("/data/label"),
        conf,
        s("/data/severity"),
        e2e_ms(r)
            .map(|m| format!("{m:.0}"))
            .unwrap_or_else(|| "?".into()),
        check,
        s("/data/snapshot")
    );
}

/// Runs the demo until `opts.duration` or `cancel`.
pub async fn run(opts: DemoOptions, cancel: CancellationToken) -> Result<DemoSummary, DemoError> {
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| DemoError::DataDir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let server = RtspClipServer::start(&opts.clip, 0)?;
    let key: [u8; 24] = rand::random();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let receiver = Receiver::start(0, Some(key.to_vec()), Some(Arc::new(print_alert)))
        .await
        .map_err(DemoError::Receiver)?;
    let text = DEMO_CONFIG
        .replace(
            "{data_dir}",
            &toml_escape(&opts.data_dir.display().to_string()),
        )
        .replace("{rtsp_url}", &server.url())
        .replace("{receiver_url}", &receiver.url())
        .replace("{secret}", &secret)
        + &opts
            .min_hits
            .map(|n| format!("\n[tracker]\nmin_hits = {n}\n"))
            .unwrap_or_default();
    let config_path = opts.data_dir.join("watchpost.toml");
    std::fs::write(&config_path, &text).map_err(|source| DemoError::DataDir {
        path: config_path.clone(),
        source,
    })?;
    let config = Config::from_toml(&text, &config_path, Path::new("."))?;
    println!(
        "watchpost demo: clip {} served at {}, signed alerts go to {}",
        opts.clip.display(),
        server.url(),
        receiver.url()
    );
    println!(
        "outbox: {}  (try: watchpost outbox stats --config {})",
        config.outbox_path().display(),
        config_path.display()
    );
    if let Some(d) = opts.duration {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            c.cancel();
        });
    }
    let summary = app::run(config, RunOptions::default(), cancel).await?;
    let got = receiver.received();
    let accepted: Vec<&Received> = got
        .iter()
        .filter(|r| r.status / 100 == 2)
        .filter(|r| r.json().is_some_and(|v| v["type"] == "alert.fired"))
        .collect();
    let mut lat: Vec<f64> = accepted.iter().filter_map(|r| e2e_ms(r)).collect();
    lat.sort_by(f64::total_cmp);
    drop(server);
    let ended_received = got
        .iter()
        .filter(|r| r.status / 100 == 2)
        .filter(|r| r.json().is_some_and(|v| v["type"] == "alert.ended"))
        .count();
    Ok(DemoSummary {
        alerts_received: accepted.len(),
        ended_received,
        verified: got.iter().filter(|r| r.verified == Some(true)).count(),
        failed_verification: got.iter().filter(|r| r.verified == Some(false)).count(),
        e2e_p50_ms: percentile(&lat, 0.5),
        e2e_p95_ms: percentile(&lat, 0.95),
        run: summary,
        config: config_path,
    })
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
