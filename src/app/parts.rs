//! What the commands whose top-level report stands over several runs
//! (`[[variants]]`, the quota designs) share: each run's own report in its
//! subfolder, and the end (host checks, thresholds, top-level files, the
//! table, the exit code).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Preflight, conclude, evaluate_thresholds, wrote_summary};
use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::gate;
use crate::report::{self, summary::Summary};
use crate::shutdown::Stop;

/// Writes one of several runs' own report into `dir/folder` (its errors
/// into `errors`) and hands on its intervals for the top-level figures.
pub(super) fn write_part(
    dir: &Path,
    folder: &str,
    run: &crate::experiment::run::RunOutput,
    summary: &Summary,
    errors: &mut Vec<Error>,
) -> Vec<report::IntervalCsvRow> {
    let (_, part_errors) = report::write(&dir.join(folder), run, summary);
    errors.extend(part_errors);
    run.step
        .driver
        .intervals
        .iter()
        .map(report::IntervalCsvRow::from)
        .collect()
}

/// The end of a command whose top-level summary stands over several runs
/// (`[[variants]]`, the quota designs): host checks and thresholds into
/// `summary`, the top-level files by `write_files`, the table by
/// `write_table` and the warnings on stdout (unless `--quiet`), the exit
/// code.
#[allow(clippy::too_many_arguments)]
pub(super) fn conclude_parts(
    args: &RunArgs,
    stop: &Stop,
    dir: &Path,
    preflight: &Preflight,
    thresholds: &[gate::Threshold],
    mut summary: Summary,
    mut errors: Vec<Error>,
    write_files: impl FnOnce(&Summary) -> (Vec<PathBuf>, Vec<Error>),
    write_table: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<i32> {
    preflight.note(&mut summary);
    evaluate_thresholds(&mut summary, thresholds)?;
    let (written, top_errors) = write_files(&summary);
    errors.extend(top_errors);
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        let _ = write_table(&mut stdout);
        for warning in &summary.warnings {
            let _ = writeln!(stdout, "warning: {warning}");
        }
    }
    drop(stdout);
    let wrote = wrote_summary(dir, &written);
    conclude(args, stop, dir, &summary, errors, wrote)
}
