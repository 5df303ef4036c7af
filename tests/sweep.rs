//! The sweep experiment: `[sweep]` parsing and its messages, a short real
//! sweep against a loopback server (rows, report files, schema, plots,
//! report.html, `contend report DIR` re-rendering), stopping early, and a
//! sweep through HAProxy gated by thresholds.

use std::path::Path;
use std::process::Command;

use contend::experiment::{Bench, sweep};
use contend::report::{self, summary::Summary};
use contend::scenario::{self, Overrides, Source};
use contend::shutdown::Stop;

use crate::util;

fn parse(text: &str) -> contend::error::Result<scenario::Scenario> {
    scenario::parse(text, &Source::File("s.toml".into()), &Overrides::default())
}

const TARGET: &str = "experiment = \"sweep\"\n[target]\nurl = \"http://127.0.0.1:9\"\n";

#[test]
fn sweep_sections_parse_into_steps() {
    let s = parse(&format!(
        "{TARGET}[sweep]\nrates = [100, \"1k\"]\nwarmup = \"500ms\"\nduration = \"2s\"\nslo = \"50ms\"\nconcurrency = [1, 4]\n\
         [client]\ninterval = \"250ms\""
    ))
    .expect("parses");
    let spec = sweep_spec(&s);
    assert_eq!(spec.rates, vec![100.0, 1000.0]);
    assert_eq!(spec.concurrency, vec![1, 4]);
    assert_eq!(spec.slo, Some(std::time::Duration::from_millis(50)));
    // Its load is its steps: it names no phases of its own.
    assert!(s.phases().is_empty());

    let s = parse(&format!(
        "{TARGET}[sweep]\nfrom = 100\nto = 1600\nsteps = 5\nspacing = \"geometric\""
    ))
    .expect("parses");
    assert_eq!(
        sweep_spec(&s).rates,
        vec![100.0, 200.0, 400.0, 800.0, 1600.0]
    );
    let s = parse(&format!("{TARGET}[sweep]\nfrom = 100\nto = 500\nsteps = 5")).expect("parses");
    assert_eq!(
        sweep_spec(&s).rates,
        vec![100.0, 200.0, 300.0, 400.0, 500.0]
    );
}

/// The scenario's `[sweep]` spec.
fn sweep_spec(s: &scenario::Scenario) -> scenario::SweepSpec {
    match &s.experiment {
        scenario::Experiment::Sweep(spec) => spec.clone(),
        other => panic!("not a sweep: {other:?}"),
    }
}

#[test]
fn broken_sweep_sections_name_the_fix() {
    // (scenario text, part of the error)
    let cases: Vec<(String, &str)> = vec![
        (TARGET.to_string(), "needs a [sweep] section"),
        (format!("{TARGET}[sweep]\nwarmup = \"1s\""), "s.toml:4:1: [sweep] has no steps"),
        (format!("{TARGET}[sweep]\nrates = []"), "[sweep] rates is empty"),
        (
            format!("{TARGET}[sweep]\nrates = [1]\nwarmup = \"300ms\""),
            "s.toml:6:10: [sweep] warmup 300ms is not a whole number of reporting intervals ([client] interval = 1s)",
        ),
        (
            format!("{TARGET}[sweep]\nrates = [1]\n[client]\ninterval = \"300ms\""),
            "s.toml:4:1: [sweep] warmup 2s is not a whole number of reporting intervals ([client] interval = 300ms)",
        ),
        (
            format!("{TARGET}[sweep]\nrates = [1]\nwarmup = \"0s\"\nduration = \"500ms\""),
            "s.toml:7:12: [sweep] duration 500ms is shorter than one reporting interval",
        ),
        (format!("{TARGET}[sweep]\nrates = [1, -5]"), "s.toml:5:13: [sweep] rate must be more than 0"),
        (format!("{TARGET}[sweep]\nrates = [1]\nfrom = 1"), "both as a list and as from/to"),
        (format!("{TARGET}[sweep]\nfrom = 1\nto = 5"), "needs steps = N"),
        (format!("{TARGET}[sweep]\nfrom = 1\nto = 5\nsteps = 1"), "[sweep] steps must be between 2 and 1000"),
        (format!("{TARGET}[sweep]\nrates = [1]\nsteps = 3"), "go with from/to"),
        (format!("{TARGET}[sweep]\nconcurrency = [0]"), "[sweep] concurrency must be between 1 and"),
        (format!("{TARGET}[sweep]\nrates = [1]\nslo_percentile = 100"), "slo_percentile must be between 0 and 100"),
        (format!("{TARGET}[sweep]\nrates = [1]\nstop_error_share = 2"), "stop_error_share is a share"),
        (format!("{TARGET}[sweep]\nrates = [1]\nspacing = \"cubic\""), "unknown variant `cubic`"),
        (format!("{TARGET}[sweep]\nrates = [1]\n[[phases]]\nrate = 1\nduration = \"1s\""), "not [[phases]]"),
        (
            "[target]\nurl = \"http://h:1\"\n[[phases]]\nrate = 1\nduration = \"1s\"\n[sweep]\nrates = [1]".to_string(),
            "s.toml:6:1: [sweep] is read only by experiment = \"sweep\"",
        ),
    ];
    for (text, want) in cases {
        let err = parse(&text).expect_err(&text).to_string();
        assert!(err.contains(want), "{text:?}\n  got  {err}\n  want {want}");
    }
}

fn sweep_scenario(url: &str, rates: &str, concurrency: &str) -> scenario::Scenario {
    parse(&format!(
        "name = \"sweep-test\"\nexperiment = \"sweep\"\n[target]\nurl = \"{url}\"\n\
         [sweep]\nrates = {rates}\nwarmup = \"0s\"\nduration = \"1s\"\nslo = \"100ms\"\n{concurrency}\n\
         [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"1s\"\n"
    ))
    .expect("a valid sweep scenario")
}

/// Three open-loop steps of 1 s and three closed-loop steps of 1 s against
/// a loopback server that answers at once: every row is whole, the report
/// folder holds every file, summary.json matches its schema, and
/// `contend report DIR` draws the plots and the page again from the files.
#[test]
fn a_short_sweep_writes_rows_plots_and_a_page() {
    let server = util::http_server(|_| std::time::Duration::ZERO);
    let scenario = sweep_scenario(&server.url(), "[100, 200, 300]", "concurrency = [1, 2, 4]");
    let exe = Path::new(env!("CARGO_BIN_EXE_contend"));
    let mut events = 0;
    let stop = Stop::never();
    let bench = Bench {
        scenario: &scenario,
        exe,
        stop: &stop,
        cgroup: None,
    };
    let out =
        sweep::run(&bench, &sweep_spec(&scenario), &mut |_| events += 1).expect("the sweep runs");
    assert!(events >= 6, "steps and rows were reported as they happened");
    let r = &out.result;
    assert_eq!(r.steps.len(), 3);
    assert_eq!(r.stopped_early, None);
    for (step, rate) in r.steps.iter().zip([100.0, 200.0, 300.0]) {
        assert_eq!(step.rate_per_s, rate);
        assert!((step.offered_per_s - rate).abs() / rate < 0.15, "{step:?}");
        assert!(
            step.arrivals.abs_diff(rate as u64) <= rate as u64 / 10 + 2,
            "{step:?}"
        );
        assert_eq!(step.share_2xx, 1.0, "{step:?}");
        assert!(
            step.p50_us > 0 && step.p50_us <= step.p99_us && step.p99_us <= step.max_us,
            "{step:?}"
        );
        assert!(!step.past_saturation);
    }
    // Nothing was over the SLO: the highest rate is the answer.
    assert_eq!(r.max_rate_within_slo_per_s, Some(300.0));
    assert_eq!(r.concurrency_steps.len(), 3);
    for c in &r.concurrency_steps {
        assert!(c.throughput_per_s > 50.0 && c.errors == 0, "{c:?}");
    }
    // Every open-loop arrival of every step is in the merged totals.
    let t = &out.run.step.driver.totals;
    assert_eq!(t.counts.total(), t.arrivals);
    assert_eq!(t.arrivals, r.steps.iter().map(|s| s.arrivals).sum::<u64>());

    let dir = tempfile::tempdir().unwrap();
    let mut summary = Summary::of(&out.run);
    summary.sweep = Some(r.clone());
    let (_, errors) = report::write(dir.path(), &out.run, &summary);
    assert!(errors.is_empty(), "{errors:?}");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    crate::reports::assert_matches_schema(&value);
    assert_eq!(value["sweep"]["steps"].as_array().map(Vec::len), Some(3));
    // The planning answer stands alone in capacity.json.
    let capacity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("capacity.json")).unwrap())
            .unwrap();
    assert_eq!(capacity["max_rate_within_slo"]["rate_per_s"], 300.0);
    assert_eq!(capacity["max_rate_within_slo"]["slo_us"], 100_000);
    assert!(capacity.get("max_connections").is_none(), "{capacity:#}");
    let steps_csv = std::fs::read_to_string(dir.path().join("steps.csv")).unwrap();
    assert_eq!(steps_csv.lines().count(), 4, "{steps_csv}");
    assert!(
        steps_csv.starts_with("step,rate_per_s,start_s,offered_per_s,achieved_per_s,goodput_per_s")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("concurrency.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    let plots = [
        "latency-vs-load",
        "throughput-vs-load",
        "usl",
        "latency-over-time",
        "percentile-spectrum",
    ];
    for name in plots {
        for ext in ["svg", "png"] {
            let path = dir.path().join(format!("{name}.{ext}"));
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} is missing or empty", path.display());
        }
    }
    let png = std::fs::read(dir.path().join("usl.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        plots.len(),
        "every plot inline"
    );
    // Offline: no script, nothing loaded from elsewhere.
    for banned in ["<script", "src=\"http", "href=\"http", "<link"] {
        assert!(!html.contains(banned), "report.html has {banned}");
    }
    for needed in [
        "Steps (open loop)",
        "Steps (closed loop)",
        "service times",
        "Generator health",
        "USL fit",
    ] {
        assert!(html.contains(needed), "report.html lacks {needed:?}");
    }

    // Re-rendered from the saved files alone.
    for name in plots {
        std::fs::remove_file(dir.path().join(format!("{name}.png"))).unwrap();
    }
    std::fs::remove_file(dir.path().join("report.html")).unwrap();
    let status = Command::new(exe)
        .arg("report")
        .arg(dir.path())
        .output()
        .expect("contend report runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(stdout.contains("USL fit: sigma"), "{stdout}");
    for name in plots {
        assert!(
            dir.path().join(format!("{name}.png")).exists(),
            "{name}.png re-drawn"
        );
    }
    let again = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(again.matches("<svg").count(), plots.len());
    crate::binary::assert_only_contend_files(dir.path());
}

/// A target that answers 503 to everything is past saturation at the
/// first step: the sweep stops there and says why.
#[test]
fn a_sweep_stops_early_past_saturation() {
    let server = util::raw_server(|s| {
        util::answer_and_close(
            s,
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
    });
    let scenario = sweep_scenario(&server.url(), "[20, 40, 80]", "");
    let mut spec = sweep_spec(&scenario);
    spec.duration = std::time::Duration::from_millis(500);
    let exe = Path::new(env!("CARGO_BIN_EXE_contend"));
    let stop = Stop::never();
    let bench = Bench {
        scenario: &scenario,
        exe,
        stop: &stop,
        cgroup: None,
    };
    let out = sweep::run(&bench, &spec, &mut |_| {}).expect("the sweep runs");
    let r = &out.result;
    assert_eq!(r.steps.len(), 1, "{r:?}");
    assert!(r.steps[0].past_saturation);
    assert_eq!(r.steps[0].share_503, 1.0);
    let reason = r.stopped_early.as_deref().expect("a reason");
    assert!(
        reason.contains("stopped after step 1") && reason.contains("100.0% without a 2xx"),
        "{reason}"
    );
    // Fast 503s do not meet an SLO: a step past saturation is over it.
    assert_eq!(r.max_rate_within_slo_per_s, None);
}

/// A sweep through HAProxy in front of the mock, gated: two open-loop
/// steps of 1 s, then the thresholds over the sweep's summary (one holds,
/// one fails: exit 3). The steps' rows and HAProxy's accounting of every
/// request are in the report. Skipped, saying why, without HAProxy.
#[test]
fn a_sweep_through_haproxy_is_gated_by_thresholds() {
    if !util::component_present(
        "a_sweep_through_haproxy_is_gated_by_thresholds",
        contend::topology::haproxy::find(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sweep.toml");
    std::fs::write(
        &file,
        "name = \"sweep-haproxy\"\nexperiment = \"sweep\"\n\
         [upstream]\nkind = \"mock\"\ncpu = \"1ms\"\n\
         [gateway]\nkind = \"haproxy\"\nupstream_timeout = \"1s\"\nconcurrency = { max = 8 }\n\
         [sweep]\nrates = [50, 100]\nwarmup = \"0s\"\nduration = \"1s\"\nslo = \"100ms\"\n\
         [thresholds]\nchecks = [\"error_rate < 50%\", \"p99 < 1us\"]\n\
         [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"1s\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    crate::binary::run_scenario(&file, &out_dir, 3);
    let s = crate::binary::summary(&out_dir);
    let steps = s["sweep"]["steps"].as_array().expect("the sweep's rows");
    assert_eq!(steps.len(), 2, "{:#}", s["sweep"]);
    let verdicts: Vec<(&str, bool)> = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["expr"].as_str().unwrap(), t["pass"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [("error_rate < 50%", true), ("p99 < 1us", false)],
        "{:#}",
        s["thresholds"]
    );
    let g = &s["gateway_accounting"];
    assert_eq!(g["kind"], "haproxy", "{g:#}");
    assert_eq!(g["lines"], s["arrivals"], "every request logged: {g:#}");
    assert_eq!(g["unparsed_lines"], 0, "{g:#}");
}
