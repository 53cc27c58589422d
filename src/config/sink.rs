//! `[[sink]]` and `[delivery]`: where alerts go and how hard delivery tries.

use super::locate::FieldPath;
use super::problems::Problems;
use super::{default_true, Secret, Severity};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::HashSet;
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

/// The kinds of event the outbox carries, for a sink's `events` list.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum EventKind {
    #[serde(rename = "alert.fired")]
    AlertFired,
    #[serde(rename = "alert.ended")]
    AlertEnded,
    #[serde(rename = "count.report")]
    CountReport,
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
    /// The event kinds this sink receives; `None` = every kind (DESIGN.md "Events").
    #[serde(default)]
    pub events: Option<Vec<EventKind>>,
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
    /// Whether this sink takes events of `kind` (its `events` list, or the kind's default).
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.as_ref().is_none_or(|list| list.contains(&kind))
    }

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

/// Each sink's own settings and its routing; returns the names, for the rules' references.
pub(super) fn check_sinks(
    sinks_cfg: &[SinkConfig],
    rule_names: &[String],
    p: &mut Problems<'_>,
) -> HashSet<String> {
    let mut sinks = HashSet::new();
    for (i, sink) in sinks_cfg.iter().enumerate() {
        let at = FieldPath::root("sink").index(i);
        if sink.name.trim().is_empty() {
            p.add(&at.key("name"), "must not be empty");
        } else if !sinks.insert(sink.name.clone()) {
            p.add(
                &at.key("name"),
                format!("sink \"{}\" is defined twice", sink.name),
            );
        }
        validate_routing(sink, &at, rule_names, p);
        if sink.events.as_ref().is_some_and(|e| e.is_empty()) {
            p.add(
                &at.key("events"),
                format!("sink \"{}\": an empty events list sends nothing; remove it for every kind, or set enabled = false", sink.name),
            );
        }
        check_limits(sink, &at, p);
        if !matches!(
            sink.kind,
            SinkKind::Slack | SinkKind::Pagerduty | SinkKind::Email
        ) {
            for (field, set) in [
                ("routing_key", sink.routing_key.is_some()),
                ("from", sink.from.is_some()),
                ("to", !sink.to.is_empty()),
                ("template", sink.template.is_some()),
                ("link_url", sink.link_url.is_some()),
            ] {
                if set {
                    p.add(
                        &at.key(field),
                        format!(
                            "{} sinks do not take this setting (slack, pagerduty and email do)",
                            sink.kind.as_str()
                        ),
                    );
                }
            }
        }
        match sink.kind {
            SinkKind::Mqtt => {
                validate_mqtt_sink(sink, &at, p);
                continue;
            }
            SinkKind::Slack | SinkKind::Pagerduty | SinkKind::Email => {
                validate_people_sink(sink, &at, p);
                continue;
            }
            SinkKind::Webhook => {}
        }
        for (field, set) in [
            ("ca_file", sink.ca_file.is_some()),
            ("client_cert_file", sink.client_cert_file.is_some()),
            ("client_key_file", sink.client_key_file.is_some()),
            ("username", sink.username.is_some()),
            ("password", sink.password.is_some()),
            ("connections", sink.connections.is_some()),
        ] {
            if set {
                p.add(&at.key(field), "only MQTT sinks take this setting");
            }
        }
        match url::Url::parse(&sink.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => p.add(
                &at.key("url"),
                format!(
                    "sink \"{}\": a webhook needs an http(s) URL, got scheme \"{}\"",
                    sink.name,
                    u.scheme()
                ),
            ),
            Err(e) => p.add(
                &at.key("url"),
                format!("sink \"{}\": not a valid URL ({e})", sink.name),
            ),
        }
        // An unreadable secret_file is already reported by `resolve`.
        if sink.secret.is_none() && sink.secret_file.is_none() {
            p.add(
                &at,
                format!(
                    "sink \"{}\": a webhook needs a secret (or secret_file) to sign with",
                    sink.name
                ),
            );
        }
        let field = if sink.secret_file.is_some() {
            "secret_file"
        } else {
            "secret"
        };
        if let Some(secret) = &sink.secret {
            match sink.signature {
                SignatureMode::StandardWebhooks => {
                    // Several secrets (a rotation) are separated by whitespace.
                    let mut parts = secret.expose().split_whitespace().peekable();
                    let ok = parts.peek().is_some()
                        && parts.all(|one| {
                            one.strip_prefix("whsec_").is_some_and(|k| {
                                base64::engine::general_purpose::STANDARD
                                    .decode(k)
                                    .is_ok_and(|b| !b.is_empty())
                            })
                        });
                    if !ok {
                        p.add(
                            &at.key(field),
                            format!("sink \"{}\": a standard-webhooks secret is \"whsec_\" followed by base64 (the value is not shown)", sink.name),
                        );
                    }
                }
                SignatureMode::Hex => {
                    if secret.expose().is_empty() {
                        p.add(&at.key(field), "must not be empty");
                    }
                }
            }
        }
        if sink.signature == SignatureMode::Hex {
            match &sink.signature_header {
                Some(h) if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_ok() => {}
                Some(h) => p.add(
                    &at.key("signature_header"),
                    format!("\"{h}\" is not a valid HTTP header name"),
                ),
                None => p.add(
                    &at.key("signature"),
                    format!(
                        "sink \"{}\": signature = \"hex\" needs signature_header (e.g. \"X-Signature\")",
                        sink.name
                    ),
                ),
            }
        }
    }
    sinks
}

fn validate_mqtt_sink(sink: &SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    let name = sink.name.clone();
    let tls = match url::Url::parse(&sink.url) {
        Ok(u) if matches!(u.scheme(), "mqtt" | "mqtts") && u.host_str().is_some() => {
            if u.password().is_some() && sink.password.is_some() {
                p.add(
                    &at.key("password"),
                    format!("sink \"{name}\": a password is given both in the URL and as password"),
                );
            }
            u.scheme() == "mqtts"
        }
        Ok(u) => {
            p.add(
                &at.key("url"),
                format!("sink \"{name}\": expected mqtt://host[:port] or mqtts://host[:port], got scheme \"{}\"", u.scheme()),
            );
            return;
        }
        Err(e) => {
            p.add(
                &at.key("url"),
                format!("sink \"{name}\": not a valid URL ({e})"),
            );
            return;
        }
    };
    if let Some(q) = sink.qos.filter(|q| !matches!(q, 1 | 2)) {
        p.add(
            &at.key("qos"),
            format!("must be 1 or 2, got {q}: a QoS 0 publish is never acknowledged, so the outbox could not know it arrived"),
        );
    }
    if let Some(t) = &sink.topic {
        if t.is_empty() || t.contains(['#', '+']) {
            p.add(
                &at.key("topic"),
                "a publish topic must not be empty or contain wildcards (# +)",
            );
        }
    }
    if let Some(n) = sink.connections.filter(|n| !(1..=16).contains(n)) {
        p.add(
            &at.key("connections"),
            format!("must be between 1 and 16, got {n}"),
        );
    }
    if let Some(secret) = &sink.secret {
        if watchpost_contracts::signing::Signer::standard_webhooks(secret.expose()).is_err() {
            let field = if sink.secret_file.is_some() {
                "secret_file"
            } else {
                "secret"
            };
            p.add(
                &at.key(field),
                format!("sink \"{name}\": a standard-webhooks secret is \"whsec_\" followed by base64 (the value is not shown)"),
            );
        }
    }
    let tls_fields = [
        ("ca_file", sink.ca_file.is_some()),
        ("client_cert_file", sink.client_cert_file.is_some()),
        ("client_key_file", sink.client_key_file.is_some()),
    ];
    if !tls {
        for (field, set) in tls_fields {
            if set {
                p.add(
                    &at.key(field),
                    format!("sink \"{name}\": TLS files need an mqtts:// URL"),
                );
            }
        }
        return;
    }
    match (&sink.client_cert_file, &sink.client_key_file) {
        (Some(_), None) => p.add(
            &at.key("client_cert_file"),
            "needs client_key_file (its private key) as well",
        ),
        (None, Some(_)) => p.add(
            &at.key("client_key_file"),
            "needs client_cert_file (its certificate) as well",
        ),
        _ => {}
    }
}

/// Settings every sink kind has.
fn check_limits(sink: &SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    if !(sink.timeout_seconds > 0.0 && sink.timeout_seconds <= 300.0) {
        p.add(
            &at.key("timeout_seconds"),
            format!(
                "must be above 0 and at most 300, got {}",
                sink.timeout_seconds
            ),
        );
    }
    if let Some(c) = sink.concurrency_setting.filter(|c| !(1..=256).contains(c)) {
        p.add(
            &at.key("concurrency"),
            format!("must be between 1 and 256, got {c}"),
        );
    }
}

fn validate_routing(sink: &SinkConfig, at: &FieldPath, rules: &[String], p: &mut Problems<'_>) {
    if let Some(list) = &sink.severities {
        if list.is_empty() {
            p.add(
                &at.key("severities"),
                "an empty list would route nothing here; leave it out for all severities",
            );
        }
    }
    for (j, r) in sink.rules.iter().flatten().enumerate() {
        if !rules.contains(r) {
            p.add(
                &at.key("rules").index(j),
                format!("sink \"{}\": no rule is named \"{r}\"", sink.name),
            );
        }
    }
}

/// Slack, PagerDuty and email: the sinks that talk to people.
fn validate_people_sink(sink: &SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    let name = sink.name.clone();
    let kind = sink.kind.as_str();
    let schemes: &[&str] = if sink.kind == SinkKind::Email {
        &["smtp", "smtps"]
    } else {
        &["http", "https"]
    };
    match url::Url::parse(&sink.url) {
        Ok(u) if schemes.contains(&u.scheme()) && u.host_str().is_some() => {}
        Ok(u) => p.add(
            &at.key("url"),
            format!(
                "sink \"{name}\": a {kind} sink needs a {}:// URL, got scheme \"{}\"",
                schemes.join(":// or "),
                u.scheme()
            ),
        ),
        Err(e) => p.add(
            &at.key("url"),
            format!("sink \"{name}\": not a valid URL ({e})"),
        ),
    }
    if let Some(t) = &sink.template {
        if let Err(e) = crate::template::check(t) {
            p.add(&at.key("template"), e);
        }
    }
    let not_here = |field: &str, set: bool, p: &mut Problems<'_>| {
        if set {
            p.add(
                &at.key(field),
                format!("{kind} sinks do not take this setting"),
            );
        }
    };
    not_here(
        "secret",
        sink.secret.is_some() || sink.secret_file.is_some(),
        p,
    );
    not_here("qos", sink.qos.is_some(), p);
    not_here("topic", sink.topic.is_some(), p);
    not_here("client_cert_file", sink.client_cert_file.is_some(), p);
    not_here("client_key_file", sink.client_key_file.is_some(), p);
    not_here("connections", sink.connections.is_some(), p);
    match sink.kind {
        SinkKind::Pagerduty
            if sink
                .routing_key
                .as_ref()
                .is_none_or(|k| k.expose().trim().is_empty()) =>
        {
            p.add(
                at,
                format!(
                    "sink \"{name}\": a pagerduty sink needs routing_key (the integration key)"
                ),
            );
        }
        SinkKind::Email => {
            let mailbox = |s: &str| s.parse::<lettre::message::Mailbox>().is_ok();
            match &sink.from {
                Some(f) if mailbox(f) => {}
                Some(f) => p.add(&at.key("from"), format!("\"{f}\" is not an email address")),
                None => p.add(at, format!("sink \"{name}\": an email sink needs from")),
            }
            if sink.to.is_empty() {
                p.add(
                    at,
                    format!("sink \"{name}\": an email sink needs at least one address in to"),
                );
            }
            for (j, t) in sink.to.iter().enumerate() {
                if !mailbox(t) {
                    p.add(
                        &at.key("to").index(j),
                        format!("\"{t}\" is not an email address"),
                    );
                }
            }
        }
        _ => {}
    }
    if sink.kind != SinkKind::Email {
        not_here("username", sink.username.is_some(), p);
        not_here("password", sink.password.is_some(), p);
        not_here("ca_file", sink.ca_file.is_some(), p);
    }
}

impl DeliveryConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let d = FieldPath::root("delivery");
        if self.retry_schedule_seconds.is_empty() {
            p.add(&d.key("retry_schedule_seconds"), "must not be empty");
        }
        for (j, s) in self.retry_schedule_seconds.iter().enumerate() {
            p.range(
                &d.key("retry_schedule_seconds").index(j),
                *s,
                0.001,
                86400.0,
            );
        }
        p.range(
            &d.key("max_backoff_seconds"),
            self.max_backoff_seconds,
            0.001,
            86400.0,
        );
        p.range(
            &d.key("max_age_hours"),
            self.max_age_hours,
            0.001,
            24.0 * 365.0,
        );
        p.range(
            &d.key("history_hours"),
            self.history_hours,
            0.0,
            24.0 * 365.0,
        );
        if self.outbox_max_mb == 0 {
            p.add(&d.key("outbox_max_mb"), "must be at least 1");
        }
    }
}
