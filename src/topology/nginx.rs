//! nginx as the gateway under test: finding the binary, rendering the
//! template from `scenarios/nginx/` with the run's ports, paths and
//! policies, checking it with `nginx -t`, and the component that runs it in
//! a temporary prefix, stopped gracefully (SIGQUIT) so that every request
//! in flight is finished and logged. With `[gateway] tls` it listens with
//! `ssl` on a certificate made for the run in its prefix (`http2` adds
//! `http2` to the `listen`).
//!
//! Takes a validated [`GatewaySpec`]; hands on a running [`Nginx`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cert::{self, LOOPBACK_NAMES};
use super::child::ChildGuard;
use super::component::{AccessLog, Component, Gateway, GatewayInfo};
use super::program::{self, ms};
use super::telemetry::{self, Metric};
use super::workdir::WorkDir;
use super::{READY_TIMEOUT, http, open_log};
use crate::error::{Error, Result};
use crate::scenario::GatewaySpec;
use contend_gateway::AbortAccounting;

/// How long nginx may take to finish (and log) its requests in flight
/// after SIGQUIT, its graceful stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running nginx.
pub struct Nginx {
    info: GatewayInfo,
    child: ChildGuard,
    /// The run's CA, when it listens with TLS.
    ca_pem: Option<String>,
    // Dropped after `child`: the prefix goes once nginx has.
    dir: WorkDir,
}

/// nginx from the template, in a temporary prefix, on a port picked now,
/// proxying to `upstream_url`.
pub fn start(spec: &GatewaySpec, upstream_url: &str) -> Result<Nginx> {
    let binary = find()?;
    let template = program::template(spec.template.as_deref(), EMBEDDED_TEMPLATE)?;
    if spec.tls && !template.contains("{{tls}}") {
        return Err(Error::Component {
            component: "nginx".into(),
            message: "[gateway] tls = true, but the template has no {{tls}} placeholder for the \
                      certificate lines: add {{tls}} inside its server block (see the embedded \
                      scenarios/nginx/gateway.conf)"
                .into(),
        });
    }
    let dir = WorkDir::new("nginx")?;
    // Where `render` points ssl_certificate and ssl_certificate_key.
    let certificate = if spec.tls {
        Some(cert::make(dir.path(), "", &LOOPBACK_NAMES)?)
    } else {
        None
    };
    let listen = program::free_port("nginx")?;
    let upstream = upstream_url.trim_start_matches("http://");
    let text = render(&template, spec, listen, upstream, dir.path());
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, &text).map_err(|e| Error::io(&conf, e))?;
    test_config(&binary, dir.path(), &conf, &text, spec.template.as_deref())?;
    let child = ChildGuard::spawn_polled(
        "nginx",
        &binary,
        &args(dir.path(), &conf),
        listen,
        READY_TIMEOUT,
        || {
            let within = Duration::from_millis(200);
            match &certificate {
                Some(c) => http::get_tls_within(listen, "/healthz", within, &c.ca_pem)
                    .is_ok_and(|(status, _)| status == 200),
                None => http::request_within(listen, "/healthz", within)
                    .is_ok_and(|status| status == 200),
            }
        },
    )
    .map_err(|e| explain_bind_failure(e, listen))?;
    Ok(Nginx {
        info: GatewayInfo {
            kind: "nginx",
            version: version(&binary),
            addr: listen,
            abort_accounting: spec.abort_accounting.as_str(),
            config: text,
        },
        child,
        ca_pem: certificate.map(|c| c.ca_pem),
        dir,
    })
}

impl Component for Nginx {
    fn child(&self) -> &ChildGuard {
        &self.child
    }

    fn child_mut(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    /// Its `stub_status` page, which the shipped template serves at
    /// [`STATUS_PATH`] (a template of one's own needs the same location).
    fn own_metrics(&self, within: Duration) -> Option<Result<Vec<Metric>, String>> {
        Some(
            match http::get_text_within(
                self.child.addr,
                STATUS_PATH,
                within,
                self.ca_pem.as_deref(),
            ) {
                Ok((200, text)) => telemetry::stub_status(&text),
                Ok((status, _)) => Err(format!(
                    "GET {STATUS_PATH} answered {status}: add `location = {STATUS_PATH} {{ stub_status; }}` \
                 to the nginx template for its connection gauges"
                )),
                Err(e) => Err(e),
            },
        )
    }
}

/// Where the template serves nginx's `stub_status` (connections active,
/// reading, writing, waiting; requests), read once per interval.
pub const STATUS_PATH: &str = "/nginx_status";

impl Gateway for Nginx {
    fn info(&self) -> GatewayInfo {
        self.info.clone()
    }

    fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    fn finish(&mut self) -> Result<AccessLog> {
        // SIGQUIT: nginx's graceful stop finishes (and logs) requests in flight.
        let stopped_cleanly = self.child.stop_with(libc::SIGQUIT, DRAIN_TIMEOUT);
        Ok(AccessLog {
            info: self.info(),
            stopped_cleanly,
            file: open_log(&self.dir.path().join("access.log"), "nginx")?,
        })
    }
}

/// The template shipped with contend.
pub const EMBEDDED_TEMPLATE: &str = include_str!("../../scenarios/nginx/gateway.conf");

/// Where nginx is looked for after the PATH (Debian installs it in /usr/sbin,
/// which is not on every user's PATH).
const FALLBACKS: [&str; 2] = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"];

/// The nginx binary, or an error that names the install and the alternative.
pub fn find() -> Result<PathBuf> {
    find_among(program::candidates("nginx", &FALLBACKS).into_iter())
}

/// The first of `candidates` that is a file, or the error [`find`] gives.
pub fn find_among(candidates: impl Iterator<Item = PathBuf>) -> Result<PathBuf> {
    program::first(
        candidates,
        "nginx",
        "nginx is not installed (not on the PATH, nor in /usr/sbin): install it with \
         `apt-get install nginx`, or use the embedded gateway with [gateway] kind = \"reference\"",
    )
}

/// `nginx/1.22.1`, from `nginx -v` (which writes to stderr).
pub fn version(nginx: &Path) -> String {
    program::version(nginx, "-v", |text| {
        let v = text.trim().strip_prefix("nginx version: ")?;
        Some(v.to_string())
    })
}

/// Renders `template` for a run: nginx listens on `listen`, proxies to
/// `upstream` (`host:port`), keeps its files in `prefix`.
pub fn render(
    template: &str,
    spec: &GatewaySpec,
    listen: SocketAddr,
    upstream: &str,
    prefix: &Path,
) -> String {
    let p = &spec.policies;
    let (limit_req_zone, limit_req) = match p.rate_limit {
        Some(r) => {
            // nginx takes whole requests per second or per minute.
            let rate = if r.rate_per_s >= 1.0 && r.rate_per_s.fract() == 0.0 {
                format!("{}r/s", r.rate_per_s)
            } else {
                format!("{}r/m", (r.rate_per_s * 60.0).round().max(1.0))
            };
            (
                format!("limit_req_zone $http_x_api_key zone=perkey:10m rate={rate};"),
                // nginx's burst counts the requests beyond the first.
                format!(
                    "limit_req zone=perkey burst={} nodelay;\n            limit_req_status 429;",
                    r.burst - 1
                ),
            )
        }
        None => (String::new(), String::new()),
    };
    let (limit_conn_zone, limit_conn) = match p.concurrency {
        Some(c) => (
            // The key must not be empty (nginx skips requests whose key is):
            // $server_name is, with no server_name; the listen address is not.
            "limit_conn_zone $server_addr zone=inflight:1m;".to_string(),
            format!(
                "limit_conn inflight {};\n            limit_conn_status 503;",
                c.max
            ),
        ),
        None => (String::new(), String::new()),
    };
    let affinity = match &spec.cpus {
        Some(cpus) => cpu_mask(cpus)
            .map(|m| format!("worker_cpu_affinity {m};"))
            .unwrap_or_default(),
        None => String::new(),
    };
    let ignore = match spec.abort_accounting {
        AbortAccounting::Early => "off",
        AbortAccounting::Complete => "on",
    };
    let prefix_text = prefix.display().to_string();
    let access_log = prefix.join("access.log").display().to_string();
    // nginx 1.22 takes `http2` on the listen line (1.25 also has `http2 on`).
    let listen_line = match (spec.tls, spec.http2) {
        (false, false) => listen.to_string(),
        (false, true) => format!("{listen} http2"),
        (true, false) => format!("{listen} ssl"),
        (true, true) => format!("{listen} ssl http2"),
    };
    let tls = if spec.tls {
        format!(
            "ssl_certificate {};\n        ssl_certificate_key {};\n        \
             ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_session_cache shared:contend:10m;\n        \
             ssl_session_tickets on;",
            prefix.join("cert.pem").display(),
            prefix.join("key.pem").display()
        )
    } else {
        String::new()
    };
    let values: [(&str, String); 12] = [
        ("prefix", prefix_text),
        ("listen", listen_line),
        ("tls", tls),
        ("upstream", upstream.to_string()),
        ("access_log", access_log),
        ("proxy_ignore_client_abort", ignore.to_string()),
        (
            "proxy_read_timeout",
            p.upstream_timeout.map_or_else(|| "60s".to_string(), ms),
        ),
        ("limit_req_zone", limit_req_zone),
        ("limit_req", limit_req),
        ("limit_conn_zone", limit_conn_zone),
        ("limit_conn", limit_conn),
        ("worker_cpu_affinity", affinity),
    ];
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

/// `"0,2"` as nginx's bit mask `0101` (lowest CPU rightmost); one worker
/// process, so one mask.
fn cpu_mask(cpus: &str) -> Option<String> {
    let mut bits = Vec::new();
    for part in cpus.split(',') {
        let (a, b) = match part.trim().split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.trim().parse::<usize>().ok()?;
                (n, n)
            }
        };
        bits.extend(a..=b);
    }
    let top = *bits.iter().max()?;
    Some(
        (0..=top)
            .rev()
            .map(|i| if bits.contains(&i) { '1' } else { '0' })
            .collect(),
    )
}

/// Runs `nginx -t` on the rendered config `conf` (text `text`) in `prefix`
/// before nginx starts: an error naming nginx's complaint, the line it is
/// about and the fix, rather than a child that exits at once. `template` is
/// the scenario's `[gateway] template`, if it named one.
pub fn test_config(
    nginx: &Path,
    prefix: &Path,
    conf: &Path,
    text: &str,
    template: Option<&Path>,
) -> Result<()> {
    let mut args = args(prefix, conf);
    args.insert(0, "-t".into());
    program::check_config("nginx", nginx, &args, |stderr| {
        config_test_failure(stderr, text, template)
    })
}

/// The error for a failed `nginx -t`: its `[emerg]` line, the rendered
/// line it names (`in FILE:LINE`), and the fix.
pub fn config_test_failure(stderr: &str, text: &str, template: Option<&Path>) -> Error {
    let complaint = stderr
        .lines()
        .find(|l| l.contains("[emerg]"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .map(|l| {
            // Drop nginx's timestamp and pid: "2026/11/23 10:43:20 [emerg] 1#1: ".
            let l = l.find("[emerg]").map_or(l, |at| &l[at..]);
            match l.find(": ") {
                Some(at) if l.starts_with("[emerg]") => format!("[emerg] {}", &l[at + 2..]),
                _ => l.to_string(),
            }
        })
        .unwrap_or_else(|| "nginx -t failed and printed nothing".into());
    let line = complaint
        .rsplit_once(':')
        .and_then(|(_, n)| n.trim().parse::<usize>().ok());
    let at = program::rendered_line(text, line);
    let fix = program::template_fix(
        template,
        "this nginx rejects the embedded template, so it may lack a module the template uses \
         (limit_req, limit_conn, proxy): install the full build (`apt-get install nginx`), or \
         use [gateway] kind = \"reference\"",
    );
    Error::Component {
        component: "nginx".into(),
        message: format!("its config test (`nginx -t`) failed: {complaint}{at}. Fix: {fix}"),
    }
}

/// A start failure whose stderr says a port was taken gets the fix: nginx
/// binds at start (`nginx -t` does not), to the port contend picked at
/// `listen` and to any other `listen` a template names.
pub fn explain_bind_failure(error: Error, listen: SocketAddr) -> Error {
    program::explain_port_taken(
        error,
        listen,
        &format!("bind() to {listen} failed"),
        "listen",
    )
}

/// The command line: `-p PREFIX -c CONF -e stderr -g 'daemon off;'`.
pub fn args(prefix: &Path, conf: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        prefix.display().to_string(),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        "stderr".into(),
        "-g".into(),
        "daemon off;".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_told_apart_by_whose_port_it_is() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let failure = |port: u16| Error::Component {
            component: "nginx".into(),
            message: format!(
                "exited before it was ready; its last stderr lines:\n  [emerg] bind() to 127.0.0.1:{port} \
                 failed (98: Address already in use)"
            ),
        };
        let ours = explain_bind_failure(failure(8080), listen).to_string();
        assert!(
            ours.ends_with("after contend picked it as free: run again"),
            "{ours}"
        );
        let template = explain_bind_failure(failure(9090), listen).to_string();
        assert!(
            template.ends_with("free that port or change it"),
            "{template}"
        );
        let other = explain_bind_failure(Error::Runtime("x".into()), listen).to_string();
        assert_eq!(other, "x");
    }

    #[test]
    fn a_failed_config_test_names_the_line_and_the_fix() {
        let text = "worker_processes 1;\nevents {}\nhttp { retrun 200; }\n";
        let stderr = "2026/11/23 10:43:20 [emerg] 20083#20083: unknown directive \"retrun\" in /tmp/p/nginx.conf:3\n\
                      nginx: configuration file /tmp/p/nginx.conf test failed\n";
        let custom = config_test_failure(stderr, text, Some(Path::new("my.conf"))).to_string();
        assert!(
            custom.starts_with(
                "nginx: its config test (`nginx -t`) failed: [emerg] unknown directive \"retrun\""
            ),
            "{custom}"
        );
        assert!(
            custom.contains("line 3 of the rendered config is `http { retrun 200; }`"),
            "{custom}"
        );
        assert!(custom.contains("fix the template my.conf"), "{custom}");
        let embedded = config_test_failure(stderr, text, None).to_string();
        assert!(embedded.contains("apt-get install nginx"), "{embedded}");
        assert!(embedded.contains("kind = \"reference\""), "{embedded}");
        // Nothing on stderr still makes an error that says so.
        let silent = config_test_failure("", text, None).to_string();
        assert!(silent.contains("printed nothing"), "{silent}");
    }

    #[test]
    fn the_template_renders_every_placeholder() {
        let mut spec = GatewaySpec::default();
        spec.policies.rate_limit = Some(contend_gateway::RateLimitRule {
            rate_per_s: 0.5,
            burst: 3,
        });
        spec.policies.upstream_timeout = Some(Duration::from_millis(1500));
        spec.abort_accounting = AbortAccounting::Complete;
        spec.cpus = Some("0,2".into());
        let text = render(
            EMBEDDED_TEMPLATE,
            &spec,
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:9",
            Path::new("/tmp/p"),
        );
        assert!(!text.contains("{{"), "{text}");
        for want in [
            "listen 127.0.0.1:8080;",
            "server 127.0.0.1:9;",
            "rate=30r/m;",
            "burst=2 nodelay;",
            "proxy_ignore_client_abort on;",
            "proxy_read_timeout 1500ms;",
            "worker_cpu_affinity 101;",
            "access_log /tmp/p/access.log contend;",
            "tls=$ssl_protocol proto=$server_protocol reused=$ssl_session_reused",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
        assert!(!text.contains("ssl_certificate"), "{text}");
        spec.tls = true;
        spec.http2 = true;
        let tls = render(
            EMBEDDED_TEMPLATE,
            &spec,
            "127.0.0.1:8443".parse().unwrap(),
            "127.0.0.1:9",
            Path::new("/tmp/p"),
        );
        for want in [
            "listen 127.0.0.1:8443 ssl http2;",
            "ssl_certificate /tmp/p/cert.pem;",
            "ssl_certificate_key /tmp/p/key.pem;",
        ] {
            assert!(tls.contains(want), "{want} missing:\n{tls}");
        }
    }
}
