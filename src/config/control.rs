//! `[web]` and `[control.mqtt]`: the local HTTPS page and the fleet link.

use super::Secret;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub listen: String,
    /// PEM certificate and key for HTTPS; both absent = a self-signed pair made on first
    /// start in `data_dir/web/` (its SHA-256 fingerprint is logged, to pin in the browser).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default)]
    pub mqtt: Option<ControlMqttConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlMqttConfig {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]` (the fleet broker).
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// `health` is published this often, and at once when a camera changes state.
    #[serde(default = "default_health_interval")]
    pub health_interval_seconds: f64,
    /// The per-device key fleet commands are signed with (HMAC-SHA256); or `control_key_file`.
    /// Neither = commands are refused.
    #[serde(default)]
    pub control_key: Option<Secret>,
    #[serde(default)]
    pub control_key_file: Option<PathBuf>,
}

pub(super) fn default_health_interval() -> f64 {
    30.0
}
