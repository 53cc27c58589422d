//! What the outbox's own faults mean, and the state they leave that the rest of the daemon
//! shows: commit failures, a disk that is full, a database found damaged at start, alerts
//! lost from a discarded write-ahead log. Kept beside the database handle, not inside it, so
//! readiness and metrics can answer while the database itself is stuck.

use super::OutboxError;
use parking_lot::Mutex;
use rusqlite::ErrorCode;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
pub use watchpost_contracts::health::ConditionReport;

/// How a caller should treat an outbox error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The disk or a lock: the same call will work later (disk full, I/O error, busy).
    Transient,
    /// One row cannot be used: set it aside, go on with the others.
    Row,
    /// The database is damaged: this process cannot keep alerts safely any more.
    Fatal,
}

impl OutboxError {
    pub fn fault(&self) -> Fault {
        match self {
            OutboxError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Fault::Fatal,
                Some(_) => Fault::Transient,
                // Not SQLite's: a value of the wrong type or out of range in one row.
                None => Fault::Row,
            },
            OutboxError::NoSuchRow(_) => Fault::Row,
            _ => Fault::Transient,
        }
    }

    /// The disk (or the filesystem's quota) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            OutboxError::Sqlite { source, .. } => {
                source.sqlite_error_code() == Some(ErrorCode::DiskFull)
            }
            OutboxError::Io { message, .. } => message.contains("No space left"),
            _ => false,
        }
    }
}

/// The outbox's condition as the daemon reports it (`/readyz`, health, metrics, the page).
#[derive(Debug, Default)]
pub struct Condition {
    commit_failures: AtomicU64,
    record_failures: AtomicU64,
    /// Set by a failed commit, cleared by the next one that succeeds.
    commit_failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// A damaged database seen while running: the watchdog stops (a restart moves it aside).
    fatal: Mutex<Option<String>>,
    /// What was found at start and must stay visible (damage moved aside, lost alerts).
    notices: Mutex<Vec<String>>,
    reserve: Reserve,
}

/// A file of [`RESERVE_BYTES`] kept beside the database and deleted when the disk fills, so
/// the outbox can still commit what it holds and record deliveries for a while; made again
/// once there is room.
#[derive(Debug, Default)]
struct Reserve {
    path: Mutex<Option<PathBuf>>,
    released: AtomicBool,
    last_try: Mutex<Option<Instant>>,
}

pub const RESERVE_BYTES: usize = 1 << 20;

impl Condition {
    /// Keeps a reserve file at `path` (made now if missing or short).
    pub fn keep_reserve(&self, path: PathBuf) {
        *self.reserve.path.lock() = Some(path);
        if !self.make_reserve() {
            self.reserve.released.store(true, Ordering::Relaxed);
        }
    }

    fn make_reserve(&self) -> bool {
        let Some(path) = self.reserve.path.lock().clone() else {
            return true;
        };
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES as u64) {
            return true;
        }
        let tmp = path.with_extension("reserve.tmp");
        let made = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(&vec![0u8; RESERVE_BYTES])?;
                f.sync_all()
            })
            .and_then(|_| std::fs::rename(&tmp, &path));
        match made {
            Ok(()) => true,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(path = %path.display(), error = %e, "no room for the outbox's disk reserve");
                false
            }
        }
    }

    /// On a full disk: frees the reserve, once, loudly.
    fn release_reserve(&self) {
        if self.reserve.released.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(path) = self.reserve.path.lock().clone() {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::warn!(path = %path.display(), bytes = RESERVE_BYTES,
                    "disk full: released the outbox's reserve so held alerts and delivery records can still be written"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "disk full and the outbox's reserve could not be released")
                }
            }
        }
    }

    /// After a good commit: makes the reserve again if it was used, at most once a minute.
    fn restore_reserve(&self) {
        if !self.reserve.released.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut last = self.reserve.last_try.lock();
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
                return;
            }
            *last = Some(Instant::now());
        }
        if self.make_reserve() {
            self.reserve.released.store(false, Ordering::Relaxed);
            tracing::info!("outbox disk reserve made again");
        }
    }

    pub fn commit_failed(&self, e: &OutboxError) {
        self.commit_failures.fetch_add(1, Ordering::Relaxed);
        self.commit_failing.store(true, Ordering::Relaxed);
        self.saw(e);
    }

    pub fn commit_succeeded(&self) {
        if self.commit_failing.swap(false, Ordering::Relaxed) {
            tracing::info!("outbox commits again");
        }
        self.restore_reserve();
    }

    pub fn record_failed(&self, e: &OutboxError) {
        self.record_failures.fetch_add(1, Ordering::Relaxed);
        self.saw(e);
    }

    /// Any outbox error a caller met: kept as the last error; a damaged database is fatal.
    pub fn saw(&self, e: &OutboxError) {
        *self.last_error.lock() = Some(e.to_string());
        if e.is_disk_full() {
            self.release_reserve();
        }
        if e.fault() == Fault::Fatal {
            let mut fatal = self.fatal.lock();
            if fatal.is_none() {
                tracing::error!(error = %e, "outbox database is damaged; the daemon is no longer ready and stops its watchdog ping so that the service restarts and moves the file aside");
                *fatal = Some(e.to_string());
            }
        }
    }

    pub fn notice(&self, text: String) {
        self.notices.lock().push(text);
    }

    pub fn is_commit_failing(&self) -> bool {
        self.commit_failing.load(Ordering::Relaxed)
    }

    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().clone()
    }

    pub fn report(&self) -> ConditionReport {
        let commit_failing = self.is_commit_failing();
        let fatal = self.fatal();
        ConditionReport {
            commit_failures: self.commit_failures.load(Ordering::Relaxed),
            record_failures: self.record_failures.load(Ordering::Relaxed),
            commit_failing,
            error: (commit_failing || fatal.is_some())
                .then(|| self.last_error.lock().clone())
                .flatten(),
            fatal,
            notices: self.notices.lock().clone(),
            reserve_released: self.reserve.released.load(Ordering::Relaxed),
        }
    }
}
