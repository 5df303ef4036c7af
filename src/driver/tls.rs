//! The driver's TLS client: its rustls configuration from a scenario's
//! `[client] tls`, and what a failed handshake is called.
//!
//! Takes a [`TlsSpec`], the ALPN protocols to offer and any CA the harness
//! made for the run; hands on a [`TlsClient`] (a rustls `ClientConfig` on
//! the `ring` provider and the server name to ask for). Reading a CA,
//! certificate or key file that is missing or holds no PEM is an
//! [`Error::Usage`] naming the file and the fix. [`failure`] turns a
//! handshake's error into the [`TlsFailure`] it is counted under. No
//! sockets here: `conn` does the handshakes.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};
use crate::outcome::TlsFailure;
use crate::scenario::{TlsSpec, TlsVersionSpec};

/// Sessions each shard keeps for resumption (rustls' default).
const SESSIONS_PER_SHARD: usize = 256;

/// ALPN's name for HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN's name for HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// A ready TLS client: its configuration and the server name it asks for.
#[derive(Clone)]
pub struct TlsClient {
    /// The rustls configuration (roots, identity, ALPN, resumption).
    pub config: Arc<ClientConfig>,
    /// The name sent in SNI and checked in the server's certificate.
    pub server_name: ServerName<'static>,
    /// Whether sessions are kept for resumption.
    pub resumption: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("alpn", &self.config.alpn_protocols)
            .field("resumption", &self.resumption)
            .finish()
    }
}

impl TlsClient {
    /// Builds the client for `spec`, asking for `host` (the URL's, unless
    /// `tls.sni` says otherwise), offering `alpn`, trusting the system's
    /// roots, `tls.ca` and `extra_ca_pem` (a CA the harness made for the run).
    pub fn new(
        spec: &TlsSpec,
        host: &str,
        alpn: &[&[u8]],
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<TlsClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match spec.version {
            None => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Some(TlsVersionSpec::Tls12) => &[&rustls::version::TLS12],
            Some(TlsVersionSpec::Tls13) => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| Error::Usage(format!("[client] tls.version: {e}")))?;
        let builder = if spec.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else {
            builder.with_root_certificates(roots(spec.ca.as_deref(), extra_ca_pem)?)
        };
        let mut config = match (&spec.cert, &spec.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "[client] tls.cert")?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    Error::Usage(format!(
                        "[client] tls.key {}: no private key read ({e}): give a PEM file holding the \
                         client certificate's key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
                        key.display()
                    ))
                })?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    Error::Usage(format!(
                        "[client] tls.cert {} and tls.key {} do not make a client identity: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.resumption = if spec.resumption {
            Resumption::in_memory_sessions(SESSIONS_PER_SHARD)
        } else {
            Resumption::disabled()
        };
        let name = spec.sni.as_deref().unwrap_or(host);
        let server_name =
            ServerName::try_from(name.trim_matches(['[', ']']).to_string()).map_err(|_| {
                Error::Usage(format!(
                    "{name:?} is not a name TLS can ask for: give [client] tls.sni = \"NAME\""
                ))
            })?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
            resumption: spec.resumption,
        })
    }

    /// A copy with its own session store: each shard resumes its own
    /// sessions, so no lock is shared between driver threads.
    pub fn for_shard(&self) -> TlsClient {
        let mut config = (*self.config).clone();
        if self.resumption {
            config.resumption = Resumption::in_memory_sessions(SESSIONS_PER_SHARD);
        }
        TlsClient {
            config: Arc::new(config),
            server_name: self.server_name.clone(),
            resumption: self.resumption,
        }
    }

    /// A copy offering `alpn` instead.
    pub fn with_alpn(&self, alpn: &[&[u8]]) -> TlsClient {
        let mut config = (*self.config).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsClient {
            config: Arc::new(config),
            server_name: self.server_name.clone(),
            resumption: self.resumption,
        }
    }
}

/// The system's roots (what `rustls-native-certs` finds), `ca` and the
/// harness's CA.
fn roots(ca: Option<&Path>, extra_ca_pem: Option<&[u8]>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    // A system without a CA bundle still reaches servers whose CA is
    // given; their certificates then fail as unknown_ca, counted.
    let native = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(native.certs);
    if let Some(path) = ca {
        for cert in read_certs(path, "[client] tls.ca")? {
            store.add(cert).map_err(|e| {
                Error::Usage(format!(
                    "[client] tls.ca {}: a certificate cannot be trusted as a CA: {e}",
                    path.display()
                ))
            })?;
        }
    }
    if let Some(pem) = extra_ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem).flatten() {
            store
                .add(cert)
                .map_err(|e| Error::Runtime(format!("the run's own CA is not usable: {e}")))?;
        }
    }
    Ok(store)
}

/// Every certificate in the PEM file at `path`, at least one.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "{what} {}: cannot read it ({e}): check the path (relative paths start at the working folder)",
            path.display()
        ))
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Usage(format!("{what} {}: not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Usage(format!(
            "{what} {}: no certificate in it: give a PEM file with -----BEGIN CERTIFICATE----- blocks",
            path.display()
        )));
    }
    Ok(certs)
}

/// The reason a handshake that ended in `error` is counted under;
/// `offered_h2`: ALPN offered `h2` (so a server that agrees to none of
/// the offer speaks no HTTP/2). rustls' own error travels inside the I/O
/// error tokio-rustls hands back.
pub fn failure(error: &std::io::Error, offered_h2: bool) -> TlsFailure {
    use rustls::CertificateError as C;
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        // The peer closed or reset mid-handshake: not the TLS it expected.
        return TlsFailure::Protocol;
    };
    match tls {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => TlsFailure::UnknownCa,
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => TlsFailure::NameMismatch,
        rustls::Error::InvalidCertificate(_) => TlsFailure::BadCertificate,
        rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
            if offered_h2 =>
        {
            TlsFailure::NoH2
        }
        rustls::Error::AlertReceived(_) | rustls::Error::PeerIncompatible(_) => TlsFailure::Refused,
        _ => TlsFailure::Protocol,
    }
}

/// `tls.insecure`: every certificate is accepted, but the handshake's
/// signatures are still checked (the connection is still TLS).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_errors_are_named_by_their_reason() {
        use rustls::CertificateError as C;
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let cases = [
            (
                io(rustls::Error::InvalidCertificate(C::UnknownIssuer)),
                TlsFailure::UnknownCa,
            ),
            (
                io(rustls::Error::InvalidCertificate(C::NotValidForName)),
                TlsFailure::NameMismatch,
            ),
            (
                io(rustls::Error::InvalidCertificate(C::Expired)),
                TlsFailure::BadCertificate,
            ),
            (
                io(rustls::Error::AlertReceived(
                    rustls::AlertDescription::HandshakeFailure,
                )),
                TlsFailure::Refused,
            ),
            (
                io(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType,
                )),
                TlsFailure::Protocol,
            ),
            (
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                TlsFailure::Protocol,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(failure(&error, false), want, "{error}");
        }
        let no_alpn = io(rustls::Error::AlertReceived(
            rustls::AlertDescription::NoApplicationProtocol,
        ));
        assert_eq!(failure(&no_alpn, true), TlsFailure::NoH2);
        assert_eq!(failure(&no_alpn, false), TlsFailure::Refused);
    }

    #[test]
    fn missing_and_empty_files_are_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let spec = |ca: &Path| TlsSpec {
            ca: Some(ca.to_path_buf()),
            ..TlsSpec::default()
        };
        let missing = TlsClient::new(&spec(&dir.path().join("nope.pem")), "h", &[], None)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.pem: cannot read it"), "{missing}");
        let none = TlsClient::new(&spec(&empty), "h", &[], None)
            .unwrap_err()
            .to_string();
        assert!(none.contains("no certificate in it"), "{none}");
    }
}
