//! Power-cut proof: the daemon is SIGKILLed after alerts are committed and before they are
//! delivered; the next start delivers every one of them, byte for byte.

use crate::common;
use crate::common::{
    bin, clip, secret_key, verify_with_python, wait_until, write_config, PERSON_RULE, SECRET,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use watchpost::demo::{Answer, Receiver, RtspClipServer};
use watchpost::outbox::Outbox;

fn spawn_daemon(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin())
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start watchpost run")
}

/// alert_id → committed body, read from the SQLite file the daemon is writing.
fn committed(outbox: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(o) = Outbox::open(outbox) else {
        return BTreeMap::new();
    };
    o.list(None, 10_000)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| Some((r.alert_id.clone(), o.body(&r.alert_id).ok()??)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_commit_and_delivery_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    receiver.set_answer(Answer::Status(503));
    // Credentials in the camera URL must never reach a log.
    let cam_url = format!("rtsp://viewer:camPass123@127.0.0.1:{}/clip", server.port());
    let config = write_config(dir.path(), &cam_url, &receiver.url(), PERSON_RULE);
    let outbox = dir.path().join("data/outbox.db");

    let mut first = spawn_daemon(&config, &dir.path().join("run1.log"));
    let enough = wait_until(Duration::from_secs(60), || committed(&outbox).len() >= 2).await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let log1 = std::fs::read_to_string(dir.path().join("run1.log")).unwrap();
    assert!(enough, "no alerts committed within 60 s:\n{log1}");
    let before = committed(&outbox);
    assert!(
        receiver.received().iter().all(|r| r.status == 503),
        "nothing was acknowledged before the kill"
    );

    receiver.set_answer(Answer::Status(200));
    let mut second = spawn_daemon(&config, &dir.path().join("run2.log"));
    let delivered = |r: &Receiver| -> BTreeMap<String, Vec<u8>> {
        r.received()
            .into_iter()
            .filter(|x| x.status == 200)
            .filter_map(|x| Some((x.header("webhook-id")?.to_string(), x.body)))
            .collect()
    };
    let all = wait_until(Duration::from_secs(30), || {
        let d = delivered(&receiver);
        before.keys().all(|k| d.contains_key(k))
    })
    .await;
    let stopped = common::stop(&mut second).await;
    let log2 = std::fs::read_to_string(dir.path().join("run2.log")).unwrap();
    assert!(
        all,
        "not every committed alert was delivered after restart:\n{log2}"
    );
    assert!(
        stopped.is_some_and(|s| s.success()),
        "SIGTERM should stop cleanly:\n{log2}"
    );

    let got = delivered(&receiver);
    for (id, body) in &before {
        assert_eq!(
            got.get(id),
            Some(body),
            "alert {id} delivered with its committed bytes"
        );
    }
    let ok: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    verify_with_python(&ok, "standard-webhooks", SECRET, None);
    for (name, log) in [("run1", &log1), ("run2", &log2)] {
        assert!(
            !log.contains("camPass123"),
            "{name} log leaks the camera password"
        );
        assert!(
            !log.contains(SECRET.trim_start_matches("whsec_")),
            "{name} log leaks the webhook secret"
        );
    }
    assert!(log1.contains("alert committed"), "{log1}");
}
