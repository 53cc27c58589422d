//! `watchpost detect IMAGE`: the detector on one image, detections as JSON.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use watchpost::config::Config;
use watchpost::detect::{Detector, DetectorSpec};

pub fn detect(
    image: &Path,
    config: Option<&Path>,
    model: Option<PathBuf>,
    timing: Option<usize>,
) -> Result<ExitCode> {
    let spec = match config {
        Some(p) => DetectorSpec::from_config(&Config::load(p)?.model),
        None => DetectorSpec::bundled(model, None, 2),
    };
    let mut det = Detector::load(&spec)?;
    let (dets, w, h) = det.detect_file(image)?;
    if let Some(runs) = timing {
        print_timing(&mut det, image, runs.max(1))?;
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        label: &'a str,
        confidence: f64,
        #[serde(rename = "box")]
        bbox: [f64; 4],
    }
    let round = |v: f64, k: f64| (v * k).round() / k;
    let (w, h) = (w as f64, h as f64);
    let out: Vec<Out> = dets
        .iter()
        .map(|d| {
            let b = d.bbox.map(f64::from);
            Out {
                label: &d.label,
                confidence: round(d.confidence as f64, 1000.0),
                bbox: [b[0] * w, b[1] * h, b[2] * w, b[3] * h].map(|v| round(v, 10.0)),
            }
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// Median milliseconds per stage over `runs` detections of `image` (after the first, which
/// warms caches and the allocator), as a table on stderr.
fn print_timing(det: &mut Detector, image: &Path, runs: usize) -> Result<()> {
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        det.detect_file(image)?;
        all.push(det.last_timing());
    }
    let median = |f: fn(&watchpost::detect::StageTimes) -> f64| {
        let mut v: Vec<f64> = all.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (load, pre, model, post) = (
        median(|t| t.load_ms),
        median(|t| t.pre_ms),
        median(|t| t.model_ms),
        median(|t| t.post_ms),
    );
    eprintln!(
        "timing (median of {runs} runs, {} px, {} threads):",
        det.input_size(),
        det.threads()
    );
    for (stage, ms) in [
        ("load (decode + resize)", load),
        ("pre (normalise)", pre),
        ("model (tract)", model),
        ("post (decode + NMS)", post),
        ("total", load + pre + model + post),
    ] {
        eprintln!("  {stage:<24} {ms:>8.2} ms");
    }
    Ok(())
}
