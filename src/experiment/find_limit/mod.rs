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
//! The search itself is pure (`search`); the rows and the answer per class
//! are `rows`'.

mod rows;
mod search;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::run::{self, RunOutput};
use super::step::Step;
use super::{Bench, Event};
use crate::analysis::ps_model::{self, CpuWork};
use crate::driver::Load;
use crate::error::{Error, Result};
use crate::scenario::{
    self, ArrivalKind, FindLimitSpec, HardwareClass, Phase, Rate, Scenario, Target,
};
use crate::topology::cgroup::{Cgroup, Limits};
use contend_gateway::ConcurrencyRule;
use contend_units::fmt_us;
use rows::{class_result, round3, round6, step_row};
pub use search::{Answer, Next, SearchSpec, StepKind, next_probe, search};

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
    /// The cores the upstream's processes used while the step's load ran
    /// (their CPU time over the load's wall time; the backlog it worked off
    /// after the load is not in it).
    pub upstream_cores: Option<f64>,
    /// The upstream's CPU per request it handled in the measured part (by its own count), us, from its
    /// processes.
    #[serde(default)]
    pub upstream_cpu_per_request_us: Option<f64>,
    /// The cores the gateway's processes used in the measured part.
    #[serde(default)]
    pub gateway_cores: Option<f64>,
    /// The gateway's CPU per request it handled in the measured part (by its own count), us.
    #[serde(default)]
    pub gateway_cpu_per_request_us: Option<f64>,
    /// In a class with a CPU quota: the share of the upstream's CFS
    /// periods in the measured part whose quota ran out, 0 to 1.
    #[serde(default)]
    pub throttled_share: Option<f64>,
    /// In a class with a CPU quota: the upstream's time throttled, s.
    #[serde(default)]
    pub throttled_s: Option<f64>,
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
    /// How the class holds the upstream: `pinned` (a CPU set), `quota`
    /// (a CFS quota), `memory`, or a combination (`pinned+quota`); `as
    /// configured` without a class.
    #[serde(default)]
    pub placement: String,
    /// The throttled share of CFS periods at the measured limit (a quota
    /// class), highest over its runs.
    #[serde(default)]
    pub throttled_share_at_limit: Option<f64>,
    /// True when Ctrl-C or SIGTERM cut the class's search short: its
    /// answer (if any) is the largest limit that held among those measured
    /// whole, unconfirmed.
    #[serde(default)]
    pub interrupted: bool,
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
    /// True when Ctrl-C or SIGTERM cut the experiment short: a class cut
    /// short is marked, and the classes after it did not run.
    #[serde(default)]
    pub interrupted: bool,
    /// True when the scenario's retry policy was compared (`--retries
    /// compare`): these answers are with it, [`Self::without_retries`]'s
    /// without.
    #[serde(default)]
    pub retries_compared: bool,
    /// The same search with no retry policy; `None` when not compared, or
    /// when a stop came before it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_retries: Option<Box<FindLimitResult>>,
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
        interrupted: bench.stop.is_stopped(),
        retries_compared: false,
        without_retries: None,
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
            "experiment = \"find-limit\" starts the gateway with each limit: set [gateway] kind = \"reference\", \"nginx\" or \"haproxy\"".into(),
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
    /// `pinned`, `quota`, ... (see [`ClassResult::placement`]).
    placement: String,
    /// The cgroup of a quota or memory class, removed when the search ends.
    cgroup: Option<Cgroup>,
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
        if let (Some(set), Target::Mock(mock)) =
            (class.and_then(|c| c.cpuset.as_ref()), &mut base.target)
        {
            mock.cpus = Some(set.clone());
        }
        let cgroup = match class.filter(|c| c.needs_cgroup()) {
            Some(c) => Some(Cgroup::create(limits(c))?),
            None => None,
        };
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
            placement: class.map_or_else(|| "as configured".to_string(), placement),
            cgroup,
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
        let result = class_result(self, answer, self.bench.stop.is_stopped());
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
            retry_after: None,
        });
        // Long enough for a broken step's backlog (at most the step's
        // offered work past capacity, about its own length at 2x) to drain.
        let settle = (self.spec.warmup + self.spec.duration) * 2 + Duration::from_secs(2);
        let step = Step {
            load: Load::Open(step_phases(self.spec, self.rate_per_s)),
            warmup: self.spec.warmup,
            reuse: None,
        };
        let bench = Bench {
            scenario: &scenario,
            cgroup: self.cgroup.as_ref(),
            ..*self.bench
        };
        let output = run::run(&bench, step, settle, on_event)?;
        if output.step.driver.interrupted {
            // Cut short: its load was not offered whole, so it decides
            // nothing; what it measured still goes to the report.
            self.runs.push((limit, output));
            return Ok(None);
        }
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
        self.rows.push(row);
        self.runs.push((limit, output));
        Ok(Some(broke))
    }
}

/// Every class holds the mock upstream the harness starts; one with a
/// quota or a memory limit needs a cgroup this process can make: one is
/// made and removed now, so a host that cannot is told before any load.
fn check_class(class: &HardwareClass, target: &Target) -> Result<()> {
    if !matches!(target, Target::Mock(_)) {
        return Err(Error::Usage(format!(
            "[find_limit] hardware class {} holds the mock upstream: use [upstream] kind = \"mock\"",
            class.name()
        )));
    }
    if class.needs_cgroup() {
        Cgroup::create(limits(class)).map_err(|e| match e {
            Error::Usage(why) => Error::Usage(format!(
                "[find_limit] hardware class {} is not supported here: {why}",
                class.name()
            )),
            other => other,
        })?;
    }
    Ok(())
}

/// What a class's cgroup limits.
fn limits(class: &HardwareClass) -> Limits {
    Limits {
        cpus: class.cpus,
        memory_bytes: class.memory_bytes,
    }
}

/// How a class holds the upstream: `pinned`, `quota`, `memory`, joined by `+`.
fn placement(class: &HardwareClass) -> String {
    let parts: Vec<&str> = [
        class.cpuset.as_ref().map(|_| "pinned"),
        class.cpus.map(|_| "quota"),
        class.memory_bytes.map(|_| "memory"),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts.join("+")
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

/// The cores a class gives the upstream: its CPU set's length, its quota
/// (the smaller of the two when it has both), or (as configured) the
/// mock's `cpus`, else every core this process may use.
fn class_cores(class: Option<&HardwareClass>, target: &Target) -> f64 {
    let count = |list: &str| cpu_list_len(list) as f64;
    let configured = || match target {
        Target::Mock(m) if m.cpus.is_some() => count(m.cpus.as_deref().unwrap_or("0")),
        _ => std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    };
    let Some(class) = class else {
        return configured();
    };
    // A quota caps the cores of a set (or of the machine): the smaller holds.
    let set = class.cpuset.as_deref().map_or_else(configured, count);
    class.cpus.map_or(set, |quota| quota.min(set))
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
