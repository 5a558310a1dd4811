//! The store's SQL executor over Spin's `spin:postgres@4.0.0` interface
//! (`spin_sdk::pg4`). Statements are the store's, rewritten by
//! [`Dialect::statement`] into typed `$n` placeholders, so that the host's driver
//! never has to match a guessed parameter type.

use courier_store::sql::{Dialect, Row, Sql, SqlError, SqlValue, never_empty};
use spin_sdk::pg4::{Connection, DbValue, ParameterValue, PgError, QueryError};

/// One PostgreSQL connection: the host keeps one session per open connection, so a
/// transaction spans several calls.
pub struct SpinPostgres {
    conn: Connection,
}

impl SpinPostgres {
    /// Opens `url` (`postgres://user[:password]@host[:port]/database`) and applies
    /// pending migrations. The host must allow `postgres://host:port` in the
    /// component's `allowed_outbound_hosts`.
    pub fn open(url: &str) -> Result<Self, SqlError> {
        let conn = Connection::open(url).map_err(to_sql_error)?;
        let this = Self { conn };
        courier_store::schema::migrate(&this)?;
        Ok(this)
    }
}

/// The host's error as the store's: a server error by its SQLSTATE.
fn to_sql_error(e: PgError) -> SqlError {
    match e {
        PgError::QueryFailed(QueryError::DbError(db)) => {
            SqlError::from_sqlstate(&db.code, format!("{} ({})", db.message, db.code))
        }
        PgError::QueryFailed(QueryError::Text(text)) => SqlError::classify(text),
        PgError::ConnectionFailed(text) => {
            SqlError::Transient(format!("PostgreSQL connection failed: {text}"))
        }
        PgError::BadParameter(text) => SqlError::Other(format!("bad parameter: {text}")),
        PgError::ValueConversionFailed(text) => {
            SqlError::Other(format!("value conversion failed: {text}"))
        }
        PgError::Other(text) => SqlError::Other(text),
    }
}

fn parameter(value: &SqlValue) -> ParameterValue {
    match value {
        SqlValue::Int(i) => ParameterValue::Int64(*i),
        SqlValue::Real(r) => ParameterValue::Floating64(*r),
        SqlValue::Text(t) => ParameterValue::Str(t.clone()),
        SqlValue::Blob(b) => ParameterValue::Binary(b.clone()),
        SqlValue::Null => ParameterValue::DbNull,
    }
}

/// A column value as the store's; types the store never selects are an error that
/// names the type.
fn value(v: DbValue) -> Result<SqlValue, SqlError> {
    Ok(match v {
        DbValue::Boolean(b) => SqlValue::Int(i64::from(b)),
        DbValue::Int8(i) => SqlValue::Int(i64::from(i)),
        DbValue::Int16(i) => SqlValue::Int(i64::from(i)),
        DbValue::Int32(i) => SqlValue::Int(i64::from(i)),
        DbValue::Int64(i) => SqlValue::Int(i),
        DbValue::Floating32(f) => SqlValue::Real(f64::from(f)),
        DbValue::Floating64(f) => SqlValue::Real(f),
        DbValue::Str(s) => SqlValue::Text(s),
        DbValue::Binary(b) => SqlValue::Blob(b),
        DbValue::DbNull => SqlValue::Null,
        other => {
            return Err(SqlError::Other(format!(
                "the store does not read {other:?} values (cast the column to BIGINT, DOUBLE PRECISION or TEXT)"
            )));
        }
    })
}

impl Sql for SpinPostgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        let statement = never_empty(&Dialect::Postgres.statement(sql, params));
        let params: Vec<ParameterValue> = params.iter().map(parameter).collect();
        let rows = self
            .conn
            .query(&statement, &params)
            .map_err(to_sql_error)?
            .rows;
        rows.into_iter()
            .filter_map(|mut row| {
                // The first column tells the statement's rows (1) from the one added (0).
                match row.first() {
                    Some(DbValue::Int32(1)) => {
                        row.remove(0);
                        Some(row.into_iter().map(value).collect())
                    }
                    Some(DbValue::Int32(0)) => None,
                    other => Some(Err(SqlError::Other(format!(
                        "unexpected row marker {other:?} in a query's answer"
                    )))),
                }
            })
            .collect()
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        let statement = Dialect::Postgres.statement(sql, params);
        let params: Vec<ParameterValue> = params.iter().map(parameter).collect();
        self.conn
            .execute(&statement, &params)
            .map(drop)
            .map_err(to_sql_error)
    }
}
