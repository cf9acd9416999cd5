//! Peak memory (VmHWM) of handling one ~4 MiB numeric JSON inference body through the whole
//! HTTP router (no network; the model is the no-op backend, so only decoding costs memory).
//!
//! `cargo run --release -p obfnet-serve --example body_mem -- valid|hostile`
//!
//! - `valid`: 256 images × 784 FP32 values written with 17 significant digits (≈ 4 MiB);
//! - `hostile`: `[784]` declared, but ≈ 4 MiB of `0,` (≈ 2 M numbers) sent.
//!
//! Prints one JSON line: body bytes, status, VmHWM before and after the request (KiB) and the
//! difference. Run each case in its own process (VmHWM only grows).

use axum::body::Body;
use obfnet_serve::{AppState, NoopBackend, ServeConfig};
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn body(case: &str) -> Vec<u8> {
    const TARGET: usize = 4 << 20;
    let mut s = String::with_capacity(TARGET + 1024);
    match case {
        "valid" => {
            s.push_str(r#"{"inputs":[{"name":"input","shape":[256,784],"datatype":"FP32","data":["#);
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in 0..256 * 784 {
                if i > 0 {
                    s.push(',');
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                s.push_str(&format!("{v:.17}"));
            }
        }
        _ => {
            s.push_str(r#"{"inputs":[{"name":"input","shape":[784],"datatype":"FP32","data":["#);
            s.push('0');
            while s.len() < TARGET - 8 {
                s.push_str(",0");
            }
        }
    }
    s.push_str("]}]}");
    s.into_bytes()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let case = std::env::args().nth(1).unwrap_or_else(|| "valid".into());
    let cfg = ServeConfig {
        max_body_bytes: 5 << 20,
        ..ServeConfig::default()
    };
    let state = AppState::new(cfg, Box::new(NoopBackend::default()))?;
    let app = obfnet_serve::router(state);
    let body = body(&case);
    let len = body.len();
    let before = vm_hwm_kib();
    let req = http::Request::builder()
        .method("POST")
        .uri("/v2/models/lenet5/infer")
        .header("content-type", "application/json")
        .body(Body::from(body))?;
    let resp = app.oneshot(req).await?;
    let status = resp.status().as_u16();
    let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
    let after = vm_hwm_kib();
    println!(
        "{}",
        serde_json::json!({
            "case": case,
            "body_bytes": len,
            "status": status,
            "vm_hwm_before_kib": before,
            "vm_hwm_after_kib": after,
            "delta_kib": after.saturating_sub(before),
        })
    );
    Ok(())
}
