//! Running the `contend` binary from tests: a predictable environment,
//! captured output, a bound on how long a run may take, and the report's
//! summary read back (checked against its schema).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The binary under test, built by cargo for this test crate.
pub const CONTEND: &str = env!("CARGO_BIN_EXE_contend");

/// Longest any run here may take to exit. Runs are 1-3 s and a drain is
/// bounded by `--timeout 2s`; the rest is slack for a busy shared 2-core box.
pub const EXIT_BOUND: Duration = Duration::from_secs(60);

/// `contend` with a predictable environment: a panic would print a
/// backtrace (which the bad-input tests look for), and no colour codes.
pub fn contend() -> Command {
    let mut cmd = Command::new(CONTEND);
    cmd.env("RUST_BACKTRACE", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// Starts `cmd` with stdout and stderr captured.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("contend starts")
}

/// Waits for `child` to exit and collects its output; kills it and fails
/// when it takes longer than [`EXIT_BOUND`].
pub fn finish(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(EXIT_BOUND) {
        Ok(output) => output.expect("waiting for contend"),
        Err(_) => {
            // Our own child, by its PID; the waiting thread then reaps it.
            let _ = contend::sys::signal(pid, libc::SIGKILL);
            panic!("contend (pid {pid}) did not exit within {EXIT_BOUND:?}");
        }
    }
}

/// Runs `cmd` to its end.
pub fn run(cmd: &mut Command) -> Output {
    finish(spawn(cmd))
}

/// Runs the scenario `file` into `out_dir` (`contend run FILE --out DIR
/// --no-progress`) and fails unless it exits with `code`.
pub fn run_scenario(file: &Path, out_dir: &Path, code: i32) -> Output {
    let out = run(contend()
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out_dir)
        .arg("--no-progress"));
    assert_exit(&out, code);
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails with both streams shown unless the exit code is `code`.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The report folder's summary.json, checked against its schema.
pub fn summary(dir: &Path) -> Value {
    let path = dir.join("summary.json");
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value = serde_json::from_str(&body).expect("summary.json is JSON");
    crate::reports::assert_matches_schema(&value);
    value
}

/// Every file and subfolder in the report folder `dir` is one contend
/// knows as its own, so `--force` would clear them all (a new artifact
/// must be added to `report::folder`'s lists).
pub fn assert_only_contend_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            assert!(
                contend::report::folder::is_contend_folder(&name),
                "{}: subfolder {name} is not one contend knows",
                dir.display()
            );
            assert_only_contend_files(&entry.path());
        } else {
            assert!(
                contend::report::folder::is_contend_file(&name),
                "{}: {name} is not a file contend knows",
                dir.display()
            );
        }
    }
}
