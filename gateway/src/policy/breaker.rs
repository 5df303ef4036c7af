//! The circuit breaker: closed while the error share over a rolling window
//! stays under the threshold (once the window holds a minimum of requests);
//! open (every request refused) for a cool-down; then half-open, letting a
//! few probes through: a probe that succeeds closes it, one that fails opens
//! it again.

use std::time::{Duration, Instant};

use super::window::Window;

/// Settings of one breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerRule {
    /// Error share (0 to 1) at or above which the breaker opens.
    pub error_share: f64,
    /// Length of the rolling window.
    pub window: Duration,
    /// Requests the window must hold before the share counts.
    pub min_requests: u32,
    /// How long the breaker stays open.
    pub cool_down: Duration,
    /// Probes let through at once while half-open.
    pub probes: u32,
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests pass; outcomes are counted.
    Closed,
    /// Requests are refused until the instant.
    Open(Instant),
    /// Probes pass, up to the rule's number at once.
    HalfOpen,
}

impl BreakerState {
    /// 0 closed, 1 open, 2 half-open (for `/metrics`).
    pub fn gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open(_) => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// What the breaker let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// An ordinary request (closed breaker).
    Normal,
    /// A half-open probe: its outcome decides the state.
    Probe,
}

/// The breaker's state and window.
#[derive(Debug, Clone)]
pub struct Breaker {
    rule: BreakerRule,
    state: BreakerState,
    /// (requests, errors) per slot.
    window: Window<2>,
    probes_in_flight: u32,
}

impl Breaker {
    /// A closed breaker with an empty window.
    pub fn new(rule: BreakerRule, now: Instant) -> Breaker {
        Breaker {
            rule,
            state: BreakerState::Closed,
            window: Window::new(rule.window, now),
            probes_in_flight: 0,
        }
    }

    /// The state at `now` (an open breaker past its cool-down reads half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            BreakerState::Open(until) if now >= until => BreakerState::HalfOpen,
            s => s,
        }
    }

    /// Lets a request through or not (`None`: refuse it, the breaker is open).
    pub fn admit(&mut self, now: Instant) -> Option<Pass> {
        self.state = self.state(now);
        match self.state {
            BreakerState::Closed => Some(Pass::Normal),
            BreakerState::Open(_) => None,
            BreakerState::HalfOpen if self.probes_in_flight < self.rule.probes => {
                self.probes_in_flight += 1;
                Some(Pass::Probe)
            }
            BreakerState::HalfOpen => None,
        }
    }

    /// Records the outcome of a request `admit` let through.
    pub fn record(&mut self, pass: Pass, error: bool, now: Instant) {
        match pass {
            Pass::Probe => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                if error {
                    self.state = BreakerState::Open(now + self.rule.cool_down);
                } else {
                    self.state = BreakerState::Closed;
                    self.window.clear();
                }
            }
            // Outcomes of requests let in before the breaker opened do not count again.
            Pass::Normal if self.state != BreakerState::Closed => {}
            Pass::Normal => {
                self.window.add(now, [1.0, if error { 1.0 } else { 0.0 }]);
                let [requests, errors] = self.window.sums(now);
                if requests >= f64::from(self.rule.min_requests)
                    && errors / requests >= self.rule.error_share
                {
                    self.state = BreakerState::Open(now + self.rule.cool_down);
                    self.window.clear();
                }
            }
        }
    }

    /// A probe ended with no outcome (its client left first): frees its place.
    pub fn release_probe(&mut self) {
        self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_the_error_share_and_recovers_through_a_probe() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let rule = BreakerRule {
            error_share: 0.5,
            window: ms(10_000),
            min_requests: 4,
            cool_down: ms(1000),
            probes: 1,
        };
        let mut b = Breaker::new(rule, t0);
        // Three errors: under the minimum of requests, still closed.
        for i in 0..3 {
            assert_eq!(b.admit(t0 + ms(i)), Some(Pass::Normal));
            b.record(Pass::Normal, true, t0 + ms(i));
        }
        assert_eq!(b.state(t0 + ms(3)), BreakerState::Closed);
        // The fourth makes 4 of 4: open.
        b.record(Pass::Normal, true, t0 + ms(3));
        assert_eq!(b.admit(t0 + ms(4)), None);
        assert_eq!(b.admit(t0 + ms(1002)), None);
        // Cool-down over: one probe, no second one at the same time.
        assert_eq!(b.admit(t0 + ms(1003)), Some(Pass::Probe));
        assert_eq!(b.admit(t0 + ms(1003)), None);
        // The probe fails: open again for a cool-down.
        b.record(Pass::Probe, true, t0 + ms(1010));
        assert_eq!(b.admit(t0 + ms(1500)), None);
        assert_eq!(b.admit(t0 + ms(2010)), Some(Pass::Probe));
        // A probe whose client left frees its place.
        b.release_probe();
        assert_eq!(b.admit(t0 + ms(2011)), Some(Pass::Probe));
        // This one succeeds: closed, with an empty window.
        b.record(Pass::Probe, false, t0 + ms(2020));
        assert_eq!(b.state(t0 + ms(2020)), BreakerState::Closed);
        b.record(Pass::Normal, true, t0 + ms(2030));
        assert_eq!(b.admit(t0 + ms(2031)), Some(Pass::Normal));
    }

    #[test]
    fn a_low_error_share_stays_closed() {
        let t0 = Instant::now();
        let rule = BreakerRule {
            error_share: 0.5,
            window: Duration::from_secs(10),
            min_requests: 4,
            cool_down: Duration::from_secs(1),
            probes: 1,
        };
        let mut b = Breaker::new(rule, t0);
        for i in 0..20 {
            let now = t0 + Duration::from_millis(i);
            assert_eq!(b.admit(now), Some(Pass::Normal));
            b.record(Pass::Normal, i % 4 == 0, now);
        }
        assert_eq!(
            b.state(t0 + Duration::from_millis(20)),
            BreakerState::Closed
        );
    }
}
