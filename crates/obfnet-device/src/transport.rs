//! The three ways to ask `obfnet serve`: OIP REST (HTTP/1.1 keep-alive, binary tensor
//! extension), OIP gRPC, and MQTT v5 (request / response with Correlation Data).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use obfnet_core::runtime::RandomSource;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// Header (and MQTT user property) giving the JSON part's length in the binary extension.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Generated OIP v2 gRPC client and messages (from obfnet-serve's `proto/` file).
#[allow(missing_docs, clippy::all, missing_debug_implementations, rust_2018_idioms)]
pub mod pb {
    tonic::include_proto!("inference");
}

/// One input tensor as sent: `[1, len]` of `UINT8` or `FP32` (little-endian).
#[derive(Clone, Copy, Debug)]
pub struct WireTensor<'a> {
    /// `"UINT8"` or `"FP32"`.
    pub datatype: &'static str,
    /// Values in the tensor.
    pub len: usize,
    /// The bytes.
    pub data: &'a [u8],
}

/// The server's answer to one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Predicted class.
    pub label: i64,
    /// Softmax scores, when the server returns them.
    pub scores: Option<Vec<f32>>,
    /// Sends it took (1 + retries).
    pub attempts: u32,
    /// Replies dropped as duplicates or stale (MQTT, by correlation id).
    pub duplicates: u32,
}

/// Where and how to send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TransportConfig {
    /// OIP REST at `url` (e.g. `http://127.0.0.1:8000`).
    Rest {
        /// Base URL.
        url: String,
    },
    /// OIP gRPC at `url` (e.g. `http://127.0.0.1:8000`).
    Grpc {
        /// Endpoint URL.
        url: String,
    },
    /// MQTT v5 through a broker.
    Mqtt(MqttSettings),
}

/// MQTT connection settings (as the `obfnet serve` worker has them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MqttSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Request topic; default `obfnet/infer/<model>`, the worker's default.
    pub request_topic: Option<String>,
    /// Client id; default `obfnet-device-<random>`. Replies come on `obfnet/reply/<client id>`.
    pub client_id: Option<String>,
    /// Broker user name.
    pub username: Option<String>,
    /// Broker password.
    pub password: Option<String>,
    /// Connect over TLS trusting the CA certificate(s) in this PEM file.
    pub tls_ca: Option<std::path::PathBuf>,
}

impl MqttSettings {
    /// Plain TCP to `host:port`, anonymous, default topics.
    pub fn new(host: impl Into<String>, port: u16) -> MqttSettings {
        MqttSettings {
            host: host.into(),
            port,
            request_topic: None,
            client_id: None,
            username: None,
            password: None,
            tls_ca: None,
        }
    }
}

/// Timeouts and retries of every transport.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Time to wait for one answer (per attempt).
    pub timeout: Duration,
    /// Extra attempts after the first (on timeouts, lost connections, 503 / UNAVAILABLE).
    pub retries: u32,
    /// First backoff; doubled per attempt (capped at 5 s), plus up to as much again of jitter.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            timeout: Duration::from_secs(5),
            retries: 5,
            backoff: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (exponential, with random jitter from the OS).
    fn pause(&self, attempt: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << attempt.min(10))
            .min(Duration::from_secs(5));
        let mut b = [0u8; 4];
        let jitter = if obfnet_core::runtime::OsRandom.fill_bytes(&mut b).is_ok() {
            f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
        } else {
            0.5
        };
        base + base.mul_f64(jitter)
    }
}

/// A way to send one tensor and get the server's answer.
pub trait Transport: std::fmt::Debug {
    /// Sends `input` to model `model` and waits for the answer, retrying per the policy.
    ///
    /// # Errors
    /// [`Error::Unreachable`] after every retry failed, [`Error::Rejected`] when the server
    /// refuses, [`Error::BadReply`] for an unreadable answer.
    fn infer(&mut self, input: WireTensor<'_>) -> Result<Answer>;

    /// The server's model metadata (OIP), when the transport can ask for it.
    ///
    /// # Errors
    /// As [`Transport::infer`].
    fn model_metadata(&mut self) -> Result<Option<Value>>;

    /// A short description for reports (`rest http://…`).
    fn describe(&self) -> String;
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    let mut b = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))
}

/// The OIP REST request body (binary tensor extension) and its JSON part's length.
pub fn rest_body(input: WireTensor<'_>) -> (Vec<u8>, usize) {
    let header = json!({
        "inputs": [{
            "name": "input",
            "shape": [1, input.len],
            "datatype": input.datatype,
            "parameters": {"binary_data_size": input.data.len()},
        }],
        "parameters": {"binary_data_output": true},
    });
    let mut body = serde_json::to_vec(&header).unwrap_or_default();
    let h = body.len();
    body.extend_from_slice(input.data);
    (body, h)
}

/// Reads an OIP REST answer body (JSON, or JSON + binary outputs when `header_len` is given).
pub fn decode_rest_reply(endpoint: &str, body: &[u8], header_len: Option<usize>) -> Result<Answer> {
    let bad = |reason: String| Error::BadReply {
        endpoint: endpoint.to_string(),
        reason,
    };
    let (json_part, mut binary) = match header_len {
        Some(h) if h <= body.len() => body.split_at(h),
        Some(h) => {
            return Err(bad(format!(
                "header length {h} beyond the {}-byte body",
                body.len()
            )));
        }
        None => (body, &[][..]),
    };
    let v: Value = serde_json::from_slice(json_part).map_err(|e| bad(format!("not JSON: {e}")))?;
    let outputs = v["outputs"].as_array().ok_or_else(|| bad("no outputs".into()))?;
    let (mut label, mut scores) = (None, None);
    for o in outputs {
        let values: Vec<u8> = match o["parameters"]["binary_data_size"].as_u64() {
            Some(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > binary.len() {
                    return Err(bad("binary output longer than the body".into()));
                }
                let (chunk, rest) = binary.split_at(n);
                binary = rest;
                chunk.to_vec()
            }
            None => Vec::new(),
        };
        let from_json = o["data"].as_array();
        match o["name"].as_str() {
            Some("label") => {
                label = if values.len() >= 8 {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&values[..8]);
                    Some(i64::from_le_bytes(b))
                } else {
                    from_json.and_then(|d| d.first()).and_then(Value::as_i64)
                };
            }
            Some("probabilities") => {
                scores = Some(if values.is_empty() {
                    from_json
                        .map(|d| d.iter().filter_map(Value::as_f64).map(|x| x as f32).collect())
                        .unwrap_or_default()
                } else {
                    values
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect()
                });
            }
            _ => {}
        }
    }
    Ok(Answer {
        label: label.ok_or_else(|| bad("no label output".into()))?,
        scores,
        attempts: 1,
        duplicates: 0,
    })
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// OIP REST over HTTP/1.1 with a keep-alive connection pool.
#[derive(Debug)]
pub struct RestTransport {
    rt: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    model: String,
    api_key: Option<String>,
    policy: RetryPolicy,
}

impl RestTransport {
    /// A client for the server at `base` (`http://host:port`).
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that is not plain `http://` (TLS for REST is not built in;
    /// use gRPC or MQTT over TLS, or a local TLS proxy).
    pub fn new(
        base: &str,
        model: &str,
        api_key: Option<String>,
        policy: RetryPolicy,
    ) -> Result<RestTransport> {
        if !base.starts_with("http://") {
            return Err(Error::Config {
                field: "url",
                reason: format!("{base}: the REST transport speaks plain http:// only"),
            });
        }
        let rt = runtime(0)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build_http::<Full<Bytes>>();
        Ok(RestTransport {
            rt,
            client,
            base: base.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            policy,
        })
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        header_len: Option<usize>,
    ) -> Result<(u16, Option<usize>, Bytes)> {
        let url = format!("{}{path}", self.base);
        let mut req = http::Request::builder().method(method).uri(&url);
        if let Some(k) = &self.api_key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(h) = header_len {
            req = req
                .header(HEADER_LENGTH, h.to_string())
                .header("content-type", "application/octet-stream");
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Config {
                field: "url",
                reason: format!("{url}: {e}"),
            })?;
        let unreachable = |reason: String| Error::Unreachable {
            endpoint: url.clone(),
            reason,
        };
        self.rt.block_on(async {
            let fut = async {
                let resp = self
                    .client
                    .request(req)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                let status = resp.status().as_u16();
                let h = resp
                    .headers()
                    .get(HEADER_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| unreachable(e.to_string()))?
                    .to_bytes();
                Ok((status, h, body))
            };
            match tokio::time::timeout(self.policy.timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(unreachable(format!("no answer within {:?}", self.policy.timeout))),
            }
        })
    }
}

impl Transport for RestTransport {
    fn infer(&mut self, input: WireTensor<'_>) -> Result<Answer> {
        let (body, h) = rest_body(input);
        let path = format!("/v2/models/{}/infer", self.model);
        let mut attempt = 0;
        loop {
            let result = self.send("POST", &path, body.clone(), Some(h));
            let retryable = matches!(&result, Err(Error::Unreachable { .. }) | Ok((503, ..)));
            if retryable && attempt < self.policy.retries {
                std::thread::sleep(self.policy.pause(attempt));
                attempt += 1;
                continue;
            }
            let (status, header_len, reply) = result?;
            if status != 200 {
                return Err(Error::Rejected {
                    endpoint: format!("{}{path}", self.base),
                    status: format!("HTTP {status}"),
                    message: error_message(&reply),
                });
            }
            let mut a = decode_rest_reply(&self.base, &reply, header_len)?;
            a.attempts = attempt + 1;
            return Ok(a);
        }
    }

    fn model_metadata(&mut self) -> Result<Option<Value>> {
        let path = format!("/v2/models/{}", self.model);
        let (status, _, body) = self.send("GET", &path, Vec::new(), None)?;
        if status != 200 {
            return Err(Error::Rejected {
                endpoint: format!("{}{path}", self.base),
                status: format!("HTTP {status}"),
                message: error_message(&body),
            });
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| Error::BadReply {
                endpoint: self.base.clone(),
                reason: format!("model metadata is not JSON: {e}"),
            })
    }

    fn describe(&self) -> String {
        format!("rest {}", self.base)
    }
}

/// OIP gRPC (`inference.GRPCInferenceService/ModelInfer`, raw input contents).
#[derive(Debug)]
pub struct GrpcTransport {
    rt: tokio::runtime::Runtime,
    client: pb::grpc_inference_service_client::GrpcInferenceServiceClient<tonic::transport::Channel>,
    url: String,
    model: String,
    api_key: Option<String>,
    policy: RetryPolicy,
}

impl GrpcTransport {
    /// A client for the server at `url` (`http://host:port`); connects lazily.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL.
    pub fn new(
        url: &str,
        model: &str,
        api_key: Option<String>,
        policy: RetryPolicy,
    ) -> Result<GrpcTransport> {
        let rt = runtime(0)?;
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::Config {
                field: "url",
                reason: format!("{url}: {e}"),
            })?
            .connect_timeout(policy.timeout)
            .timeout(policy.timeout);
        let channel = {
            let _guard = rt.enter();
            endpoint.connect_lazy()
        };
        Ok(GrpcTransport {
            rt,
            client: pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(channel),
            url: url.to_string(),
            model: model.to_string(),
            api_key,
            policy,
        })
    }

    fn request<T>(&self, msg: T) -> Result<tonic::Request<T>> {
        let mut req = tonic::Request::new(msg);
        if let Some(k) = &self.api_key {
            let v = format!("Bearer {k}").parse().map_err(|_| Error::Config {
                field: "api key",
                reason: "not a valid header value".into(),
            })?;
            req.metadata_mut().insert("authorization", v);
        }
        Ok(req)
    }

    fn status_error(&self, s: &tonic::Status) -> Error {
        use tonic::Code;
        match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled => {
                Error::Unreachable {
                    endpoint: self.url.clone(),
                    reason: format!("{:?}: {}", s.code(), s.message()),
                }
            }
            c => Error::Rejected {
                endpoint: self.url.clone(),
                status: format!("gRPC {c:?}"),
                message: s.message().to_string(),
            },
        }
    }
}

fn grpc_answer(endpoint: &str, resp: pb::ModelInferResponse) -> Result<Answer> {
    let bad = |reason: &str| Error::BadReply {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let (mut label, mut scores) = (None, None);
    for (i, o) in resp.outputs.iter().enumerate() {
        let raw = resp.raw_output_contents.get(i);
        let contents = o.contents.clone().unwrap_or_default();
        match o.name.as_str() {
            "label" => {
                label = match raw {
                    Some(r) if r.len() >= 8 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&r[..8]);
                        Some(i64::from_le_bytes(b))
                    }
                    _ => contents.int64_contents.first().copied(),
                }
            }
            "probabilities" => {
                scores = Some(match raw {
                    Some(r) => r
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    None => contents.fp32_contents,
                })
            }
            _ => {}
        }
    }
    Ok(Answer {
        label: label.ok_or_else(|| bad("no label output"))?,
        scores,
        attempts: 1,
        duplicates: 0,
    })
}

impl Transport for GrpcTransport {
    fn infer(&mut self, input: WireTensor<'_>) -> Result<Answer> {
        let msg = pb::ModelInferRequest {
            model_name: self.model.clone(),
            inputs: vec![pb::model_infer_request::InferInputTensor {
                name: "input".into(),
                datatype: input.datatype.into(),
                shape: vec![1, i64::try_from(input.len).unwrap_or(i64::MAX)],
                ..Default::default()
            }],
            raw_input_contents: vec![input.data.to_vec()],
            ..Default::default()
        };
        let mut attempt = 0;
        loop {
            let req = self.request(msg.clone())?;
            let mut client = self.client.clone();
            let result = self.rt.block_on(client.model_infer(req));
            match result {
                Ok(resp) => {
                    let mut a = grpc_answer(&self.url, resp.into_inner())?;
                    a.attempts = attempt + 1;
                    return Ok(a);
                }
                Err(s) => {
                    let e = self.status_error(&s);
                    if matches!(e, Error::Unreachable { .. }) && attempt < self.policy.retries {
                        std::thread::sleep(self.policy.pause(attempt));
                        attempt += 1;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    fn model_metadata(&mut self) -> Result<Option<Value>> {
        let req = self.request(pb::ModelMetadataRequest {
            name: self.model.clone(),
            version: String::new(),
        })?;
        let mut client = self.client.clone();
        let m = self
            .rt
            .block_on(client.model_metadata(req))
            .map_err(|s| self.status_error(&s))?
            .into_inner();
        // The obfnet extension `parameters` (model and bundle sha256): string values only.
        let parameters: serde_json::Map<String, Value> = m
            .parameters
            .iter()
            .filter_map(|(k, p)| match &p.parameter_choice {
                Some(pb::infer_parameter::ParameterChoice::StringParam(v)) => Some((k.clone(), json!(v))),
                _ => None,
            })
            .collect();
        Ok(Some(json!({
            "name": m.name,
            "platform": m.platform,
            "inputs": m.inputs.iter().map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape})).collect::<Vec<_>>(),
            "parameters": parameters,
        })))
    }

    fn describe(&self) -> String {
        format!("grpc {}", self.url)
    }
}

/// A reply seen on the device's response topic.
#[derive(Debug)]
struct MqttReply {
    correlation: Option<Bytes>,
    status: Option<String>,
    header_len: Option<usize>,
    payload: Bytes,
}

/// MQTT v5: QoS 1 requests with Response Topic + Correlation Data, replies on a private topic,
/// retries with exponential backoff and jitter, duplicates dropped by correlation id.
#[derive(Debug)]
pub struct MqttTransport {
    rt: tokio::runtime::Runtime,
    client: AsyncClient,
    replies: mpsc::UnboundedReceiver<MqttReply>,
    request_topic: String,
    response_topic: String,
    endpoint: String,
    policy: RetryPolicy,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for MqttTransport {
    fn drop(&mut self) {
        let c = self.client.clone();
        self.rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(500), c.disconnect()).await;
        });
        self.poller.abort();
    }
}

fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    obfnet_core::runtime::OsRandom
        .fill_bytes(&mut b)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(obfnet_core::hex(&b))
}

fn tls_client_config(ca: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |reason: String| Error::Config {
        field: "tls ca",
        reason: format!("{}: {reason}", ca.display()),
    };
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad("no usable CA certificate".into()));
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

impl MqttTransport {
    /// Connects to the broker and subscribes to the private response topic; waits (up to the
    /// policy's timeout) for the subscription to be confirmed.
    ///
    /// # Errors
    /// [`Error::Unreachable`] when the broker does not confirm in time, [`Error::Rejected`]
    /// when it refuses the connection (bad credentials), [`Error::Config`] for TLS files.
    pub fn connect(s: &MqttSettings, model: &str, policy: RetryPolicy) -> Result<MqttTransport> {
        let rt = runtime(1)?;
        let id = match &s.client_id {
            Some(id) => id.clone(),
            None => format!("obfnet-device-{}", random_hex(6)?),
        };
        let response_topic = format!("obfnet/reply/{id}");
        let request_topic = s
            .request_topic
            .clone()
            .unwrap_or_else(|| format!("obfnet/infer/{model}"));
        let mut o = MqttOptions::new(id, s.host.clone(), s.port);
        o.set_keep_alive(Duration::from_secs(10))
            .set_clean_start(true)
            .set_max_packet_size(Some(1 << 20))
            .set_connection_timeout(policy.timeout.as_secs().max(1));
        if let Some(u) = &s.username {
            o.set_credentials(u.clone(), s.password.clone().unwrap_or_default());
        }
        if let Some(ca) = &s.tls_ca {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(tls_client_config(ca)?),
            ));
        }
        // Small request / reply messages: without TCP_NODELAY, Nagle's algorithm against the
        // peer's delayed ACK holds each one back tens of milliseconds.
        let mut net = o.network_options();
        net.set_tcp_nodelay(true);
        o.set_network_options(net);
        let endpoint = format!("mqtt://{}:{}", s.host, s.port);
        let (client, mut events) = AsyncClient::new(o, 64);
        let (tx, replies) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<std::result::Result<(), String>>();
        let sub_client = client.clone();
        let topic = response_topic.clone();
        let poller = rt.spawn(async move {
            // Connection errors are reported only until the first subscription is confirmed.
            let mut ready = false;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        // Every (re)connection starts a clean session: subscribe again.
                        let _ = sub_client.subscribe(topic.clone(), QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if !ready {
                            ready = true;
                            let _ = ready_tx.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let props = p.properties.unwrap_or_default();
                        let prop = |name: &str| {
                            props
                                .user_properties
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.clone())
                        };
                        let _ = tx.send(MqttReply {
                            correlation: props.correlation_data.clone(),
                            status: prop("status"),
                            header_len: prop(HEADER_LENGTH).and_then(|v| v.trim().parse().ok()),
                            payload: p.payload,
                        });
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !ready {
                            let _ = ready_tx.send(Err(e.to_string()));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        let deadline = Instant::now() + policy.timeout;
        let first = rt.block_on(async {
            let mut last = String::from("no answer from the broker");
            loop {
                match tokio::time::timeout_at(deadline.into(), ready_rx.recv()).await {
                    Ok(Some(Ok(()))) => return Ok(()),
                    Ok(Some(Err(e))) => last = e,
                    Ok(None) | Err(_) => return Err(last),
                }
            }
        });
        if let Err(reason) = first {
            poller.abort();
            let refused = reason.contains("BadUserNamePassword") || reason.contains("NotAuthorized");
            return Err(if refused {
                Error::Rejected {
                    endpoint,
                    status: "CONNACK".into(),
                    message: reason,
                }
            } else {
                Error::Unreachable { endpoint, reason }
            });
        }
        Ok(MqttTransport {
            rt,
            client,
            replies,
            request_topic,
            response_topic,
            endpoint,
            policy,
            poller,
        })
    }

    /// The private topic replies come on.
    pub fn response_topic(&self) -> &str {
        &self.response_topic
    }
}

impl Transport for MqttTransport {
    fn infer(&mut self, input: WireTensor<'_>) -> Result<Answer> {
        let (body, h) = rest_body(input);
        let body = Bytes::from(body);
        let correlation = Bytes::from(random_hex(16)?.into_bytes());
        let props = PublishProperties {
            response_topic: Some(self.response_topic.clone()),
            correlation_data: Some(correlation.clone()),
            content_type: Some("application/octet-stream".into()),
            user_properties: vec![(HEADER_LENGTH.to_string(), h.to_string())],
            ..Default::default()
        };
        let mut duplicates = 0u32;
        for attempt in 0..=self.policy.retries {
            let client = self.client.clone();
            let (topic, b, p) = (self.request_topic.clone(), body.clone(), props.clone());
            let timeout = self.policy.timeout;
            let replies = &mut self.replies;
            let got = self.rt.block_on(async {
                client
                    .publish_with_properties(topic, QoS::AtLeastOnce, false, b, p)
                    .await
                    .map_err(|e| e.to_string())?;
                let deadline = tokio::time::Instant::now() + timeout;
                loop {
                    match tokio::time::timeout_at(deadline, replies.recv()).await {
                        Ok(Some(r)) if r.correlation.as_ref() == Some(&correlation) => return Ok(Some(r)),
                        Ok(Some(_)) => duplicates += 1,
                        Ok(None) => return Err("connection task ended".to_string()),
                        Err(_) => return Ok(None),
                    }
                }
            });
            match got {
                Ok(Some(r)) => {
                    let status = r.status.clone().unwrap_or_else(|| "200".into());
                    if status != "200" {
                        if status == "503" && attempt < self.policy.retries {
                            std::thread::sleep(self.policy.pause(attempt));
                            continue;
                        }
                        return Err(Error::Rejected {
                            endpoint: self.endpoint.clone(),
                            status: format!("status {status}"),
                            message: error_message(&r.payload),
                        });
                    }
                    let mut a = decode_rest_reply(&self.endpoint, &r.payload, r.header_len)?;
                    a.attempts = attempt + 1;
                    a.duplicates = duplicates;
                    return Ok(a);
                }
                Ok(None) | Err(_) if attempt < self.policy.retries => {
                    std::thread::sleep(self.policy.pause(attempt));
                }
                Ok(None) | Err(_) => {}
            }
        }
        Err(Error::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: format!(
                "no reply on {} after {} attempts of {:?}",
                self.response_topic,
                self.policy.retries + 1,
                self.policy.timeout
            ),
        })
    }

    fn model_metadata(&mut self) -> Result<Option<Value>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("mqtt {} topic {}", self.endpoint, self.request_topic)
    }
}

/// Opens the transport `cfg` describes.
///
/// # Errors
/// As the transports' constructors.
pub fn open(
    cfg: &TransportConfig,
    model: &str,
    api_key: Option<String>,
    policy: RetryPolicy,
) -> Result<Box<dyn Transport>> {
    Ok(match cfg {
        TransportConfig::Rest { url } => Box::new(RestTransport::new(url, model, api_key, policy)?),
        TransportConfig::Grpc { url } => Box::new(GrpcTransport::new(url, model, api_key, policy)?),
        TransportConfig::Mqtt(s) => Box::new(MqttTransport::connect(s, model, policy)?),
    })
}
