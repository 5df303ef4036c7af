//! The client's connection settings: the HTTP version it speaks and how
//! it speaks TLS (`[client] http`, `streams_per_connection`, `tls`), as
//! validated values for the driver. `build_client` reads them from the
//! file and the flags.

use std::path::PathBuf;

/// HTTP/2 streams per connection when the server sets no
/// `MAX_CONCURRENT_STREAMS` (RFC 9113 asks servers for at least 100).
pub const DEFAULT_STREAMS_PER_CONNECTION: u32 = 100;

/// The HTTP version the driver speaks (`[client] http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// `"1.1"`: HTTP/1.1, one request at a time per connection (the default).
    #[default]
    Http1,
    /// `"2"`: HTTP/2, each arrival a stream; over TLS the server must agree
    /// to `h2` in ALPN, in cleartext it is h2c with prior knowledge.
    Http2,
    /// `"auto"`: over TLS, what ALPN agrees on (`h2` offered first); in
    /// cleartext, HTTP/1.1.
    Auto,
}

impl HttpVersion {
    /// The name in scenario files: `1.1`, `2` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "1.1",
            HttpVersion::Http2 => "2",
            HttpVersion::Auto => "auto",
        }
    }
}

/// A TLS protocol version the client may be held to (`tls.version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersionSpec {
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// `[client] tls`: trust, identity and sessions for `https://` targets.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSpec {
    /// `ca = "file.pem"`: CA certificates trusted beside the system's.
    pub ca: Option<PathBuf>,
    /// `insecure = true`: accept any server certificate (self-signed test
    /// gateways); said loudly on the console.
    pub insecure: bool,
    /// `cert = "client.pem"`: the client certificate chain for mTLS.
    pub cert: Option<PathBuf>,
    /// `key = "client.key"`: its private key.
    pub key: Option<PathBuf>,
    /// `sni = "name"`: the server name asked for (and checked in the
    /// certificate) instead of the URL's host.
    pub sni: Option<String>,
    /// `resumption = false`: every handshake is a full one (no session
    /// tickets or ids kept).
    pub resumption: bool,
    /// `version = "1.2"` or `"1.3"`: only that version; none: either.
    pub version: Option<TlsVersionSpec>,
}

impl Default for TlsSpec {
    fn default() -> Self {
        TlsSpec {
            ca: None,
            insecure: false,
            cert: None,
            key: None,
            sni: None,
            resumption: true,
            version: None,
        }
    }
}
