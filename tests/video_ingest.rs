//! The video room against GStreamer's own RTSP server: frames at the model's size, sampling
//! to detect_fps before conversion, and reconnecting after the camera goes away.

mod common;

use common::{clip, wait_until};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::config::{CameraConfig, Secret, Transport};
use watchpost::demo::RtspClipServer;
use watchpost::video::{spawn_camera, CameraState, CameraStatus, IngestOptions, LatestFrames};

fn camera(url: &str, fps: f64) -> CameraConfig {
    CameraConfig {
        name: "cam".into(),
        url: Secret::new(url),
        detect_fps: fps,
        transport: Transport::Tcp,
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
    tokio::task::spawn_blocking(move || t.join())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.snapshot().state, CameraState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_outage_then_reconnect() {
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
    tokio::task::spawn_blocking(move || t.join())
        .await
        .unwrap()
        .unwrap();
}
