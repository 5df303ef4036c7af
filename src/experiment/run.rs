//! The `run` experiment: start the components, drive the phases in order,
//! collect the upstream's ground truth, stop the components.
//!
//! Takes a validated [`Scenario`]; hands on a [`RunOutput`] for the report.
//! Components are watched while the load runs (one that dies is recorded,
//! and the run goes on) and stopped before this returns, on every path.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::driver::{self, DriverOutput, Plan};
use crate::error::Result;
use crate::record::IntervalRow;
use crate::scenario::Scenario;
use crate::shutdown::Stop;
use crate::topology::{ChildExit, ChildGuard, Topology};

/// Everything one run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The scenario as run (after overrides).
    pub scenario: Scenario,
    /// The URL the driver sent to.
    pub target_url: String,
    /// Wall-clock start.
    pub started_at: DateTime<Utc>,
    /// What the driver measured.
    pub driver: DriverOutput,
    /// Key names in scenario order (matching `driver.totals.keys`).
    pub key_names: Vec<String>,
    /// The mock upstream's `/accounting`, when it ran.
    pub upstream_accounting: Option<serde_json::Value>,
    /// The gateway's access log read into per-key accounted time, when the
    /// harness started one (`reference` or `nginx`): what ran (kind,
    /// version, config, address) and the log's totals per key.
    pub gateway_accounting: Option<serde_json::Value>,
    /// Components that died while the driver ran: which, when, how.
    pub component_exits: Vec<ChildExit>,
    /// Problems outside the measurement worth telling.
    pub warnings: Vec<String>,
}

/// How long [`run`] waits for the mock upstream to drain before reading its
/// accounting (see [`run_settled`]).
pub const UPSTREAM_SETTLE: Duration = Duration::from_secs(5);

/// Runs `scenario`. `exe` is the `contend` binary used to start embedded
/// components; `on_interval` sees each interval as it completes.
pub fn run(
    scenario: &Scenario,
    exe: &Path,
    stop: &Stop,
    on_interval: &mut dyn FnMut(&IntervalRow),
) -> Result<RunOutput> {
    run_settled(scenario, exe, stop, on_interval, UPSTREAM_SETTLE)
}

/// [`run`], waiting up to `settle` after the load for the mock upstream to
/// finish the work still running (or queued) before its ground truth is
/// read; a warning says so when it had not drained by then.
pub fn run_settled(
    scenario: &Scenario,
    exe: &Path,
    stop: &Stop,
    on_interval: &mut dyn FnMut(&IntervalRow),
    settle: Duration,
) -> Result<RunOutput> {
    run_observed(scenario, exe, stop, &mut |_| {}, on_interval, settle)
}

/// [`run_settled`], also handing `on_start` the run's start time once the
/// components are up, before the first interval: the report's folder and
/// the interval files written as the run goes are named from it.
///
/// The components are watched while the driver runs: one that dies is
/// recorded (which, when, how) in [`RunOutput::component_exits`] and the
/// warnings, and the run goes on counting the failed requests.
pub fn run_observed(
    scenario: &Scenario,
    exe: &Path,
    stop: &Stop,
    on_start: &mut dyn FnMut(&DateTime<Utc>),
    on_interval: &mut dyn FnMut(&IntervalRow),
    settle: Duration,
) -> Result<RunOutput> {
    let mut topology = Topology::start_with_gateway(&scenario.target, &scenario.gateway, exe)?;
    let plan = Plan::new(scenario, &topology.url)?;
    let started_at = Utc::now();
    on_start(&started_at);
    let (driver, component_exits) = drive_watching(&plan, stop, on_interval, &mut topology);
    let driver = driver?;
    let mut warnings: Vec<String> = component_exits.iter().map(ChildExit::describe).collect();
    let upstream_died = topology
        .upstream
        .as_ref()
        .is_some_and(|u| component_exits.iter().any(|e| e.pid == u.pid()));
    // The gateway first: reading its accounting drains and stops it, so the
    // upstream's ground truth is read after the last proxied request.
    let gateway_accounting = super::or_warn(topology.gateway_accounting(), &mut warnings);
    // A dead upstream's truth died with it: nothing to read.
    let settled = if upstream_died {
        None
    } else {
        super::or_warn(
            settled_upstream_accounting(&topology, settle),
            &mut warnings,
        )
    };
    let upstream_accounting = settled.map(|(value, drained)| {
        if !drained {
            warnings.push(format!(
                "the mock upstream was still working {}s after the run: its accounting misses that work",
                settle.as_secs_f64()
            ));
        }
        value
    });
    let mut upstream_accounting = upstream_accounting;
    // With request ids on, the mock's per-request log (its GET /requests)
    // rides along under `requests`, read once it has drained.
    if scenario.client.request_ids
        && let (Some(doc), Some(upstream)) = (upstream_accounting.as_mut(), &topology.upstream)
    {
        match crate::topology::http::get_json(upstream.addr, "/requests") {
            Ok(requests) => {
                if let Some(map) = doc.as_object_mut() {
                    map.insert("requests".into(), requests);
                }
            }
            Err(e) => warnings.push(format!("could not read the mock upstream's /requests: {e}")),
        }
    }
    Ok(RunOutput {
        scenario: scenario.clone(),
        target_url: topology.url.clone(),
        started_at,
        driver,
        key_names: plan.key_names,
        upstream_accounting,
        gateway_accounting,
        component_exits,
        warnings,
    })
}

/// How often the components are checked while the driver runs: the
/// precision of a death's time in the report.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// Runs the driver while a watcher thread checks the components every
/// [`WATCH_EVERY`]; hands back the driver's result and every component
/// that ended on its own before the driver finished, in order of death.
fn drive_watching(
    plan: &Plan,
    stop: &Stop,
    on_interval: &mut dyn FnMut(&IntervalRow),
    topology: &mut Topology,
) -> (Result<DriverOutput>, Vec<ChildExit>) {
    let run_start = Instant::now();
    let children: Vec<&mut ChildGuard> = topology
        .upstream
        .iter_mut()
        .chain(topology.gateway.iter_mut().map(|g| &mut g.child))
        .collect();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (driver, watched) = std::thread::scope(|scope| {
        let watcher = std::thread::Builder::new()
            .name("contend-watch".into())
            .spawn_scoped(scope, move || watch(children, run_start, &done_rx));
        let driver = driver::run(plan, stop.receiver(), on_interval);
        drop(done_tx);
        (driver, watcher.ok().and_then(|h| h.join().ok()))
    });
    // Without a watcher thread the children are checked once, at the end.
    let exits = watched.unwrap_or_else(|| {
        let at_s = run_start.elapsed().as_secs_f64();
        topology
            .upstream
            .iter_mut()
            .chain(topology.gateway.iter_mut().map(|g| &mut g.child))
            .filter_map(|child| child.exit_report(at_s))
            .collect()
    });
    (driver, exits)
}

/// Checks `children` until `done` closes (once more then, so a death in
/// the last moments is not missed).
fn watch(
    mut children: Vec<&mut ChildGuard>,
    run_start: Instant,
    done: &mpsc::Receiver<()>,
) -> Vec<ChildExit> {
    let mut exits = Vec::new();
    loop {
        let finished = !matches!(
            done.recv_timeout(WATCH_EVERY),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        let at_s = run_start.elapsed().as_secs_f64();
        children.retain_mut(|child| match child.exit_report(at_s) {
            Some(exit) => {
                exits.push(exit);
                false
            }
            None => true,
        });
        if finished || children.is_empty() {
            return exits;
        }
    }
}

/// Reads the mock upstream's `/accounting` once it has drained; the flag is
/// false when `settle` ran out first (the last reading is returned).
///
/// Why wait: with `on_disconnect = "run"` the upstream keeps working on
/// requests whose clients (and gateway) left, so its truth is not whole
/// until that work ends; summing earlier under-reports exactly what an
/// abort audit measures. Drained means every key's `started` equals
/// `completed + abandoned + cancelled`. A request still queued for a worker
/// is not yet `started`, but while one waits every worker is busy, so the
/// sums differ; they can read equal with a queue only in the instant
/// between a worker's finish and its next start, which two equal readings
/// in a row rule out. Nothing signals the last finish, so this polls, up to
/// the deadline.
fn settled_upstream_accounting(
    topology: &Topology,
    settle: Duration,
) -> Option<Result<(serde_json::Value, bool)>> {
    let deadline = Instant::now() + settle;
    let mut drained_readings = 0;
    loop {
        let value = match topology.upstream_accounting()? {
            Ok(value) => value,
            Err(e) => return Some(Err(e)),
        };
        drained_readings = if drained(&value) {
            drained_readings + 1
        } else {
            0
        };
        if drained_readings >= 2 {
            return Some(Ok((value, true)));
        }
        if Instant::now() >= deadline {
            return Some(Ok((value, false)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when every key of an `/accounting` document has ended all it started.
pub fn drained(accounting: &serde_json::Value) -> bool {
    let Some(keys) = accounting.get("keys").and_then(|k| k.as_object()) else {
        return true;
    };
    keys.values().all(|k| {
        let n = |name: &str| k.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
        n("started") == n("completed") + n("abandoned") + n("cancelled")
    })
}
