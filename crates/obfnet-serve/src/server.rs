//! One listener for REST and gRPC (HTTP/1.1 and HTTP/2, cleartext or TLS), graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use http::{HeaderValue, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::config::TlsConfig;
use crate::state::AppState;
use crate::{Error, Result};

/// The header carrying the request id (taken from the client when present, else assigned).
pub const REQUEST_ID: &str = "x-request-id";

/// The whole HTTP application: OIP REST routes, the gRPC service (on its own paths of the same
/// router) and `/metrics`, with request ids, tracing spans (method, path, id; never bodies or
/// the `Authorization` header), panic protection, a load-shedding concurrency limit in front of
/// everything but the health probes, `Content-Encoding: gzip`/`deflate` request bodies (the
/// body limit counts decompressed bytes) and gzip/deflate responses for clients that accept them.
pub fn router(state: AppState) -> Router {
    crate::metrics::handle();
    let grpc = crate::grpc::service(state.clone());
    let shed = Arc::new(tokio::sync::Semaphore::new(
        state.config().max_concurrent_requests,
    ));
    crate::rest::routes(state.clone())
        .route_service("/inference.GRPCInferenceService/{*method}", grpc)
        .fallback(crate::rest::not_found)
        .layer(RequestDecompressionLayer::new().gzip(true).deflate(true))
        .layer(CompressionLayer::new().gzip(true).deflate(true))
        .layer(axum::middleware::from_fn_with_state(
            (shed, state.config().max_concurrent_requests),
            load_shed,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            crate::Error::Backend("handler panicked".into()).into_response_json()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id)
        }))
        .layer(PropagateRequestIdLayer::new(http::HeaderName::from_static(
            REQUEST_ID,
        )))
        .layer(SetRequestIdLayer::new(
            http::HeaderName::from_static(REQUEST_ID),
            Counter::default(),
        ))
        .layer(SetSensitiveRequestHeadersLayer::new([
            http::header::AUTHORIZATION,
        ]))
}

/// Seconds a shed client is told to wait (`Retry-After`).
pub const RETRY_AFTER_S: u64 = 1;

/// Refuses a request at once (503 + `Retry-After`; for gRPC a trailers-only `UNAVAILABLE`) when
/// `max_concurrent_requests` are already being handled — before its body is read. Health
/// probes are never shed.
async fn load_shed(
    axum::extract::State((sem, limit)): axum::extract::State<(Arc<tokio::sync::Semaphore>, usize)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if req.uri().path().starts_with("/v2/health/") {
        return next.run(req).await;
    }
    let Ok(permit) = sem.try_acquire_owned() else {
        let grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let e = Error::Overloaded { limit };
        crate::metrics::record(if grpc { "grpc" } else { "rest" }, "shed", Err(&e));
        let mut resp = if grpc {
            let mut r = axum::response::Response::new(axum::body::Body::empty());
            let h = r.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", HeaderValue::from(tonic::Code::Unavailable as i32));
            h.insert("grpc-message", HeaderValue::from_static("server overloaded"));
            r
        } else {
            e.into_response_json()
        };
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        return resp;
    };
    let resp = next.run(req).await;
    drop(permit);
    resp
}

impl Error {
    fn into_response_json(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

/// Request ids `obfnet-<n>` for requests that come without one.
#[derive(Clone, Debug, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("obfnet-{n}"))
            .ok()
            .map(RequestId::new)
    }
}

/// Builds a rustls server config from PEM files (ring provider; ALPN h2 and http/1.1).
pub fn tls_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("certificate {}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("no certificate in {}", tls.cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| Error::Tls(format!("private key {}: {e}", tls.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Binds `addr` (use port 0 for a free port).
pub async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io("bind", addr, e))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and gives open
/// connections `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Slow-loris guard: a client gets 10 s to send its request headers.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        match &acceptor {
            None => {
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls =
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection(TokioIo::new(tls), service).into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open connections");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    Ok(())
}

/// The address a listener is bound to.
pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| Error::io("local address of", "listener", e))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
