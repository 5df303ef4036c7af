//! The abort audit's arithmetic: per gateway mode and API key, the worker
//! time the gateway accounted against the time the upstream really worked.
//!
//! Takes what one run already collected: the gateway's access log read into
//! per-key accounting, the mock upstream's `/accounting` (both as the JSON
//! the run holds) and the client's outcomes per key. Hands on a [`KeyAudit`]
//! per key and a [`ModeAudit`] per mode, which `summary.json`, the console
//! table and `abort-audit.csv` show. Pure: no I/O, no clock, no running.
//!
//! Missing values are never made up. A key the gateway logged no line for
//! has `accounted_s` `null` (nginx's `-`), which is not the same as a key
//! whose lines accounted 0 s; a key the upstream never worked for has
//! `true_s` `null`. The under-count factor is a number only when both sides
//! are real and more than 0; otherwise it is `null` and
//! [`UnderCount`] says which case it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What became of the factor `true / accounted` of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnderCount {
    /// Both sides are real and more than 0: `under_count` holds the ratio.
    Ratio,
    /// The gateway logged no line for the key (shown `-`): nothing to compare.
    NoGatewayLines,
    /// The gateway logged lines but accounted 0 s while the upstream worked:
    /// an unbounded under-count (shown `unaccounted`).
    NothingAccounted,
    /// The upstream has no record of work for the key, or 0 s of it (shown `n/a`).
    NoUpstreamWork,
}

/// The factor `true_s / accounted_s` and which case it is. The order of the
/// checks makes each case unique: no lines first (there is no accounted
/// value at all), then no upstream work (nothing to under-count), then
/// nothing accounted (a real 0 against real work).
pub fn under_count(accounted_s: Option<f64>, true_s: Option<f64>) -> (Option<f64>, UnderCount) {
    let Some(accounted) = accounted_s else {
        return (None, UnderCount::NoGatewayLines);
    };
    let truth = match true_s {
        Some(t) if t > 0.0 => t,
        _ => return (None, UnderCount::NoUpstreamWork),
    };
    if accounted <= 0.0 {
        return (None, UnderCount::NothingAccounted);
    }
    (Some(round(truth / accounted, 3)), UnderCount::Ratio)
}

/// The client's side of one key, from the driver.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientKey {
    /// Requests the client gave up on at its timeout (`client_timeout`).
    pub abandoned: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    /// P99 latency from the intended send time, us.
    pub p99_us: u64,
}

/// The mock upstream's counts of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamCounts {
    /// Requests that began work.
    pub started: u64,
    /// Answered to a connected client (the gateway).
    pub completed: u64,
    /// Work done after the client (the gateway) had gone.
    pub abandoned: u64,
    /// Stopped early because the client had gone.
    pub cancelled: u64,
    /// Refused: the worker queue was full.
    pub refused: u64,
}

/// One key in one mode: the gateway's account against the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyAudit {
    /// Lines the gateway logged for the key.
    pub gateway_lines: u64,
    /// Seconds the gateway accounted (its `acct`, else `$upstream_response_time`);
    /// `null` when it logged no line for the key.
    pub accounted_s: Option<f64>,
    /// Seconds the upstream's workers spent on the key's requests (wall
    /// time from a worker taking a request to its work's end: what a worker
    /// pool is short of); `null` when the upstream has no record of the key.
    pub true_s: Option<f64>,
    /// Of that, thread CPU seconds.
    pub true_cpu_s: Option<f64>,
    /// Seconds the key's requests waited for an upstream worker (not in
    /// `true_s`; a gateway that waits for the answer accounts it too).
    pub upstream_queue_wait_s: Option<f64>,
    /// `true_s / accounted_s`: above 1 the gateway under-counts; `null`
    /// unless both are more than 0 (see `under_count_status`).
    pub under_count: Option<f64>,
    /// Why `under_count` is or is not a number.
    pub under_count_status: UnderCount,
    /// Lines per status as the gateway logged them (for a key whose every
    /// request outlives its client timeout: the statuses of the aborts).
    pub logged_statuses: BTreeMap<String, u64>,
    /// Lines logged `499` (the client left first).
    pub logged_client_aborts: u64,
    /// Lines logged `504` (the gateway's own timeout: under-counts the same
    /// way when the upstream does not cancel).
    pub logged_gateway_timeouts: u64,
    /// Lines whose `$upstream_status` was `-`.
    pub logged_upstream_status_missing: u64,
    /// The upstream's counts for the key.
    pub upstream: UpstreamCounts,
    /// Requests the client abandoned at its timeout.
    pub client_abandoned: u64,
    /// 2xx responses per second the client received (goodput).
    pub client_goodput_per_s: f64,
    /// The client's P99 latency, us.
    pub client_p99_us: u64,
}

/// One gateway mode of the audit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModeAudit {
    /// What ran (`contend 0.1.0`, `nginx/1.22.1`); `null` when skipped.
    pub gateway: Option<String>,
    /// Why the mode did not run (e.g. nginx is not installed); `null` when it ran.
    pub skipped: Option<String>,
    /// The mode's load duration, s.
    pub duration_s: f64,
    /// Per API key.
    pub keys: BTreeMap<String, KeyAudit>,
}

/// The whole audit: `summary.json`'s `abort_audit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AbortAudit {
    /// The modes in the order they ran (names as in `[abort_audit] modes`).
    pub order: Vec<String>,
    /// Per mode, by name.
    pub modes: BTreeMap<String, ModeAudit>,
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn u(v: Option<&Value>, name: &str) -> u64 {
    v.and_then(|v| v.get(name))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn f(v: Option<&Value>, name: &str) -> Option<f64> {
    v.and_then(|v| v.get(name))
        .and_then(Value::as_f64)
        .map(|x| round(x, 6))
}

/// One key's audit from its entry in the gateway accounting (`keys.K` of
/// `gateway_accounting`; `None`: no line), its entry in the upstream's
/// `/accounting` (`keys.K`; `None`: no record), the client's figures and
/// the load's duration in seconds.
pub fn key_audit(
    gateway: Option<&Value>,
    upstream: Option<&Value>,
    client: ClientKey,
    duration_s: f64,
) -> KeyAudit {
    let accounted_s = gateway
        .and_then(|g| g.get("accounted_s"))
        .and_then(Value::as_f64)
        .map(|x| round(x, 6));
    let true_s = f(upstream, "wall_s");
    let (factor, status) = under_count(accounted_s, true_s);
    let logged_statuses: BTreeMap<String, u64> = gateway
        .and_then(|g| g.get("by_status"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let status_count = |code: &str| logged_statuses.get(code).copied().unwrap_or(0);
    KeyAudit {
        gateway_lines: u(gateway, "requests"),
        accounted_s,
        true_s,
        true_cpu_s: f(upstream, "cpu_s"),
        upstream_queue_wait_s: f(upstream, "queue_wait_s"),
        under_count: factor,
        under_count_status: status,
        logged_client_aborts: status_count("499"),
        logged_gateway_timeouts: status_count("504"),
        logged_upstream_status_missing: u(gateway, "upstream_status_missing"),
        logged_statuses,
        upstream: UpstreamCounts {
            started: u(upstream, "started"),
            completed: u(upstream, "completed"),
            abandoned: u(upstream, "abandoned"),
            cancelled: u(upstream, "cancelled"),
            refused: u(upstream, "refused"),
        },
        client_abandoned: client.abandoned,
        client_goodput_per_s: if duration_s > 0.0 {
            round(client.ok as f64 / duration_s, 3)
        } else {
            0.0
        },
        client_p99_us: client.p99_us,
    }
}

/// One mode's audit: a row per key of `keys` (with `clients` in the same
/// order), from the run's `gateway_accounting` and `upstream_accounting`.
pub fn mode_audit(
    keys: &[String],
    clients: &[ClientKey],
    gateway_accounting: Option<&Value>,
    upstream_accounting: Option<&Value>,
    duration_s: f64,
) -> ModeAudit {
    let entry = |doc: Option<&Value>, key: &str| {
        doc.and_then(|d| d.get("keys"))
            .and_then(|k| k.get(key))
            .cloned()
    };
    ModeAudit {
        gateway: gateway_accounting
            .and_then(|g| g.get("version"))
            .and_then(Value::as_str)
            .map(str::to_string),
        skipped: None,
        duration_s: round(duration_s, 3),
        keys: keys
            .iter()
            .zip(
                clients
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(ClientKey::default())),
            )
            .map(|(key, client)| {
                let gateway = entry(gateway_accounting, key);
                let upstream = entry(upstream_accounting, key);
                (
                    key.clone(),
                    key_audit(gateway.as_ref(), upstream.as_ref(), client, duration_s),
                )
            })
            .collect(),
    }
}

/// A skipped mode, with the reason.
pub fn skipped(reason: impl Into<String>) -> ModeAudit {
    ModeAudit {
        skipped: Some(reason.into()),
        ..ModeAudit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_factor_keeps_missing_and_zero_apart_from_real_values() {
        // (accounted_s, true_s, factor, status)
        let cases = [
            (Some(0.5), Some(3.0), Some(6.0), UnderCount::Ratio),
            (Some(3.0), Some(3.0), Some(1.0), UnderCount::Ratio),
            (Some(4.0), Some(3.0), Some(0.75), UnderCount::Ratio),
            (None, Some(3.0), None, UnderCount::NoGatewayLines),
            (None, None, None, UnderCount::NoGatewayLines),
            (Some(0.0), Some(3.0), None, UnderCount::NothingAccounted),
            (Some(0.0), Some(0.0), None, UnderCount::NoUpstreamWork),
            (Some(0.0), None, None, UnderCount::NoUpstreamWork),
            (Some(1.0), Some(0.0), None, UnderCount::NoUpstreamWork),
        ];
        for (accounted, truth, factor, status) in cases {
            assert_eq!(
                under_count(accounted, truth),
                (factor, status),
                "{accounted:?} {truth:?}"
            );
        }
    }

    #[test]
    fn a_key_row_reads_both_sides_and_the_client() {
        let gateway = json!({
            "requests": 20, "by_status": {"499": 18, "504": 2}, "client_aborts": 18,
            "upstream_status_missing": 18, "accounted_s": 1.0, "upstream_response_time_s": 1.0,
            "request_time_s": 1.0
        });
        let upstream = json!({
            "started": 20, "completed": 0, "abandoned": 20, "cancelled": 0, "refused": 1,
            "cpu_s": 5.9, "wall_s": 6.2, "queue_wait_s": 0.4
        });
        let client = ClientKey {
            abandoned: 20,
            ok: 0,
            p99_us: 50_000,
        };
        let row = key_audit(Some(&gateway), Some(&upstream), client, 4.0);
        assert_eq!(row.gateway_lines, 20);
        assert_eq!(row.accounted_s, Some(1.0));
        assert_eq!(row.true_s, Some(6.2));
        assert_eq!(row.true_cpu_s, Some(5.9));
        assert_eq!(row.upstream_queue_wait_s, Some(0.4));
        assert_eq!(
            (row.under_count, row.under_count_status),
            (Some(6.2), UnderCount::Ratio)
        );
        assert_eq!(
            (row.logged_client_aborts, row.logged_gateway_timeouts),
            (18, 2)
        );
        assert_eq!(row.logged_upstream_status_missing, 18);
        assert_eq!(
            row.upstream,
            UpstreamCounts {
                started: 20,
                completed: 0,
                abandoned: 20,
                cancelled: 0,
                refused: 1
            }
        );
        assert_eq!((row.client_abandoned, row.client_p99_us), (20, 50_000));
        assert_eq!(row.client_goodput_per_s, 0.0);
    }

    #[test]
    fn a_mode_has_a_row_per_scenario_key_even_without_lines_or_work() {
        let gateway = json!({"version": "nginx/1.22.1", "keys": {
            "ui": {"requests": 10, "by_status": {"200": 10}, "accounted_s": 0.02, "upstream_status_missing": 0},
            "quiet": {"requests": 3, "by_status": {"429": 3}, "accounted_s": 0.0, "upstream_status_missing": 3}
        }});
        let upstream = json!({"keys": {
            "ui": {"started": 10, "completed": 10, "cpu_s": 0.01, "wall_s": 0.02, "queue_wait_s": 0.0},
            "ghost": {"started": 1, "completed": 1, "cpu_s": 0.3, "wall_s": 0.3, "queue_wait_s": 0.0}
        }});
        let keys: Vec<String> = ["ui", "quiet", "ghost", "absent"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let clients = [ClientKey {
            abandoned: 0,
            ok: 10,
            p99_us: 900,
        }];
        let mode = mode_audit(&keys, &clients, Some(&gateway), Some(&upstream), 2.0);
        assert_eq!(mode.gateway.as_deref(), Some("nginx/1.22.1"));
        assert_eq!(mode.keys.len(), 4);
        // (key, accounted_s, true_s, factor, status)
        let cases = [
            ("ui", Some(0.02), Some(0.02), Some(1.0), UnderCount::Ratio),
            ("quiet", Some(0.0), None, None, UnderCount::NoUpstreamWork),
            ("ghost", None, Some(0.3), None, UnderCount::NoGatewayLines),
            ("absent", None, None, None, UnderCount::NoGatewayLines),
        ];
        for (key, accounted, truth, factor, status) in cases {
            let row = &mode.keys[key];
            assert_eq!(
                (
                    row.accounted_s,
                    row.true_s,
                    row.under_count,
                    row.under_count_status
                ),
                (accounted, truth, factor, status),
                "{key}"
            );
        }
        assert_eq!(mode.keys["ui"].client_goodput_per_s, 5.0);
        // Serialised, a missing side is null, never 0.
        let v = serde_json::to_value(&mode).unwrap();
        assert_eq!(v["keys"]["ghost"]["accounted_s"], Value::Null);
        assert_eq!(v["keys"]["ghost"]["under_count_status"], "no_gateway_lines");
        assert_eq!(v["keys"]["quiet"]["accounted_s"], 0.0);
    }
}
