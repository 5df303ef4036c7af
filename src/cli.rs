//! The command line: clap definitions and their translation into scenario
//! overrides. Parsing only; `app` runs the commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::scenario::{ArrivalKind, Overrides, Rate};
use crate::units::{parse_duration, parse_rate};

const AFTER_HELP: &str = "\
Examples:
  contend run scenarios/quickstart.toml
  contend run --target http://127.0.0.1:8080/ --rate 20k --duration 10s
  contend run scenarios/quickstart.toml --rate 5k --out /tmp/run1
  contend report reports/quickstart-20261123-101500

Exit codes:
  0    the run completed
  1    runtime failure (a component failed, a file could not be written)
  2    bad input (scenario file or flags)
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
    /// Print the summary of a saved report folder again.
    Report {
        /// A report folder (holding summary.json).
        dir: PathBuf,
    },
    /// Run the embedded mock upstream (what `[upstream] kind = "mock"` starts).
    Upstream(mock_upstream::Args),
    /// Run the reference gateway (what `[gateway] kind = "reference"` starts).
    #[command(after_help = GATEWAY_HELP)]
    Gateway(GatewayArgs),
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
    /// Driver threads (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed for Poisson gaps and the key mix.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Name of the run (report folder prefix).
    #[arg(long)]
    pub name: Option<String>,
    /// Write the report folder here instead of reports/<name>-<time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

impl RunArgs {
    /// The flags as scenario overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            target: self.target.clone(),
            rate: self.rate.map(Rate::Constant),
            duration: self.duration,
            arrival: self.arrival.map(|a| match a {
                ArrivalArg::Constant => ArrivalKind::Constant,
                ArrivalArg::Poisson => ArrivalKind::Poisson,
            }),
            timeout: self.timeout,
            max_connections: self.max_connections,
            threads: self.threads,
            seed: self.seed,
            name: self.name.clone(),
        }
    }
}
