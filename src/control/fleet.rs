//! The MQTT link to the fleet console (`[control.mqtt]`).
//!
//! `watchpost/{device}/status` is retained: `online` once connected, `offline` on a clean stop
//! and, as the connection's last will, when the gateway dies or drops off the network, so the
//! console never shows a dead gateway as up. `watchpost/{device}/health` (retained) carries
//! [`crate::telemetry::Health`] every `health_interval_seconds` and at once when a camera
//! changes state. Health never holds a secret (cameras and sinks appear by name).

use super::gateway::Gateway;
use super::live::LiveConfig;
use super::ControlError;
use crate::config::ControlMqttConfig;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use watchpost_contracts::control::SIGNATURE_PROPERTY;
use watchpost_contracts::topics;

/// A command or config push as it arrived, with where and how to answer it.
struct Incoming {
    topic: String,
    payload: Vec<u8>,
    signature: Option<String>,
    reply: Reply,
}

/// MQTT 5 request/response: the sender's response topic (else the contract's result topic)
/// and its correlation data, echoed on the answer so it can match answers to requests.
#[derive(Default)]
struct Reply {
    topic: Option<String>,
    correlation: Option<bytes::Bytes>,
}

impl Reply {
    fn topic_or(&self, default: String) -> String {
        self.topic.clone().unwrap_or(default)
    }

    fn properties(&self) -> PublishProperties {
        PublishProperties {
            correlation_data: self.correlation.clone(),
            ..Default::default()
        }
    }
}

impl Incoming {
    fn new(p: &Publish, device: &str) -> Self {
        let props = p.properties.as_ref();
        let signature = props.and_then(|pr| {
            pr.user_properties
                .iter()
                .find(|(k, _)| k == SIGNATURE_PROPERTY)
                .map(|(_, v)| v.clone())
        });
        // A response topic must stay inside this device's own topics: a signed command
        // still cannot make the gateway publish elsewhere (e.g. onto another's `status`).
        let reply = Reply {
            topic: props
                .and_then(|pr| pr.response_topic.clone())
                .filter(|t| is_result_topic(t, device)),
            correlation: props.and_then(|pr| pr.correlation_data.clone()),
        };
        Self {
            topic: String::from_utf8_lossy(&p.topic).to_string(),
            payload: p.payload.to_vec(),
            signature,
            reply,
        }
    }
}

fn is_result_topic(t: &str, device: &str) -> bool {
    matches!(
        topics::Topic::parse(t),
        Some(topics::Topic::ConfigResult { device: d } | topics::Topic::CommandResult { device: d, .. }) if d == device
    )
}

fn mqtt_err(message: impl Into<String>) -> ControlError {
    ControlError::Mqtt(message.into())
}

/// Connects (in the background, retrying) and publishes until `cancel`; returns after the
/// final `offline` has been handed to the broker (or a short grace period).
pub async fn run(
    cfg: ControlMqttConfig,
    device: String,
    gw: Gateway,
    cancel: CancellationToken,
) -> Result<(), ControlError> {
    let opts = options(&cfg, &device)?;
    let status_topic = topics::status(&device);
    let health_topic = topics::health(&device);
    // Room for a busy answer to each command of a flood (see `Busy`).
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let interval = Duration::from_secs_f64(cfg.health_interval_seconds);

    let cmd_topic = topics::command(&device, "");
    let set_topic = topics::config_set(&device);
    let state_topic = topics::config_state(&device);
    let mut gate = super::commands::Gate::with_keys(
        [cfg.control_key.as_ref(), cfg.control_key_previous.as_ref()]
            .into_iter()
            .flatten()
            .map(|k| k.expose().as_bytes().to_vec())
            .collect(),
    );
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel::<Incoming>(COMMAND_QUEUE);
    let (connected_tx, mut connected_rx) = tokio::sync::watch::channel(0u64);
    let poll_cancel = CancellationToken::new();
    let poller = {
        let (client, topic, stop) = (client.clone(), status_topic.clone(), poll_cancel.clone());
        let subscribe_to = [format!("{cmd_topic}+"), set_topic.clone()];
        let (set_topic, result_for_set) = (set_topic.clone(), topics::config_result(&device));
        let mut busy = Busy::default();
        let device_name = device.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => return,
                    e = eventloop.poll() => e,
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        failures = 0;
                        tracing::info!(topic = %topic, "fleet link connected");
                        let _ = client
                            .publish(topic.clone(), QoS::AtLeastOnce, true, topics::ONLINE)
                            .await;
                        for t in &subscribe_to {
                            let _ = client.subscribe(t.clone(), QoS::AtLeastOnce).await;
                        }
                        connected_tx.send_modify(|n| *n += 1);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let incoming = Incoming::new(&p, &device_name);
                        if let Err(tokio::sync::mpsc::error::TrySendError::Full(i)) =
                            cmd_tx.try_send(incoming)
                        {
                            busy.refuse(&client, &i, &set_topic, &result_for_set);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 || failures.is_power_of_two() {
                            tracing::warn!(error = %e, failures, "fleet link down; retrying");
                        }
                        let wait = Duration::from_secs(1 << failures.min(5));
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        })
    };

    let mut last_sent: Option<Instant> = None;
    let mut last_states = String::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
            // A (re)connect publishes health and config state at once.
            _ = connected_rx.changed() => {
                last_sent = None;
                publish_state(&client, &state_topic, gw.live.as_deref()).await;
            }
            Some(incoming) = cmd_rx.recv() => {
                let Incoming { topic, payload, signature, reply } = incoming;
                if topic == set_topic {
                    let now = chrono::Utc::now().timestamp();
                    let answer = match gate.admit(&topic, &payload, signature.as_deref(), now) {
                        Err(refusal) => {
                            tracing::warn!(reason = %refusal, "config/set refused");
                            serde_json::json!({"ok": false, "error": refusal.to_string()})
                        }
                        Ok((nonce, args)) => {
                            let answer = config_set(gw.live.clone(), &nonce, args).await;
                            // A pushed key (a rotation) counts from the next command on.
                            if let (Some(true), Some(live)) = (answer["ok"].as_bool(), gw.live.as_deref()) {
                                let keys = live.control_keys();
                                if !keys.is_empty() {
                                    gate.set_keys(keys);
                                }
                            }
                            answer
                        }
                    };
                    let result_topic = reply.topic_or(topics::config_result(&device));
                    let _ = client
                        .publish_with_properties(result_topic, QoS::AtLeastOnce, false, answer.to_string(), reply.properties())
                        .await;
                    publish_state(&client, &state_topic, gw.live.as_deref()).await;
                    continue;
                }
                let Some(name) = topic.strip_prefix(&cmd_topic).map(str::to_string) else {
                    continue;
                };
                // Results are not commands.
                if name.contains('/') {
                    continue;
                }
                let now = chrono::Utc::now().timestamp();
                let (client, t, result_topic) =
                    (client.clone(), gw.clone(), reply.topic_or(format!("{topic}/result")));
                match gate.admit(&topic, &payload, signature.as_deref(), now) {
                    Err(refusal) => {
                        tracing::warn!(command = %name, reason = %refusal, "fleet command refused");
                        let body = serde_json::json!({"ok": false, "command": name, "error": refusal.to_string()});
                        let _ = client
                            .publish_with_properties(result_topic, QoS::AtLeastOnce, false, body.to_string(), reply.properties())
                            .await;
                    }
                    Ok((nonce, args)) => {
                        tracing::info!(command = %name, "fleet command");
                        tokio::spawn(async move {
                            let body = match super::commands::run(&name, &args, &t).await {
                                Ok(result) => serde_json::json!({"ok": true, "command": name, "nonce": nonce, "result": result}),
                                Err(error) => serde_json::json!({"ok": false, "command": name, "nonce": nonce, "error": error}),
                            };
                            let _ = client
                                .publish_with_properties(result_topic, QoS::AtLeastOnce, false, body.to_string(), reply.properties())
                                .await;
                        });
                    }
                }
                continue;
            }
        }
        if *connected_rx.borrow() == 0 {
            continue;
        }
        let states: String = gw
            .telemetry
            .cameras
            .snapshots()
            .iter()
            .map(|c| format!("{}={:?};", c.name, c.state))
            .collect();
        let due = last_sent.is_none_or(|t| t.elapsed() >= interval);
        if !due && states == last_states {
            continue;
        }
        match gw.telemetry.health().await {
            Ok(h) => match serde_json::to_vec(&h) {
                Ok(body) => {
                    if client
                        .publish(health_topic.clone(), QoS::AtLeastOnce, true, body)
                        .await
                        .is_ok()
                    {
                        last_sent = Some(Instant::now());
                        last_states = states;
                    }
                }
                Err(e) => tracing::error!(error = %e, "health not serialisable"),
            },
            Err(e) => tracing::error!(error = %e, "health not available"),
        }
    }
    // A clean stop says so itself (the will is only for deaths).
    let _ = client
        .publish(status_topic, QoS::AtLeastOnce, true, topics::OFFLINE)
        .await;
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    poll_cancel.cancel();
    let _ = poller.await;
    Ok(())
}

/// Retained `config/state`: the running config, secrets redacted, with its version.
async fn publish_state(client: &AsyncClient, topic: &str, live: Option<&LiveConfig>) {
    let Some(live) = live else {
        return;
    };
    let (version, toml) = live.redacted();
    let body = serde_json::json!({"version": version, "toml": toml});
    let _ = client
        .publish(topic.to_string(), QoS::AtLeastOnce, true, body.to_string())
        .await;
}

/// `config/set` with `args.toml` (a whole config file; secrets may be sent back as the
/// redacted "(set)"), `args.merge` (a partial TOML document, see `edit::merge`) or
/// `args.rollback = true`.
async fn config_set(
    live: Option<Arc<LiveConfig>>,
    nonce: &str,
    args: serde_json::Value,
) -> serde_json::Value {
    use super::live::Refused;
    let Some(live) = live else {
        return serde_json::json!({"ok": false, "nonce": nonce, "error": "this daemon was not started from a config file (watchpost run --config)"});
    };
    let text = |k: &str| args.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let request = if args.get("rollback").and_then(|v| v.as_bool()) == Some(true) {
        Request::Rollback
    } else if let Some(t) = text("toml") {
        Request::Whole(t)
    } else if let Some(t) = text("merge") {
        Request::Merge(t)
    } else {
        return serde_json::json!({"ok": false, "nonce": nonce, "error": "args.toml (a whole config file), args.merge (a partial one) or args.rollback = true is required"});
    };
    let outcome = tokio::task::spawn_blocking(move || match request {
        Request::Whole(t) => live.replace(&t),
        Request::Merge(t) => live.edit(|current| super::edit::merge(current, &t)),
        Request::Rollback => live.rollback(),
    })
    .await;
    match outcome {
        Ok(Ok(applied)) => serde_json::json!({"ok": true, "nonce": nonce, "applied": applied}),
        Ok(Err(Refused::Invalid(problems))) => {
            let errors: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            serde_json::json!({"ok": false, "nonce": nonce, "error": "invalid config; nothing changed", "errors": errors})
        }
        Ok(Err(e)) => serde_json::json!({"ok": false, "nonce": nonce, "error": e.to_string()}),
        Err(e) => serde_json::json!({"ok": false, "nonce": nonce, "error": e.to_string()}),
    }
}

enum Request {
    Whole(String),
    Merge(String),
    Rollback,
}

fn options(cfg: &ControlMqttConfig, device: &str) -> Result<MqttOptions, ControlError> {
    let url = url::Url::parse(&cfg.url).map_err(|e| mqtt_err(format!("url: {e}")))?;
    let port = url
        .port()
        .unwrap_or(if url.scheme() == "mqtts" { 8883 } else { 1883 });
    let host = url
        .host_str()
        .ok_or_else(|| mqtt_err("url has no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    let mut opts = MqttOptions::new(format!("watchpost-{device}-fleet"), host, port);
    // Short keep-alive: a gateway that vanishes without closing TCP shows `offline` within
    // 1.5 × 10 s.
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_clean_start(true);
    // Snapshots travel as results: allow a camera-size JPEG (base64) each way.
    opts.set_max_packet_size(Some(4 * 1024 * 1024));
    opts.set_last_will(LastWill::new(
        topics::status(device),
        topics::OFFLINE,
        QoS::AtLeastOnce,
        true,
        None,
    ));
    if let Some(tls) = watchpost_contracts::tls::tls_config_for(
        &cfg.url,
        cfg.ca_file.as_deref(),
        cfg.client_cert_file.as_deref(),
        cfg.client_key_file.as_deref(),
    )
    .map_err(|e| mqtt_err(format!("{}: {}", e.field, e.message)))?
    {
        opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
    }
    if let Some(user) = &cfg.username {
        let pass = cfg.password.as_ref().map(|p| p.expose()).unwrap_or("");
        opts.set_credentials(user.clone(), pass.to_string());
    }
    Ok(opts)
}

/// Commands beyond the queue ([`COMMAND_QUEUE`] waiting): each is answered "busy" on its
/// result topic (so the sender knows to try again), counted, and logged at most every 10 s;
/// never dropped without a trace.
struct Busy {
    refused: u64,
    log: watchpost_contracts::throttle::Every,
}

impl Default for Busy {
    fn default() -> Self {
        Self {
            refused: 0,
            log: watchpost_contracts::throttle::Every::new(Duration::from_secs(10)),
        }
    }
}

/// Commands that may wait for the control loop.
const COMMAND_QUEUE: usize = 16;

impl Busy {
    fn refuse(&mut self, client: &AsyncClient, i: &Incoming, set_topic: &str, set_result: &str) {
        self.refused += 1;
        let topic = i.topic.as_str();
        let (result_topic, name) = if topic == set_topic {
            (
                i.reply.topic_or(set_result.to_string()),
                "config/set".to_string(),
            )
        } else {
            let name = topic.rsplit('/').next().unwrap_or("").to_string();
            (i.reply.topic_or(format!("{topic}/result")), name)
        };
        let body = serde_json::json!({
            "ok": false,
            "command": name,
            "error": format!("busy: {COMMAND_QUEUE} commands are waiting; send it again later"),
        });
        // Not awaited: this runs in the MQTT event loop's own task, which must keep polling.
        if client
            .try_publish_with_properties(
                result_topic,
                QoS::AtLeastOnce,
                false,
                body.to_string(),
                i.reply.properties(),
            )
            .is_err()
        {
            tracing::debug!("busy answer not queued (client queue full)");
        }
        if self.log.due() {
            tracing::warn!(
                refused_total = self.refused,
                queue = COMMAND_QUEUE,
                "fleet commands arriving faster than they run; answered busy"
            );
        }
    }
}
