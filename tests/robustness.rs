//! `contend` pointed at half-working systems and stopped the hard way.
//!
//! Proves: a target that answers a huge body, an endless body (chunked or
//! until close), closes mid-response, resets, answers garbage or stalls
//! mid-body gives counted outcomes and the run ends (an endless body at
//! the client timeout, with the driver's memory bounded); a component
//! that dies mid-run is named in summary.json and on the console (when,
//! how) while the run goes on counting errors (a killed nginx master's
//! worker is stopped and said; a killed HAProxy, one process, leaves
//! nothing); a component that never
//! becomes ready is an error with its stderr tail, and is stopped; a
//! second signal exits at once and no child outlives `contend`; a
//! `kill -9` leaves `intervals.csv` and `latency.hlog` up to the last
//! interval, and what is written as the run goes is what the final report
//! holds. Targets are loopback servers in the test; the tests wait on the
//! binary's own output (an interval row in the report folder, its
//! "stopping" line) or a process appearing, never a sleep.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use contend::outcome::Class;
use contend::topology::ChildGuard;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

use crate::binary::{EXIT_BOUND, assert_exit, contend, finish, spawn, summary, text};
use crate::reports::base64_decode;
use crate::util::{self, assert_outcomes_add_up, drive, overrides, read_request_head};

// ---- helpers ---------------------------------------------------------------

/// Writes `head`, then `body_piece` over and over until the client leaves
/// (the write fails) or `limit` bytes of body are out; then closes, so a
/// limited body's head says `connection: close`.
fn stream_body(mut s: TcpStream, head: &[u8], body_piece: &[u8], limit: Option<u64>) {
    if !read_request_head(&mut s) || s.write_all(head).is_err() {
        return;
    }
    let mut sent = 0u64;
    while limit.is_none_or(|l| sent < l) {
        let piece = match limit {
            Some(l) => &body_piece[..body_piece.len().min((l - sent) as usize)],
            None => body_piece,
        };
        if s.write_all(piece).is_err() {
            return;
        }
        sent += piece.len() as u64;
    }
}

/// Waits until `found()` gives something, checking every few ms: the
/// condition (a file growing, a process appearing or going) is announced by
/// nothing else, so it is polled; the sleep only spaces the polls.
pub(crate) fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + EXIT_BOUND;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Data rows of the report folder's `intervals.csv` so far.
fn csv_rows(dir: &Path) -> Vec<contend::report::IntervalCsvRow> {
    contend::report::read_intervals_csv(&dir.join("intervals.csv")).unwrap_or_default()
}

/// Waits until `contend` has written `n` interval rows: its own sign that
/// the run is under way.
pub(crate) fn wait_for_rows(dir: &Path, n: usize, child: &mut Child) {
    wait_for(&format!("{n} interval rows in {}", dir.display()), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("contend exited early: {status}");
        }
        (csv_rows(dir).len() >= n).then_some(())
    });
}

/// Live children of `parent`, from /proc/*/stat (field 4 is the parent).
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[1] == parent.to_string() && fields[0] != "Z" {
            pids.push(pid);
        }
    }
    pids
}

/// True once `pid` is gone or a zombie (an orphan nobody has reaped yet).
pub(crate) fn has_ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X")
    })
}

/// A mock-upstream scenario file in `dir`: `rate` per second for
/// `duration`, each request sleeping `sleep` in the upstream.
fn mock_scenario(dir: &Path, rate: u32, duration: &str, sleep: &str) -> PathBuf {
    let path = dir.join("robust.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"robust\"\n\n[[phases]]\nrate = {rate}\nduration = \"{duration}\"\n\n\
             [upstream]\nkind = \"mock\"\nsleep = \"{sleep}\"\n"
        ),
    )
    .unwrap();
    path
}

/// Writes `text` as a scenario in `dir` and starts `contend run` on it with
/// `--timeout timeout`, its report folder `dir/report`.
fn start_scenario(dir: &Path, text: &str, timeout: &str) -> (Child, PathBuf) {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let report = dir.join("report");
    let child = spawn(
        contend()
            .arg("run")
            .arg(&path)
            .args(["--timeout", timeout, "--out"])
            .arg(&report),
    );
    (child, report)
}

/// The first child of `parent` that `is` says is the one.
fn child_where(parent: u32, what: &str, is: impl Fn(u32) -> bool) -> u32 {
    wait_for(what, || {
        children_of(parent).into_iter().find(|&pid| is(pid))
    })
}

// ---- failing targets -------------------------------------------------------

#[test]
fn a_50_mb_body_is_read_to_its_end_and_counted() {
    const BODY_BYTES: u64 = 50 * 1024 * 1024;
    let server = util::raw_server(|s| {
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY_BYTES}\r\nconnection: close\r\n\r\n");
        stream_body(s, head.as_bytes(), &[b'x'; 64 * 1024], Some(BODY_BYTES));
    });
    let mut o = overrides(&server.url(), 4.0, Duration::from_secs(1));
    o.timeout = Some(Duration::from_secs(30));
    let out = drive(&o);
    assert_outcomes_add_up(&out);
    assert!(out.totals.arrivals > 0);
    assert_eq!(
        out.totals.counts.class(Class::Success),
        out.totals.arrivals,
        "{:?}",
        out.totals.counts.by_class
    );
}

#[test]
fn an_endless_body_ends_at_the_client_timeout() {
    let chunked = util::raw_server(|s| {
        stream_body(
            s,
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            &b"4000\r\n"
                .iter()
                .copied()
                .chain([b'x'; 0x4000])
                .chain(*b"\r\n")
                .collect::<Vec<u8>>(),
            None,
        );
    });
    let until_close = util::raw_server(|s| {
        stream_body(s, b"HTTP/1.1 200 OK\r\n\r\n", &[b'y'; 16 * 1024], None);
    });
    for server in [&chunked, &until_close] {
        let mut o = overrides(&server.url(), 10.0, Duration::from_millis(500));
        o.timeout = Some(Duration::from_millis(300));
        let out = drive(&o);
        assert_outcomes_add_up(&out);
        assert!(out.totals.arrivals > 0);
        assert_eq!(
            out.totals.counts.class(Class::ClientTimeout),
            out.totals.arrivals,
            "{:?}",
            out.totals.counts.by_class
        );
    }
}

#[test]
fn closed_mid_response_reset_garbage_and_a_mid_body_stall_are_counted() {
    // Closed in the middle of a chunked body.
    let mid_chunk = util::raw_server(|s| {
        util::answer_and_close(
            s,
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nonly a part",
        )
    });
    // Reset: the request is left unread when the socket closes, so the
    // kernel answers with RST instead of FIN.
    let reset = util::raw_server(|s| {
        let mut probe = [0u8; 1];
        let _ = s.peek(&mut probe);
        drop(s);
    });
    // Binary garbage, and a head that never ends.
    let garbage = util::raw_server(|s| {
        util::answer_and_close(s, &[0xff, 0x00, 0xfe, 0x13, 0x37, 0x0a, 0x0d, 0x0a])
    });
    let endless_head = util::raw_server(|s| {
        stream_body(
            s,
            b"HTTP/1.1 200 OK\r\n",
            b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            None,
        )
    });
    for (what, server) in [
        ("closed mid-chunk", &mid_chunk),
        ("reset", &reset),
        ("garbage", &garbage),
        ("endless head", &endless_head),
    ] {
        let mut o = overrides(&server.url(), 50.0, Duration::from_millis(500));
        o.timeout = Some(Duration::from_secs(5));
        let out = drive(&o);
        assert_outcomes_add_up(&out);
        assert!(out.totals.arrivals > 0, "{what}");
        assert_eq!(
            out.totals.counts.class(Class::IoError),
            out.totals.arrivals,
            "{what}: {:?}",
            out.totals.counts.by_class
        );
    }
    // Half the body, then silence: the client timeout ends it.
    let stall = util::raw_server(|mut s| {
        if read_request_head(&mut s)
            && s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf of it")
                .is_ok()
        {
            let mut rest = [0u8; 64];
            while matches!(s.read(&mut rest), Ok(n) if n > 0) {}
        }
    });
    let mut o = overrides(&stall.url(), 20.0, Duration::from_millis(500));
    o.timeout = Some(Duration::from_millis(300));
    let out = drive(&o);
    assert_outcomes_add_up(&out);
    assert_eq!(
        out.totals.counts.class(Class::ClientTimeout),
        out.totals.arrivals
    );
}

#[test]
fn an_endless_body_keeps_the_binary_s_memory_bounded() {
    // Loopback streams gigabytes a second: a driver that kept the body would
    // grow by that much; one that skips it stays near its usual size.
    const BOUND_KB: u64 = 256 * 1024;
    let server = util::raw_server(|s| {
        stream_body(s, b"HTTP/1.1 200 OK\r\n\r\n", &[b'z'; 64 * 1024], None);
    });
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(
        contend()
            .args([
                "run",
                "--target",
                &server.url(),
                "--rate",
                "20",
                "--duration",
                "2s",
            ])
            .args(["--timeout", "1s", "--out"])
            .arg(dir.path()),
    );
    let pid = child.id();
    // VmHWM is the peak so far; the last reading before exit holds the run's.
    let mut peak_kb = 0;
    while child.try_wait().ok().flatten().is_none() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = finish(child);
    assert_exit(&out, 0);
    let s = summary(dir.path());
    assert_eq!(s["outcomes"]["client_timeout"], s["arrivals"], "{s:#}");
    assert!(peak_kb > 0, "no memory reading");
    assert!(peak_kb < BOUND_KB, "peak RSS {peak_kb} kB");
}

// ---- failing components ----------------------------------------------------

#[test]
fn a_mock_upstream_killed_mid_run_is_named_in_the_summary_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = mock_scenario(dir.path(), 100, "4s", "1ms");
    let report = dir.path().join("report");
    let mut child = spawn(
        contend()
            .arg("run")
            .arg(&scenario)
            .args(["--timeout", "1s", "--out"])
            .arg(&report),
    );
    let contend_pid = child.id();
    let upstream = wait_for("the mock upstream", || {
        children_of(contend_pid).first().copied()
    });
    wait_for_rows(&report, 1, &mut child);
    // Our own grandchild, by its PID.
    contend::sys::signal(upstream, libc::SIGKILL).expect("kill the mock upstream");
    let out = finish(child);
    assert_exit(&out, 0);
    let s = summary(&report);
    let exits = s["component_exits"].as_array().expect("component_exits");
    assert_eq!(exits.len(), 1, "{s:#}");
    let exit = &exits[0];
    assert_eq!(exit["component"], "mock upstream");
    assert_eq!(exit["pid"], upstream);
    assert_eq!(exit["signal"], libc::SIGKILL);
    assert_eq!(exit["exit_code"], Value::Null);
    assert_eq!(exit["status"], "killed by signal 9 (SIGKILL)");
    // Killed after the first interval closed (1 s), before the run ended.
    let at_s = exit["at_s"].as_f64().unwrap();
    let duration_s = s["duration_s"].as_f64().unwrap();
    assert!(at_s >= 1.0 && at_s <= duration_s + 1.0, "at_s {at_s}");
    // The run went on and counted the failures.
    let failed = s["outcomes"]["io_error"].as_u64().unwrap()
        + s["outcomes"]["connect_error"].as_u64().unwrap()
        + s["outcomes"]["client_timeout"].as_u64().unwrap();
    assert!(failed > 0, "{s:#}");
    assert_eq!(s["interrupted"], false);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("the mock upstream (pid") && stdout.contains("SIGKILL"),
        "{stdout}"
    );
}

#[test]
fn a_component_that_never_becomes_ready_is_an_error_with_its_stderr() {
    // It says who it is on stderr, then hangs without printing its address.
    let args = |script: &str| vec!["-c".to_string(), script.to_string()];
    let err = ChildGuard::spawn(
        "stuck component",
        Path::new("/bin/sh"),
        &args("echo \"warming up as pid $$\" >&2; exec sleep 60"),
        Duration::from_millis(500),
    )
    .err()
    .expect("never ready");
    let message = err.to_string();
    assert!(message.starts_with("stuck component: "), "{message}");
    assert!(
        message.contains("did not print its address within 0.5s"),
        "{message}"
    );
    assert!(message.contains("warming up as pid"), "{message}");
    let pid: u32 = message
        .split("warming up as pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("pid in the stderr tail");
    assert!(
        has_ended(pid),
        "the stuck component (pid {pid}) was left running"
    );

    let err = ChildGuard::spawn(
        "failing component",
        Path::new("/bin/sh"),
        &args("echo 'error: bad --flag' >&2; exit 3"),
        Duration::from_secs(30),
    )
    .err()
    .expect("exits before ready");
    let message = err.to_string();
    assert!(message.contains("exited before it was ready"), "{message}");
    assert!(message.contains("error: bad --flag"), "{message}");
}

// ---- many keys ---------------------------------------------------------------

/// Ten thousand API keys: per-key state is small (the run fits in a 1 GiB
/// data limit, where a histogram per key per shard took about 1 MB a key),
/// it is made before the schedule's clock starts (the generator's own lag
/// stays small), and the console shows the busiest keys and a count.
#[test]
fn ten_thousand_keys_run_in_little_memory_and_on_schedule() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    let mut file = String::from("name = \"keys\"\n[[phases]]\nrate = 200\nduration = \"1s\"\n");
    for i in 0..10_000 {
        file.push_str(&format!("[[keys]]\nname = \"k{i}\"\n"));
    }
    std::fs::write(&path, file).unwrap();
    let report = dir.path().join("report");
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--data={}", 1u64 << 30))
        .arg(env!("CARGO_BIN_EXE_contend"))
        .arg("run")
        .arg(&path)
        .args(["--target", &server.url(), "--timeout", "2s", "--out"])
        .arg(&report)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    let out = finish(spawn(&mut cmd));
    assert_exit(&out, 0);
    let s = summary(&report);
    assert_eq!(s["keys"].as_object().map(|k| k.len()), Some(10_000));
    assert_eq!(s["arrivals"], 200, "{}", s["outcomes"]);
    let lag_p99 = s["generator_lag_us"]["p99"].as_u64().unwrap();
    assert!(
        lag_p99 < 200_000,
        "set-up delayed the schedule: generator lag p99 {lag_p99} us"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("the 10 busiest of 10000"), "{stdout}");
    assert!(stdout.lines().count() < 40, "{stdout}");
}

// ---- signals and kill -9 ---------------------------------------------------

#[test]
fn a_second_signal_exits_at_once_and_leaves_no_child() {
    let dir = tempfile::tempdir().unwrap();
    // Requests sleep 20 s in the upstream and the client waits 30 s: the
    // first signal's drain would last that long and then write a report.
    let scenario = mock_scenario(dir.path(), 20, "30s", "20s");
    let report = dir.path().join("report");
    let mut child = spawn(
        contend()
            .arg("run")
            .arg(&scenario)
            .args(["--timeout", "30s", "--out"])
            .arg(&report),
    );
    let contend_pid = child.id();
    let upstream = wait_for("the mock upstream", || {
        children_of(contend_pid).first().copied()
    });
    wait_for_rows(&report, 1, &mut child);
    let reader = first_sigint(&mut child);
    // A human's second Ctrl-C, not the echo of the first (see the next test).
    std::thread::sleep(contend::shutdown::REPEAT_WINDOW + Duration::from_millis(100));
    contend::sys::signal(contend_pid, libc::SIGINT).expect("second SIGINT");
    let out = finish(child);
    let stderr = reader.join().unwrap_or_default();
    assert_eq!(out.status.code(), Some(130), "{:?}\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // It did not wait for the drain: no report was written.
    assert!(
        !report.join("summary.json").exists(),
        "the second signal waited for the drain"
    );
    wait_for("the mock upstream to be gone", || {
        has_ended(upstream).then_some(())
    });
}

/// Sends `child` its first SIGINT and waits for its "stopping" line; hands
/// back the thread that reads the rest of its stderr.
fn first_sigint(child: &mut Child) -> std::thread::JoinHandle<String> {
    let contend_pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (line_tx, line_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line_tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    contend::sys::signal(contend_pid, libc::SIGINT).expect("first SIGINT");
    let deadline = Instant::now() + EXIT_BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(line) if line.contains("stopping") => break,
            Ok(_) => {}
            Err(_) => {
                let _ = contend::sys::signal(contend_pid, libc::SIGKILL);
                panic!("no \"stopping\" line after the first SIGINT");
            }
        }
    }
    reader
}

/// `timeout -s INT 60 contend run ...` signals contend, then its process
/// group, microseconds apart: one stop, not a second Ctrl-C. The drain
/// runs and the report of what ran is written.
#[test]
fn a_repeat_of_the_first_signal_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = mock_scenario(dir.path(), 20, "30s", "10ms");
    let report = dir.path().join("report");
    let mut child = spawn(
        contend()
            .arg("run")
            .arg(&scenario)
            .args(["--timeout", "5s", "--out"])
            .arg(&report),
    );
    wait_for_rows(&report, 1, &mut child);
    let reader = first_sigint(&mut child);
    contend::sys::signal(child.id(), libc::SIGINT).expect("repeated SIGINT");
    let out = finish(child);
    let stderr = reader.join().unwrap_or_default();
    assert_eq!(out.status.code(), Some(130), "{:?}\n{stderr}", out.status);
    let s = summary(&report);
    assert_eq!(s["interrupted"], true, "{s:#}");
    assert!(s["arrivals"].as_u64() > Some(0), "{s:#}");
}

/// A terminal's Ctrl-C signals the whole foreground process group. The
/// components live in groups of their own, so they serve through the
/// drain: every request in flight ends with its response, no component is
/// reported dead, and the report of what ran is written.
#[test]
fn ctrl_c_to_the_process_group_drains_through_live_components() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    // Each request sleeps 400 ms upstream: some are always in flight.
    let scenario = mock_scenario(dir.path(), 20, "20s", "400ms");
    let report = dir.path().join("report");
    let mut child = spawn(
        contend()
            .arg("run")
            .arg(&scenario)
            .args(["--timeout", "5s", "--out"])
            .arg(&report)
            // As a shell starts a job: a group of its own, led by contend.
            .process_group(0),
    );
    let contend_pid = child.id();
    wait_for_rows(&report, 2, &mut child);
    // What the terminal does on Ctrl-C: SIGINT to every process of the group.
    contend::sys::signal_group(contend_pid, libc::SIGINT).expect("SIGINT to the group");
    let out = finish(child);
    assert_exit(&out, 130);
    let s = summary(&report);
    assert_eq!(s["interrupted"], true, "{s:#}");
    assert_eq!(s["component_exits"], serde_json::json!([]), "{s:#}");
    let warnings = s["warnings"].to_string();
    assert!(!warnings.contains("died"), "{warnings}");
    // Every request in flight at the signal was answered.
    let arrivals = s["arrivals"].as_u64().unwrap();
    assert!(arrivals > 0, "{s:#}");
    assert_eq!(
        s["outcomes"]["classes"]["2xx"].as_u64(),
        Some(arrivals),
        "{s:#}"
    );
    assert!(!text(&out.stdout).contains("died"), "{}", text(&out.stdout));
}

/// A gateway frozen mid-run (SIGSTOP) makes requests wait for it: the
/// stall is named, with when, and the run is not called generator-bound,
/// since the generator kept its schedule (its own lag stayed small). The
/// lag bound is wide (100 ms) so that a busy test machine's own jitter
/// cannot decide it, while the 2.5 s wait on the gateway is far past it.
#[test]
fn a_frozen_gateway_is_named_and_not_blamed_on_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, report) = start_scenario(
        dir.path(),
        "name = \"robust\"\n[[phases]]\nrate = 200\nduration = \"6s\"\n\
         [upstream]\nkind = \"mock\"\nsleep = \"1ms\"\n[gateway]\nkind = \"reference\"\n\
         [client]\nthreads = 1\nlag_bound = \"100ms\"\n",
        "10s",
    );
    wait_for_rows(&report, 1, &mut child);
    let gateway = child_where(child.id(), "the reference gateway", |pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"gateway"))
    });
    contend::sys::signal(gateway, libc::SIGSTOP).expect("freeze the gateway");
    // The stimulus: the gateway stays frozen this long (nothing to wait on).
    std::thread::sleep(Duration::from_millis(2500));
    contend::sys::signal(gateway, libc::SIGCONT).expect("thaw the gateway");
    let out = finish(child);
    assert_exit(&out, 0);
    let s = summary(&report);
    assert_eq!(s["generator_bound"], false, "{s:#}");
    let stalls = s["component_stalls"].as_array().expect("component_stalls");
    let stall = stalls
        .iter()
        .find(|st| st["component"] == "reference gateway" && st["reason"] == "stopped")
        .unwrap_or_else(|| panic!("the gateway's stall is named: {s:#}"));
    assert_eq!(stall["pid"], gateway);
    let (from, to) = (
        stall["from_s"].as_f64().unwrap(),
        stall["to_s"].as_f64().unwrap(),
    );
    // Frozen 2.5 s; the watcher polls the process state, so on a loaded
    // machine it sees the stop begin late by up to about a second.
    assert!((1.5..3.5).contains(&(to - from)), "{stall:#}");
    // The requests waited for it: the schedule lag shows it, the
    // generator's own lag does not.
    assert!(
        s["schedule_lag_us"]["max"].as_u64().unwrap() > 1_000_000,
        "{s:#}"
    );
    assert!(
        s["generator_lag_us"]["p99"].as_u64().unwrap()
            < s["schedule_lag_us"]["p99"].as_u64().unwrap(),
        "{s:#}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("the reference gateway (pid") && stdout.contains("stalled"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("the generator was the bottleneck"),
        "{stdout}"
    );
}

/// Runs 100/s for 4 s through a gateway of `kind` and SIGKILLs its process
/// (named `kind`, the only such child of contend once load flows: its
/// config check has come and gone) mid-run; `check` sees its pid and its
/// children before the kill. Returns contend's stdout and the component's
/// reported exit (from summary.json), after checking that contend
/// exited 0, nothing of the gateway's group is left, and no request got a
/// 2xx after the death.
fn kill_gateway_mid_run(kind: &str, check: impl FnOnce(u32)) -> (String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, report) = start_scenario(
        dir.path(),
        &format!(
            "name = \"robust\"\n[[phases]]\nrate = 100\nduration = \"4s\"\n\
             [upstream]\nkind = \"mock\"\nsleep = \"1ms\"\n[gateway]\nkind = \"{kind}\"\n"
        ),
        "1s",
    );
    wait_for_rows(&report, 1, &mut child);
    let gateway = child_where(child.id(), kind, |pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == kind)
    });
    check(gateway);
    contend::sys::signal(gateway, libc::SIGKILL).expect("kill the gateway");
    let out = finish(child);
    assert_exit(&out, 0);
    let s = summary(&report);
    let exit = s["component_exits"]
        .as_array()
        .expect("component_exits")
        .iter()
        .find(|e| e["component"] == kind)
        .unwrap_or_else(|| panic!("{kind}'s death is reported: {s:#}"))
        .clone();
    assert_eq!(exit["pid"], gateway);
    assert!(contend::topology::group_members(gateway).is_empty());
    let at_s = exit["at_s"].as_f64().unwrap();
    let later_2xx: u64 = csv_rows(&report)
        .iter()
        .filter(|r| r.start_s >= at_s + 0.5)
        .map(|r| r.ok_2xx)
        .sum();
    assert_eq!(later_2xx, 0, "responses after {kind} died");
    (text(&out.stdout), exit)
}

/// nginx's master killed mid-run leaves its worker serving: contend stops
/// the whole process group then, says so, and leaves nothing of the run.
#[test]
fn a_killed_nginx_master_takes_its_workers_with_it() {
    if !util::component_present(
        "a_killed_nginx_master_takes_its_workers_with_it",
        contend::topology::nginx::find(),
    ) {
        return;
    }
    let (stdout, exit) = kill_gateway_mid_run("nginx", |master| {
        assert!(!children_of(master).is_empty(), "nginx's worker");
    });
    let left = exit["left_running"].as_array().expect("left_running");
    assert!(!left.is_empty(), "its worker was still serving: {exit:#}");
    assert!(
        stdout.contains("went on serving until contend stopped"),
        "{stdout}"
    );
}

/// Sends SIGINT to `child` once its stderr shows a line containing
/// `needle` (its own word that the moment has come), and keeps reading so
/// it never blocks on a full pipe. Returns the reader, which ends with all
/// of stderr.
fn sigint_on_stderr_line(
    child: &mut Child,
    needle: &'static str,
) -> std::thread::JoinHandle<String> {
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut all = String::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains(needle) {
                contend::sys::signal(pid, libc::SIGINT).expect("SIGINT");
                sent = true;
            }
            all.push_str(&line);
            all.push('\n');
        }
        assert!(sent, "no line with {needle:?} on stderr:\n{all}");
        all
    })
}

/// A sweep cut short in a step's warm-up: that step has no row, and no
/// answer is made up from the steps before it (the highest rate within the
/// SLO is not "the last rate that ran"); summary.json and capacity.json
/// say the sweep was interrupted.
#[test]
fn an_interrupted_sweep_makes_up_no_answer() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"sweep\"\nexperiment = \"sweep\"\n[target]\nurl = \"{}\"\n\
             [sweep]\nrates = [100, 200, 300]\nwarmup = \"2s\"\nduration = \"1s\"\nslo = \"100ms\"\n\
             [client]\nthreads = 1\ninterval = \"250ms\"\n",
            server.url()
        ),
    )
    .unwrap();
    let report = dir.path().join("report");
    let mut child = spawn(contend().arg("run").arg(&path).arg("--out").arg(&report));
    let stderr = sigint_on_stderr_line(&mut child, "sweep: step 2/3");
    let out = finish(child);
    let stderr = stderr.join().unwrap_or_default();
    assert_exit(&out, 130);
    let s = summary(&report);
    let sweep = &s["sweep"];
    assert_eq!(sweep["interrupted"], true, "{sweep:#}");
    assert_eq!(
        sweep["steps"].as_array().map(Vec::len),
        Some(1),
        "{sweep:#}"
    );
    assert_eq!(sweep["max_rate_within_slo_per_s"], Value::Null, "{sweep:#}");
    assert_eq!(sweep["slo_held_up_to_per_s"], 100.0, "{sweep:#}");
    let capacity: Value = serde_json::from_str(
        &std::fs::read_to_string(report.join("capacity.json")).unwrap_or_else(|_| "{}".into()),
    )
    .unwrap();
    assert_ne!(capacity["interrupted"], false, "{capacity:#}");
    assert!(
        capacity.get("max_rate_within_slo").is_none(),
        "{capacity:#}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("not known, interrupted"),
        "{stdout}\n{stderr}"
    );
}

/// find-limit cut short in its baseline: no limit was measured, so there
/// is no answer, and none is made up ("every candidate broke").
#[test]
fn an_interrupted_find_limit_makes_up_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fl.toml");
    std::fs::write(
        &path,
        "name = \"fl\"\nexperiment = \"find-limit\"\n\
         [upstream]\nkind = \"mock\"\ncpu = \"20ms\"\n\
         [gateway]\nkind = \"reference\"\nupstream_timeout = \"110ms\"\n\
         [find_limit]\nwarmup = \"2s\"\nduration = \"2s\"\n[client]\nthreads = 1\n",
    )
    .unwrap();
    let report = dir.path().join("report");
    let mut child = spawn(contend().arg("run").arg(&path).arg("--out").arg(&report));
    let stderr = sigint_on_stderr_line(&mut child, "baseline step");
    let out = finish(child);
    let stderr = stderr.join().unwrap_or_default();
    assert_exit(&out, 130);
    let s = summary(&report);
    let f = &s["find_limit"];
    assert_eq!(f["interrupted"], true, "{f:#}");
    let class = &f["classes"][0];
    assert_eq!(class["limit"], Value::Null, "{class:#}");
    assert_eq!(class["interrupted"], true, "{class:#}");
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("every candidate broke"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("no answer"), "{stdout}\n{stderr}");
}

#[test]
fn kill_9_leaves_the_intervals_so_far_and_a_readable_hlog() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(
        contend()
            .args([
                "run",
                "--target",
                &server.url(),
                "--rate",
                "200",
                "--duration",
                "60s",
            ])
            .args(["--timeout", "2s", "--out"])
            .arg(dir.path()),
    );
    wait_for_rows(dir.path(), 2, &mut child);
    contend::sys::signal(child.id(), libc::SIGKILL).expect("kill -9 contend");
    let out = finish(child);
    assert_eq!(out.status.code(), None, "killed: {:?}", out.status);
    assert!(!dir.path().join("summary.json").exists());

    let rows = csv_rows(dir.path());
    assert!(rows.len() >= 2, "{} rows", rows.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.index, i as u64, "rows in order, none missing");
        assert!(row.offered > 0, "{row:?}");
    }
    let hlog = std::fs::read(dir.path().join("latency.hlog")).expect("latency.hlog");
    let histograms: Vec<_> = IntervalLogIterator::new(&hlog)
        .map(|entry| entry.expect("every hlog line decodes"))
        .filter_map(|entry| match entry {
            LogEntry::Interval(h) => Some(h),
            _ => None,
        })
        .collect();
    // The kill can fall between a row's two files: the log lags by at most one.
    assert!(
        histograms.len() + 1 >= rows.len() && histograms.len() <= rows.len(),
        "{} histograms for {} rows",
        histograms.len(),
        rows.len()
    );
    for (h, row) in histograms.iter().zip(&rows) {
        let decoded: hdrhistogram::Histogram<u64> =
            hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut base64_decode(h.encoded_histogram()).as_slice())
                .expect("the histogram decodes");
        assert_eq!(decoded.len(), row.ok_2xx, "interval {}", row.index);
    }
}

#[test]
fn intervals_written_as_the_run_goes_are_what_the_report_holds() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(
        contend()
            .args([
                "run",
                "--target",
                &server.url(),
                "--rate",
                "100",
                "--duration",
                "3s",
            ])
            .args(["--timeout", "2s", "--out"])
            .arg(dir.path()),
    );
    wait_for_rows(dir.path(), 1, &mut child);
    let csv_so_far = std::fs::read(dir.path().join("intervals.csv")).unwrap();
    let hlog_so_far = std::fs::read(dir.path().join("latency.hlog")).unwrap();
    let out = finish(child);
    assert_exit(&out, 0);
    let csv = std::fs::read(dir.path().join("intervals.csv")).unwrap();
    let hlog = std::fs::read(dir.path().join("latency.hlog")).unwrap();
    assert!(csv.len() > csv_so_far.len());
    assert!(
        csv.starts_with(&csv_so_far),
        "intervals.csv was rewritten differently"
    );
    assert!(
        hlog.starts_with(&hlog_so_far),
        "latency.hlog was rewritten differently"
    );
}

/// HAProxy runs as one process (no master-worker mode): killed mid-run it
/// leaves nothing serving; contend reports its death with no process left
/// running, and the requests after it are errors.
#[test]
fn a_killed_haproxy_leaves_nothing_serving() {
    if !util::component_present(
        "a_killed_haproxy_leaves_nothing_serving",
        contend::topology::haproxy::find(),
    ) {
        return;
    }
    let (_, exit) = kill_gateway_mid_run("haproxy", |haproxy| {
        assert!(children_of(haproxy).is_empty(), "no workers of its own");
    });
    assert_eq!(exit["signal"], libc::SIGKILL);
    let left = exit["left_running"].as_array().expect("left_running");
    assert!(left.is_empty(), "nothing of it went on serving: {exit:#}");
}
