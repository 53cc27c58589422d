//! Sealing: each committed body carries an HMAC under the device's outbox key, checked
//! before it is sent, so a body changed on disk is never delivered as genuine.

use super::{HmacSha256, Outbox};
use hmac::Mac;
use std::path::Path;

impl Outbox {
    pub(super) fn seal(&self, alert_id: &str, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; the key file is always 32 bytes.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(alert_id.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// The sealing key lives beside the database, readable by the service user only.
pub(super) fn load_or_create_key(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(k) if k.len() == 32 => return Ok(k),
        Ok(k) => {
            return Err(format!(
                "{}: expected a 32-byte key, found {} bytes",
                path.display(),
                k.len()
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let key: [u8; 32] = rand::random();
    let tmp = path.with_extension("key.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| format!("cannot create key {}: {e}", path.display()))?;
    Ok(key.to_vec())
}
