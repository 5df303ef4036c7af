//! `contend logs` through the binary: generated logs with known answers
//! (rates, percentiles, a knee at a known client timeout and the
//! under-count it hides, malformed lines, gzip, multi-value upstream
//! fields), bad input, stdin, and a run's own gateway log read back.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp};
use serde_json::Value;

use crate::binary::{CONTEND, assert_exit, assert_only_contend_files, contend, run, text};

/// The generated logs' format: nginx variables, the time as `$msec`.
const FORMAT: &str = "$msec key=$http_x_api_key \"$request\" $status rt=$request_time us=$upstream_status urt=$upstream_response_time";

/// The first line's time, s since the epoch.
const START_S: f64 = 1_700_000_000.0;

/// A generated log and the answers it was made with.
struct Generated {
    lines: Vec<String>,
    /// The exporter's true work over what its lines charged.
    exporter_factor: f64,
}

fn line(t_s: f64, key: &str, request: &str, status: u16, rt_s: f64, us: &str, urt: &str) -> String {
    format!("{t_s:.3} key={key} \"{request}\" {status} rt={rt_s:.3} us={us} urt={urt}")
}

/// 100 s of log: `ui` 10/s with request times 1..=100 ms; `exporter`
/// 3,000 requests of exponential work (mean 300 ms) behind a 50 ms client
/// timeout (nginx's `499 us=- urt=0.050` when the client left first);
/// `retry` 10 requests retried to a second upstream (`502, 200`); `seed`
/// 5 of the 404-with-`-` pattern; and 3 malformed lines among them.
fn generate() -> Generated {
    let mut timed: Vec<(f64, String)> = Vec::new();
    for i in 0..1000 {
        let rt = (i % 100 + 1) as f64 / 1000.0;
        let t = START_S + i as f64 * 0.1;
        let request = format!("GET /users/{i}?page=1 HTTP/1.1");
        timed.push((
            t,
            line(t, "ui", &request, 200, rt, "200", &format!("{rt:.3}")),
        ));
    }
    let mut rng = StdRng::seed_from_u64(23);
    let work = Exp::new(1.0f64 / 0.300).unwrap();
    let (mut truth_s, mut charged_s) = (0.0, 0.0);
    for i in 0..3000 {
        let t = START_S + i as f64 * (100.0 / 3000.0) + 0.01;
        // The log writes milliseconds: the truth is what it rounds.
        let w: f64 = (work.sample(&mut rng) * 1000.0).round() / 1000.0;
        truth_s += w;
        let l = if w < 0.050 {
            charged_s += w;
            line(
                t,
                "exporter",
                "GET /export HTTP/1.1",
                200,
                w,
                "200",
                &format!("{w:.3}"),
            )
        } else {
            charged_s += 0.050;
            line(
                t,
                "exporter",
                "GET /export HTTP/1.1",
                499,
                0.050,
                "-",
                "0.050",
            )
        };
        timed.push((t, l));
    }
    for i in 0..10 {
        let t = START_S + 50.0 + i as f64;
        let l = line(
            t,
            "retry",
            "POST /orders HTTP/1.1",
            200,
            0.301,
            "502, 200",
            "0.100, 0.200",
        );
        timed.push((t, l));
    }
    for i in 0..5 {
        let t = START_S + 60.0 + i as f64;
        timed.push((
            t,
            line(t, "seed", "GET /export HTTP/1.1", 404, 2.0, "-", "2.000"),
        ));
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut lines: Vec<String> = timed.into_iter().map(|(_, l)| l).collect();
    // Malformed, at lines 10, 500 and 2000 (1-based).
    lines.insert(9, "garbage".into());
    lines.insert(
        499,
        "1700000049.000 key=ui \"GET / HTTP/1.1\" abc rt=0.001 us=200 urt=0.001".into(),
    );
    lines.insert(1999, "1700000199.000 key=ui".into());
    Generated {
        lines,
        exporter_factor: truth_s / charged_s,
    }
}

/// The report's summary.json, checked against docs/logs-summary.schema.json.
fn summary(dir: &Path) -> Value {
    let body = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    let value = serde_json::from_str(&body).expect("JSON");
    crate::reports::assert_matches_schema_named("logs-summary.schema.json", &value);
    value
}

fn key<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no key {name}: {s}"))
}

fn close(got: f64, want: f64, share: f64) -> bool {
    (got - want).abs() <= want.abs() * share
}

#[test]
fn a_generated_log_gives_its_known_answers() {
    let dir = tempfile::tempdir().unwrap();
    let generated = generate();
    let whole = generated.lines.join("\n") + "\n";
    std::fs::write(dir.path().join("access.log"), &whole).unwrap();
    let out_dir = dir.path().join("report");
    let out = run(contend()
        .args(["logs", "--format", FORMAT, "--slow", "90ms", "--out"])
        .arg(&out_dir)
        .arg(dir.path().join("access.log")));
    assert_exit(&out, 0);
    assert_only_contend_files(&out_dir);
    let s = summary(&out_dir);
    assert_eq!(
        (s["lines"].as_u64(), s["malformed"].as_u64()),
        (Some(4018), Some(3)),
        "{s}"
    );
    let bad: Vec<u64> = s["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(bad, [10, 500, 2000]);

    // ui: 10/s, request times 1..=100 ms.
    let ui = key(&s, "ui");
    assert_eq!(ui["requests"], 1000);
    assert!(
        close(ui["rate_per_s"].as_f64().unwrap(), 10.0, 0.01),
        "{ui}"
    );
    let rt = &ui["request_time_ms"];
    for (p, want) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        assert!(close(rt[p].as_f64().unwrap(), want, 0.01), "{p}: {rt}");
    }
    assert_eq!(ui["estimate"]["status"], "nothing_cut");
    assert_eq!(ui["estimate"]["under_count"], 1.0);

    // exporter: the knee at the 50 ms client timeout, and the under-count.
    let exporter = key(&s, "exporter");
    let knee = &exporter["aborts"]["client_timeout_knee"];
    assert!(close(knee["at_s"].as_f64().unwrap(), 0.050, 0.01), "{knee}");
    assert_eq!(knee["completed_past"], 0, "{knee}");
    let estimate = &exporter["estimate"];
    let factor = estimate["under_count"].as_f64().unwrap();
    let truth = generated.exporter_factor;
    assert!(
        close(factor, truth, 0.10),
        "estimate {factor} vs truth {truth}"
    );
    let interval = estimate["under_count_interval"].as_array().unwrap();
    let (lo, hi) = (interval[0].as_f64().unwrap(), interval[1].as_f64().unwrap());
    assert!(lo < truth && truth < hi, "{lo}..{hi} misses {truth}");
    assert!(
        close(estimate["fit"]["mean_s"].as_f64().unwrap(), 0.300, 0.10),
        "{estimate}"
    );

    // retry: the upstream times of both attempts summed.
    let retry = key(&s, "retry");
    assert_eq!(retry["retried"], 10);
    assert!(
        close(
            retry["upstream_time_ms"]["p50"].as_f64().unwrap(),
            300.0,
            0.01
        ),
        "{retry}"
    );
    // seed: 404 with `-` after upstream time is a client abort.
    let seed = &key(&s, "seed")["aborts"];
    assert_eq!(
        (
            seed["client_aborts"].as_u64(),
            seed["status_404_without_upstream_status"].as_u64()
        ),
        (Some(5), Some(5)),
        "{seed}"
    );

    // Routes with their ids collapsed, and the tail over 90 ms.
    let routes: Vec<&str> = s["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["GET /export", "GET /users/{id}", "POST /orders"]);
    let slow = s["slow_routes"].as_array().unwrap();
    let users = slow
        .iter()
        .find(|r| r["route"] == "GET /users/{id}")
        .expect("users is slow");
    assert_eq!(users["slow"], 100, "rt 91..=100 ms: {users}");
    let csv = std::fs::read_to_string(out_dir.join("usage.csv")).unwrap();
    assert!(csv.starts_with("key,requests,charged_s,"), "{csv}");
    assert!(
        csv.lines().any(|l| l.starts_with("exporter,3000,")),
        "{csv}"
    );
    // `contend report` prints a saved log report's tables again.
    let again = run(contend().arg("report").arg(&out_dir));
    assert_exit(&again, 0);
    let tables = text(&again.stdout);
    assert!(tables.contains("client 50ms"), "{tables}");
    assert_eq!(
        tables,
        text(&out.stdout).replace(&format!("Report: {}\n", out_dir.display()), "")
    );
}

#[test]
fn split_plain_and_gzip_files_read_as_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generate().lines;
    let (first, second) = lines.split_at(lines.len() / 2);
    std::fs::write(dir.path().join("whole.log"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("a.log"), first.join("\n") + "\n").unwrap();
    // Gzip by its bytes, whatever the name says.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all((second.join("\n") + "\n").as_bytes()).unwrap();
    std::fs::write(dir.path().join("b.log.1"), gz.finish().unwrap()).unwrap();
    let read = |out: &str, files: &[&str]| {
        let out_dir = dir.path().join(out);
        let mut cmd = contend();
        cmd.args(["logs", "--quiet", "--format", FORMAT, "--out"])
            .arg(&out_dir);
        for f in files {
            cmd.arg(dir.path().join(f));
        }
        assert_exit(&run(&mut cmd), 0);
        summary(&out_dir)
    };
    let whole = read("whole", &["whole.log"]);
    let split = read("split", &["a.log", "b.log.1"]);
    for field in [
        "lines",
        "parsed",
        "malformed",
        "span_s",
        "keys",
        "routes",
        "usage",
    ] {
        assert_eq!(whole[field], split[field], "{field}");
    }
    let files: Vec<u64> = split["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["lines"].as_u64().unwrap())
        .collect();
    assert_eq!(files.iter().sum::<u64>(), 4018);
}

#[test]
fn stdin_reads_with_a_format() {
    let log = "10.0.0.1 - - [31/Jan/2024:13:55:36 +0000] \"GET /a/1 HTTP/1.1\" 499 0 \"-\" \"curl\" rt=0.050 uct=\"0.000\" uht=\"-\" urt=\"0.050\"\n\
               10.0.0.1 - - [31/Jan/2024:13:55:37 +0000] \"GET /a/2 HTTP/1.1\" 200 5 \"-\" \"curl\" rt=0.010 uct=\"0.000\" uht=\"0.010\" urt=\"0.010\"\n";
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("r");
    let mut child = std::process::Command::new(CONTEND)
        .args(["logs", "-", "--format", "nginx-timed", "--out"])
        .arg(&out_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    let out = crate::binary::finish(child);
    assert_exit(&out, 0);
    let s = summary(&out_dir);
    assert_eq!(s["parsed"], 2);
    assert_eq!(s["files"][0]["file"], "-");
    let all = key(&s, "-");
    assert_eq!(all["aborts"]["client_aborts"], 1);
    assert_eq!(all["estimate"]["status"], "estimated");
    assert!(
        s["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("logs no key")),
        "{s}"
    );
}

#[test]
fn bad_input_is_exit_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "garbage\nmore garbage\n").unwrap();
    let missing = dir.path().join("nope.log");
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    // (arguments, what stderr says)
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--format".into(), "$status $reqest_time".into(), log.display().to_string()],
            "unknown variable $reqest_time (column 9): nginx has no such variable. did you mean $request_time?".into(),
        ),
        (
            vec!["--format".into(), "%ST %Taa".into(), log.display().to_string()],
            "unknown HAProxy variable %Taa".into(),
        ),
        (
            vec!["--format".into(), "combined".into(), missing.display().to_string()],
            format!("{}: No such file or directory", missing.display()),
        ),
        (
            vec!["--format".into(), "$status $request_time".into(), "--key".into(), "$remote_user".into(), log.display().to_string()],
            "--key $remote_user: the format has no such variable".into(),
        ),
        (vec!["-".into()], "- (stdin) has no format file beside it: give --format".into()),
        (
            vec![log.display().to_string()],
            "no preset (contend, nginx-timed, main, combined, haproxy) reads its first lines".into(),
        ),
        // An empty log is no log in an unknown format, and no report of nothing.
        (
            vec![empty.display().to_string()],
            format!("{}: the log is empty, so there is no line to tell its format from", empty.display()),
        ),
        (
            vec!["--format".into(), "combined".into(), empty.display().to_string()],
            "the log is empty (no line in any file given)".into(),
        ),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let out = run(contend()
            .arg("logs")
            .args(args)
            .arg("--out")
            .arg(dir.path().join(format!("out-{i}"))));
        assert_exit(&out, 2);
        let err = text(&out.stderr);
        assert!(err.contains(want.as_str()), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Every line malformed: the report is still written (with the lines),
    // then exit 2 with the fix.
    let out_dir = dir.path().join("all-bad");
    let out = run(contend()
        .args(["logs", "--format", FORMAT, "--out"])
        .arg(&out_dir)
        .arg(&log));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("none of the 2 lines is in the format"),
        "{}",
        text(&out.stderr)
    );
    let s = summary(&out_dir);
    assert_eq!(
        (
            s["malformed"].as_u64(),
            s["malformed_lines"][1]["line"].as_u64()
        ),
        (Some(2), Some(2))
    );
    // The same folder again without --force is refused; with it, replaced.
    let again = run(contend()
        .args(["logs", "--format", FORMAT, "--out"])
        .arg(&out_dir)
        .arg(&log));
    assert_exit(&again, 2);
    assert!(
        text(&again.stderr).contains("holds an earlier run"),
        "{}",
        text(&again.stderr)
    );
}

/// A run through the reference gateway keeps its access log and the
/// format beside it, and `contend logs` reads it with that format unasked.
#[test]
fn a_run_keeps_its_gateway_log_and_contend_logs_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("gw.toml");
    std::fs::write(
        &scenario,
        "name = \"gw\"\n[[phases]]\nrate = 40\nduration = \"500ms\"\n[upstream]\nsleep = \"2ms\"\n\
         [gateway]\nkind = \"reference\"\nupstream_timeout = \"2s\"\n\
         [[keys]]\nname = \"a\"\n[[keys]]\nname = \"b\"\n[client]\nthreads = 1\n",
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let out = run(contend()
        .arg("run")
        .arg(&scenario)
        .args(["--no-progress", "--out"])
        .arg(&run_dir));
    assert_exit(&out, 0);
    assert_only_contend_files(&run_dir);
    let format = std::fs::read_to_string(run_dir.join("access.log.format")).unwrap();
    assert!(
        format
            .lines()
            .last()
            .unwrap()
            .starts_with("$time_iso8601 key=$http_x_api_key"),
        "{format}"
    );
    let run_summary = crate::binary::summary(&run_dir);
    let logged = run_summary["gateway_accounting"]["lines"].as_u64().unwrap();
    assert!(logged > 0, "{run_summary}");

    let logs_dir = dir.path().join("logs");
    let out = run(contend()
        .arg("logs")
        .arg(run_dir.join("access.log"))
        .arg("--out")
        .arg(&logs_dir));
    assert_exit(&out, 0);
    assert_only_contend_files(&logs_dir);
    let s = summary(&logs_dir);
    assert_eq!(
        (s["parsed"].as_u64(), s["malformed"].as_u64()),
        (Some(logged), Some(0)),
        "{s}"
    );
    assert!(
        s["format"]["source"]
            .as_str()
            .unwrap()
            .ends_with("access.log.format"),
        "{s}"
    );
    let per_key: u64 = ["a", "b"]
        .iter()
        .map(|k| key(&s, k)["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(per_key, logged);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("Report: {}", logs_dir.display())),
        "{stdout}"
    );
}
