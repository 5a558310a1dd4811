//! The overload path: a validated send made durable as one queue job when the send's
//! transaction failed transiently, answered `accepted`, and written by the worker.

use courier_core::plan::Route;
use courier_core::plan::send::QUEUED_STATUS;

use super::{NewMessage, Recipients, SendOutcome, Sent, find_sent, send};
use crate::error::StoreError;
use crate::quotas::org_of;
use crate::sql::{Sql, SqlValue, write_tx};

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
            status: QUEUED_STATUS,
        }
    }
}

/// A send of the same key waiting in the queue: its `accepted` answer, or a conflict
/// if the content differs.
pub(super) fn find_queued<S: Sql + ?Sized>(
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
    let (peer, gid, members) = match msg.to {
        Recipients::Direct { peer } => (Some(peer.to_string()), None, None),
        Recipients::Group { gid, members } => (None, Some(gid.to_string()), Some(members)),
    };
    // Decided by its group's size now; the run still queues behind pending fan-out.
    let large = matches!(msg.plan(false).route, Route::Fanout { .. });
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
/// stored already) — a fan-out if it was accepted as one, or if its group is now over
/// `inline_fanout_max` or has fan-out pending — then completes the job. Returns `false` if the lease was lost.
pub fn run_retry<S: Sql + ?Sized>(
    sql: &S,
    job: &crate::jobs::Claimed,
    inline_fanout_max: usize,
    push: &crate::push::Policy,
    now: i64,
) -> Result<bool, StoreError> {
    let q: QueuedSend = serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("queued send: {e}")))?;
    let to = match (&q.peer, &q.gid) {
        (Some(peer), _) => Recipients::Direct { peer },
        (None, Some(gid)) => Recipients::Group {
            gid,
            members: q.members.unwrap_or(0),
        },
        (None, None) => return Err(StoreError::Invalid("queued send without recipient".into())),
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
        accepted_for_fanout: q.large,
        inline_fanout_max,
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
