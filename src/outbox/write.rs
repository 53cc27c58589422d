//! Writing: committing alerts (the commit point), recording delivery attempts, dead letters,
//! and the write probe readiness uses.

use super::{Attempt, NewAlert, Next, Outbox, OutboxError};
use crate::rules::LineCounts;
use rusqlite::params;

impl Outbox {
    /// Commits alerts in one transaction (one fsync for a burst). When this returns Ok, the
    /// alerts exist; before that, nothing may acknowledge them.
    pub fn commit(&mut self, alerts: &[NewAlert]) -> Result<(), OutboxError> {
        self.commit_with_counts(alerts, None)
    }

    /// As [`Outbox::commit`], and with every line's counts replacing the saved ones in the
    /// same transaction (a crossing alert and the count it added land together).
    pub fn commit_with_counts(
        &mut self,
        alerts: &[NewAlert],
        counts: Option<&[LineCounts]>,
    ) -> Result<(), OutboxError> {
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
        let key_id = self.key.id.clone();
        let sql = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut last_seq = None;
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut ins_alert = tx
                .prepare_cached(
                    "INSERT INTO alerts (alert_id, created_at, camera, rule, severity, body, seal, key_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
                        a.alert_id, ms, a.camera, a.rule, a.severity, a.body, seal, key_id
                    ])
                    .map_err(sql)?;
                let seq = tx.last_insert_rowid();
                last_seq = Some(seq);
                for (d, row_seal) in a.sinks.iter().zip(row_seals) {
                    ins_row
                        .execute(params![seq, d.sink, ms, d.body, row_seal])
                        .map_err(sql)?;
                }
            }
        }
        if let Some(counts) = counts {
            tx.execute("DELETE FROM line_counts", []).map_err(sql)?;
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO line_counts (line, state, updated_at) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql)?;
            let now = chrono::Utc::now().timestamp_millis();
            for c in counts {
                // Plain numbers, strings and times: serialising cannot fail.
                let json = serde_json::to_string(c).unwrap_or_default();
                ins.execute(params![c.line, json, now]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        if let Some(seq) = last_seq {
            self.note_committed(seq);
        }
        Ok(())
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

    /// Every line's saved counts as (line, JSON), for [`crate::rules::SharedCounts::restore`].
    pub fn load_counts(&self) -> Result<Vec<(String, String)>, OutboxError> {
        let mut st = self
            .conn
            .prepare("SELECT line, state FROM line_counts ORDER BY line")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e));
        rows
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
}
