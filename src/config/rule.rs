//! `[[rule]]`, `[[zone]]` and `[tracker]`: what turns detections into alerts.

use super::default_true;
use super::ScheduleWindow;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// `None` = every camera.
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    /// Empty = any label.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
    /// A `[[zone]]` by name, or a polygon in normalised image coordinates; `None` = whole frame.
    #[serde(default)]
    pub zone: Option<ZoneRef>,
    /// Box area as a fraction of the frame, to ignore far-away or implausibly large objects.
    #[serde(default)]
    pub min_area: f64,
    #[serde(default = "default_max_area")]
    pub max_area: f64,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Also send `alert.ended` when the condition stops holding.
    #[serde(default)]
    pub emit_ended: bool,
    #[serde(default = "default_min_count")]
    pub min_count: u32,
    #[serde(default)]
    pub dwell_seconds: f64,
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: f64,
    /// `None` = always.
    #[serde(default)]
    pub schedule: Option<Vec<ScheduleWindow>>,
    #[serde(default)]
    pub severity: Severity,
    /// `None` = every sink.
    #[serde(default)]
    pub sinks: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

pub(super) fn default_max_area() -> f64 {
    1.0
}

/// A rule's zone: the name of a `[[zone]]`, or an inline polygon (the original contract).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ZoneRef {
    Name(String),
    Polygon(Vec<[f64; 2]>),
}

/// Which point of a box decides whether the object is in a zone.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Anchor {
    /// Where a person or vehicle stands.
    #[default]
    BottomCenter,
    Centroid,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    /// `None` = the zone applies to any camera whose rules name it.
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    pub polygon: Vec<[f64; 2]>,
    #[serde(default)]
    pub anchor: Anchor,
    /// Consecutive frames an object must be in (or out) before it counts as entered (or left).
    #[serde(default = "default_inertia")]
    pub inertia: u32,
}

pub(super) fn default_inertia() -> u32 {
    2
}

/// Associates detections across frames so each object has a track id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerConfig {
    /// Frames a track must be matched before rules see it (filters one-frame false positives).
    #[serde(default = "default_min_hits")]
    pub min_hits: u32,
    /// Missed frames after which a track ends.
    #[serde(default = "default_max_age")]
    pub max_age: u32,
    #[serde(default = "default_iou")]
    pub iou_threshold: f32,
    /// Frames over which a track's median score is taken.
    #[serde(default = "default_score_window")]
    pub score_window: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            min_hits: default_min_hits(),
            max_age: default_max_age(),
            iou_threshold: default_iou(),
            score_window: default_score_window(),
        }
    }
}

pub(super) fn default_min_hits() -> u32 {
    2
}
pub(super) fn default_max_age() -> u32 {
    5
}
pub(super) fn default_iou() -> f32 {
    0.3
}
pub(super) fn default_score_window() -> usize {
    5
}

pub(super) fn default_min_confidence() -> f32 {
    0.5
}
pub(super) fn default_min_count() -> u32 {
    1
}
pub(super) fn default_cooldown() -> f64 {
    60.0
}
