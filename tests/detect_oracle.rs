//! The detector against the oracle in tests/data (made by the onnxruntime reference pipeline).

mod common;

use common::{bin, data, repo};
use watchpost::detect::{iou, Detection, Detector, DetectorSpec};

const PHOTOS: [&str; 6] = [
    "dog.jpg",
    "person.jpg",
    "horses.jpg",
    "giraffe.jpg",
    "eagle.jpg",
    "astronaut.png",
];

fn detector(size: usize) -> Detector {
    Detector::load(&DetectorSpec {
        model: repo().join("models/nanodet-416.onnx"),
        labels: repo().join("models/coco80.txt"),
        input_size: size,
        threads: 1,
        score_threshold: 0.35,
    })
    .expect("bundled model loads")
}

struct Expected {
    label: String,
    score: f32,
    bbox: [f32; 4],
    borderline: bool,
}

fn expected(photo: &str) -> (Vec<Expected>, f32, f32) {
    let stem = photo.rsplit_once('.').map(|(s, _)| s).unwrap_or(photo);
    let text = std::fs::read_to_string(data(&format!("{stem}.expected.json"))).expect("oracle");
    let v: serde_json::Value = serde_json::from_str(&text).expect("oracle json");
    let dets = v["detections"]
        .as_array()
        .expect("detections")
        .iter()
        .map(|d| Expected {
            label: d["label"].as_str().unwrap().to_string(),
            score: d["score"].as_f64().unwrap() as f32,
            bbox: std::array::from_fn(|i| d["box"][i].as_f64().unwrap() as f32),
            borderline: d["borderline"].as_bool().unwrap_or(false),
        })
        .collect();
    (
        dets,
        v["width"].as_f64().unwrap() as f32,
        v["height"].as_f64().unwrap() as f32,
    )
}

fn to_pixels(d: &Detection, w: f32, h: f32) -> [f32; 4] {
    [d.bbox[0] * w, d.bbox[1] * h, d.bbox[2] * w, d.bbox[3] * h]
}

/// Every non-borderline expected box is matched (same label, IoU, score), and every
/// detection at or above 0.40 corresponds to an expected one.
fn check(photo: &str, got: &[Detection], min_iou: f32, max_dscore: f32) {
    let (want, w, h) = expected(photo);
    for e in want.iter().filter(|e| !e.borderline) {
        let best = got
            .iter()
            .filter(|d| d.label == e.label)
            .map(|d| (iou(&to_pixels(d, w, h), &e.bbox), d.confidence))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let Some((i, score)) = best else {
            panic!(
                "{photo}: expected {} {:.3} not found; got {got:?}",
                e.label, e.score
            )
        };
        assert!(i >= min_iou, "{photo}: {} IoU {i:.3} < {min_iou}", e.label);
        assert!(
            (score - e.score).abs() <= max_dscore,
            "{photo}: {} score {score:.3} vs expected {:.3}",
            e.label,
            e.score
        );
    }
    for d in got.iter().filter(|d| d.confidence >= 0.40) {
        let known = want
            .iter()
            .any(|e| e.label == d.label && iou(&to_pixels(d, w, h), &e.bbox) >= 0.5);
        assert!(known, "{photo}: extra detection above 0.40: {d:?}");
    }
}

#[test]
fn photos_match_the_oracle_from_the_original_files() {
    let mut det = detector(416);
    for photo in PHOTOS {
        let (got, w, h) = det.detect_file(&data(photo)).expect("detects");
        let (_, ew, eh) = expected(photo);
        assert_eq!((w as f32, h as f32), (ew, eh), "{photo}: image size");
        check(photo, &got, 0.9, 0.02);
    }
}

#[test]
fn network_inputs_match_the_oracle_tightly() {
    // The .416.png files are the reference's exact resized input: no resize differences left.
    let mut det = detector(416);
    for photo in PHOTOS {
        let stem = photo.rsplit_once('.').unwrap().0;
        let img = image::open(data(&format!("{stem}.416.png")))
            .expect("png")
            .to_rgb8();
        let got = det.detect_rgb(img.as_raw()).expect("detects");
        check(photo, &got, 0.98, 0.005);
    }
}

#[test]
fn input_size_320_still_finds_the_main_objects() {
    let mut det = detector(320);
    let (got, _, _) = det.detect_file(&data("dog.jpg")).expect("detects at 320");
    for label in ["bicycle", "dog"] {
        assert!(
            got.iter().any(|d| d.label == label),
            "320: no {label} in {got:?}"
        );
    }
}

#[test]
fn cli_detect_prints_json_in_image_pixels() {
    let out = std::process::Command::new(bin())
        .arg("detect")
        .arg(data("dog.jpg"))
        .output()
        .expect("run watchpost detect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let arr = v.as_array().expect("array");
    let bike = arr
        .iter()
        .find(|d| d["label"] == "bicycle")
        .expect("bicycle");
    let b: Vec<f64> = bike["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let want = [108.1, 127.5, 571.1, 424.5];
    for (g, w) in b.iter().zip(want) {
        assert!((g - w).abs() < 15.0, "bicycle box {b:?} vs {want:?}");
    }
    assert!((bike["confidence"].as_f64().unwrap() - 0.684).abs() <= 0.02);
}

#[test]
fn corrupt_model_and_missing_image_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.onnx");
    let good = std::fs::read(repo().join("models/nanodet-416.onnx")).unwrap();
    std::fs::write(&bad, &good[..good.len() / 3]).unwrap();
    let err = Detector::load(&DetectorSpec {
        model: bad.clone(),
        labels: repo().join("models/coco80.txt"),
        input_size: 416,
        threads: 1,
        score_threshold: 0.35,
    })
    .err()
    .expect("a truncated model must not load");
    assert!(err.to_string().contains("broken.onnx"), "{err}");

    let out = std::process::Command::new(bin())
        .args(["detect", "/nonexistent/photo.jpg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("/nonexistent/photo.jpg"), "{msg}");
}
