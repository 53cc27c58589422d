//! Webhook signatures, computed at send time over the committed bytes.
//!
//! Standard Webhooks: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), key = the
//! base64 part of a `whsec_` secret. Hex: lowercase hex HMAC-SHA256 of the body, keyed with
//! the secret's UTF-8 bytes. Both are a few lines over the `hmac` crate; the one Rust crate
//! for the Standard Webhooks scheme pulls in a second HTTP stack for no gain.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How a sink signs; holds key material, so it never implements `Debug` with contents.
#[derive(Clone)]
pub enum Signer {
    /// Several keys during a rotation: one `v1,` signature each, so receivers holding either
    /// the old or the new secret verify.
    StandardWebhooks {
        keys: Vec<Vec<u8>>,
    },
    Hex {
        secret: Vec<u8>,
        header: String,
    },
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::StandardWebhooks { .. } => f.write_str("StandardWebhooks(***)"),
            Signer::Hex { header, .. } => write!(f, "Hex(header={header}, ***)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("a standard-webhooks secret must be \"whsec_\" followed by base64")]
    BadSecret,
}

impl Signer {
    /// `secrets`: one or more `whsec_…` values separated by whitespace.
    pub fn standard_webhooks(secrets: &str) -> Result<Self, SignError> {
        let keys = secrets
            .split_whitespace()
            .map(|secret| {
                secret
                    .strip_prefix("whsec_")
                    .and_then(|k| B64.decode(k).ok())
                    .filter(|k| !k.is_empty())
                    .ok_or(SignError::BadSecret)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SignError::BadSecret);
        }
        Ok(Signer::StandardWebhooks { keys })
    }

    pub fn hex(secret: &str, header: &str) -> Self {
        Signer::Hex {
            secret: secret.as_bytes().to_vec(),
            header: header.to_string(),
        }
    }

    /// The headers to add to one attempt, signed with that attempt's timestamp.
    pub fn headers(&self, alert_id: &str, unix_ts: i64, body: &[u8]) -> Vec<(String, String)> {
        match self {
            Signer::StandardWebhooks { keys } => {
                let sigs: Vec<String> = keys
                    .iter()
                    .map(|key| format!("v1,{}", standard_signature(key, alert_id, unix_ts, body)))
                    .collect();
                vec![
                    ("webhook-id".into(), alert_id.to_string()),
                    ("webhook-timestamp".into(), unix_ts.to_string()),
                    ("webhook-signature".into(), sigs.join(" ")),
                ]
            }
            Signer::Hex { secret, header } => vec![(header.clone(), hex_signature(secret, body))],
        }
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of every length; this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The MAC over `{id}.{timestamp}.{body}`, the signed content of Standard Webhooks.
fn standard_mac(key: &[u8], id: &str, unix_ts: i64, body: &[u8]) -> HmacSha256 {
    let mut m = mac(key);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(unix_ts.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`.
pub fn standard_signature(key: &[u8], id: &str, unix_ts: i64, body: &[u8]) -> String {
    B64.encode(standard_mac(key, id, unix_ts, body).finalize().into_bytes())
}

pub fn hex_signature(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Checks a `webhook-signature` header (space-separated `v1,<b64>` entries) in constant time.
pub fn verify_standard(key: &[u8], id: &str, unix_ts: i64, body: &[u8], header: &str) -> bool {
    let m = standard_mac(key, id, unix_ts, body);
    header
        .split_whitespace()
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| B64.decode(b64).ok())
        .any(|bytes| m.clone().verify_slice(&bytes).is_ok())
}
