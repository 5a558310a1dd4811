//! Delivering push jobs (`POST /internal/push/drain`).
//!
//! Each round claims due push jobs (one per offline user), re-reads each user's state
//! (came online or acked meanwhile → nothing to push), builds one vendor request per
//! registered device, sends them all at once through the [`Transport`], and acts on
//! each answer: delivered → recorded; token gone → registration deleted; refresh auth
//! → cached token dropped and retried; 429/5xx/transport error → the job is retried
//! with backoff (at least the vendor's `Retry-After`) and dead-lettered after the hold
//! (30 minutes); any other refusal → permanent failure, logged and counted. Devices
//! already served by this run of the job are not notified again on its retry.

//!
//! # Layout
//! - `mod.rs`: the drain ([`deliver`]), its configuration and report.
//! - `round.rs`: one round: plan (what each claimed job owes), send (every request at
//!   once), judge (what each answer means), settle (one transaction).
//! - `auth.rs`: vendor access tokens for a round (APNs provider token, FCM and HMS
//!   OAuth), cached across instances.
//! - `vendor.rs`: one device's vendor request, and what the vendor's answer means.

mod auth;
mod round;
mod vendor;

use courier_core::{ConvId, Error, MsgId, UserId};
use courier_push::{Notification, Preview};
use courier_store::Sql;
use courier_store::push::{self as store, Pending, Policy};
use http::{Request, Response};

use super::Vendors;
use crate::errors::from_store;
use crate::queue::Drain;

/// Sends HTTP requests: the component's outbound HTTP, or a test's client.
pub trait Transport {
    /// Sends every request (concurrently, if it can); one result per request, in order.
    fn send_all(
        &mut self,
        requests: Vec<Request<Vec<u8>>>,
    ) -> Vec<Result<Response<Vec<u8>>, String>>;
}

/// A small string cache shared by instances (the key-value store): vendor tokens.
pub trait Cache {
    fn get(&mut self, key: &str) -> Option<String>;
    fn set(&mut self, key: &str, value: &str);
}

/// How a delivery drain runs.
#[derive(Debug, Clone)]
pub struct DeliverConfig {
    /// Stop claiming after this long.
    pub budget_ms: i64,
    /// A claimed job not finished within this comes back.
    pub lease_ms: i64,
    /// Failing pushes are dead-lettered this long after their first attempt.
    pub hold_ms: i64,
    /// Jobs claimed (and users notified concurrently) per round.
    pub batch: usize,
    pub policy: Policy,
}

impl Default for DeliverConfig {
    fn default() -> Self {
        Self {
            budget_ms: 5_000,
            lease_ms: 30_000,
            hold_ms: 30 * 60 * 1000,
            batch: 64,
            policy: Policy::default(),
        }
    }
}

/// What a delivery drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// Push jobs finished (notified, or nothing was owed).
    pub done: u64,
    /// Vendor requests answered as delivered.
    pub sent: u64,
    /// Jobs that found their user online, acked or without registrations.
    pub skipped: u64,
    /// Jobs rescheduled after a vendor or transport failure.
    pub retried: u64,
    /// Registrations deleted because the vendor said the token is gone.
    pub tokens_removed: u64,
    /// Deliveries the vendor refused for good.
    pub failed: u64,
    pub dead_lettered: u64,
    /// Push jobs due after this drain.
    pub remaining: u64,
}

/// What a drain works with besides the store.
pub(super) struct Io<'a> {
    pub(super) vendors: &'a Vendors,
    pub(super) transport: &'a mut dyn Transport,
    pub(super) cache: &'a mut dyn Cache,
    pub(super) clock: &'a dyn Fn() -> i64,
    pub(super) random: &'a mut dyn FnMut() -> u64,
}

/// The notification a pending push makes.
fn notification(
    sql: &(impl Sql + ?Sized),
    uid: &str,
    pending: &Pending,
    preview: bool,
) -> Result<Notification, Error> {
    let trigger = &pending.trigger;
    let preview = if preview {
        store::preview(sql, &trigger.msg_id)
            .map_err(from_store)?
            .map(|(sender, content)| {
                let content: serde_json::Value = serde_json::from_str(&content).unwrap_or_default();
                let text = match content.get("type").and_then(|t| t.as_str()) {
                    Some("text") => content
                        .get("text")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    Some("image") => "[image]".into(),
                    Some("file") => "[file]".into(),
                    _ => "[message]".into(),
                };
                Preview { sender, text }
            })
    } else {
        None
    };
    Ok(Notification {
        user: UserId::parse(uid)?,
        unread: pending.unread.max(0) as u64,
        conv: ConvId::read_back(&trigger.conv)?,
        msg_id: MsgId::parse(&trigger.msg_id)?,
        preview,
    })
}

/// Runs due push jobs until none are due or the budget is spent.
pub fn deliver<S: Sql + ?Sized>(
    sql: &S,
    vendors: &Vendors,
    transport: &mut dyn Transport,
    cache: &mut dyn Cache,
    config: &DeliverConfig,
    clock: &dyn Fn() -> i64,
    random: &mut dyn FnMut() -> u64,
) -> Result<PushReport, Error> {
    let drain = Drain::start('p', config.budget_ms, clock, random);
    let mut io = Io {
        vendors,
        transport,
        cache,
        clock,
        random,
    };
    let mut report = PushReport::default();
    drain.rounds(|| {
        let claimed = store::claim(sql, config.batch, drain.lease(), config.lease_ms, clock())
            .map_err(from_store)?;
        let n = claimed.len();
        if n > 0 {
            round::round(sql, &mut io, config, claimed, &mut report)?;
        }
        Ok(n)
    })?;
    report.remaining = store::due_count(sql, clock()).map_err(from_store)? as u64;
    Ok(report)
}
