//! Axes: a data range into a plotters coordinate with ticks at nice values,
//! and the ticks' labels.
//!
//! Takes an [`Axis`] and the values drawn on it; hands on a [`Ticked`]
//! coordinate (log10 of the data on a logarithmic axis) and its bounds.
//! Draws nothing.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::Ranged;

use super::figure::{Axis, Fmt};
use super::{fmt_pct, fmt_us};

/// A linear axis over `lo..hi` whose grid lines and labels sit exactly at
/// `ticks` (plotters' own choice of ticks cannot follow a log10 axis).
#[derive(Debug, Clone)]
pub(super) struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The coordinate of one axis: data (log10 when logarithmic) with key points at nice ticks.
pub(super) fn coord(axis: &Axis, values: &[f64]) -> (Ticked, f64, f64) {
    let usable: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && (!axis.log || *v > 0.0))
        .collect();
    let (mut lo, mut hi) = axis.range.unwrap_or_else(|| {
        let lo = usable.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = usable.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            (lo, hi)
        } else {
            (1.0, 10.0)
        }
    });
    if axis.log {
        lo = lo.max(1e-9);
        hi = hi.max(lo * 1.0001);
        // Whole decades around the data, or 1-2-5 steps when it spans little.
        let (dlo, dhi) = (lo.log10().floor(), hi.log10().ceil());
        let mut ticks = Vec::new();
        let decades = dhi - dlo;
        let steps: &[f64] = if decades <= 2.0 && axis.fmt != Fmt::Spectrum {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut d = dlo;
        while d <= dhi {
            for m in steps {
                ticks.push((m * 10f64.powf(d)).log10());
            }
            d += 1.0;
        }
        let (a, b) = if axis.fmt == Fmt::Spectrum {
            (0.0, dhi)
        } else {
            (dlo, dhi)
        };
        ticks.retain(|v| *v >= a - 1e-9 && *v <= b + 1e-9);
        let b = b.max(a + 0.5);
        (
            Ticked {
                lo: a,
                hi: b,
                ticks,
            },
            a,
            b,
        )
    } else {
        if axis.range.is_none() {
            lo = lo.min(0.0);
            hi *= 1.08;
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        let step = nice_step((hi - lo) / 8.0);
        let mut ticks = Vec::new();
        let mut v = (lo / step).ceil() * step;
        while v <= hi + 1e-9 {
            ticks.push(v);
            v += step;
        }
        (Ticked { lo, hi, ticks }, lo, hi)
    }
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// The label of a tick at `v` (log10 of the value on a logarithmic axis).
pub(super) fn tick_label(fmt: Fmt, log: bool, v: f64) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    match fmt {
        Fmt::Micros => fmt_us(v),
        Fmt::Plain => {
            if v.abs() >= 10_000.0 {
                format!("{:.0}k", v / 1000.0)
            } else if v.fract().abs() < 1e-9 {
                format!("{v:.0}")
            } else if (v * 10.0 - (v * 10.0).round()).abs() < 1e-6 {
                format!("{v:.1}")
            } else {
                // Ticks a twentieth apart (0.05, 0.15) need their second place.
                format!("{v:.2}")
            }
        }
        Fmt::Share => format!("{:.0}%", v * 100.0),
        Fmt::Spectrum => format!("{}%", fmt_pct(100.0 * (1.0 - 1.0 / v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_read_as_people_write_them() {
        assert_eq!(tick_label(Fmt::Spectrum, true, 2.0), "99%");
        assert_eq!(tick_label(Fmt::Spectrum, true, 3.0), "99.9%");
        assert_eq!(tick_label(Fmt::Spectrum, true, 0.0), "0%");
        assert_eq!(tick_label(Fmt::Micros, true, 3.0), "1.0ms");
        assert_eq!(tick_label(Fmt::Micros, false, 250_000.0), "250ms");
        assert_eq!(tick_label(Fmt::Share, false, 0.5), "50%");
        assert_eq!(nice_step(130.0), 200.0);
    }
}
