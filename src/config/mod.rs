//! The config room: TOML text → validated [`Config`].
//!
//! Parsing is serde with `deny_unknown_fields`, so a typo is an error rather than a silently
//! ignored key. Validation then collects *every* problem it can find, each located by the
//! TOML path of the offending field, which [`locate`] turns into a line and column.

mod camera;
mod control;
mod device;
mod line;
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
pub use line::{InSide, LineConfig};
pub use locate::FieldPath;
pub use model::{parse_labels, ModelConfig, ModelKind};
pub use rule::{
    Anchor, CrossingDirection, RuleConfig, Severity, TrackerConfig, ZoneConfig, ZoneRef,
};
pub use schedule::{ScheduleWindow, TimeOfDay, Window};
pub use secret::Secret;
pub use sink::{
    DeliveryConfig, EventKind, IncludeSnapshot, SignatureMode, SinkConfig, SinkKind,
    PAGERDUTY_EVENTS_URL,
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
    #[serde(default, rename = "line")]
    pub lines: Vec<LineConfig>,
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

/// How many refused values one run reports before it stops looking.
const MAX_REFUSED: usize = 50;

/// Parses `text` into a [`Config`], reporting every value serde refuses (a wrong type, an
/// unknown key or variant, an overflow) with its field path, not only the first: each refused
/// entry is taken out of a copy of the document and the copy parsed again, so one typo never
/// hides the rest of the file. Returns the config parsed without them, and the refusals.
fn parse_collecting(
    text: &str,
    doc: &locate::Located<'_>,
) -> Result<(Config, Vec<Problem>), ConfigError> {
    let at = |line: usize, column: usize, field: String, message: &str| Problem {
        file: doc.file.clone(),
        line,
        column,
        field,
        message: message.trim().to_string(),
    };
    let syntax = |e: &toml::de::Error| {
        let (line, column) = e.span().map(|s| doc.line_col(s.start)).unwrap_or((1, 1));
        ConfigError::Invalid(vec![at(line, column, String::new(), e.message())])
    };
    let first = match toml::from_str::<Config>(text) {
        Ok(c) => return Ok((c, Vec::new())),
        Err(e) => e,
    };
    // Not even TOML: nothing past the syntax error can be read.
    let Ok(mut copy) = text.parse::<toml_edit::DocumentMut>() else {
        return Err(syntax(&first));
    };
    locate::make_arrays_contiguous(&mut copy);
    let mut err = match toml::from_str::<Config>(&copy.to_string()) {
        Ok(c) => return Ok((c, Vec::new())),
        Err(e) => e,
    };
    let mut refused: Vec<Problem> = Vec::new();
    for _ in 0..MAX_REFUSED {
        let current = copy.to_string();
        let here = locate::Located::new(&current, &doc.file);
        let path = err.span().and_then(|s| here.path_at(s.start));
        let message = err.message();
        let Some(path) = path else {
            // No entry to point at (e.g. a missing field of the whole file): report it at
            // its place in the original when this is the first error, and stop.
            if refused.is_empty() {
                return Err(syntax(&err));
            }
            break;
        };
        let field = path.to_string();
        // A required field that was itself refused is then missing: already reported.
        let derived = message.starts_with("missing field")
            && refused.iter().any(|r| r.field.starts_with(&field));
        if !derived {
            let (line, column) = doc.find(&path);
            refused.push(at(line, column, field, message));
        }
        if derived || !locate::remove_path(&mut copy, &path) {
            break;
        }
        match toml::from_str::<Config>(&copy.to_string()) {
            Ok(c) => return Ok((c, refused)),
            Err(e) => err = e,
        }
    }
    Err(ConfigError::Invalid(refused))
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
        let (mut config, refused) = parse_collecting(text, &doc)?;
        // parse (above) → resolve (every file read, secrets merged, defaults filled) →
        // validate (pure); both report into one collector, so one run shows everything.
        config.resolve_paths(base);
        let mut problems = problems::Problems {
            doc: &doc,
            out: Vec::new(),
        };
        let resolved = resolve::resolve(&mut config, &mut problems);
        validate::validate(&config, &resolved, &mut problems);
        // What serde refused first, then what the checks found in the rest of the file (not
        // at a refused field, whose default stood in for it).
        problems
            .out
            .retain(|p| !refused.iter().any(|r| p.field.starts_with(&r.field)));
        let mut all = refused;
        all.append(&mut problems.out);
        problems.out = all;
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
        self.sinks_for_event(rule, EventKind::AlertFired)
    }

    /// The sinks a rule's events of `kind` go to: its own list or the sinks' routing, and
    /// only sinks whose `events` take that kind.
    pub fn sinks_for_event(&self, rule: &RuleConfig, kind: EventKind) -> Vec<String> {
        let enabled = |name: &str| {
            self.sinks
                .iter()
                .any(|s| s.name == name && s.enabled && s.wants(kind))
        };
        match &rule.sinks {
            Some(list) => list.iter().filter(|n| enabled(n)).cloned().collect(),
            None => self
                .sinks
                .iter()
                .filter(|s| s.enabled && s.wants(kind) && s.accepts(&rule.name, rule.severity))
                .map(|s| s.name.clone())
                .collect(),
        }
    }

    /// The sinks a line's `count.report` goes to: those that list it in `events`, and
    /// those taking every kind whose rule or severity routing does not exclude it (a report
    /// is `info`, of no rule).
    pub fn sinks_for_reports(&self) -> Vec<String> {
        self.sinks
            .iter()
            .filter(|s| s.enabled && s.wants(EventKind::CountReport))
            .filter(|s| s.events.is_some() || (s.rules.is_none() && s.accepts("", Severity::Info)))
            .map(|s| s.name.clone())
            .collect()
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
