//! Reading one logged value, fast and without allocating: seconds as nginx
//! writes them (`0.123`), HAProxy's milliseconds (`42`, `-1`, `+42`),
//! nginx's lists of upstream values (`0.5, 0.3`, `502 : 200`, `-`), and
//! the three ways a time of day is written.
//!
//! Takes the bytes of one value; hands on a number or `None`. No value is
//! guessed: anything that is not in the expected shape is `None`, and the
//! caller counts the line as malformed where the value is required.

use super::vars::TimeKind;

/// `0.123` or `12` (seconds, as nginx writes them) in microseconds;
/// `None` for `-`, empty or anything else.
pub fn secs_us(v: &[u8]) -> Option<u64> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &v[..0]),
    };
    if int.is_empty() || int.len() > 12 || frac.len() > 9 {
        return None;
    }
    let mut us = 0u64;
    for &b in int {
        if !b.is_ascii_digit() {
            return None;
        }
        us = us * 10 + u64::from(b - b'0');
    }
    us *= 1_000_000;
    let mut scale = 100_000;
    for &b in frac {
        if !b.is_ascii_digit() {
            return None;
        }
        us += u64::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(us)
}

/// HAProxy's milliseconds (`42`, `+42` with `option logasap`) in
/// microseconds; `None` for `-1` (the step never happened) or anything
/// that is not a number.
pub fn ms_us(v: &[u8]) -> Option<u64> {
    let digits = v.strip_prefix(b"+").unwrap_or(v);
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let mut ms = 0u64;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        ms = ms * 10 + u64::from(b - b'0');
    }
    Some(ms * 1000)
}

/// A 3-digit status; `None` otherwise.
pub fn status(v: &[u8]) -> Option<u16> {
    match v {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// The parts of one of nginx's upstream lists: `0.5, 0.3` (one per server
/// tried) and `0.5 : 0.3` (one per upstream group after an internal
/// redirect), each trimmed.
pub fn parts(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',' || b == b':').map(|p| p.trim_ascii())
}

/// nginx's `$upstream_response_time` list: the seconds of every attempt
/// summed (the time the request held upstreams), in microseconds, and the
/// attempts; `None` when no attempt has a number (`-`: no upstream
/// answered, or nginx before 1.15.7 after an abort).
pub fn upstream_times_us(v: &[u8]) -> (Option<u64>, u32) {
    let mut total = None;
    let mut attempts = 0;
    for part in parts(v) {
        attempts += 1;
        if let Some(us) = secs_us(part) {
            *total.get_or_insert(0) += us;
        }
    }
    (total, attempts)
}

/// nginx's `$upstream_status` list: its last status (the answer that
/// counted), and whether every part is `-` (no upstream answered).
pub fn upstream_status(v: &[u8]) -> (Option<u16>, bool) {
    let mut last = None;
    let mut any = false;
    for part in parts(v) {
        if let Some(s) = status(part) {
            last = Some(s);
            any = true;
        }
    }
    (last, !any)
}

/// A time of day in microseconds since the epoch (UTC; a time written
/// without a zone, as HAProxy's `%tr`, is taken as UTC).
pub fn time_us(v: &[u8], kind: TimeKind) -> Option<i64> {
    match kind {
        TimeKind::Epoch => secs_us(v).and_then(|us| i64::try_from(us).ok()),
        TimeKind::Iso8601 => iso8601_us(v),
        TimeKind::Clf => clf_us(v),
    }
}

/// `2024-01-31T13:55:36[.123](+00:00|Z)`.
fn iso8601_us(v: &[u8]) -> Option<i64> {
    if v.len() < 19 || v[4] != b'-' || v[7] != b'-' || v[10] != b'T' {
        return None;
    }
    let year = digits(&v[0..4])?;
    let month = digits(&v[5..7])?;
    let day = digits(&v[8..10])?;
    let clock = clock_us(&v[11..])?;
    let rest = &v[11 + clock.1..];
    let offset = zone_s(rest)?;
    Some(epoch_us(year, month, day, clock.0, offset))
}

/// `31/Jan/2024:13:55:36[.123][ +0000]`.
fn clf_us(v: &[u8]) -> Option<i64> {
    if v.len() < 20 || v[2] != b'/' || v[6] != b'/' || v[11] != b':' {
        return None;
    }
    let day = digits(&v[0..2])?;
    let month = month(&v[3..6])?;
    let year = digits(&v[7..11])?;
    let clock = clock_us(&v[12..])?;
    let rest = &v[12 + clock.1..];
    let offset = zone_s(rest.strip_prefix(b" ").unwrap_or(rest))?;
    Some(epoch_us(year, month, day, clock.0, offset))
}

/// `HH:MM:SS[.fraction]` at the start of `v`: microseconds into the day,
/// and the bytes it took.
fn clock_us(v: &[u8]) -> Option<(i64, usize)> {
    if v.len() < 8 || v[2] != b':' || v[5] != b':' {
        return None;
    }
    let h = digits(&v[0..2])?;
    let m = digits(&v[3..5])?;
    let s = digits(&v[6..8])?;
    let mut us = (h * 3600 + m * 60 + s) * 1_000_000;
    let mut used = 8;
    if v.get(8) == Some(&b'.') {
        let frac = v[9..].iter().take_while(|b| b.is_ascii_digit()).count();
        let mut scale = 100_000;
        for b in v[9..9 + frac].iter().take(6) {
            us += i64::from(b - b'0') * scale;
            scale /= 10;
        }
        used += 1 + frac;
    }
    Some((us, used))
}

/// `+00:00`, `+0000`, `-0130`, `Z` or nothing: seconds east of UTC.
fn zone_s(v: &[u8]) -> Option<i64> {
    match v {
        [] | [b'Z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
                _ => return None,
            };
            let s = (h * 60 + m) * 60;
            Some(if *sign == b'-' { -s } else { s })
        }
        _ => None,
    }
}

fn digits(v: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some(n)
}

fn month(v: &[u8]) -> Option<i64> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS
        .iter()
        .position(|m| m.as_slice() == v)
        .map(|i| i as i64 + 1)
}

/// Microseconds since the epoch of a civil date and time with a zone
/// offset (Howard Hinnant's days-from-civil).
fn epoch_us(year: i64, month: i64, day: i64, clock_us: i64, offset_s: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400_000_000 + clock_us - offset_s * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_logged() {
        // (text, seconds in us, HAProxy ms in us)
        let cases: [(&str, Option<u64>, Option<u64>); 8] = [
            ("0.123", Some(123_000), None),
            ("1.002", Some(1_002_000), None),
            ("12", Some(12_000_000), Some(12_000)),
            ("0.5", Some(500_000), None),
            ("-", None, None),
            ("-1", None, None),
            ("+42", None, Some(42_000)),
            ("", None, None),
        ];
        for (text, secs, ms) in cases {
            assert_eq!(secs_us(text.as_bytes()), secs, "{text}");
            assert_eq!(ms_us(text.as_bytes()), ms, "{text}");
        }
        assert_eq!(status(b"499"), Some(499));
        assert_eq!(status(b"49"), None);
        assert_eq!(status(b"-"), None);
    }

    #[test]
    fn upstream_lists_read_as_nginx_means_them() {
        // (text, summed us, attempts, last status, no upstream answered)
        type Case = (&'static str, Option<u64>, u32);
        let times: [Case; 5] = [
            ("0.500, 0.300", Some(800_000), 2),
            ("0.100 : 0.250", Some(350_000), 2),
            ("-", None, 1),
            ("-, 0.300", Some(300_000), 2),
            ("1.002", Some(1_002_000), 1),
        ];
        for (text, us, attempts) in times {
            assert_eq!(upstream_times_us(text.as_bytes()), (us, attempts), "{text}");
        }
        assert_eq!(upstream_status(b"502, 200"), (Some(200), false));
        assert_eq!(upstream_status(b"502, 504 : 200"), (Some(200), false));
        assert_eq!(upstream_status(b"-"), (None, true));
        assert_eq!(upstream_status(b"-, -"), (None, true));
    }

    #[test]
    fn times_of_day_in_every_shape() {
        // 2024-01-31T13:55:36Z
        let base = 1_706_709_336_000_000i64;
        let cases: [(&str, TimeKind, i64); 8] = [
            ("2024-01-31T13:55:36+00:00", TimeKind::Iso8601, base),
            (
                "2024-01-31T13:55:36.123+00:00",
                TimeKind::Iso8601,
                base + 123_000,
            ),
            ("2024-01-31T14:55:36+01:00", TimeKind::Iso8601, base),
            ("2024-01-31T13:55:36Z", TimeKind::Iso8601, base),
            ("31/Jan/2024:13:55:36 +0000", TimeKind::Clf, base),
            ("31/Jan/2024:08:55:36 -0500", TimeKind::Clf, base),
            ("31/Jan/2024:13:55:36.250", TimeKind::Clf, base + 250_000),
            ("1706709336.123", TimeKind::Epoch, base + 123_000),
        ];
        for (text, kind, want) in cases {
            assert_eq!(time_us(text.as_bytes(), kind), Some(want), "{text}");
        }
        assert_eq!(time_us(b"31/Foo/2024:13:55:36 +0000", TimeKind::Clf), None);
        assert_eq!(time_us(b"2024-01-31 13:55:36", TimeKind::Iso8601), None);
        // Leap day and the epoch itself.
        assert_eq!(
            time_us(b"1970-01-01T00:00:00+00:00", TimeKind::Iso8601),
            Some(0)
        );
        assert_eq!(
            time_us(b"2024-02-29T00:00:00Z", TimeKind::Iso8601),
            Some(1_709_164_800_000_000)
        );
    }
}
