//! The MQTT fleet link: signed commands, `config/set` with rollback, and mqtts with a device
//! certificate.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_fleet_commands_run_and_everything_else_is_refused_with_a_reason() {
    const KEY: &str = "fleet-control-key-0123456789";
    // Every delivery is rejected (400) at first, so alerts become dead letters quickly.
    let gw = gateway(
        &format!("control_key = \"{KEY}\""),
        "\n[delivery]\nretry_schedule_seconds = [0.2, 0.4]\nmax_backoff_seconds = 0.5",
    )
    .await;
    gw.receiver.set_answer(Answer::Status(400));
    let health = "watchpost/test-gw/health";
    let dead = || {
        last(&gw.seen, health)
            .and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok())
            .and_then(|h| h["dead_letters"].as_i64())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(90), || dead() > 0).await,
        "no dead letter in 90 s; log:\n{}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    gw.receiver.set_answer(Answer::Status(200));

    let mut opts = MqttOptions::new("fleet-commander", "127.0.0.1", gw.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let key = KEY.as_bytes();
    let now = chrono::Utc::now().timestamp();
    let replay = envelope(now, "n-1", "{}");

    // Refused, each with its reason: unsigned, wrong key, stale.
    command(&client, "replay-dead-letters", &replay, None).await;
    command(
        &client,
        "replay-dead-letters",
        &replay,
        Some(b"not-the-device-key"),
    )
    .await;
    command(
        &client,
        "replay-dead-letters",
        &envelope(now - 600, "n-0", "{}"),
        Some(key),
    )
    .await;
    assert!(
        results_within(&gw.seen, "replay-dead-letters", 3, 10).await,
        "no refusals: {:?}",
        results(&gw.seen, "replay-dead-letters")
    );
    let refused: Vec<String> = results(&gw.seen, "replay-dead-letters")
        .iter()
        .map(|r| {
            assert_eq!(r["ok"], false, "{r}");
            r["error"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(refused[0].starts_with("unsigned"), "{refused:?}");
    assert!(refused[1].contains("bad signature"), "{refused:?}");
    assert!(refused[2].starts_with("stale"), "{refused:?}");
    assert!(dead() > 0, "a refused command changed nothing");

    // Signed and fresh: the dead letters go back in the queue and reach the receiver.
    let before = gw.receiver.received().len();
    command(&client, "replay-dead-letters", &replay, Some(key)).await;
    assert!(results_within(&gw.seen, "replay-dead-letters", 4, 10).await);
    let ok = results(&gw.seen, "replay-dead-letters")[3].clone();
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["nonce"], "n-1");
    assert!(
        ok["result"]["replayed"].as_u64().is_some_and(|n| n >= 1),
        "{ok}"
    );
    assert!(
        wait_until(Duration::from_secs(30), || dead() == 0
            && gw
                .receiver
                .received()
                .iter()
                .skip(before)
                .any(|r| r.status == 200))
        .await,
        "replayed letters not delivered; dead = {}",
        dead()
    );

    // The same signed message again is a replay.
    command(&client, "replay-dead-letters", &replay, Some(key)).await;
    assert!(results_within(&gw.seen, "replay-dead-letters", 5, 10).await);
    let again = results(&gw.seen, "replay-dead-letters")[4].clone();
    assert!(
        again["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("replayed"),
        "{again}"
    );

    // A snapshot of the camera, at its own size; then a restart of it.
    command(
        &client,
        "snapshot",
        &envelope(now, "n-2", r#"{"camera": "yard"}"#),
        Some(key),
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(10), || !results(&gw.seen, "snapshot")
            .is_empty())
        .await
    );
    let snap = results(&gw.seen, "snapshot")[0].clone();
    assert_eq!(snap["ok"], true, "{}", snap["error"]);
    use base64::Engine as _;
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(snap["result"]["jpeg_base64"].as_str().unwrap())
        .unwrap();
    let img = image::load_from_memory(&jpeg).expect("a JPEG");
    assert_eq!((img.width(), img.height()), (640, 480));

    command(
        &client,
        "restart-camera",
        &envelope(now, "n-3", r#"{"camera": "nope"}"#),
        Some(key),
    )
    .await;
    command(
        &client,
        "restart-camera",
        &envelope(now, "n-4", r#"{"camera": "yard"}"#),
        Some(key),
    )
    .await;
    assert!(results_within(&gw.seen, "restart-camera", 2, 20).await);
    let r = results(&gw.seen, "restart-camera");
    let unknown = r.iter().find(|r| r["nonce"] == "n-3").unwrap();
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("no camera named \"nope\""),
        "{unknown}"
    );
    let restarted = r.iter().find(|r| r["nonce"] == "n-4").unwrap();
    assert_eq!(restarted["ok"], true, "{restarted}");
    // The control key never shows in the log.
    assert!(!std::fs::read_to_string(&gw.log)
        .unwrap_or_default()
        .contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_applies_rules_live_refuses_bad_configs_and_rolls_back() {
    const KEY: &str = "fleet-control-key-0123456789";
    // The rule watches a sliver in the top-left corner where nobody walks: no alerts.
    const CORNER: &str = "zone = [[0.0, 0.0], [0.02, 0.0], [0.02, 0.02]]";
    const WHOLE: &str = "zone = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]";
    let control = format!("control_key = \"{KEY}\"");
    let gw = gateway_with(Extras {
        control: &control,
        rule: CORNER,
        ..Extras::default()
    })
    .await;
    let state = "watchpost/test-gw/config/state";
    let result = "watchpost/test-gw/config/result";
    let version = || {
        last(&gw.seen, state)
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|s| s["version"].as_u64())
    };
    assert!(
        wait_until(Duration::from_secs(60), || version() == Some(1)
            && health_of(&gw.seen).is_some_and(|h| h["cameras_streaming"] == 1))
        .await,
        "no config/state v1 or no streaming camera; log:\n{}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    let redacted = last(&gw.seen, state).unwrap();
    assert!(
        !redacted.contains(SECRET)
            && !redacted.contains(CAMERA_PASSWORD)
            && !redacted.contains(KEY)
    );
    assert!(redacted.contains("(set)"), "{redacted}");

    // One loop of the clip (people in its first 2 s) with the corner zone: nothing fires.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(health_of(&gw.seen).unwrap()["alerts_committed"], 0);

    let mut opts = MqttOptions::new("fleet-configurator", "127.0.0.1", gw.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let set = |nonce: &str, args: serde_json::Value| {
        let body =
            serde_json::json!({"ts": chrono::Utc::now().timestamp(), "nonce": nonce, "args": args});
        let payload = body.to_string();
        let topic = "watchpost/test-gw/config/set".to_string();
        let sig = watchpost::control::commands::sign(KEY.as_bytes(), &topic, payload.as_bytes());
        let client = client.clone();
        async move {
            let mut props = rumqttc::v5::mqttbytes::v5::PublishProperties::default();
            props
                .user_properties
                .push(("signature".into(), format!("v1={sig}")));
            client
                .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, props)
                .await
                .unwrap();
        }
    };
    let answers = || -> Vec<serde_json::Value> {
        gw.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == result)
            .filter_map(|(_, p, _)| serde_json::from_str(p).ok())
            .collect()
    };

    // Invalid: refused with check-config's located errors; nothing written or changed.
    let bad = gw
        .config_text
        .replace("min_confidence = 0.5", "min_confidence = 1.5");
    set("bad", serde_json::json!({"toml": bad})).await;
    assert!(wait_until(Duration::from_secs(10), || !answers().is_empty()).await);
    let refused = answers()[0].clone();
    assert_eq!(refused["ok"], false, "{refused}");
    let errors = refused["errors"].to_string();
    assert!(
        errors.contains("rule[0].min_confidence") && errors.contains("between 0 and 1, got 1.5"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(&gw.config_path).unwrap(),
        gw.config_text
    );
    assert_eq!(version(), Some(1));

    // The zone widened: applied live, the camera untouched, alerts now fire.
    let wide = gw.config_text.replace(CORNER, WHOLE);
    set("wide", serde_json::json!({"toml": wide})).await;
    assert!(wait_until(Duration::from_secs(20), || answers().len() >= 2).await);
    let applied = answers()[1].clone();
    assert_eq!(applied["ok"], true, "{applied}");
    assert_eq!(applied["applied"]["version"], 2);
    assert_eq!(applied["applied"]["live"], serde_json::json!(["rule"]));
    assert_eq!(applied["applied"]["restart_needed"], serde_json::json!([]));
    assert!(
        applied["applied"]["cameras"]
            .to_string()
            .contains(r#"["yard","unchanged"]"#),
        "{applied}"
    );
    assert_eq!(std::fs::read_to_string(&gw.config_path).unwrap(), wide);
    let mut prev = gw.config_path.clone().into_os_string();
    prev.push(".prev");
    assert_eq!(std::fs::read_to_string(prev).unwrap(), gw.config_text);
    assert!(
        wait_until(Duration::from_secs(30), || health_of(&gw.seen)
            .is_some_and(|h| h["alerts_committed"].as_u64() > Some(0)))
        .await,
        "no alert after widening the zone"
    );
    let yard = health_of(&gw.seen).unwrap()["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "yard")
        .unwrap()
        .clone();
    assert_eq!(yard["sessions"], 1, "the camera was restarted: {yard}");
    assert!(wait_until(Duration::from_secs(10), || version() == Some(2)).await);

    // One step back.
    set("back", serde_json::json!({"rollback": true})).await;
    assert!(wait_until(Duration::from_secs(20), || answers().len() >= 3).await);
    let back = answers()[2].clone();
    assert_eq!(back["ok"], true, "{back}");
    assert_eq!(back["applied"]["version"], 3);
    assert_eq!(
        std::fs::read_to_string(&gw.config_path).unwrap(),
        gw.config_text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_link_runs_over_mqtts_with_a_device_certificate() {
    // The broker authenticates devices by certificate on its TLS port; the fleet console
    // (the test) listens on the plain one.
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki(certs.path());
    let tls = free_port();
    let listener = format!(
        "listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\n",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let url = format!("mqtts://127.0.0.1:{tls}");
    let files = |ca: &std::path::Path| {
        format!(
            "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        )
    };
    let good = files(&pki.ca);
    let mut gw = gateway_with(Extras {
        control: &good,
        broker: &listener,
        control_url: Some(&url),
        ..Extras::default()
    })
    .await;
    let status = "watchpost/test-gw/status";
    assert!(
        wait_until(Duration::from_secs(30), || last(&gw.seen, status)
            .as_deref()
            == Some("online")
            && health_of(&gw.seen).is_some())
        .await,
        "no online/health over mqtts; log:\n{}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    // The last will travels over the TLS session too.
    gw.daemon.0.kill().unwrap();
    let _ = gw.daemon.0.wait();
    assert!(
        wait_until(Duration::from_secs(20), || last(&gw.seen, status)
            .as_deref()
            == Some("offline"))
        .await,
        "no offline after SIGKILL over mqtts"
    );

    // A gateway that does not trust the broker's CA never connects, and says why (on a
    // fresh broker: the first one's TLS port is freed with it).
    drop(gw);
    let wrong = files(&pki.other_ca);
    let gw = gateway_with(Extras {
        control: &wrong,
        broker: &listener,
        control_url: Some(&url),
        ..Extras::default()
    })
    .await;
    let log = || std::fs::read_to_string(&gw.log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || log()
            .contains("fleet link down"))
        .await,
        "{}",
        log()
    );
    assert!(
        log().to_lowercase().contains("certificate"),
        "the reason does not name the certificate:\n{}",
        log()
    );
    assert_eq!(
        last(&gw.seen, status),
        None,
        "connected with an untrusted CA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_commands_gets_an_answer_for_each_refused_or_busy() {
    const KEY: &str = "fleet-control-key-0123456789";
    let gw = gateway(&format!("control_key = \"{KEY}\""), "").await;
    assert!(
        wait_until(Duration::from_secs(60), || last(
            &gw.seen,
            "watchpost/test-gw/status"
        )
        .as_deref()
            == Some("online"))
        .await,
        "fleet link not online"
    );
    let mut opts = MqttOptions::new("fleet-flooder", "127.0.0.1", gw.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_outgoing_inflight_upper_limit(500);
    let (client, mut eventloop) = AsyncClient::new(opts, 400);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let now = chrono::Utc::now().timestamp();
    for i in 0..300 {
        let body = envelope(now, &format!("flood-{i}"), "{}");
        command(&client, "restart-camera", &body, None).await;
    }
    let answered = results_within(&gw.seen, "restart-camera", 300, 60).await;
    let got = results(&gw.seen, "restart-camera");
    assert!(answered, "{} answers to 300 commands", got.len());
    let unsigned = got
        .iter()
        .filter(|r| r["error"].as_str().unwrap_or("").starts_with("unsigned"))
        .count();
    let busy = got
        .iter()
        .filter(|r| r["error"].as_str().unwrap_or("").starts_with("busy"))
        .count();
    assert_eq!(unsigned + busy, 300, "every answer a refusal: {got:?}");
    assert!(got.iter().all(|r| r["ok"] == false));
}
