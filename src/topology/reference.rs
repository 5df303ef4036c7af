//! The reference gateway as a component: `contend gateway --config FILE`
//! in a child process, its config and access log in a folder of its own,
//! drained by its in-flight gauge and stopped with SIGTERM (it flushes its
//! log before it exits). With `[gateway] tls` it listens with TLS on a
//! certificate made for the run in its folder; with `http2` it speaks
//! HTTP/2 too.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cert::{self, LOOPBACK_NAMES};
use super::child::ChildGuard;
use super::component::{AccessLog, Component, Gateway, GatewayInfo};
use super::telemetry::{self, Metric};
use super::workdir::WorkDir;
use super::{READY_TIMEOUT, http, open_log};
use crate::error::{Error, Result};
use crate::scenario::GatewaySpec;

/// How long the gateway may take to finish its requests in flight after the load.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to flush its log and exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How often the in-flight gauge is read while draining.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// A running reference gateway.
pub struct ReferenceGateway {
    info: GatewayInfo,
    child: ChildGuard,
    access_log: PathBuf,
    /// The run's CA, when it listens with TLS.
    ca_pem: Option<String>,
    // Dropped after `child` (fields drop in order): the folder goes once the process has.
    _dir: WorkDir,
}

/// Writes the gateway's config for `spec` in front of `upstream_url` and
/// starts `exe gateway --config FILE`.
/// With `store`, its rate limits are kept there (shared with replicas).
pub fn start(
    spec: &GatewaySpec,
    upstream_url: &str,
    exe: &Path,
    store: Option<&contend_gateway::store::StoreConfig>,
) -> Result<ReferenceGateway> {
    let dir = WorkDir::new("gateway")?;
    let access_log = dir.path().join("access.log");
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
    let certificate = if spec.tls {
        let made = cert::make(dir.path(), "", &LOOPBACK_NAMES)?;
        text.push_str(&format!(
            "tls_cert = {:?}\ntls_key = {:?}\n",
            made.cert_path.display().to_string(),
            made.key_path.display().to_string()
        ));
        Some(made)
    } else {
        None
    };
    if spec.http2 {
        text.push_str("http2 = true\n");
    }
    text.push_str("\n[[routes]]\nprefix = \"/\"\n");
    text.push_str(&contend_gateway::config::policies_toml(&spec.policies));
    if let Some(store) = store {
        text.push_str(&contend_gateway::store::store_toml(store));
    }
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, &text).map_err(|e| Error::io(&path, e))?;
    let args = vec![
        "gateway".to_string(),
        "--config".into(),
        path.display().to_string(),
    ];
    let child = ChildGuard::spawn("reference gateway", exe, &args, READY_TIMEOUT)?;
    Ok(ReferenceGateway {
        info: GatewayInfo {
            kind: "reference",
            version: format!("contend {}", env!("CARGO_PKG_VERSION")),
            addr: child.addr,
            abort_accounting: spec.abort_accounting.as_str(),
            config: text,
        },
        child,
        access_log,
        ca_pem: certificate.map(|c| c.ca_pem),
        _dir: dir,
    })
}

impl Component for ReferenceGateway {
    fn child(&self) -> &ChildGuard {
        &self.child
    }

    fn child_mut(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    fn own_metrics(&self, within: Duration) -> Option<Result<Vec<Metric>, String>> {
        Some(
            telemetry::scrape(self.child.addr, "/metrics", within, self.ca_pem.as_deref())
                .and_then(|text| telemetry::gateway_metrics(&text)),
        )
    }
}

impl Gateway for ReferenceGateway {
    fn info(&self) -> GatewayInfo {
        self.info.clone()
    }

    fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    fn finish(&mut self) -> Result<AccessLog> {
        // Nothing signals the end of the last request: poll the gateway's
        // own gauge until it reads 0, up to the deadline.
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let addr = self.child.addr;
        let metrics = || match &self.ca_pem {
            Some(ca) => http::get_tls_within(addr, "/metrics", DRAIN_TIMEOUT, ca)
                .map(|(status, body)| (status, body.into())),
            None => http::request(addr, "GET", "/metrics"),
        };
        while Instant::now() < deadline {
            match metrics() {
                Ok((_, body))
                    if String::from_utf8_lossy(&body)
                        .contains("contend_gateway_upstream_in_flight 0\n") =>
                {
                    break;
                }
                Ok(_) => std::thread::sleep(DRAIN_POLL),
                Err(_) => break,
            }
        }
        // SIGTERM: it stops accepting and flushes its log before exiting.
        let stopped_cleanly = self.child.stop_with(libc::SIGTERM, STOP_GRACE);
        Ok(AccessLog {
            info: self.info(),
            stopped_cleanly,
            file: open_log(&self.access_log, "reference gateway")?,
        })
    }
}
