//! `contend logs`'s report: an access log's counts made into the rows a
//! person reads, and the report folder that holds them.
//!
//! Takes a finished [`Tally`] (and where its lines came from); hands on a
//! [`LogReport`]: the [`LogSummary`] that `summary.json` holds (per key,
//! per route, the tail routes, the aborts and their knee, the censored
//! fit's under-count estimate and the usage table a budget would charge),
//! the intervals, and the scatter's sample. [`write()`] (the `files` part)
//! puts it in a folder like a run's: `summary.json`, `log-intervals.csv`, `routes.csv`,
//! `keys.csv`, `usage.csv`, `slow-routes.csv`, the plots
//! (`requests-over-time`, `logged-vs-upstream`, `censored-fit`) and
//! `report.html`, each whole or not at all. The arithmetic of the estimate
//! is `analysis::censored`'s; the figures are [`figures`]'s, the page and
//! the console's table [`page`]'s.

pub mod figures;
mod files;
pub mod page;

pub use files::write;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::analysis::censored::{self, Estimate, Knee, Times};
use crate::analysis::round;
use crate::logs::format::{Format, Language};
use crate::logs::tally::{Bucket, Ending, Group, MalformedLine, Tally};
use crate::logs::{Input, ReadProblem};

/// The version of `summary.json`'s shape for a log.
pub const SCHEMA_VERSION: u32 = 1;

/// `summary.json`'s `kind` for a log's report.
pub const KIND: &str = "access_log";

/// What `summary.json` holds for a log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSummary {
    /// The shape's version.
    pub schema_version: u32,
    /// `access_log`: this folder is a log's report, not a run's.
    pub kind: String,
    /// When the report was made (RFC 3339).
    pub analysed_at: String,
    /// The files read, in order, with their lines.
    pub files: Vec<FileRow>,
    /// The format they were read in.
    pub format: FormatInfo,
    /// Lines read (blank ones left out).
    pub lines: u64,
    /// Lines read in the format.
    pub parsed: u64,
    /// Lines not in the format (counted, never fatal).
    pub malformed: u64,
    /// The first few of them, with where they are and why.
    pub malformed_lines: Vec<MalformedLine>,
    /// Files that could not be read to their end (their lines before count).
    pub read_problems: Vec<ProblemRow>,
    /// The first time logged (RFC 3339); `null` when the format logs none.
    pub first: Option<String>,
    /// The last time logged.
    pub last: Option<String>,
    /// Seconds the log spans (rates are per second of it).
    pub span_s: Option<f64>,
    /// The interval of `log-intervals.csv`, s (doubled from `--interval`
    /// when the log spans more than 10,000 of them).
    pub interval_s: Option<f64>,
    /// `--slow`, ms.
    pub slow_ms: f64,
    /// All lines.
    pub totals: GroupRow,
    /// Per key, most requests first.
    pub keys: Vec<KeyRow>,
    /// Per route, most requests first.
    pub routes: Vec<GroupRow>,
    /// Routes with requests over `--slow`, most of them first.
    pub slow_routes: Vec<SlowRoute>,
    /// Per key, what a budget built on this log would charge it, beside
    /// the estimate of what its requests really cost the upstream.
    pub usage: Vec<UsageRow>,
    /// The estimate's assumption.
    pub assumption: String,
    /// What this format or log cannot show, and limits reached.
    pub notes: Vec<String>,
}

/// One file read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRow {
    /// As given (`-`: stdin).
    pub file: String,
    /// Lines read from it.
    pub lines: u64,
}

/// A file that could not be read to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemRow {
    /// The file.
    pub file: String,
    /// Lines read before.
    pub lines: u64,
    /// What happened.
    pub error: String,
}

/// The format the log was read in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatInfo {
    /// `nginx` or `haproxy`.
    pub language: Language,
    /// A preset's name, or `custom`.
    pub name: String,
    /// The format string.
    pub text: String,
    /// The variable read as the key; `null`: the format logs none.
    pub key: Option<String>,
    /// Where it came from: `--format`, the file beside the log, or detected.
    pub source: String,
}

/// Percentiles of a time, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimesMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Longest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl TimesMs {
    fn of(h: Option<&Histogram<u64>>) -> Option<TimesMs> {
        let h = h?;
        // The middle of each value's bucket: a logged 0.000 reads 0, not the bucket's top.
        let ms = |us: u64| round(h.median_equivalent(us) as f64 / 1000.0, 3);
        Some(TimesMs {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: round(h.mean() / 1000.0, 3),
        })
    }
}

/// One group of lines: a route, a key, or all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// The route (`GET /users/{id}`) or key (`-`: none logged).
    pub name: String,
    /// Lines.
    pub requests: u64,
    /// Per second of the log's span.
    pub rate_per_s: Option<f64>,
    /// Share of all lines.
    pub share: f64,
    /// Lines per status (`-`: none logged).
    pub statuses: BTreeMap<String, u64>,
    /// `$request_time`, ms.
    pub request_time_ms: Option<TimesMs>,
    /// Upstream time, ms (lines that logged one).
    pub upstream_time_ms: Option<TimesMs>,
    /// Lines over `--slow`.
    pub slow: u64,
    /// Lines with more than one upstream attempt.
    pub retried: u64,
}

/// A key's aborts and gateway timeouts, with what the log charged them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aborts {
    /// Client aborts with upstream time: 499, HAProxy `C`/`c` states, and
    /// the 404-with-`-` pattern.
    pub client_aborts: u64,
    /// Of those, `404` with `$upstream_status` `-` after upstream time.
    pub status_404_without_upstream_status: u64,
    /// Gateway timeouts with upstream time: 504, HAProxy `s` states.
    pub gateway_timeouts: u64,
    /// Client aborts that logged no upstream time: not in the fit.
    pub client_aborts_without_upstream_time: u64,
    /// What the log charged the aborts and timeouts, s.
    pub charged_s: f64,
    /// Where the client aborts stand: the client timeout.
    pub client_timeout_knee: Option<Knee>,
    /// Where the gateway timeouts stand: the gateway's timeout.
    pub gateway_timeout_knee: Option<Knee>,
}

/// One key: its counts, aborts and the estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRow {
    /// The counts.
    #[serde(flatten)]
    pub group: GroupRow,
    /// Aborts and timeouts.
    pub aborts: Aborts,
    /// The censored fit's under-count estimate.
    pub estimate: Estimate,
}

/// A route with requests over `--slow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowRoute {
    /// The route.
    pub route: String,
    /// Its lines.
    pub requests: u64,
    /// Over the threshold.
    pub slow: u64,
    /// Their share of the route.
    pub slow_share: f64,
    /// The route's P99 request time, ms.
    pub p99_ms: Option<f64>,
    /// Its longest, ms.
    pub max_ms: Option<f64>,
}

/// One key as a budget built on this log would charge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The key.
    pub key: String,
    /// Lines.
    pub requests: u64,
    /// Seconds charged (accounted, else upstream time), s.
    pub charged_s: f64,
    /// Per second of the log's span.
    pub charged_per_s: Option<f64>,
    /// Share of all keys' charge.
    pub share: f64,
    /// The estimate of what its requests cost the upstream, s.
    pub estimated_true_s: Option<f64>,
    /// Estimated true over charged.
    pub under_count: Option<f64>,
    /// Its interval.
    pub under_count_interval: Option<[f64; 2]>,
    /// Why it is or is not a number.
    pub status: censored::Status,
}

/// One interval of `log-intervals.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalRow {
    /// Its start (RFC 3339).
    pub start: String,
    /// Its start, s from the first interval's.
    pub start_s: f64,
    /// Its length, s.
    pub duration_s: f64,
    /// Lines.
    pub requests: u64,
    /// Per second.
    pub rate_per_s: f64,
    /// 2xx lines.
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    /// 3xx lines.
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    /// 4xx lines.
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    /// 5xx lines.
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    /// Lines with another or no status.
    pub other_status: u64,
    /// Client aborts.
    pub client_aborts: u64,
    /// Mean request time, ms.
    pub mean_request_ms: f64,
    /// Longest request time, ms.
    pub max_request_ms: f64,
    /// Lines over `--slow`.
    pub slow: u64,
    /// Seconds charged in it.
    pub charged_s: f64,
}

/// A sampled request for the scatter.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPoint {
    /// Charged, us.
    pub charged_us: f64,
    /// Logged upstream time, us.
    pub upstream_us: f64,
    /// How it ended.
    pub ending: Ending,
    /// Its key (`(other)` past the cap).
    pub key: String,
}

/// One key's curves for the censored-fit figure.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCurves {
    /// The key.
    pub key: String,
    /// Kaplan-Meier survival of its upstream time (s, share).
    pub kaplan_meier: Vec<(f64, f64)>,
    /// Survival of its logged upstream time, every line taken as ended
    /// where it was logged (s, share): what the log alone shows.
    pub logged: Vec<(f64, f64)>,
}

/// Everything `contend logs` writes.
#[derive(Debug, Clone)]
pub struct LogReport {
    /// `summary.json`.
    pub summary: LogSummary,
    /// `log-intervals.csv`.
    pub intervals: Vec<IntervalRow>,
    /// The scatter's sample.
    pub points: Vec<ScatterPoint>,
    /// The censored-fit figure's curves, per key with cut requests.
    pub curves: Vec<KeyCurves>,
}

/// Where the lines came from, for the summary.
pub struct Origin<'a> {
    /// The inputs, in order.
    pub inputs: &'a [Input],
    /// Lines read per input.
    pub lines_per_input: &'a [u64],
    /// The format.
    pub format: &'a Format,
    /// Where the format came from.
    pub format_source: &'a str,
    /// Inputs not read to their end.
    pub problems: &'a [ReadProblem],
}

/// The report of a finished tally.
pub fn build(tally: &Tally, origin: &Origin<'_>) -> LogReport {
    let span_s = span_s(tally);
    let total = tally.totals.requests;
    let rate = |n: u64| span_s.map(|s| round(n as f64 / s, 3));
    let row = |name: &str, g: &Group| group_row(name, g, total, rate(g.requests));
    let mut keys: Vec<KeyRow> = tally
        .keys
        .all()
        .map(|(name, g)| key_row(row(name, g), g))
        .collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.group.requests));
    let mut routes: Vec<GroupRow> = tally.routes.all().map(|(n, g)| row(n, g)).collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.requests));
    let summary = LogSummary {
        schema_version: SCHEMA_VERSION,
        kind: KIND.into(),
        analysed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files: origin
            .inputs
            .iter()
            .zip(origin.lines_per_input)
            .map(|(i, n)| FileRow {
                file: i.name(),
                lines: *n,
            })
            .collect(),
        format: FormatInfo {
            language: origin.format.language,
            name: origin.format.name.clone(),
            text: origin.format.text.clone(),
            key: origin.format.key.clone(),
            source: origin.format_source.to_string(),
        },
        lines: tally.lines,
        parsed: tally.parsed(),
        malformed: tally.malformed,
        malformed_lines: tally.malformed_samples.clone(),
        read_problems: origin
            .problems
            .iter()
            .map(|p| ProblemRow {
                file: p.file.clone(),
                lines: p.lines,
                error: p.error.clone(),
            })
            .collect(),
        first: tally.span_us.map(|(a, _)| rfc3339(a)),
        last: tally.span_us.map(|(_, b)| rfc3339(b)),
        span_s,
        interval_s: tally.span_us.map(|_| tally.intervals.width_us as f64 / 1e6),
        slow_ms: tally.options.slow_us as f64 / 1000.0,
        totals: row("all", &tally.totals),
        slow_routes: slow_routes(&routes),
        usage: usage(&keys, span_s),
        keys,
        routes,
        assumption: censored::ASSUMPTION.to_string(),
        notes: notes(tally),
    };
    LogReport {
        intervals: interval_rows(tally),
        points: points(tally),
        curves: curves(tally, &summary),
        summary,
    }
}

/// The log's span, s: last time less first, plus the last second when
/// every time is a whole second (nginx's `$time_iso8601`, `$time_local`).
fn span_s(tally: &Tally) -> Option<f64> {
    let (first, last) = tally.span_us?;
    let whole_second = if tally.subsecond { 0 } else { 1_000_000 };
    let us = (last - first) + whole_second;
    (us > 0).then(|| round(us as f64 / 1e6, 3))
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map_or_else(
        || us.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

fn group_row(name: &str, g: &Group, total: u64, rate_per_s: Option<f64>) -> GroupRow {
    GroupRow {
        name: name.to_string(),
        requests: g.requests,
        rate_per_s,
        share: if total > 0 {
            round(g.requests as f64 / total as f64, 4)
        } else {
            0.0
        },
        statuses: g
            .by_status
            .iter()
            .map(|(s, n)| {
                let name = if *s == 0 {
                    "-".to_string()
                } else {
                    s.to_string()
                };
                (name, *n)
            })
            .collect(),
        request_time_ms: TimesMs::of(g.request_time.get()),
        upstream_time_ms: TimesMs::of(g.upstream_time.get()),
        slow: g.slow,
        retried: g.retried,
    }
}

fn key_row(group: GroupRow, g: &Group) -> KeyRow {
    let times = Times {
        completed: g.completed.get(),
        cut: g.censored.get(),
        completed_us: g.completed_us,
        cut_us: g.censored_us,
        failed_us: g.failed_us,
    };
    KeyRow {
        aborts: Aborts {
            client_aborts: g.ended(Ending::ClientAbort),
            status_404_without_upstream_status: g.abort_404,
            gateway_timeouts: g.ended(Ending::GatewayTimeout),
            client_aborts_without_upstream_time: g.abort_no_time,
            charged_s: round(g.cut_charged_us as f64 / 1e6, 6),
            client_timeout_knee: censored::knee(
                "client_timeout",
                g.abort_charged.get(),
                g.completed.get(),
            ),
            gateway_timeout_knee: censored::knee(
                "gateway_timeout",
                g.timeout_charged.get(),
                g.completed.get(),
            ),
        },
        estimate: censored::estimate(&times, g.charged_us),
        group,
    }
}

fn slow_routes(routes: &[GroupRow]) -> Vec<SlowRoute> {
    let mut slow: Vec<SlowRoute> = routes
        .iter()
        .filter(|r| r.slow > 0)
        .map(|r| SlowRoute {
            route: r.name.clone(),
            requests: r.requests,
            slow: r.slow,
            slow_share: round(r.slow as f64 / r.requests.max(1) as f64, 4),
            p99_ms: r.request_time_ms.map(|t| t.p99),
            max_ms: r.request_time_ms.map(|t| t.max),
        })
        .collect();
    slow.sort_by(|a, b| b.slow.cmp(&a.slow).then(a.route.cmp(&b.route)));
    slow
}

fn usage(keys: &[KeyRow], span_s: Option<f64>) -> Vec<UsageRow> {
    let all: f64 = keys.iter().map(|k| k.estimate.charged_s).sum();
    let mut rows: Vec<UsageRow> = keys
        .iter()
        .map(|k| UsageRow {
            key: k.group.name.clone(),
            requests: k.group.requests,
            charged_s: k.estimate.charged_s,
            charged_per_s: span_s.map(|s| round(k.estimate.charged_s / s, 6)),
            share: if all > 0.0 {
                round(k.estimate.charged_s / all, 4)
            } else {
                0.0
            },
            estimated_true_s: k.estimate.estimated_true_s,
            under_count: k.estimate.under_count,
            under_count_interval: k.estimate.under_count_interval,
            status: k.estimate.status,
        })
        .collect();
    rows.sort_by(|a, b| b.charged_s.total_cmp(&a.charged_s));
    rows
}

/// What the format cannot show, and the caps reached.
fn notes(tally: &Tally) -> Vec<String> {
    let has = tally.has;
    let mut notes = Vec::new();
    if !has.key {
        notes.push("the format logs no key: every line is under `-` (log $http_x_api_key, or name the key's variable with --key)".to_string());
    }
    if !has.upstream_time {
        notes.push("the format logs no upstream time ($upstream_response_time; HAProxy %Ta with %Tc, or %Tr): no censored fit, no under-count estimate".to_string());
    }
    if !has.time {
        notes.push("the format logs no time of day ($time_iso8601, $time_local, $msec; HAProxy %tr): no intervals, no rates".to_string());
    }
    if !has.request_time {
        notes.push("the format logs no request time ($request_time; HAProxy %Ta): no request-time percentiles, no slow routes".to_string());
    }
    if !has.upstream_status && has.upstream_time && tally.totals.by_status.contains_key(&404) {
        notes.push("the format logs no $upstream_status: a 404 after upstream time (the post_action pattern) cannot be told from the upstream's own 404".to_string());
    }
    for (what, groups, cap) in [
        ("keys", &tally.keys, crate::logs::tally::MAX_KEYS),
        ("routes", &tally.routes, crate::logs::tally::MAX_ROUTES),
    ] {
        if groups.other.requests > 0 {
            notes.push(format!(
                "more than {cap} {what}: the {} lines of those seen after the first {cap} are summed under (other)",
                groups.other.requests
            ));
        }
    }
    notes
}

fn interval_rows(tally: &Tally) -> Vec<IntervalRow> {
    let width_us = tally.intervals.width_us as i64;
    let Some((&first, _)) = tally.intervals.buckets.first_key_value() else {
        return Vec::new();
    };
    let width_s = width_us as f64 / 1e6;
    tally
        .intervals
        .buckets
        .iter()
        .map(|(&index, b): (&i64, &Bucket)| IntervalRow {
            start: rfc3339(index * width_us),
            start_s: round((index - first) as f64 * width_s, 3),
            duration_s: width_s,
            requests: b.requests,
            rate_per_s: round(b.requests as f64 / width_s, 3),
            s2xx: b.classes[2],
            s3xx: b.classes[3],
            s4xx: b.classes[4],
            s5xx: b.classes[5],
            other_status: b.classes[0] + b.classes[1],
            client_aborts: b.aborts,
            mean_request_ms: round(b.request_us as f64 / b.requests.max(1) as f64 / 1000.0, 3),
            max_request_ms: round(b.max_request_us as f64 / 1000.0, 3),
            slow: b.slow,
            charged_s: round(b.charged_us as f64 / 1e6, 6),
        })
        .collect()
}

fn points(tally: &Tally) -> Vec<ScatterPoint> {
    tally
        .points
        .iter()
        .map(|p| ScatterPoint {
            charged_us: p.charged_us as f64,
            upstream_us: p.upstream_us as f64,
            ending: p.ending,
            key: tally
                .keys
                .named
                .get(p.key as usize)
                .map_or_else(|| crate::logs::tally::OTHER.to_string(), |(n, _)| n.clone()),
        })
        .collect()
}

/// The curves of the keys with the most cut requests (up to four).
fn curves(tally: &Tally, summary: &LogSummary) -> Vec<KeyCurves> {
    let mut cut: Vec<&KeyRow> = summary
        .keys
        .iter()
        .filter(|k| k.estimate.fit.cut > 0)
        .collect();
    cut.sort_by_key(|k| std::cmp::Reverse(k.estimate.fit.cut));
    cut.iter()
        .take(4)
        .filter_map(|k| {
            let (_, g) = tally.keys.all().find(|(n, _)| *n == k.group.name)?;
            let times = Times {
                completed: g.completed.get(),
                cut: g.censored.get(),
                completed_us: g.completed_us,
                cut_us: g.censored_us,
                failed_us: g.failed_us,
            };
            Some(KeyCurves {
                key: k.group.name.clone(),
                kaplan_meier: censored::kaplan_meier(&times),
                logged: survival(g.upstream_time.get()),
            })
        })
        .collect()
}

/// The empirical survival of a histogram's values (s, share).
fn survival(h: Option<&Histogram<u64>>) -> Vec<(f64, f64)> {
    let Some(h) = h else {
        return Vec::new();
    };
    let total = h.len() as f64;
    let mut left = total;
    let mut out = vec![(0.0, 1.0)];
    for v in h.iter_recorded() {
        left -= v.count_at_value() as f64;
        out.push((
            h.median_equivalent(v.value_iterated_to()) as f64 / 1e6,
            left / total,
        ));
    }
    out
}
