//! Wires the rooms into the running daemon and owns the shutdown order.
//!
//! Threads: one per camera (GStreamer), one detector (tract + rules), one committer (the
//! only writer of new alerts). Tokio runs the sink workers. Shutdown: cameras stop, the
//! detector finishes its frame, the committer commits everything the rules produced, sinks
//! get a short grace period to drain, then stop. Nothing committed is lost by stopping:
//! undelivered rows wait in the outbox for the next start.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::config::IncludeSnapshot;
use crate::deliver::{DeliverError, RetryPolicy, SinkSet, SinkSetParts};
use crate::detect::{DetectError, Detector, DetectorSpec, MotionGate};
use crate::evidence::{EvidenceError, SnapshotStore};
use crate::outbox::{
    alert_body, NewAlert, NewDelivery, Outbox, OutboxError, SharedOutbox, SnapshotField,
};
use crate::rules::{Engine, HitKind, RuleHit, RulesError};
use crate::switch::{ModelSwitch, RulesSwitch};
use crate::telemetry::Counters;
use crate::video::{self, Cameras, IngestOptions, LatestFrames, VideoError};
use base64::Engine as _;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Deliver(#[from] DeliverError),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    #[error("GStreamer: {0}")]
    Gstreamer(String),
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("{0}")]
    Task(String),
}

/// Knobs that are not in the config file (tests and the demo set them).
#[derive(Clone)]
pub struct RunOptions {
    pub clock: Arc<dyn Clock>,
    pub ingest: IngestOptions,
    /// After the last commit, how long sinks may keep draining before they stop.
    pub drain_timeout: Duration,
    /// Switches the detector's model while the pipeline runs.
    pub model_switch: ModelSwitch,
    pub rules_switch: RulesSwitch,
    /// The file the config came from: `config/set` writes the new one there.
    pub config_path: Option<std::path::PathBuf>,
    /// Where the web server listens once it does (`[web] listen` may say port 0).
    pub web_addr: Arc<parking_lot::Mutex<Option<std::net::SocketAddr>>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            ingest: IngestOptions::default(),
            drain_timeout: Duration::from_secs(5),
            model_switch: ModelSwitch::new(),
            rules_switch: RulesSwitch::new(),
            config_path: None,
            web_addr: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub frames_detected: u64,
    /// Frames the motion gate kept from the model (static scenes), over all cameras.
    pub frames_gated: u64,
    pub frames_skipped: u64,
    pub model: String,
    pub model_switches: u64,
    pub mean_detect_ms: f64,
    pub alerts_committed: u64,
    pub cameras: Vec<video::CameraSnapshot>,
}

/// Runs the pipeline until `cancel`, then shuts it down in order.
pub async fn run(
    config: Config,
    opts: RunOptions,
    cancel: CancellationToken,
) -> Result<Summary, AppError> {
    crate::init_gstreamer().map_err(|e| AppError::Gstreamer(e.to_string()))?;
    let outbox = SharedOutbox::new(Outbox::open(&config.outbox_path())?);
    let spec = DetectorSpec::from_config(&config.model);
    let detector = tokio::task::spawn_blocking(move || Detector::load(&spec))
        .await
        .map_err(|e| AppError::Task(format!("model loader failed: {e}")))??;
    let engine = Engine::from_config(&config, opts.clock.clone())?;
    let snapshots = if config.snapshots.enabled {
        Some(Arc::new(SnapshotStore::open(
            &config.snapshot_dir(),
            &config.snapshots,
        )?))
    } else {
        None
    };
    let stats = outbox.call(|o| o.stats()).await?;
    tracing::info!(
        outbox = %config.outbox_path().display(),
        pending = stats.pending,
        dead = stats.dead,
        model = %config.model.path.display(),
        "outbox open, model loaded"
    );
    crate::service::ready();

    let counters = Arc::new(Counters::default());
    *counters.model.lock() = config.model.path.display().to_string();
    let frames = Arc::new(LatestFrames::new());
    let mut ingest = opts.ingest.clone();
    ingest.size = detector.input_size() as u32;
    let cameras = Arc::new(Cameras::new(ingest, frames.clone(), cancel.child_token()));
    for cam in &config.cameras {
        cameras.add(cam.clone())?;
    }

    counters.detector_beat.beat();
    let supervisor = tokio::spawn(crate::service::supervise(
        crate::service::Watched {
            detector: counters.detector_beat.clone(),
            cameras: cameras.clone(),
            outbox: outbox.clone(),
        },
        cancel.clone(),
    ));

    let sinks = Arc::new(SinkSet::new(SinkSetParts {
        runtime: tokio::runtime::Handle::current(),
        outbox: outbox.clone(),
        policy: RetryPolicy::from_config(&config.delivery),
        clock: opts.clock.clone(),
        device: config.device.id.clone(),
        site: config.device.site.clone(),
        snapshots: snapshots.clone(),
        latency: counters.delivery_latency.clone(),
    }));
    sinks.apply(&config.sinks)?;

    let filters = class_filters(&config, &detector);
    let stage_config = config.clone();
    let switch_rx = opts.model_switch.take_receiver();
    let rules_rx = opts.rules_switch.take_receiver();
    let stage_clock = opts.clock.clone();
    let (hits_tx, hits_rx) = mpsc::channel::<RuleHit>();
    let detector_thread = {
        let (frames, counters, cancel, snaps) = (
            frames.clone(),
            counters.clone(),
            cancel.clone(),
            snapshots.clone(),
        );
        std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || {
                detect_loop(
                    DetectStage {
                        detector,
                        filters,
                        engine,
                        config: stage_config,
                        switch: switch_rx,
                        rules: rules_rx,
                        clock: stage_clock,
                    },
                    snaps.as_deref(),
                    &frames,
                    &counters,
                    &hits_tx,
                    &cancel,
                )
            })?
    };
    let committer_thread = {
        let (outbox, counters, sinks) = (outbox.clone(), counters.clone(), sinks.clone());
        let bodies = BodyMaker {
            device: config.device.id.clone(),
            site: config.device.site.clone(),
            sinks: sinks.clone(),
            snapshots: snapshots.clone(),
        };
        let limits = Limits {
            max_bytes: config.delivery.outbox_max_mb.saturating_mul(1024 * 1024),
            history: Duration::from_secs_f64(config.delivery.history_hours * 3600.0),
            dead_retention: Duration::from_secs_f64(config.delivery.max_age_hours * 3600.0),
        };
        std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || commit_loop(&hits_rx, &outbox, &counters, &sinks, &bodies, &limits))?
    };

    let telemetry = crate::telemetry::Telemetry {
        device: config.device.id.clone(),
        started: Instant::now(),
        cameras: cameras.clone(),
        counters: counters.clone(),
        outbox: outbox.clone(),
        sinks: sinks.clone(),
        model: config.model.path.display().to_string(),
        silence: config.health.clone(),
    };
    // The server and the fleet link stop after the pipeline, so `offline` is the last word.
    let control_cancel = CancellationToken::new();
    let live = match &opts.config_path {
        Some(path) => match crate::control::live::LiveConfig::open(
            path,
            &config.device.data_dir,
            cameras.clone(),
            sinks.clone(),
            opts.rules_switch.clone(),
            opts.model_switch.clone(),
        ) {
            Ok(l) => Some(Arc::new(l)),
            Err(e) => {
                tracing::error!(error = %e, "live configuration unavailable");
                None
            }
        },
        None => None,
    };
    if let Some(live) = &live {
        crate::control::live::reload_on_sighup(live.clone(), control_cancel.clone());
    }
    let web = match &config.web {
        Some(w) => Some(
            crate::control::web::start(
                w,
                &config.device.data_dir,
                &config.device.id,
                telemetry.clone(),
                live.clone(),
                snapshots.clone(),
                control_cancel.clone(),
            )
            .await?,
        ),
        None => None,
    };
    if let Some(w) = &web {
        *opts.web_addr.lock() = Some(w.addr);
    }
    let fleet = config
        .control
        .as_ref()
        .and_then(|c| c.mqtt.clone())
        .map(|m| {
            tokio::spawn(crate::control::fleet::run(
                m,
                config.device.id.clone(),
                telemetry.clone(),
                live.clone(),
                control_cancel.clone(),
            ))
        });

    cancel.cancelled().await;
    let _ = supervisor.await;
    tracing::info!("stopping: cameras, detector, committer, then sinks");
    crate::service::stopping();
    let stopping = cameras.clone();
    tokio::task::spawn_blocking(move || {
        stopping.stop_all();
        let _ = detector_thread.join();
        let _ = committer_thread.join();
    })
    .await
    .map_err(|e| AppError::Task(format!("shutdown failed: {e}")))?;

    let deadline = Instant::now() + opts.drain_timeout;
    while Instant::now() < deadline {
        if outbox.call(|o| o.stats()).await?.pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sinks.stop_all().await;
    control_cancel.cancel();
    if let Some(f) = fleet {
        match f.await {
            Ok(Err(e)) => tracing::error!(error = %e, "fleet link"),
            Err(e) => tracing::error!(error = %e, "fleet link task failed"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(w) = web {
        let _ = w.task.await;
    }
    let detected = counters.frames_detected.load(Ordering::Relaxed);
    let model_in_use = counters.model.lock().clone();
    let gated = counters.frames_gated.lock().values().sum();
    Ok(Summary {
        frames_detected: detected,
        frames_gated: gated,
        frames_skipped: frames.skipped(),
        model: model_in_use,
        model_switches: counters.model_switches.load(Ordering::Relaxed),
        mean_detect_ms: counters.detect_micros.load(Ordering::Relaxed) as f64
            / 1000.0
            / detected.max(1) as f64,
        alerts_committed: counters.alerts_committed.load(Ordering::Relaxed),
        cameras: cameras.snapshots(),
    })
}

/// Per camera, the classes its rules can use; `None` where some rule takes any label.
type ClassFilters = HashMap<Arc<str>, Option<Vec<bool>>>;

fn class_filters(config: &Config, detector: &Detector) -> ClassFilters {
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
fn motion_gates(config: &Config) -> HashMap<Arc<str>, MotionGate> {
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
struct DetectStage {
    detector: Detector,
    filters: ClassFilters,
    engine: Engine,
    config: Config,
    switch: Option<mpsc::Receiver<DetectorSpec>>,
    rules: Option<mpsc::Receiver<Config>>,
    clock: Arc<dyn Clock>,
}

type Loading = Arc<parking_lot::Mutex<Option<Result<(Detector, DetectorSpec), DetectError>>>>;

fn detect_loop(
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
    hits: &mpsc::Sender<RuleHit>,
    cancel: &CancellationToken,
) {
    let loading: Loading = Arc::default();
    let mut gates = motion_gates(&config);
    while !cancel.is_cancelled() {
        counters.detector_beat.beat();
        if let Some(new) = rules.as_ref().and_then(|rx| rx.try_iter().last()) {
            match Engine::from_config(&new, clock.clone()) {
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
        for mut hit in engine.evaluate(&frame.camera, frame.captured_at, &detections) {
            if let (Some(store), HitKind::Fired) = (snapshots, &hit.kind) {
                // Evidence is best effort: an alert without its picture is still an alert.
                match store.save(&frame, &hit) {
                    Ok(id) => hit.snapshot = Some(id),
                    Err(e) => {
                        tracing::error!(alert_id = %hit.alert_id, error = %e, "snapshot not stored")
                    }
                }
            }
            // The committer outlives this thread, so the channel is open while we run.
            if hits.send(hit).is_err() {
                tracing::error!("committer is gone; stopping detector");
                return;
            }
        }
    }
}

/// Builds each alert's body, and a sink's own body where its snapshot setting differs.
struct BodyMaker {
    device: String,
    site: String,
    sinks: Arc<SinkSet>,
    snapshots: Option<Arc<SnapshotStore>>,
}

impl BodyMaker {
    fn alert(&self, h: &RuleHit) -> NewAlert {
        let body = |field: SnapshotField<'_>| alert_body(h, &self.device, &self.site, field);
        let inline = || -> Option<String> {
            let store = self.snapshots.as_ref()?;
            let jpeg = store.read(h.snapshot.as_deref()?).ok()?;
            Some(base64::engine::general_purpose::STANDARD.encode(jpeg))
        };
        let mut inline_b64: Option<Option<String>> = None;
        let sinks = h
            .sinks
            .iter()
            .map(|sink| {
                let own = match self.sinks.include(sink) {
                    IncludeSnapshot::Reference => None,
                    _ if h.snapshot.is_none() => None,
                    IncludeSnapshot::None => Some(body(SnapshotField::Omit)),
                    IncludeSnapshot::Inline => inline_b64
                        .get_or_insert_with(inline)
                        .as_deref()
                        .map(|b64| body(SnapshotField::Inline(b64))),
                };
                NewDelivery {
                    sink: sink.clone(),
                    body: own,
                }
            })
            .collect();
        NewAlert {
            alert_id: h.alert_id.to_string(),
            created_at: h.fired_at,
            camera: h.camera.clone(),
            rule: h.rule.clone(),
            severity: h.severity.as_str().to_string(),
            body: body(SnapshotField::Reference),
            sinks,
        }
    }
}

/// The outbox's bounds, enforced by the committer after each commit.
struct Limits {
    max_bytes: u64,
    history: Duration,
    dead_retention: Duration,
}

/// The single writer: batches whatever the rules produced, commits, then wakes the sinks.
/// A failed commit is retried with the same batch; hits are never dropped here.
fn commit_loop(
    hits: &mpsc::Receiver<RuleHit>,
    outbox: &SharedOutbox,
    counters: &Counters,
    sinks: &SinkSet,
    bodies: &BodyMaker,
    limits: &Limits,
) {
    let mut last_drop_log: Option<Instant> = None;
    let mut last_history_pass: Option<Instant> = None;
    while let Ok(first) = hits.recv() {
        let mut batch = vec![first];
        batch.extend(hits.try_iter().take(255));
        let alerts: Vec<NewAlert> = batch.iter().map(|h| bodies.alert(h)).collect();
        let mut delay = Duration::from_millis(100);
        while let Err(e) = outbox.with(|o| o.commit(&alerts)) {
            tracing::error!(error = %e, alerts = alerts.len(), "commit failed; retrying (alerts kept in memory)");
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        counters
            .alerts_committed
            .fetch_add(alerts.len() as u64, Ordering::Relaxed);
        {
            let mut fired = counters.fired_per_rule.lock();
            for h in batch.iter().filter(|h| h.kind == HitKind::Fired) {
                *fired.entry(h.rule.clone()).or_default() += 1;
            }
        }
        for h in &batch {
            let kind = if h.kind == HitKind::Fired {
                "alert committed"
            } else {
                "alert ended, committed"
            };
            tracing::info!(alert_id = %h.alert_id, camera = %h.camera, rule = %h.rule,
                label = %h.label, confidence = h.confidence, snapshot = h.snapshot.as_deref().unwrap_or("-"), "{kind}");
        }
        sinks.wake_all();
        // Copies only while a web page is listening.
        if counters.live_alerts.receiver_count() > 0 {
            for a in &alerts {
                let _ = counters
                    .live_alerts
                    .send(String::from_utf8_lossy(&a.body).into_owned());
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let cutoff = |d: Duration| now - d.as_millis() as i64;
        // The size check is three PRAGMAs, fine per commit; the history pass scans delivered
        // rows, so it runs at most once a minute.
        let history = last_history_pass
            .is_none_or(|t| t.elapsed() > Duration::from_secs(60))
            .then(|| {
                last_history_pass = Some(Instant::now());
                cutoff(limits.history)
            });
        match outbox
            .with(|o| o.enforce_limits(limits.max_bytes, history, cutoff(limits.dead_retention)))
        {
            Ok(d) if d != Default::default() => {
                counters
                    .dropped_delivered
                    .fetch_add(d.delivered, Ordering::Relaxed);
                counters.dropped_dead.fetch_add(d.dead, Ordering::Relaxed);
                counters
                    .dropped_undelivered
                    .fetch_add(d.undelivered, Ordering::Relaxed);
                // Once per burst: a full outbox drops on every commit.
                if last_drop_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    last_drop_log = Some(Instant::now());
                    tracing::warn!(
                        delivered = d.delivered,
                        dead = d.dead,
                        undelivered = d.undelivered,
                        total_undelivered = counters.dropped_undelivered.load(Ordering::Relaxed),
                        "outbox at its size cap (delivery.outbox_max_mb); oldest rows removed"
                    );
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox size check failed"),
        }
    }
}
