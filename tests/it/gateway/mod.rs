//! A running gateway daemon (the real binary), tried from outside as an operator would. Shared
//! helpers here, one file per subject. Health and metrics: the HTTPS probes `/healthz`,
//! `/readyz`, `/metrics` (checked by Prometheus' own `promtool`), and the MQTT fleet link on a
//! real mosquitto: retained `status` (`online`, then `offline` from the last will when the
//! process is killed with SIGKILL) and retained `health`. No secret shows anywhere.

mod api;
mod fleet;
mod lines;
mod probes;
mod web;

use crate::common;
use crate::common::{bin, clip, free_port, repo, secret_key, wait_until, SECRET};
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
    /// The clip the "yard" camera streams (default: the bundled demo clip).
    clip: Option<&'a std::path::Path>,
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
        clip: yard_clip,
    } = extras;
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let broker = common::mosquitto_with(dir.path(), mqtt_port, broker_extra);
    let control_url = control_url
        .map(str::to_string)
        .unwrap_or_else(|| format!("mqtt://127.0.0.1:{mqtt_port}"));
    let seen = watch(mqtt_port, "fleet-console");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let server = RtspClipServer::start(yard_clip.unwrap_or(&clip()), 0).expect("RTSP server");
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

fn health_of(seen: &Seen) -> Option<serde_json::Value> {
    last(seen, "watchpost/test-gw/health").and_then(|h| serde_json::from_str(&h).ok())
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

/// Every operation of an OpenAPI document that declares security, its path parameters
/// filled with names that exist in the test config.
fn secured_operations(doc: &serde_json::Value) -> Vec<(reqwest::Method, String)> {
    common::secured_operations(
        doc,
        &[
            ("{section}", "camera"),
            ("{name}", "yard"),
            ("{id}", "01M8WGYVKKE1TG5KZSZ4YR3XCX"),
        ],
    )
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
    let client = common::pinned_client(cert_pem, Duration::from_secs(20));
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

    /// As [`Admin::json`] with extra request headers; also returns the answer's `ETag`.
    async fn json_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value, Option<String>) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.expect("HTTPS request");
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or_default(),
            etag,
        )
    }

    async fn camera(&self, name: &str) -> Option<serde_json::Value> {
        let (_, cams) = self.json(reqwest::Method::GET, "/api/cameras", None).await;
        cams.as_array()?.iter().find(|c| c["name"] == name).cloned()
    }

    /// Frames the detector has taken from `camera` so far.
    async fn detected(&self, camera: &str) -> u64 {
        self.camera(camera)
            .await
            .and_then(|c| c["frames_detected"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until the detector has looked at `frames` more frames of `camera` (or 120 s):
    /// "a loop of the clip" measured in work done, not wall time, so a loaded machine (the
    /// suite runs two tests at once) waits longer instead of checking too early.
    async fn until_detected(&self, camera: &str, frames: u64) {
        let start = self.detected(camera).await;
        for _ in 0..240 {
            if self.detected(camera).await >= start + frames {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The file's bytes once the daemon has written it (bounded wait).
/// Waits until the daemon's HTTPS server listens (its log says so; the certificate is made
/// just before the bind) and returns the certificate to pin.
async fn serving(gw: &Gateway) -> Vec<u8> {
    let log = || std::fs::read_to_string(&gw.log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || log().contains("web: listening")).await,
        "{}",
        log()
    );
    std::fs::read(gw.dir.path().join("data/web/cert.pem")).unwrap()
}

async fn wait_for_file(path: &std::path::Path) -> Vec<u8> {
    assert!(
        wait_until(Duration::from_secs(60), || path.is_file()).await,
        "{} never appeared",
        path.display()
    );
    std::fs::read(path).unwrap()
}
