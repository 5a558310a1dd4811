//! courier's storage: the schema and every read and write of the messaging core,
//! over a small SQL executor so the same statements run on Spin's SQLite interface,
//! on rusqlite in tests and on PostgreSQL. Where a flow has a plan in
//! `courier_core::plan` (send; recall's inline-or-queued reach), the store reads the
//! facts in its transaction, asks the plan, and applies it.
//!
//! # Layout
//! - [`sql`]: the executor trait, values, errors, dialects, transactions.
//! - [`schema`]: versioned migrations, applied on first use.
//! - [`streams`]: set-based appends to per-user streams (seq allocation).
//! - [`directory`]: users, groups, members, relations; authorization facts.
//! - [`messages`]: send — idempotency, quotas and fan-out in one transaction, as
//!   `courier_core::plan::send` plans it; the overload path's queued sends.
//! - [`reads`]: sync pages, history, the conversation list.
//! - [`receipts`]: read marks, per-sender merged receipt jobs, read/unread lists.
//! - [`recall`]: erase and announce, inline or through a chunked job.
//! - [`devices`]: presence and acks.
//! - [`push`]: push registrations, coalesced per-user push jobs, delivery records.
//! - [`fanout`]: large-group fan-out through the queue, merged per chunk.
//! - [`jobs`]: the durable queue: enqueue, claim with lease, complete, retry, dead-letter.
//! - [`quotas`]: the per-user and per-org token buckets, an org's share of the queue.
//! - [`retention`]: the purge of old history and dead letters, in bounded batches.
//! - [`webhooks`]: subscriptions, and event deliveries queued with the event's data.
//! - [`native`] (host targets only): the rusqlite executor, for tests and tools.
//! - [`native_pg`] (host targets only): the PostgreSQL executor, for tests and tools.
//! - [`testdb`] (host targets only): throwaway databases for tests — SQLite, and
//!   PostgreSQL when `COURIER_TEST_DATABASE_URL` is set.

pub mod devices;
pub mod directory;
pub mod error;
pub mod fanout;
pub mod jobs;
pub mod messages;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(not(target_arch = "wasm32"))]
pub mod native_pg;
pub mod push;
pub mod quotas;
pub mod reads;
pub mod recall;
pub mod receipts;
pub mod retention;
pub mod schema;
pub mod sql;
pub mod streams;
#[cfg(not(target_arch = "wasm32"))]
pub mod testdb;
pub mod webhooks;

pub use error::StoreError;
pub use sql::{Dialect, Row, Sql, SqlError, SqlValue, TxLock};
