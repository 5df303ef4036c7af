//! A lean HTTP/1.1 client exchange for the driver: one request at a time on
//! a keep-alive connection the shard owns.
//!
//! Takes an open connection ([`Stream`]: TCP, or TLS over it) and a
//! request encoded once per key; writes it with one syscall (one TLS
//! record over TLS), reads the response into the connection's own buffer,
//! parses the head with `httparse` (hyper's parser) and skips the body by
//! length, chunks or close. It hands on the status and whether the
//! connection may be reused. Nothing is allocated per request. This replaces
//! hyper's client connection on the hot path only: hyper's dispatch costs a
//! task hop, two channels and a header map per request, which showed up as a
//! third of the driver's CPU; components and tests still use hyper.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn::Stream;

/// Most headers a response may have.
const MAX_HEADERS: usize = 64;
/// Largest response head accepted, bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest chunk-size or trailer line accepted, bytes.
const MAX_LINE_BYTES: usize = 4096;
/// Read buffer kept per connection.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Encodes a request once: request line, `host`, the given headers, and a
/// `content-length` when there is a body (or the method usually has one).
pub fn encode_request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Bytes {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// Why an exchange failed; every case is an `io_error` outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// The socket failed or closed before the response was complete.
    Io,
    /// The bytes are not a valid HTTP/1.x response.
    Protocol,
}

impl From<std::io::Error> for ExchangeError {
    fn from(_: std::io::Error) -> Self {
        ExchangeError::Io
    }
}

/// One keep-alive connection and its read buffer.
pub struct Connection {
    stream: Stream,
    buf: BytesMut,
    /// The last response's `Retry-After`, as a wait in ns.
    retry_after_ns: Option<u64>,
    /// The index of the address it went to (see `conn::Dialer`).
    addr: usize,
}

impl Connection {
    /// Wraps an open connection.
    pub fn new(stream: Stream) -> Connection {
        Connection {
            stream,
            buf: BytesMut::with_capacity(READ_BUFFER_BYTES),
            retry_after_ns: None,
            addr: 0,
        }
    }

    /// The same connection, known to go to address `addr` of the target's
    /// list (its requests are charged to it).
    pub fn to_address(self, addr: usize) -> Connection {
        Connection { addr, ..self }
    }

    /// The index of the address it goes to (0 unless set).
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// True when an idle connection is still usable: the peer has neither
    /// closed it nor sent anything unasked. Costs no syscall while the
    /// socket is known not to be readable.
    pub fn is_reusable(&mut self) -> bool {
        self.stream.is_reusable()
    }

    /// The wait the last response's `Retry-After` asked for, ns (seconds,
    /// or an HTTP-date read against the clock when it arrived).
    pub fn retry_after_ns(&self) -> Option<u64> {
        self.retry_after_ns
    }

    /// Sends `request` and reads one whole response. Returns the status and
    /// whether the connection may carry another request. `head` says the
    /// request was a HEAD (its response has no body).
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head: bool,
    ) -> Result<(u16, bool), ExchangeError> {
        self.stream.write_all(request).await?;
        if let Stream::Tls(_) = self.stream {
            // rustls may hold the last record until flushed.
            self.stream.flush().await?;
        }
        let mut parser = Parser::new(head);
        loop {
            if let Some(done) = parser.advance(&mut self.buf)? {
                self.retry_after_ns = parser.retry_after_ns;
                // Bytes past the response were never asked for: do not reuse.
                return Ok((done.status, done.keep_alive && self.buf.is_empty()));
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(READ_BUFFER_BYTES);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                self.retry_after_ns = parser.retry_after_ns;
                return parser.at_eof().map(|status| (status, false));
            }
        }
    }
}

/// A complete response.
#[derive(Debug, PartialEq, Eq)]
struct Done {
    status: u16,
    keep_alive: bool,
}

/// Where the parser is in the response.
#[derive(Debug)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

/// What one step of the parser made of the buffer.
#[derive(Debug)]
enum Progress {
    /// It moved to another state: parse on.
    Next,
    /// The buffer holds no more of the response: read more.
    Wait,
    /// The response is whole.
    Done,
}

/// What a response head says, read off the buffer without copying it.
#[derive(Debug)]
struct Head {
    /// Bytes the head takes, the blank line included.
    len: usize,
    status: u16,
    keep_alive: bool,
    length: Option<u64>,
    chunked: bool,
    /// `Retry-After`, as a wait in ns.
    retry_after_ns: Option<u64>,
}

impl Head {
    /// Parses the head at the start of `buf`: `None` while it is partial.
    /// Consumes nothing.
    fn parse(buf: &[u8]) -> Result<Option<Head>, ExchangeError> {
        // Left uninitialised: httparse writes only the headers it finds
        // (filling 64 empty ones first was half of this parse's time).
        let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut headers,
        ) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => return Ok(None),
            _ => return Err(ExchangeError::Protocol),
        };
        let mut head = Head {
            len,
            status: response.code.ok_or(ExchangeError::Protocol)?,
            keep_alive: response.version == Some(1),
            length: None,
            chunked: false,
            retry_after_ns: None,
        };
        for h in response.headers.iter() {
            head.read_header(h)?;
        }
        Ok(Some(head))
    }

    /// Notes what one header says about the body and the connection.
    fn read_header(&mut self, h: &httparse::Header) -> Result<(), ExchangeError> {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).map_err(|_| ExchangeError::Protocol)?;
            self.length = Some(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| ExchangeError::Protocol)?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            self.chunked = contains_token(h.value, b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                self.keep_alive = false;
            } else if contains_token(h.value, b"keep-alive") {
                self.keep_alive = true;
            }
        } else if h.name.eq_ignore_ascii_case("retry-after") {
            // Rare (a 429 or a 503): the wall clock is read only for a
            // response that has one.
            self.retry_after_ns =
                super::retry::parse_retry_after(h.value, std::time::SystemTime::now());
        }
        Ok(())
    }
}

/// An incremental response parser that consumes what it has read.
#[derive(Debug)]
struct Parser {
    head_request: bool,
    state: State,
    status: u16,
    keep_alive: bool,
    /// `Retry-After`, as a wait in ns.
    retry_after_ns: Option<u64>,
}

impl Parser {
    fn new(head_request: bool) -> Parser {
        Parser {
            head_request,
            state: State::Head,
            status: 0,
            keep_alive: false,
            retry_after_ns: None,
        }
    }

    /// Consumes what it can from `buf`; `Some` once the response is whole.
    fn advance(&mut self, buf: &mut BytesMut) -> Result<Option<Done>, ExchangeError> {
        loop {
            let progress = match &mut self.state {
                State::Head => self.read_head(buf)?,
                State::Length(remaining) => {
                    if skip(remaining, buf) {
                        Progress::Done
                    } else {
                        Progress::Wait
                    }
                }
                State::UntilClose => {
                    buf.clear();
                    Progress::Wait
                }
                State::Chunked(chunk) => chunk.advance(buf)?,
            };
            match progress {
                Progress::Next => {}
                Progress::Wait => return Ok(None),
                Progress::Done => return Ok(Some(self.done())),
            }
        }
    }

    /// The head: once it is whole, consumes it and picks how the body ends.
    fn read_head(&mut self, buf: &mut BytesMut) -> Result<Progress, ExchangeError> {
        let Some(head) = Head::parse(buf)? else {
            return Ok(Progress::Wait);
        };
        buf.advance(head.len);
        if (100..200).contains(&head.status) && head.status != 101 {
            // An interim response (100 Continue): the real one follows.
            return Ok(Progress::Next);
        }
        self.status = head.status;
        self.keep_alive = head.keep_alive;
        self.retry_after_ns = head.retry_after_ns;
        self.state = if self.head_request || head.status == 204 || head.status == 304 {
            State::Length(0)
        } else if head.chunked {
            State::Chunked(Chunk::Size)
        } else if let Some(n) = head.length {
            State::Length(n)
        } else {
            self.keep_alive = false;
            State::UntilClose
        };
        Ok(Progress::Next)
    }

    /// The peer closed: complete only for a close-delimited body.
    fn at_eof(&self) -> Result<u16, ExchangeError> {
        match self.state {
            State::UntilClose => Ok(self.status),
            _ => Err(ExchangeError::Io),
        }
    }

    fn done(&self) -> Done {
        Done {
            status: self.status,
            keep_alive: self.keep_alive,
        }
    }
}

impl Chunk {
    /// One step through a chunked body.
    fn advance(&mut self, buf: &mut BytesMut) -> Result<Progress, ExchangeError> {
        match self {
            Chunk::Size => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Progress::Wait);
                };
                let digits = line.split(|b| *b == b';').next().unwrap_or_default();
                let text = std::str::from_utf8(digits).map_err(|_| ExchangeError::Protocol)?;
                let size =
                    u64::from_str_radix(text.trim(), 16).map_err(|_| ExchangeError::Protocol)?;
                *self = if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(remaining) => {
                if !skip(remaining, buf) {
                    return Ok(Progress::Wait);
                }
                *self = Chunk::DataEnd;
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Progress::Wait);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(ExchangeError::Protocol);
                }
                buf.advance(2);
                *self = Chunk::Size;
            }
            Chunk::Trailer => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Progress::Wait);
                };
                if line.is_empty() {
                    return Ok(Progress::Done);
                }
            }
        }
        Ok(Progress::Next)
    }
}

/// Skips up to `remaining` body bytes off `buf`; true once none remain.
fn skip(remaining: &mut u64, buf: &mut BytesMut) -> bool {
    let take = (*remaining).min(buf.len() as u64);
    buf.advance(take as usize);
    *remaining -= take;
    *remaining == 0
}

/// Takes one CRLF-terminated line off `buf` (without the CRLF).
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, ExchangeError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = buf.split_to(end).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE_BYTES => Err(ExchangeError::Protocol),
        None => Ok(None),
    }
}

/// True when the comma-separated header value holds `token` (any case).
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `response` to a parser in pieces of `step` bytes.
    fn parse_in_steps(
        response: &[u8],
        step: usize,
        head: bool,
    ) -> Result<Option<Done>, ExchangeError> {
        let mut parser = Parser::new(head);
        let mut buf = BytesMut::new();
        for piece in response.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            if let Some(done) = parser.advance(&mut buf)? {
                assert!(buf.is_empty(), "left over: {:?}", buf);
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    #[test]
    fn responses_parse_whole_and_byte_by_byte() {
        let cases: &[(&[u8], bool, u16, bool)] = &[
            (b"HTTP/1.1 204 No Content\r\n\r\n", false, 204, true),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false, 200, true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", false, 200, false),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", false, 200, false),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok", false, 200, true),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n",
                false,
                200,
                true,
            ),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n", false, 503, true),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n", true, 200, true),
        ];
        for (response, head, status, keep_alive) in cases {
            for step in [1, 3, 7, response.len()] {
                let done = parse_in_steps(response, step, *head)
                    .unwrap()
                    .expect("complete");
                assert_eq!(
                    done,
                    Done {
                        status: *status,
                        keep_alive: *keep_alive
                    },
                    "{step}"
                );
            }
        }
    }

    #[test]
    fn incomplete_and_invalid_responses_are_told_apart() {
        assert_eq!(
            parse_in_steps(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhel", 4, false),
            Ok(None)
        );
        assert_eq!(
            parse_in_steps(b"SSH-2.0-OpenSSH_9.2\r\n", 4, false),
            Err(ExchangeError::Protocol)
        );
        assert_eq!(
            parse_in_steps(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", 64, false),
            Err(ExchangeError::Protocol)
        );
        assert_eq!(
            parse_in_steps(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                64,
                false
            ),
            Err(ExchangeError::Protocol)
        );
        // A body that runs to the close is complete only at EOF.
        let mut parser = Parser::new(false);
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n\r\npartial body"[..]);
        assert_eq!(parser.advance(&mut buf), Ok(None));
        assert_eq!(parser.at_eof(), Ok(200));
        let mut parser = Parser::new(false);
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nab"[..]);
        assert_eq!(parser.advance(&mut buf), Ok(None));
        assert_eq!(parser.at_eof(), Err(ExchangeError::Io));
    }

    #[test]
    fn requests_are_encoded_once_with_host_and_length() {
        let get = encode_request(
            "GET",
            "/a?b=1",
            "127.0.0.1:80",
            &[("x-api-key".into(), "ui".into())],
            b"",
        );
        assert_eq!(
            &get[..],
            b"GET /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:80\r\nx-api-key: ui\r\n\r\n"
        );
        let post = encode_request("POST", "/", "h:1", &[], b"{}");
        assert_eq!(
            &post[..],
            b"POST / HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\n\r\n{}"
        );
    }
}
