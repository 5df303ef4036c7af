//! Per-address results of a target driven at several addresses (`[target]
//! urls`): summary.json's `addresses`, the console's lines, report.html's
//! table, and their merge across shards.
//!
//! Takes the driver's per-address totals (or the shards' summaries and
//! merged histograms) and the target's URLs; hands on one
//! [`AddressSummary`] per address, in the scenario's order, so that a user
//! sees whether the addresses took equal shares and whether one was slower
//! or failing. Nothing here with a single address: the run's own totals
//! are that address's.
//!
//! What is charged where: a request sent, its outcome and its latency go to
//! the address its connection went to; a failed connect (and a failed TLS
//! handshake or HTTP/2 preface) to the address it tried. An arrival that
//! never had a connection to try (`not_sent` at the connection cap, a
//! `client_timeout` while it waited for one) goes to no address, so the
//! addresses' outcomes add up to the run's less those. With retries, an
//! arrival's one outcome goes to the address of its last attempt.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::console::fmt_us;
use super::histograms::Histograms;
use super::html::esc;
use super::summary::{Outcomes, Percentiles, Summary};
use crate::outcome::Class;
use crate::record::Totals;

/// One address's results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AddressSummary {
    /// The address, as `[target] urls` gives it.
    pub url: String,
    /// Requests written to connections to it.
    pub sent: u64,
    /// Outcomes charged to it (see the module's docs), as the run's.
    pub outcomes: Outcomes,
    /// Median latency of the requests sent to it, us (0: none sent).
    pub p50_us: u64,
    /// 99th percentile, us.
    pub p99_us: u64,
    /// Connections opened to it.
    pub connections_opened: u64,
}

impl AddressSummary {
    /// Outcomes other than a 2xx answer.
    pub fn errors(&self) -> u64 {
        self.outcomes.total()
            - self
                .outcomes
                .classes
                .get(Class::Success.name())
                .unwrap_or(&0)
    }

    /// Its p50 and p99 as reports show them; `-` when it was sent nothing
    /// (no latency, not a latency of 0).
    fn percentiles(&self) -> (String, String) {
        if self.sent == 0 {
            ("-".into(), "-".into())
        } else {
            (fmt_us(self.p50_us), fmt_us(self.p99_us))
        }
    }
}

/// The histogram name of address `index` in histograms.hlog.
pub fn histogram_name(index: usize) -> String {
    format!("address/{index}")
}

/// One summary per address from a run's totals; empty unless the driver
/// kept per-address totals for exactly `urls`.
pub fn of(urls: &[String], t: &Totals) -> Vec<AddressSummary> {
    if t.addresses.len() != urls.len() {
        return Vec::new();
    }
    urls.iter()
        .zip(&t.addresses)
        .map(|(url, a)| {
            let p = Percentiles::of(&a.latency_us);
            AddressSummary {
                url: url.clone(),
                sent: a.sent,
                outcomes: Outcomes::of(&a.counts),
                p50_us: p.p50,
                p99_us: p.p99,
                connections_opened: a.connections_opened,
            }
        })
        .collect()
}

/// The addresses of merged shards: counts added, percentiles from the
/// merged `address/N` histograms. `Err` says why they are left out: the
/// shards drove different address lists, or one lacks its histograms.
pub fn merged(shards: &[&Summary], histograms: &Histograms) -> Result<Vec<AddressSummary>, String> {
    let Some(first) = shards.first() else {
        return Ok(Vec::new());
    };
    let urls = |s: &Summary| {
        s.addresses
            .iter()
            .map(|a| a.url.clone())
            .collect::<Vec<_>>()
    };
    let list = urls(first);
    if let Some(other) = shards.iter().find(|s| urls(s) != list) {
        return Err(format!(
            "per-address results left out: the shards drove different addresses ({} and {}); \
             merge shards of one [target] urls to see them",
            describe(&list),
            describe(&urls(other))
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, url) in list.into_iter().enumerate() {
        let Some(h) = histograms.get(&histogram_name(i)) else {
            return Err(format!(
                "per-address results left out: histograms.hlog has no latency of {url} ({}) \
                 in every shard; re-run the shards with this contend",
                histogram_name(i)
            ));
        };
        let mut sum = AddressSummary {
            url,
            sent: 0,
            outcomes: Outcomes::default(),
            p50_us: 0,
            p99_us: 0,
            connections_opened: 0,
        };
        for s in shards {
            let a = &s.addresses[i];
            sum.sent += a.sent;
            sum.connections_opened += a.connections_opened;
            super::merge::add_outcomes(&mut sum.outcomes, &a.outcomes);
        }
        let p = Percentiles::of(h);
        (sum.p50_us, sum.p99_us) = (p.p50, p.p99);
        out.push(sum);
    }
    Ok(out)
}

fn describe(urls: &[String]) -> String {
    if urls.is_empty() {
        "one address".to_string()
    } else {
        urls.join(", ")
    }
}

/// The console's lines, one per address: sent and its share of all sent,
/// errors (every outcome but a 2xx) by class, p50/p99, connections;
/// `sent`: the run's.
pub fn write_console(w: &mut dyn Write, addresses: &[AddressSummary], sent: u64) -> io::Result<()> {
    if addresses.is_empty() {
        return Ok(());
    }
    let width = addresses.iter().map(|a| a.url.len()).max().unwrap_or(0);
    writeln!(w, "  Per address:")?;
    for a in addresses {
        let (p50, p99) = a.percentiles();
        writeln!(
            w,
            "    {:<width$}  sent {:>8} ({:>5.1}%)  errors {:>6}{}  p50 {:>8}  p99 {:>8}  {} connections",
            a.url,
            a.sent,
            share(a.sent, sent),
            a.errors(),
            error_classes(a),
            p50,
            p99,
            a.connections_opened,
        )?;
    }
    Ok(())
}

/// A percentage of `all` (0 when `all` is).
fn share(part: u64, all: u64) -> f64 {
    if all == 0 {
        0.0
    } else {
        part as f64 * 100.0 / all as f64
    }
}

/// ` (connect_error 12, 503 3)`: the classes an address's errors fell in.
fn error_classes(a: &AddressSummary) -> String {
    let parts: Vec<String> = a
        .outcomes
        .classes
        .iter()
        .filter(|(c, n)| **n > 0 && c.as_str() != Class::Success.name())
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// report.html's table, for the section that describes the target;
/// `sent`: the run's.
pub fn write_html(h: &mut String, addresses: &[AddressSummary], sent: u64) {
    if addresses.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<table><tr><th>address</th><th>sent</th><th>share</th><th>errors</th><th>P50</th><th>P99</th><th>connections</th></tr>"
    );
    for a in addresses {
        let (p50, p99) = a.percentiles();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.url),
            a.sent,
            share(a.sent, sent),
            a.errors(),
            esc(&error_classes(a)),
            p50,
            p99,
            a.connections_opened,
        );
    }
    let _ = writeln!(
        h,
        "</table><p class=\"muted\">The target's addresses ([target] urls): each request is charged to the address \
         its connection went to, a failed connect to the one it tried; errors are every outcome but a 2xx.</p>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(url: &str, sent: u64, ok: u64, refused: u64) -> AddressSummary {
        let mut outcomes = Outcomes::default();
        outcomes.classes.insert("2xx".into(), ok);
        outcomes.classes.insert("connect_error".into(), refused);
        outcomes.responses.insert(200, ok);
        outcomes.connect_error = refused;
        AddressSummary {
            url: url.into(),
            sent,
            outcomes,
            p50_us: 1_000,
            p99_us: 2_000,
            connections_opened: 1,
        }
    }

    #[test]
    fn each_address_gets_a_line_with_its_share_and_errors() {
        let addresses = [
            address("http://127.0.0.1:1", 100, 100, 0),
            address("http://127.0.0.1:2", 0, 0, 7),
        ];
        let mut out = Vec::new();
        write_console(&mut out, &addresses, 100).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].contains("100.0%") && lines[1].contains("errors      0  p50"),
            "{text}"
        );
        assert!(
            lines[2].contains("(  0.0%)") && lines[2].contains("errors      7 (connect_error 7)"),
            "{text}"
        );
        assert!(
            lines[2].contains("p50        -  p99        -"),
            "no latency where nothing was sent: {text}"
        );
    }
}
