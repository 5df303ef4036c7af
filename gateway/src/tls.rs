//! The gateway's TLS side: the acceptor for `tls_cert` and `tls_key`.
//!
//! Takes the certificate chain and key files (PEM) and whether HTTP/2 is
//! spoken; hands on a `TlsAcceptor` offering ALPN `h2` (when it is) and
//! `http/1.1`, on rustls with the `ring` provider. A file that cannot be
//! read or holds no certificate or key is an [`Error::Usage`] naming it.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::error::{Error, Result};

/// The acceptor for `files`, offering `h2` first when `http2` is on.
pub fn acceptor(files: &TlsFiles, http2: bool) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<std::result::Result<_, _>>())
        .map_err(|e| {
            Error::Usage(format!(
                "tls_cert {}: no certificate read ({e}): give a PEM certificate chain",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Usage(format!(
            "tls_cert {}: no certificate in it: give a PEM certificate chain",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        Error::Usage(format!(
            "tls_key {}: no private key read ({e}): give the certificate's PEM key",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            Error::Usage(format!(
                "tls_cert {} and tls_key {} do not make a server identity: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}
