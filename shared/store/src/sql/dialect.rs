//! What differs between SQLite and PostgreSQL besides placeholders: the
//! statements that open a write transaction and lock rows, advisory locks, the
//! rewrite of `?` into typed `$n`, and the wrapping of PostgreSQL queries.

use std::fmt;

use super::SqlValue;

/// A PostgreSQL `statement` (one that returns rows) rewritten to answer one row
/// more than it does, marked by a first column of 0 where its own rows have 1. Spin
/// 4.0.x's `query` never returns when a statement matches no rows (it waits for
/// column types it only learns from a first row; spinframework/spin#3671, fixed
/// after 4.0.2), which would hang the request for good. The statement runs once, as
/// a materialized CTE (data-modifying and `FOR UPDATE` statements included), and its
/// rows come first, in its order: a CTE scan reads them as the CTE produced them,
/// and `UNION ALL` runs its branches in turn. The added row is the statement's
/// columns all NULL (a join on `false`), so both branches have its column types.
///
/// Both PostgreSQL executors (the components' and the native one the tests use)
/// send every query this way, so the tests run the statements the components do: a
/// data-modifying statement without `RETURNING` is no query here (PostgreSQL
/// refuses it inside `WITH`), and must go through `execute`.
pub fn never_empty(statement: &str) -> String {
    format!(
        "WITH courier_q AS ({statement}) SELECT 1, courier_q.* FROM courier_q UNION ALL \
         SELECT 0, courier_q.* FROM (SELECT 1) AS courier_one LEFT JOIN courier_q ON false"
    )
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
    /// PostgreSQL runs it at READ COMMITTED; the store takes row locks where it
    /// reads and then writes (see [`Dialect::for_update`]).
    pub fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// The locking clause of a `SELECT` whose rows the transaction will change:
    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, where the write transaction
    /// already holds the database's one write lock.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Like [`Dialect::for_update`] on `table`, skipping rows another transaction
    /// holds (queue claiming: a job being worked on is not a candidate).
    pub fn for_update_skip_locked(self, table: &str) -> String {
        match self {
            Dialect::Sqlite => String::new(),
            Dialect::Postgres => format!(" FOR UPDATE OF {table} SKIP LOCKED"),
        }
    }

    /// A statement that serializes the transactions that run it, held until commit
    /// (`None` on SQLite, where write transactions are serialized anyway). `key`
    /// names the critical section (see [`TxLock`]).
    pub fn tx_lock(self, key: TxLock) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!("SELECT pg_advisory_xact_lock({})", key as i64)),
        }
    }

    /// The statement as the driver must see it: on PostgreSQL every `?` becomes
    /// `$n`, cast to the type of its value (`$1::int8`, `$2::text`, …) so that the
    /// server never has to guess a parameter's type (it would guess `text` for a
    /// parameter in a `SELECT` list, or `int4` where a driver sends 64-bit integers).
    /// A `NULL` parameter stays uncast: its type comes from where it is used.
    /// `?` inside string literals is left alone.
    pub fn statement<'a>(self, sql: &'a str, params: &[SqlValue]) -> std::borrow::Cow<'a, str> {
        match self {
            Dialect::Sqlite => sql.into(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 8 * params.len());
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
                            out.push_str(match params.get(n - 1) {
                                Some(SqlValue::Int(_)) => "::int8",
                                Some(SqlValue::Real(_)) => "::float8",
                                Some(SqlValue::Text(_)) => "::text",
                                Some(SqlValue::Blob(_)) => "::bytea",
                                Some(SqlValue::Null) | None => "",
                            });
                        }
                        _ => out.push(c),
                    }
                }
                out.into()
            }
        }
    }
}

/// Critical sections serialized across every connection of a PostgreSQL database
/// (transaction-scoped advisory locks; the numbers are arbitrary but fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum TxLock {
    /// Applying schema migrations.
    Migrate = 0x636f_7572_0001,
    /// Claiming jobs: the per-key lease cap counts leases other claimers took.
    ClaimJobs = 0x636f_7572_0002,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_and_typed_outside_string_literals() {
        let sql = "SELECT '?' , a FROM t WHERE b = ? AND c IN (?, ?) AND d = ? AND e = ?";
        let params = [
            SqlValue::Int(1),
            SqlValue::Text("x".into()),
            SqlValue::Null,
            SqlValue::Real(0.5),
            SqlValue::Blob(vec![1]),
        ];
        assert_eq!(
            Dialect::Postgres.statement(sql, &params),
            "SELECT '?' , a FROM t WHERE b = $1::int8 AND c IN ($2::text, $3) AND d = $4::float8 AND e = $5::bytea"
        );
        assert_eq!(Dialect::Sqlite.statement(sql, &params), sql);
    }
}
