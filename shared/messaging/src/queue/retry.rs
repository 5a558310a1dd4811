//! What happens to a job whose run failed: it waits (exponential backoff with jitter,
//! never less than what the far end asked for with `Retry-After`) and runs again, until
//! it has been failing for the lane's hold time; then it is dead-lettered, kept with
//! its last error for inspection. A job that no run can ever do is dead-lettered at
//! once.

use courier_core::Error;
use courier_store::jobs::{self, Claimed};

use crate::errors::from_store;

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at 5 minutes, then a
/// random 0–50 % added (`jitter` in 0..=1) so retries of many jobs spread out.
pub fn backoff_ms(attempts: i64, jitter: f64) -> i64 {
    let base = 1000i64
        .saturating_mul(1i64 << attempts.clamp(1, 20).saturating_sub(1))
        .min(300_000);
    base + (base as f64 * 0.5 * jitter.clamp(0.0, 1.0)) as i64
}

/// How long a job that failed its `attempts`-th run waits: the backoff with a random
/// jitter, or longer if the far end asked for `asked_ms` (a `Retry-After`).
pub fn retry_wait(attempts: i64, asked_ms: Option<u64>, random: &mut dyn FnMut() -> u64) -> i64 {
    let jitter = (random() % 1000) as f64 / 1000.0;
    let asked = asked_ms.map_or(0, |ms| ms.min(i64::MAX as u64) as i64);
    backoff_ms(attempts, jitter).max(asked)
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// It runs again later.
    Retried,
    /// It has failed for longer than the hold: kept dead for inspection.
    DeadLettered,
}

/// Records a failed run of `job` (outside any transaction): it runs again `wait_ms`
/// from `now`, or is dead-lettered if it has been failing for `hold_ms`. Logged,
/// naming the job as `what` ("job", "webhook delivery").
pub fn fail<S: courier_store::Sql + ?Sized>(
    sql: &S,
    what: &str,
    job: &Claimed,
    why: &str,
    wait_ms: i64,
    hold_ms: i64,
    now: i64,
) -> Result<Failed, Error> {
    let dead =
        jobs::fail(sql, job, why, now.saturating_add(wait_ms), hold_ms, now).map_err(from_store)?;
    if dead {
        eprintln!(
            "courier: {what} {} dead-lettered after {} attempts: {why}",
            job.id, job.attempts
        );
        Ok(Failed::DeadLettered)
    } else {
        eprintln!(
            "courier: {what} {} failed (attempt {}), retrying: {why}",
            job.id, job.attempts
        );
        Ok(Failed::Retried)
    }
}

/// Dead-letters `job` at once: no run can ever do it (a payload no run can read, a
/// URL that is no longer allowed). Logged, naming the job as `what`.
pub fn dead_letter<S: courier_store::Sql + ?Sized>(
    sql: &S,
    what: &str,
    job: &Claimed,
    why: &str,
    now: i64,
) -> Result<(), Error> {
    eprintln!(
        "courier: {what} {} cannot run, dead-lettered: {why}",
        job.id
    );
    jobs::fail(sql, job, why, now, 0, now).map_err(from_store)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_to_five_minutes_and_honours_what_the_far_end_asked() {
        assert_eq!(backoff_ms(1, 0.0), 1_000);
        assert_eq!(backoff_ms(2, 0.0), 2_000);
        assert_eq!(backoff_ms(4, 1.0), 12_000);
        assert_eq!(backoff_ms(30, 0.0), 300_000);
        assert_eq!(backoff_ms(0, 2.0), 1_500, "attempts and jitter are clamped");
        assert_eq!(retry_wait(1, None, &mut || 500), 1_250);
        assert_eq!(retry_wait(1, Some(60_000), &mut || 0), 60_000);
        assert_eq!(retry_wait(3, Some(10), &mut || 0), 4_000);
        assert_eq!(retry_wait(1, Some(u64::MAX), &mut || 0), i64::MAX);
    }
}
