//! The one mapping from store errors to the API's errors.

use courier_core::Error;
use courier_store::{SqlError, StoreError};

/// Seconds a client should wait before retrying after a transient store failure.
pub const RETRY_AFTER_SECS: u64 = 1;

pub fn from_store(e: StoreError) -> Error {
    match e {
        StoreError::NotFound(what) => Error::NotFound(what),
        StoreError::Refused(why) => Error::Forbidden(why),
        StoreError::Conflict(why) => Error::Conflict(why),
        StoreError::Invalid(why) => Error::BadRequest(why),
        StoreError::RateLimited { retry_after_secs } => Error::RateLimited { retry_after_secs },
        StoreError::Sql(SqlError::Transient(detail)) => {
            eprintln!("courier: transient store error: {detail}");
            Error::Unavailable {
                retry_after_secs: RETRY_AFTER_SECS,
                reason: "the store is busy".into(),
            }
        }
        StoreError::LeaseLost => Error::Internal("a queue job's lease was lost".into()),
        StoreError::Sql(other) => Error::Internal(other.to_string()),
    }
}

/// `?`-friendly form of [`from_store`] for executor errors.
pub fn from_sql(e: SqlError) -> Error {
    from_store(StoreError::Sql(e))
}
