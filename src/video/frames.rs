//! Newest-frame-wins hand-off from cameras to the detector.
//!
//! One slot per camera: a new frame replaces the waiting one (counted as skipped), so a slow
//! detector never builds latency. The detector takes the slot that has waited longest, so
//! every camera gets its turn.

use super::Frame;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct LatestFrames {
    slots: Mutex<HashMap<Arc<str>, Frame>>,
    ready: Condvar,
    skipped: AtomicU64,
}

impl LatestFrames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers a frame; returns true when it replaced one the detector never saw.
    pub fn put(&self, frame: Frame) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let replaced = slots.insert(frame.camera.clone(), frame).is_some();
        if replaced {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        drop(slots);
        self.ready.notify_one();
        replaced
    }

    /// The frame that has waited longest, or None after `timeout`.
    pub fn take(&self, timeout: Duration) -> Option<Frame> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let (mut slots, _) = self
            .ready
            .wait_timeout_while(slots, timeout, |s| s.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        let key = slots
            .iter()
            .min_by_key(|(_, f)| f.arrived)
            .map(|(k, _)| k.clone())?;
        slots.remove(&key)
    }

    /// Frames replaced before the detector took them, over all cameras.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}
