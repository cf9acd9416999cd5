//! Prometheus metrics (through the `metrics` facade) served on `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `protocol` (`rest`, `grpc`, `mqtt`), `endpoint` and `status`
/// (`ok` or `error`).
pub const REQUESTS: &str = "obfnet_requests_total";
/// Failed requests by `protocol` and `reason` (see [`crate::Error::reason`]).
pub const FAILURES: &str = "obfnet_request_failures_total";
/// End-to-end inference latency by `protocol`, seconds.
pub const LATENCY_SECONDS: &str = "obfnet_request_duration_seconds";
/// Requests admitted and not yet answered.
pub const IN_FLIGHT: &str = "obfnet_in_flight_requests";
/// Images per forward pass.
pub const BATCH_SIZE: &str = "obfnet_batch_size";
/// Time of one forward pass, seconds.
pub const BATCH_SECONDS: &str = "obfnet_batch_duration_seconds";
/// Time a request waited for its batch, seconds.
pub const QUEUE_SECONDS: &str = "obfnet_queue_wait_seconds";
/// MQTT (re)connections of the worker.
pub const MQTT_CONNECTIONS: &str = "obfnet_mqtt_connections_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder on first use; `None` if another recorder was
/// installed first (then `/metrics` answers 503).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                10.0,
            ];
            let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &sizes));
            match builder.and_then(|b| b.install_recorder()) {
                Ok(h) => {
                    describe();
                    spawn_upkeep(h.clone());
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Prometheus recorder not installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample (latency, queue wait, batch size and time: four per
/// request) in a growing buffer until upkeep folds them into the buckets. `install_recorder`
/// does not schedule upkeep and `/metrics` only runs it when scraped, so an unscraped server grew
/// by a few bytes per request without bound (≈ 5 MiB over the 5-minute soak). One thread runs it
/// periodically for the life of the process.
fn spawn_upkeep(h: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                h.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started; histograms drain only when /metrics is scraped");
    }
}

fn describe() {
    metrics::describe_counter!(REQUESTS, "Requests answered");
    metrics::describe_counter!(FAILURES, "Failed requests by reason");
    metrics::describe_histogram!(
        LATENCY_SECONDS,
        metrics::Unit::Seconds,
        "Inference request latency"
    );
    metrics::describe_gauge!(IN_FLIGHT, "Requests admitted and not yet answered");
    metrics::describe_histogram!(BATCH_SIZE, "Images per forward pass");
    metrics::describe_histogram!(BATCH_SECONDS, metrics::Unit::Seconds, "Forward pass time");
    metrics::describe_histogram!(QUEUE_SECONDS, metrics::Unit::Seconds, "Time waiting for a batch");
    metrics::describe_counter!(MQTT_CONNECTIONS, "MQTT worker connections to the broker");
}

/// Renders the exposition text.
pub fn render() -> Option<String> {
    let h = handle()?;
    h.run_upkeep();
    Some(h.render())
}

/// Records one finished request.
pub(crate) fn record(protocol: &'static str, endpoint: &'static str, result: Result<(), &crate::Error>) {
    match result {
        Ok(()) => {
            metrics::counter!(REQUESTS, "protocol" => protocol, "endpoint" => endpoint, "status" => "ok")
                .increment(1)
        }
        Err(e) => {
            metrics::counter!(REQUESTS, "protocol" => protocol, "endpoint" => endpoint, "status" => "error")
                .increment(1);
            metrics::counter!(FAILURES, "protocol" => protocol, "reason" => e.reason()).increment(1);
        }
    }
}
