//! The MQTT v5 worker against a real mosquitto broker on a free loopback port.
//!
//! Needs the `mosquitto` binary (Debian package `mosquitto`, installed by scripts/setup.sh).
//! Without it these tests print a notice and pass, unless `OBFNET_REQUIRE_MOSQUITTO=1` (set by
//! scripts/test.sh), where a missing broker fails them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use obfnet_serve::{AppState, MqttConfig, MqttWorker};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::common::*;

fn mosquitto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OBFNET_MOSQUITTO") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// The broker binary, or `None` (test skipped) when it is missing and not required.
fn require_mosquitto() -> Option<PathBuf> {
    match mosquitto_binary() {
        Some(p) => Some(p),
        None if std::env::var("OBFNET_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1") => {
            panic!("OBFNET_REQUIRE_MOSQUITTO=1 but no mosquitto binary found (apt-get install mosquitto)")
        }
        None => {
            eprintln!(
                "mosquitto not installed: MQTT test skipped (set OBFNET_REQUIRE_MOSQUITTO=1 to fail instead)"
            );
            None
        }
    }
}

/// A mosquitto process with persistence, on a free loopback port.
struct Broker {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

const USER: &str = "obfnet-worker";
const PASSWORD: &str = "pw-1234";

impl Broker {
    fn start(bin: PathBuf, with_password: bool) -> Broker {
        Broker::start_with(bin, with_password, false)
    }

    /// With `tls`, the listener speaks TLS with a certificate for 127.0.0.1 made here
    /// (`<dir>/cert.pem`, which clients use as their CA).
    fn start_with(bin: PathBuf, with_password: bool, tls: bool) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\nautosave_interval 1\n\
             max_queued_messages 10000\nmax_inflight_messages 100\nlog_type all\nlog_dest file {}/broker.log\n",
            dir.path().display(),
            dir.path().display()
        );
        // mosquitto started as root switches to user "mosquitto", which could not write the
        // persistence file or log into this (root-owned) directory: stay the current user.
        if let Some(user) = Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
        {
            conf.push_str(&format!("user {user}\n"));
        }
        if tls {
            let cert =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
            let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&c, cert.cert.pem()).expect("cert");
            std::fs::write(&k, cert.signing_key.serialize_pem()).expect("key");
            conf.push_str(&format!("certfile {}\nkeyfile {}\n", c.display(), k.display()));
        }
        if with_password {
            let pw = dir.path().join("passwd");
            std::fs::write(&pw, format!("{USER}:{PASSWORD}\n")).expect("password file");
            let passwd_bin = bin.with_file_name("mosquitto_passwd");
            let alt = PathBuf::from("/usr/bin/mosquitto_passwd");
            let tool = if passwd_bin.is_file() { passwd_bin } else { alt };
            let ok = Command::new(&tool)
                .arg("-U")
                .arg(&pw)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mosquitto_passwd -U failed ({})", tool.display());
            conf.push_str(&format!(
                "allow_anonymous false\npassword_file {}\n",
                pw.display()
            ));
        } else {
            conf.push_str("allow_anonymous true\n");
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("broker config");
        let mut b = Broker {
            bin,
            dir,
            port,
            child: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Graceful stop (SIGTERM: mosquitto saves its persistence file), then start again.
    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Prints the broker's log (on a failure, for the CI log).
    fn dump_log(&self) {
        let log = std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default();
        eprintln!("---- mosquitto log ----\n{log}---- end of log ----");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker_cfg(port: u16, id: &str, with_password: bool) -> MqttConfig {
    MqttConfig {
        port,
        client_id: Some(id.into()),
        username: with_password.then(|| USER.to_string()),
        password: with_password.then(|| PASSWORD.to_string()),
        keep_alive_s: 5,
        ..MqttConfig::default()
    }
}

struct RunningWorker {
    stats: Arc<obfnet_serve::mqtt::WorkerStats>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<obfnet_serve::Result<()>>,
}

fn start_worker(cfg: MqttConfig) -> RunningWorker {
    start_worker_with(cfg, crate::common::cfg(), lenet())
}

fn start_worker_with(
    cfg: MqttConfig,
    serve: obfnet_serve::ServeConfig,
    backend: Box<dyn obfnet_serve::InferenceBackend>,
) -> RunningWorker {
    let state = AppState::new(serve, backend).expect("state");
    start_worker_on(cfg, state)
}

fn start_worker_on(cfg: MqttConfig, state: AppState) -> RunningWorker {
    let worker = MqttWorker::new(state, cfg);
    let stats = worker.stats();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = rx.await;
    }));
    RunningWorker { stats, stop, task }
}

/// Waits until every worker's subscription was confirmed `n` times (once per connection).
async fn wait_subscribed(workers: &[&RunningWorker], n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while workers
        .iter()
        .any(|w| w.stats.subscribed.load(Ordering::Relaxed) < n)
    {
        assert!(Instant::now() < deadline, "workers did not (re)subscribe");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl RunningWorker {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A device: publishes requests, collects replies (by correlation data) and broker acks.
struct Device {
    client: AsyncClient,
    replies: mpsc::UnboundedReceiver<(Bytes, String, Bytes)>,
    acks: Arc<std::sync::atomic::AtomicU64>,
    replies_seen: Arc<std::sync::atomic::AtomicU64>,
    reply_topic: String,
}

async fn device(port: u16, id: &str, with_password: bool) -> Device {
    device_with(port, id, with_password, None).await
}

async fn device_with(port: u16, id: &str, with_password: bool, ca: Option<&std::path::Path>) -> Device {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    if let Some(ca) = ca {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).expect("ca");
        let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("pem");
        roots.add(der).expect("root");
        let cfg =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(cfg)),
        ));
    }
    o.set_keep_alive(Duration::from_secs(5))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(600))
        .set_max_packet_size(Some(1 << 20));
    if with_password {
        o.set_credentials(USER, PASSWORD);
    }
    let (client, mut events) = AsyncClient::new(o, 1024);
    let reply_topic = format!("obfnet/reply/{id}");
    let (tx, replies) = mpsc::unbounded_channel();
    let acks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let replies_seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (sub_client, topic, acks2, seen2) = (
        client.clone(),
        reply_topic.clone(),
        acks.clone(),
        replies_seen.clone(),
    );
    // Set once the broker confirmed the reply subscription: replies published before that are
    // not routed to this (new) session, so requests wait for it (as obfnet-device does).
    let (subscribed_tx, mut subscribed) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = sub_client.subscribe(topic.clone(), QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(true);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let props = p.properties.clone().unwrap_or_default();
                    let status = props
                        .user_properties
                        .iter()
                        .find(|(k, _)| k == "status")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let corr = props.correlation_data.unwrap_or_default();
                    seen2.fetch_add(1, Ordering::Relaxed);
                    if tx.send((corr, status, p.payload.clone())).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acks2.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), subscribed.wait_for(|s| *s))
        .await
        .expect("the device's reply subscription was not confirmed within 30 s")
        .expect("device event loop ended");
    Device {
        client,
        replies,
        acks,
        replies_seen,
        reply_topic,
    }
}

impl Device {
    async fn send(&self, corr: u32, payload: Vec<u8>, user_properties: Vec<(String, String)>) {
        self.send_with(
            corr,
            payload,
            user_properties,
            &self.reply_topic,
            QoS::AtLeastOnce,
        )
        .await;
    }

    async fn send_with(
        &self,
        corr: u32,
        payload: Vec<u8>,
        user_properties: Vec<(String, String)>,
        response_topic: &str,
        qos: QoS,
    ) {
        let props = PublishProperties {
            response_topic: Some(response_topic.to_string()),
            correlation_data: Some(Bytes::from(corr.to_be_bytes().to_vec())),
            user_properties,
            ..Default::default()
        };
        self.client
            .publish_with_properties("obfnet/infer/lenet5", qos, false, payload, props)
            .await
            .expect("queue publish");
    }

    /// Replies until `n` distinct correlation ids arrived (duplicates allowed: at least once).
    async fn collect(&mut self, n: usize, within: Duration) -> BTreeMap<u32, (String, Bytes)> {
        let mut got = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + within;
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.replies.recv()).await {
                Ok(Some((corr, status, payload))) => {
                    let id = <[u8; 4]>::try_from(corr.as_ref())
                        .map(u32::from_be_bytes)
                        .expect("4-byte correlation");
                    got.insert(id, (status, payload));
                }
                _ => break,
            }
        }
        got
    }
}

/// A JSON FP32 request for one image: well above rumqttc's default 10 KiB packet limit.
fn fp32_payload(img: &[u8]) -> Vec<u8> {
    let x = normalise(img);
    let body = json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": x}]});
    serde_json::to_vec(&body).expect("json")
}

fn label_of(payload: &[u8]) -> i64 {
    let v: serde_json::Value = serde_json::from_slice(payload).expect("reply JSON");
    v["outputs"][0]["data"][0].as_i64().expect("label")
}

fn expected_label(img: &[u8]) -> i64 {
    let p = direct_probabilities(&normalise(img), 1);
    p.iter()
        .enumerate()
        .fold(0, |b, (j, v)| if *v > p[b] { j } else { b }) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_requests_with_credentials() -> TestResult {
    let Some(bin) = require_mosquitto() else {
        return Ok(());
    };
    let broker = Broker::start(bin, true);
    let w1 = start_worker(worker_cfg(broker.port, "worker-1", true));
    let w2 = start_worker(worker_cfg(broker.port, "worker-2", true));
    let mut dev = device(broker.port, "device-a", true).await;
    // Let both workers subscribe before the load starts.
    wait_subscribed(&[&w1, &w2], 1).await;

    let n = 40u32;
    let payload_len = fp32_payload(&image_u8(0)).len();
    assert!(
        payload_len > 10 * 1024,
        "payload {payload_len} B should exceed 10 KiB"
    );
    for i in 0..n {
        dev.send(i, fp32_payload(&image_u8(i)), vec![]).await;
    }
    // One binary-extension request (UINT8 bytes after the JSON header) and one bad request.
    let header = serde_json::to_vec(
        &json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}]}),
    )?;
    let hl = header.len();
    dev.send(
        n,
        [header, image_u8(5)].concat(),
        vec![("inference-header-content-length".into(), hl.to_string())],
    )
    .await;
    dev.send(
        n + 1,
        br#"{"inputs": [{"name": "input", "shape": [3], "datatype": "UINT8", "data": [1,2,3]}]}"#.to_vec(),
        vec![],
    )
    .await;

    let got = dev.collect(n as usize + 2, Duration::from_secs(60)).await;
    let stats = |w: &RunningWorker| {
        let s = &w.stats;
        format!(
            "connections {}, subscribed {}, answered {}, dropped {}, throttled {}",
            s.connections.load(Ordering::Relaxed),
            s.subscribed.load(Ordering::Relaxed),
            s.answered.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.throttled.load(Ordering::Relaxed)
        )
    };
    assert_eq!(
        got.len(),
        n as usize + 2,
        "missing replies: have {:?}; worker-1: {}; worker-2: {}; device saw {} replies, {} acks",
        got.keys().collect::<Vec<_>>(),
        stats(&w1),
        stats(&w2),
        dev.replies_seen.load(Ordering::Relaxed),
        dev.acks.load(Ordering::Relaxed)
    );
    for i in 0..n {
        let (status, payload) = &got[&i];
        assert_eq!(status, "200");
        assert_eq!(label_of(payload), expected_label(&image_u8(i)), "reply {i}");
    }
    assert_eq!(got[&n].0, "200");
    assert_eq!(label_of(&got[&n].1), expected_label(&image_u8(5)));
    let (status, payload) = &got[&(n + 1)];
    assert_eq!(status, "400");
    let err: serde_json::Value = serde_json::from_slice(payload)?;
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains("shape")),
        "{err}"
    );

    let (a1, a2) = (
        w1.stats.answered.load(Ordering::Relaxed),
        w2.stats.answered.load(Ordering::Relaxed),
    );
    assert!(a1 >= 1 && a2 >= 1, "both workers must take requests: {a1} / {a2}");
    assert!(a1 + a2 >= u64::from(n) + 2);
    w1.stop().await;
    w2.stop().await;
    drop(broker);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_no_acknowledged_request() -> TestResult {
    let Some(bin) = require_mosquitto() else {
        return Ok(());
    };
    let mut broker = Broker::start(bin, false);
    // Slow workers (one image per pass, 40 ms each) so that requests are still queued and in
    // flight when the broker goes down. SlowBackend answers label 9 for every image.
    let slow = || {
        let mut c = crate::common::cfg();
        c.batching.max_batch_size = 1;
        let b: Box<dyn obfnet_serve::InferenceBackend> = Box::new(SlowBackend {
            delay: Duration::from_millis(40),
            sizes: Default::default(),
        });
        (c, b)
    };
    let (c1, b1) = slow();
    let w1 = start_worker_with(worker_cfg(broker.port, "worker-r1", false), c1, b1);
    let (c2, b2) = slow();
    let w2 = start_worker_with(worker_cfg(broker.port, "worker-r2", false), c2, b2);
    let mut dev = device(broker.port, "device-r", false).await;
    wait_subscribed(&[&w1, &w2], 1).await;

    let n = 60u32;
    for i in 0..n / 2 {
        dev.send(i, fp32_payload(&image_u8(i)), vec![]).await;
    }
    // Restart once the broker has acknowledged some requests, mid-run.
    let deadline = Instant::now() + Duration::from_secs(20);
    while dev.acks.load(Ordering::Relaxed) < 10 {
        assert!(Instant::now() < deadline, "broker acknowledged nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked_before = dev.acks.load(Ordering::Relaxed);
    let replied_before = dev.replies_seen.load(Ordering::Relaxed);
    let conns_before =
        w1.stats.connections.load(Ordering::Relaxed) + w2.stats.connections.load(Ordering::Relaxed);
    broker.restart();
    // mosquitto 2.0.11 restores the workers' sessions and queued requests, but drops requests
    // published on the shared subscription before a worker re-subscribed (see the MQTT module
    // docs): the device sends the rest once the workers are back, as a retrying device would.
    wait_subscribed(&[&w1, &w2], 2).await;
    for i in n / 2..n {
        dev.send(i, fp32_payload(&image_u8(i)), vec![]).await;
    }
    let got = dev.collect(n as usize, Duration::from_secs(90)).await;
    let missing: Vec<u32> = (0..n).filter(|i| !got.contains_key(i)).collect();
    if !missing.is_empty() {
        broker.dump_log();
    }
    assert!(
        missing.is_empty(),
        "lost requests {missing:?} (broker had acked {acked_before} before the restart)"
    );
    for (status, payload) in got.values() {
        assert_eq!(status, "200");
        assert_eq!(label_of(payload), 9);
    }
    // The restart really was mid-run: the broker had accepted requests not yet answered.
    assert!(
        acked_before > replied_before,
        "restart came too late to test anything: {acked_before} acked, {replied_before} answered"
    );
    eprintln!(
        "broker restarted with {acked_before} requests acknowledged and {replied_before} answered; all {n} answered after"
    );
    let conns_after =
        w1.stats.connections.load(Ordering::Relaxed) + w2.stats.connections.load(Ordering::Relaxed);
    assert!(
        conns_after >= conns_before + 2,
        "both workers reconnected: {conns_before} -> {conns_after}"
    );
    w1.stop().await;
    w2.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_device_over_tls() -> TestResult {
    let Some(bin) = require_mosquitto() else {
        return Ok(());
    };
    let broker = Broker::start_with(bin, false, true);
    let ca = broker.dir.path().join("cert.pem");
    let mut wc = worker_cfg(broker.port, "worker-tls", false);
    wc.tls_ca = Some(ca.clone());
    let w = start_worker(wc);
    let mut dev = device_with(broker.port, "device-tls", false, Some(&ca)).await;
    wait_subscribed(&[&w], 1).await;
    for i in 0..3 {
        dev.send(i, fp32_payload(&image_u8(i)), vec![]).await;
    }
    let got = dev.collect(3, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 3);
    for (i, (status, payload)) in &got {
        assert_eq!(status, "200");
        assert_eq!(label_of(payload), expected_label(&image_u8(*i)));
    }
    // A worker that does not trust the broker's certificate never gets connected.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])?;
    let wrong_ca = broker.dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, other.cert.pem())?;
    let mut bad = worker_cfg(broker.port, "worker-untrusting", false);
    bad.tls_ca = Some(wrong_ca);
    let b = start_worker(bad);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b.stats.connections.load(Ordering::Relaxed), 0);
    b.stop().await;
    w.stop().await;
    Ok(())
}

/// One UINT8 image in the binary extension (small payload).
fn binary_payload(img: &[u8]) -> (Vec<u8>, Vec<(String, String)>) {
    let header = serde_json::to_vec(
        &json!({"inputs": [{"name": "input", "shape": [784], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}]}),
    )
    .expect("json");
    let hl = header.len();
    (
        [header, img.to_vec()].concat(),
        vec![("inference-header-content-length".into(), hl.to_string())],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_floods_are_bounded_replies_stay_under_the_prefix_and_readiness_follows_the_worker() -> TestResult
{
    let Some(bin) = require_mosquitto() else {
        return Ok(());
    };
    let broker = Broker::start(bin, false);
    // The model admits 4 requests at once and takes 20 ms per image; the worker may handle 4 at
    // once, QoS 0 included. Past that it stops reading (counted as throttled) and the flood
    // waits in the broker: every request is answered 200, none is lost (loopback, and far
    // below mosquitto's queue limits), none is bounced with a 503.
    let mut serve = crate::common::cfg();
    serve.max_in_flight = 4;
    serve.batching.max_batch_size = 1;
    let state = AppState::new(
        serve,
        Box::new(SlowBackend {
            delay: Duration::from_millis(20),
            sizes: Default::default(),
        }),
    )?;
    let mut wc = worker_cfg(broker.port, "worker-bound", false);
    wc.receive_maximum = 4;
    assert!(state.ready(), "no worker yet");
    let w = start_worker_on(wc, state.clone());
    let mut dev = device(broker.port, "device-bound", false).await;
    wait_subscribed(&[&w], 1).await;
    assert!(state.ready());

    // A request naming a response topic outside obfnet/reply/: dropped, never answered.
    let (payload, props) = binary_payload(&image_u8(0));
    dev.send_with(
        999,
        payload.clone(),
        props.clone(),
        "devices/victim/inbox",
        QoS::AtLeastOnce,
    )
    .await;
    dev.send_with(
        998,
        payload.clone(),
        props.clone(),
        "obfnet/reply/#",
        QoS::AtLeastOnce,
    )
    .await;
    // A flood of QoS 0 requests.
    let n = 40u32;
    for i in 0..n {
        let (payload, props) = binary_payload(&image_u8(i));
        dev.send_with(i, payload, props, &dev.reply_topic.clone(), QoS::AtMostOnce)
            .await;
    }
    let got = dev.collect(n as usize, Duration::from_secs(60)).await;
    let missing: Vec<u32> = (0..n).filter(|i| !got.contains_key(i)).collect();
    assert!(missing.is_empty(), "lost QoS 0 requests {missing:?}");
    for (i, (status, payload)) in &got {
        assert_eq!(status, "200", "request {i}: {}", String::from_utf8_lossy(payload));
    }
    assert!(!got.contains_key(&999) && !got.contains_key(&998));
    assert_eq!(w.stats.dropped.load(Ordering::Relaxed), 2);
    assert!(
        w.stats.throttled.load(Ordering::Relaxed) >= 1,
        "the flood never hit the bound"
    );
    // The worker gone: the server is no longer ready (HTTP would answer 503 on /v2/health/ready).
    w.stop().await;
    assert!(!state.ready());
    assert!(state.live());
    Ok(())
}
