//! The state every front end shares: config, model, engine and API keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::backend::{InferenceBackend, ModelSpec};
use crate::config::ServeConfig;
use crate::engine::{Engine, EngineStats};
use crate::oip::{self, InputHeader, InputValues, MODEL_VERSION, Prediction};
use crate::{Error, Result};

/// Shared state of one server: cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: ServeConfig,
    engine: Engine,
    keys: ApiKeys,
    // sha256 (hex) of each bundle file of `cfg.bundles`, in order.
    bundle_sha256: Vec<String>,
    // One flag per MQTT worker created on this state: true until the worker stops.
    workers: std::sync::Mutex<Vec<Arc<AtomicBool>>>,
}

/// Held by a running front end (the MQTT worker); dropping it marks the front end gone, which
/// makes the server not ready.
#[derive(Debug)]
pub(crate) struct WorkerAlive(Arc<AtomicBool>);

impl Drop for WorkerAlive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl AppState {
    /// Validates `cfg` and starts the batcher around `backend`.
    pub fn new(cfg: ServeConfig, backend: Box<dyn InferenceBackend>) -> Result<AppState> {
        cfg.validate()?;
        let engine = Engine::start(backend, &cfg.batching, cfg.max_in_flight)?;
        let keys = ApiKeys::new(&cfg.api_keys);
        let bundle_sha256 = cfg
            .bundles
            .iter()
            .map(|p| check_bundle(p, engine.spec()))
            .collect::<Result<Vec<_>>>()?;
        Ok(AppState {
            inner: Arc::new(Inner {
                cfg,
                engine,
                keys,
                bundle_sha256,
                workers: Default::default(),
            }),
        })
    }

    /// Liveness: the process can serve, i.e. the batcher thread that runs the model is alive
    /// (it cannot be restarted in place; a restart of the process is the cure).
    pub fn live(&self) -> bool {
        self.inner.engine.alive()
    }

    /// Readiness: live, and every MQTT worker created on this state is still running.
    pub fn ready(&self) -> bool {
        self.live()
            && self
                .inner
                .workers
                .lock()
                .map(|w| w.iter().all(|a| a.load(Ordering::Acquire)))
                .unwrap_or(false)
    }

    /// Registers a front end whose end makes the server not ready.
    pub(crate) fn register_worker(&self) -> WorkerAlive {
        let flag = Arc::new(AtomicBool::new(true));
        if let Ok(mut w) = self.inner.workers.lock() {
            w.push(flag.clone());
        }
        WorkerAlive(flag)
    }

    /// Test hook: makes the batcher thread exit (as if it had died), so that health checks can
    /// be tested. The server answers inference with errors from then on.
    #[doc(hidden)]
    pub fn stop_batcher_for_test(&self) {
        self.inner.engine.stop_for_test();
    }

    /// The configuration.
    pub fn config(&self) -> &ServeConfig {
        &self.inner.cfg
    }

    /// The model's shapes and normalisation.
    pub fn spec(&self) -> &ModelSpec {
        self.inner.engine.spec()
    }

    /// What the model metadata publishes besides shapes (REST `parameters`, gRPC
    /// `parameters`): `sha256` of the model's weights file, and `bundle_sha256`, the
    /// comma-separated sha256 of the bundle files issued for it (each entry only when known).
    pub fn model_parameters(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(sha) = &self.spec().sha256 {
            p.push(("sha256", sha.clone()));
        }
        if !self.inner.bundle_sha256.is_empty() {
            p.push(("bundle_sha256", self.inner.bundle_sha256.join(",")));
        }
        p
    }

    /// Batching counters.
    pub fn stats(&self) -> EngineStats {
        self.inner.engine.stats()
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.cfg.request_timeout_ms)
    }

    /// Checks a model name and optional version against the served model.
    pub fn check_model(&self, name: &str, version: Option<&str>) -> Result<()> {
        let version = version.filter(|v| !v.is_empty());
        if name == self.inner.cfg.model_name && version.is_none_or(|v| v == MODEL_VERSION) {
            Ok(())
        } else {
            Err(Error::ModelNotFound {
                name: oip::truncate(name),
                version: version.map(oip::truncate),
            })
        }
    }

    /// Whether `authorization` (the header / metadata value) carries a valid key; always true
    /// when no keys are configured.
    pub fn authorize(&self, authorization: Option<&[u8]>) -> Result<()> {
        if self.inner.keys.check(authorization) {
            Ok(())
        } else {
            Err(Error::Unauthorized)
        }
    }

    /// Whether API keys are required.
    pub fn auth_required(&self) -> bool {
        !self.inner.keys.digests.is_empty()
    }

    /// Runs a checked request through the model: admission (503 when full), value checks,
    /// batching, softmax. `decode` turns the wire data into values after admission.
    pub async fn predict(
        &self,
        header: InputHeader,
        decode: impl FnOnce(&InputHeader, &ModelSpec) -> Result<InputValues>,
    ) -> Result<Prediction> {
        self.predict_with(Admission::Shed, header, decode).await
    }

    /// [`AppState::predict`] with the given [`Admission`] policy.
    pub(crate) async fn predict_with(
        &self,
        admission: Admission,
        header: InputHeader,
        decode: impl FnOnce(&InputHeader, &ModelSpec) -> Result<InputValues>,
    ) -> Result<Prediction> {
        let started = Instant::now();
        let permit = match admission {
            Admission::Shed => self.inner.engine.admit()?,
            Admission::Wait => self.inner.engine.admit_within(self.timeout()).await?,
        };
        let spec = self.spec();
        let values = decode(&header, spec)?;
        let x = oip::to_model_input(&header, spec, values)?;
        let left = self.timeout().saturating_sub(started.elapsed());
        let logits = tokio::time::timeout(left, self.inner.engine.logits(permit, x, header.n))
            .await
            .map_err(|_| Error::Timeout {
                ms: self.inner.cfg.request_timeout_ms,
            })??;
        Ok(Prediction::from_logits(&logits, header.n, spec.classes))
    }
}

/// What a request does when all `max_in_flight` model permits are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Refused at once with 503 (`Retry-After`): REST and gRPC, whose clients push requests
    /// at the server, so waiting would let the queue grow without bound.
    Shed,
    /// Waits for a permit within the request timeout: the MQTT worker, which pulls requests
    /// and already bounds them (`receive_maximum`, QoS 0 included), so a request it took from
    /// the broker is served rather than bounced back to the device.
    Wait,
}

/// Loads and validates a bundle file issued for the served model: it must be a valid bundle,
/// made for this model (its recorded server-model sha256), emitting the model's input size.
/// Returns the file's sha256, hex.
fn check_bundle(path: &std::path::Path, spec: &ModelSpec) -> Result<String> {
    let bad = |reason: String| Error::Config {
        field: "bundles",
        reason: format!("{}: {reason}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        op: "reading bundle",
        path: path.to_path_buf(),
        source,
    })?;
    let bundle = obfnet_core::Bundle::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
    let model = spec
        .sha256
        .as_deref()
        .and_then(obfnet_core::parse_hex32)
        .ok_or_else(|| bad("the served model has no sha256 to check the bundle against".into()))?;
    bundle
        .expect_server_model(&model)
        .map_err(|e| bad(e.to_string()))?;
    let out = bundle.manifest.output.numel();
    if out != spec.input_dim() {
        return Err(bad(format!(
            "its nets emit {out} values, the model takes {}",
            spec.input_dim()
        )));
    }
    Ok(obfnet_core::hex(&obfnet_core::sha256(&bytes)))
}

/// API keys, kept as sha256 digests and compared in constant time.
#[derive(Debug, Default)]
struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl ApiKeys {
    fn new(keys: &[String]) -> ApiKeys {
        ApiKeys {
            digests: keys.iter().map(|k| Sha256::digest(k.as_bytes()).into()).collect(),
        }
    }

    fn check(&self, authorization: Option<&[u8]>) -> bool {
        if self.digests.is_empty() {
            return true;
        }
        let Some(value) = authorization else { return false };
        let Some(key) = bearer_token(value) else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(key).into();
        // Compare against every key without early exit.
        self.digests.iter().fold(false, |found, k| {
            found | (k.iter().zip(&d).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0)
        })
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if scheme.eq_ignore_ascii_case(b"bearer ") {
        let token = rest.trim_ascii();
        (!token.is_empty()).then_some(token)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_only_exact_bearer_tokens() {
        let keys = ApiKeys::new(&["s3cret".into(), "other".into()]);
        assert!(keys.check(Some(b"Bearer s3cret")));
        assert!(keys.check(Some(b"bearer other")));
        assert!(!keys.check(Some(b"Bearer s3cre")));
        assert!(!keys.check(Some(b"Basic s3cret")));
        assert!(!keys.check(Some(b"s3cret")));
        assert!(!keys.check(None));
        assert!(ApiKeys::new(&[]).check(None));
    }
}
