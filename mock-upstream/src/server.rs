//! The HTTP side: accepts connections, routes requests, runs their work on the configured worker
//! model and records each outcome.
//!
//! Takes a bound listener, a validated [`Config`] and a shutdown future; hands each request's
//! work to a thread (its own, or one of a fixed pool) and its outcome to [`Accounting`]. Trivial
//! requests (no CPU, no sleep) are answered inline on the I/O runtime with no thread hop. It
//! does not parse flags, build runtimes or install signal handlers: `run` does.

use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::accounting::{Accounting, Cost, NO_KEY, Outcome};
use crate::burn::burn_cpu;
use crate::burners::{self, Burners};
use crate::config::{Config, OnDisconnect, Workers};
use crate::requests::{Ended, Entry, RequestLog};
use crate::sys;
use crate::work::{self, Work};

/// Response bodies up to this size are slices of one static buffer: no allocation per reply.
const STATIC_BODY_LEN: usize = 64 * 1024;
/// `ok` followed by dots, so the default 2-byte body reads `ok`.
static BODY: [u8; STATIC_BODY_LEN] = {
    let mut body = [b'.'; STATIC_BODY_LEN];
    body[0] = b'o';
    body[1] = b'k';
    body
};

/// How often a cancellable sleep looks for a departed client: fine enough that a cancelled
/// request stops promptly, coarse enough to cost nothing.
const SLEEP_CHECK_EVERY: Duration = Duration::from_millis(5);

/// Pause after an accept error such as EMFILE, so a full fd table does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting and returns.
/// Connections already open are not drained; queued pool work is dropped and workers exit after
/// their current request.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let runner = Arc::new(Runner {
        gauges: Arc::new(Gauges::default()),
        accounting: Accounting::default(),
        requests: RequestLog::default(),
        on_disconnect: config.on_disconnect,
        cpus: config.cpus.clone(),
        burners: Burners::default(),
    });
    let pool = match config.workers {
        Workers::Unbounded => None,
        Workers::Pool(n) => Some(Pool::start(n.get(), config.backlog, runner.clone())?),
    };
    let shared = Arc::new(Shared {
        rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
        slowdown: work::Slowdown::default(),
        config,
        runner,
        pool,
    });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Small replies on keep-alive connections must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let service = Conn {
                        fd: stream.as_raw_fd(),
                        socket: OnceCell::new(),
                        shared: shared.clone(),
                    };
                    tokio::spawn(async move {
                        // A connection error is the client's business (reset, bad request);
                        // the accounting already holds what matters.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(e) if is_per_connection(&e) => {}
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    if let Some(pool) = &shared.pool {
        pool.stop();
    }
    Ok(())
}

/// Accept errors that concern one connection only and need no pause.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// What every connection shares.
struct Shared {
    config: Config,
    rng: Mutex<StdRng>,
    /// `POST /slow`'s slowdown, applied to every request's work.
    slowdown: work::Slowdown,
    runner: Arc<Runner>,
    pool: Option<Pool>,
}

/// Requests with work now: in flight (queued or running) and queued for a pool worker. Two
/// atomics touched once each per request that has work; the trivial path skips them.
#[derive(Default)]
struct Gauges {
    in_flight: AtomicI64,
    queued: AtomicI64,
}

impl Gauges {
    /// The `/metrics` lines of the gauges: in flight, queue depth, and busy workers (in flight
    /// and not queued: running their work, pool or not).
    fn to_prometheus(&self) -> String {
        let in_flight = self.in_flight.load(Ordering::Relaxed).max(0);
        let queued = self.queued.load(Ordering::Relaxed).clamp(0, in_flight);
        let mut out = String::new();
        for (name, help, value) in [
            (
                "in_flight",
                "Requests with work queued or running",
                in_flight,
            ),
            ("queue_depth", "Requests waiting for a pool worker", queued),
            (
                "busy_workers",
                "Requests whose work is running",
                in_flight - queued,
            ),
        ] {
            out.push_str(&format!(
                "# HELP mock_upstream_{name} {help}.\n# TYPE mock_upstream_{name} gauge\nmock_upstream_{name} {value}\n"
            ));
        }
        out
    }
}

/// Holds one count of a gauge while it lives.
struct Held(Arc<Gauges>, fn(&Gauges) -> &AtomicI64);

impl Held {
    fn new(gauges: &Arc<Gauges>, which: fn(&Gauges) -> &AtomicI64) -> Held {
        which(gauges).fetch_add(1, Ordering::Relaxed);
        Held(gauges.clone(), which)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a request-running thread needs: where to record, how to treat departed clients, where
/// to run. Kept apart from `Shared` so pool threads do not keep the pool itself alive.
struct Runner {
    /// In flight and queued, for `/metrics`.
    gauges: Arc<Gauges>,
    accounting: Accounting,
    /// Requests that carried an `x-request-id`, one entry each (`GET /requests`).
    requests: RequestLog,
    on_disconnect: OnDisconnect,
    cpus: Option<Vec<usize>>,
    /// The threads that burn unbounded work.
    burners: Burners,
}

/// One request's work on its way to a thread.
struct Job {
    key: String,
    /// Its `x-request-id`, when it had one: then its end is also logged per request.
    request_id: Option<String>,
    work: Work,
    enqueued: Instant,
    /// A duplicate of the connection's socket, to see the client leave even if hyper is not
    /// reading; `None` if duplicating failed, leaving only `reply` to tell. One per
    /// connection, shared by its requests.
    socket: Option<Arc<OwnedFd>>,
    /// Closed when hyper drops the request's future (it saw the connection close).
    reply: oneshot::Sender<()>,
    /// Counts it in flight until the job is dropped (concluded, or dropped from the queue).
    _in_flight: Held,
    /// Counts it queued until a pool worker takes it.
    queued: Option<Held>,
}

impl Job {
    fn client_gone(&self) -> bool {
        self.reply.is_closed()
            || self
                .socket
                .as_ref()
                .is_some_and(|fd| sys::peer_closed(fd.as_fd()))
    }
}

impl Runner {
    fn cancel_mode(&self) -> bool {
        self.on_disconnect == OnDisconnect::Cancel
    }

    /// Start of a job on the thread that will be charged for it: pins the thread, counts the
    /// start, burns the CPU. Returns the CPU report and when the work began.
    fn begin_and_burn(&self, job: &Job) -> (crate::burn::BurnReport, Instant) {
        if let Some(cpus) = &self.cpus {
            pin_once(cpus);
        }
        let began = Instant::now();
        self.accounting.start(&job.key);
        let cancel = self.cancel_mode();
        // A client that left while queued is not worth a single slice in cancel mode.
        if cancel && job.client_gone() {
            let report = crate::burn::BurnReport {
                cpu_used: Duration::ZERO,
                cancelled: true,
            };
            return (report, began);
        }
        let report = burn_cpu(job.work.cpu, || cancel && job.client_gone());
        (report, began)
    }

    /// Records the end of a job and, if the client is still there, releases its reply.
    fn conclude(&self, job: Job, cancelled: bool, cpu: Duration, began: Instant) {
        let outcome = if cancelled {
            Outcome::Cancelled
        } else if job.client_gone() {
            Outcome::Abandoned
        } else {
            Outcome::Completed
        };
        let cost = Cost {
            cpu,
            wall: began.elapsed(),
            queue_wait: began.saturating_duration_since(job.enqueued),
        };
        self.accounting.finish(&job.key, outcome, cost);
        if let Some(id) = &job.request_id {
            self.requests.push(Entry::new(
                id,
                &job.key,
                outcome.into(),
                cost,
                sys::monotonic_ns(),
            ));
        }
        if outcome == Outcome::Completed {
            // The receiver may go between the check and the send; then it was abandoned after
            // all, but the reply is lost either way and the work is already counted.
            let _ = job.reply.send(());
        }
    }

    /// The whole job on a pool thread: the sleep holds the worker, as a blocking call holds a
    /// Unicorn worker.
    fn run_blocking(&self, mut job: Job) {
        job.queued = None;
        let cpu_before = sys::thread_cpu_time();
        let (report, began) = self.begin_and_burn(&job);
        let mut cancelled = report.cancelled;
        if !cancelled && !job.work.sleep.is_zero() {
            if self.cancel_mode() {
                let until = Instant::now() + job.work.sleep;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    if job.client_gone() {
                        cancelled = true;
                        break;
                    }
                    std::thread::sleep(left.min(SLEEP_CHECK_EVERY));
                }
            } else {
                std::thread::sleep(job.work.sleep);
            }
        }
        let cpu = sys::thread_cpu_time() - cpu_before;
        self.conclude(job, cancelled, cpu, began);
    }

    /// The job with no pool: CPU on a blocking thread of its own, so every in-flight request
    /// burns at once and the OS shares the cores; the sleep on the I/O runtime, so sleeping
    /// requests hold no thread.
    async fn run_unbounded(self: Arc<Self>, job: Job) {
        let (job, report, began) = if job.work.cpu.is_zero() {
            let began = Instant::now();
            self.accounting.start(&job.key);
            let report = crate::burn::BurnReport {
                cpu_used: Duration::ZERO,
                cancelled: self.cancel_mode() && job.client_gone(),
            };
            (job, report, began)
        } else {
            let (done, burnt) = oneshot::channel();
            let runner = self.clone();
            let burn: burners::Job = Box::new(move || {
                let (report, began) = runner.begin_and_burn(&job);
                let _ = done.send((job, report, began));
            });
            if let Err(burn) = self.burners.run(burn, crate::MAX_BLOCKING_THREADS) {
                // No thread to be had: tokio's pool queues it.
                tokio::task::spawn_blocking(burn);
            }
            match burnt.await {
                Ok(done) => done,
                // Only a panic or a process shutting down lands here; nothing left to answer.
                Err(_) => return,
            }
        };
        let mut cancelled = report.cancelled;
        if !cancelled && !job.work.sleep.is_zero() {
            if self.cancel_mode() {
                let until = tokio::time::Instant::now() + job.work.sleep;
                loop {
                    let left = until.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    if job.client_gone() {
                        cancelled = true;
                        break;
                    }
                    tokio::time::sleep(left.min(SLEEP_CHECK_EVERY)).await;
                }
            } else {
                tokio::time::sleep(job.work.sleep).await;
            }
        }
        self.conclude(job, cancelled, report.cpu_used, began);
    }
}

thread_local! {
    /// The CPU list this thread was last pinned to by [`pin_once`].
    static PINNED_TO: RefCell<Option<Vec<usize>>> = const { RefCell::new(None) };
}

/// Pins the calling thread to `cpus` unless it already is: a thread runs many jobs, and a
/// `sched_setaffinity` per job was a syscall per request for nothing (threads of a process
/// that `run` pinned inherit the mask; in-process servers' threads are pinned on their first
/// job). Failing to pin would only loosen the model, and `run` already checked the list at
/// start-up; a failure is tried again on the next job.
fn pin_once(cpus: &[usize]) {
    PINNED_TO.with(|pinned| {
        let mut pinned = pinned.borrow_mut();
        if pinned.as_deref() != Some(cpus) && sys::pin_current_thread(cpus).is_ok() {
            *pinned = Some(cpus.to_vec());
        }
    });
}

/// N single-request worker threads fed by a bounded queue.
struct Pool {
    /// `None` once stopped; dropping the sender lets idle workers see the end of the queue.
    queue: Mutex<Option<SyncSender<Job>>>,
    stopping: Arc<AtomicBool>,
}

impl Pool {
    fn start(workers: usize, backlog: u32, runner: Arc<Runner>) -> io::Result<Pool> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(backlog as usize);
        // std's Receiver has one consumer; the mutex makes it a shared queue. Only the worker
        // waiting for the next job holds it, never one running a job.
        let receiver = Arc::new(Mutex::new(receiver));
        let stopping = Arc::new(AtomicBool::new(false));
        for index in 0..workers {
            let receiver = receiver.clone();
            let runner = runner.clone();
            let stopping = stopping.clone();
            std::thread::Builder::new()
                .name(format!("mock-worker-{index}"))
                .spawn(move || {
                    loop {
                        let next = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = next else { break };
                        if stopping.load(Ordering::Relaxed) {
                            break;
                        }
                        runner.run_blocking(job);
                    }
                })?;
        }
        Ok(Pool {
            queue: Mutex::new(Some(sender)),
            stopping,
        })
    }

    /// Queues a job, or hands it back (boxed: refusals are the rare path) if the queue is full
    /// (or the pool stopped).
    fn try_submit(&self, job: Job) -> Result<(), Box<Job>> {
        match &*self.queue.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(sender) => sender.try_send(job).map_err(|e| match e {
                TrySendError::Full(job) | TrySendError::Disconnected(job) => Box::new(job),
            }),
            None => Err(Box::new(job)),
        }
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Why a request's connection is closed without a reply.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    /// The worker queue was full: the connection is reset, as a full accept queue would.
    #[error("worker queue full")]
    Refused,
    /// The client left, or the server is stopping.
    #[error("client gone or server stopping")]
    Gone,
}

type Reply = Result<Response<Full<Bytes>>, Unanswered>;

/// A reply ready at once (the hot path: no box, no allocation) or one waiting on a worker.
enum ReplyFuture {
    Ready(Option<Reply>),
    Waiting(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

impl Future for ReplyFuture {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        match self.get_mut() {
            ReplyFuture::Ready(reply) => Poll::Ready(reply.take().unwrap_or(Err(Unanswered::Gone))),
            ReplyFuture::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

/// The per-connection service: the raw fd lets the slow path watch the socket and reset it.
struct Conn {
    fd: RawFd,
    /// The duplicate of `fd` that jobs watch, made at the connection's first job: one
    /// `fcntl` and one `close` per connection instead of per request.
    socket: OnceCell<Option<Arc<OwnedFd>>>,
    shared: Arc<Shared>,
}

impl Conn {
    fn socket(&self) -> Option<Arc<OwnedFd>> {
        self.socket
            .get_or_init(|| sys::dup_fd(self.fd).ok().map(Arc::new))
            .clone()
    }
}

impl hyper::service::Service<Request<Incoming>> for Conn {
    type Response = Response<Full<Bytes>>;
    type Error = Unanswered;
    type Future = ReplyFuture;

    fn call(&self, req: Request<Incoming>) -> ReplyFuture {
        let accounting = &self.shared.runner.accounting;
        let ready = |reply| ReplyFuture::Ready(Some(Ok(reply)));
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => return ready(plain(StatusCode::OK, "ok\n")),
            (&Method::GET, "/accounting") => {
                let body = accounting.snapshot().to_json();
                return ready(typed(body, "application/json"));
            }
            (&Method::GET, "/metrics") => {
                let mut body = accounting.snapshot().to_prometheus();
                body.push_str(&self.shared.runner.gauges.to_prometheus());
                return ready(typed(body, "text/plain; version=0.0.4"));
            }
            (&Method::GET, "/requests") => {
                let body = self.shared.runner.requests.document().to_json();
                return ready(typed(body, "application/json"));
            }
            (&Method::POST, "/accounting/reset") => {
                accounting.reset();
                self.shared.runner.requests.reset();
                return ready(plain(StatusCode::OK, "reset\n"));
            }
            (&Method::POST, "/slow") => {
                return ready(match self.shared.slowdown.set(req.uri().query()) {
                    Ok(()) => plain(StatusCode::OK, "slow\n"),
                    Err(message) => plain(StatusCode::BAD_REQUEST, &format!("{message}\n")),
                });
            }
            _ => {}
        }
        let work = match work::parse(req.uri().query(), &self.shared.config, &self.shared.rng) {
            Ok(work) => self.shared.slowdown.apply(work),
            Err(message) => return ready(plain(StatusCode::BAD_REQUEST, &format!("{message}\n"))),
        };
        let key = req
            .headers()
            .get("x-api-key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or(std::borrow::Cow::Borrowed(NO_KEY));
        let request_id = req
            .headers()
            .get("x-request-id")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if work.is_trivial() {
            accounting.start_and_complete(&key);
            if let Some(id) = &request_id {
                self.shared.runner.requests.push(Entry::new(
                    id,
                    &key,
                    Ended::Completed,
                    Cost::default(),
                    sys::monotonic_ns(),
                ));
            }
            return ready(work_reply(&work));
        }
        let (reply, answered) = oneshot::channel();
        let gauges = &self.shared.runner.gauges;
        let job = Job {
            key: key.into_owned(),
            request_id,
            work,
            enqueued: Instant::now(),
            socket: self.socket(),
            reply,
            _in_flight: Held::new(gauges, |g| &g.in_flight),
            queued: self
                .shared
                .pool
                .as_ref()
                .map(|_| Held::new(gauges, |g| &g.queued)),
        };
        match &self.shared.pool {
            None => {
                tokio::spawn(self.shared.runner.clone().run_unbounded(job));
            }
            Some(pool) => {
                if let Err(job) = pool.try_submit(job) {
                    accounting.refuse(&job.key);
                    if let Some(id) = &job.request_id {
                        self.shared.runner.requests.push(Entry::new(
                            id,
                            &job.key,
                            Ended::Refused,
                            Cost::default(),
                            sys::monotonic_ns(),
                        ));
                    }
                    // Best effort: without it the close is a FIN instead of a reset.
                    let _ = sys::set_zero_linger(self.fd);
                    return ReplyFuture::Ready(Some(Err(Unanswered::Refused)));
                }
            }
        }
        ReplyFuture::Waiting(Box::pin(async move {
            match answered.await {
                Ok(()) => Ok(work_reply(&work)),
                Err(_) => Err(Unanswered::Gone),
            }
        }))
    }
}

fn work_reply(work: &Work) -> Response<Full<Bytes>> {
    let body = if work.bytes <= STATIC_BODY_LEN {
        Bytes::from_static(&BODY[..work.bytes])
    } else {
        let mut body = vec![b'.'; work.bytes];
        body[..2].copy_from_slice(b"ok");
        Bytes::from(body)
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(work.status).unwrap_or(StatusCode::OK);
    response
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = typed(text.to_string(), "text/plain");
    *response.status_mut() = status;
    response
}

fn typed(body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
