//! What opening connections cost, as the Recorder counts it: how many
//! were opened, their TCP connect and TLS handshake times, and what the
//! handshakes agreed on (TLS version, ALPN, resumption) or why they failed.

use hdrhistogram::Histogram;

use super::{add, new_histogram, ns_to_us};
use crate::outcome::TlsFailure;

/// The TLS protocol version a handshake agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// The application protocol ALPN agreed on (TLS only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`.
    H2,
    /// `http/1.1`.
    Http11,
    /// The server chose none.
    None,
}

/// What opening one new connection measured.
#[derive(Debug, Clone, Copy)]
pub struct Connected {
    /// TCP connect time, ns.
    pub connect_ns: u64,
    /// The TLS handshake, over TLS.
    pub tls: Option<Handshake>,
    /// The address it went to: its index in the target's address list
    /// (0 with a single address; see [`super::Recorder::with_addresses`]).
    pub addr: usize,
}

/// One TLS handshake that succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    /// From the ClientHello to the handshake's end, ns.
    pub handshake_ns: u64,
    /// The version agreed on.
    pub version: TlsVersion,
    /// What ALPN agreed on.
    pub alpn: Alpn,
    /// True when the session was resumed (no full handshake).
    pub resumed: bool,
}

/// The cost of the connections a run opened: how many, their TCP connect
/// and TLS handshake times, and what the handshakes agreed on.
#[derive(Debug, Clone)]
pub struct ConnectionTotals {
    /// Connections opened (TCP connects that succeeded).
    pub opened: u64,
    /// TCP connect time of each, us.
    pub connect_us: Histogram<u64>,
    /// TLS handshake time of each that completed one, us: one value per
    /// TLS connection opened.
    pub tls_handshake_us: Histogram<u64>,
    /// Handshakes that resumed a session.
    pub resumed: u64,
    /// Handshakes that agreed on TLS 1.2 and on TLS 1.3.
    pub tls12: u64,
    /// See `tls12`.
    pub tls13: u64,
    /// ALPN's choice: `h2`, `http/1.1`, none.
    pub alpn_h2: u64,
    /// See `alpn_h2`.
    pub alpn_http11: u64,
    /// See `alpn_h2`.
    pub alpn_none: u64,
    /// `tls_error` outcomes by reason, indexed by [`TlsFailure::index`].
    pub tls_errors: [u64; TlsFailure::ALL.len()],
}

impl ConnectionTotals {
    pub(super) fn new() -> Self {
        ConnectionTotals {
            opened: 0,
            connect_us: new_histogram(),
            tls_handshake_us: new_histogram(),
            resumed: 0,
            tls12: 0,
            tls13: 0,
            alpn_h2: 0,
            alpn_http11: 0,
            alpn_none: 0,
            tls_errors: [0; TlsFailure::ALL.len()],
        }
    }

    pub(super) fn record(&mut self, c: &Connected) {
        self.opened += 1;
        self.connect_us.saturating_record(ns_to_us(c.connect_ns));
        if let Some(h) = &c.tls {
            self.tls_handshake_us
                .saturating_record(ns_to_us(h.handshake_ns));
            self.resumed += u64::from(h.resumed);
            match h.version {
                TlsVersion::Tls12 => self.tls12 += 1,
                TlsVersion::Tls13 => self.tls13 += 1,
            }
            match h.alpn {
                Alpn::H2 => self.alpn_h2 += 1,
                Alpn::Http11 => self.alpn_http11 += 1,
                Alpn::None => self.alpn_none += 1,
            }
        }
    }

    pub(super) fn merge(&mut self, o: &ConnectionTotals) {
        self.opened += o.opened;
        add(&mut self.connect_us, &o.connect_us);
        add(&mut self.tls_handshake_us, &o.tls_handshake_us);
        self.resumed += o.resumed;
        self.tls12 += o.tls12;
        self.tls13 += o.tls13;
        self.alpn_h2 += o.alpn_h2;
        self.alpn_http11 += o.alpn_http11;
        self.alpn_none += o.alpn_none;
        for (a, b) in self.tls_errors.iter_mut().zip(o.tls_errors) {
            *a += b;
        }
    }
}
