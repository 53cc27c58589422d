//! The deliver room: from outbox rows to receivers, at least once.
//!
//! A [`SinkWorker`] per sink reads due rows oldest first, signs each attempt, and reports the
//! receiver's answer back to the outbox. A sink that cannot be reached backs off as a whole:
//! one probe at a time (the oldest row), and when it answers the backlog drains at full speed.

pub mod email;
pub mod mqtt;
pub mod people;
pub mod set;
mod webhook;

use crate::clock::Clock;
use crate::config::DeliveryConfig;
use crate::outbox::{Attempt, Fault, Next, OutboxError, SharedOutbox};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
pub use watchpost_contracts::health::{WorkerState, WorkerStatus};

pub use email::EmailSink;
pub use mqtt::MqttSink;
pub use people::{PagerDutySink, SlackSink};
pub use set::{SinkSet, SinkSetParts, TestAnswer};
pub use watchpost_contracts::signing::{
    hex_signature, standard_signature, verify_standard, SignError, Signer,
};

pub use webhook::WebhookSink;

/// A delivery target; every kind goes through the same worker, retries and dead letters.
pub enum Sink {
    Webhook(WebhookSink),
    Mqtt(MqttSink),
    Slack(SlackSink),
    PagerDuty(PagerDutySink),
    Email(EmailSink),
}

impl Sink {
    /// Builds the sink a config entry describes (MQTT needs a tokio runtime).
    pub fn from_config(
        cfg: &crate::config::SinkConfig,
        device: &str,
    ) -> Result<Self, DeliverError> {
        use crate::config::SinkKind;
        Ok(match cfg.kind {
            SinkKind::Webhook => Sink::Webhook(WebhookSink::from_config(cfg)?),
            SinkKind::Mqtt => Sink::Mqtt(MqttSink::from_config(cfg, device)?),
            SinkKind::Slack => Sink::Slack(SlackSink::from_config(cfg)?),
            SinkKind::Pagerduty => Sink::PagerDuty(PagerDutySink::from_config(cfg)?),
            SinkKind::Email => Sink::Email(EmailSink::from_config(cfg)?),
        })
    }

    /// Gives sinks that attach snapshots (email) the store to read them from.
    pub fn with_snapshots(self, store: Option<Arc<crate::evidence::SnapshotStore>>) -> Self {
        match (self, store) {
            (Sink::Email(e), Some(store)) => Sink::Email(e.with_snapshots(store)),
            (other, _) => other,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Sink::Webhook(s) => s.name(),
            Sink::Mqtt(s) => s.name(),
            Sink::Slack(s) => s.name(),
            Sink::PagerDuty(s) => s.name(),
            Sink::Email(s) => s.name(),
        }
    }

    pub async fn send(&self, row: &crate::outbox::OutboxRow, unix_ts: i64) -> Outcome {
        match self {
            Sink::Webhook(s) => s.send(row, unix_ts).await,
            Sink::Mqtt(s) => s.send(row, unix_ts).await,
            Sink::Slack(s) => s.send(row).await,
            Sink::PagerDuty(s) => s.send(row).await,
            Sink::Email(s) => s.send(row).await,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("sink \"{sink}\": {message}")]
    Setup { sink: String, message: String },
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("no sink \"{0}\" is running (unknown or disabled)")]
    NotRunning(String),
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The receiver acknowledged (HTTP 2xx).
    Delivered { status: u16 },
    /// Try again later: network error or timeout (no status), 408/425/429/5xx. `after` is the
    /// receiver's `Retry-After`, when it gave one.
    Retry {
        after: Option<Duration>,
        status: Option<u16>,
        error: String,
    },
    /// The receiver refused this alert (other 4xx); retried on the schedule, then dead-lettered.
    Rejected { status: u16, error: String },
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status } | Outcome::Rejected { status, .. } => Some(*status),
            Outcome::Retry { status, .. } => *status,
        }
    }
}

/// Delays between attempts: the configured schedule, then doubling up to the cap, ±20 %.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    pub max_backoff: Duration,
    pub max_age: Duration,
    pub jitter: bool,
}

impl RetryPolicy {
    pub fn from_config(d: &DeliveryConfig) -> Self {
        Self {
            schedule: d
                .retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs_f64(*s))
                .collect(),
            max_backoff: Duration::from_secs_f64(d.max_backoff_seconds),
            max_age: Duration::from_secs_f64(d.max_age_hours * 3600.0),
            jitter: true,
        }
    }

    /// Delay before attempt `n + 1`, after `n` (≥ 1) failures in a row.
    pub fn delay(&self, n: u32) -> Duration {
        let last = self
            .schedule
            .last()
            .copied()
            .unwrap_or(Duration::from_secs(1));
        let base = match self.schedule.get(n.saturating_sub(1) as usize) {
            Some(d) => *d,
            None => {
                let extra = n as usize - self.schedule.len();
                last.saturating_mul(1u32 << extra.min(20))
            }
        }
        .min(self.max_backoff);
        if self.jitter {
            base.mul_f64(rand::rng().random_range(0.8..1.2))
        } else {
            base
        }
    }
}

/// What one sink's deliveries did since the daemon started (telemetry reads them).
#[derive(Debug)]
pub struct SinkMetrics {
    pub status: parking_lot::Mutex<(WorkerState, Option<String>)>,
    pub restarts: AtomicU64,
    pub attempts: AtomicU64,
    pub successes: AtomicU64,
    /// Attempts the receiver refused or that failed (each retry counts).
    pub failures: AtomicU64,
    /// Seconds from commit to the receiver's acknowledgement; in the daemon, this sink's
    /// member of the `delivery_latency_seconds` family telemetry exports.
    pub latency: prometheus::Histogram,
}

/// Buckets for commit → acknowledged: fast paths in tens of ms, outages in hours.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

impl Default for SinkMetrics {
    fn default() -> Self {
        Self {
            status: parking_lot::Mutex::new((WorkerState::Running, None)),
            restarts: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latency: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new("delivery_latency_seconds", "commit to ack")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("constant histogram options are valid"),
        }
    }
}

impl SinkMetrics {
    pub fn set_status(&self, state: WorkerState, error: Option<String>) {
        *self.status.lock() = (state, error);
    }

    pub fn status(&self, sink: &str) -> WorkerStatus {
        let (state, error) = self.status.lock().clone();
        WorkerStatus {
            sink: sink.to_string(),
            state,
            error,
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone)]
pub struct SinkWorker {
    pub metrics: Arc<SinkMetrics>,
    pub sink: Arc<Sink>,
    pub outbox: SharedOutbox,
    pub policy: RetryPolicy,
    pub clock: Arc<dyn Clock>,
    /// Notified by the committer after each commit, so new alerts leave at once.
    pub wake: Arc<Notify>,
    /// Requests in flight at once while the sink is healthy.
    pub concurrency: usize,
}

/// Rows fetched per round: at least an MQTT sink's 256 in flight (fewer would cap its
/// concurrency at this number), small enough that a long backlog does not pin the outbox lock.
const BATCH: usize = 256;
/// Longest idle wait: bounds how late a row whose retry time came is noticed.
const IDLE: Duration = Duration::from_secs(1);

impl SinkWorker {
    /// Decides what an attempt's outcome means for its row; returns the record to write and
    /// the sink-level backoff when the sink failed.
    fn settle(
        &self,
        row: &crate::outbox::OutboxRow,
        started: chrono::DateTime<chrono::Utc>,
        latency: Duration,
        outcome: Outcome,
        failures: &mut u32,
    ) -> ((i64, Attempt, Next), Option<Duration>) {
        let name = self.sink.name();
        let now_ms = self.clock.now().timestamp_millis();
        let id = row.id;
        let mut attempt = Attempt {
            at_ms: started.timestamp_millis(),
            status: outcome.status(),
            latency_ms: latency.as_millis() as i64,
            error: None,
        };
        self.metrics.attempts.fetch_add(1, Ordering::Relaxed);
        if let Outcome::Delivered { .. } = outcome {
            self.metrics.successes.fetch_add(1, Ordering::Relaxed);
            let since_commit = (now_ms - row.created_at).max(0) as f64 / 1000.0;
            self.metrics.latency.observe(since_commit);
        } else {
            self.metrics.failures.fetch_add(1, Ordering::Relaxed);
        }
        let (next, backoff) = match outcome {
            Outcome::Delivered { .. } => {
                *failures = 0;
                tracing::debug!(sink = %name, alert_id = %row.alert_id, attempts = row.attempts + 1, "delivered");
                (Next::Delivered, None)
            }
            Outcome::Rejected { error, .. } => {
                *failures = 0;
                let n = row.attempts as u32 + 1;
                let next = if n as usize >= self.policy.schedule.len() {
                    tracing::error!(sink = %name, alert_id = %row.alert_id, %error, "rejected after {n} attempts; dead-lettered");
                    Next::Dead
                } else {
                    tracing::warn!(sink = %name, alert_id = %row.alert_id, %error, "rejected; will retry");
                    Next::RetryAt(now_ms + self.policy.delay(n).as_millis() as i64)
                };
                attempt.error = Some(error);
                (next, None)
            }
            Outcome::Retry { after, error, .. } => {
                *failures = failures.saturating_add(1);
                let delay = after
                    .map(|a| a.min(self.policy.max_backoff))
                    .unwrap_or_else(|| self.policy.delay(*failures));
                if *failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(sink = %name, %error, failures = *failures, retry_in_ms = delay.as_millis() as u64, "sink unavailable; backing off");
                }
                attempt.error = Some(error);
                (
                    Next::RetryAt(now_ms + delay.as_millis() as i64),
                    Some(delay),
                )
            }
        };
        ((id, attempt, next), backoff)
    }

    /// Delivers until cancelled. An outbox error never ends it quietly: a passing one (disk
    /// full, I/O, a lock) is retried with backoff and shown as this sink's state; only a
    /// damaged database ends the worker (its supervisor in [`SinkSet`] restarts it).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), DeliverError> {
        let name = self.sink.name().to_string();
        #[cfg(feature = "test-helpers")]
        failpoint::on_start(&name);
        let mut failures: u32 = 0;
        let mut trouble: u32 = 0;
        let mut unrecorded: Vec<(i64, Attempt, Next)> = Vec::new();
        while !cancel.is_cancelled() {
            match self
                .round(&name, &cancel, &mut failures, &mut unrecorded)
                .await
            {
                Ok(()) => {
                    if trouble > 0 {
                        tracing::info!(sink = %name, "outbox answering again; delivering");
                        self.metrics.set_status(WorkerState::Running, None);
                    }
                    trouble = 0;
                }
                Err(DeliverError::Outbox(e)) if e.fault() != Fault::Fatal => {
                    trouble = trouble.saturating_add(1);
                    let wait = OUTBOX_RETRY
                        .saturating_mul(1 << (trouble - 1).min(6))
                        .min(OUTBOX_RETRY_MAX);
                    if trouble == 1 || trouble.is_power_of_two() {
                        tracing::error!(sink = %name, error = %e, attempts = trouble, retry_in_ms = wait.as_millis() as u64,
                            "outbox error; delivery paused, retrying (nothing is lost: rows stay pending)");
                    }
                    self.metrics
                        .set_status(WorkerState::Stalled, Some(e.to_string()));
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    if let DeliverError::Outbox(e) = &e {
                        self.outbox.condition().saw(e);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Writes the attempt records the last round could not (kept so that a delivered row is
    /// not sent again merely because its record failed).
    async fn flush(&self, unrecorded: &mut Vec<(i64, Attempt, Next)>) -> Result<(), DeliverError> {
        if unrecorded.is_empty() {
            return Ok(());
        }
        let records = unrecorded.clone();
        match self.outbox.call(move |o| o.record_many(&records)).await {
            Ok(()) => {
                unrecorded.clear();
                Ok(())
            }
            Err(e) => {
                self.outbox.condition().record_failed(&e);
                Err(e.into())
            }
        }
    }

    /// One pass: expire, fetch what is due, send it (a chunk at a time), record the answers.
    async fn round(
        &self,
        name: &str,
        cancel: &CancellationToken,
        failures: &mut u32,
        unrecorded: &mut Vec<(i64, Attempt, Next)>,
    ) -> Result<(), DeliverError> {
        self.flush(unrecorded).await?;
        let now = self.clock.now();
        let cutoff = now.timestamp_millis() - self.policy.max_age.as_millis() as i64;
        let (sink, ms) = (name.to_string(), now.timestamp_millis());
        let (expired, rows) = self
            .outbox
            .call(move |o| Ok((o.expire(&sink, cutoff)?, o.due(&sink, ms, BATCH)?)))
            .await?;
        if expired > 0 {
            tracing::warn!(sink = %name, expired, "alerts outlived max_age; moved to dead letters");
        }
        if rows.is_empty() {
            let sink = name.to_string();
            let next = self.outbox.call(move |o| o.next_due_at(&sink)).await?;
            let wait = next
                .map(|t| Duration::from_millis((t - ms).max(0) as u64))
                .unwrap_or(IDLE)
                .min(IDLE);
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            return Ok(());
        }
        // Healthy: up to `concurrency` requests in flight, started oldest first. Failing:
        // one probe at a time.
        let width = if *failures > 0 {
            1
        } else {
            self.concurrency.max(1)
        };
        for chunk in rows.chunks(width) {
            let mut set = tokio::task::JoinSet::new();
            for (i, row) in chunk.iter().cloned().enumerate() {
                let (sink, clock) = (self.sink.clone(), self.clock.clone());
                set.spawn(async move {
                    let started = clock.now();
                    let t = std::time::Instant::now();
                    let outcome = sink.send(&row, started.timestamp()).await;
                    (i, row, started, t.elapsed(), outcome)
                });
            }
            let mut results = Vec::with_capacity(chunk.len());
            while !set.is_empty() {
                tokio::select! {
                    _ = cancel.cancelled() => {
                        set.abort_all();
                        return Ok(());
                    }
                    r = set.join_next() => match r {
                        Some(Ok(x)) => results.push(x),
                        Some(Err(e)) => tracing::error!(sink = %name, error = %e, "delivery task failed; the row stays pending"),
                        None => {}
                    }
                }
            }
            results.sort_by_key(|r| r.0);
            let mut backoff: Option<Duration> = None;
            let mut records = Vec::with_capacity(results.len());
            for (_, row, started, latency, outcome) in results {
                let (record, wait) = self.settle(&row, started, latency, outcome, failures);
                records.push(record);
                if let Some(d) = wait {
                    backoff = Some(backoff.map_or(d, |b| b.max(d)));
                }
            }
            // One transaction (one fsync) for the whole chunk.
            *unrecorded = records;
            self.flush(unrecorded).await?;
            if let Some(delay) = backoff {
                // The whole sink waits; the oldest due row is the next probe.
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
                break;
            }
        }
        Ok(())
    }
}

/// First wait after an outbox error, and the longest.
const OUTBOX_RETRY: Duration = Duration::from_millis(250);
const OUTBOX_RETRY_MAX: Duration = Duration::from_secs(10);

/// A test-only failpoint: `WATCHPOST_FAILPOINT_SINK_PANICS=<sink>=<n>` makes that sink's
/// worker panic as it starts, the first `n` times (to prove the supervisor restarts it).
#[cfg(feature = "test-helpers")]
mod failpoint {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HITS: AtomicU32 = AtomicU32::new(0);

    pub(super) fn on_start(sink: &str) {
        let Ok(spec) = std::env::var("WATCHPOST_FAILPOINT_SINK_PANICS") else {
            return;
        };
        let Some((name, n)) = spec.split_once('=') else {
            return;
        };
        let n: u32 = n.parse().unwrap_or(0);
        if name == sink && HITS.fetch_add(1, Ordering::SeqCst) < n {
            panic!("failpoint: sink {sink} worker panics at start");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
    use reqwest::StatusCode;

    #[test]
    fn answers_are_classified_as_the_contract_says() {
        let none = HeaderMap::new();
        let c = |code| webhook::classify(StatusCode::from_u16(code).unwrap(), &none);
        assert_eq!(c(200), Outcome::Delivered { status: 200 });
        assert_eq!(c(204), Outcome::Delivered { status: 204 });
        for code in [408, 425, 429, 500, 502, 503] {
            assert!(matches!(c(code), Outcome::Retry { .. }), "{code}");
        }
        for code in [301, 400, 401, 404, 410, 422] {
            assert!(matches!(c(code), Outcome::Rejected { .. }), "{code}");
        }
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            webhook::classify(StatusCode::TOO_MANY_REQUESTS, &h),
            Outcome::Retry {
                after: Some(Duration::from_secs(7)),
                status: Some(429),
                error: "HTTP 429 Too Many Requests".into()
            }
        );
    }

    #[test]
    fn backoff_follows_the_schedule_then_doubles_to_the_cap() {
        let p = RetryPolicy {
            schedule: [1, 2, 4].map(Duration::from_secs).to_vec(),
            max_backoff: Duration::from_secs(20),
            max_age: Duration::from_secs(3600),
            jitter: false,
        };
        let got: Vec<u64> = (1..=7).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 20, 20]);
        let j = RetryPolicy { jitter: true, ..p };
        for _ in 0..100 {
            let d = j.delay(2).as_secs_f64();
            assert!((1.6..=2.4).contains(&d), "{d}");
        }
    }

    #[test]
    fn standard_webhooks_signature_matches_the_spec_example() {
        // The example from the Standard Webhooks specification (and its reference libraries).
        let signer = Signer::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let h = signer.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(h[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let Signer::StandardWebhooks { keys } = &signer else {
            unreachable!()
        };
        let (id, key) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", &keys[0]);
        assert!(verify_standard(key, id, 1614265330, body, &h[2].1));
        assert!(!verify_standard(key, id, 1614265331, body, &h[2].1));

        // During a rotation: one signature per secret, each verifying with its own key.
        let rotating =
            Signer::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_c2Vjb25k")
                .unwrap();
        let h = rotating.headers(id, 1614265330, body);
        let sigs: Vec<&str> = h[2].1.split(' ').collect();
        assert_eq!(sigs.len(), 2);
        assert_eq!(sigs[0], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify_standard(b"second", id, 1614265330, body, &h[2].1));
        assert!(Signer::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw nope").is_err());
    }
}
