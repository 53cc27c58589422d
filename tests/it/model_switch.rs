//! Switching the model through the config while the daemon runs: edit `[model] path`, send
//! SIGHUP; the new model takes over without the camera reconnecting.

use crate::common;
use crate::common::{bin, clip, secret_key, wait_until, write_config, PERSON_RULE};
use std::process::{Command, Stdio};
use std::time::Duration;
use watchpost::demo::{Receiver, RtspClipServer};

fn person_confidences(r: &Receiver) -> Vec<f64> {
    r.received()
        .iter()
        .filter_map(|x| x.json())
        .filter(|v| v["data"]["label"] == "person")
        .filter_map(|v| v["data"]["confidence"].as_f64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_switches_the_model_without_restarting_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let config = write_config(dir.path(), &server.url(), &receiver.url(), PERSON_RULE);
    let log_path = dir.path().join("run.log");
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start daemon");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // NanoDet sees the clip's person at about 0.75.
    let first = wait_until(Duration::from_secs(60), || {
        !person_confidences(&receiver).is_empty()
    })
    .await;
    assert!(first, "no person alert from NanoDet:\n{}", log());
    assert!(person_confidences(&receiver).iter().all(|c| *c < 0.85));

    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("nanodet-416.onnx", "ssdlite-mnv2-300.onnx"),
    )
    .unwrap();
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status();
    let switched = wait_until(Duration::from_secs(30), || log().contains("model switched")).await;
    let before = person_confidences(&receiver).len();
    // SSDLite sees the same person at about 0.98 (next loop of the clip, cooldown 1 s).
    let ssd = wait_until(Duration::from_secs(40), || {
        person_confidences(&receiver)[before..]
            .iter()
            .any(|c| *c > 0.9)
    })
    .await;

    let status = common::stop(&mut child).await;
    let log = log();
    assert!(switched, "no model switch after SIGHUP:\n{log}");
    assert!(
        ssd,
        "no SSDLite-confidence person alert after the switch:\n{log}"
    );
    assert_eq!(
        log.matches("camera streaming").count(),
        1,
        "the camera reconnected:\n{log}"
    );
    assert!(status.is_some_and(|s| s.success()), "clean stop:\n{log}");
}
