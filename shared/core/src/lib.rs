//! courier-core: the pure domain core of courier.
//!
//! No I/O and no spin-sdk: every input (request bytes, facts the store looked up, the
//! current time `now` in Unix ms, random bits) comes in as an argument and every
//! decision comes out as a value or an [`Error`]. It builds for the host (tests) and
//! for `wasm32-wasip2` (the components), with pure-Rust dependencies only.
//!
//! # Layout
//! - [`error`]: the one [`Error`] enum and its one mapping to status, code, body and
//!   `Retry-After`.
//! - [`config`]: typed limits read from string variables with defaults ([`Config`]).
//! - [`ids`]: validated ids — [`UserId`], [`GroupId`], [`MsgId`], [`ClientMsgId`],
//!   [`DeviceId`], [`OrgId`], [`WebhookId`], [`Seq`], [`ConvId`].
//! - [`content`]: message [`Content`], its limits and its canonical form (idempotency).
//! - [`api`]: wire types — request bodies ([`api::parse_request`]), query strings,
//!   stream [`api::Entry`]s and response bodies.
//! - [`auth`]: HS256 bearer tokens → [`auth::Identity`].
//! - [`authz`]: who may message, read, see receipts and recall.
//! - [`plan`]: the write flows' decisions over facts — a send's [`plan::SendPlan`],
//!   inline or queued [`plan::reach`], the queue's [`plan::Lane`]s.
//! - [`events`]: the `data` of each webhook event.
//! - [`streams`]: sync pages and their events, the rule that a client's seq stays
//!   within the head (sync and ack).
//! - [`ratelimit`]: the token bucket as pure state.
//! - [`vendor`]: the push [`Vendor`]s by name.

pub mod api;
pub mod auth;
pub mod authz;
pub mod config;
pub mod content;
pub mod error;
pub mod events;
pub mod ids;
pub mod plan;
pub mod ratelimit;
pub mod streams;
pub mod vendor;

pub use config::Config;
pub use content::Content;
pub use error::Error;
pub use ids::{ClientMsgId, ConvId, DeviceId, GroupId, MsgId, OrgId, Seq, UserId, WebhookId};
pub use vendor::Vendor;
