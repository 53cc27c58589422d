//! The console asks gateways: enrolment makes the key, a rollout to two gateways ends applied
//! on one and refused (with the gateway's located errors) on the other, a snapshot command
//! comes back as a JPEG, a gateway holding another key refuses, a request that expires while
//! its gateway is frozen is never run, and the audit log holds all of it.

use super::*;

const ZONE: &str =
    "[[zone]]\nname = \"dock\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_commands_reach_the_gateways_and_every_outcome_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let _broker = common::mosquitto(dir.path(), mqtt_port);
    let console = Console::start(&dir.path().join("console"), mqtt_port, None, "r1");
    let client = console.client().await;
    let (admin, csrf) = console.admin(&client).await;
    let headers = [("cookie", admin.as_str()), ("x-csrf-token", csrf.as_str())];

    // Enrolment: a key, shown once, with the lines for the gateway.
    let mut keys = std::collections::HashMap::new();
    for device in ["gw-a", "gw-b", "gw-c"] {
        let (code, e) = post_json(
            &client,
            &console.url("/api/gateways"),
            &headers,
            serde_json::json!({"device": device}),
        )
        .await;
        assert_eq!(code, 201, "{e}");
        let key = e["control_key"].as_str().unwrap().to_string();
        assert!(key.len() >= 32);
        assert!(e["config"]
            .as_str()
            .unwrap()
            .contains(&format!("control_key = \"{key}\"")));
        keys.insert(device, key);
    }
    let (code, _) = post_json(
        &client,
        &console.url("/api/gateways"),
        &headers,
        serde_json::json!({"device": "gw-a"}),
    )
    .await;
    assert_eq!(code, 409, "enrolled twice");
    let (code, _) = post_json(
        &client,
        &console.url("/api/gateways"),
        &headers,
        serde_json::json!({"device": "a/b"}),
    )
    .await;
    assert_eq!(code, 400);

    // gw-a has the zone the rollout's rule needs, gw-b has not; gw-c holds another key.
    let a = Gateway::start_with(
        dir.path(),
        "gw-a",
        "north",
        mqtt_port,
        false,
        &keys["gw-a"],
        ZONE,
    );
    let b = Gateway::start_with(
        dir.path(),
        "gw-b",
        "north",
        mqtt_port,
        false,
        &keys["gw-b"],
        "",
    );
    let _c = Gateway::start_with(
        dir.path(),
        "gw-c",
        "south",
        mqtt_port,
        false,
        "a-key-the-console-never-made",
        "",
    );
    for gw in ["gw-a", "gw-b", "gw-c"] {
        assert!(
            until_state(&client, &console, &admin, gw, "online", 90).await,
            "{gw} not online"
        );
    }
    // Retained config/state arrived: the push below is checked against its version.
    let version = |v: &serde_json::Value| v["config_version"].as_i64();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let before = loop {
        let (_, g) = get_json(&client, &console, &admin, "/api/gateways/gw-a").await;
        if let Some(v) = version(&g) {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no config/state: {g}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // A rollout to the site: applied on gw-a, refused on gw-b with the gateway's words.
    let merge = "[[rule]]\nname = \"person-in-dock\"\nlabels = [\"person\"]\nzone = \"dock\"\n";
    let (code, r) = post_json(
        &client,
        &console.url("/api/rollouts"),
        &headers,
        serde_json::json!({"site": "north", "merge": merge, "timeout_s": 30}),
    )
    .await;
    assert_eq!(code, 202, "{r}");
    assert_eq!(r["targeted"], 2, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let (_, v) = get_json(&client, &console, &admin, &format!("/api/rollouts/{id}")).await;
        if v["waiting"] == 0 {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollout unanswered: {v}\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (done["applied"].as_u64(), done["failed"].as_u64()),
        (Some(1), Some(1)),
        "{done}"
    );
    let of = |d: &str| {
        done["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["device"] == d)
            .cloned()
            .unwrap()
    };
    assert_eq!(of("gw-a")["outcome"], "applied", "{done}");
    assert!(of("gw-a")["result"]["applied"].is_object(), "{done}");
    let refused = of("gw-b");
    assert_eq!(refused["outcome"], "refused");
    let errors = refused["result"]["errors"].to_string();
    assert!(
        errors.contains("dock"),
        "the gateway's located errors: {refused}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, g) = get_json(&client, &console, &admin, "/api/gateways/gw-a").await;
        if version(&g).is_some_and(|v| v > before)
            && g["config_toml"]
                .as_str()
                .is_some_and(|t| t.contains("person-in-dock"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new config not shown: {g}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = a.log();

    // Tags: a rollout to every gateway tagged "dock" (gw-c holds another key: refused).
    for d in ["gw-a", "gw-c"] {
        let r = client
            .put(console.url(&format!("/api/gateways/{d}/tags")))
            .header("cookie", &admin)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(r#"{"tags": ["dock", "phase-2"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let bad = client
        .put(console.url("/api/gateways/gw-a/tags"))
        .header("cookie", &admin)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body(r#"{"tags": ["Not A Tag"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let (_, tagged) = get_json(&client, &console, &admin, "/api/gateways?tag=dock").await;
    let names: Vec<&str> = tagged
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["device"].as_str())
        .collect();
    assert_eq!(names, ["gw-a", "gw-c"]);
    let (code, r) = post_json(
        &client,
        &console.url("/api/rollouts"),
        &headers,
        serde_json::json!({"tag": "dock", "merge": "[[rule]]\nname = \"person-seen\"\ncooldown_seconds = 3\n", "timeout_s": 30}),
    )
    .await;
    assert_eq!(code, 202, "{r}");
    assert_eq!(r["targeted"], 2, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = get_json(&client, &console, &admin, &format!("/api/rollouts/{id}")).await;
        if v["waiting"] == 0 {
            assert_eq!(
                (v["applied"].as_u64(), v["failed"].as_u64()),
                (Some(1), Some(1)),
                "{v}"
            );
            assert_eq!(v["target"], "tag=dock");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tag rollout unanswered: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A snapshot command: the JPEG comes back.
    let (code, snap) = post_json(
        &client,
        &console.url("/api/gateways/gw-a/commands/snapshot"),
        &headers,
        serde_json::json!({"args": {"camera": "yard"}}),
    )
    .await;
    assert_eq!(code, 200, "{snap}");
    assert_eq!(snap["outcome"], "applied", "{snap}");
    use base64::Engine as _;
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(snap["result"]["result"]["jpeg_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let (code, _) = post_json(
        &client,
        &console.url("/api/gateways/gw-a/commands/format-disk"),
        &headers,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(code, 400, "an unknown command was sent");
    let (code, _) = post_json(
        &client,
        &console.url("/api/gateways/gw-zzz/commands/snapshot"),
        &headers,
        serde_json::json!({"args": {"camera": "yard"}}),
    )
    .await;
    assert_eq!(code, 404);

    // Key rotation: the new key is pushed signed with the old one; the console then signs
    // with the new key, and the old one still passes on the gateway until it is dropped.
    let (code, rotated) = post_json(
        &client,
        &console.url("/api/gateways/gw-a/key"),
        &headers,
        serde_json::json!({"wait_s": 15}),
    )
    .await;
    assert_eq!(code, 200, "{rotated}");
    assert_eq!(rotated["outcome"], "applied", "{rotated}");
    let shown = rotated.to_string();
    assert!(!shown.contains(&keys["gw-a"]), "the old key in the answer");
    assert!(
        rotated["what"].as_str().unwrap().contains("(secret)"),
        "{rotated}"
    );
    let (_, after) = post_json(
        &client,
        &console.url("/api/gateways/gw-a/commands/snapshot"),
        &headers,
        serde_json::json!({"args": {"camera": "yard"}}),
    )
    .await;
    assert_eq!(
        after["outcome"], "applied",
        "not accepted with the new key: {after}"
    );
    {
        use rumqttc::v5::mqttbytes::QoS;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let out = seen.clone();
        let mut opts = rumqttc::v5::MqttOptions::new("old-key-holder", "127.0.0.1", mqtt_port);
        opts.set_keep_alive(Duration::from_secs(5));
        common::listen(
            opts,
            "watchpost/gw-a/cmd/replay-dead-letters/result",
            move |p| {
                out.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&p.payload).to_string())
            },
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let topic = "watchpost/gw-a/cmd/replay-dead-letters";
        let m = watchpost_contracts::control::signed(
            keys["gw-a"].as_bytes(),
            topic,
            chrono::Utc::now().timestamp(),
            "old-key-1",
            serde_json::json!({}),
            None,
        );
        let mut props = rumqttc::v5::mqttbytes::v5::PublishProperties::default();
        props
            .user_properties
            .push(("signature".into(), m.signature));
        let mut o = rumqttc::v5::MqttOptions::new("old-key-sender", "127.0.0.1", mqtt_port);
        o.set_keep_alive(Duration::from_secs(5));
        let (sender, mut ev) = rumqttc::v5::AsyncClient::new(o, 10);
        tokio::spawn(async move { while ev.poll().await.is_ok() {} });
        sender
            .publish_with_properties(topic, QoS::AtLeastOnce, false, m.payload, props)
            .await
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || !seen.lock().unwrap().is_empty()).await,
            "no answer to the old key's command"
        );
        let answer = seen.lock().unwrap()[0].clone();
        assert!(
            answer.contains("\"ok\":true"),
            "the previous key is refused during the rotation: {answer}"
        );
    }

    // A gateway holding another key refuses what the console signs.
    let (_, wrong) = post_json(
        &client,
        &console.url("/api/gateways/gw-c/commands/replay-dead-letters"),
        &headers,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(wrong["outcome"], "refused", "{wrong}");
    assert!(
        wrong["result"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("bad signature"),
        "{wrong}"
    );

    // Expired while its gateway is frozen: never run, shown as no answer.
    b.signal("-STOP");
    let (_, late) = post_json(
        &client,
        &console.url("/api/gateways/gw-b/commands/restart-camera"),
        &headers,
        serde_json::json!({"args": {"camera": "yard"}, "expiry_s": 1, "wait_s": 0}),
    )
    .await;
    let late_id = late["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.signal("-CONT");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, audit) = get_json(&client, &console, &admin, "/api/audit?device=gw-b").await;
    let row = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == late_id.as_str())
        .cloned()
        .expect("the late request in the audit log");
    // The broker dropped it (no answer) or it reached the frozen gateway's socket in time
    // and the gateway refused it for its deadline; never run.
    match row["outcome"].as_str() {
        Some("no-answer") => {}
        Some("refused") => assert!(
            row["result"]["error"]
                .as_str()
                .unwrap_or("")
                .starts_with("expired"),
            "{row}"
        ),
        _ => panic!("an expired request ran: {row}"),
    }

    // The audit log: enrolments, the rollout's two pushes, the commands, all by admin.
    let (_, all) = get_json(&client, &console, &admin, "/api/audit?limit=100").await;
    let kinds: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().unwrap(),
                r["device"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "enrol gw-a",
        "config/set gw-a",
        "config/set gw-b",
        "cmd/snapshot gw-a",
        "cmd/replay-dead-letters gw-c",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "{want} not in the audit log: {kinds:?}"
        );
    }
    assert!(all.as_array().unwrap().iter().all(|r| r["who"] == "admin"));
    let text = all.to_string();
    for key in keys.values() {
        assert!(
            !text.contains(key.as_str()),
            "a control key in the audit log"
        );
        assert!(
            !console.log().contains(key.as_str()),
            "a control key in the console's log"
        );
    }

    // A viewer cannot push.
    let (code, _) = post_json(
        &client,
        &console.url("/api/users"),
        &headers,
        serde_json::json!({"name": "ops", "role": "viewer", "password": "viewer password 12"}),
    )
    .await;
    assert_eq!(code, 201);
    let (viewer, vcsrf) = console
        .login(&client, Some("ops"), "viewer password 12")
        .await;
    let (code, _) = post_json(
        &client,
        &console.url("/api/gateways/gw-a/config"),
        &[
            ("cookie", viewer.as_str()),
            ("x-csrf-token", vcsrf.as_str()),
        ],
        serde_json::json!({"merge": "[device]\nsite = \"x\"\n"}),
    )
    .await;
    assert_eq!(code, 403, "a viewer pushed config");
}
