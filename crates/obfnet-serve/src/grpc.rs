//! The gRPC side of the Open Inference Protocol v2: `inference.GRPCInferenceService`.

use std::time::Instant;

use tonic::{Request, Response, Status};

use crate::error::InvalidKind;
use crate::oip::{self, InputType, InputValues, OutputKind, Prediction};
use crate::pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use crate::pb::{
    self, InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ServerLiveRequest, ServerLiveResponse,
    ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
    model_infer_response::InferOutputTensor, model_metadata_response::TensorMetadata,
};
use crate::state::AppState;
use crate::{Error, Result, metrics as m};

/// The tonic service for `state`, with the configured message size limit.
pub fn service(state: AppState) -> GrpcInferenceServiceServer<Grpc> {
    let limit = state.config().max_body_bytes;
    GrpcInferenceServiceServer::new(Grpc { state })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX)
}

/// Implementation of `inference.GRPCInferenceService`.
#[derive(Clone, Debug)]
pub struct Grpc {
    state: AppState,
}

impl Grpc {
    fn authorize<T>(&self, req: &Request<T>) -> std::result::Result<(), Status> {
        let value = req.metadata().get("authorization").map(|v| v.as_bytes());
        self.state.authorize(value).map_err(|e| {
            m::record("grpc", "auth", Err(&e));
            e.grpc_status()
        })
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _req: Request<ServerLiveRequest>,
    ) -> std::result::Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse {
            live: self.state.live(),
        }))
    }

    async fn server_ready(
        &self,
        _req: Request<ServerReadyRequest>,
    ) -> std::result::Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.state.ready(),
        }))
    }

    async fn model_ready(
        &self,
        req: Request<ModelReadyRequest>,
    ) -> std::result::Result<Response<ModelReadyResponse>, Status> {
        self.authorize(&req)?;
        let r = req.get_ref();
        // Ready is false (not an error) for unknown models, as the protocol's boolean answer.
        let ready = self.state.check_model(&r.name, Some(&r.version)).is_ok() && self.state.live();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        req: Request<ServerMetadataRequest>,
    ) -> std::result::Result<Response<ServerMetadataResponse>, Status> {
        self.authorize(&req)?;
        Ok(Response::new(ServerMetadataResponse {
            name: "obfnet".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: oip::EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        req: Request<ModelMetadataRequest>,
    ) -> std::result::Result<Response<ModelMetadataResponse>, Status> {
        self.authorize(&req)?;
        let r = req.get_ref();
        self.state
            .check_model(&r.name, Some(&r.version))
            .map_err(|e| e.grpc_status())?;
        let spec = self.state.spec();
        let tensor = |name: &str, datatype: &str, shape: Vec<i64>| TensorMetadata {
            name: name.into(),
            datatype: datatype.into(),
            shape,
        };
        let mut outputs = vec![tensor(oip::LABEL_OUTPUT, "INT64", vec![-1])];
        if self.state.config().scores {
            outputs.push(tensor(oip::PROBS_OUTPUT, "FP32", vec![-1, spec.classes as i64]));
        }
        Ok(Response::new(ModelMetadataResponse {
            name: self.state.config().model_name.clone(),
            versions: vec![oip::MODEL_VERSION.into()],
            platform: spec.platform.clone(),
            inputs: vec![tensor(oip::INPUT_NAME, "FP32", vec![-1, spec.input_dim() as i64])],
            outputs,
            parameters: self
                .state
                .model_parameters()
                .into_iter()
                .map(|(k, v)| {
                    let p = pb::InferParameter {
                        parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(v)),
                    };
                    (k.to_string(), p)
                })
                .collect(),
        }))
    }

    async fn model_infer(
        &self,
        req: Request<ModelInferRequest>,
    ) -> std::result::Result<Response<ModelInferResponse>, Status> {
        self.authorize(&req)?;
        let started = Instant::now();
        let result = infer(&self.state, req.into_inner()).await;
        m::record("grpc", "infer", result.as_ref().map(|_| ()));
        match result {
            Ok(r) => {
                metrics::histogram!(m::LATENCY_SECONDS, "protocol" => "grpc")
                    .record(started.elapsed().as_secs_f64());
                Ok(Response::new(r))
            }
            Err(e) => {
                if !e.is_client_fault() {
                    tracing::error!(error = %e, "gRPC inference failed");
                }
                Err(e.grpc_status())
            }
        }
    }
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::invalid(InvalidKind::Protobuf, detail)
}

async fn infer(st: &AppState, req: ModelInferRequest) -> Result<ModelInferResponse> {
    st.check_model(&req.model_name, Some(&req.model_version))?;
    let spec = st.spec().clone();
    let id = req.id.clone();
    let d = decode(&spec, st.config().max_request_rows, st.config().scores, req)?;
    let (header, outputs, came_raw) = (d.header, d.outputs.clone(), d.came_raw);
    let prediction = st.predict(header, |_, spec| d.values(spec)).await?;
    Ok(encode(st, id, &prediction, &outputs, came_raw))
}

/// A checked `ModelInferRequest` (no compute yet).
struct Decoded {
    header: oip::InputHeader,
    outputs: Vec<OutputKind>,
    came_raw: bool,
    raw: Option<Vec<u8>>,
    contents: InferTensorContents,
}

impl Decoded {
    fn values(self, spec: &crate::backend::ModelSpec) -> Result<InputValues> {
        match self.raw {
            Some(bytes) => oip::decode_raw(&self.header, spec, &bytes),
            None => typed_values(self.header.dtype, self.contents),
        }
    }
}

/// Checks a request's input, contents and outputs against the model.
fn decode(
    spec: &crate::backend::ModelSpec,
    max_rows: usize,
    scores: bool,
    mut req: ModelInferRequest,
) -> Result<Decoded> {
    if req.inputs.len() != 1 {
        return Err(Error::invalid(
            InvalidKind::Input,
            format!(
                "the request has {} inputs; the model takes exactly one",
                req.inputs.len()
            ),
        ));
    }
    let input = req.inputs.remove(0);
    let header = oip::check_input_header(spec, max_rows, &input.name, &input.datatype, &input.shape)?;
    let raw = match req.raw_input_contents.len() {
        0 => None,
        1 => Some(req.raw_input_contents.remove(0)),
        k => {
            return Err(invalid(format!(
                "raw_input_contents has {k} entries; it needs one per input (1)"
            )));
        }
    };
    let contents = input.contents.unwrap_or_default();
    let has_typed = !(contents.fp32_contents.is_empty()
        && contents.uint_contents.is_empty()
        && contents.bool_contents.is_empty()
        && contents.int_contents.is_empty()
        && contents.int64_contents.is_empty()
        && contents.uint64_contents.is_empty()
        && contents.fp64_contents.is_empty()
        && contents.bytes_contents.is_empty());
    if raw.is_some() && has_typed {
        return Err(invalid("input has both contents and raw_input_contents"));
    }
    let came_raw = raw.is_some();
    let outputs = requested_outputs(scores, &req.outputs)?;
    Ok(Decoded {
        header,
        outputs,
        came_raw,
        raw,
        contents,
    })
}

/// Decodes a serialized `ModelInferRequest` all the way to model input (no model run): the
/// path a fuzzer or property test drives. Never panics; every bad message is an [`Error`].
#[doc(hidden)]
pub fn grpc_decode_to_model_input(
    spec: &crate::backend::ModelSpec,
    max_rows: usize,
    bytes: &[u8],
) -> Result<Vec<f32>> {
    let req = <ModelInferRequest as prost::Message>::decode(bytes)
        .map_err(|e| invalid(format!("malformed ModelInferRequest: {e}")))?;
    let d = decode(spec, max_rows, true, req)?;
    let header = d.header;
    let values = d.values(spec)?;
    oip::to_model_input(&header, spec, values)
}

fn typed_values(dtype: InputType, c: InferTensorContents) -> Result<InputValues> {
    let wrong = |field: &str| {
        invalid(format!(
            "a {} input must use {field} (or raw_input_contents)",
            dtype.as_str()
        ))
    };
    match dtype {
        InputType::Fp32 => {
            if !c.uint_contents.is_empty() || c.fp32_contents.is_empty() {
                return Err(wrong("contents.fp32_contents"));
            }
            Ok(InputValues::F32(c.fp32_contents))
        }
        InputType::Uint8 => {
            if !c.fp32_contents.is_empty() || c.uint_contents.is_empty() {
                return Err(wrong("contents.uint_contents"));
            }
            Ok(InputValues::U8(oip::u8_from_wide(
                c.uint_contents.into_iter().map(u64::from),
            )?))
        }
    }
}

fn requested_outputs(
    scores: bool,
    list: &[pb::model_infer_request::InferRequestedOutputTensor],
) -> Result<Vec<OutputKind>> {
    if list.is_empty() {
        return Ok(oip::default_outputs(scores));
    }
    let kinds = list
        .iter()
        .map(|o| {
            if o.parameters.contains_key("classification") {
                return Err(Error::invalid(
                    InvalidKind::Parameter,
                    "the classification extension is not supported; ask for the label output",
                ));
            }
            oip::output_kind(&o.name, scores)
        })
        .collect::<Result<Vec<_>>>()?;
    oip::check_unique(&kinds)?;
    Ok(kinds)
}

fn encode(
    st: &AppState,
    id: String,
    p: &Prediction,
    outputs: &[OutputKind],
    raw: bool,
) -> ModelInferResponse {
    let mut resp = ModelInferResponse {
        model_name: st.config().model_name.clone(),
        model_version: oip::MODEL_VERSION.into(),
        id,
        ..Default::default()
    };
    for &kind in outputs {
        let mut t = InferOutputTensor {
            name: kind.name().into(),
            datatype: kind.datatype().into(),
            shape: p.shape(kind),
            ..Default::default()
        };
        if raw {
            resp.raw_output_contents.push(p.raw(kind));
        } else {
            t.contents = Some(match kind {
                OutputKind::Label => InferTensorContents {
                    int64_contents: p.labels.clone(),
                    ..Default::default()
                },
                OutputKind::Probabilities => InferTensorContents {
                    fp32_contents: p.probabilities.clone(),
                    ..Default::default()
                },
            });
        }
        resp.outputs.push(t);
    }
    resp
}

/// tonic's prost codec, except that a message that fails to decode is the client's fault:
/// INVALID_ARGUMENT (the gRPC analogue of HTTP 400) instead of tonic's INTERNAL.
#[derive(Debug)]
pub struct StrictCodec<T, U>(tonic_prost::ProstCodec<T, U>);

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        StrictCodec(tonic_prost::ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for StrictCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(self.0.decoder())
    }
}

/// The decoder of [`StrictCodec`].
#[derive(Debug)]
pub struct StrictDecoder<U>(tonic_prost::ProstDecoder<U>);

impl<U: prost::Message + Default> tonic::codec::Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> std::result::Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|s| {
            metrics::counter!(m::FAILURES, "protocol" => "grpc", "reason" => "protobuf").increment(1);
            Status::invalid_argument(format!("malformed protobuf message: {}", s.message()))
        })
    }

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        self.0.buffer_settings()
    }
}
