//! `watchpost check-config` on broken files: each problem named, with file, line and field.

use crate::common::{bin, repo};
use std::path::PathBuf;

fn base() -> String {
    format!(
        r#"[device]
id = "gw-1"
data_dir = "/tmp/watchpost-test-unused"

[model]
path = "{repo}/models/nanodet-416.onnx"
labels = "{repo}/models/coco80.txt"

[[camera]]
name = "dock-east"
url = "rtsp://user:pass@127.0.0.1:8554/stream1"

[[rule]]
name = "person-in-lane"
labels = ["person"]
min_confidence = 0.6
sinks = ["ops"]

[[sink]]
name = "ops"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_c2VjcmV0"
"#,
        repo = repo().display()
    )
}

/// Runs check-config on `text`; returns (exit ok, stdout, file path).
fn check(text: &str) -> (bool, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run check-config");
    let stdout =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), stdout, path)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in config")
        + 1
}

#[test]
fn a_good_config_passes() {
    let (ok, out, _) = check(&base());
    assert!(ok, "{out}");
    assert!(out.contains("ok (1 cameras, 1 rules, 1 sinks)"), "{out}");
}

/// `out` names a problem at the line of `needle` with `field` and `words`.
#[track_caller]
fn expect_in(out: &str, text: &str, needle: &str, field: &str, words: &str) {
    let line = line_of(text, needle);
    assert!(
        out.lines()
            .any(|l| l.contains(&format!(":{line}:")) && l.contains(field) && l.contains(words)),
        "{field}: want line {line} and `{words}` in:\n{out}"
    );
}

#[track_caller]
fn expect_problem(text: &str, line_needle: &str, field: &str, words: &str) {
    let (ok, out, path) = check(text);
    assert!(!ok, "should fail:\n{text}");
    let line = line_of(text, line_needle);
    let prefix = format!("{}:{line}:", path.display());
    let hit = out
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains(field) && l.contains(words));
    assert!(
        hit.is_some(),
        "want `{prefix}… {field} … {words}` in:\n{out}"
    );
}

#[test]
fn unknown_key_is_an_error_at_its_line() {
    let text = base().replace(
        "name = \"dock-east\"",
        "name = \"dock-east\"\ndetect_fsp = 5",
    );
    expect_problem(&text, "detect_fsp", "", "unknown field `detect_fsp`");
}

#[test]
fn out_of_range_value_names_the_field() {
    let text = base().replace("min_confidence = 0.6", "min_confidence = 1.5");
    expect_problem(
        &text,
        "min_confidence",
        "rule[0].min_confidence",
        "between 0 and 1, got 1.5",
    );
}

#[test]
fn wrong_type_and_syntax_errors_have_locations() {
    let text = base().replace(
        "name = \"dock-east\"",
        "name = \"dock-east\"\ndetect_fps = \"fast\"",
    );
    expect_problem(&text, "detect_fps", "camera[0].detect_fps", "invalid type");
    let text = base().replace("[[rule]]", "[[rule]\n");
    expect_problem(&text, "[[rule]", "", "");
}

#[test]
fn references_labels_and_schedules_are_checked() {
    let text = base()
        .replace("sinks = [\"ops\"]", "sinks = [\"ops\", \"pager\"]")
        .replace(
            "labels = [\"person\"]",
            "labels = [\"persn\"]\nschedule = [\"Mon-Fri 7-19\"]\ncameras = [\"dock-west\"]",
        );
    let (ok, out, _) = check(&text);
    assert!(!ok);
    // All four problems in one run, each with its field.
    for (needle, field, words) in [
        ("pager", "rule[0].sinks[1]", "no sink named \"pager\""),
        ("persn", "rule[0].labels[0]", "no label \"persn\""),
        ("Mon-Fri 7-19", "rule[0].schedule[0]", "HH:MM"),
        (
            "dock-west",
            "rule[0].cameras[0]",
            "no camera named \"dock-west\"",
        ),
    ] {
        expect_in(&out, &text, needle, field, words);
    }
    assert!(out.contains("4 problem(s)"), "{out}");
}

#[test]
fn secrets_are_checked_but_never_printed() {
    let text = base().replace(
        "secret = \"whsec_c2VjcmV0\"",
        "secret = \"hunter2-not-base64!\"",
    );
    expect_problem(&text, "hunter2", "sink[0].secret", "whsec_");
    let (_, out, _) = check(&text);
    assert!(!out.contains("hunter2"), "secret leaked: {out}");

    let text = base().replace("secret = \"whsec_c2VjcmV0\"\n", "");
    expect_problem(&text, "[[sink]]", "sink[0]", "needs a secret");

    let text = base().replace(
        "rtsp://user:pass@127.0.0.1:8554/stream1",
        "http://admin:topsecret@cam.local/x",
    );
    expect_problem(&text, "topsecret", "camera[0].url", "expected rtsp://");
    let (_, out, _) = check(&text);
    assert!(!out.contains("topsecret"), "camera password leaked: {out}");
}

#[test]
fn missing_file_is_named() {
    let out = std::process::Command::new(bin())
        .args(["check-config", "/nonexistent/watchpost.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/nonexistent/watchpost.toml") && text.contains("cannot read"),
        "{text}"
    );
}

/// An MQTT sink appended to the base config.
fn with_mqtt_sink(lines: &str) -> String {
    base() + "\n[[sink]]\nname = \"site-mqtt\"\nkind = \"mqtt\"\n" + lines
}

#[test]
fn mqtt_sink_settings_are_checked_with_their_fields() {
    let text = with_mqtt_sink("url = \"mqtt://127.0.0.1:1883\"\nqos = 0\n");
    expect_problem(&text, "qos = 0", "sink[1].qos", "never acknowledged");

    let text =
        with_mqtt_sink("url = \"mqtt://127.0.0.1:1883\"\nca_file = \"/etc/ssl/certs/x.pem\"\n");
    expect_problem(&text, "ca_file", "sink[1].ca_file", "need an mqtts:// URL");

    let text =
        with_mqtt_sink("url = \"mqtts://127.0.0.1:8883\"\nca_file = \"/nonexistent/ca.pem\"\n");
    expect_problem(&text, "ca_file", "sink[1].ca_file", "/nonexistent/ca.pem");

    let text = with_mqtt_sink(
        "url = \"mqtts://127.0.0.1:8883\"\nclient_cert_file = \"/nonexistent/client.pem\"\n",
    );
    expect_problem(
        &text,
        "client_cert_file",
        "sink[1].client_cert_file",
        "needs client_key_file",
    );

    // A file that exists but is not PEM is named, too.
    let text = with_mqtt_sink(&format!(
        "url = \"mqtts://127.0.0.1:8883\"\nca_file = \"{}/models/coco80.txt\"\n",
        repo().display()
    ));
    expect_problem(&text, "ca_file", "sink[1].ca_file", "coco80.txt");

    let text = with_mqtt_sink("url = \"ws://127.0.0.1:1883\"\n");
    expect_problem(&text, "ws://", "sink[1].url", "mqtts://host");

    let text = base().replace(
        "secret = \"whsec_c2VjcmV0\"",
        "secret = \"whsec_c2VjcmV0\"\nca_file = \"/tmp/ca.pem\"",
    );
    expect_problem(&text, "ca_file", "sink[0].ca_file", "only MQTT sinks");
}

#[test]
fn people_sinks_are_checked_with_their_fields() {
    let with = |lines: &str| base() + "\n[[sink]]  # people\nname = \"people\"\n" + lines;
    let text = with("kind = \"pagerduty\"\nmin_severity = \"high\"\n");
    expect_problem(&text, "# people", "sink[1]", "needs routing_key");

    let text = with("kind = \"slack\"\nurl = \"https://hooks.slack.example/x\"\ntemplate = \"{camrea} saw {label}\"\n");
    expect_problem(
        &text,
        "template",
        "sink[1].template",
        "unknown placeholder {camrea}",
    );

    let text = with("kind = \"email\"\nurl = \"smtp://127.0.0.1:25\"\nfrom = \"gw@site\"\nto = [\"not an address\"]\n");
    expect_problem(
        &text,
        "not an address",
        "sink[1].to[0]",
        "is not an email address",
    );

    let text = with("kind = \"email\"\nurl = \"http://127.0.0.1:25\"\nfrom = \"gw@site.example\"\nto = [\"a@site.example\"]\n");
    expect_problem(
        &text,
        "http://127.0.0.1:25",
        "sink[1].url",
        "smtp:// or smtps://",
    );

    let text = with(
        "kind = \"slack\"\nurl = \"https://hooks.slack.example/x\"\nrules = [\"no-such-rule\"]\n",
    );
    expect_problem(
        &text,
        "no-such-rule",
        "sink[1].rules[0]",
        "no rule is named",
    );

    let text = with("kind = \"slack\"\nurl = \"https://hooks.slack.example/x\"\nseverities = []\n");
    expect_problem(
        &text,
        "severities",
        "sink[1].severities",
        "would route nothing",
    );

    let text = base().replace(
        "secret = \"whsec_c2VjcmV0\"",
        "secret = \"whsec_c2VjcmV0\"\nrouting_key = \"abc\"",
    );
    expect_problem(
        &text,
        "routing_key",
        "sink[0].routing_key",
        "webhook sinks do not take",
    );
}

#[test]
fn camera_sources_other_than_rtsp_are_checked() {
    let text = base().replace(
        "rtsp://user:pass@127.0.0.1:8554/stream1",
        "file:///nonexistent/site-recording.mp4",
    );
    expect_problem(
        &text,
        "site-recording.mp4",
        "camera[0].url",
        "no video file at /nonexistent/site-recording.mp4",
    );
    let ok = base().replace("rtsp://user:pass@127.0.0.1:8554/stream1", "testsrc://");
    let (passed, out, _) = check(&ok);
    assert!(passed, "testsrc:// is a valid source: {out}");
    let text = base().replace("rtsp://user:pass@127.0.0.1:8554/stream1", "http://cam/x");
    expect_problem(
        &text,
        "http://cam/x",
        "camera[0].url",
        "file:///path/to/video or testsrc://",
    );
}

#[test]
fn motion_gate_settings_are_checked_with_their_fields() {
    let with = |lines: &str| {
        base().replace(
            "url = \"rtsp://user:pass@127.0.0.1:8554/stream1\"",
            &format!(
                "url = \"rtsp://user:pass@127.0.0.1:8554/stream1\"\n\n[camera.motion]\n{lines}"
            ),
        )
    };
    let (ok, out, _) = check(&with(
        "threshold = 20\nmin_area = 0.01\nmax_skip_seconds = 3\nmasks = [[[0, 0], [0.3, 0], [0.3, 0.2]]]",
    ));
    assert!(ok, "a full motion table is valid: {out}");
    expect_problem(
        &with("min_area = 0"),
        "min_area",
        "camera[0].motion.min_area",
        "above 0 and at most 1, got 0",
    );
    expect_problem(
        &with("max_skip_seconds = -1"),
        "max_skip_seconds",
        "camera[0].motion.max_skip_seconds",
        "above 0 and at most 3600",
    );
    expect_problem(
        &with("threshold = 0"),
        "threshold",
        "camera[0].motion.threshold",
        "must be 1 to 255",
    );
    expect_problem(
        &with("masks = [[[0, 0], [1.5, 0], [0.3, 0.2]]]"),
        "masks",
        "camera[0].motion.masks[0][1]",
        "normalised 0..1, got [1.5, 0]",
    );
    expect_problem(
        &with("sensitivity = 3"),
        "sensitivity",
        "",
        "unknown field `sensitivity`",
    );
}

#[test]
fn web_and_fleet_link_settings_are_checked_with_their_fields() {
    let with = |lines: &str| format!("{}\n{lines}\n", base());
    let (ok, out, _) = check(&with(
        "[web]\nlisten = \"127.0.0.1:8443\"\n\n[control.mqtt]\nurl = \"mqtts://fleet.example:8883\"\ncontrol_key = \"0123456789abcdef-key\"",
    ));
    assert!(ok, "{out}");
    expect_problem(
        &with("[control.mqtt]\nurl = \"http://fleet.example\""),
        "http://fleet.example",
        "control.mqtt.url",
        "expected mqtt://host[:port] or mqtts://host[:port]",
    );
    let short = with("[control.mqtt]\nurl = \"mqtt://127.0.0.1\"\ncontrol_key = \"short-key\"");
    expect_problem(
        &short,
        "control_key",
        "control.mqtt.control_key",
        "at least 16 characters (the value is not shown)",
    );
    let (_, out, _) = check(&short);
    assert!(!out.contains("short-key"), "the key was printed: {out}");
    expect_problem(
        &with("[control.mqtt]\nurl = \"mqtt://127.0.0.1\"\nhealth_interval_seconds = 0"),
        "health_interval_seconds",
        "control.mqtt.health_interval_seconds",
        "between 1 and 3600",
    );
    expect_problem(
        &with("[web]\nlisten = \"127.0.0.1:8443\"\ncert_file = \"/etc/watchpost/web.pem\""),
        // The missing key is reported at its table.
        "[web]",
        "web.key_file",
        "give both cert_file and key_file",
    );
}

#[test]
fn zone_shapes_broker_ports_and_non_files_are_refused_with_their_fields() {
    let zone = |points: &str| {
        format!(
            "{}\n[[zone]]\nname = \"lane\"\npolygon = {points}\n",
            base().replace("sinks = [\"ops\"]", "sinks = [\"ops\"]\nzone = \"lane\"")
        )
    };
    expect_problem(
        &zone("[[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]"),
        "polygon =",
        "zone[0].polygon",
        "the polygon's outline crosses itself (edge 0-1 crosses edge 2-3)",
    );
    expect_problem(
        &zone("[[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]]"),
        "polygon =",
        "zone[0].polygon",
        "the polygon has no area (its points lie on one line)",
    );
    let (ok, out, _) = check(&zone("[[0.1, 0.1, 0.3], [0.9, 0.1], [0.9, 0.9]]"));
    assert!(!ok);
    assert!(
        out.contains("zone[0].polygon: polygon point 0 has 3 coordinates; a point is [x, y]"),
        "{out}"
    );
    let (ok, out, _) = check(&zone("[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]"));
    assert!(ok, "a sound triangle passes: {out}");

    expect_problem(
        &format!(
            "{}\n[control.mqtt]\nurl = \"mqtt://127.0.0.1:77777\"\n",
            base()
        ),
        "77777",
        "control.mqtt.url",
        "not a valid URL: invalid port number",
    );

    // A named pipe would block a reader forever: refused at once, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&fifo)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains(&format!(
            "{}: cannot read config: not a regular file",
            fifo.display()
        )),
        "{text}"
    );
}

#[test]
fn every_refused_value_is_reported_with_its_field_and_the_rest_is_still_checked() {
    let text = base()
        .replace(
            "url = \"rtsp://user:pass@127.0.0.1:8554/stream1\"",
            "url = \"rtsp://user:pass@127.0.0.1:8554/stream1\"\ndetect_fps = \"five\"\nrotate = 90",
        )
        .replace(
            "min_confidence = 0.6",
            "min_confidence = 1.5\nseverity = \"hgih\"\nmin_count = 99999999999",
        );
    let (ok, out, path) = check(&text);
    assert!(!ok);
    for (needle, field, words) in [
        (
            "detect_fps = \"five\"",
            "camera[0].detect_fps",
            "invalid type: string \"five\"",
        ),
        ("rotate = 90", "camera[0].rotate", "unknown field `rotate`"),
        (
            "severity = \"hgih\"",
            "rule[0].severity",
            "unknown variant `hgih`",
        ),
        (
            "min_count = 99999999999",
            "rule[0].min_count",
            "99999999999",
        ),
        (
            "min_confidence = 1.5",
            "rule[0].min_confidence",
            "between 0 and 1",
        ),
    ] {
        let line = line_of(&text, needle);
        let prefix = format!("{}:{line}:", path.display());
        assert!(
            out.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(field) && l.contains(words)),
            "want `{prefix}… {field} … {words}` in:\n{out}"
        );
    }
    assert!(out.contains("5 problem(s)"), "{out}");
}

#[test]
fn lines_and_line_rules_are_checked_with_their_fields() {
    let text = base()
        + r#"
[[line]]
name = "pit-door"
cameras = ["dock-west"]
points = [[0.5, 0.1]]
in = "upwards"
report_minutes = 0
occupancy_reset = "3am"

[[zone]]
name = "gate"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]

[[line]]
name = "gate"  # the line
points = [[0.2, 0.5], [0.2, 0.5], [0.8, 1.5]]

[[rule]]
name = "wrong-way"
crosses = "fire-door"
direction = "in"
dwell_seconds = 4

[[rule]]
name = "no-line"
direction = "out"

[[rule]]
name = "crowd"
crosses = "gate"
max_occupancy = 2
min_occupancy = 5
direction = "in"

[[sink]]
name = "quiet"
kind = "webhook"
url = "http://127.0.0.1:9/quiet"
secret = "whsec_c2VjcmV0"
events = []
"#;
    let (ok, out, _) = check(&text);
    assert!(!ok, "{out}");
    // `in = "upwards"` is refused by serde with its field; every other problem in the same run.
    // The [[line]]s sit between two runs of [[rule]] and [[sink]]: toml 0.8 once placed the
    // refusal at the first [[rule]], and the whole rule and sink arrays went unchecked.
    for (needle, field, words) in [
        ("in = \"upwards\"", "line[0].in", "unknown variant"),
        (
            "points = [[0.5, 0.1]]",
            "line[0].points",
            "at least 2 points",
        ),
        (
            "cameras = [\"dock-west\"]",
            "line[0].cameras[0]",
            "no camera named \"dock-west\"",
        ),
        (
            "report_minutes = 0",
            "line[0].report_minutes",
            "between 0.01 and 1440",
        ),
        (
            "occupancy_reset = \"3am\"",
            "line[0].occupancy_reset",
            "HH:MM",
        ),
        (
            "[[0.2, 0.5], [0.2, 0.5]",
            "line[1].points[1]",
            "repeats point 0",
        ),
        ("[0.8, 1.5]", "line[1].points[2]", "normalised 0..1"),
        (
            "crosses = \"fire-door\"",
            "rule[1].crosses",
            "no [[line]] named \"fire-door\"",
        ),
        (
            "dwell_seconds = 4",
            "rule[1].dwell_seconds",
            "no meaning on a line crossing",
        ),
        ("direction = \"out\"", "rule[2].direction", "needs `crosses"),
        (
            "min_occupancy = 5",
            "rule[3].min_occupancy",
            "above max_occupancy 2",
        ),
        (
            "name = \"gate\"  # the line",
            "line[1].name",
            "already a zone's name",
        ),
        (
            "events = []",
            "sink[1].events",
            "an empty events list sends nothing",
        ),
    ] {
        expect_in(&out, &text, needle, field, words);
    }
    // The occupancy rule's direction is its own problem, on the last `direction` line.
    assert!(
        out.contains("rule[3].direction") && out.contains("counts both directions"),
        "{out}"
    );
}
