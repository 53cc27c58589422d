//! The committer thread, the only writer of new alerts: hits → payload bodies → one outbox
//! transaction per burst → sinks woken; retention limits enforced between bursts.

use super::hand_off::HitQueue;
use crate::config::IncludeSnapshot;
use crate::deliver::SinkSet;
use crate::evidence::SnapshotStore;
use crate::outbox::{alert_body, NewAlert, NewDelivery, SharedOutbox, SnapshotField};
use crate::rules::{HitKind, RuleHit};
use crate::telemetry::Counters;
use base64::Engine as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds each alert's body, and a sink's own body where its snapshot setting differs.
pub(super) struct BodyMaker {
    pub(super) device: String,
    pub(super) site: String,
    pub(super) sinks: Arc<SinkSet>,
    pub(super) snapshots: Option<Arc<SnapshotStore>>,
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
pub(super) struct Limits {
    pub(super) max_bytes: u64,
    pub(super) history: Duration,
    pub(super) dead_retention: Duration,
}

/// How long the committer keeps trying after the detector stopped (shutdown) before it gives
/// up on what it holds and says exactly what that was; well inside the unit's
/// `TimeoutStopSec`, so systemd never has to kill a daemon that holds alerts in silence.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The single writer: batches whatever the rules produced, commits, then wakes the sinks.
/// A failed commit is retried with the same batch (counted; the outbox's condition makes the
/// daemon unready) until it succeeds, or, once shutting down, until [`STOP_GRACE`] has passed.
pub(super) fn commit_loop(
    hits: &HitQueue,
    outbox: &SharedOutbox,
    counters: &Counters,
    sinks: &SinkSet,
    bodies: &BodyMaker,
    limits: &Limits,
) {
    let drop_log = watchpost_contracts::throttle::Every::new(Duration::from_secs(60));
    let mut last_history_pass: Option<Instant> = None;
    while let Some((batch, counts)) = hits.take(256) {
        let alerts: Vec<NewAlert> = batch.iter().map(|h| bodies.alert(h)).collect();
        let mut delay = Duration::from_millis(100);
        let mut tries = 0u32;
        let committed = loop {
            match outbox.with(|o| o.commit_with_counts(&alerts, counts.as_deref())) {
                Ok(()) => break true,
                Err(e) => {
                    tries += 1;
                    outbox.condition().commit_failed(&e);
                    if hits.closed_for().is_some_and(|t| t >= STOP_GRACE) {
                        give_up(&batch, hits.drain(), &e);
                        break false;
                    }
                    if tries == 1 || tries.is_power_of_two() {
                        tracing::error!(error = %e, alerts = alerts.len(), tries, "commit failed; retrying (alerts kept in memory, bounded)");
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        };
        hits.done(batch.len());
        if !committed {
            return;
        }
        if batch.is_empty() {
            // Only the line counts changed: nothing to log, count or wake.
            continue;
        }
        outbox.condition().commit_succeeded();
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
            let kind = match h.kind {
                HitKind::Fired => "alert committed",
                HitKind::Ended { .. } => "alert ended, committed",
                HitKind::Report(_) => "count report committed",
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
                if drop_log.due() {
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

/// At shutdown with the outbox still refusing commits: every alert that could not be kept,
/// by id, camera and rule, in the log (the only place left to say it).
fn give_up(batch: &[RuleHit], rest: Vec<RuleHit>, e: &crate::outbox::OutboxError) {
    let lost: Vec<&RuleHit> = batch.iter().chain(rest.iter()).collect();
    for h in &lost {
        tracing::error!(alert_id = %h.alert_id, camera = %h.camera, rule = %h.rule,
            fired_at = %h.fired_at, "alert NOT committed at shutdown (the outbox refused it)");
    }
    tracing::error!(error = %e, alerts = lost.len(), grace_s = STOP_GRACE.as_secs(),
        "stopping with alerts that could not be committed; they are lost");
}
