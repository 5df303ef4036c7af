//! The URLs of a scenario and its flags: `http://HOST:PORT` or
//! `https://HOST:PORT` with an optional path and query.
//!
//! Takes the URL text and the label it goes by; hands on the base
//! (`http://host:port` or `https://host:port`, lower case, port always
//! written) and the path, or a message that names what is wrong.

use super::check::{check_path, quoted};

/// A parsed `http://host:port/path?query` (or `https://`).
#[derive(Debug, PartialEq)]
pub(super) struct HttpUrl {
    /// `http://host:port` (or `https://`), scheme and host lower case,
    /// port always written (80 and 443 by default).
    pub(super) base: String,
    /// Path and query when the URL had more than `/`.
    pub(super) path: Option<String>,
}

/// Parses an HTTP URL; `what` labels the messages.
pub(super) fn parse_http_url(what: &str, url: &str) -> Result<HttpUrl, String> {
    let expected = "expected http://HOST:PORT or https://HOST:PORT, like http://127.0.0.1:8080";
    let url = url.trim();
    // What the messages echo: no password, and not all of a huge URL. When
    // something looked like a password, no part of the authority is echoed
    // on its own either (it may be a piece of the password).
    let masked = mask_userinfo(url);
    let shown = quoted(&masked);
    let part = |text: &str, otherwise: &str| {
        if masked == url {
            quoted(text)
        } else {
            otherwise.to_string()
        }
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{what} {shown} is not a URL: {expected}"));
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        _ => {
            return Err(format!(
                "{what} {shown}: only http:// and https:// URLs are supported, {expected}"
            ));
        }
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(format!(
            "{what} {shown}: user names and passwords in URLs are not supported, {expected}"
        ));
    }
    if tail.contains('#') {
        return Err(format!(
            "{what} {shown}: a fragment (#...) is never sent to a server; remove it"
        ));
    }
    let (host, port_text) = if let Some(inner) = authority.strip_prefix('[') {
        // An IPv6 literal: [::1]:8080.
        let Some((ip, after)) = inner.split_once(']') else {
            return Err(format!(
                "{what} {shown}: unclosed '[' in the host, {expected}"
            ));
        };
        if ip.is_empty()
            || !ip
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!(
                "{what} {shown}: {} is not an IPv6 address",
                part(ip, "the host")
            ));
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => {
                return Err(format!(
                    "{what} {shown}: expected ':PORT' after the IPv6 address"
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
            return Err(format!("{what} {shown} has no host, {expected}"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(format!(
                "{what} {shown}: {} is not a host name or IPv4 address",
                part(host, "the host")
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port: u16 = match port_text {
        None if scheme == "https" => 443,
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "{what} {shown}: port {} is not a number from 1 to 65535",
                    part(p, "(after the user information)")
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
        base: format!("{scheme}://{host}:{port}"),
        path,
    })
}

/// `url` with the user information before `@` masked: `http://user:***@host`,
/// or `http://***@host` for a lone token (a user name alone is often a
/// token), so no message repeats a secret. The user information is taken
/// to run up to the last `@` before the path, even past a `?` or `#`
/// (a password's unescaped `#` must not let it through).
pub(super) fn mask_userinfo(url: &str) -> String {
    let start = match url.find("://") {
        Some(i)
            if url[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            i + 3
        }
        _ => 0,
    };
    let path = url[start..].find('/').map_or(url.len(), |i| start + i);
    let Some(at) = url[start..path].rfind('@').map(|i| start + i) else {
        return url.to_string();
    };
    let masked = match url[start..at].split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{}{masked}{}", &url[..start], &url[at..])
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
            ("https://LocalHost", "https://localhost:443", None),
            ("HTTPS://h:8443/p", "https://h:8443", Some("/p")),
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
            ("ftp://h:1", "only http:// and https:// URLs"),
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

    #[test]
    fn no_message_repeats_a_password() {
        // (input, the URL as every message shows it)
        let cases: &[(&str, &str)] = &[
            ("http://user:s3cret@h:1/p", r#""http://user:***@h:1/p""#),
            ("https://user:s3cret@h:1", r#""https://user:***@h:1""#),
            ("ftp://user:s3cret@h", r#""ftp://user:***@h""#),
            ("http://s3cret@h:1", r#""http://***@h:1""#),
            ("http://user:s3#cret@h:1", r#""http://user:***@h:1""#),
            ("http://user:s3?cret@h:1", r#""http://user:***@h:1""#),
            ("user:s3cret@h:1", r#""user:***@h:1""#),
            ("http://u:a@b:s3cret@h:1", r#""http://u:***@h:1""#),
        ];
        for (input, shown) in cases {
            let err = parse_http_url("url", input).expect_err(input);
            assert!(!err.contains("s3"), "{input}: {err}");
            assert!(err.starts_with(&format!("url {shown}")), "{input}: {err}");
        }
        // A path's `@` is not user information.
        assert_eq!(mask_userinfo("http://h:1/a@b"), "http://h:1/a@b");
    }

    #[test]
    fn long_values_are_cut_short_with_their_length() {
        let path = format!("/{}", "a".repeat(100_000));
        let cases = [
            // (URL, the start of its message)
            (
                format!("http://h:x{path}"),
                format!(
                    "url \"http://h:x/{}\"... (100011 characters, the first 60 shown): port \"x\"",
                    "a".repeat(49)
                ),
            ),
            (
                format!("http://h:1{path} x"),
                format!(
                    "url path \"/{}\"... (100003 characters, the first 60 shown) holds ' '",
                    "a".repeat(59)
                ),
            ),
            (
                format!("http://{}:1", "h!".repeat(50_000)),
                format!(
                    "url \"http://{}\"... (100009 characters, the first 60 shown): \"{}\"... \
                     (100000 characters, the first 60 shown) is not a host name",
                    "h!".repeat(26) + "h",
                    "h!".repeat(30)
                ),
            ),
        ];
        for (url, start) in cases {
            let err = parse_http_url("url", &url).expect_err("refused");
            assert!(err.len() < 500, "{} bytes: {}", err.len(), &err[..300]);
            assert!(err.starts_with(&start), "{err}\nwant {start}");
        }
    }
}
