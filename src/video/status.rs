//! What a camera is doing, for telemetry and the page: its state, rates and last error.

use super::{Frame, HandOff};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use watchpost_contracts::health::{CameraSnapshot, CameraState};

/// What the rest of the program may know about a camera; never holds its credentials.
pub struct CameraStatus {
    pub name: Arc<str>,
    /// The state, the last error, and when the state began.
    state: Mutex<(CameraState, Option<String>, std::time::Instant)>,
    pub frames_received: AtomicU64,
    pub frames_sampled: AtomicU64,
    /// `keyframes_only`: delta frames dropped before the decoder.
    pub delta_frames_dropped: AtomicU64,
    pub sessions: AtomicU64,
    /// The newest sampled frame, for snapshots on demand (web page, `cmd/snapshot`).
    pub(super) latest: Mutex<Option<Frame>>,
    pub(super) fps: Mutex<FpsMeter>,
}

/// Arrival rate over a sliding window of once-a-second counter readings.
#[derive(Default)]
pub(super) struct FpsMeter {
    readings: std::collections::VecDeque<(Instant, u64)>,
}

impl FpsMeter {
    const WINDOW: usize = 6;

    pub(super) fn record(&mut self, now: Instant, count: u64) {
        if self
            .readings
            .back()
            .is_some_and(|(t, _)| now.duration_since(*t) < Duration::from_secs(1))
        {
            return;
        }
        if self.readings.len() == Self::WINDOW {
            self.readings.pop_front();
        }
        self.readings.push_back((now, count));
    }

    pub(super) fn fps(&self) -> f64 {
        match (self.readings.front(), self.readings.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                c1.saturating_sub(*c0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

impl CameraStatus {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            state: Mutex::new((CameraState::Connecting, None, std::time::Instant::now())),
            frames_received: AtomicU64::new(0),
            frames_sampled: AtomicU64::new(0),
            delta_frames_dropped: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            latest: Mutex::new(None),
            fps: Mutex::new(FpsMeter::default()),
        }
    }

    pub(super) fn set(&self, state: CameraState, error: Option<String>) {
        let mut s = self.state.lock();
        if s.0 != state {
            s.2 = std::time::Instant::now();
        }
        s.0 = state;
        if error.is_some() || state == CameraState::Streaming {
            s.1 = error;
        }
        if state != CameraState::Streaming {
            *self.fps.lock() = FpsMeter::default();
        }
    }

    /// The newest frame this camera delivered (kept after it stops, until it is removed).
    pub fn latest_frame(&self) -> Option<Frame> {
        self.latest.lock().clone()
    }

    pub fn snapshot(&self) -> CameraSnapshot {
        let s = self.state.lock().clone();
        CameraSnapshot {
            name: self.name.to_string(),
            state: s.0,
            last_error: s.1,
            frames_received: self.frames_received.load(Ordering::Relaxed),
            frames_sampled: self.frames_sampled.load(Ordering::Relaxed),
            frames_detected: 0,
            frames_skipped: 0,
            delta_frames_dropped: self.delta_frames_dropped.load(Ordering::Relaxed),
            sessions: self.sessions.load(Ordering::Relaxed),
            fps: self.fps.lock().fps(),
            frame_age_ms: None,
            state_for_s: Some(s.2.elapsed().as_secs_f64()),
        }
    }
}

/// Adds the detector's side of the camera to its snapshot.
pub(super) fn with_hand_off(mut s: CameraSnapshot, h: HandOff) -> CameraSnapshot {
    s.frames_detected = h.taken;
    s.frames_skipped = h.skipped;
    s.frame_age_ms = h.last_age.map(|d| d.as_secs_f64() * 1000.0);
    s
}
