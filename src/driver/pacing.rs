//! The pacer's window, fixed (a duration) or adaptive (`[client]
//! pacing_window = "auto"`, the default).
//!
//! Takes the narrowest and widest window a shard may use and, every
//! [`PERIOD_NS`] of the pacer's wakes, the share of that time its thread
//! spent on the CPU; hands on the window for the next wakes. The window
//! widens (doubling, up to the widest) as soon as the thread is short of
//! CPU, where a wider window buys fewer wakes per request, and narrows
//! back (halving) once it has had CPU to spare for `NARROW_AFTER` looks
//! in a row, where the narrow window's shorter schedule lag costs nothing.
//! Latency counts from the intended time either way, so a widened window
//! shows in schedule lag, never hides.

use crate::sys;

/// How often the window is looked at, ns of monotonic time: long enough
/// that a busy share is a share (several wakes even at low rates), short
/// enough to follow a phase's step within its first interval.
pub const PERIOD_NS: u64 = 10_000_000;
/// Busy share of the thread above which the window widens: the shard is
/// about to fall behind its schedule.
const WIDEN_ABOVE: f64 = 0.85;
/// Busy share below which it may narrow back. Halving the window costs at
/// most about a third more CPU per request where it matters (at 50k/s on
/// one thread: 50 us 73 % busy, 100 us 69 %; 25 us saturates), so below
/// this the narrower window still fits under [`WIDEN_ABOVE`]: the window
/// settles, not swings.
const NARROW_BELOW: f64 = 0.6;
/// Looks in a row below [`NARROW_BELOW`] before it narrows: one quiet
/// period (a pause between bursts of answers) is not spare CPU.
const NARROW_AFTER: u32 = 5;
/// Arrivals per second of one shard above which an adaptive window starts
/// at its widest and narrows from there: at the narrowest a request costs
/// a driver thread 20-40 us (a wake of the target per send), so from here
/// on the thread starts most of a core busy, where any stall puts it
/// behind, and a start that falls behind opens a connection for each
/// arrival that finds the warm ones busy (at 75k/s, holding 25 us for the
/// first second: ~2,000 connections, lag p99 40-110 ms until it recovered).
/// Below it a window that starts narrow mostly stays narrow.
const START_WIDE_ABOVE_PER_S: f64 = 20_000.0;

/// One shard's window and what it has been.
#[derive(Debug)]
pub struct Window {
    /// The window in force, ns.
    now_ns: u64,
    /// Narrowest (the configured window), ns.
    min_ns: u64,
    /// Widest it may grow, ns (equal to `min_ns`: fixed).
    max_ns: u64,
    /// The widest it was, ns.
    widest_ns: u64,
    /// Monotonic and thread CPU clocks at the last look, ns.
    last: Option<(u64, u64)>,
    /// Looks in a row with CPU to spare.
    calm: u32,
}

impl Window {
    /// A window starting at `min_ns` that may grow to `max_ns`.
    pub fn new(min_ns: u64, max_ns: u64) -> Window {
        Window {
            now_ns: min_ns,
            min_ns,
            max_ns: max_ns.max(min_ns),
            widest_ns: min_ns,
            last: None,
            calm: 0,
        }
    }

    /// Starts an adaptive window at its widest when the shard's first
    /// arrivals come at more than `START_WIDE_ABOVE_PER_S`.
    pub fn start_for(&mut self, rate_per_s: f64) {
        if rate_per_s > START_WIDE_ABOVE_PER_S {
            self.now_ns = self.max_ns;
            self.widest_ns = self.max_ns;
        }
    }

    /// The window in force, ns.
    pub fn ns(&self) -> u64 {
        self.now_ns
    }

    /// The widest the window was, ns.
    pub fn widest_ns(&self) -> u64 {
        self.widest_ns
    }

    /// Looks at the calling thread's CPU at `wall_ns` (monotonic time,
    /// [`sys::monotonic_ns`]) once a period; between looks, and always for
    /// a fixed window, it reads no clock.
    pub fn look(&mut self, wall_ns: u64) {
        if self.max_ns == self.min_ns {
            return;
        }
        match self.last {
            Some((at_ns, _)) if wall_ns < at_ns + PERIOD_NS => {}
            _ => self.adjust(wall_ns, sys::thread_cpu_ns()),
        }
    }

    /// Adjusts to the busy share since the last look; the first look only
    /// starts the clocks.
    fn adjust(&mut self, wall_ns: u64, cpu_ns: u64) {
        if let Some((at_ns, cpu_at_ns)) = self.last {
            let busy = cpu_ns.saturating_sub(cpu_at_ns) as f64 / (wall_ns - at_ns).max(1) as f64;
            self.calm = if busy < NARROW_BELOW {
                self.calm + 1
            } else {
                0
            };
            if busy > WIDEN_ABOVE {
                self.now_ns = (self.now_ns.max(1) * 2).min(self.max_ns);
            } else if self.calm >= NARROW_AFTER {
                self.now_ns = (self.now_ns / 2).max(self.min_ns);
                self.calm = 0;
            }
            self.widest_ns = self.widest_ns.max(self.now_ns);
        }
        self.last = Some((wall_ns, cpu_ns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `window` one period at each busy share, returning the windows.
    fn run(window: &mut Window, busy: &[f64]) -> Vec<u64> {
        let (mut wall, mut cpu) = window.last.unwrap_or((0, 0));
        busy.iter()
            .map(|b| {
                wall += PERIOD_NS;
                cpu += (PERIOD_NS as f64 * b) as u64;
                window.adjust(wall, cpu);
                window.ns()
            })
            .collect()
    }

    #[test]
    fn widens_while_short_of_cpu_and_narrows_back_once_calm() {
        let mut w = Window::new(25_000, 500_000);
        w.adjust(0, 0);
        assert_eq!(
            run(&mut w, &[0.3, 0.7]),
            [25_000, 25_000],
            "not short of CPU"
        );
        assert_eq!(
            run(&mut w, &[0.95, 0.95, 0.95, 0.95, 0.95, 0.95]),
            [50_000, 100_000, 200_000, 400_000, 500_000, 500_000],
            "doubles up to the widest"
        );
        assert_eq!(
            run(&mut w, &[0.7; 8]),
            [500_000; 8],
            "settles between the bounds"
        );
        let calm = [0.2; NARROW_AFTER as usize];
        let halved: Vec<u64> = (1..=5)
            .map(|_| *run(&mut w, &calm).last().unwrap())
            .collect();
        assert_eq!(
            halved,
            [250_000, 125_000, 62_500, 31_250, 25_000],
            "halves back down to the configured window, a step per calm spell"
        );
        assert_eq!(w.widest_ns(), 500_000);
    }

    #[test]
    fn a_busy_look_restarts_the_calm_spell() {
        let mut w = Window::new(25_000, 500_000);
        w.adjust(0, 0);
        run(&mut w, &[0.95, 0.95]);
        assert_eq!(w.ns(), 100_000);
        // Quiet looks broken by one at 0.7 (spare CPU, but not enough to
        // narrow): the spell starts again, so no narrowing yet.
        let mut looks = vec![0.2; NARROW_AFTER as usize - 1];
        looks.push(0.7);
        looks.extend(vec![0.2; NARROW_AFTER as usize - 1]);
        assert!(run(&mut w, &looks).iter().all(|&ns| ns == 100_000));
        assert_eq!(run(&mut w, &[0.2]), [50_000]);
    }

    #[test]
    fn a_high_rate_starts_wide_and_narrows_once_calm() {
        let mut low = Window::new(25_000, 500_000);
        low.start_for(START_WIDE_ABOVE_PER_S);
        assert_eq!(low.ns(), 25_000);
        let mut high = Window::new(25_000, 500_000);
        high.start_for(START_WIDE_ABOVE_PER_S * 2.0);
        assert_eq!(high.ns(), 500_000);
        high.adjust(0, 0);
        run(&mut high, &[0.3; NARROW_AFTER as usize]);
        assert_eq!(high.ns(), 250_000);
        let mut fixed = Window::new(25_000, 25_000);
        fixed.start_for(1e6);
        assert_eq!(fixed.ns(), 25_000, "a fixed window is what it says");
    }

    #[test]
    fn a_fixed_window_stays_and_a_zero_window_can_widen() {
        let mut fixed = Window::new(25_000, 25_000);
        fixed.look(1);
        fixed.look(PERIOD_NS * 3);
        assert_eq!(
            (fixed.ns(), fixed.widest_ns(), fixed.last),
            (25_000, 25_000, None)
        );
        let mut zero = Window::new(0, 8);
        zero.adjust(0, 0);
        assert_eq!(run(&mut zero, &[1.0, 1.0, 1.0, 1.0, 1.0]), [2, 4, 8, 8, 8]);
    }
}
