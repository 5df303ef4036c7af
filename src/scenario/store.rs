//! `[store]` (the rate-limit store the reference gateway shares with its
//! replicas) and `[[faults]]` (what the harness does to a component at a
//! time into the measured load), validated.
//!
//! Takes their raw sections and the gateway already built; hands on a
//! [`StoreSpec`], the [`FaultSpec`]s and, for `experiment = "quota"`, its
//! [`QuotaSpec`], or the first error, located. A
//! fault that could not be applied (a component that is not started by
//! contend, a restart of one that cannot restart, a time past the load)
//! is refused here, before anything starts.

use std::time::Duration;

use toml::Spanned;

use super::build::Ctx;
use super::check::{check_cpus, quoted};
use super::raw::{RawFault, RawStore};
use super::{GatewayKind, GatewaySpec, Target};
use crate::error::Result;
use contend_gateway::store::OnStoreError;

/// Longest per-call store timeout.
const MAX_STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[store]` section, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSpec {
    /// `None`: contend starts redis-server (`kind = "redis"`); `Some`: a
    /// running store at this `redis://` URL.
    pub url: Option<String>,
    /// CPUs for the started redis-server (`server_cpulist`).
    pub cpus: Option<String>,
    /// The gateway's per-call timeout.
    pub timeout: Duration,
    /// What a store error does to a request.
    pub on_store_error: OnStoreError,
    /// `Some`: the gateways decide locally and sync this often.
    pub sync_interval: Option<Duration>,
}

impl StoreSpec {
    /// The gateway's `[store]` config for a store at `url`.
    pub fn gateway_config(&self, url: &str) -> contend_gateway::store::StoreConfig {
        contend_gateway::store::StoreConfig {
            url: url.to_string(),
            timeout: self.timeout,
            on_error: self.on_store_error,
            sync_interval: self.sync_interval,
        }
    }
}

/// Which component a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// The Redis store contend started.
    Store,
    /// The mock upstream.
    Upstream,
    /// A gateway replica, from 1 (`gateway` is replica 1; nginx's is 1).
    Gateway(usize),
}

impl FaultTarget {
    /// Its role in `components.csv` (`store`, `upstream`, `gateway`, `gateway:2`).
    pub fn role(self) -> String {
        match self {
            FaultTarget::Store => "store".into(),
            FaultTarget::Upstream => "upstream".into(),
            FaultTarget::Gateway(1) => "gateway".into(),
            FaultTarget::Gateway(n) => format!("gateway:{n}"),
        }
    }
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// SIGSTOP its processes for `for`, then SIGCONT.
    Pause,
    /// SIGKILL; with `for`, started again on its port after that long.
    Kill,
    /// SIGKILL and started again on its port at once.
    Restart,
    /// Slower for `for` (the mock upstream: CPU per request times a
    /// factor and a delay added; the reference gateway: a delay added to
    /// each request), through the component's own endpoint.
    Slow,
}

impl FaultAction {
    /// Its name in the scenario and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultAction::Pause => "pause",
            FaultAction::Kill => "kill",
            FaultAction::Restart => "restart",
            FaultAction::Slow => "slow",
        }
    }
}

/// One `[[faults]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// When, from the start of the step's load (warm-up included).
    pub at: Duration,
    /// Which component.
    pub target: FaultTarget,
    /// What is done to it.
    pub action: FaultAction,
    /// How long it lasts (pause, slow; a kill's time until the restart).
    pub duration: Option<Duration>,
    /// `action = "slow"`: how much slower.
    pub slow: Option<Slowdown>,
}

/// How much slower `action = "slow"` makes a component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowdown {
    /// The mock upstream's CPU per request is multiplied by it (1: unchanged).
    pub cpu_factor: f64,
    /// Wall time added to each request.
    pub delay: Duration,
}

impl Slowdown {
    /// The query of the component's slow endpoint that sets it.
    pub fn query(&self) -> String {
        format!(
            "cpu_factor={}&sleep_ms={}",
            self.cpu_factor,
            self.delay.as_secs_f64() * 1000.0
        )
    }
}

impl FaultSpec {
    /// When it ends: the resume or the restart (`at` when it has no length).
    pub fn until(&self) -> Duration {
        self.at + self.duration.unwrap_or_default()
    }
}

/// The sync interval of the quota experiment's cached design when
/// `[store] sync_interval` does not give one (the seeds' ~500 ms).
pub const DEFAULT_QUOTA_SYNC: Duration = Duration::from_millis(500);

/// `experiment = "quota"`, validated: the load every design runs.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSpec {
    /// The load each design runs: the scenario's phases.
    pub phases: Vec<super::Phase>,
    /// The cached design's sync interval (`[store] sync_interval`, else
    /// `DEFAULT_QUOTA_SYNC`); the other store designs call the store on
    /// every request.
    pub sync_interval: Duration,
}

/// `experiment = "quota"`: the designs differ in where the reference
/// gateway keeps its rate limit, so it needs that gateway with a
/// `rate_limit`, a `[store]`, keys to limit, and an open-loop load.
pub(super) fn build_quota(
    ctx: &Ctx,
    phases: Vec<super::Phase>,
    gateway: &GatewaySpec,
    keys: &[super::KeySpec],
    key_space: Option<&super::KeySpace>,
    closed_loop: bool,
) -> Result<QuotaSpec> {
    if closed_loop {
        return Err(ctx.whole(
            "experiment = \"quota\" offers each key a rate above or below its quota: it needs an \
             open-loop load ([[phases]]), not --connections",
        ));
    }
    if gateway.kind != GatewayKind::Reference || gateway.policies.rate_limit.is_none() {
        return Err(ctx.whole(
            "experiment = \"quota\" compares where the reference gateway keeps its rate limit: add \
             [gateway] kind = \"reference\" with rate_limit = { rate = 100, burst = 10 }",
        ));
    }
    let Some(store) = &gateway.store else {
        return Err(ctx.whole(
            "experiment = \"quota\" compares the in-process limit with a shared store: add [store] \
             kind = \"redis\" (contend starts redis-server)",
        ));
    };
    if keys.is_empty() && key_space.is_none() {
        return Err(ctx.whole(
            "experiment = \"quota\" measures admissions per key against the quota: add [[keys]] \
             (one above its quota, one below, say) or a generated [keys] count = 100000",
        ));
    }
    Ok(QuotaSpec {
        phases,
        sync_interval: store.sync_interval.unwrap_or(DEFAULT_QUOTA_SYNC),
    })
}

/// `[store]`: `kind = "redis"` (started by contend) or `url`, and the
/// gateway's use of it. Only the reference gateway keeps its limits there.
pub(super) fn build_store(
    ctx: &Ctx,
    raw: Option<Spanned<RawStore>>,
    gateway: &GatewaySpec,
) -> Result<Option<StoreSpec>> {
    let Some(raw) = raw else { return Ok(None) };
    let span = raw.span();
    let s = raw.into_inner();
    if gateway.kind != GatewayKind::Reference {
        return Err(ctx.at(
            span,
            format!(
                "[store] is where the reference gateway keeps its rate limits; [gateway] kind = \"{}\" \
                 has no use for it: remove [store], or use kind = \"reference\"",
                gateway.kind.as_str()
            ),
        ));
    }
    if gateway.policies.rate_limit.is_none() {
        return Err(ctx.at(
            span,
            "[store] keeps the gateway's rate limit, but [gateway] has none: add rate_limit = { rate = 100 }",
        ));
    }
    let url = match (&s.kind, &s.url) {
        (Some(k), Some(_)) => {
            return Err(ctx.at(
                k.span(),
                "[store] takes kind = \"redis\" (contend starts one) or url = \"redis://HOST:PORT\" (one that runs), not both",
            ));
        }
        (Some(k), None) => {
            if k.get_ref() != "redis" {
                return Err(ctx.at(
                    k.span(),
                    format!(
                        "[store] kind = {} is not known: the store is \"redis\"",
                        quoted(k.get_ref())
                    ),
                ));
            }
            None
        }
        (None, Some(url)) => {
            ctx.check(url, |u| {
                if u.starts_with("redis://") && redis_url_ok(u) {
                    Ok(())
                } else {
                    Err(format!(
                        "[store] url {} is not a Redis URL: write redis://HOST:PORT",
                        quoted(u)
                    ))
                }
            })?;
            Some(url.get_ref().clone())
        }
        (None, None) => {
            return Err(ctx.at(
                span,
                "[store] needs kind = \"redis\" (contend starts redis-server) or url = \"redis://HOST:PORT\"",
            ));
        }
    };
    if let Some(c) = &s.cpus {
        if url.is_some() {
            return Err(ctx.at(
                c.span(),
                "[store] cpus places a redis-server contend starts: it goes with kind = \"redis\", not url",
            ));
        }
        ctx.check(c, |c| check_cpus("[store] cpus", c))?;
    }
    let positive = |what: &str, d: &Spanned<super::raw::HumanDuration>, max: Duration| {
        ctx.check(d, |d| {
            if d.0.is_zero() || d.0 > max {
                Err(format!(
                    "[store] {what} must be more than 0 and at most {}s, like \"50ms\"",
                    max.as_secs()
                ))
            } else {
                Ok(())
            }
        })
        .map(|()| d.get_ref().0)
    };
    Ok(Some(StoreSpec {
        url,
        cpus: s.cpus.map(Spanned::into_inner),
        timeout: match &s.timeout {
            Some(t) => positive("timeout", t, MAX_STORE_TIMEOUT)?,
            None => contend_gateway::store::DEFAULT_TIMEOUT,
        },
        on_store_error: s.on_store_error.unwrap_or_default(),
        sync_interval: match &s.sync_interval {
            Some(t) => Some(positive("sync_interval", t, Duration::from_secs(60))?),
            None => None,
        },
    }))
}

fn redis_url_ok(url: &str) -> bool {
    let rest = &url["redis://".len()..];
    let host_port = rest.split('/').next().unwrap_or("");
    host_port
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
}

/// `[[faults]]`, each against what this scenario starts. `load` is the
/// longest load a step offers, when known before the run: a fault past it
/// would never happen.
pub(super) fn build_faults(
    ctx: &Ctx,
    raw: Option<Vec<Spanned<RawFault>>>,
    gateway: &GatewaySpec,
    store: Option<&StoreSpec>,
    target: &Target,
    load: Option<Duration>,
) -> Result<Vec<FaultSpec>> {
    let mut out = Vec::new();
    for entry in raw.unwrap_or_default() {
        let span = entry.span();
        let f = entry.into_inner();
        let at = f.at.as_ref().ok_or_else(|| {
            ctx.at(
                span.clone(),
                "[[faults]] has no at: give at = \"5s\" (from the start of the load)",
            )
        })?;
        let component = f.component.as_ref().ok_or_else(|| {
            ctx.at(
                span.clone(),
                "[[faults]] has no component: give component = \"store\", \"upstream\", \"gateway\" or \"gateway:2\"",
            )
        })?;
        let action = f.action.as_ref().ok_or_else(|| {
            ctx.at(
                span.clone(),
                "[[faults]] has no action: give action = \"pause\", \"kill\", \"restart\" or \"slow\"",
            )
        })?;
        let target_of = parse_target(component.get_ref(), gateway, store, target)
            .map_err(|m| ctx.at(component.span(), m))?;
        let action_of = match action.get_ref().as_str() {
            "pause" => FaultAction::Pause,
            "kill" => FaultAction::Kill,
            "restart" => FaultAction::Restart,
            "slow" => FaultAction::Slow,
            other => {
                return Err(ctx.at(
                    action.span(),
                    format!(
                        "[[faults]] action = {} is not known: use \"pause\", \"kill\", \"restart\" or \"slow\"",
                        quoted(other)
                    ),
                ));
            }
        };
        let duration = f.duration.as_ref().map(|d| d.get_ref().0);
        let restarts = matches!(action_of, FaultAction::Restart)
            || (action_of == FaultAction::Kill && duration.is_some());
        if restarts && target_of != FaultTarget::Store {
            return Err(ctx.at(
                action.span(),
                format!(
                    "[[faults]] only the store can be started again (a restart, or a kill with for): the {} \
                     would lose its state and port; kill it without for, or pause it",
                    target_of.role()
                ),
            ));
        }
        let slow = slowdown(ctx, span.clone(), &f, action_of, target_of, gateway)?;
        match (action_of, duration) {
            (FaultAction::Slow, None) => {
                return Err(ctx.at(
                    span,
                    "[[faults]] action = \"slow\" needs for = \"3s\" (how long it stays slow)",
                ));
            }
            (FaultAction::Pause, None) => {
                return Err(ctx.at(
                    span,
                    "[[faults]] action = \"pause\" needs for = \"3s\" (how long it stays stopped)",
                ));
            }
            (FaultAction::Restart, Some(_)) => {
                return Err(ctx.at(
                    span,
                    "[[faults]] action = \"restart\" is at once: remove for (a kill with for restarts after that long)",
                ));
            }
            (_, Some(d)) if d.is_zero() => {
                return Err(ctx.at(span, "[[faults]] for must be more than 0, like \"3s\""));
            }
            _ => {}
        }
        let spec = FaultSpec {
            at: at.get_ref().0,
            target: target_of,
            action: action_of,
            duration,
            slow,
        };
        if let Some(load) = load
            && spec.until() >= load
        {
            return Err(ctx.at(
                at.span(),
                format!(
                    "[[faults]] at {} (and for) ends at {:.1} s, past the load's {:.1} s: move it inside the load",
                    quoted(&format!("{:?}", spec.at)),
                    spec.until().as_secs_f64(),
                    load.as_secs_f64()
                ),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// `action = "slow"`'s slowdown (`cpu_factor`, `delay`), where the
/// component has a way to be slowed: the mock upstream's `POST /slow`, the
/// reference gateway's `POST /_contend/slow` (delay only, in cleartext).
/// nginx, HAProxy and the store are refused, saying why.
fn slowdown(
    ctx: &Ctx,
    span: std::ops::Range<usize>,
    f: &RawFault,
    action: FaultAction,
    target: FaultTarget,
    gateway: &GatewaySpec,
) -> Result<Option<Slowdown>> {
    if action != FaultAction::Slow {
        if let Some(s) = f
            .cpu_factor
            .as_ref()
            .map(|c| c.span())
            .or(f.delay.as_ref().map(|d| d.span()))
        {
            return Err(ctx.at(
                s,
                "[[faults]] cpu_factor and delay go with action = \"slow\"",
            ));
        }
        return Ok(None);
    }
    let refuse =
        |why: &str| Err(ctx.at(span.clone(), format!("[[faults]] action = \"slow\" {why}")));
    match target {
        FaultTarget::Store => {
            return refuse(
                "cannot apply to the store: redis-server has no way to slow each command (DEBUG SLEEP blocks every client at once, which is a pause): use action = \"pause\" with for",
            );
        }
        FaultTarget::Gateway(_) if gateway.kind != GatewayKind::Reference => {
            return refuse(&format!(
                "cannot apply to {}: it has no endpoint to slow its requests; slow the upstream (component = \"upstream\") or pause the gateway",
                gateway.kind.as_str()
            ));
        }
        FaultTarget::Gateway(_) if gateway.tls => {
            return refuse(
                "on the reference gateway is set over cleartext HTTP: not with [gateway] tls; slow the upstream instead",
            );
        }
        _ => {}
    }
    let cpu_factor = match &f.cpu_factor {
        Some(c) => {
            ctx.check(c, |c| {
                if *c > 0.0 && *c <= 1000.0 {
                    Ok(())
                } else {
                    Err(
                        "[[faults]] cpu_factor must be more than 0 and at most 1000, like 4"
                            .to_string(),
                    )
                }
            })?;
            if matches!(target, FaultTarget::Gateway(_)) {
                return Err(ctx.at(
                    c.span(),
                    "[[faults]] cpu_factor is the mock upstream's CPU per request: the gateway takes only delay",
                ));
            }
            *c.get_ref()
        }
        None => 1.0,
    };
    let delay = f.delay.as_ref().map_or(Duration::ZERO, |d| d.get_ref().0);
    if cpu_factor == 1.0 && delay.is_zero() {
        return refuse(
            "needs how much slower: cpu_factor = 4 (the upstream's CPU per request) and/or delay = \"50ms\" (added to each request)",
        );
    }
    if delay > Duration::from_secs(60) {
        return refuse("delay must be at most 60s");
    }
    Ok(Some(Slowdown { cpu_factor, delay }))
}

/// `store`, `upstream`, `gateway`, `gateway:N` or `nginx`, when this
/// scenario starts it.
fn parse_target(
    name: &str,
    gateway: &GatewaySpec,
    store: Option<&StoreSpec>,
    target: &Target,
) -> std::result::Result<FaultTarget, String> {
    let started_gateway = matches!(
        gateway.kind,
        GatewayKind::Reference | GatewayKind::Nginx | GatewayKind::Haproxy
    );
    match name {
        "store" => match store {
            Some(StoreSpec { url: None, .. }) => Ok(FaultTarget::Store),
            _ => Err("[[faults]] component = \"store\" needs a store contend starts: [store] kind = \"redis\"".into()),
        },
        "upstream" => match target {
            Target::Mock(_) => Ok(FaultTarget::Upstream),
            Target::Url(_) | Target::Urls(..) => Err("[[faults]] component = \"upstream\": contend did not start the upstream (it is a URL), so it cannot fault it".into()),
        },
        "nginx" if gateway.kind == GatewayKind::Nginx => Ok(FaultTarget::Gateway(1)),
        "haproxy" if gateway.kind == GatewayKind::Haproxy => Ok(FaultTarget::Gateway(1)),
        "gateway" if started_gateway => Ok(FaultTarget::Gateway(1)),
        _ => {
            let n = name
                .strip_prefix("gateway:")
                .and_then(|n| n.parse::<usize>().ok());
            match n {
                Some(n) if started_gateway && (1..=gateway.replicas).contains(&n) => {
                    Ok(FaultTarget::Gateway(n))
                }
                Some(n) if started_gateway => Err(format!(
                    "[[faults]] component = \"gateway:{n}\": there are {} gateway replica(s), numbered from 1",
                    gateway.replicas
                )),
                _ => Err(format!(
                    "[[faults]] component = {} is not a component contend starts here: use \"store\", \
                     \"upstream\", \"gateway\" or \"gateway:N\" (or \"nginx\", \"haproxy\" for those gateways)",
                    quoted(name)
                )),
            }
        }
    }
}
