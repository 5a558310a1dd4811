//! Outgoing HTTP for guests: requests are checked against the component's
//! `allowed_outbound_hosts`; `http://<component>.spin.internal` is served in-process
//! by that component (Spin's local service chaining) without touching the network;
//! `https://` goes out as Spin sends it (`https.rs`), `http://` by wasmtime's client.

use std::sync::{Arc, Weak};

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::Grants;
use crate::faults::Faults;
use crate::outbound::{INTERNAL_SUFFIX, default_port};

/// Serves requests to `http://<component>.spin.internal` in process: the app does.
pub trait InternalRoutes: Send + Sync {
    fn serve_internal(
        self: Arc<Self>,
        component: String,
        request: http::Request<WasiBody>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, Error>> + Send>>;
}

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

pub struct OutboundHooks {
    internal: Weak<dyn InternalRoutes>,
    grants: Arc<Grants>,
    faults: Option<Arc<Faults>>,
}

impl OutboundHooks {
    pub fn new(
        internal: Weak<dyn InternalRoutes>,
        grants: Arc<Grants>,
        faults: Option<Arc<Faults>>,
    ) -> Self {
        Self {
            internal,
            grants,
            faults,
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .unwrap_or(0);
        let component = self.grants.component.clone();
        if !self
            .grants
            .allowed_outbound_hosts
            .allows(&scheme, &host, port)
        {
            tracing::warn!(%component, %scheme, %host, port, "outbound request denied: not in allowed_outbound_hosts");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let internal = host.ends_with(INTERNAL_SUFFIX);
        if self.faults.as_ref().is_some_and(|f| f.outbound(internal)) {
            tracing::debug!(%component, %scheme, %host, port, "injected fault: outbound request refused");
            return Box::new(async { Err(Error::ConnectionRefused) });
        }
        if let Some(target) = host.strip_suffix(INTERNAL_SUFFIX) {
            let target = target.to_string();
            let internal = self.internal.clone();
            return Box::new(async move {
                let internal = internal.upgrade().ok_or(Error::DestinationUnavailable)?;
                let response = internal.serve_internal(target, request).await?;
                Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                ))
            });
        }
        if scheme == "https" {
            let pool = self.grants.tls.for_host(&host);
            return Box::new(super::https::send(request, options, pool));
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}
