//! `[[faults]] action = "slow"`: the mock upstream's CPU per request
//! multiplied and a delay added, the reference gateway's delay added, each
//! for its `for` and recorded with its actual times; refused, saying why,
//! where a component has no way to be slowed.

use crate::binary;

/// 40/s for 4 s through the reference gateway to the mock (2 ms of CPU
/// per request): the upstream slowed (CPU x10, +300 ms) over 0.5-1.5 s,
/// the gateway (+300 ms) over 2.25-3.25 s. Whole intervals well inside a
/// slowdown have a median of at least the delay (a sleep is a floor, not
/// a timing), those well outside it less; the upstream burnt the extra
/// CPU; both faults are in summary.json with their times.
#[test]
fn slow_faults_slow_the_upstream_and_the_gateway_for_their_time() {
    let _turn = crate::util::one_measurement_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.toml");
    std::fs::write(
        &file,
        "name = \"slow\"\n[[phases]]\nrate = 40\nduration = \"4s\"\n\
         [upstream]\nkind = \"mock\"\nworkers = \"unbounded\"\ncpu = \"2ms\"\n\
         [gateway]\nkind = \"reference\"\nupstream_timeout = \"5s\"\n\
         [client]\nthreads = 1\ninterval = \"250ms\"\ntimeout = \"5s\"\n\
         [[faults]]\nat = \"500ms\"\ncomponent = \"upstream\"\naction = \"slow\"\nfor = \"1s\"\ncpu_factor = 10\ndelay = \"300ms\"\n\
         [[faults]]\nat = \"2250ms\"\ncomponent = \"gateway\"\naction = \"slow\"\nfor = \"1s\"\ndelay = \"300ms\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    binary::run_scenario(&file, &out_dir, 0);
    let s = binary::summary(&out_dir);
    let faults = s["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2, "{faults:#?}");
    for (f, (role, from, to)) in faults
        .iter()
        .zip([("upstream", 0.5, 1.5), ("gateway", 2.25, 3.25)])
    {
        assert_eq!(
            (f["component"].as_str(), f["action"].as_str()),
            (Some(role), Some("slow"))
        );
        assert!(f["error"].is_null(), "{f:#}");
        let (at, until) = (f["at_s"].as_f64().unwrap(), f["until_s"].as_f64().unwrap());
        assert!(at >= from && at < from + 0.3, "{f:#}");
        assert!(until >= to && until < to + 0.3, "{f:#}");
    }
    let rows = contend::report::read_intervals_csv(&out_dir.join("intervals.csv")).unwrap();
    let within = |from: f64, to: f64| {
        rows.iter()
            .filter(move |r| r.start_s >= from - 1e-6 && r.start_s + r.duration_s <= to + 1e-6)
            .filter(|r| r.ok_2xx > 0)
            .map(|r| r.p50_us)
            .collect::<Vec<u64>>()
    };
    for (from, to) in [(0.85, 1.5), (2.6, 3.25)] {
        let slow = within(from, to);
        assert!(!slow.is_empty(), "intervals inside {from}-{to}");
        assert!(
            slow.iter().all(|&p50| p50 >= 300_000),
            "{from}-{to}: {slow:?}"
        );
    }
    for (from, to) in [(0.0, 0.5), (2.0, 2.25), (3.75, 4.0)] {
        let plain = within(from, to);
        assert!(!plain.is_empty(), "intervals inside {from}-{to}");
        assert!(
            plain.iter().all(|&p50| p50 < 300_000),
            "{from}-{to}: {plain:?}"
        );
    }
    let cpu_s = s["upstream_accounting"]["totals"]["cpu_s"]
        .as_f64()
        .unwrap();
    let plain_cpu_s = s["arrivals"].as_f64().unwrap() * 0.002;
    assert!(
        cpu_s > plain_cpu_s * 1.5,
        "the slowed second burnt ten times the CPU: {cpu_s} s against {plain_cpu_s} s without"
    );
}

/// A slowdown that cannot apply is refused before the run, exit 2.
#[test]
fn slow_faults_that_cannot_apply_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"f\"\n[[phases]]\nrate = 10\nduration = \"3s\"\n";
    let fault = "[[faults]]\nat = \"1s\"\naction = \"slow\"\n";
    let cases = [
        (
            format!(
                "{base}[gateway]\nkind = \"reference\"\nrate_limit = {{ rate = 10 }}\n[store]\nkind = \"redis\"\n{fault}component = \"store\"\nfor = \"1s\"\ndelay = \"10ms\"\n"
            ),
            "DEBUG SLEEP blocks every client",
        ),
        (
            format!(
                "{base}[upstream]\nkind = \"mock\"\n{fault}component = \"upstream\"\ndelay = \"10ms\"\n"
            ),
            "needs for = \"3s\"",
        ),
        (
            format!(
                "{base}[upstream]\nkind = \"mock\"\n{fault}component = \"upstream\"\nfor = \"1s\"\n"
            ),
            "needs how much slower",
        ),
        (
            format!(
                "{base}[upstream]\nkind = \"mock\"\n[gateway]\nkind = \"reference\"\n{fault}component = \"gateway\"\nfor = \"1s\"\ncpu_factor = 2\n"
            ),
            "the gateway takes only delay",
        ),
        (
            format!(
                "{base}[upstream]\nkind = \"mock\"\n[gateway]\nkind = \"haproxy\"\n{fault}component = \"gateway\"\nfor = \"1s\"\ndelay = \"10ms\"\n"
            ),
            "cannot apply to haproxy",
        ),
        (
            format!(
                "{base}[upstream]\nkind = \"mock\"\n[[faults]]\nat = \"1s\"\naction = \"pause\"\ncomponent = \"upstream\"\nfor = \"1s\"\ndelay = \"10ms\"\n"
            ),
            "go with action = \"slow\"",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, body).unwrap();
        let out = binary::run(
            binary::contend()
                .arg("run")
                .arg(&path)
                .arg("--out")
                .arg(dir.path().join(format!("o{i}"))),
        );
        binary::assert_exit(&out, 2);
        let err = binary::text(&out.stderr);
        assert!(err.contains(want), "case {i}: want {want:?} in\n{err}");
    }
}
