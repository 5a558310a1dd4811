//! The PostgreSQL executor over the synchronous `postgres` client: the store
//! natively on PostgreSQL, for tests and tools. Components use the Spin executor in
//! `courier-spin` (`spin:postgres@4.0.0`) instead; both send the same statements,
//! rewritten by [`Dialect::statement`] into typed `$n` placeholders.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, NoTls, Statement};

use crate::sql::{Dialect, Row, Sql, SqlError, SqlValue, never_empty};

/// Prepared statements kept per connection (the store's statements with `IN`
/// lists of many lengths would otherwise grow the cache without bound).
const STATEMENT_CACHE: usize = 512;

/// One PostgreSQL connection (its own session, so transactions span calls).
pub struct NativePostgres {
    client: RefCell<Client>,
    statements: RefCell<HashMap<String, Statement>>,
}

impl std::fmt::Debug for NativePostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NativePostgres")
    }
}

impl NativePostgres {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, or the
    /// key=value form). TLS is not supported: `sslmode=require` is refused.
    pub fn connect(url: &str) -> Result<Self, SqlError> {
        Self::connect_with(config(url)?)
    }

    /// Connects with `search_path` set to `schema` for the whole session (tests
    /// give each test a schema of its own).
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<Self, SqlError> {
        let mut config = config(url)?;
        config.options(&format!("-c search_path={schema}"));
        Self::connect_with(config)
    }

    fn connect_with(config: Config) -> Result<Self, SqlError> {
        let client = config
            .connect(NoTls)
            .map_err(|e| SqlError::Transient(format!("connecting to PostgreSQL: {e}")))?;
        Ok(Self {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
        })
    }

    fn prepared(&self, client: &mut Client, sql: &str) -> Result<Statement, SqlError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).map_err(to_sql_error)?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Runs `sql` as the driver must see it ([`Dialect::statement`]); a query as
    /// the components send one ([`never_empty`]).
    fn run<T>(
        &self,
        sql: &str,
        params: &[SqlValue],
        as_query: bool,
        run: impl FnOnce(&mut Client, &Statement, &[&(dyn ToSql + Sync)]) -> Result<T, postgres::Error>,
    ) -> Result<T, SqlError> {
        let text = Dialect::Postgres.statement(sql, params);
        let text = if as_query {
            never_empty(&text).into()
        } else {
            text
        };
        let mut client = self
            .client
            .try_borrow_mut()
            .map_err(|_| SqlError::Other("connection used re-entrantly".into()))?;
        let statement = self.prepared(&mut client, &text)?;
        let values: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        run(&mut client, &statement, &refs).map_err(to_sql_error)
    }
}

/// Parses a connection string; refuses TLS, which this executor does not speak.
pub fn config(url: &str) -> Result<Config, SqlError> {
    let config: Config = url
        .parse()
        .map_err(|e| SqlError::Other(format!("invalid PostgreSQL connection string: {e}")))?;
    if config.get_ssl_mode() == postgres::config::SslMode::Require {
        return Err(SqlError::Other(
            "sslmode=require is not supported: TLS to PostgreSQL is not implemented (use a loopback or private-network server)".into(),
        ));
    }
    Ok(config)
}

/// A driver error as the store's: by SQLSTATE when the server sent one.
pub fn to_sql_error(e: postgres::Error) -> SqlError {
    match e.as_db_error() {
        Some(db) => SqlError::from_sqlstate(
            db.code().code(),
            format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        ),
        None if e.is_closed() => SqlError::Transient(format!("connection closed: {e}")),
        None => SqlError::classify(e.to_string()),
    }
}

/// A parameter as sent: its type is the one [`Dialect::statement`] cast it to; a
/// `NULL` is accepted for whatever type the server inferred.
#[derive(Debug)]
struct Param<'a>(&'a SqlValue);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self.0, ty) {
            (SqlValue::Null, _) => Ok(IsNull::Yes),
            (SqlValue::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (SqlValue::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (SqlValue::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (SqlValue::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (SqlValue::Text(t), &(Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME)) => {
                t.to_sql(ty, out)
            }
            (SqlValue::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            (value, ty) => Err(format!("cannot send {value:?} as a {ty} parameter").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One column of a result row as a [`SqlValue`]; types the store never selects
/// (numeric, dates, arrays, …) are an error that names the type.
pub fn column(row: &postgres::Row, i: usize) -> Result<SqlValue, SqlError> {
    let ty = row.columns()[i].type_().clone();
    let get_err = |e: postgres::Error| SqlError::Other(format!("column {i} ({ty}): {e}"));
    Ok(match ty {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(get_err)?
            .map(i64::from)
            .into(),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(get_err)?
            .map(i64::from)
            .into(),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(get_err)?.into(),
        Type::OID => row
            .try_get::<_, Option<u32>>(i)
            .map_err(get_err)?
            .map(i64::from)
            .into(),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(get_err)?
            .map(i64::from)
            .into(),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, |f| SqlValue::Real(f64::from(f))),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, SqlValue::Real),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            row.try_get::<_, Option<String>>(i).map_err(get_err)?.into()
        }
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, SqlValue::Blob),
        Type::VOID => SqlValue::Null,
        other => {
            return Err(SqlError::Other(format!(
                "column {i} has type {other}, which the store does not read (cast it to BIGINT, DOUBLE PRECISION or TEXT)"
            )));
        }
    })
}

impl Sql for NativePostgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        let rows = self.run(sql, params, true, |client, statement, params| {
            client.query(statement, params)
        })?;
        rows.iter()
            .filter_map(|row| match row.try_get::<_, i32>(0) {
                // The first column tells the statement's rows (1) from the one added (0).
                Ok(1) => Some((1..row.len()).map(|i| column(row, i)).collect()),
                Ok(0) => None,
                other => Some(Err(SqlError::Other(format!(
                    "unexpected row marker {other:?} in a query's answer"
                )))),
            })
            .collect()
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        self.run(sql, params, false, |client, statement, params| {
            client.execute(statement, params)
        })
        .map(drop)
    }
}
