//! Dynamic batching: requests queue up, one thread runs them through the model in batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};

use crate::backend::{InferenceBackend, ModelSpec};
use crate::config::BatchConfig;
use crate::metrics as m;
use crate::{Error, Result};

/// Counters of one engine (also exported as Prometheus metrics, which are process-wide).
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    batches: AtomicU64,
    rows: AtomicU64,
    largest_batch: AtomicU64,
}

/// A snapshot of an engine's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests that reached the model.
    pub requests: u64,
    /// Forward passes run.
    pub batches: u64,
    /// Images run.
    pub rows: u64,
    /// Images in the largest forward pass so far.
    pub largest_batch: u64,
}

struct Job {
    x: Vec<f32>,
    n: usize,
    queued: Instant,
    reply: oneshot::Sender<Result<Vec<f32>>>,
    // Held until the batch ran, even if the client gave up: abandoned requests still count
    // against `max_in_flight`, so the queue stays bounded.
    _permit: Permit,
}

/// Handle to the batcher thread; cheap to clone. The thread stops when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    spec: ModelSpec,
    counters: Arc<Counters>,
    // True while the batcher thread runs (cleared by a guard on exit or panic).
    alive: Arc<AtomicBool>,
    // Test hook: the batcher exits when it sees this set.
    stop: Arc<AtomicBool>,
}

/// Clears the batcher's `alive` flag when the thread ends, however it ends.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Job {
    /// Frees the job's permit, then sends its answer. In that order: a caller that sees its
    /// answer and at once sends the next request (a sequential client, the MQTT worker freeing
    /// its slot for the next publish) must find the permit free, not get a spurious 503.
    fn answer(self, result: Result<Vec<f32>>) {
        let Job { reply, _permit, .. } = self;
        drop(_permit);
        let _ = reply.send(result); // the client may have gone; fine
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("n", &self.n).finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the batcher thread that owns `backend`.
    pub fn start(
        backend: Box<dyn InferenceBackend>,
        batching: &BatchConfig,
        max_in_flight: usize,
    ) -> Result<Engine> {
        if batching.max_batch_size == 0 || max_in_flight == 0 {
            return Err(Error::Config {
                field: "batching.max_batch_size / max_in_flight",
                reason: "must be at least 1".into(),
            });
        }
        let spec = backend.spec();
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let alive = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Batcher {
            backend,
            rx,
            cfg: batching.clone(),
            spec: spec.clone(),
            counters: counters.clone(),
            stop: stop.clone(),
        };
        let guard = AliveGuard(alive.clone());
        std::thread::Builder::new()
            .name("obfnet-batcher".into())
            .spawn(move || {
                let _guard = guard;
                worker.run()
            })
            .map_err(|e| Error::Backend(format!("cannot start the batcher thread: {e}")))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                tx,
                permits: Arc::new(Semaphore::new(max_in_flight)),
                max_in_flight,
                spec,
                counters,
                alive,
                stop,
            }),
        })
    }

    /// Whether the batcher thread is still running.
    pub fn alive(&self) -> bool {
        self.inner.alive.load(Ordering::Acquire)
    }

    /// Test hook: makes the batcher thread exit at its next job (one empty job is sent to wake
    /// it when a slot is free).
    pub fn stop_for_test(&self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Ok(permit) = self.admit() {
            let (reply, _rx) = oneshot::channel();
            let _ = self.inner.tx.send(Job {
                x: Vec::new(),
                n: 0,
                queued: Instant::now(),
                reply,
                _permit: permit,
            });
        }
    }

    /// The model's shapes and normalisation.
    pub fn spec(&self) -> &ModelSpec {
        &self.inner.spec
    }

    /// Counters so far.
    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        EngineStats {
            requests: c.requests.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            rows: c.rows.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Takes one of the `max_in_flight` permits, or fails at once with [`Error::Overloaded`].
    pub fn admit(&self) -> Result<Permit> {
        let permit = self
            .inner
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded {
                limit: self.inner.max_in_flight,
            })?;
        metrics::gauge!(m::IN_FLIGHT).increment(1.0);
        Ok(Permit { _permit: permit })
    }

    /// Like [`Engine::admit`], but waits up to `within` for a permit to free before failing
    /// with [`Error::Overloaded`]. For callers that bound their own intake (the MQTT worker).
    pub async fn admit_within(&self, within: Duration) -> Result<Permit> {
        if let Ok(permit) = self.admit() {
            return Ok(permit);
        }
        let limit = self.inner.max_in_flight;
        let permit = tokio::time::timeout(within, self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::Overloaded { limit })?
            .map_err(|_| Error::Overloaded { limit })?;
        metrics::gauge!(m::IN_FLIGHT).increment(1.0);
        Ok(Permit { _permit: permit })
    }

    /// Logits for `n` validated images (`x` in the model's input space), with the request's
    /// [`Permit`] from [`Engine::admit`] (freed once its batch has run).
    pub async fn logits(&self, permit: Permit, x: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Job {
                x,
                n,
                queued: Instant::now(),
                reply,
                _permit: permit,
            })
            .map_err(|_| Error::ShuttingDown)?;
        rx.await
            .map_err(|_| Error::Backend("the batcher dropped a request".into()))?
    }
}

/// One admitted request; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Permit {
    fn drop(&mut self) {
        metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
    }
}

struct Batcher {
    backend: Box<dyn InferenceBackend>,
    rx: mpsc::Receiver<Job>,
    cfg: BatchConfig,
    spec: ModelSpec,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Batcher {
    fn run(mut self) {
        let mut carry: Option<Job> = None;
        loop {
            let first = match carry.take() {
                Some(j) => j,
                None => match self.rx.recv() {
                    Ok(j) => j,
                    Err(_) => return, // every Engine handle is gone
                },
            };
            if self.stop.load(Ordering::Acquire) {
                return; // test hook: the batcher "dies" (pending jobs get dropped)
            }
            let deadline = first.queued + Duration::from_micros(self.cfg.max_wait_us);
            let mut rows = first.n;
            let mut jobs = vec![first];
            while rows < self.cfg.max_batch_size {
                let next = if self.cfg.max_wait_us == 0 {
                    self.rx.try_recv().ok()
                } else {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.rx.recv_timeout(left).ok()
                };
                let Some(job) = next else { break };
                if rows + job.n > self.cfg.max_batch_size {
                    carry = Some(job);
                    break;
                }
                rows += job.n;
                jobs.push(job);
            }
            self.run_batch(jobs, rows);
        }
    }

    fn run_batch(&mut self, jobs: Vec<Job>, rows: usize) {
        let start = Instant::now();
        for j in &jobs {
            metrics::histogram!(m::QUEUE_SECONDS).record(start.duration_since(j.queued).as_secs_f64());
        }
        let dim = self.spec.input_dim();
        let classes = self.spec.classes;
        let mut x = Vec::with_capacity(rows * dim);
        for j in &jobs {
            x.extend_from_slice(&j.x);
        }
        let backend = &mut self.backend;
        // A panic inside the model must not take the batcher (and so the server) down.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| backend.logits(&x, rows)))
            .unwrap_or_else(|_| Err(Error::Backend("the model panicked".into())));
        let out = out.and_then(|v| {
            if v.len() == rows * classes {
                Ok(v)
            } else {
                Err(Error::Backend(format!(
                    "model returned {} values for {rows} rows",
                    v.len()
                )))
            }
        });
        metrics::histogram!(m::BATCH_SECONDS).record(start.elapsed().as_secs_f64());
        metrics::histogram!(m::BATCH_SIZE).record(rows as f64);
        let c = &self.counters;
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.rows.fetch_add(rows as u64, Ordering::Relaxed);
        c.requests.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        c.largest_batch.fetch_max(rows as u64, Ordering::Relaxed);
        match out {
            Ok(logits) => {
                let mut offset = 0;
                for j in jobs {
                    let len = j.n * classes;
                    let part = logits[offset..offset + len].to_vec();
                    offset += len;
                    j.answer(Ok(part));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, rows, "batch failed");
                for j in jobs {
                    j.answer(Err(Error::Backend("batch failed".into())));
                }
            }
        }
    }
}
