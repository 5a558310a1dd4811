//! The wire types of API.md: request bodies and query strings in, responses out.
//!
//! - [`parse_request`] is the one way a body becomes a request value: size limit,
//!   UTF-8, JSON, field types (ids validate as they deserialize), then the type's own
//!   [`RequestBody::validate`]. Every failure is `BadRequest`, except an oversize body
//!   or text (`TooLarge`). Unknown fields are ignored.
//! - `messaging.rs`: send, ack and receipt bodies. `directory.rs`: the admin bodies.
//! - `query.rs`: the `sync` and `history` query strings.
//! - `entry.rs`: the stream [`Entry`]. `responses.rs`: every response body.
//! - `webhooks.rs`: webhook subscriptions, their URL and allowed-origin rules.

mod directory;
mod entry;
mod messaging;
mod query;
mod responses;
mod webhooks;

pub use directory::{
    MAX_DISPLAY_NAME_BYTES, MembersChange, PutGroup, PutRelation, PutUser, RelationKind,
    check_group_size,
};
pub use entry::{
    ControlEntry, ControlEvent, Entry, EntryBody, EntryKind, MessageEntry, RecallEntry,
    ReceiptEntry,
};
pub use messaging::{
    AckRequest, MAX_RECEIPT_IDS, Priority, ReceiptsRequest, Recipient, SendRequest,
};
pub use query::{HistoryQuery, StreamQuery, SyncQuery};
pub use responses::{
    AckResponse, ConversationSummary, ConversationsResponse, DrainResponse, HistoryResponse,
    MembersChangeResponse, MessageReadersResponse, PutGroupResponse, PutUserResponse,
    RecallResponse, ReceiptsResponse, SendResponse, SendStatus, SyncResponse,
};
pub use webhooks::{
    Origin, OriginPattern, PutWebhook, WebhookEvent, WebhookResponse, WebhooksQuery,
    WebhooksResponse, check_url,
};

use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::Error;

/// A request body type: how large it may be and what it must satisfy beyond its shape.
pub trait RequestBody: DeserializeOwned + Sized {
    /// The largest accepted body. Messaging bodies use `max_body_bytes`.
    fn max_body_bytes(config: &Config) -> usize {
        config.max_body_bytes
    }

    /// Checks the rules serde cannot and normalizes (e.g. drops duplicate ids).
    fn validate(self, config: &Config) -> Result<Self, Error>;
}

/// Parses a request body: over the type's size limit → `TooLarge`; not UTF-8, not
/// JSON, a wrong type or a missing field → `BadRequest`; then [`RequestBody::validate`].
///
/// Nesting is bounded by serde_json's recursion limit (128 levels), so hostile input
/// cannot exhaust the stack (a component's stack is small).
pub fn parse_request<T: RequestBody>(body: &[u8], config: &Config) -> Result<T, Error> {
    let max = T::max_body_bytes(config);
    if body.len() > max {
        return Err(Error::TooLarge(format!("request body is over {max} bytes")));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::BadRequest("request body is not valid UTF-8".into()))?;
    let value: T = serde_json::from_str(text)
        .map_err(|e| Error::BadRequest(format!("invalid request body: {e}")))?;
    value.validate(config)
}

/// Keeps the first of each equal item, in order.
fn dedup_in_order<T: Ord + Clone>(items: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    #[test]
    fn body_over_the_limit_is_too_large_before_parsing() {
        let body = vec![b' '; config().max_body_bytes + 1];
        let err = parse_request::<AckRequest>(&body, &config()).expect_err("too large");
        assert_eq!(err.code(), "too_large");
    }

    #[test]
    fn invalid_utf8_is_a_bad_request() {
        let err = parse_request::<AckRequest>(b"{\"seq\": \xff}", &config()).expect_err("utf8");
        assert_eq!(
            err,
            Error::BadRequest("request body is not valid UTF-8".into())
        );
    }

    #[test]
    fn malformed_json_wrong_types_and_missing_fields_are_bad_requests() {
        for body in [
            &b""[..],
            b"{",
            b"null",
            b"[]",
            b"{\"seq\": \"1\"}",
            b"{}",
            b"{\"seq\": 1} x",
        ] {
            let err = parse_request::<AckRequest>(body, &config()).expect_err("invalid");
            assert_eq!(
                err.code(),
                "bad_request",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let ack: AckRequest =
            parse_request(br#"{"seq": 3, "extra": {"deep": [1]}}"#, &config()).expect("valid");
        assert_eq!(ack.seq.get(), 3);
    }

    #[test]
    fn deeply_nested_json_cannot_overflow_the_stack() {
        let depth = 100_000;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body = format!(
            r#"{{"client_msg_id":"c1","to":{{"user":"u2"}},"content":{{"type":"custom","data":{{"k":{deep}}}}}}}"#
        );
        let roomy = Config {
            max_body_bytes: body.len(),
            ..config()
        };
        let err = parse_request::<SendRequest>(body.as_bytes(), &roomy).expect_err("too deep");
        assert_eq!(err.code(), "bad_request");
        assert!(err.public_message().contains("recursion limit"), "{err}");
        // The same for a bare value, and as the whole body.
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
        let roomy = Config {
            max_body_bytes: deep.len(),
            ..config()
        };
        assert!(parse_request::<SendRequest>(deep.as_bytes(), &roomy).is_err());
        // An ignored unknown field is skipped without recursion (serde_json skips values
        // with a loop), so it cannot overflow either; the request is fine.
        let ignored = format!(r#"{{"seq":1,"x":{deep}}}"#);
        let roomy = Config {
            max_body_bytes: ignored.len(),
            ..config()
        };
        let ack = parse_request::<AckRequest>(ignored.as_bytes(), &roomy).expect("skipped");
        assert_eq!(ack.seq.get(), 1);
    }

    #[test]
    fn dedup_keeps_first_occurrences_in_order() {
        assert_eq!(dedup_in_order(vec![3, 1, 3, 2, 1]), vec![3, 1, 2]);
    }
}
