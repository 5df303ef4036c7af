//! Retries in the driver, as pure functions: the wait before retry n (the
//! backoff, its cap and jitter, or the server's `Retry-After`), the budget
//! that bounds retries to a share of arrivals, and `Retry-After`'s parsing.
//!
//! Takes a [`RetrySpec`] and hands the shard a [`RetryPolicy`] whose
//! answers the shard turns into a retry on its own schedule. No clock is
//! read here (the wall-clock time a `Retry-After` date is read against is
//! passed in), so every rule is tested as a table.

use std::time::{Duration, SystemTime};

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::worker::Job;
use crate::outcome::{Class, Outcome};
use crate::scenario::{Backoff, Jitter, RetrySpec};

/// A retry policy as a shard applies it.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    spec: RetrySpec,
    base_ns: u64,
    cap_ns: u64,
}

/// Most tokens a budget banks, in retries: a quiet spell cannot save up
/// for a storm larger than this.
const BUDGET_BANK_RETRIES: f64 = 100.0;

impl RetryPolicy {
    /// The policy of `spec`; `None` when it retries nothing.
    pub fn new(spec: &RetrySpec) -> Option<RetryPolicy> {
        spec.is_on().then(|| RetryPolicy {
            spec: spec.clone(),
            base_ns: dur_ns(spec.base),
            cap_ns: dur_ns(spec.cap),
        })
    }

    /// Retries per arrival at most.
    pub fn max(&self) -> u32 {
        self.spec.max
    }

    /// True when an attempt that ended in `outcome` is one this policy
    /// retries (the count and the budget aside).
    pub fn retries(&self, outcome: Outcome) -> bool {
        self.spec.on.matches(outcome)
    }

    /// The share of arrivals retries may be (`None`: no budget).
    pub fn budget(&self) -> Option<f64> {
        self.spec.budget
    }

    /// The wait before retry `n` (1 for the first), ns: `Retry-After` when
    /// the response gave one and the policy honours it, else the backoff
    /// with its jitter drawn from `rng`.
    pub fn wait_ns(&self, n: u32, retry_after_ns: Option<u64>, rng: &mut impl Rng) -> u64 {
        if let (true, Some(after)) = (self.spec.retry_after, retry_after_ns) {
            return after;
        }
        let backoff = self.backoff_ns(n);
        match self.spec.jitter {
            Jitter::None => backoff,
            Jitter::Full => rng.random_range(0..=backoff),
            Jitter::Equal => backoff / 2 + rng.random_range(0..=backoff - backoff / 2),
        }
    }

    /// The backoff before retry `n` before jitter, ns.
    pub fn backoff_ns(&self, n: u32) -> u64 {
        let grown = match self.spec.backoff {
            Backoff::Constant => self.base_ns,
            Backoff::Exponential => {
                let doublings = n.saturating_sub(1).min(63);
                self.base_ns.saturating_mul(1u64 << doublings)
            }
        };
        grown.min(self.cap_ns)
    }
}

/// A retry budget's tokens: each arrival adds the budget's share, each
/// retry takes one, so retries never pass that share of arrivals.
#[derive(Debug, Clone, Copy, Default)]
pub struct BudgetTokens(f64);

impl BudgetTokens {
    /// An arrival was made: its share of a retry is banked.
    pub fn deposit(&mut self, share: f64) {
        self.0 = (self.0 + share).min(BUDGET_BANK_RETRIES.max(share));
    }

    /// Takes a retry's token if there is one.
    pub fn withdraw(&mut self) -> bool {
        if self.0 >= 1.0 {
            self.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The wait a `Retry-After` value asks for, ns: delay-seconds, or an
/// HTTP-date read against `now` (a date in the past is no wait). `None`
/// for a value that is neither.
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = text.parse().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1_000_000_000));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).map_or(0, dur_ns))
}

fn dur_ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// The shard's retries: those waiting for their backoff time, earliest
/// first, and what decides the next.
pub(super) struct Retries {
    pub(super) pending: BinaryHeap<Pending>,
    /// Numbers retries in the order scheduled (ties of `due_ns` keep it).
    pub(super) seq: u64,
    /// Draws the jitter (apart from the key mix, so that retries do not
    /// change which keys the schedule sends).
    pub(super) rng: SmallRng,
    /// Each key's budget.
    pub(super) tokens: Vec<BudgetTokens>,
    /// False once the run ended or was stopped: no retry is scheduled.
    pub(super) open: bool,
    /// The run's end (CLOCK_MONOTONIC ns): no retry is due after it.
    pub(super) end_ns: u64,
}

/// A retry waiting for its time, and its arrival's answer so far.
pub(super) struct Pending {
    /// The retry's attempt, due at `job.due_ns`.
    pub(super) job: Job,
    pub(super) seq: u64,
    /// The attempt before it: its outcome (the arrival's, if the retry is
    /// never sent), when it ended, whether it was sent and the address it
    /// went to (see `Recorder::outcome_at`).
    pub(super) last: Outcome,
    pub(super) last_end_ns: u64,
    pub(super) last_sent: bool,
    pub(super) last_addr: Option<usize>,
    /// Why it is retried.
    pub(super) reason: Class,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// The max-heap's top is the earliest due.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.job.due_ns, other.seq).cmp(&(self.job.due_ns, self.seq))
    }
}

impl Retries {
    /// No retry waiting yet; `seed` draws the jitter, `keys` budgets.
    pub(super) fn new(seed: u64, keys: usize) -> Retries {
        Retries {
            pending: BinaryHeap::new(),
            seq: 0,
            rng: SmallRng::seed_from_u64(seed),
            tokens: vec![BudgetTokens::default(); keys],
            open: true,
            end_ns: u64::MAX,
        }
    }

    /// A shard's retries, when any key retries (never in a closed loop,
    /// whose clients' waits would be the load itself).
    pub(super) fn of_shard(plan: &super::shard::ShardPlan) -> Option<RefCell<Retries>> {
        let any = plan.keys.iter().any(|k| k.retry.is_some());
        (any && plan.closed_loop == 0).then(|| {
            let seed = plan.seed ^ 0x5DEE_CE66_D1CE_4E5B ^ (plan.shard as u64);
            RefCell::new(Retries::new(seed, plan.keys.len()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const MS: u64 = 1_000_000;

    fn policy(backoff: Backoff, jitter: Jitter, base_ms: u64, cap_ms: u64) -> RetryPolicy {
        RetryPolicy::new(&RetrySpec {
            backoff,
            jitter,
            base: Duration::from_millis(base_ms),
            cap: Duration::from_millis(cap_ms),
            ..RetrySpec::default()
        })
        .expect("on")
    }

    #[test]
    fn backoff_grows_and_stops_at_its_cap() {
        let cases = [
            (Backoff::Exponential, 100, 5_000, 1, 100),
            (Backoff::Exponential, 100, 5_000, 2, 200),
            (Backoff::Exponential, 100, 5_000, 3, 400),
            (Backoff::Exponential, 100, 5_000, 6, 3_200),
            (Backoff::Exponential, 100, 5_000, 7, 5_000),
            (Backoff::Exponential, 100, 5_000, 90, 5_000),
            (Backoff::Constant, 250, 250, 1, 250),
            (Backoff::Constant, 250, 900, 9, 250),
        ];
        for (backoff, base, cap, n, want_ms) in cases {
            let p = policy(backoff, Jitter::None, base, cap);
            assert_eq!(
                p.backoff_ns(n),
                want_ms * MS,
                "{backoff:?} base {base} n {n}"
            );
            let mut rng = SmallRng::seed_from_u64(1);
            assert_eq!(p.wait_ns(n, None, &mut rng), want_ms * MS);
        }
    }

    #[test]
    fn jitter_stays_within_its_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        let full = policy(Backoff::Exponential, Jitter::Full, 100, 5_000);
        let equal = policy(Backoff::Exponential, Jitter::Equal, 100, 5_000);
        let (mut full_low, mut equal_min) = (false, u64::MAX);
        for _ in 0..2_000 {
            let f = full.wait_ns(3, None, &mut rng);
            assert!(f <= 400 * MS);
            full_low |= f < 100 * MS;
            let e = equal.wait_ns(3, None, &mut rng);
            assert!((200 * MS..=400 * MS).contains(&e), "{e}");
            equal_min = equal_min.min(e);
        }
        assert!(full_low, "full jitter reaches the bottom of its range");
        assert!(equal_min < 220 * MS, "equal jitter spreads over its half");
    }

    #[test]
    fn retry_after_replaces_the_backoff_when_honoured() {
        let mut rng = SmallRng::seed_from_u64(1);
        let honour = policy(Backoff::Exponential, Jitter::None, 100, 5_000);
        assert_eq!(honour.wait_ns(1, Some(2_000 * MS), &mut rng), 2_000 * MS);
        let ignore = RetryPolicy::new(&RetrySpec {
            retry_after: false,
            jitter: Jitter::None,
            ..RetrySpec::default()
        })
        .expect("on");
        assert_eq!(ignore.wait_ns(1, Some(2_000 * MS), &mut rng), 100 * MS);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 21 Oct 2015 07:28:00 GMT
        let cases: [(&[u8], Option<u64>); 7] = [
            (b"3", Some(3_000 * MS)),
            (b" 0 ", Some(0)),
            (b"Wed, 21 Oct 2015 07:28:05 GMT", Some(5_000 * MS)),
            (b"Wed, 21 Oct 2015 07:27:00 GMT", Some(0)),
            (b"-1", None),
            (b"soon", None),
            (b"", None),
        ];
        for (value, want) in cases {
            assert_eq!(
                parse_retry_after(value, now),
                want,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn a_budget_allows_its_share_and_no_more() {
        let mut tokens = BudgetTokens::default();
        let mut retries = 0;
        for _ in 0..1_000 {
            tokens.deposit(0.1);
            // Every arrival fails and wants a retry.
            retries += u32::from(tokens.withdraw());
        }
        assert!((99..=100).contains(&retries), "{retries}");
    }

    #[test]
    fn a_policy_with_no_retries_is_off() {
        let off = RetrySpec {
            max: 0,
            ..RetrySpec::default()
        };
        assert!(RetryPolicy::new(&off).is_none());
        let p = RetryPolicy::new(&RetrySpec::default()).expect("on");
        assert!(p.retries(Outcome::Response(504)));
        assert!(p.retries(Outcome::ClientTimeout));
        assert!(!p.retries(Outcome::Response(500)));
        assert!(!p.retries(Outcome::Response(200)));
        assert!(!p.retries(Outcome::NotSent));
    }
}
