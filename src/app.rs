//! The commands: each takes parsed arguments, calls the library's parts in
//! order, and returns the process exit code. `main` maps errors.

use std::io::Write;

use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::report::{self, summary::Summary};
use crate::scenario;
use crate::shutdown::{self, Stop};
use crate::{experiment, topology};

/// `contend run`: run, write the report (also when interrupted), print the
/// summary. Returns 0, or 130/143 when a signal cut the run short.
pub fn run(args: &RunArgs) -> Result<i32> {
    let overrides = args.overrides();
    let scenario = match &args.scenario {
        Some(path) => scenario::load(path, &overrides)?,
        None => scenario::from_overrides(&overrides)?,
    };
    let stop = shutdown::install().map_err(|e| Error::Runtime(format!("signal handlers: {e}")))?;
    let exe = topology::current_exe()?;
    let mut progress = report::progress::Progress::new(&scenario.phases, !args.no_progress);
    let output = experiment::run::run(&scenario, &exe, &stop, &mut |row| progress.interval(row))?;
    progress.finish();

    let summary = Summary::of(&output);
    let dir = report::folder_for(&scenario.name, &output.started_at, args.out.as_deref());
    let (written, errors) = report::write(&dir, &output, &summary);
    let mut stdout = std::io::stdout().lock();
    let _ = report::console::write(&mut stdout, &summary);
    if !written.is_empty() {
        let _ = writeln!(stdout, "Report: {}", dir.display());
    }
    drop(stdout);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    Ok(match Stop::signal() {
        Some(signal) if stop.is_stopped() => signal.exit_code(),
        _ => 0,
    })
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
    let _ = report::console::write(&mut std::io::stdout().lock(), &summary);
    Ok(0)
}
