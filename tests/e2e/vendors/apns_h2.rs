//! APNs as Apple serves it: TLS with ALPN `h2` only, then HTTP/2 — a client that cannot
//! speak HTTP/2 gets no connection. The certificate (for `127.0.0.1`) is signed by a CA
//! made here; the app host trusts it through a runtime-config file's `[[client_tls]]`.
//! Requests go through the same checks, scripts and records as the HTTP/1.1 fake's.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{Shared, respond, wire::WireRequest};

/// The running TLS listener; stops with its runtime when dropped.
pub struct ApnsH2 {
    pub origin: String,
    ca_pem: String,
    /// TLS connections accepted so far.
    connections: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl ApnsH2 {
    pub(super) fn start(shared: Arc<Shared>) -> ApnsH2 {
        let (ca_pem, cert_pem, key_pem) = certificates();
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("certificate");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate");
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the HTTP/2 APNs");
        let port = listener.local_addr().expect("address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (acceptor, shared) = (acceptor.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        shared
                            .state()
                            .failures
                            .push("APNs: a TLS handshake failed (ALPN h2 only)".into());
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, hyper::Error>(answer(&shared, req).await) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ApnsH2 {
            origin: format!("https://127.0.0.1:{port}"),
            ca_pem,
            connections,
            _runtime: runtime,
        }
    }

    /// TLS connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Writes the CA's certificate and a runtime-config file trusting it for
    /// `push-notify`'s requests to 127.0.0.1 into `dir`; returns the file's path.
    pub fn runtime_config(&self, dir: &Path) -> std::path::PathBuf {
        std::fs::write(dir.join("apns-ca.pem"), &self.ca_pem).expect("write the CA");
        let path = dir.join("runtime-config.toml");
        std::fs::write(
            &path,
            "[[client_tls]]\ncomponent_ids = [\"push-notify\"]\nhosts = [\"127.0.0.1\"]\n\
             ca_roots_file = \"apns-ca.pem\"\n",
        )
        .expect("write the runtime config");
        path
    }
}

/// A CA, and a certificate for `127.0.0.1` it signed, with that certificate's key.
fn certificates() -> (String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "courier e2e APNs CA");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("CA certificate");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&leaf_key, &ca).expect("certificate");
    (ca.pem(), cert.pem(), leaf_key.serialize_pem())
}

/// One request: read whole, checked and answered as the HTTP/1.1 fake does.
async fn answer(
    shared: &Shared,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let request = WireRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let answer = respond(shared, &request, parts.version);
    tokio::time::sleep(answer.delay).await;
    let mut response = hyper::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        // HTTP/2 has no connection-specific fields (the HTTP/1.1 fake closes each).
        if !name.eq_ignore_ascii_case("connection") {
            response = response.header(name, value);
        }
    }
    response
        .body(Full::new(Bytes::from(answer.body)))
        .expect("a valid answer")
}
