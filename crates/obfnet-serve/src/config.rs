use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Settings of `obfnet serve`. Every field has a default (shown in brackets), so a config file
/// only needs the fields it changes; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address REST and gRPC share (one port; HTTP/1.1 and HTTP/2, gRPC needs HTTP/2)
    /// [`127.0.0.1:8000`].
    pub addr: String,
    /// Model name in the protocol's paths and messages [`lenet5`].
    pub model_name: String,
    /// Return the `probabilities` output; `false` leaves only the `label` (leaks less) [`true`].
    pub scores: bool,
    /// Largest request body (REST) or message (gRPC, MQTT payload) in bytes [`4 MiB`].
    pub max_body_bytes: usize,
    /// Largest number of images in one request [`256`].
    pub max_request_rows: usize,
    /// Requests admitted at once (queued or running); more are refused with 503 / UNAVAILABLE [`256`].
    pub max_in_flight: usize,
    /// HTTP requests (REST and gRPC; health probes excepted) handled at once, body reading
    /// included; more are refused at once with 503 + `Retry-After` (gRPC: `UNAVAILABLE`)
    /// before their body is read [`512`].
    pub max_concurrent_requests: usize,
    /// Time one request may take, body read included, in milliseconds [`10000`].
    pub request_timeout_ms: u64,
    /// Time connections get to finish after a shutdown signal, in milliseconds [`10000`].
    pub shutdown_grace_ms: u64,
    /// Dynamic batching.
    pub batching: BatchConfig,
    /// API keys; when non-empty every endpoint except the health probes needs one
    /// (`Authorization: Bearer <key>` over HTTP, `authorization` metadata over gRPC) [none].
    pub api_keys: Vec<String>,
    /// Serve HTTPS / gRPC over TLS with this certificate and key (PEM) [off].
    pub tls: Option<TlsConfig>,
    /// Run an MQTT v5 worker too [off].
    pub mqtt: Option<MqttConfig>,
    /// Obfuscator bundle files issued for this model (`obfnet train-obf`, `obfnet quantize`):
    /// each is validated at start and must belong to the served model; their sha256 are
    /// published in the model metadata (`parameters.bundle_sha256`) so that a device can check
    /// the bundle it holds [none].
    pub bundles: Vec<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: "127.0.0.1:8000".into(),
            model_name: "lenet5".into(),
            scores: true,
            max_body_bytes: 4 << 20,
            max_request_rows: 256,
            max_in_flight: 256,
            max_concurrent_requests: 512,
            request_timeout_ms: 10_000,
            shutdown_grace_ms: 10_000,
            batching: BatchConfig::default(),
            api_keys: Vec::new(),
            tls: None,
            mqtt: None,
            bundles: Vec::new(),
        }
    }
}

/// How requests are merged into batches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Most images run in one forward pass [`64`]. A single request larger than this runs alone.
    pub max_batch_size: usize,
    /// How long the first request of a batch waits for more, in microseconds [`0`]. With 0 the
    /// batcher takes whatever queued up while the previous batch ran (no added latency when
    /// idle; batches grow by themselves under load), as Triton's default queue delay.
    pub max_wait_us: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch_size: 64,
            max_wait_us: 0,
        }
    }
}

/// TLS certificate chain and private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (leaf first).
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The default [`MqttConfig::reply_topic_prefix`].
pub const DEFAULT_REPLY_PREFIX: &str = "obfnet/reply/";

/// The MQTT v5 worker.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host [`127.0.0.1`].
    pub host: String,
    /// Broker port [`1883`].
    pub port: u16,
    /// Client id; must differ between workers [`obfnet-<pid>`].
    pub client_id: Option<String>,
    /// Requests are read from this topic (devices publish here) [`obfnet/infer/<model_name>`].
    pub request_topic: Option<String>,
    /// Shared-subscription group: workers of one group split the requests [`obfnet`].
    pub group: String,
    /// Broker credentials [none].
    pub username: Option<String>,
    /// Broker password [none].
    pub password: Option<String>,
    /// Connect over TLS (rustls, ring provider), trusting the CA certificate(s) in this PEM
    /// file [off: plain TCP].
    pub tls_ca: Option<PathBuf>,
    /// The worker only answers on Response Topics that start with this prefix; requests naming
    /// any other topic are dropped (counted, never answered), so a device cannot make the
    /// worker publish under its identity elsewhere. Grant devices `readwrite <prefix><id>/#`
    /// in the broker's ACL (see NOTES / README) [`obfnet/reply/`].
    pub reply_topic_prefix: String,
    /// Requests the broker may have in flight to this worker (MQTT receive maximum), and the
    /// bound on requests (QoS 0 included) being handled at once: past it the worker stops
    /// reading from the broker until one finishes [`64`].
    pub receive_maximum: u16,
    /// How long the broker keeps this worker's session (and queued requests) while it is
    /// disconnected, in seconds [`3600`].
    pub session_expiry_s: u32,
    /// Keep-alive interval in seconds [`10`].
    pub keep_alive_s: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            request_topic: None,
            group: "obfnet".into(),
            username: None,
            password: None,
            tls_ca: None,
            reply_topic_prefix: DEFAULT_REPLY_PREFIX.into(),
            receive_maximum: 64,
            session_expiry_s: 3600,
            keep_alive_s: 10,
        }
    }
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("request_topic", &self.request_topic)
            .field("group", &self.group)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("reply_topic_prefix", &self.reply_topic_prefix)
            .field("receive_maximum", &self.receive_maximum)
            .finish_non_exhaustive()
    }
}

impl MqttConfig {
    /// The topic devices publish requests to.
    pub fn request_topic(&self, model_name: &str) -> String {
        self.request_topic
            .clone()
            .unwrap_or_else(|| format!("obfnet/infer/{model_name}"))
    }

    /// Whether the worker may publish a reply on `topic`: under the configured prefix, and a
    /// plain topic (no wildcards, not `$...`).
    pub fn reply_topic_allowed(&self, topic: &str) -> bool {
        topic.len() > self.reply_topic_prefix.len()
            && topic.starts_with(&self.reply_topic_prefix)
            && !topic.contains(['+', '#', '\0'])
    }

    /// The shared subscription the workers hold: `$share/<group>/<request topic>`.
    pub fn shared_filter(&self, model_name: &str) -> String {
        format!("$share/{}/{}", self.group, self.request_topic(model_name))
    }
}

impl ServeConfig {
    /// Reads a JSON config file.
    pub fn from_file(path: &std::path::Path) -> Result<ServeConfig> {
        let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_slice(&text).map_err(|e| Error::Config {
            field: "config file",
            reason: format!("{}: {e}", path.display()),
        })
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if self.model_name.is_empty() || self.model_name.contains('/') {
            return bad("model_name", "must be non-empty and contain no '/'");
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        if self.max_request_rows == 0 {
            return bad("max_request_rows", "must be at least 1");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight", "must be at least 1");
        }
        if self.max_concurrent_requests == 0 {
            return bad("max_concurrent_requests", "must be at least 1");
        }
        if self.request_timeout_ms == 0 {
            return bad("request_timeout_ms", "must be at least 1");
        }
        if self.batching.max_batch_size == 0 {
            return bad("batching.max_batch_size", "must be at least 1");
        }
        if self.api_keys.iter().any(|k| k.trim().is_empty() || k.trim() != k) {
            return bad("api_keys", "keys must be non-empty, without surrounding spaces");
        }
        if let Some(m) = &self.mqtt {
            if m.group.is_empty() || m.group.contains(['/', '+', '#']) {
                return bad("mqtt.group", "must be non-empty without '/', '+' or '#'");
            }
            let topic = m.request_topic(&self.model_name);
            if topic.is_empty() || topic.contains(['+', '#']) || topic.starts_with('$') {
                return bad(
                    "mqtt.request_topic",
                    "must be a plain topic (no wildcards, not $...)",
                );
            }
            let p = &m.reply_topic_prefix;
            if p.is_empty() || p.contains(['+', '#']) || p.starts_with('$') {
                return bad(
                    "mqtt.reply_topic_prefix",
                    "must be a non-empty topic prefix without wildcards, not $...",
                );
            }
            if m.receive_maximum == 0 {
                return bad("mqtt.receive_maximum", "must be at least 1");
            }
        }
        Ok(())
    }
}
