//! The motion gate on real footage: a still photo encoded to H.264 (so every frame carries
//! real codec noise) is a static scene, and a person cut from a real photo walks into it.

use crate::common::{data, write_config, PERSON_RULE};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::app::{self, RunOptions};
use watchpost::config::{Config, MotionConfig};
use watchpost::detect::{GateDecision, MotionGate};
use watchpost::video::{decode_file, Frame};

/// 12 s of `dog.jpg` at 10 fps, H.264 at a low bitrate (noisy), keyframe every second.
fn still_clip(dir: &Path) -> PathBuf {
    let out = dir.join("still.mp4");
    let status = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(format!(
            "filesrc location={} ! jpegdec ! videoconvert ! videoscale ! video/x-raw,width=640,height=480 \
             ! imagefreeze num-buffers=120 ! video/x-raw,framerate=10/1 ! videoconvert \
             ! x264enc bitrate=250 key-int-max=10 bframes=0 ! h264parse ! mp4mux ! filesink location={}",
            data("dog.jpg").display(),
            out.display()
        )
        .split_whitespace())
        .status()
        .expect("gst-launch-1.0 runs (scripts/setup installs gstreamer1.0-tools)");
    assert!(status.success(), "encoding the still clip failed");
    out
}

/// Every 5th frame (2 fps), timed as if captured live.
fn at_2fps(frames: Vec<Frame>) -> Vec<Frame> {
    let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
    frames
        .into_iter()
        .step_by(5)
        .enumerate()
        .map(|(i, mut f)| {
            f.captured_at = t0 + chrono::Duration::milliseconds(i as i64 * 500);
            f
        })
        .collect()
}

/// The person in `person.jpg` (box from its oracle), 64×150 px, RGB.
fn person_cutout() -> image::RgbImage {
    let img = image::open(data("person.jpg")).unwrap().to_rgb8();
    // person.expected.json: person at [187.4, 100.4, 279.3, 377.2] in the 640×424 photo.
    let crop = image::imageops::crop_imm(&img, 187, 100, 92, 277).to_image();
    image::imageops::resize(&crop, 64, 150, image::imageops::FilterType::Triangle)
}

fn paste(frame: &Frame, cut: &image::RgbImage, x0: u32, y0: u32) -> Frame {
    let s = frame.size;
    let mut rgb = frame.rgb.to_vec();
    for (x, y, p) in cut.enumerate_pixels() {
        let (fx, fy) = (x0 + x, y0 + y);
        if fx < s && fy < s {
            let i = ((fy * s + fx) * 3) as usize;
            rgb[i..i + 3].copy_from_slice(&p.0);
        }
    }
    Frame {
        rgb: Arc::from(rgb),
        ..frame.clone()
    }
}

#[test]
fn static_footage_runs_the_model_once_per_max_skip_and_an_entering_person_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let frames = at_2fps(decode_file(&still_clip(dir.path()), 416).unwrap());
    assert_eq!(frames.len(), 24, "12 s at 2 fps");
    let mut gate = MotionGate::new(MotionConfig::default());

    // Static: the first frame, then only the forced run every 5 s, codec noise or not.
    let decisions: Vec<GateDecision> = frames[..20].iter().map(|f| gate.check(f)).collect();
    let runs: Vec<(usize, GateDecision)> = decisions
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, d)| d.runs_model())
        .collect();
    assert_eq!(
        runs,
        vec![(0, GateDecision::First), (10, GateDecision::Forced)],
        "static scene: {decisions:?}"
    );

    // A person walks in at frame 20 (10.0 s) and keeps walking: the model runs on each of
    // those frames, the first one included.
    let cut = person_cutout();
    for (k, f) in frames[20..].iter().enumerate() {
        let moved = paste(f, &cut, 40 + 30 * k as u32, 200);
        assert_eq!(gate.check(&moved), GateDecision::Motion, "frame {}", 20 + k);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_counts_gated_frames_on_a_static_camera() {
    let dir = tempfile::tempdir().unwrap();
    let clip = still_clip(dir.path());
    let url = format!("file://{}", clip.display());
    let rules = format!("[camera.motion]\nmax_skip_seconds = 5\n\n{PERSON_RULE}");
    let path = write_config(dir.path(), &url, "http://127.0.0.1:9/", &rules);
    let mut config = Config::load(&path).expect("test config is valid");
    config.cameras[0].detect_fps = 2.0;
    let cancel = CancellationToken::new();
    let run = tokio::spawn(app::run(config, RunOptions::default(), cancel.clone()));
    tokio::time::sleep(Duration::from_secs(12)).await;
    cancel.cancel();
    let summary = run.await.unwrap().expect("pipeline ran");
    let sampled = summary.cameras[0].frames_sampled;
    assert!(
        sampled >= 18,
        "the camera delivered {sampled} frames in 12 s at 2 fps"
    );
    assert!(
        (2..=4).contains(&summary.frames_detected),
        "model runs on a static camera in ~12 s with max_skip 5 s: {summary:?}"
    );
    assert!(
        summary.frames_gated + summary.frames_detected + 2 >= sampled,
        "{summary:?}"
    );
    assert!(summary.frames_gated >= 14, "{summary:?}");
}
