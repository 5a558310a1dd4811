//! Outbound HTTPS of guests, as Spin 4 sends it: TLS by rustls, ALPN offering `h2`
//! then `http/1.1`, and HTTP/2 when the server picks it (APNs speaks nothing else).
//! The roots are webpki's (Mozilla's), as wasmtime's own sender's, unless a `[[client_tls]]`
//! entry of the runtime-config file names the component and the request's host; then
//! that entry's roots and client certificate. Connections are pooled per TLS
//! configuration, as Spin pools them (APNs asks that a provider keep its connections
//! open rather than open one per notification). Plain `http://` keeps wasmtime's own
//! HTTP/1.1 client.

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::runtime_config::{ClientTls, RuntimeConfig};

/// What a request's answer is: the response, and the future wasi-http awaits for the
/// connection's end (always `Ok` here: the pool drives its connections).
pub type Sent = (
    Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// Pooled HTTPS connections of one TLS configuration.
pub type Pool = Client<hyper_rustls::HttpsConnector<HttpConnector>, WasiBody>;

/// wasmtime's default when a guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long an unused pooled connection stays open (hyper's default).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The connection pools of one component: one per `[[client_tls]]` entry naming it,
/// by host, in file order, else the shared default.
#[derive(Clone, Default)]
pub struct ComponentTls {
    entries: Vec<(Vec<String>, Pool)>,
}

impl std::fmt::Debug for ComponentTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<&Vec<String>> = self.entries.iter().map(|(hosts, _)| hosts).collect();
        f.debug_struct("ComponentTls")
            .field("client_tls_hosts", &hosts)
            .finish()
    }
}

impl ComponentTls {
    /// The `[[client_tls]]` entries of `runtime` that name `component`.
    pub fn new(runtime: &RuntimeConfig, component: &str) -> Result<Self> {
        let entries = runtime
            .client_tls
            .iter()
            .filter(|entry| entry.component_ids.iter().any(|id| id == component))
            .map(|entry| {
                let hosts = entry.hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
                Ok((hosts, pool(client_config(entry)?)))
            })
            .collect::<Result<_>>()
            .with_context(|| format!("component `{component}`: [[client_tls]]"))?;
        Ok(Self { entries })
    }

    /// The pool for `host` (lower case, no port): the first entry naming it, else the
    /// default.
    pub fn for_host(&self, host: &str) -> Pool {
        self.entries
            .iter()
            .find(|(hosts, _)| hosts.iter().any(|h| h == host))
            .map(|(_, pool)| pool.clone())
            .unwrap_or_else(|| DEFAULT.clone())
    }
}

/// The pool of hosts no entry names: webpki's roots, no client certificate.
static DEFAULT: LazyLock<Pool> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    pool(
        builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
});

/// A pool whose new connections offer ALPN `h2` then `http/1.1`.
fn pool(config: ClientConfig) -> Pool {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false); // the URI is https; TLS wraps this connector
    tcp.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_all_versions()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(https)
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
}

/// The rustls configuration of one `[[client_tls]]` entry.
fn client_config(entry: &ClientTls) -> Result<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if entry.use_webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if entry.use_platform_roots {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a system root certificate could not be read");
        }
        roots.add_parsable_certificates(found.certs);
    }
    for cert in &entry.root_certificates {
        roots
            .add(cert.clone())
            .context("a certificate of ca_roots_file is not a usable root")?;
    }
    let builder = builder().with_root_certificates(roots);
    let config = match &entry.client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .context(
                "client_cert_file and client_private_key_file do not make a client certificate",
            )?,
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// Sends an `https://` request on a pooled connection of `pool` (a new one is HTTP/2
/// if the server chose `h2` by ALPN, else HTTP/1.1). The guest's connect and
/// first-byte timeouts bound the wait for the response head together.
pub async fn send(
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
    pool: Pool,
) -> Result<Sent, Error> {
    let option = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
    };
    let head_timeout = option(|o| o.connect_timeout) + option(|o| o.first_byte_timeout);
    let between_bytes_timeout = option(|o| o.between_bytes_timeout).max(Duration::new(0, 1));
    let response = tokio::time::timeout(head_timeout, pool.request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(|err| client_error(&err))?;
    let mut timer = tokio::time::interval(between_bytes_timeout);
    timer.reset();
    let response = response.map(|incoming| TimedBody { incoming, timer }.boxed_unsync());
    // The pool drives its connections: there is no per-request connection to report on.
    Ok((response, Box::new(async { Ok(()) })))
}

/// The wasi-http error of a failed pooled request.
fn client_error(err: &hyper_util::client::legacy::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return tls_error(tls);
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper_error(hyper);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            // rustls reports through io::Error; its inner error is the rustls one.
            if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                return tls_error(tls);
            }
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
                std::io::ErrorKind::TimedOut => Error::ConnectionTimeout,
                _ => Error::Connect(std::io::Error::new(io.kind(), io.to_string())),
            };
        }
        source = cause.source();
    }
    if err.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::HttpProtocolError
    }
}

/// A failed handshake: the certificate, or anything else of TLS.
fn tls_error(tls: &rustls::Error) -> Error {
    tracing::debug!(error = %tls, "outbound TLS failed");
    match tls {
        rustls::Error::InvalidCertificate(_) => Error::TlsCertificateError,
        _ => Error::TlsProtocolError,
    }
}

/// A hyper error by reference (wasmtime's `From` takes it by value).
fn hyper_error(err: &hyper::Error) -> Error {
    if err.is_timeout() {
        Error::HttpResponseTimeout
    } else if err.is_canceled() || err.is_closed() {
        Error::ConnectionTerminated
    } else {
        Error::HttpProtocolError
    }
}

/// A response body that fails when no frame comes for `between_bytes_timeout`.
struct TimedBody {
    incoming: hyper::body::Incoming,
    timer: tokio::time::Interval,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) if err.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timer.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timer.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
