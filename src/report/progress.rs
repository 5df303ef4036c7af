//! Progress bars on stderr: one per phase of a step's load (one for a
//! closed loop), added as each phase begins and advanced by interval rows.
//!
//! Hidden when asked, or when stderr is not a terminal (indicatif's own
//! check), so logs and CI output stay clean.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::driver::Load;
use crate::record::IntervalRow;
use crate::scenario::Rate;
use contend_units::fmt_us;

/// The bars of one run.
pub struct Progress {
    bars: MultiProgress,
    style: ProgressStyle,
    /// (start, end) of each phase from the run start, s, and its rate label.
    phases: Vec<(f64, f64, String)>,
    /// The bar of the phase shown now, with its index.
    current: Option<(usize, ProgressBar)>,
}

impl Progress {
    /// Bars for `load`; `enabled = false` shows nothing.
    pub fn new(load: &Load, enabled: bool) -> Progress {
        let style = ProgressStyle::with_template("{prefix:>11} [{bar:30}] {pos:>4}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let mut end_s = 0.0;
        let phases = match load {
            Load::Open(phases) => phases
                .iter()
                .map(|p| {
                    let start_s = end_s;
                    end_s += p.duration.as_secs_f64();
                    let label = match p.rate {
                        Rate::Constant(r) => format!("{r:.0}/s"),
                        Rate::Ramp { from, to } => format!("{from:.0}->{to:.0}/s"),
                    };
                    (start_s, end_s, label)
                })
                .collect(),
            Load::Closed {
                connections,
                duration,
            } => vec![(
                0.0,
                duration.as_secs_f64(),
                format!("{connections} connections"),
            )],
        };
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let mut progress = Progress {
            bars: MultiProgress::with_draw_target(target),
            style,
            phases,
            current: None,
        };
        if let Some((start_s, end_s, label)) = progress.phases.first().cloned() {
            progress.begin(0, end_s - start_s, &label);
        }
        progress
    }

    /// Advances to the end of `row`, finishing phases it passed.
    pub fn interval(&mut self, row: &IntervalRow) {
        let at_s = row.start_s + row.duration_s;
        let message = format!(
            "sent {:.0}/s  p99 {}  in flight {}",
            row.sent as f64 / row.duration_s.max(1e-9),
            fmt_us(row.p99_us),
            row.in_flight
        );
        loop {
            let Some((index, bar)) = self.current.clone() else {
                return;
            };
            let (start_s, end_s, label) = self.phases[index].clone();
            bar.set_position((at_s.min(end_s) - start_s).max(0.0).round() as u64);
            bar.set_message(format!("{label}  {message}"));
            if at_s + 1e-6 < end_s {
                return;
            }
            bar.finish();
            if index + 1 < self.phases.len() {
                let (next_start, next_end, next_label) = self.phases[index + 1].clone();
                self.begin(index + 1, next_end - next_start, &next_label);
            } else {
                self.current = None;
                return;
            }
        }
    }

    fn begin(&mut self, index: usize, length_s: f64, label: &str) {
        let bar = self.bars.add(ProgressBar::new(length_s.ceil() as u64));
        bar.set_style(self.style.clone());
        bar.set_prefix(format!("phase {}/{}", index + 1, self.phases.len()));
        bar.set_message(label.to_string());
        self.current = Some((index, bar));
    }

    /// Leaves the finished bars on screen and stops drawing.
    pub fn finish(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.abandon();
        }
    }
}
