//! One measured load step against a running topology: the one place load
//! is driven. `run`, `sweep`, `find-limit` and `abort-audit` are
//! compositions of it.
//!
//! Takes a [`Step`] (an open-loop schedule or a closed loop, and how much
//! of its start is warm-up) and a started [`Topology`]; drives it with the
//! driver while a watcher thread checks the components (one that dies is
//! recorded, which, when and how, and the step goes on counting the failed
//! requests); hands on a typed [`StepResult`]. [`Tally`] adds up the
//! intervals of a step's measured part. It reads no component's report:
//! that is [`super::run::finish`]'s, once the load is over.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

use super::{Bench, Event};
use crate::driver::{self, DriverOutput, Load, Plan, Progress};
use crate::error::Result;
use crate::outcome::Class;
use crate::record::{IntervalRow, new_histogram};
use crate::topology::{ChildExit, Component, ComponentStall, Topology};

/// How often the components are checked while the driver runs: the
/// precision of a death's or a stall's time in the report.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// Shortest span of stopped processes reported as a stall.
const MIN_STOPPED: f64 = 0.5;

/// What one step offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The load: open-loop phases or closed-loop clients.
    pub load: Load,
    /// How much of its start is warm-up, not measured: the load runs on
    /// through it in one go, so the target's queue is never drained between
    /// warm-up and measurement.
    pub warmup: Duration,
    /// `Some`: the scenario's `[client] reuse` replaced for this step
    /// (a sweep's keep-alive twin of a step with a connection per request).
    pub reuse: Option<bool>,
}

impl Step {
    /// A step measured from its first arrival.
    pub fn measured(load: Load) -> Step {
        Step {
            load,
            warmup: Duration::ZERO,
            reuse: None,
        }
    }
}

/// What one step measured.
#[derive(Debug)]
pub struct StepResult {
    /// Wall-clock start of the load.
    pub started_at: DateTime<Utc>,
    /// What was offered.
    pub step: Step,
    /// What the driver measured (totals over warm-up and measured part).
    pub driver: DriverOutput,
    /// Key names in scenario order (matching `driver.totals.keys`).
    pub key_names: Vec<String>,
    /// Components that died while the driver ran: which, when, how.
    pub component_exits: Vec<ChildExit>,
    /// Spans in which a component's processes were stopped: no progress,
    /// no CPU, requests waiting on it.
    pub component_stalls: Vec<ComponentStall>,
    /// The CPU the components used while the load ran.
    pub cpu: StepCpu,
}

/// The CPU the started components used while a step's load ran (from its
/// first connection to its last response), read from their processes: what
/// they had while loaded, not the work they finished afterwards.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepCpu {
    /// Wall time of the load, s.
    pub wall_s: f64,
    /// CPU seconds of the upstream's processes, when the harness started it.
    pub upstream_s: Option<f64>,
    /// CPU seconds of the gateway's processes, when the harness started one.
    pub gateway_s: Option<f64>,
}

impl StepCpu {
    /// The upstream's CPU as cores while loaded.
    pub fn upstream_cores(&self) -> Option<f64> {
        self.upstream_s.map(|s| s / self.wall_s.max(1e-9))
    }
}

/// CPU seconds of the upstream's and the gateway's processes now.
fn cpu_now(topology: &Topology) -> (Option<f64>, Option<f64>) {
    let cpu = |c: Option<&dyn Component>| c.and_then(|c| c.child().activity()).map(|a| a.cpu_s());
    (
        cpu(topology.upstream.as_deref().map(|u| u as &dyn Component)),
        cpu(topology.gateway.as_deref().map(|g| g as &dyn Component)),
    )
}

/// Runs `step` against `topology`, telling `on_event` of the step's start
/// and of each interval as it closes.
pub fn run(
    bench: &Bench,
    topology: &mut Topology,
    step: Step,
    on_event: &mut dyn FnMut(Event),
) -> Result<StepResult> {
    let replaced;
    let scenario = match step.reuse {
        Some(reuse) if reuse != bench.scenario.client.reuse => {
            let mut s = bench.scenario.clone();
            s.client.reuse = reuse;
            replaced = s;
            &replaced
        }
        _ => bench.scenario,
    };
    let plan = Plan::trusting(
        scenario,
        &topology.url,
        step.load.clone(),
        topology.ca_pem.as_deref().map(str::as_bytes),
    )?;
    let (upstream_before, gateway_before) = cpu_now(topology);
    let wall = Instant::now();
    let (driver, mut watched) = drive_watching(&plan, bench, on_event, topology);
    let wall_s = wall.elapsed().as_secs_f64();
    let (upstream_after, gateway_after) = cpu_now(topology);
    let used = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0));
    let cpu = StepCpu {
        wall_s,
        upstream_s: used(upstream_before, upstream_after),
        gateway_s: used(gateway_before, gateway_after),
    };
    let driver = driver?;
    // The load began at the shards' common start, after the connections
    // were warm (and at --start-at, when given).
    let started_at = DateTime::<Utc>::from(driver.started_at);
    let component_exits = std::mem::take(&mut watched.exits);
    let component_stalls = std::mem::take(&mut watched.stalls);
    Ok(StepResult {
        started_at,
        step,
        driver,
        key_names: plan.key_names(),
        component_exits,
        component_stalls,
        cpu,
    })
}

/// Runs the driver while a watcher thread checks the components every
/// [`WATCH_EVERY`]; hands back the driver's result and what the watcher saw.
fn drive_watching(
    plan: &Plan,
    bench: &Bench,
    on_event: &mut dyn FnMut(Event),
    topology: &mut Topology,
) -> (Result<DriverOutput>, Watched) {
    let run_start = Instant::now();
    let components = topology.components_mut();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (driver, watched) = std::thread::scope(|scope| {
        let watcher = std::thread::Builder::new()
            .name("contend-watch".into())
            .spawn_scoped(scope, move || watch(components, run_start, &done_rx));
        let driver = driver::run(
            plan,
            bench.stop.receiver(),
            &mut |progress| match progress {
                Progress::Began(at) => on_event(Event::Step {
                    started_at: DateTime::<Utc>::from(at),
                    load: &plan.load,
                }),
                Progress::Interval(row) => on_event(Event::Interval(row)),
            },
        );
        drop(done_tx);
        (driver, watcher.ok().and_then(|h| h.join().ok()))
    });
    // Without a watcher thread the components are checked once, at the end.
    let watched = watched.unwrap_or_else(|| {
        let at_s = run_start.elapsed().as_secs_f64();
        Watched {
            exits: topology
                .components_mut()
                .into_iter()
                .filter_map(|c| c.exit_report(at_s))
                .collect(),
            ..Watched::default()
        }
    });
    (driver, watched)
}

/// What the watcher saw of the components while the load ran.
#[derive(Debug, Default)]
struct Watched {
    /// Components that ended on their own, in order of death.
    exits: Vec<ChildExit>,
    /// Spans in which a component's processes were stopped.
    stalls: Vec<ComponentStall>,
}

/// One component while it is watched: since when its processes have been
/// stopped, if they are.
///
/// Why only a stopped process counts as a stall: a component that uses no
/// CPU while requests wait may be waiting for its own upstream (busy, or
/// sleeping on purpose, like the mock's `sleep_ms`), which is no stall of
/// its own; a stopped one (SIGSTOP, a debugger) is certainly stalled.
struct Tracked<'a> {
    component: &'a mut dyn Component,
    stopped_since: Option<f64>,
}

impl Tracked<'_> {
    /// Reads the component at `at_s` (as gone when `end`), closing a
    /// stopped span that ends then.
    fn observe(&mut self, at_s: f64, end: bool, seen: &mut Watched) {
        let stopped = !end && self.component.child().activity().is_some_and(|a| a.stopped);
        match (self.stopped_since, stopped) {
            (None, true) => self.stopped_since = Some(at_s),
            (Some(since), false) => {
                if at_s - since >= MIN_STOPPED {
                    seen.stalls.push(ComponentStall {
                        component: self.component.name().to_string(),
                        pid: self.component.child().pid(),
                        from_s: round3(since),
                        to_s: round3(at_s),
                        reason: "stopped".into(),
                    });
                }
                self.stopped_since = None;
            }
            _ => {}
        }
    }
}

/// Checks `components` until `done` closes, once more then, so a death in
/// the last moments is not missed: deaths, and spans of stopped processes.
fn watch(
    components: Vec<&mut dyn Component>,
    run_start: Instant,
    done: &mpsc::Receiver<()>,
) -> Watched {
    let mut tracked: Vec<Tracked> = components
        .into_iter()
        .map(|component| Tracked {
            component,
            stopped_since: None,
        })
        .collect();
    let mut seen = Watched::default();
    let mut dead = vec![false; tracked.len()];
    loop {
        let finished = !matches!(
            done.recv_timeout(WATCH_EVERY),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        let at_s = run_start.elapsed().as_secs_f64();
        for (t, dead) in tracked.iter_mut().zip(dead.iter_mut()) {
            if *dead {
                continue;
            }
            if let Some(exit) = t.component.exit_report(at_s) {
                seen.exits.push(exit);
                *dead = true;
                t.observe(at_s, true, &mut seen);
                continue;
            }
            t.observe(at_s, finished, &mut seen);
        }
        if finished || dead.iter().all(|d| *d) {
            seen.stalls.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
            return seen;
        }
    }
}

fn round3(x: f64) -> f64 {
    crate::analysis::round(x, 3)
}

/// The intervals of a step's measured part, added up.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Length of the intervals, s.
    pub seconds: f64,
    /// Outcomes by class ([`Class::index`]).
    pub by_class: [u64; Class::ALL.len()],
    /// Arrivals dispatched.
    pub offered: u64,
    /// Latency from the intended send time of what completed in them, us.
    pub latency_us: Histogram<u64>,
    /// The highest interval P99 of schedule lag, us.
    pub lag_p99_us: u64,
}

impl Tally {
    /// Adds up `rows`.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a IntervalRow>) -> Tally {
        let mut tally = Tally {
            seconds: 0.0,
            by_class: [0; Class::ALL.len()],
            offered: 0,
            latency_us: new_histogram(),
            lag_p99_us: 0,
        };
        let mut deserializer = Deserializer::new();
        for r in rows {
            tally.seconds += r.duration_s;
            if let Ok(h) = deserializer.deserialize::<u64, _>(&mut &r.latency_hist_v2[..]) {
                let _ = tally.latency_us.add(&h);
            }
            for (a, b) in tally.by_class.iter_mut().zip(r.by_class) {
                *a += b;
            }
            tally.offered += r.offered;
            tally.lag_p99_us = tally.lag_p99_us.max(r.lag_p99_us);
        }
        tally
    }

    /// Outcomes of one class.
    pub fn count(&self, class: Class) -> u64 {
        self.by_class[class.index()]
    }

    /// Every outcome.
    pub fn outcomes(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// Complete responses, any status.
    pub fn responses(&self) -> u64 {
        Class::ALL
            .iter()
            .filter(|c| c.is_response())
            .map(|c| self.count(*c))
            .sum()
    }

    /// The share of outcomes in `classes`, 0 to 1, rounded to 4 places (0 without outcomes).
    pub fn share(&self, classes: &[Class]) -> f64 {
        let outcomes = self.outcomes();
        if outcomes == 0 {
            return 0.0;
        }
        let n: u64 = classes.iter().map(|c| self.count(*c)).sum();
        crate::analysis::round(n as f64 / outcomes as f64, 4)
    }

    /// A latency quantile, us (0 when nothing completed).
    pub fn latency_at(&self, quantile: f64) -> u64 {
        if self.latency_us.is_empty() {
            0
        } else {
            self.latency_us.value_at_quantile(quantile)
        }
    }
}

impl StepResult {
    /// The step's intervals that start once its warm-up is over (the
    /// drain after the load included).
    pub fn after_warmup(&self) -> impl Iterator<Item = &IntervalRow> {
        let warmup_s = self.step.warmup.as_secs_f64();
        self.driver
            .intervals
            .iter()
            .filter(move |r| r.start_s + 1e-9 >= warmup_s)
    }

    /// The intervals wholly inside the measured part: after the warm-up,
    /// ending by the load's end. Completions counted there are the target's
    /// throughput while loaded, without the warm-up's backlog or the drain.
    pub fn inside(&self) -> impl Iterator<Item = &IntervalRow> {
        let end_s = self.step.load.duration().as_secs_f64() + 1e-6;
        self.after_warmup()
            .filter(move |r| r.start_s + r.duration_s <= end_s)
    }
}
