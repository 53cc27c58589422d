//! The server side of HTTPS: which certificate, and rustls around it.

use crate::WebError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn cert_err(path: &Path, message: impl ToString) -> WebError {
    WebError::Certificate {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The configured pair, or the self-signed one in `dir` (`cert.pem`, `key.pem`, made when
/// missing, for `names`).
pub fn certificate(
    configured: Option<(&Path, &Path)>,
    dir: &Path,
    names: &[&str],
) -> Result<(PathBuf, PathBuf), WebError> {
    if let Some((c, k)) = configured {
        return Ok((c.to_path_buf(), k.to_path_buf()));
    }
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).map_err(|e| cert_err(dir, e))?;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| cert_err(&cert, e))?;
    // The key first, private from birth; then the certificate that names it.
    write_private(&key, made.key_pair.serialize_pem().as_bytes()).map_err(|e| cert_err(&key, e))?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| cert_err(&cert, e))?;
    tracing::info!(cert = %cert.display(), "web: made a self-signed certificate");
    Ok((cert, key))
}

/// Writes a file only its owner can read (mode 0600 from creation) and syncs it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// rustls (ring) for the pair, and the SHA-256 fingerprint of the certificate (to pin).
pub fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::ServerConfig>, String), WebError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect())
        .map_err(|e| cert_err(cert, format!("not a PEM certificate ({e})")))?;
    let first = chain
        .first()
        .ok_or_else(|| cert_err(cert, "holds no certificate"))?;
    let fingerprint = sha2::Sha256::digest(first.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| cert_err(key, format!("not a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_err(cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| cert_err(cert, format!("the key does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), fingerprint))
}
