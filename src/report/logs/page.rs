//! `contend logs`'s words: the console's tables and `report.html`.
//!
//! Takes a finished [`LogReport`] (and, for the page, the plots written
//! beside it); writes text. The same rows in both: what was read, per key
//! (requests, times, aborts and their knee, the under-count estimate with
//! its interval and assumption), the usage a budget would charge, the tail
//! routes. Measures and computes nothing.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use super::{GroupRow, KeyRow, LogReport, LogSummary, TimesMs};
use crate::analysis::censored::{LEVEL, Status};
use crate::report::html::{STYLE, esc, inline_plots};

/// Routes shown on the console and the page (the CSV has all).
const ROUTES_SHOWN: usize = 20;

/// `12.3ms`, `1.20s`; `-` for none.
fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(ms) if ms >= 1000.0 => format!("{:.2}s", ms / 1000.0),
        Some(ms) if ms >= 10.0 => format!("{ms:.0}ms"),
        Some(ms) => format!("{ms:.1}ms"),
    }
}

fn secs(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.3}s")
    }
}

/// The estimate in words: `5.18x (3.90-9.70)`, or why there is none.
pub fn under_count(k: &KeyRow) -> String {
    let e = &k.estimate;
    match (e.status, e.under_count) {
        (Status::Estimated, Some(f)) => match e.under_count_interval {
            Some([lo, hi]) => format!("{f:.2}x ({lo:.2}-{hi:.2})"),
            None => format!("{f:.2}x"),
        },
        (Status::NothingCut, Some(f)) => format!("{f:.2}x (nothing cut)"),
        (Status::NoCompleted, _) => "not estimable: none completed".into(),
        (Status::NoUpstreamTime, _) => "-".into(),
        (Status::NothingCharged, _) => "unaccounted: 0s charged".into(),
        _ => "-".into(),
    }
}

/// `50ms (16)` for the client timeout's knee, and the gateway's after.
fn knees(k: &KeyRow) -> String {
    let mut parts = Vec::new();
    if let Some(knee) = &k.aborts.client_timeout_knee {
        parts.push(format!("client {}", ms(Some(knee.at_s * 1000.0))));
    }
    if let Some(knee) = &k.aborts.gateway_timeout_knee {
        parts.push(format!("gateway {}", ms(Some(knee.at_s * 1000.0))));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn p(t: Option<TimesMs>, f: fn(&TimesMs) -> f64) -> String {
    ms(t.as_ref().map(f))
}

fn statuses(r: &GroupRow) -> String {
    r.statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lines about what was read.
fn read_lines(s: &LogSummary) -> Vec<String> {
    let files: Vec<&str> = s.files.iter().map(|f| f.file.as_str()).collect();
    let mut lines = vec![format!(
        "{} ({} format {}, from {}): {} lines, {} read, {} malformed",
        files.join(", "),
        match s.format.language {
            crate::logs::format::Language::Nginx => "nginx",
            crate::logs::format::Language::Haproxy => "HAProxy",
        },
        s.format.name,
        s.format.source,
        s.lines,
        s.parsed,
        s.malformed
    )];
    if let (Some(first), Some(last), Some(span)) = (&s.first, &s.last, s.span_s) {
        lines.push(format!(
            "{first} to {last} ({span}s); key: {}",
            s.format.key.as_deref().unwrap_or("none")
        ));
    }
    for m in &s.malformed_lines {
        lines.push(format!(
            "malformed {}:{}: {}: {}",
            m.file, m.line, m.reason, m.text
        ));
    }
    for p in &s.read_problems {
        lines.push(format!(
            "{}: read {} lines, then: {}",
            p.file, p.lines, p.error
        ));
    }
    lines
}

/// The console's report (of a log just read, or of a saved `summary.json`).
pub fn write_console(w: &mut dyn Write, s: &LogSummary) -> io::Result<()> {
    for line in read_lines(s) {
        writeln!(w, "{line}")?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "  {:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>16} {:>9}  under-count ({:.0}%)",
        "key",
        "requests",
        "rate/s",
        "p50",
        "p99",
        "up p99",
        "aborts",
        "knee",
        "charged",
        LEVEL * 100.0
    )?;
    for k in &s.keys {
        let g = &k.group;
        writeln!(
            w,
            "  {:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>16} {:>9}  {}",
            g.name,
            g.requests,
            g.rate_per_s.map_or("-".into(), |r| format!("{r:.1}")),
            p(g.request_time_ms, |t| t.p50),
            p(g.request_time_ms, |t| t.p99),
            p(g.upstream_time_ms, |t| t.p99),
            k.aborts.client_aborts + k.aborts.gateway_timeouts,
            knees(k),
            secs(k.estimate.charged_s),
            under_count(k)
        )?;
    }
    if s.keys
        .iter()
        .any(|k| k.estimate.status == Status::Estimated)
    {
        writeln!(
            w,
            "  (under-count = estimated true upstream time / time charged; {})",
            s.assumption
        )?;
    }
    if !s.slow_routes.is_empty() {
        writeln!(w, "\nRoutes with requests over {}:", ms(Some(s.slow_ms)))?;
        for r in s.slow_routes.iter().take(ROUTES_SHOWN) {
            writeln!(
                w,
                "  {:<40} {:>7} of {:>8} ({:.1}%)  p99 {}  max {}",
                r.route,
                r.slow,
                r.requests,
                r.slow_share * 100.0,
                ms(r.p99_ms),
                ms(r.max_ms)
            )?;
        }
    }
    writeln!(
        w,
        "\nRoutes (busiest {}):",
        ROUTES_SHOWN.min(s.routes.len())
    )?;
    for r in s.routes.iter().take(ROUTES_SHOWN) {
        writeln!(
            w,
            "  {:<40} {:>8} {:>8}/s  p50 {:>7}  p99 {:>7}  {}",
            r.name,
            r.requests,
            r.rate_per_s.map_or("-".into(), |v| format!("{v:.1}")),
            p(r.request_time_ms, |t| t.p50),
            p(r.request_time_ms, |t| t.p99),
            statuses(r)
        )?;
    }
    for note in &s.notes {
        writeln!(w, "note: {note}")?;
    }
    Ok(())
}

/// `report.html`: what was read, the keys with their estimate, the usage,
/// the tail routes, the routes, the plots inline and the malformed lines.
pub fn write_html(
    w: &mut dyn Write,
    dir: &Path,
    report: &LogReport,
    plots: &[String],
) -> io::Result<()> {
    let s = &report.summary;
    let mut h = String::new();
    let title = format!(
        "contend logs: {}",
        s.files
            .iter()
            .map(|f| f.file.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = esc(&title)
    );
    let _ = writeln!(h, "<table class=\"facts\">");
    for line in read_lines(s) {
        let _ = writeln!(h, "<tr><td>{}</td></tr>", esc(&line));
    }
    let _ = writeln!(
        h,
        "<tr><td>format: <code>{}</code></td></tr></table>",
        esc(&s.format.text)
    );
    for note in &s.notes {
        let _ = writeln!(h, "<p class=\"warn\">{}</p>", esc(note));
    }
    key_table(&mut h, s);
    usage_table(&mut h, s);
    route_tables(&mut h, s);
    inline_plots(&mut h, dir, plots);
    let _ = writeln!(
        h,
        "<p class=\"muted\">Written by contend {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    w.write_all(h.as_bytes())
}

fn key_table(h: &mut String, s: &LogSummary) {
    let _ = writeln!(
        h,
        "<h2>Keys</h2><table><tr><th>key</th><th>requests</th><th>rate/s</th><th>statuses</th><th>p50</th><th>p99</th><th>upstream p99</th><th>client aborts</th><th>gateway timeouts</th><th>knee</th><th>charged</th><th>estimated true</th><th>under-count ({:.0}%)</th></tr>",
        LEVEL * 100.0
    );
    for k in &s.keys {
        let g = &k.group;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.name),
            g.requests,
            g.rate_per_s.map_or("-".into(), |r| format!("{r:.2}")),
            esc(&statuses(g)),
            p(g.request_time_ms, |t| t.p50),
            p(g.request_time_ms, |t| t.p99),
            p(g.upstream_time_ms, |t| t.p99),
            k.aborts.client_aborts,
            k.aborts.gateway_timeouts,
            knees(k),
            secs(k.estimate.charged_s),
            k.estimate.estimated_true_s.map_or("-".into(), secs),
            esc(&under_count(k))
        );
    }
    let _ = writeln!(
        h,
        "</table><p class=\"muted\">Under-count = estimated true upstream time / time charged: {}.</p>",
        esc(&s.assumption)
    );
}

fn usage_table(h: &mut String, s: &LogSummary) {
    let _ = writeln!(
        h,
        "<h2>What a budget built on this log would charge</h2><table><tr><th>key</th><th>requests</th><th>charged</th><th>per second</th><th>share</th><th>estimated true</th><th>under-count</th></tr>"
    );
    for u in &s.usage {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td></tr>",
            esc(&u.key),
            u.requests,
            secs(u.charged_s),
            u.charged_per_s.map_or("-".into(), |v| format!("{v:.4}s")),
            u.share * 100.0,
            u.estimated_true_s.map_or("-".into(), secs),
            u.under_count.map_or("-".into(), |f| format!("{f:.2}x"))
        );
    }
    let _ = writeln!(h, "</table>");
}

fn route_tables(h: &mut String, s: &LogSummary) {
    if !s.slow_routes.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Routes with requests over {}</h2><table><tr><th>route</th><th>over</th><th>requests</th><th>share over</th><th>p99</th><th>max</th></tr>",
            ms(Some(s.slow_ms))
        );
        for r in s.slow_routes.iter().take(ROUTES_SHOWN) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td></tr>",
                esc(&r.route),
                r.slow,
                r.requests,
                r.slow_share * 100.0,
                ms(r.p99_ms),
                ms(r.max_ms)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(
        h,
        "<h2>Routes</h2><table><tr><th>route</th><th>requests</th><th>rate/s</th><th>statuses</th><th>p50</th><th>p99</th><th>upstream p50</th><th>upstream p99</th></tr>"
    );
    for r in s.routes.iter().take(ROUTES_SHOWN) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            r.requests,
            r.rate_per_s.map_or("-".into(), |v| format!("{v:.2}")),
            esc(&statuses(r)),
            p(r.request_time_ms, |t| t.p50),
            p(r.request_time_ms, |t| t.p99),
            p(r.upstream_time_ms, |t| t.p50),
            p(r.upstream_time_ms, |t| t.p99)
        );
    }
    let _ = writeln!(
        h,
        "</table><p class=\"muted\">{} routes in routes.csv.</p>",
        s.routes.len()
    );
}
