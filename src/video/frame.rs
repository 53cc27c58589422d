//! [`Frame`]: one decoded picture at the model's size, the type the video room hands on.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;

/// One decoded frame, RGB, `size`×`size`, stretched from the camera's picture.
#[derive(Clone)]
pub struct Frame {
    pub camera: Arc<str>,
    pub seq: u64,
    pub size: u32,
    /// Shared, so the camera's latest frame is kept for snapshots without a copy.
    pub rgb: Arc<[u8]>,
    /// The camera's own frame size (before scaling to `size`), for snapshots.
    pub source_width: u32,
    pub source_height: u32,
    /// Wall-clock time the frame reached the appsink (the payload's `frame_ts`).
    pub captured_at: DateTime<Utc>,
    pub arrived: Instant,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("camera", &self.camera)
            .field("seq", &self.seq)
            .field("size", &self.size)
            .field("captured_at", &self.captured_at)
            .finish()
    }
}
