//! The request each arrival sends, encoded once per key: the HTTP/1.1
//! bytes written as they are, and the HTTP/2 head a stream clones.

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};

use super::{http1, request_log};
use crate::error::{Error, Result};
use crate::scenario::Scenario;

/// One request, encoded once and written as is by every arrival.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// The request's bytes on the wire (HTTP/1.1).
    pub bytes: Bytes,
    /// True for HEAD, whose response has no body.
    pub head: bool,
    /// Where each request's id goes in `bytes` (with `[client] request_ids`).
    pub id_at: Option<usize>,
    /// The same request for HTTP/2.
    pub h2: H2Request,
}

/// A request as an HTTP/2 stream sends it: its head (the pseudo-headers
/// come from its absolute URI) and its body.
#[derive(Debug, Clone)]
pub struct H2Request {
    /// Method, URI (scheme, authority, path) and headers.
    pub head: hyper::http::Request<()>,
    /// The body, shared by every request (empty: none).
    pub body: Bytes,
}

/// Encodes a scenario's request for one key, checked with hyper's rules so
/// that what goes on the wire is valid HTTP.
pub(super) struct Encoder<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) method: &'a Method,
    pub(super) authority: &'a str,
    pub(super) scheme: &'a str,
}

/// Headers HTTP/2 forbids (RFC 9113 8.2.2); `host` becomes the authority.
const NOT_IN_H2: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

impl Encoder<'_> {
    pub(super) fn template(
        &self,
        path: &str,
        extra: &[(String, String)],
        key: Option<&str>,
    ) -> Result<RequestTemplate> {
        let scenario = self.scenario;
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in scenario.request.headers.iter().chain(extra) {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::Usage(format!("header name {name:?}: {e}")))?;
            HeaderValue::from_str(value)
                .map_err(|e| Error::Usage(format!("header {name}: {e}")))?;
            // A key's header replaces the request's header of that name.
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        if let Some(key) = key {
            HeaderValue::from_str(key)
                .map_err(|e| Error::Usage(format!("key name {key:?}: {e}")))?;
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-api-key"));
            headers.push(("x-api-key".to_string(), key.to_string()));
        }
        if scenario.client.request_ids {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(request_log::ID_HEADER));
            headers.push((
                request_log::ID_HEADER.to_string(),
                request_log::ID_PLACEHOLDER.to_string(),
            ));
        }
        path.parse::<Uri>().map_err(|e| {
            Error::Usage(format!(
                "request path {}: {e}",
                crate::scenario::quoted(path)
            ))
        })?;
        let h2 = self.h2_request(path, &headers)?;
        if !scenario.client.reuse
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
        {
            // The server closes: its side keeps the TIME_WAIT, not the
            // driver's ephemeral ports, at thousands of connections a second.
            headers.push(("connection".to_string(), "close".to_string()));
        }
        let bytes = http1::encode_request(
            self.method.as_str(),
            path,
            self.authority,
            &headers,
            scenario.request.body.as_bytes(),
        );
        let id_at = if scenario.client.request_ids {
            request_log::placeholder_at(&bytes)
        } else {
            None
        };
        Ok(RequestTemplate {
            bytes,
            head: self.method == Method::HEAD,
            id_at,
            h2,
        })
    }

    /// The HTTP/2 form: an absolute URI (a `host` header, if given, is its
    /// authority) and the headers HTTP/2 allows; the id header is set per
    /// request, not here.
    fn h2_request(&self, path: &str, headers: &[(String, String)]) -> Result<H2Request> {
        let authority = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map_or(self.authority, |(_, v)| v.as_str());
        let mut builder = hyper::http::Request::builder()
            .method(self.method.clone())
            .uri(format!("{}://{authority}{path}", self.scheme));
        for (name, value) in headers {
            let forbidden = NOT_IN_H2.iter().any(|n| name.eq_ignore_ascii_case(n))
                || name.eq_ignore_ascii_case(request_log::ID_HEADER);
            if !forbidden {
                builder = builder.header(name.to_ascii_lowercase(), value.as_str());
            }
        }
        let head = builder
            .body(())
            .map_err(|e| Error::Usage(format!("the request cannot be sent over HTTP/2: {e}")))?;
        Ok(H2Request {
            head,
            body: Bytes::copy_from_slice(self.scenario.request.body.as_bytes()),
        })
    }
}
