//! A tiny blocking HTTP/1.1 client for talking to components (health,
//! accounting), off the measured path; over TLS too, for a gateway the
//! harness started with a certificate of its own.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// How long one component request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `method path` on `addr`; returns the status and body.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, Bytes), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, async {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, addr.to_string())
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, body))
        })
        .await
        .map_err(|_| format!("no answer within {}s", TIMEOUT.as_secs()))?
    })
}

/// `GET path` on `addr` with a short deadline: its status (readiness probes).
pub fn request_within(addr: SocketAddr, path: &str, within: Duration) -> Result<u16, String> {
    let stream = std::net::TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    let mut stream = stream;
    use std::io::{Read, Write};
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "not HTTP".to_string())
}

/// `GET path` on `addr`, read as the JSON document `T` (the component's
/// own type, shared with the crate that writes it).
pub fn get_json<T: serde::de::DeserializeOwned>(addr: SocketAddr, path: &str) -> Result<T, String> {
    let (status, body) = request(addr, "GET", path)?;
    if status != 200 {
        return Err(format!("GET {path} answered {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not the expected document: {e}"))
}

/// `GET path` on `addr` over TLS, trusting only `ca_pem` (the CA the
/// harness made for the component), with a deadline: its status and body.
/// Blocking and with `connection: close`; for probes off the measured path.
pub fn get_tls_within(
    addr: SocketAddr,
    path: &str,
    within: Duration,
    ca_pem: &str,
) -> Result<(u16, Vec<u8>), String> {
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(within))
        .and_then(|()| tcp.set_write_timeout(Some(within)))
        .map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    // A server may close without close_notify; what was read still counts.
    if let Err(e) = stream.read_to_end(&mut response) {
        if response.is_empty() {
            return Err(e.to_string());
        }
    }
    let status = response
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "not HTTP".to_string())?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |at| at + 4);
    Ok((status, response[body_at..].to_vec()))
}
