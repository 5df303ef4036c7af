//! What connections cost a sweep step: new connections per second, the
//! TLS handshake's p99, the gateway's CPU per request, and, with
//! `[sweep] keep_alive_baseline`, the same figures of the step's keep-alive
//! twin (the same load on reused connections) beside them.
//!
//! Takes a step's [`StepResult`] (and its twin's); fills the connection
//! columns of its [`StepRow`]. Pure: no I/O.

use hdrhistogram::Histogram;

use super::step::StepResult;
use super::sweep::StepRow;

/// What a step's keep-alive twin measured, for its row.
#[derive(Debug, Clone, Copy)]
pub struct Twin {
    p50_us: u64,
    p99_us: u64,
    gateway_cpu_us_per_request: Option<f64>,
}

impl Twin {
    /// The figures of the keep-alive twin `result`.
    pub fn of(result: &StepResult) -> Twin {
        let latency = &result.driver.totals.latency_us;
        Twin {
            p50_us: at(latency, 0.5),
            p99_us: at(latency, 0.99),
            gateway_cpu_us_per_request: gateway_cpu_us_per_request(result),
        }
    }
}

/// Fills `row`'s connection columns from `result`, and its keep-alive
/// columns from `twin` when there is one.
pub fn fill(row: &mut StepRow, result: &StepResult, twin: Option<Twin>) {
    let c = &result.driver.totals.connections;
    row.new_connections_per_s = round3(c.opened as f64 / result.driver.duration_s.max(1e-9));
    row.tls_handshake_p99_us = at(&c.tls_handshake_us, 0.99);
    row.gateway_cpu_us_per_request = gateway_cpu_us_per_request(result);
    if let Some(twin) = twin {
        row.keep_alive_p50_us = Some(twin.p50_us);
        row.keep_alive_p99_us = Some(twin.p99_us);
        row.keep_alive_gateway_cpu_us_per_request = twin.gateway_cpu_us_per_request;
    }
}

/// The gateway's CPU over the step (warm-up included) per response, us;
/// `None` without a gateway the harness started, or without a response.
fn gateway_cpu_us_per_request(result: &StepResult) -> Option<f64> {
    let responses: u64 = result.driver.totals.counts.statuses().map(|(_, n)| n).sum();
    let cpu_s = result.cpu.gateway_s?;
    (responses > 0).then(|| round3(cpu_s * 1e6 / responses as f64))
}

/// The value at `q`, 0 for an empty histogram.
fn at(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

fn round3(x: f64) -> f64 {
    crate::analysis::round(x, 3)
}
