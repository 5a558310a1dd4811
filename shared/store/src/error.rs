//! The store's error enum: what the service layer needs to tell apart.

use crate::sql::{SqlError, TxError};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A user, group or message the operation names does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The operation is refused by a rule checked inside the transaction.
    #[error("{0}")]
    Refused(String),
    /// The same idempotency key with different content.
    #[error("{0}")]
    Conflict(String),
    /// A value is out of range for the data (e.g. an ack above the head).
    #[error("{0}")]
    Invalid(String),
    /// A queue job's lease passed to another worker while this one worked on it:
    /// the work's transaction must be rolled back (the other worker repeats it).
    #[error("the job's lease was lost")]
    LeaseLost,
    /// The rate limiter said no; retry after this many seconds.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Sql(#[from] SqlError),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Sql(SqlError::Transient(_)))
    }
}

impl TxError for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }
}
