//! The embedded mock upstream as a component: `contend upstream ...` in a
//! child process, ready when it prints its address, read through its
//! `/accounting` and `/requests` documents.

use std::path::Path;
use std::time::{Duration, Instant};

use mock_upstream::accounting::Snapshot;
use mock_upstream::requests::Document;

use super::child::ChildGuard;
use super::component::{Component, Settled, Upstream};
use super::telemetry::{self, Metric};
use super::{READY_TIMEOUT, http};
use crate::error::{Error, Result};
use crate::scenario::MockUpstreamSpec;

/// How often [`Upstream::settle`] reads the accounting while it waits.
const SETTLE_POLL: Duration = Duration::from_millis(20);

/// A running mock upstream.
pub struct MockUpstream {
    child: ChildGuard,
}

/// Starts `exe upstream ...` with `spec`'s settings on an ephemeral loopback port.
pub fn start(spec: &MockUpstreamSpec, exe: &Path) -> Result<MockUpstream> {
    let child = ChildGuard::spawn("mock upstream", exe, &args(spec), READY_TIMEOUT)?;
    Ok(MockUpstream { child })
}

impl Component for MockUpstream {
    fn child(&self) -> &ChildGuard {
        &self.child
    }

    fn child_mut(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    fn own_metrics(&self, within: Duration) -> Option<Result<Vec<Metric>, String>> {
        Some(
            telemetry::scrape(self.child.addr, "/metrics", within, None)
                .and_then(|text| telemetry::mock_metrics(&text)),
        )
    }
}

impl MockUpstream {
    fn read<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        http::get_json(self.child.addr, path).map_err(|e| Error::Component {
            component: "mock upstream".into(),
            message: format!("could not read {path}: {e}"),
        })
    }
}

impl Upstream for MockUpstream {
    fn truth(&self) -> Result<Snapshot> {
        self.read("/accounting")
    }

    fn requests(&self) -> Result<Document> {
        self.read("/requests")
    }

    /// Why wait: with `on_disconnect = "run"` the upstream keeps working on
    /// requests whose clients (and gateway) left, so its truth is not whole
    /// until that work ends; summing earlier under-reports exactly what an
    /// abort audit measures. Drained means every key's `started` equals
    /// `completed + abandoned + cancelled`. A request still queued for a
    /// worker is not yet `started`, but while one waits every worker is
    /// busy, so the sums differ; they can read equal with a queue only in
    /// the instant between a worker's finish and its next start, which two
    /// equal readings in a row rule out. Nothing signals the last finish,
    /// so this polls, up to the deadline.
    fn settle(&self, within: Duration) -> Result<Settled> {
        let deadline = Instant::now() + within;
        let mut drained_readings = 0;
        loop {
            let truth = self.truth()?;
            drained_readings = if drained(&truth) {
                drained_readings + 1
            } else {
                0
            };
            if drained_readings >= 2 {
                return Ok(Settled {
                    truth,
                    drained: true,
                });
            }
            if Instant::now() >= deadline {
                return Ok(Settled {
                    truth,
                    drained: false,
                });
            }
            std::thread::sleep(SETTLE_POLL);
        }
    }
}

/// True when every key has ended all it started.
pub fn drained(truth: &Snapshot) -> bool {
    truth
        .keys
        .values()
        .all(|k| k.started == k.completed + k.abandoned + k.cancelled)
}

/// `contend upstream` flags for a mock upstream spec.
fn args(spec: &MockUpstreamSpec) -> Vec<String> {
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
