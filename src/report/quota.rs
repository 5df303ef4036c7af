//! `experiment = "quota"`'s answers, from each design's finished run: (1)
//! accuracy, admitted per key over the run against the quota and the
//! share of admissions past it; (2) the check's cost, latency against the
//! in-process design and the store's round trips per request; (3) the
//! store fault, the windows in which the gateways could not reach the
//! store, what they admitted past the quota (fail-open) or refused
//! (fail-closed) in them; (4) the footprint, the gateways' memory and the
//! store's keys. Then the console tables and `quota.md`, `quota.csv`.
//!
//! Takes each design's [`RunOutput`] with its [`Summary`] (or why it could
//! not run: such a design is reported as failed, with no numbers) and the
//! scenario's rate limit; measures nothing. The figures and the page are
//! `quota_page`'s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::console::fmt_us;
use super::summary::Summary;
use crate::experiment::faults::AppliedFault;
use crate::experiment::quota::Design;
use crate::experiment::run::RunOutput;
use crate::record::IntervalRow;

/// The whole experiment's answers, in summary.json's `quota`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuotaResult {
    /// The quota: sustained admissions per second per key.
    pub rate_per_s: f64,
    /// Admissions a key may take at once beyond the rate.
    pub burst: u32,
    /// Gateway replicas each design ran.
    pub replicas: usize,
    /// The `store-cache` design's sync interval, s.
    pub sync_interval_s: f64,
    /// One entry per design, in the order they ran.
    pub designs: Vec<DesignResult>,
}

/// What one design delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct DesignResult {
    /// `in-process`, `store`, `store-cache`, `fault-open`, `fault-closed`.
    pub design: String,
    /// Why it could not run; then every number below is absent or 0 and
    /// means nothing.
    pub error: Option<String>,
    /// True when a stop cut its run short.
    pub interrupted: bool,
    /// Time arrivals were offered for, s: the window the quota is held to.
    pub duration_s: f64,
    /// Arrivals offered.
    pub arrivals: u64,
    /// 2xx answers: admitted.
    pub admitted: u64,
    /// 429 answers: limited.
    pub limited_429: u64,
    /// 5xx answers (503 when the store failed closed).
    pub errors_5xx: u64,
    /// Per key, in scenario order.
    pub keys: Vec<KeyQuota>,
    /// Admissions past the quota, over the keys.
    pub over_admitted: u64,
    /// `over_admitted` as a share of the admissions (0 to 1).
    pub over_admission_share: f64,
    /// Latency p50 and p99 (every answer, admitted or limited), us.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// The replicas' calls to the store per arrival; `None` without a store.
    pub store_calls_per_request: Option<f64>,
    /// Commands the store processed by the end (its own count, from its
    /// last start: a restart zeroes it).
    pub store_commands: Option<f64>,
    /// The replicas' store errors.
    pub store_errors: u64,
    /// The replicas' admissions without the store (fail-open).
    pub fail_open_admissions: u64,
    /// The faults as applied (fault designs only).
    pub faults: Vec<AppliedFault>,
    /// Runs of intervals in which a replica saw store errors.
    pub store_down: Vec<StoreWindow>,
    /// Their length together, s (to the interval).
    pub store_down_s: f64,
    /// The most resident memory of any replica at an interval's end, bytes.
    pub gateway_peak_rss_bytes: Option<u64>,
    /// The store's keys at most (its own count).
    pub store_keys: Option<f64>,
    /// The store's memory at most, bytes (its own count).
    pub store_memory_bytes: Option<f64>,
}

/// One key's admissions against its quota.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyQuota {
    /// The key.
    pub key: String,
    /// Its arrivals per second.
    pub offered_per_s: f64,
    /// Its 2xx answers per second.
    pub admitted_per_s: f64,
    /// Its 2xx answers.
    pub admitted: u64,
    /// What the quota allows it over the window: the smaller of what it
    /// offered and rate x window + burst.
    pub allowed: u64,
    /// Admitted past that.
    pub over_admitted: u64,
}

/// Consecutive intervals in which the gateways saw store errors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoreWindow {
    /// Start of its first interval, s from the load's start.
    pub start_s: f64,
    /// End of its last interval.
    pub end_s: f64,
    /// Store errors in it, over the replicas.
    pub store_errors: u64,
    /// Admissions without the store in it, over the replicas.
    pub fail_open: u64,
    /// 2xx answers completed in it.
    pub admitted: u64,
    /// 503 answers completed in it.
    pub refused_503: u64,
    /// What the quota allows in it: per key the smaller of its offered rate
    /// and the quota, times the window.
    pub allowed: u64,
    /// Admitted past that: requests the window let past their quota.
    pub past_quota: u64,
}

/// One design's finished run with its summary, or why it could not run.
pub type DesignInput<'a> = (Design, Result<(&'a RunOutput, &'a Summary), String>);

/// The result of every design; `rule` is the gateway's rate limit.
pub fn result(
    rule: contend_gateway::RateLimitRule,
    replicas: usize,
    sync_interval_s: f64,
    designs: &[DesignInput],
) -> QuotaResult {
    QuotaResult {
        rate_per_s: rule.rate_per_s,
        burst: rule.burst,
        replicas,
        sync_interval_s,
        designs: designs
            .iter()
            .map(|(design, run)| match run {
                Ok((run, summary)) => design_result(*design, rule, run, summary),
                Err(e) => DesignResult {
                    design: design.as_str().to_string(),
                    error: Some(e.clone()),
                    ..DesignResult::default()
                },
            })
            .collect(),
    }
}

fn design_result(
    design: Design,
    rule: contend_gateway::RateLimitRule,
    run: &RunOutput,
    s: &Summary,
) -> DesignResult {
    let window_s = s.duration_s.max(1e-9);
    let ok = |o: &super::summary::Outcomes| -> u64 {
        o.responses
            .iter()
            .filter(|(c, _)| (200..300).contains(*c))
            .map(|(_, n)| n)
            .sum()
    };
    // A generated key space has no per-key summaries: its busiest keys
    // (summary.json's `key_space.top`) make the table instead.
    let space_keys = s
        .key_space
        .iter()
        .flat_map(|space| &space.top)
        .map(|k| (&k.key, k.arrivals, k.admitted));
    let keys: Vec<KeyQuota> = run
        .step
        .key_names
        .iter()
        .filter_map(|name| {
            s.keys
                .get(name)
                .map(|k| (name, k.outcomes.total(), ok(&k.outcomes)))
        })
        .chain(space_keys)
        .map(|(name, offered, admitted)| {
            let quota = (rule.rate_per_s * window_s).floor() as u64 + u64::from(rule.burst);
            let allowed = offered.min(quota);
            KeyQuota {
                key: name.clone(),
                offered_per_s: round3(offered as f64 / window_s),
                admitted_per_s: round3(admitted as f64 / window_s),
                admitted,
                allowed,
                over_admitted: admitted.saturating_sub(allowed),
            }
        })
        .collect();
    let admitted = ok(&s.outcomes);
    let over_admitted = keys.iter().map(|k| k.over_admitted).sum();
    let total =
        |name: &str| -> f64 { run.replicas.iter().filter_map(|r| r.totals.get(name)).sum() };
    let has_store = run
        .replicas
        .iter()
        .any(|r| r.totals.contains_key("store_calls"));
    let gateways = run
        .step
        .telemetry
        .series
        .iter()
        .filter(|c| c.role.starts_with("gateway"));
    let store = run.step.telemetry.series.iter().find(|c| c.role == "store");
    let store_max = |metric: &str| {
        store.and_then(|st| {
            st.samples
                .iter()
                .filter_map(|r| r.metrics.get(metric).copied())
                .reduce(f64::max)
        })
    };
    let offered_per_s: Vec<f64> = keys.iter().map(|k| k.offered_per_s).collect();
    let store_down = store_windows(run, rule.rate_per_s, &offered_per_s);
    DesignResult {
        design: design.as_str().to_string(),
        error: None,
        interrupted: s.interrupted,
        duration_s: s.duration_s,
        arrivals: s.arrivals,
        admitted,
        limited_429: s.outcomes.responses.get(&429).copied().unwrap_or(0),
        errors_5xx: s
            .outcomes
            .responses
            .iter()
            .filter(|(c, _)| (500..600).contains(*c))
            .map(|(_, n)| n)
            .sum(),
        over_admission_share: round3(over_admitted as f64 / (admitted.max(1)) as f64),
        keys,
        over_admitted,
        p50_us: s.latency_us.p50,
        p99_us: s.latency_us.p99,
        store_calls_per_request: has_store
            .then(|| round3(total("store_calls") / (s.arrivals.max(1)) as f64)),
        store_commands: run.store_commands,
        store_errors: total("rate_limit_store_error") as u64,
        fail_open_admissions: total("rate_limit_fail_open") as u64,
        faults: s.faults.clone(),
        store_down_s: round3(
            store_down
                .iter()
                .map(|w| w.end_s - w.start_s)
                .fold(0.0, |a, b| a + b),
        ),
        store_down,
        gateway_peak_rss_bytes: gateways
            .flat_map(|g| g.samples.iter().filter_map(|r| r.rss_bytes))
            .max(),
        store_keys: store_max("keys"),
        store_memory_bytes: store_max("used_memory_bytes"),
    }
}

/// The runs of intervals in which a replica counted store errors, with
/// what the driver saw answered in them.
fn store_windows(run: &RunOutput, rate_per_s: f64, offered_per_s: &[f64]) -> Vec<StoreWindow> {
    // Per interval index: (store errors, fail-open admissions) over the replicas.
    let mut errors: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for g in run
        .step
        .telemetry
        .series
        .iter()
        .filter(|c| c.role.starts_with("gateway"))
    {
        for r in &g.samples {
            let e = errors.entry(r.index).or_default();
            e.0 += r
                .metrics
                .get("rate_limit_store_error")
                .copied()
                .unwrap_or(0.0);
            e.1 += r
                .metrics
                .get("rate_limit_fail_open")
                .copied()
                .unwrap_or(0.0);
        }
    }
    let allowed_per_s: f64 = offered_per_s.iter().map(|o| o.min(rate_per_s)).sum();
    windows(&run.step.driver.intervals, &errors, allowed_per_s)
}

/// Groups consecutive `intervals` whose `errors` entry counts store errors
/// into windows. Pure, for the tests.
fn windows(
    intervals: &[IntervalRow],
    errors: &BTreeMap<u64, (f64, f64)>,
    allowed_per_s: f64,
) -> Vec<StoreWindow> {
    use crate::outcome::Class;
    let mut out: Vec<StoreWindow> = Vec::new();
    let mut last: Option<u64> = None;
    for row in intervals {
        let Some(&(errs, open)) = errors.get(&row.index).filter(|e| e.0 > 0.0) else {
            continue;
        };
        let admitted = row.by_class[Class::Success.index()];
        let refused = row.by_class[Class::Unavailable.index()];
        let joined = last.is_some_and(|l| l + 1 == row.index);
        if !joined {
            out.push(StoreWindow {
                start_s: row.start_s,
                end_s: row.start_s,
                store_errors: 0,
                fail_open: 0,
                admitted: 0,
                refused_503: 0,
                allowed: 0,
                past_quota: 0,
            });
        }
        let w = out.last_mut().expect("pushed above");
        w.end_s = round3(row.start_s + row.duration_s);
        w.store_errors += errs as u64;
        w.fail_open += open as u64;
        w.admitted += admitted;
        w.refused_503 += refused;
        w.allowed = (allowed_per_s * (w.end_s - w.start_s)).round() as u64;
        w.past_quota = w.admitted.saturating_sub(w.allowed);
        last = Some(row.index);
    }
    out
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn mib(bytes: Option<f64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1} MiB", b / 1048576.0))
}

impl QuotaResult {
    /// The in-process design's p50 and p99, the baseline of the check's cost.
    fn baseline(&self) -> Option<&DesignResult> {
        self.designs
            .iter()
            .find(|d| d.design == Design::InProcess.as_str() && d.error.is_none())
    }

    /// The four answers as Markdown tables (the console shows the same).
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(
            m,
            "Quota {}/s per key (burst {}), {} gateway replica(s); store-cache syncs every {} ms.\n",
            self.rate_per_s,
            self.burst,
            self.replicas,
            (self.sync_interval_s * 1000.0).round()
        );
        let _ = writeln!(
            m,
            "## 1. Accuracy: admitted per key over the run against the quota\n\n\
             | design | key | offered/s | admitted/s | quota/s | admitted / quota | over-admitted |\n\
             | --- | --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for d in &self.designs {
            if let Some(e) = &d.error {
                let _ = writeln!(m, "| {} | FAILED: {} | | | | | |", d.design, one_line(e));
                continue;
            }
            for k in &d.keys {
                let _ = writeln!(
                    m,
                    "| {} | {} | {:.1} | {:.1} | {} | {:.2} | {} |",
                    d.design,
                    k.key,
                    k.offered_per_s,
                    k.admitted_per_s,
                    self.rate_per_s,
                    k.admitted_per_s / self.rate_per_s,
                    k.over_admitted
                );
            }
            let _ = writeln!(
                m,
                "| {} | **all** | {:.1} | {:.1} | | | {} ({:.1}% of admissions) |",
                d.design,
                d.arrivals as f64 / d.duration_s.max(1e-9),
                d.admitted as f64 / d.duration_s.max(1e-9),
                d.over_admitted,
                d.over_admission_share * 100.0
            );
        }
        let base = self.baseline();
        let _ = writeln!(
            m,
            "\n## 2. The check's cost: latency with the store against without\n\n\
             | design | p50 | p99 | p50 over in-process | p99 over in-process | store calls per request | store commands | store errors (timeouts included) |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for d in self.designs.iter().filter(|d| d.error.is_none()) {
            let delta = |a: u64, b: Option<u64>| {
                b.map_or("-".into(), |b| {
                    let diff = a as i64 - b as i64;
                    format!(
                        "{}{}",
                        if diff < 0 { "-" } else { "+" },
                        fmt_us(diff.unsigned_abs())
                    )
                })
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                d.design,
                fmt_us(d.p50_us),
                fmt_us(d.p99_us),
                delta(d.p50_us, base.map(|b| b.p50_us)),
                delta(d.p99_us, base.map(|b| b.p99_us)),
                d.store_calls_per_request
                    .map_or("-".into(), |c| format!("{c:.3}")),
                d.store_commands.map_or("-".into(), |c| format!("{c:.0}")),
                d.store_errors
            );
        }
        self.fault_markdown(&mut m);
        let _ = writeln!(
            m,
            "\n## 4. Footprint\n\n\
             | design | gateway peak RSS (any replica) | store keys (most) | store memory (most) |\n\
             | --- | ---: | ---: | ---: |"
        );
        for d in self.designs.iter().filter(|d| d.error.is_none()) {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                d.design,
                mib(d.gateway_peak_rss_bytes.map(|b| b as f64)),
                d.store_keys.map_or("-".into(), |k| format!("{k:.0}")),
                mib(d.store_memory_bytes)
            );
        }
        m
    }

    fn fault_markdown(&self, m: &mut String) {
        let _ = writeln!(
            m,
            "\n## 3. A store fault: when the gateways could not reach the store\n"
        );
        let faulted: Vec<&DesignResult> = self
            .designs
            .iter()
            .filter(|d| d.design.starts_with("fault-"))
            .collect();
        if faulted.is_empty() {
            let _ = writeln!(m, "No fault design ran: the scenario lists no [[faults]].");
            return;
        }
        let _ = writeln!(
            m,
            "| design | faults (applied, s from the load's start) | store errors | fail-open admissions | \
             503s | store-down window(s) | admitted in them past the quota | refused in them |\n\
             | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |"
        );
        for d in faulted {
            if let Some(e) = &d.error {
                let _ = writeln!(m, "| {} | FAILED: {} | | | | | | |", d.design, one_line(e));
                continue;
            }
            let faults = d
                .faults
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {:.2}-{}{}",
                        f.component,
                        f.action,
                        f.at_s,
                        f.until_s.map_or("end".into(), |u| format!("{u:.2}")),
                        f.error
                            .as_ref()
                            .map_or(String::new(), |e| format!(" (error: {})", one_line(e)))
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let windows = d
                .store_down
                .iter()
                .map(|w| format!("{:.1}-{:.1} s", w.start_s, w.end_s))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} ({:.1} s) | {} | {} |",
                d.design,
                faults,
                d.store_errors,
                d.fail_open_admissions,
                d.errors_5xx,
                if windows.is_empty() {
                    "none".into()
                } else {
                    windows
                },
                d.store_down_s,
                d.store_down.iter().map(|w| w.past_quota).sum::<u64>(),
                d.store_down.iter().map(|w| w.refused_503).sum::<u64>()
            );
        }
        let _ = writeln!(
            m,
            "\nA store-down window is a run of reporting intervals in which a replica counted store errors \
             (its length is to the interval). Past the quota: the window's 2xx beyond what the quota allows \
             the keys' offered rates in it."
        );
    }
}

/// An error's first line, for a table cell.
fn one_line(e: &str) -> String {
    e.lines().next().unwrap_or("").replace('|', "/")
}

/// The console: the same tables as `quota.md`.
pub fn write_table(w: &mut dyn Write, q: &QuotaResult) -> io::Result<()> {
    w.write_all(q.markdown().as_bytes())
}

/// One `quota.csv` row: a design's totals.
#[derive(Serialize)]
struct CsvRow<'a> {
    design: &'a str,
    error: &'a str,
    arrivals: u64,
    admitted: u64,
    limited_429: u64,
    errors_5xx: u64,
    over_admitted: u64,
    over_admission_share: f64,
    p50_us: u64,
    p99_us: u64,
    store_calls_per_request: Option<f64>,
    store_errors: u64,
    fail_open_admissions: u64,
    store_down_s: f64,
    past_quota_while_down: u64,
    refused_while_down: u64,
    gateway_peak_rss_bytes: Option<u64>,
    store_keys: Option<f64>,
}

/// `quota.csv`: one row per design.
pub fn write_csv(w: &mut dyn Write, q: &QuotaResult) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    for d in &q.designs {
        csv.serialize(CsvRow {
            design: &d.design,
            error: d.error.as_deref().unwrap_or(""),
            arrivals: d.arrivals,
            admitted: d.admitted,
            limited_429: d.limited_429,
            errors_5xx: d.errors_5xx,
            over_admitted: d.over_admitted,
            over_admission_share: d.over_admission_share,
            p50_us: d.p50_us,
            p99_us: d.p99_us,
            store_calls_per_request: d.store_calls_per_request,
            store_errors: d.store_errors,
            fail_open_admissions: d.fail_open_admissions,
            store_down_s: d.store_down_s,
            past_quota_while_down: d.store_down.iter().map(|w| w.past_quota).sum(),
            refused_while_down: d.store_down.iter().map(|w| w.refused_503).sum(),
            gateway_peak_rss_bytes: d.gateway_peak_rss_bytes,
            store_keys: d.store_keys,
        })
        .map_err(io::Error::other)?;
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Class;

    fn row(index: u64, ok: u64, s503: u64) -> IntervalRow {
        let mut by_class = [0; Class::ALL.len()];
        by_class[Class::Success.index()] = ok;
        by_class[Class::Unavailable.index()] = s503;
        IntervalRow {
            index,
            start_s: index as f64,
            duration_s: 1.0,
            by_class,
            ..IntervalRow::default()
        }
    }

    #[test]
    fn store_errors_in_consecutive_intervals_make_one_window() {
        let intervals: Vec<IntervalRow> = (0..8).map(|i| row(i, 150, i % 2)).collect();
        // Errors in 2, 3 and 4 (fail-open in 2 and 3), then 6.
        let errors: BTreeMap<u64, (f64, f64)> = [
            (1, (0.0, 0.0)),
            (2, (40.0, 40.0)),
            (3, (90.0, 90.0)),
            (4, (5.0, 0.0)),
            (6, (1.0, 1.0)),
        ]
        .into();
        let w = windows(&intervals, &errors, 100.0);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!((w[0].start_s, w[0].end_s), (2.0, 5.0));
        assert_eq!((w[0].store_errors, w[0].fail_open), (135, 130));
        assert_eq!(
            (w[0].admitted, w[0].allowed, w[0].past_quota),
            (450, 300, 150)
        );
        assert_eq!(w[0].refused_503, 1);
        assert_eq!((w[1].start_s, w[1].end_s, w[1].past_quota), (6.0, 7.0, 50));
        assert!(windows(&intervals, &BTreeMap::new(), 100.0).is_empty());
    }
}
