//! The console summary, wrk2's shape with the open-loop facts added.
//!
//! Takes a [`Summary`] and a writer; prints latency from the intended send
//! time, its distribution, outcomes, rates, schedule lag and the driver's
//! own cost, and says plainly when the generator was the bottleneck.

use std::io::{self, Write};

use super::summary::{Percentiles, Summary};

/// Formats microseconds the way wrk does: `812.00us`, `1.25ms`, `2.10s`.
pub fn fmt_us(us: u64) -> String {
    let us = us as f64;
    if us < 1_000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

fn row(w: &mut dyn Write, label: &str, p: &Percentiles) -> io::Result<()> {
    writeln!(
        w,
        "  {label:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        fmt_us(p.p50),
        fmt_us(p.p90),
        fmt_us(p.p99),
        fmt_us(p.p999),
        fmt_us(p.max),
        fmt_us(p.mean as u64)
    )
}

/// Writes the human summary of a run.
pub fn write(w: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(
        w,
        "{} @ {}: {:.1}s, {} driver threads, {:.0} req/s intended{}",
        s.name,
        s.target,
        s.duration_s,
        s.driver.threads,
        s.intended_rate_per_s,
        if s.interrupted { " (interrupted)" } else { "" }
    )?;
    writeln!(w, "  {:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "", "p50", "p90", "p99", "p99.9", "max", "mean")?;
    row(w, "Latency", &s.latency_us)?;
    row(w, "Service time", &s.service_time_us)?;
    row(w, "Schedule lag", &s.schedule_lag_us)?;
    writeln!(w, "  (latency counts from each request's intended send time)")?;
    if !s.keys.is_empty() {
        writeln!(w, "  Per key:")?;
        for (name, k) in &s.keys {
            writeln!(
                w,
                "    {name:<12} {:>8} arrivals  2xx {:<8} p50 {:>9}  p99 {:>9}",
                k.outcomes.total(),
                k.outcomes.classes.get("2xx").copied().unwrap_or(0),
                fmt_us(k.latency_us.p50),
                fmt_us(k.latency_us.p99)
            )?;
        }
    }
    let responses: Vec<String> =
        s.outcomes.responses.iter().map(|(code, n)| format!("{code}: {n}")).collect();
    writeln!(
        w,
        "  {} arrivals, {} sent; responses {{{}}}",
        s.arrivals,
        s.sent,
        if responses.is_empty() { "none".to_string() } else { responses.join(", ") }
    )?;
    writeln!(
        w,
        "  client_timeout {}, connect_error {}, io_error {}, not_sent {}",
        s.outcomes.client_timeout, s.outcomes.connect_error, s.outcomes.io_error, s.outcomes.not_sent
    )?;
    writeln!(w, "Requests/sec: {:>12.2}  (sent; {:.2} responses/s)", s.achieved_rate_per_s, s.response_rate_per_s)?;
    writeln!(
        w,
        "Driver: {:.2} CPU-s, {:.0} requests per CPU-second, peak {:.0}% of a core",
        s.driver.cpu_s,
        s.driver.requests_per_cpu_s,
        s.driver.peak_cpu_cores * 100.0
    )?;
    if s.generator_bound {
        writeln!(w, "WARNING: the generator was the bottleneck; these numbers measure contend, not the target:")?;
        for reason in &s.generator_bound_reasons {
            writeln!(w, "  - {reason}")?;
        }
    }
    for warning in &s.warnings {
        writeln!(w, "warning: {warning}")?;
    }
    Ok(())
}
