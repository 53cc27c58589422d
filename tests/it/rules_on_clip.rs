//! Rules, tracker and evidence on the real clip through the real detector, with a fake clock
//! stepping 100 ms per frame (the clip is 10 fps).

use crate::common;
use crate::common::{clip, repo};
use chrono::{TimeZone, Utc};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use watchpost::clock::{Clock, FakeClock};
use watchpost::config::{Config, SnapshotConfig};
use watchpost::detect::{Detection, Detector};
use watchpost::evidence::SnapshotStore;
use watchpost::rules::{Engine, HitKind, RuleHit};
use watchpost::video::{decode_file, Frame};

/// Every frame of the clip and its detections, computed once for all tests here.
fn clip_detections() -> &'static (Vec<Frame>, Vec<Vec<Detection>>) {
    static CACHE: OnceLock<(Vec<Frame>, Vec<Vec<Detection>>)> = OnceLock::new();
    CACHE.get_or_init(|| {
        let frames = decode_file(&clip(), 416).expect("clip decodes");
        let mut det = Detector::load(&common::spec("nanodet-416.onnx")).expect("model");
        let dets = frames
            .iter()
            .map(|f| det.detect_rgb(&f.rgb).expect("detect"))
            .collect();
        (frames, dets)
    })
}

fn engine(rules: &str) -> (Engine, FakeClock) {
    let text = format!(
        "{rules}\n[[sink]]\nname = \"s\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"whsec_c2VjcmV0\"\n"
    );
    let config = Config::from_toml(&text, Path::new("rules.toml"), &repo())
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = FakeClock::new(Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
    (
        Engine::from_config(&config, Arc::new(clock.clone())).unwrap(),
        clock,
    )
}

/// Runs the clip `loops` times through the engine; returns (frame index, hit) pairs.
fn run(engine: &mut Engine, clock: &FakeClock, loops: usize) -> Vec<(usize, RuleHit)> {
    let (_, dets) = clip_detections();
    let cam: Arc<str> = "yard".into();
    let mut out = Vec::new();
    for _ in 0..loops {
        for (i, d) in dets.iter().enumerate() {
            out.extend(
                engine
                    .evaluate(&cam, clock.now(), d)
                    .into_iter()
                    .map(|h| (i, h)),
            );
            clock.advance(Duration::from_millis(100));
        }
    }
    out
}

#[test]
fn decoded_frames_match_the_clip() {
    let (frames, _) = clip_detections();
    assert_eq!(frames.len(), 100);
    assert_eq!(
        (frames[0].source_width, frames[0].source_height),
        (640, 480)
    );
    assert!(frames.iter().all(|f| f.rgb.len() == 416 * 416 * 3));
}

#[test]
fn person_with_cooldown_60_fires_once_in_the_person_segment() {
    let (mut e, clock) = engine("[[rule]]\nname = \"person\"\nlabels = [\"person\"]\nmin_confidence = 0.5\ncooldown_seconds = 60\nemit_ended = true");
    let hits = run(&mut e, &clock, 1);
    let fired: Vec<_> = hits
        .iter()
        .filter(|(_, h)| h.kind == HitKind::Fired)
        .collect();
    assert_eq!(
        fired.len(),
        1,
        "{:?}",
        hits.iter().map(|(i, h)| (i, &h.kind)).collect::<Vec<_>>()
    );
    let (frame, hit) = fired[0];
    assert!(
        *frame < 20,
        "fired on frame {frame}, outside the person segment (0-19)"
    );
    assert_eq!(hit.label, "person");
    // The incident ends once the person has left (segment 2 starts at frame 20).
    let ended: Vec<_> = hits
        .iter()
        .filter(|(_, h)| matches!(h.kind, HitKind::Ended { .. }))
        .collect();
    assert_eq!(ended.len(), 1);
    assert!(
        (20..30).contains(&ended[0].0),
        "ended on frame {}",
        ended[0].0
    );
}

#[test]
fn tracker_keeps_one_id_for_the_person() {
    let (mut e, clock) = engine("[[rule]]\nname = \"person\"\nlabels = [\"person\"]");
    let (_, dets) = clip_detections();
    let cam: Arc<str> = "yard".into();
    let mut ids = BTreeSet::new();
    for d in &dets[..20] {
        e.evaluate(&cam, clock.now(), d);
        ids.extend(
            e.tracks("yard")
                .iter()
                .filter(|t| t.confirmed && t.label == "person")
                .map(|t| t.id),
        );
        clock.advance(Duration::from_millis(100));
    }
    assert_eq!(ids.len(), 1, "person track ids over the segment: {ids:?}");
}

#[test]
fn zones_see_only_objects_standing_inside() {
    // The person stands left of centre (x 0.29-0.44); the zebra right of it (x 0.57-0.75).
    let left = "[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]";
    let right = "[[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]";
    let rule = |zone: &str, label: &str| {
        format!(
            "[[rule]]\nname = \"r\"\nlabels = [\"{label}\"]\nzone = {zone}\ncooldown_seconds = 60"
        )
    };
    let count = |toml: String| {
        let (mut e, clock) = engine(&toml);
        run(&mut e, &clock, 1).len()
    };
    assert_eq!(count(rule(left, "person")), 1);
    assert_eq!(count(rule(right, "person")), 0);
    assert_eq!(count(rule(right, "zebra")), 1);
    assert_eq!(count(rule(left, "zebra")), 0);
}

#[test]
fn snapshots_decode_at_frame_size_and_retention_keeps_the_newest() {
    let (frames, _) = clip_detections();
    let (mut e, clock) = engine("[[rule]]\nname = \"any-person\"\nlabels = [\"person\"]\ncooldown_seconds = 0\nzone = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]");
    let hits = run(&mut e, &clock, 1);
    let (frame_idx, hit) = &hits[0];
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(
        dir.path(),
        &SnapshotConfig {
            enabled: true,
            max_count: 3,
            max_mb: 100.0,
            quality: 80,
        },
    )
    .unwrap();
    let id = store.save(&frames[*frame_idx], hit).unwrap();
    let jpeg = store.read(&id).unwrap();
    let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).expect("a JPEG");
    assert_eq!((img.width(), img.height()), (640, 480));
    // The person's box is drawn: pixels on its left edge take the track colour.
    let b = hit.objects[0].bbox;
    let (x, y) = (
        (b[0] * 640.0) as u32,
        (((b[1] + b[3]) / 2.0) * 480.0) as u32,
    );
    let px = img.to_rgb8().get_pixel(x, y).0;
    assert!(
        px.iter().any(|&c| c > 200),
        "box edge not drawn at ({x},{y}): {px:?}"
    );

    // Retention: five more alerts later, only the newest three files remain.
    let mut ids = vec![id];
    for _ in 0..5 {
        clock.advance(Duration::from_secs(1));
        let mut h = hit.clone();
        h.alert_id = ulid::Ulid::from_datetime(clock.now().into());
        ids.push(store.save(&frames[*frame_idx], &h).unwrap());
    }
    let left: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let want: BTreeSet<String> = ids[3..].iter().map(|i| format!("{i}.jpg")).collect();
    assert_eq!(left, want);

    // Byte bound: a budget of two snapshots keeps the newest two.
    let size = jpeg.len() as f64;
    let small = SnapshotStore::open(
        dir.path(),
        &SnapshotConfig {
            enabled: true,
            max_count: 100,
            max_mb: 2.5 * size / 1_048_576.0,
            quality: 80,
        },
    )
    .unwrap();
    assert_eq!(small.enforce_retention().unwrap(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    assert!(
        store.path("../../etc/passwd").is_err(),
        "ids cannot walk out of the folder"
    );
}

#[test]
fn the_same_rules_fire_on_the_person_segment_with_either_model() {
    for model in ["nanodet-416.onnx", "ssdlite-mnv2-300.onnx"] {
        let mut det = Detector::load(&common::spec(model)).expect("model");
        let frames = decode_file(&clip(), det.input_size() as u32).expect("clip decodes");
        let (mut e, clock) = engine("[[rule]]\nname = \"person\"\nlabels = [\"person\"]\nmin_confidence = 0.5\ncooldown_seconds = 60");
        let cam: Arc<str> = "yard".into();
        let mut fired = Vec::new();
        // The person segment and the next second, which has no person.
        for (i, f) in frames[..30].iter().enumerate() {
            let d = det.detect_rgb(&f.rgb).expect("detect");
            fired.extend(
                e.evaluate(&cam, clock.now(), &d)
                    .into_iter()
                    .map(|h| (i, h.label)),
            );
            clock.advance(Duration::from_millis(100));
        }
        assert_eq!(fired.len(), 1, "{model}: {fired:?}");
        assert!(
            fired[0].0 < 20 && fired[0].1 == "person",
            "{model}: {fired:?}"
        );
    }
}
