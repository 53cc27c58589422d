//! Health and metrics of a running daemon (the real binary): the HTTPS probes `/healthz`,
//! `/readyz`, `/metrics` (checked by Prometheus' own `promtool`), and the MQTT fleet link on a
//! real mosquitto: retained `status` (`online`, then `offline` from the last will when the
//! process is killed with SIGKILL) and retained `health`. No secret shows anywhere.

mod common;

use common::{bin, clip, free_port, repo, secret_key, wait_until, SECRET};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchpost::demo::{Answer, Receiver, RtspClipServer};

const CAMERA_PASSWORD: &str = "hunter2-camera-pw";

/// Every message on `watchpost/test-gw/#`: (topic, payload, retained).
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

fn watch(port: u16, who: &str) -> Seen {
    let seen: Seen = Arc::default();
    let out = seen.clone();
    let mut opts = MqttOptions::new(format!("{who}-{port}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    // Snapshot results carry a JPEG.
    opts.set_max_packet_size(Some(4 << 20));
    common::listen(opts, "watchpost/test-gw/#", move |p| {
        out.lock().unwrap().push((
            String::from_utf8_lossy(&p.topic).to_string(),
            String::from_utf8_lossy(&p.payload).to_string(),
            p.retain,
        ))
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

/// A broker, a receiver, an RTSP camera and the daemon with `[web]` and `[control.mqtt]`
/// (plus `control_extra` lines), all on loopback; dropped in reverse order.
struct Gateway {
    config_path: std::path::PathBuf,
    config_text: String,
    daemon: Daemon,
    seen: Seen,
    log: std::path::PathBuf,
    web_port: u16,
    mqtt_port: u16,
    receiver: Receiver,
    _server: RtspClipServer,
    _broker: common::Broker,
    dir: tempfile::TempDir,
}

/// Lines added to the test config's `[control.mqtt]`, `[[sink]]`, `[[rule]]` and `[web]`,
/// to mosquitto.conf (`broker`), and a fleet-link URL instead of the broker's plain port.
#[derive(Default)]
struct Extras<'a> {
    control: &'a str,
    sink: &'a str,
    rule: &'a str,
    web: &'a str,
    broker: &'a str,
    control_url: Option<&'a str>,
}

async fn gateway(control_extra: &str, sink_extra: &str) -> Gateway {
    gateway_with(Extras {
        control: control_extra,
        sink: sink_extra,
        ..Extras::default()
    })
    .await
}

async fn gateway_with(extras: Extras<'_>) -> Gateway {
    let Extras {
        control: control_extra,
        sink: sink_extra,
        rule: rule_extra,
        web: web_extra,
        broker: broker_extra,
        control_url,
    } = extras;
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let broker = common::mosquitto_with(dir.path(), mqtt_port, broker_extra);
    let control_url = control_url
        .map(str::to_string)
        .unwrap_or_else(|| format!("mqtt://127.0.0.1:{mqtt_port}"));
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
{rule_extra}

[[sink]]
name = "receiver"
kind = "webhook"
url = "{receiver}"
secret = "{SECRET}"
{sink_extra}

[web]
listen = "127.0.0.1:{web_port}"
{web_extra}

[control.mqtt]
url = "{control_url}"
health_interval_seconds = 1
{control_extra}
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
    let daemon = Daemon(
        std::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start watchpost run"),
    );
    Gateway {
        config_path: path,
        config_text: config,
        daemon,
        seen,
        log,
        web_port,
        mqtt_port,
        receiver,
        _server: server,
        _broker: broker,
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_fleet_status_of_a_running_gateway() {
    let gw = gateway("", "").await;
    let (seen, log, web_port, mqtt_port) =
        (gw.seen.clone(), gw.log.clone(), gw.web_port, gw.mqtt_port);
    let dir = &gw.dir;
    let mut daemon = gw.daemon;
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
    let fp = fingerprint(&rustls_pemfile_der(&cert_pem));
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

/// A certificate's SHA-256 as the daemon logs it (`AB:CD:…`).
fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs an external tool off the async workers, bounded to `secs`.
async fn output_within(
    mut cmd: std::process::Command,
    secs: u64,
    what: &str,
) -> std::process::Output {
    tokio::time::timeout(
        Duration::from_secs(secs),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
    .unwrap()
    .unwrap_or_else(|e| panic!("{what} does not run: {e}"))
}

/// The DER bytes of the first certificate in a PEM file.
fn rustls_pemfile_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem)
        .expect("PEM certificate")
        .to_vec()
}

/// Publishes `payload` on `watchpost/test-gw/cmd/{name}`, signed with `key` unless `None`.
async fn command(client: &AsyncClient, name: &str, payload: &str, key: Option<&[u8]>) {
    let topic = format!("watchpost/test-gw/cmd/{name}");
    let mut props = rumqttc::v5::mqttbytes::v5::PublishProperties::default();
    if let Some(key) = key {
        let sig = watchpost::control::commands::sign(key, &topic, payload.as_bytes());
        props
            .user_properties
            .push(("signature".into(), format!("v1={sig}")));
    }
    client
        .publish_with_properties(topic, QoS::AtLeastOnce, false, payload.to_string(), props)
        .await
        .expect("publish a command");
}

fn envelope(ts: i64, nonce: &str, args: &str) -> String {
    format!(r#"{{"ts": {ts}, "nonce": "{nonce}", "args": {args}}}"#)
}

/// Waits until `n` results of `name` have arrived (bounded by `secs`).
async fn results_within(seen: &Seen, name: &str, n: usize, secs: u64) -> bool {
    wait_until(Duration::from_secs(secs), || results(seen, name).len() >= n).await
}

/// The results seen on `cmd/{name}/result` so far, parsed.
fn results(seen: &Seen, name: &str) -> Vec<serde_json::Value> {
    let topic = format!("watchpost/test-gw/cmd/{name}/result");
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| *t == topic)
        .filter_map(|(_, p, _)| serde_json::from_str(p).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_fleet_commands_run_and_everything_else_is_refused_with_a_reason() {
    const KEY: &str = "fleet-control-key-0123456789";
    // Every delivery is rejected (400) at first, so alerts become dead letters quickly.
    let gw = gateway(
        &format!("control_key = \"{KEY}\""),
        "\n[delivery]\nretry_schedule_seconds = [0.2, 0.4]\nmax_backoff_seconds = 0.5",
    )
    .await;
    gw.receiver.set_answer(Answer::Status(400));
    let health = "watchpost/test-gw/health";
    let dead = || {
        last(&gw.seen, health)
            .and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok())
            .and_then(|h| h["dead_letters"].as_i64())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(90), || dead() > 0).await,
        "no dead letter in 90 s; log:\n{}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    gw.receiver.set_answer(Answer::Status(200));

    let mut opts = MqttOptions::new("fleet-commander", "127.0.0.1", gw.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let key = KEY.as_bytes();
    let now = chrono::Utc::now().timestamp();
    let replay = envelope(now, "n-1", "{}");

    // Refused, each with its reason: unsigned, wrong key, stale.
    command(&client, "replay-dead-letters", &replay, None).await;
    command(
        &client,
        "replay-dead-letters",
        &replay,
        Some(b"not-the-device-key"),
    )
    .await;
    command(
        &client,
        "replay-dead-letters",
        &envelope(now - 600, "n-0", "{}"),
        Some(key),
    )
    .await;
    assert!(
        results_within(&gw.seen, "replay-dead-letters", 3, 10).await,
        "no refusals: {:?}",
        results(&gw.seen, "replay-dead-letters")
    );
    let refused: Vec<String> = results(&gw.seen, "replay-dead-letters")
        .iter()
        .map(|r| {
            assert_eq!(r["ok"], false, "{r}");
            r["error"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(refused[0].starts_with("unsigned"), "{refused:?}");
    assert!(refused[1].contains("bad signature"), "{refused:?}");
    assert!(refused[2].starts_with("stale"), "{refused:?}");
    assert!(dead() > 0, "a refused command changed nothing");

    // Signed and fresh: the dead letters go back in the queue and reach the receiver.
    let before = gw.receiver.received().len();
    command(&client, "replay-dead-letters", &replay, Some(key)).await;
    assert!(results_within(&gw.seen, "replay-dead-letters", 4, 10).await);
    let ok = results(&gw.seen, "replay-dead-letters")[3].clone();
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["nonce"], "n-1");
    assert!(
        ok["result"]["replayed"].as_u64().is_some_and(|n| n >= 1),
        "{ok}"
    );
    assert!(
        wait_until(Duration::from_secs(30), || dead() == 0
            && gw
                .receiver
                .received()
                .iter()
                .skip(before)
                .any(|r| r.status == 200))
        .await,
        "replayed letters not delivered; dead = {}",
        dead()
    );

    // The same signed message again is a replay.
    command(&client, "replay-dead-letters", &replay, Some(key)).await;
    assert!(results_within(&gw.seen, "replay-dead-letters", 5, 10).await);
    let again = results(&gw.seen, "replay-dead-letters")[4].clone();
    assert!(
        again["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("replayed"),
        "{again}"
    );

    // A snapshot of the camera, at its own size; then a restart of it.
    command(
        &client,
        "snapshot",
        &envelope(now, "n-2", r#"{"camera": "yard"}"#),
        Some(key),
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(10), || !results(&gw.seen, "snapshot")
            .is_empty())
        .await
    );
    let snap = results(&gw.seen, "snapshot")[0].clone();
    assert_eq!(snap["ok"], true, "{}", snap["error"]);
    use base64::Engine as _;
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(snap["result"]["jpeg_base64"].as_str().unwrap())
        .unwrap();
    let img = image::load_from_memory(&jpeg).expect("a JPEG");
    assert_eq!((img.width(), img.height()), (640, 480));

    command(
        &client,
        "restart-camera",
        &envelope(now, "n-3", r#"{"camera": "nope"}"#),
        Some(key),
    )
    .await;
    command(
        &client,
        "restart-camera",
        &envelope(now, "n-4", r#"{"camera": "yard"}"#),
        Some(key),
    )
    .await;
    assert!(results_within(&gw.seen, "restart-camera", 2, 20).await);
    let r = results(&gw.seen, "restart-camera");
    let unknown = r.iter().find(|r| r["nonce"] == "n-3").unwrap();
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("no camera named \"nope\""),
        "{unknown}"
    );
    let restarted = r.iter().find(|r| r["nonce"] == "n-4").unwrap();
    assert_eq!(restarted["ok"], true, "{restarted}");
    // The control key never shows in the log.
    assert!(!std::fs::read_to_string(&gw.log)
        .unwrap_or_default()
        .contains(KEY));
}

fn health_of(seen: &Seen) -> Option<serde_json::Value> {
    last(seen, "watchpost/test-gw/health").and_then(|h| serde_json::from_str(&h).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_applies_rules_live_refuses_bad_configs_and_rolls_back() {
    const KEY: &str = "fleet-control-key-0123456789";
    // The rule watches a sliver in the top-left corner where nobody walks: no alerts.
    const CORNER: &str = "zone = [[0.0, 0.0], [0.02, 0.0], [0.02, 0.02]]";
    const WHOLE: &str = "zone = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]";
    let control = format!("control_key = \"{KEY}\"");
    let gw = gateway_with(Extras {
        control: &control,
        rule: CORNER,
        ..Extras::default()
    })
    .await;
    let state = "watchpost/test-gw/config/state";
    let result = "watchpost/test-gw/config/result";
    let version = || {
        last(&gw.seen, state)
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|s| s["version"].as_u64())
    };
    assert!(
        wait_until(Duration::from_secs(60), || version() == Some(1)
            && health_of(&gw.seen).is_some_and(|h| h["cameras_streaming"] == 1))
        .await,
        "no config/state v1 or no streaming camera; log:\n{}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    let redacted = last(&gw.seen, state).unwrap();
    assert!(
        !redacted.contains(SECRET)
            && !redacted.contains(CAMERA_PASSWORD)
            && !redacted.contains(KEY)
    );
    assert!(redacted.contains("(set)"), "{redacted}");

    // One loop of the clip (people in its first 2 s) with the corner zone: nothing fires.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(health_of(&gw.seen).unwrap()["alerts_committed"], 0);

    let mut opts = MqttOptions::new("fleet-configurator", "127.0.0.1", gw.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let set = |nonce: &str, args: serde_json::Value| {
        let body =
            serde_json::json!({"ts": chrono::Utc::now().timestamp(), "nonce": nonce, "args": args});
        let payload = body.to_string();
        let topic = "watchpost/test-gw/config/set".to_string();
        let sig = watchpost::control::commands::sign(KEY.as_bytes(), &topic, payload.as_bytes());
        let client = client.clone();
        async move {
            let mut props = rumqttc::v5::mqttbytes::v5::PublishProperties::default();
            props
                .user_properties
                .push(("signature".into(), format!("v1={sig}")));
            client
                .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, props)
                .await
                .unwrap();
        }
    };
    let answers = || -> Vec<serde_json::Value> {
        gw.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == result)
            .filter_map(|(_, p, _)| serde_json::from_str(p).ok())
            .collect()
    };

    // Invalid: refused with check-config's located errors; nothing written or changed.
    let bad = gw
        .config_text
        .replace("min_confidence = 0.5", "min_confidence = 1.5");
    set("bad", serde_json::json!({"toml": bad})).await;
    assert!(wait_until(Duration::from_secs(10), || !answers().is_empty()).await);
    let refused = answers()[0].clone();
    assert_eq!(refused["ok"], false, "{refused}");
    let errors = refused["errors"].to_string();
    assert!(
        errors.contains("rule[0].min_confidence") && errors.contains("between 0 and 1, got 1.5"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(&gw.config_path).unwrap(),
        gw.config_text
    );
    assert_eq!(version(), Some(1));

    // The zone widened: applied live, the camera untouched, alerts now fire.
    let wide = gw.config_text.replace(CORNER, WHOLE);
    set("wide", serde_json::json!({"toml": wide})).await;
    assert!(wait_until(Duration::from_secs(20), || answers().len() >= 2).await);
    let applied = answers()[1].clone();
    assert_eq!(applied["ok"], true, "{applied}");
    assert_eq!(applied["applied"]["version"], 2);
    assert_eq!(applied["applied"]["live"], serde_json::json!(["rule"]));
    assert_eq!(applied["applied"]["restart_needed"], serde_json::json!([]));
    assert!(
        applied["applied"]["cameras"]
            .to_string()
            .contains(r#"["yard","unchanged"]"#),
        "{applied}"
    );
    assert_eq!(std::fs::read_to_string(&gw.config_path).unwrap(), wide);
    let mut prev = gw.config_path.clone().into_os_string();
    prev.push(".prev");
    assert_eq!(std::fs::read_to_string(prev).unwrap(), gw.config_text);
    assert!(
        wait_until(Duration::from_secs(30), || health_of(&gw.seen)
            .is_some_and(|h| h["alerts_committed"].as_u64() > Some(0)))
        .await,
        "no alert after widening the zone"
    );
    let yard = health_of(&gw.seen).unwrap()["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "yard")
        .unwrap()
        .clone();
    assert_eq!(yard["sessions"], 1, "the camera was restarted: {yard}");
    assert!(wait_until(Duration::from_secs(10), || version() == Some(2)).await);

    // One step back.
    set("back", serde_json::json!({"rollback": true})).await;
    assert!(wait_until(Duration::from_secs(20), || answers().len() >= 3).await);
    let back = answers()[2].clone();
    assert_eq!(back["ok"], true, "{back}");
    assert_eq!(back["applied"]["version"], 3);
    assert_eq!(
        std::fs::read_to_string(&gw.config_path).unwrap(),
        gw.config_text
    );
}

/// A request to the daemon's API: method, path, optional cookie/CSRF/bearer and JSON body.
struct Call<'a> {
    method: reqwest::Method,
    path: &'a str,
    cookie: Option<&'a str>,
    csrf: Option<&'a str>,
    bearer: Option<&'a str>,
    body: Option<serde_json::Value>,
}

impl<'a> Call<'a> {
    fn new(method: reqwest::Method, path: &'a str) -> Self {
        Self {
            method,
            path,
            cookie: None,
            csrf: None,
            bearer: None,
            body: None,
        }
    }
    fn cookie(mut self, session: &'a str) -> Self {
        self.cookie = Some(session);
        self
    }
    fn csrf(mut self, token: &'a str) -> Self {
        self.csrf = Some(token);
        self
    }
    fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }
    fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    c: Call<'_>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = client.request(c.method, format!("{base}{}", c.path));
    if let Some(s) = c.cookie {
        r = r.header("Cookie", format!("wp_session={s}"));
    }
    if let Some(t) = c.csrf {
        r = r.header("X-CSRF-Token", t);
    }
    if let Some(b) = c.bearer {
        r = r.header("Authorization", format!("Bearer {b}"));
    }
    if let Some(b) = c.body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.expect("API request");
    let (code, headers) = (resp.status().as_u16(), resp.headers().clone());
    (code, headers, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_setup_login_csrf_or_a_token_and_limits_guessing() {
    use reqwest::Method;
    let gw = gateway("", "").await;
    let base = format!("https://127.0.0.1:{}", gw.web_port);
    // The setup code is in the log once the server listens.
    let code_re = setup_code;
    let log = || std::fs::read_to_string(&gw.log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || code_re(&log()).is_some()).await,
        "{}",
        log()
    );
    let code = code_re(&log()).unwrap();
    let cert_pem = std::fs::read(gw.dir.path().join("data/web/cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert_pem).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Every operation the OpenAPI document marks as needing auth, checked below without
    // auth, with a bad CSRF token and after logout.
    let (status, _, doc) = call(&client, &base, Call::new(Method::GET, "/api/openapi.json")).await;
    assert_eq!(status, 200, "the OpenAPI document is public");
    let protected = secured_operations(&serde_json::from_str(&doc).unwrap());
    assert!(protected.len() >= 17, "{protected:?}");
    for (m, p) in &protected {
        let (status, _, _) = call(&client, &base, Call::new(m.clone(), p)).await;
        assert_eq!(status, 401, "{m} {p} without auth");
    }
    let login = |pw: &str| {
        let c = Call::new(Method::POST, "/api/login").json(serde_json::json!({ "password": pw }));
        c
    };
    assert_eq!(
        call(&client, &base, login("anything at all")).await.0,
        409,
        "not set up yet"
    );
    let setup = |code: &str, pw: &str| {
        let c = Call::new(Method::POST, "/api/setup")
            .json(serde_json::json!({ "code": code, "password": pw }));
        c
    };
    const PW: &str = "correct horse battery staple";
    assert_eq!(
        call(&client, &base, setup("AAAA-BBBB-CCCC", PW)).await.0,
        403
    );
    assert_eq!(call(&client, &base, setup(&code, "short")).await.0, 400);
    assert_eq!(call(&client, &base, setup(&code, PW)).await.0, 204);
    assert_eq!(
        call(&client, &base, setup(&code, PW)).await.0,
        409,
        "the code is single-use"
    );

    let (status, headers, body) = call(&client, &base, login(PW)).await;
    assert_eq!(status, 200, "{body}");
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = session_of(&cookie);
    let csrf = field(&body, "csrf");
    let get = Call::new(Method::GET, "/api/cameras").cookie(&session);
    let (status, _, cams) = call(&client, &base, get).await;
    assert_eq!(status, 200);
    assert!(
        cams.contains("\"yard\"") && !cams.contains(CAMERA_PASSWORD),
        "{cams}"
    );
    let cfg = Call::new(Method::GET, "/api/config").cookie(&session);
    let (status, _, config) = call(&client, &base, cfg).await;
    assert_eq!(status, 200);
    assert!(
        !config.contains(SECRET) && !config.contains(CAMERA_PASSWORD) && config.contains("(set)")
    );

    // Secrets come back as "set", never as themselves.
    for section in ["camera", "sink"] {
        let path = format!("/api/config/{section}");
        let get = Call::new(Method::GET, &path).cookie(&session);
        let (status, _, items) = call(&client, &base, get).await;
        assert_eq!(status, 200, "{items}");
        assert!(
            !items.contains(SECRET) && !items.contains(CAMERA_PASSWORD),
            "{items}"
        );
    }

    // A cleared text box is not a config: refused, the file untouched.
    let empty = Call::new(Method::PUT, "/api/config")
        .cookie(&session)
        .csrf(&csrf)
        .json(serde_json::json!({"toml": "# all gone\n"}));
    let (status, _, body) = call(&client, &base, empty).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("empty"), "{body}");
    assert_eq!(
        std::fs::read_to_string(&gw.config_path).unwrap(),
        gw.config_text
    );

    // State changes need the CSRF token with a session: every one of them.
    for (m, p) in protected.iter().filter(|(m, _)| *m != Method::GET) {
        for csrf in [None, Some("0000")] {
            let mut c = Call::new(m.clone(), p).cookie(&session);
            if let Some(t) = csrf {
                c = c.csrf(t);
            }
            assert_eq!(
                call(&client, &base, c).await.0,
                403,
                "{m} {p} CSRF {csrf:?}"
            );
        }
    }
    let replay = Call::new(Method::POST, "/api/dead-letters/replay")
        .cookie(&session)
        .csrf(&csrf);
    let (status, _, body) = call(&client, &base, replay).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("replayed"));

    // An API token for machines: works without CSRF, cannot mint tokens, never stored.
    let token = mint(&client, &base, &session, &csrf).await;
    let health = Call::new(Method::GET, "/api/health").bearer(&token);
    assert_eq!(call(&client, &base, health).await.0, 200);
    let replay = Call::new(Method::POST, "/api/dead-letters/replay").bearer(&token);
    assert_eq!(call(&client, &base, replay).await.0, 200);
    let mint = Call::new(Method::POST, "/api/tokens")
        .bearer(&token)
        .json(serde_json::json!({"name": "more"}));
    assert_eq!(call(&client, &base, mint).await.0, 403);
    let bad = Call::new(Method::GET, "/api/health").bearer("wpt_not-a-token");
    assert_eq!(call(&client, &base, bad).await.0, 401);
    let stored = std::fs::read_to_string(gw.dir.path().join("data/web/auth.json")).unwrap();
    assert!(!stored.contains(&token) && !stored.contains(PW));

    // Live alerts (Server-Sent Events), the list, and the pictures.
    let events = client
        .get(format!("{base}/api/events"))
        .header("Cookie", format!("wp_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let mut events = events;
    let mut fired: Option<serde_json::Value> = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut buf = String::new();
    while fired.is_none() && std::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(40), events.chunk()).await;
        let Ok(Ok(Some(bytes))) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&bytes));
        fired = buf
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .find(|v| v["type"] == "alert.fired");
    }
    let fired = fired.unwrap_or_else(|| panic!("no live alert in 40 s: {buf}"));
    let alert_id = fired["data"]["alert_id"].as_str().unwrap().to_string();
    let list = Call::new(Method::GET, "/api/alerts?limit=20").bearer(&token);
    let (status, _, alerts) = call(&client, &base, list).await;
    assert_eq!(status, 200);
    assert!(alerts.contains(&alert_id), "{alert_id} not in {alerts}");
    let picture = |path: String| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let r = client
                .get(format!("{base}{path}"))
                .header("Authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path}");
            assert_eq!(r.headers()["content-type"], "image/jpeg");
            image::load_from_memory(&r.bytes().await.unwrap()).expect("a JPEG")
        }
    };
    let evidence = picture(format!("/api/snapshots/{alert_id}")).await;
    assert_eq!((evidence.width(), evidence.height()), (640, 480));
    let none_yet = Call::new(Method::GET, "/api/cameras/gate/snapshot").bearer(&token);
    let (status, _, body) = call(&client, &base, none_yet).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("has not delivered a frame yet"), "{body}");
    let latest = picture("/api/cameras/yard/snapshot".to_string()).await;
    assert_eq!((latest.width(), latest.height()), (640, 480));
    for path in ["/api/alerts", "/api/events", "/api/cameras/yard/snapshot"] {
        assert_eq!(
            call(&client, &base, Call::new(Method::GET, path)).await.0,
            401,
            "{path}"
        );
    }
    let bad = Call::new(Method::GET, "/api/snapshots/..%2F..%2Fetc%2Fpasswd").bearer(&token);
    assert_eq!(
        call(&client, &base, bad).await.0,
        400,
        "a path is not a snapshot id"
    );

    // After logout the session is gone.
    let out = Call::new(Method::POST, "/api/logout")
        .cookie(&session)
        .csrf(&csrf);
    assert_eq!(call(&client, &base, out).await.0, 204);
    for (m, p) in &protected {
        let c = Call::new(m.clone(), p).cookie(&session).csrf(&csrf);
        assert_eq!(
            call(&client, &base, c).await.0,
            401,
            "{m} {p}: session still valid after logout"
        );
    }

    // Guessing: five failures from this address, then even the right password waits.
    for _ in 0..5 {
        assert_eq!(
            call(&client, &base, login("wrong password guess")).await.0,
            401
        );
    }
    assert_eq!(call(&client, &base, login(PW)).await.0, 429);
    assert!(!log().contains(PW), "the password reached the log");
}

/// Every operation of an OpenAPI document that declares security, its path parameters
/// filled with names that exist in the test config.
fn secured_operations(doc: &serde_json::Value) -> Vec<(reqwest::Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            if op.get("security").is_none() {
                continue;
            }
            let filled = path
                .replace("{section}", "camera")
                .replace("{name}", "yard")
                .replace("{id}", "01M8WGYVKKE1TG5KZSZ4YR3XCX");
            ops.push((method.to_uppercase().parse().expect("method"), filled));
        }
    }
    ops
}

/// The session id in a `Set-Cookie` header.
fn session_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("wp_session="))
        .expect("a wp_session cookie")
        .to_string()
}

/// A string field of a JSON body.
fn field(body: &str, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).expect("JSON")[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .to_string()
}

/// An API token minted by a logged-in session.
async fn mint(client: &reqwest::Client, base: &str, session: &str, csrf: &str) -> String {
    let c = Call::new(reqwest::Method::POST, "/api/tokens")
        .cookie(session)
        .csrf(csrf)
        .json(serde_json::json!({"name": "tests"}));
    let (status, _, body) = call(client, base, c).await;
    assert_eq!(status, 200, "{body}");
    field(&body, "token")
}

/// The one-time setup code the daemon logged, once it has.
fn setup_code(log: &str) -> Option<String> {
    log.lines()
        .find_map(|l| l.split("setup_code=").nth(1))
        .and_then(|c| c.split_whitespace().next())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_works_in_a_real_browser() {
    // The first receiver refuses everything (400) and retries are short, so its alerts become
    // dead letters for the page to replay; the page adds a second one ("ops") that accepts.
    let gw = gateway(
        "",
        "\n[delivery]\nretry_schedule_seconds = [0.2, 0.4]\nmax_backoff_seconds = 0.5",
    )
    .await;
    gw.receiver.set_answer(Answer::Status(400));
    let ops = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    // Its own server: the dock camera must not share a media with the yard camera.
    let dock = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let log = || std::fs::read_to_string(&gw.log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || setup_code(&log()).is_some()).await,
        "{}",
        log()
    );
    let artifacts = repo().join("target/test-artifacts/browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let script = repo().join("tests/browser/dashboard.mjs");
    let mut node = std::process::Command::new("node");
    node.arg(&script)
        .env(
            "WATCHPOST_URL",
            format!("https://127.0.0.1:{}/", gw.web_port),
        )
        .env("SETUP_CODE", setup_code(&log()).unwrap())
        .env("ARTIFACTS", &artifacts)
        .env("DOCK_RTSP", dock.url())
        .env("OPS_URL", ops.url())
        .env("OPS_SECRET", SECRET);
    // Every wait inside the script is bounded; this bounds the whole run as well.
    let out = output_within(
        node,
        300,
        "node (scripts/setup installs nodejs, chromium, playwright-core)",
    )
    .await;
    assert!(
        out.status.success(),
        "{}{}\nscreenshots in {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        artifacts.display(),
        log()
    );
    for shot in [
        "1-login.png",
        "2-dashboard.png",
        "3-inline-error.png",
        "4-zone.png",
        "5-test-alert.png",
        "6-live-alert.png",
        "7-logged-out.png",
    ] {
        assert!(artifacts.join(shot).is_file(), "no screenshot {shot}");
    }

    // What the page did reached the receiver, signed: the test alert, then real alerts of
    // the rule drawn on the page, from the camera added on the page.
    let got = ops.received();
    let test = got
        .iter()
        .find(|r| r.json().is_some_and(|j| j["type"] == "alert.test"))
        .expect("the test alert reached the ops receiver");
    assert_eq!(test.verified, Some(true));
    assert!(
        got.iter().any(|r| r.verified == Some(true)
            && r.json().is_some_and(|j| j["type"] == "alert.fired"
                && j["data"]["rule"] == "dock-person"
                && j["data"]["camera"] == "dock")),
        "no dock-person alert at the ops receiver ({} requests)",
        got.len()
    );

    // The file on disk: the page's items added, the operator's lines and secrets kept, and
    // no redaction placeholder written as a value.
    let file = std::fs::read_to_string(&gw.config_path).unwrap();
    for line in gw.config_text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(file.contains(line), "line lost: {line}\n{file}");
    }
    for added in [
        "name = \"dock\"",
        "name = \"dock-lane\"",
        "name = \"dock-person\"",
        "name = \"ops\"",
        "zone = \"dock-lane\"",
    ] {
        assert!(file.contains(added), "{added} missing:\n{file}");
    }
    assert_eq!(file.matches(SECRET).count(), 2, "{file}");
    assert!(!file.contains("(set)"), "{file}");
    // Only what the technician typed: checkboxes left at their defaults are not written (an
    // unticked-by-default box once came out ticked and turned the camera keyframes-only).
    assert!(
        !file.contains("keyframes_only") && !file.contains("enabled"),
        "{file}"
    );
}

/// An admin signed in over HTTPS (trusting `cert_pem` only): session, its CSRF token, and an
/// API token for machine clients.
struct Admin {
    client: reqwest::Client,
    base: String,
    token: String,
}

async fn admin(gw: &Gateway, cert_pem: &[u8]) -> Admin {
    use reqwest::Method;
    let log = || std::fs::read_to_string(&gw.log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || setup_code(&log()).is_some()).await,
        "{}",
        log()
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", gw.web_port);
    const PW: &str = "correct horse battery staple";
    let setup = Call::new(Method::POST, "/api/setup")
        .json(serde_json::json!({ "code": setup_code(&log()).unwrap(), "password": PW }));
    assert_eq!(call(&client, &base, setup).await.0, 204);
    let login = Call::new(Method::POST, "/api/login").json(serde_json::json!({ "password": PW }));
    let (status, headers, body) = call(&client, &base, login).await;
    assert_eq!(status, 200, "{body}");
    let session = session_of(headers["set-cookie"].to_str().unwrap());
    let token = mint(&client, &base, &session, &field(&body, "csrf")).await;
    Admin {
        client,
        base,
        token,
    }
}

impl Admin {
    /// A call with the API token; the status and the body as JSON (`Null` when not JSON).
    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut c = Call::new(method, path).bearer(&self.token);
        if let Some(b) = body {
            c = c.json(b);
        }
        let (status, _, text) = call(&self.client, &self.base, c).await;
        (status, serde_json::from_str(&text).unwrap_or_default())
    }

    async fn camera(&self, name: &str) -> Option<serde_json::Value> {
        let (_, cams) = self.json(reqwest::Method::GET, "/api/cameras", None).await;
        cams.as_array()?.iter().find(|c| c["name"] == name).cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_changed_through_the_api_changes_which_alerts_fire_live() {
    use reqwest::Method;
    // The rule watches the zone "lane", a sliver in the top-left corner where nobody walks.
    const LANE: &str = "zone = \"lane\"\n\n[[zone]]\nname = \"lane\"\n\
                        polygon = [[0.0, 0.0], [0.02, 0.0], [0.02, 0.02]]";
    let gw = gateway_with(Extras {
        rule: LANE,
        ..Extras::default()
    })
    .await;
    let cert = wait_for_file(&gw.dir.path().join("data/web/cert.pem")).await;
    let admin = admin(&gw, &cert).await;

    // A second camera, added live through the API.
    let dock = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let add = serde_json::json!({"name": "dock", "url": dock.url(), "detect_fps": 4});
    let (status, applied) = admin
        .json(Method::PUT, "/api/config/camera/dock", Some(add))
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["live"], serde_json::json!(["camera"]), "{applied}");
    let streaming =
        |c: &Option<serde_json::Value>| c.as_ref().is_some_and(|c| c["state"] == "streaming");
    let mut both = false;
    for _ in 0..60 {
        if streaming(&admin.camera("yard").await) && streaming(&admin.camera("dock").await) {
            both = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(both, "yard and dock not both streaming");

    // A whole loop of the clip (people in its first 2 s) in the corner zone: nothing fires.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (_, alerts) = admin.json(Method::GET, "/api/alerts", None).await;
    assert_eq!(alerts, serde_json::json!([]), "alerts in the corner zone");

    // The zone becomes the whole frame, on the dock camera only.
    let yard_before = admin.camera("yard").await.unwrap();
    let changed_at = chrono::Utc::now().timestamp_millis();
    let t0 = std::time::Instant::now();
    let lane = serde_json::json!({"name": "lane", "cameras": ["dock"],
        "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]});
    let (status, applied) = admin
        .json(Method::PUT, "/api/config/zone/lane", Some(lane))
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["live"], serde_json::json!(["zone"]), "{applied}");
    assert_eq!(
        applied["restart_needed"],
        serde_json::json!([]),
        "{applied}"
    );
    let fired_on = |alerts: &serde_json::Value, camera: &str| {
        alerts.as_array().map_or(0, |a| {
            a.iter()
                .filter(|a| a["camera"] == camera && a["created_at"].as_i64() >= Some(changed_at))
                .count()
        })
    };
    let mut alerts = serde_json::Value::Null;
    for _ in 0..60 {
        alerts = admin.json(Method::GET, "/api/alerts", None).await.1;
        if fired_on(&alerts, "dock") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(fired_on(&alerts, "dock") > 0, "no dock alert: {alerts}");
    // Let the yard camera pass its people once more: the zone is not on it.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let alerts = admin.json(Method::GET, "/api/alerts", None).await.1;
    assert_eq!(fired_on(&alerts, "yard"), 0, "{alerts}");

    // No camera restarted; the yard camera kept receiving its 10 fps all along.
    let yard_after = admin.camera("yard").await.unwrap();
    let dock_after = admin.camera("dock").await.unwrap();
    assert_eq!(yard_after["sessions"], 1, "{yard_after}");
    assert_eq!(dock_after["sessions"], 1, "{dock_after}");
    let received = yard_after["frames_received"].as_u64().unwrap()
        - yard_before["frames_received"].as_u64().unwrap();
    let expected = 10.0 * t0.elapsed().as_secs_f64();
    assert!(
        received as f64 >= 0.8 * expected,
        "yard received {received} frames in {:?} (10 fps clip)",
        t0.elapsed()
    );

    // One step back through the API: the corner again, in the file too.
    let before_rollback = std::fs::read_to_string(&gw.config_path).unwrap();
    assert!(before_rollback.contains("\"dock\""), "{before_rollback}");
    let (status, back) = admin.json(Method::POST, "/api/config/rollback", None).await;
    assert_eq!(status, 200, "{back}");
    let file = std::fs::read_to_string(&gw.config_path).unwrap();
    assert!(
        file.contains("[0.02, 0.02]") && !file.contains("[1.0, 1.0]"),
        "{file}"
    );
}

/// The file's bytes once the daemon has written it (bounded wait).
async fn wait_for_file(path: &std::path::Path) -> Vec<u8> {
    assert!(
        wait_until(Duration::from_secs(60), || path.is_file()).await,
        "{} never appeared",
        path.display()
    );
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_to_its_openapi_document_under_schemathesis() {
    // A configured certificate (as a site with its own CA would give): served as is, its
    // fingerprint in the log, no self-signed one made.
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("site.crt"), dir.path().join("site.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let web = format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"",
        cert.display(),
        key.display()
    );
    let mut gw = gateway_with(Extras {
        web: &web,
        ..Extras::default()
    })
    .await;
    let admin = admin(&gw, made.cert.pem().as_bytes()).await;
    let fp = fingerprint(made.cert.der());
    let log = std::fs::read_to_string(&gw.log).unwrap();
    assert!(log.contains(&fp), "fingerprint not logged:\n{log}");
    assert!(!gw.dir.path().join("data/web/cert.pem").exists());

    // Schemathesis generates requests from the document and checks every answer against it.
    // /api/events is a stream that never ends; /readyz answers 503 by contract when no camera
    // streams (as after the fuzzer deletes one; tested in the probes test), which
    // not_a_server_error would count as a failure.
    let report = repo().join("target/test-artifacts/schemathesis");
    let _ = std::fs::remove_dir_all(&report);
    let mut run = std::process::Command::new("schemathesis");
    run.arg("run")
        .arg(format!("{}/api/openapi.json", admin.base))
        .args(["--tls-verify"])
        .arg(&cert)
        .args(["-H", &format!("Authorization: Bearer {}", admin.token)])
        .args(["--exclude-path", "/api/events", "--exclude-path", "/readyz"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "20", "--seed", "20261202"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "20", "--max-time", "120"])
        .args(["--workers", "1", "--no-color"])
        // Nothing kept between runs: no example database, and its working files in a
        // scratch folder, not the checkout.
        .args(["--generation-database", "none"])
        .current_dir(dir.path())
        .args(["--report", "junit", "--report-dir"])
        .arg(&report);
    let out = output_within(run, 240, "schemathesis (scripts/setup installs it)").await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{text}\ndaemon log:\n{}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    // It did test every other documented operation (a run that found nothing to call also
    // exits 0): one JUnit test case each, none failed.
    let (_, doc) = admin
        .json(reqwest::Method::GET, "/api/openapi.json", None)
        .await;
    let operations: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| !["/api/events", "/readyz"].contains(&path.as_str()))
        .flat_map(|(path, item)| {
            let methods: Vec<String> = item.as_object().unwrap().keys().cloned().collect();
            methods
                .into_iter()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let junit = std::fs::read_dir(&report)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "xml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("a JUnit report");
    assert!(operations.len() >= 20, "{operations:?}");
    for op in &operations {
        assert!(
            junit.contains(&format!("<testcase name=\"{op}\"")),
            "{op} not tested:\n{junit}\n{text}"
        );
    }
    assert!(
        !junit.contains("<failure") && !junit.contains("<error"),
        "{junit}"
    );
    assert!(
        gw.daemon.0.try_wait().unwrap().is_none(),
        "the daemon died under schemathesis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_link_runs_over_mqtts_with_a_device_certificate() {
    // The broker authenticates devices by certificate on its TLS port; the fleet console
    // (the test) listens on the plain one.
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki(certs.path());
    let tls = free_port();
    let listener = format!(
        "listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\n",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let url = format!("mqtts://127.0.0.1:{tls}");
    let files = |ca: &std::path::Path| {
        format!(
            "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        )
    };
    let good = files(&pki.ca);
    let mut gw = gateway_with(Extras {
        control: &good,
        broker: &listener,
        control_url: Some(&url),
        ..Extras::default()
    })
    .await;
    let status = "watchpost/test-gw/status";
    assert!(
        wait_until(Duration::from_secs(30), || last(&gw.seen, status)
            .as_deref()
            == Some("online")
            && health_of(&gw.seen).is_some())
        .await,
        "no online/health over mqtts; log:\n{}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    // The last will travels over the TLS session too.
    gw.daemon.0.kill().unwrap();
    let _ = gw.daemon.0.wait();
    assert!(
        wait_until(Duration::from_secs(20), || last(&gw.seen, status)
            .as_deref()
            == Some("offline"))
        .await,
        "no offline after SIGKILL over mqtts"
    );

    // A gateway that does not trust the broker's CA never connects, and says why (on a
    // fresh broker: the first one's TLS port is freed with it).
    drop(gw);
    let wrong = files(&pki.other_ca);
    let gw = gateway_with(Extras {
        control: &wrong,
        broker: &listener,
        control_url: Some(&url),
        ..Extras::default()
    })
    .await;
    let log = || std::fs::read_to_string(&gw.log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || log()
            .contains("fleet link down"))
        .await,
        "{}",
        log()
    );
    assert!(
        log().to_lowercase().contains("certificate"),
        "the reason does not name the certificate:\n{}",
        log()
    );
    assert_eq!(
        last(&gw.seen, status),
        None,
        "connected with an untrusted CA"
    );
}
