//! What every arrival sends and how the client behaves: `[request]`,
//! `[[keys]]` and `[client]` (with its `tls` table), with the command
//! line's `--timeout`, `--max-connections`, `--connections`, `--threads`,
//! `--seed`, `--http2` and `--insecure` over them.
//!
//! Takes their raw sections and hands on a [`RequestSpec`], the
//! [`KeySpec`]s and a [`ClientSpec`], or the first error, located.

use std::time::Duration;

use contend_units::de::Num;
use contend_units::format_duration;
use toml::Spanned;

use super::build::{Ctx, cli};
use super::check::{
    check_header_name, check_header_value, check_int, check_interval, check_method, check_path,
    check_positive_duration, quoted,
};
use super::raw::{
    Headers, RawClient, RawHttp, RawKey, RawKeySpace, RawKeys, RawRequest, RawShards, RawTls,
    RawWindow,
};
use super::retry::build_retry;
use super::{
    ClientSpec, DEFAULT_PACING_WINDOW, ExperimentKind, HttpVersion, KeyDistribution, KeySpace,
    KeySpec, MAX_CONNECTIONS, MAX_DURATION, MAX_KEY_SPACE, MAX_SHARDS, MAX_THREADS, Overrides,
    RequestSpec, Shard, TlsSpec, TlsVersionSpec, auto_window_max,
};
use crate::error::Result;

/// This process's share of the load: `--shard I/N`, or `--shard auto` with
/// the count from the environment or `[shards] count`; the whole load
/// (0 of 1) without `--shard`. A `[shards]` section alone splits nothing:
/// it only says how many shards `--shard auto` means.
pub(super) fn build_shard(
    ctx: &Ctx,
    raw: Option<&Spanned<RawShards>>,
    overrides: &Overrides,
) -> Result<Shard> {
    let file_count = match raw.and_then(|r| r.get_ref().count.as_ref()) {
        Some(count) => {
            ctx.check(count, |n| {
                check_int("[shards] count", n.0, 1, MAX_SHARDS as i64)
            })?;
            Some(count.get_ref().0 as usize)
        }
        None => None,
    };
    let Some(arg) = overrides.shard else {
        return Ok(Shard::default());
    };
    let count = arg.count.or(file_count).ok_or_else(|| {
        cli("--shard auto needs the shard count: set CONTEND_SHARDS=N, or [shards] count = N in the scenario")
    })?;
    check_int("--shard count", count as i64, 1, MAX_SHARDS as i64).map_err(cli)?;
    if arg.index >= count {
        return Err(cli(format!(
            "--shard {}/{count}: the index counts from 0, so it must be below {count}",
            arg.index
        )));
    }
    Ok(Shard {
        index: arg.index,
        count,
    })
}

/// `[request]`: the method (upper-cased), path and headers, checked;
/// `GET /` with no headers or body by default.
pub(super) fn build_request(ctx: &Ctx, raw: Option<RawRequest>) -> Result<RequestSpec> {
    let raw = raw.unwrap_or(RawRequest {
        method: None,
        path: None,
        headers: None,
        body: None,
    });
    let method = match &raw.method {
        Some(m) => {
            ctx.check(m, |m| check_method("[request] method", m))?;
            m.get_ref().to_ascii_uppercase()
        }
        None => "GET".to_string(),
    };
    let path = match &raw.path {
        Some(p) => {
            ctx.check(p, |p| check_path("[request] path", p))?;
            p.get_ref().clone()
        }
        None => "/".to_string(),
    };
    let headers = build_headers(ctx, "[request] header", raw.headers)?;
    Ok(RequestSpec {
        method,
        path,
        headers,
        body: raw.body.unwrap_or_default(),
    })
}

/// A header table, each name and value checked; `what` labels the
/// messages (`[request] header`, `key "ui" header`).
fn build_headers(ctx: &Ctx, what: &str, raw: Option<Headers>) -> Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for (name, value) in raw.map(|h| h.0).unwrap_or_default() {
        ctx.check(&name, |n| check_header_name(what, n))?;
        ctx.check(&value, |v| check_header_value(what, v))?;
        headers.push((name.into_inner(), value.into_inner()));
    }
    Ok(headers)
}

/// `[[keys]]` (a list) or `[keys]` (a generated space): the one that is
/// given, built.
pub(super) fn build_any_keys(
    ctx: &Ctx,
    raw: Option<Spanned<RawKeys>>,
) -> Result<(Vec<KeySpec>, Option<KeySpace>)> {
    match raw.map(|r| (r.span(), r.into_inner())) {
        None => Ok((Vec::new(), None)),
        Some((_, RawKeys::List(list))) => Ok((build_keys(ctx, list)?, None)),
        Some((span, RawKeys::Space(space))) => {
            Ok((Vec::new(), Some(build_key_space(ctx, span, space)?)))
        }
    }
}

/// `[keys]`: a count from 1, `zipf` (with an exponent above 0, 1.1 by
/// default) or `uniform`, and a prefix that makes valid header values.
fn build_key_space(ctx: &Ctx, span: std::ops::Range<usize>, raw: RawKeySpace) -> Result<KeySpace> {
    let Some(count) = raw.count else {
        return Err(ctx.at(
            span,
            "[keys] needs count = N, the number of keys to draw from (e.g. count = 100000); \
             for a hand-written list use [[keys]] entries",
        ));
    };
    ctx.check(&count, |n| {
        check_int("[keys] count", n.0, 1, i64::from(MAX_KEY_SPACE))
    })?;
    let distribution = match &raw.distribution {
        None => "zipf",
        Some(d) => {
            ctx.check(d, |d| match d.as_str() {
                "zipf" | "uniform" => Ok(()),
                other => Err(format!(
                    "[keys] distribution {} is not known: use \"zipf\" (a few hot keys) or \"uniform\"",
                    quoted(other)
                )),
            })?;
            d.get_ref().as_str()
        }
    };
    let distribution = if distribution == "uniform" {
        if let Some(e) = &raw.exponent {
            return Err(ctx.at(
                e.span(),
                "[keys] exponent applies to distribution = \"zipf\" only: drop it, or use zipf",
            ));
        }
        KeyDistribution::Uniform
    } else {
        let exponent = match &raw.exponent {
            Some(e) => {
                ctx.check(e, |Num(e)| {
                    if e.is_finite() && *e > 0.0 && *e <= 10.0 {
                        Ok(())
                    } else {
                        Err(format!(
                            "[keys] exponent must be above 0 and at most 10 (1.1 is typical: a few keys get most requests), got {e}"
                        ))
                    }
                })?;
                e.get_ref().0
            }
            None => 1.1,
        };
        KeyDistribution::Zipf { exponent }
    };
    let prefix = match raw.prefix {
        Some(p) => {
            ctx.check(&p, |p| {
                if p.trim_start() != p {
                    return Err(format!(
                        "[keys] prefix {} starts with white space, which HTTP would drop",
                        quoted(p)
                    ));
                }
                check_header_value("[keys] prefix (x-api-key)", p)
            })?;
            p.into_inner()
        }
        None => "key-".to_string(),
    };
    Ok(KeySpace {
        count: count.get_ref().0 as u32,
        distribution,
        prefix,
    })
}

/// `[[keys]]`: each named, once, with a weight above 0 (weights are
/// relative) and its path, headers and timeout checked.
pub(super) fn build_keys(ctx: &Ctx, raw: Vec<Spanned<RawKey>>) -> Result<Vec<KeySpec>> {
    let mut keys: Vec<KeySpec> = Vec::with_capacity(raw.len());
    // Names seen so far: a scenario may list many thousands of keys.
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut weight_sum = 0.0;
    for (i, spanned) in raw.into_iter().enumerate() {
        let number = i + 1;
        let span = spanned.span();
        let key = spanned.into_inner();
        let Some(name) = key.name else {
            return Err(ctx.at(
                span,
                format!(
                    "key {number} has no name: add name = \"ui\" (sent as the x-api-key header)"
                ),
            ));
        };
        ctx.check(&name, |n| {
            if n.is_empty() {
                return Err(format!("key {number} has an empty name: give name = \"ui\" (sent as the x-api-key header)"));
            }
            if n.trim() != n {
                return Err(format!("key name {} starts or ends with white space, which HTTP would drop", quoted(n)));
            }
            if names.contains(n) {
                return Err(format!("key name {} is used twice: each [[keys]] needs its own name", quoted(n)));
            }
            check_header_value("key name (x-api-key)", n)
        })?;
        names.insert(name.get_ref().clone());
        let label = format!("key {}", quoted(name.get_ref()));
        let weight = match &key.weight {
            Some(w) => {
                ctx.check(w, |Num(w)| {
                    if w.is_finite() && *w > 0.0 {
                        Ok(())
                    } else {
                        Err(format!(
                            "{label} weight must be more than 0 (weights are relative: 9 and 1 send 90% and 10%), got {w}"
                        ))
                    }
                })?;
                w.get_ref().0
            }
            None => 1.0,
        };
        weight_sum += weight;
        if !weight_sum.is_finite() {
            return Err(ctx.at(span, "the key weights add up past the largest number: use small relative weights like 9 and 1"));
        }
        let path = match &key.path {
            Some(p) => {
                ctx.check(p, |p| check_path(&format!("{label} path"), p))?;
                Some(p.get_ref().clone())
            }
            None => None,
        };
        let headers = build_headers(ctx, &format!("{label} header"), key.headers)?;
        let timeout = match &key.timeout {
            Some(t) => {
                ctx.check(t, |t| {
                    check_positive_duration(&format!("{label} timeout"), t.0, MAX_DURATION)
                })?;
                Some(t.get_ref().0)
            }
            None => None,
        };
        let retry = match &key.retry {
            Some(r) => Some(build_retry(ctx, &format!("{label} retry"), r.get_ref())?),
            None => None,
        };
        keys.push(KeySpec {
            name: name.into_inner(),
            weight,
            path,
            headers,
            timeout,
            retry,
        });
    }
    Ok(keys)
}

/// `[client]` with the command line over it; request ids on by default for
/// `experiment = "abort-audit"` (which needs them), and never beside an
/// `x-request-id` header set by hand.
pub(super) fn build_client(
    ctx: &Ctx,
    raw: Option<RawClient>,
    overrides: &Overrides,
    experiment: ExperimentKind,
    request: &RequestSpec,
    keys: &[KeySpec],
) -> Result<ClientSpec> {
    let mut client = ClientSpec {
        request_ids: experiment == ExperimentKind::AbortAudit,
        ..ClientSpec::default()
    };
    let ids_span = raw
        .as_ref()
        .and_then(|r| r.request_ids.as_ref())
        .map(|r| r.span());
    if let Some(raw) = raw {
        client_from_file(ctx, &raw, experiment, &mut client)?;
    }
    apply_client_flags(overrides, experiment, &mut client)?;
    if client.request_ids {
        let set_by_hand = request
            .headers
            .iter()
            .chain(keys.iter().flat_map(|k| k.headers.iter()))
            .any(|(name, _)| name.eq_ignore_ascii_case("x-request-id"));
        if set_by_hand {
            let message = "an x-request-id header is set by hand, but with [client] request_ids on (the default of experiment = \"abort-audit\") the driver sets a unique one per request: remove the header";
            return Err(match ids_span {
                Some(span) => ctx.at(span, message),
                None => ctx.whole(message),
            });
        }
    }
    Ok(client)
}

/// The `[client]` section's values, each in range, over `client`.
fn client_from_file(
    ctx: &Ctx,
    raw: &RawClient,
    experiment: ExperimentKind,
    client: &mut ClientSpec,
) -> Result<()> {
    if let Some(ids) = &raw.request_ids {
        if experiment == ExperimentKind::AbortAudit && !*ids.get_ref() {
            return Err(ctx.at(
                ids.span(),
                "experiment = \"abort-audit\" joins the client, the gateway's log and the upstream per request by x-request-id: remove request_ids = false",
            ));
        }
        client.request_ids = *ids.get_ref();
    }
    if let Some(t) = &raw.timeout {
        ctx.check(t, |t| {
            check_positive_duration("[client] timeout", t.0, MAX_DURATION)
        })?;
        client.timeout = t.get_ref().0;
    }
    if let Some(m) = &raw.max_connections {
        ctx.check(m, |n| {
            check_int("[client] max_connections", n.0, 1, MAX_CONNECTIONS)
        })?;
        client.max_connections = m.get_ref().0 as usize;
    }
    if let Some(wait) = raw.wait_at_max {
        client.wait_at_max = wait;
    }
    if let Some(t) = &raw.threads {
        ctx.check(t, |n| check_int("[client] threads", n.0, 1, MAX_THREADS))?;
        client.threads = Some(t.get_ref().0 as usize);
    }
    if let Some(s) = &raw.seed {
        ctx.check(s, |n| check_int("[client] seed", n.0, 0, i64::MAX))?;
        client.seed = s.get_ref().0 as u64;
    }
    if let Some(i) = &raw.interval {
        ctx.check(i, |d| check_interval("[client] interval", d.0))?;
        client.interval = i.get_ref().0;
    }
    if let Some(l) = &raw.lag_bound {
        ctx.check(l, |d| {
            check_positive_duration("[client] lag_bound", d.0, Duration::from_secs(3600))
        })?;
        client.lag_bound = l.get_ref().0;
    }
    // The window is settled after lag_bound, whose half bounds "auto" (the
    // default).
    if raw.pacing_window.is_none() && client.pacing_window_max > client.pacing_window {
        client.pacing_window_max = auto_window_max(client.lag_bound);
    }
    if let Some(w) = &raw.pacing_window {
        if let RawWindow::Auto = w.get_ref() {
            client.pacing_window = DEFAULT_PACING_WINDOW;
            client.pacing_window_max = auto_window_max(client.lag_bound);
        }
        if let RawWindow::Fixed(window) = *w.get_ref() {
            if window >= client.lag_bound {
                return Err(ctx.at(
                    w.span(),
                    format!(
                        "[client] pacing_window of {} is not below lag_bound ({}): arrivals held for the window would count as the generator falling behind; shorten the window or raise lag_bound (e.g. lag_bound = \"{}\")",
                        format_duration(window),
                        format_duration(client.lag_bound),
                        format_duration(window * 2),
                    ),
                ));
            }
            client.pacing_window = window;
            client.pacing_window_max = window;
        }
    }
    if let Some(h) = &raw.http {
        client.http = match h.get_ref() {
            RawHttp::Http1 => HttpVersion::Http1,
            RawHttp::Http2 => HttpVersion::Http2,
            RawHttp::Auto => HttpVersion::Auto,
        };
    }
    if let Some(n) = &raw.streams_per_connection {
        ctx.check(n, |n| {
            check_int("[client] streams_per_connection", n.0, 1, MAX_STREAMS)
        })?;
        if client.http == HttpVersion::Http1 {
            return Err(ctx.at(
                n.span(),
                "[client] streams_per_connection is for HTTP/2: add http = \"2\" (or \"auto\"), or remove it \
                 (HTTP/1.1 carries one request at a time per connection)",
            ));
        }
        client.streams_per_connection = Some(n.get_ref().0 as u32);
    }
    if let Some(reuse) = raw.reuse {
        client.reuse = reuse;
    }
    if let Some(tls) = &raw.tls {
        client.tls = build_tls(ctx, tls)?;
    }
    if let Some(retry) = &raw.retry {
        client.retry = Some(build_retry(ctx, "[client] retry", retry.get_ref())?);
    }
    Ok(())
}

/// Most HTTP/2 streams one connection may be asked to carry.
const MAX_STREAMS: i64 = 100_000;

/// `[client] tls`: a client certificate comes with its key, `insecure`
/// stands alone (it trusts any certificate, so a CA would not be used),
/// the server name is a DNS name or an IP address.
fn build_tls(ctx: &Ctx, spanned: &Spanned<RawTls>) -> Result<TlsSpec> {
    let raw = spanned.get_ref();
    let mut tls = TlsSpec {
        ca: raw.ca.as_ref().map(|p| p.get_ref().clone()),
        insecure: raw.insecure.unwrap_or(false),
        cert: raw.cert.as_ref().map(|p| p.get_ref().clone()),
        key: raw.key.as_ref().map(|p| p.get_ref().clone()),
        sni: None,
        resumption: raw.resumption.unwrap_or(true),
        version: None,
    };
    if let (true, Some(ca)) = (tls.insecure, &raw.ca) {
        return Err(ctx.at(
            ca.span(),
            "[client] tls.insecure = true accepts any certificate, so tls.ca would not be used: \
             remove one of them",
        ));
    }
    match (&raw.cert, &raw.key) {
        (Some(cert), None) => {
            return Err(ctx.at(
                cert.span(),
                "[client] tls.cert needs its private key: add tls.key = \"client.key\"",
            ));
        }
        (None, Some(key)) => {
            return Err(ctx.at(
                key.span(),
                "[client] tls.key needs its certificate: add tls.cert = \"client.pem\"",
            ));
        }
        _ => {}
    }
    if let Some(sni) = &raw.sni {
        ctx.check(sni, |name| {
            rustls::pki_types::ServerName::try_from(name.as_str())
                .map(|_| ())
                .map_err(|_| {
                    format!(
                        "[client] tls.sni {} is not a DNS name or IP address: give the name the server's \
                         certificate was issued for, like \"gateway.example\"",
                        quoted(name)
                    )
                })
        })?;
        tls.sni = Some(sni.get_ref().clone());
    }
    if let Some(v) = &raw.version {
        tls.version = Some(match v.get_ref().as_str() {
            "1.2" => TlsVersionSpec::Tls12,
            "1.3" => TlsVersionSpec::Tls13,
            other => {
                return Err(ctx.at(
                    v.span(),
                    format!(
                        "[client] tls.version {} is not one contend speaks: give \"1.2\" or \"1.3\" \
                         (or leave it out for either)",
                        quoted(other)
                    ),
                ));
            }
        });
    }
    Ok(tls)
}

/// `--timeout`, `--max-connections`, `--connections` (closed loop, only
/// for `experiment = "run"` and never with `--rate`), `--threads` and
/// `--seed`, each in range, over `client`.
fn apply_client_flags(
    overrides: &Overrides,
    experiment: ExperimentKind,
    client: &mut ClientSpec,
) -> Result<()> {
    if let Some(t) = overrides.timeout {
        check_positive_duration("--timeout", t, MAX_DURATION).map_err(cli)?;
        client.timeout = t;
    }
    if let Some(m) = overrides.max_connections {
        check_int(
            "--max-connections",
            i64::try_from(m).unwrap_or(i64::MAX),
            1,
            MAX_CONNECTIONS,
        )
        .map_err(cli)?;
        client.max_connections = m;
    }
    if overrides.wait_at_max {
        client.wait_at_max = true;
    }
    if let Some(n) = overrides.connections {
        check_int(
            "--connections",
            i64::try_from(n).unwrap_or(i64::MAX),
            1,
            MAX_CONNECTIONS,
        )
        .map_err(cli)?;
        if overrides.rate.is_some() {
            return Err(cli(
                "--connections runs closed loop (no schedule): drop --rate, or drop --connections for open loop",
            ));
        }
        // The closed loop itself is the run's load (see `build`).
        if experiment != ExperimentKind::Run {
            return Err(cli(format!(
                "--connections (closed loop) applies to experiment = \"run\", not \"{}\": drop --connections",
                experiment.as_str()
            )));
        }
    }
    if let Some(t) = overrides.threads {
        check_int(
            "--threads",
            i64::try_from(t).unwrap_or(i64::MAX),
            1,
            MAX_THREADS,
        )
        .map_err(cli)?;
        client.threads = Some(t);
    }
    if let Some(s) = overrides.seed {
        client.seed = s;
    }
    client.start_at = overrides.start_at;
    if overrides.http2 {
        client.http = HttpVersion::Http2;
    }
    if overrides.insecure {
        if client.tls.ca.is_some() {
            return Err(cli(
                "--insecure accepts any certificate, so the scenario's [client] tls.ca would not be used: \
                 drop --insecure, or remove tls.ca",
            ));
        }
        client.tls.insecure = true;
    }
    Ok(())
}
