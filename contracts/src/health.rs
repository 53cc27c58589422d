//! The health document (`watchpost/{device}/health`, retained): what a gateway says about
//! itself every `health_interval_seconds` and whenever a camera changes state. Never holds a
//! secret: cameras and sinks appear by name.

use serde::{Deserialize, Serialize};

/// A gateway that sent no health for this many of its own intervals is stale: a wedged
/// gateway whose TCP session lingers (so no last will) must still show as not well.
pub const STALE_AFTER_INTERVALS: f64 = 3.0;

fn default_interval() -> f64 {
    30.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    Connecting,
    Streaming,
    /// Frames stopped without an error (a frozen camera); torn down, reconnecting soon.
    Stalled,
    /// Failed (the last error says why); reconnecting after a backoff.
    Backoff,
    Stopped,
}

/// A camera as status shows it. `frames_detected`, `frames_skipped` and `frame_age_ms` come
/// from the gateway's hand-off to the detector.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CameraSnapshot {
    pub name: String,
    pub state: CameraState,
    pub last_error: Option<String>,
    /// Frames that arrived from the camera (after `keyframes_only`).
    pub frames_received: u64,
    /// Frames kept by the `detect_fps` sampler and converted for the detector.
    pub frames_sampled: u64,
    /// Frames the detector took.
    pub frames_detected: u64,
    /// Sampled frames replaced by a newer one before the detector was free.
    pub frames_skipped: u64,
    pub delta_frames_dropped: u64,
    pub sessions: u64,
    /// Frames per second arriving from the camera over the last few seconds.
    pub fps: f64,
    /// How long the last frame the detector took had waited since it arrived.
    pub frame_age_ms: Option<f64>,
    /// Seconds the camera has been in `state` ("connecting for 12 s").
    #[serde(default)]
    pub state_for_s: Option<f64>,
}

/// A rule or camera that normally fires and has been silent for `[health] silence_minutes`:
/// a camera knocked out of aim, a zone drawn wrong, a model that stopped seeing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Anomaly {
    /// `rule` or `camera`.
    pub kind: String,
    pub name: String,
    /// Alerts in the baseline window.
    pub events_baseline: i64,
    pub silent_minutes: f64,
}

/// One camera in the health document.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CameraHealth {
    #[serde(flatten)]
    pub status: CameraSnapshot,
    pub frames_gated: u64,
}

/// `watchpost/{device}/health` (retained) and the gateway's `GET /api/health`: one JSON object.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub device: String,
    /// The gateway's `device.site` (the console groups gateways by it).
    #[serde(default)]
    pub site: String,
    /// The gateway's software version.
    #[serde(default)]
    pub version: String,
    /// When this document was made (RFC 3339, milliseconds, UTC; the gateway's clock).
    #[serde(default)]
    pub at: String,
    /// How often the gateway publishes health: the console calls it stale after 3 of these
    /// without one ([`STALE_AFTER_INTERVALS`]).
    #[serde(default = "default_interval")]
    pub health_interval_s: f64,
    pub uptime_s: u64,
    pub model: String,
    pub cameras: Vec<CameraHealth>,
    pub cameras_streaming: usize,
    pub frames_detected: u64,
    pub inference_ms_mean: Option<f64>,
    pub alerts_committed: u64,
    pub outbox_pending: i64,
    pub dead_letters: i64,
    pub events_24h: i64,
    /// Over every sink's attempts in the last 24 h; `None` before the first attempt.
    pub delivery_success_rate: Option<f64>,
    /// Commit → acknowledged, the slowest sink's figure.
    pub delivery_latency_p50_ms: Option<i64>,
    pub delivery_latency_p95_ms: Option<i64>,
    /// Rules and cameras that normally fire but have gone silent (`[health]`).
    pub anomalies: Vec<Anomaly>,
    /// Alerts produced by the rules and not yet committed (waiting while the outbox cannot).
    pub alerts_uncommitted: u64,
    /// Alerts dropped (oldest first) because the outbox could not commit for too long.
    pub alerts_dropped_uncommitted: u64,
    /// Commit failures, a full disk, damage found at start.
    pub outbox: ConditionReport,
    /// Each running sink's worker: running, stalled on the outbox, or restarting.
    pub sinks: Vec<WorkerStatus>,
    /// Each sink's delivery figures: pending, dead, success rate, last success and error.
    pub delivery: Vec<SinkStats>,
    /// Each `[[line]]`'s counts since its last reset, and occupancy.
    #[serde(default)]
    pub lines: Vec<LineHealth>,
}

/// One line's counts in the health document (and the gateway's `/api/lines`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineHealth {
    pub name: String,
    /// Crossings in each direction since `since` (the last reset), every label.
    #[serde(rename = "in")]
    pub entered: u64,
    pub out: u64,
    /// In − out since the reset, never below zero.
    pub occupancy: u64,
    /// The last reset (RFC 3339).
    pub since: String,
    /// The same per label.
    pub labels: std::collections::BTreeMap<String, crate::event::LabelCount>,
}

/// The outbox's condition: failing commits, damage, a used-up disk reserve.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConditionReport {
    /// Commits that failed since start (each retry counts).
    pub commit_failures: u64,
    /// Delivery attempts whose record could not be written (the row stays pending).
    pub record_failures: u64,
    /// New alerts cannot be committed right now.
    pub commit_failing: bool,
    /// The last outbox error, while commits are failing or the database is damaged.
    pub error: Option<String>,
    /// The database is damaged; the daemon is unready until restarted.
    pub fatal: Option<String>,
    /// Found at start: a damaged database moved aside, alerts missing from the database.
    pub notices: Vec<String>,
    /// The disk reserve was used up by a full disk and not yet made again.
    pub reserve_released: bool,
}

impl ConditionReport {
    /// New alerts can be committed: no failing commit, no damage.
    pub fn writable(&self) -> bool {
        !self.commit_failing && self.fatal.is_none()
    }
}

/// Per-sink delivery figures (last 24 h where named so).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SinkStats {
    pub sink: String,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    /// Alerts committed for this sink in the last 24 h.
    pub events_24h: i64,
    /// Share of the last 24 h's attempts the receiver acknowledged.
    pub delivery_success_rate: Option<f64>,
    /// Commit → acknowledged, for rows delivered in the last 24 h.
    pub latency_avg_ms: Option<f64>,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
    /// The newest acknowledged attempt (RFC 3339).
    pub last_success_at: Option<String>,
    /// Why the newest attempt failed, when no success came after it.
    pub last_error: Option<String>,
}

/// What a sink's worker is doing, as `/readyz`, health, metrics and the page show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Delivering (the receiver itself may still be failing: see the attempts).
    Running,
    /// The outbox refuses reads or writes (e.g. disk full); retrying.
    Stalled,
    /// The worker stopped and its supervisor restarts it after a pause.
    Restarting,
}

/// A sink worker's state and why, for the reports.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerStatus {
    pub sink: String,
    pub state: WorkerState,
    pub error: Option<String>,
    /// Times the supervisor restarted this sink's worker since start.
    pub restarts: u64,
}
