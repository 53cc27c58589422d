//! What the gateways say, into the store: one MQTT 5 session per replica.
//!
//! Retained state (`status`, `config/state`, the latest `health`) comes through ordinary
//! subscriptions, because a broker never hands retained messages to a shared subscription
//! (MQTT 5.0 §4.8.2); every replica gets it and writes it idempotently. The high-volume
//! topics (alerts, health, results) come through `$share/{group}/…`: each message to one
//! replica. The session is persistent (clean start off, a session expiry), so what arrives
//! while a replica restarts waits for it in the broker. Acknowledgements are manual and sent
//! only after the batch holding the message is committed: a replica killed mid-batch gets
//! it again (the store de-duplicates on the alert id), never loses it.

use crate::config::BrokerSection;
use crate::metrics::Metrics;
use crate::store::{AlertRecord, AlertRow, HealthRecord, Record, Store};
use base64::Engine as _;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, SubscribeProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use watchpost_contracts::event::{self, Event as Envelope, Head};
use watchpost_contracts::health::Health;
use watchpost_contracts::topics::{self, Topic};

/// The subscription identifier of the ordinary (retained-state) subscriptions.
const SUB_RETAINED: usize = 1;
/// … and of the shared ones.
const SUB_SHARED: usize = 2;
/// At most this many messages per transaction (and in flight, unacknowledged): 1,000 left
/// SQLite behind at 10,000 gateways × 100, 4,000 slowed PostgreSQL (docs/benchmarks.md).
const BATCH: usize = 2000;
/// Messages waiting for the writer beyond which a warning is logged: the broker's in-flight
/// window (our receive maximum, its max_inflight_messages) should keep it far below.
const QUEUE_WARN: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("broker.url: {0}")]
    Url(String),
    #[error("broker.{field}: {message}")]
    Tls {
        field: &'static str,
        message: String,
    },
}

/// A message that cannot be filed (not the contract's shape): counted and acknowledged, so
/// it is not redelivered forever.
#[derive(Debug, thiserror::Error)]
#[error("{topic}: {message}")]
pub struct Rejected {
    pub topic: String,
    pub message: String,
}

/// The MQTT client (for sending commands) and the running ingest.
pub struct Ingest {
    pub client: AsyncClient,
    pub task: tokio::task::JoinHandle<()>,
    /// The broker session is up.
    pub connected: Arc<std::sync::atomic::AtomicBool>,
}

pub fn options(cfg: &BrokerSection, client_id: &str) -> Result<MqttOptions, IngestError> {
    let url = url::Url::parse(&cfg.url).map_err(|e| IngestError::Url(e.to_string()))?;
    let port = url
        .port()
        .unwrap_or(if url.scheme() == "mqtts" { 8883 } else { 1883 });
    let host = url
        .host_str()
        .ok_or_else(|| IngestError::Url("names no host".into()))?
        .trim_matches(['[', ']'])
        .to_string();
    let mut opts = MqttOptions::new(client_id, host, port);
    opts.set_keep_alive(Duration::from_secs(10));
    // A persistent session: subscriptions and queued QoS 1 messages outlive a restart.
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(7 * 24 * 3600));
    opts.set_manual_acks(true);
    // Up to this many unacknowledged QoS 1 messages at once: acks follow commits, so the
    // window is what a batch can hold (the broker's own limit applies too: mosquitto's
    // max_inflight_messages, docs/console.md).
    opts.set_receive_maximum(Some(BATCH as u16));
    // Snapshots travel inside alerts and command results.
    opts.set_max_packet_size(Some(8 * 1024 * 1024));
    if let Some(tls) = watchpost_contracts::tls::tls_config_for(
        &cfg.url,
        cfg.ca_file.as_deref(),
        cfg.client_cert_file.as_deref(),
        cfg.client_key_file.as_deref(),
    )
    .map_err(|p| IngestError::Tls {
        field: p.field,
        message: p.message,
    })? {
        opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
    }
    if let Some(user) = &cfg.username {
        let pass = cfg.password.as_ref().map(|p| p.expose()).unwrap_or("");
        opts.set_credentials(user.clone(), pass.to_string());
    }
    Ok(opts)
}

/// Connects (retrying in the background) and files every message until `cancel`.
pub fn start(
    cfg: &BrokerSection,
    replica: &str,
    group: &str,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    alerts: broadcast::Sender<AlertRow>,
    cancel: CancellationToken,
) -> Result<Ingest, IngestError> {
    let opts = options(cfg, &format!("watchpost-console-{replica}"))?;
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    // Unbounded on purpose: the event loop must never wait for the writer, because the
    // writer's acknowledgements go out through the event loop (a bounded queue deadlocks
    // under load: the loop waits for room, the writer for its acks to be taken). The broker's
    // in-flight window bounds what can wait here.
    let (tx, rx) = mpsc::unbounded_channel::<Publish>();
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn(write_loop(
        rx,
        waiting.clone(),
        client.clone(),
        store,
        metrics.clone(),
        alerts,
        cancel.clone(),
    ));
    let (sub_client, group, up) = (client.clone(), group.to_string(), connected.clone());
    let warn = watchpost_contracts::throttle::Every::new(Duration::from_secs(10));
    let task = tokio::spawn(async move {
        let mut failures = 0u32;
        // The ordinary health subscription of this connection is still held.
        let mut retained_health = false;
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => break,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    failures = 0;
                    up.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(session_present = ack.session_present, "broker connected");
                    subscribe(&sub_client, &group).await;
                    retained_health = true;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // The broker sends a subscription's retained documents before anything
                    // live: the first live health on the ordinary subscription means they are
                    // all in, and from now on it would only bring second copies.
                    if retained_health && !p.retain && is_retained_health_copy(&p) {
                        retained_health = false;
                        let _ = sub_client.try_unsubscribe(topics::HEALTH_FILTER);
                    }
                    let n = waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n >= QUEUE_WARN && warn.due() {
                        tracing::warn!(waiting = n, "messages waiting for the database; is the broker's in-flight window unbounded?");
                    }
                    if tx.send(p).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    up.store(false, std::sync::atomic::Ordering::Relaxed);
                    failures = failures.saturating_add(1);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %e, failures, "broker connection down; retrying");
                    }
                    let wait = Duration::from_millis(500 << failures.min(5));
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    });
    Ok(Ingest {
        client,
        task,
        connected,
    })
}

async fn subscribe(client: &AsyncClient, group: &str) {
    let retained = topics::RETAINED_FILTERS
        .iter()
        .map(|f| Filter::new(f.to_string(), QoS::AtLeastOnce));
    let shared = topics::SHARED_FILTERS
        .iter()
        .map(|f| Filter::new(topics::shared(group, f), QoS::AtLeastOnce));
    let props = |id| SubscribeProperties {
        id: Some(id),
        user_properties: Vec::new(),
    };
    if let Err(e) = client
        .subscribe_many_with_properties(retained, props(SUB_RETAINED))
        .await
    {
        tracing::error!(error = %e, "subscribe failed");
    }
    if let Err(e) = client
        .subscribe_many_with_properties(shared, props(SUB_SHARED))
        .await
    {
        tracing::error!(error = %e, "subscribe failed");
    }
    // The retained health documents arrive right after the SUBACK; after that the ordinary
    // subscription would only hand over a second copy of what the shared one brings (the
    // event loop drops it at the first live copy; this is the bound).
    let c = client.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETAINED_HEALTH_WINDOW).await;
        let _ = c.unsubscribe(topics::HEALTH_FILTER).await;
    });
}

fn is_retained_health_copy(p: &Publish) -> bool {
    matches!(
        std::str::from_utf8(&p.topic).ok().and_then(Topic::parse),
        Some(Topic::Health { .. })
    ) && p
        .properties
        .as_ref()
        .is_some_and(|pr| pr.subscription_identifiers.contains(&SUB_RETAINED))
}

/// The longest the ordinary health subscription stays after each (re)connect (when no live
/// health arrives on it to show the retained ones are in).
const RETAINED_HEALTH_WINDOW: Duration = Duration::from_secs(15);

/// A batch decoded and waiting for its transaction.
struct Prepared {
    publishes: Vec<Publish>,
    records: Arc<Vec<Record>>,
    event_times: Vec<i64>,
}

/// Two stages on their own tasks, so the next batch is decoded while the database commits
/// this one: decode (JSON → records) and commit (transaction, then acknowledgements).
async fn write_loop(
    rx: mpsc::UnboundedReceiver<Publish>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    client: AsyncClient,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    alerts: broadcast::Sender<AlertRow>,
    cancel: CancellationToken,
) {
    // One batch decoded ahead, no more: memory stays with the broker's window.
    let (ready_tx, ready_rx) = mpsc::channel::<Prepared>(1);
    let decoder = tokio::spawn(decode_loop(rx, waiting, metrics.clone(), ready_tx));
    commit_loop(ready_rx, client, store, metrics, alerts, cancel).await;
    decoder.abort();
}

async fn decode_loop(
    mut rx: mpsc::UnboundedReceiver<Publish>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    metrics: Arc<Metrics>,
    ready: mpsc::Sender<Prepared>,
) {
    let rejected_log = watchpost_contracts::throttle::Every::new(Duration::from_secs(10));
    while let Some(first) = rx.recv().await {
        let mut publishes = vec![first];
        while publishes.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => publishes.push(p),
                Err(_) => break,
            }
        }
        waiting.fetch_sub(publishes.len(), std::sync::atomic::Ordering::Relaxed);
        let now = crate::store::now_ms();
        let mut records = Vec::with_capacity(publishes.len());
        let mut event_times = Vec::with_capacity(publishes.len());
        for p in &publishes {
            match decode(p, now) {
                Ok(Some((r, at_ms))) => {
                    metrics.ingested(kind_of(&r));
                    event_times.push(at_ms);
                    records.push(r);
                }
                Ok(None) => {}
                Err(rej) => {
                    metrics.rejected();
                    if rejected_log.due() {
                        tracing::warn!(error = %rej, "message not filed (not the contract's shape)");
                    }
                }
            }
        }
        let batch = Prepared {
            publishes,
            records: Arc::new(records),
            event_times,
        };
        if ready.send(batch).await.is_err() {
            return;
        }
    }
}

async fn commit_loop(
    mut ready: mpsc::Receiver<Prepared>,
    client: AsyncClient,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    alerts: broadcast::Sender<AlertRow>,
    cancel: CancellationToken,
) {
    while let Some(batch) = ready.recv().await {
        let mut pause = Duration::from_millis(250);
        let written = loop {
            let (s, r) = (store.clone(), batch.records.clone());
            let started = Instant::now();
            let outcome = tokio::task::spawn_blocking(move || s.write(&r)).await;
            match outcome {
                Ok(Ok(w)) => {
                    metrics.write_seconds(started.elapsed().as_secs_f64());
                    metrics.database_ok(true);
                    break w;
                }
                Ok(Err(e)) => {
                    metrics.database_ok(false);
                    tracing::error!(error = %e, retry_in_ms = pause.as_millis() as u64, "database write failed; nothing acknowledged, retrying");
                }
                Err(e) => tracing::error!(error = %e, "database writer failed; retrying"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(10));
        };
        let committed = crate::store::now_ms();
        for at in &batch.event_times {
            metrics.lag_seconds((committed - at).max(0) as f64 / 1000.0);
        }
        metrics.duplicates(written.duplicates);
        for a in written.new_alerts {
            metrics.alert(&a.site);
            let _ = alerts.send(a);
        }
        // Only now: the broker may forget them.
        for p in &batch.publishes {
            if let Err(e) = client.ack(p).await {
                tracing::debug!(error = %e, "ack not queued");
            }
        }
    }
}

fn kind_of(r: &Record) -> &'static str {
    match r {
        Record::Status { .. } => "status",
        Record::Health(_) => "health",
        Record::ConfigState { .. } => "config_state",
        Record::Alert(_) => "alert",
        Record::Answer { .. } => "answer",
    }
}

fn reject(topic: &str, message: impl Into<String>) -> Rejected {
    Rejected {
        topic: topic.to_string(),
        message: message.into(),
    }
}

/// What a message means for the store, with the time it happened (for the ingest lag);
/// `None` for messages the console does not keep (results are for the command room).
pub fn decode(p: &Publish, now_ms: i64) -> Result<Option<(Record, i64)>, Rejected> {
    let topic = std::str::from_utf8(&p.topic).map_err(|_| reject("(not UTF-8)", "topic"))?;
    let Some(t) = Topic::parse(topic) else {
        return Ok(None);
    };
    let subs = p
        .properties
        .as_ref()
        .map(|pr| pr.subscription_identifiers.clone())
        .unwrap_or_default();
    Ok(Some(match t {
        Topic::Status { device } => {
            let online = match &p.payload[..] {
                b"online" => true,
                b"offline" => false,
                _ => return Err(reject(topic, "expected online or offline")),
            };
            (
                Record::Status {
                    device: device.to_string(),
                    online,
                    seen_ms: now_ms,
                },
                now_ms,
            )
        }
        Topic::Health { device } => {
            let h: Health = serde_json::from_slice(&p.payload)
                .map_err(|e| reject(topic, format!("health: {e}")))?;
            if h.device != device {
                return Err(reject(
                    topic,
                    format!("health names device \"{}\"", h.device),
                ));
            }
            let at_ms = parse_ms(&h.at).unwrap_or(now_ms);
            // A retained copy is old news: judged by when the gateway made it (never later
            // than now), so a console restarted after a gateway froze still sees it stale.
            let seen_ms = if p.retain { at_ms.min(now_ms) } else { now_ms };
            let down: Vec<&str> = h
                .cameras
                .iter()
                .filter(|c| c.status.state != watchpost_contracts::health::CameraState::Streaming)
                .map(|c| c.status.name.as_str())
                .collect();
            let json = String::from_utf8_lossy(&p.payload).into_owned();
            (
                Record::Health(Box::new(HealthRecord {
                    device: device.to_string(),
                    site: h.site.clone(),
                    version: h.version.clone(),
                    at_ms,
                    seen_ms,
                    interval_s: h.health_interval_s,
                    uptime_s: h.uptime_s as i64,
                    cameras_up: h.cameras_streaming as i64,
                    cameras_total: h.cameras.len() as i64,
                    cameras_down: down.join(","),
                    inference_ms: h.inference_ms_mean,
                    outbox_pending: h.outbox_pending,
                    dead_letters: h.dead_letters,
                    events_24h: h.events_24h,
                    delivery_success_rate: h.delivery_success_rate,
                    delivery_latency_p95_ms: h.delivery_latency_p95_ms,
                    anomalies: h.anomalies.len() as i64,
                    json,
                    history: subs.contains(&SUB_SHARED) || subs.is_empty(),
                })),
                at_ms,
            )
        }
        Topic::ConfigState { device } => {
            #[derive(serde::Deserialize)]
            struct State {
                version: i64,
                toml: String,
            }
            let s: State = serde_json::from_slice(&p.payload)
                .map_err(|e| reject(topic, format!("config/state: {e}")))?;
            (
                Record::ConfigState {
                    device: device.to_string(),
                    version: s.version,
                    toml: s.toml,
                    seen_ms: now_ms,
                },
                now_ms,
            )
        }
        Topic::Alert { device, .. } => {
            let mut body: Envelope<serde_json::Value> = serde_json::from_slice(&p.payload)
                .map_err(|e| reject(topic, format!("event: {e}")))?;
            let head: Head = serde_json::from_value(body.data.clone())
                .map_err(|e| reject(topic, format!("event data: {e}")))?;
            if head.device_id != device {
                return Err(reject(
                    topic,
                    format!("event names device \"{}\"", head.device_id),
                ));
            }
            // The inline snapshot is kept as bytes beside the body, not inside it.
            let snapshot = body
                .data
                .as_object_mut()
                .and_then(|d| d.remove("snapshot_jpeg"))
                .and_then(|v| v.as_str().map(str::to_string))
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
            let at_ms = parse_ms(&body.timestamp).unwrap_or(now_ms);
            let fired = body.kind == event::FIRED || body.kind == event::TEST;
            let text = |k: &str| {
                body.data
                    .get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            let record = AlertRecord {
                alert_id: head.alert_id.clone(),
                kind: body.kind.clone(),
                device: device.to_string(),
                site: head.site.clone(),
                camera: head.camera.clone(),
                rule: head.rule.clone(),
                label: if fired { text("label") } else { None },
                severity: head.severity.clone(),
                confidence: body.data.get("confidence").and_then(|v| v.as_f64()),
                at_ms,
                seen_ms: now_ms,
                body: serde_json::to_string(&body).unwrap_or_default(),
                snapshot,
            };
            (Record::Alert(Box::new(record)), at_ms)
        }
        Topic::ConfigResult { device } | Topic::CommandResult { device, .. } => {
            // Only answers to the console's own requests (they carry its correlation data).
            let Some(request) = p
                .properties
                .as_ref()
                .and_then(|pr| pr.correlation_data.as_ref())
                .and_then(|c| std::str::from_utf8(c).ok())
                .map(str::to_string)
            else {
                return Ok(None);
            };
            let answer: serde_json::Value = serde_json::from_slice(&p.payload)
                .map_err(|e| reject(topic, format!("answer: {e}")))?;
            (
                Record::Answer {
                    request,
                    device: device.to_string(),
                    ok: answer.get("ok").and_then(|v| v.as_bool()) == Some(true),
                    result: answer.to_string(),
                    seen_ms: now_ms,
                },
                now_ms,
            )
        }
        Topic::ConfigSet { .. } | Topic::Command { .. } => return Ok(None),
    }))
}

fn parse_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}
