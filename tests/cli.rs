//! The `contend` binary as a user runs it: flags and scenario files in, exit
//! code, stdout, stderr and the report folder out.
//!
//! Proves: a flag-only run and a mock-upstream scenario write the whole
//! report folder and exit 0; the mock upstream's ground truth matches what
//! the driver counted and no upstream process outlives the run; bad input
//! exits 2 with the fix on stderr and no panic; an unreachable target is
//! counted as `connect_error`, not a crash; SIGINT and SIGTERM stop the run,
//! write the report of what ran and exit 130 and 143; `contend report`
//! prints a saved run again; an `--out` that cannot hold the report fails
//! before the load, one holding another run is refused unless `--force`
//! (which clears only that run), and a summary that cannot be written
//! leaves no file and no `Report:` line; URL errors mask a password and cut
//! long values short. Every target is on loopback; the tests wait on
//! a server's first request, a process appearing or an exit, never a sleep.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{EXIT_BOUND, assert_exit, contend, finish, run, spawn, summary, text};
use crate::util;

/// Environment variable set on a `contend` we start: its mock upstream
/// inherits the environment, so the variable finds that process in /proc.
const MARKER_VAR: &str = "CONTEND_CLI_TEST_MARKER";

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not a count in {v:#}"))
}

/// Every outcome in `outcomes.classes`, summed: each arrival has one.
fn outcome_total(v: &Value) -> u64 {
    let classes = v
        .pointer("/outcomes/classes")
        .and_then(Value::as_object)
        .expect("outcomes.classes");
    classes
        .values()
        .map(|n| n.as_u64().expect("class count"))
        .sum()
}

/// The four artifacts are there and not empty.
fn assert_report_folder(dir: &Path) {
    for name in [
        "summary.json",
        "intervals.csv",
        "latency.hgrm",
        "latency.hlog",
    ] {
        let len = std::fs::metadata(dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{name} missing or empty in {}", dir.display());
    }
}

/// A value no other test (or concurrent test process) uses.
fn unique_marker() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// PIDs of the live processes whose environment holds `MARKER_VAR=marker`.
///
/// Why the environment: the mock upstream's command line is the same for
/// every run (`contend upstream --listen 127.0.0.1:0 ...`) and, once its
/// parent is gone, its parent PID says nothing (it is reparented). Its
/// environment is inherited from the `contend` we started and is unique
/// to this test. A zombie's environ reads empty, so only processes that
/// still run are found. Processes of other users (unreadable) are skipped.
fn marked_processes(marker: &str) -> Vec<u32> {
    let wanted = format!("{MARKER_VAR}={marker}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Waits until `found()` gives something, checking every few ms: the
/// condition is a process appearing or a counter moving, which nothing
/// announces, so it is polled; the sleep only spaces the polls.
fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + EXIT_BOUND;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The loopback address process `pid` listens on, from its socket inodes
/// and /proc/net/tcp (the mock upstream prints it only to `contend`).
fn listening_addr(pid: u32) -> Option<SocketAddr> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_str()?.to_string();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    // Columns: sl local_address rem_address st ... inode (10th); st 0A is LISTEN.
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 || cols[3] != "0A" || !inodes.iter().any(|i| i == cols[9]) {
            return None;
        }
        let port = u16::from_str_radix(cols[1].split(':').nth(1)?, 16).ok()?;
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    })
}

/// `GET /accounting` from the mock upstream, parsed.
fn accounting(addr: SocketAddr) -> Option<Value> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /accounting HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// A mock-upstream scenario: 300/s for 1 s, two weighted keys, 1 ms of
/// CPU per request.
fn write_mock_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("mock.toml");
    std::fs::write(
        &path,
        r#"name = "cli-mock"

[[phases]]
rate = "300"
duration = "1s"

[upstream]
kind = "mock"
cpu = "1ms"

[[keys]]
name = "ui"
weight = 3

[[keys]]
name = "batch"
weight = 1
"#,
    )
    .unwrap();
    path
}

/// Unreachable loopback address: a port bound and closed again, so it
/// refuses connections (nothing else binds it during a 1 s run in practice).
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/x")
}

#[test]
fn flag_run_writes_the_report_folder_and_prints_the_summary() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let out = run(contend()
        .args(["run", "--target", &format!("{}/x", server.url())])
        .args(["--rate", "500", "--duration", "1s", "--out"])
        .arg(dir.path()));
    assert_exit(&out, 0);
    assert_report_folder(dir.path());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Requests/sec"),
        "no summary on stdout:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("Report: {}", dir.path().display())),
        "{stdout}"
    );
    let s = summary(dir.path());
    // 500/s for 1 s is 500 arrivals (+-1), all answered 204 by the server.
    let arrivals = u64_at(&s, "/arrivals");
    assert!(arrivals.abs_diff(500) <= 1, "arrivals {arrivals}");
    assert_eq!(u64_at(&s, "/outcomes/responses/204"), arrivals, "{s:#}");
    assert_eq!(outcome_total(&s), arrivals);
    assert_eq!(s["interrupted"], false);
}

#[test]
fn wait_at_max_is_said_on_the_console_in_the_summary_and_the_report() {
    // Two connections to a 40 ms server carry 50/s of the 100/s offered:
    // with --wait-at-max the rest wait for them instead of being not_sent.
    let server = util::http_server(|_| Duration::from_millis(40));
    let dir = tempfile::tempdir().unwrap();
    let out = run(contend()
        .args(["run", "--target", &format!("{}/x", server.url())])
        .args(["--rate", "100", "--duration", "1s", "--threads", "1"])
        .args(["--max-connections", "2", "--wait-at-max", "--out"])
        .arg(dir.path()));
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("at most 2, an arrival finding all busy waited for one"),
        "{stdout}"
    );
    let s = summary(dir.path());
    assert_eq!(s["connections"]["wait_at_max"], true, "{s:#}");
    assert_eq!(u64_at(&s, "/connections/max_connections"), 2);
    assert_eq!(u64_at(&s, "/outcomes/not_sent"), 0);
    assert_eq!(
        u64_at(&s, "/outcomes/responses/204"),
        u64_at(&s, "/arrivals")
    );
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        page.contains("<td>connections</td><td>HTTP/1.1 over TCP, 2 opened")
            && page.contains("at most 2, an arrival finding all busy waited for one"),
        "report.html's connections row"
    );
}

#[test]
fn mock_upstream_scenario_matches_its_ground_truth_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_mock_scenario(dir.path());
    let report = dir.path().join("report");
    let marker = unique_marker();
    let child = spawn(
        contend()
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(&report)
            .env(MARKER_VAR, &marker),
    );
    let contend_pid = child.id();
    // Seeing the upstream while the run lasts proves the /proc scan below
    // would find one left behind (the check is not vacuous).
    wait_for("the mock upstream to start", || {
        marked_processes(&marker)
            .into_iter()
            .find(|pid| *pid != contend_pid)
    });
    let out = finish(child);
    assert_exit(&out, 0);
    // contend stops its child in a Drop guard and waits for it before it
    // exits, so nothing may be left at all, not even briefly.
    assert_eq!(
        marked_processes(&marker),
        Vec::<u32>::new(),
        "a mock upstream outlived contend"
    );
    assert_report_folder(&report);

    let s = summary(&report);
    let arrivals = u64_at(&s, "/arrivals");
    assert!(arrivals.abs_diff(300) <= 1, "arrivals {arrivals}");
    let ok_2xx = u64_at(&s, "/outcomes/classes/2xx");
    assert!(ok_2xx > 0, "{s:#}");
    // The upstream completed exactly the requests the driver saw answered.
    assert_eq!(
        u64_at(&s, "/upstream_accounting/totals/completed"),
        ok_2xx,
        "{s:#}"
    );
    for key in ["ui", "batch"] {
        let key_arrivals = outcome_total(&s["keys"][key]);
        assert!(key_arrivals > 0, "key {key} got no arrivals: {s:#}");
        assert_eq!(
            u64_at(&s, &format!("/upstream_accounting/keys/{key}/started")),
            key_arrivals,
            "key {key}: the upstream started a different number than the driver sent"
        );
    }
    // Weights 3:1 over about 300 arrivals: ui gets clearly more than batch.
    assert!(
        outcome_total(&s["keys"]["ui"]) > outcome_total(&s["keys"]["batch"]),
        "{s:#}"
    );
}

/// The `tests/data/` fixtures folder.
fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

#[test]
fn bad_input_exits_2_with_the_fix_and_no_panic() {
    let data = data_dir();
    let fixture = |name: &str| {
        std::fs::read_to_string(data.join(format!("{name}.expected")))
            .unwrap()
            .trim_end()
            .to_string()
    };
    // (arguments, text stderr must hold). Scenario files are given relative
    // to tests/data, where their .expected text was written.
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["run", "zero-rate.toml"], fixture("zero-rate")),
        (
            vec!["run", "unknown-field-top.toml"],
            fixture("unknown-field-top"),
        ),
        (vec!["run", "syntax-error.toml"], fixture("syntax-error")),
        (
            vec!["run", "--no-such-flag"],
            "unexpected argument '--no-such-flag'".into(),
        ),
        (
            vec!["run", "--target", "http://127.0.0.1:9/", "--rate", "abc"],
            "invalid value 'abc' for '--rate <RATE>'".into(),
        ),
        (
            vec![
                "run",
                "--target",
                "http://127.0.0.1:9/",
                "--rate",
                "10",
                "--duration",
                "0s",
            ],
            "--duration must be more than 0".into(),
        ),
        (
            vec!["run", "missing-scenario.toml"],
            "missing-scenario.toml: no such file".into(),
        ),
        (vec!["run"], "no scenario file and no --target".into()),
        (
            vec![
                "run",
                "--target",
                "http://127.0.0.1:9/",
                "--connections",
                "0",
            ],
            "--connections must be".into(),
        ),
        (
            vec![
                "run",
                "--target",
                "http://127.0.0.1:9/",
                "--connections",
                "4",
                "--rate",
                "10",
            ],
            "'--connections <N>' cannot be used with '--rate <RATE>'".into(),
        ),
        (
            vec![
                "run",
                "--target",
                "http://127.0.0.1:9/",
                "--connections",
                "4",
                "--wait-at-max",
            ],
            "'--connections <N>' cannot be used with '--wait-at-max'".into(),
        ),
        (
            vec![
                "run",
                "../../scenarios/capacity-sweep.toml",
                "--connections",
                "4",
            ],
            "--connections (closed loop) applies to experiment = \"run\"".into(),
        ),
        // A --start-at days away is a wrong date: not waited for, not ignored.
        (
            vec![
                "run",
                "--target",
                "http://127.0.0.1:9/",
                "--start-at",
                "+100000h",
            ],
            "from now, more than 24h: give a time within a day of now".into(),
        ),
        (
            vec![
                "run",
                "--target",
                "http://127.0.0.1:9/",
                "--start-at",
                "2020-01-01T00:00:00Z",
            ],
            "ago, more than 24h: give a time within a day of now".into(),
        ),
        // `contend upstream`'s bad settings are bad input too.
        (
            vec!["upstream", "--workers", "0"],
            "--workers 0: expected a worker count from 1 to 4096".into(),
        ),
        // A --junit file that cannot be written is refused before the run,
        // not found out after it.
        (
            vec![
                "run",
                "--target",
                "http://127.0.0.1:9/",
                "--rate",
                "10",
                "--junit",
                "no-such-folder/gate.xml",
            ],
            "--junit no-such-folder/gate.xml: the folder no-such-folder does not exist".into(),
        ),
        (
            vec!["compare", "a", "b", "--junit", "no-such-folder/gate.xml"],
            "--junit no-such-folder/gate.xml: the folder no-such-folder does not exist".into(),
        ),
        (
            vec!["merge", "a", "--out", "m", "--junit", "."],
            "--junit .: it is a folder: give a file, like ./junit.xml".into(),
        ),
    ];
    for (args, expected) in cases {
        let out = run(contend().current_dir(&data).args(&args));
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {:?}\nstderr:\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains(&expected),
            "{args:?}: stderr lacks {expected:?}:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
            "{args:?} panicked:\n{stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed to stdout:\n{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn unreachable_target_counts_connect_errors_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(contend()
        .args([
            "run",
            "--target",
            &closed_port_url(),
            "--rate",
            "200",
            "--duration",
            "1s",
            "--out",
        ])
        .arg(dir.path()));
    assert_exit(&out, 0);
    assert_report_folder(dir.path());
    let s = summary(dir.path());
    let arrivals = u64_at(&s, "/arrivals");
    assert!(arrivals.abs_diff(200) <= 1, "arrivals {arrivals}");
    assert_eq!(u64_at(&s, "/outcomes/connect_error"), arrivals, "{s:#}");
    assert_eq!(u64_at(&s, "/sent"), 0);
    assert_eq!(outcome_total(&s), arrivals);
    // Said in one line, with the reason, not left to the reader.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("no request got a response: every connect to")
            && stdout.contains("refused"),
        "{stdout}"
    );
    // Nothing was measured: no quantile reads as 0us, here or on the page.
    let latency = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("Latency"))
        .expect("a latency row");
    assert_eq!(
        latency.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["-"; 6],
        "{stdout}"
    );
    assert!(stdout.contains("connect p50 - p99 -"), "{stdout}");
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        page.contains("<tr><td>latency</td><td>-</td>"),
        "no dash for latency in report.html"
    );
}

/// `--duration` on a scenario of several phases replaces each phase's
/// duration: the console says what that adds up to, and the run lasts it.
#[test]
fn duration_over_several_phases_is_said_in_all() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phases.toml");
    std::fs::write(
        &path,
        "[[phases]]\nrate = 50\nduration = \"10s\"\n[[phases]]\nrate = 80\nduration = \"20s\"\n\
         [[phases]]\nrate = 50\nduration = \"10s\"\n",
    )
    .unwrap();
    let report = dir.path().join("report");
    let out = run(contend()
        .arg("run")
        .arg(&path)
        .args(["--target", &server.url(), "--duration", "500ms", "--out"])
        .arg(&report));
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--duration 500ms applies to each of the 3 phases: 1.5s in all"),
        "{stderr}"
    );
    let s = summary(&report);
    assert!(
        (s["duration_s"].as_f64().unwrap() - 1.5).abs() < 0.2,
        "{s:#}"
    );
}

/// A client timeout shorter than any response: every request times out,
/// and the console says why in one line.
#[test]
fn a_timeout_shorter_than_any_response_is_said() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let out = run(contend()
        .args([
            "run",
            "--target",
            &server.url(),
            "--rate",
            "100",
            "--duration",
            "1s",
        ])
        .args(["--timeout", "1ns", "--out"])
        .arg(dir.path()));
    assert_exit(&out, 0);
    let s = summary(dir.path());
    assert_eq!(
        u64_at(&s, "/outcomes/client_timeout"),
        u64_at(&s, "/arrivals")
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "every request timed out, and the client timeout (1ns) is shorter than any response"
        ),
        "{stdout}"
    );
}

/// Starts a 30 s run against a loopback server, sends `signal` once the
/// server has seen its first request, and checks the exit code and the
/// report of what ran.
fn signal_stops_the_run_and_writes_the_report(signal: libc::c_int, expected_code: i32) {
    let (first_tx, first_rx) = mpsc::channel();
    let first_tx = Mutex::new(Some(first_tx));
    let server = util::http_server(move |_| {
        // The first request proves contend is past its setup and sending.
        if let Some(tx) = first_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        Duration::ZERO
    });
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(
        contend()
            .args([
                "run",
                "--target",
                &server.url(),
                "--rate",
                "500",
                "--duration",
                "30s",
            ])
            .args(["--timeout", "2s", "--out"])
            .arg(dir.path()),
    );
    let pid = child.id();
    if first_rx.recv_timeout(EXIT_BOUND).is_err() {
        let _ = contend::sys::signal(pid, libc::SIGKILL);
        panic!("the server saw no request: {:?}", finish(child));
    }
    let sent_at = Instant::now();
    contend::sys::signal(pid, signal).expect("signal contend");
    let out = finish(child);
    assert_exit(&out, expected_code);
    // Stopping is a drain bounded by the 2 s client timeout, not the 30 s run.
    assert!(
        sent_at.elapsed() < Duration::from_secs(20),
        "took {:?} to stop",
        sent_at.elapsed()
    );
    assert!(
        text(&out.stderr).contains("stopping"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("(interrupted)"),
        "{}",
        text(&out.stdout)
    );
    assert_report_folder(dir.path());
    let s = summary(dir.path());
    assert_eq!(s["interrupted"], true, "{s:#}");
    let duration_s = s["duration_s"].as_f64().expect("duration_s");
    assert!(duration_s < 20.0, "duration_s {duration_s}");
    let arrivals = u64_at(&s, "/arrivals");
    assert!(arrivals > 0, "{s:#}");
    assert_eq!(
        outcome_total(&s),
        arrivals,
        "every arrival that ran has one outcome: {s:#}"
    );
}

#[test]
fn sigint_writes_the_report_and_exits_130() {
    signal_stops_the_run_and_writes_the_report(libc::SIGINT, 130);
}

#[test]
fn sigterm_writes_the_report_and_exits_143() {
    signal_stops_the_run_and_writes_the_report(libc::SIGTERM, 143);
}

#[test]
fn sigint_during_a_mock_upstream_run_leaves_no_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_mock_scenario(dir.path());
    let report = dir.path().join("report");
    let marker = unique_marker();
    let child = spawn(
        contend()
            .arg("run")
            .arg(&scenario)
            .args(["--duration", "30s", "--timeout", "2s", "--out"])
            .arg(&report)
            .env(MARKER_VAR, &marker),
    );
    let contend_pid = child.id();
    let upstream = wait_for("the mock upstream", || {
        marked_processes(&marker)
            .into_iter()
            .find(|p| *p != contend_pid)
    });
    // Wait for the run to be under way: the upstream has started requests.
    let addr = wait_for("the upstream's listening socket", || {
        listening_addr(upstream)
    });
    wait_for("the upstream's first request", || {
        accounting(addr).filter(|a| a.pointer("/totals/started").and_then(Value::as_u64) > Some(0))
    });
    contend::sys::signal(contend_pid, libc::SIGINT).expect("signal contend");
    let out = finish(child);
    assert_exit(&out, 130);
    assert_eq!(
        marked_processes(&marker),
        Vec::<u32>::new(),
        "a mock upstream outlived contend"
    );
    let s = summary(&report);
    assert_eq!(s["interrupted"], true);
    assert_eq!(outcome_total(&s), u64_at(&s, "/arrivals"));
    assert!(
        s["upstream_accounting"].is_object(),
        "accounting read before the upstream stopped: {s:#}"
    );
}

#[test]
fn report_prints_a_saved_run_again() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let ran = run(contend()
        .args([
            "run",
            "--target",
            &server.url(),
            "--rate",
            "200",
            "--duration",
            "1s",
            "--out",
        ])
        .arg(dir.path()));
    assert_exit(&ran, 0);
    let reported = run(contend().arg("report").arg(dir.path()));
    assert_exit(&reported, 0);
    // The run prints the summary, then the `Report: DIR` line; `report`
    // renders the same summary from summary.json, byte for byte.
    let ran_stdout = text(&ran.stdout);
    let console = ran_stdout
        .strip_suffix(&format!("Report: {}\n", dir.path().display()))
        .unwrap_or_else(|| panic!("no Report line at the end:\n{ran_stdout}"));
    assert_eq!(text(&reported.stdout), console);
}

#[test]
fn report_of_a_folder_without_summary_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(contend().arg("report").arg(dir.path()));
    assert!(!out.status.success(), "report of an empty folder succeeded");
    assert_ne!(
        out.status.code(),
        None,
        "killed by a signal: {:?}",
        out.status
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("summary.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn report_of_a_folder_without_summary_says_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(contend().arg("report").arg(dir.path()));
    // A folder that is not a report is bad input.
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn url_errors_mask_the_password_and_cut_long_values_short() {
    // (--target, what stderr must hold)
    let long_path = format!("/{}", "p".repeat(100_000));
    let cases = [
        (
            "ftp://admin:hunter2@127.0.0.1:9/".to_string(),
            "--target \"ftp://admin:***@127.0.0.1:9/\": only http:// and https:// URLs".to_string(),
        ),
        (
            "http://admin:hunter2@127.0.0.1:9/".to_string(),
            "--target \"http://admin:***@127.0.0.1:9/\": user names and passwords".to_string(),
        ),
        (
            format!("http://127.0.0.1:9{long_path}"),
            format!(
                "--target path \"/{}\"... (100001 characters, the first 60 shown) is longer than \
                 the 65534 bytes a request target can hold",
                "p".repeat(59)
            ),
        ),
        (
            format!("http://127.0.0.1:9{long_path}%20x y"),
            format!(
                "--target path \"/{}\"... (100007 characters, the first 60 shown) holds ' '",
                "p".repeat(59)
            ),
        ),
    ];
    for (target, want) in cases {
        let out = run(contend().args(["run", "--target", &target, "--rate", "10"]));
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&want),
            "stderr lacks {want:?}:\n{stderr:.400}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(stderr.len() < 1000, "{} bytes of stderr", stderr.len());
    }
}

/// `contend run` of a 3 s flag-only load into `--out out` with `args`;
/// fails unless it exits `code` well before the load could have run.
fn refused_before_the_load(out: &Path, args: &[&str], code: i32) -> String {
    let started = Instant::now();
    let result = run(contend()
        .args(["run", "--target", &closed_port_url(), "--rate", "100"])
        .args(["--duration", "3s", "--no-progress"])
        .args(args)
        .arg("--out")
        .arg(out));
    assert_exit(&result, code);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the load ran first: {:?}",
        started.elapsed()
    );
    let stderr = text(&result.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(result.stdout.is_empty(), "{}", text(&result.stdout));
    stderr
}

#[test]
fn an_out_that_cannot_hold_the_report_fails_before_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    // (--out, extra flags, what stderr must hold)
    let cases = [
        (
            file.clone(),
            vec![],
            format!(
                "report folder {}: it is a file, not a folder: give --out a folder",
                file.display()
            ),
        ),
        (
            file.join("report"),
            vec![],
            format!(
                "cannot create the report folder {}: Not a directory (os error 20): choose a \
                 writable --out",
                file.join("report").display()
            ),
        ),
        (
            file.join("report"),
            vec!["--repeat", "2"],
            format!(
                "cannot create the report folder {}: Not a directory (os error 20)",
                file.join("report").display()
            ),
        ),
    ];
    for (out, args, want) in cases {
        let stderr = refused_before_the_load(&out, &args, 2);
        assert!(
            stderr.contains(&want),
            "{args:?}: stderr lacks {want:?}:\n{stderr}"
        );
    }
    // A `--repeat` run's folder is checked too, before the first run.
    let out = dir.path().join("repeat");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("run-2"), "a file where run-2/ goes").unwrap();
    let stderr = refused_before_the_load(&out, &["--repeat", "2"], 2);
    assert!(
        stderr.contains(&format!(
            "report folder {}: it is a file, not a folder",
            out.join("run-2").display()
        )),
        "{stderr}"
    );
    assert!(!out.join("run-1").exists(), "run 1 ran: {stderr}");
    // A read-only place (sysfs is read-only to everyone, root included).
    let read_only = Path::new("/sys/contend-test-report");
    if std::fs::create_dir(read_only).is_err() {
        let stderr = refused_before_the_load(read_only, &[], 2);
        assert!(
            stderr.contains("cannot create the report folder /sys/contend-test-report: ")
                && stderr.contains("(os error ")
                && stderr.contains(": choose a writable --out"),
            "{stderr}"
        );
    }
    // A place where no folder can be made at all (procfs answers ENOENT):
    // the path, not the disk, is at fault.
    let no_such_place = Path::new("/proc/contend-test-report");
    if std::fs::create_dir(no_such_place).is_err() {
        let stderr = refused_before_the_load(no_such_place, &[], 2);
        assert!(
            stderr.contains("cannot create the report folder /proc/contend-test-report: ")
                && stderr.contains(": choose a writable --out")
                && !stderr.contains("free some space"),
            "{stderr}"
        );
    }
}

#[test]
fn every_experiment_checks_its_folder_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for scenario in [
        "capacity-sweep.toml",
        "timeout-break.toml",
        "client-abort.toml",
    ] {
        let out = file.join("report");
        let started = Instant::now();
        let result = run(contend()
            .arg("run")
            .arg(scenarios.join(scenario))
            .args(["--no-progress", "--out"])
            .arg(&out));
        assert_exit(&result, 2);
        let stderr = text(&result.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot create the report folder {}: Not a directory",
                out.display()
            )),
            "{scenario}: {stderr}"
        );
        // Each of these takes a minute or more once it starts.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{scenario}: started first ({:?})",
            started.elapsed()
        );
    }
}

#[test]
fn a_folder_holding_a_run_is_refused_unless_force_which_clears_only_that_run() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let run_into = |extra: &[&str]| {
        run(contend()
            .args(["run", "--target", &server.url(), "--rate", "100"])
            .args(["--duration", "1s", "--no-progress"])
            .args(extra)
            .arg("--out")
            .arg(&out))
    };
    assert_exit(&run_into(&[]), 0);
    let first = summary(&out)["started_at"].clone();
    // An earlier sweep's files, a user's notes, a repeated run's folder.
    for (name, body) in [
        ("capacity.json", "{}"),
        ("steps.csv", "step\n"),
        ("usl.svg", "<svg/>"),
        ("run-3/summary.json", "{}"),
        ("notes.txt", "keep me"),
        ("data/steps.csv", "keep me too"),
    ] {
        let path = out.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let stderr = refused_before_the_load(&out, &[], 2);
    assert!(
        stderr.contains(&format!(
            "report folder {} holds an earlier run (capacity.json, histograms.hlog, intervals.csv, \
             latency-over-time.png, and ",
            out.display()
        )) && stderr.contains(
            "choose another --out, or add --force to replace it (--force first removes the \
             files contend writes there, and nothing else)"
        ),
        "{stderr}"
    );
    assert_eq!(
        summary(&out)["started_at"],
        first,
        "the refusal changed the run"
    );
    let forced = run_into(&["--force"]);
    assert_exit(&forced, 0);
    assert_ne!(summary(&out)["started_at"], first);
    for stale in ["capacity.json", "steps.csv", "usl.svg", "run-3"] {
        assert!(
            !out.join(stale).exists(),
            "{stale} stayed beside the new run"
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert!(out.join("data/steps.csv").exists());
    assert_report_folder(&out);
}

#[test]
fn a_summary_that_cannot_be_written_leaves_no_file_and_no_report_line() {
    // A file size limit of two 512-byte blocks, with SIGXFSZ ignored, makes
    // every write past 1 KiB fail with EFBIG, as a full disk fails them: the
    // folder takes the small probe, the summary (several KiB) cannot fit.
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let result = run(std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2 && exec \"$@\"")
        .arg("sh")
        .arg(crate::binary::CONTEND)
        .args(["run", "--target", &server.url(), "--rate", "100"])
        .args(["--duration", "1s", "--no-progress", "--out"])
        .arg(&out)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null()));
    assert_exit(&result, 1);
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: File too large (os error 27)",
            out.join("summary.json").display()
        )),
        "{stderr}"
    );
    let stdout = text(&result.stdout);
    assert!(stdout.contains("Requests/sec"), "{stdout}");
    assert!(!stdout.contains("Report:"), "{stdout}");
    assert!(
        !out.join("summary.json").exists(),
        "a truncated summary.json"
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".contend-tmp-")),
        "temporary files left: {names:?}"
    );
}
