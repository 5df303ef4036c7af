//! Resource limits and preflight through the `contend` binary, and the
//! component failures a user can fix: a port in use, nginx or HAProxy
//! missing or failing its config test.
//!
//! Proves: the open-file soft limit is raised to the hard one at start; a
//! run whose connections cannot fit in the hard limit is refused before it
//! starts, with the `ulimit -n` fix and exit 2; a run that runs out of file
//! descriptors part-way counts `connect_error`s, warns, writes its report
//! and exits 0; `contend doctor` prints every check with its status and
//! fix; each failure names its fix. Every target is on loopback; the limits
//! are set on the child only (`setrlimit` between fork and exec).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::Command;

use serde_json::Value;

use crate::binary::{assert_exit, contend, run, summary, text};
use crate::util;

/// Makes `cmd`'s process start with RLIMIT_NOFILE `soft`/`hard` and, when
/// `fill_to` is given, with every descriptor number from 3 below it taken
/// (by /dev/null), as if a parent had leaked them: the run then has fewer
/// than its limit says.
fn with_nofile(cmd: &mut Command, soft: u64, hard: u64, fill_to: Option<i32>) {
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions (open, dup2, setrlimit). Overwriting a
    // descriptor the parent left open is harmless: all of them are
    // close-on-exec, and stdio is already in place on 0-2.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fill_to) = fill_to {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if null < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for fd in 3..fill_to {
                    // dup2 clears close-on-exec on the copy: it survives exec.
                    if fd != null && libc::dup2(null, fd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            let limit = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn check<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["preflight"]
        .as_array()
        .expect("preflight is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no preflight check {name} in {:#}", summary["preflight"]))
}

fn count(summary: &Value, class: &str) -> u64 {
    summary["outcomes"]["classes"][class].as_u64().unwrap_or(0)
}

/// With a hard limit of 256, 1000 connections cannot fit: refused before
/// the run (no report folder), exit 2, the `ulimit -n` fix on stderr.
#[test]
fn a_run_that_cannot_fit_its_connections_is_refused_with_the_ulimit_fix() {
    let server = util::http_server(|_| std::time::Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mut cmd = contend();
    cmd.args([
        "run",
        "--target",
        &server.url(),
        "--rate",
        "10",
        "--duration",
        "1s",
    ])
    .args([
        "--threads",
        "1",
        "--max-connections",
        "1000",
        "--no-progress",
        "--out",
    ])
    .arg(&out);
    with_nofile(&mut cmd, 256, 256, None);
    let result = run(&mut cmd);
    assert_exit(&result, 2);
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("the open-file limit is too low for this run"),
        "{stderr}"
    );
    // 1000 connections + 64 + 8 per driver thread.
    assert!(stderr.contains("`ulimit -n 1072`"), "{stderr}");
    assert!(stderr.contains("lower max_connections to 184"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "a refused run writes no report");
}

/// A soft limit of 64 under a hard one of 4096 is raised at start, so 1000
/// connections fit; the summary records the checks, all but SKIP as OK.
#[test]
fn the_soft_limit_is_raised_to_the_hard_one_and_the_checks_are_kept() {
    let server = util::http_server(|_| std::time::Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mut cmd = contend();
    cmd.args([
        "run",
        "--target",
        &server.url(),
        "--rate",
        "20",
        "--duration",
        "1s",
    ])
    .args([
        "--threads",
        "1",
        "--max-connections",
        "1000",
        "--no-progress",
        "--out",
    ])
    .arg(&out);
    with_nofile(&mut cmd, 64, 4096, None);
    let result = run(&mut cmd);
    assert_exit(&result, 0);
    let s = summary(&out);
    let nofile = check(&s, "nofile");
    assert_eq!(nofile["status"], "ok", "{nofile:#}");
    assert_eq!(nofile["value"], "4096 (hard 4096)", "{nofile:#}");
    assert_eq!(nofile["needed"], "1072", "{nofile:#}");
    for name in [
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
    ] {
        let c = check(&s, name);
        // 20/s on keep-alive asks nothing of a Linux host's defaults.
        assert!(c["status"] == "ok" || c["status"] == "skip", "{c:#}");
    }
    assert!(count(&s, "2xx") > 0, "{s:#}");
}

/// Descriptors leaked by a parent leave the run fewer than its limit says:
/// the connects past them fail with EMFILE mid-run. Each is a counted
/// `connect_error`, the summary and the console warn with the fix, the
/// report is written and the exit is 0.
#[test]
fn running_out_of_descriptors_mid_run_counts_connect_errors_and_warns() {
    // Holds every connection open without answering, so each arrival
    // needs a connection of its own until its client timeout.
    let server = util::raw_server(|mut stream| {
        util::read_request_head(&mut stream);
        let mut sink = [0u8; 64];
        let _ = std::io::Read::read(&mut stream, &mut sink);
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mut cmd = contend();
    cmd.args([
        "run",
        "--target",
        &server.url(),
        "--rate",
        "300",
        "--duration",
        "1s",
    ])
    .args([
        "--timeout",
        "500ms",
        "--threads",
        "1",
        "--max-connections",
        "150",
    ])
    .args(["--no-progress", "--out"])
    .arg(&out);
    // 150 connections + 72 fit in 256, so the run starts; with 3..200
    // taken, about 40 connections can be open.
    with_nofile(&mut cmd, 256, 256, Some(200));
    let result = run(&mut cmd);
    assert_exit(&result, 0);
    let stdout = text(&result.stdout);
    let s = summary(&out);
    let connect_errors = count(&s, "connect_error");
    assert!(connect_errors > 0, "no connect_error counted:\n{s:#}");
    let outcomes: u64 = s["outcomes"]["classes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        outcomes,
        s["arrivals"].as_u64().unwrap(),
        "one outcome per arrival"
    );
    let warnings: Vec<&str> = s["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let warning = warnings
        .iter()
        .find(|w| w.contains("lack of file descriptors (EMFILE)"))
        .unwrap_or_else(|| panic!("no EMFILE warning in {warnings:#?}"));
    assert!(warning.contains("ulimit -n"), "{warning}");
    let counted: u64 = warning
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the warning starts with its count");
    assert!(
        counted > 0 && counted <= connect_errors,
        "{counted} EMFILE of {connect_errors} connect errors"
    );
    assert!(stdout.contains("lack of file descriptors"), "{stdout}");
    for file in ["intervals.csv", "latency.hgrm", "latency.hlog"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
}

/// `contend doctor` prints one line per check with its status, and the fix
/// under a WARN: here the open-file limit against 1000 connections.
#[test]
fn doctor_prints_every_check_and_the_fix_of_each_warning() {
    let mut cmd = contend();
    cmd.args([
        "doctor",
        "--max-connections",
        "1000",
        "--rate",
        "100",
        "--threads",
        "1",
    ]);
    with_nofile(&mut cmd, 256, 256, None);
    let result = run(&mut cmd);
    assert_exit(&result, 0);
    let stdout = text(&result.stdout);
    assert!(
        stdout.starts_with(
            "Checked against: up to 1000 connections, 100/s at peak, 1 driver threads"
        ),
        "{stdout}"
    );
    for name in [
        "nofile",
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
        "nginx",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"));
        let status = line.split_whitespace().next().unwrap_or("");
        assert!(["OK", "WARN", "SKIP"].contains(&status), "{line}");
    }
    assert!(stdout.contains("WARN  nofile = 256 (hard 256)"), "{stdout}");
    assert!(stdout.contains("fix: `ulimit -n 1072`"), "{stdout}");
    assert!(stdout.contains("setting(s) will limit the run"), "{stdout}");
}

/// A scenario file that does not exist is bad input for `doctor` too.
#[test]
fn doctor_with_a_missing_scenario_exits_2() {
    let result = run(contend().args(["doctor", "/nonexistent/scenario.toml"]));
    assert_exit(&result, 2);
    let stderr = text(&result.stderr);
    assert!(stderr.contains("/nonexistent/scenario.toml"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A listener already on the port: the gateway and the mock upstream each
/// say so and name the fix, exit 1, no panic.
#[test]
fn a_port_in_use_names_the_fix() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "upstream = \"http://127.0.0.1:9\"\n[[routes]]\nprefix = \"/\"\n",
    )
    .unwrap();

    let gateway = run(contend()
        .args(["gateway", "--config"])
        .arg(&config)
        .args(["--listen", &addr]));
    assert_exit(&gateway, 1);
    let stderr = text(&gateway.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(stderr.contains("pick a free port"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let upstream = run(contend().args(["upstream", "--listen", &addr]));
    assert_exit(&upstream, 1);
    let stderr = text(&upstream.stderr);
    assert!(stderr.contains(&format!("binding {addr}")), "{stderr}");
    assert!(stderr.contains("pick a free port"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(held);
}

/// What differs between the gateway programs contend starts from the
/// system, for the tests of their failures.
struct Program {
    kind: &'static str,
    find: fn() -> contend::error::Result<std::path::PathBuf>,
    find_among:
        fn(std::vec::IntoIter<std::path::PathBuf>) -> contend::error::Result<std::path::PathBuf>,
    template: &'static str,
    /// A line of the template, and a directive the program rejects put after it.
    rejected: (&'static str, &'static str),
    /// What the error says of that directive (its check, its complaint).
    check_says: [&'static str; 2],
    /// The template's line that binds contend's port, and its directive.
    listen: (&'static str, &'static str),
}

const PROGRAMS: [Program; 2] = [
    Program {
        kind: "nginx",
        find: contend::topology::nginx::find,
        find_among: contend::topology::nginx::find_among,
        template: contend::topology::nginx::EMBEDDED_TEMPLATE,
        rejected: ("proxy_next_upstream off;", "proxy_pass_everything on;"),
        check_says: [
            "its config test (`nginx -t`) failed",
            "unknown directive \"proxy_pass_everything\"",
        ],
        listen: ("listen {{listen}};", "listen"),
    },
    Program {
        kind: "haproxy",
        find: contend::topology::haproxy::find,
        find_among: contend::topology::haproxy::find_among,
        template: contend::topology::haproxy::EMBEDDED_TEMPLATE,
        rejected: ("    default_backend upstream", "proxy_pass_everything on"),
        check_says: [
            "its config check (`haproxy -c`) failed",
            "unknown keyword 'proxy_pass_everything'",
        ],
        listen: ("    bind {{listen}}", "bind"),
    },
];

/// Runs a scenario with `[gateway] kind = program.kind` and `template`
/// (written to a temporary folder) against a loopback server; returns
/// stderr after checking the exit code is 1 and nothing panicked.
fn run_gateway_template(program: &Program, template: &str) -> String {
    let server = util::http_server(|_| std::time::Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let template_path = dir.path().join("gateway.template");
    std::fs::write(&template_path, template).unwrap();
    let scenario = dir.path().join("gateway.toml");
    std::fs::write(
        &scenario,
        format!(
            "[[phases]]\nrate = 10\nduration = \"1s\"\n\n[gateway]\nkind = {:?}\ntemplate = {:?}\n",
            program.kind,
            template_path.display().to_string()
        ),
    )
    .unwrap();
    let result = run(contend()
        .arg("run")
        .arg(&scenario)
        .args(["--target", &server.url(), "--no-progress", "--out"])
        .arg(dir.path().join("report")));
    assert_exit(&result, 1);
    let stderr = text(&result.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// No nginx or HAProxy where it is looked for: the error names the
/// install command and the embedded gateway.
#[test]
fn a_missing_gateway_program_names_the_install_and_the_alternative() {
    let dir = tempfile::tempdir().unwrap();
    for p in &PROGRAMS {
        let candidates = vec![
            dir.path().join(p.kind),
            dir.path().join("sbin").join(p.kind),
        ];
        let err = (p.find_among)(candidates.into_iter()).expect_err("none in an empty folder");
        assert_eq!(err.exit_code(), 1);
        let message = err.to_string();
        let kind = p.kind;
        assert!(
            message.starts_with(&format!("{kind}: {kind} is not installed")),
            "{message}"
        );
        assert!(
            message.contains(&format!("apt-get install {kind}")),
            "{message}"
        );
        assert!(message.contains("kind = \"reference\""), "{message}");
    }
}

/// A template the program rejects: its config check fails before it
/// starts, and the error shows the complaint, the line, and the fix.
#[test]
fn a_gateway_template_that_fails_its_check_names_the_line_and_the_fix() {
    for p in &PROGRAMS {
        let test = format!(
            "a_gateway_template_that_fails_its_check_names_the_line_and_the_fix ({})",
            p.kind
        );
        if !crate::util::component_present(&test, (p.find)()) {
            continue;
        }
        let (after, rejected) = p.rejected;
        let indent = "    ";
        let broken = p
            .template
            .replace(after, &format!("{after}\n{indent}{rejected}"));
        assert_ne!(
            broken, p.template,
            "{}: the template has no {after:?}",
            p.kind
        );
        let stderr = run_gateway_template(p, &broken);
        for says in p.check_says {
            assert!(
                stderr.contains(says),
                "{}: {says:?} missing in {stderr}",
                p.kind
            );
        }
        assert!(
            stderr.contains(&format!("of the rendered config is `{rejected}`")),
            "{stderr}"
        );
        assert!(stderr.contains("fix the template"), "{stderr}");
    }
}

/// A template that binds a port in use passes the config check (which
/// binds nothing) but the program cannot start: the error says a port is
/// in use and how to find and free it.
#[test]
fn a_gateway_on_a_port_in_use_names_the_fix() {
    for p in &PROGRAMS {
        let test = format!("a_gateway_on_a_port_in_use_names_the_fix ({})", p.kind);
        if !crate::util::component_present(&test, (p.find)()) {
            continue;
        }
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let (line, directive) = p.listen;
        let indent = &line[..line.len() - line.trim_start().len()];
        let end = if p.kind == "nginx" { ";" } else { "" };
        let template = p.template.replace(
            line,
            &format!("{line}\n{indent}{directive} 127.0.0.1:{port}{end}"),
        );
        assert_ne!(
            template, p.template,
            "{}: the template has no {line:?}",
            p.kind
        );
        let stderr = run_gateway_template(p, &template);
        assert!(stderr.contains("Address already in use"), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "a `{directive}` of the template names a port in use"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("free that port or change it"), "{stderr}");
        drop(held);
    }
}
