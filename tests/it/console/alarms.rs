//! Fleet alarms: a camera down and a killed gateway raise one alarm each, the gateway's
//! return resolves its alarm, and every delivery reaches a webhook receiver (that refused the
//! first attempts) signed as the Python `standardwebhooks` package verifies.

use super::*;
use watchpost::demo::{Answer, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_are_raised_once_resolved_and_delivered_signed_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let _broker = common::mosquitto(dir.path(), mqtt_port);
    let receiver = Receiver::start(0, Some(common::secret_key()), None)
        .await
        .unwrap();
    // The receiver is down for the first attempts: the alarm waits and is sent again.
    receiver.script(&[Answer::Status(503), Answer::Status(503)]);
    // A Slack incoming webhook: a plain JSON `text`, no signature.
    let slack = Receiver::start(0, None, None).await.unwrap();
    let config = format!(
        "[alarms]\noffline_minutes = 0.05\ncamera_down_minutes = 0.05\ncheck_seconds = 0.5\nsilent = false\n\n[[alarms.sink]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n[[alarms.sink]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}\"\n",
        receiver.url(),
        common::SECRET,
        slack.url()
    );
    let console = Console::start_with(
        &dir.path().join("console"),
        mqtt_port,
        None,
        "r1",
        Some(&config),
    );
    let client = console.client().await;
    let (admin, _) = console.admin(&client).await;
    let mut gw = Gateway::start(dir.path(), "gw-a", "north", mqtt_port, true);
    assert!(until_state(&client, &console, &admin, "gw-a", "online", 90).await);

    let bodies = |event: &str, kind: &str| -> Vec<(String, serde_json::Value)> {
        let mut seen = std::collections::BTreeMap::new();
        for r in receiver.received().iter().filter(|r| r.status == 200) {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let id = r
                .headers
                .iter()
                .find(|(k, _)| k == "webhook-id")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            if v["type"] == event && v["data"]["kind"] == kind {
                seen.insert(id, v);
            }
        }
        seen.into_iter().collect()
    };
    let until = |event: &'static str, kind: &'static str, secs: u64| {
        let bodies = &bodies;
        async move {
            wait_until(Duration::from_secs(secs), || {
                !bodies(event, kind).is_empty()
            })
            .await
        }
    };
    assert!(
        until("alarm.raised", "camera-down", 30).await,
        "no camera-down alarm; received: {:?}\n{}",
        receiver.received().len(),
        console.log()
    );
    let camera = &bodies("alarm.raised", "camera-down")[0].1;
    assert_eq!(camera["data"]["subject"], "gate");
    assert_eq!(camera["data"]["device_id"], "gw-a");

    gw.signal("-KILL");
    assert!(
        until("alarm.raised", "gateway-offline", 30).await,
        "no offline alarm\n{}",
        console.log()
    );
    let (_, active) = get_json(&client, &console, &admin, "/api/alarms?active=true").await;
    let kinds: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"gateway-offline") && kinds.contains(&"camera-down"),
        "{active}"
    );

    gw.spawn();
    assert!(until_state(&client, &console, &admin, "gw-a", "online", 90).await);
    assert!(
        until("alarm.resolved", "gateway-offline", 30).await,
        "the offline alarm not resolved\n{}",
        console.log()
    );
    // Raised once each (a delivery retried keeps its webhook-id), resolved once.
    assert_eq!(bodies("alarm.raised", "gateway-offline").len(), 1);
    assert_eq!(bodies("alarm.resolved", "gateway-offline").len(), 1);
    assert_eq!(bodies("alarm.raised", "camera-down").len(), 1);
    let refused = receiver
        .received()
        .iter()
        .filter(|r| r.status == 503)
        .count();
    assert_eq!(refused, 2, "the outage was not met");
    let delivered: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    common::verify_with_python(&delivered, "standard-webhooks-alarm", common::SECRET, None);
    // Slack got the same alarms, in words.
    let texts = || -> Vec<String> {
        slack
            .received()
            .iter()
            .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
            .filter_map(|v| v["text"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            let t = texts();
            t.iter()
                .any(|x| x.starts_with("ALARM: north / gw-a") && x.contains("gate"))
                && t.iter().any(|x| x.starts_with("resolved: north / gw-a"))
        })
        .await,
        "Slack did not get the alarms: {:?}",
        texts()
    );

    let (_, still) = get_json(&client, &console, &admin, "/api/alarms?active=true").await;
    assert!(
        still
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "gateway-offline"),
        "{still}"
    );
}
