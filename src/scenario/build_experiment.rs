//! The experiments' own sections: `[sweep]`, `[find_limit]` and
//! `[abort_audit]`, each read only by its `experiment = "..."`; and the
//! its specs.
//!
//! Takes their raw sections and the experiment kind; hands on a
//! [`SweepSpec`], a [`FindLimitSpec`] and an [`AbortAuditSpec`] (defaults
//! where a section is absent), or the first error, located.

use std::time::Duration;

use contend_units::de::Int;
use contend_units::format_duration;
use toml::Spanned;

use super::build::Ctx;
use super::check::{check_cpus, check_int, check_positive_duration, check_rate};
use super::raw::{
    HumanDuration, HumanRate, RawAbortAudit, RawArrival, RawBytes, RawCores, RawCpuList,
    RawFindLimit, RawHardware, RawSpacing, RawSweep,
};
use super::{
    AbortAuditSpec, ArrivalKind, ExperimentKind, FindLimitSpec, HardwareClass, MAX_DURATION,
    SweepSpec,
};
use crate::error::Result;

/// A load step's warm-up (0 allowed) and measured duration (more than 0),
/// checked alike in every section that has steps; `defaults` stand where
/// the file is silent.
fn build_step_timing(
    ctx: &Ctx,
    section: &str,
    warmup: Option<&Spanned<HumanDuration>>,
    duration: Option<&Spanned<HumanDuration>>,
    defaults: (Duration, Duration),
) -> Result<(Duration, Duration)> {
    let (mut warmup_d, mut duration_d) = defaults;
    if let Some(w) = warmup {
        ctx.check(w, |d| {
            if d.0 > MAX_DURATION {
                Err(format!(
                    "[{section}] warmup is longer than {}",
                    format_duration(MAX_DURATION)
                ))
            } else {
                Ok(())
            }
        })?;
        warmup_d = w.get_ref().0;
    }
    if let Some(d) = duration {
        ctx.check(d, |d| {
            check_positive_duration(&format!("[{section}] duration"), d.0, MAX_DURATION)
        })?;
        duration_d = d.get_ref().0;
    }
    Ok((warmup_d, duration_d))
}

/// A step's warm-up must end on a reporting-interval boundary and its
/// measured part hold at least one whole interval: a step's figures are
/// added up from the intervals after its warm-up, so an interval that
/// straddles the warm-up's end would drop the measured part's start (or
/// all of it) and the step would report work it never measured.
pub(super) fn check_step_intervals(
    ctx: &Ctx,
    section: &str,
    spans: (
        Option<&Spanned<HumanDuration>>,
        Option<&Spanned<HumanDuration>>,
    ),
    whole_section: Option<std::ops::Range<usize>>,
    (warmup, duration): (Duration, Duration),
    interval: Duration,
) -> Result<()> {
    let interval_ns = interval.as_nanos().max(1);
    let locate = |span: Option<&Spanned<HumanDuration>>, message: String| match span
        .map(|s| s.span())
        .or(whole_section.clone())
    {
        Some(span) => ctx.at(span, message),
        None => ctx.whole(message),
    };
    if warmup.as_nanos() % interval_ns != 0 {
        return Err(locate(
            spans.0,
            format!(
                "[{section}] warmup {} is not a whole number of reporting intervals ([client] interval = {}): \
                 the measured part must begin on an interval boundary; set warmup to a multiple of the \
                 interval, or a [client] interval that divides it",
                format_duration(warmup),
                format_duration(interval)
            ),
        ));
    }
    if duration < interval {
        return Err(locate(
            spans.1,
            format!(
                "[{section}] duration {} is shorter than one reporting interval ([client] interval = {}): \
                 a step is measured over whole intervals; set a duration of at least the interval, or a \
                 shorter [client] interval",
                format_duration(duration),
                format_duration(interval)
            ),
        ));
    }
    Ok(())
}

/// `[find_limit]`: only with `experiment = "find-limit"` (which runs on
/// defaults without it); bounds in range, hardware classes well formed.
pub(super) fn build_find_limit(
    ctx: &Ctx,
    raw: Option<&Spanned<RawFindLimit>>,
    experiment: ExperimentKind,
) -> Result<FindLimitSpec> {
    let mut spec = FindLimitSpec::default();
    let Some(spanned) = raw else { return Ok(spec) };
    if experiment != ExperimentKind::FindLimit {
        return Err(ctx.at(
            spanned.span(),
            "[find_limit] is read only by experiment = \"find-limit\": add that line, or remove the section",
        ));
    }
    let raw = spanned.get_ref();
    let int = |v: &Option<Spanned<Int>>, what: &str, low: i64, high: i64| -> Result<Option<u32>> {
        match v {
            Some(n) => {
                ctx.check(n, |n| check_int(what, n.0, low, high))?;
                Ok(Some(n.get_ref().0 as u32))
            }
            None => Ok(None),
        }
    };
    spec.min = int(&raw.min, "[find_limit] min", 1, 100_000)?.unwrap_or(spec.min);
    spec.max = int(&raw.max, "[find_limit] max", 1, 100_000)?.unwrap_or(spec.max);
    if spec.min > spec.max {
        let span = raw
            .max
            .as_ref()
            .or(raw.min.as_ref())
            .map_or(spanned.span(), |v| v.span());
        return Err(ctx.at(
            span,
            format!(
                "[find_limit] min ({}) is above max ({}): the candidates are min..=max",
                spec.min, spec.max
            ),
        ));
    }
    spec.start = int(&raw.start, "[find_limit] start", 1, 100_000)?;
    if let Some(start) = &raw.start
        && !(spec.min..=spec.max).contains(&(start.get_ref().0 as u32))
    {
        return Err(ctx.at(
            start.span(),
            format!(
                "[find_limit] start must lie in min..=max ({}..={})",
                spec.min, spec.max
            ),
        ));
    }
    if let Some(r) = &raw.rate {
        ctx.check(r, |r| check_rate("[find_limit] rate", r.0))?;
        spec.rate = Some(r.get_ref().0);
    }
    (spec.warmup, spec.duration) = build_step_timing(
        ctx,
        "find_limit",
        raw.warmup.as_ref(),
        raw.duration.as_ref(),
        (spec.warmup, spec.duration),
    )?;
    if let Some(share) = &raw.max_504_share {
        ctx.check(share, |s| {
            if s.0 >= 0.0 && s.0 < 1.0 { Ok(()) } else { Err(format!("[find_limit] max_504_share is a share of arrivals, at least 0 and below 1 (0.01 is 1%), got {}", s.0)) }
        })?;
        spec.max_504_share = share.get_ref().0;
    }
    spec.repeats = int(&raw.repeats, "[find_limit] repeats", 1, 20)?.unwrap_or(spec.repeats);
    spec.max_steps =
        int(&raw.max_steps, "[find_limit] max_steps", 1, 1000)?.unwrap_or(spec.max_steps);
    if let Some(b) = raw.baseline {
        spec.baseline = b;
    }
    for class in raw.hardware.iter().flatten() {
        spec.hardware.push(hardware_class(ctx, class)?);
    }
    Ok(spec)
}

/// One `hardware = [...]` entry: `{ cpuset = "0,1" }` (or a list of
/// CPUs), `{ cpus = 1.5 }` (a CPU quota in cores), `{ memory = "512MiB" }`,
/// or a combination; at least one.
fn hardware_class(ctx: &Ctx, class: &Spanned<RawHardware>) -> Result<HardwareClass> {
    let h = class.get_ref();
    let at = |m: String| ctx.at(class.span(), m);
    let mut out = HardwareClass::default();
    if let Some(set) = &h.cpuset {
        let text = cpu_list(set).ok_or_else(|| {
            at("[find_limit] hardware cpuset is empty: list at least one CPU, e.g. [0]".into())
        })?;
        check_cpus("[find_limit] hardware cpuset", &text).map_err(&at)?;
        out.cpuset = Some(text);
    }
    match &h.cpus {
        None => {}
        Some(RawCores::Cores(q)) if q.0.is_finite() && q.0 >= 0.01 && q.0 <= 1024.0 => {
            out.cpus = Some(q.0);
        }
        Some(RawCores::Cores(q)) => {
            return Err(at(format!(
                "[find_limit] hardware cpus is a CPU quota in cores, at least 0.01 (1.5 is one and a half cores), got {}",
                q.0
            )));
        }
        Some(RawCores::List(list)) => {
            let shown = cpu_list(list).unwrap_or_default();
            return Err(at(format!(
                "[find_limit] hardware cpus is a CPU quota in cores (cpus = 1.5, as a Kubernetes CPU limit), \
                 not a CPU list: to pin CPUs write {{ cpuset = \"{shown}\" }}"
            )));
        }
    }
    if let Some(memory) = &h.memory {
        out.memory_bytes = Some(memory_bytes(memory).map_err(&at)?);
    }
    if out == HardwareClass::default() {
        return Err(at(
            "[find_limit] a hardware class needs cpuset = \"1\" (pinned CPUs), cpus = 1.5 (a CPU quota in cores) \
             or memory = \"512MiB\" (a memory limit), or a combination"
                .into(),
        ));
    }
    Ok(out)
}

/// A CPU list as text (`"0,1"`), `None` when an empty list was given.
fn cpu_list(list: &RawCpuList) -> Option<String> {
    match list {
        RawCpuList::Text(t) => Some(t.clone()),
        RawCpuList::List(l) if !l.is_empty() => {
            Some(l.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
        }
        RawCpuList::List(_) => None,
    }
}

/// Smallest memory limit taken: below it no component starts.
const MIN_MEMORY: u64 = 8 << 20;

/// A memory size: bytes, or a number with `KiB`, `MiB`, `GiB` (powers of
/// 1024; `Ki`, `Mi`, `Gi` too) or `KB`, `MB`, `GB` (powers of 1000; `K`,
/// `M`, `G` too).
fn memory_bytes(raw: &RawBytes) -> Result<u64, String> {
    let expected = "expected bytes like \"512MiB\", \"2GiB\" or 536870912";
    let bytes = match raw {
        RawBytes::Count(n) => u64::try_from(n.0).map_err(|_| {
            format!(
                "[find_limit] hardware memory {} is not a size: {expected}",
                n.0
            )
        })?,
        RawBytes::Text(text) => {
            let t = text.trim();
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (number, unit) = t.split_at(split);
            let scale: f64 = match unit.trim() {
                "" | "B" => 1.0,
                "KiB" | "Ki" => 1024.0,
                "MiB" | "Mi" => 1024.0 * 1024.0,
                "GiB" | "Gi" => 1024.0 * 1024.0 * 1024.0,
                "KB" | "K" | "k" => 1e3,
                "MB" | "M" => 1e6,
                "GB" | "G" => 1e9,
                _ => f64::NAN,
            };
            let value: f64 = number.parse().unwrap_or(f64::NAN);
            let bytes = value * scale;
            if !bytes.is_finite() {
                return Err(format!(
                    "[find_limit] hardware memory {} is not a size: {expected}",
                    super::quoted(t)
                ));
            }
            bytes.round() as u64
        }
    };
    if bytes < MIN_MEMORY {
        return Err(format!(
            "[find_limit] hardware memory {bytes} bytes is too small for a component to start: at least \"8MiB\""
        ));
    }
    Ok(bytes)
}

/// `[sweep]`: only with `experiment = "sweep"`, which needs it; rates as a
/// list or as from/to/steps, concurrency, bounds in range.
pub(super) fn build_sweep(
    ctx: &Ctx,
    raw: Option<&Spanned<RawSweep>>,
    experiment: ExperimentKind,
) -> Result<SweepSpec> {
    let mut spec = SweepSpec::default();
    let Some(spanned) = raw else {
        if experiment == ExperimentKind::Sweep {
            return Err(ctx.whole(
                "experiment = \"sweep\" needs a [sweep] section: add rates = [250, 500, 1000] \
                 (or from = 100, to = 2000, steps = 8) and/or concurrency = [1, 2, 4, 8]",
            ));
        }
        return Ok(spec);
    };
    if experiment != ExperimentKind::Sweep {
        return Err(ctx.at(
            spanned.span(),
            "[sweep] is read only by experiment = \"sweep\": add that line, or remove the section",
        ));
    }
    let raw = spanned.get_ref();
    spec.rates = sweep_rates(ctx, spanned)?;
    spec.concurrency = sweep_concurrency(ctx, raw)?;
    if spec.rates.is_empty() && spec.concurrency.is_empty() {
        return Err(ctx.at(
            spanned.span(),
            "[sweep] has no steps: add rates = [250, 500, 1000] (or from/to/steps) and/or concurrency = [1, 2, 4, 8]",
        ));
    }
    (spec.warmup, spec.duration) = build_step_timing(
        ctx,
        "sweep",
        raw.warmup.as_ref(),
        raw.duration.as_ref(),
        (spec.warmup, spec.duration),
    )?;
    if let Some(a) = raw.arrival {
        spec.arrival = match a {
            RawArrival::Constant => ArrivalKind::Constant,
            RawArrival::Poisson => ArrivalKind::Poisson,
        };
    }
    sweep_slo(ctx, raw, &mut spec)?;
    sweep_stop(ctx, raw, &mut spec)?;
    if let Some(s) = &raw.sensitivity {
        ctx.check(s, |s| {
            if s.0.is_finite() && s.0 > 0.0 && s.0 <= 100.0 { Ok(()) } else { Err(format!("[sweep] sensitivity must be more than 0 and at most 100 (1 is the paper's default), got {}", s.0)) }
        })?;
        spec.sensitivity = s.get_ref().0;
    }
    if let Some(k) = &raw.keep_alive_baseline {
        spec.keep_alive_baseline = *k.get_ref();
    }
    Ok(spec)
}

/// The open-loop rates of a `[sweep]`: a `rates` list, or `from`/`to` with
/// `steps` (and `spacing`), never both; none when neither is given.
fn sweep_rates(ctx: &Ctx, spanned: &Spanned<RawSweep>) -> Result<Vec<f64>> {
    let raw = spanned.get_ref();
    let range = [&raw.from, &raw.to]
        .into_iter()
        .flatten()
        .next()
        .map(|v| v.span());
    // `steps` and `spacing` shape a from/to range: where they were written, if at all.
    let steps_or_spacing = raw
        .steps
        .as_ref()
        .map(|v| v.span())
        .or(raw.spacing.as_ref().map(|v| v.span()));
    match (&raw.rates, range) {
        (Some(_), Some(other)) => Err(ctx.at(
            other,
            "[sweep] gives rates both as a list and as from/to: keep one",
        )),
        (Some(rates), None) => {
            if let Some(extra) = steps_or_spacing {
                return Err(ctx.at(
                    extra,
                    "[sweep] steps and spacing go with from/to, not with a rates list",
                ));
            }
            listed_rates(ctx, rates)
        }
        (None, Some(_)) => rate_range(ctx, spanned),
        (None, None) => match steps_or_spacing {
            Some(extra) => Err(ctx.at(extra, "[sweep] steps and spacing need from and to")),
            None => Ok(Vec::new()),
        },
    }
}

/// `rates = [250, "1k"]`: at least one, each a valid rate.
fn listed_rates(ctx: &Ctx, rates: &Spanned<Vec<Spanned<HumanRate>>>) -> Result<Vec<f64>> {
    if rates.get_ref().is_empty() {
        return Err(ctx.at(
            rates.span(),
            "[sweep] rates is empty: list at least one rate, e.g. [250, 500, \"1k\"]",
        ));
    }
    let mut listed = Vec::with_capacity(rates.get_ref().len());
    for r in rates.get_ref() {
        ctx.check(r, |r| check_rate("[sweep] rate", r.0))?;
        listed.push(r.get_ref().0);
    }
    Ok(listed)
}

/// `from`, `to` and `steps`: `steps` rates from `from` to `to`, evenly
/// spaced or (`spacing = "geometric"`) in a constant ratio, each rounded to
/// a thousandth per second.
fn rate_range(ctx: &Ctx, spanned: &Spanned<RawSweep>) -> Result<Vec<f64>> {
    let raw = spanned.get_ref();
    let (Some(from), Some(to)) = (&raw.from, &raw.to) else {
        return Err(ctx.at(
            spanned.span(),
            "[sweep] needs both from and to (and steps) for a range of rates",
        ));
    };
    ctx.check(from, |r| check_rate("[sweep] from", r.0))?;
    ctx.check(to, |r| check_rate("[sweep] to", r.0))?;
    let Some(steps) = &raw.steps else {
        return Err(ctx.at(
            spanned.span(),
            "[sweep] from/to needs steps = N (the number of rates, 2 or more)",
        ));
    };
    ctx.check(steps, |n| check_int("[sweep] steps", n.0, 2, 1000))?;
    let n = steps.get_ref().0 as usize;
    let (a, b) = (from.get_ref().0, to.get_ref().0);
    let geometric = raw
        .spacing
        .as_ref()
        .is_some_and(|s| *s.get_ref() == RawSpacing::Geometric);
    Ok((0..n)
        .map(|i| {
            let t = i as f64 / (n - 1) as f64;
            if geometric {
                a * (b / a).powf(t)
            } else {
                a + (b - a) * t
            }
        })
        .map(|r| (r * 1000.0).round() / 1000.0)
        .collect())
}

/// `concurrency = [1, 2, 4]`: the closed-loop steps, when given at least one.
fn sweep_concurrency(ctx: &Ctx, raw: &RawSweep) -> Result<Vec<u32>> {
    let Some(list) = &raw.concurrency else {
        return Ok(Vec::new());
    };
    if list.get_ref().is_empty() {
        return Err(ctx.at(
            list.span(),
            "[sweep] concurrency is empty: list at least one, e.g. [1, 2, 4, 8]",
        ));
    }
    let mut steps = Vec::with_capacity(list.get_ref().len());
    for n in list.get_ref() {
        ctx.check(n, |n| check_int("[sweep] concurrency", n.0, 1, 10_000))?;
        steps.push(n.get_ref().0 as u32);
    }
    Ok(steps)
}

/// `slo` and `slo_percentile`: the bound of `max_rate_within_slo`.
fn sweep_slo(ctx: &Ctx, raw: &RawSweep, spec: &mut SweepSpec) -> Result<()> {
    if let Some(slo) = &raw.slo {
        ctx.check(slo, |d| {
            check_positive_duration("[sweep] slo", d.0, MAX_DURATION)
        })?;
        spec.slo = Some(slo.get_ref().0);
    }
    if let Some(p) = &raw.slo_percentile {
        ctx.check(p, |p| {
            if p.0 > 0.0 && p.0 < 100.0 {
                Ok(())
            } else {
                Err(format!(
                    "[sweep] slo_percentile must be between 0 and 100 (99 is P99), got {}",
                    p.0
                ))
            }
        })?;
        spec.slo_percentile = p.get_ref().0;
    }
    Ok(())
}

/// `stop_early`, `stop_error_share` and `stop_p99`: when a step is past
/// saturation and the open-loop steps end.
fn sweep_stop(ctx: &Ctx, raw: &RawSweep, spec: &mut SweepSpec) -> Result<()> {
    if let Some(stop) = raw.stop_early {
        spec.stop_early = stop;
    }
    if let Some(share) = &raw.stop_error_share {
        ctx.check(share, |s| {
            if s.0 > 0.0 && s.0 <= 1.0 { Ok(()) } else { Err(format!("[sweep] stop_error_share is a share of arrivals, more than 0 and at most 1 (0.5 is half), got {}", s.0)) }
        })?;
        spec.stop_error_share = share.get_ref().0;
    }
    if let Some(p99) = &raw.stop_p99 {
        ctx.check(p99, |d| {
            check_positive_duration("[sweep] stop_p99", d.0, MAX_DURATION)
        })?;
        spec.stop_p99 = Some(p99.get_ref().0);
    }
    Ok(())
}

/// `[abort_audit]`: only with `experiment = "abort-audit"`; modes known,
/// each once, at least one.
pub(super) fn build_abort_audit(
    ctx: &Ctx,
    raw: Option<Spanned<RawAbortAudit>>,
    experiment: ExperimentKind,
) -> Result<AbortAuditSpec> {
    let mut spec = AbortAuditSpec::default();
    let Some(raw) = raw else { return Ok(spec) };
    if experiment != ExperimentKind::AbortAudit {
        return Err(ctx.at(
            raw.span(),
            "[abort_audit] is read only by experiment = \"abort-audit\": add that line, or remove the section",
        ));
    }
    let raw = raw.into_inner();
    if let Some(modes) = raw.modes {
        if modes.get_ref().is_empty() {
            return Err(ctx.at(
                modes.span(),
                "[abort_audit] modes is empty: list at least one of \"reference-early\", \"reference-complete\", \"nginx-off\", \"nginx-on\"",
            ));
        }
        let mut seen = Vec::new();
        for mode in modes.get_ref() {
            if seen.contains(mode.get_ref()) {
                return Err(ctx.at(
                    mode.span(),
                    format!(
                        "[abort_audit] mode \"{}\" is listed twice: each mode runs once",
                        mode.get_ref().as_str()
                    ),
                ));
            }
            seen.push(*mode.get_ref());
        }
        spec.modes = seen;
    }
    if let Some(settle) = &raw.settle {
        ctx.check(settle, |d| {
            check_positive_duration("[abort_audit] settle", d.0, Duration::from_secs(3600))
        })?;
        spec.settle = settle.get_ref().0;
    }
    Ok(spec)
}
