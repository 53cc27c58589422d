//! The detector thread: frames from the hand-off → class filter and motion gate → model →
//! rules → hits for the committer; model and rule switches applied between two frames.

use super::hand_off::HitQueue;
use crate::clock::Clock;
use crate::config::Config;
use crate::detect::{DetectError, Detector, DetectorSpec, MotionGate};
use crate::evidence::SnapshotStore;
use crate::rules::{Engine, HitKind};
use crate::telemetry::{Counters, Sighting};
use crate::video::LatestFrames;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Per camera, the classes its rules can use; `None` where some rule takes any label.
pub(super) type ClassFilters = HashMap<Arc<str>, Option<Vec<bool>>>;

pub(super) fn class_filters(config: &Config, detector: &Detector) -> ClassFilters {
    config
        .cameras
        .iter()
        .map(|cam| {
            let rules: Vec<_> = config
                .rules
                .iter()
                .filter(|r| r.enabled)
                .filter(|r| r.cameras.as_ref().is_none_or(|c| c.contains(&cam.name)))
                .collect();
            let filter = (!rules.iter().any(|r| r.labels.is_empty())).then(|| {
                detector.class_filter(
                    rules
                        .iter()
                        .flat_map(|r| r.labels.iter().map(String::as_str)),
                )
            });
            (Arc::from(cam.name.as_str()), filter)
        })
        .collect()
}

/// One motion gate per camera that asks for it.
pub(super) fn motion_gates(config: &Config) -> HashMap<Arc<str>, MotionGate> {
    config
        .cameras
        .iter()
        .filter_map(|c| {
            let m = c.motion.clone().filter(|m| m.enabled)?;
            Some((Arc::from(c.name.as_str()), MotionGate::new(m)))
        })
        .collect()
}

/// Everything the detector thread owns.
pub(super) struct DetectStage {
    pub(super) detector: Detector,
    pub(super) filters: ClassFilters,
    pub(super) engine: Engine,
    pub(super) config: Config,
    pub(super) switch: Option<mpsc::Receiver<DetectorSpec>>,
    pub(super) rules: Option<mpsc::Receiver<Config>>,
    pub(super) clock: Arc<dyn Clock>,
}

pub(super) type Loading =
    Arc<parking_lot::Mutex<Option<Result<(Detector, DetectorSpec), DetectError>>>>;

pub(super) fn detect_loop(
    DetectStage {
        mut detector,
        mut filters,
        mut engine,
        mut config,
        switch,
        rules,
        clock,
    }: DetectStage,
    snapshots: Option<&SnapshotStore>,
    frames: &LatestFrames,
    counters: &Counters,
    hits: &HitQueue,
    cancel: &CancellationToken,
) {
    let loading: Loading = Arc::default();
    let mut gates = motion_gates(&config);
    while !cancel.is_cancelled() {
        counters.detector_beat.beat();
        if let Some(new) = rules.as_ref().and_then(|rx| rx.try_iter().last()) {
            match Engine::with_counts(&new, clock.clone(), engine.counts().clone()) {
                Ok(e) => {
                    engine = e;
                    filters = class_filters(&new, &detector);
                    gates = motion_gates(&new);
                    config = new;
                    tracing::info!(rules = config.rules.len(), "rules applied live");
                }
                Err(e) => {
                    tracing::error!(error = %e, "new rules refused; keeping the running ones")
                }
            }
        }
        if let Some(spec) = switch.as_ref().and_then(|rx| rx.try_recv().ok()) {
            tracing::info!(model = %spec.model.display(), "loading a new model beside the running one");
            let slot = loading.clone();
            let spawned = std::thread::Builder::new()
                .name("model-loader".into())
                .spawn(move || {
                    let result = Detector::load(&spec).map(|d| (d, spec));
                    *slot.lock() = Some(result);
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the model loader; keeping the current model");
            }
        }
        match loading.lock().take() {
            Some(Ok((new, spec))) => {
                detector = new;
                filters = class_filters(&config, &detector);
                counters.model_switches.fetch_add(1, Ordering::Relaxed);
                *counters.model.lock() = spec.model.display().to_string();
                tracing::info!(model = %spec.model.display(), kind = detector.kind().name(), "model switched");
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "new model failed to load; keeping the current one")
            }
            None => {}
        }
        let Some(frame) = frames.take(Duration::from_millis(200)) else {
            // No frame: the clock's side of the lines (reports, resets, occupancy) still runs.
            for hit in engine.tick() {
                hits.push(hit);
            }
            if let Some(c) = engine.counts().take_changed() {
                hits.push_counts(c);
            }
            continue;
        };
        if let Some(gate) = gates.get_mut(&frame.camera) {
            if !gate.check(&frame).runs_model() {
                *counters
                    .frames_gated
                    .lock()
                    .entry(frame.camera.to_string())
                    .or_default() += 1;
                continue;
            }
        }
        let started = Instant::now();
        let wanted = filters.get(&frame.camera).and_then(|f| f.as_deref());
        let size = detector.input_size() as u32;
        // After a model switch, cameras still deliver the old size until they reconnect.
        let resized;
        let rgb: &[u8] = if frame.size == size {
            &frame.rgb
        } else {
            match crate::detect::resize_rgb(&frame.rgb, frame.size, frame.size, size) {
                Ok(r) => {
                    resized = r;
                    &resized
                }
                Err(e) => {
                    tracing::error!(camera = %frame.camera, error = %e, "cannot resize frame for the model");
                    continue;
                }
            }
        };
        let detections = match detector.detect_rgb_filtered(rgb, wanted) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(camera = %frame.camera, error = %e, "detector failed on a frame");
                continue;
            }
        };
        let took = started.elapsed();
        counters
            .detect_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        counters.inference.observe(took.as_secs_f64());
        counters.frames_detected.fetch_add(1, Ordering::Relaxed);
        let hits_of_frame = engine.evaluate(&frame.camera, frame.captured_at, &detections);
        let seen: Vec<Sighting> = engine
            .tracks(&frame.camera)
            .iter()
            .filter(|t| t.confirmed && t.misses == 0)
            .map(|t| Sighting {
                track_id: t.id,
                label: t.label.clone(),
                confidence: t.median_score(),
                bbox: t.bbox,
            })
            .collect();
        counters
            .live
            .lock()
            .entry(frame.camera.to_string())
            .or_default()
            .record(took, seen);
        explain_watched(&engine, &frame.camera, counters);
        for mut hit in hits_of_frame {
            if let (Some(store), HitKind::Fired) = (snapshots, &hit.kind) {
                // Evidence is best effort: an alert without its picture is still an alert.
                match store.save(&frame, &hit) {
                    Ok(id) => hit.snapshot = Some(id),
                    Err(e) => {
                        tracing::error!(alert_id = %hit.alert_id, error = %e, "snapshot not stored")
                    }
                }
            }
            hits.push(hit);
        }
        if let Some(c) = engine.counts().take_changed() {
            hits.push_counts(c);
        }
    }
}

/// Fills in the dry-runs someone is watching on this camera; forgets unwatched ones.
fn explain_watched(engine: &Engine, camera: &str, counters: &Counters) {
    let mut runs = counters.dry_runs.lock();
    runs.retain(|_, r| r.asked.elapsed() < crate::telemetry::DryRun::KEEP);
    for ((rule, cam), run) in runs.iter_mut().filter(|((_, c), _)| c == camera) {
        let answer = engine
            .explain(rule, cam)
            .ok_or_else(|| format!("no rule named \"{rule}\""));
        run.answer = Some((Instant::now(), answer));
    }
}
