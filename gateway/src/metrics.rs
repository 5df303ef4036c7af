//! `/metrics`: the gateway's counters in the Prometheus text format
//! (requests by status, in flight, queue depth, breaker state, per-key
//! accounted seconds). Rendering only; `proxy` keeps the counters.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::proxy::Gateway;

/// The exposition text.
pub(crate) fn render(gateway: &Gateway) -> String {
    let m = &gateway.metrics;
    let mut out = String::with_capacity(1024);
    out.push_str("# HELP contend_gateway_requests_total Requests answered, by status.\n");
    out.push_str("# TYPE contend_gateway_requests_total counter\n");
    for (status, count) in m.by_status.iter().enumerate() {
        let count = count.load(Ordering::Relaxed);
        if count > 0 {
            let _ = writeln!(
                out,
                "contend_gateway_requests_total{{status=\"{status}\"}} {count}"
            );
        }
    }
    out.push_str("# HELP contend_gateway_upstream_in_flight Requests in flight to the upstream.\n");
    out.push_str("# TYPE contend_gateway_upstream_in_flight gauge\n");
    let _ = writeln!(
        out,
        "contend_gateway_upstream_in_flight {}",
        m.upstream_in_flight.load(Ordering::Relaxed)
    );
    out.push_str("# HELP contend_gateway_queue_depth Requests waiting for a concurrency slot.\n");
    out.push_str("# TYPE contend_gateway_queue_depth gauge\n");
    for route in &gateway.routes {
        if let Some(limit) = &route.concurrency {
            let _ = writeln!(
                out,
                "contend_gateway_queue_depth{{route=\"{}\"}} {}",
                route.prefix,
                limit.queue_depth()
            );
        }
    }
    out.push_str(
        "# HELP contend_gateway_breaker_state Circuit breaker: 0 closed, 1 open, 2 half-open.\n",
    );
    out.push_str("# TYPE contend_gateway_breaker_state gauge\n");
    for route in &gateway.routes {
        if route.breaker.is_some() {
            let _ = writeln!(
                out,
                "contend_gateway_breaker_state{{route=\"{}\"}} {}",
                route.prefix,
                route.breaker_state().gauge()
            );
        }
    }
    out.push_str(
        "# HELP contend_gateway_accounted_seconds_total Upstream seconds accounted per key.\n",
    );
    out.push_str("# TYPE contend_gateway_accounted_seconds_total counter\n");
    let mut keys: Vec<(String, f64)> = m
        .accounted_s
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, seconds) in keys {
        let key = key.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "contend_gateway_accounted_seconds_total{{key=\"{key}\"}} {seconds}"
        );
    }
    if let Some(shared) = &gateway.shared {
        render_shared(&mut out, shared);
    }
    out
}

/// The shared rate limit's counters: totals, per key (the first
/// [`crate::store::MAX_KEY_SERIES`] keys), and the store calls made.
fn render_shared(out: &mut String, shared: &crate::store::SharedLimit) {
    let counters = shared.counters.lock().unwrap_or_else(|e| e.into_inner());
    let outcomes = |c: &crate::store::KeyCounts| {
        [
            ("admitted", c.admitted),
            ("limited", c.limited),
            ("store_error", c.store_errors),
            ("fail_open", c.fail_open),
        ]
    };
    out.push_str("# HELP contend_gateway_rate_limit_total Rate-limit decisions of the shared store, by outcome (fail_open admissions are also store errors).\n");
    out.push_str("# TYPE contend_gateway_rate_limit_total counter\n");
    for (outcome, n) in outcomes(&counters.total) {
        let _ = writeln!(
            out,
            "contend_gateway_rate_limit_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    out.push_str(
        "# HELP contend_gateway_rate_limit_key_total Rate-limit decisions per key, by outcome.\n",
    );
    out.push_str("# TYPE contend_gateway_rate_limit_key_total counter\n");
    let mut keys: Vec<_> = counters.keys.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (key, c) in keys {
        let key = key.replace('\\', "\\\\").replace('"', "\\\"");
        for (outcome, n) in outcomes(c) {
            let _ = writeln!(
                out,
                "contend_gateway_rate_limit_key_total{{key=\"{key}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    out.push_str("# HELP contend_gateway_rate_limit_untracked_total Decisions for keys past the per-key series.\n");
    out.push_str("# TYPE contend_gateway_rate_limit_untracked_total counter\n");
    let _ = writeln!(
        out,
        "contend_gateway_rate_limit_untracked_total {}",
        counters.untracked_keys
    );
    out.push_str("# HELP contend_gateway_store_calls_total Calls made to the rate-limit store.\n");
    out.push_str("# TYPE contend_gateway_store_calls_total counter\n");
    let _ = writeln!(out, "contend_gateway_store_calls_total {}", counters.calls);
}
