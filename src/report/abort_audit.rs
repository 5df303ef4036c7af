//! The abort audit's presentation: the console table, `accounting.csv`,
//! `requests.csv`, `client-aborts.md` (per mode, what the gateway logged for
//! a client abort) and the client-vs-upstream scatter (`accounting.svg`/`.png`).
//!
//! Takes a finished [`AbortAudit`] (and the requests joined by id) and a
//! writer or folder; measures and computes nothing. Missing values are shown
//! as the analysis keeps them: `-` for no gateway line (an empty CSV field),
//! `unaccounted` for lines that accounted 0 s against real work, `n/a` where
//! the upstream did no work.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::console::fmt_us;
use super::summary::Summary;
use crate::analysis::accounting::{
    AbortAudit, AuditRow, JoinedRequest, KeyAudit, ModeAudit, UnderCount,
};
use crate::error::Error;

/// Writes the audit's top-level files into `dir` (created if needed):
/// `summary.json` and, when `summary` holds an audit, `accounting.csv`,
/// `requests.csv` (the requests of `joined`, per mode), `client-aborts.md`
/// and the scatter. Each is written on its own, whole or not at all;
/// returns the files written and the errors of those that failed.
pub fn write_files(
    dir: &Path,
    summary: &Summary,
    joined: &[(String, Vec<JoinedRequest>)],
) -> (Vec<PathBuf>, Vec<Error>) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return (Vec::new(), vec![Error::io(dir, e)]);
    }
    let mut written = super::Written::default();
    written.summary_json(dir, summary);
    if let Some(audit) = &summary.abort_audit {
        written.file(dir.join("accounting.csv"), &|w| write_csv(w, audit));
        if !audit.client_aborts.is_empty() {
            written.file(dir.join("client-aborts.md"), &|w| {
                write_client_aborts(w, audit)
            });
        }
        written.file(dir.join("requests.csv"), &|w| write_requests_csv(w, joined));
        let figure = if joined.iter().any(|(_, r)| !r.is_empty()) {
            scatter(audit, joined)
        } else {
            figure(audit)
        };
        for path in super::plot::files(dir, "accounting") {
            let result = super::plot::render_file(&path, &figure);
            written.keep(path, result);
        }
    }
    written.into_parts()
}

/// One colour per mode, by the mode's place in the run order.
const COLOURS: [plotters::style::RGBColor; 6] = [
    plotters::style::RGBColor(214, 39, 40),
    plotters::style::RGBColor(31, 119, 180),
    plotters::style::RGBColor(230, 120, 0),
    plotters::style::RGBColor(44, 160, 44),
    plotters::style::RGBColor(148, 103, 189),
    plotters::style::RGBColor(140, 86, 75),
];

/// Smallest time drawn on the scatter's log axes, us.
const SCATTER_FLOOR_US: f64 = 100.0;

/// The seed's scatter, per request: the time the gateway accounted (what it
/// logged facing the client) against the time an upstream worker really
/// spent, one colour per mode. The modes that finish early (reference
/// `early`, nginx off) are drawn above, the modes that account the whole
/// work below, on the same log axes. A gateway that stops counting when the
/// client leaves shows a knee at the client timeout: the points follow the
/// dashed line where accounted = true up to it, then stand in a column
/// there however long the work ran. Requests the upstream never worked on
/// (refused by the gateway) have no point.
pub fn scatter(audit: &AbortAudit, joined: &[(String, Vec<JoinedRequest>)]) -> super::plot::Figure {
    use super::plot::{Axis, Figure, Fmt, Panel};
    let range = scatter_range(joined);
    let axis = |label: &str| Axis {
        label: label.into(),
        log: true,
        fmt: Fmt::Micros,
        range: Some(range),
    };
    let vlines = timeout_lines(audit, range);
    let mut panels = Vec::new();
    for (title, want_early) in [
        (
            "Early accounting (reference early, nginx proxy_ignore_client_abort off, haproxy abortonclose)",
            true,
        ),
        (
            "Complete accounting (reference complete, nginx proxy_ignore_client_abort on, haproxy without)",
            false,
        ),
    ] {
        let series = scatter_series(audit, joined, want_early, range);
        if series.is_empty() {
            continue;
        }
        panels.push((
            Panel {
                title: title.into(),
                x: axis("accounted by the gateway (client-facing time), per request"),
                y: axis("upstream worker time, per request"),
                series,
                vlines: vlines.clone(),
                hlines: Vec::new(),
                marks: Vec::new(),
            },
            1.0,
        ));
    }
    Figure {
        panels,
        note: "Per request, joined by x-request-id. Above the dashed line the gateway accounted less than the upstream worked.".into(),
    }
}

/// A request's point on the scatter, us: (accounted, upstream worker
/// time), raised to the axes' floor; `None` when a side has no time.
fn scatter_point(r: &JoinedRequest) -> Option<(f64, f64)> {
    let (Some(accounted), Some(wall)) = (r.accounted_s, r.upstream_wall_s) else {
        return None;
    };
    Some((
        (accounted * 1e6).max(SCATTER_FLOOR_US),
        (wall * 1e6).max(SCATTER_FLOOR_US),
    ))
}

/// The range of both axes, us: every point's times with room around them
/// (1 ms to 1 s when there is no point).
fn scatter_range(joined: &[(String, Vec<JoinedRequest>)]) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for (x, y) in joined
        .iter()
        .flat_map(|(_, rs)| rs.iter().filter_map(scatter_point))
    {
        lo = lo.min(x).min(y);
        hi = hi.max(x).max(y);
    }
    if !lo.is_finite() {
        (lo, hi) = (1e3, 1e6);
    }
    (lo / 1.5, hi * 1.5)
}

/// Each distinct client timeout of a key the client abandoned requests of
/// (where a knee can be) that falls within `range`, as a vertical line
/// labelled with those keys.
fn timeout_lines(audit: &AbortAudit, range: (f64, f64)) -> Vec<(f64, String)> {
    let abandoning = |key: &str| {
        audit
            .modes
            .values()
            .any(|m| m.keys.get(key).is_some_and(|k| k.client_abandoned > 0))
    };
    let mut timeouts: Vec<(f64, Vec<&str>)> = Vec::new();
    for (key, t) in audit
        .client_timeouts_s
        .iter()
        .filter(|(key, _)| abandoning(key))
    {
        let t = &(t * 1e6);
        match timeouts.iter_mut().find(|(v, _)| (v - t).abs() < 1e-9) {
            Some((_, keys)) => keys.push(key),
            None => timeouts.push((*t, vec![key])),
        }
    }
    timeouts
        .iter()
        .filter(|(t, _)| *t >= range.0 && *t <= range.1)
        .map(|(t, keys)| {
            (
                *t,
                format!(
                    "client timeout {} ({})",
                    secs_short(*t / 1e6),
                    keys.join(", ")
                ),
            )
        })
        .collect()
}

/// The series of one scatter panel: a colour per mode (by its place in the
/// run order) for the modes that account early (`want_early`) or in full,
/// then the dashed line where accounted = true; empty when no mode is of
/// that kind.
fn scatter_series(
    audit: &AbortAudit,
    joined: &[(String, Vec<JoinedRequest>)],
    want_early: bool,
    range: (f64, f64),
) -> Vec<super::plot::Series> {
    use super::plot::{Kind, Series};
    let order = modes(audit);
    let colour = |mode: &str| {
        let i = order.iter().position(|m| *m == mode).unwrap_or(0);
        COLOURS[i % COLOURS.len()]
    };
    // A mode that ran (it names its gateway) whose gateway stops accounting
    // when the client leaves: reference and HAProxy `early`, nginx `off`.
    let early = |mode: &str| {
        audit.modes.get(mode).is_some_and(|m| m.gateway.is_some())
            && (mode.ends_with("early") || mode.ends_with("off"))
    };
    let mut series = Vec::new();
    for (mode, requests) in joined {
        if early(mode) != want_early {
            continue;
        }
        let data: Vec<(f64, f64)> = requests.iter().filter_map(scatter_point).collect();
        series.push(Series {
            name: mode.clone(),
            color: colour(mode),
            data,
            kind: Kind::Dots,
        });
    }
    if series.is_empty() {
        return series;
    }
    series.push(Series {
        name: "accounted = true".into(),
        color: plotters::style::RGBColor(110, 110, 110),
        data: vec![(range.0, range.0), (range.1, range.1)],
        kind: Kind::Dashed,
    });
    series
}

fn secs_short(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else {
        format!("{s:.1}s")
    }
}

/// The scatter without request ids (a saved audit without `requests.csv`):
/// per mode (one colour each) and key, the seconds the gateway accounted
/// per logged request against the seconds an upstream worker spent per
/// started request, with the line where they agree.
pub fn figure(audit: &AbortAudit) -> super::plot::Figure {
    use super::plot::{Axis, Figure, Fmt, Kind, Panel, Series};
    use plotters::style::RGBColor;
    let mut series = Vec::new();
    let mut marks = Vec::new();
    let mut top: f64 = 0.0;
    for (i, mode) in modes(audit).into_iter().enumerate() {
        let mut data = Vec::new();
        for (key, row) in &audit.modes[mode].keys {
            let (Some(accounted), Some(truth)) = (row.accounted_s, row.true_s) else {
                continue;
            };
            if row.gateway_lines == 0 || row.upstream.started == 0 {
                continue;
            }
            let point = (
                accounted / row.gateway_lines as f64,
                truth / row.upstream.started as f64,
            );
            top = top.max(point.0).max(point.1);
            data.push(point);
            marks.push((point.0, point.1, format!("{key} ({mode})")));
        }
        series.push(Series {
            name: mode.to_string(),
            color: COLOURS[i % COLOURS.len()],
            data,
            kind: Kind::Dots,
        });
    }
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    series.push(Series {
        name: "accounted = true".into(),
        color: RGBColor(110, 110, 110),
        data: vec![(0.0, 0.0), (top, top)],
        kind: Kind::Dashed,
    });
    let axis = |label: &str| Axis {
        label: label.into(),
        log: false,
        fmt: Fmt::Plain,
        range: Some((0.0, top)),
    };
    Figure {
        panels: vec![(
            Panel {
                title: "Accounted by the gateway against worked by the upstream, per request".into(),
                x: axis("gateway-accounted s per request"),
                y: axis("upstream worker s per request"),
                series,
                vlines: Vec::new(),
                hlines: Vec::new(),
                marks,
            },
            1.0,
        )],
        note: "Per mode and key, means over the key's requests (no request ids); above the dashed line the gateway under-counts.".into(),
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("{s:.3}s"))
}

fn factor(row: &KeyAudit) -> String {
    match (row.under_count_status, row.under_count) {
        (UnderCount::Ratio, Some(f)) => format!("{f:.2}x"),
        (UnderCount::NothingAccounted, _) => "unaccounted".into(),
        (UnderCount::NoUpstreamWork, _) => "n/a".into(),
        _ => "-".into(),
    }
}

/// `499:30 504:2`, then any termination states (`400:30 CH:30`); empty
/// when the gateway logged nothing for the key.
fn statuses(row: &KeyAudit) -> String {
    row.logged_statuses
        .iter()
        .chain(&row.logged_terminations)
        .map(|(s, n)| format!("{s}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The modes in the order they ran, then any others.
fn modes(audit: &AbortAudit) -> Vec<&str> {
    let mut names: Vec<&str> = audit
        .order
        .iter()
        .map(String::as_str)
        .filter(|m| audit.modes.contains_key(*m))
        .collect();
    names.extend(
        audit
            .modes
            .keys()
            .map(String::as_str)
            .filter(|m| !audit.order.iter().any(|o| o == m)),
    );
    names
}

/// Writes the audit as a table: a row per mode and key, beneath each key
/// its requests logged 499 and 504 (from the join), then per mode the
/// budget's effect and the noisy neighbour.
pub fn write_table(w: &mut dyn Write, audit: &AbortAudit) -> io::Result<()> {
    writeln!(
        w,
        "Abort audit: worker time the gateway accounted against what the upstream worked"
    )?;
    writeln!(
        w,
        "  {:<19} {:<18} {:>6} {:>10} {:>9} {:>9} {:>12}  {:<24} {:>9} {:>9} {:>10}",
        "mode",
        "key",
        "lines",
        "accounted",
        "true",
        "true cpu",
        "under-count",
        "logged statuses",
        "abandoned",
        "p99",
        "goodput/s"
    )?;
    for mode in modes(audit) {
        let m = &audit.modes[mode];
        if let Some(reason) = &m.skipped {
            writeln!(w, "  {mode:<19} {reason}")?;
            continue;
        }
        for (key, row) in &m.keys {
            writeln!(
                w,
                "  {mode:<19} {key:<18} {:>6} {:>10} {:>9} {:>9} {:>12}  {:<24} {:>9} {:>9} {:>10.1}",
                row.gateway_lines,
                secs(row.accounted_s),
                secs(row.true_s),
                secs(row.true_cpu_s),
                factor(row),
                if row.logged_statuses.is_empty() {
                    "-".to_string()
                } else {
                    statuses(row)
                },
                row.client_abandoned,
                fmt_us(row.client_p99_us),
                row.client_goodput_per_s,
            )?;
            for l in m.logged.iter().filter(|l| &l.key == key) {
                let joined = (l.joined > 0).then_some(());
                writeln!(
                    w,
                    "  {:<19} {:<18} {:>6} {:>10} {:>9} {:>9} {:>12}  joined by id: {} of {}",
                    "",
                    format!("  {} {}", key, l.logged),
                    l.requests,
                    secs(joined.map(|()| l.accounted_s)),
                    secs(joined.map(|()| l.true_s)),
                    "",
                    match l.under_count {
                        Some(f) => format!("{f:.2}x"),
                        None => "-".into(),
                    },
                    l.joined,
                    l.requests,
                )?;
            }
        }
        if let Some(gateway) = &m.gateway {
            writeln!(w, "  {:<19} ({gateway}, {:.1}s of load)", "", m.duration_s)?;
        }
        for line in effects(m) {
            writeln!(w, "  {:<19} {line}", "")?;
        }
    }
    writeln!(
        w,
        "  (under-count = true / accounted, true = upstream worker wall time; `-`: no gateway line, \
         `unaccounted`: 0 s accounted for real work, `n/a`: no upstream work; `KEY 499`/`KEY 504` \
         (HAProxy: status and termination state, `KEY 400 CH`): that key's requests the gateway \
         logged so, joined with the upstream per request)"
    )?;
    if !audit.client_aborts.is_empty() {
        writeln!(
            w,
            "\nWhat each gateway logged for the requests whose client gave up, and what the upstream did (client-aborts.md):"
        )?;
        write_client_aborts(w, audit)?;
    }
    Ok(())
}

/// What the upstream did with a request whose client had gone, in words.
fn upstream_did(outcome: &str) -> &str {
    match outcome {
        "abandoned" => "worked on to the end for a gateway that had gone",
        "completed" => "worked to the end and answered the gateway",
        "cancelled" => "stopped when the gateway left",
        other => other,
    }
}

/// Writes `client-aborts.md`: per mode, what its gateway logged for the
/// requests the client gave up on (status, time accounted, upstream
/// status), what the upstream did meanwhile, and the under-count: a
/// Markdown table (the README's table of gateways).
pub fn write_client_aborts(w: &mut dyn Write, audit: &AbortAudit) -> io::Result<()> {
    writeln!(
        w,
        "| gateway | mode | logged for a client abort | time accounted (median) | upstream status logged | the upstream meanwhile (median work) | under-count |"
    )?;
    writeln!(w, "| --- | --- | --- | --- | --- | --- | --- |")?;
    for b in &audit.client_aborts {
        let factor = match (b.under_count_status, b.under_count) {
            (UnderCount::Ratio, Some(f)) => format!("{f:.2}x"),
            (UnderCount::NothingAccounted, _) => "unaccounted".into(),
            _ => "-".into(),
        };
        writeln!(
            w,
            "| {} | {} | `{}` ({} of {}) | {:.3} s | `{}` | {} ({} of {}): {:.3} s | {factor} |",
            b.gateway,
            b.mode,
            b.logged,
            b.logged_requests,
            b.requests,
            b.accounted_median_s,
            b.upstream_status,
            upstream_did(&b.upstream_outcome),
            b.upstream_outcome_requests,
            b.requests,
            b.upstream_wall_median_s,
        )?;
    }
    Ok(())
}

/// The budget's effect and the noisy neighbour of one mode, as sentences.
fn effects(m: &ModeAudit) -> Vec<String> {
    let mut out = Vec::new();
    match &m.budget {
        Some(b) => {
            let mut blocked: Vec<String> = Vec::new();
            for (key, row) in &m.keys {
                let (Some(at), Some(used)) = (row.blocked_at_s, row.true_s_before_block) else {
                    continue;
                };
                blocked.push(format!(
                    "{key} first refused (429) at {at:.2}s, after {used:.2}s of true worker time ({:.1}x its budget)",
                    if b.budget_s > 0.0 { used / b.budget_s } else { 0.0 }
                ));
            }
            out.push(format!(
                "budget {:.2}s per {:.1}s window (penalty {:.1}s): {}",
                b.budget_s,
                b.window_s,
                b.penalty_s,
                if blocked.is_empty() {
                    "no key was refused".to_string()
                } else {
                    blocked.join("; ")
                }
            ));
        }
        None if m.gateway.is_some() => out.push("no budget in this mode".into()),
        None => {}
    }
    if let Some(n) = &m.neighbour {
        for (key, k) in &n.keys {
            let span = |s: &crate::analysis::accounting::Span| {
                format!(
                    "p99 {}, goodput {}/s ({} requests)",
                    s.p99_us.map_or("-".into(), fmt_us),
                    s.goodput_per_s.map_or("-".into(), |g| format!("{g:.1}")),
                    s.requests
                )
            };
            out.push(format!(
                "{key} while {} ran ({:.1}s): {}; otherwise ({:.1}s): {}",
                n.heavy_key,
                n.heavy_running_s,
                span(&k.during),
                n.heavy_idle_s,
                span(&k.outside)
            ));
        }
    }
    if let Some(j) = &m.join {
        out.push(format!(
            "join by x-request-id: {} client requests, {} found in the gateway's log, {} in the upstream's \
             (dropped: client {}, gateway {}, upstream {})",
            j.client_requests,
            j.joined_gateway,
            j.joined_upstream,
            j.client_dropped,
            j.gateway_dropped,
            j.upstream_dropped
        ));
    }
    out
}

/// One row of `accounting.csv`: an [`AuditRow`] (or a skipped mode, key
/// empty), with the key's details on its `all` row.
#[derive(Serialize, Default)]
struct CsvRow<'a> {
    mode: &'a str,
    key: &'a str,
    logged: &'a str,
    requests: u64,
    accounted_s: Option<f64>,
    true_s: Option<f64>,
    under_count: Option<f64>,
    under_count_status: &'a str,
    skipped: &'a str,
    gateway: &'a str,
    true_cpu_s: Option<f64>,
    upstream_queue_wait_s: Option<f64>,
    logged_statuses: String,
    logged_client_aborts: Option<u64>,
    logged_gateway_timeouts: Option<u64>,
    logged_upstream_status_missing: Option<u64>,
    upstream_started: Option<u64>,
    upstream_completed: Option<u64>,
    upstream_abandoned: Option<u64>,
    upstream_cancelled: Option<u64>,
    upstream_refused: Option<u64>,
    client_abandoned: Option<u64>,
    client_goodput_per_s: Option<f64>,
    client_p99_us: Option<u64>,
    blocked_at_s: Option<f64>,
    true_s_before_block: Option<f64>,
}

fn status_name(s: UnderCount) -> &'static str {
    match s {
        UnderCount::Ratio => "ratio",
        UnderCount::NoGatewayLines => "no_gateway_lines",
        UnderCount::NothingAccounted => "nothing_accounted",
        UnderCount::NoUpstreamWork => "no_upstream_work",
    }
}

/// Writes `accounting.csv`: the audit's rows (see
/// [`crate::analysis::accounting::rows`]), empty fields where the summary
/// has `null`, and a row per skipped mode.
pub fn write_csv(w: &mut dyn Write, audit: &AbortAudit) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    let rows: Vec<AuditRow> = if audit.rows.is_empty() {
        crate::analysis::accounting::rows(audit)
    } else {
        audit.rows.clone()
    };
    for mode in modes(audit) {
        let m = &audit.modes[mode];
        let gateway = m.gateway.as_deref().unwrap_or("");
        if let Some(reason) = &m.skipped {
            csv.serialize(CsvRow {
                mode,
                skipped: reason,
                gateway,
                ..CsvRow::default()
            })?;
            continue;
        }
        for r in rows.iter().filter(|r| r.mode == mode) {
            let mut row = CsvRow {
                mode,
                key: &r.key,
                logged: &r.logged,
                requests: r.requests,
                accounted_s: r.accounted_s,
                true_s: r.true_s,
                under_count: r.under_count,
                under_count_status: status_name(r.under_count_status),
                gateway,
                ..CsvRow::default()
            };
            if let (Some(k), "all") = (m.keys.get(&r.key), r.logged.as_str()) {
                row.true_cpu_s = k.true_cpu_s;
                row.upstream_queue_wait_s = k.upstream_queue_wait_s;
                row.logged_statuses = statuses(k);
                row.logged_client_aborts = Some(k.logged_client_aborts);
                row.logged_gateway_timeouts = Some(k.logged_gateway_timeouts);
                row.logged_upstream_status_missing = Some(k.logged_upstream_status_missing);
                row.upstream_started = Some(k.upstream.started);
                row.upstream_completed = Some(k.upstream.completed);
                row.upstream_abandoned = Some(k.upstream.abandoned);
                row.upstream_cancelled = Some(k.upstream.cancelled);
                row.upstream_refused = Some(k.upstream.refused);
                row.client_abandoned = Some(k.client_abandoned);
                row.client_goodput_per_s = Some(k.client_goodput_per_s);
                row.client_p99_us = Some(k.client_p99_us);
                row.blocked_at_s = k.blocked_at_s;
                row.true_s_before_block = k.true_s_before_block;
            }
            csv.serialize(row)?;
        }
    }
    csv.flush()
}

/// One row of `requests.csv`: a request of one mode, joined by id (see
/// [`JoinedRequest`] for the fields).
#[derive(Serialize)]
struct RequestRow<'a> {
    mode: &'a str,
    id: &'a str,
    key: &'a str,
    intended_at_s: f64,
    client_outcome: &'a str,
    client_s: f64,
    gateway_status: Option<u16>,
    gateway_termination: Option<&'a str>,
    gateway_upstream_status: Option<&'a str>,
    accounted_s: Option<f64>,
    upstream_outcome: Option<&'a str>,
    upstream_started_at_s: Option<f64>,
    upstream_ended_at_s: Option<f64>,
    upstream_queue_wait_s: Option<f64>,
    upstream_wall_s: Option<f64>,
    upstream_cpu_s: Option<f64>,
}

/// Writes `requests.csv`: every joined request, per mode in run order.
pub fn write_requests_csv(
    w: &mut dyn Write,
    joined: &[(String, Vec<JoinedRequest>)],
) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    for (mode, requests) in joined {
        for request in requests {
            let r = request;
            csv.serialize(RequestRow {
                mode,
                id: &r.id,
                key: &r.key,
                intended_at_s: r.intended_at_s,
                client_outcome: &r.client_outcome,
                client_s: r.client_s,
                gateway_status: r.gateway_status,
                gateway_termination: r.gateway_termination.as_deref(),
                gateway_upstream_status: r.gateway_upstream_status.as_deref(),
                accounted_s: r.accounted_s,
                upstream_outcome: r.upstream_outcome.as_deref(),
                upstream_started_at_s: r.upstream_started_at_s,
                upstream_ended_at_s: r.upstream_ended_at_s,
                upstream_queue_wait_s: r.upstream_queue_wait_s,
                upstream_wall_s: r.upstream_wall_s,
                upstream_cpu_s: r.upstream_cpu_s,
            })?;
        }
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::accounting::{ClientKey, key_audit, skipped};
    use crate::analysis::gateway_log::KeyAccounting;
    use mock_upstream::accounting::KeyStats;

    fn audit() -> AbortAudit {
        let mut audit = AbortAudit::default();
        let gateway = KeyAccounting {
            requests: 4,
            by_status: [(499, 4)].into_iter().collect(),
            client_aborts: 4,
            accounted_s: 0.2,
            upstream_status_missing: 4,
            ..KeyAccounting::default()
        };
        let upstream = KeyStats {
            started: 4,
            abandoned: 4,
            cpu_s: 1.2,
            wall_s: 1.25,
            ..KeyStats::default()
        };
        let row = key_audit(
            Some(&gateway),
            Some(&upstream),
            ClientKey {
                abandoned: 4,
                ok: 0,
                p99_us: 50_000,
            },
            2.0,
        );
        let lost = key_audit(None, Some(&upstream), ClientKey::default(), 2.0);
        let mut ran = crate::analysis::accounting::ModeAudit {
            gateway: Some("contend 0.1.0".into()),
            ..Default::default()
        };
        ran.keys.insert("exporter".into(), row);
        ran.keys.insert("lost".into(), lost);
        audit.order = vec!["reference-early".into(), "nginx-off".into()];
        audit.modes.insert("reference-early".into(), ran);
        audit.modes.insert(
            "nginx-off".into(),
            skipped("skipped: nginx is not installed"),
        );
        audit
    }

    #[test]
    fn the_table_shows_factors_and_missing_values_apart() {
        let mut out = Vec::new();
        write_table(&mut out, &audit()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let exporter = text.lines().find(|l| l.contains("exporter")).expect(&text);
        for want in ["reference-early", "0.200s", "1.250s", "6.25x", "499:4"] {
            assert!(exporter.contains(want), "{want} missing: {exporter}");
        }
        let lost = text.lines().find(|l| l.contains("lost")).expect(&text);
        assert!(lost.contains("         - "), "{lost}");
        // Skipped modes keep their place in the run order, with the reason.
        let skipped_at = text.find("nginx-off").expect(&text);
        assert!(skipped_at > text.find("exporter").unwrap(), "{text}");
        assert!(text.contains("skipped: nginx is not installed"), "{text}");
    }

    fn joined(key: &str, accounted_s: f64, wall_s: f64, status: u16) -> JoinedRequest {
        JoinedRequest {
            id: format!(
                "{:016x}",
                (accounted_s * 1e6) as u64 ^ (wall_s * 1e6) as u64
            ),
            key: key.into(),
            intended_at_s: 0.0,
            client_outcome: "client_timeout".into(),
            client_s: 0.05,
            gateway_status: Some(status),
            gateway_termination: None,
            gateway_client_abort: status == 499,
            gateway_upstream_status: Some("-".into()),
            accounted_s: Some(accounted_s),
            upstream_outcome: Some("abandoned".into()),
            upstream_started_at_s: Some(0.0),
            upstream_ended_at_s: Some(wall_s),
            upstream_queue_wait_s: Some(0.0),
            upstream_wall_s: Some(wall_s),
            upstream_cpu_s: Some(wall_s),
        }
    }

    #[test]
    fn the_scatter_has_a_panel_per_accounting_and_the_knee_marked() {
        let mut audit = audit();
        audit.order = vec!["reference-early".into(), "reference-complete".into()];
        let complete = audit.modes["reference-early"].clone();
        audit.modes.insert("reference-complete".into(), complete);
        audit.modes.remove("nginx-off");
        audit.client_timeouts_s = [("exporter".to_string(), 0.05), ("lost".to_string(), 1.0)]
            .into_iter()
            .collect();
        let early: Vec<JoinedRequest> = (1..40)
            .map(|i| {
                let work = 0.01 * f64::from(i);
                joined(
                    "exporter",
                    work.min(0.05),
                    work,
                    if work > 0.05 { 499 } else { 200 },
                )
            })
            .collect();
        let complete: Vec<JoinedRequest> = (1..40)
            .map(|i| joined("exporter", 0.01 * f64::from(i), 0.01 * f64::from(i), 200))
            .collect();
        let sets = vec![
            ("reference-early".to_string(), early),
            ("reference-complete".to_string(), complete),
        ];
        let figure = scatter(&audit, &sets);
        assert_eq!(figure.panels.len(), 2);
        let top = &figure.panels[0].0;
        assert!(top.title.starts_with("Early"), "{}", top.title);
        assert_eq!(top.series[0].name, "reference-early");
        assert_eq!(top.series[0].data.len(), 39);
        // The knee: every early point past the timeout sits at 50 ms accounted.
        assert!(
            top.series[0]
                .data
                .iter()
                .all(|&(x, _)| x <= 50_000.0 + 1e-6)
        );
        // Only the key the client abandoned gets its timeout marked.
        assert_eq!(top.vlines.len(), 1, "{:?}", top.vlines);
        assert_eq!(top.vlines[0].0, 50_000.0);
        assert!(top.vlines[0].1.contains("50ms (exporter)"));
        assert!(figure.panels[1].0.title.starts_with("Complete"));
        let dir = std::env::temp_dir().join(format!("contend-scatter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for path in super::super::plot::files(&dir, "accounting") {
            super::super::plot::render(&path, &figure).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        }
        let mut out = Vec::new();
        write_requests_csv(&mut out, &sets).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("mode,id,key,intended_at_s,client_outcome,client_s,gateway_status,"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1 + 2 * 39);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_csv_leaves_missing_values_empty() {
        let mut out = Vec::new();
        write_csv(&mut out, &audit()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(
                "mode,key,logged,requests,accounted_s,true_s,under_count,under_count_status,skipped,gateway,"
            ),
            "{text}"
        );
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            lines[1],
            "reference-early,exporter,all,4,0.2,1.25,6.25,ratio,,contend 0.1.0,1.2,0.0,499:4,4,0,4,4,0,4,0,0,4,0.0,50000,,",
            "{text}"
        );
        assert!(
            lines[2]
                .starts_with("reference-early,lost,all,0,,1.25,,no_gateway_lines,,contend 0.1.0,"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("nginx-off,,,0,,,,,skipped: nginx is not installed,"),
            "{text}"
        );
    }
}
