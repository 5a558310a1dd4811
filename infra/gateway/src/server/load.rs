//! Loading an app from its manifest.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::engine::engine;
use super::{App, Limits, Loaded};
use crate::host::sqlite::pool::Databases;
use crate::host::{Grants, KvStore, Stores};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::outbound::{AllowList, AllowedHost};
use crate::parking::Parking;
use crate::routes::Router;
use crate::variables::AppVariables;

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
            parking: parking.clone(),
            wake_listener,
            stores: Arc::new(Stores {
                databases,
                kv,
                postgres: Default::default(),
                wakes: parking,
            }),
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
        let address = crate::host::postgres::pool::Address::parse(url)
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
    let address = crate::host::postgres::pool::Address::parse(url)
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
