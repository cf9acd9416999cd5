//! API keys over REST and gRPC; TLS with a certificate made in the test.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use obfnet_serve::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use obfnet_serve::pb::{ServerLiveRequest, ServerMetadataRequest};
use tonic::Code;

use crate::common::*;

fn with_keys() -> obfnet_serve::ServeConfig {
    let mut c = cfg();
    c.api_keys = vec!["k-alpha".into(), "k-beta".into()];
    c
}

#[tokio::test]
async fn rest_requires_a_bearer_key_except_health() -> TestResult {
    let s = TestServer::start(with_keys(), lenet()).await;
    assert_eq!(get(&s.url("/v2/health/live")).await.status, 200);
    assert_eq!(get(&s.url("/v2/health/ready")).await.status, 200);
    for path in ["/v2", "/v2/models/lenet5", "/v2/models/lenet5/ready", "/metrics"] {
        let r = get(&s.url(path)).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.headers.get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        assert!(r.error().contains("API key"));
        let r = request(
            "GET",
            &s.url(path),
            &[("authorization", "Bearer wrong")],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 401, "{path}");
        let r = request(
            "GET",
            &s.url(path),
            &[("authorization", "Bearer k-beta")],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 200, "{path}");
    }
    let body = serde_json::to_vec(&u8_request(&image_u8(0)))?;
    let r = request("POST", &infer_url(&s), &[], body.clone()).await;
    assert_eq!(r.status, 401);
    let r = request(
        "POST",
        &infer_url(&s),
        &[("authorization", "Bearer k-alpha")],
        body,
    )
    .await;
    assert_eq!(r.status, 200);
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn grpc_requires_authorization_metadata_except_health() -> TestResult {
    let s = TestServer::start(with_keys(), lenet()).await;
    let mut c = crate::grpc::client(&s).await;
    assert!(c.server_live(ServerLiveRequest {}).await?.into_inner().live);
    let e = c
        .server_metadata(ServerMetadataRequest {})
        .await
        .expect_err("no key");
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = c
        .model_infer(crate::grpc::raw_request("UINT8", vec![784], image_u8(0)))
        .await
        .expect_err("no key");
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut req = tonic::Request::new(crate::grpc::raw_request("UINT8", vec![784], image_u8(0)));
    req.metadata_mut()
        .insert("authorization", "Bearer k-alpha".parse()?);
    assert!(c.model_infer(req).await.is_ok());
    let mut req = tonic::Request::new(ServerMetadataRequest {});
    req.metadata_mut().insert("authorization", "Bearer nope".parse()?);
    assert_eq!(
        c.server_metadata(req).await.expect_err("bad key").code(),
        Code::Unauthenticated
    );
    s.stop().await?;
    Ok(())
}

#[tokio::test]
async fn tls_serves_rest_and_grpc() -> TestResult {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let dir = tempfile::tempdir()?;
    let tls = obfnet_serve::TlsConfig {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&tls.cert, cert.cert.pem())?;
    std::fs::write(&tls.key, cert.signing_key.serialize_pem())?;
    let server_cfg = obfnet_serve::tls_config(&tls)?;
    let s = TestServer::start_tls(cfg(), lenet(), Some(server_cfg)).await;

    // A rustls client (ring) trusting only the test certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone())?;
    let client_cfg = |alpn: &[u8]| {
        let mut c =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
        c.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(c)
    };
    // HTTPS/1.1 by hand: TLS stream + hyper handshake.
    let tcp = tokio::net::TcpStream::connect(s.addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let stream = tokio_rustls::TlsConnector::from(client_cfg(b"http/1.1"))
        .connect(name.clone(), tcp)
        .await?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::post("/v2/models/lenet5/infer")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(serde_json::to_vec(&u8_request(
            &image_u8(0),
        ))?)))?;
    let resp = send.send_request(req).await?;
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(v["outputs"][0]["name"], "label");

    // Cleartext to the TLS port fails (no plaintext fallback).
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let plain = client
        .request(http::Request::get(s.url("/v2/health/live")).body(Full::new(Bytes::new()))?)
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));

    // gRPC over TLS (HTTP/2 via ALPN) with tonic's client over our rustls stream.
    let tcp = tokio::net::TcpStream::connect(s.addr).await?;
    let stream = tokio_rustls::TlsConnector::from(client_cfg(b"h2"))
        .connect(name, tcp)
        .await?;
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await?;
    tokio::spawn(conn);
    let svc = H2Service {
        send,
        authority: format!("localhost:{}", s.addr.port()),
    };
    let mut c = GrpcInferenceServiceClient::new(svc);
    assert!(c.server_live(ServerLiveRequest {}).await?.into_inner().live);
    s.stop().await?;
    Ok(())
}

/// A tower service over one HTTP/2 connection, for tonic's generated client.
#[derive(Clone)]
struct H2Service {
    send: hyper::client::conn::http2::SendRequest<tonic::body::Body>,
    authority: String,
}

impl tower::Service<http::Request<tonic::body::Body>> for H2Service {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        let uri = format!(
            "https://{}{}",
            self.authority,
            req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        if let Ok(u) = uri.parse() {
            *req.uri_mut() = u;
        }
        let fut = self.send.send_request(req);
        Box::pin(fut)
    }
}
