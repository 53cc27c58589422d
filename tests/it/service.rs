//! The daemon under a real notify socket, as systemd runs it (`Type=notify`, `WatchdogSec=`):
//! READY=1 after start, WATCHDOG=1 while healthy, none while the outbox is wedged (another
//! process holds SQLite's write lock), and pings again once it is released.

use crate::common;
use crate::common::{bin, clip, secret_key, wait_until, write_config, PERSON_RULE};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use watchpost::demo::{Receiver, RtspClipServer};

/// Every datagram the daemon sends, with when it arrived.
type Messages = Arc<Mutex<Vec<(Instant, String)>>>;

fn listen(socket: UnixDatagram) -> Messages {
    let got: Messages = Arc::default();
    let out = got.clone();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        // Bounded: the test lasts well under two minutes.
        let end = Instant::now() + Duration::from_secs(180);
        while Instant::now() < end {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                out.lock().unwrap().push((Instant::now(), text));
            }
        }
    });
    got
}

fn count(got: &Messages, line: &str, since: Instant) -> usize {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(at, m)| *at >= since && m.lines().any(|l| l == line))
        .count()
}

fn last_status(got: &Messages) -> String {
    got.lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|(_, m)| m.lines().find_map(|l| l.strip_prefix("STATUS=")))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_then_watchdog_only_while_the_pipeline_makes_progress() {
    let dir = tempfile::tempdir().unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let cam_url = format!("rtsp://127.0.0.1:{}/clip", server.port());
    let config = write_config(dir.path(), &cam_url, &receiver.url(), PERSON_RULE);
    let sock_path = dir.path().join("notify.sock");
    let got = listen(UnixDatagram::bind(&sock_path).unwrap());
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let started = Instant::now();
    let mut daemon = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000") // 2 s: a check every second
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default();

    let ready = wait_until(Duration::from_secs(60), || {
        count(&got, "READY=1", started) == 1
    })
    .await;
    assert!(ready, "no READY=1:\n{}", read_log());
    let ready_at = got
        .lock()
        .unwrap()
        .iter()
        .find(|(_, m)| m.contains("READY=1"))
        .map(|(t, _)| *t);
    println!(
        "READY=1 {} ms after spawn",
        ready_at.map_or(0, |t| t.duration_since(started).as_millis())
    );
    let healthy_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pings = count(&got, "WATCHDOG=1", healthy_from);
    assert!(pings >= 3, "{pings} watchdog pings in 4 s while healthy");
    let status = last_status(&got);
    assert!(
        status.starts_with("cameras ") && status.contains("pending"),
        "STATUS= line: {status:?}"
    );

    // Wedge the outbox: another process takes SQLite's write lock and keeps it.
    let outbox = dir.path().join("data/outbox.db");
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys,time\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked',flush=True)\n\
             time.sleep(8)\n\
             c.execute('ROLLBACK')\n",
        )
        .arg(&outbox)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
    }
    // A ping already on its way may land within the first check period.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let wedged_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let wedged_pings = count(&got, "WATCHDOG=1", wedged_from);
    let wedged_status = last_status(&got);
    holder.wait().unwrap();

    // Released: pings come back.
    let recovered = wait_until(Duration::from_secs(20), || {
        count(&got, "WATCHDOG=1", wedged_from + Duration::from_secs(5)) >= 2
    })
    .await;
    let stopped = common::stop(&mut daemon).await;
    let log = read_log();
    assert_eq!(
        wedged_pings, 0,
        "watchdog pings while the outbox was wedged; status {wedged_status:?}"
    );
    assert!(
        wedged_status.contains("UNHEALTHY: outbox not answering"),
        "status while wedged: {wedged_status:?}"
    );
    assert!(recovered, "no pings after the outbox came back:\n{log}");
    assert!(
        log.contains("withholding the watchdog ping"),
        "the log says why:\n{log}"
    );
    assert!(
        stopped.is_some_and(|s| s.success()),
        "daemon did not stop cleanly on SIGTERM: {stopped:?}"
    );
    assert!(count(&got, "STOPPING=1", started) == 1, "STOPPING=1 sent");
}
