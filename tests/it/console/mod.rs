//! The fleet console (`watchpost-console`, the real binary) with real `watchpost run`
//! gateways on the bundled clip, a real mosquitto, and SQLite or a real PostgreSQL (a
//! throwaway cluster made here with initdb/pg_ctl). Helpers here, one file per subject.

mod alarms;
mod api;
mod browser;
mod control;
mod fleet;
mod replicas;
mod tls;

use crate::common::{self, bin, clip, free_port, repo, wait_until};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The console binary beside the gateway's (`cargo build --workspace` makes it; scripts/test
/// does before the suite).
fn console_bin() -> PathBuf {
    let p = bin().with_file_name("watchpost-console");
    assert!(
        p.is_file(),
        "{} is missing: build it with `cargo build -p watchpost-console` (scripts/test does)",
        p.display()
    );
    p
}

/// A process killed and reaped when dropped (a test failing half-way leaves nothing behind).
struct Child(std::process::Child);

impl Child {
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
    fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([sig, &self.pid()])
            .status();
        if sig == "-STOP" {
            // Stopped only once the kernel says so (state T), not when kill returns.
            let stat = format!("/proc/{}/stat", self.pid());
            for _ in 0..200 {
                let state = std::fs::read_to_string(&stat).unwrap_or_default();
                if state
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('T'))
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{} did not stop", self.pid());
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A stopped process must be continued to die of SIGKILL promptly.
        self.signal("-CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` (RUST_LOG=info) with its stderr appended to `log` (a restart adds to it).
fn spawn_logged(mut cmd: std::process::Command, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Child(
        cmd.env("RUST_LOG", "info")
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
    )
}

/// A running console: its log, where it serves, the pinned HTTPS client.
struct Console {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
    port: u16,
    args: Vec<String>,
}

impl Console {
    /// Starts `watchpost-console run` on `data_dir` against the broker on `mqtt_port`,
    /// with `--database url` when given.
    fn start(data_dir: &Path, mqtt_port: u16, database: Option<&str>, replica: &str) -> Self {
        Self::start_with(data_dir, mqtt_port, database, replica, None)
    }

    /// With a config file holding `config` (the flags still override).
    fn start_with(
        data_dir: &Path,
        mqtt_port: u16,
        database: Option<&str>,
        replica: &str,
        config: Option<&str>,
    ) -> Self {
        let port = free_port();
        let mut args = vec![
            "run".to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--replica".into(),
            replica.into(),
        ];
        // A config with its own [broker] (TLS settings) keeps it.
        if !config.is_some_and(|c| c.contains("[broker]")) {
            args.push("--broker".into());
            args.push(format!("mqtt://127.0.0.1:{mqtt_port}"));
        }
        if let Some(url) = database {
            args.push("--database".into());
            args.push(url.into());
        }
        if let Some(text) = config {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, text).unwrap();
            args.push("--config".into());
            args.push(path.display().to_string());
        }
        let mut c = Self {
            child: None,
            dir: data_dir.to_path_buf(),
            log: data_dir.with_extension(format!("{replica}.log")),
            port,
            args,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let mut cmd = std::process::Command::new(console_bin());
        cmd.args(&self.args);
        self.child = Some(spawn_logged(cmd, &self.log));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no goodbye, no flush.
    fn kill(&mut self) {
        self.child = None;
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until it serves (its certificate is written just before it binds).
    async fn client(&self) -> reqwest::Client {
        let cert = self.dir.join("web/cert.pem");
        let up = wait_until(Duration::from_secs(30), || {
            cert.is_file() && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        })
        .await;
        assert!(up, "console not serving in 30 s; log:\n{}", self.log());
        common::pinned_client(&std::fs::read(cert).unwrap(), Duration::from_secs(10))
    }

    /// The one-time setup code from the log.
    fn setup_code(&self) -> Option<String> {
        let log = self.log();
        let at = log.find("setup_code=")? + "setup_code=".len();
        Some(log[at..].split_whitespace().next()?.to_string())
    }

    /// Sets the admin password (with the code from the log) and signs in: (cookie, csrf).
    async fn admin(&self, client: &reqwest::Client) -> (String, String) {
        let up = wait_until(Duration::from_secs(10), || self.setup_code().is_some()).await;
        assert!(up, "no setup code in the log:\n{}", self.log());
        let code = self.setup_code().unwrap();
        let (code, body) = post_json(
            client,
            &self.url("/api/setup"),
            &[],
            serde_json::json!({"code": code, "password": ADMIN_PASSWORD}),
        )
        .await;
        assert_eq!(code, 204, "{body}");
        self.login(client, None, ADMIN_PASSWORD).await
    }

    async fn login(
        &self,
        client: &reqwest::Client,
        user: Option<&str>,
        password: &str,
    ) -> (String, String) {
        let r = client
            .post(self.url("/api/login"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"user": user, "password": password}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login refused");
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_string();
        let body: serde_json::Value =
            serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default();
        (
            cookie,
            body["csrf"].as_str().unwrap_or_default().to_string(),
        )
    }
}

const ADMIN_PASSWORD: &str = "console admin password 1";

/// GET as the session `cookie`; the status and the JSON body (Null when not JSON).
async fn get_json(
    client: &reqwest::Client,
    console: &Console,
    cookie: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let r = client
        .get(console.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or_default())
}

/// POST `body` as JSON with `headers`; the status and the JSON answer (Null when none).
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or_default())
}

/// A `watchpost run` gateway reporting to the broker on `mqtt_port`: its camera `yard` on
/// the bundled clip (its own in-process RTSP server) (and, with `broken`, a camera `gate` that refuses connections), its
/// alerts through an MQTT sink to the same broker (QoS 1, snapshot inline), health every
/// second.
struct Gateway {
    child: Option<Child>,
    _camera: watchpost::demo::RtspClipServer,
    log: PathBuf,
    config: PathBuf,
}

impl Gateway {
    fn start(dir: &Path, device: &str, site: &str, mqtt_port: u16, broken: bool) -> Self {
        Self::start_with(
            dir,
            device,
            site,
            mqtt_port,
            broken,
            &control_key(device),
            "",
        )
    }

    /// With its control key and more config lines (zones, say).
    fn start_with(
        dir: &Path,
        device: &str,
        site: &str,
        mqtt_port: u16,
        broken: bool,
        key: &str,
        extra: &str,
    ) -> Self {
        // A camera server of its own: gateways sharing one media have been seen to wait
        // 30 s for it.
        let camera = camera();
        let rtsp = camera.url();
        let gate = if broken {
            format!(
                "[[camera]]\nname = \"gate\"\nurl = \"rtsp://127.0.0.1:{}/stream1\"\n",
                free_port()
            )
        } else {
            String::new()
        };
        let config = format!(
            r#"[device]
id = "{device}"
site = "{site}"
data_dir = "{data}"

[model]
path = "{repo}/models/nanodet-416.onnx"
labels = "{repo}/models/coco80.txt"
threads = 1

[[camera]]
name = "yard"
url = "{rtsp}"
detect_fps = 4

{gate}
{extra}
[[rule]]
name = "person-seen"
labels = ["person"]
min_confidence = 0.5
cooldown_seconds = 2

[[sink]]
name = "console"
kind = "mqtt"
url = "mqtt://127.0.0.1:{mqtt_port}"
topic = "watchpost/{{device}}/alerts/{{camera}}"
qos = 1
secret = "{secret}"
include_snapshot = "inline"

[control.mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
health_interval_seconds = 1
control_key = "{key}"
"#,
            data = dir.join(format!("{device}-data")).display(),
            repo = repo().display(),
            secret = common::SECRET,
        );
        let path = dir.join(format!("{device}.toml"));
        std::fs::write(&path, config).unwrap();
        let mut g = Self {
            child: None,
            _camera: camera,
            log: dir.join(format!("{device}.log")),
            config: path,
        };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(["run", "--config"]).arg(&self.config);
        self.child = Some(spawn_logged(cmd, &self.log));
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            c.signal(sig);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Each test gateway's control key (what the console will hold after enrolment).
fn control_key(device: &str) -> String {
    format!("control-key-of-{device}-0123456789")
}

/// The gateways the console lists, by device name.
async fn gateways(
    client: &reqwest::Client,
    console: &Console,
    cookie: &str,
) -> Vec<serde_json::Value> {
    let (code, body) = get_json(client, console, cookie, "/api/gateways").await;
    assert_eq!(code, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

fn state_of(list: &[serde_json::Value], device: &str) -> Option<String> {
    list.iter()
        .find(|g| g["device"] == device)
        .and_then(|g| g["state"].as_str().map(str::to_string))
}

/// Polls the gateway list until `device` is in `state` (bounded by `secs`).
async fn until_state(
    client: &reqwest::Client,
    console: &Console,
    cookie: &str,
    device: &str,
    state: &str,
    secs: u64,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if state_of(&gateways(client, console, cookie).await, device).as_deref() == Some(state) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// A throwaway PostgreSQL cluster (Debian's `postgresql` package): initdb in a temp dir,
/// `pg_ctl start` on a loopback port, trust authentication; stopped and removed on drop.
/// As root, the server runs as `nobody` (PostgreSQL refuses to run as root).
pub struct Postgres {
    pub url: String,
    data: PathBuf,
    as_user: Option<&'static str>,
    _dir: tempfile::TempDir,
}

fn pg_bin(name: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    let p = versions
        .last()
        .map(|v| v.join("bin").join(name))
        .unwrap_or_default();
    assert!(
        p.is_file(),
        "{name} not found under {}: install Debian's postgresql package (scripts/setup does)",
        root.display()
    );
    p
}

impl Postgres {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = common::is_root();
        let as_user = root.then_some("nobody");
        if root {
            let _ = std::process::Command::new("chown")
                .args(["-R", "nobody", &dir.path().display().to_string()])
                .status();
            // The temp dir's parents must be searchable by nobody.
            let _ = std::process::Command::new("chmod")
                .args(["755", &dir.path().display().to_string()])
                .status();
        }
        let data = dir.path().join("pg");
        let port = free_port();
        let run = |args: Vec<String>| {
            let mut cmd = match as_user {
                Some(u) => {
                    let mut c = std::process::Command::new("runuser");
                    c.args(["-u", u, "--"]).args(&args);
                    c
                }
                None => {
                    let mut c = std::process::Command::new(&args[0]);
                    c.args(&args[1..]);
                    c
                }
            };
            let out = cmd.output().expect("run a PostgreSQL tool");
            assert!(
                out.status.success(),
                "{args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(vec![
            pg_bin("initdb").display().to_string(),
            "-D".into(),
            data.display().to_string(),
            "--auth=trust".into(),
            "-U".into(),
            "watchpost".into(),
            "--no-sync".into(),
        ]);
        run(vec![
            pg_bin("pg_ctl").display().to_string(),
            "-D".into(),
            data.display().to_string(),
            "-l".into(),
            dir.path().join("pg.log").display().to_string(),
            "-w".into(),
            "-o".into(),
            format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
                dir.path().display()
            ),
            "start".into(),
        ]);
        Self {
            url: format!("postgres://watchpost@127.0.0.1:{port}/postgres"),
            data,
            as_user,
            _dir: dir,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let args = [
            pg_bin("pg_ctl").display().to_string(),
            "-D".into(),
            self.data.display().to_string(),
            "-m".into(),
            "immediate".into(),
            "stop".into(),
        ];
        let _ = match self.as_user {
            Some(u) => std::process::Command::new("runuser")
                .args(["-u", u, "--"])
                .args(&args)
                .output(),
            None => std::process::Command::new(&args[0])
                .args(&args[1..])
                .output(),
        };
    }
}

/// The bundled clip on an in-process RTSP server, shared by the gateways of a test.
fn camera() -> watchpost::demo::RtspClipServer {
    watchpost::demo::RtspClipServer::start(&clip(), 0).expect("RTSP server")
}

/// A synthetic `alert.fired` in the contract's shape (the gateway's own type).
fn fleet_alert(id: &str, device: &str) -> Vec<u8> {
    use watchpost_contracts::event::{Event, Fired, FIRED};
    serde_json::to_vec(&Event {
        kind: FIRED.to_string(),
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        data: Fired {
            alert_id: id.to_string(),
            device_id: device.to_string(),
            site: "south".into(),
            camera: "yard".into(),
            rule: "person-seen".into(),
            label: "person".into(),
            confidence: 0.9,
            count: 1,
            severity: "high".into(),
            frame_ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            objects: vec![],
            metadata: Default::default(),
            snapshot: None,
            snapshot_jpeg: None,
            line: None,
        },
    })
    .unwrap()
}
