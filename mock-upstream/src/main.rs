//! The `mock-upstream` binary: parses flags, calls [`mock_upstream::run`], and owns the exit
//! code (0 stopped by a signal, 2 bad settings, 1 anything else).

use clap::Parser;

/// A CPU-bound HTTP upstream with processor sharing, worker pools and ground-truth accounting.
///
/// Prints `listening on ADDR` as its first stdout line, then serves until SIGTERM or Ctrl-C.
/// Query parameters per request: cpu_ms, sleep_ms, bytes, status. Endpoints: GET /accounting,
/// GET /requests (requests that carried an x-request-id), GET /metrics, POST /accounting/reset,
/// POST /slow?cpu_factor=F&sleep_ms=D (every request's CPU times F plus D ms of sleep; POST /slow
/// alone ends it), GET /healthz.
#[derive(Debug, Parser)]
#[command(
    name = "mock-upstream",
    version,
    after_help = "Examples:\n  mock-upstream --workers unbounded --cpus 0\n  mock-upstream --workers 4 --backlog 64 --cpu-ms 20 --cpu-dist exponential\n\nExit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime error, 2 bad settings."
)]
struct Cli {
    #[command(flatten)]
    args: mock_upstream::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match mock_upstream::run(cli.args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mock-upstream: {err:#}");
            if err.downcast_ref::<mock_upstream::ConfigError>().is_some() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
