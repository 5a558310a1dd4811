//! `spin:postgres/postgres@4.0.0` over `tokio-postgres`: each guest connection is a
//! pooled server session of its own for the instance's whole life (see
//! `pool.rs`), so a guest's `BEGIN … COMMIT` spans several calls. A connection
//! the guest drops — or abandons by trapping or timing out — goes back to the pool
//! with its transaction rolled back.
//!
//! As on Spin: the address must be allowed by the component's
//! `allowed_outbound_hosts` (`postgres://host:port`), statements are prepared
//! without parameter types and each parameter must match the type the server
//! infers (an `int64` for an `int4` parameter is an error, not a silent cast), and
//! values map one to one (`int2`/`int4`/`int8` → `int16`/`int32`/`int64`, `float4`/
//! `float8`, `text`-like → `str`, `bytea` → `binary`, `bool`, `numeric` → `decimal`
//! as a string, `NULL` → `db-null`; other types come back as `unsupported` bytes).

//!
//! # Layout
//! - `mod.rs`: the interface's connection, statements and transactions, faults.
//! - `values.rs`: parameters and column values, converted as Spin converts them.
//! - `pool.rs`: the server sessions, pooled per connection string.

pub mod pool;
mod values;

use std::error::Error as StdError;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tokio_postgres::types::ToSql;
use wasmtime::component::Resource;

use self::pool::{Address, Pool, Session};
use self::values::{parameter, row_set};

use super::HostState;
use super::spin::postgres::postgres::{
    DbError, Error, Host, HostConnection, ParameterValue, QueryError, RowSet,
};
use crate::faults::SqlFault;

/// A guest's open connection.
pub struct PgConnection {
    session: Option<Session>,
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<Pool>,
    /// A transaction may be open (the guest began one, or a statement was cut off).
    in_transaction: bool,
    /// The guest changed session state (settings, cursors, listeners, advisory locks).
    dirty: bool,
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let mut reset = Vec::new();
        if self.in_transaction {
            reset.push("ROLLBACK");
        }
        if self.dirty {
            reset.push("RESET ALL; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all()");
        }
        let reset = (!reset.is_empty()).then(|| reset.join("; "));
        let (pool, permit) = (Arc::clone(&self.pool), self.permit.take());
        // Without a runtime (the gateway is shutting down) the session is closed,
        // which makes the server roll back whatever was open.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                pool.checkin(session, reset.as_deref()).await;
                drop(permit);
            });
        }
    }
}

/// How a statement changes the session, by its first keywords.
fn effects(statement: &str) -> (Option<bool>, bool) {
    let upper: String = statement
        .trim_start()
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_uppercase();
    let mut words = upper.split(|c: char| !c.is_ascii_alphanumeric() && c != '_');
    let first = words.next().unwrap_or("");
    let second = words.find(|w| !w.is_empty()).unwrap_or("");
    let transaction = match first {
        "BEGIN" | "START" => Some(true),
        "COMMIT" | "END" | "ABORT" => Some(false),
        "ROLLBACK" if second != "TO" => Some(false),
        _ => None,
    };
    let dirty = matches!(first, "SET" | "RESET" | "DECLARE" | "LISTEN")
        && !matches!(second, "LOCAL" | "TRANSACTION")
        || upper.contains("ADVISORY_LOCK(") && !upper.contains("XACT");
    (transaction, dirty)
}

impl Host for HostState {}

impl HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, Error>> {
        let parsed = match Address::parse(&address) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Err(Error::ConnectionFailed(e))),
        };
        for (host, port) in &parsed.endpoints {
            if !self
                .grants
                .allowed_outbound_hosts
                .allows("postgres", host, *port)
            {
                let component = &self.grants.component;
                tracing::warn!(%component, %host, port, "PostgreSQL connection denied: not in allowed_outbound_hosts");
                return Ok(Err(Error::ConnectionFailed(format!(
                    "address postgres://{host}:{port} is not permitted (as Spin says it): add it to allowed_outbound_hosts of component `{component}`"
                ))));
            }
        }
        let pool = self.stores.postgres.get(&address, &parsed);
        let (session, permit) = match pool.checkout().await {
            Ok(checked_out) => checked_out,
            Err(e) => return Ok(Err(Error::ConnectionFailed(e))),
        };
        Ok(Ok(self.table.push(PgConnection {
            session: Some(session),
            permit: Some(permit),
            pool,
            in_transaction: false,
            dirty: false,
        })?))
    }

    async fn query(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let rows = match self
            .run(&connection, &statement, params, Mode::Query)
            .await?
        {
            Ok(Ran::Rows(rows)) => rows,
            Ok(Ran::Count(_)) => Vec::new(),
            Err(e) => return Ok(Err(e)),
        };
        Ok(row_set(&rows))
    }

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        Ok(
            match self
                .run(&connection, &statement, params, Mode::Execute)
                .await?
            {
                Ok(Ran::Count(n)) => Ok(n),
                Ok(Ran::Rows(rows)) => Ok(rows.len() as u64),
                Err(e) => Err(e),
            },
        )
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        // Dropping the entry hands the session back (see `Drop for PgConnection`).
        self.table.delete(connection)?;
        Ok(())
    }
}

enum Mode {
    Query,
    Execute,
}

enum Ran {
    Rows(Vec<tokio_postgres::Row>),
    Count(u64),
}

impl HostState {
    async fn run(
        &mut self,
        connection: &Resource<PgConnection>,
        statement: &str,
        params: Vec<ParameterValue>,
        mode: Mode,
    ) -> wasmtime::Result<Result<Ran, Error>> {
        if let Some(faults) = self.faults.clone()
            && let Some(error) = self.inject_pg_fault(&faults, connection).await?
        {
            return Ok(Err(error));
        }
        let params = match params
            .into_iter()
            .map(parameter)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(params) => params,
            Err(e) => return Ok(Err(Error::BadParameter(e))),
        };
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let (transaction, dirty) = effects(statement);
        let entry = self.table.get_mut(connection)?;
        let Some(session) = entry.session.as_mut() else {
            return Ok(Err(Error::ConnectionFailed("connection is closed".into())));
        };
        // Until the statement has finished, assume it may have left a transaction
        // open: an instance cut off here must not pool a session mid-transaction.
        let was_in_transaction = entry.in_transaction;
        entry.in_transaction = true;
        entry.dirty |= dirty;
        let result = async {
            let prepared = session.prepare(statement).await?;
            match mode {
                Mode::Query => session.client.query(&prepared, &refs).await.map(Ran::Rows),
                Mode::Execute => session
                    .client
                    .execute(&prepared, &refs)
                    .await
                    .map(Ran::Count),
            }
        }
        .await;
        let entry = self.table.get_mut(connection)?;
        entry.in_transaction = match (&result, transaction) {
            (Ok(_), Some(open)) => open,
            // A failed COMMIT ends the transaction too; a failed BEGIN starts none
            // unless one was open already.
            (Err(_), Some(_)) => was_in_transaction && transaction != Some(false),
            (_, None) => was_in_transaction,
        };
        Ok(result.map_err(query_failed))
    }
}

impl HostState {
    /// Fault injection (`--faults`): waits the drawn latency, then maybe fails the
    /// call before its statement is sent. A fault ends an open transaction (rolled
    /// back, as the server does when the connection is lost), so the guest never
    /// commits half of it.
    async fn inject_pg_fault(
        &mut self,
        faults: &crate::faults::Faults,
        connection: &Resource<PgConnection>,
    ) -> wasmtime::Result<Option<Error>> {
        let Some(fault) = faults.sql_call().await else {
            return Ok(None);
        };
        let entry = self.table.get_mut(connection)?;
        if entry.in_transaction
            && let Some(session) = entry.session.as_mut()
            && session.client.batch_execute("ROLLBACK").await.is_ok()
        {
            entry.in_transaction = false;
        }
        Ok(Some(match fault {
            SqlFault::Transient => {
                Error::ConnectionFailed("connection lost (injected fault)".into())
            }
            SqlFault::Hard => Error::QueryFailed(QueryError::DbError(DbError {
                as_text: "ERROR: could not write: I/O error (injected fault)".into(),
                severity: "ERROR".into(),
                code: "58030".into(),
                message: "could not write: I/O error (injected fault)".into(),
                detail: None,
                extras: Vec::new(),
            })),
        }))
    }
}
/// A driver error in the interface's shape (structured when the server sent it).
fn query_failed(e: tokio_postgres::Error) -> Error {
    let text = match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    };
    match e.as_db_error() {
        Some(db) => Error::QueryFailed(QueryError::DbError(DbError {
            as_text: format!("{db}"),
            severity: db.severity().to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            extras: [
                ("constraint", db.constraint()),
                ("table", db.table()),
                ("column", db.column()),
                ("schema", db.schema()),
                ("hint", db.hint()),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
            .collect(),
        })),
        None if e.is_closed() => Error::ConnectionFailed(text),
        None => Error::QueryFailed(QueryError::Text(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_open_and_close_transactions_or_dirty_the_session() {
        assert_eq!(effects("BEGIN"), (Some(true), false));
        assert_eq!(effects("  start transaction"), (Some(true), false));
        assert_eq!(effects("COMMIT"), (Some(false), false));
        assert_eq!(effects("rollback"), (Some(false), false));
        assert_eq!(effects("ROLLBACK TO SAVEPOINT a"), (None, false));
        assert_eq!(effects("SELECT 1"), (None, false));
        assert_eq!(effects("SET search_path = x"), (None, true));
        assert_eq!(effects("SET LOCAL lock_timeout = 1"), (None, false));
        assert_eq!(effects("SELECT pg_advisory_lock(1)"), (None, true));
        assert_eq!(effects("SELECT pg_advisory_xact_lock(1)"), (None, false));
    }
}
