//! The abort audit's arithmetic: per gateway mode and API key, the worker
//! time the gateway accounted against the time the upstream really worked.
//!
//! Takes what one run already collected, typed: the gateway's access log
//! read into per-key accounting ([`GatewayAccounting`]), the mock
//! upstream's truth ([`Snapshot`]) and the client's outcomes per key; and,
//! request by request, the join of [`super::join`]. Hands on a [`KeyAudit`]
//! per key and a [`ModeAudit`] per mode, the flat [`AuditRow`]s (a row per
//! mode and key, and one for each key's 499s and 504s), the budget's effect
//! and the noisy neighbour, which `summary.json`, the console table,
//! `accounting.csv` and the scatter plot show. Pure: no I/O, no clock, no
//! running.
//!
//! Missing values are never made up. A key the gateway logged no line for
//! has `accounted_s` `null` (nginx's `-`), which is not the same as a key
//! whose lines accounted 0 s; a key the upstream never worked for has
//! `true_s` `null`. The under-count factor is a number only when both sides
//! are real and more than 0; otherwise it is `null` and
//! [`UnderCount`] says which case it is.

use std::collections::BTreeMap;

use mock_upstream::accounting::{KeyStats, Snapshot};
use serde::{Deserialize, Serialize};

use super::gateway_log::{GatewayAccounting, KeyAccounting};
use super::join::neighbour;
// The join's types a ModeAudit holds, where its readers look for them.
pub use super::join::{JoinStats, JoinedRequest, Neighbour, NeighbourKey, Span};
use super::round;

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
    /// Lines that say the client left first: logged `499`, or with a
    /// HAProxy termination state starting with `C`.
    pub logged_client_aborts: u64,
    /// Lines logged `504` (the gateway's own timeout: under-counts the same
    /// way when the upstream does not cancel).
    pub logged_gateway_timeouts: u64,
    /// Lines whose `$upstream_status` was `-`.
    pub logged_upstream_status_missing: u64,
    /// Lines per termination state (HAProxy's `%ts`: `CH`, `sH`, `--`);
    /// empty for a gateway that logs none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logged_terminations: BTreeMap<String, u64>,
    /// The upstream's counts for the key.
    pub upstream: UpstreamCounts,
    /// Requests the client abandoned at its timeout.
    pub client_abandoned: u64,
    /// 2xx responses per second the client received (goodput).
    pub client_goodput_per_s: f64,
    /// The client's P99 latency, us.
    pub client_p99_us: u64,
    /// Seconds from the load's start to the first 429 the client received
    /// (the budget's block, or a rate limit's); `null`: never refused.
    #[serde(default)]
    pub blocked_at_s: Option<f64>,
    /// Upstream worker seconds the key had used by `blocked_at_s` (its
    /// requests' work clipped at that moment, from the per-request log).
    #[serde(default)]
    pub true_s_before_block: Option<f64>,
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
    /// Per key, its requests the gateway logged 499 or 504, joined with
    /// the upstream's truth request by request (empty without request ids).
    #[serde(default)]
    pub logged: Vec<LoggedRow>,
    /// The gateway's per-key worker-time budget in this mode; `null`: none.
    #[serde(default)]
    pub budget: Option<BudgetInfo>,
    /// How the per-request join went; `null` without request ids.
    #[serde(default)]
    pub join: Option<JoinStats>,
    /// The other keys' latency and goodput while the heaviest key's work
    /// ran on the upstream, and while it did not; `null` without the join.
    #[serde(default)]
    pub neighbour: Option<Neighbour>,
}

/// A budget as the gateway ran it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetInfo {
    /// Accounted seconds a key may use per window.
    pub budget_s: f64,
    /// The sliding window, s.
    pub window_s: f64,
    /// How long a key past its budget is refused, s.
    pub penalty_s: f64,
}

/// One key's requests the gateway logged one way, as a client abort or its
/// own timeout: what it accounted for them against what the upstream worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRow {
    /// The API key.
    pub key: String,
    /// What was logged: `499` (the client left first) or `504` (the
    /// gateway's own upstream timeout); with HAProxy, the status and the
    /// termination state (`400 CH`: the client left while HAProxy waited
    /// for the server; `504 sH`).
    pub logged: String,
    /// Lines with that status that the join matched to a client request.
    pub requests: u64,
    /// Of those, the ones the upstream's log has (the sums below are over these).
    pub joined: u64,
    /// Seconds the gateway accounted for them.
    pub accounted_s: f64,
    /// Upstream worker seconds they cost.
    pub true_s: f64,
    /// `true_s / accounted_s` (see [`under_count`]).
    pub under_count: Option<f64>,
    /// Why `under_count` is or is not a number.
    pub under_count_status: UnderCount,
}

/// One row of the audit's table (`summary.json`'s `abort_audit.rows`,
/// `accounting.csv`): a mode and key, over all its lines (`logged` = `all`)
/// or over its lines with one status (`499`, `504`, from the join).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// The gateway mode.
    pub mode: String,
    /// The API key.
    pub key: String,
    /// `all`, `499` or `504`.
    pub logged: String,
    /// Gateway lines in the row.
    pub requests: u64,
    /// Seconds the gateway accounted; `null`: it logged no line.
    pub accounted_s: Option<f64>,
    /// Upstream worker seconds; `null`: the upstream has no record.
    pub true_s: Option<f64>,
    /// `true_s / accounted_s`; `null` unless both are more than 0.
    pub under_count: Option<f64>,
    /// Why `under_count` is or is not a number.
    pub under_count_status: UnderCount,
}

/// The flat rows of `audit`: per mode in run order (skipped modes have
/// none), per key its `all` row and then its `499` and `504` rows.
pub fn rows(audit: &AbortAudit) -> Vec<AuditRow> {
    let mut out = Vec::new();
    for name in &audit.order {
        let Some(mode) = audit.modes.get(name) else {
            continue;
        };
        for (key, row) in &mode.keys {
            out.push(AuditRow {
                mode: name.clone(),
                key: key.clone(),
                logged: "all".into(),
                requests: row.gateway_lines,
                accounted_s: row.accounted_s,
                true_s: row.true_s,
                under_count: row.under_count,
                under_count_status: row.under_count_status,
            });
            for l in mode.logged.iter().filter(|l| &l.key == key) {
                out.push(AuditRow {
                    mode: name.clone(),
                    key: key.clone(),
                    logged: l.logged.clone(),
                    requests: l.requests,
                    accounted_s: (l.joined > 0).then_some(l.accounted_s),
                    true_s: (l.joined > 0).then_some(l.true_s),
                    under_count: l.under_count,
                    under_count_status: l.under_count_status,
                });
            }
        }
    }
    out
}

/// The whole audit: `summary.json`'s `abort_audit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AbortAudit {
    /// The modes in the order they ran (names as in `[abort_audit] modes`).
    pub order: Vec<String>,
    /// Per mode, by name.
    pub modes: BTreeMap<String, ModeAudit>,
    /// The client timeout per key, s (where the scatter's knee is).
    #[serde(default)]
    pub client_timeouts_s: BTreeMap<String, f64>,
    /// The table: see [`rows`].
    #[serde(default)]
    pub rows: Vec<AuditRow>,
    /// Per mode that ran, what its gateway logged for a client abort and
    /// what the upstream did meanwhile (from the join; empty without it).
    #[serde(default)]
    pub client_aborts: Vec<super::client_aborts::AbortBehaviour>,
}

/// One key's audit from its gateway totals (`None`: no line), its
/// upstream truth (`None`: no record), the client's figures and the load's
/// duration in seconds.
pub fn key_audit(
    gateway: Option<&KeyAccounting>,
    upstream: Option<&KeyStats>,
    client: ClientKey,
    duration_s: f64,
) -> KeyAudit {
    let accounted_s = gateway.map(|g| round(g.accounted_s, 6));
    let true_s = upstream.map(|u| round(u.wall_s, 6));
    let (factor, status) = under_count(accounted_s, true_s);
    let logged_statuses: BTreeMap<String, u64> = gateway
        .map(|g| {
            g.by_status
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect()
        })
        .unwrap_or_default();
    let status_count = |code: &str| logged_statuses.get(code).copied().unwrap_or(0);
    KeyAudit {
        gateway_lines: gateway.map_or(0, |g| g.requests),
        accounted_s,
        true_s,
        true_cpu_s: upstream.map(|u| round(u.cpu_s, 6)),
        upstream_queue_wait_s: upstream.map(|u| round(u.queue_wait_s, 6)),
        under_count: factor,
        under_count_status: status,
        logged_client_aborts: gateway.map_or(0, |g| g.client_aborts),
        logged_gateway_timeouts: status_count("504"),
        logged_upstream_status_missing: gateway.map_or(0, |g| g.upstream_status_missing),
        logged_terminations: gateway
            .map(|g| g.by_termination.clone())
            .unwrap_or_default(),
        logged_statuses,
        upstream: upstream.map_or_else(UpstreamCounts::default, |u| UpstreamCounts {
            started: u.started,
            completed: u.completed,
            abandoned: u.abandoned,
            cancelled: u.cancelled,
            refused: u.refused,
        }),
        client_abandoned: client.abandoned,
        client_goodput_per_s: if duration_s > 0.0 {
            round(client.ok as f64 / duration_s, 3)
        } else {
            0.0
        },
        client_p99_us: client.p99_us,
        blocked_at_s: None,
        true_s_before_block: None,
    }
}

/// One mode's audit: a row per key of `keys` (with `clients` in the same
/// order), from the run's gateway accounting and upstream truth.
pub fn mode_audit(
    keys: &[String],
    clients: &[ClientKey],
    gateway: Option<&GatewayAccounting>,
    upstream: Option<&Snapshot>,
    duration_s: f64,
) -> ModeAudit {
    ModeAudit {
        gateway: gateway.map(|g| g.version.clone()),
        skipped: None,
        logged: Vec::new(),
        budget: None,
        join: None,
        neighbour: None,
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
                let gateway = gateway.and_then(|g| g.log.keys.get(key));
                let upstream = upstream.and_then(|u| u.keys.get(key));
                (
                    key.clone(),
                    key_audit(gateway, upstream, client, duration_s),
                )
            })
            .collect(),
    }
}

/// What a joined request's gateway line says of how it ended, for the
/// rows: its class (0: the client left first, 1: the gateway's own
/// timeout, 504) and its label, the status with the termination state when
/// the gateway logs one (`499`, `504`, HAProxy's `400 CH` and `504 sH`);
/// `None` for every other line.
fn logged_label(r: &JoinedRequest) -> Option<(u8, String)> {
    let status = r.gateway_status?;
    let class = if r.gateway_client_abort {
        0
    } else if status == 504 {
        1
    } else {
        return None;
    };
    let label = match &r.gateway_termination {
        Some(ts) => format!("{status} {ts}"),
        None => status.to_string(),
    };
    Some((class, label))
}

/// Per key, the rows of its requests whose lines say the client left
/// first, then of those the gateway timed out (keys in `keys` order; a
/// label with no line has no row).
pub fn logged_rows(keys: &[String], joined: &[JoinedRequest]) -> Vec<LoggedRow> {
    let mut rows = Vec::new();
    for key in keys {
        let mut by_label: BTreeMap<(u8, String), LoggedRow> = BTreeMap::new();
        for r in joined.iter().filter(|r| &r.key == key) {
            let Some((class, label)) = logged_label(r) else {
                continue;
            };
            let row = by_label
                .entry((class, label.clone()))
                .or_insert_with(|| LoggedRow {
                    key: key.clone(),
                    logged: label,
                    requests: 0,
                    joined: 0,
                    accounted_s: 0.0,
                    true_s: 0.0,
                    under_count: None,
                    under_count_status: UnderCount::NoGatewayLines,
                });
            row.requests += 1;
            if let (Some(accounted), Some(wall)) = (r.accounted_s, r.upstream_wall_s) {
                row.joined += 1;
                row.accounted_s += accounted;
                row.true_s += wall;
            }
        }
        for mut row in by_label.into_values() {
            row.accounted_s = round(row.accounted_s, 6);
            row.true_s = round(row.true_s, 6);
            let accounted = (row.joined > 0).then_some(row.accounted_s);
            (row.under_count, row.under_count_status) = under_count(accounted, Some(row.true_s));
            rows.push(row);
        }
    }
    rows
}

/// Adds what the join tells to a mode's audit: per key when it was first
/// refused and the worker time it had used by then, the 499 and 504 rows,
/// and the noisy neighbour over the mode's load.
pub fn add_join(mode: &mut ModeAudit, keys: &[String], joined: &[JoinedRequest], stats: JoinStats) {
    mode.join = Some(stats);
    mode.logged = logged_rows(keys, joined);
    for (key, row) in mode.keys.iter_mut() {
        let mine = || joined.iter().filter(move |r| &r.key == key);
        let blocked = mine()
            .filter(|r| r.client_outcome == "429")
            .map(|r| r.intended_at_s)
            .min_by(f64::total_cmp);
        row.blocked_at_s = blocked.map(|t| round(t, 3));
        row.true_s_before_block = blocked.map(|t| {
            let used: f64 = mine()
                .filter_map(|r| Some((r.upstream_started_at_s?, r.upstream_ended_at_s?)))
                .map(|(a, b)| (b.min(t) - a).max(0.0))
                .sum();
            round(used, 3)
        });
    }
    mode.neighbour =
        heavy_key(mode).map(|heavy| neighbour(&heavy, mode.keys.keys(), mode.duration_s, joined));
}

/// The key whose work the neighbour watches: the one whose requests the
/// client abandoned most (the exporter), else the one with the most worker time.
fn heavy_key(mode: &ModeAudit) -> Option<String> {
    let abandoned = mode
        .keys
        .iter()
        .filter(|(_, r)| r.client_abandoned > 0)
        .max_by_key(|(_, r)| r.client_abandoned);
    let busiest = || {
        mode.keys
            .iter()
            .filter(|(_, r)| r.true_s.is_some_and(|t| t > 0.0))
            .max_by(|a, b| {
                a.1.true_s
                    .unwrap_or(0.0)
                    .total_cmp(&b.1.true_s.unwrap_or(0.0))
            })
    };
    abandoned.or_else(busiest).map(|(k, _)| k.clone())
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
    use crate::analysis::gateway_log::{LogAccounting, LoggedRequest};
    use crate::analysis::join::join;
    use crate::driver::request_log::{RequestLogOutput, RequestRecord, id_text};
    use crate::outcome::Outcome;
    use mock_upstream::requests::{Document, Ended, Entry};

    fn gateway_key(
        requests: u64,
        by_status: &[(u16, u64)],
        missing: u64,
        accounted_s: f64,
    ) -> KeyAccounting {
        KeyAccounting {
            requests,
            by_status: by_status.iter().copied().collect(),
            client_aborts: by_status.iter().filter(|s| s.0 == 499).map(|s| s.1).sum(),
            upstream_status_missing: missing,
            accounted_s,
            upstream_response_time_s: accounted_s,
            request_time_s: accounted_s,
            by_termination: BTreeMap::new(),
        }
    }

    fn upstream_key(started: u64, cpu_s: f64, wall_s: f64) -> KeyStats {
        KeyStats {
            started,
            completed: started,
            cpu_s,
            wall_s,
            ..KeyStats::default()
        }
    }

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
        let gateway = gateway_key(20, &[(499, 18), (504, 2)], 18, 1.0);
        let upstream = KeyStats {
            started: 20,
            completed: 0,
            abandoned: 20,
            cancelled: 0,
            refused: 1,
            cpu_s: 5.9,
            wasted_cpu_s: 5.9,
            wall_s: 6.2,
            queue_wait_s: 0.4,
        };
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
        let gateway = GatewayAccounting {
            kind: "nginx".into(),
            version: "nginx/1.22.1".into(),
            addr: "127.0.0.1:1".into(),
            abort_accounting: "early".into(),
            stopped_cleanly: true,
            config: String::new(),
            counters: BTreeMap::new(),
            log: LogAccounting {
                keys: [
                    ("ui".to_string(), gateway_key(10, &[(200, 10)], 0, 0.02)),
                    ("quiet".to_string(), gateway_key(3, &[(429, 3)], 3, 0.0)),
                ]
                .into_iter()
                .collect(),
                ..LogAccounting::default()
            },
        };
        let upstream = Snapshot {
            keys: [
                ("ui".to_string(), upstream_key(10, 0.01, 0.02)),
                ("ghost".to_string(), upstream_key(1, 0.3, 0.3)),
            ]
            .into_iter()
            .collect(),
            totals: KeyStats::default(),
        };
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
        assert_eq!(v["keys"]["ghost"]["accounted_s"], serde_json::Value::Null);
        assert_eq!(v["keys"]["ghost"]["under_count_status"], "no_gateway_lines");
        assert_eq!(v["keys"]["quiet"]["accounted_s"], 0.0);
    }

    fn record(
        id: u64,
        key: usize,
        intended_ms: u64,
        end_ms: u64,
        outcome: Outcome,
    ) -> RequestRecord {
        RequestRecord {
            id: Some(id),
            key,
            intended_ns: 1_000_000_000 + intended_ms * 1_000_000,
            sent_ns: Some(1_000_000_000 + intended_ms * 1_000_000),
            end_ns: 1_000_000_000 + end_ms * 1_000_000,
            outcome,
        }
    }

    fn line(id: u64, key: &str, status: u16, accounted_s: f64) -> LoggedRequest {
        LoggedRequest {
            id: id_text(id),
            key: key.into(),
            status,
            request_time_s: accounted_s,
            upstream_status: if status == 499 {
                "-".into()
            } else {
                status.to_string()
            },
            accounted_s,
            termination: None,
            client_abort: status == 499,
        }
    }

    fn entry(id: u64, started_ms: u64, wall_ms: u64) -> Entry {
        Entry {
            id: id_text(id),
            key: "-".into(),
            outcome: Ended::Abandoned,
            enqueued_ns: 1_000_000_000 + started_ms * 1_000_000,
            started_ns: 1_000_000_000 + started_ms * 1_000_000,
            ended_ns: 1_000_000_000 + (started_ms + wall_ms) * 1_000_000,
            queue_wait_s: 0.0,
            wall_s: wall_ms as f64 / 1000.0,
            cpu_s: wall_ms as f64 / 1000.0,
        }
    }

    #[test]
    fn requests_join_by_id_and_give_the_499_and_504_rows_and_the_budget() {
        let keys: Vec<String> = ["ui", "exporter", "batch"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let client = RequestLogOutput {
            start_ns: 1_000_000_000,
            records: vec![
                record(1, 1, 0, 50, Outcome::ClientTimeout),
                record(2, 0, 10, 12, Outcome::Response(200)),
                record(3, 1, 100, 150, Outcome::ClientTimeout),
                record(4, 2, 200, 2200, Outcome::Response(504)),
                record(5, 0, 400, 410, Outcome::Response(200)),
                record(6, 1, 500, 501, Outcome::Response(429)),
                record(7, 0, 900, 901, Outcome::Response(200)),
            ],
            dropped: 2,
        };
        let gateway = vec![
            line(1, "exporter", 499, 0.05),
            line(2, "ui", 200, 0.002),
            line(3, "exporter", 499, 0.05),
            line(4, "batch", 504, 2.0),
            line(5, "ui", 200, 0.01),
            line(6, "exporter", 429, 0.0),
            line(7, "ui", 200, 0.001),
            line(99, "ui", 200, 0.001),
        ];
        let upstream = Document {
            capacity: 100,
            dropped: 0,
            requests: vec![
                entry(1, 0, 300),
                entry(2, 10, 2),
                entry(3, 300, 300),
                entry(4, 200, 3000),
                entry(5, 400, 1),
                entry(7, 900, 1),
            ],
        };
        let (joined, stats) = join(&client, &keys, &gateway, 0, &upstream);
        assert_eq!(joined.len(), 7);
        assert_eq!(
            (
                stats.client_requests,
                stats.joined_gateway,
                stats.joined_upstream,
                stats.client_dropped
            ),
            (7, 7, 6, 2)
        );
        // The aborted request: accounted at the client timeout, worked in full.
        let aborted = &joined[0];
        assert_eq!(aborted.id, "0000000000000001");
        assert_eq!(
            (aborted.key.as_str(), aborted.client_outcome.as_str()),
            ("exporter", "client_timeout")
        );
        assert_eq!(
            (
                aborted.client_s,
                aborted.accounted_s,
                aborted.upstream_wall_s
            ),
            (0.05, Some(0.05), Some(0.3))
        );
        assert_eq!(
            joined[5].upstream_wall_s, None,
            "a refused request reached no worker"
        );

        let mut mode = ModeAudit {
            duration_s: 1.0,
            ..ModeAudit::default()
        };
        for key in &keys {
            mode.keys.insert(
                key.clone(),
                key_audit(None, None, ClientKey::default(), 1.0),
            );
        }
        mode.keys.get_mut("exporter").unwrap().client_abandoned = 2;
        add_join(&mut mode, &keys, &joined, stats);
        // (key, logged, requests, joined, accounted, true, factor)
        let want = [
            ("exporter", "499", 2, 2, 0.1, 0.6, Some(6.0)),
            ("batch", "504", 1, 1, 2.0, 3.0, Some(1.5)),
        ];
        assert_eq!(mode.logged.len(), want.len(), "{:?}", mode.logged);
        for (row, (key, logged, requests, joined_n, accounted, truth, factor)) in
            mode.logged.iter().zip(want)
        {
            assert_eq!(
                (
                    row.key.as_str(),
                    row.logged.as_str(),
                    row.requests,
                    row.joined,
                    row.accounted_s,
                    row.true_s,
                    row.under_count
                ),
                (key, logged, requests, joined_n, accounted, truth, factor)
            );
        }
        // Refused at 0.5 s, by when request 1 had run 0.3 s and request 3 0.2 s.
        let exporter = &mode.keys["exporter"];
        assert_eq!(
            (exporter.blocked_at_s, exporter.true_s_before_block),
            (Some(0.5), Some(0.5))
        );
        assert_eq!(mode.keys["ui"].blocked_at_s, None);
        // The exporter's work ran over 0-0.6 s: ui's requests at 10 and 400 ms
        // were sent during it, the one at 900 ms after.
        let n = mode.neighbour.as_ref().unwrap();
        assert_eq!(
            (n.heavy_key.as_str(), n.heavy_running_s, n.heavy_idle_s),
            ("exporter", 0.6, 0.4)
        );
        let ui = &n.keys["ui"];
        assert_eq!(
            (ui.during.requests, ui.during.ok, ui.during.p99_us),
            (2, 2, Some(10_000))
        );
        assert_eq!(ui.during.goodput_per_s, Some(3.333));
        assert_eq!(
            (ui.outside.requests, ui.outside.goodput_per_s),
            (1, Some(2.5))
        );

        let mut audit = AbortAudit {
            order: vec!["reference-early".into()],
            ..AbortAudit::default()
        };
        audit.modes.insert("reference-early".into(), mode);
        let table = rows(&audit);
        let shape: Vec<(&str, &str)> = table
            .iter()
            .map(|r| (r.key.as_str(), r.logged.as_str()))
            .collect();
        assert_eq!(
            shape,
            [
                ("batch", "all"),
                ("batch", "504"),
                ("exporter", "all"),
                ("exporter", "499"),
                ("ui", "all")
            ]
        );
        assert!(table.iter().all(|r| r.mode == "reference-early"));
    }

    /// HAProxy logs a client abort as `400 CH` and its timeout as `504 sH`:
    /// the rows are told by the termination state, labelled with both, the
    /// aborts first; a `--` line is neither.
    #[test]
    fn haproxy_rows_are_labelled_by_status_and_termination_state() {
        let keys = vec!["exporter".to_string()];
        let request =
            |id: u64, status: u16, ts: &str, accounted_s: f64, wall_s: f64| JoinedRequest {
                id: id_text(id),
                key: "exporter".into(),
                intended_at_s: 0.0,
                client_outcome: "client_timeout".into(),
                client_s: accounted_s,
                gateway_status: Some(status),
                gateway_termination: Some(ts.into()),
                gateway_client_abort: ts.starts_with('C'),
                gateway_upstream_status: Some("-".into()),
                accounted_s: Some(accounted_s),
                upstream_outcome: Some("abandoned".into()),
                upstream_started_at_s: Some(0.0),
                upstream_ended_at_s: Some(wall_s),
                upstream_queue_wait_s: Some(0.0),
                upstream_wall_s: Some(wall_s),
                upstream_cpu_s: Some(wall_s),
            };
        let joined = [
            request(1, 504, "sH", 2.0, 3.0),
            request(2, 400, "CH", 0.05, 0.3),
            request(3, 400, "CH", 0.05, 0.3),
            request(4, 200, "--", 0.3, 0.3),
            request(5, 503, "CQ", 0.01, 0.0),
        ];
        let rows = logged_rows(&keys, &joined);
        let shape: Vec<(&str, u64, Option<f64>)> = rows
            .iter()
            .map(|r| (r.logged.as_str(), r.requests, r.under_count))
            .collect();
        assert_eq!(
            shape,
            [
                ("400 CH", 2, Some(6.0)),
                ("503 CQ", 1, None),
                ("504 sH", 1, Some(1.5))
            ]
        );
        assert_eq!(rows[1].under_count_status, UnderCount::NoUpstreamWork);
    }
}
