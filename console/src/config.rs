//! `watchpost-console.toml` (a contract, like the gateway's config): unknown keys are errors,
//! and every problem names the file, the line and the field.
//!
//! ```toml
//! [console]
//! data_dir = "/var/lib/watchpost-console"   # SQLite lives here unless [database] url is set
//! replica = "console-1"                     # unique per replica: its MQTT session
//! group = "console"                         # the shared-subscription group of all replicas
//! retention_days = 30
//!
//! [database]
//! url = "postgres://watchpost@db.example/watchpost"
//!
//! [broker]
//! url = "mqtts://broker.example:8883"       # same TLS and credential keys as the gateway's
//! username = "console"                       # [control.mqtt]
//! password = "…"
//! ca_file = "/etc/watchpost-console/ca.pem"
//!
//! [web]
//! listen = "0.0.0.0:9443"
//! ```

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret from the config: never printed, whatever prints the config.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub console: ConsoleSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub broker: BrokerSection,
    #[serde(default)]
    pub web: WebSection,
    #[serde(default)]
    pub alarms: AlarmsSection,
}

/// The fleet's own alarms: raised once when a condition has held for its time, resolved
/// when it clears, delivered store-and-forward to every `[[alarms.sink]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsSection {
    /// A gateway offline (its last will) or stale (no health for 3 intervals) this long.
    #[serde(default = "default_minutes")]
    pub offline_minutes: f64,
    /// A camera not streaming this long.
    #[serde(default = "default_minutes")]
    pub camera_down_minutes: f64,
    /// Dead letters above zero on a gateway, at once.
    #[serde(default = "default_true")]
    pub dead_letters: bool,
    /// A rule (or camera) silent against its normal rate, as the gateway's health says.
    #[serde(default = "default_true")]
    pub silent: bool,
    /// How often conditions are checked.
    #[serde(default = "default_check_seconds")]
    pub check_seconds: f64,
    #[serde(default, rename = "sink")]
    pub sinks: Vec<AlarmSink>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmSinkKind {
    /// Standard Webhooks: signed JSON (`secret = "whsec_…"`).
    Webhook,
    /// A Slack incoming webhook (the URL is the secret).
    Slack,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSink {
    pub name: String,
    pub kind: AlarmSinkKind,
    pub url: Secret,
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
}

fn default_minutes() -> f64 {
    5.0
}
fn default_true() -> bool {
    true
}
fn default_check_seconds() -> f64 {
    10.0
}
fn default_timeout() -> f64 {
    10.0
}

impl Default for AlarmsSection {
    fn default() -> Self {
        Self {
            offline_minutes: default_minutes(),
            camera_down_minutes: default_minutes(),
            dead_letters: true,
            silent: true,
            check_seconds: default_check_seconds(),
            sinks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// This replica's name: its MQTT client id is `watchpost-console-{replica}`, so its
    /// persistent session (and what the broker queued in it) survives a restart.
    #[serde(default = "default_replica")]
    pub replica: String,
    /// The shared-subscription group every replica joins (`$share/{group}/…`).
    #[serde(default = "default_group")]
    pub group: String,
    /// Health history and alerts older than this are removed (hourly).
    #[serde(default = "default_retention_days")]
    pub retention_days: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `postgres://…`; absent = SQLite in `data_dir/console.db`.
    #[serde(default)]
    pub url: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    #[serde(default = "default_broker")]
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// PEM certificate and key; both absent = a self-signed pair in `data_dir/web/`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/watchpost-console")
}
fn default_replica() -> String {
    "console-1".into()
}
fn default_group() -> String {
    "console".into()
}
fn default_retention_days() -> f64 {
    30.0
}
fn default_broker() -> String {
    "mqtt://127.0.0.1:1883".into()
}
fn default_listen() -> String {
    "0.0.0.0:9443".into()
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            replica: default_replica(),
            group: default_group(),
            retention_days: default_retention_days(),
        }
    }
}
impl Default for BrokerSection {
    fn default() -> Self {
        Self {
            url: default_broker(),
            username: None,
            password: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}
impl Default for WebSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            cert_file: None,
            key_file: None,
        }
    }
}

/// One thing wrong with a config, where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    /// `section.key`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}: {}", self.file, l, self.field, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.field, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl Config {
    /// Reads and checks a file; every problem at once.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks `text` (named `file` in the problems).
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start));
            ConfigError::Invalid(vec![Problem {
                file: file.to_string(),
                line,
                field: "toml".into(),
                message: e.message().to_string(),
            }])
        })?;
        let problems = cfg.problems(text, file);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Checks the values (pure: no file is opened but the TLS files the broker names).
    pub fn problems(&self, text: &str, file: &str) -> Vec<Problem> {
        let doc = toml_edit::ImDocument::parse(text).ok();
        let mut out = Vec::new();
        let mut add = |section: &str, key: &str, message: String| {
            let line = doc.as_ref().and_then(|d| {
                let span = d.get(section)?.get(key)?.span()?;
                Some(line_at(text, span.start))
            });
            out.push(Problem {
                file: file.to_string(),
                line,
                field: format!("{section}.{key}"),
                message,
            });
        };
        let name_ok = |s: &str| {
            (1..=64).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !name_ok(&self.console.replica) {
            add(
                "console",
                "replica",
                "1 to 64 letters, digits, '-' or '_' (it names this replica's MQTT session)".into(),
            );
        }
        if !name_ok(&self.console.group) {
            add(
                "console",
                "group",
                "1 to 64 letters, digits, '-' or '_' (MQTT shared-subscription group)".into(),
            );
        }
        let r = self.console.retention_days;
        if !(r > 0.0 && r <= 3650.0) {
            add(
                "console",
                "retention_days",
                format!("must be more than 0 and at most 3650, got {r}"),
            );
        }
        if let Some(url) = &self.database.url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                add(
                    "database",
                    "url",
                    "expected postgres://user@host[:port]/database (absent = SQLite in data_dir)"
                        .into(),
                );
            } else if let Err(e) = u.parse::<postgres::Config>() {
                // The parser's message never repeats the password.
                add("database", "url", format!("not a PostgreSQL URL: {e}"));
            }
        }
        let b = &self.broker;
        if !(b.url.starts_with("mqtt://") || b.url.starts_with("mqtts://")) {
            add(
                "broker",
                "url",
                format!(
                    "expected mqtt://host[:port] or mqtts://host[:port], got \"{}\"",
                    redact_url(&b.url)
                ),
            );
        } else {
            match url::Url::parse(&b.url) {
                Err(e) => add("broker", "url", format!("not a valid URL: {e}")),
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    add("broker", "url", "names no broker host".into())
                }
                Ok(_) => {
                    if let Err(p) = watchpost_contracts::tls::tls_config_for(
                        &b.url,
                        b.ca_file.as_deref(),
                        b.client_cert_file.as_deref(),
                        b.client_key_file.as_deref(),
                    ) {
                        add("broker", p.field, p.message);
                    }
                }
            }
        }
        if self.web.listen.parse::<std::net::SocketAddr>().is_err() {
            add(
                "web",
                "listen",
                format!("expected ADDRESS:PORT, got \"{}\"", self.web.listen),
            );
        }
        if self.web.cert_file.is_some() != self.web.key_file.is_some() {
            add(
                "web",
                if self.web.cert_file.is_some() {
                    "key_file"
                } else {
                    "cert_file"
                },
                "give both cert_file and key_file, or neither (a self-signed pair is made)".into(),
            );
        }
        let a = &self.alarms;
        for (key, v) in [
            ("offline_minutes", a.offline_minutes),
            ("camera_down_minutes", a.camera_down_minutes),
        ] {
            if !(0.0..=10_080.0).contains(&v) {
                add(
                    "alarms",
                    key,
                    format!("must be 0 to 10080 (a week), got {v}"),
                );
            }
        }
        if !(a.check_seconds >= 0.5 && a.check_seconds <= 3600.0) {
            add(
                "alarms",
                "check_seconds",
                format!("must be 0.5 to 3600, got {}", a.check_seconds),
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, sink) in a.sinks.iter().enumerate() {
            let at = |key: &str| {
                let line = doc.as_ref().and_then(|d| {
                    let span = d
                        .get("alarms")?
                        .get("sink")?
                        .as_array_of_tables()?
                        .get(i)?
                        .get(key)?
                        .span()?;
                    Some(line_at(text, span.start))
                });
                (line, format!("alarms.sink[{i}].{key}"))
            };
            let mut push = |key: &str, message: String| {
                let (line, field) = at(key);
                out.push(Problem {
                    file: file.to_string(),
                    line,
                    field,
                    message,
                });
            };
            if !names.insert(sink.name.clone()) {
                push(
                    "name",
                    format!("\"{}\" is used by another alarm sink", sink.name),
                );
            }
            let u = sink.url.expose();
            if !(u.starts_with("https://") || u.starts_with("http://"))
                || url::Url::parse(u).is_err()
            {
                push(
                    "url",
                    "expected an http(s):// URL (not shown: it may hold a secret)".into(),
                );
            }
            match (sink.kind, &sink.secret) {
                (AlarmSinkKind::Webhook, None) => push(
                    "secret",
                    "a webhook alarm sink signs with a Standard Webhooks secret (whsec_…)".into(),
                ),
                (AlarmSinkKind::Webhook, Some(s))
                    if watchpost_contracts::signing::Signer::standard_webhooks(s.expose())
                        .is_err() =>
                {
                    push(
                        "secret",
                        "not a whsec_… secret (the value is not shown)".into(),
                    )
                }
                _ => {}
            }
            if !(sink.timeout_seconds > 0.0 && sink.timeout_seconds <= 300.0) {
                push(
                    "timeout_seconds",
                    "must be more than 0 and at most 300".into(),
                );
            }
        }
        out
    }
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// A URL with any password replaced, for messages.
pub fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("(secret)"));
            parsed.to_string()
        }
        _ => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file_content() {
        let c = Config::parse("", "c.toml").unwrap();
        assert_eq!(c.web.listen, "0.0.0.0:9443");
        assert_eq!(c.console.group, "console");
        assert!(c.database.url.is_none());
    }

    #[test]
    fn every_problem_is_named_with_its_line() {
        let text = "[console]\nreplica = \"a b\"\nretention_days = 0\n\n[broker]\nurl = \"http://x\"\n\n[web]\nlisten = \"nowhere\"\n\n[database]\nurl = \"mysql://root:hunter2@db/x\"\n";
        let Err(ConfigError::Invalid(p)) = Config::parse(text, "c.toml") else {
            panic!("accepted")
        };
        let lines: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let joined = lines.join("\n");
        assert!(joined.contains("c.toml:2: console.replica"), "{joined}");
        assert!(
            joined.contains("c.toml:3: console.retention_days"),
            "{joined}"
        );
        assert!(joined.contains("c.toml:6: broker.url"), "{joined}");
        assert!(joined.contains("c.toml:9: web.listen"), "{joined}");
        assert!(joined.contains("c.toml:12: database.url"), "{joined}");
        assert!(!joined.contains("hunter2"), "a password leaked: {joined}");
        assert_eq!(p.len(), 5, "{joined}");
    }

    #[test]
    fn unknown_keys_are_refused_where_they_are() {
        let Err(ConfigError::Invalid(p)) =
            Config::parse("[web]\nlisten = \"0.0.0.0:1\"\nport = 3\n", "c.toml")
        else {
            panic!("accepted")
        };
        assert_eq!(p[0].line, Some(3), "{}", p[0]);
        assert!(p[0].message.contains("unknown field `port`"), "{}", p[0]);
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::parse(
            "[broker]\nurl = \"mqtt://h\"\npassword = \"hunter2\"\n[database]\nurl = \"postgres://u:hunter2@h/d\"\n",
            "c.toml",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
