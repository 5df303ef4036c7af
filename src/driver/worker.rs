//! HTTP/1.1 connection workers: each a long-lived local task that owns at
//! most one keep-alive connection (TCP, or TLS over it) and serves one
//! arrival at a time.
//!
//! Takes [`Job`]s (an arrival: key and intended send time) from the shard,
//! sends each with its client timeout, and reports exactly one outcome per
//! job through `Shared::ended`. A worker is spawned once and lives for the
//! run, so a request costs no task, allocation or channel: the shard hands
//! a job to an idle worker's [`Mailbox`] and wakes it. A connection that
//! fails, closes or times out is dropped (closing the socket, so a client
//! timeout is a real abort on the wire); the worker opens a new one for its
//! next job. With `reuse = false` every job gets a new connection.

use std::cell::Cell;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::Sleep;

use super::conn;
use super::http1::Connection;
use super::request_log::{RequestRecord, Scratch};
use super::shard::Shared;
use crate::outcome::Outcome;
use crate::record::KeyPick;
use crate::sys;

/// One attempt of an arrival, handed to a worker.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// Index of the request template (the key).
    pub key: usize,
    /// The key's number in a generated key space (`KeyPick::NO_SLOT`: none).
    pub slot: u32,
    /// The arrival's intended send time, CLOCK_MONOTONIC ns: its latency
    /// (what the caller waited) counts from here, over all its attempts.
    pub intended_ns: u64,
    /// This attempt's intended send time (the arrival's, or a retry's
    /// backoff time): its deadline and schedule lag count from here.
    pub due_ns: u64,
    /// 0 for the first attempt, n for the n-th retry.
    pub attempt: u32,
}

impl Job {
    /// Its key, as the recorder counts it.
    pub fn pick(&self) -> KeyPick {
        KeyPick {
            key: self.key,
            slot: self.slot,
        }
    }

    /// The first attempt of an arrival of `pick` intended at `intended_ns`.
    pub fn new(pick: KeyPick, intended_ns: u64) -> Job {
        Job {
            key: pick.key,
            slot: pick.slot,
            intended_ns,
            due_ns: intended_ns,
            attempt: 0,
        }
    }
}

/// Where an idle worker waits for its next job (`None`: the run is over).
pub struct Mailbox<T = Job> {
    job: Cell<Option<Option<T>>>,
    waker: Cell<Option<Waker>>,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            job: Cell::new(None),
            waker: Cell::new(None),
        }
    }
}

impl<T> Mailbox<T> {
    /// Puts the next job (or the end) in and wakes the worker.
    pub fn deliver(&self, job: Option<T>) {
        self.job.set(Some(job));
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Waits for the next job (`None`: the run is over).
    pub async fn receive(&self) -> Option<T> {
        poll_fn(|cx| match self.job.take() {
            Some(job) => Poll::Ready(job),
            None => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// Counts a worker (or a connection being opened) for as long as it lives.
struct Counted<'a>(&'a Cell<usize>);

impl<'a> Counted<'a> {
    fn new(counter: &'a Cell<usize>) -> Self {
        counter.set(counter.get() + 1);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Starts a worker with its first job (or none) and connection (or none).
/// It counts against the cap from this moment, before it first runs.
pub(super) fn spawn(shared: Rc<Shared>, first: Option<Job>) {
    spawn_with(shared, first, None);
}

fn spawn_with(shared: Rc<Shared>, first: Option<Job>, connection: Option<Connection>) {
    shared.workers.set(shared.workers.get() + 1);
    tokio::task::spawn_local(async move {
        // Takes over the count made above, whether the task runs or is dropped.
        let _slot = WorkerSlot(shared.clone());
        run(&shared, first, connection).await;
    });
}

/// Starts a closed-loop client: one connection, the next request as soon
/// as the last one ended, until `end_ns` or the shard closes. Its requests'
/// intended time is their send time, so their latency is service time.
pub(super) fn spawn_closed(shared: Rc<Shared>, end_ns: u64) {
    shared.workers.set(shared.workers.get() + 1);
    tokio::task::spawn_local(async move {
        let _slot = WorkerSlot(shared.clone());
        let mut scratch = Scratch::default();
        let mut timer = new_deadline();
        let mut connection = None;
        loop {
            let now_ns = sys::monotonic_ns();
            if now_ns >= end_ns || shared.closing.get() {
                return;
            }
            let job = Job::new(shared.next_key(), now_ns);
            shared.recorder.borrow_mut().dispatched(now_ns, 0);
            shared.in_flight.set(shared.in_flight.get() + 1);
            connection = serve(&shared, job, connection, &mut scratch, &mut timer).await;
            if connection.is_none() {
                // A refused connect can fail without ever waiting: let the
                // shard's other tasks (the interval clock, a stop) run.
                tokio::task::yield_now().await;
            }
        }
    });
}

struct WorkerSlot(Rc<Shared>);

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        self.0.workers.set(self.0.workers.get() - 1);
    }
}

/// How many connections a shard opens before the start of an open loop
/// at `rate_per_s`: enough for about 1 ms of arrivals, and a few more; over
/// TLS for 10 ms: there a connection opened during the run costs a
/// handshake of the shard's CPU (about 0.25 ms), so a start that found too
/// few would open hundreds, each one delaying the next arrivals further.
/// (None in closed loop, whose connections belong to its own clients.)
pub(super) fn warm_count(rate_per_s: f64, tls: bool) -> usize {
    let ahead_s = if tls { 0.010 } else { 0.001 };
    ((rate_per_s * ahead_s).ceil() as usize + 4).min(256)
}

/// Opens up to `n` connections ahead of the first arrival, each with an
/// idle worker; stops at the first failure (the arrivals will then count
/// the connect errors).
pub(super) async fn warm(shared: &Rc<Shared>, n: usize) {
    for _ in 0..n.min(shared.max_workers) {
        match connect(shared).await {
            Ok(connection) => spawn_with(shared.clone(), None, Some(connection)),
            Err(_) => break,
        }
    }
}

async fn run(shared: &Rc<Shared>, mut next: Option<Job>, mut connection: Option<Connection>) {
    let mailbox = Rc::new(Mailbox::default());
    // Used only with request ids on; empty and unallocated otherwise.
    let mut scratch = Scratch::default();
    let mut timer = new_deadline();
    loop {
        let queued = next.take().or_else(|| shared.queue.take());
        let job = match queued {
            Some(job) => job,
            None if shared.closing.get() => return,
            None => {
                shared.idle.borrow_mut().push(mailbox.clone());
                match mailbox.receive().await {
                    Some(job) => job,
                    None => return,
                }
            }
        };
        connection = serve(shared, job, connection, &mut scratch, &mut timer).await;
    }
}

/// A worker's client-timeout timer, kept for its life and moved to each
/// request's deadline. Deadlines only grow on a worker, and moving a tokio
/// timer later costs no lock and no wake of the runtime; a new timer per
/// request took the timer wheel's lock twice and, whenever it was the
/// earliest (at low rates, always), an eventfd write and an extra epoll
/// round to wake the runtime's own thread.
pub(super) type Deadline = Pin<Box<Sleep>>;

pub(super) fn new_deadline() -> Deadline {
    // Far off until the first request sets it.
    Box::pin(tokio::time::sleep(Duration::from_secs(86_400)))
}

/// Serves one job to its one outcome; returns the connection if it may be
/// used again.
async fn serve(
    shared: &Rc<Shared>,
    job: Job,
    connection: Option<Connection>,
    scratch: &mut Scratch,
    timer: &mut Deadline,
) -> Option<Connection> {
    let deadline_ns = job.due_ns + shared.keys[job.key].timeout_ns;
    let now_ns = sys::monotonic_ns();
    if now_ns >= deadline_ns {
        // It waited in the queue past its deadline: the client gave up.
        log_request(shared, job, None, Outcome::ClientTimeout, None);
        shared.ended(job, Outcome::ClientTimeout, None, None, None);
        return connection;
    }
    // A keep-alive connection the server closed is replaced, not failed.
    let mut connection = connection.and_then(|mut c| c.is_reusable().then_some(c));
    let mut sent_ns = None;
    let mut request_id = None;
    let mut retry_after_ns = None;
    // The address this attempt goes to, charged with its outcome.
    let mut at = connection.as_ref().map(Connection::addr);
    let attempt = async {
        if connection.is_none() {
            let opened = connect(shared).await;
            at = Some(match &opened {
                Ok(c) => c.addr(),
                Err((_, addr)) => *addr,
            });
            connection = Some(opened.map_err(|(outcome, _)| outcome)?);
        }
        let conn = connection.as_mut().ok_or(Outcome::ConnectError)?;
        let addr = conn.addr();
        let key = &shared.keys[job.key];
        let request = &key.request;
        let bytes = match (&shared.request_log, request.id_at, &key.space) {
            (Some(log), Some(id_at), space) => {
                let id = log.borrow_mut().next_id();
                request_id = Some(id);
                let bytes = scratch.stamp(&request.bytes, job.key, id_at, id);
                if let Some(space) = space {
                    space.stamp(bytes, job.slot);
                }
                &bytes[..]
            }
            (_, _, Some(space)) => {
                let bytes = scratch.copy(&request.bytes, job.key);
                space.stamp(bytes, job.slot);
                &bytes[..]
            }
            _ => &request.bytes[..],
        };
        let now_ns = sys::monotonic_ns();
        sent_ns = Some(now_ns);
        shared
            .recorder
            .borrow_mut()
            .sent(now_ns, now_ns.saturating_sub(job.due_ns), addr);
        match conn.exchange(bytes, request.head).await {
            Ok((status, reusable)) => {
                retry_after_ns = conn.retry_after_ns();
                if !reusable || !shared.reuse {
                    connection = None;
                }
                Ok(Outcome::Response(status))
            }
            Err(_) => {
                connection = None;
                Err(Outcome::IoError)
            }
        }
    };
    timer
        .as_mut()
        .reset(tokio::time::Instant::from_std(sys::instant_at(deadline_ns)));
    // The timer first: a response that streams without end keeps the
    // exchange busy until tokio's cooperative budget runs out, and a timer
    // polled after it would then never see its deadline.
    let outcome = tokio::select! {
        biased;
        () = timer.as_mut() => {
            // Dropping the connection closes the socket mid-request.
            connection = None;
            Outcome::ClientTimeout
        }
        result = attempt => match result {
            Ok(outcome) | Err(outcome) => outcome,
        },
    };
    log_request(shared, job, request_id, outcome, sent_ns);
    shared.ended(job, outcome, at, sent_ns, retry_after_ns);
    connection
}

/// Keeps the request's record when request ids are on.
fn log_request(shared: &Shared, job: Job, id: Option<u64>, outcome: Outcome, sent_ns: Option<u64>) {
    if let Some(log) = &shared.request_log {
        log.borrow_mut().push(RequestRecord {
            id,
            key: job.key,
            intended_ns: job.due_ns,
            sent_ns,
            end_ns: sys::monotonic_ns(),
            outcome,
        });
    }
}

/// Opens a connection (and its TLS handshake), recording what it cost; a
/// failure is the outcome it gives the job that wanted it, and the index of
/// the address it tried.
async fn connect(shared: &Shared) -> Result<Connection, (Outcome, usize)> {
    let _connecting = Counted::new(&shared.connecting);
    let (stream, connected) = conn::open(&shared.dialer)
        .await
        .map_err(|e| (shared.open_failed(e.error), e.addr))?;
    shared
        .recorder
        .borrow_mut()
        .connected(sys::monotonic_ns(), &connected);
    Ok(Connection::new(stream).to_address(connected.addr))
}
