//! Preflight: the host settings that load-test runbooks tune by hand,
//! checked against what a run will ask of them, each with its fix.
//!
//! Takes [`Readings`] (the open-file limit and four sysctls, read by
//! [`Readings::read`]) and a [`Load`] (estimated from a scenario by
//! [`Load::of`]); hands back one [`Check`] per setting, OK or WARN, for the
//! console before a run, for `summary.json` and for `contend doctor`. The
//! checks are pure functions of those two values; only [`Readings::read`]
//! touches the system. A short file-descriptor limit is the one finding
//! that refuses the run ([`refuse_short_fds`]): it would fail part-way.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scenario::{
    DEFAULT_STREAMS_PER_CONNECTION, Experiment, GatewayKind, HttpVersion, Scenario, Target,
};

/// File descriptors `contend` keeps for itself beside its connections:
/// stdio, the report files, signal handling, child pipes, and the
/// connections that read the components' accounting.
pub const FD_HEADROOM_BASE: u64 = 64;
/// File descriptors each driver thread keeps beside its connections (its
/// runtime's epoll and wakers, its timerfd; about 6 measured) plus slack.
pub const FD_PER_THREAD: u64 = 8;
/// How long a listener's accept loop may fall behind (a busy core, a
/// stalled upstream) while connections keep arriving, s: its queues must
/// hold what arrives meanwhile.
pub const ACCEPT_STALL_S: f64 = 0.1;
/// How long a connection closed by this side holds its port in TIME_WAIT,
/// s (Linux's fixed TCP_TIMEWAIT_LEN).
pub const TIME_WAIT_S: f64 = 60.0;

/// What the host allows, read once; `None` where it could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readings {
    /// RLIMIT_NOFILE soft limit (`ulimit -n`), after the raise at start.
    pub nofile_soft: Option<u64>,
    /// RLIMIT_NOFILE hard limit (`ulimit -Hn`).
    pub nofile_hard: Option<u64>,
    /// `net.core.somaxconn`: the cap on every listen backlog.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_max_syn_backlog`: half-open connections per listener.
    pub tcp_max_syn_backlog: Option<u64>,
    /// `net.ipv4.ip_local_port_range`: the ephemeral ports, inclusive.
    pub ip_local_port_range: Option<(u64, u64)>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 on for loopback only.
    pub tcp_tw_reuse: Option<u64>,
}

impl Readings {
    /// Reads the limit and the sysctls from this process and `/proc/sys`.
    pub fn read() -> Readings {
        Self::read_from(std::path::Path::new("/proc/sys"))
    }

    /// [`Readings::read`] with the sysctls under `proc_sys` (a folder laid
    /// out as `/proc/sys`).
    pub fn read_from(proc_sys: &std::path::Path) -> Readings {
        let text = |name: &str| std::fs::read_to_string(proc_sys.join(name)).ok();
        let number = |name: &str| text(name).and_then(|t| t.trim().parse::<u64>().ok());
        let limit = crate::sys::nofile_limit().ok();
        Readings {
            nofile_soft: limit.map(|l| l.0),
            nofile_hard: limit.map(|l| l.1),
            somaxconn: number("net/core/somaxconn"),
            tcp_max_syn_backlog: number("net/ipv4/tcp_max_syn_backlog"),
            ip_local_port_range: text("net/ipv4/ip_local_port_range").and_then(|t| {
                let mut parts = t.split_whitespace().map(|p| p.parse::<u64>().ok());
                match (parts.next().flatten(), parts.next().flatten()) {
                    (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
                    _ => None,
                }
            }),
            tcp_tw_reuse: number("net/ipv4/tcp_tw_reuse"),
        }
    }
}

/// What a run will ask of the host, estimated from its scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Most connections the driver may hold open at once: `max_connections`,
    /// or the closed loop's (or a sweep's largest concurrency step's) count.
    pub connections: u64,
    /// `connections` is the default cap nobody asked for: when it does not
    /// fit, the run is warned, not refused (few runs come near the cap, and
    /// one that does counts the connects past the limit as errors).
    pub connections_default: bool,
    /// Driver threads.
    pub threads: u64,
    /// Highest offered rate of any phase or step, per second (0 when only
    /// a closed loop runs, which has no schedule).
    pub peak_rate_per_s: f64,
    /// Connections that may arrive at the listener together: those opened
    /// during an [`ACCEPT_STALL_S`] stall at the peak rate (while every
    /// connection is busy each arrival opens one, or over HTTP/2 one per
    /// [`Load::streams_per_connection`] arrivals), or a closed loop's
    /// connections, which all open at its start.
    pub accept_burst: u64,
    /// Arrivals one connection takes at once: 1 over HTTP/1.1 (and with
    /// `reuse = false`), `streams_per_connection` over HTTP/2.
    pub streams_per_connection: u64,
    /// Connections this side closes per second, each then holding its port
    /// in TIME_WAIT: every request with `connection: close`, and those of
    /// keys whose own timeout is shorter than the client's (they are meant
    /// to time out, and a timeout closes the connection).
    pub client_closes_per_s: f64,
    /// The listener runs on this host (the mock upstream, a gateway the
    /// harness starts, or a loopback target), so its queues are this host's.
    pub listener_local: bool,
    /// The driver connects to a loopback address (`tcp_tw_reuse = 2` covers it).
    pub target_loopback: bool,
}

impl Load {
    /// Estimates what `scenario` will ask of the host.
    pub fn of(scenario: &Scenario) -> Load {
        let client = &scenario.client;
        let threads = client
            .threads
            .unwrap_or_else(crate::driver::default_threads)
            .max(1) as u64;
        let peak = scenario.experiment.peak_rate_per_s();
        // Closed-loop clients all connect at once.
        let closed = match &scenario.experiment {
            Experiment::Run(load) => load.closed_loop().unwrap_or(0),
            Experiment::Sweep(sweep) => {
                sweep.concurrency.iter().copied().max().unwrap_or(0) as usize
            }
            Experiment::FindLimit(_) | Experiment::AbortAudit(_) | Experiment::Quota(_) => 0,
        };
        let closed_run = matches!(
            &scenario.experiment,
            Experiment::Run(crate::scenario::Load::Closed { .. })
        );
        let connections = if closed_run {
            closed as u64
        } else {
            (client.max_connections as u64).max(closed as u64)
        };
        let closed_burst = closed as u64;
        // "auto" may end in HTTP/1.1 (the server picks in ALPN): counted as
        // one arrival per connection, the larger burst.
        let streams_per_connection = if client.http == HttpVersion::Http2 && client.reuse {
            client
                .streams_per_connection
                .unwrap_or(DEFAULT_STREAMS_PER_CONNECTION)
                .max(1) as u64
        } else {
            1
        };
        let stall_burst = (peak * ACCEPT_STALL_S / streams_per_connection as f64).ceil() as u64;
        let accept_burst = stall_burst.max(closed_burst).min(connections);

        let closes = |headers: &[(String, String)]| {
            headers.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case("connection")
                    && value.to_ascii_lowercase().contains("close")
            })
        };
        let all_close = closes(&scenario.request.headers);
        let closing_share = if scenario.keys.is_empty() {
            if all_close { 1.0 } else { 0.0 }
        } else {
            let total: f64 = scenario.keys.iter().map(|k| k.weight).sum();
            let closing: f64 = scenario
                .keys
                .iter()
                .filter(|k| {
                    all_close || closes(&k.headers) || k.timeout.is_some_and(|t| t < client.timeout)
                })
                .map(|k| k.weight)
                .sum();
            if total > 0.0 { closing / total } else { 0.0 }
        };

        let (listener_local, target_loopback) = match (&scenario.gateway.kind, &scenario.target) {
            (GatewayKind::External, _) => {
                let local = scenario.gateway.url.as_deref().is_some_and(is_loopback_url);
                (local, local)
            }
            (GatewayKind::Reference | GatewayKind::Nginx | GatewayKind::Haproxy, _)
            | (_, Target::Mock(_)) => (true, true),
            (GatewayKind::None, Target::Url(url)) => {
                let local = is_loopback_url(url);
                (local, local)
            }
            (GatewayKind::None, Target::Urls(first, more)) => {
                let local = std::iter::once(first)
                    .chain(more)
                    .all(|u| is_loopback_url(u));
                (local, local)
            }
        };
        let connections_default = !closed_run
            && client.max_connections == crate::scenario::ClientSpec::default().max_connections
            && connections == client.max_connections as u64;
        Load {
            connections,
            connections_default,
            threads,
            peak_rate_per_s: peak,
            accept_burst,
            streams_per_connection,
            client_closes_per_s: peak * closing_share,
            listener_local,
            target_loopback,
        }
    }

    /// File descriptors the run needs: its connections and [`Load::headroom`].
    pub fn fds_needed(&self) -> u64 {
        self.connections.saturating_add(self.headroom())
    }

    /// File descriptors `contend` needs beside its connections.
    pub fn headroom(&self) -> u64 {
        FD_HEADROOM_BASE + FD_PER_THREAD * self.threads
    }

    /// Ports held in TIME_WAIT at once by the connections this side closes.
    pub fn time_wait_ports(&self) -> u64 {
        (self.client_closes_per_s * TIME_WAIT_S).ceil() as u64
    }
}

/// True when `url`'s host is a loopback address or `localhost`.
fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The setting will not limit the run.
    Ok,
    /// The setting will limit the run: apply the fix.
    Warn,
    /// Not checked: unreadable here, or not this host's setting.
    Skip,
}

impl Status {
    /// `OK`, `WARN`, `SKIP`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
        }
    }
}

/// One setting checked against the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The setting: `nofile` or the sysctl's name (`net.core.somaxconn`).
    pub name: String,
    /// OK, WARN or SKIP.
    pub status: Status,
    /// What the host has, as it reads (`20000`, `32768-60999`); empty when unread.
    pub value: String,
    /// What the run needs of it, in the same terms.
    pub needed: String,
    /// Why it passes or limits the run.
    pub message: String,
    /// The commands that fix it (WARN only).
    pub fix: Option<String>,
}

impl Check {
    fn skip(name: &str, message: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Skip,
            value: String::new(),
            needed: String::new(),
            message: message.into(),
            fix: None,
        }
    }
}

/// Every check, in a fixed order.
pub fn checks(r: &Readings, load: &Load) -> Vec<Check> {
    vec![
        nofile(r, load),
        somaxconn(r, load),
        syn_backlog(r, load),
        port_range(r, load),
        tw_reuse(r, load),
    ]
}

/// `sysctl -w NAME=VALUE`, and where to keep it across reboots.
fn sysctl_fix(name: &str, value: &str) -> String {
    let shell = if value.contains(' ') {
        format!("\"{value}\"")
    } else {
        value.to_string()
    };
    format!(
        "`sysctl -w {name}={shell}` as root (keep it: `echo '{name} = {value}' >> /etc/sysctl.d/90-contend.conf`)"
    )
}

/// The open-file limit against the connections plus `contend`'s own files.
pub fn nofile(r: &Readings, load: &Load) -> Check {
    const NAME: &str = "nofile";
    let Some(soft) = r.nofile_soft else {
        return Check::skip(NAME, "the open-file limit could not be read");
    };
    let hard = r.nofile_hard.unwrap_or(soft);
    let needed = load.fds_needed();
    let value = format!("{soft} (hard {hard})");
    let what = format!(
        "up to {} connections and {} files of its own need about {needed} file descriptors",
        load.connections,
        load.headroom()
    );
    if soft >= needed {
        return Check {
            name: NAME.into(),
            status: Status::Ok,
            value,
            needed: needed.to_string(),
            message: format!("{what}; {soft} may be open"),
            fix: None,
        };
    }
    let fit = soft.saturating_sub(load.headroom());
    let lower = if fit > 0 {
        format!(", or lower max_connections to {fit} ([client] max_connections, --max-connections)")
    } else {
        String::new()
    };
    let raise = if hard >= needed {
        format!("`ulimit -n {needed}` in the shell that starts contend")
    } else {
        format!(
            "`ulimit -n {needed}` after raising the hard limit ({hard}): `nofile` in \
             /etc/security/limits.conf, `LimitNOFILE={needed}` in a systemd unit, or \
             `docker run --ulimit nofile={needed}:{needed}`"
        )
    };
    Check {
        name: NAME.into(),
        status: Status::Warn,
        value,
        needed: needed.to_string(),
        message: format!("{what}, but only {soft} may be open (`ulimit -n`)"),
        fix: Some(format!("{raise}{lower}")),
    }
}

/// A backlog-like sysctl against the connections that may arrive together.
fn queue_check(name: &str, reading: Option<u64>, load: &Load, what: &str) -> Check {
    if !load.listener_local {
        return Check::skip(
            name,
            format!("the target listens on another host: check its {name} there"),
        );
    }
    let Some(value) = reading else {
        return Check::skip(name, format!("{name} could not be read"));
    };
    let needed = load.accept_burst;
    let burst = if load.peak_rate_per_s > 0.0 {
        let streams = match load.streams_per_connection {
            1 => String::new(),
            n => format!(", {n} HTTP/2 streams per connection"),
        };
        format!(
            "{:.0} ms of arrivals at {:.0}/s{streams} while the listener falls behind",
            ACCEPT_STALL_S * 1000.0,
            load.peak_rate_per_s
        )
    } else {
        "the closed loop's connections, all opened at its start".to_string()
    };
    if value >= needed {
        return Check {
            name: name.into(),
            status: Status::Ok,
            value: value.to_string(),
            needed: needed.to_string(),
            message: format!("{what} {value} holds {needed} connections ({burst})"),
            fix: None,
        };
    }
    let target = needed.next_power_of_two().max(4096);
    Check {
        name: name.into(),
        status: Status::Warn,
        value: value.to_string(),
        needed: needed.to_string(),
        message: format!(
            "{what} {value} is short of {needed} connections ({burst}): the excess SYNs are dropped \
             and retried after 1 s, which shows as connect latency"
        ),
        fix: Some(sysctl_fix(name, &target.to_string())),
    }
}

/// `net.core.somaxconn`: the cap on the listener's accept queue.
pub fn somaxconn(r: &Readings, load: &Load) -> Check {
    queue_check(
        "net.core.somaxconn",
        r.somaxconn,
        load,
        "the accept queue cap",
    )
}

/// `net.ipv4.tcp_max_syn_backlog`: half-open connections per listener.
pub fn syn_backlog(r: &Readings, load: &Load) -> Check {
    queue_check(
        "net.ipv4.tcp_max_syn_backlog",
        r.tcp_max_syn_backlog,
        load,
        "the SYN queue",
    )
}

/// True when TIME_WAIT ports may be reused for this run's connections.
fn tw_reuse_applies(setting: u64, loopback: bool) -> bool {
    setting == 1 || (setting == 2 && loopback)
}

/// `net.ipv4.ip_local_port_range`: one port per open connection to the
/// target, plus one per connection in TIME_WAIT unless they may be reused.
pub fn port_range(r: &Readings, load: &Load) -> Check {
    const NAME: &str = "net.ipv4.ip_local_port_range";
    let Some((lo, hi)) = r.ip_local_port_range else {
        return Check::skip(NAME, format!("{NAME} could not be read"));
    };
    let ports = hi - lo + 1;
    let reuse = r
        .tcp_tw_reuse
        .is_some_and(|s| tw_reuse_applies(s, load.target_loopback));
    let time_wait = if reuse { 0 } else { load.time_wait_ports() };
    let needed = load.connections.saturating_add(time_wait);
    let why = if time_wait > 0 {
        format!(
            "{} open connections and {time_wait} in TIME_WAIT ({:.0} closed/s for {TIME_WAIT_S:.0} s)",
            load.connections, load.client_closes_per_s
        )
    } else {
        format!("{} open connections", load.connections)
    };
    let value = format!("{lo}-{hi}");
    if ports >= needed {
        return Check {
            name: NAME.into(),
            status: Status::Ok,
            value,
            needed: needed.to_string(),
            message: format!("{ports} ephemeral ports hold {why}"),
            fix: None,
        };
    }
    Check {
        name: NAME.into(),
        status: Status::Warn,
        value,
        needed: needed.to_string(),
        message: format!(
            "{ports} ephemeral ports are short of {why}: connects fail with EADDRNOTAVAIL (counted as connect_error)"
        ),
        fix: Some(format!(
            "{}; or lower max_connections{}",
            sysctl_fix(NAME, "1024 65535"),
            if time_wait > 0 {
                "; or let new connections reuse TIME_WAIT ports (net.ipv4.tcp_tw_reuse = 1)"
            } else {
                ""
            }
        )),
    }
}

/// `net.ipv4.tcp_tw_reuse` against the connections this side closes.
pub fn tw_reuse(r: &Readings, load: &Load) -> Check {
    const NAME: &str = "net.ipv4.tcp_tw_reuse";
    let Some(setting) = r.tcp_tw_reuse else {
        return Check::skip(NAME, format!("{NAME} could not be read"));
    };
    let time_wait = load.time_wait_ports();
    let ok = |message: String| Check {
        name: NAME.into(),
        status: Status::Ok,
        value: setting.to_string(),
        needed: String::new(),
        message,
        fix: None,
    };
    if tw_reuse_applies(setting, load.target_loopback) {
        return ok(format!(
            "new connections may reuse ports in TIME_WAIT ({})",
            if setting == 1 { "all" } else { "loopback" }
        ));
    }
    let ports = r.ip_local_port_range.map_or(0, |(lo, hi)| hi - lo + 1);
    if time_wait == 0 {
        return ok("connections are kept alive: few enter TIME_WAIT on this side".into());
    }
    if load.connections.saturating_add(time_wait) <= ports {
        return ok(format!(
            "{time_wait} ports in TIME_WAIT ({:.0} closed/s for {TIME_WAIT_S:.0} s) fit the {ports} ephemeral ports",
            load.client_closes_per_s
        ));
    }
    Check {
        name: NAME.into(),
        status: Status::Warn,
        value: setting.to_string(),
        needed: "1".into(),
        message: format!(
            "{:.0} connections closed per second by this side hold {time_wait} ports in TIME_WAIT for \
             {TIME_WAIT_S:.0} s, more than the {ports} ephemeral ports, and may not be reused",
            load.client_closes_per_s
        ),
        fix: Some(format!(
            "{}; or keep connections alive (drop `connection: close`)",
            sysctl_fix(NAME, "1")
        )),
    }
}

/// Refuses a run whose connections cannot fit in the open-file limit (it
/// would fail part-way), naming the `ulimit -n` fix; exit code 2. The
/// default cap is only warned about (see [`Load::connections_default`]).
pub fn refuse_short_fds(r: &Readings, load: &Load) -> Result<()> {
    if load.connections_default {
        return Ok(());
    }
    let check = nofile(r, load);
    match (check.status, check.fix) {
        (Status::Warn, Some(fix)) => Err(Error::Limit(format!(
            "the open-file limit is too low for this run: {}. Fix: {fix}",
            check.message
        ))),
        _ => Ok(()),
    }
}

/// Writes `checks` one per line (`OK    name  value: message`), with the
/// fix under each WARN; only the WARNs when `warnings_only`.
pub fn write(w: &mut dyn Write, checks: &[Check], warnings_only: bool) -> std::io::Result<()> {
    for c in checks {
        if warnings_only && c.status != Status::Warn {
            continue;
        }
        let value = if c.value.is_empty() {
            String::new()
        } else {
            format!(" = {}", c.value)
        };
        writeln!(
            w,
            "{:<5} {}{value}: {}",
            c.status.label(),
            c.name,
            c.message
        )?;
        if let Some(fix) = &c.fix {
            writeln!(w, "      fix: {fix}")?;
        }
    }
    Ok(())
}

/// The lines a WARN check adds to a summary's warnings.
pub fn warnings(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.status == Status::Warn)
        .map(|c| {
            format!(
                "preflight: {}: {}{}",
                c.name,
                c.message,
                c.fix
                    .as_ref()
                    .map(|f| format!(" (fix: {f})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// nginx for `contend doctor`: OK with its version, or, when it is not
/// installed, WARN if `needed` (the scenario's gateway is nginx) and SKIP
/// otherwise, with the install command either way.
pub fn nginx(needed: bool) -> Check {
    installed(
        "nginx",
        crate::topology::nginx::find(),
        crate::topology::nginx::version,
        needed,
    )
}

/// HAProxy for `contend doctor`, as [`nginx`].
pub fn haproxy(needed: bool) -> Check {
    installed(
        "haproxy",
        crate::topology::haproxy::find(),
        crate::topology::haproxy::version,
        needed,
    )
}

/// The check of a gateway program `name`: `found` is where it was looked
/// for, `version` reads its version.
fn installed(
    name: &str,
    found: crate::error::Result<std::path::PathBuf>,
    version: fn(&std::path::Path) -> String,
    needed: bool,
) -> Check {
    match found {
        Ok(path) => Check {
            name: name.into(),
            status: Status::Ok,
            value: version(&path),
            needed: String::new(),
            message: format!("found at {}", path.display()),
            fix: None,
        },
        Err(e) => Check {
            name: name.into(),
            status: if needed { Status::Warn } else { Status::Skip },
            value: String::new(),
            needed: String::new(),
            message: if needed {
                format!("not installed, and [gateway] kind = \"{name}\" needs it")
            } else {
                format!("not installed (needed only for [gateway] kind = \"{name}\")")
            },
            fix: needed.then(|| e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host tuned as runbooks advise.
    fn tuned() -> Readings {
        Readings {
            nofile_soft: Some(1_048_576),
            nofile_hard: Some(1_048_576),
            somaxconn: Some(65_535),
            tcp_max_syn_backlog: Some(65_535),
            ip_local_port_range: Some((1024, 65_535)),
            tcp_tw_reuse: Some(1),
        }
    }

    /// Kernel defaults of many distributions, and a 1024 open-file limit.
    fn stock() -> Readings {
        Readings {
            nofile_soft: Some(1024),
            nofile_hard: Some(1024),
            somaxconn: Some(128),
            tcp_max_syn_backlog: Some(128),
            ip_local_port_range: Some((32_768, 60_999)),
            tcp_tw_reuse: Some(0),
        }
    }

    fn load(connections: u64, rate: f64, closes: f64) -> Load {
        Load {
            connections,
            connections_default: false,
            threads: 2,
            peak_rate_per_s: rate,
            accept_burst: ((rate * ACCEPT_STALL_S).ceil() as u64).min(connections),
            streams_per_connection: 1,
            client_closes_per_s: closes,
            listener_local: true,
            target_loopback: true,
        }
    }

    fn status_of(checks: &[Check], name: &str) -> Status {
        checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
            .unwrap_or_else(|| panic!("no check {name}"))
    }

    #[test]
    fn a_tuned_host_passes_a_high_rate_run() {
        let checks = checks(&tuned(), &load(10_000, 50_000.0, 50_000.0));
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
    }

    #[test]
    fn a_stock_host_warns_with_each_fix() {
        let checks = checks(&stock(), &load(10_000, 20_000.0, 20_000.0));
        for (name, fix) in [
            ("nofile", "ulimit -n 10080"),
            ("net.core.somaxconn", "sysctl -w net.core.somaxconn=4096"),
            (
                "net.ipv4.tcp_max_syn_backlog",
                "sysctl -w net.ipv4.tcp_max_syn_backlog=4096",
            ),
            (
                "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_local_port_range=\"1024 65535\"",
            ),
            ("net.ipv4.tcp_tw_reuse", "sysctl -w net.ipv4.tcp_tw_reuse=1"),
        ] {
            let c = checks.iter().find(|c| c.name == name).unwrap();
            assert_eq!(c.status, Status::Warn, "{c:#?}");
            let text = c.fix.as_deref().unwrap_or("");
            assert!(text.contains(fix), "{name}: {text}");
        }
    }

    #[test]
    fn a_low_rate_keep_alive_run_passes_a_stock_host() {
        let checks = checks(&stock(), &load(500, 200.0, 0.0));
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
    }

    #[test]
    fn the_fd_budget_counts_connections_threads_and_headroom() {
        let l = load(1000, 0.0, 0.0);
        assert_eq!(l.fds_needed(), 1000 + FD_HEADROOM_BASE + 2 * FD_PER_THREAD);
        let at = |soft| Readings {
            nofile_soft: Some(soft),
            nofile_hard: Some(soft),
            ..tuned()
        };
        assert_eq!(nofile(&at(l.fds_needed()), &l).status, Status::Ok);
        let short = nofile(&at(l.fds_needed() - 1), &l);
        assert_eq!(short.status, Status::Warn);
        let fix = short.fix.unwrap();
        assert!(fix.contains("ulimit -n 1080"), "{fix}");
        assert!(fix.contains("lower max_connections to 999"), "{fix}");
        assert!(fix.contains("LimitNOFILE=1080"), "{fix}");
    }

    #[test]
    fn refusal_names_the_ulimit_fix_and_exits_2() {
        let l = load(5000, 100.0, 0.0);
        let err = refuse_short_fds(&stock(), &l).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("ulimit -n 5080"), "{text}");
        assert!(text.contains("only 1024 may be open"), "{text}");
        assert!(refuse_short_fds(&tuned(), &l).is_ok());
        // An unreadable limit refuses nothing.
        let unread = Readings {
            nofile_soft: None,
            ..stock()
        };
        assert!(refuse_short_fds(&unread, &l).is_ok());
        // The default cap, not asked for, is warned about instead.
        let default = Load {
            connections_default: true,
            ..l
        };
        assert!(refuse_short_fds(&stock(), &default).is_ok());
        assert_eq!(nofile(&stock(), &default).status, Status::Warn);
    }

    #[test]
    fn a_soft_limit_under_the_hard_one_is_raised_by_ulimit_alone() {
        let r = Readings {
            nofile_soft: Some(1024),
            nofile_hard: Some(65_536),
            ..tuned()
        };
        let fix = nofile(&r, &load(5000, 0.0, 0.0)).fix.unwrap();
        assert!(fix.starts_with("`ulimit -n 5080` in the shell"), "{fix}");
    }

    #[test]
    fn queues_of_a_remote_listener_are_not_this_hosts() {
        let remote = Load {
            listener_local: false,
            target_loopback: false,
            ..load(10_000, 50_000.0, 0.0)
        };
        let checks = checks(&stock(), &remote);
        assert_eq!(status_of(&checks, "net.core.somaxconn"), Status::Skip);
        assert_eq!(
            status_of(&checks, "net.ipv4.tcp_max_syn_backlog"),
            Status::Skip
        );
    }

    #[test]
    fn tw_reuse_2_covers_loopback_only() {
        let r = Readings {
            tcp_tw_reuse: Some(2),
            ..stock()
        };
        let closing = load(100, 1000.0, 1000.0);
        assert_eq!(tw_reuse(&r, &closing).status, Status::Ok);
        assert_eq!(port_range(&r, &closing).status, Status::Ok);
        let remote = Load {
            target_loopback: false,
            listener_local: false,
            ..closing
        };
        assert_eq!(tw_reuse(&r, &remote).status, Status::Warn);
        let ports = port_range(&r, &remote);
        assert_eq!(ports.status, Status::Warn);
        // 100 open plus 1000/s for 60 s.
        assert_eq!(ports.needed, "60100");
    }

    #[test]
    fn unreadable_settings_are_skipped() {
        let checks = checks(&Readings::default(), &load(10_000, 50_000.0, 0.0));
        assert!(
            checks.iter().all(|c| c.status == Status::Skip),
            "{checks:#?}"
        );
    }

    #[test]
    fn readings_parse_a_proc_sys_tree() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("net/core/somaxconn", "4096\n"),
            ("net/ipv4/tcp_max_syn_backlog", "512\n"),
            ("net/ipv4/ip_local_port_range", "32768\t60999\n"),
            ("net/ipv4/tcp_tw_reuse", "2\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let r = Readings::read_from(dir.path());
        assert_eq!(r.somaxconn, Some(4096));
        assert_eq!(r.tcp_max_syn_backlog, Some(512));
        assert_eq!(r.ip_local_port_range, Some((32_768, 60_999)));
        assert_eq!(r.tcp_tw_reuse, Some(2));
        assert!(r.nofile_soft.is_some());
        let empty = Readings::read_from(&dir.path().join("missing"));
        assert_eq!(empty.somaxconn, None);
        assert_eq!(empty.ip_local_port_range, None);
    }

    #[test]
    fn load_is_estimated_from_a_scenario() {
        let text = r#"
            [[phases]]
            rate = 20000
            duration = "10s"
            [request]
            headers = { connection = "close" }
            [client]
            max_connections = 3000
            threads = 3
        "#;
        let overrides = crate::scenario::Overrides {
            target: Some("http://127.0.0.1:8080/".into()),
            ..Default::default()
        };
        let s = crate::scenario::parse(text, &crate::scenario::Source::Flags, &overrides)
            .expect("valid scenario");
        let l = Load::of(&s);
        assert_eq!(l.connections, 3000);
        assert_eq!(l.threads, 3);
        assert_eq!(l.peak_rate_per_s, 20_000.0);
        assert_eq!(l.accept_burst, 2000);
        assert_eq!(l.client_closes_per_s, 20_000.0);
        assert!(l.listener_local && l.target_loopback);

        let remote = crate::scenario::Overrides {
            target: Some("http://192.0.2.1:8080/".into()),
            ..Default::default()
        };
        let s = crate::scenario::parse(
            "[[phases]]\nrate = 100\nduration = \"1s\"\n",
            &crate::scenario::Source::Flags,
            &remote,
        )
        .expect("valid scenario");
        let l = Load::of(&s);
        assert!(!l.listener_local && !l.target_loopback);
        assert_eq!(l.client_closes_per_s, 0.0);
        assert_eq!(l.accept_burst, 10);
    }

    #[test]
    fn an_http2_burst_counts_connections_not_arrivals() {
        let burst = |client: &str| {
            let text = format!("[[phases]]\nrate = 50000\nduration = \"1s\"\n[client]\n{client}\n");
            let overrides = crate::scenario::Overrides {
                target: Some("https://127.0.0.1:8443/".into()),
                ..Default::default()
            };
            let s = crate::scenario::parse(&text, &crate::scenario::Source::Flags, &overrides)
                .expect("valid scenario");
            let l = Load::of(&s);
            (l.accept_burst, l.streams_per_connection)
        };
        // 100 ms of 50,000 arrivals/s: 5,000 arrivals.
        assert_eq!(burst(r#"http = "1.1""#), (5000, 1));
        assert_eq!(burst(r#"http = "2""#), (50, 100));
        assert_eq!(burst("http = \"2\"\nstreams_per_connection = 8"), (625, 8));
        // A new connection per request, or ALPN's choice: one per arrival.
        assert_eq!(burst("http = \"2\"\nreuse = false"), (5000, 1));
        assert_eq!(burst(r#"http = "auto""#), (5000, 1));

        let mut h2 = load(10_000, 50_000.0, 0.0);
        h2.accept_burst = 50;
        h2.streams_per_connection = 100;
        let check = somaxconn(&stock(), &h2);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(
            check
                .message
                .contains("50000/s, 100 HTTP/2 streams per connection"),
            "{}",
            check.message
        );
    }

    #[test]
    fn a_check_serializes_as_the_schema_says() {
        let c = nofile(&stock(), &load(5000, 0.0, 0.0));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["status"], "warn");
        assert_eq!(v["name"], "nofile");
        assert!(v["fix"].is_string());
        let back: Check = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
