//! Wires the rooms into the running daemon and owns the shutdown order.
//!
//! Threads: one per camera (GStreamer), one detector (tract + rules), one committer (the
//! only writer of new alerts). Tokio runs the sink workers. Shutdown: cameras stop, the
//! detector finishes its frame, the committer commits everything the rules produced, sinks
//! get a short grace period to drain, then stop. Nothing committed is lost by stopping:
//! undelivered rows wait in the outbox for the next start.
//!
//! Files: this one (wiring: [`run`] starts the parts in order and stops them in order),
//! `detect_stage` (the detector thread), `commit_stage` (the committer thread), `hand_off`
//! (the bounded queue between them).

mod commit_stage;
mod detect_stage;
mod hand_off;

pub use hand_off::UNCOMMITTED_MAX;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::deliver::{DeliverError, RetryPolicy, SinkSet, SinkSetParts};
use crate::detect::{DetectError, Detector, DetectorSpec};
use crate::evidence::{EvidenceError, SnapshotStore};
use crate::outbox::{Outbox, OutboxError, SharedOutbox};
use crate::rules::{Engine, RulesError};
use crate::switch::{ModelSwitch, RulesSwitch};
use crate::telemetry::Counters;
use crate::video::{self, Cameras, IngestOptions, LatestFrames, VideoError};
use commit_stage::{commit_loop, BodyMaker, Limits};
use detect_stage::{class_filters, detect_loop, DetectStage};
use hand_off::HitQueue;
use serde::Serialize;
use std::sync::atomic::Ordering;
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
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
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
    let (outbox, condition) = Outbox::open_checked(&config.outbox_path())?;
    let outbox = SharedOutbox::with_condition(outbox, condition);
    let spec = DetectorSpec::from_config(&config.model);
    let detector = tokio::task::spawn_blocking(move || Detector::load(&spec))
        .await
        .map_err(|e| AppError::Task(format!("model loader failed: {e}")))??;
    // Line counts carry on from where the last run committed them.
    let saved_counts = outbox.call(|o| o.load_counts()).await?;
    let line_counts = crate::rules::SharedCounts::restore(saved_counts);
    let engine = Engine::with_counts(&config, opts.clock.clone(), line_counts.clone())?;
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

    let counters = Arc::new(Counters {
        line_counts,
        ..Counters::default()
    });
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

    let hits = Arc::new(HitQueue::new(counters.clone(), UNCOMMITTED_MAX));
    let detector_thread = spawn_detector(
        DetectStage {
            filters: class_filters(&config, &detector),
            detector,
            engine,
            config: config.clone(),
            switch: opts.model_switch.take_receiver(),
            rules: opts.rules_switch.take_receiver(),
            clock: opts.clock.clone(),
        },
        Pipes {
            frames: frames.clone(),
            counters: counters.clone(),
            snapshots: snapshots.clone(),
            cancel: cancel.clone(),
        },
        hits.clone(),
    )?;
    let committer_thread = spawn_committer(
        &config,
        hits.clone(),
        &outbox,
        &counters,
        &sinks,
        &snapshots,
    )?;

    let mut telemetry = crate::telemetry::Telemetry::new(
        config.device.id.clone(),
        cameras.clone(),
        counters.clone(),
        outbox.clone(),
        sinks.clone(),
        config.model.path.display().to_string(),
        config.health.clone(),
    )?;
    telemetry.site = config.device.site.clone();
    if let Some(m) = config.control.as_ref().and_then(|c| c.mqtt.as_ref()) {
        telemetry.health_interval_s = m.health_interval_seconds;
    }
    // The server and the fleet link stop after the pipeline, so `offline` is the last word.
    let control = start_control(&config, &opts, telemetry, &cameras, &sinks, &snapshots).await?;

    cancel.cancelled().await;
    let _ = supervisor.await;
    tracing::info!("stopping: cameras, detector, committer, then sinks");
    crate::service::stopping();
    let stopping = cameras.clone();
    tokio::task::spawn_blocking(move || {
        stopping.stop_all();
        let _ = detector_thread.join();
        hits.close();
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
    control.stop().await;
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

/// What the detector thread shares with the rest of the daemon.
struct Pipes {
    frames: Arc<LatestFrames>,
    counters: Arc<Counters>,
    snapshots: Option<Arc<SnapshotStore>>,
    cancel: CancellationToken,
}

/// Starts the detector thread; it sends every rule hit to the committer.
fn spawn_detector(
    stage: DetectStage,
    p: Pipes,
    hits: Arc<HitQueue>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("detector".into())
        .spawn(move || {
            detect_loop(
                stage,
                p.snapshots.as_deref(),
                &p.frames,
                &p.counters,
                &hits,
                &p.cancel,
            )
        })
}

/// Starts the committer thread, the only writer of new alerts; it ends when the detector
/// has hung up and every hit is committed.
fn spawn_committer(
    config: &Config,
    hits: Arc<HitQueue>,
    outbox: &SharedOutbox,
    counters: &Arc<Counters>,
    sinks: &Arc<SinkSet>,
    snapshots: &Option<Arc<SnapshotStore>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
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
        .spawn(move || commit_loop(&hits, &outbox, &counters, &sinks, &bodies, &limits))
}

/// The doors people and the fleet use: live config (and SIGHUP), the HTTPS server, the MQTT
/// fleet link. They stop after the pipeline, so `offline` is the last word.
struct Control {
    cancel: CancellationToken,
    web: Option<crate::control::web::WebServer>,
    fleet: Option<tokio::task::JoinHandle<Result<(), crate::control::ControlError>>>,
}

async fn start_control(
    config: &Config,
    opts: &RunOptions,
    telemetry: crate::telemetry::Telemetry,
    cameras: &Arc<Cameras>,
    sinks: &Arc<SinkSet>,
    snapshots: &Option<Arc<SnapshotStore>>,
) -> Result<Control, AppError> {
    let cancel = CancellationToken::new();
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
        crate::control::live::reload_on_sighup(live.clone(), cancel.clone());
    }
    let gateway = crate::control::gateway::Gateway {
        telemetry,
        live,
        snapshots: snapshots.clone(),
    };
    let web = match &config.web {
        Some(w) => Some(
            crate::control::web::start(
                w,
                &config.device.data_dir,
                &config.device.id,
                gateway.clone(),
                cancel.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let fleet = config
        .control
        .as_ref()
        .and_then(|c| c.mqtt.clone())
        .map(|m| {
            tokio::spawn(crate::control::fleet::run(
                m,
                config.device.id.clone(),
                gateway.clone(),
                cancel.clone(),
            ))
        });

    Ok(Control { cancel, web, fleet })
}

impl Control {
    async fn stop(self) {
        self.cancel.cancel();
        if let Some(f) = self.fleet {
            match f.await {
                Ok(Err(e)) => tracing::error!(error = %e, "fleet link"),
                Err(e) => tracing::error!(error = %e, "fleet link task failed"),
                Ok(Ok(())) => {}
            }
        }
        if let Some(w) = self.web {
            let _ = w.task.await;
        }
    }
}
