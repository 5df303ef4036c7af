//! A find-limit step's row from its run (shares, goodput, the 2xx tail,
//! the upstream's CPU, and why it broke) and a class's answer from its rows
//! with the processor-sharing model beside it. Pure arithmetic over typed
//! results.

use std::time::Duration;

use super::search::{Answer, StepKind};
use super::{ClassResult, ClassSearch, StepRow};
use crate::analysis::ps_model;
use crate::experiment::run::RunOutput;
use crate::experiment::step::Tally;
use crate::outcome::Class;
use crate::scenario::FindLimitSpec;
use contend_units::fmt_us;

/// The row of one step from its run: shares and goodput over the measured
/// intervals (those wholly after the warm-up and inside the step).
#[allow(clippy::too_many_arguments)]
pub(super) fn step_row(
    class: &str,
    step: usize,
    kind: StepKind,
    limit: Option<u32>,
    rate_per_s: f64,
    spec: &FindLimitSpec,
    timeout: Duration,
    output: &RunOutput,
) -> StepRow {
    let window = Tally::of(output.step.inside());
    let n = |c: Class| window.count(c);
    let ok = &output.step.driver.totals.latency_by_class_us[Class::Success.index()];
    let q = |q: f64| {
        if ok.is_empty() {
            0
        } else {
            ok.value_at_quantile(q)
        }
    };
    // "P99 past the timeout" at the default bound of 1%; in general the
    // (1 - bound) quantile: more than `bound` of the 2xx later than the timeout.
    let timeout_us = timeout.as_micros() as u64;
    let late = if ok.is_empty() || ok.max() <= timeout_us {
        0
    } else {
        ok.count_between(timeout_us + 1, ok.max())
    };
    let share_2xx_late = if ok.is_empty() {
        0.0
    } else {
        round4(late as f64 / ok.len() as f64)
    };
    let upstream = output.upstream.as_ref().map(|t| &t.totals);
    let upstream_cpu_s = upstream.map(|t| round3(t.cpu_s));
    let mut row = StepRow {
        class: class.to_string(),
        step,
        kind,
        limit,
        rate_per_s: round3(rate_per_s),
        arrivals: window.outcomes(),
        goodput_per_s: round3(n(Class::Success) as f64 / window.seconds.max(1e-9)),
        share_2xx: window.share(&[Class::Success]),
        share_503: window.share(&[Class::Unavailable]),
        share_504: window.share(&[Class::GatewayTimeout]),
        share_client_timeout: window.share(&[Class::ClientTimeout]),
        share_other: window.share(&[
            Class::TooMany,
            Class::OtherStatus,
            Class::ConnectError,
            Class::TlsError,
            Class::IoError,
            Class::NotSent,
        ]),
        p50_2xx_us: q(0.5),
        p99_2xx_us: q(0.99),
        share_2xx_late,
        upstream_cpu_s,
        wasted_cpu_s: upstream.map(|t| round3(t.wasted_cpu_s)),
        // Its processes' CPU while the load ran, not the backlog it worked
        // off afterwards (which the truth's cpu_s includes).
        upstream_cores: output.step.cpu.upstream_cores().map(round3),
        broke: false,
        reason: String::new(),
    };
    let reasons = break_reasons(&row, spec);
    row.broke = !reasons.is_empty();
    row.reason = reasons.join("; ");
    row
}

/// Why a step's row breaks the limit: a share over the bound of 504s, of
/// client timeouts or of 2xx later than the timeout, or no outcomes at
/// all. Empty when it holds.
fn break_reasons(row: &StepRow, spec: &FindLimitSpec) -> Vec<String> {
    let mut reasons = Vec::new();
    if row.share_504 > spec.max_504_share {
        reasons.push(format!(
            "504 share {:.1}% > {:.1}%",
            row.share_504 * 100.0,
            spec.max_504_share * 100.0
        ));
    }
    if row.share_client_timeout > spec.max_504_share {
        reasons.push(format!(
            "client timeouts {:.1}%",
            row.share_client_timeout * 100.0
        ));
    }
    if row.share_2xx_late > spec.max_504_share {
        reasons.push(format!(
            "P{} of 2xx past the timeout ({:.1}% of 2xx later; P99 {})",
            round4(100.0 * (1.0 - spec.max_504_share)),
            row.share_2xx_late * 100.0,
            fmt_us(row.p99_2xx_us)
        ));
    }
    if row.arrivals == 0 {
        reasons.push("no outcomes in the measured part".into());
    }
    reasons
}

/// A class's answer from its rows, with the model beside it and the reason
/// for any difference.
pub(super) fn class_result(search: &ClassSearch, answer: Answer, interrupted: bool) -> ClassResult {
    let (class, cores, model, work, rows) = (
        search.name.as_str(),
        search.cores,
        search.model,
        search.work,
        &search.rows,
    );
    let timeout_s = search.timeout.as_secs_f64();
    let at: Vec<&StepRow> = rows
        .iter()
        .filter(|r| r.limit.is_some() && r.limit == answer.limit)
        .collect();
    let goodput = (!at.is_empty())
        .then(|| round3(at.iter().map(|r| r.goodput_per_s).sum::<f64>() / at.len() as f64));
    let p99 = at.iter().map(|r| r.p99_2xx_us).max();
    let baseline = rows.iter().find(|r| r.kind == StepKind::Baseline);
    // What the upstream really got at the answer: its cores while loaded,
    // and its CPU per request from its own accounting.
    let measured_cores = at
        .iter()
        .filter_map(|r| r.upstream_cores)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))));
    let model_limit_measured = match (measured_cores, work, model) {
        (Some(c), Some(w), Some(m)) => Some(ps_model::limit_constant(
            timeout_s,
            c.min(cores),
            m.cpu_s.max(w.mean_s()),
        )),
        _ => None,
    };
    let note = match (answer.limit, model) {
        (None, _) if answer.first_break.is_none() => {
            "no limit was measured (the search was cut short), so there is no answer".to_string()
        }
        (_, None) => "no model: the upstream's CPU per request is unknown".to_string(),
        (Some(l), Some(m)) if l == m.limit => "as the model".to_string(),
        (None, Some(m)) => format!("every candidate broke; the model gives {}", m.limit),
        (Some(l), Some(m)) => {
            // How much slower than the model the responses at the limit were.
            let predicted_us = ps_model::response_s(m.cpu_s, l, cores) * 1e6;
            let slower = p99.map_or(String::new(), |p| {
                format!(
                    "; at {l} the model predicts {} per response and the 2xx P99 was {} ({:.2}x)",
                    fmt_us(predicted_us.round() as u64),
                    fmt_us(p),
                    p as f64 / predicted_us.max(1.0)
                )
            });
            let got = measured_cores.map_or(String::new(), |c| {
                format!("; the upstream used {c:.2} cores while loaded")
            });
            let why = if l < m.limit {
                if cores > 1.0 {
                    "the model shares the cores as one fair queue; Linux keeps a run queue per CPU and balances threads between them late, and the gateway and the driver take CPU on the same cores"
                } else {
                    "the gateway, the driver and the kernel take CPU on the upstream's core, and a response spends time outside the upstream's CPU"
                }
            } else {
                "the upstream got more CPU than the model's cores (unpinned, or a quota not enforced)"
            };
            format!(
                "measured {l} against the model's {}{slower}{got}: {why}",
                m.limit
            )
        }
    };
    ClassResult {
        class: class.to_string(),
        cores,
        limit: answer.limit,
        first_break: answer.first_break,
        confirmed: answer.confirmed,
        model_limit: model.map(|m| m.limit),
        model_limit_measured,
        goodput_at_limit_per_s: goodput,
        p99_at_limit_us: p99,
        goodput_no_limit_per_s: baseline.map(|r| r.goodput_per_s),
        share_504_no_limit: baseline.map(|r| r.share_504),
        note: if interrupted {
            format!("INTERRUPTED before the search ended, not confirmed: {note}")
        } else {
            note
        },
        interrupted,
    }
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

pub(super) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
