//! Live configuration: one place that takes a whole new config file, checks it exactly as
//! `watchpost check-config` does, writes it (temp file, fsync, rename; the previous file kept
//! beside it as `*.prev` for a one-step rollback) and applies it to the running daemon.
//!
//! Applied live: cameras and sinks (each added, removed, restarted or left alone — a camera
//! whose settings did not change keeps its stream), rules, zones and the tracker (the rule engine is
//! rebuilt between two frames), and `[model]` (loaded beside the running one). Everything else
//! (`[device]`, `[delivery]`, `[snapshots]`, `[web]`, `[control]`) is written but takes
//! effect at the next start, and the answer says so by section. Every applied config gets the
//! next version number (kept in `data_dir/config.version`).

use crate::config::{Config, ConfigError};
use crate::deliver::SinkSet;
use crate::detect::DetectorSpec;
use crate::reconcile::Change;
use crate::switch::{ModelSwitch, RulesSwitch};
use crate::video::Cameras;
use parking_lot::Mutex;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The answer to an applied config.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Applied {
    pub version: u64,
    /// Sections now in effect.
    pub live: Vec<String>,
    /// Sections written that take effect at the next start.
    pub restart_needed: Vec<String>,
    /// `[name, "added" | "restarted" | "unchanged" | "removed"]` per camera.
    #[schema(value_type = Vec<Vec<String>>)]
    pub cameras: Vec<(String, Change)>,
    /// The same per sink (only when `[[sink]]` changed).
    #[schema(value_type = Vec<Vec<String>>)]
    pub sinks: Vec<(String, Change)>,
}

/// Why a config was not applied; nothing was written or changed.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// `check-config`'s problems: file, line, column, field, message.
    #[error("invalid config ({} problems)", .0.len())]
    Invalid(Vec<crate::config::Problem>),
    /// The request itself is wrong (unknown section or item), not the config.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken, or the item is in use.
    #[error("{0}")]
    Conflict(String),
    /// The edit started from an older version than the running one.
    #[error("the config changed since it was read (now version {current}, the edit started from {started}); load it again and redo the change")]
    Stale { current: u64, started: u64 },
    #[error("{0}")]
    Other(String),
}

struct State {
    text: String,
    version: u64,
}

pub struct LiveConfig {
    path: PathBuf,
    version_file: PathBuf,
    state: Mutex<State>,
    /// Serialises read-modify-apply edits.
    editing: Mutex<()>,
    cameras: Arc<Cameras>,
    sinks: Arc<SinkSet>,
    rules: RulesSwitch,
    model: ModelSwitch,
}

/// The sections that can change while running, by top-level key.
const LIVE: [&str; 7] = ["camera", "rule", "zone", "line", "sink", "tracker", "model"];

impl LiveConfig {
    pub fn open(
        path: &Path,
        data_dir: &Path,
        cameras: Arc<Cameras>,
        sinks: Arc<SinkSet>,
        rules: RulesSwitch,
        model: ModelSwitch,
    ) -> Result<Self, Refused> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Refused::Other(format!("{}: {e}", path.display())))?;
        let version_file = data_dir.join("config.version");
        let version = std::fs::read_to_string(&version_file)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1);
        Ok(Self {
            path: path.to_path_buf(),
            version_file,
            state: Mutex::new(State { text, version }),
            editing: Mutex::new(()),
            cameras,
            sinks,
            rules,
            model,
        })
    }

    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// The control keys fleet commands may be signed with now: `[control.mqtt] control_key`
    /// (or the file `control_key_file` names) and, during a rotation, `control_key_previous`.
    pub fn control_keys(&self) -> Vec<Vec<u8>> {
        let text = self.lock().text.clone();
        let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
            return Vec::new();
        };
        let m = doc.get("control").and_then(|c| c.get("mqtt"));
        let get = |k: &str| {
            m.and_then(|m| m.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let current = get("control_key").or_else(|| {
            get("control_key_file")
                .and_then(|f| std::fs::read_to_string(f).ok())
                .map(|k| k.trim().to_string())
        });
        current
            .into_iter()
            .chain(get("control_key_previous"))
            .filter(|k| k.len() >= 16)
            .map(String::into_bytes)
            .collect()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The running config as TOML with every secret replaced by `"(set)"` and credentials
    /// taken out of URLs (config/state, the web page).
    pub fn redacted(&self) -> (u64, String) {
        let s = self.lock();
        (s.version, redact(&s.text))
    }

    /// Checks, writes and applies `text`. Blocking (cameras stop and start): call it from a
    /// blocking task.
    pub fn apply(&self, text: &str) -> Result<Applied, Refused> {
        let base = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let new = match Config::from_toml(text, &self.path, &base) {
            Ok(c) => c,
            Err(ConfigError::Invalid(problems)) => return Err(Refused::Invalid(problems)),
            Err(e) => return Err(Refused::Other(e.to_string())),
        };
        let mut state = self.lock();
        let old: toml::Table = toml::from_str(&state.text).unwrap_or_default();
        let fresh: toml::Table = toml::from_str(text).map_err(|e| Refused::Other(e.to_string()))?;
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(fresh.keys()).collect();
        let changed: Vec<String> = keys
            .into_iter()
            .filter(|k| old.get(*k) != fresh.get(*k))
            .cloned()
            .collect();
        // Sinks first: one that cannot be built (a CA file unreadable now) refuses the whole
        // config before anything is written or changed.
        let sinks = if changed.iter().any(|k| k == "sink") {
            self.sinks
                .apply(&new.sinks)
                .map_err(|e| Refused::Other(e.to_string()))?
        } else {
            Vec::new()
        };
        write_atomically(&self.path, &state.text, text).map_err(Refused::Other)?;
        let version = state.version + 1;
        if let Err(e) = write_atomically(&self.version_file, "", &format!("{version}\n")) {
            tracing::warn!(error = %e, "config version not saved");
        }
        state.text = text.to_string();
        state.version = version;
        drop(state);

        let cameras = self
            .cameras
            .apply(&new.cameras)
            .map_err(|e| Refused::Other(format!("written, but cameras not applied: {e}")))?;
        let touches = |k: &str| changed.iter().any(|c| c == k);
        if ["camera", "rule", "zone", "line", "sink", "tracker"]
            .iter()
            .any(|k| touches(k))
        {
            self.rules.request(new.clone());
        }
        if touches("model") {
            self.model.request(DetectorSpec::from_config(&new.model));
        }
        let (live, restart_needed): (Vec<String>, Vec<String>) = changed
            .into_iter()
            .partition(|k| LIVE.contains(&k.as_str()));
        tracing::info!(version, live = ?live, restart_needed = ?restart_needed, "config applied");
        Ok(Applied {
            version,
            live,
            restart_needed,
            cameras,
            sinks,
        })
    }

    /// Applies the running text changed by `edit` (an item put or deleted, a partial merged),
    /// one edit at a time so two clients editing at once cannot undo each other.
    pub fn edit(
        &self,
        edit: impl FnOnce(&str) -> Result<String, super::edit::EditError>,
    ) -> Result<Applied, Refused> {
        self.edit_from(None, edit)
    }

    /// As [`LiveConfig::edit`], refused (nothing changed) when `started` is given and is not
    /// the running version: two people editing at once never silently undo each other.
    pub fn edit_from(
        &self,
        started: Option<u64>,
        edit: impl FnOnce(&str) -> Result<String, super::edit::EditError>,
    ) -> Result<Applied, Refused> {
        use super::edit::EditError;
        let _one = self.editing.lock();
        let (current, version) = {
            let s = self.lock();
            (s.text.clone(), s.version)
        };
        if let Some(started) = started.filter(|v| *v != version) {
            return Err(Refused::Stale {
                current: version,
                started,
            });
        }
        let text = edit(&current).map_err(|e| match e {
            e @ (EditError::Missing(..) | EditError::Section(_)) => {
                Refused::NotFound(e.to_string())
            }
            e @ (EditError::Exists(..) | EditError::InUse(_)) => Refused::Conflict(e.to_string()),
            e => Refused::Other(e.to_string()),
        })?;
        self.apply(&text)
    }

    /// A whole file from a client that saw the redacted copy: secrets shown as "(set)" are
    /// the running ones.
    pub fn replace(&self, text: &str) -> Result<Applied, Refused> {
        self.edit(|current| {
            let mut doc = text
                .parse::<toml_edit::DocumentMut>()
                .map_err(|e| super::edit::EditError::Body(format!("not TOML: {e}")))?;
            // Valid (all defaults) but it would stop every camera and sink: a cleared text box,
            // not an intent. Items are removed one by one.
            if doc.as_table().is_empty() {
                return Err(super::edit::EditError::Body(
                    "the new config is empty; nothing changed (remove items one by one)".into(),
                ));
            }
            let old = current
                .parse::<toml_edit::DocumentMut>()
                .map_err(|e| super::edit::EditError::Body(e.to_string()))?;
            super::edit::restore_secrets(&mut doc, &old)?;
            Ok(doc.to_string())
        })
    }

    /// The items of one section (camera, rule, zone, sink), secrets redacted.
    pub fn items(&self, section: &str) -> Result<Vec<serde_json::Value>, Refused> {
        super::edit::items(&self.redacted().1, section).map_err(|e| match e {
            e @ super::edit::EditError::Section(_) => Refused::NotFound(e.to_string()),
            e => Refused::Other(e.to_string()),
        })
    }

    /// Re-reads the file from disk (an operator edited it and sent SIGHUP) and applies it
    /// through the same checks and steps as the page and `config/set`.
    pub fn reload(&self) -> Result<Applied, Refused> {
        let _one = self.editing.lock();
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| Refused::Other(format!("{}: {e}", self.path.display())))?;
        if text == self.lock().text {
            return Ok(Applied {
                version: self.version(),
                live: Vec::new(),
                restart_needed: Vec::new(),
                cameras: Vec::new(),
                sinks: Vec::new(),
            });
        }
        self.apply(&text)
    }

    /// Applies the config that was in effect before the last one (one step back).
    pub fn rollback(&self) -> Result<Applied, Refused> {
        let prev = std::fs::read_to_string(prev_path(&self.path))
            .map_err(|e| Refused::Other(format!("no previous config to roll back to ({e})")))?;
        self.apply(&prev)
    }
}

/// SIGHUP → [`LiveConfig::reload`]: the whole file applied live, or refused with every
/// problem logged while the running config stays in effect.
pub fn reload_on_sighup(live: Arc<LiveConfig>, cancel: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                got = hup.recv() => if got.is_none() { return },
            }
            let l = live.clone();
            match tokio::task::spawn_blocking(move || l.reload()).await {
                Ok(Ok(a)) if a.live.is_empty() && a.restart_needed.is_empty() => {
                    tracing::info!("SIGHUP: config file unchanged")
                }
                Ok(Ok(a)) => tracing::info!(
                    version = a.version,
                    live = ?a.live,
                    restart_needed = ?a.restart_needed,
                    "SIGHUP: config file applied"
                ),
                Ok(Err(Refused::Invalid(problems))) => {
                    let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                    tracing::error!(
                        "SIGHUP: reload refused, keeping the running config:\n{}",
                        list.join("\n")
                    )
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "SIGHUP: reload refused, keeping the running config")
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed"),
            }
        }
    });
}

fn prev_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".prev");
    PathBuf::from(p)
}

/// `new` into `path` by temp file + fsync + rename (+ fsync of the folder), after keeping
/// `old` as `path.prev`: a power cut leaves either the old or the new file, whole.
fn write_atomically(path: &Path, old: &str, new: &str) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    if !old.is_empty() {
        let mut f = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        f.write_all(old.as_bytes()).map_err(err)?;
        f.as_file().sync_all().map_err(err)?;
        f.persist(prev_path(path)).map_err(|e| err(e.error))?;
    }
    let mut f = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    f.write_all(new.as_bytes()).map_err(err)?;
    f.as_file().sync_all().map_err(err)?;
    f.persist(path).map_err(|e| err(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)
}

/// Keys whose values are secrets wherever they appear.
pub(crate) const SECRET_KEYS: [&str; 5] = [
    "secret",
    "password",
    "control_key",
    "control_key_previous",
    "routing_key",
];

/// The TOML with secrets replaced and URL credentials removed; comments and layout kept.
pub fn redact(text: &str) -> String {
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return String::from("# (unreadable config)\n");
    };
    fn walk(item: &mut toml_edit::Item) {
        match item {
            toml_edit::Item::Table(t) => {
                for (k, v) in t.iter_mut() {
                    visit(k.get(), v);
                }
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for t in a.iter_mut() {
                    for (k, v) in t.iter_mut() {
                        visit(k.get(), v);
                    }
                }
            }
            _ => {}
        }
    }
    fn visit(key: &str, v: &mut toml_edit::Item) {
        if let Some(s) = v.as_str() {
            let replacement = if SECRET_KEYS.contains(&key) {
                Some("(set)".to_string())
            } else if key == "url" {
                Some(crate::config::redact_url(s))
            } else {
                None
            };
            if let (Some(r), Some(value)) = (replacement, v.as_value_mut()) {
                // Keep the operator's comment after the value.
                let decor = value.decor().clone();
                *value = toml_edit::Value::from(r);
                *value.decor_mut() = decor;
            }
        } else if let toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) = v {
            for (k, inner) in t.iter_mut() {
                if SECRET_KEYS.contains(&k.get()) && inner.is_str() {
                    *inner = toml_edit::Value::from("(set)");
                }
            }
        } else {
            walk(v);
        }
    }
    walk(doc.as_item_mut());
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_secrets_and_url_passwords_and_keeps_comments() {
        let text = r#"# site config
[[camera]]
name = "dock"
url = "rtsp://admin:pw-123@10.0.0.5/s1" # the dock camera

[[sink]]
name = "ops"
secret = "whsec_c2VjcmV0"

[control.mqtt]
url = "mqtts://fleet:fleet-pw@broker:8883"
control_key = "k-0123456789abcdef"
"#;
        let out = redact(text);
        for secret in ["pw-123", "whsec_c2VjcmV0", "fleet-pw", "k-0123456789abcdef"] {
            assert!(!out.contains(secret), "{secret} in:\n{out}");
        }
        assert!(
            out.contains("# site config") && out.contains("# the dock camera"),
            "{out}"
        );
        assert!(out.contains(r#"secret = "(set)""#), "{out}");
        assert!(out.contains("rtsp://admin:***@10.0.0.5/s1"), "{out}");
    }
}
