//! Lines in the running daemon: the walking clip streamed over RTSP, crossing alerts and
//! `count.report` events at a real webhook receiver (each report's numbers matching the
//! crossings inside its interval), the counts in MQTT health and `/metrics`, the signed
//! `reset-counts` command, and the counts carried over a restart from the outbox.

use super::*;

const KEY: &str = "lines-control-key-0123456789";

/// The received events of one type, sorted by their timestamp.
fn events(receiver: &Receiver, kind: &str) -> Vec<serde_json::Value> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out: Vec<serde_json::Value> = receiver
        .received()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|v| v["type"] == kind)
        // A retried delivery comes twice; the id de-duplicates.
        .filter(|v| seen.insert(v["data"]["alert_id"].as_str().unwrap_or("").to_string()))
        .collect();
    out.sort_by_key(|v| v["timestamp"].as_str().unwrap_or("").to_string());
    out
}

fn crossings(receiver: &Receiver) -> Vec<serde_json::Value> {
    events(receiver, "alert.fired")
        .into_iter()
        .filter(|v| v["data"]["rule"] == "door-crossing")
        .collect()
}

fn person(report: &serde_json::Value, key: &str) -> u64 {
    report["data"]["labels"]["person"][key]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossings_and_count_reports_are_delivered_and_the_counts_survive_a_restart() {
    let walk = repo().join("models/media/crossing-walk.mp4");
    let rules = r#"
[[line]]
name = "door"
cameras = ["yard"]
points = [[0.5, 0.02], [0.5, 0.98]]
in = "right-to-left"
report_minutes = 0.05

[[rule]]
name = "door-crossing"
crosses = "door"
labels = ["person"]
cooldown_seconds = 0
"#;
    let control = format!("control_key = \"{KEY}\"");
    let mut gw = gateway_with(Extras {
        control: &control,
        rule: rules,
        clip: Some(&walk),
        ..Extras::default()
    })
    .await;
    let log_text = |gw: &Gateway| std::fs::read_to_string(&gw.log).unwrap_or_default();

    // Two passes (in, then out, or the other way if the stream started mid-walk) and a
    // report that closed after both.
    let ready = wait_until(Duration::from_secs(120), || {
        let c = crossings(&gw.receiver);
        let last = c
            .get(1)
            .and_then(|v| v["timestamp"].as_str())
            .unwrap_or("~");
        c.len() >= 2
            && events(&gw.receiver, "count.report")
                .iter()
                .any(|r| r["data"]["interval_start"].as_str() > Some(last))
    })
    .await;
    assert!(
        ready,
        "no two crossings and a later report in 120 s: {:?}\nlog:\n{}",
        crossings(&gw.receiver),
        log_text(&gw)
    );
    // Reports still being delivered may lag a little; every committed one is in by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cross = crossings(&gw.receiver);
    let dirs: Vec<&str> = cross
        .iter()
        .map(|c| c["data"]["line"]["direction"].as_str().unwrap_or("?"))
        .collect();
    for pair in dirs.windows(2) {
        assert_ne!(pair[0], pair[1], "passes alternate: {dirs:?}");
    }
    for c in &cross {
        assert_eq!(c["data"]["line"]["name"], "door", "{c}");
        assert_eq!(c["data"]["camera"], "yard");
        assert_eq!(c["data"]["objects"].as_array().map(Vec::len), Some(1));
    }

    // Each report says exactly the crossings whose time falls in its interval.
    let reports = events(&gw.receiver, "count.report");
    let newest_start = reports
        .last()
        .and_then(|r| r["data"]["interval_start"].as_str())
        .unwrap_or("")
        .to_string();
    for r in reports
        .iter()
        .filter(|r| r["data"]["interval_end"].as_str() <= Some(newest_start.as_str()))
    {
        let d = &r["data"];
        assert_eq!(d["line"], "door");
        assert_eq!(d["device_id"], "test-gw");
        assert_eq!(d["cameras"], serde_json::json!(["yard"]));
        let (start, end) = (
            d["interval_start"].as_str().unwrap_or(""),
            d["interval_end"].as_str().unwrap_or(""),
        );
        let inside = |dir: &str| {
            cross
                .iter()
                .filter(|c| c["data"]["line"]["direction"] == dir)
                .filter(|c| {
                    let t = c["timestamp"].as_str().unwrap_or("");
                    t >= start && t < end
                })
                .count() as u64
        };
        assert_eq!(
            (person(r, "in"), person(r, "out")),
            (inside("in"), inside("out")),
            "report {d}\ncrossings {cross:?}"
        );
    }
    // Totals since start: the sum of every interval so far (none lost or counted twice).
    let last = &reports.last().expect("reports")["data"];
    let sum = |key: &str| {
        reports
            .iter()
            .map(|r| r["data"][key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        (last["total_in"].as_u64(), last["total_out"].as_u64()),
        (Some(sum("in")), Some(sum("out"))),
        "{reports:?}"
    );
    assert!(sum("in") + sum("out") >= 2, "{reports:?}");

    // The same counts in the MQTT health document and /metrics.
    let lines_health = wait_until(Duration::from_secs(10), || {
        health_of(&gw.seen).is_some_and(|h| {
            h["lines"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|l| l["name"] == "door" && l["in"].as_u64() >= Some(1))
            })
        })
    })
    .await;
    assert!(lines_health, "{:?}", health_of(&gw.seen));
    let cert_pem =
        std::fs::read(gw.dir.path().join("data/web/cert.pem")).expect("self-signed certificate");
    let client = common::pinned_client(&cert_pem, Duration::from_secs(10));
    let metrics_url = format!("https://127.0.0.1:{}/metrics", gw.web_port);
    let (_, metrics) = get(&client, &metrics_url).await;
    for name in ["watchpost_line_crossings_total", "watchpost_line_count"] {
        assert!(
            sample(
                &metrics,
                name,
                &["line=\"door\"", "label=\"person\"", "direction=\"in\""]
            )
            .is_some_and(|v| v >= 1.0),
            "{name} in:\n{metrics}"
        );
    }
    assert!(sample(&metrics, "watchpost_line_occupancy", &["line=\"door\""]).is_some());

    // Restart: stop the daemon, read what the outbox holds, start it again on a camera that
    // cannot connect (no new crossings), and find the same totals in /metrics and its reports.
    let pid = gw.daemon.0.id();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let stopped = wait_until(Duration::from_secs(20), || {
        gw.daemon.0.try_wait().ok().flatten().is_some()
    })
    .await;
    assert!(stopped, "daemon did not stop on SIGTERM");
    let db = rusqlite::Connection::open(gw.dir.path().join("data/outbox.db")).expect("outbox");
    let saved: String = db
        .query_row(
            "SELECT state FROM line_counts WHERE line = 'door'",
            [],
            |r| r.get(0),
        )
        .expect("the door's counts were committed");
    drop(db);
    let saved: serde_json::Value = serde_json::from_str(&saved).expect("JSON");
    let (total_in, total_out) = (
        saved["labels"]["person"]["total_in"].as_u64().unwrap_or(0),
        saved["labels"]["person"]["total_out"].as_u64().unwrap_or(0),
    );
    let every_label = |key: &str| {
        saved["labels"]
            .as_object()
            .map(|l| {
                l.values()
                    .map(|t| t[key].as_u64().unwrap_or(0))
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let (all_in, all_out) = (every_label("total_in"), every_label("total_out"));
    assert!(total_in + total_out >= 2, "saved: {saved}");
    let refused = free_port();
    let offline = gw.config_text.replace(
        &gw._server.url(),
        &format!("rtsp://127.0.0.1:{refused}/gone"),
    );
    assert_ne!(offline, gw.config_text);
    std::fs::write(&gw.config_path, &offline).expect("config");
    gw.daemon = Daemon(
        std::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(&gw.config_path)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(gw.dir.path().join("daemon2.log")).expect("log"))
            .spawn()
            .expect("restart watchpost run"),
    );
    let want = |m: &str, dir: &str| {
        sample(
            m,
            "watchpost_line_count",
            &[
                "line=\"door\"",
                "label=\"person\"",
                &format!("direction=\"{dir}\""),
            ],
        )
    };
    let mut metrics = String::new();
    let carried = wait_until(Duration::from_secs(60), || {
        // Refused until the restarted daemon listens.
        metrics = futures_lite_block(async {
            match client.get(&metrics_url).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        });
        want(&metrics, "in") == Some(total_in as f64)
            && want(&metrics, "out") == Some(total_out as f64)
    })
    .await;
    assert!(
        carried,
        "after the restart, want in {total_in} out {total_out} in:\n{metrics}\nlog:\n{}",
        std::fs::read_to_string(gw.dir.path().join("daemon2.log")).unwrap_or_default()
    );
    // And the first report after the restart carries the same totals.
    let reports_before = events(&gw.receiver, "count.report").len();
    let next = wait_until(Duration::from_secs(20), || {
        events(&gw.receiver, "count.report").len() > reports_before + 1
    })
    .await;
    assert!(next, "no report after the restart");
    let after = events(&gw.receiver, "count.report");
    let newest = &after.last().expect("a report")["data"];
    assert_eq!(
        (newest["total_in"].as_u64(), newest["total_out"].as_u64()),
        (Some(all_in), Some(all_out)),
        "{newest}"
    );
    // The REST API says the same: the carried totals, today's hours; an unknown line's reset
    // is a 404 naming it.
    gw.log = gw.dir.path().join("daemon2.log");
    let admin = admin(&gw, &cert_pem).await;
    let door_of = |lines: &serde_json::Value| {
        lines
            .as_array()
            .and_then(|l| l.iter().find(|l| l["name"] == "door").cloned())
            .unwrap_or_default()
    };
    let (status, lines) = admin.json(reqwest::Method::GET, "/api/lines", None).await;
    assert_eq!(status, 200, "{lines}");
    let door = door_of(&lines);
    assert_eq!(
        (door["in"].as_u64(), door["out"].as_u64()),
        (Some(all_in), Some(all_out)),
        "{door}"
    );
    assert!(
        door["hours"].as_array().is_some_and(|h| !h.is_empty()),
        "{door}"
    );
    assert_eq!(
        door["labels"]["person"]["in"].as_u64(),
        Some(total_in),
        "{door}"
    );
    let (status, refused) = admin
        .json(reqwest::Method::POST, "/api/lines/nope/reset", None)
        .await;
    assert_eq!(status, 404, "{refused}");
    assert!(refused.to_string().contains("no line named"), "{refused}");

    // reset-counts, signed, on the restarted daemon (no camera, so nothing counts meanwhile):
    // the line starts again from the moment of the command.
    let mut opts = MqttOptions::new("lines-commander", "127.0.0.1", gw.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (mqtt, mut eventloop) = AsyncClient::new(opts, 10);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let before_reset = chrono::Utc::now();
    let now = before_reset.timestamp();
    command(
        &mqtt,
        "reset-counts",
        &envelope(now, "r-1", r#"{"line": "nope"}"#),
        Some(KEY.as_bytes()),
    )
    .await;
    command(
        &mqtt,
        "reset-counts",
        &envelope(now, "r-2", r#"{"line": "door"}"#),
        Some(KEY.as_bytes()),
    )
    .await;
    assert!(
        results_within(&gw.seen, "reset-counts", 2, 15).await,
        "{:?}",
        results(&gw.seen, "reset-counts")
    );
    let answers = results(&gw.seen, "reset-counts");
    assert!(
        answers
            .iter()
            .any(|a| a.to_string().contains("no line named \\\"nope\\\"")),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| a["result"]["reset"] == serde_json::json!(["door"])),
        "{answers:?}"
    );
    let reset_seen = wait_until(Duration::from_secs(10), || {
        health_of(&gw.seen).is_some_and(|h| {
            h["lines"].as_array().is_some_and(|l| {
                l.iter().any(|l| {
                    l["since"].as_str().is_some_and(|s| {
                        chrono::DateTime::parse_from_rfc3339(s)
                            .is_ok_and(|t| t >= before_reset - chrono::Duration::seconds(1))
                    })
                })
            })
        })
    })
    .await;
    assert!(reset_seen, "{:?}", health_of(&gw.seen));

    let mut zeroed = String::new();
    let back_to_zero = wait_until(Duration::from_secs(10), || {
        zeroed = futures_lite_block(get(&client, &metrics_url)).1;
        want(&zeroed, "in") == Some(0.0) && want(&zeroed, "out") == Some(0.0)
    })
    .await;
    assert!(back_to_zero, "{zeroed}");
    let (_, lines) = admin.json(reqwest::Method::GET, "/api/lines", None).await;
    let door = door_of(&lines);
    assert_eq!(
        (door["in"].as_u64(), door["occupancy"].as_u64()),
        (Some(0), Some(0)),
        "{door}"
    );
    // No secret in either log.
    for log in [gw.log.clone(), gw.dir.path().join("daemon2.log")] {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !text.contains(SECRET) && !text.contains(KEY),
            "secret in {}",
            log.display()
        );
    }
}
