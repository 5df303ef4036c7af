//! What a run's connections cost and agreed on, for `summary.json`: the
//! connections opened, their TLS versions, ALPN and resumptions, the
//! handshakes that failed by reason, and the warnings those failures give.
//! Takes the driver's connection totals; hands on [`ConnectionsSummary`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::summary::round3;
use crate::outcome::TlsFailure;
use crate::record::Totals;

/// The connections a run opened and what their handshakes agreed on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConnectionsSummary {
    /// The HTTP version spoken: `HTTP/1.1` or `HTTP/2`.
    pub http: String,
    /// True over TLS (`https://`).
    pub tls: bool,
    /// False: a new connection per request (`[client] reuse = false`).
    pub reuse: bool,
    /// `[client] max_connections`, the cap of open connections (0 in
    /// reports written before it was kept).
    #[serde(default)]
    pub max_connections: u64,
    /// `[client] wait_at_max`: an arrival that found every connection the
    /// cap allows busy waited for a free one (else it was `not_sent`).
    #[serde(default)]
    pub wait_at_max: bool,
    /// Connections opened (TCP connected and, over TLS, handshake done).
    pub opened: u64,
    /// Connections opened per second of the run.
    pub opened_per_s: f64,
    /// Handshakes that resumed a session (no full handshake).
    pub tls_resumed: u64,
    /// Handshakes by TLS version (`TLSv1.2`, `TLSv1.3`).
    pub tls_versions: BTreeMap<String, u64>,
    /// Handshakes by what ALPN agreed on (`h2`, `http/1.1`, `none`).
    pub alpn: BTreeMap<String, u64>,
    /// `tls_error` outcomes by reason (`unknown_ca`, `name_mismatch`,
    /// `bad_certificate`, `refused`, `protocol`, `no_h2`).
    pub tls_errors: BTreeMap<String, u64>,
}

impl ConnectionsSummary {
    pub(super) fn of(
        t: &crate::record::ConnectionTotals,
        d: &crate::driver::DriverOutput,
        client: &crate::scenario::ClientSpec,
    ) -> Self {
        let nonzero = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.to_string(), *n))
                .collect()
        };
        ConnectionsSummary {
            http: d.protocol.name().to_string(),
            tls: d.tls,
            reuse: client.reuse,
            max_connections: client.max_connections as u64,
            wait_at_max: client.wait_at_max,
            opened: t.opened,
            opened_per_s: round3(t.opened as f64 / d.duration_s.max(1e-9)),
            tls_resumed: t.resumed,
            tls_versions: nonzero(&[("TLSv1.2", t.tls12), ("TLSv1.3", t.tls13)]),
            alpn: nonzero(&[
                ("h2", t.alpn_h2),
                ("http/1.1", t.alpn_http11),
                ("none", t.alpn_none),
            ]),
            tls_errors: TlsFailure::ALL
                .iter()
                .filter(|r| t.tls_errors[r.index()] > 0)
                .map(|r| (r.name().to_string(), t.tls_errors[r.index()]))
                .collect(),
        }
    }
}

/// One warning per reason handshakes failed for, with its fix; the
/// first failure's own words; and a note that certificates went unchecked.
pub(super) fn connection_warnings(t: &Totals, insecure: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if insecure {
        warnings.push(
            "tls.insecure: the server's certificate was not checked (any certificate was accepted)"
                .to_string(),
        );
    }
    for reason in TlsFailure::ALL {
        let n = t.connections.tls_errors[reason.index()];
        if n > 0 {
            warnings.push(format!(
                "tls_error {n} ({}): {}",
                reason.name(),
                reason.fix()
            ));
        }
    }
    if let Some(first) = &t.first_handshake_error {
        warnings.push(format!("the first failed handshake said: {first}"));
    }
    warnings
}
