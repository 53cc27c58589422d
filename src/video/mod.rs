//! The video room: RTSP cameras → [`Frame`]s at the model's size.
//!
//! Each camera runs its own GStreamer pipeline on its own thread:
//! `rtspsrc latency=0 ! decodebin ! [sampler] videoconvert ! videoscale ! appsink(RGB, S×S)`.
//! The sampler drops frames *before* conversion and scaling, so only the `detect_fps` frames
//! the detector will see cost CPU there. A session that errors, ends or stalls is torn down
//! and rebuilt after a backoff (1 s doubling to 30 s, with jitter).

mod cameras;
mod frames;

use crate::config::{CameraConfig, Transport};
use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use crate::reconcile::Change;
pub use cameras::Cameras;
pub use frames::{HandOff, LatestFrames};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    Connecting,
    Streaming,
    /// Frames stopped without an error (a frozen camera); torn down, reconnecting soon.
    Stalled,
    /// Failed (the last error says why); reconnecting after a backoff.
    Backoff,
    Stopped,
}

/// What the rest of the program may know about a camera; never holds its credentials.
pub struct CameraStatus {
    pub name: Arc<str>,
    state: Mutex<(CameraState, Option<String>)>,
    pub frames_received: AtomicU64,
    pub frames_sampled: AtomicU64,
    /// `keyframes_only`: delta frames dropped before the decoder.
    pub delta_frames_dropped: AtomicU64,
    pub sessions: AtomicU64,
    /// The newest sampled frame, for snapshots on demand (web page, `cmd/snapshot`).
    latest: Mutex<Option<Frame>>,
    fps: Mutex<FpsMeter>,
}

/// A camera as status shows it. `frames_detected`, `frames_skipped` and `frame_age_ms` come
/// from the hand-off to the detector ([`LatestFrames`]) and are filled in by [`Cameras`].
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraSnapshot {
    pub name: String,
    pub state: CameraState,
    pub last_error: Option<String>,
    /// Frames that arrived from the camera (after `keyframes_only`).
    pub frames_received: u64,
    /// Frames kept by the `detect_fps` sampler and converted for the detector.
    pub frames_sampled: u64,
    /// Frames the detector took.
    pub frames_detected: u64,
    /// Sampled frames replaced by a newer one before the detector was free.
    pub frames_skipped: u64,
    pub delta_frames_dropped: u64,
    pub sessions: u64,
    /// Frames per second arriving from the camera over the last few seconds.
    pub fps: f64,
    /// How long the last frame the detector took had waited since it arrived.
    pub frame_age_ms: Option<f64>,
}

/// Arrival rate over a sliding window of once-a-second counter readings.
#[derive(Default)]
struct FpsMeter {
    readings: std::collections::VecDeque<(Instant, u64)>,
}

impl FpsMeter {
    const WINDOW: usize = 6;

    fn record(&mut self, now: Instant, count: u64) {
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

    fn fps(&self) -> f64 {
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
            state: Mutex::new((CameraState::Connecting, None)),
            frames_received: AtomicU64::new(0),
            frames_sampled: AtomicU64::new(0),
            delta_frames_dropped: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            latest: Mutex::new(None),
            fps: Mutex::new(FpsMeter::default()),
        }
    }

    fn set(&self, state: CameraState, error: Option<String>) {
        let mut s = self.state.lock();
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
        }
    }
}

impl CameraSnapshot {
    /// Adds the detector's side of the camera.
    pub fn with_hand_off(mut self, h: HandOff) -> Self {
        self.frames_detected = h.taken;
        self.frames_skipped = h.skipped;
        self.frame_age_ms = h.last_age.map(|d| d.as_secs_f64() * 1000.0);
        self
    }
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

fn camera_loop(
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

fn sleep_unless_cancelled(d: Duration, cancel: &CancellationToken) {
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
fn split_credentials(raw: &str) -> (String, Option<(String, String)>) {
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

fn make(factory: &str, camera: &str) -> Result<gst::Element, VideoError> {
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
fn choose_decoder(decode: &gst::Element, choice: &str, camera: &str) -> Result<(), VideoError> {
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
enum Source {
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

fn run_session(
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
    let src = match &source {
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

    choose_decoder(&decode, &cfg.decoder, name)?;
    if cfg.keyframes_only {
        // Before the decoder: on the output of the parser decodebin plugs (parsers mark delta
        // frames; the depayloader does not), so delta frames never cost a decode.
        let status = status.clone();
        let bin = decode
            .downcast_ref::<gst::Bin>()
            .ok_or_else(|| perr("decodebin is not a bin".into()))?;
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
                    // As in the sampler below: take the buffer and say Handled (not Drop).
                    drop(info.take_buffer());
                    gst::PadProbeReturn::Handled
                } else {
                    gst::PadProbeReturn::Ok
                }
            });
        });
    }

    // Sampler: keep one frame per 1/detect_fps of *stream* time, drop the rest before conversion.
    let sampler = Arc::new(Mutex::new(Sampler::new(Duration::from_secs_f64(
        1.0 / cfg.detect_fps,
    ))));
    let last_frame = Arc::new(Mutex::new(Instant::now()));
    // The camera's frame size, read from the caps of the frames the sampler keeps.
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

    let camera: Arc<str> = status.name.clone();
    let expected = (opts.size * opts.size * 3) as usize;
    let cb_status = status.clone();
    let cb_frames = frames.clone();
    let cb_seq = seq.clone();
    let out_size = opts.size;
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

    let result = watch_bus(&pipeline, cfg, opts, status, &last_frame, cancel);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Picks frames at a steady rate by their timestamps (arrival times jitter, timestamps do
/// not), like `videorate drop-only=true` but without converting the frames it drops.
struct Sampler {
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

fn watch_bus(
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
fn explain(error: &str, debug: &str) -> String {
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
