//! The CI regression gate: thresholds over a run's summary, baseline
//! comparison, JUnit XML.
//!
//! Takes finished results (summary.json as JSON, report folders) and hands
//! on verdicts; the commands in [`crate::app`] print them and turn them into
//! exit code 3. Nothing here runs load or decides an exit code.
//!
//! - thresholds: the expression language (`p99 < 250ms`) and its
//!   evaluation live in [`crate::threshold`], which a scenario also reads;
//!   its items are re-exported here.
//! - [`compare`]: baseline vs current, with tolerance and a rank test.
//! - [`stats`]: median and the Mann-Whitney U test.
//! - [`junit`]: JUnit XML for CI systems.

pub mod compare;
pub mod junit;
pub mod stats;

use std::io::{self, Write};

pub use crate::threshold::{ParseError, Threshold, ThresholdResult, parse_all};

/// Exit code when a threshold fails or compare finds a regression.
pub const EXIT_GATE_FAILED: i32 = 3;

/// Prints the thresholds table (threshold, value, verdict); with `quiet`
/// only the failures. Ends with a one-line verdict. Prints nothing when
/// there are no thresholds.
pub fn write_thresholds(
    w: &mut dyn Write,
    results: &[ThresholdResult],
    quiet: bool,
) -> io::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let width = results
        .iter()
        .map(|r| r.expr.chars().count())
        .max()
        .unwrap_or(0)
        .max(9);
    if !quiet {
        writeln!(w, "Thresholds:")?;
        writeln!(w, "  {:<width$}  {:>14}  verdict", "threshold", "value")?;
    }
    for r in results.iter().filter(|r| !quiet || !r.pass) {
        let verdict = if r.pass { "pass" } else { "FAIL" };
        if quiet {
            writeln!(w, "FAIL {}: {}", r.expr, r.shown)?;
        } else {
            writeln!(w, "  {:<width$}  {:>14}  {verdict}", r.expr, r.shown)?;
        }
    }
    let failed = results.iter().filter(|r| !r.pass).count();
    if failed == 0 {
        writeln!(
            w,
            "thresholds: PASS ({} of {} held)",
            results.len(),
            results.len()
        )
    } else {
        writeln!(w, "thresholds: FAIL ({failed} of {} failed)", results.len())
    }
}

/// Threshold results as JUnit cases, grouped under `classname`.
pub fn threshold_cases(classname: &str, results: &[ThresholdResult]) -> Vec<junit::Case> {
    results
        .iter()
        .map(|r| junit::Case {
            classname: classname.to_string(),
            name: r.expr.clone(),
            failure: (!r.pass).then(|| format!("{} failed: value {}", r.expr, r.shown)),
            output: format!("value {}", r.shown),
        })
        .collect()
}
