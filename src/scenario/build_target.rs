//! What the driver sends to and through: `[target]` (a running server),
//! `[upstream]` (the embedded mock, or an external one) and `[gateway]`,
//! with `--target` over them.
//!
//! Takes their raw sections; hands on a [`Target`] (and the request path a
//! `--target` URL carries) and a [`GatewaySpec`], or the first error,
//! located. The gateway's policy tables are validated by the gateway's own
//! code (`contend_gateway::config::RawPolicies`), so a scenario and a
//! gateway config accept exactly the same policies.

use std::ops::Range;

use contend_units::de::Num;
use toml::Spanned;

use super::build::{Ctx, cli};
use super::check::{check_cpus, check_int, check_positive_duration, check_work_duration, quoted};
use super::raw::{
    CpuDist, OnDisconnect, RawGateway, RawGatewayKind, RawTarget, RawUpstream, UpstreamKind,
    Workers,
};
use super::url::{mask_userinfo, parse_http_url};
use super::{
    GatewayKind, GatewaySpec, MAX_DURATION, MockUpstreamSpec, Overrides, RequestSpec, ScrapeSource,
    ScrapeSpec, Target,
};
use crate::error::Result;

/// `--target`, `[target]` or `[upstream]`, at most one of the two
/// sections; the mock upstream with its defaults when none is given. A
/// `--target` URL's path becomes the request's.
pub(super) fn build_target(
    ctx: &Ctx,
    target: Option<&Spanned<RawTarget>>,
    upstream: Option<&Spanned<RawUpstream>>,
    overrides: &Overrides,
    request: &mut RequestSpec,
) -> Result<Target> {
    if let Some(url) = &overrides.target {
        let parsed = parse_http_url("--target", url).map_err(cli)?;
        if let Some(path) = parsed.path {
            request.path = path;
        }
        return Ok(Target::Url(parsed.base));
    }
    match (target, upstream) {
        (Some(_), Some(up)) => Err(ctx.at(
            up.span(),
            "both [target] and [upstream] are given: choose one ([target] url = \"http://HOST:PORT\" for a running \
             server, or [upstream] for the embedded mock upstream)",
        )),
        (Some(t), None) => match (&t.get_ref().url, &t.get_ref().urls) {
            (Some(_), Some(urls)) => Err(ctx.at(
                urls.span(),
                "[target] has both url and urls: give one address as url = \"http://HOST:PORT\", or \
                 several as urls = [\"http://HOST:PORT\", ...]",
            )),
            (Some(url), None) => Ok(Target::Url(file_url(ctx, "[target] url", url)?)),
            (None, Some(urls)) => target_urls(ctx, urls),
            (None, None) => Err(ctx.at(
                t.span(),
                "[target] has no url: give url = \"http://HOST:PORT\", or remove [target] to drive the embedded mock upstream",
            )),
        },
        (None, Some(up)) => build_upstream(ctx, up),
        (None, None) => Ok(Target::Mock(MockUpstreamSpec::default())),
    }
}

/// `[target] urls`: at least one, each valid and without a path, all of
/// one scheme, none twice; the driver spreads its connections over them.
fn target_urls(ctx: &Ctx, urls: &Spanned<Vec<Spanned<String>>>) -> Result<Target> {
    let mut bases: Vec<String> = Vec::new();
    for (i, url) in urls.get_ref().iter().enumerate() {
        let base = file_url(ctx, &format!("[target] urls entry {}", i + 1), url)?;
        if let Some(first) = bases.first() {
            let scheme = |u: &str| u.split("://").next().unwrap_or_default().to_string();
            if scheme(first) != scheme(&base) {
                return Err(ctx.at(
                    url.span(),
                    format!(
                        "[target] urls mixes {}:// and {}://: every address of one target speaks the same \
                         scheme (give them all as {}://)",
                        scheme(first),
                        scheme(&base),
                        scheme(first)
                    ),
                ));
            }
        }
        if bases.contains(&base) {
            return Err(ctx.at(
                url.span(),
                format!(
                    "[target] urls lists {} twice: give each address once",
                    quoted(&base)
                ),
            ));
        }
        bases.push(base);
    }
    let mut bases = bases.into_iter();
    let Some(first) = bases.next() else {
        return Err(ctx.at(
            urls.span(),
            "[target] urls is empty: give at least one address, like urls = [\"http://127.0.0.1:8080\"]",
        ));
    };
    let more: Vec<String> = bases.collect();
    if more.is_empty() {
        Ok(Target::Url(first))
    } else {
        Ok(Target::Urls(first, more))
    }
}

/// A URL from the file: valid, and without a path (that belongs in [request]).
fn file_url(ctx: &Ctx, what: &str, url: &Spanned<String>) -> Result<String> {
    let parsed = parse_http_url(what, url.get_ref()).map_err(|m| ctx.at(url.span(), m))?;
    if let Some(path) = parsed.path {
        return Err(ctx.at(
            url.span(),
            format!(
                "{what} {} has a path: give only http://HOST:PORT here and put the path in [request] path = {}",
                quoted(&mask_userinfo(url.get_ref())),
                quoted(&path)
            ),
        ));
    }
    Ok(parsed.base)
}

/// `[upstream]`: the embedded mock (the default) and its settings, or an
/// external server at a URL.
fn build_upstream(ctx: &Ctx, spanned: &Spanned<RawUpstream>) -> Result<Target> {
    let up = spanned.get_ref();
    let kind = up
        .kind
        .as_ref()
        .map_or(UpstreamKind::Mock, |k| *k.get_ref());
    if kind == UpstreamKind::External {
        return external_upstream(ctx, spanned);
    }
    if let Some(url) = &up.url {
        return Err(ctx.at(
            url.span(),
            "[upstream] url is for kind = \"external\"; the embedded mock (kind = \"mock\", the default) picks its own port",
        ));
    }
    Ok(Target::Mock(mock_upstream(ctx, up)?))
}

/// `[upstream] kind = "external"`: a URL and nothing of the mock's.
fn external_upstream(ctx: &Ctx, spanned: &Spanned<RawUpstream>) -> Result<Target> {
    let up = spanned.get_ref();
    let Some(url) = &up.url else {
        return Err(ctx.at(
            spanned.span(),
            "[upstream] kind = \"external\" needs url = \"http://HOST:PORT\"",
        ));
    };
    let mock_only = up.workers.is_some()
        || up.backlog.is_some()
        || up.on_disconnect.is_some()
        || up.cpu.is_some()
        || up.cpu_dist.is_some()
        || up.cpu_sigma.is_some()
        || up.sleep.is_some()
        || up.bytes.is_some()
        || up.status.is_some()
        || up.cpus.is_some()
        || up.seed.is_some();
    if mock_only {
        return Err(ctx.at(
            spanned.span(),
            "[upstream] kind = \"external\" takes only url: workers, backlog, on_disconnect, cpu, cpu_dist, \
             cpu_sigma, sleep, bytes, status, cpus and seed set up the embedded mock (kind = \"mock\")",
        ));
    }
    Ok(Target::Url(file_url(ctx, "[upstream] url", url)?))
}

/// The embedded mock's settings, each in range; what is not given is left
/// to the mock's own defaults.
fn mock_upstream(ctx: &Ctx, up: &RawUpstream) -> Result<MockUpstreamSpec> {
    let mut spec = MockUpstreamSpec::default();
    if let Some(w) = &up.workers {
        spec.workers = match w.get_ref() {
            Workers::Unbounded => None,
            Workers::Count(n) => {
                check_int("[upstream] workers", *n, 1, 100_000).map_err(|m| ctx.at(w.span(), m))?;
                Some(*n as u32)
            }
        };
    }
    if let Some(b) = &up.backlog {
        ctx.check(b, |n| check_int("[upstream] backlog", n.0, 0, 1_000_000))?;
        spec.backlog = Some(b.get_ref().0 as u32);
    }
    spec.on_disconnect = up.on_disconnect.map(|o| match o {
        OnDisconnect::Run => "run".to_string(),
        OnDisconnect::Cancel => "cancel".to_string(),
    });
    if let Some(cpu) = &up.cpu {
        ctx.check(cpu, |d| check_work_duration("[upstream] cpu", d.0))?;
        spec.cpu_ms = Some(cpu.get_ref().0.as_secs_f64() * 1e3);
    }
    spec.cpu_dist = up.cpu_dist.map(|d| {
        match d {
            CpuDist::Constant => "constant",
            CpuDist::Exponential => "exponential",
            CpuDist::Lognormal => "lognormal",
        }
        .to_string()
    });
    if let Some(sigma) = &up.cpu_sigma {
        ctx.check(sigma, |Num(s)| {
            if s.is_finite() && (0.0..=10.0).contains(s) {
                Ok(())
            } else {
                Err(format!(
                    "[upstream] cpu_sigma must be between 0 and 10, got {s}"
                ))
            }
        })?;
        spec.cpu_sigma = Some(sigma.get_ref().0);
    }
    if let Some(sleep) = &up.sleep {
        ctx.check(sleep, |d| check_work_duration("[upstream] sleep", d.0))?;
        spec.sleep_ms = Some(sleep.get_ref().0.as_secs_f64() * 1e3);
    }
    if let Some(b) = &up.bytes {
        ctx.check(b, |n| check_int("[upstream] bytes", n.0, 0, 1 << 30))?;
        spec.bytes = Some(b.get_ref().0 as u64);
    }
    if let Some(s) = &up.status {
        ctx.check(s, |n| check_int("[upstream] status", n.0, 100, 599))?;
        spec.status = Some(s.get_ref().0 as u16);
    }
    if let Some(c) = &up.cpus {
        ctx.check(c, |c| check_cpus("[upstream] cpus", c))?;
        spec.cpus = Some(c.get_ref().clone());
    }
    if let Some(s) = &up.seed {
        ctx.check(s, |n| check_int("[upstream] seed", n.0, 0, i64::MAX))?;
        spec.seed = Some(s.get_ref().0 as u64);
    }
    Ok(spec)
}

/// `[gateway]`: its kind (the reference gateway by default), the policies
/// (validated as the gateway validates its own file), and what that kind
/// can take.
pub(super) fn build_gateway(
    ctx: &Ctx,
    spanned: Spanned<RawGateway>,
    has_target: bool,
) -> Result<GatewaySpec> {
    let span = spanned.span();
    let g = spanned.into_inner();
    let kind = match g.kind.as_ref().map(|k| *k.get_ref()) {
        None | Some(RawGatewayKind::Reference) => GatewayKind::Reference,
        Some(RawGatewayKind::Nginx) => GatewayKind::Nginx,
        Some(RawGatewayKind::Haproxy) => GatewayKind::Haproxy,
        Some(RawGatewayKind::External) => GatewayKind::External,
        Some(RawGatewayKind::None) => GatewayKind::None,
    };
    let policies = contend_gateway::config::RawPolicies {
        upstream_timeout: g.upstream_timeout,
        rate_limit: g.rate_limit,
        budget: g.budget,
        concurrency: g.concurrency,
        breaker: g.breaker,
    };
    let policies = policies
        .validate("[gateway]")
        .map_err(|(at, m)| ctx.at(at, m))?;
    let mut spec = GatewaySpec {
        kind,
        url: None,
        abort_accounting: g.abort_accounting.unwrap_or_default(),
        abort_charge: None,
        policies,
        cpus: None,
        template: g.template,
        tls: g.tls.as_ref().is_some_and(|t| *t.get_ref()),
        http2: g.http2.as_ref().is_some_and(|t| *t.get_ref()),
        replicas: 1,
        store: None,
    };
    if let Some(r) = &g.replicas {
        ctx.check(r, |n| check_int("[gateway] replicas", n.0, 1, 16))?;
        if kind != GatewayKind::Reference && r.get_ref().0 != 1 {
            return Err(ctx.at(
                r.span(),
                format!("[gateway] replicas: contend starts replicas of the reference gateway only, not {name}: remove replicas, or use kind = \"reference\"", name = kind.as_str()),
            ));
        }
        spec.replicas = r.get_ref().0 as usize;
    }
    if let Some(c) = &g.abort_charge {
        ctx.check(c, |d| {
            check_positive_duration("[gateway] abort_charge", d.0, MAX_DURATION)
        })?;
        spec.abort_charge = Some(c.get_ref().0);
    }
    if let Some(c) = &g.cpus {
        ctx.check(c, |c| check_cpus("[gateway] cpus", c))?;
        spec.cpus = Some(c.get_ref().clone());
    }
    let name = kind.as_str();
    match (&g.url, kind) {
        (Some(url), GatewayKind::External) => spec.url = Some(file_url(ctx, "[gateway] url", url)?),
        (None, GatewayKind::External) => {
            return Err(ctx.at(span, "[gateway] kind = \"external\" needs url = \"http://HOST:PORT\" (where the gateway listens)"));
        }
        (Some(url), _) => {
            return Err(ctx.at(
                url.span(),
                format!("[gateway] url is for kind = \"external\"; kind = \"{name}\" is started by contend on its own port"),
            ));
        }
        (None, _) => {}
    }
    if kind == GatewayKind::External && has_target {
        return Err(ctx.at(
            span,
            "[gateway] kind = \"external\" is driven at its url and has its own upstream: remove [target] and [upstream]",
        ));
    }
    check_gateway_takes(ctx, span, name, &spec, g.abort_accounting.is_some())?;
    Ok(spec)
}

/// What a gateway kind can take: nginx and HAProxy have no directive for
/// some of the reference gateway's settings (see [`unsupported`]), and
/// contend neither starts nor configures an external gateway or none
/// (`accounting_given`: `abort_accounting` was written, even as its
/// default); a template is nginx's or HAProxy's.
fn check_gateway_takes(
    ctx: &Ctx,
    span: Range<usize>,
    name: &str,
    spec: &GatewaySpec,
    accounting_given: bool,
) -> Result<()> {
    let kind = spec.kind;
    let p = &spec.policies;
    if let Some(what) = unsupported(spec).first() {
        return Err(ctx.at(
            span,
            format!(
                "[gateway] {} is a reference-gateway policy that {name} has no directive for{}: remove it, or use kind = \"reference\"",
                what.name(),
                what.why(kind)
            ),
        ));
    }
    let has_settings = p != &contend_gateway::Policies::default()
        || spec.abort_charge.is_some()
        || accounting_given
        || spec.cpus.is_some()
        || spec.template.is_some()
        || spec.tls
        || spec.http2;
    if matches!(kind, GatewayKind::External | GatewayKind::None) && has_settings {
        return Err(ctx.at(
            span,
            format!("[gateway] kind = \"{name}\" takes no policies or settings: contend does not start or configure it"),
        ));
    }
    if kind == GatewayKind::Haproxy && (spec.tls || spec.http2) {
        return Err(ctx.at(
            span,
            "[gateway] tls and http2: contend starts HAProxy in cleartext HTTP/1.1 only: remove them, or use \
             kind = \"nginx\" or \"reference\" for a gateway with TLS and HTTP/2",
        ));
    }
    if spec.template.is_some() && !matches!(kind, GatewayKind::Nginx | GatewayKind::Haproxy) {
        return Err(ctx.at(
            span,
            "[gateway] template is for kind = \"nginx\" or \"haproxy\"",
        ));
    }
    Ok(())
}

/// Names a `[[scrape]]` target may not take: the components' own rows.
const RESERVED_SCRAPE_NAMES: [&str; 2] = ["upstream", "gateway"];

/// `[[scrape]]`: each a name and one of `url` (a Prometheus endpoint, with
/// the `series` to keep) or `pid` (a process the user started).
pub(super) fn build_scrape(
    ctx: &Ctx,
    raw: Option<Vec<Spanned<super::raw::RawScrape>>>,
) -> Result<Vec<ScrapeSpec>> {
    let mut out: Vec<ScrapeSpec> = Vec::new();
    for entry in raw.unwrap_or_default() {
        let span = entry.span();
        let e = entry.into_inner();
        let name = e.name.as_ref().ok_or_else(|| {
            ctx.at(
                span.clone(),
                "[[scrape]] has no name: give name = \"gw\" (its name in components.csv)",
            )
        })?;
        ctx.check(name, |n| {
            let n = n.as_str();
            if n.is_empty()
                || n.len() > 40
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "[[scrape]] name {} is not a usable name: use 1 to 40 letters, digits, '-', '_' or '.'",
                    quoted(n)
                ));
            }
            if RESERVED_SCRAPE_NAMES.contains(&n) {
                return Err(format!(
                    "[[scrape]] name {} is the harness's own component's: choose another",
                    quoted(n)
                ));
            }
            if out.iter().any(|s| s.name == n) {
                return Err(format!("[[scrape]] name {} is given twice", quoted(n)));
            }
            Ok(())
        })?;
        let source = match (&e.url, &e.pid) {
            (Some(url), None) => {
                let parsed = parse_http_url("[[scrape]] url", url.get_ref())
                    .map_err(|m| ctx.at(url.span(), m))?;
                let authority = parsed.base.trim_start_matches("http://").to_string();
                ScrapeSource::Metrics {
                    url: url.get_ref().clone(),
                    authority,
                    path: parsed.path.unwrap_or_else(|| "/metrics".to_string()),
                    series: e.series.map(Spanned::into_inner).unwrap_or_default(),
                }
            }
            (None, Some(pid)) => {
                ctx.check(pid, |p| {
                    if p.0 > 0 && p.0 <= i64::from(i32::MAX) {
                        Ok(())
                    } else {
                        Err(format!(
                            "[[scrape]] pid is a process ID, more than 0, got {}",
                            p.0
                        ))
                    }
                })?;
                if let Some(series) = &e.series {
                    return Err(ctx.at(
                        series.span(),
                        "[[scrape]] series selects a metrics page's series: it goes with url, not pid",
                    ));
                }
                ScrapeSource::Pid(pid.get_ref().0 as u32)
            }
            _ => {
                return Err(ctx.at(
                    span,
                    "[[scrape]] reads one thing: give url = \"http://127.0.0.1:9100/metrics\" (a Prometheus \
                     endpoint) or pid = 1234 (a process), not both",
                ));
            }
        };
        out.push(ScrapeSpec {
            name: name.get_ref().clone(),
            source,
        });
    }
    Ok(out)
}

/// A reference-gateway setting that another kind has no directive for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// The per-key worker-time budget.
    Budget,
    /// The circuit breaker.
    Breaker,
    /// A concurrency queue (nginx's `limit_conn` refuses at once).
    Queue,
    /// A fixed charge for an early abort.
    AbortCharge,
    /// `Retry-After` on the concurrency limit's 503s.
    RetryAfter,
}

impl Unsupported {
    /// Its name in messages (`budget`).
    pub fn name(self) -> &'static str {
        match self {
            Unsupported::Budget => "budget",
            Unsupported::Breaker => "breaker",
            Unsupported::Queue => "a concurrency queue",
            Unsupported::AbortCharge => "abort_charge",
            Unsupported::RetryAfter => "a concurrency retry_after",
        }
    }

    /// Why `kind` cannot take it, where that is not plain: HAProxy's
    /// nearest to the breaker (`observe layer7` with `error-limit`) counts
    /// consecutive errors and marks the server down until a health check
    /// brings it back, not a share of errors over a window with probes.
    fn why(self, kind: GatewayKind) -> &'static str {
        match (self, kind) {
            (Unsupported::Breaker, GatewayKind::Haproxy) => {
                " (its `observe layer7` with `error-limit` counts consecutive errors and marks the server down until a health check, not a share over a window)"
            }
            _ => "",
        }
    }

    /// Takes it out of `spec`.
    pub fn remove(self, spec: &mut GatewaySpec) {
        let p = &mut spec.policies;
        match self {
            Unsupported::Budget => p.budget = None,
            Unsupported::Breaker => p.breaker = None,
            Unsupported::Queue => {
                if let Some(c) = p.concurrency.as_mut() {
                    c.queue = 0;
                }
            }
            Unsupported::AbortCharge => spec.abort_charge = None,
            Unsupported::RetryAfter => {
                if let Some(c) = p.concurrency.as_mut() {
                    c.retry_after = None;
                }
            }
        }
    }
}

/// The settings of `spec` its kind has no directive for. nginx: the
/// budget, the breaker, a queue and `abort_charge`. HAProxy queues
/// (`maxconn` and `timeout queue`) but has no budget, charges no fixed
/// time for an abort and has no breaker of this shape. The abort audit
/// drops the same settings for these kinds' modes.
pub fn unsupported(spec: &GatewaySpec) -> Vec<Unsupported> {
    let p = &spec.policies;
    let queue_ok = spec.kind == GatewayKind::Haproxy;
    let set = [
        (Unsupported::Budget, p.budget.is_some()),
        (Unsupported::Breaker, p.breaker.is_some()),
        (
            Unsupported::Queue,
            !queue_ok && p.concurrency.is_some_and(|c| c.queue > 0),
        ),
        (Unsupported::AbortCharge, spec.abort_charge.is_some()),
        (
            Unsupported::RetryAfter,
            p.concurrency.is_some_and(|c| c.retry_after.is_some()),
        ),
    ];
    match spec.kind {
        GatewayKind::Nginx | GatewayKind::Haproxy => set
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(what, _)| what)
            .collect(),
        GatewayKind::Reference | GatewayKind::External | GatewayKind::None => Vec::new(),
    }
}
