//! The pacer's window, fixed or adaptive (`[client] pacing_window = "auto"`,
//! the default).
//!
//! Takes the narrowest and widest window a shard may use and, every
//! [`PERIOD_NS`] of the pacer's wakes, the share of that time its thread
//! spent on the CPU; hands on the window for the next wakes. The window
//! widens (doubling, up to the widest) only while the thread is short of
//! CPU, where a wider window buys fewer wakes per request, and narrows
//! back (halving) once it has CPU to spare, where the narrow window's
//! shorter schedule lag costs nothing. Latency counts from the intended
//! time either way, so a widened window shows in schedule lag, never hides.

use crate::sys;

/// How often the window is looked at, ns of monotonic time: long enough
/// that a busy share is a share (several wakes even at low rates), short
/// enough to follow a phase's step within its first interval.
pub(super) const PERIOD_NS: u64 = 10_000_000;
/// Busy share of the thread above which the window widens: the shard is
/// about to fall behind its schedule.
const WIDEN_ABOVE: f64 = 0.85;
/// Busy share below which it narrows back. The gap to [`WIDEN_ABOVE`] is
/// wider than what one doubling saves, so the window settles, not swings.
const NARROW_BELOW: f64 = 0.5;

/// One shard's window and what it has been.
#[derive(Debug)]
pub(super) struct Window {
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
}

impl Window {
    /// A window starting at `min_ns` that may grow to `max_ns`.
    pub(super) fn new(min_ns: u64, max_ns: u64) -> Window {
        Window {
            now_ns: min_ns,
            min_ns,
            max_ns: max_ns.max(min_ns),
            widest_ns: min_ns,
            last: None,
        }
    }

    /// The window in force, ns.
    pub(super) fn ns(&self) -> u64 {
        self.now_ns
    }

    /// The widest the window was, ns.
    pub(super) fn widest_ns(&self) -> u64 {
        self.widest_ns
    }

    /// Looks at the thread's CPU at `wall_ns` (once a period; a fixed
    /// window never reads the clock).
    pub(super) fn look(&mut self, wall_ns: u64) {
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
            if busy > WIDEN_ABOVE {
                self.now_ns = (self.now_ns.max(1) * 2).min(self.max_ns);
            } else if busy < NARROW_BELOW {
                self.now_ns = (self.now_ns / 2).max(self.min_ns);
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
    fn widens_only_while_short_of_cpu_and_narrows_back() {
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
        assert_eq!(run(&mut w, &[0.7]), [500_000], "settles between the bounds");
        assert_eq!(
            run(&mut w, &[0.2, 0.2, 0.2, 0.2, 0.2, 0.2]),
            [250_000, 125_000, 62_500, 31_250, 25_000, 25_000],
            "halves back down to the configured window"
        );
        assert_eq!(w.widest_ns(), 500_000);
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
