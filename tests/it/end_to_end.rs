//! The whole spine on real parts: GStreamer's RTSP server serving the bundled clip →
//! rtspsrc/decodebin → tract detector → rules → SQLite outbox → signed webhook → a receiver
//! on 127.0.0.1, with the signature checked by the Python `standardwebhooks` package.

use crate::common::{
    clip, secret_key, verify_with_python, wait_until, write_config, PERSON_RULE, SECRET,
};
use base64::Engine as _;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::app::{self, RunOptions};
use watchpost::config::Config;
use watchpost::demo::{Receiver, RtspClipServer};
use watchpost::outbox::Outbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_on_camera_becomes_a_verified_signed_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    // A second sink that wants the snapshot inline, signed the simple (hex) way.
    let inline = Receiver::start(0, None, None).await.unwrap();
    let rules = format!(
        "{PERSON_RULE}\n\n[[sink]]\nname = \"inline\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"plain\"\n\
         signature = \"hex\"\nsignature_header = \"X-Signature\"\ninclude_snapshot = \"inline\"",
        inline.url()
    );
    let path = write_config(dir.path(), &server.url(), &receiver.url(), &rules);
    let config = Config::load(&path).expect("test config is valid");
    let outbox_path = config.outbox_path();

    let cancel = CancellationToken::new();
    let run = tokio::spawn(app::run(config, RunOptions::default(), cancel.clone()));
    // The clip shows a person in its first 2 s of every 10 s loop.
    let got = wait_until(Duration::from_secs(60), || {
        !receiver.received().is_empty() && !inline.received().is_empty()
    })
    .await;
    cancel.cancel();
    let summary = run.await.unwrap().expect("pipeline ran");
    assert!(got, "no alert within 60 s; cameras: {:?}", summary.cameras);

    let received = receiver.received();
    let first = &received[0];
    assert_eq!(first.status, 200);
    assert_eq!(first.verified, Some(true), "our own verifier accepts it");
    let v = first.json().expect("JSON body");
    assert_eq!(v["type"], "alert.fired");
    let d = &v["data"];
    assert_eq!(d["camera"], "yard");
    assert_eq!(d["rule"], "person-seen");
    assert_eq!(d["label"], "person");
    assert_eq!(d["device_id"], "test-gw");
    assert_eq!(d["site"], "test-site");
    assert_eq!(d["severity"], "high");
    assert_eq!(d["metadata"]["zone"], "test-yard");
    assert!(d["confidence"].as_f64().unwrap() >= 0.5);
    let obj = &d["objects"][0];
    assert!(obj["track_id"].as_u64().is_some_and(|t| t > 0), "{obj}");
    // Evidence: referenced by id, stored as a JPEG of the camera's frame size.
    let snap = d["snapshot"].as_str().expect("snapshot reference");
    assert_eq!(Some(snap), d["alert_id"].as_str());
    let file = outbox_path
        .parent()
        .unwrap()
        .join("snapshots")
        .join(format!("{snap}.jpg"));
    let img = image::open(&file).expect("snapshot file decodes");
    assert_eq!((img.width(), img.height()), (640, 480));
    let b: Vec<f64> = obj["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        b.iter().all(|x| (0.0..=1.0).contains(x)) && b[0] < b[2] && b[1] < b[3],
        "{b:?}"
    );
    // The person in the clip stands left of centre (x ≈ 190..280 of 640).
    assert!(b[0] > 0.2 && b[2] < 0.55, "person box {b:?}");
    assert_eq!(first.header("webhook-id"), d["alert_id"].as_str());

    // What arrived is exactly what was committed.
    let outbox = Outbox::open(&outbox_path).unwrap();
    for r in &received {
        let id = r.header("webhook-id").unwrap();
        assert_eq!(outbox.body(id).unwrap().as_deref(), Some(r.body.as_slice()));
    }
    assert!(summary.frames_detected > 0 && summary.alerts_committed as usize >= received.len());
    verify_with_python(&received, "standard-webhooks", SECRET, None);

    // The inline sink got its own body: the same alert with the JPEG embedded.
    let other = &inline.received()[0];
    let v2 = other.json().unwrap();
    assert_eq!(v2["data"]["alert_id"], d["alert_id"]);
    let b64 = v2["data"]["snapshot_jpeg"].as_str().expect("inline JPEG");
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(jpeg, std::fs::read(&file).unwrap());
    verify_with_python(&inline.received(), "hex", "plain", Some("X-Signature"));
}
