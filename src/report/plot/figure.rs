//! The figures, as data: what to draw, not how.
//!
//! A [`Figure`] is stacked [`Panel`]s of labelled [`Series`] with marker
//! lines and marked points, plus the palette the plots share. The figure
//! builders (the sibling `latency` and `sweep`, and
//! [`crate::report::find_limit`] and [`crate::report::abort_audit`]) fill
//! them in; [`super::render`] draws them. Nothing here draws.

use plotters::style::RGBColor;

/// How an axis shows its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fmt {
    /// Microseconds shown as ms or s.
    Micros,
    /// A plain number (rates, concurrency, seconds).
    Plain,
    /// A share 0..1 shown as a percentage.
    Share,
    /// 1/(1-p) shown as the percentile p.
    Spectrum,
}

/// One axis.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Its label.
    pub label: String,
    /// Logarithmic.
    pub log: bool,
    /// Value format of the ticks.
    pub fmt: Fmt,
    /// Fixed range; `None` fits the data.
    pub range: Option<(f64, f64)>,
}

/// How a series is drawn.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A line through the points, with dots at them when true.
    Line(bool),
    /// A dashed line.
    Dashed,
    /// Dots only.
    Dots,
    /// A filled band from these lower points up to the series' points.
    Band(Vec<(f64, f64)>),
    /// Spans of x shaded over the panel's whole height, each point a
    /// (start, end) pair (an end that is not finite: to the panel's right
    /// edge), labelled at the first span's top: when a fault held.
    Shade,
}

/// One labelled series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Label at its end.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// Points (x, y) in data units.
    pub data: Vec<(f64, f64)>,
    /// How to draw it.
    pub kind: Kind,
}

/// One chart panel.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the panel (empty: none).
    pub title: String,
    /// The x axis.
    pub x: Axis,
    /// The y axis.
    pub y: Axis,
    /// Series, drawn in order.
    pub series: Vec<Series>,
    /// Vertical marker lines: (x, label).
    pub vlines: Vec<(f64, String)>,
    /// Horizontal marker lines: (y, label).
    pub hlines: Vec<(f64, String)>,
    /// Labelled points: (x, y, label). The label goes below and to the
    /// right, or above where the point tops the data (a peak).
    pub marks: Vec<(f64, f64, String)>,
}

/// A figure: one or more panels stacked, with relative heights.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Panels top to bottom, with their share of the height.
    pub panels: Vec<(Panel, f64)>,
    /// A line of small print at the bottom (empty: none).
    pub note: String,
}

// The palette the figures share (close to matplotlib's tab10), so a
// percentile or an outcome keeps its colour from one plot to the next.
pub(super) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(super) const GREEN: RGBColor = RGBColor(44, 160, 44);
pub(super) const ORANGE: RGBColor = RGBColor(230, 120, 0);
pub(super) const RED: RGBColor = RGBColor(214, 39, 40);
pub(super) const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub(super) const GREY: RGBColor = RGBColor(110, 110, 110);
pub(super) const BROWN: RGBColor = RGBColor(140, 86, 75);
pub(super) const PINK: RGBColor = RGBColor(227, 119, 194);

/// An axis that fits its data.
pub(super) fn axis(label: &str, log: bool, fmt: Fmt) -> Axis {
    Axis {
        label: label.to_string(),
        log,
        fmt,
        range: None,
    }
}
