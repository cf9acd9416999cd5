//! The six RPCs of inference.GRPCInferenceService, typed and raw contents, and gRPC errors.

use obfnet_serve::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use obfnet_serve::pb::infer_parameter::ParameterChoice;
use obfnet_serve::pb::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use obfnet_serve::pb::*;
use tonic::Code;
use tonic::transport::Channel;

use crate::common::*;

pub async fn client(s: &TestServer) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::connect(format!("http://{}", s.addr))
        .await
        .expect("gRPC connect")
}

pub fn raw_request(datatype: &str, shape: Vec<i64>, raw: Vec<u8>) -> ModelInferRequest {
    ModelInferRequest {
        model_name: "lenet5".into(),
        inputs: vec![InferInputTensor {
            name: "input".into(),
            datatype: datatype.into(),
            shape,
            ..Default::default()
        }],
        raw_input_contents: vec![raw],
        ..Default::default()
    }
}

#[tokio::test]
async fn health_and_metadata_rpcs() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let mut c = client(&s).await;
    assert!(c.server_live(ServerLiveRequest {}).await?.into_inner().live);
    assert!(c.server_ready(ServerReadyRequest {}).await?.into_inner().ready);
    let ready = |name: &str, version: &str| ModelReadyRequest {
        name: name.into(),
        version: version.into(),
    };
    assert!(c.model_ready(ready("lenet5", "")).await?.into_inner().ready);
    assert!(c.model_ready(ready("lenet5", "1")).await?.into_inner().ready);
    assert!(!c.model_ready(ready("other", "")).await?.into_inner().ready);
    let m = c.server_metadata(ServerMetadataRequest {}).await?.into_inner();
    assert_eq!(m.name, "obfnet");
    assert_eq!(m.extensions, vec!["binary_tensor_data".to_string()]);
    let m = c
        .model_metadata(ModelMetadataRequest {
            name: "lenet5".into(),
            version: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(m.versions, vec!["1".to_string()]);
    assert_eq!(
        (m.inputs[0].name.as_str(), m.inputs[0].datatype.as_str()),
        ("input", "FP32")
    );
    assert_eq!(m.inputs[0].shape, vec![-1, 784]);
    assert_eq!(m.outputs.len(), 2);
    // the obfnet extension: the model's sha256 (no bundles issued)
    let weights = std::fs::read(model_dir().join("model.safetensors"))?;
    let sha = obfnet_core::hex(&obfnet_core::sha256(&weights));
    let published: Vec<(&str, Option<&ParameterChoice>)> = m
        .parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.parameter_choice.as_ref()))
        .collect();
    assert_eq!(
        published,
        vec![("sha256", Some(&ParameterChoice::StringParam(sha)))]
    );
    let err = c
        .model_metadata(ModelMetadataRequest {
            name: "lenet5".into(),
            version: "9".into(),
        })
        .await
        .expect_err("unknown version");
    assert_eq!(err.code(), Code::NotFound);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn infer_raw_and_typed_contents() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let mut c = client(&s).await;
    let imgs: Vec<u8> = (0..2).flat_map(image_u8).collect();
    let x = normalise(&imgs);
    let want = direct_probabilities(&x, 2);

    // Raw FP32 in → raw out.
    let raw: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut req = raw_request("FP32", vec![2, 784], raw);
    req.id = "g1".into();
    let r = c.model_infer(req).await?.into_inner();
    assert_eq!(r.id, "g1");
    assert_eq!(r.model_name, "lenet5");
    assert_eq!(r.outputs.len(), 2);
    assert_eq!(r.raw_output_contents.len(), 2);
    assert!(r.outputs.iter().all(|o| o.contents.is_none()));
    assert_eq!(r.outputs[1].shape, vec![2, 10]);
    let probs = f32s(&r.raw_output_contents[1]);
    assert!(close(&probs, &want, 1e-5));
    let labels = i64s(&r.raw_output_contents[0]);
    assert_eq!(labels.len(), 2);

    // Raw UINT8 in [n,1,28,28].
    let r = c
        .model_infer(raw_request("UINT8", vec![2, 1, 28, 28], imgs.clone()))
        .await?
        .into_inner();
    assert!(close(&f32s(&r.raw_output_contents[1]), &want, 1e-5));

    // Typed UINT8 (uint_contents) in → typed out; only the label requested.
    let mut req = raw_request("UINT8", vec![2, 784], vec![]);
    req.raw_input_contents.clear();
    req.inputs[0].contents = Some(InferTensorContents {
        uint_contents: imgs.iter().map(|&b| u32::from(b)).collect(),
        ..Default::default()
    });
    req.outputs = vec![InferRequestedOutputTensor {
        name: "label".into(),
        ..Default::default()
    }];
    let r = c.model_infer(req).await?.into_inner();
    assert!(r.raw_output_contents.is_empty());
    assert_eq!(r.outputs.len(), 1);
    assert_eq!(
        r.outputs[0].contents.as_ref().map(|c| c.int64_contents.clone()),
        Some(labels.clone())
    );

    // Typed FP32.
    let mut req = raw_request("FP32", vec![2, 784], vec![]);
    req.raw_input_contents.clear();
    req.inputs[0].contents = Some(InferTensorContents {
        fp32_contents: x.clone(),
        ..Default::default()
    });
    let r = c.model_infer(req).await?.into_inner();
    let probs = r.outputs[1]
        .contents
        .as_ref()
        .map(|c| c.fp32_contents.clone())
        .unwrap_or_default();
    assert!(close(&probs, &want, 1e-5));
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_invalid_argument() -> TestResult {
    let mut cfg = cfg();
    cfg.max_body_bytes = 64 * 1024;
    let s = TestServer::start(cfg, lenet()).await;
    let mut c = client(&s).await;
    let img = image_u8(0);
    let mut cases: Vec<(ModelInferRequest, Code, &str)> = vec![
        (
            raw_request("UINT8", vec![1, 783], img.clone()),
            Code::InvalidArgument,
            "shape",
        ),
        (
            raw_request("INT8", vec![784], img.clone()),
            Code::InvalidArgument,
            "datatype",
        ),
        (
            raw_request("UINT8", vec![784], img[..700].to_vec()),
            Code::InvalidArgument,
            "bytes",
        ),
        (
            raw_request("FP32", vec![784], img.clone()),
            Code::InvalidArgument,
            "3136",
        ),
    ];
    let mut two_raw = raw_request("UINT8", vec![784], img.clone());
    two_raw.raw_input_contents.push(img.clone());
    cases.push((two_raw, Code::InvalidArgument, "one per input"));
    let mut both = raw_request("UINT8", vec![784], img.clone());
    both.inputs[0].contents = Some(InferTensorContents {
        uint_contents: vec![1; 784],
        ..Default::default()
    });
    cases.push((both, Code::InvalidArgument, "both"));
    let mut wrong_field = raw_request("UINT8", vec![784], vec![]);
    wrong_field.raw_input_contents.clear();
    wrong_field.inputs[0].contents = Some(InferTensorContents {
        int_contents: vec![1; 784],
        ..Default::default()
    });
    cases.push((wrong_field, Code::InvalidArgument, "uint_contents"));
    let mut big = raw_request("UINT8", vec![784], vec![]);
    big.raw_input_contents.clear();
    big.inputs[0].contents = Some(InferTensorContents {
        uint_contents: vec![300; 784],
        ..Default::default()
    });
    cases.push((big, Code::InvalidArgument, "0..=255"));
    let mut nan = raw_request("FP32", vec![784], vec![]);
    nan.raw_input_contents.clear();
    let mut v = vec![0.0f32; 784];
    v[3] = f32::NAN;
    nan.inputs[0].contents = Some(InferTensorContents {
        fp32_contents: v,
        ..Default::default()
    });
    cases.push((nan, Code::InvalidArgument, "NaN"));
    let mut unknown_out = raw_request("UINT8", vec![784], img.clone());
    unknown_out.outputs = vec![InferRequestedOutputTensor {
        name: "nope".into(),
        ..Default::default()
    }];
    cases.push((unknown_out, Code::InvalidArgument, "unknown output"));
    let mut no_inputs = raw_request("UINT8", vec![784], img.clone());
    no_inputs.inputs.clear();
    cases.push((no_inputs, Code::InvalidArgument, "exactly one"));
    let mut other = raw_request("UINT8", vec![784], img.clone());
    other.model_name = "other".into();
    cases.push((other, Code::NotFound, "unknown model"));
    for (req, code, needle) in cases {
        let e = c.model_infer(req).await.expect_err("must fail");
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(
            e.message().contains(needle),
            "{:?} should mention {needle:?}",
            e.message()
        );
    }
    // Over the message size limit.
    let e = c
        .model_infer(raw_request("FP32", vec![64, 784], vec![0; 64 * 3136]))
        .await
        .expect_err("too large");
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{e:?}"
    );
    // Still serving.
    assert!(c.model_infer(raw_request("UINT8", vec![784], img)).await.is_ok());
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn malformed_protobuf_is_rejected() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    // A gRPC frame (uncompressed, 6 bytes) holding bytes that are not a ModelInferRequest.
    let garbage = [0u8, 0, 0, 0, 6, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f];
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(s.url("/inference.GRPCInferenceService/ModelInfer"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(&garbage)))?;
    let resp = client.request(req).await?;
    use http_body_util::BodyExt;
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = headers
        .get("grpc-status")
        .or_else(|| trailers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    assert_eq!(
        status,
        Some(Code::InvalidArgument as i32),
        "{headers:?} {trailers:?}"
    );
    // The server is fine afterwards.
    let mut c = client_after(&s).await;
    assert!(c.server_live(ServerLiveRequest {}).await.is_ok());
    s.stop().await?;
    Ok(())
}

async fn client_after(s: &TestServer) -> GrpcInferenceServiceClient<Channel> {
    client(s).await
}
