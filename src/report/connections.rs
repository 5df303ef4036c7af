//! What a run's connections cost and agreed on, for `summary.json`: the
//! connections opened, their TLS versions, ALPN and resumptions, the
//! handshakes that failed by reason, and the warnings those failures give.
//! Takes the driver's connection totals; hands on [`ConnectionsSummary`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::summary::round3;
use crate::outcome::TlsFailure;
use crate::record::Totals;
use crate::scenario::ClientSpec;

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
        client: &ClientSpec,
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
/// first failure's own words; a note that certificates went unchecked; and
/// the arrivals a stop left waiting for a connection.
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
    if t.not_sent_at_stop > 0 {
        warnings.push(format!(
            "stopped with {} arrivals still waiting for a connection: counted not_sent, never sent",
            t.not_sent_at_stop
        ));
    }
    warnings
}

/// Connections opened per second past which a generator-bound open loop
/// is told how to keep a fixed pool.
const CHURN_PER_S: f64 = 100.0;
/// ... and past this many in all (the warm connections, at most 256 per
/// driver thread, are not churn).
const CHURN_OPENED: u64 = 1000;

/// For a generator-bound open loop that kept opening connections for
/// arrivals that found every one busy (each a connect for the driver and an
/// accept for the target): how to keep a fixed pool instead.
pub(super) fn connection_churn(t: &Totals, client: &ClientSpec, duration_s: f64) -> Option<String> {
    let opened = t.connections.opened;
    let per_s = opened as f64 / duration_s.max(1e-9);
    if !client.reuse || client.wait_at_max || opened <= CHURN_OPENED || per_s < CHURN_PER_S {
        return None;
    }
    Some(format!(
        "{opened} connections opened ({per_s:.0}/s) for arrivals that found every connection busy, \
         each a connect for contend and an accept for the target: for a fixed pool as in wrk2 and \
         oha, give --max-connections N --wait-at-max (arrivals then wait for a free connection; \
         latency still counts from their intended time)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_churning_open_loop_is_told_of_the_fixed_pool() {
        let mut t = Totals::new(0);
        let client = ClientSpec::default();
        // A 75k/s run that spiralled: 3,300 connections in 5 s.
        t.connections.opened = 3300;
        let hint = connection_churn(&t, &client, 5.0).expect("a hint");
        assert!(
            hint.starts_with("3300 connections opened (660/s)") && hint.contains("--wait-at-max"),
            "{hint}"
        );
        // Not when it already waits at the cap, opens one per request on
        // purpose, or only warmed its pool (256 per thread at most).
        let waiting = ClientSpec {
            wait_at_max: true,
            ..ClientSpec::default()
        };
        let fresh = ClientSpec {
            reuse: false,
            ..ClientSpec::default()
        };
        assert_eq!(connection_churn(&t, &waiting, 5.0), None);
        assert_eq!(connection_churn(&t, &fresh, 5.0), None);
        t.connections.opened = 512;
        assert_eq!(connection_churn(&t, &client, 1.0), None);
        // Nor at a trickle over a long run.
        t.connections.opened = 5000;
        assert_eq!(connection_churn(&t, &client, 600.0), None);
    }

    #[test]
    fn a_stop_that_left_arrivals_waiting_says_so() {
        let mut t = Totals::new(0);
        assert!(connection_warnings(&t, false).is_empty());
        t.not_sent_at_stop = 7;
        assert_eq!(
            connection_warnings(&t, false),
            vec![
                "stopped with 7 arrivals still waiting for a connection: counted not_sent, never sent"
                    .to_string()
            ]
        );
    }
}
