//! Load generator of scripts/soak.sh: mixed valid and hostile traffic over REST, gRPC and MQTT
//! against a running `obfnet serve`, with a report every interval and a verdict at the end.
//!
//! `cargo run --release -p obfnet-serve --example soak -- --addr HOST:PORT --mqtt-port PORT
//!  --server-pid PID [--duration 300] [--interval 30] [--warmup 60]`
//!
//! Traffic: REST (JSON, binary extension, gzip), gRPC (raw and typed), MQTT v5 QoS 1 (with
//! retry after 5 s, as a device does across a broker restart; duplicates dropped by correlation
//! id) and QoS 0; hostile requests of every class (malformed JSON, wrong shapes, too many
//! numbers, gzip bombs, unknown encodings, malformed protobuf, MQTT bodies of garbage, replies
//! asked on a topic outside the prefix). Every interval: requests, errors by class, p50/p99
//! latency of valid requests, server RSS. Fails (exit 1) on any 5xx, a lost QoS 1 request (no
//! reply after 6 tries), a valid request not answered 200, or RSS growth over 10 % after warm-up.
#![allow(clippy::collapsible_if)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use obfnet_serve::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use obfnet_serve::pb::model_infer_request::InferInputTensor;
use obfnet_serve::pb::{InferTensorContents, ModelInferRequest};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Default)]
struct Stats {
    requests: BTreeMap<&'static str, u64>,
    classes: BTreeMap<String, u64>,
    latencies_ms: Vec<f64>,
    failures: Vec<String>,
}

type Shared = Arc<Mutex<Stats>>;

fn note(s: &Shared, proto: &'static str, class: String, latency: Option<Duration>) {
    if let Ok(mut st) = s.lock() {
        *st.requests.entry(proto).or_default() += 1;
        if class.contains("5xx") || class.contains("FAIL") {
            if st.failures.len() < 20 {
                st.failures.push(format!("{proto}: {class}"));
            }
        }
        *st.classes.entry(class).or_default() += 1;
        if let Some(l) = latency {
            st.latencies_ms.push(l.as_secs_f64() * 1e3);
        }
    }
}

fn image(i: u32) -> Vec<u8> {
    (0..784u32)
        .map(|p| ((p.wrapping_mul(2_654_435_761).wrapping_add(i.wrapping_mul(40_503))) >> 24) as u8)
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn gzip_bomb() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(b"{\"inputs\": ");
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..32 {
        let _ = e.write_all(&spaces);
    }
    let _ = e.write_all(b"[]}");
    e.finish().unwrap_or_default()
}

/// One REST request kind: (label, headers, body, valid?).
fn rest_request(i: u32, bomb: &[u8]) -> (&'static str, Vec<(&'static str, String)>, Vec<u8>, bool) {
    let img = image(i);
    let json_body = serde_json::to_vec(
        &json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": img}]}),
    )
    .unwrap_or_default();
    match i % 10 {
        0..=3 => ("json", vec![], json_body, true),
        4 | 5 => {
            let header = br#"{"inputs":[{"name":"input","shape":[1,784],"datatype":"UINT8","parameters":{"binary_data_size":784}}],"outputs":[{"name":"label"}]}"#;
            let mut b = header.to_vec();
            b.extend_from_slice(&img);
            (
                "binary",
                vec![("inference-header-content-length", header.len().to_string())],
                b,
                true,
            )
        }
        6 => (
            "gzip",
            vec![
                ("content-encoding", "gzip".into()),
                ("accept-encoding", "gzip".into()),
            ],
            gzip(&json_body),
            true,
        ),
        7 => match (i / 10) % 5 {
            0 => (
                "hostile-json",
                vec![],
                b"{\"inputs\": [{\"name\":".to_vec(),
                false,
            ),
            1 => (
                "hostile-shape",
                vec![],
                br#"{"inputs":[{"name":"input","shape":[3],"datatype":"UINT8","data":[1,2,3]}]}"#.to_vec(),
                false,
            ),
            2 => {
                let mut b =
                    br#"{"inputs":[{"name":"input","shape":[784],"datatype":"FP32","data":[0"#.to_vec();
                for _ in 0..300_000 {
                    b.extend_from_slice(b",0");
                }
                b.extend_from_slice(b"]}]}");
                ("hostile-too-many", vec![], b, false)
            }
            3 => (
                "hostile-gzip-bomb",
                vec![("content-encoding", "gzip".into())],
                bomb.to_vec(),
                false,
            ),
            _ => (
                "hostile-encoding",
                vec![("content-encoding", "br".into())],
                json_body,
                false,
            ),
        },
        _ => ("json", vec![], json_body, true),
    }
}

async fn rest_loop(url: String, stats: Shared, stop: Instant, worker: u32) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let bomb = gzip_bomb();
    let mut i = worker * 1_000_000;
    while Instant::now() < stop {
        i += 1;
        let (kind, headers, body, valid) = rest_request(i, &bomb);
        let mut req = http::Request::builder().method("POST").uri(&url);
        for (k, v) in &headers {
            req = req.header(*k, v.as_str());
        }
        let Ok(req) = req.body(Full::new(Bytes::from(body))) else {
            continue;
        };
        let t = Instant::now();
        let class = match client.request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let _ = resp.into_body().collect().await;
                match (status, valid) {
                    (200, true) => "rest ok".to_string(),
                    (s, _) if s >= 500 => format!("rest 5xx {s} ({kind})"),
                    (s, true) => format!("rest FAIL valid {kind} got {s}"),
                    (200, false) => format!("rest FAIL hostile {kind} got 200"),
                    (s, false) => format!("rest 4xx {s} ({kind})"),
                }
            }
            Err(e) => format!(
                "rest FAIL transport error ({kind}): {}",
                e.to_string().chars().take(60).collect::<String>()
            ),
        };
        note(&stats, "rest", class, valid.then(|| t.elapsed()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn grpc_loop(addr: String, stats: Shared, stop: Instant) {
    let Ok(mut c) = GrpcInferenceServiceClient::connect(format!("http://{addr}")).await else {
        note(&stats, "grpc", "grpc FAIL connect".into(), None);
        return;
    };
    let mut i = 0u32;
    while Instant::now() < stop {
        i += 1;
        let img = image(i);
        let (kind, req, valid) = match i % 4 {
            0 | 1 => (
                "raw",
                ModelInferRequest {
                    model_name: "lenet5".into(),
                    inputs: vec![InferInputTensor {
                        name: "input".into(),
                        datatype: "UINT8".into(),
                        shape: vec![1, 784],
                        ..Default::default()
                    }],
                    raw_input_contents: vec![img],
                    ..Default::default()
                },
                true,
            ),
            2 => (
                "typed",
                ModelInferRequest {
                    model_name: "lenet5".into(),
                    inputs: vec![InferInputTensor {
                        name: "input".into(),
                        datatype: "UINT8".into(),
                        shape: vec![784],
                        contents: Some(InferTensorContents {
                            uint_contents: img.iter().map(|&b| u32::from(b)).collect(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                true,
            ),
            _ => (
                "hostile-shape",
                ModelInferRequest {
                    model_name: "lenet5".into(),
                    inputs: vec![InferInputTensor {
                        name: "input".into(),
                        datatype: "UINT8".into(),
                        shape: vec![5, 784],
                        ..Default::default()
                    }],
                    raw_input_contents: vec![vec![0; 10]],
                    ..Default::default()
                },
                false,
            ),
        };
        let t = Instant::now();
        let class = match (c.model_infer(req).await, valid) {
            (Ok(_), true) => "grpc ok".to_string(),
            (Ok(_), false) => format!("grpc FAIL hostile {kind} answered"),
            (Err(s), _) => {
                let code = s.code();
                match code {
                    tonic::Code::InvalidArgument if !valid => format!("grpc invalid-argument ({kind})"),
                    tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::Unavailable => {
                        format!("grpc 5xx {code:?} ({kind})")
                    }
                    _ => format!("grpc FAIL {code:?} ({kind})"),
                }
            }
        };
        note(&stats, "grpc", class, valid.then(|| t.elapsed()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Pending {
    first_sent: Instant,
    last_sent: Instant,
    tries: u32,
    payload: Vec<u8>,
    valid: bool,
}

async fn mqtt_loop(port: u16, stats: Shared, stop: Instant) {
    let mut o = MqttOptions::new("soak-device", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(600))
        .set_max_packet_size(Some(1 << 20));
    let (client, mut events) = AsyncClient::new(o, 1024);
    let reply_topic = "obfnet/reply/soak-device".to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, String)>();
    let sub = client.clone();
    let rt = reply_topic.clone();
    let ev = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = sub.subscribe(rt.clone(), QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let props = p.properties.unwrap_or_default();
                    let status = props
                        .user_properties
                        .iter()
                        .find(|(k, _)| k == "status")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let corr = props
                        .correlation_data
                        .and_then(|c| <[u8; 8]>::try_from(c.as_ref()).ok())
                        .map(u64::from_be_bytes);
                    if let Some(c) = corr {
                        let _ = tx.send((c, status));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    let publish = |corr: u64, payload: Vec<u8>, topic: String, qos: QoS| {
        let client = client.clone();
        async move {
            let props = PublishProperties {
                response_topic: Some(topic),
                correlation_data: Some(Bytes::from(corr.to_be_bytes().to_vec())),
                ..Default::default()
            };
            client
                .publish_with_properties("obfnet/infer/lenet5", qos, false, payload, props)
                .await
        }
    };
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut corr = 0u64;
    let retry_after = Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    // Keep sending until `stop`, then give outstanding requests 35 s (6 tries) to finish.
    let drain_until = stop + Duration::from_secs(35);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= drain_until || (now >= stop && pending.is_empty()) {
                    break;
                }
                if now < stop {
                    corr += 1;
                    let img = image(corr as u32);
                    let (payload, valid) = if corr % 10 == 9 {
                        (b"\x00\x01garbage{".to_vec(), false)
                    } else {
                        (serde_json::to_vec(&json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "data": img}]})).unwrap_or_default(), true)
                    };
                    match corr % 20 {
                        5 => {
                            // QoS 0 (may be lost by design; only counted).
                            let _ = publish(corr, payload, reply_topic.clone(), QoS::AtMostOnce).await;
                            note(&stats, "mqtt", "mqtt qos0 sent".into(), None);
                        }
                        15 => {
                            // A reply topic outside the prefix: must never be answered.
                            let _ = publish(corr, payload, "soak/elsewhere".into(), QoS::AtLeastOnce).await;
                            note(&stats, "mqtt", "mqtt outside-prefix sent".into(), None);
                        }
                        _ => {
                            let _ = publish(corr, payload.clone(), reply_topic.clone(), QoS::AtLeastOnce).await;
                            pending.insert(corr, Pending { first_sent: now, last_sent: now, tries: 1, payload, valid });
                        }
                    }
                }
                // Retry QoS 1 requests without a reply (a device's timeout + retry).
                let mut lost = Vec::new();
                for (c, p) in pending.iter_mut() {
                    if now.duration_since(p.last_sent) >= retry_after {
                        if p.tries >= 6 {
                            lost.push(*c);
                            continue;
                        }
                        p.tries += 1;
                        p.last_sent = now;
                        let _ = publish(*c, p.payload.clone(), reply_topic.clone(), QoS::AtLeastOnce).await;
                        note(&stats, "mqtt", "mqtt retry".into(), None);
                    }
                }
                for c in lost {
                    pending.remove(&c);
                    note(&stats, "mqtt", format!("mqtt FAIL lost QoS 1 request {c}"), None);
                }
            }
            Some((c, status)) = rx.recv() => {
                if c % 20 == 15 {
                    note(&stats, "mqtt", "mqtt FAIL answered outside the prefix".into(), None);
                    continue;
                }
                let Some(p) = pending.remove(&c) else {
                    // A duplicate (at-least-once) or a QoS 0 reply.
                    let class = if c % 20 == 5 { "mqtt qos0 answered" } else { "mqtt duplicate reply dropped" };
                    note(&stats, "mqtt", class.into(), None);
                    continue;
                };
                let class = match (status.as_str(), p.valid) {
                    ("200", true) => "mqtt ok".to_string(),
                    (s, _) if s.starts_with('5') => format!("mqtt 5xx {s}"),
                    ("400", false) => "mqtt 4xx 400 (garbage)".to_string(),
                    (s, v) => format!("mqtt FAIL status {s} (valid {v})"),
                };
                note(&stats, "mqtt", class, p.valid.then(|| p.first_sent.elapsed()));
            }
        }
    }
    ev.abort();
}

fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> Result<T, BoxError> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad value for {name}").into()),
        None => default.ok_or_else(|| format!("{name} is required").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let addr: String = arg(&args, "--addr", None)?;
    let mqtt_port: u16 = arg(&args, "--mqtt-port", None)?;
    let pid: u32 = arg(&args, "--server-pid", None)?;
    let duration: u64 = arg(&args, "--duration", Some(300))?;
    let interval: u64 = arg(&args, "--interval", Some(30))?;
    let warmup: u64 = arg(&args, "--warmup", Some(60))?;
    let started = Instant::now();
    let stop = started + Duration::from_secs(duration);
    let stats: Shared = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..3 {
        tasks.push(tokio::spawn(rest_loop(
            format!("http://{addr}/v2/models/lenet5/infer"),
            stats.clone(),
            stop,
            w,
        )));
    }
    tasks.push(tokio::spawn(grpc_loop(addr.clone(), stats.clone(), stop)));
    tasks.push(tokio::spawn(mqtt_loop(mqtt_port, stats.clone(), stop)));

    let mut rss_after_warmup = None;
    let mut rss_max_after = 0u64;
    let mut last = Stats::default();
    let mut ticker = tokio::time::interval(Duration::from_secs(interval));
    ticker.tick().await;
    loop {
        let done = tasks.iter().all(|t| t.is_finished());
        let t = started.elapsed().as_secs();
        let rss = rss_kib(pid);
        let snapshot = match stats.lock() {
            Ok(mut st) => std::mem::take(&mut *st),
            Err(_) => Stats::default(),
        };
        let mut lat = snapshot.latencies_ms.clone();
        lat.sort_by(f64::total_cmp);
        println!(
            "{}",
            json!({
                "t_s": t,
                "requests": snapshot.requests,
                "classes": snapshot.classes,
                "p50_ms": (percentile(&lat, 0.5) * 1000.0).round() / 1000.0,
                "p99_ms": (percentile(&lat, 0.99) * 1000.0).round() / 1000.0,
                "server_rss_kib": rss,
            })
        );
        let _ = std::io::stdout().flush();
        if let Some(r) = rss {
            if t >= warmup {
                if rss_after_warmup.is_none() {
                    rss_after_warmup = Some(r);
                }
                rss_max_after = rss_max_after.max(r);
            }
        }
        for (k, v) in snapshot.requests {
            *last.requests.entry(k).or_default() += v;
        }
        for (k, v) in snapshot.classes {
            *last.classes.entry(k).or_default() += v;
        }
        last.failures.extend(snapshot.failures);
        last.latencies_ms.extend(snapshot.latencies_ms);
        if done {
            break;
        }
        ticker.tick().await;
    }
    let mut lat = last.latencies_ms.clone();
    lat.sort_by(f64::total_cmp);
    let growth = rss_after_warmup.map(|w| (rss_max_after as f64 - w as f64) / w as f64);
    let bad: u64 = last
        .classes
        .iter()
        .filter(|(k, _)| k.contains("5xx") || k.contains("FAIL"))
        .map(|(_, v)| v)
        .sum();
    let rss_ok = growth.is_some_and(|g| g <= 0.10);
    println!(
        "{}",
        json!({
            "summary": true,
            "duration_s": started.elapsed().as_secs(),
            "requests": last.requests,
            "classes": last.classes,
            "p50_ms": percentile(&lat, 0.5),
            "p99_ms": percentile(&lat, 0.99),
            "rss_after_warmup_kib": rss_after_warmup,
            "rss_max_after_warmup_kib": rss_max_after,
            "rss_growth": growth,
            "failures": last.failures,
            "pass": bad == 0 && rss_ok,
        })
    );
    if bad > 0 || !rss_ok {
        eprintln!("soak FAILED: {bad} bad outcomes, RSS growth {growth:?}");
        std::process::exit(1);
    }
    Ok(())
}
