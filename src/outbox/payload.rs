//! Alert bodies (the payload contract in DESIGN.md). Built once, at commit; every attempt
//! on a sink sends the same bytes.

use crate::clock::rfc3339_ms;
use crate::rules::{HitKind, LineReport, RuleHit};
use watchpost_contracts::event::{self, CountReport, Ended, Event, Fired, LabelCount};

/// What of the snapshot goes into this body.
#[derive(Debug, Clone, Copy)]
pub enum SnapshotField<'a> {
    Omit,
    Reference,
    /// The JPEG, base64-encoded.
    Inline(&'a str),
}

pub fn alert_body(hit: &RuleHit, device_id: &str, site: &str, snapshot: SnapshotField) -> Vec<u8> {
    let timestamp = rfc3339_ms(hit.fired_at);
    // Serialising plain structs of strings and numbers cannot fail.
    match &hit.kind {
        HitKind::Fired => {
            let (reference, inline) = match snapshot {
                SnapshotField::Omit => (None, None),
                SnapshotField::Reference => (hit.snapshot.as_deref(), None),
                SnapshotField::Inline(b64) => {
                    (hit.snapshot.as_deref(), hit.snapshot.as_ref().map(|_| b64))
                }
            };
            serde_json::to_vec(&Event {
                kind: event::FIRED.into(),
                timestamp,
                data: Fired {
                    alert_id: hit.alert_id.to_string(),
                    device_id: device_id.into(),
                    site: site.into(),
                    camera: hit.camera.to_string(),
                    rule: hit.rule.to_string(),
                    label: hit.label.to_string(),
                    confidence: hit.confidence,
                    count: hit.count,
                    severity: hit.severity.as_str().into(),
                    frame_ts: rfc3339_ms(hit.frame_ts),
                    objects: hit.objects.clone(),
                    metadata: hit.metadata.clone(),
                    snapshot: reference.map(str::to_string),
                    snapshot_jpeg: inline.map(str::to_string),
                    line: hit.line.clone(),
                },
            })
        }
        HitKind::Ended {
            fired_alert_id,
            started_at,
        } => serde_json::to_vec(&Event {
            kind: event::ENDED.into(),
            timestamp,
            data: Ended {
                alert_id: hit.alert_id.to_string(),
                fired_alert_id: fired_alert_id.to_string(),
                device_id: device_id.into(),
                site: site.into(),
                camera: hit.camera.to_string(),
                rule: hit.rule.to_string(),
                severity: hit.severity.as_str().into(),
                started_at: rfc3339_ms(*started_at),
                ended_at: rfc3339_ms(hit.fired_at),
                duration_seconds: (hit.fired_at - *started_at).num_milliseconds() as f64 / 1000.0,
                metadata: hit.metadata.clone(),
            },
        }),
        HitKind::Report(r) => serde_json::to_vec(&Event {
            kind: event::REPORT.into(),
            timestamp,
            data: report(hit, r, device_id, site),
        }),
    }
    .unwrap_or_default()
}

/// The body of a test alert ("send test alert" on the page): the fired shape, so a receiver
/// exercises its real parsing, with `type = "alert.test"` so it can tell it from a real one.
pub fn test_body(
    alert_id: &str,
    device_id: &str,
    site: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    serde_json::to_vec(&Event {
        kind: event::TEST.into(),
        timestamp: rfc3339_ms(at),
        data: Fired {
            alert_id: alert_id.to_string(),
            device_id: device_id.into(),
            site: site.into(),
            camera: TEST_CAMERA.into(),
            rule: "test".into(),
            label: "test".into(),
            confidence: 1.0,
            count: 0,
            severity: "info".into(),
            frame_ts: rfc3339_ms(at),
            objects: Vec::new(),
            metadata: serde_json::Map::new(),
            snapshot: None,
            snapshot_jpeg: None,
            line: None,
        },
    })
    .unwrap_or_default()
}

/// The camera name test alerts carry (MQTT: `alerts/_test`); camera names cannot start with
/// `_`, so it never collides with a real one.
pub const TEST_CAMERA: &str = "_test";

fn report(hit: &RuleHit, r: &LineReport, device_id: &str, site: &str) -> CountReport {
    let c = &r.counts;
    CountReport {
        alert_id: hit.alert_id.to_string(),
        device_id: device_id.into(),
        site: site.into(),
        line: r.line.clone(),
        cameras: r.cameras.clone(),
        interval_start: rfc3339_ms(r.start),
        interval_end: rfc3339_ms(r.end),
        entered: c.labels.values().map(|t| t.interval_in).sum(),
        out: c.labels.values().map(|t| t.interval_out).sum(),
        occupancy: c.occupancy(&[]),
        total_in: c.labels.values().map(|t| t.total_in).sum(),
        total_out: c.labels.values().map(|t| t.total_out).sum(),
        since: rfc3339_ms(c.since),
        labels: c
            .labels
            .iter()
            .map(|(l, t)| {
                (
                    l.clone(),
                    LabelCount {
                        entered: t.interval_in,
                        out: t.interval_out,
                        occupancy: t.occupancy,
                    },
                )
            })
            .collect(),
    }
}
