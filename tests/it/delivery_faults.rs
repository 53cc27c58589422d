//! Receiver faults against the real webhook sink, SQLite outbox and a receiver on loopback:
//! failures then success, Retry-After, a receiver that hangs, a long outage with a backlog.

use crate::common;
use crate::common::{secret_key, verify_with_python, wait_until, SECRET};
use chrono::Utc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::config::{SignatureMode, SinkConfig, SinkKind};
use watchpost::deliver::{Sink, WebhookSink};
use watchpost::demo::{Answer, Receiver};
use watchpost::outbox::{NewAlert, Outbox, SharedOutbox};

/// The default per-sink concurrency.
const CONCURRENCY: usize = 4;

fn alert(n: usize) -> NewAlert {
    common::new_alert(n, "yard", &["receiver"])
}

fn sink(url: &str, timeout: f64) -> Arc<Sink> {
    let toml = format!(
        "name = \"receiver\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\ntimeout_seconds = {timeout}"
    );
    let cfg: SinkConfig = toml::from_str(&toml).unwrap();
    assert_eq!(
        (cfg.kind, cfg.signature),
        (SinkKind::Webhook, SignatureMode::StandardWebhooks)
    );
    Arc::new(Sink::Webhook(WebhookSink::from_config(&cfg).unwrap()))
}

fn start(
    outbox: &SharedOutbox,
    sink: Arc<Sink>,
    max_backoff_ms: u64,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    common::run_worker(
        outbox,
        sink,
        common::policy(&[50, 100, 150], Duration::from_millis(max_backoff_ms)),
        CONCURRENCY,
    )
}

/// Runs a sink worker until `n` rows are delivered (at most 10 s), then stops it.
async fn deliver_all(outbox: &SharedOutbox, sink: Arc<Sink>, max_backoff_ms: u64, n: i64) {
    let (cancel, worker) = start(outbox, sink, max_backoff_ms);
    let done = wait_until(Duration::from_secs(10), || {
        outbox.with(|o| o.stats()).unwrap().delivered == n
    })
    .await;
    cancel.cancel();
    worker.await.unwrap();
    assert!(
        done,
        "{n} deliveries expected: {:?}",
        outbox.with(|o| o.stats())
    );
}

fn open() -> (tempfile::TempDir, SharedOutbox) {
    let dir = tempfile::tempdir().unwrap();
    let o = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    (dir, o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_500s_then_200_delivers_once_with_the_attempts_recorded() {
    let (_dir, outbox) = open();
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    receiver.script(&[
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(500),
    ]);
    outbox.with(|o| o.commit(&[alert(0)])).unwrap();
    deliver_all(&outbox, sink(&receiver.url(), 2.0), 500, 1).await;
    let got = receiver.received();
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 500, 200]
    );
    let row = outbox.with(|o| o.list(None, 10)).unwrap().remove(0);
    assert_eq!(row.attempts, 4);
    let history = outbox.with(|o| o.attempts(row.id)).unwrap();
    assert_eq!(
        history.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![Some(500), Some(500), Some(500), Some(200)]
    );
    assert_eq!(
        history[0].error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    let stats = outbox
        .with(|o| o.sink_stats(Utc::now().timestamp_millis()))
        .unwrap();
    assert_eq!(stats[0].delivery_success_rate, Some(0.25));
    assert_eq!((stats[0].events_24h, stats[0].delivered), (1, 1));
    assert!(stats[0].latency_p95_ms.is_some_and(|l| l >= 0));
    verify_with_python(&got, "standard-webhooks", SECRET, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let (_dir, outbox) = open();
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    receiver.script(&[Answer::RetryAfter(429, 2)]);
    outbox.with(|o| o.commit(&[alert(0)])).unwrap();
    // The cap (5 s) is above the receiver's 2 s, so Retry-After decides the wait.
    deliver_all(&outbox, sink(&receiver.url(), 2.0), 5000, 1).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let gap = (got[1].at - got[0].at).num_milliseconds();
    assert!(
        gap >= 2000,
        "second attempt after {gap} ms, Retry-After said 2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_times_out_and_is_retried() {
    let (_dir, outbox) = open();
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    receiver.script(&[Answer::Hang]);
    outbox.with(|o| o.commit(&[alert(0)])).unwrap();
    deliver_all(&outbox, sink(&receiver.url(), 0.5), 500, 1).await;
    let row = outbox.with(|o| o.list(None, 10)).unwrap().remove(0);
    let history = outbox.with(|o| o.attempts(row.id)).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].status, None);
    assert!(
        history[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("timed out"),
        "{history:?}"
    );
    assert!((400..2000).contains(&history[0].latency_ms), "{history:?}");
    assert_eq!(history[1].status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_with_a_thousand_alerts_is_probed_not_stormed() {
    let (_dir, outbox) = open();
    // "Down": a port that accepts and immediately closes, counting connection attempts.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let down = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            drop(sock);
        }
    });
    let alerts: Vec<NewAlert> = (0..1000).map(alert).collect();
    outbox.with(|o| o.commit(&alerts)).unwrap();
    let url = format!("http://127.0.0.1:{port}/hooks/watchpost");
    let (cancel, worker) = start(&outbox, sink(&url, 2.0), 300);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = connects.load(Ordering::Relaxed);
    // Backoff 50, 100, 150, then 300 ms cap: about a dozen probes in 3 s, never one per alert.
    assert!(
        (3..=25).contains(&during),
        "{during} connection attempts in 3 s of outage"
    );
    assert_eq!(outbox.with(|o| o.stats()).unwrap().pending, 1000);

    down.abort();
    let _ = down.await;
    let receiver = Receiver::start(port, Some(secret_key()), None)
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || outbox
            .with(|o| o.stats())
            .unwrap()
            .delivered
            == 1000)
        .await
    );
    cancel.cancel();
    worker.await.unwrap();
    let ok: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(ok.len(), 1000, "each alert once after the outage");
    // Oldest first: with 4 requests in flight, each alert arrives within 3 places of its turn.
    for (pos, r) in ok.iter().enumerate() {
        let n = alerts
            .iter()
            .position(|a| a.body == r.body)
            .expect("a committed body, byte-identical");
        assert!(n.abs_diff(pos) < CONCURRENCY, "alert {n} arrived {pos}th");
    }
    verify_with_python(&ok[..20], "standard-webhooks", SECRET, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_secret_rotation_receivers_with_either_secret_verify() {
    let (_dir, outbox) = open();
    let new = "whsec_bmV3LXNlY3JldC1mb3Itcm90YXRpb24=";
    // The receiver still holds the old secret (SECRET).
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let toml = format!(
        "name = \"receiver\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{new} {SECRET}\"",
        receiver.url()
    );
    let cfg: SinkConfig = toml::from_str(&toml).unwrap();
    outbox.with(|o| o.commit(&[alert(0)])).unwrap();
    let sink = Arc::new(Sink::Webhook(WebhookSink::from_config(&cfg).unwrap()));
    deliver_all(&outbox, sink, 500, 1).await;
    let got = receiver.received();
    assert_eq!(got[0].verified, Some(true));
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    verify_with_python(&got, "standard-webhooks", SECRET, None);
    verify_with_python(&got, "standard-webhooks", new, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_delivered_after_a_ten_minute_outage_still_verifies() {
    // Signed at send time: the webhook-timestamp is the attempt's, not the commit's, so a
    // verifier's 5-minute tolerance accepts an alert that waited 10 minutes in the outbox.
    let (_dir, outbox) = open();
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let mut old = alert(0);
    old.created_at = Utc::now() - chrono::Duration::minutes(10);
    let fresh = alert(1);
    outbox
        .with(|o| o.commit(&[old.clone(), fresh.clone()]))
        .unwrap();
    deliver_all(&outbox, sink(&receiver.url(), 2.0), 500, 2).await;
    let got = receiver.received();
    let ts: i64 = got[0].header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(
        ts - old.created_at.timestamp() >= 600,
        "signed with the attempt's time"
    );
    assert!(got.iter().all(|r| r.verified == Some(true)));
    verify_with_python(&got, "standard-webhooks", SECRET, None);
}
