//! What the system under test is doing, read once per interval: each
//! component's processes (CPU, memory, descriptors, threads, from `/proc`),
//! its own gauges and counters (the mock upstream's and the reference
//! gateway's `/metrics`, nginx's `stub_status`), the cgroup it runs in,
//! and the targets a scenario names with `[[scrape]]` (a Prometheus
//! endpoint, or a process by PID).
//!
//! Takes a component (or a [`ScrapeSpec`]); hands on a [`Reading`], the
//! cumulative counters at one instant, and [`between`] turns two readings
//! into one interval's [`ComponentSample`] (a row of `components.csv`).
//! Prometheus text is parsed with `prometheus-parse`. When to read (the
//! driver's interval boundaries) is the step's watcher's; nothing here
//! keeps a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cgroup::{Cgroup, CgroupStat};
use super::component::Component;
use super::http;
use super::procfs::{self, ProcessReading};
use crate::scenario::{ScrapeSource, ScrapeSpec};

/// Most series kept from one `[[scrape]]` endpoint when the scenario
/// selects none: a real exporter can have thousands.
pub const MAX_SERIES: usize = 64;

/// One of a component's own numbers at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Its name in `components.csv` (`queue_depth`, `status_503`, or an
    /// external series with its labels, `http_requests_total{code="200"}`).
    pub name: String,
    /// True for a counter (the interval's increase is kept), false for a
    /// gauge (its value at the interval's end is kept).
    pub counter: bool,
    /// Its value.
    pub value: f64,
}

impl Metric {
    fn gauge(name: &str, value: f64) -> Metric {
        Metric {
            name: name.to_string(),
            counter: false,
            value,
        }
    }

    fn counter(name: &str, value: f64) -> Metric {
        Metric {
            name: name.to_string(),
            counter: true,
            value,
        }
    }
}

/// A source's cumulative counters at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// When it was read, CLOCK_MONOTONIC ns.
    pub at_ns: u64,
    /// Its processes; `None` when it has none (an endpoint) or they are gone.
    pub process: Option<ProcessReading>,
    /// Its own gauges and counters; `None` when it exposes none or the
    /// read failed (then `error` says why).
    pub metrics: Option<Vec<Metric>>,
    /// Why its metrics could not be read, when they could not.
    pub error: Option<String>,
    /// The cgroup it runs in, when the harness made one for it.
    pub cgroup: Option<CgroupStat>,
}

/// What one source did in one interval: a row of `components.csv`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentSample {
    /// The driver's interval number (the same as in `intervals.csv`).
    pub index: u64,
    /// Start of the interval, s from the load's start.
    pub start_s: f64,
    /// Length of the interval as read, s.
    pub duration_s: f64,
    /// False once its processes are gone (it died in this interval).
    pub alive: bool,
    /// CPU seconds in user mode, over its processes.
    pub cpu_user_s: Option<f64>,
    /// CPU seconds in the kernel on its behalf.
    pub cpu_system_s: Option<f64>,
    /// CPU in use, cores: (user + system) / the interval.
    pub cpu_cores: Option<f64>,
    /// Resident memory at the interval's end, bytes.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors at the interval's end.
    pub fds: Option<u64>,
    /// Threads at the interval's end.
    pub threads: Option<u64>,
    /// CFS periods it had work in (in a cgroup with a CPU quota).
    pub cfs_periods: Option<u64>,
    /// Of those, the periods its quota ran out in: it was throttled.
    pub throttled_periods: Option<u64>,
    /// Time its threads spent throttled, s.
    pub throttled_s: Option<f64>,
    /// Memory charged to its cgroup at the interval's end, bytes.
    pub cgroup_memory_bytes: Option<u64>,
    /// Its own numbers: gauges at the interval's end, counters' increase
    /// over it.
    pub metrics: BTreeMap<String, f64>,
    /// The process read, when it is not the series' own (a component a
    /// `[[faults]]` kill with `for` or restart started again); `None`: the
    /// series' `pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl ComponentSample {
    /// CPU seconds in the interval, user and system.
    pub fn cpu_s(&self) -> Option<f64> {
        Some(self.cpu_user_s? + self.cpu_system_s?)
    }

    /// The share of its CFS periods that were throttled, 0 to 1.
    pub fn throttled_share(&self) -> Option<f64> {
        let periods = self.cfs_periods?;
        (periods > 0).then(|| self.throttled_periods.unwrap_or(0) as f64 / periods as f64)
    }
}

/// One source's rows over a step (or a whole run): a component the
/// harness started, or a `[[scrape]]` target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceSeries {
    /// `upstream`, `gateway`, or the `[[scrape]]` name.
    pub role: String,
    /// What it is: `mock upstream`, `reference gateway`, `nginx`,
    /// `process` (a PID) or `metrics` (an endpoint).
    pub kind: String,
    /// Its process (the group's leader), when it has one.
    pub pid: Option<u32>,
    /// One row per interval it was read over, in order.
    pub samples: Vec<ComponentSample>,
    /// Which of its metrics are counters (their rows hold increases).
    pub counters: std::collections::BTreeSet<String>,
    /// When its processes were seen gone, s from the load's start: no row
    /// after that one.
    pub gone_at_s: Option<f64>,
    /// Readings whose metrics could not be read.
    pub unread: u64,
    /// Why the first of them could not.
    pub first_error: Option<String>,
}

/// What a source used over some of its intervals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Intervals counted.
    pub intervals: u64,
    /// Their length, s.
    pub seconds: f64,
    /// CPU seconds, user and system (`None` without processes).
    pub cpu_s: Option<f64>,
    /// CPU seconds in user mode.
    pub cpu_user_s: Option<f64>,
    /// CPU seconds in the kernel.
    pub cpu_system_s: Option<f64>,
    /// The most resident memory at an interval's end, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The most open descriptors at an interval's end.
    pub peak_fds: Option<u64>,
    /// The most threads at an interval's end.
    pub peak_threads: Option<u64>,
    /// CFS periods with work (in a cgroup with a quota).
    pub cfs_periods: Option<u64>,
    /// Of those, the throttled ones.
    pub throttled_periods: Option<u64>,
    /// Time spent throttled, s.
    pub throttled_s: Option<f64>,
    /// Per metric: a counter's total, a gauge's highest value.
    pub metrics: BTreeMap<String, f64>,
}

/// The counters by which a component counts the requests it handled: the
/// mock upstream's started work, the reference gateway's responses,
/// nginx's requests.
const HANDLED: [&str; 3] = ["started", "responses", "requests"];

impl Usage {
    /// The requests it handled over the intervals, by its own counter,
    /// when it keeps one (and it saw any).
    pub fn handled(&self) -> Option<f64> {
        HANDLED
            .iter()
            .find_map(|name| self.metrics.get(*name).copied())
            .filter(|n| *n > 0.0)
    }

    /// CPU per request, us: over the requests it handled by its own count,
    /// else over `responses` (what the client got), when there were any.
    pub fn cpu_per_request_us(&self, responses: u64) -> Option<f64> {
        let requests = self
            .handled()
            .or((responses > 0).then_some(responses as f64))?;
        Some((self.cpu_s? * 1e6 / requests * 10.0).round() / 10.0)
    }

    /// CPU in use, cores: CPU seconds over the intervals' length.
    pub fn cores(&self) -> Option<f64> {
        Some(self.cpu_s? / self.seconds.max(1e-9))
    }

    /// The share of CFS periods that were throttled, 0 to 1.
    pub fn throttled_share(&self) -> Option<f64> {
        let periods = self.cfs_periods?;
        Some(if periods == 0 {
            0.0
        } else {
            self.throttled_periods.unwrap_or(0) as f64 / periods as f64
        })
    }
}

impl SourceSeries {
    /// Its use over the intervals whose index `keep` accepts.
    pub fn usage(&self, keep: impl Fn(u64) -> bool) -> Usage {
        fn add<T: std::ops::Add<Output = T> + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        let mut u = Usage::default();
        for s in self.samples.iter().filter(|s| keep(s.index)) {
            u.intervals += 1;
            u.seconds += s.duration_s;
            u.cpu_s = add(u.cpu_s, s.cpu_s());
            u.cpu_user_s = add(u.cpu_user_s, s.cpu_user_s);
            u.cpu_system_s = add(u.cpu_system_s, s.cpu_system_s);
            u.peak_rss_bytes = u.peak_rss_bytes.max(s.rss_bytes);
            u.peak_fds = u.peak_fds.max(s.fds);
            u.peak_threads = u.peak_threads.max(s.threads);
            u.cfs_periods = add(u.cfs_periods, s.cfs_periods);
            u.throttled_periods = add(u.throttled_periods, s.throttled_periods);
            u.throttled_s = add(u.throttled_s, s.throttled_s);
            for (name, &value) in &s.metrics {
                let entry = u.metrics.entry(name.clone()).or_insert(0.0);
                if self.counters.contains(name) {
                    *entry += value;
                } else {
                    *entry = entry.max(value);
                }
            }
        }
        u
    }
}

/// The interval from `prev` to `next` as a row: CPU and counters as the
/// increase between them (a counter that went down was reset: its new
/// value is the increase), memory, descriptors and gauges as at `next`.
/// `index` and `start_s` are the driver's interval it closes.
pub fn between(prev: &Reading, next: &Reading, index: u64, start_s: f64) -> ComponentSample {
    let duration_s = next.at_ns.saturating_sub(prev.at_ns) as f64 / 1e9;
    let mut sample = ComponentSample {
        index,
        start_s: round(start_s, 3),
        duration_s: round(duration_s, 3),
        alive: true,
        ..ComponentSample::default()
    };
    match (&prev.process, &next.process) {
        (Some(a), Some(b)) => {
            let user = ticks_s(b.user_ticks.saturating_sub(a.user_ticks));
            let system = ticks_s(b.system_ticks.saturating_sub(a.system_ticks));
            sample.cpu_user_s = Some(round(user, 3));
            sample.cpu_system_s = Some(round(system, 3));
            sample.cpu_cores = Some(round((user + system) / duration_s.max(1e-9), 3));
        }
        (Some(_), None) => sample.alive = false,
        _ => {}
    }
    if let Some(p) = &next.process {
        sample.rss_bytes = Some(p.rss_bytes);
        sample.fds = Some(p.fds);
        sample.threads = Some(p.threads);
    }
    if let (Some(a), Some(b)) = (&prev.cgroup, &next.cgroup) {
        sample.cfs_periods = Some(b.periods.saturating_sub(a.periods));
        sample.throttled_periods = Some(b.throttled_periods.saturating_sub(a.throttled_periods));
        sample.throttled_s = Some(round((b.throttled_s - a.throttled_s).max(0.0), 4));
        sample.cgroup_memory_bytes = b.memory_bytes;
    }
    if let Some(metrics) = &next.metrics {
        let before: BTreeMap<&str, f64> = prev
            .metrics
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.value))
            .collect();
        for m in metrics {
            let value = if m.counter {
                match before.get(m.name.as_str()) {
                    Some(&was) if m.value >= was => m.value - was,
                    Some(_) => m.value,
                    // Not there before: its increase in this interval is unknown.
                    None => continue,
                }
            } else {
                m.value
            };
            sample.metrics.insert(m.name.clone(), round(value, 6));
        }
    }
    sample
}

/// Reads a started component now: its process group, its own metrics
/// (each read given at most `within`), and `cgroup` when it runs in one.
pub fn read_component(
    component: &dyn Component,
    cgroup: Option<&Cgroup>,
    within: Duration,
) -> Reading {
    // Stamped with the /proc read, not after the metrics (a scrape may take
    // up to `within`): the CPU time is divided by the time between stamps,
    // and a late stamp on one side would read as more cores than it has.
    let at_ns = crate::sys::monotonic_ns();
    let process = procfs::group(component.child().pid());
    let cgroup = cgroup.map(Cgroup::stat);
    // A stopped component answers nothing: asking would only block the watcher.
    let stopped = process.is_none_or(|p| p.stopped);
    let (metrics, error) = match (stopped, component.own_metrics(within)) {
        (true, _) | (false, None) => (None, None),
        (false, Some(Ok(m))) => (Some(m), None),
        (false, Some(Err(e))) => (None, Some(e)),
    };
    Reading {
        at_ns,
        process,
        metrics,
        error,
        cgroup,
    }
}

/// Reads a `[[scrape]]` target now: the process by PID, or the endpoint's
/// selected series.
pub fn read_scrape(spec: &ScrapeSpec, within: Duration) -> Reading {
    let (process, metrics, error) = match &spec.source {
        ScrapeSource::Pid(pid) => (procfs::process(*pid), None, None),
        ScrapeSource::Metrics {
            authority,
            path,
            series,
            ..
        } => match resolve(authority)
            .and_then(|addr| scrape(addr, path, within, None))
            .and_then(|text| select(&text, series))
        {
            Ok(m) => (None, Some(m), None),
            Err(e) => (None, None, Some(e)),
        },
    };
    Reading {
        at_ns: crate::sys::monotonic_ns(),
        process,
        metrics,
        error,
        cgroup: None,
    }
}

/// The first address of `host:port`.
fn resolve(authority: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} has no address"))
}

/// The text of a metrics page (`GET path`, status 200), over TLS when the
/// component's CA is given.
pub fn scrape(
    addr: std::net::SocketAddr,
    path: &str,
    within: Duration,
    ca_pem: Option<&str>,
) -> Result<String, String> {
    let (status, body) = http::get_text_within(addr, path, within, ca_pem)?;
    if status != 200 {
        return Err(format!("GET {path} answered {status}"));
    }
    Ok(body)
}

/// One series of a Prometheus page: its name with its labels, whether it
/// is a counter, its value. Histograms and summaries give their `_sum`
/// and `_count`.
fn parse_prometheus(text: &str) -> Result<Vec<Metric>, String> {
    use prometheus_parse::{Scrape, Value};
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = Scrape::parse(lines).map_err(|e| format!("not Prometheus text: {e}"))?;
    let mut out = Vec::new();
    for s in scrape.samples {
        let mut labels: Vec<(&String, &String)> = s.labels.iter().collect();
        labels.sort();
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        let named = |suffix: &str| {
            if labels.is_empty() {
                format!("{}{suffix}", s.metric)
            } else {
                format!("{}{suffix}{{{labels}}}", s.metric)
            }
        };
        let total = |counts: &[f64]| counts.iter().copied().fold(0.0, f64::max);
        match s.value {
            Value::Counter(v) => out.push(Metric::counter(&named(""), v)),
            Value::Gauge(v) | Value::Untyped(v) => out.push(Metric::gauge(&named(""), v)),
            Value::Histogram(buckets) => {
                let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
                out.push(Metric::counter(&named("_count"), total(&counts)));
            }
            Value::Summary(_) => {}
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The series of a page that `series` selects (by metric name, every
/// label set of it; `_sum`/`_count` lines are their own names), or its
/// first [`MAX_SERIES`] counters and gauges when it selects none.
pub fn select(text: &str, series: &[String]) -> Result<Vec<Metric>, String> {
    let all = parse_prometheus(text)?;
    if series.is_empty() {
        return Ok(all.into_iter().take(MAX_SERIES).collect());
    }
    Ok(all
        .into_iter()
        .filter(|m| {
            let base = m.name.split('{').next().unwrap_or(&m.name);
            series.iter().any(|s| s == base || *s == m.name)
        })
        .collect())
}

/// Sums the values of every series of `metric` (over its labels).
fn sum(all: &[Metric], metric: &str) -> Option<f64> {
    let mut found = None;
    for m in all {
        let base = m.name.split('{').next().unwrap_or(&m.name);
        if base == metric {
            *found.get_or_insert(0.0) += m.value;
        }
    }
    found
}

/// The mock upstream's `/metrics` in `components.csv`'s names: in flight,
/// queue depth and busy workers (gauges); requests started, completed and
/// refused, and the CPU seconds its request work burnt (counters, over
/// every key).
pub fn mock_metrics(text: &str) -> Result<Vec<Metric>, String> {
    let all = parse_prometheus(text)?;
    let mut out = Vec::new();
    for (name, metric) in [
        ("in_flight", "mock_upstream_in_flight"),
        ("queue_depth", "mock_upstream_queue_depth"),
        ("busy_workers", "mock_upstream_busy_workers"),
    ] {
        if let Some(v) = sum(&all, metric) {
            out.push(Metric::gauge(name, v));
        }
    }
    for (name, metric) in [
        ("started", "mock_upstream_started_total"),
        ("completed", "mock_upstream_completed_total"),
        ("refused", "mock_upstream_refused_total"),
        ("work_cpu_s", "mock_upstream_cpu_seconds_total"),
    ] {
        // Before its first request the mock has no key, so no series: 0.
        out.push(Metric::counter(name, sum(&all, metric).unwrap_or(0.0)));
    }
    Ok(out)
}

/// The reference gateway's `/metrics` in `components.csv`'s names: in
/// flight to the upstream, queue depth (over its routes), breaker state
/// (the worst route's: 0 closed, 1 open, 2 half-open) as gauges; responses
/// and the 429s, 503s and 504s among them as counters.
pub fn gateway_metrics(text: &str) -> Result<Vec<Metric>, String> {
    let all = parse_prometheus(text)?;
    let mut out = Vec::new();
    if let Some(v) = sum(&all, "contend_gateway_upstream_in_flight") {
        out.push(Metric::gauge("in_flight", v));
    }
    if let Some(v) = sum(&all, "contend_gateway_queue_depth") {
        out.push(Metric::gauge("queue_depth", v));
    }
    let breaker = all
        .iter()
        .filter(|m| m.name.starts_with("contend_gateway_breaker_state"))
        .map(|m| m.value)
        .fold(None, |worst: Option<f64>, v| {
            Some(worst.map_or(v, |w| w.max(v)))
        });
    if let Some(v) = breaker {
        out.push(Metric::gauge("breaker_state", v));
    }
    out.push(Metric::counter(
        "responses",
        sum(&all, "contend_gateway_requests_total").unwrap_or(0.0),
    ));
    for status in ["429", "503", "504"] {
        let series = format!("contend_gateway_requests_total{{status=\"{status}\"}}");
        let v = all
            .iter()
            .find(|m| m.name == series)
            .map_or(0.0, |m| m.value);
        out.push(Metric::counter(&format!("status_{status}"), v));
    }
    // The shared store's decisions, when its rate limit is kept in one.
    for outcome in ["admitted", "limited", "store_error", "fail_open"] {
        let series = format!("contend_gateway_rate_limit_total{{outcome=\"{outcome}\"}}");
        if let Some(m) = all.iter().find(|m| m.name == series) {
            out.push(Metric::counter(&format!("rate_limit_{outcome}"), m.value));
        }
    }
    if let Some(v) = sum(&all, "contend_gateway_store_calls_total") {
        out.push(Metric::counter("store_calls", v));
    }
    Ok(out)
}

/// A gateway replica's totals after a run, from its `/metrics`: responses
/// by status (`status_200`...), and the shared store's decisions
/// (`rate_limit_admitted`...) and calls (`store_calls`) when it has one.
pub fn replica_totals(text: &str) -> Result<std::collections::BTreeMap<String, f64>, String> {
    let all = parse_prometheus(text)?;
    let mut out = std::collections::BTreeMap::new();
    for m in &all {
        if let Some(status) = m
            .name
            .strip_prefix("contend_gateway_requests_total{status=\"")
            .and_then(|r| r.strip_suffix("\"}"))
        {
            out.insert(format!("status_{status}"), m.value);
        }
    }
    out.insert(
        "responses".into(),
        sum(&all, "contend_gateway_requests_total").unwrap_or(0.0),
    );
    for m in gateway_metrics(text)? {
        if m.name.starts_with("rate_limit_") || m.name == "store_calls" {
            out.insert(m.name, m.value);
        }
    }
    Ok(out)
}

/// nginx's `stub_status` page: connections active, reading, writing and
/// waiting (gauges); connections accepted and requests (counters).
pub fn stub_status(text: &str) -> Result<Vec<Metric>, String> {
    let bad = || format!("not nginx stub_status output: {:?}", text.trim());
    let mut lines = text.lines();
    let active = lines
        .next()
        .and_then(|l| l.strip_prefix("Active connections:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(bad)?;
    lines.next();
    let totals: Vec<f64> = lines
        .next()
        .ok_or_else(bad)?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [accepted, _handled, requests] = totals[..] else {
        return Err(bad());
    };
    let states: Vec<f64> = lines
        .next()
        .ok_or_else(bad)?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [reading, writing, waiting] = states[..] else {
        return Err(bad());
    };
    Ok(vec![
        Metric::gauge("active", active),
        Metric::gauge("reading", reading),
        Metric::gauge("writing", writing),
        Metric::gauge("waiting", waiting),
        Metric::counter("accepted", accepted),
        Metric::counter("requests", requests),
    ])
}

fn ticks_s(ticks: u64) -> f64 {
    ticks as f64 / crate::sys::clock_ticks_per_s() as f64
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(metrics: &[Metric], name: &str) -> Option<f64> {
        metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    #[test]
    fn the_gateways_page_reads_as_gauges_and_counters() {
        let page = "# TYPE contend_gateway_requests_total counter\n\
                    contend_gateway_requests_total{status=\"200\"} 90\n\
                    contend_gateway_requests_total{status=\"503\"} 7\n\
                    contend_gateway_requests_total{status=\"504\"} 3\n\
                    # TYPE contend_gateway_upstream_in_flight gauge\n\
                    contend_gateway_upstream_in_flight 4\n\
                    # TYPE contend_gateway_queue_depth gauge\n\
                    contend_gateway_queue_depth{route=\"/\"} 2\n\
                    contend_gateway_queue_depth{route=\"/a\"} 1\n\
                    # TYPE contend_gateway_breaker_state gauge\n\
                    contend_gateway_breaker_state{route=\"/\"} 0\n\
                    contend_gateway_breaker_state{route=\"/a\"} 1\n";
        let m = gateway_metrics(page).unwrap();
        assert_eq!(value(&m, "in_flight"), Some(4.0));
        assert_eq!(value(&m, "queue_depth"), Some(3.0));
        assert_eq!(value(&m, "breaker_state"), Some(1.0));
        assert_eq!(value(&m, "responses"), Some(100.0));
        assert_eq!(value(&m, "status_503"), Some(7.0));
        assert_eq!(value(&m, "status_429"), Some(0.0));
        assert!(m.iter().find(|m| m.name == "responses").unwrap().counter);
    }

    #[test]
    fn stub_status_reads_and_garbage_is_named() {
        let page = "Active connections: 3 \nserver accepts handled requests\n 10 10 250 \n\
                    Reading: 0 Writing: 2 Waiting: 1 \n";
        let m = stub_status(page).unwrap();
        assert_eq!(value(&m, "active"), Some(3.0));
        assert_eq!(value(&m, "writing"), Some(2.0));
        assert_eq!(value(&m, "requests"), Some(250.0));
        let err = stub_status("<html>404</html>").unwrap_err();
        assert!(err.contains("not nginx stub_status"), "{err}");
    }

    #[test]
    fn an_interval_is_the_increase_of_counters_and_the_end_of_gauges() {
        let reading = |at_s: u64, ticks: u64, done: f64, depth: f64| Reading {
            at_ns: at_s * 1_000_000_000,
            process: Some(ProcessReading {
                user_ticks: ticks,
                system_ticks: ticks / 2,
                rss_bytes: 1000 + at_s,
                processes: 1,
                ..ProcessReading::default()
            }),
            metrics: Some(vec![
                Metric::counter("completed", done),
                Metric::gauge("queue_depth", depth),
            ]),
            ..Reading::default()
        };
        let hz = crate::sys::clock_ticks_per_s();
        let a = reading(10, 0, 100.0, 5.0);
        let b = reading(12, hz, 160.0, 2.0);
        let s = between(&a, &b, 4, 8.0);
        assert_eq!((s.index, s.start_s, s.duration_s), (4, 8.0, 2.0));
        assert_eq!((s.cpu_user_s, s.cpu_system_s), (Some(1.0), Some(0.5)));
        assert_eq!(s.cpu_cores, Some(0.75));
        assert_eq!(s.rss_bytes, Some(1012));
        assert_eq!(s.metrics["completed"], 60.0);
        assert_eq!(s.metrics["queue_depth"], 2.0);
        // A restarted counter's new value is its increase.
        let c = reading(13, hz, 5.0, 0.0);
        assert_eq!(between(&b, &c, 5, 10.0).metrics["completed"], 5.0);
        // Gone: no longer alive, nothing made up.
        let gone = Reading {
            at_ns: 14_000_000_000,
            ..Reading::default()
        };
        let s = between(&c, &gone, 6, 12.0);
        assert!(!s.alive);
        assert_eq!((s.cpu_cores, s.rss_bytes), (None, None));
    }

    /// A component whose metrics page takes `SLOW` to answer.
    struct SlowMetrics(super::super::child::ChildGuard);

    const SLOW: Duration = Duration::from_millis(300);

    impl Component for SlowMetrics {
        fn child(&self) -> &super::super::child::ChildGuard {
            &self.0
        }
        fn child_mut(&mut self) -> &mut super::super::child::ChildGuard {
            &mut self.0
        }
        fn own_metrics(&self, _within: Duration) -> Option<Result<Vec<Metric>, String>> {
            std::thread::sleep(SLOW);
            Some(Ok(vec![Metric::gauge("in_flight", 1.0)]))
        }
    }

    #[test]
    fn a_reading_is_stamped_when_its_cpu_is_read_not_after_a_slow_scrape() {
        let child = super::super::child::ChildGuard::spawn_polled(
            "sleeper",
            std::path::Path::new("/bin/sleep"),
            &["30".to_string()],
            "127.0.0.1:9".parse().unwrap(),
            Duration::from_secs(5),
            || true,
        )
        .expect("/bin/sleep starts");
        let component = SlowMetrics(child);
        let before = crate::sys::monotonic_ns();
        let reading = read_component(&component, None, Duration::from_secs(1));
        let after = crate::sys::monotonic_ns();
        assert!(reading.process.is_some() && reading.metrics.is_some());
        assert!(
            after - before >= SLOW.as_nanos() as u64,
            "the scrape was slow"
        );
        // The CPU is divided by the time between stamps: the stamp goes with
        // the /proc read, before the scrape (with room for a slow machine).
        assert!(
            reading.at_ns - before < SLOW.as_nanos() as u64 / 2,
            "stamped {} ms after the call began",
            (reading.at_ns - before) / 1_000_000
        );
    }

    #[test]
    fn selected_series_keep_their_labels() {
        let page = "# TYPE http_requests_total counter\n\
                    http_requests_total{code=\"200\",method=\"get\"} 5\n\
                    http_requests_total{code=\"500\",method=\"get\"} 1\n\
                    # TYPE process_open_fds gauge\nprocess_open_fds 12\n\
                    # TYPE go_goroutines gauge\ngo_goroutines 40\n";
        let m = select(
            page,
            &["http_requests_total".into(), "process_open_fds".into()],
        )
        .unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "http_requests_total{code=\"200\",method=\"get\"}",
                "http_requests_total{code=\"500\",method=\"get\"}",
                "process_open_fds"
            ]
        );
        assert_eq!(select(page, &[]).unwrap().len(), 4);
    }
}
