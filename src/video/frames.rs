//! Newest-frame-wins hand-off from cameras to the detector.
//!
//! One slot per camera: a new frame replaces the waiting one (counted as skipped), so a slow
//! detector never builds latency. The detector takes the slot that has waited longest, so
//! every camera gets its turn. The slot also keeps what the detector's side of a camera looks
//! like (frames taken, skipped, and how old the last one was when taken) for status.

use super::Frame;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Slot {
    waiting: Option<Frame>,
    stats: HandOff,
}

/// One camera's frames at the hand-off.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HandOff {
    /// Frames the detector took.
    pub taken: u64,
    /// Frames replaced by a newer one before the detector took them.
    pub skipped: u64,
    /// Wall clock when the detector took the last frame, minus its arrival at the appsink.
    pub last_age: Option<Duration>,
}

#[derive(Default)]
pub struct LatestFrames {
    slots: Mutex<HashMap<Arc<str>, Slot>>,
    ready: Condvar,
    skipped: AtomicU64,
}

impl LatestFrames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers a frame; returns true when it replaced one the detector never saw.
    pub fn put(&self, frame: Frame) -> bool {
        let mut slots = self.slots.lock();
        let slot = slots.entry(frame.camera.clone()).or_default();
        let replaced = slot.waiting.replace(frame).is_some();
        if replaced {
            slot.stats.skipped += 1;
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        drop(slots);
        self.ready.notify_one();
        replaced
    }

    /// The frame that has waited longest, or None after `timeout`.
    pub fn take(&self, timeout: Duration) -> Option<Frame> {
        let mut slots = self.slots.lock();
        self.ready.wait_while_for(
            &mut slots,
            |s| s.values().all(|s| s.waiting.is_none()),
            timeout,
        );
        let slot = slots
            .values_mut()
            .filter(|s| s.waiting.is_some())
            .min_by_key(|s| s.waiting.as_ref().map(|f| f.arrived))?;
        let frame = slot.waiting.take()?;
        slot.stats.taken += 1;
        slot.stats.last_age = Some(frame.arrived.elapsed());
        Some(frame)
    }

    /// Frames replaced before the detector took them, over all cameras.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The hand-off counters of one camera (zero before its first frame).
    pub fn stats(&self, camera: &str) -> HandOff {
        let slots = self.slots.lock();
        slots.get(camera).map(|s| s.stats).unwrap_or_default()
    }

    /// Drops a removed camera's slot, so its waiting frame is not detected after removal and
    /// a camera added later under the same name starts from zero.
    pub fn forget(&self, camera: &str) {
        let mut slots = self.slots.lock();
        slots.remove(camera);
    }
}
