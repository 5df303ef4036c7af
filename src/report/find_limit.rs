//! The find-limit experiment's own outputs: the step table and the answer
//! per hardware class on the console, `steps.csv`, `max-connections.csv`
//! and the figure of `limit.svg`/`.png` (goodput and 504 share against the
//! limit, the found limit and the model's marked), which [`super::plot`] draws.
//!
//! Takes a finished [`FindLimitResult`]; measures and decides nothing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

use super::console::fmt_us;
use super::plot::{Axis, Figure, Fmt, Kind, Panel, Series};
use crate::error::Error;
use crate::experiment::find_limit::{ClassResult, FindLimitResult, StepKind, StepRow};

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Writes the step table, then per class the answer beside the model.
pub fn write_table(w: &mut dyn Write, r: &FindLimitResult) -> io::Result<()> {
    writeln!(
        w,
        "find-limit: {:.0}/s offered (first class), gateway timeout {}, {} per request, steps {}s + {}s warm-up, break past {:.1}% of 504s (or of 2xx later than the timeout)",
        r.rate_per_s,
        fmt_us((r.timeout_s * 1e6).round() as u64),
        r.cpu_per_request_s
            .map_or("unknown CPU".to_string(), |c| format!(
                "{} CPU",
                fmt_us((c * 1e6).round() as u64)
            )),
        r.step_duration_s,
        r.warmup_s,
        r.max_504_share * 100.0
    )?;
    writeln!(
        w,
        "{:<14} {:>4} {:<8} {:>5} {:>9} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9}  verdict",
        "class",
        "step",
        "kind",
        "limit",
        "goodput/s",
        "2xx",
        "503",
        "504",
        "tmout",
        "P50 2xx",
        "P99 2xx",
        "wasted",
        "up CPU/rq",
        "throttled"
    )?;
    let pct = |s: f64| format!("{:.1}%", s * 100.0);
    for s in &r.steps {
        writeln!(
            w,
            "{:<14} {:>4} {:<8} {:>5} {:>9.1} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9}  {}",
            s.class,
            s.step,
            s.kind.as_str(),
            s.limit.map_or("none".to_string(), |l| l.to_string()),
            s.goodput_per_s,
            pct(s.share_2xx),
            pct(s.share_503),
            pct(s.share_504),
            pct(s.share_client_timeout),
            fmt_us(s.p50_2xx_us),
            fmt_us(s.p99_2xx_us),
            s.wasted_cpu_s
                .map_or("-".to_string(), |c| format!("{c:.2}s")),
            s.upstream_cpu_per_request_us
                .map_or("-".to_string(), |c| fmt_us(c.round() as u64)),
            s.throttled_share.map_or("-".to_string(), pct),
            if s.broke {
                format!("BREAKS: {}", s.reason)
            } else {
                "ok".to_string()
            }
        )?;
    }
    for c in &r.classes {
        write_class(w, c)?;
    }
    writeln!(w, "took {:.1}s", r.elapsed_s)
}

fn write_class(w: &mut dyn Write, c: &ClassResult) -> io::Result<()> {
    let limit = match c.limit {
        Some(l) => format!(
            "set the limit to {l} (goodput {:.1}/s, P99 {})",
            c.goodput_at_limit_per_s.unwrap_or(0.0),
            c.p99_at_limit_us.map_or("-".to_string(), fmt_us)
        ),
        None if c.first_break.is_none() => "no answer: no limit was measured".to_string(),
        None => "every candidate broke: no limit keeps responses inside the timeout".to_string(),
    };
    let first_break = c
        .first_break
        .map_or("none broke".to_string(), |b| format!("breaks at {b}"));
    writeln!(
        w,
        "{} ({}): {limit}; {first_break}{}; model L* = {} on {} cores",
        c.class,
        c.placement,
        match (c.interrupted, c.confirmed) {
            (true, _) => " (INTERRUPTED, not confirmed)",
            (false, true) => "",
            (false, false) => " (not confirmed)",
        },
        c.model_limit.map_or("-".to_string(), |m| m.to_string()),
        c.cores
    )?;
    if let Some(share) = c.throttled_share_at_limit {
        writeln!(
            w,
            "  at the limit the CPU quota throttled the upstream in {:.1}% of its CFS periods",
            share * 100.0
        )?;
    }
    if let (Some(g), Some(s)) = (c.goodput_no_limit_per_s, c.share_504_no_limit) {
        writeln!(
            w,
            "  with no limit: goodput {g:.1}/s, {:.1}% 504",
            s * 100.0
        )?;
    }
    writeln!(w, "  {}", c.note)
}

/// Writes one CSV file's rows.
type RowsFn<'a> = dyn Fn(&mut csv::Writer<&mut dyn std::io::Write>) -> Result<(), csv::Error> + 'a;

/// Writes `steps.csv` and `max-connections.csv` into `dir` (the plot is
/// drawn with the others, by [`super::plot::charts`]).
/// Returns the files written and the errors of those that failed.
pub fn write_files(dir: &Path, r: &FindLimitResult) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = super::Written::default();
    let mut put = |name: &str, f: &RowsFn| {
        written.file(dir.join(name), &|w| {
            let mut csv = csv::Writer::from_writer(w);
            f(&mut csv).map_err(std::io::Error::from)?;
            csv.flush()
        });
    };
    put("steps.csv", &|csv| {
        r.steps.iter().try_for_each(|row| csv.serialize(row))
    });
    put("max-connections.csv", &|csv| {
        r.classes.iter().try_for_each(|c| {
            csv.serialize(MaxConnectionsRow {
                class: &c.class,
                measured_limit: c.limit,
                model_limit: c.model_limit,
                goodput_at_limit_per_s: c.goodput_at_limit_per_s,
                p99_at_limit_us: c.p99_at_limit_us,
                goodput_no_limit_per_s: c.goodput_no_limit_per_s,
                placement: &c.placement,
                cores: c.cores,
                throttled_share_at_limit: c.throttled_share_at_limit,
            })
        })
    });
    written.into_parts()
}

/// A row of `max-connections.csv`.
#[derive(serde::Serialize)]
struct MaxConnectionsRow<'a> {
    class: &'a str,
    measured_limit: Option<u32>,
    model_limit: Option<u32>,
    goodput_at_limit_per_s: Option<f64>,
    p99_at_limit_us: Option<u64>,
    goodput_no_limit_per_s: Option<f64>,
    placement: &'a str,
    cores: f64,
    throttled_share_at_limit: Option<f64>,
}

/// Goodput (top) and 504 share (bottom) against the limit, per class: the
/// mean over a limit's runs as a line with a dot at each limit; the found
/// and the model's limits as vertical lines; the no-limit goodput as a
/// horizontal one.
pub fn figure(r: &FindLimitResult) -> Figure {
    let lines = class_lines(r);
    let unlabelled: Vec<(f64, String)> =
        lines.vlines.iter().map(|v| (v.0, String::new())).collect();
    let x = |label: &str| Axis {
        label: label.into(),
        log: false,
        fmt: Fmt::Plain,
        range: None,
    };
    let note = format!(
        "Gateway timeout {}, offered {}; a limit breaks past {:.1}% of 504s or of late 2xx. Vertical lines: the limit found and the PS model's L*.",
        fmt_us((r.timeout_s * 1e6).round() as u64),
        offered(r),
        r.max_504_share * 100.0
    );
    Figure {
        panels: vec![
            (
                Panel {
                    title: "Goodput (2xx within the gateway timeout) against the concurrency limit"
                        .into(),
                    x: x("concurrency limit"),
                    y: Axis {
                        label: "2xx/s".into(),
                        log: false,
                        fmt: Fmt::Plain,
                        range: None,
                    },
                    series: lines.goodput,
                    vlines: lines.vlines,
                    hlines: no_limit_line(&lines.baselines),
                    marks: Vec::new(),
                },
                0.6,
            ),
            (
                Panel {
                    title: "504 share against the concurrency limit".into(),
                    x: x("concurrency limit"),
                    y: Axis {
                        label: "504 share".into(),
                        log: false,
                        fmt: Fmt::Share,
                        range: Some((0.0, 1.0)),
                    },
                    series: lines.share_504,
                    vlines: unlabelled,
                    hlines: vec![(r.max_504_share, "bound".into())],
                    marks: Vec::new(),
                },
                0.4,
            ),
        ],
        note,
    }
}

/// What the classes draw on the limit figure, in class order.
struct ClassLines {
    /// Mean goodput per limit, a series per class.
    goodput: Vec<Series>,
    /// Mean 504 share per limit, a series per class.
    share_504: Vec<Series>,
    /// The found and the model's limits, labelled.
    vlines: Vec<(f64, String)>,
    /// Each class's goodput with no limit, with its label.
    baselines: Vec<(f64, String)>,
}

/// The series and marker lines of every class, one colour per class; with
/// one class the series are named for what they show, with more for the class.
fn class_lines(r: &FindLimitResult) -> ClassLines {
    let mut lines = ClassLines {
        goodput: Vec::new(),
        share_504: Vec::new(),
        vlines: Vec::new(),
        baselines: Vec::new(),
    };
    let many = r.classes.len() > 1;
    for (i, c) in r.classes.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let rows: Vec<&StepRow> = r
            .steps
            .iter()
            .filter(|s| s.class == c.class && s.kind != StepKind::Baseline)
            .collect();
        let (good_name, share_name) = if many {
            (c.class.clone(), c.class.clone())
        } else {
            ("goodput".to_string(), "504 share".to_string())
        };
        lines.goodput.push(Series {
            name: good_name,
            color,
            data: means_by_limit(&rows, |s| s.goodput_per_s),
            kind: Kind::Line(true),
        });
        lines.share_504.push(Series {
            name: share_name,
            color,
            data: means_by_limit(&rows, |s| s.share_504),
            kind: Kind::Line(true),
        });
        lines.vlines.extend(limit_lines(c, many));
        if let Some(g) = c.goodput_no_limit_per_s {
            lines.baselines.push((
                g,
                if many {
                    format!("{} {g:.1}/s", c.class)
                } else {
                    format!("{g:.1}/s")
                },
            ));
        }
    }
    lines
}

/// Per limit among `rows` (ascending), the mean of `f` over the rows run
/// at that limit.
fn means_by_limit(rows: &[&StepRow], f: fn(&StepRow) -> f64) -> Vec<(f64, f64)> {
    let mut limits: Vec<u32> = rows.iter().filter_map(|s| s.limit).collect();
    limits.sort_unstable();
    limits.dedup();
    limits
        .iter()
        .map(|&l| {
            let at: Vec<f64> = rows
                .iter()
                .filter(|s| s.limit == Some(l))
                .map(|s| f(s))
                .collect();
            (f64::from(l), at.iter().sum::<f64>() / at.len() as f64)
        })
        .collect()
}

/// The vertical lines of one class: its found limit and the model's, one
/// line when they agree; with `many` classes each label names its class.
fn limit_lines(c: &ClassResult, many: bool) -> Vec<(f64, String)> {
    let of = if many {
        format!(" ({})", c.class)
    } else {
        String::new()
    };
    match (c.limit, c.model_limit) {
        (Some(l), Some(m)) if l == m => vec![(f64::from(l), format!("found = model {l}{of}"))],
        // Labels sit right of their line: both on the left one, so
        // that neighbouring lines do not print over each other.
        (Some(l), Some(m)) => {
            let text = format!("found {l}, model {m}{of}");
            let (left, right) = (l.min(m), l.max(m));
            vec![(f64::from(left), text), (f64::from(right), String::new())]
        }
        (Some(l), None) => vec![(f64::from(l), format!("found {l}{of}"))],
        (None, Some(m)) => vec![(f64::from(m), format!("model {m}{of}"))],
        (None, None) => Vec::new(),
    }
}

/// One line for the no-limit goodput (the classes' values in its label):
/// they sit near zero together, where separate labels would overlap.
fn no_limit_line(baselines: &[(f64, String)]) -> Vec<(f64, String)> {
    match baselines.iter().map(|b| b.0).reduce(f64::max) {
        Some(top_g) => vec![(
            top_g,
            format!(
                "no limit: {}",
                baselines
                    .iter()
                    .map(|b| b.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )],
        None => Vec::new(),
    }
}

/// The offered rate: the run's, or with more than one class each class's
/// (the rate of its first step).
fn offered(r: &FindLimitResult) -> String {
    if r.classes.len() > 1 {
        let rate = |c: &ClassResult| {
            r.steps
                .iter()
                .find(|s| s.class == c.class)
                .map_or(0.0, |s| s.rate_per_s)
        };
        r.classes
            .iter()
            .map(|c| format!("{} {:.0}/s", c.class, rate(c)))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        format!("{:.0}/s", r.rate_per_s)
    }
}
