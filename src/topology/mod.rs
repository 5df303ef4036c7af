//! Starting and stopping the components a run drives, in order: the
//! upstream (the embedded mock, or a URL), then the gateway in front of it
//! (the reference gateway, nginx, an external one, or none).
//!
//! Takes a scenario's target and gateway; hands back a running [`Topology`]
//! with the URL the driver sends to, and after the run the gateway's access
//! log read into per-key accounting. Every child process is held by a [`ChildGuard`]
//! that stops it (by its PID) when dropped, on every path out, and is kept
//! in a registry that the second Ctrl-C empties before exiting. Children
//! also get SIGTERM from the kernel if `contend` itself dies.

mod child;
pub mod http;
pub mod nginx;

pub use child::{ChildExit, ChildGuard, stop_all_children};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::scenario::{GatewayKind, GatewaySpec, MockUpstreamSpec, Target};

/// How long a component may take to print its address.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The running components of one run.
pub struct Topology {
    /// Base URL the driver sends to (`http://host:port`).
    pub url: String,
    /// The embedded mock upstream, when the scenario uses it.
    pub upstream: Option<ChildGuard>,
    /// The gateway the harness started, when there is one.
    pub gateway: Option<Gateway>,
}

/// A gateway started by the harness, with the folder holding its config and
/// access log (removed when this drops, after the child has stopped).
pub struct Gateway {
    /// `reference` or `nginx`.
    pub kind: &'static str,
    /// `contend 0.1.0` or `nginx/1.22.1`.
    pub version: String,
    /// The config it was started with (TOML, or nginx.conf).
    pub config_text: String,
    /// Its abort accounting (`early`/`complete`).
    pub abort_accounting: contend_gateway::AbortAccounting,
    /// The running process.
    pub child: ChildGuard,
    access_log: PathBuf,
    _dir: TempDir,
}

/// A folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("contend-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How long the gateway may take to finish its requests in flight after the run.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Topology {
    /// Starts what `target` needs. `exe` is the `contend` binary, which
    /// runs the mock upstream as `contend upstream ...`.
    pub fn start(target: &Target, exe: &Path) -> Result<Topology> {
        Self::start_with_gateway(target, &GatewaySpec::default(), exe)
    }

    /// Starts the upstream `target` needs, then `gateway` in front of it.
    /// Whatever started is stopped again if a later step fails.
    pub fn start_with_gateway(
        target: &Target,
        gateway: &GatewaySpec,
        exe: &Path,
    ) -> Result<Topology> {
        if gateway.kind == GatewayKind::External {
            // It has its own upstream; the driver sends to it.
            let url = gateway.url.clone().unwrap_or_default();
            return Ok(Topology {
                url,
                upstream: None,
                gateway: None,
            });
        }
        let (upstream_url, upstream) = match target {
            Target::Url(url) => (url.clone(), None),
            Target::Mock(spec) => {
                let guard =
                    ChildGuard::spawn("mock upstream", exe, &mock_args(spec), READY_TIMEOUT)?;
                (format!("http://{}", guard.addr), Some(guard))
            }
        };
        let gateway = match gateway.kind {
            GatewayKind::None | GatewayKind::External => None,
            GatewayKind::Reference => Some(start_reference(gateway, &upstream_url, exe)?),
            GatewayKind::Nginx => Some(start_nginx(gateway, &upstream_url)?),
        };
        let url = gateway
            .as_ref()
            .map_or(upstream_url, |g| format!("http://{}", g.child.addr));
        Ok(Topology {
            url,
            upstream,
            gateway,
        })
    }

    /// After the run: lets the gateway finish what is in flight, stops it
    /// (so every line is written), and reads its access log into per-key
    /// accounting (JSON, see [`contend_gateway::access_log::LogAccounting`]).
    /// `None` when the harness started no gateway.
    pub fn gateway_accounting(&mut self) -> Option<Result<serde_json::Value>> {
        let gateway = self.gateway.as_mut()?;
        let component = |message: String| Error::Component {
            component: gateway_name(gateway.kind),
            message,
        };
        let stopped = match gateway.kind {
            "reference" => {
                // Nothing signals the end of the last request: poll the gateway's
                // own gauge until it reads 0, up to the deadline.
                let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
                while std::time::Instant::now() < deadline {
                    match http::request(gateway.child.addr, "GET", "/metrics") {
                        Ok((_, body))
                            if String::from_utf8_lossy(&body)
                                .contains("contend_gateway_upstream_in_flight 0\n") =>
                        {
                            break;
                        }
                        Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                        Err(_) => break,
                    }
                }
                // SIGTERM: it stops accepting and flushes its log before exiting.
                gateway
                    .child
                    .stop_with(libc::SIGTERM, Duration::from_secs(3))
            }
            // SIGQUIT: nginx's graceful stop finishes (and logs) requests in flight.
            _ => gateway.child.stop_with(libc::SIGQUIT, DRAIN_TIMEOUT),
        };
        let text = match std::fs::read_to_string(&gateway.access_log) {
            Ok(text) => text,
            Err(e) => {
                return Some(Err(component(format!(
                    "could not read its access log: {e}"
                ))));
            }
        };
        let accounting = contend_gateway::access_log::account(&text);
        let mut value = serde_json::json!({
            "kind": gateway.kind,
            "version": gateway.version,
            "addr": gateway.child.addr.to_string(),
            "abort_accounting": gateway.abort_accounting.as_str(),
            "stopped_cleanly": stopped,
            "config": gateway.config_text,
        });
        if let (Some(map), Ok(serde_json::Value::Object(acc))) =
            (value.as_object_mut(), serde_json::to_value(&accounting))
        {
            map.extend(acc);
        }
        Some(Ok(value))
    }

    /// The mock upstream's ground-truth accounting (`GET /accounting`), when
    /// the upstream is the mock.
    pub fn upstream_accounting(&self) -> Option<Result<serde_json::Value>> {
        let upstream = self.upstream.as_ref()?;
        Some(
            http::get_json(upstream.addr, "/accounting").map_err(|e| Error::Component {
                component: "mock upstream".into(),
                message: format!("could not read /accounting: {e}"),
            }),
        )
    }
}

fn gateway_name(kind: &str) -> String {
    if kind == "nginx" {
        "nginx".into()
    } else {
        "reference gateway".into()
    }
}

/// `contend gateway --config FILE` in a temporary folder that also holds its access log.
fn start_reference(spec: &GatewaySpec, upstream_url: &str, exe: &Path) -> Result<Gateway> {
    let dir = TempDir::new("gateway")?;
    let access_log = dir.0.join("access.log");
    let mut text = format!(
        "upstream = {upstream_url:?}\nabort_accounting = {:?}\naccess_log = {:?}\n",
        spec.abort_accounting.as_str(),
        access_log.display().to_string()
    );
    if let Some(charge) = spec.abort_charge {
        text.push_str(&format!("abort_charge = \"{}ns\"\n", charge.as_nanos()));
    }
    if let Some(cpus) = &spec.cpus {
        text.push_str(&format!("cpus = {cpus:?}\n"));
    }
    text.push_str("\n[[routes]]\nprefix = \"/\"\n");
    text.push_str(&contend_gateway::config::policies_toml(&spec.policies));
    let path = dir.0.join("gateway.toml");
    std::fs::write(&path, &text).map_err(|e| Error::io(&path, e))?;
    let args = vec![
        "gateway".to_string(),
        "--config".into(),
        path.display().to_string(),
    ];
    let child = ChildGuard::spawn("reference gateway", exe, &args, READY_TIMEOUT)?;
    Ok(Gateway {
        kind: "reference",
        version: format!("contend {}", env!("CARGO_PKG_VERSION")),
        config_text: text,
        abort_accounting: spec.abort_accounting,
        child,
        access_log,
        _dir: dir,
    })
}

/// nginx from the template, in a temporary prefix, on a port picked now.
fn start_nginx(spec: &GatewaySpec, upstream_url: &str) -> Result<Gateway> {
    let binary = nginx::find()?;
    let template = match &spec.template {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
        None => nginx::EMBEDDED_TEMPLATE.to_string(),
    };
    let dir = TempDir::new("nginx")?;
    // nginx prints no address: pick a free port and hand it over. Another
    // process could take it in between; nginx would then fail to bind, and
    // that failure is reported with its stderr.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::Runtime(format!("no free port for nginx: {e}")))?;
    let upstream = upstream_url.trim_start_matches("http://");
    let text = nginx::render(&template, spec, listen, upstream, &dir.0);
    let conf = dir.0.join("nginx.conf");
    std::fs::write(&conf, &text).map_err(|e| Error::io(&conf, e))?;
    nginx::test_config(&binary, &dir.0, &conf, &text, spec.template.as_deref())?;
    let child = ChildGuard::spawn_polled(
        "nginx",
        &binary,
        &nginx::args(&dir.0, &conf),
        listen,
        READY_TIMEOUT,
        || {
            http::request_within(listen, "/healthz", Duration::from_millis(200))
                .is_ok_and(|status| status == 200)
        },
    )
    .map_err(|e| nginx::explain_bind_failure(e, listen))?;
    Ok(Gateway {
        kind: "nginx",
        version: nginx::version(&binary),
        config_text: text,
        abort_accounting: spec.abort_accounting,
        child,
        access_log: dir.0.join("access.log"),
        _dir: dir,
    })
}

/// The `contend` binary to start components with: this process's own.
pub fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::Runtime(format!("cannot find own binary: {e}")))
}

/// `contend upstream` flags for a mock upstream spec.
fn mock_args(spec: &MockUpstreamSpec) -> Vec<String> {
    let mut args = vec![
        "upstream".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            args.push(format!("--{name}"));
            args.push(value);
        }
    };
    flag(
        "workers",
        Some(
            spec.workers
                .map_or_else(|| "unbounded".to_string(), |n| n.to_string()),
        ),
    );
    flag("backlog", spec.backlog.map(|v| v.to_string()));
    flag("on-disconnect", spec.on_disconnect.clone());
    flag("cpu-ms", spec.cpu_ms.map(|v| v.to_string()));
    flag("cpu-dist", spec.cpu_dist.clone());
    flag("cpu-sigma", spec.cpu_sigma.map(|v| v.to_string()));
    flag("sleep-ms", spec.sleep_ms.map(|v| v.to_string()));
    flag("bytes", spec.bytes.map(|v| v.to_string()));
    flag("status", spec.status.map(|v| v.to_string()));
    flag("cpus", spec.cpus.clone());
    flag("seed", spec.seed.map(|v| v.to_string()));
    args
}
