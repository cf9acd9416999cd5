//! Every REST endpoint of the Open Inference Protocol, JSON and binary.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn health_and_metadata_endpoints() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let r = get(&s.url("/v2/health/live")).await;
    assert_eq!((r.status, r.json()), (200, json!({"live": true})));
    let r = get(&s.url("/v2/health/ready")).await;
    assert_eq!((r.status, r.json()), (200, json!({"ready": true})));
    let r = get(&s.url("/v2")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "obfnet");
    assert!(
        r.json()["extensions"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("binary_tensor_data")))
    );
    for path in ["/v2/models/lenet5", "/v2/models/lenet5/versions/1"] {
        let r = get(&s.url(path)).await;
        assert_eq!(r.status, 200, "{path}");
        let m = r.json();
        assert_eq!(m["name"], "lenet5");
        assert_eq!(m["versions"], json!(["1"]));
        assert_eq!(m["platform"], "obfnet_burn_flex");
        assert_eq!(
            m["inputs"],
            json!([{"name": "input", "datatype": "FP32", "shape": [-1, 784]}])
        );
        assert_eq!(
            m["outputs"][0],
            json!({"name": "label", "datatype": "INT64", "shape": [-1]})
        );
        assert_eq!(
            m["outputs"][1],
            json!({"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]})
        );
        // the model's id, which bundles refer to: sha256 of its weights file (no bundles issued)
        let weights = std::fs::read(model_dir().join("model.safetensors"))?;
        assert_eq!(
            m["parameters"],
            json!({"sha256": obfnet_core::hex(&obfnet_core::sha256(&weights))})
        );
    }
    for path in ["/v2/models/lenet5/ready", "/v2/models/lenet5/versions/1/ready"] {
        let r = get(&s.url(path)).await;
        assert_eq!(
            (r.status, r.json()["ready"].clone()),
            (200, json!(true)),
            "{path}"
        );
    }
    for path in [
        "/v2/models/other",
        "/v2/models/lenet5/versions/2",
        "/v2/models/other/ready",
        "/nope",
    ] {
        let r = get(&s.url(path)).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.error().is_empty());
    }
    // Request ids: assigned when missing, echoed when given.
    let r = get(&s.url("/v2/health/live")).await;
    assert!(r.headers.get("x-request-id").is_some());
    let r = request(
        "GET",
        &s.url("/v2"),
        &[("x-request-id", "abc-1")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(
        r.headers.get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"abc-1"[..])
    );
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn json_infer_uint8_and_fp32_agree_with_the_model() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let imgs: Vec<Vec<u8>> = (0..3).map(image_u8).collect();
    let flat_u8: Vec<u8> = imgs.concat();
    let x: Vec<f32> = normalise(&flat_u8);
    let want = direct_probabilities(&x, 3);

    // UINT8 raw pixels, batch of 3, flat data, with a request id.
    let req = json!({"id": "r1", "inputs": [{"name": "input", "shape": [3, 784], "datatype": "UINT8", "data": flat_u8}]});
    let r = post_json(&infer_url(&s), &req).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["id"], "r1");
    assert_eq!(v["model_name"], "lenet5");
    assert_eq!(v["outputs"][0]["name"], "label");
    assert_eq!(v["outputs"][0]["shape"], json!([3]));
    assert_eq!(v["outputs"][1]["shape"], json!([3, 10]));
    let probs: Vec<f32> = serde_json::from_value(v["outputs"][1]["data"].clone())?;
    assert!(close(&probs, &want, 1e-5), "{probs:?} vs {want:?}");
    let labels: Vec<i64> = serde_json::from_value(v["outputs"][0]["data"].clone())?;
    for (i, l) in labels.iter().enumerate() {
        let row = &want[i * 10..(i + 1) * 10];
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (j, p)| if *p > row[b] { j } else { b });
        assert_eq!(*l as usize, best);
    }

    // FP32 normalised values, nested [n,1,28,28] data, versioned path: the same answer.
    let nested: Vec<Vec<Vec<Vec<f32>>>> = x
        .chunks(784)
        .map(|img| vec![img.chunks(28).map(|r| r.to_vec()).collect()])
        .collect();
    let req =
        json!({"inputs": [{"name": "input", "shape": [3, 1, 28, 28], "datatype": "FP32", "data": nested}]});
    let r = post_json(&s.url("/v2/models/lenet5/versions/1/infer"), &req).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let probs: Vec<f32> = serde_json::from_value(r.json()["outputs"][1]["data"].clone())?;
    assert!(close(&probs, &want, 1e-5));
    assert!(r.json().get("id").is_none());

    // Only the label when asked for it; single image shapes [784] and [28,28].
    for shape in [json!([784]), json!([28, 28]), json!([1, 28, 28])] {
        let req = json!({"inputs": [{"name": "input", "shape": shape, "datatype": "UINT8", "data": imgs[0]}],
                         "outputs": [{"name": "label"}]});
        let r = post_json(&infer_url(&s), &req).await;
        assert_eq!(r.status, 200, "{shape}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["outputs"].as_array().map(Vec::len), Some(1));
        assert_eq!(r.json()["outputs"][0]["data"][0], labels[0]);
    }
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn binary_extension_in_and_out_without_content_type() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let img = image_u8(11);
    let x = normalise(&img);
    let want = direct_probabilities(&x, 1);
    let raw: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = json!({
        "inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "parameters": {"binary_data_size": raw.len()}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": true}}, {"name": "probabilities", "parameters": {"binary_data": true}}]
    });
    let (body, h) = binary_body(&header, &raw);
    let h = h.to_string();
    // No Content-Type at all, as the binary extension allows.
    let r = request(
        "POST",
        &infer_url(&s),
        &[("inference-header-content-length", &h)],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (json_part, bin) = split_binary(&r);
    assert_eq!(json_part["outputs"][0]["parameters"]["binary_data_size"], 8);
    assert_eq!(json_part["outputs"][1]["parameters"]["binary_data_size"], 40);
    assert!(json_part["outputs"][0].get("data").is_none());
    let label = i64s(&bin[..8]);
    let probs = f32s(&bin[8..]);
    assert!(close(&probs, &want, 1e-5));
    let best = want
        .iter()
        .enumerate()
        .fold(0, |b, (j, p)| if *p > want[b] { j } else { b });
    assert_eq!(label, vec![best as i64]);

    // UINT8 binary input, JSON output; request-wide binary_data_output for the default outputs.
    let header = json!({"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}]});
    let (body, h) = binary_body(&header, &img);
    let r = request(
        "POST",
        &infer_url(&s),
        &[("inference-header-content-length", &h.to_string())],
        body,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let probs: Vec<f32> = serde_json::from_value(r.json()["outputs"][1]["data"].clone())?;
    assert!(close(&probs, &want, 1e-5));
    let header = json!({"parameters": {"binary_data_output": true},
                        "inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "data": img}]});
    let r = post_json(&infer_url(&s), &header).await;
    assert_eq!(r.status, 200);
    let (json_part, bin) = split_binary(&r);
    assert_eq!(json_part["outputs"].as_array().map(Vec::len), Some(2));
    assert_eq!(bin.len(), 48);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn scores_off_returns_only_the_label() -> TestResult {
    let mut c = cfg();
    c.scores = false;
    let s = TestServer::start(c, lenet()).await;
    let r = get(&s.url("/v2/models/lenet5")).await;
    assert_eq!(r.json()["outputs"].as_array().map(Vec::len), Some(1));
    let r = post_json(&infer_url(&s), &u8_request(&image_u8(1))).await;
    assert_eq!(r.status, 200);
    let outs = r.json()["outputs"].clone();
    assert_eq!(outs.as_array().map(Vec::len), Some(1));
    assert_eq!(outs[0]["name"], "label");
    let mut req = u8_request(&image_u8(1));
    req["outputs"] = json!([{"name": "probabilities"}]);
    let r = post_json(&infer_url(&s), &req).await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("turned off"), "{}", r.error());
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn metrics_count_requests_failures_and_batches() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    assert_eq!(
        post_json(&infer_url(&s), &u8_request(&image_u8(2))).await.status,
        200
    );
    assert_eq!(
        post_json(&infer_url(&s), &json!({"inputs": []})).await.status,
        400
    );
    let r = get(&s.url("/metrics")).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    for name in [
        "obfnet_requests_total{",
        "obfnet_request_failures_total{",
        "obfnet_request_duration_seconds_bucket{",
        "obfnet_batch_size_bucket",
        "obfnet_batch_duration_seconds_bucket",
        "obfnet_in_flight_requests",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(text.contains(r#"reason="input""#), "{text}");
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight() -> TestResult {
    let backend = SlowBackend {
        delay: std::time::Duration::from_millis(400),
        sizes: Default::default(),
    };
    let s = TestServer::start(cfg(), Box::new(backend)).await;
    let url = infer_url(&s);
    let pending = tokio::spawn(async move { post_json(&url, &u8_request(&image_u8(3))).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let addr = s.addr;
    s.stop().await?;
    let r = pending.await?;
    assert_eq!(r.status, 200, "the request in flight was answered");
    // And the listener is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}

#[tokio::test]
async fn obfuscated_inputs_use_the_same_endpoint_without_a_flag() -> TestResult {
    use obfnet_nn::burn::prelude::*;
    let s = TestServer::start(cfg(), lenet()).await;
    // Two ObfNet2 nets (random init) in front of the model, as a device would run them.
    let device = obfnet_nn::default_device();
    let stack = obfnet_nn::ObfStack::new(obfnet_nn::ObfArch::ObfNet2, &[1, 2], 28, 28, &device)?.valid();
    let imgs: Vec<u8> = (0..2).flat_map(|i| image_u8(100 + i)).collect();
    let x = Tensor::<2>::from_data(
        TensorData::new(normalise(&imgs), [2, 784]),
        &device.clone().inner(),
    );
    let obf: Vec<f32> = stack
        .forward_all(x)
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| format!("{e:?}"))?; // [K=2, 2, 784]
    for net in obf.chunks(2 * 784) {
        // f32 obfuscator output: sent as FP32, used as is.
        let req = json!({"inputs": [{"name": "input", "shape": [2, 784], "datatype": "FP32", "data": net}]});
        let r = post_json(&infer_url(&s), &req).await;
        assert_eq!(r.status, 200);
        let probs: Vec<f32> = serde_json::from_value(r.json()["outputs"][1]["data"].clone())?;
        assert!(close(&probs, &direct_probabilities(net, 2), 1e-5));
        // The same output u8-encoded on the device (back to the byte scale, rounded, clamped):
        // sent as UINT8, normalised by the server exactly like a raw image.
        let n = obfnet_core::Normalisation::MNIST;
        let bytes: Vec<u8> = net
            .iter()
            .map(|&v| n.invert(v).round().clamp(0.0, 255.0) as u8)
            .collect();
        let req =
            json!({"inputs": [{"name": "input", "shape": [2, 784], "datatype": "UINT8", "data": bytes}]});
        let r = post_json(&infer_url(&s), &req).await;
        assert_eq!(r.status, 200);
        let probs: Vec<f32> = serde_json::from_value(r.json()["outputs"][1]["data"].clone())?;
        assert!(close(&probs, &direct_probabilities(&normalise(&bytes), 2), 1e-5));
    }
    s.stop().await?;
    Ok(())
}
