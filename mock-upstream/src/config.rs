//! Settings in layers: command-line [`Args`] and an optional TOML file, merged and validated into
//! a [`Config`] (plus the listen address).
//!
//! Takes flags and file text; hands on a `Config` whose every value is in range, or a
//! [`ConfigError`] naming the flag and what is valid. It does not bind, spawn or serve anything.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sys::MAX_CPU_INDEX;

/// Largest `cpu_ms` or `sleep_ms` accepted (one hour): anything longer is a typo, not a test.
pub const MAX_WORK_MS: f64 = 3_600_000.0;
/// Largest response body (64 MiB): bodies are built in memory per request.
pub const MAX_BYTES: usize = 64 << 20;

/// How requests get CPU: a fixed pool or one thread each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// Every request runs at once on its own thread; the OS scheduler shares the cores among them
    /// (processor sharing), so all in-flight requests slow down together.
    Unbounded,
    /// This many single-request workers; other requests wait in a queue of `backlog` (Unicorn's
    /// model).
    Pool(NonZeroUsize),
}

/// What a request does when its client disconnects mid-work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDisconnect {
    /// Finish the work, then find the client gone when replying (counted `abandoned`), as Unicorn does.
    Run,
    /// Notice the disconnect between CPU slices and stop (counted `cancelled`).
    Cancel,
}

/// Name of the distribution the default CPU time follows (the CLI and file spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuDistName {
    /// Always the mean.
    Constant,
    /// Exponential with the given mean.
    Exponential,
    /// Log-normal with the given mean and shape `cpu_sigma`.
    Lognormal,
}

/// Distribution of the default CPU time per request, around the configured mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CpuDist {
    /// Every request gets exactly the mean.
    Constant,
    /// Exponential with the configured mean.
    Exponential,
    /// Log-normal with the configured mean and this shape (sigma of the underlying normal).
    Lognormal {
        /// Shape parameter, > 0.
        sigma: f64,
    },
}

/// The validated settings `serve` runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Worker model.
    pub workers: Workers,
    /// With a pool: requests that may wait for a worker before new ones are refused (the
    /// connection is reset). Also the listen backlog `run` asks the kernel for.
    pub backlog: u32,
    /// Behaviour when a client disconnects mid-request.
    pub on_disconnect: OnDisconnect,
    /// Mean CPU time per request when the query gives no `cpu_ms`, in milliseconds.
    pub cpu_ms: f64,
    /// Distribution of that default CPU time.
    pub cpu_dist: CpuDist,
    /// Wall-clock sleep per request (after the CPU work) when the query gives no `sleep_ms`.
    pub sleep_ms: f64,
    /// Response body size in bytes when the query gives no `bytes`.
    pub bytes: usize,
    /// Response status when the query gives no `status`.
    pub status: u16,
    /// CPUs the request-running threads are pinned to; `None` leaves them free.
    pub cpus: Option<Vec<usize>>,
    /// Seed of the RNG the CPU distribution draws from, for repeatable runs.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: Workers::Unbounded,
            backlog: 1024,
            on_disconnect: OnDisconnect::Run,
            cpu_ms: 0.0,
            cpu_dist: CpuDist::Constant,
            sleep_ms: 0.0,
            bytes: 2,
            status: 200,
            cpus: None,
            seed: 1,
        }
    }
}

/// Default listen address: loopback, an ephemeral port (printed on the first stdout line).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// Default shape of the log-normal CPU distribution.
pub const DEFAULT_CPU_SIGMA: f64 = 0.5;

/// Command-line flags of the mock upstream. Every flag is optional so that an explicitly given
/// flag can win over the `--config` file, and the file over the defaults shown in `--help`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1:0]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Worker model: N single-request workers with a queue, or `unbounded` (all requests at once,
    /// sharing the cores) [default: unbounded]
    #[arg(long, value_name = "N|unbounded")]
    pub workers: Option<String>,
    /// Requests that may wait for a worker before connections are reset; also the listen backlog
    /// [default: 1024]
    #[arg(long, value_name = "N")]
    pub backlog: Option<u32>,
    /// On client disconnect mid-request: `run` finishes the work (abandoned), `cancel` stops it
    /// (cancelled) [default: run]
    #[arg(long, value_name = "MODE")]
    pub on_disconnect: Option<OnDisconnect>,
    /// Mean CPU milliseconds per request when the query has no cpu_ms [default: 0]
    #[arg(long, value_name = "MS")]
    pub cpu_ms: Option<f64>,
    /// Distribution of the default CPU time [default: constant]
    #[arg(long, value_name = "DIST")]
    pub cpu_dist: Option<CpuDistName>,
    /// Sigma of the log-normal CPU distribution [default: 0.5]
    #[arg(long, value_name = "F")]
    pub cpu_sigma: Option<f64>,
    /// Milliseconds to sleep per request (after the CPU work) when the query has no sleep_ms
    /// [default: 0]
    #[arg(long, value_name = "MS")]
    pub sleep_ms: Option<f64>,
    /// Response body bytes when the query has no bytes [default: 2]
    #[arg(long, value_name = "N")]
    pub bytes: Option<usize>,
    /// Response status when the query has no status [default: 200]
    #[arg(long, value_name = "CODE")]
    pub status: Option<u16>,
    /// CPUs to pin to, e.g. `0`, `0,1` or `0-3`
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,
    /// Seed for the CPU distribution [default: 1]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// TOML file with the same settings in snake_case; flags given explicitly win
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A bad setting or an unreadable config file. Messages name the flag and what is valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value out of range or of the wrong form.
    #[error("--{flag} {value}: {expected}")]
    Invalid {
        /// Flag name without dashes, e.g. `workers` (the file key is the same in snake_case).
        flag: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with line and column.
        message: String,
    },
}

/// A `workers` value in the file: a number or the word `unbounded`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileWorkers {
    Count(i64),
    Word(String),
}

/// A `cpus` value in the file: `"0,1"` or `[0, 1]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileCpus {
    List(Vec<i64>),
    Text(String),
}

/// The TOML file: the flags' names in snake_case, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    workers: Option<FileWorkers>,
    backlog: Option<u32>,
    on_disconnect: Option<OnDisconnect>,
    cpu_ms: Option<f64>,
    cpu_dist: Option<CpuDistName>,
    cpu_sigma: Option<f64>,
    sleep_ms: Option<f64>,
    bytes: Option<usize>,
    status: Option<u16>,
    cpus: Option<FileCpus>,
    seed: Option<u64>,
}

fn invalid(flag: &'static str, value: impl ToString, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        expected,
    }
}

impl Args {
    /// Merges the file (if any) under the flags and validates the result into the listen address
    /// and the [`Config`] `serve` takes.
    pub fn resolve(&self) -> Result<(SocketAddr, Config), ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = self
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|_| invalid("listen", &listen_text, "expected IP:PORT, e.g. 127.0.0.1:0"))?;
        let workers = match (&self.workers, file.workers) {
            (Some(text), _) => parse_workers(text)?,
            (None, Some(FileWorkers::Word(text))) => parse_workers(&text)?,
            (None, Some(FileWorkers::Count(n))) => parse_workers(&n.to_string())?,
            (None, None) => Workers::Unbounded,
        };
        let backlog = self.backlog.or(file.backlog).unwrap_or(1024);
        if backlog == 0 || backlog > 65_535 {
            return Err(invalid("backlog", backlog, "expected 1 to 65535"));
        }
        let cpu_ms = check_ms("cpu-ms", self.cpu_ms.or(file.cpu_ms).unwrap_or(0.0))?;
        let sleep_ms = check_ms("sleep-ms", self.sleep_ms.or(file.sleep_ms).unwrap_or(0.0))?;
        let sigma = self
            .cpu_sigma
            .or(file.cpu_sigma)
            .unwrap_or(DEFAULT_CPU_SIGMA);
        if !(sigma.is_finite() && sigma > 0.0 && sigma <= 10.0) {
            return Err(invalid(
                "cpu-sigma",
                sigma,
                "expected a number above 0 and at most 10",
            ));
        }
        let cpu_dist = match self
            .cpu_dist
            .or(file.cpu_dist)
            .unwrap_or(CpuDistName::Constant)
        {
            CpuDistName::Constant => CpuDist::Constant,
            CpuDistName::Exponential => CpuDist::Exponential,
            CpuDistName::Lognormal => CpuDist::Lognormal { sigma },
        };
        let bytes = self.bytes.or(file.bytes).unwrap_or(2);
        if bytes > MAX_BYTES {
            return Err(invalid(
                "bytes",
                bytes,
                "expected at most 67108864 (64 MiB)",
            ));
        }
        let status = self.status.or(file.status).unwrap_or(200);
        check_status(status).map_err(|expected| invalid("status", status, expected))?;
        let cpus = match (&self.cpus, file.cpus) {
            (Some(text), _) => Some(parse_cpus(text)?),
            (None, Some(FileCpus::Text(text))) => Some(parse_cpus(&text)?),
            (None, Some(FileCpus::List(list))) => Some(cpu_list(&list)?),
            (None, None) => None,
        };
        let config = Config {
            workers,
            backlog,
            on_disconnect: self
                .on_disconnect
                .or(file.on_disconnect)
                .unwrap_or(OnDisconnect::Run),
            cpu_ms,
            cpu_dist,
            sleep_ms,
            bytes,
            status,
            cpus,
            seed: self.seed.or(file.seed).unwrap_or(1),
        };
        Ok((listen, config))
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses `unbounded` or a positive worker count.
pub fn parse_workers(text: &str) -> Result<Workers, ConfigError> {
    const EXPECTED: &str = "expected a worker count from 1 to 4096 or `unbounded`";
    if text.trim().eq_ignore_ascii_case("unbounded") {
        return Ok(Workers::Unbounded);
    }
    match text.trim().parse::<usize>() {
        Ok(n) if n <= 4096 => NonZeroUsize::new(n)
            .map(Workers::Pool)
            .ok_or_else(|| invalid("workers", text, EXPECTED)),
        _ => Err(invalid("workers", text, EXPECTED)),
    }
}

/// Parses a CPU list such as `0`, `0,1` or `0-3,6`.
pub fn parse_cpus(text: &str) -> Result<Vec<usize>, ConfigError> {
    const EXPECTED: &str = "expected CPU numbers like `0`, `0,1` or `0-3`";
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        match (first, last) {
            (Ok(a), Ok(b)) if a <= b && b <= MAX_CPU_INDEX => cpus.extend(a..=b),
            _ => return Err(invalid("cpus", text, EXPECTED)),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn cpu_list(list: &[i64]) -> Result<Vec<usize>, ConfigError> {
    let text = format!("{list:?}");
    let mut cpus = Vec::with_capacity(list.len());
    for &cpu in list {
        match usize::try_from(cpu) {
            Ok(cpu) if cpu <= MAX_CPU_INDEX => cpus.push(cpu),
            _ => {
                return Err(invalid(
                    "cpus",
                    &text,
                    "expected CPU numbers from 0 to 1023",
                ));
            }
        }
    }
    if cpus.is_empty() {
        return Err(invalid("cpus", &text, "expected at least one CPU"));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn check_ms(flag: &'static str, ms: f64) -> Result<f64, ConfigError> {
    if ms.is_finite() && (0.0..=MAX_WORK_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(invalid(flag, ms, "expected milliseconds from 0 to 3600000"))
    }
}

/// Accepts final statuses only: a 1xx would leave the client waiting for a second response.
pub fn check_status(status: u16) -> Result<u16, &'static str> {
    if (200..=599).contains(&status) {
        Ok(status)
    } else {
        Err("expected an HTTP status from 200 to 599")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let (listen, config) = Args::default().resolve().unwrap();
        assert_eq!(listen.to_string(), "127.0.0.1:0");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn workers_table() {
        let cases: &[(&str, Option<Workers>)] = &[
            ("unbounded", Some(Workers::Unbounded)),
            ("UNBOUNDED", Some(Workers::Unbounded)),
            ("4", Some(Workers::Pool(NonZeroUsize::new(4).unwrap()))),
            ("0", None),
            ("-1", None),
            ("many", None),
            ("5000", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_workers(text).ok(), *want, "{text}");
        }
    }

    #[test]
    fn cpus_table() {
        let cases: &[(&str, Option<Vec<usize>>)] = &[
            ("0", Some(vec![0])),
            ("0,1", Some(vec![0, 1])),
            ("1,0,1", Some(vec![0, 1])),
            ("0-3", Some(vec![0, 1, 2, 3])),
            ("3-1", None),
            ("", None),
            ("a", None),
            ("99999", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_cpus(text).ok(), *want, "{text}");
        }
    }

    #[test]
    fn bad_values_name_the_flag() {
        let args = Args {
            cpu_ms: Some(-1.0),
            ..Args::default()
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.starts_with("--cpu-ms -1:"), "{err}");
        let args = Args {
            status: Some(99),
            ..Args::default()
        };
        assert!(
            args.resolve()
                .unwrap_err()
                .to_string()
                .contains("--status 99")
        );
    }

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("mock-upstream-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("upstream.toml");
        std::fs::write(
            &path,
            "workers = 3\ncpu_ms = 5.5\ncpu_dist = \"lognormal\"\ncpus = [1, 0]\non_disconnect = \"cancel\"\n",
        )
        .unwrap();
        let args = Args {
            config: Some(path.clone()),
            cpu_ms: Some(7.0),
            ..Args::default()
        };
        let (_, config) = args.resolve().unwrap();
        assert_eq!(config.workers, Workers::Pool(NonZeroUsize::new(3).unwrap()));
        assert_eq!(config.cpu_ms, 7.0);
        assert_eq!(config.cpu_dist, CpuDist::Lognormal { sigma: 0.5 });
        assert_eq!(config.cpus, Some(vec![0, 1]));
        assert_eq!(config.on_disconnect, OnDisconnect::Cancel);

        std::fs::write(&path, "wokers = 3\n").unwrap();
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("wokers"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
