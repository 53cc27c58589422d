//! The event bodies (DESIGN.md "Alert payload"): `{"type", "timestamp", "data"}`. The gateway
//! builds them once, at commit, and every sink sends the same bytes; the console reads them
//! with the same types.

use serde::{Deserialize, Serialize};

pub const FIRED: &str = "alert.fired";
pub const ENDED: &str = "alert.ended";
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
