//! Every run's figures: `latency-over-time` and `percentile-spectrum`.
//!
//! Takes a [`ReportData`] (its intervals, its percentile distribution and
//! summary) and hands on [`Figure`]s.

use super::figure::{BLUE, Figure, Fmt, GREEN, GREY, Kind, ORANGE, Panel, RED, Series, axis};
use super::{IntervalCsvRow, ReportData, fmt_us};

/// The percentiles of each interval over the run, with its phases or steps.
pub(super) fn latency_over_time(data: &ReportData) -> Figure {
    // A short last interval (the drain after the load) holds only the
    // stragglers; its percentiles say little and would pull every line
    // together at the end, so it is left out of this plot (not the data).
    let full_s = data
        .intervals
        .iter()
        .map(|r| r.duration_s)
        .fold(0.0, f64::max);
    let rows: Vec<&IntervalCsvRow> = data
        .intervals
        .iter()
        .filter(|r| r.sent > 0 || r.max_us > 0)
        .filter(|r| r.duration_s >= full_s / 2.0)
        .collect();
    let line = |name: &str, color, f: fn(&IntervalCsvRow) -> u64| Series {
        name: name.to_string(),
        color,
        data: rows
            .iter()
            .map(|r| (r.start_s + r.duration_s / 2.0, f(r) as f64))
            .collect(),
        kind: Kind::Line(false),
    };
    let vlines = match &data.summary.sweep {
        Some(sweep) => sweep
            .steps
            .iter()
            .map(|s| (s.start_s, format!("{:.0}/s", s.rate_per_s)))
            .collect(),
        None => data
            .summary
            .phase_starts_s
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, s)| (*s, format!("phase {}", i + 1)))
            .collect(),
    };
    let note = if data.summary.sweep.is_some() {
        "Each step begins with its warm-up; lines mark the steps.".to_string()
    } else if !data.summary.faults.is_empty() {
        "Shaded: the [[faults]], from when each took effect to when it ended.".to_string()
    } else {
        String::new()
    };
    Figure {
        panels: vec![(
            Panel {
                title: format!("Latency over time: {}", data.summary.name),
                x: axis("time since start (s)", false, Fmt::Plain),
                y: axis("latency per interval (log scale)", true, Fmt::Micros),
                series: [
                    line("P50", BLUE, |r| r.p50_us),
                    line("P90", GREEN, |r| r.p90_us),
                    line("P99", ORANGE, |r| r.p99_us),
                    line("P99.9", RED, |r| r.p999_us),
                    line("max", GREY, |r| r.max_us),
                ]
                .into_iter()
                .chain(super::fault_shades(&data.summary.faults))
                .collect(),
                vlines,
                hlines: Vec::new(),
                marks: Vec::new(),
            },
            1.0,
        )],
        note,
    }
}

/// The whole run's latency by percentile, with P50, P99 and P99.9 marked.
pub(super) fn percentile_spectrum(data: &ReportData) -> Figure {
    let points: Vec<(f64, f64)> = data
        .spectrum
        .iter()
        .map(|&(q, v)| (1.0 / (1.0 - q), v))
        .collect();
    let s = &data.summary.latency_us;
    let marks = [
        (0.5, s.p50, "P50"),
        (0.99, s.p99, "P99"),
        (0.999, s.p999, "P99.9"),
    ]
    .iter()
    .filter(|(_, v, _)| *v > 0)
    .filter(|(q, _, _)| points.last().is_some_and(|l| l.0 >= 1.0 / (1.0 - q)))
    .map(|&(q, v, name)| {
        (
            1.0 / (1.0 - q),
            v as f64,
            format!("{name} {}", fmt_us(v as f64)),
        )
    })
    .collect();
    Figure {
        panels: vec![(
            Panel {
                title: format!("Latency by percentile: {}", data.summary.name),
                x: axis("percentile", true, Fmt::Spectrum),
                y: axis("latency", false, Fmt::Micros),
                series: vec![Series { name: "latency".into(), color: BLUE, data: points, kind: Kind::Line(false) }],
                vlines: Vec::new(),
                hlines: Vec::new(),
                marks,
            },
            1.0,
        )],
        note: "HdrHistogram percentile distribution of the whole run, from each request's intended send time.".into(),
    }
}
