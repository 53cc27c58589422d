//! The outbox room: the commit point of every alert.
//!
//! One SQLite file (WAL, `synchronous=FULL`, so a commit survives a power cut) holds each
//! alert's exact body bytes once, plus one delivery row per alert × sink. Sinks read only
//! from here. Each body is sealed at commit with an HMAC under a device-local key, and the
//! seal is checked before a row is handed out, so a corrupted or edited row is dead-lettered
//! instead of delivered.

mod payload;
mod schema;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::Sha256;
use std::path::{Path, PathBuf};

pub use payload::{alert_body, test_body, SnapshotField, TEST_CAMERA};

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

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub at: String,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// Per-sink delivery figures (last 24 h where named so).
#[derive(Debug, Clone, Serialize)]
pub struct SinkStats {
    pub sink: String,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    /// Alerts committed for this sink in the last 24 h.
    pub events_24h: i64,
    /// Share of the last 24 h's attempts the receiver acknowledged.
    pub delivery_success_rate: Option<f64>,
    /// Commit → acknowledged, for rows delivered in the last 24 h.
    pub latency_avg_ms: Option<f64>,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
}

/// An alert as the web page lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecentAlert {
    pub alert_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub camera: String,
    pub rule: String,
    pub severity: String,
    /// The payload as committed (`alert.fired` / `alert.ended`).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
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
    key: Vec<u8>,
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
        let key = load_or_create_key(&path.with_extension("key")).map_err(io)?;
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
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            key,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn seal(&self, alert_id: &str, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; the key file is always 32 bytes.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(alert_id.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Commits alerts in one transaction (one fsync for a burst). When this returns Ok, the
    /// alerts exist; before that, nothing may acknowledge them.
    pub fn commit(&mut self, alerts: &[NewAlert]) -> Result<(), OutboxError> {
        type Seals = (Vec<u8>, Vec<Option<Vec<u8>>>);
        let seals: Vec<Seals> = alerts
            .iter()
            .map(|a| {
                let rows = a
                    .sinks
                    .iter()
                    .map(|d| d.body.as_ref().map(|b| self.seal(&a.alert_id, b)))
                    .collect();
                (self.seal(&a.alert_id, &a.body), rows)
            })
            .collect();
        let path = self.path.clone();
        let sql = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut ins_alert = tx
                .prepare_cached(
                    "INSERT INTO alerts (alert_id, created_at, camera, rule, severity, body, seal)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql)?;
            let mut ins_row = tx
                .prepare_cached(
                    "INSERT INTO deliveries (alert_seq, sink, state, attempts, next_attempt_at, body, seal)
                     VALUES (?1, ?2, 'pending', 0, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            for (a, (seal, row_seals)) in alerts.iter().zip(&seals) {
                let ms = a.created_at.timestamp_millis();
                ins_alert
                    .execute(params![
                        a.alert_id, ms, a.camera, a.rule, a.severity, a.body, seal
                    ])
                    .map_err(sql)?;
                let seq = tx.last_insert_rowid();
                for (d, row_seal) in a.sinks.iter().zip(row_seals) {
                    ins_row
                        .execute(params![seq, d.sink, ms, d.body, row_seal])
                        .map_err(sql)?;
                }
            }
        }
        tx.commit().map_err(sql)
    }

    /// Up to `limit` rows of `sink` due at `now_ms`, oldest first. Rows whose seal does not
    /// match their body are dead-lettered here and never returned.
    pub fn due(
        &mut self,
        sink: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, OutboxError> {
        let mut rows = Vec::new();
        let mut broken = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT d.id, a.alert_id, d.sink, COALESCE(d.body, a.body), d.attempts, a.created_at,
                            COALESCE(d.seal, a.seal), a.camera
                     FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq
                     WHERE d.sink = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
                     ORDER BY d.id LIMIT ?3",
                )
                .map_err(|e| self.err(e))?;
            let found = stmt
                .query_map(params![sink, now_ms, limit as i64], |r| {
                    Ok((
                        OutboxRow {
                            id: r.get(0)?,
                            alert_id: r.get(1)?,
                            sink: r.get(2)?,
                            body: r.get(3)?,
                            attempts: r.get(4)?,
                            created_at: r.get(5)?,
                            camera: r.get(7)?,
                        },
                        r.get::<_, Vec<u8>>(6)?,
                    ))
                })
                .and_then(|it| it.collect::<Result<Vec<_>, _>>());
            let found = match found {
                Ok(f) => f,
                Err(e) => {
                    drop(stmt);
                    return Err(self.err(e));
                }
            };
            for (row, seal) in found {
                if self.seal(&row.alert_id, &row.body) == seal {
                    rows.push(row);
                } else {
                    broken.push(row.id);
                }
            }
        }
        for id in broken {
            tracing::error!(
                row = id,
                "outbox row failed its integrity check; dead-lettered, not delivered"
            );
            self.mark_dead(
                id,
                "integrity check failed: body does not match its commit seal",
            )?;
        }
        Ok(rows)
    }

    /// When the next pending row of `sink` becomes due (ms), if any.
    pub fn next_due_at(&self, sink: &str) -> Result<Option<i64>, OutboxError> {
        self.conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ?1 AND state = 'pending'",
                params![sink],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Records one delivery attempt and what follows from it, in one transaction.
    pub fn record(&mut self, id: i64, attempt: &Attempt, next: Next) -> Result<(), OutboxError> {
        self.record_many(&[(id, attempt.clone(), next)])
    }

    /// Records several attempts in one transaction (one fsync for a drained batch).
    pub fn record_many(&mut self, items: &[(i64, Attempt, Next)]) -> Result<(), OutboxError> {
        let path = self.path.clone();
        let sql = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for (id, attempt, next) in items {
            tx.prepare_cached(
                "INSERT INTO attempts (delivery_id, at, status, latency_ms, error) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![id, attempt.at_ms, attempt.status, attempt.latency_ms, attempt.error])
            })
            .map_err(sql)?;
            let (update, p2): (&str, Option<i64>) = match next {
                Next::Delivered => (
                    "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                     delivered_at = ?2, last_error = NULL WHERE id = ?1",
                    Some(attempt.at_ms + attempt.latency_ms),
                ),
                Next::RetryAt(at) => (
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
                     WHERE id = ?1 AND state = 'pending'",
                    Some(*at),
                ),
                Next::Dead => (
                    "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?3
                     WHERE id = ?1 AND ?2 IS NULL",
                    None,
                ),
            };
            tx.prepare_cached(update)
                .and_then(|mut st| {
                    // Each statement names only the parameters it uses; bind the rest as NULL.
                    st.raw_bind_parameter(1, id)?;
                    st.raw_bind_parameter(2, p2)?;
                    if st.parameter_count() >= 3 {
                        st.raw_bind_parameter(3, &attempt.error)?;
                    }
                    st.raw_execute()
                })
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// The attempt history of a delivery row, oldest first.
    pub fn attempts(&self, id: i64) -> Result<Vec<AttemptRow>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at, status, latency_ms, error FROM attempts WHERE delivery_id = ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok(AttemptRow {
                    at: ms_to_rfc3339(r.get(0)?),
                    status: r.get(1)?,
                    latency_ms: r.get(2)?,
                    error: r.get(3)?,
                })
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// Per-sink figures over the last 24 hours (what receivers' dashboards watch).
    pub fn sink_stats(&self, now_ms: i64) -> Result<Vec<SinkStats>, OutboxError> {
        let since = now_ms - 24 * 3600 * 1000;
        let sinks: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT DISTINCT sink FROM deliveries ORDER BY sink")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .and_then(|it| it.collect::<Result<Vec<String>, _>>());
            rows.map_err(|e| self.err(e))?
        };
        let mut out = Vec::new();
        for sink in sinks {
            let one = |sql: &str| -> Result<i64, OutboxError> {
                self.conn
                    .query_row(sql, params![sink, since], |r| r.get(0))
                    .map_err(|e| self.err(e))
            };
            let count_state = |state: &str| {
                one(&format!(
                    "SELECT COUNT(*) FROM deliveries WHERE sink = ?1 AND state = '{state}' AND ?2 = ?2"
                ))
            };
            let attempts_24h = one(
                "SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.sink = ?1 AND a.at >= ?2",
            )?;
            let ok_24h = one(
                "SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.sink = ?1 AND a.at >= ?2 AND a.error IS NULL",
            )?;
            let mut latencies: Vec<i64> = {
                let mut stmt = self
                    .conn
                    .prepare_cached(
                        "SELECT d.delivered_at - a.created_at FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq
                         WHERE d.sink = ?1 AND d.state = 'delivered' AND d.delivered_at >= ?2",
                    )
                    .map_err(|e| self.err(e))?;
                let rows = stmt
                    .query_map(params![sink, since], |r| r.get(0))
                    .and_then(|it| it.collect::<Result<Vec<i64>, _>>());
                rows.map_err(|e| self.err(e))?
            };
            latencies.sort_unstable();
            let avg = (!latencies.is_empty())
                .then(|| latencies.iter().sum::<i64>() as f64 / latencies.len() as f64);
            let quantile = |q: f64| {
                latencies
                    .get(((latencies.len() as f64 - 1.0) * q).round().max(0.0) as usize)
                    .copied()
            };
            let (p50, p95) = (quantile(0.5), quantile(0.95));
            out.push(SinkStats {
                events_24h: one(
                    "SELECT COUNT(*) FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq
                     WHERE d.sink = ?1 AND a.created_at >= ?2",
                )?,
                pending: count_state("pending")?,
                delivered: count_state("delivered")?,
                dead: count_state("dead")?,
                delivery_success_rate: (attempts_24h > 0)
                    .then(|| ok_24h as f64 / attempts_24h as f64),
                latency_avg_ms: avg,
                latency_p50_ms: p50,
                latency_p95_ms: p95,
                sink,
            });
        }
        Ok(out)
    }

    /// The newest `limit` alerts, newest first, each with its body as committed.
    pub fn recent_alerts(&self, limit: usize) -> Result<Vec<RecentAlert>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT alert_id, created_at, camera, rule, severity, body FROM alerts
                 ORDER BY seq DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![limit as i64], |r| {
                let body: Vec<u8> = r.get(5)?;
                Ok(RecentAlert {
                    alert_id: r.get(0)?,
                    created_at: r.get(1)?,
                    camera: r.get(2)?,
                    rule: r.get(3)?,
                    severity: r.get(4)?,
                    body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                })
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// Alerts per rule and per camera since `since_ms`, with the newest one's time (for the
    /// silence check in health).
    pub fn activity(&self, since_ms: i64) -> Result<Vec<Activity>, OutboxError> {
        let mut out = Vec::new();
        for kind in ["rule", "camera"] {
            let mut stmt = self
                .conn
                .prepare_cached(&format!(
                    "SELECT {kind}, COUNT(*), MAX(created_at) FROM alerts
                     WHERE created_at >= ?1 GROUP BY {kind} ORDER BY {kind}"
                ))
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![since_ms], |r| {
                    Ok(Activity {
                        kind,
                        name: r.get(0)?,
                        events: r.get(1)?,
                        last_ms: r.get(2)?,
                    })
                })
                .and_then(|it| it.collect::<Result<Vec<_>, _>>());
            out.extend(rows.map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    pub fn mark_dead(&mut self, id: i64, error: &str) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE deliveries SET state = 'dead', last_error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Dead-letters pending rows of `sink` created before `cutoff_ms` (they outlived max_age).
    pub fn expire(&mut self, sink: &str, cutoff_ms: i64) -> Result<usize, OutboxError> {
        self.conn
            .execute(
                "UPDATE deliveries SET state = 'dead', last_error = 'expired: older than max_age'
                 WHERE sink = ?1 AND state = 'pending'
                   AND alert_seq IN (SELECT seq FROM alerts WHERE created_at < ?2)",
                params![sink, cutoff_ms],
            )
            .map_err(|e| self.err(e))
    }

    /// Bytes the rows occupy (pages in use, not free pages SQLite keeps for reuse).
    pub fn used_bytes(&self) -> Result<u64, OutboxError> {
        let q = |p: &str| -> Result<i64, OutboxError> {
            self.conn
                .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
                .map_err(|e| self.err(e))
        };
        let used = q("page_count")? - q("freelist_count")?;
        Ok((used.max(0) as u64) * q("page_size")? as u64)
    }

    /// Keeps the outbox within its bounds. Delivered rows older than `history_cutoff_ms` go
    /// (when given: that pass scans the delivered rows, so callers run it now and then); over `max_bytes`, in this order: delivered rows, dead letters older than
    /// `dead_cutoff_ms`, then undelivered rows of the lowest severity, oldest first. Freed pages
    /// are reused, so the file stops growing at the cap.
    pub fn enforce_limits(
        &mut self,
        max_bytes: u64,
        history_cutoff_ms: Option<i64>,
        dead_cutoff_ms: i64,
    ) -> Result<Drops, OutboxError> {
        let mut drops = Drops::default();
        if let Some(cutoff) = history_cutoff_ms {
            self.delete_where(
                "state = 'delivered' AND delivered_at < ?1",
                cutoff,
                i64::MAX,
            )?;
        }
        const CHUNK: i64 = 200;
        let steps: [(&str, &str, i64); 3] = [
            ("delivered", "state = 'delivered' AND ?1 = ?1 ORDER BY id", 0),
            (
                "dead",
                "state = 'dead' AND alert_seq IN (SELECT seq FROM alerts WHERE created_at < ?1) ORDER BY id",
                dead_cutoff_ms,
            ),
            (
                "pending",
                "state = 'pending' AND ?1 = ?1 ORDER BY (SELECT CASE a.severity WHEN 'info' THEN 0
                 WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 ELSE 4 END
                 FROM alerts a WHERE a.seq = alert_seq), id",
                0,
            ),
        ];
        for (kind, filter, arg) in steps {
            while self.used_bytes()? > max_bytes {
                let n = self.delete_where(filter, arg, CHUNK)?;
                if n == 0 {
                    break;
                }
                match kind {
                    "delivered" => drops.delivered += n,
                    "dead" => drops.dead += n,
                    _ => drops.undelivered += n,
                }
            }
        }
        Ok(drops)
    }

    /// Deletes up to `limit` delivery rows matching `filter` (one `?1` parameter), with their
    /// attempts, and the alert bodies no row refers to any more; one transaction.
    fn delete_where(&mut self, filter: &str, arg: i64, limit: i64) -> Result<u64, OutboxError> {
        let path = self.path.clone();
        let sql = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let picked: Vec<(i64, i64)> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT id, alert_seq FROM deliveries WHERE {filter} LIMIT ?2"
                ))
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![arg, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|it| it.collect::<Result<Vec<_>, _>>());
            rows.map_err(sql)?
        };
        for (id, seq) in &picked {
            tx.execute("DELETE FROM deliveries WHERE id = ?1", params![id])
                .map_err(sql)?;
            tx.execute(
                "DELETE FROM alerts WHERE seq = ?1 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE alert_seq = ?1)",
                params![seq],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(picked.len() as u64)
    }

    /// Puts a dead letter back in the queue, due now.
    pub fn replay(&mut self, id: i64, now_ms: i64) -> Result<(), OutboxError> {
        let n = self
            .conn
            .execute(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = ?2, attempts = 0
                 WHERE id = ?1 AND state = 'dead'",
                params![id, now_ms],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(OutboxError::NoSuchRow(id));
        }
        Ok(())
    }

    pub fn replay_all_dead(&mut self, now_ms: i64) -> Result<usize, OutboxError> {
        self.conn
            .execute(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = ?1, attempts = 0
                 WHERE state = 'dead'",
                params![now_ms],
            )
            .map_err(|e| self.err(e))
    }

    /// Proves the outbox can still take its write lock (for the service watchdog) and
    /// returns the number of rows waiting; writes nothing.
    pub fn probe_write(&mut self) -> Result<i64, OutboxError> {
        let sql = |source| OutboxError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let pending = tx
            .query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .map_err(sql);
        drop(tx); // rolls back
        pending
    }

    pub fn stats(&self) -> Result<Stats, OutboxError> {
        let count = |sql: &str| -> Result<i64, OutboxError> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(|e| self.err(e))
        };
        let oldest: Option<i64> = self
            .conn
            .query_row(
                "SELECT MIN(a.created_at) FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq
                 WHERE d.state = 'pending'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        let file_bytes = [self.path.clone(), wal_path(&self.path)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        Ok(Stats {
            alerts: count("SELECT COUNT(*) FROM alerts")?,
            pending: count("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")?,
            delivered: count("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")?,
            dead: count("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'")?,
            oldest_pending: oldest.map(ms_to_rfc3339),
            file_bytes,
        })
    }

    /// Rows oldest first, optionally only those in `state`.
    pub fn list(
        &self,
        state: Option<RowState>,
        limit: usize,
    ) -> Result<Vec<ListedRow>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.id, a.alert_id, d.sink, d.state, d.attempts, a.created_at, a.camera, a.rule,
                        d.last_error, d.delivered_at
                 FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq
                 WHERE ?1 IS NULL OR d.state = ?1
                 ORDER BY d.id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![state.map(RowState::as_str), limit as i64], |r| {
                Ok(ListedRow {
                    id: r.get(0)?,
                    alert_id: r.get(1)?,
                    sink: r.get(2)?,
                    state: RowState::parse(&r.get::<_, String>(3)?),
                    attempts: r.get(4)?,
                    created_at: ms_to_rfc3339(r.get(5)?),
                    camera: r.get(6)?,
                    rule: r.get(7)?,
                    last_error: r.get(8)?,
                    delivered_at: r.get::<_, Option<i64>>(9)?.map(ms_to_rfc3339),
                })
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// The committed body of an alert, exactly as it is sent.
    pub fn body(&self, alert_id: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        self.conn
            .query_row(
                "SELECT body FROM alerts WHERE alert_id = ?1",
                params![alert_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

fn wal_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(crate::clock::rfc3339_ms)
        .unwrap_or_else(|| ms.to_string())
}

/// The sealing key lives beside the database, readable by the service user only.
fn load_or_create_key(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(k) if k.len() == 32 => return Ok(k),
        Ok(k) => {
            return Err(format!(
                "{}: expected a 32-byte key, found {} bytes",
                path.display(),
                k.len()
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let key: [u8; 32] = rand::random();
    let tmp = path.with_extension("key.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| format!("cannot create key {}: {e}", path.display()))?;
    Ok(key.to_vec())
}

/// The outbox shared between the committing thread and the async sinks. Every call runs on
/// tokio's blocking pool (or the caller's own thread), never on the async executor.
#[derive(Clone)]
pub struct SharedOutbox(std::sync::Arc<parking_lot::Mutex<Outbox>>);

impl SharedOutbox {
    pub fn new(outbox: Outbox) -> Self {
        Self(std::sync::Arc::new(parking_lot::Mutex::new(outbox)))
    }

    /// Runs `f` on the calling thread; for threads that are not async tasks.
    pub fn with<R>(&self, f: impl FnOnce(&mut Outbox) -> R) -> R {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is safe to keep using.
        let mut guard = self.0.lock();
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
