//! How a retry policy moves a sweep's or a find-limit's answer: the
//! experiment once with the scenario's retry policy, then once more with
//! none, each on fresh topologies.
//!
//! Takes a [`Bench`] whose scenario retries; hands on the experiment's
//! output with the policy, its result holding the one without under
//! `without_retries`, and the run without (for the report's
//! `without-retries/` folder). A stop during the first half skips the
//! second (its side then reads "not run"); a stop during the second keeps
//! what it measured, marked interrupted like any search cut short. It draws
//! and writes nothing.

use super::find_limit::{self, FindLimitOutput};
use super::run::RunOutput;
use super::sweep::{self, SweepOutput};
use super::{Bench, Event};
use crate::error::Result;
use crate::scenario::{FindLimitSpec, Scenario, SweepSpec};

/// The scenario with no retry policy, the client's or any key's.
pub fn without_retries(scenario: &Scenario) -> Scenario {
    let mut s = scenario.clone();
    s.client.retry = None;
    for key in &mut s.keys {
        key.retry = None;
    }
    s
}

/// A sweep with the scenario's retry policy, then without: the first's
/// output (its result holding the second's) and the second's run.
pub fn sweep(
    bench: &Bench,
    spec: &SweepSpec,
    on_event: &mut dyn FnMut(Event),
) -> Result<(SweepOutput, Option<RunOutput>)> {
    let (mut with, without) = with_and_without(bench, "sweep", on_event, |bench, on_event| {
        sweep::run(bench, spec, on_event)
    })?;
    with.result.retries_compared = true;
    let Some(without) = without else {
        return Ok((with, None));
    };
    with.result.without_retries = Some(Box::new(without.result));
    Ok((with, Some(without.run)))
}

/// A find-limit with the scenario's retry policy, then without: the
/// first's output (its result holding the second's) and the second's run
/// at its limit.
pub fn find_limit(
    bench: &Bench,
    spec: &FindLimitSpec,
    on_event: &mut dyn FnMut(Event),
) -> Result<(FindLimitOutput, Option<RunOutput>)> {
    let (mut with, without) =
        with_and_without(bench, "find-limit", on_event, |bench, on_event| {
            find_limit::run(bench, spec, on_event)
        })?;
    with.result.retries_compared = true;
    let Some(without) = without else {
        return Ok((with, None));
    };
    with.result.without_retries = Some(Box::new(without.result));
    Ok((with, without.run))
}

/// Runs `experiment` (named `what` in the notes) with the scenario's retry
/// policy, then, unless stopped meanwhile, once more without it.
fn with_and_without<O>(
    bench: &Bench,
    what: &str,
    on_event: &mut dyn FnMut(Event),
    experiment: impl Fn(&Bench, &mut dyn FnMut(Event)) -> Result<O>,
) -> Result<(O, Option<O>)> {
    on_event(Event::Note(format!(
        "{what}: with the retry policy, then again without it (--retries compare)"
    )));
    let with = experiment(bench, on_event)?;
    if bench.stop.is_stopped() {
        return Ok((with, None));
    }
    on_event(Event::Note(format!("{what}: again without retries")));
    let scenario = without_retries(bench.scenario);
    let without = experiment(
        &Bench {
            scenario: &scenario,
            ..*bench
        },
        on_event,
    )?;
    Ok((with, Some(without)))
}
