//! Faults of the disk and the database itself, on real SQLite files, real receivers on
//! loopback and the real daemon: rows that cannot be read, a lost or replaced key, a damaged
//! page, a discarded write-ahead log, a full filesystem (a tmpfs the test mounts), and a sink
//! worker that dies (a test-only failpoint). Nothing committed may be lost without a word.

use crate::common;
use crate::common::{bin, clip, secret_key, wait_until, write_config, PERSON_RULE, SECRET};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use watchpost::config::SinkConfig;
use watchpost::deliver::{Sink, WebhookSink};
use watchpost::demo::{Answer, Receiver, RtspClipServer};
use watchpost::outbox::{Outbox, RowState, SharedOutbox};

fn sink(url: &str) -> Arc<Sink> {
    let toml = format!(
        "name = \"receiver\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\ntimeout_seconds = 2"
    );
    let cfg: SinkConfig = toml::from_str(&toml).unwrap();
    Arc::new(Sink::Webhook(WebhookSink::from_config(&cfg).unwrap()))
}

/// Runs a worker for `outbox` into `receiver` until `done` holds (at most 20 s).
async fn deliver_until(
    outbox: &SharedOutbox,
    receiver: &Receiver,
    done: impl FnMut() -> bool,
) -> bool {
    let (cancel, worker) = common::run_worker(
        outbox,
        sink(&receiver.url()),
        common::policy(&[50, 100], Duration::from_millis(200)),
        4,
    );
    let ok = wait_until(Duration::from_secs(20), done).await;
    cancel.cancel();
    worker.await.unwrap();
    ok
}

/// The alert ids a receiver acknowledged (HTTP 200).
fn acknowledged(receiver: &Receiver) -> BTreeSet<String> {
    receiver
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| Some(r.json()?["data"]["alert_id"].as_str()?.to_string()))
        .collect()
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_cannot_be_read_or_verified_are_dead_lettered_with_a_reason_and_the_rest_flow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let alerts: Vec<_> = (0..18)
        .map(|n| common::new_alert(n, "yard", &["receiver"]))
        .collect();
    Outbox::open(&path).unwrap().commit(&alerts).unwrap();
    // A body stored as TEXT, a body cut short, a seal that is not the body's.
    let db = raw(&path);
    db.execute(
        "UPDATE alerts SET body = replace(CAST(body AS TEXT), 'fired', 'fixed') WHERE seq = 1",
        [],
    )
    .unwrap();
    db.execute(
        "UPDATE alerts SET body = substr(body, 1, 10) WHERE seq = 2",
        [],
    )
    .unwrap();
    db.execute("UPDATE alerts SET seal = zeroblob(32) WHERE seq = 3", [])
        .unwrap();
    drop(db);

    let outbox = SharedOutbox::new(Outbox::open(&path).unwrap());
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let settled = deliver_until(&outbox, &receiver, || {
        let s = outbox.with(|o| o.stats()).unwrap();
        s.delivered == 15 && s.dead == 3
    })
    .await;
    assert!(settled, "{:?}", outbox.with(|o| o.stats()));
    let want: BTreeSet<String> = alerts[3..].iter().map(|a| a.alert_id.clone()).collect();
    assert_eq!(
        acknowledged(&receiver),
        want,
        "the 15 sound alerts, each delivered"
    );
    let dead = outbox.with(|o| o.list(Some(RowState::Dead), 10)).unwrap();
    let reason = |alert: usize| {
        dead.iter()
            .find(|r| r.alert_id == alerts[alert].alert_id)
            .and_then(|r| r.last_error.clone())
            .unwrap_or_else(|| panic!("alert {alert} not dead-lettered: {dead:?}"))
    };
    assert_eq!(
        reason(0),
        "row cannot be read: body is text, expected bytes"
    );
    assert_eq!(
        reason(1),
        "integrity check failed: body does not match its commit seal"
    );
    assert_eq!(
        reason(2),
        "integrity check failed: body does not match its commit seal"
    );
    // The page's alert list still reads the TEXT row.
    let recent = outbox.with(|o| o.recent_alerts(50)).unwrap();
    assert_eq!(recent.len(), 18);
}

/// Every row of the outbox, as text, to prove a refused open changed nothing.
fn dump(path: &Path) -> String {
    let db = raw(path);
    let mut out = String::new();
    for table in ["alerts", "deliveries", "attempts"] {
        let mut st = db
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
            .unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..n {
                out.push_str(&format!("{:?}|", r.get_ref(i).unwrap()));
            }
            out.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_replaced_key_with_pending_rows_refuses_to_start_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "rtsp://127.0.0.1:9/none",
        "http://127.0.0.1:9/",
        "",
    );
    let path = dir.path().join("data/outbox.db");
    let key = dir.path().join("data/outbox.key");
    let alerts: Vec<_> = (0..18)
        .map(|n| common::new_alert(n, "yard", &["receiver"]))
        .collect();
    Outbox::open(&path).unwrap().commit(&alerts).unwrap();
    let before = dump(&path);
    let genuine = std::fs::read(&key).unwrap();

    // Lost: refused, no key made, nothing changed. The daemon says so too, and exits.
    std::fs::remove_file(&key).unwrap();
    let err = Outbox::open(&path).err().expect("refused").to_string();
    assert!(
        err.contains("holds 18 alerts (18 still to deliver)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} is missing", key.display())),
        "{err}"
    );
    assert!(err.contains("Restore the outbox.key"), "{err}");
    assert!(!key.exists(), "no new key may be made");
    let run = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("outbox.key is missing"), "{stderr}");
    assert!(!key.exists(), "the daemon made no key either");

    // Replaced: refused, naming the key file.
    std::fs::write(&key, [7u8; 32]).unwrap();
    let err = Outbox::open(&path).err().expect("refused").to_string();
    assert!(err.contains("sealed with another key"), "{err}");
    assert!(err.contains(&key.display().to_string()), "{err}");
    assert_eq!(dump(&path), before, "no row changed");

    // The backed-up key restores everything: all 18 still pending, none dead.
    std::fs::write(&key, &genuine).unwrap();
    let o = Outbox::open(&path).unwrap();
    let s = o.stats().unwrap();
    assert_eq!((s.pending, s.dead), (18, 0));

    // Even with everything delivered, a lost key is not replaced while sealed alerts remain.
    let conn = raw(&path);
    conn.execute("UPDATE deliveries SET state = 'delivered'", [])
        .unwrap();
    drop(conn);
    o.stats().unwrap();
    drop(o);
    std::fs::remove_file(&key).unwrap();
    let err = Outbox::open(&path).err().expect("refused").to_string();
    assert!(
        err.contains("holds 18 alerts (0 still to deliver)"),
        "{err}"
    );
    assert!(!key.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_page_is_moved_aside_a_fresh_outbox_serves_and_salvage_requeues() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let path = dir.path().join("data/outbox.db");
    let alerts: Vec<_> = (0..30)
        .map(|n| common::new_alert(n, "yard", &["receiver"]))
        .collect();
    Outbox::open(&path).unwrap().commit(&alerts).unwrap();
    // Garbage over one index page (the table pages stay readable for the salvage).
    let root: i64 = raw(&path)
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'deliveries_queue'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096 * (root as usize - 1);
    bytes[page..page + 4096].fill(0xA5);
    std::fs::write(&path, &bytes).unwrap();

    // The daemon starts anyway: the damaged file moved aside, a fresh outbox, and it says so.
    let daemon = start_daemon(dir.path(), &receiver, "rtsp://127.0.0.1:9/none", &[]);
    let client = daemon.client().await;
    let told = wait_until(Duration::from_secs(60), || {
        daemon.ready(&client)["notices"]
            .to_string()
            .contains("was damaged")
    })
    .await;
    assert!(told, "{} {}", daemon.ready(&client), daemon.log());
    let notices = daemon.ready(&client)["notices"].clone();
    assert!(daemon.log().contains("moved aside to"), "{}", daemon.log());
    let aside = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("outbox.db.corrupt-") && !n.ends_with("-wal") && !n.ends_with(".hwm")
        })
        .expect("the damaged file, kept");
    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "moved, not changed");
    assert!(
        notices
            .to_string()
            .contains(&format!("watchpost outbox salvage {}", aside.display())),
        "{notices}"
    );
    let fresh = Outbox::open(&path).unwrap().stats().unwrap();
    assert_eq!(fresh.alerts, 0, "a fresh outbox");

    // The operator's salvage while the daemon runs; the daemon delivers what it queues.
    let config = dir.path().join("watchpost.toml");
    let out = Command::new(bin())
        .args(["outbox", "--config"])
        .arg(&config)
        .arg("salvage")
        .arg(&aside)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("queued again: 30 alerts (30 deliveries)"),
        "{stdout}"
    );
    let all: BTreeSet<String> = alerts.iter().map(|a| a.alert_id.clone()).collect();
    let got = wait_until(Duration::from_secs(30), || {
        acknowledged(&receiver).is_superset(&all)
    })
    .await;
    assert!(
        got,
        "salvaged alerts delivered by the daemon: {}",
        daemon.log()
    );
    // A second salvage finds them all present: nothing twice.
    let again = Command::new(bin())
        .args(["outbox", "--config"])
        .arg(&config)
        .args(["salvage", "--json"])
        .arg(&aside)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["requeued_alerts"], 0, "{report}");
    assert_eq!(report["already_present"], 30, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_lost_with_a_truncated_write_ahead_log_are_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let mut o = Outbox::open(&path).unwrap();
    for n in 0..12 {
        o.commit(&[common::new_alert(n, "yard", &["receiver"])])
            .unwrap();
    }
    // A reader keeps the WAL from being checkpointed and removed on close: the files as a
    // power cut would leave them.
    let reader = raw(&path);
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0))
        .unwrap();
    drop(o);
    let copy = tempfile::tempdir().unwrap();
    let cp = copy.path().join("outbox.db");
    for (from, to) in [
        (path.clone(), cp.clone()),
        (
            dir.path().join("outbox.db-wal"),
            copy.path().join("outbox.db-wal"),
        ),
        (
            dir.path().join("outbox.key"),
            copy.path().join("outbox.key"),
        ),
        (
            dir.path().join("outbox.hwm"),
            copy.path().join("outbox.hwm"),
        ),
    ] {
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    drop(reader);
    let wal = copy.path().join("outbox.db-wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let (o, condition) = Outbox::open_checked(&cp).unwrap();
    let kept = o.stats().unwrap().alerts;
    assert!(kept < 12, "half the log is gone, {kept} alerts left");
    let notices = condition.report().notices;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let want = format!(
        "{} committed alerts (sequence {}..=12) are missing",
        12 - kept,
        kept + 1
    );
    assert!(notices[0].contains(&want), "{notices:?}");
    drop(o);
    // Told once: the next start is quiet.
    let (_o, again) = Outbox::open_checked(&cp).unwrap();
    assert!(again.report().notices.is_empty());
}

/// A daemon with `[web]` on `dir`'s config, its log in `dir/name.log`.
struct Daemon {
    child: Child,
    log: PathBuf,
    base: String,
    data: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon(dir: &Path, receiver: &Receiver, camera: &str, env: &[(&str, &str)]) -> Daemon {
    let config = write_config(dir, camera, &receiver.url(), PERSON_RULE);
    let port = common::free_port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[web]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&config, text).unwrap();
    let log = dir.join("daemon.log");
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon {
        child: cmd.spawn().expect("start watchpost run"),
        log,
        base: format!("https://127.0.0.1:{port}"),
        data: dir.join("data"),
    }
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An HTTPS client trusting the daemon's own certificate, once it has made one.
    async fn client(&self) -> reqwest::Client {
        let cert = self.data.join("web/cert.pem");
        assert!(
            wait_until(Duration::from_secs(60), || cert.exists()).await,
            "no web certificate: {}",
            self.log()
        );
        let pem = std::fs::read(&cert).unwrap();
        common::pinned_client(&pem, Duration::from_secs(5))
    }

    /// GET a probe from a blocking poll (the bounded waits take plain closures).
    fn get(&self, client: &reqwest::Client, path: &str) -> Option<String> {
        let url = format!("{}{path}", self.base);
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async { client.get(url).send().await.ok()?.text().await.ok() })
        })
    }

    fn ready(&self, client: &reqwest::Client) -> serde_json::Value {
        self.get(client, "/readyz")
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn metric(&self, client: &reqwest::Client, name: &str) -> f64 {
        self.get(client, "/metrics")
            .and_then(|m| {
                m.lines()
                    .find(|l| l.split_whitespace().next() == Some(name))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0.0)
    }
}

/// The tmpfs a test mounts and unmounts when dropped: as root, or through `sudo -n` (owned
/// by the test's user then). Without either the test fails and says why: a full disk is only
/// real on a real filesystem.
struct Tmpfs {
    at: PathBuf,
    sudo: bool,
}

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let uid = crate::common::own_uid();
        let opts = format!("size={size},uid={uid},mode=0700");
        let attempt = |sudo: bool| {
            let mut cmd = if sudo {
                let mut c = Command::new("sudo");
                c.args(["-n", "mount"]);
                c
            } else {
                Command::new("mount")
            };
            cmd.args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
                .arg(at)
                .output()
        };
        let direct = attempt(false).expect("mount(8)");
        if direct.status.success() {
            println!("disk full: a {size} tmpfs mounted at {}", at.display());
            return Tmpfs {
                at: at.to_path_buf(),
                sudo: false,
            };
        }
        match attempt(true) {
            Ok(o) if o.status.success() => {
                println!("disk full: a {size} tmpfs mounted with sudo at {}", at.display());
                Tmpfs { at: at.to_path_buf(), sudo: true }
            }
            other => panic!(
                "this test fills a real {size} tmpfs and needs root or passwordless sudo to mount it \
                 (mount: {}; sudo: {:?})",
                String::from_utf8_lossy(&direct.stderr).trim(),
                other.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
            ),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut cmd = if self.sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "umount", "-l"]);
            c
        } else {
            let mut c = Command::new("umount");
            c.arg("-l");
            c
        };
        let _ = cmd.arg(&self.at).status();
    }
}

/// Writes to `file` until the filesystem is full; called again, tops it up (space freed
/// since, e.g. the daemon's reserve, is taken too).
fn fill(file: &Path) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    let chunk = vec![0x5Au8; 16 * 1024];
    for _ in 0..4096 {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let small = vec![0u8; 512];
    for _ in 0..64 {
        if f.write_all(&small).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_daemon_unready_and_loses_nothing_once_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let _fs = Tmpfs::mount(&dir.path().join("data"), "3m");
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    receiver.set_answer(Answer::Status(503));
    let daemon = start_daemon(dir.path(), &receiver, &server.url(), &[]);
    let client = daemon.client().await;
    let outbox = daemon.data.join("outbox.db");
    let committed = |o: &Path| {
        Outbox::open(o)
            .and_then(|o| o.stats())
            .map(|s| s.alerts)
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(90), || committed(&outbox) >= 2).await,
        "no alerts committed: {}",
        daemon.log()
    );

    // Full: commits fail, counted; /readyz says why; the daemon stays up.
    let filler = daemon.data.join("filler");
    let unready = wait_until(Duration::from_secs(90), || {
        fill(&filler);
        let r = daemon.ready(&client);
        r["outbox_writable"] == false
            && r["ready"] == false
            && r["problems"].to_string().contains("disk is full")
    })
    .await;
    assert!(unready, "{} {}", daemon.ready(&client), daemon.log());
    assert!(daemon.metric(&client, "watchpost_outbox_commit_failures_total") >= 1.0);
    assert_eq!(daemon.metric(&client, "watchpost_outbox_writable"), 0.0);
    let leftovers: Vec<_> = std::fs::read_dir(daemon.data.join("snapshots"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|n| !n.to_string_lossy().ends_with(".tmp")),
        "snapshot temp files left: {leftovers:?}"
    );

    // Space back, receiver back: everything committed before and after is delivered by the
    // same process.
    std::fs::remove_file(&filler).unwrap();
    receiver.set_answer(Answer::Status(200));
    let pid = daemon.child.id();
    let delivered = wait_until(Duration::from_secs(120), || {
        let r = daemon.ready(&client);
        let Ok(o) = Outbox::open(&outbox) else {
            return false;
        };
        let Ok(s) = o.stats() else { return false };
        r["outbox_writable"] == true
            && s.pending == 0
            && s.alerts > 2
            && acknowledged(&receiver).len() as i64 == s.alerts
    })
    .await;
    assert!(
        delivered,
        "{:?} acknowledged {} {}",
        Outbox::open(&outbox).and_then(|o| o.stats()),
        acknowledged(&receiver).len(),
        daemon.log()
    );
    assert_eq!(daemon.child.id(), pid);
    assert!(
        daemon.log().contains("released the outbox's reserve"),
        "{}",
        daemon.log()
    );

    // Full again, then SIGTERM: the daemon stops well inside systemd's 30 s and names every
    // alert it could not commit.
    let mut daemon = daemon;
    let failing = wait_until(Duration::from_secs(90), || {
        fill(&filler);
        daemon.ready(&client)["outbox_writable"] == false
            && daemon.metric(&client, "watchpost_alerts_uncommitted") >= 1.0
    })
    .await;
    assert!(failing, "{}", daemon.log());
    let t = std::time::Instant::now();
    let status = common::stop(&mut daemon.child).await;
    assert!(
        status.is_some(),
        "still running 10 s after SIGTERM: {}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(t.elapsed() < Duration::from_secs(20));
    assert!(log.contains("alert NOT committed at shutdown"), "{log}");
    assert!(
        log.contains("could not be committed; they are lost"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_worker_that_dies_is_restarted_shown_while_down_and_delivers_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    // The first three starts of the worker panic: restarts after 1, 2 and 4 s.
    let daemon = start_daemon(
        dir.path(),
        &receiver,
        &server.url(),
        &[("WATCHPOST_FAILPOINT_SINK_PANICS", "receiver=3")],
    );
    let client = daemon.client().await;
    let seen_down = wait_until(Duration::from_secs(60), || {
        let r = daemon.ready(&client);
        r["ready"] == false
            && r["sinks"][0]["state"] == "restarting"
            && r["problems"].to_string().contains(
                "sink \\\"receiver\\\" stopped, restarting: the worker panicked: failpoint",
            )
    })
    .await;
    assert!(seen_down, "{} {}", daemon.ready(&client), daemon.log());
    let delivered = wait_until(Duration::from_secs(90), || {
        !acknowledged(&receiver).is_empty()
    })
    .await;
    assert!(delivered, "{}", daemon.log());
    let r = daemon.ready(&client);
    assert_eq!(r["sinks"][0]["state"], "running", "{r}");
    assert_eq!(r["sinks"][0]["restarts"], 3, "{r}");
    assert_eq!(
        daemon.metric(&client, "watchpost_sink_restarts_total{sink=\"receiver\"}"),
        3.0
    );
    assert_eq!(
        daemon.metric(&client, "watchpost_sink_up{sink=\"receiver\"}"),
        1.0
    );
    assert!(daemon.log().contains("sink worker stopped; restarting it"));
}
