//! `report.html`: one page a person would rather look at than read.
//!
//! Takes a [`ReportData`] and the folder its plots were written to; writes
//! the scenario, the machine and CPU placement, the summary table, every
//! plot inline (the SVG text itself, so the page works offline with no
//! script and no other file), the per-step tables of a sweep and the
//! generator's own health. It measures nothing and draws no plot.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use super::IntervalCsvRow;
use super::plot::{ReportData, fmt_us};
use super::summary::{Percentiles, Summary};

/// Escapes text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The pages' style sheet (a run's and `contend logs`').
pub(crate) const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:right}\
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}.warn{background:#fff3cd;border:1px solid #e0c36a;padding:.6em 1em}\
.facts td{text-align:left}.muted{color:#666;font-size:.9em}figure{margin:1.2em 0}figure svg{max-width:100%;height:auto}.sat{color:#b00}";

/// Writes the page for `data`; `plots` are the plot names written in
/// `dir` (their SVGs are read from there and put inline).
pub fn write(w: &mut dyn Write, dir: &Path, data: &ReportData, plots: &[String]) -> io::Result<()> {
    let s = &data.summary;
    let mut h = String::new();
    head(&mut h, s);
    super::retry_effect::html(&mut h, s);
    if let Some(sweep) = &s.sweep {
        sweep_findings(&mut h, sweep);
    }
    facts(&mut h, s);
    summary_tables(&mut h, s);
    inline_plots(&mut h, dir, plots);
    components_table(&mut h, s);
    if let Some(sweep) = &s.sweep {
        step_tables(&mut h, sweep);
    }
    health(&mut h, s, &data.intervals);
    let _ = writeln!(
        h,
        "<p class=\"muted\">Written by contend {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    w.write_all(h.as_bytes())
}

/// The document's head, the title and the line under it, and the warning
/// when the generator was the bottleneck.
fn head(h: &mut String, s: &Summary) {
    let title = format!("contend: {}", s.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let kind = if s.sweep.is_some() {
        "sweep"
    } else if s.abort_audit.is_some() {
        "abort-audit"
    } else {
        "run"
    };
    let _ = writeln!(h, "<h1>{}</h1>", esc(&s.name));
    let _ = writeln!(
        h,
        "<p class=\"muted\">experiment <b>{kind}</b> · started {} · target {} · {:.1} s of load{}</p>",
        esc(&s.started_at),
        esc(&s.target),
        s.duration_s,
        if s.interrupted {
            " · <b>interrupted</b>"
        } else {
            ""
        }
    );
    if s.generator_bound {
        let _ = writeln!(
            h,
            "<p class=\"warn\"><b>The generator was the bottleneck</b>: these numbers measure contend, not the target.<br>{}</p>",
            s.generator_bound_reasons
                .iter()
                .map(|r| esc(r))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
}

/// "Scenario and machine": what ran, where, on which CPUs.
fn facts(h: &mut String, s: &Summary) {
    let _ = writeln!(h, "<h2>Scenario and machine</h2><table class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    };
    fact("scenario", s.name.clone());
    fact("target", s.target.clone());
    fact("intended rate", format!("{:.1}/s", s.intended_rate_per_s));
    if let Some(sweep) = &s.sweep {
        fact(
            "steps",
            format!(
                "{} open-loop ({} s warm-up + {} s measured each), {} closed-loop",
                sweep.steps.len(),
                sweep.warmup_s,
                sweep.step_duration_s,
                sweep.concurrency_steps.len()
            ),
        );
    }
    if let Some(m) = &s.machine {
        fact("CPU", m.cpu_model.clone());
        fact(
            "CPUs",
            format!(
                "{} online, {} this process may use",
                m.online_cpus, m.allowed_cpus
            ),
        );
        fact("kernel", m.kernel.clone());
        fact(
            "mock upstream CPUs",
            m.upstream_cpus
                .clone()
                .unwrap_or_else(|| "not pinned / not the mock".into()),
        );
        fact("gateway", m.gateway.clone());
        fact(
            "gateway CPUs",
            m.gateway_cpus
                .clone()
                .unwrap_or_else(|| "not pinned".into()),
        );
    }
    fact("driver threads", s.driver.threads.to_string());
    let _ = writeln!(h, "</table>");
    super::addresses::write_html(h, &s.addresses, s.sent);
}

/// "Summary": the counts and rates, the percentile table and the outcomes.
fn summary_tables(h: &mut String, s: &Summary) {
    let _ = writeln!(h, "<h2>Summary</h2>");
    let _ = writeln!(
        h,
        "<p>{} arrivals, {} sent; {:.1} requests/s sent, {:.1} responses/s.</p>",
        s.arrivals, s.sent, s.achieved_rate_per_s, s.response_rate_per_s
    );
    let _ = writeln!(
        h,
        "<table><tr><th></th><th>P50</th><th>P90</th><th>P99</th><th>P99.9</th><th>max</th><th>mean</th></tr>"
    );
    for (label, p) in [
        ("latency", &s.latency_us),
        ("service time", &s.service_time_us),
        ("schedule lag", &s.schedule_lag_us),
    ] {
        percentile_row(h, label, p);
    }
    let _ = writeln!(
        h,
        "</table><p class=\"muted\">Latency counts from each request's intended send time (open loop), so a stall shows in full.</p>"
    );
    let _ = writeln!(h, "<table><tr><th>outcome</th><th>count</th></tr>");
    for (class, n) in &s.outcomes.classes {
        if *n > 0 {
            let _ = writeln!(h, "<tr><td>{}</td><td>{n}</td></tr>", esc(class));
        }
    }
    let _ = writeln!(h, "</table>");
}

/// "Plots": each plot's SVG from `dir`, inline; one that cannot be read
/// leaves a warning in its place.
pub(crate) fn inline_plots(h: &mut String, dir: &Path, plots: &[String]) {
    if !plots.is_empty() {
        let _ = writeln!(h, "<h2>Plots</h2>");
    }
    for name in plots {
        match std::fs::read_to_string(dir.join(format!("{name}.svg"))) {
            Ok(svg) => {
                let at = svg.find("<svg").unwrap_or(0);
                let _ = writeln!(h, "<figure id=\"{name}\">{}</figure>", &svg[at..]);
            }
            Err(e) => {
                let _ = writeln!(
                    h,
                    "<p class=\"warn\">{name}.svg could not be read: {}</p>",
                    esc(&e.to_string())
                );
            }
        }
    }
}

/// "System under test": per component its CPU, CPU per request, cores,
/// memory, descriptors and throttling over the run.
fn components_table(h: &mut String, s: &Summary) {
    if s.components.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>System under test</h2><table><tr><th>component</th><th>kind</th><th>CPU</th><th>CPU per request</th>\
         <th>cores mean</th><th>cores peak</th><th>peak RSS</th><th>peak fds</th><th>threads</th><th>throttled</th><th>gone at</th></tr>"
    );
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for (role, c) in &s.components {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(role),
            esc(&c.kind),
            or_dash(c.cpu_s.map(|v| format!("{v:.2} s"))),
            or_dash(c.cpu_per_request_us.map(fmt_us)),
            or_dash(c.cores_mean.map(|v| format!("{v:.2}"))),
            or_dash(c.cores_peak.map(|v| format!("{v:.2}"))),
            or_dash(
                c.peak_rss_bytes
                    .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
            ),
            or_dash(c.peak_fds.map(|v| v.to_string())),
            or_dash(c.peak_threads.map(|v| v.to_string())),
            or_dash(
                c.throttled_share
                    .map(|v| format!("{:.1}% of periods", v * 100.0))
            ),
            or_dash(c.gone_at_s.map(|v| format!("{v:.1} s"))),
        );
    }
    let _ = writeln!(
        h,
        "</table><p class=\"muted\">From each component's processes (/proc), read at every interval boundary; CPU per \
         request is its CPU over the requests it handled by its own count (else over the run's responses). Per interval in components.csv.</p>"
    );
}

/// "Generator health": schedule lag, the driver's CPU and pacing window,
/// its connections, whether the generator was the bottleneck, then the
/// run's warnings.
fn health(h: &mut String, s: &Summary, intervals: &[IntervalCsvRow]) {
    let _ = writeln!(h, "<h2>Generator health</h2><table class=\"facts\">");
    let _ = writeln!(
        h,
        "<tr><td>schedule lag P99</td><td>{} (bound {})</td></tr>",
        fmt_us(s.schedule_lag_us.p99 as f64),
        fmt_us(s.lag_bound_us as f64)
    );
    let _ = writeln!(
        h,
        "<tr><td>driver CPU</td><td>{:.2} CPU-s, {:.0} requests per CPU-second, peak {:.0}% of a core</td></tr>",
        s.driver.cpu_s,
        s.driver.requests_per_cpu_s,
        s.driver.peak_cpu_cores * 100.0
    );
    pacing_row(h, s, intervals);
    if let Some((opened, tls)) = super::console::connections(s) {
        let _ = writeln!(h, "<tr><td>connections</td><td>{}</td></tr>", esc(&opened));
        if let Some(tls) = tls {
            let _ = writeln!(h, "<tr><td>TLS handshakes</td><td>{}</td></tr>", esc(&tls));
        }
    }
    let _ = writeln!(
        h,
        "<tr><td>generator-bound</td><td>{}</td></tr></table>",
        if s.generator_bound { "yes" } else { "no" }
    );
    for warning in &s.warnings {
        let _ = writeln!(h, "<p class=\"warn\">{}</p>", esc(warning));
    }
}

/// The pacing window, and for an adaptive one in how many intervals it was
/// wider than its narrowest: when the pacer sent arrivals in batches. None
/// for a closed loop, which has no pacer.
fn pacing_row(h: &mut String, s: &Summary, intervals: &[IntervalCsvRow]) {
    if s.closed_loop_connections.is_some() {
        return;
    }
    let mut text = super::console::pacing_window(&s.driver);
    let narrowest_us = s.driver.pacing_window_us;
    // A folder written before intervals.csv had the column reads 0 in it.
    let per_interval = intervals.iter().any(|r| r.pacing_window_us > 0);
    if s.driver.pacing_window_max_us > narrowest_us && per_interval {
        let wider = intervals
            .iter()
            .filter(|r| r.pacing_window_us > narrowest_us)
            .count();
        let _ = write!(
            text,
            "; wider than the narrowest in {wider} of {} intervals (<code>pacing_window_us</code> in intervals.csv)",
            intervals.len()
        );
    }
    let _ = writeln!(h, "<tr><td>pacing window</td><td>{text}</td></tr>");
}

/// One row of quantiles; `-` in each cell when nothing was recorded (no
/// response: a 0us would read as a measurement).
fn percentile_row(h: &mut String, label: &str, p: &Percentiles) {
    let cell = |v: f64| {
        if p.count == 0 {
            "-".to_string()
        } else {
            fmt_us(v)
        }
    };
    let _ = writeln!(
        h,
        "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        cell(p.p50 as f64),
        cell(p.p90 as f64),
        cell(p.p99 as f64),
        cell(p.p999 as f64),
        cell(p.max as f64),
        cell(p.mean)
    );
}

fn sweep_findings(h: &mut String, sweep: &crate::experiment::sweep::SweepResult) {
    let _ = writeln!(h, "<h2>Findings</h2><ul>");
    if sweep.interrupted {
        let _ = writeln!(
            h,
            "<li><b>Interrupted:</b> these findings come from the {} step(s) measured whole before the stop.</li>",
            sweep.steps.len() + sweep.concurrency_steps.len()
        );
    }
    match &sweep.knee {
        Some(k) => {
            let _ = writeln!(
                h,
                "<li>Knee of P99 against offered load (Kneedle, S = {}): <b>{:.0}/s</b> (P99 {} there).</li>",
                sweep.sensitivity,
                k.offered_per_s,
                fmt_us(k.value)
            );
        }
        None => {
            let _ = writeln!(
                h,
                "<li>No knee in P99 against offered load: the steps never bent sharply (or were too few).</li>"
            );
        }
    }
    if let Some(k) = &sweep.throughput_knee {
        let _ = writeln!(
            h,
            "<li>Throughput stops following the offered load at <b>{:.0}/s</b> ({:.0}/s achieved).</li>",
            k.offered_per_s, k.value
        );
    }
    if let Some(slo) = sweep.slo_us {
        let _ = match (sweep.max_rate_within_slo_per_s, sweep.slo_held_up_to_per_s) {
            (Some(r), _) => writeln!(
                h,
                "<li>Highest rate with P{} within {}: <b>{r:.0}/s</b> (interpolated between steps).</li>",
                sweep.slo_percentile,
                fmt_us(slo as f64)
            ),
            (None, Some(held)) => writeln!(
                h,
                "<li>Highest rate with P{} within {}: not known, the sweep was interrupted before a step passed the SLO (it held up to {held:.0}/s).</li>",
                sweep.slo_percentile,
                fmt_us(slo as f64)
            ),
            (None, None) if sweep.steps.is_empty() => writeln!(
                h,
                "<li>Highest rate with P{} within {}: not known, no step was measured.</li>",
                sweep.slo_percentile,
                fmt_us(slo as f64)
            ),
            (None, None) => writeln!(
                h,
                "<li>Even the lowest step broke the SLO (P{} within {}).</li>",
                sweep.slo_percentile,
                fmt_us(slo as f64)
            ),
        };
    }
    if let Some(reason) = &sweep.stopped_early {
        let _ = writeln!(h, "<li>{}</li>", esc(reason));
    }
    if let Some(fit) = &sweep.usl {
        let _ = writeln!(
            h,
            "<li>USL fit: sigma (contention) <b>{:.4}</b>, kappa (coherency) <b>{:.6}</b>, lambda {:.1}/s, R² {:.3}; {}.</li>",
            fit.sigma,
            fit.kappa,
            fit.lambda,
            fit.r_squared,
            match (fit.peak_concurrency, fit.peak_throughput_per_s) {
                (Some(n), Some(x)) => format!("peak at concurrency {n:.1}, {x:.0}/s"),
                _ => "no peak (kappa is 0: throughput levels off but does not fall)".into(),
            }
        );
    }
    let _ = writeln!(h, "</ul>");
}

fn step_tables(h: &mut String, sweep: &crate::experiment::sweep::SweepResult) {
    if !sweep.steps.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Steps (open loop)</h2><table><tr><th>step</th><th>rate/s</th><th>offered/s</th><th>achieved/s</th><th>goodput/s</th>\
             <th>2xx</th><th>429</th><th>503</th><th>504</th><th>timeout</th><th>error</th><th>P50</th><th>P90</th><th>P99</th><th>P99.9</th><th>max</th><th>lag P99</th><th>upstream CPU</th><th>upstream CPU/req</th><th>gateway cores</th><th>gateway CPU/req</th></tr>"
        );
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        for r in &sweep.steps {
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if r.past_saturation {
                    " class=\"sat\""
                } else {
                    ""
                },
                r.step,
                r.rate_per_s,
                r.offered_per_s,
                r.achieved_per_s,
                r.goodput_per_s,
                pct(r.share_2xx),
                pct(r.share_429),
                pct(r.share_503),
                pct(r.share_504),
                pct(r.share_timeout),
                pct(r.share_error + r.share_other_status),
                fmt_us(r.p50_us as f64),
                fmt_us(r.p90_us as f64),
                fmt_us(r.p99_us as f64),
                fmt_us(r.p999_us as f64),
                fmt_us(r.max_us as f64),
                fmt_us(r.lag_p99_us as f64),
                r.upstream_cores
                    .or(r.upstream_cpu_cores)
                    .map_or("-".into(), |c| format!("{c:.2} cores")),
                r.upstream_cpu_per_request_us.map_or("-".into(), fmt_us),
                r.gateway_cores.map_or("-".into(), |c| format!("{c:.2}")),
                r.gateway_cpu_per_request_us.map_or("-".into(), fmt_us),
            );
        }
        let _ = writeln!(
            h,
            "</table><p class=\"muted\">Rows in red are past saturation (the stop-early bounds).</p>"
        );
    }
    if !sweep.concurrency_steps.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Steps (closed loop)</h2><table><tr><th>concurrency</th><th>responses/s</th><th>goodput/s</th><th>errors</th><th>P50</th><th>P99</th><th>max</th></tr>"
        );
        for r in &sweep.concurrency_steps {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.concurrency,
                r.throughput_per_s,
                r.goodput_per_s,
                r.errors,
                fmt_us(r.p50_us as f64),
                fmt_us(r.p99_us as f64),
                fmt_us(r.max_us as f64)
            );
        }
        let _ = writeln!(
            h,
            "</table><p class=\"muted\">Closed loop: each client waits for its response before sending again, so these latencies are \
             service times and hide queueing an open-loop client would see. The steps exist for the USL fit of throughput.</p>"
        );
    }
}
