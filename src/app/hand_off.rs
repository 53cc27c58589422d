//! The bounded hand-off from the detector to the committer. While the outbox commits, it is
//! near empty; while it cannot (a full disk), hits wait here up to [`UNCOMMITTED_MAX`], and
//! past that the *oldest* waiting hit is dropped, counted and logged with its alert id: the
//! newest scene is the one an operator needs, and memory stays bounded.

use crate::rules::{LineCounts, RuleHit};
use crate::telemetry::Counters;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hits that may wait for the committer, besides the batch it is committing (≤ 256).
pub const UNCOMMITTED_MAX: usize = 1024;

pub(super) struct HitQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    counters: Arc<Counters>,
    cap: usize,
    drop_log: watchpost_contracts::throttle::Every,
}

#[derive(Default)]
struct Inner {
    hits: VecDeque<RuleHit>,
    /// Taken by the committer and not yet committed.
    held: usize,
    /// Every line's counts, newest copy wins; committed with the next batch.
    counts: Option<Vec<LineCounts>>,
    closed_at: Option<Instant>,
}

impl HitQueue {
    pub(super) fn new(counters: Arc<Counters>, cap: usize) -> Self {
        Self {
            inner: Mutex::default(),
            ready: Condvar::new(),
            counters,
            cap: cap.max(1),
            drop_log: watchpost_contracts::throttle::Every::new(Duration::from_secs(10)),
        }
    }

    fn publish(&self, inner: &Inner) {
        self.counters
            .uncommitted
            .store((inner.hits.len() + inner.held) as u64, Ordering::Relaxed);
    }

    /// From the detector: never blocks.
    pub(super) fn push(&self, hit: RuleHit) {
        let mut inner = self.inner.lock();
        if inner.hits.len() >= self.cap {
            if let Some(old) = inner.hits.pop_front() {
                let total = self
                    .counters
                    .dropped_uncommitted
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                // Every one is counted; the log says so at most every 10 s.
                if self.drop_log.due() {
                    tracing::error!(alert_id = %old.alert_id, camera = %old.camera, rule = %old.rule,
                        waiting = self.cap, dropped_total = total,
                        "outbox not committing and {} alerts already waiting: dropped the oldest uncommitted alert", self.cap);
                }
            }
        }
        inner.hits.push_back(hit);
        self.publish(&inner);
        drop(inner);
        self.ready.notify_one();
    }

    /// From the detector: the line counts changed (never blocks; replaces an older copy).
    pub(super) fn push_counts(&self, counts: Vec<LineCounts>) {
        self.inner.lock().counts = Some(counts);
        self.ready.notify_one();
    }

    /// For the committer: up to `max` hits and the newest line counts, waiting for either;
    /// `None` once closed and empty.
    pub(super) fn take(&self, max: usize) -> Option<(Vec<RuleHit>, Option<Vec<LineCounts>>)> {
        let mut inner = self.inner.lock();
        while inner.hits.is_empty() && inner.counts.is_none() {
            if inner.closed_at.is_some() {
                return None;
            }
            self.ready.wait(&mut inner);
        }
        let n = inner.hits.len().min(max);
        let batch: Vec<RuleHit> = inner.hits.drain(..n).collect();
        let counts = inner.counts.take();
        inner.held += batch.len();
        self.publish(&inner);
        Some((batch, counts))
    }

    /// The committer's batch of `n` is in the outbox (or given up).
    pub(super) fn done(&self, n: usize) {
        let mut inner = self.inner.lock();
        inner.held = inner.held.saturating_sub(n);
        self.publish(&inner);
    }

    /// No more hits will come (the detector has stopped).
    pub(super) fn close(&self) {
        let mut inner = self.inner.lock();
        inner.closed_at.get_or_insert_with(Instant::now);
        drop(inner);
        self.ready.notify_all();
    }

    /// How long ago the queue was closed, if it was.
    pub(super) fn closed_for(&self) -> Option<Duration> {
        self.inner.lock().closed_at.map(|t| t.elapsed())
    }

    /// Everything still waiting (at shutdown, to say what could not be committed).
    pub(super) fn drain(&self) -> Vec<RuleHit> {
        let mut inner = self.inner.lock();
        let rest: Vec<RuleHit> = inner.hits.drain(..).collect();
        self.publish(&inner);
        rest
    }
}
