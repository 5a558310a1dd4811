//! The store a component opens: Spin's SQLite `default` database, or PostgreSQL when
//! the `database_url` variable names a server (`postgres://…`). Both run the same
//! store functions; this enum only forwards to the chosen executor.

use courier_store::sql::{Dialect, Row, Sql, SqlError, SqlValue};

use crate::postgres::SpinPostgres;
use crate::sqlite::SpinSqlite;

/// The component's store connection.
pub enum Store {
    Sqlite(SpinSqlite),
    Postgres(SpinPostgres),
}

impl Store {
    /// Opens the store `database_url` names: empty (the default) is the embedded
    /// SQLite `default` database; `postgres://` or `postgresql://` is PostgreSQL.
    /// Anything else is a configuration error that says what is accepted.
    pub fn open(database_url: &str) -> Result<Self, SqlError> {
        let url = database_url.trim();
        if url.is_empty() {
            return SpinSqlite::open_default().map(Store::Sqlite);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return SpinPostgres::open(url).map(Store::Postgres);
        }
        Err(SqlError::Other(
            "database_url must be empty (embedded SQLite) or a postgres:// URL".into(),
        ))
    }

    fn sql(&self) -> &dyn Sql {
        match self {
            Store::Sqlite(db) => db,
            Store::Postgres(db) => db,
        }
    }
}

impl Sql for Store {
    fn dialect(&self) -> Dialect {
        self.sql().dialect()
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        self.sql().query(sql, params)
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        self.sql().execute(sql, params)
    }
}
