//! Fan-out of large-group messages through the queue.
//!
//! A message to a group over `inline_fanout_max` is stored with its sender's entry
//! and put in the group's outbox, in the send's transaction, together with the
//! group's one fan-out job (`fanout:<gid>`, coalesced). The job takes up to
//! [`MAX_BATCH`] queued messages of the group at once and writes them to the members
//! chunk by chunk — one `INSERT … SELECT` per chunk for all the messages of the batch
//! (merged insert). Each chunk commits with the job's cursor, so a crash repeats no
//! chunk and skips none. One job per group keeps every member's stream in send order.

use serde_json::json;

use crate::error::StoreError;
use crate::jobs::{self, Claimed, Lane, NewJob};
use crate::push::{Policy, Trigger};
use crate::sql::{Sql, SqlValue, params_list};
use crate::streams::{self, UserSet};

/// Messages merged into one batch.
pub const MAX_BATCH: usize = 32;

/// Job kind of group fan-out.
pub const KIND: &str = "fanout";

/// In the send's transaction: queues `msg_id` for fan-out to the members of `gid` on
/// `lane` (the send's plan picks it by the group's size);
/// the group's job counts in the share of the sender's `org` (the latest sender's,
/// when several coalesce).
pub fn queue<S: Sql + ?Sized>(
    sql: &S,
    gid: &str,
    msg_id: &str,
    lane: Lane,
    org: &str,
    now: i64,
) -> Result<(), StoreError> {
    sql.execute(
        "INSERT INTO group_outbox (gid, msg_id, queued_at) VALUES (?, ?, ?)",
        &[gid.into(), msg_id.into(), now.into()],
    )?;
    let id = format!("fanout:{gid}");
    jobs::enqueue(
        sql,
        &NewJob {
            id: &id,
            lane,
            kind: KIND,
            key: Some(gid),
            payload: &json!({ "gid": gid, "batch": [], "cursor": "" }).to_string(),
            run_at: now,
            org: Some(org),
        },
        now,
    )
}

/// Whether messages of `gid` are waiting for fan-out (or being written): a send to
/// the group must then queue behind them, however small the group is now.
pub fn pending<S: Sql + ?Sized>(sql: &S, gid: &str) -> Result<bool, StoreError> {
    Ok(sql
        .query_row(
            "SELECT 1 FROM group_outbox WHERE gid = ? LIMIT 1",
            &[gid.into()],
        )?
        .is_some())
}

/// Where a fan-out job stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub gid: String,
    /// The messages being written, in send order.
    pub batch: Vec<String>,
    /// Members up to this uid (in uid order) have the batch.
    pub cursor: String,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wrote a chunk (or finished a batch); maybe more to do.
    Wrote,
    /// The outbox of the group is empty; the job is complete.
    Done,
    /// The lease was lost; nothing was written.
    LeaseLost,
}

/// One step of a fan-out job, in its own write transaction: start a batch if none,
/// write the next chunk of members, advance the cursor (or finish the batch).
pub fn step<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    chunk: i64,
    push: &Policy,
    now: i64,
) -> Result<(Step, Progress), StoreError> {
    let start: Progress = serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("fan-out payload: {e}")))?;
    let result = crate::sql::write_tx(sql, |sql| {
        let mut progress = start.clone();
        if !jobs::check_lease(sql, job)? {
            return Ok((Step::LeaseLost, progress));
        }
        if progress.batch.is_empty() {
            progress.batch = sql
                .query(
                    "SELECT msg_id FROM group_outbox WHERE gid = ? ORDER BY queued_at, msg_id LIMIT ?",
                    &[progress.gid.as_str().into(), (MAX_BATCH as i64).into()],
                )?
                .into_iter()
                .filter_map(|r| r.into_iter().next().and_then(SqlValue::into_string))
                .collect();
            progress.cursor.clear();
            if progress.batch.is_empty() {
                jobs::complete(sql, job, now)?;
                return Ok((Step::Done, progress));
            }
        }
        let gid = progress.gid.as_str();
        let upto = sql
            .query_row(
                "SELECT MAX(uid) FROM (SELECT uid FROM members WHERE gid = ? AND uid > ? ORDER BY uid LIMIT ?) AS chunk",
                &[gid.into(), progress.cursor.as_str().into(), chunk.into()],
            )?
            .and_then(|r| r.into_iter().next())
            .and_then(SqlValue::into_string);
        match upto {
            None => {
                // Every member has the batch: drop it from the outbox.
                let mut params: Vec<SqlValue> = vec![gid.into()];
                params.extend(progress.batch.iter().map(SqlValue::from));
                sql.execute(
                    &format!(
                        "DELETE FROM group_outbox WHERE gid = ? AND msg_id IN ({})",
                        params_list(progress.batch.len())
                    ),
                    &params,
                )?;
                progress.batch.clear();
                progress.cursor.clear();
            }
            Some(upto) => {
                write_chunk(sql, &progress, &upto, push, now)?;
                progress.cursor = upto;
            }
        }
        let payload =
            serde_json::to_string(&progress).map_err(|e| StoreError::Invalid(e.to_string()))?;
        jobs::advance(sql, job, &payload, None)?;
        Ok((Step::Wrote, progress))
    });
    match result {
        Err(StoreError::LeaseLost) => Ok((Step::LeaseLost, start)),
        other => other,
    }
}

/// Writes every batch message to the members in `(cursor, upto]`, skipping each
/// message's sender (who has it already) and recalled messages, and queues the
/// pushes of the offline ones.
fn write_chunk<S: Sql + ?Sized>(
    sql: &S,
    progress: &Progress,
    upto: &str,
    push: &Policy,
    now: i64,
) -> Result<(), StoreError> {
    let gid = progress.gid.as_str();
    let ids = params_list(progress.batch.len());
    let batch: Vec<SqlValue> = progress.batch.iter().map(SqlValue::from).collect();
    let range = [gid.into(), progress.cursor.as_str().into(), upto.into()];
    streams::lock(
        sql,
        &[&UserSet::Query(
            "SELECT uid FROM members WHERE gid = ? AND uid > ? AND uid <= ?".into(),
            range.to_vec(),
        )],
    )?;
    let mut params: Vec<SqlValue> = range.to_vec();
    params.extend(batch.iter().cloned());
    sql.execute(
        &format!(
            "INSERT INTO entries (uid, seq, kind, conv, msg_id, sender, data, created_at)
             SELECT u.uid,
                    u.head_seq + ROW_NUMBER() OVER (PARTITION BY u.uid ORDER BY m.sent_at, m.msg_id),
                    'message', m.conv, m.msg_id, m.sender, NULL, m.sent_at
             FROM members g
             JOIN users u ON u.uid = g.uid
             CROSS JOIN messages m
             WHERE g.gid = ? AND g.uid > ? AND g.uid <= ?
               AND m.msg_id IN ({ids}) AND m.sender <> u.uid AND m.recalled = 0"
        ),
        &params,
    )?;
    // A member this chunk gave nothing may have no entries at all: keep its head.
    sql.execute(
        "UPDATE users SET head_seq = COALESCE((SELECT MAX(e.seq) FROM entries e WHERE e.uid = users.uid), head_seq)
         WHERE uid IN (SELECT uid FROM members WHERE gid = ? AND uid > ? AND uid <= ?)",
        &range,
    )?;
    let conv = format!("g:{gid}");
    // Only members this chunk gave a message: for the others (the batch's senders,
    // or every message recalled) `head_seq` is some other entry, maybe of another
    // conversation.
    let mut params: Vec<SqlValue> = vec![conv.into()];
    params.extend(batch.iter().cloned());
    params.push(now.into());
    params.extend(range.iter().cloned());
    params.extend(batch.iter().cloned());
    sql.execute(
        &format!(
            "INSERT INTO conversations (uid, conv, last_seq, unread, updated_at)
             SELECT u.uid, ?, u.head_seq,
                    (SELECT count(*) FROM messages m WHERE m.msg_id IN ({ids}) AND m.sender <> u.uid AND m.recalled = 0),
                    ?
             FROM members g JOIN users u ON u.uid = g.uid
             WHERE g.gid = ? AND g.uid > ? AND g.uid <= ?
               AND EXISTS (SELECT 1 FROM messages m
                           WHERE m.msg_id IN ({ids}) AND m.sender <> u.uid AND m.recalled = 0)
             ON CONFLICT (uid, conv) DO UPDATE SET
               last_seq = excluded.last_seq,
               unread = conversations.unread + excluded.unread,
               updated_at = excluded.updated_at"
        ),
        &params,
    )?;
    // The newest message of the batch that is still there names the notification.
    let mut params: Vec<SqlValue> = batch.clone();
    let newest = sql.query_row(
        &format!(
            "SELECT msg_id, conv, sender FROM messages WHERE msg_id IN ({ids}) AND recalled = 0
             ORDER BY sent_at DESC, msg_id DESC LIMIT 1"
        ),
        &params,
    )?;
    let Some(newest) = newest else {
        return Ok(());
    };
    let mut cols = newest
        .into_iter()
        .map(|v| v.into_string().unwrap_or_default());
    let trigger = Trigger {
        msg_id: cols.next().unwrap_or_default(),
        conv: cols.next().unwrap_or_default(),
        sender: cols.next().unwrap_or_default(),
    };
    let mut candidates: Vec<SqlValue> = range.to_vec();
    candidates.append(&mut params);
    crate::push::queue_offline(
        sql,
        &UserSet::Query(
            format!(
                "SELECT g.uid FROM members g WHERE g.gid = ? AND g.uid > ? AND g.uid <= ?
                   AND EXISTS (SELECT 1 FROM messages m
                               WHERE m.msg_id IN ({ids}) AND m.sender <> g.uid AND m.recalled = 0)"
            ),
            candidates,
        ),
        &trigger,
        push,
        now,
    )
}
