//! The durable queue: jobs written in the same transaction as the data they follow,
//! claimed with a lease (a crashed worker's jobs come back when it expires), run in
//! their own transactions that re-check the lease, retried with backoff, and
//! dead-lettered after the hold time.
//!
//! Exactly-once effect: a job's work and the job's own update (advance, complete)
//! commit in one transaction, and that update only matches the row while this
//! worker holds the lease ([`advance`] and [`complete`] fail with
//! [`StoreError::LeaseLost`] otherwise, rolling the work back); a worker that lost
//! its lease changes nothing.
//!
//! Concurrency on PostgreSQL (READ COMMITTED, several workers on several gateways):
//! claims are serialized by an advisory lock (so the per-key lease cap counts the
//! leases other claimers just took) and take the rows with one guarded `UPDATE …
//! RETURNING`, so two workers never hold one job and a claim always reads the
//! payload the previous holder committed. A job's own row is updated last in its
//! work transaction, after the user rows the work locks, so a send that enqueues
//! the same job (users first, then the job) cannot deadlock with it.

use crate::error::StoreError;
use crate::sql::{Sql, SqlValue, TxLock, params_list};

pub use courier_core::plan::Lane;

/// A job to enqueue. Enqueuing an `id` that is already queued coalesces: the job
/// keeps its place (or moves earlier) and its generation is bumped.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub id: &'a str,
    pub lane: Lane,
    pub kind: &'a str,
    /// Concurrency key (a group or a sender): at most `cap` leases at once per key.
    pub key: Option<&'a str>,
    pub payload: &'a str,
    pub run_at: i64,
    /// The org whose request queued it (its share of the queue is capped); `None`
    /// for the system's own jobs.
    pub org: Option<&'a str>,
}

pub fn enqueue<S: Sql + ?Sized>(sql: &S, job: &NewJob<'_>, now: i64) -> Result<(), StoreError> {
    sql.execute(
        "INSERT INTO jobs (id, lane, kind, key, payload, run_at, created_at, org) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET
           generation = jobs.generation + 1,
           run_at = CASE WHEN excluded.run_at < jobs.run_at THEN excluded.run_at ELSE jobs.run_at END,
           state = 'ready',
           org = COALESCE(excluded.org, jobs.org)",
        &[
            job.id.into(),
            (job.lane as i64).into(),
            job.kind.into(),
            job.key.into(),
            job.payload.into(),
            job.run_at.into(),
            now.into(),
            job.org.into(),
        ],
    )?;
    Ok(())
}

/// A job this worker holds a lease on.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: String,
    pub lane: Lane,
    pub kind: String,
    pub key: Option<String>,
    pub payload: String,
    pub attempts: i64,
    pub first_at: i64,
    pub generation: i64,
    pub lease: String,
}

/// Claims up to `limit` due jobs of `lane` with a lease until `now + lease_ms`,
/// never letting one key hold more than `key_cap` leases at once (jobs of a key at
/// its cap are not even candidates, so they cannot crowd out the rest of the lane).
/// Runs in its own write transaction.
pub fn claim<S: Sql + ?Sized>(
    sql: &S,
    lane: Lane,
    limit: usize,
    key_cap: i64,
    lease: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Vec<Claimed>, StoreError> {
    crate::sql::write_tx(sql, |sql| {
        if let Some(lock) = sql.dialect().tx_lock(TxLock::ClaimJobs) {
            sql.execute(&lock, &[])?;
        }
        let rows = sql.query(
            &format!(
                "SELECT id, key,
                   (SELECT count(*) FROM jobs busy WHERE busy.key = jobs.key AND busy.locked_until > ?)
                 FROM jobs
                 WHERE state = 'ready' AND lane = ? AND run_at <= ? AND locked_until <= ?
                   AND (key IS NULL OR (SELECT count(*) FROM jobs held
                                        WHERE held.key = jobs.key AND held.locked_until > ?) < ?)
                 ORDER BY run_at, id LIMIT ?{}",
                sql.dialect().for_update_skip_locked("jobs")
            ),
            &[
                now.into(),
                (lane as i64).into(),
                now.into(),
                now.into(),
                now.into(),
                key_cap.into(),
                ((limit * 4) as i64).into(),
            ],
        )?;
        let mut chosen: Vec<String> = Vec::new();
        let mut taken: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for row in rows {
            if chosen.len() >= limit {
                break;
            }
            let mut cols = row.into_iter();
            let mut next = || cols.next().unwrap_or(SqlValue::Null);
            let id = next().into_string().unwrap_or_default();
            let key = next().into_string();
            let busy = next().as_i64().unwrap_or(0);
            if let Some(key) = key {
                let count = taken.entry(key).or_insert(busy);
                if *count >= key_cap {
                    continue;
                }
                *count += 1;
            }
            chosen.push(id);
        }
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        // Guarded: a row that stopped being due since the SELECT is not taken, and
        // the returned payload is the row as updated (the latest committed one).
        let mut params: Vec<SqlValue> = vec![(now + lease_ms).into(), lease.into(), now.into()];
        params.extend(chosen.iter().map(SqlValue::from));
        params.push(now.into());
        let rows = sql.query(
            &format!(
                "UPDATE jobs SET locked_until = ?, lease = ?, attempts = attempts + 1,
                   first_at = COALESCE(first_at, ?)
                 WHERE id IN ({}) AND state = 'ready' AND locked_until <= ?
                 RETURNING id, kind, key, payload, attempts, first_at, generation",
                params_list(chosen.len())
            ),
            &params,
        )?;
        let mut claimed: Vec<Claimed> = rows
            .into_iter()
            .map(|row| {
                let mut cols = row.into_iter();
                let mut next = || cols.next().unwrap_or(SqlValue::Null);
                Claimed {
                    id: next().into_string().unwrap_or_default(),
                    lane,
                    kind: next().into_string().unwrap_or_default(),
                    key: next().into_string(),
                    payload: next().into_string().unwrap_or_default(),
                    attempts: next().as_i64().unwrap_or(1),
                    first_at: next().as_i64().unwrap_or(now),
                    generation: next().as_i64().unwrap_or(0),
                    lease: lease.to_string(),
                }
            })
            .collect();
        claimed.sort_by_key(|c| chosen.iter().position(|id| *id == c.id));
        Ok(claimed)
    })
}

/// Inside a job's work transaction: whether this worker still holds the lease — a
/// cheap early exit. The guard that counts is the one in [`advance`] and
/// [`complete`], which the work's transaction ends with.
pub fn check_lease<S: Sql + ?Sized>(sql: &S, job: &Claimed) -> Result<bool, StoreError> {
    Ok(sql
        .query_row(
            "SELECT 1 FROM jobs WHERE id = ? AND lease = ? AND state = 'ready'",
            &[job.id.as_str().into(), job.lease.as_str().into()],
        )?
        .is_some())
}

/// Fails with [`StoreError::LeaseLost`] unless the guarded statement matched a row.
fn guarded(rows: Vec<crate::sql::Row>) -> Result<(), StoreError> {
    if rows.is_empty() {
        Err(StoreError::LeaseLost)
    } else {
        Ok(())
    }
}

/// Inside the work transaction: records progress (a new payload) and keeps the job.
/// `release` gives the lease back so the job runs again at once (used to yield).
/// [`StoreError::LeaseLost`] if another worker holds the job now.
pub fn advance<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    payload: &str,
    release_at: Option<i64>,
) -> Result<(), StoreError> {
    guarded(match release_at {
        Some(at) => sql.query(
            "UPDATE jobs SET payload = ?, locked_until = 0, lease = NULL, run_at = ?, attempts = 0, first_at = NULL
             WHERE id = ? AND lease = ? RETURNING id",
            &[payload.into(), at.into(), job.id.as_str().into(), job.lease.as_str().into()],
        )?,
        None => sql.query(
            "UPDATE jobs SET payload = ? WHERE id = ? AND lease = ? RETURNING id",
            &[payload.into(), job.id.as_str().into(), job.lease.as_str().into()],
        )?,
    })
}

/// Inside the work transaction: the job is done. If it was enqueued again since it
/// was claimed (a newer generation), it stays queued for another run instead.
/// [`StoreError::LeaseLost`] if another worker holds the job now.
pub fn complete<S: Sql + ?Sized>(sql: &S, job: &Claimed, now: i64) -> Result<(), StoreError> {
    // One statement each, so a concurrent enqueue (which bumps the generation) is
    // either seen by the DELETE's re-check or comes after it and inserts anew.
    let deleted = sql.query(
        "DELETE FROM jobs WHERE id = ? AND lease = ? AND generation = ? RETURNING id",
        &[
            job.id.as_str().into(),
            job.lease.as_str().into(),
            job.generation.into(),
        ],
    )?;
    if !deleted.is_empty() {
        return Ok(());
    }
    guarded(sql.query(
        "UPDATE jobs SET locked_until = 0, lease = NULL, run_at = ?, attempts = 0, first_at = NULL
         WHERE id = ? AND lease = ? RETURNING id",
        &[
            now.into(),
            job.id.as_str().into(),
            job.lease.as_str().into(),
        ],
    )?)
}

/// After a failed run (outside any transaction): retry at `retry_at`, or dead-letter
/// the job if it has been failing since longer than `hold_ms`. Returns whether it
/// was dead-lettered.
pub fn fail<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    error: &str,
    retry_at: i64,
    hold_ms: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let dead = now - job.first_at >= hold_ms;
    sql.execute(
        "UPDATE jobs SET locked_until = 0, lease = NULL, run_at = ?, last_error = ?, state = ?
         WHERE id = ? AND lease = ?",
        &[
            retry_at.into(),
            error.into(),
            if dead { "dead" } else { "ready" }.into(),
            job.id.as_str().into(),
            job.lease.as_str().into(),
        ],
    )?;
    Ok(dead)
}

/// After a run that stopped before the job's outcome was known (outside any
/// transaction): gives the lease back untouched, so the job is due again at once
/// instead of when the lease would have run out. Returns whether this worker still
/// held it.
pub fn release<S: Sql + ?Sized>(sql: &S, job: &Claimed) -> Result<bool, StoreError> {
    Ok(!sql
        .query(
            "UPDATE jobs SET locked_until = 0, lease = NULL WHERE id = ? AND lease = ? RETURNING id",
            &[job.id.as_str().into(), job.lease.as_str().into()],
        )?
        .is_empty())
}

/// Jobs that are due now (ready, run_at passed, not leased).
pub fn due_count<S: Sql + ?Sized>(sql: &S, now: i64) -> Result<i64, StoreError> {
    Ok(sql
        .query_i64(
            "SELECT count(*) FROM jobs WHERE state = 'ready' AND run_at <= ? AND locked_until <= ?",
            &[now.into(), now.into()],
        )?
        .unwrap_or(0))
}

/// Jobs of one lane due now (the worker asks before calling the component that
/// delivers a lane it does not run itself).
pub fn due_in_lane<S: Sql + ?Sized>(sql: &S, lane: Lane, now: i64) -> Result<i64, StoreError> {
    Ok(sql
        .query_i64(
            "SELECT count(*) FROM jobs WHERE state = 'ready' AND lane = ? AND run_at <= ? AND locked_until <= ?",
            &[(lane as i64).into(), now.into(), now.into()],
        )?
        .unwrap_or(0))
}

/// Dead-lettered jobs (kept for inspection).
pub fn dead_count<S: Sql + ?Sized>(sql: &S) -> Result<i64, StoreError> {
    Ok(sql
        .query_i64("SELECT count(*) FROM jobs WHERE state = 'dead'", &[])?
        .unwrap_or(0))
}
