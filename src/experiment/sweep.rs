//! The `sweep` experiment: offered load in steps, one result row per step.
//!
//! Takes a [`Bench`] whose scenario has a [`SweepSpec`]; starts the
//! topology once; runs each open-loop rate step (warm-up, then the measured
//! part, in one step so the queue is never drained between them) and then
//! each closed-loop concurrency step, every one a [`step`] of its own;
//! stops the open-loop steps early past saturation; hands on a
//! [`SweepOutput`]: the open-loop steps as one [`RunOutput`] (so every
//! usual report file is written) plus a [`SweepResult`] with the step rows
//! and the analyses (knee, USL fit, max rate within the SLO). It draws
//! nothing and writes no file.
//!
//! Closed-loop steps are the driver's closed loop: N clients, each with one
//! request in flight, every key by its weight, timeouts counted from each
//! request's intended send time (its send, in a closed loop). In closed
//! loop the next request waits for the last response, so latency there is
//! service time: it hides queueing that an open-loop client would see.
//! Those steps exist for the USL fit of throughput against concurrency, and
//! the report says so.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::run::{self, RunOutput};
use super::step::{self, Step, StepCpu, StepResult, Tally};
use super::{Bench, Event};
use crate::analysis::{knee, usl};
use crate::driver::{DriverOutput, Load};
use crate::error::Result;
use crate::outcome::Class;
use crate::record::Totals;
use crate::scenario::{Phase, Rate, SweepSpec};
use crate::topology::Topology;
use contend_units::fmt_us;

/// One open-loop step's measured result (a row of `steps.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    /// Step number, from 1.
    pub step: usize,
    /// The rate the step asked for, per second.
    pub rate_per_s: f64,
    /// When the step (its warm-up) began, s from the sweep start.
    pub start_s: f64,
    /// Arrivals dispatched per second in the measured part.
    pub offered_per_s: f64,
    /// Throughput: complete responses (any status) per second while the
    /// step offered load, counted by completion time in the intervals that
    /// lie wholly inside the measured part. Past capacity it levels off at
    /// what the target can serve, while the offered load keeps rising.
    pub achieved_per_s: f64,
    /// 2xx responses per second, counted as `achieved_per_s` is.
    pub goodput_per_s: f64,
    /// Arrivals (each has one outcome) in the measured part.
    pub arrivals: u64,
    /// Shares of outcomes, 0 to 1: 2xx.
    pub share_2xx: f64,
    /// 429.
    pub share_429: f64,
    /// 503.
    pub share_503: f64,
    /// 504.
    pub share_504: f64,
    /// Any other status.
    pub share_other_status: f64,
    /// Client timeouts.
    pub share_timeout: f64,
    /// Connect and I/O errors, and arrivals not sent (connection cap).
    pub share_error: f64,
    /// Latency from the intended send time, us: median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// The SLO's percentile of latency (equal to `p99_us` for P99), us.
    pub slo_percentile_us: u64,
    /// Schedule lag: the highest interval P99 in the measured part, us.
    pub lag_p99_us: u64,
    /// Cores the mock upstream spent on CPU work over the step (warm-up
    /// included), when the upstream is the mock.
    pub upstream_cpu_cores: Option<f64>,
    /// The cores the upstream's processes used in the measured part (the
    /// intervals wholly inside it), when the harness started it.
    #[serde(default)]
    pub upstream_cores: Option<f64>,
    /// The upstream's CPU per request it handled in the measured part (by its own count), us.
    #[serde(default)]
    pub upstream_cpu_per_request_us: Option<f64>,
    /// The upstream's most resident memory in the measured part, bytes.
    #[serde(default)]
    pub upstream_rss_bytes: Option<u64>,
    /// The cores the gateway's processes used in the measured part, when
    /// the harness started it.
    #[serde(default)]
    pub gateway_cores: Option<f64>,
    /// The gateway's CPU per request it handled in the measured part (by its own count), us.
    #[serde(default)]
    pub gateway_cpu_per_request_us: Option<f64>,
    /// The gateway's most resident memory in the measured part, bytes.
    #[serde(default)]
    pub gateway_rss_bytes: Option<u64>,
    /// True when the step is past saturation (error share or P99 over the
    /// stop-early bounds).
    pub past_saturation: bool,
    /// Connections opened per second over the step (warm-up included).
    #[serde(default)]
    pub new_connections_per_s: f64,
    /// TLS handshake time p99 of the step's new connections, us (0 in cleartext).
    #[serde(default)]
    pub tls_handshake_p99_us: u64,
    /// The gateway's CPU per response over the step, us, when the harness
    /// started the gateway.
    #[serde(default)]
    pub gateway_cpu_us_per_request: Option<f64>,
    /// `keep_alive_baseline`: the keep-alive twin's latency median, us.
    #[serde(default)]
    pub keep_alive_p50_us: Option<u64>,
    /// The keep-alive twin's latency P99, us.
    #[serde(default)]
    pub keep_alive_p99_us: Option<u64>,
    /// The keep-alive twin's gateway CPU per response, us.
    #[serde(default)]
    pub keep_alive_gateway_cpu_us_per_request: Option<f64>,
}

/// One closed-loop step's result (a row of `concurrency.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedStepRow {
    /// Requests kept in flight.
    pub concurrency: u32,
    /// Complete responses per second in the measured part.
    pub throughput_per_s: f64,
    /// 2xx responses per second.
    pub goodput_per_s: f64,
    /// Exchanges that ended without a response (timeouts, errors).
    pub errors: u64,
    /// Service time (closed loop: send to response), us: median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// A knee found on a sweep curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KneePoint {
    /// Offered load at the knee, per second.
    pub offered_per_s: f64,
    /// The curve's value there (P99 in us, or achieved per second).
    pub value: f64,
    /// Height of Kneedle's normalised difference curve, 0 to 1.
    pub strength: f64,
}

/// What a sweep found: the rows and the analyses over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    /// Open-loop steps run, in order.
    pub steps: Vec<StepRow>,
    /// Why the open-loop steps stopped before the last rate, if they did.
    pub stopped_early: Option<String>,
    /// Warm-up before each step's measurement, s.
    pub warmup_s: f64,
    /// Measured length of each step, s.
    pub step_duration_s: f64,
    /// Kneedle sensitivity used.
    pub sensitivity: f64,
    /// Knee of P99 against offered load (value in us).
    pub knee: Option<KneePoint>,
    /// Knee of achieved throughput against offered load (value per second).
    pub throughput_knee: Option<KneePoint>,
    /// The SLO's latency bound, us.
    pub slo_us: Option<u64>,
    /// The percentile the SLO bounds (99 is P99).
    pub slo_percentile: f64,
    /// Highest offered rate whose SLO percentile stays under the SLO,
    /// interpolated between steps, per second.
    pub max_rate_within_slo_per_s: Option<f64>,
    /// Closed-loop steps run, in order.
    pub concurrency_steps: Vec<ClosedStepRow>,
    /// USL fit of throughput against concurrency (3 or more closed-loop steps).
    pub usl: Option<usl::UslFit>,
    /// True when Ctrl-C or SIGTERM cut the sweep short: the answers come
    /// from the steps measured whole (a step cut short has no row), and the
    /// highest rate within the SLO is withheld unless a measured step
    /// crossed the SLO.
    #[serde(default)]
    pub interrupted: bool,
    /// With the SLO answer withheld for an interrupt: the highest rate
    /// measured within the SLO, which the answer is at least, per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_held_up_to_per_s: Option<f64>,
    /// True when the scenario's retry policy was compared (`--retries
    /// compare`): these rows are with it, [`Self::without_retries`] without.
    #[serde(default)]
    pub retries_compared: bool,
    /// The same sweep with no retry policy, on a fresh topology; `None`
    /// when not compared, or when a stop came before it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_retries: Option<Box<SweepResult>>,
}

/// Everything a sweep produced.
#[derive(Debug)]
pub struct SweepOutput {
    /// The open-loop steps as one run: totals merged over every step
    /// (warm-ups included), intervals end to end, accounting at the end.
    pub run: RunOutput,
    /// The rows and the analyses.
    pub result: SweepResult,
}

/// Longest wait for the upstream to finish the last step's work before the
/// next step starts.
const SETTLE: Duration = Duration::from_secs(10);

/// Runs the sweep of `spec` on one topology.
pub fn run(
    bench: &Bench,
    spec: &SweepSpec,
    on_event: &mut dyn FnMut(Event),
) -> Result<SweepOutput> {
    let scenario = bench.scenario;
    let mut topology = Topology::start(&scenario.target, &scenario.gateway, bench.exe)?;
    let mut warnings = Vec::new();
    let (mut open, steps, stopped_early) =
        open_steps(bench, spec, &mut topology, on_event, &mut warnings)?;
    let mut concurrency_steps = Vec::new();
    for &n in &spec.concurrency {
        if bench.stop.is_stopped() {
            break;
        }
        let step = Step {
            load: Load::Closed {
                connections: n as usize,
                duration: spec.warmup + spec.duration,
            },
            warmup: spec.warmup,
            reuse: None,
        };
        let result = step::run(bench, &mut topology, step, on_event)?;
        if result.driver.interrupted {
            break;
        }
        let row = closed_row(n, spec, &result);
        on_event(Event::Note(format!(
            "sweep: concurrency {}: {:.0} responses/s, service P99 {}",
            row.concurrency,
            row.throughput_per_s,
            fmt_us(row.p99_us)
        )));
        concurrency_steps.push(row);
        settle(&topology, &mut warnings);
    }
    // A stop between steps cuts the sweep short as surely as one inside a step.
    open.driver.interrupted |= bench.stop.is_stopped();
    let mut run = run::finish(bench, topology, open, SETTLE);
    warnings.append(&mut run.warnings);
    run.warnings = warnings;
    let result = analyse(
        spec,
        steps,
        stopped_early,
        concurrency_steps,
        run.step.driver.interrupted,
    );
    Ok(SweepOutput { run, result })
}

/// The open-loop rate steps in order, until the last, an interrupt, or a
/// step past saturation (with `stop_early`): the steps as one result, the
/// rows, and why they stopped early.
fn open_steps(
    bench: &Bench,
    spec: &SweepSpec,
    topology: &mut Topology,
    on_event: &mut dyn FnMut(Event),
    warnings: &mut Vec<String>,
) -> Result<(StepResult, Vec<StepRow>, Option<String>)> {
    let mut joined: Option<StepResult> = None;
    let mut rows: Vec<StepRow> = Vec::new();
    for (i, &rate) in spec.rates.iter().enumerate() {
        if bench.stop.is_stopped() {
            break;
        }
        on_event(Event::Note(format!(
            "sweep: step {}/{} at {rate:.0}/s",
            i + 1,
            spec.rates.len()
        )));
        // The same load on reused connections first, for the side by side.
        let twin = if spec.keep_alive_baseline {
            let step = Step {
                load: Load::Open(step_phases(spec, rate)),
                warmup: spec.warmup,
                reuse: Some(true),
            };
            let twin = step::run(bench, topology, step, on_event)?;
            settle(topology, warnings);
            let interrupted = twin.driver.interrupted;
            let figures = super::handshake::Twin::of(&twin);
            // Measured, so kept in the run's totals like every step.
            joined = Some(match joined {
                None => twin,
                Some(before) => append(before, twin),
            });
            if interrupted {
                break;
            }
            Some(figures)
        } else {
            None
        };
        let cpu_before = upstream_cpu_s(topology);
        let wall = std::time::Instant::now();
        let step = Step {
            load: Load::Open(step_phases(spec, rate)),
            warmup: spec.warmup,
            reuse: None,
        };
        let result = step::run(bench, topology, step, on_event)?;
        if result.driver.interrupted {
            // Cut short: its measurements stay in the run, but it has no row
            // (an unmeasured step answers nothing).
            joined = Some(match joined {
                None => result,
                Some(before) => append(before, result),
            });
            break;
        }
        let mut row = step_row(i + 1, rate, spec, &result);
        super::handshake::fill(&mut row, &result, twin);
        row.upstream_cpu_cores = match (cpu_before, upstream_cpu_s(topology)) {
            (Some(a), Some(b)) => Some(round3(
                (b - a).max(0.0) / wall.elapsed().as_secs_f64().max(1e-9),
            )),
            _ => None,
        };
        row.start_s = round3(joined.as_ref().map_or(0.0, |j| j.driver.duration_s));
        on_event(Event::Note(format!(
            "sweep: step {} done: {:.0}/s achieved, P99 {}{}",
            row.step,
            row.achieved_per_s,
            fmt_us(row.p99_us),
            if row.past_saturation {
                " (past saturation)"
            } else {
                ""
            }
        )));
        joined = Some(match joined {
            None => result,
            Some(before) => append(before, result),
        });
        let (past, p99, share_error) = (row.past_saturation, row.p99_us, 1.0 - row.share_2xx);
        rows.push(row);
        settle(topology, warnings);
        if past && spec.stop_early && i + 1 < spec.rates.len() {
            let why = format!(
                "stopped after step {} ({rate:.0}/s): past saturation (P99 {}, {:.1}% without a 2xx)",
                i + 1,
                fmt_us(p99),
                share_error * 100.0
            );
            return Ok((joined.unwrap_or_else(|| empty(bench)), rows, Some(why)));
        }
    }
    Ok((joined.unwrap_or_else(|| empty(bench)), rows, None))
}

/// `later` appended to `before`: totals merged, intervals end to end, the
/// phases as run.
fn append(mut before: StepResult, later: StepResult) -> StepResult {
    let offset_s = before.driver.duration_s;
    let index_offset = before.driver.intervals.len() as u64;
    before
        .telemetry
        .append(later.telemetry, index_offset, offset_s);
    for r in &later.driver.intervals {
        let mut r = r.clone();
        r.start_s += offset_s;
        r.index = before.driver.intervals.len() as u64;
        before.driver.intervals.push(r);
    }
    before.driver.totals.merge(&later.driver.totals);
    before.driver.duration_s += later.driver.duration_s;
    before.driver.interrupted |= later.driver.interrupted;
    before.driver.threads = later.driver.threads;
    before
        .component_exits
        .extend(later.component_exits.into_iter().map(|mut e| {
            e.at_s += offset_s;
            e
        }));
    before
        .component_stalls
        .extend(later.component_stalls.into_iter().map(|mut s| {
            s.from_s += offset_s;
            s.to_s += offset_s;
            s
        }));
    let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    before.cpu = StepCpu {
        wall_s: before.cpu.wall_s + later.cpu.wall_s,
        upstream_s: add(before.cpu.upstream_s, later.cpu.upstream_s),
        gateway_s: add(before.cpu.gateway_s, later.cpu.gateway_s),
    };
    let mut phases = before.step.load.phases().to_vec();
    phases.extend(later.step.load.phases().iter().cloned());
    before.step = Step::measured(Load::Open(phases));
    before
}

/// The result of a sweep that ran no step (interrupted before the first).
fn empty(bench: &Bench) -> StepResult {
    let keys = bench.scenario.keys.len();
    StepResult {
        started_at: chrono::Utc::now(),
        step: Step::measured(Load::Open(Vec::new())),
        driver: DriverOutput {
            totals: Totals::new(keys),
            intervals: Vec::new(),
            duration_s: 0.0,
            interrupted: true,
            threads: 1,
            requests: None,
            started_at: std::time::SystemTime::now(),
            start_late_s: None,
            protocol: crate::driver::Protocol::Http1,
            tls: false,
        },
        key_names: bench.scenario.keys.iter().map(|k| k.name.clone()).collect(),
        component_exits: Vec::new(),
        component_stalls: Vec::new(),
        cpu: StepCpu::default(),
        telemetry: Default::default(),
        faults: Vec::new(),
    }
}

/// The phases of one open-loop step: its warm-up (when any) and its
/// measured part, at `rate`.
fn step_phases(spec: &SweepSpec, rate: f64) -> Vec<Phase> {
    [spec.warmup, spec.duration]
        .into_iter()
        .filter(|d| !d.is_zero())
        .map(|duration| Phase {
            rate: Rate::Constant(rate),
            duration,
            arrival: spec.arrival,
        })
        .collect()
}

/// CPU seconds the mock upstream has spent, over all keys.
fn upstream_cpu_s(topology: &Topology) -> Option<f64> {
    let truth = topology.upstream.as_deref()?.truth().ok()?;
    Some(truth.totals.cpu_s)
}

/// Waits (bounded) until the mock upstream has finished the work still
/// running or queued from the last step, so one step's backlog does not
/// load the next. Only the mock reports that; others go on at once.
fn settle(topology: &Topology, warnings: &mut Vec<String>) {
    let Some(upstream) = topology.upstream.as_deref() else {
        return;
    };
    if let Ok(settled) = upstream.settle(SETTLE)
        && !settled.drained
    {
        warnings.push(format!(
            "the mock upstream was still working {}s after a step: the next step began on its backlog",
            SETTLE.as_secs()
        ));
    }
}

/// The row of one open-loop step: latency, shares and offered load over
/// the intervals after the warm-up; throughput over those wholly inside
/// the measured part (the drain after it, and the warm-up's backlog before,
/// would credit the step with work done outside it).
fn step_row(step: usize, rate: f64, spec: &SweepSpec, result: &StepResult) -> StepRow {
    let warmup_s = spec.warmup.as_secs_f64();
    let measured = Tally::of(result.after_warmup());
    let first_s = result.after_warmup().next().map_or(warmup_s, |r| r.start_s);
    let end_s = (warmup_s + spec.duration.as_secs_f64()).max(result.driver.duration_s);
    let measured_s = (end_s - first_s).max(1e-9);
    let window = Tally::of(result.inside());
    let p99_us = measured.latency_at(0.99);
    let share_2xx = measured.share(&[Class::Success]);
    let (upstream, gateway) = (result.cost("upstream"), result.cost("gateway"));
    let past_saturation = (measured.outcomes() > 0 && 1.0 - share_2xx > spec.stop_error_share)
        || spec
            .stop_p99
            .is_some_and(|bound| p99_us > bound.as_micros() as u64);
    StepRow {
        step,
        rate_per_s: rate,
        start_s: 0.0,
        offered_per_s: round3(measured.offered as f64 / measured_s),
        achieved_per_s: round3(window.responses() as f64 / window.seconds.max(1e-9)),
        goodput_per_s: round3(window.count(Class::Success) as f64 / window.seconds.max(1e-9)),
        arrivals: measured.outcomes(),
        share_2xx,
        share_429: measured.share(&[Class::TooMany]),
        share_503: measured.share(&[Class::Unavailable]),
        share_504: measured.share(&[Class::GatewayTimeout]),
        share_other_status: measured.share(&[Class::OtherStatus]),
        share_timeout: measured.share(&[Class::ClientTimeout]),
        share_error: measured.share(&[
            Class::ConnectError,
            Class::TlsError,
            Class::IoError,
            Class::NotSent,
        ]),
        p50_us: measured.latency_at(0.5),
        p90_us: measured.latency_at(0.9),
        p99_us,
        p999_us: measured.latency_at(0.999),
        max_us: measured.latency_us.max(),
        slo_percentile_us: measured.latency_at(spec.slo_percentile / 100.0),
        lag_p99_us: measured.lag_p99_us,
        upstream_cpu_cores: None,
        upstream_cores: upstream.map(|c| c.cores),
        upstream_cpu_per_request_us: upstream.and_then(|c| c.cpu_per_request_us),
        upstream_rss_bytes: upstream.and_then(|c| c.peak_rss_bytes),
        gateway_cores: gateway.map(|c| c.cores),
        gateway_cpu_per_request_us: gateway.and_then(|c| c.cpu_per_request_us),
        gateway_rss_bytes: gateway.and_then(|c| c.peak_rss_bytes),
        past_saturation,
        new_connections_per_s: 0.0,
        tls_handshake_p99_us: 0,
        gateway_cpu_us_per_request: None,
        keep_alive_p50_us: None,
        keep_alive_p99_us: None,
        keep_alive_gateway_cpu_us_per_request: None,
    }
}

/// The row of one closed-loop step, over the intervals wholly inside its
/// measured part.
fn closed_row(concurrency: u32, spec: &SweepSpec, result: &StepResult) -> ClosedStepRow {
    let window = Tally::of(result.inside());
    let secs = spec.duration.as_secs_f64().max(1e-9);
    let responses = window.responses();
    ClosedStepRow {
        concurrency,
        throughput_per_s: round3(responses as f64 / secs),
        goodput_per_s: round3(window.count(Class::Success) as f64 / secs),
        errors: window.outcomes() - responses,
        p50_us: window.latency_at(0.5),
        p99_us: window.latency_at(0.99),
        max_us: window.latency_us.max(),
    }
}

/// The analyses over finished rows: knees, max rate within the SLO, USL.
pub fn analyse(
    spec: &SweepSpec,
    steps: Vec<StepRow>,
    stopped_early: Option<String>,
    concurrency_steps: Vec<ClosedStepRow>,
    interrupted: bool,
) -> SweepResult {
    let offered: Vec<f64> = steps.iter().map(|s| s.rate_per_s).collect();
    let p99: Vec<f64> = steps.iter().map(|s| s.p99_us as f64).collect();
    let achieved: Vec<f64> = steps.iter().map(|s| s.achieved_per_s).collect();
    let point = |k: knee::Knee| KneePoint {
        offered_per_s: k.x,
        value: k.y,
        strength: round4(k.strength),
    };
    let knee = knee::kneedle(
        &offered,
        &p99,
        knee::Shape::ConvexIncreasing,
        spec.sensitivity,
    )
    .map(point);
    let throughput_knee = knee::kneedle(
        &offered,
        &achieved,
        knee::Shape::ConcaveIncreasing,
        spec.sensitivity,
    )
    .map(point);
    let slo_us = spec.slo.map(|d| d.as_micros() as u64);
    let max_rate_within_slo_per_s = slo_us.and_then(|slo| {
        // A step past saturation breaks the SLO however fast its errors came back.
        let values: Vec<f64> = steps
            .iter()
            .map(|s| {
                if s.past_saturation {
                    f64::INFINITY
                } else {
                    s.slo_percentile_us as f64
                }
            })
            .collect();
        max_rate_within_slo(&offered, &values, slo as f64).map(round3)
    });
    // Cut short before any measured step crossed the SLO, the highest rate
    // within it is unknown: it is at least the last rate measured.
    let crossed = slo_us.is_some_and(|slo| {
        steps
            .iter()
            .any(|s| s.past_saturation || s.slo_percentile_us > slo)
    });
    let (max_rate_within_slo_per_s, slo_held_up_to_per_s) = if interrupted && !crossed {
        (None, max_rate_within_slo_per_s)
    } else {
        (max_rate_within_slo_per_s, None)
    };
    let n: Vec<f64> = concurrency_steps
        .iter()
        .map(|s| f64::from(s.concurrency))
        .collect();
    let x: Vec<f64> = concurrency_steps
        .iter()
        .map(|s| s.throughput_per_s)
        .collect();
    SweepResult {
        steps,
        stopped_early,
        warmup_s: spec.warmup.as_secs_f64(),
        step_duration_s: spec.duration.as_secs_f64(),
        sensitivity: spec.sensitivity,
        knee,
        throughput_knee,
        slo_us,
        slo_percentile: spec.slo_percentile,
        max_rate_within_slo_per_s,
        concurrency_steps,
        usl: usl::fit(&n, &x),
        interrupted,
        slo_held_up_to_per_s,
        retries_compared: false,
        without_retries: None,
    }
}

/// The highest rate whose latency stays at or under `slo`: walking up the
/// rates, the first step over the SLO ends the walk, and the answer is
/// interpolated linearly between it and the step before. `None` when even
/// the lowest rate is over the SLO (or there are no steps); the highest
/// rate when no step is over it.
pub fn max_rate_within_slo(rates: &[f64], latency: &[f64], slo: f64) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = rates.iter().copied().zip(latency.iter().copied()).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last_ok: Option<(f64, f64)> = None;
    for (rate, value) in pts {
        if value <= slo {
            last_ok = Some((rate, value));
            continue;
        }
        let (r0, v0) = last_ok?;
        // Linear between the last step within the SLO and the first over it
        // (an infinite value, a step past saturation, gives the last good rate).
        return Some(if value.is_finite() {
            r0 + (rate - r0) * (slo - v0) / (value - v0)
        } else {
            r0
        });
    }
    last_ok.map(|(r, _)| r)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_rate_within_slo_interpolates_at_the_first_crossing() {
        // (rates, latency, slo, expected)
        type Case<'a> = (&'a [f64], &'a [f64], f64, Option<f64>);
        let cases: &[Case] = &[
            (
                &[100.0, 200.0, 300.0],
                &[10.0, 20.0, 60.0],
                40.0,
                Some(250.0),
            ),
            (
                &[100.0, 200.0, 300.0],
                &[10.0, 20.0, 30.0],
                40.0,
                Some(300.0),
            ),
            (&[100.0, 200.0], &[50.0, 60.0], 40.0, None),
            (
                &[300.0, 100.0, 200.0],
                &[60.0, 10.0, 20.0],
                40.0,
                Some(250.0),
            ),
            // A dip after the first crossing does not count.
            (
                &[100.0, 200.0, 300.0],
                &[10.0, 50.0, 30.0],
                40.0,
                Some(175.0),
            ),
            (&[], &[], 40.0, None),
            (&[100.0, 200.0], &[10.0, f64::INFINITY], 40.0, Some(100.0)),
        ];
        for (rates, latency, slo, want) in cases {
            assert_eq!(
                max_rate_within_slo(rates, latency, *slo),
                *want,
                "{rates:?} {latency:?}"
            );
        }
    }

    fn row(rate: f64, p99_us: u64, achieved: f64) -> StepRow {
        StepRow {
            step: 0,
            rate_per_s: rate,
            start_s: 0.0,
            offered_per_s: rate,
            achieved_per_s: achieved,
            goodput_per_s: achieved,
            arrivals: 1,
            share_2xx: 1.0,
            share_429: 0.0,
            share_503: 0.0,
            share_504: 0.0,
            share_other_status: 0.0,
            share_timeout: 0.0,
            share_error: 0.0,
            p50_us: p99_us / 2,
            p90_us: p99_us,
            p99_us,
            p999_us: p99_us,
            max_us: p99_us,
            slo_percentile_us: p99_us,
            lag_p99_us: 0,
            upstream_cpu_cores: None,
            upstream_cores: None,
            upstream_cpu_per_request_us: None,
            upstream_rss_bytes: None,
            gateway_cores: None,
            gateway_cpu_per_request_us: None,
            gateway_rss_bytes: None,
            past_saturation: false,
            new_connections_per_s: 0.0,
            tls_handshake_p99_us: 0,
            gateway_cpu_us_per_request: None,
            keep_alive_p50_us: None,
            keep_alive_p99_us: None,
            keep_alive_gateway_cpu_us_per_request: None,
        }
    }

    #[test]
    fn analyse_finds_the_knee_and_the_slo_rate() {
        let spec = SweepSpec {
            slo: Some(Duration::from_millis(50)),
            ..SweepSpec::default()
        };
        let steps: Vec<StepRow> = [
            (200.0, 2_000),
            (400.0, 2_500),
            (600.0, 3_000),
            (800.0, 6_000),
            (900.0, 12_000),
            (1000.0, 40_000),
            (1100.0, 900_000),
            (1200.0, 2_000_000),
        ]
        .iter()
        .map(|&(r, p)| row(r, p, r.min(1000.0)))
        .collect();
        let result = analyse(&spec, steps.clone(), None, Vec::new(), false);
        let knee = result.knee.expect("a knee");
        assert!((850.0..=1000.0).contains(&knee.offered_per_s), "{knee:?}");
        assert_eq!(
            result.throughput_knee.map(|k| k.offered_per_s),
            Some(1000.0)
        );
        let slo_rate = result.max_rate_within_slo_per_s.expect("a rate");
        assert!(slo_rate > 1000.0 && slo_rate < 1002.0, "{slo_rate}");
        assert_eq!(result.usl, None);

        // Cut short after three steps, all within the SLO: the answer is
        // unknown (at least 600/s), never "600/s".
        let cut = analyse(&spec, steps[..3].to_vec(), None, Vec::new(), true);
        assert!(cut.interrupted);
        assert_eq!(cut.max_rate_within_slo_per_s, None);
        assert_eq!(cut.slo_held_up_to_per_s, Some(600.0));
        // Cut short after a step crossed the SLO: the crossing was measured.
        let cut = analyse(&spec, steps.clone(), None, Vec::new(), true);
        assert_eq!(cut.max_rate_within_slo_per_s, Some(slo_rate));
        assert_eq!(cut.slo_held_up_to_per_s, None);
    }
}
