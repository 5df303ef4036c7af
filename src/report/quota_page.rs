//! `experiment = "quota"`'s figures and files at the top of its report
//! folder: `quota-accuracy` (admitted per second and p99 over time, a line
//! per design, the quota drawn), `quota-faults` (per fault design the
//! admitted, 429 and 5xx answers per second, the faults shaded when they
//! held), `summary.json`, `quota.md`, `quota.csv` and `report.html` (the
//! tables, the figures inline, links to each design's own report in
//! `design-NAME/`).
//!
//! Takes the finished [`QuotaResult`] and each design's intervals;
//! measures nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

use super::IntervalCsvRow;
use super::html::{STYLE, esc, inline_plots};
use super::plot::{Axis, Figure, Fmt, Kind, Panel, Series};
use super::quota::{QuotaResult, write_csv};
use super::summary::Summary;
use crate::error::Error;

/// One colour per design, by its place in the list.
const COLOURS: [RGBColor; 5] = [
    RGBColor(110, 110, 110),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(230, 120, 0),
    RGBColor(214, 39, 40),
];

/// A design's intervals, by its name.
pub type DesignIntervals = (String, Vec<IntervalCsvRow>);

fn axis(label: &str, fmt: Fmt) -> Axis {
    Axis {
        label: label.to_string(),
        log: false,
        fmt,
        range: None,
    }
}

fn panel(title: String, y: Axis, series: Vec<Series>, hlines: Vec<(f64, String)>) -> Panel {
    Panel {
        title,
        x: axis("time since start (s)", Fmt::Plain),
        y,
        series,
        vlines: Vec::new(),
        hlines,
        marks: Vec::new(),
    }
}

/// `f` per whole interval (the short drain at the end says little).
fn line(
    name: &str,
    color: RGBColor,
    rows: &[IntervalCsvRow],
    f: &dyn Fn(&IntervalCsvRow) -> f64,
) -> Series {
    let full_s = rows.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    Series {
        name: name.to_string(),
        color,
        data: rows
            .iter()
            .filter(|r| r.duration_s >= full_s / 2.0)
            .map(|r| (r.start_s + r.duration_s / 2.0, f(r)))
            .collect(),
        kind: Kind::Line(false),
    }
}

/// What the quota allows per second over the keys: per key the smaller of
/// its offered rate and the quota (from the first design that ran).
fn allowed_per_s(q: &QuotaResult) -> Option<f64> {
    let d = q.designs.iter().find(|d| d.error.is_none())?;
    Some(
        d.keys
            .iter()
            .map(|k| k.offered_per_s.min(q.rate_per_s))
            .sum(),
    )
}

/// Admitted per second and p99 over time, a line per design without faults.
pub fn accuracy_figure(name: &str, q: &QuotaResult, runs: &[DesignIntervals]) -> Figure {
    let plain: Vec<(usize, &DesignIntervals)> = runs
        .iter()
        .enumerate()
        .filter(|(_, (d, _))| !d.starts_with("fault-"))
        .collect();
    let quota_line: Vec<(f64, String)> = allowed_per_s(q)
        .map(|a| vec![(a, format!("quota: {a:.0}/s over the keys"))])
        .unwrap_or_default();
    let admitted = plain
        .iter()
        .map(|(i, (d, rows))| {
            line(d, COLOURS[i % COLOURS.len()], rows, &|r| {
                r.ok_2xx as f64 / r.duration_s.max(1e-9)
            })
        })
        .collect();
    let p99 = plain
        .iter()
        .map(|(i, (d, rows))| line(d, COLOURS[i % COLOURS.len()], rows, &|r| r.p99_us as f64))
        .collect();
    Figure {
        panels: vec![
            (
                panel(
                    format!("Admitted per second by design: {name}"),
                    axis("2xx per second", Fmt::Plain),
                    admitted,
                    quota_line,
                ),
                1.0,
            ),
            (
                panel(
                    "Latency P99 per interval".into(),
                    axis("P99", Fmt::Micros),
                    p99,
                    Vec::new(),
                ),
                0.8,
            ),
        ],
        note: format!(
            "Each design ran the same phases on fresh components ({} replica(s)); the dashed line is what the quota \
             allows the keys' offered rates.",
            q.replicas
        ),
    }
}

/// Per fault design: admitted, 429 and 5xx per second, the faults shaded.
pub fn faults_figure(name: &str, q: &QuotaResult, runs: &[DesignIntervals]) -> Option<Figure> {
    let quota_line: Vec<(f64, String)> = allowed_per_s(q)
        .map(|a| vec![(a, format!("quota {a:.0}/s"))])
        .unwrap_or_default();
    let panels: Vec<(Panel, f64)> = runs
        .iter()
        .filter(|(d, _)| d.starts_with("fault-"))
        .map(|(d, rows)| {
            let faults = q
                .designs
                .iter()
                .find(|r| &r.design == d)
                .map(|r| r.faults.as_slice())
                .unwrap_or_default();
            let per_s = |n: u64, r: &IntervalCsvRow| n as f64 / r.duration_s.max(1e-9);
            let mut series = vec![
                line("admitted (2xx)", COLOURS[2], rows, &|r| per_s(r.ok_2xx, r)),
                line("429", COLOURS[3], rows, &|r| per_s(r.s429, r)),
                line("5xx", COLOURS[4], rows, &|r| {
                    per_s(r.s503 + r.s504 + r.other_status, r)
                }),
            ];
            series.extend(super::plot::fault_shades(faults));
            (
                panel(
                    format!("Through the store faults, {d}: {name}"),
                    axis("answers per second", Fmt::Plain),
                    series,
                    quota_line.clone(),
                ),
                1.0,
            )
        })
        .collect();
    (!panels.is_empty()).then(|| Figure {
        panels,
        note: "Shaded: each fault from when it took effect to when it ended (the store resumed or restarted)."
            .into(),
    })
}

/// Writes the top-level files into `dir`, each whole or not at all;
/// returns those written and the errors of those that failed.
pub fn write_files(
    dir: &Path,
    summary: &Summary,
    q: &QuotaResult,
    runs: &[DesignIntervals],
) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = super::Written::default();
    written.summary_json(dir, summary);
    written.file(dir.join("quota.md"), &|w| {
        writeln!(w, "# {}\n", summary.name)?;
        w.write_all(q.markdown().as_bytes())
    });
    written.file(dir.join("quota.csv"), &|w| write_csv(w, q));
    let mut figures = vec![("quota-accuracy", accuracy_figure(&summary.name, q, runs))];
    if let Some(f) = faults_figure(&summary.name, q, runs) {
        figures.push(("quota-faults", f));
    }
    let mut drawn = Vec::new();
    for (name, figure) in &figures {
        let mut ok = true;
        for path in super::plot::files(dir, name) {
            let result = super::plot::render_file(&path, figure);
            ok &= result.is_ok();
            written.keep(path, result);
        }
        if ok {
            drawn.push(name.to_string());
        }
    }
    let page = page(dir, summary, q, &drawn);
    written.file(dir.join("report.html"), &|w| w.write_all(page.as_bytes()));
    written.into_parts()
}

/// `report.html`: the tables of `quota.md`, the figures, the designs' reports.
fn page(dir: &Path, summary: &Summary, q: &QuotaResult, plots: &[String]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>contend: {}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p class=\"muted\">experiment <b>quota</b> · started {}{}</p>\n",
        esc(&summary.name),
        esc(&summary.name),
        esc(&summary.started_at),
        if summary.interrupted {
            " · <b>interrupted</b>"
        } else {
            ""
        }
    );
    markdown_to_html(&mut h, &q.markdown());
    inline_plots(&mut h, dir, plots);
    let _ = writeln!(h, "<h2>Each design's report</h2><ul>");
    for d in &q.designs {
        match &d.error {
            Some(e) => {
                let _ = writeln!(h, "<li>{}: failed: {}</li>", esc(&d.design), esc(e));
            }
            None => {
                let _ = writeln!(
                    h,
                    "<li><a href=\"design-{0}/report.html\">{0}</a></li>",
                    esc(&d.design)
                );
            }
        }
    }
    let _ = writeln!(h, "</ul>");
    for w in &summary.warnings {
        let _ = writeln!(h, "<p class=\"warn\">{}</p>", esc(w));
    }
    let _ = writeln!(
        h,
        "<p class=\"muted\">Written by contend {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    h
}

/// The few Markdown shapes `quota.md` uses (headings, tables, paragraphs).
fn markdown_to_html(h: &mut String, md: &str) {
    let mut in_table = false;
    for l in md.lines() {
        let cells = |l: &str| -> Vec<String> {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| esc(c.trim()).replace("**", ""))
                .collect()
        };
        if l.starts_with('|') {
            if l.contains("---") {
                continue;
            }
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                h.push_str("<table>");
                in_table = true;
            }
            h.push_str("<tr>");
            for c in cells(l) {
                let _ = write!(h, "<{tag}>{c}</{tag}>");
            }
            h.push_str("</tr>\n");
            continue;
        }
        if in_table {
            h.push_str("</table>\n");
            in_table = false;
        }
        if let Some(title) = l.strip_prefix("## ") {
            let _ = writeln!(h, "<h2>{}</h2>", esc(title));
        } else if !l.trim().is_empty() {
            let _ = writeln!(h, "<p>{}</p>", esc(l));
        }
    }
    if in_table {
        h.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_become_html_tables() {
        let mut h = String::new();
        markdown_to_html(
            &mut h,
            "## 1. A\n\n| a | b |\n| --- | ---: |\n| x<y | **2** |\nend\n",
        );
        assert_eq!(
            h,
            "<h2>1. A</h2>\n<table><tr><th>a</th><th>b</th></tr>\n<tr><td>x&lt;y</td><td>2</td></tr>\n</table>\n<p>end</p>\n"
        );
    }
}
