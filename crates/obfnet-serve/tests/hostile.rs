//! Every class of bad input gets a clear 4xx (or 503) with a JSON error; the server survives.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

async fn expect_400(s: &TestServer, body: &serde_json::Value, needle: &str) {
    let r = post_json(&infer_url(s), body).await;
    assert_eq!(r.status, 400, "{body}: {}", String::from_utf8_lossy(&r.body));
    assert!(
        r.error().contains(needle),
        "error {:?} should mention {needle:?}",
        r.error()
    );
}

fn input(shape: serde_json::Value, datatype: &str, data: serde_json::Value) -> serde_json::Value {
    json!({"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]})
}

#[tokio::test]
async fn malformed_json_and_schema() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    for body in [
        &b"{not json"[..],
        b"",
        b"[]",
        b"{\"inputs\": 5}",
        &[0xff, 0xfe, 0x00],
    ] {
        let r = request(
            "POST",
            &infer_url(&s),
            &[("content-type", "application/json")],
            body.to_vec(),
        )
        .await;
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(r.error().contains("JSON"), "{}", r.error());
    }
    expect_400(
        &s,
        &json!({"inputs": [{"name": "input", "datatype": "UINT8", "data": [1]}]}),
        "JSON",
    )
    .await;
    expect_400(
        &s,
        &input(json!([784]), "UINT8", json!(vec!["a"; 784])),
        "numbers",
    )
    .await;
    expect_400(&s, &input(json!([784]), "UINT8", json!({"x": 1})), "numbers").await;
    expect_400(
        &s,
        &json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8"}]}),
        "no data",
    )
    .await;
    // Deeply nested arrays: rejected by the JSON parser's depth limit, not a stack overflow.
    let deep = format!(
        "{{\"inputs\":[{{\"name\":\"input\",\"shape\":[784],\"datatype\":\"UINT8\",\"data\":{}1{}}}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = request("POST", &infer_url(&s), &[], deep).await;
    assert_eq!(r.status, 400);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn inputs_datatypes_shapes_and_values() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let img = json!(image_u8(0));
    // Inputs.
    expect_400(&s, &json!({"inputs": []}), "exactly one").await;
    let one = input(json!([784]), "UINT8", img.clone())["inputs"][0].clone();
    expect_400(&s, &json!({"inputs": [one.clone(), one.clone()]}), "exactly one").await;
    let mut wrong_name = one.clone();
    wrong_name["name"] = json!("pixels");
    expect_400(&s, &json!({"inputs": [wrong_name]}), "unknown input").await;
    // Datatypes.
    for dt in ["INT32", "FP64", "BYTES", "FP16", "uint8", ""] {
        expect_400(&s, &input(json!([784]), dt, img.clone()), "datatype").await;
    }
    // Shapes.
    for shape in [
        json!([]),
        json!([100]),
        json!([1, 783]),
        json!([0, 784]),
        json!([-1, 784]),
        json!([2, 2, 28, 28]),
        json!([1, 1, 1, 1, 1, 784]),
        json!([1, 29, 28]),
    ] {
        expect_400(&s, &input(shape, "UINT8", img.clone()), "shape").await;
    }
    expect_400(&s, &input(json!([100000, 784]), "UINT8", json!([])), "limit").await;
    expect_400(
        &s,
        &input(json!([9223372036854775807i64, 784]), "UINT8", json!([])),
        "limit",
    )
    .await;
    // Element counts.
    expect_400(&s, &input(json!([2, 784]), "UINT8", img.clone()), "needs 1568").await;
    let mut long = image_u8(0);
    long.push(1);
    expect_400(&s, &input(json!([784]), "UINT8", json!(long)), "more than").await;
    // Values: UINT8 range, FP32 finiteness.
    for bad in [json!(256), json!(-1), json!(1.5)] {
        let mut v = vec![json!(0); 784];
        v[5] = bad.clone();
        expect_400(&s, &input(json!([784]), "UINT8", json!(v)), "0..=255").await;
    }
    let r = request(
        "POST",
        &infer_url(&s),
        &[],
        format!("{{\"inputs\":[{{\"name\":\"input\",\"shape\":[784],\"datatype\":\"FP32\",\"data\":[1e999{}]}}]}}", ",0".repeat(783)),
    )
    .await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let mut nan = normalise(&image_u8(0));
    nan[100] = f32::NAN;
    let raw: Vec<u8> = nan.iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = json!({"inputs": [{"name": "input", "shape": [784], "datatype": "FP32", "parameters": {"binary_data_size": 3136}}]});
    let (body, h) = binary_body(&header, &raw);
    let r = request(
        "POST",
        &infer_url(&s),
        &[("inference-header-content-length", &h.to_string())],
        body,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error().contains("NaN or infinite") && r.error().contains("element 100"),
        "{}",
        r.error()
    );
    let mut inf = normalise(&image_u8(0));
    inf[0] = f32::INFINITY;
    let raw: Vec<u8> = inf.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (body, h) = binary_body(&header, &raw);
    let r = request(
        "POST",
        &infer_url(&s),
        &[("inference-header-content-length", &h.to_string())],
        body,
    )
    .await;
    assert_eq!(r.status, 400);
    // Outputs and parameters.
    let mut req = input(json!([784]), "UINT8", img.clone());
    req["outputs"] = json!([{"name": "logits"}]);
    expect_400(&s, &req, "unknown output").await;
    req["outputs"] = json!([{"name": "label"}, {"name": "label"}]);
    expect_400(&s, &req, "twice").await;
    req["outputs"] = json!([{"name": "label", "parameters": {"classification": 3}}]);
    expect_400(&s, &req, "classification").await;
    req["outputs"] = json!([{"name": "label", "parameters": {"binary_data": "yes"}}]);
    expect_400(&s, &req, "boolean").await;
    // Unknown model / version on infer.
    let r = post_json(
        &s.url("/v2/models/other/infer"),
        &input(json!([784]), "UINT8", img.clone()),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post_json(
        &s.url("/v2/models/lenet5/versions/7/infer"),
        &input(json!([784]), "UINT8", img),
    )
    .await;
    assert_eq!(r.status, 404);
    // Still serving.
    assert_eq!(
        post_json(&infer_url(&s), &u8_request(&image_u8(1))).await.status,
        200
    );
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn binary_framing_errors() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let img = image_u8(4);
    let header = json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}]});
    let (body, h) = binary_body(&header, &img);
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        ("abc".into(), body.clone(), "not a number"),
        ("-3".into(), body.clone(), "not a number"),
        ((body.len() + 1).to_string(), body.clone(), "only"),
        ((h - 1).to_string(), body.clone(), "JSON"),
        (
            h.to_string(),
            body[..body.len() - 1].to_vec(),
            "binary_data_size is 784",
        ),
        (h.to_string(), [&body[..], &[0u8; 3][..]].concat(), "not claimed"),
    ];
    for (hv, b, needle) in cases {
        let r = request(
            "POST",
            &infer_url(&s),
            &[("inference-header-content-length", &hv)],
            b,
        )
        .await;
        assert_eq!(r.status, 400, "{hv}: {}", String::from_utf8_lossy(&r.body));
        assert!(
            r.error().contains(needle),
            "{hv}: {:?} should mention {needle:?}",
            r.error()
        );
    }
    // binary_data_size without the header; size of the wrong type; data and binary together.
    let r = post_json(&infer_url(&s), &header).await;
    assert!(r.status == 400 && r.error().contains("without an Inference-Header-Content-Length"));
    let bad = json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "parameters": {"binary_data_size": "784"}}]});
    let (b, h) = binary_body(&bad, &img);
    let r = request(
        "POST",
        &infer_url(&s),
        &[("inference-header-content-length", &h.to_string())],
        b,
    )
    .await;
    assert!(
        r.status == 400 && r.error().contains("non-negative integer"),
        "{}",
        r.error()
    );
    // Wrong byte count for the dtype: FP32 needs 4 bytes per value.
    let fp = json!({"inputs": [{"name": "input", "shape": [784], "datatype": "FP32", "parameters": {"binary_data_size": 784}}]});
    let (b, h) = binary_body(&fp, &img);
    let r = request(
        "POST",
        &infer_url(&s),
        &[("inference-header-content-length", &h.to_string())],
        b,
    )
    .await;
    assert!(r.status == 400 && r.error().contains("3136"), "{}", r.error());
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn body_limit_gives_413() -> TestResult {
    let mut c = cfg();
    c.max_body_bytes = 4096;
    let s = TestServer::start(c, lenet()).await;
    let r = post_json(
        &infer_url(&s),
        &input(json!([784]), "FP32", json!(normalise(&image_u8(0)))),
    )
    .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.error().contains("4096"));
    // A small request still fits.
    let header = json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}]});
    let (b, h) = binary_body(&header, &image_u8(0));
    let r = request(
        "POST",
        &infer_url(&s),
        &[("inference-header-content-length", &h.to_string())],
        b,
    )
    .await;
    assert_eq!(r.status, 200);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn overload_gives_503_and_timeout_gives_503() -> TestResult {
    let mut c = cfg();
    c.max_in_flight = 1;
    let slow = SlowBackend {
        delay: Duration::from_millis(600),
        sizes: Default::default(),
    };
    let s = TestServer::start(c, Box::new(slow)).await;
    // Four at once against one permit and a 600 ms model: some are refused, none is lost.
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let url = infer_url(&s);
            tokio::spawn(async move { post_json(&url, &u8_request(&image_u8(i))).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await?;
        if r.status == 503 {
            assert!(r.error().contains("overloaded"), "{}", r.error());
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&503) && statuses.contains(&200), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    s.stop().await?;
    overload_timeout_part().await
}

async fn overload_timeout_part() -> TestResult {
    let mut c = cfg();
    c.request_timeout_ms = 100;
    let slow = SlowBackend {
        delay: Duration::from_millis(500),
        sizes: Default::default(),
    };
    let s = TestServer::start(c, Box::new(slow)).await;
    let r = post_json(&infer_url(&s), &u8_request(&image_u8(0))).await;
    assert_eq!(r.status, 503);
    assert!(r.error().contains("timed out"), "{}", r.error());
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_panicking_model_gives_500_and_the_server_lives_on() -> TestResult {
    let s = TestServer::start(cfg(), Box::new(PanicBackend)).await;
    for _ in 0..2 {
        let r = post_json(&infer_url(&s), &u8_request(&image_u8(0))).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.error(), "internal server error", "no internals leak");
    }
    assert_eq!(get(&s.url("/v2/health/live")).await.status, 200);
    s.stop().await?;
    Ok(())
}
