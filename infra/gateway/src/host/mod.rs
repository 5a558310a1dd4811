//! The per-request host state and the Spin interfaces the gateway provides to guests.
//!
//! # Layout
//! - `mod.rs`: [`HostState`] (one per request, in its `Store`), the [`Stores`] every
//!   request shares, the WASI/HTTP views, and the `bindgen!` bindings of `wit/`.
//!   The host knows nothing of the app but these and [`InternalRoutes`], the one
//!   thing it asks of it (serving `*.spin.internal`).
//! - `sqlite/`: `fermyon:spin/sqlite@2.0.0` over the pooled SQLite files (`pool.rs`).
//! - `key_value.rs`: `fermyon:spin/key-value@2.0.0` over one SQLite file.
//! - `variables.rs`: `fermyon:spin/variables@2.0.0`.
//! - `postgres/`: `spin:postgres/postgres@4.0.0` over pooled `tokio-postgres` sessions
//!   (`pool.rs`), values converted in `values.rs`.
//! - `outbound.rs`: `wasi:http/outgoing-handler` hooks: the allow-list and in-process
//!   routing of `http://<component>.spin.internal`.
//! - `https.rs`: outbound HTTPS as Spin sends it (ALPN h2/http1.1, `[[client_tls]]`).

pub mod https;
mod key_value;
mod outbound;
pub mod postgres;
pub mod sqlite;
mod variables;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Weak};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::host::postgres::pool::Pools;
use crate::host::sqlite::pool::Databases;
use crate::outbound::AllowList;
use crate::parking::Parking;

pub use key_value::{KvConnection, KvStore};
pub use outbound::{InternalRoutes, OutboundHooks};
pub use postgres::PgConnection;
pub use sqlite::SqliteConnection;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "courier:gateway/host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/sqlite.connection": SqliteConnection,
        "fermyon:spin/key-value.store": KvConnection,
        "spin:postgres/postgres.connection": PgConnection,
    },
});

/// What one component may do, fixed at start-up from the manifest.
#[derive(Debug, Default)]
pub struct Grants {
    pub component: String,
    pub sqlite_databases: HashSet<String>,
    pub key_value_stores: HashSet<String>,
    pub allowed_outbound_hosts: AllowList,
    /// Resolved component variables (name → value).
    pub variables: BTreeMap<String, String>,
    /// The TLS of its outbound HTTPS (`[[client_tls]]` of the runtime config).
    pub tls: https::ComponentTls,
}

/// What the host interfaces of every request share: the stores, and the parked polls
/// that committed SQLite updates wake. Each request's state holds it; it holds
/// nothing of the app.
pub struct Stores {
    pub databases: Databases,
    pub kv: Arc<KvStore>,
    /// PostgreSQL sessions of `spin:postgres` guests, by connection string.
    pub postgres: Pools,
    /// The app's parked polls, if it parks: committed updates of `users` rows in the
    /// `default` SQLite database wake them.
    pub wakes: Option<Arc<Parking>>,
}

impl Stores {
    /// Committed updates of `users` rows in SQLite database `label`: wakes their
    /// parked polls.
    pub fn moved_sqlite_rows(&self, label: &str, rowids: &[i64]) {
        if label == "default"
            && let Some(parking) = &self.wakes
        {
            parking.moved_rowids(rowids);
        }
    }
}

/// The data of one request's `Store`.
pub struct HostState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: OutboundHooks,
    pub grants: Arc<Grants>,
    pub stores: Arc<Stores>,
    pub limits: StoreLimits,
    /// Fault injection, if on (see `faults.rs`).
    pub faults: Option<Arc<crate::faults::Faults>>,
    /// Key-value stores this request holds open.
    kv_open: usize,
}

impl HostState {
    /// `internal` serves `http://<component>.spin.internal` (the app, while it runs).
    pub fn new(
        stores: &Arc<Stores>,
        internal: Weak<dyn InternalRoutes>,
        faults: Option<Arc<crate::faults::Faults>>,
        grants: Arc<Grants>,
        limits: StoreLimits,
    ) -> Self {
        Self {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks::new(internal, grants.clone(), faults.clone()),
            grants,
            stores: Arc::clone(stores),
            limits,
            faults,
            kv_open: 0,
        }
    }

    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Adds WASI, `wasi:http` and the Spin interfaces to a linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    fermyon::spin::sqlite::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    fermyon::spin::key_value::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    fermyon::spin::variables::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    spin::postgres::postgres::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}
