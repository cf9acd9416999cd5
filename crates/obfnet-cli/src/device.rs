//! `obfnet device`: arguments → `obfnet_device::run_device` (all the work is in the library).

use obfnet_device::{DeviceConfig, InputFormat, MqttSettings, TransportConfig, WeightType, WireFormat};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Run as an IoT device: obfuscate samples with a random net of the bundle and ask `obfnet serve`.
/// Exit codes: 0 ok, 1 device fault, 2 bad input, 3 server/broker unreachable, 4 request rejected.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// Sample files or directories (PNG, IDX, raw bytes, WAV).
    #[arg(required_unless_present = "save_mfcc")]
    pub samples: Vec<PathBuf>,
    /// OIP REST server, e.g. http://127.0.0.1:8000.
    #[arg(long, group = "to")]
    pub rest: Option<String>,
    /// OIP gRPC server, e.g. http://127.0.0.1:8000.
    #[arg(long, group = "to")]
    pub grpc: Option<String>,
    /// MQTT v5 broker HOST:PORT (the `obfnet serve` MQTT worker answers).
    #[arg(long, group = "to")]
    pub mqtt: Option<String>,
    /// Obfuscator bundle (required unless --raw).
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// sha256 of the server's model weights file (pins which model the bundle must belong to).
    #[arg(long, env = "OBFNET_SERVER_MODEL_SHA256")]
    pub server_model_sha256: Option<String>,
    /// Send without checking the bundle against the server's model.
    #[arg(long)]
    pub skip_model_check: bool,
    /// Weights to run: as in the bundle, f32, or int8 (an f32 bundle is quantised at load).
    #[arg(long, default_value = "bundle", value_parser = ["bundle", "f32", "int8"])]
    pub weights: String,
    /// Wire encoding of the obfuscated sample.
    #[arg(long, default_value = "f32", value_parser = ["f32", "u8"])]
    pub wire: String,
    /// Send samples unobfuscated (voluntary; same endpoint).
    #[arg(long)]
    pub raw: bool,
    /// One JSON object per sample, then the summary.
    #[arg(long)]
    pub json: bool,
    /// API key (REST / gRPC `Authorization: Bearer`).
    #[arg(long, env = "OBFNET_API_KEY")]
    pub api_key: Option<String>,
    /// Model name on the server.
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// How to read the samples.
    #[arg(long, default_value = "auto", value_parser = ["auto", "png", "idx", "raw", "wav"])]
    pub format: String,
    /// IDX labels file (prints accuracy).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Send at most N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// MFCC front end (JSON) for WAV input.
    #[arg(long)]
    pub mfcc: Option<PathBuf>,
    /// FSDD directory to fit the MFCC front end from (for WAV input without --mfcc).
    #[arg(long)]
    pub fsdd_dir: Option<PathBuf>,
    /// With --fsdd-dir: write the fitted MFCC front end (JSON) to this file and exit, to ship
    /// it to devices with the bundle (they then take --mfcc FILE).
    #[arg(long, requires = "fsdd_dir", conflicts_with = "mfcc")]
    pub save_mfcc: Option<PathBuf>,
    /// Time to wait for one answer, ms.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Extra attempts on timeouts / lost connections / 503.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// MQTT request topic [obfnet/infer/<model>].
    #[arg(long)]
    pub mqtt_topic: Option<String>,
    /// MQTT user name.
    #[arg(long)]
    pub mqtt_user: Option<String>,
    /// MQTT password.
    #[arg(long, env = "OBFNET_MQTT_PASSWORD")]
    pub mqtt_password: Option<String>,
    /// MQTT over TLS, trusting this CA (PEM).
    #[arg(long)]
    pub mqtt_ca: Option<PathBuf>,
}

impl DeviceArgs {
    pub fn into_config(self) -> anyhow::Result<DeviceConfig> {
        let transport = match (self.rest, self.grpc, self.mqtt) {
            (_, Some(url), _) => TransportConfig::Grpc { url },
            (_, _, Some(hp)) => {
                let (h, p) = hp
                    .rsplit_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--mqtt HOST:PORT"))?;
                let mut m = MqttSettings::new(h, p.parse()?);
                m.request_topic = self.mqtt_topic;
                m.username = self.mqtt_user;
                m.password = self.mqtt_password;
                m.tls_ca = self.mqtt_ca;
                TransportConfig::Mqtt(m)
            }
            (url, _, _) => TransportConfig::Rest {
                url: url.unwrap_or_else(|| "http://127.0.0.1:8000".into()),
            },
        };
        let mut c = DeviceConfig::new(transport);
        c.samples = self.samples;
        c.bundle = self.bundle;
        c.server_model_sha256 = match self.server_model_sha256 {
            Some(h) => Some(
                obfnet_core::parse_hex32(&h)
                    .ok_or_else(|| anyhow::anyhow!("--server-model-sha256: 64 hex digits"))?,
            ),
            None => None,
        };
        c.skip_model_check = self.skip_model_check;
        c.weights = match self.weights.as_str() {
            "f32" => WeightType::F32,
            "int8" => WeightType::Int8,
            _ => WeightType::Bundle,
        };
        c.wire = if self.wire == "u8" {
            WireFormat::U8
        } else {
            WireFormat::F32
        };
        c.raw = self.raw;
        c.json = self.json;
        c.api_key = self.api_key;
        c.model = self.model;
        c.format = match self.format.as_str() {
            "png" => InputFormat::Png,
            "idx" => InputFormat::Idx,
            "raw" => InputFormat::Raw,
            "wav" => InputFormat::Wav,
            _ => InputFormat::Auto,
        };
        c.labels = self.labels;
        c.limit = self.limit;
        c.mfcc = self.mfcc;
        c.fsdd_dir = self.fsdd_dir;
        c.policy.timeout = Duration::from_millis(self.timeout_ms);
        c.policy.retries = self.retries;
        Ok(c)
    }
}

/// Runs the device; errors print with the device's exit-code classes (2 bad input,
/// 3 unreachable, 4 rejected, 1 anything else).
pub fn cmd_device(args: DeviceArgs, json: bool) -> ExitCode {
    let mut args = args;
    args.json |= json;
    if let (Some(out), Some(dir)) = (&args.save_mfcc, &args.fsdd_dir) {
        let saved = obfnet_device::MfccFrontEnd::fit_fsdd(dir).and_then(|f| f.save(out));
        return match saved {
            Ok(()) => {
                println!("MFCC front end written to {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    let cfg = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match obfnet_device::run_device(&cfg, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
