//! `[[sink]]` and `[delivery]`: where alerts go and how hard delivery tries.

use super::{default_true, Secret, Severity};
use serde::Deserialize;
use std::path::PathBuf;

/// What a sink receives of the alert's snapshot.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IncludeSnapshot {
    /// No snapshot field.
    None,
    /// `data.snapshot`: the snapshot's id (served by the gateway).
    #[default]
    Reference,
    /// `data.snapshot` plus `data.snapshot_jpeg`: the JPEG, base64.
    Inline,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Webhook,
    Mqtt,
    /// A Slack incoming webhook: a Block Kit message.
    Slack,
    /// PagerDuty Events API v2: trigger on alert.fired, resolve on alert.ended.
    Pagerduty,
    /// SMTP (STARTTLS on smtp://, implicit TLS on smtps://), snapshot attached.
    Email,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Mqtt => "mqtt",
            SinkKind::Slack => "slack",
            SinkKind::Pagerduty => "pagerduty",
            SinkKind::Email => "email",
        }
    }
}

/// PagerDuty's Events API v2 endpoint, the `url` of a pagerduty sink unless set.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
pub enum SignatureMode {
    #[default]
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    #[serde(rename = "hex")]
    Hex,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    pub name: String,
    pub kind: SinkKind,
    /// `false` keeps the sink in the file but sends nothing to it: rules skip it and its
    /// undelivered rows wait in the outbox until it is enabled again.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Webhook/Slack URL, `mqtt(s)://` broker, `smtp(s)://` server; PagerDuty's by default.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub signature: SignatureMode,
    #[serde(default)]
    pub signature_header: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    #[serde(default)]
    pub include_snapshot: IncludeSnapshot,
    /// Requests in flight at once while the receiver is healthy (started oldest first);
    /// `None` = the kind's default ([`SinkConfig::concurrency`]).
    #[serde(default, rename = "concurrency")]
    pub concurrency_setting: Option<usize>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub qos: Option<u8>,
    /// MQTT: user name and password, instead of (or besides) the URL's `user:pass@`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// mqtts: PEM file of the CAs to trust (default: the system's roots), so a site broker
    /// with its own CA needs no change to the system trust store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// mqtts: client certificate chain and its private key (PEM), for brokers that
    /// authenticate devices by certificate.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// MQTT: how long the broker keeps this sink's session after a disconnect, so
    /// unacknowledged publishes are resent with their packet ids after a short drop
    /// (0 = a clean session on every connection).
    #[serde(default = "default_session_expiry")]
    pub session_expiry_seconds: u32,
    /// MQTT: connections to the broker, each with its own client id and session; sends go
    /// to the least busy one.
    #[serde(default)]
    pub connections: Option<usize>,
    /// Routing for rules without their own `sinks` list: only alerts at or above this
    /// severity, only these severities, only these rules (all that are set must hold).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    #[serde(default)]
    pub severities: Option<Vec<Severity>>,
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// PagerDuty: the integration's routing key.
    #[serde(default)]
    pub routing_key: Option<Secret>,
    /// Email: sender and recipients.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    /// Slack/PagerDuty/email: the title (Slack header, PagerDuty summary, email subject),
    /// with placeholders like `{camera}` (see `deliver::template`).
    #[serde(default)]
    pub template: Option<String>,
    /// Slack/PagerDuty/email: base URL of this gateway's page, for a link to the snapshot
    /// (`{link_url}/snapshots/{alert_id}.jpg`) where the local page is reachable.
    #[serde(default)]
    pub link_url: Option<String>,
}

pub(super) fn default_session_expiry() -> u32 {
    3600
}

impl SinkConfig {
    /// Webhooks: 4, as receivers expect few parallel calls. MQTT: 256 publishes in flight over
    /// its connections: a broker without TCP_NODELAY (mosquitto's default) answers in ~40 ms
    /// batches and grants each connection 20 at a time, so throughput is in-flight ÷ 40 ms
    /// (64 on one connection: ~1,300/s; 256 on four: ~2,500/s).
    pub fn concurrency(&self) -> usize {
        self.concurrency_setting.unwrap_or(match self.kind {
            SinkKind::Webhook => 4,
            SinkKind::Mqtt => 256,
            // People read these one at a time; Slack allows about one message a second.
            SinkKind::Slack | SinkKind::Pagerduty | SinkKind::Email => 1,
        })
    }

    /// MQTT connections (default 4).
    pub fn mqtt_connections(&self) -> usize {
        self.connections.unwrap_or(4)
    }

    /// Whether an alert of `rule` at `severity` goes here when the rule names no sinks.
    pub fn accepts(&self, rule: &str, severity: Severity) -> bool {
        self.min_severity.is_none_or(|min| severity >= min)
            && self
                .severities
                .as_ref()
                .is_none_or(|list| list.contains(&severity))
            && self
                .rules
                .as_ref()
                .is_none_or(|list| list.iter().any(|r| r == rule))
    }
}

pub(super) fn default_timeout() -> f64 {
    5.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default = "default_retry_schedule")]
    pub retry_schedule_seconds: Vec<f64>,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_seconds: f64,
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: f64,
    #[serde(default = "default_outbox_max_mb")]
    pub outbox_max_mb: u64,
    /// Delivered rows are kept this long, for the delivery statistics.
    #[serde(default = "default_history_hours")]
    pub history_hours: f64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry_schedule_seconds: default_retry_schedule(),
            max_backoff_seconds: default_max_backoff(),
            max_age_hours: default_max_age_hours(),
            outbox_max_mb: default_outbox_max_mb(),
            history_hours: default_history_hours(),
        }
    }
}

pub(super) fn default_retry_schedule() -> Vec<f64> {
    vec![1.0, 2.0, 4.0, 8.0, 16.0]
}
pub(super) fn default_max_backoff() -> f64 {
    300.0
}
pub(super) fn default_max_age_hours() -> f64 {
    168.0
}
pub(super) fn default_history_hours() -> f64 {
    72.0
}
pub(super) fn default_outbox_max_mb() -> u64 {
    512
}
