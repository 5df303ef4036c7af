//! `histograms.hlog`: every histogram of a run, whole, so that report
//! folders can be merged exactly (`contend merge`): latency, service time,
//! schedule lag, generator lag, connect and TLS handshake times, latency per
//! outcome class and per key.
//!
//! Takes a run's [`Totals`] (or merged histograms) and hands on one file in
//! HdrHistogram's interval-log format (version 1.3), one tagged entry per
//! histogram (`latency`, `service`, `schedule_lag`, `generator_lag`,
//! `connect`, `tls_handshake`, `class/2xx`, ..., `key/<name>` with the name percent-encoded,
//! `address/<index>` for a target at several addresses), which
//! HdrHistogram's own tools read too. Histograms add bucket by bucket, so
//! a merge of shards is the histogram of the whole, not an estimate from
//! percentiles.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::outcome::Class;
use crate::record::Totals;

/// The file's name in a report folder.
pub const FILE: &str = "histograms.hlog";

/// A run's histograms by name (microseconds).
#[derive(Debug, Clone, Default)]
pub struct Histograms {
    by_name: BTreeMap<String, Histogram<u64>>,
}

impl Histograms {
    /// The histograms of a run's totals; keys by `key_names` (those with
    /// no sent request have none).
    pub fn of(totals: &Totals, key_names: &[String]) -> Histograms {
        let mut by_name = BTreeMap::new();
        by_name.insert("latency".to_string(), totals.latency_us.clone());
        by_name.insert("service".to_string(), totals.service_us.clone());
        by_name.insert("schedule_lag".to_string(), totals.schedule_lag_us.clone());
        by_name.insert("generator_lag".to_string(), totals.generator_lag_us.clone());
        by_name.insert("connect".to_string(), totals.connections.connect_us.clone());
        by_name.insert(
            "tls_handshake".to_string(),
            totals.connections.tls_handshake_us.clone(),
        );
        for (class, h) in Class::ALL.iter().zip(&totals.latency_by_class_us) {
            by_name.insert(format!("class/{}", class.name()), h.clone());
        }
        for (i, a) in totals.addresses.iter().enumerate() {
            by_name.insert(super::addresses::histogram_name(i), a.latency_us.clone());
        }
        for (name, key) in key_names.iter().zip(&totals.keys) {
            if let Some(h) = key.latency_us() {
                by_name.insert(format!("key/{}", encode_name(name)), h.clone());
            }
        }
        Histograms { by_name }
    }

    /// The histogram named `name` (`latency`, `class/2xx`, `key/<name>`).
    pub fn get(&self, name: &str) -> Option<&Histogram<u64>> {
        self.by_name.get(name)
    }

    /// The latency histogram of key `key`, when it sent anything.
    pub fn key(&self, key: &str) -> Option<&Histogram<u64>> {
        self.by_name.get(&format!("key/{}", encode_name(key)))
    }

    /// Adds `other`'s histograms to these, name by name: exact.
    pub fn merge(&mut self, other: &Histograms) -> Result<(), String> {
        for (name, h) in &other.by_name {
            match self.by_name.get_mut(name) {
                Some(mine) => {
                    mine.auto(true);
                    mine.add(h)
                        .map_err(|e| format!("histogram {name}: {e:?}"))?
                }
                None => {
                    self.by_name.insert(name.clone(), h.clone());
                }
            }
        }
        Ok(())
    }

    /// Writes the file.
    pub fn write(&self, mut w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "#[Histogram log format version 1.3]")?;
        writeln!(
            w,
            "#[A contend run's histograms, in microseconds, one tagged entry each]"
        )?;
        writeln!(
            w,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        let mut serializer = V2DeflateSerializer::new();
        let mut log = IntervalLogWriterBuilder::new().begin_log_with(&mut w, &mut serializer)?;
        for (name, h) in &self.by_name {
            let tag = Tag::new(name).ok_or_else(|| io::Error::other(format!("tag {name}")))?;
            log.write_histogram(h, Duration::ZERO, Duration::ZERO, Some(tag))
                .map_err(|e| io::Error::other(format!("histogram {name}: {e}")))?;
        }
        Ok(())
    }

    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<Histograms, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let mut by_name = BTreeMap::new();
        let mut deserializer = Deserializer::new();
        for entry in IntervalLogIterator::new(&bytes) {
            let LogEntry::Interval(h) = entry.map_err(|e| format!("not an interval log: {e:?}"))?
            else {
                continue;
            };
            let name = h
                .tag()
                .map(|t| t.as_str().to_string())
                .ok_or("an entry without a name")?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(h.encoded_histogram())
                .map_err(|e| format!("{name}: not base64: {e}"))?;
            let mut hist: Histogram<u64> = deserializer
                .deserialize(&mut &raw[..])
                .map_err(|e| format!("{name}: not a histogram: {e:?}"))?;
            // Another shard's may reach further: adding then widens it.
            hist.auto(true);
            by_name.insert(name, hist);
        }
        Ok(Histograms { by_name })
    }
}

/// A key's name as a tag: the bytes a tag may not hold (`,`, white space,
/// `%`) percent-encoded.
fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b == b',' || b == b'%' || b.is_ascii_whitespace() {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_histogram;

    #[test]
    fn histograms_round_trip_and_merge_exactly() {
        let mut totals = Totals::new(2);
        for v in [10, 20, 30_000] {
            totals.latency_us.record(v).unwrap();
            totals.latency_by_class_us[0].record(v).unwrap();
        }
        let names = vec!["a key, with space".to_string(), "b".to_string()];
        let h = Histograms::of(&totals, &names);
        let mut file = Vec::new();
        h.write(&mut file).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, &file).unwrap();
        let back = Histograms::read(&path).unwrap();
        assert_eq!(back.get("latency"), Some(&totals.latency_us));
        assert_eq!(back.get("class/2xx").map(|h| h.len()), Some(3));
        let mut merged = back.clone();
        merged.merge(&back).unwrap();
        let mut twice = new_histogram();
        twice.add(&totals.latency_us).unwrap();
        twice.add(&totals.latency_us).unwrap();
        assert_eq!(merged.get("latency"), Some(&twice));
        assert_eq!(
            encode_name("a key, with space"),
            "a%20key%2C%20with%20space"
        );
    }
}
