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
/// back to back.
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
        out.ssim.push(ssim(a, b, rows, cols)?);
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
