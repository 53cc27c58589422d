//! The pipeline's bus: errors, end of stream and stalls, turned into a reason to reconnect
//! that a site technician can act on.

use super::{CameraState, CameraStatus, IngestOptions, VideoError};
use crate::config::CameraConfig;
use gstreamer as gst;
use gstreamer::prelude::*;
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub(super) fn watch_bus(
    pipeline: &gst::Pipeline,
    cfg: &CameraConfig,
    opts: &IngestOptions,
    status: &Arc<CameraStatus>,
    last_frame: &Arc<Mutex<Instant>>,
    cancel: &CancellationToken,
) -> Result<(), VideoError> {
    let stream_err = |message: String| VideoError::Stream {
        camera: cfg.name.clone(),
        message,
    };
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| stream_err("the pipeline refused to start".into()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| stream_err("pipeline has no bus".into()))?;
    let received_at_start = status.frames_received.load(Ordering::Relaxed);
    let mut streaming = false;
    while !cancel.is_cancelled() {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                    return Err(stream_err(explain(&e.error().to_string(), &debug)));
                }
                gst::MessageView::Eos(_) => return Ok(()),
                _ => {}
            }
        }
        let received = status.frames_received.load(Ordering::Relaxed);
        if streaming {
            status.fps.lock().record(Instant::now(), received);
        }
        if !streaming && received > received_at_start {
            streaming = true;
            status.set(CameraState::Streaming, None);
            tracing::info!(camera = %cfg.name, url = %cfg.redacted_url(), "camera streaming");
        }
        let idle = last_frame.lock().elapsed();
        if idle > opts.stall_after {
            return Err(VideoError::Stalled {
                camera: cfg.name.clone(),
                seconds: opts.stall_after.as_secs_f64().round() as u64,
            });
        }
    }
    Ok(())
}

/// GStreamer's error and debug text in words a technician on site acts on; the original
/// error follows in brackets. Credentials never reach here (rtspsrc gets them as properties,
/// so its messages carry the bare location).
pub(super) fn explain(error: &str, debug: &str) -> String {
    let all = format!("{error} {debug}").to_lowercase();
    // The codec first: GStreamer's "missing a plug-in" debug text also says "not found".
    let hint = if all.contains("missing a plug-in")
        || all.contains("no suitable plugins")
        || all.contains("not-negotiated")
    {
        "unsupported codec: no (chosen) decoder for this stream"
    } else if all.contains("unauthorized") || all.contains("401") {
        "401 unauthorized: check the camera's user and password"
    } else if all.contains("not found") || all.contains("404") {
        "404 stream not found: check the path in the camera URL"
    } else if all.contains("connection refused") || all.contains("failed to connect") {
        "connection refused: nothing answers at the camera's address and port"
    } else if all.contains("timeout") || all.contains("timed out") {
        "connection timed out: the camera does not answer (network or power)"
    } else {
        return error.to_string();
    };
    format!("{hint} ({error})")
}
