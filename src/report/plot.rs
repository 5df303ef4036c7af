//! Plots, as SVG and PNG, from a finished run's data.
//!
//! Takes a [`ReportData`] (built from a run just finished, or read back from
//! a saved report folder) and writes, beside the other report files:
//! `latency-over-time` and `percentile-spectrum` for every run, and for a
//! sweep also `latency-vs-load`, `throughput-vs-load` and (with
//! closed-loop steps) `usl`, and for a find-limit `limit` (drawn by
//! [`super::find_limit::figure`]). Every line is labelled at its end, in its own
//! colour, so no legend needs hunting. Text uses a font embedded from
//! `assets/`, so nothing depends on the system's fonts. Nothing here
//! measures or analyses: knees and fits arrive in the data.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::summary::Summary;
use super::{IntervalCsvRow, read_intervals_csv};
use crate::error::{Error, Result};
use crate::experiment::sweep::SweepResult;

/// Size of every plot, px (the SVG's viewport too).
const SIZE: (u32, u32) = (960, 560);
/// Font family name the embedded font is registered under.
const FONT: &str = "sans-serif";
/// Plot text font: DejaVu Sans cut to Latin-1 (see assets/DejaVuSans-LICENSE.txt).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

/// What the plots and the HTML report draw: plain data, no sockets.
#[derive(Debug, Clone)]
pub struct ReportData {
    /// The run's summary (with the sweep's rows and analyses, for a sweep).
    pub summary: Summary,
    /// Latency percentiles per interval.
    pub intervals: Vec<IntervalCsvRow>,
    /// The percentile distribution: (quantile in [0, 1), latency us).
    pub spectrum: Vec<(f64, f64)>,
}

impl ReportData {
    /// From a run just finished: its summary, its intervals and its latency histogram.
    pub fn of(
        summary: &Summary,
        intervals: &[crate::record::IntervalRow],
        latency_us: &hdrhistogram::Histogram<u64>,
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
        }
    }

    /// Reads a saved report folder back: `summary.json`, `intervals.csv`
    /// and `latency.hgrm` (the last two may be missing: their plots are
    /// then left out).
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
        Ok(ReportData {
            summary,
            intervals,
            spectrum,
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
            if let Err(e) = render(&path, &chart) {
                errors.push(Error::io(&path, std::io::Error::other(e)));
                ok = false;
            }
        }
        if ok {
            drawn.push(name.to_string());
        }
    }
    (drawn, errors)
}

/// The plots `data` has data for, by file name.
pub fn charts(data: &ReportData) -> Vec<(&'static str, Figure)> {
    let mut out = Vec::new();
    if let Some(find_limit) = &data.summary.find_limit {
        out.push(("limit", super::find_limit::figure(find_limit)));
    }
    if let Some(sweep) = &data.summary.sweep {
        if sweep.steps.len() >= 2 {
            out.push(("latency-vs-load", latency_vs_load(sweep)));
            out.push(("throughput-vs-load", throughput_vs_load(sweep)));
        }
        if !sweep.concurrency_steps.is_empty() {
            out.push(("usl", usl(sweep)));
        }
    }
    if data.intervals.iter().any(|r| r.sent > 0 || r.max_us > 0) {
        out.push(("latency-over-time", latency_over_time(data)));
    }
    if data.spectrum.len() >= 2 {
        out.push(("percentile-spectrum", percentile_spectrum(data)));
    }
    out
}

// ---------------------------------------------------------------------------
// The figures, as data: what to draw, not how.
// ---------------------------------------------------------------------------

/// How an axis shows its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fmt {
    /// Microseconds shown as ms or s.
    Micros,
    /// A plain number (rates, concurrency, seconds).
    Plain,
    /// A share 0..1 shown as a percentage.
    Share,
    /// 1/(1-p) shown as the percentile p.
    Spectrum,
}

/// One axis.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Its label.
    pub label: String,
    /// Logarithmic.
    pub log: bool,
    /// Value format of the ticks.
    pub fmt: Fmt,
    /// Fixed range; `None` fits the data.
    pub range: Option<(f64, f64)>,
}

/// How a series is drawn.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A line through the points, with dots at them when true.
    Line(bool),
    /// A dashed line.
    Dashed,
    /// Dots only.
    Dots,
    /// A filled band from these lower points up to the series' points.
    Band(Vec<(f64, f64)>),
}

/// One labelled series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Label at its end.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// Points (x, y) in data units.
    pub data: Vec<(f64, f64)>,
    /// How to draw it.
    pub kind: Kind,
}

/// One chart panel.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the panel (empty: none).
    pub title: String,
    /// The x axis.
    pub x: Axis,
    /// The y axis.
    pub y: Axis,
    /// Series, drawn in order.
    pub series: Vec<Series>,
    /// Vertical marker lines: (x, label).
    pub vlines: Vec<(f64, String)>,
    /// Horizontal marker lines: (y, label).
    pub hlines: Vec<(f64, String)>,
    /// Labelled points: (x, y, label). The label goes below and to the
    /// right, or above where the point tops the data (a peak).
    pub marks: Vec<(f64, f64, String)>,
}

/// A figure: one or more panels stacked, with relative heights.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Panels top to bottom, with their share of the height.
    pub panels: Vec<(Panel, f64)>,
    /// A line of small print at the bottom (empty: none).
    pub note: String,
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const ORANGE: RGBColor = RGBColor(230, 120, 0);
const RED: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const GREY: RGBColor = RGBColor(110, 110, 110);
const BROWN: RGBColor = RGBColor(140, 86, 75);
const PINK: RGBColor = RGBColor(227, 119, 194);

fn axis(label: &str, log: bool, fmt: Fmt) -> Axis {
    Axis {
        label: label.to_string(),
        log,
        fmt,
        range: None,
    }
}

fn latency_vs_load(sweep: &SweepResult) -> Figure {
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
                series: vec![
                    line("P50", BLUE, |r| r.p50_us),
                    line("P90", GREEN, |r| r.p90_us),
                    line("P99", ORANGE, |r| r.p99_us),
                    line("P99.9", RED, |r| r.p999_us),
                ],
                vlines,
                hlines,
                marks: Vec::new(),
            },
            1.0,
        )],
        note,
    }
}

fn throughput_vs_load(sweep: &SweepResult) -> Figure {
    let s = &sweep.steps;
    let max_x = s.iter().map(|r| r.rate_per_s).fold(0.0, f64::max);
    let mut vlines = Vec::new();
    if let Some(k) = &sweep.throughput_knee {
        vlines.push((k.offered_per_s, format!("knee {:.0}/s", k.offered_per_s)));
    }
    let top = Panel {
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

fn usl(sweep: &SweepResult) -> Figure {
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

fn latency_over_time(data: &ReportData) -> Figure {
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
    } else {
        String::new()
    };
    Figure {
        panels: vec![(
            Panel {
                title: format!("Latency over time: {}", data.summary.name),
                x: axis("time since start (s)", false, Fmt::Plain),
                y: axis("latency per interval (log scale)", true, Fmt::Micros),
                series: vec![
                    line("P50", BLUE, |r| r.p50_us),
                    line("P90", GREEN, |r| r.p90_us),
                    line("P99", ORANGE, |r| r.p99_us),
                    line("P99.9", RED, |r| r.p999_us),
                    line("max", GREY, |r| r.max_us),
                ],
                vlines,
                hlines: Vec::new(),
                marks: Vec::new(),
            },
            1.0,
        )],
        note,
    }
}

fn percentile_spectrum(data: &ReportData) -> Figure {
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

// ---------------------------------------------------------------------------
// Drawing.
// ---------------------------------------------------------------------------

/// Renders `figure` to `path`: SVG or PNG by its extension.
pub fn render(path: &Path, figure: &Figure) -> std::result::Result<(), String> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is a constant of the build; a bad one fails every plot below.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
    if path.extension().is_some_and(|e| e == "svg") {
        let root = SVGBackend::new(path, SIZE).into_drawing_area();
        draw(&root, figure)?;
        root.present().map_err(|e| e.to_string())
    } else {
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        draw(&root, figure)?;
        root.present().map_err(|e| e.to_string())
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (width, height) = root.dim_in_pixel();
    let note_px = if figure.note.is_empty() { 0 } else { 26 };
    let (body, foot) = root.split_vertically(height - note_px);
    if !figure.note.is_empty() {
        foot.draw(&Text::new(
            figure.note.clone(),
            (14, 4),
            (FONT, 14).into_font().color(&GREY),
        ))
        .map_err(|e| e.to_string())?;
    }
    let total: f64 = figure.panels.iter().map(|p| p.1).sum();
    let mut rest = body;
    for (i, (panel, share)) in figure.panels.iter().enumerate() {
        let area = if i + 1 == figure.panels.len() {
            rest.clone()
        } else {
            let h = ((f64::from(height - note_px)) * share / total) as u32;
            let (top, bottom) = rest.split_vertically(h);
            rest = bottom;
            top
        };
        draw_panel(root, &area, panel, width)?;
    }
    Ok(())
}

/// A linear axis over `lo..hi` whose grid lines and labels sit exactly at
/// `ticks` (plotters' own choice of ticks cannot follow a log10 axis).
#[derive(Debug, Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The coordinate of one axis: data (log10 when logarithmic) with key points at nice ticks.
fn coord(axis: &Axis, values: &[f64]) -> (Ticked, f64, f64) {
    let usable: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && (!axis.log || *v > 0.0))
        .collect();
    let (mut lo, mut hi) = axis.range.unwrap_or_else(|| {
        let lo = usable.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = usable.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            (lo, hi)
        } else {
            (1.0, 10.0)
        }
    });
    if axis.log {
        lo = lo.max(1e-9);
        hi = hi.max(lo * 1.0001);
        // Whole decades around the data, or 1-2-5 steps when it spans little.
        let (dlo, dhi) = (lo.log10().floor(), hi.log10().ceil());
        let mut ticks = Vec::new();
        let decades = dhi - dlo;
        let steps: &[f64] = if decades <= 2.0 && axis.fmt != Fmt::Spectrum {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut d = dlo;
        while d <= dhi {
            for m in steps {
                ticks.push((m * 10f64.powf(d)).log10());
            }
            d += 1.0;
        }
        let (a, b) = if axis.fmt == Fmt::Spectrum {
            (0.0, dhi)
        } else {
            (dlo, dhi)
        };
        ticks.retain(|v| *v >= a - 1e-9 && *v <= b + 1e-9);
        let b = b.max(a + 0.5);
        (
            Ticked {
                lo: a,
                hi: b,
                ticks,
            },
            a,
            b,
        )
    } else {
        if axis.range.is_none() {
            lo = lo.min(0.0);
            hi *= 1.08;
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        let step = nice_step((hi - lo) / 8.0);
        let mut ticks = Vec::new();
        let mut v = (lo / step).ceil() * step;
        while v <= hi + 1e-9 {
            ticks.push(v);
            v += step;
        }
        (Ticked { lo, hi, ticks }, lo, hi)
    }
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn tick_label(fmt: Fmt, log: bool, v: f64) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    match fmt {
        Fmt::Micros => fmt_us(v),
        Fmt::Plain => {
            if v.abs() >= 10_000.0 {
                format!("{:.0}k", v / 1000.0)
            } else if v.fract().abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        }
        Fmt::Share => format!("{:.0}%", v * 100.0),
        Fmt::Spectrum => format!("{}%", fmt_pct(100.0 * (1.0 - 1.0 / v))),
    }
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

fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    width: u32,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let xs: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.data.iter().map(|d| d.0))
        .chain(p.vlines.iter().map(|v| v.0))
        .chain(p.marks.iter().map(|m| m.0))
        .collect();
    let ys: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.data.iter().map(|d| d.1))
        .chain(p.hlines.iter().map(|h| h.0))
        .chain(p.marks.iter().map(|m| m.1))
        .collect();
    let (xc, x_lo, x_hi) = coord(&p.x, &xs);
    let (yc, y_lo, y_hi) = coord(&p.y, &ys);
    let tx = |v: f64| if p.x.log { v.max(1e-9).log10() } else { v };
    let ty = |v: f64| if p.y.log { v.max(1e-9).log10() } else { v };
    let inside = |x: f64, y: f64| {
        x >= x_lo - 1e-9 && x <= x_hi + 1e-9 && y >= y_lo - 1e-9 && y <= y_hi + 1e-9
    };
    // Room on the right for the labels at the lines' ends (about 8 px a
    // character at the labels' size).
    let longest = p
        .series
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let label_px = (16 + 8 * longest as i32).clamp(118, 220);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 20))
        .margin(10)
        .margin_right(label_px)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(xc, yc)
        .map_err(e)?;
    let (xf, xl, yf, yl) = (p.x.fmt, p.x.log, p.y.fmt, p.y.log);
    chart
        .configure_mesh()
        .x_desc(p.x.label.clone())
        .y_desc(p.y.label.clone())
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .x_label_formatter(&move |v| tick_label(xf, xl, *v))
        .y_label_formatter(&move |v| tick_label(yf, yl, *v))
        .draw()
        .map_err(e)?;
    let small = (FONT, 13).into_font();
    for (x, label) in &p.vlines {
        let x = tx(*x);
        if x < x_lo || x > x_hi {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, y_lo), (x, y_hi)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(e)?;
        let (px, py) = chart.backend_coord(&(x, y_hi));
        root.draw(&Text::new(
            label.clone(),
            (px + 4, py + 4),
            small.color(&BLACK),
        ))
        .map_err(e)?;
    }
    for (y, label) in &p.hlines {
        let y = ty(*y);
        if y < y_lo || y > y_hi {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_lo, y), (x_hi, y)],
                6,
                4,
                RED.mix(0.8).stroke_width(1),
            ))
            .map_err(e)?;
        let (px, py) = chart.backend_coord(&(x_lo, y));
        root.draw(&Text::new(
            label.clone(),
            (px + 6, py - 16),
            small.color(&RED),
        ))
        .map_err(e)?;
    }
    let mut end_labels: Vec<(i32, i32, String, RGBColor)> = Vec::new();
    for s in &p.series {
        let pts: Vec<(f64, f64)> = s
            .data
            .iter()
            .filter(|(x, y)| {
                x.is_finite() && y.is_finite() && (!p.x.log || *x > 0.0) && (!p.y.log || *y > 0.0)
            })
            .map(|&(x, y)| (tx(x), ty(y)))
            .filter(|&(x, y)| inside(x, y))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let style = s.color.stroke_width(2);
        match &s.kind {
            Kind::Line(dots) => {
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))
                    .map_err(e)?;
                if *dots {
                    chart
                        .draw_series(pts.iter().map(|&c| Circle::new(c, 3, s.color.filled())))
                        .map_err(e)?;
                }
            }
            Kind::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(
                        pts.clone(),
                        8,
                        5,
                        s.color.stroke_width(1),
                    ))
                    .map_err(e)?;
            }
            Kind::Dots => {
                chart
                    .draw_series(pts.iter().map(|&c| Circle::new(c, 5, s.color.filled())))
                    .map_err(e)?;
            }
            Kind::Band(lower) => {
                let mut poly = pts.clone();
                poly.extend(lower.iter().rev().map(|&(x, y)| (tx(x), ty(y))));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        poly,
                        s.color.mix(0.55).filled(),
                    )))
                    .map_err(e)?;
                chart
                    .draw_series(LineSeries::new(pts.clone(), s.color.stroke_width(1)))
                    .map_err(e)?;
            }
        }
        // A band is labelled at its middle height, a line at its end.
        let anchor = match &s.kind {
            Kind::Band(lower) => {
                let (x, top) = *pts.last().unwrap_or(&(0.0, 0.0));
                let bottom = lower.last().map_or(0.0, |l| ty(l.1));
                (x, (top + bottom) / 2.0)
            }
            _ => *pts.last().unwrap_or(&(0.0, 0.0)),
        };
        let (px, py) = chart.backend_coord(&anchor);
        end_labels.push((px, py, s.name.clone(), s.color));
    }
    // Labels at the right edge, nudged apart so none overlaps another.
    end_labels.sort_by_key(|l| l.1);
    let gap = 16;
    for i in 1..end_labels.len() {
        if end_labels[i].1 < end_labels[i - 1].1 + gap {
            end_labels[i].1 = end_labels[i - 1].1 + gap;
        }
    }
    let label_x = width as i32 - label_px + 8;
    let font = (FONT, 15).into_font();
    for (px, py, name, color) in &end_labels {
        let _ = px;
        root.draw(&Text::new(
            name.clone(),
            (label_x, py - 8),
            font.color(color),
        ))
        .map_err(e)?;
    }
    // The highest point of the data, in plot units: a mark at it (a peak)
    // has nothing above it, so its label goes there.
    let top_y = p
        .series
        .iter()
        .flat_map(|s| s.data.iter().map(|d| ty(d.1)))
        .fold(f64::NEG_INFINITY, f64::max);
    for (x, y, label) in &p.marks {
        let above = ty(*y) >= top_y - (y_hi - y_lo) * 0.02;
        let c = (tx(*x), ty(*y));
        if !inside(c.0, c.1) {
            continue;
        }
        chart
            .draw_series(std::iter::once(Circle::new(c, 6, RED.stroke_width(2))))
            .map_err(e)?;
        let (px, py) = chart.backend_coord(&c);
        let w = (label.len() as i32) * 8;
        // Keep the label inside the plot: to the left of the mark near the
        // right edge, above it near the bottom.
        let lx = if px + 10 + w > label_x {
            px - 10 - w
        } else {
            px + 10
        };
        let bottom_px = chart.backend_coord(&(x_lo, y_lo)).1;
        let ly = if above || py + 26 > bottom_px {
            py - 24
        } else {
            py + 8
        };
        root.draw(&Text::new(label.clone(), (lx, ly), small.color(&RED)))
            .map_err(e)?;
    }
    Ok(())
}

/// Paths of a plot's two files in `dir`.
pub fn files(dir: &Path, name: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{name}.svg")),
        dir.join(format!("{name}.png")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_lines_parse_into_quantiles_in_us() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    \x20     1.000 0.000000000000          1           1.00\n\
                    \x20     2.500 0.990000000000         99         100.00\n\
                    \x20     3.000 1.000000000000        100\n\
                    #[Mean    =        1.000, StdDeviation   =        0.000]\n";
        assert_eq!(parse_hgrm(text), vec![(0.0, 1000.0), (0.99, 2500.0)]);
    }

    #[test]
    fn tick_labels_read_as_people_write_them() {
        assert_eq!(tick_label(Fmt::Spectrum, true, 2.0), "99%");
        assert_eq!(tick_label(Fmt::Spectrum, true, 3.0), "99.9%");
        assert_eq!(tick_label(Fmt::Spectrum, true, 0.0), "0%");
        assert_eq!(tick_label(Fmt::Micros, true, 3.0), "1.0ms");
        assert_eq!(tick_label(Fmt::Micros, false, 250_000.0), "250ms");
        assert_eq!(tick_label(Fmt::Share, false, 0.5), "50%");
        assert_eq!(nice_step(130.0), 200.0);
    }
}
