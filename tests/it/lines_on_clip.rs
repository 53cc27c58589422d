//! Line crossing and counting on footage through the real detector: the composed clips of
//! `scripts/make-crossing-clips` (walkers cut from the fixture photos), a fake clock stepping
//! 100 ms per frame (the clips are 10 fps), and the truth the script wrote beside them.

use crate::common::{self, repo};
use chrono::{TimeZone, Utc};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use watchpost::clock::{Clock, FakeClock};
use watchpost::config::Config;
use watchpost::detect::{Detection, Detector};
use watchpost::rules::{Engine, HitKind, LineCounts, RuleHit};
use watchpost::video::decode_file;

fn media(name: &str) -> std::path::PathBuf {
    repo().join("models/media").join(name)
}

fn truth() -> serde_json::Value {
    let text = std::fs::read_to_string(media("crossing-clips.expected.json")).expect("truth");
    serde_json::from_str(&text).expect("truth is JSON")
}

/// The detections of every `step`-th frame (NanoDet, the model the oracle fixtures use).
fn detections(clip: &str, step: usize) -> Vec<Vec<Detection>> {
    let frames = decode_file(&media(clip), 416).expect("clip decodes");
    let mut det = Detector::load(&common::spec("nanodet-416.onnx")).expect("model");
    frames
        .iter()
        .step_by(step)
        .map(|f| det.detect_rgb(&f.rgb).expect("detect"))
        .collect()
}

/// A line down the middle drawn `points` ("down" or "up") with `in`, and a crossing rule.
fn engine(points: &str, in_side: &str) -> (Engine, FakeClock) {
    let text = format!(
        r#"[[line]]
name = "door"
points = {points}
in = "{in_side}"

[[rule]]
name = "crossing"
crosses = "door"
labels = ["person"]
cooldown_seconds = 0

[[sink]]
name = "s"
kind = "webhook"
url = "http://127.0.0.1:9/"
secret = "whsec_c2VjcmV0"
"#
    );
    let config = Config::from_toml(&text, Path::new("lines.toml"), &repo())
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = FakeClock::new(Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap());
    let e = Engine::from_config(&config, Arc::new(clock.clone())).expect("engine");
    (e, clock)
}

const DOWN: &str = "[[0.5, 0.02], [0.5, 0.98]]";
const UP: &str = "[[0.5, 0.98], [0.5, 0.02]]";

/// Runs the frames through the engine, `ms` apart; returns (index, crossing alert).
fn run(
    e: &mut Engine,
    clock: &FakeClock,
    dets: &[Vec<Detection>],
    ms: u64,
) -> Vec<(usize, RuleHit)> {
    let cam: Arc<str> = "yard".into();
    let mut out = Vec::new();
    for (i, d) in dets.iter().enumerate() {
        for h in e.evaluate(&cam, clock.now(), d) {
            if h.kind == HitKind::Fired {
                out.push((i, h));
            }
        }
        clock.advance(Duration::from_millis(ms));
    }
    out
}

fn door(e: &Engine) -> LineCounts {
    e.counts()
        .snapshot()
        .into_iter()
        .find(|c| c.line == "door")
        .expect("the door's counts")
}

#[test]
fn the_walking_person_crosses_once_per_pass_in_the_expected_direction() {
    let dets = detections("crossing-walk.mp4", 1);
    let truth = truth();
    let walks = truth["crossing-walk.mp4"]["walks"]
        .as_array()
        .expect("walks");
    // Drawn downwards, the line's left is the frame's right: walking left to right on screen
    // goes from its right to its left, "in" for in = "right-to-left".
    for (points, in_side, first, second) in [
        (DOWN, "right-to-left", "in", "out"),
        (DOWN, "left-to-right", "out", "in"),
        (UP, "left-to-right", "in", "out"),
    ] {
        let (mut e, clock) = engine(points, in_side);
        let hits = run(&mut e, &clock, &dets, 100);
        let seen: Vec<(usize, &str)> = hits
            .iter()
            .map(|(i, h)| {
                let line = h.line.as_ref().expect("a crossing names its line");
                assert_eq!(line.name, "door");
                (*i, line.direction.as_deref().unwrap_or("?"))
            })
            .collect();
        assert_eq!(
            seen.iter().map(|s| s.1).collect::<Vec<_>>(),
            [first, second],
            "{points} in={in_side}: {seen:?}"
        );
        // Each when the walker's feet pass the middle (the margin adds a few frames).
        for ((frame, _), walk) in seen.iter().zip(walks) {
            let middle = walk["crosses_middle_at_frame"].as_f64().expect("frame");
            assert!(
                (*frame as f64 - middle).abs() <= 6.0,
                "crossed at frame {frame}, the walker's middle is at {middle}"
            );
        }
        // Out before in leaves one inside: an "out" at zero stays at zero.
        let c = door(&e);
        let p = &c.labels["person"];
        let inside = u64::from(first == "out");
        assert_eq!(
            (p.total_in, p.total_out, p.occupancy),
            (1, 1, inside),
            "{c:?}"
        );
    }
}

#[test]
fn several_walkers_in_two_lanes_are_counted_within_one_of_the_truth() {
    // Every second frame: 5 detector fps, the daemon's default, and half the test's time.
    let dets = detections("crossing-crowd.mp4", 2);
    let truth = &truth()["crossing-crowd.mp4"];
    let (want_in, want_out) = (
        truth["left_to_right"].as_u64().expect("n"),
        truth["right_to_left"].as_u64().expect("n"),
    );
    let (mut e, clock) = engine(DOWN, "right-to-left");
    let hits = run(&mut e, &clock, &dets, 200);
    let c = door(&e);
    let (got_in, got_out): (u64, u64) = c
        .labels
        .values()
        .fold((0, 0), |(i, o), t| (i + t.total_in, o + t.total_out));
    eprintln!("crowd: in {got_in} (truth {want_in}), out {got_out} (truth {want_out}); {c:?}");
    assert!(
        got_in.abs_diff(want_in) <= 1,
        "in {got_in}, truth {want_in}"
    );
    assert!(
        got_out.abs_diff(want_out) <= 1,
        "out {got_out}, truth {want_out}"
    );
    // One alert per counted person crossing, each in its direction.
    let p = &c.labels["person"];
    assert_eq!(hits.len() as u64, p.total_in + p.total_out, "{hits:?}");
    assert_eq!(p.occupancy, p.total_in.saturating_sub(p.total_out));
}
