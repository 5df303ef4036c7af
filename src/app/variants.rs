//! `contend run` of a scenario with `[[variants]]`: the phases once per
//! variant on a fresh topology, each variant's report in `variant-NAME/`,
//! and at the top `summary.json` (the first variant's, with every
//! variant's row under `variants`, which the thresholds also read),
//! `variants.csv` and `variants.svg`/`.png`. Exit codes as `run`.

use super::parts::{conclude_parts, write_part};
use super::{Once, run_once};
use crate::cli::RunArgs;
use crate::driver::Load;
use crate::error::Result;
use crate::experiment;
use crate::report::variants::VariantRow;
use crate::report::{self, summary::Summary};
use crate::scenario;
use crate::shutdown::Stop;

pub(super) fn run(args: &RunArgs, scenario: &scenario::Scenario, load: &Load) -> Result<i32> {
    let Once {
        output: runs,
        thresholds,
        stop,
        preflight,
        dir,
        made: _made,
    } = run_once(
        args,
        scenario,
        "--repeat is not available with [[variants]] (each variant already runs once)",
        |bench, on_event| experiment::variants::run(bench, load, on_event),
    )?;
    let Some((_, first)) = runs.first() else {
        // Only an interrupt before the first variant ran lands here.
        return Ok(Stop::signal().map_or(0, |s| s.exit_code()));
    };
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut intervals = Vec::new();
    for (name, run) in &runs {
        let summary = Summary::of(run);
        let part = write_part(&dir, &format!("variant-{name}"), run, &summary, &mut errors);
        rows.push(VariantRow::of(name, &summary));
        intervals.push((name.clone(), part));
    }
    let mut summary = Summary::of(first);
    summary.name = scenario.name.clone();
    summary.variants = Some(rows.clone());
    summary.warnings = runs
        .iter()
        .flat_map(|(name, run)| run.warnings.iter().map(move |w| format!("{name}: {w}")))
        .collect();
    conclude_parts(
        args,
        &stop,
        &dir,
        &preflight,
        &thresholds,
        summary,
        errors,
        |summary| report::variants::write_files(&dir, summary, &intervals),
        |w| report::variants::write_table(w, &rows),
    )
}
