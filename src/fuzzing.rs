//! The bodies of the fuzz targets (`fuzz/`, `scripts/fuzz`), kept in the library so that the
//! committed corpus and every crash reproducer also run as ordinary tests
//! (`tests/it/fuzz_corpus.rs`). Each takes raw bytes, drives one parser that meets outside
//! input, and panics only where the gateway would be wrong: a panic the parser itself raises,
//! or a broken property (a secret left in a redacted URL, a bad row stopping the others).
//!
//! Not part of the shipped binary (features `fuzzing` and `test-helpers`).

use crate::config::Config;
use std::path::Path;

/// The config loader (check-config, the page's whole-file edit, MQTT `config/set`).
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::from_toml(text, Path::new("fuzz.toml"), Path::new("/nonexistent"));
}

/// A config that passes the checks, for the targets that edit one.
pub const BASE_CONFIG: &str = r#"[device]
id = "gw-1"
data_dir = "/tmp/watchpost-fuzz-unused"

[model]
path = "models/nanodet-416.onnx"
labels = "models/coco80.txt"

[[camera]]
name = "dock"
url = "rtsp://user:secret@127.0.0.1:8554/stream1"

[[rule]]
name = "person"
labels = ["person"]

[[sink]]
name = "ops"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_c2VjcmV0"
"#;

/// REST config bodies: `PUT /api/config/{section}/{name}` (a JSON item written into the
/// file) and `PUT /api/config` merges; the first byte picks the section, the rest is JSON.
pub fn rest_config_item(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let section = ["camera", "rule", "zone", "sink", "nothing"][pick as usize % 5];
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    if let Ok(text) = crate::control::edit::put_item(BASE_CONFIG, section, "fuzzed", &json) {
        let _ = Config::from_toml(&text, Path::new("fuzz.toml"), Path::new("/nonexistent"));
    }
    if let Ok(partial) = std::str::from_utf8(body) {
        let _ = crate::control::edit::merge(BASE_CONFIG, partial);
    }
}

/// The key the MQTT-command target signs with.
const COMMAND_KEY: &[u8] = b"fuzz-control-key-0123456789";

/// MQTT control messages: topic, payload and the `signature` user property. Inputs whose
/// first byte is odd are signed with the device's key, so the envelope parser behind the
/// signature check is reached too. Layout: flag, topic length, topic, signature length,
/// signature, payload.
pub fn mqtt_command(data: &[u8]) {
    let mut rest = data;
    let mut take = |n: usize| {
        let (a, b) = rest.split_at(n.min(rest.len()));
        rest = b;
        a
    };
    let flag = take(1).first().copied().unwrap_or(0);
    let tlen = take(1).first().copied().unwrap_or(0) as usize;
    let topic = String::from_utf8_lossy(take(tlen)).to_string();
    let slen = take(1).first().copied().unwrap_or(0) as usize;
    let sig = String::from_utf8_lossy(take(slen)).to_string();
    let payload = rest.to_vec();
    let signature = if flag & 1 == 1 {
        Some(format!(
            "v1={}",
            crate::control::commands::sign(COMMAND_KEY, &topic, &payload)
        ))
    } else if flag & 2 == 2 {
        Some(sig)
    } else {
        None
    };
    let mut gate = crate::control::commands::Gate::new(Some(COMMAND_KEY.to_vec()));
    let now = 1_800_000_000;
    let first = gate.admit(&topic, &payload, signature.as_deref(), now);
    // The same message twice is never admitted twice.
    let again = gate.admit(&topic, &payload, signature.as_deref(), now);
    assert!(
        !(first.is_ok() && again.is_ok()),
        "a replayed command was admitted"
    );
}

/// Camera URLs with credentials: what logs, status pages and MQTT state show. The redacted
/// form never carries the password.
pub fn camera_url(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let shown = crate::config::redact_url(raw);
    if let Ok(u) = url::Url::parse(raw) {
        // What a reader of the shown URL would take for its password is gone. (The same
        // characters may well appear elsewhere in it, in the path or the host.)
        if u.password().is_some_and(|p| !p.is_empty() && p != "***") {
            let again = url::Url::parse(&shown).ok();
            assert!(
                again
                    .as_ref()
                    .and_then(|a| a.password())
                    .is_none_or(|p| p == "***"),
                "password left in {shown:?}"
            );
        }
    } else if let Some(at) = raw.rfind('@') {
        // Unparsable: everything before the last `@` (where credentials would be) is gone.
        assert_eq!(shown, format!("***{}", &raw[at..]), "credentials left");
    }
}

/// Model loading (the file named in `[model]`, a switched model, SIGHUP): any bytes are
/// refused with an error, never a panic. Returns the refusal, if any.
pub fn model_file(data: &[u8], scratch: &Path) -> Option<String> {
    let model = scratch.join("model.onnx");
    let labels = scratch.join("labels.txt");
    if std::fs::write(&model, data).is_err() || std::fs::write(&labels, "person\n").is_err() {
        return None;
    }
    let spec = crate::detect::DetectorSpec {
        model,
        labels,
        kind: crate::config::ModelKind::Auto,
        input_size: None,
        threads: 1,
        score_threshold: None,
    };
    crate::detect::Detector::load(&spec)
        .err()
        .map(|e| e.to_string())
}

/// The outbox row decoder: one delivery row whose columns hold whatever types and values the
/// input gives (as a damaged or hand-edited database would). `due` must neither fail nor
/// panic on it, and a sound row beside it must still be handed out.
pub fn outbox_row(data: &[u8], db: &Path) {
    use rusqlite::types::Value;
    let outbox = match crate::outbox::Outbox::open(db) {
        Ok(o) => o,
        Err(e) => panic!("fuzz outbox: {e}"),
    };
    let mut outbox = outbox;
    let conn = rusqlite::Connection::open(db).expect("second connection");
    conn.execute_batch("DELETE FROM attempts; DELETE FROM deliveries; DELETE FROM alerts;")
        .expect("reset");
    let alert = |n: usize| crate::outbox::NewAlert {
        alert_id: format!("01JFUZZ{n:019}"),
        created_at: chrono::DateTime::from_timestamp_millis(1_800_000_000_000).expect("time"),
        camera: "dock".into(),
        rule: "person".into(),
        severity: "high".into(),
        body: format!("{{\"n\":{n}}}").into_bytes(),
        sinks: vec![crate::outbox::NewDelivery::to("ops")],
    };
    outbox.commit(&[alert(1), alert(2)]).expect("commit");
    let mut chunks = data.chunks(9);
    let mut value = || -> Value {
        let Some(c) = chunks.next() else {
            return Value::Null;
        };
        let (&kind, rest) = c.split_first().unwrap_or((&0, &[]));
        match kind % 5 {
            0 => Value::Null,
            1 => Value::Integer(i64::from_le_bytes(
                rest.iter()
                    .copied()
                    .chain(std::iter::repeat(0))
                    .take(8)
                    .collect::<Vec<u8>>()
                    .try_into()
                    .unwrap_or([0; 8]),
            )),
            2 => Value::Real(rest.first().copied().unwrap_or(0) as f64 / 3.0),
            3 => Value::Text(String::from_utf8_lossy(rest).to_string()),
            _ => Value::Blob(rest.to_vec()),
        }
    };
    // The first alert's columns, as the input says (NOT NULL columns refuse NULL: skipped).
    for col in ["alert_id", "camera", "body", "seal", "created_at"] {
        let v = value();
        let _ = conn.execute(
            &format!("UPDATE alerts SET {col} = ?1 WHERE seq = 1"),
            rusqlite::params![v],
        );
    }
    for col in ["body", "seal", "attempts", "sink"] {
        let v = value();
        let _ = conn.execute(
            &format!("UPDATE deliveries SET {col} = ?1 WHERE alert_seq = 1"),
            rusqlite::params![v],
        );
    }
    let rows = match outbox.due("ops", i64::MAX, 10) {
        Ok(r) => r,
        Err(e) => panic!("one odd row failed the whole batch: {e}"),
    };
    assert!(
        rows.iter().any(|r| r.alert_id == alert(2).alert_id),
        "the sound row was not handed out: {rows:?}"
    );
}
