//! Helpers shared by the integration tests: paths, configs, bounded waits, and the
//! independent (Python) signature check.
#![allow(dead_code)]

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use watchpost::demo::Received;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn data(name: &str) -> PathBuf {
    repo().join("tests/data").join(name)
}

/// The fixture photos with oracles (tests/data/*.expected.json).
pub const PHOTOS: [&str; 6] = [
    "dog.jpg",
    "person.jpg",
    "horses.jpg",
    "giraffe.jpg",
    "eagle.jpg",
    "astronaut.png",
];

pub fn clip() -> PathBuf {
    repo().join(watchpost::demo::CLIP)
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_watchpost"))
}

/// A fixed test secret in Standard Webhooks form, and its decoded key.
pub const SECRET: &str = "whsec_dGVzdC1zZWNyZXQtZm9yLXdhdGNocG9zdC10ZXN0cw==";

pub fn secret_key() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("test secret is base64")
}

/// An HTTPS client that trusts only `cert_pem` (the daemon's own certificate), as a
/// technician pinning the fingerprint would.
pub fn pinned_client(cert_pem: &[u8], timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).expect("PEM certificate"))
        .tls_built_in_root_certs(false)
        .timeout(timeout)
        .build()
        .expect("HTTPS client")
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// A config with one camera and one webhook sink, written to `dir/watchpost.toml`.
pub fn write_config(dir: &Path, rtsp_url: &str, receiver_url: &str, rules: &str) -> PathBuf {
    let text = format!(
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
url = "{rtsp_url}"
detect_fps = 5

{rules}

[[sink]]
name = "receiver"
kind = "webhook"
url = "{receiver_url}"
secret = "{SECRET}"
timeout_seconds = 2

[delivery]
retry_schedule_seconds = [0.2, 0.4]
max_backoff_seconds = 0.5
"#,
        data = dir.join("data").display(),
        repo = repo().display(),
    );
    let path = dir.join("watchpost.toml");
    std::fs::write(&path, text).expect("write test config");
    path
}

pub const PERSON_RULE: &str = r#"[[rule]]
name = "person-seen"
labels = ["person"]
min_confidence = 0.5
cooldown_seconds = 1
severity = "high"
metadata = { zone = "test-yard" }"#;

/// Verifies every request with the Python `standardwebhooks` package (or Python's hmac for
/// `hex`); panics with the script's output if any fails.
pub fn verify_with_python(requests: &[Received], mode: &str, secret: &str, header: Option<&str>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let list: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            let headers: serde_json::Map<String, serde_json::Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            serde_json::json!({
                "headers": headers,
                "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
            })
        })
        .collect();
    let file = dir.path().join("requests.json");
    std::fs::write(&file, serde_json::to_vec(&list).expect("json")).expect("write requests");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(repo().join("tests/verify_webhooks.py"))
        .arg(&file)
        .arg(mode)
        .arg(secret);
    if let Some(h) = header {
        cmd.arg(h);
    }
    let out = cmd
        .output()
        .expect("python3 runs (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "independent signature check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A detector spec for a model shipped in models/, with the family's defaults.
pub fn spec(model_file: &str) -> watchpost::detect::DetectorSpec {
    watchpost::detect::DetectorSpec {
        model: repo().join("models").join(model_file),
        labels: repo().join("models/coco80.txt"),
        kind: watchpost::detect::ModelKind::Auto,
        input_size: None,
        threads: 1,
        score_threshold: None,
    }
}

/// A committed-alert stand-in: a small JSON body carrying its id and `n`, for `sinks`.
pub fn new_alert(n: usize, camera: &str, sinks: &[&str]) -> watchpost::outbox::NewAlert {
    let id = ulid::Ulid::new().to_string();
    watchpost::outbox::NewAlert {
        body: format!(r#"{{"type":"alert.fired","data":{{"alert_id":"{id}","n":{n}}}}}"#)
            .into_bytes(),
        alert_id: id,
        created_at: chrono::Utc::now(),
        camera: camera.into(),
        rule: "r".into(),
        severity: "high".into(),
        sinks: sinks
            .iter()
            .map(|s| watchpost::outbox::NewDelivery::to(s))
            .collect(),
    }
}

/// SIGTERM, then up to 10 s for a clean exit (SIGKILL after that); the exit status if it
/// stopped by itself.
pub async fn stop(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..200 {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A retry policy without jitter (so tests can reason about attempt times).
pub fn policy(schedule_ms: &[u64], max_backoff: Duration) -> watchpost::deliver::RetryPolicy {
    watchpost::deliver::RetryPolicy {
        schedule: schedule_ms
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect(),
        max_backoff,
        max_age: Duration::from_secs(3600),
        jitter: false,
    }
}

/// Starts a sink worker on the system clock; cancel the token to stop it.
pub fn run_worker(
    outbox: &watchpost::outbox::SharedOutbox,
    sink: std::sync::Arc<watchpost::deliver::Sink>,
    policy: watchpost::deliver::RetryPolicy,
    concurrency: usize,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let worker = watchpost::deliver::SinkWorker {
        metrics: Default::default(),
        sink,
        outbox: outbox.clone(),
        policy,
        clock: std::sync::Arc::new(watchpost::clock::SystemClock),
        wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        concurrency,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let c = cancel.clone();
    (
        cancel,
        tokio::spawn(async move { worker.run(c).await.expect("worker") }),
    )
}

// A real mosquitto on loopback for the MQTT tests.

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto process; dropping it kills and reaps it.
pub struct Broker(pub std::process::Child);

impl Broker {
    /// SIGTERM: the broker saves its sessions and exits.
    pub fn stop(&mut self) {
        let _ = std::process::Command::new("kill")
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

pub fn mosquitto(dir: &Path, port: u16) -> Broker {
    mosquitto_with(dir, port, "")
}

/// `extra`: more mosquitto.conf lines (e.g. a TLS listener) after the plain listener.
pub fn mosquitto_with(dir: &Path, port: u16, extra: &str) -> Broker {
    let conf = dir.join("mosquitto.conf");
    // Started as root, mosquitto would drop to its own user, which cannot write the test's
    // folder, and silently persist nothing: keep it as whoever runs the test.
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    // Persistence: sessions (the subscriber's queued messages, the sink's in-flight
    // publishes) survive a broker restart, as on a real site broker.
    std::fs::write(
        &conf,
        format!(
            "user {me}\nper_listener_settings false\nallow_anonymous true\npersistence true\npersistence_location {}/\nlistener {port} 127.0.0.1\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
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

/// An MQTT 5 client that (re)subscribes to `filter` on every connection and hands each
/// publish to `on_publish`; runs until the test ends.
pub fn listen(
    opts: rumqttc::v5::MqttOptions,
    filter: &str,
    mut on_publish: impl FnMut(rumqttc::v5::mqttbytes::v5::Publish) + Send + 'static,
) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event};
    let filter = filter.to_string();
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client
                        .subscribe(filter.clone(), rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                        .await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => on_publish(p),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
}

/// PEM files for a TLS broker: a CA, a server certificate for 127.0.0.1 signed by it, a
/// client certificate signed by it, and a second, unrelated CA.
pub struct Pki {
    pub ca: std::path::PathBuf,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
    pub client_cert: std::path::PathBuf,
    pub client_key: std::path::PathBuf,
    pub other_ca: std::path::PathBuf,
}

pub fn pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let new_ca = |cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        (cert, key)
    };
    let (ca, ca_key) = new_ca("watchpost test CA");
    let (other, _) = new_ca("somebody else's CA");

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "gw-1");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &ca, &ca_key).unwrap();

    Pki {
        ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", server.pem()),
        server_key: write("server.key", server_key.serialize_pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client.key", client_key.serialize_pem()),
        other_ca: write("other-ca.pem", other.pem()),
    }
}

/// The test's own user id (`id -u`).
pub fn own_uid() -> String {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "0".into())
}

pub fn is_root() -> bool {
    own_uid() == "0"
}

/// Every operation of an OpenAPI document that declares `security`, with its path's
/// `{placeholders}` filled from `fill`.
pub fn secured_operations(
    doc: &serde_json::Value,
    fill: &[(&str, &str)],
) -> Vec<(reqwest::Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            if op.get("security").is_none() {
                continue;
            }
            let mut filled = path.clone();
            for (k, v) in fill {
                filled = filled.replace(k, v);
            }
            ops.push((method.to_uppercase().parse().expect("method"), filled));
        }
    }
    ops
}

/// A schemathesis run against an OpenAPI document (`{base}/api/openapi.json`).
pub struct Schemathesis<'a> {
    pub base: &'a str,
    /// The server's certificate (PEM) to trust.
    pub cert: &'a Path,
    pub bearer: &'a str,
    /// Paths left out (streams that never end, probes that may answer 503 by contract).
    pub exclude: &'a [&'a str],
    pub seed: &'a str,
    pub max_examples: u32,
    pub max_time_s: u32,
    pub request_timeout_s: u32,
    /// Where its JUnit report goes (emptied first).
    pub report: &'a Path,
    /// Its scratch folder (not the checkout).
    pub scratch: &'a Path,
}

impl Schemathesis<'_> {
    /// Runs it (no 5xx, every answer as documented) and checks that every documented
    /// operation but the excluded ones was tested and none failed; panics with its output.
    pub async fn passes(&self, doc: &serde_json::Value, context: impl Fn() -> String) {
        let _ = std::fs::remove_dir_all(self.report);
        let mut run = std::process::Command::new("schemathesis");
        run.arg("run")
            .arg(format!("{}/api/openapi.json", self.base))
            .arg("--tls-verify")
            .arg(self.cert)
            .args(["-H", &format!("Authorization: Bearer {}", self.bearer)]);
        for p in self.exclude {
            run.args(["--exclude-path", p]);
        }
        run.args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", &self.max_examples.to_string(), "--seed", self.seed])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", &self.request_timeout_s.to_string()])
        .args(["--max-time", &self.max_time_s.to_string()])
        .args(["--workers", "1", "--no-color"])
        // Nothing kept between runs: no example database, its files in a scratch folder.
        .args(["--generation-database", "none"])
        .current_dir(self.scratch)
        .args(["--report", "junit", "--report-dir"])
        .arg(self.report);
        let bound = std::time::Duration::from_secs(u64::from(self.max_time_s) * 2 + 60);
        let out = tokio::time::timeout(bound, tokio::task::spawn_blocking(move || run.output()))
            .await
            .expect("schemathesis finished in time")
            .unwrap()
            .expect("schemathesis (scripts/setup installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}\n{}", context());
        let junit = std::fs::read_dir(self.report)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "xml"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .expect("a JUnit report");
        // A run that found nothing to call also exits 0: one test case per operation.
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            if self.exclude.contains(&path.as_str()) {
                continue;
            }
            for m in item.as_object().expect("operations").keys() {
                let op = format!("{} {path}", m.to_uppercase());
                assert!(
                    junit.contains(&format!("<testcase name=\"{op}\"")),
                    "{op} not tested:\n{text}"
                );
                operations += 1;
            }
        }
        assert!(operations >= 15, "only {operations} operations documented");
        assert!(
            !junit.contains("<failure") && !junit.contains("<error"),
            "{junit}"
        );
    }
}
