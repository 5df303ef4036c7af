//! The files of a report folder, read back as their consumers read them.
//!
//! Proves: summary.json holds every name the run report promises and
//! matches docs/summary.schema.json; latency.hgrm is HdrHistogram's
//! percentile distribution ending at the run's latency count;
//! latency.hlog is an interval log whose histograms decode (with
//! hdrhistogram's own reader) and add up to the run; intervals.csv holds
//! every arrival and every outcome once, and the pacing window each
//! interval used. All tests but one read one shared run of the binary
//! (500/s for 2 s, two keys, against a loopback server, the adaptive
//! pacing window); the fixed window's has a short run of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

use crate::util;

/// One finished run: its report folder and parsed summary.
struct Run {
    dir: PathBuf,
    summary: Value,
}

/// The shared run, made by the first test that asks for it. Its folder
/// is kept under cargo's target tmp dir (a static is never dropped, so a
/// self-deleting temp dir would only leak in /tmp instead).
fn shared_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("reports-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let server = util::http_server(|_| Duration::ZERO);
        let scenario = dir.join("scenario.toml");
        std::fs::write(
            &scenario,
            format!(
                r#"name = "reports"

[[phases]]
rate = 500
duration = "2s"

[target]
url = "{}"

[[keys]]
name = "ui"
weight = 3

[[keys]]
name = "batch"
weight = 1
"#,
                server.url()
            ),
        )
        .unwrap();
        let out_dir = dir.join("report");
        let out = Command::new(env!("CARGO_BIN_EXE_contend"))
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(&out_dir)
            .stdin(Stdio::null())
            .output()
            .expect("contend runs");
        assert!(
            out.status.success(),
            "{:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap())
            .expect("summary.json is JSON");
        Run {
            dir: out_dir,
            summary,
        }
    })
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn count(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not a count"))
}

// ---- summary.json ---------------------------------------------------------

#[test]
fn summary_holds_every_promised_name() {
    let s = &shared_run().summary;
    let mut missing = Vec::new();
    let mut need = |pointer: String| {
        if s.pointer(&pointer).is_none() {
            missing.push(pointer);
        }
    };
    for name in [
        "schema_version",
        "arrivals",
        "sent",
        "duration_s",
        "intended_rate_per_s",
        "achieved_rate_per_s",
        "outcomes/responses",
        "outcomes/client_timeout",
        "outcomes/connect_error",
        "outcomes/tls_error",
        "outcomes/io_error",
        "connections/http",
        "connections/opened",
        "connections/tls_errors",
        "outcomes/not_sent",
        "generator_bound",
        "driver/threads",
        "driver/cpu_s",
        "driver/requests_per_cpu_s",
        "keys",
    ] {
        need(format!("/{name}"));
    }
    let percentiles = ["p50", "p90", "p99", "p999", "p9999", "max", "mean"];
    for hist in [
        "latency_us",
        "service_time_us",
        "schedule_lag_us",
        "connect_us",
        "tls_handshake_us",
    ] {
        for p in percentiles {
            need(format!("/{hist}/{p}"));
        }
    }
    // Per key: the same outcome counts and latency percentiles.
    for key in ["ui", "batch"] {
        for name in [
            "responses",
            "client_timeout",
            "connect_error",
            "tls_error",
            "io_error",
            "not_sent",
        ] {
            need(format!("/keys/{key}/outcomes/{name}"));
        }
        for p in percentiles {
            need(format!("/keys/{key}/latency_us/{p}"));
        }
    }
    assert!(missing.is_empty(), "summary.json lacks {missing:?}");
    assert_eq!(s["schema_version"], 1);
    // The server answers 204: responses are keyed by the exact code.
    let arrivals = count(s, "/arrivals");
    assert!(
        arrivals.abs_diff(1000) <= 1,
        "500/s for 2 s gave {arrivals} arrivals"
    );
    assert_eq!(count(s, "/outcomes/responses/204"), arrivals);
    let per_key: u64 = ["ui", "batch"]
        .iter()
        .map(|k| count(s, &format!("/keys/{k}/outcomes/responses/204")))
        .sum();
    assert_eq!(per_key, arrivals, "the keys' outcomes add up to the run's");
}

/// docs/summary.schema.json, parsed.
fn schema() -> Value {
    schema_named("summary.schema.json")
}

/// The schema `docs/NAME`.
fn schema_named(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the schema is JSON")
}

/// Fails unless `value` matches the schema `docs/NAME` (`contend logs`'
/// summary has its own).
pub(crate) fn assert_matches_schema_named(name: &str, value: &Value) {
    let errors = violations(&schema_named(name), value);
    assert!(
        errors.is_empty(),
        "does not match docs/{name}:\n{}",
        errors.join("\n")
    );
}

/// Checks `value` against `schema`, pushing one message per violation.
///
/// A small subset of JSON Schema 2020-12, enough for a document of plain
/// objects: `$ref` to `#/$defs/NAME`, `type` (a name or an array of names;
/// `integer` means a number with no fraction), `required`, `properties`,
/// `additionalProperties` (`false`, or a schema for the other members, as
/// for maps like `responses`) and `items`. Other keywords (descriptions,
/// `minimum`, `propertyNames`) are documentation here and are not checked.
fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .expect("only #/$defs/ references");
        let target = root
            .pointer(&format!("/$defs/{name}"))
            .unwrap_or_else(|| panic!("no $defs/{name}"));
        return check(root, target, value, at, errors);
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("bad type keyword {other}"),
        };
        let is = |t: &str| match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "number" => value.is_number(),
            "integer" => value.is_u64() || value.is_i64(),
            other => panic!("unknown type {other}"),
        };
        if !names.iter().any(|t| is(t)) {
            errors.push(format!("{at}: expected {names:?}, got {value}"));
            return;
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().expect("required names are strings");
            if !object.contains_key(name) {
                errors.push(format!("{at}: lacks required {name:?}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, member) in object {
            let member_at = format!("{at}/{name}");
            match (
                properties.and_then(|p| p.get(name)),
                schema.get("additionalProperties"),
            ) {
                (Some(sub), _) => check(root, sub, member, &member_at, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{member_at}: not in the schema"))
                }
                (None, Some(sub)) if sub.is_object() => {
                    check(root, sub, member, &member_at, errors)
                }
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(root, items, item, &format!("{at}/{i}"), errors);
        }
    }
}

fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "", &mut errors);
    errors
}

/// Fails unless `summary` matches docs/summary.schema.json (the cli tests
/// check every summary they make: interrupted, unreachable, mock upstream).
pub(crate) fn assert_matches_schema(summary: &Value) {
    let errors = violations(&schema(), summary);
    assert!(
        errors.is_empty(),
        "summary.json does not match docs/summary.schema.json:\n{}",
        errors.join("\n")
    );
}

#[test]
fn summary_matches_its_schema() {
    assert_eq!(
        schema()["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_matches_schema(&shared_run().summary);
}

/// The dotted path of every number and boolean in `value`, as a threshold
/// names it.
fn number_leaves(value: &Value, at: &str, out: &mut Vec<String>) {
    let below = |name: &str| {
        if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        }
    };
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| number_leaves(v, &below(k), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| number_leaves(v, &below(&i.to_string()), out)),
        Value::Number(_) | Value::Bool(_) => out.push(at.to_string()),
        Value::Null | Value::String(_) => {}
    }
}

#[test]
fn every_number_of_a_real_summary_passes_the_threshold_check() {
    // What `contend run` checks thresholds against before it starts must
    // let through every number the run then writes.
    let run = shared_run();
    let scenario = contend::scenario::load(
        &run.dir.parent().unwrap().join("scenario.toml"),
        &contend::scenario::Overrides::default(),
    )
    .unwrap();
    let paths = contend::report::summary::number_paths(&scenario);
    let mut leaves = Vec::new();
    number_leaves(&run.summary, "", &mut leaves);
    assert!(leaves.len() > 100, "{leaves:?}");
    for leaf in leaves {
        let expr = format!("{leaf} >= 0");
        let t = contend::threshold::Threshold::parse(&expr).unwrap();
        t.check(&["ui", "batch"], &paths)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
}

#[test]
fn every_file_of_the_report_is_one_force_would_clear() {
    crate::binary::assert_only_contend_files(&shared_run().dir);
}

#[test]
fn schema_check_rejects_what_it_should() {
    // The checker must fail a wrong summary, or the test above proves nothing.
    let schema = schema();
    let good = &shared_run().summary;
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("arrivals");
    cases.push(("a missing required name", bad));
    let mut bad = good.clone();
    bad["latency_us"]["p99"] = Value::from("1ms");
    cases.push(("a string where a count belongs", bad));
    let mut bad = good.clone();
    bad["outcomes"]["responses"]["204"] = Value::from(1.5);
    cases.push(("a fraction in the responses map", bad));
    let mut bad = good.clone();
    bad["keys"]["ui"]["latency_us"]
        .as_object_mut()
        .unwrap()
        .remove("p9999");
    cases.push(("a key without p9999", bad));
    let mut bad = good.clone();
    bad["surprise"] = Value::from(true);
    cases.push(("a name the schema does not document", bad));
    for (what, value) in cases {
        assert!(
            !violations(&schema, &value).is_empty(),
            "the checker accepted {what}"
        );
    }
}

// ---- latency.hgrm ---------------------------------------------------------

#[test]
fn hgrm_is_a_percentile_distribution_ending_at_the_run_count() {
    let run = shared_run();
    let latency_count = count(&run.summary, "/latency_us/count");
    assert!(latency_count > 0);
    let hgrm = read(&run.dir, "latency.hgrm");
    let mut lines = hgrm.lines();
    let header: Vec<&str> = lines.next().expect("a header").split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );

    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut footer = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        if line.starts_with("#[") {
            footer.push(line);
            continue;
        }
        assert!(footer.is_empty(), "a row after the footer: {line:?}");
        let row: Vec<f64> = line
            .split_whitespace()
            .map(|c| {
                c.parse()
                    .unwrap_or_else(|_| panic!("not a number in {line:?}"))
            })
            .collect();
        rows.push(row);
    }
    let (last, body) = rows.split_last().expect("rows");
    assert!(
        body.iter().all(|r| r.len() == 4),
        "every row but the last has 4 columns"
    );
    assert_eq!(last.len(), 3, "the last row (percentile 1) has no 1/(1-p)");
    assert_eq!(last[1], 1.0);
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a[0] <= b[0], "values go down: {a:?} then {b:?}");
        assert!(a[1] <= b[1], "percentiles go down: {a:?} then {b:?}");
        assert!(a[2] <= b[2], "TotalCount goes down: {a:?} then {b:?}");
    }
    assert_eq!(
        last[2] as u64, latency_count,
        "the distribution ends at every latency recorded"
    );
    // The file shows milliseconds with 3 decimals; the summary microseconds.
    let max_ms = count(&run.summary, "/latency_us/max") as f64 / 1000.0;
    assert!(
        (last[0] - max_ms).abs() < 0.0015,
        "last value {} ms, max {max_ms} ms",
        last[0]
    );

    assert_eq!(footer.len(), 3, "{footer:?}");
    assert!(footer[0].starts_with("#[Mean"), "{footer:?}");
    assert!(footer[1].starts_with("#[Max"), "{footer:?}");
    assert!(footer[2].starts_with("#[Buckets"), "{footer:?}");
    let total: u64 = footer[1]
        .split("Total count")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start_matches([' ', '='])
                .trim_end_matches(']')
                .trim()
                .parse()
                .ok()
        })
        .expect("Total count in the #[Max line");
    assert_eq!(total, latency_count);
}

// ---- latency.hlog ---------------------------------------------------------

/// Standard base64 (the interval log's encoding of each histogram); the
/// crate hdrhistogram uses for it is not a dependency of ours.
pub(crate) fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    };
    let mut out = Vec::new();
    let (mut bits, mut n_bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        bits = (bits << 6) | u32::from(value(c));
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push((bits >> n_bits) as u8);
            bits &= (1 << n_bits) - 1;
        }
    }
    out
}

#[test]
fn hlog_is_an_interval_log_that_adds_up_to_the_run() {
    let run = shared_run();
    let hlog = read(&run.dir, "latency.hlog");
    let lines: Vec<&str> = hlog.lines().collect();
    assert_eq!(lines.first(), Some(&"#[Histogram log format version 1.3]"));
    assert!(
        lines.iter().any(|l| l.starts_with("#[StartTime: ")),
        "no StartTime"
    );
    assert!(
        lines.contains(&"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""),
        "no legend line"
    );

    let mut deserializer = Deserializer::new();
    let mut start_time = None;
    let mut intervals = 0;
    let mut total = 0u64;
    let mut merged = Histogram::<u64>::new(3).unwrap();
    let mut last_start = Duration::ZERO;
    for entry in IntervalLogIterator::new(hlog.as_bytes()) {
        match entry.expect("the log parses") {
            LogEntry::StartTime(t) => start_time = Some(t),
            LogEntry::BaseTime(_) => {}
            LogEntry::Interval(interval) => {
                let bytes = base64_decode(interval.encoded_histogram());
                let h: Histogram<u64> = deserializer
                    .deserialize(&mut &bytes[..])
                    .expect("a histogram decodes");
                assert_eq!(
                    h.max() as f64,
                    interval.max(),
                    "Interval_Max is the histogram's max"
                );
                assert!(
                    interval.start_timestamp() >= last_start,
                    "intervals in order"
                );
                last_start = interval.start_timestamp();
                total += h.len();
                merged.add(&h).unwrap();
                intervals += 1;
            }
        }
    }
    let s = &run.summary;
    assert_eq!(
        total,
        count(s, "/latency_us/count"),
        "the intervals hold every latency recorded"
    );
    assert_eq!(merged.max(), count(s, "/latency_us/max"));
    let csv_rows = read(&run.dir, "intervals.csv").lines().count() - 1;
    assert_eq!(
        intervals, csv_rows,
        "one histogram per row of intervals.csv"
    );
    // StartTime is the run's start, as summary.json's started_at says (ms).
    let started_at =
        chrono::DateTime::parse_from_rfc3339(s["started_at"].as_str().unwrap()).unwrap();
    let start_ms = start_time.expect("a StartTime entry").as_millis() as i64;
    assert!(
        (start_ms - started_at.timestamp_millis()).abs() <= 1,
        "StartTime {start_ms} ms vs {started_at}"
    );
}

// ---- intervals.csv --------------------------------------------------------

#[test]
fn intervals_csv_holds_every_arrival_and_outcome_once() {
    let run = shared_run();
    let mut reader = csv::Reader::from_path(run.dir.join("intervals.csv")).expect("intervals.csv");
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    for name in [
        "offered",
        "sent",
        "2xx",
        "client_timeout",
        "not_sent",
        "p50_us",
        "p99_us",
        "lag_p99_us",
        "in_flight",
        "new_connections",
        "connect_p99_us",
        "tls_handshake_p99_us",
    ] {
        assert!(
            header.iter().any(|h| h == name),
            "no {name} column in {header:?}"
        );
    }
    // Columns added later go at the end, so readers by position keep working.
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert!(at("tls_error") > at("driver_cpu_cores"), "{header:?}");
    let outcome_columns = [
        "2xx",
        "429",
        "503",
        "504",
        "other_status",
        "client_timeout",
        "connect_error",
        "io_error",
        "not_sent",
        "tls_error",
    ];
    let mut sums: HashMap<&str, u64> = HashMap::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("a CSV row");
        let row: HashMap<&str, &str> = header
            .iter()
            .map(String::as_str)
            .zip(record.iter())
            .collect();
        let int = |name: &str| -> u64 {
            row[name]
                .parse()
                .unwrap_or_else(|_| panic!("{name} = {:?}", row[name]))
        };
        for name in outcome_columns.iter().chain(&["offered", "sent"]) {
            *sums.entry(name).or_default() += int(name);
        }
        assert!(int("p50_us") <= int("p99_us"), "row {rows}: p50 above p99");
        rows += 1;
    }
    assert!(rows >= 2, "a 2 s run at 1 s intervals has at least 2 rows");
    let s = &run.summary;
    let arrivals = count(s, "/arrivals");
    assert_eq!(
        sums["offered"], arrivals,
        "summed offered is the run's arrivals"
    );
    assert_eq!(sums["sent"], count(s, "/sent"));
    let outcomes: u64 = outcome_columns.iter().map(|c| sums[c]).sum();
    assert_eq!(
        outcomes, arrivals,
        "each arrival has one outcome in some interval"
    );
    assert_eq!(sums["2xx"], count(s, "/outcomes/classes/2xx"));
}

#[test]
fn intervals_csv_shows_the_adaptive_window_each_interval_used() {
    let run = shared_run();
    let rows = contend::report::read_intervals_csv(&run.dir.join("intervals.csv")).unwrap();
    let (min_us, max_us) = (
        count(&run.summary, "/driver/pacing_window_us"),
        count(&run.summary, "/driver/pacing_window_max_us"),
    );
    assert!(min_us > 0 && max_us > min_us, "auto: {min_us}..{max_us} us");
    assert!(rows.len() >= 2);
    for r in &rows {
        assert!(
            (min_us..=max_us).contains(&r.pacing_window_us),
            "interval {}: window {} us outside auto's {min_us}..{max_us} us",
            r.index,
            r.pacing_window_us
        );
    }
    let widest = rows.iter().map(|r| r.pacing_window_us).max();
    assert_eq!(
        widest,
        Some(count(&run.summary, "/driver/pacing_window_widest_us")),
        "the intervals' widest is the run's"
    );
    // Added after the others, so readers by position keep working.
    let header = std::fs::read_to_string(run.dir.join("intervals.csv")).unwrap();
    let header = header.lines().next().unwrap_or_default();
    assert!(
        header.ends_with(",goodput_per_s,pacing_window_us"),
        "{header}"
    );
    // report.html says in how many intervals the window was wider.
    let page = std::fs::read_to_string(run.dir.join("report.html")).unwrap();
    let wider = rows.iter().filter(|r| r.pacing_window_us > min_us).count();
    let said = format!(
        "wider than the narrowest in {wider} of {} intervals",
        rows.len()
    );
    assert!(page.contains(&said), "no {said:?} in report.html");
}

#[test]
fn a_fixed_pacing_window_is_in_every_row_of_intervals_csv() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = util::http_server(|_| Duration::ZERO);
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "fixed-window"

[[phases]]
rate = 200
duration = "1s"

[target]
url = "{}"

[client]
threads = 1
interval = "250ms"
pacing_window = "200us"
"#,
            server.url()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("report");
    let out = crate::binary::run(
        crate::binary::contend()
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(&out_dir),
    );
    crate::binary::assert_exit(&out, 0);
    let rows = contend::report::read_intervals_csv(&out_dir.join("intervals.csv")).unwrap();
    assert!(rows.len() >= 4, "1 s at 250 ms: {} rows", rows.len());
    let windows: Vec<u64> = rows.iter().map(|r| r.pacing_window_us).collect();
    assert!(windows.iter().all(|&us| us == 200), "{windows:?}");
    let page = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        page.contains("<td>pacing window</td><td>200us</td>"),
        "a fixed window is said as it is"
    );
}
