//! The `run` experiment: start the components, drive one step, then read
//! what the components report, typed: the gateway's access log into its
//! accounting, and the mock upstream's ground truth once it has drained.
//!
//! Takes a [`Bench`] and a [`Step`]; hands on a [`RunOutput`] for the
//! report. [`finish`] is the end every experiment shares: it reads a
//! topology's components after their last step and stops them. Components
//! are stopped before this returns, on every path.

use std::time::Duration;

use mock_upstream::accounting::Snapshot;
use mock_upstream::requests::Document;

use super::step::{self, Step, StepResult};
use super::{Bench, Event, or_warn};
use crate::analysis::gateway_log::{self, GatewayAccounting, LoggedRequests, RawLog};
use crate::error::{Error, Result};
use crate::scenario::Scenario;
use crate::topology::{ChildExit, ComponentStall, Topology};

/// Everything one run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The scenario as run (after overrides).
    pub scenario: Scenario,
    /// The URL the driver sent to.
    pub target_url: String,
    /// What the load measured.
    pub step: StepResult,
    /// The mock upstream's ground truth, read once it had drained; `None`
    /// when the upstream is not the mock, died, or could not be read (then
    /// a warning says why).
    pub upstream: Option<Snapshot>,
    /// The mock upstream's per-request log, with `[client] request_ids` on.
    pub upstream_requests: Option<Document>,
    /// The gateway's access log read into per-key accounting, when the
    /// harness started a gateway (`reference` or `nginx`).
    pub gateway: Option<GatewayAccounting>,
    /// The gateway's lines that carried a request id.
    pub gateway_requests: LoggedRequests,
    /// The gateway's raw access log, which the report folder keeps.
    pub gateway_log: Option<RawLog>,
    /// Each gateway replica's totals from its own `/metrics`, read after
    /// the load (one entry for a single reference gateway).
    pub replicas: Vec<ReplicaResult>,
    /// Commands the Redis store processed while the step ran, when the
    /// harness started one (its round trips, for round trips per request).
    pub store_commands: Option<f64>,
    /// Problems outside the measurement worth telling.
    pub warnings: Vec<String>,
}

/// One gateway replica's totals after the load.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaResult {
    /// `gateway`, `gateway:2`...
    pub role: String,
    /// Where it listened.
    pub addr: String,
    /// Responses by status (`status_200`), `responses`, and with a store
    /// its decisions (`rate_limit_admitted`, `rate_limit_limited`,
    /// `rate_limit_store_error`, `rate_limit_fail_open`) and `store_calls`.
    pub totals: std::collections::BTreeMap<String, f64>,
}

/// Reads every reference gateway replica's `/metrics` (nginx and HAProxy
/// keep no such page: none for them). A replica that cannot be read is a
/// warning.
fn read_replicas(topology: &Topology, warnings: &mut Vec<String>) -> Vec<ReplicaResult> {
    let roles = topology.roles();
    let gateways = topology.gateway.iter().chain(topology.replicas.iter());
    let mut out = Vec::new();
    for (role, g) in roles
        .iter()
        .filter(|r| r.starts_with("gateway"))
        .zip(gateways)
    {
        if g.info().kind != "reference" {
            continue;
        }
        let read = crate::topology::telemetry::scrape(
            g.addr(),
            "/metrics",
            Duration::from_secs(2),
            g.ca_pem(),
        )
        .and_then(|text| crate::topology::telemetry::replica_totals(&text));
        match read {
            Ok(totals) => out.push(ReplicaResult {
                role: role.clone(),
                addr: g.addr().to_string(),
                totals,
            }),
            Err(e) => warnings.push(format!("the {role}'s /metrics could not be read: {e}")),
        }
    }
    out
}

/// How long a plain run waits for the mock upstream to drain before
/// reading its truth.
pub const UPSTREAM_SETTLE: Duration = Duration::from_secs(5);

/// Runs `step` once on a fresh topology, waiting up to `settle` after the
/// load for the mock upstream to finish the work still running (or
/// queued) before its truth is read.
pub fn run(
    bench: &Bench,
    step: Step,
    settle: Duration,
    on_event: &mut dyn FnMut(Event),
) -> Result<RunOutput> {
    let scenario = bench.scenario;
    let mut topology = Topology::start(&scenario.target, &scenario.gateway, bench.exe)?;
    if let (Some(cgroup), Some(upstream)) = (bench.cgroup, topology.upstream.as_deref()) {
        cgroup.admit_group(upstream.child().pid())?;
    }
    let result = step::run(bench, &mut topology, step, on_event)?;
    Ok(finish(bench, topology, result, settle))
}

/// After the last step on `topology`: the gateway first (reading it drains
/// and stops it, so the upstream's truth is read after the last proxied
/// request), then the upstream's truth once it has drained (up to
/// `settle`) and, with request ids on, its per-request log. Every read that
/// fails becomes a warning. Then every component is stopped, and anything
/// of theirs still running is killed and said.
pub fn finish(
    bench: &Bench,
    mut topology: Topology,
    step: StepResult,
    settle: Duration,
) -> RunOutput {
    let mut warnings: Vec<String> = step
        .component_exits
        .iter()
        .map(ChildExit::describe)
        .collect();
    warnings.extend(step.component_stalls.iter().map(ComponentStall::describe));
    warnings.extend(step.telemetry.warnings());
    let replicas = read_replicas(&topology, &mut warnings);
    let store_commands = topology.store.as_ref().and_then(|s| s.commands());
    let mut replica_logs = Vec::new();
    for r in &mut topology.replicas {
        match r.finish() {
            Ok(log) => replica_logs.push(log),
            Err(e) => warnings.push(format!(
                "{e}; gateway_accounting leaves that replica's lines out"
            )),
        }
    }
    let (gateway, gateway_requests, gateway_log) = match topology.gateway.as_mut() {
        Some(g) => read_gateway(g.as_mut(), replica_logs, &mut warnings),
        None => (None, LoggedRequests::default(), None),
    };
    let (upstream, upstream_requests) = read_upstream(
        bench,
        &topology,
        &step.component_exits,
        settle,
        &mut warnings,
    );
    RunOutput {
        scenario: bench.scenario.clone(),
        target_url: topology.url.clone(),
        step,
        upstream,
        upstream_requests,
        gateway,
        gateway_requests,
        gateway_log,
        replicas,
        store_commands,
        warnings,
    }
}

/// The gateway drained and stopped, and its access log read into
/// accounting (with its replicas' logs, `replica_logs`) and kept raw for
/// the report folder (replica 1's alone). A read that fails is a warning;
/// a log longer than the report keeps is said.
fn read_gateway(
    gateway: &mut dyn crate::topology::Gateway,
    replica_logs: Vec<crate::topology::AccessLog>,
    warnings: &mut Vec<String>,
) -> (Option<GatewayAccounting>, LoggedRequests, Option<RawLog>) {
    let name = gateway.name().to_string();
    let counters = gateway.counters();
    let log = match gateway.finish() {
        Ok(log) => log,
        Err(e) => {
            warnings.push(e.to_string());
            return (None, LoggedRequests::default(), None);
        }
    };
    let raw = match gateway_log::keep(&log) {
        Ok(raw) => Some(raw),
        Err(e) => {
            warnings.push(format!(
                "{name}: its access log cannot be kept in the report folder: {e}"
            ));
            None
        }
    };
    if let Some(raw) = raw
        .as_ref()
        .filter(|r| r.bytes > gateway_log::MAX_KEPT_LOG_BYTES)
    {
        warnings.push(format!(
            "{name}: its access log is {} MiB; the report folder keeps its first {} MiB (whole lines) as access.log, while the accounting counts every line",
            raw.bytes >> 20,
            gateway_log::MAX_KEPT_LOG_BYTES >> 20
        ));
    }
    let read = gateway_log::read_replicas(log, replica_logs).map_err(|e| Error::Component {
        component: name,
        message: format!("could not read its access log: {e}"),
    });
    match or_warn(read, warnings) {
        Some((mut accounting, requests)) => {
            accounting.counters = counters;
            (Some(accounting), requests, raw)
        }
        None => (None, LoggedRequests::default(), raw),
    }
}

/// The upstream's truth once drained, and its per-request log when the
/// scenario sends request ids. A dead upstream's truth died with it:
/// nothing is read then.
fn read_upstream(
    bench: &Bench,
    topology: &Topology,
    exits: &[ChildExit],
    settle: Duration,
    warnings: &mut Vec<String>,
) -> (Option<Snapshot>, Option<Document>) {
    let Some(upstream) = topology.upstream.as_deref() else {
        return (None, None);
    };
    if exits.iter().any(|e| e.pid == upstream.child().pid()) {
        return (None, None);
    }
    let Some(settled) = or_warn(upstream.settle(settle), warnings) else {
        return (None, None);
    };
    if !settled.drained {
        warnings.push(format!(
            "the mock upstream was still working {}s after the run: its accounting misses that work",
            settle.as_secs_f64()
        ));
    }
    let requests = if bench.scenario.client.request_ids {
        or_warn(upstream.requests(), warnings)
    } else {
        None
    };
    (Some(settled.truth), requests)
}
