//! The event bodies (DESIGN.md "Alert payload"): `{"type", "timestamp", "data"}`. The gateway
//! builds them once, at commit, and every sink sends the same bytes; the console reads them
//! with the same types.

use serde::{Deserialize, Serialize};

pub const FIRED: &str = "alert.fired";
pub const ENDED: &str = "alert.ended";
/// A line's periodic in/out/occupancy report.
pub const REPORT: &str = "count.report";
/// A sink test from the gateway's page (never through the outbox).
pub const TEST: &str = "alert.test";

/// The envelope of every event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event<D> {
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened (RFC 3339, milliseconds, UTC).
    pub timestamp: String,
    pub data: D,
}

/// One tracked object of an alert; `box` is `[x1, y1, x2, y2]` in normalised image
/// coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub label: String,
    pub confidence: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub track_id: u64,
}

/// `alert.fired` (and `alert.test`, the same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fired {
    /// Unique, stable across retries and sinks, sortable by time (a ULID): receivers
    /// de-duplicate on it.
    pub alert_id: String,
    pub device_id: String,
    pub site: String,
    pub camera: String,
    pub rule: String,
    pub label: String,
    pub confidence: f32,
    pub count: u32,
    pub severity: String,
    pub frame_ts: String,
    pub objects: Vec<Object>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The stored snapshot's id on the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The snapshot itself, base64 JPEG, where the sink asks for it (`snapshot = "inline"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_jpeg: Option<String>,
    /// Rules with `crosses`: the line, the direction crossed (or the occupancy bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineEvent>,
}

/// What a line rule's alert says about its line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineEvent {
    pub name: String,
    /// `"in"` or `"out"` for a crossing; absent on an occupancy alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The line's occupancy (of the rule's labels) after this event.
    pub occupancy: u64,
}

/// One label's figures on a line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelCount {
    /// Crossings in each direction in the report's interval (in health: since the reset).
    #[serde(rename = "in")]
    pub entered: u64,
    pub out: u64,
    /// In − out since the last reset, never below zero.
    pub occupancy: u64,
}

/// `count.report`: one line's counts over one interval (`report_minutes`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountReport {
    /// Unique per report (a ULID), like every event's: receivers de-duplicate on it.
    pub alert_id: String,
    pub device_id: String,
    pub site: String,
    pub line: String,
    /// The cameras the line is drawn on (empty: every camera).
    pub cameras: Vec<String>,
    pub interval_start: String,
    pub interval_end: String,
    /// Crossings in the interval, every label.
    #[serde(rename = "in")]
    pub entered: u64,
    pub out: u64,
    /// At the interval's end.
    pub occupancy: u64,
    /// Totals since the last reset (`since`).
    pub total_in: u64,
    pub total_out: u64,
    pub since: String,
    pub labels: std::collections::BTreeMap<String, LabelCount>,
}

/// `alert.ended`: the condition of an `emit_ended` rule stopped holding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ended {
    pub alert_id: String,
    pub fired_alert_id: String,
    pub device_id: String,
    pub site: String,
    pub camera: String,
    pub rule: String,
    pub severity: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_seconds: f64,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// What every event's `data` carries, whatever its type: enough to file it.
#[derive(Debug, Clone, Deserialize)]
pub struct Head {
    pub alert_id: String,
    pub device_id: String,
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub camera: Option<String>,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
}
