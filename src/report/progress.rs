//! Progress bars on stderr: one per phase, advanced by interval rows.
//!
//! Hidden when asked, or when stderr is not a terminal (indicatif's own
//! check), so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressStyle};

use crate::record::IntervalRow;
use crate::report::console::fmt_us;
use crate::scenario::{Phase, Rate};

/// The bars of one run.
pub struct Progress {
    /// (end of phase from the run start in s, bar), in phase order.
    phases: Vec<(f64, ProgressBar)>,
    current: usize,
}

impl Progress {
    /// Bars for `phases`; `enabled = false` shows nothing.
    pub fn new(phases: &[Phase], enabled: bool) -> Progress {
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos:>4}/{len}s {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let mut end_s = 0.0;
        let count = phases.len();
        let phases = phases
            .iter()
            .enumerate()
            .map(|(i, p)| {
                end_s += p.duration.as_secs_f64();
                let bar = if enabled {
                    ProgressBar::new(p.duration.as_secs_f64().ceil() as u64)
                } else {
                    ProgressBar::hidden()
                };
                bar.set_style(style.clone());
                bar.set_prefix(format!("phase {}/{}", i + 1, count));
                bar.set_message(match p.rate {
                    Rate::Constant(r) => format!("{r:.0}/s"),
                    Rate::Ramp { from, to } => format!("{from:.0}->{to:.0}/s"),
                });
                (end_s, bar)
            })
            .collect();
        Progress { phases, current: 0 }
    }

    /// Advances to the end of `row`.
    pub fn interval(&mut self, row: &IntervalRow) {
        let end_s = row.start_s + row.duration_s;
        while let Some((phase_end_s, bar)) = self.phases.get(self.current) {
            let phase_start_s = phase_end_s - bar.length().unwrap_or(0) as f64;
            bar.set_position((end_s.min(*phase_end_s) - phase_start_s).max(0.0).round() as u64);
            bar.set_message(format!(
                "sent {}/s  p99 {}  in flight {}",
                (row.sent as f64 / row.duration_s.max(1e-9)).round(),
                fmt_us(row.p99_us),
                row.in_flight
            ));
            if end_s + 1e-6 < *phase_end_s {
                break;
            }
            bar.finish();
            self.current += 1;
        }
    }

    /// Closes every bar.
    pub fn finish(&mut self) {
        for (_, bar) in &self.phases[self.current.min(self.phases.len())..] {
            bar.finish_and_clear();
        }
    }
}
