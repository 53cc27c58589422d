//! The video room against GStreamer's own RTSP server: frames at the model's size, sampling
//! to detect_fps before conversion, and reconnecting after the camera goes away.

use crate::common;
use crate::common::{clip, wait_until};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::config::{CameraConfig, Secret, Transport};
use watchpost::demo::RtspClipServer;
use watchpost::video::{
    spawn_camera, CameraState, CameraStatus, Cameras, Change, IngestOptions, LatestFrames,
    VideoError,
};

/// One test at a time in this process: several in-process RTSP servers streaming to several
/// clients at once under CPU load have tripped an assertion inside gst-rtsp-server 1.22
/// (`gst_rtsp_media_get_rates`), which aborts the whole test binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn camera(url: &str, fps: f64) -> CameraConfig {
    CameraConfig {
        name: "cam".into(),
        url: Secret::new(url),
        detect_fps: fps,
        transport: Transport::Tcp,
        keyframes_only: false,
        credentials_file: None,
        decoder: "auto".into(),
        motion: None,
        enabled: true,
    }
}

fn opts() -> IngestOptions {
    IngestOptions {
        size: 320,
        stall_after: Duration::from_secs(3),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_millis(800),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_resized_and_sampled() {
    let _serial = SERIAL.lock().await;
    let server = RtspClipServer::start(&clip(), 0).unwrap();
    let frames = Arc::new(LatestFrames::new());
    let status = Arc::new(CameraStatus::new("cam"));
    let cancel = CancellationToken::new();
    let t = spawn_camera(
        camera(&server.url(), 5.0),
        opts(),
        frames.clone(),
        status.clone(),
        cancel.clone(),
    )
    .unwrap();

    let first = tokio::task::spawn_blocking({
        let frames = frames.clone();
        move || frames.take(Duration::from_secs(20))
    })
    .await
    .unwrap()
    .expect("a frame within 20 s");
    assert_eq!(first.size, 320);
    assert_eq!(first.rgb.len(), 320 * 320 * 3);
    assert_eq!(&*first.camera, "cam");
    assert!(first.rgb.iter().any(|&v| v > 30), "not a black frame");

    // The clip is 10 fps; detect_fps = 5 keeps every other frame, dropped before conversion.
    assert!(
        wait_until(Duration::from_secs(20), || status
            .frames_received
            .load(Ordering::Relaxed)
            >= 40)
        .await
    );
    let snap = status.snapshot();
    let ratio = snap.frames_sampled as f64 / snap.frames_received as f64;
    assert!(
        (0.45..=0.55).contains(&ratio),
        "sampled {} of {}",
        snap.frames_sampled,
        snap.frames_received
    );
    assert_eq!(snap.state, CameraState::Streaming);
    cancel.cancel();
    join(t).await;
    assert_eq!(status.snapshot().state, CameraState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_outage_then_reconnect() {
    let _serial = SERIAL.lock().await;
    let server = RtspClipServer::start(&clip(), 0).unwrap();
    let port = server.port();
    let frames = Arc::new(LatestFrames::new());
    let status = Arc::new(CameraStatus::new("cam"));
    let cancel = CancellationToken::new();
    let url = format!("rtsp://viewer:s3cret-cam@127.0.0.1:{port}/clip");
    let t = spawn_camera(
        camera(&url, 5.0),
        opts(),
        frames.clone(),
        status.clone(),
        cancel.clone(),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || status.snapshot().state
            == CameraState::Streaming)
        .await
    );

    drop(server);
    assert!(
        wait_until(Duration::from_secs(20), || status.snapshot().state
            == CameraState::Backoff)
        .await,
        "camera should notice the outage: {:?}",
        status.snapshot()
    );
    let down = status.snapshot();
    let err = down.last_error.clone().unwrap_or_default();
    assert!(!err.is_empty(), "the outage is explained");
    assert!(
        !err.contains("s3cret-cam"),
        "credentials leaked into status: {err}"
    );

    let sampled = status.frames_sampled.load(Ordering::Relaxed);
    let _server = RtspClipServer::start(&clip(), port).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || status
            .frames_sampled
            .load(Ordering::Relaxed)
            > sampled + 5)
        .await,
        "frames flow again after the camera comes back: {:?}",
        status.snapshot()
    );
    assert!(status.snapshot().sessions >= 2);
    cancel.cancel();
    join(t).await;
}

/// Joins a camera thread, bounded: a thread stuck in teardown fails the test instead of
/// hanging the suite.
async fn join(thread: std::thread::JoinHandle<()>) {
    let joined = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || thread.join()),
    )
    .await;
    assert!(
        matches!(joined, Ok(Ok(Ok(())))),
        "camera thread did not stop within 30 s"
    );
}

/// A camera thread under test with its own frame slot; `stop` cancels and joins it.
struct Running {
    status: Arc<CameraStatus>,
    frames: Arc<LatestFrames>,
    cancel: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

fn start(cfg: CameraConfig) -> Running {
    let frames = Arc::new(LatestFrames::new());
    let status = Arc::new(CameraStatus::new(&cfg.name));
    let cancel = CancellationToken::new();
    let thread = spawn_camera(cfg, opts(), frames.clone(), status.clone(), cancel.clone()).unwrap();
    Running {
        status,
        frames,
        cancel,
        thread,
    }
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        let thread = self.thread;
        join(thread).await;
    }
}

/// Runs one camera on `url` until it is in backoff; returns its last error.
async fn error_for(url: &str) -> String {
    let cam = start(camera(url, 5.0));
    let status = cam.status.clone();
    let failed = wait_until(Duration::from_secs(20), || {
        status.snapshot().state == CameraState::Backoff
    })
    .await;
    cam.stop().await;
    assert!(failed, "{url}: never failed: {:?}", status.snapshot());
    status.snapshot().last_error.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_credentials_and_port_are_explained_while_a_good_camera_streams() {
    let _serial = SERIAL.lock().await;
    let auth = RtspClipServer::start_with_auth(&clip(), 0, Some(("viewer", "right-pass"))).unwrap();
    // The healthy camera, through the same password-protected server.
    let frames = Arc::new(LatestFrames::new());
    let good = Arc::new(CameraStatus::new("cam"));
    let cancel = CancellationToken::new();
    let url = format!("rtsp://viewer:right-pass@127.0.0.1:{}/clip", auth.port());
    let t = spawn_camera(
        camera(&url, 5.0),
        opts(),
        frames,
        good.clone(),
        cancel.clone(),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || good.snapshot().state
            == CameraState::Streaming)
        .await,
        "the camera with the right password streams: {:?}",
        good.snapshot()
    );

    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            format!("rtsp://viewer:right-pass@127.0.0.1:{}/nope", auth.port()),
            "404 stream not found",
        ),
        (
            format!("rtsp://viewer:wrong-pass@127.0.0.1:{}/clip", auth.port()),
            "401 unauthorized",
        ),
        (
            format!("rtsp://127.0.0.1:{free}/clip"),
            "connection refused",
        ),
    ];
    for (url, words) in cases {
        let sampled = good.frames_sampled.load(Ordering::Relaxed);
        let err = error_for(&url).await;
        assert!(err.contains(words), "{url}: {err}");
        assert!(
            !err.contains("right-pass") && !err.contains("wrong-pass"),
            "credentials leaked into the error: {err}"
        );
        // Meanwhile the good camera kept delivering.
        assert!(
            wait_until(Duration::from_secs(5), || good
                .frames_sampled
                .load(Ordering::Relaxed)
                > sampled)
            .await,
            "the healthy camera stalled while {url} failed"
        );
    }
    assert_eq!(good.snapshot().state, CameraState::Streaming);
    cancel.cancel();
    join(t).await;
}

/// A TCP relay between camera and server that can freeze: bytes stop in both directions but
/// the connections stay open (a camera that hangs without closing anything).
struct Relay {
    port: u16,
    frozen: Arc<std::sync::atomic::AtomicBool>,
}

async fn relay(to: u16) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut r, mut w) in [
                (
                    Box::new(cr) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                    Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                ),
                (Box::new(sr), Box::new(cw)),
            ] {
                let f = f.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // Frozen: swallow, keep the socket open. Bounded by the test's life.
                        if f.load(Ordering::Relaxed) {
                            continue;
                        }
                        if w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    });
    Relay { port, frozen }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_freezes_without_eos_is_stalled_then_recovered() {
    let _serial = SERIAL.lock().await;
    let server = RtspClipServer::start(&clip(), 0).unwrap();
    let relay = relay(server.port()).await;
    let url = format!("rtsp://127.0.0.1:{}/clip", relay.port);
    let cam = start(camera(&url, 5.0));
    let status = cam.status.clone();
    assert!(
        wait_until(Duration::from_secs(20), || status.snapshot().state
            == CameraState::Streaming)
        .await
    );

    relay.frozen.store(true, Ordering::Relaxed);
    // opts(): stall_after = 3 s.
    let stalled = wait_until(Duration::from_secs(15), || {
        status.snapshot().state == CameraState::Stalled
    })
    .await;
    let snap = status.snapshot();
    assert!(stalled, "freeze not detected: {snap:?}");
    assert!(
        snap.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("no frames for 3 s"),
        "{snap:?}"
    );

    relay.frozen.store(false, Ordering::Relaxed);
    let sampled = status.frames_sampled.load(Ordering::Relaxed);
    let back = wait_until(Duration::from_secs(20), || {
        status.snapshot().state == CameraState::Streaming
            && status.frames_sampled.load(Ordering::Relaxed) > sampled
    })
    .await;
    assert!(back, "did not recover: {:?}", status.snapshot());
    assert!(status.snapshot().sessions >= 2, "recovered by reconnecting");
    cam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testsrc_and_looped_file_sources_need_no_camera() {
    let _serial = SERIAL.lock().await;
    let frames = Arc::new(LatestFrames::new());
    let cancel = CancellationToken::new();
    let file_url = format!("file://{}", clip().display());
    let mut running = Vec::new();
    for url in ["testsrc://", file_url.as_str()] {
        let status = Arc::new(CameraStatus::new("cam"));
        let t = spawn_camera(
            camera(url, 5.0),
            opts(),
            frames.clone(),
            status.clone(),
            cancel.clone(),
        )
        .unwrap();
        running.push((url.to_string(), status, t));
    }
    for (url, status, _) in &running {
        assert!(
            wait_until(Duration::from_secs(20), || status.snapshot().state
                == CameraState::Streaming)
            .await,
            "{url}: {:?}",
            status.snapshot()
        );
    }
    let file_streaming_at = std::time::Instant::now();
    // The live test pattern keeps detect_fps (5/s) within 20 %.
    let test = &running[0].1;
    let before = test.frames_sampled.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got = test.frames_sampled.load(Ordering::Relaxed) - before;
    assert!(
        (24..=36).contains(&got),
        "testsrc: {got} frames in 6 s at 5 fps"
    );
    // The 10 s clip plays in real time (not as fast as it decodes) and starts again at its end.
    let file = &running[1].1;
    assert!(
        wait_until(Duration::from_secs(25), || file.snapshot().sessions >= 2).await,
        "the file did not loop: {:?}",
        file.snapshot()
    );
    let played = file_streaming_at.elapsed();
    assert!(
        played >= Duration::from_secs(8),
        "the 10 s clip ended after {played:?}: not played in real time"
    );
    cancel.cancel();
    for (_, _, t) in running {
        join(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_and_mjpeg_streams_are_decoded() {
    let _serial = SERIAL.lock().await;
    let pattern =
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1";
    let streams = [
        (
            "H.265",
            format!("( {pattern} ! x265enc tune=zerolatency speed-preset=ultrafast ! h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1 )"),
        ),
        (
            "MJPEG",
            // rtpjpegpay takes 4:2:0 JPEG only ("Invalid component" otherwise), as cameras send.
            format!("( {pattern},format=I420 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"),
        ),
    ];
    for (codec, launch) in streams {
        let server = RtspClipServer::start_launch(&launch, 0).unwrap();
        let cam = start(camera(&server.url(), 5.0));
        let (frames, status) = (cam.frames.clone(), cam.status.clone());
        let frame = tokio::task::spawn_blocking(move || frames.take(Duration::from_secs(20)))
            .await
            .unwrap();
        cam.stop().await;
        let frame = frame.unwrap_or_else(|| panic!("{codec}: no frame: {:?}", status.snapshot()));
        assert_eq!(frame.rgb.len(), 320 * 320 * 3, "{codec}");
        // The ball pattern is mostly black with a white ball: both must be there.
        assert!(
            frame.rgb.iter().any(|&v| v > 200),
            "{codec}: no bright pixels"
        );
        assert!(frame.rgb.iter().any(|&v| v < 30), "{codec}: no dark pixels");
        println!("{codec}: decoded, {:?}", status.snapshot().state);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_cameras_one_broken_the_healthy_three_keep_their_rate_for_30_s() {
    let _serial = SERIAL.lock().await;
    // A server per camera, as on a site: three clients PLAYing one shared media at the same
    // moment can deadlock gst-rtsp-server 1.22's test server (a seek waiting on the media's
    // status while its bus handler waits on a stream lock), which is not what is tested here.
    let servers: Vec<RtspClipServer> = (0..3)
        .map(|_| RtspClipServer::start(&clip(), 0).unwrap())
        .collect();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let frames = Arc::new(LatestFrames::new());
    let cancel = CancellationToken::new();
    let mut cams = Vec::new();
    for i in 0..4 {
        let url = servers
            .get(i)
            .map(|s| s.url())
            .unwrap_or_else(|| format!("rtsp://127.0.0.1:{free}/clip"));
        let mut cfg = camera(&url, 5.0);
        cfg.name = format!("cam{i}");
        let status = Arc::new(CameraStatus::new(&cfg.name));
        let t = spawn_camera(cfg, opts(), frames.clone(), status.clone(), cancel.clone()).unwrap();
        cams.push((status, t));
    }
    let healthy = || {
        cams[..3]
            .iter()
            .all(|(s, _)| s.snapshot().state == CameraState::Streaming)
    };
    assert!(
        wait_until(Duration::from_secs(30), healthy).await,
        "the three healthy cameras stream"
    );
    let before: Vec<u64> = cams
        .iter()
        .map(|(s, _)| s.frames_sampled.load(Ordering::Relaxed))
        .collect();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let got: Vec<u64> = cams
        .iter()
        .zip(&before)
        .map(|((s, _), b)| s.frames_sampled.load(Ordering::Relaxed) - b)
        .collect();
    println!("frames sampled in 30 s at detect_fps 5: {got:?}");
    for (i, n) in got[..3].iter().enumerate() {
        assert!(
            (120..=180).contains(n),
            "cam{i}: {n} frames in 30 s, want 150 ± 20 %"
        );
    }
    assert_eq!(got[3], 0);
    let broken = cams[3].0.snapshot();
    // Between retries it is in backoff; a retry may be under way at this instant.
    assert!(
        matches!(broken.state, CameraState::Backoff | CameraState::Connecting)
            && broken
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("connection refused")),
        "{broken:?}"
    );
    assert!(
        broken.sessions >= 3,
        "the broken camera keeps retrying: {broken:?}"
    );
    cancel.cancel();
    for (_, t) in cams {
        join(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframes_only_drops_delta_frames_before_the_decoder() {
    let _serial = SERIAL.lock().await;
    let server = RtspClipServer::start(&clip(), 0).unwrap();
    let mut cfg = camera(&server.url(), 5.0);
    cfg.keyframes_only = true;
    let cam = start(cfg);
    let status = cam.status.clone();
    let flowing = wait_until(Duration::from_secs(30), || {
        let s = status.snapshot();
        s.frames_received >= 2 && s.delta_frames_dropped >= 20
    })
    .await;
    let snap = status.snapshot();
    cam.stop().await;
    assert!(flowing, "{snap:?}");
    // Only keyframes reach the decoder: far fewer decoded frames than dropped deltas.
    assert!(
        snap.frames_received * 5 <= snap.delta_frames_dropped,
        "decoded {} frames, dropped {} deltas",
        snap.frames_received,
        snap.delta_frames_dropped
    );
    println!(
        "keyframes_only: decoded {}, dropped {} delta frames",
        snap.frames_received, snap.delta_frames_dropped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_a_file_open_a_password_protected_camera() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server =
        RtspClipServer::start_with_auth(&clip(), 0, Some(("viewer", "p@ss:w0rd/x"))).unwrap();
    std::fs::write(dir.path().join("dock.cred"), "viewer:p@ss:w0rd/x\n").unwrap();
    let text = format!(
        "[device]\nid = \"gw\"\ndata_dir = \"{data}\"\n\n[model]\npath = \"{repo}/models/ssdlite-mnv2-300.onnx\"\nlabels = \"{repo}/models/coco80.txt\"\n\n[[camera]]\nname = \"dock\"\nurl = \"rtsp://127.0.0.1:{port}/clip\"\ncredentials_file = \"dock.cred\"\n",
        data = dir.path().display(),
        repo = common::repo().display(),
        port = server.port()
    );
    let path = dir.path().join("watchpost.toml");
    std::fs::write(&path, text).unwrap();
    let config = watchpost::config::Config::load(&path).expect("valid config");
    let mut cfg = config.cameras[0].clone();
    assert!(
        !cfg.redacted_url().contains("w0rd"),
        "{}",
        cfg.redacted_url()
    );
    assert!(!format!("{cfg:?}").contains("w0rd"));
    cfg.transport = Transport::Tcp;
    let cam = start(cfg);
    let status = cam.status.clone();
    let streaming = wait_until(Duration::from_secs(20), || {
        status.snapshot().state == CameraState::Streaming
    })
    .await;
    cam.stop().await;
    assert!(streaming, "{:?}", status.snapshot());

    // A file without "user:password" is reported with its field, not echoed.
    std::fs::write(dir.path().join("dock.cred"), "just-a-secret-token\n").unwrap();
    let err = watchpost::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("credentials_file") || err.contains("user:password"),
        "{err}"
    );
    assert!(!err.contains("just-a-secret-token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decoder_can_be_chosen_per_camera() {
    let _serial = SERIAL.lock().await;
    let server = RtspClipServer::start(&clip(), 0).unwrap();
    for choice in ["software", "avdec_h264"] {
        let mut cfg = camera(&server.url(), 5.0);
        cfg.decoder = choice.into();
        let cam = start(cfg);
        let status = cam.status.clone();
        let ok = wait_until(Duration::from_secs(20), || {
            status.frames_sampled.load(Ordering::Relaxed) >= 3
        })
        .await;
        cam.stop().await;
        assert!(ok, "decoder = {choice}: {:?}", status.snapshot());
    }
    // A decoder that cannot decode this stream: nothing is decoded, the camera says why.
    let mut cfg = camera(&server.url(), 5.0);
    cfg.decoder = "avdec_h265".into();
    let cam = start(cfg);
    let status = cam.status.clone();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let snap = status.snapshot();
    cam.stop().await;
    assert_eq!(snap.frames_received, 0, "{snap:?}");
    assert!(
        snap.last_error
            .as_deref()
            .is_some_and(|e| e.contains("unsupported codec")),
        "{snap:?}"
    );

    let err = error_for_decoder(&server.url(), "nosuchdec").await;
    assert!(
        err.contains("decoder \"nosuchdec\" is not installed"),
        "{err}"
    );
}

async fn error_for_decoder(url: &str, decoder: &str) -> String {
    let mut cfg = camera(url, 5.0);
    cfg.decoder = decoder.into();
    let cam = start(cfg);
    let status = cam.status.clone();
    let failed = wait_until(Duration::from_secs(10), || {
        status.snapshot().state == CameraState::Backoff
    })
    .await;
    cam.stop().await;
    assert!(failed, "{:?}", status.snapshot());
    status.snapshot().last_error.unwrap_or_default()
}

/// Takes frames like a detector that does nothing, until `cancel`; bounded by it.
fn no_op_detector(
    frames: Arc<LatestFrames>,
    cancel: CancellationToken,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !cancel.is_cancelled() {
            let _ = frames.take(Duration::from_millis(100));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_are_added_changed_and_removed_while_others_keep_streaming() {
    let _serial = SERIAL.lock().await;
    let server = RtspClipServer::start(&clip(), 0).unwrap();
    let frames = Arc::new(LatestFrames::new());
    let cancel = CancellationToken::new();
    let detector = no_op_detector(frames.clone(), cancel.clone());
    let cams = Arc::new(Cameras::new(opts(), frames.clone(), cancel.child_token()));
    let mut a = camera(&server.url(), 5.0);
    a.name = "a".into();
    let mut b = camera("testsrc://", 2.0);
    b.name = "b".into();
    cams.add(a.clone()).unwrap();
    cams.add(b.clone()).unwrap();
    assert!(matches!(cams.add(a.clone()), Err(VideoError::Exists(_))));
    let streaming = |n: &str| {
        cams.snapshot(n)
            .is_some_and(|s| s.state == CameraState::Streaming)
    };
    assert!(wait_until(Duration::from_secs(20), || streaming("a") && streaming("b")).await);

    // Status: the clip arrives at its 10 fps, the detector takes a's frames while they are
    // fresh, and the latest frame is a JPEG at the camera's own size.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let s = cams.snapshot("a").unwrap();
    assert!(
        (8.0..=12.0).contains(&s.fps),
        "measured fps {} (clip is 10 fps)",
        s.fps
    );
    assert!(s.frames_detected >= 20, "{s:?}");
    // One frame may be waiting, or have arrived between the two counters' reads.
    assert!(
        (s.frames_detected + s.frames_skipped).abs_diff(s.frames_sampled) <= 1,
        "every sampled frame is taken or skipped: {s:?}"
    );
    let age = s
        .frame_age_ms
        .expect("frame age after the detector took a frame");
    assert!(
        age < 500.0,
        "a no-op detector takes frames at once, got {age} ms"
    );
    let latest = cams.latest_frame("a").unwrap();
    let jpeg = watchpost::evidence::frame_jpeg(&latest, 80).unwrap();
    let img = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480));

    // Change a: restarted with the new rate; b never blinks.
    let b_before = cams.snapshot("b").unwrap();
    let mut a2 = a.clone();
    a2.detect_fps = 2.0;
    assert_eq!(cams.update(a2.clone()).unwrap(), Change::Restarted);
    assert_eq!(cams.update(b.clone()).unwrap(), Change::Unchanged);
    assert!(wait_until(Duration::from_secs(20), || streaming("a")).await);
    let a_start = cams.snapshot("a").unwrap();
    assert_eq!(a_start.sessions, 1, "a new camera object after the change");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let a_after = cams.snapshot("a").unwrap();
    let rate = (a_after.frames_sampled - a_start.frames_sampled) as f64 / 5.0;
    assert!(
        (1.4..=2.6).contains(&rate),
        "a sampled {rate}/s after the change to 2 fps"
    );
    let b_after = cams.snapshot("b").unwrap();
    assert_eq!(b_after.sessions, b_before.sessions, "b was restarted");
    assert_eq!(b_after.state, CameraState::Streaming);
    assert!(b_after.frames_received > b_before.frames_received + 20);

    // Apply a set without b: b removed, a untouched.
    let report = cams.apply(std::slice::from_ref(&a2)).unwrap();
    assert!(
        report.contains(&("b".to_string(), Change::Removed)),
        "{report:?}"
    );
    assert!(
        report.contains(&("a".to_string(), Change::Unchanged)),
        "{report:?}"
    );
    assert_eq!(cams.names(), vec!["a".to_string()]);
    assert!(matches!(
        cams.latest_frame("b"),
        Err(VideoError::Unknown(_))
    ));
    assert!(matches!(cams.remove("b"), Err(VideoError::Unknown(_))));
    assert_eq!(cams.snapshot("a").unwrap().sessions, 1);

    let stopper = cams.clone();
    let stopped = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || stopper.stop_all()),
    )
    .await;
    assert!(matches!(stopped, Ok(Ok(()))), "cameras did not stop");
    let last = cams.snapshots();
    assert_eq!(last.len(), 1, "the final status stays readable");
    assert_eq!(last[0].state, CameraState::Stopped);
    cancel.cancel();
    let _ = tokio::task::spawn_blocking(move || detector.join()).await;
}
