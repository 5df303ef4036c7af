//! `contend logs`'s files: the report's rows written as `summary.json`,
//! the CSVs, the plots and `report.html` into its folder.
//!
//! Takes a finished [`LogReport`] and a folder made ready before; writes
//! every file on its own, whole or not at all (`report::write_file`), and
//! hands on the files written and the errors of those that failed. The
//! CSV rows are flat `Serialize` structs of the summary's rows.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{GroupRow, KeyRow, LogReport, UsageRow, figures, page};
use crate::analysis::censored;
use crate::error::Error;

/// Writes `report` into `dir` (made ready before): every file on its own,
/// whole or not at all. Returns the files written and the errors of those
/// that failed.
pub fn write(dir: &Path, report: &LogReport) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = crate::report::Written::default();
    written.summary_json(dir, &report.summary);
    let mut one = |name: &str, body: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| {
        written.file(dir.join(name), body);
    };
    one("log-intervals.csv", &|w| csv_rows(w, &report.intervals));
    one("routes.csv", &|w| {
        csv_rows(w, &route_csv(&report.summary.routes))
    });
    one("keys.csv", &|w| csv_rows(w, &key_csv(&report.summary.keys)));
    one("usage.csv", &|w| {
        csv_rows(w, &usage_csv(&report.summary.usage))
    });
    one("slow-routes.csv", &|w| {
        csv_rows(w, &report.summary.slow_routes)
    });
    let mut plots = Vec::new();
    for (name, figure) in figures::all(report) {
        let mut ok = true;
        for path in crate::report::plot::files(dir, name) {
            let result = crate::report::plot::render_file(&path, &figure);
            ok &= result.is_ok();
            written.keep(path, result);
        }
        if ok {
            plots.push(name.to_string());
        }
    }
    written.file(dir.join("report.html"), &|w| {
        page::write_html(w, dir, report, &plots)
    });
    written.into_parts()
}

fn csv_rows<T: Serialize>(w: &mut dyn Write, rows: &[T]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    for row in rows {
        csv.serialize(row)?;
    }
    csv.flush()
}

/// One row of `routes.csv` (and the counts of `keys.csv`).
#[derive(Debug, Serialize)]
struct GroupCsv<'a> {
    name: &'a str,
    requests: u64,
    rate_per_s: Option<f64>,
    share: f64,
    #[serde(rename = "2xx")]
    s2xx: u64,
    #[serde(rename = "3xx")]
    s3xx: u64,
    #[serde(rename = "4xx")]
    s4xx: u64,
    #[serde(rename = "5xx")]
    s5xx: u64,
    other_status: u64,
    request_p50_ms: Option<f64>,
    request_p90_ms: Option<f64>,
    request_p99_ms: Option<f64>,
    request_max_ms: Option<f64>,
    upstream_p50_ms: Option<f64>,
    upstream_p90_ms: Option<f64>,
    upstream_p99_ms: Option<f64>,
    upstream_max_ms: Option<f64>,
    slow: u64,
    retried: u64,
}

fn group_csv(r: &GroupRow) -> GroupCsv<'_> {
    let class = |c: char| -> u64 {
        r.statuses
            .iter()
            .filter(|(s, _)| s.len() == 3 && s.starts_with(c))
            .map(|(_, n)| n)
            .sum()
    };
    let classed: u64 = "2345".chars().map(class).sum();
    GroupCsv {
        name: &r.name,
        requests: r.requests,
        rate_per_s: r.rate_per_s,
        share: r.share,
        s2xx: class('2'),
        s3xx: class('3'),
        s4xx: class('4'),
        s5xx: class('5'),
        other_status: r.requests - classed,
        request_p50_ms: r.request_time_ms.map(|t| t.p50),
        request_p90_ms: r.request_time_ms.map(|t| t.p90),
        request_p99_ms: r.request_time_ms.map(|t| t.p99),
        request_max_ms: r.request_time_ms.map(|t| t.max),
        upstream_p50_ms: r.upstream_time_ms.map(|t| t.p50),
        upstream_p90_ms: r.upstream_time_ms.map(|t| t.p90),
        upstream_p99_ms: r.upstream_time_ms.map(|t| t.p99),
        upstream_max_ms: r.upstream_time_ms.map(|t| t.max),
        slow: r.slow,
        retried: r.retried,
    }
}

fn route_csv(routes: &[GroupRow]) -> Vec<GroupCsv<'_>> {
    routes.iter().map(group_csv).collect()
}

/// One row of `keys.csv`: the counts (as `routes.csv`'s; the csv crate
/// writes no flattened struct), the aborts and their knee, the estimate.
#[derive(Debug, Serialize)]
struct KeyCsv<'a> {
    name: &'a str,
    requests: u64,
    rate_per_s: Option<f64>,
    share: f64,
    #[serde(rename = "2xx")]
    s2xx: u64,
    #[serde(rename = "3xx")]
    s3xx: u64,
    #[serde(rename = "4xx")]
    s4xx: u64,
    #[serde(rename = "5xx")]
    s5xx: u64,
    other_status: u64,
    request_p50_ms: Option<f64>,
    request_p99_ms: Option<f64>,
    upstream_p50_ms: Option<f64>,
    upstream_p99_ms: Option<f64>,
    slow: u64,
    client_aborts: u64,
    status_404_without_upstream_status: u64,
    gateway_timeouts: u64,
    client_aborts_without_upstream_time: u64,
    aborts_charged_s: f64,
    client_timeout_knee_s: Option<f64>,
    gateway_timeout_knee_s: Option<f64>,
    completed: u64,
    cut: u64,
    fitted_mean_work_s: Option<f64>,
    charged_s: f64,
    estimated_true_s: Option<f64>,
    under_count: Option<f64>,
    under_count_low: Option<f64>,
    under_count_high: Option<f64>,
    status: censored::Status,
}

fn key_csv(keys: &[KeyRow]) -> Vec<KeyCsv<'_>> {
    keys.iter()
        .map(|k| (k, group_csv(&k.group)))
        .map(|(k, g)| KeyCsv {
            name: g.name,
            requests: g.requests,
            rate_per_s: g.rate_per_s,
            share: g.share,
            s2xx: g.s2xx,
            s3xx: g.s3xx,
            s4xx: g.s4xx,
            s5xx: g.s5xx,
            other_status: g.other_status,
            request_p50_ms: g.request_p50_ms,
            request_p99_ms: g.request_p99_ms,
            upstream_p50_ms: g.upstream_p50_ms,
            upstream_p99_ms: g.upstream_p99_ms,
            slow: g.slow,
            client_aborts: k.aborts.client_aborts,
            status_404_without_upstream_status: k.aborts.status_404_without_upstream_status,
            gateway_timeouts: k.aborts.gateway_timeouts,
            client_aborts_without_upstream_time: k.aborts.client_aborts_without_upstream_time,
            aborts_charged_s: k.aborts.charged_s,
            client_timeout_knee_s: k.aborts.client_timeout_knee.as_ref().map(|k| k.at_s),
            gateway_timeout_knee_s: k.aborts.gateway_timeout_knee.as_ref().map(|k| k.at_s),
            completed: k.estimate.fit.completed,
            cut: k.estimate.fit.cut,
            fitted_mean_work_s: k.estimate.fit.mean_s,
            charged_s: k.estimate.charged_s,
            estimated_true_s: k.estimate.estimated_true_s,
            under_count: k.estimate.under_count,
            under_count_low: k.estimate.under_count_interval.map(|i| i[0]),
            under_count_high: k.estimate.under_count_interval.map(|i| i[1]),
            status: k.estimate.status,
        })
        .collect()
}

/// One row of `usage.csv` (the interval as two columns).
#[derive(Debug, Serialize)]
struct UsageCsv<'a> {
    key: &'a str,
    requests: u64,
    charged_s: f64,
    charged_per_s: Option<f64>,
    share: f64,
    estimated_true_s: Option<f64>,
    under_count: Option<f64>,
    under_count_low: Option<f64>,
    under_count_high: Option<f64>,
    status: censored::Status,
}

fn usage_csv(rows: &[UsageRow]) -> Vec<UsageCsv<'_>> {
    rows.iter()
        .map(|u| UsageCsv {
            key: &u.key,
            requests: u.requests,
            charged_s: u.charged_s,
            charged_per_s: u.charged_per_s,
            share: u.share,
            estimated_true_s: u.estimated_true_s,
            under_count: u.under_count,
            under_count_low: u.under_count_interval.map(|i| i[0]),
            under_count_high: u.under_count_interval.map(|i| i[1]),
            status: u.status,
        })
        .collect()
}
