//! What each gateway mode logged for a client abort, beside what the
//! upstream did meanwhile: the abort audit's answer in one row per mode
//! (the README's table of gateways).
//!
//! Takes one mode's requests joined by id ([`JoinedRequest`]); looks at
//! those the client gave up on at its timeout that the gateway logged and
//! the upstream worked on, and hands on an [`AbortBehaviour`]: what the
//! gateway logged for most of them (status, termination state, upstream
//! status), the time it accounted per request, how the upstream's work on
//! them ended and how long it took, and the under-count over them. Pure:
//! no I/O, no clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::accounting::{UnderCount, under_count};
use super::join::JoinedRequest;
use super::round;

/// One mode's client aborts: what the gateway logged, what the upstream did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbortBehaviour {
    /// The mode (`nginx-off`).
    pub mode: String,
    /// What ran (`nginx/1.22.1`).
    pub gateway: String,
    /// Requests the client gave up on at its timeout that the gateway
    /// logged and the upstream worked on.
    pub requests: u64,
    /// What the gateway logged for most of them: the status, with the
    /// termination state when it logs one (`499`, `400 CH`, `200 --`).
    pub logged: String,
    /// How many of them it logged so.
    pub logged_requests: u64,
    /// The upstream status it logged for most of them (`-`: none).
    pub upstream_status: String,
    /// Seconds it accounted per request, the median.
    pub accounted_median_s: f64,
    /// How the upstream's work on most of them ended: `abandoned` (it
    /// worked on after the gateway had gone), `completed` (it answered the
    /// gateway), `cancelled` (it stopped when the gateway left).
    pub upstream_outcome: String,
    /// How many of them ended so.
    pub upstream_outcome_requests: u64,
    /// Upstream worker seconds per request, the median.
    pub upstream_wall_median_s: f64,
    /// Seconds the gateway accounted for them all.
    pub accounted_s: f64,
    /// Upstream worker seconds they cost.
    pub true_s: f64,
    /// `true_s / accounted_s` (see [`under_count`]).
    pub under_count: Option<f64>,
    /// Why `under_count` is or is not a number.
    pub under_count_status: UnderCount,
}

/// The commonest of `values` and how often it came (ties: the first in
/// order); `None` when there are none.
fn commonest<'a>(values: impl Iterator<Item = &'a str>) -> Option<(String, u64)> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let top = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == top)
        .map(|(v, n)| (v.to_string(), n))
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// What `mode` (whose gateway is `gateway`) logged for the requests of
/// `joined` whose client gave up at its timeout; `None` when there were
/// none the gateway logged and the upstream worked on.
pub fn behaviour(mode: &str, gateway: &str, joined: &[JoinedRequest]) -> Option<AbortBehaviour> {
    let aborted: Vec<&JoinedRequest> = joined
        .iter()
        .filter(|r| r.client_outcome == "client_timeout")
        .filter(|r| r.gateway_status.is_some() && r.upstream_wall_s.is_some())
        .collect();
    let labels: Vec<String> = aborted
        .iter()
        .map(|r| {
            let status = r.gateway_status.unwrap_or(0);
            match &r.gateway_termination {
                Some(ts) => format!("{status} {ts}"),
                None => status.to_string(),
            }
        })
        .collect();
    let (logged, logged_requests) = commonest(labels.iter().map(String::as_str))?;
    let (upstream_status, _) = commonest(
        aborted
            .iter()
            .map(|r| r.gateway_upstream_status.as_deref().unwrap_or("-")),
    )?;
    let (upstream_outcome, upstream_outcome_requests) = commonest(
        aborted
            .iter()
            .map(|r| r.upstream_outcome.as_deref().unwrap_or("-")),
    )?;
    let accounted: Vec<f64> = aborted
        .iter()
        .map(|r| r.accounted_s.unwrap_or(0.0))
        .collect();
    let walls: Vec<f64> = aborted.iter().filter_map(|r| r.upstream_wall_s).collect();
    let accounted_s = round(accounted.iter().sum(), 6);
    let true_s = round(walls.iter().sum(), 6);
    let (factor, status) = under_count(Some(accounted_s), Some(true_s));
    Some(AbortBehaviour {
        mode: mode.to_string(),
        gateway: gateway.to_string(),
        requests: aborted.len() as u64,
        logged,
        logged_requests,
        upstream_status,
        accounted_median_s: round(median(accounted), 6),
        upstream_outcome,
        upstream_outcome_requests,
        upstream_wall_median_s: round(median(walls), 6),
        accounted_s,
        true_s,
        under_count: factor,
        under_count_status: status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        outcome: &str,
        status: u16,
        ts: Option<&str>,
        acct: f64,
        wall: f64,
    ) -> JoinedRequest {
        JoinedRequest {
            id: format!("{acct}-{wall}"),
            key: "exporter".into(),
            intended_at_s: 0.0,
            client_outcome: outcome.into(),
            client_s: acct,
            gateway_status: Some(status),
            gateway_termination: ts.map(str::to_string),
            gateway_client_abort: status == 499 || ts.is_some_and(|t| t.starts_with('C')),
            gateway_upstream_status: Some(if status == 200 { "200" } else { "-" }.into()),
            accounted_s: Some(acct),
            upstream_outcome: Some(
                if status == 200 {
                    "completed"
                } else {
                    "abandoned"
                }
                .into(),
            ),
            upstream_started_at_s: Some(0.0),
            upstream_ended_at_s: Some(wall),
            upstream_queue_wait_s: Some(0.0),
            upstream_wall_s: Some(wall),
            upstream_cpu_s: Some(wall),
        }
    }

    #[test]
    fn the_commonest_log_of_an_abort_beside_what_the_upstream_did() {
        let joined = [
            request("client_timeout", 400, Some("CH"), 0.05, 0.3),
            request("client_timeout", 400, Some("CH"), 0.04, 0.2),
            request("client_timeout", 400, Some("CH"), 0.06, 0.4),
            request("client_timeout", 200, Some("--"), 0.3, 0.3),
            // Not aborts: answered, or never logged.
            request("200", 200, Some("--"), 0.001, 0.001),
        ];
        let b = behaviour("haproxy-early", "haproxy/2.6", &joined).unwrap();
        assert_eq!(
            (b.requests, b.logged.as_str(), b.logged_requests),
            (4, "400 CH", 3)
        );
        assert_eq!(b.upstream_status, "-");
        assert_eq!(
            (b.upstream_outcome.as_str(), b.upstream_outcome_requests),
            ("abandoned", 3)
        );
        assert_eq!(b.accounted_median_s, 0.055);
        assert_eq!(b.upstream_wall_median_s, 0.3);
        assert_eq!((b.accounted_s, b.true_s), (0.45, 1.2));
        assert_eq!(b.under_count, Some(2.667));
        let none = behaviour("x", "y", &joined[4..]);
        assert_eq!(none, None);
        // nginx: no termination state.
        let nginx = [request("client_timeout", 499, None, 0.05, 0.3)];
        assert_eq!(
            behaviour("nginx-off", "nginx", &nginx).unwrap().logged,
            "499"
        );
    }
}
