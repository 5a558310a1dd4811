//! The SQL executor abstraction: the one seam between the store and a database.
//!
//! The same statements run on Spin's `fermyon:spin/sqlite` inside components, on
//! rusqlite natively in tests, and on PostgreSQL (`spin:postgres`, or the `postgres`
//! crate natively) for scale-out. Statements use `?` placeholders;
//! [`Dialect::statement`] rewrites them to typed `$n` for PostgreSQL, so the store
//! writes each statement once. The few differences that are not placeholders —
//! row locks, advisory locks, `BEGIN IMMEDIATE` — are [`Dialect`] methods too.

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
    /// Classifies a driver's error text (SQLite and PostgreSQL wording), for drivers
    /// that give no error code.
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

    /// Classifies a PostgreSQL error by its SQLSTATE `code` (the `text` is kept):
    /// serialization failures and deadlocks (`40001`, `40P01`), lock timeouts
    /// (`55P03`), connection failures (`08…`), resource shortages (`53…`, e.g. too
    /// many connections) and server shutdowns (`57P01`–`57P03`) are transient;
    /// integrity violations (`23…`) are constraints; anything else is not retryable.
    pub fn from_sqlstate(code: &str, text: String) -> Self {
        match code {
            "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" => SqlError::Transient(text),
            c if c.starts_with("08") || c.starts_with("53") => SqlError::Transient(text),
            c if c.starts_with("23") => SqlError::Constraint(text),
            _ => SqlError::Other(text),
        }
    }

    /// Whether the failed transaction may simply be run again.
    pub fn is_transient(&self) -> bool {
        matches!(self, SqlError::Transient(_))
    }
}

mod dialect;

pub use dialect::{Dialect, TxLock, never_empty};

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

impl<T: Sql + ?Sized> Sql for &T {
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        (**self).query(sql, params)
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        (**self).execute(sql, params)
    }
}

impl<T: Sql + ?Sized> Sql for Box<T> {
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        (**self).query(sql, params)
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        (**self).execute(sql, params)
    }
}

/// An error a transaction can fail with: it may say the transaction is worth
/// running again.
pub trait TxError: From<SqlError> {
    fn is_transient(&self) -> bool;
}

impl TxError for SqlError {
    fn is_transient(&self) -> bool {
        SqlError::is_transient(self)
    }
}

/// Attempts of a PostgreSQL write transaction that fails transiently (a deadlock
/// or serialization failure aborts one of the transactions involved; running it
/// again is the documented remedy).
pub const TX_ATTEMPTS: usize = 3;

/// Runs `work` in a write transaction: committed if it returns `Ok`, rolled back
/// otherwise (a failed request changes nothing). On PostgreSQL a transaction that
/// failed transiently is run again, up to [`TX_ATTEMPTS`] times in all, so `work`
/// must not keep anything from an attempt that was rolled back. SQLite's busy
/// timeout has waited already: its transient errors are returned at once.
pub fn write_tx<S: Sql + ?Sized, T, E: TxError>(
    sql: &S,
    mut work: impl FnMut(&S) -> Result<T, E>,
) -> Result<T, E> {
    let attempts = match sql.dialect() {
        Dialect::Sqlite => 1,
        Dialect::Postgres => TX_ATTEMPTS,
    };
    let mut attempt = 1;
    loop {
        match try_tx(sql, &mut work) {
            Err(e) if e.is_transient() && attempt < attempts => attempt += 1,
            result => return result,
        }
    }
}

fn try_tx<S: Sql + ?Sized, T, E: TxError>(
    sql: &S,
    work: &mut impl FnMut(&S) -> Result<T, E>,
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
    fn postgres_error_codes_decide_what_is_retryable() {
        let class = |code| SqlError::from_sqlstate(code, format!("code {code}"));
        for transient in ["40001", "40P01", "08006", "53300", "57P01", "55P03"] {
            assert!(class(transient).is_transient(), "{transient}");
        }
        assert!(matches!(class("23505"), SqlError::Constraint(_)));
        assert!(matches!(class("23503"), SqlError::Constraint(_)));
        assert!(matches!(class("42601"), SqlError::Other(_)));
        assert!(matches!(
            SqlError::classify(
                "duplicate key value violates unique constraint \"messages_sender_client_msg_id_key\"".into()
            ),
            SqlError::Constraint(_)
        ));
        assert!(SqlError::classify("deadlock detected".into()).is_transient());
    }

    #[test]
    fn postgres_transactions_are_retried_after_a_transient_failure() {
        struct Pg(std::cell::RefCell<Vec<String>>);
        impl Sql for Pg {
            fn dialect(&self) -> Dialect {
                Dialect::Postgres
            }
            fn query(&self, sql: &str, _: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
                self.0.borrow_mut().push(sql.to_string());
                Ok(Vec::new())
            }
        }
        let pg = Pg(Default::default());
        let mut runs = 0;
        let result: Result<i32, SqlError> = write_tx(&pg, |_| {
            runs += 1;
            if runs < 3 {
                Err(SqlError::Transient("deadlock detected".into()))
            } else {
                Ok(7)
            }
        });
        assert_eq!((result, runs), (Ok(7), 3));
        assert_eq!(
            pg.0.borrow().join(";"),
            "BEGIN;ROLLBACK;BEGIN;ROLLBACK;BEGIN;COMMIT"
        );
        let mut runs = 0;
        let result: Result<(), SqlError> = write_tx(&pg, |_| {
            runs += 1;
            Err(SqlError::Transient("deadlock detected".into()))
        });
        assert!(result.is_err());
        assert_eq!(runs, TX_ATTEMPTS, "bounded");
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
