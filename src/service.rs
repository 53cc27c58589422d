//! The service manager's view of the daemon (systemd's notify protocol): `READY=1` once
//! the model is loaded and the outbox is open, `STATUS=` lines a technician sees in
//! `systemctl status`, and `WATCHDOG=1` only while the pipeline makes progress, so a wedged
//! detector or outbox gets the service restarted instead of silently watching nothing.
//!
//! Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use crate::outbox::SharedOutbox;
use crate::video::{CameraState, Cameras};
use sd_notify::NotifyState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Milliseconds on a monotonic clock that starts with the process, for heartbeats kept in
/// atomics (an `Instant` cannot be).
pub fn mono_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A loop's "I am still turning" mark.
#[derive(Debug, Default)]
pub struct Heartbeat(AtomicU64);

impl Heartbeat {
    pub fn beat(&self) {
        self.0.store(mono_ms(), Ordering::Relaxed);
    }

    fn age(&self) -> Duration {
        Duration::from_millis(mono_ms().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

pub fn ready() {
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// What the supervisor looks at.
pub struct Watched {
    pub detector: Arc<Heartbeat>,
    pub cameras: Arc<Cameras>,
    pub outbox: SharedOutbox,
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC`), if any. By hand rather than
/// `sd_notify::watchdog_enabled`, which also demands `WATCHDOG_PID`; libsystemd's
/// `sd_watchdog_enabled` treats a missing `WATCHDOG_PID` as "this process".
fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let for_us = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_none_or(|pid| pid == std::process::id());
    (for_us && usec > 0).then(|| Duration::from_micros(usec))
}

/// Every half watchdog period (or 10 s without a watchdog): checks that the detector loop
/// turned recently and that the outbox takes a write lock in time; only then `WATCHDOG=1`.
/// Also sends `STATUS=` with cameras up and the outbox depth.
pub async fn supervise(watched: Watched, cancel: CancellationToken) {
    let period = watchdog_period();
    let tick = period.map_or(Duration::from_secs(10), |p| p / 2);
    // The detector loop turns at least every 200 ms while healthy; a model load or a slow
    // frame may hold it for seconds, so allow the whole watchdog period.
    let detector_limit = period.unwrap_or(Duration::from_secs(30)).max(tick * 2);
    let mut probe: Option<tokio::task::JoinHandle<Option<i64>>> = None;
    let mut was_healthy = true;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        // One probe at a time: a wedged outbox must not pile up blocked threads.
        let handle = probe.take().unwrap_or_else(|| {
            let outbox = watched.outbox.clone();
            tokio::task::spawn_blocking(move || outbox.with(|o| o.probe_write().ok()))
        });
        let mut handle = handle;
        let pending = match tokio::time::timeout(tick / 2, &mut handle).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => None,
            Err(_) => {
                probe = Some(handle);
                None
            }
        };
        let detector_age = watched.detector.age();
        let cameras = watched.cameras.statuses();
        let up = cameras
            .iter()
            .filter(|c| c.snapshot().state == CameraState::Streaming)
            .count();
        let problem = match pending {
            _ if watched.outbox.condition().fatal().is_some() => Some(format!(
                "outbox damaged: {}",
                watched.outbox.condition().fatal().unwrap_or_default()
            )),
            None => Some("outbox not answering".to_string()),
            Some(_) if detector_age > detector_limit => {
                Some(format!("detector stuck for {} s", detector_age.as_secs()))
            }
            Some(_) => None,
        };
        let status = format!(
            "cameras {up}/{} streaming, outbox {} pending{}",
            cameras.len(),
            pending.map_or("?".to_string(), |p| p.to_string()),
            problem
                .as_ref()
                .map(|p| format!(", UNHEALTHY: {p}"))
                .unwrap_or_default()
        );
        let mut states = vec![NotifyState::Status(&status)];
        if problem.is_none() && period.is_some() {
            states.push(NotifyState::Watchdog);
        }
        let _ = sd_notify::notify(false, &states);
        match (&problem, was_healthy) {
            (Some(p), true) => {
                tracing::error!(problem = %p, "pipeline not making progress; withholding the watchdog ping")
            }
            (None, false) => tracing::info!("pipeline making progress again"),
            _ => {}
        }
        was_healthy = problem.is_none();
    }
}
