//! The URLs of a scenario and its flags: `http://HOST:PORT` with an
//! optional path and query.
//!
//! Takes the URL text and the label it goes by; hands on the base
//! (`http://host:port`, lower case, port always written) and the path, or
//! a message that names what is wrong. Only plain `http://` is spoken.

use super::check::check_path;

/// A parsed `http://host:port/path?query`.
#[derive(Debug, PartialEq)]
pub(super) struct HttpUrl {
    /// `http://host:port`, scheme and host lower case, port always written.
    pub(super) base: String,
    /// Path and query when the URL had more than `/`.
    pub(super) path: Option<String>,
}

/// Parses an HTTP URL; `what` labels the messages.
pub(super) fn parse_http_url(what: &str, url: &str) -> Result<HttpUrl, String> {
    let expected = "expected http://HOST:PORT, like http://127.0.0.1:8080";
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{what} {url:?} is not a URL: {expected}"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{what} {url:?}: https is not supported; contend speaks plain HTTP/1.1, so use an http:// URL \
                 (put a TLS-terminating proxy in front of an https-only target)"
            ));
        }
        _ => {
            return Err(format!(
                "{what} {url:?}: only http:// URLs are supported, {expected}"
            ));
        }
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(format!(
            "{what} {url:?}: user names and passwords in URLs are not supported, {expected}"
        ));
    }
    if tail.contains('#') {
        return Err(format!(
            "{what} {url:?}: a fragment (#...) is never sent to a server; remove it"
        ));
    }
    let (host, port_text) = if let Some(inner) = authority.strip_prefix('[') {
        // An IPv6 literal: [::1]:8080.
        let Some((ip, after)) = inner.split_once(']') else {
            return Err(format!(
                "{what} {url:?}: unclosed '[' in the host, {expected}"
            ));
        };
        if ip.is_empty()
            || !ip
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("{what} {url:?}: {ip:?} is not an IPv6 address"));
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => {
                return Err(format!(
                    "{what} {url:?}: expected ':PORT' after the IPv6 address"
                ));
            }
        };
        (format!("[{}]", ip.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(format!("{what} {url:?} has no host, {expected}"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(format!(
                "{what} {url:?}: {host:?} is not a host name or IPv4 address"
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port: u16 = match port_text {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "{what} {url:?}: port {p:?} is not a number from 1 to 65535"
                ));
            }
        },
    };
    let path = match tail {
        "" | "/" => None,
        t if t.starts_with('?') => Some(format!("/{t}")),
        t => Some(t.to_string()),
    };
    if let Some(p) = &path {
        check_path(&format!("{what} path"), p)?;
    }
    Ok(HttpUrl {
        base: format!("http://{host}:{port}"),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        // (input, base, path)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080", None),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080", None),
            (
                "HTTP://LocalHost:80/a/b?c=d",
                "http://localhost:80",
                Some("/a/b?c=d"),
            ),
            (
                "http://example:9000?x=1",
                "http://example:9000",
                Some("/?x=1"),
            ),
            ("http://host", "http://host:80", None),
            ("http://[::1]:8080/p", "http://[::1]:8080", Some("/p")),
            ("http://[::1]", "http://[::1]:80", None),
        ];
        for (input, base, path) in cases {
            let got = parse_http_url("url", input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                got,
                HttpUrl {
                    base: base.to_string(),
                    path: path.map(str::to_string)
                },
                "{input}"
            );
        }
    }

    #[test]
    fn urls_refused() {
        let cases: &[(&str, &str)] = &[
            ("127.0.0.1:8080", "is not a URL"),
            ("https://h:1", "https is not supported"),
            ("ftp://h:1", "only http:// URLs"),
            ("http://:8080", "has no host"),
            ("http://h:0", "port \"0\""),
            ("http://h:70000", "port \"70000\""),
            ("http://h:x", "port \"x\""),
            ("http://u:p@h:1", "user names and passwords"),
            ("http://h:1/#frag", "fragment"),
            ("http://h:1/a b", "percent-encode"),
            ("http://[::1", "unclosed"),
            ("http://[zz]:1", "not an IPv6 address"),
            ("http://h_ost!:1", "not a host name"),
        ];
        for (input, want) in cases {
            let err = parse_http_url("url", input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}
