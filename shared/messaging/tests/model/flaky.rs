//! A connection that crashes or is busy on demand.

use super::*;

/// A connection that dies after `budget` statements: every later statement fails,
/// so nothing uncommitted reaches the database. Counts the durable events: commits,
/// and writes made outside a transaction (autocommit).
pub(super) struct Flaky<'a> {
    pub(super) inner: &'a dyn Sql,
    /// `BEGIN`s still to fail with a transient error ("database is locked").
    pub(super) busy: Cell<usize>,
    pub(super) budget: Cell<Option<usize>>,
    pub(super) in_tx: Cell<bool>,
    pub(super) durable: Cell<usize>,
    pub(super) crashed: Cell<bool>,
}

impl<'a> Flaky<'a> {
    pub(super) fn new(inner: &'a dyn Sql, budget: Option<usize>) -> Self {
        Flaky {
            inner,
            busy: Cell::new(0),
            budget: Cell::new(budget),
            in_tx: Cell::new(false),
            durable: Cell::new(0),
            crashed: Cell::new(false),
        }
    }
}

impl Sql for Flaky<'_> {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        self.call(sql, || self.inner.query(sql, params))
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        self.call(sql, || self.inner.execute(sql, params))
    }
}

impl Flaky<'_> {
    /// Runs one statement through `run` (the inner executor's query or execute),
    /// counting and failing it as the test asks.
    fn call<T>(&self, sql: &str, run: impl FnOnce() -> Result<T, SqlError>) -> Result<T, SqlError> {
        match self.budget.get() {
            Some(0) => {
                self.crashed.set(true);
                return Err(SqlError::Other("simulated crash".into()));
            }
            Some(left) => self.budget.set(Some(left - 1)),
            None => {}
        }
        let verb = sql
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if verb == "BEGIN" && self.busy.get() > 0 {
            self.busy.set(self.busy.get() - 1);
            return Err(SqlError::Transient("database is locked (simulated)".into()));
        }
        let rows = run()?;
        match verb.as_str() {
            "BEGIN" => self.in_tx.set(true),
            "COMMIT" => {
                self.in_tx.set(false);
                self.durable.set(self.durable.get() + 1);
            }
            "ROLLBACK" => self.in_tx.set(false),
            "INSERT" | "UPDATE" | "DELETE" if !self.in_tx.get() => {
                self.durable.set(self.durable.get() + 1);
            }
            _ => {}
        }
        Ok(rows)
    }
}
