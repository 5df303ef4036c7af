//! Times the whole driver per request, through its public API: a [`Plan`]
//! made from flags as `contend run` makes one, handed to [`driver::run`],
//! in a closed loop of 0.2 s on one driver thread against an in-process
//! server that answers 204 (hyper's `auto` builder, HTTP/1.1 and h2, on its
//! own thread and runtime; behind tokio-rustls for the TLS cases, with a
//! certificate made for the bench and trusted through `[client] tls.ca`):
//!
//! - `driver_http1_4_connections_204`: HTTP/1.1 cleartext, 4 connections;
//! - `driver_h2c_100_streams_1_connection_204`: h2 with prior knowledge,
//!   100 streams on one connection;
//! - `driver_https_http1_4_connections_204`: HTTP/1.1 over TLS;
//! - `driver_h2_tls_100_streams_1_connection_204`: h2 over TLS (ALPN).
//!
//! One iteration is one request: each sample runs the driver as often as it
//! takes to complete the requests asked for and reports the runs' load time
//! (the driver's own `duration_s`: connections opened, handshakes and all,
//! but not the threads' start or the merge at the end) per request
//! completed, so the figure is the time per request and the throughput is
//! requests per second. On 2 cores the server has one and the driver the
//! other, so the figure is the slower of the two sides' costs, and it moves
//! with whatever else the machine runs; printed after the timings, over
//! every run each case made, is the driver thread's own CPU per request:
//! the client's side alone, and steadier.
//!
//! It matters because these are the paths a run's every request takes
//! (the HTTP/2 connection task and stream workers, the TLS stream, the
//! closed loop's re-sends), and a change to them shows here as a cost per
//! request before it shows in a `peers.sh` comparison.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use contend::driver::{self, Plan, Protocol};
use contend::outcome::Class;
use contend::scenario::{self, Experiment, Overrides};
use contend::shutdown::Stop;
use contend::topology::cert::{self, LOOPBACK_NAMES, RunCertificate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::Empty;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

mod util;

/// How long each run's closed loop sends: short enough that a case takes
/// seconds (a sample is a run or two), long enough that opening the
/// connections is a small share of it.
const RUN: Duration = Duration::from_millis(200);
/// HTTP/1.1 clients (connections) of the closed loop.
const HTTP1_CONNECTIONS: usize = 4;
/// HTTP/2 clients (streams), all on one connection.
const H2_STREAMS: usize = 100;

/// Starts a 204 server on a loopback port on its own thread and runtime,
/// speaking HTTP/1.1 and h2 (h2c with prior knowledge, or by ALPN behind
/// `tls`); it lives until the bench process exits.
fn start_server(tls: Option<TlsAcceptor>) -> SocketAddr {
    util::start_server(move |stream| {
        let tls = tls.clone();
        async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(TokioIo::new(stream)).await;
                    }
                }
                None => serve(TokioIo::new(stream)).await,
            }
        }
    })
}

/// Answers every request on `io` with 204, over HTTP/1.1 or h2.
async fn serve<I>(io: I)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
        let mut response = Response::new(Empty::<Bytes>::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok::<_, Infallible>(response)
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

/// The server side of `certificate`, offering h2 and HTTP/1.1 by ALPN.
fn acceptor(certificate: &RunCertificate) -> TlsAcceptor {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certificate.cert_path)
        .expect("certificate file")
        .map(|c| c.expect("certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&certificate.key_path).expect("key file");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// One case: its name and the plan it runs.
struct Case {
    name: &'static str,
    plan: Plan,
    protocol: Protocol,
}

/// A closed loop of `clients` against `url` for [`RUN`] on one driver
/// thread; over h2 (`http2`) the clients are streams on one connection;
/// `ca` is trusted through `[client] tls.ca`.
fn case(
    name: &'static str,
    url: &str,
    clients: usize,
    http2: bool,
    ca: Option<&RunCertificate>,
) -> Case {
    let mut scenario = scenario::from_overrides(&Overrides {
        target: Some(url.to_string()),
        connections: Some(clients),
        duration: Some(RUN),
        threads: Some(1),
        http2,
        ..Overrides::default()
    })
    .expect("flags make a scenario");
    if http2 {
        scenario.client.streams_per_connection = Some(clients as u32);
        scenario.client.max_connections = 1;
    }
    scenario.client.tls.ca = ca.map(|c| c.ca_path.clone());
    let Experiment::Run(load) = scenario.experiment.clone() else {
        panic!("flags make a run");
    };
    let plan = Plan::new(&scenario, url, load).expect("plan");
    let protocol = if http2 {
        Protocol::Http2
    } else {
        Protocol::Http1
    };
    Case {
        name,
        plan,
        protocol,
    }
}

/// What one run of the driver did.
struct Run {
    /// Requests answered (every one with 204).
    requests: u64,
    /// The load's time, s.
    load_s: f64,
    /// The driver thread's CPU, ns.
    driver_cpu_ns: u64,
}

/// Runs `case` once, checking that every request was answered 204 over the
/// protocol asked for: a run that failed must not pass for a fast one.
fn run_once(case: &Case, stop: &Stop) -> Run {
    let out = driver::run(&case.plan, stop.receiver(), &mut |_| {}).expect("driver runs");
    let t = &out.totals;
    let answered = t.counts.class(Class::Success);
    assert!(answered > 0, "{}: no request answered", case.name);
    assert_eq!(
        t.counts.statuses().collect::<Vec<_>>(),
        vec![(204, t.arrivals)],
        "{}: every request answered 204",
        case.name
    );
    assert_eq!(out.protocol, case.protocol, "{}", case.name);
    assert_eq!(out.tls, case.plan.tls.is_some(), "{}", case.name);
    Run {
        requests: answered,
        load_s: out.duration_s,
        driver_cpu_ns: t.driver_cpu_ns,
    }
}

fn bench_driver(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let certificate = cert::make(dir.path(), "", &LOOPBACK_NAMES).expect("certificate");
    let plain = start_server(None);
    let tls = start_server(Some(acceptor(&certificate)));
    let http = format!("http://{plain}/");
    let https = format!("https://{tls}/");
    let cases = [
        case(
            "driver_http1_4_connections_204",
            &http,
            HTTP1_CONNECTIONS,
            false,
            None,
        ),
        case(
            "driver_h2c_100_streams_1_connection_204",
            &http,
            H2_STREAMS,
            true,
            None,
        ),
        case(
            "driver_https_http1_4_connections_204",
            &https,
            HTTP1_CONNECTIONS,
            false,
            Some(&certificate),
        ),
        case(
            "driver_h2_tls_100_streams_1_connection_204",
            &https,
            H2_STREAMS,
            true,
            Some(&certificate),
        ),
    ];
    let stop = Stop::never();

    let mut group = c.benchmark_group("driver");
    // Each sample is at least one whole run: ten keep a case to seconds.
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let mut cpu = Vec::with_capacity(cases.len());
    for case in &cases {
        // Over every run the case made (warm-up included): requests, the
        // driver thread's CPU, ns, and runs.
        let (mut all_requests, mut all_cpu_ns, mut runs) = (0, 0, 0);
        group.bench_function(case.name, |b| {
            b.iter_custom(|requests_asked| {
                let (mut requests, mut load_s) = (0, 0.0);
                while requests < requests_asked {
                    let run = run_once(case, &stop);
                    requests += run.requests;
                    load_s += run.load_s;
                    all_cpu_ns += run.driver_cpu_ns;
                    runs += 1;
                }
                all_requests += requests;
                Duration::from_secs_f64(load_s * requests_asked as f64 / requests as f64)
            })
        });
        cpu.push((case.name, all_requests, all_cpu_ns, runs));
    }
    group.finish();
    // The client's side alone, steadier than the time on a shared machine.
    for (name, requests, cpu_ns, runs) in cpu {
        println!(
            "{name}: driver thread CPU {:.2} us/request ({requests} requests in {runs} runs)",
            cpu_ns as f64 / 1e3 / requests.max(1) as f64
        );
    }
}

criterion_group!(benches, bench_driver);
criterion_main!(benches);
