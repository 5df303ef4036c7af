//! One measured load step against a running topology: the one place load
//! is driven. `run`, `sweep`, `find-limit` and `abort-audit` are
//! compositions of it.
//!
//! Takes a [`Step`] (an open-loop schedule or a closed loop, and how much
//! of its start is warm-up) and a started [`Topology`]; drives it with the
//! driver while a watcher thread checks the components (one that dies is
//! recorded, which, when and how, and the step goes on counting the failed
//! requests) and reads them, and the `[[scrape]]` targets, at every
//! interval boundary of the driver (`experiment::sampling`); hands on a typed
//! [`StepResult`] with that [`Telemetry`]. [`Tally`] adds up the intervals
//! of a step's measured part. It reads no component's report: that is
//! [`super::run::finish`]'s, once the load is over.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

use super::faults::{AppliedFault, Schedule};
use super::sampling::Sampler;
use super::{Bench, Event};
use crate::driver::{self, DriverOutput, Load, Plan, Progress};
use crate::error::{Error, Result};
use crate::outcome::Class;
use crate::record::{IntervalRow, new_histogram};
use crate::scenario::ScrapeSource;
use crate::topology::telemetry::SourceSeries;
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
    /// The components and `[[scrape]]` targets, read every interval.
    pub telemetry: Telemetry,
    /// The `[[faults]]` as they were applied, times from the load's start.
    pub faults: Vec<AppliedFault>,
}

/// What the system under test did, interval by interval: one series per
/// component the harness started (`upstream`, `gateway`) and per
/// `[[scrape]]` target, rows indexed as the driver's intervals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telemetry {
    /// One per source, the components first.
    pub series: Vec<SourceSeries>,
}

impl Telemetry {
    /// The series of `role` (`upstream`, `gateway`, a scrape's name).
    pub fn get(&self, role: &str) -> Option<&SourceSeries> {
        self.series.iter().find(|s| s.role == role)
    }

    /// `later` appended: its rows' indexes moved up by `index_offset` and
    /// their starts by `offset_s` (the steps of a sweep, end to end).
    pub fn append(&mut self, later: Telemetry, index_offset: u64, offset_s: f64) {
        for mut series in later.series {
            for s in &mut series.samples {
                s.index += index_offset;
                s.start_s = ((s.start_s + offset_s) * 1000.0).round() / 1000.0;
            }
            series.gone_at_s = series.gone_at_s.map(|t| t + offset_s);
            match self.series.iter_mut().find(|s| s.role == series.role) {
                Some(mine) => {
                    mine.samples.append(&mut series.samples);
                    mine.counters.append(&mut series.counters);
                    mine.unread += series.unread;
                    mine.gone_at_s = mine.gone_at_s.or(series.gone_at_s);
                    mine.first_error = mine.first_error.take().or(series.first_error);
                }
                None => self.series.push(series),
            }
        }
    }

    /// A warning per source whose metrics could not always be read.
    pub fn warnings(&self) -> Vec<String> {
        self.series
            .iter()
            .filter(|s| s.unread > 0)
            .map(|s| {
                format!(
                    "the {} ({})'s own metrics could not be read {} time(s), so those intervals have none: {}",
                    s.role,
                    s.kind,
                    s.unread,
                    s.first_error.as_deref().unwrap_or("no reason given")
                )
            })
            .collect()
    }
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
    let mut plan = Plan::trusting(
        scenario,
        &topology.url,
        step.load.clone(),
        topology.ca_pem.as_deref().map(str::as_bytes),
    )?;
    // Gateway replicas: the driver's connections are spread over them all.
    let addrs = topology.gateway_addrs();
    if addrs.len() > 1 {
        plan.more_addrs = addrs[1..].to_vec();
    }
    check_scrape_pids(bench)?;
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
        telemetry: std::mem::take(&mut watched.telemetry),
        faults: std::mem::take(&mut watched.faults),
    })
}

/// Refuses a `[[scrape]] pid` that names no running process: it would be
/// read as nothing, every interval.
fn check_scrape_pids(bench: &Bench) -> Result<()> {
    for spec in &bench.scenario.scrape {
        if let ScrapeSource::Pid(pid) = spec.source
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            return Err(Error::Usage(format!(
                "[[scrape]] {:?}: no process {pid} is running: start it first, or fix the pid",
                spec.name
            )));
        }
    }
    Ok(())
}

/// What the watcher hears from the driver's thread.
enum ToWatcher {
    /// The driver's common start, CLOCK_MONOTONIC ns.
    Started(u64),
}

/// Runs the driver while a watcher thread checks the components every
/// [`WATCH_EVERY`] and reads them at each interval boundary; hands back the
/// driver's result and what the watcher saw.
fn drive_watching(
    plan: &Plan,
    bench: &Bench,
    on_event: &mut dyn FnMut(Event),
    topology: &mut Topology,
) -> (Result<DriverOutput>, Watched) {
    let run_start = Instant::now();
    let roles = topology.roles();
    // The cgroup holds the upstream (find-limit's class), the first component.
    let cgroup = bench
        .cgroup
        .filter(|_| topology.upstream.is_some())
        .map(|g| (0, g));
    let components = topology.components_mut();
    let scrape = &bench.scenario.scrape;
    // The first reading is taken here, before the driver starts, so that
    // no request falls before it.
    let sampler = {
        let named: Vec<(&str, &dyn Component)> = roles
            .iter()
            .map(String::as_str)
            .zip(components.iter().map(|c| &**c))
            .collect();
        let mut sampler = Sampler::new(&named, scrape, cgroup, plan.interval);
        let all: Vec<&dyn Component> = named.iter().map(|(_, c)| *c).collect();
        sampler.begin(&all);
        sampler
    };
    let (to_watcher, from_driver) = mpsc::channel::<ToWatcher>();
    let (driver, watched) = std::thread::scope(|scope| {
        let watcher = std::thread::Builder::new()
            .name("contend-watch".into())
            .spawn_scoped(scope, move || {
                let schedule = Schedule::new(&bench.scenario.faults);
                watch(
                    components,
                    &roles,
                    sampler,
                    schedule,
                    run_start,
                    &from_driver,
                )
            });
        let driver = driver::run(
            plan,
            bench.stop.receiver(),
            &mut |progress| match progress {
                Progress::Began { at, start_ns } => {
                    let _ = to_watcher.send(ToWatcher::Started(start_ns));
                    on_event(Event::Step {
                        started_at: DateTime::<Utc>::from(at),
                        load: &plan.load,
                    })
                }
                Progress::Interval(row) => on_event(Event::Interval(row)),
            },
        );
        drop(to_watcher);
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
    /// The components and targets read at every interval boundary.
    telemetry: Telemetry,
    /// The `[[faults]]` as applied.
    faults: Vec<AppliedFault>,
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

/// Checks `components` until the driver's channel closes, once more then,
/// so a death in the last moments is not missed: deaths, and spans of
/// stopped processes; and reads them with `sampler` at every interval
/// boundary once the driver has started.
///
/// `[[faults]]` are applied here too, on `schedule`, from the load's
/// start: this thread already holds the components and wakes in time.
fn watch(
    components: Vec<&mut dyn Component>,
    roles: &[String],
    mut sampler: Sampler,
    mut schedule: Schedule,
    run_start: Instant,
    from_driver: &mpsc::Receiver<ToWatcher>,
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
    let mut load_start: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let wait = [sampler.until_next(), schedule.until_next(load_start, now)]
            .into_iter()
            .flatten()
            .fold(WATCH_EVERY, Duration::min);
        let finished = match from_driver.recv_timeout(wait) {
            Ok(ToWatcher::Started(start_ns)) => {
                sampler.start(start_ns);
                // The common start may lie ahead of now (connections warming).
                let ahead_ns = start_ns as i64 - crate::sys::monotonic_ns() as i64;
                let now = Instant::now();
                load_start = Some(if ahead_ns >= 0 {
                    now + Duration::from_nanos(ahead_ns as u64)
                } else {
                    now.checked_sub(Duration::from_nanos(ahead_ns.unsigned_abs()))
                        .unwrap_or(now)
                });
                false
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        // A fault's end (a resume) before the boundary's reading, which
        // would otherwise wait on the stopped component; its start after
        // it, so that what the fault causes is counted in the interval
        // after the fault, not in the one before.
        let mut revived = Vec::new();
        let mut apply =
            |tracked: &mut Vec<Tracked>, schedule: &mut Schedule, revived: &mut Vec<usize>| {
                let mut named: Vec<(&str, &mut (dyn Component + '_))> = roles
                    .iter()
                    .map(String::as_str)
                    .zip(tracked.iter_mut().map(|t| &mut *t.component))
                    .collect();
                schedule.apply(load_start, Instant::now(), finished, &mut named, &mut |i| {
                    dead[i] = false;
                    revived.push(i);
                });
            };
        if schedule.end_due(load_start, Instant::now()) {
            apply(&mut tracked, &mut schedule, &mut revived);
            // A restart's telemetry goes on with the new process, from this
            // boundary's reading on.
            for i in revived.drain(..) {
                sampler.revived(i, &*tracked[i].component);
            }
        }
        {
            let all: Vec<&dyn Component> = tracked.iter().map(|t| &*t.component).collect();
            sampler.tick(&all, finished);
        }
        apply(&mut tracked, &mut schedule, &mut revived);
        for i in revived {
            sampler.revived(i, &*tracked[i].component);
        }
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
        if finished {
            seen.stalls.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
            seen.telemetry = sampler.finish();
            seen.faults = schedule.finish();
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

/// What one component cost over a step's measured part (the intervals
/// wholly inside it), from its processes: the planning numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// CPU in use, cores.
    pub cores: f64,
    /// CPU per request it handled in those intervals (by its own count:
    /// the mock's started work, the gateway's responses, nginx's
    /// requests; else per response the client got), us.
    pub cpu_per_request_us: Option<f64>,
    /// The most resident memory at an interval's end, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The share of its CFS periods that were throttled (in a cgroup with
    /// a CPU quota), 0 to 1.
    pub throttled_share: Option<f64>,
    /// Time it spent throttled, s.
    pub throttled_s: Option<f64>,
}

impl StepResult {
    /// What the component of `role` (`upstream`, `gateway`) cost over the
    /// measured part; `None` when the harness did not start it or it was
    /// never read there.
    pub fn cost(&self, role: &str) -> Option<Cost> {
        let series = self.telemetry.get(role)?;
        let inside: Vec<u64> = self.inside().map(|r| r.index).collect();
        let usage = series.usage(|i| inside.contains(&i));
        let cores = usage.cores()?;
        let responses = Tally::of(self.inside()).responses();
        Some(Cost {
            cores: round3(cores),
            cpu_per_request_us: usage.cpu_per_request_us(responses),
            peak_rss_bytes: usage.peak_rss_bytes,
            throttled_share: usage
                .throttled_share()
                .map(|s| crate::analysis::round(s, 4)),
            throttled_s: usage.throttled_s.map(|s| crate::analysis::round(s, 3)),
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Totals;
    use crate::scenario::{ArrivalKind, Phase, Rate};
    use crate::topology::telemetry::ComponentSample;

    /// An interval row of `responses` 2xx.
    fn row(index: u64, responses: u64) -> IntervalRow {
        let mut by_class = [0; Class::ALL.len()];
        by_class[Class::Success.index()] = responses;
        IntervalRow {
            index,
            start_s: index as f64,
            duration_s: 1.0,
            offered: responses,
            sent: responses,
            by_class,
            p50_us: 0,
            p90_us: 0,
            p99_us: 0,
            p999_us: 0,
            max_us: 0,
            lag_p99_us: 0,
            in_flight: 0,
            driver_cpu_cores: 0.0,
            latency_hist_v2: Vec::new(),
            new_connections: 0,
            connect_p99_us: 0,
            tls_handshake_p99_us: 0,
            ..IntervalRow::default()
        }
    }

    /// A component's row of `cpu_s` CPU seconds in interval `index`.
    fn sample(index: u64, cpu_s: f64, rss: u64) -> ComponentSample {
        ComponentSample {
            index,
            start_s: index as f64,
            duration_s: 1.0,
            alive: true,
            cpu_user_s: Some(cpu_s),
            cpu_system_s: Some(0.0),
            cpu_cores: Some(cpu_s),
            rss_bytes: Some(rss),
            ..ComponentSample::default()
        }
    }

    /// A step of 1 s warm-up and 2 s measured, with a drain interval after:
    /// its cost counts the two measured intervals only.
    #[test]
    fn a_components_cost_is_over_the_measured_intervals_only() {
        let phase = |secs| Phase {
            rate: Rate::Constant(100.0),
            duration: Duration::from_secs(secs),
            arrival: ArrivalKind::Constant,
        };
        let gateway = SourceSeries {
            role: "gateway".into(),
            kind: "reference gateway".into(),
            samples: vec![
                sample(0, 0.9, 10),
                sample(1, 0.2, 20),
                sample(2, 0.3, 30),
                sample(3, 0.9, 99),
            ],
            ..SourceSeries::default()
        };
        let result = StepResult {
            started_at: Utc::now(),
            step: Step {
                load: Load::Open(vec![phase(1), phase(2)]),
                warmup: Duration::from_secs(1),
                reuse: None,
            },
            driver: DriverOutput {
                totals: Totals::new(0),
                intervals: vec![row(0, 100), row(1, 1000), row(2, 1500), row(3, 10)],
                duration_s: 3.0,
                interrupted: false,
                threads: 1,
                requests: None,
                started_at: std::time::SystemTime::now(),
                start_late_s: None,
                protocol: crate::driver::Protocol::Http1,
                tls: false,
            },
            key_names: Vec::new(),
            component_exits: Vec::new(),
            component_stalls: Vec::new(),
            faults: Vec::new(),
            cpu: StepCpu::default(),
            telemetry: Telemetry {
                series: vec![gateway],
            },
        };
        let cost = result.cost("gateway").expect("a cost");
        assert_eq!(cost.cores, 0.25);
        // 0.5 CPU-s over 2,500 responses.
        assert_eq!(cost.cpu_per_request_us, Some(200.0));
        assert_eq!(cost.peak_rss_bytes, Some(30));
        assert_eq!(cost.throttled_share, None);
        assert!(result.cost("upstream").is_none());

        // Appended after a step of 4 intervals, its rows move along.
        let mut joined = Telemetry::default();
        joined.append(result.telemetry.clone(), 0, 0.0);
        joined.append(result.telemetry.clone(), 4, 4.0);
        let rows = &joined.get("gateway").unwrap().samples;
        assert_eq!(rows.len(), 8);
        assert_eq!((rows[5].index, rows[5].start_s), (5, 5.0));
    }
}
