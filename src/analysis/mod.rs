//! Analyses: pure functions over finished, typed results; no I/O but the
//! streaming read of a gateway's access log handed to [`gateway_log`].
//!
//! - [`knee`]: Kneedle (Satopaa et al., 2011) on a curve such as P99 against offered load.
//! - [`usl`]: the Universal Scalability Law fitted to throughput against concurrency.
//! - [`gateway_log`]: a gateway's access log read into per-key accounting.
//! - [`haproxy_log`]: HAProxy's access line, its ms, `-1`s and termination state.
//! - [`join`]: requests joined across the client, the gateway's log and the upstream by id.
//! - [`accounting`]: the abort audit: gateway-accounted time per key against the upstream's truth.
//! - [`client_aborts`]: per gateway mode, what it logged for a client abort and what the upstream did.
//! - [`ps_model`]: the processor-sharing model of the concurrency limit a gateway timeout allows.
//! - [`censored`]: from an access log alone, the work it cut short, by a censored-data fit
//!   per key, the under-count that follows, and the knee where logged time stops.

pub mod accounting;
pub mod censored;
pub mod client_aborts;
pub mod gateway_log;
pub mod haproxy_log;
pub mod join;
pub mod knee;
pub mod ps_model;
pub mod usl;

/// `x` rounded to `places` decimals, as the reports show it.
pub(crate) fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}
