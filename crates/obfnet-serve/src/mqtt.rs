//! The MQTT v5 worker: devices publish inference requests, workers of one group split them
//! through a shared subscription, and each answer goes to the request's Response Topic with its
//! Correlation Data.
//!
//! # Messages
//! - Request: published at QoS 1 on the request topic (`obfnet/infer/<model>` by default) with
//!   the MQTT v5 *Response Topic* property set (and usually *Correlation Data*). The payload is
//!   the OIP REST inference body: JSON, or with the binary tensor extension when the user
//!   property `inference-header-content-length` gives the JSON part's length.
//! - Reply: published at QoS 1 on the Response Topic, with the same Correlation Data, user
//!   property `status` (an HTTP status code: `200`, `400`, `503`, ...) and Content Type
//!   `application/json` (or `application/octet-stream` plus `inference-header-content-length`
//!   when outputs are binary). Errors are `{"error": "..."}`.
//!
//! # Limits
//! - Replies go only to Response Topics under [`MqttConfig::reply_topic_prefix`]
//!   (`obfnet/reply/` by default, no wildcards); a request naming any other topic is dropped
//!   unanswered (counted in [`WorkerStats::dropped`] and the failure metrics), so a device cannot
//!   make the worker publish elsewhere under the worker's identity. The broker's ACL should
//!   match: devices may write the request topic and read `obfnet/reply/<their id>/#`; the worker
//!   may read the request topic and write `obfnet/reply/#`.
//! - At most `receive_maximum` requests are handled at once, QoS 0 included: past that the
//!   worker stops reading from the broker until one finishes (TCP back-pressure), and the queue
//!   between reading and acknowledging is bounded by the same number. The broker is the queue:
//!   a QoS 1 request waits there (its delivery is flow-controlled by the Receive Maximum the
//!   worker announces), a QoS 0 request waits in the broker's outgoing buffer for this client
//!   and is dropped by the broker past its limits (mosquitto: `max_queued_messages`,
//!   `max_queued_bytes`), as QoS 0 allows. Nothing is answered 503 because of this bound.
//! - A request the worker took from the broker waits for a model slot (`max_in_flight`, shared
//!   with REST and gRPC) within the request timeout, instead of being refused at once as an
//!   HTTP request is: the worker's intake is already bounded, and bouncing a request it chose
//!   to read would only make the device retry. Past the timeout the reply is `503`.
//!
//! # Delivery
//! Acknowledgements are manual: a request is acknowledged (PUBACK) only after its reply has
//! been handed to the client, in the order requests arrived. The session is persistent
//! (`clean_start = false`, session expiry from the config), so after a broker restart (with
//! persistence on) or a network cut, unacknowledged requests are delivered again and unacked
//! replies re-sent: delivery is at least once; devices match replies by Correlation Data.
//! The worker re-subscribes on every connection, so a broker that lost its state still routes.
//!
//! Limitation (observed with mosquitto 2.0.11): the broker restores persistent sessions and
//! their queued messages after a restart, but requests published on the shared subscription
//! after the restart and before a worker has reconnected and re-subscribed (usually well under
//! a second; the reconnect backoff is at most 5 s) are dropped, although the broker
//! acknowledged them to the device. Devices should retry a request whose reply does
//! not come within their timeout (replies carry the Correlation Data, so duplicates are easy to
//! drop).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::MqttConfig;
use crate::rest::{EncodedReply, HEADER_LENGTH};
use crate::state::AppState;
use crate::{Error, metrics as m};

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Connections made to the broker (1 + reconnections).
    pub connections: AtomicU64,
    /// Subscriptions the broker confirmed (one per connection).
    pub subscribed: AtomicU64,
    /// Requests answered (successfully or with an error reply).
    pub answered: AtomicU64,
    /// Requests dropped because they had no Response Topic, or one outside the configured
    /// reply prefix.
    pub dropped: AtomicU64,
    /// Times the worker stopped reading from the broker because `receive_maximum` requests
    /// were being handled (back-pressure, mostly from QoS 0 floods).
    pub throttled: AtomicU64,
}

/// An MQTT v5 worker bound to a server state.
#[derive(Debug)]
pub struct MqttWorker {
    state: AppState,
    cfg: MqttConfig,
    stats: Arc<WorkerStats>,
    // Marks the worker gone for readiness when `run` ends (or the worker is dropped).
    _alive: crate::state::WorkerAlive,
}

impl MqttWorker {
    /// A worker for `state` with the broker settings `cfg`.
    /// The server's readiness includes this worker from now until it stops.
    pub fn new(state: AppState, cfg: MqttConfig) -> MqttWorker {
        let alive = state.register_worker();
        MqttWorker {
            state,
            cfg,
            stats: Arc::new(WorkerStats::default()),
            _alive: alive,
        }
    }

    /// The worker's counters (shared; they keep counting while it runs).
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    fn options(&self) -> crate::Result<MqttOptions> {
        let c = &self.cfg;
        let id = c
            .client_id
            .clone()
            .unwrap_or_else(|| format!("obfnet-{}", std::process::id()));
        let mut o = MqttOptions::new(id, c.host.clone(), c.port);
        o.set_keep_alive(Duration::from_secs(c.keep_alive_s.max(1)))
            .set_clean_start(false)
            .set_session_expiry_interval(Some(c.session_expiry_s))
            .set_receive_maximum(Some(c.receive_maximum))
            // rumqttc refuses incoming packets above 10 KiB unless told otherwise.
            .set_max_packet_size(Some(
                u32::try_from(self.state.config().max_body_bytes.saturating_add(64 * 1024))
                    .unwrap_or(u32::MAX),
            ))
            .set_manual_acks(true)
            .set_connection_timeout(5);
        if let Some(user) = &c.username {
            o.set_credentials(user.clone(), c.password.clone().unwrap_or_default());
        }
        if let Some(ca) = &c.tls_ca {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(tls_client_config(ca)?),
            ));
        }
        // Requests and replies are small: without TCP_NODELAY each reply waits for the broker's
        // delayed ACK (≈ 40 ms per hop on Linux) behind Nagle's algorithm.
        let mut net = o.network_options();
        net.set_tcp_nodelay(true);
        o.set_network_options(net);
        Ok(o)
    }

    /// Runs until `shutdown` resolves: connects (and reconnects with backoff), subscribes to the
    /// shared request topic on every connection, answers requests. On shutdown it stops taking
    /// requests, lets the ones in flight finish (up to the configured grace), then disconnects.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> crate::Result<()> {
        let filter = self.cfg.shared_filter(&self.state.config().model_name);
        let bound = usize::from(self.cfg.receive_maximum);
        // Room for every handler's reply and every ack, so a handler never waits on the event
        // loop while the loop waits on a handler slot.
        let (client, mut events) = AsyncClient::new(self.options()?, (4 * bound).max(256));
        // Requests being handled (QoS 0 included): at most `receive_maximum`.
        let slots = Arc::new(tokio::sync::Semaphore::new(bound));
        // Bounded: when full, the loop waits (and stops reading from the broker).
        let (ack_tx, mut ack_rx) = mpsc::channel::<(Publish, tokio::task::JoinHandle<()>)>(bound);
        let acker_client = client.clone();
        // Acks in arrival order, each after its reply was queued.
        let mut acker = tokio::spawn(async move {
            while let Some((publish, handle)) = ack_rx.recv().await {
                let _ = handle.await;
                if let Err(e) = acker_client.ack(&publish).await {
                    tracing::warn!(error = %e, "could not queue an MQTT ack");
                }
            }
        });
        let mut shutdown = std::pin::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        let mut stopping: Option<Instant> = None;
        let grace = Duration::from_millis(self.state.config().shutdown_grace_ms);
        let mut ack_tx = Some(ack_tx);
        loop {
            let event = tokio::select! {
                e = events.poll() => e,
                () = &mut shutdown, if stopping.is_none() => {
                    tracing::info!("MQTT worker stopping: finishing requests in flight");
                    stopping = Some(Instant::now());
                    ack_tx = None; // the acker ends once every queued request is acked
                    continue;
                }
                _ = &mut acker, if stopping.is_some() => {
                    // Everything acked: give the event loop a moment to flush, then leave.
                    let _ = client.disconnect().await;
                    let flush = tokio::time::timeout(Duration::from_secs(2), async {
                        while events.poll().await.is_ok() {}
                    });
                    let _ = flush.await;
                    return Ok(());
                }
            };
            if stopping.is_some_and(|t| t.elapsed() > grace) {
                tracing::warn!("MQTT worker: grace period over with requests still in flight");
                let _ = client.disconnect().await;
                return Ok(());
            }
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(100);
                    self.stats.connections.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(m::MQTT_CONNECTIONS).increment(1);
                    tracing::info!(session_present = ack.session_present, %filter, "MQTT connected");
                    if stopping.is_none()
                        && let Err(e) = client.subscribe(filter.clone(), QoS::AtLeastOnce).await
                    {
                        tracing::warn!(error = %e, "could not queue the MQTT subscription");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    self.stats.subscribed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%filter, "MQTT subscribed");
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some(tx) = &ack_tx else {
                        // Stopping: leave it unacknowledged; the broker will deliver it again.
                        continue;
                    };
                    let permit = match slots.clone().try_acquire_owned() {
                        Ok(permit) => permit,
                        Err(_) => {
                            // Back-pressure: stop reading until a request finishes.
                            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                            match slots.clone().acquire_owned().await {
                                Ok(permit) => permit,
                                Err(_) => continue, // never closed
                            }
                        }
                    };
                    let handle = tokio::spawn(handle_request(
                        self.state.clone(),
                        self.cfg.clone(),
                        client.clone(),
                        p.clone(),
                        self.stats.clone(),
                        permit,
                    ));
                    let _ = tx.send((p, handle)).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Checks a request's size and parses its `inference-header-content-length` user property.
fn check_payload(limit: usize, header_len: Option<&str>, payload: &[u8]) -> crate::Result<Option<usize>> {
    let h = header_len
        .map(|v| {
            v.trim().parse::<usize>().map_err(|_| {
                Error::invalid(
                    crate::error::InvalidKind::Binary,
                    "inference-header-content-length is not a number",
                )
            })
        })
        .transpose()?;
    if payload.len() > limit {
        return Err(Error::TooLarge { limit });
    }
    Ok(h)
}

/// Decodes an MQTT request (payload and `inference-header-content-length` property) to model
/// input as the worker does, without running the model: the fuzz / property-test entry point.
#[doc(hidden)]
pub fn decode_to_model_input(
    spec: &crate::ModelSpec,
    max_rows: usize,
    max_body_bytes: usize,
    header_len: Option<&str>,
    payload: &[u8],
) -> crate::Result<Vec<f32>> {
    let h = check_payload(max_body_bytes, header_len, payload)?;
    crate::rest::decode_to_model_input(spec, max_rows, payload, h)
}

/// A rustls client config (ring provider) trusting the CA certificates in `ca` (PEM).
fn tls_client_config(ca: &std::path::Path) -> crate::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("MQTT CA file {}: {e}", ca.display())))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::Tls(format!(
            "no usable CA certificate in {}",
            ca.display()
        )));
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

async fn handle_request(
    st: AppState,
    cfg: MqttConfig,
    client: AsyncClient,
    p: Publish,
    stats: Arc<WorkerStats>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let props = p.properties.clone().unwrap_or_default();
    let Some(response_topic) = props.response_topic.clone().filter(|t| !t.is_empty()) else {
        tracing::warn!("MQTT request without a Response Topic dropped");
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        let e = Error::invalid(crate::error::InvalidKind::Parameter, "no response topic");
        m::record("mqtt", "infer", Err(&e));
        return;
    };
    if !cfg.reply_topic_allowed(&response_topic) {
        tracing::warn!(
            prefix = %cfg.reply_topic_prefix,
            "MQTT request whose Response Topic is outside the reply prefix dropped"
        );
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        let e = Error::invalid(crate::error::InvalidKind::Parameter, "response topic not allowed");
        m::record("mqtt", "infer", Err(&e));
        return;
    }
    let header_len = props
        .user_properties
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(HEADER_LENGTH))
        .map(|(_, v)| v.as_str());
    let result = match check_payload(st.config().max_body_bytes, header_len, &p.payload) {
        Err(e) => Err(e),
        Ok(h) => match tokio::time::timeout(
            st.timeout(),
            crate::rest::run_json_request(&st, crate::state::Admission::Wait, &p.payload, h),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                ms: st.config().request_timeout_ms,
            }),
        },
    };
    m::record("mqtt", "infer", result.as_ref().map(|_| ()));
    let (payload, status, binary_len) = match result {
        Ok(EncodedReply { body, header_len }) => {
            metrics::histogram!(m::LATENCY_SECONDS, "protocol" => "mqtt")
                .record(started.elapsed().as_secs_f64());
            (body, 200, header_len)
        }
        Err(e) => {
            if !e.is_client_fault() {
                tracing::error!(error = %e, "MQTT inference failed");
            }
            let body = serde_json::to_vec(&json!({"error": e.public_message()})).unwrap_or_default();
            (body, e.http_status().as_u16(), None)
        }
    };
    let mut user_properties = vec![("status".to_string(), status.to_string())];
    if let Some(h) = binary_len {
        user_properties.push((HEADER_LENGTH.to_string(), h.to_string()));
    }
    let reply_props = PublishProperties {
        correlation_data: props.correlation_data.clone(),
        content_type: Some(
            if binary_len.is_some() {
                "application/octet-stream"
            } else {
                "application/json"
            }
            .to_string(),
        ),
        user_properties,
        ..Default::default()
    };
    if let Err(e) = client
        .publish_with_properties(
            response_topic,
            QoS::AtLeastOnce,
            false,
            Bytes::from(payload),
            reply_props,
        )
        .await
    {
        tracing::warn!(error = %e, "could not queue an MQTT reply");
        return;
    }
    stats.answered.fetch_add(1, Ordering::Relaxed);
}
