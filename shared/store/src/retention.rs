//! Retention: history older than the retention time is purged — stream entries,
//! message bodies with their read receipts, conversation rows left pointing at
//! nothing, push delivery records — and dead-lettered jobs after their own hold.
//!
//! One perpetual job (`retention`, low lane) runs a pass, then waits
//! [`Policy::every_ms`] for the next; the worker makes sure it exists. A pass goes
//! through four phases, each in bounded steps: one write transaction deletes at most
//! [`Policy::batch`] rows and commits with the job's cursor, so the write lock is
//! never held long and a crash repeats no step and skips none.
//!
//! Streams are trimmed from the front only: a user's oldest entries go while every
//! one of them is older than the cutoff, and `users.trimmed_seq` records how far —
//! so a stream stays dense from `trimmed_seq + 1` to its head, and a sync from
//! purged history can say so. A body goes once no stream holds its `message` entry.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::jobs::{self, Claimed, Lane};
use crate::sql::{Sql, SqlValue, params_list, write_tx};

/// Job kind (and id) of the retention job.
pub const KIND: &str = "retention";

/// Users whose streams one step looks at, at most: each costs a statement or four
/// inside the step's transaction.
const USERS_PER_STEP: i64 = 100;

/// How long things are kept and how the purge runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Entries, bodies, receipts and push deliveries older than this are purged.
    pub keep_ms: i64,
    /// Dead-lettered jobs are purged this long after their last attempt.
    pub dead_keep_ms: i64,
    /// A pass starts at most this often.
    pub every_ms: i64,
    /// Rows deleted per transaction, at most (a step also looks at no more than
    /// this many users, and never more than 100).
    pub batch: i64,
}

impl Default for Policy {
    fn default() -> Self {
        const DAY_MS: i64 = 86_400_000;
        Self {
            keep_ms: 180 * DAY_MS,
            dead_keep_ms: 7 * DAY_MS,
            every_ms: 600_000,
            batch: 1000,
        }
    }
}

/// The phases of a pass, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Entries,
    Messages,
    Deliveries,
    DeadJobs,
}

/// Rows purged so far in this pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub entries: i64,
    pub conversations: i64,
    pub messages: i64,
    pub receipts: i64,
    pub deliveries: i64,
    pub dead_jobs: i64,
}

/// Where a pass stands (the job's payload).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: Phase,
    /// Entries: users up to this uid are done. Messages: bodies up to
    /// (`cursor_at`, `cursor`) in (sent_at, msg_id) order were looked at.
    pub cursor: String,
    pub cursor_at: i64,
    pub purged: Counts,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Purged a batch (or moved to the next phase); more to do in this pass.
    More,
    /// The pass is complete; the job waits for the next one.
    Done,
    /// The lease was lost; nothing was written.
    LeaseLost,
}

/// Makes sure the retention job exists (the worker calls this on every drain: one
/// read while it does). A dead-lettered retention job is revived.
pub fn schedule<S: Sql + ?Sized>(sql: &S, now: i64) -> Result<(), StoreError> {
    let state = sql
        .query_row("SELECT state FROM jobs WHERE id = ?", &[KIND.into()])?
        .and_then(|r| r.into_iter().next())
        .and_then(SqlValue::into_string);
    if state.as_deref() == Some("ready") {
        return Ok(());
    }
    let payload = serde_json::to_string(&Progress::default())
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    write_tx(sql, |sql| {
        sql.execute(
            "DELETE FROM jobs WHERE id = ? AND state = 'dead'",
            &[KIND.into()],
        )?;
        sql.execute(
            "INSERT INTO jobs (id, lane, kind, key, payload, run_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
            &[
                KIND.into(),
                (Lane::Low as i64).into(),
                KIND.into(),
                KIND.into(),
                payload.as_str().into(),
                now.into(),
                now.into(),
            ],
        )?;
        Ok(())
    })
}

/// One step of a pass, in its own write transaction.
pub fn step<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    policy: &Policy,
    now: i64,
) -> Result<(Step, Progress), StoreError> {
    let mut progress: Progress = serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("retention payload: {e}")))?;
    let batch = policy.batch.max(1);
    write_tx(sql, |sql| {
        if !jobs::check_lease(sql, job)? {
            return Ok((Step::LeaseLost, progress.clone()));
        }
        let cutoff = now - policy.keep_ms;
        let phase_done = match progress.phase {
            Phase::Entries => entries(sql, &mut progress, cutoff, batch)?,
            Phase::Messages => messages(sql, &mut progress, cutoff, batch)?,
            Phase::Deliveries => {
                let n = delete_returning(
                    sql,
                    "DELETE FROM push_deliveries WHERE (attempt, device) IN
                       (SELECT attempt, device FROM push_deliveries WHERE updated_at < ?
                        ORDER BY updated_at LIMIT ?)
                     RETURNING attempt",
                    &[cutoff.into(), batch.into()],
                )?;
                progress.purged.deliveries += n;
                n < batch
            }
            Phase::DeadJobs => {
                let n = delete_returning(
                    sql,
                    "DELETE FROM jobs WHERE id IN
                       (SELECT id FROM jobs WHERE state = 'dead' AND run_at < ? LIMIT ?)
                     RETURNING id",
                    &[(now - policy.dead_keep_ms).into(), batch.into()],
                )?;
                progress.purged.dead_jobs += n;
                n < batch
            }
        };
        let next = if phase_done {
            progress.cursor.clear();
            progress.cursor_at = 0;
            match progress.phase {
                Phase::Entries => Some(Phase::Messages),
                Phase::Messages => Some(Phase::Deliveries),
                Phase::Deliveries => Some(Phase::DeadJobs),
                Phase::DeadJobs => None,
            }
        } else {
            Some(progress.phase)
        };
        match next {
            Some(phase) => {
                progress.phase = phase;
                let payload = serde_json::to_string(&progress)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                jobs::advance(sql, job, &payload, None)?;
                Ok((Step::More, progress.clone()))
            }
            None => {
                // The pass is over: the job stays, reset, for the next one.
                let fresh = serde_json::to_string(&Progress::default())
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                jobs::advance(sql, job, &fresh, Some(now + policy.every_ms))?;
                Ok((Step::Done, progress.clone()))
            }
        }
    })
}

/// Runs a `DELETE … RETURNING` and counts the rows it removed.
fn delete_returning<S: Sql + ?Sized>(
    sql: &S,
    statement: &str,
    params: &[SqlValue],
) -> Result<i64, StoreError> {
    Ok(sql.query(statement, params)?.len() as i64)
}

/// Trims the streams of the next users (uid order) from the front, at most `batch`
/// entries. Returns whether every user has been looked at.
fn entries<S: Sql + ?Sized>(
    sql: &S,
    progress: &mut Progress,
    cutoff: i64,
    batch: i64,
) -> Result<bool, StoreError> {
    let users_per_step = batch.min(USERS_PER_STEP);
    let users = sql.query(
        "SELECT uid, trimmed_seq FROM users WHERE uid > ? ORDER BY uid LIMIT ?",
        &[progress.cursor.as_str().into(), users_per_step.into()],
    )?;
    let looked_at = users.len() as i64;
    let mut budget = batch;
    for row in users {
        let mut cols = row.into_iter();
        let uid = cols
            .next()
            .and_then(SqlValue::into_string)
            .unwrap_or_default();
        let trimmed = cols.next().and_then(|v| v.as_i64()).unwrap_or(0);
        let oldest = sql.query(
            "SELECT seq, created_at FROM entries WHERE uid = ? AND seq > ? ORDER BY seq LIMIT ?",
            &[uid.as_str().into(), trimmed.into(), budget.into()],
        )?;
        let fetched = oldest.len() as i64;
        let expired: Vec<i64> = oldest
            .iter()
            .take_while(|r| r.get(1).and_then(SqlValue::as_i64).unwrap_or(i64::MAX) < cutoff)
            .filter_map(|r| r.first().and_then(SqlValue::as_i64))
            .collect();
        if let Some(&cut) = expired.last() {
            sql.execute(
                "DELETE FROM entries WHERE uid = ? AND seq > ? AND seq <= ?",
                &[uid.as_str().into(), trimmed.into(), cut.into()],
            )?;
            sql.execute(
                "UPDATE users SET trimmed_seq = ? WHERE uid = ?",
                &[cut.into(), uid.as_str().into()],
            )?;
            progress.purged.conversations += delete_returning(
                sql,
                "DELETE FROM conversations WHERE uid = ? AND last_seq <= ? RETURNING conv",
                &[uid.as_str().into(), cut.into()],
            )?;
            progress.purged.entries += expired.len() as i64;
            budget -= expired.len() as i64;
        }
        if expired.len() as i64 == fetched && fetched > 0 && budget == 0 {
            // The batch ran out inside this user's expired history: come back to it.
            return Ok(false);
        }
        progress.cursor = uid;
        if budget == 0 {
            return Ok(false);
        }
    }
    Ok(looked_at < users_per_step)
}

/// Purges the next bodies older than the cutoff that no stream holds any more, with
/// their receipts. Returns whether every old body has been looked at.
fn messages<S: Sql + ?Sized>(
    sql: &S,
    progress: &mut Progress,
    cutoff: i64,
    batch: i64,
) -> Result<bool, StoreError> {
    let rows = sql.query(
        "SELECT m.msg_id, m.sent_at,
           CASE WHEN EXISTS (SELECT 1 FROM entries e WHERE e.msg_id = m.msg_id AND e.kind = 'message')
                THEN 1 ELSE 0 END
         FROM messages m
         WHERE m.sent_at < ? AND (m.sent_at > ? OR (m.sent_at = ? AND m.msg_id > ?))
         ORDER BY m.sent_at, m.msg_id LIMIT ?",
        &[
            cutoff.into(),
            progress.cursor_at.into(),
            progress.cursor_at.into(),
            progress.cursor.as_str().into(),
            batch.into(),
        ],
    )?;
    let Some(last) = rows.last() else {
        return Ok(true);
    };
    let last_id = last[0].as_str().unwrap_or_default().to_string();
    let last_at = last[1].as_i64().unwrap_or(0);
    let scanned = rows.len() as i64;
    let gone: Vec<SqlValue> = rows
        .into_iter()
        .filter(|r| r[2].as_i64() == Some(0))
        .map(|mut r| r.swap_remove(0))
        .collect();
    if !gone.is_empty() {
        let ids = params_list(gone.len());
        let mut params = gone.clone();
        params.push(batch.into());
        let receipts = delete_returning(
            sql,
            &format!(
                "DELETE FROM receipts WHERE (msg_id, reader) IN
                   (SELECT msg_id, reader FROM receipts WHERE msg_id IN ({ids}) LIMIT ?)
                 RETURNING msg_id"
            ),
            &params,
        )?;
        progress.purged.receipts += receipts;
        if receipts == batch {
            // Widely read messages: their receipts take more than one batch; the
            // bodies go (and the cursor moves) once the receipts are gone.
            return Ok(false);
        }
        progress.purged.messages += delete_returning(
            sql,
            &format!("DELETE FROM messages WHERE msg_id IN ({ids}) RETURNING msg_id"),
            &gone,
        )?;
    }
    progress.cursor = last_id;
    progress.cursor_at = last_at;
    Ok(scanned < batch)
}
