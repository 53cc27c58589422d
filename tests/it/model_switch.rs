//! Changing the config file while the daemon runs and sending SIGHUP: a new `[model] path`
//! takes over, rules change live, a broken file is refused; the camera never reconnects.

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

/// A daemon on the bundled clip with the person rule, its log in a file.
struct Running {
    _dir: tempfile::TempDir,
    _server: RtspClipServer,
    receiver: Receiver,
    config: std::path::PathBuf,
    log_path: std::path::PathBuf,
    child: std::process::Child,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let server = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let receiver = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    let config = write_config(dir.path(), &server.url(), &receiver.url(), PERSON_RULE);
    let log_path = dir.path().join("run.log");
    let child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start daemon");
    Running {
        _dir: dir,
        _server: server,
        receiver,
        config,
        log_path,
        child,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_switches_the_model_without_restarting_cameras() {
    let mut run = start().await;
    let (receiver, config, log_path) = (&run.receiver, run.config.clone(), run.log_path.clone());
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // NanoDet sees the clip's person at about 0.75.
    let first = wait_until(Duration::from_secs(60), || {
        !person_confidences(receiver).is_empty()
    })
    .await;
    assert!(first, "no person alert from NanoDet:\n{}", log());
    assert!(person_confidences(receiver).iter().all(|c| *c < 0.85));

    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("nanodet-416.onnx", "ssdlite-mnv2-300.onnx"),
    )
    .unwrap();
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(run.child.id().to_string())
        .status();
    let switched = wait_until(Duration::from_secs(30), || log().contains("model switched")).await;
    let before = person_confidences(receiver).len();
    // SSDLite sees the same person at about 0.98 (next loop of the clip, cooldown 1 s).
    let ssd = wait_until(Duration::from_secs(40), || {
        person_confidences(receiver)[before..]
            .iter()
            .any(|c| *c > 0.9)
    })
    .await;

    let status = common::stop(&mut run.child).await;
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

fn rules_seen(r: &Receiver) -> Vec<String> {
    r.received()
        .iter()
        .filter_map(|x| x.json())
        .filter_map(|v| v["data"]["rule"].as_str().map(str::to_string))
        .collect()
}

/// SIGHUP applies the whole file through the same path as the page: a broken file is refused
/// with its problem named and the running config stays; a changed rule applies live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_refuses_a_broken_file_and_applies_a_rule_change_live() {
    let mut run = start().await;
    let (receiver, config, log_path) = (&run.receiver, run.config.clone(), run.log_path.clone());
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // Writes the file, sends SIGHUP, and waits for the daemon's answer in the log.
    let reload = |text: String, answer: &'static str| {
        std::fs::write(&config, text).unwrap();
        let _ = Command::new("kill")
            .arg("-HUP")
            .arg(run.child.id().to_string())
            .status();
        wait_until(Duration::from_secs(20), move || log().contains(answer))
    };
    let first = wait_until(Duration::from_secs(60), || {
        rules_seen(receiver).iter().any(|r| r == "person-seen")
    })
    .await;
    assert!(first, "no alert before the reload:\n{}", log());

    let good = std::fs::read_to_string(&config).unwrap();
    let broken = good.replace("min_confidence = 0.5", "min_confidence = 7");
    let refused = reload(broken, "SIGHUP: reload refused").await;
    assert!(refused, "a broken file was not refused:\n{}", log());
    assert!(
        log().contains("rule[0].min_confidence"),
        "the refusal does not name the field:\n{}",
        log()
    );
    // The running config stays in effect: the old rule keeps firing.
    let before = rules_seen(receiver).len();
    let still = wait_until(Duration::from_secs(30), || {
        rules_seen(receiver)[before..]
            .iter()
            .any(|r| r == "person-seen")
    })
    .await;
    assert!(
        still,
        "the old rule stopped after a refused reload:\n{}",
        log()
    );

    let renamed_text = good.replace("name = \"person-seen\"", "name = \"person-renamed\"");
    let applied = reload(renamed_text, "SIGHUP: config file applied").await;
    let renamed = wait_until(Duration::from_secs(40), || {
        rules_seen(receiver).iter().any(|r| r == "person-renamed")
    })
    .await;
    let status = common::stop(&mut run.child).await;
    let log = log();
    assert!(applied, "the changed file was not applied:\n{log}");
    assert!(renamed, "no alert from the renamed rule:\n{log}");
    assert_eq!(
        log.matches("camera streaming").count(),
        1,
        "the camera reconnected:\n{log}"
    );
    assert!(status.is_some_and(|s| s.success()), "clean stop:\n{log}");
}
