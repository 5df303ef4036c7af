//! `contend-gateway`: the reference gateway (`contend gateway --config
//! FILE`, or started by the harness for `[gateway] kind = "reference"`): a
//! hyper reverse proxy with the overload policies of the field, in front of
//! the upstream.
//!
//! Takes a validated [`Config`]; serves until its shutdown future ends. It
//! knows nothing of the harness that measures it (a crate of its own, so
//! the compiler holds that line). Map of the modules, in the order a
//! request meets them:
//! - [`config`]: the TOML file and its validation (also a scenario's policies).
//! - `proxy`: routing, the policies in order, the pooled upstream client,
//!   client-abort handling and the access record.
//! - [`policy`]: the policies as pure state machines (GCRA, budget,
//!   concurrency, breaker).
//! - [`access_log`]: the nginx-shaped access line, its writer thread, and the
//!   reader that turns a log (ours or nginx's) into per-key accounting.
//! - `metrics`: `/metrics` in Prometheus text.
//! - `tls`: the TLS acceptor (`tls_cert`, `tls_key`; ALPN `h2` with `http2`).
//! - [`store`]: the rate limit kept in Redis, shared by replicas (`[store]`).
//! - [`error`]: its errors and their exit codes.
//! - `sys`: the one module with `unsafe` (pinning to CPUs).
//!
//! [`run`] is the process entry (CPUs, runtime, signals, the `listening on
//! ADDR` line); [`serve`] is the in-process entry tests use. It does not
//! start the upstream: the harness does.

#![deny(missing_docs)]

pub mod access_log;
pub mod config;
pub mod error;
mod metrics;
pub mod policy;
mod proxy;
pub mod store;
mod sys;
mod tls;

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use config::{AbortAccounting, Config, Policies, RateLimitRule, Route};
pub use error::{Error, Result};
pub use policy::breaker::BreakerRule;
pub use policy::budget::BudgetRule;
pub use policy::concurrency::ConcurrencyRule;

/// Pause after an accept error such as EMFILE, so a full fd table does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves on `listener` until `shutdown` completes, then stops accepting.
/// Connections already open are not drained. With `tls` it listens with
/// TLS; with `http2` it speaks HTTP/2 beside HTTP/1.1 (ALPN `h2` over TLS,
/// prior knowledge in cleartext). Fails when the access log cannot be
/// opened or the TLS files are not usable.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let acceptor = match &config.tls {
        Some(files) => Some(tls::acceptor(files, config.http2)?),
        None => None,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if !config.http2 {
        builder = builder.http1_only();
    }
    let builder = Arc::new(builder);
    let shared = match &config.store {
        Some(store) => Some(
            store::SharedLimit::connect(store.clone())
                .await
                .map_err(|e| Error::Serve(e.0))?,
        ),
        None => None,
    };
    let log = config.access_log.clone();
    let gateway = Arc::new(
        proxy::Gateway::new(config, shared).map_err(|error| match log {
            Some(path) => Error::Io { path, error },
            None => Error::Serve(error.to_string()),
        })?,
    );
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let gateway = gateway.clone();
                    let acceptor = acceptor.clone();
                    let builder = builder.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            let gateway = gateway.clone();
                            async move { Ok::<_, std::convert::Infallible>(proxy::handle(gateway, req).await) }
                        });
                        // A connection error is the client's business (reset, early close,
                        // a failed handshake); the access log already holds what matters.
                        match acceptor {
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                            Some(acceptor) => {
                                if let Ok(tls) = acceptor.accept(stream).await {
                                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                                }
                            }
                        }
                    });
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    // Lines of requests already answered must not be lost when the process exits.
    let flushing = gateway.clone();
    let _ = tokio::task::spawn_blocking(move || flushing.flush_log()).await;
    Ok(())
}

/// The gateway as a process (`contend gateway`): pins itself to the
/// config's `cpus`, builds its runtime, binds, prints `listening on ADDR`
/// first on stdout, and serves until SIGTERM or SIGINT. The caller loads the
/// config ([`config::load`]) and applies its own flags first.
pub fn run(config: Config) -> Result<()> {
    if let Some(cpus) = &config.cpus {
        // Pinned before the runtime exists, so every thread inherits the mask.
        sys::pin_current_thread(cpus)
            .map_err(|e| Error::Usage(format!("cpus {cpus:?}: cannot pin the gateway: {e}")))?;
    }
    let threads = config.threads.unwrap_or_else(|| {
        config.cpus.as_ref().map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |cpus| cpus.len(),
        )
    });
    // One thread: everything on it, as an nginx worker does. A one-worker
    // multi-thread runtime would hand every accepted connection from the
    // accepting thread to its worker and wake them for each other,
    // paying context switches per request.
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    let runtime = builder
        .thread_name("gateway")
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("building the gateway runtime: {e}")))?;
    let result = runtime.block_on(serve_until_signal(config));
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

async fn serve_until_signal(config: Config) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers go in before the address is printed: a harness may send
    // SIGTERM the moment it has read the line.
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| Error::Serve(format!("SIGTERM handler: {e}")))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| Error::Serve(format!("SIGINT handler: {e}")))?;
    // Unusable TLS files are told before the address, not after it.
    if let Some(files) = &config.tls {
        tls::acceptor(files, config.http2)?;
    }
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                ": another process listens there (`ss -ltnp 'sport = :{}'` shows which); stop it, \
                 or pick a free port (--listen 127.0.0.1:0 takes any)",
                config.listen.port()
            )
        } else {
            String::new()
        };
        Error::Serve(format!("cannot listen on {}: {e}{fix}", config.listen))
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Serve(format!("reading the bound address: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Serve(format!("writing to stdout: {e}")))?;
    drop(stdout);
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    serve(listener, config, shutdown).await
}
