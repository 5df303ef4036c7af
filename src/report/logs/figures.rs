//! `contend logs`'s plots, as figures: requests over time, the
//! logged-against-upstream scatter with its knee, and the censored fit.
//!
//! Takes a finished [`LogReport`]; hands on the [`Figure`]s it has data
//! for, by file name ([`all`]). Draws nothing itself (`report::plot`
//! renders) and computes no statistic (the knee and the fit arrive in the
//! summary).

use plotters::style::RGBColor;

use super::{KeyCurves, KeyRow, LogReport};
use crate::logs::tally::Ending;
use crate::report::plot::{Axis, Figure, Fmt, Kind, Panel, Series};

const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const ORANGE: RGBColor = RGBColor(230, 120, 0);
const RED: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const GREY: RGBColor = RGBColor(110, 110, 110);

/// Smallest time drawn on a log axis, us.
const FLOOR_US: f64 = 100.0;

/// The figures `report` has data for, by file name.
pub fn all(report: &LogReport) -> Vec<(&'static str, Figure)> {
    let mut out = Vec::new();
    if report.intervals.len() >= 2 {
        out.push(("requests-over-time", requests_over_time(report)));
    }
    if !report.points.is_empty() {
        out.push(("logged-vs-upstream", logged_vs_upstream(report)));
    }
    if !report.curves.is_empty() {
        out.push(("censored-fit", censored_fit(report)));
    }
    out
}

fn axis(label: &str, log: bool, fmt: Fmt, range: Option<(f64, f64)>) -> Axis {
    Axis {
        label: label.into(),
        log,
        fmt,
        range,
    }
}

fn panel(title: &str, x: Axis, y: Axis, series: Vec<Series>) -> Panel {
    Panel {
        title: title.into(),
        x,
        y,
        series,
        vlines: Vec::new(),
        hlines: Vec::new(),
        marks: Vec::new(),
    }
}

fn line(name: &str, color: RGBColor, data: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.into(),
        color,
        data,
        kind: Kind::Line(false),
    }
}

/// Picks a count out of an interval.
type Pick = fn(&super::IntervalRow) -> u64;

/// Rate and status mix per interval, then the mean and longest request time.
fn requests_over_time(report: &LogReport) -> Figure {
    let rows = &report.intervals;
    let per_s = |f: &dyn Fn(&super::IntervalRow) -> u64| -> Vec<(f64, f64)> {
        rows.iter()
            .map(|r| (r.start_s, f(r) as f64 / r.duration_s))
            .collect()
    };
    let mut rates = vec![
        line("all", BLUE, per_s(&|r| r.requests)),
        line("2xx", GREEN, per_s(&|r| r.s2xx)),
    ];
    let optional: [(&str, RGBColor, Pick); 3] = [
        ("4xx", ORANGE, |r| r.s4xx),
        ("5xx", RED, |r| r.s5xx),
        ("client aborts", PURPLE, |r| r.client_aborts),
    ];
    for (name, color, pick) in optional {
        if rows.iter().any(|r| pick(r) > 0) {
            rates.push(line(name, color, per_s(&pick)));
        }
    }
    let x = |label: &str| axis(label, false, Fmt::Plain, None);
    let mut panels = vec![(
        panel(
            "Requests per second, by status class",
            x("seconds from the log's first interval"),
            axis("per second", false, Fmt::Plain, None),
            rates,
        ),
        1.0,
    )];
    if rows.iter().any(|r| r.max_request_ms > 0.0) {
        let ms = |f: fn(&super::IntervalRow) -> f64| -> Vec<(f64, f64)> {
            rows.iter()
                .filter(|r| r.requests > 0)
                .map(|r| (r.start_s, (f(r) * 1000.0).max(FLOOR_US)))
                .collect()
        };
        panels.push((
            panel(
                "Request time per interval",
                x("seconds from the log's first interval"),
                axis("request time", true, Fmt::Micros, None),
                vec![
                    line("mean", BLUE, ms(|r| r.mean_request_ms)),
                    line("max", RED, ms(|r| r.max_request_ms)),
                ],
            ),
            0.8,
        ));
    }
    Figure {
        panels,
        note: format!(
            "Per {}s interval of the log's time ({}).",
            report.summary.interval_s.unwrap_or(0.0),
            report.summary.first.as_deref().unwrap_or("-")
        ),
    }
}

/// Per sampled request: what the gateway charged against the upstream
/// time it logged, coloured by how the request ended; for each cut
/// request, the work the fit expects (its cut plus its key's fitted mean)
/// above it; and each key's knee, where its aborts stand in a column.
fn logged_vs_upstream(report: &LogReport) -> Figure {
    let mean_of = |key: &str| -> Option<f64> {
        report
            .summary
            .keys
            .iter()
            .find(|k| k.group.name == key)
            .and_then(|k: &KeyRow| k.estimate.fit.mean_s)
    };
    let mut by_ending: [Vec<(f64, f64)>; 3] = Default::default();
    let mut expected = Vec::new();
    for p in &report.points {
        let point = (p.charged_us.max(FLOOR_US), p.upstream_us.max(FLOOR_US));
        match p.ending {
            Ending::Completed => by_ending[0].push(point),
            Ending::ClientAbort | Ending::GatewayTimeout => {
                by_ending[if p.ending == Ending::ClientAbort {
                    1
                } else {
                    2
                }]
                .push(point);
                if let Some(mean_s) = mean_of(&p.key) {
                    expected.push((point.0, point.1 + mean_s * 1e6));
                }
            }
            Ending::NoUpstream => {}
        }
    }
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for (x, y) in by_ending.iter().flatten().chain(&expected) {
        lo = lo.min(*x).min(*y);
        hi = hi.max(*x).max(*y);
    }
    if !lo.is_finite() {
        (lo, hi) = (1e3, 1e6);
    }
    let range = (lo / 1.5, hi * 1.5);
    let mut series = Vec::new();
    for ((name, color), data) in [
        ("completed", BLUE),
        ("client abort (cut)", RED),
        ("gateway timeout (cut)", ORANGE),
    ]
    .into_iter()
    .zip(by_ending)
    {
        if !data.is_empty() {
            series.push(Series {
                name: name.into(),
                color,
                data,
                kind: Kind::Dots,
            });
        }
    }
    if !expected.is_empty() {
        series.push(Series {
            name: "cut: expected work (fit)".into(),
            color: PURPLE,
            data: expected,
            kind: Kind::Dots,
        });
    }
    series.push(Series {
        name: "charged = upstream".into(),
        color: GREY,
        data: vec![(range.0, range.0), (range.1, range.1)],
        kind: Kind::Dashed,
    });
    let mut p = panel(
        "Charged by the gateway against upstream time, per request",
        axis(
            "charged by the gateway (logged), per request",
            true,
            Fmt::Micros,
            Some(range),
        ),
        axis("upstream time, per request", true, Fmt::Micros, Some(range)),
        series,
    );
    p.vlines = knee_lines(&report.summary.keys, range);
    Figure {
        panels: vec![(p, 1.0)],
        note: format!(
            "A sample of {} requests. A cut request's true work is longer than logged; the purple points are its cut plus its key's fitted mean work (exponential, censored fit).",
            report.points.len()
        ),
    }
}

/// A vertical line at each key's knee within `range`, labelled.
fn knee_lines(keys: &[KeyRow], range: (f64, f64)) -> Vec<(f64, String)> {
    let mut lines: Vec<(f64, String)> = Vec::new();
    for k in keys {
        for knee in [
            &k.aborts.client_timeout_knee,
            &k.aborts.gateway_timeout_knee,
        ]
        .into_iter()
        .flatten()
        {
            let at_us = knee.at_s * 1e6;
            if at_us < range.0 || at_us > range.1 {
                continue;
            }
            let what = knee.kind.replace('_', " ");
            match lines
                .iter_mut()
                .find(|(x, _)| (x - at_us).abs() / at_us < 0.05)
            {
                Some((_, label)) => label.push_str(&format!(", {}", k.group.name)),
                None => lines.push((
                    at_us,
                    format!(
                        "{what} {} ({}",
                        crate::report::plot::fmt_us(at_us),
                        k.group.name
                    ),
                )),
            }
        }
    }
    for (_, label) in &mut lines {
        label.push(')');
    }
    lines
}

/// Per key with cut requests (up to four): the survival of its upstream
/// time as the log shows it (every line taken as ended where logged: it
/// falls to 0 at the knee), the Kaplan-Meier estimate (cut requests as
/// still working), and the fitted exponential, which goes on past the cut.
fn censored_fit(report: &LogReport) -> Figure {
    let panels = report
        .curves
        .iter()
        .filter_map(|c| {
            let key = report.summary.keys.iter().find(|k| k.group.name == c.key)?;
            Some((fit_panel(c, key), 1.0))
        })
        .collect();
    Figure {
        panels,
        note: "Share of requests whose upstream work lasts longer than t. The log's own times stop at the cut; the fit (dashed) is what the estimate assumes past it.".into(),
    }
}

fn fit_panel(curves: &KeyCurves, key: &KeyRow) -> Panel {
    let steps = |curve: &[(f64, f64)]| -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(curve.len() * 2);
        let mut last = 1.0;
        for &(t, s) in curve {
            let x = (t * 1e6).max(FLOOR_US);
            out.push((x, last));
            out.push((x, s));
            last = s;
        }
        out
    };
    let logged = steps(&curves.logged);
    let km = steps(&curves.kaplan_meier);
    let longest = logged
        .iter()
        .chain(&km)
        .map(|p| p.0)
        .fold(FLOOR_US, f64::max);
    let mut series = vec![
        line("logged time", GREY, logged),
        line("Kaplan-Meier", BLUE, km),
    ];
    let mut end = longest * 2.0;
    if let Some(mean_s) = key.estimate.fit.mean_s {
        let mean_us = mean_s * 1e6;
        end = end.max(mean_us * 4.0);
        let points = 80;
        let data = (0..=points)
            .map(|i| {
                let t = FLOOR_US * (end / FLOOR_US).powf(i as f64 / points as f64);
                (t, (-t / mean_us).exp())
            })
            .collect();
        series.push(Series {
            name: format!(
                "exponential fit, mean {}",
                crate::report::plot::fmt_us(mean_us)
            ),
            color: PURPLE,
            data,
            kind: Kind::Dashed,
        });
    }
    let mut p = panel(
        &format!(
            "{}: {} completed, {} cut; under-count {}",
            key.group.name,
            key.estimate.fit.completed,
            key.estimate.fit.cut,
            key.estimate
                .under_count
                .map_or_else(|| "not estimable".to_string(), |f| format!("{f:.2}x"))
        ),
        axis("upstream time t", true, Fmt::Micros, Some((FLOOR_US, end))),
        axis(
            "share still working at t",
            false,
            Fmt::Share,
            Some((0.0, 1.05)),
        ),
        series,
    );
    p.vlines = knee_lines(std::slice::from_ref(key), (FLOOR_US, end));
    p
}
