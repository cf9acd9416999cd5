//! Grayscale PNG grids: rows of images (e.g. originals, obfuscated, reconstructed) side by side,
//! for looking at what an obfuscator and an attacker see.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// Gray level of the gaps between and around cells.
const GAP_GRAY: u8 = 128;
/// Largest picture written, in pixels (keeps a typo in `scale` from allocating gigabytes).
const MAX_PIXELS: usize = 1 << 28;

/// Writes a grayscale PNG grid: `rows[r][c]` is one image of `h*w` values in 0..=255 (f32,
/// clamped and rounded); cells are separated (and surrounded) by `gap` px of mid-gray (128).
///
/// Each cell is upscaled by the integer `scale` (nearest neighbour), so 28x28 digits are
/// visible. The file is written with [`obfnet_data::write_atomic`], so a reader never sees
/// a half-written picture; the parent directory is created if needed.
///
/// # Errors
/// Empty or ragged `rows`, a cell whose length is not `h*w`, a NaN value, zero `h`, `w` or
/// `scale`, a picture over 2^28 pixels, or I/O and encoding errors. Never panics.
pub fn write_grid_png(
    path: &Path,
    rows: &[Vec<Vec<f32>>],
    h: usize,
    w: usize,
    scale: usize,
    gap: usize,
) -> Result<()> {
    let layout = Layout::new(rows, h, w, scale, gap)?;
    let pixels = layout.render(rows)?;
    let (png_w, png_h) = (
        u32::try_from(layout.width).context("grid too wide for PNG")?,
        u32::try_from(layout.height).context("grid too tall for PNG")?,
    );

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let bytes = encode_png(png_w, png_h, &pixels)?;
    obfnet_data::write_atomic(path, &bytes).with_context(|| format!("writing PNG grid {}", path.display()))
}

/// Cell geometry and picture size of a checked grid.
#[derive(Debug)]
struct Layout {
    h: usize,
    w: usize,
    scale: usize,
    gap: usize,
    /// Picture width in pixels.
    width: usize,
    /// Picture height in pixels.
    height: usize,
}

impl Layout {
    /// Checks the shape of `rows` and computes the picture's size.
    fn new(rows: &[Vec<Vec<f32>>], h: usize, w: usize, scale: usize, gap: usize) -> Result<Self> {
        ensure!(
            h > 0 && w > 0 && scale > 0,
            "grid cells need h, w and scale > 0 (got h={h}, w={w}, scale={scale})"
        );
        let Some(first) = rows.first() else {
            bail!("grid has no rows");
        };
        let ncols = first.len();
        ensure!(ncols > 0, "grid row 0 has no images");
        let cell_len = h.checked_mul(w).context("grid cell size overflows")?;
        for (r, row) in rows.iter().enumerate() {
            ensure!(
                row.len() == ncols,
                "ragged grid: row {r} has {} images, row 0 has {ncols}",
                row.len()
            );
            for (c, cell) in row.iter().enumerate() {
                ensure!(
                    cell.len() == cell_len,
                    "grid cell ({r}, {c}) has {} values, expected h*w = {h}*{w} = {cell_len}",
                    cell.len()
                );
            }
        }
        let side = |n: usize, cell: usize| -> Option<usize> {
            // n cells of `cell*scale` px and n+1 gaps
            n.checked_mul(cell.checked_mul(scale)?)?
                .checked_add(n.checked_add(1)?.checked_mul(gap)?)
        };
        let (width, height) = side(ncols, w)
            .zip(side(rows.len(), h))
            .context("grid size overflows")?;
        ensure!(
            width.checked_mul(height).is_some_and(|p| p <= MAX_PIXELS),
            "grid of {width}x{height} px is over the limit of {MAX_PIXELS} px"
        );
        Ok(Self {
            h,
            w,
            scale,
            gap,
            width,
            height,
        })
    }

    /// Draws `rows` (the ones checked by [`Layout::new`]) into a `width x height` buffer.
    fn render(&self, rows: &[Vec<Vec<f32>>]) -> Result<Vec<u8>> {
        let Self {
            h,
            w,
            scale,
            gap,
            width,
            height,
        } = *self;
        let mut pixels = vec![GAP_GRAY; width * height];
        for (r, row) in rows.iter().enumerate() {
            let top = gap + r * (h * scale + gap);
            for (c, cell) in row.iter().enumerate() {
                let left = gap + c * (w * scale + gap);
                for (y, line) in cell.chunks_exact(w).enumerate() {
                    for (x, &v) in line.iter().enumerate() {
                        ensure!(!v.is_nan(), "grid cell ({r}, {c}) has NaN at ({y}, {x})");
                        let gray = v.clamp(0.0, 255.0).round() as u8;
                        for dy in 0..scale {
                            let start = (top + y * scale + dy) * width + left + x * scale;
                            pixels[start..start + scale].fill(gray);
                        }
                    }
                }
            }
        }
        Ok(pixels)
    }
}

fn encode_png(width: u32, height: u32, pixels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("writing PNG header")?;
    writer.write_image_data(pixels).context("writing PNG data")?;
    writer.finish().context("finishing PNG")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> usize {
        fs::read_dir(dir).map_or(0, |d| d.count())
    }

    fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let file = fs::File::open(path).expect("open png");
        let decoder = png::Decoder::new(std::io::BufReader::new(file));
        let mut reader = decoder.read_info().expect("png info");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("png frame");
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn writes_and_decodes_a_small_grid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("grid.png");
        // 2 rows x 3 cells of 2x2 images; cell (1, 2) pixel (1, 0) is 300 -> clamped to 255
        let cell = |base: f32| vec![base, base + 1.4, base + 2.6, base + 3.0];
        let mut rows = vec![
            vec![cell(0.0), cell(10.0), cell(20.0)],
            vec![cell(30.0), cell(-5.0), cell(40.0)],
        ];
        rows[1][2][2] = 300.0;
        let (scale, gap) = (3, 1);
        write_grid_png(&path, &rows, 2, 2, scale, gap).expect("write");
        assert_eq!(files_in(dir.path()), 1, "a temporary file was left behind");

        let (w, h, px) = decode(&path);
        assert_eq!((w, h), (3 * 6 + 4, 2 * 6 + 3));
        let at = |x: usize, y: usize| px[y * w as usize + x];
        assert_eq!(at(0, 0), GAP_GRAY);
        assert_eq!(at(7, 5), GAP_GRAY); // the gap between columns 0 and 1
        // cell (0, 1) starts at x = 1 + 6 + 1 = 8, y = 1; its pixel (0, 1) = 11.4 -> 11
        assert_eq!(at(8 + 3, 1), 11);
        assert_eq!(at(8 + 5, 1 + 2), 11); // nearest-neighbour upscaling
        // cell (1, 1) holds -5 -> 0 at its pixel (0, 0)
        assert_eq!(at(8, 8), 0);
        // cell (1, 2) at x = 15, y = 8; its pixel (1, 0) covers y 11..14, x 15..18
        assert_eq!(at(15, 11), 255);
        assert_eq!(at(17, 13), 255);
        // last row and column are gap
        assert_eq!(at(w as usize - 1, h as usize - 1), GAP_GRAY);
    }

    #[test]
    fn rejects_bad_input_without_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.png");
        let ok = vec![vec![0.0f32; 4]];
        type Grid = Vec<Vec<Vec<f32>>>;
        let cases: Vec<(&str, Grid, usize)> = vec![
            ("no rows", vec![], 1),
            ("no images", vec![vec![]], 1),
            ("ragged", vec![ok.clone(), vec![vec![0.0; 4], vec![0.0; 4]]], 1),
            ("h*w", vec![vec![vec![0.0; 3]]], 1),
            ("NaN", vec![vec![vec![0.0, f32::NAN, 0.0, 0.0]]], 1),
            ("scale", vec![ok.clone()], 0),
            ("limit", vec![ok], 1 << 20),
        ];
        for (what, rows, scale) in cases {
            let err = write_grid_png(&path, &rows, 2, 2, scale, 1).expect_err(what);
            assert!(!format!("{err:#}").is_empty());
            assert!(!path.exists() && files_in(dir.path()) == 0, "{what}");
        }
        let err = write_grid_png(&path, &[vec![vec![0.0; 4]]], 2, 2, 1, usize::MAX).expect_err("overflow");
        assert!(format!("{err:#}").contains("overflows"), "{err:#}");
    }
}
