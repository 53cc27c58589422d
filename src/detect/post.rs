//! NanoDet GFL decoding and per-class greedy NMS.

use super::Head;
use serde::Serialize;
use std::sync::Arc;

const REG_BINS: usize = 11;

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
    class_id: usize,
    score: f32,
    bbox: [f32; 4],
}

/// Every (cell, class) pair at or above `threshold`, with its box in input pixels.
pub(super) fn decode(
    outputs: &[&[f32]],
    heads: &[Head],
    size: usize,
    classes: usize,
    threshold: f32,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let limit = size as f32;
    for head in heads {
        let g = size / head.stride;
        let st = head.stride as f32;
        let (cls, reg) = (outputs[head.cls], outputs[head.reg]);
        for cell in 0..g * g {
            let scores = &cls[cell * classes..(cell + 1) * classes];
            if !scores.iter().any(|&s| s >= threshold) {
                continue;
            }
            let cx = ((cell % g) as f32 + 0.5) * st;
            let cy = ((cell / g) as f32 + 0.5) * st;
            let logits = &reg[cell * 4 * REG_BINS..(cell + 1) * 4 * REG_BINS];
            let d: Vec<f32> = logits
                .chunks_exact(REG_BINS)
                .map(|side| expectation(side) * st)
                .collect();
            let bbox = [
                (cx - d[0]).clamp(0.0, limit),
                (cy - d[1]).clamp(0.0, limit),
                (cx + d[2]).clamp(0.0, limit),
                (cy + d[3]).clamp(0.0, limit),
            ];
            for (class_id, &score) in scores.iter().enumerate() {
                if score >= threshold {
                    out.push(Candidate {
                        class_id,
                        score,
                        bbox,
                    });
                }
            }
        }
    }
    out
}

/// Softmax over the bins, then Σ k·p_k: the expected distance in units of the stride.
fn expectation(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for (k, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += k as f32 * e;
    }
    weighted / sum
}

pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy NMS within each class; the result is sorted by score, boxes normalised.
pub(super) fn nms(
    mut cands: Vec<Candidate>,
    thr: f32,
    size: usize,
    labels: &Arc<[String]>,
) -> Vec<Detection> {
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
    let side = size as f32;
    kept.into_iter()
        .map(|c| Detection {
            class_id: c.class_id,
            label: labels.get(c.class_id).cloned().unwrap_or_default(),
            confidence: c.score,
            bbox: c.bbox.map(|v| v / side),
        })
        .collect()
}
