//! Opening one connection to the target: the TCP connect and, for an
//! `https://` target, the TLS handshake, each timed.
//!
//! Takes a [`Dialer`] (the address and the TLS client, if any); hands on a
//! [`Stream`] (plain TCP or TLS over it, one type for both HTTP versions)
//! and what opening it measured ([`Connected`]), or why it failed: the
//! connect (a `connect_error`) or the handshake (a `tls_error` with its
//! reason). It sends no HTTP: `http1` and `http2` do.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::tls::{ALPN_H2, ALPN_HTTP11, TlsClient, failure};
use crate::outcome::TlsFailure;
use crate::record::{Alpn, Connected, Handshake, TlsVersion};
use crate::sys;

/// Where and how a shard connects.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// The target's address.
    pub addr: SocketAddr,
    /// The TLS client, for an `https://` target.
    pub tls: Option<TlsClient>,
    /// Further addresses of the same target (gateway replicas): each new
    /// connection goes to the next address in turn, `addr` first.
    pub more: Arc<[SocketAddr]>,
    /// Connections opened so far, to pick the next address. Counted once
    /// per connection, not per request, and per shard (each has its own).
    pub turn: Arc<std::sync::atomic::AtomicUsize>,
}

impl Dialer {
    /// A dialer to `addr` alone.
    pub fn to(addr: SocketAddr, tls: Option<TlsClient>) -> Dialer {
        Dialer {
            addr,
            tls,
            more: Arc::from(Vec::new()),
            turn: Arc::default(),
        }
    }

    /// The number of addresses: `addr` and `more`.
    pub fn addresses(&self) -> usize {
        1 + self.more.len()
    }

    /// The address the next connection goes to, with its index (`addr` is 0).
    fn next_addr(&self) -> (usize, SocketAddr) {
        if self.more.is_empty() {
            return (0, self.addr);
        }
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match turn % (self.more.len() + 1) {
            0 => (0, self.addr),
            i => (i, self.more[i - 1]),
        }
    }
}

/// A connection that could not be opened: why, and the index of the
/// address it tried (its failure is charged there).
#[derive(Debug)]
pub struct OpenFailed {
    /// The address's index in the dialer's list.
    pub addr: usize,
    /// Why.
    pub error: OpenError,
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The TCP connect failed (refused, unreachable, out of descriptors or ports).
    Connect(io::Error),
    /// The TLS handshake failed, for this reason (and in rustls' words).
    Tls(TlsFailure, String),
}

/// An open connection: plain TCP, or TLS over it.
pub enum Stream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://` (boxed: rustls' state is large and this moves).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// True when an idle connection is still usable: the peer has neither
    /// closed it nor sent anything unasked. Costs no syscall while the
    /// socket is known not to be readable.
    pub fn is_reusable(&mut self) -> bool {
        match self {
            Stream::Plain(tcp) => {
                let mut probe = [0u8; 1];
                matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Stream::Tls(tls) => {
                // A poll that may not wait: pending means nothing to read
                // (a session ticket the server sent is consumed by rustls
                // and reads as nothing); anything else, data or the end,
                // means the connection is not idle any more.
                let mut cx = Context::from_waker(Waker::noop());
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                Pin::new(&mut **tls)
                    .poll_read(&mut cx, &mut buf)
                    .is_pending()
            }
        }
    }

    /// What ALPN agreed on (`None` in cleartext).
    pub fn alpn(&self) -> Option<Alpn> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => Some(alpn_of(tls.get_ref().1.alpn_protocol())),
        }
    }
}

fn alpn_of(protocol: Option<&[u8]>) -> Alpn {
    match protocol {
        Some(p) if p == ALPN_H2 => Alpn::H2,
        Some(p) if p == ALPN_HTTP11 => Alpn::Http11,
        _ => Alpn::None,
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// Connects to the dialer's next address and, over TLS, completes the
/// handshake; a failure names the address tried.
pub async fn open(dialer: &Dialer) -> Result<(Stream, Connected), OpenFailed> {
    let (addr, to) = dialer.next_addr();
    open_to(dialer, addr, to)
        .await
        .map_err(|error| OpenFailed { addr, error })
}

async fn open_to(
    dialer: &Dialer,
    addr: usize,
    to: SocketAddr,
) -> Result<(Stream, Connected), OpenError> {
    let start_ns = sys::monotonic_ns();
    let tcp = TcpStream::connect(to).await.map_err(OpenError::Connect)?;
    // Requests are small and latency is the measurement: no Nagle.
    tcp.set_nodelay(true).map_err(OpenError::Connect)?;
    let connected_ns = sys::monotonic_ns();
    let connect_ns = connected_ns - start_ns;
    let Some(tls) = &dialer.tls else {
        return Ok((
            Stream::Plain(tcp),
            Connected {
                connect_ns,
                tls: None,
                addr,
            },
        ));
    };
    let connector = TlsConnector::from(tls.config.clone());
    let offered_h2 = tls.config.alpn_protocols.iter().any(|p| p == ALPN_H2);
    let stream = connector
        .connect(tls.server_name.clone(), tcp)
        .await
        .map_err(|e| OpenError::Tls(failure(&e, offered_h2), e.to_string()))?;
    let handshake_ns = sys::monotonic_ns() - connected_ns;
    let session = stream.get_ref().1;
    let handshake = Handshake {
        handshake_ns,
        version: match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
            _ => TlsVersion::Tls13,
        },
        alpn: alpn_of(session.alpn_protocol()),
        resumed: session.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
    };
    Ok((
        Stream::Tls(Box::new(stream)),
        Connected {
            connect_ns,
            tls: Some(handshake),
            addr,
        },
    ))
}
