//! The `run` experiment: start the components, drive the phases in order,
//! collect the upstream's ground truth, stop the components.
//!
//! Takes a validated [`Scenario`]; hands on a [`RunOutput`] for the report.
//! Components are stopped before this returns, on every path.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::driver::{self, DriverOutput, Plan};
use crate::error::Result;
use crate::record::IntervalRow;
use crate::scenario::Scenario;
use crate::shutdown::Stop;
use crate::topology::Topology;

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
    let mut topology = Topology::start_with_gateway(&scenario.target, &scenario.gateway, exe)?;
    let plan = Plan::new(scenario, &topology.url)?;
    let started_at = Utc::now();
    let driver = driver::run(&plan, stop.receiver(), on_interval)?;
    let mut warnings = Vec::new();
    if let Some(upstream) = topology.upstream.as_mut()
        && let Some(status) = upstream.exited()
    {
        warnings.push(format!(
            "the mock upstream exited during the run ({status})"
        ));
    }
    // The gateway first: reading its accounting drains and stops it, so the
    // upstream's ground truth is read after the last proxied request.
    if let Some(gateway) = topology.gateway.as_mut()
        && let Some(status) = gateway.child.exited()
    {
        warnings.push(format!(
            "the {} gateway exited during the run ({status})",
            gateway.kind
        ));
    }
    let gateway_accounting = match topology.gateway_accounting() {
        Some(Ok(value)) => Some(value),
        Some(Err(e)) => {
            warnings.push(e.to_string());
            None
        }
        None => None,
    };
    let upstream_accounting = match settled_upstream_accounting(&topology, settle) {
        Some(Ok((value, drained))) => {
            if !drained {
                warnings.push(format!(
                    "the mock upstream was still working {}s after the run: its accounting misses that work",
                    settle.as_secs_f64()
                ));
            }
            Some(value)
        }
        Some(Err(e)) => {
            warnings.push(e.to_string());
            None
        }
        None => None,
    };
    Ok(RunOutput {
        scenario: scenario.clone(),
        target_url: topology.url.clone(),
        started_at,
        driver,
        key_names: plan.key_names,
        upstream_accounting,
        gateway_accounting,
        warnings,
    })
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
