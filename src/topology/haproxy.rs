//! HAProxy as the gateway under test: finding the binary, rendering the
//! template from `scenarios/haproxy/` with the run's ports, paths, threads
//! and policies, checking it with `haproxy -c`, and the component that runs
//! it, stopped with a soft stop (SIGUSR1) so that every request in flight
//! is finished and logged.
//!
//! Takes a validated [`GatewaySpec`]; hands on a running [`Haproxy`]. It
//! runs as one process (`-db`, no master-worker mode): its threads die with
//! it, so a killed HAProxy leaves nothing serving. Its access log is its
//! stdout, a file in its own folder, in the line shape
//! `analysis::haproxy_log` reads (HAProxy's times in ms, `-1` for a step
//! that never happened, and its termination state).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::child::ChildGuard;
use super::component::{AccessLog, Component, Gateway, GatewayInfo};
use super::program::{self, ms};
use super::workdir::WorkDir;
use super::{READY_TIMEOUT, http, open_log};
use crate::error::{Error, Result};
use crate::scenario::GatewaySpec;
use contend_gateway::AbortAccounting;

/// How long HAProxy may take to finish (and log) its requests in flight
/// after SIGUSR1; the template's `hard-stop-after` (10 s) cuts them first.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(12);

/// How long reading its runtime counters may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// The counters kept from `show stat`, per row (`backend`: the upstream
/// backend's totals, `server`: its one server, `frontend`): the most in
/// its queue and in flight at once, its limit, the requests it took, the
/// transfers the client or the server aborted, the requests a rule denied,
/// its 5xx.
const COUNTERS: [(&str, &[&str]); 3] = [
    (
        "frontend",
        &["smax", "stot", "dreq", "hrsp_4xx", "hrsp_5xx"],
    ),
    (
        "backend",
        &["qmax", "smax", "stot", "cli_abrt", "srv_abrt", "hrsp_5xx"],
    ),
    (
        "server",
        &["qmax", "smax", "slim", "stot", "cli_abrt", "srv_abrt"],
    ),
];

/// What the component is called in messages.
const NAME: &str = "haproxy";

/// A running HAProxy.
pub struct Haproxy {
    info: GatewayInfo,
    child: ChildGuard,
    // Dropped after `child`: the folder goes once HAProxy has.
    dir: WorkDir,
}

/// HAProxy from the template, in a folder of its own, on a port picked
/// now, proxying to `upstream_url`.
pub fn start(spec: &GatewaySpec, upstream_url: &str) -> Result<Haproxy> {
    let binary = find()?;
    let template = program::template(spec.template.as_deref(), EMBEDDED_TEMPLATE)?;
    let dir = WorkDir::new("haproxy")?;
    let listen = program::free_port(NAME)?;
    let upstream = upstream_url.trim_start_matches("http://");
    let text = render(&template, spec, listen, upstream, dir.path());
    let conf = dir.path().join("haproxy.cfg");
    std::fs::write(&conf, &text).map_err(|e| Error::io(&conf, e))?;
    check_config(&binary, &conf, &text, spec.template.as_deref())?;
    let log_path = dir.path().join("access.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let child = ChildGuard::spawn_polled_to(
        NAME,
        &binary,
        &args(&conf),
        log,
        listen,
        READY_TIMEOUT,
        || {
            http::request_within(listen, "/healthz", Duration::from_millis(200))
                .is_ok_and(|status| status == 200)
        },
    )
    .map_err(|e| explain_bind_failure(e, listen))?;
    Ok(Haproxy {
        info: GatewayInfo {
            kind: "haproxy",
            version: version(&binary),
            addr: listen,
            abort_accounting: spec.abort_accounting.as_str(),
            config: text,
        },
        child,
        dir,
    })
}

impl Component for Haproxy {
    fn child(&self) -> &ChildGuard {
        &self.child
    }

    fn child_mut(&mut self) -> &mut ChildGuard {
        &mut self.child
    }
}

impl Gateway for Haproxy {
    fn info(&self) -> GatewayInfo {
        self.info.clone()
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        std::os::unix::net::UnixStream::connect(self.dir.path().join("stats.sock"))
            .and_then(|mut socket| {
                use std::io::{Read, Write};
                socket.set_read_timeout(Some(STATS_TIMEOUT))?;
                socket.write_all(b"show stat\n")?;
                let mut text = String::new();
                socket.read_to_string(&mut text)?;
                Ok(text)
            })
            .map(|text| counters(&text))
            .unwrap_or_default()
    }

    fn finish(&mut self) -> Result<AccessLog> {
        // SIGUSR1, the soft stop: HAProxy stops listening, finishes (and
        // logs) the requests in flight, then exits.
        let stopped_cleanly = self.child.stop_with(libc::SIGUSR1, DRAIN_TIMEOUT);
        Ok(AccessLog {
            info: self.info(),
            stopped_cleanly,
            file: open_log(&self.dir.path().join("access.log"), NAME)?,
        })
    }
}

/// The counters of `COUNTERS` in `show stat`'s CSV (`# pxname,svname,
/// qcur,qmax,...`), named `ROW.FIELD`; an empty field is left out.
pub fn counters(csv: &str) -> BTreeMap<String, u64> {
    let mut lines = csv.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return BTreeMap::new();
    };
    let names: Vec<&str> = header.split(',').collect();
    let mut out = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let row = match (fields.first().copied(), fields.get(1).copied()) {
            (Some("gateway"), Some("FRONTEND")) => "frontend",
            (Some("upstream"), Some("BACKEND")) => "backend",
            (Some("upstream"), Some("upstream")) => "server",
            _ => continue,
        };
        let wanted = COUNTERS.iter().find(|(r, _)| *r == row).map(|(_, f)| *f);
        for (name, value) in names.iter().zip(&fields) {
            if wanted.is_some_and(|w| w.contains(name))
                && let Ok(v) = value.parse::<u64>()
            {
                out.insert(format!("{row}.{name}"), v);
            }
        }
    }
    out
}

/// The template shipped with contend.
pub const EMBEDDED_TEMPLATE: &str = include_str!("../../scenarios/haproxy/gateway.cfg");

/// Where HAProxy is looked for after the PATH (Debian installs it in
/// /usr/sbin, which is not on every user's PATH).
const FALLBACKS: [&str; 2] = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"];

/// The HAProxy binary, or an error that names the install and the alternative.
pub fn find() -> Result<PathBuf> {
    find_among(program::candidates(NAME, &FALLBACKS).into_iter())
}

/// The first of `candidates` that is a file, or the error [`find`] gives.
pub fn find_among(candidates: impl Iterator<Item = PathBuf>) -> Result<PathBuf> {
    program::first(
        candidates,
        NAME,
        "haproxy is not installed (not on the PATH, nor in /usr/sbin): install it with \
         `apt-get install haproxy`, or use the embedded gateway with [gateway] kind = \"reference\"",
    )
}

/// `haproxy/2.6.12-1+deb12u4`, from `haproxy -v`.
pub fn version(haproxy: &Path) -> String {
    program::version(haproxy, "-v", |text| {
        let first = text.lines().next()?;
        let v = first.strip_prefix("HAProxy version ")?.split(' ').next()?;
        Some(format!("haproxy/{v}"))
    })
}

/// `"0,2-3"` as its CPUs in order (`[0, 2, 3]`); `None` when unreadable.
fn cpu_list(cpus: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in cpus.split(',') {
        match part.trim().split_once('-') {
            Some((a, b)) => out.extend(a.trim().parse::<usize>().ok()?..=b.trim().parse().ok()?),
            None => out.push(part.trim().parse().ok()?),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The per-key rate limit: a stick table of `x-api-key`s counting requests
/// over a sliding period of `burst / rate` seconds, refusing (429) past
/// `burst` in it. That admits `rate` per second on average and `burst` at
/// once, as the reference gateway's GCRA does; unlike GCRA, HAProxy counts
/// the refused requests too, so a key that keeps sending over its rate
/// stays refused.
fn rate_limit(rate_per_s: f64, burst: u32) -> String {
    let period_ms = ((f64::from(burst) / rate_per_s) * 1000.0).round().max(1.0) as u64;
    let expire_s = (2 * period_ms / 1000).max(60);
    format!(
        "stick-table type string len 128 size 100k expire {expire_s}s store http_req_rate({period_ms}ms)\n    \
         http-request track-sc0 req.hdr(x-api-key)\n    \
         http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt {burst} }}"
    )
}

/// Renders `template` for a run: HAProxy listens on `listen`, proxies to
/// `upstream` (`host:port`), keeps its files in `prefix`.
pub fn render(
    template: &str,
    spec: &GatewaySpec,
    listen: SocketAddr,
    upstream: &str,
    prefix: &Path,
) -> String {
    let p = &spec.policies;
    let cpus = spec.cpus.as_deref().and_then(cpu_list);
    let (nbthread, cpu_map) = match &cpus {
        Some(list) => (
            list.len(),
            format!(
                "cpu-map auto:1/1-{} {}",
                list.len(),
                list.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        None => (1, String::new()),
    };
    // The concurrency limit: HAProxy's own `maxconn` on the server, a queue
    // of at most `queue` requests (none: refused at once), each waiting at
    // most `queue_timeout`.
    let (maxconn, queue_limit, timeout_queue) = match p.concurrency {
        Some(c) => (
            format!(" maxconn {}", c.max),
            format!(
                "http-request deny deny_status 503 if {{ srv_conn(upstream/upstream) ge {} }} {{ queue(upstream) ge {} }}",
                c.max, c.queue
            ),
            ms(c.queue_timeout),
        ),
        None => (String::new(), String::new(), "60s".to_string()),
    };
    let abortonclose = match spec.abort_accounting {
        AbortAccounting::Early => "option abortonclose",
        AbortAccounting::Complete => "no option abortonclose",
    };
    let values: [(&str, String); 11] = [
        ("prefix", prefix.display().to_string()),
        ("listen", listen.to_string()),
        ("upstream", upstream.to_string()),
        ("nbthread", nbthread.to_string()),
        ("cpu_map", cpu_map),
        (
            "timeout_server",
            p.upstream_timeout.map_or_else(|| "60s".to_string(), ms),
        ),
        ("timeout_queue", timeout_queue),
        ("abortonclose", abortonclose.to_string()),
        (
            "rate_limit",
            p.rate_limit
                .map(|r| rate_limit(r.rate_per_s, r.burst))
                .unwrap_or_default(),
        ),
        ("queue_limit", queue_limit),
        ("maxconn", maxconn),
    ];
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

/// Runs `haproxy -c` on the rendered config `conf` (text `text`) before
/// HAProxy starts: an error naming its complaint, the line it is about and
/// the fix, rather than a child that exits at once. `template` is the
/// scenario's `[gateway] template`, if it named one.
pub fn check_config(
    haproxy: &Path,
    conf: &Path,
    text: &str,
    template: Option<&Path>,
) -> Result<()> {
    let args = ["-c".to_string(), "-f".into(), conf.display().to_string()];
    program::check_config(NAME, haproxy, &args, |stderr| {
        config_check_failure(stderr, text, template)
    })
}

/// The line number in HAProxy's `[FILE:LINE]`, the first such in `text`.
fn line_number(text: &str) -> Option<usize> {
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        if let Some((_, n)) = after[..close].rsplit_once(':')
            && let Ok(n) = n.trim().parse::<usize>()
        {
            return Some(n);
        }
        rest = &after[close..];
    }
    None
}

/// The error for a failed `haproxy -c`: its first `[ALERT]`, the rendered
/// line it names (`[FILE:LINE]`), and the fix.
pub fn config_check_failure(stderr: &str, text: &str, template: Option<&Path>) -> Error {
    let complaint = stderr
        .lines()
        .find(|l| l.contains("[ALERT]"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .map(|l| {
            // Drop HAProxy's tag and pid: "[ALERT]    (28691) : config : ".
            let l = l.trim();
            let l = l.strip_prefix("[ALERT]").map_or(l, str::trim_start);
            let l = match l.strip_prefix('(').and_then(|r| r.split_once(") : ")) {
                Some((_, rest)) => rest,
                None => l,
            };
            l.strip_prefix("config : ").unwrap_or(l).to_string()
        })
        .unwrap_or_else(|| "haproxy -c failed and printed nothing".into());
    let at = program::rendered_line(text, line_number(&complaint));
    let fix = program::template_fix(
        template,
        "this HAProxy rejects the embedded template, which is written for HAProxy 2.6 or later: \
         install a current one (`apt-get install haproxy`), or use [gateway] kind = \"reference\"",
    );
    Error::Component {
        component: NAME.into(),
        message: format!("its config check (`haproxy -c`) failed: {complaint}{at}. Fix: {fix}"),
    }
}

/// A start failure whose stderr says a port was taken gets the fix:
/// HAProxy binds at start (`haproxy -c` does not), to the port contend
/// picked at `listen` and to any other `bind` a template names.
pub fn explain_bind_failure(error: Error, listen: SocketAddr) -> Error {
    program::explain_port_taken(error, listen, &format!("for [{listen}]"), "bind")
}

/// The command line: `-db -f CONF` (in the foreground, one process).
pub fn args(conf: &Path) -> Vec<String> {
    vec!["-db".into(), "-f".into(), conf.display().to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_told_apart_by_whose_port_it_is() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let failure = |port: u16| Error::Component {
            component: NAME.into(),
            message: format!(
                "exited before it was ready; its last stderr lines:\n  [ALERT]    (1) : Binding [/tmp/h/haproxy.cfg:42] \
                 for frontend gateway: cannot bind socket (Address already in use) for [127.0.0.1:{port}]"
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
    fn a_failed_config_check_names_the_line_and_the_fix() {
        let text = "global\ndefaults\nfrontend f\n    proxy_pass_everything on\n";
        let stderr = "[NOTICE]   (28691) : haproxy version is 2.6.12-1+deb12u4\n\
                      [ALERT]    (28691) : config : parsing [/tmp/h/haproxy.cfg:4] : unknown keyword 'proxy_pass_everything' in 'frontend' section\n\
                      [ALERT]    (28691) : config : Fatal errors found in configuration.\n";
        let custom = config_check_failure(stderr, text, Some(Path::new("my.cfg"))).to_string();
        assert!(
            custom.starts_with(
                "haproxy: its config check (`haproxy -c`) failed: parsing [/tmp/h/haproxy.cfg:4] : unknown keyword 'proxy_pass_everything'"
            ),
            "{custom}"
        );
        assert!(
            custom.contains("line 4 of the rendered config is `proxy_pass_everything on`"),
            "{custom}"
        );
        assert!(custom.contains("fix the template my.cfg"), "{custom}");
        let embedded = config_check_failure(stderr, text, None).to_string();
        assert!(embedded.contains("apt-get install haproxy"), "{embedded}");
        assert!(embedded.contains("kind = \"reference\""), "{embedded}");
        let silent = config_check_failure("", text, None).to_string();
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
        spec.policies.concurrency = Some(contend_gateway::ConcurrencyRule {
            max: 5,
            queue: 2,
            queue_timeout: Duration::from_millis(250),
            retry_after: None,
        });
        spec.abort_accounting = AbortAccounting::Early;
        spec.cpus = Some("0,2-3".into());
        let text = render(
            EMBEDDED_TEMPLATE,
            &spec,
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:9",
            Path::new("/tmp/h"),
        );
        assert!(!text.contains("{{"), "{text}");
        for want in [
            "bind 127.0.0.1:8080",
            "server upstream 127.0.0.1:9 maxconn 5",
            "if { srv_conn(upstream/upstream) ge 5 } { queue(upstream) ge 2 }",
            "timeout queue 250ms",
            "timeout server 1500ms",
            "\n    option abortonclose",
            "nbthread 3",
            "cpu-map auto:1/1-3 0 2 3",
            "store http_req_rate(6000ms)",
            "if { sc_http_req_rate(0) gt 3 }",
            "stats socket /tmp/h/stats.sock",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
        spec.abort_accounting = AbortAccounting::Complete;
        spec.cpus = None;
        spec.policies = contend_gateway::Policies::default();
        let plain = render(
            EMBEDDED_TEMPLATE,
            &spec,
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:9",
            Path::new("/tmp/h"),
        );
        for want in [
            "no option abortonclose",
            "nbthread 1",
            "timeout server 60s",
            "server upstream 127.0.0.1:9\n",
        ] {
            assert!(plain.contains(want), "{want} missing:\n{plain}");
        }
        assert!(!plain.contains("http_req_rate"), "{plain}");
    }

    #[test]
    fn show_stat_gives_the_queue_and_the_sessions() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,dreq,cli_abrt,srv_abrt,hrsp_4xx,hrsp_5xx,\n\
                   gateway,FRONTEND,,,0,7,9987,120,3,,,4,2,\n\
                   upstream,upstream,0,2,0,5,5,110,,9,0,,1,\n\
                   upstream,BACKEND,0,2,0,5,1000,115,0,9,0,0,1,\n\
                   stats,FRONTEND,,,1,1,100,1,0,,,0,0,\n";
        let c = counters(csv);
        assert_eq!(c.get("server.smax"), Some(&5));
        assert_eq!(c.get("server.slim"), Some(&5));
        assert_eq!(c.get("backend.qmax"), Some(&2));
        assert_eq!(c.get("backend.cli_abrt"), Some(&9));
        assert_eq!(c.get("frontend.dreq"), Some(&3));
        // Empty fields and other rows are left out.
        assert_eq!(c.get("frontend.qmax"), None);
        assert!(!c.keys().any(|k| k.starts_with("stats")), "{c:?}");
        assert!(counters("").is_empty());
    }

    #[test]
    fn cpu_lists_read_in_order() {
        assert_eq!(cpu_list("1"), Some(vec![1]));
        assert_eq!(cpu_list("0, 2-3"), Some(vec![0, 2, 3]));
        assert_eq!(cpu_list("x"), None);
    }
}
