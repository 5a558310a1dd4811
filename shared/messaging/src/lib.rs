//! courier's services: what each route does, as functions over the store's SQL
//! executor with `now` (and randomness) passed in. Components parse the HTTP request,
//! call one of these and write the answer; these functions hold no I/O of their own
//! besides the executor, so they run the same in a component and in native tests.
//!
//! # Layout
//! - [`errors`]: the one mapping from store errors to API errors.
//! - [`entries`]: stored rows → API stream entries.
//! - [`directory`]: users, groups, members, relations (admin).
//! - [`send`]: `POST /v1/messages`.
//! - [`reads`]: sync (one pass; the long-poll loop is the component's), conversations,
//!   history.
//! - [`ack`]: `POST /v1/ack`.
//! - [`receipts`]: `POST /v1/receipts`, `GET /v1/messages/{id}/receipts`.
//! - [`recall`]: `POST /v1/messages/{id}/recall`.
//! - [`push`]: device registration, vendor callbacks, push delivery.
//! - [`worker`]: `POST /internal/drain` — lanes, slices, retries, dead letters.

pub mod ack;
pub mod directory;
pub mod entries;
pub mod errors;
pub mod push;
pub mod reads;
pub mod recall;
pub mod receipts;
pub mod send;
pub mod worker;

/// A service's answer: the HTTP status and the JSON body.
pub type Reply = (u16, serde_json::Value);

/// Serializes a response body (the core's response types cannot fail to serialize).
pub(crate) fn body<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
