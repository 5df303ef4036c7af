//! `[[variants]]`'s presentation: one row per variant (amplification,
//! goodput, the 503s and 504s, p99, the upstream's CPU and the part of it
//! wasted on answers nobody read), the console table, `variants.csv`, and
//! `variants.svg`/`.png` (amplification and goodput over time, a line per
//! variant).
//!
//! Takes each variant's finished summary and intervals; measures nothing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IntervalCsvRow;
use super::console::fmt_us;
use super::plot::{Figure, Fmt, Kind, Panel, Series};
use super::summary::Summary;
use crate::error::Error;

/// One variant's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantRow {
    /// The variant's name.
    pub name: String,
    /// Arrivals offered.
    pub arrivals: u64,
    /// Attempts made: arrivals plus retries.
    pub attempts: u64,
    /// Attempts per arrival.
    pub amplification: f64,
    /// Retries the budget refused.
    pub budget_refused: u64,
    /// 2xx answers per second of the run.
    pub goodput_per_s: f64,
    /// Arrivals that ended 2xx, 503, 504, in a client timeout.
    pub ok: u64,
    /// See `ok`.
    pub unavailable_503: u64,
    /// See `ok`.
    pub gateway_timeout_504: u64,
    /// See `ok`.
    pub client_timeout: u64,
    /// Latency (what the caller waited, retries included) p50 and p99, us.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// CPU seconds the mock upstream spent (`None`: not the mock, or unread).
    pub upstream_cpu_s: Option<f64>,
    /// The part of it spent on answers whose caller had gone (the gateway
    /// had answered 504): wasted.
    pub wasted_upstream_cpu_s: Option<f64>,
    /// True when a stop cut this variant short.
    pub interrupted: bool,
}

impl VariantRow {
    /// The row of the variant `name` from its summary.
    pub fn of(name: &str, s: &Summary) -> VariantRow {
        let retries = s.retries.clone().unwrap_or_default();
        let status = |code: u16| s.outcomes.responses.get(&code).copied().unwrap_or(0);
        let ok: u64 = s
            .outcomes
            .responses
            .iter()
            .filter(|(c, _)| (200..300).contains(*c))
            .map(|(_, n)| n)
            .sum();
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        VariantRow {
            name: name.to_string(),
            arrivals: s.arrivals,
            attempts: if s.retries.is_some() {
                retries.attempts
            } else {
                s.arrivals
            },
            amplification: if s.retries.is_some() {
                retries.amplification
            } else {
                1.0
            },
            budget_refused: retries.budget_refused,
            goodput_per_s: round(ok as f64 / s.duration_s.max(1e-9)),
            ok,
            unavailable_503: status(503),
            gateway_timeout_504: status(504),
            client_timeout: s.outcomes.client_timeout,
            p50_us: s.latency_us.p50,
            p99_us: s.latency_us.p99,
            upstream_cpu_s: s
                .upstream_accounting
                .as_ref()
                .map(|a| round(a.totals.cpu_s)),
            wasted_upstream_cpu_s: s
                .upstream_accounting
                .as_ref()
                .map(|a| round(a.totals.wasted_cpu_s)),
            interrupted: s.interrupted,
        }
    }
}

/// The console table.
pub fn write_table(w: &mut dyn Write, rows: &[VariantRow]) -> io::Result<()> {
    writeln!(
        w,
        "{:<14} {:>8} {:>8} {:>6} {:>9} {:>6} {:>6} {:>6} {:>9} {:>9} {:>10} {:>10}",
        "variant",
        "arrivals",
        "attempts",
        "ampl",
        "goodput/s",
        "2xx",
        "503",
        "504",
        "p50",
        "p99",
        "upstr CPU",
        "wasted CPU"
    )?;
    let cpu = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.2}s"));
    for r in rows {
        writeln!(
            w,
            "{:<14} {:>8} {:>8} {:>6.2} {:>9.1} {:>6} {:>6} {:>6} {:>9} {:>9} {:>10} {:>10}{}",
            r.name,
            r.arrivals,
            r.attempts,
            r.amplification,
            r.goodput_per_s,
            r.ok,
            r.unavailable_503,
            r.gateway_timeout_504,
            fmt_us(r.p50_us),
            fmt_us(r.p99_us),
            cpu(r.upstream_cpu_s),
            cpu(r.wasted_upstream_cpu_s),
            if r.interrupted { "  (interrupted)" } else { "" }
        )?;
    }
    writeln!(
        w,
        "  (ampl: attempts per arrival; latency: from each arrival's intended time to its last attempt's answer; \
         wasted CPU: the upstream's work on answers nobody read)"
    )
}

/// `variants.csv`: the rows.
pub fn write_csv(w: &mut dyn Write, rows: &[VariantRow]) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    for r in rows {
        csv.serialize(r).map_err(io::Error::other)?;
    }
    csv.flush()
}

/// One colour per variant, by its place in the list.
const COLOURS: [plotters::style::RGBColor; 6] = [
    plotters::style::RGBColor(110, 110, 110),
    plotters::style::RGBColor(214, 39, 40),
    plotters::style::RGBColor(230, 120, 0),
    plotters::style::RGBColor(44, 160, 44),
    plotters::style::RGBColor(31, 119, 180),
    plotters::style::RGBColor(148, 103, 189),
];

/// Amplification (top) and goodput (bottom) over time, a line per variant.
pub fn figure(name: &str, variants: &[(String, Vec<IntervalCsvRow>)]) -> Figure {
    let lines = |f: fn(&IntervalCsvRow) -> f64| -> Vec<Series> {
        variants
            .iter()
            .enumerate()
            .map(|(i, (variant, rows))| {
                let full_s = rows.iter().map(|r| r.duration_s).fold(0.0, f64::max);
                Series {
                    name: variant.clone(),
                    color: COLOURS[i % COLOURS.len()],
                    // The short drain interval at the end says little.
                    data: rows
                        .iter()
                        .filter(|r| r.duration_s >= full_s / 2.0)
                        .map(|r| (r.start_s + r.duration_s / 2.0, f(r)))
                        .collect(),
                    kind: Kind::Line(true),
                }
            })
            .collect()
    };
    let panel = |title: String, y: &str, series| Panel {
        title,
        x: axis("time since start (s)"),
        y: axis(y),
        series,
        vlines: Vec::new(),
        hlines: Vec::new(),
        marks: Vec::new(),
    };
    Figure {
        panels: vec![
            (
                panel(
                    format!("Retry amplification over time: {name}"),
                    "attempts per arrival",
                    lines(|r| r.amplification),
                ),
                1.0,
            ),
            (
                panel(
                    "Goodput over time".to_string(),
                    "2xx per second",
                    lines(|r| r.goodput_per_s),
                ),
                1.0,
            ),
        ],
        note: "Each variant ran the same phases on a fresh topology; per interval of its run."
            .into(),
    }
}

fn axis(label: &str) -> super::plot::Axis {
    super::plot::Axis {
        label: label.to_string(),
        log: false,
        fmt: Fmt::Plain,
        range: None,
    }
}

/// Writes the top-level files into `dir`: `summary.json`, `variants.csv`,
/// the figure and `report.html` (`variants_page`), each whole or not at all; returns the files written
/// and the errors of those that failed.
pub fn write_files(
    dir: &Path,
    summary: &Summary,
    variants: &[(String, Vec<IntervalCsvRow>)],
) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = super::Written::default();
    written.summary_json(dir, summary);
    if let Some(rows) = &summary.variants {
        written.file(dir.join("variants.csv"), &|w| write_csv(w, rows));
        let figure = figure(&summary.name, variants);
        for path in super::plot::files(dir, "variants") {
            let result = super::plot::render_file(&path, &figure);
            written.keep(path, result);
        }
        // After the figure: the page holds its SVG inline.
        written.file(dir.join("report.html"), &|w| {
            super::variants_page::write(w, dir, summary)
        });
    }
    written.into_parts()
}
