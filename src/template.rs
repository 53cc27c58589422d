//! Titles for people (Slack header, PagerDuty summary, email subject) from the committed
//! alert body: plain `{name}` placeholders, checked at config load. Written by hand: a dozen
//! names and no logic do not need a template engine and its error surface.

use chrono::{DateTime, Local, Utc};
use serde_json::Value;

/// The default title; `alert.ended` gets "Resolved: " in front.
pub const DEFAULT: &str = "[{severity}] {label} on {camera} ({rule})";

const NAMES: &[&str] = &[
    "alert_id",
    "camera",
    "confidence",
    "count",
    "device",
    "event",
    "label",
    "rule",
    "severity",
    "site",
    "time",
    "zone",
];

/// `Err` names the first unknown placeholder or the unclosed brace, and the valid names.
pub fn check(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed \"{{\" in {template:?}"))?;
        let name = &after[..close];
        let known = NAMES.contains(&name)
            || name
                .strip_prefix("metadata.")
                .is_some_and(|k| !k.is_empty());
        if !known {
            return Err(format!(
                "unknown placeholder {{{name}}}; use {} or {{metadata.KEY}}",
                NAMES
                    .iter()
                    .map(|n| format!("{{{n}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// What a person-facing message needs of a committed body (either event type).
#[derive(Debug, Clone)]
pub struct AlertView {
    pub event: String,
    pub alert_id: String,
    /// `alert.ended`: the alert it closes (PagerDuty's dedup_key).
    pub fired_alert_id: Option<String>,
    pub device: String,
    pub site: String,
    pub camera: String,
    pub rule: String,
    pub label: String,
    pub confidence: Option<f64>,
    pub count: Option<u64>,
    pub severity: String,
    pub at: DateTime<Utc>,
    pub metadata: serde_json::Map<String, Value>,
    pub objects: Value,
    pub snapshot: Option<String>,
    pub snapshot_jpeg: Option<String>,
    pub duration_seconds: Option<f64>,
    /// `count.report`: the line's figures for the interval.
    pub report: Option<ReportView>,
}

/// What a person reads of a `count.report`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportView {
    pub line: String,
    pub entered: u64,
    pub out: u64,
    pub occupancy: u64,
    pub total_in: u64,
    pub total_out: u64,
    pub interval_start: String,
    pub interval_end: String,
}

impl AlertView {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("alert body is not JSON: {e}"))?;
        let d = &v["data"];
        let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
        let at = d["frame_ts"]
            .as_str()
            .or(d["ended_at"].as_str())
            .or(v["timestamp"].as_str())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or("alert body has no timestamp")?;
        Ok(Self {
            event: v["type"].as_str().unwrap_or("alert.fired").to_string(),
            alert_id: s("alert_id"),
            fired_alert_id: d["fired_alert_id"].as_str().map(str::to_string),
            device: s("device_id"),
            site: s("site"),
            camera: s("camera"),
            rule: s("rule"),
            label: s("label"),
            confidence: d["confidence"].as_f64(),
            count: d["count"].as_u64(),
            severity: s("severity"),
            at,
            metadata: d["metadata"].as_object().cloned().unwrap_or_default(),
            objects: d["objects"].clone(),
            snapshot: d["snapshot"].as_str().map(str::to_string),
            snapshot_jpeg: d["snapshot_jpeg"].as_str().map(str::to_string),
            duration_seconds: d["duration_seconds"].as_f64(),
            report: (v["type"] == "count.report").then(|| {
                let n = |k: &str| d[k].as_u64().unwrap_or(0);
                ReportView {
                    line: s("line"),
                    entered: n("in"),
                    out: n("out"),
                    occupancy: n("occupancy"),
                    total_in: n("total_in"),
                    total_out: n("total_out"),
                    interval_start: s("interval_start"),
                    interval_end: s("interval_end"),
                }
            }),
        })
    }

    pub fn ended(&self) -> bool {
        self.event == "alert.ended"
    }

    /// The device's local time, as a technician on site reads it.
    pub fn local_time(&self) -> String {
        self.at
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    pub fn zone(&self) -> String {
        self.meta("zone")
    }

    fn meta(&self, key: &str) -> String {
        match self.metadata.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    fn value(&self, name: &str) -> String {
        match name {
            "alert_id" => self.alert_id.clone(),
            "camera" => self.camera.clone(),
            "confidence" => self
                .confidence
                .map(|c| format!("{:.0}%", c * 100.0))
                .unwrap_or_default(),
            "count" => self.count.map(|c| c.to_string()).unwrap_or_default(),
            "device" => self.device.clone(),
            "event" => self.event.clone(),
            "label" => self.label.clone(),
            "rule" => self.rule.clone(),
            "severity" => self.severity.clone(),
            "site" => self.site.clone(),
            "time" => self.local_time(),
            "zone" => self.zone(),
            other => other
                .strip_prefix("metadata.")
                .map(|k| self.meta(k))
                .unwrap_or_default(),
        }
    }

    /// The title from `template` (checked at config load; an unknown name renders empty).
    /// A count report has its own fixed title: the alert placeholders mean nothing there.
    pub fn title(&self, template: Option<&str>) -> String {
        if let Some(r) = &self.report {
            return format!(
                "Counts on {}: {} in, {} out, {} inside",
                r.line, r.entered, r.out, r.occupancy
            );
        }
        let mut out = String::new();
        let mut rest = template.unwrap_or(DEFAULT);
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                rest = after;
                break;
            };
            out.push_str(&self.value(&after[..close]));
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        if self.ended() {
            format!("Resolved: {out}")
        } else {
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_and_filled() {
        assert!(check("{camera}: {label} {metadata.zone}").is_ok());
        let err = check("{camrea} saw it").unwrap_err();
        assert!(
            err.contains("{camrea}") && err.contains("{camera}"),
            "{err}"
        );
        assert!(check("{camera").unwrap_err().contains("unclosed"));

        let body = br#"{"type":"alert.fired","timestamp":"2026-11-24T10:30:45.123Z",
            "data":{"alert_id":"01J","device_id":"gw","site":"s","camera":"dock","rule":"lane",
            "label":"person","confidence":0.913,"count":2,"severity":"high",
            "frame_ts":"2026-11-24T10:30:45.040Z","objects":[],"metadata":{"zone":"east"}}}"#;
        let v = AlertView::parse(body).unwrap();
        assert_eq!(
            v.title(Some(
                "{severity}/{camera}/{label} {confidence} x{count} in {zone}"
            )),
            "high/dock/person 91% x2 in east"
        );
        assert_eq!(v.title(None), "[high] person on dock (lane)");

        let report = br#"{"type":"count.report","timestamp":"2026-11-24T10:45:00.000Z",
            "data":{"alert_id":"01K","device_id":"gw","site":"s","line":"pit","cameras":["north"],
            "interval_start":"2026-11-24T10:30:00.000Z","interval_end":"2026-11-24T10:45:00.000Z",
            "in":3,"out":1,"occupancy":2,"total_in":9,"total_out":7,"since":"2026-11-24T03:00:00.000Z",
            "labels":{"person":{"in":3,"out":1,"occupancy":2}}}}"#;
        let r = AlertView::parse(report).unwrap();
        assert_eq!(
            r.title(Some("{camera}")),
            "Counts on pit: 3 in, 1 out, 2 inside"
        );
        assert_eq!(r.report.as_ref().map(|r| r.total_in), Some(9));
    }
}
