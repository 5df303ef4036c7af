//! The open-loop load driver.
//!
//! Takes a [`Plan`] (target address, TLS client, HTTP version, request
//! templates, phases, threads) and hands back [`DriverOutput`]: merged
//! totals and one row per interval. It starts one [`shard`] thread per
//! driver thread, gives them a common start time once their connections
//! are warm, merges what they report, and stops them early when told to.
//! It knows nothing of scenario files, components or reports.
//!
//! The connection layer: [`conn`] opens a connection (TCP, then TLS from
//! [`tls`]); over it [`http1`] (one request at a time, by the [`worker`]s)
//! or `http2` (a stream per arrival) speak.

mod budget;
pub mod conn;
pub mod http1;
mod http2;
pub mod key_space;
mod pacer;
pub mod pacing;
mod queue;
mod request;
pub mod request_log;
pub mod retry;
pub mod shard;
pub mod tls;
pub mod worker;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use hyper::{Method, Uri};
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};
use crate::record::{Alpn, IntervalMerger, IntervalRow, IntervalSnapshot, Totals};
pub use crate::scenario::Load;
use crate::scenario::{HttpVersion, Phase, RetrySpec, Scenario, Shard};
use crate::sys;
use conn::Dialer;
use request::Encoder;
pub use request::{H2Request, RequestTemplate};
use tls::{ALPN_H2, ALPN_HTTP11, TlsClient};

/// The HTTP version spoken on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: one request at a time per connection.
    Http1,
    /// HTTP/2: a stream per arrival, many per connection.
    Http2,
}

impl Protocol {
    /// `HTTP/1.1` or `HTTP/2`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// One API key as the driver sends it: its request, its deadline and its
/// weight in the mix. A scenario without keys has one plan with no name.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    /// The key (`x-api-key`); `None`: requests carry no key.
    pub name: Option<String>,
    /// Relative weight in the mix (> 0).
    pub weight: f64,
    /// The key's request, encoded.
    pub request: RequestTemplate,
    /// Client timeout of each attempt, counted from its intended send time.
    pub timeout: Duration,
    /// Its retry policy (the key's, else the client's); `None`: no retries.
    pub retry: Option<RetrySpec>,
    /// A generated key space whose key each arrival draws (`name` is then
    /// `None`: its keys are counted compactly, not as named keys).
    pub space: Option<Arc<key_space::KeyDraw>>,
}

/// Everything the driver needs, resolved from a scenario, a target URL and a load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Target socket address.
    pub addr: SocketAddr,
    /// Further addresses of the same target (gateway replicas, `[target]
    /// urls`): connections are spread over `addr` and these in turn.
    pub more_addrs: Vec<SocketAddr>,
    /// The TLS client, for an `https://` target.
    pub tls: Option<TlsClient>,
    /// The HTTP version asked for (`auto` is settled when the run starts).
    pub http: HttpVersion,
    /// HTTP/2: the most streams per connection asked for.
    pub streams_per_connection: Option<usize>,
    /// False: a new connection per request.
    pub reuse: bool,
    /// The keys, in scenario order (one unnamed plan when there are no keys).
    pub keys: Vec<KeyPlan>,
    /// What to offer.
    pub load: Load,
    /// Driver threads.
    pub threads: usize,
    /// Connection cap over all threads.
    pub max_connections: usize,
    /// Past the cap an arrival waits for a free connection or stream
    /// (`[client] wait_at_max`); else it is counted `not_sent`.
    pub wait_at_max: bool,
    /// Seed of the schedule and key mix.
    pub seed: u64,
    /// Reporting interval.
    pub interval: Duration,
    /// Arrivals due within this long of a pacer wake go out together.
    pub pacing_window: Duration,
    /// Widest the pacing window may grow while a driver thread is short of
    /// CPU (equal to `pacing_window`: fixed).
    pub pacing_window_max: Duration,
    /// `[client] lag_bound` (what it does: [`shard::ShardPlan::late_ns`]).
    pub lag_bound: Duration,
    /// Give every request an `x-request-id` and keep per-request records.
    pub request_ids: bool,
    /// This process's share of a load split over several processes.
    pub shard: Shard,
    /// When the load begins on the wall clock (`--start-at`); `None`: as
    /// soon as the connections are warm.
    pub start_at: Option<SystemTime>,
}

impl Plan {
    /// Resolves `scenario` against the base URL `target` (`http://host:port`
    /// or `https://host:port`) for `load`.
    pub fn new(scenario: &Scenario, target: &str, load: Load) -> Result<Plan> {
        Plan::trusting(scenario, target, load, None)
    }

    /// [`Plan::new`], trusting also the CA in `ca_pem` (one the harness
    /// made for a gateway it started with TLS).
    pub fn trusting(
        scenario: &Scenario,
        target: &str,
        load: Load,
        ca_pem: Option<&[u8]>,
    ) -> Result<Plan> {
        let uri: Uri = target
            .parse()
            .map_err(|e| Error::Usage(format!("target {target:?} is not a URL: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(Error::Usage(format!(
                    "target {target:?}: only http:// and https:// targets are supported"
                )));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| Error::Usage(format!("target {target:?} has no host:port")))?
            .clone();
        let addr = resolve(target)?;

        let threads = scenario
            .client
            .threads
            .unwrap_or_else(default_threads)
            .max(1);
        let method = Method::from_bytes(scenario.request.method.as_bytes())
            .map_err(|e| Error::Usage(format!("method {:?}: {e}", scenario.request.method)))?;
        let client = &scenario.client;
        let tls = if https {
            let alpn: &[&[u8]] = match client.http {
                HttpVersion::Http1 => &[ALPN_HTTP11],
                HttpVersion::Http2 => &[ALPN_H2],
                HttpVersion::Auto => &[ALPN_H2, ALPN_HTTP11],
            };
            Some(TlsClient::new(&client.tls, authority.host(), alpn, ca_pem)?)
        } else {
            None
        };
        let encoder = Encoder {
            scenario,
            method: &method,
            authority: authority.as_str(),
            scheme: if https { "https" } else { "http" },
        };
        let keys = if scenario.keys.is_empty() {
            // A generated key space is one template whose key is written
            // per arrival over a placeholder of the same width.
            let placeholder = scenario
                .key_space
                .as_ref()
                .map(key_space::KeyDraw::placeholder);
            let request = encoder.template(&scenario.request.path, &[], placeholder.as_deref())?;
            let space = match &scenario.key_space {
                Some(space) => Some(Arc::new(key_space::KeyDraw::new(space, &request.bytes)?)),
                None => None,
            };
            vec![KeyPlan {
                name: None,
                weight: 1.0,
                request,
                timeout: scenario.client.timeout,
                retry: scenario.client.retry.clone().filter(RetrySpec::is_on),
                space,
            }]
        } else {
            scenario
                .keys
                .iter()
                .map(|key| {
                    let path = key.path.as_deref().unwrap_or(&scenario.request.path);
                    Ok(KeyPlan {
                        name: Some(key.name.clone()),
                        weight: key.weight,
                        request: encoder.template(path, &key.headers, Some(&key.name))?,
                        timeout: key.timeout.unwrap_or(scenario.client.timeout),
                        retry: key
                            .retry
                            .as_ref()
                            .or(scenario.client.retry.as_ref())
                            .filter(|r| r.is_on())
                            .cloned(),
                        space: None,
                    })
                })
                .collect::<Result<_>>()?
        };
        // `[target] urls`: the driver sends to the first and these in turn
        // when it drives that target itself (not a gateway in front of it).
        let more_addrs = match &scenario.target {
            crate::scenario::Target::Urls(first, more) if first == target => {
                more.iter().map(|u| resolve(u)).collect::<Result<_>>()?
            }
            _ => Vec::new(),
        };
        Ok(Plan {
            addr,
            more_addrs,
            tls,
            http: client.http,
            streams_per_connection: client.streams_per_connection.map(|n| n as usize),
            reuse: client.reuse,
            keys,
            load,
            threads,
            max_connections: scenario.client.max_connections,
            wait_at_max: scenario.client.wait_at_max,
            seed: scenario.client.seed,
            interval: scenario.client.interval,
            pacing_window: scenario.client.pacing_window,
            pacing_window_max: scenario.client.pacing_window_max,
            lag_bound: scenario.client.lag_bound,
            request_ids: scenario.client.request_ids,
            shard: scenario.client.shard,
            start_at: scenario.client.start_at,
        })
    }

    /// The names of the keys whose totals are kept, in scenario order
    /// (empty when requests carry no key).
    pub fn key_names(&self) -> Vec<String> {
        self.keys.iter().filter_map(|k| k.name.clone()).collect()
    }

    fn key_cdf(&self) -> Vec<f64> {
        let total: f64 = self.keys.iter().map(|k| k.weight).sum();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = self
            .keys
            .iter()
            .map(|k| {
                acc += k.weight / total;
                acc
            })
            .collect();
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        cdf
    }
}

/// The socket address of `url` (`http://host:port`).
fn resolve(url: &str) -> Result<SocketAddr> {
    let uri: Uri = url
        .parse()
        .map_err(|e| Error::Usage(format!("target {url:?} is not a URL: {e}")))?;
    let authority = uri
        .authority()
        .ok_or_else(|| Error::Usage(format!("target {url:?} has no host:port")))?;
    let https = uri.scheme_str() == Some("https");
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    (authority.host().trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| Error::Usage(format!("target {url:?}: cannot resolve host: {e}")))?
        .next()
        .ok_or_else(|| Error::Usage(format!("target {url:?}: host has no address")))
}

/// The cores this process may run on: the default number of driver threads.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// What a shard tells the coordinator.
pub enum ShardMsg {
    /// Connections are warm; waiting for the start time.
    Ready,
    /// An interval closed.
    Interval(Box<IntervalSnapshot>),
    /// The shard ended: its totals, and when it stopped dispatching
    /// (CLOCK_MONOTONIC ns).
    Done(Box<Totals>, u64),
    /// The shard's per-request records and how many it dropped (sent
    /// before `Done`, only with request ids on).
    Requests(Vec<request_log::RequestRecord>, u64),
    /// The shard could not run.
    Failed(String),
}

/// What a run of the driver measured.
#[derive(Debug)]
pub struct DriverOutput {
    /// Totals over all shards.
    pub totals: Totals,
    /// One row per interval, in order.
    pub intervals: Vec<IntervalRow>,
    /// Time arrivals were offered for, s: the schedule's length, shorter when
    /// stopped early, longer when the driver fell behind.
    pub duration_s: f64,
    /// True when a stop signal ended the run early.
    pub interrupted: bool,
    /// Driver threads used.
    pub threads: usize,
    /// Per-request records, with `[client] request_ids` on.
    pub requests: Option<request_log::RequestLogOutput>,
    /// When the load began on the wall clock (the shards' common start).
    pub started_at: SystemTime,
    /// With `--start-at`: how late the load began against it, s (0 when on
    /// time: the connections were warm before it).
    pub start_late_s: Option<f64>,
    /// The HTTP version spoken.
    pub protocol: Protocol,
    /// True over TLS.
    pub tls: bool,
}

/// What the driver tells its caller while it runs.
pub enum Progress<'a> {
    /// The connections are warm and the load begins now.
    Began {
        /// On the wall clock (the shards' common start, or `--start-at`).
        at: SystemTime,
        /// On CLOCK_MONOTONIC, ns: interval `i` covers `start_ns + i x
        /// interval` to the next, so a watcher can read the target at the
        /// same boundaries.
        start_ns: u64,
    },
    /// An interval closed.
    Interval(&'a IntervalRow),
}

/// Runs `plan` to its end, or until `stop` turns true. `on_progress` hears
/// when the load begins and sees each interval row as it completes.
pub fn run(
    plan: &Plan,
    stop: watch::Receiver<bool>,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<DriverOutput> {
    let (to_coordinator, from_shards) = mpsc::channel();
    let mut starts = Vec::new();
    let mut handles = Vec::new();
    let (protocol, tls) = settle_protocol(plan);
    for shard_plan in shard_plans(plan, protocol, tls.as_ref()) {
        let (start_tx, start_rx) = oneshot::channel();
        starts.push(start_tx);
        let tx = to_coordinator.clone();
        let stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("contend-driver-{}", shard_plan.shard))
            .spawn(move || shard::run(shard_plan, tx, start_rx, stop))
            .map_err(|e| Error::Runtime(format!("cannot start driver thread: {e}")))?;
        handles.push(handle);
    }
    drop(to_coordinator);
    let mut collected = Collected::new(plan);
    // The channel closes once every shard has ended and dropped its sender.
    while let Ok(msg) = from_shards.recv() {
        collected.take(msg, &mut starts, on_progress);
    }
    for handle in handles {
        if handle.join().is_err() {
            collected
                .failure
                .get_or_insert_with(|| "a driver thread panicked".to_string());
        }
    }
    if let Some(message) = collected.failure.take() {
        return Err(Error::Runtime(message));
    }
    let mut output = collected.finish(plan, *stop.borrow(), on_progress);
    output.protocol = protocol;
    Ok(output)
}

/// The HTTP version to speak and the TLS client to speak it with.
/// `http = "auto"` over TLS asks the server once, before the run, what
/// ALPN agrees on (`h2` offered first); in cleartext it is HTTP/1.1. A
/// server that cannot be asked gets HTTP/1.1, and the run counts why.
fn settle_protocol(plan: &Plan) -> (Protocol, Option<TlsClient>) {
    match (plan.http, &plan.tls) {
        (HttpVersion::Http1, tls) => (Protocol::Http1, tls.clone()),
        (HttpVersion::Http2, tls) => (Protocol::Http2, tls.clone()),
        (HttpVersion::Auto, None) => (Protocol::Http1, None),
        (HttpVersion::Auto, Some(tls)) => {
            let dialer = Dialer::to(plan.addr, Some(tls.clone()));
            let agreed = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()
                .and_then(|rt| {
                    rt.block_on(async {
                        let probe = conn::open(&dialer);
                        match tokio::time::timeout(std::time::Duration::from_secs(10), probe).await
                        {
                            Ok(Ok((stream, _))) => stream.alpn(),
                            _ => None,
                        }
                    })
                });
            if agreed == Some(Alpn::H2) {
                (Protocol::Http2, Some(tls.with_alpn(&[ALPN_H2])))
            } else {
                (Protocol::Http1, Some(tls.with_alpn(&[ALPN_HTTP11])))
            }
        }
    }
}

/// Each driver thread's share of `plan`: its keys, phases, connections and
/// records. Thread t of process shard I of N is global shard I + N t of
/// N T, so that the threads of all processes together interleave into the
/// single-process schedule (see `arrival`), whatever threads each has.
fn shard_plans(plan: &Plan, protocol: Protocol, tls: Option<&TlsClient>) -> Vec<shard::ShardPlan> {
    let shards = plan.threads;
    let (process, processes) = (plan.shard.index, plan.shard.count.max(1));
    let keys: Arc<[shard::ShardKey]> = plan
        .keys
        .iter()
        .zip(plan.key_cdf())
        .map(|(k, cdf)| shard::ShardKey {
            request: k.request.clone(),
            timeout_ns: k.timeout.as_nanos().min(u64::MAX as u128) as u64,
            cdf,
            retry: k.retry.as_ref().and_then(retry::RetryPolicy::new),
            space: k.space.clone(),
        })
        .collect();
    let tracked_keys = plan.key_names().len();
    let phases: Arc<[Phase]> = plan.load.phases().into();
    let per_shard_cap = plan.max_connections.div_ceil(shards).max(1);
    let warm = match plan.load {
        // A new connection per request: none to keep warm.
        _ if !plan.reuse => 0,
        Load::Closed { .. } => 0,
        Load::Open(_) => {
            worker::warm_count(plan.load.peak_rate_per_s() / shards as f64, tls.is_some())
                .min(per_shard_cap)
        }
    };
    // This process's share of the closed-loop connections, then its threads'.
    let share = |total: usize, of: usize, part: usize| total / of + usize::from(part < total % of);
    let closed = plan
        .load
        .closed_loop()
        .map(|c| share(c, processes, process));
    let max_timeout_ns = plan
        .keys
        .iter()
        .map(|k| k.timeout.as_nanos().min(u64::MAX as u128) as u64)
        .max()
        .unwrap_or(10_000_000_000);
    (0..shards)
        .map(|shard| shard::ShardPlan {
            shard: process + processes * shard,
            shards: processes * shards,
            dialer: Dialer {
                addr: plan.addr,
                tls: tls.map(TlsClient::for_shard),
                more: plan.more_addrs.clone().into(),
                // Shards start on different replicas.
                turn: Arc::new(std::sync::atomic::AtomicUsize::new(shard)),
            },
            protocol,
            reuse: plan.reuse,
            streams_per_connection: plan.streams_per_connection,
            max_timeout_ns,
            keys: keys.clone(),
            tracked_keys,
            phases: phases.clone(),
            seed: plan.seed,
            max_connections: per_shard_cap,
            wait_at_max: plan.wait_at_max,
            warm_connections: warm,
            // Thread k of n takes every n-th of the process's connections.
            closed_loop: closed.map_or(0, |c| share(c, shards, shard)),
            run_ns: plan.load.duration().as_nanos().min(u64::MAX as u128) as u64,
            interval_ns: plan.interval.as_nanos().max(1) as u64,
            pacing_window_ns: plan.pacing_window.as_nanos().min(u64::MAX as u128) as u64,
            pacing_window_max_ns: plan.pacing_window_max.as_nanos().min(u64::MAX as u128) as u64,
            late_ns: plan.lag_bound.as_nanos().min(u64::MAX as u128) as u64,
            request_log: plan
                .request_ids
                .then(|| (request_log::RECORDS_PER_RUN / shards).max(1)),
        })
        .collect()
}

/// What the coordinator gathers from the shards as they run.
struct Collected {
    shards: usize,
    start_at: Option<SystemTime>,
    started_at: SystemTime,
    start_late_s: Option<f64>,
    ready: usize,
    failure: Option<String>,
    merger: IntervalMerger,
    intervals: Vec<IntervalRow>,
    totals: Totals,
    start_ns: u64,
    dispatch_end_ns: u64,
    requests: Option<request_log::RequestLogOutput>,
}

impl Collected {
    fn new(plan: &Plan) -> Collected {
        Collected {
            shards: plan.threads,
            start_at: plan.start_at,
            started_at: SystemTime::now(),
            start_late_s: None,
            ready: 0,
            failure: None,
            merger: IntervalMerger::new(plan.threads, plan.interval.as_nanos().max(1) as u64),
            intervals: Vec::new(),
            totals: Totals::new(plan.key_names().len()),
            start_ns: 0,
            dispatch_end_ns: 0,
            requests: plan
                .request_ids
                .then(request_log::RequestLogOutput::default),
        }
    }

    /// Takes one shard's message; once every shard is ready, sends them all
    /// the common start time.
    fn take(
        &mut self,
        msg: ShardMsg,
        starts: &mut Vec<oneshot::Sender<u64>>,
        on_progress: &mut dyn FnMut(Progress),
    ) {
        match msg {
            ShardMsg::Ready => {
                self.ready += 1;
                if self.ready == self.shards {
                    self.start_ns = self.common_start();
                    for tx in starts.drain(..) {
                        let _ = tx.send(self.start_ns);
                    }
                    on_progress(Progress::Began {
                        at: self.started_at,
                        start_ns: self.start_ns,
                    });
                }
            }
            ShardMsg::Interval(snapshot) => {
                for row in self.merger.add(*snapshot) {
                    on_progress(Progress::Interval(&row));
                    self.intervals.push(row);
                }
            }
            ShardMsg::Done(shard_totals, end_ns) => {
                self.totals.merge(&shard_totals);
                self.dispatch_end_ns = self.dispatch_end_ns.max(end_ns);
            }
            ShardMsg::Requests(records, dropped) => {
                if let Some(log) = self.requests.as_mut() {
                    log.records.extend(records);
                    log.dropped += dropped;
                }
            }
            ShardMsg::Failed(message) => self.failure = Some(message),
        }
    }

    /// The shards' common start (CLOCK_MONOTONIC ns): a little ahead, so no
    /// shard begins late, or at `--start-at` when that is later. Notes the
    /// start on the wall clock, and how late it is against `--start-at`.
    fn common_start(&mut self) -> u64 {
        let (now_ns, now_wall) = (sys::monotonic_ns(), SystemTime::now());
        let earliest = Duration::from_millis(2);
        let ahead = match self.start_at {
            Some(at) => match at.duration_since(now_wall) {
                Ok(wait) if wait >= earliest => {
                    self.start_late_s = Some(0.0);
                    wait
                }
                Ok(_) => {
                    self.start_late_s = Some(0.0);
                    earliest
                }
                Err(late) => {
                    self.start_late_s = Some(late.duration().as_secs_f64());
                    earliest
                }
            },
            None => earliest,
        };
        self.started_at = now_wall + ahead;
        now_ns + ahead.as_nanos() as u64
    }

    /// The run's output once every shard has ended.
    fn finish(
        mut self,
        plan: &Plan,
        interrupted: bool,
        on_progress: &mut dyn FnMut(Progress),
    ) -> DriverOutput {
        for row in self.merger.finish() {
            on_progress(Progress::Interval(&row));
            self.intervals.push(row);
        }
        let scheduled_s = plan.load.duration().as_secs_f64();
        // Load was offered until the last arrival was dispatched and sent:
        // earlier when stopped, later when the driver fell behind its schedule
        // (then the achieved rate must come out lower than the intended one).
        let dispatch_s = self
            .dispatch_end_ns
            .max(self.totals.last_sent_ns)
            .saturating_sub(self.start_ns) as f64
            / 1e9;
        let duration_s = if interrupted {
            dispatch_s.min(scheduled_s)
        } else {
            dispatch_s.max(scheduled_s)
        };
        if let Some(log) = self.requests.as_mut() {
            log.start_ns = self.start_ns;
            log.records.sort_by_key(|r| r.intended_ns);
        }
        DriverOutput {
            totals: self.totals,
            intervals: self.intervals,
            duration_s,
            interrupted,
            threads: self.shards,
            requests: self.requests,
            started_at: self.started_at,
            start_late_s: self.start_late_s,
            protocol: Protocol::Http1,
            tls: plan.tls.is_some(),
        }
    }
}
