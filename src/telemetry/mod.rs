//! The telemetry room: what the gateway says about itself — liveness and readiness, the
//! Prometheus `/metrics` text, and the JSON health document the fleet console reads over MQTT.
//!
//! Everything here is read at the moment it is asked for, from the counters the other rooms
//! keep (cameras, detector, committer, sink workers, outbox); telemetry owns no state of the
//! pipeline, so a slow scrape can never hold the pipeline up. Nothing here ever holds a secret:
//! cameras appear by name, sinks by name.

mod metrics;

use crate::outbox::{OutboxError, SharedOutbox};
use crate::video::{CameraSnapshot, CameraState, Cameras};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use watchpost_contracts::health::{Anomaly, CameraHealth, Health};

impl Default for Counters {
    fn default() -> Self {
        Self {
            model: Default::default(),
            model_switches: Default::default(),
            frames_detected: Default::default(),
            frames_gated: Default::default(),
            detect_micros: Default::default(),
            alerts_committed: Default::default(),
            dropped_delivered: Default::default(),
            dropped_dead: Default::default(),
            dropped_undelivered: Default::default(),
            uncommitted: Default::default(),
            dropped_uncommitted: Default::default(),
            // Constant, valid options: these cannot fail.
            inference: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "watchpost_inference_seconds",
                    "Detector time per frame (pre-processing, model, post-processing)",
                )
                .buckets(
                    prometheus::exponential_buckets(0.005, 2.0, 10).expect("constant buckets"),
                ),
            )
            .expect("constant histogram options"),
            fired_per_rule: Default::default(),
            delivery_latency: prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new(
                    "watchpost_delivery_latency_seconds",
                    "Commit to the receiver's acknowledgement, per sink",
                )
                .buckets(crate::deliver::LATENCY_BUCKETS.to_vec()),
                &["sink"],
            )
            .expect("constant histogram options"),
            live_alerts: tokio::sync::broadcast::channel(64).0,
            detector_beat: Default::default(),
            line_counts: Default::default(),
            live: Default::default(),
            dry_runs: Default::default(),
        }
    }
}

/// Counters the pipeline keeps while it runs.
#[derive(Debug)]
pub struct Counters {
    /// The model file in use, and how many times it was switched.
    pub model: parking_lot::Mutex<String>,
    pub model_switches: AtomicU64,
    pub frames_detected: AtomicU64,
    /// Frames the motion gate kept from the model, per camera.
    pub frames_gated: parking_lot::Mutex<HashMap<String, u64>>,
    pub detect_micros: AtomicU64,
    pub alerts_committed: AtomicU64,
    /// Rows removed to keep the outbox under `outbox_max_mb`, by kind.
    pub dropped_delivered: AtomicU64,
    pub dropped_dead: AtomicU64,
    pub dropped_undelivered: AtomicU64,
    /// Alerts produced by the rules and not yet in the outbox (waiting or being committed).
    pub uncommitted: AtomicU64,
    /// Alerts dropped from the full hand-off while the outbox could not commit.
    pub dropped_uncommitted: AtomicU64,
    /// Detector seconds per frame (telemetry's `inference_seconds`).
    pub inference: prometheus::Histogram,
    /// Alerts fired (not `alert.ended`) per rule.
    pub fired_per_rule: parking_lot::Mutex<HashMap<String, u64>>,
    /// One histogram per sink (label `sink`), shared with the sink workers.
    pub delivery_latency: prometheus::HistogramVec,
    /// Each committed alert's body, for the web page's live feed (no subscriber: dropped).
    pub live_alerts: tokio::sync::broadcast::Sender<String>,
    /// Marked on every turn of the detector loop; the service watchdog reads it.
    pub detector_beat: Arc<crate::service::Heartbeat>,
    /// Every `[[line]]`'s counts (the rules add, the committer saves, the page resets).
    pub line_counts: crate::rules::SharedCounts,
    /// Per camera, what the detector saw on its last frame (the page draws the boxes).
    pub live: parking_lot::Mutex<HashMap<String, LiveCamera>>,
    /// Rule dry-runs someone is watching, by (rule, camera): the detector explains each
    /// after every frame of that camera while it is asked for.
    pub dry_runs: parking_lot::Mutex<HashMap<(String, String), DryRun>>,
}

/// One watched dry-run: when it was last asked for, and the detector's latest answer.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub asked: Instant,
    /// When it was computed, and the explanation (`Err`: no such rule).
    pub answer: Option<(Instant, Result<crate::rules::RuleExplain, String>)>,
}

impl DryRun {
    /// A dry-run not asked for this long is dropped (the page asks every second while open).
    pub const KEEP: Duration = Duration::from_secs(15);
}

/// One camera's last detector turn, kept by the detector thread.
#[derive(Debug, Clone, Default)]
pub struct LiveCamera {
    /// When each of the last detector turns on this camera finished (the achieved rate).
    pub turns: std::collections::VecDeque<Instant>,
    /// Inference time of the last frame, and a smoothed mean.
    pub inference_ms: f64,
    pub inference_ms_mean: f64,
    /// The confirmed tracks on the last frame.
    pub objects: Vec<Sighting>,
}

/// A tracked object on a camera's last frame; `box` is normalised `[x1, y1, x2, y2]`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Sighting {
    pub track_id: u64,
    pub label: String,
    pub confidence: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

impl LiveCamera {
    /// Turns kept for the rate: about 4 s at 5 fps.
    const TURNS: usize = 20;

    pub fn record(&mut self, took: Duration, objects: Vec<Sighting>) {
        let ms = took.as_secs_f64() * 1000.0;
        self.inference_ms_mean = if self.turns.is_empty() {
            ms
        } else {
            0.8 * self.inference_ms_mean + 0.2 * ms
        };
        self.inference_ms = ms;
        self.objects = objects;
        self.turns.push_back(Instant::now());
        while self.turns.len() > Self::TURNS {
            self.turns.pop_front();
        }
    }

    /// Detector turns per second over the kept ones (`None` with fewer than two).
    pub fn rate(&self) -> Option<f64> {
        let (first, last) = (self.turns.front()?, self.turns.back()?);
        let span = last.duration_since(*first).as_secs_f64();
        (self.turns.len() >= 2 && span > 0.0).then(|| (self.turns.len() - 1) as f64 / span)
    }
}

/// A camera as the local page shows it: its status, what the detector achieves on it, its
/// alerts, and the objects on its last detected frame.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraView {
    #[serde(flatten)]
    pub status: CameraSnapshot,
    /// Detector turns per second actually achieved on this camera (recent).
    pub detect_fps: Option<f64>,
    pub inference_ms: Option<f64>,
    pub frames_gated: u64,
    pub alerts_24h: i64,
    /// The newest alert's time (RFC 3339).
    pub last_alert_at: Option<String>,
    /// Seconds since the detector last took a frame of this camera.
    pub last_detection_s: Option<f64>,
    /// Confirmed tracks on the last detected frame (empty when that frame is over 5 s old).
    pub objects: Vec<Sighting>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{NewAlert, NewDelivery, Outbox};

    fn alert(n: usize, rule: &str, camera: &str, minutes_ago: i64, now: i64) -> NewAlert {
        NewAlert {
            alert_id: ulid::Ulid::new().to_string(),
            created_at: chrono::DateTime::from_timestamp_millis(now - minutes_ago * 60_000)
                .expect("valid time"),
            camera: camera.into(),
            rule: rule.into(),
            severity: "high".into(),
            body: format!(r#"{{"n":{n}}}"#).into_bytes(),
            sinks: vec![NewDelivery::to("ops")],
        }
    }

    #[test]
    fn a_rule_that_normally_fires_and_went_quiet_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        let now = 1_800_000_000_000;
        let mut alerts = Vec::new();
        // "forklift" fired 5 times, the last 3 h ago; "person" fires all the time; "smoke"
        // fired once, 5 h ago (not "normally").
        for i in 0..5 {
            alerts.push(alert(i, "forklift", "dock", 180 + i as i64 * 30, now));
            alerts.push(alert(i, "person", "yard", 10 + i as i64 * 30, now));
        }
        alerts.push(alert(9, "smoke", "yard", 300, now));
        o.commit(&alerts).unwrap();
        let cfg = crate::config::HealthConfig::default();
        let activity = o.activity(now - 24 * 3_600_000).unwrap();
        let flagged = silent(&activity, now, &cfg);
        assert_eq!(
            flagged,
            vec![
                Anomaly {
                    kind: "rule".into(),
                    name: "forklift".into(),
                    events_baseline: 5,
                    silent_minutes: 180.0
                },
                Anomaly {
                    kind: "camera".into(),
                    name: "dock".into(),
                    events_baseline: 5,
                    silent_minutes: 180.0
                },
            ]
        );
        // Out of the baseline window, nothing "normally fires".
        let old = o.activity(now - 60 * 60_000).unwrap();
        assert!(silent(&old, now, &cfg).is_empty());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot encode metrics: {0}")]
    Encode(String),
}

/// The live parts telemetry reads; built once by `app::run`.
#[derive(Clone)]
pub struct Telemetry {
    pub device: String,
    /// `device.site`, for the health document.
    pub site: String,
    /// How often the fleet link publishes health (`[control.mqtt] health_interval_seconds`).
    pub health_interval_s: f64,
    pub started: Instant,
    pub cameras: Arc<Cameras>,
    pub counters: Arc<Counters>,
    pub outbox: SharedOutbox,
    pub sinks: Arc<crate::deliver::SinkSet>,
    pub model: String,
    pub silence: crate::config::HealthConfig,
    metrics: Arc<metrics::Metrics>,
}

impl Telemetry {
    pub fn new(
        device: String,
        cameras: Arc<Cameras>,
        counters: Arc<Counters>,
        outbox: SharedOutbox,
        sinks: Arc<crate::deliver::SinkSet>,
        model: String,
        silence: crate::config::HealthConfig,
    ) -> Result<Self, TelemetryError> {
        let metrics = Arc::new(metrics::Metrics::new(
            cameras.clone(),
            counters.clone(),
            sinks.clone(),
            outbox.clone(),
        )?);
        Ok(Self {
            device,
            site: String::new(),
            health_interval_s: 30.0,
            started: Instant::now(),
            cameras,
            counters,
            outbox,
            sinks,
            model,
            silence,
            metrics,
        })
    }
}

/// The silent ones among `activity` (counted over the baseline window ending `now_ms`).
pub fn silent(
    activity: &[crate::outbox::Activity],
    now_ms: i64,
    cfg: &crate::config::HealthConfig,
) -> Vec<Anomaly> {
    activity
        .iter()
        .filter(|a| a.events >= i64::from(cfg.min_events))
        .filter_map(|a| {
            let silent_minutes = (now_ms - a.last_ms) as f64 / 60_000.0;
            (silent_minutes >= cfg.silence_minutes).then(|| Anomaly {
                kind: a.kind.to_string(),
                name: a.name.clone(),
                events_baseline: a.events,
                silent_minutes: (silent_minutes * 10.0).round() / 10.0,
            })
        })
        .collect()
}

/// `GET /readyz`: ready to detect and to keep alerts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub model_loaded: bool,
    /// New alerts commit (the database takes its write lock and the last commit worked).
    pub outbox_writable: bool,
    pub cameras_streaming: usize,
    pub cameras: usize,
    /// Why the gateway is not ready, or what is degraded (a stalled sink), in words.
    pub problems: Vec<String>,
    /// Found at start and still to be dealt with (a damaged outbox moved aside, lost alerts).
    pub notices: Vec<String>,
    /// Each running sink's worker.
    pub sinks: Vec<crate::deliver::WorkerStatus>,
}

impl Telemetry {
    fn gated(&self, camera: &str) -> u64 {
        self.counters
            .frames_gated
            .lock()
            .get(camera)
            .copied()
            .unwrap_or(0)
    }

    /// What health and metrics both read from the outbox, in one call off the async workers:
    /// the totals, each sink's figures, and the activity over the `[health]` baseline.
    async fn outbox_reading(&self) -> Result<OutboxReading, TelemetryError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let since = now_ms - (self.silence.baseline_hours * 3_600_000.0) as i64;
        let (stats, sinks, activity) = self
            .outbox
            .call(move |o| Ok((o.stats()?, o.sink_stats(now_ms)?, o.activity(since)?)))
            .await?;
        Ok(OutboxReading {
            now_ms,
            stats,
            sinks,
            activity,
        })
    }

    /// Every camera with what the detector achieves on it and its alerts in 24 h.
    pub async fn camera_views(&self) -> Result<Vec<CameraView>, TelemetryError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let activity = self
            .outbox
            .call(move |o| o.activity(now_ms - 24 * 3_600_000))
            .await?;
        let live = self.counters.live.lock().clone();
        Ok(self
            .cameras
            .snapshots()
            .into_iter()
            .map(|status| {
                let seen = activity
                    .iter()
                    .find(|a| a.kind == "camera" && a.name == status.name);
                let l = live.get(&status.name);
                let last = l.and_then(|l| l.turns.back()).map(|t| t.elapsed());
                CameraView {
                    detect_fps: l.and_then(LiveCamera::rate),
                    inference_ms: l.map(|l| l.inference_ms_mean),
                    frames_gated: self.gated(&status.name),
                    alerts_24h: seen.map_or(0, |a| a.events),
                    last_alert_at: seen.map(|a| crate::outbox::ms_to_rfc3339(a.last_ms)),
                    last_detection_s: last.map(|d| d.as_secs_f64()),
                    objects: match (l, last) {
                        (Some(l), Some(d)) if d < Duration::from_secs(5) => l.objects.clone(),
                        _ => Vec::new(),
                    },
                    status,
                }
            })
            .collect())
    }

    pub async fn health(&self) -> Result<Health, TelemetryError> {
        let OutboxReading {
            now_ms,
            stats,
            sinks,
            activity,
        } = self.outbox_reading().await?;
        let cameras: Vec<CameraHealth> = self
            .cameras
            .snapshots()
            .into_iter()
            .map(|status| CameraHealth {
                frames_gated: self.gated(&status.name),
                status,
            })
            .collect();
        let c = &self.counters;
        let detected = c.frames_detected.load(Ordering::Relaxed);
        // Attempt-weighted rate: sinks report their own rates, weighted by events.
        let weighted: Vec<(f64, f64)> = sinks
            .iter()
            .filter_map(|s| Some((s.delivery_success_rate?, s.events_24h.max(1) as f64)))
            .collect();
        let weight: f64 = weighted.iter().map(|w| w.1).sum();
        Ok(Health {
            device: self.device.clone(),
            site: self.site.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            at: crate::clock::rfc3339_ms(chrono::Utc::now()),
            health_interval_s: self.health_interval_s,
            uptime_s: self.started.elapsed().as_secs(),
            model: self.model.clone(),
            cameras_streaming: cameras
                .iter()
                .filter(|c| c.status.state == CameraState::Streaming)
                .count(),
            cameras,
            frames_detected: detected,
            inference_ms_mean: (detected > 0)
                .then(|| c.detect_micros.load(Ordering::Relaxed) as f64 / 1000.0 / detected as f64),
            alerts_committed: c.alerts_committed.load(Ordering::Relaxed),
            outbox_pending: stats.pending,
            dead_letters: stats.dead,
            events_24h: stats_events(&sinks),
            delivery_success_rate: (weight > 0.0)
                .then(|| weighted.iter().map(|(r, w)| r * w).sum::<f64>() / weight),
            delivery_latency_p50_ms: sinks.iter().filter_map(|s| s.latency_p50_ms).max(),
            delivery_latency_p95_ms: sinks.iter().filter_map(|s| s.latency_p95_ms).max(),
            anomalies: silent(&activity, now_ms, &self.silence),
            alerts_uncommitted: c.uncommitted.load(Ordering::Relaxed),
            alerts_dropped_uncommitted: c.dropped_uncommitted.load(Ordering::Relaxed),
            outbox: self.outbox.condition().report(),
            sinks: self.sinks.statuses(),
            delivery: sinks,
            lines: c
                .line_counts
                .snapshot()
                .iter()
                .map(|l| l.health())
                .collect(),
        })
    }

    pub async fn readiness(&self) -> Readiness {
        let probe = self.outbox.call(|o| o.probe_write().map(|_| ())).await;
        let condition = self.outbox.condition().report();
        let mut problems = Vec::new();
        if let Err(e) = &probe {
            problems.push(format!("outbox does not take writes: {e}"));
        }
        if let Some(fatal) = &condition.fatal {
            problems.push(format!("outbox damaged: {fatal}"));
        }
        if condition.commit_failing {
            problems.push(format!(
                "outbox cannot commit alerts: {}",
                condition.error.as_deref().unwrap_or("unknown error")
            ));
        }
        let sinks = self.sinks.statuses();
        let mut sink_down = false;
        for s in &sinks {
            let why = s.error.as_deref().unwrap_or("");
            match s.state {
                crate::deliver::WorkerState::Running => {}
                crate::deliver::WorkerState::Restarting => {
                    sink_down = true;
                    problems.push(format!("sink \"{}\" stopped, restarting: {why}", s.sink));
                }
                crate::deliver::WorkerState::Stalled => problems.push(format!(
                    "sink \"{}\" paused on an outbox error: {why}",
                    s.sink
                )),
            }
        }
        let outbox_writable = probe.is_ok() && condition.writable();
        let snaps = self.cameras.snapshots();
        let streaming = snaps
            .iter()
            .filter(|c| c.state == CameraState::Streaming)
            .count();
        let cameras_ok = snaps.is_empty() || streaming > 0;
        if !cameras_ok {
            problems.push("no camera is streaming".into());
        }
        // The model is loaded before anything telemetry serves exists.
        Readiness {
            ready: outbox_writable && cameras_ok && !sink_down,
            model_loaded: true,
            outbox_writable,
            cameras_streaming: streaming,
            cameras: snaps.len(),
            problems,
            notices: condition.notices,
            sinks,
        }
    }

    /// The Prometheus text exposition of everything, as of now. The registry is built once
    /// (`metrics.rs`); a scrape reads the outbox here (off the async workers), then gathers.
    pub async fn metrics(&self) -> Result<String, TelemetryError> {
        // An outbox that cannot be read (damaged) leaves its families out; the rest, and
        // `watchpost_outbox_writable`, still tell the scraper what is wrong.
        let view = match self.outbox_reading().await {
            Ok(OutboxReading {
                now_ms,
                stats,
                sinks,
                activity,
            }) => Some(metrics::OutboxView {
                dead: stats.dead,
                pending: sinks.iter().map(|s| (s.sink.clone(), s.pending)).collect(),
                silent: silent(&activity, now_ms, &self.silence),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: outbox not readable; its figures are left out");
                if let TelemetryError::Outbox(e) = &e {
                    self.outbox.condition().saw(e);
                }
                None
            }
        };
        self.metrics.render(view)
    }
}

struct OutboxReading {
    now_ms: i64,
    stats: crate::outbox::Stats,
    sinks: Vec<crate::outbox::SinkStats>,
    activity: Vec<crate::outbox::Activity>,
}

fn stats_events(sinks: &[crate::outbox::SinkStats]) -> i64 {
    // An alert routed to two sinks is one event: count the busiest sink's.
    sinks.iter().map(|s| s.events_24h).max().unwrap_or(0)
}
