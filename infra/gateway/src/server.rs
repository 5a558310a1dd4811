//! The loaded application: engine, components and pre-instances made once; one fresh
//! `Store` per request; routing, limits, logs and metrics around each call.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::host::{Grants, HostState, KvStore};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::outbound::{AllowList, AllowedHost};
use crate::parking::{PARK_HEADER, PARKED_USER_HEADER, Parking, Woken};
use crate::routes::{RouteMatch, Router};
use crate::sqlite_pool::Databases;
use crate::variables::AppVariables;

/// How often the epoch advances; a running guest yields to other requests this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    /// Long-polls parked at once (see `parking.rs`); 0 turns parking off.
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

struct Loaded {
    pre: ProxyPre<HostState>,
    grants: Arc<Grants>,
}

/// The running application.
pub struct App {
    pub databases: Databases,
    pub kv: Arc<KvStore>,
    /// PostgreSQL sessions of `spin:postgres` guests, by connection string.
    pub postgres: crate::pg_pool::Pools,
    pub metrics: Metrics,
    /// Fault injection, if turned on (`--faults`); `None` costs nothing.
    pub faults: Option<Arc<crate::faults::Faults>>,
    /// Wakes the queue drainer (see `drainer.rs`).
    pub poke: crate::drainer::Poke,
    /// Parked long-polls (see `parking.rs`), if the app has a sync route and an
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

/// Builds the engine: pooling allocator (copy-on-write memory images are on by
/// default), epoch interruption for timeouts, async support, and a compiled-code
/// cache (compiling a component takes ~0.1–1 s; loading it from the cache, ms).
fn engine(cache_dir: &Path, limits: &Limits) -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.memory_init_cow(true);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(limits.max_instances);
    pool.total_core_instances(limits.max_instances * 4);
    pool.total_memories(limits.max_instances * 2);
    pool.total_tables(limits.max_instances * 4);
    pool.total_stacks(limits.max_instances);
    pool.max_memory_size(limits.max_memory_bytes);
    // Reset returned instances in batches and keep their first pages resident: the
    // per-instance `madvise` and the page faults after it were ~23 % of the gateway's
    // CPU on /healthz (perf, see docs/BENCHMARKS.md).
    pool.decommit_batch_size(32);
    pool.linear_memory_keep_resident(1 << 20);
    pool.table_keep_resident(1 << 20);
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let mut cache = wasmtime::CacheConfig::new();
    cache.with_directory(std::path::absolute(cache_dir)?);
    config.cache(Some(wasmtime::Cache::new(cache)?));
    Ok(Engine::new(&config)?)
}

impl App {
    /// Loads every component of the manifest. Fails on any configuration error, so
    /// the caller can report it before binding a port.
    /// `cache_dir` defaults to `<data_dir>/cache`.
    pub fn load(
        manifest: &Manifest,
        vars: &AppVariables,
        data_dir: &Path,
        cache_dir: Option<&Path>,
        limits: Limits,
        faults: Option<crate::faults::FaultConfig>,
        runtime: &crate::runtime_config::RuntimeConfig,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let data_dir = &std::path::absolute(data_dir)?;
        let cache_dir = cache_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| data_dir.join("cache"));
        let engine = engine(&cache_dir, &limits)?;
        let mut linker = Linker::new(&engine);
        crate::host::add_to_linker(&mut linker)?;

        let sqlite_labels: BTreeSet<String> = std::iter::once("default".to_string())
            .chain(
                manifest
                    .components
                    .values()
                    .flat_map(|c| c.sqlite_databases.iter().cloned()),
            )
            .collect();
        let kv_labels: BTreeSet<String> = std::iter::once("default".to_string())
            .chain(
                manifest
                    .components
                    .values()
                    .flat_map(|c| c.key_value_stores.iter().cloned()),
            )
            .collect();
        let databases = Databases::open(data_dir, &sqlite_labels)?;
        let kv = Arc::new(KvStore::open(data_dir, &kv_labels)?);

        let mut components = HashMap::new();
        for (id, component) in &manifest.components {
            let path = manifest.source_path(component);
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "component `{id}`: cannot read {} (build it, or run `courier up` without --no-build)",
                    path.display()
                )
            })?;
            let compiled = Component::new(&engine, &bytes)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component `{id}`: {} is not a valid component",
                        path.display()
                    )
                })?;
            let pre = ProxyPre::new(
                linker
                    .instantiate_pre(&compiled)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("component `{id}` imports something the gateway does not provide")
                    })?,
            )
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component `{id}` does not export wasi:http/incoming-handler")
            })?;
            let allowed = component
                .allowed_outbound_hosts
                .iter()
                .map(|entry| AllowedHost::parse(&vars.expand(entry)?))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("component `{id}`: allowed_outbound_hosts"))?;
            let grants = Grants {
                component: id.clone(),
                sqlite_databases: component.sqlite_databases.iter().cloned().collect(),
                key_value_stores: component.key_value_stores.iter().cloned().collect(),
                allowed_outbound_hosts: AllowList::new(allowed),
                variables: vars
                    .for_component(&component.variables)
                    .with_context(|| format!("component `{id}`: variables"))?,
                tls: crate::host::https::ComponentTls::new(runtime, id)?,
            };
            check_database_grant(id, &grants)?;
            components.insert(
                id.clone(),
                Loaded {
                    pre,
                    grants: Arc::new(grants),
                },
            );
        }
        let router = Router::new(
            manifest
                .triggers
                .iter()
                .map(|t| (t.route.clone(), t.component.clone()))
                .collect(),
        );
        let drain_route = router
            .route(crate::drainer::DRAIN_PATH)
            .and_then(|(component, _)| {
                vars.get("internal_secret")
                    .map(|s| (component, s.to_string()))
            });
        let (parking, wake_listener) = parking(&router, &components, vars, &databases, &limits)?;
        let app = Arc::new(Self {
            parking,
            wake_listener,
            databases,
            kv,
            postgres: Default::default(),
            metrics: Metrics::default(),
            faults: faults.map(|config| Arc::new(crate::faults::Faults::new(config))),
            poke: Default::default(),
            drain_route,
            engine,
            components,
            router,
            limits,
            next_request_id: AtomicU64::new(rand::random::<u32>() as u64 * 1_000_000),
        });
        app.start_epoch_ticker();
        Ok(app)
    }

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
                let pg = app.postgres.shrink(ttl);
                let sqlite = tokio::task::spawn_blocking(move || {
                    app.databases.pools().map(|p| p.shrink(ttl)).sum::<usize>()
                        + app.kv.pool().shrink(ttl)
                })
                .await
                .unwrap_or(0);
                if pg + sqlite > 0 {
                    tracing::debug!(sqlite, postgres = pg, "closed idle connections");
                }
            }
        });
    }

    /// Committed updates of `users` rows in SQLite database `label`: wakes their
    /// parked polls.
    pub fn moved_sqlite_rows(&self, label: &str, rowids: &[i64]) {
        if label == "default"
            && let Some(parking) = &self.parking
        {
            parking.moved_rowids(rowids);
        }
    }

    /// Advances the engine's epoch every [`EPOCH_TICK`] until the app is dropped.
    fn start_epoch_ticker(&self) {
        let engine = self.engine.weak();
        std::thread::Builder::new()
            .name("courier-epoch".into())
            .spawn(move || {
                while let Some(engine) = engine.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .ok();
    }

    /// Instantiates `component` once in a fresh store and drops it, without calling
    /// it: the per-request instantiation cost, for benchmarks.
    pub async fn instantiate_only(self: &Arc<Self>, component: &str) -> Result<Duration> {
        let loaded = self
            .components
            .get(component)
            .ok_or_else(|| anyhow!("no component `{component}`"))?;
        let started = Instant::now();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState::new(self, loaded.grants.clone(), limits),
        );
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(u64::MAX / 2);
        loaded.pre.instantiate_async(&mut store).await?;
        drop(store);
        Ok(started.elapsed())
    }

    /// The limits this gateway was started with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The `/metrics` page, with the injected-fault counter when faults are on.
    fn render_metrics(&self) -> String {
        let mut page = self.metrics.render();
        if let Some(faults) = &self.faults {
            faults.render_metrics(&mut page);
        }
        if let Some(parking) = &self.parking {
            parking.render_metrics(&mut page);
        }
        page
    }

    /// Serves one request from the network.
    pub async fn handle_incoming<B>(
        self: &Arc<Self>,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let request_id = format!(
            "{:016x}",
            self.next_request_id.fetch_add(1, Ordering::Relaxed)
        );
        let method = req.method().clone();
        let path = req.uri().path().to_string();

        let (component, response) = if path == "/metrics" && method == Method::GET {
            (
                "(gateway)".to_string(),
                text_response(StatusCode::OK, self.render_metrics()),
            )
        } else {
            match self.router.route(&path) {
                None => (
                    "(gateway)".to_string(),
                    error_response(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        &format!("no route for {path}"),
                    ),
                ),
                Some((component, matched)) => {
                    let mut req = req;
                    req.headers_mut().remove(PARK_HEADER);
                    let offer = self.park_offer(&mut req);
                    let response = match self.limited(req) {
                        Ok((req, over)) => {
                            // Boxed, here and in the answering runs: a run's future is
                            // large, and inline it would size the future of every
                            // connection that waits parked.
                            let response =
                                Box::pin(self.call(&component, req, Some(&matched), client)).await;
                            let response = match offer {
                                Some(offer) => {
                                    self.parked(offer, response, &component, &matched, client)
                                        .await
                                }
                                None => response,
                            };
                            // The guest saw a body error (Spin's SDK answers it with a
                            // plain-text 500): the answer is the limit's.
                            if over.load(Ordering::Relaxed) {
                                self.too_large()
                            } else {
                                response
                            }
                        }
                        Err(response) => response,
                    };
                    (component, response)
                }
            }
        };
        let mut response = response;
        if response
            .headers_mut()
            .remove(crate::drainer::QUEUED_HEADER)
            .is_some()
        {
            self.poke.poke();
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        let latency = started.elapsed();
        self.metrics
            .record(&component, response.status().as_u16(), latency);
        tracing::info!(
            request_id,
            component,
            method = %method,
            path,
            status = response.status().as_u16(),
            latency_us = latency.as_micros() as u64,
            "request"
        );
        response
    }

    /// Offers to park a `GET /v1/sync` that may wait, or a `GET /v1/stream` (see
    /// `parking.rs`): marks the request, and keeps what the answering runs need.
    fn park_offer<B>(&self, req: &mut Request<B>) -> Option<ParkOffer> {
        let parking = self.parking.as_ref()?;
        if req.method() != Method::GET {
            return None;
        }
        let query = req.uri().query().unwrap_or("");
        let waiting = match req.uri().path() {
            crate::parking::SYNC_PATH => Waiting::Poll {
                wait_secs: crate::parking::wait_secs(query)?,
                after: crate::parking::after(query),
            },
            crate::parking::STREAM_PATH => Waiting::Stream,
            _ => return None,
        };
        if !parking.open() {
            return None;
        }
        // Copies, not clones: hyper's URI and header values are slices of the
        // connection's read buffer, and a clone would keep that whole buffer (8 KiB)
        // alive for as long as the client waits.
        let uri = req.uri().to_string().parse().ok()?;
        let headers = req
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    name.clone(),
                    HeaderValue::from_bytes(value.as_bytes()).ok()?,
                ))
            })
            .collect();
        let offer = ParkOffer {
            started: Instant::now(),
            waiting,
            uri,
            headers,
        };
        req.headers_mut()
            .insert(PARK_HEADER, HeaderValue::from_str(parking.secret()).ok()?);
        Some(offer)
    }

    /// After the first run of an offered sync: the component's answer if it did not
    /// park; else waits parked, with no instance, and answers with a run at `wait=0`.
    async fn parked(
        self: &Arc<Self>,
        offer: ParkOffer,
        mut response: Response<HyperOutgoingBody>,
        component: &str,
        matched: &RouteMatch,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let (wait_secs, after) = match offer.waiting {
            Waiting::Poll { wait_secs, after } => (wait_secs, after),
            Waiting::Stream => {
                return crate::events::hold(self, offer, response, component, matched, client)
                    .await;
            }
        };
        let Some(user) = response.headers_mut().remove(PARKED_USER_HEADER) else {
            return response;
        };
        let (Some(parking), Ok(user)) = (&self.parking, user.to_str()) else {
            return response;
        };
        // The answering run's request, built before parking so that the first
        // answer (whose body may still hold buffers of its run) is not kept meanwhile.
        let mut parts = offer.uri.into_parts();
        let query = crate::parking::without_wait(
            parts
                .path_and_query
                .as_ref()
                .and_then(|p| p.query())
                .unwrap_or(""),
        );
        let path_and_query = format!("{}?{query}", crate::parking::SYNC_PATH);
        parts.path_and_query = path_and_query.parse().ok();
        let Ok(uri) = http::Uri::from_parts(parts) else {
            return response;
        };
        drop(response);
        let mut req = Request::new(full(Bytes::new()));
        *req.uri_mut() = uri;
        *req.headers_mut() = offer.headers;
        req.headers_mut().remove(http::header::CONTENT_LENGTH);
        let deadline = crate::parking::deadline(offer.started, wait_secs);
        match parking.park(user, after, deadline).await {
            Err(crate::parking::Refused::Full) => {
                tracing::warn!("parked long-polls are at --max-parked: refused one");
                return unavailable("too many parked long-polls");
            }
            Ok(Woken::NoSource) => {
                tracing::debug!(user, "parked poll answered at once: no wake source");
            }
            Ok(_) => {}
        }
        let mut answer = Box::pin(self.call(component, req, Some(matched), client)).await;
        answer.headers_mut().remove(PARKED_USER_HEADER);
        answer
    }

    /// Applies the body limit: a declared length over it is refused at once; a
    /// streamed body is cut off (and the guest sees a body error) when it passes it,
    /// which the returned flag records so that the answer is 413 whatever the guest
    /// made of the error.
    #[allow(clippy::result_large_err, reason = "the error is the ready response")]
    fn limited<B>(
        &self,
        req: Request<B>,
    ) -> Result<(Request<HyperOutgoingBody>, Arc<AtomicBool>), Response<HyperOutgoingBody>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let max = self.limits.max_body_bytes;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(self.too_large());
        }
        let over = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&over);
        let req = req.map(|body| {
            Limited::new(body, max)
                .map_err(move |e| match e.downcast::<hyper::Error>() {
                    Ok(e) => wasmtime_wasi_http::Error::Hyper(*e),
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max as u64))
                    }
                })
                .boxed_unsync()
        });
        Ok((req, over))
    }

    /// The answer to a body over `max_body_bytes`.
    fn too_large(&self) -> Response<HyperOutgoingBody> {
        let max = self.limits.max_body_bytes;
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("request body over {max} bytes"),
        )
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

    /// Runs one component instance for one request, within the request timeout.
    pub(crate) async fn call<B>(
        self: &Arc<Self>,
        component: &str,
        req: Request<B>,
        matched: Option<&RouteMatch>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Some(loaded) = self.components.get(component) else {
            return error_response(StatusCode::NOT_FOUND, "not_found", "no such component");
        };
        let req = with_spin_headers(req, matched, client);
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .instances(64)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState::new(self, loaded.grants.clone(), limits),
        );
        store.limiter(|s| s.limiter());
        let deadline = Instant::now() + self.limits.request_timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::format_err!("request timed out"))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = (|| {
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            anyhow::Ok((req, out))
        })();
        let (req, out) = match prepared {
            Ok(v) => v,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, "bad_request", &format!("{e}"));
            }
        };
        let pre = loaded.pre.clone();
        let app = Arc::clone(self);
        let component_id = component.to_string();
        let task = tokio::spawn(async move {
            let _in_use = app.metrics.instance_started();
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        // Dropped with this future when the client goes away before the answer
        // (hyper drops a request's future when its connection closes): the instance
        // stops at its next yield and what it held (SQLite connection, an open
        // transaction, rolled back, its slot in the pool) is freed at once.
        let mut abandon = Abandon {
            task: Some(task.abort_handle()),
            metrics: &self.metrics,
        };

        let timeout = self.limits.request_timeout;
        let answer = tokio::time::timeout(timeout, receiver).await;
        // From here the task runs to its end (it streams the body of its answer).
        abandon.task = None;
        match answer {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(e))) => {
                tracing::warn!(component = component_id, error = ?e, "guest answered with an error code");
                error_response(StatusCode::BAD_GATEWAY, "unavailable", "component failed")
            }
            Ok(Err(_)) => {
                // The guest never set a response: look at how its task ended.
                let error = match task.await {
                    Ok(Ok(())) => anyhow!("guest returned without a response"),
                    Ok(Err(e)) => anyhow::Error::from(e),
                    Err(e) => anyhow!(e),
                };
                let text = format!("{error:#}");
                if text.contains("request timed out") {
                    tracing::warn!(component = component_id, "request timed out");
                    return unavailable("request timed out");
                }
                if text.contains("maximum concurrent") || text.contains("pooling allocator") {
                    tracing::warn!(component = component_id, error = %text, "out of instances");
                    return unavailable("too many requests in flight");
                }
                tracing::error!(component = component_id, error = %text, "component trapped");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "component failed",
                )
            }
            Err(_) => {
                task.abort();
                tracing::warn!(component = component_id, "request timed out");
                unavailable("request timed out")
            }
        }
    }
}

/// Stops a request's instance if the request's future is dropped before the answer.
struct Abandon<'a> {
    task: Option<tokio::task::AbortHandle>,
    metrics: &'a Metrics,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            self.metrics.request_abandoned();
        }
    }
}

/// What the answering runs of a parked poll or stream need from the original request.
pub(crate) struct ParkOffer {
    pub(crate) started: Instant,
    pub(crate) waiting: Waiting,
    pub(crate) uri: http::Uri,
    /// The client's headers (without the offer).
    pub(crate) headers: http::HeaderMap,
}

/// What an offered request waits as.
#[derive(Clone, Copy)]
pub(crate) enum Waiting {
    /// `GET /v1/sync` with `wait > 0`.
    Poll { wait_secs: u64, after: i64 },
    /// `GET /v1/stream`.
    Stream,
}

/// Parking for the app, when it serves the sync route and has an internal secret:
/// on the sync component's PostgreSQL `database_url` if it names one, else on the
/// `default` SQLite database.
fn parking(
    router: &Router<String>,
    components: &HashMap<String, Loaded>,
    vars: &AppVariables,
    databases: &Databases,
    limits: &Limits,
) -> Result<(Option<Arc<Parking>>, Option<tokio_postgres::Config>)> {
    let none = Ok((None, None));
    if limits.max_parked == 0 {
        return none;
    }
    let Some((component, _)) = router.route(crate::parking::SYNC_PATH) else {
        return none;
    };
    let Some(secret) = vars.get("internal_secret").filter(|s| !s.is_empty()) else {
        return none;
    };
    let Some(loaded) = components.get(&component) else {
        return none;
    };
    let url = loaded
        .grants
        .variables
        .get("database_url")
        .map(|u| u.trim())
        .unwrap_or("");
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let address = crate::pg_pool::Address::parse(url)
            .map_err(|e| anyhow!("component `{component}`: database_url: {e}"))?;
        let parking = Parking::postgres(secret.to_string(), limits.max_parked);
        return Ok((Some(Arc::new(parking)), Some(address.config)));
    }
    if !loaded.grants.sqlite_databases.contains("default") {
        return none;
    }
    let Some(pool) = databases.get("default") else {
        return none;
    };
    let parking = Parking::sqlite(secret.to_string(), limits.max_parked, Arc::clone(pool));
    Ok((Some(Arc::new(parking)), None))
}

/// Adds Spin's `spin-*` request headers.
fn with_spin_headers<B>(
    mut req: Request<B>,
    matched: Option<&RouteMatch>,
    client: SocketAddr,
) -> Request<B> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_string();
    let path = req.uri().path().to_string();
    let headers = req.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("spin-full-url", &format!("http://{host}{path_and_query}"));
    set("spin-client-addr", &client.to_string());
    set("spin-base-path", "/");
    match matched {
        Some(m) => {
            set("spin-matched-route", &m.raw_route);
            set("spin-raw-component-route", &m.raw_route);
            set("spin-component-route", &m.matched_prefix);
            set("spin-path-info", &m.path_info);
            for (name, value) in &m.captures {
                if let Ok(name) =
                    http::HeaderName::from_bytes(format!("spin-path-match-{name}").as_bytes())
                    && let Ok(value) = HeaderValue::from_str(value)
                {
                    headers.insert(name, value);
                }
            }
        }
        None => {
            set("spin-path-info", &path);
        }
    }
    req
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> HyperOutgoingBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response in the API's error shape: `{"error": {"code", "message"}}`.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn unavailable(message: &str) -> Response<HyperOutgoingBody> {
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn text_response(status: StatusCode, body: String) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// A component whose `database_url` names a PostgreSQL server must be granted that
/// server by its `allowed_outbound_hosts` (`postgres://{{ database_host }}` in
/// courier's manifest): Spin refuses the connection otherwise, and so would every
/// request. Caught here, before the port is bound, naming both variables.
fn check_database_grant(id: &str, grants: &Grants) -> Result<()> {
    let Some(url) = grants.variables.get("database_url").map(|u| u.trim()) else {
        return Ok(());
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(());
    }
    // Parsed as the connection will be: what is refused here would be refused there.
    let address = crate::pg_pool::Address::parse(url)
        .map_err(|e| anyhow!("component `{id}`: database_url: {e}"))?;
    let refused = address.endpoints.iter().find(|(host, port)| {
        !grants
            .allowed_outbound_hosts
            .allows("postgres", host, *port)
    });
    let Some((host, port)) = refused else {
        return Ok(());
    };
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    bail!(
        "component `{id}`: database_url names the PostgreSQL server {shown}, which its \
         allowed_outbound_hosts do not grant: set database_host to `{shown}` \
         (SPIN_VARIABLE_DATABASE_HOST={shown}) beside database_url"
    )
}
