#!/usr/bin/env python3
"""Cross-checks obfnet's MSE / PSNR / SSIM (crate obfnet-privacy) against scikit-image.

Usage: ssim_crosscheck.py PATH/TO/ssim_pairs   (the example binary of obfnet-privacy)

Builds seeded image pairs of several kinds and sizes, asks the Rust side for its scores
(JSON on stdin/stdout) and compares with
  skimage.metrics.structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
  skimage.metrics.mean_squared_error / peak_signal_noise_ratio(data_range=1).
Exits non-zero when any score differs by more than 1e-6 (SSIM, MSE) or 1e-4 dB (PSNR).
"""
import json
import subprocess
import sys

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity


def pairs(rng):
    out = []
    for rows, cols in [(28, 28), (12, 12), (20, 32), (11, 11)]:
        for _ in range(4):
            a = gaussian_filter(rng.random((rows, cols)), 1.0)
            a = (a - a.min()) / (a.max() - a.min())
            out.append((a, np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)))  # noisy copy
            out.append((a, gaussian_filter(a, 1.5)))  # blurred copy
            out.append((a, rng.random((rows, cols))))  # unrelated
            out.append((a, np.clip(a + 0.2, 0, 1)))  # brighter
            out.append((a, 1.0 - a))  # inverted
        out.append((np.full((rows, cols), 0.5), np.full((rows, cols), 0.6)))  # constant
    return [(a.astype(np.float32), b.astype(np.float32)) for a, b in out]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rng = np.random.default_rng(20040401)
    cases = pairs(rng)
    worst = {"ssim": 0.0, "mse": 0.0, "psnr": 0.0}
    failures = 0
    # one call per image size
    by_size = {}
    for a, b in cases:
        by_size.setdefault(a.shape, []).append((a, b))
    for (rows, cols), group in by_size.items():
        payload = {"rows": rows, "cols": cols, "pairs": [[a.ravel().tolist(), b.ravel().tolist()] for a, b in group]}
        res = subprocess.run([sys.argv[1]], input=json.dumps(payload), capture_output=True, text=True, check=True)
        ours = json.loads(res.stdout)
        for (a, b), o in zip(group, ours):
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            ref = {
                "ssim": structural_similarity(a64, b64, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False),
                "mse": mean_squared_error(a64, b64),
                "psnr": min(peak_signal_noise_ratio(a64, b64, data_range=1.0), 100.0),
            }
            for key, tol in [("ssim", 1e-6), ("mse", 1e-6), ("psnr", 1e-4)]:
                diff = abs(o[key] - ref[key])
                worst[key] = max(worst[key], diff)
                if diff > tol:
                    failures += 1
                    print(f"MISMATCH {rows}x{cols} {key}: obfnet {o[key]!r} scikit-image {ref[key]!r}")
    print(f"{len(cases)} pairs; largest |obfnet - scikit-image|: "
          f"SSIM {worst['ssim']:.2e}, MSE {worst['mse']:.2e}, PSNR {worst['psnr']:.2e} dB")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
