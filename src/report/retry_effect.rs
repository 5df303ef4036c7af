//! How the retry policy moved a sweep's or a find-limit's answer
//! (`--retries compare`): the answers with and without retries side by
//! side on the console, in `retry-effect.md`, `retry-effect.csv` and
//! `report.html`.
//!
//! Takes a finished summary whose `sweep` or `find_limit` holds the result
//! without retries under `without_retries`; every figure is one the
//! experiment measured (a side that did not finish says so: interrupted,
//! not confirmed, or not run). `retry-effect.csv` holds a find-limit's
//! answer per class, or a sweep's steps by rate (P99 and goodput with and
//! without). Measures and decides nothing; the sweep's second line on its
//! plots is `plot::sweep`'s.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::console::fmt_us;
use super::summary::Summary;
use crate::error::Error;
use crate::experiment::find_limit::{ClassResult, FindLimitResult};
use crate::experiment::sweep::{KneePoint, SweepResult};

/// The CSV of the comparison.
pub const CSV: &str = "retry-effect.csv";
/// Its Markdown table.
pub const MD: &str = "retry-effect.md";

/// One measure with and without retries (a line of the table).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What the figures are of: a class (`as configured`), or `sweep`.
    pub scope: String,
    /// The measure (`limit`, `P99 knee`, ...).
    pub measure: String,
    /// With the retry policy.
    pub with: String,
    /// Without it.
    pub without: String,
}

/// The comparison's rows, or `None` when the summary compared no retries.
pub fn rows(s: &Summary) -> Option<Vec<Row>> {
    if let Some(f) = s.find_limit.as_ref().filter(|f| f.retries_compared) {
        return Some(find_limit_rows(f));
    }
    s.sweep
        .as_ref()
        .filter(|r| r.retries_compared)
        .map(sweep_rows)
}

/// What a side that never ran reads.
const NOT_RUN: &str = "not run (stopped before it began)";

fn find_limit_rows(f: &FindLimitResult) -> Vec<Row> {
    let mut rows = Vec::new();
    for c in &f.classes {
        let other = f
            .without_retries
            .as_ref()
            .and_then(|w| w.classes.iter().find(|o| o.class == c.class));
        let mut row = |measure: &str, get: &dyn Fn(&ClassResult) -> String| {
            rows.push(Row {
                scope: c.class.clone(),
                measure: measure.to_string(),
                with: get(c),
                without: other.map_or_else(|| NOT_RUN.to_string(), get),
            });
        };
        row("search", &class_status);
        row("limit", &|c| {
            c.limit
                .map_or_else(|| "none held".to_string(), |l| l.to_string())
        });
        row("recommendation", &recommendation);
        row("first break", &|c| {
            c.first_break
                .map_or_else(|| "none broke".to_string(), |l| l.to_string())
        });
        row("goodput at the limit", &|c| {
            c.goodput_at_limit_per_s
                .map_or_else(|| "-".to_string(), |g| format!("{g:.1}/s"))
        });
        row("P99 2xx at the limit", &|c| {
            c.p99_at_limit_us.map_or_else(|| "-".to_string(), fmt_us)
        });
        row("goodput with no limit", &|c| {
            c.goodput_no_limit_per_s
                .map_or_else(|| "-".to_string(), |g| format!("{g:.1}/s"))
        });
        row("504 share with no limit", &|c| {
            c.share_504_no_limit
                .map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0))
        });
    }
    rows
}

/// Whether a class's search finished.
fn class_status(c: &ClassResult) -> String {
    match (c.interrupted, c.confirmed) {
        (true, _) => "INTERRUPTED (unconfirmed)".to_string(),
        (false, true) => "confirmed".to_string(),
        (false, false) => "not confirmed (out of steps)".to_string(),
    }
}

/// The limit to set, as the find-limit's own answer says it.
fn recommendation(c: &ClassResult) -> String {
    match c.limit {
        Some(l) if c.confirmed && !c.interrupted => format!("set the limit to {l}"),
        Some(l) => format!("at most {l} (unconfirmed)"),
        None if c.first_break.is_some() => "no limit holds".to_string(),
        None => "no answer".to_string(),
    }
}

fn sweep_rows(r: &SweepResult) -> Vec<Row> {
    let other = r.without_retries.as_deref();
    let mut rows = Vec::new();
    let mut row = |measure: &str, get: &dyn Fn(&SweepResult) -> String| {
        rows.push(Row {
            scope: "sweep".to_string(),
            measure: measure.to_string(),
            with: get(r),
            without: other.map_or_else(|| NOT_RUN.to_string(), get),
        });
    };
    row("sweep", &|r| {
        let status = if r.interrupted {
            "INTERRUPTED"
        } else {
            "complete"
        };
        format!("{status}, {} steps", r.steps.len())
    });
    row("P99 knee", &|r| knee(r.knee.as_ref(), true));
    row("throughput knee", &|r| {
        knee(r.throughput_knee.as_ref(), false)
    });
    if r.slo_us.is_some() {
        row("max rate within the SLO", &|r| match (
            r.max_rate_within_slo_per_s,
            r.slo_held_up_to_per_s,
        ) {
            (Some(x), _) => format!("{x:.0}/s"),
            (None, Some(held)) => format!("unknown (held up to {held:.0}/s)"),
            (None, None) => "none".to_string(),
        });
    }
    row("peak goodput", &|r| {
        r.steps
            .iter()
            .max_by(|a, b| a.goodput_per_s.total_cmp(&b.goodput_per_s))
            .map_or_else(
                || "-".to_string(),
                |s| format!("{:.1}/s at {:.0}/s", s.goodput_per_s, s.rate_per_s),
            )
    });
    row("USL fit", &|r| match &r.usl {
        Some(f) => format!("sigma {:.4}, kappa {:.6}", f.sigma, f.kappa),
        None if r.concurrency_steps.is_empty() => {
            "none (no closed-loop steps: a sweep with a retry policy has none)".to_string()
        }
        None => "none (needs 3 closed-loop steps)".to_string(),
    });
    rows
}

fn knee(k: Option<&KneePoint>, latency: bool) -> String {
    match k {
        Some(k) if latency => format!(
            "{:.0}/s (P99 {})",
            k.offered_per_s,
            fmt_us(k.value.round() as u64)
        ),
        Some(k) => format!("{:.0}/s ({:.0}/s achieved)", k.offered_per_s, k.value),
        None => "none found".to_string(),
    }
}

/// Writes the comparison for the console: a header and one line per row.
pub fn write_console(w: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    writeln!(w, "with and without retries:")?;
    writeln!(
        w,
        "  {:<14} {:<26} {:<34} without retries",
        "", "measure", "with retries"
    )?;
    for r in rows {
        writeln!(
            w,
            "  {:<14} {:<26} {:<34} {}",
            r.scope, r.measure, r.with, r.without
        )?;
    }
    Ok(())
}

/// Writes `retry-effect.md` and `retry-effect.csv` when the summary
/// compared retries; nothing otherwise.
pub fn write_files(dir: &Path, s: &Summary) -> (Vec<PathBuf>, Vec<Error>) {
    let Some(rows) = rows(s) else {
        return (Vec::new(), Vec::new());
    };
    let md = |w: &mut dyn Write| {
        writeln!(w, "# {}: with and without retries\n", s.name)?;
        writeln!(w, "| scope | measure | with retries | without retries |")?;
        writeln!(w, "| --- | --- | --- | --- |")?;
        for r in &rows {
            writeln!(
                w,
                "| {} | {} | {} | {} |",
                r.scope, r.measure, r.with, r.without
            )?;
        }
        Ok(())
    };
    let csv_body = |w: &mut dyn Write| {
        let mut csv = csv::Writer::from_writer(w);
        if let Some(f) = &s.find_limit {
            for c in &f.classes {
                let other = f
                    .without_retries
                    .as_ref()
                    .and_then(|o| o.classes.iter().find(|o| o.class == c.class));
                csv.serialize(ClassCsvRow::of(c, other))?;
            }
        } else if let Some(r) = &s.sweep {
            for row in sweep_csv_rows(r) {
                csv.serialize(row)?;
            }
        }
        csv.flush()
    };
    let mut written = super::Written::default();
    written.file(dir.join(MD), &md);
    written.file(dir.join(CSV), &csv_body);
    written.into_parts()
}

/// A find-limit class in `retry-effect.csv`.
#[derive(serde::Serialize)]
struct ClassCsvRow<'a> {
    class: &'a str,
    limit_with_retries: Option<u32>,
    limit_without_retries: Option<u32>,
    first_break_with_retries: Option<u32>,
    first_break_without_retries: Option<u32>,
    goodput_at_limit_per_s_with_retries: Option<f64>,
    goodput_at_limit_per_s_without_retries: Option<f64>,
    p99_at_limit_us_with_retries: Option<u64>,
    p99_at_limit_us_without_retries: Option<u64>,
    /// `confirmed`, `not confirmed ...`, `INTERRUPTED ...`, or `not run ...`.
    search_with_retries: String,
    search_without_retries: String,
}

impl<'a> ClassCsvRow<'a> {
    fn of(c: &'a ClassResult, o: Option<&ClassResult>) -> ClassCsvRow<'a> {
        ClassCsvRow {
            class: &c.class,
            limit_with_retries: c.limit,
            limit_without_retries: o.and_then(|o| o.limit),
            first_break_with_retries: c.first_break,
            first_break_without_retries: o.and_then(|o| o.first_break),
            goodput_at_limit_per_s_with_retries: c.goodput_at_limit_per_s,
            goodput_at_limit_per_s_without_retries: o.and_then(|o| o.goodput_at_limit_per_s),
            p99_at_limit_us_with_retries: c.p99_at_limit_us,
            p99_at_limit_us_without_retries: o.and_then(|o| o.p99_at_limit_us),
            search_with_retries: class_status(c),
            search_without_retries: o.map_or_else(|| NOT_RUN.to_string(), class_status),
        }
    }
}

/// A sweep's rate in `retry-effect.csv`: each side's step at that rate,
/// empty where that side measured none.
#[derive(Debug, serde::Serialize)]
struct SweepCsvRow {
    rate_per_s: f64,
    p99_us_with_retries: Option<u64>,
    p99_us_without_retries: Option<u64>,
    goodput_per_s_with_retries: Option<f64>,
    goodput_per_s_without_retries: Option<f64>,
    achieved_per_s_with_retries: Option<f64>,
    achieved_per_s_without_retries: Option<f64>,
    share_2xx_with_retries: Option<f64>,
    share_2xx_without_retries: Option<f64>,
}

/// Every rate either side measured, in order, each side's step beside.
fn sweep_csv_rows(r: &SweepResult) -> Vec<SweepCsvRow> {
    let empty = Vec::new();
    let other = r.without_retries.as_ref().map_or(&empty, |o| &o.steps);
    let mut rates: Vec<f64> = r.steps.iter().chain(other).map(|s| s.rate_per_s).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let at = |steps: &[crate::experiment::sweep::StepRow], rate: f64| {
        steps.iter().find(|s| s.rate_per_s == rate).cloned()
    };
    rates
        .into_iter()
        .map(|rate| {
            let (a, b) = (at(&r.steps, rate), at(other, rate));
            SweepCsvRow {
                rate_per_s: rate,
                p99_us_with_retries: a.as_ref().map(|s| s.p99_us),
                p99_us_without_retries: b.as_ref().map(|s| s.p99_us),
                goodput_per_s_with_retries: a.as_ref().map(|s| s.goodput_per_s),
                goodput_per_s_without_retries: b.as_ref().map(|s| s.goodput_per_s),
                achieved_per_s_with_retries: a.as_ref().map(|s| s.achieved_per_s),
                achieved_per_s_without_retries: b.as_ref().map(|s| s.achieved_per_s),
                share_2xx_with_retries: a.as_ref().map(|s| s.share_2xx),
                share_2xx_without_retries: b.as_ref().map(|s| s.share_2xx),
            }
        })
        .collect()
}

/// The comparison as an HTML section of `report.html`.
pub fn html(h: &mut String, s: &Summary) {
    use std::fmt::Write as _;
    let Some(rows) = rows(s) else {
        return;
    };
    let esc = super::html::esc;
    let _ = writeln!(
        h,
        "<h2>With and without retries</h2>\n<p>The experiment ran twice: with the scenario's retry policy, and again without it (the second run's report is in <a href=\"without-retries/report.html\">without-retries/</a>).</p>\n<table><tr><th>scope</th><th>measure</th><th>with retries</th><th>without retries</th></tr>"
    );
    for r in &rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.scope),
            esc(&r.measure),
            esc(&r.with),
            esc(&r.without)
        );
    }
    let _ = writeln!(h, "</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::sweep::{StepRow, analyse};
    use crate::scenario::SweepSpec;

    fn step(rate: f64, p99_us: u64, goodput: f64) -> StepRow {
        let mut s: StepRow = serde_json::from_value(serde_json::json!({
            "step": 1, "rate_per_s": rate, "start_s": 0.0, "offered_per_s": rate,
            "achieved_per_s": rate, "goodput_per_s": goodput, "arrivals": 10,
            "share_2xx": 1.0, "share_429": 0.0, "share_503": 0.0, "share_504": 0.0,
            "share_other_status": 0.0, "share_timeout": 0.0, "share_error": 0.0,
            "p50_us": 1, "p90_us": 1, "p99_us": p99_us, "p999_us": 1, "max_us": 1,
            "slo_percentile_us": p99_us, "lag_p99_us": 0, "upstream_cpu_cores": null,
            "past_saturation": false
        }))
        .unwrap();
        s.p99_us = p99_us;
        s
    }

    #[test]
    fn a_sweep_side_that_never_ran_reads_not_run_and_its_csv_cells_are_empty() {
        let spec = SweepSpec::default();
        let mut with = analyse(
            &spec,
            vec![step(10.0, 1000, 10.0), step(20.0, 9000, 12.0)],
            None,
            Vec::new(),
            false,
        );
        with.retries_compared = true;
        let rows = sweep_rows(&with);
        assert!(rows.iter().all(|r| r.without == NOT_RUN), "{rows:?}");
        let csv = sweep_csv_rows(&with);
        assert_eq!(csv.len(), 2);
        assert_eq!(csv[1].p99_us_with_retries, Some(9000));
        assert_eq!(csv[1].p99_us_without_retries, None);
    }

    #[test]
    fn sweep_rates_of_both_sides_line_up_by_rate() {
        let spec = SweepSpec::default();
        let without = analyse(
            &spec,
            vec![
                step(10.0, 800, 10.0),
                step(20.0, 900, 20.0),
                step(30.0, 5000, 25.0),
            ],
            None,
            Vec::new(),
            false,
        );
        let mut with = analyse(
            &spec,
            vec![step(10.0, 1000, 10.0), step(20.0, 9000, 12.0)],
            Some("past saturation".into()),
            Vec::new(),
            false,
        );
        with.retries_compared = true;
        with.without_retries = Some(Box::new(without));
        let csv = sweep_csv_rows(&with);
        let rates: Vec<f64> = csv.iter().map(|r| r.rate_per_s).collect();
        assert_eq!(rates, [10.0, 20.0, 30.0]);
        assert_eq!(csv[1].goodput_per_s_with_retries, Some(12.0));
        assert_eq!(csv[1].goodput_per_s_without_retries, Some(20.0));
        assert_eq!(csv[2].p99_us_with_retries, None);
        let peak = sweep_rows(&with)
            .into_iter()
            .find(|r| r.measure == "peak goodput")
            .unwrap();
        assert_eq!(peak.with, "12.0/s at 20/s");
        assert_eq!(peak.without, "25.0/s at 30/s");
    }
}
