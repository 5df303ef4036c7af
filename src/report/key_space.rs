//! The summary of a generated key space (`[keys] count = N`): how many
//! keys were seen, the hottest 20 with their counts, and quantiles of the
//! admitted (2xx) count per key, rather than one row per key.
//!
//! Takes the merged [`KeySpaceCounts`] and the scenario's [`KeySpace`];
//! hands on a [`KeySpaceSummary`] for summary.json and the console.

use serde::{Deserialize, Serialize};

use crate::record::KeySpaceCounts;
use crate::scenario::KeySpace;

/// Keys listed by name in summary.json.
pub const TOP_KEYS: usize = 20;

/// `key_space` in summary.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySpaceSummary {
    /// Keys in the space.
    pub count: u32,
    /// `zipf` or `uniform`.
    pub distribution: String,
    /// The Zipf exponent (absent for uniform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponent: Option<f64>,
    /// Keys that had at least one arrival.
    pub keys_seen: u64,
    /// Arrivals over all keys.
    pub arrivals: u64,
    /// The busiest keys by arrivals, busiest first (ties by number).
    pub top: Vec<KeyCounts>,
    /// Quantiles of admitted (2xx) responses per key over all keys of
    /// the space (those never drawn count as 0).
    pub admitted_per_key: AdmittedQuantiles,
}

/// One key's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyCounts {
    /// Its name, as sent in `x-api-key`.
    pub key: String,
    /// Arrivals of this key (each with one outcome).
    pub arrivals: u64,
    /// 2xx responses.
    pub admitted: u64,
    /// 429 responses.
    pub limited: u64,
    /// Every other outcome (other statuses, timeouts, errors).
    pub other: u64,
}

/// Quantiles of a per-key count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdmittedQuantiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The most.
    pub max: u64,
}

impl KeySpaceSummary {
    /// The summary of `counts` over `space`.
    pub fn of(space: &KeySpace, counts: &KeySpaceCounts) -> KeySpaceSummary {
        let rows = &counts.rows;
        let mut order: Vec<u32> = (0..rows.len() as u32)
            .filter(|&k| rows[k as usize][0] > 0)
            .collect();
        let keys_seen = order.len() as u64;
        let arrivals = rows.iter().map(|r| u64::from(r[0])).sum();
        // Only the top few are needed: partition, then sort those.
        let busiest = |a: &u32, b: &u32| {
            rows[*b as usize][0]
                .cmp(&rows[*a as usize][0])
                .then(a.cmp(b))
        };
        if order.len() > TOP_KEYS {
            order.select_nth_unstable_by(TOP_KEYS, busiest);
            order.truncate(TOP_KEYS);
        }
        order.sort_by(busiest);
        let top = order
            .iter()
            .map(|&k| {
                let [n, ok, limited, other] = counts.row(k as usize);
                KeyCounts {
                    key: space.name(k),
                    arrivals: n.into(),
                    admitted: ok.into(),
                    limited: limited.into(),
                    other: other.into(),
                }
            })
            .collect();
        let mut admitted: Vec<u32> = rows.iter().map(|r| r[1]).collect();
        admitted.resize(space.count as usize, 0);
        admitted.sort_unstable();
        let at = |q: f64| -> u64 {
            if admitted.is_empty() {
                return 0;
            }
            let i = ((q * admitted.len() as f64).ceil() as usize).clamp(1, admitted.len()) - 1;
            admitted[i].into()
        };
        KeySpaceSummary {
            count: space.count,
            distribution: space.distribution_name().to_string(),
            exponent: space.exponent(),
            keys_seen,
            arrivals,
            top,
            admitted_per_key: AdmittedQuantiles {
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                p999: at(0.999),
                max: admitted.last().copied().map_or(0, u64::from),
            },
        }
    }

    /// The console's lines: the space, and its five busiest keys.
    pub fn write(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let exponent = self.exponent.map_or(String::new(), |e| format!(" s={e}"));
        let top_share = |k: &KeyCounts| 100.0 * k.arrivals as f64 / self.arrivals.max(1) as f64;
        writeln!(
            w,
            "  Key space: {} keys ({}{exponent}), {} seen; admitted per key p50 {} p99 {} max {}",
            self.count,
            self.distribution,
            self.keys_seen,
            self.admitted_per_key.p50,
            self.admitted_per_key.p99,
            self.admitted_per_key.max
        )?;
        for k in self.top.iter().take(5) {
            writeln!(
                w,
                "    {:<16} {:>8} arrivals ({:>5.1}%)  2xx {:<8} 429 {:<8} other {}",
                k.key,
                k.arrivals,
                top_share(k),
                k.admitted,
                k.limited,
                k.other
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::scenario::KeyDistribution;

    #[test]
    fn lists_the_busiest_keys_and_quantiles_over_every_key() {
        let space = KeySpace {
            count: 100,
            distribution: KeyDistribution::Uniform,
            prefix: "u".into(),
        };
        let mut counts = KeySpaceCounts::new(100);
        for k in 0..30u32 {
            for _ in 0..=k {
                counts.add(k, Outcome::Response(200));
            }
        }
        counts.add(99, Outcome::Response(429));
        let s = KeySpaceSummary::of(&space, &counts);
        assert_eq!(s.keys_seen, 31);
        assert_eq!(s.arrivals, (1..=30).sum::<u64>() + 1);
        assert_eq!(s.top.len(), TOP_KEYS);
        assert_eq!(s.top[0].key, "u29");
        assert_eq!(s.top[0].admitted, 30);
        assert_eq!(s.admitted_per_key.p50, 0);
        assert_eq!(s.admitted_per_key.max, 30);
    }
}
