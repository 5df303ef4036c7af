//! `contend logs`: an access log from anywhere into a report folder.
//!
//! Takes the parsed [`LogsArgs`]; chooses the format (`--format`, the
//! format file beside the log, or the preset its first lines are in),
//! opens every file before reading any (a missing one is exit 2), makes
//! the report folder ready, streams the log into a tally
//! ([`crate::logs`]), makes the report ([`report::logs`]) and prints it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::LogsArgs;
use crate::error::{Error, Result};
use crate::logs::format::{self, Format};
use crate::logs::tally::Options;
use crate::logs::{self as access, Input};
use crate::report;

/// Bytes of the first file read to tell its format.
const SAMPLE_BYTES: u64 = 64 * 1024;

/// Seed of the scatter's sample: the same log gives the same report.
const SAMPLE_SEED: u64 = 1;

/// Runs `contend logs`. Returns 0; a log none of whose lines is in the
/// format is bad input (exit 2), after its report (with the malformed
/// lines) is written.
pub fn run(args: &LogsArgs) -> Result<i32> {
    let inputs: Vec<Input> = args.files.iter().map(|f| Input::from_arg(f)).collect();
    if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
        return Err(Error::Usage(
            "- (stdin) is given more than once: it can be read once".into(),
        ));
    }
    if args.interval.as_millis() < 1 {
        return Err(Error::Usage(format!(
            "--interval {:?} is shorter than the logs' millisecond: give 1ms or more",
            args.interval
        )));
    }
    let (format, source) = choose_format(args, &inputs)?;
    let readers = access::open(&inputs)?;
    let dir = folder(args)?;
    let options = Options {
        interval_us: args.interval.as_micros() as u64,
        slow_us: args.slow.as_micros() as u64,
        seed: SAMPLE_SEED,
    };
    let read = access::read(&inputs, readers, &format, options);
    let origin = report::logs::Origin {
        inputs: &inputs,
        lines_per_input: &read.lines_per_input,
        format: &format,
        format_source: &source,
        problems: &read.problems,
    };
    let built = report::logs::build(&read.tally, &origin);
    let (written, errors) = report::logs::write(&dir, &built);
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        let _ = report::logs::page::write_console(&mut stdout, &built.summary);
    }
    if written.contains(&dir.join("summary.json")) {
        let _ = writeln!(stdout, "Report: {}", dir.display());
    }
    drop(stdout);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    let tally = &read.tally;
    if tally.lines == 0 {
        return Err(Error::Usage(
            "the log is empty (no line in any file given): nothing was read; give the access log \
             that has the requests"
                .into(),
        ));
    }
    if tally.parsed() == 0 {
        let example = tally
            .malformed_samples
            .first()
            .map(|m| format!(" (line {} of {}: {})", m.line, m.file, m.reason))
            .unwrap_or_default();
        return Err(Error::Usage(format!(
            "none of the {} lines is in the format {:?}{example}: give --format with the log_format the log was written in",
            tally.lines, format.text
        )));
    }
    Ok(0)
}

/// The format and where it came from: `--format`, the file beside the
/// first log, or the preset most of its first lines are in.
fn choose_format(args: &LogsArgs, inputs: &[Input]) -> Result<(Format, String)> {
    let key = args.key.as_deref();
    if let Some(text) = &args.format {
        return Ok((format::compile(text, key)?, "--format".into()));
    }
    let Some(Input::File(first)) = inputs.first() else {
        return Err(Error::Usage(
            "- (stdin) has no format file beside it: give --format (a preset, nginx's log_format or HAProxy's log-format)".into(),
        ));
    };
    if let Some(text) = access::format_beside(first) {
        let beside = format!("{}.format", first.display());
        let format = format::compile(&text, key).map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!("{beside}: {m}")),
            other => other,
        })?;
        return Ok((format, beside));
    }
    let sample = access::sample(first, SAMPLE_BYTES).map_err(|e| {
        Error::Usage(format!(
            "{}: {e}: give an access log to read (plain, .gz, or - for stdin)",
            first.display()
        ))
    })?;
    if sample.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Usage(format!(
            "{}: the log is empty, so there is no line to tell its format from: give a log with \
             lines in it (put such a file first), or --format",
            first.display()
        )));
    }
    match access::detect(&sample, key) {
        Some((format, read, total)) => Ok((
            format,
            format!("detected: {read} of the first {total} lines"),
        )),
        None => Err(Error::Usage(format!(
            "{}: no preset ({}) reads its first lines, and no {}.format is beside it: give --format with the log_format it was written in",
            first.display(),
            format::preset_names(),
            first.display()
        ))),
    }
}

/// The report folder, made ready (see [`report::folder::prepare`]):
/// `--out`, or `reports/logs-<time>` (with a suffix when one of that
/// second is taken).
fn folder(args: &LogsArgs) -> Result<PathBuf> {
    if let Some(out) = &args.out {
        report::folder::prepare(out, args.force, true)?;
        return Ok(out.clone());
    }
    let base = report::folder_for("logs", &chrono::Utc::now(), None);
    let dir = (1..=100)
        .map(|n| match n {
            1 => base.clone(),
            n => PathBuf::from(format!("{}.{n}", base.display())),
        })
        .find(|d| report::folder::earlier_run(d).is_empty())
        .unwrap_or(base);
    report::folder::prepare(Path::new(&dir), args.force, false)?;
    Ok(dir)
}

/// A saved `contend logs` report's summary, when `dir` holds one (its
/// `summary.json` says `"kind": "access_log"`), for `contend report DIR`.
pub fn saved(dir: &Path) -> Option<report::logs::LogSummary> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let summary: report::logs::LogSummary = serde_json::from_str(&text).ok()?;
    (summary.kind == report::logs::KIND).then_some(summary)
}
