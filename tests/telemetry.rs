//! Health and metrics of a running daemon (the real binary): the HTTPS probes `/healthz`,
//! `/readyz`, `/metrics` (checked by Prometheus' own `promtool`), and the MQTT fleet link on a
//! real mosquitto: retained `status` (`online`, then `offline` from the last will when the
//! process is killed with SIGKILL) and retained `health`. No secret shows anywhere.

mod common;

use common::{bin, clip, free_port, mosquitto, repo, secret_key, wait_until, SECRET};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchpost::demo::{Receiver, RtspClipServer};

const CAMERA_PASSWORD: &str = "hunter2-camera-pw";

/// Every message on `watchpost/test-gw/#`: (topic, payload, retained).
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

fn watch(port: u16, who: &str) -> Seen {
    let seen: Seen = Arc::default();
    let out = seen.clone();
    let mut opts = MqttOptions::new(format!("{who}-{port}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client
                        .subscribe("watchpost/test-gw/#", QoS::AtLeastOnce)
                        .await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => out.lock().unwrap().push((
                    String::from_utf8_lossy(&p.topic).to_string(),
                    String::from_utf8_lossy(&p.payload).to_string(),
                    p.retain,
                )),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    seen
}

fn last(seen: &Seen, topic: &str) -> Option<String> {
    seen.lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(t, _, _)| t == topic)
        .map(|(_, p, _)| p.clone())
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.expect("HTTPS request");
    let code = r.status().as_u16();
    (code, r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_fleet_status_of_a_running_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let _broker = mosquitto(dir.path(), mqtt_port);
    let seen = watch(mqtt_port, "fleet-console");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let web_port = free_port();
    let refused = free_port();
    let config = format!(
        r#"[device]
id = "test-gw"
site = "test-site"
data_dir = "{data}"

[model]
path = "{repo}/models/nanodet-416.onnx"
labels = "{repo}/models/coco80.txt"
threads = 1

[[camera]]
name = "yard"
url = "{rtsp}"
detect_fps = 4

[[camera]]
name = "gate"
url = "rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:{refused}/stream1"

[[rule]]
name = "person-seen"
labels = ["person"]
min_confidence = 0.5
cooldown_seconds = 1

[[sink]]
name = "receiver"
kind = "webhook"
url = "{receiver}"
secret = "{SECRET}"

[web]
listen = "127.0.0.1:{web_port}"

[control.mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
health_interval_seconds = 1
"#,
        data = dir.path().join("data").display(),
        repo = repo().display(),
        rtsp = server.url(),
        receiver = receiver.url(),
    );
    let path = dir.path().join("watchpost.toml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(config.as_bytes()))
        .unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon(
        std::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start watchpost run"),
    );

    // The fleet console sees the gateway come online, then its health with the clip streaming.
    let status = "watchpost/test-gw/status";
    let health = "watchpost/test-gw/health";
    let streaming_health = || {
        last(&seen, health)
            .and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok())
            .filter(|h| {
                h["cameras"].as_array().is_some_and(|c| {
                    c.iter().any(|c| {
                        c["name"] == "yard"
                            && c["state"] == "streaming"
                            && c["fps"].as_f64() > Some(1.0)
                    })
                }) && h["alerts_committed"].as_u64() > Some(0)
            })
    };
    let up = wait_until(Duration::from_secs(90), || {
        last(&seen, status).as_deref() == Some("online") && streaming_health().is_some()
    })
    .await;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        up,
        "no online + streaming health in 90 s; seen: {:?}\nlog:\n{}",
        seen.lock().unwrap(),
        log_text()
    );
    let h = streaming_health().unwrap();
    assert_eq!(h["device"], "test-gw");
    assert!(h["uptime_s"].as_u64().is_some());
    assert!(
        h["inference_ms_mean"].as_f64().is_some_and(|ms| ms > 1.0),
        "{h}"
    );
    assert!(h["outbox_pending"].as_i64().is_some());
    assert!(h["dead_letters"].as_i64() == Some(0), "{h}");
    let gate = h["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gate")
        .unwrap()
        .clone();
    assert_eq!(gate["state"], "backoff", "{gate}");
    assert!(
        gate["last_error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{gate}"
    );
    // A console that connects later gets both at once: they are retained.
    let late = watch(mqtt_port, "late-console");
    let retained = wait_until(Duration::from_secs(10), || {
        let l = late.lock().unwrap();
        l.iter().any(|(t, p, r)| t == status && p == "online" && *r)
            && l.iter().any(|(t, _, r)| t == health && *r)
    })
    .await;
    assert!(
        retained,
        "status/health not retained: {:?}",
        late.lock().unwrap()
    );

    // HTTPS with the certificate the daemon made, pinned as the only root.
    let cert_pem =
        std::fs::read(dir.path().join("data/web/cert.pem")).expect("self-signed certificate");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert_pem).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{web_port}");
    assert_eq!(
        get(&client, &format!("{base}/healthz")).await,
        (200, "ok\n".into())
    );
    let (code, ready) = get(&client, &format!("{base}/readyz")).await;
    assert_eq!(code, 200, "{ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["outbox_writable"], true);
    assert_eq!(ready["cameras"], 2);
    assert!(ready["cameras_streaming"].as_u64() >= Some(1));
    // Plain HTTP is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{web_port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP answered"
    );

    // Deliveries happened: wait until metrics show a successful attempt.
    let mut metrics = String::new();
    let delivered = wait_until(Duration::from_secs(30), || {
        metrics = futures_lite_block(get(&client, &format!("{base}/metrics"))).1;
        sample(
            &metrics,
            "watchpost_delivery_attempts_total",
            &["sink=\"receiver\"", "result=\"success\""],
        )
        .is_some_and(|v| v >= 1.0)
    })
    .await;
    assert!(
        delivered,
        "no successful delivery in the metrics:\n{metrics}"
    );
    for (name, labels, at_least) in [
        ("watchpost_camera_up", vec!["camera=\"yard\""], 1.0),
        (
            "watchpost_camera_frames_total",
            vec!["camera=\"yard\"", "kind=\"detected\""],
            1.0,
        ),
        ("watchpost_inference_seconds_count", vec![], 1.0),
        (
            "watchpost_alerts_fired_total",
            vec!["rule=\"person-seen\""],
            1.0,
        ),
        ("watchpost_outbox_pending", vec!["sink=\"receiver\""], 0.0),
        (
            "watchpost_delivery_latency_seconds_count",
            vec!["sink=\"receiver\""],
            1.0,
        ),
    ] {
        let v = sample(&metrics, name, &labels);
        assert!(
            v.is_some_and(|v| v >= at_least),
            "{name}{labels:?} = {v:?} in:\n{metrics}"
        );
    }
    assert_eq!(
        sample(&metrics, "watchpost_camera_up", &["camera=\"gate\""]),
        Some(0.0)
    );
    assert_eq!(sample(&metrics, "watchpost_dead_letters", &[]), Some(0.0));
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics failed:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The log names the certificate's fingerprint, so a technician can pin it.
    let fp = {
        use sha2::Digest;
        let der = rustls_pemfile_der(&cert_pem);
        sha2::Sha256::digest(der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    assert!(log_text().contains(&fp), "fingerprint {fp} not in the log");

    // SIGKILL: no goodbye from the process; the broker publishes the last will.
    daemon.0.kill().unwrap();
    let _ = daemon.0.wait();
    let offline = wait_until(Duration::from_secs(20), || {
        last(&seen, status).as_deref() == Some("offline")
    })
    .await;
    assert!(
        offline,
        "no offline after SIGKILL: {:?}",
        last(&seen, status)
    );

    // No secret anywhere a person or the fleet could read.
    let everything = format!(
        "{}{}{}{}",
        log_text(),
        metrics,
        ready,
        seen.lock()
            .unwrap()
            .iter()
            .map(|m| m.1.clone())
            .collect::<String>()
    );
    assert!(
        !everything.contains(CAMERA_PASSWORD),
        "the camera password leaked"
    );
    assert!(!everything.contains(SECRET), "the webhook secret leaked");
}

/// The value of the first sample of `name` carrying every one of `labels` (any order).
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let series = l.split_whitespace().next().unwrap_or("");
            let bare = series.split('{').next().unwrap_or("");
            bare == name && labels.iter().all(|want| series.contains(want))
        })
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// The daemon under test; killed if the test fails half-way.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a future to completion from inside a sync closure (the bounded wait polls one).
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// The DER bytes of the first certificate in a PEM file.
fn rustls_pemfile_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem)
        .expect("PEM certificate")
        .to_vec()
}
