//! TLS client settings from PEM files: one place for every rustls client watchpost builds
//! (MQTT sinks and the fleet link), checked at config load with the same code that connects.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// A TLS setting that cannot be used, with the config field it came from.
#[derive(Debug)]
pub struct TlsProblem {
    pub field: &'static str,
    pub message: String,
}

fn read_pem<T>(
    field: &'static str,
    path: &Path,
    parse: impl FnOnce(&Path) -> Result<T, rustls::pki_types::pem::Error>,
) -> Result<T, TlsProblem> {
    parse(path).map_err(|e| TlsProblem {
        field,
        message: format!("{}: not a usable PEM file ({e})", path.display()),
    })
}

/// The rustls client configuration of an `mqtts://` connection (`None` for `mqtt://`): the
/// CAs of `ca_file` or else the system's, and the client certificate when one is configured.
/// Every MQTT connection watchpost makes (sinks and the fleet control link) is set up here.
pub fn tls_config_for(
    url: &str,
    ca_file: Option<&Path>,
    client_cert_file: Option<&Path>,
    client_key_file: Option<&Path>,
) -> Result<Option<Arc<rustls::ClientConfig>>, TlsProblem> {
    if !url.starts_with("mqtts://") {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    match &ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = read_pem("ca_file", path, |p| {
                CertificateDer::pem_file_iter(p)?.collect()
            })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TlsProblem {
                    field: "ca_file",
                    message: format!("{}: holds no CA certificate", path.display()),
                });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsProblem {
                    field: "url",
                    message: "mqtts:// needs CA certificates: the system has none (install ca-certificates) and no ca_file is set".into(),
                });
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsProblem {
            field: "url",
            message: format!("TLS: {e}"),
        })?
        .with_root_certificates(roots);
    let config = match (client_cert_file, client_key_file) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = read_pem("client_cert_file", cert, |p| {
                CertificateDer::pem_file_iter(p)?.collect()
            })?;
            if chain.is_empty() {
                return Err(TlsProblem {
                    field: "client_cert_file",
                    message: format!("{}: holds no certificate", cert.display()),
                });
            }
            let key = read_pem("client_key_file", key, |p| PrivateKeyDer::from_pem_file(p))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsProblem {
                    field: "client_key_file",
                    message: format!("the key does not fit the certificate: {e}"),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}
