//! The `abort-audit` experiment: the scenario's phases once per gateway
//! mode (reference `early`/`complete`, nginx `proxy_ignore_client_abort`
//! off/on), each on a fresh topology, then per mode and key the time the
//! gateway accounted against the mock upstream's truth.
//!
//! Takes a validated [`Scenario`] whose target is the embedded mock (the
//! truth comes from its `/accounting`); hands on an [`AuditOutput`]: every
//! mode's [`RunOutput`], the [`AbortAudit`] computed from them, and per
//! mode every request joined across the client, the gateway's log and the
//! upstream by `x-request-id` (the scenario has request ids on: the audit's
//! default). The per-request logs are taken out of each run's accounting
//! documents once joined, so the per-mode summaries stay small. A mode
//! that cannot run here (nginx not installed) is kept as skipped, with the
//! reason. The arithmetic is `analysis::accounting`'s; nothing is printed.

use std::path::Path;

use contend_gateway::access_log::LoggedRequest;

use crate::analysis::accounting::{
    self, AbortAudit, BudgetInfo, ClientKey, JoinedRequest, UpstreamRequests,
};
use crate::error::{Error, Result};
use crate::experiment::run::{self, RunOutput};
use crate::outcome::Class;
use crate::record::IntervalRow;
use crate::scenario::{AuditMode, GatewayKind, Scenario, Target};
use crate::shutdown::Stop;

/// Every mode that ran, and the audit.
#[derive(Debug)]
pub struct AuditOutput {
    /// The runs, in the order the modes ran (skipped modes have none).
    pub runs: Vec<(AuditMode, RunOutput)>,
    /// Per mode and key: accounted against true time.
    pub audit: AbortAudit,
    /// Per mode that ran (in order), its requests joined by id.
    pub joined: Vec<(String, Vec<JoinedRequest>)>,
}

/// What happens to a mode before it runs, for progress messages.
#[derive(Debug, Clone, Copy)]
pub enum ModeEvent<'a> {
    /// The mode is about to run.
    Starting(AuditMode),
    /// The mode is skipped, with the reason.
    Skipped(AuditMode, &'a str),
}

/// Runs `scenario` once per mode of its `[abort_audit]`. `on_mode` hears
/// of each mode as it starts or is skipped; `on_interval` sees the
/// intervals of the mode running.
pub fn run(
    scenario: &Scenario,
    exe: &Path,
    stop: &Stop,
    on_mode: &mut dyn FnMut(ModeEvent),
    on_interval: &mut dyn FnMut(&IntervalRow),
) -> Result<AuditOutput> {
    if !matches!(scenario.target, Target::Mock(_)) {
        return Err(Error::Usage(
            "experiment \"abort-audit\" needs the embedded mock upstream (its /accounting is the truth): \
             remove [target] and use [upstream] kind = \"mock\""
                .into(),
        ));
    }
    let mut runs = Vec::new();
    let mut joined = Vec::new();
    let mut audit = AbortAudit::default();
    for key in &scenario.keys {
        let timeout = key.timeout.unwrap_or(scenario.client.timeout);
        audit
            .client_timeouts_s
            .insert(key.name.clone(), timeout.as_secs_f64());
    }
    for &mode in &scenario.abort_audit.modes {
        if stop.is_stopped() {
            break;
        }
        audit.order.push(mode.as_str().to_string());
        let (mode_scenario, dropped) = for_mode(scenario, mode);
        if mode.gateway_kind() == GatewayKind::Nginx
            && let Err(e) = crate::topology::nginx::find()
        {
            let reason = format!("skipped: {e}");
            on_mode(ModeEvent::Skipped(mode, &reason));
            audit
                .modes
                .insert(mode.as_str().to_string(), accounting::skipped(reason));
            continue;
        }
        on_mode(ModeEvent::Starting(mode));
        let mut output = run::run_settled(
            &mode_scenario,
            exe,
            stop,
            on_interval,
            scenario.abort_audit.settle,
        )?;
        if !dropped.is_empty() {
            output.warnings.push(format!(
                "nginx has no directive for {}; this mode ran without",
                dropped.join(", ")
            ));
        }
        let (mode_audit, requests) = audit_and_join(&mut output);
        audit.modes.insert(mode.as_str().to_string(), mode_audit);
        joined.push((mode.as_str().to_string(), requests));
        runs.push((mode, output));
    }
    audit.rows = accounting::rows(&audit);
    if runs.is_empty() && !stop.is_stopped() {
        let reasons: Vec<String> = audit
            .modes
            .iter()
            .filter_map(|(m, a)| a.skipped.as_ref().map(|r| format!("{m}: {r}")))
            .collect();
        return Err(Error::Component {
            component: "abort-audit".into(),
            message: format!(
                "no mode could run ({}); add \"reference-early\" and \"reference-complete\" to [abort_audit] modes",
                reasons.join("; ")
            ),
        });
    }
    Ok(AuditOutput {
        runs,
        audit,
        joined,
    })
}

/// The scenario as one mode runs it: its gateway kind and abort accounting,
/// the scenario's policies kept. nginx has no directive for some reference
/// policies; those are dropped for nginx modes and named in the second value.
pub fn for_mode(scenario: &Scenario, mode: AuditMode) -> (Scenario, Vec<&'static str>) {
    let mut s = scenario.clone();
    s.name = format!("{}-{}", scenario.name, mode.as_str());
    s.gateway.kind = mode.gateway_kind();
    s.gateway.url = None;
    s.gateway.abort_accounting = mode.abort_accounting();
    let mut dropped = Vec::new();
    if mode.gateway_kind() == GatewayKind::Nginx {
        let p = &mut s.gateway.policies;
        if p.budget.take().is_some() {
            dropped.push("budget");
        }
        if p.breaker.take().is_some() {
            dropped.push("breaker");
        }
        if let Some(c) = p.concurrency.as_mut()
            && c.queue > 0
        {
            c.queue = 0;
            dropped.push("a concurrency queue");
        }
        if s.gateway.abort_charge.take().is_some() {
            dropped.push("abort_charge");
        }
    } else {
        s.gateway.template = None;
    }
    (s, dropped)
}

/// The audit of one finished mode run with its requests joined by id. The
/// per-request logs are taken out of the run's accounting documents.
pub fn audit_and_join(run: &mut RunOutput) -> (accounting::ModeAudit, Vec<JoinedRequest>) {
    let (lines, lines_dropped) = take_gateway_requests(run.gateway_accounting.as_mut());
    let upstream = take_upstream_requests(run.upstream_accounting.as_mut());
    let mut mode = audit_of(run);
    mode.budget = run.scenario.gateway.policies.budget.map(|b| BudgetInfo {
        budget_s: b.budget.as_secs_f64(),
        window_s: b.window.as_secs_f64(),
        penalty_s: b.penalty.as_secs_f64(),
    });
    let Some(client) = &run.driver.requests else {
        return (mode, Vec::new());
    };
    let (joined, stats) =
        accounting::join(client, &run.key_names, &lines, lines_dropped, &upstream);
    accounting::add_join(&mut mode, &run.key_names, &joined, stats);
    (mode, joined)
}

/// Takes `requests` (and `requests_dropped`) out of the gateway's accounting.
fn take_gateway_requests(doc: Option<&mut serde_json::Value>) -> (Vec<LoggedRequest>, u64) {
    let Some(map) = doc.and_then(|d| d.as_object_mut()) else {
        return (Vec::new(), 0);
    };
    let dropped = map
        .remove("requests_dropped")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let lines = map
        .remove("requests")
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    (lines, dropped)
}

/// Takes `requests` (the mock's `/requests`) out of the upstream's accounting.
fn take_upstream_requests(doc: Option<&mut serde_json::Value>) -> UpstreamRequests {
    doc.and_then(|d| d.as_object_mut())
        .and_then(|m| m.remove("requests"))
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The audit of one finished mode run, from its per-key totals.
pub fn audit_of(run: &RunOutput) -> accounting::ModeAudit {
    let clients: Vec<ClientKey> = run
        .driver
        .totals
        .keys
        .iter()
        .map(|k| ClientKey {
            abandoned: k.counts.class(Class::ClientTimeout),
            ok: k.counts.class(Class::Success),
            p99_us: if k.latency_us.is_empty() {
                0
            } else {
                k.latency_us.value_at_quantile(0.99)
            },
        })
        .collect();
    accounting::mode_audit(
        &run.key_names,
        &clients,
        run.gateway_accounting.as_ref(),
        run.upstream_accounting.as_ref(),
        run.driver.duration_s,
    )
}
