//! The accuracy-vs-SSIM scatter plot as SVG with real text: axis titles, tick labels, a legend
//! and labelled reference lines. Inlined into report.html and written next to it as a file.

use std::fmt::Write as _;

use anyhow::{Result, ensure};

use crate::html::escape;

/// One point: x and y in data units, its colour and its legend entry.
#[derive(Debug, Clone)]
pub struct Point {
    /// SSIM of the strongest attack.
    pub x: f64,
    /// Server accuracy.
    pub y: f64,
    /// Fill colour.
    pub rgb: [u8; 3],
    /// Filled (true) or hollow square.
    pub filled: bool,
    /// Legend entry (points with the same series share one).
    pub series: String,
}

/// A dashed vertical reference line with a label at its top (e.g. the label-only floor).
#[derive(Debug, Clone)]
pub struct VLine {
    /// Where, in data units.
    pub x: f64,
    /// Colour.
    pub rgb: [u8; 3],
    /// Its label.
    pub label: String,
}

/// Picture size and the plot area's margins, in SVG user units.
pub const W: f64 = 760.0;
/// Height.
pub const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 60.0;

fn rgb(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

/// The plot area's x pixel of SSIM `x` (clamped to `[0, 1]`).
pub fn to_x(x: f64) -> f64 {
    LEFT + x.clamp(0.0, 1.0) * (W - LEFT - RIGHT)
}

/// The plot area's y pixel of accuracy `y` for an axis from `y_min` to 1.
pub fn to_y(y: f64, y_min: f64) -> f64 {
    TOP + (1.0 - (y.clamp(y_min, 1.0) - y_min) / (1.0 - y_min)) * (H - TOP - BOTTOM)
}

/// Draws the scatter: x axis SSIM in `[0, 1]`, y axis accuracy in `[y_min, 1]`, with grid lines
/// every 0.1 (x) / 0.05 or 0.1 (y), tick labels, axis titles, the reference lines `vlines` and a
/// legend of the points' series. Returns the SVG document.
///
/// # Errors
/// `y_min` not below 1, or a non-finite point or line.
pub fn scatter_svg(points: &[Point], y_min: f64, vlines: &[VLine]) -> Result<String> {
    ensure!(y_min.is_finite() && y_min < 1.0, "y_min {y_min} must be below 1");
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12" role="img" aria-label="server accuracy against the SSIM of the strongest attack"><rect width="{W}" height="{H}" fill="white"/>"#
    );
    for i in 0..=10 {
        let v = f64::from(i) / 10.0;
        let x = to_x(v);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#e1e1e1"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{v:.1}</text>"##,
            y1 + 16.0
        );
    }
    let step = if 1.0 - y_min <= 0.3 { 0.05 } else { 0.1 };
    let mut v = 1.0;
    while v >= y_min - 1e-9 {
        let y = to_y(v, y_min);
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#e1e1e1"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            x0 - 6.0,
            y + 4.0
        );
        v -= step;
    }
    let _ = write!(
        s,
        r##"<path d="M{x0} {y0}V{y1}H{x1}" fill="none" stroke="#3c3c3c"/><text x="{:.1}" y="{:.1}" text-anchor="middle">SSIM of the strongest attack (empirical; 1 = image recovered)</text><text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">server accuracy</text>"##,
        (x0 + x1) / 2.0,
        H - 18.0,
        (y0 + y1) / 2.0
    );
    for (i, l) in vlines.iter().enumerate() {
        ensure!(l.x.is_finite(), "non-finite reference line");
        let x = to_x(l.x);
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="{c}" stroke-dasharray="4 4"/><text x="{:.1}" y="{:.1}" fill="{c}">{}</text>"#,
            x + 4.0,
            y0 + 14.0 + 14.0 * i as f64,
            escape(&l.label),
            c = rgb(l.rgb)
        );
    }
    let mut legend: Vec<(&str, [u8; 3], bool)> = Vec::new();
    for p in points {
        ensure!(p.x.is_finite() && p.y.is_finite(), "non-finite point");
        let (x, y) = (to_x(p.x), to_y(p.y, y_min));
        let _ = write!(s, "{}", square(x, y, p.rgb, p.filled, &p.series));
        if !legend
            .iter()
            .any(|(n, c, f)| *n == p.series && *c == p.rgb && *f == p.filled)
        {
            legend.push((&p.series, p.rgb, p.filled));
        }
    }
    for (i, (name, c, filled)) in legend.iter().enumerate() {
        let y = y0 + 10.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r#"{}<text x="{:.1}" y="{:.1}">{}</text>"#,
            square(x1 + 20.0, y, *c, *filled, name),
            x1 + 32.0,
            y + 4.0,
            escape(name)
        );
    }
    s.push_str("</svg>");
    Ok(s)
}

/// A 10 × 10 square centred on (x, y), filled or hollow, with a tooltip.
fn square(x: f64, y: f64, c: [u8; 3], filled: bool, title: &str) -> String {
    let fill = if filled { rgb(c) } else { "none".into() };
    format!(
        r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{fill}" stroke="{}" stroke-width="2"><title>{}</title></rect>"#,
        x - 5.0,
        y - 5.0,
        rgb(c),
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_points_where_they_belong_with_text() {
        let p = Point {
            x: 0.5,
            y: 0.9,
            rgb: [200, 0, 0],
            filled: true,
            series: "obfnet1 <K=10>".into(),
        };
        let line = VLine {
            x: 0.3,
            rgb: [0, 0, 200],
            label: "GOAL".into(),
        };
        let svg = scatter_svg(&[p], 0.8, &[line]).expect("svg");
        // the point's square is centred where the axes put (0.5, 0.9): the middle of the area
        let (x, y) = (to_x(0.5), to_y(0.9, 0.8));
        assert!((x - (LEFT + (W - LEFT - RIGHT) / 2.0)).abs() < 1e-9);
        assert!((y - (TOP + (H - TOP - BOTTOM) / 2.0)).abs() < 1e-9);
        assert!(
            svg.contains(&format!(
                r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="rgb(200,0,0)""#,
                x - 5.0,
                y - 5.0
            )),
            "{svg}"
        );
        // the dashed line sits at x = 0.3, in its colour, with its label
        let lx = to_x(0.3);
        assert!(svg.contains(&format!(r#"<line x1="{lx:.1}" y1="{TOP}""#)));
        assert!(svg.contains(r#"stroke="rgb(0,0,200)" stroke-dasharray="4 4""#));
        assert!(svg.contains(">GOAL</text>"));
        // real text: axis titles, tick labels, an escaped legend entry
        assert!(svg.contains("SSIM of the strongest attack"));
        assert!(svg.contains(">server accuracy</text>"));
        assert!(svg.contains(">0.5</text>") && svg.contains(">0.90</text>"));
        assert!(svg.contains(">obfnet1 &lt;K=10&gt;</text>"));
        assert!(scatter_svg(&[], 1.0, &[]).is_err());
        let bad = Point {
            x: f64::NAN,
            y: 0.9,
            rgb: [0; 3],
            filled: true,
            series: String::new(),
        };
        assert!(scatter_svg(&[bad], 0.5, &[]).is_err());
    }
}
