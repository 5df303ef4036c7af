//! Drawing: a [`Figure`] onto an SVG or PNG with plotters.
//!
//! Takes a figure and a path; splits the picture into the figure's panels
//! and draws each (mesh, marker lines, series, the labels at the lines'
//! ends, marked points). Decides nothing about what is shown.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::axes::{Ticked, coord, tick_label};
use super::figure::{Figure, GREY, Kind, Panel, RED, Series};

/// Size of every plot, px (the SVG's viewport too).
const SIZE: (u32, u32) = (960, 560);
/// Font family name the embedded font is registered under.
const FONT: &str = "sans-serif";
/// Plot text font: DejaVu Sans cut to Latin-1 (see assets/DejaVuSans-LICENSE.txt).
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/DejaVuSans-subset.ttf");

/// Renders `figure` to `path`: SVG or PNG by its extension.
pub fn render(path: &Path, figure: &Figure) -> std::result::Result<(), String> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is a constant of the build; a bad one fails every plot below.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
    if path.extension().is_some_and(|e| e == "svg") {
        let root = SVGBackend::new(path, SIZE).into_drawing_area();
        draw(&root, figure)?;
        root.present().map_err(|e| e.to_string())
    } else {
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        draw(&root, figure)?;
        root.present().map_err(|e| e.to_string())
    }
}

/// Draws the figure's note at the foot, then its panels top to bottom,
/// each given its share of the height left.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (width, height) = root.dim_in_pixel();
    let note_px = if figure.note.is_empty() { 0 } else { 26 };
    let (body, foot) = root.split_vertically(height - note_px);
    if !figure.note.is_empty() {
        foot.draw(&Text::new(
            figure.note.clone(),
            (14, 4),
            (FONT, 14).into_font().color(&GREY),
        ))
        .map_err(|e| e.to_string())?;
    }
    let total: f64 = figure.panels.iter().map(|p| p.1).sum();
    let mut rest = body;
    for (i, (panel, share)) in figure.panels.iter().enumerate() {
        let area = if i + 1 == figure.panels.len() {
            rest.clone()
        } else {
            let h = ((f64::from(height - note_px)) * share / total) as u32;
            let (top, bottom) = rest.split_vertically(h);
            rest = bottom;
            top
        };
        draw_panel(root, &area, panel, width)?;
    }
    Ok(())
}

/// The chart of one panel: plotters' context over the panel's two axes.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// A drawing error as the message `render` returns.
fn msg<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Where a panel's data lands: the bounds of its axes in plot units
/// (log10 of the value on a logarithmic axis) and the map into them.
struct Plane {
    x_log: bool,
    y_log: bool,
    x_lo: f64,
    x_hi: f64,
    y_lo: f64,
    y_hi: f64,
}

impl Plane {
    /// An x value in plot units.
    fn tx(&self, v: f64) -> f64 {
        if self.x_log { v.max(1e-9).log10() } else { v }
    }

    /// A y value in plot units.
    fn ty(&self, v: f64) -> f64 {
        if self.y_log { v.max(1e-9).log10() } else { v }
    }

    /// Whether a point in plot units lies within the axes (a rounding
    /// error's width outside still counts).
    fn inside(&self, x: f64, y: f64) -> bool {
        x >= self.x_lo - 1e-9
            && x <= self.x_hi + 1e-9
            && y >= self.y_lo - 1e-9
            && y <= self.y_hi + 1e-9
    }
}

/// A series' label at the right edge, before the labels are nudged apart.
struct EndLabel {
    /// Backend pixel row of the series' end (a band's middle).
    y_px: i32,
    name: String,
    color: RGBColor,
}

/// Draws one panel in `area`: the mesh, the marker lines, the series, the
/// labels at the series' ends and the marked points. Text goes on `root`
/// (`width` px wide), where it may run past the panel's plotting area.
fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    width: u32,
) -> std::result::Result<(), String> {
    let (xc, x_lo, x_hi) = coord(&p.x, &panel_xs(p));
    let (yc, y_lo, y_hi) = coord(&p.y, &panel_ys(p));
    let plane = Plane {
        x_log: p.x.log,
        y_log: p.y.log,
        x_lo,
        x_hi,
        y_lo,
        y_hi,
    };
    let label_px = end_label_margin_px(p);
    let mut chart = mesh(area, p, xc, yc, label_px)?;
    draw_shades(root, &mut chart, p, &plane)?;
    draw_vlines(root, &mut chart, p, &plane)?;
    draw_hlines(root, &mut chart, p, &plane)?;
    let mut end_labels = Vec::new();
    for s in p.series.iter().filter(|s| !matches!(s.kind, Kind::Shade)) {
        if let Some(label) = draw_series(&mut chart, s, &plane)? {
            end_labels.push(label);
        }
    }
    let label_x = width as i32 - label_px + 8;
    draw_end_labels(root, end_labels, label_x)?;
    draw_marks(root, &mut chart, p, &plane, label_x)
}

/// Every x value the panel shows: its series' points (a shaded span's
/// finite ends), vertical lines and marks.
fn panel_xs(p: &Panel) -> Vec<f64> {
    p.series
        .iter()
        .flat_map(|s| {
            let shade = matches!(s.kind, Kind::Shade);
            s.data
                .iter()
                .flat_map(move |d| [Some(d.0), shade.then_some(d.1)])
                .flatten()
                .filter(|x| x.is_finite())
        })
        .chain(p.vlines.iter().map(|v| v.0))
        .chain(p.marks.iter().map(|m| m.0))
        .collect()
}

/// Every y value the panel shows: its series' points (a shaded span has
/// none: it covers whatever height the rest gives), horizontal lines and marks.
fn panel_ys(p: &Panel) -> Vec<f64> {
    p.series
        .iter()
        .filter(|s| !matches!(s.kind, Kind::Shade))
        .flat_map(|s| s.data.iter().map(|d| d.1))
        .chain(p.hlines.iter().map(|h| h.0))
        .chain(p.marks.iter().map(|m| m.1))
        .collect()
}

/// Room on the right for the labels at the lines' ends, px (about 8 px a
/// character at the labels' size).
fn end_label_margin_px(p: &Panel) -> i32 {
    let longest = p
        .series
        .iter()
        .filter(|s| !matches!(s.kind, Kind::Shade))
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    (16 + 8 * longest as i32).clamp(118, 220)
}

/// Builds the panel's chart in `area` and draws its title, grid, ticks and
/// axis labels.
fn mesh<'a, DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    xc: Ticked,
    yc: Ticked,
    label_px: i32,
) -> std::result::Result<Chart<'a, DB>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 20))
        .margin(10)
        .margin_right(label_px)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(xc, yc)
        .map_err(msg)?;
    let (xf, xl, yf, yl) = (p.x.fmt, p.x.log, p.y.fmt, p.y.log);
    chart
        .configure_mesh()
        .x_desc(p.x.label.clone())
        .y_desc(p.y.label.clone())
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .x_label_formatter(&move |v| tick_label(xf, xl, *v))
        .y_label_formatter(&move |v| tick_label(yf, yl, *v))
        .draw()
        .map_err(msg)?;
    Ok(chart)
}

/// The shaded spans, light in their series' colour under everything else,
/// each series labelled at the top of its first span shown.
fn draw_shades<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut Chart<'_, DB>,
    p: &Panel,
    plane: &Plane,
) -> std::result::Result<(), String> {
    let small = (FONT, 13).into_font();
    for s in p.series.iter().filter(|s| matches!(s.kind, Kind::Shade)) {
        let mut labelled = false;
        for &(from, to) in &s.data {
            let to = if to.is_finite() {
                plane.tx(to)
            } else {
                plane.x_hi
            };
            let from = plane.tx(from).max(plane.x_lo);
            let to = to.min(plane.x_hi);
            if !from.is_finite() || from >= to {
                continue;
            }
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(from, plane.y_lo), (to, plane.y_hi)],
                    s.color.mix(0.18).filled(),
                )))
                .map_err(msg)?;
            if !labelled {
                let (px, py) = chart.backend_coord(&(from, plane.y_hi));
                root.draw(&Text::new(
                    s.name.clone(),
                    (px + 3, py + 18),
                    small.color(&s.color),
                ))
                .map_err(msg)?;
                labelled = true;
            }
        }
    }
    Ok(())
}

/// The vertical marker lines, dashed, each labelled at its top.
fn draw_vlines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut Chart<'_, DB>,
    p: &Panel,
    plane: &Plane,
) -> std::result::Result<(), String> {
    let small = (FONT, 13).into_font();
    for (x, label) in &p.vlines {
        let x = plane.tx(*x);
        if x < plane.x_lo || x > plane.x_hi {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, plane.y_lo), (x, plane.y_hi)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(msg)?;
        let (px, py) = chart.backend_coord(&(x, plane.y_hi));
        root.draw(&Text::new(
            label.clone(),
            (px + 4, py + 4),
            small.color(&BLACK),
        ))
        .map_err(msg)?;
    }
    Ok(())
}

/// The horizontal marker lines, dashed red, each labelled above its left end.
fn draw_hlines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut Chart<'_, DB>,
    p: &Panel,
    plane: &Plane,
) -> std::result::Result<(), String> {
    let small = (FONT, 13).into_font();
    for (y, label) in &p.hlines {
        let y = plane.ty(*y);
        if y < plane.y_lo || y > plane.y_hi {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(plane.x_lo, y), (plane.x_hi, y)],
                6,
                4,
                RED.mix(0.8).stroke_width(1),
            ))
            .map_err(msg)?;
        let (px, py) = chart.backend_coord(&(plane.x_lo, y));
        root.draw(&Text::new(
            label.clone(),
            (px + 6, py - 16),
            small.color(&RED),
        ))
        .map_err(msg)?;
    }
    Ok(())
}

/// Draws one series as its kind says; returns where its label goes, or
/// `None` when none of its points can be shown.
fn draw_series<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    s: &Series,
    plane: &Plane,
) -> std::result::Result<Option<EndLabel>, String> {
    let pts: Vec<(f64, f64)> = s
        .data
        .iter()
        .filter(|(x, y)| {
            x.is_finite()
                && y.is_finite()
                && (!plane.x_log || *x > 0.0)
                && (!plane.y_log || *y > 0.0)
        })
        .map(|&(x, y)| (plane.tx(x), plane.ty(y)))
        .filter(|&(x, y)| plane.inside(x, y))
        .collect();
    if pts.is_empty() {
        return Ok(None);
    }
    let style = s.color.stroke_width(2);
    match &s.kind {
        Kind::Line(dots) => {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(msg)?;
            if *dots {
                chart
                    .draw_series(pts.iter().map(|&c| Circle::new(c, 3, s.color.filled())))
                    .map_err(msg)?;
            }
        }
        Kind::Dashed => {
            chart
                .draw_series(DashedLineSeries::new(
                    pts.clone(),
                    8,
                    5,
                    s.color.stroke_width(1),
                ))
                .map_err(msg)?;
        }
        Kind::Dots => {
            chart
                .draw_series(pts.iter().map(|&c| Circle::new(c, 5, s.color.filled())))
                .map_err(msg)?;
        }
        // Drawn by `draw_shades`, under the rest.
        Kind::Shade => return Ok(None),
        Kind::Band(lower) => {
            let mut poly = pts.clone();
            poly.extend(lower.iter().rev().map(|&(x, y)| (plane.tx(x), plane.ty(y))));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    s.color.mix(0.55).filled(),
                )))
                .map_err(msg)?;
            chart
                .draw_series(LineSeries::new(pts.clone(), s.color.stroke_width(1)))
                .map_err(msg)?;
        }
    }
    // A band is labelled at its middle height, a line at its end.
    let anchor = match &s.kind {
        Kind::Band(lower) => {
            let (x, top) = *pts.last().unwrap_or(&(0.0, 0.0));
            let bottom = lower.last().map_or(0.0, |l| plane.ty(l.1));
            (x, (top + bottom) / 2.0)
        }
        _ => *pts.last().unwrap_or(&(0.0, 0.0)),
    };
    Ok(Some(EndLabel {
        y_px: chart.backend_coord(&anchor).1,
        name: s.name.clone(),
        color: s.color,
    }))
}

/// The series' labels at the right edge (from `label_x` px), each in its
/// series' colour, nudged apart so none overlaps another.
fn draw_end_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    mut labels: Vec<EndLabel>,
    label_x: i32,
) -> std::result::Result<(), String> {
    labels.sort_by_key(|l| l.y_px);
    let gap = 16;
    for i in 1..labels.len() {
        if labels[i].y_px < labels[i - 1].y_px + gap {
            labels[i].y_px = labels[i - 1].y_px + gap;
        }
    }
    let font = (FONT, 15).into_font();
    for l in &labels {
        root.draw(&Text::new(
            l.name.clone(),
            (label_x, l.y_px - 8),
            font.color(&l.color),
        ))
        .map_err(msg)?;
    }
    Ok(())
}

/// The marked points, circled in red, each labelled where it stays inside
/// the plot and clear of the data.
fn draw_marks<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut Chart<'_, DB>,
    p: &Panel,
    plane: &Plane,
    label_x: i32,
) -> std::result::Result<(), String> {
    let small = (FONT, 13).into_font();
    // The highest point of the data, in plot units: a mark at it (a peak)
    // has nothing above it, so its label goes there.
    let top_y = p
        .series
        .iter()
        .filter(|s| !matches!(s.kind, Kind::Shade))
        .flat_map(|s| s.data.iter().map(|d| plane.ty(d.1)))
        .fold(f64::NEG_INFINITY, f64::max);
    for (x, y, label) in &p.marks {
        let above = plane.ty(*y) >= top_y - (plane.y_hi - plane.y_lo) * 0.02;
        let c = (plane.tx(*x), plane.ty(*y));
        if !plane.inside(c.0, c.1) {
            continue;
        }
        chart
            .draw_series(std::iter::once(Circle::new(c, 6, RED.stroke_width(2))))
            .map_err(msg)?;
        let (px, py) = chart.backend_coord(&c);
        let w = (label.len() as i32) * 8;
        // Keep the label inside the plot: to the left of the mark near the
        // right edge, above it near the bottom.
        let lx = if px + 10 + w > label_x {
            px - 10 - w
        } else {
            px + 10
        };
        let bottom_px = chart.backend_coord(&(plane.x_lo, plane.y_lo)).1;
        let ly = if above || py + 26 > bottom_px {
            py - 24
        } else {
            py + 8
        };
        root.draw(&Text::new(label.clone(), (lx, ly), small.color(&RED)))
            .map_err(msg)?;
    }
    Ok(())
}
