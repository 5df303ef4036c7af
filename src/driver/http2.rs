//! HTTP/2 for the driver: each arrival a stream, many streams per
//! connection, on the shard's current-thread runtime with the `h2` crate.
//!
//! Takes the shard's due arrivals ([`route`]) and hands each to a stream
//! on a connection with a free slot, or queues it while a connection opens,
//! or (every connection the cap allows full, none opening) counts it
//! `not_sent`, or with `wait_at_max` queues it for the next free slot: the
//! HTTP/1.1 driver's rules, with a slot per stream instead of a connection
//! per request (an arrival dispatched later than `lag_bound` after its time
//! opens no connection while one takes streams and the queue moves). A
//! connection carries at most the server's `MAX_CONCURRENT_STREAMS`
//! (learned before its first stream: the server's SETTINGS come before its
//! answer to a PING) or `streams_per_connection`.
//! A stream is sent at its arrival's intended time whatever the others on
//! its connection are doing: open loop stays open loop.
//!
//! Per connection there is one task (it opens the connection, then drives
//! it: h2 needs the connection polled); per stream slot in use there is a
//! long-lived stream worker, reused from stream to stream like an HTTP/1.1
//! worker, so a request costs no task or channel. Every arrival still ends
//! in exactly one outcome: a stream the server resets or that a GOAWAY cuts
//! off is an `io_error`; one that never left (its connection went away
//! first) is placed on another connection.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use hyper::http::HeaderValue;

use super::budget::MAX_CONNECTING;
use super::conn::{self, OpenError};
use super::request_log::{self, RequestRecord};
use super::retry;
use super::shard::Shared;
use super::worker::{self, Job, Mailbox};
use crate::outcome::{Outcome, TlsFailure};
use crate::record::Alpn;
use crate::scenario::DEFAULT_STREAMS_PER_CONNECTION;
use crate::sys;

/// Flow-control window of each stream, bytes.
const STREAM_WINDOW_BYTES: u32 = 1 << 20;
/// Flow-control window of each connection, bytes.
const CONNECTION_WINDOW_BYTES: u32 = 1 << 24;

/// The connections of one shard and its idle stream workers.
#[derive(Default)]
pub(super) struct Pool {
    /// Connections open and taking new streams, oldest first.
    conns: RefCell<Vec<Rc<H2Conn>>>,
    /// Connections being opened (they count against the cap).
    opening: Cell<usize>,
    /// Connections whose task lives (taking streams or draining).
    open: Cell<usize>,
    /// Stream workers waiting for a stream, most recently used last.
    idle: RefCell<Vec<Rc<Mailbox<Lease>>>>,
    /// Told each time a connection finished opening (or failed to).
    settled: tokio::sync::Notify,
    /// Numbers connections, so a worker knows its handle's connection.
    next_id: Cell<u64>,
    /// Where the next look for a free slot starts, over several addresses.
    turn: Cell<usize>,
}

/// One open HTTP/2 connection as the shard sees it.
struct H2Conn {
    id: u64,
    /// Its handle; taken when it retires, so the connection can close once
    /// its streams end.
    send: RefCell<Option<SendRequest<Bytes>>>,
    /// Streams in flight on it.
    active: Cell<usize>,
    /// Streams it may carry at once.
    limit: usize,
    /// False once it takes no new stream (GOAWAY, an error, or `reuse = false`).
    accepting: Cell<bool>,
    /// The index of the address it went to (see `conn::Dialer`).
    addr: usize,
}

impl H2Conn {
    fn has_slot(&self) -> bool {
        self.accepting.get() && self.active.get() < self.limit
    }
}

/// An arrival and the connection whose stream slot it holds.
pub(super) struct Lease {
    job: Job,
    conn: Rc<H2Conn>,
}

impl Pool {
    /// The first connection with a free stream slot (streams packed on
    /// the fewest connections); with `spread` (several addresses, gateway
    /// replicas), the one with the fewest streams, ties taken in turn, so
    /// the addresses take streams in turn, as behind a load balancer.
    fn free_conn(&self, spread: bool) -> Option<Rc<H2Conn>> {
        let conns = self.conns.borrow();
        if !spread {
            return conns.iter().find(|c| c.has_slot()).cloned();
        }
        let turn = self.turn.get();
        self.turn.set(turn.wrapping_add(1));
        let first = turn % conns.len().max(1);
        conns[first..]
            .iter()
            .chain(&conns[..first])
            .filter(|c| c.has_slot())
            .min_by_key(|c| c.active.get())
            .cloned()
    }

    /// True while some connection takes new streams: a queue has slots
    /// coming without another connection.
    fn has_connection(&self) -> bool {
        !self.conns.borrow().is_empty()
    }

    /// Takes `conn` out of the pool: no new stream goes to it.
    fn retire(&self, conn: &H2Conn) {
        if conn.accepting.replace(false) {
            self.conns.borrow_mut().retain(|c| c.id != conn.id);
            conn.send.borrow_mut().take();
        }
    }

    /// Ends every idle stream worker (no more arrivals will come).
    pub(super) fn close(&self) {
        for mailbox in std::mem::take(&mut *self.idle.borrow_mut()) {
            mailbox.deliver(None);
        }
    }
}

/// Hands a fresh arrival (already counted as dispatched) to a stream, the
/// queue, or `not_sent`.
pub(super) fn route(shared: &Rc<Shared>, job: Job, now_ns: u64) {
    let pool = &shared.h2;
    if let Some(conn) = pool.free_conn(!shared.dialer.more.is_empty()) {
        shared.in_flight.set(shared.in_flight.get() + 1);
        start_stream(shared, job, conn);
        return;
    }
    let below_cap = pool.open.get() + pool.opening.get() < shared.max_workers;
    // A closed loop's clients bound its concurrency: they wait, never
    // drop; so does an open loop's arrival with `wait_at_max`.
    if below_cap
        || pool.opening.get() > 0
        || shared.closed_loop_end_ns.get() > 0
        || shared.wait_at_max
    {
        shared.in_flight.set(shared.in_flight.get() + 1);
        shared.queue.push(job, now_ns);
        if below_cap
            && !waits_for_a_slot(shared, &job, now_ns)
            && (pool.opening.get() == 0
                || (pool.opening.get() < MAX_CONNECTING && shared.may_connect(now_ns)))
        {
            spawn_connection(shared.clone());
        }
    } else {
        // Every stream the cap allows is busy: counted, never dropped.
        shared
            .recorder
            .borrow_mut()
            .outcome(now_ns, job.pick(), Outcome::NotSent, 0, None);
    }
}

/// Puts queued arrivals on free stream slots; opens a connection when some
/// are left waiting and none is opening (so a queue never waits on nothing).
fn kick(shared: &Rc<Shared>) {
    let pool = &shared.h2;
    loop {
        if shared.queue.is_empty() {
            return;
        }
        let Some(conn) = pool.free_conn(!shared.dialer.more.is_empty()) else {
            break;
        };
        let Some(job) = shared.queue.take() else {
            return;
        };
        start_stream(shared, job, conn);
    }
    // The queue is in due order: when its newest arrival waits for a
    // slot, so do the rest, on the connections there are.
    let now_ns = sys::monotonic_ns();
    let newest_waits = shared
        .queue
        .newest()
        .is_some_and(|job| waits_for_a_slot(shared, &job, now_ns));
    if pool.opening.get() == 0 && pool.open.get() < shared.max_workers && !newest_waits {
        spawn_connection(shared.clone());
    }
}

/// True when queued `job` waits for a free slot instead of opening a
/// connection: it came late (see `ShardPlan::late_ns`), the queue moves and
/// some connection takes streams.
fn waits_for_a_slot(shared: &Shared, job: &Job, now_ns: u64) -> bool {
    shared.is_late(job, now_ns) && !shared.queue.stands_still(now_ns) && shared.h2.has_connection()
}

/// Takes a slot on `conn` for `job` and hands it to a stream worker.
fn start_stream(shared: &Rc<Shared>, job: Job, conn: Rc<H2Conn>) {
    conn.active.set(conn.active.get() + 1);
    let lease = Lease { job, conn };
    let idle = shared.h2.idle.borrow_mut().pop();
    match idle {
        Some(mailbox) => mailbox.deliver(Some(lease)),
        None => {
            let shared = shared.clone();
            tokio::task::spawn_local(async move { stream_worker(&shared, lease).await });
        }
    }
}

/// Opens `n` connections' worth of stream slots before the first arrival
/// (at least one connection, and one per address), and waits until they
/// are open or failed.
pub(super) async fn warm(shared: &Rc<Shared>, n: usize) {
    if n == 0 {
        return;
    }
    let per_conn = shared
        .streams_per_connection
        .unwrap_or(DEFAULT_STREAMS_PER_CONNECTION as usize)
        .max(1);
    let addresses = 1 + shared.dialer.more.len();
    for _ in 0..n.div_ceil(per_conn).max(addresses).min(shared.max_workers) {
        spawn_connection(shared.clone());
    }
    while shared.h2.opening.get() > 0 {
        shared.h2.settled.notified().await;
    }
}

/// Counts a connection being opened for as long as its opening lasts.
struct Opening<'a>(&'a Pool);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.opening.set(self.0.opening.get() - 1);
        self.0.settled.notify_one();
    }
}

/// The task of one connection: opens it, fills its slots from the queue,
/// drives it until it closes; on a failure, the oldest queued arrival (the
/// one it was opened for) ends with the failure as its outcome.
fn spawn_connection(shared: Rc<Shared>) {
    shared.h2.opening.set(shared.h2.opening.get() + 1);
    tokio::task::spawn_local(async move {
        let opening = Opening(&shared.h2);
        let timeout = Duration::from_nanos(shared.max_timeout_ns);
        let opened = match tokio::time::timeout(timeout, open(&shared)).await {
            Ok(result) => result.map_err(|(outcome, addr)| (outcome, Some(addr))),
            // Cut while connecting: where to is not known here.
            Err(_) => Err((Outcome::ClientTimeout, None)),
        };
        drop(opening);
        let (send, connection, limit, addr) = match opened {
            Ok(parts) => parts,
            Err((outcome, addr)) => {
                let job = shared.queue.take();
                if let Some(job) = job {
                    log_request(&shared, job, None, outcome, None);
                    shared.ended(job, outcome, addr, None, None);
                }
                kick(&shared);
                return;
            }
        };
        let pool = &shared.h2;
        let id = pool.next_id.get();
        pool.next_id.set(id + 1);
        let conn = Rc::new(H2Conn {
            id,
            send: RefCell::new(Some(send)),
            active: Cell::new(0),
            limit,
            accepting: Cell::new(true),
            addr,
        });
        pool.open.set(pool.open.get() + 1);
        pool.conns.borrow_mut().push(conn.clone());
        kick(&shared);
        // Ends when the server closes it, it fails, or it retired and its
        // last stream ended; its streams learn why from their own futures.
        let _ = connection.await;
        pool.retire(&conn);
        pool.open.set(pool.open.get() - 1);
        drop(conn);
        kick(&shared);
    });
}

/// A connection's handle, its driver, its stream limit and the index of
/// its address.
type Opened = (
    SendRequest<Bytes>,
    h2::client::Connection<conn::Stream, Bytes>,
    usize,
    usize,
);

/// Connects, agrees on `h2` (ALPN over TLS), sends the preface and learns
/// the server's stream limit; a failure is the outcome it gives and the
/// index of the address it tried.
async fn open(shared: &Shared) -> Result<Opened, (Outcome, usize)> {
    let (stream, connected) = conn::open(&shared.dialer)
        .await
        .map_err(|e| (shared.open_failed(e.error), e.addr))?;
    shared
        .recorder
        .borrow_mut()
        .connected(sys::monotonic_ns(), &connected);
    let addr = connected.addr;
    match handshake(shared, stream).await {
        Ok((send, connection, limit)) => Ok((send, connection, limit, addr)),
        Err(outcome) => Err((outcome, addr)),
    }
}

/// Agrees on `h2` over an open connection, sends the preface and learns the
/// server's stream limit: the handle, the connection's driver and the limit.
async fn handshake(
    shared: &Shared,
    stream: conn::Stream,
) -> Result<
    (
        SendRequest<Bytes>,
        h2::client::Connection<conn::Stream, Bytes>,
        usize,
    ),
    Outcome,
> {
    if let Some(alpn) = stream.alpn().filter(|a| *a != Alpn::H2) {
        let said = match alpn {
            Alpn::Http11 => "http/1.1",
            _ => "no protocol",
        };
        return Err(shared.open_failed(OpenError::Tls(
            TlsFailure::NoH2,
            format!("the server answered ALPN h2 with {said}"),
        )));
    }
    let preface_failed = |e: h2::Error| {
        shared.note_handshake_error(format!(
            "the HTTP/2 connection preface failed ({e}): does the server speak HTTP/2 here? \
             Over http:// contend speaks h2c with prior knowledge; use [client] http = \"1.1\" \
             for an HTTP/1.1-only server"
        ));
        Outcome::IoError
    };
    // Windows wide enough that responses are never held back waiting for a
    // WINDOW_UPDATE (the client reads every byte at once anyway).
    let (send, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(preface_failed)?;
    // The server's SETTINGS (and with them its stream limit) come before
    // its answer to a PING; the connection is driven meanwhile.
    let mut ping = connection.ping_pong().ok_or(Outcome::IoError)?;
    let pong = ping.ping(h2::Ping::opaque());
    tokio::pin!(pong);
    tokio::select! {
        answered = &mut pong => {
            answered.map_err(preface_failed)?;
        }
        ended = &mut connection => {
            let e = ended.err().map_or_else(|| "it closed".to_string(), |e| e.to_string());
            shared.note_handshake_error(format!(
                "the HTTP/2 connection preface failed ({e}): does the server speak HTTP/2 here? \
                 Over http:// contend speaks h2c with prior knowledge; use [client] http = \"1.1\" \
                 for an HTTP/1.1-only server"
            ));
            return Err(Outcome::IoError);
        }
    }
    let peer = send.current_max_send_streams();
    let limit = match (shared.reuse, shared.streams_per_connection) {
        // A new connection per request: one stream each.
        (false, _) => 1,
        (true, Some(n)) => n.min(peer),
        (true, None) if peer == usize::MAX => DEFAULT_STREAMS_PER_CONNECTION as usize,
        (true, None) => peer,
    };
    Ok((send, connection, limit.max(1)))
}

/// A stream worker: serves the lease it was started with, then the next
/// queued arrival on the same connection while it has a slot, then waits
/// for the next lease; ends when the shard closes.
async fn stream_worker(shared: &Rc<Shared>, first: Lease) {
    let mailbox = Rc::new(Mailbox::default());
    // The handle of the connection last served: reused while the worker
    // stays on it (a clone costs h2 a lock).
    let mut handle: Option<(u64, SendRequest<Bytes>)> = None;
    // Its client-timeout timer, moved to each stream's deadline (see
    // `worker::Deadline`).
    let mut timer = worker::new_deadline();
    let mut next = Some(first);
    loop {
        let lease = match next.take() {
            Some(lease) => lease,
            None if shared.closing.get() => return,
            None => {
                shared.h2.idle.borrow_mut().push(mailbox.clone());
                match mailbox.receive().await {
                    Some(lease) => lease,
                    None => return,
                }
            }
        };
        let conn = lease.conn.clone();
        serve(shared, lease, &mut handle, &mut timer).await;
        conn.active.set(conn.active.get() - 1);
        if !shared.reuse {
            shared.h2.retire(&conn);
        }
        if !conn.accepting.get() {
            handle = None;
        }
        // The next queued arrival goes on this slot if it can.
        if conn.has_slot() {
            let job = shared.queue.take();
            if let Some(job) = job {
                conn.active.set(conn.active.get() + 1);
                next = Some(Lease { job, conn });
                continue;
            }
        }
        kick(shared);
    }
}

/// Serves one leased arrival to its one outcome.
async fn serve(
    shared: &Rc<Shared>,
    lease: Lease,
    handle: &mut Option<(u64, SendRequest<Bytes>)>,
    timer: &mut worker::Deadline,
) {
    let Lease { job, conn } = lease;
    let deadline_ns = job.due_ns + shared.keys[job.key].timeout_ns;
    let now_ns = sys::monotonic_ns();
    if now_ns >= deadline_ns {
        // It waited in the queue past its deadline: the client gave up.
        log_request(shared, job, None, Outcome::ClientTimeout, None);
        shared.ended(job, Outcome::ClientTimeout, None, None, None);
        return;
    }
    if handle.as_ref().is_none_or(|(id, _)| *id != conn.id) {
        *handle = conn.send.borrow().clone().map(|s| (conn.id, s));
    }
    let Some((_, send)) = handle.as_mut() else {
        // It retired between the lease and now: another connection takes it.
        requeue(shared, job);
        return;
    };
    let key = &shared.keys[job.key];
    let template = &key.request.h2;
    let mut request = template.head.clone();
    if let Some(value) = key.space.as_ref().and_then(|s| s.header_value(job.slot)) {
        request
            .headers_mut()
            .insert(super::key_space::KEY_HEADER, value);
    }
    let mut request_id = None;
    if let Some(log) = &shared.request_log {
        let id = log.borrow_mut().next_id();
        request_id = Some(id);
        if let Ok(value) = HeaderValue::from_str(&request_log::id_text(id)) {
            request.headers_mut().insert(request_log::ID_HEADER, value);
        }
    }
    let sent = std::future::poll_fn(|cx| send.poll_ready(cx))
        .await
        .and_then(|()| send.send_request(request, template.body.is_empty()));
    let (response, mut body_tx) = match sent {
        Ok(sent) => sent,
        Err(_) => {
            // GOAWAY or a dead connection before the stream left: it was
            // never sent, so it goes on another connection.
            shared.h2.retire(&conn);
            *handle = None;
            requeue(shared, job);
            return;
        }
    };
    let sent_ns = sys::monotonic_ns();
    shared
        .recorder
        .borrow_mut()
        .sent(sent_ns, sent_ns.saturating_sub(job.due_ns), conn.addr);
    let exchange = async {
        if !template.body.is_empty() {
            body_tx
                .send_data(template.body.clone(), true)
                .map_err(Failed::of)?;
        }
        let response = response.await.map_err(Failed::of)?;
        let status = response.status().as_u16();
        let retry_after_ns = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| retry::parse_retry_after(v.as_bytes(), std::time::SystemTime::now()));
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|_| Failed::Outcome(Outcome::IoError))?;
            // Keeps the connection's and the stream's windows open.
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        Ok::<_, Failed>((Outcome::Response(status), retry_after_ns))
    };
    timer
        .as_mut()
        .reset(tokio::time::Instant::from_std(sys::instant_at(deadline_ns)));
    let result = tokio::select! {
        biased;
        () = timer.as_mut() => Err(()),
        answered = exchange => Ok(answered),
    };
    let (outcome, retry_after_ns) = match result {
        Ok(Ok(answered)) => answered,
        Ok(Err(Failed::Outcome(outcome))) => (outcome, None),
        Ok(Err(Failed::Unprocessed { going_away })) => {
            // The server says it never processed the stream: it goes out
            // again (after a GOAWAY, on another connection) and counts once.
            shared.recorder.borrow_mut().unsent(conn.addr);
            if going_away {
                shared.h2.retire(&conn);
                *handle = None;
            }
            requeue(shared, job);
            return;
        }
        // Dropping the stream resets it (RST_STREAM CANCEL): a real abort.
        Err(_) => (Outcome::ClientTimeout, None),
    };
    log_request(shared, job, request_id, outcome, Some(sent_ns));
    shared.ended(job, outcome, Some(conn.addr), Some(sent_ns), retry_after_ns);
}

/// How a stream failed.
enum Failed {
    /// With this outcome.
    Outcome(Outcome),
    /// Refused before the server processed it (RFC 9113 8.7): above a
    /// GOAWAY's last stream id (`going_away`), or reset with REFUSED_STREAM.
    Unprocessed {
        /// The whole connection is going away.
        going_away: bool,
    },
}

impl Failed {
    fn of(e: h2::Error) -> Failed {
        let going_away = e.is_go_away() && e.is_remote();
        if going_away || e.reason() == Some(h2::Reason::REFUSED_STREAM) {
            Failed::Unprocessed { going_away }
        } else {
            Failed::Outcome(Outcome::IoError)
        }
    }
}

/// An arrival that never left goes back to the front of the queue.
fn requeue(shared: &Rc<Shared>, job: Job) {
    shared.queue.push_front(job);
    kick(shared);
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
