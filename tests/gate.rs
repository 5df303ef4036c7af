//! The CI gate through the binary: thresholds over a real run (exit 0 and
//! 3), malformed thresholds (exit 2 with the position), `compare` of real
//! runs against a fast and a slow loopback server, `--repeat`, `--quiet`
//! and JUnit XML read back with a small well-formedness check; `compare` of
//! synthetic report folders for the latency slack measured from the
//! baseline's noise and the warning of an interrupted run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::binary::{assert_exit, contend, run, summary, text};
use crate::util;

/// A 1 s scenario at `rate` against `url`, reporting every 100 ms, with
/// the extra TOML `extra` appended.
fn scenario(dir: &Path, url: &str, rate: u32, extra: &str) -> PathBuf {
    let path = dir.join(format!("gate-{rate}-{}.toml", extra.len()));
    std::fs::write(
        &path,
        format!(
            "name = \"gate\"\n\n[[phases]]\nrate = {rate}\nduration = \"1s\"\n\n[target]\nurl = \"{url}\"\n\n\
             [client]\ninterval = \"100ms\"\ntimeout = \"2s\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// JUnit XML as a CI system reads it: element names with their attributes,
/// in document order; panics unless the document is well formed (one
/// root, every tag closed in order, attribute values quoted, no raw `<`
/// or `&` outside entities).
fn parse_xml(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
    let body = xml
        .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
        .expect("XML declaration")
        .trim();
    let mut elements = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = body;
    let mut roots = 0;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let chars = &rest[..lt];
        for (i, _) in chars.match_indices('&') {
            let entity = &chars[i..chars[i..]
                .find(';')
                .map(|j| i + j + 1)
                .expect("entity ends with ;")];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity)
                    || entity.starts_with("&#"),
                "bad entity {entity}"
            );
        }
        assert!(
            !open.is_empty() || chars.trim().is_empty(),
            "text outside the root: {chars:?}"
        );
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').expect("tag ends with >");
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name),
                "closing tag out of order"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = tag[..name_end].to_string();
        let mut attrs = Vec::new();
        let mut a = tag[name_end..].trim();
        while !a.is_empty() {
            let eq = a.find("=\"").expect("attribute is name=\"value\"");
            let key = a[..eq].trim().to_string();
            let value_end = a[eq + 2..].find('"').expect("attribute value closes") + eq + 2;
            let value = a[eq + 2..value_end].to_string();
            assert!(!value.contains('<'), "raw < in an attribute");
            attrs.push((
                key,
                value
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&"),
            ));
            a = a[value_end + 1..].trim();
        }
        if open.is_empty() {
            roots += 1;
        }
        if !self_closing {
            open.push(name.clone());
        }
        elements.push((name, attrs));
    }
    assert!(open.is_empty(), "unclosed {open:?}");
    assert_eq!(roots, 1, "one root element");
    elements
}

fn attr<'a>(element: &'a (String, Vec<(String, String)>), name: &str) -> &'a str {
    element
        .1
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} on {element:?}"))
}

/// (testcase names, names of those with a failure) from JUnit XML.
fn junit_cases(path: &Path) -> (Vec<(String, bool)>, (String, String)) {
    let xml = std::fs::read_to_string(path).expect("the JUnit file");
    let elements = parse_xml(&xml);
    assert_eq!(elements[0].0, "testsuites");
    let counts = (
        attr(&elements[0], "tests").to_string(),
        attr(&elements[0], "failures").to_string(),
    );
    let mut cases: Vec<(String, bool)> = Vec::new();
    for e in &elements {
        match e.0.as_str() {
            "testcase" => cases.push((attr(e, "name").to_string(), false)),
            "failure" => cases.last_mut().expect("failure inside a testcase").1 = true,
            _ => {}
        }
    }
    (cases, counts)
}

#[test]
fn thresholds_pass_with_exit_0_and_fail_with_exit_3_and_junit() {
    let server = util::http_server(|_| Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        &server.url(),
        100,
        "\n[thresholds]\nchecks = [\"p99 < 5s\", \"error_rate < 1%\", \"rate(204) >= 99%\"]\n",
    );
    let pass_dir = dir.path().join("pass");
    let out = run(contend()
        .arg("run")
        .arg(&file)
        .args([
            "--no-progress",
            "--threshold",
            "achieved_rate_per_s > 50",
            "--out",
        ])
        .arg(&pass_dir));
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Thresholds:") && stdout.contains("thresholds: PASS (4 of 4 held)"),
        "{stdout}"
    );
    let s = summary(&pass_dir);
    let results = s["thresholds"].as_array().expect("thresholds array");
    let exprs: Vec<&str> = results
        .iter()
        .map(|r| r["expr"].as_str().unwrap())
        .collect();
    assert_eq!(
        exprs,
        [
            "p99 < 5s",
            "error_rate < 1%",
            "rate(204) >= 99%",
            "achieved_rate_per_s > 50"
        ]
    );
    assert!(results.iter().all(|r| r["pass"] == true), "{results:#?}");
    assert_eq!(results[1]["value"], 0.0);

    // Two more: one that fails on a real value, one on a value the summary lacks.
    let fail_dir = dir.path().join("fail");
    let junit = dir.path().join("junit.xml");
    let out = run(contend()
        .arg("run")
        .arg(&file)
        .args([
            "--quiet",
            "--threshold",
            "p50 > 1s",
            "--threshold",
            "latency_by_class_us.client_timeout.p99 < 1000000",
            "--junit",
        ])
        .arg(&junit)
        .arg("--out")
        .arg(&fail_dir));
    assert_exit(&out, 3);
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("Requests/sec"),
        "--quiet prints only verdicts:\n{stdout}"
    );
    assert!(stdout.contains("FAIL p50 > 1s: "), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL latency_by_class_us.client_timeout.p99 < 1000000: no such value in the summary \
             (`client_timeout` is absent)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("thresholds: FAIL (2 of 5 failed)"),
        "{stdout}"
    );
    let s = summary(&fail_dir);
    let results = s["thresholds"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[3]["pass"], false);
    assert!(
        results[3]["value"].as_f64().unwrap() < 1e6,
        "the p50 is real: {}",
        results[3]
    );
    assert_eq!(results[4]["value"], Value::Null);
    let (cases, counts) = junit_cases(&junit);
    assert_eq!(counts, ("5".to_string(), "2".to_string()));
    assert_eq!(
        cases,
        [
            ("p99 < 5s".to_string(), false),
            ("error_rate < 1%".to_string(), false),
            ("rate(204) >= 99%".to_string(), false),
            ("p50 > 1s".to_string(), true),
            (
                "latency_by_class_us.client_timeout.p99 < 1000000".to_string(),
                true
            ),
        ]
    );
    // `contend report` shows the saved verdicts again.
    let out = run(contend().arg("report").arg(&fail_dir));
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("thresholds: FAIL (2 of 5 failed)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn malformed_thresholds_exit_2_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    // Flags: the column within the expression. Nothing runs (the port is never contacted).
    let out = run(contend().args([
        "run",
        "--target",
        "http://127.0.0.1:9/",
        "--rate",
        "10",
        "--threshold",
        "p99 < 25xs",
    ]));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#"--threshold "p99 < 25xs": col 7: expected a duration like 250ms, found `25xs`"#
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A scenario file: file:line:col of the bad character.
    let file = scenario(
        dir.path(),
        "http://127.0.0.1:9",
        10,
        "\n[thresholds]\nchecks = [\"p99 < 1s\", \"p99 < 25xs\"]\n",
    );
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("checks"))
        .unwrap()
        + 1;
    let out = run(contend().arg("run").arg(&file));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:{line}:30: threshold `p99 < 25xs`: expected a duration like 250ms",
            file.display()
        )),
        "{stderr}"
    );
    // An unknown member of [thresholds] is refused like any other.
    let file = scenario(
        dir.path(),
        "http://127.0.0.1:9",
        10,
        "\n[thresholds]\ncheck = [\"p99 < 1s\"]\n",
    );
    let out = run(contend().arg("run").arg(&file));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("unknown field `check`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn thresholds_on_values_this_run_cannot_hold_exit_2_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("never");
    // Port 9 on loopback refuses: were the load started, the run would take
    // its full second and exit 0 or 3, and write the report folder.
    let keys = "\n[[keys]]\nname = \"ui\"\n\n[[keys]]\nname = \"export\"\n";
    let file = scenario(dir.path(), "http://127.0.0.1:9", 10, keys);
    let named = "use a named metric (p50, p90, p99, p99.9, p99.99, max, mean, error_rate, \
                 rate(STATUS|Nxx|CLASS), goodput_per_s)";
    // (--threshold, the error after `--threshold "EXPR": `)
    let cases: Vec<(&str, String)> = vec![
        (
            "nonsense > 1",
            format!(
                "col 1: no `nonsense` in summary.json for this experiment: {named}, keys.NAME.METRIC \
                 (NAME: ui, export) or a number in summary.json (achieved_rate_per_s, arrivals, "
            ),
        ),
        (
            "keys.batch.p99 < 50ms",
            "col 6: no key `batch` in this scenario: its keys are ui, export (experiment = \"run\")"
                .to_string(),
        ),
        (
            "keys.batch.latency_us.p99 < 50000",
            "col 6: no key `batch` in this scenario: its keys are ui, export".to_string(),
        ),
        (
            "find_limit.limit >= 5",
            "col 1: no `find_limit` in summary.json for this experiment".to_string(),
        ),
        (
            "upstream_accounting.totals.cpu_s < 1",
            "col 1: no `upstream_accounting` in summary.json for this experiment".to_string(),
        ),
        (
            "latency_us.p98 < 1",
            "col 12: no `p98` under `latency_us` in summary.json for this experiment: it holds \
             count, max, mean, p50, p90, p99, p999, p9999 (experiment = \"run\")"
                .to_string(),
        ),
        (
            "latency_us < 1",
            "col 1: `latency_us` is not a number in summary.json: name one of its members".to_string(),
        ),
    ];
    for (expr, want) in cases {
        let started = std::time::Instant::now();
        let out = run(contend()
            .arg("run")
            .arg(&file)
            .args(["--no-progress", "--threshold", expr, "--out"])
            .arg(&out_dir));
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        let want = format!("--threshold {expr:?}: {want}");
        assert!(
            stderr.contains(&want),
            "{expr}: stderr lacks\n{want}\n{stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{expr}: the load ran ({:?})",
            started.elapsed()
        );
        assert!(!out_dir.exists(), "{expr}: a report folder was made");
    }
    // Valid names pass the check: the run goes ahead (and fails one of them).
    let out = run(contend()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--threshold", "keys.ui.p99 < 1s"])
        .args([
            "--threshold",
            "latency_us.p999 < 1s",
            "--threshold",
            "p99 < 1us",
        ])
        .arg("--out")
        .arg(&out_dir));
    assert_exit(&out, 3);
    // The scenario's own checks: file:line:col of the name that is not there.
    let file = scenario(
        dir.path(),
        "http://127.0.0.1:9",
        10,
        &format!("{keys}\n[thresholds]\nchecks = [\"p99 < 1s\", \"keys.nope.p99 < 1s\"]\n"),
    );
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("checks"))
        .unwrap()
        + 1;
    let out = run(contend().arg("run").arg(&file));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:{line}:29: threshold `keys.nope.p99 < 1s`: no key `nope` in this scenario: its keys \
             are ui, export (experiment = \"run\")",
            file.display()
        )),
        "{stderr}"
    );
}

/// Runs `file` twice with `--repeat 2` into `out`.
fn repeat_2(file: &Path, out: &Path) {
    let result = run(contend()
        .arg("run")
        .arg(file)
        .args(["--repeat", "2", "--quiet", "--out"])
        .arg(out));
    assert_exit(&result, 0);
    for i in 1..=2 {
        summary(&out.join(format!("run-{i}")));
        assert!(out.join(format!("run-{i}/intervals.csv")).is_file());
    }
}

#[test]
fn compare_flags_a_slow_server_and_passes_the_same_server() {
    let fast = util::http_server(|_| Duration::ZERO);
    let slow = util::http_server(|_| Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    repeat_2(&scenario(dir.path(), &fast.url(), 200, ""), &a);
    repeat_2(&scenario(dir.path(), &fast.url(), 200, ""), &b);
    repeat_2(&scenario(dir.path(), &slow.url(), 200, ""), &c);
    // Loopback jitter on a shared 2-core machine, with other tests and
    // builds burning CPU beside this one, has reached 130 ms at p99 (and
    // 24 ms at p50) for the fast server; the slow server adds 1 s, far
    // past the slack and that noise.
    let slack = ["--latency-slack", "300ms"];

    // Single runs, positional: tolerance only, and said so.
    let out = run(contend()
        .arg("compare")
        .arg(a.join("run-1"))
        .arg(b.join("run-1"))
        .args(slack));
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("evidence is one run") && stdout.contains("compare: PASS"),
        "{stdout}"
    );
    let junit = dir.path().join("compare.xml");
    let out = run(contend()
        .arg("compare")
        .arg(a.join("run-1"))
        .arg(c.join("run-1"))
        .args(slack)
        .arg("--junit")
        .arg(&junit));
    assert_exit(&out, 3);
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("p50 ") && l.contains("REGRESSION")),
        "{stdout}"
    );
    let (cases, counts) = junit_cases(&junit);
    assert_eq!(counts.0, "6");
    let failed: Vec<&str> = cases.iter().filter(|c| c.1).map(|c| c.0.as_str()).collect();
    assert_eq!(failed, ["p50", "p99", "p99.9"], "{stdout}");
    assert_eq!(counts.1, "3");

    // Repeated runs: the rank test over per-interval values.
    let side = |dir: &Path| vec![dir.join("run-1"), dir.join("run-2")];
    let out = run(contend()
        .arg("compare")
        .arg("--baseline")
        .args(side(&a))
        .arg("--current")
        .args(side(&b))
        .args(slack));
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("U test p=") && stdout.contains("2 baseline runs vs 2 current runs"),
        "{stdout}"
    );
    let out = run(contend()
        .arg("compare")
        .arg("--quiet")
        .arg("--baseline")
        .args(side(&a))
        .arg("--current")
        .args(side(&c))
        .args(slack));
    assert_exit(&out, 3);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("REGRESSION p50: "),
        "--quiet prints only verdicts:\n{stdout}"
    );
    assert!(
        stdout.contains("compare: FAIL (3 of 6 metrics regressed)"),
        "{stdout}"
    );
}

#[test]
fn compare_of_a_folder_that_is_no_report_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(contend().arg("compare").arg(dir.path()).arg(dir.path()));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("summary.json"),
        "{}",
        text(&out.stderr)
    );
    let out = run(contend().arg("compare").arg(dir.path()));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("compare takes BASELINE CURRENT"),
        "{}",
        text(&out.stderr)
    );
    // A folder whose runs have their own reports (an abort audit's modes,
    // variants): those are named, for compare and for merge alike.
    let run_dir = dir.path().join("one");
    synthetic_report(
        &run_dir,
        &Synthetic {
            p50_us: 1000,
            wobble_us: 0,
            seed: 1,
            interrupted: false,
        },
    );
    let several = dir.path().join("audit");
    synthetic_report(
        &several.join("reference-early"),
        &Synthetic {
            p50_us: 1000,
            wobble_us: 0,
            seed: 1,
            interrupted: false,
        },
    );
    std::fs::copy(run_dir.join("summary.json"), several.join("summary.json")).unwrap();
    let out = run(contend().arg("compare").arg(&several).arg(&run_dir));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("a folder of several runs") && stderr.contains("reference-early"),
        "{stderr}"
    );
    let out = run(contend()
        .arg("merge")
        .arg(&several)
        .arg(&run_dir)
        .arg("--out")
        .arg(dir.path().join("merged")));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("reference-early"),
        "{}",
        text(&out.stderr)
    );
}

/// Latencies of one synthetic run, us: each interval's p50 is `p50_us` plus
/// a deterministic wobble of up to ±`wobble_us` (seeded by `seed`); p99 and
/// p99.9 sit at steady 5 ms and 9 ms with the same wobble.
struct Synthetic {
    p50_us: u64,
    wobble_us: u64,
    seed: u64,
    interrupted: bool,
}

/// Writes a report folder as `contend run` would for [`Synthetic`]: 20
/// one-second intervals of 1000 requests, all 2xx, in `intervals.csv`, and
/// the fields of `summary.json` that `compare` reads.
fn synthetic_report(dir: &Path, run: &Synthetic) {
    const INTERVALS: u64 = 20;
    std::fs::create_dir_all(dir).unwrap();
    let wobble = |i: u64| -> i64 {
        let span = 2 * run.wobble_us + 1;
        ((i * 7919 + run.seed * 104_729) % span) as i64 - run.wobble_us as i64
    };
    let mut csv = String::from(
        "index,start_s,duration_s,offered,sent,2xx,429,503,504,other_status,client_timeout,\
         connect_error,io_error,not_sent,p50_us,p90_us,p99_us,p999_us,max_us,lag_p99_us,\
         in_flight,driver_cpu_cores\n",
    );
    for i in 0..INTERVALS {
        let at = |us: u64| (us as i64 + wobble(i)) as u64;
        csv.push_str(&format!(
            "{i},{i}.0,1.0,1000,1000,1000,0,0,0,0,0,0,0,0,{},{},{},{},{},50,0,0.05\n",
            at(run.p50_us),
            at(2_000),
            at(5_000),
            at(9_000),
            at(12_000)
        ));
    }
    std::fs::write(dir.join("intervals.csv"), csv).unwrap();
    let requests = 1000 * INTERVALS;
    let summary = serde_json::json!({
        "interrupted": run.interrupted,
        "duration_s": INTERVALS as f64,
        "achieved_rate_per_s": 1000.0,
        "latency_us": {"p50": run.p50_us, "p99": 5_000, "p999": 9_000},
        "outcomes": {"classes": {
            "2xx": requests, "429": 0, "503": 0, "504": 0, "client_timeout": 0,
            "connect_error": 0, "io_error": 0, "not_sent": 0, "other_status": 0
        }},
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
}

/// A synthetic run per entry of `p50s_us` in `dir/run-1..`, each with
/// that whole-run p50; returns their folders.
fn synthetic_side(dir: &Path, p50s_us: &[u64], wobble_us: u64, seed: u64) -> Vec<PathBuf> {
    (1..)
        .zip(p50s_us)
        .map(|(i, &p50_us)| {
            let run_dir = dir.join(format!("run-{i}"));
            synthetic_report(
                &run_dir,
                &Synthetic {
                    p50_us,
                    wobble_us,
                    seed: seed + i,
                    interrupted: false,
                },
            );
            run_dir
        })
        .collect()
}

/// The table row of `metric` in compare's stdout.
fn row<'a>(stdout: &'a str, metric: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{metric} ")))
        .unwrap_or_else(|| panic!("no {metric} row in\n{stdout}"))
}

/// `contend compare --baseline BASE... --current CURRENT...` with `extra` flags.
fn compare_sides(base: &[PathBuf], current: &[PathBuf], extra: &[&str]) -> std::process::Output {
    run(contend()
        .arg("compare")
        .arg("--baseline")
        .args(base)
        .arg("--current")
        .args(current)
        .args(extra))
}

#[test]
fn compare_scales_the_latency_slack_with_the_baselines_noise() {
    let dir = tempfile::tempdir().unwrap();
    let side = |name: &str, p50s_us: &[u64], wobble_us: u64, seed: u64| {
        synthetic_side(&dir.path().join(name), p50s_us, wobble_us, seed)
    };
    // p50 800us -> 1.3ms (+62%) over steady baseline runs (800us +-15us,
    // +-30us between intervals): a regression, though under the former
    // fixed 1 ms slack.
    let base = side("base", &[790, 800, 815], 30, 0);
    let slower = side("slower", &[1_300, 1_300, 1_300], 30, 10);
    let out = compare_sides(&base, &slower, &[]);
    assert_exit(&out, 3);
    let stdout = text(&out.stdout);
    let p50 = row(&stdout, "p50");
    assert!(
        p50.contains("REGRESSION")
            && p50.contains("+10% (at least +30us)")
            && p50.contains("U test p=0.000")
            && p50.contains("slack +30us: 3 x MAD (10us) of 3 baseline runs"),
        "{stdout}"
    );
    // Identical p99s on every run: no spread, so the floor.
    let p99 = row(&stdout, "p99");
    assert!(
        p99.contains("pass")
            && p99.contains("slack +10us: the floor (3 x MAD (0us) of 3 baseline runs is less)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("compare: FAIL (1 of 6 metrics regressed)"),
        "{stdout}"
    );

    // One run a side: that run's intervals measure the noise.
    let out = run(contend().arg("compare").arg(&base[0]).arg(&slower[0]));
    assert_exit(&out, 3);
    let stdout = text(&out.stdout);
    let p50 = row(&stdout, "p50");
    assert!(
        p50.contains("REGRESSION") && p50.contains(" of 20 baseline intervals"),
        "{stdout}"
    );

    // An explicit slack overrides the measured one, and says so.
    let out = compare_sides(&base, &slower, &["--latency-slack", "1ms"]);
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    let p50 = row(&stdout, "p50");
    assert!(
        p50.contains("+10% (at least +1.00ms)")
            && p50.contains("slack +1.00ms from --latency-slack"),
        "{stdout}"
    );

    // The same +500us over baseline runs that spread 600us..1ms is within
    // their noise: the slack grew with it.
    let noisy = side("noisy", &[600, 800, 1_000], 30, 20);
    let out = compare_sides(&noisy, &slower, &[]);
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    let p50 = row(&stdout, "p50");
    assert!(
        p50.contains("pass")
            && p50.contains("worse, but within the tolerance")
            && p50.contains("slack +600us: 3 x MAD (200us) of 3 baseline runs"),
        "{stdout}"
    );
    // And one baseline run whose intervals wobble +-400us.
    let wobbly = side("wobbly", &[800], 400, 30);
    let out = run(contend().arg("compare").arg(&wobbly[0]).arg(&slower[0]));
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    let p50 = row(&stdout, "p50");
    assert!(
        p50.contains("pass") && p50.contains(" of 20 baseline intervals"),
        "{stdout}"
    );
}

#[test]
fn compare_warns_of_an_interrupted_run_on_either_side() {
    let dir = tempfile::tempdir().unwrap();
    let steady = |name: &str, interrupted: bool| {
        let path = dir.path().join(name);
        synthetic_report(
            &path,
            &Synthetic {
                p50_us: 800,
                wobble_us: 30,
                seed: 1,
                interrupted,
            },
        );
        path
    };
    let (complete, cut) = (steady("complete", false), steady("cut-short", true));
    let junit = dir.path().join("compare.xml");
    for (baseline, current, side) in [(&cut, &complete, "baseline"), (&complete, &cut, "current")] {
        let out = run(contend()
            .arg("compare")
            .arg(baseline)
            .arg(current)
            .arg("--quiet")
            .arg("--junit")
            .arg(&junit));
        // The numbers are the same: the verdict stands, the warning is extra.
        assert_exit(&out, 0);
        let stdout = text(&out.stdout);
        let warning = format!(
            "warning: interrupted {side} run (summary.json \"interrupted\": true): {}",
            cut.display()
        );
        assert!(
            stdout.starts_with(&warning) && stdout.contains("compare: PASS"),
            "--quiet still warns:\n{stdout}"
        );
        let xml = std::fs::read_to_string(&junit).unwrap();
        let (cases, _) = junit_cases(&junit);
        assert_eq!(cases.len(), 6);
        let escaped = warning.replace('"', "&quot;");
        assert_eq!(
            xml.matches(&escaped).count(),
            6,
            "every case says it:\n{xml}"
        );
    }
    // Two complete runs: no warning.
    let out = run(contend().arg("compare").arg(&complete).arg(&complete));
    assert_exit(&out, 0);
    assert!(
        !text(&out.stdout).contains("warning"),
        "{}",
        text(&out.stdout)
    );
}
