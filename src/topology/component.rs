//! The component interface: what every process the harness starts can do,
//! and the typed reports of the two roles a component plays today.
//!
//! A kind of component (the mock upstream, the reference gateway, nginx,
//! HAProxy) is one file of `topology` that starts its process, waits until
//! it is ready, and implements [`Component`] plus its role: [`Upstream`]
//! (its ground truth can be read while it runs) or [`Gateway`] (it is
//! drained and stopped after the load, and its access log is its account).
//! Code past the topology only ever sees these traits and the typed
//! reports, so adding a kind adds a file here and one arm where kinds are
//! started.

use std::net::SocketAddr;
use std::time::Duration;

use mock_upstream::accounting::Snapshot;
use mock_upstream::requests::Document;

use super::child::{ChildExit, ChildGuard};
use super::telemetry::Metric;
use crate::error::Result;

/// What every started component can do: say what it is and where it
/// listens, and hand over its process (alive or not, its PID, the tail of
/// its stderr) for watching and stopping. The process is stopped, by its
/// PID, when the component drops.
pub trait Component: Send {
    /// Its process.
    fn child(&self) -> &ChildGuard;

    /// Its process, to check or stop.
    fn child_mut(&mut self) -> &mut ChildGuard;

    /// What it is, for messages: `mock upstream`, `reference gateway`, `nginx`.
    fn name(&self) -> &str {
        &self.child().name
    }

    /// Where it listens.
    fn addr(&self) -> SocketAddr {
        self.child().addr
    }

    /// `Some` once its process has ended on its own: what, when (`at_s`
    /// from the load's start) and how.
    fn exit_report(&mut self, at_s: f64) -> Option<ChildExit> {
        self.child_mut().exit_report(at_s)
    }

    /// Its own gauges and counters now (requests in flight, queue depth,
    /// busy workers, responses by status...), read from what it exposes
    /// within `within`, in `components.csv`'s names. `None`: it exposes
    /// none (the default); a kind that does (the mock's and the reference
    /// gateway's `/metrics`, nginx's `stub_status`) says so in its own file.
    fn own_metrics(&self, within: Duration) -> Option<Result<Vec<Metric>, String>> {
        let _ = within;
        None
    }

    /// Starts it again, on the same address, after it was killed (a
    /// `[[faults]]` restart). Only a kind that can (the Redis store) says
    /// so in its file; the others refuse, and the scenario refuses such a
    /// fault before the run.
    fn restart(&mut self) -> Result<(), String> {
        Err(format!("the {} cannot be restarted", self.name()))
    }
}

/// An upstream whose ground truth can be read while it runs (the mock).
pub trait Upstream: Component {
    /// Its per-key truth now (`GET /accounting`): requests started and how
    /// each ended, and the CPU, wall and queue seconds they cost.
    fn truth(&self) -> Result<Snapshot>;

    /// Its per-request log (`GET /requests`), for joins by `x-request-id`.
    fn requests(&self) -> Result<Document>;

    /// Waits, up to `within`, until it has ended every request it started,
    /// and reads its truth then. See [`Settled`].
    fn settle(&self, within: Duration) -> Result<Settled>;
}

/// An upstream's truth once it has finished its work, or when the wait
/// for that ran out.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The last reading.
    pub truth: Snapshot,
    /// False when the wait ran out with work still running or queued: the
    /// truth then misses that work.
    pub drained: bool,
}

/// A gateway in front of the upstream: what ran, and its access log.
pub trait Gateway: Component {
    /// What it is and how it was configured.
    fn info(&self) -> GatewayInfo;

    /// Lets the requests in flight finish (bounded), stops it so that
    /// every line is written, and opens its access log. Called once, after
    /// the load.
    fn finish(&mut self) -> Result<AccessLog>;

    /// The CA that signed its certificate, PEM, when it listens with TLS
    /// on a certificate the harness made (the driver trusts it).
    fn ca_pem(&self) -> Option<&str> {
        None
    }

    /// Its own runtime counters after the load, by name (HAProxy's
    /// `show stat`: `server.smax`, `backend.qmax`), for a gateway that
    /// keeps them; read just before [`Gateway::finish`]. Empty by default.
    fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        std::collections::BTreeMap::new()
    }
}

/// What gateway ran, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayInfo {
    /// `reference`, `nginx` or `haproxy`.
    pub kind: &'static str,
    /// `contend 0.1.0`, `nginx/1.22.1` or `haproxy/2.6.12-1+deb12u4`.
    pub version: String,
    /// Where it listened.
    pub addr: SocketAddr,
    /// Its client-abort accounting: `early` or `complete`.
    pub abort_accounting: &'static str,
    /// The config it was started with (TOML, nginx.conf or haproxy.cfg).
    pub config: String,
}

/// A finished gateway's access log, for the accounting to read.
#[derive(Debug)]
pub struct AccessLog {
    /// What ran.
    pub info: GatewayInfo,
    /// False when it had to be killed, so its last lines may be missing.
    pub stopped_cleanly: bool,
    /// The log, open for reading (it outlives the gateway's folder).
    pub file: std::fs::File,
}
