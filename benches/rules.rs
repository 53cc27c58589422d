//! Rules cost per frame (20 rules x 10 tracks; 20 lines x 30 tracks) next to the detector's
//! cost on one frame, measured in the same run: `cargo bench --bench rules`.

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use watchpost::clock::{Clock, FakeClock};
use watchpost::config::Config;
use watchpost::detect::{Detection, Detector, DetectorSpec, ModelKind};
use watchpost::rules::Engine;

const LABELS: [&str; 5] = ["person", "car", "truck", "bicycle", "dog"];

fn config() -> Config {
    let mut text = String::new();
    for z in 0..4 {
        let x = z as f64 * 0.25;
        text += &format!(
            "[[zone]]\nname = \"z{z}\"\npolygon = [[{x}, 0.0], [{}, 0.0], [{}, 1.0], [{x}, 1.0]]\n\n",
            (x + 0.3_f64).min(1.0),
            (x + 0.3_f64).min(1.0)
        );
    }
    for r in 0..20 {
        text += &format!(
            "[[rule]]\nname = \"r{r}\"\nlabels = [\"{}\"]\nzone = \"z{}\"\nmin_count = {}\ndwell_seconds = {}\ncooldown_seconds = 30\nemit_ended = true\n\n",
            LABELS[r % 5],
            r % 4,
            1 + r % 3,
            r % 2
        );
    }
    text += "[[sink]]\nname = \"s\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"whsec_c2VjcmV0\"\n";
    Config::from_toml(
        &text,
        Path::new("bench.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .expect("bench config")
}

/// Ten objects drifting slowly to the right, frame by frame.
fn frame(i: usize) -> Vec<Detection> {
    (0..10)
        .map(|k| {
            let x = ((k as f32 * 0.09) + i as f32 * 0.002) % 0.9;
            let y = 0.1 + (k % 3) as f32 * 0.25;
            Detection {
                class_id: k % 5,
                label: LABELS[k % 5].to_string(),
                confidence: 0.6 + (k as f32) * 0.03,
                bbox: [x, y, x + 0.08, y + 0.2],
            }
        })
        .collect()
}

/// 20 lines (polylines of 2 to 4 points, vertical and slanted, drawn both ways), each with a
/// crossing rule, and a report every minute.
fn lines_config() -> Config {
    let mut text = String::new();
    for l in 0..20 {
        let x = 0.05 + l as f64 * 0.045;
        let n = 2 + l % 3;
        let pts: Vec<String> = (0..n)
            .map(|k| {
                let y = 0.05 + 0.9 * k as f64 / (n - 1) as f64;
                let dx = if k % 2 == 1 { 0.02 } else { 0.0 };
                format!("[{:.3}, {y:.3}]", x + dx)
            })
            .collect();
        let pts = if l % 2 == 0 {
            pts
        } else {
            pts.into_iter().rev().collect()
        };
        text += &format!(
            "[[line]]\nname = \"l{l}\"\npoints = [{}]\nreport_minutes = 1\n\n[[rule]]\nname = \"cross{l}\"\ncrosses = \"l{l}\"\ncooldown_seconds = 0\n\n",
            pts.join(", ")
        );
    }
    text += "[[sink]]\nname = \"s\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"whsec_c2VjcmV0\"\n";
    Config::from_toml(
        &text,
        Path::new("bench-lines.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .expect("bench lines config")
}

/// Thirty people walking left and right across the frame at different speeds, so lines are
/// crossed on many frames.
fn walkers(i: usize) -> Vec<Detection> {
    (0..30)
        .map(|k| {
            let speed = 0.004 + (k % 5) as f32 * 0.001;
            let phase = (k as f32 * 0.031 + i as f32 * speed) % 1.8;
            let x = if phase < 0.9 { phase } else { 1.8 - phase };
            let y = 0.05 + (k % 6) as f32 * 0.12;
            Detection {
                class_id: 0,
                label: "person".to_string(),
                confidence: 0.8,
                bbox: [x, y, x + 0.08, y + 0.25],
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let clock = FakeClock::new(Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
    let mut engine = Engine::from_config(&config(), Arc::new(clock.clone())).expect("engine");
    let frames: Vec<Vec<Detection>> = (0..500).map(frame).collect();
    let cam: Arc<str> = "cam".into();
    let mut i = 0;
    c.bench_function("rules: 20 rules x 10 tracks, one frame", |b| {
        b.iter(|| {
            let hits = engine.evaluate(&cam, clock.now(), &frames[i % frames.len()]);
            clock.advance(Duration::from_millis(100));
            i += 1;
            hits
        })
    });

    let mut lines = Engine::from_config(&lines_config(), Arc::new(clock.clone())).expect("engine");
    let crowd: Vec<Vec<Detection>> = (0..500).map(walkers).collect();
    let mut j = 0;
    c.bench_function("lines: 20 lines x 30 tracks, one frame", |b| {
        b.iter(|| {
            let hits = lines.evaluate(&cam, clock.now(), &crowd[j % crowd.len()]);
            clock.advance(Duration::from_millis(100));
            j += 1;
            hits
        })
    });
    let crossed: u64 = lines
        .counts()
        .snapshot()
        .iter()
        .flat_map(|c| c.labels.values().map(|t| t.total_in + t.total_out))
        .sum();
    println!("lines bench: {crossed} crossings counted over {j} frames");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut det = Detector::load(&DetectorSpec {
        model: root.join("models/nanodet-416.onnx"),
        labels: root.join("models/coco80.txt"),
        kind: ModelKind::Nanodet,
        input_size: Some(416),
        threads: 1,
        score_threshold: None,
    })
    .expect("model");
    let img = image::open(root.join("tests/data/dog.416.png"))
        .expect("fixture")
        .to_rgb8();
    let mut g = c.benchmark_group("reference");
    g.sample_size(10);
    g.bench_function("detector: one 416 frame, 1 thread", |b| {
        b.iter(|| det.detect_rgb(img.as_raw()).expect("detect"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
