//! Sending: the idempotency check, the quotas and the fan-out of one message, all in
//! the request's single write transaction.

use crate::error::StoreError;
use crate::sql::{Sql, SqlError, SqlValue, write_tx};
use crate::streams::{NewEntry, UserSet, append, bump_conversations, head, lock};

/// Where a message goes, already authorized.
#[derive(Debug, Clone)]
pub enum Recipients<'a> {
    /// A direct message: sender and peer (the same user for a note to self).
    Direct { peer: &'a str },
    /// Every member of a group (the sender included), written in this transaction.
    Group { gid: &'a str },
    /// A group too large to write inline: the sender's stream now, the members
    /// through the group's fan-out job (status `accepted`).
    LargeGroup { gid: &'a str, members: i64 },
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
    /// When offline recipients get a push.
    pub push: crate::push::Policy,
}

/// The stored result of a send: the same for the first request and every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub msg_id: String,
    pub conv: String,
    pub seq: i64,
    pub sent_at: i64,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored now.
    Created(Sent),
    /// A retry of an earlier identical request: nothing was written.
    Duplicate(Sent),
}

pub use crate::quotas::{Bucket, RateDecision};
use crate::quotas::{QueueShare, check_queue_share, org_of, take_token};

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
    let status = next().into_string().unwrap_or_default();
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
/// idempotency check, quotas (retries are free), message row, entries, counters, the
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
    match write_tx(sql, |sql| send_tx(sql, msg, limits)) {
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
    limits: &Limits<'_>,
) -> Result<SendOutcome, StoreError> {
    // A group that shrank under the inline size while earlier messages still wait in
    // its outbox: written inline, this one would overtake them in every stream.
    let behind;
    let msg = match msg.to {
        Recipients::Group { gid } if crate::fanout::pending(sql, gid)? => {
            let members = crate::directory::group_size(sql, gid)?.unwrap_or(0);
            behind = NewMessage {
                to: Recipients::LargeGroup { gid, members },
                ..msg.clone()
            };
            &behind
        }
        _ => msg,
    };
    {
        let direct: Vec<String>;
        let sender_only = [msg.sender.to_string()];
        let set = match msg.to {
            Recipients::Direct { peer } => {
                direct = if peer == msg.sender {
                    vec![msg.sender.to_string()]
                } else {
                    vec![msg.sender.to_string(), peer.to_string()]
                };
                UserSet::List(&direct)
            }
            // The sender too: a send queued after a transient failure runs later,
            // maybe after its sender left the group, and still belongs in its stream.
            Recipients::Group { gid } => UserSet::Query(
                "SELECT uid FROM members WHERE gid = ? UNION SELECT uid FROM users WHERE uid = ?"
                    .into(),
                vec![gid.into(), msg.sender.into()],
            ),
            Recipients::LargeGroup { .. } => UserSet::List(&sender_only),
        };
        lock(sql, &[&UserSet::List(&sender_only), &set])?;
        if let Some(sent) = find_sent(sql, msg.sender, msg.client_msg_id, msg.fingerprint)? {
            return Ok(SendOutcome::Duplicate(sent));
        }
        if !msg.from_queue
            && let Some(queued) = find_queued(sql, msg.sender, msg.client_msg_id, msg.fingerprint)?
        {
            return Ok(SendOutcome::Duplicate(queued));
        }
        let org = org_of(sql, msg.sender)?
            .ok_or_else(|| StoreError::NotFound(format!("user {}", msg.sender)))?;
        if !msg.from_queue {
            take_token(sql, &format!("user:{}", msg.sender), limits.user)?;
            if let Some(decide) = limits.org {
                take_token(sql, &format!("org:{org}"), decide)?;
            }
            if let Some(share) = &limits.queue_share {
                check_queue_share(sql, &org, share)?;
            }
        }
        let status = match msg.to {
            Recipients::LargeGroup { .. } => "accepted",
            _ => "sent",
        };
        let entry = NewEntry {
            kind: "message",
            conv: Some(msg.conv),
            msg_id: Some(msg.msg_id),
            sender: Some(msg.sender),
            data: None,
            created_at: msg.sent_at,
        };
        append(sql, &set, &entry)?;
        let seq = head(sql, msg.sender)?
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
                status.into(),
            ],
        )?;
        bump_conversations(sql, &set, msg.conv, Some(msg.sender), msg.sent_at)?;
        let peer: [String; 1];
        let offline = match msg.to {
            Recipients::Direct { peer: p } if p != msg.sender => {
                peer = [p.to_string()];
                Some(UserSet::List(&peer))
            }
            Recipients::Group { gid } => Some(UserSet::Query(
                "SELECT uid FROM members WHERE gid = ? AND uid <> ?".into(),
                vec![gid.into(), msg.sender.into()],
            )),
            _ => None,
        };
        if let Some(candidates) = offline {
            let trigger = crate::push::Trigger {
                msg_id: msg.msg_id.into(),
                conv: msg.conv.into(),
                sender: msg.sender.into(),
            };
            crate::push::queue_offline(sql, &candidates, &trigger, &msg.push, msg.sent_at)?;
        }
        if let Recipients::LargeGroup { gid, members } = msg.to {
            crate::fanout::queue(sql, gid, msg.msg_id, members, &org, msg.sent_at)?;
        }
        crate::webhooks::emit(
            sql,
            &org,
            "message.sent",
            &format!("msg:{}:sent", msg.msg_id),
            msg.sent_at,
            || sent_event(msg, seq),
        )?;
        Ok(SendOutcome::Created(Sent {
            msg_id: msg.msg_id.to_string(),
            conv: msg.conv.to_string(),
            seq,
            sent_at: msg.sent_at,
            status: status.into(),
        }))
    }
}

/// The `data` of a `message.sent` event.
fn sent_event(msg: &NewMessage<'_>, seq: i64) -> serde_json::Value {
    let to = match msg.to {
        Recipients::Direct { peer } => serde_json::json!({ "user": peer }),
        Recipients::Group { gid } | Recipients::LargeGroup { gid, .. } => {
            serde_json::json!({ "group": gid })
        }
    };
    serde_json::json!({
        "msg_id": msg.msg_id,
        "client_msg_id": msg.client_msg_id,
        "conv": msg.conv,
        "from": msg.sender,
        "to": to,
        "seq": seq,
        "sent_at": msg.sent_at,
        "content": serde_json::from_str::<serde_json::Value>(msg.content).unwrap_or_default(),
    })
}

/// Job kind of a send queued after a transient store failure.
pub const RETRY_KIND: &str = "send";

fn retry_job_id(sender: &str, client_msg_id: &str) -> String {
    format!("send:{sender}:{client_msg_id}")
}

/// What a queued send carries: everything [`send`] needs, already validated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct QueuedSend {
    msg_id: String,
    sender: String,
    client_msg_id: String,
    conv: String,
    content: String,
    fingerprint: String,
    peer: Option<String>,
    gid: Option<String>,
    members: Option<i64>,
    large: bool,
    sent_at: i64,
}

impl QueuedSend {
    fn accepted(&self) -> Sent {
        Sent {
            msg_id: self.msg_id.clone(),
            conv: self.conv.clone(),
            seq: 0,
            sent_at: self.sent_at,
            status: "accepted".into(),
        }
    }
}

/// A send of the same key waiting in the queue: its `accepted` answer, or a conflict
/// if the content differs.
fn find_queued<S: Sql + ?Sized>(
    sql: &S,
    sender: &str,
    client_msg_id: &str,
    fingerprint: &str,
) -> Result<Option<Sent>, StoreError> {
    let Some(payload) = sql
        .query_row(
            "SELECT payload FROM jobs WHERE id = ? AND kind = ?",
            &[
                retry_job_id(sender, client_msg_id).into(),
                RETRY_KIND.into(),
            ],
        )?
        .and_then(|r| r.into_iter().next())
        .and_then(SqlValue::into_string)
    else {
        return Ok(None);
    };
    let queued: QueuedSend = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Invalid(format!("queued send: {e}")))?;
    if queued.fingerprint != fingerprint {
        return Err(StoreError::Conflict(
            "client_msg_id was already used with different content".into(),
        ));
    }
    Ok(Some(queued.accepted()))
}

/// The overload path: after [`send`] failed transiently, makes the validated send
/// durable as a queue job (one small write) and answers `accepted` (`seq` 0: the
/// sender's seq is assigned when the worker writes it). A retry of the same key
/// meanwhile gets the same answer, as a [`SendOutcome::Duplicate`]; the worker's run
/// is idempotent like any send.
pub fn queue_retry<S: Sql + ?Sized>(
    sql: &S,
    msg: &NewMessage<'_>,
    now: i64,
) -> Result<SendOutcome, StoreError> {
    let (peer, gid, members, large) = match msg.to {
        Recipients::Direct { peer } => (Some(peer.to_string()), None, None, false),
        Recipients::Group { gid } => (None, Some(gid.to_string()), None, false),
        Recipients::LargeGroup { gid, members } => {
            (None, Some(gid.to_string()), Some(members), true)
        }
    };
    let queued = QueuedSend {
        msg_id: msg.msg_id.into(),
        sender: msg.sender.into(),
        client_msg_id: msg.client_msg_id.into(),
        conv: msg.conv.into(),
        content: msg.content.into(),
        fingerprint: msg.fingerprint.into(),
        peer,
        gid,
        members,
        large,
        sent_at: msg.sent_at,
    };
    write_tx(sql, |sql| {
        if let Some(sent) = find_sent(sql, msg.sender, msg.client_msg_id, msg.fingerprint)? {
            return Ok(SendOutcome::Duplicate(sent));
        }
        if let Some(sent) = find_queued(sql, msg.sender, msg.client_msg_id, msg.fingerprint)? {
            return Ok(SendOutcome::Duplicate(sent));
        }
        let payload =
            serde_json::to_string(&queued).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let org = org_of(sql, msg.sender)?;
        crate::jobs::enqueue(
            sql,
            &crate::jobs::NewJob {
                id: &retry_job_id(msg.sender, msg.client_msg_id),
                lane: crate::jobs::Lane::High,
                kind: RETRY_KIND,
                key: Some(msg.sender),
                payload: &payload,
                run_at: now,
                org: org.as_deref(),
            },
            now,
        )?;
        Ok(SendOutcome::Created(queued.accepted()))
    })
}

/// Runs a queued send (the worker): writes it like [`send`] (a no-op if it is
/// stored already), then completes the job. Returns `false` if the lease was lost.
pub fn run_retry<S: Sql + ?Sized>(
    sql: &S,
    job: &crate::jobs::Claimed,
    push: &crate::push::Policy,
    now: i64,
) -> Result<bool, StoreError> {
    let q: QueuedSend = serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("queued send: {e}")))?;
    let to = match (&q.peer, &q.gid, q.large) {
        (Some(peer), _, _) => Recipients::Direct { peer },
        (None, Some(gid), false) => Recipients::Group { gid },
        (None, Some(gid), true) => Recipients::LargeGroup {
            gid,
            members: q.members.unwrap_or(0),
        },
        (None, None, _) => return Err(StoreError::Invalid("queued send without recipient".into())),
    };
    let msg = NewMessage {
        msg_id: &q.msg_id,
        sender: &q.sender,
        client_msg_id: &q.client_msg_id,
        conv: &q.conv,
        content: &q.content,
        fingerprint: &q.fingerprint,
        to,
        sent_at: q.sent_at,
        from_queue: true,
        push: *push,
    };
    // Its rate was charged when it was accepted.
    send(sql, &msg, &|b| Ok(b.unwrap_or((0.0, now))))?;
    let result = write_tx(sql, |sql| {
        if !crate::jobs::check_lease(sql, job)? {
            return Ok(false);
        }
        crate::jobs::complete(sql, job, now)?;
        Ok(true)
    });
    match result {
        Err(StoreError::LeaseLost) => Ok(false),
        other => other,
    }
}
