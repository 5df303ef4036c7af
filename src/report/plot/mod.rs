//! Plots, as SVG and PNG, from a finished run's data.
//!
//! Takes a [`ReportData`] (built from a run just finished, or read back from
//! a saved report folder) and writes, beside the other report files:
//! `latency-over-time` and `percentile-spectrum` for every run,
//! `components-over-time` when components were read, and for a
//! sweep also `latency-vs-load`, `throughput-vs-load` and (with
//! closed-loop steps) `usl`, and for a find-limit `limit` (drawn by
//! [`super::find_limit::figure`]). Every line is labelled at its end, in its own
//! colour, so no legend needs hunting. Text uses a font embedded from
//! `assets/`, so nothing depends on the system's fonts. Nothing here
//! measures or analyses: knees and fits arrive in the data.
//!
//! The parts: `figure` holds [`Figure`] and its pieces, what a plot shows
//! as plain data; `latency` builds the figures every run has,
//! `components` the system under test's and `sweep` a sweep's; `axes` turns data ranges into ticks and their labels; `draw`
//! puts a figure on an SVG or PNG with plotters ([`render`]).

mod axes;
mod components;
mod draw;
mod figure;
mod latency;
mod sweep;

use std::path::{Path, PathBuf};

pub use draw::render;
pub use figure::{Axis, Figure, Fmt, Kind, Panel, Series};

use super::summary::Summary;
use super::{IntervalCsvRow, read_intervals_csv};
use crate::error::{Error, Result};

/// What the plots and the HTML report draw: plain data, no sockets.
#[derive(Debug, Clone)]
pub struct ReportData {
    /// The run's summary (with the sweep's rows and analyses, for a sweep).
    pub summary: Summary,
    /// Latency percentiles per interval.
    pub intervals: Vec<IntervalCsvRow>,
    /// The percentile distribution: (quantile in [0, 1), latency us).
    pub spectrum: Vec<(f64, f64)>,
    /// The components and `[[scrape]]` targets, per interval.
    pub components: Vec<crate::topology::telemetry::SourceSeries>,
}

impl ReportData {
    /// From a run just finished: its summary, its intervals and its latency histogram.
    pub fn of(
        summary: &Summary,
        intervals: &[crate::record::IntervalRow],
        latency_us: &hdrhistogram::Histogram<u64>,
        components: &[crate::topology::telemetry::SourceSeries],
    ) -> Self {
        let mut spectrum = Vec::new();
        if !latency_us.is_empty() {
            for v in latency_us.iter_quantiles(5) {
                let q = v.quantile_iterated_to();
                if q < 1.0 {
                    spectrum.push((q, v.value_iterated_to() as f64));
                }
            }
        }
        ReportData {
            summary: summary.clone(),
            intervals: intervals.iter().map(IntervalCsvRow::from).collect(),
            spectrum,
            components: components.to_vec(),
        }
    }

    /// Reads a saved report folder back: `summary.json`, `intervals.csv`,
    /// `latency.hgrm` and `components.csv` (all but the first may be
    /// missing: their plots are then left out).
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Usage(format!(
                "{}: {e}; give a report folder that `contend run` wrote",
                path.display()
            ))
        })?;
        let summary: Summary = serde_json::from_str(&text).map_err(|e| Error::Scenario {
            location: path.display().to_string(),
            message: format!("not a contend summary: {e}"),
        })?;
        let mut intervals = Vec::new();
        let csv_path = dir.join("intervals.csv");
        if csv_path.exists() {
            intervals = read_intervals_csv(&csv_path).map_err(|message| Error::Scenario {
                location: csv_path.display().to_string(),
                message,
            })?;
        }
        let spectrum = std::fs::read_to_string(dir.join("latency.hgrm"))
            .map(|text| parse_hgrm(&text))
            .unwrap_or_default();
        let components_path = dir.join("components.csv");
        let components = if components_path.exists() {
            super::components::read_csv(&components_path).map_err(|message| Error::Scenario {
                location: components_path.display().to_string(),
                message,
            })?
        } else {
            Vec::new()
        };
        Ok(ReportData {
            summary,
            intervals,
            spectrum,
            components,
        })
    }
}

/// The (quantile, value us) lines of an `.hgrm` file (values in ms there).
fn parse_hgrm(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let value_ms: f64 = fields.next()?.parse().ok()?;
            let q: f64 = fields.next()?.parse().ok()?;
            (q < 1.0).then_some((q, value_ms * 1000.0))
        })
        .collect()
}

/// Writes every plot `data` has data for, as `<name>.svg` and `<name>.png`
/// in `dir`. Returns the names drawn (without extension) and the errors of
/// those that failed; one failure does not stop the others.
pub fn write_all(dir: &Path, data: &ReportData) -> (Vec<String>, Vec<Error>) {
    let mut drawn = Vec::new();
    let mut errors = Vec::new();
    for (name, chart) in charts(data) {
        let mut ok = true;
        for ext in ["svg", "png"] {
            let path = dir.join(format!("{name}.{ext}"));
            if let Err(e) = render_file(&path, &chart) {
                errors.push(e);
                ok = false;
            }
        }
        if ok {
            drawn.push(name.to_string());
        }
    }
    (drawn, errors)
}

/// Draws `figure` into the file at `path` (SVG or PNG by its extension),
/// whole or not at all (see [`super::replace_file`]).
pub fn render_file(path: &Path, figure: &Figure) -> Result<(), Error> {
    super::replace_file(path, &|temp| {
        render(temp, figure).map_err(std::io::Error::other)
    })
}

/// The plots `data` has data for, by file name.
pub fn charts(data: &ReportData) -> Vec<(&'static str, Figure)> {
    let mut out = Vec::new();
    if let Some(find_limit) = &data.summary.find_limit {
        out.push(("limit", super::find_limit::figure(find_limit)));
    }
    if let Some(sweep) = &data.summary.sweep {
        if sweep.steps.len() >= 2 {
            out.push(("latency-vs-load", sweep::latency_vs_load(sweep)));
            out.push(("throughput-vs-load", sweep::throughput_vs_load(sweep)));
        }
        if !sweep.concurrency_steps.is_empty() {
            out.push(("usl", sweep::usl(sweep)));
        }
    }
    if data.intervals.iter().any(|r| r.sent > 0 || r.max_us > 0) {
        out.push(("latency-over-time", latency::latency_over_time(data)));
        if data.summary.retries.is_some() {
            let series = [(data.summary.name.clone(), data.intervals.clone())];
            out.push((
                "retries-over-time",
                super::variants::figure(&data.summary.name, &series),
            ));
        }
    }
    if let Some(figure) = components::components_over_time(data) {
        out.push(("components-over-time", figure));
    }
    if data.spectrum.len() >= 2 {
        out.push(("percentile-spectrum", latency::percentile_spectrum(data)));
    }
    out
}

/// The faults a run applied as shaded spans over a time axis (s from the
/// load's start), one series per fault, named for what was done to what
/// (`store pause`); a kill that lasts is shaded to the panel's end. A
/// fault that could not be applied at all is not drawn.
pub fn fault_shades(faults: &[crate::experiment::faults::AppliedFault]) -> Vec<Series> {
    faults
        .iter()
        .filter(|f| f.error.is_none() || f.until_s.is_some())
        .map(|f| Series {
            name: format!("{} {}", f.component, f.action),
            color: match f.action.as_str() {
                "pause" => figure::PURPLE,
                _ => figure::RED,
            },
            data: vec![(f.at_s, f.until_s.unwrap_or(f64::INFINITY))],
            kind: Kind::Shade,
        })
        .collect()
}

/// Paths of a plot's two files in `dir`.
pub fn files(dir: &Path, name: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{name}.svg")),
        dir.join(format!("{name}.png")),
    ]
}

/// A percentile without trailing zeros: 99, 99.9, 99.99.
fn fmt_pct(p: f64) -> String {
    let s = format!("{p:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Microseconds as a short human value: `850us`, `1.2ms`, `35ms`, `2.1s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}us")
    } else if us < 10_000.0 {
        format!("{:.1}ms", us / 1000.0)
    } else if us < 1_000_000.0 {
        format!("{:.0}ms", us / 1000.0)
    } else {
        format!("{:.1}s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_shaded_from_when_they_took_effect_and_labelled() {
        let fault = |action: &str, at_s, until_s| crate::experiment::faults::AppliedFault {
            component: "store".into(),
            action: action.into(),
            planned_s: at_s,
            at_s,
            until_s,
            error: None,
        };
        let shades = fault_shades(&[fault("pause", 2.0, Some(3.5)), fault("kill", 6.0, None)]);
        assert_eq!(shades.len(), 2);
        assert_eq!(shades[0].name, "store pause");
        assert_eq!(shades[0].data, vec![(2.0, 3.5)]);
        assert!(
            shades[1].data[0].1.is_infinite(),
            "a lasting kill runs to the edge"
        );
        let figure = Figure {
            panels: vec![(
                Panel {
                    title: "t".into(),
                    x: figure::axis("s", false, Fmt::Plain),
                    y: figure::axis("n", false, Fmt::Plain),
                    series: [Series {
                        name: "line".into(),
                        color: figure::BLUE,
                        data: (0..10).map(|i| (i as f64, 1.0 + i as f64)).collect(),
                        kind: Kind::Line(false),
                    }]
                    .into_iter()
                    .chain(shades)
                    .collect(),
                    vlines: Vec::new(),
                    hlines: Vec::new(),
                    marks: Vec::new(),
                },
                1.0,
            )],
            note: String::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.svg");
        render_file(&path, &figure).expect("renders");
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("store pause") && svg.contains("store kill"));
    }

    #[test]
    fn hgrm_lines_parse_into_quantiles_in_us() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    \x20     1.000 0.000000000000          1           1.00\n\
                    \x20     2.500 0.990000000000         99         100.00\n\
                    \x20     3.000 1.000000000000        100\n\
                    #[Mean    =        1.000, StdDeviation   =        0.000]\n";
        assert_eq!(parse_hgrm(text), vec![(0.0, 1000.0), (0.99, 2500.0)]);
    }
}
