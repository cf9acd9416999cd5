//! Test fixtures: a freshly initialised LeNet saved to a temp dir, servers on port 0, a small
//! HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use obfnet_serve::{AppState, InferenceBackend, LeNetBackend, ModelSpec, ServeConfig};
use tokio::sync::oneshot;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A LeNet-5 with random weights (seeded), saved like `obfnet train-model` does.
pub fn model_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let device = obfnet_nn::default_device();
        device.seed(7);
        let model = obfnet_nn::LeNet::new(&obfnet_nn::LeNetConfig::default(), &device);
        let report = obfnet_nn::ServerReport {
            test_accuracy: 0.0,
            epoch_losses: vec![],
            train_seconds: 0.0,
            first_epoch_seconds: 0.0,
            step_ms_median: 0.0,
            eval_seconds: 0.0,
            train_samples: 0,
        };
        obfnet_nn::save_server_model(
            &model,
            &obfnet_nn::ServerTrainConfig::default(),
            &report,
            dir.path(),
        )
        .expect("save fixture model");
        dir
    })
    .path()
    .to_path_buf()
}

pub fn lenet() -> Box<dyn InferenceBackend> {
    Box::new(LeNetBackend::load(&model_dir()).expect("load fixture model"))
}

/// Softmax probabilities the model gives `x` (normalised, `n × 784`), computed without the server.
pub fn direct_probabilities(x: &[f32], n: usize) -> Vec<f32> {
    let mut b = LeNetBackend::load(&model_dir()).expect("load fixture model");
    let logits = b.logits(x, n).expect("forward");
    obfnet_serve::oip::Prediction::from_logits(&logits, n, 10).probabilities
}

/// A deterministic test image: bytes 0..=255.
pub fn image_u8(seed: u32) -> Vec<u8> {
    (0..784u32)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503)))
                >> 24) as u8
        })
        .collect()
}

pub fn normalise(img: &[u8]) -> Vec<f32> {
    img.iter()
        .map(|&b| obfnet_core::Normalisation::MNIST.apply(b))
        .collect()
}

pub fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<obfnet_serve::Result<()>>>,
}

impl TestServer {
    pub async fn start(cfg: ServeConfig, backend: Box<dyn InferenceBackend>) -> TestServer {
        TestServer::start_tls(cfg, backend, None).await
    }

    pub async fn start_tls(
        mut cfg: ServeConfig,
        backend: Box<dyn InferenceBackend>,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> TestServer {
        cfg.addr = "127.0.0.1:0".into();
        let state = AppState::new(cfg, backend).expect("state");
        let listener = obfnet_serve::bind("127.0.0.1:0").await.expect("bind");
        let addr = obfnet_serve::local_addr(&listener).expect("addr");
        let (stop, rx) = oneshot::channel::<()>();
        let app = obfnet_serve::router(state.clone());
        let task = tokio::spawn(obfnet_serve::serve(
            listener,
            app,
            tls,
            Duration::from_secs(5),
            async {
                let _ = rx.await;
            },
        ));
        TestServer {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(mut self) -> obfnet_serve::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await.expect("server task"),
            None => Ok(()),
        }
    }
}

pub fn cfg() -> ServeConfig {
    ServeConfig::default()
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` field of an error reply.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or("<no error field>")
            .to_string()
    }
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("request");
    let resp = client.request(req).await.expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    request("GET", url, &[], Bytes::new()).await
}

pub async fn post_json(url: &str, v: &serde_json::Value) -> Reply {
    request(
        "POST",
        url,
        &[("content-type", "application/json")],
        serde_json::to_vec(v).expect("json"),
    )
    .await
}

/// A body in the binary tensor extension: JSON header then raw bytes; returns the header length.
pub fn binary_body(header: &serde_json::Value, raw: &[u8]) -> (Vec<u8>, usize) {
    let mut body = serde_json::to_vec(header).expect("json");
    let h = body.len();
    body.extend_from_slice(raw);
    (body, h)
}

/// Splits a binary-extension reply into its JSON header and binary part.
pub fn split_binary(r: &Reply) -> (serde_json::Value, Vec<u8>) {
    let h: usize = r
        .headers
        .get("inference-header-content-length")
        .expect("binary reply header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    (
        serde_json::from_slice(&r.body[..h]).expect("json header"),
        r.body[h..].to_vec(),
    )
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn i64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

/// A backend that sleeps per batch (for overload and timeout tests) and records batch sizes.
pub struct SlowBackend {
    pub delay: Duration,
    pub sizes: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl InferenceBackend for SlowBackend {
    fn spec(&self) -> ModelSpec {
        obfnet_serve::NoopBackend::default().spec()
    }

    fn logits(&mut self, _x: &[f32], n: usize) -> obfnet_serve::Result<Vec<f32>> {
        std::thread::sleep(self.delay);
        if let Ok(mut s) = self.sizes.lock() {
            s.push(n);
        }
        Ok((0..n * 10).map(|i| (i % 10) as f32).collect())
    }
}

/// A backend that panics (a model bug must not take the server down).
pub struct PanicBackend;

impl InferenceBackend for PanicBackend {
    fn spec(&self) -> ModelSpec {
        obfnet_serve::NoopBackend::default().spec()
    }

    fn logits(&mut self, _x: &[f32], _n: usize) -> obfnet_serve::Result<Vec<f32>> {
        panic!("model bug")
    }
}

pub fn infer_url(s: &TestServer) -> String {
    s.url("/v2/models/lenet5/infer")
}

pub fn u8_request(img: &[u8]) -> serde_json::Value {
    serde_json::json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": img}]})
}
