//! FTPS: a rustls server config from the configured PEM files (explicit AUTH TLS, implicit port, PROT P data).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_cert_file {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("tls_key_file {path}: {message}")]
    Key { path: String, message: String },
    #[error("TLS settings: {0}")]
    Config(String),
}

/// The TLS acceptors every session shares.
#[derive(Clone)]
pub struct Acceptors {
    /// Control connections (AUTH TLS, the implicit port).
    pub control: TlsAcceptor,
    /// Data connections (PROT P): the same certificate and session cache, but no TLS 1.3 session tickets. A client
    /// that only writes (an upload) never reads tickets, and closing a socket with unread data sends a reset, which
    /// throws away the end of the upload still in its send buffer (curl --ssl-reqd -T failed with 426 that way).
    /// Clients resume data sessions with the tickets of the control connection.
    pub data: TlsAcceptor,
}

/// Builds the acceptors shared by every session.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<Acceptors, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert_file.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert_file.display().to_string(),
            message: "no certificate found in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Key {
        path: key_file.display().to_string(),
        message: e.to_string(),
    })?;
    acceptor_from_der(certs, key)
}

/// Builds the acceptors from certificates and key already in memory (tests generate them).
pub fn acceptor_from_der(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Acceptors, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    // Clients reuse the control connection's session for data connections (vsftpd's require_ssl_reuse);
    // a cache makes that resumption work.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(1024);
    let mut data = config.clone();
    data.send_tls13_tickets = 0;
    Ok(Acceptors {
        control: TlsAcceptor::from(Arc::new(config)),
        data: TlsAcceptor::from(Arc::new(data)),
    })
}
