//! The MQTT sink: MQTT 5 over TCP or TLS (rustls), QoS 1 or 2, the committed body as
//! payload, the three Standard Webhooks values as user properties; a row counts as delivered
//! only on the broker's acknowledgement for *that* publish (PUBACK; PUBREC for QoS 2).
//!
//! rumqttc's `publish()` does not return the packet id. Its event loop reports
//! `Outgoing::Publish(pkid)` in the order the `publish()` calls were made, and later the
//! acknowledgement with that pkid. So each send (1) locks the slots, (2) calls `try_publish()` and
//! queues a reply slot while holding the lock — the queue order is the publish order — and the
//! event loop task (3) moves the front slot to a pkid map on `Outgoing::Publish(pkid)`,
//! (4) answers the slot when that pkid is acknowledged.
//!
//! The session is persistent (`clean_start = false`, `session_expiry_seconds`): after a
//! dropped connection rumqttc keeps its event loop, and on a resumed session it resends the
//! unacknowledged publishes under their old pkids (already in the map, so they take no new
//! slot) and then the requests that never left, in order. If the broker lost the session
//! (`session_present = false`), rumqttc discards all of those; the task then fails their
//! slots — the in-flight ones and, from the queue's front, as many as were waiting unsent —
//! and the outbox sends those rows again (at least once, de-duplicated by alert id).

use super::{DeliverError, Outcome, Signer};
use crate::config::SinkConfig;
use crate::outbox::OutboxRow;
use parking_lot::Mutex;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PubRecReason, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions, Request};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
pub use watchpost_contracts::tls::TlsProblem;

type Reply = oneshot::Sender<Outcome>;

#[derive(Default)]
struct Slots {
    /// Waiting for their `Outgoing::Publish(pkid)`, in publish order.
    queued: VecDeque<Reply>,
    by_pkid: HashMap<u16, Reply>,
    /// Why the connection is down (cleared on CONNACK), so a timed-out send can tell the
    /// technician "TLS: invalid peer certificate" instead of only "no acknowledgement".
    down_because: Option<String>,
}

fn retry(error: impl Into<String>) -> Outcome {
    Outcome::Retry {
        after: None,
        status: None,
        error: error.into(),
    }
}

impl Slots {
    /// The broker lost the session: rumqttc dropped the in-flight publishes and the first
    /// `unsent` queued ones.
    fn fail_lost(&mut self, unsent: usize, why: &str) {
        let n = unsent.min(self.queued.len());
        for tx in self
            .queued
            .drain(..n)
            .chain(self.by_pkid.drain().map(|(_, t)| t))
        {
            let _ = tx.send(retry(why));
        }
    }

    fn answer(&mut self, pkid: u16, outcome: Outcome) {
        if let Some(tx) = self.by_pkid.remove(&pkid) {
            let _ = tx.send(outcome);
        }
    }
}

/// The rustls client configuration of an `mqtts://` sink (`None` for `mqtt://`): the CAs of
/// `ca_file` or else the system's, and the client certificate when one is configured.
pub fn tls_config(cfg: &SinkConfig) -> Result<Option<Arc<rustls::ClientConfig>>, TlsProblem> {
    watchpost_contracts::tls::tls_config_for(
        &cfg.url,
        cfg.ca_file.as_deref(),
        cfg.client_cert_file.as_deref(),
        cfg.client_key_file.as_deref(),
    )
}

/// One MQTT connection (its own client id, session, event loop task and slots).
struct Conn {
    client: AsyncClient,
    slots: Arc<Mutex<Slots>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Conn {
    /// Sends in flight; a connection that is down counts as full.
    fn load(&self) -> usize {
        let s = lock(&self.slots);
        if s.down_because.is_some() {
            usize::MAX
        } else {
            s.queued.len() + s.by_pkid.len()
        }
    }
}

/// Several connections per sink: a broker grants each connection only a few publishes in
/// flight (mosquitto's Receive Maximum is 20) and, without TCP_NODELAY on its side, answers
/// them in ~40 ms batches, so one connection tops out near 1,000 alerts/s.
pub struct MqttSink {
    name: String,
    conns: Vec<Conn>,
    topic: String,
    device: String,
    qos: QoS,
    signer: Option<Signer>,
    timeout: Duration,
    resumed: Arc<AtomicU64>,
}

fn lock(slots: &Mutex<Slots>) -> parking_lot::MutexGuard<'_, Slots> {
    slots.lock()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl MqttSink {
    /// Must be called inside a tokio runtime (it starts the event loop task).
    pub fn from_config(cfg: &SinkConfig, device: &str) -> Result<Self, DeliverError> {
        let setup = |message: String| DeliverError::Setup {
            sink: cfg.name.clone(),
            message,
        };
        let url = url::Url::parse(&cfg.url).map_err(|e| setup(format!("url: {e}")))?;
        let default_port = match url.scheme() {
            "mqtt" => 1883,
            "mqtts" => 8883,
            other => {
                return Err(setup(format!(
                    "scheme \"{other}\" is not supported; use mqtt:// or mqtts://"
                )))
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| setup("url has no host".into()))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = url.port().unwrap_or(default_port);
        let mut opts = MqttOptions::new(format!("watchpost-{device}-{}", cfg.name), host, port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_clean_start(cfg.session_expiry_seconds == 0);
        if cfg.session_expiry_seconds > 0 {
            opts.set_session_expiry_interval(Some(cfg.session_expiry_seconds));
        }
        // Each alert waits for its PUBACK: Nagle's algorithm against delayed ACKs would add
        // ~40 ms per round trip (a 100k backlog drained at 120/s).
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        opts.set_network_options(net);
        if let Some(tls) =
            tls_config(cfg).map_err(|e| setup(format!("{}: {}", e.field, e.message)))?
        {
            opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
        }
        let user = cfg
            .username
            .clone()
            .or_else(|| (!url.username().is_empty()).then(|| decode(url.username())));
        if let Some(user) = user {
            let pass = cfg
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .or_else(|| url.password().map(decode))
                .unwrap_or_default();
            opts.set_credentials(user, pass);
        }
        let signer = match &cfg.secret {
            Some(s) => {
                Some(Signer::standard_webhooks(s.expose()).map_err(|e| setup(e.to_string()))?)
            }
            None => None,
        };
        let resumed = Arc::new(AtomicU64::new(0));
        let conns = (0..cfg.mqtt_connections().max(1))
            .map(|i| {
                let mut opts = opts.clone();
                // The first keeps the plain id, so a one-connection sink keeps its session.
                if i > 0 {
                    opts.set_client_id(format!("watchpost-{device}-{}-{i}", cfg.name));
                }
                let (client, eventloop) = AsyncClient::new(opts, 256);
                let slots = Arc::new(Mutex::new(Slots::default()));
                let task = tokio::spawn(drive(
                    eventloop,
                    slots.clone(),
                    resumed.clone(),
                    cfg.name.clone(),
                ));
                Conn {
                    client,
                    slots,
                    task,
                }
            })
            .collect();
        Ok(Self {
            name: cfg.name.clone(),
            conns,
            topic: cfg
                .topic
                .clone()
                .unwrap_or_else(|| "watchpost/{device}/alerts/{camera}".to_string()),
            device: device.to_string(),
            qos: match cfg.qos.unwrap_or(1) {
                2 => QoS::ExactlyOnce,
                _ => QoS::AtLeastOnce,
            },
            signer,
            timeout: Duration::from_secs_f64(cfg.timeout_seconds),
            resumed,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reconnections on which the broker still had this sink's session.
    pub fn sessions_resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
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
        let Some(conn) = self.conns.iter().min_by_key(|c| c.load()) else {
            return retry("MQTT sink has no connection");
        };
        let (tx, rx) = oneshot::channel();
        let waited = tokio::time::timeout(self.timeout, async {
            {
                // The slot lock is held across the hand-over (no await in between), so the
                // event loop cannot see this publish before its slot is queued, and queue
                // order is publish order.
                let mut slots = lock(&conn.slots);
                let sent = conn.client.try_publish_with_properties(
                    topic,
                    self.qos,
                    false,
                    row.body.clone(),
                    properties,
                );
                match sent {
                    Ok(()) => slots.queued.push_back(tx),
                    Err(e) => return retry(format!("MQTT client: {e}")),
                }
            }
            rx.await
                .unwrap_or_else(|_| retry("MQTT session lost before the acknowledgement"))
        })
        .await;
        waited.unwrap_or_else(|_| {
            let secs = self.timeout.as_secs_f64();
            match lock(&conn.slots).down_because.clone() {
                Some(why) => retry(format!("no acknowledgement within {secs} s: {why}")),
                None => retry(format!("no acknowledgement within {secs} s")),
            }
        })
    }
}

/// The outcome of a PUBACK or PUBREC: delivered, or refused with the broker's reason code.
fn acknowledged(ok: bool, reason: &impl std::fmt::Debug) -> Outcome {
    if ok {
        Outcome::Delivered { status: 0 }
    } else {
        Outcome::Rejected {
            status: 0,
            error: format!("broker refused the publish: {reason:?}"),
        }
    }
}

/// Publishes in rumqttc's resend queue that never got a packet id: on a lost session these
/// are dropped with the rest, and they are the front of the slot queue.
fn unsent(eventloop: &EventLoop) -> usize {
    eventloop
        .pending
        .iter()
        .filter(|r| matches!(r, Request::Publish(p) if p.pkid == 0))
        .count()
}

/// Polls the event loop: maps packet ids to waiting sends, answers them on acknowledgement,
/// and keeps reconnecting (with backoff) through the same event loop, so a resumed session
/// resends what was in flight.
async fn drive(
    mut eventloop: EventLoop,
    slots: Arc<Mutex<Slots>>,
    resumed: Arc<AtomicU64>,
    name: String,
) {
    let mut pause = Duration::from_millis(200);
    let mut unsent_at_drop = 0;
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut s = lock(&slots);
                // A pkid still in the map is a resend of a resumed session's publish.
                if !s.by_pkid.contains_key(&pkid) {
                    if let Some(tx) = s.queued.pop_front() {
                        s.by_pkid.insert(pkid, tx);
                    }
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let ok = matches!(
                    ack.reason,
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                );
                lock(&slots).answer(ack.pkid, acknowledged(ok, &ack.reason));
            }
            // QoS 2 counts at PUBREC: the broker has stored the message then, and rumqttc
            // frees the pkid for reuse at that point too, so the map must let go of it here.
            Ok(Event::Incoming(Packet::PubRec(rec))) => {
                let ok = matches!(
                    rec.reason,
                    PubRecReason::Success | PubRecReason::NoMatchingSubscribers
                );
                lock(&slots).answer(rec.pkid, acknowledged(ok, &rec.reason));
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                pause = Duration::from_millis(200);
                let mut s = lock(&slots);
                s.down_because = None;
                if ack.session_present {
                    resumed.fetch_add(1, Ordering::Relaxed);
                } else {
                    s.fail_lost(unsent_at_drop, "the broker lost the MQTT session");
                }
                drop(s);
                unsent_at_drop = 0;
                tracing::info!(sink = %name, session_present = ack.session_present, "MQTT connected");
            }
            Ok(_) => {}
            Err(e) => {
                unsent_at_drop = unsent(&eventloop);
                lock(&slots).down_because = Some(format!("MQTT connection: {e}"));
                tracing::warn!(sink = %name, error = %e, retry_in_ms = pause.as_millis() as u64, "MQTT disconnected");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
}
