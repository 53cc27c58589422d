//! The video room: RTSP cameras → [`Frame`]s at the model's size.
//!
//! Each camera runs its own GStreamer pipeline on its own thread:
//! `rtspsrc latency=0 ! decodebin ! [sampler] videoconvert ! videoscale ! appsink(RGB, S×S)`.
//! The sampler drops frames *before* conversion and scaling, so only the `detect_fps` frames
//! the detector will see cost CPU there. A session that errors, ends or stalls is torn down
//! and rebuilt after a backoff (1 s doubling to 30 s, with jitter).

//!
//! Files: `frame` (the [`Frame`] handed on), `status` (what a camera is doing), `pipeline`
//! (the GStreamer pipeline and reconnect loop), `bus` (errors and stalls → a reason),
//! `cameras` (the running set, by name), `frames` (the newest-frame-wins hand-off), `file`
//! (frames from a video file).

mod bus;
mod cameras;
mod file;
mod frame;
mod frames;
mod pipeline;
mod status;

use std::time::Duration;

pub use crate::reconcile::Change;
pub use cameras::Cameras;
pub use file::decode_file;
pub use frame::Frame;
pub use frames::{HandOff, LatestFrames};
pub use pipeline::spawn_camera;
pub use status::{CameraSnapshot, CameraState, CameraStatus};

use bus::watch_bus;
use pipeline::make;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("camera \"{camera}\": cannot build pipeline: {message}")]
    Pipeline { camera: String, message: String },
    #[error("camera \"{camera}\": {message}")]
    Stream { camera: String, message: String },
    /// The stall watchdog: frames stopped without an error or end-of-stream.
    #[error("camera \"{camera}\": no frames for {seconds} s")]
    Stalled { camera: String, seconds: u64 },
    #[error("camera \"{0}\" already exists")]
    Exists(String),
    #[error("no camera named \"{0}\"")]
    Unknown(String),
    #[error("camera \"{0}\" has not delivered a frame yet")]
    NoFrame(String),
}

/// Ingest settings that are not per camera.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub size: u32,
    /// No frame for this long → reconnect, even if GStreamer reports nothing.
    pub stall_after: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            size: 416,
            stall_after: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}
