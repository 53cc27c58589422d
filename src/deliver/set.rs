//! The running sinks, by name, changeable while alerts flow.
//!
//! Each sink is one [`SinkWorker`] task with its own cancellation token, so adding, changing
//! or removing one never pauses another. Rows belong to a sink by name in the outbox: a
//! removed or disabled sink's undelivered rows wait there (nothing is dropped) and leave when
//! a sink of that name runs again. A sink's counters survive its restarts, so Prometheus
//! counters never go backwards.

use super::{DeliverError, RetryPolicy, Sink, SinkMetrics, SinkWorker, WorkerState, WorkerStatus};
use crate::clock::Clock;
use crate::config::{IncludeSnapshot, SinkConfig};
use crate::evidence::SnapshotStore;
use crate::outbox::SharedOutbox;
use crate::reconcile::{self, Change};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

struct Running {
    cfg: SinkConfig,
    sink: Arc<Sink>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), DeliverError>>,
}

/// What every worker shares.
pub struct SinkSetParts {
    pub runtime: tokio::runtime::Handle,
    pub outbox: SharedOutbox,
    pub policy: RetryPolicy,
    pub clock: Arc<dyn Clock>,
    pub device: String,
    pub site: String,
    pub snapshots: Option<Arc<SnapshotStore>>,
    /// The per-sink latency family (label `sink`) telemetry exports.
    pub latency: prometheus::HistogramVec,
}

pub struct SinkSet {
    parts: SinkSetParts,
    running: Mutex<BTreeMap<String, Running>>,
    /// By name, kept across restarts and removal (counters never reset while running).
    metrics: Mutex<BTreeMap<String, Arc<SinkMetrics>>>,
    /// One wake for all: the committer notifies after each commit; a worker with nothing due
    /// goes back to sleep at once.
    wakes: Mutex<BTreeMap<String, Arc<Notify>>>,
    include: Mutex<BTreeMap<String, IncludeSnapshot>>,
}

/// How long [`SinkSet::apply`] waits for a stopped worker's attempt in flight to finish
/// before the replacement starts (a longer one is abandoned: at least once, never lost).
/// A receiver's answer to a test alert.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TestAnswer {
    pub alert_id: String,
    /// The receiver acknowledged (HTTP 2xx, MQTT PUBACK).
    pub delivered: bool,
    /// HTTP status, when there was one.
    pub status: Option<u16>,
    /// Why not, as the delivery log would say it.
    pub error: Option<String>,
    /// Round trip in milliseconds.
    pub ms: f64,
}

const STOP_WAIT: Duration = Duration::from_secs(5);

/// Runs a sink's worker and starts it again whenever it ends before it was cancelled (an
/// error it could not get past, or a panic), after a pause that doubles up to 30 s, so a sink
/// never stops while the daemon runs. While it is down its status says why.
async fn supervise(worker: SinkWorker, cancel: CancellationToken) -> Result<(), DeliverError> {
    let name = worker.sink.name().to_string();
    let metrics = worker.metrics.clone();
    let mut quick_restarts: u32 = 0;
    loop {
        let started = Instant::now();
        let why = match tokio::spawn(worker.clone().run(cancel.clone())).await {
            Ok(Ok(())) if cancel.is_cancelled() => return Ok(()),
            Ok(Ok(())) => "the worker ended".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) if e.is_panic() => {
                let msg = e.into_panic();
                let text = msg
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| msg.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                format!("the worker panicked: {text}")
            }
            Err(e) => format!("the worker task failed: {e}"),
        };
        if cancel.is_cancelled() {
            return Ok(());
        }
        // A worker that ran a while before failing starts the backoff afresh.
        if started.elapsed() > Duration::from_secs(60) {
            quick_restarts = 0;
        }
        let delay = Duration::from_secs(1 << quick_restarts.min(5)).min(Duration::from_secs(30));
        quick_restarts += 1;
        metrics
            .restarts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics.set_status(WorkerState::Restarting, Some(why.clone()));
        tracing::error!(sink = %name, error = %why, restart_in_s = delay.as_secs(), "sink worker stopped; restarting it");
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        metrics.set_status(WorkerState::Running, None);
    }
}

impl SinkSet {
    pub fn new(parts: SinkSetParts) -> Self {
        Self {
            parts,
            running: Mutex::default(),
            metrics: Mutex::default(),
            wakes: Mutex::default(),
            include: Mutex::default(),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> parking_lot::MutexGuard<'_, T> {
        m.lock()
    }

    /// Makes the running set match `cfgs` (disabled entries count as absent). Every new or
    /// changed sink is built first, so a sink that cannot be built changes nothing.
    /// Blocking when a worker must stop (up to [`STOP_WAIT`]): call from a blocking thread.
    pub fn apply(&self, cfgs: &[SinkConfig]) -> Result<Vec<(String, Change)>, DeliverError> {
        let wanted: Vec<&SinkConfig> = cfgs.iter().filter(|c| c.enabled).collect();
        let mut built = Vec::new();
        let mut report = Vec::new();
        {
            let running = Self::lock(&self.running);
            let current = running.iter().map(|(n, r)| (n.as_str(), &r.cfg));
            let plan = reconcile::plan(current, &wanted, |c| c.name.as_str());
            for (cfg, change) in plan.wanted {
                report.push((cfg.name.clone(), change));
                if change != Change::Unchanged {
                    let sink = Sink::from_config(cfg, &self.parts.device)?
                        .with_snapshots(self.parts.snapshots.clone());
                    built.push((cfg.clone(), Arc::new(sink)));
                }
            }
        }
        let stopping: Vec<Running> = {
            let mut running = Self::lock(&self.running);
            let gone: Vec<String> = running
                .keys()
                .filter(|n| !wanted.iter().any(|c| &c.name == *n))
                .cloned()
                .collect();
            for n in &gone {
                report.push((n.clone(), Change::Removed));
            }
            gone.iter()
                .chain(built.iter().map(|(c, _)| &c.name))
                .filter_map(|n| running.remove(n))
                .collect()
        };
        for r in &stopping {
            r.cancel.cancel();
        }
        let deadline = Instant::now() + STOP_WAIT;
        for r in &stopping {
            while !r.task.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        {
            let mut include = Self::lock(&self.include);
            include.retain(|n, _| wanted.iter().any(|c| &c.name == n));
            for c in &wanted {
                include.insert(c.name.clone(), c.include_snapshot);
            }
        }
        for (cfg, sink) in built {
            self.start(cfg, sink);
        }
        for (name, change) in &report {
            if *change != Change::Unchanged {
                tracing::info!(sink = %name, change = ?change, "sink");
            }
        }
        Ok(report)
    }

    fn start(&self, cfg: SinkConfig, sink: Arc<Sink>) {
        let metrics = Self::lock(&self.metrics)
            .entry(cfg.name.clone())
            .or_insert_with(|| {
                Arc::new(SinkMetrics {
                    latency: self.parts.latency.with_label_values(&[&cfg.name]),
                    ..Default::default()
                })
            })
            .clone();
        let wake = Self::lock(&self.wakes)
            .entry(cfg.name.clone())
            .or_default()
            .clone();
        let worker = SinkWorker {
            metrics,
            sink: sink.clone(),
            outbox: self.parts.outbox.clone(),
            policy: self.parts.policy.clone(),
            clock: self.parts.clock.clone(),
            wake,
            concurrency: cfg.concurrency(),
        };
        let cancel = CancellationToken::new();
        let task = self.parts.runtime.spawn(supervise(worker, cancel.clone()));
        Self::lock(&self.running).insert(
            cfg.name.clone(),
            Running {
                cfg,
                sink,
                cancel,
                task,
            },
        );
    }

    /// After a commit: every running sink looks for due rows.
    pub fn wake_all(&self) {
        for w in Self::lock(&self.wakes).values() {
            w.notify_one();
        }
    }

    /// A sink's `include_snapshot`, for the committer's bodies.
    pub fn include(&self, sink: &str) -> IncludeSnapshot {
        Self::lock(&self.include)
            .get(sink)
            .copied()
            .unwrap_or_default()
    }

    /// Counters of every sink that ran since start.
    pub fn metrics(&self) -> Vec<(String, Arc<SinkMetrics>)> {
        Self::lock(&self.metrics)
            .iter()
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect()
    }

    /// Each running sink's worker status, by name.
    pub fn statuses(&self) -> Vec<WorkerStatus> {
        let running: Vec<String> = Self::lock(&self.running).keys().cloned().collect();
        let metrics = Self::lock(&self.metrics);
        running
            .into_iter()
            .filter_map(|n| metrics.get(&n).map(|m| m.status(&n)))
            .collect()
    }

    /// The running sink's settings (a test alert goes out with exactly these).
    pub fn config(&self, name: &str) -> Option<SinkConfig> {
        Self::lock(&self.running).get(name).map(|r| r.cfg.clone())
    }

    /// Sends a test alert (`alert.test`, see `outbox::test_body`) through the running sink
    /// `name`, signed like any attempt, outside the outbox: it is not an alert to keep, and
    /// the answer is wanted now. Counted in no metric.
    pub async fn test(&self, name: &str) -> Result<TestAnswer, DeliverError> {
        let sink = Self::lock(&self.running)
            .get(name)
            .map(|r| r.sink.clone())
            .ok_or_else(|| DeliverError::NotRunning(name.to_string()))?;
        let now = self.parts.clock.now();
        let alert_id = ulid::Ulid::new().to_string();
        let row = crate::outbox::OutboxRow {
            id: 0,
            alert_id: alert_id.clone(),
            sink: name.to_string(),
            camera: crate::outbox::TEST_CAMERA.to_string(),
            body: crate::outbox::test_body(&alert_id, &self.parts.device, &self.parts.site, now),
            attempts: 0,
            created_at: now.timestamp_millis(),
        };
        let t = Instant::now();
        let outcome = sink.send(&row, now.timestamp()).await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let (delivered, error) = match &outcome {
            super::Outcome::Delivered { .. } => (true, None),
            super::Outcome::Retry { error, .. } | super::Outcome::Rejected { error, .. } => {
                (false, Some(error.clone()))
            }
        };
        Ok(TestAnswer {
            alert_id,
            delivered,
            status: outcome.status(),
            error,
            ms: (ms * 10.0).round() / 10.0,
        })
    }

    /// Stops every worker (rows in flight stay pending) and waits for them.
    pub async fn stop_all(&self) {
        let all: Vec<Running> = std::mem::take(&mut *Self::lock(&self.running))
            .into_values()
            .collect();
        for r in &all {
            r.cancel.cancel();
        }
        for r in all {
            match r.task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "sink stopped with an error"),
                Err(e) => tracing::error!(error = %e, "sink task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}
