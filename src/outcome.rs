//! What became of one arrival: the leaf type every other module shares.
//!
//! Every scheduled arrival ends in exactly one [`Outcome`]. A failed request is
//! an outcome, never an error: the driver records it and goes on.

/// The fate of one scheduled arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A complete response with this exact status code.
    Response(u16),
    /// The client's deadline passed first; the request was dropped and its
    /// connection closed, so the server sees a real client abort.
    ClientTimeout,
    /// No connection could be made (refused, unreachable).
    ConnectError,
    /// The TCP connection was made but its TLS handshake (or, with HTTP/2
    /// over TLS, the ALPN agreement on `h2`) failed, for this reason.
    TlsError(TlsFailure),
    /// The connection failed mid-exchange: reset, closed early, not HTTP.
    IoError,
    /// Never sent: the connection cap was reached when it was due.
    NotSent,
}

/// The classes outcomes are counted and histogrammed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Any 2xx response.
    Success,
    /// 429 Too Many Requests.
    TooMany,
    /// 503 Service Unavailable.
    Unavailable,
    /// 504 Gateway Timeout.
    GatewayTimeout,
    /// Any other 1xx/3xx/4xx/5xx response.
    OtherStatus,
    /// See [`Outcome::ClientTimeout`].
    ClientTimeout,
    /// See [`Outcome::ConnectError`].
    ConnectError,
    /// See [`Outcome::TlsError`].
    TlsError,
    /// See [`Outcome::IoError`].
    IoError,
    /// See [`Outcome::NotSent`].
    NotSent,
}

impl Class {
    /// Every class, in the order reports show them.
    pub const ALL: [Class; 10] = [
        Class::Success,
        Class::TooMany,
        Class::Unavailable,
        Class::GatewayTimeout,
        Class::OtherStatus,
        Class::ClientTimeout,
        Class::ConnectError,
        Class::TlsError,
        Class::IoError,
        Class::NotSent,
    ];

    /// The name used in CSV columns and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Class::Success => "2xx",
            Class::TooMany => "429",
            Class::Unavailable => "503",
            Class::GatewayTimeout => "504",
            Class::OtherStatus => "other_status",
            Class::ClientTimeout => "client_timeout",
            Class::ConnectError => "connect_error",
            Class::TlsError => "tls_error",
            Class::IoError => "io_error",
            Class::NotSent => "not_sent",
        }
    }

    /// True for the classes of complete responses (any status).
    pub fn is_response(self) -> bool {
        matches!(
            self,
            Class::Success
                | Class::TooMany
                | Class::Unavailable
                | Class::GatewayTimeout
                | Class::OtherStatus
        )
    }

    /// Position in [`Class::ALL`], for array-indexed counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Outcome {
    /// The class this outcome is counted under.
    pub fn class(self) -> Class {
        match self {
            Outcome::Response(s) if (200..300).contains(&s) => Class::Success,
            Outcome::Response(429) => Class::TooMany,
            Outcome::Response(503) => Class::Unavailable,
            Outcome::Response(504) => Class::GatewayTimeout,
            Outcome::Response(_) => Class::OtherStatus,
            Outcome::ClientTimeout => Class::ClientTimeout,
            Outcome::ConnectError => Class::ConnectError,
            Outcome::TlsError(_) => Class::TlsError,
            Outcome::IoError => Class::IoError,
            Outcome::NotSent => Class::NotSent,
        }
    }

    /// True when the request reached the wire (every outcome but `NotSent`,
    /// `ConnectError` and `TlsError`).
    pub fn was_sent(self) -> bool {
        !matches!(
            self,
            Outcome::NotSent | Outcome::ConnectError | Outcome::TlsError(_)
        )
    }
}

/// Why a TLS handshake failed: the reasons `tls_error` is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsFailure {
    /// The server's certificate chains to no CA the client trusts.
    UnknownCa,
    /// The certificate is valid but not for the name asked for (SNI).
    NameMismatch,
    /// Any other problem with the server's certificate (expired, not yet
    /// valid, revoked, unsupported).
    BadCertificate,
    /// The server ended the handshake with an alert (it refused the client's
    /// certificate, or had none to offer, or shares no cipher or version).
    Refused,
    /// What came back was not TLS, or not the TLS the client offered (a
    /// plaintext server behind an `https://` URL, a cut handshake).
    Protocol,
    /// `http = "2"` over TLS, and the server did not agree to `h2` in ALPN.
    NoH2,
}

impl TlsFailure {
    /// Every reason, in the order reports show them.
    pub const ALL: [TlsFailure; 6] = [
        TlsFailure::UnknownCa,
        TlsFailure::NameMismatch,
        TlsFailure::BadCertificate,
        TlsFailure::Refused,
        TlsFailure::Protocol,
        TlsFailure::NoH2,
    ];

    /// The name in summary.json and the console.
    pub fn name(self) -> &'static str {
        match self {
            TlsFailure::UnknownCa => "unknown_ca",
            TlsFailure::NameMismatch => "name_mismatch",
            TlsFailure::BadCertificate => "bad_certificate",
            TlsFailure::Refused => "refused",
            TlsFailure::Protocol => "protocol",
            TlsFailure::NoH2 => "no_h2",
        }
    }

    /// What to do about it, for the console's one line.
    pub fn fix(self) -> &'static str {
        match self {
            TlsFailure::UnknownCa => {
                "the server's certificate is not signed by a CA contend trusts: give [client] tls.ca = \"ca.pem\" \
                 (the CA that signed it), or tls.insecure = true (--insecure) for a self-signed test gateway"
            }
            TlsFailure::NameMismatch => {
                "the server's certificate is not for the name in the URL: use the name it was issued for, \
                 or set [client] tls.sni = \"NAME\" to ask for that name"
            }
            TlsFailure::BadCertificate => {
                "the server's certificate is not valid (expired, not yet valid, or unsupported): renew it, \
                 or tls.insecure = true (--insecure) for a test gateway"
            }
            TlsFailure::Refused => {
                "the server refused the handshake with an alert: it may want a client certificate \
                 ([client] tls.cert and tls.key), or share no TLS version or cipher with contend (TLS 1.2 and 1.3)"
            }
            TlsFailure::Protocol => {
                "the server did not speak TLS: is it a plaintext server behind an https:// URL? Use http:// for it"
            }
            TlsFailure::NoH2 => {
                "the server did not agree to HTTP/2 (ALPN h2): it speaks HTTP/1.1 only; use [client] http = \"1.1\" \
                 or \"auto\""
            }
        }
    }

    /// Position in [`TlsFailure::ALL`], for array-indexed counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_status_codes() {
        assert_eq!(Outcome::Response(204).class(), Class::Success);
        assert_eq!(Outcome::Response(429).class(), Class::TooMany);
        assert_eq!(Outcome::Response(503).class(), Class::Unavailable);
        assert_eq!(Outcome::Response(504).class(), Class::GatewayTimeout);
        assert_eq!(Outcome::Response(404).class(), Class::OtherStatus);
        assert_eq!(Outcome::Response(500).class(), Class::OtherStatus);
        assert_eq!(
            Outcome::TlsError(TlsFailure::UnknownCa).class(),
            Class::TlsError
        );
        assert!(!Outcome::TlsError(TlsFailure::Protocol).was_sent());
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        for (i, r) in TlsFailure::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
