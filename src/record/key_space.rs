//! Compact per-key counters of a generated key space: four `u32`s a key
//! (arrivals ended, 2xx, 429, other), indexed by key number, instead of a
//! histogram per key, so that 100,000 keys cost 1.6 MB a shard.
//!
//! Takes each arrival's key number and outcome from the recorder; hands
//! the merged counters to the summary.

use crate::outcome::Outcome;

/// Column of each count in a key's row.
const ENDED: usize = 0;
const OK: usize = 1;
const LIMITED: usize = 2;
const OTHER: usize = 3;

/// An arrival's key: its index among the scenario's keys, and its number in
/// a generated key space ([`KeyPick::NO_SLOT`] without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPick {
    /// Index of the key's request template.
    pub key: usize,
    /// The key's number in a generated key space.
    pub slot: u32,
}

impl KeyPick {
    /// No generated key.
    pub const NO_SLOT: u32 = u32::MAX;
}

impl From<usize> for KeyPick {
    fn from(key: usize) -> KeyPick {
        KeyPick {
            key,
            slot: KeyPick::NO_SLOT,
        }
    }
}

/// Per key of a generated space: arrivals ended, 2xx, 429, other outcomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeySpaceCounts {
    /// One row per key number.
    pub rows: Vec<[u32; 4]>,
}

impl KeySpaceCounts {
    /// Zeroed counters for `count` keys (none: no key space).
    pub fn new(count: usize) -> Self {
        KeySpaceCounts {
            rows: vec![[0; 4]; count],
        }
    }

    /// Key `slot`'s arrival ended with `outcome`.
    pub fn add(&mut self, slot: u32, outcome: Outcome) {
        if let Some(row) = self.rows.get_mut(slot as usize) {
            row[ENDED] = row[ENDED].saturating_add(1);
            let column = match outcome {
                Outcome::Response(s) if (200..300).contains(&s) => OK,
                Outcome::Response(429) => LIMITED,
                _ => OTHER,
            };
            row[column] = row[column].saturating_add(1);
        }
    }

    /// Adds another shard's counters.
    pub fn merge(&mut self, other: &KeySpaceCounts) {
        if self.rows.len() < other.rows.len() {
            self.rows.resize(other.rows.len(), [0; 4]);
        }
        for (a, b) in self.rows.iter_mut().zip(&other.rows) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
    }

    /// Arrivals, 2xx, 429 and other of key `k`.
    pub fn row(&self, k: usize) -> [u32; 4] {
        self.rows.get(k).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_merges_shards_of_any_length() {
        let mut a = KeySpaceCounts::new(3);
        a.add(1, Outcome::Response(200));
        a.add(1, Outcome::Response(429));
        a.add(2, Outcome::ClientTimeout);
        a.add(KeyPick::NO_SLOT, Outcome::Response(200));
        let mut total = KeySpaceCounts::new(0);
        total.merge(&a);
        total.merge(&a);
        assert_eq!(total.row(1), [4, 2, 2, 0]);
        assert_eq!(total.row(2), [2, 0, 0, 2]);
        assert_eq!(total.row(0), [0; 4]);
    }
}
