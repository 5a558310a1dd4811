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
//! - [`webhooks`]: webhook subscriptions (admin) and the delivery of their events.
//! - [`queue`]: the engine of every lane's drain — the budget, retry delays and dead
//!   letters, stepped jobs.
//! - [`worker`]: `POST /internal/drain` — lanes and shares, the jobs it runs.
//! - [`health`]: the store check of `GET /healthz`.

pub mod ack;
pub mod directory;
pub mod entries;
pub mod errors;
pub mod health;
pub mod push;
pub mod queue;
pub mod reads;
pub mod recall;
pub mod receipts;
pub mod send;
pub mod webhooks;
pub mod worker;

/// A service's answer: the HTTP status, the JSON body, and whether the service queued
/// work for the drainer (the shell marks such an answer `x-courier-queued`, so a local
/// gateway drains at once). The service decides all three; no shell reads the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
    pub queued: bool,
}

impl Reply {
    /// 200 with `body`.
    pub fn ok(body: serde_json::Value) -> Self {
        Self::with_status(200, body)
    }

    /// 204, no body.
    pub fn no_content() -> Self {
        Self::with_status(204, serde_json::Value::Null)
    }

    /// `status` with `body`, nothing queued.
    pub fn with_status(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            body,
            queued: false,
        }
    }

    /// The same answer, marked as having queued work when `queued`.
    pub fn queued_if(self, queued: bool) -> Self {
        Self { queued, ..self }
    }
}

/// Serializes a response body (the core's response types cannot fail to serialize).
pub(crate) fn body<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
