//! The way forward from a damaged outbox: the start-up check, moving a damaged file aside
//! (never deleting it) so the gateway keeps alerting on a fresh one, the committed-sequence
//! high-water mark that tells when SQLite discarded committed alerts with a damaged
//! write-ahead log, and `salvage`, which re-queues what SQLite's own `.recover` finds.

use super::{wal_path, Condition, Fault, NewAlert, NewDelivery, Outbox, OutboxError};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl Outbox {
    /// Opens the outbox for the daemon: as [`Outbox::open`], then `PRAGMA quick_check` and
    /// the high-water mark. A damaged file (and its WAL) is moved to
    /// `outbox.db.corrupt-<time>` and a fresh outbox opened in its place; what was found is
    /// logged and kept in the returned [`Condition`] for health and `/readyz`, which also
    /// keeps a disk reserve (`outbox.reserve`) beside the database. Errors that
    /// are not damage (a lost key, a schema too new, a read-only disk) stay errors.
    pub fn open_checked(path: &Path) -> Result<(Self, Condition), OutboxError> {
        let condition = Condition::default();
        condition.keep_reserve(path.with_extension("reserve"));
        let problem = match Self::open(path) {
            Ok(o) => match o.quick_check() {
                Ok(None) => {
                    o.check_high_water(&condition);
                    return Ok((o, condition));
                }
                Ok(Some(problem)) => problem,
                Err(e) if e.fault() == Fault::Fatal => e.to_string(),
                Err(e) => return Err(e),
            },
            Err(e) if e.fault() == Fault::Fatal => e.to_string(),
            Err(e) => return Err(e),
        };
        let aside = move_aside(path)?;
        let text = format!(
            "outbox {} was damaged ({problem}); moved aside to {} and a fresh outbox started. \
             Recover its alerts with: watchpost outbox salvage {}",
            path.display(),
            aside.display(),
            aside.display()
        );
        tracing::error!("{text}");
        condition.notice(text);
        let fresh = Self::open(path)?;
        Ok((fresh, condition))
    }

    /// `None` when SQLite finds nothing wrong, else its first complaints.
    fn quick_check(&self) -> Result<Option<String>, OutboxError> {
        let lines: Vec<String> = self
            .conn
            .prepare("PRAGMA quick_check(5)")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.err(e))?;
        Ok((lines != ["ok"]).then(|| lines.join("; ")))
    }

    fn high_water_path(&self) -> PathBuf {
        self.path.with_extension("hwm")
    }

    /// After a commit: the newest committed sequence number, written beside the database
    /// (replace-by-rename, no fsync: it is only ever behind the database, never ahead, so a
    /// mark lost to a power cut costs a check, never a false alarm).
    pub(super) fn note_committed(&self, seq: i64) {
        let path = self.high_water_path();
        let tmp = path.with_extension("hwm.tmp");
        let written =
            std::fs::write(&tmp, seq.to_string()).and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(error = %e, "outbox high-water mark not written");
        }
    }

    /// At start: alerts the mark says were committed but the database does not hold were
    /// lost with a damaged or discarded write-ahead log. Reported, then the mark follows the
    /// database so the same loss is told once.
    fn check_high_water(&self, condition: &Condition) {
        let Some(mark) = std::fs::read_to_string(self.high_water_path())
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
        else {
            return;
        };
        let held: i64 = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'alerts'",
                [],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
            .unwrap_or(0);
        if mark > held {
            let text = format!(
                "outbox {}: {} committed alerts (sequence {}..={mark}) are missing from the database: its write-ahead log was damaged or discarded. They cannot be recovered from this file; check the receivers' logs for what arrived",
                self.path.display(),
                mark - held,
                held + 1
            );
            tracing::error!("{text}");
            condition.notice(text);
            self.note_committed(held);
        }
    }

    /// Re-queues what SQLite's `.recover` (the `sqlite3` command) finds in a damaged outbox
    /// file: every alert whose seal still verifies under this outbox's key and that some sink
    /// has not acknowledged, to those sinks (to `default_sinks` when its delivery rows were
    /// lost). Alerts already here are skipped; receivers de-duplicate by alert id, so an
    /// alert delivered once more is harmless, one lost is not.
    pub fn salvage(
        &mut self,
        damaged: &Path,
        default_sinks: &[String],
    ) -> Result<Salvage, OutboxError> {
        if !damaged.is_file() {
            return Err(self.io(format!("{}: no such file", damaged.display())));
        }
        let work = tempfile::tempdir().map_err(|e| self.io(format!("temporary directory: {e}")))?;
        let recovered = work.path().join("recovered.db");
        // `.recover` needs a writable database (it reads through temporary tables): it works
        // on a copy, so the damaged file itself stays exactly as it was found.
        let copy = work.path().join("damaged.db");
        copy_with_wal(damaged, &copy).map_err(|m| self.io(m))?;
        let method = recover_with_sqlite3(&copy, &recovered).map_err(|m| self.io(m))?;
        let found = read_recovered(&recovered).map_err(|m| self.io(m))?;
        let mut report = Salvage {
            method,
            recovered_alerts: found.len(),
            ..Salvage::default()
        };
        for alert in found {
            if self.key.seal(&alert.alert_id, &alert.body) != alert.seal {
                report.damaged.push(alert.alert_id);
                continue;
            }
            let exists: bool = self
                .conn
                .query_row(
                    "SELECT 1 FROM alerts WHERE alert_id = ?1",
                    params![alert.alert_id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(|e| self.err(e))?
                .is_some();
            if exists {
                report.already_present += 1;
                continue;
            }
            let sinks: Vec<NewDelivery> = if alert.deliveries.is_empty() {
                default_sinks.iter().map(|s| NewDelivery::to(s)).collect()
            } else {
                alert
                    .deliveries
                    .iter()
                    .filter(|d| d.state != "delivered")
                    .map(|d| NewDelivery {
                        sink: d.sink.clone(),
                        body: d.body.clone().filter(|b| {
                            d.seal.as_ref() == Some(&self.key.seal(&alert.alert_id, b))
                        }),
                    })
                    .collect()
            };
            if sinks.is_empty() {
                report.delivered_before += 1;
                continue;
            }
            report.requeued_deliveries += sinks.len();
            report.requeued_alerts += 1;
            let created_at = chrono::DateTime::from_timestamp_millis(alert.created_at)
                .unwrap_or_else(chrono::Utc::now);
            self.commit(&[NewAlert {
                alert_id: alert.alert_id,
                created_at,
                camera: alert.camera,
                rule: alert.rule,
                severity: alert.severity,
                body: alert.body,
                sinks,
            }])?;
        }
        Ok(report)
    }

    fn io(&self, message: String) -> OutboxError {
        OutboxError::Io {
            path: self.path.clone(),
            message,
        }
    }
}

/// What `salvage` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Salvage {
    /// How sqlite3 read the damaged file (`.recover`, or `.dump` where `.recover` fails).
    pub method: &'static str,
    /// Alerts found.
    pub recovered_alerts: usize,
    /// Alerts committed again, and their deliveries.
    pub requeued_alerts: usize,
    pub requeued_deliveries: usize,
    /// Already in this outbox (by alert id).
    pub already_present: usize,
    /// Every sink had acknowledged them.
    pub delivered_before: usize,
    /// Alert ids whose body no longer matches its seal: not sent.
    pub damaged: Vec<String>,
}

/// Moves the database, its WAL and shared-memory files and its high-water mark to
/// `<name>.corrupt-<UTC time>` (the WAL keeps its `-wal` suffix, so SQLite and `salvage`
/// read the two together).
fn move_aside(path: &Path) -> Result<PathBuf, OutboxError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{stamp}"));
    let aside = PathBuf::from(aside);
    let suffixed = |p: &Path, s: &str| {
        let mut o = p.as_os_str().to_owned();
        o.push(s);
        PathBuf::from(o)
    };
    let moves = [
        (path.to_path_buf(), aside.clone()),
        (wal_path(path), suffixed(&aside, "-wal")),
        (suffixed(path, "-shm"), suffixed(&aside, "-shm")),
        (path.with_extension("hwm"), suffixed(&aside, ".hwm")),
    ];
    for (from, to) in moves {
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(OutboxError::Io {
                    path: path.to_path_buf(),
                    message: format!(
                        "damaged, and cannot be moved aside to {}: {e}",
                        to.display()
                    ),
                })
            }
        }
    }
    Ok(aside)
}

/// `sqlite3 DAMAGED .recover | sqlite3 RECOVERED`: SQLite's own recovery, which reads every
/// page it can (the library crate does not carry the recover extension; the command does).
/// Debian 12's sqlite3 3.40.1 stops its `.recover` with "SQL logic error" before the first
/// row, so when that yields no rows, `.dump` is used: it reads each table through its own
/// b-tree (never an index) and, past a damaged page, again from the other end. Returns the
/// method that produced the rows.
fn recover_with_sqlite3(damaged: &Path, out: &Path) -> Result<&'static str, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let run = |how: &str| {
        Command::new("sqlite3")
            .arg(damaged)
            .arg(how)
            .output()
            .map_err(|e| format!("salvage needs the sqlite3 command (Debian package sqlite3): {e}"))
    };
    let has_rows = |sql: &[u8]| sql.windows(11).any(|w| w == b"INSERT INTO");
    let mut method = ".recover";
    let mut dump = run(".recover")?;
    if !has_rows(&dump.stdout) {
        method = ".dump";
        dump = run(".dump")?;
    }
    if !has_rows(&dump.stdout) {
        return Err(format!(
            "sqlite3 found no rows in {}: {}",
            damaged.display(),
            String::from_utf8_lossy(&dump.stderr).trim()
        ));
    }
    let mut load = Command::new("sqlite3")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sqlite3: {e}"))?;
    if let Some(mut stdin) = load.stdin.take() {
        stdin
            .write_all(&dump.stdout)
            .map_err(|e| format!("cannot feed sqlite3: {e}"))?;
    }
    // Statements naming damaged rows fail one by one; sqlite3 goes on with the rest.
    load.wait_with_output()
        .map_err(|e| format!("sqlite3 failed: {e}"))?;
    Ok(method)
}

/// Copies a database file and its WAL, if it has one.
fn copy_with_wal(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map_err(|e| format!("{}: {e}", from.display()))?;
    let wal = wal_path(from);
    if wal.exists() {
        std::fs::copy(&wal, wal_path(to)).map_err(|e| format!("{}: {e}", wal.display()))?;
    }
    Ok(())
}

struct FoundAlert {
    alert_id: String,
    created_at: i64,
    camera: String,
    rule: String,
    severity: String,
    body: Vec<u8>,
    seal: Vec<u8>,
    deliveries: Vec<FoundDelivery>,
}

struct FoundDelivery {
    sink: String,
    state: String,
    body: Option<Vec<u8>>,
    seal: Option<Vec<u8>>,
}

/// Reads the recovered copy row by row, each value checked for its type; rows that do not
/// make an alert are passed over.
fn read_recovered(path: &Path) -> Result<Vec<FoundAlert>, String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("recovered copy: {e}"))?;
    let has = |table: &str| -> bool {
        conn.query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![table],
            |_| Ok(()),
        )
        .optional()
        .ok()
        .flatten()
        .is_some()
    };
    if !has("alerts") {
        return Err("no alerts table could be recovered".into());
    }
    let text = |v: ValueRef<'_>| match v {
        ValueRef::Text(t) => String::from_utf8(t.to_vec()).ok(),
        _ => None,
    };
    let bytes = |v: ValueRef<'_>| match v {
        ValueRef::Blob(b) => Some(b.to_vec()),
        _ => None,
    };
    let int = |v: ValueRef<'_>| match v {
        ValueRef::Integer(n) => Some(n),
        _ => None,
    };
    let mut deliveries: BTreeMap<i64, Vec<FoundDelivery>> = BTreeMap::new();
    if has("deliveries") {
        let mut st = conn
            .prepare("SELECT alert_seq, sink, state, body, seal FROM deliveries")
            .map_err(|e| format!("recovered deliveries: {e}"))?;
        let mut rows = st.query([]).map_err(|e| e.to_string())?;
        while let Ok(Some(r)) = rows.next() {
            let get = |i| r.get_ref(i).ok();
            let (Some(seq), Some(sink), Some(state)) = (
                get(0).and_then(int),
                get(1).and_then(text),
                get(2).and_then(text),
            ) else {
                continue;
            };
            deliveries.entry(seq).or_default().push(FoundDelivery {
                sink,
                state,
                body: get(3).and_then(bytes),
                seal: get(4).and_then(bytes),
            });
        }
    }
    let mut out = Vec::new();
    let mut st = conn
        .prepare("SELECT seq, alert_id, created_at, camera, rule, severity, body, seal FROM alerts ORDER BY seq")
        .map_err(|e| format!("recovered alerts: {e}"))?;
    let mut rows = st.query([]).map_err(|e| e.to_string())?;
    while let Ok(Some(r)) = rows.next() {
        let get = |i| r.get_ref(i).ok();
        let parts = (
            get(0).and_then(int),
            get(1).and_then(text),
            get(2).and_then(int),
            get(3).and_then(text),
            get(4).and_then(text),
            get(5).and_then(text),
            get(6).and_then(bytes),
            get(7).and_then(bytes),
        );
        let (
            Some(seq),
            Some(alert_id),
            Some(created_at),
            Some(camera),
            Some(rule),
            Some(severity),
            Some(body),
            Some(seal),
        ) = parts
        else {
            continue;
        };
        out.push(FoundAlert {
            alert_id,
            created_at,
            camera,
            rule,
            severity,
            body,
            seal,
            deliveries: deliveries.remove(&seq).unwrap_or_default(),
        });
    }
    Ok(out)
}
