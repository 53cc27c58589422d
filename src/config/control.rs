//! `[web]` and `[control.mqtt]`: the local HTTPS page and the fleet link.

use super::locate::FieldPath;
use super::problems::Problems;
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
    /// During a key rotation: the key commands were signed with before, still accepted until
    /// the console removes it (it pushes the new key with this one set to the old).
    #[serde(default)]
    pub control_key_previous: Option<Secret>,
}

pub(super) fn default_health_interval() -> f64 {
    30.0
}

impl WebConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let web = self;
        if web.listen.parse::<std::net::SocketAddr>().is_err() {
            p.add(
                &FieldPath::root("web").key("listen"),
                format!("expected ADDRESS:PORT, got \"{}\"", web.listen),
            );
        }
        if web.cert_file.is_some() != web.key_file.is_some() {
            p.add(
                &FieldPath::root("web").key(if web.cert_file.is_some() {
                    "key_file"
                } else {
                    "cert_file"
                }),
                "give both cert_file and key_file, or neither (a self-signed pair is made)",
            );
        }
    }
}

impl ControlMqttConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let m = self;
        let at = FieldPath::root("control").key("mqtt");
        if let (Some(k), None) = (&m.control_key, &m.control_key_file) {
            if k.expose().len() < 16 {
                p.add(
                    &at.key("control_key"),
                    "must be at least 16 characters (the value is not shown)",
                );
            }
        }
        if m.control_key_previous
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            p.add(
                &at.key("control_key_previous"),
                "must be at least 16 characters (the value is not shown)",
            );
        }
        if !(m.url.starts_with("mqtt://") || m.url.starts_with("mqtts://")) {
            p.add(
                &at.key("url"),
                format!(
                    "expected mqtt://host[:port] or mqtts://host[:port], got \"{}\"",
                    crate::config::redact_url(&m.url)
                ),
            );
        } else {
            match url::Url::parse(&m.url) {
                Err(e) => p.add(&at.key("url"), format!("not a valid URL: {e}")),
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    p.add(&at.key("url"), "names no broker host")
                }
                Ok(_) => {}
            }
        }
        if !(m.health_interval_seconds >= 1.0 && m.health_interval_seconds <= 3600.0) {
            p.add(
                &at.key("health_interval_seconds"),
                format!(
                    "must be between 1 and 3600, got {}",
                    m.health_interval_seconds
                ),
            );
        }
    }
}
