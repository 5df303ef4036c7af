//! A sweep's figures: `latency-vs-load`, `throughput-vs-load` and `usl`.
//!
//! Takes a finished [`SweepResult`] (steps, knees, the USL fit) and hands
//! on [`Figure`]s; the knees and the fit arrive computed, nothing here
//! analyses.

use super::figure::{
    Axis, BLUE, BROWN, Figure, Fmt, GREEN, GREY, Kind, ORANGE, PINK, PURPLE, Panel, RED, Series,
    axis,
};
use super::{fmt_pct, fmt_us};
use crate::experiment::sweep::SweepResult;
use plotters::style::RGBColor;

/// P50 to P99.9 against the offered rate, with the knee and the SLO.
pub(super) fn latency_vs_load(sweep: &SweepResult) -> Figure {
    let s = &sweep.steps;
    let line = |name: &str, color, f: fn(&crate::experiment::sweep::StepRow) -> u64| Series {
        name: name.to_string(),
        color,
        data: s.iter().map(|r| (r.rate_per_s, f(r) as f64)).collect(),
        kind: Kind::Line(true),
    };
    let mut vlines = Vec::new();
    if let Some(k) = &sweep.knee {
        vlines.push((k.offered_per_s, format!("knee {:.0}/s", k.offered_per_s)));
    }
    let mut hlines = Vec::new();
    if let Some(slo) = sweep.slo_us {
        hlines.push((
            slo as f64,
            format!(
                "SLO P{} {}",
                fmt_pct(sweep.slo_percentile),
                fmt_us(slo as f64)
            ),
        ));
    }
    let mut series = vec![
        line("P50", BLUE, |r| r.p50_us),
        line("P90", GREEN, |r| r.p90_us),
        line("P99", ORANGE, |r| r.p99_us),
        line("P99.9", RED, |r| r.p999_us),
    ];
    // `--retries compare`: the sweep without retries beside, its P99 only,
    // so the curve the policy moved reads against the one it came from.
    if let Some(without) = sweep.without_retries.as_deref() {
        series[2].name = "P99 with retries".into();
        series.push(Series {
            name: "P99 without retries".into(),
            color: BROWN,
            data: without
                .steps
                .iter()
                .map(|r| (r.rate_per_s, r.p99_us as f64))
                .collect(),
            kind: Kind::Line(true),
        });
    }
    let note = match sweep.max_rate_within_slo_per_s {
        Some(r) => format!(
            "Latency from each request's intended send time. Max rate within the SLO: {r:.0}/s."
        ),
        None => "Latency from each request's intended send time.".to_string(),
    };
    Figure {
        panels: vec![(
            Panel {
                title: "Latency against offered load".into(),
                x: axis("offered load (requests/s)", false, Fmt::Plain),
                y: axis("latency (log scale)", true, Fmt::Micros),
                series,
                vlines,
                hlines,
                marks: Vec::new(),
            },
            1.0,
        )],
        note,
    }
}

/// Throughput and goodput against the offered rate (the ideal dashed), and
/// below it the shares of arrivals without a 2xx, stacked.
pub(super) fn throughput_vs_load(sweep: &SweepResult) -> Figure {
    let s = &sweep.steps;
    let without = sweep.without_retries.as_deref();
    let max_x = s
        .iter()
        .chain(without.map_or(&[][..], |w| &w.steps))
        .map(|r| r.rate_per_s)
        .fold(0.0, f64::max);
    let mut vlines = Vec::new();
    if let Some(k) = &sweep.throughput_knee {
        vlines.push((k.offered_per_s, format!("knee {:.0}/s", k.offered_per_s)));
    }
    let mut top = Panel {
        title: "Throughput against offered load".into(),
        x: Axis {
            range: Some((0.0, max_x * 1.08)),
            ..axis("offered load (requests/s)", false, Fmt::Plain)
        },
        y: axis("responses/s", false, Fmt::Plain),
        series: vec![
            Series {
                name: "ideal".into(),
                color: GREY,
                data: vec![(0.0, 0.0), (max_x, max_x)],
                kind: Kind::Dashed,
            },
            Series {
                name: "throughput".into(),
                color: BLUE,
                data: s.iter().map(|r| (r.rate_per_s, r.achieved_per_s)).collect(),
                kind: Kind::Line(true),
            },
            Series {
                name: "goodput (2xx)".into(),
                color: GREEN,
                data: s.iter().map(|r| (r.rate_per_s, r.goodput_per_s)).collect(),
                kind: Kind::Line(true),
            },
        ],
        vlines,
        hlines: Vec::new(),
        marks: Vec::new(),
    };
    if let Some(without) = without {
        top.series[2].name = "goodput with retries".into();
        top.series.push(Series {
            name: "goodput without retries".into(),
            color: BROWN,
            data: without
                .steps
                .iter()
                .map(|r| (r.rate_per_s, r.goodput_per_s))
                .collect(),
            kind: Kind::Line(true),
        });
    }
    // Shares stacked from the bottom: each band from the sum below it.
    type Share = fn(&crate::experiment::sweep::StepRow) -> f64;
    let layers: [(&str, RGBColor, Share); 6] = [
        ("429", ORANGE, |r| r.share_429),
        ("503", RED, |r| r.share_503),
        ("504", PURPLE, |r| r.share_504),
        ("timeout", BROWN, |r| r.share_timeout),
        ("error", PINK, |r| r.share_error),
        ("other", GREY, |r| r.share_other_status),
    ];
    let mut below: Vec<f64> = vec![0.0; s.len()];
    let mut series = Vec::new();
    for (name, color, f) in layers {
        if s.iter().all(|r| f(r) == 0.0) {
            continue;
        }
        let lower: Vec<(f64, f64)> = s
            .iter()
            .zip(&below)
            .map(|(r, b)| (r.rate_per_s, *b))
            .collect();
        for (b, r) in below.iter_mut().zip(s) {
            *b += f(r);
        }
        let upper: Vec<(f64, f64)> = s
            .iter()
            .zip(&below)
            .map(|(r, b)| (r.rate_per_s, *b))
            .collect();
        series.push(Series {
            name: name.into(),
            color,
            data: upper,
            kind: Kind::Band(lower),
        });
    }
    let mut bottom = Panel {
        title: "Arrivals without a 2xx (stacked shares)".into(),
        // The same x range as the panel above, so steps line up.
        x: Axis {
            range: Some((0.0, max_x * 1.08)),
            ..axis("offered load (requests/s)", false, Fmt::Plain)
        },
        y: Axis {
            range: Some((0.0, 1.0)),
            ..axis("share", false, Fmt::Share)
        },
        series,
        vlines: Vec::new(),
        hlines: Vec::new(),
        marks: Vec::new(),
    };
    if bottom.series.is_empty() {
        bottom.title = "Arrivals without a 2xx: none at any step".into();
    }
    Figure {
        panels: vec![(top, 0.64), (bottom, 0.36)],
        note: String::new(),
    }
}

/// The closed-loop steps' throughput against concurrency, with the USL fit
/// and its peak.
pub(super) fn usl(sweep: &SweepResult) -> Figure {
    let c = &sweep.concurrency_steps;
    let mut series = vec![Series {
        name: "measured".into(),
        color: BLUE,
        data: c
            .iter()
            .map(|r| (f64::from(r.concurrency), r.throughput_per_s))
            .collect(),
        kind: Kind::Dots,
    }];
    let mut marks = Vec::new();
    let mut note = "Closed loop: each client sends its next request when the last one is answered."
        .to_string();
    if let Some(fit) = &sweep.usl {
        let max_n = c
            .iter()
            .map(|r| f64::from(r.concurrency))
            .fold(1.0, f64::max);
        let end = fit
            .peak_concurrency
            .map_or(max_n, |p| max_n.max(p * 1.2).min(max_n * 4.0));
        let data = (0..=200)
            .map(|i| 1.0 + (end - 1.0) * f64::from(i) / 200.0)
            .map(|n| (n, fit.throughput_per_s(n)))
            .collect();
        series.push(Series {
            name: "USL fit".into(),
            color: ORANGE,
            data,
            kind: Kind::Line(false),
        });
        if let (Some(p), Some(x)) = (fit.peak_concurrency, fit.peak_throughput_per_s) {
            marks.push((p, x, format!("peak N={p:.1}, {x:.0}/s")));
        }
        note = format!(
            "{note} Fit: lambda {:.1}/s, sigma {:.4}, kappa {:.6}, R² {:.3}.",
            fit.lambda, fit.sigma, fit.kappa, fit.r_squared
        );
    }
    Figure {
        panels: vec![(
            Panel {
                title: "Throughput against concurrency (Universal Scalability Law)".into(),
                x: axis("concurrency (requests in flight)", false, Fmt::Plain),
                y: axis("responses/s", false, Fmt::Plain),
                series,
                vlines: Vec::new(),
                hlines: Vec::new(),
                marks,
            },
            1.0,
        )],
        note,
    }
}
