//! Versioned migrations, one list for both engines: the column types are spelled per engine,
//! everything else is the same SQL. A database newer than this binary is refused, never
//! written to.

use super::conn::{transaction, Conn, Engine, Value};
use super::StoreError;

/// Migration N (1-based) is `MIGRATIONS[N - 1]`. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: gateways, their health history, their alerts.
    "CREATE TABLE gateways (
        device TEXT PRIMARY KEY,
        site TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'unknown',
        status_ms {INT},
        first_seen_ms {INT} NOT NULL,
        health_ms {INT},
        health_interval_s {REAL},
        version TEXT,
        uptime_s {INT},
        cameras_up {INT},
        cameras_total {INT},
        cameras_down TEXT,
        inference_ms {REAL},
        outbox_pending {INT},
        dead_letters {INT},
        events_24h {INT},
        delivery_success_rate {REAL},
        delivery_latency_p95_ms {INT},
        anomalies {INT},
        health TEXT,
        config_version {INT},
        config_toml TEXT,
        config_ms {INT}
    );
    CREATE INDEX gateways_site ON gateways (site);
    CREATE TABLE health_history (
        device TEXT NOT NULL,
        at_ms {INT} NOT NULL,
        seen_ms {INT} NOT NULL,
        outbox_pending {INT},
        dead_letters {INT},
        inference_ms {REAL},
        cameras_up {INT},
        cameras_total {INT},
        PRIMARY KEY (device, at_ms)
    );
    CREATE INDEX health_history_seen ON health_history (seen_ms);
    CREATE TABLE alerts (
        alert_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        device TEXT NOT NULL,
        site TEXT NOT NULL,
        camera TEXT,
        rule TEXT,
        label TEXT,
        severity TEXT,
        confidence {REAL},
        at_ms {INT} NOT NULL,
        seen_ms {INT} NOT NULL,
        body TEXT NOT NULL,
        snapshot {BLOB}
    );
    CREATE INDEX alerts_at ON alerts (at_ms);
    CREATE INDEX alerts_device_at ON alerts (device, at_ms);
    CREATE INDEX alerts_site_at ON alerts (site, at_ms);",
    // 2: control keys, the audit log of every request (commands, config pushes, enrolments)
    // with its outcome, and rollouts (one request per targeted gateway).
    "CREATE TABLE gateway_keys (
        device TEXT PRIMARY KEY,
        control_key TEXT NOT NULL,
        created_ms {INT} NOT NULL
    );
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        rollout TEXT,
        device TEXT NOT NULL,
        kind TEXT NOT NULL,
        what TEXT NOT NULL,
        who TEXT NOT NULL,
        sent_ms {INT} NOT NULL,
        expires_ms {INT} NOT NULL,
        answered_ms {INT},
        ok {INT},
        result TEXT
    );
    CREATE INDEX requests_device ON requests (device, sent_ms);
    CREATE INDEX requests_sent ON requests (sent_ms);
    CREATE INDEX requests_rollout ON requests (rollout);
    CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        who TEXT NOT NULL,
        created_ms {INT} NOT NULL,
        target TEXT NOT NULL,
        what TEXT NOT NULL,
        timeout_s {REAL} NOT NULL
    );",
    // 3: fleet alarms (one active row per condition, whichever replica saw it first) and
    // their deliveries, store-and-forward.
    "CREATE TABLE alarms (
        id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        site TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL,
        since_ms {INT} NOT NULL,
        raised_ms {INT},
        resolved_ms {INT}
    );
    CREATE INDEX alarms_since ON alarms (since_ms);
    CREATE TABLE alarm_active (
        device TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        alarm_id TEXT NOT NULL,
        PRIMARY KEY (device, kind, subject)
    );
    CREATE TABLE alarm_deliveries (
        id TEXT PRIMARY KEY,
        alarm_id TEXT NOT NULL,
        sink TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        created_ms {INT} NOT NULL,
        next_ms {INT} NOT NULL,
        attempts {INT} NOT NULL DEFAULT 0,
        delivered_ms {INT},
        last_error TEXT
    );
    CREATE INDEX alarm_deliveries_due ON alarm_deliveries (delivered_ms, next_ms);",
    // 4: tags an operator gives gateways (rollouts and filters by tag).
    "CREATE TABLE gateway_tags (
        device TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (device, tag)
    );
    CREATE INDEX gateway_tags_tag ON gateway_tags (tag);",
];

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

fn spell(sql: &str, engine: Engine) -> String {
    let (int, real, blob) = match engine {
        Engine::Sqlite => ("INTEGER", "REAL", "BLOB"),
        Engine::Postgres => ("BIGINT", "DOUBLE PRECISION", "BYTEA"),
    };
    sql.replace("{INT}", int)
        .replace("{REAL}", real)
        .replace("{BLOB}", blob)
}

/// Brings the database to [`VERSION`]; returns the version it found.
pub fn migrate(c: &mut dyn Conn) -> Result<i64, StoreError> {
    let engine = c.engine();
    // Replicas starting together on one PostgreSQL: one migrates, the others wait for it.
    if engine == Engine::Postgres {
        c.batch("SELECT pg_advisory_lock(7007001)")?;
    }
    let outcome = transaction(c, |c| {
        c.batch(&spell(
            "CREATE TABLE IF NOT EXISTS console_schema (version {INT} PRIMARY KEY, applied_ms {INT} NOT NULL)",
            engine,
        ))?;
        let found = c
            .query("SELECT COALESCE(MAX(version), 0) FROM console_schema", &[])?
            .first()
            .and_then(|r| r.first().and_then(Value::int))
            .unwrap_or(0);
        if found > VERSION {
            return Err(StoreError::TooNew {
                found,
                known: VERSION,
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            c.batch(&spell(m, engine))?;
            c.execute(
                "INSERT INTO console_schema (version, applied_ms) VALUES ($1, $2)",
                &[Value::Int(i as i64 + 1), Value::Int(super::now_ms())],
            )?;
        }
        Ok(found)
    });
    if engine == Engine::Postgres {
        let _ = c.batch("SELECT pg_advisory_unlock(7007001)");
    }
    outcome
}
