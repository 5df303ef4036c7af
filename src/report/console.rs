//! The console summary, wrk2's shape with the open-loop facts added.
//!
//! Takes a [`Summary`] and a writer; prints latency from the intended send
//! time, its distribution, outcomes, rates, schedule lag and the driver's
//! own cost, and says plainly when the generator was the bottleneck.

use std::io::{self, Write};

use super::summary::{DriverSummary, KeySummary, Percentiles, Summary};
use crate::experiment::sweep::{ClosedStepRow, StepRow, SweepResult};

/// wrk's latency format, the one every table and message uses; the
/// report's other writers name it through this module.
pub use contend_units::fmt_us;

/// `value`, one of `p`'s quantiles, as wrk prints it; `-` when `p` holds
/// nothing (no response: a 0us would read as a measurement).
fn quantile(p: &Percentiles, value: u64) -> String {
    if p.count == 0 {
        "-".into()
    } else {
        fmt_us(value)
    }
}

fn row(w: &mut dyn Write, label: &str, p: &Percentiles) -> io::Result<()> {
    writeln!(
        w,
        "  {label:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        quantile(p, p.p50),
        quantile(p, p.p90),
        quantile(p, p.p99),
        quantile(p, p.p999),
        quantile(p, p.max),
        quantile(p, p.mean as u64)
    )
}

/// A shard's place in its load, or what a merged report was made of.
fn write_shards(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    if let Some(shard) = s
        .shard
        .as_ref()
        .filter(|x| x.count > 1 || x.start_at.is_some())
    {
        let late = match shard.start_late_s {
            Some(late) if late > 0.0 => format!("; began {late:.3}s after --start-at"),
            _ => String::new(),
        };
        writeln!(
            w,
            "  shard {} of {} on {}{late}",
            shard.index, shard.count, shard.host
        )?;
    }
    if let Some(m) = &s.merged {
        let hosts: Vec<String> = m
            .shards
            .iter()
            .map(|x| format!("{} ({})", x.index, x.host))
            .collect();
        let missing = if m.missing.is_empty() {
            String::new()
        } else {
            format!("; MISSING shards {:?}", m.missing)
        };
        writeln!(
            w,
            "  merged from {} shards: {}; starts {:.3}s apart{missing}",
            m.shards.len(),
            hosts.join(", "),
            m.start_spread_s
        )?;
    }
    Ok(())
}

/// Writes the human summary of a run.
pub fn write(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    let load = match s.closed_loop_connections {
        Some(n) => format!("closed loop, {n} connections"),
        None => format!("{:.0} req/s intended", s.intended_rate_per_s),
    };
    writeln!(
        w,
        "{} @ {}: {:.1}s, {} driver threads, {load}{}",
        s.name,
        s.target,
        s.duration_s,
        s.driver.threads,
        if s.interrupted { " (interrupted)" } else { "" }
    )?;
    write_shards(w, s)?;
    writeln!(
        w,
        "  {:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p90", "p99", "p99.9", "max", "mean"
    )?;
    row(w, "Latency", &s.latency_us)?;
    row(w, "Service time", &s.service_time_us)?;
    row(w, "Schedule lag", &s.schedule_lag_us)?;
    // Reports written before the split have no generator lag (count 0).
    if s.generator_lag_us.count > 0 {
        row(w, " of generator", &s.generator_lag_us)?;
    }
    if s.closed_loop_connections.is_some() {
        writeln!(
            w,
            "  (closed loop: each request is sent when the last one ends, so latency is\n   service time and hides queueing; use a rate for open-loop latency)"
        )?;
    } else if s.retries.is_some() {
        writeln!(
            w,
            "  (latency counts from each arrival's intended send time to its last attempt's answer:\n   what the caller waited, retries included; service time is per attempt)"
        )?;
    } else {
        writeln!(
            w,
            "  (latency counts from each request's intended send time)"
        )?;
    }
    write_keys(w, s)?;
    if let Some(space) = &s.key_space {
        space.write(w)?;
    }
    let responses: Vec<String> = s
        .outcomes
        .responses
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect();
    writeln!(
        w,
        "  {} arrivals, {} sent; responses {{{}}}",
        s.arrivals,
        s.sent,
        if responses.is_empty() {
            "none".to_string()
        } else {
            responses.join(", ")
        }
    )?;
    writeln!(
        w,
        "  client_timeout {}, connect_error {}, tls_error {}, io_error {}, not_sent {}",
        s.outcomes.client_timeout,
        s.outcomes.connect_error,
        s.outcomes.tls_error,
        s.outcomes.io_error,
        s.outcomes.not_sent
    )?;
    write_connections(w, s)?;
    if let Some(r) = &s.retries {
        writeln!(w, "  {}", r.line())?;
    }
    super::addresses::write_console(w, &s.addresses, s.sent)?;
    writeln!(
        w,
        "Requests/sec: {:>12.2}  (sent; {:.2} responses/s)",
        s.achieved_rate_per_s, s.response_rate_per_s
    )?;
    writeln!(
        w,
        "Driver: {:.2} CPU-s, {:.0} requests per CPU-second, peak {:.0}% of a core, pacing window {}",
        s.driver.cpu_s,
        s.driver.requests_per_cpu_s,
        s.driver.peak_cpu_cores * 100.0,
        pacing_window(&s.driver)
    )?;
    if s.generator_bound {
        writeln!(
            w,
            "WARNING: the generator was the bottleneck; these numbers measure contend, not the target:"
        )?;
        for reason in &s.generator_bound_reasons {
            writeln!(w, "  - {reason}")?;
        }
    }
    for warning in &s.warnings {
        writeln!(w, "warning: {warning}")?;
    }
    if let Some(audit) = &s.abort_audit {
        super::abort_audit::write_table(w, audit)?;
    }
    Ok(())
}

/// Keys shown one per line; past this many, the busiest are shown and the
/// rest summed in one line (summary.json has every key).
const KEYS_SHOWN: usize = 10;

/// The per-key lines: every key when there are few, else the busiest
/// [`KEYS_SHOWN`] by arrivals and one line for the rest.
fn write_keys(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    if s.keys.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<(&String, &KeySummary)> = s.keys.iter().collect();
    let shown = if keys.len() > KEYS_SHOWN {
        writeln!(
            w,
            "  Per key (the {KEYS_SHOWN} busiest of {}; summary.json has them all):",
            keys.len()
        )?;
        // Busiest first; the name breaks ties, so the order is stable.
        keys.sort_by(|a, b| {
            b.1.outcomes
                .total()
                .cmp(&a.1.outcomes.total())
                .then(a.0.cmp(b.0))
        });
        KEYS_SHOWN
    } else {
        writeln!(w, "  Per key:")?;
        keys.len()
    };
    for (name, k) in &keys[..shown] {
        writeln!(
            w,
            "    {name:<12} {:>8} arrivals  2xx {:<8} p50 {:>9}  p99 {:>9}",
            k.outcomes.total(),
            k.outcomes.classes.get("2xx").copied().unwrap_or(0),
            quantile(&k.latency_us, k.latency_us.p50),
            quantile(&k.latency_us, k.latency_us.p99)
        )?;
    }
    let rest = &keys[shown..];
    if !rest.is_empty() {
        let arrivals: u64 = rest.iter().map(|(_, k)| k.outcomes.total()).sum();
        let idle = rest.iter().filter(|(_, k)| k.outcomes.total() == 0).count();
        writeln!(
            w,
            "    ... {} more keys: {arrivals} arrivals ({idle} keys with none)",
            rest.len()
        )?;
    }
    Ok(())
}

/// Writes a sweep's step table and findings: one line per step, then the
/// knee, the rate within the SLO, the USL fit.
pub fn write_sweep(w: &mut dyn Write, r: &SweepResult) -> io::Result<()> {
    if !r.steps.is_empty() {
        write_steps(w, &r.steps)?;
        write_step_connections(w, &r.steps)?;
    }
    if let Some(reason) = &r.stopped_early {
        writeln!(w, "  {reason}")?;
    }
    write_knees_and_slo(w, r)?;
    if !r.concurrency_steps.is_empty() {
        write_concurrency_steps(w, &r.concurrency_steps)?;
    }
    if let Some(f) = &r.usl {
        let peak = match (f.peak_concurrency, f.peak_throughput_per_s) {
            (Some(n), Some(x)) => format!("peak at N={n:.1}: {x:.0}/s"),
            _ => "no peak (kappa 0)".to_string(),
        };
        writeln!(
            w,
            "USL fit: sigma {:.4}, kappa {:.6}, lambda {:.1}/s, R^2 {:.3}; {peak}",
            f.sigma, f.kappa, f.lambda, f.r_squared
        )?;
    }
    Ok(())
}

/// The open-loop steps: a header, then a line per step.
fn write_steps(w: &mut dyn Write, steps: &[StepRow]) -> io::Result<()> {
    writeln!(
        w,
        "{:>4} {:>9} {:>10} {:>10} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9}",
        "step",
        "rate/s",
        "achieved/s",
        "goodput/s",
        "2xx",
        "5xx",
        "t/o",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "lag p99",
        "up CPU",
        "up CPU/rq",
        "gw CPU/rq"
    )?;
    for s in steps {
        writeln!(
            w,
            "{:>4} {:>9.0} {:>10.1} {:>10.1} {:>5.1}% {:>5.1}% {:>5.1}% {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9}{}",
            s.step,
            s.rate_per_s,
            s.achieved_per_s,
            s.goodput_per_s,
            s.share_2xx * 100.0,
            (s.share_503 + s.share_504) * 100.0,
            s.share_timeout * 100.0,
            fmt_us(s.p50_us),
            fmt_us(s.p90_us),
            fmt_us(s.p99_us),
            fmt_us(s.p999_us),
            fmt_us(s.lag_p99_us),
            s.upstream_cpu_cores
                .map_or("-".to_string(), |c| format!("{c:.2}")),
            s.upstream_cpu_per_request_us
                .map_or("-".to_string(), |c| fmt_us(c.round() as u64)),
            s.gateway_cpu_per_request_us
                .map_or("-".to_string(), |c| fmt_us(c.round() as u64)),
            if s.past_saturation {
                "  past saturation"
            } else {
                ""
            }
        )?;
    }
    writeln!(
        w,
        "  (latency counts from each request's intended send time)"
    )
}

/// The knee of P99, the throughput knee and the highest rate within the
/// SLO, each when the sweep has it.
fn write_knees_and_slo(w: &mut dyn Write, r: &SweepResult) -> io::Result<()> {
    if r.interrupted {
        writeln!(
            w,
            "INTERRUPTED: the answers below come from the {} step(s) measured whole before the stop",
            r.steps.len() + r.concurrency_steps.len()
        )?;
    }
    match &r.knee {
        Some(k) => writeln!(
            w,
            "Knee (Kneedle on P99, S={}): {:.0}/s offered, P99 {} there",
            r.sensitivity,
            k.offered_per_s,
            fmt_us(k.value as u64)
        )?,
        None if !r.steps.is_empty() => writeln!(w, "Knee: none found in P99 against offered load")?,
        None => {}
    }
    if let Some(k) = &r.throughput_knee {
        writeln!(
            w,
            "Throughput knee: {:.0}/s offered, {:.0}/s achieved",
            k.offered_per_s, k.value
        )?;
    }
    if let Some(slo) = r.slo_us {
        match (r.max_rate_within_slo_per_s, r.slo_held_up_to_per_s) {
            (Some(rate), _) => writeln!(
                w,
                "Max rate within SLO (P{} <= {}): {rate:.0}/s",
                r.slo_percentile,
                fmt_us(slo)
            )?,
            (None, Some(held)) => writeln!(
                w,
                "Max rate within SLO (P{} <= {}): not known, interrupted before a step passed the \
                 SLO (it held up to {held:.0}/s)",
                r.slo_percentile,
                fmt_us(slo)
            )?,
            (None, None) if r.steps.is_empty() => writeln!(
                w,
                "Max rate within SLO (P{} <= {}): not known, no step was measured",
                r.slo_percentile,
                fmt_us(slo)
            )?,
            (None, None) => writeln!(
                w,
                "Max rate within SLO (P{} <= {}): none, the lowest step broke it",
                r.slo_percentile,
                fmt_us(slo)
            )?,
        }
    }
    Ok(())
}

/// The closed-loop steps: a header, then a line per concurrency.
fn write_concurrency_steps(w: &mut dyn Write, steps: &[ClosedStepRow]) -> io::Result<()> {
    writeln!(
        w,
        "{:>11} {:>12} {:>7} {:>9} {:>9}   (closed loop: service time)",
        "concurrency", "responses/s", "errors", "p50", "p99"
    )?;
    for c in steps {
        writeln!(
            w,
            "{:>11} {:>12.1} {:>7} {:>9} {:>9}",
            c.concurrency,
            c.throughput_per_s,
            c.errors,
            fmt_us(c.p50_us),
            fmt_us(c.p99_us)
        )?;
    }
    Ok(())
}

/// The connections line: the HTTP version, how many were opened and what
/// opening them cost; over TLS, what the handshakes agreed on.
fn write_connections(w: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    let Some((opened, tls)) = connections(s) else {
        return Ok(());
    };
    writeln!(w, "Connections: {opened}")?;
    if let Some(tls) = tls {
        writeln!(w, "  TLS handshake {tls}")?;
    }
    Ok(())
}

/// The run's connections in words (what was spoken, how many were opened,
/// what a connect cost, the cap when arrivals waited at it) and, over TLS,
/// its handshakes (their cost, versions, ALPN, resumptions); `None` for a
/// report written before connections were recorded.
pub(crate) fn connections(s: &Summary) -> Option<(String, Option<String>)> {
    let c = &s.connections;
    if c.http.is_empty() {
        return None;
    }
    // A closed loop's clients always wait: only an open loop's arrivals
    // may find the cap.
    let waited = if c.wait_at_max && s.closed_loop_connections.is_none() {
        format!(
            "; at most {}, an arrival finding all busy waited for one",
            c.max_connections
        )
    } else {
        String::new()
    };
    let opened = format!(
        "{} over {}{}, {} opened ({:.0}/s), connect p50 {} p99 {}{waited}",
        c.http,
        if c.tls { "TLS" } else { "TCP" },
        if c.reuse {
            ""
        } else {
            " (a new one per request)"
        },
        c.opened,
        c.opened_per_s,
        quantile(&s.connect_us, s.connect_us.p50),
        quantile(&s.connect_us, s.connect_us.p99),
    );
    let tls = (c.tls && s.tls_handshake_us.count > 0).then(|| {
        let joined = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "p50 {} p99 {} max {}; {}; ALPN {}; resumed {}",
            fmt_us(s.tls_handshake_us.p50),
            fmt_us(s.tls_handshake_us.p99),
            fmt_us(s.tls_handshake_us.max),
            joined(&c.tls_versions),
            joined(&c.alpn),
            c.tls_resumed
        )
    });
    Some((opened, tls))
}

/// What connections cost each step, when they cost something worth a table
/// (TLS handshakes, or a keep-alive twin to set beside): connections per
/// second, handshake p99, the gateway's CPU per request, and the twin's.
fn write_step_connections(w: &mut dyn Write, steps: &[StepRow]) -> io::Result<()> {
    let twins = steps.iter().any(|s| s.keep_alive_p99_us.is_some());
    if !twins && steps.iter().all(|s| s.tls_handshake_p99_us == 0) {
        return Ok(());
    }
    let cpu = |c: Option<f64>| c.map_or("-".to_string(), |us| format!("{us:.1}us"));
    writeln!(
        w,
        "{:>4} {:>9} {:>9} {:>10} {:>11} {:>9} {:>12} {:>12}",
        "step", "rate/s", "conns/s", "hs p99", "GW CPU/req", "p99", "keep-alive", "ka GW CPU"
    )?;
    for s in steps {
        writeln!(
            w,
            "{:>4} {:>9.0} {:>9.0} {:>10} {:>11} {:>9} {:>12} {:>12}",
            s.step,
            s.rate_per_s,
            s.new_connections_per_s,
            fmt_us(s.tls_handshake_p99_us),
            cpu(s.gateway_cpu_us_per_request),
            fmt_us(s.p99_us),
            s.keep_alive_p99_us.map_or("-".to_string(), fmt_us),
            cpu(s.keep_alive_gateway_cpu_us_per_request),
        )?;
    }
    writeln!(
        w,
        "  (conns/s: new connections; hs: TLS handshake; GW CPU/req: the gateway's CPU per response; \
         keep-alive: the same load on reused connections, its P99)"
    )
}

/// The pacing window as the Driver line says it: `25us`, or for an
/// adaptive one `auto 25us-500us`, with the widest it used when wider than
/// its narrowest.
pub(crate) fn pacing_window(d: &DriverSummary) -> String {
    let us = |n: u64| contend_units::format_duration(std::time::Duration::from_micros(n));
    if d.pacing_window_max_us <= d.pacing_window_us {
        return us(d.pacing_window_us);
    }
    let mut text = format!(
        "auto {}-{}",
        us(d.pacing_window_us),
        us(d.pacing_window_max_us)
    );
    if d.pacing_window_widest_us > d.pacing_window_us {
        text.push_str(&format!(" (used up to {})", us(d.pacing_window_widest_us)));
    }
    text
}
