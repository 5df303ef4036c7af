//! Distributed quotas against a real redis-server: gateway replicas
//! sharing one quota in the store (where in-process limits each admit
//! their own), a paused store under fail-open and fail-closed and their
//! recovery (also with the local cache), a store killed mid-run by a
//! `[[faults]]` entry, the scenario's refusals of faults that cannot be
//! applied, the quota experiment end to end, and the local cache's sync of
//! many keys in one round trip, reloading a script the store has lost.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use contend::scenario::{GatewayKind, GatewaySpec, MockUpstreamSpec, StoreSpec, Target};
use contend::topology::{Component, Topology};
use contend_gateway::store::OnStoreError;
use contend_gateway::{Policies, RateLimitRule};

use crate::binary::{assert_exit, contend, run, summary};
use crate::util::component_present;

fn redis_present(test: &str) -> bool {
    component_present(test, contend::topology::redis::find())
}

fn spec(replicas: usize, store: Option<OnStoreError>, rate_per_s: f64) -> GatewaySpec {
    GatewaySpec {
        kind: GatewayKind::Reference,
        policies: Policies {
            rate_limit: Some(RateLimitRule {
                rate_per_s,
                burst: 1,
            }),
            ..Policies::default()
        },
        replicas,
        store: store.map(|on_store_error| StoreSpec {
            url: None,
            cpus: None,
            timeout: Duration::from_millis(50),
            on_store_error,
            sync_interval: None,
        }),
        ..GatewaySpec::default()
    }
}

fn start(spec: &GatewaySpec) -> Topology {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_contend"));
    Topology::start(&Target::Mock(MockUpstreamSpec::default()), spec, exe)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Statuses of GETs sent one after another for `span`, to the replicas in
/// turn: (200s, 429s, 503s).
fn hammer(addrs: &[SocketAddr], span: Duration) -> (u64, u64, u64) {
    let (mut ok, mut limited, mut unavailable) = (0, 0, 0);
    let end = Instant::now() + span;
    let mut i = 0;
    while Instant::now() < end {
        match contend::topology::http::request(addrs[i % addrs.len()], "GET", "/") {
            Ok((200, _)) => ok += 1,
            Ok((429, _)) => limited += 1,
            Ok((503, _)) => unavailable += 1,
            other => panic!("unexpected answer {other:?}"),
        }
        i += 1;
    }
    (ok, limited, unavailable)
}

fn status(addr: SocketAddr) -> u16 {
    contend::topology::http::request(addr, "GET", "/")
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

#[test]
fn two_replicas_share_one_quota_in_the_store_where_in_process_limits_admit_twice() {
    if !redis_present("two_replicas_share_one_quota_in_the_store") {
        return;
    }
    let _turn = crate::util::one_measurement_at_a_time();
    // One key at Q = 20/s (burst 1) for 3 s, offered far above it: the
    // quota admits about Q x 3 s + 1 = 61 in total.
    let q = 20.0;
    let span = Duration::from_secs(3);
    let quota = q * span.as_secs_f64() + 1.0;
    for (store, cache, low, high) in [
        // Shared: within 25% of the quota.
        (Some(OnStoreError::Closed), false, 0.75, 1.25),
        // Shared through each replica's local cache, synced every 250 ms:
        // over by at most about one interval of both replicas' admissions.
        (Some(OnStoreError::Closed), true, 0.75, 1.6),
        // Each replica in its own memory: about twice the quota.
        (None, false, 1.6, 2.4),
    ] {
        let mut spec = spec(2, store, q);
        if let (true, Some(store)) = (cache, spec.store.as_mut()) {
            store.sync_interval = Some(Duration::from_millis(250));
        }
        let topology = start(&spec);
        let addrs = topology.gateway_addrs();
        assert_eq!(addrs.len(), 2, "two replicas listen");
        let (ok, limited, unavailable) = hammer(&addrs, span);
        assert_eq!(unavailable, 0, "the store answered every call");
        assert!(
            limited > ok,
            "offered far above the quota: {ok} ok, {limited} limited"
        );
        let share = ok as f64 / quota;
        assert!(
            (low..=high).contains(&share),
            "store {store:?} (cache {cache}): admitted {ok} of a quota of {quota} ({share:.2}x), expected {low}x to {high}x"
        );
        let warnings = topology.stop();
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}

#[test]
fn a_paused_store_fails_open_or_closed_and_both_recover_when_it_resumes() {
    if !redis_present("a_paused_store_fails_open_or_closed") {
        return;
    }
    for (mode, during) in [(OnStoreError::Open, 200), (OnStoreError::Closed, 503)] {
        // 1 per second, burst 1: the first request passes, the next is refused.
        let mut topology = start(&spec(1, Some(mode), 1.0));
        let gateway = topology.gateway_addrs()[0];
        assert_eq!(status(gateway), 200);
        assert_eq!(
            status(gateway),
            429,
            "over the quota while the store answers"
        );
        let store_pid = topology.store.as_ref().expect("a store").child().pid();
        contend::sys::signal_group(store_pid, libc::SIGSTOP).unwrap();
        for _ in 0..3 {
            let asked = Instant::now();
            assert_eq!(
                status(gateway),
                during,
                "{mode:?} while the store is paused"
            );
            // Each call waits out the 50 ms timeout, never much longer.
            assert!(asked.elapsed() < Duration::from_secs(2));
        }
        contend::sys::signal_group(store_pid, libc::SIGCONT).unwrap();
        // Resumed: the limit is the store's again (a refused request
        // within a few seconds: the queued calls are answered first).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = 0;
        while Instant::now() < deadline {
            last = status(gateway);
            if last == 429 {
                break;
            }
        }
        assert_eq!(
            last, 429,
            "{mode:?}: the store decides again after it resumes"
        );
        // The gateway counted what happened, per key and in total.
        let metrics =
            contend::topology::telemetry::scrape(gateway, "/metrics", Duration::from_secs(2), None)
                .unwrap();
        let totals = contend::topology::telemetry::replica_totals(&metrics).unwrap();
        assert!(totals["rate_limit_store_error"] >= 3.0, "{totals:?}");
        let fail_open = totals["rate_limit_fail_open"];
        match mode {
            OnStoreError::Open => assert!(fail_open >= 3.0, "{totals:?}"),
            OnStoreError::Closed => assert_eq!(fail_open, 0.0, "{totals:?}"),
        }
        assert!(
            metrics.contains("contend_gateway_rate_limit_key_total{key=\"-\",outcome=\"limited\"}")
        );
        let _ = topology.components_mut();
        drop(topology);
    }
}

/// The gateway's store totals now (`rate_limit_*` on its /metrics).
fn store_totals(gateway: SocketAddr) -> std::collections::BTreeMap<String, f64> {
    let metrics =
        contend::topology::telemetry::scrape(gateway, "/metrics", Duration::from_secs(2), None)
            .unwrap_or_else(|e| panic!("{e}"));
    contend::topology::telemetry::replica_totals(&metrics).unwrap_or_else(|e| panic!("{e}"))
}

/// Asks `gateway` every 20 ms (there is no signal to wait on: a sync must
/// fail, or succeed, first) until `done(status)` or 5 s; returns whether it was done.
fn poll(gateway: SocketAddr, mut done: impl FnMut(u16) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if done(status(gateway)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn with_the_local_cache_a_paused_store_fails_open_or_closed_and_recovers() {
    if !redis_present("with_the_local_cache_a_paused_store_fails_open_or_closed") {
        return;
    }
    for mode in [OnStoreError::Open, OnStoreError::Closed] {
        let mut spec = spec(1, Some(mode), 1.0);
        spec.store.as_mut().unwrap().sync_interval = Some(Duration::from_millis(100));
        let topology = start(&spec);
        let gateway = topology.gateway_addrs()[0];
        assert_eq!(status(gateway), 200, "{mode:?}: decided locally");
        let store_pid = topology.store.as_ref().expect("a store").child().pid();
        contend::sys::signal_group(store_pid, libc::SIGSTOP).unwrap();
        match mode {
            // The local quota (1/s) goes on deciding: its next admission,
            // once a sync has failed, is a fail-open one; never a 503.
            OnStoreError::Open => assert!(
                poll(gateway, |s| {
                    assert_ne!(s, 503, "open never refuses for the store");
                    store_totals(gateway)["rate_limit_fail_open"] >= 1.0
                }),
                "a fail-open admission while the store is paused: {:?}",
                store_totals(gateway)
            ),
            OnStoreError::Closed => assert!(
                poll(gateway, |s| s == 503),
                "closed refuses once a sync has failed"
            ),
        }
        assert!(store_totals(gateway)["rate_limit_store_error"] >= 1.0);
        contend::sys::signal_group(store_pid, libc::SIGCONT).unwrap();
        if mode == OnStoreError::Closed {
            assert!(
                poll(gateway, |s| s != 503),
                "decided again once a sync reaches the store"
            );
        }
        drop(topology);
    }
}

#[test]
fn a_store_killed_mid_run_is_counted_and_the_run_completes() {
    if !redis_present("a_store_killed_mid_run_is_counted") {
        return;
    }
    let _turn = crate::util::one_measurement_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("kill.toml");
    std::fs::write(
        &scenario,
        "name = \"kill\"\n[[phases]]\nrate = 100\nduration = \"3s\"\n\
         [gateway]\nkind = \"reference\"\nreplicas = 2\nrate_limit = { rate = 1000 }\n\
         [store]\nkind = \"redis\"\non_store_error = \"closed\"\ntimeout = \"50ms\"\n\
         [[faults]]\nat = \"1s\"\ncomponent = \"store\"\naction = \"kill\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(contend()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out_dir));
    assert_exit(&out, 0);
    let s = summary(&out_dir);
    let fault = &s["faults"][0];
    assert_eq!(fault["component"], "store");
    assert_eq!(fault["action"], "kill");
    let at = fault["at_s"].as_f64().unwrap();
    assert!(
        (0.9..1.6).contains(&at),
        "applied at {at} s, planned at 1 s"
    );
    let exits = s["component_exits"].as_array().unwrap();
    assert!(
        exits
            .iter()
            .any(|e| e["component"] == "redis" && e["signal"] == 9),
        "{exits:?}"
    );
    // Before the kill every request passed; after it, fail-closed answers 503.
    let responses = &s["outcomes"]["responses"];
    let ok = responses["200"].as_u64().unwrap_or(0);
    let refused = responses["503"].as_u64().unwrap_or(0);
    assert!(ok > 50 && refused > 100, "{responses}");
    let replicas = s["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2);
    let errors: f64 = replicas
        .iter()
        .map(|r| r["totals"]["rate_limit_store_error"].as_f64().unwrap())
        .sum();
    assert_eq!(errors as u64, refused, "every 503 is a counted store error");
    // The access-log accounting holds both replicas' lines: every arrival.
    let accounting = &s["gateway_accounting"];
    assert_eq!(
        accounting["totals"]["requests"].as_u64(),
        s["arrivals"].as_u64(),
        "{}",
        accounting["totals"]
    );
}

#[test]
fn faults_that_cannot_be_applied_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"f\"\n[[phases]]\nrate = 10\nduration = \"2s\"\n[gateway]\nkind = \"reference\"\n\
                rate_limit = { rate = 10 }\n";
    // (extra lines, part of the error)
    let cases = [
        (
            "[[faults]]\nat = \"1s\"\ncomponent = \"store\"\naction = \"pause\"\nfor = \"1s\"\n",
            "needs a store contend starts",
        ),
        (
            "[store]\nkind = \"redis\"\n[[faults]]\nat = \"1s\"\ncomponent = \"store\"\naction = \"pause\"\n",
            "needs for = \"3s\"",
        ),
        (
            "[store]\nkind = \"redis\"\n[[faults]]\nat = \"1s\"\ncomponent = \"store\"\naction = \"pause\"\nfor = \"5s\"\n",
            "past the load's 2.0 s",
        ),
        (
            "[[faults]]\nat = \"1s\"\ncomponent = \"gateway\"\naction = \"restart\"\n",
            "only the store can be started again",
        ),
        (
            "[[faults]]\nat = \"1s\"\ncomponent = \"gateway:3\"\naction = \"kill\"\n",
            "there are 1 gateway replica(s)",
        ),
        ("[store]\nurl = \"http://x:1\"\n", "is not a Redis URL"),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let out = run(contend()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join(format!("o{i}"))));
        assert_exit(&out, 2);
        let err = crate::binary::text(&out.stderr);
        assert!(err.contains(want), "case {i}: want {want:?} in\n{err}");
    }
}

/// Runs the quota experiment through the binary: Q = 20/s per key (burst
/// 5) over 2 replicas sharing a redis store (a generous 250 ms timeout: on
/// a busy machine a short one also fails outside any fault), the local
/// cache syncing every 500 ms, with `phases_and_keys` added; returns the
/// temporary folder (kept while it lives) and the report folder.
fn run_quota(phases_and_keys: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("quota.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"q\"\nexperiment = \"quota\"\n\
             [gateway]\nkind = \"reference\"\nreplicas = 2\nrate_limit = {{ rate = 20, burst = 5 }}\n\
             [store]\nkind = \"redis\"\ntimeout = \"250ms\"\nsync_interval = \"500ms\"\n\
             [client]\ninterval = \"500ms\"\n{phases_and_keys}"
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(contend()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out_dir));
    assert_exit(&out, 0);
    (dir, out_dir)
}

#[test]
fn the_quota_experiment_measures_every_design_and_writes_its_answers() {
    if !redis_present("the_quota_experiment_measures_every_design") {
        return;
    }
    let _turn = crate::util::one_measurement_at_a_time();
    // Q = 20/s per key (burst 5: with none, a GCRA admits only λ/(1+λ/Q)
    // of random arrivals, well under Q) over 2 replicas; "heavy" offers 3Q,
    // "light" Q/2; the store paused from 1 s to 2 s of each fault design's 3 s.
    let (_dir, out_dir) = run_quota(
        "[[phases]]\nrate = 70\nduration = \"3s\"\n\
         [[faults]]\nat = \"1s\"\ncomponent = \"store\"\naction = \"pause\"\nfor = \"1s\"\n\
         [[keys]]\nname = \"heavy\"\nweight = 6\n[[keys]]\nname = \"light\"\nweight = 1\n",
    );
    let s = summary(&out_dir);
    let designs = s["quota"]["designs"].as_array().expect("quota designs");
    let names: Vec<&str> = designs
        .iter()
        .map(|d| d["design"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "in-process",
            "store",
            "store-cache",
            "fault-open",
            "fault-closed"
        ]
    );
    let design = |name: &str| designs.iter().find(|d| d["design"] == name).unwrap();
    for d in designs {
        assert!(d["error"].is_null(), "{d}");
    }
    // Heavy's admissions against Q: about 2Q with two in-process limits,
    // about Q with the store (generous bounds: the machine is shared).
    let heavy_share = |name: &str| {
        let d = design(name);
        let heavy = d["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == "heavy")
            .unwrap();
        heavy["admitted_per_s"].as_f64().unwrap() / 20.0
    };
    let local = heavy_share("in-process");
    let shared = heavy_share("store");
    assert!(
        (1.5..2.6).contains(&local),
        "in-process admitted {local:.2}x Q"
    );
    assert!(
        (0.7..1.35).contains(&shared),
        "store admitted {shared:.2}x Q"
    );
    assert!(design("in-process")["over_admitted"].as_u64().unwrap() > 30);
    // One store call per request, far fewer behind the cache.
    let calls = |name: &str| design(name)["store_calls_per_request"].as_f64().unwrap();
    assert!((0.9..1.1).contains(&calls("store")), "{}", calls("store"));
    assert!(calls("store-cache") < 0.6, "{}", calls("store-cache"));
    assert!(design("in-process")["store_calls_per_request"].is_null());
    // The pause: a store-down window in both fault designs, ended before
    // the load did (both recovered); fail-open admitted, fail-closed refused.
    for name in ["fault-open", "fault-closed"] {
        let d = design(name);
        let windows = d["store_down"].as_array().unwrap();
        assert!(!windows.is_empty(), "{name}: {d}");
        let end = windows.last().unwrap()["end_s"].as_f64().unwrap();
        assert!(end < 3.0, "{name}: store errors until {end} s");
        assert_eq!(d["faults"][0]["action"], "pause");
    }
    assert!(
        design("fault-open")["fail_open_admissions"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(design("fault-open")["errors_5xx"], 0);
    assert!(design("fault-closed")["errors_5xx"].as_u64().unwrap() > 0);
    for file in [
        "quota.md",
        "quota.csv",
        "quota-accuracy.svg",
        "quota-faults.png",
        "report.html",
        "design-store/summary.json",
        "design-fault-open/latency-over-time.svg",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    let md = std::fs::read_to_string(out_dir.join("quota.md")).unwrap();
    for part in [
        "1. Accuracy",
        "2. The check's cost",
        "3. A store fault",
        "4. Footprint",
    ] {
        assert!(md.contains(part), "{part} missing from quota.md:\n{md}");
    }
    // `contend report` re-renders the quota page, not a plain run's.
    std::fs::remove_file(out_dir.join("quota-faults.svg")).unwrap();
    let again = run(contend().arg("report").arg(&out_dir));
    assert_exit(&again, 0);
    assert!(out_dir.join("quota-faults.svg").is_file());
    let page = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(page.contains("4. Footprint") && page.contains("design-store/report.html"));
}

/// A store killed at 1 s and started again 1 s later (`kill` with `for`):
/// its rows in `components.csv` stop at the kill and go on after the
/// restart, naming the new process, with the gateways' calls counted again.
#[test]
fn a_restarted_stores_telemetry_resumes() {
    if !redis_present("a_restarted_stores_telemetry_resumes") {
        return;
    }
    let _turn = crate::util::one_measurement_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("restart.toml");
    std::fs::write(
        &scenario,
        "name = \"restart\"\n[[phases]]\nrate = 50\nduration = \"4s\"\n\
         [client]\ninterval = \"250ms\"\n\
         [gateway]\nkind = \"reference\"\nrate_limit = { rate = 1000 }\n\
         [store]\nkind = \"redis\"\non_store_error = \"open\"\ntimeout = \"50ms\"\n\
         [[faults]]\nat = \"1s\"\ncomponent = \"store\"\naction = \"kill\"\nfor = \"1s\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(contend()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out_dir));
    assert_exit(&out, 0);
    let s = summary(&out_dir);
    let fault = &s["faults"][0];
    let restarted_s = fault["until_s"].as_f64().expect("restarted");
    assert!(fault["error"].is_null(), "{fault:#}");
    let csv = std::fs::read_to_string(out_dir.join("components.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (pid, start, alive, cpu) = (col("pid"), col("start_s"), col("alive"), col("cpu_cores"));
    let store: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[0] == "store")
        .collect();
    let before: Vec<_> = store
        .iter()
        .filter(|r| r[start].parse::<f64>().unwrap() < 1.0)
        .collect();
    let after: Vec<_> = store
        .iter()
        .filter(|r| r[start].parse::<f64>().unwrap() > restarted_s)
        .collect();
    assert!(
        !before.is_empty() && after.len() >= 3,
        "store rows resume after {restarted_s} s:\n{csv}"
    );
    let first_pid = before[0][pid];
    for r in &after {
        assert_ne!(
            r[pid], first_pid,
            "a row after the restart names the new process: {r:?}"
        );
        assert_eq!(r[alive], "true", "{r:?}");
        assert!(!r[cpu].is_empty(), "its CPU is read: {r:?}");
    }
}

/// The quota experiment over a generated key space (1,000 keys, Zipf):
/// each design counts every arrival; the store holds the hot key to its
/// quota; the local cache syncs only the keys still live, so it costs fewer
/// store calls than one per request (it cost 1.26 when it synced every key
/// ever seen).
#[test]
fn the_quota_experiment_over_a_zipf_key_space_syncs_only_live_keys() {
    if !redis_present("the_quota_experiment_over_a_zipf_key_space") {
        return;
    }
    let _turn = crate::util::one_measurement_at_a_time();
    let (_dir, out_dir) = run_quota(
        "[[phases]]\nrate = 400\nduration = \"3s\"\n\
         [keys]\ncount = 1000\ndistribution = \"zipf\"\nexponent = 1.1\nprefix = \"user-\"\n",
    );
    let s = summary(&out_dir);
    let designs = s["quota"]["designs"].as_array().expect("quota designs");
    let design = |name: &str| designs.iter().find(|d| d["design"] == name).unwrap();
    for d in designs {
        assert!(d["error"].is_null(), "{d}");
        let n = |f: &str| d[f].as_u64().unwrap();
        assert_eq!(
            n("arrivals"),
            n("admitted") + n("limited_429") + n("errors_5xx"),
            "{d}"
        );
    }
    // The hottest key is limited to about Q = 20/s through the store.
    let hot = design("store")["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "user-000")
        .expect("the hottest key among the listed")
        .clone();
    let share = hot["admitted_per_s"].as_f64().unwrap() / 20.0;
    assert!(
        (0.7..1.35).contains(&share),
        "store admitted {share:.2}x Q: {hot}"
    );
    let calls = |name: &str| design(name)["store_calls_per_request"].as_f64().unwrap();
    assert!((0.9..1.1).contains(&calls("store")), "{}", calls("store"));
    assert!(calls("store-cache") < 0.9, "{}", calls("store-cache"));
}

/// Sends one GET for rate-limit key `key` (the `x-api-key` header) on its
/// own connection; its status.
fn status_for_key(gateway: SocketAddr, key: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(gateway).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {gateway}\r\nx-api-key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

/// What redis-server has counted so far (`INFO`).
#[derive(Debug, Clone, Copy)]
struct StoreCounts {
    /// EVALSHA calls that ran the script (neither failed nor refused).
    scripts_run: u64,
    /// Replies written to clients: about one per round trip however many
    /// commands it carried (`total_writes_processed`).
    writes: u64,
    /// NOSCRIPT errors answered.
    noscript: u64,
}

fn store_counts(store: &mut redis::Connection) -> StoreCounts {
    let text: String = redis::cmd("INFO")
        .arg("everything")
        .query(store)
        .unwrap_or_else(|e| panic!("{e}"));
    // `cmdstat_evalsha:calls=4,usec=..,rejected_calls=0,failed_calls=0`.
    let field = |line: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|rest| {
                rest.trim()
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(name)?.parse().ok())
            })
            .unwrap_or(0)
    };
    let evalsha = |name| field("cmdstat_evalsha:", name);
    StoreCounts {
        scripts_run: evalsha("calls=") - evalsha("failed_calls="),
        writes: field("total_writes_processed:", ""),
        noscript: field("errorstat_NOSCRIPT:", "count="),
    }
}

/// Reads the store's counts every 50 ms (a sync has no signal outside the
/// gateway) until `done` or 10 s; the last counts read.
fn wait_for_store(
    store: &mut redis::Connection,
    done: impl Fn(&StoreCounts) -> bool,
) -> StoreCounts {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = store_counts(store);
        if done(&counts) || Instant::now() > deadline {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the store holds the gateway's GCRA script (`SCRIPT EXISTS`).
fn script_loaded(store: &mut redis::Connection) -> bool {
    let hash = redis::Script::new(contend_gateway::store::GCRA_SCRIPT)
        .get_hash()
        .to_string();
    let loaded: Vec<bool> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(hash)
        .query(store)
        .unwrap_or_else(|e| panic!("{e}"));
    loaded == [true]
}

/// The local cache syncs every live key in one pipelined round trip, and a
/// store that has lost the script (`SCRIPT FLUSH`, then a restart) gets it
/// loaded again with no key left unsynced.
#[test]
fn the_local_cache_syncs_every_live_key_in_one_round_trip_and_reloads_a_lost_script() {
    if !redis_present("the_local_cache_syncs_every_live_key_in_one_round_trip") {
        return;
    }
    const KEYS: u64 = 200;
    // One request per 100 s (burst 1): each key's one admission keeps it
    // live for the whole test, so every sync charges all the keys.
    let mut spec = spec(1, Some(OnStoreError::Closed), 0.01);
    let store_spec = spec.store.as_mut().unwrap();
    store_spec.sync_interval = Some(Duration::from_millis(100));
    store_spec.timeout = Duration::from_millis(250);
    let mut topology = start(&spec);
    let gateway = topology.gateway_addrs()[0];
    let url = topology.store.as_ref().expect("a store").url();
    let connect = || {
        redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut store = connect();
    for k in 0..KEYS {
        assert_eq!(status_for_key(gateway, &format!("k{k}")), 200, "key k{k}");
    }
    assert_eq!(status_for_key(gateway, "k0"), 429, "over k0's quota");

    // Three syncs' worth of script calls: as many round trips as syncs
    // (give or take the store reading a large pipeline in pieces, and
    // these INFO calls' own replies), never one per key.
    let before = store_counts(&mut store);
    let after = wait_for_store(&mut store, |c| {
        c.scripts_run >= before.scripts_run + 3 * KEYS
    });
    let run = after.scripts_run - before.scripts_run;
    assert!(run >= 3 * KEYS, "the syncs ran {run} scripts in 10 s");
    let syncs = run as f64 / KEYS as f64;
    let writes_per_sync = (after.writes - before.writes) as f64 / syncs;
    assert!(
        writes_per_sync < KEYS as f64 / 10.0,
        "{writes_per_sync:.1} replies written per sync of {KEYS} keys: one round trip per key"
    );

    // The store forgets the script: the next sync meets NOSCRIPT, loads it
    // again and charges every key.
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .exec(&mut store)
        .unwrap_or_else(|e| panic!("{e}"));
    let flushed = store_counts(&mut store);
    let after = wait_for_store(&mut store, |c| {
        c.scripts_run >= flushed.scripts_run + 2 * KEYS
    });
    assert!(
        after.noscript > flushed.noscript,
        "a sync met NOSCRIPT: {after:?}"
    );
    assert!(
        after.scripts_run >= flushed.scripts_run + 2 * KEYS,
        "syncs went on after SCRIPT FLUSH: {after:?}"
    );
    assert!(script_loaded(&mut store), "the script is loaded again");
    assert_eq!(
        store_totals(gateway)["rate_limit_store_error"],
        0.0,
        "NOSCRIPT is no store error"
    );

    // A restarted store has lost the script too: once the connection is
    // back, syncs load it and charge every key again.
    topology
        .store
        .as_mut()
        .unwrap()
        .restart()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut store = connect();
    let after = wait_for_store(&mut store, |c| c.scripts_run >= 2 * KEYS);
    assert!(
        after.scripts_run >= 2 * KEYS,
        "syncs reached the restarted store: {after:?}"
    );
    assert!(
        script_loaded(&mut store),
        "the script is loaded in the restarted store"
    );
    // The last sync reached the store: closed decides again (a new key passes).
    assert_eq!(status_for_key(gateway, "new"), 200);
    drop(topology);
}
