//! `experiment = "quota"`: the scenario's phases once per rate-limit
//! design, each on a fresh topology (its replicas, its store), so that
//! what a design delivers is measured, not assumed.
//!
//! The designs are variants of `[store]` and `[gateway]`: each replica's
//! limit in its own memory ([`Design::InProcess`]); the shared store on
//! every request ([`Design::Store`]); the store behind a local cache
//! synced every `sync_interval` ([`Design::StoreCache`]); and, when the
//! scenario lists `[[faults]]`, the store on every request through those
//! faults, failing open ([`Design::FaultOpen`]) and closed
//! ([`Design::FaultClosed`]). Only the fault designs apply the faults.
//!
//! Takes a [`Bench`] whose scenario is a quota experiment; hands on every
//! design's [`RunOutput`], or why it could not run (a design that failed
//! is kept as failed: its answers are not drawn from anything). A stop
//! ends the design running (its measurements kept) and runs no more. What
//! the numbers mean is the report's (`report::quota`).

use std::time::Duration;

use contend_gateway::store::OnStoreError;

use super::run::{self, RunOutput};
use super::step::Step;
use super::{Bench, Event};
use crate::driver::Load;
use crate::scenario::{QuotaSpec, Scenario};

/// Where a design keeps the rate limit, and what a store error does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Each replica's GCRA in its own memory: no store.
    InProcess,
    /// The shared store asked on every request.
    Store,
    /// The shared store behind a local budget synced every `sync_interval`.
    StoreCache,
    /// The store on every request through the faults; a store error admits.
    FaultOpen,
    /// The store on every request through the faults; a store error is a 503.
    FaultClosed,
}

impl Design {
    /// Its name in the report (`in-process`, `store-cache`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Design::InProcess => "in-process",
            Design::Store => "store",
            Design::StoreCache => "store-cache",
            Design::FaultOpen => "fault-open",
            Design::FaultClosed => "fault-closed",
        }
    }

    /// True for the designs that run through the scenario's faults.
    pub fn faulted(self) -> bool {
        matches!(self, Design::FaultOpen | Design::FaultClosed)
    }
}

/// The designs a scenario runs, in order: the fault designs only when it
/// lists `[[faults]]`.
pub fn designs(scenario: &Scenario) -> Vec<Design> {
    let mut out = vec![Design::InProcess, Design::Store, Design::StoreCache];
    if !scenario.faults.is_empty() {
        out.extend([Design::FaultOpen, Design::FaultClosed]);
    }
    out
}

/// One design as it ran.
#[derive(Debug)]
pub struct DesignRun {
    /// Which design.
    pub design: Design,
    /// Its run, or why it could not run (a component that did not start).
    pub output: Result<RunOutput, String>,
}

/// Runs the phases once per design, telling `on_event` which design runs
/// and of its steps. A design whose topology or step fails is kept with
/// its error and the next one runs.
pub fn run(bench: &Bench, spec: &QuotaSpec, on_event: &mut dyn FnMut(Event)) -> Vec<DesignRun> {
    let mut runs = Vec::new();
    let load = Load::Open(spec.phases.clone());
    for design in designs(bench.scenario) {
        if bench.stop.is_stopped() {
            break;
        }
        on_event(Event::Note(format!("design: {}", design.as_str())));
        let scenario = for_design(bench.scenario, design, spec.sync_interval);
        let design_bench = Bench {
            scenario: &scenario,
            ..*bench
        };
        let output = run::run(
            &design_bench,
            Step::measured(load.clone()),
            run::UPSTREAM_SETTLE,
            on_event,
        )
        .map_err(|e| e.to_string());
        if let Err(e) = &output {
            on_event(Event::Warning(format!(
                "design {} failed: {e}",
                design.as_str()
            )));
        }
        runs.push(DesignRun { design, output });
    }
    runs
}

/// The scenario as one design runs it: its store (or none), its sync
/// interval and its rule on store errors, the faults only for the fault
/// designs, and its name after the scenario's.
pub fn for_design(scenario: &Scenario, design: Design, sync_interval: Duration) -> Scenario {
    let mut s = scenario.clone();
    s.name = format!("{}-{}", scenario.name, design.as_str());
    if !design.faulted() {
        s.faults = Vec::new();
    }
    match design {
        Design::InProcess => s.gateway.store = None,
        Design::Store | Design::StoreCache | Design::FaultOpen | Design::FaultClosed => {
            if let Some(store) = s.gateway.store.as_mut() {
                store.sync_interval = (design == Design::StoreCache).then_some(sync_interval);
                store.on_store_error = if design == Design::FaultClosed {
                    OnStoreError::Closed
                } else {
                    OnStoreError::Open
                };
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_design_changes_only_its_store_and_faults() {
        let text = "name = \"q\"\nexperiment = \"quota\"\n[[phases]]\nrate = \"100\"\nduration = \"10s\"\n\
                    [upstream]\nkind = \"mock\"\n[gateway]\nkind = \"reference\"\nreplicas = 2\n\
                    rate_limit = { rate = 10 }\n[store]\nkind = \"redis\"\non_store_error = \"closed\"\n\
                    [[faults]]\nat = \"2s\"\ncomponent = \"store\"\naction = \"pause\"\nfor = \"1s\"\n\
                    [[keys]]\nname = \"a\"\n";
        let scenario =
            crate::scenario::parse(text, &crate::scenario::Source::Flags, &Default::default())
                .expect("valid");
        assert_eq!(designs(&scenario).len(), 5);
        let sync = Duration::from_millis(250);
        let local = for_design(&scenario, Design::InProcess, sync);
        assert!(local.gateway.store.is_none() && local.faults.is_empty());
        assert_eq!(local.name, "q-in-process");
        let store = for_design(&scenario, Design::Store, sync);
        let s = store.gateway.store.as_ref().expect("a store");
        assert_eq!(
            (s.sync_interval, s.on_store_error),
            (None, OnStoreError::Open)
        );
        assert!(store.faults.is_empty());
        let cached = for_design(&scenario, Design::StoreCache, sync);
        assert_eq!(
            cached.gateway.store.as_ref().unwrap().sync_interval,
            Some(sync)
        );
        let closed = for_design(&scenario, Design::FaultClosed, sync);
        assert_eq!(closed.faults.len(), 1);
        assert_eq!(
            closed.gateway.store.as_ref().unwrap().on_store_error,
            OnStoreError::Closed
        );
        assert_eq!(closed.gateway.replicas, 2);
        let mut no_faults = scenario.clone();
        no_faults.faults.clear();
        assert_eq!(designs(&no_faults).len(), 3);
    }
}
