//! The one error type of the push crate and its mapping onto the core's [`CoreError`].
//!
//! A vendor's *answer* is never an error here: it is classified into an
//! [`Outcome`](crate::Outcome). Errors are for inputs that cannot become a request
//! (a bad registration, a bad key in the configuration, a payload over the vendor's
//! limit) and for checks the fakes and callback routes run (signatures, decryption).

use courier_core::Error as CoreError;

/// Everything the push crate can fail with. `Display` is the detailed text for logs; it
/// never contains key material or whole device tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A device registration from a client is malformed (endpoint, keys, token).
    #[error("invalid device registration: {0}")]
    InvalidDevice(String),
    /// The server's push configuration is wrong (a VAPID key, a service account, ids).
    #[error("push configuration error: {0}")]
    Config(String),
    /// A payload over the vendor's size limit.
    #[error("push payload too large: {0}")]
    TooLarge(String),
    /// A signature, JWT or callback header did not verify (or is malformed, expired or
    /// outside the replay window).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// An `aes128gcm` body that cannot be decrypted (the fakes' side of Web Push).
    #[error("cannot decrypt push message: {0}")]
    Decrypt(String),
    /// A vendor or callback body that does not have the documented shape.
    #[error("malformed vendor message: {0}")]
    BadMessage(String),
}

impl From<Error> for CoreError {
    /// A bad registration is the client's fault (400); a failed callback signature is a
    /// 401 (API.md: callbacks answer 401 when not authenticated); configuration problems
    /// are the server's own (500 without detail).
    fn from(e: Error) -> CoreError {
        match e {
            Error::InvalidDevice(m) | Error::BadMessage(m) => CoreError::BadRequest(m),
            Error::Unauthenticated(m) => CoreError::Unauthorized(m),
            Error::TooLarge(m) => CoreError::TooLarge(m),
            Error::Config(m) => CoreError::Config(m),
            Error::Decrypt(m) => CoreError::Internal(format!("push decryption: {m}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_core_status_of_their_cause() {
        let cases = [
            (Error::InvalidDevice("x".into()), 400),
            (Error::BadMessage("x".into()), 400),
            (Error::Unauthenticated("x".into()), 401),
            (Error::TooLarge("x".into()), 413),
            (Error::Config("x".into()), 500),
            (Error::Decrypt("x".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(CoreError::from(error.clone()).status(), status, "{error}");
        }
    }
}
