//! The system under test read at the driver's interval boundaries: every
//! component the harness started and every `[[scrape]]` target, so that
//! row `i` of `components.csv` covers the same span as row `i` of
//! `intervals.csv`.
//!
//! Takes the driver's start and interval (once the driver has set them)
//! and, at each boundary, the components as the step's watcher holds them;
//! hands on one [`SourceSeries`] per source. A component that dies gets a
//! last row (`alive = false`) and no more, until a `[[faults]]` kill with
//! `for` or restart starts it again ([`Sampler::revived`]): its rows then
//! go on, each naming the new process. Reading happens on the watcher's
//! thread, never on the driver's.

use std::time::Duration;

use super::step::Telemetry;
use crate::scenario::{ScrapeSource, ScrapeSpec};
use crate::sys;
use crate::topology::Component;
use crate::topology::cgroup::Cgroup;
use crate::topology::telemetry::{self, Reading, SourceSeries};

/// Shortest wait for one metrics read, and the longest: half the interval
/// in between, so a slow endpoint cannot hold the watcher for long.
const READ_WITHIN: (Duration, Duration) = (Duration::from_millis(100), Duration::from_millis(500));
/// A last interval shorter than this (the load ended just after a
/// boundary) is no row of its own: its counts extend the row before (CPU
/// ticks of 10 ms over a few ms would say nothing but noise).
const MIN_LAST_INTERVAL_NS: u64 = 20_000_000;
/// Longest wait before the last reading for the components to count the
/// requests the client has already seen answered.
const LAST_SETTLE: Duration = Duration::from_millis(250);
/// How often that wait reads them.
const SETTLE_POLL: Duration = Duration::from_millis(10);

/// One source as it is being read.
struct Source {
    series: SourceSeries,
    last: Option<Reading>,
    /// The reading the last row starts from, so that a short tail can
    /// extend that row.
    base: Option<Reading>,
    done: bool,
    /// The process read since a restart, when it is not the series' own.
    restarted_pid: Option<u32>,
}

impl Source {
    fn new(role: &str, kind: &str, pid: Option<u32>) -> Source {
        Source {
            series: SourceSeries {
                role: role.to_string(),
                kind: kind.to_string(),
                pid,
                ..SourceSeries::default()
            },
            last: None,
            base: None,
            done: false,
            restarted_pid: None,
        }
    }

    /// Takes `reading` at the end of interval `index` (or as the first).
    fn take(&mut self, reading: Reading, index: Option<u64>, start_s: f64, at_s: f64) {
        if self.done {
            return;
        }
        self.base = self.last.take();
        if let Some(e) = &reading.error {
            self.series.unread += 1;
            self.series.first_error.get_or_insert_with(|| e.clone());
        }
        for m in reading.metrics.iter().flatten().filter(|m| m.counter) {
            self.series.counters.insert(m.name.clone());
        }
        let had_process = self.base.as_ref().is_some_and(|r| r.process.is_some());
        if let (Some(prev), Some(index)) = (&self.base, index) {
            let mut sample = telemetry::between(prev, &reading, index, start_s);
            sample.pid = self.restarted_pid;
            self.series.samples.push(sample);
        }
        if had_process && reading.process.is_none() {
            self.done = true;
            self.series.gone_at_s = Some((at_s * 1000.0).round() / 1000.0);
        }
        // After a failed read the next interval's counters have no base
        // and are left out, never made up.
        self.last = Some(reading);
    }

    /// Takes `reading` at the end of interval `index` when that interval
    /// is a short tail: as the new end of the row before, which it then
    /// extends, when there is that row.
    fn extend(&mut self, reading: Reading, index: u64, start_s: f64, at_s: f64) {
        let before = self.series.samples.last().map(|r| (r.index, r.start_s));
        match before {
            Some((row, row_start_s)) if !self.done && row + 1 == index && self.base.is_some() => {
                self.series.samples.pop();
                self.last = self.base.take();
                self.take(reading, Some(row), row_start_s, at_s);
            }
            _ => self.take(reading, Some(index), start_s, at_s),
        }
    }
}

/// Reads the sources at the driver's interval boundaries.
pub(super) struct Sampler<'s> {
    sources: Vec<Source>,
    scrape: &'s [ScrapeSpec],
    /// The component (by position) that runs in `cgroup`.
    cgroup: Option<(usize, &'s Cgroup)>,
    /// The driver's start, CLOCK_MONOTONIC ns, once known.
    start_ns: Option<u64>,
    interval_ns: u64,
    /// The boundary read next: the end of interval `next - 1`.
    next: u64,
    within: Duration,
}

impl<'s> Sampler<'s> {
    /// A sampler for `components` (role, and the component), the
    /// scenario's `scrape` targets, and `cgroup` for the component at that
    /// position.
    pub(super) fn new(
        components: &[(&str, &dyn Component)],
        scrape: &'s [ScrapeSpec],
        cgroup: Option<(usize, &'s Cgroup)>,
        interval: Duration,
    ) -> Sampler<'s> {
        let mut sources: Vec<Source> = components
            .iter()
            .map(|(role, c)| Source::new(role, c.name(), Some(c.child().pid())))
            .collect();
        sources.extend(scrape.iter().map(|s| match &s.source {
            ScrapeSource::Pid(pid) => Source::new(&s.name, "process", Some(*pid)),
            ScrapeSource::Metrics { .. } => Source::new(&s.name, "metrics", None),
        }));
        let within = (interval / 2).clamp(READ_WITHIN.0, READ_WITHIN.1);
        Sampler {
            sources,
            scrape,
            cgroup,
            start_ns: None,
            interval_ns: interval.as_nanos().max(1) as u64,
            next: 0,
            within,
        }
    }

    /// The first reading, before the driver starts: it sends nothing while
    /// it opens its connections, so no request the components count can
    /// fall before it (a reading at the start itself would be late by the
    /// time the reads take, and miss the first requests).
    pub(super) fn begin(&mut self, components: &[&dyn Component]) {
        self.read_all(components, None, sys::monotonic_ns(), false);
    }

    /// The driver started at `start_ns`: boundaries from here.
    pub(super) fn start(&mut self, start_ns: u64) {
        self.start_ns = Some(start_ns);
        self.next = 1;
    }

    /// How long until the next boundary (`None` before the start).
    pub(super) fn until_next(&self) -> Option<Duration> {
        let start = self.start_ns?;
        let at = start + self.next * self.interval_ns;
        Some(Duration::from_nanos(at.saturating_sub(sys::monotonic_ns())))
    }

    /// Reads every source if a boundary has passed; with `last` (the
    /// driver has ended), once more, after the components have settled, for
    /// the part of an interval since the last boundary.
    pub(super) fn tick(&mut self, components: &[&dyn Component], last: bool) {
        let Some(start) = self.start_ns else {
            return;
        };
        if last {
            self.settle(components);
        }
        let now = sys::monotonic_ns();
        let boundary = start + self.next * self.interval_ns;
        let index = self.next - 1;
        if now >= boundary {
            // Late (the watcher was busy): the interval ends now, not at a
            // boundary long gone; skip those it missed whole.
            self.next = (now - start) / self.interval_ns + 1;
            self.read_all(components, Some(index), now, false);
        } else if last {
            let tail = index > 0 && now < boundary - self.interval_ns + MIN_LAST_INTERVAL_NS;
            self.read_all(components, Some(index), now, tail);
        }
    }

    /// Waits (up to [`LAST_SETTLE`]) until no live component reports
    /// requests in flight: a gateway counts a response once it has written
    /// it, a moment after the client has read it, so a reading taken the
    /// instant the load ends would miss the last few.
    fn settle(&self, components: &[&dyn Component]) {
        let deadline = std::time::Instant::now() + LAST_SETTLE;
        let busy = |c: &&dyn Component| {
            matches!(c.own_metrics(self.within), Some(Ok(metrics))
                if metrics.iter().any(|m| m.name == "in_flight" && m.value > 0.0))
        };
        while std::time::Instant::now() < deadline {
            let live = components
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.sources[*i].done)
                .map(|(_, c)| c);
            if !live.into_iter().any(busy) {
                return;
            }
            std::thread::sleep(SETTLE_POLL);
        }
    }

    /// Reads every source at `now_ns`, the end of interval `index`; a
    /// `tail` extends the row before.
    fn read_all(
        &mut self,
        components: &[&dyn Component],
        index: Option<u64>,
        now_ns: u64,
        tail: bool,
    ) {
        let start = self.start_ns.unwrap_or(now_ns);
        let start_s = index.map_or(0.0, |i| (i * self.interval_ns) as f64 / 1e9);
        let at_s = now_ns.saturating_sub(start) as f64 / 1e9;
        let put = |source: &mut Source, reading| match index {
            Some(index) if tail => source.extend(reading, index, start_s, at_s),
            _ => source.take(reading, index, start_s, at_s),
        };
        for (i, component) in components.iter().enumerate() {
            if self.sources[i].done {
                continue;
            }
            let cgroup = self.cgroup.filter(|(at, _)| *at == i).map(|(_, g)| g);
            put(
                &mut self.sources[i],
                telemetry::read_component(*component, cgroup, self.within),
            );
        }
        for (spec, source) in self
            .scrape
            .iter()
            .zip(&mut self.sources[components.len()..])
        {
            put(source, telemetry::read_scrape(spec, self.within));
        }
    }

    /// Component `index` was started again (a `[[faults]]` kill with
    /// `for`, or a restart): it is read again from the next boundary, that
    /// first reading of the new process the base of its next row, so every
    /// row after it is a whole interval of the new process (none mixes the
    /// old process's counters with the new one's), each naming the new
    /// PID. The intervals it was down, and the one it came back in, have no
    /// row.
    pub(super) fn revived(&mut self, index: usize, component: &dyn Component) {
        let pid = component.child().pid();
        let source = &mut self.sources[index];
        source.done = false;
        source.restarted_pid = (source.series.pid != Some(pid)).then_some(pid);
        source.last = None;
    }

    /// Every source's rows.
    pub(super) fn finish(self) -> Telemetry {
        Telemetry {
            series: self.sources.into_iter().map(|s| s.series).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::telemetry::Metric;

    fn reading(at_ms: u64, responses: f64) -> Reading {
        Reading {
            at_ns: at_ms * 1_000_000,
            process: None,
            metrics: Some(vec![Metric {
                name: "responses".into(),
                counter: true,
                value: responses,
            }]),
            error: None,
            cgroup: None,
        }
    }

    fn rows(source: &Source) -> Vec<(u64, f64, f64)> {
        let s = &source.series.samples;
        s.iter()
            .map(|r| (r.index, r.duration_s, r.metrics["responses"]))
            .collect()
    }

    /// A tail read after the last boundary extends the row before: its
    /// counts are kept, in the row of the interval they mostly belong to.
    #[test]
    fn a_short_tail_extends_the_last_row() {
        let mut source = Source::new("gateway", "reference gateway", None);
        source.take(reading(0, 0.0), None, 0.0, 0.0);
        source.take(reading(250, 10.0), Some(0), 0.0, 0.25);
        source.take(reading(500, 30.0), Some(1), 0.25, 0.5);
        source.extend(reading(505, 32.0), 2, 0.5, 0.505);
        assert_eq!(rows(&source), [(0, 0.25, 10.0), (1, 0.255, 22.0)]);
        // Without a row before it (nothing read at the boundary), a tail
        // is a row of its own.
        let mut first = Source::new("upstream", "mock upstream", None);
        first.take(reading(0, 0.0), None, 0.0, 0.0);
        first.extend(reading(5, 2.0), 0, 0.0, 0.005);
        assert_eq!(rows(&first), [(0, 0.005, 2.0)]);
    }
}
