//! Motion gating: skip the model on frames where nothing moved.
//!
//! A static yard costs a detector run per frame for nothing. The gate compares a small grey
//! copy of each frame (box-averaged cells, ~6×6 px at 416) with the copy from the last frame
//! the model saw: cells whose mean grey level moved by more than `threshold` count as
//! changed, a 3×3 dilation joins the cells of one moving object, and the model runs when one
//! connected blob covers at least `min_area` of the picture. Masked areas (trees, a road, a
//! clock) never count. Every `max_skip_seconds` the model runs anyway, so objects that stand
//! still are still seen. Comparing with the last *detected* frame, not the previous one,
//! means slow movement adds up until it triggers.
//!
//! Hand-written: the crates that do frame differencing and blob labelling (opencv, imageproc)
//! bring large native or dependency trees to firmware for ~100 lines of arithmetic.

use crate::config::MotionConfig;
use crate::video::Frame;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

/// Target cells per side of the grey grid.
const GRID: usize = 64;

/// Why the gate let a frame through to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateDecision {
    /// The first frame, or the first after a size change.
    First,
    Motion,
    /// Nothing moved, but `max_skip_seconds` passed since the model last ran.
    Forced,
    /// Skipped: nothing moved.
    Gated,
}

impl GateDecision {
    pub fn runs_model(self) -> bool {
        self != GateDecision::Gated
    }
}

pub struct MotionGate {
    cfg: MotionConfig,
    /// Grid geometry for the current frame size: cell side in pixels and cells per side.
    cell: usize,
    side: usize,
    /// Cells that never count (inside a mask).
    masked: Vec<bool>,
    reference: Option<Vec<u8>>,
    last_run: Option<DateTime<Utc>>,
    /// Scratch buffers, reused so a gated frame allocates nothing.
    grey: Vec<u8>,
    changed: Vec<bool>,
    dilated: Vec<bool>,
    seen: Vec<bool>,
    queue: VecDeque<usize>,
}

impl MotionGate {
    pub fn new(cfg: MotionConfig) -> Self {
        Self {
            cfg,
            cell: 0,
            side: 0,
            masked: Vec::new(),
            reference: None,
            last_run: None,
            grey: Vec::new(),
            changed: Vec::new(),
            dilated: Vec::new(),
            seen: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    fn resize(&mut self, size: usize) {
        self.cell = (size / GRID).max(1);
        self.side = size / self.cell;
        let n = self.side * self.side;
        self.masked = (0..n)
            .map(|i| {
                let (x, y) = (i % self.side, i / self.side);
                let c = (
                    (x as f64 + 0.5) / self.side as f64,
                    (y as f64 + 0.5) / self.side as f64,
                );
                self.cfg
                    .masks
                    .iter()
                    .any(|m| crate::geometry::in_polygon(m, c))
            })
            .collect();
        self.reference = None;
    }

    /// Decides whether `frame` goes to the model; time is the frame's capture time.
    pub fn check(&mut self, frame: &Frame) -> GateDecision {
        let size = frame.size as usize;
        if size / (size / GRID).max(1) != self.side || self.cell == 0 {
            self.resize(size);
        }
        self.downscale(frame);
        let now = frame.captured_at;
        let due = self.last_run.is_none_or(|t| {
            (now - t).num_milliseconds() as f64 >= self.cfg.max_skip_seconds * 1000.0
        });
        let decision = if self.reference.is_none() {
            GateDecision::First
        } else if self.moved() {
            GateDecision::Motion
        } else if due {
            GateDecision::Forced
        } else {
            GateDecision::Gated
        };
        if decision.runs_model() {
            // The new reference is what the model saw; swap buffers instead of copying.
            let fresh = std::mem::take(&mut self.grey);
            self.grey = self.reference.replace(fresh).unwrap_or_default();
            self.last_run = Some(now);
        }
        decision
    }

    /// Mean grey level of each cell (integer Rec.601 weights).
    fn downscale(&mut self, frame: &Frame) {
        let (cell, side, size) = (self.cell, self.side, frame.size as usize);
        self.grey.clear();
        self.grey.resize(side * side, 0);
        let area = (cell * cell) as u32;
        for cy in 0..side {
            for cx in 0..side {
                let mut sum = 0u32;
                for y in cy * cell..(cy + 1) * cell {
                    let row =
                        &frame.rgb[(y * size + cx * cell) * 3..(y * size + (cx + 1) * cell) * 3];
                    for px in row.chunks_exact(3) {
                        sum += (77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32) >> 8;
                    }
                }
                self.grey[cy * side + cx] = (sum / area) as u8;
            }
        }
    }

    /// Threshold, dilate, and look for one blob of at least `min_area`.
    fn moved(&mut self) -> bool {
        let Some(reference) = &self.reference else {
            return true;
        };
        let side = self.side;
        let n = side * side;
        let threshold = self.cfg.threshold;
        self.changed.clear();
        self.changed.extend(
            self.grey
                .iter()
                .zip(reference)
                .zip(&self.masked)
                .map(|((a, b), m)| !m && a.abs_diff(*b) > threshold),
        );
        self.dilated.clear();
        self.dilated.resize(n, false);
        for i in (0..n).filter(|&i| self.changed[i]) {
            let (x, y) = (i % side, i / side);
            for ny in y.saturating_sub(1)..(y + 2).min(side) {
                for nx in x.saturating_sub(1)..(x + 2).min(side) {
                    if !self.masked[ny * side + nx] {
                        self.dilated[ny * side + nx] = true;
                    }
                }
            }
        }
        let need = ((self.cfg.min_area * n as f64).ceil() as usize).max(1);
        self.seen.clear();
        self.seen.resize(n, false);
        for start in 0..n {
            if !self.dilated[start] || self.seen[start] {
                continue;
            }
            // 4-connected flood fill; only changed cells count towards the area, so the
            // dilation joins a blob without inflating it.
            let mut area = 0;
            self.seen[start] = true;
            self.queue.clear();
            self.queue.push_back(start);
            while let Some(i) = self.queue.pop_front() {
                area += self.changed[i] as usize;
                let (x, y) = (i % side, i / side);
                let mut visit = |j: usize| {
                    if self.dilated[j] && !self.seen[j] {
                        self.seen[j] = true;
                        self.queue.push_back(j);
                    }
                };
                if x > 0 {
                    visit(i - 1);
                }
                if x + 1 < side {
                    visit(i + 1);
                }
                if y > 0 {
                    visit(i - side);
                }
                if y + 1 < side {
                    visit(i + side);
                }
            }
            if area >= need {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    const S: u32 = 416;

    fn frame(at_ms: i64, paint: impl Fn(usize, usize) -> u8) -> Frame {
        let s = S as usize;
        let mut rgb = vec![0u8; s * s * 3];
        for y in 0..s {
            for x in 0..s {
                let v = paint(x, y);
                rgb[(y * s + x) * 3..(y * s + x) * 3 + 3].copy_from_slice(&[v, v, v]);
            }
        }
        Frame {
            camera: "cam".into(),
            seq: 0,
            size: S,
            rgb: Arc::from(rgb),
            source_width: S,
            source_height: S,
            captured_at: DateTime::from_timestamp_millis(1_700_000_000_000 + at_ms).unwrap(),
            arrived: Instant::now(),
        }
    }

    /// A textured background with seeded per-pixel noise of ±`noise` grey levels.
    fn scene(at_ms: i64, noise: u8, square: Option<(usize, usize, usize)>) -> Frame {
        frame(at_ms, move |x, y| {
            if let Some((sx, sy, side)) = square {
                if (sx..sx + side).contains(&x) && (sy..sy + side).contains(&y) {
                    return 20;
                }
            }
            let base = 100 + ((x / 13 + y / 17) % 5) as i32 * 20;
            let h =
                ((x as u64 * 73_856_093) ^ (y as u64 * 19_349_663) ^ (at_ms as u64 * 83_492_791))
                    % (2 * noise as u64 + 1);
            (base + h as i32 - noise as i32).clamp(0, 255) as u8
        })
    }

    fn cfg() -> MotionConfig {
        MotionConfig::default()
    }

    #[test]
    fn a_static_noisy_scene_runs_the_model_only_every_max_skip_seconds() {
        let mut g = MotionGate::new(cfg());
        let runs: Vec<i64> = (0..60)
            .map(|i| i * 500)
            .filter(|&t| g.check(&scene(t, 6, None)).runs_model())
            .collect();
        assert_eq!(runs, vec![0, 5000, 10000, 15000, 20000, 25000]);
    }

    #[test]
    fn an_object_entering_runs_the_model_on_that_frame() {
        let mut g = MotionGate::new(cfg());
        assert_eq!(g.check(&scene(0, 4, None)), GateDecision::First);
        assert_eq!(g.check(&scene(500, 4, None)), GateDecision::Gated);
        // A 40 px dark square (about 1 % of the picture) walks in.
        assert_eq!(
            g.check(&scene(1000, 4, Some((10, 200, 40)))),
            GateDecision::Motion
        );
        // It stands still: the reference now has it, so the gate closes again.
        assert_eq!(
            g.check(&scene(1500, 4, Some((10, 200, 40)))),
            GateDecision::Gated
        );
        assert_eq!(
            g.check(&scene(2000, 4, Some((60, 200, 40)))),
            GateDecision::Motion
        );
    }

    #[test]
    fn small_changes_and_masked_areas_do_not_count() {
        let mut g = MotionGate::new(cfg());
        g.check(&scene(0, 4, None));
        // 8 px: under min_area (0.2 % of the frame).
        assert_eq!(
            g.check(&scene(500, 4, Some((100, 100, 8)))),
            GateDecision::Gated
        );
        let mut masked = cfg();
        masked.masks = vec![vec![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]];
        let mut g = MotionGate::new(masked);
        g.check(&scene(0, 4, None));
        assert_eq!(
            g.check(&scene(500, 4, Some((20, 100, 80)))),
            GateDecision::Gated,
            "movement in the left half is masked"
        );
        assert_eq!(
            g.check(&scene(1000, 4, Some((300, 100, 80)))),
            GateDecision::Motion
        );
    }
}
