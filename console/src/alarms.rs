//! The fleet's own alarms: what a fleet operator would otherwise watch for by hand. Every
//! `check_seconds` the gateways' rows are turned into the conditions that hold (a gateway
//! offline or stale, a camera down, dead letters, a silent rule); the store raises each once
//! when it has held long enough and resolves it when it clears, queueing one delivery per
//! sink. Deliveries are store-and-forward: claimed from the database, sent, marked
//! delivered on a 2xx, else retried with backoff (1 s doubling to 5 min) for as long as it
//! takes — a receiver outage or a console restart loses none.

use crate::config::{AlarmSink, AlarmSinkKind, AlarmsSection};
use crate::fleet::{self, State as GwState};
use crate::store::{AlarmRow, Condition, GatewayRow, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The conditions that hold over `gateways` at `now_ms`.
pub fn conditions(cfg: &AlarmsSection, gateways: &[GatewayRow], now_ms: i64) -> Vec<Condition> {
    let minutes = |m: f64| (m * 60_000.0) as i64;
    let mut out = Vec::new();
    for g in gateways {
        let cond =
            |kind: &str, subject: &str, detail: String, since_ms: i64, hold_ms: i64| Condition {
                device: g.device.clone(),
                site: g.site.clone(),
                kind: kind.into(),
                subject: subject.into(),
                detail,
                since_ms,
                hold_ms,
            };
        match fleet::state(g, now_ms) {
            GwState::Online => {}
            GwState::Offline => out.push(cond(
                "gateway-offline",
                "",
                "offline (its last will, or a clean stop)".into(),
                g.status_ms.unwrap_or(now_ms),
                minutes(cfg.offline_minutes),
            )),
            GwState::Stale => {
                let last = g.health_ms.or(g.status_ms).unwrap_or(now_ms);
                out.push(cond(
                    "gateway-offline",
                    "",
                    format!(
                        "stale: no health for {} s (it publishes every {} s)",
                        (now_ms - last) / 1000,
                        g.health_interval_s.unwrap_or(30.0)
                    ),
                    last,
                    minutes(cfg.offline_minutes),
                ))
            }
        }
        // The cameras as the gateway last said (also while it is away: its own alarm says
        // that, and a camera alarm does not flap with it).
        for camera in &g.cameras_down {
            out.push(cond(
                "camera-down",
                camera,
                format!("camera \"{camera}\" is not streaming"),
                now_ms,
                minutes(cfg.camera_down_minutes),
            ));
        }
        if cfg.dead_letters && g.dead_letters.unwrap_or(0) > 0 {
            out.push(cond(
                "dead-letters",
                "",
                format!(
                    "{} alerts could not be delivered (dead letters)",
                    g.dead_letters.unwrap_or(0)
                ),
                now_ms,
                0,
            ));
        }
        if cfg.silent && g.anomalies.unwrap_or(0) > 0 {
            out.push(cond(
                "silent",
                "",
                format!(
                    "{} rules or cameras silent against their normal rate",
                    g.anomalies.unwrap_or(0)
                ),
                now_ms,
                0,
            ));
        }
    }
    out
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The delivery body: the gateway's envelope (`type`, `timestamp`, `data`).
pub fn body(event: &str, a: &AlarmRow, now_ms: i64) -> String {
    serde_json::json!({
        "type": event,
        "timestamp": rfc3339(now_ms),
        "data": {
            "alarm_id": a.id,
            "device_id": a.device,
            "site": a.site,
            "kind": a.kind,
            "subject": a.subject,
            "detail": a.detail,
            "since": rfc3339(a.since_ms),
            "raised_at": a.raised_ms.map(rfc3339),
            "resolved_at": a.resolved_ms.map(rfc3339),
        }
    })
    .to_string()
}

/// Runs the evaluator and the delivery loop until `cancel`.
pub fn start(
    cfg: AlarmsSection,
    store: Arc<Store>,
    cancel: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sinks: Vec<String> = cfg.sinks.iter().map(|s| s.name.clone()).collect();
    let evaluate = {
        let (cfg, store, cancel, sinks) = (cfg.clone(), store.clone(), cancel.clone(), sinks);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(cfg.check_seconds));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let (c, s, names) = (cfg.clone(), store.clone(), sinks.clone());
                let done = tokio::task::spawn_blocking(move || {
                    let now = crate::store::now_ms();
                    let holding = conditions(&c, &s.gateways()?, now);
                    s.evaluate_alarms(&holding, &names, &body)
                })
                .await;
                match done {
                    Ok(Ok(e)) => {
                        for a in &e.raised {
                            tracing::warn!(device = %a.device, kind = %a.kind, subject = %a.subject, detail = %a.detail, "fleet alarm raised");
                        }
                        for a in &e.resolved {
                            tracing::info!(device = %a.device, kind = %a.kind, subject = %a.subject, "fleet alarm resolved");
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "alarm check failed; next tick again"),
                    Err(e) => tracing::warn!(error = %e, "alarm check failed"),
                }
            }
        })
    };
    let deliver = tokio::spawn(deliver_loop(cfg.sinks, store, cancel));
    vec![evaluate, deliver]
}

async fn deliver_loop(sinks: Vec<AlarmSink>, store: Arc<Store>, cancel: CancellationToken) {
    let client = match reqwest::Client::builder()
        // A redirect would send an alarm somewhere nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("watchpost-console/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "alarm deliveries cannot start");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let s = store.clone();
        let due = match tokio::task::spawn_blocking(move || s.claim_deliveries(20, 60_000)).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "alarm deliveries not read; retrying");
                continue;
            }
            Err(_) => continue,
        };
        for d in due {
            let outcome = match sinks.iter().find(|s| s.name == d.sink) {
                Some(sink) => send(&client, sink, &d.id, &d.body).await,
                None => Err(format!("alarm sink \"{}\" is no longer configured", d.sink)),
            };
            let delay = Duration::from_secs(1u64 << d.attempts.clamp(0, 8) as u32)
                .min(Duration::from_secs(300));
            if let Err(e) = &outcome {
                tracing::warn!(sink = %d.sink, attempts = d.attempts + 1, error = %e, retry_in_s = delay.as_secs(), "alarm not delivered; retrying");
            }
            let retry_ms = crate::store::now_ms() + delay.as_millis() as i64;
            let s = store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                s.delivery_attempt(&d.id, outcome.is_ok(), retry_ms, outcome.err().as_deref())
            })
            .await;
        }
    }
}

/// One attempt: Ok on a 2xx.
async fn send(
    client: &reqwest::Client,
    sink: &AlarmSink,
    id: &str,
    body: &str,
) -> Result<(), String> {
    let timeout = Duration::from_secs_f64(sink.timeout_seconds);
    let request = match sink.kind {
        AlarmSinkKind::Webhook => {
            let secret = sink.secret.as_ref().map(|s| s.expose()).unwrap_or("");
            let signer = watchpost_contracts::signing::Signer::standard_webhooks(secret)
                .map_err(|e| e.to_string())?;
            let mut req = client
                .post(sink.url.expose())
                .header("content-type", "application/json")
                .body(body.to_string());
            for (k, v) in signer.headers(id, chrono::Utc::now().timestamp(), body.as_bytes()) {
                req = req.header(k, v);
            }
            req
        }
        AlarmSinkKind::Slack => {
            let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let d = &v["data"];
            let what = if v["type"] == "alarm.resolved" {
                "resolved"
            } else {
                "ALARM"
            };
            let text = format!(
                "{what}: {} / {} — {}",
                d["site"].as_str().unwrap_or(""),
                d["device_id"].as_str().unwrap_or(""),
                d["detail"].as_str().unwrap_or("")
            );
            client
                .post(sink.url.expose())
                .header("content-type", "application/json")
                .body(serde_json::json!({ "text": text }).to_string())
        }
    };
    match request.timeout(timeout).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("receiver answered {}", r.status().as_u16())),
        // Without the URL: it may hold a secret (Slack's does).
        Err(e) => Err(format!("{}", e.without_url())),
    }
}
