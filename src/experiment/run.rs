//! The `run` experiment: start the components, drive the phases in order,
//! collect the upstream's ground truth, stop the components.
//!
//! Takes a validated [`Scenario`]; hands on a [`RunOutput`] for the report.
//! Components are stopped before this returns, on every path.

use std::path::Path;

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

/// Runs `scenario`. `exe` is the `contend` binary used to start embedded
/// components; `on_interval` sees each interval as it completes.
pub fn run(
    scenario: &Scenario,
    exe: &Path,
    stop: &Stop,
    on_interval: &mut dyn FnMut(&IntervalRow),
) -> Result<RunOutput> {
    let mut topology = Topology::start_with_gateway(&scenario.target, &scenario.gateway, exe)?;
    let plan = Plan::new(scenario, &topology.url)?;
    let started_at = Utc::now();
    let driver = driver::run(&plan, stop.receiver(), on_interval)?;
    let mut warnings = Vec::new();
    if let Some(upstream) = topology.upstream.as_mut()
        && let Some(status) = upstream.exited()
    {
        warnings.push(format!("the mock upstream exited during the run ({status})"));
    }
    // The gateway first: reading its accounting drains and stops it, so the
    // upstream's ground truth is read after the last proxied request.
    if let Some(gateway) = topology.gateway.as_mut()
        && let Some(status) = gateway.child.exited()
    {
        warnings.push(format!("the {} gateway exited during the run ({status})", gateway.kind));
    }
    let gateway_accounting = match topology.gateway_accounting() {
        Some(Ok(value)) => Some(value),
        Some(Err(e)) => {
            warnings.push(e.to_string());
            None
        }
        None => None,
    };
    let upstream_accounting = match topology.upstream_accounting() {
        Some(Ok(value)) => Some(value),
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
