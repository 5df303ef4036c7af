//! `mock-upstream`: a CPU-bound HTTP upstream with processor sharing, worker pools and
//! ground-truth accounting, for measuring what a gateway does under contention.
//!
//! Each request burns real CPU until its thread's own CPU clock has advanced by the requested
//! amount (so its CPU cost is exact and its wall time stretches with contention), optionally
//! sleeps, and replies with the requested size and status. Per API key it counts what started,
//! completed, was abandoned or cancelled, and the CPU, wall and queue-wait seconds spent.
//!
//! Map of the modules, in the order a request meets them:
//! - [`config`]: flags and TOML file, validated into a [`Config`].
//! - `server`: accepts, routes, runs work on the worker model, records outcomes ([`serve`]).
//! - `work`: one request's work from its query string and the defaults.
//! - `burn`: the CPU burn against the thread CPU clock.
//! - `burners`: the threads that run unbounded work, one per job in flight.
//! - [`accounting`]: the per-key counters and their JSON and Prometheus renderings.
//! - [`requests`]: the bounded per-request log of requests that carried an `x-request-id`
//!   (`GET /requests`), for joining the upstream's truth with a client's records.
//! - `sys`: the only `unsafe`: thread CPU clock, CPU affinity, socket peeking.
//!
//! [`run`] is the process entry (runtime, signals, the `listening on ADDR` line); [`serve`] is the
//! in-process entry tests use.

#![deny(missing_docs)]

pub mod accounting;
pub mod burn;
mod burners;
pub mod config;
pub mod requests;
mod server;
mod sys;
mod work;

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;

pub use config::{Args, Config, ConfigError, CpuDist, OnDisconnect, Workers};
pub use server::serve;

/// Threads that may burn unbounded CPU work at once (tokio may start as many more to queue what
/// exceeds it). Unbounded means every in-flight request burns at once; this only stops a runaway
/// load from exhausting the process's threads.
const MAX_BLOCKING_THREADS: usize = 10_000;

/// Runs the mock upstream as a process: validates `args`, pins the process if `--cpus` is given,
/// binds, prints `listening on ADDR` as the first stdout line, and serves until SIGTERM or
/// SIGINT. Bad settings come back as a [`ConfigError`] in the chain.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (listen, config) = args.resolve()?;
    if let Some(cpus) = &config.cpus {
        // Pinning the main thread before the runtime exists pins every thread it creates: the
        // I/O workers and the CPU burners alike, which is what modelling a smaller machine needs.
        sys::pin_current_thread(cpus).map_err(|e| ConfigError::Invalid {
            flag: "cpus",
            value: cpus
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            expected: affinity_reason(e),
        })?;
    }
    // available_parallelism honours the affinity mask just set.
    let io_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One core: all I/O on one thread (the CPU work still goes to threads
    // of its own), without handing each connection from the accepting
    // thread to a worker and waking them for each other.
    let mut builder = if io_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(io_threads);
        builder
    };
    let runtime = builder
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("mock-io")
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = runtime.block_on(serve_until_signal(listen, config));
    // Burning threads may be deep in a long request; the process is ending, so do not wait.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

/// `sched_setaffinity` fails with EINVAL when none of the CPUs exist or are allowed.
fn affinity_reason(e: std::io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::EINVAL) {
        "none of these CPUs is available to this process"
    } else {
        "could not set CPU affinity"
    }
}

async fn serve_until_signal(listen: SocketAddr, config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers go in before the address is printed: a harness may send SIGTERM the moment it
    // has read the line, and that must be a clean stop, not the default kill.
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .context("creating the listening socket")?;
    socket.set_reuseaddr(true).context("setting SO_REUSEADDR")?;
    socket.bind(listen).map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another process listens there: stop it, or pick a free port; --listen 127.0.0.1:0 \
             takes any)"
        } else {
            ""
        };
        anyhow::Error::new(e).context(format!("binding {listen}{fix}"))
    })?;
    let listener = socket
        .listen(config.backlog)
        .with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}").context("writing to stdout")?;
    stdout.flush().context("flushing stdout")?;
    drop(stdout);
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    serve(listener, config, shutdown).await.context("serving")?;
    Ok(())
}
