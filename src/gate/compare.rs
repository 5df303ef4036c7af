//! `contend compare`: a current run (or runs) against a baseline, per
//! metric, without crying wolf on noise.
//!
//! Takes report folders (summary.json and intervals.csv, read by
//! [`read_run`]) and a [`Tolerance`]; hands on a [`Comparison`]: per
//! metric the baseline, current, change, allowed change and verdict.
//!
//! - One run on either side: the medians are single values, so the verdict
//!   is the tolerance alone, and the evidence says it was one run.
//! - The latency tolerance is the larger of a relative change (10%) and a
//!   slack measured from the baseline's own noise ([`latency_slack`]): 3 x
//!   the median absolute deviation of its runs' values, or with one
//!   baseline run of that run's per-interval values, never under a floor
//!   for rounding. `--latency-slack` overrides it. Each latency row says
//!   which it was and how much.
//! - A run cut short (summary.json `"interrupted": true`) is compared like
//!   any other, since its numbers are what it measured, but the comparison
//!   names it in a warning ([`Comparison::warnings`]) on the table and in
//!   every JUnit case: it covers only what ran before the signal, so it is
//!   no fair baseline. It does not change the verdict or the exit code.
//! - Two or more runs on both sides: each run's per-interval values (p99 of
//!   each interval, and so on) are pooled per side and a one-sided
//!   Mann-Whitney U test asks whether the current side tends to be worse. A
//!   regression needs both: the test significant at `alpha` and the change
//!   of the medians past the tolerance. Intervals of one run are not fully
//!   independent (a slow second makes its neighbours slow), which makes the
//!   test somewhat eager; the tolerance is what keeps it from firing on a
//!   statistically real but practically irrelevant shift.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use contend_units::fmt_us;
use serde_json::Value;

use super::stats::{mann_whitney_greater, median, median_abs_deviation};
use crate::error::{Error, Result};

/// How much worse is allowed before a change is a regression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Allowed relative latency increase (0.10 = +10%).
    pub latency_rel: f64,
    /// Latency increase always allowed, us, when given
    /// (`--latency-slack`); `None` measures it from the baseline's noise per
    /// metric, see [`latency_slack`].
    pub latency_slack_us: Option<f64>,
    /// Allowed error-rate increase, in percentage points (0.5 = +0.5 pp).
    pub error_pp: f64,
    /// Allowed relative drop of achieved rate and goodput (0.05 = -5%).
    pub rate_rel: f64,
    /// Significance level of the rank test with repeated runs.
    pub alpha: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            latency_rel: 0.10,
            latency_slack_us: None,
            error_pp: 0.5,
            rate_rel: 0.05,
            alpha: 0.05,
        }
    }
}

/// How many median absolute deviations of the baseline's spread a latency
/// may rise by as noise. 3 MAD is about 2 standard deviations of normal
/// data; with repeated runs the rank test and the relative tolerance still
/// apply on top.
pub const NOISE_MADS: f64 = 3.0;

/// The least slack, us, however steady the baseline: latencies are whole
/// microseconds, so identical samples (MAD 0) would otherwise make a 1 us
/// rounding step a regression.
pub const SLACK_FLOOR_US: f64 = 10.0;

/// The least slack as a share of the baseline: the latency histograms keep
/// 3 significant digits (a bucket is up to 0.1% of its value), so two
/// readings of one latency can differ by a bucket or two.
pub const SLACK_FLOOR_SHARE: f64 = 0.002;

/// Fewer baseline intervals than this (one run shorter than a few report
/// intervals) do not measure noise: the slack is then
/// [`FALLBACK_SLACK_US`], and the row says why.
pub const MIN_NOISE_INTERVALS: usize = 5;

/// The slack, us, when one baseline run has too few intervals to measure
/// its noise: the former fixed default, erring towards passing when there
/// is nothing to go on.
pub const FALLBACK_SLACK_US: f64 = 1000.0;

/// What the baseline's spread is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpreadOf {
    /// The whole-run values of two or more baseline runs: the noise of the
    /// very value compared (the median over runs), run-to-run drift included.
    Runs,
    /// The per-interval values of the one baseline run. They wander more
    /// than the whole run's value does, so the slack leans towards passing:
    /// one run is weak evidence either way.
    Intervals,
}

impl SpreadOf {
    fn counted(self, count: usize) -> String {
        let noun = match self {
            SpreadOf::Runs => "run",
            SpreadOf::Intervals => "interval",
        };
        format!(
            "{count} baseline {noun}{}",
            if count == 1 { "" } else { "s" }
        )
    }

    /// The fewest values a spread is measured from.
    fn minimum(self) -> usize {
        match self {
            SpreadOf::Runs => 2,
            SpreadOf::Intervals => MIN_NOISE_INTERVALS,
        }
    }
}

/// The latency increase always allowed for one metric, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slack {
    /// The slack, us.
    pub us: f64,
    /// Where it came from.
    pub source: SlackSource,
}

/// Where a [`Slack`] came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlackSource {
    /// `--latency-slack`.
    Given,
    /// [`NOISE_MADS`] x the baseline's median absolute deviation.
    Noise {
        /// The median absolute deviation, us.
        mad_us: f64,
        /// Over what.
        of: SpreadOf,
        /// How many values.
        count: usize,
    },
    /// The floor ([`SLACK_FLOOR_US`] or [`SLACK_FLOOR_SHARE`] of the
    /// baseline), above the measured noise.
    Floor {
        /// The median absolute deviation, us.
        mad_us: f64,
        /// Over what.
        of: SpreadOf,
        /// How many values.
        count: usize,
    },
    /// Too few values to measure a spread: [`FALLBACK_SLACK_US`].
    TooFew {
        /// Of what.
        of: SpreadOf,
        /// How many there were.
        count: usize,
    },
}

/// The slack of one latency metric: `given` (us) when set, else
/// [`NOISE_MADS`] x the median absolute deviation of the baseline's
/// `values` of that metric (us; whole-run values or one run's per-interval
/// values, as `of` says), at least the floor: [`SLACK_FLOOR_US`] or
/// [`SLACK_FLOOR_SHARE`] of `baseline_us`, whichever is larger.
pub fn latency_slack(values: &[f64], of: SpreadOf, baseline_us: f64, given: Option<f64>) -> Slack {
    if let Some(us) = given {
        return Slack {
            us,
            source: SlackSource::Given,
        };
    }
    let count = values.len();
    let mad_us = match median_abs_deviation(values) {
        Some(mad) if count >= of.minimum() => mad,
        _ => {
            return Slack {
                us: FALLBACK_SLACK_US,
                source: SlackSource::TooFew { of, count },
            };
        }
    };
    let noise_us = NOISE_MADS * mad_us;
    let floor_us = SLACK_FLOOR_US.max(SLACK_FLOOR_SHARE * baseline_us);
    if noise_us >= floor_us {
        Slack {
            us: noise_us,
            source: SlackSource::Noise { mad_us, of, count },
        }
    } else {
        Slack {
            us: floor_us,
            source: SlackSource::Floor { mad_us, of, count },
        }
    }
}

impl Slack {
    /// What the slack is and where it came from, for the evidence column.
    pub fn describe(&self) -> String {
        let us = |v: f64| fmt_us(v.round().max(0.0) as u64);
        match self.source {
            SlackSource::Given => format!("slack +{} from --latency-slack", us(self.us)),
            SlackSource::Noise { mad_us, of, count } => format!(
                "slack +{}: {NOISE_MADS} x MAD ({}) of {}",
                us(self.us),
                us(mad_us),
                of.counted(count)
            ),
            SlackSource::Floor { mad_us, of, count } => format!(
                "slack +{}: the floor ({NOISE_MADS} x MAD ({}) of {} is less)",
                us(self.us),
                us(mad_us),
                of.counted(count)
            ),
            SlackSource::TooFew { of, count } => format!(
                "slack +{}: {}, too few to measure noise (need {})",
                us(self.us),
                of.counted(count),
                of.minimum()
            ),
        }
    }
}

/// A compared metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Median latency.
    P50,
    /// 99th percentile latency.
    P99,
    /// 99.9th percentile latency.
    P999,
    /// Share of arrivals that were not 2xx.
    ErrorRate,
    /// Requests sent per second.
    AchievedRate,
    /// 2xx responses per second.
    Goodput,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 6] = [
        Metric::P50,
        Metric::P99,
        Metric::P999,
        Metric::ErrorRate,
        Metric::AchievedRate,
        Metric::Goodput,
    ];

    /// The metric's name in tables and JUnit.
    pub fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::ErrorRate => "error_rate",
            Metric::AchievedRate => "achieved_rate_per_s",
            Metric::Goodput => "goodput_per_s",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn is_latency(self) -> bool {
        matches!(self, Metric::P50 | Metric::P99 | Metric::P999)
    }

    /// True when a larger value is worse (latency, errors).
    fn higher_is_worse(self) -> bool {
        !matches!(self, Metric::AchievedRate | Metric::Goodput)
    }

    fn show(self, value: f64) -> String {
        match self {
            _ if self.is_latency() => fmt_us(value.round().max(0.0) as u64),
            Metric::ErrorRate => format!("{:.2}%", value * 100.0),
            _ => format!("{value:.1}/s"),
        }
    }
}

/// What compare reads of one report folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunData {
    /// The folder, for messages.
    pub dir: PathBuf,
    /// The whole run's value per metric (in [`Metric::ALL`] order).
    pub values: [f64; 6],
    /// Per-interval values per metric (full intervals that saw arrivals).
    pub samples: [Vec<f64>; 6],
    /// True when the run was cut short (summary.json `"interrupted"`).
    pub interrupted: bool,
    /// What load it was: summary.json's `name`, the scenario's (`None`
    /// when it has none). The target is left out: a component the harness
    /// starts listens on a new port each run.
    pub load: Option<String>,
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Which metric.
    pub metric: Metric,
    /// Median over the baseline runs.
    pub baseline: f64,
    /// Median over the current runs.
    pub current: f64,
    /// The change, for people (`+12.3% (+1.20ms)`, `+0.30 pp`).
    pub change: String,
    /// The allowed change, for people.
    pub allowed: String,
    /// True when this metric regressed.
    pub regression: bool,
    /// The latency slack (latency metrics only).
    pub slack: Option<Slack>,
    /// Why: the evidence the verdict rests on.
    pub evidence: String,
}

/// The result of `contend compare`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Runs on the baseline side.
    pub baseline_runs: usize,
    /// Runs on the current side.
    pub current_runs: usize,
    /// One row per metric.
    pub rows: Vec<Row>,
    /// Baseline folders whose run was interrupted.
    pub interrupted_baseline: Vec<PathBuf>,
    /// Current folders whose run was interrupted.
    pub interrupted_current: Vec<PathBuf>,
    /// The loads of each side (baseline, current) when they differ:
    /// runs of different scenarios, compared as one.
    pub different_loads: Option<(Vec<String>, Vec<String>)>,
}

impl Comparison {
    /// True when any metric regressed.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.regression)
    }

    /// One warning per side with interrupted runs, naming their folders,
    /// and one when the sides' runs have different names; empty when every
    /// run completed and all have one name.
    pub fn warnings(&self) -> Vec<String> {
        let loads = self.different_loads.iter().map(|(baseline, current)| {
            format!(
                "warning: the two sides' runs have different names (baseline {}; current {}): \
                 if they are different scenarios, the verdict compares unlike loads",
                baseline.join(", "),
                current.join(", ")
            )
        });
        let interrupted = [
            ("baseline", &self.interrupted_baseline),
            ("current", &self.interrupted_current),
        ]
        .into_iter()
        .filter(|(_, dirs)| !dirs.is_empty())
        .map(|(side, dirs)| {
            let many = dirs.len() > 1;
            format!(
                "warning: interrupted {side} run{} (summary.json \"interrupted\": true): {}; \
                 cut short, {} only what ran before the signal: run {} again (the verdict still counts {})",
                if many { "s" } else { "" },
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if many { "they cover" } else { "it covers" },
                if many { "them" } else { "it" },
                if many { "them" } else { "it" },
            )
        });
        loads.chain(interrupted).collect()
    }

    /// What the verdicts rest on, in one sentence.
    pub fn evidence(&self) -> String {
        if self.baseline_runs >= 2 && self.current_runs >= 2 {
            format!(
                "{} baseline runs vs {} current runs: per-interval values compared with a Mann-Whitney U test plus the tolerance",
                self.baseline_runs, self.current_runs
            )
        } else {
            format!(
                "evidence is one run ({} baseline, {} current): tolerance only; use `contend run --repeat N` on both sides for a rank test",
                self.baseline_runs, self.current_runs
            )
        }
    }
}

/// Compares `current` runs with `baseline` runs (each side at least one).
pub fn compare(baseline: &[RunData], current: &[RunData], tol: &Tolerance) -> Comparison {
    let repeated = baseline.len() >= 2 && current.len() >= 2;
    let rows = Metric::ALL
        .iter()
        .map(|&metric| row(metric, baseline, current, tol, repeated))
        .collect();
    let interrupted = |runs: &[RunData]| {
        runs.iter()
            .filter(|r| r.interrupted)
            .map(|r| r.dir.clone())
            .collect()
    };
    let loads = |runs: &[RunData]| {
        let mut loads: Vec<String> = runs.iter().filter_map(|r| r.load.clone()).collect();
        loads.sort();
        loads.dedup();
        loads
    };
    let (baseline_loads, current_loads) = (loads(baseline), loads(current));
    let differ =
        !baseline_loads.is_empty() && !current_loads.is_empty() && baseline_loads != current_loads;
    Comparison {
        baseline_runs: baseline.len(),
        current_runs: current.len(),
        rows,
        interrupted_baseline: interrupted(baseline),
        interrupted_current: interrupted(current),
        different_loads: differ.then_some((baseline_loads, current_loads)),
    }
}

/// One metric's row: the medians of both sides, the change against what
/// is allowed, and the verdict with its evidence.
fn row(
    metric: Metric,
    baseline: &[RunData],
    current: &[RunData],
    tol: &Tolerance,
    repeated: bool,
) -> Row {
    let i = metric.index();
    let side = |runs: &[RunData]| {
        median(&runs.iter().map(|r| r.values[i]).collect::<Vec<_>>()).unwrap_or(0.0)
    };
    let (b, c) = (side(baseline), side(current));
    // How much worse the current side is, in the metric's direction (negative: better).
    let worse_by = if metric.higher_is_worse() {
        c - b
    } else {
        b - c
    };
    let slack = metric.is_latency().then(|| match baseline {
        [one] => latency_slack(
            &one.samples[i],
            SpreadOf::Intervals,
            b,
            tol.latency_slack_us,
        ),
        runs => {
            let values: Vec<f64> = runs.iter().map(|r| r.values[i]).collect();
            latency_slack(&values, SpreadOf::Runs, b, tol.latency_slack_us)
        }
    });
    let (change, allowed_abs, allowed) = allowance(metric, b, c, slack, tol);
    let beyond = worse_by > allowed_abs;
    let (regression, evidence) = if repeated {
        rank_verdict(metric, baseline, current, beyond, tol.alpha)
    } else {
        let within = if beyond {
            "past the tolerance"
        } else {
            "within the tolerance"
        };
        (beyond, format!("one run each; {within}"))
    };
    let evidence = match slack {
        Some(slack) => format!("{evidence}; {}", slack.describe()),
        None => evidence,
    };
    Row {
        metric,
        baseline: b,
        current: c,
        change,
        allowed,
        regression,
        slack,
        evidence,
    }
}

/// The change from `b` to `c` for people, the allowed worsening in the
/// metric's unit, and the allowance for people.
fn allowance(
    metric: Metric,
    b: f64,
    c: f64,
    slack: Option<Slack>,
    tol: &Tolerance,
) -> (String, f64, String) {
    if let Some(slack) = slack {
        let allowed_us = (b * tol.latency_rel).max(slack.us);
        (
            format!(
                "{} ({}{})",
                relative(b, c),
                if c >= b { "+" } else { "-" },
                fmt_us((c - b).abs().round() as u64)
            ),
            allowed_us,
            format!(
                "+{:.0}% (at least +{})",
                tol.latency_rel * 100.0,
                fmt_us(slack.us.round() as u64)
            ),
        )
    } else if metric == Metric::ErrorRate {
        (
            format!("{:+.2} pp", (c - b) * 100.0),
            tol.error_pp / 100.0,
            format!("+{:.2} pp", tol.error_pp),
        )
    } else {
        (
            relative(b, c),
            b * tol.rate_rel,
            format!("-{:.0}%", tol.rate_rel * 100.0),
        )
    }
}

/// With repeated runs on both sides: a regression needs the change past
/// the tolerance (`beyond`) and a one-sided Mann-Whitney U test over the
/// pooled per-interval values below `alpha`.
fn rank_verdict(
    metric: Metric,
    baseline: &[RunData],
    current: &[RunData],
    beyond: bool,
    alpha: f64,
) -> (bool, String) {
    let i = metric.index();
    let pooled = |runs: &[RunData]| -> Vec<f64> {
        runs.iter()
            .flat_map(|r| {
                r.samples[i]
                    .iter()
                    .map(|v| if metric.higher_is_worse() { *v } else { -*v })
            })
            .collect()
    };
    let (bs, cs) = (pooled(baseline), pooled(current));
    match mann_whitney_greater(&bs, &cs) {
        Some(t) if bs.len() >= 3 && cs.len() >= 3 => {
            let significant = t.p_greater < alpha;
            let why = match (beyond, significant) {
                (true, true) => "worse, and past the tolerance",
                (true, false) => "within the noise",
                (false, true) => "worse, but within the tolerance",
                (false, false) => "within the tolerance and the noise",
            };
            (
                beyond && significant,
                format!(
                    "U test p={:.3} ({} vs {} intervals); {why}",
                    t.p_greater,
                    bs.len(),
                    cs.len()
                ),
            )
        }
        _ => (
            beyond,
            format!(
                "too few intervals for a rank test ({} vs {}); tolerance only",
                bs.len(),
                cs.len()
            ),
        ),
    }
}

fn relative(b: f64, c: f64) -> String {
    if b == 0.0 {
        if c == 0.0 {
            "+0.0%".to_string()
        } else {
            "new (baseline 0)".to_string()
        }
    } else {
        format!("{:+.1}%", (c - b) / b * 100.0)
    }
}

/// The comparison as a table, then the evidence and the verdict; warnings
/// of interrupted runs come first, also when `quiet`.
pub fn write_table(w: &mut dyn Write, cmp: &Comparison, quiet: bool) -> io::Result<()> {
    for warning in cmp.warnings() {
        writeln!(w, "{warning}")?;
    }
    if !quiet {
        writeln!(
            w,
            "{:<20} {:>11} {:>11} {:>22} {:>24}  {:<10} evidence",
            "metric", "baseline", "current", "change", "allowed", "verdict"
        )?;
        for r in &cmp.rows {
            writeln!(
                w,
                "{:<20} {:>11} {:>11} {:>22} {:>24}  {:<10} {}",
                r.metric.name(),
                r.metric.show(r.baseline),
                r.metric.show(r.current),
                r.change,
                r.allowed,
                if r.regression { "REGRESSION" } else { "pass" },
                r.evidence
            )?;
        }
        writeln!(w, "{}", cmp.evidence())?;
    } else {
        for r in cmp.rows.iter().filter(|r| r.regression) {
            writeln!(
                w,
                "REGRESSION {}: {} -> {} ({})",
                r.metric.name(),
                r.metric.show(r.baseline),
                r.metric.show(r.current),
                r.change
            )?;
        }
    }
    let failed = cmp.rows.iter().filter(|r| r.regression).count();
    if failed == 0 {
        writeln!(
            w,
            "compare: PASS ({} metrics within the allowed change)",
            cmp.rows.len()
        )
    } else {
        writeln!(
            w,
            "compare: FAIL ({failed} of {} metrics regressed)",
            cmp.rows.len()
        )
    }
}

/// The comparison as JUnit cases; each case's output (and failure) carries
/// the warnings of interrupted runs, since a CI page shows cases one by one.
pub fn junit_cases(cmp: &Comparison) -> Vec<super::junit::Case> {
    let warnings: String = cmp.warnings().iter().map(|w| format!("{w}. ")).collect();
    cmp.rows
        .iter()
        .map(|r| {
            let detail = format!(
                "baseline {}, current {}, change {}, allowed {}; {}",
                r.metric.show(r.baseline),
                r.metric.show(r.current),
                r.change,
                r.allowed,
                r.evidence
            );
            super::junit::Case {
                classname: "contend.compare".to_string(),
                name: r.metric.name().to_string(),
                failure: r.regression.then(|| match warnings.trim_end() {
                    "" => format!("regression: {detail}"),
                    w => format!("regression: {detail}. {w}"),
                }),
                output: format!("{warnings}{detail}. {}", cmp.evidence()),
            }
        })
        .collect()
}

/// Reads a report folder's summary.json and intervals.csv. A folder that is
/// not a report is bad input (exit 2) naming the file.
pub fn read_run(dir: &Path) -> Result<RunData> {
    let bad = |file: &Path, why: String| {
        Error::Usage(format!(
            "{}: {why}; give report folders that `contend run` wrote",
            file.display()
        ))
    };
    if let Some(why) = crate::report::folder::not_one_run(dir) {
        return Err(Error::Usage(format!(
            "{}: {why}; give report folders of one run each (`contend run` writes one)",
            dir.display()
        )));
    }
    let summary_path = dir.join("summary.json");
    let text =
        std::fs::read_to_string(&summary_path).map_err(|e| bad(&summary_path, e.to_string()))?;
    let s: Value =
        serde_json::from_str(&text).map_err(|e| bad(&summary_path, format!("not JSON: {e}")))?;
    let number = |pointer: &str| {
        s.pointer(pointer)
            .and_then(Value::as_f64)
            .ok_or_else(|| bad(&summary_path, format!("no number at {pointer}")))
    };
    let classes = s
        .pointer("/outcomes/classes")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(&summary_path, "no outcomes.classes".to_string()))?;
    let arrivals: f64 = classes.values().filter_map(Value::as_f64).sum();
    let ok = classes.get("2xx").and_then(Value::as_f64).unwrap_or(0.0);
    let duration_s = number("/duration_s")?.max(1e-9);
    let interrupted = s
        .get("interrupted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let load = s
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    let values = [
        number("/latency_us/p50")?,
        number("/latency_us/p99")?,
        number("/latency_us/p999")?,
        if arrivals > 0.0 {
            (arrivals - ok) / arrivals
        } else {
            0.0
        },
        number("/achieved_rate_per_s")?,
        ok / duration_s,
    ];

    let csv_path = dir.join("intervals.csv");
    let rows = crate::report::read_intervals_csv(&csv_path).map_err(|e| bad(&csv_path, e))?;
    // The last interval is often a short drain; it says little on its own.
    let full_s = rows.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    let mut samples: [Vec<f64>; 6] = Default::default();
    for r in rows
        .iter()
        .filter(|r| r.duration_s >= full_s / 2.0 && r.duration_s > 0.0)
    {
        let outcomes = r.outcomes();
        if outcomes == 0 {
            continue;
        }
        let per_interval = [
            r.p50_us as f64,
            r.p99_us as f64,
            r.p999_us as f64,
            (outcomes - r.ok_2xx) as f64 / outcomes as f64,
            r.sent as f64 / r.duration_s,
            r.ok_2xx as f64 / r.duration_s,
        ];
        for (sample, v) in samples.iter_mut().zip(per_interval) {
            sample.push(v);
        }
    }
    Ok(RunData {
        dir: dir.to_path_buf(),
        values,
        samples,
        interrupted,
        load,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic run: latency percentiles scaled from `p99_us`, per-interval
    /// p99s given, everything else steady.
    fn run(p99_us: f64, intervals: &[f64], error_rate: f64, rate: f64) -> RunData {
        let lat = |scale: f64| intervals.iter().map(|v| v * scale).collect::<Vec<_>>();
        RunData {
            dir: PathBuf::from("synthetic"),
            values: [
                p99_us / 4.0,
                p99_us,
                p99_us * 1.5,
                error_rate,
                rate,
                rate * (1.0 - error_rate),
            ],
            samples: [
                lat(0.25),
                lat(1.0),
                lat(1.5),
                vec![error_rate; intervals.len()],
                vec![rate; intervals.len()],
                vec![rate * (1.0 - error_rate); intervals.len()],
            ],
            interrupted: false,
            load: None,
        }
    }

    /// A deterministic wobble: n values around `centre` spread by ±`spread`.
    fn noisy(centre: f64, spread: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let unit = (x >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
                centre + spread * (2.0 * unit - 1.0)
            })
            .collect()
    }

    fn verdicts(cmp: &Comparison) -> Vec<(&'static str, bool)> {
        cmp.rows
            .iter()
            .map(|r| (r.metric.name(), r.regression))
            .collect()
    }

    #[test]
    fn identical_runs_pass() {
        let tol = Tolerance::default();
        let one = run(20_000.0, &noisy(20_000.0, 2_000.0, 20, 1), 0.001, 1000.0);
        let cmp = compare(std::slice::from_ref(&one), std::slice::from_ref(&one), &tol);
        assert!(!cmp.regressed(), "{cmp:#?}");
        assert!(cmp.evidence().contains("evidence is one run"));
        let many = vec![one.clone(), one.clone(), one];
        let cmp = compare(&many, &many, &tol);
        assert!(!cmp.regressed(), "{cmp:#?}");
        assert!(
            cmp.rows.iter().all(|r| r.evidence.starts_with("U test")),
            "{cmp:#?}"
        );
    }

    #[test]
    fn a_clear_regression_fails_with_one_run_and_with_many() {
        let tol = Tolerance::default();
        let base: Vec<RunData> = (0..3)
            .map(|s| run(20_000.0, &noisy(20_000.0, 2_000.0, 20, s), 0.001, 1000.0))
            .collect();
        let slow: Vec<RunData> = (0..3)
            .map(|s| {
                run(
                    40_000.0,
                    &noisy(40_000.0, 2_000.0, 20, 10 + s),
                    0.001,
                    1000.0,
                )
            })
            .collect();
        let cmp = compare(&base[..1], &slow[..1], &tol);
        assert_eq!(
            verdicts(&cmp),
            [
                ("p50", true),
                ("p99", true),
                ("p99.9", true),
                ("error_rate", false),
                ("achieved_rate_per_s", false),
                ("goodput_per_s", false)
            ]
        );
        let cmp = compare(&base, &slow, &tol);
        assert!(
            cmp.rows[1].regression
                && cmp.rows[1]
                    .evidence
                    .contains("worse, and past the tolerance"),
            "{cmp:#?}"
        );
        // Errors up by 2 pp and goodput down: both regress.
        let failing: Vec<RunData> = (0..3)
            .map(|s| {
                run(
                    20_000.0,
                    &noisy(20_000.0, 2_000.0, 20, 20 + s),
                    0.021,
                    1000.0,
                )
            })
            .collect();
        let cmp = compare(&base, &failing, &tol);
        assert_eq!(
            verdicts(&cmp),
            [
                ("p50", false),
                ("p99", false),
                ("p99.9", false),
                ("error_rate", true),
                ("achieved_rate_per_s", false),
                ("goodput_per_s", false)
            ]
        );
        // Rate down by 20%.
        let starved: Vec<RunData> = (0..3)
            .map(|s| {
                run(
                    20_000.0,
                    &noisy(20_000.0, 2_000.0, 20, 30 + s),
                    0.001,
                    800.0,
                )
            })
            .collect();
        let cmp = compare(&base, &starved, &tol);
        assert!(cmp.rows[4].regression && cmp.rows[5].regression, "{cmp:#?}");
    }

    #[test]
    fn noise_within_the_baselines_spread_passes() {
        let tol = Tolerance::default();
        // Per-interval p99s spread ±50% around 20ms on both sides; the
        // current runs' medians land up to 15% higher by chance, past the
        // 10% tolerance, but the rank test sees no consistent shift.
        let base: Vec<RunData> = (0..3)
            .map(|s| run(20_000.0, &noisy(20_000.0, 10_000.0, 20, s), 0.001, 1000.0))
            .collect();
        let cur: Vec<RunData> = (0..3)
            .map(|s| {
                run(
                    23_000.0,
                    &noisy(20_000.0, 10_000.0, 20, 40 + s),
                    0.001,
                    1000.0,
                )
            })
            .collect();
        let cmp = compare(&base, &cur, &tol);
        assert!(!cmp.rows[1].regression, "{cmp:#?}");
        assert!(
            cmp.rows[1].evidence.contains("within the noise"),
            "{cmp:#?}"
        );
        // As single runs the medians differ by the same 15%, but the one
        // baseline run's intervals spread ±50%: the slack (3 MAD of them)
        // covers it.
        let cmp = compare(&base[..1], &cur[..1], &tol);
        assert!(!cmp.rows[1].regression, "{cmp:#?}");
        assert!(
            cmp.rows[1].evidence.contains("of 20 baseline intervals"),
            "{cmp:#?}"
        );
    }

    #[test]
    fn latency_slack_cases() {
        use SlackSource::*;
        use SpreadOf::*;
        let wobbly: Vec<f64> = (0..20).map(|i| 1000.0 + f64::from(i % 5) * 10.0).collect();
        // values, over what, baseline us, --latency-slack us, slack us, source
        type Case<'a> = (&'a [f64], SpreadOf, f64, Option<f64>, f64, SlackSource);
        let cases: &[Case] = &[
            // Given: whatever the noise.
            (&wobbly, Intervals, 1020.0, Some(250.0), 250.0, Given),
            (&wobbly, Intervals, 1020.0, Some(0.0), 0.0, Given),
            // Intervals 1000..1040 by 10: MAD 10us, 3 MAD = 30us.
            (
                &wobbly,
                Intervals,
                1020.0,
                None,
                30.0,
                Noise {
                    mad_us: 10.0,
                    of: Intervals,
                    count: 20,
                },
            ),
            // Runs: their whole-run values' MAD (60us) x 3.
            (
                &[900.0, 960.0, 1100.0],
                Runs,
                960.0,
                None,
                180.0,
                Noise {
                    mad_us: 60.0,
                    of: Runs,
                    count: 3,
                },
            ),
            // Two runs: MAD is half their distance.
            (
                &[800.0, 840.0],
                Runs,
                820.0,
                None,
                60.0,
                Noise {
                    mad_us: 20.0,
                    of: Runs,
                    count: 2,
                },
            ),
            // Zero noise (identical samples): the 10us floor ...
            (
                &[200.0; 20],
                Intervals,
                200.0,
                None,
                10.0,
                Floor {
                    mad_us: 0.0,
                    of: Intervals,
                    count: 20,
                },
            ),
            // ... or 0.2% of a large baseline (a histogram bucket or two).
            (
                &[50_000.0; 3],
                Runs,
                50_000.0,
                None,
                100.0,
                Floor {
                    mad_us: 0.0,
                    of: Runs,
                    count: 3,
                },
            ),
            // Noise just under the floor: the floor.
            (
                &[100.0, 103.0, 106.0, 109.0, 112.0],
                Intervals,
                106.0,
                None,
                10.0,
                Floor {
                    mad_us: 3.0,
                    of: Intervals,
                    count: 5,
                },
            ),
            // One run of 4 intervals: nothing to measure, the fallback.
            (
                &[200.0, 210.0, 220.0, 230.0],
                Intervals,
                215.0,
                None,
                FALLBACK_SLACK_US,
                TooFew {
                    of: Intervals,
                    count: 4,
                },
            ),
            (
                &[],
                Intervals,
                0.0,
                None,
                FALLBACK_SLACK_US,
                TooFew {
                    of: Intervals,
                    count: 0,
                },
            ),
        ];
        for &(values, of, baseline_us, given, want_us, want_source) in cases {
            let slack = latency_slack(values, of, baseline_us, given);
            assert_eq!(
                slack,
                Slack {
                    us: want_us,
                    source: want_source
                },
                "{values:?} {of:?} baseline {baseline_us} given {given:?}"
            );
        }
    }

    #[test]
    fn latency_slack_descriptions() {
        let cases = [
            (
                Slack {
                    us: 1000.0,
                    source: SlackSource::Given,
                },
                "slack +1.00ms from --latency-slack",
            ),
            (
                Slack {
                    us: 41.0,
                    source: SlackSource::Noise {
                        mad_us: 13.67,
                        of: SpreadOf::Intervals,
                        count: 20,
                    },
                },
                "slack +41us: 3 x MAD (14us) of 20 baseline intervals",
            ),
            (
                Slack {
                    us: 10.0,
                    source: SlackSource::Floor {
                        mad_us: 0.0,
                        of: SpreadOf::Runs,
                        count: 3,
                    },
                },
                "slack +10us: the floor (3 x MAD (0us) of 3 baseline runs is less)",
            ),
            (
                Slack {
                    us: 1000.0,
                    source: SlackSource::TooFew {
                        of: SpreadOf::Intervals,
                        count: 1,
                    },
                },
                "slack +1.00ms: 1 baseline interval, too few to measure noise (need 5)",
            ),
        ];
        for (slack, want) in cases {
            assert_eq!(slack.describe(), want);
        }
    }

    #[test]
    fn small_latencies_are_judged_against_the_baselines_noise() {
        let tol = Tolerance::default();
        let steady = |p99_us: f64| run(p99_us, &[p99_us; 5], 0.0, 100.0);
        // 200us -> 400us is +100%; the baseline's intervals are identical,
        // so the slack is the 10us floor and it is a regression (the former
        // fixed 1 ms slack let it pass).
        let cmp = compare(&[steady(200.0)], &[steady(400.0)], &tol);
        assert!(cmp.rows[1].regression, "{cmp:#?}");
        assert!(cmp.rows[1].evidence.contains("the floor"), "{cmp:#?}");
        // --latency-slack 1ms overrides it.
        let lenient = Tolerance {
            latency_slack_us: Some(1000.0),
            ..tol
        };
        let cmp = compare(&[steady(200.0)], &[steady(400.0)], &lenient);
        assert!(!cmp.rows[1].regression, "{cmp:#?}");
        assert_eq!(cmp.rows[1].allowed, "+10% (at least +1.00ms)");
        // With no relative tolerance the floor alone keeps a few
        // microseconds of rounding from being a regression.
        let exact = Tolerance {
            latency_rel: 0.0,
            ..tol
        };
        let cmp = compare(&[steady(200.0)], &[steady(205.0)], &exact);
        assert!(!cmp.rows[1].regression, "{cmp:#?}");
        let cmp = compare(&[steady(200.0)], &[steady(215.0)], &exact);
        assert!(cmp.rows[1].regression, "{cmp:#?}");
    }

    #[test]
    fn a_short_baseline_run_falls_back_to_1ms() {
        let tol = Tolerance::default();
        let short = |p99_us: f64| run(p99_us, &[p99_us; 3], 0.0, 100.0);
        let cmp = compare(&[short(200.0)], &[short(400.0)], &tol);
        assert!(!cmp.rows[1].regression, "{cmp:#?}");
        assert!(
            cmp.rows[1].evidence.ends_with(
                "slack +1.00ms: 3 baseline intervals, too few to measure noise (need 5)"
            ),
            "{cmp:#?}"
        );
    }

    #[test]
    fn runs_of_different_loads_are_warned_of_not_failed() {
        let tol = Tolerance::default();
        let of = |load: Option<&str>| RunData {
            load: load.map(str::to_owned),
            ..run(20_000.0, &noisy(20_000.0, 2_000.0, 20, 1), 0.001, 1000.0)
        };
        let gw = Some("gateway");
        let same = compare(&[of(gw)], &[of(gw), of(None)], &tol);
        assert_eq!(same.warnings(), Vec::<String>::new());
        let sweep = Some("capacity-sweep");
        let cmp = compare(&[of(gw)], &[of(sweep)], &tol);
        assert_eq!(
            cmp.warnings(),
            [
                "warning: the two sides' runs have different names (baseline gateway; current \
                 capacity-sweep): if they are different scenarios, the verdict compares unlike \
                 loads"
            ]
        );
        assert!(!cmp.regressed(), "{cmp:#?}");
    }

    #[test]
    fn interrupted_runs_are_named_on_the_table_and_in_every_junit_case() {
        let tol = Tolerance::default();
        let at = |dir: &str, interrupted: bool| RunData {
            dir: PathBuf::from(dir),
            interrupted,
            ..run(20_000.0, &noisy(20_000.0, 2_000.0, 20, 1), 0.001, 1000.0)
        };
        let complete = [at("base/run-1", false), at("base/run-2", false)];
        let cmp = compare(&complete, &complete, &tol);
        assert_eq!(cmp.warnings(), Vec::<String>::new());
        let mut out = Vec::new();
        write_table(&mut out, &cmp, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "compare: PASS (6 metrics within the allowed change)\n"
        );

        let cut_base = [at("base/run-1", true), at("base/run-2", true)];
        let cut_current = [at("cur/run-1", false), at("cur/run-2", true)];
        let cmp = compare(&cut_base, &cut_current, &tol);
        let want = [
            "warning: interrupted baseline runs (summary.json \"interrupted\": true): base/run-1, base/run-2; \
             cut short, they cover only what ran before the signal: run them again (the verdict still counts them)",
            "warning: interrupted current run (summary.json \"interrupted\": true): cur/run-2; \
             cut short, it covers only what ran before the signal: run it again (the verdict still counts it)",
        ];
        assert_eq!(cmp.warnings(), want);
        // The verdict is the same as without the flag: a warning, not a failure.
        assert!(!cmp.regressed(), "{cmp:#?}");
        for quiet in [false, true] {
            let mut out = Vec::new();
            write_table(&mut out, &cmp, quiet).unwrap();
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[..2], want, "{text}");
        }
        for case in junit_cases(&cmp) {
            assert!(
                case.output
                    .starts_with(&format!("{}. {}. baseline ", want[0], want[1])),
                "{case:#?}"
            );
        }
        // A regression's failure message carries them too.
        let slow = [at("cur/run-1", true)].map(|r| RunData {
            values: [10_000.0, 40_000.0, 60_000.0, 0.001, 1000.0, 999.0],
            ..r
        });
        let cmp = compare(&complete[..1], &slow, &tol);
        let cases = junit_cases(&cmp);
        let failure = cases[1].failure.as_deref().unwrap();
        assert!(
            failure.starts_with("regression: baseline 20.00ms, current 40.00ms")
                && failure.ends_with("run it again (the verdict still counts it)."),
            "{failure}"
        );
    }
}
