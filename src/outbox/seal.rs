//! Sealing: each committed body carries an HMAC under the device's outbox key, checked
//! before it is sent, so a body changed on disk is never delivered as genuine.
//!
//! The key is part of the data: rows record the id of the key that sealed them, and a key is
//! only ever made for an outbox that holds no sealed alert. A lost or replaced key is refused
//! at open (naming the file and what to do), never papered over with a new key that would
//! dead-letter every genuine alert.

use super::{HmacSha256, OutboxError};
use hmac::Mac;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// The outbox key and its id.
#[derive(Clone)]
pub(super) struct Key {
    bytes: Vec<u8>,
    pub(super) id: String,
}

impl Key {
    fn new(bytes: Vec<u8>) -> Self {
        // An HMAC of a constant: names the key without revealing anything about it.
        let mut mac = HmacSha256::new_from_slice(&bytes).expect("HMAC takes any key length");
        mac.update(b"watchpost outbox key id");
        let id = mac.finalize().into_bytes()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { bytes, id }
    }

    pub(super) fn seal(&self, alert_id: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        mac.update(alert_id.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Loads the key beside the database (creating one only when no row needs the old one), and
/// stamps rows sealed before key ids existed with this key's id once a seal proves it theirs.
pub(super) fn settle_key(
    conn: &Connection,
    db: &Path,
    key_path: &Path,
) -> Result<Key, OutboxError> {
    let sql = |source| OutboxError::Sqlite {
        path: db.to_path_buf(),
        source,
    };
    let io = |message: String| OutboxError::Io {
        path: db.to_path_buf(),
        message,
    };
    // Every alert held, by the key that sealed it, and how many still have something to
    // deliver (pending or dead: a dead letter may be replayed).
    let held: Vec<(Option<String>, i64, i64)> = conn
        .prepare(
            "SELECT a.key_id, COUNT(*),
                    SUM(EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_seq = a.seq AND d.state != 'delivered'))
             FROM alerts a GROUP BY a.key_id",
        )
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql)?;
    let total: i64 = held.iter().map(|h| h.1).sum();
    let waiting = |rows: &mut dyn Iterator<Item = &(Option<String>, i64, i64)>| {
        rows.fold((0, 0), |(n, w), h| (n + h.1, w + h.2))
    };
    let key = match std::fs::read(key_path) {
        Ok(k) if k.len() == 32 => Key::new(k),
        Ok(k) => {
            return Err(io(format!(
                "{}: expected a 32-byte key, found {} bytes",
                key_path.display(),
                k.len()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A key is made only for an outbox that holds nothing sealed.
            if total > 0 {
                let (held, waiting) = waiting(&mut held.iter());
                return Err(OutboxError::KeyMissing {
                    path: db.to_path_buf(),
                    key: key_path.to_path_buf(),
                    held,
                    waiting,
                });
            }
            create_key(key_path).map_err(io)?
        }
        Err(e) => return Err(io(format!("cannot read {}: {e}", key_path.display()))),
    };
    let legacy = held.iter().any(|(id, _, _)| id.is_none());
    // Rows from before key ids: the newest one's seal says whose they are.
    let legacy_foreign = legacy && {
        let sample: Option<(String, Vec<u8>, Vec<u8>)> = conn
            .query_row(
                "SELECT alert_id, body, seal FROM alerts
                 WHERE key_id IS NULL AND typeof(body) = 'blob' ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql)?;
        sample.is_some_and(|(id, body, seal)| key.seal(&id, &body) != seal)
    };
    let (foreign, foreign_waiting) = waiting(&mut held.iter().filter(|(id, _, _)| match id {
        Some(id) => *id != key.id,
        None => legacy_foreign,
    }));
    if foreign > 0 {
        return Err(OutboxError::KeyMismatch {
            path: db.to_path_buf(),
            key: key_path.to_path_buf(),
            held: foreign,
            waiting: foreign_waiting,
            found: key.id.clone(),
        });
    }
    if legacy {
        conn.execute(
            "UPDATE alerts SET key_id = ?1 WHERE key_id IS NULL",
            params![key.id],
        )
        .map_err(sql)?;
    }
    Ok(key)
}

/// The key file, readable by the service user only, written whole or not at all.
fn create_key(path: &Path) -> Result<Key, String> {
    let key: [u8; 32] = rand::random();
    let tmp: PathBuf = path.with_extension("key.tmp");
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
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot create key {}: {e}", path.display())
    })?;
    Ok(Key::new(key.to_vec()))
}
