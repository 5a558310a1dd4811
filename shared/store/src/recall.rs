//! Recall: erase a message's content at once and append a `recall` entry to every
//! stream holding it — in the request's transaction for small audiences, through a
//! chunked job (like group fan-out) for large ones.

use courier_core::api::WebhookEvent;
use courier_core::events::MessageRecalled;
use courier_core::plan::{Reach, reach};
use serde_json::json;

use crate::error::StoreError;
use crate::jobs::{self, Claimed, NewJob};
use crate::sql::{Sql, SqlValue, write_tx};
use crate::streams::{NewEntry, UserSet, append, lock};

pub const KIND: &str = "recall";

/// What the recall rules need to know about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFacts {
    pub sender: String,
    pub conv: String,
    pub client_msg_id: String,
    pub sent_at: i64,
    pub recalled: bool,
}

pub fn facts<S: Sql + ?Sized>(sql: &S, msg_id: &str) -> Result<Option<MessageFacts>, StoreError> {
    Ok(sql
        .query_row(
            "SELECT sender, conv, client_msg_id, sent_at, recalled FROM messages WHERE msg_id = ?",
            &[msg_id.into()],
        )?
        .map(facts_from_row))
}

fn facts_from_row(row: crate::sql::Row) -> MessageFacts {
    let mut c = row.into_iter();
    let mut next = || c.next().unwrap_or(SqlValue::Null);
    MessageFacts {
        sender: next().into_string().unwrap_or_default(),
        conv: next().into_string().unwrap_or_default(),
        client_msg_id: next().into_string().unwrap_or_default(),
        sent_at: next().as_i64().unwrap_or_default(),
        recalled: next().as_i64().unwrap_or(0) != 0,
    }
}

fn entry<'a>(msg_id: &'a str, facts: &'a MessageFacts, now: i64) -> NewEntry<'a> {
    NewEntry {
        kind: "recall",
        conv: Some(&facts.conv),
        msg_id: Some(msg_id),
        sender: None,
        data: Some(json!({ "msg_id": msg_id, "client_msg_id": facts.client_msg_id, "sent_at": facts.sent_at }).to_string()),
        created_at: now,
    }
}

fn holders(msg_id: &str, after: &str, upto: Option<&str>, except: &str) -> UserSet<'static> {
    let mut sql =
        "SELECT uid FROM entries WHERE msg_id = ? AND kind = 'message' AND uid > ? AND uid <> ?"
            .to_string();
    let mut params: Vec<SqlValue> = vec![msg_id.into(), after.into(), except.into()];
    if let Some(upto) = upto {
        sql.push_str(" AND uid <= ?");
        params.push(upto.into());
    }
    UserSet::Query(sql, params)
}

/// Recalls a message (the caller checked the rules): erases the content and writes
/// the `recall` entries, or queues them when more than `inline_max` streams hold it;
/// queues the `message.recalled` webhook deliveries of the sender's org.
/// A repeat does nothing. Returns whether this call recalled it.
pub fn recall<S: Sql + ?Sized>(
    sql: &S,
    msg_id: &str,
    inline_max: usize,
    now: i64,
) -> Result<bool, StoreError> {
    write_tx(sql, |sql| {
        // The message row first: concurrent recalls of one message queue here, and
        // the second sees it recalled.
        let facts = sql
            .query_row(
                &format!(
                    "SELECT sender, conv, client_msg_id, sent_at, recalled FROM messages WHERE msg_id = ?{}",
                    sql.dialect().for_update()
                ),
                &[msg_id.into()],
            )?
            .map(facts_from_row)
            .ok_or_else(|| StoreError::NotFound(format!("message {msg_id}")))?;
        if facts.recalled {
            return Ok(false);
        }
        let audience = sql
            .query_i64(
                "SELECT count(*) FROM entries WHERE msg_id = ? AND kind = 'message'",
                &[msg_id.into()],
            )?
            .unwrap_or(0);
        let reach = reach(audience, inline_max);
        let sender = UserSet::List(std::slice::from_ref(&facts.sender));
        let everyone = holders(msg_id, "", None, &facts.sender);
        match reach {
            Reach::Inline => lock(sql, &[&sender, &everyone])?,
            Reach::Queued { .. } => lock(sql, &[&sender])?,
        }
        sql.execute(
            "UPDATE messages SET content = NULL, recalled = 1 WHERE msg_id = ?",
            &[msg_id.into()],
        )?;
        sql.execute(
            "DELETE FROM group_outbox WHERE msg_id = ?",
            &[msg_id.into()],
        )?;
        let org = crate::quotas::org_of(sql, &facts.sender)?.unwrap_or_default();
        let new_entry = entry(msg_id, &facts, now);
        append(sql, &sender, &new_entry)?;
        if let Reach::Queued { lane } = reach {
            let id = format!("recall:{msg_id}");
            jobs::enqueue(
                sql,
                &NewJob {
                    id: &id,
                    lane,
                    kind: KIND,
                    key: facts.conv.strip_prefix("g:"),
                    payload: &json!({ "msg_id": msg_id, "cursor": "" }).to_string(),
                    run_at: now,
                    org: Some(&org),
                },
                now,
            )?;
        } else {
            append(sql, &everyone, &new_entry)?;
        }
        crate::webhooks::emit(
            sql,
            &org,
            WebhookEvent::MessageRecalled,
            &format!("msg:{msg_id}:recalled"),
            now,
            || MessageRecalled {
                msg_id,
                client_msg_id: &facts.client_msg_id,
                conv: &facts.conv,
                from: &facts.sender,
                sent_at: facts.sent_at,
                recalled_at: now,
            },
        )?;
        Ok(true)
    })
}

/// What one step of a recall job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every holder has its `recall` entry; the job is complete.
    Done,
    /// A chunk was written; the job's payload (cursor) is now `payload`.
    More { payload: String },
    /// The lease was lost; nothing was written.
    LeaseLost,
}

/// One step of a recall job: the next `chunk` holders get their `recall` entry.
pub fn step<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    chunk: i64,
    now: i64,
) -> Result<Step, StoreError> {
    let payload: serde_json::Value = serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("recall payload: {e}")))?;
    let msg_id = payload["msg_id"].as_str().unwrap_or_default().to_string();
    let cursor = payload["cursor"].as_str().unwrap_or_default().to_string();
    let result = write_tx(sql, |sql| {
        if !jobs::check_lease(sql, job)? {
            return Ok(Step::LeaseLost);
        }
        let Some(facts) = facts(sql, &msg_id)? else {
            jobs::complete(sql, job, now)?;
            return Ok(Step::Done);
        };
        let upto = sql
            .query_row(
                "SELECT MAX(uid) FROM (SELECT uid FROM entries WHERE msg_id = ? AND kind = 'message' AND uid > ?
                   ORDER BY uid LIMIT ?) AS chunk",
                &[msg_id.as_str().into(), cursor.as_str().into(), chunk.into()],
            )?
            .and_then(|r| r.into_iter().next())
            .and_then(SqlValue::into_string);
        match upto {
            None => {
                jobs::complete(sql, job, now)?;
                Ok(Step::Done)
            }
            Some(upto) => {
                let set = holders(&msg_id, &cursor, Some(&upto), &facts.sender);
                lock(sql, &[&set])?;
                append(sql, &set, &entry(&msg_id, &facts, now))?;
                let payload = json!({ "msg_id": msg_id, "cursor": upto }).to_string();
                jobs::advance(sql, job, &payload, None)?;
                Ok(Step::More { payload })
            }
        }
    });
    match result {
        Err(StoreError::LeaseLost) => Ok(Step::LeaseLost),
        other => other,
    }
}
