//! The report folder, made ready before anything runs.
//!
//! Takes the folder a command will write (from `--out`, or the default
//! under `reports/`) and hands it on ready: an earlier run's files in it
//! refused (or, with `--force`, removed: only the files and subfolders
//! `contend` writes, never anything else), the folder created, and a file
//! written in it and removed again. So a folder that cannot hold the
//! report (read-only, under a regular file, a file itself, a full disk)
//! fails the command before any component or load starts, not after the
//! whole load. Writes no report file itself.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The files `contend` writes into a report folder, by name: the run's
/// own (with its gateway's access log and that log's format), then those
/// of a sweep, a find-limit, an abort audit and `contend logs`.
const FILES: [&str; 26] = [
    "summary.json",
    "intervals.csv",
    "components.csv",
    "latency.hgrm",
    "latency.hlog",
    "histograms.hlog",
    "report.html",
    "access.log",
    "access.log.format",
    "capacity.json",
    "steps.csv",
    "concurrency.csv",
    "max-connections.csv",
    "accounting.csv",
    "requests.csv",
    "client-aborts.md",
    "log-intervals.csv",
    "routes.csv",
    "keys.csv",
    "usage.csv",
    "slow-routes.csv",
    "variants.csv",
    "quota.md",
    "quota.csv",
    "retry-effect.csv",
    "retry-effect.md",
];

/// The subfolder of a sweep's or a find-limit's run without its retry
/// policy (`--retries compare`).
pub const WITHOUT_RETRIES: &str = "without-retries";

/// The plots `contend` draws, each as `<name>.svg` and `<name>.png`.
const PLOTS: [&str; 15] = [
    "latency-over-time",
    "components-over-time",
    "percentile-spectrum",
    "latency-vs-load",
    "throughput-vs-load",
    "usl",
    "limit",
    "accounting",
    "requests-over-time",
    "logged-vs-upstream",
    "censored-fit",
    "retries-over-time",
    "variants",
    "quota-accuracy",
    "quota-faults",
];

/// True when `name` is a file `contend` writes into a report folder (a
/// report file, a plot, or a temporary file a write left behind).
pub fn is_contend_file(name: &str) -> bool {
    FILES.contains(&name)
        || name.starts_with(super::TEMP_PREFIX)
        || name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| matches!(ext, "svg" | "png") && PLOTS.contains(&stem))
}

/// True when `name` is a subfolder `contend` writes reports into: a
/// `--repeat` run's `run-N`, an abort audit's mode, a `variant-NAME`, a
/// quota experiment's `design-NAME`, a retry comparison's
/// `without-retries`.
pub fn is_contend_folder(name: &str) -> bool {
    let run_n = name
        .strip_prefix("run-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let variant = name.strip_prefix("variant-").is_some_and(|n| !n.is_empty());
    let design = name.strip_prefix("design-").is_some_and(|n| !n.is_empty());
    run_n
        || variant
        || design
        || name == WITHOUT_RETRIES
        || crate::scenario::AuditMode::ALL
            .iter()
            .any(|m| m.as_str() == name)
}

/// Why `dir`, given where one run's report is wanted (`compare`, `merge`),
/// is not one: the report of an access log (`contend logs`), or a folder
/// whose runs (`--repeat`, an abort audit's modes, variants, quota
/// designs, a retry comparison) each have their report in a subfolder,
/// which it names. `None` when neither applies. The caller says the fix.
pub fn not_one_run(dir: &Path) -> Option<String> {
    let kind = fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned));
    if kind.as_deref() == Some(super::logs::KIND) {
        return Some("the report of an access log (`contend logs`), not of a run".into());
    }
    if dir.join("intervals.csv").exists() {
        return None;
    }
    let mut parts: Vec<String> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| is_contend_folder(&e.file_name().to_string_lossy()))
        .filter(|e| e.path().join("intervals.csv").is_file())
        .map(|e| e.path().display().to_string())
        .collect();
    parts.sort();
    (!parts.is_empty()).then(|| {
        format!(
            "a folder of several runs, each with its own report folder: {}",
            parts.join(", ")
        )
    })
}

/// The files of an earlier run in `dir`: the files `contend` writes there,
/// and those in its subfolders of reports (nothing else). Empty when `dir`
/// does not exist or holds no run.
pub fn earlier_run(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            if is_contend_folder(&name) {
                found.extend(earlier_run(&entry.path()));
            }
        } else if is_contend_file(&name) {
            found.push(entry.path());
        }
    }
    found
}

/// Makes `dir` ready to hold a report: refuses a path that is a file,
/// refuses a folder holding an earlier run unless `force` (which removes
/// that run's files first), then creates it and test-writes a file in it.
/// `chosen` is true when the folder came from `--out` (the fixes differ).
///
/// Returns true when it made the folder (it did not exist).
///
/// Bad input (exit 2): the path is a file, under a file, not writable or
/// holds a run. Anything else (a full disk) is a runtime failure (exit 1).
pub fn prepare(dir: &Path, force: bool, chosen: bool) -> Result<bool> {
    if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::Usage(format!(
            "report folder {}: it is a file, not a folder: {}",
            dir.display(),
            if chosen {
                "give --out a folder (one that does not exist yet is made)"
            } else {
                "move that file away, or give --out DIR"
            }
        )));
    }
    let earlier = earlier_run(dir);
    if !earlier.is_empty() {
        if !force {
            return Err(Error::Usage(format!(
                "report folder {} holds an earlier run ({}): choose another --out, or add --force \
                 to replace it (--force first removes the files contend writes there, and nothing \
                 else)",
                dir.display(),
                names(dir, &earlier)
            )));
        }
        remove(dir, &earlier)
            .map_err(|e| unusable(dir, "cannot remove the earlier run from", e, chosen))?;
    }
    let made = !dir.exists();
    fs::create_dir_all(dir).map_err(|e| unusable(dir, "cannot create", e, chosen))?;
    test_write(dir).map_err(|e| unusable(dir, "cannot write into", e, chosen))?;
    Ok(made)
}

/// Writes a small file into `dir`, syncs it and removes it again.
fn test_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(
        "{}{}-probe",
        super::TEMP_PREFIX,
        std::process::id()
    ));
    let written = fs::File::create(&probe).and_then(|mut file| {
        file.write_all(b"contend checks that the report folder takes files\n")?;
        file.sync_all()
    });
    let removed = fs::remove_file(&probe);
    written.and(removed)
}

/// Removes an earlier run's `files` from `dir`, then the subfolders of
/// reports they leave empty.
fn remove(dir: &Path, files: &[PathBuf]) -> std::io::Result<()> {
    for file in files {
        fs::remove_file(file)?;
    }
    let mut folders: Vec<&Path> = files
        .iter()
        .filter_map(|f| f.parent())
        .filter(|p| *p != dir)
        .collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        // Only an empty one: anything the user put there stays.
        let _ = fs::remove_dir(folder);
    }
    Ok(())
}

/// The first few of `files`, relative to `dir`, and how many more.
fn names(dir: &Path, files: &[PathBuf]) -> String {
    const SHOWN: usize = 4;
    let mut shown: Vec<String> = files
        .iter()
        .take(SHOWN)
        .map(|f| f.strip_prefix(dir).unwrap_or(f).display().to_string())
        .collect();
    if files.len() > SHOWN {
        shown.push(format!("and {} more", files.len() - SHOWN));
    }
    shown.join(", ")
}

/// The error for a folder that cannot be made ready: the folder, the OS
/// error and the fix; bad input when the path is the problem, a runtime
/// failure otherwise.
fn unusable(dir: &Path, what: &str, e: std::io::Error, chosen: bool) -> Error {
    let path_is_the_problem = matches!(
        e.raw_os_error(),
        Some(
            libc::EACCES
                | libc::EPERM
                | libc::EROFS
                | libc::ENOTDIR
                | libc::EEXIST
                | libc::ENAMETOOLONG
                | libc::ELOOP
                // Where no folder can be made at all (under /proc, or a
                // parent removed meanwhile): the path, not the disk.
                | libc::ENOENT
        )
    );
    let fix = match (path_is_the_problem, chosen) {
        (true, true) => "choose a writable --out",
        (true, false) => "run from a writable folder, or give --out DIR",
        (false, true) => "free some space or choose another --out",
        (false, false) => "free some space or give --out DIR",
    };
    let message = format!("{what} the report folder {}: {e}: {fix}", dir.display());
    if path_is_the_problem {
        Error::Usage(message)
    } else {
        Error::Runtime(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_report_and_a_folder_of_several_runs_are_not_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one");
        fs::create_dir(&one).unwrap();
        fs::write(one.join("summary.json"), r#"{"name": "x"}"#).unwrap();
        fs::write(one.join("intervals.csv"), "").unwrap();
        assert_eq!(not_one_run(&one), None);
        // Nothing of a report at all: left to the reader's own error.
        assert_eq!(not_one_run(dir.path().join("none").as_path()), None);

        let log = dir.path().join("log");
        fs::create_dir(&log).unwrap();
        fs::write(log.join("summary.json"), r#"{"kind": "access_log"}"#).unwrap();
        let why = not_one_run(&log).expect("a log's report");
        assert!(why.contains("contend logs"), "{why}");

        let audit = dir.path().join("audit");
        for part in ["reference-early", "variant-b", "not-ours"] {
            fs::create_dir_all(audit.join(part)).unwrap();
            fs::write(audit.join(part).join("intervals.csv"), "").unwrap();
        }
        fs::write(audit.join("summary.json"), r#"{"name": "x"}"#).unwrap();
        let why = not_one_run(&audit).expect("a folder of runs");
        assert!(
            why.contains("reference-early")
                && why.contains("variant-b")
                && !why.contains("not-ours"),
            "{why}"
        );
    }

    #[test]
    fn contend_files_are_told_from_others() {
        for name in [
            "summary.json",
            "latency.hlog",
            "steps.csv",
            "usl.svg",
            "limit.png",
            "accounting.svg",
            "access.log",
            "access.log.format",
            "routes.csv",
            "censored-fit.png",
            ".contend-tmp-42-summary.json",
        ] {
            assert!(is_contend_file(name), "{name}");
        }
        for name in [
            "notes.txt",
            "summary.json.bak",
            "access.log.1",
            "usl.pdf",
            "my.png",
            "svg",
            ".png",
        ] {
            assert!(!is_contend_file(name), "{name}");
        }
        for name in [
            "run-1",
            "run-12",
            "nginx-on",
            "reference-early",
            "without-retries",
        ] {
            assert!(is_contend_folder(name), "{name}");
        }
        for name in ["run-", "run-x", "runs", "nginx"] {
            assert!(!is_contend_folder(name), "{name}");
        }
    }

    #[test]
    fn force_removes_only_what_contend_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for file in [
            "summary.json",
            "capacity.json",
            "usl.svg",
            "notes.txt",
            "run-1/summary.json",
            "run-1/mine.txt",
            "run-2/intervals.csv",
            "nginx-on/report.html",
            "data/summary.json",
        ] {
            let path = d.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "x").unwrap();
        }
        let refused = prepare(d, false, true).unwrap_err();
        assert_eq!(refused.exit_code(), 2);
        assert_eq!(
            refused.to_string(),
            format!(
                "report folder {} holds an earlier run (capacity.json, nginx-on/report.html, \
                 run-1/summary.json, run-2/intervals.csv, and 2 more): choose another --out, or \
                 add --force to replace it (--force first removes the files contend writes there, \
                 and nothing else)",
                d.display()
            )
        );
        assert!(d.join("summary.json").exists(), "a refusal removes nothing");
        assert!(!prepare(d, true, true).unwrap(), "it was there");
        let mut left: Vec<String> = walk(d);
        left.sort();
        assert_eq!(left, ["data/summary.json", "notes.txt", "run-1/mine.txt"]);
        assert!(earlier_run(d).is_empty());
        // Now empty of runs: no --force needed, and the probe is gone.
        prepare(d, false, true).unwrap();
        assert_eq!(walk(d).len(), 3);
    }

    /// Every file under `dir`, relative to it.
    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(
                    walk(&path)
                        .into_iter()
                        .map(|f| format!("{}/{f}", path.file_name().unwrap().to_string_lossy())),
                );
            } else {
                out.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        out
    }

    #[test]
    fn a_folder_that_cannot_hold_the_report_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, "x").unwrap();
        // (folder, chosen by --out, exit code, message)
        let cases = [
            (
                file.clone(),
                true,
                2,
                format!(
                    "report folder {}: it is a file, not a folder: give --out a folder (one that \
                     does not exist yet is made)",
                    file.display()
                ),
            ),
            (
                file.join("report"),
                true,
                2,
                format!(
                    "cannot create the report folder {}: Not a directory (os error 20): choose a \
                     writable --out",
                    file.join("report").display()
                ),
            ),
            (
                file.join("report"),
                false,
                2,
                format!(
                    "cannot create the report folder {}: Not a directory (os error 20): run from a \
                     writable folder, or give --out DIR",
                    file.join("report").display()
                ),
            ),
        ];
        for (folder, chosen, code, message) in cases {
            let e = prepare(&folder, false, chosen).unwrap_err();
            assert_eq!((e.exit_code(), e.to_string()), (code, message));
        }
    }
}
