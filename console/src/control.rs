//! Requests to gateways: signed commands and config pushes over MQTT 5 request/response.
//!
//! Each request is written to the audit log first (who, when, what, to whom), then published
//! signed with the gateway's control key (`watchpost_contracts::control::signed`), with the
//! request's id as correlation data, the contract's result topic as response topic, and a
//! message expiry: a gateway that comes back after the expiry never sees it; the same
//! deadline, absolute and signed inside the envelope, makes the gateway refuse one that
//! reached it in time but waited (a frozen process, a full socket buffer). The answer comes back through ingest (possibly to
//! another replica) and is written onto the request's row; whoever waits reads the row.

use crate::store::{NewRequest, RequestRow, Store, StoreError};
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;
use std::sync::Arc;
use std::time::Duration;
use watchpost_contracts::control::{signed, SIGNATURE_PROPERTY};
use watchpost_contracts::topics;

/// The commands a gateway runs (`watchpost/{device}/cmd/{name}`).
pub const COMMANDS: [&str; 3] = ["replay-dead-letters", "restart-camera", "snapshot"];

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("gateway \"{0}\" is not enrolled here (no control key): add it first")]
    NotEnrolled(String),
    #[error("gateway \"{0}\" is enrolled already; its key is not shown again")]
    Enrolled(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot publish: {0}")]
    Publish(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to ask a gateway.
#[derive(Debug, Clone)]
pub enum Ask {
    /// `config/set` with a whole file (`toml`) or a partial document (`merge`).
    Config { whole: bool, text: String },
    Command {
        name: String,
        args: serde_json::Value,
    },
}

impl Ask {
    fn kind(&self) -> String {
        match self {
            Ask::Config { .. } => "config/set".into(),
            Ask::Command { name, .. } => format!("cmd/{name}"),
        }
    }

    /// What the audit log keeps of it: never a secret the pushed config carries.
    pub fn what(&self) -> String {
        match self {
            Ask::Config { whole, text } => format!(
                "{}:\n{}",
                if *whole { "whole config" } else { "merge" },
                redact_toml(text)
            ),
            Ask::Command { args, .. } => args.to_string(),
        }
    }

    fn topic(&self, device: &str) -> (String, String) {
        match self {
            Ask::Config { .. } => (topics::config_set(device), topics::config_result(device)),
            Ask::Command { name, .. } => (
                topics::command(device, name),
                topics::command_result(device, name),
            ),
        }
    }

    fn args(&self) -> serde_json::Value {
        match self {
            Ask::Config { whole: true, text } => serde_json::json!({ "toml": text }),
            Ask::Config { whole: false, text } => serde_json::json!({ "merge": text }),
            Ask::Command { args, .. } => args.clone(),
        }
    }

    pub fn check(&self) -> Result<(), ControlError> {
        match self {
            Ask::Command { name, .. } if !COMMANDS.contains(&name.as_str()) => {
                Err(ControlError::Invalid(format!(
                    "unknown command \"{name}\" ({})",
                    COMMANDS.join(", ")
                )))
            }
            Ask::Config { text, .. } if text.parse::<toml_edit::DocumentMut>().is_err() => {
                Err(ControlError::Invalid(
                    "the config is not TOML (the gateway would refuse it)".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Keys whose values never enter the audit log.
const SECRET_KEYS: [&str; 8] = [
    "secret",
    "password",
    "control_key",
    "control_key_previous",
    "routing_key",
    "token",
    "api_key",
    "key",
];

/// `text` with every secret-named value replaced by "(secret)"; TOML that does not parse is
/// described, not copied.
pub fn redact_toml(text: &str) -> String {
    fn walk(t: &mut dyn toml_edit::TableLike) {
        for (k, item) in t.iter_mut() {
            if SECRET_KEYS.contains(&k.get()) && item.is_value() {
                *item = toml_edit::value("(secret)");
            } else if let Some(sub) = item.as_table_like_mut() {
                walk(sub);
            } else if let Some(arr) = item.as_array_of_tables_mut() {
                for sub in arr.iter_mut() {
                    walk(sub);
                }
            }
        }
    }
    match text.parse::<toml_edit::DocumentMut>() {
        Ok(mut doc) => {
            walk(doc.as_table_mut());
            doc.to_string()
        }
        Err(_) => format!("(not TOML, {} bytes)", text.len()),
    }
}

pub struct Control {
    client: AsyncClient,
    store: Arc<Store>,
}

impl Control {
    pub fn new(client: AsyncClient, store: Arc<Store>) -> Self {
        Self { client, store }
    }

    /// A new control key for `device` (shown once, to put in its `[control.mqtt]`).
    pub async fn enrol(&self, who: &str, device: &str) -> Result<String, ControlError> {
        let (s, w, d) = (self.store.clone(), who.to_string(), device.to_string());
        let key = tokio::task::spawn_blocking(move || enrol_offline(&s, &w, &d))
            .await
            .map_err(|e| ControlError::Invalid(e.to_string()))??;
        tracing::info!(device, by = who, "gateway enrolled");
        Ok(key)
    }

    /// Rotates `device`'s control key: pushes a new key, signed with the current one, with
    /// the current one as `control_key_previous` (the gateway accepts both from then on), and
    /// keeps the new key once the gateway answers that it applied it. Commands in flight
    /// signed with the old key still pass; a later push may drop `control_key_previous`.
    pub async fn rotate(
        &self,
        who: &str,
        device: &str,
        wait: Duration,
    ) -> Result<RequestRow, ControlError> {
        let (s, d) = (self.store.clone(), device.to_string());
        let old = tokio::task::spawn_blocking(move || s.key(&d))
            .await
            .map_err(|e| ControlError::Invalid(e.to_string()))??
            .ok_or_else(|| ControlError::NotEnrolled(device.to_string()))?;
        let new = new_key();
        let ask = Ask::Config {
            whole: false,
            text: format!(
                "[control.mqtt]\ncontrol_key = \"{new}\"\ncontrol_key_previous = \"{old}\"\n"
            ),
        };
        let id = self
            .send(who, device, &ask, None, wait.max(Duration::from_secs(10)))
            .await?;
        let row = self.wait(&id, wait).await?;
        if row.outcome == "applied" {
            let (s, d) = (self.store.clone(), device.to_string());
            tokio::task::spawn_blocking(move || s.set_key(&d, &new))
                .await
                .map_err(|e| ControlError::Invalid(e.to_string()))??;
            tracing::info!(device, by = who, "control key rotated");
        }
        Ok(row)
    }

    /// Records and publishes one request; its id (the correlation data).
    pub async fn send(
        &self,
        who: &str,
        device: &str,
        ask: &Ask,
        rollout: Option<&str>,
        expiry: Duration,
    ) -> Result<String, ControlError> {
        ask.check()?;
        let (s, d) = (self.store.clone(), device.to_string());
        let key = tokio::task::spawn_blocking(move || s.key(&d))
            .await
            .map_err(|e| ControlError::Invalid(e.to_string()))??
            .ok_or_else(|| ControlError::NotEnrolled(device.to_string()))?;
        let id = ulid::Ulid::new().to_string();
        let now = crate::store::now_ms();
        let expiry_s = expiry.as_secs().clamp(1, 3600) as u32;
        {
            let (s, id, d, kind, what, who, rollout) = (
                self.store.clone(),
                id.clone(),
                device.to_string(),
                ask.kind(),
                ask.what(),
                who.to_string(),
                rollout.map(str::to_string),
            );
            tokio::task::spawn_blocking(move || {
                s.add_request(&NewRequest {
                    id: &id,
                    rollout: rollout.as_deref(),
                    device: &d,
                    kind: &kind,
                    what: &what,
                    who: &who,
                    sent_ms: now,
                    expires_ms: now + i64::from(expiry_s) * 1000,
                })
            })
            .await
            .map_err(|e| ControlError::Invalid(e.to_string()))??;
        }
        let (topic, response) = ask.topic(device);
        let m = signed(
            key.as_bytes(),
            &topic,
            now / 1000,
            &id,
            ask.args(),
            Some(now / 1000 + i64::from(expiry_s)),
        );
        let props = PublishProperties {
            message_expiry_interval: Some(expiry_s),
            response_topic: Some(response),
            correlation_data: Some(bytes::Bytes::from(id.clone().into_bytes())),
            user_properties: vec![(SIGNATURE_PROPERTY.to_string(), m.signature)],
            ..Default::default()
        };
        if let Err(e) = self
            .client
            .publish_with_properties(topic, QoS::AtLeastOnce, false, m.payload, props)
            .await
        {
            let (s, i, why) = (self.store.clone(), id.clone(), e.to_string());
            let _ = tokio::task::spawn_blocking(move || {
                s.settle_request(
                    &i,
                    false,
                    &serde_json::json!({"ok": false, "error": format!("not sent: {why}")}),
                )
            })
            .await;
            return Err(ControlError::Publish(e.to_string()));
        }
        tracing::info!(device, request = %id, kind = %ask.kind(), by = who, "request sent");
        Ok(id)
    }

    /// The request's row once answered, or as it is after `within`.
    pub async fn wait(&self, id: &str, within: Duration) -> Result<RequestRow, ControlError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (s, i) = (self.store.clone(), id.to_string());
            let row = tokio::task::spawn_blocking(move || s.request(&i))
                .await
                .map_err(|e| ControlError::Invalid(e.to_string()))??
                .ok_or_else(|| ControlError::Invalid(format!("no request {id}")))?;
            if row.answered_ms.is_some() || tokio::time::Instant::now() >= deadline {
                return Ok(row);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// 32 random bytes, hex: a control key.
fn new_key() -> String {
    use rand::Rng;
    let mut b = [0u8; 32];
    rand::rng().fill(&mut b);
    hex::encode(b)
}

/// Makes and stores `device`'s control key and audits it (the page and
/// `watchpost-console enrol` alike).
pub fn enrol_offline(store: &Store, who: &str, device: &str) -> Result<String, ControlError> {
    let valid = !device.is_empty()
        && device.len() <= 64
        && device
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(ControlError::Invalid(
            "device: 1 to 64 letters, digits, '-', '_' or '.' (the gateway's device.id)".into(),
        ));
    }
    let key = new_key();
    if !store.add_key(device, &key)? {
        return Err(ControlError::Enrolled(device.to_string()));
    }
    let id = ulid::Ulid::new().to_string();
    let now = crate::store::now_ms();
    store.add_request(&NewRequest {
        id: &id,
        rollout: None,
        device,
        kind: "enrol",
        what: "a control key was made",
        who,
        sent_ms: now,
        expires_ms: now,
    })?;
    store.settle_request(&id, true, &serde_json::json!({"ok": true}))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_secrets_never_reach_the_audit_log() {
        let text = "[[sink]]\nname = \"hook\"\nsecret = \"whsec_abc\"\n[control.mqtt]\ncontrol_key = \"k-123\"\npassword = \"pw\"\nurl = \"mqtt://h\"\n";
        let r = redact_toml(text);
        for s in ["whsec_abc", "k-123", "\"pw\""] {
            assert!(!r.contains(s), "{s} in {r}");
        }
        assert!(
            r.contains("name = \"hook\"") && r.contains("mqtt://h"),
            "{r}"
        );
        assert_eq!(redact_toml("= nope"), "(not TOML, 6 bytes)");
    }
}
