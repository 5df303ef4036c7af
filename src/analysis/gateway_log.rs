//! A gateway's access log read into per-key accounting: lines, statuses,
//! client aborts, `-` upstream statuses, and the seconds accounted.
//!
//! Takes a finished gateway's [`AccessLog`] (its info and its open log
//! file, the reference gateway's or nginx's, which write the same shape)
//! and streams it line by line; hands on the [`GatewayAccounting`] that
//! `summary.json` keeps as `gateway_accounting`, and the lines that carry a
//! request id ([`LoggedRequests`]) for the abort audit's per-request join.
//! Parsing one line is the format's owner's (the gateway's `access_log`).
//! [`keep`] holds on to the raw log (a [`RawLog`]) for the report folder,
//! which keeps a copy of it beside the run.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::topology::AccessLog;
use contend_gateway::access_log::{ParsedLine, parse_line};

/// Most id-carrying lines kept for the per-request join (the newest); a
/// longer log's older lines are counted in [`LoggedRequests::dropped`].
pub const MAX_LOGGED_REQUESTS: usize = 100_000;

/// One key's totals over the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyAccounting {
    /// Lines logged.
    pub requests: u64,
    /// Lines per status logged.
    pub by_status: BTreeMap<u16, u64>,
    /// Lines logged 499 (the client left first).
    pub client_aborts: u64,
    /// Lines whose `$upstream_status` was `-` (no upstream answer).
    pub upstream_status_missing: u64,
    /// Seconds accounted: the gateway's `acct`, else `$upstream_response_time`.
    pub accounted_s: f64,
    /// Sum of `$upstream_response_time` (`-` counts 0).
    pub upstream_response_time_s: f64,
    /// Sum of `$request_time`.
    pub request_time_s: f64,
}

impl KeyAccounting {
    fn add(&mut self, line: &ParsedLine) {
        self.requests += 1;
        *self.by_status.entry(line.status).or_default() += 1;
        if line.status == 499 {
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
    /// Per API key (`-`: none).
    pub keys: BTreeMap<String, KeyAccounting>,
    /// Over all keys.
    pub totals: KeyAccounting,
}

/// What `summary.json` holds as `gateway_accounting`: what ran, and its log's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayAccounting {
    /// `reference` or `nginx`.
    pub kind: String,
    /// `contend 0.1.0` or `nginx/1.22.1`.
    pub version: String,
    /// Where it listened.
    pub addr: String,
    /// `early` or `complete`.
    pub abort_accounting: String,
    /// False when it had to be killed (its last lines may be missing).
    pub stopped_cleanly: bool,
    /// The config it ran with.
    pub config: String,
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
}

/// The id-carrying lines of a log, the newest [`MAX_LOGGED_REQUESTS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedRequests {
    /// The lines kept, in log order.
    pub lines: Vec<LoggedRequest>,
    /// Older lines left out.
    pub dropped: u64,
}

/// Streams a log (any reader of its lines) into totals and the id-carrying lines.
pub fn account(log: impl BufRead) -> std::io::Result<(LogAccounting, LoggedRequests)> {
    let mut out = LogAccounting::default();
    let mut requests = std::collections::VecDeque::new();
    let mut dropped = 0;
    for line in log.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Some(parsed) = parse_line(&line) else {
            out.unparsed_lines += 1;
            continue;
        };
        out.lines += 1;
        out.totals.add(&parsed);
        out.keys.entry(parsed.key.clone()).or_default().add(&parsed);
        if let Some(id) = &parsed.request_id {
            if requests.len() == MAX_LOGGED_REQUESTS {
                requests.pop_front();
                dropped += 1;
            }
            requests.push_back(LoggedRequest {
                id: id.clone(),
                key: parsed.key.clone(),
                status: parsed.status,
                request_time_s: parsed.request_time_s,
                upstream_status: parsed.upstream_status.clone(),
                accounted_s: parsed.accounted(),
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
    let (totals, requests) = account(std::io::BufReader::new(log.file))?;
    let info = log.info;
    Ok((
        GatewayAccounting {
            kind: info.kind.to_string(),
            version: info.version,
            addr: info.addr.to_string(),
            abort_accounting: info.abort_accounting.to_string(),
            stopped_cleanly: log.stopped_cleanly,
            config: info.config,
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
        let (totals, requests) = account(log.as_bytes()).unwrap();
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
    fn the_summary_shape_of_gateway_accounting_is_flat() {
        let accounting = GatewayAccounting {
            kind: "nginx".into(),
            version: "nginx/1.22.1".into(),
            addr: "127.0.0.1:1".into(),
            abort_accounting: "early".into(),
            stopped_cleanly: true,
            config: String::new(),
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
    }
}
