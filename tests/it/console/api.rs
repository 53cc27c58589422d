//! The console's REST API: every secured operation refuses without auth, every state change
//! refuses a viewer, and schemathesis (generating requests from the OpenAPI document) finds no
//! server error and no answer outside the document.

use super::*;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};

async fn call(
    client: &reqwest::Client,
    console: &Console,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
) -> u16 {
    let mut req = client
        .request(method, console.url(path))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_secured_operation_needs_auth_and_viewers_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let _broker = common::mosquitto(dir.path(), mqtt_port);
    let console = Console::start(&dir.path().join("console"), mqtt_port, None, "r1");
    let client = console.client().await;
    let (admin, csrf) = console.admin(&client).await;
    let token = |role: &'static str| {
        let (client, console, admin, csrf) = (&client, &console, &admin, &csrf);
        async move {
            let (code, t) = post_json(
                client,
                &console.url("/api/tokens"),
                &[("cookie", admin.as_str()), ("x-csrf-token", csrf.as_str())],
                serde_json::json!({"name": format!("{role}-token"), "role": role}),
            )
            .await;
            assert_eq!(code, 200, "{t}");
            t["token"].as_str().unwrap().to_string()
        }
    };
    let viewer = token("viewer").await;
    let admin_token = token("admin").await;
    // A gateway and an alert to read.
    let mut opts = MqttOptions::new("api-gateway", "127.0.0.1", mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (mqtt, mut events) = AsyncClient::new(opts, 10);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let alert = ulid::Ulid::new().to_string();
    mqtt.publish("watchpost/gw-api/status", QoS::AtLeastOnce, true, "online")
        .await
        .unwrap();
    mqtt.publish(
        "watchpost/gw-api/alerts/yard",
        QoS::AtLeastOnce,
        false,
        fleet_alert(&alert, "gw-api"),
    )
    .await
    .unwrap();

    let r = client
        .get(console.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the OpenAPI document is public");
    let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let ops = common::secured_operations(
        &doc,
        &[
            ("{device}", "gw-api"),
            ("{name}", "snapshot"),
            ("{id}", alert.as_str()),
        ],
    );
    assert!(ops.len() >= 18, "{ops:?}");
    for (m, p) in &ops {
        assert_eq!(
            call(&client, &console, m.clone(), p, None).await,
            401,
            "{m} {p} without auth"
        );
        assert_eq!(
            call(&client, &console, m.clone(), p, Some("wpt_not-a-token")).await,
            401,
            "{m} {p} with a made-up token"
        );
        let as_viewer = call(&client, &console, m.clone(), p, Some(&viewer)).await;
        if *m == reqwest::Method::GET && p != "/api/users" {
            assert!(
                as_viewer != 401 && as_viewer != 403,
                "{m} {p}: a viewer reads ({as_viewer})"
            );
        } else {
            assert_eq!(as_viewer, 403, "{m} {p}: a viewer changed something");
        }
    }

    // Schemathesis generates requests from the document and checks every answer against it.
    // The alert stream never ends; /readyz may answer 503 by contract.
    common::Schemathesis {
        base: &console.url(""),
        cert: &console.dir.join("web/cert.pem"),
        bearer: &admin_token,
        exclude: &["/api/alerts/stream", "/readyz"],
        seed: "20261204",
        max_examples: 6,
        max_time_s: 100,
        request_timeout_s: 40,
        report: &repo().join("target/test-artifacts/console-schemathesis"),
        scratch: dir.path(),
    }
    .passes(&doc, || format!("console log:\n{}", console.log()))
    .await;
}
