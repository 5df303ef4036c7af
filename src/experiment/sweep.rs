//! The `sweep` experiment: offered load in steps, one result row per step.
//!
//! Takes a validated [`Scenario`] with a [`SweepSpec`]; starts the topology
//! once; runs each open-loop rate step (warm-up, then the measured part, in
//! one driver run so the queue is never drained between them) and then each
//! closed-loop concurrency step; stops the open-loop steps early past
//! saturation; hands on a [`SweepOutput`]: the whole sweep as a
//! [`RunOutput`] (so every usual report file is written) plus a
//! [`SweepResult`] with the step rows and the analyses (knee, USL fit, max
//! rate within the SLO). It draws nothing and writes no file.
//!
//! Closed-loop steps use their own small loop (N tasks, each one request in
//! flight on its own keep-alive connection) rather than the open-loop
//! driver. In closed loop the next request waits for the last response, so
//! latency there is service time: it hides queueing that an open-loop
//! client would see. Those steps exist for the USL fit of throughput
//! against concurrency, and the report says so.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde::{Deserialize, Serialize};

use crate::analysis::{knee, usl};
use crate::driver::{self, DriverOutput, Plan};
use crate::error::{Error, Result};
use crate::experiment::run::{RunOutput, drained};
use crate::outcome::{Class, Outcome};
use crate::record::{IntervalRow, Recorder, Totals, new_histogram};
use crate::scenario::{Phase, Rate, Scenario, SweepSpec};
use crate::shutdown::Stop;
use crate::topology::Topology;

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
    /// True when the step is past saturation (error share or P99 over the
    /// stop-early bounds).
    pub past_saturation: bool,
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

/// What the sweep tells its caller as it goes.
pub enum Event<'a> {
    /// An open-loop step begins (1-based number, rate per second).
    Step(usize, f64),
    /// An interval of an open-loop step closed (times from the step start).
    Interval(&'a IntervalRow),
    /// A step's row is done.
    Done(&'a StepRow),
    /// A closed-loop step's row is done.
    ClosedDone(&'a ClosedStepRow),
}

/// Longest wait for the upstream to finish the last step's work before the
/// next step starts.
const SETTLE: Duration = Duration::from_secs(10);

/// Runs the sweep of `scenario` (`experiment = "sweep"`). `exe` is the
/// `contend` binary used to start embedded components.
pub fn run(
    scenario: &Scenario,
    exe: &Path,
    stop: &Stop,
    on_event: &mut dyn FnMut(Event),
) -> Result<SweepOutput> {
    let spec = &scenario.sweep;
    let mut topology = Topology::start_with_gateway(&scenario.target, &scenario.gateway, exe)?;
    let started_at = Utc::now();
    let mut warnings = Vec::new();
    let mut steps = Vec::new();
    let mut stopped_early = None;
    let mut totals: Option<Totals> = None;
    let mut intervals: Vec<IntervalRow> = Vec::new();
    let mut phases_run: Vec<Phase> = Vec::new();
    let mut offset_s = 0.0;
    let mut duration_s = 0.0;
    let mut threads = 1;
    let mut interrupted = false;
    let mut key_names = Vec::new();

    for (i, &rate) in spec.rates.iter().enumerate() {
        if stop.is_stopped() {
            interrupted = true;
            break;
        }
        on_event(Event::Step(i + 1, rate));
        let mut step_scenario = scenario.clone();
        step_scenario.phases = step_phases(spec, rate);
        let plan = Plan::new(&step_scenario, &topology.url)?;
        key_names.clone_from(&plan.key_names);
        let cpu_before = upstream_cpu_s(&topology);
        let wall = Instant::now();
        let output = driver::run(&plan, stop.receiver(), &mut |row| {
            on_event(Event::Interval(row))
        })?;
        let cpu_cores = match (cpu_before, upstream_cpu_s(&topology)) {
            (Some(a), Some(b)) => Some(round3(
                (b - a).max(0.0) / wall.elapsed().as_secs_f64().max(1e-9),
            )),
            _ => None,
        };
        let mut row = step_row(i + 1, rate, spec, &output);
        row.upstream_cpu_cores = cpu_cores;
        row.start_s = round3(offset_s);
        threads = output.threads;
        interrupted |= output.interrupted;
        for r in &output.intervals {
            let mut r = r.clone();
            r.start_s += offset_s;
            r.index = intervals.len() as u64;
            intervals.push(r);
        }
        offset_s += output.duration_s;
        duration_s += output.duration_s;
        phases_run.extend(step_scenario.phases.iter().cloned());
        match &mut totals {
            Some(t) => t.merge(&output.totals),
            None => totals = Some(output.totals.clone()),
        }
        on_event(Event::Done(&row));
        let past = row.past_saturation;
        let p99 = row.p99_us;
        let share_error = 1.0 - row.share_2xx;
        steps.push(row);
        if output.interrupted {
            break;
        }
        settle(&topology, &mut warnings);
        if past && spec.stop_early && i + 1 < spec.rates.len() {
            stopped_early = Some(format!(
                "stopped after step {} ({rate:.0}/s): past saturation (P99 {}, {:.1}% without a 2xx)",
                i + 1,
                contend_units::fmt_us(p99),
                share_error * 100.0
            ));
            break;
        }
    }

    let mut concurrency_steps = Vec::new();
    if !spec.concurrency.is_empty() && !stop.is_stopped() {
        let plan = closed_plan(scenario, &topology.url)?;
        for &n in &spec.concurrency {
            if stop.is_stopped() {
                interrupted = true;
                break;
            }
            let row = closed_step(&plan, n, spec.warmup, spec.duration, stop)?;
            on_event(Event::ClosedDone(&row));
            concurrency_steps.push(row);
            settle(&topology, &mut warnings);
        }
    }

    let gateway_accounting = super::or_warn(topology.gateway_accounting(), &mut warnings);
    let upstream_accounting = super::or_warn(topology.upstream_accounting(), &mut warnings);
    let mut run_scenario = scenario.clone();
    run_scenario.phases = phases_run;
    let result = analyse(spec, steps, stopped_early, concurrency_steps);
    let run = RunOutput {
        scenario: run_scenario,
        target_url: topology.url.clone(),
        started_at,
        driver: DriverOutput {
            totals: totals.unwrap_or_else(|| Totals::new(key_names.len())),
            intervals,
            duration_s,
            interrupted,
            threads,
            requests: None,
        },
        key_names,
        upstream_accounting,
        gateway_accounting,
        component_exits: Vec::new(),
        warnings,
    };
    Ok(SweepOutput { run, result })
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
    let value = topology.upstream_accounting()?.ok()?;
    value
        .get("totals")
        .and_then(|t| t.get("cpu_s"))
        .and_then(|v| v.as_f64())
}

/// Waits (bounded) until the mock upstream has finished the work still
/// running or queued from the last step, so one step's backlog does not
/// load the next. Only the mock reports that; others go on at once.
fn settle(topology: &Topology, warnings: &mut Vec<String>) {
    let deadline = Instant::now() + SETTLE;
    let mut drained_readings = 0;
    loop {
        let Some(Ok(value)) = topology.upstream_accounting() else {
            return;
        };
        drained_readings = if drained(&value) {
            drained_readings + 1
        } else {
            0
        };
        if drained_readings >= 2 {
            return;
        }
        if Instant::now() >= deadline {
            warnings.push(format!(
                "the mock upstream was still working {}s after a step: the next step began on its backlog",
                SETTLE.as_secs()
            ));
            return;
        }
        // Nothing signals the upstream's last finish; poll (see run::settled_upstream_accounting).
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The row of one open-loop step from its driver output: only intervals
/// that start at or after the warm-up's end count.
fn step_row(step: usize, rate: f64, spec: &SweepSpec, output: &DriverOutput) -> StepRow {
    let warmup_s = spec.warmup.as_secs_f64();
    let measured: Vec<&IntervalRow> = output
        .intervals
        .iter()
        .filter(|r| r.start_s + 1e-9 >= warmup_s)
        .collect();
    let first_s = measured.first().map_or(warmup_s, |r| r.start_s);
    let end_s = (warmup_s + spec.duration.as_secs_f64()).max(output.duration_s);
    let measured_s = (end_s - first_s).max(1e-9);
    let mut latency = new_histogram();
    let mut deserializer = Deserializer::new();
    let mut by_class = [0u64; Class::ALL.len()];
    let (mut offered, mut lag_p99_us) = (0u64, 0u64);
    // Completions inside the measured part only: the drain after it (and
    // the warm-up's backlog before) would credit the step with work done
    // outside it.
    let window_end_s = warmup_s + spec.duration.as_secs_f64() + 1e-6;
    let (mut window_s, mut window_responses, mut window_2xx) = (0.0, 0u64, 0u64);
    for r in &measured {
        if r.start_s + r.duration_s <= window_end_s {
            window_s += r.duration_s;
            let classes = [
                Class::Success,
                Class::TooMany,
                Class::Unavailable,
                Class::GatewayTimeout,
                Class::OtherStatus,
            ];
            window_responses += classes.iter().map(|c| r.by_class[c.index()]).sum::<u64>();
            window_2xx += r.by_class[Class::Success.index()];
        }
        if let Ok(h) = deserializer.deserialize::<u64, _>(&mut &r.latency_hist_v2[..]) {
            let _ = latency.add(&h);
        }
        for (a, b) in by_class.iter_mut().zip(r.by_class) {
            *a += b;
        }
        offered += r.offered;
        lag_p99_us = lag_p99_us.max(r.lag_p99_us);
    }
    let outcomes: u64 = by_class.iter().sum();
    let share = |classes: &[Class]| {
        if outcomes == 0 {
            0.0
        } else {
            round4(
                classes.iter().map(|c| by_class[c.index()]).sum::<u64>() as f64 / outcomes as f64,
            )
        }
    };
    let q = |h: &Histogram<u64>, q: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        }
    };
    let p99_us = q(&latency, 0.99);
    let share_2xx = share(&[Class::Success]);
    let past_saturation = (outcomes > 0 && 1.0 - share_2xx > spec.stop_error_share)
        || spec
            .stop_p99
            .is_some_and(|bound| p99_us > bound.as_micros() as u64);
    StepRow {
        step,
        rate_per_s: rate,
        start_s: 0.0,
        offered_per_s: round3(offered as f64 / measured_s),
        achieved_per_s: round3(window_responses as f64 / window_s.max(1e-9)),
        goodput_per_s: round3(window_2xx as f64 / window_s.max(1e-9)),
        arrivals: outcomes,
        share_2xx,
        share_429: share(&[Class::TooMany]),
        share_503: share(&[Class::Unavailable]),
        share_504: share(&[Class::GatewayTimeout]),
        share_other_status: share(&[Class::OtherStatus]),
        share_timeout: share(&[Class::ClientTimeout]),
        share_error: share(&[Class::ConnectError, Class::IoError, Class::NotSent]),
        p50_us: q(&latency, 0.5),
        p90_us: q(&latency, 0.9),
        p99_us,
        p999_us: q(&latency, 0.999),
        max_us: latency.max(),
        slo_percentile_us: q(&latency, spec.slo_percentile / 100.0),
        lag_p99_us,
        upstream_cpu_cores: None,
        past_saturation,
    }
}

/// The analyses over finished rows: knees, max rate within the SLO, USL.
pub fn analyse(
    spec: &SweepSpec,
    steps: Vec<StepRow>,
    stopped_early: Option<String>,
    concurrency_steps: Vec<ClosedStepRow>,
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

/// What a closed-loop step sends: the plan's first request template.
struct ClosedPlan {
    addr: std::net::SocketAddr,
    request: bytes::Bytes,
    head: bool,
    timeout: Duration,
    interval_ns: u64,
}

fn closed_plan(scenario: &Scenario, url: &str) -> Result<ClosedPlan> {
    let mut s = scenario.clone();
    // Plan::new needs a phase; closed-loop steps do not use it.
    s.phases = vec![Phase {
        rate: Rate::Constant(1.0),
        duration: Duration::from_secs(1),
        arrival: s.sweep.arrival,
    }];
    let plan = Plan::new(&s, url)?;
    Ok(ClosedPlan {
        addr: plan.addr,
        request: plan.requests[0].bytes.clone(),
        head: plan.requests[0].head,
        timeout: plan.timeouts[0],
        interval_ns: plan.interval.as_nanos() as u64,
    })
}

/// Runs `n` closed-loop clients for `warmup` (not recorded) and then
/// `duration`, each with one request in flight on its own connection, on a
/// current-thread runtime on this thread. Only exchanges that complete
/// inside the measured window count toward throughput.
fn closed_step(
    plan: &ClosedPlan,
    n: u32,
    warmup: Duration,
    duration: Duration,
    stop: &Stop,
) -> Result<ClosedStepRow> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("closed-loop runtime: {e}")))?;
    let totals = rt.block_on(async {
        let measure_start_ns = crate::sys::monotonic_ns() + warmup.as_nanos() as u64;
        let end_ns = measure_start_ns + duration.as_nanos() as u64;
        let mut tasks = Vec::new();
        for _ in 0..n {
            let request = plan.request.clone();
            let (addr, head, timeout, interval_ns) =
                (plan.addr, plan.head, plan.timeout, plan.interval_ns);
            let mut stop = stop.receiver();
            tasks.push(tokio::spawn(async move {
                let mut recorder = Recorder::new(measure_start_ns, interval_ns, 0);
                let mut conn: Option<crate::driver::http1::Connection> = None;
                loop {
                    let start_ns = crate::sys::monotonic_ns();
                    if start_ns >= end_ns || *stop.borrow() {
                        break;
                    }
                    let exchange = async {
                        let c = match conn.take() {
                            Some(c) => c,
                            None => match tokio::net::TcpStream::connect(addr).await {
                                Ok(s) => {
                                    let _ = s.set_nodelay(true);
                                    crate::driver::http1::Connection::new(s)
                                }
                                Err(_) => return (Outcome::ConnectError, None),
                            },
                        };
                        let mut c = c;
                        match c.exchange(&request, head).await {
                            Ok((status, reusable)) => {
                                (Outcome::Response(status), reusable.then_some(c))
                            }
                            Err(_) => (Outcome::IoError, None),
                        }
                    };
                    let (outcome, kept) = tokio::select! {
                        r = tokio::time::timeout(timeout, exchange) => match r {
                            Ok(r) => r,
                            Err(_) => (Outcome::ClientTimeout, None),
                        },
                        // A closed channel (nothing can stop us) disables this branch.
                        Ok(()) = stop.changed() => break,
                    };
                    conn = kept;
                    let done_ns = crate::sys::monotonic_ns();
                    if start_ns >= measure_start_ns && done_ns <= end_ns {
                        let service_ns = done_ns - start_ns;
                        recorder.dispatched(start_ns);
                        recorder.sent(start_ns, 0);
                        let sent = !matches!(outcome, Outcome::ConnectError);
                        recorder.outcome(
                            done_ns,
                            0,
                            outcome,
                            service_ns,
                            sent.then_some(service_ns),
                        );
                    }
                }
                recorder.finish(crate::sys::monotonic_ns(), 0).0
            }));
        }
        let mut totals = Totals::new(0);
        for t in tasks {
            if let Ok(t) = t.await {
                totals.merge(&t);
            }
        }
        totals
    });
    let secs = duration.as_secs_f64().max(1e-9);
    let responses: u64 = totals.counts.statuses().map(|(_, c)| c).sum();
    let h = &totals.service_us;
    let q = |q: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        }
    };
    Ok(ClosedStepRow {
        concurrency: n,
        throughput_per_s: round3(responses as f64 / secs),
        goodput_per_s: round3(totals.counts.class(Class::Success) as f64 / secs),
        errors: totals.counts.total() - responses,
        p50_us: q(0.5),
        p99_us: q(0.99),
        max_us: h.max(),
    })
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
            past_saturation: false,
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
        let result = analyse(&spec, steps, None, Vec::new());
        let knee = result.knee.expect("a knee");
        assert!((850.0..=1000.0).contains(&knee.offered_per_s), "{knee:?}");
        assert_eq!(
            result.throughput_knee.map(|k| k.offered_per_s),
            Some(1000.0)
        );
        let slo_rate = result.max_rate_within_slo_per_s.expect("a rate");
        assert!(slo_rate > 1000.0 && slo_rate < 1002.0, "{slo_rate}");
        assert_eq!(result.usl, None);
    }
}
