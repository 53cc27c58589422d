//! The delivery queue: which rows are due for a sink, when the next one is, the body to
//! send, and putting dead letters back.

use super::{Outbox, OutboxError, OutboxRow};
use rusqlite::{params, OptionalExtension};

impl Outbox {
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
