//! A request's route: its method and path template, the query dropped and
//! the ids in its path collapsed (`GET /users/42/orders/9f3c...` is
//! `GET /users/{id}/orders/{hex}`), so that requests to one handler are
//! counted together.
//!
//! Takes a method and a path as logged; writes the template into a buffer
//! the caller keeps (nothing is allocated per line). A segment is an id
//! when it is a number, a UUID, a long hex string, a long token of letters
//! and digits, or mostly digits (`2024-01-31`); words (`v1`, `users`,
//! `healthz`) stay.

/// Longest template kept, bytes; a longer one is cut and marked `...`.
pub const MAX_ROUTE_BYTES: usize = 200;

/// Writes the route of `method` and `path` into `out` (cleared first).
pub fn template(method: &[u8], path: &[u8], out: &mut Vec<u8>) {
    out.clear();
    if !method.is_empty() && method != b"-" {
        out.extend_from_slice(method);
        out.push(b' ');
    }
    let path = match memchr::memchr2(b'?', b'#', path) {
        Some(q) => &path[..q],
        None => path,
    };
    if path.is_empty() {
        out.push(b'-');
        return;
    }
    for (i, segment) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        match id_kind(segment) {
            Some(kind) => out.extend_from_slice(kind),
            None => out.extend_from_slice(segment),
        }
        if out.len() > MAX_ROUTE_BYTES {
            out.truncate(MAX_ROUTE_BYTES);
            out.extend_from_slice(b"...");
            return;
        }
    }
}

/// What a path segment is collapsed to, or `None` when it is a word.
fn id_kind(s: &[u8]) -> Option<&'static [u8]> {
    if s.is_empty() {
        return None;
    }
    let digits = s.iter().filter(|b| b.is_ascii_digit()).count();
    if digits == s.len() {
        return Some(b"{id}");
    }
    if is_uuid(s) {
        return Some(b"{uuid}");
    }
    let hex = s.iter().all(u8::is_ascii_hexdigit);
    if hex && digits > 0 && (s.len() >= 16 || (s.len() >= 8 && digits < s.len())) {
        return Some(b"{hex}");
    }
    let token = s
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='));
    if token && s.len() >= 20 && digits > 0 {
        return Some(b"{token}");
    }
    if digits >= 3 && digits * 2 >= s.len() {
        return Some(b"{id}");
    }
    None
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_collapse_and_words_stay() {
        // (method, path, route)
        let cases = [
            ("GET", "/users/42", "GET /users/{id}"),
            ("GET", "/users/42/orders?page=2", "GET /users/{id}/orders"),
            (
                "DELETE",
                "/v1/items/3f2b8c1e-9d4a-4b6f-8e2a-1c2d3e4f5a6b",
                "DELETE /v1/items/{uuid}",
            ),
            ("GET", "/blobs/9f3ca81b22e04d17", "GET /blobs/{hex}"),
            ("GET", "/t/aZ3kQ9pL2mN8xV4bR7tY1", "GET /t/{token}"),
            ("GET", "/reports/2024-01-31", "GET /reports/{id}"),
            ("GET", "/v1/healthz", "GET /v1/healthz"),
            ("GET", "/deadbeef", "GET /deadbeef"),
            ("GET", "/", "GET /"),
            ("-", "-", "-"),
            ("", "/work?cpu_ms=1", "/work"),
            ("POST", "", "POST -"),
        ];
        let mut out = Vec::new();
        for (method, path, want) in cases {
            template(method.as_bytes(), path.as_bytes(), &mut out);
            assert_eq!(String::from_utf8_lossy(&out), want, "{method} {path}");
        }
        let long = format!("/{}", "word/".repeat(100));
        template(b"GET", long.as_bytes(), &mut out);
        assert_eq!(out.len(), MAX_ROUTE_BYTES + 3);
        assert!(out.ends_with(b"..."));
    }
}
