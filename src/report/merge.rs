//! `contend merge`: the report folders of a sharded run (`--shard I/N` on
//! several processes or machines) into one report of the whole load.
//!
//! Takes the shards' folders (each with `summary.json`, `intervals.csv`,
//! `latency.hlog` and `histograms.hlog`); checks that they are shards of
//! one run (same scenario, distinct shard numbers of one count, every
//! shard there unless allowed, equal interval lengths, plain runs); hands
//! on the [`MergedRun`]: counts and outcomes summed, every histogram added
//! exactly from the shards' own histograms (never from percentiles),
//! intervals aligned by their number from each shard's start (the shards
//! share `--start-at`, and the spread of their starts is reported), and a
//! summary of the same schema as a single run's. It writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use super::histograms::{self, Histograms};
use super::summary::round3;
use super::summary::{
    ConnectionsSummary, DriverSummary, KeySummary, Merged, MergedShard, Outcomes, Percentiles,
    Summary,
};
use super::{IntervalCsvRow, read_intervals_csv};
use crate::error::{Error, Result};
use crate::outcome::Class;
use crate::record::{IntervalRow, new_histogram};

/// A shard's report folder, read.
#[derive(Debug)]
pub struct ShardFolder {
    /// Where it is.
    pub dir: PathBuf,
    /// Its summary.
    pub summary: Summary,
    /// Its histograms, whole.
    pub histograms: Histograms,
    /// Its interval rows.
    pub intervals: Vec<IntervalCsvRow>,
    /// Its intervals' latency histograms, in order.
    pub interval_latency: Vec<Histogram<u64>>,
}

/// The merge of a sharded run.
#[derive(Debug)]
pub struct MergedRun {
    /// The summary of the whole load (thresholds not yet evaluated).
    pub summary: Summary,
    /// One row per interval of the whole load.
    pub intervals: Vec<IntervalRow>,
    /// Every histogram of the whole load.
    pub histograms: Histograms,
    /// When the earliest shard's load began.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Things worth telling (a wide start spread, a shard's own warnings).
    pub warnings: Vec<String>,
}

/// Reads one shard's report folder; the error names the folder and what is
/// missing.
pub fn read(dir: &Path) -> Result<ShardFolder> {
    let bad = |what: &str, message: String| Error::Scenario {
        location: dir.join(what).display().to_string(),
        message,
    };
    if let Some(why) = super::folder::not_one_run(dir) {
        return Err(Error::Scenario {
            location: dir.display().to_string(),
            message: format!("{why}; merge takes the folders `contend run --shard I/N` wrote"),
        });
    }
    let text = std::fs::read_to_string(dir.join("summary.json")).map_err(|e| {
        bad(
            "summary.json",
            format!("{e}: give the report folders that `contend run --shard I/N` wrote"),
        )
    })?;
    let summary: Summary = serde_json::from_str(&text)
        .map_err(|e| bad("summary.json", format!("not a contend summary: {e}")))?;
    let histograms = Histograms::read(&dir.join(histograms::FILE)).map_err(|e| {
        bad(
            histograms::FILE,
            format!("{e}: a shard's folder needs its histograms to be merged exactly"),
        )
    })?;
    let intervals =
        read_intervals_csv(&dir.join("intervals.csv")).map_err(|e| bad("intervals.csv", e))?;
    let interval_latency =
        read_hlog(&dir.join("latency.hlog")).map_err(|e| bad("latency.hlog", e))?;
    if interval_latency.len() != intervals.len() {
        return Err(bad(
            "latency.hlog",
            format!(
                "{} interval histograms for {} rows of intervals.csv: the folder is incomplete",
                interval_latency.len(),
                intervals.len()
            ),
        ));
    }
    Ok(ShardFolder {
        dir: dir.to_path_buf(),
        summary,
        histograms,
        intervals,
        interval_latency,
    })
}

/// The interval histograms of an interval log, in order.
fn read_hlog(path: &Path) -> std::result::Result<Vec<Histogram<u64>>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let LogEntry::Interval(h) = entry.map_err(|e| format!("not an interval log: {e:?}"))?
        else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.encoded_histogram())
            .map_err(|e| format!("not base64: {e}"))?;
        out.push(
            deserializer
                .deserialize(&mut &raw[..])
                .map_err(|e| format!("not a histogram: {e:?}"))?,
        );
    }
    Ok(out)
}

/// Merges the shards; refuses, with the reason, folders that are not the
/// shards of one plain run, and a missing shard unless `allow_missing`.
pub fn merge(mut shards: Vec<ShardFolder>, allow_missing: bool) -> Result<MergedRun> {
    let (count, missing) = check(&shards, allow_missing)?;
    shards.sort_by_key(|s| s.summary.shard.as_ref().map_or(0, |i| i.index));
    let starts: Vec<chrono::DateTime<chrono::Utc>> = shards
        .iter()
        .map(|s| started_at(&s.summary))
        .collect::<Result<_>>()?;
    let started = *starts.iter().min().expect("at least one shard");
    let spread_s = (*starts.iter().max().expect("at least one shard") - started)
        .num_microseconds()
        .unwrap_or(i64::MAX) as f64
        / 1e6;
    let mut histograms = Histograms::default();
    for s in &shards {
        histograms
            .merge(&s.histograms)
            .map_err(|e| usage(format!("{}: {e}", s.dir.display())))?;
    }
    let intervals = merge_intervals(&shards);
    let mut warnings = Vec::new();
    let interval_s = shards[0]
        .summary
        .shard
        .as_ref()
        .map(|i| i.interval_s)
        .filter(|s| *s > 0.0)
        .unwrap_or_else(|| shards[0].intervals.first().map_or(1.0, |r| r.duration_s));
    if spread_s > 0.1 * interval_s {
        warnings.push(format!(
            "the shards' loads began {spread_s:.3} s apart, over a tenth of an interval ({interval_s} s): \
             intervals of the same number do not cover the same wall-clock time; start them with --start-at"
        ));
    }
    if !missing.is_empty() {
        warnings.push(format!(
            "shards {missing:?} of {count} are missing: the report holds the others' share of the load only"
        ));
    }
    let summary = merged_summary(
        &shards,
        &histograms,
        missing,
        spread_s,
        started,
        &mut warnings,
    );
    Ok(MergedRun {
        summary,
        intervals,
        histograms,
        started_at: started,
        warnings,
    })
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

/// Checks that `shards` are the shards of one plain run; hands on their
/// count and the missing indices.
fn check(shards: &[ShardFolder], allow_missing: bool) -> Result<(usize, Vec<usize>)> {
    let first = shards.first().ok_or_else(|| {
        usage("merge needs the report folders of the shards: give at least one".into())
    })?;
    let name = &first.summary.name;
    let mut seen = BTreeMap::new();
    let mut count = None;
    for s in shards {
        let dir = s.dir.display();
        if &s.summary.name != name {
            return Err(usage(format!(
                "{dir} is a run of scenario {:?}, the others of {name:?}: merge the shards of one run",
                s.summary.name
            )));
        }
        if s.summary.sweep.is_some()
            || s.summary.find_limit.is_some()
            || s.summary.abort_audit.is_some()
        {
            return Err(usage(format!(
                "{dir} is a sweep, find-limit or abort-audit: merge takes the shards of a plain run"
            )));
        }
        let shard = s.summary.shard.as_ref().ok_or_else(|| {
            usage(format!("{dir} has no shard in its summary.json: it was not written by `contend run --shard`"))
        })?;
        if *count.get_or_insert(shard.count) != shard.count {
            return Err(usage(format!(
                "{dir} is shard {} of {}, another folder of {}: the shards of one run share their count",
                shard.index,
                shard.count,
                count.unwrap_or(0)
            )));
        }
        if let Some(other) = seen.insert(shard.index, dir.to_string()) {
            return Err(usage(format!(
                "{dir} and {other} are both shard {} of {}: give each shard once",
                shard.index, shard.count
            )));
        }
        // The configured interval; older folders: the longest measured one
        // (a run's first interval is also its short last one when the run
        // is shorter than an interval).
        let length = |f: &ShardFolder| match f.summary.shard.as_ref().map(|i| i.interval_s) {
            Some(s) if s > 0.0 => Some(s),
            _ => f.intervals.iter().map(|r| r.duration_s).reduce(f64::max),
        };
        if let (Some(a), Some(b)) = (length(first), length(s))
            && (a - b).abs() > 1e-6
        {
            return Err(usage(format!(
                "{dir} has intervals of {b} s, {} of {a} s: shards merge interval by interval, so they need one [client] interval",
                first.dir.display()
            )));
        }
    }
    let count = count.unwrap_or(1);
    let missing: Vec<usize> = (0..count).filter(|i| !seen.contains_key(i)).collect();
    if !missing.is_empty() && !allow_missing {
        return Err(usage(format!(
            "shards {missing:?} of {count} are missing: give every shard's folder, or --allow-missing to merge the others"
        )));
    }
    Ok((count, missing))
}

fn started_at(summary: &Summary) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(&summary.started_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| usage(format!("started_at {:?}: {e}", summary.started_at)))
}

/// The intervals of the whole load: interval i of every shard together.
fn merge_intervals(shards: &[ShardFolder]) -> Vec<IntervalRow> {
    let rows = shards.iter().map(|s| s.intervals.len()).max().unwrap_or(0);
    (0..rows)
        .map(|i| {
            let mut latency = new_histogram();
            let mut by_class = [0u64; Class::ALL.len()];
            let (mut offered, mut sent, mut in_flight, mut lag, mut cpu) = (0, 0, 0, 0, 0.0);
            let (mut opened, mut connect_p99, mut handshake_p99) = (0, 0, 0);
            let (mut attempts, mut retries, mut goodput_per_s) = (0, 0, 0.0);
            let mut window = 0;
            let mut span: Option<(f64, f64)> = None;
            for s in shards {
                let (Some(r), Some(h)) = (s.intervals.get(i), s.interval_latency.get(i)) else {
                    continue;
                };
                let _ = latency.add(h);
                for (total, n) in by_class.iter_mut().zip(classes(r)) {
                    *total += n;
                }
                offered += r.offered;
                sent += r.sent;
                in_flight += r.in_flight;
                lag = lag.max(r.lag_p99_us);
                cpu += r.driver_cpu_cores;
                opened += r.new_connections;
                // Per-interval connection times are kept as p99s only: the
                // merged interval carries the highest shard's, an upper
                // bound (the whole run's are exact, from histograms.hlog).
                connect_p99 = connect_p99.max(r.connect_p99_us);
                handshake_p99 = handshake_p99.max(r.tls_handshake_p99_us);
                attempts += r.attempts;
                retries += r.retries;
                goodput_per_s += r.goodput_per_s;
                window = window.max(r.pacing_window_us);
                span.get_or_insert((r.start_s, r.duration_s));
            }
            let (start_s, duration_s) = span.unwrap_or((0.0, 0.0));
            let q = |q: f64| {
                if latency.is_empty() {
                    0
                } else {
                    latency.value_at_quantile(q)
                }
            };
            let mut encoded = Vec::new();
            let _ = V2DeflateSerializer::new().serialize(&latency, &mut encoded);
            IntervalRow {
                index: i as u64,
                start_s,
                duration_s,
                offered,
                sent,
                by_class,
                p50_us: q(0.5),
                p90_us: q(0.9),
                p99_us: q(0.99),
                p999_us: q(0.999),
                max_us: latency.max(),
                lag_p99_us: lag,
                in_flight,
                driver_cpu_cores: cpu,
                latency_hist_v2: encoded,
                new_connections: opened,
                connect_p99_us: connect_p99,
                tls_handshake_p99_us: handshake_p99,
                attempts,
                retries,
                amplification: if offered == 0 {
                    0.0
                } else {
                    attempts as f64 / offered as f64
                },
                goodput_per_s,
                pacing_window_us: window,
            }
        })
        .collect()
}

/// An interval row's outcomes in [`Class::ALL`] order.
fn classes(r: &IntervalCsvRow) -> [u64; Class::ALL.len()] {
    [
        r.ok_2xx,
        r.s429,
        r.s503,
        r.s504,
        r.other_status,
        r.client_timeout,
        r.connect_error,
        r.tls_error,
        r.io_error,
        r.not_sent,
    ]
}

/// Outcomes added.
/// Adds `from`'s outcome counts to `into`.
pub(super) fn add_outcomes(into: &mut Outcomes, from: &Outcomes) {
    for (code, n) in &from.responses {
        *into.responses.entry(*code).or_default() += n;
    }
    into.client_timeout += from.client_timeout;
    into.connect_error += from.connect_error;
    into.tls_error += from.tls_error;
    into.io_error += from.io_error;
    into.not_sent += from.not_sent;
    for (class, n) in &from.classes {
        *into.classes.entry(class.clone()).or_default() += n;
    }
}

/// The summary of the whole load, from the shards' summaries and the
/// merged histograms.
fn merged_summary(
    shards: &[ShardFolder],
    histograms: &Histograms,
    missing: Vec<usize>,
    start_spread_s: f64,
    started: chrono::DateTime<chrono::Utc>,
    warnings: &mut Vec<String>,
) -> Summary {
    let pct = |name: &str| {
        histograms
            .get(name)
            .map(Percentiles::of)
            .unwrap_or_default()
    };
    let mut base = shards[0].summary.clone();
    let sum = |f: &dyn Fn(&Summary) -> f64| shards.iter().map(|s| f(&s.summary)).sum::<f64>();
    let duration_s = shards
        .iter()
        .map(|s| s.summary.duration_s)
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut outcomes = Outcomes::default();
    for s in shards {
        add_outcomes(&mut outcomes, &s.summary.outcomes);
    }
    let responses: u64 = outcomes.responses.values().sum();
    let sent = sum(&|s| s.sent as f64) as u64;
    let mut reasons = Vec::new();
    for s in shards {
        let label = shard_label(s);
        reasons.extend(
            s.summary
                .generator_bound_reasons
                .iter()
                .map(|r| format!("{label}: {r}")),
        );
        warnings.extend(s.summary.warnings.iter().map(|w| format!("{label}: {w}")));
    }
    let classes: BTreeSet<&str> = Class::ALL.iter().map(|c| c.name()).collect();
    base.started_at = started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    base.interrupted = shards.iter().any(|s| s.summary.interrupted);
    base.arrivals = sum(&|s| s.arrivals as f64) as u64;
    base.sent = sent;
    base.duration_s = round3(duration_s);
    base.intended_rate_per_s = round3(sum(&|s| s.intended_rate_per_s));
    base.achieved_rate_per_s = round3(sent as f64 / duration_s);
    base.response_rate_per_s = round3(responses as f64 / duration_s);
    base.outcomes = outcomes;
    base.latency_us = pct("latency");
    base.service_time_us = pct("service");
    base.schedule_lag_us = pct("schedule_lag");
    base.generator_lag_us = pct("generator_lag");
    base.connect_us = pct("connect");
    base.tls_handshake_us = pct("tls_handshake");
    base.connections = merged_connections(shards, duration_s);
    base.latency_by_class_us = classes
        .iter()
        .filter_map(|c| {
            let h = histograms.get(&format!("class/{c}"))?;
            (!h.is_empty()).then(|| (c.to_string(), Percentiles::of(h)))
        })
        .collect();
    base.generator_bound = shards.iter().any(|s| s.summary.generator_bound);
    base.generator_bound_reasons = reasons;
    base.driver = merged_driver(shards, sent);
    base.keys = merged_keys(shards, histograms);
    let summaries: Vec<&Summary> = shards.iter().map(|s| &s.summary).collect();
    base.addresses = super::addresses::merged(&summaries, histograms).unwrap_or_else(|why| {
        warnings.push(why);
        Vec::new()
    });
    // Each shard's components are its own: their accounting does not add up.
    base.upstream_accounting = None;
    base.gateway_accounting = None;
    base.components = BTreeMap::new();
    base.replicas = Vec::new();
    base.store_commands = None;
    base.faults = shards
        .iter()
        .flat_map(|s| s.summary.faults.clone())
        .collect();
    base.component_exits = shards
        .iter()
        .flat_map(|s| s.summary.component_exits.clone())
        .collect();
    base.component_stalls = shards
        .iter()
        .flat_map(|s| s.summary.component_stalls.clone())
        .collect();
    base.retries = base.retries.is_some().then(|| {
        super::retries::RetrySummary::merged(
            shards.iter().filter_map(|s| s.summary.retries.as_ref()),
            base.arrivals,
        )
    });
    base.preflight = Vec::new();
    base.thresholds = Vec::new();
    base.warnings = warnings.clone();
    base.shard = None;
    base.merged = Some(Merged {
        shards: shards.iter().map(merged_shard).collect(),
        missing,
        start_spread_s: round3(start_spread_s),
    });
    base
}

/// The connections of the whole load: counts added, what was spoken from
/// the first shard (the shards run one scenario).
fn merged_connections(shards: &[ShardFolder], duration_s: f64) -> ConnectionsSummary {
    let mut c = shards[0].summary.connections.clone();
    let add = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
        for (k, n) in from {
            *into.entry(k.clone()).or_default() += n;
        }
    };
    for s in &shards[1..] {
        let o = &s.summary.connections;
        c.opened += o.opened;
        // Each process keeps its own cap.
        c.max_connections += o.max_connections;
        c.tls_resumed += o.tls_resumed;
        add(&mut c.tls_versions, &o.tls_versions);
        add(&mut c.alpn, &o.alpn);
        add(&mut c.tls_errors, &o.tls_errors);
    }
    c.opened_per_s = round3(c.opened as f64 / duration_s);
    c
}

/// The driver of the whole load: the shards' threads and CPU added, the
/// busiest shard's peak.
fn merged_driver(shards: &[ShardFolder], sent: u64) -> DriverSummary {
    let cpu_s: f64 = shards.iter().map(|s| s.summary.driver.cpu_s).sum();
    let widest = |field: fn(&DriverSummary) -> u64| {
        shards
            .iter()
            .map(|s| field(&s.summary.driver))
            .max()
            .unwrap_or(0)
    };
    DriverSummary {
        threads: shards.iter().map(|s| s.summary.driver.threads).sum(),
        cpu_s: round3(cpu_s),
        requests_per_cpu_s: round3(sent as f64 / cpu_s.max(1e-9)),
        peak_cpu_cores: shards
            .iter()
            .map(|s| s.summary.driver.peak_cpu_cores)
            .fold(0.0, f64::max),
        // The shards run one scenario: the widest window stands for all.
        pacing_window_us: widest(|d| d.pacing_window_us),
        pacing_window_max_us: widest(|d| d.pacing_window_max_us),
        pacing_window_widest_us: widest(|d| d.pacing_window_widest_us),
    }
}

/// Every key's outcomes added across the shards, its percentiles from the
/// merged histogram.
fn merged_keys(shards: &[ShardFolder], histograms: &Histograms) -> BTreeMap<String, KeySummary> {
    let mut keys: BTreeMap<String, KeySummary> = BTreeMap::new();
    for s in shards {
        for (name, k) in &s.summary.keys {
            let entry = keys.entry(name.clone()).or_insert_with(|| KeySummary {
                outcomes: Outcomes::default(),
                latency_us: Percentiles::default(),
            });
            add_outcomes(&mut entry.outcomes, &k.outcomes);
        }
    }
    for (name, k) in keys.iter_mut() {
        k.latency_us = histograms
            .key(name)
            .map(Percentiles::of)
            .unwrap_or_default();
    }
    keys
}

/// One shard's line in the merged summary.
fn merged_shard(s: &ShardFolder) -> MergedShard {
    let info = s.summary.shard.as_ref();
    MergedShard {
        index: info.map_or(0, |i| i.index),
        dir: s.dir.display().to_string(),
        host: info.map_or_else(String::new, |i| i.host.clone()),
        started_at: s.summary.started_at.clone(),
        generator_bound: s.summary.generator_bound,
    }
}

/// `shard 1 (host)`, for reasons and warnings.
fn shard_label(s: &ShardFolder) -> String {
    match &s.summary.shard {
        Some(i) => format!("shard {} of {} ({})", i.index, i.count, i.host),
        None => s.dir.display().to_string(),
    }
}
