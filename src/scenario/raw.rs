//! The scenario file as written: serde mirrors of every section, with every
//! field optional, so that a missing value gets the scenario's message (with
//! the fix) rather than serde's; values keep their spans for locations.
//!
//! Takes TOML (through `toml::from_str`) and hands on a [`RawScenario`] for
//! `build` to validate. Human units come from `contend_units::de`, in the
//! scenario's words; the `[gateway]` policy tables are the gateway's own.
//! Nothing here checks a range.

use std::fmt;
use std::path::PathBuf;

use contend_gateway::AbortAccounting;
use contend_gateway::config::{Dur, RawBreaker, RawBudget, RawConcurrency, RawRateLimit};
use contend_units::de::{Int, Num, ScenarioWords};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::retry::RawRetry;
use super::variants::RawVariant;
use super::{AuditMode, ExperimentKind};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Option<Spanned<String>>,
    pub(super) phases: Option<Spanned<Vec<Spanned<RawPhase>>>>,
    pub(super) target: Option<Spanned<RawTarget>>,
    pub(super) upstream: Option<Spanned<RawUpstream>>,
    pub(super) request: Option<RawRequest>,
    pub(super) keys: Option<Spanned<RawKeys>>,
    pub(super) client: Option<RawClient>,
    pub(super) gateway: Option<Spanned<RawGateway>>,
    pub(super) thresholds: Option<RawThresholds>,
    pub(super) experiment: Option<ExperimentKind>,
    pub(super) abort_audit: Option<Spanned<RawAbortAudit>>,
    pub(super) sweep: Option<Spanned<RawSweep>>,
    pub(super) find_limit: Option<Spanned<RawFindLimit>>,
    pub(super) shards: Option<Spanned<RawShards>>,
    pub(super) scrape: Option<Vec<Spanned<RawScrape>>>,
    pub(super) variants: Option<Spanned<Vec<Spanned<RawVariant>>>>,
    pub(super) store: Option<Spanned<RawStore>>,
    pub(super) faults: Option<Vec<Spanned<RawFault>>>,
}

/// `[store]`: `kind = "redis"` or `url`, and the gateway's use of it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) kind: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) cpus: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<HumanDuration>>,
    pub(super) on_store_error: Option<contend_gateway::store::OnStoreError>,
    pub(super) sync_interval: Option<Spanned<HumanDuration>>,
}

/// One `[[faults]]` entry: `at`, `component`, `action`, `for`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub(super) at: Option<Spanned<HumanDuration>>,
    pub(super) component: Option<Spanned<String>>,
    pub(super) action: Option<Spanned<String>>,
    #[serde(rename = "for")]
    pub(super) duration: Option<Spanned<HumanDuration>>,
    /// `action = "slow"`: the factor on the upstream's CPU per request.
    pub(super) cpu_factor: Option<Spanned<f64>>,
    /// `action = "slow"`: wall time added to each request.
    pub(super) delay: Option<Spanned<HumanDuration>>,
}

/// `[shards]`: how many processes share the load (for `--shard auto`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShards {
    pub(super) count: Option<Spanned<Int>>,
}

/// `[find_limit]`: candidates, step timing, the 504 bound, repeats, hardware.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFindLimit {
    pub(super) min: Option<Spanned<Int>>,
    pub(super) max: Option<Spanned<Int>>,
    pub(super) start: Option<Spanned<Int>>,
    pub(super) rate: Option<Spanned<HumanRate>>,
    pub(super) warmup: Option<Spanned<HumanDuration>>,
    pub(super) duration: Option<Spanned<HumanDuration>>,
    pub(super) max_504_share: Option<Spanned<Num>>,
    pub(super) repeats: Option<Spanned<Int>>,
    pub(super) max_steps: Option<Spanned<Int>>,
    pub(super) baseline: Option<bool>,
    pub(super) hardware: Option<Vec<Spanned<RawHardware>>>,
}

/// One `hardware = [...]` entry: `{ cpuset = "0,1" }` (or `[0, 1]`),
/// `{ cpus = 1.5 }` (a CPU quota in cores), `{ memory = "512MiB" }`, or
/// a combination.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHardware {
    pub(super) cpuset: Option<RawCpuList>,
    pub(super) cpus: Option<RawCores>,
    pub(super) memory: Option<RawBytes>,
}

/// A class's `cpus`: cores as a number; a CPU list (what `cpus` meant
/// before quotas) is kept only to be refused with the fix.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(super) enum RawCores {
    Cores(Num),
    List(RawCpuList),
}

/// A size: bytes as a whole number, or text with a unit (`"512MiB"`).
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(super) enum RawBytes {
    Count(Int),
    Text(String),
}

/// `[[scrape]]`: a target the harness did not start, sampled per interval.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScrape {
    pub(super) name: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) pid: Option<Spanned<Int>>,
    pub(super) series: Option<Spanned<Vec<String>>>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(super) enum RawCpuList {
    Text(String),
    List(Vec<u32>),
}

/// `[sweep]`: rates (a list, or from/to/steps/spacing), concurrency, timing,
/// stop-early bounds and the SLO.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    pub(super) rates: Option<Spanned<Vec<Spanned<HumanRate>>>>,
    pub(super) from: Option<Spanned<HumanRate>>,
    pub(super) to: Option<Spanned<HumanRate>>,
    pub(super) steps: Option<Spanned<Int>>,
    pub(super) spacing: Option<Spanned<RawSpacing>>,
    pub(super) concurrency: Option<Spanned<Vec<Spanned<Int>>>>,
    pub(super) warmup: Option<Spanned<HumanDuration>>,
    pub(super) duration: Option<Spanned<HumanDuration>>,
    pub(super) arrival: Option<RawArrival>,
    pub(super) slo: Option<Spanned<HumanDuration>>,
    pub(super) slo_percentile: Option<Spanned<Num>>,
    pub(super) stop_early: Option<bool>,
    pub(super) stop_error_share: Option<Spanned<Num>>,
    pub(super) stop_p99: Option<Spanned<HumanDuration>>,
    pub(super) sensitivity: Option<Spanned<Num>>,
    pub(super) keep_alive_baseline: Option<Spanned<bool>>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawSpacing {
    Linear,
    Geometric,
}

/// `[abort_audit]`: `modes = ["reference-early", ...]`, `settle = "30s"`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAbortAudit {
    pub(super) modes: Option<Spanned<Vec<Spanned<AuditMode>>>>,
    pub(super) settle: Option<Spanned<HumanDuration>>,
}

/// `[thresholds]`: `checks = ["p99 < 250ms", "error_rate < 1%"]`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThresholds {
    pub(super) checks: Option<Vec<Spanned<String>>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub(super) kind: Option<Spanned<RawGatewayKind>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) abort_accounting: Option<AbortAccounting>,
    pub(super) abort_charge: Option<Spanned<Dur>>,
    pub(super) upstream_timeout: Option<Spanned<Dur>>,
    pub(super) rate_limit: Option<Spanned<RawRateLimit>>,
    pub(super) budget: Option<Spanned<RawBudget>>,
    pub(super) concurrency: Option<Spanned<RawConcurrency>>,
    pub(super) breaker: Option<Spanned<RawBreaker>>,
    pub(super) cpus: Option<Spanned<String>>,
    pub(super) template: Option<PathBuf>,
    pub(super) tls: Option<Spanned<bool>>,
    pub(super) http2: Option<Spanned<bool>>,
    pub(super) replicas: Option<Spanned<Int>>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawGatewayKind {
    Reference,
    Nginx,
    Haproxy,
    External,
    None,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhase {
    pub(super) rate: Option<Spanned<RawRate>>,
    pub(super) duration: Option<Spanned<HumanDuration>>,
    pub(super) arrival: Option<RawArrival>,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawArrival {
    Constant,
    Poisson,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) url: Option<Spanned<String>>,
    pub(super) urls: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) kind: Option<Spanned<UpstreamKind>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) workers: Option<Spanned<Workers>>,
    pub(super) backlog: Option<Spanned<Int>>,
    pub(super) on_disconnect: Option<OnDisconnect>,
    pub(super) cpu: Option<Spanned<HumanDuration>>,
    pub(super) cpu_dist: Option<CpuDist>,
    pub(super) cpu_sigma: Option<Spanned<Num>>,
    pub(super) sleep: Option<Spanned<HumanDuration>>,
    pub(super) bytes: Option<Spanned<Int>>,
    pub(super) status: Option<Spanned<Int>>,
    pub(super) cpus: Option<Spanned<String>>,
    pub(super) seed: Option<Spanned<Int>>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(super) enum UpstreamKind {
    Mock,
    External,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum OnDisconnect {
    Run,
    Cancel,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum CpuDist {
    Constant,
    Exponential,
    Lognormal,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequest {
    pub(super) method: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) headers: Option<Headers>,
    pub(super) body: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) name: Option<Spanned<String>>,
    pub(super) weight: Option<Spanned<Num>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) headers: Option<Headers>,
    pub(super) timeout: Option<Spanned<HumanDuration>>,
    pub(super) retry: Option<Spanned<RawRetry>>,
}

/// `keys`: the `[[keys]]` list, or a `[keys]` table that generates a key
/// space (TOML itself refuses a file with both).
pub(super) enum RawKeys {
    List(Vec<Spanned<RawKey>>),
    Space(RawKeySpace),
}

impl<'de> Deserialize<'de> for RawKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "[[keys]] entries (name = \"ui\") or one [keys] table (count = 100000, distribution = \"zipf\")",
                )
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<RawKeys, A::Error> {
                Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawKeys::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawKeys, A::Error> {
                Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawKeys::Space)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[keys]`: a generated key space.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeySpace {
    pub(super) count: Option<Spanned<Int>>,
    pub(super) distribution: Option<Spanned<String>>,
    pub(super) exponent: Option<Spanned<Num>>,
    pub(super) prefix: Option<Spanned<String>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub(super) timeout: Option<Spanned<HumanDuration>>,
    pub(super) max_connections: Option<Spanned<Int>>,
    pub(super) wait_at_max: Option<bool>,
    pub(super) threads: Option<Spanned<Int>>,
    pub(super) seed: Option<Spanned<Int>>,
    pub(super) interval: Option<Spanned<HumanDuration>>,
    pub(super) lag_bound: Option<Spanned<HumanDuration>>,
    pub(super) pacing_window: Option<Spanned<RawWindow>>,
    pub(super) request_ids: Option<Spanned<bool>>,
    pub(super) http: Option<Spanned<RawHttp>>,
    pub(super) streams_per_connection: Option<Spanned<Int>>,
    pub(super) reuse: Option<bool>,
    pub(super) tls: Option<Spanned<RawTls>>,
    pub(super) retry: Option<Spanned<RawRetry>>,
}

/// `[client] pacing_window = "auto"` or a duration.
pub(super) enum RawWindow {
    Auto,
    Fixed(std::time::Duration),
}

impl<'de> Deserialize<'de> for RawWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawWindow;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"auto\" or a duration such as \"25us\" or \"1ms\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<RawWindow, E> {
                if s == "auto" {
                    return Ok(RawWindow::Auto);
                }
                contend_units::parse_duration(s)
                    .map(RawWindow::Fixed)
                    .map_err(|e| E::custom(format!("{e} (or \"auto\")")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[client] http = "1.1" | "2" | "auto"` (also written as 1.1 or 2).
pub(super) enum RawHttp {
    Http1,
    Http2,
    Auto,
}

impl<'de> Deserialize<'de> for RawHttp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "\"1.1\", \"2\" or \"auto\"";
        impl Visitor<'_> for V {
            type Value = RawHttp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<RawHttp, E> {
                match s {
                    "1.1" | "http/1.1" => Ok(RawHttp::Http1),
                    "2" | "h2" => Ok(RawHttp::Http2),
                    "auto" => Ok(RawHttp::Auto),
                    _ => Err(E::custom(format!(
                        "http = \"{s}\" is not valid: expected {EXPECTED}"
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<RawHttp, E> {
                if v == 1.1 {
                    Ok(RawHttp::Http1)
                } else if v == 2.0 {
                    Ok(RawHttp::Http2)
                } else {
                    Err(E::custom(format!(
                        "http = {v} is not valid: expected {EXPECTED}"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<RawHttp, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[client] tls = { ca, insecure, cert, key, sni, resumption, version }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) ca: Option<Spanned<PathBuf>>,
    pub(super) insecure: Option<bool>,
    pub(super) cert: Option<Spanned<PathBuf>>,
    pub(super) key: Option<Spanned<PathBuf>>,
    pub(super) sni: Option<Spanned<String>>,
    pub(super) resumption: Option<bool>,
    pub(super) version: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------
// Values in human units. Their visitors' messages say what was expected;
// toml attaches the value's position to them.
// ---------------------------------------------------------------------------

/// A duration written with a unit (`"250ms"`), in the scenario's words.
pub(super) type HumanDuration = contend_units::de::HumanDuration<ScenarioWords>;

/// A rate per second (`20000`, `"20k"`), in the scenario's words.
pub(super) type HumanRate = contend_units::de::HumanRate<ScenarioWords>;

/// A phase's rate as written: one rate, or a ramp table `{ from, to }` whose
/// ends may be missing (the validation says which).
pub(super) type RawRate = contend_units::de::RateOrRamp<ScenarioWords>;

/// `workers = "unbounded"` or a count.
pub(super) enum Workers {
    Unbounded,
    Count(i64),
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Workers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"unbounded\" or a number of workers (1 or more)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Workers, E> {
                if s == "unbounded" {
                    Ok(Workers::Unbounded)
                } else {
                    Err(E::custom(format!(
                        "workers = \"{s}\" is not valid: expected \"unbounded\" or a number of workers (1 or more)"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Workers, E> {
                Ok(Workers::Count(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Workers, E> {
                Ok(Workers::Count(i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A header table `{ "name" = "value" }`, kept in the order written.
pub(super) struct Headers(pub(super) Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of header names to string values, like { \"x-a\" = \"b\" }")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Headers, A::Error> {
                let mut pairs: Vec<(Spanned<String>, Spanned<String>)> = Vec::new();
                while let Some(name) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Spanned<String>>()?;
                    pairs.push((name, value));
                }
                // toml hands tables over sorted by key; the spans give back the order written.
                pairs.sort_by_key(|(name, _)| name.span().start);
                Ok(Headers(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// What a TOML error says, with the fix where the parser gives none (a key
/// given twice).
pub(super) fn toml_error_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    if message != "duplicate key" {
        return message.to_string();
    }
    match e.span().and_then(|s| text.get(s)).unwrap_or("").trim() {
        "keys" => "[keys] (a generated key space) and [[keys]] (a list of keys) are both given: \
                   keep one of them"
            .to_string(),
        "" => "a key is given twice: keep one".to_string(),
        name => format!("{name} is given twice: keep one"),
    }
}
