//! `[[camera]]`: one RTSP (or file, or test) source, its rate, decoder and motion gate.

use super::locate::FieldPath;
use super::problems::Problems;
use super::{default_true, Secret};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

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

pub(super) fn default_decoder() -> String {
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

pub(super) fn default_detect_fps() -> f64 {
    5.0
}

/// Each camera's own settings; returns the names, for the references other sections make.
pub(super) fn check_cameras(cams: &[CameraConfig], p: &mut Problems<'_>) -> HashSet<String> {
    let mut cameras = HashSet::new();
    for (i, cam) in cams.iter().enumerate() {
        let at = FieldPath::root("camera").index(i);
        if cam.name.trim().is_empty() {
            p.add(&at.key("name"), "must not be empty");
        } else if cam.name.starts_with('_') || cam.name.contains(['/', '+', '#']) {
            // It is an MQTT topic level (`alerts/{camera}`); `_` names are reserved for
            // watchpost's own (test alerts come from camera `_test`).
            p.add(
                &at.key("name"),
                format!(
                    "camera \"{}\": a camera name cannot start with '_' or contain '/', '+' or '#'",
                    cam.name
                ),
            );
        } else if !cameras.insert(cam.name.clone()) {
            p.add(
                &at.key("name"),
                format!("camera \"{}\" is defined twice", cam.name),
            );
        }
        match url::Url::parse(cam.url.expose()) {
            Ok(u) if matches!(u.scheme(), "rtsp" | "rtsps") && u.host_str().is_some() => {}
            Ok(u) if u.scheme() == "testsrc" => {}
            Ok(u) if u.scheme() == "file" => {}
            Ok(u) => p.add(
                &at.key("url"),
                format!(
                    "camera \"{}\": expected rtsp://host/path, file:///path/to/video or testsrc://, got scheme \"{}\"",
                    cam.name,
                    u.scheme()
                ),
            ),
            Err(e) => p.add(
                &at.key("url"),
                format!(
                    "camera \"{}\": not a valid URL ({e}): {}",
                    cam.name,
                    cam.redacted_url()
                ),
            ),
        }
        if let Some(m) = &cam.motion {
            let at = at.key("motion");
            let owner = format!("camera \"{}\" motion", cam.name);
            if m.threshold == 0 {
                p.add(
                    &at.key("threshold"),
                    format!("{owner}: must be 1 to 255, got 0"),
                );
            }
            if !(m.min_area > 0.0 && m.min_area <= 1.0) {
                p.add(
                    &at.key("min_area"),
                    format!(
                        "{owner}: a fraction of the picture above 0 and at most 1, got {}",
                        m.min_area
                    ),
                );
            }
            if !(m.max_skip_seconds > 0.0 && m.max_skip_seconds <= 3600.0) {
                p.add(
                    &at.key("max_skip_seconds"),
                    format!(
                        "{owner}: must be above 0 and at most 3600, got {}",
                        m.max_skip_seconds
                    ),
                );
            }
            for (j, mask) in m.masks.iter().enumerate() {
                p.polygon(&at.key("masks").index(j), mask, &owner);
            }
        }
        if !(cam.detect_fps > 0.0 && cam.detect_fps <= 60.0) {
            p.add(
                &at.key("detect_fps"),
                format!(
                    "camera \"{}\": must be above 0 and at most 60, got {}",
                    cam.name, cam.detect_fps
                ),
            );
        }
    }
    cameras
}
