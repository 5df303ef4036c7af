//! The access log: one line per request in nginx's shape, written by a
//! thread of its own; and [`parse_line`], which reads one such line back
//! (the reference gateway's or nginx's) for whoever sums a log (the
//! harness's analysis).
//!
//! A text line is
//! `TIME key=K method=M path=P status=S rt=SECS us=S|- urt=SECS|- [acct=SECS] [id=ID|-]`,
//! the fields of nginx's `$time_iso8601 $http_x_api_key $request_method
//! $request_uri $status $request_time $upstream_status
//! $upstream_response_time $http_x_request_id` (`scenarios/nginx/gateway.conf`
//! writes the same shape), `-` where nginx writes `-`. `acct` is the
//! reference gateway's own: what its budget was charged, which differs from
//! `urt` only under `abort_charge`. `id` is the request's `x-request-id`,
//! which joins a line with the client's and the upstream's records of the
//! same request. JSON lines carry the same fields.

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// How long the writer thread rests after writing a batch of lines: the
/// longest a line waits for the disk, and what makes batches under load.
/// At 2,000 requests/s a batch holds some 20 lines.
pub const WRITE_PAUSE: Duration = Duration::from_millis(10);

/// How access lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// nginx's shape, `key=value` fields after the time.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// One request as logged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccessRecord {
    /// When the line was written (the request's end).
    #[serde(serialize_with = "rfc3339_millis")]
    pub time: DateTime<Utc>,
    /// The API key, `-` when the request had none.
    pub key: String,
    /// Request method.
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// Status logged (499: the client left first).
    pub status: u16,
    /// From the request's arrival to the line, seconds.
    pub request_time_s: f64,
    /// The upstream's status; `None` is nginx's `-` (no upstream answer).
    pub upstream_status: Option<u16>,
    /// Time spent on the upstream, seconds; `None` is `-` (never sent).
    pub upstream_response_time_s: Option<f64>,
    /// Seconds charged to the key's accounting (the budget and `/metrics`).
    pub accounted_s: f64,
    /// The request's `x-request-id`; `None` is `-` (it had none).
    pub request_id: Option<String>,
}

fn rfc3339_millis<S: serde::Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, false))
}

impl AccessRecord {
    /// The line as written, without its newline.
    pub fn format(&self, format: LogFormat) -> String {
        match format {
            LogFormat::Json => serde_json::to_string(self).unwrap_or_default(),
            LogFormat::Text => {
                let mut line = String::with_capacity(160);
                let _ = write!(
                    line,
                    "{} key={} method={} path={} status={} rt={:.3} us=",
                    self.time.to_rfc3339_opts(SecondsFormat::Millis, false),
                    escape(&self.key),
                    escape(&self.method),
                    escape(&self.path),
                    self.status,
                    self.request_time_s
                );
                match self.upstream_status {
                    Some(s) => write!(line, "{s}"),
                    None => write!(line, "-"),
                }
                .ok();
                match self.upstream_response_time_s {
                    Some(t) => write!(line, " urt={t:.3}"),
                    None => write!(line, " urt=-"),
                }
                .ok();
                let _ = write!(line, " acct={:.3}", self.accounted_s);
                match &self.request_id {
                    Some(id) => write!(line, " id={}", escape(id)),
                    None => write!(line, " id=-"),
                }
                .ok();
                line
            }
        }
    }
}

/// nginx's `escape=default`: `"`, `\`, spaces and non-printable bytes as
/// `\xHH`, so a field never holds a space. (nginx leaves spaces alone; a key
/// with a space would break its log's fields, and ours must not.)
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if value.is_empty() {
        return "-".into();
    }
    // Nearly every field needs nothing escaped: then it is borrowed, not copied.
    if value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return value.into();
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_graphic() && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out.into()
}

/// The writer thread's end of the log. Sending never blocks the request.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: mpsc::Sender<Message>,
}

#[derive(Debug)]
enum Message {
    Line(String),
    /// Answered once every line sent before it is on disk.
    Flush(mpsc::Sender<()>),
}

impl LogSink {
    /// Opens (appends to) `path` and starts the thread that writes to it.
    ///
    /// An unbounded channel: the request path never waits for the disk, and
    /// lines are never dropped. Lines are small (about 150 bytes); the
    /// thread drains what has queued, writes and flushes it, then rests
    /// [`WRITE_PAUSE`], so a line is on disk at most about that long after
    /// its request ended (nginx's `access_log ... flush=` in miniature).
    /// An idle thread blocks in `recv` and costs nothing.
    pub fn open(path: &Path) -> std::io::Result<LogSink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (tx, rx) = mpsc::channel::<Message>();
        std::thread::Builder::new()
            .name("gateway-log".into())
            .spawn(move || {
                let mut out = BufWriter::new(file);
                let mut waiting = Vec::new();
                while let Ok(first) = rx.recv() {
                    for message in
                        std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok()))
                    {
                        match message {
                            Message::Line(line) => {
                                let _ = writeln!(out, "{line}");
                            }
                            Message::Flush(done) => waiting.push(done),
                        }
                    }
                    let _ = out.flush();
                    for done in waiting.drain(..) {
                        let _ = done.send(());
                    }
                    // Rest before looking again, so that under load lines
                    // are written in batches and a request's send finds
                    // this thread awake: std's channel then wakes nobody.
                    // Waiting in `recv` for each line instead costs the
                    // request path a futex wake and a context switch per
                    // line, on the gateway's own core.
                    std::thread::sleep(WRITE_PAUSE);
                }
            })?;
        Ok(LogSink { tx })
    }

    /// Queues a line.
    pub fn write(&self, line: String) {
        let _ = self.tx.send(Message::Line(line));
    }

    /// Blocks until every line queued so far is written (at shutdown).
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(std::time::Duration::from_secs(5));
        }
    }
}

// ---------------------------------------------------------------------------
// Reading logs back.
// ---------------------------------------------------------------------------

/// One line read back. Upstream fields stay text where nginx may write
/// lists (`502, 200`) or `-`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// API key (`-`: none).
    pub key: String,
    /// Status.
    pub status: u16,
    /// Request time, seconds.
    pub request_time_s: f64,
    /// `$upstream_status` as written.
    pub upstream_status: String,
    /// Upstream time summed over attempts; `None` when `-`.
    pub upstream_response_time_s: Option<f64>,
    /// `acct` when the line has it (the reference gateway), else `None`.
    pub accounted_s: Option<f64>,
    /// `id` (`$http_x_request_id`) when the line has one that is not `-`.
    pub request_id: Option<String>,
    /// What the connection negotiated, when the line says (nginx's
    /// `tls=$ssl_protocol proto=$server_protocol`): `TLSv1.3 HTTP/2.0`, or
    /// `plain HTTP/1.1` without TLS.
    pub negotiated: Option<String>,
    /// True when the line says the TLS session was resumed (`reused=r`).
    pub session_reused: bool,
}

impl ParsedLine {
    /// Seconds this line charges its key: `acct` when present, else the
    /// upstream time, else 0 (nothing reached the upstream).
    pub fn accounted(&self) -> f64 {
        self.accounted_s
            .or(self.upstream_response_time_s)
            .unwrap_or(0.0)
    }
}

/// Sums `1.002, 0.500` (or `1.002 : 0.5`); `None` when nothing is a number.
fn sum_times(text: &str) -> Option<f64> {
    let mut total = None;
    for part in text.split([',', ':']) {
        if let Ok(v) = part.trim().parse::<f64>() {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// Parses one text or JSON access line; `None` when it is neither.
pub fn parse_line(line: &str) -> Option<ParsedLine> {
    let line = line.trim();
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        return Some(ParsedLine {
            key: v.get("key")?.as_str()?.to_string(),
            status: u16::try_from(v.get("status")?.as_u64()?).ok()?,
            request_time_s: v.get("request_time_s")?.as_f64()?,
            upstream_status: v
                .get("upstream_status")
                .and_then(|s| s.as_u64())
                .map_or("-".into(), |s| s.to_string()),
            upstream_response_time_s: v.get("upstream_response_time_s").and_then(|t| t.as_f64()),
            accounted_s: v.get("accounted_s").and_then(|t| t.as_f64()),
            request_id: v
                .get("request_id")
                .and_then(|t| t.as_str())
                .map(str::to_string),
            negotiated: None,
            session_reused: false,
        });
    }
    // Fields are `name=value`; a token without `=` continues the previous
    // value (nginx's `$upstream_status` may read `502, 200`).
    let mut fields: Vec<(&str, String)> = Vec::new();
    for token in line.split(' ').skip(1) {
        match token.split_once('=') {
            Some((name, value))
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase()) =>
            {
                fields.push((name, value.to_string()));
            }
            _ => {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(token);
                }
            }
        }
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    Some(ParsedLine {
        key: get("key")?.to_string(),
        status: get("status")?.parse().ok()?,
        request_time_s: get("rt")?.parse().ok()?,
        upstream_status: get("us")?.to_string(),
        upstream_response_time_s: sum_times(get("urt")?),
        accounted_s: get("acct").and_then(|t| t.parse().ok()),
        request_id: get("id")
            .filter(|id| !id.is_empty() && *id != "-")
            .map(str::to_string),
        negotiated: get("proto").map(|proto| {
            let tls = get("tls").filter(|t| !t.is_empty() && *t != "-");
            format!("{} {proto}", tls.unwrap_or("plain"))
        }),
        session_reused: get("reused") == Some("r"),
    })
}

/// Seconds as `Duration`, for the budget.
pub fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_in_both_formats() {
        let record = AccessRecord {
            time: DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap(),
            key: "a b\"".into(),
            method: "GET".into(),
            path: "/work?cpu_ms=1".into(),
            status: 499,
            request_time_s: 1.0021,
            upstream_status: None,
            upstream_response_time_s: Some(1.002),
            accounted_s: 1.002,
            request_id: Some("00000000000000a1".into()),
        };
        let text = record.format(LogFormat::Text);
        assert_eq!(
            text,
            "2023-11-14T22:13:20.123+00:00 key=a\\x20b\\x22 method=GET path=/work?cpu_ms=1 status=499 rt=1.002 us=- urt=1.002 acct=1.002 id=00000000000000a1"
        );
        for line in [text, record.format(LogFormat::Json)] {
            let p = parse_line(&line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(p.status, 499);
            assert_eq!(p.upstream_status, "-");
            assert_eq!(p.upstream_response_time_s, Some(1.002));
            assert_eq!(p.accounted(), 1.002);
            assert_eq!(p.request_id.as_deref(), Some("00000000000000a1"));
        }
    }

    #[test]
    fn nginx_lines_parse() {
        // (line, key, status, upstream_status, urt, accounted)
        type Case<'a> = (&'a str, &'a str, u16, &'a str, Option<f64>, f64);
        let cases: &[Case] = &[
            (
                "2024-01-01T00:00:00+00:00 key=ui method=GET path=/ status=499 rt=1.002 us=- urt=1.002",
                "ui",
                499,
                "-",
                Some(1.002),
                1.002,
            ),
            (
                "2024-01-01T00:00:00+00:00 key=- method=GET path=/ status=200 rt=0.010 us=200 urt=0.009",
                "-",
                200,
                "200",
                Some(0.009),
                0.009,
            ),
            (
                "2024-01-01T00:00:00+00:00 key=k method=GET path=/ status=200 rt=0.5 us=502, 200 urt=0.1, 0.3",
                "k",
                200,
                "502, 200",
                Some(0.4),
                0.4,
            ),
            (
                "2024-01-01T00:00:00+00:00 key=k method=GET path=/ status=429 rt=0.000 us=- urt=-",
                "k",
                429,
                "-",
                None,
                0.0,
            ),
        ];
        for (line, key, status, us, urt, acct) in cases {
            let p = parse_line(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(
                (&p.key[..], p.status, &p.upstream_status[..]),
                (*key, *status, *us),
                "{line}"
            );
            assert_eq!(
                p.upstream_response_time_s.map(|t| (t * 1e6).round()),
                urt.map(|t| (t * 1e6).round()),
                "{line}"
            );
            assert!((p.accounted() - acct).abs() < 1e-9, "{line}");
        }
        assert_eq!(parse_line("garbage"), None);
    }
}
