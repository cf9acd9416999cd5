//! Limits that act before any work (load shedding, capped typed body decoding, decompressed
//! size), gzip both ways, and honest health probes.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

fn slow(delay_ms: u64) -> Box<dyn obfnet_serve::InferenceBackend> {
    Box::new(SlowBackend {
        delay: Duration::from_millis(delay_ms),
        sizes: Default::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_server_sheds_with_retry_after_and_health_stays_up() -> TestResult {
    let mut c = cfg();
    c.max_concurrent_requests = 2;
    c.batching.max_batch_size = 1;
    let s = TestServer::start(c, slow(300)).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let url = infer_url(&s);
            tokio::spawn(async move { post_json(&url, &u8_request(&image_u8(i))).await })
        })
        .collect();
    // While the two admitted requests run, the probes are not shed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(&s.url("/v2/health/ready")).await.status, 200);
    assert_eq!(get(&s.url("/v2/health/live")).await.status, 200);
    let mut shed = 0;
    let mut ok = 0;
    for t in tasks {
        let r = t.await?;
        match r.status {
            200 => ok += 1,
            503 => {
                shed += 1;
                assert_eq!(
                    r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
                    Some("1")
                );
                assert!(r.error().contains("overloaded"), "{}", r.error());
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 2 && shed >= 1, "ok {ok}, shed {shed}");
    // Shed requests never reached the model.
    assert_eq!(s.state.stats().requests, ok);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn json_numbers_are_capped_while_parsing() -> TestResult {
    let mut c = cfg();
    c.max_request_rows = 2;
    c.max_body_bytes = 8 << 20;
    let s = TestServer::start(c, lenet()).await;
    // 2 rows × 784 is the most a request may hold; 1 M numbers are refused mid-parse.
    let body = format!(
        "{{\"inputs\":[{{\"name\":\"input\",\"shape\":[784],\"datatype\":\"FP32\",\"data\":[0{}]}}]}}",
        ",0".repeat(1_000_000)
    );
    let r = request("POST", &infer_url(&s), &[], body).await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("more than the 1568 values"), "{}", r.error());
    // Many inputs share the cap too.
    let one = json!({"name": "input", "shape": [784], "datatype": "UINT8", "data": image_u8(0)});
    let r = post_json(&infer_url(&s), &json!({"inputs": vec![one; 3]})).await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("more than"), "{}", r.error());
    // A huge shape list is refused while parsing.
    let r = post_json(
        &infer_url(&s),
        &json!({"inputs": [{"name": "input", "shape": vec![1; 100_000], "datatype": "UINT8", "data": [0]}]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("dimensions"), "{}", r.error());
    // Unknown parameters of any size are skipped, not stored; a good request still works.
    let mut good = u8_request(&image_u8(3));
    good["parameters"] = json!({"note": vec![vec![1; 100]; 100], "binary_data_output": false});
    let r = post_json(&infer_url(&s), &good).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    s.stop().await?;
    Ok(())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("deflate");
    e.finish().expect("deflate")
}

#[tokio::test]
async fn gzip_and_deflate_request_bodies_and_gzip_replies() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    let body = serde_json::to_vec(&u8_request(&image_u8(4)))?;
    let plain = request("POST", &infer_url(&s), &[], body.clone()).await;
    assert_eq!(plain.status, 200);
    let want = plain.json()["outputs"][0]["data"].clone();
    for (enc, data) in [("gzip", gzip(&body)), ("deflate", deflate(&body))] {
        let r = request("POST", &infer_url(&s), &[("content-encoding", enc)], data).await;
        assert_eq!(r.status, 200, "{enc}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["outputs"][0]["data"], want, "{enc}");
    }
    // The binary extension compressed as a whole (what tritonclient does).
    let header = json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}]});
    let (bin, h) = binary_body(&header, &image_u8(4));
    let r = request(
        "POST",
        &infer_url(&s),
        &[
            ("content-encoding", "gzip"),
            ("inference-header-content-length", &h.to_string()),
        ],
        gzip(&bin),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["outputs"][0]["data"], want);
    // A reply is gzipped for a client that accepts it.
    let r = request(
        "POST",
        &infer_url(&s),
        &[("accept-encoding", "gzip")],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-encoding").and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut text)?;
    let v: serde_json::Value = serde_json::from_slice(&text)?;
    assert_eq!(v["outputs"][0]["data"], want);
    // Corrupt gzip: a 400, not a hang or a 500.
    let mut bad = gzip(&body);
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    bad.truncate(bad.len() - 4);
    let r = request("POST", &infer_url(&s), &[("content-encoding", "gzip")], bad).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // An encoding the server does not take: 415.
    let r = request("POST", &infer_url(&s), &[("content-encoding", "br")], body).await;
    assert_eq!(r.status, 415);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_gzip_bomb_is_a_413_on_the_decompressed_size() -> TestResult {
    let mut c = cfg();
    c.max_body_bytes = 64 * 1024;
    let s = TestServer::start(c, lenet()).await;
    // 64 MiB of spaces inside valid JSON compress to ~64 KiB... of which far less is sent: the
    // compressed body is well under the limit; the decompressed one is 1000× over it.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(b"{\"inputs\": ")?;
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..64 {
        e.write_all(&spaces)?;
    }
    e.write_all(b"[]}")?;
    let bomb = e.finish()?;
    assert!(bomb.len() < 64 * 1024, "bomb is {} bytes compressed", bomb.len());
    let r = request("POST", &infer_url(&s), &[("content-encoding", "gzip")], bomb).await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.error().contains("65536"), "{}", r.error());
    assert_eq!(get(&s.url("/v2/health/live")).await.status, 200);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn readiness_and_liveness_fall_when_the_batcher_dies() -> TestResult {
    let s = TestServer::start(cfg(), lenet()).await;
    assert_eq!(
        get(&s.url("/v2/health/ready")).await.json(),
        json!({"ready": true})
    );
    let mut grpc = crate::grpc::client(&s).await;
    assert!(
        grpc.server_ready(obfnet_serve::pb::ServerReadyRequest {})
            .await?
            .into_inner()
            .ready
    );
    s.state.stop_batcher_for_test();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.state.live() {
        assert!(std::time::Instant::now() < deadline, "batcher did not stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = get(&s.url("/v2/health/ready")).await;
    assert_eq!((r.status, r.json()), (503, json!({"ready": false})));
    let r = get(&s.url("/v2/health/live")).await;
    assert_eq!((r.status, r.json()), (503, json!({"live": false})));
    let r = get(&s.url("/v2/models/lenet5/ready")).await;
    assert_eq!(r.json()["ready"], false);
    assert!(
        !grpc
            .server_ready(obfnet_serve::pb::ServerReadyRequest {})
            .await?
            .into_inner()
            .ready
    );
    assert!(
        !grpc
            .server_live(obfnet_serve::pb::ServerLiveRequest {})
            .await?
            .into_inner()
            .live
    );
    // Inference fails cleanly (no hang, no panic).
    let r = post_json(&infer_url(&s), &u8_request(&image_u8(0))).await;
    assert!(r.status == 503 || r.status == 500, "{}", r.status);
    s.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_caller_never_finds_its_own_permit_still_taken() -> TestResult {
    // One model slot; each request is sent as soon as the previous answer arrived. The batcher
    // must free a request's slot before answering it, or the next request can find the slot
    // still taken and get a spurious 503 (seen as the MQTT QoS 0 test's 503 at bound 4).
    // Timing-dependent: the old order failed only now and then, so the loop is long.
    let mut c = cfg();
    c.max_in_flight = 1;
    c.batching.max_batch_size = 1;
    c.batching.max_wait_us = 0;
    let state = obfnet_serve::AppState::new(c, Box::new(obfnet_serve::NoopBackend::default()))?;
    let header = obfnet_serve::oip::InputHeader {
        dtype: obfnet_serve::oip::InputType::Uint8,
        n: 1,
    };
    for i in 0..3000 {
        let r = state
            .predict(header, |_, _| {
                Ok(obfnet_serve::oip::InputValues::U8(vec![0; 784]))
            })
            .await;
        assert!(r.is_ok(), "request {i}: {:?}", r.err());
    }
    Ok(())
}
