//! Read receipts: the reader's side in the request's transaction, the sender's side
//! through one coalesced job per sender that merges every pending update into one
//! insert (the lost-update fix of the design source: counts are recomputed from the
//! `receipts` table, never incremented from a stale copy).

use std::collections::BTreeMap;

use courier_core::api::WebhookEvent;
use courier_core::events::MessageRead;
use serde_json::json;

use crate::error::StoreError;
use crate::jobs::{self, Claimed, Lane, NewJob};
use crate::sql::{Sql, SqlValue, params_list, write_tx};
use crate::streams::{NewEntry, UserSet, append, head, lock};

pub const KIND: &str = "receipts";

/// A message of the reader's stream: `(msg_id, sender, conv)`.
pub type StreamMessage = (String, String, String);

/// Which of `msg_ids` are `message` entries of `reader`'s stream.
pub fn stream_messages<S: Sql + ?Sized>(
    sql: &S,
    reader: &str,
    msg_ids: &[String],
) -> Result<Vec<StreamMessage>, StoreError> {
    let mut params: Vec<SqlValue> = vec![reader.into()];
    params.extend(msg_ids.iter().map(SqlValue::from));
    Ok(sql
        .query(
            &format!(
                "SELECT msg_id, sender, conv FROM entries WHERE uid = ? AND kind = 'message' AND msg_id IN ({})",
                params_list(msg_ids.len())
            ),
            &params,
        )?
        .into_iter()
        .map(|r| {
            let mut c = r.into_iter().map(|v| v.into_string().unwrap_or_default());
            (
                c.next().unwrap_or_default(),
                c.next().unwrap_or_default(),
                c.next().unwrap_or_default(),
            )
        })
        .collect())
}

/// Marks `messages` (all from others, all in the reader's stream) read by `reader`, in
/// one transaction: receipt rows, the reader's `read` entry, the unread counters, a
/// receipt job per sender, and the `message.read` webhook deliveries of the reader's
/// org. Returns the ids newly marked (a repeat marks none).
pub fn mark_read<S: Sql + ?Sized>(
    sql: &S,
    reader: &str,
    messages: &[StreamMessage],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let reader_set = [reader.to_string()];
    write_tx(sql, |sql| {
        lock(sql, &[&UserSet::List(&reader_set)])?;
        let values = vec!["(?, ?, ?)"; messages.len()].join(", ");
        let params: Vec<SqlValue> = messages
            .iter()
            .flat_map(|(id, _, _)| [id.into(), reader.into(), now.into()])
            .collect();
        let newly: Vec<String> = sql
            .query(
                &format!(
                    "INSERT INTO receipts (msg_id, reader, read_at) VALUES {values}
                     ON CONFLICT (msg_id, reader) DO NOTHING RETURNING msg_id"
                ),
                &params,
            )?
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(SqlValue::into_string))
            .collect();
        if newly.is_empty() {
            return Ok(newly);
        }
        let data = json!({ "msg_ids": newly }).to_string();
        let org = crate::quotas::org_of(sql, reader)?.unwrap_or_default();
        append(
            sql,
            &UserSet::List(&reader_set),
            &NewEntry {
                kind: "read",
                data: Some(data),
                created_at: now,
                ..NewEntry::default()
            },
        )?;
        let mut per_conv: BTreeMap<&str, i64> = BTreeMap::new();
        let mut senders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, sender, conv) in messages.iter().filter(|(id, _, _)| newly.contains(id)) {
            *per_conv.entry(conv).or_default() += 1;
            senders.entry(sender).or_default().push(id);
        }
        for (conv, n) in per_conv {
            sql.execute(
                "UPDATE conversations SET unread = CASE WHEN unread > ? THEN unread - ? ELSE 0 END
                 WHERE uid = ? AND conv = ?",
                &[n.into(), n.into(), reader.into(), conv.into()],
            )?;
        }
        for (sender, ids) in senders {
            for id in ids {
                sql.execute(
                    "INSERT INTO receipt_dirty (sender, msg_id, generation) VALUES (?, ?, 0)
                     ON CONFLICT (sender, msg_id) DO UPDATE SET generation = receipt_dirty.generation + 1",
                    &[sender.into(), id.into()],
                )?;
            }
            let job_id = format!("receipts:{sender}");
            jobs::enqueue(
                sql,
                &NewJob {
                    id: &job_id,
                    lane: Lane::High,
                    kind: KIND,
                    key: Some(sender),
                    payload: &json!({ "sender": sender }).to_string(),
                    run_at: now,
                    org: Some(&org),
                },
                now,
            )?;
        }
        // The reader's `read` entry (now its head) names the event: unique per reader.
        let read_seq = head(sql, reader)?.unwrap_or_default();
        crate::webhooks::emit(
            sql,
            &org,
            WebhookEvent::MessageRead,
            &format!("read:{reader}:{read_seq}"),
            now,
            || MessageRead {
                reader,
                msg_ids: &newly,
                read_at: now,
            },
        )?;
        Ok(newly)
    })
}

/// Dirty messages handled by one run of a sender's receipt job.
const MAX_PER_RUN: i64 = 500;

/// Runs a sender's receipt job: one `receipt` entry per message with new reads,
/// counts recomputed from `receipts`, all appended with one insert. The recipients
/// of a message still waiting in `group_outbox` are the group's current members but
/// the sender (its fan-out has reached only some of them); of any other message, the
/// holders of its `message` entries. Returns the number of receipt entries written,
/// or `None` if the lease was lost.
pub fn run_job<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    now: i64,
) -> Result<Option<usize>, StoreError> {
    let sender: String = serde_json::from_str::<serde_json::Value>(&job.payload)
        .ok()
        .and_then(|v| v["sender"].as_str().map(str::to_string))
        .ok_or_else(|| StoreError::Invalid("receipt job payload".into()))?;
    let sender_set = [sender.clone()];
    let result = write_tx(sql, |sql| {
        if !jobs::check_lease(sql, job)? {
            return Ok(None);
        }
        // The sender's row before reading its head: its seqs are allocated below.
        lock(sql, &[&UserSet::List(&sender_set)])?;
        let dirty: Vec<(String, i64)> = sql
            .query(
                "SELECT msg_id, generation FROM receipt_dirty WHERE sender = ? ORDER BY msg_id LIMIT ?",
                &[sender.as_str().into(), MAX_PER_RUN.into()],
            )?
            .into_iter()
            .map(|r| (r[0].as_str().unwrap_or_default().to_string(), r[1].as_i64().unwrap_or(0)))
            .collect();
        if dirty.is_empty() {
            jobs::complete(sql, job, now)?;
            return Ok(Some(0));
        }
        let ids: Vec<SqlValue> = dirty.iter().map(|(id, _)| id.into()).collect();
        let counts = sql.query(
            &format!(
                "SELECT m.msg_id, m.conv, m.sender_seq,
                   (SELECT count(*) FROM receipts r WHERE r.msg_id = m.msg_id),
                   CASE WHEN EXISTS (SELECT 1 FROM group_outbox o WHERE o.msg_id = m.msg_id)
                     THEN (SELECT count(*) FROM group_outbox o JOIN members g ON g.gid = o.gid
                           WHERE o.msg_id = m.msg_id AND g.uid <> m.sender)
                     ELSE (SELECT count(*) FROM entries e WHERE e.msg_id = m.msg_id AND e.kind = 'message' AND e.uid <> m.sender)
                   END
                 FROM messages m WHERE m.msg_id IN ({}) ORDER BY m.msg_id",
                params_list(ids.len())
            ),
            &ids,
        )?;
        let base =
            head(sql, &sender)?.ok_or_else(|| StoreError::NotFound(format!("user {sender}")))?;
        let mut rows = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        for (i, r) in counts.iter().enumerate() {
            let read = r[3].as_i64().unwrap_or(0);
            let recipients = r[4].as_i64().unwrap_or(0);
            let data = json!({
                "ref_seq": r[2].as_i64().unwrap_or(0),
                "read_count": read,
                "unread_count": (recipients - read).max(0),
            })
            .to_string();
            rows.push("(?, ?, 'receipt', ?, ?, NULL, ?, ?)");
            params.extend([
                sender.as_str().into(),
                (base + 1 + i as i64).into(),
                r[1].clone(),
                r[0].clone(),
                data.into(),
                now.into(),
            ]);
        }
        if !rows.is_empty() {
            sql.execute(
                &format!(
                    "INSERT INTO entries (uid, seq, kind, conv, msg_id, sender, data, created_at) VALUES {}",
                    rows.join(", ")
                ),
                &params,
            )?;
            sql.execute(
                "UPDATE users SET head_seq = head_seq + ? WHERE uid = ?",
                &[(rows.len() as i64).into(), sender.as_str().into()],
            )?;
        }
        for (id, generation) in &dirty {
            sql.execute(
                "DELETE FROM receipt_dirty WHERE sender = ? AND msg_id = ? AND generation = ?",
                &[sender.as_str().into(), id.into(), (*generation).into()],
            )?;
        }
        let left = sql
            .query_row(
                "SELECT 1 FROM receipt_dirty WHERE sender = ?",
                &[sender.as_str().into()],
            )?
            .is_some();
        if left {
            jobs::advance(sql, job, &job.payload, Some(now))?;
        } else {
            jobs::complete(sql, job, now)?;
        }
        Ok(Some(rows.len()))
    });
    match result {
        Err(StoreError::LeaseLost) => Ok(None),
        other => other,
    }
}

/// Who has read a message and who has not, each list sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readers {
    pub sender: String,
    pub read: Vec<String>,
    pub unread: Vec<String>,
}

/// The read and unread lists of a message, `None` if there is no such message.
pub fn readers<S: Sql + ?Sized>(sql: &S, msg_id: &str) -> Result<Option<Readers>, StoreError> {
    let Some(sender) = sql
        .query_row(
            "SELECT sender FROM messages WHERE msg_id = ?",
            &[msg_id.into()],
        )?
        .and_then(|r| r.into_iter().next())
        .and_then(SqlValue::into_string)
    else {
        return Ok(None);
    };
    let column = |rows: Vec<crate::sql::Row>| -> Vec<String> {
        rows.into_iter()
            .filter_map(|r| r.into_iter().next().and_then(SqlValue::into_string))
            .collect()
    };
    let read = column(sql.query(
        "SELECT reader FROM receipts WHERE msg_id = ? ORDER BY reader",
        &[msg_id.into()],
    )?);
    let unread = column(sql.query(
        "SELECT e.uid FROM entries e
         WHERE e.msg_id = ? AND e.kind = 'message' AND e.uid <> ?
           AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.msg_id = e.msg_id AND r.reader = e.uid)
         ORDER BY e.uid",
        &[msg_id.into(), sender.as_str().into()],
    )?);
    Ok(Some(Readers {
        sender,
        read,
        unread,
    }))
}
