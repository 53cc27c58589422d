//! The console's data layer: one set of queries over two engines — SQLite (WAL) in `data_dir`
//! by default, PostgreSQL for production and for several replicas. Ingest writes batches in
//! one transaction each (idempotent: a redelivered message changes nothing twice); the web
//! reads on a connection of its own.

mod alarms;
mod conn;
mod postgres;
mod schema;
mod sqlite;

pub use alarms::{AlarmRow, Condition, DeliveryRow};
use conn::{transaction, Conn, Row};
pub use conn::{Engine, Value};
use parking_lot::Mutex;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {what}: {message}")]
    Open { what: String, message: String },
    #[error("database: {0}")]
    Database(String),
    #[error("the database's schema is version {found}, newer than this console knows ({known}); run the newer console or restore a backup")]
    TooNew { found: i64, known: i64 },
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What ingest writes. Every record is idempotent: written twice, it changes nothing twice.
#[derive(Debug, Clone)]
pub enum Record {
    Status {
        device: String,
        online: bool,
        seen_ms: i64,
    },
    Health(Box<HealthRecord>),
    ConfigState {
        device: String,
        version: i64,
        toml: String,
        seen_ms: i64,
    },
    Alert(Box<AlertRecord>),
    /// A gateway's answer to a request (its MQTT 5 correlation data is the request's id).
    Answer {
        request: String,
        device: String,
        ok: bool,
        result: String,
        seen_ms: i64,
    },
}

#[derive(Debug, Clone)]
pub struct HealthRecord {
    pub device: String,
    pub site: String,
    pub version: String,
    /// When the gateway made it (its clock), the history's key.
    pub at_ms: i64,
    /// When it counts as seen (the console's clock): freshness is judged on this.
    pub seen_ms: i64,
    pub interval_s: f64,
    pub uptime_s: i64,
    pub cameras_up: i64,
    pub cameras_total: i64,
    pub cameras_down: String,
    pub inference_ms: Option<f64>,
    pub outbox_pending: i64,
    pub dead_letters: i64,
    pub events_24h: i64,
    pub delivery_success_rate: Option<f64>,
    pub delivery_latency_p95_ms: Option<i64>,
    pub anomalies: i64,
    pub json: String,
    /// Add a history row (the shared subscription's copy); the retained copy only updates
    /// the latest state.
    pub history: bool,
}

#[derive(Debug, Clone)]
pub struct AlertRecord {
    pub alert_id: String,
    pub kind: String,
    pub device: String,
    pub site: String,
    pub camera: Option<String>,
    pub rule: Option<String>,
    pub label: Option<String>,
    pub severity: Option<String>,
    pub confidence: Option<f64>,
    pub at_ms: i64,
    pub seen_ms: i64,
    pub body: String,
    pub snapshot: Option<Vec<u8>>,
}

/// What a batch did.
#[derive(Debug, Default, Clone)]
pub struct Written {
    /// Alerts stored for the first time (the others were redeliveries).
    pub new_alerts: Vec<AlertRow>,
    pub duplicates: u64,
}

/// A gateway as the fleet page lists it (the latest of everything it said).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GatewayRow {
    pub device: String,
    pub site: String,
    /// `online`, `offline` or `unknown` as its `status` topic last said.
    pub status: String,
    pub status_ms: Option<i64>,
    pub first_seen_ms: i64,
    pub health_ms: Option<i64>,
    pub health_interval_s: Option<f64>,
    pub version: Option<String>,
    pub uptime_s: Option<i64>,
    pub cameras_up: Option<i64>,
    pub cameras_total: Option<i64>,
    /// Cameras not streaming, by name.
    pub cameras_down: Vec<String>,
    pub inference_ms: Option<f64>,
    pub outbox_pending: Option<i64>,
    pub dead_letters: Option<i64>,
    pub events_24h: Option<i64>,
    pub delivery_success_rate: Option<f64>,
    pub delivery_latency_p95_ms: Option<i64>,
    pub anomalies: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertRow {
    pub alert_id: String,
    /// `alert.fired`, `alert.ended`, …
    pub kind: String,
    pub device: String,
    pub site: String,
    pub camera: Option<String>,
    pub rule: Option<String>,
    pub label: Option<String>,
    pub severity: Option<String>,
    pub confidence: Option<f64>,
    pub at_ms: i64,
    pub seen_ms: i64,
    pub has_snapshot: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HealthPoint {
    pub at_ms: i64,
    pub outbox_pending: Option<i64>,
    pub dead_letters: Option<i64>,
    pub inference_ms: Option<f64>,
    pub cameras_up: Option<i64>,
    pub cameras_total: Option<i64>,
}

/// Which alerts a query wants; every field optional.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct AlertFilter {
    pub site: Option<String>,
    pub device: Option<String>,
    pub camera: Option<String>,
    pub rule: Option<String>,
    pub severity: Option<String>,
    /// Only alerts before this time (unix ms): the next page.
    pub before_ms: Option<i64>,
    pub since_ms: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

pub struct Store {
    engine: Engine,
    writer: Mutex<Box<dyn Conn>>,
    reader: Mutex<Box<dyn Conn>>,
}

const GATEWAY_COLUMNS: &str = "device, site, status, status_ms, first_seen_ms, health_ms, health_interval_s, version, uptime_s, cameras_up, cameras_total, cameras_down, inference_ms, outbox_pending, dead_letters, events_24h, delivery_success_rate, delivery_latency_p95_ms, anomalies";
const ALERT_COLUMNS: &str = "alert_id, kind, device, site, camera, rule, label, severity, confidence, at_ms, seen_ms, snapshot IS NOT NULL";

impl Store {
    /// PostgreSQL when `database_url` is given, else SQLite in `data_dir/console.db`;
    /// migrated to this binary's schema.
    pub fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        let (mut writer, reader): (Box<dyn Conn>, Box<dyn Conn>) = match database_url {
            Some(url) => (
                Box::new(postgres::Postgres::connect(url)?),
                Box::new(postgres::Postgres::connect(url)?),
            ),
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
                    what: data_dir.display().to_string(),
                    message: e.to_string(),
                })?;
                let path = data_dir.join("console.db");
                let w = sqlite::Sqlite::open(&path)?;
                (Box::new(w), Box::new(sqlite::Sqlite::open(&path)?))
            }
        };
        let engine = writer.engine();
        let found = schema::migrate(writer.as_mut())?;
        if found < schema::VERSION {
            tracing::info!(
                from = found,
                to = schema::VERSION,
                engine = engine.name(),
                "database migrated"
            );
        }
        Ok(Self {
            engine,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Writes a batch in one transaction.
    pub fn write(&self, batch: &[Record]) -> Result<Written, StoreError> {
        let mut w = self.writer.lock();
        transaction(w.as_mut(), |c| {
            let mut out = Written::default();
            let mut health = Vec::new();
            for r in batch {
                match r {
                    Record::Health(h) => health.push(h.as_ref()),
                    other => write_one(c, other, &mut out)?,
                }
            }
            write_health(c, &health)?;
            Ok(out)
        })
    }

    pub fn gateways(&self) -> Result<Vec<GatewayRow>, StoreError> {
        let rows = self.reader.lock().query(
            &format!("SELECT {GATEWAY_COLUMNS} FROM gateways ORDER BY site, device"),
            &[],
        )?;
        Ok(rows.into_iter().map(gateway_row).collect())
    }

    /// One gateway: its row, its latest health document and its running config (redacted
    /// by the gateway itself) with the config's version.
    pub fn gateway(&self, device: &str) -> Result<Option<GatewayDetail>, StoreError> {
        let mut r = self.reader.lock();
        let rows = r.query(
            &format!(
                "SELECT {GATEWAY_COLUMNS}, health, config_version, config_toml FROM gateways WHERE device = $1"
            ),
            &[device.into()],
        )?;
        Ok(rows.into_iter().next().map(|mut row| {
            let config_toml = row.pop().and_then(|v| v.text());
            let config_version = row.pop().and_then(|v| v.int());
            let health = row
                .pop()
                .and_then(|v| v.text())
                .and_then(|t| serde_json::from_str(&t).ok());
            GatewayDetail {
                gateway: gateway_row(row),
                health,
                config_version,
                config_toml,
            }
        }))
    }

    pub fn history(&self, device: &str, since_ms: i64) -> Result<Vec<HealthPoint>, StoreError> {
        let rows = self.reader.lock().query(
            "SELECT at_ms, outbox_pending, dead_letters, inference_ms, cameras_up, cameras_total FROM health_history WHERE device = $1 AND at_ms >= $2 ORDER BY at_ms",
            &[device.into(), since_ms.into()],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| HealthPoint {
                at_ms: r[0].int().unwrap_or(0),
                outbox_pending: r[1].int(),
                dead_letters: r[2].int(),
                inference_ms: r[3].real(),
                cameras_up: r[4].int(),
                cameras_total: r[5].int(),
            })
            .collect())
    }

    /// Newest first.
    pub fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRow>, StoreError> {
        let mut sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1");
        let mut params: Vec<Value> = Vec::new();
        let mut cond = |column: &str, op: &str, v: Value| {
            params.push(v);
            sql.push_str(&format!(" AND {column} {op} ${}", params.len()));
        };
        for (column, v) in [
            ("site", &f.site),
            ("device", &f.device),
            ("camera", &f.camera),
            ("rule", &f.rule),
            ("severity", &f.severity),
        ] {
            if let Some(v) = v {
                cond(column, "=", v.as_str().into());
            }
        }
        if let Some(b) = f.before_ms {
            cond("at_ms", "<", b.into());
        }
        if let Some(s) = f.since_ms {
            cond("at_ms", ">=", s.into());
        }
        let limit = f.limit.unwrap_or(100).clamp(1, 1000);
        params.push(limit.into());
        sql.push_str(&format!(
            " ORDER BY at_ms DESC, alert_id DESC LIMIT ${}",
            params.len()
        ));
        let rows = self.reader.lock().query(&sql, &params)?;
        Ok(rows.into_iter().map(alert_row).collect())
    }

    pub fn snapshot(&self, alert_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.reader.lock().query(
            "SELECT snapshot FROM alerts WHERE alert_id = $1",
            &[alert_id.into()],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(Value::blob))
    }

    /// How many alerts are stored.
    pub fn alert_count(&self) -> Result<i64, StoreError> {
        let rows = self
            .reader
            .lock()
            .query("SELECT COUNT(*) FROM alerts", &[])?;
        Ok(rows
            .first()
            .and_then(|r| r.first().and_then(Value::int))
            .unwrap_or(0))
    }

    /// Removes history and alerts older than `before_ms`; how many rows went.
    pub fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut w = self.writer.lock();
        transaction(w.as_mut(), |c| {
            let a = c.execute(
                "DELETE FROM health_history WHERE at_ms < $1",
                &[before_ms.into()],
            )?;
            let b = c.execute("DELETE FROM alerts WHERE at_ms < $1", &[before_ms.into()])?;
            Ok(a + b)
        })
    }

    /// A cheap read that proves the database answers (readiness).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.reader.lock().query("SELECT 1", &[]).map(|_| ())
    }
}

/// A request to a gateway (command, config push, enrolment) as the audit log shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestRow {
    pub id: String,
    pub rollout: Option<String>,
    pub device: String,
    /// `config/set`, `cmd/{name}`, `enrol`.
    pub kind: String,
    /// What was asked (secrets in pushed config redacted).
    pub what: String,
    pub who: String,
    pub sent_ms: i64,
    pub expires_ms: i64,
    pub answered_ms: Option<i64>,
    /// `applied` / `refused` (the gateway answered ok or not), `waiting`, or `no-answer` once
    /// the request expired unanswered.
    pub outcome: String,
    /// The gateway's answer, as it sent it.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// A new request to record before it is sent.
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub rollout: Option<&'a str>,
    pub device: &'a str,
    pub kind: &'a str,
    pub what: &'a str,
    pub who: &'a str,
    pub sent_ms: i64,
    pub expires_ms: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RolloutRow {
    pub id: String,
    pub who: String,
    pub created_ms: i64,
    /// What was targeted, in words (`site=north`, `devices=a,b`).
    pub target: String,
    pub what: String,
    pub timeout_s: f64,
}

const REQUEST_COLUMNS: &str =
    "id, rollout, device, kind, what, who, sent_ms, expires_ms, answered_ms, ok, result";

fn request_row(r: Row, now_ms: i64) -> RequestRow {
    let t = |i: usize| r.get(i).and_then(Value::text);
    let n = |i: usize| r.get(i).and_then(Value::int);
    let expires_ms = n(7).unwrap_or(0);
    let answered_ms = n(8);
    let outcome = match (answered_ms, n(9)) {
        (Some(_), Some(1)) => "applied",
        (Some(_), _) => "refused",
        (None, _) if now_ms > expires_ms => "no-answer",
        (None, _) => "waiting",
    };
    RequestRow {
        id: t(0).unwrap_or_default(),
        rollout: t(1),
        device: t(2).unwrap_or_default(),
        kind: t(3).unwrap_or_default(),
        what: t(4).unwrap_or_default(),
        who: t(5).unwrap_or_default(),
        sent_ms: n(6).unwrap_or(0),
        expires_ms,
        answered_ms,
        outcome: outcome.into(),
        result: t(10).and_then(|j| serde_json::from_str(&j).ok()),
    }
}

impl Store {
    /// Records a gateway's control key; false when it has one already.
    pub fn add_key(&self, device: &str, key: &str) -> Result<bool, StoreError> {
        let n = self.writer.lock().execute(
            "INSERT INTO gateway_keys (device, control_key, created_ms) VALUES ($1, $2, $3) ON CONFLICT (device) DO NOTHING",
            &[device.into(), key.into(), now_ms().into()],
        )?;
        Ok(n == 1)
    }

    /// Replaces `device`'s tags.
    pub fn set_tags(&self, device: &str, tags: &[String]) -> Result<(), StoreError> {
        let mut w = self.writer.lock();
        transaction(w.as_mut(), |c| {
            c.execute(
                "DELETE FROM gateway_tags WHERE device = $1",
                &[device.into()],
            )?;
            for t in tags {
                c.execute(
                    "INSERT INTO gateway_tags (device, tag) VALUES ($1, $2) ON CONFLICT (device, tag) DO NOTHING",
                    &[device.into(), t.as_str().into()],
                )?;
            }
            Ok(())
        })
    }

    /// Every gateway's tags, by device.
    pub fn tags(&self) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError> {
        let rows = self.reader.lock().query(
            "SELECT device, tag FROM gateway_tags ORDER BY device, tag",
            &[],
        )?;
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for r in rows {
            if let (Some(d), Some(t)) = (r[0].text(), r[1].text()) {
                out.entry(d).or_default().push(t);
            }
        }
        Ok(out)
    }

    /// Replaces `device`'s key (after the gateway applied the new one).
    pub fn set_key(&self, device: &str, key: &str) -> Result<(), StoreError> {
        self.writer.lock().execute(
            "UPDATE gateway_keys SET control_key = $1, created_ms = $2 WHERE device = $3",
            &[key.into(), now_ms().into(), device.into()],
        )?;
        Ok(())
    }

    /// The key commands to `device` are signed with (never leaves the console).
    pub fn key(&self, device: &str) -> Result<Option<String>, StoreError> {
        let rows = self.reader.lock().query(
            "SELECT control_key FROM gateway_keys WHERE device = $1",
            &[device.into()],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.first().and_then(Value::text)))
    }

    /// Devices with a key here (enrolled).
    pub fn enrolled(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .reader
            .lock()
            .query("SELECT device FROM gateway_keys ORDER BY device", &[])?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.first().and_then(Value::text))
            .collect())
    }

    pub fn add_request(&self, q: &NewRequest<'_>) -> Result<(), StoreError> {
        self.writer.lock().execute(
            "INSERT INTO requests (id, rollout, device, kind, what, who, sent_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                q.id.into(),
                q.rollout.into(),
                q.device.into(),
                q.kind.into(),
                q.what.into(),
                q.who.into(),
                q.sent_ms.into(),
                q.expires_ms.into(),
            ],
        )?;
        Ok(())
    }

    /// Marks a request answered by the console itself (an enrolment, a send that failed).
    pub fn settle_request(
        &self,
        id: &str,
        ok: bool,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.writer.lock().execute(
            "UPDATE requests SET answered_ms = $1, ok = $2, result = $3 WHERE id = $4 AND answered_ms IS NULL",
            &[now_ms().into(), i64::from(ok).into(), result.to_string().into(), id.into()],
        )?;
        Ok(())
    }

    pub fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        let rows = self.reader.lock().query(
            &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"),
            &[id.into()],
        )?;
        let now = now_ms();
        Ok(rows.into_iter().next().map(|r| request_row(r, now)))
    }

    /// The audit log, newest first: of one device, of one rollout, or all.
    pub fn requests(
        &self,
        device: Option<&str>,
        rollout: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RequestRow>, StoreError> {
        let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE 1 = 1");
        let mut params: Vec<Value> = Vec::new();
        if let Some(d) = device {
            params.push(d.into());
            sql.push_str(&format!(" AND device = ${}", params.len()));
        }
        if let Some(r) = rollout {
            params.push(r.into());
            sql.push_str(&format!(" AND rollout = ${}", params.len()));
        }
        params.push(limit.clamp(1, 10_000).into());
        sql.push_str(&format!(
            " ORDER BY sent_ms DESC, id DESC LIMIT ${}",
            params.len()
        ));
        let rows = self.reader.lock().query(&sql, &params)?;
        let now = now_ms();
        Ok(rows.into_iter().map(|r| request_row(r, now)).collect())
    }

    pub fn add_rollout(&self, r: &RolloutRow) -> Result<(), StoreError> {
        self.writer.lock().execute(
            "INSERT INTO rollouts (id, who, created_ms, target, what, timeout_s) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                r.id.as_str().into(),
                r.who.as_str().into(),
                r.created_ms.into(),
                r.target.as_str().into(),
                r.what.as_str().into(),
                r.timeout_s.into(),
            ],
        )?;
        Ok(())
    }

    pub fn rollout(&self, id: &str) -> Result<Option<RolloutRow>, StoreError> {
        let rows = self.reader.lock().query(
            "SELECT id, who, created_ms, target, what, timeout_s FROM rollouts WHERE id = $1",
            &[id.into()],
        )?;
        Ok(rows.into_iter().next().map(rollout_row))
    }

    pub fn rollouts(&self, limit: i64) -> Result<Vec<RolloutRow>, StoreError> {
        let rows = self.reader.lock().query(
            "SELECT id, who, created_ms, target, what, timeout_s FROM rollouts ORDER BY created_ms DESC LIMIT $1",
            &[limit.clamp(1, 1000).into()],
        )?;
        Ok(rows.into_iter().map(rollout_row).collect())
    }
}

fn rollout_row(r: Row) -> RolloutRow {
    let t = |i: usize| r.get(i).and_then(Value::text).unwrap_or_default();
    RolloutRow {
        id: t(0),
        who: t(1),
        created_ms: r.get(2).and_then(Value::int).unwrap_or(0),
        target: t(3),
        what: t(4),
        timeout_s: r.get(5).and_then(Value::real).unwrap_or(0.0),
    }
}

/// One gateway in full.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GatewayDetail {
    #[serde(flatten)]
    pub gateway: GatewayRow,
    /// The newest health document, as the gateway sent it.
    #[schema(value_type = Option<Object>)]
    pub health: Option<serde_json::Value>,
    pub config_version: Option<i64>,
    /// The running config as the gateway published it (secrets redacted by the gateway).
    pub config_toml: Option<String>,
}

fn gateway_row(r: Row) -> GatewayRow {
    let t = |i: usize| r.get(i).and_then(Value::text);
    let n = |i: usize| r.get(i).and_then(Value::int);
    let f = |i: usize| r.get(i).and_then(Value::real);
    GatewayRow {
        device: t(0).unwrap_or_default(),
        site: t(1).unwrap_or_default(),
        status: t(2).unwrap_or_else(|| "unknown".into()),
        status_ms: n(3),
        first_seen_ms: n(4).unwrap_or(0),
        health_ms: n(5),
        health_interval_s: f(6),
        version: t(7),
        uptime_s: n(8),
        cameras_up: n(9),
        cameras_total: n(10),
        cameras_down: t(11)
            .map(|s| {
                s.split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        inference_ms: f(12),
        outbox_pending: n(13),
        dead_letters: n(14),
        events_24h: n(15),
        delivery_success_rate: f(16),
        delivery_latency_p95_ms: n(17),
        anomalies: n(18),
    }
}

fn alert_row(r: Row) -> AlertRow {
    let t = |i: usize| r.get(i).and_then(Value::text);
    let n = |i: usize| r.get(i).and_then(Value::int);
    AlertRow {
        alert_id: t(0).unwrap_or_default(),
        kind: t(1).unwrap_or_default(),
        device: t(2).unwrap_or_default(),
        site: t(3).unwrap_or_default(),
        camera: t(4),
        rule: t(5),
        label: t(6),
        severity: t(7),
        confidence: r.get(8).and_then(Value::real),
        at_ms: n(9).unwrap_or(0),
        seen_ms: n(10).unwrap_or(0),
        has_snapshot: n(11).unwrap_or(0) != 0,
    }
}

/// Rows per multi-row statement (well under SQLite's and PostgreSQL's parameter limits).
const ROWS_PER_STATEMENT: usize = 200;

/// `INSERT … VALUES (…), (…) …` with `$n` numbered through, for `rows` rows of `width`.
fn values(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Health in bulk: one multi-row upsert of the newest document per gateway (a statement may
/// not update one row twice), one multi-row insert of the history. A round trip per 200
/// gateways instead of two per message is what lets PostgreSQL keep up with a large fleet.
fn write_health(c: &mut dyn Conn, batch: &[&HealthRecord]) -> Result<(), StoreError> {
    let mut newest: std::collections::HashMap<&str, &HealthRecord> =
        std::collections::HashMap::new();
    for h in batch {
        let keep = newest
            .get(h.device.as_str())
            .is_none_or(|n| n.seen_ms <= h.seen_ms);
        if keep {
            newest.insert(h.device.as_str(), h);
        }
    }
    let mut latest: Vec<&HealthRecord> = newest.into_values().collect();
    latest.sort_by(|a, b| a.device.cmp(&b.device));
    for chunk in latest.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 17);
        for h in chunk {
            params.extend([
                h.device.as_str().into(),
                h.site.as_str().into(),
                h.version.as_str().into(),
                h.seen_ms.into(),
                h.seen_ms.into(),
                h.interval_s.into(),
                h.uptime_s.into(),
                h.cameras_up.into(),
                h.cameras_total.into(),
                h.cameras_down.as_str().into(),
                h.inference_ms.into(),
                h.outbox_pending.into(),
                h.dead_letters.into(),
                h.events_24h.into(),
                h.delivery_success_rate.into(),
                h.delivery_latency_p95_ms.into(),
                h.anomalies.into(),
            ]);
            params.push(h.json.as_str().into());
        }
        // Only a newer document replaces the latest (the retained and the shared copy of one
        // health message may arrive in either order).
        c.execute(
            &format!(
                "INSERT INTO gateways (device, site, version, first_seen_ms, health_ms, health_interval_s, uptime_s, cameras_up, cameras_total, cameras_down, inference_ms, outbox_pending, dead_letters, events_24h, delivery_success_rate, delivery_latency_p95_ms, anomalies, health)
                 VALUES {}
                 ON CONFLICT (device) DO UPDATE SET site = excluded.site, version = excluded.version, health_ms = excluded.health_ms, health_interval_s = excluded.health_interval_s, uptime_s = excluded.uptime_s, cameras_up = excluded.cameras_up, cameras_total = excluded.cameras_total, cameras_down = excluded.cameras_down, inference_ms = excluded.inference_ms, outbox_pending = excluded.outbox_pending, dead_letters = excluded.dead_letters, events_24h = excluded.events_24h, delivery_success_rate = excluded.delivery_success_rate, delivery_latency_p95_ms = excluded.delivery_latency_p95_ms, anomalies = excluded.anomalies, health = excluded.health
                 WHERE gateways.health_ms IS NULL OR gateways.health_ms <= excluded.health_ms",
                values(chunk.len(), 18)
            ),
            &params,
        )?;
    }
    let history: Vec<&&HealthRecord> = batch.iter().filter(|h| h.history).collect();
    for chunk in history.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 8);
        for h in chunk {
            params.extend([
                h.device.as_str().into(),
                h.at_ms.into(),
                h.seen_ms.into(),
                h.outbox_pending.into(),
                h.dead_letters.into(),
                h.inference_ms.into(),
                h.cameras_up.into(),
                h.cameras_total.into(),
            ]);
        }
        c.execute(
            &format!(
                "INSERT INTO health_history (device, at_ms, seen_ms, outbox_pending, dead_letters, inference_ms, cameras_up, cameras_total) VALUES {} ON CONFLICT (device, at_ms) DO NOTHING",
                values(chunk.len(), 8)
            ),
            &params,
        )?;
    }
    Ok(())
}

fn write_one(c: &mut dyn Conn, r: &Record, out: &mut Written) -> Result<(), StoreError> {
    match r {
        Record::Status {
            device,
            online,
            seen_ms,
        } => {
            let status = if *online { "online" } else { "offline" };
            c.execute(
                "INSERT INTO gateways (device, status, status_ms, first_seen_ms) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (device) DO UPDATE SET status = excluded.status, status_ms = excluded.status_ms",
                &[device.as_str().into(), status.into(), (*seen_ms).into()],
            )?;
        }
        // Written in bulk by `write_health`.
        Record::Health(h) => write_health(c, &[h.as_ref()])?,
        Record::ConfigState {
            device,
            version,
            toml,
            seen_ms,
        } => {
            c.execute(
                "INSERT INTO gateways (device, first_seen_ms, config_version, config_toml, config_ms) VALUES ($1, $2, $3, $4, $2)
                 ON CONFLICT (device) DO UPDATE SET config_version = excluded.config_version, config_toml = excluded.config_toml, config_ms = excluded.config_ms",
                &[
                    device.as_str().into(),
                    (*seen_ms).into(),
                    (*version).into(),
                    toml.as_str().into(),
                ],
            )?;
        }
        Record::Alert(a) => {
            let n = c.execute(
                "INSERT INTO alerts (alert_id, kind, device, site, camera, rule, label, severity, confidence, at_ms, seen_ms, body, snapshot)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (alert_id) DO NOTHING",
                &[
                    a.alert_id.as_str().into(),
                    a.kind.as_str().into(),
                    a.device.as_str().into(),
                    a.site.as_str().into(),
                    a.camera.clone().into(),
                    a.rule.clone().into(),
                    a.label.clone().into(),
                    a.severity.clone().into(),
                    a.confidence.into(),
                    a.at_ms.into(),
                    a.seen_ms.into(),
                    a.body.as_str().into(),
                    a.snapshot.clone().into(),
                ],
            )?;
            if n == 0 {
                out.duplicates += 1;
            } else {
                out.new_alerts.push(AlertRow {
                    alert_id: a.alert_id.clone(),
                    kind: a.kind.clone(),
                    device: a.device.clone(),
                    site: a.site.clone(),
                    camera: a.camera.clone(),
                    rule: a.rule.clone(),
                    label: a.label.clone(),
                    severity: a.severity.clone(),
                    confidence: a.confidence,
                    at_ms: a.at_ms,
                    seen_ms: a.seen_ms,
                    has_snapshot: a.snapshot.is_some(),
                });
            }
        }
        Record::Answer {
            request,
            device,
            ok,
            result,
            seen_ms,
        } => {
            // The first answer counts; one from another device never matches.
            c.execute(
                "UPDATE requests SET answered_ms = $1, ok = $2, result = $3 WHERE id = $4 AND device = $5 AND answered_ms IS NULL",
                &[
                    (*seen_ms).into(),
                    i64::from(*ok).into(),
                    result.as_str().into(),
                    request.as_str().into(),
                    device.as_str().into(),
                ],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(device: &str, at_ms: i64, seen_ms: i64, pending: i64) -> Record {
        Record::Health(Box::new(HealthRecord {
            device: device.into(),
            site: "s".into(),
            version: "v".into(),
            at_ms,
            seen_ms,
            interval_s: 30.0,
            uptime_s: 1,
            cameras_up: 1,
            cameras_total: 1,
            cameras_down: String::new(),
            inference_ms: None,
            outbox_pending: pending,
            dead_letters: 0,
            events_24h: 0,
            delivery_success_rate: None,
            delivery_latency_p95_ms: None,
            anomalies: 0,
            json: "{}".into(),
            history: true,
        }))
    }

    fn alert(id: &str, at_ms: i64) -> Record {
        Record::Alert(Box::new(AlertRecord {
            alert_id: id.into(),
            kind: "alert.fired".into(),
            device: "gw".into(),
            site: "s".into(),
            camera: None,
            rule: None,
            label: None,
            severity: None,
            confidence: None,
            at_ms,
            seen_ms: at_ms,
            body: "{}".into(),
            snapshot: None,
        }))
    }

    #[test]
    fn writes_are_idempotent_newest_health_wins_and_retention_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).unwrap();
        // The same batch twice (a redelivery) and an older document after a newer one.
        let batch = [
            health("gw", 2_000, 2_000, 7),
            alert("a1", 1_000),
            health("gw", 1_000, 1_000, 3),
        ];
        let first = store.write(&batch).unwrap();
        assert_eq!(first.new_alerts.len(), 1);
        let again = store.write(&batch).unwrap();
        assert_eq!((again.new_alerts.len(), again.duplicates), (0, 1));
        let g = &store.gateways().unwrap()[0];
        assert_eq!(
            (g.health_ms, g.outbox_pending),
            (Some(2_000), Some(7)),
            "an older document replaced a newer one"
        );
        assert_eq!(
            store.history("gw", 0).unwrap().len(),
            2,
            "a redelivery added history"
        );
        // Retention: what is older than the cut goes, the rest stays.
        store
            .write(&[alert("a2", 5_000), health("gw", 5_000, 5_000, 1)])
            .unwrap();
        assert_eq!(store.prune(3_000).unwrap(), 3);
        assert_eq!(store.history("gw", 0).unwrap().len(), 1);
        let left: Vec<String> = store
            .alerts(&AlertFilter::default())
            .unwrap()
            .into_iter()
            .map(|a| a.alert_id)
            .collect();
        assert_eq!(left, ["a2"]);
    }

    #[test]
    fn a_database_newer_than_the_binary_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(None, dir.path()).unwrap());
        let c = rusqlite::Connection::open(dir.path().join("console.db")).unwrap();
        c.execute(
            "INSERT INTO console_schema (version, applied_ms) VALUES (99, 0)",
            [],
        )
        .unwrap();
        drop(c);
        match Store::open(None, dir.path()) {
            Err(StoreError::TooNew { found: 99, .. }) => {}
            other => panic!("{:?}", other.err()),
        }
        // Opening again (migrations already applied) changes nothing and works.
        let dir2 = tempfile::tempdir().unwrap();
        drop(Store::open(None, dir2.path()).unwrap());
        assert!(Store::open(None, dir2.path()).is_ok());
    }
}
