//! The per-request log: one entry per request that carried an `x-request-id`, so a harness can
//! join the upstream's truth with its client's and its gateway's records request by request.
//!
//! Takes each such request's end from `server` (its id, key, outcome and costs); hands on the
//! `GET /requests` JSON. It is a bounded ring: past [`CAPACITY`] entries the oldest go, and the
//! document says how many went. Requests without an id are not logged (the per-key counters in
//! `accounting` still count them), so a load that sends no ids pays nothing here.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::accounting::{Cost, Outcome};

/// Entries kept; about 150 bytes each.
pub const CAPACITY: usize = 50_000;
/// Longest id kept, bytes; a longer one is cut (ids are a harness's, normally 16 hex digits).
pub const MAX_ID_BYTES: usize = 64;

/// How a logged request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Answered to a connected client.
    Completed,
    /// Work done, client gone.
    Abandoned,
    /// Work stopped early, client gone.
    Cancelled,
    /// Refused: the worker queue was full; no work.
    Refused,
}

impl From<Outcome> for Ended {
    fn from(o: Outcome) -> Ended {
        match o {
            Outcome::Completed => Ended::Completed,
            Outcome::Abandoned => Ended::Abandoned,
            Outcome::Cancelled => Ended::Cancelled,
        }
    }
}

/// One request as the upstream saw it. Times are `CLOCK_MONOTONIC` ns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Its `x-request-id`.
    pub id: String,
    /// Its `x-api-key` (`-`: none).
    pub key: String,
    /// How it ended.
    pub outcome: Ended,
    /// When it arrived and was queued for a worker.
    pub enqueued_ns: u64,
    /// When a worker took it.
    pub started_ns: u64,
    /// When its work ended.
    pub ended_ns: u64,
    /// Seconds it waited for a worker.
    pub queue_wait_s: f64,
    /// Wall seconds of its work (a worker held).
    pub wall_s: f64,
    /// Thread CPU seconds of its work.
    pub cpu_s: f64,
}

impl Entry {
    /// An entry for a request that ended at `ended_ns` after `cost`.
    pub fn new(id: &str, key: &str, outcome: Ended, cost: Cost, ended_ns: u64) -> Entry {
        let wall_ns = cost.wall.as_nanos() as u64;
        let wait_ns = cost.queue_wait.as_nanos() as u64;
        let started_ns = ended_ns.saturating_sub(wall_ns);
        let mut cut = id.len().min(MAX_ID_BYTES);
        while !id.is_char_boundary(cut) {
            cut -= 1;
        }
        Entry {
            id: id[..cut].to_string(),
            key: key.to_string(),
            outcome,
            enqueued_ns: started_ns.saturating_sub(wait_ns),
            started_ns,
            ended_ns,
            queue_wait_s: cost.queue_wait.as_secs_f64(),
            wall_s: cost.wall.as_secs_f64(),
            cpu_s: cost.cpu.as_secs_f64(),
        }
    }
}

/// The `/requests` document (read back by a harness with `Deserialize`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Entries the ring keeps.
    pub capacity: usize,
    /// Entries dropped (the oldest) since the start or the last reset.
    pub dropped: u64,
    /// The entries, oldest end first.
    pub requests: Vec<Entry>,
}

/// The ring. One mutex, held for a push: requests with ids are the audit's, not a hot path.
#[derive(Debug)]
pub struct RequestLog {
    ring: Mutex<(VecDeque<Entry>, u64)>,
    capacity: usize,
}

impl Default for RequestLog {
    fn default() -> Self {
        RequestLog::with_capacity(CAPACITY)
    }
}

impl RequestLog {
    /// A ring of `capacity` entries (at least 1).
    pub fn with_capacity(capacity: usize) -> RequestLog {
        RequestLog {
            ring: Mutex::new((VecDeque::new(), 0)),
            capacity: capacity.max(1),
        }
    }

    /// Keeps `entry`, dropping the oldest when full.
    pub fn push(&self, entry: Entry) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.0.len() == self.capacity {
            ring.0.pop_front();
            ring.1 += 1;
        }
        ring.0.push_back(entry);
    }

    /// Empties the ring and its dropped count.
    pub fn reset(&self) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.0.clear();
        ring.1 = 0;
    }

    /// A copy of the ring.
    pub fn document(&self) -> Document {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        Document {
            capacity: self.capacity,
            dropped: ring.1,
            requests: ring.0.iter().cloned().collect(),
        }
    }
}

impl Document {
    /// The `/requests` JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_ring_keeps_the_newest_and_counts_the_dropped() {
        let log = RequestLog::with_capacity(2);
        let cost = Cost {
            cpu: Duration::from_millis(300),
            wall: Duration::from_millis(400),
            queue_wait: Duration::from_millis(100),
        };
        for id in ["a", "b", "c"] {
            log.push(Entry::new(id, "k", Ended::Abandoned, cost, 1_000_000_000));
        }
        let doc = log.document();
        assert_eq!(doc.dropped, 1);
        assert_eq!(doc.requests.len(), 2);
        assert_eq!(doc.requests[0].id, "b");
        let e = &doc.requests[1];
        assert_eq!(
            (e.started_ns, e.enqueued_ns, e.ended_ns),
            (600_000_000, 500_000_000, 1_000_000_000)
        );
        let json: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
        assert_eq!(json["requests"][1]["outcome"], "abandoned");
        assert_eq!(json["capacity"], 2);
        log.reset();
        assert_eq!(log.document().requests.len(), 0);
        let long = "é".repeat(40);
        let cut = Entry::new(&long, "k", Ended::Refused, Cost::default(), 0);
        assert!(cut.id.len() <= MAX_ID_BYTES);
    }
}
