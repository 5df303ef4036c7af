//! Value checks of a scenario: rates, durations, counts, names, HTTP
//! methods, paths and header text, CPU lists.
//!
//! Takes one plain value and the label it goes by (`[client] timeout`,
//! `--timeout`), so one rule words its message for a file and for a flag
//! alike; hands on `Ok` or the message, which the caller locates. Nothing
//! here knows where the value came from.

use std::time::Duration;

use contend_units::format_duration;

use super::{INTERVAL_RANGE, MAX_RATE_PER_S, Rate};

/// Longest value echoed whole in a message, in characters.
const MAX_SHOWN_CHARS: usize = 100;
/// How much of a longer value is shown, in characters.
const SHOWN_PREFIX_CHARS: usize = 60;

/// A value as messages echo it: quoted, and cut short with a note of its
/// length when it is long (a 100 KB path would bury the message).
pub(crate) fn quoted(value: &str) -> String {
    let chars = value.chars().count();
    if chars <= MAX_SHOWN_CHARS {
        return format!("{value:?}");
    }
    let prefix: String = value.chars().take(SHOWN_PREFIX_CHARS).collect();
    format!("{prefix:?}... ({chars} characters, the first {SHOWN_PREFIX_CHARS} shown)")
}

/// A constant rate: more than 0 per second and at most [`MAX_RATE_PER_S`].
pub(super) fn check_rate(what: &str, rate_per_s: f64) -> Result<(), String> {
    if !rate_per_s.is_finite() || rate_per_s <= 0.0 {
        return Err(format!(
            "{what} must be more than 0 arrivals per second (e.g. \"20k\"), got {rate_per_s}"
        ));
    }
    check_rate_cap(what, rate_per_s)
}

/// One end of a ramp: 0 or more per second (a ramp may start or end at
/// rest) and at most [`MAX_RATE_PER_S`].
pub(super) fn check_ramp_end(what: &str, rate_per_s: f64) -> Result<(), String> {
    if !rate_per_s.is_finite() || rate_per_s < 0.0 {
        return Err(format!(
            "{what} must be 0 or more arrivals per second, got {rate_per_s}"
        ));
    }
    check_rate_cap(what, rate_per_s)
}

/// At most [`MAX_RATE_PER_S`].
fn check_rate_cap(what: &str, rate_per_s: f64) -> Result<(), String> {
    if rate_per_s > MAX_RATE_PER_S {
        return Err(format!(
            "{what} of {rate_per_s} per second is more than contend can offer: at most {MAX_RATE_PER_S} (\"10000k\")"
        ));
    }
    Ok(())
}

/// A ramp as a whole: not 0 at both ends (it would offer nothing).
pub(super) fn check_ramp(what: &str, from: f64, to: f64) -> Result<(), String> {
    if from == 0.0 && to == 0.0 {
        return Err(format!(
            "{what} ramps from 0 to 0: at least one end must be more than 0"
        ));
    }
    Ok(())
}

/// Checks a whole rate (the form `--rate` gives).
pub(super) fn check_rate_value(what: &str, rate: Rate) -> Result<(), String> {
    match rate {
        Rate::Constant(r) => check_rate(what, r),
        Rate::Ramp { from, to } => {
            check_ramp_end(&format!("{what} from"), from)?;
            check_ramp_end(&format!("{what} to"), to)?;
            check_ramp(what, from, to)
        }
    }
}

/// Durations that must be more than zero and at most `max`.
pub(super) fn check_positive_duration(
    what: &str,
    d: Duration,
    max: Duration,
) -> Result<(), String> {
    if d.is_zero() {
        return Err(format!("{what} must be more than 0 (e.g. \"10s\"), got 0"));
    }
    if d > max {
        return Err(format!(
            "{what} of {} is longer than the limit of {}",
            format_duration(d),
            format_duration(max)
        ));
    }
    Ok(())
}

/// A reporting interval within [`INTERVAL_RANGE`].
pub(super) fn check_interval(what: &str, d: Duration) -> Result<(), String> {
    let (low, high) = INTERVAL_RANGE;
    if d < low || d > high {
        return Err(format!(
            "{what} must be between {} and {}, got {}",
            format_duration(low),
            format_duration(high),
            format_duration(d)
        ));
    }
    Ok(())
}

/// A whole number within `low..=high`.
pub(super) fn check_int(what: &str, n: i64, low: i64, high: i64) -> Result<(), String> {
    if n < low || n > high {
        return Err(format!("{what} must be between {low} and {high}, got {n}"));
    }
    Ok(())
}

/// `tchar` of RFC 9110: what a method or a header name may hold.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An HTTP method: a token (`GET`, `POST`, any case).
pub(super) fn check_method(what: &str, method: &str) -> Result<(), String> {
    if !is_token(method) {
        return Err(format!(
            "{what} {} is not a valid HTTP method: use a word of letters like GET, POST or PUT",
            quoted(method)
        ));
    }
    Ok(())
}

/// Longest request path, in bytes: the most the HTTP library's URI holds
/// (the driver parses every path as one).
const MAX_PATH_BYTES: usize = u16::MAX as usize - 1;

/// A request path: starts with `/`, and every character can stand in a
/// request line as it is.
pub(super) fn check_path(what: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "{what} {} must start with '/', like \"/\" or \"/api?x=1\"",
            quoted(path)
        ));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{what} {} holds {c:?}, which cannot be sent in a request line: percent-encode it (a space is %20)",
            quoted(path)
        ));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "{what} {} is longer than the {MAX_PATH_BYTES} bytes a request target can hold: use a shorter path",
            quoted(path)
        ));
    }
    Ok(())
}

/// A header name: a token.
pub(super) fn check_header_name(what: &str, name: &str) -> Result<(), String> {
    if !is_token(name) {
        return Err(format!(
            "{what} name {} is not a valid HTTP header name: use letters, digits and '-', like \"x-request-id\"",
            quoted(name)
        ));
    }
    Ok(())
}

/// A header value: no control character but tab.
pub(super) fn check_header_value(what: &str, value: &str) -> Result<(), String> {
    // HTTP field values may hold visible characters, spaces and tabs: no
    // other control character (a newline would split the request).
    if let Some(c) = value
        .chars()
        .find(|&c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(format!(
            "{what} value {} holds the control character {c:?}, which HTTP does not allow",
            quoted(value)
        ));
    }
    Ok(())
}

/// A scenario name, used as a folder name: 1 to 100 of `[A-Za-z0-9._-]`,
/// not starting with `.`.
pub(super) fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if name.is_empty() || name.len() > 100 || !ok_chars || name.starts_with('.') {
        return Err(format!(
            "{what} {} is not usable as a report folder name: use 1 to 100 letters, digits, '-', '_' or '.' (not first)",
            quoted(name)
        ));
    }
    Ok(())
}

/// A CPU list: numbers and ranges, `"0"`, `"0,1"`, `"0-3"`.
pub(super) fn check_cpus(what: &str, cpus: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{what} {} is not a CPU list: expected numbers and ranges like \"0\", \"0,1\" or \"0-3\"",
            quoted(cpus)
        )
    };
    if cpus.trim().is_empty() {
        return Err(bad());
    }
    for part in cpus.split(',') {
        let mut ends = part.trim().splitn(2, '-');
        let low: u32 = ends
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|_| bad())?;
        if let Some(high) = ends.next() {
            let high: u32 = high.trim().parse().map_err(|_| bad())?;
            if high < low {
                return Err(bad());
            }
        }
    }
    Ok(())
}

/// Work per request of the mock: zero allowed, at most an hour.
pub(super) fn check_work_duration(what: &str, d: Duration) -> Result<(), String> {
    let max = Duration::from_secs(3600);
    if d > max {
        return Err(format!(
            "{what} of {} is longer than the limit of {}",
            format_duration(d),
            format_duration(max)
        ));
    }
    Ok(())
}
