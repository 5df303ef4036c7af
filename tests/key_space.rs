//! A generated key space (`[keys] count = N`) through the reference
//! gateway with a per-key rate limit: every arrival carries a drawn key,
//! the per-key counts add up, and the hottest key's share is Zipf's; over
//! HTTP/1.1 (the key written into the encoded request) and HTTP/2 (a
//! header value made for each stream).

use serde_json::Value;

use crate::binary::{assert_exit, contend, run, summary, text};

/// Zipf(s) over n keys: the hottest key's share, 1 / sum of k^-s.
fn zipf_top_share(n: u32, s: f64) -> f64 {
    1.0 / (1..=n).map(|k| f64::from(k).powf(-s)).sum::<f64>()
}

#[test]
fn a_zipf_space_of_100000_keys_runs_and_its_counts_add_up() {
    zipf_space("", "");
}

#[test]
fn a_zipf_space_over_http2_stamps_each_stream_with_its_key() {
    zipf_space("http2 = true\n", "http = \"2\"\n");
}

/// The Zipf run with `gateway` and `client` added to those tables.
fn zipf_space(gateway: &str, client: &str) {
    let _turn = crate::util::one_measurement_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zipf.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"zipf\"\n[[phases]]\nrate = 500\nduration = \"2s\"\n[upstream]\nsleep = \"1ms\"\n\
             [gateway]\nkind = \"reference\"\nupstream_timeout = \"2s\"\nrate_limit = {{ rate = 2, burst = 2 }}\n{gateway}\
             [keys]\ncount = 100000\ndistribution = \"zipf\"\nexponent = 1.1\nprefix = \"user-\"\n\
             [client]\nthreads = 1\n{client}"
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("report");
    let out = run(contend()
        .args(["run", "--no-progress", "--out"])
        .arg(&out_dir)
        .arg(&file));
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Key space: 100000 keys (zipf s=1.1)"),
        "{stdout}"
    );
    let s = summary(&out_dir);
    let http = if client.is_empty() {
        "HTTP/1.1"
    } else {
        "HTTP/2"
    };
    assert_eq!(s["connections"]["http"], http, "{}", s["connections"]);
    let space = &s["key_space"];
    assert_eq!(space["count"], 100_000);
    assert_eq!(space["distribution"], "zipf");
    let arrivals = s["arrivals"].as_u64().unwrap();
    assert!(arrivals > 500, "{arrivals}");
    assert_eq!(space["arrivals"].as_u64(), Some(arrivals), "{space}");
    let top = space["top"].as_array().unwrap();
    assert_eq!(top.len(), 20);
    let first = &top[0];
    let n = |v: &Value, f: &str| v[f].as_u64().unwrap();
    for k in top {
        assert_eq!(
            n(k, "arrivals"),
            n(k, "admitted") + n(k, "limited") + n(k, "other"),
            "{k}"
        );
    }
    // The hottest key is key 0, limited by the gateway past its burst.
    assert_eq!(first["key"], "user-00000");
    assert!(n(first, "limited") > 0, "{first}");
    assert!(n(first, "admitted") <= 2 + 2 * 4, "{first}");
    let share = n(first, "arrivals") as f64 / arrivals as f64;
    let want = zipf_top_share(100_000, 1.1);
    assert!(
        (want * 0.6..want * 1.4).contains(&share),
        "top key share {share:.3}, Zipf(1.1) over 100000 keys gives {want:.3}"
    );
    let seen = n(space, "keys_seen");
    assert!(seen > 50 && seen < arrivals, "{space}");
    // The gateway limited each key on its own: one key shared by every
    // request would have had few admissions in all.
    let admitted: u64 = top.iter().map(|k| n(k, "admitted")).sum();
    let ok = s["outcomes"]["responses"]["200"].as_u64().unwrap();
    assert!(
        ok > 10 * n(first, "admitted").max(1) && ok >= admitted,
        "{ok} {space}"
    );
}
