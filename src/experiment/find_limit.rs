//! The `find-limit` experiment: under overload, the largest gateway
//! concurrency limit whose responses stay inside the gateway's upstream
//! timeout, per hardware class, beside the processor-sharing model's L*.
//!
//! Takes a validated [`Scenario`] with `experiment = "find-limit"` (a
//! gateway with `upstream_timeout`, usually the mock upstream behind it);
//! for each hardware class runs a baseline step with no limit, then a
//! search over the limit L: bracket from a start (the model's L*, or
//! `min`) outward in doubling strides, bisect, then confirm the answer and
//! its neighbour above with repeated steps. Each step is one short run on a
//! fresh topology (the gateway's limit is part of its config, and a fresh
//! upstream carries no backlog from the last step), driven by
//! [`run::run`]. Hands on a [`FindLimitOutput`]: the step rows, the
//! answer and the model per class, and the run of the answer's step for the
//! usual report files. It draws and writes nothing.
//!
//! The search itself is pure ([`next_probe`]): it maps the verdicts seen so
//! far to the next limit to try, and is tested against fake step functions.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::run::{self, RunOutput};
use super::step::{Step, Tally};
use super::{Bench, Event};
use crate::analysis::ps_model::{self, CpuWork};
use crate::driver::Load;
use crate::error::{Error, Result};
use crate::outcome::Class;
use crate::scenario::{
    self, ArrivalKind, FindLimitSpec, HardwareClass, Phase, Rate, Scenario, Target,
};
use contend_gateway::ConcurrencyRule;
use contend_units::fmt_us;

/// What a step was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// No limit: the collapse the limit prevents.
    Baseline,
    /// Widening the bracket around the cliff.
    Bracket,
    /// Halving the bracket.
    Bisect,
    /// Repeating the answer and its neighbour above.
    Confirm,
}

impl StepKind {
    /// The name in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Baseline => "baseline",
            StepKind::Bracket => "bracket",
            StepKind::Bisect => "bisect",
            StepKind::Confirm => "confirm",
        }
    }
}

/// The search's bounds: candidates `min..=max`, where to start, how many
/// runs confirm an answer, and the most steps it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchSpec {
    /// Smallest candidate.
    pub min: u32,
    /// Largest candidate.
    pub max: u32,
    /// First candidate tried (clamped into min..=max).
    pub start: u32,
    /// Runs the answer and its neighbour above get before the answer stands.
    pub repeats: u32,
    /// Most steps in all.
    pub max_steps: u32,
}

/// What the search does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run a step at this limit.
    Probe(u32, StepKind),
    /// The search is over.
    Done(Answer),
}

/// The search's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The largest limit that never broke (`None`: even `min` broke).
    pub limit: Option<u32>,
    /// The smallest limit that broke (`None`: none up to `max` did).
    pub first_break: Option<u32>,
    /// False when the step budget ran out before the answer was confirmed.
    pub confirmed: bool,
}

/// The next step of the search, given every `(limit, broke)` seen so far.
///
/// A limit is good when every run of it passed and broken when any run
/// broke: the answer must hold in every repeat. `good` is the largest good
/// limit below `bad`, the smallest broken one (a good limit above a broken
/// one is noise the monotone model ignores). While either is unknown the
/// bracket widens from `start` in strides of 1, 2, 4, ...; with both known
/// and apart it bisects; once they are neighbours each gets `repeats` runs
/// (a repeat that breaks `good` moves the bracket down and the search goes on).
pub fn next_probe(spec: &SearchSpec, seen: &[(u32, bool)]) -> Next {
    let start = spec.start.clamp(spec.min, spec.max);
    let broke_at = |l: u32| seen.iter().any(|&(x, b)| x == l && b);
    let runs = |l: u32| seen.iter().filter(|&&(x, _)| x == l).count() as u32;
    let bad = seen.iter().filter(|s| s.1).map(|s| s.0).min();
    let good = seen
        .iter()
        .filter(|&&(l, _)| !broke_at(l) && bad.is_none_or(|b| l < b))
        .map(|s| s.0)
        .max();
    let out_of_steps = seen.len() as u32 >= spec.max_steps;
    let done = |confirmed| {
        Next::Done(Answer {
            limit: good,
            first_break: bad,
            confirmed,
        })
    };
    if out_of_steps {
        return done(false);
    }
    match (good, bad) {
        (None, None) => Next::Probe(start, StepKind::Bracket),
        (None, Some(b)) if b <= spec.min => done(true),
        (None, Some(b)) => {
            let stride = start.saturating_sub(b) + 1;
            Next::Probe(b.saturating_sub(stride).max(spec.min), StepKind::Bracket)
        }
        (Some(g), None) if g >= spec.max => {
            if runs(g) < spec.repeats {
                Next::Probe(g, StepKind::Confirm)
            } else {
                done(true)
            }
        }
        (Some(g), None) => {
            let stride = g.saturating_sub(start) + 1;
            Next::Probe(g.saturating_add(stride).min(spec.max), StepKind::Bracket)
        }
        (Some(g), Some(b)) if b - g > 1 => Next::Probe(g + (b - g) / 2, StepKind::Bisect),
        (Some(g), Some(b)) => {
            if runs(g) < spec.repeats {
                Next::Probe(g, StepKind::Confirm)
            } else if runs(b) < spec.repeats {
                Next::Probe(b, StepKind::Confirm)
            } else {
                done(true)
            }
        }
    }
}

/// Runs the search with `step` as the experiment: `step(limit, kind)`
/// returns whether that limit broke, or `None` to stop (interrupted).
/// Returns the answer and the `(limit, broke)` of every step, in order.
pub fn search(
    spec: &SearchSpec,
    step: &mut dyn FnMut(u32, StepKind) -> Result<Option<bool>>,
) -> Result<(Answer, Vec<(u32, bool)>)> {
    let mut seen = Vec::new();
    loop {
        match next_probe(spec, &seen) {
            Next::Done(answer) => return Ok((answer, seen)),
            Next::Probe(limit, kind) => match step(limit, kind)? {
                Some(broke) => seen.push((limit, broke)),
                None => {
                    let Next::Done(mut answer) = next_probe(
                        &SearchSpec {
                            max_steps: 0,
                            ..*spec
                        },
                        &seen,
                    ) else {
                        unreachable!("a search out of steps is done")
                    };
                    answer.confirmed = false;
                    return Ok((answer, seen));
                }
            },
        }
    }
}

/// One step's measured result (a row of `steps.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    /// The hardware class (`cpus=1`, or `as configured`).
    pub class: String,
    /// Step number within the class, from 1 (the baseline is 0).
    pub step: usize,
    /// What the step was for.
    pub kind: StepKind,
    /// The gateway's concurrency limit; `None`: no limit (the baseline).
    pub limit: Option<u32>,
    /// Offered load, per second.
    pub rate_per_s: f64,
    /// Arrivals in the measured part.
    pub arrivals: u64,
    /// 2xx responses per second in the measured part (each within the
    /// gateway timeout: the gateway answers 504 past it).
    pub goodput_per_s: f64,
    /// Shares of the measured part's outcomes, 0 to 1: 2xx.
    pub share_2xx: f64,
    /// 503 (the limit's refusals).
    pub share_503: f64,
    /// 504 (the gateway timeout).
    pub share_504: f64,
    /// Client timeouts.
    pub share_client_timeout: f64,
    /// Everything else (other statuses, errors, not sent).
    pub share_other: f64,
    /// Latency of the 2xx from the intended send time, us: median (the
    /// whole step, warm-up included).
    pub p50_2xx_us: u64,
    /// 99th percentile.
    pub p99_2xx_us: u64,
    /// Share of the 2xx later than the gateway timeout (from the intended
    /// send time: client-side delay counts), 0 to 1.
    pub share_2xx_late: f64,
    /// CPU the mock upstream spent over the step and its drain, s.
    pub upstream_cpu_s: Option<f64>,
    /// The part spent on requests that ended as 504 or were abandoned, s.
    pub wasted_cpu_s: Option<f64>,
    /// `upstream_cpu_s` over the step's load time: the cores the upstream
    /// used while loaded; more than the class has when a backlog drained
    /// after the load (a broken step).
    pub upstream_cores: Option<f64>,
    /// True when the step broke: a share over the bound (`max_504_share`)
    /// of 504s, of client timeouts, or of 2xx later than the timeout (at
    /// the default 1% bound: the P99 of the 2xx past the timeout).
    pub broke: bool,
    /// Why it broke (empty when it did not).
    pub reason: String,
}

/// One hardware class's answer (a row of `max-connections.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    /// The class (`cpus=1`, `cpus=0,1`, or `as configured`).
    pub class: String,
    /// Cores the upstream may use (the model's k).
    pub cores: f64,
    /// The measured limit: the largest that never broke (`None`: even the
    /// smallest candidate broke).
    pub limit: Option<u32>,
    /// The smallest limit that broke (`None`: none up to the largest candidate).
    pub first_break: Option<u32>,
    /// False when interrupted or out of steps before the answer was confirmed.
    pub confirmed: bool,
    /// The processor-sharing model's L* (`None`: the upstream's CPU is unknown).
    pub model_limit: Option<u32>,
    /// The model with the cores the upstream actually got at the answer
    /// (measured), and the CPU per request it measured.
    pub model_limit_measured: Option<u32>,
    /// Goodput at the measured limit (mean over its runs), per second.
    pub goodput_at_limit_per_s: Option<f64>,
    /// P99 of the 2xx at the measured limit (highest over its runs), us.
    pub p99_at_limit_us: Option<u64>,
    /// Goodput with no limit, per second.
    pub goodput_no_limit_per_s: Option<f64>,
    /// 504 share with no limit.
    pub share_504_no_limit: Option<f64>,
    /// Why the measured limit differs from the model, when it does.
    pub note: String,
}

/// What `summary.json` holds under `find_limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindLimitResult {
    /// The first class's measured limit.
    pub limit: Option<u32>,
    /// The first class's model limit.
    pub model_limit: Option<u32>,
    /// The gateway's upstream timeout, s.
    pub timeout_s: f64,
    /// Mean CPU per request the upstream was configured with, s.
    pub cpu_per_request_s: Option<f64>,
    /// The model's CPU per request: the (1 - bound) quantile, s.
    pub model_cpu_s: Option<f64>,
    /// Offered load of the first class's steps, per second (each row has its own).
    pub rate_per_s: f64,
    /// Warm-up of each step, s.
    pub warmup_s: f64,
    /// Measured length of each step, s.
    pub step_duration_s: f64,
    /// 504 share above which a limit breaks.
    pub max_504_share: f64,
    /// Runs that confirm an answer.
    pub repeats: u32,
    /// Wall time of the whole experiment, s.
    pub elapsed_s: f64,
    /// Per hardware class, in order.
    pub classes: Vec<ClassResult>,
    /// Every step of every class, in order.
    pub steps: Vec<StepRow>,
}

/// Everything a find-limit produced.
#[derive(Debug)]
pub struct FindLimitOutput {
    /// The first class's run at its measured limit (or its last step), for
    /// the usual report files.
    pub run: Option<RunOutput>,
    /// The rows and answers.
    pub result: FindLimitResult,
}

/// Runs `experiment = "find-limit"` with `spec`.
pub fn run(
    bench: &Bench,
    spec: &FindLimitSpec,
    on_event: &mut dyn FnMut(Event),
) -> Result<FindLimitOutput> {
    let scenario = bench.scenario;
    let timeout = check_gateway(scenario)?;
    let classes: Vec<Option<HardwareClass>> = if spec.hardware.is_empty() {
        vec![None]
    } else {
        spec.hardware.iter().cloned().map(Some).collect()
    };
    for class in classes.iter().flatten() {
        check_class(class, &scenario.target)?;
    }
    let work = cpu_work(&scenario.target);
    let first_rate_per_s = step_rate(
        spec,
        work,
        class_cores(classes[0].as_ref(), &scenario.target),
    )?;
    let began = std::time::Instant::now();
    let mut steps = Vec::new();
    let mut results = Vec::new();
    let mut first_run = None;
    for class in &classes {
        if bench.stop.is_stopped() {
            break;
        }
        let mut search = ClassSearch::new(bench, spec, class.as_ref(), timeout, work)?;
        on_event(Event::Note(format!("find-limit: class {}", search.name)));
        let (result, at_limit) = search.run(on_event)?;
        first_run = first_run.or(at_limit);
        steps.extend(search.rows);
        results.push(result);
    }
    let result = FindLimitResult {
        limit: results.first().and_then(|r| r.limit),
        model_limit: results.first().and_then(|r| r.model_limit),
        timeout_s: timeout.as_secs_f64(),
        cpu_per_request_s: work.map(|w| w.mean_s()),
        model_cpu_s: work.map(|w| round6(w.quantile_s(1.0 - spec.max_504_share))),
        rate_per_s: round3(first_rate_per_s),
        warmup_s: spec.warmup.as_secs_f64(),
        step_duration_s: spec.duration.as_secs_f64(),
        max_504_share: spec.max_504_share,
        repeats: spec.repeats,
        elapsed_s: round3(began.elapsed().as_secs_f64()),
        classes: results,
        steps,
    };
    Ok(FindLimitOutput {
        run: first_run,
        result,
    })
}

/// The phases of one step at `rate_per_s`: its warm-up (when any), then
/// its measured part.
fn step_phases(spec: &FindLimitSpec, rate_per_s: f64) -> Vec<Phase> {
    [spec.warmup, spec.duration]
        .into_iter()
        .filter(|d| !d.is_zero())
        .map(|duration| Phase {
            rate: Rate::Constant(rate_per_s),
            duration,
            arrival: ArrivalKind::Constant,
        })
        .collect()
}

/// The gateway's upstream timeout; refuses a gateway the harness does not start.
fn check_gateway(scenario: &Scenario) -> Result<Duration> {
    let timeout = scenario.gateway.policies.upstream_timeout.ok_or_else(|| {
        Error::Usage(
            "experiment = \"find-limit\" needs the gateway's timeout: set [gateway] upstream_timeout = \"290ms\"".into(),
        )
    })?;
    if matches!(
        scenario.gateway.kind,
        scenario::GatewayKind::None | scenario::GatewayKind::External
    ) {
        return Err(Error::Usage(
            "experiment = \"find-limit\" starts the gateway with each limit: set [gateway] kind = \"reference\" or \"nginx\"".into(),
        ));
    }
    Ok(timeout)
}

/// The offered load of every step: `[find_limit] rate`, or twice the
/// class's capacity (cores / CPU per request).
fn step_rate(spec: &FindLimitSpec, work: Option<CpuWork>, cores: f64) -> Result<f64> {
    match (spec.rate, work) {
        (Some(r), _) => Ok(r),
        (None, Some(w)) => Ok((2.0 * cores / w.mean_s()).max(1.0)),
        (None, None) => Err(Error::Usage(
            "[find_limit] rate is needed when the upstream is not the mock (its CPU per request is unknown): set rate = 40".into(),
        )),
    }
}

/// One hardware class's search: its scenario, the steps run so far and
/// their rows, and the runs kept for the report.
struct ClassSearch<'a> {
    bench: &'a Bench<'a>,
    spec: &'a FindLimitSpec,
    /// `cpus=1`, or `as configured`.
    name: String,
    /// The scenario with the class's CPUs on the mock upstream.
    base: Scenario,
    cores: f64,
    rate_per_s: f64,
    timeout: Duration,
    work: Option<CpuWork>,
    model: Option<ps_model::ModelLimit>,
    rows: Vec<StepRow>,
    runs: Vec<(Option<u32>, RunOutput)>,
}

impl<'a> ClassSearch<'a> {
    fn new(
        bench: &'a Bench<'a>,
        spec: &'a FindLimitSpec,
        class: Option<&HardwareClass>,
        timeout: Duration,
        work: Option<CpuWork>,
    ) -> Result<ClassSearch<'a>> {
        let scenario = bench.scenario;
        let mut base = scenario.clone();
        if let (Some(HardwareClass::Cpus(cpus)), Target::Mock(mock)) = (class, &mut base.target) {
            mock.cpus = Some(cpus.clone());
        }
        let cores = class_cores(class, &scenario.target);
        Ok(ClassSearch {
            bench,
            spec,
            name: class.map_or_else(|| "as configured".to_string(), HardwareClass::name),
            base,
            cores,
            rate_per_s: step_rate(spec, work, cores)?,
            timeout,
            work,
            model: work
                .map(|w| ps_model::limit(timeout.as_secs_f64(), cores, w, spec.max_504_share)),
            rows: Vec::new(),
            runs: Vec::new(),
        })
    }

    /// The baseline (when asked for), then the search; the class's answer
    /// and the run at its limit (or its last step) for the report.
    fn run(&mut self, on_event: &mut dyn FnMut(Event)) -> Result<(ClassResult, Option<RunOutput>)> {
        if self.spec.baseline {
            self.step(None, StepKind::Baseline, on_event)?;
        }
        let search_spec = SearchSpec {
            min: self.spec.min,
            max: self.spec.max,
            start: self
                .spec
                .start
                .or(self.model.map(|m| m.limit.max(1)))
                .unwrap_or(self.spec.min),
            repeats: self.spec.repeats,
            max_steps: self.spec.max_steps,
        };
        let (answer, _) = search(&search_spec, &mut |limit, kind| {
            self.step(Some(limit), kind, on_event)
        })?;
        let result = class_result(
            &self.name,
            self.cores,
            answer,
            self.model,
            self.timeout.as_secs_f64(),
            self.work,
            &self.rows,
        );
        let at = self
            .runs
            .iter()
            .position(|(l, _)| *l == answer.limit && l.is_some())
            .unwrap_or(self.runs.len().saturating_sub(1));
        let run = (at < self.runs.len()).then(|| self.runs.swap_remove(at).1);
        Ok((result, run))
    }

    /// One step at `limit` (`None`: no limit) on a fresh topology: whether
    /// it broke, or `None` when a stop cut it short.
    fn step(
        &mut self,
        limit: Option<u32>,
        kind: StepKind,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Option<bool>> {
        if self.bench.stop.is_stopped() {
            return Ok(None);
        }
        on_event(Event::Note(format!(
            "find-limit: {} step, limit {}",
            kind.as_str(),
            limit.map_or("none".to_string(), |l| l.to_string())
        )));
        let mut scenario = self.base.clone();
        scenario.gateway.policies.concurrency = limit.map(|max| ConcurrencyRule {
            max: max as usize,
            queue: 0,
            queue_timeout: Duration::ZERO,
        });
        // Long enough for a broken step's backlog (at most the step's
        // offered work past capacity, about its own length at 2x) to drain.
        let settle = (self.spec.warmup + self.spec.duration) * 2 + Duration::from_secs(2);
        let step = Step {
            load: Load::Open(step_phases(self.spec, self.rate_per_s)),
            warmup: self.spec.warmup,
        };
        let bench = Bench {
            scenario: &scenario,
            ..*self.bench
        };
        let output = run::run(&bench, step, settle, on_event)?;
        let number = match kind {
            StepKind::Baseline => 0,
            _ => {
                self.rows
                    .iter()
                    .filter(|r| r.kind != StepKind::Baseline)
                    .count()
                    + 1
            }
        };
        let row = step_row(
            &self.name,
            number,
            kind,
            limit,
            self.rate_per_s,
            self.spec,
            self.timeout,
            &output,
        );
        on_event(Event::Note(format!(
            "find-limit: goodput {:.1}/s, 504 {:.1}%, P99 2xx {}: {}",
            row.goodput_per_s,
            row.share_504 * 100.0,
            fmt_us(row.p99_2xx_us),
            if row.broke { "breaks" } else { "ok" }
        )));
        let broke = row.broke;
        let interrupted = output.step.driver.interrupted;
        self.rows.push(row);
        self.runs.push((limit, output));
        Ok(if interrupted { None } else { Some(broke) })
    }
}

/// A quota class needs a cgroup this process may write; say what is missing.
fn check_class(class: &HardwareClass, target: &Target) -> Result<()> {
    match class {
        HardwareClass::Cpus(_) if !matches!(target, Target::Mock(_)) => Err(Error::Usage(format!(
            "[find_limit] hardware class {} pins the mock upstream: use [upstream] kind = \"mock\"",
            class.name()
        ))),
        HardwareClass::Cpus(_) => Ok(()),
        HardwareClass::CpuQuota(_) => {
            let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
            let v1 = Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
            let missing = if !v2.exists() && !v1.exists() {
                "no cgroup v2 hierarchy (/sys/fs/cgroup/cgroup.controllers) and no v1 cpu controller \
                 (/sys/fs/cgroup/cpu/cpu.cfs_quota_us) is mounted here"
            } else {
                "this build does not create cgroups yet (it would write cpu.max in a child group \
                 of /sys/fs/cgroup, or cpu.cfs_quota_us under v1)"
            };
            Err(Error::Usage(format!(
                "[find_limit] hardware class {} is not supported here: {missing}; use {{ cpus = \"0\" }} classes instead",
                class.name()
            )))
        }
    }
}

/// The mock upstream's CPU per request, when the target is the mock with CPU work.
fn cpu_work(target: &Target) -> Option<CpuWork> {
    let Target::Mock(mock) = target else {
        return None;
    };
    let mean_s = mock.cpu_ms? / 1000.0;
    if mean_s <= 0.0 {
        return None;
    }
    Some(match mock.cpu_dist.as_deref() {
        Some("exponential") => CpuWork::Exponential(mean_s),
        Some("lognormal") => CpuWork::Lognormal {
            mean_s,
            sigma: mock.cpu_sigma.unwrap_or(0.5),
        },
        _ => CpuWork::Constant(mean_s),
    })
}

/// The cores a class gives the upstream: its CPU list's length, its quota,
/// or (as configured) the mock's `cpus`, else every core this process may use.
fn class_cores(class: Option<&HardwareClass>, target: &Target) -> f64 {
    let count = |list: &str| cpu_list_len(list) as f64;
    match class {
        Some(HardwareClass::Cpus(list)) => count(list),
        Some(HardwareClass::CpuQuota(q)) => *q,
        None => match target {
            Target::Mock(m) if m.cpus.is_some() => count(m.cpus.as_deref().unwrap_or("0")),
            _ => std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        },
    }
}

/// How many CPUs a validated list such as `"0,2-3"` names (at least 1).
fn cpu_list_len(list: &str) -> usize {
    let mut cpus = std::collections::BTreeSet::new();
    for part in list.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            cpus.extend(a..=b.max(a));
        }
    }
    cpus.len().max(1)
}

/// The row of one step from its run: shares and goodput over the measured
/// intervals (those wholly after the warm-up and inside the step).
#[allow(clippy::too_many_arguments)]
fn step_row(
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
    let warmup_s = spec.warmup.as_secs_f64();
    let load_s = (warmup_s + spec.duration.as_secs_f64())
        .max(output.step.driver.duration_s)
        .max(1e-9);
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
            Class::IoError,
            Class::NotSent,
        ]),
        p50_2xx_us: q(0.5),
        p99_2xx_us: q(0.99),
        share_2xx_late,
        upstream_cpu_s,
        wasted_cpu_s: upstream.map(|t| round3(t.wasted_cpu_s)),
        upstream_cores: upstream_cpu_s.map(|c| round3((c / load_s).min(f64::MAX))),
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
fn class_result(
    class: &str,
    cores: f64,
    answer: Answer,
    model: Option<ps_model::ModelLimit>,
    timeout_s: f64,
    work: Option<CpuWork>,
    rows: &[StepRow],
) -> ClassResult {
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
        note,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a fake step function that breaks at and
    /// above `cliff` (and at `flaky`, once, when given).
    fn against_cliff(spec: SearchSpec, cliff: u32) -> (Answer, Vec<(u32, bool)>) {
        search(&spec, &mut |l, _| Ok(Some(l >= cliff))).expect("no error")
    }

    fn spec(min: u32, max: u32, start: u32) -> SearchSpec {
        SearchSpec {
            min,
            max,
            start,
            repeats: 2,
            max_steps: 40,
        }
    }

    #[test]
    fn find_limit_search_finds_the_cliff_in_few_steps() {
        // (min, max, start, cliff, most steps allowed)
        let cases = [
            (1, 64, 1, 24, 14), // from the bottom: 1,2,4,8,16,32 then bisect 24..32
            (1, 64, 5, 6, 6),   // started at the model's answer: 5, 6, then confirm
            (1, 64, 20, 6, 12), // started too high: down 19, 17, 13, 5, then up
            (1, 64, 64, 2, 14),
            (1, 1000, 1, 700, 26),
            (3, 9, 3, 5, 8),
        ];
        for (min, max, start, cliff, most) in cases {
            let (answer, seen) = against_cliff(spec(min, max, start), cliff);
            assert_eq!(
                answer.limit,
                Some(cliff - 1),
                "cliff {cliff} from {start}: {seen:?}"
            );
            assert_eq!(answer.first_break, Some(cliff), "{seen:?}");
            assert!(answer.confirmed);
            assert!(
                seen.len() <= most,
                "cliff {cliff} from {start}: {} steps {seen:?}",
                seen.len()
            );
            // The answer and its neighbour each ran `repeats` times.
            assert_eq!(
                seen.iter().filter(|s| s.0 == cliff - 1).count(),
                2,
                "{seen:?}"
            );
            assert_eq!(seen.iter().filter(|s| s.0 == cliff).count(), 2, "{seen:?}");
        }
    }

    #[test]
    fn find_limit_search_edges_of_the_range() {
        // Even the smallest limit breaks: no answer.
        let (answer, seen) = against_cliff(spec(1, 16, 4), 1);
        assert_eq!(
            (answer.limit, answer.first_break),
            (None, Some(1)),
            "{seen:?}"
        );
        // Nothing breaks up to max: max, confirmed.
        let (answer, seen) = against_cliff(spec(1, 16, 4), 100);
        assert_eq!(
            (answer.limit, answer.first_break),
            (Some(16), None),
            "{seen:?}"
        );
        assert_eq!(seen.iter().filter(|s| s.0 == 16).count(), 2);
    }

    #[test]
    fn find_limit_search_a_failed_repeat_moves_the_answer_down() {
        // 6 passes its first run and breaks its second: the answer is 5.
        let mut runs_of_6 = 0;
        let (answer, seen) = search(&spec(1, 64, 6), &mut |l, _| {
            if l == 6 {
                runs_of_6 += 1;
                return Ok(Some(runs_of_6 >= 2));
            }
            Ok(Some(l >= 7))
        })
        .unwrap();
        assert_eq!(
            (answer.limit, answer.first_break),
            (Some(5), Some(6)),
            "{seen:?}"
        );
    }

    #[test]
    fn find_limit_search_stops_within_its_budget_and_on_interrupt() {
        let (answer, seen) = against_cliff(
            SearchSpec {
                max_steps: 3,
                ..spec(1, 1000, 1)
            },
            700,
        );
        assert_eq!(seen.len(), 3);
        assert!(!answer.confirmed);
        let mut n = 0;
        let (answer, seen) = search(&spec(1, 64, 5), &mut |l, _| {
            n += 1;
            Ok(if n > 2 { None } else { Some(l >= 6) })
        })
        .unwrap();
        assert_eq!(seen, vec![(5, false), (6, true)]);
        assert_eq!((answer.limit, answer.confirmed), (Some(5), false));
    }

    #[test]
    fn find_limit_next_probe_names_its_phase() {
        let s = spec(1, 64, 5);
        assert_eq!(next_probe(&s, &[]), Next::Probe(5, StepKind::Bracket));
        assert_eq!(
            next_probe(&s, &[(5, false)]),
            Next::Probe(6, StepKind::Bracket)
        );
        assert_eq!(
            next_probe(&s, &[(5, false), (6, false), (8, true)]),
            Next::Probe(7, StepKind::Bisect)
        );
        assert_eq!(
            next_probe(&s, &[(5, false), (6, true)]),
            Next::Probe(5, StepKind::Confirm)
        );
    }
}
