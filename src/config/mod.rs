//! The config room: TOML text → validated [`Config`].
//!
//! Parsing is serde with `deny_unknown_fields`, so a typo is an error rather than a silently
//! ignored key. Validation then collects *every* problem it can find, each located by the
//! TOML path of the offending field, which [`locate`] turns into a line and column.

mod locate;
mod schedule;
mod validate;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub use locate::FieldPath;
pub use schedule::{ScheduleWindow, Window};

/// Where the daemon looks when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/watchpost/watchpost.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", Problem::list(.0))]
    Invalid(Vec<Problem>),
}

/// One thing wrong with a config file, with its place in the file.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[schema(value_type = String)]
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// TOML path of the field, e.g. `rule[1].min_confidence` (empty for syntax errors).
    pub field: String,
    pub message: String,
}

impl Problem {
    fn list(problems: &[Problem]) -> String {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        lines.join("\n")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// A string that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub device: DeviceConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default, rename = "camera")]
    pub cameras: Vec<CameraConfig>,
    #[serde(default, rename = "zone")]
    pub zones: Vec<ZoneConfig>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
    #[serde(default, rename = "sink")]
    pub sinks: Vec<SinkConfig>,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub tracker: TrackerConfig,
    #[serde(default)]
    pub snapshots: SnapshotConfig,
    #[serde(default)]
    pub web: Option<WebConfig>,
    #[serde(default)]
    pub control: Option<ControlConfig>,
    #[serde(default)]
    pub health: HealthConfig,
}

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

fn default_device_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "watchpost".to_string())
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/watchpost")
}

/// `model.kind` in the config. What each family means (input layout, decoding) is the
/// detector's business (`detect::family`); the config only names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Recognised from the ONNX input and output shapes.
    #[default]
    Auto,
    /// NanoDet (GFL head): NCHW BGR mean/std input, per-stride scores and distance bins.
    Nanodet,
    /// SSD (TF Object Detection API export): NHWC RGB in [-1, 1], decoded boxes + 90 scores.
    Ssd,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Auto => "auto",
            ModelKind::Nanodet => "nanodet",
            ModelKind::Ssd => "ssd",
        }
    }
}

/// The labels file (`model.labels`): one class name a line, in the model's output order. Read
/// here for the config check (rules name labels) and by the detector, with the same rules.
pub fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    if labels.is_empty() || labels.iter().any(|l| l.is_empty()) {
        return Err("expected one non-empty label per line".into());
    }
    Ok(labels)
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default = "default_model_path")]
    pub path: PathBuf,
    #[serde(default = "default_labels_path")]
    pub labels: PathBuf,
    /// `auto` (from the ONNX shapes), `nanodet` or `ssd`.
    #[serde(default)]
    pub kind: ModelKind,
    /// `None` = the model family's own size (NanoDet 416, SSD 300).
    #[serde(default)]
    pub input_size: Option<u32>,
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Candidates below this score are dropped before NMS; `None` = the family's calibration
    /// point (NanoDet 0.35, SSD 0.5). Rules' `min_confidence` filters further.
    #[serde(default)]
    pub score_threshold: Option<f32>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: default_model_path(),
            labels: default_labels_path(),
            kind: Default::default(),
            input_size: None,
            threads: default_threads(),
            score_threshold: None,
        }
    }
}

/// Chosen by scripts/eval-models (docs/models.md): fewer false person/vehicle labels, half
/// the CPU of NanoDet-g.
fn default_model_path() -> PathBuf {
    PathBuf::from("models/ssdlite-mnv2-300.onnx")
}
fn default_labels_path() -> PathBuf {
    PathBuf::from("models/coco80.txt")
}
fn default_threads() -> usize {
    2
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
    Auto,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub name: String,
    /// May carry `user:pass@`; use [`CameraConfig::redacted_url`] anywhere it could be seen.
    pub url: Secret,
    #[serde(default = "default_detect_fps")]
    pub detect_fps: f64,
    #[serde(default)]
    pub transport: Transport,
    /// Decode only keyframes (delta frames are dropped before the decoder): for low
    /// `detect_fps` on many cameras, at the cost of seeing one frame per GOP.
    #[serde(default)]
    pub keyframes_only: bool,
    /// A file holding `user:password` for the camera, so the password need not sit in the
    /// config (which a status page or a support bundle may show); merged into `url` at load.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// `auto` (decodebin's ranks: a hardware decoder such as v4l2 or NVIDIA's wins where
    /// installed), `software` (never a hardware decoder), or one decoder element by name.
    #[serde(default = "default_decoder")]
    pub decoder: String,
    /// Skip the model on frames where nothing moved (`[camera.motion]`); absent = off.
    #[serde(default)]
    pub motion: Option<MotionConfig>,
    /// `false` keeps the camera in the file but not streaming (the page's disable switch).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// `[camera.motion]`: the motion gate in front of the model (see `detect::MotionGate`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    pub enabled: bool,
    /// Grey levels (0–255) a cell's mean must move by to count as changed. 16, not 12: at 12
    /// the codec noise of an H.264 keyframe on a static low-bitrate stream counted as motion
    /// now and then (tests/motion_gate.rs); at 16 it did not in repeated runs.
    pub threshold: u8,
    /// The smallest moving blob, as a fraction of the picture (0.002 ≈ a person at 60 m).
    pub min_area: f64,
    /// The model runs at least this often, so objects that stand still are seen.
    pub max_skip_seconds: f64,
    /// Normalised polygons whose movement never counts (trees, a road, a clock).
    pub masks: Vec<Vec<[f64; 2]>>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 16,
            min_area: 0.002,
            max_skip_seconds: 5.0,
            masks: Vec::new(),
        }
    }
}

fn default_decoder() -> String {
    "auto".to_string()
}

impl CameraConfig {
    /// The URL with its password replaced by `***`, safe for logs and status.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose())
    }
}

impl fmt::Debug for CameraConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraConfig")
            .field("name", &self.name)
            .field("url", &self.redacted_url())
            .field("detect_fps", &self.detect_fps)
            .field("transport", &self.transport)
            .finish()
    }
}

/// Replaces the password of a URL (and, if unparsable, everything before `@`) with `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => match raw.rfind('@') {
            Some(at) => format!("***{}", &raw[at..]),
            None => raw.to_string(),
        },
    }
}

fn default_detect_fps() -> f64 {
    5.0
}

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

fn default_max_area() -> f64 {
    1.0
}
fn default_true() -> bool {
    true
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

fn default_inertia() -> u32 {
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

fn default_min_hits() -> u32 {
    2
}
fn default_max_age() -> u32 {
    5
}
fn default_iou() -> f32 {
    0.3
}
fn default_score_window() -> usize {
    5
}

/// JPEG evidence of each alert, kept in `data_dir/snapshots` within these bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_snapshot_count")]
    pub max_count: usize,
    #[serde(default = "default_snapshot_mb")]
    pub max_mb: f64,
    #[serde(default = "default_quality")]
    pub quality: u8,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_count: default_snapshot_count(),
            max_mb: default_snapshot_mb(),
            quality: default_quality(),
        }
    }
}

fn default_snapshot_count() -> usize {
    1000
}
fn default_snapshot_mb() -> f64 {
    200.0
}
fn default_quality() -> u8 {
    80
}

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

fn default_min_confidence() -> f32 {
    0.5
}
fn default_min_count() -> u32 {
    1
}
fn default_cooldown() -> f64 {
    60.0
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

fn default_session_expiry() -> u32 {
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

fn default_timeout() -> f64 {
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

fn default_retry_schedule() -> Vec<f64> {
    vec![1.0, 2.0, 4.0, 8.0, 16.0]
}
fn default_max_backoff() -> f64 {
    300.0
}
fn default_max_age_hours() -> f64 {
    168.0
}
fn default_history_hours() -> f64 {
    72.0
}
fn default_outbox_max_mb() -> u64 {
    512
}

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

fn default_health_interval() -> f64 {
    30.0
}

impl Config {
    /// Reads, parses and validates a config file; relative paths resolve against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, path, &base)
    }

    /// Parses config text; `file` names it in errors and `base` anchors relative paths.
    pub fn from_toml(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let doc = locate::Located::new(text, file);
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| doc.line_col(s.start)).unwrap_or((1, 1));
            ConfigError::Invalid(vec![Problem {
                file: file.to_path_buf(),
                line,
                column,
                field: String::new(),
                message: e.message().trim().to_string(),
            }])
        })?;
        config.resolve_paths(base);
        let problems = validate::validate(&mut config, &doc);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        for cam in &mut self.cameras {
            if let Some(f) = &cam.credentials_file {
                cam.credentials_file = Some(resolve(base, f));
            }
        }
        self.device.data_dir = resolve(base, &self.device.data_dir);
        if let Some(web) = &mut self.web {
            for f in [&mut web.cert_file, &mut web.key_file] {
                if let Some(path) = f.as_mut() {
                    *path = resolve(base, path);
                }
            }
        }
        if let Some(m) = self.control.as_mut().and_then(|c| c.mqtt.as_mut()) {
            for f in [
                &mut m.ca_file,
                &mut m.client_cert_file,
                &mut m.client_key_file,
            ] {
                if let Some(path) = f.as_mut() {
                    *path = resolve(base, path);
                }
            }
        }
        self.model.path = resolve(base, &self.model.path);
        self.model.labels = resolve(base, &self.model.labels);
        for sink in &mut self.sinks {
            for f in [
                &mut sink.secret_file,
                &mut sink.ca_file,
                &mut sink.client_cert_file,
                &mut sink.client_key_file,
            ] {
                if let Some(path) = f.as_mut() {
                    *path = resolve(base, path);
                }
            }
        }
    }

    /// The sinks an alert of `rule` goes to: the rule's own `sinks` list when it has one
    /// (explicit selection wins over the sinks' routing), else every sink whose
    /// `min_severity` / `severities` / `rules` accept it.
    /// Enabled sinks only: a disabled sink gets no new rows.
    pub fn sinks_for(&self, rule: &RuleConfig) -> Vec<String> {
        let enabled = |name: &str| self.sinks.iter().any(|s| s.name == name && s.enabled);
        match &rule.sinks {
            Some(list) => list.iter().filter(|n| enabled(n)).cloned().collect(),
            None => self
                .sinks
                .iter()
                .filter(|s| s.enabled && s.accepts(&rule.name, rule.severity))
                .map(|s| s.name.clone())
                .collect(),
        }
    }

    pub fn outbox_path(&self) -> PathBuf {
        self.device.data_dir.join("outbox.db")
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.device.data_dir.join("snapshots")
    }
}

/// Resolves `p` against the config folder; a `models/...` path that is not there is also
/// looked up beside the installed binary (`<exe>/..`, `/usr/share/watchpost`, or the
/// source tree when run from `target/`), so a stock config works wherever it is copied.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let local = base.join(p);
    if local.exists() || !p.starts_with("models") {
        return local;
    }
    install_roots()
        .into_iter()
        .map(|root| root.join(p))
        .find(|c| c.exists())
        .unwrap_or(local)
}

fn install_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.push(dir.clone());
        roots.push(dir.join("../share/watchpost"));
        // target/{debug,release}[/deps] inside a source checkout.
        roots.push(dir.join("../.."));
        roots.push(dir.join("../../.."));
    }
    roots.push(PathBuf::from("/usr/share/watchpost"));
    roots
}
