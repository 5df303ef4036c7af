//! The top-level `report.html` of a run with `[[variants]]`: the variants
//! side by side (the table of `variants.csv`), `variants.svg` inline, and
//! a link to each variant's own page in `variant-NAME/report.html`.
//!
//! Takes the top-level summary (its `variants` rows) and the folder the
//! figure was drawn into; measures nothing and draws no plot.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use super::console::fmt_us;
use super::html::{STYLE, esc, inline_plots};
use super::summary::Summary;
use super::variants::VariantRow;

/// Writes the page for `summary`, whose figure `variants.svg` is in `dir`.
pub fn write(w: &mut dyn Write, dir: &Path, summary: &Summary) -> io::Result<()> {
    let rows = summary.variants.as_deref().unwrap_or_default();
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>contend: {0}</title><style>{STYLE}</style></head><body>\n<h1>{0}</h1>",
        esc(&summary.name)
    );
    let _ = writeln!(
        h,
        "<p class=\"muted\">{} variants, each the same phases on a fresh topology · started {} · target {}{}</p>",
        rows.len(),
        esc(&summary.started_at),
        esc(&summary.target),
        if rows.iter().any(|r| r.interrupted) {
            " · <b>interrupted</b>"
        } else {
            ""
        }
    );
    table(&mut h, rows);
    inline_plots(&mut h, dir, &["variants".to_string()]);
    if !summary.warnings.is_empty() {
        let _ = writeln!(h, "<h2>Warnings</h2><ul>");
        for warning in &summary.warnings {
            let _ = writeln!(h, "<li>{}</li>", esc(warning));
        }
        let _ = writeln!(h, "</ul>");
    }
    let _ = writeln!(
        h,
        "<p class=\"muted\">Written by contend {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    w.write_all(h.as_bytes())
}

/// The side-by-side table, each variant's name linking to its own page.
fn table(h: &mut String, rows: &[VariantRow]) {
    let _ = writeln!(
        h,
        "<h2>Side by side</h2>\n<table><tr><th>variant</th><th>arrivals</th><th>attempts</th><th>amplification</th><th>goodput/s</th><th>2xx</th><th>503</th><th>504</th><th>client timeout</th><th>budget refused</th><th>p50</th><th>p99</th><th>upstream CPU</th><th>wasted CPU</th></tr>"
    );
    let cpu = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.2} s"));
    for r in rows {
        let _ = writeln!(
            h,
            "<tr><td><a href=\"variant-{0}/report.html\">{0}</a>{1}</td><td>{2}</td><td>{3}</td><td>{4:.2}</td><td>{5:.1}</td><td>{6}</td><td>{7}</td><td>{8}</td><td>{9}</td><td>{10}</td><td>{11}</td><td>{12}</td><td>{13}</td><td>{14}</td></tr>",
            esc(&r.name),
            if r.interrupted { " (interrupted)" } else { "" },
            r.arrivals,
            r.attempts,
            r.amplification,
            r.goodput_per_s,
            r.ok,
            r.unavailable_503,
            r.gateway_timeout_504,
            r.client_timeout,
            r.budget_refused,
            fmt_us(r.p50_us),
            fmt_us(r.p99_us),
            cpu(r.upstream_cpu_s),
            cpu(r.wasted_upstream_cpu_s)
        );
    }
    let _ = writeln!(
        h,
        "</table>\n<p class=\"muted\">Amplification: attempts per arrival. Latency: from each arrival's intended time to its last attempt's answer (what the caller waited, retries included). Wasted CPU: the upstream's work on answers nobody read (the gateway had answered 504). Each variant's own report: follow its name.</p>"
    );
}
