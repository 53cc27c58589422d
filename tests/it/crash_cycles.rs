//! Crash proof: the daemon (a child process) is SIGKILLed 20 times at random moments while it
//! commits and delivers alerts; after the last restart every alert ever committed reaches the
//! receiver. Duplicates are allowed (at-least-once) and reported.

use crate::common;
use crate::common::{bin, clip, secret_key, wait_until, write_config};
use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::time::Duration;
use watchpost::demo::{Receiver, RtspClipServer};
use watchpost::outbox::Outbox;

/// Rules that fire on every new object of the clip, so alerts flow all the time.
const BUSY_RULES: &str = r#"[[rule]]
name = "anything"
min_confidence = 0.3
cooldown_seconds = 0

[[rule]]
name = "animals"
labels = ["dog", "horse", "cow", "giraffe", "zebra", "bird", "sheep", "cat"]
min_confidence = 0.3
cooldown_seconds = 0

[tracker]
min_hits = 1
max_age = 1"#;

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_lose_no_committed_alert() {
    let dir = tempfile::tempdir().unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let config = write_config(dir.path(), &server.url(), &receiver.url(), BUSY_RULES);
    let outbox = dir.path().join("data/outbox.db");
    let seed = 20261124;
    let mut rng = Lcg(seed);
    let spawn = |n: usize| {
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(format!("run{n}.log"))).unwrap())
            .spawn()
            .expect("start daemon")
    };
    let committed = || -> BTreeSet<String> {
        Outbox::open(&outbox)
            .and_then(|o| o.list(None, 1_000_000))
            .map(|rows| rows.into_iter().map(|r| r.alert_id).collect())
            .unwrap_or_default()
    };
    for cycle in 0..20 {
        let mut child = spawn(cycle);
        // Let it start (model load) and work for a while, then pull the plug.
        tokio::time::sleep(Duration::from_millis(rng.next_ms(800, 3000))).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
    }
    let before_last = committed();
    assert!(
        before_last.len() >= 10,
        "only {} alerts committed over 20 cycles",
        before_last.len()
    );

    let mut last = spawn(20);
    let delivered = |r: &Receiver| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for x in r.received().iter().filter(|x| x.status == 200) {
            if let Some(id) = x.header("webhook-id") {
                *m.entry(id.to_string()).or_default() += 1;
            }
        }
        m
    };
    let all = wait_until(Duration::from_secs(60), || {
        let d = delivered(&receiver);
        before_last.iter().all(|id| d.contains_key(id))
    })
    .await;
    common::stop(&mut last).await;

    let d = delivered(&receiver);
    let missing: Vec<_> = before_last
        .iter()
        .filter(|id| !d.contains_key(*id))
        .collect();
    assert!(
        all && missing.is_empty(),
        "seed {seed}: {} of {} committed alerts never delivered: {missing:?}",
        missing.len(),
        before_last.len()
    );
    // Everything committed in the last run was delivered too (it drains before stopping).
    let everything = committed();
    let duplicates: usize = d.values().map(|n| n - 1).sum();
    println!(
        "crash cycles: seed {seed}, {} alerts committed, {} delivered at least once, {duplicates} duplicate deliveries",
        everything.len(),
        d.len()
    );
    assert!(
        d.keys().all(|id| everything.contains(id)),
        "the receiver got an alert that was never committed"
    );
}
