//! Bounded load generator for `obfnet serve` (used by scripts/bench-serve.sh).
//!
//! `cargo run --release -p obfnet-serve --example loadgen -- ADDR [CONNECTIONS] [SECONDS]`
//!
//! Each of CONNECTIONS tasks sends batch-1 inference requests back to back for SECONDS over
//! keep-alive HTTP/1.1: one MNIST-sized UINT8 image in the binary tensor extension, the label
//! asked for as JSON. Prints one JSON line: requests/s, p50 and p99 latency (ms), errors.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn body() -> (Bytes, String) {
    let header = br#"{"inputs":[{"name":"input","shape":[1,784],"datatype":"UINT8","parameters":{"binary_data_size":784}}],"outputs":[{"name":"label"}]}"#;
    let mut b = header.to_vec();
    b.extend((0..784u32).map(|i| (i * 7 % 256) as u8));
    (Bytes::from(b), header.len().to_string())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .ok_or("usage: loadgen ADDR [CONNECTIONS] [SECONDS]")?
        .clone();
    let conns: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let secs: f64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(5.0);
    let url = format!("http://{addr}/v2/models/lenet5/infer");
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(conns)
        .build_http::<Full<Bytes>>();
    let (payload, header_len) = body();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (client, url, payload, header_len) =
                (client.clone(), url.clone(), payload.clone(), header_len.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let req = http::Request::post(&url)
                        .header("inference-header-content-length", &header_len)
                        .body(Full::new(payload.clone()));
                    let Ok(req) = req else { break };
                    let t = Instant::now();
                    match client.request(req).await {
                        Ok(resp) => {
                            let ok = resp.status().is_success();
                            let _ = resp.into_body().collect().await;
                            if ok {
                                lat.push(t.elapsed().as_secs_f64() * 1e3);
                            } else {
                                errors += 1;
                            }
                        }
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if lat.is_empty() {
            f64::NAN
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "connections": conns,
            "seconds": elapsed,
            "requests": lat.len(),
            "errors": errors,
            "req_per_s": lat.len() as f64 / elapsed,
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
        })
    );
    Ok(())
}
