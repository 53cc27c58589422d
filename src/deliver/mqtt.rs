//! The MQTT sink: MQTT 5, QoS 1, the committed body as payload, the three Standard Webhooks
//! values as user properties; a row counts as delivered only on the broker's PUBACK for
//! *that* publish.
//!
//! rumqttc's `publish()` does not return the packet id. Its event loop reports
//! `Outgoing::Publish(pkid)` in the order the `publish()` calls were made, and later
//! `Incoming::PubAck { pkid }`. So each send (1) takes a lock, (2) queues a reply slot and
//! calls `publish()` while holding it — the queue order is the publish order — and the event
//! loop task (3) moves the front slot to a pkid map when it sees `Outgoing::Publish(pkid)`,
//! (4) answers the slot when that pkid's PUBACK arrives. If the connection drops, every open
//! slot is answered "retry" and the event loop is rebuilt with a clean session, so no old
//! publish is retransmitted out of order behind the map's back; the outbox re-sends instead
//! (at least once, de-duplicated by alert id at the receiver).

use super::{DeliverError, Outcome, Signer};
use crate::config::SinkConfig;
use crate::outbox::OutboxRow;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Outcome>;

#[derive(Default)]
struct Slots {
    /// Waiting for their `Outgoing::Publish(pkid)`, in publish order.
    queued: VecDeque<Reply>,
    by_pkid: HashMap<u16, Reply>,
}

impl Slots {
    fn fail_all(&mut self, why: &str) {
        for tx in self
            .queued
            .drain(..)
            .chain(self.by_pkid.drain().map(|(_, t)| t))
        {
            let _ = tx.send(Outcome::Retry {
                after: None,
                status: None,
                error: why.to_string(),
            });
        }
    }
}

pub struct MqttSink {
    name: String,
    /// Shared with the event loop task, which swaps in a fresh client after a disconnect.
    client: Arc<tokio::sync::Mutex<AsyncClient>>,
    slots: Arc<Mutex<Slots>>,
    topic: String,
    device: String,
    qos: QoS,
    signer: Option<Signer>,
    timeout: Duration,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(|e| e.into_inner())
}

impl MqttSink {
    /// Must be called inside a tokio runtime (it starts the event loop task).
    pub fn from_config(cfg: &SinkConfig, device: &str) -> Result<Self, DeliverError> {
        let setup = |message: String| DeliverError::Setup {
            sink: cfg.name.clone(),
            message,
        };
        let url = url::Url::parse(&cfg.url).map_err(|e| setup(format!("url: {e}")))?;
        if url.scheme() != "mqtt" {
            return Err(setup(format!(
                "scheme \"{}\" is not supported yet; use mqtt://",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| setup("url has no host".into()))?
            .to_string();
        let port = url.port().unwrap_or(1883);
        let client_id = format!("watchpost-{device}-{}", cfg.name);
        let mut opts = MqttOptions::new(client_id, host, port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_clean_start(true);
        // Each alert waits for its PUBACK: Nagle's algorithm against delayed ACKs would add
        // ~40 ms per round trip (a 100k backlog drained at 120/s).
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        opts.set_network_options(net);
        if !url.username().is_empty() {
            let user = percent_encoding::percent_decode_str(url.username())
                .decode_utf8_lossy()
                .into_owned();
            let pass = url
                .password()
                .map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            opts.set_credentials(user, pass);
        }
        let signer = match &cfg.secret {
            Some(s) => {
                Some(Signer::standard_webhooks(s.expose()).map_err(|e| setup(e.to_string()))?)
            }
            None => None,
        };
        let (client, eventloop) = AsyncClient::new(opts.clone(), 256);
        let client = Arc::new(tokio::sync::Mutex::new(client));
        let slots = Arc::new(Mutex::new(Slots::default()));
        let task = tokio::spawn(drive(
            eventloop,
            opts,
            client.clone(),
            slots.clone(),
            cfg.name.clone(),
        ));
        Ok(Self {
            name: cfg.name.clone(),
            client,
            slots,
            topic: cfg
                .topic
                .clone()
                .unwrap_or_else(|| "watchpost/{device}/alerts/{camera}".to_string()),
            device: device.to_string(),
            qos: match cfg.qos.unwrap_or(1) {
                0 => QoS::AtMostOnce,
                2 => QoS::ExactlyOnce,
                _ => QoS::AtLeastOnce,
            },
            signer,
            timeout: Duration::from_secs_f64(cfg.timeout_seconds),
            task,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, row: &OutboxRow, unix_ts: i64) -> Outcome {
        let topic = self
            .topic
            .replace("{device}", &self.device)
            .replace("{camera}", &row.camera);
        let properties = PublishProperties {
            content_type: Some("application/json".into()),
            user_properties: self
                .signer
                .as_ref()
                .map(|s| s.headers(&row.alert_id, unix_ts, &row.body))
                .unwrap_or_default(),
            ..Default::default()
        };
        let (tx, rx) = oneshot::channel();
        {
            // Queue order must equal publish order: hold the lock across both.
            let client = self.client.lock().await;
            lock(&self.slots).queued.push_back(tx);
            let sent = client
                .publish_with_properties(topic, self.qos, false, row.body.clone(), properties)
                .await;
            if let Err(e) = sent {
                lock(&self.slots).queued.pop_back();
                return Outcome::Retry {
                    after: None,
                    status: None,
                    error: format!("MQTT client: {e}"),
                };
            }
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Retry {
                after: None,
                status: None,
                error: "MQTT connection reset before PUBACK".into(),
            },
            Err(_) => Outcome::Retry {
                after: None,
                status: None,
                error: format!("no PUBACK within {} s", self.timeout.as_secs_f64()),
            },
        }
    }
}

/// Polls the event loop: maps packet ids to waiting sends, answers them on PUBACK, and on a
/// broken connection fails every open send and starts a fresh, clean session after a pause.
async fn drive(
    mut eventloop: EventLoop,
    opts: MqttOptions,
    client: Arc<tokio::sync::Mutex<AsyncClient>>,
    slots: Arc<Mutex<Slots>>,
    name: String,
) {
    let mut pause = Duration::from_millis(200);
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut s = lock(&slots);
                if let Some(tx) = s.queued.pop_front() {
                    s.by_pkid.insert(pkid, tx);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(tx) = lock(&slots).by_pkid.remove(&ack.pkid) {
                    let outcome = match ack.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => {
                            Outcome::Delivered { status: 0 }
                        }
                        other => Outcome::Rejected {
                            status: 0,
                            error: format!("broker refused the publish: {other:?}"),
                        },
                    };
                    let _ = tx.send(outcome);
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                pause = Duration::from_millis(200);
                tracing::info!(sink = %name, "MQTT connected");
            }
            Ok(_) => {}
            Err(e) => {
                {
                    // Under the publish lock, so no send sits between "slot queued" and
                    // "published": fail every open send, and replace client and event loop, so
                    // no request of the old session is (re)sent behind the slots' back. The
                    // outbox re-sends what was not acknowledged.
                    let mut c = client.lock().await;
                    lock(&slots).fail_all(&format!("MQTT connection: {e}"));
                    let (fresh_client, fresh_loop) = AsyncClient::new(opts.clone(), 256);
                    *c = fresh_client;
                    eventloop = fresh_loop;
                }
                tracing::warn!(sink = %name, error = %e, retry_in_ms = pause.as_millis() as u64, "MQTT disconnected");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
}
