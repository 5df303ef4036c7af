//! The abort audit's presentation: the console table and `abort-audit.csv`.
//!
//! Takes a finished [`AbortAudit`] and a writer; measures and computes
//! nothing. Missing values are shown as the analysis keeps them: `-` for no
//! gateway line (an empty CSV field), `unaccounted` for lines that accounted
//! 0 s against real work, `n/a` where the upstream did no work.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::console::fmt_us;
use super::summary::Summary;
use crate::analysis::accounting::{AbortAudit, KeyAudit, UnderCount};
use crate::error::Error;

/// Writes the audit's top-level files into `dir` (created if needed):
/// `summary.json` and, when `summary` holds an audit, `abort-audit.csv`.
/// Each is written on its own; returns the errors of those that failed.
pub fn write_files(dir: &Path, summary: &Summary) -> Vec<Error> {
    let mut errors = Vec::new();
    if let Err(e) = std::fs::create_dir_all(dir) {
        return vec![Error::io(dir, e)];
    }
    let mut one = |name: &str, body: &dyn Fn(&mut dyn Write) -> io::Result<()>| {
        let path = dir.join(name);
        let result = std::fs::File::create(&path).and_then(|file| {
            let mut w = io::BufWriter::new(file);
            body(&mut w)?;
            w.flush()
        });
        if let Err(e) = result {
            errors.push(Error::io(&path, e));
        }
    };
    one("summary.json", &|w| {
        serde_json::to_writer_pretty(&mut *w, summary)?;
        writeln!(w)
    });
    if let Some(audit) = &summary.abort_audit {
        one("abort-audit.csv", &|w| write_csv(w, audit));
        let figure = figure(audit);
        for path in super::plot::files(dir, "accounting") {
            if let Err(e) = super::plot::render(&path, &figure) {
                errors.push(Error::Runtime(format!("{}: {e}", path.display())));
            }
        }
    }
    errors
}

/// The client-vs-upstream scatter: per mode (one colour each) and key, the
/// seconds the gateway accounted per logged request against the seconds an
/// upstream worker spent per started request, with the line where they
/// agree. Points above the line are under-counted. These are per-key means:
/// the per-request scatter needs request ids joined across the client,
/// gateway log and upstream, which the logs do not carry yet.
pub fn figure(audit: &AbortAudit) -> super::plot::Figure {
    use super::plot::{Axis, Figure, Fmt, Kind, Panel, Series};
    use plotters::style::RGBColor;
    const COLOURS: [RGBColor; 4] = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(230, 120, 0),
        RGBColor(44, 160, 44),
    ];
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
        note: "Per mode and key, means over the key's requests; above the dashed line the gateway under-counts.".into(),
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

/// `499:30 504:2`; empty when the gateway logged nothing for the key.
fn statuses(row: &KeyAudit) -> String {
    row.logged_statuses
        .iter()
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

/// Writes the audit as a table, a row per mode and key.
pub fn write_table(w: &mut dyn Write, audit: &AbortAudit) -> io::Result<()> {
    writeln!(
        w,
        "Abort audit: worker time the gateway accounted against what the upstream worked"
    )?;
    writeln!(
        w,
        "  {:<19} {:<10} {:>6} {:>10} {:>9} {:>9} {:>12}  {:<22} {:>9} {:>9} {:>10}",
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
                "  {mode:<19} {key:<10} {:>6} {:>10} {:>9} {:>9} {:>12}  {:<22} {:>9} {:>9} {:>10.1}",
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
        }
        if let Some(gateway) = &m.gateway {
            writeln!(w, "  {:<19} ({gateway}, {:.1}s of load)", "", m.duration_s)?;
        }
    }
    writeln!(
        w,
        "  (under-count = true / accounted, true = upstream worker wall time; `-`: no gateway line, \
         `unaccounted`: 0 s accounted for real work, `n/a`: no upstream work)"
    )
}

/// One row of `abort-audit.csv`: a mode and key (or a skipped mode, key empty).
#[derive(Serialize)]
struct CsvRow<'a> {
    mode: &'a str,
    key: &'a str,
    skipped: &'a str,
    gateway: &'a str,
    gateway_lines: u64,
    accounted_s: Option<f64>,
    true_s: Option<f64>,
    true_cpu_s: Option<f64>,
    upstream_queue_wait_s: Option<f64>,
    under_count: Option<f64>,
    under_count_status: &'a str,
    logged_statuses: String,
    logged_client_aborts: u64,
    logged_gateway_timeouts: u64,
    logged_upstream_status_missing: u64,
    upstream_started: u64,
    upstream_completed: u64,
    upstream_abandoned: u64,
    upstream_cancelled: u64,
    upstream_refused: u64,
    client_abandoned: u64,
    client_goodput_per_s: f64,
    client_p99_us: u64,
}

fn status_name(s: UnderCount) -> &'static str {
    match s {
        UnderCount::Ratio => "ratio",
        UnderCount::NoGatewayLines => "no_gateway_lines",
        UnderCount::NothingAccounted => "nothing_accounted",
        UnderCount::NoUpstreamWork => "no_upstream_work",
    }
}

/// Writes `abort-audit.csv`: empty fields where the summary has `null`.
pub fn write_csv(w: &mut dyn Write, audit: &AbortAudit) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    for mode in modes(audit) {
        let m = &audit.modes[mode];
        let gateway = m.gateway.as_deref().unwrap_or("");
        if let Some(reason) = &m.skipped {
            csv.serialize(CsvRow {
                mode,
                key: "",
                skipped: reason,
                gateway,
                gateway_lines: 0,
                accounted_s: None,
                true_s: None,
                true_cpu_s: None,
                upstream_queue_wait_s: None,
                under_count: None,
                under_count_status: "",
                logged_statuses: String::new(),
                logged_client_aborts: 0,
                logged_gateway_timeouts: 0,
                logged_upstream_status_missing: 0,
                upstream_started: 0,
                upstream_completed: 0,
                upstream_abandoned: 0,
                upstream_cancelled: 0,
                upstream_refused: 0,
                client_abandoned: 0,
                client_goodput_per_s: 0.0,
                client_p99_us: 0,
            })?;
            continue;
        }
        for (key, row) in &m.keys {
            csv.serialize(CsvRow {
                mode,
                key,
                skipped: "",
                gateway,
                gateway_lines: row.gateway_lines,
                accounted_s: row.accounted_s,
                true_s: row.true_s,
                true_cpu_s: row.true_cpu_s,
                upstream_queue_wait_s: row.upstream_queue_wait_s,
                under_count: row.under_count,
                under_count_status: status_name(row.under_count_status),
                logged_statuses: statuses(row),
                logged_client_aborts: row.logged_client_aborts,
                logged_gateway_timeouts: row.logged_gateway_timeouts,
                logged_upstream_status_missing: row.logged_upstream_status_missing,
                upstream_started: row.upstream.started,
                upstream_completed: row.upstream.completed,
                upstream_abandoned: row.upstream.abandoned,
                upstream_cancelled: row.upstream.cancelled,
                upstream_refused: row.upstream.refused,
                client_abandoned: row.client_abandoned,
                client_goodput_per_s: row.client_goodput_per_s,
                client_p99_us: row.client_p99_us,
            })?;
        }
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::accounting::{ClientKey, key_audit, skipped};
    use serde_json::json;

    fn audit() -> AbortAudit {
        let mut audit = AbortAudit::default();
        let gateway = json!({"requests": 4, "by_status": {"499": 4}, "accounted_s": 0.2, "upstream_status_missing": 4});
        let upstream = json!({"started": 4, "abandoned": 4, "cpu_s": 1.2, "wall_s": 1.25});
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

    #[test]
    fn the_csv_leaves_missing_values_empty() {
        let mut out = Vec::new();
        write_csv(&mut out, &audit()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("mode,key,skipped,gateway,gateway_lines,accounted_s,true_s"),
            "{text}"
        );
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[1].starts_with("reference-early,exporter,,contend 0.1.0,4,0.2,1.25,1.2,"),
            "{text}"
        );
        assert!(lines[1].contains(",6.25,ratio,499:4,4,0,4,"), "{text}");
        assert!(
            lines[2].starts_with("reference-early,lost,,contend 0.1.0,0,,1.25,"),
            "{text}"
        );
        assert!(lines[2].contains(",,no_gateway_lines,"), "{text}");
        assert!(
            lines[3].starts_with("nginx-off,,skipped: nginx is not installed,"),
            "{text}"
        );
    }
}
