//! `obfnet serve`: the inference service (Open Inference Protocol v2 over REST + gRPC on one
//! port, optional MQTT v5 worker). Flags override the optional JSON config file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use obfnet_serve::{
    AppState, Batch1EdgeBackend, InferenceBackend, LeNetBackend, MqttConfig, MqttWorker, NoopBackend,
    OnnxBackend, ServeConfig,
};

/// What runs batches of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Batch1Engine {
    /// The edge runtime's kernels (the model's weights copied at start); larger batches on burn.
    Edge,
    /// burn, like every other batch.
    Burn,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The server model: a directory (model.safetensors + config.json from `train-model`) or an
    /// ONNX file (`model.onnx`, with its optional sidecar `model.obfnet.json`); an ONNX model
    /// takes `[n, rows·cols]` inputs, its per-sample shape flattened.
    #[arg(long, default_value = "runs/server")]
    model: PathBuf,
    /// Serve a model that computes nothing (all-zero logits): the service's own ceiling, for
    /// load benchmarks. `--model` is ignored.
    #[arg(long)]
    noop: bool,
    /// Engine for batches of one image (a sequential client, an idle server): `edge` runs them
    /// on the edge runtime's kernels (same weights, same answers up to f32 rounding, several
    /// times faster at batch 1); `burn` keeps every batch on burn.
    #[arg(long, value_enum, default_value_t = Batch1Engine::Edge)]
    batch1_engine: Batch1Engine,
    /// JSON config file (fields of ServeConfig; see the README). Flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address for REST and gRPC (port 0 picks a free port; the bound address is printed).
    #[arg(long)]
    addr: Option<String>,
    /// Model name in the protocol.
    #[arg(long)]
    model_name: Option<String>,
    /// Return only the label, never class probabilities.
    #[arg(long)]
    no_scores: bool,
    /// File with one API key per line; clients then need `Authorization: Bearer <key>`.
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Most images per forward pass.
    #[arg(long)]
    max_batch_size: Option<usize>,
    /// How long a batch waits for more requests, microseconds.
    #[arg(long)]
    max_wait_us: Option<u64>,
    /// Requests admitted at once; more get 503.
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// HTTP requests (REST + gRPC, health probes excepted) handled at once, body reading
    /// included; more are refused with 503 + Retry-After before their body is read.
    #[arg(long)]
    max_concurrent_requests: Option<usize>,
    /// Also run an MQTT v5 worker against this broker host.
    #[arg(long)]
    mqtt_host: Option<String>,
    /// MQTT broker port.
    #[arg(long, default_value_t = 1883)]
    mqtt_port: u16,
    /// MQTT shared-subscription group.
    #[arg(long)]
    mqtt_group: Option<String>,
    /// MQTT client id (must differ between workers).
    #[arg(long)]
    mqtt_client_id: Option<String>,
    /// MQTT username; the password is read from the environment variable OBFNET_MQTT_PASSWORD.
    #[arg(long)]
    mqtt_username: Option<String>,
    /// Connect to the broker over TLS, trusting the CA certificate(s) in this PEM file.
    #[arg(long)]
    mqtt_tls_ca: Option<PathBuf>,
    /// The MQTT worker answers only on Response Topics under this prefix (default
    /// `obfnet/reply/`); requests naming another topic are dropped unanswered.
    #[arg(long, requires = "mqtt_host")]
    mqtt_reply_prefix: Option<String>,
    /// Obfuscator bundle issued for this model (repeatable): checked at start, its sha256
    /// published in the model metadata so that devices can check theirs.
    #[arg(long = "bundle")]
    bundles: Vec<PathBuf>,
}

fn config(a: &ServeArgs) -> Result<ServeConfig> {
    let mut c = match &a.config {
        Some(p) => ServeConfig::from_file(p)?,
        None => ServeConfig::default(),
    };
    if let Some(v) = &a.addr {
        c.addr = v.clone();
    }
    if let Some(v) = &a.model_name {
        c.model_name = v.clone();
    }
    if a.no_scores {
        c.scores = false;
    }
    if let Some(p) = &a.api_key_file {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let keys: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if keys.is_empty() {
            bail!("{} holds no API key", p.display());
        }
        c.api_keys = keys;
    }
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        c.tls = Some(obfnet_serve::TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if let Some(v) = a.max_batch_size {
        c.batching.max_batch_size = v;
    }
    if let Some(v) = a.max_wait_us {
        c.batching.max_wait_us = v;
    }
    if let Some(v) = a.max_in_flight {
        c.max_in_flight = v;
    }
    if let Some(v) = a.max_concurrent_requests {
        c.max_concurrent_requests = v;
    }
    if let Some(host) = &a.mqtt_host {
        let mut m = c.mqtt.take().unwrap_or_default();
        m.host = host.clone();
        m.port = a.mqtt_port;
        if let Some(g) = &a.mqtt_group {
            m.group = g.clone();
        }
        if let Some(id) = &a.mqtt_client_id {
            m.client_id = Some(id.clone());
        }
        if let Some(ca) = &a.mqtt_tls_ca {
            m.tls_ca = Some(ca.clone());
        }
        if let Some(p) = &a.mqtt_reply_prefix {
            m.reply_topic_prefix = p.clone();
        }
        if let Some(u) = &a.mqtt_username {
            m.username = Some(u.clone());
            m.password = std::env::var("OBFNET_MQTT_PASSWORD").ok();
        }
        c.mqtt = Some(m);
    }
    if !a.bundles.is_empty() {
        c.bundles = a.bundles.clone();
    }
    c.validate()?;
    Ok(c)
}

pub(crate) fn cmd_serve(a: &ServeArgs, json: bool) -> Result<()> {
    let cfg = config(a)?;
    let backend: Box<dyn InferenceBackend> = if a.noop {
        Box::new(NoopBackend::default())
    } else if obfnet_nn::is_onnx_path(&a.model) {
        Box::new(
            OnnxBackend::load(&a.model)
                .with_context(|| format!("loading the ONNX server model {}", a.model.display()))?,
        )
    } else {
        let burn = LeNetBackend::load(&a.model)
            .with_context(|| format!("loading the server model from {}", a.model.display()))?;
        match a.batch1_engine {
            Batch1Engine::Burn => Box::new(burn),
            Batch1Engine::Edge => Box::new(
                Batch1EdgeBackend::new(burn).context("building the edge runtime program of the model")?,
            ),
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("obfnet-serve")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cfg, backend, json))
}

async fn run(cfg: ServeConfig, backend: Box<dyn InferenceBackend>, json: bool) -> Result<()> {
    let tls = cfg.tls.as_ref().map(obfnet_serve::tls_config).transpose()?;
    let listener = obfnet_serve::bind(&cfg.addr).await?;
    let addr = obfnet_serve::local_addr(&listener)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mqtt: Option<MqttConfig> = cfg.mqtt.clone();
    let grace = Duration::from_millis(cfg.shutdown_grace_ms);
    let state = AppState::new(cfg, backend)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mqtt_task = mqtt.map(|m| {
        let topic = m.shared_filter(&state.config().model_name);
        let worker = MqttWorker::new(state.clone(), m);
        let mut rx = stop_rx.clone();
        (
            topic,
            tokio::spawn(worker.run(async move {
                let _ = rx.wait_for(|v| *v).await;
            })),
        )
    });
    let info = serde_json::json!({
        "addr": addr.to_string(),
        "url": format!("{scheme}://{addr}"),
        "model": state.config().model_name,
        "platform": state.spec().platform,
        "mqtt": mqtt_task.as_ref().map(|(t, _)| t.clone()),
    });
    if json {
        println!("{info}");
    } else {
        println!(
            "obfnet serve: model {:?} ({}) on {scheme}://{addr} (REST + gRPC){}",
            state.config().model_name,
            state.spec().platform,
            mqtt_task
                .as_ref()
                .map(|(t, _)| format!(", MQTT {t}"))
                .unwrap_or_default()
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let app = obfnet_serve::router(state);
    obfnet_serve::serve(listener, app, tls, grace, async {
        obfnet_serve::shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await?;
    if let Some((_, task)) = mqtt_task {
        task.await.context("MQTT worker task")??;
    }
    eprintln!("obfnet serve: stopped");
    Ok(())
}
