//! `fermyon:spin/key-value@2.0.0` over one SQLite file (`key_value.db`), in the same
//! table layout Spin's own SQLite key-value store uses.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::Resource;

use super::HostState;
use super::fermyon::spin::key_value::{Error, Host, HostStore};
use crate::host::sqlite::pool::Pool;

/// Stores a single request may hold open at once (Spin answers `store-table-full` past it).
const MAX_OPEN_STORES: usize = 256;

/// The app's key-value stores, all in one SQLite file.
#[derive(Debug)]
pub struct KvStore {
    pool: Pool,
    labels: HashSet<String>,
}

impl KvStore {
    pub fn open<'a>(dir: &Path, labels: impl IntoIterator<Item = &'a String>) -> Result<Self> {
        let pool = Pool::open(dir.join("key_value.db"))?;
        pool.checkout().map(|conn| {
            let created = conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS spin_key_value (
                   store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                   PRIMARY KEY (store, key))",
            );
            pool.checkin(conn);
            created
        })??;
        Ok(Self {
            pool,
            labels: labels.into_iter().cloned().collect(),
        })
    }

    /// The pool of the store's file (for the gateway's housekeeping).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn run<T: Send + 'static>(
        self: Arc<Self>,
        op: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        tokio::task::spawn_blocking(move || {
            let conn = self
                .pool
                .checkout()
                .map_err(|e| Error::Other(format!("{e:#}")))?;
            let result = op(&conn).map_err(|e| Error::Other(e.to_string()));
            self.pool.checkin(conn);
            result
        })
        .await
        .map_err(|e| Error::Other(e.to_string()))?
    }
}

/// A guest's open store handle.
pub struct KvConnection {
    label: String,
}

impl HostState {
    fn kv(
        &mut self,
        store: &Resource<KvConnection>,
    ) -> wasmtime::Result<Result<(Arc<KvStore>, String), Error>> {
        let label = self.table.get(store)?.label.clone();
        Ok(Ok((Arc::clone(&self.stores.kv), label)))
    }
}

macro_rules! kv_or_return {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

impl Host for HostState {}

impl HostStore for HostState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvConnection>, Error>> {
        if !self.grants.key_value_stores.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        if !self.stores.kv.labels.contains(&label) {
            return Ok(Err(Error::NoSuchStore));
        }
        if self.kv_open >= MAX_OPEN_STORES {
            return Ok(Err(Error::StoreTableFull));
        }
        self.kv_open += 1;
        Ok(Ok(self.table.push(KvConnection { label })?))
    }

    async fn get(
        &mut self,
        store: Resource<KvConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (kv, label) = kv_or_return!(self.kv(&store));
        Ok(kv
            .run(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                )?;
                let mut rows = stmt.query(rusqlite::params![label, key])?;
                rows.next()?.map(|r| r.get(0)).transpose()
            })
            .await)
    }

    async fn set(
        &mut self,
        store: Resource<KvConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (kv, label) = kv_or_return!(self.kv(&store));
        Ok(kv
            .run(move |c| {
                c.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(rusqlite::params![label, key, value])
                .map(drop)
            })
            .await)
    }

    async fn delete(
        &mut self,
        store: Resource<KvConnection>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (kv, label) = kv_or_return!(self.kv(&store));
        Ok(kv
            .run(move |c| {
                c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .execute(rusqlite::params![label, key])
                    .map(drop)
            })
            .await)
    }

    async fn exists(
        &mut self,
        store: Resource<KvConnection>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (kv, label) = kv_or_return!(self.kv(&store));
        Ok(kv
            .run(move |c| {
                c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .exists(rusqlite::params![label, key])
            })
            .await)
    }

    async fn get_keys(
        &mut self,
        store: Resource<KvConnection>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let (kv, label) = kv_or_return!(self.kv(&store));
        Ok(kv
            .run(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key",
                )?;
                stmt.query_map(rusqlite::params![label], |r| r.get(0))?
                    .collect()
            })
            .await)
    }

    async fn drop(&mut self, store: Resource<KvConnection>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        self.kv_open = self.kv_open.saturating_sub(1);
        Ok(())
    }
}
