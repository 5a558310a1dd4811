//! Throwaway databases for tests: every test gets a store of its own, on SQLite
//! always and on PostgreSQL too when `COURIER_TEST_DATABASE_URL` names a server
//! (`postgres://postgres@127.0.0.1:5433/courier_test`, as `tests/postgres/start.sh`
//! prints). A PostgreSQL test database is a fresh schema (`t_<random>`) that every
//! connection of the test uses through its `search_path`; it is dropped when the
//! [`TestDb`] is.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::native::NativeSqlite;
use crate::native_pg::NativePostgres;
use crate::sql::{Dialect, Sql, SqlError};

/// The environment variable naming the PostgreSQL server of the tests.
pub const ENV: &str = "COURIER_TEST_DATABASE_URL";

/// One test's database; [`TestDb::connect`] opens connections to it (several, for
/// concurrency tests, each on its own thread).
#[derive(Debug)]
pub struct TestDb {
    target: Target,
}

#[derive(Debug)]
enum Target {
    Sqlite { dir: PathBuf },
    Postgres { url: String, schema: String },
}

/// A name no other test of any process uses at the same time.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}{}_{}_{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The PostgreSQL server of the tests, if `COURIER_TEST_DATABASE_URL` is set.
pub fn postgres_url() -> Option<String> {
    std::env::var(ENV).ok().filter(|url| !url.trim().is_empty())
}

/// `server` (a `postgres://` URL) with its database replaced by `name`, and the
/// server's `host:port` (port 5432 if the URL names none), for a gateway's
/// `database_url` and `database_host` on a database of its own.
pub fn on_database(server: &str, name: &str) -> Result<(String, String), SqlError> {
    let bad = |why: &str| SqlError::Other(format!("{why}: {server}"));
    let rest = server
        .strip_prefix("postgres://")
        .or_else(|| server.strip_prefix("postgresql://"))
        .ok_or_else(|| bad("the database URL must be a postgres:// URL"))?;
    let (authority, after) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = after.split_once('?').map(|(_, q)| q);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return Err(bad("the database URL names no host"));
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    let url = match query {
        Some(q) => format!("postgres://{authority}/{name}?{q}"),
        None => format!("postgres://{authority}/{name}"),
    };
    Ok((url, host))
}

impl TestDb {
    /// A SQLite file in a fresh temporary directory (removed on drop).
    pub fn sqlite() -> Result<Self, SqlError> {
        let dir = std::env::temp_dir().join(unique_name("courier-test-"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| SqlError::Other(format!("{}: {e}", dir.display())))?;
        Ok(Self {
            target: Target::Sqlite { dir },
        })
    }

    /// A fresh schema on the server at `url`.
    pub fn postgres(url: &str) -> Result<Self, SqlError> {
        let schema = unique_name("t_");
        NativePostgres::connect(url)?.execute(&format!("CREATE SCHEMA {schema}"), &[])?;
        Ok(Self {
            target: Target::Postgres {
                url: url.to_string(),
                schema,
            },
        })
    }

    /// Every backend the tests run on here: SQLite, and PostgreSQL if
    /// `COURIER_TEST_DATABASE_URL` is set (an unreachable server is an error, never
    /// a silent skip).
    pub fn all() -> Result<Vec<Self>, SqlError> {
        let mut all = vec![Self::sqlite()?];
        if let Some(url) = postgres_url() {
            all.push(Self::postgres(&url).map_err(|e| {
                SqlError::Other(format!("{ENV} is set but its server is unusable: {e}"))
            })?);
        }
        Ok(all)
    }

    pub fn dialect(&self) -> Dialect {
        match self.target {
            Target::Sqlite { .. } => Dialect::Sqlite,
            Target::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// A new connection to this test's database.
    pub fn connect(&self) -> Result<Box<dyn Sql>, SqlError> {
        Ok(match &self.target {
            Target::Sqlite { dir } => Box::new(NativeSqlite::open(&dir.join("store.db"))?),
            Target::Postgres { url, schema } => {
                Box::new(NativePostgres::connect_in_schema(url, schema)?)
            }
        })
    }

    /// A new connection, with the schema migrated.
    pub fn migrated(&self) -> Result<Box<dyn Sql>, SqlError> {
        let db = self.connect()?;
        crate::schema::migrate(&*db)?;
        Ok(db)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.target {
            Target::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Target::Postgres { url, schema } => {
                if let Ok(db) = NativePostgres::connect(url) {
                    let _ = db.execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), &[]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_gets_the_new_name_and_the_host_a_port() {
        let (url, host) =
            on_database("postgres://postgres@127.0.0.1:5433/courier_test", "b1").expect("parses");
        assert_eq!(url, "postgres://postgres@127.0.0.1:5433/b1");
        assert_eq!(host, "127.0.0.1:5433");
        let (url, host) = on_database("postgresql://u:p@db?sslmode=disable", "b2").expect("parses");
        assert_eq!(url, "postgres://u:p@db/b2?sslmode=disable");
        assert_eq!(host, "db:5432");
        assert!(on_database("mysql://x/y", "b3").is_err());
    }
}
