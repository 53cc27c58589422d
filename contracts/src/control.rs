//! Signed fleet commands and config pushes (`watchpost/{device}/cmd/{name}`,
//! `watchpost/{device}/config/set`).
//!
//! Broker access is not enough to command a gateway: every command is signed with the
//! device's control key. The payload is JSON `{"ts": <unix seconds>, "nonce": "<unique>",
//! "args": {...}}`, and the MQTT 5 user property [`SIGNATURE_PROPERTY`] is `v1=` + hex
//! HMAC-SHA256(control key, `{topic}\n{payload}`) — the topic is inside the MAC, so a signed
//! `snapshot` cannot be replayed as a `restart-camera`. A command is refused, with the reason
//! on its result topic, when the signature is missing or wrong, when `ts` is more than
//! [`WINDOW_S`] from the device's clock, or when its nonce was already used in that window.
//! The console sends them ([`signed`]); the gateway admits them ([`Gate`]).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;

/// The MQTT 5 user property that carries the signature.
pub const SIGNATURE_PROPERTY: &str = "signature";

/// How far a command's `ts` may be from the device's clock, either way.
pub const WINDOW_S: i64 = 60;

/// A command's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub ts: i64,
    pub nonce: String,
    #[serde(default)]
    pub args: Value,
    /// Unix seconds after which the command must not run (the sender's MQTT 5 message
    /// expiry, made absolute and signed: a message that waited in a frozen gateway's socket
    /// buffer is past it even though the broker handed it over in time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// A command ready to publish: the payload bytes and the value of [`SIGNATURE_PROPERTY`].
#[derive(Debug, Clone)]
pub struct Signed {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// Signs `args` for `topic` at `ts` (unix seconds) with a fresh `nonce`, to be run no later
/// than `expires` (unix seconds) if given.
pub fn signed(
    key: &[u8],
    topic: &str,
    ts: i64,
    nonce: &str,
    args: Value,
    expires: Option<i64>,
) -> Signed {
    let envelope = Envelope {
        ts,
        nonce: nonce.to_string(),
        args,
        expires,
    };
    // A struct of a number, a string and a JSON value always serialises.
    let payload = serde_json::to_vec(&envelope).unwrap_or_default();
    let signature = format!("v1={}", sign(key, topic, &payload));
    Signed { payload, signature }
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
    #[error("expired: arrived {0} s after the sender's deadline")]
    Expired(i64),
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
    /// The keys accepted: the current one, and during a rotation the previous one.
    keys: Vec<Vec<u8>>,
    seen: HashMap<String, i64>,
}

impl Gate {
    pub fn new(key: Option<Vec<u8>>) -> Self {
        Self::with_keys(key.into_iter().collect())
    }

    /// A gate that accepts any of `keys` (a rotation: the new key and the previous one).
    pub fn with_keys(keys: Vec<Vec<u8>>) -> Self {
        Self {
            keys,
            seen: HashMap::new(),
        }
    }

    /// The keys changed (a config push): the nonces seen stay remembered.
    pub fn set_keys(&mut self, keys: Vec<Vec<u8>>) {
        self.keys = keys;
    }

    /// Returns the nonce and args of an authentic, fresh, first-seen command.
    pub fn admit(
        &mut self,
        topic: &str,
        payload: &[u8],
        signature: Option<&str>,
        now_s: i64,
    ) -> Result<(String, Value), Refusal> {
        if self.keys.is_empty() {
            return Err(Refusal::NoKey);
        }
        let sig = signature
            .and_then(|s| s.strip_prefix("v1="))
            .ok_or(Refusal::Unsigned)?;
        let sig = hex::decode(sig).map_err(|_| Refusal::BadSignature)?;
        let authentic = self.keys.iter().any(|key| {
            <Hmac<Sha256>>::new_from_slice(key).is_ok_and(|mut mac| {
                mac.update(topic.as_bytes());
                mac.update(b"\n");
                mac.update(payload);
                // Constant-time comparison.
                mac.verify_slice(&sig).is_ok()
            })
        });
        if !authentic {
            return Err(Refusal::BadSignature);
        }
        let env: Envelope =
            serde_json::from_slice(payload).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let skew = env.ts - now_s;
        if skew.abs() > WINDOW_S {
            return Err(Refusal::Stale(skew));
        }
        if let Some(e) = env.expires.filter(|e| now_s > *e) {
            return Err(Refusal::Expired(now_s - e));
        }
        self.seen.retain(|_, ts| now_s - *ts <= 2 * WINDOW_S);
        if self.seen.insert(env.nonce.clone(), now_s).is_some() {
            return Err(Refusal::Replayed);
        }
        Ok((env.nonce, env.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn during_a_rotation_both_keys_pass_and_after_it_only_the_new_one() {
        let (old, new) = (
            b"the-old-control-key".to_vec(),
            b"the-new-control-key".to_vec(),
        );
        let topic = "watchpost/gw/cmd/snapshot";
        let mut gate = Gate::with_keys(vec![new.clone(), old.clone()]);
        let a = super::signed(&old, topic, 100, "a", json!({}), None);
        let b = super::signed(&new, topic, 100, "b", json!({}), None);
        assert!(gate
            .admit(topic, &a.payload, Some(&a.signature), 100)
            .is_ok());
        assert!(gate
            .admit(topic, &b.payload, Some(&b.signature), 100)
            .is_ok());
        gate.set_keys(vec![new.clone()]);
        let c = super::signed(&old, topic, 100, "c", json!({}), None);
        assert_eq!(
            gate.admit(topic, &c.payload, Some(&c.signature), 100),
            Err(Refusal::BadSignature)
        );
        gate.set_keys(Vec::new());
        assert_eq!(
            gate.admit(topic, &b.payload, Some(&b.signature), 100),
            Err(Refusal::NoKey)
        );
    }

    #[test]
    fn what_the_console_signs_the_gateway_admits() {
        let key = b"a-control-key-of-16".to_vec();
        let topic = "watchpost/gw/config/set";
        let m = super::signed(
            &key,
            topic,
            5000,
            "n-1",
            json!({"merge": "[device]"}),
            Some(5002),
        );
        let late = super::signed(&key, topic, 5000, "n-2", json!({}), Some(5000));
        let mut gate = Gate::new(Some(key));
        assert_eq!(
            gate.admit(topic, &late.payload, Some(&late.signature), 5003),
            Err(Refusal::Expired(3))
        );
        let (nonce, args) = gate
            .admit(topic, &m.payload, Some(&m.signature), 5001)
            .expect("admitted");
        assert_eq!(nonce, "n-1");
        assert_eq!(args["merge"], "[device]");
    }
}
