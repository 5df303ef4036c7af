//! CPU burn: real computation until the calling thread's own CPU clock has advanced by the
//! requested amount.
//!
//! Takes a CPU duration and a cancellation check; hands back the CPU actually used and whether it
//! stopped early. It does not sleep, pick threads or count anything: the caller runs it on the
//! thread it wants charged and records the result.

use std::time::Duration;

use crate::sys;

/// Rounds of the mixing step between two reads of the CPU clock. About 1-3 us of work in a
/// release build and some 10-40 us in a debug one, so the overshoot (one chunk plus one clock
/// read) stays under the 100 us the specification allows.
const ROUNDS_PER_CHUNK: u32 = 1024;

/// How much CPU passes between two cancellation checks: often enough that a cancelled request
/// stops within about a millisecond of CPU, rarely enough that the check costs nothing.
pub const CANCEL_CHECK_EVERY: Duration = Duration::from_millis(1);

/// What a burn did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnReport {
    /// Thread CPU time consumed by the burn, including the clock reads themselves.
    pub cpu_used: Duration,
    /// True when `should_stop` returned true before the target was reached.
    pub cancelled: bool,
}

/// Burns `cpu` of this thread's CPU time. `should_stop` is called about every
/// [`CANCEL_CHECK_EVERY`] of CPU; when it returns true the burn stops and reports what it used.
pub fn burn_cpu(cpu: Duration, mut should_stop: impl FnMut() -> bool) -> BurnReport {
    let start = sys::thread_cpu_time();
    let target = start + cpu;
    let mut next_check = start + CANCEL_CHECK_EVERY;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut now = start;
    while now < target {
        state = spin(state);
        now = sys::thread_cpu_time();
        if now >= next_check && now < target {
            next_check = now + CANCEL_CHECK_EVERY;
            if should_stop() {
                return BurnReport {
                    cpu_used: now - start,
                    cancelled: true,
                };
            }
        }
    }
    std::hint::black_box(state);
    BurnReport {
        cpu_used: now - start,
        cancelled: false,
    }
}

/// One chunk of integer mixing (a 64-bit LCG step plus xorshift). `black_box` keeps the
/// optimiser from folding the loop away, so this is computation the CPU really does.
fn spin(mut state: u64) -> u64 {
    for _ in 0..ROUNDS_PER_CHUNK {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state ^= state >> 29;
    }
    std::hint::black_box(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(cpu: Duration) -> (BurnReport, Duration) {
        let before = sys::thread_cpu_time();
        let report = burn_cpu(cpu, || false);
        (report, sys::thread_cpu_time() - before)
    }

    #[test]
    fn burns_exactly_the_requested_cpu() {
        let (report, outside) = measured(Duration::from_millis(20));
        assert!(!report.cancelled);
        let overshoot = report.cpu_used - Duration::from_millis(20);
        // max(1% of 20 ms, 100 us) = 200 us
        assert!(
            overshoot < Duration::from_micros(200),
            "overshoot {overshoot:?}"
        );
        assert!(
            outside >= report.cpu_used && outside - report.cpu_used < Duration::from_micros(200)
        );
    }

    #[test]
    fn zero_cpu_returns_at_once() {
        let (report, _) = measured(Duration::ZERO);
        assert_eq!(report.cpu_used, Duration::ZERO);
        assert!(!report.cancelled);
    }

    #[test]
    fn stops_when_asked_between_slices() {
        let mut checks = 0;
        let report = burn_cpu(Duration::from_secs(10), || {
            checks += 1;
            checks == 3
        });
        assert!(report.cancelled);
        assert!(report.cpu_used >= Duration::from_millis(3));
        assert!(
            report.cpu_used < Duration::from_millis(50),
            "{:?}",
            report.cpu_used
        );
    }
}
