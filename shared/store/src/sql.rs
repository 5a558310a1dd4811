//! The SQL executor abstraction: the one seam between the store and a database.
//!
//! The same statements run on Spin's `fermyon:spin/sqlite` inside components, on
//! rusqlite natively in tests, and on PostgreSQL (`spin:postgres`) for scale-out.
//! Statements use `?` placeholders; [`Dialect::placeholders`] rewrites them to `$n`
//! for PostgreSQL, so the store writes each statement once.

use std::fmt;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl SqlValue {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Int(i) => Some(*i),
            SqlValue::Real(r) => Some(*r as i64),
            SqlValue::Text(t) => t.parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            SqlValue::Int(i) => Some(*i as f64),
            SqlValue::Real(r) => Some(*r),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        match self {
            SqlValue::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, SqlValue::Null)
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}

impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        SqlValue::Text(v.clone())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// One result row, columns in statement order.
pub type Row = Vec<SqlValue>;

/// What went wrong in the database.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// Worth retrying: the database is busy or locked, or the connection failed.
    #[error("database busy or unreachable: {0}")]
    Transient(String),
    /// A uniqueness or other constraint rejected the write.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// Anything else (syntax, schema, I/O): a bug or an outage, not the caller's fault.
    #[error("database error: {0}")]
    Other(String),
}

impl SqlError {
    /// Classifies a driver's error text (SQLite and PostgreSQL wording).
    pub fn classify(text: String) -> Self {
        let lower = text.to_ascii_lowercase();
        if lower.contains("database is locked")
            || lower.contains("busy")
            || lower.contains("could not serialize")
            || lower.contains("deadlock")
            || lower.contains("connection")
        {
            SqlError::Transient(text)
        } else if lower.contains("constraint") || lower.contains("duplicate key") {
            SqlError::Constraint(text)
        } else {
            SqlError::Other(text)
        }
    }
}

/// The SQL dialects courier speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The statement that starts a write transaction: SQLite must take the write lock
    /// up front (`IMMEDIATE`), or two readers upgrading at once deadlock into BUSY.
    pub fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Rewrites `?` placeholders for the dialect (`$1, $2, …` on PostgreSQL).
    pub fn placeholders(self, sql: &str) -> String {
        match self {
            Dialect::Sqlite => sql.to_string(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 8);
                let mut n = 0;
                let mut in_string = false;
                for c in sql.chars() {
                    match c {
                        '\'' => {
                            in_string = !in_string;
                            out.push(c);
                        }
                        '?' if !in_string => {
                            n += 1;
                            out.push('$');
                            out.push_str(&n.to_string());
                        }
                        _ => out.push(c),
                    }
                }
                out
            }
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        })
    }
}

/// A connection that runs one statement at a time. Transactions are statements too
/// (`BEGIN …`, `COMMIT`, `ROLLBACK`), so an executor is one exclusive connection.
pub trait Sql {
    fn dialect(&self) -> Dialect;

    /// Runs a statement and returns its rows (none for most writes).
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError>;

    /// Runs a statement, ignoring rows.
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        self.query(sql, params).map(drop)
    }

    /// The first row, if any.
    fn query_row(&self, sql: &str, params: &[SqlValue]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row as an integer, if any.
    fn query_i64(&self, sql: &str, params: &[SqlValue]) -> Result<Option<i64>, SqlError> {
        Ok(self
            .query_row(sql, params)?
            .and_then(|row| row.into_iter().next())
            .and_then(|v| v.as_i64()))
    }
}

/// Runs `work` in a write transaction: committed if it returns `Ok`, rolled back
/// otherwise (a failed request changes nothing).
pub fn write_tx<S: Sql + ?Sized, T, E: From<SqlError>>(
    sql: &S,
    work: impl FnOnce(&S) -> Result<T, E>,
) -> Result<T, E> {
    sql.execute(sql.dialect().begin_write(), &[])?;
    match work(sql) {
        Ok(value) => match sql.execute("COMMIT", &[]) {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = sql.execute("ROLLBACK", &[]);
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = sql.execute("ROLLBACK", &[]);
            Err(e)
        }
    }
}

/// `?, ?, ?` for `n` parameters.
pub fn params_list(n: usize) -> String {
    let mut out = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_outside_string_literals() {
        let sql = "SELECT '?' , a FROM t WHERE b = ? AND c IN (?, ?)";
        assert_eq!(
            Dialect::Postgres.placeholders(sql),
            "SELECT '?' , a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(Dialect::Sqlite.placeholders(sql), sql);
    }

    #[test]
    fn errors_are_classified_by_driver_wording() {
        assert!(matches!(
            SqlError::classify("database is locked".into()),
            SqlError::Transient(_)
        ));
        assert!(matches!(
            SqlError::classify("UNIQUE constraint failed: messages.sender".into()),
            SqlError::Constraint(_)
        ));
        assert!(matches!(
            SqlError::classify("near \"SELEKT\": syntax error".into()),
            SqlError::Other(_)
        ));
    }

    #[test]
    fn params_list_has_one_placeholder_per_value() {
        assert_eq!(params_list(0), "");
        assert_eq!(params_list(3), "?, ?, ?");
    }
}
