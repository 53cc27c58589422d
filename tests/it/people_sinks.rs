//! Sinks that reach people: Slack and PagerDuty against loopback HTTP servers that check the
//! services' documented request shapes, email through a real SMTP server (aiosmtpd, STARTTLS,
//! AUTH) on 127.0.0.1, and severity routing. All through the outbox and the same worker.

use crate::common;
use crate::common::wait_until;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::config::{Config, SinkConfig};
use watchpost::deliver::Sink;
use watchpost::demo::{Answer, Receiver};
use watchpost::outbox::{NewAlert, NewDelivery, Outbox, RowState, SharedOutbox};

/// A fired alert's body as the payload contract has it.
fn fired(id: &str, severity: &str, snapshot_jpeg: Option<&str>) -> Vec<u8> {
    let mut v: Value = serde_json::json!({
        "type": "alert.fired",
        "timestamp": "2026-11-24T10:30:45.123Z",
        "data": {
            "alert_id": id, "device_id": "gw-dock-01", "site": "warehouse-7",
            "camera": "dock-east", "rule": "person-in-lane", "label": "person",
            "confidence": 0.91, "count": 2, "severity": severity,
            "frame_ts": "2026-11-24T10:30:45.040Z",
            "objects": [{"label": "person", "confidence": 0.91, "box": [0.12, 0.40, 0.30, 0.95], "track_id": 17}],
            "metadata": {"zone": "loading-dock-east"},
            "snapshot": id
        }
    });
    if let Some(b64) = snapshot_jpeg {
        v["data"]["snapshot_jpeg"] = Value::String(b64.to_string());
    }
    serde_json::to_vec(&v).unwrap()
}

fn ended(id: &str, fired_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "alert.ended",
        "timestamp": "2026-11-24T10:31:45.000Z",
        "data": {
            "alert_id": id, "fired_alert_id": fired_id, "device_id": "gw-dock-01",
            "site": "warehouse-7", "camera": "dock-east", "rule": "person-in-lane",
            "severity": "high", "started_at": "2026-11-24T10:30:45.040Z",
            "ended_at": "2026-11-24T10:31:45.000Z", "duration_seconds": 59.96,
            "metadata": {"zone": "loading-dock-east"}
        }
    }))
    .unwrap()
}

fn alert(body: Vec<u8>, id: &str, sink: &str) -> NewAlert {
    NewAlert {
        alert_id: id.to_string(),
        created_at: chrono::Utc::now(),
        camera: "dock-east".into(),
        rule: "person-in-lane".into(),
        severity: "high".into(),
        body,
        sinks: vec![NewDelivery::to(sink)],
    }
}

fn sink_config(toml_lines: &str) -> SinkConfig {
    toml::from_str(toml_lines).expect("sink config")
}

/// Starts a worker; the returned token stops it.
fn worker(
    outbox: &SharedOutbox,
    cfg: &SinkConfig,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    common::run_worker(
        outbox,
        Arc::new(Sink::from_config(cfg, "gw-dock-01").expect("sink")),
        // Above the 2 s Retry-After below: a Retry-After is clamped to max_backoff.
        common::policy(&[200, 400], Duration::from_secs(5)),
        cfg.concurrency(),
    )
}

fn open_outbox(dir: &Path) -> SharedOutbox {
    SharedOutbox::new(Outbox::open(&dir.join("outbox.db")).unwrap())
}

fn delivered(outbox: &SharedOutbox) -> i64 {
    outbox.with(|o| o.stats()).unwrap().delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_block_kit_messages_and_its_429_retry_after_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, None, None).await.unwrap();
    receiver.script(&[Answer::RetryAfter(429, 2)]);
    let outbox = open_outbox(dir.path());
    let ids: Vec<String> = (0..2).map(|_| ulid::Ulid::new().to_string()).collect();
    let alerts = vec![
        alert(fired(&ids[0], "high", None), &ids[0], "slack"),
        alert(ended(&ids[1], &ids[0]), &ids[1], "slack"),
    ];
    outbox.with(|o| o.commit(&alerts)).unwrap();
    let cfg = sink_config(&format!(
        "name = \"slack\"\nkind = \"slack\"\nurl = \"{}\"\nlink_url = \"https://gw-dock-01.local:8443\"\ntemplate = \"{{severity}}: {{label}} at {{camera}} in {{zone}}\"",
        receiver.url()
    ));
    let (cancel, task) = worker(&outbox, &cfg);
    let done = wait_until(Duration::from_secs(20), || delivered(&outbox) == 2).await;
    cancel.cancel();
    task.await.unwrap();
    assert!(done, "{:?}", outbox.with(|o| o.stats()));

    let got = receiver.received();
    assert_eq!(got[0].status, 429);
    // The same message again (bodies are made from the committed alert, so identical).
    let retried = got
        .iter()
        .skip(1)
        .find(|r| r.body == got[0].body)
        .expect("a retry after the 429");
    assert_eq!(retried.status, 200);
    let gap = (retried.at - got[0].at).num_milliseconds();
    assert!(
        gap >= 1900,
        "retried {gap} ms after a 429 with Retry-After: 2"
    );

    let messages: Vec<Value> = got
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| serde_json::from_slice(&r.body).expect("JSON body"))
        .collect();
    assert_eq!(messages.len(), 2);
    for m in &messages {
        // Slack's incoming-webhook shape: fallback text + blocks of known types.
        assert!(m["text"].as_str().is_some_and(|t| !t.is_empty()), "{m}");
        let blocks = m["blocks"].as_array().expect("blocks");
        assert!(!blocks.is_empty() && blocks.len() <= 50);
        for b in blocks {
            let kind = b["type"].as_str().unwrap();
            assert!(["header", "section", "context"].contains(&kind), "{b}");
            if kind == "header" {
                assert_eq!(b["text"]["type"], "plain_text");
                assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 150);
            }
            if let Some(fields) = b["fields"].as_array() {
                assert!(fields.len() <= 10);
                for f in fields {
                    assert_eq!(f["type"], "mrkdwn");
                }
            }
        }
    }
    let fired_msg = messages[0].to_string();
    assert_eq!(
        messages[0]["blocks"][0]["text"]["text"],
        "high: person at dock-east in loading-dock-east"
    );
    for needle in ["dock-east", "person-in-lane", "91%", "loading-dock-east"] {
        assert!(fired_msg.contains(needle), "{needle} in {fired_msg}");
    }
    assert!(
        fired_msg.contains(&format!(
            "https://gw-dock-01.local:8443/snapshots/{}.jpg",
            ids[0]
        )),
        "snapshot link in {fired_msg}"
    );
    assert!(messages[1]["text"]
        .as_str()
        .unwrap()
        .starts_with("Resolved: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_retries_keep_the_dedup_key_and_an_ended_alert_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, None, None).await.unwrap();
    receiver.script(&[Answer::Status(500), Answer::Status(502)]);
    receiver.set_answer(Answer::Status(202));
    let outbox = open_outbox(dir.path());
    let severities = ["critical", "high", "medium", "low"];
    let mut ids = Vec::new();
    let mut alerts = Vec::new();
    for sev in severities {
        let id = ulid::Ulid::new().to_string();
        alerts.push(alert(fired(&id, sev, None), &id, "pager"));
        ids.push(id);
    }
    let end_id = ulid::Ulid::new().to_string();
    alerts.push(alert(ended(&end_id, &ids[0]), &end_id, "pager"));
    outbox.with(|o| o.commit(&alerts)).unwrap();
    let cfg = sink_config(&format!(
        "name = \"pager\"\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting_key = \"R0UTINGKEY0123456789abcdefabcdef\"",
        receiver.url()
    ));
    let (cancel, task) = worker(&outbox, &cfg);
    let done = wait_until(Duration::from_secs(20), || delivered(&outbox) == 5).await;
    cancel.cancel();
    task.await.unwrap();
    assert!(done, "{:?}", outbox.with(|o| o.stats()));

    let got = receiver.received();
    let events: Vec<(u16, Value)> = got
        .iter()
        .map(|r| (r.status, serde_json::from_slice(&r.body).expect("JSON")))
        .collect();
    // Events API v2 shape.
    for (_, e) in &events {
        assert_eq!(e["routing_key"], "R0UTINGKEY0123456789abcdefabcdef");
        assert!(e["dedup_key"].as_str().is_some_and(|k| !k.is_empty()));
        match e["event_action"].as_str().unwrap() {
            "trigger" => {
                let p = &e["payload"];
                let summary = p["summary"].as_str().expect("summary");
                assert!(!summary.is_empty() && summary.len() <= 1024);
                assert!(p["source"].as_str().is_some_and(|s| !s.is_empty()));
                assert!(["critical", "error", "warning", "info"]
                    .contains(&p["severity"].as_str().unwrap()));
                assert!(p["timestamp"].as_str().is_some());
                assert!(p["custom_details"]["metadata"].is_object());
                assert!(p["custom_details"]["objects"].is_array());
            }
            "resolve" => assert!(e.get("payload").is_none()),
            other => panic!("event_action {other}"),
        }
    }
    // The first alert was sent three times (500, 502, 202), each with its own id as key.
    let first: Vec<&(u16, Value)> = events
        .iter()
        .filter(|(_, e)| e["event_action"] == "trigger" && e["dedup_key"] == ids[0].as_str())
        .collect();
    assert_eq!(
        first.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [500, 502, 202],
        "retries of one trigger"
    );
    let mapped: Vec<&str> = ids
        .iter()
        .map(|id| {
            events
                .iter()
                .find(|(_, e)| e["dedup_key"] == id.as_str() && e["event_action"] == "trigger")
                .map(|(_, e)| e["payload"]["severity"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(mapped, ["critical", "error", "warning", "info"]);
    let resolve = events
        .iter()
        .find(|(_, e)| e["event_action"] == "resolve")
        .expect("alert.ended became a resolve");
    assert_eq!(resolve.1["dedup_key"], ids[0].as_str());
}

fn report(id: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"count.report","timestamp":"2026-12-06T10:45:00.000Z","data":{{"alert_id":"{id}","device_id":"gw-dock-01","site":"warehouse-7","line":"pit","cameras":["north"],"interval_start":"2026-12-06T10:30:00.000Z","interval_end":"2026-12-06T10:45:00.000Z","in":3,"out":1,"occupancy":2,"total_in":9,"total_out":7,"since":"2026-12-06T03:00:00.000Z","labels":{{"person":{{"in":3,"out":1,"occupancy":2}}}}}}}}"#
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_reports_reach_people_as_a_summary_and_never_page() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, None, None).await.unwrap();
    receiver.set_answer(Answer::Status(202));
    let outbox = open_outbox(dir.path());
    let (fired_id, report_id, slack_id) = (
        ulid::Ulid::new().to_string(),
        ulid::Ulid::new().to_string(),
        ulid::Ulid::new().to_string(),
    );
    outbox
        .with(|o| {
            o.commit(&[
                alert(fired(&fired_id, "high", None), &fired_id, "pager"),
                alert(report(&report_id), &report_id, "pager"),
                alert(report(&slack_id), &slack_id, "slack"),
            ])
        })
        .unwrap();
    let pager = sink_config(&format!(
        "name = \"pager\"\nkind = \"pagerduty\"\nurl = \"{}/v2/enqueue\"\nrouting_key = \"R0UTINGKEY0123456789abcdefabcdef\"",
        receiver.url()
    ));
    let slack = sink_config(&format!(
        "name = \"slack\"\nkind = \"slack\"\nurl = \"{}/slack\"",
        receiver.url()
    ));
    let (c1, t1) = worker(&outbox, &pager);
    let (c2, t2) = worker(&outbox, &slack);
    let done = wait_until(Duration::from_secs(20), || delivered(&outbox) == 3).await;
    c1.cancel();
    c2.cancel();
    t1.await.unwrap();
    t2.await.unwrap();
    assert!(done, "{:?}", outbox.with(|o| o.stats()));
    let got = receiver.received();
    let path = |r: &watchpost::demo::Received| {
        r.headers
            .iter()
            .find(|(k, _)| k == watchpost::demo::PATH_HEADER)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let body =
        |r: &watchpost::demo::Received| -> Value { serde_json::from_slice(&r.body).expect("JSON") };
    // The alert pages (Events API); the report is a Change Event beside it, which never does.
    let trigger = got
        .iter()
        .find(|r| body(r)["dedup_key"] == fired_id.as_str())
        .expect("trigger");
    assert!(path(trigger).ends_with("/v2/enqueue"), "{}", path(trigger));
    let change = got
        .iter()
        .find(|r| path(r).ends_with("/v2/change/enqueue"))
        .expect("the report as a change event");
    let c = body(change);
    assert!(
        c.get("event_action").is_none() && c.get("dedup_key").is_none(),
        "{c}"
    );
    assert_eq!(
        c["payload"]["summary"],
        "Counts on pit: 3 in, 1 out, 2 inside"
    );
    assert_eq!(c["payload"]["custom_details"]["total_in"], 9);
    // Slack: the same summary as the header, the figures as fields.
    let s = body(
        got.iter()
            .find(|r| path(r).ends_with("/slack"))
            .expect("slack message"),
    );
    assert_eq!(s["text"], "Counts on pit: 3 in, 1 out, 2 inside");
    assert!(s.to_string().contains("*Inside now*\\n2"), "{s}");
}

/// The SMTP server as a child process; dropping it kills it.
struct Smtp(Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_server(port: u16, cert: &Path, key: &Path, out: &Path) -> Smtp {
    let mut child = Command::new("python3")
        .arg(common::repo().join("tests/smtp_server.py"))
        .arg(port.to_string())
        .arg(cert)
        .arg(key)
        .arg(out)
        .args(["gw-mail", "mailPass1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 tests/smtp_server.py (aiosmtpd from scripts/setup)");
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "SMTP server did not start");
    Smtp(child)
}

/// A CA and a server certificate for 127.0.0.1: (ca.pem, server.pem, server.key).
fn tls_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn email_sink(port: u16, ca: &Path, to: &str) -> SinkConfig {
    sink_config(&format!(
        "name = \"mail\"\nkind = \"email\"\nurl = \"smtp://127.0.0.1:{port}\"\nusername = \"gw-mail\"\npassword = \"mailPass1\"\nca_file = \"{}\"\nfrom = \"Gateway <gw@site.example>\"\nto = [{to}]\ntimeout_seconds = 2",
        ca.display()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_4xx_is_retried_and_5xx_is_rejected_into_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    let (ca_pem, cert_pem, key_pem) = tls_files(dir.path());
    let port = free_port();
    let _server = smtp_server(port, &cert_pem, &key_pem, &mail);
    let mut outcomes = Vec::new();
    for (who, want) in [("busy", RowState::Pending), ("reject", RowState::Dead)] {
        let sub = dir.path().join(who);
        std::fs::create_dir(&sub).unwrap();
        let outbox = open_outbox(&sub);
        let id = ulid::Ulid::new().to_string();
        outbox
            .with(|o| o.commit(&[alert(fired(&id, "high", None), &id, "mail")]))
            .unwrap();
        let cfg = email_sink(port, &ca_pem, &format!("\"{who}@site.example\""));
        let (cancel, task) = worker(&outbox, &cfg);
        // A 4xx keeps being retried; a 5xx is dead-lettered once the schedule is used up.
        let tried = wait_until(Duration::from_secs(20), || {
            let row = outbox.with(|o| o.list(None, 1)).unwrap().remove(0);
            row.attempts >= 3 || row.state == RowState::Dead
        })
        .await;
        cancel.cancel();
        task.await.unwrap();
        let row = outbox.with(|o| o.list(None, 1)).unwrap().remove(0);
        assert!(tried, "{who}: {row:?}");
        assert_eq!(row.state, want, "{who}: {row:?}");
        outcomes.push(row.last_error.unwrap_or_default());
    }
    assert!(outcomes[0].contains("451"), "busy: {}", outcomes[0]);
    assert!(outcomes[1].contains("550"), "reject: {}", outcomes[1]);
    assert!(
        std::fs::read_dir(&mail).unwrap().next().is_none(),
        "nothing was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_waits_out_an_smtp_outage_then_arrives_over_starttls_with_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    let (ca_pem, cert_pem, key_pem) = tls_files(dir.path());

    let jpeg = std::fs::read(common::data("dog.jpg")).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    let id = ulid::Ulid::new().to_string();
    let outbox = open_outbox(dir.path());
    outbox
        .with(|o| o.commit(&[alert(fired(&id, "high", Some(&b64)), &id, "mail")]))
        .unwrap();

    let port = free_port();
    let cfg = email_sink(port, &ca_pem, "\"ops@site.example\", \"lead@site.example\"");
    let (cancel, task) = worker(&outbox, &cfg);
    // Nothing listens yet: the email waits in the outbox with the reason recorded.
    let waited = wait_until(Duration::from_secs(10), || {
        outbox
            .with(|o| o.list(None, 10))
            .unwrap()
            .iter()
            .any(|r| r.attempts >= 2 && r.last_error.is_some())
    })
    .await;
    assert!(waited, "attempts recorded while the server is down");
    assert_eq!(delivered(&outbox), 0);

    let _server = smtp_server(port, &cert_pem, &key_pem, &mail);
    let done = wait_until(Duration::from_secs(20), || delivered(&outbox) == 1).await;
    cancel.cancel();
    task.await.unwrap();
    let rows = outbox.with(|o| o.list(None, 10)).unwrap();
    assert!(done, "{rows:?}");
    assert_eq!(rows[0].state, RowState::Delivered);

    let eml = mail.join("0001.eml");
    assert_eq!(
        std::fs::read_to_string(mail.join("0001.tls")).unwrap(),
        "1",
        "STARTTLS was used"
    );
    let out = Command::new("python3")
        .arg(common::repo().join("tests/parse_email.py"))
        .arg(&eml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["subject"], "[high] person on dock-east (person-in-lane)");
    assert!(m["to"].as_str().unwrap().contains("ops@site.example"));
    assert!(m["to"].as_str().unwrap().contains("lead@site.example"));
    assert_eq!(m["message_id"], format!("<{id}@watchpost>"));
    let text = m["text"].as_str().unwrap();
    for needle in [
        "Camera:     dock-east",
        "Rule:       person-in-lane",
        "Zone:       loading-dock-east",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    let att = &m["attachments"][0];
    assert_eq!(att["type"], "image/jpeg");
    use sha2::Digest as _;
    assert_eq!(att["sha256"], hex::encode(sha2::Sha256::digest(&jpeg)));
    assert!(!std::fs::read_to_string(&eml).unwrap().contains("mailPass1"));
}

#[test]
fn each_severity_reaches_exactly_the_sinks_the_config_routes_it_to() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[device]
id = "gw"
data_dir = "{data}"

[model]
path = "{repo}/models/ssdlite-mnv2-300.onnx"
labels = "{repo}/models/coco80.txt"

[[rule]]
name = "info-rule"
labels = ["person"]
severity = "info"

[[rule]]
name = "medium-rule"
labels = ["person"]
severity = "medium"

[[rule]]
name = "high-rule"
labels = ["person"]
severity = "high"

[[rule]]
name = "critical-rule"
labels = ["person"]
severity = "critical"

[[rule]]
name = "explicit"
labels = ["person"]
severity = "info"
sinks = ["pager"]

[[sink]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_c2VjcmV0"

[[sink]]
name = "pager"
kind = "pagerduty"
routing_key = "abc"
min_severity = "high"

[[sink]]
name = "slack"
kind = "slack"
url = "https://hooks.slack.example/services/T/B/X"
min_severity = "medium"

[[sink]]
name = "mail"
kind = "email"
url = "smtp://127.0.0.1:2525"
from = "gw@site.example"
to = ["ops@site.example"]
severities = ["high", "critical"]
rules = ["critical-rule"]
"#,
        data = dir.path().display(),
        repo = common::repo().display()
    );
    let path = dir.path().join("watchpost.toml");
    std::fs::write(&path, &text).unwrap();
    let config = Config::load(&path).expect("valid config");
    let routes: Vec<(String, Vec<String>)> = config
        .rules
        .iter()
        .map(|r| (r.name.clone(), config.sinks_for(r)))
        .collect();
    let want = [
        ("info-rule", vec!["hook"]),
        ("medium-rule", vec!["hook", "slack"]),
        ("high-rule", vec!["hook", "pager", "slack"]),
        ("critical-rule", vec!["hook", "pager", "slack", "mail"]),
        ("explicit", vec!["pager"]),
    ];
    for ((rule, got), (want_rule, want_sinks)) in routes.iter().zip(want) {
        assert_eq!(rule, want_rule);
        assert_eq!(got, &want_sinks, "sinks for {rule}");
    }
    // And the PagerDuty sink got its default endpoint.
    let pager = config.sinks.iter().find(|s| s.name == "pager").unwrap();
    assert_eq!(pager.url, "https://events.pagerduty.com/v2/enqueue");
}
