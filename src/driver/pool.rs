//! A shard's HTTP/1.1 connections: idle keep-alive connections, the cap,
//! and a bound on how many connections may be opening at once.
//!
//! Takes a target address; hands out [`Conn`]s, each carrying one request at
//! a time. A `Conn` that is dropped instead of released closes its socket,
//! which is how a client timeout becomes a real client abort on the wire.
//! Single-threaded: lives on one shard's `LocalSet`, so plain
//! `Cell`/`RefCell` and no locks.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::http1::Connection;
use crate::outcome::Outcome;

/// Connections that may be opening at once per shard. Past it, an arrival
/// waits for a connection to come back instead of opening another: when the
/// driver falls behind, opening a connection per late arrival costs more
/// CPU and falls further behind (a storm that feeds itself).
const MAX_CONNECTING: usize = 32;

/// One open connection, counted against the cap while it lives.
pub struct Conn {
    /// The connection requests go out on.
    pub connection: Connection,
    _slot: Slot,
}

/// Holds one unit of a counter for as long as it lives.
struct Slot(Rc<Cell<usize>>);

impl Slot {
    fn take(counter: &Rc<Cell<usize>>) -> Slot {
        counter.set(counter.get() + 1);
        Slot(counter.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// The connections of one shard.
pub struct Pool {
    addr: SocketAddr,
    cap: usize,
    idle: RefCell<Vec<Conn>>,
    waiters: RefCell<VecDeque<oneshot::Sender<Conn>>>,
    open: Rc<Cell<usize>>,
    connecting: Rc<Cell<usize>>,
}

impl Pool {
    /// A pool to `addr` holding at most `cap` connections (at least 1).
    pub fn new(addr: SocketAddr, cap: usize) -> Pool {
        Pool {
            addr,
            cap: cap.max(1),
            idle: RefCell::new(Vec::new()),
            waiters: RefCell::new(VecDeque::new()),
            open: Rc::new(Cell::new(0)),
            connecting: Rc::new(Cell::new(0)),
        }
    }

    /// Connections open now (idle, busy or opening).
    pub fn open(&self) -> usize {
        self.open.get()
    }

    /// Opens up to `n` connections ahead of the first arrival; stops at the
    /// first failure (the arrivals will then count the connect errors).
    pub async fn warm(&self, n: usize) {
        for _ in 0..n.min(self.cap) {
            match self.connect().await {
                Ok(conn) => self.release(conn),
                Err(_) => break,
            }
        }
    }

    /// A ready connection: an idle one, a new one, or one handed back by
    /// another request. `NotSent` when the cap is reached, `ConnectError`
    /// when a new connection fails.
    pub async fn acquire(&self) -> Result<Conn, Outcome> {
        loop {
            let candidate = self.idle.borrow_mut().pop();
            let conn = match candidate {
                Some(conn) => conn,
                None if self.open.get() >= self.cap => return Err(Outcome::NotSent),
                None if self.connecting.get() < MAX_CONNECTING => return self.connect().await,
                None => {
                    let (tx, rx) = oneshot::channel();
                    self.waiters.borrow_mut().push_back(tx);
                    // The pool outlives every request, so the sender is
                    // only dropped at shutdown.
                    rx.await.map_err(|_| Outcome::NotSent)?
                }
            };
            // A keep-alive connection the server closed is skipped, not failed.
            if conn.connection.is_reusable() {
                return Ok(conn);
            }
        }
    }

    /// Returns a connection after a complete response: to a waiting request
    /// first, else to the idle list.
    pub fn release(&self, mut conn: Conn) {
        loop {
            let waiter = self.waiters.borrow_mut().pop_front();
            match waiter {
                // A waiter whose request timed out has gone; try the next.
                Some(tx) => match tx.send(conn) {
                    Ok(()) => return,
                    Err(back) => conn = back,
                },
                None => break,
            }
        }
        self.idle.borrow_mut().push(conn);
    }

    /// Closes every idle connection.
    pub fn close_idle(&self) {
        self.idle.borrow_mut().clear();
    }

    async fn connect(&self) -> Result<Conn, Outcome> {
        let slot = Slot::take(&self.open);
        let _connecting = Slot::take(&self.connecting);
        let stream = TcpStream::connect(self.addr).await.map_err(|_| Outcome::ConnectError)?;
        // Requests are small and latency is the measurement: no Nagle.
        stream.set_nodelay(true).map_err(|_| Outcome::ConnectError)?;
        Ok(Conn { connection: Connection::new(stream), _slot: slot })
    }
}
