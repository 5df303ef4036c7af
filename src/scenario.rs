//! Scenario files: the TOML schema, its defaults and its validation.
//!
//! Takes a TOML text (from a file or built from CLI flags) and hands on a
//! validated [`Scenario`]: every value in range, every duration and rate in
//! plain units. Errors carry file:line:col and say what would be valid. This
//! module does no I/O beyond reading the file and knows nothing of sockets.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use contend_units::de::{Int, Num, ScenarioWords};
use contend_units::format_duration;
use contend_units::located::{line_col, location};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use crate::error::{Error, Result};

/// A validated scenario: what to drive, how hard, for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name used for the report folder (`reports/<name>-<stamp>/`).
    pub name: String,
    /// The phases of offered load, run in order.
    pub phases: Vec<Phase>,
    /// What the driver sends to.
    pub target: Target,
    /// The request every arrival sends (keys may override path and headers).
    pub request: RequestSpec,
    /// A weighted mix of API keys; empty means no `x-api-key` header.
    pub keys: Vec<KeySpec>,
    /// Client behaviour: timeout, connection cap, threads, seed.
    pub client: ClientSpec,
    /// The gateway under test in front of the target (`[gateway]`); none by default.
    pub gateway: GatewaySpec,
    /// `[thresholds] checks`: evaluated over the summary at the end of the run.
    pub thresholds: Vec<crate::threshold::Threshold>,
    /// `experiment`: what the run composes its load steps into.
    pub experiment: ExperimentKind,
    /// `[abort_audit]`: the modes and settling time of `experiment = "abort-audit"`.
    pub abort_audit: AbortAuditSpec,
    /// `[sweep]`: the steps of `experiment = "sweep"` (defaults when absent).
    pub sweep: SweepSpec,
    /// `[find_limit]`: the search of `experiment = "find-limit"` (defaults when absent).
    pub find_limit: FindLimitSpec,
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

/// One hardware class of a find-limit: where the mock upstream runs.
#[derive(Debug, Clone, PartialEq)]
pub enum HardwareClass {
    /// Worker threads pinned to these CPUs (`"1"`, `"0,1"`, `"0-3"`).
    Cpus(String),
    /// A CPU quota in cores (cgroup `cpu.max`), e.g. 0.5.
    CpuQuota(f64),
}

impl HardwareClass {
    /// The class's name in reports: `cpus=0,1` or `quota=0.5`.
    pub fn name(&self) -> String {
        match self {
            HardwareClass::Cpus(c) => format!("cpus={c}"),
            HardwareClass::CpuQuota(q) => format!("quota={q}"),
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
}

impl AuditMode {
    /// Every mode, in the order the audit runs them by default.
    pub const ALL: [AuditMode; 4] = [
        AuditMode::ReferenceEarly,
        AuditMode::ReferenceComplete,
        AuditMode::NginxOff,
        AuditMode::NginxOn,
    ];

    /// The name used in scenario files and reports (`reference-early`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditMode::ReferenceEarly => "reference-early",
            AuditMode::ReferenceComplete => "reference-complete",
            AuditMode::NginxOff => "nginx-off",
            AuditMode::NginxOn => "nginx-on",
        }
    }

    /// The gateway this mode starts.
    pub fn gateway_kind(self) -> GatewayKind {
        match self {
            AuditMode::ReferenceEarly | AuditMode::ReferenceComplete => GatewayKind::Reference,
            AuditMode::NginxOff | AuditMode::NginxOn => GatewayKind::Nginx,
        }
    }

    /// Its abort accounting (nginx: `off` is early, `on` is complete).
    pub fn abort_accounting(self) -> contend_gateway::AbortAccounting {
        match self {
            AuditMode::ReferenceEarly | AuditMode::NginxOff => {
                contend_gateway::AbortAccounting::Early
            }
            AuditMode::ReferenceComplete | AuditMode::NginxOn => {
                contend_gateway::AbortAccounting::Complete
            }
        }
    }
}

/// The `[abort_audit]` section, validated (defaults when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct AbortAuditSpec {
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
            modes: AuditMode::ALL.to_vec(),
            settle: Duration::from_secs(30),
        }
    }
}

/// What a scenario's load steps are composed into (`experiment = "..."`).
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
    /// A gateway already running at `url`, in front of its own upstream.
    External,
}

/// The `[gateway]` section, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GatewaySpec {
    /// Which gateway.
    pub kind: GatewayKind,
    /// `kind = "external"`: where it listens (`http://host:port`).
    pub url: Option<String>,
    /// Client-abort behaviour (nginx: `proxy_ignore_client_abort` off/on).
    pub abort_accounting: contend_gateway::AbortAccounting,
    /// Reference only: what an early abort charges instead of its time.
    pub abort_charge: Option<Duration>,
    /// The policies on `/`.
    pub policies: contend_gateway::Policies,
    /// CPUs for the gateway: nginx `worker_cpu_affinity`; the reference
    /// gateway sizes its runtime to their number.
    pub cpus: Option<String>,
    /// nginx: a template to render instead of the embedded one.
    pub template: Option<PathBuf>,
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
    /// The embedded mock upstream, started by the harness as a child process.
    Mock(MockUpstreamSpec),
}

/// Settings of the embedded mock upstream (`[upstream]`, `kind = "mock"`),
/// handed to it as command-line flags.
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
}

/// Client behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpec {
    /// Deadline of a request, counted from its intended send time.
    pub timeout: Duration,
    /// Cap of open connections across all driver threads.
    pub max_connections: usize,
    /// Driver threads; `None` means the cores this process may use.
    pub threads: Option<usize>,
    /// Seed of every random choice (Poisson gaps, key mix).
    pub seed: u64,
    /// Length of one reporting interval.
    pub interval: Duration,
    /// Schedule lag p99 above which the run is marked generator-bound.
    pub lag_bound: Duration,
    /// `request_ids`: give every request a unique `x-request-id` and keep a
    /// bounded per-request record, so the client, the gateway's log and the
    /// upstream can be joined per request. Off by default (the hot path is
    /// then untouched); on by default for `experiment = "abort-audit"`.
    pub request_ids: bool,
    /// `--connections N`: closed loop instead of the phases' schedule. N
    /// connections each send the next request as soon as the last one
    /// ended, for the phases' total duration (wrk's and oha's `-c`). Its
    /// latency is service time: it hides queueing (coordinated omission).
    pub closed_loop: Option<usize>,
}

impl Default for ClientSpec {
    fn default() -> Self {
        ClientSpec {
            timeout: Duration::from_secs(10),
            max_connections: 10_000,
            threads: None,
            seed: 1,
            interval: Duration::from_secs(1),
            lag_bound: Duration::from_millis(1),
            request_ids: false,
            closed_loop: None,
        }
    }
}

/// Overrides from the command line, applied over a file (or over defaults
/// when there is no file). `None` leaves the value alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--target URL`: becomes `Target::Url` with the URL's path as the request path.
    pub target: Option<String>,
    /// `--rate`: replaces every phase's rate (one phase is made when there is none).
    pub rate: Option<Rate>,
    /// `--duration`: replaces every phase's duration.
    pub duration: Option<Duration>,
    /// `--arrival`.
    pub arrival: Option<ArrivalKind>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--connections`: closed loop with this many connections; the
    /// phases keep their durations, their rates are not used.
    pub connections: Option<usize>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--name`.
    pub name: Option<String>,
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
    if metadata.len() > MAX_FILE_BYTES {
        return Err(whole(format!(
            "is {} bytes, too large for a scenario file (at most {MAX_FILE_BYTES}): is this the right file?",
            metadata.len()
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| whole(format!("cannot read the scenario file: {e}")))?;
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

/// Parses and validates a scenario from TOML `text`, applying `overrides`.
/// `source` is named in error locations (and gives the default name: the
/// file stem).
pub fn parse(text: &str, source: &Source, overrides: &Overrides) -> Result<Scenario> {
    let ctx = Ctx { text, source };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
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

// ---------------------------------------------------------------------------
// Locations.
// ---------------------------------------------------------------------------

/// The text being parsed and where it came from, to turn spans into locations.
struct Ctx<'a> {
    text: &'a str,
    source: &'a Source,
}

impl Ctx<'_> {
    /// An error at a byte span of the text: `path:line:col`.
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        let location = match self.source {
            Source::File(path) => location(path, self.text, Some(span)),
            Source::Flags => COMMAND_LINE.to_string(),
        };
        Error::Scenario {
            location,
            message: message.into(),
        }
    }

    /// An error about the file as a whole (no position applies).
    fn whole(&self, message: impl Into<String>) -> Error {
        let location = match self.source {
            Source::File(path) => path.display().to_string(),
            Source::Flags => COMMAND_LINE.to_string(),
        };
        Error::Scenario {
            location,
            message: message.into(),
        }
    }

    /// Checks a spanned value with `check`, locating its message at the value.
    fn check<T>(
        &self,
        value: &Spanned<T>,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<()> {
        check(value.get_ref()).map_err(|m| self.at(value.span(), m))
    }
}

/// An error about a command-line flag.
fn cli(message: impl Into<String>) -> Error {
    Error::Scenario {
        location: COMMAND_LINE.to_string(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------
// The file as written: serde structs with every field optional, so that a
// missing value gets our message (with the fix) rather than serde's.
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<Spanned<String>>,
    phases: Option<Spanned<Vec<Spanned<RawPhase>>>>,
    target: Option<Spanned<RawTarget>>,
    upstream: Option<Spanned<RawUpstream>>,
    request: Option<RawRequest>,
    keys: Option<Vec<Spanned<RawKey>>>,
    client: Option<RawClient>,
    gateway: Option<Spanned<RawGateway>>,
    thresholds: Option<RawThresholds>,
    experiment: Option<ExperimentKind>,
    abort_audit: Option<Spanned<RawAbortAudit>>,
    sweep: Option<Spanned<RawSweep>>,
    find_limit: Option<Spanned<RawFindLimit>>,
}

/// `[find_limit]`: candidates, step timing, the 504 bound, repeats, hardware.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFindLimit {
    min: Option<Spanned<Int>>,
    max: Option<Spanned<Int>>,
    start: Option<Spanned<Int>>,
    rate: Option<Spanned<HumanRate>>,
    warmup: Option<Spanned<HumanDuration>>,
    duration: Option<Spanned<HumanDuration>>,
    max_504_share: Option<Spanned<Num>>,
    repeats: Option<Spanned<Int>>,
    max_steps: Option<Spanned<Int>>,
    baseline: Option<bool>,
    hardware: Option<Vec<Spanned<RawHardware>>>,
}

/// One `hardware = [...]` entry: `{ cpus = "0,1" }` (or `[0, 1]`) or `{ cpu_quota = 0.5 }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHardware {
    cpus: Option<RawCpuList>,
    cpu_quota: Option<Num>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RawCpuList {
    Text(String),
    List(Vec<u32>),
}

/// `[sweep]`: rates (a list, or from/to/steps/spacing), concurrency, timing,
/// stop-early bounds and the SLO.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    rates: Option<Spanned<Vec<Spanned<HumanRate>>>>,
    from: Option<Spanned<HumanRate>>,
    to: Option<Spanned<HumanRate>>,
    steps: Option<Spanned<Int>>,
    spacing: Option<Spanned<RawSpacing>>,
    concurrency: Option<Spanned<Vec<Spanned<Int>>>>,
    warmup: Option<Spanned<HumanDuration>>,
    duration: Option<Spanned<HumanDuration>>,
    arrival: Option<RawArrival>,
    slo: Option<Spanned<HumanDuration>>,
    slo_percentile: Option<Spanned<Num>>,
    stop_early: Option<bool>,
    stop_error_share: Option<Spanned<Num>>,
    stop_p99: Option<Spanned<HumanDuration>>,
    sensitivity: Option<Spanned<Num>>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawSpacing {
    Linear,
    Geometric,
}

/// `[abort_audit]`: `modes = ["reference-early", ...]`, `settle = "30s"`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbortAudit {
    modes: Option<Spanned<Vec<Spanned<AuditMode>>>>,
    settle: Option<Spanned<HumanDuration>>,
}

/// `[thresholds]`: `checks = ["p99 < 250ms", "error_rate < 1%"]`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    checks: Option<Vec<Spanned<String>>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    kind: Option<Spanned<RawGatewayKind>>,
    url: Option<Spanned<String>>,
    abort_accounting: Option<contend_gateway::AbortAccounting>,
    abort_charge: Option<Spanned<contend_gateway::config::Dur>>,
    upstream_timeout: Option<Spanned<contend_gateway::config::Dur>>,
    rate_limit: Option<Spanned<contend_gateway::config::RawRateLimit>>,
    budget: Option<Spanned<contend_gateway::config::RawBudget>>,
    concurrency: Option<Spanned<contend_gateway::config::RawConcurrency>>,
    breaker: Option<Spanned<contend_gateway::config::RawBreaker>>,
    cpus: Option<Spanned<String>>,
    template: Option<PathBuf>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawGatewayKind {
    Reference,
    Nginx,
    External,
    None,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    rate: Option<Spanned<RawRate>>,
    duration: Option<Spanned<HumanDuration>>,
    arrival: Option<RawArrival>,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawArrival {
    Constant,
    Poisson,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    url: Option<Spanned<String>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    kind: Option<Spanned<UpstreamKind>>,
    url: Option<Spanned<String>>,
    workers: Option<Spanned<Workers>>,
    backlog: Option<Spanned<Int>>,
    on_disconnect: Option<OnDisconnect>,
    cpu: Option<Spanned<HumanDuration>>,
    cpu_dist: Option<CpuDist>,
    cpu_sigma: Option<Spanned<Num>>,
    sleep: Option<Spanned<HumanDuration>>,
    bytes: Option<Spanned<Int>>,
    status: Option<Spanned<Int>>,
    cpus: Option<Spanned<String>>,
    seed: Option<Spanned<Int>>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum UpstreamKind {
    Mock,
    External,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum OnDisconnect {
    Run,
    Cancel,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum CpuDist {
    Constant,
    Exponential,
    Lognormal,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    headers: Option<Headers>,
    body: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: Option<Spanned<String>>,
    weight: Option<Spanned<Num>>,
    path: Option<Spanned<String>>,
    headers: Option<Headers>,
    timeout: Option<Spanned<HumanDuration>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    timeout: Option<Spanned<HumanDuration>>,
    max_connections: Option<Spanned<Int>>,
    threads: Option<Spanned<Int>>,
    seed: Option<Spanned<Int>>,
    interval: Option<Spanned<HumanDuration>>,
    lag_bound: Option<Spanned<HumanDuration>>,
    request_ids: Option<Spanned<bool>>,
}

// ---------------------------------------------------------------------------
// Values in human units. Their visitors' messages say what was expected;
// toml attaches the value's position to them.
// ---------------------------------------------------------------------------

/// A duration written with a unit (`"250ms"`), in the scenario's words.
type HumanDuration = contend_units::de::HumanDuration<ScenarioWords>;

/// A rate per second (`20000`, `"20k"`), in the scenario's words.
type HumanRate = contend_units::de::HumanRate<ScenarioWords>;

/// A phase's rate as written: one rate, or a ramp table `{ from, to }` whose
/// ends may be missing (the validation says which).
type RawRate = contend_units::de::RateOrRamp<ScenarioWords>;

/// `workers = "unbounded"` or a count.
enum Workers {
    Unbounded,
    Count(i64),
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Workers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"unbounded\" or a number of workers (1 or more)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Workers, E> {
                if s == "unbounded" {
                    Ok(Workers::Unbounded)
                } else {
                    Err(E::custom(format!(
                        "workers = \"{s}\" is not valid: expected \"unbounded\" or a number of workers (1 or more)"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Workers, E> {
                Ok(Workers::Count(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Workers, E> {
                Ok(Workers::Count(i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A header table `{ "name" = "value" }`, kept in the order written.
struct Headers(Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of header names to string values, like { \"x-a\" = \"b\" }")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Headers, A::Error> {
                let mut pairs: Vec<(Spanned<String>, Spanned<String>)> = Vec::new();
                while let Some(name) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Spanned<String>>()?;
                    pairs.push((name, value));
                }
                // toml hands tables over sorted by key; the spans give back the order written.
                pairs.sort_by_key(|(name, _)| name.span().start);
                Ok(Headers(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------------------
// Range checks. Each takes the label of the value (`rate`, `--rate`) so the
// same rule words its message for a file and for a flag.
// ---------------------------------------------------------------------------

fn check_rate(what: &str, rate_per_s: f64) -> Result<(), String> {
    if !rate_per_s.is_finite() || rate_per_s <= 0.0 {
        return Err(format!(
            "{what} must be more than 0 arrivals per second (e.g. \"20k\"), got {rate_per_s}"
        ));
    }
    check_rate_cap(what, rate_per_s)
}

fn check_ramp_end(what: &str, rate_per_s: f64) -> Result<(), String> {
    if !rate_per_s.is_finite() || rate_per_s < 0.0 {
        return Err(format!(
            "{what} must be 0 or more arrivals per second, got {rate_per_s}"
        ));
    }
    check_rate_cap(what, rate_per_s)
}

fn check_rate_cap(what: &str, rate_per_s: f64) -> Result<(), String> {
    if rate_per_s > MAX_RATE_PER_S {
        return Err(format!(
            "{what} of {rate_per_s} per second is more than contend can offer: at most {MAX_RATE_PER_S} (\"10000k\")"
        ));
    }
    Ok(())
}

fn check_ramp(what: &str, from: f64, to: f64) -> Result<(), String> {
    if from == 0.0 && to == 0.0 {
        return Err(format!(
            "{what} ramps from 0 to 0: at least one end must be more than 0"
        ));
    }
    Ok(())
}

/// Checks a whole rate (the form `--rate` gives).
fn check_rate_value(what: &str, rate: Rate) -> Result<(), String> {
    match rate {
        Rate::Constant(r) => check_rate(what, r),
        Rate::Ramp { from, to } => {
            check_ramp_end(&format!("{what} from"), from)?;
            check_ramp_end(&format!("{what} to"), to)?;
            check_ramp(what, from, to)
        }
    }
}

/// Durations that must be more than zero and at most `max`.
/// A load step's warm-up (0 allowed) and measured duration (more than 0),
/// checked alike in every section that has steps; `defaults` stand where
/// the file is silent.
fn build_step_timing(
    ctx: &Ctx,
    section: &str,
    warmup: Option<&Spanned<HumanDuration>>,
    duration: Option<&Spanned<HumanDuration>>,
    defaults: (Duration, Duration),
) -> Result<(Duration, Duration)> {
    let (mut warmup_d, mut duration_d) = defaults;
    if let Some(w) = warmup {
        ctx.check(w, |d| {
            if d.0 > MAX_DURATION {
                Err(format!(
                    "[{section}] warmup is longer than {}",
                    format_duration(MAX_DURATION)
                ))
            } else {
                Ok(())
            }
        })?;
        warmup_d = w.get_ref().0;
    }
    if let Some(d) = duration {
        ctx.check(d, |d| {
            check_positive_duration(&format!("[{section}] duration"), d.0, MAX_DURATION)
        })?;
        duration_d = d.get_ref().0;
    }
    Ok((warmup_d, duration_d))
}

fn check_positive_duration(what: &str, d: Duration, max: Duration) -> Result<(), String> {
    if d.is_zero() {
        return Err(format!("{what} must be more than 0 (e.g. \"10s\"), got 0"));
    }
    if d > max {
        return Err(format!(
            "{what} of {} is longer than the limit of {}",
            format_duration(d),
            format_duration(max)
        ));
    }
    Ok(())
}

fn check_interval(what: &str, d: Duration) -> Result<(), String> {
    let (low, high) = INTERVAL_RANGE;
    if d < low || d > high {
        return Err(format!(
            "{what} must be between {} and {}, got {}",
            format_duration(low),
            format_duration(high),
            format_duration(d)
        ));
    }
    Ok(())
}

fn check_int(what: &str, n: i64, low: i64, high: i64) -> Result<(), String> {
    if n < low || n > high {
        return Err(format!("{what} must be between {low} and {high}, got {n}"));
    }
    Ok(())
}

/// `tchar` of RFC 9110: what a method or a header name may hold.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_method(what: &str, method: &str) -> Result<(), String> {
    if !is_token(method) {
        return Err(format!(
            "{what} {method:?} is not a valid HTTP method: use a word of letters like GET, POST or PUT"
        ));
    }
    Ok(())
}

fn check_path(what: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "{what} {path:?} must start with '/', like \"/\" or \"/api?x=1\""
        ));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{what} {path:?} holds {c:?}, which cannot be sent in a request line: percent-encode it (a space is %20)"
        ));
    }
    Ok(())
}

fn check_header_name(what: &str, name: &str) -> Result<(), String> {
    if !is_token(name) {
        return Err(format!(
            "{what} name {name:?} is not a valid HTTP header name: use letters, digits and '-', like \"x-request-id\""
        ));
    }
    Ok(())
}

fn check_header_value(what: &str, value: &str) -> Result<(), String> {
    // HTTP field values may hold visible characters, spaces and tabs: no
    // other control character (a newline would split the request).
    if let Some(c) = value
        .chars()
        .find(|&c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(format!(
            "{what} value {value:?} holds the control character {c:?}, which HTTP does not allow"
        ));
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if name.is_empty() || name.len() > 100 || !ok_chars || name.starts_with('.') {
        return Err(format!(
            "{what} {name:?} is not usable as a report folder name: use 1 to 100 letters, digits, '-', '_' or '.' (not first)"
        ));
    }
    Ok(())
}

fn check_cpus(what: &str, cpus: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{what} {cpus:?} is not a CPU list: expected numbers and ranges like \"0\", \"0,1\" or \"0-3\""
        )
    };
    if cpus.trim().is_empty() {
        return Err(bad());
    }
    for part in cpus.split(',') {
        let mut ends = part.trim().splitn(2, '-');
        let low: u32 = ends
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|_| bad())?;
        if let Some(high) = ends.next() {
            let high: u32 = high.trim().parse().map_err(|_| bad())?;
            if high < low {
                return Err(bad());
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// URLs.
// ---------------------------------------------------------------------------

/// A parsed `http://host:port/path?query`.
#[derive(Debug, PartialEq)]
struct HttpUrl {
    /// `http://host:port`, scheme and host lower case, port always written.
    base: String,
    /// Path and query when the URL had more than `/`.
    path: Option<String>,
}

/// Parses an HTTP URL; `what` labels the messages.
fn parse_http_url(what: &str, url: &str) -> Result<HttpUrl, String> {
    let expected = "expected http://HOST:PORT, like http://127.0.0.1:8080";
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{what} {url:?} is not a URL: {expected}"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{what} {url:?}: https is not supported; contend speaks plain HTTP/1.1, so use an http:// URL \
                 (put a TLS-terminating proxy in front of an https-only target)"
            ));
        }
        _ => {
            return Err(format!(
                "{what} {url:?}: only http:// URLs are supported, {expected}"
            ));
        }
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(format!(
            "{what} {url:?}: user names and passwords in URLs are not supported, {expected}"
        ));
    }
    if tail.contains('#') {
        return Err(format!(
            "{what} {url:?}: a fragment (#...) is never sent to a server; remove it"
        ));
    }
    let (host, port_text) = if let Some(inner) = authority.strip_prefix('[') {
        // An IPv6 literal: [::1]:8080.
        let Some((ip, after)) = inner.split_once(']') else {
            return Err(format!(
                "{what} {url:?}: unclosed '[' in the host, {expected}"
            ));
        };
        if ip.is_empty()
            || !ip
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("{what} {url:?}: {ip:?} is not an IPv6 address"));
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => {
                return Err(format!(
                    "{what} {url:?}: expected ':PORT' after the IPv6 address"
                ));
            }
        };
        (format!("[{}]", ip.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(format!("{what} {url:?} has no host, {expected}"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(format!(
                "{what} {url:?}: {host:?} is not a host name or IPv4 address"
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port: u16 = match port_text {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "{what} {url:?}: port {p:?} is not a number from 1 to 65535"
                ));
            }
        },
    };
    let path = match tail {
        "" | "/" => None,
        t if t.starts_with('?') => Some(format!("/{t}")),
        t => Some(t.to_string()),
    };
    if let Some(p) = &path {
        check_path(&format!("{what} path"), p)?;
    }
    Ok(HttpUrl {
        base: format!("http://{host}:{port}"),
        path,
    })
}

// ---------------------------------------------------------------------------
// From the file as written to a validated Scenario.
// ---------------------------------------------------------------------------

fn build(ctx: &Ctx, raw: RawScenario, overrides: &Overrides) -> Result<Scenario> {
    let name = build_name(ctx, raw.name.as_ref(), overrides)?;
    let experiment = raw.experiment.unwrap_or_default();
    let sweep = build_sweep(ctx, raw.sweep.as_ref(), experiment)?;
    let find_limit = build_find_limit(ctx, raw.find_limit.as_ref(), experiment)?;
    let phases = if experiment == ExperimentKind::FindLimit {
        if let Some(listed) = &raw.phases {
            return Err(ctx.at(
                listed.span(),
                "experiment = \"find-limit\" takes its load from [find_limit] (rate, warmup, duration), not [[phases]]: remove the phases",
            ));
        }
        // What one step offers; the experiment sets the rate once it knows it.
        find_limit_phases(&find_limit, find_limit.rate.unwrap_or(1.0))
    } else if experiment == ExperimentKind::Sweep {
        // A sweep's load is its steps; the phases say what it offers, in order.
        if let Some(listed) = &raw.phases {
            return Err(ctx.at(
                listed.span(),
                "experiment = \"sweep\" takes its load from [sweep] (rates or concurrency), not [[phases]]: remove the phases",
            ));
        }
        sweep_phases(&sweep)
    } else {
        build_phases(ctx, raw.phases.as_ref(), overrides)?
    };
    let mut request = build_request(ctx, raw.request)?;
    let target = build_target(
        ctx,
        raw.target.as_ref(),
        raw.upstream.as_ref(),
        overrides,
        &mut request,
    )?;
    let keys = build_keys(ctx, raw.keys.unwrap_or_default())?;
    let client = build_client(ctx, raw.client, overrides, experiment, &request, &keys)?;
    let gateway = match raw.gateway {
        Some(g) => build_gateway(ctx, g, raw.target.is_some() || raw.upstream.is_some())?,
        None => GatewaySpec::default(),
    };
    let thresholds = build_thresholds(ctx, raw.thresholds)?;
    let abort_audit = build_abort_audit(ctx, raw.abort_audit, experiment)?;
    Ok(Scenario {
        name,
        phases,
        target,
        request,
        keys,
        client,
        gateway,
        thresholds,
        experiment,
        abort_audit,
        sweep,
        find_limit,
    })
}

/// The phases of one find-limit step at `rate_per_s`: its warm-up (when
/// any), then its measured part.
pub fn find_limit_phases(spec: &FindLimitSpec, rate_per_s: f64) -> Vec<Phase> {
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

/// `[find_limit]`: only with `experiment = "find-limit"` (which runs on
/// defaults without it); bounds in range, hardware classes well formed.
fn build_find_limit(
    ctx: &Ctx,
    raw: Option<&Spanned<RawFindLimit>>,
    experiment: ExperimentKind,
) -> Result<FindLimitSpec> {
    let mut spec = FindLimitSpec::default();
    let Some(spanned) = raw else { return Ok(spec) };
    if experiment != ExperimentKind::FindLimit {
        return Err(ctx.at(
            spanned.span(),
            "[find_limit] is read only by experiment = \"find-limit\": add that line, or remove the section",
        ));
    }
    let raw = spanned.get_ref();
    let int = |v: &Option<Spanned<Int>>, what: &str, low: i64, high: i64| -> Result<Option<u32>> {
        match v {
            Some(n) => {
                ctx.check(n, |n| check_int(what, n.0, low, high))?;
                Ok(Some(n.get_ref().0 as u32))
            }
            None => Ok(None),
        }
    };
    spec.min = int(&raw.min, "[find_limit] min", 1, 100_000)?.unwrap_or(spec.min);
    spec.max = int(&raw.max, "[find_limit] max", 1, 100_000)?.unwrap_or(spec.max);
    if spec.min > spec.max {
        let span = raw
            .max
            .as_ref()
            .or(raw.min.as_ref())
            .map_or(spanned.span(), |v| v.span());
        return Err(ctx.at(
            span,
            format!(
                "[find_limit] min ({}) is above max ({}): the candidates are min..=max",
                spec.min, spec.max
            ),
        ));
    }
    spec.start = int(&raw.start, "[find_limit] start", 1, 100_000)?;
    if let Some(start) = &raw.start
        && !(spec.min..=spec.max).contains(&(start.get_ref().0 as u32))
    {
        return Err(ctx.at(
            start.span(),
            format!(
                "[find_limit] start must lie in min..=max ({}..={})",
                spec.min, spec.max
            ),
        ));
    }
    if let Some(r) = &raw.rate {
        ctx.check(r, |r| check_rate("[find_limit] rate", r.0))?;
        spec.rate = Some(r.get_ref().0);
    }
    (spec.warmup, spec.duration) = build_step_timing(
        ctx,
        "find_limit",
        raw.warmup.as_ref(),
        raw.duration.as_ref(),
        (spec.warmup, spec.duration),
    )?;
    if let Some(share) = &raw.max_504_share {
        ctx.check(share, |s| {
            if s.0 >= 0.0 && s.0 < 1.0 { Ok(()) } else { Err(format!("[find_limit] max_504_share is a share of arrivals, at least 0 and below 1 (0.01 is 1%), got {}", s.0)) }
        })?;
        spec.max_504_share = share.get_ref().0;
    }
    spec.repeats = int(&raw.repeats, "[find_limit] repeats", 1, 20)?.unwrap_or(spec.repeats);
    spec.max_steps =
        int(&raw.max_steps, "[find_limit] max_steps", 1, 1000)?.unwrap_or(spec.max_steps);
    if let Some(b) = raw.baseline {
        spec.baseline = b;
    }
    for class in raw.hardware.iter().flatten() {
        let h = class.get_ref();
        spec.hardware.push(match (&h.cpus, &h.cpu_quota) {
            (Some(cpus), None) => {
                let text = match cpus {
                    RawCpuList::Text(t) => t.clone(),
                    RawCpuList::List(l) if !l.is_empty() => l.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
                    RawCpuList::List(_) => return Err(ctx.at(class.span(), "[find_limit] hardware cpus is empty: list at least one CPU, e.g. [0]")),
                };
                check_cpus("[find_limit] hardware cpus", &text).map_err(|m| ctx.at(class.span(), m))?;
                HardwareClass::Cpus(text)
            }
            (None, Some(q)) if q.0.is_finite() && q.0 > 0.0 && q.0 <= 1024.0 => HardwareClass::CpuQuota(q.0),
            (None, Some(q)) => {
                return Err(ctx.at(class.span(), format!("[find_limit] hardware cpu_quota is in cores, more than 0 (0.5 is half a core), got {}", q.0)));
            }
            _ => {
                return Err(ctx.at(class.span(), "[find_limit] a hardware class is { cpus = \"0,1\" } or { cpu_quota = 0.5 }: give exactly one"));
            }
        });
    }
    Ok(spec)
}

/// The phases a sweep offers: per open-loop step, its warm-up and its
/// measured part at the step's rate. Closed-loop steps offer no rate.
pub fn sweep_phases(sweep: &SweepSpec) -> Vec<Phase> {
    sweep
        .rates
        .iter()
        .flat_map(|&rate| {
            [sweep.warmup, sweep.duration]
                .into_iter()
                .filter(|d| !d.is_zero())
                .map(move |duration| Phase {
                    rate: Rate::Constant(rate),
                    duration,
                    arrival: sweep.arrival,
                })
        })
        .collect()
}

/// `[sweep]`: only with `experiment = "sweep"`, which needs it; rates as a
/// list or as from/to/steps, concurrency, bounds in range.
fn build_sweep(
    ctx: &Ctx,
    raw: Option<&Spanned<RawSweep>>,
    experiment: ExperimentKind,
) -> Result<SweepSpec> {
    let mut spec = SweepSpec::default();
    let Some(spanned) = raw else {
        if experiment == ExperimentKind::Sweep {
            return Err(ctx.whole(
                "experiment = \"sweep\" needs a [sweep] section: add rates = [250, 500, 1000] \
                 (or from = 100, to = 2000, steps = 8) and/or concurrency = [1, 2, 4, 8]",
            ));
        }
        return Ok(spec);
    };
    if experiment != ExperimentKind::Sweep {
        return Err(ctx.at(
            spanned.span(),
            "[sweep] is read only by experiment = \"sweep\": add that line, or remove the section",
        ));
    }
    let raw = spanned.get_ref();
    let range = [&raw.from, &raw.to]
        .into_iter()
        .flatten()
        .next()
        .map(|v| v.span());
    match (&raw.rates, range) {
        (Some(rates), Some(other)) => {
            let _ = rates;
            return Err(ctx.at(
                other,
                "[sweep] gives rates both as a list and as from/to: keep one",
            ));
        }
        (Some(rates), None) => {
            if let Some(extra) = raw
                .steps
                .as_ref()
                .map(|v| v.span())
                .or(raw.spacing.as_ref().map(|v| v.span()))
            {
                return Err(ctx.at(
                    extra,
                    "[sweep] steps and spacing go with from/to, not with a rates list",
                ));
            }
            if rates.get_ref().is_empty() {
                return Err(ctx.at(
                    rates.span(),
                    "[sweep] rates is empty: list at least one rate, e.g. [250, 500, \"1k\"]",
                ));
            }
            for r in rates.get_ref() {
                ctx.check(r, |r| check_rate("[sweep] rate", r.0))?;
                spec.rates.push(r.get_ref().0);
            }
        }
        (None, Some(_)) => {
            let (Some(from), Some(to)) = (&raw.from, &raw.to) else {
                return Err(ctx.at(
                    spanned.span(),
                    "[sweep] needs both from and to (and steps) for a range of rates",
                ));
            };
            ctx.check(from, |r| check_rate("[sweep] from", r.0))?;
            ctx.check(to, |r| check_rate("[sweep] to", r.0))?;
            let Some(steps) = &raw.steps else {
                return Err(ctx.at(
                    spanned.span(),
                    "[sweep] from/to needs steps = N (the number of rates, 2 or more)",
                ));
            };
            ctx.check(steps, |n| check_int("[sweep] steps", n.0, 2, 1000))?;
            let n = steps.get_ref().0 as usize;
            let (a, b) = (from.get_ref().0, to.get_ref().0);
            let geometric = raw
                .spacing
                .as_ref()
                .is_some_and(|s| *s.get_ref() == RawSpacing::Geometric);
            spec.rates = (0..n)
                .map(|i| {
                    let t = i as f64 / (n - 1) as f64;
                    if geometric {
                        a * (b / a).powf(t)
                    } else {
                        a + (b - a) * t
                    }
                })
                .map(|r| (r * 1000.0).round() / 1000.0)
                .collect();
        }
        (None, None) => {
            if let Some(extra) = raw
                .steps
                .as_ref()
                .map(|v| v.span())
                .or(raw.spacing.as_ref().map(|v| v.span()))
            {
                return Err(ctx.at(extra, "[sweep] steps and spacing need from and to"));
            }
        }
    }
    if let Some(list) = &raw.concurrency {
        if list.get_ref().is_empty() {
            return Err(ctx.at(
                list.span(),
                "[sweep] concurrency is empty: list at least one, e.g. [1, 2, 4, 8]",
            ));
        }
        for n in list.get_ref() {
            ctx.check(n, |n| check_int("[sweep] concurrency", n.0, 1, 10_000))?;
            spec.concurrency.push(n.get_ref().0 as u32);
        }
    }
    if spec.rates.is_empty() && spec.concurrency.is_empty() {
        return Err(ctx.at(
            spanned.span(),
            "[sweep] has no steps: add rates = [250, 500, 1000] (or from/to/steps) and/or concurrency = [1, 2, 4, 8]",
        ));
    }
    (spec.warmup, spec.duration) = build_step_timing(
        ctx,
        "sweep",
        raw.warmup.as_ref(),
        raw.duration.as_ref(),
        (spec.warmup, spec.duration),
    )?;
    if let Some(a) = raw.arrival {
        spec.arrival = match a {
            RawArrival::Constant => ArrivalKind::Constant,
            RawArrival::Poisson => ArrivalKind::Poisson,
        };
    }
    if let Some(slo) = &raw.slo {
        ctx.check(slo, |d| {
            check_positive_duration("[sweep] slo", d.0, MAX_DURATION)
        })?;
        spec.slo = Some(slo.get_ref().0);
    }
    if let Some(p) = &raw.slo_percentile {
        ctx.check(p, |p| {
            if p.0 > 0.0 && p.0 < 100.0 {
                Ok(())
            } else {
                Err(format!(
                    "[sweep] slo_percentile must be between 0 and 100 (99 is P99), got {}",
                    p.0
                ))
            }
        })?;
        spec.slo_percentile = p.get_ref().0;
    }
    if let Some(stop) = raw.stop_early {
        spec.stop_early = stop;
    }
    if let Some(share) = &raw.stop_error_share {
        ctx.check(share, |s| {
            if s.0 > 0.0 && s.0 <= 1.0 { Ok(()) } else { Err(format!("[sweep] stop_error_share is a share of arrivals, more than 0 and at most 1 (0.5 is half), got {}", s.0)) }
        })?;
        spec.stop_error_share = share.get_ref().0;
    }
    if let Some(p99) = &raw.stop_p99 {
        ctx.check(p99, |d| {
            check_positive_duration("[sweep] stop_p99", d.0, MAX_DURATION)
        })?;
        spec.stop_p99 = Some(p99.get_ref().0);
    }
    if let Some(s) = &raw.sensitivity {
        ctx.check(s, |s| {
            if s.0.is_finite() && s.0 > 0.0 && s.0 <= 100.0 { Ok(()) } else { Err(format!("[sweep] sensitivity must be more than 0 and at most 100 (1 is the paper's default), got {}", s.0)) }
        })?;
        spec.sensitivity = s.get_ref().0;
    }
    Ok(spec)
}

/// `[abort_audit]`: only with `experiment = "abort-audit"`; modes known,
/// each once, at least one.
fn build_abort_audit(
    ctx: &Ctx,
    raw: Option<Spanned<RawAbortAudit>>,
    experiment: ExperimentKind,
) -> Result<AbortAuditSpec> {
    let mut spec = AbortAuditSpec::default();
    let Some(raw) = raw else { return Ok(spec) };
    if experiment != ExperimentKind::AbortAudit {
        return Err(ctx.at(
            raw.span(),
            "[abort_audit] is read only by experiment = \"abort-audit\": add that line, or remove the section",
        ));
    }
    let raw = raw.into_inner();
    if let Some(modes) = raw.modes {
        if modes.get_ref().is_empty() {
            return Err(ctx.at(
                modes.span(),
                "[abort_audit] modes is empty: list at least one of \"reference-early\", \"reference-complete\", \"nginx-off\", \"nginx-on\"",
            ));
        }
        let mut seen = Vec::new();
        for mode in modes.get_ref() {
            if seen.contains(mode.get_ref()) {
                return Err(ctx.at(
                    mode.span(),
                    format!(
                        "[abort_audit] mode \"{}\" is listed twice: each mode runs once",
                        mode.get_ref().as_str()
                    ),
                ));
            }
            seen.push(*mode.get_ref());
        }
        spec.modes = seen;
    }
    if let Some(settle) = &raw.settle {
        ctx.check(settle, |d| {
            check_positive_duration("[abort_audit] settle", d.0, Duration::from_secs(3600))
        })?;
        spec.settle = settle.get_ref().0;
    }
    Ok(spec)
}

/// Parses `[thresholds] checks`, locating a malformed one at its character
/// (the string's opening quote plus the column within the expression; exact
/// for strings without escapes).
fn build_thresholds(
    ctx: &Ctx,
    raw: Option<RawThresholds>,
) -> Result<Vec<crate::threshold::Threshold>> {
    let checks = raw.and_then(|t| t.checks).unwrap_or_default();
    checks
        .iter()
        .map(|check| {
            crate::threshold::Threshold::parse(check.get_ref()).map_err(|e| {
                let start = check.span().start + 1;
                let (line, col) = line_col(ctx.text, start);
                let location = match ctx.source {
                    Source::File(path) => format!("{}:{line}:{}", path.display(), col + e.col - 1),
                    Source::Flags => COMMAND_LINE.to_string(),
                };
                Error::Scenario {
                    location,
                    message: format!("threshold `{}`: {}", check.get_ref(), e.message),
                }
            })
        })
        .collect()
}

fn build_gateway(ctx: &Ctx, spanned: Spanned<RawGateway>, has_target: bool) -> Result<GatewaySpec> {
    let span = spanned.span();
    let g = spanned.into_inner();
    let kind = match g.kind.as_ref().map(|k| *k.get_ref()) {
        None | Some(RawGatewayKind::Reference) => GatewayKind::Reference,
        Some(RawGatewayKind::Nginx) => GatewayKind::Nginx,
        Some(RawGatewayKind::External) => GatewayKind::External,
        Some(RawGatewayKind::None) => GatewayKind::None,
    };
    let policies = contend_gateway::config::RawPolicies {
        upstream_timeout: g.upstream_timeout,
        rate_limit: g.rate_limit,
        budget: g.budget,
        concurrency: g.concurrency,
        breaker: g.breaker,
    };
    let policies = policies
        .validate("[gateway]")
        .map_err(|(at, m)| ctx.at(at, m))?;
    let mut spec = GatewaySpec {
        kind,
        url: None,
        abort_accounting: g.abort_accounting.unwrap_or_default(),
        abort_charge: None,
        policies,
        cpus: None,
        template: g.template,
    };
    if let Some(c) = &g.abort_charge {
        ctx.check(c, |d| {
            check_positive_duration("[gateway] abort_charge", d.0, MAX_DURATION)
        })?;
        spec.abort_charge = Some(c.get_ref().0);
    }
    if let Some(c) = &g.cpus {
        ctx.check(c, |c| check_cpus("[gateway] cpus", c))?;
        spec.cpus = Some(c.get_ref().clone());
    }
    let name = match kind {
        GatewayKind::Nginx => "nginx",
        GatewayKind::External => "external",
        GatewayKind::None => "none",
        GatewayKind::Reference => "reference",
    };
    match (&g.url, kind) {
        (Some(url), GatewayKind::External) => spec.url = Some(file_url(ctx, "[gateway] url", url)?),
        (None, GatewayKind::External) => {
            return Err(ctx.at(span, "[gateway] kind = \"external\" needs url = \"http://HOST:PORT\" (where the gateway listens)"));
        }
        (Some(url), _) => {
            return Err(ctx.at(
                url.span(),
                format!("[gateway] url is for kind = \"external\"; kind = \"{name}\" is started by contend on its own port"),
            ));
        }
        (None, _) => {}
    }
    if kind == GatewayKind::External && has_target {
        return Err(ctx.at(
            span,
            "[gateway] kind = \"external\" is driven at its url and has its own upstream: remove [target] and [upstream]",
        ));
    }
    let p = &spec.policies;
    if kind == GatewayKind::Nginx {
        let unsupported = [
            (p.budget.is_some(), "budget"),
            (p.breaker.is_some(), "breaker"),
            (
                p.concurrency.is_some_and(|c| c.queue > 0),
                "a concurrency queue",
            ),
            (spec.abort_charge.is_some(), "abort_charge"),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(set, _)| *set) {
            return Err(ctx.at(
                span,
                format!("[gateway] {what} is a reference-gateway policy that nginx has no directive for: remove it, or use kind = \"reference\""),
            ));
        }
    }
    let has_settings = p != &contend_gateway::Policies::default()
        || spec.abort_charge.is_some()
        || g.abort_accounting.is_some()
        || spec.cpus.is_some()
        || spec.template.is_some();
    if matches!(kind, GatewayKind::External | GatewayKind::None) && has_settings {
        return Err(ctx.at(
            span,
            format!("[gateway] kind = \"{name}\" takes no policies or settings: contend does not start or configure it"),
        ));
    }
    if spec.template.is_some() && kind != GatewayKind::Nginx {
        return Err(ctx.at(span, "[gateway] template is for kind = \"nginx\""));
    }
    Ok(spec)
}

fn build_name(ctx: &Ctx, raw: Option<&Spanned<String>>, overrides: &Overrides) -> Result<String> {
    if let Some(name) = &overrides.name {
        check_name("--name", name).map_err(cli)?;
        return Ok(name.clone());
    }
    if let Some(name) = raw {
        ctx.check(name, |n| check_name("name", n))?;
        return Ok(name.get_ref().clone());
    }
    // Default: the file stem, made fit for a folder name.
    let stem = match ctx.source {
        Source::File(path) => path.file_stem().map(|s| s.to_string_lossy().into_owned()),
        Source::Flags => None,
    };
    let cleaned: String = stem
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    Ok(if cleaned.is_empty() {
        "run".to_string()
    } else {
        cleaned.to_string()
    })
}

fn build_phases(
    ctx: &Ctx,
    raw: Option<&Spanned<Vec<Spanned<RawPhase>>>>,
    overrides: &Overrides,
) -> Result<Vec<Phase>> {
    if let Some(rate) = overrides.rate {
        check_rate_value("--rate", rate).map_err(cli)?;
    }
    if let Some(d) = overrides.duration {
        check_positive_duration("--duration", d, MAX_DURATION).map_err(cli)?;
    }
    let listed = raw.map_or(&[][..], |p| p.get_ref().as_slice());
    // Closed loop: no schedule, so no rate (a rate of 0 yields no arrivals).
    let closed_rate = overrides.connections.map(|_| Rate::Constant(0.0));
    if listed.is_empty() {
        let Some(rate) = overrides.rate.or(closed_rate) else {
            let fix = "add at least one [[phases]] table with rate = \"1k\" and duration = \"10s\" (or give --rate)";
            return Err(match raw {
                Some(list) => ctx.at(list.span(), format!("the phase list is empty: {fix}")),
                None => ctx.whole(format!("no [[phases]]: {fix}")),
            });
        };
        return Ok(vec![Phase {
            rate,
            duration: overrides.duration.unwrap_or(DEFAULT_PHASE_DURATION),
            arrival: overrides.arrival.unwrap_or(ArrivalKind::Constant),
        }]);
    }
    let mut phases = Vec::with_capacity(listed.len());
    for (i, spanned) in listed.iter().enumerate() {
        let number = i + 1;
        let phase = spanned.get_ref();
        let rate = match (overrides.rate.or(closed_rate), &phase.rate) {
            (Some(rate), _) => rate,
            (None, Some(rate)) => build_rate(ctx, number, rate)?,
            (None, None) => {
                return Err(ctx.at(
                    spanned.span(),
                    format!("phase {number} has no rate: add rate = \"20k\" (or a ramp, rate = {{ from = \"1k\", to = \"20k\" }})"),
                ));
            }
        };
        let duration = match (overrides.duration, &phase.duration) {
            (Some(d), _) => d,
            (None, Some(d)) => {
                let what = format!("phase {number} duration");
                ctx.check(d, |d| check_positive_duration(&what, d.0, MAX_DURATION))?;
                d.get_ref().0
            }
            (None, None) => {
                return Err(ctx.at(
                    spanned.span(),
                    format!("phase {number} has no duration: add duration = \"10s\""),
                ));
            }
        };
        let arrival = overrides.arrival.unwrap_or(match phase.arrival {
            Some(RawArrival::Poisson) => ArrivalKind::Poisson,
            Some(RawArrival::Constant) | None => ArrivalKind::Constant,
        });
        phases.push(Phase {
            rate,
            duration,
            arrival,
        });
    }
    Ok(phases)
}

fn build_rate(ctx: &Ctx, number: usize, raw: &Spanned<RawRate>) -> Result<Rate> {
    let what = format!("phase {number} rate");
    match raw.get_ref() {
        RawRate::Constant(r) => {
            check_rate(&what, *r).map_err(|m| ctx.at(raw.span(), m))?;
            Ok(Rate::Constant(*r))
        }
        RawRate::Ramp { from, to } => {
            let example = "e.g. rate = { from = \"1k\", to = \"20k\" }";
            let (from, to) = match (from, to) {
                (Some(f), Some(t)) => (f, t),
                (Some(_), None) => {
                    return Err(ctx.at(
                        raw.span(),
                        format!("{what} is a ramp with no `to`: give both ends, {example}"),
                    ));
                }
                (None, Some(_)) => {
                    return Err(ctx.at(
                        raw.span(),
                        format!("{what} is a ramp with no `from`: give both ends, {example}"),
                    ));
                }
                (None, None) => {
                    return Err(ctx.at(
                        raw.span(),
                        format!("{what} is an empty table: give a rate like \"20k\" or a ramp, {example}"),
                    ));
                }
            };
            ctx.check(from, |r| check_ramp_end(&format!("{what} `from`"), r.0))?;
            ctx.check(to, |r| check_ramp_end(&format!("{what} `to`"), r.0))?;
            let (from, to) = (from.get_ref().0, to.get_ref().0);
            check_ramp(&what, from, to).map_err(|m| ctx.at(raw.span(), m))?;
            Ok(Rate::Ramp { from, to })
        }
    }
}

fn build_request(ctx: &Ctx, raw: Option<RawRequest>) -> Result<RequestSpec> {
    let raw = raw.unwrap_or(RawRequest {
        method: None,
        path: None,
        headers: None,
        body: None,
    });
    let method = match &raw.method {
        Some(m) => {
            ctx.check(m, |m| check_method("[request] method", m))?;
            m.get_ref().to_ascii_uppercase()
        }
        None => "GET".to_string(),
    };
    let path = match &raw.path {
        Some(p) => {
            ctx.check(p, |p| check_path("[request] path", p))?;
            p.get_ref().clone()
        }
        None => "/".to_string(),
    };
    let headers = build_headers(ctx, "[request] header", raw.headers)?;
    Ok(RequestSpec {
        method,
        path,
        headers,
        body: raw.body.unwrap_or_default(),
    })
}

fn build_headers(ctx: &Ctx, what: &str, raw: Option<Headers>) -> Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for (name, value) in raw.map(|h| h.0).unwrap_or_default() {
        ctx.check(&name, |n| check_header_name(what, n))?;
        ctx.check(&value, |v| check_header_value(what, v))?;
        headers.push((name.into_inner(), value.into_inner()));
    }
    Ok(headers)
}

fn build_target(
    ctx: &Ctx,
    target: Option<&Spanned<RawTarget>>,
    upstream: Option<&Spanned<RawUpstream>>,
    overrides: &Overrides,
    request: &mut RequestSpec,
) -> Result<Target> {
    if let Some(url) = &overrides.target {
        let parsed = parse_http_url("--target", url).map_err(cli)?;
        if let Some(path) = parsed.path {
            request.path = path;
        }
        return Ok(Target::Url(parsed.base));
    }
    match (target, upstream) {
        (Some(_), Some(up)) => Err(ctx.at(
            up.span(),
            "both [target] and [upstream] are given: choose one ([target] url = \"http://HOST:PORT\" for a running \
             server, or [upstream] for the embedded mock upstream)",
        )),
        (Some(t), None) => match &t.get_ref().url {
            Some(url) => Ok(Target::Url(file_url(ctx, "[target] url", url)?)),
            None => Err(ctx.at(
                t.span(),
                "[target] has no url: give url = \"http://HOST:PORT\", or remove [target] to drive the embedded mock upstream",
            )),
        },
        (None, Some(up)) => build_upstream(ctx, up),
        (None, None) => Ok(Target::Mock(MockUpstreamSpec::default())),
    }
}

/// A URL from the file: valid, and without a path (that belongs in [request]).
fn file_url(ctx: &Ctx, what: &str, url: &Spanned<String>) -> Result<String> {
    let parsed = parse_http_url(what, url.get_ref()).map_err(|m| ctx.at(url.span(), m))?;
    if let Some(path) = parsed.path {
        return Err(ctx.at(
            url.span(),
            format!(
                "{what} {:?} has a path: give only http://HOST:PORT here and put the path in [request] path = {path:?}",
                url.get_ref()
            ),
        ));
    }
    Ok(parsed.base)
}

fn build_upstream(ctx: &Ctx, spanned: &Spanned<RawUpstream>) -> Result<Target> {
    let up = spanned.get_ref();
    let kind = up
        .kind
        .as_ref()
        .map_or(UpstreamKind::Mock, |k| *k.get_ref());
    if kind == UpstreamKind::External {
        let Some(url) = &up.url else {
            return Err(ctx.at(
                spanned.span(),
                "[upstream] kind = \"external\" needs url = \"http://HOST:PORT\"",
            ));
        };
        let mock_only = up.workers.is_some()
            || up.backlog.is_some()
            || up.on_disconnect.is_some()
            || up.cpu.is_some()
            || up.cpu_dist.is_some()
            || up.cpu_sigma.is_some()
            || up.sleep.is_some()
            || up.bytes.is_some()
            || up.status.is_some()
            || up.cpus.is_some()
            || up.seed.is_some();
        if mock_only {
            return Err(ctx.at(
                spanned.span(),
                "[upstream] kind = \"external\" takes only url: workers, backlog, on_disconnect, cpu, cpu_dist, \
                 cpu_sigma, sleep, bytes, status, cpus and seed set up the embedded mock (kind = \"mock\")",
            ));
        }
        return Ok(Target::Url(file_url(ctx, "[upstream] url", url)?));
    }
    if let Some(url) = &up.url {
        return Err(ctx.at(
            url.span(),
            "[upstream] url is for kind = \"external\"; the embedded mock (kind = \"mock\", the default) picks its own port",
        ));
    }
    let mut spec = MockUpstreamSpec::default();
    if let Some(w) = &up.workers {
        spec.workers = match w.get_ref() {
            Workers::Unbounded => None,
            Workers::Count(n) => {
                check_int("[upstream] workers", *n, 1, 100_000).map_err(|m| ctx.at(w.span(), m))?;
                Some(*n as u32)
            }
        };
    }
    if let Some(b) = &up.backlog {
        ctx.check(b, |n| check_int("[upstream] backlog", n.0, 0, 1_000_000))?;
        spec.backlog = Some(b.get_ref().0 as u32);
    }
    spec.on_disconnect = up.on_disconnect.map(|o| match o {
        OnDisconnect::Run => "run".to_string(),
        OnDisconnect::Cancel => "cancel".to_string(),
    });
    if let Some(cpu) = &up.cpu {
        ctx.check(cpu, |d| check_work_duration("[upstream] cpu", d.0))?;
        spec.cpu_ms = Some(cpu.get_ref().0.as_secs_f64() * 1e3);
    }
    spec.cpu_dist = up.cpu_dist.map(|d| {
        match d {
            CpuDist::Constant => "constant",
            CpuDist::Exponential => "exponential",
            CpuDist::Lognormal => "lognormal",
        }
        .to_string()
    });
    if let Some(sigma) = &up.cpu_sigma {
        ctx.check(sigma, |Num(s)| {
            if s.is_finite() && (0.0..=10.0).contains(s) {
                Ok(())
            } else {
                Err(format!(
                    "[upstream] cpu_sigma must be between 0 and 10, got {s}"
                ))
            }
        })?;
        spec.cpu_sigma = Some(sigma.get_ref().0);
    }
    if let Some(sleep) = &up.sleep {
        ctx.check(sleep, |d| check_work_duration("[upstream] sleep", d.0))?;
        spec.sleep_ms = Some(sleep.get_ref().0.as_secs_f64() * 1e3);
    }
    if let Some(b) = &up.bytes {
        ctx.check(b, |n| check_int("[upstream] bytes", n.0, 0, 1 << 30))?;
        spec.bytes = Some(b.get_ref().0 as u64);
    }
    if let Some(s) = &up.status {
        ctx.check(s, |n| check_int("[upstream] status", n.0, 100, 599))?;
        spec.status = Some(s.get_ref().0 as u16);
    }
    if let Some(c) = &up.cpus {
        ctx.check(c, |c| check_cpus("[upstream] cpus", c))?;
        spec.cpus = Some(c.get_ref().clone());
    }
    if let Some(s) = &up.seed {
        ctx.check(s, |n| check_int("[upstream] seed", n.0, 0, i64::MAX))?;
        spec.seed = Some(s.get_ref().0 as u64);
    }
    Ok(Target::Mock(spec))
}

/// Work per request of the mock: zero allowed, at most an hour.
fn check_work_duration(what: &str, d: Duration) -> Result<(), String> {
    let max = Duration::from_secs(3600);
    if d > max {
        return Err(format!(
            "{what} of {} is longer than the limit of {}",
            format_duration(d),
            format_duration(max)
        ));
    }
    Ok(())
}

fn build_keys(ctx: &Ctx, raw: Vec<Spanned<RawKey>>) -> Result<Vec<KeySpec>> {
    let mut keys: Vec<KeySpec> = Vec::with_capacity(raw.len());
    let mut weight_sum = 0.0;
    for (i, spanned) in raw.into_iter().enumerate() {
        let number = i + 1;
        let span = spanned.span();
        let key = spanned.into_inner();
        let Some(name) = key.name else {
            return Err(ctx.at(
                span,
                format!(
                    "key {number} has no name: add name = \"ui\" (sent as the x-api-key header)"
                ),
            ));
        };
        ctx.check(&name, |n| {
            if n.is_empty() {
                return Err(format!("key {number} has an empty name: give name = \"ui\" (sent as the x-api-key header)"));
            }
            if n.trim() != n {
                return Err(format!("key name {n:?} starts or ends with white space, which HTTP would drop"));
            }
            if keys.iter().any(|k| &k.name == n) {
                return Err(format!("key name {n:?} is used twice: each [[keys]] needs its own name"));
            }
            check_header_value("key name (x-api-key)", n)
        })?;
        let label = format!("key {:?}", name.get_ref());
        let weight = match &key.weight {
            Some(w) => {
                ctx.check(w, |Num(w)| {
                    if w.is_finite() && *w > 0.0 {
                        Ok(())
                    } else {
                        Err(format!(
                            "{label} weight must be more than 0 (weights are relative: 9 and 1 send 90% and 10%), got {w}"
                        ))
                    }
                })?;
                w.get_ref().0
            }
            None => 1.0,
        };
        weight_sum += weight;
        if !weight_sum.is_finite() {
            return Err(ctx.at(span, "the key weights add up past the largest number: use small relative weights like 9 and 1"));
        }
        let path = match &key.path {
            Some(p) => {
                ctx.check(p, |p| check_path(&format!("{label} path"), p))?;
                Some(p.get_ref().clone())
            }
            None => None,
        };
        let headers = build_headers(ctx, &format!("{label} header"), key.headers)?;
        let timeout = match &key.timeout {
            Some(t) => {
                ctx.check(t, |t| {
                    check_positive_duration(&format!("{label} timeout"), t.0, MAX_DURATION)
                })?;
                Some(t.get_ref().0)
            }
            None => None,
        };
        keys.push(KeySpec {
            name: name.into_inner(),
            weight,
            path,
            headers,
            timeout,
        });
    }
    Ok(keys)
}

fn build_client(
    ctx: &Ctx,
    raw: Option<RawClient>,
    overrides: &Overrides,
    experiment: ExperimentKind,
    request: &RequestSpec,
    keys: &[KeySpec],
) -> Result<ClientSpec> {
    let mut client = ClientSpec {
        request_ids: experiment == ExperimentKind::AbortAudit,
        ..ClientSpec::default()
    };
    let ids_span = raw
        .as_ref()
        .and_then(|r| r.request_ids.as_ref())
        .map(|r| r.span());
    if let Some(raw) = raw {
        if let Some(ids) = &raw.request_ids {
            if experiment == ExperimentKind::AbortAudit && !*ids.get_ref() {
                return Err(ctx.at(
                    ids.span(),
                    "experiment = \"abort-audit\" joins the client, the gateway's log and the upstream per request by x-request-id: remove request_ids = false",
                ));
            }
            client.request_ids = *ids.get_ref();
        }
        if let Some(t) = &raw.timeout {
            ctx.check(t, |t| {
                check_positive_duration("[client] timeout", t.0, MAX_DURATION)
            })?;
            client.timeout = t.get_ref().0;
        }
        if let Some(m) = &raw.max_connections {
            ctx.check(m, |n| {
                check_int("[client] max_connections", n.0, 1, MAX_CONNECTIONS)
            })?;
            client.max_connections = m.get_ref().0 as usize;
        }
        if let Some(t) = &raw.threads {
            ctx.check(t, |n| check_int("[client] threads", n.0, 1, MAX_THREADS))?;
            client.threads = Some(t.get_ref().0 as usize);
        }
        if let Some(s) = &raw.seed {
            ctx.check(s, |n| check_int("[client] seed", n.0, 0, i64::MAX))?;
            client.seed = s.get_ref().0 as u64;
        }
        if let Some(i) = &raw.interval {
            ctx.check(i, |d| check_interval("[client] interval", d.0))?;
            client.interval = i.get_ref().0;
        }
        if let Some(l) = &raw.lag_bound {
            ctx.check(l, |d| {
                check_positive_duration("[client] lag_bound", d.0, Duration::from_secs(3600))
            })?;
            client.lag_bound = l.get_ref().0;
        }
    }
    if let Some(t) = overrides.timeout {
        check_positive_duration("--timeout", t, MAX_DURATION).map_err(cli)?;
        client.timeout = t;
    }
    if let Some(m) = overrides.max_connections {
        check_int(
            "--max-connections",
            i64::try_from(m).unwrap_or(i64::MAX),
            1,
            MAX_CONNECTIONS,
        )
        .map_err(cli)?;
        client.max_connections = m;
    }
    if let Some(n) = overrides.connections {
        check_int(
            "--connections",
            i64::try_from(n).unwrap_or(i64::MAX),
            1,
            MAX_CONNECTIONS,
        )
        .map_err(cli)?;
        if overrides.rate.is_some() {
            return Err(cli(
                "--connections runs closed loop (no schedule): drop --rate, or drop --connections for open loop",
            ));
        }
        let other = match experiment {
            ExperimentKind::Run => None,
            ExperimentKind::Sweep => Some("sweep"),
            ExperimentKind::FindLimit => Some("find-limit"),
            ExperimentKind::AbortAudit => Some("abort-audit"),
        };
        if let Some(other) = other {
            return Err(cli(format!(
                "--connections (closed loop) applies to experiment = \"run\", not \"{other}\": drop --connections"
            )));
        }
        client.closed_loop = Some(n);
    }
    if let Some(t) = overrides.threads {
        check_int(
            "--threads",
            i64::try_from(t).unwrap_or(i64::MAX),
            1,
            MAX_THREADS,
        )
        .map_err(cli)?;
        client.threads = Some(t);
    }
    if let Some(s) = overrides.seed {
        client.seed = s;
    }
    if client.request_ids {
        let set_by_hand = request
            .headers
            .iter()
            .chain(keys.iter().flat_map(|k| k.headers.iter()))
            .any(|(name, _)| name.eq_ignore_ascii_case("x-request-id"));
        if set_by_hand {
            let message = "an x-request-id header is set by hand, but with [client] request_ids on (the default of experiment = \"abort-audit\") the driver sets a unique one per request: remove the header";
            return Err(match ids_span {
                Some(span) => ctx.at(span, message),
                None => ctx.whole(message),
            });
        }
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Source {
        Source::File(PathBuf::from("s.toml"))
    }

    fn parse_ok(text: &str) -> Scenario {
        match parse(text, &file(), &Overrides::default()) {
            Ok(s) => s,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(text, &file(), &Overrides::default()) {
            Ok(s) => panic!("{text:?} should fail, got {s:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), 2);
                e.to_string()
            }
        }
    }

    const PHASE: &str = "[[phases]]\nrate = \"1k\"\nduration = \"1s\"\n";

    #[test]
    fn urls_parse() {
        // (input, base, path)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080", None),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080", None),
            (
                "HTTP://LocalHost:80/a/b?c=d",
                "http://localhost:80",
                Some("/a/b?c=d"),
            ),
            (
                "http://example:9000?x=1",
                "http://example:9000",
                Some("/?x=1"),
            ),
            ("http://host", "http://host:80", None),
            ("http://[::1]:8080/p", "http://[::1]:8080", Some("/p")),
            ("http://[::1]", "http://[::1]:80", None),
        ];
        for (input, base, path) in cases {
            let got = parse_http_url("url", input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                got,
                HttpUrl {
                    base: base.to_string(),
                    path: path.map(str::to_string)
                },
                "{input}"
            );
        }
    }

    #[test]
    fn urls_refused() {
        let cases: &[(&str, &str)] = &[
            ("127.0.0.1:8080", "is not a URL"),
            ("https://h:1", "https is not supported"),
            ("ftp://h:1", "only http:// URLs"),
            ("http://:8080", "has no host"),
            ("http://h:0", "port \"0\""),
            ("http://h:70000", "port \"70000\""),
            ("http://h:x", "port \"x\""),
            ("http://u:p@h:1", "user names and passwords"),
            ("http://h:1/#frag", "fragment"),
            ("http://h:1/a b", "percent-encode"),
            ("http://[::1", "unclosed"),
            ("http://[zz]:1", "not an IPv6 address"),
            ("http://h_ost!:1", "not a host name"),
        ];
        for (input, want) in cases {
            let err = parse_http_url("url", input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn inline_errors_name_the_place_and_the_fix() {
        // (scenario text, part of the error)
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{PHASE}[request]\nheaders = {{ \"x-a\" = \"b\\nc\" }}"),
                "s.toml:5:21: [request] header value",
            ),
            (
                format!("{PHASE}[request]\nheaders = {{ \"x-a\" = 1 }}"),
                "expected a string",
            ),
            (
                format!("{PHASE}[target]\n"),
                "s.toml:4:1: [target] has no url",
            ),
            (
                format!("{PHASE}[upstream]\nkind = \"external\"\n"),
                "needs url",
            ),
            (
                format!(
                    "{PHASE}[upstream]\nkind = \"external\"\nurl = \"http://h:1\"\ncpu = \"1ms\""
                ),
                "takes only url",
            ),
            (
                format!("{PHASE}[upstream]\nurl = \"http://h:1\""),
                "s.toml:5:7: [upstream] url is for kind = \"external\"",
            ),
            (
                format!("{PHASE}[upstream]\nkind = \"remote\""),
                "unknown variant `remote`, expected `mock` or `external`",
            ),
            (
                format!("{PHASE}[upstream]\nworkers = 0"),
                "[upstream] workers must be between 1 and",
            ),
            (
                format!("{PHASE}[upstream]\ncpus = \"0-\""),
                "is not a CPU list",
            ),
            (
                format!("{PHASE}[upstream]\nstatus = 42"),
                "[upstream] status must be between 100 and 599",
            ),
            (
                format!("{PHASE}[upstream]\ncpu_dist = \"normal\""),
                "expected one of `constant`, `exponential`, `lognormal`",
            ),
            (format!("{PHASE}[[keys]]\nweight = 1"), "key 1 has no name"),
            (
                format!("{PHASE}[[keys]]\nname = \"\""),
                "key 1 has an empty name",
            ),
            (
                format!(
                    "{PHASE}[[keys]]\nname = \"a\"\nweight = 1e308\n[[keys]]\nname = \"b\"\nweight = 1e308"
                ),
                "add up past",
            ),
            (
                format!("{PHASE}[[keys]]\nname = \"a\"\ntimeout = \"0s\""),
                "key \"a\" timeout must be more than 0",
            ),
            (
                format!("{PHASE}[[keys]]\nname = \"a\"\nweight = \"nine\""),
                "expected a number",
            ),
            (
                format!("{PHASE}[client]\nthreads = 300"),
                "[client] threads must be between 1 and 256, got 300",
            ),
            (
                format!("{PHASE}[client]\nseed = -1"),
                "[client] seed must be between 0 and",
            ),
            (
                format!("{PHASE}[client]\nlag_bound = \"0s\""),
                "[client] lag_bound must be more than 0",
            ),
            (
                format!("{PHASE}[client]\ntimeout = \"25h\""),
                "[client] timeout of 25h is longer than the limit of 24h",
            ),
            (
                format!("{PHASE}[gateway]\nkind = \"haproxy\""),
                "unknown variant `haproxy`, expected one of `reference`, `nginx`, `external`, `none`",
            ),
            (
                format!(
                    "{PHASE}[gateway]\nkind = \"nginx\"\nbudget = {{ budget = \"1s\", window = \"1s\", penalty = \"1s\" }}"
                ),
                "s.toml:4:1: [gateway] budget is a reference-gateway policy that nginx has no directive for",
            ),
            (
                format!("{PHASE}[gateway]\nconcurrency = {{ max = 0 }}"),
                "s.toml:5:23: [gateway] concurrency max must be between 1 and",
            ),
            (
                format!("{PHASE}[gateway]\nkind = \"external\""),
                "needs url",
            ),
            (
                format!("name = \"a b\"\n{PHASE}"),
                "s.toml:1:8: name \"a b\" is not usable",
            ),
            (
                "[[phases]]\nduration = \"1s\"".to_string(),
                "phase 1 has no rate",
            ),
            (
                "[[phases]]\nrate = 5".to_string(),
                "phase 1 has no duration",
            ),
            (
                format!("{PHASE}[[phases]]\nrate = {{ to = 5 }}\nduration = \"1s\""),
                "s.toml:5:8: phase 2 rate is a ramp with no `from`",
            ),
            (
                "[[phases]]\nrate = {}\nduration = \"1s\"".to_string(),
                "is an empty table",
            ),
            (
                "[[phases]]\nrate = { from = -1, to = 5 }\nduration = \"1s\"".to_string(),
                "s.toml:2:17: phase 1 rate `from` must be 0 or more",
            ),
            (
                "[[phases]]\nrate = { from = 1, to = \"20m\" }\nduration = \"1s\"".to_string(),
                "is not a rate",
            ),
            (
                "[[phases]]\nrate = nan\nduration = \"1s\"".to_string(),
                "finite",
            ),
            (
                "[[phases]]\nrate = 1\nduration = 1.5".to_string(),
                "a duration needs a unit",
            ),
            ("".to_string(), "s.toml: no [[phases]]"),
        ];
        for (text, want) in cases {
            let err = parse_err(&text);
            assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
        }
    }

    #[test]
    fn ramps_and_units_parse() {
        let s = parse_ok(
            "[[phases]]\nrate = { from = 0, to = \"1.5k/s\" }\nduration = \"250ms\"\n\
             [[phases]]\nrate = 2.5\nduration = \"2m\"\narrival = \"poisson\"",
        );
        assert_eq!(
            s.phases,
            vec![
                Phase {
                    rate: Rate::Ramp {
                        from: 0.0,
                        to: 1500.0
                    },
                    duration: Duration::from_millis(250),
                    arrival: ArrivalKind::Constant
                },
                Phase {
                    rate: Rate::Constant(2.5),
                    duration: Duration::from_secs(120),
                    arrival: ArrivalKind::Poisson
                },
            ]
        );
        assert_eq!(s.name, "s");
    }

    #[test]
    fn abort_audit_section_parses_and_is_checked() {
        let audit = "experiment = \"abort-audit\"\n";
        let s = parse_ok(&format!("{audit}{PHASE}"));
        assert_eq!(s.abort_audit, AbortAuditSpec::default());
        let s = parse_ok(&format!(
            "{audit}{PHASE}[abort_audit]\nmodes = [\"nginx-on\", \"reference-early\"]\nsettle = \"2s\""
        ));
        assert_eq!(
            s.abort_audit.modes,
            vec![AuditMode::NginxOn, AuditMode::ReferenceEarly]
        );
        assert_eq!(s.abort_audit.settle, Duration::from_secs(2));
        // (scenario text, part of the error)
        let cases = [
            (
                format!("{PHASE}[abort_audit]\nsettle = \"1s\""),
                "s.toml:4:1: [abort_audit] is read only by experiment",
            ),
            (
                format!("{audit}{PHASE}[abort_audit]\nmodes = []"),
                "s.toml:6:9: [abort_audit] modes is empty",
            ),
            (
                format!("{audit}{PHASE}[abort_audit]\nmodes = [\"nginx-on\", \"nginx-on\"]"),
                "s.toml:6:22: [abort_audit] mode \"nginx-on\" is listed twice",
            ),
            (
                format!("{audit}{PHASE}[abort_audit]\nmodes = [\"haproxy\"]"),
                "unknown variant `haproxy`",
            ),
            (
                format!("{audit}{PHASE}[abort_audit]\nsettle = \"0s\""),
                "[abort_audit] settle must be more than 0",
            ),
            (
                format!("{audit}{PHASE}[abort_audit]\nwait = \"1s\""),
                "unknown field `wait`",
            ),
        ];
        for (text, want) in cases {
            let err = parse_err(&text);
            assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
        }
    }

    #[test]
    fn request_ids_are_off_by_default_and_on_for_the_abort_audit() {
        assert!(!parse_ok(PHASE).client.request_ids);
        assert!(
            parse_ok(&format!("{PHASE}[client]\nrequest_ids = true"))
                .client
                .request_ids
        );
        let audit = "experiment = \"abort-audit\"\n";
        assert!(parse_ok(&format!("{audit}{PHASE}")).client.request_ids);
        let cases = [
            (
                format!("{audit}{PHASE}[client]\nrequest_ids = false"),
                "s.toml:6:15: experiment = \"abort-audit\" joins the client, the gateway's log and the upstream per request by x-request-id: remove request_ids = false",
            ),
            (
                format!(
                    "{PHASE}[client]\nrequest_ids = true\n[request]\nheaders = {{ X-Request-Id = \"1\" }}"
                ),
                "s.toml:5:15: an x-request-id header is set by hand",
            ),
            (
                format!(
                    "{audit}{PHASE}[[keys]]\nname = \"k\"\nheaders = {{ x-request-id = \"1\" }}"
                ),
                "s.toml: an x-request-id header is set by hand",
            ),
            (
                format!("{PHASE}[client]\nrequest_ids = \"yes\""),
                "s.toml:5:15",
            ),
        ];
        for (text, want) in cases {
            let err = parse_err(&text);
            assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
        }
    }

    #[test]
    fn upstream_external_is_a_url_target() {
        let s = parse_ok(&format!(
            "{PHASE}[upstream]\nkind = \"external\"\nurl = \"http://127.0.0.1:9\""
        ));
        assert_eq!(s.target, Target::Url("http://127.0.0.1:9".to_string()));
        let s = parse_ok(&format!(
            "{PHASE}[upstream]\nworkers = \"unbounded\"\ncpu = \"1.5ms\""
        ));
        assert_eq!(
            s.target,
            Target::Mock(MockUpstreamSpec {
                workers: None,
                cpu_ms: Some(1.5),
                ..MockUpstreamSpec::default()
            })
        );
    }

    #[test]
    fn from_overrides_needs_target_and_rate() {
        let err = from_overrides(&Overrides::default()).expect_err("no target");
        assert!(
            err.to_string()
                .starts_with("command line: no scenario file and no --target"),
            "{err}"
        );
        let target_only = Overrides {
            target: Some("http://127.0.0.1:8080/x".to_string()),
            ..Overrides::default()
        };
        let err = from_overrides(&target_only).expect_err("no rate");
        assert!(
            err.to_string().contains("give --rate (e.g. --rate 20k)"),
            "{err}"
        );
        let s = from_overrides(&Overrides {
            rate: Some(Rate::Constant(20_000.0)),
            ..target_only
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "run");
        assert_eq!(s.target, Target::Url("http://127.0.0.1:8080".to_string()));
        assert_eq!(s.request.path, "/x");
        assert_eq!(
            s.phases,
            vec![Phase {
                rate: Rate::Constant(20_000.0),
                duration: DEFAULT_PHASE_DURATION,
                arrival: ArrivalKind::Constant
            }]
        );
        assert_eq!(s.client, ClientSpec::default());
    }

    #[test]
    fn bad_override_rates_are_refused() {
        let cases = [
            Rate::Constant(f64::NAN),
            Rate::Constant(-1.0),
            Rate::Constant(1e12),
            Rate::Ramp { from: 0.0, to: 0.0 },
            Rate::Ramp {
                from: -1.0,
                to: 5.0,
            },
            Rate::Ramp {
                from: 1.0,
                to: f64::INFINITY,
            },
        ];
        for rate in cases {
            let overrides = Overrides {
                target: Some("http://h:1".to_string()),
                rate: Some(rate),
                ..Overrides::default()
            };
            let err = from_overrides(&overrides).expect_err("bad rate");
            assert!(
                err.to_string().starts_with("command line: --rate"),
                "{rate:?}: {err}"
            );
        }
    }

    /// A bounded fuzz: random edits and cuts of a full scenario never panic,
    /// and every error is a scenario error (exit code 2).
    #[test]
    fn mangled_scenarios_never_panic() {
        use rand::{Rng, SeedableRng};
        let good = format!(
            "name = \"x\"\n{PHASE}[[phases]]\nrate = {{ from = \"1k\", to = 5 }}\nduration = \"2m\"\narrival = \"poisson\"\n\
             [request]\nmethod = \"GET\"\npath = \"/a?b=1\"\nheaders = {{ \"x-a\" = \"b\" }}\n\
             [[keys]]\nname = \"k\"\nweight = 2\ntimeout = \"5ms\"\n\
             [client]\ntimeout = \"1s\"\nmax_connections = 10\nthreads = 2\nseed = 3\ninterval = \"1s\"\n"
        );
        let alphabet: Vec<char> = "\"'=[]{}.,-_0123456789kmsh# \n\tabcxyzé\u{0}\u{7f}"
            .chars()
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for _ in 0..3000 {
            let mut chars: Vec<char> = good.chars().collect();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..chars.len());
                match rng.random_range(0..3) {
                    0 => chars[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => {
                        chars.remove(at);
                    }
                    _ => chars.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                }
            }
            let text: String = chars.into_iter().collect();
            if let Err(e) = parse(&text, &file(), &Overrides::default()) {
                assert_eq!(e.exit_code(), 2, "{text:?}: {e}");
            }
        }
        for cut in 0..good.len() {
            if good.is_char_boundary(cut) {
                let _ = parse(&good[..cut], &file(), &Overrides::default());
            }
        }
        let _ = parse_ok(&good);
    }
}
