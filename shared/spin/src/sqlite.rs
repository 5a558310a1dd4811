//! The store's SQL executor over Spin's `fermyon:spin/sqlite@2.0.0` interface.

use std::cell::Cell;
use std::time::{Duration, Instant};

use courier_store::sql::{Dialect, Row, Sql, SqlError, SqlValue};
use spin_sdk::sqlite::{Connection, Error, QueryResult, Value};

/// One Spin SQLite connection (exclusively this instance's, so transactions work).
pub struct SpinSqlite {
    conn: Connection,
    /// Between a `BEGIN …` that succeeded and its `COMMIT` or `ROLLBACK`.
    in_transaction: Cell<bool>,
}

impl SpinSqlite {
    /// Opens the `default` database, applies the connection settings and pending
    /// migrations.
    pub fn open_default() -> Result<Self, SqlError> {
        let conn = Connection::open_default().map_err(to_sql_error)?;
        let this = Self {
            conn,
            in_transaction: Cell::new(false),
        };
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
    /// - `busy_timeout=0`: a statement that meets another connection's lock fails at
    ///   once, and [`Sql::query`] waits and tries again itself (see [`BUSY_WAIT`]).
    ///   Per connection.
    ///
    /// Best effort: a host that refuses a pragma (a remote libSQL database, say)
    /// keeps its own settings, and the store works either way.
    fn configure(&self) {
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA busy_timeout = 0",
        ] {
            if let Err(e) = self.query(pragma, &[]) {
                eprintln!("courier: {pragma}: {e}");
            }
        }
    }

    /// Runs one statement; while SQLite answers "busy" (another connection holds the
    /// lock it needs, in practice the write lock `BEGIN IMMEDIATE` takes), waits a
    /// little and runs it again, for up to [`BUSY_WAIT`] in all. Only outside a
    /// transaction (the `BEGIN IMMEDIATE` itself included): a busy autocommit
    /// statement did nothing, so running it again is safe. Inside one, SQLite may
    /// have rolled the transaction back (SQLite's own advice is to roll back rather
    /// than retry there), so the error goes to the store, which retries the whole
    /// transaction; running the statement again would run it outside the
    /// transaction and commit half of it.
    ///
    /// Why not SQLite's own busy handler (`busy_timeout`): it sleeps 1, 2, 5, 10, …
    /// then 100 ms between tries, so under contention a waiting writer sleeps through
    /// many commits of the others. These waits stay between 0.25 and 2 ms, with
    /// jitter so that waiters do not wake together. Measured on Spin 4.0.2 (`wrk`,
    /// 16 connections of 1:1 sends, 500 users, 2 runs each): SQLite's handler 795/s,
    /// p99 0.89–1.03 s; these waits 742/s, p99 247–251 ms. Capped at 1 ms instead:
    /// 724/s, p99 220 ms but p50 16.6 ms against 12.5.
    fn execute_waiting(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        let started = Instant::now();
        let mut tries = 0u32;
        let answer = loop {
            match self.conn.execute(sql, params) {
                Err(Error::Io(text))
                    if !self.in_transaction.get()
                        && is_busy(&text)
                        && started.elapsed() < BUSY_WAIT =>
                {
                    std::thread::sleep(busy_pause(tries, started));
                    tries += 1;
                }
                answer => break answer,
            }
        };
        match statement_kind(sql) {
            Statement::Begin if answer.is_ok() => self.in_transaction.set(true),
            Statement::End => self.in_transaction.set(false),
            _ => {}
        }
        answer
    }
}

/// What a statement does to the connection's transaction.
#[derive(Debug, PartialEq, Eq)]
enum Statement {
    Begin,
    /// `COMMIT`, `END` or `ROLLBACK`: whatever it answers, the store treats the
    /// transaction as over (after a failed commit it rolls back or gives up).
    End,
    Other,
}

fn statement_kind(sql: &str) -> Statement {
    let word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    if word.eq_ignore_ascii_case("begin") {
        Statement::Begin
    } else if ["commit", "end", "rollback"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
    {
        Statement::End
    } else {
        Statement::Other
    }
}

/// How long a statement waits for a lock in all, as the gateway's `busy_timeout`.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

/// SQLite's "busy" and "locked" as Spin's host words them.
fn is_busy(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("database is locked") || lower.contains("database table is locked")
}

/// The pause before try `tries + 1`: 0.25 ms doubling up to 2 ms, plus up to half
/// of that again, taken from the clock's low bits (no randomness source is needed
/// for jitter).
fn busy_pause(tries: u32, started: Instant) -> Duration {
    let base = Duration::from_micros(250 << tries.min(3));
    let jitter = started.elapsed().subsec_nanos() % (base.as_nanos() as u32 / 2 + 1);
    base + Duration::from_nanos(u64::from(jitter))
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
        let result = self.execute_waiting(sql, &params).map_err(to_sql_error)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_open_and_end_a_transaction_are_told_apart() {
        for (sql, kind) in [
            ("BEGIN IMMEDIATE", Statement::Begin),
            ("  begin", Statement::Begin),
            ("COMMIT", Statement::End),
            ("rollback", Statement::End),
            ("END TRANSACTION", Statement::End),
            ("INSERT INTO t VALUES (1)", Statement::Other),
            ("BEGINNING", Statement::Other),
            ("", Statement::Other),
        ] {
            assert_eq!(statement_kind(sql), kind, "{sql:?}");
        }
    }

    #[test]
    fn busy_pauses_stay_between_a_quarter_and_three_milliseconds() {
        let started = Instant::now();
        for tries in 0..20 {
            let pause = busy_pause(tries, started);
            assert!(pause >= Duration::from_micros(250), "{pause:?}");
            assert!(pause <= Duration::from_micros(3000), "{pause:?}");
        }
    }
}
