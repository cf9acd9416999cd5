//! obfnet's device client: the program an IoT device runs in front of `obfnet serve`.
//!
//! For each sample it
//! 1. reads the sensor bytes ([`samples`]: PNG, IDX, raw bytes; a WAV clip becomes a coded MFCC
//!    map **on the device** with the `no_std` front end of [`obfnet_dsp`], so raw audio never
//!    leaves it);
//! 2. picks one of the bundle's K obfuscator nets uniformly at random from the operating
//!    system's cryptographic generator ([`obfnet_core::runtime::OsRandom`]);
//! 3. runs it with the edge runtime ([`obfnet_core::runtime::Runtime`]; f32 or int8 weights)
//!    and encodes the output for the wire (`f32`, or `u8` in the raw sensor range);
//! 4. sends it over OIP REST, OIP gRPC or MQTT v5 ([`transport`]) and reports the label (and
//!    scores, if the server returns them) with the time of each step.
//!
//! `raw` mode sends the sample unobfuscated to the same endpoint (obfuscation is voluntary).
//!
//! Before sending anything the device loads the bundle with full validation and checks that it
//! was made for the server's model: against the sha256 the server publishes in its model
//! metadata (`parameters.sha256`, REST and gRPC) or a value pinned by the user (MQTT has no
//! metadata). A bundle made for another model is refused ([`Error::ModelMismatch`]), because
//! the server would answer garbage. When the server also publishes the sha256 of the bundle
//! files it issued (`parameters.bundle_sha256`, `obfnet serve --bundle`), the device's bundle
//! file must be one of them ([`Error::BundleNotIssued`]).
//!
//! # Errors and exit codes
//! Every error is an [`Error`] of one [`ErrorClass`]: bad input (exit code 2), server or broker
//! unreachable after the retries (3), request rejected by the server (4), device fault (1).
//!
//! # Example
//! ```no_run
//! use obfnet_device::{DeviceConfig, run_device, transport::TransportConfig};
//! let mut cfg = DeviceConfig::new(TransportConfig::Rest { url: "http://127.0.0.1:8000".into() });
//! cfg.bundle = Some("runs/qs-default/obfnets.obfb".into());
//! cfg.server_model_sha256 = obfnet_core::parse_hex32(&"ab".repeat(32));
//! cfg.samples = vec!["digit.png".into()];
//! let summary = run_device(&cfg, &mut std::io::stdout())?;
//! println!("{} answered", summary.answered);
//! # Ok::<(), obfnet_device::Error>(())
//! ```

pub mod error;
pub mod samples;
pub mod transport;

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use obfnet_core::runtime::{NetChoice, OsRandom, Runtime, Scratch, Wire};
use obfnet_core::{Bundle, DType};
use serde::{Deserialize, Serialize};

pub use error::{Error, ErrorClass, Result};
pub use samples::{InputFormat, MfccFrontEnd, Sample, SampleSpec, read_samples};
pub use transport::{Answer, MqttSettings, RetryPolicy, Transport, TransportConfig};

/// Weight type the device runs the nets with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightType {
    /// Whatever the bundle holds.
    Bundle,
    /// `f32` (an int8 bundle cannot be widened back: refused).
    F32,
    /// int8 per output channel (an f32 bundle is quantised at load).
    Int8,
}

/// Wire encoding of the obfuscated sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// `FP32`, 4 bytes per value.
    F32,
    /// `UINT8` in the raw sensor range (indistinguishable in form from a raw sample).
    U8,
}

impl WireFormat {
    fn wire(self) -> Wire {
        match self {
            WireFormat::F32 => Wire::F32,
            WireFormat::U8 => Wire::U8,
        }
    }
}

/// Everything a device run needs (the `obfnet device` options).
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// The obfuscator bundle (required unless `raw`).
    pub bundle: Option<PathBuf>,
    /// Weight type to run.
    pub weights: WeightType,
    /// Wire encoding.
    pub wire: WireFormat,
    /// Send samples unobfuscated (voluntary; same endpoint).
    pub raw: bool,
    /// Pinned sha256 of the server's model; checked against the bundle (and against the
    /// server's own, when it publishes one).
    pub server_model_sha256: Option<[u8; 32]>,
    /// Skip the bundle / server-model check (only for servers that publish nothing and when
    /// no pinned value is known; printed as a warning).
    pub skip_model_check: bool,
    /// Where to send.
    pub transport: TransportConfig,
    /// Model name on the server.
    pub model: String,
    /// API key (`Authorization: Bearer`), REST and gRPC.
    pub api_key: Option<String>,
    /// Timeouts and retries.
    pub policy: RetryPolicy,
    /// Sample files or directories.
    pub samples: Vec<PathBuf>,
    /// How to read them.
    pub format: InputFormat,
    /// IDX labels file for IDX samples.
    pub labels: Option<PathBuf>,
    /// Send at most this many samples.
    pub limit: Option<usize>,
    /// MFCC front end file (for WAV input).
    pub mfcc: Option<PathBuf>,
    /// FSDD directory to fit the MFCC front end from (for WAV input without `mfcc`).
    pub fsdd_dir: Option<PathBuf>,
    /// One JSON object per line instead of text.
    pub json: bool,
}

impl DeviceConfig {
    /// Defaults: bundle weights, f32 wire, model `lenet5`, default retry policy, auto format.
    pub fn new(transport: TransportConfig) -> DeviceConfig {
        DeviceConfig {
            bundle: None,
            weights: WeightType::Bundle,
            wire: WireFormat::F32,
            raw: false,
            server_model_sha256: None,
            skip_model_check: false,
            transport,
            model: "lenet5".into(),
            api_key: None,
            policy: RetryPolicy::default(),
            samples: Vec::new(),
            format: InputFormat::Auto,
            labels: None,
            limit: None,
            mfcc: None,
            fsdd_dir: None,
            json: false,
        }
    }
}

/// The result of one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Schema version ([`Outcome::VERSION`]).
    pub version: u32,
    /// Sample name.
    pub sample: String,
    /// The net used (`None` in raw mode).
    pub net: Option<usize>,
    /// The server's label.
    pub label: i64,
    /// Softmax scores, if returned.
    pub scores: Option<Vec<f32>>,
    /// The true label, when known.
    pub expected: Option<u8>,
    /// Time to read and preprocess the sample, µs ([`Sample::read_us`]).
    #[serde(default)]
    pub read_us: f64,
    /// Time to run the obfuscator, µs.
    pub obfuscate_us: f64,
    /// Time to encode the wire bytes, µs.
    pub encode_us: f64,
    /// Time from send to answer (retries included), µs.
    pub round_trip_us: f64,
    /// Sends it took.
    pub attempts: u32,
    /// Duplicate / stale replies dropped.
    pub duplicates: u32,
}

impl Outcome {
    /// The schema version written (2: `read_us`).
    pub const VERSION: u32 = 2;
}

/// Median, 90th percentile and maximum of a set of times (µs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Median.
    pub median_us: f64,
    /// 90th percentile (nearest rank).
    pub p90_us: f64,
    /// Maximum.
    pub max_us: f64,
}

impl Timing {
    fn of(mut v: Vec<f64>) -> Timing {
        if v.is_empty() {
            return Timing::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Timing {
            median_us: if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            },
            p90_us: at(0.9),
            max_us: v[v.len() - 1],
        }
    }
}

/// The summary of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Schema version ([`Summary::VERSION`]).
    pub version: u32,
    /// Transport description.
    pub transport: String,
    /// `raw`, or the weight type run (`f32` / `int8`).
    pub mode: String,
    /// Wire encoding (`f32` / `u8`; `u8` in raw mode).
    pub wire: String,
    /// Samples answered.
    pub answered: usize,
    /// Samples with a known label whose answer matched it.
    pub correct: usize,
    /// Samples with a known label.
    pub labelled: usize,
    /// Times each net was used.
    pub net_uses: Vec<usize>,
    /// Sends over all samples (retries included).
    pub attempts: u64,
    /// Duplicate / stale replies dropped.
    pub duplicates: u64,
    /// Read / preprocess time per sample.
    #[serde(default)]
    pub read: Timing,
    /// Obfuscation time per sample.
    pub obfuscate: Timing,
    /// Encoding time per sample.
    pub encode: Timing,
    /// Round-trip time per sample.
    pub round_trip: Timing,
    /// Wall time of the whole run, s.
    pub wall_s: f64,
    /// How the bundle was checked against the server ([`Device::model_check`]).
    #[serde(default)]
    pub model_check: String,
}

impl Summary {
    /// The schema version written (2: `read`, `model_check`).
    pub const VERSION: u32 = 2;
}

/// A connected device: prepared nets, a transport, buffers.
#[derive(Debug)]
pub struct Device {
    runtime: Option<Runtime>,
    scratch: Scratch,
    wire: WireFormat,
    transport: Box<dyn Transport>,
    out: Vec<f32>,
    buf: Vec<u8>,
    /// `(rows, cols)` of the input when it is an image (or MFCC map).
    image: Option<(usize, usize)>,
    input_len: usize,
    model_check: String,
}

/// Loads and validates the bundle, applies the weight type.
///
/// # Errors
/// [`Error::Bundle`] for unreadable or invalid bundles, [`Error::Config`] for an int8 bundle
/// asked to run as f32.
pub fn load_bundle(path: &std::path::Path, weights: WeightType) -> Result<Bundle> {
    load_bundle_file(path, weights).map(|(b, _)| b)
}

/// [`load_bundle`], also returning the sha256 of the bundle file as read (the id
/// `obfnet serve --bundle` publishes; computed before any weight conversion).
///
/// # Errors
/// As [`load_bundle`].
pub fn load_bundle_file(path: &std::path::Path, weights: WeightType) -> Result<(Bundle, [u8; 32])> {
    let bytes = std::fs::read(path).map_err(|e| Error::Sample {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let sha = obfnet_core::sha256(&bytes);
    let bundle = Bundle::from_bytes(&bytes).map_err(|source| Error::Bundle {
        path: path.to_path_buf(),
        source,
    })?;
    let bundle = match (weights, bundle.manifest.weights) {
        (WeightType::Int8, DType::F32) => bundle.quantize_int8().map_err(|source| Error::Bundle {
            path: path.to_path_buf(),
            source,
        }),
        (WeightType::F32, DType::I8) => Err(Error::Config {
            field: "weights",
            reason: "the bundle holds int8 weights; it cannot run as f32".into(),
        }),
        _ => Ok(bundle),
    }?;
    Ok((bundle, sha))
}

/// The server model's sha256 published in OIP model metadata (`parameters.sha256` or a
/// top-level `sha256`), if any.
pub fn published_sha256(metadata: &serde_json::Value) -> Option<[u8; 32]> {
    let v = metadata["parameters"]["sha256"]
        .as_str()
        .or_else(|| metadata["sha256"].as_str())?;
    obfnet_core::parse_hex32(v)
}

/// The sha256 of the bundle files the server issued for its model, published in OIP model
/// metadata as `parameters.bundle_sha256` (comma-separated hex); `Ok(None)` when absent.
///
/// # Errors
/// [`Error::BadReply`] when an entry is not 64 hex digits (a server that publishes a list the
/// device cannot read must not be taken as publishing none).
pub fn published_bundles(metadata: &serde_json::Value, endpoint: &str) -> Result<Option<Vec<[u8; 32]>>> {
    let Some(list) = metadata["parameters"]["bundle_sha256"].as_str() else {
        return Ok(None);
    };
    list.split(',')
        .map(|h| {
            obfnet_core::parse_hex32(h.trim()).ok_or_else(|| Error::BadReply {
                endpoint: endpoint.to_string(),
                reason: format!(
                    "parameters.bundle_sha256 entry {:?} is not 64 hex digits",
                    h.trim()
                ),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

impl Device {
    /// Loads the bundle (unless raw), opens the transport and checks the bundle belongs to the
    /// server's model.
    ///
    /// # Errors
    /// Bundle and transport errors, [`Error::ModelMismatch`], [`Error::Config`] when no model
    /// check is possible and `skip_model_check` is off.
    pub fn connect(cfg: &DeviceConfig) -> Result<Device> {
        // In raw mode a bundle, if given, only tells the sample size.
        let (bundle, raw_shape) = match (&cfg.bundle, cfg.raw) {
            (Some(p), false) => (Some(load_bundle_file(p, cfg.weights)?), None),
            (None, false) => {
                return Err(Error::Config {
                    field: "bundle",
                    reason: "an obfuscator bundle is needed (or send raw samples with --raw)".into(),
                });
            }
            (Some(p), true) => (None, Some(load_bundle(p, WeightType::Bundle)?.manifest.input)),
            (None, true) => (None, None),
        };
        let mut transport = transport::open(&cfg.transport, &cfg.model, cfg.api_key.clone(), cfg.policy)?;
        let metadata = transport.model_metadata()?;
        let published = metadata.as_ref().and_then(published_sha256);
        let issued = match &metadata {
            Some(m) => published_bundles(m, &transport.describe())?,
            None => None,
        };
        let mut input_len = metadata
            .as_ref()
            .and_then(|m| {
                m["inputs"][0]["shape"]
                    .as_array()
                    .and_then(|s| s.last()?.as_u64())
            })
            .and_then(|d| usize::try_from(d).ok());
        if let (Some(pinned), Some(server)) = (cfg.server_model_sha256, published)
            && pinned != server
        {
            return Err(Error::ModelMismatch {
                bundle: obfnet_core::hex(&pinned),
                server: obfnet_core::hex(&server),
            });
        }
        let mut image = None;
        let mut model_check = if cfg.raw { "none (raw)" } else { "skipped" }.to_string();
        if let Some((b, file_sha)) = &bundle {
            let found = b.manifest.server_model_sha256;
            match published.or(cfg.server_model_sha256) {
                Some(server) if server != found => {
                    return Err(Error::ModelMismatch {
                        bundle: obfnet_core::hex(&found),
                        server: obfnet_core::hex(&server),
                    });
                }
                Some(_) => {
                    model_check = if published.is_some() {
                        "model sha256 published by the server".into()
                    } else {
                        "model sha256 pinned".into()
                    };
                }
                None if cfg.skip_model_check => {}
                None => {
                    return Err(Error::Config {
                        field: "server model sha256",
                        reason: "the server does not publish its model's sha256: pin it with \
                                 --server-model-sha256 (sha256sum of the server's model weights file), \
                                 or pass --skip-model-check"
                            .into(),
                    });
                }
            }
            if let Some(list) = &issued {
                if !list.contains(file_sha) {
                    return Err(Error::BundleNotIssued {
                        bundle: obfnet_core::hex(file_sha),
                        published: list
                            .iter()
                            .map(|h| obfnet_core::hex(h))
                            .collect::<Vec<_>>()
                            .join(","),
                    });
                }
                model_check.push_str("; bundle sha256 issued by the server");
            }
            let out_len = b.manifest.output.numel();
            if let Some(d) = input_len
                && d != out_len
            {
                return Err(Error::Rejected {
                    endpoint: transport.describe(),
                    status: "model metadata".into(),
                    message: format!("the server's model takes {d} values, the bundle's nets emit {out_len}"),
                });
            }
            let shape = &b.manifest.input.shape;
            image = match shape.as_slice() {
                [1, r, c] | [r, c] => Some((*r, *c)),
                _ => None,
            };
            input_len = Some(b.manifest.input.numel());
        }
        if let Some(shape) = raw_shape {
            image = match shape.shape.as_slice() {
                [1, r, c] | [r, c] => Some((*r, *c)),
                _ => None,
            };
            input_len = Some(shape.numel());
        }
        let runtime = bundle
            .as_ref()
            .map(|(b, _)| Runtime::from_bundle(b))
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let input_len = input_len.ok_or_else(|| Error::Config {
            field: "raw",
            reason: "raw mode over MQTT needs the sample size: give the bundle too".into(),
        })?;
        if image.is_none() && input_len == 784 {
            image = Some((28, 28));
        }
        let scratch = runtime.as_ref().map(Runtime::scratch).unwrap_or_default();
        Ok(Device {
            out: vec![0.0; runtime.as_ref().map_or(0, Runtime::output_len)],
            runtime,
            scratch,
            wire: cfg.wire,
            transport,
            buf: Vec::new(),
            image,
            input_len,
            model_check,
        })
    }

    /// How the bundle was checked against the server: whose model sha256 it was compared with
    /// (published by the server, pinned, or skipped) and whether the server published the
    /// bundles it issued.
    pub fn model_check(&self) -> &str {
        &self.model_check
    }

    /// Bytes per sample the device expects.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// `(rows, cols)` of image inputs.
    pub fn image(&self) -> Option<(usize, usize)> {
        self.image
    }

    /// The prepared nets (`None` in raw mode).
    pub fn runtime(&self) -> Option<&Runtime> {
        self.runtime.as_ref()
    }

    /// The transport's description.
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// Obfuscates (unless raw) and sends one sample.
    ///
    /// # Errors
    /// [`Error::Sample`] for a sample of the wrong size; the runtime's and transport's errors.
    pub fn infer(&mut self, sample: &Sample) -> Result<Outcome> {
        if sample.data.len() != self.input_len {
            return Err(Error::Sample {
                path: sample.name.clone().into(),
                reason: format!("{} bytes, the device sends {}", sample.data.len(), self.input_len),
            });
        }
        let t0 = Instant::now();
        let mut net = None;
        self.buf.clear();
        let (datatype, len, obf, enc) = match &self.runtime {
            None => {
                self.buf.extend_from_slice(&sample.data);
                ("UINT8", sample.data.len(), 0.0, t0.elapsed().as_secs_f64() * 1e6)
            }
            Some(rt) => {
                let mut rng = OsRandom;
                let k = rt
                    .obfuscate(
                        &sample.data,
                        NetChoice::Random(&mut rng),
                        &mut self.out,
                        &mut self.scratch,
                    )
                    .map_err(|e| Error::Internal(e.to_string()))?;
                net = Some(k);
                let t1 = Instant::now();
                self.wire
                    .wire()
                    .encode(&self.out, rt.normalisation(), &mut self.buf);
                let dt = match self.wire {
                    WireFormat::F32 => "FP32",
                    WireFormat::U8 => "UINT8",
                };
                (
                    dt,
                    self.out.len(),
                    (t1 - t0).as_secs_f64() * 1e6,
                    t1.elapsed().as_secs_f64() * 1e6,
                )
            }
        };
        let t2 = Instant::now();
        let answer = self.transport.infer(transport::WireTensor {
            datatype,
            len,
            data: &self.buf,
        })?;
        Ok(Outcome {
            version: Outcome::VERSION,
            sample: sample.name.clone(),
            net,
            label: answer.label,
            scores: answer.scores,
            expected: sample.label,
            read_us: sample.read_us,
            obfuscate_us: obf,
            encode_us: enc,
            round_trip_us: t2.elapsed().as_secs_f64() * 1e6,
            attempts: answer.attempts,
            duplicates: answer.duplicates,
        })
    }

    /// The obfuscated values last sent (model-input space; empty in raw mode).
    pub fn last_output(&self) -> &[f32] {
        &self.out
    }
}

/// Loads the MFCC front end the config names, if any.
///
/// # Errors
/// [`MfccFrontEnd::load`] and [`MfccFrontEnd::fit_fsdd`] errors.
pub fn mfcc_front_end(cfg: &DeviceConfig) -> Result<Option<MfccFrontEnd>> {
    match (&cfg.mfcc, &cfg.fsdd_dir) {
        (Some(p), _) => Ok(Some(MfccFrontEnd::load(p)?)),
        (None, Some(d)) => Ok(Some(MfccFrontEnd::fit_fsdd(d)?)),
        (None, None) => Ok(None),
    }
}

fn write_line(out: &mut dyn Write, line: &str) -> Result<()> {
    writeln!(out, "{line}").map_err(|e| Error::Internal(format!("writing output: {e}")))
}

/// The whole `obfnet device` job: connect, read samples, send each, print a line per sample
/// (text or JSON) and the summary.
///
/// # Errors
/// The first error (the samples before it were printed).
pub fn run_device(cfg: &DeviceConfig, out: &mut dyn Write) -> Result<Summary> {
    let started = Instant::now();
    let mut device = Device::connect(cfg)?;
    let front = mfcc_front_end(cfg)?;
    let samples = read_samples(
        &cfg.samples,
        cfg.format,
        &SampleSpec {
            input_len: device.input_len(),
            image: device.image(),
            labels: cfg.labels.as_deref(),
            limit: cfg.limit,
            mfcc: front.as_ref(),
        },
    )?;
    let k = device.runtime().map_or(0, Runtime::k);
    let mut outcomes = Vec::with_capacity(samples.len());
    for s in &samples {
        let o = device.infer(s)?;
        if cfg.json {
            write_line(out, &serde_json::to_string(&o).unwrap_or_default())?;
        } else {
            let scores = o
                .scores
                .as_ref()
                .and_then(|s| s.get(usize::try_from(o.label).ok()?).copied())
                .map(|p| format!(" p={p:.3}"))
                .unwrap_or_default();
            write_line(
                out,
                &format!(
                    "{}\tlabel={}{}{}\tnet={}\tread={:.0}µs obfuscate={:.0}µs encode={:.0}µs round-trip={:.2}ms{}",
                    o.sample,
                    o.label,
                    scores,
                    o.expected.map(|e| format!(" (true {e})")).unwrap_or_default(),
                    o.net.map_or("raw".to_string(), |n| n.to_string()),
                    o.read_us,
                    o.obfuscate_us,
                    o.encode_us,
                    o.round_trip_us / 1e3,
                    if o.attempts > 1 {
                        format!(" attempts={}", o.attempts)
                    } else {
                        String::new()
                    },
                ),
            )?;
        }
        outcomes.push(o);
    }
    let summary = summarise(cfg, &device, k, &outcomes, started.elapsed().as_secs_f64());
    if cfg.json {
        write_line(out, &serde_json::to_string(&summary).unwrap_or_default())?;
    } else {
        let acc = if summary.labelled > 0 {
            format!(
                ", {}/{} correct ({:.1} %)",
                summary.correct,
                summary.labelled,
                100.0 * summary.correct as f64 / summary.labelled as f64
            )
        } else {
            String::new()
        };
        write_line(
            out,
            &format!(
                "summary: {} answered via {} ({} weights, {} wire){acc}; median read {:.0}µs, obfuscate {:.0}µs, encode {:.0}µs, \
                 round trip {:.2}ms (p90 {:.2}ms); {} sends, {} duplicates dropped; {:.2}s; bundle check: {}",
                summary.answered,
                summary.transport,
                summary.mode,
                summary.wire,
                summary.read.median_us,
                summary.obfuscate.median_us,
                summary.encode.median_us,
                summary.round_trip.median_us / 1e3,
                summary.round_trip.p90_us / 1e3,
                summary.attempts,
                summary.duplicates,
                summary.wall_s,
                summary.model_check
            ),
        )?;
    }
    Ok(summary)
}

/// The process exit code of a run's result; prints the error (and its class) to stderr.
/// `obfnet device` ends with `return obfnet_device::exit_code(obfnet_device::run_device(&cfg, &mut stdout))`.
pub fn exit_code(result: Result<Summary>) -> std::process::ExitCode {
    match result {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error ({:?}): {e}", e.class());
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

fn summarise(cfg: &DeviceConfig, device: &Device, k: usize, outcomes: &[Outcome], wall_s: f64) -> Summary {
    let mut net_uses = vec![0usize; k];
    for o in outcomes {
        if let Some(n) = o.net.and_then(|n| net_uses.get_mut(n)) {
            *n += 1;
        }
    }
    let labelled: Vec<&Outcome> = outcomes.iter().filter(|o| o.expected.is_some()).collect();
    Summary {
        version: Summary::VERSION,
        transport: device.describe(),
        mode: match device.runtime() {
            None => "raw".into(),
            Some(rt) if rt.weights() == DType::I8 => "int8".into(),
            Some(_) => "f32".into(),
        },
        wire: if cfg.raw || cfg.wire == WireFormat::U8 {
            "u8".into()
        } else {
            "f32".into()
        },
        answered: outcomes.len(),
        correct: labelled
            .iter()
            .filter(|o| o.expected.map(i64::from) == Some(o.label))
            .count(),
        labelled: labelled.len(),
        net_uses,
        attempts: outcomes.iter().map(|o| u64::from(o.attempts)).sum(),
        duplicates: outcomes.iter().map(|o| u64::from(o.duplicates)).sum(),
        read: Timing::of(outcomes.iter().map(|o| o.read_us).collect()),
        obfuscate: Timing::of(outcomes.iter().map(|o| o.obfuscate_us).collect()),
        encode: Timing::of(outcomes.iter().map(|o| o.encode_us).collect()),
        round_trip: Timing::of(outcomes.iter().map(|o| o.round_trip_us).collect()),
        wall_s,
        model_check: device.model_check().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_per_class() {
        let codes = [
            ErrorClass::Internal,
            ErrorClass::BadInput,
            ErrorClass::Unreachable,
            ErrorClass::Rejected,
        ]
        .map(ErrorClass::exit_code);
        assert_eq!(codes, [1, 2, 3, 4]);
        let e = Error::ModelMismatch {
            bundle: "a".into(),
            server: "b".into(),
        };
        assert_eq!(e.class(), ErrorClass::Rejected);
    }

    #[test]
    fn timing_median_and_p90() {
        let t = Timing::of((1..=10).map(f64::from).collect());
        assert_eq!(t.median_us, 5.5);
        assert_eq!(t.p90_us, 9.0);
        assert_eq!(t.max_us, 10.0);
    }

    #[test]
    fn rest_reply_decodes_binary_and_json_outputs() {
        let header = serde_json::json!({"outputs": [
            {"name": "label", "datatype": "INT64", "shape": [1], "parameters": {"binary_data_size": 8}},
            {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]},
        ]});
        let mut body = serde_json::to_vec(&header).expect("json");
        let h = body.len();
        body.extend_from_slice(&7i64.to_le_bytes());
        let a = transport::decode_rest_reply("x", &body, Some(h)).expect("decodes");
        assert_eq!(a.label, 7);
        assert_eq!(a.scores, Some(vec![0.25, 0.75]));
        assert!(transport::decode_rest_reply("x", b"{}", None).is_err());
        assert!(transport::decode_rest_reply("x", &body, Some(body.len() + 1)).is_err());
    }

    #[test]
    fn published_sha_is_read_from_parameters() {
        let hex = "ab".repeat(32);
        let m = serde_json::json!({"parameters": {"sha256": hex}});
        assert_eq!(published_sha256(&m), Some([0xab; 32]));
        assert_eq!(published_sha256(&serde_json::json!({})), None);
    }

    #[test]
    fn published_bundles_are_read_and_malformed_lists_refused() {
        let (a, b) = ("ab".repeat(32), "0C".repeat(32));
        let m = serde_json::json!({"parameters": {"bundle_sha256": format!("{a}, {b}")}});
        assert_eq!(
            published_bundles(&m, "x").expect("reads"),
            Some(vec![[0xab; 32], [0x0c; 32]])
        );
        assert_eq!(
            published_bundles(&serde_json::json!({}), "x").expect("absent"),
            None
        );
        let bad = serde_json::json!({"parameters": {"bundle_sha256": format!("{a},zz")}});
        assert!(matches!(
            published_bundles(&bad, "x"),
            Err(Error::BadReply { .. })
        ));
        let e = Error::BundleNotIssued {
            bundle: a,
            published: b,
        };
        assert_eq!(e.exit_code(), 4);
    }
}
