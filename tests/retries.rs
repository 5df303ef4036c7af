//! Retries against loopback servers that answer 504, 503 with
//! `Retry-After`, or 200, and record when each request arrived: attempts
//! add up, backoff times follow the policy, a budget caps retries at its
//! share, `Retry-After` is honoured, and retries stop at the run's end or
//! a stop, counted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use contend::driver::{self, DriverOutput, Plan, Progress};
use contend::outcome::Class;
use contend::scenario::{self, Experiment, Overrides, Source};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::util::{self, assert_outcomes_add_up};

/// What the server answers to its n-th request (from 0): a status and a
/// `Retry-After` value.
pub(crate) type Answer = dyn Fn(usize) -> (u16, Option<String>) + Send + Sync;

/// A server answering by `answer`, recording when each request arrived.
pub(crate) fn recording_server(answer: Arc<Answer>) -> (util::Server, Arc<Mutex<Vec<Instant>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = util::tokio_server(move |stream| {
        let (answer, log) = (answer.clone(), log.clone());
        async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let n = {
                    let mut seen = log.lock().unwrap();
                    seen.push(Instant::now());
                    seen.len() - 1
                };
                let (status, retry_after) = answer(n);
                let mut response = Response::builder().status(status);
                if let Some(value) = retry_after {
                    response = response.header("retry-after", value);
                }
                let response = response.body(Full::new(Bytes::new())).unwrap();
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    });
    (server, seen)
}

/// Runs `toml` (its `[target]` and `[client]` around `url`), stopped when
/// `stop_after_intervals` intervals have closed (when given).
fn run(toml: &str, url: &str, stop_after_intervals: Option<usize>) -> DriverOutput {
    let text = format!("[target]\nurl = \"{url}/\"\n{toml}");
    let scenario = scenario::parse(&text, &Source::Flags, &Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let Experiment::Run(load) = scenario.experiment.clone() else {
        panic!("a run");
    };
    let plan = Plan::new(&scenario, url, load).expect("plan");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut closed = 0;
    let out = driver::run(&plan, stop_rx, &mut |p| {
        if let Progress::Interval(_) = p {
            closed += 1;
            if Some(closed) == stop_after_intervals {
                let _ = stop_tx.send(true);
            }
        }
    })
    .expect("driver runs");
    assert_outcomes_add_up(&out);
    let r = &out.totals.retries;
    assert_eq!(
        r.attempts,
        out.totals.arrivals + r.made,
        "attempts = arrivals + retries"
    );
    assert_eq!(r.by_reason.iter().sum::<u64>(), r.made);
    let interval_attempts: u64 = out.intervals.iter().map(|i| i.attempts).sum();
    assert_eq!(
        interval_attempts, r.attempts,
        "intervals hold every attempt"
    );
    out
}

fn always(status: u16) -> Arc<Answer> {
    Arc::new(move |_| (status, None))
}

#[test]
fn backoff_times_follow_the_policy() {
    let (server, seen) = recording_server(always(504));
    // One arrival at 0: its attempts reach the server at 0, 100, 300, 700 ms.
    let out = run(
        r#"[[phases]]
rate = 1
duration = "1500ms"
[client]
threads = 1
retry = { on = ["504"], max = 3, backoff = "exponential", base = "100ms", cap = "5s", jitter = "none" }
"#,
        &server.url(),
        None,
    );
    assert_eq!(out.totals.arrivals, 2, "arrivals at 0 and 1 s");
    let seen = seen.lock().unwrap().clone();
    // The first arrival's four attempts come before the second arrival.
    let gaps_ms: Vec<f64> = seen
        .windows(2)
        .take(3)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    for (gap, want) in gaps_ms.iter().zip([100.0, 200.0, 400.0]) {
        assert!(
            *gap >= want - 2.0 && *gap < want + 80.0,
            "gaps {gaps_ms:?} ms, want 100, 200, 400 plus a round trip"
        );
    }
    let r = &out.totals.retries;
    assert_eq!(r.exhausted, 1, "the first arrival used its 3 retries");
    // The second, at 1 s, has its first retry at 1.1 s, its second at 1.3 s,
    // and its third (due at 1.7 s) after the run's end: cut, not lost.
    assert_eq!(r.made, 5);
    assert_eq!(r.cut, 1);
    assert_eq!(out.totals.counts.class(Class::GatewayTimeout), 2);
    // Latency is what the caller waited: the first arrival waited 700 ms+.
    let max_ms = out.totals.latency_us.max() as f64 / 1e3;
    assert!(max_ms >= 698.0, "latency max {max_ms} ms");
}

#[test]
fn a_budget_caps_retries_at_its_share() {
    let (server, _) = recording_server(always(504));
    let out = run(
        r#"[[phases]]
rate = 300
duration = "1s"
[client]
threads = 2
retry = { on = ["504"], max = 3, base = "5ms", jitter = "none", budget = "10%" }
"#,
        &server.url(),
        None,
    );
    let (t, r) = (&out.totals, &out.totals.retries);
    assert!(
        r.made as f64 <= 0.1 * t.arrivals as f64,
        "{} retries for {} arrivals",
        r.made,
        t.arrivals
    );
    assert!(
        r.made as f64 >= 0.08 * t.arrivals as f64,
        "the budget's share is used: {} retries for {} arrivals",
        r.made,
        t.arrivals
    );
    assert!(r.budget_refused > 0);
    assert_eq!(t.counts.class(Class::GatewayTimeout), t.arrivals);
    let amplification: f64 = out.intervals[0].amplification;
    assert!((1.0..=1.11).contains(&amplification), "{amplification}");
}

/// One arrival: 503 with `retry_after` on the first attempt, then 200;
/// returns the gap between the two attempts, s.
fn retry_after_gap_s(retry_after: String) -> f64 {
    let answer: Arc<Answer> = Arc::new(move |n| {
        if n == 0 {
            (503, Some(retry_after.clone()))
        } else {
            (200, None)
        }
    });
    let (server, seen) = recording_server(answer);
    let out = run(
        // One arrival (the next would be due at 3.3 s): the server's
        // second request is its retry, never a later arrival.
        r#"[[phases]]
rate = 0.3
duration = "3s"
[client]
threads = 1
retry = { on = ["503"], max = 2, base = "10ms", jitter = "none", retry_after = true }
"#,
        &server.url(),
        None,
    );
    assert_eq!(out.totals.arrivals, 1);
    assert_eq!(out.totals.retries.made, 1);
    let seen = seen.lock().unwrap();
    (seen[1] - seen[0]).as_secs_f64()
}

#[test]
fn retry_after_in_seconds_and_as_a_date_is_honoured() {
    let gap = retry_after_gap_s("1".to_string());
    assert!(
        (1.0..1.2).contains(&gap),
        "Retry-After: 1 waited {gap:.3} s"
    );
    // An HTTP-date has whole seconds: 2 s ahead is 1 to 2 s away.
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let gap = retry_after_gap_s(date.clone());
    assert!(
        (0.9..2.2).contains(&gap),
        "Retry-After: {date} waited {gap:.3} s"
    );
}

#[test]
fn a_stop_cuts_waiting_retries_and_counts_them() {
    let (server, _) = recording_server(always(504));
    let out = run(
        r#"[[phases]]
rate = 50
duration = "5s"
[client]
threads = 1
interval = "500ms"
retry = { on = ["504"], max = 3, base = "300ms", jitter = "none" }
"#,
        &server.url(),
        Some(1),
    );
    assert!(out.interrupted);
    let r = &out.totals.retries;
    assert!(r.cut > 0, "retries waiting at the stop are counted");
    assert!(
        out.totals.arrivals < 100,
        "{} arrivals",
        out.totals.arrivals
    );
    assert_eq!(
        out.totals.counts.class(Class::GatewayTimeout),
        out.totals.arrivals
    );
}

#[test]
fn without_a_policy_nothing_is_retried() {
    let (server, seen) = recording_server(always(504));
    let out = run(
        "[[phases]]\nrate = 50\nduration = \"1s\"\n",
        &server.url(),
        None,
    );
    let r = &out.totals.retries;
    assert_eq!((r.made, r.cut, r.exhausted), (0, 0, 0));
    assert_eq!(seen.lock().unwrap().len() as u64, out.totals.arrivals);
}
