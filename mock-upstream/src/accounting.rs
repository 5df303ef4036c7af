//! Ground truth per API key: how many requests started and how each ended, and the CPU, wall
//! and queue-wait seconds they cost.
//!
//! Takes one record per request from `server` (a start, then an outcome with its costs); hands on
//! snapshots rendered as the `/accounting` JSON and the `/metrics` Prometheus text. It does not
//! measure anything itself or decide outcomes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Key used when a request carries no `x-api-key` header.
pub const NO_KEY: &str = "-";

/// Counters for one key (or the totals). Seconds are sums over requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KeyStats {
    /// Requests that began work (entered a worker queue or ran inline).
    pub started: u64,
    /// Requests answered with the client still connected.
    pub completed: u64,
    /// Requests whose work finished after the client had gone (`on_disconnect = run`).
    pub abandoned: u64,
    /// Requests stopped early because the client had gone (`on_disconnect = cancel`).
    pub cancelled: u64,
    /// Requests refused because the worker queue was full (connection reset); never started.
    pub refused: u64,
    /// Thread CPU seconds spent on the requests' work.
    pub cpu_s: f64,
    /// The part of `cpu_s` spent on requests whose client had gone (abandoned or cancelled):
    /// work nobody read.
    pub wasted_cpu_s: f64,
    /// Wall seconds from a worker taking a request to its work ending (CPU plus sleep).
    pub wall_s: f64,
    /// Seconds requests waited for a worker (or a thread) before their work began.
    pub queue_wait_s: f64,
}

impl KeyStats {
    fn add(&mut self, other: &KeyStats) {
        self.started += other.started;
        self.completed += other.completed;
        self.abandoned += other.abandoned;
        self.cancelled += other.cancelled;
        self.refused += other.refused;
        self.cpu_s += other.cpu_s;
        self.wasted_cpu_s += other.wasted_cpu_s;
        self.wall_s += other.wall_s;
        self.queue_wait_s += other.queue_wait_s;
    }
}

/// How a started request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered to a connected client.
    Completed,
    /// Work done, client gone.
    Abandoned,
    /// Work stopped early, client gone.
    Cancelled,
}

/// The costs of one request's work.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Thread CPU time used.
    pub cpu: Duration,
    /// Wall time from the work's start to its end.
    pub wall: Duration,
    /// Time waited before the work started.
    pub queue_wait: Duration,
}

/// The `/accounting` document (read back by a harness with `Deserialize`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Counters per key, sorted by key.
    pub keys: BTreeMap<String, KeyStats>,
    /// Sum over all keys.
    pub totals: KeyStats,
}

/// The live counters. One mutex: the lock is held for a hash lookup and a few additions, which
/// costs far less than the HTTP work around it, and keeps a snapshot consistent across keys.
#[derive(Debug, Default)]
pub struct Accounting {
    keys: Mutex<HashMap<String, KeyStats>>,
}

impl Accounting {
    fn with_key(&self, key: &str, update: impl FnOnce(&mut KeyStats)) {
        // A poisoned lock only means another thread panicked mid-update of plain counters;
        // the numbers are still the best truth there is.
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        // Look up by &str first so the hot path does not allocate a String per request.
        match keys.get_mut(key) {
            Some(stats) => update(stats),
            None => update(keys.entry(key.to_string()).or_default()),
        }
    }

    /// Counts a request that began work.
    pub fn start(&self, key: &str) {
        self.with_key(key, |s| s.started += 1);
    }

    /// Counts a request refused because the queue was full.
    pub fn refuse(&self, key: &str) {
        self.with_key(key, |s| s.refused += 1);
    }

    /// Counts a request with no work, started and completed at once (one lock, not two).
    pub fn start_and_complete(&self, key: &str) {
        self.with_key(key, |s| {
            s.started += 1;
            s.completed += 1;
        });
    }

    /// Records how a started request ended and what it cost.
    pub fn finish(&self, key: &str, outcome: Outcome, cost: Cost) {
        self.with_key(key, |s| {
            match outcome {
                Outcome::Completed => s.completed += 1,
                Outcome::Abandoned => s.abandoned += 1,
                Outcome::Cancelled => s.cancelled += 1,
            }
            s.cpu_s += cost.cpu.as_secs_f64();
            if outcome != Outcome::Completed {
                s.wasted_cpu_s += cost.cpu.as_secs_f64();
            }
            s.wall_s += cost.wall.as_secs_f64();
            s.queue_wait_s += cost.queue_wait.as_secs_f64();
        });
    }

    /// Zeroes every counter. Requests in flight still record their end afterwards.
    pub fn reset(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A consistent copy of all counters with their totals.
    pub fn snapshot(&self) -> Snapshot {
        let keys: BTreeMap<String, KeyStats> = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut totals = KeyStats::default();
        for stats in keys.values() {
            totals.add(stats);
        }
        Snapshot { keys, totals }
    }
}

impl Snapshot {
    /// The `/accounting` JSON.
    pub fn to_json(&self) -> String {
        // Serialising maps of plain numbers cannot fail; NaN cannot occur in sums of durations.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The `/metrics` Prometheus text exposition: one counter family per field, labelled by key.
    pub fn to_prometheus(&self) -> String {
        type Field = fn(&KeyStats) -> f64;
        let families: [(&str, &str, Field); 8] = [
            ("started", "Requests that began work", |s| s.started as f64),
            (
                "completed",
                "Requests answered to a connected client",
                |s| s.completed as f64,
            ),
            (
                "abandoned",
                "Requests whose work finished after the client had gone",
                |s| s.abandoned as f64,
            ),
            (
                "cancelled",
                "Requests stopped early because the client had gone",
                |s| s.cancelled as f64,
            ),
            (
                "refused",
                "Requests refused because the worker queue was full",
                |s| s.refused as f64,
            ),
            (
                "cpu_seconds",
                "Thread CPU seconds spent on request work",
                |s| s.cpu_s,
            ),
            (
                "wall_seconds",
                "Wall seconds from work start to work end",
                |s| s.wall_s,
            ),
            (
                "queue_wait_seconds",
                "Seconds requests waited for a worker",
                |s| s.queue_wait_s,
            ),
        ];
        let mut out = String::new();
        for (name, help, field) in families {
            let _ = writeln!(out, "# HELP mock_upstream_{name}_total {help}.");
            let _ = writeln!(out, "# TYPE mock_upstream_{name}_total counter");
            for (key, stats) in &self.keys {
                let _ = writeln!(
                    out,
                    "mock_upstream_{name}_total{{key=\"{}\"}} {}",
                    escape_label(key),
                    field(stats)
                );
            }
        }
        out
    }
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_keys_and_reset_clears() {
        let acct = Accounting::default();
        acct.start("a");
        acct.finish(
            "a",
            Outcome::Completed,
            Cost {
                cpu: Duration::from_millis(10),
                wall: Duration::from_millis(20),
                queue_wait: Duration::from_millis(5),
            },
        );
        acct.start_and_complete(NO_KEY);
        acct.start("b");
        acct.finish("b", Outcome::Cancelled, Cost::default());
        let snap = acct.snapshot();
        assert_eq!(snap.totals.started, 3);
        assert_eq!(snap.totals.completed, 2);
        assert_eq!(snap.totals.cancelled, 1);
        assert!((snap.totals.cpu_s - 0.010).abs() < 1e-9);
        let json: serde_json::Value = serde_json::from_str(&snap.to_json()).unwrap();
        assert_eq!(json["keys"]["a"]["queue_wait_s"], 0.005);
        assert_eq!(json["totals"]["started"], 3);
        acct.reset();
        assert_eq!(acct.snapshot().totals, KeyStats::default());
    }

    #[test]
    fn prometheus_escapes_labels() {
        let acct = Accounting::default();
        acct.start_and_complete("we\"ird\\");
        let text = acct.snapshot().to_prometheus();
        assert!(
            text.contains("mock_upstream_started_total{key=\"we\\\"ird\\\\\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE mock_upstream_cpu_seconds_total counter"));
    }
}
