//! `fermyon:spin/sqlite@2.0.0`: each guest connection is its own pooled SQLite
//! connection, so a guest's `BEGIN … COMMIT` spans several `execute` calls.
//!
//! Writers of this gateway queue on the pool's async write lock (see `Pool::writer`):
//! a connection holds it from its first write (or `BEGIN IMMEDIATE`) until it is back
//! in autocommit mode. Statements that cannot wait on a lock run on the executor; a
//! write that could (another process holds the file) runs on the blocking pool.
//!
//! # Layout
//! - `mod.rs`: the interface: connections, statements, the write lock, wakes.
//! - `pool.rs`: the app's SQLite files and their connection pools.

pub mod pool;

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::component::Resource;

use super::HostState;
use super::fermyon::spin::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value};

/// A guest's open connection. `conn` is `None` only while a statement runs.
pub struct SqliteConnection {
    label: String,
    conn: Option<self::pool::Conn>,
    writer: Arc<Mutex<()>>,
    write_guard: Option<OwnedMutexGuard<()>>,
    /// `users` rows updated by the open transaction: parked polls to wake when it
    /// commits (see `parking/`).
    moved: Vec<i64>,
}

/// Whether a statement takes SQLite's write lock (by its first keyword; `BEGIN`
/// counts only as `IMMEDIATE`/`EXCLUSIVE`, the forms that lock at once).
fn writes(statement: &str) -> bool {
    let upper: String = statement
        .trim_start()
        .chars()
        .take(32)
        .collect::<String>()
        .to_ascii_uppercase();
    let first = upper.split_whitespace().next().unwrap_or("");
    match first {
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "CREATE" | "DROP" | "ALTER" => true,
        "BEGIN" => upper.contains("IMMEDIATE") || upper.contains("EXCLUSIVE"),
        _ => false,
    }
}

impl Host for HostState {}

impl HostConnection for HostState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<SqliteConnection>, Error>> {
        if !self.grants.sqlite_databases.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(pool) = self.stores.databases.get(&database) else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        let conn = match pool.checkout() {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(Error::Io(format!("{e:#}")))),
        };
        let resource = self.table.push(SqliteConnection {
            label: database,
            conn: Some(conn),
            writer: Arc::clone(&pool.writer),
            write_guard: None,
            moved: Vec::new(),
        })?;
        Ok(Ok(resource))
    }

    async fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        if let Some(faults) = self.faults.clone()
            && let Some(error) = self.inject_sqlite_fault(&faults, &connection).await?
        {
            return Ok(Err(error));
        }
        let entry = self.table.get_mut(&connection)?;
        if entry.write_guard.is_none() && writes(&statement) {
            let writer = Arc::clone(&entry.writer);
            // Bounded like SQLite's own busy timeout: a guest that writes on two of its
            // own connections at once gets SQLite's answer instead of waiting on itself.
            if let Ok(guard) =
                tokio::time::timeout(self::pool::BUSY_TIMEOUT, writer.lock_owned()).await
            {
                self.table.get_mut(&connection)?.write_guard = Some(guard);
            }
        }
        let entry = self.table.get_mut(&connection)?;
        // A statement that cannot wait on a lock runs right here: reads never wait in
        // WAL mode, and a writer holding this gateway's write lock has SQLite's lock to
        // itself. Only a write without it (another process holds the file) may sleep in
        // SQLite's busy handler, so it goes to the blocking pool. The hop saved is most
        // of the host-call cost (courier-bench messaging: sends 795 → 1,150/s, polls
        // 4,052 → 8,323/s on 2 cores).
        let inline = entry.write_guard.is_some() || !writes(&statement);
        let Some(conn) = entry.conn.take() else {
            return Ok(Err(Error::InvalidConnection));
        };
        let ((conn, result), observed) = if inline {
            self::pool::observed(|| {
                let result = run(&conn, &statement, parameters);
                (conn, result)
            })
        } else {
            tokio::task::spawn_blocking(move || {
                self::pool::observed(|| {
                    let result = run(&conn, &statement, parameters);
                    (conn, result)
                })
            })
            .await?
        };
        let entry = self.table.get_mut(&connection)?;
        if observed.rolled_back {
            entry.moved.clear();
        }
        entry.moved.extend(observed.moved);
        let committed = if conn.is_autocommit() {
            entry.write_guard = None;
            std::mem::take(&mut entry.moved)
        } else {
            Vec::new()
        };
        let label = (!committed.is_empty()).then(|| entry.label.clone());
        entry.conn = Some(conn);
        if let Some(label) = label {
            self.stores.moved_sqlite_rows(&label, &committed);
        }
        Ok(result.map_err(to_wit_error))
    }

    async fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        let connection = self.table.delete(connection)?;
        if let Some(conn) = connection.conn {
            let stores = Arc::clone(&self.stores);
            let label = connection.label;
            let guard = connection.write_guard;
            // Rolling back an abandoned transaction touches the disk: keep it off
            // the executor, and hold the write lock until it is done.
            tokio::task::spawn_blocking(move || {
                if let Some(pool) = stores.databases.get(&label) {
                    pool.checkin(conn);
                }
                drop(guard);
            });
        }
        Ok(())
    }
}

impl HostState {
    /// Fault injection (`--faults`): waits the drawn latency, then maybe fails the
    /// call before its statement runs. A fault ends an open transaction (rolled back,
    /// as SQLite may do on an I/O error), so the guest never commits half of it.
    async fn inject_sqlite_fault(
        &mut self,
        faults: &crate::faults::Faults,
        connection: &Resource<SqliteConnection>,
    ) -> wasmtime::Result<Option<Error>> {
        let Some(fault) = faults.sql_call().await else {
            return Ok(None);
        };
        let entry = self.table.get_mut(connection)?;
        if let Some(conn) = &entry.conn
            && !conn.is_autocommit()
        {
            // Takes no lock: a transaction's own locks are only released.
            let _ = conn.execute_batch("ROLLBACK");
            if conn.is_autocommit() {
                entry.write_guard = None;
                entry.moved.clear();
            }
        }
        Ok(Some(Error::Io(fault.sqlite_text().into())))
    }
}

fn run(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> rusqlite::Result<QueryResult> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let params: Vec<SqlValue> = parameters.into_iter().map(from_wit).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(to_wit))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

fn from_wit(value: Value) -> SqlValue {
    match value {
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(r) => SqlValue::Real(r),
        Value::Text(t) => SqlValue::Text(t),
        Value::Blob(b) => SqlValue::Blob(b),
        Value::Null => SqlValue::Null,
    }
}

fn to_wit(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Null => Value::Null,
    }
}

fn to_wit_error(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
            Error::DatabaseFull
        }
        _ => Error::Io(e.to_string()),
    }
}
