//! The names a format may use, and what each means to the analysis:
//! nginx's `log_format` variables and HAProxy's `log-format` aliases.
//!
//! Takes a variable's name as written (without `$` or `%`); hands on its
//! [`Field`] and whether nginx may write several values in it, or `None`
//! for a name neither gateway has. Tables only: compiling a format is
//! `format`'s, reading a line `line`'s.

/// How a time of day is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// `2024-01-31T13:55:36+00:00`, optionally with `.123` (nginx `$time_iso8601`).
    Iso8601,
    /// `31/Jan/2024:13:55:36 +0000` (nginx `$time_local`, HAProxy `%trg`,
    /// `%T`), optionally with `.123` before the zone (HAProxy `%t`, `%tr`
    /// carry milliseconds and no zone).
    Clf,
    /// Seconds since the epoch, `1706709336.123` (nginx `$msec`, HAProxy `%Ts`).
    Epoch,
}

/// One of HAProxy's timers, in milliseconds (`-1`: the step never happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// `%TR`: receiving the request.
    Receive,
    /// `%Tw`: waiting in queues.
    Wait,
    /// `%Tc`: connecting to the server.
    Connect,
    /// `%Tr`: the server's response headers.
    Response,
    /// `%Ta`: the request's active time (its end minus its start).
    Active,
    /// `%Tt`: the total, idle time before the request included.
    Total,
}

/// What a variable means to the analysis; most mean nothing to it
/// (`Other`) and are only stepped over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// When the request was logged.
    Time(TimeKind),
    /// `GET`.
    Method,
    /// The path as requested, with or without its query.
    Uri,
    /// The request line, `GET /path HTTP/1.1`.
    RequestLine,
    /// The status sent to the client.
    Status,
    /// nginx's `$request_time`, seconds.
    RequestTime,
    /// nginx's `$upstream_response_time`, seconds per attempt.
    UpstreamTime,
    /// nginx's `$upstream_status`, per attempt.
    UpstreamStatus,
    /// The seconds the gateway charged the key (the reference gateway's
    /// `acct`, written as `$contend_accounted`); without it a line charges
    /// its upstream time.
    Accounted,
    /// HAProxy's termination state (`%ts`, `%tsc`): `CD--`, `sH--`, `----`.
    Termination,
    /// One of HAProxy's timers.
    Timer(Timer),
    /// The API key (chosen with `--key`).
    Key,
    /// Anything else: stepped over.
    Other,
}

/// nginx variables the analysis reads, with their field.
const NGINX_FIELDS: &[(&str, Field)] = &[
    ("time_iso8601", Field::Time(TimeKind::Iso8601)),
    ("time_local", Field::Time(TimeKind::Clf)),
    ("msec", Field::Time(TimeKind::Epoch)),
    ("request_method", Field::Method),
    ("request_uri", Field::Uri),
    ("uri", Field::Uri),
    ("document_uri", Field::Uri),
    ("request", Field::RequestLine),
    ("status", Field::Status),
    ("request_time", Field::RequestTime),
    ("upstream_response_time", Field::UpstreamTime),
    ("upstream_status", Field::UpstreamStatus),
    ("contend_accounted", Field::Accounted),
];

/// nginx variables known but not read (ngx_http_core_module, upstream,
/// ssl, realip, gzip, limit_req/conn, proxy, http2/3 and friends).
const NGINX_OTHER: &[&str] = &[
    "args",
    "binary_remote_addr",
    "body_bytes_sent",
    "bytes_received",
    "bytes_sent",
    "connection",
    "connection_requests",
    "connection_time",
    "content_length",
    "content_type",
    "document_root",
    "gzip_ratio",
    "host",
    "hostname",
    "http2",
    "http3",
    "https",
    "is_args",
    "limit_conn_status",
    "limit_rate",
    "limit_req_status",
    "nginx_version",
    "pid",
    "pipe",
    "proxy_add_x_forwarded_for",
    "proxy_host",
    "proxy_port",
    "proxy_protocol_addr",
    "proxy_protocol_port",
    "proxy_protocol_server_addr",
    "proxy_protocol_server_port",
    "query_string",
    "realip_remote_addr",
    "realip_remote_port",
    "realpath_root",
    "remote_addr",
    "remote_port",
    "remote_user",
    "request_body",
    "request_body_file",
    "request_completion",
    "request_filename",
    "request_id",
    "request_length",
    "scheme",
    "server_addr",
    "server_name",
    "server_port",
    "server_protocol",
    "ssl_alpn_protocol",
    "ssl_cipher",
    "ssl_ciphers",
    "ssl_client_cert",
    "ssl_client_escaped_cert",
    "ssl_client_fingerprint",
    "ssl_client_i_dn",
    "ssl_client_s_dn",
    "ssl_client_serial",
    "ssl_client_v_end",
    "ssl_client_v_remain",
    "ssl_client_v_start",
    "ssl_client_verify",
    "ssl_curve",
    "ssl_curves",
    "ssl_early_data",
    "ssl_protocol",
    "ssl_server_name",
    "ssl_session_id",
    "ssl_session_reused",
    "tcpinfo_rcv_space",
    "tcpinfo_rtt",
    "tcpinfo_rttvar",
    "tcpinfo_snd_cwnd",
    "uid_got",
    "uid_reset",
    "uid_set",
    "upstream_addr",
    "upstream_bytes_received",
    "upstream_bytes_sent",
    "upstream_cache_status",
    "upstream_connect_time",
    "upstream_header_time",
    "upstream_last_server_name",
    "upstream_queue_time",
    "upstream_response_length",
];

/// Families of nginx variables, by prefix: a header, a cookie, an argument.
const NGINX_PREFIXES: &[&str] = &[
    "http_",
    "sent_http_",
    "sent_trailer_",
    "cookie_",
    "arg_",
    "upstream_http_",
    "upstream_cookie_",
    "upstream_trailer_",
    "jwt_claim_",
    "jwt_header_",
];

/// An nginx variable: its field and whether nginx may write several values
/// in it (`0.5, 0.3`: one per upstream tried; ` : ` between upstream
/// groups). `None` for a name nginx does not have.
pub fn nginx(name: &str) -> Option<(Field, bool)> {
    let multi = name.starts_with("upstream_");
    if let Some((_, field)) = NGINX_FIELDS.iter().find(|(n, _)| *n == name) {
        return Some((*field, multi));
    }
    let known = NGINX_OTHER.contains(&name)
        || NGINX_PREFIXES
            .iter()
            .any(|p| name.len() > p.len() && name.starts_with(p));
    known.then_some((Field::Other, multi))
}

/// Every nginx variable by name, for suggestions.
pub fn nginx_names() -> impl Iterator<Item = &'static str> {
    NGINX_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .chain(NGINX_OTHER.iter().copied())
}

/// HAProxy aliases the analysis reads, with their field.
const HAPROXY_FIELDS: &[(&str, Field)] = &[
    ("t", Field::Time(TimeKind::Clf)),
    ("tr", Field::Time(TimeKind::Clf)),
    ("trg", Field::Time(TimeKind::Clf)),
    ("trl", Field::Time(TimeKind::Clf)),
    ("T", Field::Time(TimeKind::Clf)),
    ("Tl", Field::Time(TimeKind::Clf)),
    ("Ts", Field::Time(TimeKind::Epoch)),
    ("HM", Field::Method),
    ("HU", Field::Uri),
    ("HP", Field::Uri),
    ("HPO", Field::Uri),
    ("r", Field::RequestLine),
    ("ST", Field::Status),
    ("ts", Field::Termination),
    ("tsc", Field::Termination),
    ("TR", Field::Timer(Timer::Receive)),
    ("Tw", Field::Timer(Timer::Wait)),
    ("Tc", Field::Timer(Timer::Connect)),
    ("Tr", Field::Timer(Timer::Response)),
    ("Ta", Field::Timer(Timer::Active)),
    ("Tt", Field::Timer(Timer::Total)),
];

/// HAProxy aliases known but not read (HAProxy 2.6's table of
/// `log-format` variables).
const HAPROXY_OTHER: &[&str] = &[
    "B", "CC", "CS", "H", "HQ", "HV", "ID", "Td", "Th", "Ti", "Tq", "Tu", "U", "ac", "b", "bc",
    "bi", "bp", "bq", "ci", "cp", "f", "fc", "fi", "fp", "ft", "hr", "hrl", "hs", "hsl", "lc",
    "ms", "pid", "rc", "rt", "s", "sc", "si", "sp", "sq", "sslc", "sslv",
];

/// HAProxy aliases that print nothing, and swallow the space after them,
/// when nothing was captured (`%hr`, `%hs`: `{...}` otherwise).
pub const HAPROXY_OPTIONAL: &[&str] = &["hr", "hs"];

/// A HAProxy alias: its field, or `None` for one HAProxy does not have.
pub fn haproxy(name: &str) -> Option<Field> {
    if let Some((_, field)) = HAPROXY_FIELDS.iter().find(|(n, _)| *n == name) {
        return Some(*field);
    }
    HAPROXY_OTHER.contains(&name).then_some(Field::Other)
}

/// Every HAProxy alias, for suggestions and for reading the longest match.
pub fn haproxy_names() -> impl Iterator<Item = &'static str> {
    HAPROXY_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .chain(HAPROXY_OTHER.iter().copied())
}

/// The known name closest to `name` (an edit or two away), for "did you mean".
pub fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.len() / 4).clamp(1, 3);
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, k)| (*d, k.len().abs_diff(name.len())))
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_their_fields() {
        assert_eq!(
            nginx("upstream_response_time"),
            Some((Field::UpstreamTime, true))
        );
        assert_eq!(nginx("status"), Some((Field::Status, false)));
        assert_eq!(nginx("http_x_api_key"), Some((Field::Other, false)));
        assert_eq!(nginx("upstream_http_server"), Some((Field::Other, true)));
        assert_eq!(nginx("http_"), None, "a family needs a name after it");
        assert_eq!(nginx("reqest_time"), None);
        assert_eq!(haproxy("Ta"), Some(Field::Timer(Timer::Active)));
        assert_eq!(haproxy("tsc"), Some(Field::Termination));
        assert_eq!(haproxy("hr"), Some(Field::Other));
        assert_eq!(haproxy("Zz"), None);
    }

    #[test]
    fn a_typo_finds_its_name() {
        assert_eq!(
            closest("upstream_responce_time", nginx_names()),
            Some("upstream_response_time")
        );
        assert_eq!(closest("reqest_time", nginx_names()), Some("request_time"));
        assert_eq!(closest("zzzzzzzz", nginx_names()), None);
    }
}
