//! Fleet alarms in the store. A condition (gateway offline, a camera down, …) is keyed by
//! (device, kind, subject); `alarm_active` holds at most one row per key, so replicas that
//! see the same condition raise it once: whichever inserts the row first owns the alarm, and
//! whichever deletes it resolves it. Each raise and resolve queues one delivery per sink.

use super::conn::{transaction, Conn, Row, Value};
use super::{now_ms, Store, StoreError};
use serde::Serialize;

/// A condition holding now, as the evaluator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub device: String,
    pub site: String,
    /// `gateway-offline`, `camera-down`, `dead-letters`, `silent`.
    pub kind: String,
    /// The camera or rule it is about; empty for the gateway itself.
    pub subject: String,
    pub detail: String,
    /// Since when it holds (the console's clock): the moment it was first seen, unless the
    /// gateway's own rows tell (when it went offline, its last health).
    pub since_ms: i64,
    /// How long it must hold before it is raised.
    pub hold_ms: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlarmRow {
    pub id: String,
    pub device: String,
    pub site: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
    pub since_ms: i64,
    pub raised_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
}

/// A delivery to send: its id (the `webhook-id`), sink and body.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub sink: String,
    pub body: String,
    pub attempts: i64,
}

/// What one evaluation changed.
#[derive(Debug, Default)]
pub struct Evaluated {
    pub raised: Vec<AlarmRow>,
    pub resolved: Vec<AlarmRow>,
}

const ALARM_COLUMNS: &str =
    "id, device, site, kind, subject, detail, since_ms, raised_ms, resolved_ms";

fn alarm_row(r: Row) -> AlarmRow {
    let t = |i: usize| r.get(i).and_then(Value::text).unwrap_or_default();
    let n = |i: usize| r.get(i).and_then(Value::int);
    AlarmRow {
        id: t(0),
        device: t(1),
        site: t(2),
        kind: t(3),
        subject: t(4),
        detail: t(5),
        since_ms: n(6).unwrap_or(0),
        raised_ms: n(7),
        resolved_ms: n(8),
    }
}

fn active(c: &mut dyn Conn) -> Result<Vec<AlarmRow>, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT {} FROM alarms a JOIN alarm_active x ON x.alarm_id = a.id",
            ALARM_COLUMNS
                .split(", ")
                .map(|col| format!("a.{col}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &[],
    )?;
    Ok(rows.into_iter().map(alarm_row).collect())
}

impl Store {
    /// Brings the alarms in line with `holding` (every condition that holds now, fleet-wide):
    /// new conditions start pending, due ones are raised, cleared ones resolved. `body` makes
    /// each delivery's JSON for (event, alarm); one delivery per sink is queued with it.
    pub fn evaluate_alarms(
        &self,
        holding: &[Condition],
        sinks: &[String],
        body: &dyn Fn(&str, &AlarmRow, i64) -> String,
    ) -> Result<Evaluated, StoreError> {
        let now = now_ms();
        let mut w = self.writer.lock();
        transaction(w.as_mut(), |c| {
            let mut out = Evaluated::default();
            let current = active(c)?;
            let key = |d: &str, k: &str, s: &str| format!("{d}\u{1f}{k}\u{1f}{s}");
            let holds: std::collections::HashMap<String, &Condition> = holding
                .iter()
                .map(|h| (key(&h.device, &h.kind, &h.subject), h))
                .collect();
            // Cleared: resolved (a pending one simply goes).
            for a in &current {
                if holds.contains_key(&key(&a.device, &a.kind, &a.subject)) {
                    continue;
                }
                let gone = c.execute(
                    "DELETE FROM alarm_active WHERE device = $1 AND kind = $2 AND subject = $3 AND alarm_id = $4",
                    &[a.device.as_str().into(), a.kind.as_str().into(), a.subject.as_str().into(), a.id.as_str().into()],
                )?;
                if gone == 0 {
                    continue;
                }
                if a.raised_ms.is_some() {
                    c.execute(
                        "UPDATE alarms SET resolved_ms = $1 WHERE id = $2",
                        &[now.into(), a.id.as_str().into()],
                    )?;
                    let resolved = AlarmRow {
                        resolved_ms: Some(now),
                        ..a.clone()
                    };
                    queue(c, &resolved, "alarm.resolved", sinks, body, now)?;
                    out.resolved.push(resolved);
                } else {
                    c.execute("DELETE FROM alarms WHERE id = $1", &[a.id.as_str().into()])?;
                }
            }
            let known: std::collections::HashMap<String, &AlarmRow> = current
                .iter()
                .map(|a| (key(&a.device, &a.kind, &a.subject), a))
                .collect();
            for h in holding {
                let k = key(&h.device, &h.kind, &h.subject);
                let alarm = match known.get(&k) {
                    Some(a) => (*a).clone(),
                    None => {
                        let id = ulid::Ulid::new().to_string();
                        let claimed = c.execute(
                            "INSERT INTO alarm_active (device, kind, subject, alarm_id) VALUES ($1, $2, $3, $4) ON CONFLICT (device, kind, subject) DO NOTHING",
                            &[h.device.as_str().into(), h.kind.as_str().into(), h.subject.as_str().into(), id.as_str().into()],
                        )?;
                        if claimed == 0 {
                            // Another replica has it.
                            continue;
                        }
                        c.execute(
                            "INSERT INTO alarms (id, device, site, kind, subject, detail, since_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            &[
                                id.as_str().into(),
                                h.device.as_str().into(),
                                h.site.as_str().into(),
                                h.kind.as_str().into(),
                                h.subject.as_str().into(),
                                h.detail.as_str().into(),
                                h.since_ms.into(),
                            ],
                        )?;
                        AlarmRow {
                            id,
                            device: h.device.clone(),
                            site: h.site.clone(),
                            kind: h.kind.clone(),
                            subject: h.subject.clone(),
                            detail: h.detail.clone(),
                            since_ms: h.since_ms,
                            raised_ms: None,
                            resolved_ms: None,
                        }
                    }
                };
                if now - alarm.since_ms >= h.hold_ms && alarm.raised_ms.is_none() {
                    let raised = c.execute(
                        "UPDATE alarms SET raised_ms = $1, detail = $2 WHERE id = $3 AND raised_ms IS NULL",
                        &[now.into(), h.detail.as_str().into(), alarm.id.as_str().into()],
                    )?;
                    if raised == 1 {
                        let a = AlarmRow {
                            raised_ms: Some(now),
                            detail: h.detail.clone(),
                            ..alarm
                        };
                        queue(c, &a, "alarm.raised", sinks, body, now)?;
                        out.raised.push(a);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Alarms newest first; `active_only`: raised and not resolved.
    pub fn alarms(&self, active_only: bool, limit: i64) -> Result<Vec<AlarmRow>, StoreError> {
        let filter = if active_only {
            "WHERE raised_ms IS NOT NULL AND resolved_ms IS NULL"
        } else {
            "WHERE raised_ms IS NOT NULL"
        };
        let rows = self.reader.lock().query(
            &format!(
                "SELECT {ALARM_COLUMNS} FROM alarms {filter} ORDER BY raised_ms DESC LIMIT $1"
            ),
            &[limit.clamp(1, 1000).into()],
        )?;
        Ok(rows.into_iter().map(alarm_row).collect())
    }

    /// Claims up to `n` deliveries that are due (none another replica is sending): each is
    /// pushed `hold_ms` into the future first, so a crash mid-send retries it then.
    pub fn claim_deliveries(&self, n: i64, hold_ms: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        let now = now_ms();
        let mut w = self.writer.lock();
        transaction(w.as_mut(), |c| {
            let rows = c.query(
                "SELECT id, sink, body, attempts, next_ms FROM alarm_deliveries WHERE delivered_ms IS NULL AND next_ms <= $1 ORDER BY next_ms LIMIT $2",
                &[now.into(), n.into()],
            )?;
            let mut out = Vec::new();
            for r in rows {
                let id = r[0].text().unwrap_or_default();
                let claimed = c.execute(
                    "UPDATE alarm_deliveries SET next_ms = $1 WHERE id = $2 AND next_ms = $3 AND delivered_ms IS NULL",
                    &[(now + hold_ms).into(), id.as_str().into(), r[4].clone()],
                )?;
                if claimed == 1 {
                    out.push(DeliveryRow {
                        id,
                        sink: r[1].text().unwrap_or_default(),
                        body: r[2].text().unwrap_or_default(),
                        attempts: r[3].int().unwrap_or(0),
                    });
                }
            }
            Ok(out)
        })
    }

    /// Records an attempt: delivered, or to retry at `retry_ms` with the reason.
    pub fn delivery_attempt(
        &self,
        id: &str,
        delivered: bool,
        retry_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = if delivered {
            "UPDATE alarm_deliveries SET delivered_ms = $1, attempts = attempts + 1, last_error = $2 WHERE id = $3"
        } else {
            "UPDATE alarm_deliveries SET next_ms = $1, attempts = attempts + 1, last_error = $2 WHERE id = $3"
        };
        let at = if delivered { now } else { retry_ms };
        self.writer.lock().execute(
            sql,
            &[at.into(), error.map(str::to_string).into(), id.into()],
        )?;
        Ok(())
    }

    /// Deliveries not yet acknowledged (for readiness and the page).
    pub fn deliveries_pending(&self) -> Result<i64, StoreError> {
        let rows = self.reader.lock().query(
            "SELECT COUNT(*) FROM alarm_deliveries WHERE delivered_ms IS NULL",
            &[],
        )?;
        Ok(rows
            .first()
            .and_then(|r| r.first().and_then(Value::int))
            .unwrap_or(0))
    }
}

fn queue(
    c: &mut dyn Conn,
    a: &AlarmRow,
    event: &str,
    sinks: &[String],
    body: &dyn Fn(&str, &AlarmRow, i64) -> String,
    now: i64,
) -> Result<(), StoreError> {
    for sink in sinks {
        c.execute(
            "INSERT INTO alarm_deliveries (id, alarm_id, sink, event, body, created_ms, next_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            &[
                ulid::Ulid::new().to_string().into(),
                a.id.as_str().into(),
                sink.as_str().into(),
                event.into(),
                body(event, a, now).into(),
                now.into(),
            ],
        )?;
    }
    Ok(())
}
