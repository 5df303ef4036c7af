//! The system under test's parts of a scenario, validated: the hardware
//! classes a find-limit holds the upstream in, and the `[[scrape]]`
//! targets read beside the components. Types only; `build_experiment` and
//! `build_target` make them.

/// One hardware class of a find-limit: what the component under test (the
/// upstream, whose cores the model counts) may use. At least one of the
/// three is set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HardwareClass {
    /// CPUs the mock upstream's threads are pinned to (`cpuset = "1"`,
    /// `"0,1"`, `"0-3"`): the mock pins itself, no cgroup needed.
    pub cpuset: Option<String>,
    /// A CPU quota in cores (`cpus = 1.5`: 150 ms of CPU per 100 ms CFS
    /// period, as a Kubernetes CPU limit), through a cgroup of its own.
    pub cpus: Option<f64>,
    /// A memory limit, bytes (`memory = "512MiB"`), through a cgroup.
    pub memory_bytes: Option<u64>,
}

impl HardwareClass {
    /// The class's name in reports: `cpuset=1`, `cpus=1.5`,
    /// `cpus=1,memory=512MiB`.
    pub fn name(&self) -> String {
        let mut parts = Vec::new();
        if let Some(set) = &self.cpuset {
            parts.push(format!("cpuset={set}"));
        }
        if let Some(cores) = self.cpus {
            parts.push(format!("cpus={cores}"));
        }
        if let Some(bytes) = self.memory_bytes {
            parts.push(format!("memory={}", format_bytes(bytes)));
        }
        parts.join(",")
    }

    /// True when the class needs a cgroup (a quota or a memory limit).
    pub fn needs_cgroup(&self) -> bool {
        self.cpus.is_some() || self.memory_bytes.is_some()
    }
}

/// Bytes as the scenario would write them: `512MiB`, `1GiB`, or plain bytes.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// A `[[scrape]]` target: something the harness did not start, sampled
/// every interval beside the components into `components.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeSpec {
    /// Its name in the report (`components.csv`, `summary.json`).
    pub name: String,
    /// What is read.
    pub source: ScrapeSource,
}

/// What a `[[scrape]]` target reads.
#[derive(Debug, Clone, PartialEq)]
pub enum ScrapeSource {
    /// A Prometheus endpoint (`url = "http://127.0.0.1:9100/metrics"`).
    Metrics {
        /// The URL as written.
        url: String,
        /// Where it is: `host:port`.
        authority: String,
        /// Its path and query.
        path: String,
        /// Metric names kept (every label set of each); empty: the page's
        /// first counters and gauges, up to a cap.
        series: Vec<String>,
    },
    /// A process by PID (`pid = 1234`): its CPU, memory, descriptors and threads.
    Pid(u32),
}
