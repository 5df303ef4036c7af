//! `[[variants]]`: the scenario's phases once per variant (its retry
//! policy, its gateway concurrency limit), each on a fresh topology, so
//! that what retries cost is set side by side.
//!
//! Takes a [`Bench`] whose scenario lists variants and its open-loop load;
//! hands on every variant's [`RunOutput`] in order. A stop ends the
//! variant running (its measurements kept) and runs no more. What the rows
//! show is the report's (`report::variants`); nothing is printed.

use super::run::{self, RunOutput};
use super::step::Step;
use super::{Bench, Event};
use crate::driver::Load;
use crate::error::Result;
use crate::scenario::{Scenario, VariantSpec};

/// Runs `load` once per variant of the bench's scenario, telling
/// `on_event` which variant runs and of its steps.
pub fn run(
    bench: &Bench,
    load: &Load,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<(String, RunOutput)>> {
    let mut runs = Vec::new();
    for variant in &bench.scenario.variants {
        if bench.stop.is_stopped() {
            break;
        }
        on_event(Event::Note(format!("variant: {}", variant.name)));
        let scenario = for_variant(bench.scenario, variant);
        let variant_bench = Bench {
            scenario: &scenario,
            ..*bench
        };
        let output = run::run(
            &variant_bench,
            Step::measured(load.clone()),
            run::UPSTREAM_SETTLE,
            on_event,
        )?;
        runs.push((variant.name.clone(), output));
    }
    Ok(runs)
}

/// The scenario as one variant runs it: its retry policy and concurrency
/// limit over the scenario's, and its name after the scenario's.
pub fn for_variant(scenario: &Scenario, variant: &VariantSpec) -> Scenario {
    let mut s = scenario.clone();
    s.name = format!("{}-{}", scenario.name, variant.name);
    if let Some(retry) = &variant.retry {
        s.client.retry = Some(retry.clone());
    }
    if let Some(limit) = variant.concurrency {
        s.gateway.policies.concurrency = Some(limit);
    }
    s.variants = Vec::new();
    s
}
