//! `[device]` and `[health]`: who this gateway is, where it keeps its data, and when a
//! quiet rule or camera counts as an anomaly.

use serde::Deserialize;
use std::path::PathBuf;

/// `[health]`: when a rule or camera that normally fires counts as suspiciously silent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Silent this long → flagged (if it normally fires).
    pub silence_minutes: f64,
    /// "Normally fires" = at least `min_events` alerts within this many hours.
    pub baseline_hours: f64,
    pub min_events: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            silence_minutes: 120.0,
            baseline_hours: 24.0,
            min_events: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    #[serde(default = "default_device_id")]
    pub id: String,
    #[serde(default)]
    pub site: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            id: default_device_id(),
            site: String::new(),
            data_dir: default_data_dir(),
        }
    }
}

pub(super) fn default_device_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "watchpost".to_string())
}

pub(super) fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/watchpost")
}
