//! From the file as written to a validated [`Scenario`]: the whole, its
//! name, its phases and its thresholds; and [`Ctx`], which turns a span of
//! the text into `file:line:col` for every builder.
//!
//! Takes a [`RawScenario`] and the command-line [`Overrides`]; hands on a
//! [`Scenario`] or the first error, located. Each section has its builder,
//! here or in a sibling (`build_client`, `build_target`,
//! `build_experiment`), called in the order of [`build`], so the first
//! problem of a file is always the one reported.

use std::ops::Range;
use std::path::PathBuf;

use contend_units::located::{line_col, location};
use toml::Spanned;

use super::build_client::{build_any_keys, build_client, build_request, build_shard};
use super::build_experiment::{
    build_abort_audit, build_find_limit, build_sweep, check_step_intervals,
};
use super::build_target::{build_gateway, build_scrape, build_target};
use super::check::{
    check_name, check_positive_duration, check_ramp, check_ramp_end, check_rate, check_rate_value,
};
use super::raw::{RawArrival, RawPhase, RawRate, RawScenario, RawThresholds};
use super::variants::build_variants;
use super::{
    AbortAuditSpec, ArrivalKind, COMMAND_LINE, ClientSpec, DEFAULT_PHASE_DURATION, Experiment,
    ExperimentKind, GatewayKind, GatewaySpec, KeySpec, Load, MAX_DURATION, Overrides, Phase, Rate,
    Scenario, ScenarioThreshold, Source, SweepSpec, Target, threshold_location,
};
use crate::error::{Error, Result};

/// The text being parsed and where it came from, to turn spans into locations.
pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) source: &'a Source,
}

impl Ctx<'_> {
    /// An error at a byte span of the text: `path:line:col`.
    pub(super) fn at(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        let location = match self.source {
            Source::File(path) => location(path, self.text, Some(span)),
            Source::Flags => COMMAND_LINE.to_string(),
        };
        Error::Scenario {
            location,
            message: message.into(),
        }
    }

    /// An error about the file as a whole (no position applies).
    pub(super) fn whole(&self, message: impl Into<String>) -> Error {
        let location = match self.source {
            Source::File(path) => path.display().to_string(),
            Source::Flags => COMMAND_LINE.to_string(),
        };
        Error::Scenario {
            location,
            message: message.into(),
        }
    }

    /// Checks a spanned value with `check`, locating its message at the value.
    pub(super) fn check<T>(
        &self,
        value: &Spanned<T>,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<()> {
        check(value.get_ref()).map_err(|m| self.at(value.span(), m))
    }
}

/// An error about a command-line flag.
pub(super) fn cli(message: impl Into<String>) -> Error {
    Error::Scenario {
        location: COMMAND_LINE.to_string(),
        message: message.into(),
    }
}

pub(super) fn build(ctx: &Ctx, raw: RawScenario, overrides: &Overrides) -> Result<Scenario> {
    let name = build_name(ctx, raw.name.as_ref(), overrides)?;
    let kind = raw.experiment.unwrap_or_default();
    let sweep = build_sweep(ctx, raw.sweep.as_ref(), kind)?;
    let find_limit = build_find_limit(ctx, raw.find_limit.as_ref(), kind)?;
    // A sweep's and a find-limit's load is their steps, from their sections.
    let section = match kind {
        ExperimentKind::Sweep => Some("[sweep] (rates or concurrency)"),
        ExperimentKind::FindLimit => Some("[find_limit] (rate, warmup, duration)"),
        ExperimentKind::Run | ExperimentKind::AbortAudit | ExperimentKind::Quota => None,
    };
    let phases = match (section, &raw.phases) {
        (Some(section), Some(listed)) => {
            return Err(ctx.at(
                listed.span(),
                format!(
                    "experiment = \"{}\" takes its load from {section}, not [[phases]]: remove the phases",
                    kind.as_str()
                ),
            ));
        }
        (Some(_), None) => Vec::new(),
        (None, _) => build_phases(ctx, raw.phases.as_ref(), overrides)?,
    };
    let mut request = build_request(ctx, raw.request)?;
    let target = build_target(
        ctx,
        raw.target.as_ref(),
        raw.upstream.as_ref(),
        overrides,
        &mut request,
    )?;
    let (keys, key_space) = build_any_keys(ctx, raw.keys)?;
    let mut client = build_client(ctx, raw.client, overrides, kind, &request, &keys)?;
    client.shard = build_shard(ctx, raw.shards.as_ref(), overrides)?;
    match kind {
        ExperimentKind::Sweep => check_step_intervals(
            ctx,
            "sweep",
            raw.sweep.as_ref().map_or((None, None), |s| {
                (s.get_ref().warmup.as_ref(), s.get_ref().duration.as_ref())
            }),
            raw.sweep.as_ref().map(|s| s.span()),
            (sweep.warmup, sweep.duration),
            client.interval,
        )?,
        ExperimentKind::FindLimit => check_step_intervals(
            ctx,
            "find_limit",
            raw.find_limit.as_ref().map_or((None, None), |s| {
                (s.get_ref().warmup.as_ref(), s.get_ref().duration.as_ref())
            }),
            raw.find_limit.as_ref().map(|s| s.span()),
            (find_limit.warmup, find_limit.duration),
            client.interval,
        )?,
        ExperimentKind::Run | ExperimentKind::AbortAudit | ExperimentKind::Quota => {}
    }
    if sweep.keep_alive_baseline && client.reuse {
        let span = raw.sweep.as_ref().map(|s| s.span());
        let message = "[sweep] keep_alive_baseline sets each step beside its keep-alive twin, so the steps \
                       themselves need a new connection per request: add [client] reuse = false";
        return Err(match span {
            Some(span) => ctx.at(span, message),
            None => ctx.whole(message),
        });
    }
    refuse_closed_loop_retries(ctx, &client, &keys, overrides, &sweep)?;
    let gateway = match raw.gateway {
        Some(g) => build_gateway(ctx, g, raw.target.is_some() || raw.upstream.is_some())?,
        None => GatewaySpec::default(),
    };
    check_gateway_target(ctx, &gateway, &target)?;
    let mut gateway = gateway;
    gateway.store = super::store::build_store(ctx, raw.store, &gateway)?;
    let thresholds = build_thresholds(ctx, raw.thresholds)?;
    let scrape = build_scrape(ctx, raw.scrape)?;
    let variants = match raw.variants {
        Some(list) => build_variants(
            ctx,
            list,
            kind == ExperimentKind::Run && overrides.connections.is_none(),
            gateway.kind,
        )?,
        None => Vec::new(),
    };
    let run_load = (matches!(kind, ExperimentKind::Run | ExperimentKind::Quota)
        && overrides.connections.is_none())
    .then(|| phases.iter().map(|p| p.duration).sum());
    let faults = super::store::build_faults(
        ctx,
        raw.faults,
        &gateway,
        gateway.store.as_ref(),
        &target,
        run_load,
    )?;
    let abort_audit = build_abort_audit(ctx, raw.abort_audit, kind)?;
    let experiment = match kind {
        ExperimentKind::Run => Experiment::Run(match overrides.connections {
            // Closed loop: the phases give only the duration.
            Some(connections) => Load::Closed {
                connections,
                duration: phases.iter().map(|p| p.duration).sum(),
            },
            None => Load::Open(phases),
        }),
        ExperimentKind::Sweep => Experiment::Sweep(sweep),
        ExperimentKind::FindLimit => Experiment::FindLimit(find_limit),
        ExperimentKind::AbortAudit => Experiment::AbortAudit(AbortAuditSpec {
            phases,
            ..abort_audit
        }),
        ExperimentKind::Quota => Experiment::Quota(super::store::build_quota(
            ctx,
            phases,
            &gateway,
            &keys,
            key_space.as_ref(),
            overrides.connections.is_some(),
        )?),
    };
    Ok(Scenario {
        name,
        experiment,
        target,
        request,
        keys,
        key_space,
        client,
        gateway,
        thresholds,
        scrape,
        variants,
        faults,
    })
}

/// A closed-loop client is blocked on its own retry: its waits would be the
/// load's pacing, not a schedule's, so retries are refused there.
fn refuse_closed_loop_retries(
    ctx: &Ctx,
    client: &ClientSpec,
    keys: &[KeySpec],
    overrides: &Overrides,
    sweep: &SweepSpec,
) -> Result<()> {
    let retrying = client.retry.as_ref().is_some_and(|r| r.is_on())
        || keys
            .iter()
            .any(|k| k.retry.as_ref().is_some_and(|r| r.is_on()));
    if retrying && (overrides.connections.is_some() || !sweep.concurrency.is_empty()) {
        return Err(ctx.whole(
            "retries apply to open-loop load (a schedule of arrivals); a closed loop (--connections, or \
             [sweep] concurrency) cannot retry: drop the retry policy, or use rates",
        ));
    }
    Ok(())
}

/// A gateway contend starts in front of the target takes one plain-HTTP
/// upstream: not several addresses, not https://.
fn check_gateway_target(ctx: &Ctx, gateway: &GatewaySpec, target: &Target) -> Result<()> {
    if let (GatewayKind::Reference | GatewayKind::Nginx | GatewayKind::Haproxy, Target::Urls(..)) =
        (gateway.kind, target)
    {
        return Err(ctx.whole(
            "[target] urls spreads the driver over several addresses, but the gateway contend starts takes one \
             upstream: give [target] url = \"http://HOST:PORT\", or drive the addresses directly (remove [gateway])",
        ));
    }
    if let (GatewayKind::Reference | GatewayKind::Nginx | GatewayKind::Haproxy, Target::Url(url)) =
        (gateway.kind, target)
    {
        if url.starts_with("https://") {
            return Err(ctx.whole(format!(
                "the upstream {url} is https://, but the gateway contend starts in front of it speaks plain \
                 HTTP to its upstream: give an http:// upstream, or drive the https:// server directly \
                 (remove [gateway])"
            )));
        }
    }
    Ok(())
}

fn build_name(ctx: &Ctx, raw: Option<&Spanned<String>>, overrides: &Overrides) -> Result<String> {
    if let Some(name) = &overrides.name {
        check_name("--name", name).map_err(cli)?;
        return Ok(name.clone());
    }
    if let Some(name) = raw {
        ctx.check(name, |n| check_name("name", n))?;
        return Ok(name.get_ref().clone());
    }
    // Default: the file stem, made fit for a folder name.
    let stem = match ctx.source {
        Source::File(path) => path.file_stem().map(|s| s.to_string_lossy().into_owned()),
        Source::Flags => None,
    };
    let cleaned: String = stem
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    Ok(if cleaned.is_empty() {
        "run".to_string()
    } else {
        cleaned.to_string()
    })
}

fn build_phases(
    ctx: &Ctx,
    raw: Option<&Spanned<Vec<Spanned<RawPhase>>>>,
    overrides: &Overrides,
) -> Result<Vec<Phase>> {
    if let Some(rate) = overrides.rate {
        check_rate_value("--rate", rate).map_err(cli)?;
    }
    if let Some(d) = overrides.duration {
        check_positive_duration("--duration", d, MAX_DURATION).map_err(cli)?;
    }
    let listed = raw.map_or(&[][..], |p| p.get_ref().as_slice());
    // Closed loop: no schedule, so no rate (a rate of 0 yields no arrivals).
    let closed_rate = overrides.connections.map(|_| Rate::Constant(0.0));
    if listed.is_empty() {
        let Some(rate) = overrides.rate.or(closed_rate) else {
            let fix = "add at least one [[phases]] table with rate = \"1k\" and duration = \"10s\" (or give --rate)";
            return Err(match raw {
                Some(list) => ctx.at(list.span(), format!("the phase list is empty: {fix}")),
                None => ctx.whole(format!("no [[phases]]: {fix}")),
            });
        };
        return Ok(vec![Phase {
            rate,
            duration: overrides.duration.unwrap_or(DEFAULT_PHASE_DURATION),
            arrival: overrides.arrival.unwrap_or(ArrivalKind::Constant),
        }]);
    }
    let mut phases = Vec::with_capacity(listed.len());
    for (i, spanned) in listed.iter().enumerate() {
        let number = i + 1;
        let phase = spanned.get_ref();
        let rate = match (overrides.rate.or(closed_rate), &phase.rate) {
            (Some(rate), _) => rate,
            (None, Some(rate)) => build_rate(ctx, number, rate)?,
            (None, None) => {
                return Err(ctx.at(
                    spanned.span(),
                    format!("phase {number} has no rate: add rate = \"20k\" (or a ramp, rate = {{ from = \"1k\", to = \"20k\" }})"),
                ));
            }
        };
        let duration = match (overrides.duration, &phase.duration) {
            (Some(d), _) => d,
            (None, Some(d)) => {
                let what = format!("phase {number} duration");
                ctx.check(d, |d| check_positive_duration(&what, d.0, MAX_DURATION))?;
                d.get_ref().0
            }
            (None, None) => {
                return Err(ctx.at(
                    spanned.span(),
                    format!("phase {number} has no duration: add duration = \"10s\""),
                ));
            }
        };
        let arrival = overrides.arrival.unwrap_or(match phase.arrival {
            Some(RawArrival::Poisson) => ArrivalKind::Poisson,
            Some(RawArrival::Constant) | None => ArrivalKind::Constant,
        });
        phases.push(Phase {
            rate,
            duration,
            arrival,
        });
    }
    Ok(phases)
}

fn build_rate(ctx: &Ctx, number: usize, raw: &Spanned<RawRate>) -> Result<Rate> {
    let what = format!("phase {number} rate");
    match raw.get_ref() {
        RawRate::Constant(r) => {
            check_rate(&what, *r).map_err(|m| ctx.at(raw.span(), m))?;
            Ok(Rate::Constant(*r))
        }
        RawRate::Ramp { from, to } => {
            let example = "e.g. rate = { from = \"1k\", to = \"20k\" }";
            let (from, to) = match (from, to) {
                (Some(f), Some(t)) => (f, t),
                (Some(_), None) => {
                    return Err(ctx.at(
                        raw.span(),
                        format!("{what} is a ramp with no `to`: give both ends, {example}"),
                    ));
                }
                (None, Some(_)) => {
                    return Err(ctx.at(
                        raw.span(),
                        format!("{what} is a ramp with no `from`: give both ends, {example}"),
                    ));
                }
                (None, None) => {
                    return Err(ctx.at(
                        raw.span(),
                        format!("{what} is an empty table: give a rate like \"20k\" or a ramp, {example}"),
                    ));
                }
            };
            ctx.check(from, |r| check_ramp_end(&format!("{what} `from`"), r.0))?;
            ctx.check(to, |r| check_ramp_end(&format!("{what} `to`"), r.0))?;
            let (from, to) = (from.get_ref().0, to.get_ref().0);
            check_ramp(&what, from, to).map_err(|m| ctx.at(raw.span(), m))?;
            Ok(Rate::Ramp { from, to })
        }
    }
}

/// Parses `[thresholds] checks`, locating a malformed one at its character
/// (the string's opening quote plus the column within the expression; exact
/// for strings without escapes).
fn build_thresholds(ctx: &Ctx, raw: Option<RawThresholds>) -> Result<Vec<ScenarioThreshold>> {
    let checks = raw.and_then(|t| t.checks).unwrap_or_default();
    let file = match ctx.source {
        Source::File(path) => path.clone(),
        Source::Flags => PathBuf::from(COMMAND_LINE),
    };
    checks
        .iter()
        .map(|check| {
            let (line, col) = line_col(ctx.text, check.span().start + 1);
            let written_at = (file.clone(), line, col);
            let threshold = crate::threshold::Threshold::parse(check.get_ref()).map_err(|e| {
                Error::Scenario {
                    location: threshold_location(&written_at, e.col),
                    message: format!("threshold `{}`: {}", check.get_ref(), e.message),
                }
            })?;
            Ok(ScenarioThreshold {
                threshold,
                written_at,
            })
        })
        .collect()
}
