//! The probes and the fleet status of a running gateway: `/healthz`, `/readyz`, `/metrics`
//! (checked by promtool), retained `status` and `health` on a real mosquitto.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_fleet_status_of_a_running_gateway() {
    let gw = gateway("", "").await;
    let (seen, log, web_port, mqtt_port) =
        (gw.seen.clone(), gw.log.clone(), gw.web_port, gw.mqtt_port);
    let dir = &gw.dir;
    let mut daemon = gw.daemon;
    // The fleet console sees the gateway come online, then its health with the clip streaming.
    let status = "watchpost/test-gw/status";
    let health = "watchpost/test-gw/health";
    let streaming_health = || {
        last(&seen, health)
            .and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok())
            .filter(|h| {
                h["cameras"].as_array().is_some_and(|c| {
                    c.iter().any(|c| {
                        c["name"] == "yard"
                            && c["state"] == "streaming"
                            && c["fps"].as_f64() > Some(1.0)
                    })
                }) && h["alerts_committed"].as_u64() > Some(0)
            })
    };
    let up = wait_until(Duration::from_secs(90), || {
        last(&seen, status).as_deref() == Some("online") && streaming_health().is_some()
    })
    .await;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        up,
        "no online + streaming health in 90 s; seen: {:?}\nlog:\n{}",
        seen.lock().unwrap(),
        log_text()
    );
    let h = streaming_health().unwrap();
    assert_eq!(h["device"], "test-gw");
    assert!(h["uptime_s"].as_u64().is_some());
    assert!(
        h["inference_ms_mean"].as_f64().is_some_and(|ms| ms > 1.0),
        "{h}"
    );
    assert!(h["outbox_pending"].as_i64().is_some());
    assert!(h["dead_letters"].as_i64() == Some(0), "{h}");
    let gate = h["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gate")
        .unwrap()
        .clone();
    assert_eq!(gate["state"], "backoff", "{gate}");
    assert!(
        gate["last_error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{gate}"
    );
    // A console that connects later gets both at once: they are retained.
    let late = watch(mqtt_port, "late-console");
    let retained = wait_until(Duration::from_secs(10), || {
        let l = late.lock().unwrap();
        l.iter().any(|(t, p, r)| t == status && p == "online" && *r)
            && l.iter().any(|(t, _, r)| t == health && *r)
    })
    .await;
    assert!(
        retained,
        "status/health not retained: {:?}",
        late.lock().unwrap()
    );

    // HTTPS with the certificate the daemon made, pinned as the only root.
    let cert_pem =
        std::fs::read(dir.path().join("data/web/cert.pem")).expect("self-signed certificate");
    let client = common::pinned_client(&cert_pem, Duration::from_secs(10));
    let base = format!("https://127.0.0.1:{web_port}");
    assert_eq!(
        get(&client, &format!("{base}/healthz")).await,
        (200, "ok\n".into())
    );
    let (code, ready) = get(&client, &format!("{base}/readyz")).await;
    assert_eq!(code, 200, "{ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["outbox_writable"], true);
    assert_eq!(ready["cameras"], 2);
    assert!(ready["cameras_streaming"].as_u64() >= Some(1));
    // Plain HTTP is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{web_port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP answered"
    );

    // Deliveries happened: wait until metrics show a successful attempt.
    let mut metrics = String::new();
    let delivered = wait_until(Duration::from_secs(30), || {
        metrics = futures_lite_block(get(&client, &format!("{base}/metrics"))).1;
        sample(
            &metrics,
            "watchpost_delivery_attempts_total",
            &["sink=\"receiver\"", "result=\"success\""],
        )
        .is_some_and(|v| v >= 1.0)
    })
    .await;
    assert!(
        delivered,
        "no successful delivery in the metrics:\n{metrics}"
    );
    for (name, labels, at_least) in [
        ("watchpost_camera_up", vec!["camera=\"yard\""], 1.0),
        (
            "watchpost_camera_frames_total",
            vec!["camera=\"yard\"", "kind=\"detected\""],
            1.0,
        ),
        ("watchpost_inference_seconds_count", vec![], 1.0),
        (
            "watchpost_alerts_fired_total",
            vec!["rule=\"person-seen\""],
            1.0,
        ),
        ("watchpost_outbox_pending", vec!["sink=\"receiver\""], 0.0),
        (
            "watchpost_delivery_latency_seconds_count",
            vec!["sink=\"receiver\""],
            1.0,
        ),
    ] {
        let v = sample(&metrics, name, &labels);
        assert!(
            v.is_some_and(|v| v >= at_least),
            "{name}{labels:?} = {v:?} in:\n{metrics}"
        );
    }
    assert_eq!(
        sample(&metrics, "watchpost_camera_up", &["camera=\"gate\""]),
        Some(0.0)
    );
    assert_eq!(sample(&metrics, "watchpost_dead_letters", &[]), Some(0.0));
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics failed:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The log names the certificate's fingerprint, so a technician can pin it.
    let fp = fingerprint(&rustls_pemfile_der(&cert_pem));
    assert!(log_text().contains(&fp), "fingerprint {fp} not in the log");

    // SIGKILL: no goodbye from the process; the broker publishes the last will.
    daemon.0.kill().unwrap();
    let _ = daemon.0.wait();
    let offline = wait_until(Duration::from_secs(20), || {
        last(&seen, status).as_deref() == Some("offline")
    })
    .await;
    assert!(
        offline,
        "no offline after SIGKILL: {:?}",
        last(&seen, status)
    );

    // No secret anywhere a person or the fleet could read.
    let everything = format!(
        "{}{}{}{}",
        log_text(),
        metrics,
        ready,
        seen.lock()
            .unwrap()
            .iter()
            .map(|m| m.1.clone())
            .collect::<String>()
    );
    assert!(
        !everything.contains(CAMERA_PASSWORD),
        "the camera password leaked"
    );
    assert!(!everything.contains(SECRET), "the webhook secret leaked");
}
