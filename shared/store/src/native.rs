//! The rusqlite executor: the store natively, for tests and tools. Components use
//! the Spin executor in `courier-spin` instead; both run the same statements.

use std::path::Path;

use rusqlite::types::{Value, ValueRef};

use crate::sql::{Dialect, Row, Sql, SqlError, SqlValue};

/// One rusqlite connection.
#[derive(Debug)]
pub struct NativeSqlite {
    conn: rusqlite::Connection,
}

impl NativeSqlite {
    /// A private in-memory database.
    pub fn memory() -> Result<Self, SqlError> {
        Self::wrap(rusqlite::Connection::open_in_memory())
    }

    /// A file database (WAL, busy timeout), shareable between connections/threads.
    pub fn open(path: &Path) -> Result<Self, SqlError> {
        let this = Self::wrap(rusqlite::Connection::open(path))?;
        this.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| SqlError::classify(e.to_string()))?;
        this.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| SqlError::classify(e.to_string()))?;
        // As the gateway opens its files: durable across a process crash.
        this.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| SqlError::classify(e.to_string()))?;
        Ok(this)
    }

    fn wrap(conn: rusqlite::Result<rusqlite::Connection>) -> Result<Self, SqlError> {
        conn.map(|conn| Self { conn })
            .map_err(|e| SqlError::classify(e.to_string()))
    }
}

impl Sql for NativeSqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        let run = || -> rusqlite::Result<Vec<Row>> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let columns = stmt.column_count();
            let params = params.iter().map(|p| match p {
                SqlValue::Int(i) => Value::Integer(*i),
                SqlValue::Real(r) => Value::Real(*r),
                SqlValue::Text(t) => Value::Text(t.clone()),
                SqlValue::Blob(b) => Value::Blob(b.clone()),
                SqlValue::Null => Value::Null,
            });
            let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    values.push(match row.get_ref(i)? {
                        ValueRef::Integer(i) => SqlValue::Int(i),
                        ValueRef::Real(r) => SqlValue::Real(r),
                        ValueRef::Text(t) => {
                            SqlValue::Text(String::from_utf8_lossy(t).into_owned())
                        }
                        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
                        ValueRef::Null => SqlValue::Null,
                    });
                }
                out.push(values);
            }
            Ok(out)
        };
        run().map_err(|e| SqlError::classify(e.to_string()))
    }
}
