//! Sending: the idempotency check, the quotas and the fan-out of one message, all in
//! the request's single write transaction, as the send's plan
//! (`courier_core::plan::send`) says.
//!
//! # Layout
//! - here: the send's transaction ([`send_with`]) and the idempotency lookup.
//! - [`queued`]: the overload path — a send made durable as a queue job after a
//!   transient store failure ([`queue_retry`]), and the worker's run of it.

mod queued;

use queued::find_queued;
pub use queued::{RETRY_KIND, queue_retry, run_retry};

use courier_core::api::{SendStatus, WebhookEvent};
use courier_core::events::{MessageSent, SentTo};
use courier_core::plan::{Route, SendFacts, SendPlan, Target, plan_send};

use crate::error::StoreError;
use crate::sql::{Dialect, Sql, SqlError, SqlValue, write_tx};
use crate::streams::{NewEntry, UserSet, append_reading, bump_conversations, lock};

/// Where a message goes, already authorized.
#[derive(Debug, Clone)]
pub enum Recipients<'a> {
    /// A direct message: sender and peer (the same user for a note to self).
    Direct { peer: &'a str },
    /// Every member of a group of `members` (counted when the send was authorized):
    /// written in the send's transaction, or through the group's fan-out job, as
    /// the send's plan ([`plan_send`]) says.
    Group { gid: &'a str, members: i64 },
}

/// A validated message to store.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub msg_id: &'a str,
    pub sender: &'a str,
    pub client_msg_id: &'a str,
    pub conv: &'a str,
    /// Canonical JSON of the content.
    pub content: &'a str,
    /// Identifies the request's content for the idempotency comparison.
    pub fingerprint: &'a str,
    pub to: Recipients<'a>,
    pub sent_at: i64,
    /// Set when the worker runs a queued retry of this send (see [`queue_retry`]).
    pub from_queue: bool,
    /// That queued send was accepted as a fan-out: it stays one.
    pub accepted_for_fanout: bool,
    /// `inline_fanout_max`: the largest group written in the send's transaction.
    pub inline_fanout_max: usize,
    /// When offline recipients get a push.
    pub push: crate::push::Policy,
}

impl NewMessage<'_> {
    /// The plan of this send, given whether earlier messages of its group still
    /// wait for fan-out.
    fn plan(&self, fanout_pending: bool) -> SendPlan {
        let target = match self.to {
            Recipients::Direct { peer } if peer == self.sender => Target::OwnNote,
            Recipients::Direct { .. } => Target::Peer,
            Recipients::Group { members, .. } => Target::Group {
                members,
                fanout_pending,
            },
        };
        plan_send(SendFacts {
            target,
            inline_fanout_max: self.inline_fanout_max,
            from_queue: self.from_queue,
            accepted_for_fanout: self.accepted_for_fanout,
        })
    }
}

/// The stored result of a send: the same for the first request and every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub msg_id: String,
    pub conv: String,
    pub seq: i64,
    pub sent_at: i64,
    pub status: SendStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored now.
    Created(Sent),
    /// A retry of an earlier identical request: nothing was written.
    Duplicate(Sent),
}

pub use crate::quotas::{Bucket, RateDecision};
use crate::quotas::{QueueShare, check_queue_share, org_of, take_tokens};

/// What a send must pass besides its own checks (retries and queued sends pass free).
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    /// The sender's bucket (`user:<uid>`).
    pub user: RateDecision<'a>,
    /// The sender's org's bucket (`org:<org>`), if limited.
    pub org: Option<RateDecision<'a>>,
    /// The org's share of the queue, if capped.
    pub queue_share: Option<QueueShare>,
}

fn existing<S: Sql + ?Sized>(
    sql: &S,
    sender: &str,
    client_msg_id: &str,
) -> Result<Option<(Sent, String)>, StoreError> {
    let row = sql.query_row(
        "SELECT msg_id, conv, sender_seq, sent_at, status, fingerprint FROM messages
         WHERE sender = ? AND client_msg_id = ?",
        &[sender.into(), client_msg_id.into()],
    )?;
    Ok(row.map(sent_from_row))
}

fn sent_from_row(row: Vec<SqlValue>) -> (Sent, String) {
    let mut cols = row.into_iter();
    let mut next = || cols.next().unwrap_or(SqlValue::Null);
    let msg_id = next().into_string().unwrap_or_default();
    let conv = next().into_string().unwrap_or_default();
    let seq = next().as_i64().unwrap_or_default();
    let sent_at = next().as_i64().unwrap_or_default();
    let status = SendStatus::from_stored(&next().into_string().unwrap_or_default());
    let fingerprint = next().into_string().unwrap_or_default();
    (
        Sent {
            msg_id,
            conv,
            seq,
            sent_at,
            status,
        },
        fingerprint,
    )
}

/// Looks up an earlier send with the same idempotency key, outside any transaction:
/// a retry is answered without taking the write lock.
pub fn find_sent<S: Sql + ?Sized>(
    sql: &S,
    sender: &str,
    client_msg_id: &str,
    fingerprint: &str,
) -> Result<Option<Sent>, StoreError> {
    match existing(sql, sender, client_msg_id)? {
        Some((sent, fp)) if fp == fingerprint => Ok(Some(sent)),
        Some(_) => Err(StoreError::Conflict(
            "client_msg_id was already used with different content".into(),
        )),
        None => Ok(None),
    }
}

/// [`send_with`] limited by the sender's bucket only.
pub fn send<S: Sql + ?Sized>(
    sql: &S,
    msg: &NewMessage<'_>,
    rate: RateDecision<'_>,
) -> Result<SendOutcome, StoreError> {
    let limits = Limits {
        user: rate,
        org: None,
        queue_share: None,
    };
    send_with(sql, msg, &limits)
}

/// Stores a message and appends it to every recipient's stream, in one transaction:
/// idempotency check, quotas (retries are free; on PostgreSQL the buckets are taken
/// last, see `send_tx`), message row, entries, counters, the
/// pushes and the `message.sent` webhook deliveries it owes.
///
/// Concurrent sends of one sender are serialized by the sender's row (locked first,
/// with every recipient's): a concurrent duplicate waits for the first, then finds
/// its message. Should a duplicate still lose the race on the unique
/// `(sender, client_msg_id)` index, its transaction is rolled back and the winner's
/// message is answered as the duplicate it is.
pub fn send_with<S: Sql + ?Sized>(
    sql: &S,
    msg: &NewMessage<'_>,
    limits: &Limits<'_>,
) -> Result<SendOutcome, StoreError> {
    // Read before the write lock: an org changes only through the directory, and a
    // send racing such a change is charged to the one or the other.
    let org = org_of(sql, msg.sender)?
        .ok_or_else(|| StoreError::NotFound(format!("user {}", msg.sender)))?;
    match write_tx(sql, |sql| send_tx(sql, msg, &org, limits)) {
        Err(StoreError::Sql(SqlError::Constraint(detail))) => {
            match find_sent(sql, msg.sender, msg.client_msg_id, msg.fingerprint)? {
                Some(sent) => Ok(SendOutcome::Duplicate(sent)),
                None => Err(StoreError::Sql(SqlError::Constraint(detail))),
            }
        }
        other => other,
    }
}

fn send_tx<S: Sql + ?Sized>(
    sql: &S,
    msg: &NewMessage<'_>,
    org: &str,
    limits: &Limits<'_>,
) -> Result<SendOutcome, StoreError> {
    let fanout_pending = match msg.to {
        Recipients::Group { gid, .. } => crate::fanout::pending(sql, gid)?,
        Recipients::Direct { .. } => false,
    };
    let plan = msg.plan(fanout_pending);
    let sender_only = [msg.sender.to_string()];
    let pair: [String; 2];
    // The streams written now: a note to self and a fan-out write only the sender's.
    let set = match (plan.route, &msg.to) {
        (Route::Direct, Recipients::Direct { peer }) => {
            pair = [msg.sender.to_string(), peer.to_string()];
            UserSet::List(&pair)
        }
        (Route::Group, Recipients::Group { gid, .. }) => UserSet::Query(
            "SELECT uid FROM members WHERE gid = ? UNION SELECT uid FROM users WHERE uid = ?"
                .into(),
            vec![(*gid).into(), msg.sender.into()],
        ),
        _ => UserSet::List(&sender_only),
    };
    lock(sql, &[&UserSet::List(&sender_only), &set])?;
    if let Some(sent) = find_sent(sql, msg.sender, msg.client_msg_id, msg.fingerprint)? {
        return Ok(SendOutcome::Duplicate(sent));
    }
    if plan.answer_queued
        && let Some(queued) = find_queued(sql, msg.sender, msg.client_msg_id, msg.fingerprint)?
    {
        return Ok(SendOutcome::Duplicate(queued));
    }
    // When the quotas are charged. On PostgreSQL a bucket row stays locked until the
    // commit, and an org's row is shared by all its senders: charged last, the row is
    // held through the commit only, not through every statement of the send. (Under
    // `courier-bench scale`, 8 orgs of 50: charged first, ~13 of 32 backends waited
    // on rate_buckets rows; charged last, the bucket read still averaged 16.6 ms, so
    // an org with many concurrent senders still queues on its row.) On SQLite the
    // transaction holds the one write lock throughout anyway, and a send refused
    // first writes nothing before it is refused. Either way a refused send rolls
    // back whole. The queue-share check locks nothing and counts the jobs before
    // this send's own, so it stays first.
    let charge_last = sql.dialect() == Dialect::Postgres;
    if plan.charge {
        if !charge_last {
            take_buckets(sql, msg.sender, org, limits)?;
        }
        if let Some(share) = &limits.queue_share {
            check_queue_share(sql, org, share)?;
        }
    }
    let entry = NewEntry {
        kind: "message",
        conv: Some(msg.conv),
        msg_id: Some(msg.msg_id),
        sender: Some(msg.sender),
        data: None,
        created_at: msg.sent_at,
    };
    // Every set holds the sender: its head is the message's seq.
    let seq = append_reading(sql, &set, &entry, msg.sender)?
        .ok_or_else(|| StoreError::NotFound(format!("user {}", msg.sender)))?;
    sql.execute(
        "INSERT INTO messages (msg_id, sender, client_msg_id, conv, content, fingerprint, sent_at, sender_seq, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            msg.msg_id.into(),
            msg.sender.into(),
            msg.client_msg_id.into(),
            msg.conv.into(),
            msg.content.into(),
            msg.fingerprint.into(),
            msg.sent_at.into(),
            seq.into(),
            plan.status.as_str().into(),
        ],
    )?;
    bump_conversations(sql, &set, msg.conv, Some(msg.sender), msg.sent_at)?;
    if plan.push {
        let peer: [String; 1];
        let offline = match msg.to {
            Recipients::Direct { peer: p } => {
                peer = [p.to_string()];
                UserSet::List(&peer)
            }
            Recipients::Group { gid, .. } => UserSet::Query(
                "SELECT uid FROM members WHERE gid = ? AND uid <> ?".into(),
                vec![gid.into(), msg.sender.into()],
            ),
        };
        let trigger = crate::push::Trigger {
            msg_id: msg.msg_id.into(),
            conv: msg.conv.into(),
            sender: msg.sender.into(),
        };
        crate::push::queue_offline(sql, &offline, &trigger, &msg.push, msg.sent_at)?;
    }
    if let (Route::Fanout { lane }, Recipients::Group { gid, .. }) = (plan.route, &msg.to) {
        crate::fanout::queue(sql, gid, msg.msg_id, lane, org, msg.sent_at)?;
    }
    crate::webhooks::emit(
        sql,
        org,
        WebhookEvent::MessageSent,
        &format!("msg:{}:sent", msg.msg_id),
        msg.sent_at,
        || sent_event(msg, seq),
    )?;
    if plan.charge && charge_last {
        take_buckets(sql, msg.sender, org, limits)?;
    }
    Ok(SendOutcome::Created(Sent {
        msg_id: msg.msg_id.to_string(),
        conv: msg.conv.to_string(),
        seq,
        sent_at: msg.sent_at,
        status: plan.status,
    }))
}

/// Takes a token from the sender's bucket and the org's (if limited).
fn take_buckets<S: Sql + ?Sized>(
    sql: &S,
    sender: &str,
    org: &str,
    limits: &Limits<'_>,
) -> Result<(), StoreError> {
    let (user_key, org_key) = (format!("user:{sender}"), format!("org:{org}"));
    let mut buckets = vec![(user_key.as_str(), limits.user)];
    buckets.extend(limits.org.map(|decide| (org_key.as_str(), decide)));
    take_tokens(sql, &buckets)
}

/// The `data` of a `message.sent` event.
fn sent_event<'a>(msg: &NewMessage<'a>, seq: i64) -> MessageSent<'a> {
    MessageSent {
        msg_id: msg.msg_id,
        client_msg_id: msg.client_msg_id,
        conv: msg.conv,
        from: msg.sender,
        to: match msg.to {
            Recipients::Direct { peer } => SentTo::User(peer),
            Recipients::Group { gid, .. } => SentTo::Group(gid),
        },
        seq,
        sent_at: msg.sent_at,
        content: serde_json::from_str(msg.content).unwrap_or_default(),
    }
}
