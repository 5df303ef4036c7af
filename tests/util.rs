//! Test servers on loopback port 0 and helpers to run the driver.
//!
//! Each server runs on its own thread and stops when its handle drops.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use contend::driver::{self, DriverOutput, Plan};
use contend::scenario::{self, Overrides, Rate};
use contend::shutdown::Stop;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// A server thread, stopped when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A server listening at `addr` on `thread`, which `stop` ends.
    pub fn new(
        addr: SocketAddr,
        stop: impl FnOnce() + Send + 'static,
        thread: std::thread::JoinHandle<()>,
    ) -> Server {
        Server {
            addr,
            stop: Some(Box::new(stop)),
            thread: Some(thread),
        }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback server on a thread of its own with a current-thread
/// runtime: each accepted connection goes to `handle` in a task of its own.
/// Stops accepting when dropped.
pub fn tokio_server<F>(handle: impl Fn(tokio::net::TcpStream) -> F + Send + 'static) -> Server
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                    _ = &mut stop_rx => return,
                };
                tokio::spawn(handle(stream));
            }
        });
    });
    Server::new(
        addr,
        move || {
            let _ = stop_tx.send(());
        },
        thread,
    )
}

/// A hyper server answering 204 after `delay(now)`: HTTP/1.1, and HTTP/2
/// with prior knowledge (h2c).
pub fn http_server(
    delay: impl Fn(tokio::time::Instant) -> Duration + Send + Sync + 'static,
) -> Server {
    let delay = Arc::new(delay);
    tokio_server(move |stream| {
        let delay = delay.clone();
        async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let wait = delay(tokio::time::Instant::now());
                async move {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .status(204)
                            .body(Full::new(Bytes::new()))
                            .unwrap(),
                    )
                }
            });
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
        }
    })
}

/// A raw TCP server: `on_conn` runs on its own thread for each connection.
/// Stops accepting when dropped.
pub fn raw_server(on_conn: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let on_conn = Arc::new(on_conn);
    let stopped = Arc::new(AtomicBool::new(false));
    let stopped_in_loop = stopped.clone();
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stopped_in_loop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(stream) = stream else { continue };
            let on_conn = on_conn.clone();
            std::thread::spawn(move || on_conn(stream));
        }
    });
    let stop = move || {
        stopped.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect(addr);
    };
    Server {
        addr,
        stop: Some(Box::new(stop)),
        thread: Some(thread),
    }
}

/// Reads one request head (up to the blank line) from `stream`.
pub fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&byte[..n]),
        }
    }
    true
}

/// Writes `bytes` and closes.
pub fn answer_and_close(mut stream: TcpStream, bytes: &'static [u8]) {
    if read_request_head(&mut stream) {
        let _ = stream.write_all(bytes);
    }
}

/// Whether a real component a test needs (nginx, ...) is installed:
/// `found` is the harness's own lookup. Missing under `CI=true` it fails
/// the test, since CI installs it (`.ci/run`); elsewhere it prints that
/// `test` is skipped and why, and the test returns early.
pub fn component_present<T, E: std::fmt::Display>(test: &str, found: Result<T, E>) -> bool {
    match found {
        Ok(_) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test} needs a component CI installs (.ci/run), and it is missing: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            false
        }
    }
}

/// Held by each test that measures a CPU-bound upstream against a truth
/// or a model (the abort audits, the find-limit searches): two at once
/// would share the cores and stretch every request's wall time.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for this test's turn to measure (see [`MEASURING`]).
pub fn one_measurement_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    MEASURING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Overrides for a flag-only run against `url`.
pub fn overrides(url: &str, rate_per_s: f64, duration: Duration) -> Overrides {
    Overrides {
        target: Some(url.to_string()),
        rate: Some(Rate::Constant(rate_per_s)),
        duration: Some(duration),
        ..Overrides::default()
    }
}

/// Runs the driver with `overrides` to its end.
pub fn drive(overrides: &Overrides) -> DriverOutput {
    let scenario = scenario::from_overrides(overrides).expect("valid overrides");
    drive_scenario(&scenario, overrides.target.as_deref().unwrap())
}

/// The driver's plan for `scenario` (a run) against `url`.
pub fn run_plan(scenario: &contend::scenario::Scenario, url: &str) -> Plan {
    let contend::scenario::Experiment::Run(load) = scenario.experiment.clone() else {
        panic!("the scenario is a run");
    };
    Plan::new(scenario, url, load).expect("plan")
}

/// Runs the driver with `scenario` (a run) against `url` to its end.
pub fn drive_scenario(scenario: &contend::scenario::Scenario, url: &str) -> DriverOutput {
    driver::run(
        &run_plan(scenario, url),
        Stop::never().receiver(),
        &mut |_| {},
    )
    .expect("driver runs")
}

/// Checks the driver's central invariant: one outcome per arrival.
pub fn assert_outcomes_add_up(out: &DriverOutput) {
    let t = &out.totals;
    assert_eq!(
        t.counts.total(),
        t.arrivals,
        "every arrival has exactly one outcome"
    );
    let interval_outcomes: u64 = out
        .intervals
        .iter()
        .map(|r| r.by_class.iter().sum::<u64>())
        .sum();
    assert_eq!(
        interval_outcomes, t.arrivals,
        "intervals hold every outcome"
    );
    let interval_offered: u64 = out.intervals.iter().map(|r| r.offered).sum();
    assert_eq!(interval_offered, t.arrivals, "intervals hold every arrival");
}
