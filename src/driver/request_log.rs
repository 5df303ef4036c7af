//! Request ids and the driver's bounded per-request record, both only when
//! the scenario asks for them (`[client] request_ids`).
//!
//! Takes the request templates (encoded with a fixed-width id placeholder)
//! and each request's id, times and outcome from the workers; hands on a
//! [`RequestLogOutput`] per run that the abort audit joins with the
//! gateway's access log and the upstream's per-request log. With ids off
//! none of this exists and the request path is unchanged. With ids on, a
//! request is a copy of its template in the worker's [`Scratch`] buffer
//! with 16 hex digits overwritten: no allocation per request, and the
//! record lands in a ring allocated once per shard.

use std::collections::VecDeque;

use crate::outcome::Outcome;

/// The header that carries the id.
pub const ID_HEADER: &str = "x-request-id";
/// Hex digits of an id on the wire (a `u64`).
pub const ID_DIGITS: usize = 16;
/// What a template carries where each request's id goes.
pub const ID_PLACEHOLDER: &str = "0000000000000000";
/// Records kept per run over all shards; past it the oldest go, counted.
pub const RECORDS_PER_RUN: usize = 100_000;

/// The id as it is sent and logged: 16 lower-case hex digits.
pub fn id_text(id: u64) -> String {
    format!("{id:016x}")
}

/// Reads an id back from its text; `None` when it is not one of ours.
pub fn parse_id(text: &str) -> Option<u64> {
    if text.len() != ID_DIGITS {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

fn write_hex(id: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate().take(ID_DIGITS) {
        let shift = 4 * (ID_DIGITS - 1 - i);
        *byte = DIGITS[((id >> shift) & 0xf) as usize];
    }
}

/// Where the placeholder sits in an encoded request; `None` without one.
pub fn placeholder_at(request: &[u8]) -> Option<usize> {
    let needle = format!("\r\n{ID_HEADER}: {ID_PLACEHOLDER}\r\n");
    request
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .map(|at| at + 2 + ID_HEADER.len() + 2)
}

/// A worker's copy of the last template it sent, whose id is overwritten
/// per request. Empty (and unallocated) until ids are used.
#[derive(Debug, Default)]
pub struct Scratch {
    buf: Vec<u8>,
    key: Option<usize>,
}

impl Scratch {
    /// The bytes of `template` (key `key`) with `id` at `id_at`. The
    /// template is copied only when the key differs from the last one.
    pub fn stamp(&mut self, template: &[u8], key: usize, id_at: usize, id: u64) -> &mut [u8] {
        let buf = self.copy(template, key);
        if let Some(digits) = buf.get_mut(id_at..id_at + ID_DIGITS) {
            write_hex(id, digits);
        }
        buf
    }

    /// The copy of `template` (key `key`), for its caller to overwrite in
    /// place (a generated key); copied only when the key changed.
    pub fn copy(&mut self, template: &[u8], key: usize) -> &mut [u8] {
        if self.key != Some(key) {
            self.buf.clear();
            self.buf.extend_from_slice(template);
            self.key = Some(key);
        }
        &mut self.buf
    }
}

/// One request as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRecord {
    /// Its id; `None` when it never reached the wire (it waited past its
    /// deadline for a connection).
    pub id: Option<u64>,
    /// Index of the key (request template).
    pub key: usize,
    /// Intended send time, CLOCK_MONOTONIC ns.
    pub intended_ns: u64,
    /// Actual send time, CLOCK_MONOTONIC ns; `None` when not sent.
    pub sent_ns: Option<u64>,
    /// When its outcome was known (response, or the client timeout), ns.
    pub end_ns: u64,
    /// What became of it.
    pub outcome: Outcome,
}

/// One shard's ids and records.
#[derive(Debug)]
pub struct RequestLog {
    /// The shard's number, in the id's top 16 bits.
    shard_bits: u64,
    next_seq: u64,
    capacity: usize,
    records: VecDeque<RequestRecord>,
    dropped: u64,
}

impl RequestLog {
    /// A shard's log keeping at most `capacity` records (the newest).
    pub fn new(shard: usize, capacity: usize) -> RequestLog {
        RequestLog {
            shard_bits: (shard as u64 & 0xffff) << 48,
            next_seq: 1,
            capacity: capacity.max(1),
            records: VecDeque::with_capacity(capacity.max(1)),
            dropped: 0,
        }
    }

    /// The next id, unique in the run: shard number, then a sequence.
    pub fn next_id(&mut self) -> u64 {
        let id = self.shard_bits | (self.next_seq & 0xffff_ffff_ffff);
        self.next_seq += 1;
        id
    }

    /// Keeps `record`, dropping (and counting) the oldest when full.
    pub fn push(&mut self, record: RequestRecord) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
            self.dropped += 1;
        }
        self.records.push_back(record);
    }

    /// Hands the records on, leaving the log empty.
    pub fn take(&mut self) -> (Vec<RequestRecord>, u64) {
        let records = std::mem::take(&mut self.records).into();
        (records, std::mem::take(&mut self.dropped))
    }
}

/// Every shard's records of a run, by intended time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestLogOutput {
    /// The run's start (offset 0 of the schedule), CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// The records kept, oldest intended time first.
    pub records: Vec<RequestRecord>,
    /// Records dropped because a shard's ring was full.
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_overwrite_the_placeholder_in_place() {
        let template = super::super::http1::encode_request(
            "GET",
            "/",
            "h:1",
            &[
                ("x-api-key".into(), "ui".into()),
                (ID_HEADER.into(), ID_PLACEHOLDER.into()),
            ],
            b"",
        );
        let at = placeholder_at(&template).expect("placeholder");
        let mut scratch = Scratch::default();
        let mut log = RequestLog::new(3, 4);
        let first = log.next_id();
        let bytes = scratch.stamp(&template, 0, at, first).to_vec();
        assert_eq!(
            bytes,
            b"GET / HTTP/1.1\r\nhost: h:1\r\nx-api-key: ui\r\nx-request-id: 0003000000000001\r\n\r\n"
        );
        let second = log.next_id();
        let bytes = scratch.stamp(&template, 0, at, second);
        assert!(bytes.ends_with(b"x-request-id: 0003000000000002\r\n\r\n"));
        assert_eq!(parse_id(&id_text(second)), Some(second));
        assert_eq!(parse_id("xyz"), None);
        assert_eq!(placeholder_at(b"GET / HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn the_log_keeps_the_newest_and_counts_the_rest() {
        let mut log = RequestLog::new(0, 2);
        for i in 0..5 {
            log.push(RequestRecord {
                id: Some(i),
                key: 0,
                intended_ns: i,
                sent_ns: None,
                end_ns: i,
                outcome: Outcome::ClientTimeout,
            });
        }
        let (records, dropped) = log.take();
        assert_eq!(dropped, 3);
        assert_eq!(
            records.iter().map(|r| r.id).collect::<Vec<_>>(),
            [Some(3), Some(4)]
        );
        assert_eq!(log.take(), (Vec::new(), 0));
    }
}
