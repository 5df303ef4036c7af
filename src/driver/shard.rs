//! One driver shard: a thread with its own current-thread runtime, its
//! share of the arrivals, its connections and its Recorder.
//!
//! Takes a [`ShardPlan`]; paces its arrivals with a timerfd (the `pacer`
//! module), hands each due arrival to an idle HTTP/1.1 connection worker
//! (see [`super::worker`]) or to an HTTP/2 stream (see `driver::http2`),
//! and hands finished intervals and its totals to the coordinator over a
//! channel.
//! Nothing on the per-request path is shared with other threads, and nothing
//! on it allocates: workers, connections and buffers live across requests.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::{Notify, oneshot, watch};

use super::budget::{ConnectBudget, MAX_CONNECTING};
use super::conn::{Dialer, OpenError};
use super::key_space::{KeyDraw, pick_key};
use super::queue::Waiting;
use super::request_log::RequestLog;
use super::retry::{Pending, Retries, RetryPolicy};
use super::worker::{self, Job, Mailbox};
use super::{Protocol, RequestTemplate, ShardMsg};
use super::{http2, pacer};
use crate::arrival::Schedule;
use crate::outcome::Outcome;
use crate::record::{KeyPick, Recorder};
use crate::scenario::Phase;
use crate::sys;

/// Most arrivals dispatched in one go before the pacer yields, so that a
/// backlog after a stall cannot starve the connections' I/O.
pub(super) const MAX_BATCH: usize = 512;

/// What one shard needs; built by the coordinator, moved to the thread.
pub struct ShardPlan {
    /// This shard's number, 0-based.
    pub shard: usize,
    /// Number of shards.
    pub shards: usize,
    /// Where and how to connect (with this shard's own TLS session store).
    pub dialer: Dialer,
    /// The HTTP version spoken.
    pub protocol: Protocol,
    /// False: a new connection per request.
    pub reuse: bool,
    /// HTTP/2: the most streams per connection asked for (`None`: the server's).
    pub streams_per_connection: Option<usize>,
    /// The longest client timeout of any key, ns (bounds an HTTP/2 open).
    pub max_timeout_ns: u64,
    /// The keys: one per scenario key (or one when there are no keys).
    pub keys: Arc<[ShardKey]>,
    /// Number of API keys whose totals are kept (0: requests carry no key).
    pub tracked_keys: usize,
    /// The phases of offered load.
    pub phases: Arc<[Phase]>,
    /// Seed of the schedule and the key mix.
    pub seed: u64,
    /// This shard's share of the connection cap.
    pub max_connections: usize,
    /// Past the cap an arrival waits for a free connection or stream;
    /// else it is counted `not_sent`.
    pub wait_at_max: bool,
    /// Connections opened before the first arrival.
    pub warm_connections: usize,
    /// Reporting interval, ns.
    pub interval_ns: u64,
    /// Shortest time between two wakes of the pacer, ns (`[client]
    /// pacing_window`): arrivals due within it are dispatched together at
    /// its end. Each wake costs a timer re-arm and an epoll round, and a
    /// burst of sends finds the target already awake; the batch's lateness
    /// stays visible as schedule lag and in latency, which both count from
    /// the intended time.
    pub pacing_window_ns: u64,
    /// Widest the window may grow while the thread is short of CPU, ns
    /// (see [`super::pacing`]); equal to `pacing_window_ns`: fixed.
    pub pacing_window_max_ns: u64,
    /// An attempt dispatched later than this after its due time (the lag
    /// bound) opens no connection: it waits for the next free one. The
    /// driver itself is behind, so the connections may be busy only with
    /// answers it has not read yet; a connection per late arrival adds
    /// sockets (and their connects) to a thread already short of time.
    /// Once the queue has not moved for this long, the connections are
    /// busy with a slow target instead, and late arrivals open
    /// connections as on-time ones do (see `queue::Waiting::stands_still`).
    pub late_ns: u64,
    /// Closed-loop connections of this shard (0: open loop, the schedule).
    pub closed_loop: usize,
    /// Length of the run, ns (the phases' total).
    pub run_ns: u64,
    /// Per-request records kept (`Some(capacity)`) with request ids on.
    pub request_log: Option<usize>,
}

/// One key as a shard sends it.
#[derive(Debug, Clone)]
pub struct ShardKey {
    /// Its request.
    pub request: RequestTemplate,
    /// Its client timeout, ns.
    pub timeout_ns: u64,
    /// Cumulative weight up to and including this key, ending at 1.0.
    pub cdf: f64,
    /// Its retry policy (`None`: its failed attempts are final).
    pub retry: Option<RetryPolicy>,
    /// A generated key space: each arrival's key is drawn from it.
    pub space: Option<Arc<KeyDraw>>,
}

/// State the shard's tasks share (single-threaded: `Cell`s, no locks).
pub(super) struct Shared {
    pub(super) dialer: Dialer,
    pub(super) protocol: Protocol,
    pub(super) reuse: bool,
    pub(super) streams_per_connection: Option<usize>,
    pub(super) max_timeout_ns: u64,
    /// HTTP/2's connections and stream workers (unused over HTTP/1.1).
    pub(super) h2: http2::Pool,
    /// HTTP/2 closed loop: when its clients stop (0: open loop).
    pub(super) closed_loop_end_ns: Cell<u64>,
    pub(super) recorder: RefCell<Recorder>,
    pub(super) arrivals: RefCell<Arrivals>,
    pub(super) keys: Arc<[ShardKey]>,
    /// Due arrivals no worker has taken yet (while connections open).
    pub(super) queue: Waiting,
    /// Workers waiting for an arrival, most recently used last.
    pub(super) idle: RefCell<Vec<Rc<Mailbox>>>,
    /// Workers alive (each holds at most one connection): the cap's count.
    pub(super) workers: Cell<usize>,
    /// Workers opening a connection now.
    pub(super) connecting: Cell<usize>,
    /// The shard's share of the connection cap.
    pub(super) max_workers: usize,
    /// Arrivals past the cap wait for a free connection or stream (else
    /// they are counted `not_sent`).
    pub(super) wait_at_max: bool,
    /// Arrivals dispatched and not yet ended.
    pub(super) in_flight: Cell<u64>,
    /// The pacing window in force, ns (see [`ShardPlan::pacing_window_ns`];
    /// the pacer changes it when it is adaptive).
    pub(super) pacing_window_ns: Cell<u64>,
    pub(super) drained: Notify,
    /// Set once no more arrivals will come: idle workers then end.
    pub(super) closing: Cell<bool>,
    /// A look at the queue for connections to open is due.
    connect_pending: Cell<bool>,
    /// See [`ShardPlan::late_ns`].
    late_ns: u64,
    /// New connections the shard may open now.
    connect_budget: ConnectBudget,
    /// Request ids and records, with `[client] request_ids` on.
    pub(super) request_log: Option<RefCell<RequestLog>>,
    /// Why the first connect that failed did (for the summary's one line
    /// when no request got through); set on the error path only.
    pub(super) first_connect_error: RefCell<Option<String>>,
    /// Why the first TLS handshake or HTTP/2 preface that failed did.
    pub(super) first_handshake_error: RefCell<Option<String>>,
    /// Retries waiting for their time (`None`: no key retries, and nothing
    /// on the request path looks further).
    pub(super) retries: Option<RefCell<Retries>>,
    /// Told when a retry is scheduled, so the pacer wakes for it.
    pub(super) retry_scheduled: Notify,
}

impl Shared {
    /// An attempt ended: it is retried (see [`Shared::retry`]), or its
    /// outcome is the arrival's and is recorded; then what has waited the
    /// pacing window out meanwhile is sent (the thread is awake anyway), and
    /// the attempt is counted out of flight. `at`: the index of the address
    /// it went to or tried (`None`: none). `retry_after_ns`: the response's
    /// `Retry-After`, as a wait.
    pub(super) fn ended(
        self: &Rc<Self>,
        job: Job,
        outcome: Outcome,
        at: Option<usize>,
        sent_ns: Option<u64>,
        retry_after_ns: Option<u64>,
    ) {
        let now_ns = sys::monotonic_ns();
        let retried =
            self.retries.is_some() && self.retry(job, outcome, at, sent_ns, retry_after_ns, now_ns);
        if !retried {
            self.recorder.borrow_mut().outcome_at(
                now_ns,
                job.pick(),
                at,
                outcome,
                now_ns.saturating_sub(job.intended_ns),
                sent_ns.map(|s| now_ns.saturating_sub(s)),
            );
        }
        // Only what waited out the window: the rest goes in the pacer's
        // next burst, so a wide window keeps its bursts (a burst finds the
        // target awake; sends spread over responses each wake it).
        dispatch_due(
            self,
            now_ns.saturating_sub(self.pacing_window_ns.get()),
            now_ns,
        );
        let end_ns = self.closed_loop_end_ns.get();
        if end_ns > 0 && now_ns < end_ns && !self.closing.get() {
            // An HTTP/2 closed-loop client sends its next request.
            let next = Job::new(self.next_key(), now_ns);
            self.dispatch(next, now_ns);
        }
        let left = self.in_flight.get() - 1;
        self.in_flight.set(left);
        if left == 0 {
            self.drained.notify_one();
        }
    }

    /// Schedules the attempt that ended in `outcome` to be tried again,
    /// when its key's policy retries it, it has retries left, its budget
    /// allows and its time falls before the run's end; each refusal is
    /// counted. Returns true when it was scheduled: its arrival's outcome
    /// is then its retry's.
    fn retry(
        &self,
        job: Job,
        outcome: Outcome,
        at: Option<usize>,
        sent_ns: Option<u64>,
        retry_after_ns: Option<u64>,
        now_ns: u64,
    ) -> bool {
        let (Some(retries), Some(policy)) = (&self.retries, &self.keys[job.key].retry) else {
            return false;
        };
        if !policy.retries(outcome) {
            return false;
        }
        let mut recorder = self.recorder.borrow_mut();
        if job.attempt >= policy.max() {
            recorder.retries_exhausted(now_ns);
            return false;
        }
        let mut r = retries.borrow_mut();
        let r = &mut *r;
        let due_ns =
            now_ns.saturating_add(policy.wait_ns(job.attempt + 1, retry_after_ns, &mut r.rng));
        if !r.open || due_ns >= r.end_ns {
            recorder.retry_cut(now_ns);
            return false;
        }
        if policy.budget().is_some() && !r.tokens[job.key].withdraw() {
            recorder.retry_refused(now_ns);
            return false;
        }
        recorder.attempt_failed(now_ns, sent_ns.map(|s| now_ns.saturating_sub(s)));
        r.seq += 1;
        r.pending.push(Pending {
            job: Job {
                due_ns,
                attempt: job.attempt + 1,
                ..job
            },
            seq: r.seq,
            last: outcome,
            last_end_ns: now_ns,
            last_sent: sent_ns.is_some(),
            last_addr: at,
            reason: outcome.class(),
        });
        self.retry_scheduled.notify_one();
        true
    }

    /// When the next retry is due, if one waits.
    pub(super) fn next_retry_ns(&self) -> Option<u64> {
        let retries = self.retries.as_ref()?;
        retries.borrow().pending.peek().map(|p| p.job.due_ns)
    }

    /// Takes the next retry due by `now_ns`, counted as an attempt.
    fn take_due_retry(&self, now_ns: u64) -> Option<Job> {
        let mut r = self.retries.as_ref()?.borrow_mut();
        if r.pending.peek()?.job.due_ns > now_ns {
            return None;
        }
        let p = r.pending.pop()?;
        self.recorder
            .borrow_mut()
            .retried(now_ns, p.reason, now_ns.saturating_sub(p.job.due_ns));
        Some(p.job)
    }

    /// The run ended or was stopped: no retry is scheduled from now on, and
    /// those waiting are not sent; each arrival's answer is the attempt it
    /// had, and the retry is counted as cut.
    fn close_retries(&self) {
        let Some(retries) = &self.retries else { return };
        let pending = {
            let mut r = retries.borrow_mut();
            r.open = false;
            std::mem::take(&mut r.pending)
        };
        let now_ns = sys::monotonic_ns();
        let mut recorder = self.recorder.borrow_mut();
        for p in pending {
            recorder.retry_cut(now_ns);
            recorder.retry_abandoned(
                now_ns,
                p.job.pick(),
                p.last_addr,
                p.last,
                p.last_end_ns.saturating_sub(p.job.intended_ns),
                p.last_sent,
            );
        }
    }

    /// A connection could not be opened: the outcome its job gets, and the
    /// first reason of each kind kept for the summary.
    pub(super) fn open_failed(&self, error: OpenError) -> Outcome {
        match error {
            OpenError::Connect(e) => {
                let mut first = self.first_connect_error.borrow_mut();
                if first.is_none() {
                    *first = Some(e.to_string());
                }
                // A connect refused by a limit (no file descriptor, no
                // ephemeral port) is also counted for the warning.
                crate::limits::note_connect_error(&e);
                Outcome::ConnectError
            }
            OpenError::Tls(reason, message) => {
                self.note_handshake_error(message);
                Outcome::TlsError(reason)
            }
        }
    }

    /// Keeps the first handshake failure's words for the summary.
    pub(super) fn note_handshake_error(&self, message: String) {
        let mut first = self.first_handshake_error.borrow_mut();
        if first.is_none() {
            *first = Some(message);
        }
    }

    /// Hands `job` on: to an idle worker, a new worker, the queue, or (at
    /// the cap) it is not sent, or with `wait_at_max` waits in the queue.
    pub(super) fn dispatch(self: &Rc<Self>, job: Job, now_ns: u64) {
        if job.attempt == 0 {
            self.recorder
                .borrow_mut()
                .dispatched(now_ns, now_ns.saturating_sub(job.intended_ns));
            if let Some(retries) = &self.retries {
                if let Some(share) = self.keys[job.key].retry.as_ref().and_then(|p| p.budget()) {
                    retries.borrow_mut().tokens[job.key].deposit(share);
                }
            }
        }
        if self.protocol == Protocol::Http2 {
            http2::route(self, job, now_ns);
            return;
        }
        let idle = {
            let mut idle = self.idle.borrow_mut();
            if self.dialer.more.is_empty() || idle.is_empty() {
                // The most recently used connection: the warmest.
                idle.pop()
            } else {
                // Over several addresses (replicas), the longest idle: the
                // connections, and so the addresses, take requests in turn,
                // as behind a load balancer.
                Some(idle.remove(0))
            }
        };
        if let Some(mailbox) = idle {
            self.in_flight.set(self.in_flight.get() + 1);
            mailbox.deliver(Some(job));
        } else if self.workers.get() < self.max_workers {
            self.in_flight.set(self.in_flight.get() + 1);
            // A late attempt opens no connection (see `ShardPlan::late_ns`)
            // while a worker is there to take it from the queue, unless the
            // queue stands still.
            self.queue.push(job, now_ns);
            self.queue
                .ask(self.is_late(&job, now_ns) && self.workers.get() > 0);
            if !self.connect_pending.replace(true) {
                let shared = self.clone();
                tokio::task::spawn_local(async move {
                    // Deferred until the runtime has polled its I/O driver.
                    tokio::task::yield_now().await;
                    shared.connect_pending.set(false);
                    shared.connect_for_queue();
                });
            }
        } else if self.wait_at_max {
            // Every connection the cap allows is busy: it waits for the
            // next free one (a worker takes the oldest as it ends), its
            // latency counting from its intended time.
            self.in_flight.set(self.in_flight.get() + 1);
            self.queue.push(job, now_ns);
        } else {
            // Every connection the cap allows is busy: counted, never dropped.
            // (A retry's caller has waited since its arrival.)
            let waited_ns = if job.attempt == 0 {
                0
            } else {
                now_ns.saturating_sub(job.intended_ns)
            };
            self.recorder.borrow_mut().outcome(
                now_ns,
                job.pick(),
                Outcome::NotSent,
                waited_ns,
                None,
            );
        }
    }

    /// Stopped (Ctrl-C): each job still waiting for a connection never
    /// leaves and is counted `not_sent`, with the time it waited, instead
    /// of going out after the stop (with `wait_at_max` the queue can hold
    /// seconds of arrivals). Returns how many.
    fn abandon_queue(&self) -> u64 {
        let now_ns = sys::monotonic_ns();
        let mut abandoned = 0;
        while let Some(job) = self.queue.take() {
            self.recorder.borrow_mut().outcome(
                now_ns,
                job.pick(),
                Outcome::NotSent,
                now_ns.saturating_sub(job.intended_ns),
                None,
            );
            abandoned += 1;
        }
        let left = self.in_flight.get() - abandoned;
        self.in_flight.set(left);
        if abandoned > 0 && left == 0 {
            self.drained.notify_one();
        }
        abandoned
    }

    /// True when `job` is dispatched later than `late_ns` after it was due.
    pub(super) fn is_late(&self, job: &Job, now_ns: u64) -> bool {
        now_ns.saturating_sub(job.due_ns) > self.late_ns
    }

    /// Opens a connection for each arrival the queue says wants one
    /// ([`Waiting::wanted`]), giving each the oldest waiting job, while the
    /// cap, the connections being opened and the budget allow; the rest
    /// wait for the next free connection.
    fn connect_for_queue(self: &Rc<Self>) {
        let now_ns = sys::monotonic_ns();
        let mut wanting = self.queue.wanted(now_ns);
        while wanting > 0
            && self.workers.get() < self.max_workers
            && self.connecting.get() < MAX_CONNECTING
            && self.may_connect(now_ns)
        {
            wanting -= 1;
            let oldest = self.queue.take();
            worker::spawn(self.clone(), oldest);
        }
    }

    /// Takes a token from the new-connection budget, if there is one.
    pub(super) fn may_connect(&self, now_ns: u64) -> bool {
        self.connect_budget.take(now_ns)
    }

    /// The key of the next request, by the scenario's weights.
    pub(super) fn next_key(&self) -> KeyPick {
        let mut arrivals = self.arrivals.borrow_mut();
        let a = &mut *arrivals;
        pick_key(&self.keys, &mut a.rng)
    }

    /// Ends every idle worker (no more arrivals will come).
    fn close(&self) {
        self.closing.set(true);
        let idle = std::mem::take(&mut *self.idle.borrow_mut());
        for mailbox in idle {
            mailbox.deliver(None);
        }
        self.h2.close();
    }
}

/// The shard's remaining arrivals and the choices made for them.
pub(super) struct Arrivals {
    schedule: Schedule,
    /// Intended send time of the next arrival; `None` once all are sent or
    /// the run was stopped.
    pub(super) next_due_ns: Option<u64>,
    pub(super) start_ns: u64,
    rng: SmallRng,
}

impl Arrivals {
    fn new(plan: &ShardPlan, start_ns: u64) -> Arrivals {
        let mut schedule = Schedule::new(&plan.phases, plan.shard, plan.shards, plan.seed);
        let next_due_ns = schedule.next().map(|a| start_ns + a.offset_ns);
        let shard_seed = plan.seed ^ (plan.shard as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Arrivals {
            schedule,
            next_due_ns,
            start_ns,
            rng: SmallRng::seed_from_u64(shard_seed),
        }
    }
}

/// Runs one shard to its end on the calling thread.
///
/// Protocol with the coordinator: warm connections, send `Ready`, wait for
/// the common start time on `start`, run, send intervals as they close,
/// and end with `Done`. A stop signal ends dispatching early; requests in
/// flight are then drained (each is bounded by its client timeout).
pub fn run(
    plan: ShardPlan,
    to_coordinator: mpsc::Sender<ShardMsg>,
    start: oneshot::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = to_coordinator.send(ShardMsg::Failed(format!("driver runtime: {e}")));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let shared = Rc::new(Shared {
            dialer: plan.dialer.clone(),
            protocol: plan.protocol,
            reuse: plan.reuse,
            streams_per_connection: plan.streams_per_connection,
            max_timeout_ns: plan.max_timeout_ns,
            h2: http2::Pool::default(),
            closed_loop_end_ns: Cell::new(0),
            recorder: RefCell::new(
                Recorder::new(0, plan.interval_ns, plan.tracked_keys)
                    .with_key_space(
                        plan.keys
                            .iter()
                            .filter_map(|k| k.space.as_ref())
                            .map(|s| s.count() as usize)
                            .sum(),
                    )
                    .with_addresses(plan.dialer.addresses()),
            ),
            arrivals: RefCell::new(Arrivals::new(&plan, 0)),
            keys: plan.keys.clone(),
            queue: Waiting::default(),
            idle: RefCell::new(Vec::new()),
            workers: Cell::new(0),
            connecting: Cell::new(0),
            max_workers: plan.max_connections.max(1),
            wait_at_max: plan.wait_at_max,
            in_flight: Cell::new(0),
            pacing_window_ns: Cell::new(plan.pacing_window_ns),
            drained: Notify::new(),
            closing: Cell::new(false),
            connect_pending: Cell::new(false),
            late_ns: plan.late_ns,
            connect_budget: ConnectBudget::new(plan.reuse && plan.dialer.tls.is_some()),
            request_log: plan
                .request_log
                .map(|capacity| RefCell::new(RequestLog::new(plan.shard, capacity))),
            first_connect_error: RefCell::new(None),
            first_handshake_error: RefCell::new(None),
            retries: Retries::of_shard(&plan),
            retry_scheduled: Notify::new(),
        });
        match plan.protocol {
            Protocol::Http1 => worker::warm(&shared, plan.warm_connections).await,
            Protocol::Http2 => http2::warm(&shared, plan.warm_connections).await,
        }
        if to_coordinator.send(ShardMsg::Ready).is_err() {
            return;
        }
        let Ok(start_ns) = start.await else { return };
        shared.recorder.borrow_mut().begin(start_ns);
        shared.arrivals.replace(Arrivals::new(&plan, start_ns));
        if let Some(retries) = &shared.retries {
            retries.borrow_mut().end_ns = start_ns.saturating_add(plan.run_ns);
        }
        let mut window = pacer::window_of(&plan);
        let paced = if plan.closed_loop > 0 {
            let end_ns = start_ns.saturating_add(plan.run_ns);
            pacer::closed_loop(
                &shared,
                plan.closed_loop,
                end_ns,
                plan.interval_ns,
                &to_coordinator,
                &mut stop,
            )
            .await
        } else {
            pacer::pace(
                &shared,
                plan.interval_ns,
                &mut window,
                &to_coordinator,
                &mut stop,
            )
            .await
        };
        if let Err(e) = paced {
            let _ = to_coordinator.send(ShardMsg::Failed(format!("driver timer: {e}")));
        }
        // No more arrivals, also when the pacer stopped early.
        shared.arrivals.borrow_mut().next_due_ns = None;
        shared.close_retries();
        let dispatch_end_ns = sys::monotonic_ns();
        // Drain: every request in flight ends by its own client timeout;
        // after a stop, also one that comes while draining, what still
        // waits for a connection ends at once.
        let mut not_sent_at_stop = 0;
        loop {
            if *stop.borrow() {
                not_sent_at_stop += shared.abandon_queue();
            }
            if shared.in_flight.get() == 0 {
                break;
            }
            tokio::select! {
                () = shared.drained.notified() => {}
                Ok(()) = stop.changed() => {}
            }
        }
        shared.close();
        let recorder = shared.recorder.replace(Recorder::new(0, 1, 0));
        let (mut totals, intervals) = recorder.finish(sys::monotonic_ns(), 0);
        totals.first_connect_error = shared.first_connect_error.take();
        totals.first_handshake_error = shared.first_handshake_error.take();
        totals.pacing_window_widest_ns = window.widest_ns();
        totals.not_sent_at_stop = not_sent_at_stop;
        for snapshot in intervals {
            let _ = to_coordinator.send(ShardMsg::Interval(Box::new(snapshot)));
        }
        if let Some(log) = &shared.request_log {
            let (records, dropped) = log.borrow_mut().take();
            let _ = to_coordinator.send(ShardMsg::Requests(records, dropped));
        }
        let _ = to_coordinator.send(ShardMsg::Done(Box::new(totals), dispatch_end_ns));
    });
}

/// Sends every arrival due by `due_by_ns` at `now_ns`, at most
/// [`MAX_BATCH`]. Called by the pacer on its own wakes (`due_by_ns` is
/// now) and by each exchange as it ends, so that when the thread is awake
/// for I/O anyway, arrivals late past the pacing window leave without
/// waiting for (or paying for) a timer wake.
pub(super) fn dispatch_due(shared: &Rc<Shared>, due_by_ns: u64, now_ns: u64) -> usize {
    let mut sent = 0;
    while sent < MAX_BATCH {
        let Some(job) = shared.take_due_retry(now_ns) else {
            break;
        };
        shared.dispatch(job, now_ns);
        sent += 1;
    }
    while sent < MAX_BATCH {
        let job = {
            let mut arrivals = shared.arrivals.borrow_mut();
            let a = &mut *arrivals;
            match a.next_due_ns {
                Some(due_ns) if due_ns <= due_by_ns => {
                    let key = pick_key(&shared.keys, &mut a.rng);
                    a.next_due_ns = a.schedule.next().map(|next| a.start_ns + next.offset_ns);
                    Job::new(key, due_ns)
                }
                _ => break,
            }
        };
        shared.dispatch(job, now_ns);
        sent += 1;
    }
    sent
}
