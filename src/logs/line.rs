//! One access line read with a compiled [`Format`]: its literals matched
//! in order, each variable's value found up to the literal after it, and
//! the values the analysis reads converted.
//!
//! Takes a format and the bytes of one line (no newline); hands on a
//! [`Line`] borrowing from those bytes, or a [`Malformed`] saying where and
//! why the line is not in the format. Nothing is allocated per line.
//!
//! A value runs to the next occurrence of the literal after it, with two
//! exceptions nginx's own writing calls for: an occurrence right after a
//! backslash is escaped (`escape=json` writes `\"`), and in a variable
//! nginx writes as a list (`$upstream_*`) a space that continues the list
//! (`0.5, 0.3`, `502 : 200`) is part of the value. HAProxy's `%hr` and
//! `%hs` write nothing, and no space after them, when nothing was
//! captured; a HAProxy line behind a syslog header
//! (`Jan 31 13:55:36 host haproxy[42]: `) is read after the header.

use super::format::{Format, Language, Segment};
use super::value;
use super::vars::{Field, TimeKind, Timer};

/// The values of one line the analysis reads; what the format does not
/// have is `None` (or empty).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Line<'a> {
    /// When it was logged, us since the epoch.
    pub time_us: Option<i64>,
    /// The method (empty when not logged).
    pub method: &'a [u8],
    /// The path as requested, query included when logged (empty when not logged).
    pub path: &'a [u8],
    /// The status sent to the client.
    pub status: Option<u16>,
    /// The request's time at the gateway, us.
    pub request_time_us: Option<u64>,
    /// Time on the upstream, summed over attempts, us; `None`: no upstream
    /// time was logged (`-`, or HAProxy never connected).
    pub upstream_time_us: Option<u64>,
    /// Upstream attempts logged (`0.5, 0.3`: 2).
    pub upstream_attempts: u32,
    /// The last upstream status (the answer that counted).
    pub upstream_status: Option<u16>,
    /// `$upstream_status` was logged and every part of it was `-`.
    pub upstream_status_missing: bool,
    /// What the gateway charged, us (the reference gateway's `acct`).
    pub accounted_us: Option<u64>,
    /// The API key as logged (`-`: none; empty: the format has no key).
    pub key: &'a [u8],
    /// HAProxy's termination state (`CD--`), empty when not logged.
    pub termination: &'a [u8],
}

impl Line<'_> {
    /// The seconds this line charges its key, us: what the gateway
    /// accounted when it logs that, else its upstream time, else 0.
    pub fn charged_us(&self) -> u64 {
        self.accounted_us.or(self.upstream_time_us).unwrap_or(0)
    }
}

/// Why a line is not in the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The literal of segment `segment` was expected at byte `column` (1-based).
    Expected {
        /// Index into the format's segments.
        segment: usize,
        /// Where, 1-based.
        column: usize,
    },
    /// The value of the variable at `segment` is not in its shape.
    BadValue {
        /// Index into the format's segments.
        segment: usize,
        /// Where it starts, 1-based.
        column: usize,
    },
    /// Text is left after the format's end, from `column` (1-based).
    Trailing {
        /// Where, 1-based.
        column: usize,
    },
}

impl Malformed {
    /// What is wrong, in words, for the report's sample of malformed lines.
    pub fn describe(&self, format: &Format) -> String {
        match *self {
            Malformed::Expected { segment, column } => match &format.segments[segment] {
                Segment::Literal(l) => format!(
                    "expected {:?} at column {column}",
                    String::from_utf8_lossy(l)
                ),
                Segment::Var(v) => format!("expected {} at column {column}", v.name),
            },
            Malformed::BadValue { segment, column } => match &format.segments[segment] {
                Segment::Var(v) => {
                    format!("{} at column {column} is not a value it can hold", v.name)
                }
                Segment::Literal(_) => format!("bad value at column {column}"),
            },
            Malformed::Trailing { column } => {
                format!("text after the format's end, from column {column}")
            }
        }
    }
}

/// Reads `line` (without its newline) in `format`.
pub fn read<'a>(format: &Format, line: &'a [u8]) -> Result<Line<'a>, Malformed> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match read_from(format, line, 0) {
        Err(e) if format.language == Language::Haproxy => match syslog_header_end(line) {
            Some(start) => read_from(format, line, start),
            None => Err(e),
        },
        result => result,
    }
}

/// Where a syslog header (`... haproxy[42]: `) ends, if the line has one.
fn syslog_header_end(line: &[u8]) -> Option<usize> {
    let head = &line[..line.len().min(200)];
    let at = memchr::memmem::find(head, b"]: ")?;
    head[..at]
        .iter()
        .rposition(|&b| b == b'[')
        .filter(|&open| head[open + 1..at].iter().all(u8::is_ascii_digit))
        .map(|_| at + 3)
}

/// The raw values of one line, by what they mean.
#[derive(Default)]
struct Raw<'a> {
    time: Option<(&'a [u8], TimeKind, usize)>,
    request_line: &'a [u8],
    status: Option<(&'a [u8], usize)>,
    request_time: Option<(&'a [u8], usize)>,
    upstream_time: Option<&'a [u8]>,
    upstream_status: Option<&'a [u8]>,
    accounted: Option<(&'a [u8], usize)>,
    timers: [Option<&'a [u8]>; 6],
}

fn read_from<'a>(format: &Format, line: &'a [u8], start: usize) -> Result<Line<'a>, Malformed> {
    let segments = &format.segments;
    let mut out = Line::default();
    let mut raw = Raw::default();
    let mut pos = start;
    // Bytes of the next literal already accounted for (the space after an
    // absent optional variable).
    let mut skip = 0;
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(lit) => {
                let lit = &lit[skip.min(lit.len())..];
                skip = 0;
                if !has_prefix(&line[pos..], lit) {
                    return Err(Malformed::Expected {
                        segment: i,
                        column: pos + 1,
                    });
                }
                pos += lit.len();
            }
            Segment::Var(var) => {
                if var.optional && line.get(pos) != Some(&b'{') {
                    skip = usize::from(line.get(pos) != Some(&b' '));
                    continue;
                }
                let end = match segments.get(i + 1) {
                    Some(Segment::Literal(next)) => {
                        find_end(line, pos, next, var.multi).ok_or(Malformed::Expected {
                            segment: i + 1,
                            column: line.len() + 1,
                        })?
                    }
                    _ => line.len(),
                };
                let value = &line[pos..end];
                match var.field {
                    Field::Time(kind) => raw.time = Some((value, kind, i)),
                    Field::Method => out.method = value,
                    Field::Uri => out.path = value,
                    Field::RequestLine => raw.request_line = value,
                    Field::Status => raw.status = Some((value, i)),
                    Field::RequestTime => raw.request_time = Some((value, i)),
                    Field::UpstreamTime => raw.upstream_time = Some(value),
                    Field::UpstreamStatus => raw.upstream_status = Some(value),
                    Field::Accounted => raw.accounted = Some((value, i)),
                    Field::Termination => out.termination = value,
                    Field::Timer(t) => raw.timers[t as usize] = Some(value),
                    Field::Key => out.key = key_value(value),
                    Field::Other => {}
                }
                pos = end;
            }
        }
    }
    if pos < line.len() && !line[pos..].iter().all(u8::is_ascii_whitespace) {
        return Err(Malformed::Trailing { column: pos + 1 });
    }
    convert(&mut out, &raw, line)?;
    Ok(out)
}

/// Where a value that starts at `from` ends: the next occurrence of
/// `next` that is not escaped and, in a list, does not continue the list.
fn find_end(line: &[u8], from: usize, next: &[u8], list: bool) -> Option<usize> {
    let mut at = from;
    while let Some(p) = find_byte(line, at, next[0]) {
        let escaped = p > from && line[p - 1] == b'\\';
        let continues = list
            && next[0] == b' '
            && ((p > from && matches!(line[p - 1], b',' | b':'))
                || has_prefix(&line[p + 1..], b": "));
        if has_prefix(&line[p..], next) && !escaped && !continues {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

/// Where `b` is next, from `from`. Most values are a few bytes long: a
/// plain loop finds them sooner than setting up a vector search, which
/// takes the rest.
#[inline]
fn find_byte(line: &[u8], from: usize, b: u8) -> Option<usize> {
    let near = line.len().min(from + 32);
    match line[from..near].iter().position(|&c| c == b) {
        Some(i) => Some(from + i),
        None => memchr::memchr(b, &line[near..]).map(|i| near + i),
    }
}

/// `hay` starts with `needle`: a byte loop, since literals are a few bytes
/// and a call to `memcmp` costs more than comparing them.
#[inline]
fn has_prefix(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay.iter().zip(needle).all(|(a, b)| a == b)
}

/// A key as logged: HAProxy's captured headers `{abc|def}` give their first.
fn key_value(value: &[u8]) -> &[u8] {
    match value.strip_prefix(b"{").and_then(|v| v.strip_suffix(b"}")) {
        Some(inner) => inner.split(|&b| b == b'|').next().unwrap_or(inner),
        None => value,
    }
}

/// Column (1-based) of a value inside `line`.
fn column_of(line: &[u8], value: &[u8]) -> usize {
    (value.as_ptr() as usize).saturating_sub(line.as_ptr() as usize) + 1
}

/// Turns the raw values into numbers; a value the format requires that is
/// not in its shape makes the line malformed.
fn convert<'a>(out: &mut Line<'a>, raw: &Raw<'a>, line: &'a [u8]) -> Result<(), Malformed> {
    let bad = |segment: usize, value: &[u8]| Malformed::BadValue {
        segment,
        column: column_of(line, value),
    };
    if let Some((v, kind, i)) = raw.time {
        out.time_us = Some(value::time_us(v, kind).ok_or_else(|| bad(i, v))?);
    }
    if !raw.request_line.is_empty() {
        // `GET /path HTTP/1.1`; a request nginx could not read is `-` or junk.
        let mut words = raw.request_line.split(|&b| b == b' ');
        let method = words.next().unwrap_or_default();
        if let Some(path) = words.next() {
            if out.method.is_empty() {
                out.method = method;
            }
            if out.path.is_empty() {
                out.path = path;
            }
        }
    }
    if let Some((v, i)) = raw.status {
        // HAProxy writes -1 when no response was sent.
        out.status = match value::status(v) {
            Some(s) => Some(s),
            None if v == b"-1" || v == b"-" => None,
            None => return Err(bad(i, v)),
        };
    }
    if let Some((v, i)) = raw.request_time {
        out.request_time_us = Some(value::secs_us(v).ok_or_else(|| bad(i, v))?);
    }
    if let Some(v) = raw.upstream_time {
        (out.upstream_time_us, out.upstream_attempts) = value::upstream_times_us(v);
    }
    if let Some(v) = raw.upstream_status {
        (out.upstream_status, out.upstream_status_missing) = value::upstream_status(v);
    }
    if let Some((v, i)) = raw.accounted {
        out.accounted_us = match v {
            b"-" => None,
            _ => Some(value::secs_us(v).ok_or_else(|| bad(i, v))?),
        };
    }
    haproxy_times(out, &raw.timers);
    Ok(())
}

/// HAProxy's timers as nginx's two times: the request's (`%Ta`, else
/// `%Tt`) and the upstream's (from the connection to the server on:
/// `%Ta` less receiving and queueing, which holds `%Tc`, `%Tr` and the
/// data's transfer; `None` when it never connected, `%Tc` -1; `%Tr`
/// alone when `%Ta` is not logged).
fn haproxy_times(out: &mut Line<'_>, timers: &[Option<&[u8]>; 6]) {
    let get = |t: Timer| timers[t as usize].map(value::ms_us);
    if timers.iter().all(Option::is_none) {
        return;
    }
    let active = get(Timer::Active).flatten().or(get(Timer::Total).flatten());
    if out.request_time_us.is_none() {
        out.request_time_us = active;
    }
    let connected = get(Timer::Connect).map(|c| c.is_some());
    let upstream = match (connected, get(Timer::Active).flatten()) {
        (Some(false), _) => None,
        (_, Some(active)) if connected.is_some() => {
            let before = get(Timer::Receive).flatten().unwrap_or(0)
                + get(Timer::Wait).flatten().unwrap_or(0);
            Some(active.saturating_sub(before))
        }
        _ => get(Timer::Response).flatten(),
    };
    if out.upstream_time_us.is_none() {
        out.upstream_time_us = upstream;
        out.upstream_attempts = u32::from(upstream.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::format::compile;

    fn line<'a>(format: &Format, text: &'a str) -> Line<'a> {
        read(format, text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {}", e.describe(format)))
    }

    #[test]
    fn the_harness_line_reads_with_lists_and_dashes() {
        let f = compile(
            "$time_iso8601 key=$http_x_api_key method=$request_method path=$request_uri status=$status rt=$request_time us=$upstream_status urt=$upstream_response_time id=$http_x_request_id",
            None,
        )
        .unwrap();
        let l = line(
            &f,
            "2024-01-31T13:55:36+00:00 key=ui method=GET path=/a?b=1 status=200 rt=0.500 us=502, 200 urt=0.100, 0.300 id=x1",
        );
        assert_eq!(l.key, b"ui");
        assert_eq!((l.method, l.path), (&b"GET"[..], &b"/a?b=1"[..]));
        assert_eq!((l.status, l.request_time_us), (Some(200), Some(500_000)));
        assert_eq!(
            (l.upstream_time_us, l.upstream_attempts),
            (Some(400_000), 2)
        );
        assert_eq!(
            (l.upstream_status, l.upstream_status_missing),
            (Some(200), false)
        );
        assert_eq!(l.time_us, Some(1_706_709_336_000_000));
        let abort = line(
            &f,
            "2024-01-31T13:55:36+00:00 key=exporter method=GET path=/work status=499 rt=0.050 us=- urt=0.049 id=-",
        );
        assert_eq!(
            (abort.status, abort.upstream_status_missing),
            (Some(499), true)
        );
        assert_eq!(abort.charged_us(), 49_000);
        let redirected = line(
            &f,
            "2024-01-31T13:55:36+00:00 key=k method=GET path=/ status=200 rt=0.9 us=502 : 200 urt=0.5 : 0.3 id=-",
        );
        assert_eq!(redirected.upstream_time_us, Some(800_000));
    }

    #[test]
    fn combined_timed_lines_read_with_quotes_and_escapes() {
        let f = compile("nginx-timed", None).unwrap();
        let l = line(
            &f,
            r#"10.0.0.1 - - [31/Jan/2024:13:55:36 +0000] "GET /users/42?x=1 HTTP/1.1" 499 0 "-" "curl/8.0 \x22quoted\x22" rt=4.670 uct="0.000" uht="-" urt="4.669""#,
        );
        assert_eq!((l.method, l.path), (&b"GET"[..], &b"/users/42?x=1"[..]));
        assert_eq!(l.status, Some(499));
        assert_eq!(l.request_time_us, Some(4_670_000));
        assert_eq!(l.upstream_time_us, Some(4_669_000));
        assert_eq!(l.key, b"", "the format has no key");
        let json = compile(
            r#"log_format j escape=json '{"status":"$status","rt":"$request_time","ua":"$http_user_agent","key":"$http_x_api_key"}';"#,
            None,
        )
        .unwrap();
        let l = line(
            &json,
            r#"{"status":"200","rt":"0.010","ua":"a \"b\", c","key":"k1"}"#,
        );
        assert_eq!((l.status, l.key), (Some(200), &b"k1"[..]));
    }

    #[test]
    fn haproxy_lines_read_with_their_timers_and_states() {
        let f = compile("haproxy", None).unwrap();
        let text = r#"127.0.0.1:40000 [31/Jan/2024:13:55:36.250] fe be/s1 0/0/1/-1/2002 400 0 - - CH-- 1/1/0/0/0 0/0 "GET /work HTTP/1.1""#;
        let l = line(&f, text);
        assert_eq!(l.termination, b"CH--");
        assert_eq!(l.status, Some(400));
        assert_eq!(l.request_time_us, Some(2_002_000));
        assert_eq!(
            l.upstream_time_us,
            Some(2_002_000),
            "connected: Ta less TR and Tw"
        );
        assert_eq!(l.time_us, Some(1_706_709_336_250_000));
        // Never connected (Tc -1): no upstream time.
        let never = text.replace("0/0/1/-1/2002", "0/5/-1/-1/5");
        let l = line(&f, &never);
        assert_eq!(l.upstream_time_us, None);
        // Captured headers, and the same line behind a syslog header.
        let with_captures = text.replace(" 0/0 \"GET", " 0/0 {key-9|x} {} \"GET");
        let behind_syslog = format!("Jan 31 13:55:36 host haproxy[123]: {with_captures}");
        let l = line(&f, &behind_syslog);
        assert_eq!(l.method, b"GET");
        let keyed = compile("haproxy", Some("%hr")).unwrap();
        assert_eq!(line(&keyed, &with_captures).key, b"key-9");
    }

    /// Lines HAProxy 2.6 wrote (`option httplog`, `option abortonclose`,
    /// `timeout server 2s`, the key captured) in front of the mock upstream:
    /// a client that left at 0.3 s, and the server timeout.
    #[test]
    fn haproxy_2_6_lines_read_as_written() {
        let f = compile("haproxy", Some("%hr")).unwrap();
        // (line, key, status, upstream us, ending)
        let cases = [
            (
                r#"127.0.0.1:52044 [26/Nov/2026:03:29:01.488] fe be/s1 0/0/0/1/1 200 84 - - ---- 1/1/0/0/0 0/0 {ui} "GET /work?cpu_ms=1 HTTP/1.1""#,
                "ui",
                200,
                Some(1_000),
                crate::logs::tally::Ending::Completed,
            ),
            (
                r#"127.0.0.1:52050 [26/Nov/2026:03:29:01.500] fe be/s1 0/0/0/-1/303 400 206 - - CH-- 1/1/0/0/0 0/0 {exporter} "GET /work?sleep_ms=1000 HTTP/1.1""#,
                "exporter",
                400,
                Some(303_000),
                crate::logs::tally::Ending::ClientAbort,
            ),
            (
                r#"127.0.0.1:52062 [26/Nov/2026:03:29:01.812] fe be/s1 0/0/0/-1/2001 504 198 - - sH-- 1/1/0/0/0 0/0 {batch} "GET /work?sleep_ms=3000 HTTP/1.1""#,
                "batch",
                504,
                Some(2_001_000),
                crate::logs::tally::Ending::GatewayTimeout,
            ),
        ];
        for (text, key, status, upstream, ending) in cases {
            let l = line(&f, text);
            assert_eq!(
                (l.key, l.status, l.upstream_time_us),
                (key.as_bytes(), Some(status), upstream),
                "{text}"
            );
            assert_eq!(crate::logs::tally::ending(&l), ending, "{text}");
        }
    }

    #[test]
    fn malformed_lines_say_where() {
        let f = compile("$remote_addr [$time_local] $status $request_time", None).unwrap();
        // (line, what the description says)
        let cases = [
            ("10.0.0.1 31/Jan/2024", "expected \" [\" at column"),
            (
                "10.0.0.1 [31/Jan/2024:13:55:36 +0000] abc 0.1",
                "$status at column 39 is not a value",
            ),
            ("10.0.0.1 [yesterday] 200 0.1", "$time_local at column 11"),
            (
                "10.0.0.1 [31/Jan/2024:13:55:36 +0000] 200 x",
                "$request_time at column 43",
            ),
            ("", "expected \" [\" at column 1"),
        ];
        for (text, want) in cases {
            let e = read(&f, text.as_bytes()).expect_err(text);
            assert!(e.describe(&f).contains(want), "{text}: {}", e.describe(&f));
        }
        let tail = compile("$status [$request_time]", None).unwrap();
        let e = read(&tail, b"200 [0.1] extra").unwrap_err();
        assert_eq!(
            e.describe(&tail),
            "text after the format's end, from column 10"
        );
    }
}
