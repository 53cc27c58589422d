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
    let report = repo().join("target/test-artifacts/console-schemathesis");
    let _ = std::fs::remove_dir_all(&report);
    let mut run = std::process::Command::new("schemathesis");
    run.arg("run")
        .arg(console.url("/api/openapi.json"))
        .args(["--tls-verify"])
        .arg(console.dir.join("web/cert.pem"))
        .args(["-H", &format!("Authorization: Bearer {admin_token}")])
        .args(["--exclude-path", "/api/alerts/stream", "--exclude-path", "/readyz"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "6", "--seed", "20261204"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "40", "--max-time", "100"])
        .args(["--workers", "1", "--no-color"])
        .args(["--generation-database", "none"])
        .current_dir(dir.path())
        .args(["--report", "junit", "--report-dir"])
        .arg(&report);
    let out = tokio::task::spawn_blocking(move || run.output())
        .await
        .unwrap()
        .expect("schemathesis (scripts/setup installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{text}\nconsole log:\n{}",
        console.log()
    );
    let junit = std::fs::read_dir(&report)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "xml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("a JUnit report");
    for (path, item) in doc["paths"].as_object().unwrap() {
        if ["/api/alerts/stream", "/readyz"].contains(&path.as_str()) {
            continue;
        }
        for m in item.as_object().unwrap().keys() {
            let op = format!("{} {path}", m.to_uppercase());
            assert!(
                junit.contains(&format!("<testcase name=\"{op}\"")),
                "{op} not tested:\n{text}"
            );
        }
    }
}
