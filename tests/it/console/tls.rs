//! The console over `mqtts://` with a client certificate (the gateway's TLS set-up, shared
//! through watchpost-contracts): it files what gateways say over a broker that admits only
//! certificate holders; a wrong CA keeps it unready and says why; a missing CA file is a
//! config error at its line.

use super::*;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_the_fleet_over_mqtts_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki(dir.path());
    let (plain, tls) = (free_port(), free_port());
    let listener = format!(
        "listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\n",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let _broker = common::mosquitto_with(dir.path(), plain, &listener);
    let broker = |ca: &Path| {
        format!(
            "[broker]\nurl = \"mqtts://127.0.0.1:{tls}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        )
    };
    let console = Console::start_with(
        &dir.path().join("good"),
        plain,
        None,
        "tls",
        Some(&broker(&pki.ca)),
    );
    let client = console.client().await;
    let (admin, _) = console.admin(&client).await;
    // A gateway on the plain port says it is online; the console hears it over TLS.
    let mut opts = MqttOptions::new("tls-gateway", "127.0.0.1", plain);
    opts.set_keep_alive(Duration::from_secs(5));
    let (mqtt, mut events) = AsyncClient::new(opts, 10);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    mqtt.publish("watchpost/gw-tls/status", QoS::AtLeastOnce, true, "online")
        .await
        .unwrap();
    assert!(
        until_state(&client, &console, &admin, "gw-tls", "online", 20).await,
        "nothing filed over mqtts:\n{}",
        console.log()
    );
    let r = client.get(console.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    // Another CA: the handshake fails; unready, with the reason, and it keeps retrying.
    let wrong = Console::start_with(
        &dir.path().join("wrong"),
        plain,
        None,
        "tls-wrong",
        Some(&broker(&pki.other_ca)),
    );
    let wc = wrong.client().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = wc.get(wrong.url("/readyz")).send().await.unwrap();
        let code = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        if code == 503 && body.contains("broker") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a wrong CA still ready: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        wrong.log().contains("broker connection down"),
        "{}",
        wrong.log()
    );

    // A CA file that is not there: refused at check-config, at its line.
    let bad = dir.path().join("missing-ca.toml");
    std::fs::write(&bad, broker(&dir.path().join("nope.pem"))).unwrap();
    let out = std::process::Command::new(console_bin())
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("missing-ca.toml:3: broker.ca_file"), "{said}");
}
