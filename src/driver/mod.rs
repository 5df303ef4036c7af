//! The open-loop load driver.
//!
//! Takes a [`Plan`] (target address, request templates, phases, threads)
//! and hands back [`DriverOutput`]: merged totals and one row per interval.
//! It starts one [`shard`] thread per driver thread, gives them a common
//! start time once their connections are warm, merges what they report,
//! and stops them early when told to. It knows nothing of scenario files,
//! components or reports.

pub mod http1;
pub mod request_log;
pub mod shard;
pub mod worker;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};
use crate::record::{IntervalMerger, IntervalRow, IntervalSnapshot, Totals};
pub use crate::scenario::Load;
use crate::scenario::{Phase, Scenario};
use crate::sys;

/// One request, encoded once and written as is by every arrival.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// The request's bytes on the wire.
    pub bytes: Bytes,
    /// True for HEAD, whose response has no body.
    pub head: bool,
    /// Where each request's id goes in `bytes` (with `[client] request_ids`).
    pub id_at: Option<usize>,
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
    /// Client timeout, counted from the intended send time.
    pub timeout: Duration,
}

/// Everything the driver needs, resolved from a scenario, a target URL and a load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Target socket address.
    pub addr: SocketAddr,
    /// The keys, in scenario order (one unnamed plan when there are no keys).
    pub keys: Vec<KeyPlan>,
    /// What to offer.
    pub load: Load,
    /// Driver threads.
    pub threads: usize,
    /// Connection cap over all threads.
    pub max_connections: usize,
    /// Seed of the schedule and key mix.
    pub seed: u64,
    /// Reporting interval.
    pub interval: Duration,
    /// Give every request an `x-request-id` and keep per-request records.
    pub request_ids: bool,
}

impl Plan {
    /// Resolves `scenario` against the base URL `target` (`http://host:port`)
    /// for `load`.
    pub fn new(scenario: &Scenario, target: &str, load: Load) -> Result<Plan> {
        let uri: Uri = target
            .parse()
            .map_err(|e| Error::Usage(format!("target {target:?} is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(Error::Usage(format!(
                "target {target:?}: only http:// targets are supported"
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| Error::Usage(format!("target {target:?} has no host:port")))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host().trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .map_err(|e| Error::Usage(format!("target {target:?}: cannot resolve host: {e}")))?
            .next()
            .ok_or_else(|| Error::Usage(format!("target {target:?}: host has no address")))?;

        let threads = scenario
            .client
            .threads
            .unwrap_or_else(default_threads)
            .max(1);
        let method = Method::from_bytes(scenario.request.method.as_bytes())
            .map_err(|e| Error::Usage(format!("method {:?}: {e}", scenario.request.method)))?;
        let encoder = Encoder {
            scenario,
            method: &method,
            authority: authority.as_str(),
        };
        let keys = if scenario.keys.is_empty() {
            vec![KeyPlan {
                name: None,
                weight: 1.0,
                request: encoder.template(&scenario.request.path, &[], None)?,
                timeout: scenario.client.timeout,
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
                    })
                })
                .collect::<Result<_>>()?
        };
        Ok(Plan {
            addr,
            keys,
            load,
            threads,
            max_connections: scenario.client.max_connections,
            seed: scenario.client.seed,
            interval: scenario.client.interval,
            request_ids: scenario.client.request_ids,
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

/// Encodes a scenario's request for one key, checked with hyper's rules so
/// that what goes on the wire is valid HTTP.
struct Encoder<'a> {
    scenario: &'a Scenario,
    method: &'a Method,
    authority: &'a str,
}

impl Encoder<'_> {
    fn template(
        &self,
        path: &str,
        extra: &[(String, String)],
        key: Option<&str>,
    ) -> Result<RequestTemplate> {
        let scenario = self.scenario;
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in scenario.request.headers.iter().chain(extra) {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::Usage(format!("header name {name:?}: {e}")))?;
            HeaderValue::from_str(value)
                .map_err(|e| Error::Usage(format!("header {name}: {e}")))?;
            // A key's header replaces the request's header of that name.
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        if let Some(key) = key {
            HeaderValue::from_str(key)
                .map_err(|e| Error::Usage(format!("key name {key:?}: {e}")))?;
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-api-key"));
            headers.push(("x-api-key".to_string(), key.to_string()));
        }
        if scenario.client.request_ids {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(request_log::ID_HEADER));
            headers.push((
                request_log::ID_HEADER.to_string(),
                request_log::ID_PLACEHOLDER.to_string(),
            ));
        }
        path.parse::<Uri>().map_err(|e| {
            Error::Usage(format!(
                "request path {}: {e}",
                crate::scenario::quoted(path)
            ))
        })?;
        let bytes = http1::encode_request(
            self.method.as_str(),
            path,
            self.authority,
            &headers,
            scenario.request.body.as_bytes(),
        );
        let id_at = if scenario.client.request_ids {
            request_log::placeholder_at(&bytes)
        } else {
            None
        };
        Ok(RequestTemplate {
            bytes,
            head: self.method == Method::HEAD,
            id_at,
        })
    }
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
}

/// Runs `plan` to its end, or until `stop` turns true. `on_interval` sees
/// each interval row as it completes (for progress display).
pub fn run(
    plan: &Plan,
    stop: watch::Receiver<bool>,
    on_interval: &mut dyn FnMut(&IntervalRow),
) -> Result<DriverOutput> {
    run_observed(plan, stop, &mut |_| {}, on_interval)
}

/// [`run`], also telling `on_start` the common start time of the shards
/// (CLOCK_MONOTONIC ns) as soon as it is set: interval `i` covers
/// `start + i x interval` to the next, so a watcher can read the target
/// at the same boundaries.
pub fn run_observed(
    plan: &Plan,
    stop: watch::Receiver<bool>,
    on_start: &mut dyn FnMut(u64),
    on_interval: &mut dyn FnMut(&IntervalRow),
) -> Result<DriverOutput> {
    let (to_coordinator, from_shards) = mpsc::channel();
    let mut starts = Vec::new();
    let mut handles = Vec::new();
    for shard_plan in shard_plans(plan) {
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
        collected.take(msg, &mut starts, on_start, on_interval);
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
    Ok(collected.finish(plan, *stop.borrow(), on_interval))
}

/// Each shard's share of `plan`: its keys, phases, connections and records.
fn shard_plans(plan: &Plan) -> Vec<shard::ShardPlan> {
    let shards = plan.threads;
    let keys: Arc<[shard::ShardKey]> = plan
        .keys
        .iter()
        .zip(plan.key_cdf())
        .map(|(k, cdf)| shard::ShardKey {
            request: k.request.clone(),
            timeout_ns: k.timeout.as_nanos().min(u64::MAX as u128) as u64,
            cdf,
        })
        .collect();
    let tracked_keys = plan.key_names().len();
    let phases: Arc<[Phase]> = plan.load.phases().into();
    let per_shard_cap = plan.max_connections.div_ceil(shards).max(1);
    // Enough for about 1 ms of arrivals at the peak rate, and a few more;
    // none in closed loop, whose connections belong to its own clients.
    let warm = match plan.load {
        Load::Closed { .. } => 0,
        Load::Open(_) => ((plan.load.peak_rate_per_s() / shards as f64 / 1000.0).ceil() as usize
            + 4)
        .min(per_shard_cap)
        .min(256),
    };
    (0..shards)
        .map(|shard| shard::ShardPlan {
            shard,
            shards,
            addr: plan.addr,
            keys: keys.clone(),
            tracked_keys,
            phases: phases.clone(),
            seed: plan.seed,
            max_connections: per_shard_cap,
            warm_connections: warm,
            // Shard k of n takes every n-th of the closed-loop connections.
            closed_loop: plan
                .load
                .closed_loop()
                .map_or(0, |c| c / shards + usize::from(shard < c % shards)),
            run_ns: plan.load.duration().as_nanos().min(u64::MAX as u128) as u64,
            interval_ns: plan.interval.as_nanos().max(1) as u64,
            request_log: plan
                .request_ids
                .then(|| (request_log::RECORDS_PER_RUN / shards).max(1)),
        })
        .collect()
}

/// What the coordinator gathers from the shards as they run.
struct Collected {
    shards: usize,
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
        on_start: &mut dyn FnMut(u64),
        on_interval: &mut dyn FnMut(&IntervalRow),
    ) {
        match msg {
            ShardMsg::Ready => {
                self.ready += 1;
                if self.ready == self.shards {
                    // A common start a little ahead, so no shard begins late.
                    self.start_ns = sys::monotonic_ns() + 2_000_000;
                    for tx in starts.drain(..) {
                        let _ = tx.send(self.start_ns);
                    }
                    on_start(self.start_ns);
                }
            }
            ShardMsg::Interval(snapshot) => {
                for row in self.merger.add(*snapshot) {
                    on_interval(&row);
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

    /// The run's output once every shard has ended.
    fn finish(
        mut self,
        plan: &Plan,
        interrupted: bool,
        on_interval: &mut dyn FnMut(&IntervalRow),
    ) -> DriverOutput {
        for row in self.merger.finish() {
            on_interval(&row);
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
        }
    }
}
