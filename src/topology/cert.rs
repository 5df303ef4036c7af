//! Certificates made for one run: a CA of its own and a server
//! certificate it signed, for a gateway the harness starts with TLS.
//!
//! Takes a folder (the component's temporary one) and the names the
//! certificate is for; writes `ca.pem`, `cert.pem` (the server's chain)
//! and `key.pem` there with `rcgen`, and hands on their paths and the CA
//! (which the driver then trusts). Nothing is reused between runs and no
//! key is ever kept in the repository: the folder goes when the run ends.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::error::{Error, Result};

/// The names a run's server certificate is for: the loopback names.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A server certificate, its key and the CA that signed it, on disk.
#[derive(Debug, Clone)]
pub struct RunCertificate {
    /// The CA's certificate, PEM (what a client must trust).
    pub ca_pem: String,
    /// The CA's certificate file.
    pub ca_path: PathBuf,
    /// The server's certificate chain file (its own, then the CA's).
    pub cert_path: PathBuf,
    /// The server's private key file.
    pub key_path: PathBuf,
}

/// Makes a CA and a server certificate for `names` (DNS names or IP
/// addresses) in `dir`, files named `PREFIX-ca.pem`, `PREFIX-cert.pem`
/// and `PREFIX-key.pem` (`prefix` empty: `ca.pem`, `cert.pem`, `key.pem`).
pub fn make(dir: &Path, prefix: &str, names: &[&str]) -> Result<RunCertificate> {
    let failed =
        |e: rcgen::Error| Error::Runtime(format!("cannot make the run's certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own: a client that trusts another run's CA must not
    // take this one for it (same name, wrong key) but find it unknown.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("contend run CA {}-{stamp}", std::process::id()),
    );
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).map_err(failed)?;
    let key = KeyPair::generate().map_err(failed)?;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut server = CertificateParams::new(names).map_err(failed)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "contend gateway");
    let server = server.signed_by(&key, &ca, &ca_key).map_err(failed)?;
    let name = |file: &str| {
        if prefix.is_empty() {
            dir.join(file)
        } else {
            dir.join(format!("{prefix}-{file}"))
        }
    };
    let out = RunCertificate {
        ca_pem: ca.pem(),
        ca_path: name("ca.pem"),
        cert_path: name("cert.pem"),
        key_path: name("key.pem"),
    };
    let write =
        |path: &Path, text: &str| std::fs::write(path, text).map_err(|e| Error::io(path, e));
    write(&out.ca_path, &out.ca_pem)?;
    write(&out.cert_path, &format!("{}{}", server.pem(), out.ca_pem))?;
    write(&out.key_path, &key.serialize_pem())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_certificate_is_trusted_through_its_own_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let cert = make(dir.path(), "", &LOOPBACK_NAMES).unwrap();
        let chain = std::fs::read_to_string(&cert.cert_path).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(
            std::fs::read_to_string(&cert.key_path)
                .unwrap()
                .contains("PRIVATE KEY")
        );
        let other = make(dir.path(), "other", &LOOPBACK_NAMES).unwrap();
        assert_ne!(other.ca_pem, cert.ca_pem);
        assert!(other.cert_path.ends_with("other-cert.pem"));
    }
}
