//! Quotas of a send, checked inside its transaction: the per-user and per-org token
//! buckets (`rate_buckets`, keyed `user:<uid>` and `org:<org>`) and the cap on the
//! share of the worker's queue one org may hold (the design source's "a user using
//! more than 20 % of workers is dropped", for our queue). A refused send changes
//! nothing: the transaction rolls back, buckets included.

use crate::error::StoreError;
use crate::jobs::Lane;
use crate::sql::{Sql, SqlValue, params_list};

/// A token bucket: `(tokens, updated_ms)`.
pub type Bucket = (f64, i64);

/// The rate limiter's verdict on a bucket: the new bucket, or seconds to wait.
pub type RateDecision<'a> = &'a dyn Fn(Option<Bucket>) -> Result<Bucket, u64>;

/// Takes one token from each bucket `(key, decide)` as its `decide` says, or
/// refuses with the first refusal's `RateLimited`. Two statements for buckets that
/// exist (one `SELECT … FOR UPDATE` of them all, one upsert of their new values);
/// a key seen for the first time is created on its own (see [`take_new`]).
///
/// Read-modify-write of rows other senders share (an org's bucket): on PostgreSQL
/// the rows are locked for the transaction, in key order (so two sends locking the
/// same two rows cannot deadlock), and concurrent sends of one org cannot both
/// spend the same token (SQLite serializes writers anyway).
pub fn take_tokens<S: Sql + ?Sized>(
    sql: &S,
    buckets: &[(&str, RateDecision<'_>)],
) -> Result<(), StoreError> {
    if buckets.is_empty() {
        return Ok(());
    }
    let keys: Vec<SqlValue> = buckets.iter().map(|(key, _)| (*key).into()).collect();
    let stored = sql.query(
        &format!(
            "SELECT key, tokens, updated_ms FROM rate_buckets WHERE key IN ({}) ORDER BY key{}",
            params_list(keys.len()),
            sql.dialect().for_update()
        ),
        &keys,
    )?;
    let stored = |key: &str| {
        stored
            .iter()
            .find(|row| row[0].as_str() == Some(key))
            .map(|row| (row[1].as_f64().unwrap_or(0.0), row[2].as_i64().unwrap_or(0)))
    };
    let mut next = Vec::with_capacity(buckets.len());
    for (key, decide) in buckets {
        match stored(key) {
            Some(bucket) => next.push((*key, decide(Some(bucket)).map_err(limited)?)),
            None => take_new(sql, key, *decide)?,
        }
    }
    if next.is_empty() {
        return Ok(());
    }
    let mut params = Vec::with_capacity(next.len() * 3);
    for (key, (tokens, updated)) in &next {
        params.extend([(*key).into(), SqlValue::Real(*tokens), (*updated).into()]);
    }
    let rows = vec!["(?, ?, ?)"; next.len()].join(", ");
    sql.execute(
        &format!(
            "INSERT INTO rate_buckets (key, tokens, updated_ms) VALUES {rows}
             ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms"
        ),
        &params,
    )?;
    Ok(())
}

/// Takes one token from the bucket `key`, which did not exist when looked for: it is
/// created as `decide` says for a new bucket, unless another transaction created it
/// meanwhile, whose bucket is then locked and spent from.
fn take_new<S: Sql + ?Sized>(
    sql: &S,
    key: &str,
    decide: RateDecision<'_>,
) -> Result<(), StoreError> {
    let (tokens, updated) = decide(None).map_err(limited)?;
    let created = sql.query(
        "INSERT INTO rate_buckets (key, tokens, updated_ms) VALUES (?, ?, ?)
         ON CONFLICT (key) DO NOTHING RETURNING key",
        &[key.into(), SqlValue::Real(tokens), updated.into()],
    )?;
    if !created.is_empty() {
        return Ok(());
    }
    let bucket = sql
        .query_row(
            &format!(
                "SELECT tokens, updated_ms FROM rate_buckets WHERE key = ?{}",
                sql.dialect().for_update()
            ),
            &[key.into()],
        )?
        .map(|r| (r[0].as_f64().unwrap_or(0.0), r[1].as_i64().unwrap_or(0)));
    let (tokens, updated) = decide(bucket).map_err(limited)?;
    sql.execute(
        "UPDATE rate_buckets SET tokens = ?, updated_ms = ? WHERE key = ?",
        &[SqlValue::Real(tokens), updated.into(), key.into()],
    )?;
    Ok(())
}

fn limited(retry_after_secs: u64) -> StoreError {
    StoreError::RateLimited { retry_after_secs }
}

/// The org of a user, `None` for no such user.
pub fn org_of<S: Sql + ?Sized>(sql: &S, uid: &str) -> Result<Option<String>, StoreError> {
    Ok(sql
        .query_row("SELECT org FROM users WHERE uid = ?", &[uid.into()])?
        .and_then(|r| r.into_iter().next())
        .and_then(SqlValue::into_string))
}

/// The cap on one org's share of the queued work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueShare {
    /// An org holding more than this percentage of the queued jobs is refused…
    pub percent: i64,
    /// …once it holds more than this many (a quiet queue lets anyone through).
    pub floor: i64,
    /// The `Retry-After` of a refusal.
    pub retry_after_secs: u64,
}

/// Refuses (`RateLimited`) when `org` holds more than its share of the worker's
/// queue: ready jobs of the worker's lanes (fan-out, receipts, recall, queued sends).
/// Pushes and webhook deliveries are not counted: they are paced by their own
/// drains, and an org's failing webhook endpoint must not stop its messages.
///
/// Cheap for the usual org: one index range of at most `floor + 1` rows. Only an org
/// over the floor counts further, and the total only as far as the comparison needs.
pub fn check_queue_share<S: Sql + ?Sized>(
    sql: &S,
    org: &str,
    share: &QueueShare,
) -> Result<(), StoreError> {
    let percent = share.percent.clamp(1, 100);
    let count = |limit: i64, of_org: bool| -> Result<i64, StoreError> {
        let (filter, mut params): (&str, Vec<SqlValue>) = if of_org {
            ("org = ? AND ", vec![org.into()])
        } else {
            ("", Vec::new())
        };
        params.extend([(Lane::Low as i64).into(), limit.into()]);
        Ok(sql
            .query_i64(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM jobs
                     WHERE {filter}state = 'ready' AND lane <= ? LIMIT ?) AS queued"
                ),
                &params,
            )?
            .unwrap_or(0))
    };
    let floor = share.floor.max(0);
    if count(floor + 1, true)? <= floor {
        return Ok(());
    }
    let mine = count(i64::MAX, true)?;
    // Over its share when mine * 100 > percent * total, i.e. total < mine * 100 / percent.
    let enough = mine.saturating_mul(100) / percent + 1;
    let total = count(enough, false)?;
    if mine.saturating_mul(100) > percent.saturating_mul(total) {
        return Err(StoreError::RateLimited {
            retry_after_secs: share.retry_after_secs.max(1),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{NewJob, enqueue};
    use crate::native::NativeSqlite;

    fn queue(db: &NativeSqlite, org: &str, n: usize, lane: Lane) {
        for i in 0..n {
            let id = format!("{org}-{}-{i}", lane.name());
            let job = NewJob {
                id: &id,
                lane,
                kind: "fanout",
                key: None,
                payload: "{}",
                run_at: 0,
                org: Some(org),
            };
            enqueue(db, &job, 0).unwrap();
        }
    }

    const SHARE: QueueShare = QueueShare {
        percent: 20,
        floor: 10,
        retry_after_secs: 5,
    };

    #[test]
    fn an_org_over_its_share_and_the_floor_is_refused_and_others_are_not() {
        let db = NativeSqlite::memory().unwrap();
        crate::schema::migrate(&db).unwrap();
        queue(&db, "big", 30, Lane::Medium);
        queue(&db, "small", 3, Lane::High);
        queue(&db, "other", 70, Lane::Low);
        // big: 30 of 103 = 29 % > 20 %.
        assert_eq!(
            check_queue_share(&db, "big", &SHARE),
            Err(StoreError::RateLimited {
                retry_after_secs: 5
            })
        );
        // small: under the floor; other: 70 of 103, over its share too.
        assert_eq!(check_queue_share(&db, "small", &SHARE), Ok(()));
        assert!(check_queue_share(&db, "other", &SHARE).is_err());
        assert_eq!(check_queue_share(&db, "nobody", &SHARE), Ok(()));
    }

    #[test]
    fn an_org_within_its_share_passes_even_above_the_floor() {
        let db = NativeSqlite::memory().unwrap();
        crate::schema::migrate(&db).unwrap();
        queue(&db, "a", 20, Lane::High);
        for org in ["b", "c", "d", "e", "f"] {
            queue(&db, org, 20, Lane::High);
        }
        // a: 20 of 120 = 16.7 %.
        assert_eq!(check_queue_share(&db, "a", &SHARE), Ok(()));
    }

    #[test]
    fn push_and_webhook_jobs_do_not_count() {
        let db = NativeSqlite::memory().unwrap();
        crate::schema::migrate(&db).unwrap();
        queue(&db, "a", 50, Lane::Push);
        queue(&db, "a", 50, Lane::Webhook);
        assert_eq!(check_queue_share(&db, "a", &SHARE), Ok(()));
    }

    #[test]
    fn dead_jobs_do_not_count() {
        let db = NativeSqlite::memory().unwrap();
        crate::schema::migrate(&db).unwrap();
        queue(&db, "a", 50, Lane::High);
        db.execute("UPDATE jobs SET state = 'dead'", &[]).unwrap();
        assert_eq!(check_queue_share(&db, "a", &SHARE), Ok(()));
    }
}
