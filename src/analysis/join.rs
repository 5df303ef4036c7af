//! The per-request join of the abort audit: each request the client sent
//! with an `x-request-id`, matched with the gateway's line and the
//! upstream's entry for the same id; and the noisy neighbour measured over
//! the joined requests.
//!
//! Takes the client's records (the driver's request log), the gateway's
//! id-carrying lines and the mock upstream's `/requests` document; hands on
//! [`JoinedRequest`]s (`requests.csv`), the join's counts and a
//! [`Neighbour`]. Ids the client did not keep are counted, never guessed
//! at. Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};

use mock_upstream::requests::{Document, Ended, Entry};
use serde::{Deserialize, Serialize};

use super::gateway_log::LoggedRequest;
use super::round;
use crate::driver::request_log::{RequestLogOutput, id_text};
use crate::outcome::Outcome;

/// Counts of the per-request join of one mode.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct JoinStats {
    /// Client records kept with an id (sent requests).
    pub client_requests: u64,
    /// Client records dropped because the driver's ring was full.
    pub client_dropped: u64,
    /// Gateway lines that carried an id.
    pub gateway_lines: u64,
    /// Gateway lines with an id left out (the reader's bound).
    pub gateway_dropped: u64,
    /// Upstream per-request entries.
    pub upstream_entries: u64,
    /// Upstream entries dropped because its ring was full.
    pub upstream_dropped: u64,
    /// Client requests matched to a gateway line.
    pub joined_gateway: u64,
    /// Client requests matched to an upstream entry.
    pub joined_upstream: u64,
}

/// The noisy neighbour: how the other keys fared while the heavy key's
/// work held upstream workers, and while it did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    /// The key whose work is watched: the one whose requests the client
    /// abandoned most (the exporter), else the one with the most worker time.
    pub heavy_key: String,
    /// Seconds of the load during which at least one of its requests was
    /// running on an upstream worker.
    pub heavy_running_s: f64,
    /// Seconds of the load during which none was.
    pub heavy_idle_s: f64,
    /// Every other key, by the intended send time of its requests.
    pub keys: BTreeMap<String, NeighbourKey>,
}

/// One key's requests in the two spans of a [`Neighbour`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NeighbourKey {
    /// Sent while the heavy key's work ran.
    pub during: Span,
    /// Sent while it did not.
    pub outside: Span,
}

/// A key's requests sent within a span of time.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Span {
    /// Requests.
    pub requests: u64,
    /// Of those, 2xx responses.
    pub ok: u64,
    /// P99 latency from the intended send time, us; `null` without requests.
    pub p99_us: Option<u64>,
    /// 2xx responses per second of the span; `null` for an empty span.
    pub goodput_per_s: Option<f64>,
}

/// One request joined across the client, the gateway's line and the
/// upstream's entry by its `x-request-id`. Times in seconds; `*_at_s` from
/// the load's start. A side with no record is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinedRequest {
    /// The request id.
    pub id: String,
    /// The API key (`-`: none).
    pub key: String,
    /// Intended send time.
    pub intended_at_s: f64,
    /// What the client got: the exact status, or `client_timeout`, `io_error`, ...
    pub client_outcome: String,
    /// Client-facing time: intended send to the response or the timeout.
    pub client_s: f64,
    /// Status the gateway logged.
    pub gateway_status: Option<u16>,
    /// The gateway's termination state (HAProxy's `%ts`); `None` for a
    /// gateway that logs none, or no line.
    #[serde(default)]
    pub gateway_termination: Option<String>,
    /// The gateway's line says the client left first (499, or HAProxy's `C...`).
    #[serde(default)]
    pub gateway_client_abort: bool,
    /// `$upstream_status` as the gateway logged it (`-`: none).
    pub gateway_upstream_status: Option<String>,
    /// Seconds the gateway accounted for it.
    pub accounted_s: Option<f64>,
    /// How the upstream's work ended (`completed`, `abandoned`, `cancelled`, `refused`).
    pub upstream_outcome: Option<String>,
    /// When an upstream worker took it.
    pub upstream_started_at_s: Option<f64>,
    /// When its work ended.
    pub upstream_ended_at_s: Option<f64>,
    /// Seconds it waited for a worker.
    pub upstream_queue_wait_s: Option<f64>,
    /// Wall seconds of its work: the worker time it really cost.
    pub upstream_wall_s: Option<f64>,
    /// Thread CPU seconds of its work.
    pub upstream_cpu_s: Option<f64>,
}

/// The client's name for an outcome: the exact status, else its class.
pub fn outcome_name(outcome: Outcome) -> String {
    match outcome {
        Outcome::Response(status) => status.to_string(),
        other => other.class().name().to_string(),
    }
}

/// The upstream's name for how a request's work ended, as `/requests` spells it.
fn ended_name(ended: Ended) -> &'static str {
    match ended {
        Ended::Completed => "completed",
        Ended::Abandoned => "abandoned",
        Ended::Cancelled => "cancelled",
        Ended::Refused => "refused",
    }
}

fn since_s(t_ns: u64, start_ns: u64) -> f64 {
    round((t_ns as f64 - start_ns as f64) / 1e9, 6)
}

/// Joins the client's records with the gateway's lines and the upstream's
/// entries by request id. Only requests the client sent (with an id) are
/// joined; ids the client did not keep are counted, never guessed at.
pub fn join(
    client: &RequestLogOutput,
    key_names: &[String],
    gateway: &[LoggedRequest],
    gateway_dropped: u64,
    upstream: &Document,
) -> (Vec<JoinedRequest>, JoinStats) {
    let lines: HashMap<&str, &LoggedRequest> = gateway.iter().map(|l| (l.id.as_str(), l)).collect();
    let entries: HashMap<&str, &Entry> = upstream
        .requests
        .iter()
        .map(|e| (e.id.as_str(), e))
        .collect();
    let mut stats = JoinStats {
        client_dropped: client.dropped,
        gateway_lines: gateway.len() as u64,
        gateway_dropped,
        upstream_entries: upstream.requests.len() as u64,
        upstream_dropped: upstream.dropped,
        ..JoinStats::default()
    };
    let start = client.start_ns;
    let mut joined = Vec::new();
    for record in &client.records {
        let Some(id) = record.id else { continue };
        stats.client_requests += 1;
        let id = id_text(id);
        let line = lines.get(id.as_str()).copied();
        let entry = entries.get(id.as_str()).copied();
        stats.joined_gateway += u64::from(line.is_some());
        stats.joined_upstream += u64::from(entry.is_some());
        joined.push(JoinedRequest {
            key: key_names
                .get(record.key)
                .cloned()
                .unwrap_or_else(|| "-".into()),
            intended_at_s: since_s(record.intended_ns, start),
            client_outcome: outcome_name(record.outcome),
            client_s: round(
                record.end_ns.saturating_sub(record.intended_ns) as f64 / 1e9,
                6,
            ),
            gateway_status: line.map(|l| l.status),
            gateway_termination: line.and_then(|l| l.termination.clone()),
            gateway_client_abort: line.is_some_and(|l| l.client_abort),
            gateway_upstream_status: line.map(|l| l.upstream_status.clone()),
            accounted_s: line.map(|l| round(l.accounted_s, 6)),
            upstream_outcome: entry.map(|e| ended_name(e.outcome).to_string()),
            upstream_started_at_s: entry.map(|e| since_s(e.started_ns, start)),
            upstream_ended_at_s: entry.map(|e| since_s(e.ended_ns, start)),
            upstream_queue_wait_s: entry.map(|e| round(e.queue_wait_s, 6)),
            upstream_wall_s: entry.map(|e| round(e.wall_s, 6)),
            upstream_cpu_s: entry.map(|e| round(e.cpu_s, 6)),
            id,
        });
    }
    (joined, stats)
}

/// Seconds of `[from, to]` covered by `intervals` (merged first).
fn covered_s(mut intervals: Vec<(f64, f64)>, from: f64, to: f64) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut reach = from;
    for (start, end) in intervals {
        let (start, end) = (start.max(reach), end.min(to));
        if end > start {
            total += end - start;
            reach = end;
        }
    }
    total
}

fn inside(intervals: &[(f64, f64)], t: f64) -> bool {
    intervals.iter().any(|&(a, b)| a <= t && t <= b)
}

/// The P99 of `values` (nearest rank); `None` when empty.
fn p99(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64) * 0.99).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// How the `others` keys fared while the `heavy` key's work ran on an
/// upstream worker, and while it did not, over a load of `end_s` seconds.
pub fn neighbour<'a>(
    heavy: &str,
    others: impl Iterator<Item = &'a String>,
    end_s: f64,
    joined: &[JoinedRequest],
) -> Neighbour {
    let running: Vec<(f64, f64)> = joined
        .iter()
        .filter(|r| r.key == heavy)
        .filter_map(|r| Some((r.upstream_started_at_s?, r.upstream_ended_at_s?)))
        .collect();
    let running_s = covered_s(running.clone(), 0.0, end_s);
    let idle_s = (end_s - running_s).max(0.0);
    let mut keys = BTreeMap::new();
    for key in others.filter(|k| **k != heavy) {
        let mut spans = [(Span::default(), Vec::new()), (Span::default(), Vec::new())];
        for r in joined.iter().filter(|r| &r.key == key) {
            let during = inside(&running, r.intended_at_s);
            let (span, latencies) = &mut spans[usize::from(!during)];
            span.requests += 1;
            if r.client_outcome.starts_with('2') && r.client_outcome.len() == 3 {
                span.ok += 1;
            }
            latencies.push((r.client_s * 1e6).round() as u64);
        }
        let [(mut during, mut d_lat), (mut outside, mut o_lat)] = spans;
        during.p99_us = p99(&mut d_lat);
        outside.p99_us = p99(&mut o_lat);
        during.goodput_per_s = (running_s > 0.0).then(|| round(during.ok as f64 / running_s, 3));
        outside.goodput_per_s = (idle_s > 0.0).then(|| round(outside.ok as f64 / idle_s, 3));
        keys.insert(key.clone(), NeighbourKey { during, outside });
    }
    Neighbour {
        heavy_key: heavy.to_string(),
        heavy_running_s: round(running_s, 3),
        heavy_idle_s: round(idle_s, 3),
        keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_time_merges_overlaps_and_clips() {
        assert_eq!(
            covered_s(vec![(0.5, 1.5), (0.0, 1.0), (3.0, 9.0)], 0.0, 4.0),
            2.5
        );
        assert_eq!(covered_s(Vec::new(), 0.0, 4.0), 0.0);
        assert_eq!(p99(&mut []), None);
        let mut v: Vec<u64> = (1..=200).collect();
        assert_eq!(p99(&mut v), Some(198));
    }
}
