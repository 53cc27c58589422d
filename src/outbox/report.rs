//! Reading the outbox for people: statistics, per-sink figures, recent alerts, activity,
//! row listings and attempt histories.

use super::{
    ms_to_rfc3339, wal_path, Activity, AlertDetail, AlertFilter, AttemptRow, DeliveryChain,
    ListedRow, Outbox, OutboxError, RecentAlert, RowState, SinkStats, Stats,
};
use rusqlite::{params, OptionalExtension};

/// A row of `SELECT seq, alert_id, created_at, camera, rule, severity, body` as the page
/// lists it (a body that is not JSON shows as null, never fails the list).
fn recent_alert(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecentAlert> {
    let body: Vec<u8> = r.get(6)?;
    Ok(RecentAlert {
        seq: r.get(0)?,
        alert_id: r.get(1)?,
        created_at: ms_to_rfc3339(r.get(2)?),
        camera: r.get(3)?,
        rule: r.get(4)?,
        severity: r.get(5)?,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    })
}

impl Outbox {
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
            // The newest success, and the newest failure when it came after it.
            let last_success: Option<i64> = self
                .conn
                .query_row(
                    "SELECT MAX(a.at) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                     WHERE d.sink = ?1 AND a.error IS NULL",
                    params![sink],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            let last_error: Option<(i64, String)> = self
                .conn
                .query_row(
                    "SELECT a.at, a.error FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                     WHERE d.sink = ?1 AND a.error IS NOT NULL ORDER BY a.id DESC LIMIT 1",
                    params![sink],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let last_error = last_error
                .filter(|(at, _)| last_success.is_none_or(|ok| *at > ok))
                .map(|(_, e)| e);
            out.push(SinkStats {
                last_success_at: last_success.map(ms_to_rfc3339),
                last_error,
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
        self.alerts(&AlertFilter {
            limit,
            ..AlertFilter::default()
        })
    }

    /// Alerts matching `f`, newest first (the page's list and `GET /api/alerts`).
    pub fn alerts(&self, f: &AlertFilter) -> Result<Vec<RecentAlert>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, alert_id, created_at, camera, rule, severity, CAST(body AS BLOB) FROM alerts
                 WHERE (?1 IS NULL OR camera = ?1) AND (?2 IS NULL OR rule = ?2)
                   AND (?3 IS NULL OR severity = ?3)
                   AND (?4 IS NULL OR (json_valid(CAST(body AS TEXT))
                        AND json_extract(CAST(body AS TEXT), '$.data.label') = ?4))
                   AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at < ?6)
                   AND (?7 IS NULL OR seq < ?7)
                 ORDER BY seq DESC LIMIT ?8",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![
                    f.camera,
                    f.rule,
                    f.severity,
                    f.label,
                    f.since_ms,
                    f.until_ms,
                    f.before,
                    f.limit as i64
                ],
                recent_alert,
            )
            .and_then(|it| it.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// One alert by id with its delivery chain; `None` when the outbox does not hold it (never
    /// committed, or removed by retention).
    pub fn alert_detail(&self, alert_id: &str) -> Result<Option<AlertDetail>, OutboxError> {
        let alert = self
            .conn
            .query_row(
                "SELECT seq, alert_id, created_at, camera, rule, severity, CAST(body AS BLOB)
                 FROM alerts WHERE alert_id = ?1",
                params![alert_id],
                recent_alert,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(alert) = alert else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, sink, state, next_attempt_at, delivered_at, last_error
                 FROM deliveries WHERE alert_seq = ?1 ORDER BY sink",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![alert.seq], |r| {
                let state = RowState::parse(&r.get::<_, String>(2)?);
                Ok(DeliveryChain {
                    id: r.get(0)?,
                    sink: r.get(1)?,
                    next_attempt_at: (state == RowState::Pending)
                        .then(|| r.get::<_, i64>(3).map(ms_to_rfc3339))
                        .transpose()?,
                    state,
                    delivered_at: r.get::<_, Option<i64>>(4)?.map(ms_to_rfc3339),
                    last_error: r.get(5)?,
                    attempts: Vec::new(),
                })
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        drop(stmt);
        let mut deliveries = Vec::with_capacity(rows.len());
        for mut d in rows {
            d.attempts = self.attempts(d.id)?;
            deliveries.push(d);
        }
        Ok(Some(AlertDetail { alert, deliveries }))
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
}
