//! `fermyon:spin/sqlite@2.0.0`: each guest connection is its own pooled SQLite
//! connection, so a guest's `BEGIN … COMMIT` spans several `execute` calls.
//!
//! Statements run on tokio's blocking pool: a statement may wait on another writer's
//! lock (busy timeout) and must not stall the request executor meanwhile.

use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::component::Resource;

use super::HostState;
use super::fermyon::spin::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value};

/// A guest's open connection. `conn` is `None` only while a statement runs.
pub struct SqliteConnection {
    label: String,
    conn: Option<rusqlite::Connection>,
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
        let Some(app) = self.app.upgrade() else {
            return Ok(Err(Error::Io("gateway is shutting down".into())));
        };
        let Some(pool) = app.databases.get(&database) else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        let conn = match pool.checkout() {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(Error::Io(format!("{e:#}")))),
        };
        let resource = self.table.push(SqliteConnection {
            label: database,
            conn: Some(conn),
        })?;
        Ok(Ok(resource))
    }

    async fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let Some(conn) = self.table.get_mut(&connection)?.conn.take() else {
            return Ok(Err(Error::InvalidConnection));
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = run(&conn, &statement, parameters);
            (conn, result)
        })
        .await?;
        self.table.get_mut(&connection)?.conn = Some(conn);
        Ok(result.map_err(to_wit_error))
    }

    async fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        let connection = self.table.delete(connection)?;
        if let (Some(conn), Some(app)) = (connection.conn, self.app.upgrade()) {
            let label = connection.label;
            // Rolling back an abandoned transaction touches the disk: keep it off
            // the executor.
            tokio::task::spawn_blocking(move || {
                if let Some(pool) = app.databases.get(&label) {
                    pool.checkin(conn);
                }
            });
        }
        Ok(())
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
