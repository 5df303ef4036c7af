//! `components-over-time`: what the system under test did beside the
//! latency plot, on the same time axis: each component's CPU in cores,
//! its queue depth and requests in flight, and (in a cgroup with a CPU
//! quota) the share of its CFS periods that were throttled.
//!
//! Takes a [`ReportData`] with components; hands on a [`Figure`], or
//! `None` when no component was read.

use super::ReportData;
use super::figure::{
    BLUE, BROWN, Figure, Fmt, GREEN, GREY, Kind, ORANGE, PINK, PURPLE, Panel, Series, axis,
};
use crate::topology::telemetry::{ComponentSample, SourceSeries};

/// The metrics drawn as queueing: what waits, and what is in progress
/// (nginx's active connections stand for its in flight).
const QUEUE_METRICS: [(&str, &str); 3] = [
    ("queue_depth", "queue"),
    ("in_flight", "in flight"),
    ("active", "active conns"),
];

/// The figure, when any component was read over a whole interval.
pub(super) fn components_over_time(data: &ReportData) -> Option<Figure> {
    let full_s = data
        .components
        .iter()
        .flat_map(|s| &s.samples)
        .map(|r| r.duration_s)
        .fold(0.0, f64::max);
    // As in the latency plot, a short last interval (the drain) is left out.
    let whole = |r: &&ComponentSample| r.duration_s >= full_s / 2.0;
    let colors = [BLUE, ORANGE, GREEN, PURPLE, BROWN, PINK, GREY];
    let line = |s: &SourceSeries,
                name: String,
                i: usize,
                dashed: bool,
                f: &dyn Fn(&ComponentSample) -> Option<f64>| Series {
        name,
        color: colors[i % colors.len()],
        data: s
            .samples
            .iter()
            .filter(whole)
            .filter_map(|r| Some((r.start_s + r.duration_s / 2.0, f(r)?)))
            .collect(),
        kind: if dashed {
            Kind::Dashed
        } else {
            Kind::Line(false)
        },
    };
    let mut cpu = Vec::new();
    let mut queue = Vec::new();
    let mut throttled = Vec::new();
    for (i, s) in data.components.iter().enumerate() {
        let cores = line(s, s.role.clone(), i, false, &|r| r.cpu_cores);
        if !cores.data.is_empty() {
            cpu.push(cores);
        }
        for (j, (metric, label)) in QUEUE_METRICS.iter().enumerate() {
            let series = line(s, format!("{} {label}", s.role), i, j > 0, &|r| {
                r.metrics.get(*metric).copied()
            });
            // A line that stays at 0 says nothing and hides the others' labels.
            if series.data.iter().any(|&(_, v)| v > 0.0) {
                queue.push(series);
            }
        }
        let share = line(s, s.role.clone(), i, false, &|r| r.throttled_share());
        if !share.data.is_empty() {
            throttled.push(share);
        }
    }
    if cpu.is_empty() && queue.is_empty() {
        return None;
    }
    let vlines: Vec<(f64, String)> = match &data.summary.sweep {
        Some(sweep) => sweep
            .steps
            .iter()
            .map(|s| (s.start_s, format!("{:.0}/s", s.rate_per_s)))
            .collect(),
        None => Vec::new(),
    };
    let shades = super::fault_shades(&data.summary.faults);
    let panel = |title: String, y: &str, fmt: Fmt, series: Vec<Series>| Panel {
        title,
        x: axis("time since start (s)", false, Fmt::Plain),
        y: axis(y, false, fmt),
        series: series.into_iter().chain(shades.iter().cloned()).collect(),
        vlines: vlines.clone(),
        hlines: Vec::new(),
        marks: Vec::new(),
    };
    let mut panels = Vec::new();
    if !cpu.is_empty() {
        panels.push((
            panel(
                format!("Components over time: {}", data.summary.name),
                "CPU (cores)",
                Fmt::Plain,
                cpu,
            ),
            1.0,
        ));
    }
    if !queue.is_empty() {
        panels.push((
            panel(String::new(), "queue, in flight", Fmt::Plain, queue),
            1.0,
        ));
    }
    if !throttled.is_empty() {
        panels.push((
            panel(
                String::new(),
                "CFS periods throttled",
                Fmt::Share,
                throttled,
            ),
            0.7,
        ));
    }
    Some(Figure {
        panels,
        note: if shades.is_empty() {
            "Read from each component's processes (/proc) and its own metrics at the driver's interval boundaries; \
             the same intervals as the latency plot."
                .into()
        } else {
            "Read from /proc and each component's own metrics at the driver's interval boundaries. Shaded: the faults."
                .into()
        },
    })
}
