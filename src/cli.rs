//! The command line: clap definitions and their translation into scenario
//! overrides. Parsing only; `app` runs the commands.
// The flags' doc comments are clap's --help text, printed as written: their
// `[client]` and `<name>` are TOML tables and placeholders, not rustdoc
// links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use contend_units::{parse_duration, parse_rate};

use crate::scenario::{ArrivalKind, Overrides, Rate, ShardArg};

const AFTER_HELP: &str = "\
Examples:
  contend run scenarios/quickstart.toml
  contend run --target http://127.0.0.1:8080/ --rate 20k --duration 10s
  contend run --target https://127.0.0.1:8443/ --http2 --insecure --rate 50k
  contend run scenarios/quickstart.toml --rate 5k --out /tmp/run1
  contend run scenarios/quickstart.toml --out /tmp/run1 --force   # replace that run
  contend run scenarios/retry-storm.toml --retries without        # the storm without its retries
  contend report reports/quickstart-20261123-101500
  contend run gate.toml --threshold 'p99 < 250ms' --threshold 'error_rate < 1%' --junit gate.xml
  contend run gate.toml --repeat 5 --out /tmp/current
  contend compare --baseline baseline/run-* --current /tmp/current/run-*
  contend doctor scenarios/capacity-sweep.toml
  contend run soak.toml --metrics-addr 127.0.0.1:9464     # watch it in Prometheus
  contend logs reports/client-abort-20261123-101500/nginx-off/access.log

Exit codes:
  0    the run completed (and every threshold held; compare: no regression)
  1    runtime failure (a component failed, a file could not be written)
  2    bad input (scenario file, flags, a malformed or unknown threshold, an --out
       that cannot hold the report or holds another run without --force)
  3    a threshold failed (run), or a metric regressed (compare)
  130  interrupted by Ctrl-C (SIGINT); the report of what ran is written
  143  stopped by SIGTERM; the report of what ran is written";

/// Open-loop load generation and gateway contention benchmarks.
#[derive(Debug, Parser)]
#[command(name = "contend", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (or a target given by flags) and write its report.
    #[command(after_help = AFTER_HELP)]
    Run(RunArgs),
    /// Print the summary of a saved report folder again, and re-draw its
    /// plots and report.html from the saved data (nothing is run).
    Report {
        /// A report folder (holding summary.json).
        dir: PathBuf,
    },
    /// Compare report folders with a baseline: exit 3 on a regression.
    #[command(after_help = COMPARE_HELP)]
    Compare(CompareArgs),
    /// Merge the report folders of a sharded run (`run --shard I/N`) into
    /// one report of the whole load.
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
    /// Run the embedded mock upstream (what `[upstream] kind = "mock"` starts).
    Upstream(mock_upstream::Args),
    /// Run the reference gateway (what `[gateway] kind = "reference"` starts).
    #[command(after_help = GATEWAY_HELP)]
    Gateway(GatewayArgs),
    /// Read access logs (nginx's log_format, HAProxy's log-format; plain,
    /// .gz or - for stdin) into a report folder: rates, statuses and
    /// latency per route and key, the tail routes, client aborts and the
    /// knee where logged time stops, and per key an estimate of the upstream
    /// work the log did not count.
    #[command(after_help = LOGS_HELP)]
    Logs(LogsArgs),
    /// Check this host's limits (open files, listen queues, ephemeral
    /// ports, TIME_WAIT reuse, nginx, HAProxy) against a run, each OK or WARN with
    /// its fix: the checks `contend run` makes before it starts.
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
}

const LOGS_HELP: &str = "\
Examples:
  contend logs reports/client-abort-20261123-101500/nginx-off/access.log
  contend logs /var/log/nginx/access.log.2.gz /var/log/nginx/access.log.1 /var/log/nginx/access.log
  contend logs access.log --format nginx-timed --slow 250ms --out /tmp/prod-log
  contend logs access.log --format '$remote_addr [$time_local] \"$request\" $status $request_time $upstream_response_time $http_x_api_key'
  zcat haproxy.log.gz | contend logs - --format haproxy --key '%hr'

Formats: a preset (contend, nginx-timed, main, combined, haproxy), nginx's log_format string
(or the whole `log_format NAME '...' '...';` directive), or HAProxy's log-format (put `haproxy:`
before it when it could be read as nginx's). Without --format: the FILE.format beside the first
file (every run that starts a gateway keeps access.log and access.log.format in its report folder),
else the preset most of its first lines are in. A variable neither gateway has is an error naming it.

Aborts: nginx's 499, HAProxy's C and c termination states, and a 404 whose $upstream_status is -
after upstream time (a post_action quirk); gateway timeouts: 504 and HAProxy's s states. Their
upstream time is cut where the log stopped watching. Per key, a censored-data fit of the
completed requests' upstream times (exponential, maximum likelihood with censoring; its
assumption is printed) estimates the work that went on after the cut: the under-count factor,
with a 90% interval. Malformed lines are counted and the first ones shown, never fatal.

Exit codes: 0 read, 1 runtime failure (the report could not be written), 2 bad input (a file
missing, a bad --format or --key, an --out that holds another report without --force, or no
line of the log in the format).";

const DOCTOR_HELP: &str = "\
Examples:
  contend doctor
  contend doctor scenarios/capacity-sweep.toml
  contend doctor --rate 50k --max-connections 20000

Without a scenario the checks assume a loopback target at --rate (default 50k/s)
with --max-connections (default 10000). `contend run` makes the same checks, prints
each WARN before it starts and keeps them all in summary.json (`preflight`); it
refuses a run whose connections cannot fit in the open-file limit (exit 2).

Exit codes: 0 checked (WARNs included), 2 bad input (scenario file, flags).";

/// `contend logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Access logs, read in order as one log: plain, gzip (by its magic
    /// bytes, whatever the name), or - for stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The format the log was written in: a preset, nginx's log_format, or
    /// HAProxy's log-format [default: FILE.format beside the first file, else
    /// the preset its first lines are in].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// The format's variable that holds the API key, e.g. '$remote_user' or
    /// '%[req.hdr(x-api-key)]' [default: $http_x_api_key, or a HAProxy sample of x-api-key].
    #[arg(long, value_name = "VAR")]
    pub key: Option<String>,
    /// Request time over which a request counts as slow (the tail routes).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub slow: Duration,
    /// Interval of log-intervals.csv (doubled while the log spans more than 10,000).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Write the report folder here instead of reports/logs-<time>/. A
    /// folder that holds another report is refused unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the report already in --out (only the files contend writes there).
    #[arg(long)]
    pub force: bool,
    /// Print only where the report is.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `contend doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Scenario file (TOML) to check the host against. Flags below override its values.
    pub scenario: Option<PathBuf>,
    /// Target URL (the listen-queue checks apply when it is on this host).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Peak offered rate per second, e.g. 20k.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Cap of open connections over all driver threads.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Driver threads (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl DoctorArgs {
    /// The flags as scenario overrides; with no scenario file, a loopback
    /// target at 50k/s stands in for what was not given.
    pub fn overrides(&self) -> Overrides {
        let flag_only = self.scenario.is_none();
        Overrides {
            target: self
                .target
                .clone()
                .or_else(|| flag_only.then(|| "http://127.0.0.1:8080/".to_string())),
            rate: self
                .rate
                .or_else(|| flag_only.then_some(50_000.0))
                .map(Rate::Constant),
            duration: flag_only.then_some(Duration::from_secs(10)),
            max_connections: self.max_connections,
            threads: self.threads,
            ..Overrides::default()
        }
    }
}

const GATEWAY_HELP: &str = "\
Examples:
  contend gateway --config gateway.toml
  contend gateway --config gateway.toml --listen 127.0.0.1:8080 --upstream http://127.0.0.1:8081

Prints `listening on ADDR` as its first stdout line, serves until SIGTERM or Ctrl-C.
Exit codes: 0 stopped by a signal, 1 runtime failure, 2 bad config or flags.";

/// `contend gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Gateway config file (TOML): upstream, abort_accounting, access_log, [[routes]] with policies.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Listen address (replaces the file's), e.g. 127.0.0.1:0.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Upstream base URL (replaces the file's), e.g. http://127.0.0.1:8081.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
}

/// `--retries`: what a sweep or a find-limit does with a retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetriesArg {
    /// Run with and without the policy, the answers side by side.
    Compare,
    /// Run with the policy only.
    With,
    /// Run with no retry policy.
    Without,
}

/// Arrival process on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ArrivalArg {
    /// Evenly spaced arrivals.
    Constant,
    /// Poisson arrivals.
    Poisson,
}

/// `contend run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML). Flags below override its values.
    pub scenario: Option<PathBuf>,
    /// Target URL, e.g. http://127.0.0.1:8080/path (replaces the scenario's target).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Offered rate per second, e.g. 500, 20k (replaces every phase's rate).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Duration, e.g. 10s, 2m (replaces every phase's duration).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Arrival process.
    #[arg(long, value_enum)]
    pub arrival: Option<ArrivalArg>,
    /// Client timeout per request, counted from its intended send time.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Cap of open connections over all driver threads.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Past --max-connections an arrival waits for the next free connection
    /// (or HTTP/2 stream) instead of being counted not_sent; its latency
    /// still counts from its intended time. With --max-connections N: wrk2's
    /// and oha's N fixed connections ([client] wait_at_max = true).
    #[arg(long, conflicts_with = "connections")]
    pub wait_at_max: bool,
    /// Closed loop instead of a schedule: N connections, each sending its next
    /// request when the last one ended (wrk's and oha's -c), for --duration or
    /// the phases' total. Measures the maximum rate; its latency is service
    /// time, which hides queueing.
    #[arg(long, value_name = "N", conflicts_with_all = ["rate", "arrival"])]
    pub connections: Option<usize>,
    /// Driver threads (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed for Poisson gaps and the key mix.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Name of the run (report folder prefix).
    #[arg(long)]
    pub name: Option<String>,
    /// Offer a share of the load: shard I of N (from 0) offers 1/N of every
    /// phase, so that N processes (on N machines) together offer the
    /// scenario's load; `auto` reads I from JOB_COMPLETION_INDEX (a
    /// Kubernetes Indexed Job) and N from CONTEND_SHARDS or [shards] count.
    #[arg(long, value_name = "I/N|auto", value_parser = parse_shard)]
    pub shard: Option<ShardFlag>,
    /// Start the load at this time (RFC 3339, e.g. 2026-11-26T10:00:00Z, or
    /// +30s from now), after warming connections: shards on several machines
    /// line up.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// Speak HTTP/2 ([client] http = "2"): each arrival a stream, up to the
    /// server's MAX_CONCURRENT_STREAMS per connection; h2 in ALPN over
    /// https://, prior knowledge (h2c) over http://.
    #[arg(long)]
    pub http2: bool,
    /// Accept any server certificate ([client] tls.insecure = true), for a
    /// self-signed test gateway. Never against a server you do not own.
    #[arg(long)]
    pub insecure: bool,
    /// With a retry policy in a sweep or a find-limit: `compare` (the
    /// default there) runs the experiment twice, with and without retries,
    /// and sets the answers side by side (twice the time); `with` runs it
    /// with the policy only; `without` drops the policy. A `run` takes
    /// `with` or `without` (side by side there: `[[variants]]`).
    #[arg(long, value_enum, value_name = "MODE")]
    pub retries: Option<RetriesArg>,
    /// Write the report folder here instead of reports/<name>-<time>/. A
    /// folder that holds another run is refused unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the run already in --out: first remove the files and
    /// subfolders contend wrote there (summary.json, intervals.csv, plots,
    /// run-N/, ...), and nothing else, so no stale file stays beside the new run.
    #[arg(long)]
    pub force: bool,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// A threshold over the summary, e.g. 'p99 < 250ms', 'error_rate < 1%',
    /// 'rate(503) < 5%', 'keys.ui.p99 < 50ms' (repeatable; added to the
    /// scenario's [thresholds] checks). Any failing: exit 3.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Run N times, writing <out>/run-1..N (or reports/<name>-<time>-1..N),
    /// e.g. as repeated runs for `contend compare`.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Write the thresholds' verdicts as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print only verdicts (failed thresholds and the overall verdict); no progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Serve the run's own progress (offered, sent, outcomes, the last
    /// interval's latency quantiles, lag, pacing window and in flight) in Prometheus text
    /// at http://ADDR/metrics while it runs, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
}

const MERGE_HELP: &str = "\
Examples:
  contend run shard.toml --shard 0/3 --start-at +20s --out results/shard-0   # on each of 3 hosts
  contend merge results/shard-0 results/shard-1 results/shard-2 --out results/all
  contend merge results/shard-* --out results/all --threshold 'p99 < 250ms' --junit gate.xml

The shards must be one run's (same scenario, shard numbers 0..N-1 of one N, one interval
length). Counts and outcomes are summed, histograms added exactly (from each folder's
histograms.hlog), intervals aligned by number from each shard's start (the spread of the
starts is reported: start the shards with --start-at).

Exit codes: 0 merged (every threshold held), 1 runtime failure, 2 bad input (not the shards
of one run, a missing shard without --allow-missing, an unknown threshold), 3 a threshold failed.";

/// `contend merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' report folders.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged report goes.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier run's files in --out.
    #[arg(long)]
    pub force: bool,
    /// Merge the shards that are there when some are missing (the report
    /// then holds their share of the load only, and says so).
    #[arg(long)]
    pub allow_missing: bool,
    /// A threshold over the merged summary (repeatable); any failing: exit 3.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Write the thresholds' verdicts as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print only verdicts.
    #[arg(long, short)]
    pub quiet: bool,
}

const COMPARE_HELP: &str = "\
Each side is one report folder or several (repeated runs, from `contend run --repeat N`):
  contend compare BASELINE CURRENT
  contend compare --baseline base/run-1 base/run-2 base/run-3 --current cur/run-1 cur/run-2 cur/run-3

Compared: p50, p99, p99.9 (latency from the intended send time), error_rate (share of
arrivals not 2xx), achieved_rate_per_s and goodput_per_s (2xx per second).
With one run on a side the verdict is the tolerance alone. With repeated runs on both
sides, each run's per-interval values (from intervals.csv) are pooled per side and a
regression needs both a one-sided Mann-Whitney U test below --alpha and a change past
the tolerance, so noise within the baseline's spread passes.

A latency may rise by --latency-tolerance or by a slack, whichever is larger. The
slack is measured per metric from the baseline's noise: 3 x the median absolute
deviation (MAD) of the baseline runs' values, or with one baseline run of its
per-interval values; at least 10us or 0.2% of the baseline, so rounding alone never
makes a regression. One baseline run of fewer than 5 intervals has no noise to
measure: 1ms. --latency-slack sets it instead. The evidence column says which it was.

A run cut short by Ctrl-C (summary.json \"interrupted\": true) on either side is named
in a warning before the table and in every JUnit case. It is still compared and does
not change the exit code (its numbers are what it measured), but it covers only what
ran before the signal, so it is no fair baseline: run it again.

Exit codes: 0 no regression (also with interrupted runs, warned about), 1 runtime
failure, 2 bad input (not a report folder, bad flags), 3 a metric regressed.";

/// `contend compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// BASELINE CURRENT: two report folders (use --baseline/--current for repeated runs).
    #[arg(value_name = "DIR", conflicts_with_all = ["baseline", "current"])]
    pub dirs: Vec<PathBuf>,
    /// Baseline report folders (one or more).
    #[arg(long, value_name = "DIR", num_args = 1.., requires = "current")]
    pub baseline: Vec<PathBuf>,
    /// Current report folders (one or more).
    #[arg(long, value_name = "DIR", num_args = 1.., requires = "baseline")]
    pub current: Vec<PathBuf>,
    /// Allowed latency increase, relative: 10% (or 0.1).
    #[arg(long, value_name = "PCT", default_value = "10%", value_parser = parse_share)]
    pub latency_tolerance: f64,
    /// Latency increase always allowed (jitter below it is not a regression),
    /// e.g. 1ms [default: measured, 3 x the MAD of the baseline's runs (or of
    /// one run's intervals), at least 10us or 0.2%].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub latency_slack: Option<Duration>,
    /// Allowed error-rate increase in percentage points: 0.5 (or 0.5pp).
    #[arg(long, value_name = "PP", default_value = "0.5", value_parser = parse_pp)]
    pub error_tolerance: f64,
    /// Allowed drop of achieved rate and goodput, relative: 5% (or 0.05).
    #[arg(long, value_name = "PCT", default_value = "5%", value_parser = parse_share)]
    pub rate_tolerance: f64,
    /// Significance level of the rank test with repeated runs.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Write the verdict per metric as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print only verdicts (regressed metrics and the overall verdict).
    #[arg(long, short)]
    pub quiet: bool,
}

impl CompareArgs {
    /// The tolerance the flags ask for.
    pub fn tolerance(&self) -> crate::gate::compare::Tolerance {
        crate::gate::compare::Tolerance {
            latency_rel: self.latency_tolerance,
            latency_slack_us: self.latency_slack.map(|d| d.as_secs_f64() * 1e6),
            error_pp: self.error_tolerance,
            rate_rel: self.rate_tolerance,
            alpha: self.alpha,
        }
    }
}

/// `10%` or `0.1`, as a fraction of 1.
fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{t}` is not a share: expected e.g. 10% or 0.1"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("`{t}` is out of range: expected e.g. 10% or 0.1"));
    }
    Ok(value)
}

/// `0.5` or `0.5pp`, in percentage points.
fn parse_pp(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let number = t.strip_suffix("pp").unwrap_or(t).trim();
    match number.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{t}` is not percentage points: expected e.g. 0.5 or 0.5pp"
        )),
    }
}

/// `--shard` as given: an index and a count, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardFlag {
    /// `I/N`.
    Given(usize, usize),
    /// `auto`: from the environment (and the scenario).
    Auto,
}

/// `I/N` (shard I of N, I from 0) or `auto`.
fn parse_shard(s: &str) -> Result<ShardFlag, String> {
    let t = s.trim();
    if t == "auto" {
        return Ok(ShardFlag::Auto);
    }
    let bad = || format!("`{t}` is not a shard: expected I/N like 0/3 (shard 0 of 3), or auto");
    let (i, n) = t.split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    Ok(ShardFlag::Given(i, n))
}

/// An RFC 3339 time (`2026-11-26T10:00:00Z`) or `+DURATION` from now (`+30s`).
///
/// A time more than [`START_AT_SPAN`] away either way is refused: waited
/// for, it would hang the run for days; begun at once, shards meant to line
/// up would not. Either is a wrong date, not a plan.
fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    let t = s.trim();
    let now = std::time::SystemTime::now();
    let at = if let Some(after) = t.strip_prefix('+') {
        now + parse_duration(after)?
    } else {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|at| at.with_timezone(&chrono::Utc).into())
            .map_err(|e| {
                format!(
                    "`{t}` is not a time ({e}): expected RFC 3339 like 2026-11-26T10:00:00Z, or +30s"
                )
            })?
    };
    let (away, which) = match at.duration_since(now) {
        Ok(ahead) => (ahead, "from now"),
        Err(e) => (e.duration(), "ago"),
    };
    if away > START_AT_SPAN {
        return Err(format!(
            "`{t}` is {} {which}, more than 24h: give a time within a day of now, like +30s or \
             today's date",
            contend_units::format_duration(away)
        ));
    }
    Ok(at)
}

/// How far from now `--start-at` may be.
const START_AT_SPAN: Duration = Duration::from_secs(24 * 3600);

impl RunArgs {
    /// The flags as scenario overrides. `--shard auto` reads
    /// JOB_COMPLETION_INDEX (required) and CONTEND_SHARDS (optional: the
    /// scenario's `[shards] count` otherwise) from the environment.
    pub fn overrides(&self) -> crate::error::Result<Overrides> {
        let shard = match self.shard {
            None => None,
            Some(ShardFlag::Given(index, count)) => Some(ShardArg {
                index,
                count: Some(count),
            }),
            Some(ShardFlag::Auto) => Some(auto_shard()?),
        };
        Ok(Overrides {
            target: self.target.clone(),
            rate: self.rate.map(Rate::Constant),
            duration: self.duration,
            arrival: self.arrival.map(|a| match a {
                ArrivalArg::Constant => ArrivalKind::Constant,
                ArrivalArg::Poisson => ArrivalKind::Poisson,
            }),
            timeout: self.timeout,
            max_connections: self.max_connections,
            wait_at_max: self.wait_at_max,
            connections: self.connections,
            threads: self.threads,
            seed: self.seed,
            name: self.name.clone(),
            shard,
            start_at: self.start_at,
            http2: self.http2,
            insecure: self.insecure,
        })
    }
}

/// `--shard auto`: the index from JOB_COMPLETION_INDEX, the count from
/// CONTEND_SHARDS when set.
fn auto_shard() -> crate::error::Result<ShardArg> {
    let usage = |m: String| crate::error::Error::Usage(m);
    let read = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| (v.trim().parse::<usize>(), v))
    };
    let index = match read("JOB_COMPLETION_INDEX") {
        Some((Ok(i), _)) => i,
        Some((Err(_), v)) => {
            return Err(usage(format!(
                "--shard auto: JOB_COMPLETION_INDEX={v:?} is not a shard index (0, 1, 2, ...)"
            )));
        }
        None => {
            return Err(usage(
                "--shard auto reads the shard index from JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job), \
                 which is not set: set it, or give --shard I/N"
                    .into(),
            ));
        }
    };
    let count = match read("CONTEND_SHARDS") {
        Some((Ok(n), _)) => Some(n),
        Some((Err(_), v)) => {
            return Err(usage(format!(
                "--shard auto: CONTEND_SHARDS={v:?} is not a shard count"
            )));
        }
        None => None,
    };
    Ok(ShardArg { index, count })
}
