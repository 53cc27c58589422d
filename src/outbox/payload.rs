//! The alert body (the payload contract in DESIGN.md). Built once, at commit; every attempt
//! on every sink sends these same bytes.

use crate::clock::rfc3339_ms;
use crate::rules::{HitObject, RuleHit};
use serde::Serialize;

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
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
}

pub fn alert_body(hit: &RuleHit, device_id: &str, site: &str) -> Vec<u8> {
    let body = Body {
        kind: "alert.fired",
        timestamp: rfc3339_ms(hit.fired_at),
        data: Data {
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
        },
    };
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}
