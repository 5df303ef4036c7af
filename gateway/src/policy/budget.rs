//! The worker-time budget (the seed's "bouncer"): per key, the accounted
//! upstream seconds over a sliding window; a key past its budget is refused
//! for a penalty time.
//!
//! Charges come from the access-log event (see `proxy`), so what is charged
//! for an aborted request depends on the gateway's `abort_accounting`: that
//! is the point of the seed's bug, and of measuring it.

use std::time::{Duration, Instant};

use super::window::Window;

/// Settings of one budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetRule {
    /// Accounted seconds a key may use per window.
    pub budget: Duration,
    /// Length of the sliding window.
    pub window: Duration,
    /// How long a key past its budget is refused.
    pub penalty: Duration,
}

/// One key's budget state.
#[derive(Debug, Clone)]
pub struct KeyBudget {
    used: Window<1>,
    blocked_until: Option<Instant>,
}

impl KeyBudget {
    /// A key with nothing used yet.
    pub fn new(rule: &BudgetRule, now: Instant) -> KeyBudget {
        KeyBudget {
            used: Window::new(rule.window, now),
            blocked_until: None,
        }
    }

    /// Charges `accounted` seconds at `now`.
    pub fn charge(&mut self, accounted: Duration, now: Instant) {
        self.used.add(now, [accounted.as_secs_f64()]);
    }

    /// Accounted seconds in the window ending at `now`.
    pub fn used_s(&self, now: Instant) -> f64 {
        self.used.sums(now)[0]
    }

    /// Decides a request at `now`: `Err(wait)` while the key is in its
    /// penalty, or when its use has passed the budget (which starts one).
    pub fn check(&mut self, rule: &BudgetRule, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        if self.used_s(now) > rule.budget.as_secs_f64() {
            self.blocked_until = Some(now + rule.penalty);
            return Err(rule.penalty);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_past_the_budget_for_the_penalty() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let rule = BudgetRule {
            budget: ms(500),
            window: ms(1000),
            penalty: ms(300),
        };
        let mut key = KeyBudget::new(&rule, t0);
        // (offset ms, charge ms before the check, expected wait ms or None for allowed)
        let cases: [(u64, u64, Option<u64>); 7] = [
            (0, 0, None),
            (10, 200, None),
            (20, 200, None),
            // 400 ms used: not past 500.
            (30, 200, Some(300)), // 600 ms used: blocked for the penalty
            (130, 0, Some(200)),  // still in the penalty
            (330, 0, Some(300)),  // penalty over but still past the budget: again
            (1100, 0, None),      // the charges slid out of the window
        ];
        for (at, charge, want) in cases {
            let now = t0 + ms(at);
            if charge > 0 {
                key.charge(ms(charge), now);
            }
            assert_eq!(key.check(&rule, now).err(), want.map(ms), "at {at} ms");
        }
    }
}
