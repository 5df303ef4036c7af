//! Starting and stopping the components a run drives: today the embedded
//! mock upstream; the gateways join here.
//!
//! Takes a scenario's target; hands back a running [`Topology`] with the URL
//! the driver sends to. Every child process is held by a [`ChildGuard`]
//! that stops it (by its PID) when dropped, on every path out, and is kept
//! in a registry that the second Ctrl-C empties before exiting. Children
//! also get SIGTERM from the kernel if `contend` itself dies.

mod child;
pub mod http;

pub use child::{ChildGuard, stop_all_children};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::scenario::{MockUpstreamSpec, Target};

/// How long a component may take to print its address.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The running components of one run.
pub struct Topology {
    /// Base URL the driver sends to (`http://host:port`).
    pub url: String,
    /// The embedded mock upstream, when the scenario uses it.
    pub upstream: Option<ChildGuard>,
}

impl Topology {
    /// Starts what `target` needs. `exe` is the `contend` binary, which
    /// runs the mock upstream as `contend upstream ...`.
    pub fn start(target: &Target, exe: &Path) -> Result<Topology> {
        match target {
            Target::Url(url) => Ok(Topology { url: url.clone(), upstream: None }),
            Target::Mock(spec) => {
                let guard = ChildGuard::spawn(
                    "mock upstream",
                    exe,
                    &mock_args(spec),
                    READY_TIMEOUT,
                )?;
                Ok(Topology { url: format!("http://{}", guard.addr), upstream: Some(guard) })
            }
        }
    }

    /// The mock upstream's ground-truth accounting (`GET /accounting`), when
    /// the upstream is the mock.
    pub fn upstream_accounting(&self) -> Option<Result<serde_json::Value>> {
        let upstream = self.upstream.as_ref()?;
        Some(http::get_json(upstream.addr, "/accounting").map_err(|e| Error::Component {
            component: "mock upstream".into(),
            message: format!("could not read /accounting: {e}"),
        }))
    }
}

/// The `contend` binary to start components with: this process's own.
pub fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::Runtime(format!("cannot find own binary: {e}")))
}

/// `contend upstream` flags for a mock upstream spec.
fn mock_args(spec: &MockUpstreamSpec) -> Vec<String> {
    let mut args = vec!["upstream".to_string(), "--listen".into(), "127.0.0.1:0".into()];
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            args.push(format!("--{name}"));
            args.push(value);
        }
    };
    flag(
        "workers",
        Some(spec.workers.map_or_else(|| "unbounded".to_string(), |n| n.to_string())),
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
