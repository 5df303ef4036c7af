//! Experiments: compositions of load steps into an answer.
//!
//! - [`step`]: one measured load step against a running topology (the one
//!   place load is driven), and the tally of its measured part.
//! - [`run`]: the scenario's load once on a fresh topology, then the
//!   components' typed reports (the gateway's accounting, the upstream's truth).
//! - [`sweep`]: offered load (then concurrency) in steps on one topology;
//!   knee, USL fit, max rate within an SLO; with [`handshake`], what
//!   connections cost each step beside its keep-alive twin.
//! - [`find_limit`]: the largest gateway concurrency limit inside the
//!   gateway timeout, per hardware class, beside the processor-sharing model.
//! - [`abort_audit`]: the load once per gateway mode; accounted time per
//!   key against the upstream's truth, joined per request.
//! - [`retry_compare`]: a sweep or a find-limit with the scenario's retry
//!   policy and again without, the answers side by side.
//! - [`variants`]: the load once per `[[variants]]` entry (a retry policy,
//!   a gateway concurrency limit), side by side.
//! - [`quota`]: the load once per rate-limit design (in-process, a shared
//!   store, the store with a local cache, through store faults).
//!
//! Every experiment takes a [`Bench`] and tells its caller what happens
//! through [`Event`]s (one progress adapter serves them all); each hands
//! on a typed output, drawing and writing nothing.

pub mod abort_audit;
pub mod faults;
pub mod find_limit;
pub mod handshake;
pub mod quota;
pub mod retry_compare;
pub mod run;
mod sampling;
pub mod step;
pub mod sweep;
pub mod variants;

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::driver::Load;
use crate::record::IntervalRow;
use crate::scenario::Scenario;
use crate::shutdown::Stop;
use crate::topology::cgroup::Cgroup;

/// What every experiment runs with.
#[derive(Clone, Copy)]
pub struct Bench<'a> {
    /// The validated scenario.
    pub scenario: &'a Scenario,
    /// The `contend` binary, which runs the embedded components.
    pub exe: &'a Path,
    /// Turns true on Ctrl-C or SIGTERM: stop sending, keep what was measured.
    pub stop: &'a Stop,
    /// The cgroup the component under test (the upstream) is put in: a
    /// find-limit's hardware class with a CPU quota or a memory limit.
    pub cgroup: Option<&'a Cgroup>,
}

/// What an experiment tells its caller as it goes.
pub enum Event<'a> {
    /// A measured step's load begins (its connections warm), at
    /// `started_at`, offering `load`.
    Step {
        /// Wall-clock start of its load.
        started_at: DateTime<Utc>,
        /// What it offers (for the progress bars).
        load: &'a Load,
    },
    /// An interval of the running step closed.
    Interval(&'a IntervalRow),
    /// A progress line for the console (a step's verdict, the next class).
    Note(String),
    /// A line the console shows even when quiet (a mode that cannot run).
    Warning(String),
}

/// What a component read gave: its value, or `None` when the read failed,
/// the failure then kept as a warning (shown on the console and in
/// `summary.json`), never a silent zero.
fn or_warn<T>(read: crate::error::Result<T>, warnings: &mut Vec<String>) -> Option<T> {
    match read {
        Ok(value) => Some(value),
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    }
}
