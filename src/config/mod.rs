//! The config room: TOML text → validated [`Config`].
//!
//! Parsing is serde with `deny_unknown_fields`, so a typo is an error rather than a silently
//! ignored key. Validation then collects *every* problem it can find, each located by the
//! TOML path of the offending field, which [`locate`] turns into a line and column.

mod camera;
mod control;
mod device;
mod locate;
mod model;
mod problems;
mod resolve;
mod rule;
mod schedule;
mod secret;
mod sink;
mod snapshot;
mod validate;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub use camera::{redact_url, CameraConfig, MotionConfig, Transport};
pub use control::{ControlConfig, ControlMqttConfig, WebConfig};
pub use device::{DeviceConfig, HealthConfig};
pub use locate::FieldPath;
pub use model::{parse_labels, ModelConfig, ModelKind};
pub use rule::{Anchor, RuleConfig, Severity, TrackerConfig, ZoneConfig, ZoneRef};
pub use schedule::{ScheduleWindow, Window};
pub use secret::Secret;
pub use sink::{
    DeliveryConfig, IncludeSnapshot, SignatureMode, SinkConfig, SinkKind, PAGERDUTY_EVENTS_URL,
};
pub use snapshot::SnapshotConfig;

/// Where the daemon looks when `--config` is not given.
/// serde's `default` for settings that are on unless turned off.
fn default_true() -> bool {
    true
}

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

impl Config {
    /// Reads, parses and validates a config file; relative paths resolve against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // A named pipe or a device would block or never end; only a regular file is read.
        if let Ok(m) = std::fs::metadata(path) {
            if !m.is_file() {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a regular file (a directory, named pipe or device)",
                    ),
                });
            }
        }
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
        // parse (above) → resolve (every file read, secrets merged, defaults filled) →
        // validate (pure); both report into one collector, so one run shows everything.
        config.resolve_paths(base);
        let mut problems = problems::Problems {
            doc: &doc,
            out: Vec::new(),
        };
        let resolved = resolve::resolve(&mut config, &mut problems);
        validate::validate(&config, &resolved, &mut problems);
        if problems.out.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems.out))
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
