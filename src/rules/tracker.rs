//! Multi-object tracking, SORT-style: each track predicts its box with a constant velocity,
//! detections of the same class are matched to predictions by IoU (greedy, best pair first),
//! unmatched detections start tentative tracks, and tracks that miss too many frames end.
//!
//! Written here rather than taken from a crate: the Rust SORT/ByteTrack ports are either
//! unmaintained or carry a Kalman/linear-algebra stack (nalgebra) that is large for firmware,
//! and greedy IoU with a smoothed velocity is what the rules need at 2–10 detector fps.

use crate::config::TrackerConfig;
use crate::detect::Detection;
use crate::geometry::iou;
use std::collections::VecDeque;

/// One object followed across frames.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    pub class_id: usize,
    pub label: String,
    /// Last matched box, normalised `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// Per-frame change of the box, smoothed.
    velocity: [f32; 4],
    pub hits: u32,
    /// Frames since the last match (0 = matched on this frame).
    pub misses: u32,
    scores: VecDeque<f32>,
    pub confirmed: bool,
}

impl Track {
    fn predicted(&self) -> [f32; 4] {
        std::array::from_fn(|i| self.bbox[i] + self.velocity[i] * (self.misses + 1) as f32)
    }

    /// Median of the recent scores: one lucky (or unlucky) frame does not decide a rule.
    pub fn median_score(&self) -> f32 {
        let mut s: Vec<f32> = self.scores.iter().copied().collect();
        s.sort_by(f32::total_cmp);
        match s.len() {
            0 => 0.0,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        }
    }

    pub fn last_score(&self) -> f32 {
        self.scores.back().copied().unwrap_or(0.0)
    }

    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }
}

pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Feeds one frame's detections; returns the ids of tracks that ended on this frame.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<u64> {
        let predicted: Vec<[f32; 4]> = self.tracks.iter().map(Track::predicted).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            for (d, det) in detections.iter().enumerate() {
                if det.class_id != track.class_id {
                    continue;
                }
                let overlap = iou(&predicted[t], &det.bbox).max(iou(&track.bbox, &det.bbox));
                if overlap >= self.cfg.iou_threshold {
                    pairs.push((overlap, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, t, d) in pairs {
            if track_used[t] || det_used[d] {
                continue;
            }
            track_used[t] = true;
            det_used[d] = true;
            let track = &mut self.tracks[t];
            let det = &detections[d];
            let steps = (track.misses + 1) as f32;
            for i in 0..4 {
                let v = (det.bbox[i] - track.bbox[i]) / steps;
                track.velocity[i] = 0.5 * track.velocity[i] + 0.5 * v;
            }
            track.bbox = det.bbox;
            track.hits += 1;
            track.misses = 0;
            track.scores.push_back(det.confidence);
            if track.scores.len() > self.cfg.score_window {
                track.scores.pop_front();
            }
            if track.hits >= self.cfg.min_hits {
                track.confirmed = true;
            }
        }
        for (t, used) in track_used.iter().enumerate() {
            if !used {
                self.tracks[t].misses += 1;
            }
        }
        let max_age = self.cfg.max_age;
        let mut ended = Vec::new();
        self.tracks.retain(|t| {
            // A tentative track that misses once was most likely a false positive.
            let alive = if t.confirmed {
                t.misses <= max_age
            } else {
                t.misses == 0
            };
            if !alive {
                ended.push(t.id);
            }
            alive
        });
        for (d, det) in detections.iter().enumerate() {
            if det_used[d] {
                continue;
            }
            self.tracks.push(Track {
                id: self.next_id,
                class_id: det.class_id,
                label: det.label.clone(),
                bbox: det.bbox,
                velocity: [0.0; 4],
                hits: 1,
                misses: 0,
                scores: VecDeque::from([det.confidence]),
                confirmed: self.cfg.min_hits <= 1,
            });
            self.next_id += 1;
        }
        ended
    }

    /// Live tracks, confirmed or not.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }
}
