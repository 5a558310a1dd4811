//! PostgreSQL connection pools for guests' `spin:postgres` connections, one pool per
//! connection string (as Spin keeps them).
//!
//! A guest connection checks a session out for the instance's whole life, so a
//! transaction spans calls. A session comes back to the pool with any transaction
//! the guest left open rolled back (and session settings reset), or is closed if
//! that fails. At most [`MAX_PER_ADDRESS`] sessions per address are open at once; a
//! guest that would exceed it waits up to [`CHECKOUT_TIMEOUT`], then gets an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::idle::Idle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls, Statement};

/// Sessions open at once per connection string (Spin's pool size).
pub const MAX_PER_ADDRESS: usize = 64;
/// Idle sessions kept per connection string.
const MAX_IDLE: usize = 32;
/// Idle sessions kept per address however long they sit unused.
const MIN_IDLE: usize = 2;
/// How long a guest waits for a free session, and for a new one to connect.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements kept per session.
const STATEMENT_CACHE: usize = 256;

/// One server session with its prepared statements.
pub struct Session {
    pub client: Client,
    statements: HashMap<String, Statement>,
}

impl Session {
    /// The statement prepared for `sql` (cached per session).
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// A parsed connection string: where it connects (for the allow-list) and how.
#[derive(Debug, Clone)]
pub struct Address {
    pub config: Config,
    /// `(host, port)` pairs the connection may try, in order.
    pub endpoints: Vec<(String, u16)>,
}

impl Address {
    /// Parses a `postgres://` URL or key=value string. Unix sockets and TLS are
    /// refused with a message that says so.
    pub fn parse(address: &str) -> Result<Self, String> {
        let config: Config = address
            .parse()
            .map_err(|e| format!("invalid PostgreSQL connection string: {e}"))?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(
                "sslmode=require is not supported by this gateway (no TLS to PostgreSQL): use a loopback or private-network server with sslmode=disable or prefer".into(),
            );
        }
        let ports = config.get_ports();
        let mut endpoints = Vec::new();
        for (i, host) in config.get_hosts().iter().enumerate() {
            let port = match ports {
                [] => 5432,
                [one] => *one,
                many => *many.get(i).unwrap_or(&5432),
            };
            match host {
                Host::Tcp(name) => endpoints.push((name.to_ascii_lowercase(), port)),
                #[cfg(unix)]
                Host::Unix(path) => {
                    return Err(format!(
                        "unix socket {} is not supported: give a host name or address",
                        path.display()
                    ));
                }
            }
        }
        if endpoints.is_empty() {
            return Err("the connection string names no host".into());
        }
        Ok(Self { config, endpoints })
    }
}

/// The sessions of one connection string.
pub struct Pool {
    config: Config,
    idle: Idle<Session>,
    open: Arc<Semaphore>,
}

impl Pool {
    fn new(config: Config) -> Self {
        Self {
            config,
            idle: Idle::new(MAX_IDLE, MIN_IDLE),
            open: Arc::new(Semaphore::new(MAX_PER_ADDRESS)),
        }
    }

    /// An exclusive session: an idle one if there is one, else a new connection.
    pub async fn checkout(self: &Arc<Self>) -> Result<(Session, OwnedSemaphorePermit), String> {
        let permit = tokio::time::timeout(CHECKOUT_TIMEOUT, Arc::clone(&self.open).acquire_owned())
            .await
            .map_err(|_| {
                format!(
                    "too many connections: all {MAX_PER_ADDRESS} sessions of this address are in use"
                )
            })?
            .map_err(|_| "the pool is closed".to_string())?;
        loop {
            match self.idle.pop() {
                Some(session) if session.client.is_closed() => continue,
                Some(session) => return Ok((session, permit)),
                None => break,
            }
        }
        let (client, connection) =
            tokio::time::timeout(CHECKOUT_TIMEOUT, self.config.connect(NoTls))
                .await
                .map_err(|_| "connecting to PostgreSQL timed out".to_string())?
                .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok((
            Session {
                client,
                statements: HashMap::new(),
            },
            permit,
        ))
    }

    /// Takes a session back. `reset` is the SQL that makes it clean (a rollback of
    /// an open transaction, a reset of settings), if any; a session that fails it
    /// is closed instead.
    pub async fn checkin(&self, session: Session, reset: Option<&str>) {
        if session.client.is_closed() {
            return;
        }
        if let Some(reset) = reset
            && session.client.batch_execute(reset).await.is_err()
        {
            return;
        }
        self.idle.push(session);
    }

    /// Closes the sessions idle for longer than `ttl` (a few stay open).
    pub fn shrink(&self, ttl: Duration) -> usize {
        self.idle.shrink(ttl)
    }
}

/// Every pool of the gateway, by connection string.
#[derive(Default)]
pub struct Pools {
    pools: Mutex<HashMap<String, Arc<Pool>>>,
}

impl Pools {
    /// The pool of `address` (created on first use).
    pub fn get(&self, address: &str, parsed: &Address) -> Arc<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            pools
                .entry(address.to_string())
                .or_insert_with(|| Arc::new(Pool::new(parsed.config.clone()))),
        )
    }

    /// Shrinks every pool (see [`Pool::shrink`]); returns the sessions closed.
    pub fn shrink(&self, ttl: Duration) -> usize {
        let pools: Vec<Arc<Pool>> = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        pools.iter().map(|pool| pool.shrink(ttl)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_endpoints_and_refuse_what_is_unsupported() {
        let a = Address::parse("postgres://u:p@DB.example:5433/app").unwrap();
        assert_eq!(a.endpoints, [("db.example".to_string(), 5433)]);
        let a = Address::parse("postgres://u@127.0.0.1/app").unwrap();
        assert_eq!(a.endpoints, [("127.0.0.1".to_string(), 5432)]);
        let a = Address::parse("host=a,b port=1,2 user=u").unwrap();
        assert_eq!(a.endpoints, [("a".to_string(), 1), ("b".to_string(), 2)]);
        assert!(
            Address::parse("postgres://u@h/db?sslmode=require")
                .unwrap_err()
                .contains("sslmode=require")
        );
        assert!(
            Address::parse("host=/var/run/postgresql user=u")
                .unwrap_err()
                .contains("unix socket")
        );
        assert!(Address::parse("postgres://u@h:notaport/db").is_err());
    }
}
