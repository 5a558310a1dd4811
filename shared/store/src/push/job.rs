//! The coalesced per-user push job: queued inside the writing transaction, then read,
//! claimed and settled by the delivery.

use super::records::{Delivery, record};
use super::registrations::{Registration, forget_token, registrations};
use super::{KIND, Policy, Trigger};
use crate::error::StoreError;
use crate::jobs::{self, Claimed, Lane};
use crate::sql::{Sql, SqlValue};
use crate::streams::UserSet;

/// Inside a writing transaction that just appended `trigger`'s message entry to
/// every user of `candidates` (the sender already left out): queues the coalesced
/// push job of each candidate who has a registration and no device online.
pub fn queue_offline<S: Sql + ?Sized>(
    sql: &S,
    candidates: &UserSet<'_>,
    trigger: &Trigger,
    policy: &Policy,
    now: i64,
) -> Result<(), StoreError> {
    if candidates.is_empty() {
        return Ok(());
    }
    let (set_sql, set_params) = candidates.sql();
    let payload = serde_json::to_string(trigger).map_err(|e| StoreError::Invalid(e.to_string()))?;
    // The push is owed to the sender's org (its share of the queue).
    let mut params: Vec<SqlValue> = vec![
        (Lane::Push as i64).into(),
        KIND.into(),
        payload.into(),
        (now + policy.delay_ms).into(),
        now.into(),
        trigger.sender.as_str().into(),
    ];
    params.extend(set_params);
    params.push((now - policy.presence_ttl_ms).into());
    sql.execute(
        &format!(
            "INSERT INTO jobs (id, lane, kind, key, payload, run_at, created_at, org)
             SELECT 'push:' || p.uid, ?, ?, p.uid, ?, ?, ?, (SELECT org FROM users WHERE uid = ?)
             FROM (SELECT DISTINCT uid FROM push_devices WHERE uid IN ({set_sql})) p
             WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.uid = p.uid AND d.last_seen > ?)
             ON CONFLICT (id) DO UPDATE SET
               generation = jobs.generation + 1,
               payload = excluded.payload,
               state = 'ready'"
        ),
        &params,
    )?;
    Ok(())
}

/// What a push job finds when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub trigger: Trigger,
    /// Messages from others the user has not marked read, over all conversations.
    pub unread: i64,
    /// A device was seen within the presence TTL.
    pub online: bool,
    /// Every entry is acked by some device.
    pub acked: bool,
    pub registrations: Vec<Registration>,
}

impl Pending {
    /// Whether a notification is owed at all.
    pub fn is_due(&self) -> bool {
        !self.online && !self.acked && self.unread > 0 && !self.registrations.is_empty()
    }
}

/// Reads a claimed push job's user state (outside any transaction).
pub fn pending<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    policy: &Policy,
    now: i64,
) -> Result<Pending, StoreError> {
    let trigger: Trigger = serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("push payload: {e}")))?;
    let uid = job.key.as_deref().unwrap_or_default();
    let row = sql
        .query_row(
            "SELECT u.head_seq,
               (SELECT COALESCE(MAX(acked_seq), 0) FROM devices WHERE uid = u.uid),
               (SELECT count(*) FROM devices WHERE uid = u.uid AND last_seen > ?),
               (SELECT CAST(COALESCE(SUM(unread), 0) AS BIGINT) FROM conversations WHERE uid = u.uid)
             FROM users u WHERE u.uid = ?",
            &[(now - policy.presence_ttl_ms).into(), uid.into()],
        )?
        .unwrap_or_default();
    let int = |i: usize| row.get(i).and_then(SqlValue::as_i64).unwrap_or(0);
    Ok(Pending {
        trigger,
        unread: int(3),
        online: int(2) > 0,
        acked: int(1) >= int(0),
        registrations: registrations(sql, uid)?,
    })
}

/// The id of one run of a push job, so a coalesced re-run is a new delivery and a
/// retry of the same generation is not: the job id, when this instance of the job was
/// first claimed, and its generation. The claim time matters because a finished job
/// is deleted and the user's next push is a new row that starts again at generation
/// 0: by id and generation alone it would find the earlier push's devices "served"
/// and notify none of them. `first_at` is kept across retries and lease expiries and
/// reset when a newer generation re-runs the job.
pub fn attempt_id(job: &Claimed) -> String {
    format!("{}@{}.{}", job.id, job.first_at, job.generation)
}

/// Ends a push job: deletes it, or — when messages arrived during the delivery
/// (a newer generation) — keeps it for one more push after the interval. Returns
/// `false` if the lease was lost.
pub fn finish<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    policy: &Policy,
    now: i64,
) -> Result<bool, StoreError> {
    crate::sql::write_tx(sql, |sql| finish_in(sql, job, policy, now))
}

fn finish_in<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    policy: &Policy,
    now: i64,
) -> Result<bool, StoreError> {
    if !jobs::check_lease(sql, job)? {
        return Ok(false);
    }
    jobs::complete(sql, job, now)?;
    sql.execute(
        "UPDATE jobs SET run_at = ? WHERE id = ? AND lease IS NULL AND state = 'ready'",
        &[(now + policy.interval_ms).into(), job.id.as_str().into()],
    )?;
    Ok(true)
}

/// How a push job run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every device was served (or nothing was owed): [`finish`].
    Finish,
    /// Some device must be tried again at `at`, unless the job has been failing for
    /// `hold_ms` already (then it is dead-lettered).
    Retry { at: i64, hold_ms: i64 },
}

/// One job run's results: its deliveries and how it ends.
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    pub job: &'a Claimed,
    pub deliveries: Vec<Delivery<'a>>,
    pub end: End,
}

/// What [`settle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Registrations deleted because their token is gone.
    pub tokens_removed: i64,
    /// Jobs dead-lettered.
    pub dead: Vec<String>,
    /// Jobs whose lease was lost meanwhile (nothing of theirs was recorded).
    pub lease_lost: i64,
}

/// Records a whole round of push deliveries in one write transaction: each job's
/// device results (dropping registrations whose token is gone) and its end. A job
/// whose lease was lost records nothing.
pub fn settle<S: Sql + ?Sized>(
    sql: &S,
    settlements: &[Settlement<'_>],
    policy: &Policy,
    now: i64,
) -> Result<Settled, StoreError> {
    crate::sql::write_tx(sql, |sql| {
        let mut settled = Settled::default();
        for s in settlements {
            if !jobs::check_lease(sql, s.job)? {
                settled.lease_lost += 1;
                continue;
            }
            let attempt = attempt_id(s.job);
            for d in &s.deliveries {
                if d.state == "token_gone" {
                    settled.tokens_removed += forget_token(sql, d.vendor, d.token)?;
                }
                record(sql, &attempt, d, now)?;
            }
            match s.end {
                End::Finish => {
                    finish_in(sql, s.job, policy, now)?;
                }
                End::Retry { at, hold_ms } => {
                    if jobs::fail(sql, s.job, "push delivery failed", at, hold_ms, now)? {
                        settled.dead.push(s.job.id.clone());
                    }
                }
            }
        }
        Ok(settled)
    })
}

/// Claims due push jobs (the `push-notify` component's drain).
pub fn claim<S: Sql + ?Sized>(
    sql: &S,
    limit: usize,
    lease: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Vec<Claimed>, StoreError> {
    jobs::claim(sql, Lane::Push, limit, 1, lease, lease_ms, now)
}

/// Push jobs due now (the worker asks before calling `push-notify`).
pub fn due_count<S: Sql + ?Sized>(sql: &S, now: i64) -> Result<i64, StoreError> {
    jobs::due_in_lane(sql, Lane::Push, now)
}

/// The sender's display name and the content JSON of a message still there (not
/// recalled), for notification previews.
pub fn preview<S: Sql + ?Sized>(
    sql: &S,
    msg_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(sql
        .query_row(
            "SELECT u.name, m.content FROM messages m JOIN users u ON u.uid = m.sender
             WHERE m.msg_id = ? AND m.recalled = 0",
            &[msg_id.into()],
        )?
        .and_then(|row| {
            let mut cols = row.into_iter().map(SqlValue::into_string);
            Some((cols.next()??, cols.next()??))
        }))
}
