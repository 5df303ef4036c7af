//! `--retries compare`: a sweep and a find-limit with a retry policy run
//! again without it, the answers side by side in summary.json, the
//! console, `retry-effect.csv`/`.md`, `report.html` and the sweep's plots,
//! the run without retries in `without-retries/`; `--retries` refused
//! where it cannot apply; a `[[variants]]` folder's top-level page; HTTP/2
//! retries that the gateway saw.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use crate::binary;
use crate::retries::recording_server;

fn write(dir: &Path, body: &str) -> PathBuf {
    let file = dir.join("s.toml");
    std::fs::write(&file, body).unwrap();
    file
}

/// Runs the scenario `body` (written to `dir`) into `dir/out`, which it
/// hands back with the output, once the run exited 0.
fn run_ok(dir: &Path, body: &str) -> (PathBuf, Output) {
    let out_dir = dir.join("out");
    let out = binary::run_scenario(&write(dir, body), &out_dir, 0);
    (out_dir, out)
}

/// A server that answers every other request 503 (even ones, from 0):
/// with one retry 5 ms later (well before the next arrival at 20/s) nearly
/// every arrival ends 2xx; without retries about half do. Two 1 s steps
/// per side: the sweep with retries keeps its goodput, the one without
/// loses half, and both sides are in every output.
#[test]
fn a_sweep_compares_its_retry_policy_with_none() {
    let _turn = crate::util::one_measurement_at_a_time();
    let (server, seen) = recording_server(Arc::new(|n| (if n % 2 == 0 { 503 } else { 200 }, None)));
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, out) = run_ok(
        dir.path(),
        &format!(
            "name = \"cmp\"\nexperiment = \"sweep\"\n[target]\nurl = \"{}/\"\n\
             [sweep]\nrates = [10, 20]\nwarmup = \"0s\"\nduration = \"1s\"\nslo = \"100ms\"\nstop_early = false\n\
             [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"1s\"\n\
             retry = {{ on = [\"503\"], max = 2, backoff = \"constant\", base = \"5ms\", jitter = \"none\" }}\n",
            server.url()
        ),
    );
    let (console, errors) = (binary::text(&out.stdout), binary::text(&out.stderr));
    assert!(
        errors.contains("runs twice"),
        "the doubled time is said: {errors}"
    );
    assert!(console.contains("with and without retries"), "{console}");
    binary::assert_only_contend_files(&out_dir);
    let s = binary::summary(&out_dir);
    let sweep = &s["sweep"];
    assert_eq!(sweep["retries_compared"], true);
    let without = &sweep["without_retries"];
    let (with_steps, without_steps) = (
        sweep["steps"].as_array().unwrap(),
        without["steps"].as_array().unwrap(),
    );
    assert_eq!((with_steps.len(), without_steps.len()), (2, 2), "{sweep:#}");
    for (a, b) in with_steps.iter().zip(without_steps) {
        let (a, b) = (
            a["share_2xx"].as_f64().unwrap(),
            b["share_2xx"].as_f64().unwrap(),
        );
        assert!(a > 0.9, "with retries nearly every arrival ends 2xx: {a}");
        assert!((0.3..0.7).contains(&b), "without, about half: {b}");
    }
    // The top folder is the run with retries: its attempts add up, and the
    // server saw them all, together with the run without.
    let r = &s["retries"];
    let (arrivals, attempts, retries) = (
        s["arrivals"].as_u64().unwrap(),
        r["attempts"].as_u64().unwrap(),
        r["retries"].as_u64().unwrap(),
    );
    assert_eq!(attempts, arrivals + retries);
    assert!(retries > arrivals / 3, "{r:#}");
    let plain = binary::summary(&out_dir.join("without-retries"));
    assert!(plain["retries"].is_null(), "no policy without retries");
    assert_eq!(plain["sweep"]["steps"], without["steps"], "its own sweep");
    assert!(out_dir.join("without-retries/steps.csv").is_file());
    let plain_arrivals = plain["arrivals"].as_u64().unwrap();
    assert_eq!(
        seen.lock().unwrap().len() as u64,
        attempts + plain_arrivals,
        "every attempt of both sides reached the server"
    );
    let csv = std::fs::read_to_string(out_dir.join("retry-effect.csv")).unwrap();
    assert!(
        csv.starts_with("rate_per_s,p99_us_with_retries,p99_us_without_retries,goodput_per_s_with_retries,goodput_per_s_without_retries"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let md = std::fs::read_to_string(out_dir.join("retry-effect.md")).unwrap();
    assert!(md.contains("| sweep | peak goodput |"), "{md}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("With and without retries"));
    let svg = std::fs::read_to_string(out_dir.join("throughput-vs-load.svg")).unwrap();
    assert!(
        svg.contains("goodput without retries"),
        "the second line is drawn"
    );
}

/// The smallest find-limit (limits 1 and 2, no baseline, 1 s steps at
/// 20/s over 5 ms of CPU): with retries on 503 and again without, each
/// side's answer and its search's state in summary.json, the CSV and the
/// console.
#[test]
fn a_find_limit_compares_its_retry_policy_with_none() {
    let _turn = crate::util::one_measurement_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, out) = run_ok(
        dir.path(),
        "name = \"fl-cmp\"\nexperiment = \"find-limit\"\n\
         [upstream]\nkind = \"mock\"\ncpu = \"5ms\"\n\
         [gateway]\nkind = \"reference\"\nupstream_timeout = \"500ms\"\n\
         [find_limit]\nmin = 1\nmax = 2\nstart = 1\nbaseline = false\nrate = 20\nwarmup = \"0s\"\nduration = \"1s\"\nrepeats = 1\n\
         [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"2s\"\n\
         retry = { on = [\"503\"], max = 1, base = \"20ms\" }\n",
    );
    let console = binary::text(&out.stdout);
    binary::assert_only_contend_files(&out_dir);
    let s = binary::summary(&out_dir);
    let f = &s["find_limit"];
    assert_eq!(f["retries_compared"], true);
    let (with, without) = (&f["classes"][0], &f["without_retries"]["classes"][0]);
    for side in [with, without] {
        assert!(side["limit"].as_u64().is_some(), "{f:#}");
        assert!(!side["interrupted"].as_bool().unwrap(), "{side:#}");
    }
    assert!(
        console.contains("with and without retries") && console.contains("recommendation"),
        "{console}"
    );
    let csv = std::fs::read_to_string(out_dir.join("retry-effect.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("class,limit_with_retries,limit_without_retries"),
        "{csv}"
    );
    assert!(
        lines.next().unwrap().starts_with(&format!(
            "as configured,{},{}",
            with["limit"], without["limit"]
        )),
        "{csv}"
    );
    assert!(out_dir.join("without-retries/summary.json").exists());
}

/// `--retries` where it cannot apply: exit 2 naming the fix, before
/// anything runs.
#[test]
fn retries_flag_refusals_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[target]\nurl = \"http://127.0.0.1:9/\"\n[[phases]]\nrate = 1\nduration = \"1s\"\n\
             [client]\nretry = { on = [\"504\"], max = 1 }\n",
            "compare",
            "[[variants]]",
        ),
        (
            "[target]\nurl = \"http://127.0.0.1:9/\"\n[[phases]]\nrate = 1\nduration = \"1s\"\n",
            "with",
            "needs a retry policy",
        ),
    ];
    for (body, mode, needle) in cases {
        let file = write(dir.path(), body);
        let out = binary::run(
            binary::contend()
                .arg("run")
                .arg(&file)
                .arg("--retries")
                .arg(mode)
                .arg("--out")
                .arg(dir.path().join("out")),
        );
        binary::assert_exit(&out, 2);
        let err = binary::text(&out.stderr);
        assert!(err.contains(needle), "{mode}: {err}");
    }
}

/// Two variants against a server that answers every other request 503:
/// the top-level `report.html` holds the side-by-side table (each
/// variant's figures as in `variants.csv`), `variants.svg` inline and a
/// link to each variant's own page, which exists.
#[test]
fn a_variants_folder_has_a_page_that_links_each_variant() {
    let (server, _) = recording_server(Arc::new(|n| (if n % 2 == 0 { 503 } else { 200 }, None)));
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, _) = run_ok(
        dir.path(),
        &format!(
            "name = \"vars\"\n[target]\nurl = \"{}/\"\n[[phases]]\nrate = 20\nduration = \"1s\"\n\
             [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"1s\"\n\
             [[variants]]\nname = \"none\"\nretry = {{ max = 0 }}\n\
             [[variants]]\nname = \"again\"\nretry = {{ on = [\"503\"], max = 2, base = \"5ms\", jitter = \"none\" }}\n",
            server.url()
        ),
    );
    binary::assert_only_contend_files(&out_dir);
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    let s = binary::summary(&out_dir);
    for row in s["variants"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        let link = format!("<a href=\"variant-{name}/report.html\">{name}</a>");
        assert!(html.contains(&link), "{link} in the page");
        assert!(out_dir.join(format!("variant-{name}/report.html")).exists());
        // The row's figures as variants.csv has them.
        let cells = format!(
            "<td>{}</td><td>{}</td><td>{:.2}</td>",
            row["arrivals"],
            row["attempts"],
            row["amplification"].as_f64().unwrap()
        );
        assert!(html.contains(&cells), "{cells} in the page");
    }
    let again = &s["variants"][1];
    assert!(
        again["attempts"].as_u64() > again["arrivals"].as_u64(),
        "{again:#}"
    );
    assert!(
        html.contains("<figure id=\"variants\"><svg"),
        "variants.svg inline"
    );
    // `contend report DIR` draws the same page again, not a single run's.
    std::fs::remove_file(out_dir.join("report.html")).unwrap();
    binary::assert_exit(
        &binary::run(binary::contend().arg("report").arg(&out_dir)),
        0,
    );
    let again = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert_eq!(again, html);
}

/// HTTP/2 in cleartext (h2c) to the reference gateway, whose concurrency
/// limit of 1 in front of 30 ms of upstream CPU answers 503 to much of
/// 40/s; the client retries 503 twice. Attempts are arrivals plus retries,
/// the outcomes sum to the arrivals, and the gateway logged every attempt:
/// its 503s are the retries plus the arrivals that ended 503, its 2xx the
/// arrivals that ended 2xx (the retried streams really were sent again).
#[test]
fn h2c_retries_of_503s_reach_the_gateway_and_add_up() {
    let _turn = crate::util::one_measurement_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, _) = run_ok(
        dir.path(),
        "name = \"h2-retries\"\n[[phases]]\nrate = 40\nduration = \"1s\"\n\
         [upstream]\nkind = \"mock\"\nworkers = \"unbounded\"\ncpu = \"30ms\"\n\
         [gateway]\nkind = \"reference\"\nhttp2 = true\nupstream_timeout = \"2s\"\nconcurrency = { max = 1 }\n\
         [client]\nhttp = \"2\"\nthreads = 1\ntimeout = \"3s\"\n\
         retry = { on = [\"503\"], max = 2, base = \"30ms\", retry_after = false }\n",
    );
    let s = binary::summary(&out_dir);
    assert_eq!(s["connections"]["http"], "HTTP/2", "{:#}", s["connections"]);
    let arrivals = s["arrivals"].as_u64().unwrap();
    let o = &s["outcomes"];
    let responses: BTreeMap<String, u64> = serde_json::from_value(o["responses"].clone()).unwrap();
    let others: u64 = [
        "client_timeout",
        "connect_error",
        "tls_error",
        "io_error",
        "not_sent",
    ]
    .iter()
    .map(|k| o[k].as_u64().unwrap())
    .sum();
    assert_eq!(responses.values().sum::<u64>() + others, arrivals, "{o:#}");
    let r = &s["retries"];
    let (attempts, retries) = (
        r["attempts"].as_u64().unwrap(),
        r["retries"].as_u64().unwrap(),
    );
    assert_eq!(attempts, arrivals + retries, "{r:#}");
    assert!(retries > 0, "the limit refused some: {r:#}");
    let logged = &s["gateway_accounting"]["totals"];
    assert_eq!(logged["requests"].as_u64(), Some(attempts), "{logged:#}");
    let by_status = |code: &str| logged["by_status"][code].as_u64().unwrap_or(0);
    let ended = |code: &str| responses.get(code).copied().unwrap_or(0);
    assert_eq!(
        by_status("503"),
        retries + ended("503"),
        "{logged:#}\n{r:#}"
    );
    assert_eq!(by_status("200"), ended("200"), "{logged:#}");
}
