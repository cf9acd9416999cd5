//! Reads `{"rows": R, "cols": C, "pairs": [[a, b], ...]}` (images as flat lists of pixel
//! values in [0, 1]) on stdin and prints the MSE, PSNR and SSIM of each pair as a JSON list.
//! Used by `scripts/ssim_crosscheck.py` to compare against scikit-image.

use std::io::Read;

#[derive(serde::Deserialize)]
struct Input {
    rows: usize,
    cols: usize,
    pairs: Vec<(Vec<f32>, Vec<f32>)>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let input: Input = serde_json::from_str(&text)?;
    let mut out = Vec::new();
    for (a, b) in &input.pairs {
        out.push(serde_json::json!({
            "mse": obfnet_privacy::metrics::mse(a, b)?,
            "psnr": obfnet_privacy::metrics::psnr(a, b)?.min(obfnet_privacy::metrics::PSNR_CAP_DB),
            "ssim": obfnet_privacy::metrics::ssim(a, b, input.rows, input.cols)?,
        }));
    }
    println!("{}", serde_json::Value::Array(out));
    Ok(())
}
