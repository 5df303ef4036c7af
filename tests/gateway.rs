//! The reference gateway in process (`contend_gateway::serve`) in front of
//! the mock upstream (`mock_upstream::serve`), both on loopback port 0: each
//! policy gives its status at its configured point, and a client that
//! leaves early is logged and accounted as `early` / `complete` say while
//! the upstream's own accounting shows the full work. Then the binary
//! (`contend gateway --config`), and nginx and HAProxy when they are installed.
//!
//! Synchronisation: access records arrive on the config's tap channel; the
//! few waits with no signal to wait on (requests in flight, the upstream's
//! accounting after it finishes abandoned work) poll with a deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use contend::logs::tally::Ending;
use contend_gateway::access_log::AccessRecord;
use contend_gateway::{
    AbortAccounting, BreakerRule, BudgetRule, ConcurrencyRule, Config, Policies, RateLimitRule,
    Route,
};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest any single wait in these tests may take before it fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// A mock upstream and a gateway in front of it, on one runtime.
struct Stack {
    upstream: SocketAddr,
    gateway: SocketAddr,
    records: mpsc::UnboundedReceiver<AccessRecord>,
}

impl Stack {
    /// Starts the mock (default settings: unbounded, `on_disconnect = run`)
    /// and a gateway with `config` pointed at it.
    async fn start(mut config: Config) -> Stack {
        let upstream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = upstream_listener.local_addr().unwrap();
        tokio::spawn(mock_upstream::serve(
            upstream_listener,
            mock_upstream::Config::default(),
            std::future::pending::<()>(),
        ));
        let (tx, records) = mpsc::unbounded_channel();
        config.upstream = format!("http://{upstream}");
        config.tap = Some(tx);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = listener.local_addr().unwrap();
        tokio::spawn(contend_gateway::serve(
            listener,
            config,
            std::future::pending::<()>(),
        ));
        Stack {
            upstream,
            gateway,
            records,
        }
    }

    /// The next access record.
    async fn record(&mut self) -> AccessRecord {
        tokio::time::timeout(DEADLINE, self.records.recv())
            .await
            .expect("an access record within the deadline")
            .expect("the gateway is running")
    }
}

fn policies_stack(policies: Policies) -> Config {
    Config::new("http://unused:1", policies)
}

/// One request's result as the client saw it.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    elapsed: Duration,
}

/// `GET path` on a fresh connection with `x-api-key: key`; `None` when the
/// client gives up at `timeout` (it then closes its connection: a client abort).
async fn get(addr: SocketAddr, path: &str, key: &str, timeout: Duration) -> Option<Answer> {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", addr.to_string())
        .header("x-api-key", key)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let answer = tokio::time::timeout(timeout, async {
        let resp = sender.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        resp.into_body().collect().await.ok()?;
        Some(Answer {
            status,
            retry_after,
            elapsed: started.elapsed(),
        })
    })
    .await
    .ok()
    .flatten();
    // Dropping the connection's task closes the socket.
    conn.abort();
    answer
}

async fn status(addr: SocketAddr, path: &str, key: &str) -> u16 {
    get(addr, path, key, DEADLINE)
        .await
        .expect("an answer")
        .status
}

/// Plain `GET` of a body (metrics, accounting).
async fn body(addr: SocketAddr, path: &str) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

/// Polls `probe` every 10 ms until it is true; fails at the deadline. Used
/// only where nothing signals the state (see the module comment).
async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) {
    let deadline = Instant::now() + DEADLINE;
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn upstream_in_flight(gateway: SocketAddr, n: usize) {
    let want = format!("contend_gateway_upstream_in_flight {n}\n");
    wait_until(&format!("{n} requests in flight"), || async {
        body(gateway, "/metrics").await.contains(&want)
    })
    .await;
}

/// The mock upstream's `/accounting` for `key`, once its `field` reaches
/// `n` (polled: the mock signals nothing when abandoned work ends).
async fn upstream_key_once(
    upstream: SocketAddr,
    key: &str,
    field: &str,
    n: u64,
) -> serde_json::Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let doc: serde_json::Value =
            serde_json::from_str(&body(upstream, "/accounting").await).unwrap();
        let found = doc["keys"][key].clone();
        if found[field].as_u64() == Some(n) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for upstream {key}.{field} = {n}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn rate_limit_allows_the_burst_then_429_with_retry_after() {
    runtime().block_on(async {
        let policies = Policies {
            rate_limit: Some(RateLimitRule {
                rate_per_s: 0.5,
                burst: 3,
            }),
            ..Policies::default()
        };
        let mut stack = Stack::start(policies_stack(policies)).await;
        for _ in 0..3 {
            assert_eq!(status(stack.gateway, "/", "a").await, 200);
        }
        let refused = get(stack.gateway, "/", "a", DEADLINE).await.unwrap();
        assert_eq!(refused.status, 429);
        // At 0.5/s the next place is 2 s away (less the time the three took).
        assert_eq!(refused.retry_after.as_deref(), Some("2"));
        // Another key has its own burst.
        assert_eq!(status(stack.gateway, "/", "b").await, 200);
        for want in [200, 200, 200, 429, 200] {
            let r = stack.record().await;
            assert_eq!(r.status, want, "{r:?}");
        }
    });
}

#[test]
fn concurrency_limit_refuses_the_n_plus_first_at_once() {
    runtime().block_on(async {
        let policies = Policies {
            concurrency: Some(ConcurrencyRule {
                max: 2,
                queue: 0,
                queue_timeout: Duration::ZERO,
                retry_after: None,
            }),
            ..Policies::default()
        };
        let stack = Stack::start(policies_stack(policies)).await;
        let gw = stack.gateway;
        let slow: Vec<_> = (0..2)
            .map(|_| tokio::spawn(get(gw, "/?sleep_ms=800", "k", DEADLINE)))
            .collect();
        upstream_in_flight(gw, 2).await;
        let third = get(gw, "/", "k", DEADLINE).await.unwrap();
        assert_eq!(third.status, 503);
        assert!(
            third.elapsed < Duration::from_millis(300),
            "refused at once, took {:?}",
            third.elapsed
        );
        for s in slow {
            assert_eq!(s.await.unwrap().unwrap().status, 200);
        }
        // Slots free again.
        assert_eq!(status(gw, "/", "k").await, 200);
    });
}

#[test]
fn queue_waits_for_a_slot_then_503_at_its_timeout() {
    runtime().block_on(async {
        let rule = |timeout_ms| Policies {
            concurrency: Some(ConcurrencyRule {
                max: 1,
                queue: 1,
                queue_timeout: Duration::from_millis(timeout_ms),
                retry_after: None,
            }),
            ..Policies::default()
        };
        let mut config = policies_stack(Policies::default());
        config.routes = vec![
            Route {
                prefix: "/short".into(),
                policies: rule(200),
            },
            Route {
                prefix: "/long".into(),
                policies: rule(5000),
            },
        ];
        let stack = Stack::start(config).await;
        let gw = stack.gateway;
        let first_short = tokio::spawn(get(gw, "/short?sleep_ms=700", "k", DEADLINE));
        let first_long = tokio::spawn(get(gw, "/long?sleep_ms=400", "k", DEADLINE));
        upstream_in_flight(gw, 2).await;
        let (timed_out, waited) = tokio::join!(
            get(gw, "/short", "k", DEADLINE),
            get(gw, "/long", "k", DEADLINE)
        );
        let timed_out = timed_out.unwrap();
        assert_eq!(timed_out.status, 503);
        assert!(
            timed_out.elapsed >= Duration::from_millis(190)
                && timed_out.elapsed < Duration::from_millis(650),
            "503 at the queue timeout, took {:?}",
            timed_out.elapsed
        );
        let waited = waited.unwrap();
        assert_eq!(waited.status, 200, "the queued request got the slot");
        assert_eq!(first_short.await.unwrap().unwrap().status, 200);
        assert_eq!(first_long.await.unwrap().unwrap().status, 200);
    });
}

#[test]
fn breaker_opens_on_errors_and_recovers_through_a_probe() {
    runtime().block_on(async {
        let cool_down = Duration::from_millis(300);
        let policies = Policies {
            breaker: Some(BreakerRule {
                error_share: 0.5,
                window: Duration::from_secs(10),
                min_requests: 4,
                cool_down,
                probes: 1,
            }),
            ..Policies::default()
        };
        let stack = Stack::start(policies_stack(policies)).await;
        let gw = stack.gateway;
        assert_eq!(status(gw, "/", "k").await, 200);
        for _ in 0..3 {
            assert_eq!(status(gw, "/?status=500", "k").await, 500);
        }
        // 3 errors of 4: open. Even a good request is refused.
        assert_eq!(status(gw, "/", "k").await, 503);
        assert!(
            body(gw, "/metrics")
                .await
                .contains("contend_gateway_breaker_state{route=\"/\"} 1")
        );
        // Waiting out the cool-down is the behaviour under test, not synchronisation.
        tokio::time::sleep(cool_down + Duration::from_millis(50)).await;
        assert!(
            body(gw, "/metrics")
                .await
                .contains("contend_gateway_breaker_state{route=\"/\"} 2")
        );
        // A failing probe opens it again ...
        assert_eq!(status(gw, "/?status=500", "k").await, 500);
        assert_eq!(status(gw, "/", "k").await, 503);
        tokio::time::sleep(cool_down + Duration::from_millis(50)).await;
        // ... a good one closes it.
        assert_eq!(status(gw, "/", "k").await, 200);
        assert_eq!(status(gw, "/", "k").await, 200);
        assert!(
            body(gw, "/metrics")
                .await
                .contains("contend_gateway_breaker_state{route=\"/\"} 0")
        );
    });
}

#[test]
fn upstream_timeout_gives_504_and_the_upstream_sees_the_drop() {
    runtime().block_on(async {
        let policies = Policies {
            upstream_timeout: Some(Duration::from_millis(200)),
            ..Policies::default()
        };
        let mut stack = Stack::start(policies_stack(policies)).await;
        let answer = get(stack.gateway, "/?sleep_ms=600", "t", DEADLINE)
            .await
            .unwrap();
        assert_eq!(answer.status, 504);
        let r = stack.record().await;
        assert_eq!((r.status, r.upstream_status), (504, Some(504)));
        let urt = r.upstream_response_time_s.unwrap();
        assert!((0.19..0.5).contains(&urt), "urt {urt}");
        // The gateway closed its upstream connection: the mock finishes its
        // 600 ms and finds the client gone.
        let key = upstream_key_once(stack.upstream, "t", "abandoned", 1).await;
        assert_eq!(key["completed"], 0);
        assert!(key["wall_s"].as_f64().unwrap() >= 0.59, "{key}");
    });
}

#[test]
fn budget_blocks_a_key_once_its_accounted_time_passes_the_budget() {
    runtime().block_on(async {
        let policies = Policies {
            budget: Some(BudgetRule {
                budget: Duration::from_millis(250),
                window: Duration::from_secs(10),
                penalty: Duration::from_secs(5),
            }),
            ..Policies::default()
        };
        let stack = Stack::start(policies_stack(policies)).await;
        let gw = stack.gateway;
        // 150 ms each: 0.15, then 0.30 (past 0.25).
        assert_eq!(status(gw, "/?sleep_ms=150", "heavy").await, 200);
        assert_eq!(status(gw, "/?sleep_ms=150", "heavy").await, 200);
        let blocked = get(gw, "/", "heavy", DEADLINE).await.unwrap();
        assert_eq!(blocked.status, 429);
        assert_eq!(blocked.retry_after.as_deref(), Some("5"));
        assert_eq!(status(gw, "/", "light").await, 200);
        let metrics = body(gw, "/metrics").await;
        assert!(
            metrics.contains("contend_gateway_accounted_seconds_total{key=\"heavy\"} 0.3"),
            "{metrics}"
        );
    });
}

/// A client that leaves at 300 ms from 1 s of upstream work, in `mode`.
async fn client_leaves_early(mode: AbortAccounting) -> (AccessRecord, serde_json::Value, Duration) {
    let mut config = policies_stack(Policies::default());
    config.abort_accounting = mode;
    let mut stack = Stack::start(config).await;
    let started = Instant::now();
    let answer = get(
        stack.gateway,
        "/?sleep_ms=1000",
        "early-leaver",
        Duration::from_millis(300),
    )
    .await;
    assert!(answer.is_none(), "the client gave up first");
    let record = stack.record().await;
    let logged_after = started.elapsed();
    let outcome = if mode == AbortAccounting::Early {
        "abandoned"
    } else {
        "completed"
    };
    let upstream = upstream_key_once(stack.upstream, "early-leaver", outcome, 1).await;
    (record, upstream, logged_after)
}

#[test]
fn early_abort_logs_499_at_the_client_time_while_the_upstream_works_on() {
    runtime().block_on(async {
        let (r, upstream, logged_after) = client_leaves_early(AbortAccounting::Early).await;
        assert_eq!((r.status, r.upstream_status), (499, None), "{r:?}");
        let urt = r.upstream_response_time_s.unwrap();
        assert!(
            (0.28..0.7).contains(&urt),
            "urt {urt}: the time until the abort"
        );
        assert_eq!(r.accounted_s, urt);
        assert!(
            logged_after < Duration::from_millis(900),
            "logged at the abort, not at the upstream's end"
        );
        // The upstream did the whole second of work for a client that was gone.
        assert!(upstream["wall_s"].as_f64().unwrap() >= 0.99, "{upstream}");
    });
}

#[test]
fn complete_abort_logs_the_real_status_and_full_time() {
    runtime().block_on(async {
        let (r, upstream, _) = client_leaves_early(AbortAccounting::Complete).await;
        assert_eq!((r.status, r.upstream_status), (200, Some(200)), "{r:?}");
        let urt = r.upstream_response_time_s.unwrap();
        assert!(urt >= 0.99, "urt {urt}: the upstream's full time");
        assert_eq!(r.accounted_s, urt);
        assert!(upstream["wall_s"].as_f64().unwrap() >= 0.99, "{upstream}");
    });
}

#[test]
fn abort_charge_replaces_the_time_of_an_early_abort() {
    runtime().block_on(async {
        let mut config = policies_stack(Policies::default());
        config.abort_charge = Some(Duration::from_secs(30));
        let mut stack = Stack::start(config).await;
        assert!(
            get(
                stack.gateway,
                "/?sleep_ms=500",
                "k",
                Duration::from_millis(100)
            )
            .await
            .is_none()
        );
        let r = stack.record().await;
        assert_eq!(r.status, 499);
        assert_eq!(r.accounted_s, 30.0);
    });
}

/// The binary: `contend gateway --config FILE` prints its address first,
/// proxies, writes its access log in nginx's shape, and refuses a bad file
/// with exit code 2.
#[test]
fn the_gateway_binary_serves_and_logs() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let upstream = rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(mock_upstream::serve(
            l,
            mock_upstream::Config::default(),
            std::future::pending::<()>(),
        ));
        addr
    });
    let log = dir.path().join("access.log");
    let config = dir.path().join("gw.toml");
    std::fs::write(
        &config,
        format!("upstream = \"http://{upstream}\"\naccess_log = {log:?}\n[[routes]]\nprefix = \"/\"\nupstream_timeout = \"2s\"\n"),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_contend");
    let mut child = std::process::Command::new(exe)
        .args(["gateway", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .parse()
        .unwrap();
    let answer = rt.block_on(status(addr, "/x?bytes=5", "bin"));
    assert_eq!(answer, 200);
    // The writer thread appends moments after the request: poll the file
    // (nothing else signals it) up to the deadline.
    let deadline = Instant::now() + DEADLINE;
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("status=") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = contend::sys::signal(child.id(), libc::SIGTERM);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit}");
    assert!(
        text.contains(" key=bin method=GET path=/x?bytes=5 status=200 rt="),
        "{text}"
    );
    assert!(text.contains(" us=200 urt="), "{text}");

    std::fs::write(
        &config,
        "upstream = \"http://h:1\"\n[[routes]]\nprefix = \"/\"\nconcurrency = { max = 0 }\n",
    )
    .unwrap();
    let out = std::process::Command::new(exe)
        .args(["gateway", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gw.toml:4:23: route 1 concurrency max must be between 1 and"),
        "{stderr}"
    );
}

/// A scenario with `[gateway] kind = "reference"` runs through the gateway
/// the harness starts, and its access log comes back as per-key accounting.
#[test]
fn a_scenario_runs_through_the_reference_gateway_and_accounts_per_key() {
    let text = "[[phases]]\nrate = 40\nduration = \"500ms\"\n[upstream]\nsleep = \"2ms\"\n\
                [gateway]\nkind = \"reference\"\nupstream_timeout = \"2s\"\nconcurrency = { max = 8 }\n\
                [[keys]]\nname = \"a\"\n[[keys]]\nname = \"b\"\n[client]\nthreads = 1\n";
    let scenario = contend::scenario::parse(
        text,
        &contend::scenario::Source::File("gw.toml".into()),
        &contend::scenario::Overrides::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_contend"));
    let stop = contend::shutdown::Stop::never();
    let bench = contend::experiment::Bench {
        scenario: &scenario,
        exe,
        stop: &stop,
        cgroup: None,
    };
    let load = contend::driver::Load::Open(scenario.phases().to_vec());
    let out = contend::experiment::run::run(
        &bench,
        contend::experiment::step::Step::measured(load),
        Duration::from_secs(5),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Telemetry read late on a busy machine is no accounting problem.
    let warnings: Vec<&String> = out
        .warnings
        .iter()
        .filter(|w| !w.contains("own metrics could not be read"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    let acc = out.gateway.clone().expect("gateway accounting");
    assert_eq!(acc.kind, "reference");
    let arrivals = out.step.driver.totals.arrivals;
    assert_eq!(acc.log.lines, arrivals, "{acc:?}");
    assert_eq!(acc.log.unparsed_lines, 0);
    let per_key: u64 = ["a", "b"]
        .iter()
        .map(|k| acc.log.keys[*k].by_status.get(&200).copied().unwrap_or(0))
        .sum();
    assert_eq!(per_key, arrivals, "{acc:?}");
    assert!(acc.log.totals.accounted_s > 0.0, "{acc:?}");
    // Its raw log is kept for the report folder, whole, with its format.
    assert!(out.gateway_log.is_some(), "the raw log is kept");
    let dir = tempfile::tempdir().unwrap();
    let (written, errors) = contend::report::write_access_log(dir.path(), &out);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(written.len(), 2, "{written:?}");
    let kept = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    assert_eq!(kept.lines().count() as u64, arrivals);
    let format = std::fs::read_to_string(dir.path().join("access.log.format")).unwrap();
    assert_eq!(
        contend::logs::format_beside(&dir.path().join("access.log")).as_deref(),
        format.lines().last()
    );
}

/// nginx with `proxy_ignore_client_abort` off and on, started by the
/// topology in front of the mock: a client that leaves at 200 ms from
/// 600 ms of upstream work is logged as 499 with upstream status `-` and
/// about 0.2 s (off), or as 200 with the full time (on); the mock works the
/// full time either way. Skipped, saying why, when nginx is not installed.
#[test]
fn nginx_logs_client_aborts_as_nginx_does() {
    use contend::scenario::{GatewayKind, GatewaySpec, MockUpstreamSpec, Target};
    use contend::topology::Topology;
    if !crate::util::component_present(
        "nginx_logs_client_aborts_as_nginx_does",
        contend::topology::nginx::find(),
    ) {
        return;
    }
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_contend"));
    let rt = runtime();
    for mode in [AbortAccounting::Early, AbortAccounting::Complete] {
        let spec = GatewaySpec {
            kind: GatewayKind::Nginx,
            abort_accounting: mode,
            policies: Policies {
                upstream_timeout: Some(Duration::from_secs(5)),
                ..Policies::default()
            },
            ..GatewaySpec::default()
        };
        let mut topology = Topology::start(&Target::Mock(MockUpstreamSpec::default()), &spec, exe)
            .unwrap_or_else(|e| panic!("{e}"));
        let gateway = topology.gateway.as_ref().unwrap().addr();
        let upstream = topology.upstream.as_ref().unwrap().addr();
        rt.block_on(async {
            assert_eq!(status(gateway, "/?bytes=3", "ok").await, 200);
            assert!(
                get(
                    gateway,
                    "/?sleep_ms=600",
                    "leaver",
                    Duration::from_millis(200)
                )
                .await
                .is_none()
            );
            let outcome = if mode == AbortAccounting::Early {
                "abandoned"
            } else {
                "completed"
            };
            let truth = upstream_key_once(upstream, "leaver", outcome, 1).await;
            assert!(truth["wall_s"].as_f64().unwrap() >= 0.59, "{truth}");
        });
        let log = topology
            .gateway
            .as_mut()
            .unwrap()
            .finish()
            .unwrap_or_else(|e| panic!("{e}"));
        // The raw log kept for the report folder, read back in the format
        // nginx's config says it was written in.
        let raw = contend::analysis::gateway_log::keep(&log).expect("the log is kept");
        let (acc, _) = contend::analysis::gateway_log::read(log).expect("the log reads");
        assert!(acc.version.starts_with("nginx/"), "{acc:?}");
        let format = contend::logs::format::compile(
            raw.format
                .as_deref()
                .expect("nginx's config names its format"),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut copy = Vec::new();
        raw.copy_to(&mut copy).expect("the copy");
        let endings: Vec<Ending> = copy
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                contend::logs::line::read(&format, l)
                    .unwrap_or_else(|e| panic!("{}", e.describe(&format)))
            })
            .filter(|l| l.key == b"leaver")
            .map(|l| contend::logs::tally::ending(&l))
            .collect();
        let want = match mode {
            AbortAccounting::Early => Ending::ClientAbort,
            AbortAccounting::Complete => Ending::Completed,
        };
        assert_eq!(endings, [want], "{}", String::from_utf8_lossy(&copy));
        let leaver = &acc.log.keys["leaver"];
        let accounted = leaver.accounted_s;
        match mode {
            AbortAccounting::Early => {
                assert_eq!(leaver.by_status.get(&499), Some(&1), "{acc:?}");
                assert_eq!(leaver.upstream_status_missing, 1, "{acc:?}");
                assert!(
                    (0.18..0.5).contains(&accounted),
                    "accounted {accounted}: {acc:?}"
                );
            }
            AbortAccounting::Complete => {
                assert_eq!(leaver.by_status.get(&200), Some(&1), "{acc:?}");
                assert!(accounted >= 0.59, "accounted {accounted}: {acc:?}");
            }
        }
        assert_eq!(acc.log.keys["ok"].by_status.get(&200), Some(&1), "{acc:?}");
    }
}

/// HAProxy started by the topology in front of the mock, with `policies`
/// and `accounting`; `None` (the test then returns) when HAProxy is not
/// installed, saying why (a failure under `CI=true`).
fn haproxy_topology(
    test: &str,
    policies: Policies,
    accounting: AbortAccounting,
) -> Option<contend::topology::Topology> {
    use contend::scenario::{GatewayKind, GatewaySpec, MockUpstreamSpec, Target};
    if !crate::util::component_present(test, contend::topology::haproxy::find()) {
        return None;
    }
    let spec = GatewaySpec {
        kind: GatewayKind::Haproxy,
        abort_accounting: accounting,
        policies,
        ..GatewaySpec::default()
    };
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_contend"));
    Some(
        contend::topology::Topology::start(&Target::Mock(MockUpstreamSpec::default()), &spec, exe)
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

/// HAProxy 2.6 with and without `option abortonclose`, started by the
/// topology in front of the mock: a client that leaves at 200 ms from 600
/// ms of upstream work is logged `400` with termination state `CH`, no
/// upstream status and about 0.2 s (early: HAProxy closes the server
/// connection, the mock works on), or `200` with the full time (complete).
/// Its own notice at its soft stop is counted apart from the requests.
#[test]
fn haproxy_logs_client_aborts_by_its_termination_state() {
    let rt = runtime();
    for mode in [AbortAccounting::Early, AbortAccounting::Complete] {
        let policies = Policies {
            upstream_timeout: Some(Duration::from_secs(5)),
            ..Policies::default()
        };
        let Some(mut topology) = haproxy_topology(
            "haproxy_logs_client_aborts_by_its_termination_state",
            policies,
            mode,
        ) else {
            return;
        };
        let gateway = topology.gateway.as_ref().unwrap().addr();
        let upstream = topology.upstream.as_ref().unwrap().addr();
        rt.block_on(async {
            assert_eq!(status(gateway, "/?bytes=3", "ok").await, 200);
            let left = get(
                gateway,
                "/?sleep_ms=600",
                "leaver",
                Duration::from_millis(200),
            )
            .await;
            assert!(left.is_none(), "{left:?}");
            let outcome = if mode == AbortAccounting::Early {
                "abandoned"
            } else {
                "completed"
            };
            let truth = upstream_key_once(upstream, "leaver", outcome, 1).await;
            assert!(truth["wall_s"].as_f64().unwrap() >= 0.59, "{truth}");
        });
        let log = topology
            .gateway
            .as_mut()
            .unwrap()
            .finish()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(log.stopped_cleanly, "{log:?}");
        let (acc, _) = contend::analysis::gateway_log::read(log).expect("the log reads");
        assert!(acc.version.starts_with("haproxy/"), "{acc:?}");
        assert_eq!((acc.log.lines, acc.log.unparsed_lines), (2, 0), "{acc:?}");
        assert!(acc.log.notices > 0, "the soft stop's notice: {acc:?}");
        let leaver = &acc.log.keys["leaver"];
        let accounted = leaver.accounted_s;
        match mode {
            AbortAccounting::Early => {
                assert_eq!(leaver.by_status.get(&400), Some(&1), "{acc:?}");
                assert_eq!(leaver.by_termination.get("CH"), Some(&1), "{acc:?}");
                assert_eq!(
                    (leaver.client_aborts, leaver.upstream_status_missing),
                    (1, 1),
                    "{acc:?}"
                );
                assert!(
                    (0.18..0.5).contains(&accounted),
                    "accounted {accounted}: {acc:?}"
                );
            }
            AbortAccounting::Complete => {
                assert_eq!(leaver.by_status.get(&200), Some(&1), "{acc:?}");
                assert_eq!(leaver.client_aborts, 0, "{acc:?}");
                assert!(accounted >= 0.59, "accounted {accounted}: {acc:?}");
            }
        }
        assert_eq!(acc.log.keys["ok"].by_status.get(&200), Some(&1), "{acc:?}");
        assert!(topology.stop().is_empty(), "nothing of HAProxy is left");
    }
}

/// The scenario's policies as HAProxy enforces them: past `max` requests
/// in flight (server `maxconn`) with no queue, 503 at once; past the
/// upstream timeout (`timeout server`), 504; past a key's burst (a stick
/// table on `x-api-key`), 429 while other keys pass; the health endpoint
/// answers outside every limit; its stats socket says it never had more
/// than `max` in flight. Then a queue of one: the next request waits for a
/// slot and is served.
#[test]
fn haproxy_enforces_the_scenario_policies() {
    const TEST: &str = "haproxy_enforces_the_scenario_policies";
    let rt = runtime();
    let policies = Policies {
        concurrency: Some(ConcurrencyRule {
            max: 2,
            queue: 0,
            queue_timeout: Duration::ZERO,
            retry_after: None,
        }),
        upstream_timeout: Some(Duration::from_millis(500)),
        rate_limit: Some(RateLimitRule {
            rate_per_s: 1.0,
            burst: 3,
        }),
        ..Policies::default()
    };
    let Some(topology) = haproxy_topology(TEST, policies, AbortAccounting::Early) else {
        return;
    };
    let gw = topology.gateway.as_ref().unwrap().addr();
    let upstream = topology.upstream.as_ref().unwrap().addr();
    rt.block_on(async {
        let statuses = [
            status(gw, "/", "burst").await,
            status(gw, "/", "burst").await,
            status(gw, "/", "burst").await,
            status(gw, "/", "burst").await,
        ];
        assert_eq!(statuses, [200, 200, 200, 429]);
        assert_eq!(status(gw, "/", "other").await, 200);
        let slow: Vec<_> = ["s1", "s2"]
            .into_iter()
            .map(|k| tokio::spawn(get(gw, "/?sleep_ms=400", k, DEADLINE)))
            .collect();
        upstream_key_once(upstream, "s1", "started", 1).await;
        upstream_key_once(upstream, "s2", "started", 1).await;
        let third = get(gw, "/", "s3", DEADLINE).await.unwrap();
        assert_eq!(third.status, 503, "{third:?}");
        assert!(
            third.elapsed < Duration::from_millis(300),
            "refused at once: {third:?}"
        );
        assert_eq!(status(gw, "/healthz", "s3").await, 200);
        for s in slow {
            assert_eq!(s.await.unwrap().unwrap().status, 200);
        }
        let late = get(gw, "/?sleep_ms=900", "late", DEADLINE).await.unwrap();
        assert_eq!(late.status, 504, "{late:?}");
        assert!(
            (Duration::from_millis(450)..Duration::from_millis(900)).contains(&late.elapsed),
            "{late:?}"
        );
    });
    // Its own counters: never more than `max` in flight to the upstream.
    let counters = topology.gateway.as_ref().unwrap().counters();
    assert_eq!(counters.get("server.slim"), Some(&2), "{counters:?}");
    assert_eq!(counters.get("server.smax"), Some(&2), "{counters:?}");
    drop(topology);

    let queued = Policies {
        concurrency: Some(ConcurrencyRule {
            max: 1,
            queue: 1,
            queue_timeout: Duration::from_secs(5),
            retry_after: None,
        }),
        ..Policies::default()
    };
    let Some(topology) = haproxy_topology(TEST, queued, AbortAccounting::Early) else {
        return;
    };
    let gw = topology.gateway.as_ref().unwrap().addr();
    let upstream = topology.upstream.as_ref().unwrap().addr();
    rt.block_on(async {
        let first = tokio::spawn(get(gw, "/?sleep_ms=400", "first", DEADLINE));
        upstream_key_once(upstream, "first", "started", 1).await;
        let waited = get(gw, "/", "second", DEADLINE).await.unwrap();
        assert_eq!(waited.status, 200, "the queued request got the slot");
        assert!(
            waited.elapsed >= Duration::from_millis(200),
            "it waited for the slot: {waited:?}"
        );
        assert_eq!(first.await.unwrap().unwrap().status, 200);
    });
}
