//! Dynamic batching: concurrent requests run as one forward pass (checked with the engine's
//! counters and the backend's record of batch sizes, not with timing).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use obfnet_serve::BatchConfig;

use crate::common::*;

#[tokio::test]
async fn concurrent_requests_share_forward_passes() -> TestResult {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let backend = SlowBackend {
        delay: Duration::from_millis(5),
        sizes: sizes.clone(),
    };
    let mut c = cfg();
    // The first request of a batch waits up to 3 s for company; 16 fill a batch at once.
    c.batching = BatchConfig {
        max_batch_size: 16,
        max_wait_us: 3_000_000,
    };
    let s = TestServer::start(c, Box::new(backend)).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let url = infer_url(&s);
            tokio::spawn(async move { post_json(&url, &u8_request(&image_u8(i))).await })
        })
        .collect();
    for t in tasks {
        let r = t.await?;
        assert_eq!(r.status, 200);
        // SlowBackend's logits are 0..9 for every image, so the label is 9 for each.
        assert_eq!(r.json()["outputs"][0]["data"][0], 9);
    }
    let stats = s.state.stats();
    let seen = sizes.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(stats.requests, 16);
    assert_eq!(stats.rows, 16);
    assert_eq!(seen.iter().sum::<usize>(), 16);
    assert!(
        stats.batches < 16 && stats.largest_batch >= 2,
        "no batching happened: {stats:?}, sizes {seen:?}"
    );
    assert!(seen.iter().all(|&n| n <= 16), "{seen:?}");
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn batches_respect_the_maximum_and_results_stay_with_their_request() -> TestResult {
    // Real LeNet; max batch 4; requests of 3 images each cannot share a pass, 1-image ones can.
    let mut c = cfg();
    c.batching = BatchConfig {
        max_batch_size: 4,
        max_wait_us: 200_000,
    };
    let s = TestServer::start(c, lenet()).await;
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let url = infer_url(&s);
            tokio::spawn(async move {
                let img = image_u8(i);
                let r = post_json(&url, &u8_request(&img)).await;
                (img, r)
            })
        })
        .collect();
    for t in tasks {
        let (img, r) = t.await?;
        assert_eq!(r.status, 200);
        let probs: Vec<f32> = serde_json::from_value(r.json()["outputs"][1]["data"].clone())?;
        assert!(
            close(&probs, &direct_probabilities(&normalise(&img), 1), 1e-5),
            "answer of another request?"
        );
    }
    let stats = s.state.stats();
    assert_eq!(stats.rows, 8);
    assert!(stats.largest_batch <= 4, "{stats:?}");
    assert!(stats.batches >= 2, "{stats:?}");
    s.stop().await?;
    Ok(())
}
