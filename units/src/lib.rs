//! `contend-units`: human units, shared by the `contend` harness and the
//! reference gateway.
//!
//! Takes short strings from scenario files, gateway configs and flags and
//! hands on plain values (`Duration`, arrivals per second as `f64`), or a
//! message that says what was expected; formats values back for people. It
//! only reads units: whether a value is in range (not zero, not absurd) is
//! for the caller's validation, which knows the field.
//!
//! - this module: durations (`250ms`, `10s`, `1.5s`, `2m`), rates (`20000`,
//!   `20k`, `1.5k/s`), and wrk-style latencies (`812us`, `1.25ms`).
//! - [`de`]: serde deserializers for those values in TOML files, whose
//!   messages say what was expected (toml adds the position).
//! - [`located`]: `file:line:col` of a byte offset, and an error that
//!   carries it, for messages about a file.

#![deny(missing_docs)]

pub mod de;
pub mod located;

pub use located::line_col;

use std::time::Duration;

/// What every duration error ends with, so the fix is always in sight.
const DURATION_HINT: &str =
    "expected a duration like 250ms, 10s or 2m (units: ns, us, ms, s, m, h)";

/// What every rate error ends with.
const RATE_HINT: &str = "expected a rate per second like 20000, 20k or 1.5k/s";

/// Parses a duration with a unit: `100ns`, `500us`, `250ms`, `10s`, `1.5s`,
/// `2m`, `1h` (a space before the unit is allowed; `µs` is `us`).
///
/// A bare number is refused (is `10` seconds or milliseconds?), and so is a
/// negative one. Zero is accepted: the caller decides whether it is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty duration: {DURATION_HINT}"));
    }
    let (number, unit) = split_number(text);
    if number.is_empty() {
        return Err(format!(
            "`{text}` does not start with a number: {DURATION_HINT}"
        ));
    }
    if number.starts_with('-') {
        return Err(format!(
            "`{text}` is negative; a duration must be zero or more: {DURATION_HINT}"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a number with a unit: {DURATION_HINT}"))?;
    let unit_ns: f64 = match unit.trim_start() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "" => {
            return Err(format!(
                "`{text}` has no unit; write {number}s, {number}ms or {number}m"
            ));
        }
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: {DURATION_HINT}"
            ));
        }
    };
    let ns = (value * unit_ns).round();
    // u64 nanoseconds reach about 584 years: anything past that is certainly a typo.
    if !ns.is_finite() || ns >= u64::MAX as f64 {
        return Err(format!(
            "`{text}` is far too long a duration: {DURATION_HINT}"
        ));
    }
    Ok(Duration::from_nanos(ns as u64))
}

/// Parses a rate in arrivals per second: `20000`, `1.5`, `20k`, `1.5k`, with
/// an optional `/s` suffix (`20k/s`). `k` is thousands; no other suffix.
///
/// Zero and negative numbers are returned as they are, for the caller's range
/// check to name the field; only non-numbers, `inf` and `NaN` are refused here.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty rate: {RATE_HINT}"));
    }
    let without_per_s = text.strip_suffix("/s").unwrap_or(text).trim_end();
    let (number, multiplier) = match without_per_s.strip_suffix(['k', 'K']) {
        Some(n) => (n.trim_end(), 1e3),
        None => (without_per_s, 1.0),
    };
    let (digits, rest) = split_number(number);
    if digits.is_empty() || !rest.is_empty() {
        return Err(format!("`{text}` is not a rate: {RATE_HINT}"));
    }
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a rate: {RATE_HINT}"))?;
    let rate_per_s = value * multiplier;
    if !rate_per_s.is_finite() {
        return Err(format!("`{text}` is not a finite rate: {RATE_HINT}"));
    }
    Ok(rate_per_s)
}

/// Formats a duration for people, in the largest unit that reads well:
/// `0s`, `100ns`, `500us`, `250ms`, `1.5ms`, `1.5s`, `10s`, `90s`, `2m`, `1h`.
/// Fractions keep at most three decimals; whole minutes and hours use `m`
/// and `h`. [`parse_duration`] reads every result back.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    const S: u128 = 1_000_000_000;
    if ns % (3600 * S) == 0 {
        return format!("{}h", ns / (3600 * S));
    }
    if ns % (60 * S) == 0 {
        return format!("{}m", ns / (60 * S));
    }
    let (unit_ns, unit) = if ns >= S {
        (S, "s")
    } else if ns >= 1_000_000 {
        (1_000_000, "ms")
    } else if ns >= 1_000 {
        (1_000, "us")
    } else {
        (1, "ns")
    };
    // Three decimals of the unit, rounded to nearest, then trailing zeros trimmed.
    let milli_units = (ns * 1000 + unit_ns / 2) / unit_ns;
    let whole = milli_units / 1000;
    let frac = milli_units % 1000;
    if frac == 0 {
        format!("{whole}{unit}")
    } else {
        let frac_text = format!("{frac:03}");
        format!("{whole}.{}{unit}", frac_text.trim_end_matches('0'))
    }
}

/// Formats microseconds the way wrk does: `812us`, `1.25ms`, `2.10s`
/// (whole microseconds below 1 ms, then two decimals of ms or s).
pub fn fmt_us(us: u64) -> String {
    let us = us as f64;
    if us < 1_000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// Splits `text` into a leading decimal number (optional sign, digits and at
/// most one point) and the rest.
fn split_number(text: &str) -> (&str, &str) {
    let mut end = 0;
    let mut seen_point = false;
    for (i, c) in text.char_indices() {
        let ok = match c {
            '+' | '-' => i == 0,
            '0'..='9' => true,
            '.' if !seen_point => {
                seen_point = true;
                true
            }
            _ => false,
        };
        if !ok {
            break;
        }
        end = i + c.len_utf8();
    }
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let cases: &[(&str, Duration)] = &[
            ("100ns", Duration::from_nanos(100)),
            ("500us", Duration::from_micros(500)),
            ("500µs", Duration::from_micros(500)),
            ("250ms", Duration::from_millis(250)),
            ("1.5ms", Duration::from_micros(1500)),
            ("10s", Duration::from_secs(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.1s", Duration::from_millis(100)),
            (".5s", Duration::from_millis(500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("10 s", Duration::from_secs(10)),
            (" 3s ", Duration::from_secs(3)),
            ("0s", Duration::ZERO),
            ("+2s", Duration::from_secs(2)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn durations_refused() {
        // (input, part of the message)
        let cases: &[(&str, &str)] = &[
            ("", "empty duration"),
            ("10", "has no unit"),
            ("ms", "does not start with a number"),
            ("-5s", "negative"),
            ("5x", "unknown unit `x`"),
            ("5 sec", "unknown unit `sec`"),
            ("1.2.3s", "unknown unit `.3s`"),
            ("1e3s", "unknown unit `e3s`"),
            ("abc", "expected a duration like 250ms, 10s or 2m"),
            ("99999999999999h", "far too long"),
            (".s", "not a number"),
        ];
        for (text, want) in cases {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn rates_parse() {
        let cases: &[(&str, f64)] = &[
            ("20000", 20000.0),
            ("20k", 20000.0),
            ("20K", 20000.0),
            ("50k", 50000.0),
            ("1.5k", 1500.0),
            ("20k/s", 20000.0),
            ("300/s", 300.0),
            ("0.5", 0.5),
            ("0", 0.0),
            ("-3", -3.0),
            (" 2 k ", 2000.0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rate(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn rates_refused() {
        let cases = [
            "", "k", "fast", "20m", "20k/min", "inf", "NaN", "1e3", "2kk", "/s",
        ];
        for text in cases {
            let err = parse_rate(text).expect_err(text);
            assert!(err.contains("rate"), "{text}: {err}");
        }
    }

    #[test]
    fn micros_format_like_wrk() {
        let cases: &[(u64, &str)] = &[
            (0, "0us"),
            (812, "812us"),
            (999, "999us"),
            (1_000, "1.00ms"),
            (1_250, "1.25ms"),
            (999_994, "999.99ms"),
            (1_000_000, "1.00s"),
            (2_100_000, "2.10s"),
        ];
        for (us, want) in cases {
            assert_eq!(fmt_us(*us), *want, "{us}");
        }
    }

    #[test]
    fn durations_format_and_read_back() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(100), "100ns"),
            (Duration::from_micros(500), "500us"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(1234), "1.234s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(5400), "90m"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(*d), *want);
            assert_eq!(parse_duration(want), Ok(*d), "{want}");
        }
        // Finer than three decimals is rounded for display.
        assert_eq!(
            format_duration(Duration::from_nanos(1_234_567_890)),
            "1.235s"
        );
    }
}
