//! The store's SQL executor over Spin's `fermyon:spin/sqlite@2.0.0` interface.

use courier_store::sql::{Dialect, Row, Sql, SqlError, SqlValue};
use spin_sdk::sqlite::{Connection, Error, Value};

/// One Spin SQLite connection (exclusively this instance's, so transactions work).
pub struct SpinSqlite {
    conn: Connection,
}

impl SpinSqlite {
    /// Opens the `default` database, applies the connection settings and pending
    /// migrations.
    pub fn open_default() -> Result<Self, SqlError> {
        let conn = Connection::open_default().map_err(to_sql_error)?;
        let this = Self { conn };
        this.configure();
        courier_store::schema::migrate(&this)?;
        Ok(this)
    }

    /// The settings the local gateway gives its pooled connections, applied by the
    /// component itself because a host may not: Spin opens a fresh connection per
    /// `open` with SQLite's defaults (a rollback journal, `synchronous=FULL`).
    /// - `journal_mode=WAL`: readers run beside the writer, and a commit appends to
    ///   the log instead of rewriting pages through a journal. It is a property of the
    ///   file, so after the first open this is a no-op that takes no lock.
    /// - `synchronous=NORMAL`: no fsync per commit in WAL mode; every committed
    ///   transaction survives a process crash (an OS crash can lose the last ones).
    ///   Per connection.
    /// - `busy_timeout`: a writer waits up to 5 s for another's lock before
    ///   `SQLITE_BUSY`, as on the gateway. Per connection.
    ///
    /// Best effort: a host that refuses a pragma (a remote libSQL database, say)
    /// keeps its own settings, and the store works either way.
    fn configure(&self) {
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA busy_timeout = 5000",
        ] {
            if let Err(e) = self.query(pragma, &[]) {
                eprintln!("courier: {pragma}: {e}");
            }
        }
    }
}

fn to_sql_error(e: Error) -> SqlError {
    match e {
        Error::Io(text) => SqlError::classify(text),
        Error::DatabaseFull => SqlError::Other("database full".into()),
        other => SqlError::Other(other.to_string()),
    }
}

impl Sql for SpinSqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        let params: Vec<Value> = params
            .iter()
            .map(|p| match p {
                SqlValue::Int(i) => Value::Integer(*i),
                SqlValue::Real(r) => Value::Real(*r),
                SqlValue::Text(t) => Value::Text(t.clone()),
                SqlValue::Blob(b) => Value::Blob(b.clone()),
                SqlValue::Null => Value::Null,
            })
            .collect();
        let result = self.conn.execute(sql, &params).map_err(to_sql_error)?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| {
                row.values
                    .into_iter()
                    .map(|v| match v {
                        Value::Integer(i) => SqlValue::Int(i),
                        Value::Real(r) => SqlValue::Real(r),
                        Value::Text(t) => SqlValue::Text(t),
                        Value::Blob(b) => SqlValue::Blob(b),
                        Value::Null => SqlValue::Null,
                    })
                    .collect()
            })
            .collect())
    }
}
