//! HTTPS and HTTP/2 against loopback servers with certificates made for
//! the test: responses counted per status over TLS and over h2; a wrong
//! CA, a name mismatch, a plaintext server behind `https://` and an
//! HTTP/1.1-only server asked for h2 each counted with a clear message;
//! h2 servers that send GOAWAY or RST_STREAM, or allow one stream, keep
//! every arrival's single outcome; one handshake per connection opened;
//! and the embedded gateway and real nginx with TLS and HTTP/2.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use contend::driver::{self, DriverOutput, Plan};
use contend::outcome::{Class, TlsFailure};
use contend::scenario::{self, HttpVersion, Scenario};
use contend::shutdown::Stop;
use contend::topology::cert::{self, LOOPBACK_NAMES, RunCertificate};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::binary::{assert_exit, contend, run, summary, text};
use crate::util::{self, Server, assert_outcomes_add_up, component_present, overrides};

/// What a test server does with each connection.
#[derive(Clone, Copy)]
enum Serve {
    /// TLS (ALPN `h2` when `h2`), then HTTP/1.1 (or h2 too) with hyper,
    /// 204 to all; in cleartext when no certificate is given.
    Tls { h2: bool },
    /// Cleartext h2 (the `h2` crate's server), 200 after a short wait,
    /// with at most `streams` at once; `goaway_after`: GOAWAY once that
    /// many streams came on a connection; `reset_every`: RST_STREAM every
    /// n-th stream.
    H2c {
        streams: u32,
        goaway_after: Option<usize>,
        reset_every: Option<usize>,
    },
}

/// A server on its own runtime thread, stopped when dropped.
fn server(serve: Serve, certificate: Option<&RunCertificate>) -> Server {
    let acceptor = certificate.map(|c| {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert_path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&c.key_path).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = match serve {
            Serve::Tls { h2: true } => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            _ => vec![b"http/1.1".to_vec()],
        };
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    util::tokio_server(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            match (serve, acceptor) {
                (Serve::Tls { h2 }, Some(acceptor)) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve_hyper(TokioIo::new(tls), h2).await;
                    }
                }
                (Serve::Tls { h2 }, None) => serve_hyper(TokioIo::new(stream), h2).await,
                (
                    Serve::H2c {
                        streams,
                        goaway_after,
                        reset_every,
                    },
                    _,
                ) => serve_h2(stream, streams, goaway_after, reset_every).await,
            }
        }
    })
}

/// HTTP/1.1, and HTTP/2 too when `h2`.
async fn serve_hyper<I>(io: I, h2: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(
            Response::builder()
                .status(204)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if !h2 {
        builder = builder.http1_only();
    }
    let _ = builder.serve_connection(io, service).await;
}

async fn serve_h2(
    stream: tokio::net::TcpStream,
    streams: u32,
    goaway_after: Option<usize>,
    reset_every: Option<usize>,
) {
    let Ok(mut connection) = h2::server::Builder::new()
        .max_concurrent_streams(streams)
        .handshake::<_, Bytes>(stream)
        .await
    else {
        return;
    };
    let mut seen = 0;
    while let Some(Ok((_request, mut respond))) = connection.accept().await {
        seen += 1;
        if reset_every.is_some_and(|n| seen % n == 0) {
            respond.send_reset(h2::Reason::INTERNAL_ERROR);
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let response = hyper::http::Response::builder()
                    .status(200)
                    .body(())
                    .unwrap();
                let _ = respond.send_response(response, true);
            });
        }
        if goaway_after == Some(seen) {
            connection.graceful_shutdown();
        }
    }
}

/// A scenario of `rate_per_s` for `duration` against `url`, changed by `edit`.
fn scenario_for(
    url: &str,
    rate_per_s: f64,
    duration: Duration,
    edit: impl FnOnce(&mut Scenario),
) -> Scenario {
    let mut s = scenario::from_overrides(&overrides(url, rate_per_s, duration)).unwrap();
    s.client.timeout = Duration::from_secs(2);
    edit(&mut s);
    s
}

/// Runs the driver for `s` against `url`, trusting `ca` too.
fn drive(s: &Scenario, url: &str, ca: Option<&RunCertificate>) -> DriverOutput {
    let scenario::Experiment::Run(load) = s.experiment.clone() else {
        panic!("a run");
    };
    let plan = Plan::trusting(s, url, load, ca.map(|c| c.ca_pem.as_bytes())).expect("plan");
    let out = driver::run(&plan, Stop::never().receiver(), &mut |_| {}).expect("driver runs");
    assert_outcomes_add_up(&out);
    out
}

fn count(out: &DriverOutput, class: Class) -> u64 {
    out.totals.counts.class(class)
}

fn tls_errors(out: &DriverOutput, reason: TlsFailure) -> u64 {
    out.totals.connections.tls_errors[reason.index()]
}

fn certificate(dir: &Path, prefix: &str, names: &[&str]) -> RunCertificate {
    cert::make(dir, prefix, names).unwrap()
}

#[test]
fn https_and_h2_responses_are_counted_per_status_with_the_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let cert = certificate(dir.path(), "", &LOOPBACK_NAMES);
    let tls = server(Serve::Tls { h2: true }, Some(&cert));
    let url = format!("https://{}/", tls.addr);
    for http in [HttpVersion::Http1, HttpVersion::Http2, HttpVersion::Auto] {
        let s = scenario_for(&url, 200.0, Duration::from_millis(500), |s| {
            s.client.http = http;
        });
        let out = drive(&s, &url, Some(&cert));
        let t = &out.totals;
        assert_eq!(
            t.counts.statuses().collect::<Vec<_>>(),
            vec![(204, t.arrivals)],
            "{http:?}"
        );
        let c = &t.connections;
        assert!(c.opened >= 1, "{http:?}");
        // One handshake per connection opened, each over TLS 1.3.
        assert_eq!(c.tls_handshake_us.len(), c.opened, "{http:?}");
        assert_eq!(c.tls13, c.opened, "{http:?}");
        let want_h2 = http != HttpVersion::Http1;
        assert_eq!(out.protocol == driver::Protocol::Http2, want_h2, "{http:?}");
        assert_eq!(if want_h2 { c.alpn_h2 } else { c.alpn_http11 }, c.opened);
    }
}

#[test]
fn one_handshake_per_connection_opened_with_and_without_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let cert = certificate(dir.path(), "", &LOOPBACK_NAMES);
    let tls = server(Serve::Tls { h2: false }, Some(&cert));
    let url = format!("https://{}/", tls.addr);
    let storm = scenario_for(&url, 300.0, Duration::from_millis(500), |s| {
        s.client.reuse = false;
    });
    let out = drive(&storm, &url, Some(&cert));
    let c = &out.totals.connections;
    let answered = count(&out, Class::Success);
    assert!(answered > 0);
    // A new connection, and so a full or resumed handshake, per request.
    assert_eq!(c.opened, out.totals.sent, "{c:?}");
    assert_eq!(c.tls_handshake_us.len(), c.opened);
    assert!(c.resumed > 0, "sessions are resumed by default: {c:?}");
    let interval_opened: u64 = out.intervals.iter().map(|r| r.new_connections).sum();
    assert_eq!(interval_opened, c.opened, "the intervals count them too");
    let full = scenario_for(&url, 100.0, Duration::from_millis(300), |s| {
        s.client.reuse = false;
        s.client.tls.resumption = false;
    });
    let out = drive(&full, &url, Some(&cert));
    assert_eq!(out.totals.connections.resumed, 0);
}

#[test]
fn a_wrong_ca_a_name_mismatch_and_a_plaintext_server_are_tls_errors_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = certificate(dir.path(), "trusted", &LOOPBACK_NAMES);
    let stranger = certificate(dir.path(), "stranger", &LOOPBACK_NAMES);
    let misnamed = certificate(dir.path(), "misnamed", &["wrong.example"]);
    let cases = [
        (Some(&stranger), TlsFailure::UnknownCa),
        (Some(&misnamed), TlsFailure::NameMismatch),
        (None, TlsFailure::Protocol),
    ];
    for (served, reason) in cases {
        let srv = server(Serve::Tls { h2: false }, served);
        let url = format!("https://{}/", srv.addr);
        // The stranger's CA is not trusted; the misnamed one's is, by file.
        let s = scenario_for(&url, 100.0, Duration::from_millis(300), |s| {
            if served.is_some_and(|c| c.ca_path == misnamed.ca_path) {
                s.client.tls.ca = Some(misnamed.ca_path.clone());
            }
        });
        let out = drive(&s, &url, Some(&trusted));
        assert_eq!(
            count(&out, Class::TlsError),
            out.totals.arrivals,
            "{reason:?}: {:?} {:?}",
            out.totals.counts,
            out.totals.first_handshake_error
        );
        assert_eq!(
            tls_errors(&out, reason),
            out.totals.arrivals,
            "{reason:?}: {:?} {:?}",
            out.totals.connections.tls_errors,
            out.totals.first_handshake_error
        );
        assert_eq!(out.totals.sent, 0);
        assert!(out.totals.first_handshake_error.is_some());
    }
    // Accepting any certificate gets through to the stranger.
    let srv = server(Serve::Tls { h2: false }, Some(&stranger));
    let url = format!("https://{}/", srv.addr);
    let s = scenario_for(&url, 100.0, Duration::from_millis(300), |s| {
        s.client.tls.insecure = true;
    });
    let out = drive(&s, &url, None);
    assert_eq!(count(&out, Class::Success), out.totals.arrivals);
}

#[test]
fn an_http1_only_server_asked_for_h2_is_counted_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cert = certificate(dir.path(), "", &LOOPBACK_NAMES);
    // Over TLS: ALPN offers h2 only, the server agrees to none of it.
    let tls = server(Serve::Tls { h2: false }, Some(&cert));
    let url = format!("https://{}/", tls.addr);
    let s = scenario_for(&url, 100.0, Duration::from_millis(300), |s| {
        s.client.http = HttpVersion::Http2;
    });
    let out = drive(&s, &url, Some(&cert));
    assert_eq!(
        tls_errors(&out, TlsFailure::NoH2),
        out.totals.arrivals,
        "{:?} {:?}",
        out.totals.counts,
        out.totals.first_handshake_error
    );
    // In cleartext: the h2c preface meets an HTTP/1.1 server.
    let plain = server(Serve::Tls { h2: false }, None);
    let url = format!("http://{}/", plain.addr);
    let s = scenario_for(&url, 100.0, Duration::from_millis(300), |s| {
        s.client.http = HttpVersion::Http2;
    });
    let out = drive(&s, &url, None);
    assert_eq!(count(&out, Class::IoError), out.totals.arrivals);
    let said = out.totals.first_handshake_error.clone().unwrap_or_default();
    assert!(said.contains("HTTP/2 connection preface failed"), "{said}");
}

#[test]
fn h2_servers_that_goaway_reset_or_allow_one_stream_keep_one_outcome_per_arrival() {
    let h2c = |streams, goaway_after, reset_every| {
        server(
            Serve::H2c {
                streams,
                goaway_after,
                reset_every,
            },
            None,
        )
    };
    let run = |srv: &Server| {
        let url = format!("http://{}/", srv.addr);
        let s = scenario_for(&url, 400.0, Duration::from_millis(500), |s| {
            s.client.http = HttpVersion::Http2;
        });
        drive(&s, &url, None)
    };
    // GOAWAY after 20 streams a connection: the unprocessed ones go again.
    let out = run(&h2c(100, Some(20), None));
    assert_eq!(
        count(&out, Class::Success),
        out.totals.arrivals,
        "{:?}",
        out.totals.counts
    );
    assert!(
        out.totals.connections.opened >= 5,
        "{:?}",
        out.totals.connections
    );
    // RST_STREAM every 5th stream: an io_error each, the rest answered.
    let out = run(&h2c(100, None, Some(5)));
    let reset = count(&out, Class::IoError);
    assert!(
        reset > 0 && count(&out, Class::Success) > 0,
        "{:?}",
        out.totals.counts
    );
    assert_eq!(reset + count(&out, Class::Success), out.totals.arrivals);
    // One stream a connection: more connections, every arrival answered.
    let out = run(&h2c(1, None, None));
    assert_eq!(
        count(&out, Class::Success),
        out.totals.arrivals,
        "{:?}",
        out.totals.counts
    );
    assert!(
        out.totals.connections.opened >= 2,
        "{:?}",
        out.totals.connections
    );
}

#[test]
fn tls_failures_and_insecure_are_said_on_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let stranger = certificate(dir.path(), "", &LOOPBACK_NAMES);
    let srv = server(Serve::Tls { h2: false }, Some(&stranger));
    let url = format!("https://{}/", srv.addr);
    let report = dir.path().join("report");
    let base = |cmd: &mut std::process::Command| {
        cmd.args(["run", "--target", &url, "--rate", "100", "--duration", "1s"])
            .args(["--timeout", "2s", "--no-progress", "--force", "--out"])
            .arg(&report);
    };
    let mut cmd = contend();
    base(&mut cmd);
    let out = run(&mut cmd);
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("tls_error 100 (unknown_ca)"), "{stdout}");
    assert!(stdout.contains("tls.ca"), "{stdout}");
    let s = summary(&report);
    assert_eq!(s["outcomes"]["tls_error"], 100);
    assert_eq!(s["connections"]["tls_errors"]["unknown_ca"], 100);
    let mut cmd = contend();
    base(&mut cmd);
    let out = run(cmd.arg("--insecure"));
    assert_exit(&out, 0);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("tls.insecure"), "{all}");
    let s = summary(&report);
    assert_eq!(s["outcomes"]["classes"]["2xx"], 100);
    assert_eq!(
        s["connections"]["tls_versions"]["TLSv1.3"],
        s["connections"]["opened"]
    );
}

/// Runs the binary on `toml` (a scenario) with its report in `dir`.
fn run_scenario(dir: &Path, toml: &str) -> serde_json::Value {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, toml).unwrap();
    let report = dir.join("report");
    let out = run(contend()
        .arg("run")
        .arg(&file)
        .args(["--no-progress", "--force", "--out"])
        .arg(&report));
    assert_exit(&out, 0);
    summary(&report)
}

const GATEWAY_TLS: &str = r#"
[[phases]]
rate = "200"
duration = "1s"

[upstream]
kind = "mock"
cpu = "0us"

[client]
timeout = "2s"
"#;

#[test]
fn the_embedded_gateway_speaks_tls_and_h2_on_a_certificate_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{GATEWAY_TLS}http = \"2\"\n\n[gateway]\nkind = \"reference\"\ntls = true\nhttp2 = true\n"
    );
    let s = run_scenario(dir.path(), &toml);
    assert!(
        s["target"].as_str().unwrap().starts_with("https://"),
        "{s:#}"
    );
    assert_eq!(s["outcomes"]["responses"]["200"], s["arrivals"]);
    assert_eq!(s["connections"]["http"], "HTTP/2");
    assert_eq!(s["connections"]["alpn"]["h2"], s["connections"]["opened"]);
    assert_eq!(s["tls_handshake_us"]["count"], s["connections"]["opened"]);
}

#[test]
fn nginx_with_tls_and_http2_is_driven_and_says_what_it_negotiated() {
    if !component_present(
        "nginx_with_tls_and_http2_is_driven_and_says_what_it_negotiated",
        contend::topology::nginx::find(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (http, proto) in [("2", "HTTP/2.0"), ("1.1", "HTTP/1.1")] {
        let toml = format!(
            "{GATEWAY_TLS}http = \"{http}\"\n\n[gateway]\nkind = \"nginx\"\ntls = true\nhttp2 = true\n"
        );
        let s = run_scenario(dir.path(), &toml);
        assert_eq!(
            s["outcomes"]["responses"]["200"], s["arrivals"],
            "{http}: {s:#}"
        );
        let negotiated = &s["gateway_accounting"]["negotiated"];
        assert_eq!(
            negotiated[format!("TLSv1.3 {proto}")],
            s["arrivals"],
            "{http}: {negotiated}"
        );
    }
    // A new connection per request: nginx sees resumed sessions, and the
    // handshake histogram holds one value per connection.
    let toml = format!("{GATEWAY_TLS}reuse = false\n\n[gateway]\nkind = \"nginx\"\ntls = true\n");
    let s = run_scenario(dir.path(), &toml);
    assert_eq!(s["connections"]["opened"], s["sent"]);
    assert_eq!(s["tls_handshake_us"]["count"], s["connections"]["opened"]);
    assert!(
        s["gateway_accounting"]["tls_sessions_reused"].as_u64() > Some(0),
        "{s:#}"
    );
}
