//! What retrying cost, as the Recorder counts it: attempts, retries by
//! reason, and the retries a budget, the policy or the run's end refused.
//! Kept apart from the outcomes so that a run without retries touches
//! none of it but the attempt count.

use super::{Outcome, Recorder, ns_to_us};
use crate::outcome::Class;

/// What retrying cost: attempts made, retries by the reason for them, and
/// the retries a budget, the policy's count or the run's end did not make.
/// `attempts = arrivals + made`: a retry is counted when it is dispatched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryTotals {
    /// Attempts dispatched: every arrival's first, and every retry.
    pub attempts: u64,
    /// Retries dispatched.
    pub made: u64,
    /// Retries dispatched by the class of the attempt they followed,
    /// indexed by [`Class::index`].
    pub by_reason: [u64; Class::ALL.len()],
    /// Retries the budget refused (the attempt's outcome stood).
    pub budget_refused: u64,
    /// Arrivals that failed after every retry the policy allows.
    pub exhausted: u64,
    /// Retries not made because the run ended (or was stopped) first: due
    /// after its end, waiting at its end, or asked for after it.
    pub cut: u64,
}

impl RetryTotals {
    pub(super) fn merge(&mut self, o: &RetryTotals) {
        self.attempts += o.attempts;
        self.made += o.made;
        for (a, b) in self.by_reason.iter_mut().zip(o.by_reason) {
            *a += b;
        }
        self.budget_refused += o.budget_refused;
        self.exhausted += o.exhausted;
        self.cut += o.cut;
    }
}

impl Recorder {
    /// A retry was dispatched at `now_ns`, `lag_ns` after its backoff time,
    /// after an attempt of class `reason`.
    pub fn retried(&mut self, now_ns: u64, reason: Class, lag_ns: u64) {
        self.roll(now_ns);
        let r = &mut self.totals.retries;
        r.attempts += 1;
        r.made += 1;
        r.by_reason[reason.index()] += 1;
        self.current.attempts += 1;
        self.current.retries += 1;
        self.totals
            .generator_lag_us
            .saturating_record(ns_to_us(lag_ns));
    }

    /// An attempt that will be retried ended at `now_ns`; its service time
    /// is kept (`service_ns`: it was sent), its outcome is not the arrival's.
    pub fn attempt_failed(&mut self, now_ns: u64, service_ns: Option<u64>) {
        self.roll(now_ns);
        if let Some(service_ns) = service_ns {
            self.totals
                .service_us
                .saturating_record(ns_to_us(service_ns));
        }
    }

    /// A retry the budget refused.
    pub fn retry_refused(&mut self, now_ns: u64) {
        self.roll(now_ns);
        self.totals.retries.budget_refused += 1;
    }

    /// An arrival failed after all the retries its policy allows.
    pub fn retries_exhausted(&mut self, now_ns: u64) {
        self.roll(now_ns);
        self.totals.retries.exhausted += 1;
    }

    /// A retry not made because the run ended first.
    pub fn retry_cut(&mut self, now_ns: u64) {
        self.roll(now_ns);
        self.totals.retries.cut += 1;
    }

    /// An arrival whose retry was waiting when the run ended: its outcome
    /// is the attempt it had (ended `latency_ns` after its intended time;
    /// `sent`: that attempt was sent, and its service time is already kept;
    /// `addr`: the address it went to, see [`Recorder::outcome_at`]).
    pub fn retry_abandoned(
        &mut self,
        now_ns: u64,
        key: impl Into<super::KeyPick>,
        addr: Option<usize>,
        outcome: Outcome,
        latency_ns: u64,
        sent: bool,
    ) {
        self.final_outcome(now_ns, key.into(), addr, outcome, latency_ns, sent, None);
    }
}
