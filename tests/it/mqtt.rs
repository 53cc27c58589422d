//! The MQTT sink against a real mosquitto on 127.0.0.1 (started by the test), with a real
//! MQTT 5 subscriber: payloads, user-property signatures, and a broker restart mid-flow.

use crate::common;
use crate::common::{
    free_port, mosquitto, mosquitto_with, secret_key, verify_with_python, wait_until, SECRET,
};
use chrono::Utc;
use rumqttc::v5::MqttOptions;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::config::SinkConfig;
use watchpost::deliver::{verify_standard, Sink};
use watchpost::demo::Received;
use watchpost::outbox::{NewAlert, Outbox, SharedOutbox};

/// An MQTT 5 subscriber that (re)subscribes on every connection and records what arrives.
fn subscriber(port: u16) -> Arc<Mutex<Vec<Received>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let out = got.clone();
    let mut opts = MqttOptions::new(format!("test-sub-{port}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(3600));
    common::listen(opts, "watchpost/+/alerts/#", move |p| {
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
    });
    got
}

fn alert(n: usize) -> NewAlert {
    common::new_alert(n, "dock-east", &["site-mqtt"])
}

fn start_worker(
    outbox: &SharedOutbox,
    port: u16,
) -> (CancellationToken, tokio::task::JoinHandle<()>, Arc<Sink>) {
    start_sink(
        outbox,
        &format!("name = \"site-mqtt\"\nurl = \"mqtt://127.0.0.1:{port}\""),
    )
}

/// A worker for an MQTT sink: `settings` are TOML lines with at least name and url.
fn start_sink(
    outbox: &SharedOutbox,
    settings: &str,
) -> (CancellationToken, tokio::task::JoinHandle<()>, Arc<Sink>) {
    let cfg: SinkConfig = toml::from_str(&format!(
        "kind = \"mqtt\"\nsecret = \"{SECRET}\"\nqos = 1\ntimeout_seconds = 2\n{settings}"
    ))
    .unwrap();
    let sink = Arc::new(Sink::from_config(&cfg, "gw-1").unwrap());
    let (cancel, task) = common::run_worker(
        outbox,
        sink.clone(),
        common::policy(&[100, 200], Duration::from_millis(500)),
        4,
    );
    (cancel, task, sink)
}

fn resumed(sink: &Sink) -> u64 {
    match sink {
        Sink::Mqtt(m) => m.sessions_resumed(),
        _ => 0,
    }
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
    let (cancel, worker, _) = start_worker(&outbox, port);
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
async fn nothing_is_lost_across_a_broker_restart_that_keeps_the_session() {
    // SIGTERM: mosquitto saves its sessions; the sink resumes its own and rumqttc resends
    // the in-flight publishes under their packet ids.
    let resumed = broker_restart_mid_flow(3600).await;
    assert!(
        resumed >= 1,
        "the sink never resumed its persistent session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_across_a_broker_restart_with_a_clean_session() {
    // session_expiry_seconds = 0: every connection starts a new session, so rumqttc drops
    // what it had in flight or queued, and the sink must hand all those rows back to the
    // outbox (the path a broker that lost its state takes, too).
    let resumed = broker_restart_mid_flow(0).await;
    assert_eq!(resumed, 0, "a clean session cannot be resumed");
}

/// Alerts flow while the broker goes away and comes back; every committed id must reach
/// the subscriber. Returns how many times the sink resumed its session.
async fn broker_restart_mid_flow(session_expiry_seconds: u32) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = mosquitto(dir.path(), port);
    let got = subscriber(port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let (cancel, worker, sink) = start_sink(
        &outbox,
        &format!("name = \"site-mqtt\"\nurl = \"mqtt://127.0.0.1:{port}\"\nsession_expiry_seconds = {session_expiry_seconds}"),
    );
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
    let resumed = resumed(&sink);
    println!(
        "broker restart, session expiry {session_expiry_seconds} s: {} committed, {} received, {duplicates} duplicates, session resumed {resumed}x",
        committed.len(),
        seen.len()
    );
    assert!(
        all && missing == 0,
        "{missing} of {} alerts never reached the subscriber",
        committed.len()
    );
    resumed
}

/// The recorded error of the oldest row that has one.
fn last_error(outbox: &SharedOutbox) -> String {
    outbox
        .with(|o| o.list(None, 10))
        .unwrap()
        .into_iter()
        .filter_map(|r| r.last_error)
        .next()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_a_client_certificate_is_delivered_and_a_wrong_ca_or_no_certificate_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki(dir.path());
    let plain = free_port();
    let tls = free_port();
    // The broker authenticates devices by certificate; the subscriber uses the plain port.
    let _broker = mosquitto_with(
        dir.path(),
        plain,
        &format!(
            "listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\n",
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    );
    assert!(
        wait_until(Duration::from_secs(5), || std::net::TcpStream::connect((
            "127.0.0.1",
            tls
        ))
        .is_ok())
        .await,
        "TLS listener up"
    );
    let got = subscriber(plain);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Each sink gets its own outbox, so each one's rows and errors are its own.
    let url = format!("url = \"mqtts://127.0.0.1:{tls}\"");
    let cases = [
        (
            "good",
            format!(
                "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
                pki.ca.display(),
                pki.client_cert.display(),
                pki.client_key.display()
            ),
        ),
        (
            "wrong-ca",
            format!(
                "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
                pki.other_ca.display(),
                pki.client_cert.display(),
                pki.client_key.display()
            ),
        ),
        ("no-cert", format!("ca_file = \"{}\"", pki.ca.display())),
    ];
    let mut running = Vec::new();
    for (i, (name, files)) in cases.iter().enumerate() {
        let outbox =
            SharedOutbox::new(Outbox::open(&dir.path().join(format!("outbox-{name}.db"))).unwrap());
        let alerts: Vec<NewAlert> = (0..10)
            .map(|n| common::new_alert(i * 100 + n, "dock-east", &[name]))
            .collect();
        outbox.with(|o| o.commit(&alerts)).unwrap();
        let (cancel, worker, _) =
            start_sink(&outbox, &format!("name = \"{name}\"\n{url}\n{files}"));
        running.push((name, outbox, alerts, cancel, worker));
    }
    let good_done = wait_until(Duration::from_secs(20), || {
        running[0].1.with(|o| o.stats()).unwrap().delivered == 10
    })
    .await;
    // Give the refused sinks time for several attempts.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = ids(&got);
    for (name, outbox, alerts, cancel, worker) in running {
        cancel.cancel();
        worker.await.unwrap();
        let stats = outbox.with(|o| o.stats()).unwrap();
        let arrived = alerts.iter().filter(|a| seen.contains(&a.alert_id)).count();
        let error = last_error(&outbox);
        println!(
            "{name}: delivered {}, arrived {arrived}, last error: {error}",
            stats.delivered
        );
        match *name {
            "good" => {
                assert!(
                    good_done && arrived == 10,
                    "{name}: {stats:?}, {arrived} arrived"
                );
            }
            _ => {
                assert_eq!((stats.delivered, arrived), (0, 0), "{name} must be refused");
                assert!(!error.is_empty(), "{name}: the refusal is recorded");
            }
        }
        if *name == "wrong-ca" {
            assert!(
                error.contains("certificate") || error.contains("UnknownIssuer"),
                "the error names the certificate problem: {error}"
            );
        }
    }
}
