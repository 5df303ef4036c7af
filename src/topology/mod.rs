//! The components a run drives, started in order: the upstream (the
//! embedded mock, or a URL), the Redis store when the reference gateway
//! keeps its rate limits in one (`[store]`), then the gateway in front of
//! the upstream (the reference gateway and its replicas, nginx, HAProxy,
//! an external one, or none).
//!
//! Takes a scenario's target and gateway; hands back a running [`Topology`]
//! whose components are seen only through the [`Component`] interface and
//! their role ([`Upstream`], [`Gateway`]), which report in typed values (the
//! mock's truth, the gateway's access log). One file per kind (`mock`,
//! `redis`, `reference`, `nginx`, `haproxy`) starts it, makes it ready and reads it; reading an
//! access log into accounting is the analysis's, not this module's.
//!
//! Every child process leads a process group of its own (a terminal's
//! Ctrl-C reaches only `contend`, which stops the children after the
//! drain) and is held by a [`ChildGuard`] that stops its whole group when
//! dropped, on every path out; a registry lets the second Ctrl-C stop them
//! before exiting, and children get SIGTERM from the kernel if `contend`
//! itself dies. After a run, [`Topology::stop`] checks that nothing of any
//! component is left running.
//!
//! Adding a kind of gateway: a file here with its `start` and its
//! [`Gateway`] impl, one arm in `start_gateway`, and its name in the
//! scenario's `GatewayKind` (see docs/architecture.md).

pub mod cert;
pub mod cgroup;
mod child;
mod component;
pub mod haproxy;
pub mod http;
mod mock;
pub mod nginx;
mod procfs;
mod program;
pub mod redis;
mod reference;
pub mod telemetry;
mod workdir;

pub use child::{
    Activity, ChildExit, ChildGuard, ComponentStall, group_members, stop_all_children,
};
pub use component::{AccessLog, Component, Gateway, GatewayInfo, Settled, Upstream};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::scenario::{GatewayKind, GatewaySpec, Target};

/// How long a component may take to be ready (print its address, or answer).
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The running components of one run.
pub struct Topology {
    /// Base URL the driver sends to (`http://host:port`, or `https://`
    /// for a gateway started with TLS).
    pub url: String,
    /// The CA of the certificate a gateway started with TLS listens with,
    /// PEM: the driver trusts it.
    pub ca_pem: Option<String>,
    /// The upstream the harness started (the mock), when it started one.
    pub upstream: Option<Box<dyn Upstream>>,
    /// The gateway the harness started, when it started one (replica 1).
    pub gateway: Option<Box<dyn Gateway>>,
    /// Replicas 2..N of the reference gateway (`[gateway] replicas`),
    /// sharing the store with the first.
    pub replicas: Vec<Box<dyn Gateway>>,
    /// The Redis store the harness started for the gateways' rate limits.
    pub store: Option<redis::RedisStore>,
}

impl Topology {
    /// Starts the upstream `target` needs, then `gateway` in front of it.
    /// `exe` is the `contend` binary, which runs the embedded components
    /// (`contend upstream`, `contend gateway`). Whatever started is stopped
    /// again if a later start fails.
    pub fn start(target: &Target, gateway: &GatewaySpec, exe: &Path) -> Result<Topology> {
        if gateway.kind == GatewayKind::External {
            // It has its own upstream; the driver sends to it.
            return Ok(Topology {
                url: gateway.url.clone().unwrap_or_default(),
                ca_pem: None,
                upstream: None,
                gateway: None,
                replicas: Vec::new(),
                store: None,
            });
        }
        let (upstream_url, upstream): (String, Option<Box<dyn Upstream>>) = match target {
            Target::Url(url) => (url.clone(), None),
            // A gateway contend starts takes one upstream (refused when
            // the scenario is built); without one the driver sends to all.
            Target::Urls(url, _) => (url.clone(), None),
            Target::Mock(spec) => {
                let mock = mock::start(spec, exe)?;
                (format!("http://{}", mock.addr()), Some(Box::new(mock)))
            }
        };
        let (store, store_url) = match &gateway.store {
            Some(spec) => match &spec.url {
                Some(url) => (None, Some(url.clone())),
                None => {
                    let started = redis::start(spec)?;
                    let url = started.url();
                    (Some(started), Some(url))
                }
            },
            None => (None, None),
        };
        let store_config = gateway
            .store
            .as_ref()
            .zip(store_url.as_deref())
            .map(|(spec, url)| spec.gateway_config(url));
        let scheme = if gateway.tls { "https" } else { "http" };
        let spec = gateway;
        let gateway = start_gateway(spec, &upstream_url, exe, store_config.as_ref())?;
        let mut replicas = Vec::new();
        for _ in 1..spec.replicas.max(1) {
            if let Some(replica) = start_gateway(spec, &upstream_url, exe, store_config.as_ref())? {
                replicas.push(replica);
            }
        }
        let url = gateway
            .as_ref()
            .map_or(upstream_url, |g| format!("{scheme}://{}", g.addr()));
        let ca_pem = gateway
            .as_ref()
            .and_then(|g| g.ca_pem().map(str::to_string));
        Ok(Topology {
            url,
            ca_pem,
            upstream,
            gateway,
            replicas,
            store,
        })
    }

    /// Stops every component, the gateway first, and checks that nothing of
    /// them is left running (each component's process group is empty).
    /// Hands on a warning for anything that was, after killing it.
    pub fn stop(mut self) -> Vec<String> {
        let groups: Vec<(String, u32)> = self
            .components_mut()
            .into_iter()
            .map(|c| (c.name().to_string(), c.child().pid()))
            .collect();
        drop(self.gateway.take());
        self.replicas.clear();
        drop(self.upstream.take());
        drop(self.store.take());
        let mut warnings = Vec::new();
        for (name, pgid) in groups {
            let left = group_members(pgid);
            if !left.is_empty() {
                let _ = crate::sys::signal_group(pgid, libc::SIGKILL);
                warnings.push(format!(
                    "the {name}'s processes {left:?} were still running after it was stopped; contend killed them"
                ));
            }
        }
        warnings
    }

    /// Every component the harness started, upstream first, then the
    /// gateway's replicas in order, then the store (the order of
    /// [`Topology::roles`]).
    pub fn components_mut(&mut self) -> Vec<&mut dyn Component> {
        let mut all: Vec<&mut dyn Component> = Vec::new();
        if let Some(u) = self.upstream.as_deref_mut() {
            all.push(u);
        }
        if let Some(g) = self.gateway.as_deref_mut() {
            all.push(g);
        }
        for r in &mut self.replicas {
            all.push(&mut **r);
        }
        if let Some(s) = self.store.as_mut() {
            all.push(s);
        }
        all
    }

    /// The roles of [`Topology::components_mut`], in its order: `upstream`,
    /// `gateway`, `gateway:2`..., `store`.
    pub fn roles(&self) -> Vec<String> {
        let mut roles = Vec::new();
        if self.upstream.is_some() {
            roles.push("upstream".to_string());
        }
        if self.gateway.is_some() {
            roles.push("gateway".to_string());
        }
        for i in 0..self.replicas.len() {
            roles.push(format!("gateway:{}", i + 2));
        }
        if self.store.is_some() {
            roles.push("store".to_string());
        }
        roles
    }

    /// Where the driver sends: every gateway replica's address (one for a
    /// single gateway, none when the driver sends to the URL alone).
    pub fn gateway_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.gateway
            .iter()
            .chain(self.replicas.iter())
            .map(|g| g.addr())
            .collect()
    }
}

/// The one place a gateway kind is turned into its component.
fn start_gateway(
    spec: &GatewaySpec,
    upstream_url: &str,
    exe: &Path,
    store: Option<&contend_gateway::store::StoreConfig>,
) -> Result<Option<Box<dyn Gateway>>> {
    Ok(match spec.kind {
        GatewayKind::None | GatewayKind::External => None,
        GatewayKind::Reference => Some(Box::new(reference::start(spec, upstream_url, exe, store)?)),
        GatewayKind::Nginx => Some(Box::new(nginx::start(spec, upstream_url)?)),
        GatewayKind::Haproxy => Some(Box::new(haproxy::start(spec, upstream_url)?)),
    })
}

/// Whether the program a gateway kind runs is installed: nginx's and
/// HAProxy's binaries are looked for; the others need none. The error
/// names the install command.
pub fn gateway_installed(kind: GatewayKind) -> Result<()> {
    match kind {
        GatewayKind::Nginx => nginx::find().map(drop),
        GatewayKind::Haproxy => haproxy::find().map(drop),
        GatewayKind::None | GatewayKind::Reference | GatewayKind::External => Ok(()),
    }
}

/// Opens a finished gateway's access log for reading.
fn open_log(path: &Path, component: &str) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| Error::Component {
        component: component.into(),
        message: format!("could not read its access log: {e}"),
    })
}

/// The `contend` binary to start components with: this process's own.
pub fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::Runtime(format!("cannot find own binary: {e}")))
}
