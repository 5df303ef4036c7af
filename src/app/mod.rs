//! The commands: each takes parsed arguments, calls the library's parts in
//! order, and returns the process exit code. `main` maps errors. `contend
//! logs` is [`logs`]'s.

pub mod logs;

use std::io::Write;
use std::path::{Path, PathBuf};

mod commands;
mod parts;
mod quota;
mod retries;
mod variants;

pub use commands::{compare, doctor, gateway, merge, report};

use crate::cli::RunArgs;
use crate::driver::Load;
use crate::error::{Error, Result};
use crate::experiment::step::Step;
use crate::experiment::{Bench, Event};
use crate::report::{self, summary::Summary};
use crate::scenario::{self, Experiment};
use crate::shutdown::{self, Stop};
use crate::{experiment, gate, preflight, topology};

/// `contend run`: run (`--repeat` times), evaluate the thresholds, write
/// each report (also when interrupted), print the summary and the verdicts.
/// Returns 0, 3 when a threshold failed, or 130/143 when a signal cut the
/// run short (the signal's code wins: an interrupted gate is no pass).
pub fn run(args: &RunArgs) -> Result<i32> {
    commands::check_junit(args.junit.as_deref())?;
    let overrides = args.overrides()?;
    let scenario = match &args.scenario {
        Some(path) => scenario::load(path, &overrides)?,
        None => scenario::from_overrides(&overrides)?,
    };
    let (scenario, compare) = retries::apply(args, scenario)?;
    if let (Some(each), false) = (overrides.duration, args.quiet) {
        // `--duration` replaces every phase's duration: say what that adds up to.
        let phases = scenario.phases();
        if phases.len() > 1 {
            eprintln!(
                "note: --duration {} applies to each of the {} phases: {} in all",
                contend_units::format_duration(each),
                phases.len(),
                contend_units::format_duration(phases.iter().map(|p| p.duration).sum())
            );
        }
    }
    if !args.quiet {
        note_shard(&scenario.client);
    }
    match &scenario.experiment {
        Experiment::Run(load) if !scenario.variants.is_empty() => {
            variants::run(args, &scenario, load)
        }
        Experiment::Run(load) => run_load(args, &scenario, load),
        Experiment::Sweep(spec) => sweep(args, &scenario, spec, compare),
        Experiment::FindLimit(spec) => find_limit(args, &scenario, spec, compare),
        Experiment::AbortAudit(spec) => abort_audit(args, &scenario, spec),
        Experiment::Quota(spec) => quota::run(args, &scenario, spec),
    }
}

/// Says which share of a sharded load this process offers, and when a
/// `--start-at` load begins.
fn note_shard(client: &scenario::ClientSpec) {
    let shard = client.shard;
    if shard.count > 1 {
        eprintln!(
            "note: shard {} of {} (0-based): this process offers 1/{} of the load; \
             `contend merge` the shards' report folders for the whole",
            shard.index, shard.count, shard.count
        );
    }
    if let Some(at) = client.start_at {
        let at_utc = chrono::DateTime::<chrono::Utc>::from(at);
        let wait = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        eprintln!(
            "note: the load begins at --start-at {} (in {:.1}s), once its connections are open",
            at_utc.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            wait.as_secs_f64()
        );
    }
}

/// `contend run` of `experiment = "run"`: the load (`--repeat` times),
/// each run's report written (also when interrupted), its summary and
/// verdicts printed.
fn run_load(args: &RunArgs, scenario: &scenario::Scenario, load: &Load) -> Result<i32> {
    let Prepared {
        thresholds,
        stop,
        exe,
        mut preflight,
        folders,
        made: _made,
        exporter,
    } = prepare(args, scenario)?;
    let bench = Bench {
        scenario,
        exe: &exe,
        stop: &stop,
        cgroup: None,
    };
    let mut cases = Vec::new();
    let mut any_failed = false;
    for (index, dir) in (1..=args.repeat).zip(folders) {
        preflight.limit_errors = crate::limits::LimitErrors::now();
        // The interval files are written as the run goes.
        let output = {
            let mut console = Console::new(args, exporter.as_ref(), dir.clone());
            let output = experiment::run::run(
                &bench,
                Step::measured(load.clone()),
                experiment::run::UPSTREAM_SETTLE,
                &mut |event| console.event(event),
            );
            console.finish();
            output?
        };
        let mut summary = Summary::of(&output);
        preflight.note(&mut summary);
        evaluate_thresholds(&mut summary, &thresholds)?;
        any_failed |= summary.thresholds.iter().any(|r| !r.pass);
        let label = if args.repeat > 1 {
            format!("run-{index}")
        } else {
            String::new()
        };
        cases.extend(gate::threshold_cases(
            &if label.is_empty() {
                "contend.thresholds".to_string()
            } else {
                format!("contend.thresholds.{label}")
            },
            &summary.thresholds,
        ));
        let (written, errors) = report::write(&dir, &output, &summary);
        let wrote = wrote_summary(&dir, &written);
        let mut stdout = std::io::stdout().lock();
        if args.quiet {
            if !label.is_empty() {
                let _ = write!(stdout, "{label}: ");
            }
            if summary.thresholds.is_empty() && wrote {
                let _ = writeln!(stdout, "no thresholds; report in {}", dir.display());
            }
        } else {
            let _ = report::console::write(&mut stdout, &summary);
        }
        let _ = gate::write_thresholds(&mut stdout, &summary.thresholds, args.quiet);
        if wrote && !args.quiet {
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

/// What every experiment shows as it goes, from its [`Event`]s: a progress
/// bar per step (unless `--no-progress` or `--quiet`), its notes (unless
/// `--quiet`), warnings always; and, when it knows where the run's folder
/// is, `intervals.csv` and `latency.hlog` written as the load goes.
struct Console {
    bars: bool,
    quiet: bool,
    /// `--metrics-addr`: fed each step and interval.
    exporter: Option<crate::exporter::Exporter>,
    progress: Option<report::progress::Progress>,
    live_folder: Option<PathBuf>,
    live: Option<report::LiveIntervals>,
}

impl Console {
    /// A console that writes the interval files into `live_folder`.
    fn new(
        args: &RunArgs,
        exporter: Option<&crate::exporter::Exporter>,
        live_folder: PathBuf,
    ) -> Console {
        Console {
            live_folder: Some(live_folder),
            ..Console::plain(args, exporter)
        }
    }

    /// A console with no interval files as the load goes.
    fn plain(args: &RunArgs, exporter: Option<&crate::exporter::Exporter>) -> Console {
        Console {
            bars: !args.no_progress && !args.quiet,
            quiet: args.quiet,
            exporter: exporter.cloned(),
            progress: None,
            live_folder: None,
            live: None,
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Step { started_at, load } => {
                self.end_bar();
                if let Some(exporter) = &self.exporter {
                    exporter.step(load.peak_rate_per_s());
                }
                self.progress = Some(report::progress::Progress::new(load, self.bars));
                if let Some(folder) = &self.live_folder {
                    self.live = Some(report::LiveIntervals::create(folder, &started_at));
                }
            }
            Event::Interval(row) => {
                if let Some(exporter) = &self.exporter {
                    exporter.interval(row);
                }
                if let Some(p) = self.progress.as_mut() {
                    p.interval(row);
                }
                if let Some(live) = self.live.as_mut() {
                    live.append(row);
                }
            }
            Event::Note(text) => {
                self.end_bar();
                if !self.quiet {
                    eprintln!("{text}");
                }
            }
            Event::Warning(text) => {
                self.end_bar();
                eprintln!("{text}");
            }
        }
    }

    fn end_bar(&mut self) {
        if let Some(mut done) = self.progress.take() {
            done.finish();
        }
    }

    /// Ends the last bar and closes the interval files.
    fn finish(&mut self) {
        self.end_bar();
        self.live = None;
    }
}

/// `contend run` of `experiment = "abort-audit"`: every mode in turn; each
/// mode's own report in `<dir>/<mode>/`; `<dir>/summary.json` (the first
/// mode's run, with the audit of all modes in `abort_audit`, which the
/// thresholds also read), `<dir>/accounting.csv`, `<dir>/requests.csv` and
/// the scatter `<dir>/accounting.svg`/`.png`. Exit codes as `run`.
fn abort_audit(
    args: &RunArgs,
    scenario: &scenario::Scenario,
    spec: &scenario::AbortAuditSpec,
) -> Result<i32> {
    let Once {
        output,
        thresholds,
        stop,
        preflight,
        dir,
        made: _made,
    } = run_once(
        args,
        scenario,
        "--repeat is not available for experiment = \"abort-audit\" (it already runs once per mode)",
        |bench, on_event| experiment::abort_audit::run(bench, spec, on_event),
    )?;
    let Some((_, first)) = output.runs.first() else {
        // Only an interrupt before the first mode ran lands here.
        return Ok(Stop::signal().map_or(0, |s| s.exit_code()));
    };
    let mut errors = Vec::new();
    for (mode, run) in &output.runs {
        let (_, mode_errors) = report::write(&dir.join(mode.as_str()), run, &Summary::of(run));
        errors.extend(mode_errors);
    }
    let mut summary = Summary::of(first);
    summary.name = scenario.name.clone();
    summary.abort_audit = Some(output.audit.clone());
    summary.warnings = output
        .runs
        .iter()
        .flat_map(|(mode, run)| {
            run.warnings
                .iter()
                .map(move |w| format!("{}: {w}", mode.as_str()))
        })
        .collect();
    preflight.note(&mut summary);
    evaluate_thresholds(&mut summary, &thresholds)?;
    let (written, top_errors) = report::abort_audit::write_files(&dir, &summary, &output.joined);
    errors.extend(top_errors);
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        let _ = report::abort_audit::write_table(&mut stdout, &output.audit);
        for warning in &summary.warnings {
            let _ = writeln!(stdout, "warning: {warning}");
        }
    }
    drop(stdout);
    let wrote = wrote_summary(&dir, &written);
    conclude(args, &stop, &dir, &summary, errors, wrote)
}

/// `contend run` of `experiment = "find-limit"`: per hardware class a
/// baseline with no limit, then the search over the gateway's concurrency
/// limit. One report folder: the usual files of the first class's step at
/// its limit (its summary holds every step and answer under `find_limit`,
/// which the thresholds also read), `steps.csv`, `max-connections.csv` and
/// `limit.svg`/`.png`; with `compare`, the search again without retries
/// (its answers in the summary, its run in `without-retries/`). Exit codes as `run`.
fn find_limit(
    args: &RunArgs,
    scenario: &scenario::Scenario,
    spec: &scenario::FindLimitSpec,
    compare: bool,
) -> Result<i32> {
    let Once {
        output: (output, without),
        thresholds,
        stop,
        preflight,
        dir,
        made: _made,
    } = run_once(
        args,
        scenario,
        "--repeat is not available for experiment = \"find-limit\" (set [find_limit] repeats instead)",
        |bench, on_event| match compare {
            true => experiment::retry_compare::find_limit(bench, spec, on_event),
            false => experiment::find_limit::run(bench, spec, on_event).map(|o| (o, None)),
        },
    )?;
    let Some(run) = &output.run else {
        // Only an interrupt before the first step ended lands here.
        return Ok(Stop::signal().map_or(0, |s| s.exit_code()));
    };
    let mut summary = Summary::of(run);
    preflight.note(&mut summary);
    summary.name = scenario.name.clone();
    summary.find_limit = Some(output.result.clone());
    evaluate_thresholds(&mut summary, &thresholds)?;
    let (mut written, mut errors) = report::write(&dir, run, &summary);
    for (w, e) in [
        report::find_limit::write_files(&dir, &output.result),
        retries::write_without(&dir, without.as_ref(), |s| {
            s.find_limit = output.result.without_retries.as_deref().cloned();
        }),
    ] {
        written.extend(w);
        errors.extend(e);
    }
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        let _ = report::find_limit::write_table(&mut stdout, &output.result);
        if let Some(rows) = report::retry_effect::rows(&summary) {
            let _ = report::retry_effect::write_console(&mut stdout, &rows);
        }
        for warning in &summary.warnings {
            let _ = writeln!(stdout, "warning: {warning}");
        }
    }
    drop(stdout);
    let wrote = wrote_summary(&dir, &written);
    conclude(args, &stop, &dir, &summary, errors, wrote)
}

/// Evaluates `thresholds` over the summary as summary.json holds it, so a
/// dotted path means the same thing here as in the file.
fn evaluate_thresholds(summary: &mut Summary, thresholds: &[gate::Threshold]) -> Result<()> {
    if thresholds.is_empty() {
        // Nothing to read: no copy of a summary that may hold many keys.
        return Ok(());
    }
    let as_json = serde_json::to_value(&*summary)
        .map_err(|e| Error::Runtime(format!("summary as JSON: {e}")))?;
    summary.thresholds = thresholds.iter().map(|t| t.evaluate(&as_json)).collect();
    Ok(())
}

/// The end every experiment but `run` shares: the thresholds' verdicts, the
/// report folder, the first artifact that failed to write, JUnit, and the
/// exit code (a signal's wins over a failed threshold).
fn conclude(
    args: &RunArgs,
    stop: &Stop,
    dir: &Path,
    summary: &Summary,
    errors: Vec<Error>,
    wrote: bool,
) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    let _ = gate::write_thresholds(&mut stdout, &summary.thresholds, args.quiet);
    if wrote && !args.quiet {
        let _ = writeln!(stdout, "Report: {}", dir.display());
    }
    drop(stdout);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    if let Some(path) = &args.junit {
        write_junit(
            path,
            "contend thresholds",
            &gate::threshold_cases("contend.thresholds", &summary.thresholds),
        )?;
    }
    let failed = summary.thresholds.iter().any(|r| !r.pass);
    Ok(match Stop::signal() {
        Some(signal) if stop.is_stopped() => signal.exit_code(),
        _ if failed => gate::EXIT_GATE_FAILED,
        _ => 0,
    })
}

/// What every experiment needs before it runs.
struct Prepared {
    /// The scenario's thresholds, then those given by `--threshold`.
    thresholds: Vec<gate::Threshold>,
    /// Turns true on the first Ctrl-C or SIGTERM.
    stop: Stop,
    /// The `contend` binary, which starts the embedded components.
    exe: PathBuf,
    /// The host checked against the run, for its summary.
    preflight: Preflight,
    /// The report folders, created and writable: one, or one per
    /// `--repeat` run, in order.
    folders: Vec<PathBuf>,
    /// Removes the folders made for the report that are still empty when
    /// the command ends (a component failed to start, say).
    made: MadeFolders,
    /// `--metrics-addr`: the run's progress served as it goes.
    exporter: Option<crate::exporter::Exporter>,
}

/// Report folders this command made; those still empty are removed when it
/// drops, so a run that never got to write leaves no empty folder behind.
struct MadeFolders(Vec<PathBuf>);

impl Drop for MadeFolders {
    fn drop(&mut self) {
        // `run-N` before the `--out` folder that holds them.
        for dir in self.0.iter().rev() {
            // Fails, as it should, unless the folder is empty.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The preflight checks of a run and the limit-error counters at its start.
struct Preflight {
    checks: Vec<preflight::Check>,
    limit_errors: crate::limits::LimitErrors,
}

impl Preflight {
    /// Puts the checks in `summary`, and warnings for each WARN and for the
    /// connects a limit refused during the run.
    fn note(&self, summary: &mut Summary) {
        summary.preflight = self.checks.clone();
        summary.warnings.extend(preflight::warnings(&self.checks));
        summary
            .warnings
            .extend(crate::limits::LimitErrors::since(self.limit_errors).warnings());
    }
}

/// Checks the host against `scenario`'s load: refuses a run whose
/// connections cannot fit in the open-file limit, prints each WARN to stderr
/// (unless `quiet`), and keeps the checks for the summary.
fn check_host(scenario: &scenario::Scenario, quiet: bool) -> Result<Preflight> {
    let readings = preflight::Readings::read();
    let load = preflight::Load::of(scenario);
    preflight::refuse_short_fds(&readings, &load)?;
    let checks = preflight::checks(&readings, &load);
    if !quiet {
        let _ = preflight::write(&mut std::io::stderr().lock(), &checks, true);
    }
    if scenario.client.tls.insecure {
        // Said before the run, and again in the summary's warnings.
        eprintln!(
            "WARNING: tls.insecure (--insecure): server certificates are NOT checked; any server \
             can answer for the target. Use it only against a test gateway you own."
        );
    }
    Ok(Preflight {
        checks,
        limit_errors: crate::limits::LimitErrors::now(),
    })
}

/// What an experiment that runs once into one report folder ran with, and
/// what it gave (abort-audit, find-limit, `[[variants]]`).
struct Once<T> {
    output: T,
    thresholds: Vec<gate::Threshold>,
    stop: Stop,
    preflight: Preflight,
    dir: PathBuf,
    /// Removes the folder if it is still empty when the command ends.
    made: MadeFolders,
}

/// Refuses `--repeat` with `repeat_refusal`, prepares the run (thresholds,
/// host checks, the one report folder, signals), then runs `experiment`
/// with the console following its events.
fn run_once<T>(
    args: &RunArgs,
    scenario: &scenario::Scenario,
    repeat_refusal: &str,
    experiment: impl FnOnce(&Bench, &mut dyn FnMut(Event)) -> Result<T>,
) -> Result<Once<T>> {
    refuse_repeat(args, repeat_refusal)?;
    let Prepared {
        thresholds,
        stop,
        exe,
        preflight,
        folders,
        made,
        exporter,
    } = prepare(args, scenario)?;
    let dir = one_folder(folders)?;
    let bench = Bench {
        scenario,
        exe: &exe,
        stop: &stop,
        cgroup: None,
    };
    let mut console = Console::plain(args, exporter.as_ref());
    let output = experiment(&bench, &mut |event| console.event(event));
    console.finish();
    Ok(Once {
        output: output?,
        thresholds,
        stop,
        preflight,
        dir,
        made,
    })
}

fn prepare(args: &RunArgs, scenario: &scenario::Scenario) -> Result<Prepared> {
    let flag_location =
        |i: usize, col: usize| format!("--threshold {:?}: col {col}", args.thresholds[i]);
    let flags = gate::parse_all(&args.thresholds, |i, e| Error::Scenario {
        location: flag_location(i, e.col),
        message: e.message,
    })?;
    check_thresholds(scenario, &flags, flag_location)?;
    let mut thresholds: Vec<gate::Threshold> = scenario
        .thresholds
        .iter()
        .map(|t| t.threshold.clone())
        .collect();
    thresholds.extend(flags);
    let preflight = check_host(scenario, args.quiet)?;
    let exporter = match &args.metrics_addr {
        Some(addr) => {
            let exporter = crate::exporter::Exporter::start(addr)?;
            if !args.quiet {
                eprintln!(
                    "progress in Prometheus text at http://{}/metrics",
                    exporter.addr()
                );
            }
            Some(exporter)
        }
        None => None,
    };
    let (folders, made) = report_folders(args, &scenario.name)?;
    let stop = shutdown::install().map_err(|e| Error::Runtime(format!("signal handlers: {e}")))?;
    Ok(Prepared {
        thresholds,
        stop,
        exe: topology::current_exe()?,
        preflight,
        folders,
        made,
        exporter,
    })
}

/// Refuses, before anything starts, a threshold that reads a value no
/// summary of this run can hold (an unknown metric, a key the scenario
/// does not have, a part of summary.json this experiment never fills):
/// a typo is bad input (exit 2), not a failed threshold at the end.
fn check_thresholds(
    scenario: &scenario::Scenario,
    flags: &[gate::Threshold],
    flag_location: impl Fn(usize, usize) -> String,
) -> Result<()> {
    if scenario.thresholds.is_empty() && flags.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = scenario.keys.iter().map(|k| k.name.as_str()).collect();
    let paths = report::summary::number_paths(scenario);
    // The flags' location quotes the expression; the file's does not.
    let refused = |location: String, message: String| Error::Scenario {
        location,
        message: format!(
            "{message} (experiment = \"{}\")",
            scenario.experiment.kind().as_str()
        ),
    };
    for t in &scenario.thresholds {
        t.threshold.check(&keys, &paths).map_err(|e| {
            refused(
                t.location(e.col),
                format!("threshold `{}`: {}", t.threshold.expr, e.message),
            )
        })?;
    }
    for (i, t) in flags.iter().enumerate() {
        t.check(&keys, &paths)
            .map_err(|e| refused(flag_location(i, e.col), e.message))?;
    }
    Ok(())
}

/// `--repeat` is for `run`; the other experiments repeat in their own way.
fn refuse_repeat(args: &RunArgs, message: &str) -> Result<()> {
    if args.repeat > 1 {
        return Err(Error::Usage(message.to_string()));
    }
    Ok(())
}

/// The report folders of this command, made ready before any component or
/// load starts (see [`report::folder::prepare`]), so a folder that cannot
/// hold the report fails now, not after the load: `--out DIR` (refused
/// when it holds an earlier run, unless `--force`), or with `--repeat N`
/// its `run-1..N`; by default `reports/<name>-<time>` (or `-1..N`), named
/// from the command's start. A default folder is never an earlier run's:
/// if one started in the same second, the name takes a suffix (`.2`).
fn report_folders(args: &RunArgs, name: &str) -> Result<(Vec<PathBuf>, MadeFolders)> {
    let started_at = chrono::Utc::now();
    let runs = |base: &Path, chosen: bool| -> Vec<PathBuf> {
        match (args.repeat, chosen) {
            (1, _) => vec![base.to_path_buf()],
            (n, true) => (1..=n).map(|i| base.join(format!("run-{i}"))).collect(),
            (n, false) => (1..=n)
                .map(|i| PathBuf::from(format!("{}-{i}", base.display())))
                .collect(),
        }
    };
    let mut made = MadeFolders(Vec::new());
    let mut prepare = |dir: &Path, force: bool, chosen: bool| -> Result<()> {
        if report::folder::prepare(dir, force, chosen)? {
            made.0.push(dir.to_path_buf());
        }
        Ok(())
    };
    if let Some(out) = &args.out {
        prepare(out, args.force, true)?;
        let folders = runs(out, true);
        for dir in folders.iter().filter(|dir| *dir != out) {
            prepare(dir, false, true)?;
        }
        return Ok((folders, made));
    }
    let base = report::folder_for(name, &started_at, None);
    let taken = |dir: &PathBuf| dir.exists() && !report::folder::earlier_run(dir).is_empty();
    let folders = (1..=MAX_SUFFIX)
        .map(|n| match n {
            1 => runs(&base, false),
            n => runs(&PathBuf::from(format!("{}.{n}", base.display())), false),
        })
        .find(|folders| !folders.iter().any(taken))
        .unwrap_or_else(|| runs(&base, false));
    for dir in &folders {
        prepare(dir, args.force, false)?;
    }
    Ok((folders, made))
}

/// Most suffixes tried for a default report folder taken in the same second.
const MAX_SUFFIX: u32 = 100;

/// The one report folder of an experiment that is not repeated.
fn one_folder(folders: Vec<PathBuf>) -> Result<PathBuf> {
    folders
        .into_iter()
        .next()
        .ok_or_else(|| Error::Runtime("no report folder".to_string()))
}

/// True when `written` holds `dir`'s summary.json: only then is there a
/// report to point at.
fn wrote_summary(dir: &Path, written: &[PathBuf]) -> bool {
    written.contains(&dir.join("summary.json"))
}

/// Writes JUnit XML to `path`, whole or not at all.
fn write_junit(path: &Path, suite: &str, cases: &[gate::junit::Case]) -> Result<()> {
    report::write_file(path, &|w| gate::junit::write(w, suite, cases))
}

/// `contend run` of `experiment = "sweep"`: the open-loop rate steps, then
/// the closed-loop concurrency steps; one report folder with the usual
/// files (the steps together), `steps.csv`, `concurrency.csv`, the sweep's
/// plots and `report.html`; the thresholds read the summary, which holds
/// the sweep's rows and analyses under `sweep`; with `compare`, the sweep
/// again without retries (its rows under `sweep.without_retries`, its run
/// in `without-retries/`). Exit codes as `run`.
fn sweep(
    args: &RunArgs,
    scenario: &scenario::Scenario,
    spec: &scenario::SweepSpec,
    compare: bool,
) -> Result<i32> {
    refuse_repeat(args, "--repeat is not available for experiment = \"sweep\"")?;
    let Prepared {
        thresholds,
        stop,
        exe,
        preflight,
        folders,
        made: _made,
        exporter,
    } = prepare(args, scenario)?;
    let dir = one_folder(folders)?;
    let bench = Bench {
        scenario,
        exe: &exe,
        stop: &stop,
        cgroup: None,
    };
    let mut console = Console::plain(args, exporter.as_ref());
    let mut on_event = |event: Event| console.event(event);
    let output = match compare {
        true => experiment::retry_compare::sweep(&bench, spec, &mut on_event),
        false => experiment::sweep::run(&bench, spec, &mut on_event).map(|o| (o, None)),
    };
    console.finish();
    let (output, without) = output?;
    let run = &output.run;
    let mut summary = Summary::of(run);
    preflight.note(&mut summary);
    let warmup_s = spec.warmup.as_secs_f64();
    summary.phase_starts_s = output
        .result
        .steps
        .iter()
        .flat_map(|s| [s.start_s, (s.start_s + warmup_s * 1000.0).round() / 1000.0])
        .collect();
    summary.sweep = Some(output.result.clone());
    evaluate_thresholds(&mut summary, &thresholds)?;
    let (written, mut errors) = report::write(&dir, run, &summary);
    let without_sweep = output.result.without_retries.as_deref().cloned();
    errors.extend(retries::write_without(&dir, without.as_ref(), |s| s.sweep = without_sweep).1);
    let wrote = wrote_summary(&dir, &written);
    let mut stdout = std::io::stdout().lock();
    if args.quiet {
        if summary.thresholds.is_empty() && wrote {
            let _ = writeln!(stdout, "no thresholds; report in {}", dir.display());
        }
    } else {
        let _ = report::console::write_sweep(&mut stdout, &output.result);
        if let Some(rows) = report::retry_effect::rows(&summary) {
            let _ = report::retry_effect::write_console(&mut stdout, &rows);
        }
        for warning in &summary.warnings {
            let _ = writeln!(stdout, "warning: {warning}");
        }
    }
    drop(stdout);
    conclude(args, &stop, &dir, &summary, errors, wrote)
}
