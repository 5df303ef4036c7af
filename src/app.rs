//! The commands: each takes parsed arguments, calls the library's parts in
//! order, and returns the process exit code. `main` maps errors.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{CompareArgs, RunArgs};
use crate::error::{Error, Result};
use crate::report::{self, summary::Summary};
use crate::scenario;
use crate::shutdown::{self, Stop};
use crate::{experiment, gate, topology};

/// `contend run`: run (`--repeat` times), evaluate the thresholds, write
/// each report (also when interrupted), print the summary and the verdicts.
/// Returns 0, 3 when a threshold failed, or 130/143 when a signal cut the
/// run short (the signal's code wins: an interrupted gate is no pass).
pub fn run(args: &RunArgs) -> Result<i32> {
    let overrides = args.overrides();
    let scenario = match &args.scenario {
        Some(path) => scenario::load(path, &overrides)?,
        None => scenario::from_overrides(&overrides)?,
    };
    if scenario.experiment != scenario::ExperimentKind::Run {
        return Err(Error::Usage(format!(
            "experiment {:?} is not available in this build; use experiment = \"run\"",
            scenario.experiment
        )));
    }
    let mut thresholds = scenario.thresholds.clone();
    thresholds.extend(gate::threshold::parse_all(&args.thresholds, |i, e| Error::Scenario {
        location: format!("--threshold {:?}: col {}", args.thresholds[i], e.col),
        message: e.message,
    })?);
    let stop = shutdown::install().map_err(|e| Error::Runtime(format!("signal handlers: {e}")))?;
    let exe = topology::current_exe()?;
    let mut first_start = None;
    let mut cases = Vec::new();
    let mut any_failed = false;
    for index in 1..=args.repeat {
        let mut progress =
            report::progress::Progress::new(&scenario.phases, !args.no_progress && !args.quiet);
        let output = experiment::run::run(&scenario, &exe, &stop, &mut |row| progress.interval(row))?;
        progress.finish();

        let mut summary = Summary::of(&output);
        // Thresholds read the summary as summary.json holds it, so a dotted
        // path means the same thing here as in the file.
        let as_json = serde_json::to_value(&summary)
            .map_err(|e| Error::Runtime(format!("summary as JSON: {e}")))?;
        summary.thresholds = thresholds.iter().map(|t| t.evaluate(&as_json)).collect();
        any_failed |= summary.thresholds.iter().any(|r| !r.pass);
        let started_at = *first_start.get_or_insert(output.started_at);
        let dir = run_folder(&scenario.name, &started_at, args.out.as_deref(), index, args.repeat);
        let label = if args.repeat > 1 { format!("run-{index}") } else { String::new() };
        cases.extend(gate::threshold_cases(
            &if label.is_empty() { "contend.thresholds".to_string() } else { format!("contend.thresholds.{label}") },
            &summary.thresholds,
        ));
        let (written, errors) = report::write(&dir, &output, &summary);
        let mut stdout = std::io::stdout().lock();
        if args.quiet {
            if !label.is_empty() {
                let _ = write!(stdout, "{label}: ");
            }
            if summary.thresholds.is_empty() {
                let _ = writeln!(stdout, "no thresholds; report in {}", dir.display());
            }
        } else {
            let _ = report::console::write(&mut stdout, &summary);
        }
        let _ = gate::write_thresholds(&mut stdout, &summary.thresholds, args.quiet);
        if !written.is_empty() && !args.quiet {
            let _ = writeln!(stdout, "Report: {}", dir.display());
        }
        drop(stdout);
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
        if stop.is_stopped() {
            break;
        }
    }
    if let Some(path) = &args.junit {
        write_junit(path, "contend thresholds", &cases)?;
    }
    Ok(match Stop::signal() {
        Some(signal) if stop.is_stopped() => signal.exit_code(),
        _ if any_failed => gate::EXIT_GATE_FAILED,
        _ => 0,
    })
}

/// Run `index` of `repeat`'s folder: as before for one run; with
/// `--repeat N`, `<out>/run-<index>` or `reports/<name>-<time>-<index>`.
fn run_folder(
    name: &str,
    started_at: &chrono::DateTime<chrono::Utc>,
    out: Option<&Path>,
    index: u32,
    repeat: u32,
) -> PathBuf {
    match (repeat, out) {
        (1, _) => report::folder_for(name, started_at, out),
        (_, Some(out)) => out.join(format!("run-{index}")),
        (_, None) => {
            let base = report::folder_for(name, started_at, None);
            PathBuf::from(format!("{}-{index}", base.display()))
        }
    }
}

fn write_junit(path: &Path, suite: &str, cases: &[gate::junit::Case]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = std::io::BufWriter::new(file);
    gate::junit::write(&mut w, suite, cases)
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(path, e))
}

/// `contend compare`: baseline report folders against current ones. Returns
/// 0, or 3 when a metric regressed.
pub fn compare(args: &CompareArgs) -> Result<i32> {
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
    let read = |dirs: &[PathBuf]| dirs.iter().map(|d| gate::compare::read_run(d)).collect::<Result<Vec<_>>>();
    let (baseline, current) = (read(&baseline)?, read(&current)?);
    let cmp = gate::compare::compare(&baseline, &current, &args.tolerance());
    let _ = gate::compare::write_table(&mut std::io::stdout().lock(), &cmp, args.quiet);
    if let Some(path) = &args.junit {
        write_junit(path, "contend compare", &gate::compare::junit_cases(&cmp))?;
    }
    Ok(if cmp.regressed() { gate::EXIT_GATE_FAILED } else { 0 })
}

/// `contend report DIR`: prints a saved run's summary again.
pub fn report(dir: &std::path::Path) -> Result<i32> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Usage(format!(
            "{}: {e}; give a report folder that `contend run` wrote",
            path.display()
        ))
    })?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| Error::Scenario {
        location: path.display().to_string(),
        message: format!("not a contend summary: {e}"),
    })?;
    let mut stdout = std::io::stdout().lock();
    let _ = report::console::write(&mut stdout, &summary);
    let _ = gate::write_thresholds(&mut stdout, &summary.thresholds, false);
    Ok(0)
}
