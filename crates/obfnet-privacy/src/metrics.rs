//! Image-similarity metrics between an original image and a reconstruction.
//!
//! All metrics take images in **pixel space with data range 1**: values in `[0, 1]`, where 0 is
//! black and 1 is white. Reconstructions made in the models' normalised input space are mapped
//! back with [`to_pixels`] (inverse of the MNIST normalisation, then clamped to `[0, 1]`) before
//! scoring, so a reconstruction cannot gain or lose score from values no image can take.

use obfnet_nn::NORMALISATION;

use crate::{Error, Result};

/// SSIM's Gaussian window: σ = 1.5 px, 11 × 11 taps (radius 5), as in Wang et al. 2004 and in
/// scikit-image's `gaussian_weights=True` (truncate 3.5 → radius `int(3.5·1.5 + 0.5)` = 5).
pub const SSIM_SIGMA: f64 = 1.5;
/// Radius of the SSIM window (11 × 11 taps).
pub const SSIM_RADIUS: usize = 5;
/// SSIM stabilising constants `K1`, `K2` (Wang et al. 2004); `L = 1` (data range).
pub const SSIM_K1: f64 = 0.01;
/// See [`SSIM_K1`].
pub const SSIM_K2: f64 = 0.03;

/// Maps images from the models' normalised input space (`(p/255 − 0.1307)/0.3081`) back to
/// pixel space `[0, 1]`, clamping what falls outside.
pub fn to_pixels(normalised: &[f32]) -> Vec<f32> {
    normalised
        .iter()
        .map(|&x| (x * NORMALISATION.std + NORMALISATION.mean).clamp(0.0, 1.0))
        .collect()
}

/// Maps pixel-space images (`[0, 1]`) into the models' normalised input space.
pub fn from_pixels(pixels: &[f32]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&p| (p - NORMALISATION.mean) / NORMALISATION.std)
        .collect()
}

fn check_pair(a: &[f32], b: &[f32]) -> Result<()> {
    if a.is_empty() {
        return Err(Error::Empty { what: "image" });
    }
    if a.len() != b.len() {
        return Err(Error::Mismatch {
            what: "values of the second image",
            expected: a.len(),
            got: b.len(),
        });
    }
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return Err(Error::NonFinite("image"));
    }
    Ok(())
}

/// Mean squared error between two images of equal size.
///
/// # Errors
/// Sizes differ or are zero; a value is not finite.
pub fn mse(a: &[f32], b: &[f32]) -> Result<f64> {
    check_pair(a, b)?;
    Ok(a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum::<f64>()
        / a.len() as f64)
}

/// Peak signal-to-noise ratio in dB for data range 1: `10·log10(1 / MSE)`. Identical images
/// give `+∞`; callers that average PSNR over images should cap it (see [`PSNR_CAP_DB`]).
pub fn psnr(a: &[f32], b: &[f32]) -> Result<f64> {
    let m = mse(a, b)?;
    Ok(if m == 0.0 {
        f64::INFINITY
    } else {
        -10.0 * m.log10()
    })
}

/// PSNR values are capped at this many dB before averaging (an exact reconstruction would
/// otherwise make the mean infinite). 100 dB is an MSE of 1e-10, far below 8-bit quantisation.
pub const PSNR_CAP_DB: f64 = 100.0;

fn gaussian_window() -> [f64; 2 * SSIM_RADIUS + 1] {
    let mut w = [0.0; 2 * SSIM_RADIUS + 1];
    let mut sum = 0.0;
    for (i, v) in w.iter_mut().enumerate() {
        let x = i as f64 - SSIM_RADIUS as f64;
        *v = (-x * x / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
        sum += *v;
    }
    for v in &mut w {
        *v /= sum;
    }
    w
}

/// Mean structural similarity (SSIM, Wang, Bovik, Sheikh & Simoncelli 2004) of two
/// `rows × cols` images in pixel space (data range `L = 1`).
///
/// Local statistics use the separable 11 × 11 Gaussian window (σ = 1.5, normalised to sum 1),
/// population (biased) variances, `C1 = (0.01·L)²`, `C2 = (0.03·L)²`. **Border handling:** the
/// SSIM map is computed only where the whole window lies inside the image (the "valid" region,
/// `(rows − 10) × (cols − 10)` positions, 18 × 18 for MNIST) and averaged there. This equals
/// scikit-image's `structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False)`, which filters with padding and then crops the border
/// (cross-checked by `scripts/ssim_crosscheck.py`). Identical images give exactly 1.
///
/// # Errors
/// Sizes differ, are not `rows × cols`, or are smaller than the window; a value is not finite.
pub fn ssim(a: &[f32], b: &[f32], rows: usize, cols: usize) -> Result<f64> {
    check_pair(a, b)?;
    let win = 2 * SSIM_RADIUS + 1;
    if rows.checked_mul(cols) != Some(a.len()) || rows < win || cols < win {
        return Err(Error::ImageShape {
            values: a.len(),
            rows,
            cols,
        });
    }
    let w = gaussian_window();
    let (c1, c2) = ((SSIM_K1).powi(2), (SSIM_K2).powi(2));
    // The five maps to filter: a, b, a², b², ab.
    let n = rows * cols;
    let mut maps = vec![0.0f64; 5 * n];
    for i in 0..n {
        let (x, y) = (f64::from(a[i]), f64::from(b[i]));
        maps[i] = x;
        maps[n + i] = y;
        maps[2 * n + i] = x * x;
        maps[3 * n + i] = y * y;
        maps[4 * n + i] = x * y;
    }
    // Separable valid filtering: first along columns (horizontal), then rows.
    let (vr, vc) = (rows - win + 1, cols - win + 1);
    let mut filtered = vec![0.0f64; 5 * vr * vc];
    let mut tmp = vec![0.0f64; rows * vc];
    for m in 0..5 {
        let src = &maps[m * n..(m + 1) * n];
        for r in 0..rows {
            for c in 0..vc {
                tmp[r * vc + c] = (0..win).map(|t| w[t] * src[r * cols + c + t]).sum();
            }
        }
        let dst = &mut filtered[m * vr * vc..(m + 1) * vr * vc];
        for r in 0..vr {
            for c in 0..vc {
                dst[r * vc + c] = (0..win).map(|t| w[t] * tmp[(r + t) * vc + c]).sum();
            }
        }
    }
    let p = vr * vc;
    let mut total = 0.0;
    for i in 0..p {
        let (mx, my) = (filtered[i], filtered[p + i]);
        let vx = filtered[2 * p + i] - mx * mx;
        let vy = filtered[3 * p + i] - my * my;
        let cxy = filtered[4 * p + i] - mx * my;
        total += ((2.0 * mx * my + c1) * (2.0 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
    Ok(total / p as f64)
}

/// Which structural-similarity index scores samples of a `rows × cols` shape.
///
/// Images with both sides at least the window (11) get the 2-D SSIM of [`ssim`] — unchanged.
/// Samples narrower than the window in one direction (a `1 × L` sensor vector, a few stacked
/// channels of one row) get the same SSIM along the long axis only: the 11-tap Gaussian window
/// (σ = 1.5), the same constants and the valid region, computed per line and averaged over all
/// positions (for `1 × L` this is the 1-D SSIM of the vector, what scikit-image's
/// `structural_similarity` computes on a 1-D array with `gaussian_weights=True`). Samples smaller
/// than the window in both directions get the *global* SSIM: one window covering the whole
/// sample, uniform weights. Reports name the variant ([`Similarity::name`]); numbers of
/// different variants are not comparable with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// 2-D SSIM, 11 × 11 Gaussian window ([`ssim`]).
    Ssim2d,
    /// 1-D SSIM along each row (rows < 11 ≤ cols), averaged.
    Ssim1dRows,
    /// 1-D SSIM along each column (cols < 11 ≤ rows), averaged.
    Ssim1dCols,
    /// One window over the whole sample, uniform weights (both sides < 11).
    GlobalSsim,
}

impl Similarity {
    /// The variant used for `rows × cols` samples.
    ///
    /// # Errors
    /// [`Error::ImageShape`] when a side is zero.
    pub fn for_shape(rows: usize, cols: usize) -> Result<Similarity> {
        let win = 2 * SSIM_RADIUS + 1;
        if rows == 0 || cols == 0 {
            return Err(Error::ImageShape {
                values: 0,
                rows,
                cols,
            });
        }
        Ok(match (rows >= win, cols >= win) {
            (true, true) => Similarity::Ssim2d,
            (false, true) => Similarity::Ssim1dRows,
            (true, false) => Similarity::Ssim1dCols,
            (false, false) => Similarity::GlobalSsim,
        })
    }

    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Similarity::Ssim2d => "SSIM (2-D, 11×11 Gaussian window σ=1.5, valid region)",
            Similarity::Ssim1dRows => {
                "1-D SSIM along each row (11-tap Gaussian window σ=1.5, valid region), averaged"
            }
            Similarity::Ssim1dCols => {
                "1-D SSIM along each column (11-tap Gaussian window σ=1.5, valid region), averaged"
            }
            Similarity::GlobalSsim => "global SSIM (one window over the whole sample, uniform weights)",
        }
    }
}

/// The SSIM term of one window from its weighted statistics.
fn ssim_term(mx: f64, my: f64, vx: f64, vy: f64, cxy: f64) -> f64 {
    let (c1, c2) = ((SSIM_K1).powi(2), (SSIM_K2).powi(2));
    ((2.0 * mx * my + c1) * (2.0 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
}

/// Structural similarity of two `rows × cols` samples with the variant [`Similarity::for_shape`]
/// picks: [`ssim`] for images of at least 11 × 11 (identical numbers), 1-D SSIM along the long
/// axis for samples narrower than the window in one direction, global SSIM otherwise.
///
/// # Errors
/// Sizes differ, are zero, or are not `rows × cols`; a value is not finite.
pub fn ssim_any(a: &[f32], b: &[f32], rows: usize, cols: usize) -> Result<f64> {
    check_pair(a, b)?;
    if rows.checked_mul(cols) != Some(a.len()) {
        return Err(Error::ImageShape {
            values: a.len(),
            rows,
            cols,
        });
    }
    match Similarity::for_shape(rows, cols)? {
        Similarity::Ssim2d => ssim(a, b, rows, cols),
        Similarity::Ssim1dRows => Ok(ssim_lines(a, b, rows, cols, |l, i| l * cols + i)),
        Similarity::Ssim1dCols => Ok(ssim_lines(a, b, cols, rows, |l, i| i * cols + l)),
        Similarity::GlobalSsim => {
            let n = a.len() as f64;
            let mx = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let my = b.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let (mut vx, mut vy, mut cxy) = (0.0, 0.0, 0.0);
            for (&x, &y) in a.iter().zip(b) {
                let (dx, dy) = (f64::from(x) - mx, f64::from(y) - my);
                vx += dx * dx;
                vy += dy * dy;
                cxy += dx * dy;
            }
            Ok(ssim_term(mx, my, vx / n, vy / n, cxy / n))
        }
    }
}

/// Mean over `lines` lines of `len` values (value `i` of line `l` at `at(l, i)`) of the 1-D
/// SSIM map with the 11-tap Gaussian window over the valid positions. `len` ≥ 11.
fn ssim_lines(a: &[f32], b: &[f32], lines: usize, len: usize, at: impl Fn(usize, usize) -> usize) -> f64 {
    let w = gaussian_window();
    let win = w.len();
    let valid = len + 1 - win;
    let mut total = 0.0;
    for l in 0..lines {
        for p in 0..valid {
            let (mut mx, mut my, mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (t, &wt) in w.iter().enumerate() {
                let i = at(l, p + t);
                let (x, y) = (f64::from(a[i]), f64::from(b[i]));
                mx += wt * x;
                my += wt * y;
                xx += wt * x * x;
                yy += wt * y * y;
                xy += wt * x * y;
            }
            total += ssim_term(mx, my, xx - mx * mx, yy - my * my, xy - mx * my);
        }
    }
    total / (lines * valid) as f64
}

/// Mean MSE, PSNR (each capped at [`PSNR_CAP_DB`]) and SSIM over pairs of pixel-space images,
/// with the median and the 90th percentile over images of SSIM and PSNR.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageScores {
    /// Mean squared error in pixel space (range 1).
    pub mse: f64,
    /// Mean PSNR in dB (range 1).
    pub psnr_db: f64,
    /// Mean SSIM (Gaussian window, valid region).
    pub ssim: f64,
    /// Number of image pairs scored.
    pub n: usize,
    /// Median SSIM over images (absent in results written before it existed: 0).
    #[serde(default)]
    pub ssim_median: f64,
    /// 90th percentile of SSIM over images (the best-reconstructed tenth starts here).
    #[serde(default)]
    pub ssim_p90: f64,
    /// Median PSNR over images, dB (capped).
    #[serde(default)]
    pub psnr_median_db: f64,
    /// 90th percentile of PSNR over images, dB (capped).
    #[serde(default)]
    pub psnr_p90_db: f64,
}

/// Per-image scores of `n` image pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerImage {
    /// MSE per image.
    pub mse: Vec<f64>,
    /// PSNR per image, capped at [`PSNR_CAP_DB`].
    pub psnr_db: Vec<f64>,
    /// SSIM per image.
    pub ssim: Vec<f64>,
}

/// The `q`-quantile (`q` in `[0, 1]`) of `v` with linear interpolation between order
/// statistics (NumPy's default); `NaN` for an empty slice.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// Scores each pair of `recon` against `orig`, both `n` pixel-space images of `rows × cols`
/// back to back. The SSIM column is [`ssim_any`]: the 2-D SSIM for images of at least 11 × 11,
/// the variant [`Similarity::for_shape`] names for smaller or 1-D samples.
pub fn score_per_image(orig: &[f32], recon: &[f32], rows: usize, cols: usize) -> Result<PerImage> {
    let d = rows * cols;
    if orig.len() != recon.len() {
        return Err(Error::Mismatch {
            what: "reconstruction values for original values",
            expected: orig.len(),
            got: recon.len(),
        });
    }
    if d == 0 || !orig.len().is_multiple_of(d) || orig.is_empty() {
        return Err(Error::ImageShape {
            values: orig.len(),
            rows,
            cols,
        });
    }
    let mut out = PerImage::default();
    for (a, b) in orig.chunks_exact(d).zip(recon.chunks_exact(d)) {
        out.mse.push(mse(a, b)?);
        out.psnr_db.push(psnr(a, b)?.min(PSNR_CAP_DB));
        out.ssim.push(ssim_any(a, b, rows, cols)?);
    }
    Ok(out)
}

impl PerImage {
    /// Means, medians and 90th percentiles.
    pub fn summary(&self) -> ImageScores {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        ImageScores {
            mse: mean(&self.mse),
            psnr_db: mean(&self.psnr_db),
            ssim: mean(&self.ssim),
            n: self.ssim.len(),
            ssim_median: quantile(&self.ssim, 0.5),
            ssim_p90: quantile(&self.ssim, 0.9),
            psnr_median_db: quantile(&self.psnr_db, 0.5),
            psnr_p90_db: quantile(&self.psnr_db, 0.9),
        }
    }
}

/// Scores `recon` against `orig`, both `n` pixel-space images of `rows × cols` back to back.
pub fn score_images(orig: &[f32], recon: &[f32], rows: usize, cols: usize) -> Result<ImageScores> {
    Ok(score_per_image(orig, recon, rows, cols)?.summary())
}
