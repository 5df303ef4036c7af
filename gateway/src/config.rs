//! The gateway's configuration: the TOML file `contend gateway --config FILE`
//! reads, its validation, and the per-route policy tables that a scenario's
//! `[gateway]` section shares.
//!
//! Takes TOML text; hands on a validated [`Config`]. Every error is an
//! [`Error::Config`] located at `file:line:col` (exit code 2) that says
//! what would be valid. It opens no sockets.
//!
//! ```toml
//! upstream = "http://127.0.0.1:8081"   # required
//! listen = "127.0.0.1:0"               # default
//! abort_accounting = "early"           # "early" (nginx default) or "complete"
//! abort_charge = "5s"                  # optional: what an early abort charges instead of its time
//! access_log = "/tmp/gw/access.log"    # optional
//! access_log_format = "text"           # or "json"
//! key_header = "x-api-key"             # default
//! threads = 2                          # runtime threads; default: the cores
//! cpus = "0"                           # pin every thread to these CPUs
//! tls_cert = "/tmp/gw/cert.pem"        # optional: listen with TLS (with tls_key)
//! tls_key = "/tmp/gw/key.pem"
//! http2 = true                         # also HTTP/2: ALPN h2 over TLS, h2c in cleartext
//!
//! [[routes]]                           # none: one route "/" with no policy
//! prefix = "/"
//! upstream_timeout = "2s"
//! rate_limit = { rate = 100, burst = 10 }
//! budget = { budget = "1s", window = "10s", penalty = "5s" }
//! concurrency = { max = 4, queue = 8, queue_timeout = "500ms", retry_after = "1s" }  # retry_after: on its 503s
//! breaker = { error_share = 0.5, window = "10s", min_requests = 20, cool_down = "5s", probes = 1 }
//!
//! [store]                              # optional: rate limits counted in Redis, shared by replicas
//! url = "redis://127.0.0.1:6379"
//! timeout = "50ms"                     # per call; past it, on_store_error decides
//! on_store_error = "open"              # "open" (admit) or "closed" (503)
//! sync_interval = "500ms"              # optional: decide locally, sync this often
//! ```

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use contend_units::de::{GatewayWords, HumanDuration, HumanRate};
use contend_units::located::LocatedError;
use toml::Spanned;

use crate::access_log::{AccessRecord, LogFormat};
use crate::error::{Error, Result};
use crate::policy::breaker::BreakerRule;
use crate::policy::budget::BudgetRule;
use crate::policy::concurrency::ConcurrencyRule;
use crate::store::{RawStore, StoreConfig};

/// What the gateway does when its client leaves before the upstream answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AbortAccounting {
    /// nginx's default (`proxy_ignore_client_abort off`): drop the upstream
    /// request, log 499 at once with `upstream_status` `-` and the time until
    /// the abort, and account that time.
    #[default]
    Early,
    /// `proxy_ignore_client_abort on`: let the upstream request finish; log
    /// and account its real status and time.
    Complete,
}

impl AbortAccounting {
    /// `early` or `complete`.
    pub fn as_str(self) -> &'static str {
        match self {
            AbortAccounting::Early => "early",
            AbortAccounting::Complete => "complete",
        }
    }
}

/// A validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a port).
    pub listen: SocketAddr,
    /// Upstream base URL, `http://host:port`.
    pub upstream: String,
    /// Client-abort behaviour.
    pub abort_accounting: AbortAccounting,
    /// Early mode: charge this for an aborted request instead of its time
    /// (the seed's Lua bouncer charged a fixed default period).
    pub abort_charge: Option<Duration>,
    /// Access log file; `None` writes none.
    pub access_log: Option<PathBuf>,
    /// Text (nginx's shape) or JSON lines.
    pub access_log_format: LogFormat,
    /// Header that names the API key (lower case).
    pub key_header: String,
    /// Runtime threads for `contend gateway`; `None`: the cores it may use.
    pub threads: Option<usize>,
    /// CPUs `contend gateway` is pinned to (all its threads); `None`: not pinned.
    pub cpus: Option<Vec<usize>>,
    /// `tls_cert` and `tls_key`: listen with TLS on this certificate chain
    /// and key (PEM files); `None`: cleartext.
    pub tls: Option<TlsFiles>,
    /// Speak HTTP/2 beside HTTP/1.1 (ALPN `h2` over TLS, prior knowledge
    /// in cleartext).
    pub http2: bool,
    /// Routes, longest prefix first.
    pub routes: Vec<Route>,
    /// In-process use: every access record is also sent here (tests wait on
    /// it instead of polling the file).
    pub tap: Option<tokio::sync::mpsc::UnboundedSender<AccessRecord>>,
    /// `[store]`: the rate limits kept in Redis, shared with other
    /// replicas; `None`: in this process's memory.
    pub store: Option<StoreConfig>,
}

impl Config {
    /// A configuration proxying to `upstream` with one route `/` and `policies`.
    pub fn new(upstream: impl Into<String>, policies: Policies) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: upstream.into(),
            abort_accounting: AbortAccounting::Early,
            abort_charge: None,
            access_log: None,
            access_log_format: LogFormat::Text,
            key_header: "x-api-key".into(),
            threads: None,
            cpus: None,
            tls: None,
            http2: false,
            routes: vec![Route {
                prefix: "/".into(),
                policies,
            }],
            tap: None,
            store: None,
        }
    }
}

/// The certificate chain and key the gateway listens with.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// PEM certificate chain, the gateway's own first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// A route prefix and its policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// The policies applied to requests under it.
    pub policies: Policies,
}

/// The policies of a route, each optional, applied in this order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policies {
    /// Per-key GCRA rate limit: 429 with `Retry-After`.
    pub rate_limit: Option<RateLimitRule>,
    /// Per-key worker-time budget: 429 for the penalty time.
    pub budget: Option<BudgetRule>,
    /// Requests in flight to the upstream at most: 503.
    pub concurrency: Option<ConcurrencyRule>,
    /// Circuit breaker: 503 while open.
    pub breaker: Option<BreakerRule>,
    /// Past it: 504 and the upstream request dropped.
    pub upstream_timeout: Option<Duration>,
}

/// A per-key rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitRule {
    /// Sustained requests per second per key.
    pub rate_per_s: f64,
    /// Requests a key may send at once.
    pub burst: u32,
}

// ---------------------------------------------------------------------------
// The file as written.
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    upstream: Option<Spanned<String>>,
    abort_accounting: Option<AbortAccounting>,
    abort_charge: Option<Spanned<Dur>>,
    access_log: Option<PathBuf>,
    access_log_format: Option<LogFormat>,
    key_header: Option<Spanned<String>>,
    threads: Option<Spanned<i64>>,
    cpus: Option<Spanned<String>>,
    tls_cert: Option<Spanned<PathBuf>>,
    tls_key: Option<Spanned<PathBuf>>,
    http2: Option<bool>,
    routes: Option<Vec<Spanned<RawRoute>>>,
    store: Option<Spanned<RawStore>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: Option<Spanned<String>>,
    upstream_timeout: Option<Spanned<Dur>>,
    rate_limit: Option<Spanned<RawRateLimit>>,
    budget: Option<Spanned<RawBudget>>,
    concurrency: Option<Spanned<RawConcurrency>>,
    breaker: Option<Spanned<RawBreaker>>,
}

/// The policy tables as written, shared by the gateway file's routes and a
/// scenario's `[gateway]` section. (Each lists the fields itself rather than
/// `#[serde(flatten)]`ing this struct: flatten buffers values, which loses
/// their spans and `deny_unknown_fields`.)
#[derive(Default)]
pub struct RawPolicies {
    /// `upstream_timeout = "2s"`.
    pub upstream_timeout: Option<Spanned<Dur>>,
    /// `rate_limit = { rate, burst }`.
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    /// `budget = { budget, window, penalty }`.
    pub budget: Option<Spanned<RawBudget>>,
    /// `concurrency = { max, queue, queue_timeout }`.
    pub concurrency: Option<Spanned<RawConcurrency>>,
    /// `breaker = { error_share, window, min_requests, cool_down, probes }`.
    pub breaker: Option<Spanned<RawBreaker>>,
}

/// `rate_limit = { rate = 100, burst = 10 }` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    rate: Option<Spanned<Rate>>,
    burst: Option<Spanned<i64>>,
}

/// `budget = { budget = "1s", window = "10s", penalty = "5s" }` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    budget: Option<Spanned<Dur>>,
    window: Option<Spanned<Dur>>,
    penalty: Option<Spanned<Dur>>,
}

/// `concurrency = { max = 4, queue = 8, queue_timeout = "500ms" }` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConcurrency {
    max: Option<Spanned<i64>>,
    queue: Option<Spanned<i64>>,
    queue_timeout: Option<Spanned<Dur>>,
    retry_after: Option<Spanned<Dur>>,
}

/// `breaker = { error_share = 0.5, window = "10s", ... }` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    error_share: Option<Spanned<f64>>,
    window: Option<Spanned<Dur>>,
    min_requests: Option<Spanned<i64>>,
    cool_down: Option<Spanned<Dur>>,
    probes: Option<Spanned<i64>>,
}

/// A duration with a unit, as a string (`"250ms"`), in the gateway config's words.
pub type Dur = HumanDuration<GatewayWords>;

/// A rate per second: a number or a string like `"1k"`, in the gateway config's words.
type Rate = HumanRate<GatewayWords>;

// ---------------------------------------------------------------------------
// Validation. Errors are (byte span, message); the caller turns spans into
// file:line:col.
// ---------------------------------------------------------------------------

/// A validation error at a span of the text.
pub type Located = (Range<usize>, String);

/// Longest duration a policy may name: far past honest use, catches unit slips.
const MAX_POLICY_DURATION: Duration = Duration::from_secs(24 * 3600);

fn duration_in(
    what: &str,
    d: &Spanned<Dur>,
    allow_zero: bool,
) -> std::result::Result<Duration, Located> {
    let v = d.get_ref().0;
    if (!allow_zero && v.is_zero()) || v > MAX_POLICY_DURATION {
        let low = if allow_zero { "0" } else { "more than 0" };
        return Err((
            d.span(),
            format!("{what} must be {low} and at most 24h, like \"500ms\""),
        ));
    }
    Ok(v)
}

fn int_in(what: &str, n: &Spanned<i64>, low: i64, high: i64) -> std::result::Result<i64, Located> {
    let v = *n.get_ref();
    if v < low || v > high {
        return Err((
            n.span(),
            format!("{what} must be between {low} and {high}, got {v}"),
        ));
    }
    Ok(v)
}

fn required<'a, T>(
    what: &str,
    table: Range<usize>,
    value: &'a Option<Spanned<T>>,
    example: &str,
) -> std::result::Result<&'a Spanned<T>, Located> {
    value
        .as_ref()
        .ok_or_else(|| (table, format!("{what} is missing: add {example}")))
}

impl RawPolicies {
    /// Validates the tables; `label` prefixes messages (`[gateway]`, `route 1`).
    pub fn validate(&self, label: &str) -> std::result::Result<Policies, Located> {
        let mut out = Policies::default();
        if let Some(t) = &self.upstream_timeout {
            out.upstream_timeout =
                Some(duration_in(&format!("{label} upstream_timeout"), t, false)?);
        }
        if let Some(rl) = &self.rate_limit {
            out.rate_limit = Some(rate_limit_rule(label, rl)?);
        }
        if let Some(b) = &self.budget {
            out.budget = Some(budget_rule(label, b)?);
        }
        if let Some(c) = &self.concurrency {
            out.concurrency = Some(concurrency_rule(label, c)?);
        }
        if let Some(b) = &self.breaker {
            out.breaker = Some(breaker_rule(label, b)?);
        }
        Ok(out)
    }
}

/// `rate_limit` of a policy table, validated (`label` prefixes messages).
fn rate_limit_rule(
    label: &str,
    rl: &Spanned<RawRateLimit>,
) -> std::result::Result<RateLimitRule, Located> {
    let what = format!("{label} rate_limit");
    let r = rl.get_ref();
    let rate = required(
        &format!("{what} rate"),
        rl.span(),
        &r.rate,
        "rate = 100 (per second)",
    )?;
    let rate_per_s = rate.get_ref().0;
    if !(rate_per_s.is_finite() && rate_per_s > 0.0 && rate_per_s <= 10_000_000.0) {
        return Err((
            rate.span(),
            format!("{what} rate must be more than 0 and at most 10000k per second"),
        ));
    }
    let burst = match &r.burst {
        Some(b) => int_in(&format!("{what} burst"), b, 1, 1_000_000)? as u32,
        None => 1,
    };
    Ok(RateLimitRule { rate_per_s, burst })
}

/// `budget` of a policy table, validated (`label` prefixes messages).
fn budget_rule(label: &str, b: &Spanned<RawBudget>) -> std::result::Result<BudgetRule, Located> {
    let what = format!("{label} budget");
    let raw = b.get_ref();
    let budget = required(
        &format!("{what} budget"),
        b.span(),
        &raw.budget,
        "budget = \"1s\" (accounted seconds per window)",
    )?;
    let window = required(
        &format!("{what} window"),
        b.span(),
        &raw.window,
        "window = \"10s\"",
    )?;
    let penalty = required(
        &format!("{what} penalty"),
        b.span(),
        &raw.penalty,
        "penalty = \"5s\"",
    )?;
    Ok(BudgetRule {
        budget: duration_in(&format!("{what} budget"), budget, true)?,
        window: duration_in(&format!("{what} window"), window, false)?,
        penalty: duration_in(&format!("{what} penalty"), penalty, false)?,
    })
}

/// `concurrency` of a policy table, validated (`label` prefixes messages).
fn concurrency_rule(
    label: &str,
    c: &Spanned<RawConcurrency>,
) -> std::result::Result<ConcurrencyRule, Located> {
    let what = format!("{label} concurrency");
    let raw = c.get_ref();
    let max = required(
        &format!("{what} max"),
        c.span(),
        &raw.max,
        "max = 4 (requests in flight)",
    )?;
    let max = int_in(&format!("{what} max"), max, 1, 1_000_000)? as usize;
    let queue = match &raw.queue {
        Some(q) => int_in(&format!("{what} queue"), q, 0, 1_000_000)? as usize,
        None => 0,
    };
    let queue_timeout = match &raw.queue_timeout {
        Some(t) => duration_in(&format!("{what} queue_timeout"), t, false)?,
        None if queue > 0 => {
            return Err((
                c.span(),
                format!("{what} has a queue but no queue_timeout: add queue_timeout = \"1s\""),
            ));
        }
        None => Duration::ZERO,
    };
    let retry_after = match &raw.retry_after {
        Some(t) => Some(duration_in(&format!("{what} retry_after"), t, false)?),
        None => None,
    };
    Ok(ConcurrencyRule {
        max,
        queue,
        queue_timeout,
        retry_after,
    })
}

/// `breaker` of a policy table, validated (`label` prefixes messages).
fn breaker_rule(label: &str, b: &Spanned<RawBreaker>) -> std::result::Result<BreakerRule, Located> {
    let what = format!("{label} breaker");
    let raw = b.get_ref();
    let share = required(
        &format!("{what} error_share"),
        b.span(),
        &raw.error_share,
        "error_share = 0.5",
    )?;
    let error_share = *share.get_ref();
    if !(error_share > 0.0 && error_share <= 1.0) {
        return Err((
            share.span(),
            format!("{what} error_share must be above 0 and at most 1, like 0.5"),
        ));
    }
    let window = required(
        &format!("{what} window"),
        b.span(),
        &raw.window,
        "window = \"10s\"",
    )?;
    let cool_down = required(
        &format!("{what} cool_down"),
        b.span(),
        &raw.cool_down,
        "cool_down = \"5s\"",
    )?;
    let min_requests = match &raw.min_requests {
        Some(m) => int_in(&format!("{what} min_requests"), m, 1, 1_000_000_000)? as u32,
        None => 10,
    };
    let probes = match &raw.probes {
        Some(p) => int_in(&format!("{what} probes"), p, 1, 1_000_000)? as u32,
        None => 1,
    };
    Ok(BreakerRule {
        error_share,
        window: duration_in(&format!("{what} window"), window, false)?,
        min_requests,
        cool_down: duration_in(&format!("{what} cool_down"), cool_down, false)?,
        probes,
    })
}

/// Checks an upstream URL: `http://host:port` with no path.
pub fn check_upstream(url: &str) -> std::result::Result<String, String> {
    let expected = "expected http://HOST:PORT, like http://127.0.0.1:8081";
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| format!("upstream {url:?} is not a URL: {expected}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "upstream {url:?}: only http:// is supported, {expected}"
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("upstream {url:?} has no host, {expected}"));
    };
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(format!(
            "upstream {url:?} has a path: give only http://HOST:PORT"
        ));
    }
    Ok(format!("http://{authority}"))
}

/// Reads and validates the gateway config file at `path`.
pub fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(LocatedError {
            location: path.display().to_string(),
            message: format!("cannot read the gateway config: {e}"),
        })
    })?;
    parse(&text, path)
}

/// Parses and validates gateway config `text`; `path` is named in errors.
pub fn parse(text: &str, path: &Path) -> Result<Config> {
    let at = |span: Option<Range<usize>>, message: String| {
        Error::Config(LocatedError::at(path, text, span, message))
    };
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| at(e.span(), e.message().trim().to_string()))?;
    let located = |(span, message): Located| at(Some(span), message);

    let Some(upstream) = &raw.upstream else {
        return Err(at(
            None,
            "no upstream: add upstream = \"http://HOST:PORT\" (the server the gateway proxies to)"
                .into(),
        ));
    };
    let upstream_url =
        check_upstream(upstream.get_ref()).map_err(|m| at(Some(upstream.span()), m))?;
    let listen = listen_addr(raw.listen.as_ref()).map_err(located)?;
    let key_header = key_header(raw.key_header.as_ref()).map_err(located)?;
    let threads = match &raw.threads {
        Some(t) => Some(int_in("threads", t, 1, 256).map_err(located)? as usize),
        None => None,
    };
    let cpus = match &raw.cpus {
        Some(text) => Some(
            mock_upstream::config::parse_cpus(text.get_ref())
                .map_err(|e| located((text.span(), format!("cpus: {e}"))))?,
        ),
        None => None,
    };
    let abort_charge = match &raw.abort_charge {
        Some(c) => Some(duration_in("abort_charge", c, true).map_err(located)?),
        None => None,
    };
    let tls = tls_files(raw.tls_cert.as_ref(), raw.tls_key.as_ref()).map_err(located)?;
    let routes = routes(raw.routes.unwrap_or_default()).map_err(located)?;
    let store = match &raw.store {
        Some(s) => Some(s.get_ref().validate(s.span()).map_err(located)?),
        None => None,
    };
    Ok(Config {
        listen,
        upstream: upstream_url,
        abort_accounting: raw.abort_accounting.unwrap_or_default(),
        abort_charge,
        access_log: raw.access_log,
        access_log_format: raw.access_log_format.unwrap_or_default(),
        key_header,
        threads,
        cpus,
        tls,
        http2: raw.http2.unwrap_or(false),
        routes,
        tap: None,
        store,
    })
}

/// `listen`, validated; `127.0.0.1:0` when absent.
fn listen_addr(listen: Option<&Spanned<String>>) -> std::result::Result<SocketAddr, Located> {
    let Some(l) = listen else {
        return Ok(SocketAddr::from(([127, 0, 0, 1], 0)));
    };
    l.get_ref().parse::<SocketAddr>().map_err(|_| {
        (
            l.span(),
            format!(
                "listen {:?} is not IP:PORT, like \"127.0.0.1:0\"",
                l.get_ref()
            ),
        )
    })
}

/// `key_header`, validated and in lower case; `x-api-key` when absent.
fn key_header(header: Option<&Spanned<String>>) -> std::result::Result<String, Located> {
    let Some(h) = header else {
        return Ok("x-api-key".into());
    };
    let name = h.get_ref().to_ascii_lowercase();
    hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        (
            h.span(),
            format!("key_header {:?} is not a header name", h.get_ref()),
        )
    })?;
    Ok(name)
}

/// `tls_cert` and `tls_key`: both or neither.
fn tls_files(
    cert: Option<&Spanned<PathBuf>>,
    key: Option<&Spanned<PathBuf>>,
) -> std::result::Result<Option<TlsFiles>, Located> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.get_ref().clone(),
            key: key.get_ref().clone(),
        })),
        (None, None) => Ok(None),
        (Some(cert), None) => Err((
            cert.span(),
            "tls_cert needs its key: add tls_key = \"key.pem\"".into(),
        )),
        (None, Some(key)) => Err((
            key.span(),
            "tls_key needs its certificate: add tls_cert = \"cert.pem\"".into(),
        )),
    }
}

/// The `[[routes]]` tables, validated, longest prefix first; none: one
/// route `/` with no policy.
fn routes(raw: Vec<Spanned<RawRoute>>) -> std::result::Result<Vec<Route>, Located> {
    let mut routes: Vec<Route> = Vec::new();
    for (i, route) in raw.into_iter().enumerate() {
        let route = route_of(&format!("route {}", i + 1), route, &routes)?;
        routes.push(route);
    }
    if routes.is_empty() {
        routes.push(Route {
            prefix: "/".into(),
            policies: Policies::default(),
        });
    }
    // Longest prefix first: the first match is the most specific.
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Ok(routes)
}

/// One `[[routes]]` table, validated (`label` prefixes messages); its
/// prefix must not be one of `earlier`'s.
fn route_of(
    label: &str,
    route: Spanned<RawRoute>,
    earlier: &[Route],
) -> std::result::Result<Route, Located> {
    let prefix = required(
        &format!("{label} prefix"),
        route.span(),
        &route.get_ref().prefix,
        "prefix = \"/\"",
    )?;
    if !prefix.get_ref().starts_with('/') {
        return Err((
            prefix.span(),
            format!("{label} prefix {:?} must start with '/'", prefix.get_ref()),
        ));
    }
    if earlier.iter().any(|x| &x.prefix == prefix.get_ref()) {
        return Err((
            prefix.span(),
            format!("{label} prefix {:?} is given twice", prefix.get_ref()),
        ));
    }
    let prefix = prefix.get_ref().clone();
    let route = route.into_inner();
    let policies = RawPolicies {
        upstream_timeout: route.upstream_timeout,
        rate_limit: route.rate_limit,
        budget: route.budget,
        concurrency: route.concurrency,
        breaker: route.breaker,
    };
    Ok(Route {
        prefix,
        policies: policies.validate(label)?,
    })
}

/// Writes `policies` as TOML table lines (`rate_limit = { ... }`), read back
/// by [`parse`]: how the harness hands a scenario's gateway to the process.
pub fn policies_toml(policies: &Policies) -> String {
    let d = |d: Duration| format!("\"{}ns\"", d.as_nanos());
    let mut out = String::new();
    if let Some(t) = policies.upstream_timeout {
        out.push_str(&format!("upstream_timeout = {}\n", d(t)));
    }
    if let Some(r) = policies.rate_limit {
        out.push_str(&format!(
            "rate_limit = {{ rate = {:?}, burst = {} }}\n",
            r.rate_per_s, r.burst
        ));
    }
    if let Some(b) = policies.budget {
        out.push_str(&format!(
            "budget = {{ budget = {}, window = {}, penalty = {} }}\n",
            d(b.budget),
            d(b.window),
            d(b.penalty)
        ));
    }
    if let Some(c) = policies.concurrency {
        let timeout = if c.queue > 0 {
            format!(", queue_timeout = {}", d(c.queue_timeout))
        } else {
            String::new()
        };
        let retry_after = c
            .retry_after
            .map_or(String::new(), |r| format!(", retry_after = {}", d(r)));
        out.push_str(&format!(
            "concurrency = {{ max = {}, queue = {}{timeout}{retry_after} }}\n",
            c.max, c.queue
        ));
    }
    if let Some(b) = policies.breaker {
        out.push_str(&format!(
            "breaker = {{ error_share = {:?}, window = {}, min_requests = {}, cool_down = {}, probes = {} }}\n",
            b.error_share,
            d(b.window),
            b.min_requests,
            d(b.cool_down),
            b.probes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(text, Path::new("gw.toml")) {
            Ok(c) => panic!("{text:?} should fail, got {c:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), 2);
                e.to_string()
            }
        }
    }

    #[test]
    fn errors_name_the_place_and_the_fix() {
        let up = "upstream = \"http://127.0.0.1:9\"\n";
        // (text, part of the error)
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "gw.toml: no upstream"),
            (
                "upstream = \"https://h:1\"".into(),
                "gw.toml:1:12: upstream \"https://h:1\": only http://",
            ),
            ("upstream = \"http://h:1/x\"".into(), "has a path"),
            (
                format!("{up}listen = \"nowhere\""),
                "gw.toml:2:10: listen \"nowhere\" is not IP:PORT",
            ),
            (
                format!("{up}abort_accounting = \"late\""),
                "unknown variant `late`, expected `early` or `complete`",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"/\"\nrate_limit = {{ rate = 0 }}"),
                "gw.toml:4:23: route 1 rate_limit rate must be more than 0",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"/\"\nrate_limit = {{ burst = 2 }}"),
                "route 1 rate_limit rate is missing: add rate = 100",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"/\"\nconcurrency = {{ max = 0 }}"),
                "route 1 concurrency max must be between 1 and",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"/\"\nconcurrency = {{ max = 2, queue = 4 }}"),
                "has a queue but no queue_timeout",
            ),
            (
                format!(
                    "{up}[[routes]]\nprefix = \"/\"\nbreaker = {{ error_share = 2.0, window = \"1s\", cool_down = \"1s\" }}"
                ),
                "error_share must be above 0 and at most 1",
            ),
            (
                format!(
                    "{up}[[routes]]\nprefix = \"/\"\nbudget = {{ budget = \"1s\", window = \"1s\" }}"
                ),
                "budget penalty is missing",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"/\"\nupstream_timeout = \"0s\""),
                "upstream_timeout must be more than 0",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"/\"\nupstream_timeout = 5"),
                "a duration needs a unit: write \"5s\"",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"x\""),
                "route 1 prefix \"x\" must start with '/'",
            ),
            (
                format!("{up}[[routes]]\nprefix = \"/\"\nlimit = 3"),
                "unknown field `limit`",
            ),
            (
                format!("{up}[[routes]]\nrate_limit = {{ rate = 1 }}"),
                "route 1 prefix is missing",
            ),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert!(got.contains(want), "{text:?}\n  got  {got}\n  want {want}");
        }
    }

    #[test]
    fn a_full_file_parses_and_policies_round_trip() {
        let text = "upstream = \"http://127.0.0.1:9/\"\nabort_accounting = \"complete\"\nabort_charge = \"5s\"\n\
                    [[routes]]\nprefix = \"/\"\n[[routes]]\nprefix = \"/api\"\nupstream_timeout = \"2s\"\n\
                    rate_limit = { rate = \"1.5k\", burst = 10 }\nbudget = { budget = \"1s\", window = \"10s\", penalty = \"5s\" }\n\
                    concurrency = { max = 4, queue = 8, queue_timeout = \"500ms\" }\n\
                    breaker = { error_share = 0.5, window = \"10s\", min_requests = 20, cool_down = \"5s\", probes = 2 }\n";
        let c = parse(text, Path::new("gw.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.upstream, "http://127.0.0.1:9");
        assert_eq!(c.abort_accounting, AbortAccounting::Complete);
        assert_eq!(c.abort_charge, Some(Duration::from_secs(5)));
        assert_eq!(c.routes[0].prefix, "/api");
        let p = &c.routes[0].policies;
        assert_eq!(
            p.rate_limit,
            Some(RateLimitRule {
                rate_per_s: 1500.0,
                burst: 10
            })
        );
        assert_eq!(p.concurrency.map(|c| c.queue), Some(8));
        assert_eq!(p.breaker.map(|b| b.probes), Some(2));
        let again = format!(
            "upstream = \"http://h:1\"\n[[routes]]\nprefix = \"/\"\n{}",
            policies_toml(p)
        );
        let c2 = parse(&again, Path::new("x.toml")).unwrap_or_else(|e| panic!("{e}\n{again}"));
        assert_eq!(&c2.routes[0].policies, p);
    }
}
