//! The request path: route, apply the policies in order, forward to the
//! upstream over a pooled client, answer, and write the access line.
//!
//! Takes a request from a hyper connection; hands on a response, one access
//! record (to the log, the budget, `/metrics` and an optional tap), and the
//! outcome to the breaker. Client aborts: hyper drops a request's future
//! when its client closes the connection mid-request. In `early` mode that
//! future owns the upstream request, so dropping it drops the upstream
//! request (closing that pooled connection, as nginx does) and the
//! [`Entry`] guard logs 499 in its `Drop`. In `complete` mode the work runs
//! as a task of its own that outlives the client and logs its real end.
//! `POST /_contend/slow?delay_ms=D` (a harness's `[[faults]] action =
//! "slow"`) adds D ms before every request's policies; `POST
//! /_contend/slow` alone ends it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::http::uri::{PathAndQuery, Uri};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::OwnedSemaphorePermit;

use crate::access_log::{AccessRecord, LogSink, secs};
use crate::config::{AbortAccounting, Config, Policies};
use crate::policy::breaker::{Breaker, BreakerState, Pass};
use crate::policy::budget::KeyBudget;
use crate::policy::concurrency::{ConcurrencyLimit, Refused};
use crate::policy::gcra::Gcra;
use crate::store::{SharedLimit, Verdict};

/// Largest request body forwarded (nginx's `client_max_body_size` default).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Headers that belong to one hop and are not forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

type Body = Full<Bytes>;

/// The upstream's base URL, parsed once.
enum Upstream {
    /// `http://HOST:PORT` (what a loaded config holds): a request's path
    /// and query are set on a copy, with no parsing.
    Base(Uri),
    /// Anything else a config built in code may hold: the path and query
    /// are appended to the text and the whole parsed, per request.
    Other(String),
}

impl Upstream {
    fn new(text: &str) -> Upstream {
        match text.parse::<Uri>() {
            Ok(uri)
                if uri.scheme().is_some()
                    && uri.authority().is_some()
                    && matches!(uri.path(), "" | "/")
                    && uri.query().is_none() =>
            {
                Upstream::Base(uri)
            }
            _ => Upstream::Other(text.to_string()),
        }
    }
}

/// Everything requests share.
pub(crate) struct Gateway {
    pub(crate) config: Config,
    upstream: Upstream,
    client: Client<HttpConnector, Body>,
    pub(crate) routes: Vec<RouteState>,
    log: Option<LogSink>,
    pub(crate) metrics: Metrics,
    /// `[store]`: the rate limits counted in the shared store.
    pub(crate) shared: Option<Arc<SharedLimit>>,
    /// `POST /_contend/slow`'s delay before each request, us (0: none).
    slow_delay_us: AtomicU64,
}

/// Counters for `/metrics`. Atomics on the request path; the per-key map is
/// touched once per request, when its line is written.
pub(crate) struct Metrics {
    /// Responses per status code (index = status, 0..600).
    pub(crate) by_status: Vec<AtomicU64>,
    /// Requests in flight to the upstream.
    pub(crate) upstream_in_flight: AtomicI64,
    /// Accounted seconds per key.
    pub(crate) accounted_s: Mutex<HashMap<String, f64>>,
}

/// A route's live policy state.
///
/// Per-key state sits in a std `Mutex<HashMap>` per policy: each lock is held
/// for one lookup and a few arithmetic operations, never across an
/// `.await`, so contention costs far less than the proxying around it (as
/// mini-redis's db.rs argues). A sharded map would only matter at rates
/// where one lock's cache line is the bottleneck, far past what a 2-core
/// gateway under test serves. Keys are never evicted: a run has few keys.
pub(crate) struct RouteState {
    pub(crate) prefix: String,
    pub(crate) policies: Policies,
    gcra: Option<(Gcra, Mutex<HashMap<String, Instant>>)>,
    budgets: Mutex<HashMap<String, KeyBudget>>,
    pub(crate) concurrency: Option<ConcurrencyLimit>,
    pub(crate) breaker: Option<Mutex<Breaker>>,
}

impl RouteState {
    fn new(prefix: String, policies: Policies, now: Instant) -> RouteState {
        RouteState {
            gcra: policies
                .rate_limit
                .map(|r| (Gcra::new(r.rate_per_s, r.burst), Mutex::new(HashMap::new()))),
            budgets: Mutex::new(HashMap::new()),
            concurrency: policies.concurrency.map(ConcurrencyLimit::new),
            breaker: policies.breaker.map(|b| Mutex::new(Breaker::new(b, now))),
            prefix,
            policies,
        }
    }

    /// The breaker's state now (closed when there is none).
    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker
            .as_ref()
            .map_or(BreakerState::Closed, |b| lock(b).state(Instant::now()))
    }
}

/// A lock whose poisoning (a panic elsewhere mid-update of plain numbers)
/// leaves values that are still the best there are.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gateway {
    pub(crate) fn new(
        config: Config,
        shared: Option<Arc<SharedLimit>>,
    ) -> std::io::Result<Gateway> {
        let log = match &config.access_log {
            Some(path) => Some(LogSink::open(path)?),
            None => None,
        };
        let mut connector = HttpConnector::new();
        // Small requests on pooled keep-alive connections must not wait for Nagle.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let now = Instant::now();
        let routes = config
            .routes
            .iter()
            .map(|r| RouteState::new(r.prefix.clone(), r.policies.clone(), now))
            .collect();
        Ok(Gateway {
            upstream: Upstream::new(&config.upstream),
            config,
            client,
            routes,
            log,
            metrics: Metrics {
                by_status: (0..600).map(|_| AtomicU64::new(0)).collect(),
                upstream_in_flight: AtomicI64::new(0),
                accounted_s: Mutex::new(HashMap::new()),
            },
            shared,
            slow_delay_us: AtomicU64::new(0),
        })
    }

    /// Waits until every access line so far is on disk.
    pub(crate) fn flush_log(&self) {
        if let Some(log) = &self.log {
            log.flush();
        }
    }

    /// The most specific route for `path` (routes are sorted longest first).
    fn route_for(&self, path: &str) -> Option<usize> {
        self.routes.iter().position(|r| path.starts_with(&r.prefix))
    }

    /// Writes the access line and feeds the same event to the budget and
    /// the metrics: what is logged is what is accounted.
    fn record(&self, route: Option<usize>, record: AccessRecord) {
        let now = Instant::now();
        if let Some(slot) = self.metrics.by_status.get(usize::from(record.status)) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        if record.accounted_s > 0.0 {
            // Looked up first, so a known key (nearly every request) costs no allocation.
            let mut accounted = lock(&self.metrics.accounted_s);
            match accounted.get_mut(record.key.as_str()) {
                Some(total) => *total += record.accounted_s,
                None => {
                    accounted.insert(record.key.clone(), record.accounted_s);
                }
            }
            drop(accounted);
            if let Some(route) = route.map(|i| &self.routes[i])
                && let Some(rule) = &route.policies.budget
            {
                lock(&route.budgets)
                    .entry(record.key.clone())
                    .or_insert_with(|| KeyBudget::new(rule, now))
                    .charge(secs(record.accounted_s), now);
            }
        }
        if let Some(log) = &self.log {
            log.write(record.format(self.config.access_log_format));
        }
        if let Some(tap) = &self.config.tap {
            let _ = tap.send(record);
        }
    }
}

/// One request's log entry, from arrival to its line. Dropped unfinished
/// (the client left and hyper dropped the request's future) it logs what
/// nginx logs then: 499, upstream status `-`, upstream time until now.
struct Entry {
    gateway: Arc<Gateway>,
    route: Option<usize>,
    key: String,
    /// Its `x-request-id`, logged to join the line with the client's and
    /// the upstream's records (the header is forwarded as it is).
    request_id: Option<String>,
    method: String,
    path: String,
    arrived: Instant,
    upstream_started: Option<Instant>,
    finished: bool,
}

impl Entry {
    fn finish(&mut self, status: u16, upstream_status: Option<u16>) {
        self.finished = true;
        let upstream_time = self.upstream_started.map(|s| s.elapsed().as_secs_f64());
        self.write(
            status,
            upstream_status,
            upstream_time,
            upstream_time.unwrap_or(0.0),
        );
    }

    /// Called once per entry (by `finish` or by `Drop`), so it moves its
    /// strings into the record instead of copying them.
    fn write(
        &mut self,
        status: u16,
        upstream_status: Option<u16>,
        upstream_time: Option<f64>,
        accounted_s: f64,
    ) {
        let record = AccessRecord {
            time: chrono::Utc::now(),
            key: std::mem::take(&mut self.key),
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            status,
            request_time_s: self.arrived.elapsed().as_secs_f64(),
            upstream_status,
            upstream_response_time_s: upstream_time,
            accounted_s,
            request_id: self.request_id.take(),
        };
        self.gateway.record(self.route, record);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let upstream_time = self.upstream_started.map(|s| s.elapsed().as_secs_f64());
        // An abort charges its time so far, or the configured fixed period
        // (the seed's Lua bouncer bug), but only if the upstream had it.
        let accounted = match (upstream_time, self.gateway.config.abort_charge) {
            (None, _) => 0.0,
            (Some(_), Some(charge)) => charge.as_secs_f64(),
            (Some(t), None) => t,
        };
        self.write(499, None, upstream_time, accounted);
    }
}

/// Counts a request in flight to the upstream for as long as it lives.
struct InFlight<'a>(&'a AtomicI64);

impl<'a> InFlight<'a> {
    fn new(counter: &'a AtomicI64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A breaker pass that must be settled: an unsettled probe (its client
/// left) gives its place back when dropped.
struct BreakerTicket<'a> {
    breaker: &'a Mutex<Breaker>,
    pass: Pass,
    settled: bool,
}

impl BreakerTicket<'_> {
    fn settle(mut self, error: bool) {
        self.settled = true;
        lock(self.breaker).record(self.pass, error, Instant::now());
    }
}

impl Drop for BreakerTicket<'_> {
    fn drop(&mut self) {
        if !self.settled && self.pass == Pass::Probe {
            lock(self.breaker).release_probe();
        }
    }
}

fn respond(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

fn too_many(wait: Duration) -> Response<Body> {
    let mut response = respond(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
    // Whole seconds, rounded up, never 0: a client that waits that long passes.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Serves one request.
pub(crate) async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => return respond(StatusCode::OK, "ok\n"),
        "/metrics" => {
            let mut response =
                Response::new(Full::new(Bytes::from(crate::metrics::render(&gateway))));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return response;
        }
        "/_contend/slow" if req.method() == hyper::Method::POST => {
            return match slow_delay_us(req.uri().query()) {
                Ok(us) => {
                    gateway.slow_delay_us.store(us, Ordering::Relaxed);
                    respond(StatusCode::OK, "slow\n")
                }
                Err(()) => respond(
                    StatusCode::BAD_REQUEST,
                    "expected delay_ms=D, 0 to 60000, or no query\n",
                ),
            };
        }
        _ => {}
    }
    let key = req
        .headers()
        .get(gateway.config.key_header.as_str())
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("-")
        .to_string();
    let path = req.uri().path_and_query().map_or_else(
        || req.uri().path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let entry = Entry {
        route: gateway.route_for(req.uri().path()),
        gateway: gateway.clone(),
        key,
        request_id: req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        method: req.method().to_string(),
        path,
        arrived: Instant::now(),
        upstream_started: None,
        finished: false,
    };
    match gateway.config.abort_accounting {
        AbortAccounting::Early => pipeline(gateway, req, entry).await,
        AbortAccounting::Complete => {
            // The work is a task of its own: it runs on when the client
            // leaves and this future is dropped, and logs its real end.
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let _ = tx.send(pipeline(gateway, req, entry).await);
            });
            rx.await.unwrap_or_else(|_| {
                respond(StatusCode::INTERNAL_SERVER_ERROR, "gateway task failed\n")
            })
        }
    }
}

/// `POST /_contend/slow`'s query: `delay_ms=D` (0 to 60 000), or none (0).
fn slow_delay_us(query: Option<&str>) -> Result<u64, ()> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(0);
    };
    let ms = query
        .strip_prefix("delay_ms=")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| (0.0..=60_000.0).contains(ms))
        .ok_or(())?;
    Ok((ms * 1000.0).round() as u64)
}

/// The policies in order, then the upstream.
///
/// The numbered steps are the order in which a request meets them; the
/// policies (1 to 4) are `admit`'s, in that order, and each may end the
/// request with its own status.
async fn pipeline(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
    mut entry: Entry,
) -> Response<Body> {
    let Some(route_index) = entry.route else {
        return refuse(&mut entry, respond(StatusCode::NOT_FOUND, "no route\n"));
    };
    // 0. A slowdown a harness set (`/_contend/slow`), before any policy.
    let slow_us = gateway.slow_delay_us.load(Ordering::Relaxed);
    if slow_us > 0 {
        tokio::time::sleep(Duration::from_micros(slow_us)).await;
    }
    let route = &gateway.routes[route_index];
    // 1 to 4. The policies.
    let admitted = match admit(&gateway, route, &mut entry).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    // 5. The upstream, the request body read whole first, under its timeout.
    let upstream_req = match upstream_request(&gateway.upstream, req).await {
        Ok(r) => r,
        Err(status) => return refuse(&mut entry, respond(status, "bad request body\n")),
    };
    entry.upstream_started = Some(Instant::now());
    let _in_flight = InFlight::new(&gateway.metrics.upstream_in_flight);
    let forwarded = forward(
        &gateway.client,
        upstream_req,
        route.policies.upstream_timeout,
    )
    .await;
    let status = match &forwarded {
        Forwarded::Answered(parts, _) => parts.status,
        Forwarded::Failed => StatusCode::BAD_GATEWAY,
        Forwarded::TimedOut => StatusCode::GATEWAY_TIMEOUT,
    };
    // 6. The outcome: to the breaker, the access line, the client.
    if let Some(ticket) = admitted.ticket {
        ticket.settle(status.is_server_error());
    }
    // nginx logs its own 502/504 as the upstream status too.
    entry.finish(status.as_u16(), Some(status.as_u16()));
    match forwarded {
        Forwarded::Answered(mut parts, bytes) => {
            // The upstream's parts are reused, its end-to-end headers kept
            // in place; the length is the server's to set for the body.
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            parts.version = hyper::Version::HTTP_11;
            parts.extensions = hyper::http::Extensions::new();
            Response::from_parts(parts, Full::new(bytes))
        }
        Forwarded::Failed => respond(status, "upstream failed\n"),
        Forwarded::TimedOut => respond(status, "upstream timed out\n"),
    }
}

/// What admission took, held until the upstream is done.
struct Admitted<'a> {
    /// The breaker's pass, settled by the upstream's answer.
    ticket: Option<BreakerTicket<'a>>,
    /// The concurrency limit's slot.
    _permit: Option<OwnedSemaphorePermit>,
}

/// The policies, each of which may end the request with its own status.
///
/// The numbered steps are the order in which the policies apply: read top
/// to bottom, the order is the code. A refusal is logged here, while what
/// the steps before it took (a concurrency slot) is still held.
async fn admit<'a>(
    gateway: &Gateway,
    route: &'a RouteState,
    entry: &mut Entry,
) -> Result<Admitted<'a>, Response<Body>> {
    let now = Instant::now();
    // 1. Per-key rate limit: in the shared store, or in memory.
    rate_limit(gateway, route, &entry.key, now)
        .await
        .map_err(|r| refuse(entry, r.response()))?;
    // 2. Per-key worker-time budget.
    budget(route, &entry.key, now).map_err(|r| refuse(entry, r.response()))?;
    // 3. Concurrency limit (the slot is held until the upstream is done).
    let permit = concurrency(route)
        .await
        .map_err(|r| refuse(entry, r.response()))?;
    // 4. Circuit breaker.
    let ticket = breaker(route).map_err(|r| refuse(entry, r.response()))?;
    Ok(Admitted {
        ticket,
        _permit: permit,
    })
}

/// Logs an answer the gateway gives itself, before the upstream has the
/// request (no route, a policy's refusal, a bad body), as the request's
/// end, and hands it on.
fn refuse(entry: &mut Entry, response: Response<Body>) -> Response<Body> {
    entry.finish(response.status().as_u16(), None);
    response
}

/// Why a policy refused a request (the response is built only once it is
/// the answer).
enum Refusal {
    /// 429 with `Retry-After`: over the rate limit or the budget.
    TooMany(Duration),
    /// 503: the shared rate-limit store is down and the gateway fails closed.
    StoreUnavailable,
    /// 503 over the concurrency limit, with the rule's `Retry-After` if any.
    OverConcurrency(Option<Duration>),
    /// 503 while the circuit breaker is open.
    CircuitOpen,
}

impl Refusal {
    /// The answer to the client.
    fn response(self) -> Response<Body> {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        match self {
            Refusal::TooMany(wait) => too_many(wait),
            Refusal::StoreUnavailable => respond(unavailable, "rate-limit store unavailable\n"),
            Refusal::OverConcurrency(retry_after) => {
                let mut response = respond(unavailable, "over the concurrency limit\n");
                if let Some(wait) = retry_after {
                    // Whole seconds, rounded up (RFC 9110 delay-seconds).
                    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            Refusal::CircuitOpen => respond(unavailable, "circuit open\n"),
        }
    }
}

/// Step 1: `key`'s rate limit, counted in the shared store when there is
/// one, else in this process.
async fn rate_limit(
    gateway: &Gateway,
    route: &RouteState,
    key: &str,
    now: Instant,
) -> Result<(), Refusal> {
    let Some((gcra, tats)) = &route.gcra else {
        return Ok(());
    };
    if let Some(shared) = &gateway.shared {
        return match shared.check(&route.prefix, key, *gcra).await {
            Verdict::Admit | Verdict::FailOpen => Ok(()),
            Verdict::Limited(wait) => Err(Refusal::TooMany(wait)),
            Verdict::FailClosed => Err(Refusal::StoreUnavailable),
        };
    }
    let mut tats = lock(tats);
    let new_tat = gcra
        .check(tats.get(key).copied(), now)
        .map_err(Refusal::TooMany)?;
    tats.insert(key.to_string(), new_tat);
    Ok(())
}

/// Step 2: `key`'s worker-time budget.
fn budget(route: &RouteState, key: &str, now: Instant) -> Result<(), Refusal> {
    let Some(rule) = &route.policies.budget else {
        return Ok(());
    };
    lock(&route.budgets)
        .entry(key.to_string())
        .or_insert_with(|| KeyBudget::new(rule, now))
        .check(rule, now)
        .map_err(Refusal::TooMany)
}

/// Step 3: a slot under the route's concurrency limit, waiting in its
/// queue if it has one.
async fn concurrency(route: &RouteState) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
    let Some(limit) = &route.concurrency else {
        return Ok(None);
    };
    match limit.acquire().await {
        Ok(permit) => Ok(Some(permit)),
        Err(Refused::Full | Refused::QueueTimeout) => {
            Err(Refusal::OverConcurrency(limit.rule().retry_after))
        }
    }
}

/// Step 4: a pass through the route's circuit breaker.
fn breaker(route: &RouteState) -> Result<Option<BreakerTicket<'_>>, Refusal> {
    let Some(breaker) = &route.breaker else {
        return Ok(None);
    };
    match lock(breaker).admit(Instant::now()) {
        Some(pass) => Ok(Some(BreakerTicket {
            breaker,
            pass,
            settled: false,
        })),
        None => Err(Refusal::CircuitOpen),
    }
}

/// How the upstream call ended.
enum Forwarded {
    /// The upstream answered, its whole body read.
    Answered(hyper::http::response::Parts, Bytes),
    /// The connection or the exchange failed.
    Failed,
    /// The route's upstream timeout passed first.
    TimedOut,
}

/// Step 5: sends `req` upstream and reads the whole answer, under
/// `timeout`; dropped (the client left, in `early` mode), it drops the
/// upstream request.
async fn forward(
    client: &Client<HttpConnector, Body>,
    req: Request<Body>,
    timeout: Option<Duration>,
) -> Forwarded {
    let exchange = async {
        let response = client.request(req).await.map_err(|_| ())?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|_| ())?.to_bytes();
        Ok::<_, ()>((parts, bytes))
    };
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => return Forwarded::TimedOut,
        },
        None => exchange.await,
    };
    match result {
        Ok((parts, bytes)) => Forwarded::Answered(parts, bytes),
        Err(()) => Forwarded::Failed,
    }
}

/// The request to send upstream: same method, path, query and end-to-end
/// headers; the body read whole first (nginx's `proxy_request_buffering`).
async fn upstream_request(
    upstream: &Upstream,
    req: Request<Incoming>,
) -> Result<Request<Body>, StatusCode> {
    let (mut parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)?
        .to_bytes();
    // The client's parts are reused, headers and all, with the hop's own
    // taken out: no header is copied.
    let pq = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = match upstream {
        Upstream::Base(base) => {
            let mut uri = base.clone().into_parts();
            uri.path_and_query = Some(pq);
            Uri::from_parts(uri).ok()
        }
        Upstream::Other(text) => format!("{text}{pq}").parse::<Uri>().ok(),
    }
    .ok_or(StatusCode::BAD_REQUEST)?;
    parts.version = hyper::Version::HTTP_11;
    parts.extensions = hyper::http::Extensions::new();
    strip_hop_by_hop(&mut parts.headers);
    // The client sets Host from the upstream URI, as nginx's $proxy_host.
    parts.headers.remove(hyper::header::HOST);
    Ok(Request::from_parts(parts, Full::new(body)))
}

/// Takes out the headers that belong to one hop.
fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    for name in HOP_BY_HOP {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::slow_delay_us;

    #[test]
    fn the_slow_endpoint_takes_a_delay_in_ms_or_nothing() {
        let cases: &[(Option<&str>, Result<u64, ()>)] = &[
            (None, Ok(0)),
            (Some(""), Ok(0)),
            (Some("delay_ms=50"), Ok(50_000)),
            (Some("delay_ms=0.5"), Ok(500)),
            (Some("delay_ms=-1"), Err(())),
            (Some("delay_ms=60001"), Err(())),
            (Some("delay=5"), Err(())),
        ];
        for (query, want) in cases {
            assert_eq!(slow_delay_us(*query), *want, "{query:?}");
        }
    }
}
