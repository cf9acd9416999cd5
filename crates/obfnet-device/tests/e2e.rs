//! End to end: the device library against a real `obfnet serve` (its library, in this
//! process, on loopback ports) over REST, gRPC and MQTT through a real mosquitto broker
//! (device → broker → serve's MQTT worker → device).
//!
//! The server model is a LeNet-5 with seeded random weights saved as `obfnet train-model`
//! saves one; the bundle holds two small dense nets made here and bound to that model's
//! sha256. Every answer is checked against the model run directly (no server) on exactly the
//! values the device sent: same label, same scores.
//!
//! Samples: the first MNIST test digits when `OBFNET_DATA_DIR` holds MNIST; otherwise generated
//! images (printed as a skip of the MNIST part; `OBFNET_REQUIRE_DATA=1` fails instead).
//! MQTT tests need the `mosquitto` binary (skipped with a notice without it, failed under
//! `OBFNET_REQUIRE_MOSQUITTO=1`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use obfnet_core::runtime::Wire;
use obfnet_core::{Bundle, LayerWeights, Manifest, Normalisation};
use obfnet_device::{
    Device, DeviceConfig, ErrorClass, MqttSettings, RetryPolicy, Sample, TransportConfig, WeightType,
    WireFormat,
};
use obfnet_serve::{AppState, InferenceBackend, LeNetBackend, MqttConfig, MqttWorker, ServeConfig};

struct Fixture {
    _dir: tempfile::TempDir,
    model_dir: PathBuf,
    bundle: PathBuf,
    sha: [u8; 32],
}

/// The server model and a bundle made for it (once per test binary).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let model_dir = dir.path().join("server");
        let device = obfnet_nn::default_device();
        device.seed(11);
        let model = obfnet_nn::LeNet::new(&obfnet_nn::LeNetConfig::default(), &device);
        let report = obfnet_nn::ServerReport {
            test_accuracy: 0.0,
            epoch_losses: vec![],
            train_seconds: 0.0,
            first_epoch_seconds: 0.0,
            step_ms_median: 0.0,
            eval_seconds: 0.0,
            train_samples: 0,
        };
        let sha = obfnet_nn::save_server_model(
            &model,
            &obfnet_nn::ServerTrainConfig::default(),
            &report,
            &model_dir,
        )
        .expect("save model");
        let bundle = dir.path().join("obfnets.obfb");
        std::fs::write(&bundle, make_bundle(&sha).to_bytes().expect("encode bundle")).expect("write bundle");
        Fixture {
            _dir: dir,
            model_dir,
            bundle,
            sha,
        }
    })
}

/// Two nets `784 → 784` (identity plus seeded noise, clipped to the pixel range).
fn make_bundle(sha: &[u8; 32]) -> Bundle {
    let zero = "0".repeat(64);
    let mut text = format!(
        "obfnet-bundle 1\ncreated-by obfnet-device-tests\ndataset mnist\n\
         input shape=1,28,28 dtype=f32\nnormalise scale=0.003921569 mean=0.1307 std=0.3081\n\
         output shape=1,28,28 dtype=f32\nserver-model sha256={}\nnets 2\n",
        obfnet_core::hex(sha)
    );
    for i in 0..2 {
        text.push_str(&format!(
            "net index={i} name=n{i} arch=test seed={i} layers=1 sha256={zero}\n\
             layer net={i} index=0 kind=dense in=784 out=784 act=none\n"
        ));
    }
    text.push_str("end\n");
    let manifest = Manifest::parse(&text).expect("manifest");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
    };
    let weights = (0..2)
        .map(|_| {
            let mut w = vec![0.0f32; 784 * 784];
            for (i, v) in w.iter_mut().enumerate() {
                *v = if i / 784 == i % 784 { 1.0 } else { 0.0 } + noise();
            }
            vec![LayerWeights {
                weight: w,
                bias: (0..784).map(|_| noise()).collect(),
            }]
        })
        .collect();
    Bundle::new(manifest, weights).expect("bundle")
}

fn require_data() -> bool {
    std::env::var("OBFNET_REQUIRE_DATA").is_ok_and(|v| v == "1")
}

/// MNIST test digits (with labels) when the data is there, else generated images.
fn samples(n: usize) -> Vec<Sample> {
    if let Some(dir) = std::env::var_os("OBFNET_DATA_DIR").map(|d| PathBuf::from(d).join("mnist")) {
        let images = dir.join("t10k-images-idx3-ubyte");
        let labels = dir.join("t10k-labels-idx1-ubyte");
        let (images, labels) = match (images.is_file(), images.with_extension("gz").is_file()) {
            (true, _) => (images, labels),
            (false, true) => (
                PathBuf::from(format!("{}.gz", images.display())),
                PathBuf::from(format!("{}.gz", labels.display())),
            ),
            _ => (images, labels),
        };
        if images.is_file() {
            return obfnet_device::read_samples(
                &[images],
                obfnet_device::InputFormat::Idx,
                &obfnet_device::SampleSpec {
                    input_len: 784,
                    image: Some((28, 28)),
                    labels: Some(&labels),
                    limit: Some(n),
                    mfcc: None,
                },
            )
            .expect("read MNIST");
        }
    }
    assert!(
        !require_data(),
        "OBFNET_REQUIRE_DATA=1 but no MNIST under $OBFNET_DATA_DIR/mnist"
    );
    eprintln!("SKIP (MNIST part): OBFNET_DATA_DIR has no MNIST; using generated images");
    (0..n as u32)
        .map(|s| Sample {
            name: format!("generated#{s}"),
            data: (0..784u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(s.wrapping_mul(40_503)) >> 24) as u8)
                .collect(),
            label: None,
            read_us: 0.0,
        })
        .collect()
}

/// The server, in a runtime of its own (the device's transports run their own runtimes).
struct Server {
    rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    fn start(cfg: ServeConfig) -> Server {
        let backend = LeNetBackend::load(&fixture().model_dir).expect("load model");
        Server::start_with(cfg, Box::new(backend))
    }

    fn start_with(mut cfg: ServeConfig, backend: Box<dyn InferenceBackend>) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        cfg.addr = "127.0.0.1:0".into();
        let state = AppState::new(cfg, backend).expect("state");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = rt.block_on(async {
            let listener = obfnet_serve::bind("127.0.0.1:0").await.expect("bind");
            let addr = obfnet_serve::local_addr(&listener).expect("addr");
            let app = obfnet_serve::router(state.clone());
            tokio::spawn(obfnet_serve::serve(
                listener,
                app,
                None,
                Duration::from_secs(2),
                async {
                    let _ = rx.await;
                },
            ));
            addr
        });
        Server {
            rt,
            addr,
            state,
            stop: Some(stop),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn policy(timeout_ms: u64, retries: u32) -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_millis(timeout_ms),
        retries,
        backoff: Duration::from_millis(50),
    }
}

fn device_cfg(transport: TransportConfig) -> DeviceConfig {
    let mut cfg = DeviceConfig::new(transport);
    cfg.bundle = Some(fixture().bundle.clone());
    cfg.server_model_sha256 = Some(fixture().sha);
    cfg.policy = policy(5000, 2);
    cfg
}

/// Sends `samples` and checks every answer against the model run directly on the values the
/// device sent (label equal, scores within 1e-5). Returns the total number of sends.
fn check_answers(device: &mut Device, samples: &[Sample], wire: WireFormat, raw: bool) -> u32 {
    let mut direct = LeNetBackend::load(&fixture().model_dir).expect("model");
    let norm = Normalisation::MNIST;
    let mut sends = 0;
    let mut labels = std::collections::BTreeSet::new();
    let mut times: [Vec<f64>; 3] = Default::default();
    for s in samples {
        let o = device.infer(s).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        sends += o.attempts;
        times[0].push(o.obfuscate_us);
        times[1].push(o.encode_us);
        times[2].push(o.round_trip_us);
        let mut x: Vec<f32> = if raw {
            s.data.iter().map(|&b| norm.apply(b)).collect()
        } else {
            device.last_output().to_vec()
        };
        if !raw && wire == WireFormat::U8 {
            Wire::U8.round_trip(&mut x, norm);
        }
        let logits = direct.logits(&x, 1).expect("direct forward");
        let want = obfnet_serve::oip::Prediction::from_logits(&logits, 1, 10);
        assert_eq!(
            o.label, want.labels[0],
            "{}: server label differs from the direct answer",
            s.name
        );
        let scores = o.scores.as_ref().expect("the server returns scores");
        assert!(
            scores
                .iter()
                .zip(&want.probabilities)
                .all(|(a, b)| (a - b).abs() <= 1e-5),
            "{}: scores differ",
            s.name
        );
        assert_eq!(o.net.is_none(), raw);
        labels.insert(o.label);
    }
    eprintln!(
        "{} samples answered, {} distinct labels, {sends} sends",
        samples.len(),
        labels.len()
    );
    sends
}

#[test]
fn rest_and_grpc_answers_equal_the_models_direct_answers() {
    let server = Server::start(ServeConfig::default());
    let samples = samples(12);
    for (transport, weights, wire) in [
        (
            TransportConfig::Rest { url: server.url() },
            WeightType::Bundle,
            WireFormat::F32,
        ),
        (
            TransportConfig::Rest { url: server.url() },
            WeightType::Int8,
            WireFormat::U8,
        ),
        (
            TransportConfig::Grpc { url: server.url() },
            WeightType::Bundle,
            WireFormat::U8,
        ),
        (
            TransportConfig::Grpc { url: server.url() },
            WeightType::Int8,
            WireFormat::F32,
        ),
    ] {
        let mut cfg = device_cfg(transport);
        cfg.weights = weights;
        cfg.wire = wire;
        let mut device = Device::connect(&cfg).expect("connect");
        eprintln!("{} weights={weights:?} wire={wire:?}", device.describe());
        check_answers(&mut device, &samples, wire, false);
        assert_eq!(
            device.runtime().map(|r| r.weights()),
            Some(if weights == WeightType::Int8 {
                obfnet_core::DType::I8
            } else {
                obfnet_core::DType::F32
            })
        );
    }
    // raw mode: same endpoint, the sample unobfuscated
    for transport in [
        TransportConfig::Rest { url: server.url() },
        TransportConfig::Grpc { url: server.url() },
    ] {
        let mut cfg = device_cfg(transport);
        cfg.raw = true;
        let mut device = Device::connect(&cfg).expect("connect raw");
        check_answers(&mut device, &samples, WireFormat::U8, true);
    }
}

#[test]
fn the_whole_run_prints_a_line_per_sample_and_a_json_summary() {
    let server = Server::start(ServeConfig::default());
    let dir = tempfile::tempdir().expect("temp");
    let raw = dir.path().join("three.raw");
    let data: Vec<u8> = samples(3).into_iter().flat_map(|s| s.data).collect();
    std::fs::write(&raw, data).expect("write");
    let mut cfg = device_cfg(TransportConfig::Rest { url: server.url() });
    cfg.samples = vec![raw];
    cfg.json = true;
    let mut out = Vec::new();
    let summary = obfnet_device::run_device(&cfg, &mut out).expect("run");
    let text = String::from_utf8(out).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let last: obfnet_device::Summary = serde_json::from_str(lines[3]).expect("summary JSON");
    assert_eq!(
        (last.answered, &last.net_uses, last.attempts),
        (summary.answered, &summary.net_uses, summary.attempts)
    );
    assert_eq!(summary.answered, 3);
    assert_eq!(summary.net_uses.iter().sum::<usize>(), 3);
    let first: obfnet_device::Outcome = serde_json::from_str(lines[0]).expect("outcome JSON");
    assert!(first.round_trip_us > 0.0 && first.net.is_some());
}

#[test]
fn refusals_and_failures_have_their_error_class() {
    let server = Server::start(ServeConfig {
        api_keys: vec!["device-key-1".into()],
        ..ServeConfig::default()
    });
    let s = &samples(1)[0];
    for transport in [
        TransportConfig::Rest { url: server.url() },
        TransportConfig::Grpc { url: server.url() },
    ] {
        // a bad key: rejected (4)
        let mut cfg = device_cfg(transport.clone());
        cfg.api_key = Some("wrong".into());
        let err = Device::connect(&cfg)
            .and_then(|mut d| d.infer(s))
            .expect_err("bad key");
        assert_eq!(err.class(), ErrorClass::Rejected, "{err}");
        assert_eq!(err.exit_code(), 4);
        // the right key works
        cfg.api_key = Some("device-key-1".into());
        let mut d = Device::connect(&cfg).expect("good key");
        d.infer(s).expect("answered");
        // a bundle for another model: refused before sending (4)
        cfg.server_model_sha256 = Some([0x42; 32]);
        let err = Device::connect(&cfg).expect_err("wrong model");
        assert!(matches!(err, obfnet_device::Error::ModelMismatch { .. }), "{err}");
        assert_eq!(err.exit_code(), 4);
        // nothing pinned: the server publishes its model's sha256, the device checks that
        cfg.server_model_sha256 = None;
        let d = Device::connect(&cfg).expect("checked against the published sha256");
        assert_eq!(d.model_check(), "model sha256 published by the server");
    }
    // a server that publishes no model sha256 (the no-op model): no way to check the bundle,
    // refused as bad input (2) unless pinned or skipped explicitly
    let noop = Server::start_with(
        ServeConfig::default(),
        Box::new(obfnet_serve::NoopBackend::default()),
    );
    for transport in [
        TransportConfig::Rest { url: noop.url() },
        TransportConfig::Grpc { url: noop.url() },
    ] {
        let mut cfg = device_cfg(transport);
        cfg.server_model_sha256 = None;
        let err = Device::connect(&cfg).expect_err("no model check");
        assert_eq!(err.exit_code(), 2, "{err}");
        cfg.skip_model_check = true;
        let d = Device::connect(&cfg).expect("explicitly unchecked");
        assert_eq!(d.model_check(), "skipped");
        cfg.server_model_sha256 = Some(fixture().sha);
        let d = Device::connect(&cfg).expect("pinned");
        assert_eq!(d.model_check(), "model sha256 pinned");
    }
    // nobody listening: unreachable (3), after the retries
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    for transport in [
        TransportConfig::Rest {
            url: format!("http://{closed}"),
        },
        TransportConfig::Grpc {
            url: format!("http://{closed}"),
        },
        TransportConfig::Mqtt(MqttSettings::new("127.0.0.1", closed.port())),
    ] {
        let mut cfg = device_cfg(transport);
        cfg.policy = policy(300, 1);
        let t = Instant::now();
        let err = Device::connect(&cfg)
            .and_then(|mut d| d.infer(s))
            .expect_err("unreachable");
        assert_eq!(err.class(), ErrorClass::Unreachable, "{err}");
        assert_eq!(err.exit_code(), 3);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    // bad input (2): a sample of the wrong size, a corrupt bundle
    let mut cfg = device_cfg(TransportConfig::Rest { url: server.url() });
    cfg.api_key = Some("device-key-1".into());
    let mut d = Device::connect(&cfg).expect("connect");
    let short = Sample {
        name: "short".into(),
        data: vec![0; 100],
        label: None,
        read_us: 0.0,
    };
    assert_eq!(d.infer(&short).expect_err("short").exit_code(), 2);
    let dir = tempfile::tempdir().expect("temp");
    let broken = dir.path().join("broken.obfb");
    let mut bytes = std::fs::read(&fixture().bundle).expect("bundle");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&broken, bytes).expect("write");
    cfg.bundle = Some(broken);
    assert_eq!(Device::connect(&cfg).expect_err("corrupt").exit_code(), 2);
}

/// `obfnet serve --bundle`: the server checks the bundles it issues at start, publishes the
/// model's and the bundles' sha256 in its model metadata (REST and gRPC), and the device
/// refuses a bundle file the server did not issue.
#[test]
fn the_server_publishes_model_and_bundle_sha256_and_the_device_checks_its_bundle() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("temp");
    // the same nets, quantised: a valid bundle for the same model, but not the issued file
    let int8 = dir.path().join("obfnets-int8.obfb");
    let q = Bundle::from_bytes(&std::fs::read(&f.bundle).expect("read"))
        .and_then(|b| b.quantize_int8())
        .and_then(|b| b.to_bytes())
        .expect("quantise");
    std::fs::write(&int8, q).expect("write");
    let issued = obfnet_core::hex(&obfnet_core::sha256(&std::fs::read(&f.bundle).expect("read")));
    let server = Server::start(ServeConfig {
        bundles: vec![f.bundle.clone()],
        ..ServeConfig::default()
    });
    for transport in [
        TransportConfig::Rest { url: server.url() },
        TransportConfig::Grpc { url: server.url() },
    ] {
        // what the server publishes, read over the protocol
        let mut t =
            obfnet_device::transport::open(&transport, "lenet5", None, policy(5000, 1)).expect("open");
        let m = t
            .model_metadata()
            .expect("metadata")
            .expect("REST and gRPC have metadata");
        assert_eq!(m["parameters"]["sha256"], obfnet_core::hex(&f.sha), "{m}");
        assert_eq!(m["parameters"]["bundle_sha256"], issued.as_str(), "{m}");
        // the issued bundle, nothing pinned: both checks pass, and it answers
        let mut cfg = device_cfg(transport.clone());
        cfg.server_model_sha256 = None;
        let mut d = Device::connect(&cfg).expect("issued bundle");
        assert_eq!(
            d.model_check(),
            "model sha256 published by the server; bundle sha256 issued by the server"
        );
        check_answers(&mut d, &samples(2), WireFormat::F32, false);
        // quantised on the device at load: still the issued file
        cfg.weights = WeightType::Int8;
        Device::connect(&cfg).expect("issued bundle run as int8");
        // a bundle file the server did not issue: refused before sending (4)
        cfg.weights = WeightType::Bundle;
        cfg.bundle = Some(int8.clone());
        let err = Device::connect(&cfg).expect_err("not issued");
        assert!(
            matches!(err, obfnet_device::Error::BundleNotIssued { .. }),
            "{err}"
        );
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains(&issued), "{err}");
        // with --skip-model-check the bundle check still holds: the server said which it issued
        cfg.skip_model_check = true;
        assert!(matches!(
            Device::connect(&cfg),
            Err(obfnet_device::Error::BundleNotIssued { .. })
        ));
    }
    // both files issued: both accepted
    let both = Server::start(ServeConfig {
        bundles: vec![f.bundle.clone(), int8.clone()],
        ..ServeConfig::default()
    });
    let mut cfg = device_cfg(TransportConfig::Rest { url: both.url() });
    cfg.bundle = Some(int8.clone());
    Device::connect(&cfg).expect("second issued bundle");
    // the server refuses at start to issue a bundle made for another model, or a broken one
    let foreign = dir.path().join("foreign.obfb");
    std::fs::write(&foreign, make_bundle(&[0x42; 32]).to_bytes().expect("encode")).expect("write");
    let broken = dir.path().join("broken.obfb");
    std::fs::write(&broken, b"obfnet-bundle 1\nnot a bundle").expect("write");
    for (bad, why) in [(&foreign, "server model"), (&broken, "broken.obfb")] {
        let backend = LeNetBackend::load(&f.model_dir).expect("load model");
        let cfg = ServeConfig {
            bundles: vec![bad.clone()],
            ..ServeConfig::default()
        };
        let err = AppState::new(cfg, Box::new(backend)).expect_err("refused bundle");
        let msg = err.to_string();
        assert!(msg.contains("bundles") && msg.contains(why), "{msg}");
    }
}

// ---------------------------------------------------------------- MQTT through mosquitto

fn mosquitto() -> Option<PathBuf> {
    let found = std::env::var_os("OBFNET_MOSQUITTO")
        .map(PathBuf::from)
        .or_else(|| {
            let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default();
            dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
            dirs.into_iter()
                .map(|d| d.join("mosquitto"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            !std::env::var("OBFNET_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1"),
            "OBFNET_REQUIRE_MOSQUITTO=1 but no mosquitto binary"
        );
        eprintln!("SKIP: mosquitto not installed; MQTT device test skipped");
    }
    found
}

/// A mosquitto on a free loopback port, with persistence, restartable on the same port.
struct Broker {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start(bin: PathBuf) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             autosave_interval 1\nmax_queued_messages 10000\n",
            dir.path().display()
        );
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
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("config");
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
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(5), "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
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

fn start_worker(server: &Server, port: u16) -> tokio::sync::oneshot::Sender<()> {
    let worker = MqttWorker::new(
        server.state.clone(),
        MqttConfig {
            port,
            client_id: Some(format!("worker-{port}")),
            ..MqttConfig::default()
        },
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    server.rt.spawn(worker.run(async {
        let _ = rx.await;
    }));
    tx
}

#[test]
fn mqtt_through_mosquitto_answers_and_survives_a_broker_restart() {
    let Some(bin) = mosquitto() else { return };
    let mut broker = Broker::start(bin);
    let server = Server::start(ServeConfig::default());
    let _stop_worker = start_worker(&server, broker.port);
    let samples = samples(10);
    let mut cfg = device_cfg(TransportConfig::Mqtt(MqttSettings::new("127.0.0.1", broker.port)));
    cfg.policy = policy(1500, 8);
    let mut device = Device::connect(&cfg).expect("connect to the broker");
    eprintln!("{}", device.describe());
    // the worker may still be subscribing: the device's retries cover that too
    check_answers(&mut device, &samples[..4], WireFormat::F32, false);

    // restart the broker while the device is sending: no request may be lost
    broker.stop();
    let restart = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        broker.spawn();
        broker
    });
    let sends = check_answers(&mut device, &samples[4..], WireFormat::F32, false);
    let _broker = restart.join().expect("restart thread");
    // every request answered (check_answers panics otherwise); how many sends it took
    eprintln!(
        "broker restart: {} requests answered with {sends} sends",
        samples.len() - 4
    );

    // raw over MQTT too (the bundle gives the sample size)
    cfg.raw = true;
    let mut raw = Device::connect(&cfg).expect("raw device");
    check_answers(&mut raw, &samples[..2], WireFormat::U8, true);
}

/// The device program as a process (`obfnet-device-min`, the same options `obfnet device`
/// takes): answers, exit codes 4 (wrong model) and 3 (nothing listening); peak memory printed
/// when `/usr/bin/time` is there.
#[test]
fn the_device_program_answers_and_exits_with_the_documented_codes() {
    let server = Server::start(ServeConfig::default());
    let dir = tempfile::tempdir().expect("temp");
    let raw = dir.path().join("digits.raw");
    let data: Vec<u8> = samples(20).into_iter().flat_map(|s| s.data).collect();
    std::fs::write(&raw, data).expect("write");
    let bin = env!("CARGO_BIN_EXE_obfnet-device-min");
    let sha = obfnet_core::hex(&fixture().sha);
    let bundle = fixture().bundle.display().to_string();
    let url = server.url();
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["--bundle".into(), bundle.clone(), "--format".into(), "raw".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(raw.display().to_string());
        let time = std::path::Path::new("/usr/bin/time");
        let out = if time.is_file() {
            Command::new(time).arg("-v").arg(bin).args(&args).output()
        } else {
            Command::new(bin).args(&args).output()
        }
        .expect("run the device program");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if let Some(l) = stderr.lines().find(|l| l.contains("Maximum resident set size")) {
            eprintln!("device program {extra:?}: {}", l.trim());
        }
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    };
    for t in [["--rest", url.as_str()], ["--grpc", url.as_str()]] {
        let (code, stdout, stderr) = run(&[t[0], t[1], "--server-model-sha256", &sha, "--weights", "int8"]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            stdout.lines().filter(|l| l.contains("label=")).count(),
            20,
            "{stdout}"
        );
        eprintln!("{}", stdout.lines().last().unwrap_or_default());
    }
    let (code, _, stderr) = run(&["--rest", &url, "--server-model-sha256", &"42".repeat(32)]);
    assert_eq!(code, Some(4), "wrong model: {stderr}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let (code, _, stderr) = run(&[
        "--rest",
        &format!("http://{closed}"),
        "--server-model-sha256",
        &sha,
        "--retries",
        "1",
        "--timeout-ms",
        "300",
    ]);
    assert_eq!(code, Some(3), "unreachable: {stderr}");
    let (code, _, _) = run(&["--rest", &url, "--bogus"]);
    assert_eq!(code, Some(2));
}
