//! Two console replicas on one PostgreSQL, one shared subscription group: one replica is
//! killed while alerts flow, and every alert is stored exactly once.

use super::*;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};

const ALERTS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_alerts_flow_loses_none_and_doubles_none() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let _broker = common::mosquitto(dir.path(), mqtt_port);
    let mut a = Console::start(&dir.path().join("a"), mqtt_port, Some(&pg.url), "a");
    let b = Console::start(&dir.path().join("b"), mqtt_port, Some(&pg.url), "b");
    let client_b = b.client().await;
    let _ = a.client().await;
    let (admin, _) = b.admin(&client_b).await;
    // Both sessions subscribed before the first alert.
    let subscribed = |c: &Console| c.log().contains("broker connected");
    assert!(wait_until(Duration::from_secs(20), || subscribed(&a) && subscribed(&b)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut opts = MqttOptions::new("busy-gateway", "127.0.0.1", mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (mqtt, mut events) = AsyncClient::new(opts, 1000);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let mut ids = Vec::with_capacity(ALERTS);
    for i in 0..ALERTS {
        let id = ulid::Ulid::new().to_string();
        mqtt.publish(
            "watchpost/gw-busy/alerts/yard",
            QoS::AtLeastOnce,
            false,
            fleet_alert(&id, "gw-busy"),
        )
        .await
        .unwrap();
        ids.push(id);
        if i == ALERTS / 2 {
            // Mid-flow, replica a dies without a word.
            a.kill();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // It comes back: what the broker queued in its session is delivered to it now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.spawn();

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let (code, list) = get_json(
            &client_b,
            &b,
            &admin,
            "/api/alerts?device=gw-busy&limit=1000",
        )
        .await;
        assert_eq!(code, 200, "{list}");
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() >= ALERTS || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut got: Vec<String> = stored
        .iter()
        .filter_map(|x| x["alert_id"].as_str().map(str::to_string))
        .collect();
    got.sort();
    let n = got.len();
    got.dedup();
    assert_eq!(n, got.len(), "an alert stored twice");
    ids.sort();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|i| got.binary_search(i).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {ALERTS} alerts lost with a replica (first: {:?})\nreplica a:\n{}\nreplica b:\n{}",
        missing.len(),
        missing.first(),
        a.log(),
        b.log()
    );
    // Both replicas took part (the group shared the flow).
    let took = |c: &Console| c.log().matches("broker connected").count();
    assert!(took(&a) >= 2, "replica a never came back:\n{}", a.log());
}
