//! The one error type of the core and its one mapping to the HTTP contract.
//!
//! Every rule in this crate fails with an [`Error`]; [`Error::status_and_code`] is the
//! only place that turns a variant into the status and `code` of API.md, so a handler
//! never picks a status itself.

use serde_json::json;

/// Everything a request can fail with. `Display` is the detailed text for logs;
/// [`Error::body`] is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed JSON, a missing or invalid field, an unknown query value, seq beyond head.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Missing, malformed, expired or badly signed token.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Authenticated but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Unknown user, group, message or route.
    #[error("not found: {0}")]
    NotFound(String),
    /// Wrong method on a known route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `client_msg_id` reused with different content.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Recall asked for after `recall_window_secs`.
    #[error("the recall window has passed")]
    RecallWindowExpired,
    /// Body over the limit, text over `max_text_bytes`.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Per-user or per-org limit hit.
    #[error("rate limited, retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry can succeed (the `Retry-After` header), at least 1.
        retry_after_secs: u64,
    },
    /// Overloaded, or the store is down and the request could not be made durable.
    #[error("unavailable ({reason}), retry after {retry_after_secs} s")]
    Unavailable {
        /// The `Retry-After` header, in seconds.
        retry_after_secs: u64,
        /// Shown to the client: keep store details (SQL, hosts) out of it.
        reason: String,
    },
    /// A bug or an unexpected store answer. The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// The server's own configuration is wrong (a bad variable, a too-short secret).
    /// The detail is logged, never sent: the client sees a generic 500.
    #[error("configuration error: {0}")]
    Config(String),
}

/// The message a client gets for a 500: details go to the log only.
const INTERNAL_MESSAGE: &str = "internal server error";

impl Error {
    /// The one mapping from an error to its HTTP status and API error code.
    ///
    /// `Internal` and `Config` are 500 `internal`, which API.md's table does not list:
    /// they are the server's fault, not the request's.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Error::BadRequest(_) => (400, "bad_request"),
            Error::Unauthorized(_) => (401, "unauthorized"),
            Error::Forbidden(_) => (403, "forbidden"),
            Error::NotFound(_) => (404, "not_found"),
            Error::MethodNotAllowed => (405, "method_not_allowed"),
            Error::Conflict(_) => (409, "conflict"),
            Error::RecallWindowExpired => (409, "recall_window_expired"),
            Error::TooLarge(_) => (413, "too_large"),
            Error::RateLimited { .. } => (429, "rate_limited"),
            Error::Unavailable { .. } => (503, "unavailable"),
            Error::Internal(_) | Error::Config(_) => (500, "internal"),
        }
    }

    /// The HTTP status alone.
    pub fn status(&self) -> u16 {
        self.status_and_code().0
    }

    /// The API error code alone.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// The human text the client sees: the variant's detail, except for 500s.
    pub fn public_message(&self) -> String {
        match self {
            Error::BadRequest(m)
            | Error::Unauthorized(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::TooLarge(m) => m.clone(),
            Error::MethodNotAllowed => "method not allowed on this route".to_string(),
            Error::RecallWindowExpired => "the recall window of this message has passed".into(),
            Error::RateLimited { retry_after_secs } => {
                format!("rate limit hit, retry after {retry_after_secs} s")
            }
            Error::Unavailable { reason, .. } => format!("temporarily unavailable: {reason}"),
            Error::Internal(_) | Error::Config(_) => INTERNAL_MESSAGE.to_string(),
        }
    }

    /// The response body: `{"error": {"code": ..., "message": ...}}`.
    pub fn body(&self) -> String {
        json!({ "error": { "code": self.code(), "message": self.public_message() } }).to_string()
    }

    /// The `Retry-After` header value in seconds, for the variants that carry one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after_secs }
            | Error::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn all_variants() -> Vec<Error> {
        vec![
            Error::BadRequest("b".into()),
            Error::Unauthorized("u".into()),
            Error::Forbidden("f".into()),
            Error::NotFound("n".into()),
            Error::MethodNotAllowed,
            Error::Conflict("c".into()),
            Error::RecallWindowExpired,
            Error::TooLarge("t".into()),
            Error::RateLimited {
                retry_after_secs: 3,
            },
            Error::Unavailable {
                retry_after_secs: 2,
                reason: "store down".into(),
            },
            Error::Internal("SELECT * FROM secrets".into()),
            Error::Config("jwt_secret too short".into()),
        ]
    }

    #[test]
    fn every_variant_maps_to_the_status_and_code_of_the_api_table() {
        let mapped: Vec<(u16, &str)> = all_variants().iter().map(Error::status_and_code).collect();
        assert_eq!(
            mapped,
            vec![
                (400, "bad_request"),
                (401, "unauthorized"),
                (403, "forbidden"),
                (404, "not_found"),
                (405, "method_not_allowed"),
                (409, "conflict"),
                (409, "recall_window_expired"),
                (413, "too_large"),
                (429, "rate_limited"),
                (503, "unavailable"),
                (500, "internal"),
                (500, "internal"),
            ]
        );
    }

    #[test]
    fn body_has_the_api_error_shape() {
        let body: Value = serde_json::from_str(&Error::NotFound("unknown user u9".into()).body())
            .expect("body is JSON");
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["message"], "unknown user u9");
        assert_eq!(body.as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn internal_and_config_errors_never_leak_their_detail() {
        for (error, detail) in [
            (Error::Internal("SELECT secret".into()), "SELECT secret"),
            (Error::Config("key=abc".into()), "key=abc"),
        ] {
            let body = error.body();
            assert!(!body.contains(detail), "{body}");
            assert!(body.contains(INTERNAL_MESSAGE));
            assert!(
                error.to_string().contains(detail),
                "the log text keeps the detail"
            );
        }
    }

    #[test]
    fn only_rate_limited_and_unavailable_carry_retry_after() {
        let with: Vec<Option<u64>> = all_variants().iter().map(Error::retry_after).collect();
        let expected: Vec<Option<u64>> = all_variants()
            .iter()
            .map(|e| match e {
                Error::RateLimited { .. } => Some(3),
                Error::Unavailable { .. } => Some(2),
                _ => None,
            })
            .collect();
        assert_eq!(with, expected);
    }

    #[test]
    fn body_escapes_quotes_in_messages() {
        let body = Error::BadRequest("field \"to\" is invalid".into()).body();
        let parsed: Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(parsed["error"]["message"], "field \"to\" is invalid");
    }
}
