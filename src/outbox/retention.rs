//! Keeping the outbox within its limits: expiring old rows and dropping the oldest by kind
//! when the file would outgrow `outbox_max_mb`.

use super::{Drops, Outbox, OutboxError};
use rusqlite::params;

impl Outbox {
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
    pub(super) fn delete_where(
        &mut self,
        filter: &str,
        arg: i64,
        limit: i64,
    ) -> Result<u64, OutboxError> {
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
}
