//! The MQTT sink against a real mosquitto on 127.0.0.1 (started by the test), with a real
//! MQTT 5 subscriber: payloads, user-property signatures, and a broker restart mid-flow.

mod common;

use chrono::Utc;
use common::{secret_key, verify_with_python, wait_until, SECRET};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use watchpost::clock::SystemClock;
use watchpost::config::SinkConfig;
use watchpost::deliver::{verify_standard, RetryPolicy, Sink, SinkWorker};
use watchpost::demo::Received;
use watchpost::outbox::{NewAlert, Outbox, SharedOutbox};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto process; dropping it kills and reaps it.
struct Broker(Child);

impl Broker {
    /// SIGTERM: the broker saves its sessions and exits.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mosquitto(dir: &Path, port: u16) -> Broker {
    let conf = dir.join("mosquitto.conf");
    // Persistence: the subscriber's session (and the messages queued for it while it is
    // away) survives a broker restart, as on a real site broker.
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (scripts/setup installs it)");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Broker(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("mosquitto did not start on port {port}");
}

/// An MQTT 5 subscriber that (re)subscribes on every connection and records what arrives.
fn subscriber(port: u16) -> Arc<Mutex<Vec<Received>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let out = got.clone();
    let mut opts = MqttOptions::new(format!("test-sub-{port}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(3600));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client
                        .subscribe("watchpost/+/alerts/#", QoS::AtLeastOnce)
                        .await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let headers = p
                        .properties
                        .map(|pr| pr.user_properties)
                        .unwrap_or_default()
                        .into_iter()
                        .chain([(
                            "topic".to_string(),
                            String::from_utf8_lossy(&p.topic).to_string(),
                        )])
                        .collect();
                    out.lock().unwrap().push(Received {
                        at: Utc::now(),
                        headers,
                        body: p.payload.to_vec(),
                        verified: None,
                        status: 200,
                    });
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    got
}

fn alert(n: usize) -> NewAlert {
    common::new_alert(n, "dock-east", &["site-mqtt"])
}

fn start_worker(
    outbox: &SharedOutbox,
    port: u16,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let cfg: SinkConfig = toml::from_str(&format!(
        "name = \"site-mqtt\"\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{port}\"\nsecret = \"{SECRET}\"\nqos = 1\ntimeout_seconds = 2"
    ))
    .unwrap();
    let worker = SinkWorker {
        sink: Arc::new(Sink::from_config(&cfg, "gw-1").unwrap()),
        outbox: outbox.clone(),
        policy: RetryPolicy {
            schedule: vec![Duration::from_millis(100), Duration::from_millis(200)],
            max_backoff: Duration::from_millis(500),
            max_age: Duration::from_secs(3600),
            jitter: false,
        },
        clock: Arc::new(SystemClock),
        wake: Arc::new(Notify::new()),
        concurrency: 4,
    };
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    (
        cancel,
        tokio::spawn(async move { worker.run(c).await.expect("worker") }),
    )
}

fn ids(got: &Arc<Mutex<Vec<Received>>>) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_arrive_on_their_topic_signed_in_user_properties() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = mosquitto(dir.path(), port);
    let got = subscriber(port);
    tokio::time::sleep(Duration::from_millis(500)).await; // the subscription is in place
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let alerts: Vec<NewAlert> = (0..50).map(alert).collect();
    outbox.with(|o| o.commit(&alerts)).unwrap();
    let (cancel, worker) = start_worker(&outbox, port);
    let done = wait_until(Duration::from_secs(20), || {
        outbox.with(|o| o.stats()).unwrap().delivered == 50
    })
    .await;
    let all_seen = wait_until(Duration::from_secs(10), || ids(&got).len() >= 50).await;
    cancel.cancel();
    worker.await.unwrap();
    assert!(
        done && all_seen,
        "delivered {:?}, seen {}",
        outbox.with(|o| o.stats()),
        ids(&got).len()
    );
    let got = got.lock().unwrap().clone();
    for a in &alerts {
        let r = got
            .iter()
            .find(|r| r.header("webhook-id") == Some(&a.alert_id))
            .expect("alert arrived");
        assert_eq!(r.body, a.body);
        assert_eq!(r.header("topic"), Some("watchpost/gw-1/alerts/dock-east"));
        let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!(verify_standard(
            &secret_key(),
            &a.alert_id,
            ts,
            &r.body,
            r.header("webhook-signature").unwrap()
        ));
    }
    verify_with_python(&got[..10], "standard-webhooks", SECRET, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_across_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = mosquitto(dir.path(), port);
    let got = subscriber(port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let (cancel, worker) = start_worker(&outbox, port);
    let mut committed = Vec::new();
    for round in 0..40 {
        let batch: Vec<NewAlert> = (0..5).map(|i| alert(round * 5 + i)).collect();
        committed.extend(batch.iter().map(|a| a.alert_id.clone()));
        outbox.with(|o| o.commit(&batch)).unwrap();
        if round == 15 {
            // Stopped mid-flow; it saves its sessions, as a restarted site broker would.
            broker.stop();
        }
        if round == 25 {
            broker = mosquitto(dir.path(), port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = wait_until(Duration::from_secs(30), || {
        let seen = ids(&got);
        committed.iter().all(|id| seen.contains(id))
    })
    .await;
    cancel.cancel();
    worker.await.unwrap();
    drop(broker);
    let seen = ids(&got);
    let missing = committed.iter().filter(|id| !seen.contains(id)).count();
    let duplicates = seen.len() - seen.iter().collect::<std::collections::HashSet<_>>().len();
    println!(
        "broker restart: {} committed, {} received, {duplicates} duplicates",
        committed.len(),
        seen.len()
    );
    assert!(
        all && missing == 0,
        "{missing} of {} alerts never reached the subscriber",
        committed.len()
    );
}
