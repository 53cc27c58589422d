//! The int8 path: scripts/quantize-model.py (onnxruntime static quantization calibrated on real
//! frames) makes a model that watchpost loads and that agrees with the float model on every
//! fixture photo: each float box matched (same label) with IoU ≥ 0.85 and |Δscore| ≤ 0.05.
//! (On tract 0.23.9 it is slower than float, so it is not the default; docs/benchmarks.md.)

use crate::common::{data, repo, spec, PHOTOS};
use watchpost::detect::{iou, Detector};

#[test]
fn the_quantized_model_matches_float_on_every_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = dir.path().join("nanodet-416-int8.onnx");
    let out = std::process::Command::new("python3")
        .arg(repo().join("scripts/quantize-model.py"))
        .arg(repo().join("models/nanodet-416.onnx"))
        .arg(&int8)
        .output()
        .expect("python3 runs (scripts/setup installs onnx and onnxruntime)");
    assert!(
        out.status.success(),
        "quantize-model.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let float_size = std::fs::metadata(repo().join("models/nanodet-416.onnx"))
        .unwrap()
        .len();
    let int8_size = std::fs::metadata(&int8).unwrap().len();
    assert!(
        int8_size * 3 < float_size,
        "int8 weights: {int8_size} vs {float_size} bytes"
    );

    let mut float = Detector::load(&spec("nanodet-416.onnx")).unwrap();
    let mut q_spec = spec("nanodet-416.onnx");
    q_spec.model = int8;
    let mut quant = Detector::load(&q_spec).expect("tract loads the int8 model");
    let mut matched = 0;
    for photo in PHOTOS {
        let (f, _, _) = float.detect_file(&data(photo)).unwrap();
        let (q, _, _) = quant.detect_file(&data(photo)).unwrap();
        assert!(!f.is_empty(), "{photo}: float found nothing");
        for d in &f {
            let best = q
                .iter()
                .filter(|e| e.label == d.label)
                .map(|e| (iou(&d.bbox, &e.bbox), (d.confidence - e.confidence).abs()))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let Some((overlap, dscore)) = best else {
                panic!(
                    "{photo}: float {} {:.3} has no int8 box",
                    d.label, d.confidence
                );
            };
            assert!(
                overlap >= 0.85 && dscore <= 0.05,
                "{photo}: {} float {:.3} vs int8: IoU {overlap:.3}, Δscore {dscore:.3}",
                d.label,
                d.confidence
            );
            matched += 1;
        }
    }
    assert!(matched >= 18, "only {matched} float boxes compared");
}
