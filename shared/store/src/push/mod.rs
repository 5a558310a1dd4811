//! Push: device registrations, the coalesced per-user push job, delivery records.
//!
//! When a `message` entry lands in the stream of a user who has a push registration
//! and no device seen within the presence TTL, the writing transaction queues that
//! user's one push job (`push:<uid>`), set-based like the fan-out itself. A burst
//! coalesces into the pending job (its generation is bumped); a message arriving
//! while a push is in flight runs the job once more after [`Policy::interval_ms`].
//! The delivery (the `push-notify` component) re-reads the user's state first: a
//! user who came online or acked everything meanwhile gets nothing.
//!
//! # Layout
//! - `registrations.rs`: devices' push registrations (a token lives on one device).
//! - `job.rs`: the coalesced per-user push job — queued by the writing transaction,
//!   read, claimed and settled by the delivery.
//! - `records.rs`: delivery records and the vendors' delivery receipts (callbacks).

mod job;
mod records;
mod registrations;

use serde::{Deserialize, Serialize};

pub use job::{
    End, Pending, Settled, Settlement, attempt_id, claim, due_count, finish, pending, preview,
    queue_offline, settle,
};
pub use records::{Delivery, Receipt, apply_callback, record, served_devices};
pub use registrations::{Registration, register, registrations, unregister};

/// Job kind of a user's pending push.
pub const KIND: &str = "push";

/// When pushes are queued and how they coalesce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A device seen within this is online: its user gets no push.
    pub presence_ttl_ms: i64,
    /// A new push waits this long for more messages to coalesce with.
    pub delay_ms: i64,
    /// Messages arriving while a push was being delivered are pushed again this
    /// long after it, at the earliest.
    pub interval_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            presence_ttl_ms: 60_000,
            delay_ms: 1_000,
            interval_ms: 10_000,
        }
    }
}

/// The message that triggered a push (the newest one, when several coalesced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub msg_id: String,
    pub conv: String,
    pub sender: String,
}
