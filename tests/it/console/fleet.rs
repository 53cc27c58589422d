//! One console, two real gateways (one with a camera that refuses connections), on SQLite and
//! on PostgreSQL: the fleet page's view, alerts once each with their snapshots, a killed
//! gateway offline by its last will, a frozen one stale, both back; viewers only read.

use super::*;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_on_sqlite() {
    fleet(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_on_postgresql() {
    let pg = Postgres::start();
    fleet(Some(&pg.url)).await;
}

async fn fleet(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let _broker = common::mosquitto(dir.path(), mqtt_port);
    let console = Console::start(&dir.path().join("console"), mqtt_port, database, "r1");
    let client = console.client().await;
    let (code, _) = get_json(&client, &console, "", "/api/gateways").await;
    assert_eq!(code, 401, "the fleet is not for anyone");
    let (admin, csrf) = console.admin(&client).await;

    let mut north = Gateway::start(dir.path(), "gw-north", "north", mqtt_port, true);
    let south = Gateway::start(dir.path(), "gw-south", "south", mqtt_port, false);
    for gw in ["gw-north", "gw-south"] {
        assert!(
            until_state(&client, &console, &admin, gw, "online", 90).await,
            "{gw} not online in 90 s: {:?}\nconsole log:\n{}\nnorth log:\n{}",
            gateways(&client, &console, &admin).await,
            console.log(),
            north.log()
        );
    }

    // The broken camera shows as a problem, and the filters find it.
    // Settled: north's gate down (its yard streaming), south's camera streaming.
    let camera_down = |list: &[serde_json::Value]| {
        list.iter().any(|g| {
            g["device"] == "gw-north"
                && g["cameras_down"] == serde_json::json!(["gate"])
                && g["problems"]
                    .as_array()
                    .is_some_and(|p| p.contains(&"camera-down".into()))
        }) && list
            .iter()
            .any(|g| g["device"] == "gw-south" && g["cameras_down"] == serde_json::json!([]))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !camera_down(&gateways(&client, &console, &admin).await) {
        assert!(
            std::time::Instant::now() < deadline,
            "gate camera not shown down: {:?}",
            gateways(&client, &console, &admin).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, down) = get_json(
        &client,
        &console,
        &admin,
        "/api/gateways?problem=camera-down",
    )
    .await;
    let names: Vec<&str> = down
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["device"].as_str())
        .collect();
    assert_eq!(names, ["gw-north"]);
    let (_, south_only) = get_json(&client, &console, &admin, "/api/gateways?site=south").await;
    assert_eq!(south_only.as_array().map(Vec::len), Some(1), "{south_only}");
    assert_eq!(south_only[0]["device"], "gw-south");
    let (code, bad) = get_json(&client, &console, &admin, "/api/gateways?state=asleep").await;
    assert_eq!(code, 400, "{bad}");

    // One gateway in full: the camera's error in the gateway's words, the config without
    // its control key.
    let (code, north_full) = get_json(&client, &console, &admin, "/api/gateways/gw-north").await;
    assert_eq!(code, 200, "{north_full}");
    let gate = north_full["health"]["cameras"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "gate").cloned())
        .expect("gate camera in health");
    assert!(
        gate["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{gate}"
    );
    let config = north_full["config_toml"].as_str().unwrap_or_default();
    assert!(config.contains("gw-north"), "{north_full}");
    assert!(
        !config.contains(&control_key("gw-north")),
        "the control key left the gateway"
    );
    assert_eq!(north_full["site"], "north");
    let (code, _) = get_json(&client, &console, &admin, "/api/gateways/nope").await;
    assert_eq!(code, 404);

    // Alerts from both gateways, each once, with their snapshots.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let alerts = loop {
        let (_, a) = get_json(&client, &console, &admin, "/api/alerts?limit=1000").await;
        let list = a.as_array().cloned().unwrap_or_default();
        let from = |d: &str| list.iter().any(|x| x["device"] == d);
        if from("gw-north") && from("gw-south") {
            break list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alerts from both gateways not in 120 s: {list:?}\nsouth log:\n{}",
            south.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut ids: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a["alert_id"].as_str())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an alert listed twice");
    let with_snapshot = alerts
        .iter()
        .find(|a| a["has_snapshot"] == true)
        .expect("an alert with its snapshot");
    let r = client
        .get(console.url(&format!(
            "/api/alerts/{}/snapshot",
            with_snapshot["alert_id"].as_str().unwrap()
        )))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jpeg = r.bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "not a JPEG");
    let (_, north_alerts) = get_json(
        &client,
        &console,
        &admin,
        "/api/alerts?device=gw-north&limit=1000",
    )
    .await;
    assert!(north_alerts
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["device"] == "gw-north" && a["site"] == "north"));

    // The same alert delivered twice (a gateway's retry) is stored once.
    let mut opts = MqttOptions::new("retrying-gateway", "127.0.0.1", mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (mqtt, mut events) = AsyncClient::new(opts, 10);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let dup = ulid::Ulid::new().to_string();
    for _ in 0..2 {
        mqtt.publish(
            "watchpost/gw-south/alerts/yard",
            QoS::AtLeastOnce,
            false,
            fleet_alert(&dup, "gw-south"),
        )
        .await
        .unwrap();
    }
    let metrics = || async {
        client
            .get(console.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let sample = |m: &str, series: &str| -> Option<f64> {
        m.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m = metrics().await;
        if sample(&m, "watchpost_console_alert_duplicates_total").unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no duplicate counted:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, a) = get_json(
        &client,
        &console,
        &admin,
        "/api/alerts?device=gw-south&limit=1000",
    )
    .await;
    let copies = a
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["alert_id"] == dup.as_str())
        .count();
    assert_eq!(copies, 1, "the retried alert is stored {copies} times");
    let m = metrics().await;
    assert_eq!(
        sample(&m, "watchpost_console_gateways{state=\"online\"}"),
        Some(2.0),
        "{m}"
    );

    // Frozen (its TCP session lingers, no will): stale after 3 health intervals; then back.
    south.signal("-STOP");
    assert!(
        until_state(&client, &console, &admin, "gw-south", "stale", 15).await,
        "a frozen gateway not shown stale: {:?}",
        gateways(&client, &console, &admin).await
    );
    let m = metrics().await;
    assert_eq!(
        sample(&m, "watchpost_console_gateways{state=\"stale\"}"),
        Some(1.0),
        "{m}"
    );
    south.signal("-CONT");
    assert!(until_state(&client, &console, &admin, "gw-south", "online", 15).await);

    // Killed: offline by its last will within 5 s; restarted: online again.
    north.signal("-KILL");
    let killed = std::time::Instant::now();
    assert!(
        until_state(&client, &console, &admin, "gw-north", "offline", 5).await,
        "a killed gateway not offline within 5 s"
    );
    eprintln!("offline after {:?}", killed.elapsed());
    north.spawn();
    assert!(until_state(&client, &console, &admin, "gw-north", "online", 90).await);

    // Health history for the charts: a point per health message.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, hist) = get_json(&client, &console, &admin, "/api/gateways/gw-south/history").await;
        let points = hist.as_array().cloned().unwrap_or_default();
        if points.len() >= 5 {
            assert!(points
                .windows(2)
                .all(|w| w[0]["at_ms"].as_i64() < w[1]["at_ms"].as_i64()));
            assert!(points.iter().all(|p| p["cameras_total"] == 1));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no history: {hist}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A viewer reads and cannot change anything.
    let (code, body) = post_json(
        &client,
        &console.url("/api/users"),
        &[("cookie", &admin), ("x-csrf-token", &csrf)],
        serde_json::json!({"name": "ops", "role": "viewer", "password": "viewer password 12"}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (viewer, viewer_csrf) = console
        .login(&client, Some("ops"), "viewer password 12")
        .await;
    let (code, _) = get_json(&client, &console, &viewer, "/api/gateways").await;
    assert_eq!(code, 200);
    for path in ["/api/users", "/api/tokens"] {
        let (code, _) = post_json(
            &client,
            &console.url(path),
            &[("cookie", &viewer), ("x-csrf-token", &viewer_csrf)],
            serde_json::json!({"name": "x", "role": "admin", "password": "something long 1"}),
        )
        .await;
        assert_eq!(code, 403, "{path} open to a viewer");
    }
    // Without the CSRF token, an admin's session cannot change anything either.
    let (code, _) = post_json(
        &client,
        &console.url("/api/users"),
        &[("cookie", &admin)],
        serde_json::json!({"name": "y", "role": "viewer", "password": "something long 1"}),
    )
    .await;
    assert_eq!(
        code, 403,
        "an admin's session without its CSRF token changed something"
    );

    let log = console.log();
    for secret in [
        control_key("gw-north").as_str(),
        common::SECRET,
        ADMIN_PASSWORD,
        "viewer password 12",
    ] {
        assert!(!log.contains(secret), "a secret in the console's log");
    }
}
