//! Scenario files: the TOML schema, its defaults and its validation.
//!
//! Takes a TOML text (from a file or built from CLI flags) and hands on a
//! validated [`Scenario`]: every value in range, every duration and rate in
//! plain units. Errors carry file:line:col and say what would be valid. This
//! module does no I/O beyond reading the file and knows nothing of sockets.
//!
//! This file holds the validated types and the entry points ([`load`],
//! [`parse`], [`from_overrides`]). The way from text to a [`Scenario`]:
//! - `raw`: the file as written (serde mirrors, every field optional).
//! - `check`: value checks (ranges, names, header text, CPU lists).
//! - `url`: the `http://HOST:PORT/PATH` URLs of targets and flags.
//! - `build`: the whole scenario, its name, phases and thresholds.
//! - `build_client`: `[request]`, `[[keys]]` or `[keys]` (`key_space`), `[client]`.
//! - `build_target`: `[target]`, `[upstream]` and `[gateway]`.
//! - `build_experiment`: `[sweep]`, `[find_limit]` and `[abort_audit]`.
//! - `system`: the validated hardware classes and `[[scrape]]` targets.
//! - `store`: `[store]` (the shared rate-limit store) and `[[faults]]`.

mod build;
mod build_client;
mod build_experiment;
mod build_target;
mod check;
mod client;
mod key_space;
mod overrides;
mod raw;
mod retry;
mod store;
mod system;
mod url;
mod variants;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use contend_units::located::location;

use crate::error::{Error, Result};
use build::{Ctx, build, cli};
pub use build_target::{Unsupported, unsupported};
pub(crate) use check::quoted;
pub use client::{
    ClientSpec, DEFAULT_PACING_WINDOW, DEFAULT_STREAMS_PER_CONNECTION, HttpVersion, MAX_SHARDS,
    Shard, ShardArg, TlsSpec, TlsVersionSpec, auto_window_max,
};
pub use key_space::{KeyDistribution, KeySpace, MAX_KEY_SPACE};
pub use overrides::Overrides;
use raw::RawScenario;
pub use retry::{Backoff, Jitter, MAX_RETRIES, RetryOn, RetrySpec};
pub use store::{FaultAction, FaultSpec, FaultTarget, QuotaSpec, Slowdown, StoreSpec};
pub use system::{HardwareClass, ScrapeSource, ScrapeSpec, format_bytes};
pub use variants::{MAX_VARIANTS, VariantSpec};

/// A validated scenario: what to drive, how hard, for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name used for the report folder (`reports/<name>-<stamp>/`).
    pub name: String,
    /// What the run is: its load, or the steps it composes, with its spec.
    pub experiment: Experiment,
    /// What the driver sends to.
    pub target: Target,
    /// The request every arrival sends (keys may override path and headers).
    pub request: RequestSpec,
    /// A weighted mix of API keys; empty: no `x-api-key`, or a generated key space.
    pub keys: Vec<KeySpec>,
    /// `[keys]`: a generated key space instead of `[[keys]]`.
    pub key_space: Option<KeySpace>,
    /// Client behaviour: timeout, connection cap, threads, seed.
    pub client: ClientSpec,
    /// The gateway under test in front of the target (`[gateway]`); none by default.
    pub gateway: GatewaySpec,
    /// `[thresholds] checks`: evaluated over the summary at the end of the run.
    pub thresholds: Vec<ScenarioThreshold>,
    /// `[[scrape]]`: targets the harness did not start, sampled per interval.
    pub scrape: Vec<ScrapeSpec>,
    /// `[[variants]]`: the run once per variant, side by side (empty: once).
    pub variants: Vec<VariantSpec>,
    /// `[[faults]]`: what the harness does to components during each step.
    pub faults: Vec<FaultSpec>,
}

/// A threshold of `[thresholds] checks`, and where the file holds it (so
/// a check made once the whole scenario is known can point at it).
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioThreshold {
    /// The parsed expression.
    pub threshold: crate::threshold::Threshold,
    /// The file, and the line and column of the expression's first
    /// character (exact for strings without escapes).
    written_at: (PathBuf, usize, usize),
}

impl ScenarioThreshold {
    /// `file:line:col` of the expression's column `col` (from 1).
    pub fn location(&self, col: usize) -> String {
        threshold_location(&self.written_at, col)
    }
}

/// `file:line:col` of column `col` (from 1) of an expression whose first
/// character is at `(file, line, start)`.
fn threshold_location((file, line, start): &(PathBuf, usize, usize), col: usize) -> String {
    format!("{}:{line}:{}", file.display(), start + col.max(1) - 1)
}

impl Scenario {
    /// True when a retry policy is on (the client's, or a key's).
    pub fn retrying(&self) -> bool {
        self.client.retry.as_ref().is_some_and(RetrySpec::is_on)
            || self
                .keys
                .iter()
                .any(|k| k.retry.as_ref().is_some_and(RetrySpec::is_on))
    }

    /// The scenario's `[[phases]]`: a run's open-loop load, or the load
    /// each mode of an abort audit runs; none for a sweep, a find-limit
    /// (their steps come from their sections) or a closed loop.
    pub fn phases(&self) -> &[Phase] {
        match &self.experiment {
            Experiment::Run(load) => load.phases(),
            Experiment::AbortAudit(audit) => &audit.phases,
            Experiment::Quota(quota) => &quota.phases,
            Experiment::Sweep(_) | Experiment::FindLimit(_) => &[],
        }
    }
}

/// What a scenario runs (`experiment = "..."`), each with its own spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Experiment {
    /// The load once: the phases in order (or `--connections N` clients).
    Run(Load),
    /// Offered load (or concurrency) in steps: `[sweep]`.
    Sweep(SweepSpec),
    /// The largest gateway concurrency limit inside the gateway timeout: `[find_limit]`.
    FindLimit(FindLimitSpec),
    /// The phases once per gateway mode, accounted time against the
    /// upstream's truth: `[abort_audit]` and `[[phases]]`.
    AbortAudit(AbortAuditSpec),
    /// The phases once per rate-limit design (in-process, the store on
    /// every request, the store with a local cache, and through the
    /// `[[faults]]` failing open and closed): `[store]` and `[[phases]]`.
    Quota(QuotaSpec),
}

impl Experiment {
    /// Which experiment this is.
    pub fn kind(&self) -> ExperimentKind {
        match self {
            Experiment::Run(_) => ExperimentKind::Run,
            Experiment::Sweep(_) => ExperimentKind::Sweep,
            Experiment::FindLimit(_) => ExperimentKind::FindLimit,
            Experiment::AbortAudit(_) => ExperimentKind::AbortAudit,
            Experiment::Quota(_) => ExperimentKind::Quota,
        }
    }

    /// The highest rate any of its steps offers, per second, when it is
    /// known before the run (a find-limit's default rate depends on the
    /// upstream and is 0 here); a closed loop offers none.
    pub fn peak_rate_per_s(&self) -> f64 {
        match self {
            Experiment::Run(load) => load.peak_rate_per_s(),
            Experiment::Sweep(sweep) => sweep.rates.iter().copied().fold(0.0, f64::max),
            Experiment::FindLimit(find_limit) => find_limit.rate.unwrap_or(0.0),
            Experiment::AbortAudit(audit) => Load::Open(audit.phases.clone()).peak_rate_per_s(),
            Experiment::Quota(quota) => Load::Open(quota.phases.clone()).peak_rate_per_s(),
        }
    }
}

/// What one load step offers: an open-loop schedule, or closed-loop clients.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// The phases' schedule, in order: each arrival sent at its intended
    /// time whether or not earlier ones have answered.
    Open(Vec<Phase>),
    /// `connections` clients, each sending its next request as soon as the
    /// last one ended, for `duration` (wrk's and oha's `-c`). Latency is
    /// then service time: it hides queueing (coordinated omission).
    Closed {
        /// Connections (clients) over all driver threads.
        connections: usize,
        /// How long the clients send.
        duration: Duration,
    },
}

impl Load {
    /// How long the load is offered.
    pub fn duration(&self) -> Duration {
        match self {
            Load::Open(phases) => phases.iter().map(|p| p.duration).sum(),
            Load::Closed { duration, .. } => *duration,
        }
    }

    /// The phases of an open-loop load (none for a closed loop).
    pub fn phases(&self) -> &[Phase] {
        match self {
            Load::Open(phases) => phases,
            Load::Closed { .. } => &[],
        }
    }

    /// Highest offered rate of any phase, per second (0 for a closed loop).
    pub fn peak_rate_per_s(&self) -> f64 {
        self.phases()
            .iter()
            .map(|p| match p.rate {
                Rate::Constant(r) => r,
                Rate::Ramp { from, to } => from.max(to),
            })
            .fold(0.0, f64::max)
    }

    /// The closed loop's connections, `None` for an open loop.
    pub fn closed_loop(&self) -> Option<usize> {
        match self {
            Load::Open(_) => None,
            Load::Closed { connections, .. } => Some(*connections),
        }
    }
}

/// The `[find_limit]` section, validated: the candidate limits, each
/// step's load and length, what counts as broken, and the hardware classes.
#[derive(Debug, Clone, PartialEq)]
pub struct FindLimitSpec {
    /// Smallest candidate concurrency limit.
    pub min: u32,
    /// Largest candidate concurrency limit.
    pub max: u32,
    /// Where the bracket starts; `None`: at the model's limit (clamped into
    /// min..=max), or at `min` when there is no model.
    pub start: Option<u32>,
    /// Offered load of every step, per second; `None`: twice the mock
    /// upstream's capacity (cores / mean CPU per request).
    pub rate: Option<f64>,
    /// Load offered before each step's measurement (not measured).
    pub warmup: Duration,
    /// Measured length of each step.
    pub duration: Duration,
    /// Share of 504s above which a limit breaks (0.01 is 1%).
    pub max_504_share: f64,
    /// Runs of the answer and of its neighbour above before it stands.
    pub repeats: u32,
    /// Most steps one search may take (bracket, bisect and confirm).
    pub max_steps: u32,
    /// Run a step with no limit first (the collapse the limit prevents).
    pub baseline: bool,
    /// Hardware classes, each searched once; empty: the upstream as configured.
    pub hardware: Vec<HardwareClass>,
}

impl Default for FindLimitSpec {
    fn default() -> Self {
        FindLimitSpec {
            min: 1,
            max: 64,
            start: None,
            rate: None,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(3),
            max_504_share: 0.01,
            repeats: 2,
            max_steps: 24,
            baseline: true,
            hardware: Vec::new(),
        }
    }
}

/// The `[sweep]` section, validated: open-loop rate steps, closed-loop
/// concurrency steps, when to stop early, and the SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// Offered rates of the open-loop steps, per second, in order.
    pub rates: Vec<f64>,
    /// Concurrency of the closed-loop steps, in order.
    pub concurrency: Vec<u32>,
    /// Load offered before each step's measurement starts (not measured).
    pub warmup: Duration,
    /// Measured length of each step.
    pub duration: Duration,
    /// Spacing of arrivals in the open-loop steps.
    pub arrival: ArrivalKind,
    /// Latency bound of `max_rate_within_slo`; none: not computed.
    pub slo: Option<Duration>,
    /// Percentile the SLO bounds, in (0, 100): 99 is P99.
    pub slo_percentile: f64,
    /// Stop the open-loop steps after a step past saturation.
    pub stop_early: bool,
    /// Share of arrivals without a 2xx above which a step is past saturation.
    pub stop_error_share: f64,
    /// P99 above which a step is past saturation; none: only the error share.
    pub stop_p99: Option<Duration>,
    /// Kneedle sensitivity S (1 is the paper's default).
    pub sensitivity: f64,
    /// `keep_alive_baseline = true` (with `[client] reuse = false`): each
    /// rate step first runs on reused connections, and its latency and
    /// gateway CPU per request stand beside the step's in its row.
    pub keep_alive_baseline: bool,
}

impl Default for SweepSpec {
    fn default() -> Self {
        SweepSpec {
            rates: Vec::new(),
            concurrency: Vec::new(),
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(5),
            arrival: ArrivalKind::Constant,
            slo: None,
            slo_percentile: 99.0,
            stop_early: true,
            stop_error_share: 0.5,
            stop_p99: None,
            sensitivity: 1.0,
            keep_alive_baseline: false,
        }
    }
}

/// One gateway configuration the abort audit runs the scenario through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditMode {
    /// The reference gateway, `abort_accounting = "early"`.
    ReferenceEarly,
    /// The reference gateway, `abort_accounting = "complete"`.
    ReferenceComplete,
    /// nginx, `proxy_ignore_client_abort off`.
    NginxOff,
    /// nginx, `proxy_ignore_client_abort on`.
    NginxOn,
    /// HAProxy, `option abortonclose` (the default from HAProxy 3.3).
    HaproxyEarly,
    /// HAProxy without `option abortonclose` (the default up to 3.2).
    HaproxyComplete,
}

impl AuditMode {
    /// Every mode, in the order the audit runs them by default.
    pub const ALL: [AuditMode; 6] = [
        AuditMode::ReferenceEarly,
        AuditMode::ReferenceComplete,
        AuditMode::NginxOff,
        AuditMode::NginxOn,
        AuditMode::HaproxyEarly,
        AuditMode::HaproxyComplete,
    ];

    /// The name used in scenario files and reports (`reference-early`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditMode::ReferenceEarly => "reference-early",
            AuditMode::ReferenceComplete => "reference-complete",
            AuditMode::NginxOff => "nginx-off",
            AuditMode::NginxOn => "nginx-on",
            AuditMode::HaproxyEarly => "haproxy-early",
            AuditMode::HaproxyComplete => "haproxy-complete",
        }
    }

    /// The gateway this mode starts.
    pub fn gateway_kind(self) -> GatewayKind {
        match self {
            AuditMode::ReferenceEarly | AuditMode::ReferenceComplete => GatewayKind::Reference,
            AuditMode::NginxOff | AuditMode::NginxOn => GatewayKind::Nginx,
            AuditMode::HaproxyEarly | AuditMode::HaproxyComplete => GatewayKind::Haproxy,
        }
    }

    /// Its abort accounting (nginx: `off` is early, `on` is complete;
    /// HAProxy: `option abortonclose` is early).
    pub fn abort_accounting(self) -> contend_gateway::AbortAccounting {
        match self {
            AuditMode::ReferenceEarly | AuditMode::NginxOff | AuditMode::HaproxyEarly => {
                contend_gateway::AbortAccounting::Early
            }
            AuditMode::ReferenceComplete | AuditMode::NginxOn | AuditMode::HaproxyComplete => {
                contend_gateway::AbortAccounting::Complete
            }
        }
    }
}

/// The `[abort_audit]` section with the `[[phases]]` each mode runs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AbortAuditSpec {
    /// The load every mode runs: the scenario's phases.
    pub phases: Vec<Phase>,
    /// The modes to run, in order, each once.
    pub modes: Vec<AuditMode>,
    /// After each mode's load: the longest wait for the mock upstream to
    /// finish the work its departed clients left behind, before its
    /// accounting is read (the truth is only whole once it has drained).
    pub settle: Duration,
}

impl Default for AbortAuditSpec {
    fn default() -> Self {
        AbortAuditSpec {
            phases: Vec::new(),
            modes: AuditMode::ALL.to_vec(),
            settle: Duration::from_secs(30),
        }
    }
}

/// Which experiment a scenario names (`experiment = "..."`); the
/// validated scenario's [`Experiment`] carries its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExperimentKind {
    /// The phases in order, one result.
    #[default]
    Run,
    /// Offered load (or concurrency) in steps; knee, USL fit, max rate within an SLO.
    Sweep,
    /// The largest gateway concurrency limit that keeps responses inside the gateway timeout.
    FindLimit,
    /// Gateway-accounted time per key against the upstream's ground truth.
    AbortAudit,
    /// What a rate-limit design delivers: accuracy, the check's cost, a store fault.
    Quota,
}

impl ExperimentKind {
    /// The name in scenario files (`find-limit`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentKind::Run => "run",
            ExperimentKind::Sweep => "sweep",
            ExperimentKind::FindLimit => "find-limit",
            ExperimentKind::AbortAudit => "abort-audit",
            ExperimentKind::Quota => "quota",
        }
    }
}

/// Which gateway stands between the driver and the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GatewayKind {
    /// None: the driver sends to the target directly.
    #[default]
    None,
    /// The reference gateway, `contend gateway`, started by the harness.
    Reference,
    /// nginx from the PATH, started by the harness from a template.
    Nginx,
    /// HAProxy from the PATH, started by the harness from a template.
    Haproxy,
    /// A gateway already running at `url`, in front of its own upstream.
    External,
}

impl GatewayKind {
    /// The name in scenario files and reports (`haproxy`).
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::None => "none",
            GatewayKind::Reference => "reference",
            GatewayKind::Nginx => "nginx",
            GatewayKind::Haproxy => "haproxy",
            GatewayKind::External => "external",
        }
    }
}

/// The `[gateway]` section, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GatewaySpec {
    /// Which gateway.
    pub kind: GatewayKind,
    /// `kind = "external"`: where it listens (`http://host:port`).
    pub url: Option<String>,
    /// Client-abort behaviour (nginx: `proxy_ignore_client_abort` off/on;
    /// HAProxy: `option abortonclose` or not).
    pub abort_accounting: contend_gateway::AbortAccounting,
    /// Reference only: what an early abort charges instead of its time.
    pub abort_charge: Option<Duration>,
    /// The policies on `/`.
    pub policies: contend_gateway::Policies,
    /// CPUs for the gateway: nginx `worker_cpu_affinity`; HAProxy a thread
    /// per CPU (`nbthread`, `cpu-map`); the reference gateway sizes its
    /// runtime to their number.
    pub cpus: Option<String>,
    /// nginx and HAProxy: a template to render instead of the embedded one.
    pub template: Option<PathBuf>,
    /// `tls = true`: the gateway listens with TLS, on a certificate the
    /// harness makes for the run (and the driver trusts).
    pub tls: bool,
    /// `http2 = true`: the gateway speaks HTTP/2 too (ALPN `h2` over TLS,
    /// prior knowledge in cleartext), beside HTTP/1.1.
    pub http2: bool,
    /// `replicas = N`: N reference gateways side by side, sharing the
    /// store; the driver spreads its connections over them (1 by default,
    /// 0 only in the default spec, where no gateway runs).
    pub replicas: usize,
    /// `[store]`: where the reference gateway keeps its rate limits.
    pub store: Option<StoreSpec>,
}

/// One phase of offered load.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Offered rate in arrivals per second: constant or a linear ramp.
    pub rate: Rate,
    /// How long the phase offers load.
    pub duration: Duration,
    /// Spacing of arrivals.
    pub arrival: ArrivalKind,
}

/// Offered rate of a phase, in arrivals per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// The same rate for the whole phase.
    Constant(f64),
    /// A linear ramp from `from` at the phase start to `to` at its end.
    Ramp {
        /// Rate at the start of the phase, per second.
        from: f64,
        /// Rate at the end of the phase, per second.
        to: f64,
    },
}

/// How arrivals are spaced within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalKind {
    /// Evenly spaced at the (instantaneous) rate.
    Constant,
    /// A Poisson process at the (instantaneous) rate.
    Poisson,
}

/// What the driver sends to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Any HTTP/1.1 server, given by URL (`http://host:port`, no path).
    Url(String),
    /// `[target] urls`: the first address and the rest (the driver spreads over all).
    Urls(String, Vec<String>),
    /// The embedded mock upstream, started by the harness as a child process.
    Mock(MockUpstreamSpec),
}

/// The embedded mock upstream's settings (`[upstream]`), as its flags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MockUpstreamSpec {
    /// `--workers`: `None` is `unbounded`, `Some(n)` a pool of n workers.
    pub workers: Option<u32>,
    /// `--backlog`: connections that may wait for a worker.
    pub backlog: Option<u32>,
    /// `--on-disconnect`: `"run"` or `"cancel"`.
    pub on_disconnect: Option<String>,
    /// `--cpu-ms`: CPU time per request unless the query says otherwise.
    pub cpu_ms: Option<f64>,
    /// `--cpu-dist`: `"constant"`, `"exponential"` or `"lognormal"`.
    pub cpu_dist: Option<String>,
    /// `--cpu-sigma`: sigma of the lognormal distribution.
    pub cpu_sigma: Option<f64>,
    /// `--sleep-ms`: off-CPU wait per request.
    pub sleep_ms: Option<f64>,
    /// `--bytes`: response body size.
    pub bytes: Option<u64>,
    /// `--status`: response status.
    pub status: Option<u16>,
    /// `--cpus`: CPU list to pin worker threads to, e.g. `"0"` or `"0,1"`.
    pub cpus: Option<String>,
    /// `--seed`: seed of the CPU-time distribution.
    pub seed: Option<u64>,
}

/// The request sent by every arrival.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    /// HTTP method, upper case (default `GET`).
    pub method: String,
    /// Path and query (default `/`).
    pub path: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body (default empty).
    pub body: String,
}

/// One API key of the weighted mix; sent as `x-api-key: <name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpec {
    /// The key's name, sent as the header value and used in reports.
    pub name: String,
    /// Relative weight (> 0) in the mix.
    pub weight: f64,
    /// Path for this key's requests instead of the request's.
    pub path: Option<String>,
    /// Headers added to (or replacing) the request's headers.
    pub headers: Vec<(String, String)>,
    /// Client timeout for this key's requests instead of the client's.
    pub timeout: Option<Duration>,
    /// Retry policy for this key's requests instead of the client's.
    pub retry: Option<RetrySpec>,
}

/// Where a scenario came from, for error messages.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// Built from command-line flags only.
    Flags,
}

// ---------------------------------------------------------------------------
// Limits. Each is far past any honest use and exists to catch typos (an
// extra three zeros, a unit slip) before a run starts, not after it hangs.
// ---------------------------------------------------------------------------

/// Highest offered rate, per second: far beyond what one machine generates.
pub const MAX_RATE_PER_S: f64 = 10_000_000.0;
/// Longest phase (and longest timeout).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Highest `max_connections`.
pub const MAX_CONNECTIONS: i64 = 1_000_000;
/// Highest number of driver threads.
pub const MAX_THREADS: i64 = 256;
/// Shortest and longest reporting interval.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(3600));
/// Phase duration when `--rate` makes the only phase and nothing gives one.
pub const DEFAULT_PHASE_DURATION: Duration = Duration::from_secs(10);
/// Largest scenario file read: a scenario is a page of text, not a data set.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Where errors about flags point.
const COMMAND_LINE: &str = "command line";

// ---------------------------------------------------------------------------
// Entry points.
// ---------------------------------------------------------------------------

/// Reads and validates the scenario file at `path`, with `overrides` (the
/// command-line flags) applied over it.
///
/// Every problem is an [`Error::Scenario`]: a missing path, a directory, a
/// device or socket (a regular file or a pipe is read), more than 16 MiB
/// (the bytes read are capped, whatever size the file reports), a
/// file that is not UTF-8 text (located at the first bad byte), TOML syntax,
/// unknown fields, wrong types and values out of range (located at
/// `path:line:col`).
pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario> {
    let whole = |message: String| Error::Scenario {
        location: path.display().to_string(),
        message,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(whole(
                "no such file: check the path (scenario files are .toml files, e.g. scenarios/quickstart.toml)"
                    .to_string(),
            ));
        }
        Err(e) => return Err(whole(format!("cannot read the scenario file: {e}"))),
    };
    if metadata.is_dir() {
        return Err(whole(
            "is a directory, not a scenario file: give the path of a .toml file".to_string(),
        ));
    }
    if let Some(kind) = not_readable_as_text(&metadata.file_type()) {
        return Err(whole(format!(
            "is {kind}, not a scenario file: give the path of a .toml file"
        )));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(whole(format!(
            "is {} bytes, too large for a scenario file (at most {MAX_FILE_BYTES}): is this the right file?",
            metadata.len()
        )));
    }
    // The bytes read are capped too: a pipe reports no size, and what it
    // (or a file that grows) holds is only known by reading it.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| whole(format!("cannot read the scenario file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(whole(format!(
            "holds more than {MAX_FILE_BYTES} bytes, too large for a scenario file: is this the right file?"
        )));
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bad_byte = e.as_bytes().get(good).copied().unwrap_or(0);
            // The prefix before the bad byte is valid UTF-8, so this is the exact position.
            let prefix = std::str::from_utf8(&e.as_bytes()[..good]).unwrap_or("");
            return Err(Error::Scenario {
                location: location(path, prefix, Some(prefix.len()..prefix.len())),
                message: format!(
                    "byte 0x{bad_byte:02x} is not UTF-8: scenario files must be UTF-8 text (re-save the file as UTF-8)"
                ),
            });
        }
    };
    parse(&text, &Source::File(path.to_path_buf()), overrides)
}

/// What a file of this type is, when it is not one a scenario can be read
/// from: a regular file and a pipe (`<(cat f.toml)`) can; a device, a
/// socket cannot (reading `/dev/zero` would never end).
fn not_readable_as_text(file_type: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_file() || file_type.is_fifo() {
        None
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Parses and validates a scenario from TOML `text`, applying `overrides`.
/// `source` is named in error locations (and gives the default name: the
/// file stem).
pub fn parse(text: &str, source: &Source, overrides: &Overrides) -> Result<Scenario> {
    let ctx = Ctx { text, source };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let message = raw::toml_error_message(&e, text);
        match e.span() {
            Some(span) => ctx.at(span, message),
            None => ctx.whole(message),
        }
    })?;
    build(&ctx, raw, overrides)
}

/// Builds a scenario from flags alone (no file): `--target` and `--rate`
/// are required, `--duration` defaults to 10s, the rest to their defaults.
pub fn from_overrides(overrides: &Overrides) -> Result<Scenario> {
    if overrides.target.is_none() {
        return Err(cli(
            "no scenario file and no --target: give --target http://HOST:PORT/PATH (e.g. --target http://127.0.0.1:8080/) \
             or a scenario file (e.g. contend run scenarios/quickstart.toml)",
        ));
    }
    if overrides.rate.is_none() && overrides.connections.is_none() {
        return Err(cli(
            "no scenario file and no --rate: give --rate (e.g. --rate 20k), --connections N (closed loop) or a scenario file",
        ));
    }
    parse("", &Source::Flags, overrides)
}

#[cfg(test)]
mod tests;
