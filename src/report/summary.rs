//! `summary.json`: the machine-readable result of one run.
//!
//! Takes a finished [`RunOutput`] and builds the [`Summary`] value; the
//! names here are a contract (CI users read them), versioned by
//! [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::experiment::run::RunOutput;
use crate::outcome::{Class, TlsFailure};
use crate::record::{Counts, Totals};

pub use super::connections::ConnectionsSummary;
use super::connections::{connection_churn, connection_warnings};

/// Version of the summary's layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest value.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Reads the percentiles off a histogram (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// Outcome counts as the summary shows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Outcomes {
    /// Complete responses by exact status code.
    pub responses: BTreeMap<u16, u64>,
    /// Requests dropped at the client deadline.
    pub client_timeout: u64,
    /// Connections that could not be made.
    pub connect_error: u64,
    /// TLS handshakes that failed (the reasons are in `connections.tls_errors`).
    #[serde(default)]
    pub tls_error: u64,
    /// Exchanges that failed mid-way (reset, closed early, not HTTP).
    pub io_error: u64,
    /// Arrivals never sent because the connection cap was reached.
    pub not_sent: u64,
    /// Counts by class (`2xx`, `429`, `503`, `504`, `other_status`, ...).
    pub classes: BTreeMap<String, u64>,
}

impl Outcomes {
    /// From recorder counts.
    pub fn of(c: &Counts) -> Self {
        Outcomes {
            responses: c.statuses().collect(),
            client_timeout: c.class(Class::ClientTimeout),
            connect_error: c.class(Class::ConnectError),
            tls_error: c.class(Class::TlsError),
            io_error: c.class(Class::IoError),
            not_sent: c.class(Class::NotSent),
            classes: Class::ALL
                .iter()
                .map(|k| (k.name().to_string(), c.class(*k)))
                .collect(),
        }
    }

    /// Every outcome counted.
    pub fn total(&self) -> u64 {
        self.classes.values().sum()
    }
}

/// What one API key saw.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeySummary {
    /// Outcomes of this key's arrivals.
    pub outcomes: Outcomes,
    /// Latency of this key's sent requests, us.
    pub latency_us: Percentiles,
}

/// The driver's own cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriverSummary {
    /// Driver threads.
    pub threads: usize,
    /// CPU seconds the driver threads used.
    pub cpu_s: f64,
    /// Requests sent per driver CPU-second.
    pub requests_per_cpu_s: f64,
    /// Busiest interval's driver CPU, in cores (max over whole intervals).
    pub peak_cpu_cores: f64,
    /// `[client] pacing_window` the pacer used, us (absent, so 0, in
    /// reports written before it existed).
    #[serde(default)]
    pub pacing_window_us: u64,
    /// Widest the window could grow (`pacing_window = "auto"`, the default:
    /// half of `lag_bound`; equal to `pacing_window_us` for a fixed
    /// window), us.
    #[serde(default)]
    pub pacing_window_max_us: u64,
    /// Widest window a driver thread used, us: above `pacing_window_us`
    /// when a thread was short of CPU and widened it, or started wide (at
    /// more than 20k arrivals per second and thread).
    #[serde(default)]
    pub pacing_window_widest_us: u64,
}

/// The summary of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Layout version, see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Scenario name.
    pub name: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// The URL the driver sent to.
    pub target: String,
    /// True when Ctrl-C or SIGTERM cut the run short.
    pub interrupted: bool,
    /// Arrivals scheduled (dispatched); each has exactly one outcome.
    pub arrivals: u64,
    /// Requests written to a connection.
    pub sent: u64,
    /// Time arrivals were offered for, s.
    pub duration_s: f64,
    /// Arrivals the phases ask for per second.
    pub intended_rate_per_s: f64,
    /// Requests sent per second.
    pub achieved_rate_per_s: f64,
    /// Complete responses per second.
    pub response_rate_per_s: f64,
    /// What became of the arrivals.
    pub outcomes: Outcomes,
    /// Completion minus intended send time, of sent requests.
    pub latency_us: Percentiles,
    /// Completion minus actual send time.
    pub service_time_us: Percentiles,
    /// Actual minus intended send time: the generator's own lateness plus
    /// the wait for a connection to the target.
    pub schedule_lag_us: Percentiles,
    /// Dispatch minus intended send time: the generator's own lateness
    /// alone (its timer, its CPU), which decides `generator_bound`.
    #[serde(default)]
    pub generator_lag_us: Percentiles,
    /// Latency by outcome class.
    pub latency_by_class_us: BTreeMap<String, Percentiles>,
    /// TCP connect time of the connections opened.
    #[serde(default)]
    pub connect_us: Percentiles,
    /// TLS handshake time of the connections opened over TLS: one value
    /// per connection (none in cleartext).
    #[serde(default)]
    pub tls_handshake_us: Percentiles,
    /// The connections opened: how many, the HTTP version, what TLS and
    /// ALPN agreed on, resumed sessions, failed handshakes by reason.
    #[serde(default)]
    pub connections: ConnectionsSummary,
    /// True when the generator, not the target, limited the run.
    pub generator_bound: bool,
    /// Why the run counts as generator-bound (empty when it does not).
    pub generator_bound_reasons: Vec<String>,
    /// Generator lag p99 above which the run is generator-bound, us.
    pub lag_bound_us: u64,
    /// `--connections N`: a closed-loop run with N connections (its latency
    /// is service time and its intended rate is what it achieved); `None`
    /// for the open loop of the phases' schedule.
    #[serde(default)]
    pub closed_loop_connections: Option<usize>,
    /// The driver's own cost.
    pub driver: DriverSummary,
    /// Per API key, by name.
    pub keys: BTreeMap<String, KeySummary>,
    /// A generated key space (`[keys] count = N`): its busiest keys and
    /// the spread of admissions over its keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_space: Option<super::key_space::KeySpaceSummary>,
    /// The mock upstream's ground truth (`GET /accounting`), when used.
    pub upstream_accounting: Option<mock_upstream::accounting::Snapshot>,
    /// What the gateway's access log accounted per key, when `contend`
    /// started the gateway.
    pub gateway_accounting: Option<crate::analysis::gateway_log::GatewayAccounting>,
    /// Problems met outside the measurement (e.g. accounting unreadable).
    pub warnings: Vec<String>,
    /// Components (mock upstream, gateway) that died during the run:
    /// which, when (s from the run's start), exit code or signal, and
    /// their last stderr lines. Empty when every component lasted.
    #[serde(default)]
    pub component_exits: Vec<crate::topology::ChildExit>,
    /// Spans in which a component made no progress: its processes were
    /// stopped. Latency in them measures the stall, not contend.
    #[serde(default)]
    pub component_stalls: Vec<crate::topology::ComponentStall>,
    /// The `[[faults]]` as applied: which component, what, when planned
    /// and when it took effect and ended (s from the load's start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::experiment::faults::AppliedFault>,
    /// A target driven at several addresses (`[target] urls`): each
    /// address's requests, outcomes, latency and connections (see
    /// `report::addresses` for what is charged where); absent with one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<super::addresses::AddressSummary>,
    /// Each reference gateway replica's totals from its `/metrics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<crate::experiment::run::ReplicaResult>,
    /// Commands the started Redis store processed over the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_commands: Option<f64>,
    /// The host settings checked before the run (open files, listen
    /// queues, ephemeral ports, TIME_WAIT reuse), each OK, WARN or SKIP
    /// with its fix; each WARN is also in `warnings`.
    #[serde(default)]
    pub preflight: Vec<crate::preflight::Check>,
    /// The thresholds evaluated at the end of the run, in the order given
    /// (scenario's `[thresholds] checks`, then `--threshold` flags).
    #[serde(default)]
    pub thresholds: Vec<crate::threshold::ThresholdResult>,
    /// `experiment = "abort-audit"`: per gateway mode and key, accounted
    /// against true worker time (the other fields then describe the first
    /// mode that ran; each mode's own report is in its subfolder).
    #[serde(default)]
    pub abort_audit: Option<crate::analysis::accounting::AbortAudit>,
    /// When each phase (for a sweep: each step and its measured part)
    /// began, s from the run start: the boundaries the plots mark.
    #[serde(default)]
    pub phase_starts_s: Vec<f64>,
    /// The machine the run ran on and where its parts were pinned.
    #[serde(default)]
    pub machine: Option<Machine>,
    /// Which share of a load this run offered, and where.
    #[serde(default)]
    pub shard: Option<ShardInfo>,
    /// A merged report's shards (`contend merge`); absent for one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// The system under test, by role (`upstream`, `gateway`, each
    /// `[[scrape]]` name): CPU seconds and per request, cores, peak memory
    /// and descriptors, throttling, its own counters; per interval in
    /// components.csv. Empty when nothing was read (an external target).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, super::components::ComponentSummary>,
    /// `experiment = "sweep"`: the step rows, the knee, the USL fit and the
    /// highest rate within the SLO (the other fields describe every
    /// open-loop step together, warm-ups included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<crate::experiment::sweep::SweepResult>,
    /// `experiment = "find-limit"`: the limit found and the model's, per
    /// hardware class, and every step's row (the other fields describe the
    /// first class's step at its limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find_limit: Option<crate::experiment::find_limit::FindLimitResult>,
    /// What the client's retry policy cost: attempts, amplification,
    /// retries by reason, budget refusals; absent without a policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<super::retries::RetrySummary>,
    /// `[[variants]]`: one row per variant (the other fields describe the
    /// first variant; each variant's own report is in `variant-NAME/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<super::variants::VariantRow>>,
    /// `experiment = "quota"`: each rate-limit design's accuracy, cost,
    /// store faults and footprint (the other fields describe the first
    /// design that ran; each design's own report is in `design-NAME/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<super::quota::QuotaResult>,
}

/// Which share of a load a run offered (`--shard I/N`), on which host, and
/// how its start met `--start-at`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardInfo {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards shared the load (1: the whole load).
    pub count: usize,
    /// The host it ran on.
    pub host: String,
    /// `--start-at`, RFC 3339 UTC, when given.
    pub start_at: Option<String>,
    /// How late the load began against `--start-at`, s (0: on time).
    pub start_late_s: Option<f64>,
    /// The reporting interval, s (`[client] interval`); 0 in reports
    /// written before it was kept.
    #[serde(default)]
    pub interval_s: f64,
}

impl ShardInfo {
    /// The shard a run offered, on this host, and how its start went.
    fn of(client: &crate::scenario::ClientSpec, d: &crate::driver::DriverOutput) -> ShardInfo {
        ShardInfo {
            index: client.shard.index,
            count: client.shard.count,
            host: host_name(),
            start_at: client.start_at.map(|at| {
                chrono::DateTime::<chrono::Utc>::from(at)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }),
            start_late_s: d.start_late_s.map(round3),
            interval_s: client.interval.as_secs_f64(),
        }
    }
}

/// Each key's outcomes and latency, by name.
fn key_summaries(names: &[String], t: &Totals) -> BTreeMap<String, KeySummary> {
    names
        .iter()
        .zip(&t.keys)
        .map(|(name, k)| {
            (
                name.clone(),
                KeySummary {
                    outcomes: Outcomes::of(&k.counts),
                    latency_us: k.latency_us().map(Percentiles::of).unwrap_or_default(),
                },
            )
        })
        .collect()
}

/// When each phase begins, s from the run's start.
fn phase_starts_s(phases: &[crate::scenario::Phase]) -> Vec<f64> {
    phases
        .iter()
        .scan(0.0, |at, p| {
            let start = *at;
            *at += p.duration.as_secs_f64();
            Some(round3(start))
        })
        .collect()
}

/// What a merged report is made of (`contend merge`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Merged {
    /// The shards merged, by index, each with its folder, host and start.
    pub shards: Vec<MergedShard>,
    /// Shard indices of the count that were not there (`--allow-missing`).
    pub missing: Vec<usize>,
    /// How far apart the shards' loads began, s.
    pub start_spread_s: f64,
}

/// One shard of a merged report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergedShard {
    /// Its index.
    pub index: usize,
    /// Its report folder.
    pub dir: String,
    /// Its host.
    pub host: String,
    /// When its load began, RFC 3339 UTC.
    pub started_at: String,
    /// True when it was generator-bound.
    pub generator_bound: bool,
}

/// The machine a run ran on, and the CPU placement of its parts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu_model: String,
    /// CPUs online.
    pub online_cpus: usize,
    /// CPUs this process may run on (affinity).
    pub allowed_cpus: usize,
    /// Kernel release, or `unknown`.
    pub kernel: String,
    /// The mock upstream's CPU list, when it is the mock and pinned.
    pub upstream_cpus: Option<String>,
    /// Which gateway stood in front (`none`, `reference`, `nginx`, `haproxy`, `external`).
    pub gateway: String,
    /// The gateway's CPU list, when given.
    pub gateway_cpus: Option<String>,
}

impl Machine {
    /// Reads this machine's facts and the scenario's placement.
    pub fn of(scenario: &crate::scenario::Scenario) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_string(), |m| m.trim().to_string());
        let online_cpus = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let allowed_cpus = crate::driver::default_threads();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_string(), |k| k.trim().to_string());
        let upstream_cpus = match &scenario.target {
            crate::scenario::Target::Mock(m) => m.cpus.clone(),
            crate::scenario::Target::Url(_) | crate::scenario::Target::Urls(..) => None,
        };
        let gateway = scenario.gateway.kind.as_str();
        Machine {
            cpu_model,
            online_cpus: online_cpus.max(allowed_cpus),
            allowed_cpus,
            kernel,
            upstream_cpus,
            gateway: gateway.to_string(),
            gateway_cpus: scenario.gateway.cpus.clone(),
        }
    }
}

/// Why the run counts as generator-bound (empty when it does not), and a
/// warning when requests waited on the target instead. Only the
/// generator's own lateness (or its threads being busy) is evidence against
/// it: an arrival that waits for a connection to a target that does not
/// accept or answer is late because of the target.
fn generator_verdict(
    schedule_lag: &Percentiles,
    generator_lag: &Percentiles,
    lag_bound_us: u64,
    busy: f64,
) -> (Vec<String>, Option<String>) {
    let mut reasons = Vec::new();
    let mut waited = None;
    if generator_lag.p99 > lag_bound_us {
        reasons.push(format!(
            "generator lag p99 {} us is over the bound of {} us",
            generator_lag.p99, lag_bound_us
        ));
    } else if schedule_lag.p99 > lag_bound_us {
        waited = Some(format!(
            "requests waited for a connection to the target: schedule lag p99 {} us, of which the \
             generator's own lag p99 was {} us; the rest is the target not accepting or not \
             answering fast enough (latency counts it), not contend",
            schedule_lag.p99, generator_lag.p99
        ));
    }
    if busy > DRIVER_BUSY_SHARE {
        reasons.push(format!(
            "driver threads were {:.0}% busy (over {:.0}%)",
            busy * 100.0,
            DRIVER_BUSY_SHARE * 100.0
        ));
    }
    (reasons, waited)
}

/// One line on why no request got a response, when none did: every
/// connect failed (and why), or every request timed out (and whether the
/// timeout was shorter than any response could be), or the mix.
fn nothing_answered(t: &Totals, target: &str, timeout: std::time::Duration) -> Option<String> {
    let responses: u64 = t.counts.statuses().map(|(_, n)| n).sum();
    if t.arrivals == 0 || responses > 0 {
        return None;
    }
    let all = |class: Class| t.counts.class(class) == t.arrivals;
    Some(if all(Class::TlsError) {
        let reasons: Vec<&str> = TlsFailure::ALL
            .iter()
            .filter(|r| t.connections.tls_errors[r.index()] > 0)
            .map(|r| r.name())
            .collect();
        format!(
            "no request got a response: every TLS handshake with {target} failed ({})",
            reasons.join(", ")
        )
    } else if all(Class::ConnectError) {
        let why = t
            .first_connect_error
            .as_deref()
            .unwrap_or("no reason given");
        format!(
            "no request got a response: every connect to {target} failed ({why}); is anything listening there?"
        )
    } else if all(Class::ClientTimeout) && timeout < std::time::Duration::from_millis(1) {
        format!(
            "no request got a response: every request timed out, and the client timeout ({}) is shorter than any response can take",
            contend_units::format_duration(timeout)
        )
    } else if all(Class::ClientTimeout) {
        format!(
            "no request got a response: {target} answered none within the client timeout ({})",
            contend_units::format_duration(timeout)
        )
    } else {
        let failed: Vec<String> = Class::ALL
            .iter()
            .filter(|c| t.counts.class(**c) > 0)
            .map(|c| format!("{} {}", c.name(), t.counts.class(*c)))
            .collect();
        format!("no request got a response: {}", failed.join(", "))
    })
}

/// The addresses the driver spread over: `[target] urls` when it drove
/// that target itself (not a gateway in front of it).
fn target_urls(run: &RunOutput) -> Vec<String> {
    match &run.scenario.target {
        crate::scenario::Target::Urls(first, more) if *first == run.target_url => {
            std::iter::once(first.clone())
                .chain(more.iter().cloned())
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Driver CPU share of its threads above which it is called the bottleneck.
const DRIVER_BUSY_SHARE: f64 = 0.9;

impl Summary {
    /// Builds the summary of a finished run.
    pub fn of(run: &RunOutput) -> Summary {
        let t = &run.step.driver.totals;
        let d = &run.step.driver;
        let load = &run.step.step.load;
        let duration_s = d.duration_s.max(1e-9);
        let cpu_s = t.driver_cpu_ns as f64 / 1e9;
        let lag = Percentiles::of(&t.schedule_lag_us);
        let generator_lag = Percentiles::of(&t.generator_lag_us);
        let lag_bound_us = run.scenario.client.lag_bound.as_micros() as u64;
        // The last interval can be a few ms of drain; its share says little.
        let full_s = d.intervals.iter().map(|r| r.duration_s).fold(0.0, f64::max);
        let peak_cpu_cores = d
            .intervals
            .iter()
            .filter(|r| r.duration_s >= full_s / 2.0)
            .map(|r| r.driver_cpu_cores)
            .fold(0.0, f64::max);
        let busy = cpu_s / (duration_s * d.threads as f64);
        let (reasons, waited) = generator_verdict(&lag, &generator_lag, lag_bound_us, busy);
        let mut warnings = run.warnings.clone();
        warnings.extend(connection_warnings(
            t,
            run.scenario.client.tls.insecure && d.tls,
        ));
        warnings.extend(waited);
        if !reasons.is_empty() && load.closed_loop().is_none() {
            warnings.extend(connection_churn(t, &run.scenario.client, duration_s));
        }
        warnings.extend(nothing_answered(
            t,
            &run.target_url,
            run.scenario.client.timeout,
        ));
        let scheduled_s = load.duration().as_secs_f64();
        let closed_loop = load.closed_loop();
        let intended_rate_per_s = if d.interrupted || closed_loop.is_some() {
            t.arrivals as f64 / duration_s
        } else {
            // A shard offers its share of the phases.
            crate::arrival::expected_arrivals(load.phases())
                / scheduled_s.max(1e-9)
                / run.scenario.client.shard.count.max(1) as f64
        };
        let responses: u64 = t.counts.statuses().map(|(_, n)| n).sum();
        Summary {
            schema_version: SCHEMA_VERSION,
            name: run.scenario.name.clone(),
            started_at: run
                .step
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            target: run.target_url.clone(),
            interrupted: d.interrupted,
            arrivals: t.arrivals,
            sent: t.sent,
            duration_s: round3(duration_s),
            intended_rate_per_s: round3(intended_rate_per_s),
            achieved_rate_per_s: round3(t.sent as f64 / duration_s),
            response_rate_per_s: round3(responses as f64 / duration_s),
            outcomes: Outcomes::of(&t.counts),
            latency_us: Percentiles::of(&t.latency_us),
            service_time_us: Percentiles::of(&t.service_us),
            schedule_lag_us: lag,
            generator_lag_us: generator_lag,
            latency_by_class_us: Class::ALL
                .iter()
                .zip(&t.latency_by_class_us)
                .filter(|(_, h)| !h.is_empty())
                .map(|(c, h)| (c.name().to_string(), Percentiles::of(h)))
                .collect(),
            connect_us: Percentiles::of(&t.connections.connect_us),
            tls_handshake_us: Percentiles::of(&t.connections.tls_handshake_us),
            connections: ConnectionsSummary::of(&t.connections, d, &run.scenario.client),
            generator_bound: !reasons.is_empty(),
            generator_bound_reasons: reasons,
            lag_bound_us,
            closed_loop_connections: closed_loop,
            driver: DriverSummary {
                threads: d.threads,
                cpu_s: round3(cpu_s),
                requests_per_cpu_s: round3(t.sent as f64 / cpu_s.max(1e-9)),
                peak_cpu_cores: round3(peak_cpu_cores),
                pacing_window_us: run.scenario.client.pacing_window.as_micros() as u64,
                pacing_window_max_us: run.scenario.client.pacing_window_max.as_micros() as u64,
                pacing_window_widest_us: t.pacing_window_widest_ns / 1_000,
            },
            keys: key_summaries(&run.step.key_names, t),
            key_space: run
                .scenario
                .key_space
                .as_ref()
                .map(|space| super::key_space::KeySpaceSummary::of(space, &t.key_space)),
            upstream_accounting: run.upstream.clone(),
            gateway_accounting: run.gateway.clone(),
            warnings,
            component_exits: run.step.component_exits.clone(),
            component_stalls: run.step.component_stalls.clone(),
            faults: run.step.faults.clone(),
            addresses: super::addresses::of(&target_urls(run), t),
            replicas: run.replicas.clone(),
            store_commands: run.store_commands,
            preflight: Vec::new(),
            thresholds: Vec::new(),
            abort_audit: None,
            phase_starts_s: phase_starts_s(load.phases()),
            sweep: None,
            find_limit: None,
            retries: run.scenario.retrying().then(|| {
                super::retries::RetrySummary::of(
                    &t.retries,
                    t.arrivals,
                    t.counts.class(Class::Success),
                    duration_s,
                )
            }),
            variants: None,
            quota: None,
            machine: Some(Machine::of(&run.scenario)),
            shard: Some(ShardInfo::of(&run.scenario.client, d)),
            merged: None,
            components: super::components::summaries(&run.step.telemetry, responses),
        }
    }
}

/// summary.json's layout, the contract CI users read.
const SCHEMA: &str = include_str!("../../docs/summary.schema.json");

/// The dotted paths of the numbers (and booleans) a summary of
/// `scenario`'s experiment holds, read off summary.json's schema, for
/// checking thresholds before the run: `*` stands for any one name (a
/// key, a status), `#` for any one index, and a last `**` for anything
/// below a part the schema leaves open. A part this experiment never fills
/// (`sweep` in a plain run, `upstream_accounting` with no mock upstream) is
/// left out, so a threshold on it is refused instead of failing at the end.
pub fn number_paths(scenario: &crate::scenario::Scenario) -> Vec<String> {
    use crate::scenario::{Experiment, GatewayKind, Load, Target};
    let Ok(schema) = serde_json::from_str::<serde_json::Value>(SCHEMA) else {
        // Built in and parsed by a test; were it broken, check nothing.
        return vec!["**".to_string()];
    };
    let experiment = &scenario.experiment;
    let starts_gateway = matches!(
        scenario.gateway.kind,
        GatewayKind::Reference | GatewayKind::Nginx
    ) || matches!(
        experiment,
        Experiment::FindLimit(_) | Experiment::AbortAudit(_)
    );
    let holds = |member: &str| match member {
        "sweep" => matches!(experiment, Experiment::Sweep(_)),
        "find_limit" => matches!(experiment, Experiment::FindLimit(_)),
        "abort_audit" => matches!(experiment, Experiment::AbortAudit(_)),
        "quota" => matches!(experiment, Experiment::Quota(_)),
        "closed_loop_connections" => {
            matches!(experiment, Experiment::Run(Load::Closed { .. }))
        }
        "upstream_accounting" => matches!(scenario.target, Target::Mock(_)),
        "addresses" => matches!(scenario.target, Target::Urls(..)),
        "gateway_accounting" => starts_gateway,
        "retries" => scenario.retrying() || scenario.variants.iter().any(|v| v.retry.is_some()),
        "variants" => !scenario.variants.is_empty(),
        // Only `contend merge` writes it.
        "merged" => false,
        "components" => {
            starts_gateway
                || matches!(scenario.target, Target::Mock(_))
                || !scenario.scrape.is_empty()
        }
        _ => true,
    };
    let mut paths = Vec::new();
    let Some(members) = schema.get("properties").and_then(|p| p.as_object()) else {
        return vec!["**".to_string()];
    };
    for (name, member) in members.iter().filter(|(name, _)| holds(name)) {
        collect_paths(&schema, member, &mut vec![name.clone()], &mut paths);
    }
    paths
}

/// Pushes onto `out` the paths of the numbers under `node` (a schema),
/// reached by `at`.
fn collect_paths(
    root: &serde_json::Value,
    node: &serde_json::Value,
    at: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    // The schema's references do not loop; the bound is a guard all the same.
    const MAX_DEPTH: usize = 16;
    let node = match node.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => r
            .strip_prefix("#/")
            .and_then(|pointer| root.pointer(&format!("/{pointer}")))
            .unwrap_or(node),
        None => node,
    };
    if at.len() > MAX_DEPTH {
        return;
    }
    let types: Vec<&str> = match node.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.as_str()],
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ if node.get("properties").is_some() => vec!["object"],
        _ => Vec::new(),
    };
    let below =
        |name: &str, sub: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<String>| {
            at.push(name.to_string());
            collect_paths(root, sub, at, out);
            at.pop();
        };
    if types.contains(&"object") {
        let members = node.get("properties").and_then(|p| p.as_object());
        for (name, sub) in members.into_iter().flatten() {
            below(name, sub, at, out);
        }
        match node.get("additionalProperties") {
            Some(sub @ serde_json::Value::Object(_)) => below("*", sub, at, out),
            Some(serde_json::Value::Bool(false)) => {}
            _ if members.is_none() => out.push(format!("{}.**", at.join("."))),
            _ => {}
        }
    }
    if types.contains(&"array") {
        if let Some(items) = node.get("items") {
            below("#", items, at, out);
        }
    }
    if types
        .iter()
        .any(|t| matches!(*t, "number" | "integer" | "boolean"))
    {
        out.push(at.join("."));
    }
}

/// This host's name (`/proc/sys/kernel/hostname`), or `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `x` to three decimals, as summary.json holds its measured values.
pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, Source};

    /// The paths of a scenario file under `scenarios/` (`+target`: with
    /// `--target` given, so without the mock upstream).
    fn paths_of(file: &str) -> Vec<String> {
        let (file, target) = match file.strip_suffix("+target") {
            Some(file) => (file, Some("http://127.0.0.1:8080/".to_string())),
            None => (file, None),
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let overrides = Overrides {
            target,
            ..Overrides::default()
        };
        let scenario = crate::scenario::parse(&text, &Source::File(path), &overrides).unwrap();
        number_paths(&scenario)
    }

    #[test]
    fn number_paths_are_those_of_the_experiment() {
        // (scenario, paths it holds, paths it does not)
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "gate.toml+target",
                &[
                    "arrivals",
                    "latency_us.p99",
                    "keys.*.latency_us.p99",
                    "outcomes.responses.*",
                    "latency_by_class_us.*.p99",
                    "component_exits.#.exit_code",
                    "machine.online_cpus",
                ],
                &[
                    "name",
                    "sweep.max_rate_within_slo_per_s",
                    "find_limit.limit",
                    "abort_audit.rows.#.under_count",
                    "closed_loop_connections",
                    "upstream_accounting.totals.cpu_s",
                    "gateway_accounting.lines",
                    "components.*.cpu_s",
                ],
            ),
            (
                "quickstart.toml",
                &[
                    "upstream_accounting.totals.cpu_s",
                    "upstream_accounting.keys.*.started",
                    "components.*.cpu_per_request_us",
                    "components.*.metrics.*",
                ],
                &["gateway_accounting.lines"],
            ),
            (
                "capacity-sweep.toml",
                &[
                    "sweep.max_rate_within_slo_per_s",
                    "sweep.steps.#.p99_us",
                    "sweep.knee.offered_per_s",
                ],
                &["find_limit.limit", "sweep.steps"],
            ),
            (
                "timeout-break.toml",
                &[
                    "find_limit.limit",
                    "find_limit.classes.#.limit",
                    "gateway_accounting.lines",
                    "gateway_accounting.keys.**",
                ],
                &["sweep.knee.offered_per_s"],
            ),
            (
                "client-abort.toml",
                &["abort_audit.rows.#.under_count"],
                &["find_limit.limit"],
            ),
        ];
        for (file, holds, lacks) in cases {
            let paths = paths_of(file);
            for path in *holds {
                assert!(paths.iter().any(|p| p == path), "{file}: no {path}");
            }
            for path in *lacks {
                assert!(!paths.iter().any(|p| p == path), "{file}: {path}");
            }
        }
    }
}
