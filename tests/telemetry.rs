//! The system under test, seen from inside, through the binary: a
//! component's sampled CPU against the CPU it is known to burn, the
//! components' own counters against the driver's, a component that dies
//! (its rows stop, the summary says when), `[[scrape]]` targets, the
//! hardware classes' cgroups (a CPU quota throttles, and no group is left
//! on any way out: the end, an error, one Ctrl-C, two), and
//! `--metrics-addr` serving the run's progress while it runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use contend::report::components::read_csv;
use contend::topology::telemetry::SourceSeries;

use crate::binary::{
    assert_exit, assert_only_contend_files, contend, finish, run, spawn, summary, text,
};
use crate::robustness::{children_of, has_ended, wait_for, wait_for_rows};
use crate::util;

/// Writes `text` as `dir/NAME.toml` and runs it to its end into `dir/out`.
fn run_scenario(dir: &Path, name: &str, text: &str) -> (std::process::Output, PathBuf) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let out_dir = dir.join("out");
    let out = run(contend()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .arg("--no-progress"));
    (out, out_dir)
}

/// The report folder's `components.csv`, by role.
fn components(dir: &Path) -> Vec<SourceSeries> {
    read_csv(&dir.join("components.csv")).expect("components.csv reads")
}

fn series<'a>(all: &'a [SourceSeries], role: &str) -> &'a SourceSeries {
    all.iter()
        .find(|s| s.role == role)
        .unwrap_or_else(|| panic!("no {role} rows"))
}

fn metric_total(s: &SourceSeries, name: &str) -> f64 {
    s.samples.iter().filter_map(|r| r.metrics.get(name)).sum()
}

/// The mock upstream burns 10 ms of CPU per request (a constant, checked
/// by its own thread clock) at 40/s for 2 s: its processes' CPU, sampled
/// from /proc per interval and added up, is that burn plus the little its
/// HTTP handling costs. Tolerance: at least the burn less two clock ticks
/// (20 ms), at most 15% over it plus 0.1 s.
#[test]
fn a_component_burning_known_cpu_is_sampled_within_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = run_scenario(
        dir.path(),
        "burn",
        "name = \"burn\"\n[[phases]]\nrate = 40\nduration = \"2s\"\n\
         [upstream]\nkind = \"mock\"\nworkers = \"unbounded\"\ncpu = \"10ms\"\ncpu_dist = \"constant\"\n\
         [client]\nthreads = 1\ninterval = \"500ms\"\n",
    );
    assert_exit(&out, 0);
    let s = summary(&report);
    let burnt_s = s["upstream_accounting"]["totals"]["cpu_s"]
        .as_f64()
        .unwrap();
    assert!(
        (0.75..=0.9).contains(&burnt_s),
        "80 requests x 10 ms: {burnt_s}"
    );
    let all = components(&report);
    let upstream = series(&all, "upstream");
    assert!(upstream.samples.len() >= 4, "{upstream:#?}");
    let sampled_s: f64 = upstream.samples.iter().filter_map(|r| r.cpu_s()).sum();
    assert!(
        sampled_s >= burnt_s - 0.02 && sampled_s <= burnt_s * 1.15 + 0.1,
        "sampled {sampled_s:.3} s of CPU for {burnt_s:.3} s burnt"
    );
    // The summary says the same, per request in microseconds.
    let c = &s["components"]["upstream"];
    assert_eq!(c["kind"], "mock upstream");
    assert!(
        (c["cpu_s"].as_f64().unwrap() - sampled_s).abs() < 0.011,
        "{c:#}"
    );
    let per_request = c["cpu_per_request_us"].as_f64().unwrap();
    assert!(
        (9_500.0..=13_000.0).contains(&per_request),
        "{per_request} us per request for 10 ms of burn"
    );
    assert!(c["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{c:#}");
    // Every row is an interval of the driver's: the same index and start.
    let intervals = contend::report::read_intervals_csv(&report.join("intervals.csv")).unwrap();
    for r in &upstream.samples {
        let i = intervals
            .iter()
            .find(|i| i.index == r.index)
            .unwrap_or_else(|| panic!("no interval {}", r.index));
        assert!((i.start_s - r.start_s).abs() < 1e-6, "{r:?} {i:?}");
    }
    assert_only_contend_files(&report);
}

/// The reference gateway with a concurrency limit of 2 in front of an
/// upstream that takes 20 ms a request, at 150/s: some requests get 503.
/// What the gateway's and the upstream's own /metrics counted, interval by
/// interval, adds up to what the driver counted.
#[test]
fn counters_from_metrics_match_the_drivers_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = run_scenario(
        dir.path(),
        "counts",
        "name = \"counts\"\n[[phases]]\nrate = 150\nduration = \"1500ms\"\n\
         [upstream]\nkind = \"mock\"\nworkers = \"unbounded\"\nsleep = \"20ms\"\n\
         [gateway]\nkind = \"reference\"\nconcurrency = { max = 2 }\n\
         [client]\nthreads = 1\ninterval = \"250ms\"\n",
    );
    assert_exit(&out, 0);
    let s = summary(&report);
    let outcomes = &s["outcomes"]["classes"];
    let (ok, refused) = (
        outcomes["2xx"].as_u64().unwrap() as f64,
        outcomes["503"].as_u64().unwrap() as f64,
    );
    assert!(refused > 0.0 && ok > 0.0, "{outcomes}");
    let all = components(&report);
    let gateway = series(&all, "gateway");
    assert_eq!(gateway.kind, "reference gateway");
    let upstream = series(&all, "upstream");
    // A read that fails (a machine so busy that the page takes longer
    // than half an interval) leaves the next interval's counters out, and
    // says so: then the totals can only fall short.
    let unread = s["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap_or("").contains("could not be read"));
    let counted = [
        (metric_total(gateway, "responses"), ok + refused),
        (metric_total(gateway, "status_503"), refused),
        (metric_total(upstream, "completed"), ok),
    ];
    for (theirs, ours) in counted {
        if unread {
            assert!(theirs <= ours, "{theirs} > {ours}");
        } else {
            assert_eq!(theirs, ours, "{:#}", s["components"]);
        }
    }
    assert_eq!(metric_total(gateway, "status_504"), 0.0);
    // The limit shows in the gateway's in-flight gauge, never above 2.
    let peak = gateway
        .samples
        .iter()
        .filter_map(|r| r.metrics.get("in_flight"))
        .fold(0.0, |a: f64, &b| a.max(b));
    assert!(peak <= 2.0, "in flight {peak}");
    assert_eq!(
        s["components"]["gateway"]["metrics"]["status_503"].as_f64(),
        Some(refused)
    );
}

/// A mock upstream killed after the first interval: its rows stop with one
/// that says it is gone, the summary says when, and the gateway in front
/// (which lives on) keeps being read to the end.
#[test]
fn a_component_that_dies_stops_being_sampled_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dies.toml");
    std::fs::write(
        &path,
        "name = \"dies\"\n[[phases]]\nrate = 50\nduration = \"2s\"\n\
         [upstream]\nkind = \"mock\"\nsleep = \"1ms\"\n\
         [gateway]\nkind = \"reference\"\nupstream_timeout = \"200ms\"\n\
         [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"1s\"\n",
    )
    .unwrap();
    let report = dir.path().join("out");
    let mut child = spawn(
        contend()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(&report)
            .arg("--no-progress"),
    );
    let upstream = wait_for("the mock upstream", || {
        children_of(child.id()).first().copied()
    });
    wait_for_rows(&report, 2, &mut child);
    contend::sys::signal(upstream, libc::SIGKILL).expect("kill the mock upstream");
    let out = finish(child);
    assert_exit(&out, 0);
    let s = summary(&report);
    let gone_at = s["components"]["upstream"]["gone_at_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no gone_at_s: {:#}", s["components"]));
    let died_at = s["component_exits"][0]["at_s"].as_f64().unwrap();
    assert!(
        gone_at >= 0.5 && gone_at <= died_at + 0.5,
        "gone {gone_at}, died {died_at}"
    );
    let all = components(&report);
    let up = series(&all, "upstream");
    let last = up.samples.last().unwrap();
    assert!(!last.alive, "{last:?}");
    assert!(up.samples[..up.samples.len() - 1].iter().all(|r| r.alive));
    let gw = series(&all, "gateway");
    assert!(
        gw.samples.len() > up.samples.len() && gw.samples.iter().all(|r| r.alive),
        "the gateway {} rows, the upstream {}",
        gw.samples.len(),
        up.samples.len()
    );
    assert!(last.start_s <= gone_at, "{last:?}");
}

/// `[[scrape]]`: a process by PID (this test's own child, burning CPU) and
/// a Prometheus endpoint (another contend's `--metrics-addr`), each read
/// every interval into the same file.
#[test]
fn scrape_targets_are_read_every_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut busy = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .expect("sh");
    let exporter = contend::exporter::Exporter::start("127.0.0.1:0").unwrap();
    exporter.step(5.0);
    let (out, report) = run_scenario(
        dir.path(),
        "scrape",
        &format!(
            "name = \"scrape\"\n[[phases]]\nrate = 20\nduration = \"1s\"\n\
             [[scrape]]\nname = \"busy\"\npid = {}\n\
             [[scrape]]\nname = \"exp\"\nurl = \"http://{}/metrics\"\nseries = [\"contend_step_rate_per_second\"]\n\
             [client]\ninterval = \"250ms\"\n",
            busy.id(),
            exporter.addr()
        ),
    );
    let _ = busy.kill();
    let _ = busy.wait();
    assert_exit(&out, 0);
    let all = components(&report);
    let b = series(&all, "busy");
    assert_eq!(b.kind, "process");
    let cores: Vec<f64> = b.samples.iter().filter_map(|r| r.cpu_cores).collect();
    assert!(cores.len() >= 3, "{b:#?}");
    // A shell spinning on a 2-core machine shared with the test's own work
    // (and, in a loaded suite, with every other test: it got 0.30 cores
    // once): read as spinning, not as idle.
    let mean = cores.iter().sum::<f64>() / cores.len() as f64;
    assert!(mean > 0.1, "the spinning shell used {mean:.2} cores");
    let e = series(&all, "exp");
    assert_eq!(e.kind, "metrics");
    assert!(
        e.samples
            .iter()
            .all(|r| r.metrics.get("contend_step_rate_per_second") == Some(&5.0)),
        "{e:#?}"
    );
    let s = summary(&report);
    assert_eq!(s["components"]["busy"]["kind"], "process");
}

// ---- hardware classes -------------------------------------------------------

/// A find-limit scenario: the mock upstream at 10 ms a request behind the
/// reference gateway, short steps, `hardware` as given.
fn find_limit_text(hardware: &str, warmup: &str, extra: &str) -> String {
    format!(
        "name = \"fl\"\nexperiment = \"find-limit\"\n\
         [upstream]\nkind = \"mock\"\nworkers = \"unbounded\"\non_disconnect = \"run\"\ncpu = \"10ms\"\n\
         [gateway]\nkind = \"reference\"\nupstream_timeout = \"100ms\"\n\
         [find_limit]\nmin = 1\nmax = 4\nwarmup = \"{warmup}\"\nduration = \"500ms\"\nrepeats = 1\nbaseline = false\n\
         hardware = [{hardware}]\n\
         [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"2s\"\n{extra}"
    )
}

/// The cgroups of `contend` process `pid` in the cpu hierarchy.
fn groups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("contend-{pid}-");
    std::fs::read_dir("/sys/fs/cgroup/cpu")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Whether this host lets contend make a CPU-quota cgroup (as root, with
/// the cpu controller): the quota tests need it.
fn quota_possible(test: &str) -> bool {
    let found = contend::topology::cgroup::Cgroup::create(contend::topology::cgroup::Limits {
        cpus: Some(1.0),
        memory_bytes: None,
    })
    .map(drop);
    util::component_present(test, found)
}

/// A class of a tenth of a core (a CFS quota: 10 ms of CPU per 100 ms
/// period) at twice its capacity: one request uses a period's quota, so
/// the upstream's CFS periods are throttled, per interval in
/// components.csv and per step, and the cgroup is gone when contend ends.
/// (So small a quota is reached even on a busy test machine.)
#[test]
fn a_cpu_quota_class_throttles_the_upstream_and_leaves_no_cgroup() {
    if !quota_possible("a_cpu_quota_class_throttles_the_upstream_and_leaves_no_cgroup") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fl.toml");
    std::fs::write(&path, find_limit_text("{ cpus = 0.1 }", "250ms", "")).unwrap();
    let report = dir.path().join("out");
    let child = spawn(
        contend()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(&report)
            .arg("--no-progress"),
    );
    let pid = child.id();
    let out = finish(child);
    assert_exit(&out, 0);
    assert!(groups_of(pid).is_empty(), "left: {:?}", groups_of(pid));
    let s = summary(&report);
    let f = &s["find_limit"];
    let class = &f["classes"][0];
    assert_eq!(class["class"], "cpus=0.1");
    assert_eq!(class["placement"], "quota");
    assert_eq!(class["cores"], 0.1);
    let steps = f["steps"].as_array().unwrap();
    let throttled: Vec<f64> = steps
        .iter()
        .map(|s| s["throttled_share"].as_f64().expect("throttled_share"))
        .collect();
    assert!(
        throttled.iter().any(|&t| t > 0.0),
        "at twice its capacity the quota throttles: {throttled:?}"
    );
    let all = components(&report);
    let up = series(&all, "upstream");
    assert!(
        up.samples
            .iter()
            .any(|r| r.throttled_periods.unwrap_or(0) > 0),
        "{up:#?}"
    );
    // Held to a tenth of a core: no interval's CPU is far past it (the
    // CPU clock's 10 ms ticks are 0.04 cores of a 250 ms interval).
    for r in up.samples.iter().filter(|r| r.duration_s > 0.2) {
        assert!(r.cpu_cores.unwrap_or(0.0) <= 0.25, "{r:?}");
    }
    let stdout = text(&out.stdout);
    assert!(stdout.contains("cpus=0.1 (quota)"), "{stdout}");
}

/// A run that fails after its class's cgroup was made (a `[[scrape]] pid`
/// that is not running is refused when the first step starts) leaves no
/// cgroup behind.
#[test]
fn a_failed_run_leaves_no_cgroup() {
    if !quota_possible("a_failed_run_leaves_no_cgroup") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fl.toml");
    // PIDs are below 2^22 on Linux: this one runs nowhere.
    let scenario = find_limit_text(
        "{ cpus = 1.0 }",
        "250ms",
        "[[scrape]]\nname = \"ghost\"\npid = 2147483000\n",
    );
    std::fs::write(&path, scenario).unwrap();
    let child = spawn(
        contend()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join("out")),
    );
    let pid = child.id();
    let out = finish(child);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("no process 2147483000 is running"),
        "{}",
        text(&out.stderr)
    );
    assert!(groups_of(pid).is_empty(), "left: {:?}", groups_of(pid));
}

/// Starts a quota-class find-limit with long warm-ups and waits until the
/// mock upstream is inside its cgroup: the moment to press Ctrl-C.
fn start_quota_run(dir: &Path) -> (Child, PathBuf) {
    let path = dir.join("fl.toml");
    std::fs::write(&path, find_limit_text("{ cpus = 1.0 }", "20s", "")).unwrap();
    let child = spawn(
        contend()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--no-progress"),
    );
    let pid = child.id();
    let group = wait_for("the class's cgroup with the upstream in it", || {
        groups_of(pid).into_iter().find(|g| {
            std::fs::read_to_string(g.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        })
    });
    (child, group)
}

/// One Ctrl-C: the step drains, the report is written, the group goes.
#[test]
fn ctrl_c_once_removes_the_cgroup() {
    if !quota_possible("ctrl_c_once_removes_the_cgroup") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (child, group) = start_quota_run(dir.path());
    let pid = child.id();
    contend::sys::signal(pid, libc::SIGINT).expect("SIGINT");
    let out = finish(child);
    assert_exit(&out, 130);
    assert!(!group.exists(), "{} is left", group.display());
    assert!(groups_of(pid).is_empty(), "left: {:?}", groups_of(pid));
}

/// Two Ctrl-Cs: contend exits at once, without destructors; the exit path
/// stops the children and removes the group all the same.
#[test]
fn ctrl_c_twice_removes_the_cgroup() {
    if !quota_possible("ctrl_c_twice_removes_the_cgroup") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, group) = start_quota_run(dir.path());
    let pid = child.id();
    let upstream = wait_for("the mock upstream", || children_of(pid).first().copied());
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    contend::sys::signal(pid, libc::SIGINT).expect("first SIGINT");
    // The first signal is heard once it says so; then the second.
    wait_for("the stopping line", || {
        rx.try_recv()
            .ok()
            .filter(|l| l.contains("stopping"))
            .map(|_| ())
    });
    // A second Ctrl-C, not a repeat of the first.
    std::thread::sleep(contend::shutdown::REPEAT_WINDOW + Duration::from_millis(100));
    contend::sys::signal(pid, libc::SIGINT).expect("second SIGINT");
    let out = finish(child);
    let _ = reader.join();
    assert_eq!(out.status.code(), Some(130), "{:?}", out.status);
    assert!(!group.exists(), "{} is left", group.display());
    wait_for("the mock upstream to be gone", || {
        has_ended(upstream).then_some(())
    });
}

// ---- the run's own progress -------------------------------------------------

/// `--metrics-addr` serves the run's progress while it runs: scraped
/// between intervals, its counters are those of the intervals written.
#[test]
fn metrics_addr_serves_progress_while_the_run_goes() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let report = dir.path().join("out");
    let mut child = spawn(
        contend()
            .arg("run")
            .args([
                "--target",
                &server.url(),
                "--rate",
                "100",
                "--duration",
                "3s",
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .arg("--out")
            .arg(&report)
            .arg("--no-progress"),
    );
    wait_for_rows(&report, 1, &mut child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (status, page) =
        contend::topology::http::get_within(addr, "/metrics", Duration::from_secs(5)).unwrap();
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        page.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{page}"))
    };
    let offered = value("contend_offered_total ");
    let intervals = value("contend_intervals_total ");
    assert!(intervals >= 1.0, "{page}");
    // 100/s with one-second intervals: 100 arrivals per closed interval.
    assert!(
        (offered - 100.0 * intervals).abs() <= 2.0,
        "{offered} offered in {intervals} intervals\n{page}"
    );
    assert!(
        page.contains("contend_interval_latency_seconds{quantile=\"0.99\"}"),
        "{page}"
    );
    let out = finish(child);
    assert_exit(&out, 0);
    let bad = run(contend()
        .args([
            "run",
            "--target",
            &server.url(),
            "--rate",
            "10",
            "--duration",
            "1s",
        ])
        .args(["--metrics-addr", "nonsense"]));
    assert_exit(&bad, 2);
    assert!(
        text(&bad.stderr).contains("--metrics-addr \"nonsense\" is not IP:PORT"),
        "{}",
        text(&bad.stderr)
    );
}
