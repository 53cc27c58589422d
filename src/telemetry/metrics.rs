//! The Prometheus registry, built once: the pipeline's two histograms (inference time,
//! delivery latency) as they are, and one collector for the values derived at each scrape
//! from the cameras, the counters, the sinks and the outbox.

use super::{Anomaly, Counters, TelemetryError};
use crate::deliver::SinkSet;
use crate::outbox::SharedOutbox;
use crate::video::{CameraState, Cameras};
use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a scrape read from the outbox (an async call) before gathering.
pub(super) struct OutboxView {
    pub(super) dead: i64,
    /// Pending deliveries per sink.
    pub(super) pending: Vec<(String, i64)>,
    pub(super) silent: Vec<Anomaly>,
}

pub(super) struct Metrics {
    registry: Registry,
    derived: Arc<Derived>,
    /// One scrape at a time: the outbox view and the gather that reads it belong together.
    scrape: Mutex<()>,
}

impl Metrics {
    pub(super) fn new(
        cameras: Arc<Cameras>,
        counters: Arc<Counters>,
        sinks: Arc<SinkSet>,
        outbox: SharedOutbox,
    ) -> Result<Self, TelemetryError> {
        let registry = Registry::new();
        let derived = Arc::new(Derived::new(cameras, counters.clone(), sinks, outbox)?);
        registry.register(Box::new(DerivedCollector(derived.clone())))?;
        registry.register(Box::new(counters.inference.clone()))?;
        registry.register(Box::new(counters.delivery_latency.clone()))?;
        Ok(Self {
            registry,
            derived,
            scrape: Mutex::new(()),
        })
    }

    /// The text exposition with `view` as the outbox's state (`None`: the outbox could not
    /// be read; its families are left out, the rest is served).
    pub(super) fn render(&self, view: Option<OutboxView>) -> Result<String, TelemetryError> {
        let _one = self.scrape.lock();
        *self.derived.outbox.lock() = view;
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| TelemetryError::Encode(e.to_string()))
    }
}

/// The derived families, created once and refilled (reset, then set) at each collect.
struct Derived {
    cameras: Arc<Cameras>,
    counters: Arc<Counters>,
    sinks: Arc<SinkSet>,
    shared: SharedOutbox,
    outbox: Mutex<Option<OutboxView>>,
    silent: IntGaugeVec,
    up: IntGaugeVec,
    fps: GaugeVec,
    age: GaugeVec,
    frames: IntCounterVec,
    fired: IntCounterVec,
    depth: IntGaugeVec,
    dead: IntGauge,
    attempts: IntCounterVec,
    writable: IntGauge,
    commit_failures: IntCounter,
    record_failures: IntCounter,
    uncommitted: IntGauge,
    dropped_uncommitted: IntCounter,
    sink_up: IntGaugeVec,
    sink_restarts: IntCounterVec,
    crossings: IntCounterVec,
    line_total: IntGaugeVec,
    occupancy: IntGaugeVec,
}

impl Derived {
    fn new(
        cameras: Arc<Cameras>,
        counters: Arc<Counters>,
        sinks: Arc<SinkSet>,
        shared: SharedOutbox,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            cameras,
            counters,
            sinks,
            shared,
            outbox: Mutex::new(None),
            writable: IntGauge::new(
                "watchpost_outbox_writable",
                "1 while new alerts commit (0: disk full, I/O errors or a damaged database)",
            )?,
            commit_failures: IntCounter::new(
                "watchpost_outbox_commit_failures_total",
                "Outbox commits that failed (each retry counts)",
            )?,
            record_failures: IntCounter::new(
                "watchpost_outbox_record_failures_total",
                "Delivery attempts whose record could not be written (the row stays pending)",
            )?,
            uncommitted: IntGauge::new(
                "watchpost_alerts_uncommitted",
                "Alerts produced by the rules and not yet committed",
            )?,
            dropped_uncommitted: IntCounter::new(
                "watchpost_alerts_dropped_uncommitted_total",
                "Alerts dropped, oldest first, while the outbox could not commit and the hand-off was full",
            )?,
            sink_up: IntGaugeVec::new(
                Opts::new(
                    "watchpost_sink_up",
                    "1 while the sink's worker runs (0: stalled on the outbox, or restarting)",
                ),
                &["sink"],
            )?,
            sink_restarts: IntCounterVec::new(
                Opts::new(
                    "watchpost_sink_restarts_total",
                    "Times the sink's worker stopped and was restarted",
                ),
                &["sink"],
            )?,
            crossings: IntCounterVec::new(
                Opts::new(
                    "watchpost_line_crossings_total",
                    "Tracks that crossed a [[line]] since the daemon started, by line, label and direction (in, out)",
                ),
                &["line", "label", "direction"],
            )?,
            line_total: IntGaugeVec::new(
                Opts::new(
                    "watchpost_line_count",
                    "Crossings since the line's last reset (occupancy_reset or the reset command), by line, label and direction",
                ),
                &["line", "label", "direction"],
            )?,
            occupancy: IntGaugeVec::new(
                Opts::new(
                    "watchpost_line_occupancy",
                    "In minus out since the line's last reset, never below zero, by line and label",
                ),
                &["line", "label"],
            )?,
            silent: IntGaugeVec::new(
                Opts::new(
                    "watchpost_silent",
                    "1 for a rule or camera that normally fires but has been silent for [health] silence_minutes",
                ),
                &["kind", "name"],
            )?,
            up: IntGaugeVec::new(
                Opts::new("watchpost_camera_up", "1 while the camera streams"),
                &["camera"],
            )?,
            fps: GaugeVec::new(
                Opts::new(
                    "watchpost_camera_fps",
                    "Frames per second arriving from the camera",
                ),
                &["camera"],
            )?,
            age: GaugeVec::new(
                Opts::new(
                    "watchpost_camera_frame_age_seconds",
                    "Arrival to detector pick-up of the camera's last detected frame",
                ),
                &["camera"],
            )?,
            frames: IntCounterVec::new(
                Opts::new(
                    "watchpost_camera_frames_total",
                    "Frames by fate: received, sampled, detected, skipped (replaced), gated (no motion)",
                ),
                &["camera", "kind"],
            )?,
            fired: IntCounterVec::new(
                Opts::new(
                    "watchpost_alerts_fired_total",
                    "Alerts fired (committed) per rule",
                ),
                &["rule"],
            )?,
            depth: IntGaugeVec::new(
                Opts::new(
                    "watchpost_outbox_pending",
                    "Deliveries waiting in the outbox, per sink",
                ),
                &["sink"],
            )?,
            dead: IntGauge::new(
                "watchpost_dead_letters",
                "Deliveries given up on (replayable)",
            )?,
            attempts: IntCounterVec::new(
                Opts::new(
                    "watchpost_delivery_attempts_total",
                    "Delivery attempts per sink and result",
                ),
                &["sink", "result"],
            )?,
        })
    }

    /// Sets every family from the rooms' counters as of now (names that went away, a
    /// removed camera or sink, disappear with the reset).
    fn refill(&self) {
        for v in [&self.silent, &self.up, &self.depth, &self.sink_up] {
            v.reset();
        }
        let condition = self.shared.condition().report();
        self.writable.set(condition.writable() as i64);
        for (c, n) in [
            (&self.commit_failures, condition.commit_failures),
            (&self.record_failures, condition.record_failures),
            (
                &self.dropped_uncommitted,
                self.counters.dropped_uncommitted.load(Ordering::Relaxed),
            ),
        ] {
            c.reset();
            c.inc_by(n);
        }
        self.uncommitted
            .set(self.counters.uncommitted.load(Ordering::Relaxed) as i64);
        self.sink_restarts.reset();
        for s in self.sinks.statuses() {
            let sink = [s.sink.as_str()];
            self.sink_up
                .with_label_values(&sink)
                .set((s.state == crate::deliver::WorkerState::Running) as i64);
            self.sink_restarts
                .with_label_values(&sink)
                .inc_by(s.restarts);
        }
        for v in [&self.fps, &self.age] {
            v.reset();
        }
        for v in [&self.frames, &self.fired, &self.attempts] {
            v.reset();
        }
        if let Some(view) = self.outbox.lock().as_ref() {
            for a in &view.silent {
                self.silent
                    .with_label_values(&[a.kind.as_str(), a.name.as_str()])
                    .set(1);
            }
            for (sink, pending) in &view.pending {
                self.depth.with_label_values(&[sink.as_str()]).set(*pending);
            }
            self.dead.set(view.dead);
        }
        let gated = self.counters.frames_gated.lock().clone();
        for c in self.cameras.snapshots() {
            let cam = [c.name.as_str()];
            self.up
                .with_label_values(&cam)
                .set((c.state == CameraState::Streaming) as i64);
            self.fps.with_label_values(&cam).set(c.fps);
            self.age
                .with_label_values(&cam)
                .set(c.frame_age_ms.unwrap_or(0.0) / 1000.0);
            for (kind, n) in [
                ("received", c.frames_received),
                ("sampled", c.frames_sampled),
                ("detected", c.frames_detected),
                ("skipped", c.frames_skipped),
                ("gated", gated.get(&c.name).copied().unwrap_or(0)),
            ] {
                self.frames
                    .with_label_values(&[c.name.as_str(), kind])
                    .inc_by(n);
            }
        }
        self.crossings.reset();
        for ((line, label, dir), n) in self.counters.line_counts.since_start() {
            self.crossings
                .with_label_values(&[line.as_str(), label.as_str(), dir])
                .inc_by(n);
        }
        for v in [&self.line_total, &self.occupancy] {
            v.reset();
        }
        for lc in self.counters.line_counts.snapshot() {
            for (label, t) in &lc.labels {
                let (l, b) = (lc.line.as_str(), label.as_str());
                self.line_total
                    .with_label_values(&[l, b, "in"])
                    .set(t.total_in as i64);
                self.line_total
                    .with_label_values(&[l, b, "out"])
                    .set(t.total_out as i64);
                self.occupancy
                    .with_label_values(&[l, b])
                    .set(t.occupancy as i64);
            }
        }
        for (rule, n) in self.counters.fired_per_rule.lock().iter() {
            self.fired.with_label_values(&[rule.as_str()]).inc_by(*n);
        }
        for (name, m) in &self.sinks.metrics() {
            for (result, n) in [
                ("success", m.successes.load(Ordering::Relaxed)),
                ("failure", m.failures.load(Ordering::Relaxed)),
            ] {
                self.attempts
                    .with_label_values(&[name.as_str(), result])
                    .inc_by(n);
            }
        }
    }

    fn collectors(&self) -> [&dyn Collector; 19] {
        [
            &self.crossings,
            &self.line_total,
            &self.occupancy,
            &self.writable,
            &self.commit_failures,
            &self.record_failures,
            &self.uncommitted,
            &self.dropped_uncommitted,
            &self.sink_up,
            &self.sink_restarts,
            &self.silent,
            &self.up,
            &self.fps,
            &self.age,
            &self.frames,
            &self.fired,
            &self.depth,
            &self.dead,
            &self.attempts,
        ]
    }
}

/// The registry's view of [`Derived`] (a newtype, so the registry can own a handle).
struct DerivedCollector(Arc<Derived>);

impl Collector for DerivedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0
            .collectors()
            .into_iter()
            .flat_map(|c| c.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.refill();
        self.0
            .collectors()
            .into_iter()
            .flat_map(|c| c.collect())
            .collect()
    }
}
