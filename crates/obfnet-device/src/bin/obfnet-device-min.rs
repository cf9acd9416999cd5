//! `obfnet-device-min`: a minimal device program over the `obfnet-device` library (what `obfnet device` does, with
//! a hand-rolled argument parser so the binary stays small): used for the footprint figures in
//! docs/notes/device.md and for trying the device before the CLI verb exists.
//!
//! ```text
//! obfnet-device-min (--rest URL | --grpc URL | --mqtt HOST:PORT) [--bundle FILE] [--server-model-sha256 HEX]
//!        [--skip-model-check] [--weights bundle|f32|int8] [--wire f32|u8] [--raw] [--json]
//!        [--api-key KEY] [--model NAME] [--labels IDX] [--limit N] [--format auto|png|idx|raw|wav]
//!        [--mfcc FILE] [--fsdd-dir DIR] [--timeout-ms MS] [--retries N]
//!        [--mqtt-user U --mqtt-password P] [--mqtt-ca PEM] SAMPLE...
//! ```
//! Exit codes: 0 ok, 1 device fault, 2 bad input, 3 unreachable, 4 rejected.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use obfnet_device::{
    DeviceConfig, InputFormat, MqttSettings, TransportConfig, WeightType, WireFormat, run_device,
};

const USAGE: &str = "\
usage: obfnet-device-min (--rest URL | --grpc URL | --mqtt HOST:PORT) [--bundle FILE]
         [--server-model-sha256 HEX] [--skip-model-check] [--weights bundle|f32|int8]
         [--wire f32|u8] [--raw] [--json] [--api-key KEY] [--model NAME] [--labels IDX]
         [--limit N] [--format auto|png|idx|raw|wav] [--mfcc FILE] [--fsdd-dir DIR]
         [--timeout-ms MS] [--retries N] [--mqtt-user U --mqtt-password P] [--mqtt-ca PEM]
         SAMPLE...
Obfuscates each sample with one of the bundle's nets (picked by the OS CSPRNG) and sends it to
the server; the options are those of `obfnet device` (see `obfnet device --help`).
Exit codes: 0 ok, 1 device fault, 2 bad input, 3 unreachable, 4 rejected.";

fn parse() -> Result<DeviceConfig, String> {
    let mut args = std::env::args().skip(1);
    let mut cfg = DeviceConfig::new(TransportConfig::Rest {
        url: "http://127.0.0.1:8000".into(),
    });
    let mut mqtt: Option<MqttSettings> = None;
    let (mut user, mut password, mut ca) = (None, None, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rest" => cfg.transport = TransportConfig::Rest { url: val()? },
            "--grpc" => cfg.transport = TransportConfig::Grpc { url: val()? },
            "--mqtt" => {
                let v = val()?;
                let (h, p) = v.rsplit_once(':').ok_or("--mqtt HOST:PORT")?;
                mqtt = Some(MqttSettings::new(h, p.parse().map_err(|_| "bad MQTT port")?));
            }
            "--mqtt-user" => user = Some(val()?),
            "--mqtt-password" => password = Some(val()?),
            "--mqtt-ca" => ca = Some(PathBuf::from(val()?)),
            "--bundle" => cfg.bundle = Some(val()?.into()),
            "--server-model-sha256" => {
                cfg.server_model_sha256 =
                    Some(obfnet_core::parse_hex32(&val()?).ok_or("the sha256 must be 64 hex digits")?)
            }
            "--skip-model-check" => cfg.skip_model_check = true,
            "--weights" => {
                cfg.weights = match val()?.as_str() {
                    "bundle" => WeightType::Bundle,
                    "f32" => WeightType::F32,
                    "int8" => WeightType::Int8,
                    w => return Err(format!("--weights {w}: bundle, f32 or int8")),
                }
            }
            "--wire" => {
                cfg.wire = match val()?.as_str() {
                    "f32" => WireFormat::F32,
                    "u8" => WireFormat::U8,
                    w => return Err(format!("--wire {w}: f32 or u8")),
                }
            }
            "--format" => {
                cfg.format = match val()?.as_str() {
                    "auto" => InputFormat::Auto,
                    "png" => InputFormat::Png,
                    "idx" => InputFormat::Idx,
                    "raw" => InputFormat::Raw,
                    "wav" => InputFormat::Wav,
                    f => return Err(format!("--format {f}")),
                }
            }
            "--raw" => cfg.raw = true,
            "--json" => cfg.json = true,
            "--api-key" => cfg.api_key = Some(val()?),
            "--model" => cfg.model = val()?,
            "--labels" => cfg.labels = Some(val()?.into()),
            "--limit" => cfg.limit = Some(val()?.parse().map_err(|_| "bad --limit")?),
            "--mfcc" => cfg.mfcc = Some(val()?.into()),
            "--fsdd-dir" => cfg.fsdd_dir = Some(val()?.into()),
            "--timeout-ms" => {
                cfg.policy.timeout = Duration::from_millis(val()?.parse().map_err(|_| "bad --timeout-ms")?)
            }
            "--retries" => cfg.policy.retries = val()?.parse().map_err(|_| "bad --retries")?,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => cfg.samples.push(s.into()),
        }
    }
    if let Some(mut m) = mqtt {
        m.username = user;
        m.password = password;
        m.tls_ca = ca;
        cfg.transport = TransportConfig::Mqtt(m);
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}\n(obfnet-device-min --help for the options)");
            return ExitCode::from(2);
        }
    };
    obfnet_device::exit_code(run_device(&cfg, &mut std::io::stdout().lock()))
}
