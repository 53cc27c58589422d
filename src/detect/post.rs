//! Per-class greedy NMS, shared by every model family.

use crate::geometry::iou;
use serde::Serialize;
use std::sync::Arc;

/// One detected object. `bbox` is `[x1, y1, x2, y2]` normalised to 0..1 of the frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub class_id: usize,
    pub label: String,
    pub confidence: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) class_id: usize,
    pub(super) score: f32,
    pub(super) bbox: [f32; 4],
}

/// Greedy NMS within each class (boxes of different classes never suppress each other);
/// the result is sorted by score.
pub(super) fn nms(mut cands: Vec<Candidate>, thr: f32, labels: &Arc<[String]>) -> Vec<Detection> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        let suppressed = kept
            .iter()
            .any(|k| k.class_id == c.class_id && iou(&k.bbox, &c.bbox) > thr);
        if !suppressed {
            kept.push(c);
        }
    }
    kept.into_iter()
        .map(|c| Detection {
            class_id: c.class_id,
            label: labels.get(c.class_id).cloned().unwrap_or_default(),
            confidence: c.score,
            bbox: c.bbox,
        })
        .collect()
}
