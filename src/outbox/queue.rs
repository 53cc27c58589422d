//! The delivery queue: which rows are due for a sink, when the next one is, the body to
//! send, and putting dead letters back.

use super::{Outbox, OutboxError, OutboxRow};
use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension};

impl Outbox {
    /// Up to `limit` rows of `sink` due at `now_ms`, oldest first. A row that cannot be read
    /// (a value of the wrong type) or whose seal does not match its body is dead-lettered
    /// here with the reason and never returned; the others flow.
    pub fn due(
        &mut self,
        sink: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, OutboxError> {
        let mut rows = Vec::new();
        let mut broken: Vec<(i64, String)> = Vec::new();
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
                    // The id is the table's INTEGER PRIMARY KEY: always an integer.
                    Ok((r.get::<_, i64>(0)?, decode_due(r)))
                })
                .and_then(|it| it.collect::<Result<Vec<_>, _>>());
            let found = match found {
                Ok(f) => f,
                Err(e) => {
                    drop(stmt);
                    return Err(self.err(e));
                }
            };
            for (id, decoded) in found {
                match decoded {
                    Ok((row, seal)) if self.seal(&row.alert_id, &row.body) == seal => {
                        rows.push(row)
                    }
                    Ok(_) => broken.push((
                        id,
                        "integrity check failed: body does not match its commit seal".into(),
                    )),
                    Err(why) => broken.push((id, format!("row cannot be read: {why}"))),
                }
            }
        }
        for (id, why) in broken {
            tracing::error!(row = id, sink, reason = %why, "outbox row dead-lettered, not delivered");
            self.mark_dead(id, &why)?;
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

    /// Each sink's newest attempt that failed, when it is that sink's newest attempt at all:
    /// replaying its dead letters now would most likely make them dead again.
    pub fn sinks_still_failing(&self) -> Result<Vec<(String, Option<u16>, String)>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT d.sink, a.status, a.error FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE a.id IN (SELECT MAX(a2.id) FROM attempts a2 JOIN deliveries d2 ON d2.id = a2.delivery_id
                                GROUP BY d2.sink)
                   AND a.error IS NOT NULL
                 ORDER BY d.sink",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|it| it.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// The sink of a delivery row.
    pub fn sink_of(&self, id: i64) -> Result<Option<String>, OutboxError> {
        self.conn
            .query_row(
                "SELECT sink FROM deliveries WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
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
                "SELECT CAST(body AS BLOB) FROM alerts WHERE alert_id = ?1",
                params![alert_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

/// One due row's columns, each checked for its type, so one bad row names its fault instead of
/// failing the whole batch.
fn decode_due(r: &rusqlite::Row<'_>) -> Result<(OutboxRow, Vec<u8>), String> {
    let text = |i: usize, name: &str| -> Result<String, String> {
        match r.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Text(t) => {
                String::from_utf8(t.to_vec()).map_err(|_| format!("{name} is not valid UTF-8"))
            }
            other => Err(format!("{name} is {}, expected text", type_name(other))),
        }
    };
    let blob = |i: usize, name: &str| -> Result<Vec<u8>, String> {
        match r.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            other => Err(format!("{name} is {}, expected bytes", type_name(other))),
        }
    };
    let int = |i: usize, name: &str| -> Result<i64, String> {
        match r.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Integer(n) => Ok(n),
            other => Err(format!(
                "{name} is {}, expected an integer",
                type_name(other)
            )),
        }
    };
    Ok((
        OutboxRow {
            id: int(0, "id")?,
            alert_id: text(1, "alert_id")?,
            sink: text(2, "sink")?,
            body: blob(3, "body")?,
            attempts: int(4, "attempts")?,
            created_at: int(5, "created_at")?,
            camera: text(7, "camera")?,
        },
        blob(6, "seal")?,
    ))
}

pub(super) fn type_name(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "bytes",
    }
}
