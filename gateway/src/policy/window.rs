//! A sliding window of sums in fixed buckets: the last `window` split into
//! [`BUCKETS`] slots, each holding its slot number and its sums. Used by the
//! budget (accounted seconds per key) and the breaker (requests and errors).
//!
//! The window slides a bucket at a time, so a sum may include up to one
//! bucket's length of older data: a tenth of the window, which is well inside
//! what these policies need and costs a fixed 10 slots per key.

use std::time::{Duration, Instant};

/// Slots per window.
pub const BUCKETS: usize = 10;

/// Sums of `N` values over a sliding window.
#[derive(Debug, Clone)]
pub struct Window<const N: usize> {
    epoch: Instant,
    bucket_ns: u64,
    /// (absolute slot number, sums) per slot; a slot whose number is too old counts as empty.
    slots: [(u64, [f64; N]); BUCKETS],
}

impl<const N: usize> Window<N> {
    /// An empty window of length `window`, slots counted from `epoch`.
    pub fn new(window: Duration, epoch: Instant) -> Self {
        let bucket_ns = (window.as_nanos() / BUCKETS as u128).max(1);
        Window {
            epoch,
            bucket_ns: u64::try_from(bucket_ns).unwrap_or(u64::MAX),
            // Slot number u64::MAX never matches a live slot: empty.
            slots: [(u64::MAX, [0.0; N]); BUCKETS],
        }
    }

    fn slot_number(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(ns / u128::from(self.bucket_ns)).unwrap_or(u64::MAX - 1)
    }

    /// Adds `values` at `now`.
    pub fn add(&mut self, now: Instant, values: [f64; N]) {
        let number = self.slot_number(now);
        let slot = &mut self.slots[(number % BUCKETS as u64) as usize];
        if slot.0 != number {
            *slot = (number, [0.0; N]);
        }
        for (sum, v) in slot.1.iter_mut().zip(values) {
            *sum += v;
        }
    }

    /// The sums over the window ending at `now`.
    pub fn sums(&self, now: Instant) -> [f64; N] {
        let current = self.slot_number(now);
        let oldest = current.saturating_sub(BUCKETS as u64 - 1);
        let mut total = [0.0; N];
        for (number, sums) in &self.slots {
            if *number != u64::MAX && *number >= oldest && *number <= current {
                for (t, v) in total.iter_mut().zip(sums) {
                    *t += v;
                }
            }
        }
        total
    }

    /// Empties the window.
    pub fn clear(&mut self) {
        self.slots = [(u64::MAX, [0.0; N]); BUCKETS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_slide_out_after_the_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::<1>::new(ms(1000), t0);
        w.add(t0, [1.0]);
        w.add(t0 + ms(450), [2.0]);
        // (instant, expected sum)
        let cases = [
            (0, 1.0),
            (450, 3.0),
            (999, 3.0),
            (1000, 2.0),
            (1450, 0.0),
            (5000, 0.0),
        ];
        for (at, want) in cases {
            assert_eq!(w.sums(t0 + ms(at))[0], want, "at {at} ms");
        }
        // A slot reused after a lap starts from zero.
        w.add(t0 + ms(1000), [5.0]);
        assert_eq!(w.sums(t0 + ms(1000))[0], 7.0);
        w.clear();
        assert_eq!(w.sums(t0 + ms(1000))[0], 0.0);
    }
}
