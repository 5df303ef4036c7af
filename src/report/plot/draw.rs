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

use super::axes::{coord, tick_label};
use super::figure::{Figure, GREY, Kind, Panel, RED};

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

fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    width: u32,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let xs: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.data.iter().map(|d| d.0))
        .chain(p.vlines.iter().map(|v| v.0))
        .chain(p.marks.iter().map(|m| m.0))
        .collect();
    let ys: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.data.iter().map(|d| d.1))
        .chain(p.hlines.iter().map(|h| h.0))
        .chain(p.marks.iter().map(|m| m.1))
        .collect();
    let (xc, x_lo, x_hi) = coord(&p.x, &xs);
    let (yc, y_lo, y_hi) = coord(&p.y, &ys);
    let tx = |v: f64| if p.x.log { v.max(1e-9).log10() } else { v };
    let ty = |v: f64| if p.y.log { v.max(1e-9).log10() } else { v };
    let inside = |x: f64, y: f64| {
        x >= x_lo - 1e-9 && x <= x_hi + 1e-9 && y >= y_lo - 1e-9 && y <= y_hi + 1e-9
    };
    // Room on the right for the labels at the lines' ends (about 8 px a
    // character at the labels' size).
    let longest = p
        .series
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let label_px = (16 + 8 * longest as i32).clamp(118, 220);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 20))
        .margin(10)
        .margin_right(label_px)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(xc, yc)
        .map_err(e)?;
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
        .map_err(e)?;
    let small = (FONT, 13).into_font();
    for (x, label) in &p.vlines {
        let x = tx(*x);
        if x < x_lo || x > x_hi {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, y_lo), (x, y_hi)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(e)?;
        let (px, py) = chart.backend_coord(&(x, y_hi));
        root.draw(&Text::new(
            label.clone(),
            (px + 4, py + 4),
            small.color(&BLACK),
        ))
        .map_err(e)?;
    }
    for (y, label) in &p.hlines {
        let y = ty(*y);
        if y < y_lo || y > y_hi {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_lo, y), (x_hi, y)],
                6,
                4,
                RED.mix(0.8).stroke_width(1),
            ))
            .map_err(e)?;
        let (px, py) = chart.backend_coord(&(x_lo, y));
        root.draw(&Text::new(
            label.clone(),
            (px + 6, py - 16),
            small.color(&RED),
        ))
        .map_err(e)?;
    }
    let mut end_labels: Vec<(i32, i32, String, RGBColor)> = Vec::new();
    for s in &p.series {
        let pts: Vec<(f64, f64)> = s
            .data
            .iter()
            .filter(|(x, y)| {
                x.is_finite() && y.is_finite() && (!p.x.log || *x > 0.0) && (!p.y.log || *y > 0.0)
            })
            .map(|&(x, y)| (tx(x), ty(y)))
            .filter(|&(x, y)| inside(x, y))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let style = s.color.stroke_width(2);
        match &s.kind {
            Kind::Line(dots) => {
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))
                    .map_err(e)?;
                if *dots {
                    chart
                        .draw_series(pts.iter().map(|&c| Circle::new(c, 3, s.color.filled())))
                        .map_err(e)?;
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
                    .map_err(e)?;
            }
            Kind::Dots => {
                chart
                    .draw_series(pts.iter().map(|&c| Circle::new(c, 5, s.color.filled())))
                    .map_err(e)?;
            }
            Kind::Band(lower) => {
                let mut poly = pts.clone();
                poly.extend(lower.iter().rev().map(|&(x, y)| (tx(x), ty(y))));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        poly,
                        s.color.mix(0.55).filled(),
                    )))
                    .map_err(e)?;
                chart
                    .draw_series(LineSeries::new(pts.clone(), s.color.stroke_width(1)))
                    .map_err(e)?;
            }
        }
        // A band is labelled at its middle height, a line at its end.
        let anchor = match &s.kind {
            Kind::Band(lower) => {
                let (x, top) = *pts.last().unwrap_or(&(0.0, 0.0));
                let bottom = lower.last().map_or(0.0, |l| ty(l.1));
                (x, (top + bottom) / 2.0)
            }
            _ => *pts.last().unwrap_or(&(0.0, 0.0)),
        };
        let (px, py) = chart.backend_coord(&anchor);
        end_labels.push((px, py, s.name.clone(), s.color));
    }
    // Labels at the right edge, nudged apart so none overlaps another.
    end_labels.sort_by_key(|l| l.1);
    let gap = 16;
    for i in 1..end_labels.len() {
        if end_labels[i].1 < end_labels[i - 1].1 + gap {
            end_labels[i].1 = end_labels[i - 1].1 + gap;
        }
    }
    let label_x = width as i32 - label_px + 8;
    let font = (FONT, 15).into_font();
    for (px, py, name, color) in &end_labels {
        let _ = px;
        root.draw(&Text::new(
            name.clone(),
            (label_x, py - 8),
            font.color(color),
        ))
        .map_err(e)?;
    }
    // The highest point of the data, in plot units: a mark at it (a peak)
    // has nothing above it, so its label goes there.
    let top_y = p
        .series
        .iter()
        .flat_map(|s| s.data.iter().map(|d| ty(d.1)))
        .fold(f64::NEG_INFINITY, f64::max);
    for (x, y, label) in &p.marks {
        let above = ty(*y) >= top_y - (y_hi - y_lo) * 0.02;
        let c = (tx(*x), ty(*y));
        if !inside(c.0, c.1) {
            continue;
        }
        chart
            .draw_series(std::iter::once(Circle::new(c, 6, RED.stroke_width(2))))
            .map_err(e)?;
        let (px, py) = chart.backend_coord(&c);
        let w = (label.len() as i32) * 8;
        // Keep the label inside the plot: to the left of the mark near the
        // right edge, above it near the bottom.
        let lx = if px + 10 + w > label_x {
            px - 10 - w
        } else {
            px + 10
        };
        let bottom_px = chart.backend_coord(&(x_lo, y_lo)).1;
        let ly = if above || py + 26 > bottom_px {
            py - 24
        } else {
            py + 8
        };
        root.draw(&Text::new(label.clone(), (lx, ly), small.color(&RED)))
            .map_err(e)?;
    }
    Ok(())
}
