//! Scenario parsing as a whole: every section's errors with their
//! `file:line:col`, defaults, ramps and units, overrides, and a bounded fuzz.
//! (URL parsing is tested beside it, in `url`.)

use super::*;

fn file() -> Source {
    Source::File(PathBuf::from("s.toml"))
}

fn parse_ok(text: &str) -> Scenario {
    match parse(text, &file(), &Overrides::default()) {
        Ok(s) => s,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

fn parse_err(text: &str) -> String {
    match parse(text, &file(), &Overrides::default()) {
        Ok(s) => panic!("{text:?} should fail, got {s:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

const PHASE: &str = "[[phases]]\nrate = \"1k\"\nduration = \"1s\"\n";

#[test]
fn inline_errors_name_the_place_and_the_fix() {
    // (scenario text, part of the error)
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{PHASE}[request]\nheaders = {{ \"x-a\" = \"b\\nc\" }}"),
            "s.toml:5:21: [request] header value",
        ),
        (
            format!("{PHASE}[request]\nheaders = {{ \"x-a\" = 1 }}"),
            "expected a string",
        ),
        (
            format!("{PHASE}[target]\n"),
            "s.toml:4:1: [target] has no url",
        ),
        (
            format!("{PHASE}[upstream]\nkind = \"external\"\n"),
            "needs url",
        ),
        (
            format!("{PHASE}[upstream]\nkind = \"external\"\nurl = \"http://h:1\"\ncpu = \"1ms\""),
            "takes only url",
        ),
        (
            format!("{PHASE}[upstream]\nurl = \"http://h:1\""),
            "s.toml:5:7: [upstream] url is for kind = \"external\"",
        ),
        (
            format!("{PHASE}[upstream]\nkind = \"remote\""),
            "unknown variant `remote`, expected `mock` or `external`",
        ),
        (
            format!("{PHASE}[upstream]\nworkers = 0"),
            "[upstream] workers must be between 1 and",
        ),
        (
            format!("{PHASE}[upstream]\ncpus = \"0-\""),
            "is not a CPU list",
        ),
        (
            format!("{PHASE}[upstream]\nstatus = 42"),
            "[upstream] status must be between 100 and 599",
        ),
        (
            format!("{PHASE}[upstream]\ncpu_dist = \"normal\""),
            "expected one of `constant`, `exponential`, `lognormal`",
        ),
        (format!("{PHASE}[[keys]]\nweight = 1"), "key 1 has no name"),
        (
            format!("{PHASE}[[keys]]\nname = \"\""),
            "key 1 has an empty name",
        ),
        (
            format!(
                "{PHASE}[[keys]]\nname = \"a\"\nweight = 1e308\n[[keys]]\nname = \"b\"\nweight = 1e308"
            ),
            "add up past",
        ),
        (
            format!("{PHASE}[[keys]]\nname = \"a\"\ntimeout = \"0s\""),
            "key \"a\" timeout must be more than 0",
        ),
        (
            format!("{PHASE}[[keys]]\nname = \"a\"\nweight = \"nine\""),
            "expected a number",
        ),
        (
            format!("{PHASE}[client]\nthreads = 300"),
            "[client] threads must be between 1 and 256, got 300",
        ),
        (
            format!("{PHASE}[client]\nseed = -1"),
            "[client] seed must be between 0 and",
        ),
        (
            format!("{PHASE}[client]\nlag_bound = \"0s\""),
            "[client] lag_bound must be more than 0",
        ),
        (
            format!("{PHASE}[client]\ntimeout = \"25h\""),
            "[client] timeout of 25h is longer than the limit of 24h",
        ),
        (
            format!("{PHASE}[gateway]\nconcurrency = {{ max = 0 }}"),
            "s.toml:5:23: [gateway] concurrency max must be between 1 and",
        ),
        (
            format!("{PHASE}[gateway]\nkind = \"external\""),
            "needs url",
        ),
        (
            format!("name = \"a b\"\n{PHASE}"),
            "s.toml:1:8: name \"a b\" is not usable",
        ),
        (
            "[[phases]]\nduration = \"1s\"".to_string(),
            "phase 1 has no rate",
        ),
        (
            "[[phases]]\nrate = 5".to_string(),
            "phase 1 has no duration",
        ),
        (
            format!("{PHASE}[[phases]]\nrate = {{ to = 5 }}\nduration = \"1s\""),
            "s.toml:5:8: phase 2 rate is a ramp with no `from`",
        ),
        (
            "[[phases]]\nrate = {}\nduration = \"1s\"".to_string(),
            "is an empty table",
        ),
        (
            "[[phases]]\nrate = { from = -1, to = 5 }\nduration = \"1s\"".to_string(),
            "s.toml:2:17: phase 1 rate `from` must be 0 or more",
        ),
        (
            "[[phases]]\nrate = { from = 1, to = \"20m\" }\nduration = \"1s\"".to_string(),
            "is not a rate",
        ),
        (
            "[[phases]]\nrate = nan\nduration = \"1s\"".to_string(),
            "finite",
        ),
        (
            "[[phases]]\nrate = 1\nduration = 1.5".to_string(),
            "a duration needs a unit",
        ),
        ("".to_string(), "s.toml: no [[phases]]"),
    ];
    for (text, want) in cases {
        let err = parse_err(&text);
        assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
    }
}

/// Each gateway kind refuses what it has no directive for, saying why.
#[test]
fn gateway_kinds_refuse_what_they_cannot_take() {
    // (scenario text, part of the error)
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{PHASE}[gateway]\nkind = \"envoy\""),
            "unknown variant `envoy`, expected one of `reference`, `nginx`, `haproxy`, `external`, `none`",
        ),
        (
            format!(
                "{PHASE}[gateway]\nkind = \"haproxy\"\nbreaker = {{ error_share = 0.5, window = \"10s\", min_requests = 5, cool_down = \"1s\", probes = 1 }}"
            ),
            "s.toml:4:1: [gateway] breaker is a reference-gateway policy that haproxy has no directive for (its `observe layer7` with `error-limit` counts consecutive errors",
        ),
        (
            format!("{PHASE}[gateway]\nkind = \"haproxy\"\nabort_charge = \"1s\""),
            "[gateway] abort_charge is a reference-gateway policy that haproxy has no directive for: remove it",
        ),
        (
            format!("{PHASE}[gateway]\nkind = \"reference\"\ntemplate = \"t.cfg\""),
            "[gateway] template is for kind = \"nginx\" or \"haproxy\"",
        ),
        (
            format!(
                "{PHASE}[gateway]\nkind = \"nginx\"\nbudget = {{ budget = \"1s\", window = \"1s\", penalty = \"1s\" }}"
            ),
            "s.toml:4:1: [gateway] budget is a reference-gateway policy that nginx has no directive for",
        ),
    ];
    for (text, want) in cases {
        let err = parse_err(&text);
        assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
    }
    // HAProxy queues (nginx does not): the queue is taken.
    let queued =
        "[gateway]\nkind = \"KIND\"\nconcurrency = { max = 2, queue = 1, queue_timeout = \"1s\" }";
    let s = parse_ok(&format!("{PHASE}{}", queued.replace("KIND", "haproxy")));
    assert_eq!(s.gateway.policies.concurrency.map(|c| c.queue), Some(1));
    let err = parse_err(&format!("{PHASE}{}", queued.replace("KIND", "nginx")));
    assert!(
        err.contains(
            "a concurrency queue is a reference-gateway policy that nginx has no directive for"
        ),
        "{err}"
    );
}

#[test]
fn long_values_are_echoed_cut_short_with_their_length() {
    let long = "x".repeat(100_000);
    // (scenario text, the start of the message after the location)
    let cases: Vec<(String, String)> = vec![
        (
            format!("{PHASE}[request]\npath = \"/{long} \""),
            format!(
                "[request] path \"/{}\"... (100002 characters, the first 60 shown) holds ' '",
                &long[..59]
            ),
        ),
        (
            format!("{PHASE}[request]\nmethod = \"{long} \""),
            format!(
                "[request] method \"{}\"... (100001 characters, the first 60 shown) is not",
                &long[..60]
            ),
        ),
        (
            format!("{PHASE}[request]\nheaders = {{ \"x-a\" = \"{long}\\n\" }}"),
            format!(
                "[request] header value \"{}\"... (100001 characters, the first 60 shown) holds",
                &long[..60]
            ),
        ),
        (
            format!("{PHASE}[[keys]]\nname = \"{long}\"\npath = \"nope\""),
            format!(
                "key \"{}\"... (100000 characters, the first 60 shown) path \"nope\" must start",
                &long[..60]
            ),
        ),
        (
            format!("name = \"{long}\"\n{PHASE}"),
            format!(
                "name \"{}\"... (100000 characters, the first 60 shown) is not usable",
                &long[..60]
            ),
        ),
        (
            format!("{PHASE}[target]\nurl = \"http://h:1/{}\"", &long[..1000]),
            format!(
                "[target] url \"http://h:1/{}\"... (1011 characters, the first 60 shown) has a path: \
                 give only http://HOST:PORT here and put the path in [request] path = \"/{}\"... \
                 (1001 characters, the first 60 shown)",
                &long[..49],
                &long[..59]
            ),
        ),
        (
            format!("{PHASE}[request]\npath = \"/{long}\""),
            format!(
                "[request] path \"/{}\"... (100001 characters, the first 60 shown) is longer than \
                 the 65534 bytes a request target can hold",
                &long[..59]
            ),
        ),
    ];
    for (text, want) in cases {
        let e = parse_err(&text);
        assert!(e.len() < 1000, "{} bytes: {}", e.len(), &e[..300]);
        let message = e.split_once(": ").map_or(e.as_str(), |(_, m)| m);
        assert!(message.starts_with(&want), "{e}\nwant {want}");
    }
}

#[test]
fn ramps_and_units_parse() {
    let s = parse_ok(
        "[[phases]]\nrate = { from = 0, to = \"1.5k/s\" }\nduration = \"250ms\"\n\
         [[phases]]\nrate = 2.5\nduration = \"2m\"\narrival = \"poisson\"",
    );
    assert_eq!(
        s.phases(),
        vec![
            Phase {
                rate: Rate::Ramp {
                    from: 0.0,
                    to: 1500.0
                },
                duration: Duration::from_millis(250),
                arrival: ArrivalKind::Constant
            },
            Phase {
                rate: Rate::Constant(2.5),
                duration: Duration::from_secs(120),
                arrival: ArrivalKind::Poisson
            },
        ]
    );
    assert_eq!(s.name, "s");
}

#[test]
fn abort_audit_section_parses_and_is_checked() {
    let audit = "experiment = \"abort-audit\"\n";
    let audit_of = |s: Scenario| match s.experiment {
        Experiment::AbortAudit(spec) => spec,
        other => panic!("not an abort audit: {other:?}"),
    };
    let s = audit_of(parse_ok(&format!("{audit}{PHASE}")));
    assert_eq!(
        s,
        AbortAuditSpec {
            phases: s.phases.clone(),
            ..AbortAuditSpec::default()
        }
    );
    assert_eq!(s.phases.len(), 1);
    let s = audit_of(parse_ok(&format!(
        "{audit}{PHASE}[abort_audit]\nmodes = [\"nginx-on\", \"reference-early\", \"haproxy-early\", \"haproxy-complete\"]\nsettle = \"2s\""
    )));
    assert_eq!(
        s.modes,
        vec![
            AuditMode::NginxOn,
            AuditMode::ReferenceEarly,
            AuditMode::HaproxyEarly,
            AuditMode::HaproxyComplete
        ]
    );
    assert_eq!(s.settle, Duration::from_secs(2));
    // (scenario text, part of the error)
    let cases = [
        (
            format!("{PHASE}[abort_audit]\nsettle = \"1s\""),
            "s.toml:4:1: [abort_audit] is read only by experiment",
        ),
        (
            format!("{audit}{PHASE}[abort_audit]\nmodes = []"),
            "s.toml:6:9: [abort_audit] modes is empty",
        ),
        (
            format!("{audit}{PHASE}[abort_audit]\nmodes = [\"nginx-on\", \"nginx-on\"]"),
            "s.toml:6:22: [abort_audit] mode \"nginx-on\" is listed twice",
        ),
        (
            format!("{audit}{PHASE}[abort_audit]\nmodes = [\"haproxy\"]"),
            "unknown variant `haproxy`, expected one of `reference-early`, `reference-complete`, `nginx-off`, `nginx-on`, `haproxy-early`, `haproxy-complete`",
        ),
        (
            format!("{audit}{PHASE}[abort_audit]\nsettle = \"0s\""),
            "[abort_audit] settle must be more than 0",
        ),
        (
            format!("{audit}{PHASE}[abort_audit]\nwait = \"1s\""),
            "unknown field `wait`",
        ),
    ];
    for (text, want) in cases {
        let err = parse_err(&text);
        assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
    }
}

#[test]
fn request_ids_are_off_by_default_and_on_for_the_abort_audit() {
    assert!(!parse_ok(PHASE).client.request_ids);
    assert!(
        parse_ok(&format!("{PHASE}[client]\nrequest_ids = true"))
            .client
            .request_ids
    );
    let audit = "experiment = \"abort-audit\"\n";
    assert!(parse_ok(&format!("{audit}{PHASE}")).client.request_ids);
    let cases = [
        (
            format!("{audit}{PHASE}[client]\nrequest_ids = false"),
            "s.toml:6:15: experiment = \"abort-audit\" joins the client, the gateway's log and the upstream per request by x-request-id: remove request_ids = false",
        ),
        (
            format!(
                "{PHASE}[client]\nrequest_ids = true\n[request]\nheaders = {{ X-Request-Id = \"1\" }}"
            ),
            "s.toml:5:15: an x-request-id header is set by hand",
        ),
        (
            format!("{audit}{PHASE}[[keys]]\nname = \"k\"\nheaders = {{ x-request-id = \"1\" }}"),
            "s.toml: an x-request-id header is set by hand",
        ),
        (
            format!("{PHASE}[client]\nrequest_ids = \"yes\""),
            "s.toml:5:15",
        ),
    ];
    for (text, want) in cases {
        let err = parse_err(&text);
        assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
    }
}

#[test]
fn upstream_external_is_a_url_target() {
    let s = parse_ok(&format!(
        "{PHASE}[upstream]\nkind = \"external\"\nurl = \"http://127.0.0.1:9\""
    ));
    assert_eq!(s.target, Target::Url("http://127.0.0.1:9".to_string()));
    let s = parse_ok(&format!(
        "{PHASE}[upstream]\nworkers = \"unbounded\"\ncpu = \"1.5ms\""
    ));
    assert_eq!(
        s.target,
        Target::Mock(MockUpstreamSpec {
            workers: None,
            cpu_ms: Some(1.5),
            ..MockUpstreamSpec::default()
        })
    );
}

#[test]
fn from_overrides_needs_target_and_rate() {
    let err = from_overrides(&Overrides::default()).expect_err("no target");
    assert!(
        err.to_string()
            .starts_with("command line: no scenario file and no --target"),
        "{err}"
    );
    let target_only = Overrides {
        target: Some("http://127.0.0.1:8080/x".to_string()),
        ..Overrides::default()
    };
    let err = from_overrides(&target_only).expect_err("no rate");
    assert!(
        err.to_string().contains("give --rate (e.g. --rate 20k)"),
        "{err}"
    );
    let s = from_overrides(&Overrides {
        rate: Some(Rate::Constant(20_000.0)),
        ..target_only
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "run");
    assert_eq!(s.target, Target::Url("http://127.0.0.1:8080".to_string()));
    assert_eq!(s.request.path, "/x");
    assert_eq!(
        s.phases(),
        vec![Phase {
            rate: Rate::Constant(20_000.0),
            duration: DEFAULT_PHASE_DURATION,
            arrival: ArrivalKind::Constant
        }]
    );
    assert_eq!(s.client, ClientSpec::default());
}

#[test]
fn bad_override_rates_are_refused() {
    let cases = [
        Rate::Constant(f64::NAN),
        Rate::Constant(-1.0),
        Rate::Constant(1e12),
        Rate::Ramp { from: 0.0, to: 0.0 },
        Rate::Ramp {
            from: -1.0,
            to: 5.0,
        },
        Rate::Ramp {
            from: 1.0,
            to: f64::INFINITY,
        },
    ];
    for rate in cases {
        let overrides = Overrides {
            target: Some("http://h:1".to_string()),
            rate: Some(rate),
            ..Overrides::default()
        };
        let err = from_overrides(&overrides).expect_err("bad rate");
        assert!(
            err.to_string().starts_with("command line: --rate"),
            "{rate:?}: {err}"
        );
    }
}

/// A bounded fuzz: random edits and cuts of a full scenario never panic,
/// and every error is a scenario error (exit code 2).
#[test]
fn mangled_scenarios_never_panic() {
    use rand::{Rng, SeedableRng};
    let good = format!(
        "name = \"x\"\n{PHASE}[[phases]]\nrate = {{ from = \"1k\", to = 5 }}\nduration = \"2m\"\narrival = \"poisson\"\n\
         [request]\nmethod = \"GET\"\npath = \"/a?b=1\"\nheaders = {{ \"x-a\" = \"b\" }}\n\
         [[keys]]\nname = \"k\"\nweight = 2\ntimeout = \"5ms\"\n\
         [client]\ntimeout = \"1s\"\nmax_connections = 10\nthreads = 2\nseed = 3\ninterval = \"1s\"\n"
    );
    let alphabet: Vec<char> = "\"'=[]{}.,-_0123456789kmsh# \n\tabcxyzé\u{0}\u{7f}"
        .chars()
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for _ in 0..3000 {
        let mut chars: Vec<char> = good.chars().collect();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..chars.len());
            match rng.random_range(0..3) {
                0 => chars[at] = alphabet[rng.random_range(0..alphabet.len())],
                1 => {
                    chars.remove(at);
                }
                _ => chars.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
            }
        }
        let text: String = chars.into_iter().collect();
        if let Err(e) = parse(&text, &file(), &Overrides::default()) {
            assert_eq!(e.exit_code(), 2, "{text:?}: {e}");
        }
    }
    for cut in 0..good.len() {
        if good.is_char_boundary(cut) {
            let _ = parse(&good[..cut], &file(), &Overrides::default());
        }
    }
    let _ = parse_ok(&good);
}

#[test]
fn https_http2_and_tls_settings_are_read_and_checked() {
    let s = parse_ok(&format!(
        "{PHASE}[target]\nurl = \"https://gw.example\"\n[client]\nhttp = \"2\"\nstreams_per_connection = 50\n\
         reuse = false\ntls = {{ ca = \"ca.pem\", cert = \"c.pem\", key = \"c.key\", sni = \"api.example\", \
         resumption = false, version = \"1.3\" }}\n"
    ));
    assert_eq!(s.target, Target::Url("https://gw.example:443".into()));
    let c = &s.client;
    assert_eq!(c.http, HttpVersion::Http2);
    assert_eq!(c.streams_per_connection, Some(50));
    assert!(!c.reuse);
    assert_eq!(
        c.tls,
        TlsSpec {
            ca: Some("ca.pem".into()),
            insecure: false,
            cert: Some("c.pem".into()),
            key: Some("c.key".into()),
            sni: Some("api.example".into()),
            resumption: false,
            version: Some(TlsVersionSpec::Tls13),
        }
    );
    assert_eq!(
        parse_ok(&format!("{PHASE}[client]\nhttp = 1.1\n"))
            .client
            .http,
        HttpVersion::Http1
    );
    assert_eq!(
        parse_ok(&format!("{PHASE}[client]\nhttp = \"auto\"\n"))
            .client
            .http,
        HttpVersion::Auto
    );
    // (scenario text, part of the error)
    let cases = [
        (
            format!("{PHASE}[client]\ntls.key = \"k\"\n"),
            "s.toml:5:11: [client] tls.key needs its certificate",
        ),
        (
            format!("{PHASE}[client]\ntls.version = \"1.1\"\n"),
            "tls.version \"1.1\" is not one contend speaks",
        ),
        (
            format!("{PHASE}[client]\ntls.sni = \"a b\"\n"),
            "is not a DNS name or IP address",
        ),
        (
            format!("{PHASE}[client]\ntls.nope = 1\n"),
            "unknown field `nope`",
        ),
        (
            format!(
                "{PHASE}[upstream]\nkind = \"external\"\nurl = \"https://h:1\"\n[gateway]\nkind = \"nginx\"\n"
            ),
            "speaks plain HTTP to its upstream",
        ),
        (
            format!("{PHASE}[gateway]\nkind = \"none\"\ntls = true\n"),
            "takes no policies or settings",
        ),
    ];
    for (text, want) in cases {
        let err = parse_err(&text);
        assert!(err.contains(want), "{text}\n{err}");
    }
    let flags = Overrides {
        http2: true,
        insecure: true,
        ..Overrides::default()
    };
    let s = parse(PHASE, &file(), &flags).unwrap();
    assert_eq!(s.client.http, HttpVersion::Http2);
    assert!(s.client.tls.insecure);
}

#[test]
fn pacing_window_defaults_and_stays_below_lag_bound() {
    use crate::scenario::DEFAULT_PACING_WINDOW;
    let us = Duration::from_micros;
    // (client fields, narrowest window, widest): "auto", the default,
    // widens up to half of lag_bound; a duration is fixed.
    let cases = [
        ("", DEFAULT_PACING_WINDOW, us(500)),
        ("lag_bound = \"4ms\"", DEFAULT_PACING_WINDOW, us(2000)),
        ("pacing_window = \"auto\"", DEFAULT_PACING_WINDOW, us(500)),
        (
            "pacing_window = \"auto\"\nlag_bound = \"4ms\"",
            DEFAULT_PACING_WINDOW,
            us(2000),
        ),
        (
            "pacing_window = \"auto\"\nlag_bound = \"30us\"",
            DEFAULT_PACING_WINDOW,
            DEFAULT_PACING_WINDOW,
        ),
        ("pacing_window = \"0s\"", Duration::ZERO, Duration::ZERO),
        ("pacing_window = \"250us\"", us(250), us(250)),
        (
            "pacing_window = \"1ms\"\nlag_bound = \"3ms\"",
            us(1000),
            us(1000),
        ),
        (
            "lag_bound = \"3ms\"\npacing_window = \"1ms\"",
            us(1000),
            us(1000),
        ),
    ];
    for (client, narrowest, widest) in cases {
        let text = format!("{PHASE}[client]\n{client}");
        let c = parse_ok(&text).client;
        assert_eq!(
            (c.pacing_window, c.pacing_window_max),
            (narrowest, widest),
            "{client}"
        );
    }
    let cases = [
        (
            format!("{PHASE}[client]\npacing_window = \"1ms\""),
            "s.toml:5:17: [client] pacing_window of 1ms is not below lag_bound (1ms): arrivals held for the window would count as the generator falling behind; shorten the window or raise lag_bound (e.g. lag_bound = \"2ms\")",
        ),
        (
            format!("{PHASE}[client]\nlag_bound = \"2ms\"\npacing_window = \"5ms\""),
            "s.toml:6:17: [client] pacing_window of 5ms is not below lag_bound (2ms)",
        ),
        (
            format!("{PHASE}[client]\npacing_window = \"-1ms\""),
            "s.toml:5:17",
        ),
        (format!("{PHASE}[client]\npacing_window = 5"), "s.toml:5:17"),
        (
            format!("{PHASE}[client]\npacing_window = \"wide\""),
            "s.toml:5:17: `wide` does not start with a number: expected a duration like 250ms, 10s or 2m (units: ns, us, ms, s, m, h) (or \"auto\")",
        ),
    ];
    for (text, want) in cases {
        let err = parse_err(&text);
        assert!(err.contains(want), "{text:?}\n  got {err}\n  want {want}");
    }
}

#[test]
fn a_generated_key_space_parses_with_defaults_and_is_checked() {
    let base = "[[phases]]\nrate = 10\nduration = \"1s\"\n";
    let s = parse_ok(&format!("{base}[keys]\ncount = 100000\n"));
    assert!(s.keys.is_empty());
    let space = s.key_space.expect("a key space");
    assert_eq!(space.count, 100_000);
    assert_eq!(
        space.distribution,
        super::KeyDistribution::Zipf { exponent: 1.1 }
    );
    assert_eq!(space.name(42), "key-00042");
    assert_eq!(space.name(99_999), "key-99999");
    let s = parse_ok(&format!(
        "{base}[keys]\ncount = 1\ndistribution = \"uniform\"\nprefix = \"u\"\n"
    ));
    assert_eq!(s.key_space.unwrap().name(0), "u0");
    let e = parse_err(&format!(
        "{base}[keys]\ncount = 10\ndistribution = \"uniform\"\nexponent = 2\n"
    ));
    assert!(
        e.contains("exponent applies to distribution = \"zipf\" only"),
        "{e}"
    );
    let e = parse_err(&format!("{base}[keys]\ncount = 10\nprefix = \"a\\nb\"\n"));
    assert!(e.contains("[keys] prefix"), "{e}");
    let e = parse_err(&format!("{base}[keys]\ncount = 10\nsize = 3\n"));
    assert!(e.contains("size"), "{e}");
    let e = parse_err(&format!(
        "{base}[keys]\ncount = 10\n[[keys]]\nname = \"a\"\n"
    ));
    assert!(e.contains("both given: keep one"), "{e}");
    let e = parse_err(&format!(
        "{base}[client]\ntimeout = \"1s\"\ntimeout = \"2s\"\n"
    ));
    assert!(e.contains("timeout is given twice"), "{e}");
}

#[test]
fn target_urls_make_one_target_at_several_addresses() {
    let base = "[[phases]]\nrate = 10\nduration = \"1s\"\n";
    let s = parse_ok(&format!(
        "{base}[target]\nurls = [\"http://127.0.0.1:8080\", \"http://127.0.0.1:8081\"]\n"
    ));
    assert_eq!(
        s.target,
        Target::Urls(
            "http://127.0.0.1:8080".into(),
            vec!["http://127.0.0.1:8081".into()]
        )
    );
    let s = parse_ok(&format!(
        "{base}[target]\nurls = [\"http://127.0.0.1:8080\"]\n"
    ));
    assert_eq!(s.target, Target::Url("http://127.0.0.1:8080".into()));
    let e = parse_err(&format!(
        "{base}[target]\nurls = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\n[gateway]\nkind = \"reference\"\n"
    ));
    assert!(e.contains("takes one upstream"), "{e}");
    let e = parse_err(&format!(
        "{base}[target]\nurls = [\"http://127.0.0.1:1\", \"http://127.0.0.1:1/\"]\n"
    ));
    assert!(e.contains("twice"), "{e}");
}
