//! A gateway's access log read into per-key accounting: lines, statuses,
//! client aborts, `-` upstream statuses, and the seconds accounted.
//!
//! Takes a finished gateway's [`AccessLog`] (its info and its open log
//! file: the reference gateway's or nginx's, which write the same shape,
//! or HAProxy's) and streams it line by line; hands on the
//! [`GatewayAccounting`] that `summary.json` keeps as `gateway_accounting`,
//! and the lines that carry a request id ([`LoggedRequests`]) for the abort
//! audit's per-request join. Parsing one line is the format's owner's: the
//! reference gateway's `access_log` for its shape and nginx's, and
//! [`super::haproxy_log`] for the line of `scenarios/haproxy/gateway.cfg`.
//! [`keep`] holds on to the raw log (a [`RawLog`]) for the report folder,
//! which keeps a copy of it beside the run.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::haproxy_log::{self, HaproxyLine};
use crate::topology::AccessLog;
use contend_gateway::access_log::{ParsedLine, parse_line};

/// Which shape a log's lines have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogShape {
    /// The reference gateway's and nginx's (`key=... rt=SECS us=... urt=SECS`).
    Nginx,
    /// HAProxy's (times in ms, its termination state): see [`haproxy_log`].
    Haproxy,
}

impl LogShape {
    /// The shape the gateway of `kind` (`GatewayInfo::kind`) writes.
    pub fn of_kind(kind: &str) -> LogShape {
        if kind == "haproxy" {
            LogShape::Haproxy
        } else {
            LogShape::Nginx
        }
    }
}

/// One access line as the accounting reads it: the fields every gateway
/// logs, and the termination state of a gateway that logs one.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Key, status, times, upstream status and request id.
    pub fields: ParsedLine,
    /// HAProxy's `%ts` (`CH`, `sH`, `--`); `None` for the other gateways.
    pub termination: Option<String>,
}

impl Line {
    /// The line says the client left first: nginx's (and the reference
    /// gateway's) `499`, or a HAProxy termination state that starts with
    /// `C` (the client aborted; HAProxy then logs some other status, such
    /// as 400 for `CH`).
    pub fn client_abort(&self) -> bool {
        match &self.termination {
            Some(ts) => ts.starts_with('C'),
            None => self.fields.status == 499,
        }
    }
}

/// Most id-carrying lines kept for the per-request join (the newest); a
/// longer log's older lines are counted in [`LoggedRequests::dropped`].
pub const MAX_LOGGED_REQUESTS: usize = 100_000;

/// One key's totals over the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyAccounting {
    /// Lines logged.
    pub requests: u64,
    /// Lines per status logged.
    #[serde(deserialize_with = "status_counts")]
    pub by_status: BTreeMap<u16, u64>,
    /// Lines that say the client left first: logged 499, or with a HAProxy
    /// termination state starting with `C`.
    pub client_aborts: u64,
    /// Lines whose `$upstream_status` was `-` (no upstream answer).
    pub upstream_status_missing: u64,
    /// Seconds accounted: the gateway's `acct`, else `$upstream_response_time`.
    pub accounted_s: f64,
    /// Sum of `$upstream_response_time` (`-` counts 0).
    pub upstream_response_time_s: f64,
    /// Sum of `$request_time`.
    pub request_time_s: f64,
    /// Lines per termination state (HAProxy's `%ts`); empty for gateways
    /// that log none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_termination: BTreeMap<String, u64>,
}

impl KeyAccounting {
    fn add(&mut self, full: &Line) {
        let line = &full.fields;
        self.requests += 1;
        *self.by_status.entry(line.status).or_default() += 1;
        if let Some(ts) = &full.termination {
            *self.by_termination.entry(ts.clone()).or_default() += 1;
        }
        if full.client_abort() {
            self.client_aborts += 1;
        }
        if line.upstream_status.trim() == "-" {
            self.upstream_status_missing += 1;
        }
        self.accounted_s += line.accounted();
        self.upstream_response_time_s += line.upstream_response_time_s.unwrap_or(0.0);
        self.request_time_s += line.request_time_s;
    }
}

/// The totals of a whole log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogAccounting {
    /// Lines read.
    pub lines: u64,
    /// Lines that were not in the expected shape (counted, not guessed at).
    pub unparsed_lines: u64,
    /// The gateway's own messages in its log (HAProxy's `Proxy ... stopped`), not requests.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub notices: u64,
    /// Per API key (`-`: none).
    pub keys: BTreeMap<String, KeyAccounting>,
    /// Over all keys.
    pub totals: KeyAccounting,
    /// Lines by what their connection negotiated, as the gateway saw it
    /// (`TLSv1.3 HTTP/2.0`, `plain HTTP/1.1`); empty when its log does not
    /// say (the reference gateway's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub negotiated: BTreeMap<String, u64>,
    /// Lines whose TLS session was resumed, as the gateway saw it.
    #[serde(default)]
    pub tls_sessions_reused: u64,
}

/// What `summary.json` holds as `gateway_accounting`: what ran, and its log's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayAccounting {
    /// `reference`, `nginx` or `haproxy`.
    pub kind: String,
    /// `contend 0.1.0`, `nginx/1.22.1` or `haproxy/2.6.12-1+deb12u4`.
    pub version: String,
    /// Where it listened.
    pub addr: String,
    /// `early` or `complete`.
    pub abort_accounting: String,
    /// False when it had to be killed (its last lines may be missing).
    pub stopped_cleanly: bool,
    /// The config it ran with.
    pub config: String,
    /// Its own runtime counters after the load (HAProxy's `show stat`:
    /// `server.smax` the most requests in flight to the upstream at once,
    /// `server.slim` its `maxconn`, `backend.qmax` the longest queue,
    /// `backend.cli_abrt` the transfers the client aborted); empty for a
    /// gateway that keeps none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
    /// The log's totals.
    #[serde(flatten)]
    pub log: LogAccounting,
}

/// One logged request that carried an id: what the gateway said of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Its `x-request-id`.
    pub id: String,
    /// Its API key (`-`: none).
    pub key: String,
    /// Status logged.
    pub status: u16,
    /// `$request_time`, s.
    pub request_time_s: f64,
    /// `$upstream_status` as logged (`-`: none).
    pub upstream_status: String,
    /// Seconds accounted for it.
    pub accounted_s: f64,
    /// HAProxy's termination state; `None` for the other gateways.
    #[serde(default)]
    pub termination: Option<String>,
    /// The line says the client left first (see [`Line::client_abort`]).
    #[serde(default)]
    pub client_abort: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `{"200": 3}` read back into statuses. JSON keys are strings; read
/// through `#[serde(flatten)]` (as `GatewayAccounting` holds its log's
/// totals) they reach a `u16` key as strings, which serde does not parse,
/// so they are parsed here.
fn status_counts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, u64>, D::Error> {
    let text: BTreeMap<String, u64> = Deserialize::deserialize(d)?;
    text.into_iter()
        .map(|(status, n)| {
            status
                .parse::<u16>()
                .map(|s| (s, n))
                .map_err(|_| serde::de::Error::custom(format!("status {status:?} is not a number")))
        })
        .collect()
}

/// The id-carrying lines of a log, the newest [`MAX_LOGGED_REQUESTS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedRequests {
    /// The lines kept, in log order.
    pub lines: Vec<LoggedRequest>,
    /// Older lines left out.
    pub dropped: u64,
}

/// One line read in `shape`: a request, a notice of the gateway's own, or
/// neither.
enum Read {
    Access(Line),
    Notice,
    Unparsed,
}

fn read_line(line: &str, shape: LogShape) -> Read {
    match shape {
        LogShape::Nginx => parse_line(line).map_or(Read::Unparsed, |fields| {
            Read::Access(Line {
                fields,
                termination: None,
            })
        }),
        LogShape::Haproxy => match haproxy_log::parse_line(line) {
            HaproxyLine::Access(l) => Read::Access(l),
            HaproxyLine::Notice => Read::Notice,
            HaproxyLine::Unparsed => Read::Unparsed,
        },
    }
}

/// Streams a log (any reader of its lines, in `shape`) into totals and the
/// id-carrying lines.
pub fn account(
    log: impl BufRead,
    shape: LogShape,
) -> std::io::Result<(LogAccounting, LoggedRequests)> {
    let mut out = LogAccounting::default();
    let mut requests = std::collections::VecDeque::new();
    let mut dropped = 0;
    for line in log.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match read_line(&line, shape) {
            Read::Access(l) => l,
            Read::Notice => {
                out.notices += 1;
                continue;
            }
            Read::Unparsed => {
                out.unparsed_lines += 1;
                continue;
            }
        };
        out.lines += 1;
        if let Some(negotiated) = &parsed.fields.negotiated {
            *out.negotiated.entry(negotiated.clone()).or_default() += 1;
        }
        out.tls_sessions_reused += u64::from(parsed.fields.session_reused);
        out.totals.add(&parsed);
        out.keys
            .entry(parsed.fields.key.clone())
            .or_default()
            .add(&parsed);
        if let Some(id) = &parsed.fields.request_id {
            if requests.len() == MAX_LOGGED_REQUESTS {
                requests.pop_front();
                dropped += 1;
            }
            let f = &parsed.fields;
            requests.push_back(LoggedRequest {
                id: id.clone(),
                key: f.key.clone(),
                status: f.status,
                request_time_s: f.request_time_s,
                upstream_status: f.upstream_status.clone(),
                accounted_s: f.accounted(),
                client_abort: parsed.client_abort(),
                termination: parsed.termination.clone(),
            });
        }
    }
    Ok((
        out,
        LoggedRequests {
            lines: requests.into(),
            dropped,
        },
    ))
}

/// Largest copy of a gateway's access log a report folder keeps, bytes: a
/// longer log is kept as its first whole lines up to this size (its
/// accounting in `summary.json` still counts every line).
pub const MAX_KEPT_LOG_BYTES: u64 = 1 << 30;

/// A finished gateway's raw access log, for the report folder to keep
/// beside the run (`access.log`, and the format it was written in).
#[derive(Debug)]
pub struct RawLog {
    /// The log, open (the gateway's own folder may be gone by now).
    pub file: std::fs::File,
    /// Its size when the gateway had finished, bytes.
    pub bytes: u64,
    /// The format it was written in, as `contend logs --format` takes it;
    /// `None` when the gateway's config does not say.
    pub format: Option<String>,
}

impl RawLog {
    /// The bytes a report folder keeps: all of them, or the whole lines
    /// of the first [`MAX_KEPT_LOG_BYTES`].
    pub fn kept_bytes(&self) -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        if self.bytes <= MAX_KEPT_LOG_BYTES {
            return Ok(self.bytes);
        }
        // Cut after the last newline before the cap.
        let window = 1 << 20;
        let start = MAX_KEPT_LOG_BYTES - window;
        let mut tail = vec![0; window as usize];
        self.file.read_exact_at(&mut tail, start)?;
        Ok(tail
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(MAX_KEPT_LOG_BYTES, |at| start + at as u64 + 1))
    }

    /// Copies the kept bytes (see [`RawLog::kept_bytes`]) to `w`, from the
    /// log's start whatever was read of it before.
    pub fn copy_to(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        use std::io::{Read, Seek};
        let mut file = self.file.try_clone()?;
        file.seek(std::io::SeekFrom::Start(0))?;
        let kept = self.kept_bytes()?;
        let copied = std::io::copy(&mut file.take(kept), w)?;
        if copied < kept {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the access log ended after {copied} of {kept} bytes"),
            ));
        }
        Ok(())
    }
}

/// The raw log of a finished gateway, kept before [`read`] consumes it:
/// the same open file (its own descriptor), its size, and its format.
pub fn keep(log: &AccessLog) -> std::io::Result<RawLog> {
    Ok(RawLog {
        file: log.file.try_clone()?,
        bytes: log.file.metadata()?.len(),
        format: crate::logs::format::written_by(log.info.kind, &log.info.config),
    })
}

/// A finished gateway's accounting and its id-carrying lines.
pub fn read(log: AccessLog) -> std::io::Result<(GatewayAccounting, LoggedRequests)> {
    read_replicas(log, Vec::new())
}

/// The same over the logs of `first` and its replicas (`more`), read as
/// one: every replica's lines in the totals. What ran is `first`'s; it
/// stopped cleanly only if every replica did.
pub fn read_replicas(
    first: AccessLog,
    more: Vec<AccessLog>,
) -> std::io::Result<(GatewayAccounting, LoggedRequests)> {
    let shape = LogShape::of_kind(first.info.kind);
    let stopped_cleanly = first.stopped_cleanly && more.iter().all(|l| l.stopped_cleanly);
    let lines = more.into_iter().fold(
        Box::new(first.file) as Box<dyn std::io::Read>,
        |lines, log| Box::new(std::io::Read::chain(lines, log.file)),
    );
    let (totals, requests) = account(std::io::BufReader::new(lines), shape)?;
    let info = first.info;
    Ok((
        GatewayAccounting {
            kind: info.kind.to_string(),
            version: info.version,
            addr: info.addr.to_string(),
            abort_accounting: info.abort_accounting.to_string(),
            stopped_cleanly,
            config: info.config,
            counters: BTreeMap::new(),
            log: totals,
        },
        requests,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_summed_per_key_with_unparsed_lines_counted() {
        let log = "\
2026-01-01T00:00:00.000+00:00 key=ui method=GET path=/ status=200 rt=0.010 us=200 urt=0.010 acct=0.010 id=a1
2026-01-01T00:00:00.000+00:00 key=exporter method=GET path=/ status=499 rt=0.050 us=- urt=0.050 id=a2
not a line at all

{\"key\":\"ui\",\"status\":504,\"request_time_s\":2.0,\"upstream_status\":504,\"upstream_response_time_s\":2.0,\"accounted_s\":2.0}
";
        let (totals, requests) = account(log.as_bytes(), LogShape::Nginx).unwrap();
        assert_eq!((totals.lines, totals.unparsed_lines), (3, 1));
        let ui = &totals.keys["ui"];
        assert_eq!(ui.requests, 2);
        assert_eq!(ui.by_status.get(&504), Some(&1));
        assert!((ui.accounted_s - 2.010).abs() < 1e-9, "{ui:?}");
        let exporter = &totals.keys["exporter"];
        assert_eq!(
            (exporter.client_aborts, exporter.upstream_status_missing),
            (1, 1)
        );
        assert!((exporter.accounted_s - 0.050).abs() < 1e-9);
        // Only the lines with an id are kept for the join.
        let ids: Vec<&str> = requests.lines.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a1", "a2"]);
        assert_eq!(requests.dropped, 0);
    }

    #[test]
    fn a_haproxy_log_counts_its_aborts_by_termination_and_its_notices_apart() {
        let log = "\
26/Nov/2026:02:17:36.506 key=ui method=GET path=/ status=200 ta=12 treq=0 tw=0 tc=0 tr=12 ts=-- id=a1
26/Nov/2026:02:17:36.742 key=exporter method=GET path=/ status=400 ta=50 treq=0 tw=0 tc=0 tr=-1 ts=CH id=a2
26/Nov/2026:02:17:38.000 key=batch method=GET path=/ status=504 ta=2002 treq=0 tw=0 tc=0 tr=-1 ts=sH id=a3
26/Nov/2026:02:17:38.000 key=ui status=200
Proxy gateway stopped (cumulated conns: FE: 3, BE: 0).
";
        let (totals, requests) = account(log.as_bytes(), LogShape::Haproxy).unwrap();
        assert_eq!(
            (totals.lines, totals.unparsed_lines, totals.notices),
            (3, 1, 1)
        );
        let exporter = &totals.keys["exporter"];
        assert_eq!(exporter.by_status.get(&400), Some(&1));
        assert_eq!(exporter.by_termination.get("CH"), Some(&1));
        assert_eq!(
            (exporter.client_aborts, exporter.upstream_status_missing),
            (1, 1)
        );
        assert!((exporter.accounted_s - 0.050).abs() < 1e-9, "{exporter:?}");
        let batch = &totals.keys["batch"];
        assert_eq!(batch.client_aborts, 0);
        assert!((batch.accounted_s - 2.002).abs() < 1e-9, "{batch:?}");
        let aborts: Vec<(&str, bool, Option<&str>)> = requests
            .lines
            .iter()
            .map(|r| (r.id.as_str(), r.client_abort, r.termination.as_deref()))
            .collect();
        assert_eq!(
            aborts,
            [
                ("a1", false, Some("--")),
                ("a2", true, Some("CH")),
                ("a3", false, Some("sH"))
            ]
        );
        // The nginx shape has no termination state, and its notices are not dated lines.
        assert_eq!(LogShape::of_kind("haproxy"), LogShape::Haproxy);
        assert_eq!(LogShape::of_kind("nginx"), LogShape::Nginx);
    }

    #[test]
    fn the_summary_shape_of_gateway_accounting_is_flat() {
        let accounting = GatewayAccounting {
            kind: "nginx".into(),
            version: "nginx/1.22.1".into(),
            addr: "127.0.0.1:1".into(),
            abort_accounting: "early".into(),
            stopped_cleanly: true,
            config: String::new(),
            counters: BTreeMap::new(),
            log: LogAccounting::default(),
        };
        let value = serde_json::to_value(&accounting).unwrap();
        for field in [
            "kind",
            "version",
            "lines",
            "unparsed_lines",
            "keys",
            "totals",
        ] {
            assert!(value.get(field).is_some(), "{field} missing: {value}");
        }
        let back: GatewayAccounting = serde_json::from_value(value).unwrap();
        assert_eq!(back, accounting);
        // With lines: the statuses (JSON's string keys) read back through
        // the flattened totals, as `contend report DIR` reads them.
        let log = "2026-01-01T00:00:00.000+00:00 key=ui method=GET path=/ status=200 rt=0.010 us=200 urt=0.010 id=-\n";
        let (totals, _) = account(log.as_bytes(), LogShape::Nginx).unwrap();
        let with_lines = GatewayAccounting {
            log: totals,
            ..accounting
        };
        let text = serde_json::to_string(&with_lines).unwrap();
        let back: GatewayAccounting = serde_json::from_str(&text).unwrap();
        assert_eq!(back, with_lines);
    }
}
