//! The outbox room: the commit point of every alert.
//!
//! One SQLite file (WAL, `synchronous=FULL`, so a commit survives a power cut) holds each
//! alert's exact body bytes once, plus one delivery row per alert × sink. Sinks read only
//! from here. Each body is sealed at commit with an HMAC under a device-local key, and the
//! seal is checked before a row is handed out, so a corrupted or edited row is dead-lettered
//! instead of delivered.
//!
//! Files: this one (the types and [`Outbox::open`]), `write` (commit, attempts, dead
//! letters), `queue` (what is due, replay), `retention` (limits), `report` (statistics and
//! listings), `seal` (the key and the HMAC), `schema` (migrations), `payload` (the JSON
//! body of an alert), `condition` (what a fault means and the state it leaves), `recover`
//! (the start-up check, moving a damaged file aside, the high-water mark, salvage).

mod condition;
mod payload;
mod queue;
mod recover;
mod report;
mod retention;
mod schema;
mod seal;
mod write;

use chrono::{DateTime, Utc};
use hmac::Hmac;
use rusqlite::Connection;
use seal::{settle_key, Key};
use serde::Serialize;
use sha2::Sha256;
use std::path::{Path, PathBuf};
pub use watchpost_contracts::health::SinkStats;

pub use condition::{Condition, ConditionReport, Fault};
pub use payload::{alert_body, test_body, SnapshotField, TEST_CAMERA};
pub use recover::Salvage;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("outbox {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("outbox {path}: schema version {found} is newer than this watchpost knows ({known}); upgrade watchpost")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("no outbox row with id {0}")]
    NoSuchRow(i64),
    #[error("outbox {path}: holds {held} alerts ({waiting} still to deliver) sealed with a key, but {key} is missing. Restore the outbox.key backed up with this outbox (docs/operations.md, \"Backup and restore\"), or move {path} aside to start with an empty outbox. No key was made and no row was changed")]
    KeyMissing {
        path: PathBuf,
        key: PathBuf,
        held: i64,
        waiting: i64,
    },
    #[error("outbox {path}: holds {held} alerts ({waiting} still to deliver) sealed with another key than the one in {key} (key id {found}). Restore the outbox.key backed up with this outbox (docs/operations.md, \"Backup and restore\"), or move {path} aside to start with an empty outbox. No row was changed")]
    KeyMismatch {
        path: PathBuf,
        key: PathBuf,
        held: i64,
        waiting: i64,
        found: String,
    },
}

/// An alert ready to commit: its body and the sinks it goes to.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub alert_id: String,
    pub created_at: DateTime<Utc>,
    pub camera: String,
    pub rule: String,
    pub severity: String,
    pub body: Vec<u8>,
    pub sinks: Vec<NewDelivery>,
}

/// One sink an alert goes to, with its own body when it differs from the alert's.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub sink: String,
    pub body: Option<Vec<u8>>,
}

impl NewDelivery {
    pub fn to(sink: &str) -> Self {
        Self {
            sink: sink.to_string(),
            body: None,
        }
    }
}

/// One delivery due to a sink, handed to the deliver room.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub alert_id: String,
    pub sink: String,
    /// For sinks that route by camera (MQTT topics).
    pub camera: String,
    pub body: Vec<u8>,
    pub attempts: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RowState {
    Pending,
    Delivered,
    Dead,
}

impl RowState {
    fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Delivered => "delivered",
            RowState::Dead => "dead",
        }
    }
    fn parse(s: &str) -> RowState {
        match s {
            "delivered" => RowState::Delivered,
            "dead" => RowState::Dead,
            _ => RowState::Pending,
        }
    }
}

/// Rows removed to keep the outbox within its size bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Drops {
    pub delivered: u64,
    pub dead: u64,
    /// Alerts lost to the cap before delivery: the last resort, counted and logged.
    pub undelivered: u64,
}

/// One delivery attempt, as recorded.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at_ms: i64,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// What happens to a row after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Delivered,
    RetryAt(i64),
    Dead,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptRow {
    pub at: String,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// An alert as the web page lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecentAlert {
    /// Its place in the outbox: the page asks for older ones with `before=seq`.
    pub seq: i64,
    pub alert_id: String,
    /// When it was committed (RFC 3339, like every time the API gives).
    pub created_at: String,
    pub camera: String,
    pub rule: String,
    pub severity: String,
    /// The payload as committed (`alert.fired` / `alert.ended`).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// One alert and what became of it at each sink: the committed body and, per sink, every
/// attempt (time, status, latency, error) and where the row stands now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: RecentAlert,
    pub deliveries: Vec<DeliveryChain>,
}

/// One sink's row of an alert.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryChain {
    /// The delivery row's id (what `POST /api/dead-letters/{id}/replay` takes).
    pub id: i64,
    pub sink: String,
    pub state: RowState,
    /// Pending rows: when the next attempt is due.
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    /// Oldest first.
    pub attempts: Vec<AttemptRow>,
}

/// Which alerts a listing wants; `None` = any.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub camera: Option<String>,
    pub rule: Option<String>,
    pub label: Option<String>,
    pub severity: Option<String>,
    /// Unix ms, inclusive / exclusive.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only alerts older than this `seq` (the next page).
    pub before: Option<i64>,
    pub limit: usize,
}

/// How often a rule or a camera fired since some time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// `rule` or `camera`.
    pub kind: &'static str,
    pub name: String,
    pub events: i64,
    pub last_ms: i64,
}

/// A row as `outbox list` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListedRow {
    pub id: i64,
    pub alert_id: String,
    pub sink: String,
    pub state: RowState,
    pub attempts: i64,
    pub created_at: String,
    pub camera: String,
    pub rule: String,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub alerts: i64,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    /// Creation time of the oldest undelivered row, if any.
    pub oldest_pending: Option<String>,
    pub file_bytes: u64,
}

pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    key: Key,
}

impl Outbox {
    /// Opens (creating if needed) the outbox file and its sealing key beside it.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        let io = |message: String| OutboxError::Io {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
        }
        let sql = |source| OutboxError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        schema::migrate(&mut conn, path)?;
        let key = settle_key(&conn, path, &path.with_extension("key"))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            key,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn seal(&self, alert_id: &str, body: &[u8]) -> Vec<u8> {
        self.key.seal(alert_id, body)
    }

    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

fn wal_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// Unix milliseconds as the API's one time format (RFC 3339, milliseconds, UTC).
pub fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(crate::clock::rfc3339_ms)
        .unwrap_or_else(|| ms.to_string())
}

/// The outbox shared between the committing thread and the async sinks. Every call runs on
/// tokio's blocking pool (or the caller's own thread), never on the async executor.
#[derive(Clone)]
pub struct SharedOutbox {
    db: std::sync::Arc<parking_lot::Mutex<Outbox>>,
    condition: std::sync::Arc<Condition>,
}

impl SharedOutbox {
    pub fn new(outbox: Outbox) -> Self {
        Self::with_condition(outbox, Condition::default())
    }

    /// With what opening found (see [`Outbox::open_checked`]).
    pub fn with_condition(outbox: Outbox, condition: Condition) -> Self {
        Self {
            db: std::sync::Arc::new(parking_lot::Mutex::new(outbox)),
            condition: std::sync::Arc::new(condition),
        }
    }

    /// Readable while the database is busy or stuck.
    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    /// Runs `f` on the calling thread; for threads that are not async tasks.
    pub fn with<R>(&self, f: impl FnOnce(&mut Outbox) -> R) -> R {
        let mut guard = self.db.lock();
        f(&mut guard)
    }

    /// Runs `f` on tokio's blocking pool.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox) -> Result<R, OutboxError> + Send + 'static,
    ) -> Result<R, OutboxError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.with(f))
            .await
            .map_err(|e| OutboxError::Io {
                path: PathBuf::from("outbox"),
                message: format!("outbox task failed: {e}"),
            })?
    }
}
