//! The local page, driven in Debian's Chromium by playwright-core.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_works_in_a_real_browser() {
    // The first receiver refuses everything (400) and retries are short, so its alerts become
    // dead letters for the page to replay; the page adds a second one ("ops") that accepts.
    let gw = gateway(
        "",
        "\n[delivery]\nretry_schedule_seconds = [0.2, 0.4]\nmax_backoff_seconds = 0.5",
    )
    .await;
    gw.receiver.set_answer(Answer::Status(400));
    let ops = Receiver::start(0, Some(secret_key()), None).await.unwrap();
    // Its own server: the dock camera must not share a media with the yard camera.
    let dock = RtspClipServer::start(&clip(), 0).expect("RTSP server");
    let log = || std::fs::read_to_string(&gw.log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || setup_code(&log()).is_some()).await,
        "{}",
        log()
    );
    let artifacts = repo().join("target/test-artifacts/browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let script = repo().join("tests/browser/dashboard.mjs");
    let mut node = std::process::Command::new("node");
    node.arg(&script)
        .env(
            "WATCHPOST_URL",
            format!("https://127.0.0.1:{}/", gw.web_port),
        )
        .env("SETUP_CODE", setup_code(&log()).unwrap())
        .env("ARTIFACTS", &artifacts)
        .env("DOCK_RTSP", dock.url())
        .env("OPS_URL", ops.url())
        .env("OPS_SECRET", SECRET);
    // Every wait inside the script is bounded; this bounds the whole run as well.
    let out = output_within(
        node,
        300,
        "node (scripts/setup installs nodejs, chromium, playwright-core)",
    )
    .await;
    assert!(
        out.status.success(),
        "{}{}\nscreenshots in {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        artifacts.display(),
        log()
    );
    for shot in [
        "1-login.png",
        "2-dashboard.png",
        "3-inline-error.png",
        "4-zone.png",
        "5-test-alert.png",
        "4b-line.png",
        "4c-dry-run.png",
        "6-live-alert.png",
        "6b-alert-detail.png",
        "7-logged-out.png",
    ] {
        assert!(artifacts.join(shot).is_file(), "no screenshot {shot}");
    }

    // What the page did reached the receiver, signed: the test alert, then real alerts of
    // the rule drawn on the page, from the camera added on the page.
    let got = ops.received();
    let test = got
        .iter()
        .find(|r| r.json().is_some_and(|j| j["type"] == "alert.test"))
        .expect("the test alert reached the ops receiver");
    assert_eq!(test.verified, Some(true));
    assert!(
        got.iter().any(|r| r.verified == Some(true)
            && r.json().is_some_and(|j| j["type"] == "alert.fired"
                && j["data"]["rule"] == "dock-person"
                && j["data"]["camera"] == "dock")),
        "no dock-person alert at the ops receiver ({} requests)",
        got.len()
    );

    // The file on disk: the page's items added, the operator's lines and secrets kept, and
    // no redaction placeholder written as a value.
    let file = std::fs::read_to_string(&gw.config_path).unwrap();
    for line in gw.config_text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(file.contains(line), "line lost: {line}\n{file}");
    }
    for added in [
        "name = \"dock\"",
        "name = \"dock-lane\"",
        "name = \"dock-door\"",
        // Drawn, then flipped on the page.
        "in = \"right-to-left\"",
        "name = \"dock-person\"",
        "name = \"ops\"",
        "zone = \"dock-lane\"",
    ] {
        assert!(file.contains(added), "{added} missing:\n{file}");
    }
    assert_eq!(file.matches(SECRET).count(), 2, "{file}");
    assert!(!file.contains("(set)"), "{file}");
    // Only what the technician typed: checkboxes left at their defaults are not written (an
    // unticked-by-default box once came out ticked and turned the camera keyframes-only).
    assert!(
        !file.contains("keyframes_only") && !file.contains("enabled"),
        "{file}"
    );
    // Selects left at "(default: …)" are not written either (the rule form once wrote
    // severity "info", the first option, where the file set none and the default is medium),
    // and the refused duplicate and stale edits wrote nothing.
    assert!(
        !file.contains("severity") && !file.contains("transport"),
        "{file}"
    );
    assert!(!file.contains("rtsp://127.0.0.1:9/other"), "{file}");
    assert!(file.contains("detect_fps = 4"), "{file}");
    assert!(file.contains("dwell_seconds = 0.5"), "{file}");
    // The zone's corner dragged on the page: moved, and still one zone of four corners.
    let polygon = file
        .lines()
        .find(|l| l.starts_with("polygon = ") && l.contains("[0.9, 0.9]"))
        .unwrap_or_else(|| panic!("the dragged corner is not in the file:\n{file}"));
    assert_eq!(polygon.matches('[').count(), 5, "four corners: {polygon}");
    assert_eq!(file.matches("name = \"dock-lane\"").count(), 1, "{file}");
}
