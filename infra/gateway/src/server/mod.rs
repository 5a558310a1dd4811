//! The loaded application: engine, components and pre-instances made once; one fresh
//! `Store` per request; routing, limits, logs and metrics around each call.
//!
//! # Layout
//! - `mod.rs`: [`App`] and its [`Limits`], and the app's background tasks (drainer,
//!   wake listener, pool housekeeping).
//! - `engine.rs`: the wasmtime engine (pooling allocator, epochs, code cache).
//! - `load.rs`: [`App::load`]: components, grants, routes, stores and parking from a
//!   manifest, with every configuration error before a port is bound.
//! - `incoming.rs`: one request from the network: routing, the body limit, parking
//!   offers and the answering runs of parked polls.
//! - `call.rs`: one component instance for one request: the store, the timeout, an
//!   abandoned request, and how a failed run is answered.
//! - `spin_headers.rs`: the `spin-*` request headers Spin gives a guest.
//! - `answers.rs`: the gateway's own answers (the API's error shape, `/metrics`).

mod answers;
mod call;
mod engine;
mod incoming;
mod load;
mod spin_headers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use http::{Request, Response};
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::host::{Grants, HostState, InternalRoutes, Stores};
use crate::metrics::Metrics;
use crate::parking::Parking;
use crate::routes::Router;

pub use answers::error_response;
pub(crate) use answers::{full, unavailable};
pub use engine::EPOCH_TICK;
pub(crate) use incoming::ParkOffer;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock limit of one request, guest time and host calls included.
    pub request_timeout: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Largest linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// Instances that may run at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Long-polls parked at once (see `parking/`); 0 turns parking off.
    pub max_parked: usize,
    /// How long a connection may take to send a request head (and how long a
    /// keep-alive connection may sit idle before its next one).
    pub header_timeout: Duration,
    /// Connections one client address may hold open at once; 0 for no cap.
    pub max_connections_per_address: usize,
    /// Pooled SQLite connections and PostgreSQL sessions unused this long are closed.
    pub pool_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1 << 20,
            max_memory_bytes: 256 << 20,
            max_instances: 1000,
            max_parked: crate::listen::DEFAULT_MAX_PARKED,
            header_timeout: crate::listen::DEFAULT_HEADER_TIMEOUT,
            max_connections_per_address: crate::listen::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            pool_idle: crate::idle::DEFAULT_POOL_IDLE,
        }
    }
}

pub(super) struct Loaded {
    pre: ProxyPre<HostState>,
    grants: Arc<Grants>,
}

/// The running application.
pub struct App {
    /// The stores every request's host interfaces share.
    pub stores: Arc<Stores>,
    pub metrics: Metrics,
    /// Fault injection, if turned on (`--faults`); `None` costs nothing.
    pub faults: Option<Arc<crate::faults::Faults>>,
    /// Wakes the queue drainer (see `drainer.rs`).
    pub poke: crate::drainer::Poke,
    /// Parked long-polls (see `parking/`), if the app has a sync route and an
    /// internal secret, and `--max-parked` is not 0.
    pub parking: Option<Arc<Parking>>,
    /// The PostgreSQL server parked polls listen to, when the store is PostgreSQL.
    wake_listener: Option<tokio_postgres::Config>,
    /// `(component, internal secret)` of the drain route, if the app has one.
    drain_route: Option<(String, String)>,
    engine: Engine,
    components: HashMap<String, Loaded>,
    router: Router<String>,
    limits: Limits,
    next_request_id: AtomicU64,
}

impl App {
    /// Starts the queue drainer if the app serves the drain route; it stops when `stop`
    /// is notified.
    pub fn start_drainer(
        self: &Arc<Self>,
        stop: Arc<tokio::sync::Notify>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let (component, secret) = self.drain_route.clone()?;
        tracing::info!(component, "queue drainer started");
        Some(tokio::spawn(crate::drainer::run(
            Arc::clone(self),
            component,
            secret,
            stop,
        )))
    }

    /// Starts the PostgreSQL wake listener of parked polls, if the store is PostgreSQL.
    pub fn start_parking(self: &Arc<Self>) {
        if let (Some(parking), Some(config)) = (&self.parking, &self.wake_listener) {
            tokio::spawn(crate::parking::listen(Arc::clone(parking), config.clone()));
        }
    }

    /// Closes pooled SQLite connections and PostgreSQL sessions unused for longer
    /// than `--pool-idle` (checking a few times per period), so what a burst opened
    /// goes away with it. Ends when the app is dropped.
    pub fn start_housekeeping(self: &Arc<Self>) {
        let ttl = self.limits.pool_idle;
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::idle::shrink_every(ttl));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { return };
                let stores = Arc::clone(&app.stores);
                drop(app);
                let pg = stores.postgres.shrink(ttl);
                let sqlite = tokio::task::spawn_blocking(move || {
                    stores
                        .databases
                        .pools()
                        .map(|p| p.shrink(ttl))
                        .sum::<usize>()
                        + stores.kv.pool().shrink(ttl)
                })
                .await
                .unwrap_or(0);
                if pg + sqlite > 0 {
                    tracing::debug!(sqlite, postgres = pg, "closed idle connections");
                }
            }
        });
    }

    /// The limits this gateway was started with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The `/metrics` page, with the injected-fault counter when faults are on.
    pub(super) fn render_metrics(&self) -> String {
        let mut page = self.metrics.render();
        if let Some(faults) = &self.faults {
            faults.render_metrics(&mut page);
        }
        if let Some(parking) = &self.parking {
            parking.render_metrics(&mut page);
        }
        page
    }

    /// Serves an in-process request to `http://<component>.spin.internal`.
    pub async fn handle_internal(
        self: &Arc<Self>,
        component: &str,
        req: Request<wasmtime_wasi_http::WasiBody>,
    ) -> Result<Response<HyperOutgoingBody>, wasmtime_wasi_http::Error> {
        if !self.components.contains_key(component) {
            return Err(wasmtime_wasi_http::Error::DestinationNotFound);
        }
        let client: SocketAddr = ([127, 0, 0, 1], 0).into();
        Ok(self.call(component, req, None, client).await)
    }
}

impl InternalRoutes for App {
    fn serve_internal(
        self: Arc<Self>,
        component: String,
        request: Request<wasmtime_wasi_http::WasiBody>,
    ) -> std::pin::Pin<
        Box<
            dyn Future<Output = Result<Response<HyperOutgoingBody>, wasmtime_wasi_http::Error>>
                + Send,
        >,
    > {
        Box::pin(async move { self.handle_internal(&component, request).await })
    }
}
