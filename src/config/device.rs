//! `[device]` and `[health]`: who this gateway is, where it keeps its data, and when a
//! quiet rule or camera counts as an anomaly.

use super::locate::FieldPath;
use super::problems::Problems;
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

impl DeviceConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let device = FieldPath::root("device");
        if self.id.trim().is_empty() {
            p.add(&device.key("id"), "must not be empty");
        }
    }
}

impl HealthConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let h = FieldPath::root("health");
        p.range(
            &h.key("silence_minutes"),
            self.silence_minutes,
            1.0,
            7.0 * 24.0 * 60.0,
        );
        p.range(
            &h.key("baseline_hours"),
            self.baseline_hours,
            1.0,
            24.0 * 30.0,
        );
        if self.baseline_hours * 60.0 <= self.silence_minutes {
            p.add(
                &h.key("baseline_hours"),
                format!(
                    "must be longer than silence_minutes ({} min), or nothing can look silent",
                    self.silence_minutes
                ),
            );
        }
        if self.min_events == 0 {
            p.add(&h.key("min_events"), "must be at least 1");
        }
    }
}
