//! The commands that read saved report folders or run one component:
//! `contend compare`, `merge`, `report`, `doctor` and `gateway`. Each takes
//! its parsed arguments, calls the library, and returns the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::write_junit;
use crate::cli::{CompareArgs, DoctorArgs, GatewayArgs, MergeArgs};
use crate::error::{Error, Result};
use crate::report::{self, summary::Summary};
use crate::scenario::{self, Experiment};
use crate::{gate, preflight};

/// `contend compare`: baseline report folders against current ones. Returns
/// 0, or 3 when a metric regressed.
pub fn compare(args: &CompareArgs) -> Result<i32> {
    check_junit(args.junit.as_deref())?;
    let (baseline, current) = match (args.baseline.is_empty(), args.dirs.as_slice()) {
        (false, _) => (args.baseline.clone(), args.current.clone()),
        (true, [b, c]) => (vec![b.clone()], vec![c.clone()]),
        (true, _) => {
            return Err(Error::Usage(format!(
                "compare takes BASELINE CURRENT (two report folders, got {}), or --baseline DIR... --current DIR... \
                 for repeated runs",
                args.dirs.len()
            )));
        }
    };
    let read = |dirs: &[PathBuf]| {
        dirs.iter()
            .map(|d| gate::compare::read_run(d))
            .collect::<Result<Vec<_>>>()
    };
    let (baseline, current) = (read(&baseline)?, read(&current)?);
    let cmp = gate::compare::compare(&baseline, &current, &args.tolerance());
    let _ = gate::compare::write_table(&mut std::io::stdout().lock(), &cmp, args.quiet);
    if let Some(path) = &args.junit {
        write_junit(path, "contend compare", &gate::compare::junit_cases(&cmp))?;
    }
    Ok(if cmp.regressed() {
        gate::EXIT_GATE_FAILED
    } else {
        0
    })
}

/// `contend doctor`: the checks `run` makes before it starts, on their own,
/// against a scenario (or the flags' stand-in), plus whether nginx and
/// HAProxy are there.
/// Returns 0: warnings are advice, not a failure.
pub fn doctor(args: &DoctorArgs) -> Result<i32> {
    let overrides = args.overrides();
    let scenario = match &args.scenario {
        Some(path) => scenario::load(path, &overrides)?,
        None => scenario::from_overrides(&overrides)?,
    };
    let load = preflight::Load::of(&scenario);
    let mut checks = preflight::checks(&preflight::Readings::read(), &load);
    let needed = |kind: scenario::GatewayKind| {
        scenario.gateway.kind == kind
            || matches!(&scenario.experiment, Experiment::AbortAudit(audit)
                if audit.modes.iter().any(|m| m.gateway_kind() == kind))
    };
    checks.push(preflight::nginx(needed(scenario::GatewayKind::Nginx)));
    checks.push(preflight::haproxy(needed(scenario::GatewayKind::Haproxy)));
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "Checked against: up to {} connections, {:.0}/s at peak, {} driver threads, the listener {}.",
        load.connections,
        load.peak_rate_per_s,
        load.threads,
        if load.listener_local {
            "on this host"
        } else {
            "on another host"
        }
    );
    let _ = preflight::write(&mut stdout, &checks, false);
    let warns = checks
        .iter()
        .filter(|c| c.status == preflight::Status::Warn)
        .count();
    let _ = match warns {
        0 => writeln!(stdout, "Nothing here will limit the run."),
        n => writeln!(
            stdout,
            "{n} setting(s) will limit the run: apply the fixes above."
        ),
    };
    Ok(0)
}

/// `contend gateway`: loads the gateway config, applies `--listen` and
/// `--upstream` over it, and runs the reference gateway until SIGTERM or
/// SIGINT (0). A bad config or flag is exit code 2.
pub fn gateway(args: &GatewayArgs) -> Result<i32> {
    let mut config = contend_gateway::config::load(&args.config)?;
    if let Some(listen) = &args.listen {
        config.listen = listen.parse().map_err(|_| {
            Error::Usage(format!(
                "--listen {listen:?} is not IP:PORT, like 127.0.0.1:0"
            ))
        })?;
    }
    if let Some(upstream) = &args.upstream {
        config.upstream = contend_gateway::config::check_upstream(upstream)
            .map_err(|m| Error::Usage(format!("--upstream: {m}")))?;
    }
    contend_gateway::run(config)?;
    Ok(0)
}

/// `contend report DIR`: prints a saved run's summary again (or a saved
/// `contend logs` report's tables).
///
/// It also draws the plots and `report.html` again from the folder's saved
/// data (`summary.json`, `intervals.csv`, `latency.hgrm`); nothing is run.
pub fn report(dir: &std::path::Path) -> Result<i32> {
    if let Some(summary) = super::logs::saved(dir) {
        let _ = report::logs::page::write_console(&mut std::io::stdout().lock(), &summary);
        return Ok(0);
    }
    let data = report::plot::ReportData::read(dir)?;
    let summary = &data.summary;
    if let Some(quota) = &summary.quota {
        return report_quota(dir, summary, quota);
    }
    let mut stdout = std::io::stdout().lock();
    if let Some(rows) = &summary.variants {
        // A `[[variants]]` folder: its table and its own page (each
        // variant's folder is re-rendered by its own `contend report`).
        let _ = report::variants::write_table(&mut stdout, rows);
        drop(stdout);
        report::write_file(&dir.join("report.html"), &|w| {
            report::variants_page::write(w, dir, summary)
        })?;
        return Ok(0);
    }
    let _ = report::console::write(&mut stdout, summary);
    let _ = gate::write_thresholds(&mut stdout, &summary.thresholds, false);
    if let Some(sweep) = &summary.sweep {
        let _ = report::console::write_sweep(&mut stdout, sweep);
    }
    if let Some(find_limit) = &summary.find_limit {
        let _ = report::find_limit::write_table(&mut stdout, find_limit);
    }
    if let Some(rows) = report::retry_effect::rows(summary) {
        let _ = report::retry_effect::write_console(&mut stdout, &rows);
    }
    drop(stdout);
    let (_, errors) = report::write_plots_and_html(dir, &data);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    Ok(0)
}

/// `contend report` of a quota experiment's folder: its tables again, and
/// its top-level files from its summary and each design's `intervals.csv`
/// (a design whose file is missing is left out of the figures, said).
fn report_quota(
    dir: &std::path::Path,
    summary: &report::summary::Summary,
    quota: &report::quota::QuotaResult,
) -> Result<i32> {
    let _ = report::quota::write_table(&mut std::io::stdout().lock(), quota);
    let mut runs = Vec::new();
    for d in quota.designs.iter().filter(|d| d.error.is_none()) {
        let path = dir
            .join(format!("design-{}", d.design))
            .join("intervals.csv");
        match report::read_intervals_csv(&path) {
            Ok(rows) => runs.push((d.design.clone(), rows)),
            Err(e) => eprintln!(
                "warning: {}: {e}; its lines are left out of the figures",
                path.display()
            ),
        }
    }
    let (_, errors) = report::quota_page::write_files(dir, summary, quota, &runs);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    Ok(0)
}

/// `contend merge DIR... --out DIR`: the shards of a run into one report of
/// the whole load, with the thresholds evaluated on it. Returns 0, or 3
/// when a threshold failed.
pub fn merge(args: &MergeArgs) -> Result<i32> {
    check_junit(args.junit.as_deref())?;
    let flag_location =
        |i: usize, col: usize| format!("--threshold {:?}: col {col}", args.thresholds[i]);
    let thresholds = gate::parse_all(&args.thresholds, |i, e| Error::Scenario {
        location: flag_location(i, e.col),
        message: e.message,
    })?;
    let shards = args
        .dirs
        .iter()
        .map(|d| report::merge::read(d))
        .collect::<Result<Vec<_>>>()?;
    report::folder::prepare(&args.out, args.force, true)?;
    let merged = report::merge::merge(shards, args.allow_missing)?;
    let mut summary = merged.summary;
    check_merged_thresholds(&summary, &thresholds, flag_location)?;
    super::evaluate_thresholds(&mut summary, &thresholds)?;
    let (written, errors) = report::write_parts(
        &args.out,
        &report::Parts {
            summary: &summary,
            started_at: merged.started_at,
            intervals: &merged.intervals,
            histograms: &merged.histograms,
            components: &[],
        },
    );
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        let _ = report::console::write(&mut stdout, &summary);
    }
    let _ = gate::write_thresholds(&mut stdout, &summary.thresholds, args.quiet);
    if !args.quiet && written.iter().any(|p| p.ends_with("summary.json")) {
        let _ = writeln!(stdout, "Report: {}", args.out.display());
    }
    drop(stdout);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    if let Some(path) = &args.junit {
        super::write_junit(
            path,
            "contend thresholds",
            &gate::threshold_cases("contend.thresholds", &summary.thresholds),
        )?;
    }
    Ok(if summary.thresholds.iter().any(|r| !r.pass) {
        gate::EXIT_GATE_FAILED
    } else {
        0
    })
}

/// Refuses a threshold that reads a value the merged summary does not hold
/// (exit 2 with the valid names), as `run` does before its load.
fn check_merged_thresholds(
    summary: &Summary,
    thresholds: &[gate::Threshold],
    location: impl Fn(usize, usize) -> String,
) -> Result<()> {
    if thresholds.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = summary.keys.keys().map(String::as_str).collect();
    let json = serde_json::to_value(summary)
        .map_err(|e| Error::Runtime(format!("summary as JSON: {e}")))?;
    let mut paths = Vec::new();
    number_paths(&json, &mut Vec::new(), &mut paths);
    for (i, t) in thresholds.iter().enumerate() {
        t.check(&keys, &paths).map_err(|e| Error::Scenario {
            location: location(i, e.col),
            message: e.message,
        })?;
    }
    Ok(())
}

/// The dotted paths of every number (and boolean) in `value`, array
/// indices as `#`.
fn number_paths(value: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => out.push(at.join(".")),
        serde_json::Value::Object(map) => {
            for (name, v) in map {
                at.push(name.clone());
                number_paths(v, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(first) = items.first() {
                at.push("#".into());
                number_paths(first, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Refuses a `--junit` FILE that cannot be written (a folder, or in a
/// folder that does not exist) before anything runs, as bad input: found
/// only after a run, it would fail the command after the work was done.
pub(super) fn check_junit(path: Option<&Path>) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "--junit {}: it is a folder: give a file, like {}",
            path.display(),
            path.join("junit.xml").display()
        )));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(Error::Usage(format!(
            "--junit {}: the folder {} does not exist: create it first (mkdir -p {}), or give a \
             file in a folder that does",
            path.display(),
            folder.display(),
            folder.display()
        )));
    }
    Ok(())
}
