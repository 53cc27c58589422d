//! Sinks that reach people directly: a Slack incoming webhook (Block Kit) and PagerDuty's
//! Events API v2 (count reports as Change Events, which never page). Both turn the committed body into the service's own request at send time
//! (the outbox keeps the canonical body), so retries send the same message.

use super::webhook::{http_client, post_json};
use super::{DeliverError, Outcome};
use crate::config::SinkConfig;
use crate::outbox::OutboxRow;
use crate::template::AlertView;
use serde_json::{json, Value};

fn setup_error(cfg: &SinkConfig, message: String) -> DeliverError {
    DeliverError::Setup {
        sink: cfg.name.clone(),
        message,
    }
}

/// The service endpoint of a Slack or PagerDuty sink.
struct Endpoint {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Endpoint {
    fn from_config(cfg: &SinkConfig) -> Result<Self, DeliverError> {
        Ok(Self {
            url: reqwest::Url::parse(&cfg.url)
                .map_err(|e| setup_error(cfg, format!("url: {e}")))?,
            client: http_client(cfg.timeout_seconds)
                .map_err(|e| setup_error(cfg, e.to_string()))?,
        })
    }

    /// Turns the committed body into the service's request and posts it; a body that cannot
    /// be read is rejected (it will not become readable on a retry).
    async fn send(&self, row: &OutboxRow, request: impl FnOnce(&AlertView) -> Value) -> Outcome {
        match AlertView::parse(&row.body) {
            Ok(view) => self.post(&request(&view)).await,
            Err(error) => Outcome::Rejected { status: 0, error },
        }
    }

    async fn post(&self, body: &Value) -> Outcome {
        post_json(&self.client, &self.url, body.to_string().into_bytes()).await
    }
}

fn snapshot_link(link_url: Option<&str>, view: &AlertView) -> Option<String> {
    let base = link_url?.trim_end_matches('/');
    let id = view.snapshot.as_deref()?;
    Some(format!("{base}/snapshots/{id}.jpg"))
}

pub struct SlackSink {
    name: String,
    endpoint: Endpoint,
    template: Option<String>,
    link_url: Option<String>,
}

impl SlackSink {
    pub fn from_config(cfg: &SinkConfig) -> Result<Self, DeliverError> {
        Ok(Self {
            name: cfg.name.clone(),
            endpoint: Endpoint::from_config(cfg)?,
            template: cfg.template.clone(),
            link_url: cfg.link_url.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, row: &OutboxRow) -> Outcome {
        let (template, link) = (self.template.as_deref(), self.link_url.as_deref());
        self.endpoint
            .send(row, |view| slack_message(view, template, link))
            .await
    }
}

/// Slack caps a header at 150 characters and a section field at 2,000.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

pub fn slack_message(view: &AlertView, template: Option<&str>, link_url: Option<&str>) -> Value {
    let title = view.title(template);
    if let Some(r) = &view.report {
        let field = |name: &str, value: String| json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}")});
        let fields = vec![
            field("In", r.entered.to_string()),
            field("Out", r.out.to_string()),
            field("Inside now", r.occupancy.to_string()),
            field(
                "Since the reset",
                format!("{} in, {} out", r.total_in, r.total_out),
            ),
        ];
        return json!({"text": title, "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(&title, 150)}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} to {} · {}", r.interval_start, r.interval_end, view.device)}]},
        ]});
    }
    let field = |name: &str, value: String| json!({"type": "mrkdwn", "text": clip(&format!("*{name}*\n{value}"), 2000)});
    let mut fields = vec![
        field("Camera", view.camera.clone()),
        field("Rule", view.rule.clone()),
        field("Severity", view.severity.clone()),
        field("Time", view.local_time()),
    ];
    if view.ended() {
        fields.push(field(
            "Lasted",
            format!("{:.0} s", view.duration_seconds.unwrap_or_default()),
        ));
    } else {
        fields.push(field("Label", view.label.clone()));
        fields.push(field(
            "Confidence",
            format!("{:.0}%", view.confidence.unwrap_or_default() * 100.0),
        ));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&title, 150)}}),
        json!({"type": "section", "fields": fields}),
    ];
    if !view.metadata.is_empty() {
        let meta = view
            .metadata
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · ");
        blocks.push(
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&meta, 2000)}]}),
        );
    }
    if let Some(link) = snapshot_link(link_url, view) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("<{link}|Snapshot>")}}));
    }
    json!({"text": title, "blocks": blocks})
}

pub struct PagerDutySink {
    name: String,
    endpoint: Endpoint,
    /// The Change Events endpoint beside the Events one: count reports are changes, which
    /// PagerDuty shows on the service's timeline without paging anyone.
    changes: Endpoint,
    routing_key: crate::config::Secret,
    template: Option<String>,
    link_url: Option<String>,
}

impl PagerDutySink {
    pub fn from_config(cfg: &SinkConfig) -> Result<Self, DeliverError> {
        let endpoint = Endpoint::from_config(cfg)?;
        let mut change_url = endpoint.url.clone();
        let path = change_url.path().to_string();
        change_url.set_path(&match path.strip_suffix("/enqueue") {
            Some(base) => format!("{base}/change/enqueue"),
            None => format!("{}/change/enqueue", path.trim_end_matches('/')),
        });
        Ok(Self {
            name: cfg.name.clone(),
            changes: Endpoint {
                url: change_url,
                client: endpoint.client.clone(),
            },
            endpoint,
            routing_key: cfg
                .routing_key
                .clone()
                .ok_or_else(|| setup_error(cfg, "no routing_key".into()))?,
            template: cfg.template.clone(),
            link_url: cfg.link_url.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, row: &OutboxRow) -> Outcome {
        let (template, link) = (self.template.as_deref(), self.link_url.as_deref());
        // Parsed once: the body picks the endpoint (a report is a change) and makes the event.
        let view = match AlertView::parse(&row.body) {
            Ok(v) => v,
            Err(error) => return Outcome::Rejected { status: 0, error },
        };
        let endpoint = if view.report.is_some() {
            &self.changes
        } else {
            &self.endpoint
        };
        let event = pagerduty_event(&view, self.routing_key.expose(), template, link);
        endpoint.post(&event).await
    }
}

/// PagerDuty knows four severities.
fn pagerduty_severity(s: &str) -> &'static str {
    match s {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    }
}

/// A trigger for `alert.fired` (dedup_key = alert_id, so a retried trigger never opens a
/// second incident), a resolve of the fired alert's key for `alert.ended`.
pub fn pagerduty_event(
    view: &AlertView,
    routing_key: &str,
    template: Option<&str>,
    link_url: Option<&str>,
) -> Value {
    if let Some(r) = &view.report {
        // A Change Event (no event_action, no dedup_key): it never opens an incident.
        return json!({
            "routing_key": routing_key,
            "payload": {
                "summary": clip(&view.title(template), 1024),
                "timestamp": view.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "source": format!("{}/{}", view.device, r.line),
                "custom_details": {
                    "line": r.line, "in": r.entered, "out": r.out, "occupancy": r.occupancy,
                    "total_in": r.total_in, "total_out": r.total_out,
                    "interval_start": r.interval_start, "interval_end": r.interval_end,
                },
            },
        });
    }
    if view.ended() {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": view.fired_alert_id.as_deref().unwrap_or(&view.alert_id),
        });
    }
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": view.alert_id,
        "client": "watchpost",
        "payload": {
            "summary": clip(&view.title(template), 1024),
            "source": format!("{}/{}", view.device, view.camera),
            "severity": pagerduty_severity(&view.severity),
            "timestamp": view.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "component": view.camera,
            "group": view.site,
            "class": view.label,
            "custom_details": {
                "rule": view.rule,
                "confidence": view.confidence,
                "count": view.count,
                "local_time": view.local_time(),
                "metadata": view.metadata,
                "objects": view.objects,
            },
        },
    });
    if let Some(link) = snapshot_link(link_url, view) {
        event["links"] = json!([{"href": link, "text": "Snapshot"}]);
    }
    event
}
