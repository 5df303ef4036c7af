//! Scenario files from `tests/data/`: every broken `NAME.toml` gives the
//! error in `NAME.expected` (a substring, with `file:line:col` where one
//! applies) and exit code 2; every `good-*.toml` parses into known values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use contend::scenario::{
    self, ArrivalKind, ClientSpec, Experiment, KeySpec, Load, MockUpstreamSpec, Overrides, Phase,
    Rate, Scenario, Target,
};

/// `tests/data/` of this crate.
fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// Loads `path` with no overrides and returns the error's text and exit
/// code; fails the test when it loads.
fn load_error(path: &Path) -> (String, i32) {
    match scenario::load(path, &Overrides::default()) {
        Ok(s) => panic!("{} should not load, got {s:?}", path.display()),
        Err(e) => (e.to_string(), e.exit_code()),
    }
}

#[test]
fn broken_scenarios_give_their_expected_errors() {
    let dir = data_dir();
    let mut expected_files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "expected"))
        .collect();
    expected_files.sort();
    assert!(
        expected_files.len() >= 20,
        "only {} fixtures found in {}",
        expected_files.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    for expected_file in &expected_files {
        let scenario_file = expected_file.with_extension("toml");
        let expected = std::fs::read_to_string(expected_file).expect("expected file is UTF-8");
        // The expected text names the file relative to tests/data, as a user
        // running from there would see it; the error carries the full path.
        let expected = format!("{}/{}", dir.display(), expected.trim_end_matches('\n'));
        let (message, code) = load_error(&scenario_file);
        if !message.contains(&expected) || code != 2 {
            failures.push(format!(
                "{}:\n  got      {message:?} (exit {code})\n  expected {expected:?}",
                scenario_file.display()
            ));
        }
        assert!(!message.contains("panicked"), "{message}");
    }
    assert!(
        failures.is_empty(),
        "{} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn missing_path_is_a_scenario_error() {
    let path = data_dir().join("no-such-file.toml");
    let (message, code) = load_error(&path);
    assert_eq!(code, 2);
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("no such file"), "{message}");
}

#[test]
fn directory_is_a_scenario_error() {
    let (message, code) = load_error(&data_dir());
    assert_eq!(code, 2);
    assert!(
        message.contains("is a directory, not a scenario file"),
        "{message}"
    );
}

#[test]
fn devices_are_refused_with_their_kind_before_any_read() {
    // /dev/zero never ends and reports a size of 0: it must be refused by
    // its type, not read up to a cap.
    for (path, kind) in [
        ("/dev/zero", "a character device"),
        ("/dev/null", "a character device"),
    ] {
        let (message, code) = load_error(Path::new(path));
        assert_eq!(code, 2, "{message}");
        assert_eq!(
            message,
            format!("{path}: is {kind}, not a scenario file: give the path of a .toml file")
        );
    }
}

/// `contend doctor SCENARIO` through bash, with the scenario given as
/// bash's process substitution `<(COMMAND)`: a pipe.
fn doctor_through_a_pipe(command: &str) -> std::process::Output {
    crate::binary::run(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("exec \"$0\" doctor <({command})"))
            .arg(crate::binary::CONTEND)
            .current_dir(data_dir())
            .stdin(std::process::Stdio::null()),
    )
}

#[test]
fn a_pipe_is_read_as_a_scenario() {
    let out = doctor_through_a_pipe("cat good-minimal.toml");
    crate::binary::assert_exit(&out, 0);
}

#[test]
fn an_endless_pipe_is_cut_at_the_cap() {
    // `yes` never ends: the read must stop at 16 MiB, not when memory does.
    let out = doctor_through_a_pipe("yes");
    crate::binary::assert_exit(&out, 2);
    let stderr = crate::binary::text(&out.stderr);
    assert!(
        stderr.contains(
            "holds more than 16777216 bytes, too large for a scenario file: is this the right file?"
        ),
        "{stderr}"
    );
}

#[test]
fn good_full_scenario_parses() {
    let s =
        scenario::load(&data_dir().join("good-full.toml"), &Overrides::default()).expect("loads");
    let want = Scenario {
        name: "full-example".to_string(),
        experiment: Experiment::Run(Load::Open(vec![
            Phase {
                rate: Rate::Ramp {
                    from: 1000.0,
                    to: 20_000.0,
                },
                duration: Duration::from_secs(30),
                arrival: ArrivalKind::Constant,
            },
            Phase {
                rate: Rate::Constant(20_000.0),
                duration: Duration::from_secs(60),
                arrival: ArrivalKind::Poisson,
            },
            Phase {
                rate: Rate::Constant(500.0),
                duration: Duration::from_millis(1500),
                arrival: ArrivalKind::Constant,
            },
        ])),
        target: Target::Url("http://127.0.0.1:8080".to_string()),
        request: scenario::RequestSpec {
            method: "POST".to_string(),
            path: "/api/items?cpu_ms=1".to_string(),
            // In the order written, not sorted.
            headers: vec![
                ("x-b".to_string(), "2".to_string()),
                ("content-type".to_string(), "application/json".to_string()),
                ("x-a".to_string(), "1".to_string()),
            ],
            body: r#"{"a":1}"#.to_string(),
        },
        keys: vec![
            KeySpec {
                name: "ui".to_string(),
                weight: 9.0,
                path: None,
                headers: vec![],
                timeout: Some(Duration::from_millis(50)),
                retry: None,
            },
            KeySpec {
                name: "batch".to_string(),
                weight: 1.0,
                path: Some("/?cpu_ms=50".to_string()),
                headers: vec![("x-priority".to_string(), "low".to_string())],
                timeout: None,
                retry: None,
            },
        ],
        key_space: None,
        client: ClientSpec {
            timeout: Duration::from_secs(2),
            max_connections: 5000,
            wait_at_max: true,
            threads: Some(2),
            seed: 42,
            interval: Duration::from_millis(500),
            lag_bound: Duration::from_millis(2),
            // "auto", the default, widens up to half of lag_bound.
            pacing_window_max: Duration::from_millis(1),
            request_ids: false,
            shard: scenario::Shard::default(),
            start_at: None,
            ..ClientSpec::default()
        },
        gateway: scenario::GatewaySpec::default(),
        thresholds: vec![],
        scrape: vec![
            scenario::ScrapeSpec {
                name: "gw".to_string(),
                source: scenario::ScrapeSource::Metrics {
                    url: "http://127.0.0.1:9100/metrics".to_string(),
                    authority: "127.0.0.1:9100".to_string(),
                    path: "/metrics".to_string(),
                    series: vec![
                        "http_requests_total".to_string(),
                        "process_cpu_seconds_total".to_string(),
                    ],
                },
            },
            scenario::ScrapeSpec {
                name: "db".to_string(),
                source: scenario::ScrapeSource::Pid(4242),
            },
        ],
        variants: vec![],
        faults: vec![],
    };
    assert_eq!(s, want);
}

#[test]
fn good_mock_scenario_parses() {
    let s =
        scenario::load(&data_dir().join("good-mock.toml"), &Overrides::default()).expect("loads");
    assert_eq!(s.name, "good-mock", "the name defaults to the file stem");
    assert_eq!(
        s.target,
        Target::Mock(MockUpstreamSpec {
            workers: Some(4),
            backlog: Some(1024),
            on_disconnect: Some("cancel".to_string()),
            cpu_ms: Some(2.0),
            cpu_dist: Some("lognormal".to_string()),
            cpu_sigma: Some(0.5),
            sleep_ms: Some(0.5),
            bytes: Some(2),
            status: Some(200),
            cpus: Some("0,1".to_string()),
            seed: Some(7),
        })
    );
    assert_eq!(s.client, ClientSpec::default());
}

#[test]
fn good_minimal_scenario_takes_defaults() {
    let s = scenario::load(&data_dir().join("good-minimal.toml"), &Overrides::default())
        .expect("loads");
    assert_eq!(s.name, "good-minimal");
    assert_eq!(
        s.phases(),
        vec![Phase {
            rate: Rate::Constant(100.0),
            duration: Duration::from_secs(1),
            arrival: ArrivalKind::Constant
        }]
    );
    assert_eq!(s.target, Target::Mock(MockUpstreamSpec::default()));
    assert_eq!(
        (s.request.method.as_str(), s.request.path.as_str()),
        ("GET", "/")
    );
    assert!(s.keys.is_empty());
    assert_eq!(s.client, ClientSpec::default());
}

#[test]
fn flags_override_a_file() {
    let overrides = Overrides {
        target: Some("http://localhost:9000/other?x=1".to_string()),
        rate: Some(Rate::Constant(300.0)),
        duration: Some(Duration::from_secs(2)),
        arrival: Some(ArrivalKind::Poisson),
        timeout: Some(Duration::from_millis(100)),
        max_connections: Some(7),
        connections: None,
        threads: Some(1),
        seed: Some(9),
        name: Some("renamed".to_string()),
        shard: None,
        start_at: None,
        ..Overrides::default()
    };
    let s = scenario::load(&data_dir().join("good-full.toml"), &overrides).expect("loads");
    assert_eq!(s.name, "renamed");
    assert_eq!(s.target, Target::Url("http://localhost:9000".to_string()));
    assert_eq!(s.request.path, "/other?x=1");
    assert_eq!(s.phases().len(), 3, "every phase is kept, each overridden");
    for phase in s.phases() {
        assert_eq!(
            *phase,
            Phase {
                rate: Rate::Constant(300.0),
                duration: Duration::from_secs(2),
                arrival: ArrivalKind::Poisson
            }
        );
    }
    assert_eq!(s.client.timeout, Duration::from_millis(100));
    assert_eq!(s.client.max_connections, 7);
    assert_eq!(s.client.threads, Some(1));
    assert_eq!(s.client.seed, 9);
}

#[test]
fn flags_rescue_a_file_without_phases() {
    let path = data_dir().join("no-phases.toml");
    let overrides = Overrides {
        rate: Some(Rate::Constant(50.0)),
        ..Overrides::default()
    };
    let s = scenario::load(&path, &overrides).expect("--rate makes the phase");
    assert_eq!(
        s.phases(),
        vec![Phase {
            rate: Rate::Constant(50.0),
            duration: Duration::from_secs(10),
            arrival: ArrivalKind::Constant
        }]
    );
}

#[test]
fn bad_flags_point_at_the_command_line() {
    // (overrides, part of the message)
    let cases: Vec<(Overrides, &str)> = vec![
        (
            Overrides {
                rate: Some(Rate::Constant(0.0)),
                ..Overrides::default()
            },
            "--rate must be more than 0",
        ),
        (
            Overrides {
                duration: Some(Duration::ZERO),
                ..Overrides::default()
            },
            "--duration must be more than 0",
        ),
        (
            Overrides {
                target: Some("ftp://x:1".to_string()),
                ..Overrides::default()
            },
            "only http:// and https:// URLs",
        ),
        (
            Overrides {
                threads: Some(0),
                ..Overrides::default()
            },
            "--threads must be between 1 and 256",
        ),
        (
            Overrides {
                max_connections: Some(0),
                ..Overrides::default()
            },
            "--max-connections must be between",
        ),
        (
            Overrides {
                name: Some("a/b".to_string()),
                ..Overrides::default()
            },
            "--name \"a/b\"",
        ),
    ];
    let path = data_dir().join("good-minimal.toml");
    for (overrides, want) in cases {
        let err = scenario::load(&path, &overrides).expect_err(want);
        assert_eq!(err.exit_code(), 2);
        let message = err.to_string();
        assert!(message.starts_with("command line: "), "{message}");
        assert!(message.contains(want), "{message} should contain {want}");
    }
}
