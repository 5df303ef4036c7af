//! The Generic Cell Rate Algorithm: a per-key rate limit with a burst, kept
//! as one instant per key (the theoretical arrival time, TAT).
//!
//! A request at `now` is allowed when `max(TAT, now) + T - now <= burst * T`
//! (T = 1 / rate); then TAT moves to `max(TAT, now) + T`. So an idle key may
//! send `burst` requests at once, and after that one every T. A refused
//! request does not move TAT and learns how long until it would pass.

use std::time::{Duration, Instant};

/// Rate and burst of one limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gcra {
    /// Spacing between requests at the sustained rate (T).
    pub interval: Duration,
    /// How far ahead of now TAT may run: `burst * T`.
    pub tolerance: Duration,
}

impl Gcra {
    /// A limit of `rate_per_s` with `burst` requests allowed at once (1 or more).
    pub fn new(rate_per_s: f64, burst: u32) -> Gcra {
        let interval = Duration::from_secs_f64(1.0 / rate_per_s);
        Gcra {
            interval,
            tolerance: interval * burst.max(1),
        }
    }

    /// Decides a request at `now` for the key whose TAT is `tat` (`None`: never
    /// seen). `Ok(new_tat)` to allow it and store `new_tat`; `Err(wait)` to
    /// refuse it, `wait` being how long until it would be allowed.
    pub fn check(&self, tat: Option<Instant>, now: Instant) -> Result<Instant, Duration> {
        let base = tat.map_or(now, |t| t.max(now));
        let new_tat = base + self.interval;
        let ahead = new_tat - now;
        if ahead <= self.tolerance {
            Ok(new_tat)
        } else {
            Err(ahead - self.tolerance)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_spaced_at_the_rate() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // 10 per second (T = 100 ms), burst 3.
        let g = Gcra::new(10.0, 3);
        let mut tat = None;
        // (offset ms, allowed, wait ms when refused)
        let cases = [
            (0, true, 0),
            (0, true, 0),
            (0, true, 0),
            (0, false, 100),
            (50, false, 50),
            (100, true, 0),
            (100, false, 100),
            (200, true, 0),
            // Idle for a second: a full burst again.
            (1200, true, 0),
            (1200, true, 0),
            (1200, true, 0),
            (1200, false, 100),
        ];
        for (i, (at, allowed, wait)) in cases.into_iter().enumerate() {
            match g.check(tat, t0 + ms(at)) {
                Ok(new_tat) => {
                    assert!(allowed, "case {i} at {at} ms should be refused");
                    tat = Some(new_tat);
                }
                Err(w) => {
                    assert!(!allowed, "case {i} at {at} ms should pass");
                    assert_eq!(w, ms(wait), "case {i}");
                }
            }
        }
    }
}
