//! `contend run` of `experiment = "quota"`: the phases once per rate-limit
//! design on fresh components, each design's report in `design-NAME/`,
//! and at the top `summary.json` (the first design that ran, with every
//! design's answers under `quota`, which the thresholds also read),
//! `quota.md`, `quota.csv`, the figures and `report.html`. A design that
//! could not run is reported as failed. Exit codes as `run`.

use super::parts::{conclude_parts, write_part};
use super::{Once, run_once};
use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::experiment;
use crate::experiment::run::RunOutput;
use crate::report::{self, summary::Summary};
use crate::scenario;
use crate::shutdown::Stop;

pub(super) fn run(
    args: &RunArgs,
    scenario: &scenario::Scenario,
    spec: &scenario::QuotaSpec,
) -> Result<i32> {
    let Once {
        output: runs,
        thresholds,
        stop,
        preflight,
        dir,
        made: _made,
    } = run_once(
        args,
        scenario,
        "--repeat is not available for experiment = \"quota\" (it already runs once per design)",
        |bench, on_event| Ok(experiment::quota::run(bench, spec, on_event)),
    )?;
    let Some(rule) = scenario.gateway.policies.rate_limit else {
        return Err(Error::Runtime(
            "the quota experiment ran without a rate limit".into(),
        ));
    };
    // Each design's run with its summary, or why it could not run.
    type Summarised<'a> = std::result::Result<(&'a RunOutput, Summary), String>;
    let designs: Vec<(experiment::quota::Design, Summarised)> = runs
        .iter()
        .map(|r| {
            (
                r.design,
                r.output
                    .as_ref()
                    .map(|run| (run, Summary::of(run)))
                    .map_err(Clone::clone),
            )
        })
        .collect();
    let Some(first) = designs
        .iter()
        .find_map(|(_, d)| d.as_ref().ok().map(|(_, s)| s))
    else {
        if let Some(signal) = Stop::signal().filter(|_| stop.is_stopped()) {
            return Ok(signal.exit_code());
        }
        let why: Vec<String> = designs
            .iter()
            .filter_map(|(design, d)| {
                d.as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", design.as_str()))
            })
            .collect();
        return Err(Error::Runtime(format!(
            "no quota design could run: {}",
            why.join("; ")
        )));
    };
    let mut errors = Vec::new();
    let mut intervals = Vec::new();
    let mut inputs = Vec::new();
    for (design, d) in &designs {
        let name = design.as_str();
        match d {
            Ok((run, summary)) => {
                let part = write_part(&dir, &format!("design-{name}"), run, summary, &mut errors);
                intervals.push((name.to_string(), part));
                inputs.push((*design, Ok((*run, summary))));
            }
            Err(e) => inputs.push((*design, Err(e.clone()))),
        }
    }
    let result = report::quota::result(
        rule,
        scenario.gateway.replicas,
        spec.sync_interval.as_secs_f64(),
        &inputs,
    );
    let mut summary = first.clone();
    summary.name = scenario.name.clone();
    summary.quota = Some(result.clone());
    summary.warnings = runs
        .iter()
        .flat_map(|r| {
            let name = r.design.as_str();
            match &r.output {
                Ok(run) => run
                    .warnings
                    .iter()
                    .map(|w| format!("{name}: {w}"))
                    .collect(),
                Err(e) => vec![format!("{name}: failed: {e}")],
            }
        })
        .collect();
    conclude_parts(
        args,
        &stop,
        &dir,
        &preflight,
        &thresholds,
        summary,
        errors,
        |summary| report::quota_page::write_files(&dir, summary, &result, &intervals),
        |w| report::quota::write_table(w, &result),
    )
}
