//! How fast a shard may open connections: at most [`MAX_CONNECTING`] at
//! once, and new ones from a token bucket.
//!
//! An open-loop arrival that finds every connection busy opens another, as
//! a client's pool grows. A driver that fell behind gets a burst of due
//! arrivals at once; if each opened a connection, the connects would cost
//! more CPU than the requests and put it further behind (a storm that feeds
//! itself). Past the budget an arrival waits for the next free connection,
//! and the wait shows in its latency.

use std::cell::Cell;

use crate::sys;

/// Connections that may be opening at once per shard. Past it, a due
/// arrival waits in the queue for a worker to come free instead of opening
/// another.
pub(crate) const MAX_CONNECTING: usize = 32;

/// New connections a shard may open per second once its burst is spent,
/// and the burst, in cleartext (and without keep-alive, where every arrival
/// needs its own connection).
const PLAIN: (f64, f64) = (5_000.0, 64.0);

/// The same over TLS with keep-alive: a connection there costs a handshake
/// (about 0.25 ms of the shard's CPU, ten times a plaintext connect), and at
/// 5,000 a second a hiccup's connects took more CPU than the hiccup itself,
/// so the shard never caught up (at 20k/s: 1,400 handshakes and 500 ms of
/// lag after a stall).
const TLS_KEEP_ALIVE: (f64, f64) = (500.0, 16.0);

/// A token bucket of new connections.
pub(super) struct ConnectBudget {
    per_s: f64,
    burst: f64,
    /// Tokens, and when they were last counted (monotonic ns).
    state: Cell<(f64, u64)>,
}

impl ConnectBudget {
    /// The budget of a shard whose connections are TLS with keep-alive or
    /// not, its bucket full.
    pub(super) fn new(tls_keep_alive: bool) -> ConnectBudget {
        let (per_s, burst) = if tls_keep_alive {
            TLS_KEEP_ALIVE
        } else {
            PLAIN
        };
        ConnectBudget {
            per_s,
            burst,
            state: Cell::new((burst, sys::monotonic_ns())),
        }
    }

    /// Takes a token at `now_ns`, if there is one.
    pub(super) fn take(&self, now_ns: u64) -> bool {
        let (tokens, last_ns) = self.state.get();
        let refill = now_ns.saturating_sub(last_ns) as f64 / 1e9 * self.per_s;
        let tokens = (tokens + refill).min(self.burst);
        let allowed = tokens >= 1.0;
        self.state
            .set((if allowed { tokens - 1.0 } else { tokens }, now_ns));
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let budget = ConnectBudget::new(true);
        let t0 = budget.state.get().1;
        let taken = (0..100).filter(|_| budget.take(t0)).count();
        assert_eq!(taken, 16, "the burst, all at once");
        // 500/s: one more every 2 ms.
        assert!(!budget.take(t0 + 1_000_000));
        assert!(budget.take(t0 + 2_000_000));
        assert!(!budget.take(t0 + 2_000_000));
        let plain = ConnectBudget::new(false);
        let t0 = plain.state.get().1;
        assert_eq!((0..100).filter(|_| plain.take(t0)).count(), 64);
    }
}
