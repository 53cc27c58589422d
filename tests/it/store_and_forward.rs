//! The outbox and the webhook sink against a real SQLite file and a real receiver on loopback.

use crate::common;
use crate::common::{secret_key, verify_with_python, wait_until, SECRET};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::config::{SignatureMode, SinkConfig};
use watchpost::deliver::{RetryPolicy, Sink, WebhookSink};
use watchpost::demo::{Answer, Receiver};
use watchpost::outbox::{NewAlert, Outbox, RowState, SharedOutbox};

fn alert(n: usize, sinks: &[&str]) -> NewAlert {
    common::new_alert(n, "yard", sinks)
}

fn sink(url: &str, signature: SignatureMode, secret: &str) -> Arc<Sink> {
    let mut cfg: SinkConfig = toml::from_str(&format!(
        "name = \"receiver\"\nkind = \"webhook\"\nurl = \"{url}\"\nsignature_header = \"X-Signature\"\ntimeout_seconds = 1.0\nconcurrency = 1"
    ))
    .expect("sink config");
    cfg.signature = signature;
    cfg.secret = Some(watchpost::config::Secret::new(secret));
    Arc::new(Sink::Webhook(WebhookSink::from_config(&cfg).expect("sink")))
}

/// One request at a time, so receipt order is commit order exactly (delivery_faults.rs
/// covers concurrent delivery).
const CONCURRENCY: usize = 1;

fn policy() -> RetryPolicy {
    RetryPolicy {
        schedule: vec![
            Duration::from_millis(50),
            Duration::from_millis(100),
            Duration::from_millis(150),
        ],
        max_backoff: Duration::from_millis(200),
        max_age: Duration::from_secs(3600),
        jitter: false,
    }
}

fn start(
    outbox: &SharedOutbox,
    sink: Arc<Sink>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    common::run_worker(outbox, sink, policy(), CONCURRENCY)
}

fn stats(o: &SharedOutbox) -> watchpost::outbox::Stats {
    o.with(|o| o.stats()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_outage_then_recovery_delivers_everything_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    receiver.set_answer(Answer::Status(500));
    let alerts: Vec<NewAlert> = (0..6).map(|n| alert(n, &["receiver"])).collect();
    outbox.with(|o| o.commit(&alerts)).unwrap();

    let (cancel, worker) = start(
        &outbox,
        sink(&receiver.url(), SignatureMode::StandardWebhooks, SECRET),
    );
    // The receiver is failing: the sink probes (one request at a time), nothing is delivered.
    assert!(wait_until(Duration::from_secs(10), || receiver.received().len() >= 4).await);
    let s = stats(&outbox);
    assert_eq!((s.pending, s.delivered, s.dead), (6, 0, 0), "{s:?}");
    let probes = receiver.received();
    assert!(
        probes.iter().all(|r| r.json().unwrap()["data"]["n"] == 0),
        "during the outage only the oldest alert is used as a probe"
    );

    receiver.set_answer(Answer::Status(200));
    assert!(wait_until(Duration::from_secs(10), || stats(&outbox).delivered == 6).await);
    cancel.cancel();
    worker.await.unwrap();

    let ok: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(ok.len(), 6);
    for (r, a) in ok.iter().zip(&alerts) {
        assert_eq!(
            r.body, a.body,
            "delivered bytes are exactly the committed bytes, oldest first"
        );
        assert_eq!(r.header("webhook-id"), Some(a.alert_id.as_str()));
    }
    verify_with_python(&ok, "standard-webhooks", SECRET, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_on_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let first = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let (port, url) = (first.port(), first.url());
    drop(first); // connection refused from now on
    tokio::time::sleep(Duration::from_millis(100)).await;
    outbox
        .with(|o| o.commit(&[alert(0, &["receiver"]), alert(1, &["receiver"])]))
        .unwrap();
    let (cancel, worker) = start(&outbox, sink(&url, SignatureMode::StandardWebhooks, SECRET));
    assert!(
        wait_until(Duration::from_secs(10), || {
            outbox
                .with(|o| o.list(None, 10))
                .unwrap()
                .iter()
                .any(|r| r.attempts >= 3)
        })
        .await
    );
    assert_eq!(stats(&outbox).pending, 2);
    let again = Receiver::start(port, Some(secret_key()), None)
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || stats(&outbox).delivered == 2).await);
    cancel.cancel();
    worker.await.unwrap();
    assert_eq!(again.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rejection_dead_letters_and_replay_redelivers() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    receiver.set_answer(Answer::Status(422));
    outbox
        .with(|o| o.commit(&[alert(0, &["receiver"])]))
        .unwrap();
    let (cancel, worker) = start(
        &outbox,
        sink(&receiver.url(), SignatureMode::StandardWebhooks, SECRET),
    );
    assert!(wait_until(Duration::from_secs(10), || stats(&outbox).dead == 1).await);
    // Retried on the schedule (3 attempts) before giving up.
    assert_eq!(receiver.received().len(), 3);
    let dead = outbox.with(|o| o.list(Some(RowState::Dead), 10)).unwrap();
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("HTTP 422 Unprocessable Entity")
    );

    receiver.set_answer(Answer::Status(204));
    outbox
        .with(|o| o.replay(dead[0].id, Utc::now().timestamp_millis()))
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || stats(&outbox).delivered == 1).await);
    cancel.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hex_signatures_verify_the_simple_way() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let receiver = Receiver::start(0, None, None).await.unwrap();
    outbox
        .with(|o| o.commit(&[alert(0, &["receiver"]), alert(1, &["receiver"])]))
        .unwrap();
    let secret = "plain-shared-secret";
    let (cancel, worker) = start(&outbox, sink(&receiver.url(), SignatureMode::Hex, secret));
    assert!(wait_until(Duration::from_secs(10), || stats(&outbox).delivered == 2).await);
    cancel.cancel();
    worker.await.unwrap();
    verify_with_python(&receiver.received(), "hex", secret, Some("X-Signature"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_row_is_dead_lettered_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox = SharedOutbox::new(Outbox::open(&path).unwrap());
    let (a, b) = (alert(0, &["receiver"]), alert(1, &["receiver"]));
    outbox.with(|o| o.commit(&[a.clone(), b.clone()])).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE alerts SET body = CAST('{\"evil\":1}' AS BLOB) WHERE alert_id = ?1",
            [&a.alert_id],
        )
        .unwrap();
    }
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let (cancel, worker) = start(
        &outbox,
        sink(&receiver.url(), SignatureMode::StandardWebhooks, SECRET),
    );
    assert!(wait_until(Duration::from_secs(10), || stats(&outbox).delivered == 1).await);
    cancel.cancel();
    worker.await.unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b.body);
    let dead = outbox.with(|o| o.list(Some(RowState::Dead), 10)).unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("integrity"));
}

#[test]
fn commits_survive_reopen_and_one_row_per_sink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/outbox.db");
    {
        let mut o = Outbox::open(&path).unwrap();
        o.commit(&[alert(0, &["a", "b"]), alert(1, &["a"])])
            .unwrap();
    }
    let o = Outbox::open(&path).unwrap();
    let s = o.stats().unwrap();
    assert_eq!((s.alerts, s.pending), (2, 3));
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn the_size_cap_drops_delivered_then_old_dead_then_lowest_severity() {
    use watchpost::outbox::{Attempt, Next};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let mut o = Outbox::open(&path).unwrap();
    let old = Utc::now() - chrono::Duration::days(10);
    let make = |n: usize, severity: &str, created: chrono::DateTime<Utc>| {
        let mut a = alert(n, &["receiver"]);
        a.body = format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(4000)).into_bytes();
        a.severity = severity.into();
        a.created_at = created;
        a
    };
    let delivered: Vec<_> = (0..100).map(|n| make(n, "high", Utc::now())).collect();
    let dead: Vec<_> = (100..200).map(|n| make(n, "high", old)).collect();
    let pending: Vec<_> = (200..300)
        .map(|n| {
            make(
                n,
                if n.is_multiple_of(2) {
                    "info"
                } else {
                    "critical"
                },
                Utc::now(),
            )
        })
        .collect();
    o.commit(&delivered).unwrap();
    o.commit(&dead).unwrap();
    o.commit(&pending).unwrap();
    let rows = o.list(None, 1000).unwrap();
    let attempt = |error: &str| Attempt {
        at_ms: Utc::now().timestamp_millis(),
        status: Some(200),
        latency_ms: 1,
        error: Some(error.into()),
    };
    for r in &rows[..100] {
        o.record(r.id, &attempt("ok"), Next::Delivered).unwrap();
    }
    for r in &rows[100..200] {
        o.record(r.id, &attempt("gone"), Next::Dead).unwrap();
    }
    let full = o.used_bytes().unwrap();
    let now = Utc::now().timestamp_millis();
    let week_ago = now - 7 * 24 * 3600 * 1000;

    // Room for about 60 % of the rows: delivered and some old dead letters go, pending stay.
    let d = o
        .enforce_limits(full * 6 / 10, Some(week_ago), now - 24 * 3600 * 1000)
        .unwrap();
    assert_eq!(d.delivered, 100, "{d:?}");
    assert!(d.dead > 0 && d.undelivered == 0, "{d:?}");
    assert!(o.used_bytes().unwrap() <= full * 6 / 10);
    assert_eq!(o.stats().unwrap().pending, 100);

    // Room for about a quarter: the info alerts are sacrificed before any critical one.
    let d = o
        .enforce_limits(full / 4, Some(week_ago), now - 24 * 3600 * 1000)
        .unwrap();
    assert!(d.undelivered > 0, "{d:?}");
    let left = o.list(Some(RowState::Pending), 1000).unwrap();
    let bodies: Vec<String> = left
        .iter()
        .map(|r| String::from_utf8(o.body(&r.alert_id).unwrap().unwrap()).unwrap())
        .collect();
    let info_left = bodies
        .iter()
        .filter(|b| {
            let n: usize = b[5..b.find(',').unwrap()].parse().unwrap();
            n.is_multiple_of(2)
        })
        .count();
    let critical_left = left.len() - info_left;
    assert!(info_left < 50, "no info alert was dropped");
    assert!(
        info_left == 0 || critical_left == 50,
        "critical rows dropped while {info_left} info rows remain"
    );
    assert!(o.used_bytes().unwrap() <= full / 4);

    // Still a healthy file that takes new commits.
    o.commit(&[alert(999, &["receiver"])]).unwrap();
    let check: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn delivered_rows_leave_after_history_hours() {
    use watchpost::outbox::{Attempt, Next};
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(&dir.path().join("outbox.db")).unwrap();
    o.commit(&[alert(0, &["receiver"]), alert(1, &["receiver"])])
        .unwrap();
    let rows = o.list(None, 10).unwrap();
    let at = Utc::now().timestamp_millis() - 3 * 3600 * 1000;
    o.record(
        rows[0].id,
        &Attempt {
            at_ms: at,
            status: Some(200),
            latency_ms: 5,
            error: None,
        },
        Next::Delivered,
    )
    .unwrap();
    let d = o
        .enforce_limits(
            u64::MAX,
            Some(Utc::now().timestamp_millis() - 2 * 3600 * 1000),
            0,
        )
        .unwrap();
    assert_eq!(d, Default::default(), "retention is not a drop");
    let s = o.stats().unwrap();
    assert_eq!((s.alerts, s.delivered, s.pending), (1, 0, 1));
}
