//! `--retries`: what a run does with the scenario's retry policy. A sweep
//! or a find-limit with a policy compares by default (the experiment runs
//! twice, with and without it, which the console says before it starts);
//! `with` keeps the policy alone, `without` drops it. Also writes the run
//! without retries into the report's `without-retries/` folder.

use std::path::{Path, PathBuf};

use crate::cli::{RetriesArg, RunArgs};
use crate::error::{Error, Result};
use crate::experiment::retry_compare::without_retries;
use crate::experiment::run::RunOutput;
use crate::report::{self, folder::WITHOUT_RETRIES, summary::Summary};
use crate::scenario::{Experiment, Scenario};

/// The scenario as `--retries` has it run, and whether to compare.
pub(super) fn apply(args: &RunArgs, scenario: Scenario) -> Result<(Scenario, bool)> {
    let comparable = matches!(
        scenario.experiment,
        Experiment::Sweep(_) | Experiment::FindLimit(_)
    );
    let retrying = scenario.retrying();
    let Some(mode) = args.retries else {
        let compare = comparable && retrying;
        if compare && !args.quiet {
            eprintln!(
                "note: the scenario retries: the experiment runs twice, with its retry policy and without (twice the time); --retries with runs it once"
            );
        }
        return Ok((scenario, compare));
    };
    if !scenario.variants.is_empty() {
        return Err(Error::Usage(
            "--retries does not apply to a scenario with [[variants]] (each variant sets its own retry policy): drop --retries, or set retry in each variant".into(),
        ));
    }
    if !retrying {
        return Err(Error::Usage(
            "--retries needs a retry policy: set [client] retry = { on = [\"504\"], max = 3 } (or a key's retry)".into(),
        ));
    }
    match mode {
        RetriesArg::Compare if !comparable => Err(Error::Usage(
            "--retries compare is for experiment = \"sweep\" or \"find-limit\": to set a run's retries side by side, list them as [[variants]]".into(),
        )),
        RetriesArg::Compare => Ok((scenario, true)),
        RetriesArg::With => Ok((scenario, false)),
        RetriesArg::Without => Ok((without_retries(&scenario), false)),
    }
}

/// Writes the run without retries (`--retries compare`) into `dir`'s
/// `without-retries/` folder: its usual report files, its summary as
/// `fill` completes it (the sweep's or the search's own result, so its
/// tables and plots are there too).
pub(super) fn write_without(
    dir: &Path,
    run: Option<&RunOutput>,
    fill: impl FnOnce(&mut Summary),
) -> (Vec<PathBuf>, Vec<Error>) {
    let Some(run) = run else {
        return (Vec::new(), Vec::new());
    };
    let mut summary = Summary::of(run);
    fill(&mut summary);
    report::write(&dir.join(WITHOUT_RETRIES), run, &summary)
}
