//! Frames from a video file (tests and the rules-on-a-clip checks), through the same scaling
//! as a camera.

use super::{make, Frame, VideoError};
use chrono::Utc;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;
use std::time::Instant;

/// Decodes a whole video file into model-size frames, as the camera path would deliver them.
/// For replaying recorded footage through the detector and rules (tests, evaluation).
pub fn decode_file(path: &std::path::Path, size: u32) -> Result<Vec<Frame>, VideoError> {
    let name = path.display().to_string();
    let err = |message: String| VideoError::Stream {
        camera: name.clone(),
        message,
    };
    crate::init_gstreamer().map_err(|e| err(e.to_string()))?;
    let pipeline = gst::Pipeline::new();
    let src = make("filesrc", &name)?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let decode = make("decodebin", &name)?;
    let convert = make("videoconvert", &name)?;
    let scale = make("videoscale", &name)?;
    scale.set_property("add-borders", false);
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", size as i32)
        .field("height", size as i32)
        .build();
    // sync=false: as fast as it decodes; a bounded queue so nothing is dropped.
    let appsink = gst_app::AppSink::builder()
        .caps(&caps)
        .sync(false)
        .max_buffers(8)
        .build();
    pipeline
        .add_many([&src, &decode, &convert, &scale, appsink.upcast_ref()])
        .map_err(|e| err(e.to_string()))?;
    src.link(&decode).map_err(|e| err(e.to_string()))?;
    gst::Element::link_many([&convert, &scale, appsink.upcast_ref()])
        .map_err(|e| err(e.to_string()))?;
    let convert_weak = convert.downgrade();
    decode.connect_pad_added(move |_, pad| {
        if let Some(sink) = convert_weak.upgrade().and_then(|c| c.static_pad("sink")) {
            if !sink.is_linked() {
                let _ = pad.link(&sink);
            }
        }
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| err("cannot start decoding".into()))?;
    let camera: Arc<str> = name.as_str().into();
    let expected = (size * size * 3) as usize;
    let mut frames = Vec::new();
    let result = loop {
        let Some(sample) = appsink.try_pull_sample(gst::ClockTime::from_seconds(10)) else {
            break if appsink.is_eos() {
                Ok(())
            } else {
                Err(err("decoding stalled for 10 s".into()))
            };
        };
        let dims = convert
            .static_pad("sink")
            .and_then(|p| p.current_caps())
            .and_then(|c| {
                let s = c.structure(0)?;
                Some((
                    s.get::<i32>("width").ok()? as u32,
                    s.get::<i32>("height").ok()? as u32,
                ))
            })
            .unwrap_or((size, size));
        let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) else {
            break Err(err("unreadable frame".into()));
        };
        if map.len() < expected {
            break Err(err(format!(
                "frame of {} bytes, expected {expected}",
                map.len()
            )));
        }
        frames.push(Frame {
            camera: camera.clone(),
            seq: frames.len() as u64,
            size,
            rgb: Arc::from(&map[..expected]),
            source_width: dims.0,
            source_height: dims.1,
            captured_at: Utc::now(),
            arrived: Instant::now(),
        });
    };
    if let Some(bus) = pipeline.bus() {
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(err(e.error().to_string()));
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result.map(|_| frames)
}
