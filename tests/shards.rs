//! Sharded runs: `contend run --shard I/N` (and `--shard auto` with a
//! Kubernetes Indexed Job's environment), a common `--start-at`, and
//! `contend merge` of the shards' report folders into one exact report.

use std::path::{Path, PathBuf};
use std::process::Child;

use contend::report::histograms::Histograms;
use serde_json::Value;

use crate::binary::{assert_exit, contend, finish, run, spawn, summary, text};
use crate::util;

/// A scenario of 300/s for 2 s with two keys, in `dir`.
fn scenario(dir: &Path, name: &str, interval: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\n[[phases]]\nrate = 300\nduration = \"2s\"\n\
             [[keys]]\nname = \"a\"\nweight = 2\n[[keys]]\nname = \"b\"\n\
             [client]\nthreads = 1\ninterval = \"{interval}\"\n"
        ),
    )
    .unwrap();
    path
}

/// Starts shard `index` of `count` the way a Kubernetes Indexed Job does:
/// `--shard auto` with JOB_COMPLETION_INDEX and CONTEND_SHARDS set.
fn start_shard(file: &Path, target: &str, index: usize, count: usize, out: &Path) -> Child {
    spawn(
        contend()
            .arg("run")
            .arg(file)
            .args([
                "--target",
                target,
                "--shard",
                "auto",
                "--start-at",
                "+2s",
                "--out",
            ])
            .arg(out)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("CONTEND_SHARDS", count.to_string()),
    )
}

fn u(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} in {v:#}"))
}

/// Three shards as three processes with the Job's environment contract, a
/// common start, then `contend merge`: arrivals and outcomes are the sums,
/// every histogram is the exact sum of the shards' (count by count), the
/// achieved rate is the scenario's, and a threshold gates the merged
/// report like a single run's (exit 0, then exit 3).
#[test]
fn three_shards_merge_into_the_whole_load_exactly() {
    let server = util::http_server(|_| std::time::Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "sharded", "500ms");
    let outs: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("shard-{i}")))
        .collect();
    let children: Vec<Child> = (0..3)
        .map(|i| start_shard(&file, &server.url(), i, 3, &outs[i]))
        .collect();
    for child in children {
        assert_exit(&finish(child), 0);
    }
    let shards: Vec<Value> = outs.iter().map(|d| summary(d)).collect();
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(u(s, "/shard/index"), i as u64);
        assert_eq!(u(s, "/shard/count"), 3);
        assert_eq!(s["shard"]["start_late_s"], 0.0, "{s:#}");
        // A third of 300/s for 2 s each.
        assert!(
            u(s, "/arrivals").abs_diff(200) <= 1,
            "{}",
            u(s, "/arrivals")
        );
    }
    let merged_dir = dir.path().join("merged");
    let out = run(contend()
        .arg("merge")
        .args(&outs)
        .arg("--out")
        .arg(&merged_dir)
        .args(["--threshold", "p99 < 10s"]));
    assert_exit(&out, 0);
    let m = summary(&merged_dir);
    let total = |pointer: &str| shards.iter().map(|s| u(s, pointer)).sum::<u64>();
    assert_eq!(u(&m, "/arrivals"), total("/arrivals"));
    assert_eq!(u(&m, "/arrivals"), 600, "the whole load: 300/s for 2 s");
    assert_eq!(
        u(&m, "/outcomes/classes/2xx"),
        total("/outcomes/classes/2xx")
    );
    assert_eq!(
        u(&m, "/keys/a/outcomes/classes/2xx"),
        total("/keys/a/outcomes/classes/2xx")
    );
    let achieved = m["achieved_rate_per_s"].as_f64().unwrap();
    assert!((achieved - 300.0).abs() < 15.0, "achieved {achieved}/s");
    assert_eq!(m["merged"]["shards"].as_array().map(Vec::len), Some(3));
    // Exact: the merged histograms are the shards' added bucket by bucket.
    let merged = Histograms::read(&merged_dir.join("histograms.hlog")).unwrap();
    for name in [
        "latency",
        "service",
        "schedule_lag",
        "class/2xx",
        "key/a",
        "key/b",
    ] {
        // Summed at the shards' own precision (per-key histograms keep two
        // significant figures, the others three).
        let mut sum: Option<hdrhistogram::Histogram<u64>> = None;
        for d in &outs {
            let shard = Histograms::read(&d.join("histograms.hlog")).unwrap();
            if let Some(h) = shard.get(name) {
                match sum.as_mut() {
                    Some(s) => s.add(h).unwrap(),
                    None => sum = Some(h.clone()),
                }
            }
        }
        let sum = sum.unwrap_or_else(|| panic!("{name} in no shard"));
        let got = merged.get(name).unwrap_or_else(|| panic!("{name} merged"));
        assert_eq!(got.len(), sum.len(), "{name}");
        for (a, b) in got.iter_recorded().zip(sum.iter_recorded()) {
            assert_eq!(
                (a.value_iterated_to(), a.count_at_value()),
                (b.value_iterated_to(), b.count_at_value()),
                "{name}"
            );
        }
    }
    // The merged folder is a report like a run's, and gates like one.
    let gate = run(contend()
        .arg("merge")
        .args(&outs)
        .arg("--out")
        .arg(dir.path().join("gate"))
        .args(["--threshold", "p99 < 1us", "--quiet"]));
    assert_exit(&gate, 3);
    assert!(
        text(&gate.stdout).contains("FAIL p99 < 1us"),
        "{}",
        text(&gate.stdout)
    );
    assert!(merged_dir.join("report.html").exists());
}

/// Folders that are not the shards of one run are refused with the reason.
#[test]
fn merge_refuses_what_is_not_one_run() {
    let server = util::http_server(|_| std::time::Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let run_shard = |file: &Path, shard: &str, out: &str| {
        let out = dir.path().join(out);
        let o = run(contend()
            .arg("run")
            .arg(file)
            .args([
                "--target",
                &server.url(),
                "--shard",
                shard,
                "--duration",
                "300ms",
                "--quiet",
                "--out",
            ])
            .arg(&out));
        assert_exit(&o, 0);
        out
    };
    let one = scenario(dir.path(), "one", "250ms");
    let other = scenario(dir.path(), "other", "250ms");
    let slow = scenario(dir.path(), "one-slow", "500ms");
    let a0 = run_shard(&one, "0/2", "a0");
    let a1 = run_shard(&one, "1/2", "a1");
    let b1 = run_shard(&other, "1/2", "b1");
    let a0_again = run_shard(&one, "0/2", "a0-again");
    // Same name, another interval length.
    std::fs::write(
        &slow,
        std::fs::read_to_string(&slow)
            .unwrap()
            .replace("one-slow", "one"),
    )
    .unwrap();
    let c1 = run_shard(&slow, "1/2", "c1");
    let cases: Vec<(Vec<&PathBuf>, &str)> = vec![
        (vec![&a0, &b1], "is a run of scenario \"other\""),
        (vec![&a0, &a0_again], "are both shard 0 of 2"),
        (vec![&a0], "shards [1] of 2 are missing"),
        (vec![&a0, &c1], "one [client] interval"),
    ];
    for (dirs, want) in cases {
        let out = run(contend()
            .arg("merge")
            .args(dirs.iter().map(|d| d.as_path()))
            .arg("--out")
            .arg(dir.path().join("refused")));
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(want),
            "{want}: {}",
            text(&out.stderr)
        );
    }
    // With --allow-missing a lone shard merges, and says what it lacks.
    let out = run(contend()
        .arg("merge")
        .arg(&a0)
        .args(["--allow-missing", "--out"])
        .arg(dir.path().join("partial")));
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("shards [1] of 2 are missing"),
        "{}",
        text(&out.stdout)
    );
    // Runs shorter than their interval: each shard's one interval is cut
    // short by a different few ms, and they still merge.
    let c0 = run_shard(&slow, "0/2", "c0");
    let out = run(contend()
        .arg("merge")
        .args([&c0, &c1])
        .args(["--quiet", "--out"])
        .arg(dir.path().join("short")));
    assert_exit(&out, 0);
    let _ = a1;
}

/// `--shard auto` without JOB_COMPLETION_INDEX, or an index past the count,
/// is bad input with the fix.
#[test]
fn a_shard_that_cannot_be_told_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "s", "1s");
    let out = run(contend()
        .arg("run")
        .arg(&file)
        .args(["--target", "http://127.0.0.1:9/", "--shard", "auto"])
        .env_remove("JOB_COMPLETION_INDEX"));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("JOB_COMPLETION_INDEX"),
        "{}",
        text(&out.stderr)
    );
    let out = run(contend().arg("run").arg(&file).args([
        "--target",
        "http://127.0.0.1:9/",
        "--shard",
        "3/3",
    ]));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("must be below 3"),
        "{}",
        text(&out.stderr)
    );
}

/// Shards of one `[target] urls` run merge their per-address totals (counts
/// added, percentiles from the merged `address/N` histograms); shards that
/// drove different address lists merge without them, and say why.
#[test]
fn shards_over_the_same_addresses_merge_their_per_address_totals() {
    let servers = [
        util::http_server(|_| std::time::Duration::ZERO),
        util::http_server(|_| std::time::Duration::ZERO),
    ];
    let dir = tempfile::tempdir().unwrap();
    let write = |file: &str, urls: [&str; 2]| {
        let path = dir.path().join(file);
        std::fs::write(
            &path,
            format!(
                "name = \"spread\"\n[[phases]]\nrate = 200\nduration = \"300ms\"\n[target]\n\
                 urls = [\"{}\", \"{}\"]\n[client]\nthreads = 1\n",
                urls[0], urls[1]
            ),
        )
        .unwrap();
        path
    };
    let (a, b) = (servers[0].url(), servers[1].url());
    let same = write("same.toml", [&a, &b]);
    let swapped = write("swapped.toml", [&b, &a]);
    let run_shard = |file: &Path, shard: &str, out: &str| {
        let out = dir.path().join(out);
        let o = run(contend()
            .arg("run")
            .arg(file)
            .args(["--shard", shard, "--quiet", "--out"])
            .arg(&out));
        assert_exit(&o, 0);
        out
    };
    let s0 = run_shard(&same, "0/2", "s0");
    let s1 = run_shard(&same, "1/2", "s1");
    let w1 = run_shard(&swapped, "1/2", "w1");
    let merged_dir = dir.path().join("merged");
    assert_exit(
        &run(contend()
            .arg("merge")
            .args([&s0, &s1])
            .args(["--quiet", "--out"])
            .arg(&merged_dir)),
        0,
    );
    let m = summary(&merged_dir);
    let shards = [summary(&s0), summary(&s1)];
    let merged = Histograms::read(&merged_dir.join("histograms.hlog")).unwrap();
    for i in 0..2 {
        let at = |v: &Value, field: &str| u(v, &format!("/addresses/{i}/{field}"));
        for field in ["sent", "connections_opened", "outcomes/classes/2xx"] {
            assert_eq!(
                at(&m, field),
                shards.iter().map(|s| at(s, field)).sum::<u64>(),
                "address {i} {field}"
            );
        }
        let h = merged
            .get(&format!("address/{i}"))
            .expect("merged histogram");
        assert_eq!(
            h.len(),
            at(&m, "sent"),
            "address {i}: a latency per request sent"
        );
        assert_eq!(at(&m, "p99_us"), h.value_at_quantile(0.99));
    }
    assert_eq!(
        u(&m, "/addresses/0/sent") + u(&m, "/addresses/1/sent"),
        u(&m, "/sent")
    );
    let out = run(contend()
        .arg("merge")
        .args([&s0, &w1])
        .arg("--out")
        .arg(dir.path().join("differ")));
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout)
            .contains("per-address results left out: the shards drove different addresses"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        summary(&dir.path().join("differ"))
            .get("addresses")
            .is_none()
    );
}
