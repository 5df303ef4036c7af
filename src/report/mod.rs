//! Reports: the files of one run's report folder and the console summary.
//!
//! Takes finished results (a [`RunOutput`] and its [`Summary`]) and a
//! folder; writes `summary.json`, `intervals.csv`, `components.csv`
//! ([`components`]: the system under test per interval), `latency.hgrm`,
//! `latency.hlog`, the gateway's `access.log` and its `access.log.format`,
//! a sweep's `steps.csv` and `concurrency.csv` (a
//! find-limit's own files in [`find_limit`]), the plots
//! ([`plot`], SVG and PNG) and `report.html` ([`html`]). Each artifact is
//! written on its own, whole or not at all (under a temporary name, then
//! renamed: [`write_file`]): one that fails is reported, never costs the
//! others and never leaves a truncated file. [`folder`] makes the folder
//! ready before the run. [`logs`] is `contend logs`'s folder for an
//! access log. [`quota`] and [`quota_page`] are the quota experiment's
//! answers and its top-level files. [`LiveIntervals`] writes `intervals.csv` and
//! `latency.hlog` as the run goes, so a crash or `kill -9` still leaves
//! them up to the last closed interval; the end-of-run write replaces them
//! with the same content. Nothing here measures.

pub mod abort_audit;
pub mod addresses;
pub mod capacity;
pub mod components;
pub mod connections;
pub mod console;
pub mod find_limit;
pub mod folder;
pub mod hdr;
pub mod histograms;
pub mod html;
pub mod key_space;
pub mod logs;
pub mod merge;
pub mod plot;
pub mod progress;
pub mod quota;
pub mod quota_page;
pub mod retries;
pub mod retry_effect;
pub mod summary;
pub mod variants;
pub mod variants_page;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::experiment::run::RunOutput;
use crate::outcome::Class;
use crate::record::IntervalRow;
use summary::Summary;

/// The folder a run's report goes to: `DIR/<name>-<YYYYmmdd-HHMMSS>/`
/// under `reports/` by default, or exactly `out` when given.
pub fn folder_for(
    name: &str,
    started_at: &chrono::DateTime<chrono::Utc>,
    out: Option<&Path>,
) -> PathBuf {
    match out {
        Some(dir) => dir.to_path_buf(),
        None => {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            Path::new("reports").join(format!("{safe}-{}", started_at.format("%Y%m%d-%H%M%S")))
        }
    }
}

/// What a report folder is written from: a run's, or a merge of shards'.
pub struct Parts<'a> {
    /// The summary (thresholds already evaluated).
    pub summary: &'a Summary,
    /// When the load began.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// One row per interval.
    pub intervals: &'a [IntervalRow],
    /// Every histogram of the run, whole.
    pub histograms: &'a histograms::Histograms,
    /// The components' samples per interval (none for a merge: each
    /// shard's components are its own).
    pub components: &'a [crate::topology::telemetry::SourceSeries],
}

/// Writes every artifact of `run` into `dir` (created if needed). Returns
/// the files written; errors of single artifacts are collected, not fatal.
pub fn write(dir: &Path, run: &RunOutput, summary: &Summary) -> (Vec<PathBuf>, Vec<Error>) {
    let histograms = histograms::Histograms::of(&run.step.driver.totals, &run.step.key_names);
    let (mut written, mut errors) = write_parts(
        dir,
        &Parts {
            summary,
            started_at: run.step.started_at,
            intervals: &run.step.driver.intervals,
            histograms: &histograms,
            components: &run.step.telemetry.series,
        },
    );
    let (w, e) = write_access_log(dir, run);
    written.extend(w);
    errors.extend(e);
    (written, errors)
}

/// Writes every artifact of `parts` into `dir` (created if needed).
pub fn write_parts(dir: &Path, parts: &Parts) -> (Vec<PathBuf>, Vec<Error>) {
    let summary = parts.summary;
    if let Err(e) = fs::create_dir_all(dir) {
        return (Vec::new(), vec![Error::io(dir, e)]);
    }
    let empty = crate::record::new_histogram();
    let latency = parts.histograms.get("latency").unwrap_or(&empty);
    let mut written = Written::default();
    written.summary_json(dir, summary);
    let artifacts: [(&str, &WriteFn); 4] = [
        ("intervals.csv", &|w| {
            write_intervals_csv(w, parts.intervals)
        }),
        ("latency.hgrm", &|w| hdr::write_hgrm(w, latency)),
        ("latency.hlog", &|w| {
            hdr::write_hlog(w, &parts.started_at, parts.intervals)
        }),
        (histograms::FILE, &|w| parts.histograms.write(w)),
    ];
    for (name, write_one) in artifacts {
        written.file(dir.join(name), write_one);
    }
    if let Some(capacity) = capacity::Capacity::of(summary) {
        written.json(dir.join("capacity.json"), &capacity);
    }
    if let Some(sweep) = &summary.sweep {
        written.extend(write_sweep_tables(dir, sweep));
    }
    written.extend(retry_effect::write_files(dir, summary));
    if !parts.components.is_empty() {
        written.file(dir.join("components.csv"), &|w| {
            components::write_csv(w, parts.components)
        });
    }
    let data = plot::ReportData::of(summary, parts.intervals, latency, parts.components);
    written.extend(write_plots_and_html(dir, &data));
    written.into_parts()
}

/// The gateway's raw access log as `access.log` (up to
/// [`gateway_log::MAX_KEPT_LOG_BYTES`](crate::analysis::gateway_log::MAX_KEPT_LOG_BYTES)),
/// and beside it `access.log.format`, the format it was written in as
/// `contend logs --format` takes it (which `contend logs` finds there by
/// itself). Nothing when the run started no gateway.
pub fn write_access_log(dir: &Path, run: &RunOutput) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = Written::default();
    let Some(raw) = &run.gateway_log else {
        return written.into_parts();
    };
    written.file(dir.join(ACCESS_LOG), &|w| raw.copy_to(w));
    if let Some(format) = &raw.format {
        written.file(dir.join(ACCESS_LOG_FORMAT), &|w| {
            writeln!(
                w,
                "# The format access.log was written in, as `contend logs --format` takes it\n\
                 # (nginx's log_format language; HAProxy's log-format after `haproxy:`).\n\
                 # `contend logs access.log` reads it from here.\n{format}"
            )
        });
    }
    written.into_parts()
}

/// A run's copy of its gateway's access log.
pub const ACCESS_LOG: &str = "access.log";
/// The format of [`ACCESS_LOG`], beside it.
pub const ACCESS_LOG_FORMAT: &str = "access.log.format";

/// Writes the plots (SVG and PNG) and `report.html` of `data` into `dir`:
/// after a run, and again from saved data by `contend report DIR`.
pub fn write_plots_and_html(dir: &Path, data: &plot::ReportData) -> (Vec<PathBuf>, Vec<Error>) {
    let (plots, errors) = plot::write_all(dir, data);
    let files = plots
        .iter()
        .flat_map(|name| plot::files(dir, name))
        .collect();
    let mut written = Written::default();
    written.extend((files, errors));
    written.file(dir.join("report.html"), &|w| {
        html::write(w, dir, data, &plots)
    });
    written.into_parts()
}

/// `steps.csv` (open-loop steps) and `concurrency.csv` (closed-loop steps)
/// of a sweep, one row per step.
pub fn write_sweep_tables(
    dir: &Path,
    sweep: &crate::experiment::sweep::SweepResult,
) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = Written::default();
    let tables: [(&str, &WriteFn); 2] = [
        ("steps.csv", &|w| {
            let mut csv = csv::Writer::from_writer(w);
            for row in &sweep.steps {
                csv.serialize(row)?;
            }
            csv.flush()
        }),
        ("concurrency.csv", &|w| {
            let mut csv = csv::Writer::from_writer(w);
            for row in &sweep.concurrency_steps {
                csv.serialize(row)?;
            }
            csv.flush()
        }),
    ];
    for (name, write_one) in tables {
        if name == "concurrency.csv" && sweep.concurrency_steps.is_empty() {
            continue;
        }
        written.file(dir.join(name), write_one);
    }
    written.into_parts()
}

/// Writes one artifact's bytes to a writer.
type WriteFn<'a> = dyn Fn(&mut dyn Write) -> std::io::Result<()> + 'a;

/// The files a writer of several wrote into a report folder, and the
/// errors of those that failed (each file whole or not at all).
#[derive(Default)]
pub(crate) struct Written {
    files: Vec<PathBuf>,
    errors: Vec<Error>,
}

impl Written {
    /// Writes `body` to `path` ([`write_file`]) and keeps the outcome.
    pub(crate) fn file(&mut self, path: PathBuf, body: &WriteFn) {
        let result = write_file(&path, body);
        self.keep(path, result);
    }

    /// Writes `value` as pretty JSON to `path`.
    pub(crate) fn json(&mut self, path: PathBuf, value: &impl serde::Serialize) {
        self.file(path, &|w| {
            serde_json::to_writer_pretty(&mut *w, value)?;
            writeln!(w)
        });
    }

    /// Writes `summary` as `dir/summary.json`.
    pub(crate) fn summary_json(&mut self, dir: &Path, summary: &impl serde::Serialize) {
        self.json(dir.join("summary.json"), summary);
    }

    /// Keeps the outcome of writing `path` some other way (a plot).
    pub(crate) fn keep(&mut self, path: PathBuf, result: Result<()>) {
        match result {
            Ok(()) => self.files.push(path),
            Err(e) => self.errors.push(e),
        }
    }

    /// Adds what another writer wrote and failed to write.
    pub(crate) fn extend(&mut self, (files, errors): (Vec<PathBuf>, Vec<Error>)) {
        self.files.extend(files);
        self.errors.extend(errors);
    }

    /// The files written and the errors, as the report writers hand them on.
    pub(crate) fn into_parts(self) -> (Vec<PathBuf>, Vec<Error>) {
        (self.files, self.errors)
    }
}

/// Writes the file at `path` whole or not at all: `body` goes to a
/// temporary file beside it, which replaces `path` only once written,
/// flushed and synced. A write that fails (a full disk) leaves no
/// truncated file under the real name: the earlier file, if any, or none.
pub fn write_file(path: &Path, body: &WriteFn) -> Result<()> {
    replace_file(path, &|temp| {
        let mut w = std::io::BufWriter::new(fs::File::create(temp)?);
        body(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        // A device or a pipe written in place has nothing to sync.
        if file.metadata()?.is_file() {
            file.sync_all()?;
        }
        Ok(())
    })
}

/// Makes the file at `path` whole or not at all: `make` writes the file
/// at the path it is given (a temporary name in the same folder, ending in
/// the same file name, so its extension still says its format), which is
/// then renamed over `path`. A device or a pipe (`--junit /dev/stdout`) is
/// written in place, and a symbolic link's target is what is replaced.
pub fn replace_file(path: &Path, make: &dyn Fn(&Path) -> std::io::Result<()>) -> Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).unwrap_or(path.into()),
        _ => path.to_path_buf(),
    };
    if fs::metadata(&target).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return make(&target).map_err(|e| Error::io(path, e));
    }
    let temp = temp_path(&target);
    match make(&temp).and_then(|()| fs::rename(&temp, &target)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(Error::io(path, e))
        }
    }
}

/// What a temporary file's name starts with: `.contend-tmp-<pid>-<name>`
/// (hidden, and this process's own).
pub const TEMP_PREFIX: &str = ".contend-tmp-";

/// The temporary name [`replace_file`] writes `path` under first.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    path.with_file_name(format!("{TEMP_PREFIX}{}-{name}", std::process::id()))
}

/// One row of `intervals.csv`: written by every run, read back by
/// `contend report` (plots) and `contend compare` (per-interval samples).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IntervalCsvRow {
    /// Interval number from the run start.
    pub index: u64,
    /// Start, s from the run start.
    pub start_s: f64,
    /// Length, s (the last may be shorter).
    pub duration_s: f64,
    /// Arrivals dispatched.
    pub offered: u64,
    /// Requests sent.
    pub sent: u64,
    /// 2xx responses.
    #[serde(rename = "2xx")]
    pub ok_2xx: u64,
    /// 429 responses.
    #[serde(rename = "429")]
    pub s429: u64,
    /// 503 responses.
    #[serde(rename = "503")]
    pub s503: u64,
    /// 504 responses.
    #[serde(rename = "504")]
    pub s504: u64,
    /// Other statuses.
    pub other_status: u64,
    /// Client timeouts.
    pub client_timeout: u64,
    /// Connect errors.
    pub connect_error: u64,
    /// I/O errors.
    pub io_error: u64,
    /// Arrivals not sent (connection cap).
    pub not_sent: u64,
    /// Latency percentiles of completions in the interval, us.
    pub p50_us: u64,
    /// 90th percentile, us.
    pub p90_us: u64,
    /// 99th percentile, us.
    pub p99_us: u64,
    /// 99.9th percentile, us.
    pub p999_us: u64,
    /// Maximum, us.
    pub max_us: u64,
    /// Schedule lag p99 of sends in the interval, us.
    pub lag_p99_us: u64,
    /// Requests in flight at the interval's end.
    pub in_flight: u64,
    /// Driver CPU in the interval, in cores.
    pub driver_cpu_cores: f64,
    /// Failed TLS handshakes (after the other columns: files written
    /// before it read as 0).
    #[serde(default)]
    pub tls_error: u64,
    /// Connections opened.
    #[serde(default)]
    pub new_connections: u64,
    /// TCP connect time p99 of the connections opened, us.
    #[serde(default)]
    pub connect_p99_us: u64,
    /// TLS handshake time p99 of the connections opened, us.
    #[serde(default)]
    pub tls_handshake_p99_us: u64,
    /// Attempts dispatched: first attempts and retries.
    #[serde(default)]
    pub attempts: u64,
    /// Retries dispatched.
    #[serde(default)]
    pub retries: u64,
    /// Attempts per arrival offered (files written before retries read 0).
    #[serde(default)]
    pub amplification: f64,
    /// 2xx answers per second.
    #[serde(default)]
    pub goodput_per_s: f64,
    /// Widest pacing window a driver thread used, us: above the configured
    /// window, the pacer sent arrivals in batches that wide (files written
    /// before it read 0).
    #[serde(default)]
    pub pacing_window_us: u64,
}

impl IntervalCsvRow {
    /// Every outcome that completed in the interval.
    pub fn outcomes(&self) -> u64 {
        self.ok_2xx
            + self.s429
            + self.s503
            + self.s504
            + self.other_status
            + self.client_timeout
            + self.connect_error
            + self.tls_error
            + self.io_error
            + self.not_sent
    }
}

impl From<&IntervalRow> for IntervalCsvRow {
    fn from(r: &IntervalRow) -> Self {
        let c = |class: Class| r.by_class[class.index()];
        IntervalCsvRow {
            index: r.index,
            start_s: r.start_s,
            duration_s: r.duration_s,
            offered: r.offered,
            sent: r.sent,
            ok_2xx: c(Class::Success),
            s429: c(Class::TooMany),
            s503: c(Class::Unavailable),
            s504: c(Class::GatewayTimeout),
            other_status: c(Class::OtherStatus),
            client_timeout: c(Class::ClientTimeout),
            connect_error: c(Class::ConnectError),
            io_error: c(Class::IoError),
            not_sent: c(Class::NotSent),
            p50_us: r.p50_us,
            p90_us: r.p90_us,
            p99_us: r.p99_us,
            p999_us: r.p999_us,
            max_us: r.max_us,
            lag_p99_us: r.lag_p99_us,
            in_flight: r.in_flight,
            driver_cpu_cores: (r.driver_cpu_cores * 1000.0).round() / 1000.0,
            tls_error: c(Class::TlsError),
            new_connections: r.new_connections,
            connect_p99_us: r.connect_p99_us,
            tls_handshake_p99_us: r.tls_handshake_p99_us,
            attempts: r.attempts,
            retries: r.retries,
            amplification: (r.amplification * 1000.0).round() / 1000.0,
            goodput_per_s: (r.goodput_per_s * 10.0).round() / 10.0,
            pacing_window_us: r.pacing_window_us,
        }
    }
}

/// Reads a report folder's `intervals.csv`; the error says what is wrong.
pub fn read_intervals_csv(path: &Path) -> std::result::Result<Vec<IntervalCsvRow>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    reader
        .deserialize()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("not a contend intervals.csv: {e}"))
}

/// `intervals.csv` and `latency.hlog` of a run, appended one interval at
/// a time as the run goes: each row is flushed to the file when it closes.
///
/// A file that cannot be created or written is left alone from then on,
/// with one warning on stderr: the end-of-run write tries again and reports
/// its own failure, so nothing is lost twice and the run never stops for it.
pub struct LiveIntervals {
    csv: Option<(PathBuf, csv::Writer<fs::File>)>,
    hlog: Option<(PathBuf, std::io::BufWriter<fs::File>)>,
}

impl LiveIntervals {
    /// Creates both files in `dir` (and `dir`) for a run started at
    /// `started_at`; the log's header is written now.
    pub fn create(dir: &Path, started_at: &chrono::DateTime<chrono::Utc>) -> LiveIntervals {
        let open = |name: &str| {
            let path = dir.join(name);
            fs::create_dir_all(dir)
                .and_then(|()| fs::File::create(&path))
                .map(|file| (path.clone(), file))
                .map_err(|e| live_warning(&Error::io(&path, e)))
                .ok()
        };
        let csv = open("intervals.csv").map(|(path, file)| (path, csv::Writer::from_writer(file)));
        let hlog = open("latency.hlog").and_then(|(path, file)| {
            let mut w = std::io::BufWriter::new(file);
            match hdr::write_hlog_header(&mut w, started_at).and_then(|()| w.flush()) {
                Ok(()) => Some((path, w)),
                Err(e) => {
                    live_warning(&Error::io(&path, e));
                    None
                }
            }
        });
        LiveIntervals { csv, hlog }
    }

    /// Appends one closed interval to both files and flushes them.
    pub fn append(&mut self, row: &IntervalRow) {
        if let Some((path, w)) = &mut self.csv {
            let written = w
                .serialize(IntervalCsvRow::from(row))
                .map_err(std::io::Error::from)
                .and_then(|()| w.flush());
            if let Err(e) = written {
                live_warning(&Error::io(&*path, e));
                self.csv = None;
            }
        }
        if let Some((path, w)) = &mut self.hlog {
            if let Err(e) = hdr::write_hlog_interval(w, row).and_then(|()| w.flush()) {
                live_warning(&Error::io(&*path, e));
                self.hlog = None;
            }
        }
    }
}

fn live_warning(e: &Error) {
    eprintln!("contend: warning: cannot write intervals as the run goes: {e}");
}

fn write_intervals_csv(w: &mut dyn Write, intervals: &[IntervalRow]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    for r in intervals {
        csv.serialize(IntervalCsvRow::from(r))?;
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_that_fails_leaves_no_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        // Half written, then the disk is full.
        let failing = |w: &mut dyn Write| {
            w.write_all(b"{\"half\": ")?;
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        };
        let e = write_file(&path, &failing).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: No space left on device (os error 28)", path.display())
        );
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        // An earlier file stays whole, and a good write replaces it whole.
        write_file(&path, &|w| w.write_all(b"old")).unwrap();
        write_file(&path, &failing).unwrap_err();
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        write_file(&path, &|w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["summary.json"]);
    }

    #[test]
    fn a_plot_that_fails_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usl.png");
        let e = replace_file(&path, &|temp| {
            // The temporary name keeps the extension the encoder goes by.
            assert_eq!(temp.extension().unwrap(), "png");
            fs::write(temp, b"\x89PNG half")?;
            Err(std::io::Error::other("drawing failed"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), format!("{}: drawing failed", path.display()));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_device_is_written_in_place() {
        // `--junit /dev/null` (or /dev/stdout): nothing to rename over.
        write_file(Path::new("/dev/null"), &|w| w.write_all(b"<xml/>")).unwrap();
        assert!(Path::new("/dev/null").exists());
    }
}
