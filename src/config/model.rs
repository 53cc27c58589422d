//! `[model]`: the detector's file, labels, family and threads. The config owns the values'
//! grammar (`kind`, the labels file format); `detect` owns what they mean.

use super::locate::FieldPath;
use super::problems::Problems;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
pub(super) fn default_model_path() -> PathBuf {
    PathBuf::from("models/ssdlite-mnv2-300.onnx")
}
pub(super) fn default_labels_path() -> PathBuf {
    PathBuf::from("models/coco80.txt")
}
pub(super) fn default_threads() -> usize {
    2
}

impl ModelConfig {
    /// The settings' own ranges (the files are read by `resolve`).
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let model = FieldPath::root("model");
        if let Some(size) = self.input_size {
            if !(32..=1280).contains(&size) {
                p.add(
                    &model.key("input_size"),
                    format!(
                        "must be between 32 and 1280 (NanoDet: 320 or 416; SSD: 300), got {size}"
                    ),
                );
            }
        }
        if self.threads == 0 || self.threads > 64 {
            p.add(
                &model.key("threads"),
                format!("must be between 1 and 64, got {}", self.threads),
            );
        }
        if let Some(t) = self.score_threshold {
            p.range(&model.key("score_threshold"), t as f64, 0.01, 1.0);
        }
    }
}
