//! The I/O step of loading, between parsing and the pure checks: every file the config
//! names is read here (labels, camera credentials, sink secrets, the control key, TLS
//! files), secrets from files are merged into their settings and defaults that depend on
//! other settings are filled in. Problems go to the same collector as the checks', so one
//! run still reports everything.

use super::locate::FieldPath;
use super::problems::Problems;
use super::{Config, Secret, SinkConfig, SinkKind};

/// What the pure checks need from the files read here.
pub(super) struct Resolved {
    /// The model's labels; `None` when the file could not be read (already reported).
    pub(super) labels: Option<Vec<String>>,
}

pub(super) fn resolve(c: &mut Config, p: &mut Problems<'_>) -> Resolved {
    let model = FieldPath::root("model");
    if !c.model.path.is_file() {
        p.add(
            &model.key("path"),
            format!("model file {} not found", c.model.path.display()),
        );
    }
    let labels: Option<Vec<String>> = match std::fs::read_to_string(&c.model.labels) {
        Ok(t) => match super::parse_labels(&t) {
            Ok(labels) => Some(labels),
            Err(e) => {
                p.add(
                    &model.key("labels"),
                    format!("labels file {}: {e}", c.model.labels.display()),
                );
                None
            }
        },
        Err(e) => {
            p.add(
                &model.key("labels"),
                format!("cannot read labels file {}: {e}", c.model.labels.display()),
            );
            None
        }
    };

    for (i, cam) in c.cameras.iter_mut().enumerate() {
        let at = FieldPath::root("camera").index(i);
        if let Some(file) = cam.credentials_file.clone() {
            match merge_credentials(cam.url.expose(), &file) {
                Ok(url) => cam.url = Secret::new(url),
                Err(message) => p.add(&at.key("credentials_file"), message),
            }
        }
        // A file camera's video must exist now, not at the first reconnect.
        if let Ok(u) = url::Url::parse(cam.url.expose()) {
            if u.scheme() == "file" {
                let path = u.to_file_path().unwrap_or_default();
                if !path.is_file() {
                    p.add(
                        &at.key("url"),
                        format!(
                            "camera \"{}\": no video file at {}",
                            cam.name,
                            path.display()
                        ),
                    );
                }
            }
        }
    }

    for (i, sink) in c.sinks.iter_mut().enumerate() {
        let at = FieldPath::root("sink").index(i);
        if sink.kind == SinkKind::Pagerduty && sink.url.is_empty() {
            sink.url = super::PAGERDUTY_EVENTS_URL.to_string();
        }
        if matches!(sink.kind, SinkKind::Webhook | SinkKind::Mqtt) {
            load_secret_file(sink, &at, p);
        }
        if sink.kind == SinkKind::Mqtt {
            load_tls_files(sink, &at, p);
        }
    }

    if let Some(m) = c.control.as_mut().and_then(|c| c.mqtt.as_mut()) {
        let at = FieldPath::root("control").key("mqtt");
        match (&m.control_key, &m.control_key_file) {
            (Some(_), Some(_)) => p.add(
                &at.key("control_key_file"),
                "give either control_key or control_key_file, not both",
            ),
            (None, Some(file)) => match std::fs::read_to_string(file) {
                Ok(k) if k.trim().len() >= 16 => m.control_key = Some(Secret::new(k.trim())),
                Ok(_) => p.add(
                    &at.key("control_key_file"),
                    format!(
                        "{}: the key must be at least 16 characters (the value is not shown)",
                        file.display()
                    ),
                ),
                Err(e) => p.add(
                    &at.key("control_key_file"),
                    format!("{}: {e}", file.display()),
                ),
            },
            _ => {}
        }
    }
    Resolved { labels }
}

/// Reads `secret_file` into `secret` (both at once is a problem: which one is meant?).
fn load_secret_file(sink: &mut SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    match (&sink.secret, &sink.secret_file) {
        (Some(_), Some(_)) => {
            p.add(
                &at.key("secret_file"),
                format!(
                    "sink \"{}\": give either secret or secret_file, not both",
                    sink.name
                ),
            );
        }
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(s) => {
                sink.secret = Some(Secret::new(s.trim()));
            }
            Err(e) => {
                p.add(
                    &at.key("secret_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
            }
        },
        _ => {}
    }
}

/// Loads an `mqtts://` sink's CA and client files now, so a bad one is reported at start with
/// its field, not on the first connection attempt (the same code connects).
fn load_tls_files(sink: &SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    let tls =
        url::Url::parse(&sink.url).is_ok_and(|u| u.scheme() == "mqtts" && u.host_str().is_some());
    if !tls {
        return;
    }
    if let Err(e) = watchpost_contracts::tls::tls_config_for(
        &sink.url,
        sink.ca_file.as_deref(),
        sink.client_cert_file.as_deref(),
        sink.client_key_file.as_deref(),
    ) {
        p.add(&at.key(e.field), e.message);
    }
}

/// The camera URL with the `user:password` of `file` in it; never echoes the password.
fn merge_credentials(url: &str, file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (user, password) = text
        .trim()
        .split_once(':')
        .filter(|(u, _)| !u.is_empty())
        .ok_or_else(|| {
            format!(
                "{}: expected one line \"user:password\" (the content is not shown)",
                file.display()
            )
        })?;
    let mut u = url::Url::parse(url).map_err(|e| format!("the camera URL is not valid ({e})"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the camera URL already has credentials: give them in the URL or in credentials_file, not both".into());
    }
    // Url percent-encodes what a user name or password may contain (@ : /).
    u.set_username(user)
        .and_then(|_| u.set_password(Some(password)))
        .map_err(|_| "this camera URL cannot carry credentials".to_string())?;
    Ok(u.to_string())
}
