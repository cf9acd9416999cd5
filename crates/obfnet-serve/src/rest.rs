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
use serde::de::{self, Visitor};
use serde_json::{Value, json};

use crate::backend::ModelSpec;
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
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::server::RETRY_AFTER_S),
            );
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
        .route("/v2/health/live", get(health_live))
        .route("/v2/health/ready", get(health_ready))
        .merge(protected)
        .with_state(state)
}

/// 200 `{"live": true}`, or 503 `{"live": false}` when the process cannot serve (the batcher
/// thread is gone).
async fn health_live(State(st): State<AppState>) -> Response {
    let live = st.live();
    let status = if live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &json!({ "live": live }))
}

/// 200 `{"ready": true}`, or 503 `{"ready": false}` when the batcher or an MQTT worker is gone.
async fn health_ready(State(st): State<AppState>) -> Response {
    let ready = st.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &json!({ "ready": ready }))
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
    let mut m = json!({
        "name": st.config().model_name,
        "versions": [oip::MODEL_VERSION],
        "platform": spec.platform,
        "inputs": [{"name": oip::INPUT_NAME, "datatype": "FP32", "shape": [-1, spec.input_dim()]}],
        "outputs": outputs,
    });
    let params = st.model_parameters();
    if !params.is_empty() {
        m["parameters"] = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect();
    }
    m
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
        &json!({"name": name, "ready": st.live()}),
    ))
}

async fn model_ready_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response> {
    st.check_model(&name, Some(&version))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"name": name, "ready": st.live()}),
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

/// The JSON of an inference request (the fields obfnet reads; others are skipped without being
/// stored). Tensor data goes straight into a flat `Vec<f32>` capped at the largest request's
/// element count ([`parse_request`]), never into a generic JSON tree.
#[derive(Debug, Deserialize)]
pub(crate) struct InferRequestJson {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<RequestParams>,
    pub inputs: Vec<InputJson>,
    #[serde(default)]
    pub outputs: Option<Vec<OutputJson>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RequestParams {
    #[serde(default, deserialize_with = "present")]
    pub binary_data_output: Option<Param>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InputJson {
    pub name: String,
    pub shape: Shape,
    pub datatype: String,
    #[serde(default)]
    pub parameters: Option<InputParams>,
    #[serde(default, deserialize_with = "present")]
    pub data: Option<FlatData>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct InputParams {
    #[serde(default, deserialize_with = "present")]
    pub binary_data_size: Option<Param>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OutputJson {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<OutputParams>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OutputParams {
    #[serde(default, deserialize_with = "present")]
    pub binary_data: Option<Param>,
    #[serde(default, deserialize_with = "present")]
    pub classification: Option<Param>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A parameter value: a boolean, a non-negative integer, or anything else (skipped unstored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Param {
    Bool(bool),
    Uint(u64),
    Other,
}

impl<'de> Deserialize<'de> for Param {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Param;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a parameter value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Param, E> {
                Ok(Param::Bool(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Param, E> {
                Ok(Param::Uint(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Param, E> {
                Ok(u64::try_from(v).map_or(Param::Other, Param::Uint))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Param, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Param, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Most dimensions a shape may list while parsing (the model takes at most 4).
const MAX_SHAPE_DIMS: usize = 16;

/// An input's shape, at most [`MAX_SHAPE_DIMS`] entries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape(pub Vec<i64>);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a shape: an array of at most {MAX_SHAPE_DIMS} integers")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Shape, A::Error> {
                let mut dims = Vec::new();
                while let Some(d) = seq.next_element::<i64>()? {
                    if dims.len() == MAX_SHAPE_DIMS {
                        return Err(de::Error::custom(format!(
                            "input shape has more than {MAX_SHAPE_DIMS} dimensions"
                        )));
                    }
                    dims.push(d);
                }
                Ok(Shape(dims))
            }
        }
        d.deserialize_seq(V)
    }
}

thread_local! {
    /// Numbers the JSON parse on this thread may still store (set by [`parse_request`]).
    /// (left, cap).
    static ELEMENT_BUDGET: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Tensor data as it came in JSON (flat or nested arrays of numbers), flattened to f32 while
/// parsing; remembers the first number that is not a valid UINT8 (for that datatype's check).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct FlatData {
    pub values: Vec<f32>,
    pub first_non_u8: Option<String>,
}

impl FlatData {
    fn push<E: de::Error>(
        &mut self,
        v: f32,
        non_u8: impl FnOnce() -> Option<String>,
    ) -> std::result::Result<(), E> {
        let (left, cap) = ELEMENT_BUDGET.with(|b| b.get());
        if left == 0 {
            return Err(E::custom(format!(
                "the request holds more than the {cap} values the largest allowed request has"
            )));
        }
        ELEMENT_BUDGET.with(|b| b.set((left - 1, cap)));
        if self.first_non_u8.is_none() {
            self.first_non_u8 = non_u8();
        }
        self.values.push(v);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut data = FlatData::default();
        de::DeserializeSeed::deserialize(Flatten(&mut data), d)?;
        Ok(data)
    }
}

/// Appends every number of a (nested) array to the target.
struct Flatten<'a>(&'a mut FlatData);

impl<'de> de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "input {:?} data as numbers in (nested) arrays",
            oip::INPUT_NAME
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.0.push(v as f32, || (v > 255).then(|| v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.0
            .push(v as f32, || (!(0..=255).contains(&v)).then(|| v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<(), E> {
        self.0.push(v as f32, || Some(v.to_string()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// Parses a request's JSON part, storing at most `max_elements` tensor numbers in all.
pub(crate) fn parse_request(json: &[u8], max_elements: usize) -> Result<InferRequestJson> {
    let saved = ELEMENT_BUDGET.with(|b| b.replace((max_elements, max_elements)));
    let r = serde_json::from_slice(json);
    ELEMENT_BUDGET.with(|b| b.set(saved));
    r.map_err(|e| Error::invalid(InvalidKind::Json, format!("request JSON: {e}")))
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
    let reply = run_json_request(st, crate::state::Admission::Shed, &bytes, header_len).await?;
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

/// A request body in the REST encoding, parsed and checked against the model (no compute yet).
#[derive(Debug)]
pub(crate) struct DecodedRequest<'a> {
    pub id: Option<String>,
    pub header: InputHeader,
    source: Source<'a>,
    pub outputs: Vec<(OutputKind, bool)>,
}

impl DecodedRequest<'_> {
    /// The input values (raw bytes decoded, JSON numbers checked against the datatype).
    pub fn values(self, spec: &ModelSpec) -> Result<InputValues> {
        match self.source {
            Source::Raw(chunk) => oip::decode_raw(&self.header, spec, chunk),
            Source::Json(d) => json_values(&self.header, spec, d),
        }
    }
}

/// Parses and checks a body in the REST encoding: JSON (numbers stored straight into a capped
/// flat buffer), or the binary extension when `header_len` gives the JSON part's length.
pub(crate) fn decode_request<'a>(
    spec: &ModelSpec,
    max_rows: usize,
    scores: bool,
    bytes: &'a [u8],
    header_len: Option<usize>,
) -> Result<DecodedRequest<'a>> {
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
    let max_elements = max_rows.saturating_mul(spec.input_dim());
    let mut req = parse_request(json_part, max_elements)?;
    if req.inputs.len() != 1 {
        return Err(Error::invalid(
            InvalidKind::Input,
            format!(
                "the request has {} inputs; the model takes exactly one",
                req.inputs.len()
            ),
        ));
    }
    let input = req.inputs.swap_remove(0);
    let header = oip::check_input_header(spec, max_rows, &input.name, &input.datatype, &input.shape.0)?;
    let binary_size = match input.parameters.and_then(|p| p.binary_data_size) {
        None => None,
        Some(Param::Uint(v)) => Some(v),
        Some(_) => {
            return Err(Error::invalid(
                InvalidKind::Binary,
                "binary_data_size must be a non-negative integer",
            ));
        }
    };
    let source = match (binary_size, input.data) {
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
    let outputs = requested_outputs(scores, &req)?;
    Ok(DecodedRequest {
        id: req.id,
        header,
        source,
        outputs,
    })
}

/// Decodes a REST-encoded body all the way to model input (no model run): the path a fuzzer
/// or property test drives. Never panics; every bad body is an [`Error`].
#[doc(hidden)]
pub fn decode_to_model_input(
    spec: &ModelSpec,
    max_rows: usize,
    bytes: &[u8],
    header_len: Option<usize>,
) -> Result<Vec<f32>> {
    let req = decode_request(spec, max_rows, true, bytes, header_len)?;
    let header = req.header;
    let values = req.values(spec)?;
    oip::to_model_input(&header, spec, values)
}

/// Parses, checks and runs a request body in the REST encoding (also used by the MQTT worker).
/// `header_len` is the binary extension's JSON length, if the body has a binary part.
pub(crate) async fn run_json_request(
    st: &AppState,
    admission: crate::state::Admission,
    bytes: &[u8],
    header_len: Option<usize>,
) -> Result<EncodedReply> {
    let spec = st.spec().clone();
    let req = decode_request(
        &spec,
        st.config().max_request_rows,
        st.config().scores,
        bytes,
        header_len,
    )?;
    let id = req.id.clone();
    let outputs = req.outputs.clone();
    let header = req.header;
    let prediction = st
        .predict_with(admission, header, |_, spec| req.values(spec))
        .await?;
    Ok(encode_reply(st, id.as_deref(), &prediction, &outputs))
}

#[derive(Debug)]
enum Source<'a> {
    Raw(&'a [u8]),
    Json(FlatData),
}

fn param_bool(p: Option<Param>, key: &str) -> Result<Option<bool>> {
    match p {
        None => Ok(None),
        Some(Param::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(Error::invalid(
            InvalidKind::Parameter,
            format!("parameter {key:?} must be a boolean"),
        )),
    }
}

fn requested_outputs(scores: bool, req: &InferRequestJson) -> Result<Vec<(OutputKind, bool)>> {
    let all_binary = param_bool(
        req.parameters.as_ref().and_then(|p| p.binary_data_output),
        "binary_data_output",
    )?
    .unwrap_or(false);
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
                if o.parameters.as_ref().is_some_and(|p| p.classification.is_some()) {
                    return Err(Error::invalid(
                        InvalidKind::Parameter,
                        "the classification extension is not supported; ask for the label output",
                    ));
                }
                let kind = oip::output_kind(&o.name, scores)?;
                let binary = param_bool(o.parameters.as_ref().and_then(|p| p.binary_data), "binary_data")?
                    .unwrap_or(all_binary);
                Ok((kind, binary))
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let kinds: Vec<_> = outputs.iter().map(|(k, _)| *k).collect();
    oip::check_unique(&kinds)?;
    Ok(outputs)
}

/// Checks JSON numbers against the input's datatype and element count.
fn json_values(header: &InputHeader, spec: &ModelSpec, data: FlatData) -> Result<InputValues> {
    let want = header.numel(spec);
    if data.values.len() > want {
        return Err(Error::invalid(
            InvalidKind::Shape,
            format!(
                "input {:?} holds more than the {want} values its shape needs",
                oip::INPUT_NAME
            ),
        ));
    }
    Ok(match header.dtype {
        InputType::Fp32 => InputValues::F32(data.values),
        InputType::Uint8 => {
            if let Some(v) = data.first_non_u8 {
                return Err(Error::invalid(
                    InvalidKind::Value,
                    format!(
                        "UINT8 input holds {}, not an integer in 0..=255",
                        oip::truncate(&v)
                    ),
                ));
            }
            // Every value is an integer in 0..=255, exact in f32.
            InputValues::U8(data.values.iter().map(|&v| v as u8).collect())
        }
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
