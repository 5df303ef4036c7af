//! `capacity.json`: a planning run's answer in one file.
//!
//! Takes a finished [`Summary`]; when its experiment answers a capacity
//! question (a sweep's highest rate within the SLO, find-limit's
//! max-connections per hardware class) hands on that answer alone, for
//! pipelines that want the number without reading the whole summary.

use serde::Serialize;

use super::summary::{SCHEMA_VERSION, Summary};

/// The capacity answers of one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Capacity {
    /// Same version as summary.json.
    pub schema_version: u32,
    /// Scenario name.
    pub name: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// True when Ctrl-C or SIGTERM cut the run short: a sweep's answer is
    /// then withheld unless a measured step crossed the SLO, and each
    /// find-limit class says whether its search was cut short.
    pub interrupted: bool,
    /// From a sweep: the highest offered rate within the SLO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rate_within_slo: Option<SloRate>,
    /// From find-limit: the concurrency limit to set, per hardware class.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub max_connections: Vec<ClassLimit>,
}

/// A sweep's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SloRate {
    /// Highest offered rate whose percentile stays within the SLO, per second
    /// (interpolated between steps).
    pub rate_per_s: f64,
    /// The SLO, us.
    pub slo_us: u64,
    /// The percentile the SLO bounds (99 = P99).
    pub percentile: f64,
    /// Where the latency knee lies, offered per second, when one was found.
    pub knee_per_s: Option<f64>,
    /// What each component the harness started cost at the highest rate
    /// measured within the SLO: the sizing rule, measured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentAtRate>,
}

/// One component's cost at the highest step measured within the SLO.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentAtRate {
    /// `upstream` or `gateway`.
    pub component: String,
    /// The step's offered rate, per second (at or below the SLO answer).
    pub measured_at_per_s: f64,
    /// Responses per second the step achieved.
    pub achieved_per_s: f64,
    /// Cores it used there.
    pub cores: f64,
    /// Its CPU per request it handled there, us.
    pub cpu_per_request_us: f64,
    /// Cores it needs per 10,000 responses per second at that cost.
    pub cores_per_10k_per_s: f64,
    /// Its most resident memory at that step, bytes.
    pub memory_bytes: Option<u64>,
}

/// find-limit's answer for one hardware class.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassLimit {
    /// The class, e.g. `cpus=1`.
    pub class: String,
    /// Cores the upstream had.
    pub cores: f64,
    /// The limit to set; `None` when every candidate broke.
    pub max_connections: Option<u32>,
    /// The processor-sharing model's limit.
    pub model_limit: Option<u32>,
    /// Goodput at the limit, per second.
    pub goodput_at_limit_per_s: Option<f64>,
    /// Goodput with no limit, per second.
    pub goodput_no_limit_per_s: Option<f64>,
    /// How the class held the upstream: `pinned`, `quota`, `memory`, ...
    pub placement: String,
    /// At the limit, the share of CFS periods the quota throttled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_share_at_limit: Option<f64>,
    /// False when the answer was not confirmed by repeats.
    pub confirmed: bool,
    /// True when the class's search was cut short.
    pub interrupted: bool,
}

/// The components' cost at the highest step within the SLO: a step not
/// past saturation, whose SLO percentile held, at or below the answer.
fn components_at_slo(sweep: &crate::experiment::sweep::SweepResult) -> Vec<ComponentAtRate> {
    let (Some(answer), Some(slo)) = (sweep.max_rate_within_slo_per_s, sweep.slo_us) else {
        return Vec::new();
    };
    let Some(step) = sweep
        .steps
        .iter()
        .filter(|s| !s.past_saturation && s.slo_percentile_us <= slo)
        .filter(|s| s.rate_per_s <= answer + 1e-9)
        .max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s))
    else {
        return Vec::new();
    };
    let parts = [
        (
            "upstream",
            step.upstream_cores,
            step.upstream_cpu_per_request_us,
            step.upstream_rss_bytes,
        ),
        (
            "gateway",
            step.gateway_cores,
            step.gateway_cpu_per_request_us,
            step.gateway_rss_bytes,
        ),
    ];
    parts
        .into_iter()
        .filter_map(|(component, cores, cpu_us, memory_bytes)| {
            let cpu_per_request_us = cpu_us?;
            Some(ComponentAtRate {
                component: component.to_string(),
                measured_at_per_s: step.rate_per_s,
                achieved_per_s: step.achieved_per_s,
                cores: cores?,
                cpu_per_request_us,
                cores_per_10k_per_s: (cpu_per_request_us * 1e4 / 1e6 * 1000.0).round() / 1000.0,
                memory_bytes,
            })
        })
        .collect()
}

impl Capacity {
    /// The capacity answers in `summary`, or `None` when it has none.
    pub fn of(summary: &Summary) -> Option<Capacity> {
        let max_rate_within_slo = summary.sweep.as_ref().and_then(|sweep| {
            Some(SloRate {
                rate_per_s: sweep.max_rate_within_slo_per_s?,
                slo_us: sweep.slo_us?,
                percentile: sweep.slo_percentile,
                knee_per_s: sweep.knee.as_ref().map(|k| k.offered_per_s),
                components: components_at_slo(sweep),
            })
        });
        let max_connections: Vec<ClassLimit> = summary
            .find_limit
            .iter()
            .flat_map(|f| &f.classes)
            .map(|c| ClassLimit {
                class: c.class.clone(),
                cores: c.cores,
                max_connections: c.limit,
                model_limit: c.model_limit,
                goodput_at_limit_per_s: c.goodput_at_limit_per_s,
                goodput_no_limit_per_s: c.goodput_no_limit_per_s,
                placement: c.placement.clone(),
                throttled_share_at_limit: c.throttled_share_at_limit,
                confirmed: c.confirmed,
                interrupted: c.interrupted,
            })
            .collect();
        if max_rate_within_slo.is_none() && max_connections.is_empty() {
            return None;
        }
        Some(Capacity {
            schema_version: SCHEMA_VERSION,
            name: summary.name.clone(),
            started_at: summary.started_at.clone(),
            interrupted: summary.interrupted,
            max_rate_within_slo,
            max_connections,
        })
    }
}
