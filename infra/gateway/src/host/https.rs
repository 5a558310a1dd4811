//! Outbound HTTPS of guests, as Spin 4 sends it: TLS by rustls, ALPN offering `h2`
//! then `http/1.1`, and HTTP/2 when the server picks it (APNs speaks nothing else).
//! The roots are webpki's (Mozilla's), as Spin's default, unless a `[[client_tls]]`
//! entry of the runtime-config file names the component and the request's host; then
//! that entry's roots and client certificate. Plain `http://` keeps wasmtime's own
//! HTTP/1.1 client. One connection per request, as before: no pool.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::runtime_config::{ClientTls, RuntimeConfig};

/// What a request's answer is: the response, and the future that reports how the
/// connection ended.
pub type Sent = (
    Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// wasmtime's defaults when a guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Connection-specific header fields, which HTTP/2 forbids (RFC 9113 §8.2.2); `host`
/// travels as `:authority`.
const HTTP1_ONLY_HEADERS: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The TLS configurations of one component: its `[[client_tls]]` entries by host,
/// in file order, else the default.
#[derive(Debug, Clone, Default)]
pub struct ComponentTls {
    entries: Vec<(Vec<String>, Arc<ClientConfig>)>,
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
                Ok((hosts, Arc::new(client_config(entry)?)))
            })
            .collect::<Result<_>>()
            .with_context(|| format!("component `{component}`: [[client_tls]]"))?;
        Ok(Self { entries })
    }

    /// The configuration for `host` (lower case, no port): the first entry naming it,
    /// else the default.
    pub fn for_host(&self, host: &str) -> Arc<ClientConfig> {
        self.entries
            .iter()
            .find(|(hosts, _)| hosts.iter().any(|h| h == host))
            .map(|(_, config)| config.clone())
            .unwrap_or_else(|| DEFAULT.clone())
    }
}

/// The configuration of a host no entry names: webpki's roots, no client certificate.
static DEFAULT: LazyLock<Arc<ClientConfig>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let mut config = builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn();
    Arc::new(config)
});

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
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
    let mut config = match &entry.client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .context(
                "client_cert_file and client_private_key_file do not make a client certificate",
            )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn();
    Ok(config)
}

/// Sends an `https://` request over a new connection: HTTP/2 if the server chose
/// `h2` by ALPN, else HTTP/1.1.
pub async fn send(
    mut request: Request<WasiBody>,
    options: Option<RequestOptions>,
    tls: Arc<ClientConfig>,
) -> Result<Sent, Error> {
    let uri = request.uri();
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let option = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
    };
    let connect_timeout = option(|o| o.connect_timeout);
    let first_byte_timeout = option(|o| o.first_byte_timeout);
    let between_bytes_timeout = option(|o| o.between_bytes_timeout).max(Duration::new(0, 1));

    // An IPv6 literal keeps its brackets in the URI's host.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let server_name = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::from(ip),
        Err(_) => ServerName::try_from(bare.to_string())?,
    };
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect((bare, port)))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let stream = tokio::time::timeout(
        connect_timeout,
        tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)?
    .map_err(Error::Tls)?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);

    type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, hyper::Error>> + Send>>;
    let (response, conn): (Boxed<Response<hyper::body::Incoming>>, Boxed<()>) = if h2 {
        for name in HTTP1_ONLY_HEADERS {
            request.headers_mut().remove(name);
        }
        let (mut sender, conn) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http2::Builder::new(TokioExecutor::new()).handshake(io),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        (
            Box::pin(async move { sender.send_request(request).await }),
            Box::pin(conn),
        )
    } else {
        // The request line names only the path; the authority is in `host`.
        *request.uri_mut() = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let (mut sender, conn) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::Builder::new().handshake(io),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        (
            Box::pin(async move { sender.send_request(request).await }),
            Box::pin(conn),
        )
    };
    // The connection runs on its own task; the guest learns how it ended from the
    // returned future.
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = ended_tx.send(conn.await);
    });
    let response = tokio::time::timeout(first_byte_timeout, response)
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let mut timer = tokio::time::interval(between_bytes_timeout);
    timer.reset();
    let response = response.map(|incoming| TimedBody { incoming, timer }.boxed_unsync());
    let ended = async move {
        match ended_rx.await {
            Ok(Err(err)) if err.is_timeout() => Err(Error::HttpResponseTimeout),
            Ok(Err(err)) => Err(err.into()),
            Ok(Ok(())) | Err(_) => Ok(()),
        }
    };
    Ok((response, Box::new(ended)))
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
