//! Schema migrations, tracked in SQLite's `user_version`. Append; never edit a shipped step.

use super::OutboxError;
use rusqlite::Connection;
use std::path::Path;

const MIGRATIONS: &[&str] = &[
    // 1: alerts hold the committed bytes once; deliveries are one row per alert × sink.
    "CREATE TABLE alerts (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id   TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        camera     TEXT NOT NULL,
        rule       TEXT NOT NULL,
        severity   TEXT NOT NULL,
        body       BLOB NOT NULL,
        seal       BLOB NOT NULL
    );
    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_seq       INTEGER NOT NULL REFERENCES alerts(seq),
        sink            TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        delivered_at    INTEGER,
        UNIQUE (alert_seq, sink)
    );
    CREATE INDEX deliveries_due ON deliveries (sink, state, next_attempt_at, id);",
    // 2: a sink may get its own body (e.g. with the snapshot inline); NULL = the alert's body.
    "ALTER TABLE deliveries ADD COLUMN body BLOB;
     ALTER TABLE deliveries ADD COLUMN seal BLOB;",
    // 3: every attempt, for dead-letter forensics and delivery statistics.
    "CREATE TABLE attempts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
        at          INTEGER NOT NULL,
        status      INTEGER,
        latency_ms  INTEGER NOT NULL,
        error       TEXT
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id);
    CREATE INDEX attempts_at ON attempts (at);",
    // 4: the queue is read oldest first by id, and expiry looks alerts up by age; without
    // these a 100,000-row backlog was sorted and scanned on every batch (712 alerts/s).
    "CREATE INDEX deliveries_queue ON deliveries (sink, state, id);
     CREATE INDEX alerts_created ON alerts (created_at);",
    // 5: the id of the key that sealed each alert, so a lost or replaced key is noticed at
    // open instead of dead-lettering every row, and keys can be rotated. NULL: sealed before
    // key ids; stamped at the first open whose key verifies them.
    "ALTER TABLE alerts ADD COLUMN key_id TEXT;",
    // 6: every [[line]]'s counts (JSON), written in the same transaction as the alerts of
    // the same burst, so in/out totals and occupancy survive a restart.
    "CREATE TABLE line_counts (
        line       TEXT PRIMARY KEY,
        state      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );",
];

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OutboxError> {
    let sql = |source| OutboxError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(OutboxError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(step).map_err(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}
