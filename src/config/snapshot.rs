//! `[snapshots]`: the evidence JPEG of each alert and how many are kept.

use super::default_true;
use super::locate::FieldPath;
use super::problems::Problems;
use serde::Deserialize;

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

pub(super) fn default_snapshot_count() -> usize {
    1000
}
pub(super) fn default_snapshot_mb() -> f64 {
    200.0
}
pub(super) fn default_quality() -> u8 {
    80
}

impl SnapshotConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let snap = FieldPath::root("snapshots");
        if self.quality == 0 || self.quality > 100 {
            p.add(
                &snap.key("quality"),
                format!("must be between 1 and 100, got {}", self.quality),
            );
        }
        if self.max_count == 0 || self.max_mb.is_nan() || self.max_mb <= 0.0 {
            p.add(
                &snap,
                "max_count and max_mb must be above 0 (use enabled = false to turn snapshots off)",
            );
        }
    }
}
