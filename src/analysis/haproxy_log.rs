//! HAProxy's access line, as `scenarios/haproxy/gateway.cfg` writes it,
//! read into the fields the other gateways' lines give, plus HAProxy's
//! termination state.
//!
//! A line is
//! `DATE key=K method=M path=P status=S ta=MS treq=MS tw=MS tc=MS tr=MS ts=XX id=ID|-`:
//! HAProxy's `%Ta` (the request's active time), `%TR` (receiving its
//! headers), `%Tw` (waiting in its queue), `%Tc` (connecting to the
//! server), `%Tr` (the server's response headers), all in milliseconds
//! with `-1` for a step that never happened, and `%ts`, its two-letter
//! termination state (`--` normal; `CH` the client left while HAProxy
//! waited for the server's headers; `sH` the server timeout; `sQ` the
//! queue timeout; `PR` refused by a rule). The `-1`s never reach a sum:
//! they become `-` (no upstream status) or `None` (no upstream time).
//!
//! What the line becomes, in nginx's terms: `rt` is `%Ta`; the upstream
//! status is the status logged when the server answered (`%Tr` is not
//! `-1`), else `-`; the upstream time is the time the server held the
//! request, from the end of the queue to the line (`%Ta - %TR - %Tw`, which
//! is `%Tc + %Tr + %Td` when the server answered), kept only when HAProxy
//! connected to it (`%Tc` is not `-1`), as nginx's `$upstream_response_time`
//! is the time until the abort for a request it dropped. A status of `-1`
//! (nothing answered) is read as `0`.
//!
//! HAProxy also writes its own notices to the same log (`Proxy gateway
//! stopped (cumulated conns: ...)` at its soft stop): a line that does not
//! start with HAProxy's date is one of those, told apart from a line in
//! the wrong shape.

use contend_gateway::access_log::ParsedLine;

use super::gateway_log::Line;

/// What one line of HAProxy's log is.
#[derive(Debug, Clone, PartialEq)]
pub enum HaproxyLine {
    /// A request.
    Access(Line),
    /// One of HAProxy's own messages (no date first), not a request.
    Notice,
    /// A dated line not in the expected shape.
    Unparsed,
}

/// `26/Nov/2026:02:17:36.506`: HAProxy's `%t`.
fn is_date(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() >= 20
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b'/'
        && b[6] == b'/'
        && b[11] == b':'
}

/// A time field in ms: `Some(ms)`, or `None` for HAProxy's `-1`.
fn millis(value: &str) -> Option<Option<u64>> {
    let v: i64 = value.parse().ok()?;
    Some(u64::try_from(v).ok())
}

/// Reads one line of HAProxy's log.
pub fn parse_line(line: &str) -> HaproxyLine {
    let line = line.trim();
    let mut tokens = line.split(' ');
    if !tokens.next().is_some_and(is_date) {
        return HaproxyLine::Notice;
    }
    // Fields are `name=value`; a token without `=` continues the previous
    // value (a key with a space is logged as it came).
    let mut fields: Vec<(&str, String)> = Vec::new();
    for token in tokens {
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
    access(&get).map_or(HaproxyLine::Unparsed, HaproxyLine::Access)
}

/// The request a line's fields describe; `None` when one is missing or
/// not a number.
fn access<'a>(get: &dyn Fn(&str) -> Option<&'a str>) -> Option<Line> {
    let status: i64 = get("status")?.parse().ok()?;
    let status = u16::try_from(status).unwrap_or(0);
    let active_ms = millis(get("ta")?)?;
    let headers_ms = millis(get("treq")?)?;
    let queue_ms = millis(get("tw")?)?;
    let connect_ms = millis(get("tc")?)?;
    let response_ms = millis(get("tr")?)?;
    let termination = get("ts")?.to_string();
    let held_ms = connect_ms.map(|_| {
        active_ms
            .unwrap_or(0)
            .saturating_sub(headers_ms.unwrap_or(0))
            .saturating_sub(queue_ms.unwrap_or(0))
    });
    Some(Line {
        fields: ParsedLine {
            key: get("key")?.to_string(),
            status,
            request_time_s: active_ms.unwrap_or(0) as f64 / 1e3,
            upstream_status: match response_ms {
                Some(_) => status.to_string(),
                None => "-".into(),
            },
            upstream_response_time_s: held_ms.map(|ms| ms as f64 / 1e3),
            accounted_s: None,
            request_id: get("id")
                .filter(|id| !id.is_empty() && *id != "-")
                .map(str::to_string),
            // The harness starts HAProxy in cleartext only.
            negotiated: None,
            session_reused: false,
        },
        termination: Some(termination),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "26/Nov/2026:02:17:36.506";

    #[test]
    fn lines_read_with_never_kept_apart_from_real_times() {
        // (fields after the date, status, upstream status, upstream time, termination, client abort)
        type Case<'a> = (&'a str, u16, &'a str, Option<f64>, &'a str, bool);
        let cases: &[Case] = &[
            // Served: the server held it from its slot to the line.
            (
                "key=ui method=GET path=/work status=200 ta=12 treq=0 tw=3 tc=0 tr=9 ts=-- id=a1",
                200,
                "200",
                Some(0.009),
                "--",
                false,
            ),
            // abortonclose: the client left at 203 ms, the server never answered.
            (
                "key=exp method=GET path=/work status=400 ta=203 treq=0 tw=0 tc=0 tr=-1 ts=CH id=a2",
                400,
                "-",
                Some(0.203),
                "CH",
                true,
            ),
            // The server timeout: 504, the whole timeout on the server.
            (
                "key=batch method=GET path=/ status=504 ta=2002 treq=0 tw=0 tc=0 tr=-1 ts=sH id=-",
                504,
                "-",
                Some(2.002),
                "sH",
                false,
            ),
            // Refused by the concurrency rule: never connected.
            (
                "key=ui method=GET path=/ status=503 ta=0 treq=0 tw=-1 tc=-1 tr=-1 ts=PR id=a4",
                503,
                "-",
                None,
                "PR",
                false,
            ),
            // Left after 205 ms in the queue (as HAProxy 2.6 logs it): nothing
            // answered, nothing reached the server.
            (
                "key=exp method=GET path=/ status=-1 ta=205 treq=0 tw=205 tc=-1 tr=-1 ts=CQ id=a5",
                0,
                "-",
                None,
                "CQ",
                true,
            ),
            // A key with a space is logged as it came.
            (
                "key=a b method=GET path=/ status=200 ta=1 treq=0 tw=0 tc=0 tr=1 ts=-- id=-",
                200,
                "200",
                Some(0.001),
                "--",
                false,
            ),
        ];
        for (fields, status, us, urt, ts, abort) in cases {
            let line = format!("{DATE} {fields}");
            let HaproxyLine::Access(l) = parse_line(&line) else {
                panic!("{line}");
            };
            assert_eq!(
                (l.fields.status, &l.fields.upstream_status[..]),
                (*status, *us),
                "{line}"
            );
            assert_eq!(
                l.fields.upstream_response_time_s.map(|t| (t * 1e6).round()),
                urt.map(|t| (t * 1e6).round()),
                "{line}"
            );
            assert_eq!(l.termination.as_deref(), Some(*ts), "{line}");
            assert_eq!(l.client_abort(), *abort, "{line}");
        }
        let HaproxyLine::Access(spaced) = parse_line(&format!("{DATE} {}", cases[5].0)) else {
            panic!();
        };
        assert_eq!(spaced.fields.key, "a b");
        assert_eq!(spaced.fields.request_id, None);
    }

    #[test]
    fn notices_and_broken_lines_are_told_apart() {
        assert_eq!(
            parse_line("Proxy gateway stopped (cumulated conns: FE: 5, BE: 0)."),
            HaproxyLine::Notice
        );
        assert_eq!(
            parse_line(&format!("{DATE} key=ui status=200")),
            HaproxyLine::Unparsed
        );
        assert_eq!(
            parse_line(&format!(
                "{DATE} key=ui method=GET path=/ status=200 ta=x treq=0 tw=0 tc=0 tr=1 ts=-- id=-"
            )),
            HaproxyLine::Unparsed
        );
    }
}
