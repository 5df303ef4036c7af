//! The scenario parser under random input (proptest, a bounded number of
//! cases so it runs in CI in seconds): good scenario files with random
//! edits (lines dropped, duplicated or cut, values swapped for random
//! numbers, durations, strings, arrays and tables, random text inserted)
//! and random bytes, UTF-8 or not, read from a file.
//!
//! Proves: nothing panics; every error carries a message and is bad input
//! (exit code 2); a scenario that loads also resolves into a driver plan
//! and an arrival schedule without panicking. A crash found here is kept
//! as a fixture in `tests/data/` beside its expected message.

use std::io::Write;
use std::path::Path;

use contend::arrival::{self, Schedule};
use contend::error::Error;
use contend::scenario::{self, Overrides, Scenario, Source, Target};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Scenario files that load: the seeds the edits start from.
const SEEDS: &[&str] = &[
    include_str!("data/good-full.toml"),
    include_str!("data/good-mock.toml"),
    include_str!("data/good-minimal.toml"),
    include_str!("../scenarios/quickstart.toml"),
    include_str!("../scenarios/gateway.toml"),
    include_str!("../scenarios/capacity-sweep.toml"),
    include_str!("../scenarios/client-abort.toml"),
    include_str!("../scenarios/timeout-break.toml"),
    include_str!("../scenarios/gate.toml"),
];

/// `cases` per property: a few seconds in a debug build on a busy
/// machine. `PROPTEST_CASES` asks for more (or fewer) for a longer hunt.
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        // Crashes are kept by hand in tests/data/, not in a file proptest writes.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Checks one parse result: an error is bad input with a message; a
/// scenario goes on into a plan and a schedule without panicking.
fn check(result: Result<Scenario, Error>) -> Result<(), TestCaseError> {
    match result {
        Err(e) => {
            let text = e.to_string();
            prop_assert_eq!(e.exit_code(), 2, "not a bad-input error: {}", text);
            match &e {
                Error::Scenario { message, .. } => {
                    prop_assert!(!message.trim().is_empty(), "no message: {}", text)
                }
                Error::Usage(message) => {
                    prop_assert!(!message.trim().is_empty(), "no message: {}", text)
                }
                other => prop_assert!(false, "not a scenario error: {other:?}"),
            }
        }
        Ok(s) => {
            let url = match &s.target {
                Target::Url(url) | Target::Urls(url, _) => url.clone(),
                Target::Mock(_) => "http://127.0.0.1:9".to_string(),
            };
            // A valid scenario plans one request per key (one without keys),
            // or is refused as bad input.
            let load = contend::driver::Load::Open(s.phases().to_vec());
            match contend::driver::Plan::new(&s, &url, load) {
                Ok(plan) => prop_assert_eq!(plan.keys.len(), s.keys.len().max(1)),
                Err(e) => prop_assert_eq!(e.exit_code(), 2, "plan refused: {}", e),
            }
            let expected = arrival::expected_arrivals(s.phases());
            prop_assert!(expected.is_finite() && expected >= 0.0, "{}", expected);
            // Every shard's schedule runs forward in time and in phases and
            // stays inside the run.
            let total_ns = arrival::total_duration(s.phases()).as_nanos();
            for shards in [1, 3] {
                let first: Vec<_> = Schedule::new(s.phases(), 0, shards, s.client.seed)
                    .take(64)
                    .collect();
                for w in first.windows(2) {
                    prop_assert!(w[0].offset_ns <= w[1].offset_ns, "{:?}", w);
                    prop_assert!(w[0].phase <= w[1].phase, "{:?}", w);
                }
                for a in &first {
                    prop_assert!(
                        u128::from(a.offset_ns) < total_ns,
                        "{:?} past {}",
                        a,
                        total_ns
                    );
                    prop_assert!(a.phase < s.phases().len(), "{:?}", a);
                }
            }
        }
    }
    Ok(())
}

fn parse(text: &str) -> Result<Scenario, Error> {
    scenario::parse(
        text,
        &Source::File("fuzz.toml".into()),
        &Overrides::default(),
    )
}

/// A value a TOML key might be given: right, wrong, absurd.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        Just("1e400".to_string()),
        Just("-0.0".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        (
            any::<u64>(),
            prop::sample::select(vec![
                "", "ns", "us", "ms", "s", "m", "h", "d", "k", "M", "G", "k/s", "/s", "/m", "x",
            ])
        )
            .prop_map(|(n, unit)| format!("\"{n}{unit}\"")),
        (
            -1e13f64..1e13,
            prop::sample::select(vec!["", "ms", "s", "m", "h", "k", "/s"])
        )
            .prop_map(|(x, unit)| format!("\"{x}{unit}\"")),
        "\"[ -~]{0,12}\"",
        "'[^'\n]{0,8}'",
        "\\{ ?[a-z_]{1,6} = \"?[0-9a-z]{0,5}\"? ?\\}",
        "\\[[0-9, \"a-z]{0,10}\\]",
        "\"[\\PC]{0,6}\"",
    ]
}

/// One random edit of a scenario file's lines.
#[derive(Debug, Clone)]
enum Edit {
    /// Drops a line.
    Drop(usize),
    /// Repeats a line.
    Duplicate(usize),
    /// Cuts a line at a byte (on a char boundary at or before it).
    Truncate(usize, usize),
    /// Gives a `key = value` line another value.
    Revalue(usize, String),
    /// Inserts a line of random text.
    Insert(usize, String),
    /// Swaps two lines.
    Swap(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let line = any::<usize>();
    prop_oneof![
        line.prop_map(Edit::Drop),
        line.prop_map(Edit::Duplicate),
        (line, any::<usize>()).prop_map(|(l, at)| Edit::Truncate(l, at)),
        (line, value()).prop_map(|(l, v)| Edit::Revalue(l, v)),
        (
            line,
            prop_oneof![
                "[a-z_]{1,12} = ".prop_flat_map(|k| value().prop_map(move |v| format!("{k}{v}"))),
                "\\[\\[?[a-z_.]{1,12}\\]\\]?",
                "[ -~]{0,24}",
                "[\\PC]{0,12}",
            ]
        )
            .prop_map(|(l, text)| Edit::Insert(l, text)),
        (line, line).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for edit in edits {
        let n = lines.len().max(1);
        match edit {
            Edit::Drop(l) if !lines.is_empty() => {
                lines.remove(l % n);
            }
            Edit::Duplicate(l) if !lines.is_empty() => {
                let line = lines[l % n].clone();
                lines.insert(l % n, line);
            }
            Edit::Truncate(l, at) if !lines.is_empty() => {
                let line = &mut lines[l % n];
                let mut cut = at % (line.len() + 1);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
            }
            Edit::Revalue(l, value) if !lines.is_empty() => {
                let line = &mut lines[l % n];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {value}");
                }
            }
            Edit::Insert(l, new) => lines.insert(l % (lines.len() + 1), new.clone()),
            Edit::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            _ => {}
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn edited_scenarios_load_or_say_what_is_wrong(
        seed in prop::sample::select(SEEDS),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        check(parse(&apply(seed, &edits)))?;
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn random_text_loads_or_says_what_is_wrong(text in "[\\PC\n]{0,200}") {
        check(parse(&text))?;
    }

    #[test]
    fn random_bytes_in_a_file_load_or_say_what_is_wrong(
        seed in prop::sample::select(SEEDS),
        at in any::<usize>(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // Random bytes spliced into a good file, which is then read from disk.
        let mut content = seed.as_bytes().to_vec();
        let at = at % (content.len() + 1);
        content.splice(at..at, bytes);
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(&content).unwrap();
        let result = scenario::load(file.path(), &Overrides::default());
        if let Err(Error::Scenario { location, .. }) = &result {
            prop_assert!(
                location.starts_with(&file.path().display().to_string()),
                "location {} does not name the file", location
            );
        }
        check(result)?;
    }
}

/// Every fixture in tests/data/ also passes the property: the fuzz's
/// notion of a good error holds for the hand-written cases.
#[test]
fn fixtures_meet_the_fuzz_property() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let result = scenario::load(&path, &Overrides::default());
            if let Err(e) = check(result) {
                panic!("{}: {e}", path.display());
            }
        }
    }
}
