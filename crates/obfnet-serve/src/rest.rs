//! The REST side of the Open Inference Protocol v2, with the binary tensor extension.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::InvalidKind;
use crate::oip::{self, InputHeader, InputType, InputValues, OutputKind, Prediction};
use crate::state::AppState;
use crate::{Error, Result, metrics as m};

/// Header giving the length of the JSON part of a binary-extension body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// An error as the protocol's JSON body `{"error": "..."}` with its status.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if !self.is_client_fault() {
            tracing::error!(error = %self, "request failed");
        }
        let status = self.http_status();
        let mut resp = json_response(status, &json!({ "error": self.public_message() }));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The REST routes (health, metadata, readiness, infer, `/metrics`) with their middleware
/// (API keys, timeout). Health probes are never behind the API key.
pub fn routes(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata_v))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_v))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .layer(axum::middleware::from_fn_with_state(state.clone(), timeout));
    Router::new()
        .route(
            "/v2/health/live",
            get(|| async { json_response(StatusCode::OK, &json!({"live": true})) }),
        )
        .route(
            "/v2/health/ready",
            get(|| async { json_response(StatusCode::OK, &json!({"ready": true})) }),
        )
        .merge(protected)
        .with_state(state)
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let value = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match st.authorize(value) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            m::record("rest", "auth", Err(&e));
            e.into_response()
        }
    }
}

async fn timeout(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(st.timeout(), next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            let e = Error::Timeout {
                ms: st.config().request_timeout_ms,
            };
            m::record("rest", "infer", Err(&e));
            e.into_response()
        }
    }
}

async fn metrics_text() -> Response {
    match m::render() {
        Some(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        None => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "metrics recorder not installed"}),
        ),
    }
}

async fn server_metadata() -> Response {
    json_response(StatusCode::OK, &server_metadata_json())
}

/// The server metadata object.
pub fn server_metadata_json() -> Value {
    json!({
        "name": "obfnet",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": oip::EXTENSIONS,
    })
}

/// The model metadata object.
pub fn model_metadata_json(st: &AppState) -> Value {
    let spec = st.spec();
    let mut outputs = vec![json!({"name": oip::LABEL_OUTPUT, "datatype": "INT64", "shape": [-1]})];
    if st.config().scores {
        outputs.push(json!({"name": oip::PROBS_OUTPUT, "datatype": "FP32", "shape": [-1, spec.classes]}));
    }
    json!({
        "name": st.config().model_name,
        "versions": [oip::MODEL_VERSION],
        "platform": spec.platform,
        "inputs": [{"name": oip::INPUT_NAME, "datatype": "FP32", "shape": [-1, spec.input_dim()]}],
        "outputs": outputs,
    })
}

async fn model_metadata(State(st): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    st.check_model(&name, None)?;
    Ok(json_response(StatusCode::OK, &model_metadata_json(&st)))
}

async fn model_metadata_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response> {
    st.check_model(&name, Some(&version))?;
    Ok(json_response(StatusCode::OK, &model_metadata_json(&st)))
}

async fn model_ready(State(st): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    st.check_model(&name, None)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"name": name, "ready": true}),
    ))
}

async fn model_ready_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response> {
    st.check_model(&name, Some(&version))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"name": name, "ready": true}),
    ))
}

async fn infer(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_any(st, name, None, headers, body).await
}

async fn infer_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_any(st, name, Some(version), headers, body).await
}

async fn infer_any(
    st: AppState,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = infer_inner(&st, &name, version.as_deref(), &headers, body).await;
    m::record("rest", "infer", result.as_ref().map(|_| ()));
    match result {
        Ok(r) => {
            metrics::histogram!(m::LATENCY_SECONDS, "protocol" => "rest")
                .record(started.elapsed().as_secs_f64());
            r
        }
        Err(e) => e.into_response(),
    }
}

/// The JSON of an inference request (the fields obfnet reads; others are ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct InferRequestJson {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    pub inputs: Vec<InputJson>,
    #[serde(default)]
    pub outputs: Option<Vec<OutputJson>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InputJson {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    #[serde(default)]
    pub data: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OutputJson {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

async fn infer_inner(
    st: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    st.check_model(name, version)?;
    let limit = st.config().max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            Error::TooLarge { limit }
        } else {
            Error::invalid(InvalidKind::Json, "could not read the request body")
        }
    })?;
    let header_len = match headers.get(HEADER_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::invalid(
                        InvalidKind::Binary,
                        "Inference-Header-Content-Length is not a number",
                    )
                })?,
        ),
    };
    let reply = run_json_request(st, &bytes, header_len).await?;
    Ok(reply.into_response())
}

/// A finished reply in the REST encoding (JSON, or JSON header + binary outputs).
#[derive(Debug)]
pub(crate) struct EncodedReply {
    /// The whole body.
    pub body: Vec<u8>,
    /// Length of the JSON part when there are binary outputs.
    pub header_len: Option<usize>,
}

impl IntoResponse for EncodedReply {
    fn into_response(self) -> Response {
        match self.header_len {
            None => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                self.body,
            )
                .into_response(),
            Some(h) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::HeaderName::from_static(HEADER_LENGTH), h.to_string()),
                ],
                self.body,
            )
                .into_response(),
        }
    }
}

/// Parses, checks and runs a request body in the REST encoding (also used by the MQTT worker).
/// `header_len` is the binary extension's JSON length, if the body has a binary part.
pub(crate) async fn run_json_request(
    st: &AppState,
    bytes: &[u8],
    header_len: Option<usize>,
) -> Result<EncodedReply> {
    let (json_part, mut binary) = match header_len {
        None => (bytes, &[][..]),
        Some(h) if h <= bytes.len() => bytes.split_at(h),
        Some(h) => {
            return Err(Error::invalid(
                InvalidKind::Binary,
                format!(
                    "Inference-Header-Content-Length is {h} but the body has only {} bytes",
                    bytes.len()
                ),
            ));
        }
    };
    let req: InferRequestJson = serde_json::from_slice(json_part)
        .map_err(|e| Error::invalid(InvalidKind::Json, format!("request JSON: {e}")))?;
    let spec = st.spec().clone();
    let [input] = req.inputs.as_slice() else {
        return Err(Error::invalid(
            InvalidKind::Input,
            format!(
                "the request has {} inputs; the model takes exactly one",
                req.inputs.len()
            ),
        ));
    };
    let header = oip::check_input_header(
        &spec,
        st.config().max_request_rows,
        &input.name,
        &input.datatype,
        &input.shape,
    )?;
    let binary_size = match input.parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            Error::invalid(
                InvalidKind::Binary,
                "binary_data_size must be a non-negative integer",
            )
        })?),
    };
    let source = match (binary_size, &input.data) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                InvalidKind::Binary,
                "input has both binary_data_size and JSON data",
            ));
        }
        (None, None) => {
            return Err(Error::invalid(InvalidKind::Json, "input has no data"));
        }
        (Some(size), None) => {
            if header_len.is_none() {
                return Err(Error::invalid(
                    InvalidKind::Binary,
                    "binary_data_size given without an Inference-Header-Content-Length header",
                ));
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > binary.len() {
                return Err(Error::invalid(
                    InvalidKind::Binary,
                    format!(
                        "binary_data_size is {size} but only {} binary bytes follow",
                        binary.len()
                    ),
                ));
            }
            let (chunk, rest) = binary.split_at(size);
            binary = rest;
            Source::Raw(chunk)
        }
        (None, Some(data)) => Source::Json(data),
    };
    if !binary.is_empty() {
        return Err(Error::invalid(
            InvalidKind::Binary,
            format!("{} binary bytes are not claimed by any input", binary.len()),
        ));
    }
    let outputs = requested_outputs(st.config().scores, &req)?;
    let prediction = st
        .predict(header, |h, spec| match source {
            Source::Raw(chunk) => oip::decode_raw(h, spec, chunk),
            Source::Json(v) => json_values(h, spec, v),
        })
        .await?;
    Ok(encode_reply(st, req.id.as_deref(), &prediction, &outputs))
}

enum Source<'a> {
    Raw(&'a [u8]),
    Json(&'a Value),
}

fn param_bool(params: Option<&Map<String, Value>>, key: &str) -> Result<Option<bool>> {
    match params.and_then(|p| p.get(key)) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::invalid(
            InvalidKind::Parameter,
            format!("parameter {key:?} must be a boolean"),
        )),
    }
}

fn requested_outputs(scores: bool, req: &InferRequestJson) -> Result<Vec<(OutputKind, bool)>> {
    let all_binary = param_bool(req.parameters.as_ref(), "binary_data_output")?.unwrap_or(false);
    let outputs = match &req.outputs {
        None => oip::default_outputs(scores)
            .into_iter()
            .map(|k| (k, all_binary))
            .collect(),
        Some(list) if list.is_empty() => oip::default_outputs(scores)
            .into_iter()
            .map(|k| (k, all_binary))
            .collect(),
        Some(list) => list
            .iter()
            .map(|o| {
                if o.parameters
                    .as_ref()
                    .is_some_and(|p| p.contains_key("classification"))
                {
                    return Err(Error::invalid(
                        InvalidKind::Parameter,
                        "the classification extension is not supported; ask for the label output",
                    ));
                }
                let kind = oip::output_kind(&o.name, scores)?;
                let binary = param_bool(o.parameters.as_ref(), "binary_data")?.unwrap_or(all_binary);
                Ok((kind, binary))
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let kinds: Vec<_> = outputs.iter().map(|(k, _)| *k).collect();
    oip::check_unique(&kinds)?;
    Ok(outputs)
}

/// Flattens JSON data (flat or nested arrays) into values, stopping as soon as there are more
/// elements than the shape allows.
fn json_values(header: &InputHeader, spec: &crate::backend::ModelSpec, data: &Value) -> Result<InputValues> {
    let want = header.numel(spec);
    let too_many = || {
        Error::invalid(
            InvalidKind::Shape,
            format!(
                "input {:?} holds more than the {want} values its shape needs",
                oip::INPUT_NAME
            ),
        )
    };
    let mut stack = vec![data];
    let mut f = Vec::new();
    let mut u = Vec::new();
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Number(num) => {
                if f.len() + u.len() >= want {
                    return Err(too_many());
                }
                match header.dtype {
                    InputType::Fp32 => f.push(num.as_f64().ok_or_else(|| {
                        Error::invalid(InvalidKind::Value, "FP32 input holds a number out of range")
                    })? as f32),
                    InputType::Uint8 => u.push(num.as_u64().ok_or_else(|| {
                        Error::invalid(
                            InvalidKind::Value,
                            "UINT8 input holds a value that is not an integer in 0..=255",
                        )
                    })?),
                }
            }
            _ => {
                return Err(Error::invalid(
                    InvalidKind::Json,
                    format!(
                        "input {:?} data must be numbers in (nested) arrays",
                        oip::INPUT_NAME
                    ),
                ));
            }
        }
    }
    Ok(match header.dtype {
        InputType::Fp32 => InputValues::F32(f),
        InputType::Uint8 => InputValues::U8(oip::u8_from_wide(u)?),
    })
}

fn encode_reply(
    st: &AppState,
    id: Option<&str>,
    p: &Prediction,
    outputs: &[(OutputKind, bool)],
) -> EncodedReply {
    let mut binary = Vec::new();
    let mut out_json = Vec::with_capacity(outputs.len());
    for &(kind, as_binary) in outputs {
        let mut o = json!({"name": kind.name(), "datatype": kind.datatype(), "shape": p.shape(kind)});
        if as_binary {
            let raw = p.raw(kind);
            o["parameters"] = json!({"binary_data_size": raw.len()});
            binary.extend_from_slice(&raw);
        } else {
            o["data"] = match kind {
                OutputKind::Label => json!(p.labels),
                OutputKind::Probabilities => json!(p.probabilities),
            };
        }
        out_json.push(o);
    }
    let mut resp = json!({
        "model_name": st.config().model_name,
        "model_version": oip::MODEL_VERSION,
        "outputs": out_json,
    });
    if let Some(id) = id {
        resp["id"] = json!(id);
    }
    let mut body = serde_json::to_vec(&resp).unwrap_or_default();
    if outputs.iter().any(|(_, b)| *b) {
        let header_len = body.len();
        body.extend_from_slice(&binary);
        EncodedReply {
            body,
            header_len: Some(header_len),
        }
    } else {
        EncodedReply {
            body,
            header_len: None,
        }
    }
}

/// JSON for a 404 on unknown paths.
pub(crate) async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"}))
}
