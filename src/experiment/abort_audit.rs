//! The `abort-audit` experiment: the scenario's phases once per gateway
//! mode (reference `early`/`complete`, nginx `proxy_ignore_client_abort`
//! off/on), each on a fresh topology, then per mode and key the time the
//! gateway accounted against the mock upstream's truth.
//!
//! Takes a [`Bench`] whose scenario's target is the embedded mock (the
//! truth comes from its `/accounting`); hands on an [`AuditOutput`]: every
//! mode's [`RunOutput`], the [`AbortAudit`] computed from them, and per
//! mode every request joined across the client, the gateway's log and the
//! upstream by `x-request-id` (the scenario has request ids on: the audit's
//! default). A mode that cannot run here (nginx not installed) is kept as
//! skipped, with the reason. The arithmetic is `analysis`'s; nothing is
//! printed.

use super::run::{self, RunOutput};
use super::step::Step;
use super::{Bench, Event};
use crate::analysis::accounting::{self, AbortAudit, BudgetInfo, ClientKey};
use crate::analysis::join::{self, JoinedRequest};
use crate::driver::Load;
use crate::error::{Error, Result};
use crate::outcome::Class;
use crate::scenario::{AbortAuditSpec, AuditMode, GatewayKind, Scenario, Target};

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

/// Runs the bench's scenario once per mode of `spec`, telling
/// `on_event` of each mode as it starts (or why it is skipped) and of the
/// running mode's steps.
pub fn run(
    bench: &Bench,
    spec: &AbortAuditSpec,
    on_event: &mut dyn FnMut(Event),
) -> Result<AuditOutput> {
    let scenario = bench.scenario;
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
    for &mode in &spec.modes {
        if bench.stop.is_stopped() {
            break;
        }
        audit.order.push(mode.as_str().to_string());
        let (mode_scenario, dropped) = for_mode(scenario, mode);
        if mode.gateway_kind() == GatewayKind::Nginx
            && let Err(e) = crate::topology::nginx::find()
        {
            let reason = format!("skipped: {e}");
            on_event(Event::Warning(format!(
                "abort-audit: {} {reason}",
                mode.as_str()
            )));
            audit
                .modes
                .insert(mode.as_str().to_string(), accounting::skipped(reason));
            continue;
        }
        on_event(Event::Note(format!("abort-audit: {}", mode.as_str())));
        let mode_bench = Bench {
            scenario: &mode_scenario,
            ..*bench
        };
        let step = Step::measured(Load::Open(spec.phases.clone()));
        let mut output = run::run(&mode_bench, step, spec.settle, on_event)?;
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
    if runs.is_empty() && !bench.stop.is_stopped() {
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
        if let Some(c) = p.concurrency.as_mut()
            && c.retry_after.take().is_some()
        {
            dropped.push("a concurrency retry_after");
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
/// per-request logs are taken out of the run: once joined, they are the
/// audit's, and the mode's own summary stays small.
pub fn audit_and_join(run: &mut RunOutput) -> (accounting::ModeAudit, Vec<JoinedRequest>) {
    let lines = std::mem::take(&mut run.gateway_requests);
    let upstream = run.upstream_requests.take().unwrap_or_default();
    let mut mode = audit_of(run);
    mode.budget = run.scenario.gateway.policies.budget.map(|b| BudgetInfo {
        budget_s: b.budget.as_secs_f64(),
        window_s: b.window.as_secs_f64(),
        penalty_s: b.penalty.as_secs_f64(),
    });
    let Some(client) = &run.step.driver.requests else {
        return (mode, Vec::new());
    };
    let (joined, stats) = join::join(
        client,
        &run.step.key_names,
        &lines.lines,
        lines.dropped,
        &upstream,
    );
    accounting::add_join(&mut mode, &run.step.key_names, &joined, stats);
    (mode, joined)
}

/// The audit of one finished mode run, from its per-key totals.
pub fn audit_of(run: &RunOutput) -> accounting::ModeAudit {
    let clients: Vec<ClientKey> = run
        .step
        .driver
        .totals
        .keys
        .iter()
        .map(|k| ClientKey {
            abandoned: k.counts.class(Class::ClientTimeout),
            ok: k.counts.class(Class::Success),
            p99_us: k
                .latency_us()
                .filter(|h| !h.is_empty())
                .map_or(0, |h| h.value_at_quantile(0.99)),
        })
        .collect();
    accounting::mode_audit(
        &run.step.key_names,
        &clients,
        run.gateway.as_ref(),
        run.upstream.as_ref(),
        run.step.driver.duration_s,
    )
}
