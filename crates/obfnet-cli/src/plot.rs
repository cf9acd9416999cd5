//! A small accuracy-vs-SSIM scatter plot drawn straight into an RGB buffer and written as PNG
//! (no plotting library, no font files: labels use a built-in 3×5 font of digits and capitals).

use std::fs;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result, ensure};

/// One point: x and y in data units, and its colour.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
    pub rgb: [u8; 3],
    /// Filled (true) or hollow square.
    pub filled: bool,
}

const W: usize = 640;
const H: usize = 480;
const LEFT: usize = 60;
const RIGHT: usize = 20;
const TOP: usize = 20;
const BOTTOM: usize = 50;

/// A dashed vertical reference line with a label at its top (e.g. the label-only floor).
#[derive(Debug, Clone)]
pub(crate) struct VLine {
    pub x: f64,
    pub rgb: [u8; 3],
    pub label: String,
}

/// 3×5 glyphs for `0-9`, `.`, `-`, `=`, `≤` and capitals, one row per 3-bit number (MSB left);
/// anything else is drawn as a space.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        '=' => [0, 7, 0, 7, 0],
        '≤' => [1, 2, 4, 2, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        _ => return None,
    })
}

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < W && y < H {
            let i = (y * W + x) * 3;
            self.px[i..i + 3].copy_from_slice(&rgb);
        }
    }
    fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, rgb: [u8; 3]) {
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.set(x, y, rgb);
            }
        }
    }
    /// Text at (x, y) top-left, each font pixel drawn as `s × s`.
    fn text(&mut self, x: usize, y: usize, s: usize, text: &str, rgb: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            if let Some(g) = glyph(c) {
                for (row, bits) in g.iter().enumerate() {
                    for col in 0..3 {
                        if bits & (4 >> col) != 0 {
                            let (px, py) = (x + i * 4 * s + col * s, y + row * s);
                            self.rect(px, py, px + s - 1, py + s - 1, rgb);
                        }
                    }
                }
            }
        }
    }
}

/// Draws the scatter: x axis SSIM in `[0, 1]`, y axis accuracy in `[y_min, 1]`, with grid lines
/// every 0.1 (x) / 0.05 or 0.1 (y), tick labels, axis titles and the reference lines `vlines`.
pub(crate) fn write_scatter_png(path: &Path, points: &[Point], y_min: f64, vlines: &[VLine]) -> Result<()> {
    ensure!(y_min.is_finite() && y_min < 1.0, "y_min {y_min} must be below 1");
    let mut c = Canvas {
        px: vec![255; W * H * 3],
    };
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let to_x = |x: f64| LEFT + ((x.clamp(0.0, 1.0)) * pw as f64).round() as usize;
    let to_y =
        |y: f64| TOP + ((1.0 - (y.clamp(y_min, 1.0) - y_min) / (1.0 - y_min)) * ph as f64).round() as usize;
    let grid = [225, 225, 225];
    let axis = [60, 60, 60];
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let x = to_x(v);
        c.rect(x, TOP, x, TOP + ph, grid);
        c.text(x.saturating_sub(5), TOP + ph + 8, 2, &format!("{v:.1}"), axis);
    }
    let step = if 1.0 - y_min <= 0.3 { 0.05 } else { 0.1 };
    let mut v = 1.0;
    while v >= y_min - 1e-9 {
        let y = to_y(v);
        c.rect(LEFT, y, LEFT + pw, y, grid);
        c.text(8, y.saturating_sub(4), 2, &format!("{v:.2}"), axis);
        v -= step;
    }
    c.rect(LEFT, TOP, LEFT, TOP + ph, axis);
    c.rect(LEFT, TOP + ph, LEFT + pw, TOP + ph, axis);
    c.text(
        LEFT + pw / 2 - 110,
        TOP + ph + 30,
        2,
        "SSIM OF THE STRONGEST ATTACK",
        axis,
    );
    c.text(4, 4, 2, "SERVER ACCURACY", axis);
    for (i, v) in vlines.iter().enumerate() {
        ensure!(v.x.is_finite(), "non-finite reference line");
        let x = to_x(v.x);
        for y in (TOP..=TOP + ph).step_by(8) {
            c.rect(x, y, x, (y + 3).min(TOP + ph), v.rgb);
        }
        c.text(x + 4, TOP + 4 + 14 * i, 2, &v.label, v.rgb);
    }
    for p in points {
        ensure!(p.x.is_finite() && p.y.is_finite(), "non-finite point");
        let (x, y) = (to_x(p.x), to_y(p.y));
        let (x0, y0) = (x.saturating_sub(5), y.saturating_sub(5));
        if p.filled {
            c.rect(x0, y0, x + 5, y + 5, p.rgb);
        } else {
            c.rect(x0, y0, x + 5, y0 + 1, p.rgb);
            c.rect(x0, y + 4, x + 5, y + 5, p.rgb);
            c.rect(x0, y0, x0 + 1, y + 5, p.rgb);
            c.rect(x + 4, y0, x + 5, y + 5, p.rgb);
        }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().context("PNG header")?;
    w.write_image_data(&c.px).context("PNG data")?;
    w.finish().context("finishing PNG")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_points_where_they_belong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.png");
        let p = Point {
            x: 0.5,
            y: 0.9,
            rgb: [200, 0, 0],
            filled: true,
        };
        let line = VLine {
            x: 0.3,
            rgb: [0, 0, 200],
            label: "GOAL".into(),
        };
        write_scatter_png(&path, &[p], 0.8, &[line]).expect("write");
        let dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(&path).expect("open")));
        let mut r = dec.read_info().expect("info");
        let mut buf = vec![0; r.output_buffer_size().expect("size")];
        r.next_frame(&mut buf).expect("frame");
        let x = LEFT + (0.5 * (W - LEFT - RIGHT) as f64).round() as usize;
        let y = TOP + (0.5 * (H - TOP - BOTTOM) as f64).round() as usize;
        let i = (y * W + x) * 3;
        assert_eq!(&buf[i..i + 3], &[200, 0, 0]);
        // the dashed line's first dash starts at the top of the plot area
        let lx = LEFT + (0.3 * (W - LEFT - RIGHT) as f64).round() as usize;
        let j = (TOP * W + lx) * 3;
        assert_eq!(&buf[j..j + 3], &[0, 0, 200]);
        assert!(write_scatter_png(&path, &[], 1.0, &[]).is_err());
    }
}
