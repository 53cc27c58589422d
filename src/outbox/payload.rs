//! Alert bodies (the payload contract in DESIGN.md). Built once, at commit; every attempt
//! on a sink sends the same bytes.

use crate::clock::rfc3339_ms;
use crate::rules::{HitKind, HitObject, RuleHit};
use serde::Serialize;

#[derive(Serialize)]
struct Body<D> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: D,
}

#[derive(Serialize)]
struct Fired<'a> {
    alert_id: String,
    device_id: &'a str,
    site: &'a str,
    camera: &'a str,
    rule: &'a str,
    label: &'a str,
    confidence: f32,
    count: u32,
    severity: &'static str,
    frame_ts: String,
    objects: &'a [HitObject],
    metadata: &'a serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_jpeg: Option<&'a str>,
}

#[derive(Serialize)]
struct Ended<'a> {
    alert_id: String,
    fired_alert_id: String,
    device_id: &'a str,
    site: &'a str,
    camera: &'a str,
    rule: &'a str,
    severity: &'static str,
    started_at: String,
    ended_at: String,
    duration_seconds: f64,
    metadata: &'a serde_json::Map<String, serde_json::Value>,
}

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
            serde_json::to_vec(&Body {
                kind: "alert.fired",
                timestamp,
                data: Fired {
                    alert_id: hit.alert_id.to_string(),
                    device_id,
                    site,
                    camera: &hit.camera,
                    rule: &hit.rule,
                    label: &hit.label,
                    confidence: hit.confidence,
                    count: hit.count,
                    severity: hit.severity.as_str(),
                    frame_ts: rfc3339_ms(hit.frame_ts),
                    objects: &hit.objects,
                    metadata: &hit.metadata,
                    snapshot: reference,
                    snapshot_jpeg: inline,
                },
            })
        }
        HitKind::Ended {
            fired_alert_id,
            started_at,
        } => serde_json::to_vec(&Body {
            kind: "alert.ended",
            timestamp,
            data: Ended {
                alert_id: hit.alert_id.to_string(),
                fired_alert_id: fired_alert_id.to_string(),
                device_id,
                site,
                camera: &hit.camera,
                rule: &hit.rule,
                severity: hit.severity.as_str(),
                started_at: rfc3339_ms(*started_at),
                ended_at: rfc3339_ms(hit.fired_at),
                duration_seconds: (hit.fired_at - *started_at).num_milliseconds() as f64 / 1000.0,
                metadata: &hit.metadata,
            },
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
    let no_metadata = serde_json::Map::new();
    serde_json::to_vec(&Body {
        kind: "alert.test",
        timestamp: rfc3339_ms(at),
        data: Fired {
            alert_id: alert_id.to_string(),
            device_id,
            site,
            camera: TEST_CAMERA,
            rule: "test",
            label: "test",
            confidence: 1.0,
            count: 0,
            severity: "info",
            frame_ts: rfc3339_ms(at),
            objects: &[],
            metadata: &no_metadata,
            snapshot: None,
            snapshot_jpeg: None,
        },
    })
    .unwrap_or_default()
}

/// The camera name test alerts carry (MQTT: `alerts/_test`); camera names cannot start with
/// `_`, so it never collides with a real one.
pub const TEST_CAMERA: &str = "_test";
