//! `--metrics-addr`: the run's own progress in the Prometheus text format
//! while it runs, so a long soak can be watched (Prometheus, Grafana).
//!
//! Takes the address to listen on, then each step's start and each
//! interval as it closes (from the console adapter, on the driver's
//! coordinating thread, never a shard's); hands on `GET /metrics`:
//! arrivals offered and requests sent, outcomes by class (counters over
//! the whole run), and the last closed interval's latency quantiles,
//! schedule lag, requests in flight, driver CPU and pacing window
//! (gauges). A small server on a thread of its own answers one scrape at
//! a time; the driver's request path never sees it.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::outcome::Class;
use crate::record::IntervalRow;

/// How long one scrape may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a request read (its head; scrapes have no body).
const MAX_REQUEST_BYTES: usize = 8192;

/// What the exporter shows, updated as the run goes.
#[derive(Debug, Default)]
struct State {
    steps: u64,
    step_rate_per_s: f64,
    intervals: u64,
    offered: u64,
    sent: u64,
    outcomes: [u64; Class::ALL.len()],
    last: Option<Last>,
}

/// The last closed interval's gauges.
#[derive(Debug, Clone, Copy)]
struct Last {
    duration_s: f64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    lag_p99_us: u64,
    in_flight: u64,
    driver_cpu_cores: f64,
    pacing_window_us: u64,
}

/// A running exporter: feed it the run's steps and intervals.
#[derive(Clone)]
pub struct Exporter {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
}

impl Exporter {
    /// Listens on `addr` (`127.0.0.1:9464`) and serves from a thread of
    /// its own until the process ends. An address that cannot be listened
    /// on is bad input, said with the fix.
    pub fn start(addr: &str) -> Result<Exporter> {
        let parsed: SocketAddr = addr.parse().map_err(|_| {
            Error::Usage(format!(
                "--metrics-addr {addr:?} is not IP:PORT, like 127.0.0.1:9464"
            ))
        })?;
        let listener = TcpListener::bind(parsed).map_err(|e| {
            Error::Usage(format!(
                "--metrics-addr {addr}: cannot listen there ({e}); choose another port"
            ))
        })?;
        let addr = listener.local_addr().unwrap_or(parsed);
        let state = Arc::new(Mutex::new(State::default()));
        let served = state.clone();
        std::thread::Builder::new()
            .name("contend-exporter".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    // One bad client costs only its own answer.
                    let _ = answer(stream, &served);
                }
            })
            .map_err(|e| Error::Runtime(format!("cannot start the exporter thread: {e}")))?;
        Ok(Exporter { state, addr })
    }

    /// Where it listens (the port picked, for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A step begins, offering up to `rate_per_s` (0 for a closed loop).
    pub fn step(&self, rate_per_s: f64) {
        if let Ok(mut s) = self.state.lock() {
            s.steps += 1;
            s.step_rate_per_s = rate_per_s;
        }
    }

    /// An interval closed.
    pub fn interval(&self, row: &IntervalRow) {
        if let Ok(mut s) = self.state.lock() {
            s.intervals += 1;
            s.offered += row.offered;
            s.sent += row.sent;
            for (total, n) in s.outcomes.iter_mut().zip(row.by_class) {
                *total += n;
            }
            s.last = Some(Last {
                duration_s: row.duration_s,
                p50_us: row.p50_us,
                p90_us: row.p90_us,
                p99_us: row.p99_us,
                p999_us: row.p999_us,
                max_us: row.max_us,
                lag_p99_us: row.lag_p99_us,
                in_flight: row.in_flight,
                driver_cpu_cores: row.driver_cpu_cores,
                pacing_window_us: row.pacing_window_us,
            });
        }
    }

    /// The exposition text now.
    pub fn render(&self) -> String {
        self.state.lock().map(|s| render(&s)).unwrap_or_default()
    }
}

/// Reads one request and answers it: `/metrics` (or `/`) gets the text,
/// anything else a 404.
fn answer(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_BYTES {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path.split('?').next() {
        Some("/metrics" | "/") => (
            "200 OK",
            state.lock().map(|s| render(&s)).unwrap_or_default(),
        ),
        _ => ("404 Not Found", "try /metrics\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// The exposition text of `s`.
fn render(s: &State) -> String {
    let mut out = String::with_capacity(2048);
    let mut family = |name: &str, kind: &str, help: &str, lines: &[(String, f64)]| {
        let _ = writeln!(
            out,
            "# HELP contend_{name} {help}\n# TYPE contend_{name} {kind}"
        );
        for (labels, value) in lines {
            let _ = writeln!(out, "contend_{name}{labels} {value}");
        }
    };
    let plain = |v: f64| vec![(String::new(), v)];
    family("up", "gauge", "1 while contend runs.", &plain(1.0));
    family(
        "steps_total",
        "counter",
        "Load steps begun.",
        &plain(s.steps as f64),
    );
    family(
        "step_rate_per_second",
        "gauge",
        "Highest rate the current step offers (0 for a closed loop).",
        &plain(s.step_rate_per_s),
    );
    family(
        "intervals_total",
        "counter",
        "Intervals closed.",
        &plain(s.intervals as f64),
    );
    family(
        "offered_total",
        "counter",
        "Arrivals dispatched.",
        &plain(s.offered as f64),
    );
    family(
        "sent_total",
        "counter",
        "Requests written to a connection.",
        &plain(s.sent as f64),
    );
    let outcomes: Vec<(String, f64)> = Class::ALL
        .iter()
        .zip(s.outcomes)
        .map(|(c, n)| (format!("{{class=\"{}\"}}", c.name()), n as f64))
        .collect();
    family("outcomes_total", "counter", "Outcomes by class.", &outcomes);
    if let Some(l) = s.last {
        let secs = |us: u64| us as f64 / 1e6;
        let quantiles: Vec<(String, f64)> = [
            ("0.5", l.p50_us),
            ("0.9", l.p90_us),
            ("0.99", l.p99_us),
            ("0.999", l.p999_us),
            ("1", l.max_us),
        ]
        .iter()
        .map(|(q, us)| (format!("{{quantile=\"{q}\"}}"), secs(*us)))
        .collect();
        family(
            "interval_latency_seconds",
            "gauge",
            "Latency from the intended send time in the last closed interval.",
            &quantiles,
        );
        family(
            "interval_schedule_lag_p99_seconds",
            "gauge",
            "Schedule lag P99 in the last closed interval.",
            &plain(secs(l.lag_p99_us)),
        );
        family(
            "in_flight",
            "gauge",
            "Requests in flight at the last interval's end.",
            &plain(l.in_flight as f64),
        );
        family(
            "interval_seconds",
            "gauge",
            "Length of the last closed interval.",
            &plain(l.duration_s),
        );
        family(
            "driver_cpu_cores",
            "gauge",
            "Driver CPU in the last closed interval, cores.",
            &plain(l.driver_cpu_cores),
        );
        family(
            "interval_pacing_window_seconds",
            "gauge",
            "Widest pacing window a driver thread used in the last closed interval.",
            &plain(secs(l.pacing_window_us)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_add_up_and_the_last_one_shows() {
        let exporter = Exporter::start("127.0.0.1:0").unwrap();
        exporter.step(200.0);
        let mut row = IntervalRow {
            index: 0,
            start_s: 0.0,
            duration_s: 1.0,
            offered: 100,
            sent: 99,
            by_class: [0; Class::ALL.len()],
            p50_us: 1500,
            p90_us: 2000,
            p99_us: 5000,
            p999_us: 9000,
            max_us: 12000,
            lag_p99_us: 40,
            in_flight: 3,
            driver_cpu_cores: 0.1,
            pacing_window_us: 200,
            latency_hist_v2: Vec::new(),
            new_connections: 0,
            connect_p99_us: 0,
            tls_handshake_p99_us: 0,
            ..IntervalRow::default()
        };
        row.by_class[Class::Success.index()] = 95;
        exporter.interval(&row);
        row.p99_us = 7000;
        exporter.interval(&row);
        let (status, text) =
            crate::topology::http::get_within(exporter.addr(), "/metrics", Duration::from_secs(5))
                .unwrap();
        assert_eq!(status, 200);
        assert!(text.contains("contend_offered_total 200\n"), "{text}");
        assert!(text.contains("contend_sent_total 198\n"), "{text}");
        assert!(
            text.contains("contend_outcomes_total{class=\"2xx\"} 190\n"),
            "{text}"
        );
        assert!(
            text.contains("contend_interval_latency_seconds{quantile=\"0.99\"} 0.007\n"),
            "{text}"
        );
        assert!(
            text.contains("contend_step_rate_per_second 200\n"),
            "{text}"
        );
        assert!(
            text.contains("contend_interval_pacing_window_seconds 0.0002\n"),
            "{text}"
        );
        // The crate the harness scrapes components with reads it.
        let parsed =
            crate::topology::telemetry::select(&text, &["contend_in_flight".into()]).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].value, 3.0);
        let (status, _) =
            crate::topology::http::get_within(exporter.addr(), "/other", Duration::from_secs(5))
                .unwrap();
        assert_eq!(status, 404);
    }
}
