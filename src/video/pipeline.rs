//! One camera's GStreamer pipeline and its reconnect loop:
//! `rtspsrc ! decodebin ! [sampler] videoconvert ! videoscale ! appsink`.

use super::{watch_bus, CameraState, CameraStatus, Frame, IngestOptions, LatestFrames, VideoError};
use crate::config::{CameraConfig, Transport};
use chrono::Utc;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use parking_lot::Mutex;
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Starts a camera on its own thread; it runs until `cancel`.
pub fn spawn_camera(
    cfg: CameraConfig,
    opts: IngestOptions,
    frames: Arc<LatestFrames>,
    status: Arc<CameraStatus>,
    cancel: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // Idempotent; a camera must not depend on someone else having initialised GStreamer.
    crate::init_gstreamer().map_err(std::io::Error::other)?;
    std::thread::Builder::new()
        .name(format!("cam-{}", cfg.name))
        .spawn(move || camera_loop(&cfg, &opts, &frames, &status, &cancel))
}

pub(super) fn camera_loop(
    cfg: &CameraConfig,
    opts: &IngestOptions,
    frames: &Arc<LatestFrames>,
    status: &Arc<CameraStatus>,
    cancel: &CancellationToken,
) {
    let mut backoff = opts.backoff_min;
    let seq = Arc::new(AtomicU64::new(0));
    while !cancel.is_cancelled() {
        status.set(CameraState::Connecting, None);
        status.sessions.fetch_add(1, Ordering::Relaxed);
        let before = status.frames_sampled.load(Ordering::Relaxed);
        let result = run_session(cfg, opts, frames, status, &seq, cancel);
        if cancel.is_cancelled() {
            break;
        }
        if status.frames_sampled.load(Ordering::Relaxed) > before {
            backoff = opts.backoff_min;
        }
        let state = match &result {
            Err(VideoError::Stalled { .. }) => CameraState::Stalled,
            _ => CameraState::Backoff,
        };
        let reason = match result {
            Ok(()) => "stream ended".to_string(),
            Err(e) => e.to_string(),
        };
        let wait = backoff.mul_f64(rand::rng().random_range(0.8..1.2));
        tracing::warn!(camera = %cfg.name, url = %cfg.redacted_url(), reason = %reason,
            retry_in_ms = wait.as_millis() as u64, "camera disconnected; reconnecting");
        status.set(state, Some(reason));
        sleep_unless_cancelled(wait, cancel);
        backoff = (backoff * 2).min(opts.backoff_max);
    }
    status.set(CameraState::Stopped, None);
}

pub(super) fn sleep_unless_cancelled(d: Duration, cancel: &CancellationToken) {
    let end = Instant::now() + d;
    while !cancel.is_cancelled() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Splits credentials off the URL: rtspsrc gets them as properties, so they never appear in
/// the `location` that GStreamer logs and puts in its error messages.
pub(super) fn split_credentials(raw: &str) -> (String, Option<(String, String)>) {
    match url::Url::parse(raw) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let creds = (decode(u.username()), decode(u.password().unwrap_or("")));
            let _ = u.set_username("");
            let _ = u.set_password(None);
            (u.to_string(), Some(creds))
        }
        _ => (raw.to_string(), None),
    }
}

pub(super) fn make(factory: &str, camera: &str) -> Result<gst::Element, VideoError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| VideoError::Pipeline {
            camera: camera.to_string(),
            message: format!(
                "GStreamer element \"{factory}\" is missing (install its plugin package)"
            ),
        })
}

/// Applies `[[camera]] decoder` to decodebin through its `autoplug-select` signal, so the
/// choice is per camera (changing element ranks would change every camera).
pub(super) fn choose_decoder(
    decode: &gst::Element,
    choice: &str,
    camera: &str,
) -> Result<(), VideoError> {
    if choice == "auto" {
        return Ok(());
    }
    if choice != "software" && gst::ElementFactory::find(choice).is_none() {
        return Err(VideoError::Pipeline {
            camera: camera.to_string(),
            message: format!("decoder \"{choice}\" is not installed (gst-inspect-1.0 {choice})"),
        });
    }
    let result_type =
        glib::Type::from_name("GstAutoplugSelectResult").ok_or_else(|| VideoError::Pipeline {
            camera: camera.to_string(),
            message: "decodebin has no autoplug-select".into(),
        })?;
    let choice = choice.to_string();
    decode.connect("autoplug-select", false, move |args| {
        let skip = args
            .get(3)
            .and_then(|v| v.get::<gst::ElementFactory>().ok())
            .is_some_and(|factory| {
                let klass = factory.klass().to_string();
                klass.contains("Decoder")
                    && if choice == "software" {
                        klass.contains("Hardware")
                    } else {
                        factory.name() != choice.as_str()
                    }
            });
        // GST_AUTOPLUG_SELECT_TRY = 0, GST_AUTOPLUG_SELECT_SKIP = 2.
        glib::EnumClass::with_type(result_type).and_then(|c| c.to_value(if skip { 2 } else { 0 }))
    });
    Ok(())
}

/// Where a camera's pictures come from: a real camera, or, for commissioning a site and for
/// tests without one, a video file (played in real time; at its end the session ends and the
/// camera loop starts it again, so it loops) or GStreamer's test pattern.
pub(super) enum Source {
    Rtsp,
    File(std::path::PathBuf),
    Test,
}

impl Source {
    fn of(url: &str) -> Self {
        match url::Url::parse(url) {
            Ok(u) if u.scheme() == "testsrc" => Source::Test,
            Ok(u) if u.scheme() == "file" => Source::File(u.to_file_path().unwrap_or_default()),
            _ => Source::Rtsp,
        }
    }
}

pub(super) fn run_session(
    cfg: &CameraConfig,
    opts: &IngestOptions,
    frames: &Arc<LatestFrames>,
    status: &Arc<CameraStatus>,
    seq: &Arc<AtomicU64>,
    cancel: &CancellationToken,
) -> Result<(), VideoError> {
    let name = cfg.name.as_str();
    let perr = |message: String| VideoError::Pipeline {
        camera: name.to_string(),
        message,
    };
    let pipeline = gst::Pipeline::new();
    let source = Source::of(cfg.url.expose());
    let src = source_element(cfg, &source)?;
    let decode = make("decodebin", name)?;
    let convert = make("videoconvert", name)?;
    let scale = make("videoscale", name)?;
    // Stretch to the square input the model was trained with; no letterbox borders.
    scale.set_property("add-borders", false);
    let size = opts.size as i32;
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", size)
        .field("height", size)
        .build();
    let appsink = gst_app::AppSink::builder()
        .caps(&caps)
        .max_buffers(1)
        .drop(true)
        // A file would otherwise decode as fast as the CPU allows; play it in real time.
        .sync(matches!(source, Source::File(_)))
        .build();
    pipeline
        .add_many([&src, &decode, &convert, &scale, appsink.upcast_ref()])
        .map_err(|e| perr(e.to_string()))?;
    gst::Element::link_many([&convert, &scale, appsink.upcast_ref()])
        .map_err(|e| perr(e.to_string()))?;

    if !matches!(source, Source::Rtsp) {
        // filesrc and videotestsrc have their pad from the start.
        src.link(&decode).map_err(|e| perr(e.to_string()))?;
    }
    link_dynamic_pads(&src, &decode, &convert);
    choose_decoder(&decode, &cfg.decoder, name)?;
    if cfg.keyframes_only {
        drop_delta_frames(&decode, status, name)?;
    }
    let sampled = sample_before_convert(&convert, status, cfg.detect_fps);
    hand_frames_on(&appsink, opts.size, status, frames, seq, &sampled);
    let result = watch_bus(&pipeline, cfg, opts, status, &sampled.last_frame, cancel);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The first element: `rtspsrc` with the camera's transport and credentials, or `filesrc` /
/// `videotestsrc` for `file://` and `test://` URLs.
fn source_element(cfg: &CameraConfig, source: &Source) -> Result<gst::Element, VideoError> {
    let name = cfg.name.as_str();
    let src = match source {
        Source::Rtsp => {
            let src = make("rtspsrc", name)?;
            let (location, creds) = split_credentials(cfg.url.expose());
            src.set_property("location", &location);
            src.set_property("latency", 0u32);
            src.set_property_from_str(
                "protocols",
                match cfg.transport {
                    Transport::Tcp => "tcp",
                    Transport::Udp => "udp",
                    Transport::Auto => "udp+udp-mcast+tcp",
                },
            );
            if let Some((user, pass)) = creds {
                src.set_property("user-id", &user);
                src.set_property("user-pw", &pass);
            }
            src
        }
        Source::File(path) => {
            let src = make("filesrc", name)?;
            src.set_property("location", path.display().to_string());
            src
        }
        Source::Test => {
            let src = make("videotestsrc", name)?;
            src.set_property("is-live", true);
            src.set_property_from_str("pattern", "ball");
            src
        }
    };
    Ok(src)
}

/// rtspsrc and decodebin add their pads once they know the stream: link them then (only
/// video reaches the converter).
fn link_dynamic_pads(src: &gst::Element, decode: &gst::Element, convert: &gst::Element) {
    let decode_weak = decode.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(decode) = decode_weak.upgrade() else {
            return;
        };
        if let Some(sink) = decode.static_pad("sink") {
            if !sink.is_linked() {
                let _ = pad.link(&sink);
            }
        }
    });
    let convert_weak = convert.downgrade();
    decode.connect_pad_added(move |_, pad| {
        // Some decoders (jpegdec for MJPEG) expose their pad before fixing its caps: ask what
        // it can produce instead.
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video/"));
        let Some(convert) = convert_weak.upgrade() else {
            return;
        };
        if let Some(sink) = convert.static_pad("sink") {
            if is_video && !sink.is_linked() {
                let _ = pad.link(&sink);
            }
        }
    });
}

/// `keyframes_only`: delta frames are dropped before the decoder, on the output of the
/// parser decodebin plugs (parsers mark delta frames; the depayloader does not), so they
/// never cost a decode.
fn drop_delta_frames(
    decode: &gst::Element,
    status: &Arc<CameraStatus>,
    name: &str,
) -> Result<(), VideoError> {
    let status = status.clone();
    let bin = decode
        .downcast_ref::<gst::Bin>()
        .ok_or_else(|| VideoError::Pipeline {
            camera: name.to_string(),
            message: "decodebin is not a bin".into(),
        })?;
    bin.connect_element_added(move |_, element| {
        let is_parser = element
            .factory()
            .is_some_and(|f| f.klass().contains("Parser"));
        let Some(pad) = element.static_pad("src").filter(|_| is_parser) else {
            return;
        };
        let status = status.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let delta = info
                .buffer()
                .is_some_and(|b| b.flags().contains(gst::BufferFlags::DELTA_UNIT));
            if delta {
                status.delta_frames_dropped.fetch_add(1, Ordering::Relaxed);
                // As in the sampler: take the buffer and say Handled (not Drop).
                drop(info.take_buffer());
                gst::PadProbeReturn::Handled
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    });
    Ok(())
}

/// What the sampler probe shares with the rest of the session.
struct Sampled {
    /// When the camera last delivered a frame (the stall watchdog reads it).
    last_frame: Arc<Mutex<Instant>>,
    /// The camera's frame size, read from the caps of the frames the sampler keeps.
    source_dims: Arc<AtomicU64>,
}

/// Keeps one frame per 1/detect_fps of *stream* time and drops the rest before conversion.
fn sample_before_convert(
    convert: &gst::Element,
    status: &Arc<CameraStatus>,
    detect_fps: f64,
) -> Sampled {
    let sampler = Arc::new(Mutex::new(Sampler::new(Duration::from_secs_f64(
        1.0 / detect_fps,
    ))));
    let last_frame = Arc::new(Mutex::new(Instant::now()));
    let source_dims = Arc::new(AtomicU64::new(0));
    if let Some(pad) = convert.static_pad("sink") {
        let status = status.clone();
        let last_frame = last_frame.clone();
        let source_dims = source_dims.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            status.frames_received.fetch_add(1, Ordering::Relaxed);
            *last_frame.lock() = Instant::now();
            let pts = info
                .buffer()
                .and_then(|b| b.pts())
                .map(|t| Duration::from_nanos(t.nseconds()));
            if sampler.lock().keep(pts) {
                if let Some(s) = pad.current_caps().as_ref().and_then(|c| c.structure(0)) {
                    if let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) {
                        source_dims.store(
                            ((w as u64) << 32) | (h as u64 & 0xffff_ffff),
                            Ordering::Relaxed,
                        );
                    }
                }
                gst::PadProbeReturn::Ok
            } else {
                // Consume the buffer here and say Handled: returning Drop makes
                // GStreamer 1.22 unref a pointer the bindings already cleared (CRITICAL).
                drop(info.take_buffer());
                gst::PadProbeReturn::Handled
            }
        });
    }

    Sampled {
        last_frame,
        source_dims,
    }
}

/// The appsink's callback: each converted frame becomes a [`Frame`], kept as the camera's
/// latest and offered to the detector.
fn hand_frames_on(
    appsink: &gst_app::AppSink,
    size: u32,
    status: &Arc<CameraStatus>,
    frames: &Arc<LatestFrames>,
    seq: &Arc<AtomicU64>,
    sampled: &Sampled,
) {
    let camera: Arc<str> = status.name.clone();
    let expected = (size * size * 3) as usize;
    let cb_status = status.clone();
    let cb_frames = frames.clone();
    let cb_seq = seq.clone();
    let out_size = size;
    let source_dims = sampled.source_dims.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                if map.len() < expected {
                    return Err(gst::FlowError::Error);
                }
                cb_status.frames_sampled.fetch_add(1, Ordering::Relaxed);
                let dims = source_dims.load(Ordering::Relaxed);
                let (sw, sh) = match ((dims >> 32) as u32, dims as u32) {
                    (0, _) | (_, 0) => (out_size, out_size),
                    d => d,
                };
                let frame = Frame {
                    camera: camera.clone(),
                    seq: cb_seq.fetch_add(1, Ordering::Relaxed),
                    size: out_size,
                    rgb: Arc::from(&map[..expected]),
                    source_width: sw,
                    source_height: sh,
                    captured_at: Utc::now(),
                    arrived: Instant::now(),
                };
                *cb_status.latest.lock() = Some(frame.clone());
                cb_frames.put(frame);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// Picks frames at a steady rate by their timestamps (arrival times jitter, timestamps do
/// not), like `videorate drop-only=true` but without converting the frames it drops.
pub(super) struct Sampler {
    interval: Duration,
    next: Option<Duration>,
    /// Wall clock stands in when the stream carries no timestamps.
    started: Instant,
}

impl Sampler {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: None,
            started: Instant::now(),
        }
    }

    fn keep(&mut self, pts: Option<Duration>) -> bool {
        let t = pts.unwrap_or_else(|| self.started.elapsed());
        match self.next {
            // A jump back (new segment) or far ahead (gap) restarts the cadence.
            Some(next)
                if t + Duration::from_secs(5) >= next && t < next + Duration::from_secs(5) =>
            {
                // 2 ms of slack absorbs timestamp rounding (e.g. 29.97 fps → 5 fps).
                if t + Duration::from_millis(2) < next {
                    return false;
                }
                // Behind by more than a whole interval (a gap): resume from this frame.
                let n = next + self.interval;
                self.next = Some(if n <= t { t + self.interval } else { n });
                true
            }
            _ => {
                self.next = Some(t + self.interval);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(fps_in: f64, fps_out: f64, frames: usize) -> usize {
        let mut s = Sampler::new(Duration::from_secs_f64(1.0 / fps_out));
        (0..frames)
            .filter(|i| s.keep(Some(Duration::from_secs_f64(*i as f64 / fps_in))))
            .count()
    }

    #[test]
    fn sampler_keeps_the_requested_rate() {
        assert_eq!(kept(10.0, 5.0, 100), 50);
        assert_eq!(kept(30.0, 5.0, 300), 50);
        assert_eq!(kept(25.0, 2.0, 250), 20);
        assert_eq!(
            kept(5.0, 10.0, 50),
            50,
            "never more frames than the stream has"
        );
    }

    #[test]
    fn sampler_restarts_after_a_timestamp_jump() {
        let mut s = Sampler::new(Duration::from_millis(200));
        assert!(s.keep(Some(Duration::from_secs(100))));
        assert!(!s.keep(Some(Duration::from_millis(100_100))));
        // New segment starting at zero: keep at once instead of waiting 100 s.
        assert!(s.keep(Some(Duration::ZERO)));
        assert!(!s.keep(Some(Duration::from_millis(100))));
        assert!(s.keep(Some(Duration::from_millis(200))));
    }

    #[test]
    fn credentials_are_split_off_the_location() {
        let (loc, creds) = split_credentials("rtsp://ad%40min:p%3Ass@cam.local:554/s1");
        assert_eq!(loc, "rtsp://cam.local:554/s1");
        assert_eq!(creds, Some(("ad@min".to_string(), "p:ss".to_string())));
        assert_eq!(split_credentials("rtsp://cam.local/s1").1, None);
    }
}
