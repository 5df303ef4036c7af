//! The system under test in the report: `components.csv` (one row per
//! interval and component or `[[scrape]]` target) and `summary.json`'s
//! `components` (per component: CPU seconds, CPU per request, cores, peak
//! memory and descriptors, throttling).
//!
//! Takes the [`Telemetry`] a run read and the responses it got; hands on
//! the rows and the per-component summaries, and reads `components.csv`
//! back for `contend report DIR`. Nothing here measures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::summary::round3;
use crate::experiment::step::Telemetry;
use crate::topology::telemetry::{ComponentSample, SourceSeries};

/// `components.csv`'s columns before the metrics, which follow in name
/// order (each component fills its own: gauges at the interval's end,
/// counters' increase over it).
pub const FIXED_COLUMNS: [&str; 18] = [
    "component",
    "kind",
    "pid",
    "index",
    "start_s",
    "duration_s",
    "alive",
    "cpu_user_s",
    "cpu_system_s",
    "cpu_cores",
    "rss_bytes",
    "fds",
    "threads",
    "cfs_periods",
    "throttled_periods",
    "throttled_s",
    "cgroup_memory_bytes",
    "throttled_share",
];

/// What one component (or `[[scrape]]` target) did over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentSummary {
    /// What it is: `mock upstream`, `reference gateway`, `nginx`,
    /// `process` or `metrics`.
    pub kind: String,
    /// Its process, when it has one.
    pub pid: Option<u32>,
    /// Intervals it was read over.
    pub intervals: u64,
    /// CPU seconds over them, user and system.
    pub cpu_s: Option<f64>,
    /// CPU seconds in user mode.
    pub cpu_user_s: Option<f64>,
    /// CPU seconds in the kernel.
    pub cpu_system_s: Option<f64>,
    /// CPU per request it handled, us: `cpu_s` over its own count of them
    /// (the mock's started work, the gateway's responses, nginx's
    /// requests), else over the run's responses (any status).
    pub cpu_per_request_us: Option<f64>,
    /// Mean cores in use.
    pub cores_mean: Option<f64>,
    /// The busiest whole interval's cores.
    pub cores_peak: Option<f64>,
    /// The most resident memory at an interval's end, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The most open file descriptors at an interval's end.
    pub peak_fds: Option<u64>,
    /// The most threads at an interval's end.
    pub peak_threads: Option<u64>,
    /// In a cgroup with a CPU quota: the share of its CFS periods that
    /// were throttled, 0 to 1.
    pub throttled_share: Option<f64>,
    /// In a cgroup with a CPU quota: time spent throttled, s.
    pub throttled_s: Option<f64>,
    /// When its processes were seen gone, s from the load's start (it died,
    /// or a `[[scrape]] pid` ended): it has no row after that.
    pub gone_at_s: Option<f64>,
    /// Its own numbers: each counter's total and each gauge's highest value.
    pub metrics: BTreeMap<String, f64>,
}

/// Per component and target, by role (`upstream`, `gateway`, a scrape's
/// name), over every interval of the run; `responses` is the run's
/// complete responses (any status), for the CPU per request of a source
/// that does not count its own.
pub fn summaries(telemetry: &Telemetry, responses: u64) -> BTreeMap<String, ComponentSummary> {
    telemetry
        .series
        .iter()
        .map(|s| (s.role.clone(), summary(s, responses)))
        .collect()
}

fn summary(series: &SourceSeries, responses: u64) -> ComponentSummary {
    let usage = series.usage(|_| true);
    // The last interval can be a few ms of drain; its cores say little.
    let full_s = series
        .samples
        .iter()
        .map(|s| s.duration_s)
        .fold(0.0, f64::max);
    let cores_peak = series
        .samples
        .iter()
        .filter(|s| s.duration_s >= full_s / 2.0)
        .filter_map(|s| s.cpu_cores)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
    ComponentSummary {
        kind: series.kind.clone(),
        pid: series.pid,
        intervals: usage.intervals,
        cpu_s: usage.cpu_s.map(round3),
        cpu_user_s: usage.cpu_user_s.map(round3),
        cpu_system_s: usage.cpu_system_s.map(round3),
        cpu_per_request_us: usage.cpu_per_request_us(responses),
        cores_mean: usage.cores().map(round3),
        cores_peak,
        peak_rss_bytes: usage.peak_rss_bytes,
        peak_fds: usage.peak_fds,
        peak_threads: usage.peak_threads,
        throttled_share: usage.throttled_share().map(|s| (s * 1e4).round() / 1e4),
        throttled_s: usage.throttled_s.map(round3),
        gone_at_s: series.gone_at_s,
        metrics: usage.metrics,
    }
}

/// Writes `components.csv`: the fixed columns, then every metric any
/// source has, in name order; a source fills the metrics it has.
pub fn write_csv(w: &mut dyn Write, series: &[SourceSeries]) -> std::io::Result<()> {
    let metrics: BTreeSet<&str> = series
        .iter()
        .flat_map(|s| s.samples.iter().flat_map(|r| r.metrics.keys()))
        .map(String::as_str)
        .collect();
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(FIXED_COLUMNS.iter().copied().chain(metrics.iter().copied()))?;
    let text = |v: Option<String>| v.unwrap_or_default();
    for s in series {
        for r in &s.samples {
            let mut record = vec![
                s.role.clone(),
                s.kind.clone(),
                text(r.pid.or(s.pid).map(|p| p.to_string())),
                r.index.to_string(),
                r.start_s.to_string(),
                r.duration_s.to_string(),
                r.alive.to_string(),
                text(r.cpu_user_s.map(|v| v.to_string())),
                text(r.cpu_system_s.map(|v| v.to_string())),
                text(r.cpu_cores.map(|v| v.to_string())),
                text(r.rss_bytes.map(|v| v.to_string())),
                text(r.fds.map(|v| v.to_string())),
                text(r.threads.map(|v| v.to_string())),
                text(r.cfs_periods.map(|v| v.to_string())),
                text(r.throttled_periods.map(|v| v.to_string())),
                text(r.throttled_s.map(|v| v.to_string())),
                text(r.cgroup_memory_bytes.map(|v| v.to_string())),
                text(
                    r.throttled_share()
                        .map(|v| ((v * 1e4).round() / 1e4).to_string()),
                ),
            ];
            record.extend(
                metrics
                    .iter()
                    .map(|m| text(r.metrics.get(*m).map(|v| v.to_string()))),
            );
            csv.write_record(&record)?;
        }
    }
    csv.flush()
}

/// Reads a report folder's `components.csv` back into its series (their
/// counters unknown: the file keeps values, not their kind).
pub fn read_csv(path: &Path) -> Result<Vec<SourceSeries>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let at = |name: &str| headers.iter().position(|h| h == name);
    let missing: Vec<&str> = FIXED_COLUMNS
        .iter()
        .copied()
        .filter(|c| at(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "not a contend components.csv: no column {}",
            missing.join(", ")
        ));
    }
    let mut out: Vec<SourceSeries> = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        let field = |name: &str| at(name).and_then(|i| record.get(i)).unwrap_or("");
        let bad = |name: &str| format!("row {}: {name} is not a number", line + 2);
        fn opt<T: std::str::FromStr>(text: &str) -> Result<Option<T>, ()> {
            if text.is_empty() {
                Ok(None)
            } else {
                text.parse().map(Some).map_err(|_| ())
            }
        }
        macro_rules! num {
            ($name:literal) => {
                opt(field($name)).map_err(|()| bad($name))?
            };
        }
        let role = field("component");
        let pid: Option<u32> = field("pid").parse().ok();
        let sample = ComponentSample {
            index: num!("index").unwrap_or(0),
            start_s: num!("start_s").unwrap_or(0.0),
            duration_s: num!("duration_s").unwrap_or(0.0),
            alive: field("alive") != "false",
            cpu_user_s: num!("cpu_user_s"),
            cpu_system_s: num!("cpu_system_s"),
            cpu_cores: num!("cpu_cores"),
            rss_bytes: num!("rss_bytes"),
            fds: num!("fds"),
            threads: num!("threads"),
            cfs_periods: num!("cfs_periods"),
            throttled_periods: num!("throttled_periods"),
            throttled_s: num!("throttled_s"),
            cgroup_memory_bytes: num!("cgroup_memory_bytes"),
            metrics: headers
                .iter()
                .enumerate()
                .filter(|(_, h)| !FIXED_COLUMNS.contains(h))
                .filter_map(|(i, h)| {
                    let v: f64 = record.get(i)?.parse().ok()?;
                    Some((h.to_string(), v))
                })
                .collect(),
            pid: None,
        };
        let series = match out.iter_mut().position(|s| s.role == role) {
            Some(i) => &mut out[i],
            None => {
                out.push(SourceSeries {
                    role: role.to_string(),
                    kind: field("kind").to_string(),
                    pid,
                    ..SourceSeries::default()
                });
                out.last_mut().expect("just pushed")
            }
        };
        // A row of a process started again names its own PID.
        let mut sample = sample;
        sample.pid = pid.filter(|p| Some(*p) != series.pid);
        series.samples.push(sample);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_csv_reads_back_as_written() {
        let mut gateway = SourceSeries {
            role: "gateway".into(),
            kind: "reference gateway".into(),
            pid: Some(42),
            ..SourceSeries::default()
        };
        gateway.samples.push(ComponentSample {
            index: 0,
            start_s: 0.0,
            duration_s: 1.0,
            alive: true,
            cpu_user_s: Some(0.25),
            cpu_system_s: Some(0.05),
            cpu_cores: Some(0.3),
            rss_bytes: Some(10 << 20),
            metrics: [("queue_depth".to_string(), 3.0)].into(),
            ..ComponentSample::default()
        });
        let mut gw = SourceSeries {
            role: "gw".into(),
            kind: "metrics".into(),
            ..SourceSeries::default()
        };
        gw.samples.push(ComponentSample {
            index: 0,
            duration_s: 1.0,
            alive: true,
            metrics: [("http_requests_total{code=\"200\"}".to_string(), 7.0)].into(),
            ..ComponentSample::default()
        });
        let series = vec![gateway, gw];
        let mut bytes = Vec::new();
        write_csv(&mut bytes, &series).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(&format!(
                "{},\"http_requests_total{{code=\"\"200\"\"}}\",queue_depth\n",
                FIXED_COLUMNS.join(",")
            )),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("components.csv");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_csv(&path).unwrap(), series);

        let summary = summaries(&Telemetry { series }, 1000);
        let g = &summary["gateway"];
        assert_eq!((g.cpu_s, g.cpu_per_request_us), (Some(0.3), Some(300.0)));
        assert_eq!(g.metrics["queue_depth"], 3.0);
        assert_eq!(summary["gw"].cpu_s, None);
    }
}
