//! Times one HTTP/1.1 request/response exchange on a warm loopback keep-alive
//! connection: contend's pre-encoded request written by the driver's own
//! `http1::Connection`, the response head parsed and its (empty) body
//! skipped, against an in-process hyper server that answers 204.
//!
//! It matters because this round trip (encode, write, wake-up, parse, read) is
//! the floor of every latency contend reports and the bulk of its CPU per
//! request: compare it with the latencies of a run against a trivial target.
//! The server runs on its own thread and runtime, so the figure includes one
//! cross-thread wake-up each way, as a real loopback target does.
//!
//! `exchange_burst_16_connections_204` times what a pacing window sends in
//! one wake: 16 requests written back to back on 16 connections, then their
//! 16 responses read as they come. Per request it is the cost the pacer pays
//! with a window wide enough to gather 16 arrivals, against the single
//! exchange's cost of an arrival sent on its own.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use contend::driver::conn::Stream;
use contend::driver::http1::Connection;
use contend::driver::{Load, Plan};
use contend::scenario::{self, Overrides, Rate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::Empty;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

mod util;

/// Starts a 204 server (HTTP/1.1, keep-alive) on a loopback port on its own
/// thread and runtime; it lives until the bench process exits.
fn start_server() -> SocketAddr {
    util::start_server(|stream| async move {
        let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
            let mut response = Response::new(Empty::<Bytes>::new());
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok::<_, Infallible>(response)
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}

fn bench_exchange(c: &mut Criterion) {
    let addr = start_server();
    let target = format!("http://{addr}");
    let scenario = scenario::from_overrides(&Overrides {
        target: Some(format!("{target}/")),
        rate: Some(Rate::Constant(10_000.0)),
        ..Overrides::default()
    })
    .expect("flags make a scenario");
    let plan = Plan::new(&scenario, &target, Load::Open(scenario.phases().to_vec())).expect("plan");
    let template = plan.keys[0].request.clone();

    // The client side as a driver shard has it: a current-thread runtime and
    // one connection, with Nagle off.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let mut connection = rt.block_on(async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Connection::new(Stream::Plain(stream))
    });

    let mut group = c.benchmark_group("exchange");
    group.throughput(Throughput::Elements(1));
    group.bench_function("exchange_loopback_keepalive_204", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (status, reusable) = connection
                    .exchange(&template.bytes, template.head)
                    .await
                    .expect("response");
                assert_eq!(status, StatusCode::NO_CONTENT.as_u16());
                assert!(reusable);
            })
        })
    });

    // A window's burst: every request written before any response is read.
    const BURST: usize = 16;
    let mut burst: Vec<Connection> = rt.block_on(async {
        let mut connections = Vec::with_capacity(BURST);
        for _ in 0..BURST {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            connections.push(Connection::new(Stream::Plain(stream)));
        }
        connections
    });
    group.throughput(Throughput::Elements(BURST as u64));
    group.bench_function("exchange_burst_16_connections_204", |b| {
        b.iter(|| {
            rt.block_on(async {
                type Exchange<'a> = Pin<
                    Box<
                        dyn Future<
                                Output = Result<(u16, bool), contend::driver::http1::ExchangeError>,
                            > + 'a,
                    >,
                >;
                let mut pending: Vec<Option<Exchange<'_>>> = burst
                    .iter_mut()
                    .map(|c| {
                        Some(Box::pin(c.exchange(&template.bytes, template.head)) as Exchange<'_>)
                    })
                    .collect();
                // Polled in order: each first poll writes its request, so all
                // are on the wire before the first response is awaited.
                std::future::poll_fn(|cx| {
                    let mut done = true;
                    for slot in pending.iter_mut() {
                        if let Some(exchange) = slot {
                            match exchange.as_mut().poll(cx) {
                                Poll::Ready(result) => {
                                    let (status, reusable) = result.expect("response");
                                    assert_eq!(status, StatusCode::NO_CONTENT.as_u16());
                                    assert!(reusable);
                                    *slot = None;
                                }
                                Poll::Pending => done = false,
                            }
                        }
                    }
                    if done { Poll::Ready(()) } else { Poll::Pending }
                })
                .await
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_exchange);
criterion_main!(benches);
