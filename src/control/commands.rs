//! Fleet commands over MQTT: `watchpost/{device}/cmd/{name}`, answered on
//! `watchpost/{device}/cmd/{name}/result`.
//!
//! Broker access is not enough to command a gateway: every command is signed with the
//! device's control key. The payload is JSON `{"ts": <unix seconds>, "nonce": "<unique>",
//! "args": {...}}`, and the MQTT 5 user property `signature` is `v1=` + hex
//! HMAC-SHA256(control key, `{topic}\n{payload}`) — the topic is inside the MAC, so a signed
//! `snapshot` cannot be replayed as a `restart-camera`. A command is refused, with the reason
//! on its result topic, when the signature is missing or wrong, when `ts` is more than
//! [`WINDOW_S`] from the device's clock, or when its nonce was already used in that window.

use super::gateway::Gateway;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;

/// How far a command's `ts` may be from the device's clock, either way.
pub const WINDOW_S: i64 = 60;

#[derive(Deserialize)]
struct Envelope {
    ts: i64,
    nonce: String,
    #[serde(default)]
    args: Value,
}

/// Why a command was not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refusal {
    #[error("commands are disabled: no control_key is configured on the device")]
    NoKey,
    #[error("unsigned: the user property \"signature\" (v1=<hex HMAC-SHA256>) is missing")]
    Unsigned,
    #[error("bad signature")]
    BadSignature,
    #[error("not JSON {{\"ts\", \"nonce\", \"args\"}}: {0}")]
    Malformed(String),
    #[error("stale: ts is {0} s from the device's clock (window {WINDOW_S} s)")]
    Stale(i64),
    #[error("replayed: nonce already used")]
    Replayed,
}

/// The hex MAC a sender puts after `v1=` (also used by tests and fleet tools).
pub fn sign(key: &[u8], topic: &str, payload: &[u8]) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(topic.as_bytes());
    mac.update(b"\n");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks signatures, freshness and nonces; remembers nonces for the window.
pub struct Gate {
    key: Option<Vec<u8>>,
    seen: HashMap<String, i64>,
}

impl Gate {
    pub fn new(key: Option<Vec<u8>>) -> Self {
        Self {
            key,
            seen: HashMap::new(),
        }
    }

    /// Returns the nonce and args of an authentic, fresh, first-seen command.
    pub fn admit(
        &mut self,
        topic: &str,
        payload: &[u8],
        signature: Option<&str>,
        now_s: i64,
    ) -> Result<(String, Value), Refusal> {
        let key = self.key.as_ref().ok_or(Refusal::NoKey)?;
        let sig = signature
            .and_then(|s| s.strip_prefix("v1="))
            .ok_or(Refusal::Unsigned)?;
        let sig = hex::decode(sig).map_err(|_| Refusal::BadSignature)?;
        let mut mac = <Hmac<Sha256>>::new_from_slice(key).map_err(|_| Refusal::BadSignature)?;
        mac.update(topic.as_bytes());
        mac.update(b"\n");
        mac.update(payload);
        // Constant-time comparison.
        mac.verify_slice(&sig).map_err(|_| Refusal::BadSignature)?;
        let env: Envelope =
            serde_json::from_slice(payload).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let skew = env.ts - now_s;
        if skew.abs() > WINDOW_S {
            return Err(Refusal::Stale(skew));
        }
        self.seen.retain(|_, ts| now_s - *ts <= 2 * WINDOW_S);
        if self.seen.insert(env.nonce.clone(), now_s).is_some() {
            return Err(Refusal::Replayed);
        }
        Ok((env.nonce, env.args))
    }
}

/// Runs an admitted command; the JSON is the `result` field of the answer.
pub async fn run(name: &str, args: &Value, gw: &Gateway) -> Result<Value, String> {
    let camera = || {
        args.get("camera")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "args.camera (a camera name) is required".to_string())
    };
    match name {
        "replay-dead-letters" => {
            let r = gw
                .replay_dead_letters(None)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(r).map_err(|e| e.to_string())
        }
        "restart-camera" => {
            let name = camera()?;
            gw.restart_camera(&name).await.map_err(|e| e.to_string())?;
            Ok(json!({ "camera": name, "restarted": true }))
        }
        "snapshot" => {
            use base64::Engine as _;
            let name = camera()?;
            let picture = gw.camera_picture(&name).await.map_err(|e| e.to_string())?;
            Ok(json!({
                "camera": name,
                "width": picture.width,
                "height": picture.height,
                "jpeg_base64": base64::engine::general_purpose::STANDARD.encode(picture.jpeg),
            }))
        }
        other => Err(format!(
            "unknown command \"{other}\" (replay-dead-letters, restart-camera, snapshot)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "watchpost/gw/cmd/snapshot";

    fn signed(key: &[u8], payload: &str) -> String {
        format!("v1={}", sign(key, TOPIC, payload.as_bytes()))
    }

    #[test]
    fn only_signed_fresh_first_seen_commands_pass() {
        let key = b"control-key".to_vec();
        let mut gate = Gate::new(Some(key.clone()));
        let p = r#"{"ts": 1000, "nonce": "a", "args": {"camera": "yard"}}"#;
        let ok = gate.admit(TOPIC, p.as_bytes(), Some(&signed(&key, p)), 1010);
        assert_eq!(ok.unwrap().0, "a");
        assert_eq!(
            gate.admit(TOPIC, p.as_bytes(), Some(&signed(&key, p)), 1011),
            Err(Refusal::Replayed)
        );
        assert_eq!(
            gate.admit(TOPIC, p.as_bytes(), None, 1010),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            gate.admit(TOPIC, p.as_bytes(), Some(&signed(b"other-key", p)), 1010),
            Err(Refusal::BadSignature)
        );
        // The topic is signed: the same payload and signature on another command fail.
        assert_eq!(
            gate.admit(
                "watchpost/gw/cmd/restart-camera",
                p.as_bytes(),
                Some(&signed(&key, p)),
                1010
            ),
            Err(Refusal::BadSignature)
        );
        let old = r#"{"ts": 900, "nonce": "b"}"#;
        assert_eq!(
            gate.admit(TOPIC, old.as_bytes(), Some(&signed(&key, old)), 1000),
            Err(Refusal::Stale(-100))
        );
        let mut keyless = Gate::new(None);
        assert_eq!(
            keyless.admit(TOPIC, p.as_bytes(), Some(&signed(&key, p)), 1000),
            Err(Refusal::NoKey)
        );
    }
}
