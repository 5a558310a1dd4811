//! The queue worker: `POST /internal/drain` runs due jobs for a bounded time.
//!
//! Each round gives every lane its own share of claims (high first), so a backlog
//! of low-lane fan-out never delays high-lane work by more than one low-lane slice;
//! a long job (a 10,000-member fan-out) runs in slices and yields between them. A
//! failed job is retried with exponential backoff and jitter and dead-lettered after
//! the hold time. With a retention policy, every drain makes sure the retention job
//! exists; its passes run in the low lane, in bounded steps like a fan-out.

use courier_core::Error;
use courier_store::jobs::{self, Claimed, Lane};
use courier_store::{Sql, StoreError, fanout, messages, push, recall, receipts, retention};

use crate::errors::from_store;
use crate::queue::{self, Drain, Failed, Ran, Step, run_stepped};

/// What the retention job purges and how often (see [`DrainConfig::retention`]).
pub use courier_store::retention::Policy as RetentionPolicy;

/// A lane whose jobs another component delivers (`push-notify`, `webhooks`), which the
/// worker calls when the lane has due work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryLane {
    Push,
    Webhooks,
}

impl DeliveryLane {
    pub const ALL: [DeliveryLane; 2] = [DeliveryLane::Push, DeliveryLane::Webhooks];

    /// Its name in the drain's report.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryLane::Push => "push",
            DeliveryLane::Webhooks => "webhooks",
        }
    }

    /// Whether the lane may have due work. Not knowing (the count failed) counts as
    /// work: its drain finds out for itself.
    pub fn has_due<S: Sql + ?Sized>(self, sql: &S, now: i64) -> bool {
        let due = match self {
            DeliveryLane::Push => push::due_count(sql, now),
            DeliveryLane::Webhooks => courier_store::webhooks::due_count(sql, now),
        };
        due.map_or(true, |n| n > 0)
    }
}

/// Queue jobs due now (what a drain's report calls `remaining`).
pub fn due_jobs<S: Sql + ?Sized>(sql: &S, now: i64) -> Result<i64, Error> {
    jobs::due_count(sql, now).map_err(from_store)
}

/// How a drain runs; defaults in [`DrainConfig::default`].
#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// Stop claiming new work after this long.
    pub budget_ms: i64,
    /// A claimed job not finished within this comes back to the queue.
    pub lease_ms: i64,
    /// Leases one key (group, sender) may hold at once.
    pub key_cap: i64,
    /// Members written per fan-out transaction.
    pub chunk: i64,
    /// One job's slice of a round before it yields.
    pub slice_ms: i64,
    /// Failing jobs are dead-lettered this long after their first attempt.
    pub hold_ms: i64,
    /// Jobs claimed per round, by lane (high, medium, low).
    pub shares: [usize; 3],
    /// `inline_fanout_max`, for the sends the worker runs from the queue.
    pub inline_fanout_max: usize,
    /// When the messages the worker writes push to offline members.
    pub push: push::Policy,
    /// What to purge and how often; `None`: no retention job is scheduled (a
    /// retention job already queued runs with the default policy).
    pub retention: Option<retention::Policy>,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            budget_ms: 5_000,
            lease_ms: 30_000,
            key_cap: 5,
            chunk: 500,
            slice_ms: 200,
            hold_ms: 30 * 60 * 1000,
            shares: [32, 8, 2],
            inline_fanout_max: courier_core::Config::default().inline_fanout_max,
            push: push::Policy::default(),
            retention: None,
        }
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    pub done: u64,
    pub remaining: u64,
    /// Jobs dead-lettered by this drain.
    pub dead_lettered: u64,
    /// Jobs dead-lettered in all (kept for inspection).
    pub dead: u64,
    /// Jobs that failed and were rescheduled.
    pub retried: u64,
    /// Finished jobs, in completion order: `(lane, kind)` — for isolation tests;
    /// never sent over HTTP.
    #[serde(skip)]
    pub completed: Vec<(String, String)>,
}

/// Runs due jobs until none are due or the budget is spent.
pub fn drain<S: Sql + ?Sized>(
    sql: &S,
    config: &DrainConfig,
    clock: &dyn Fn() -> i64,
    random: &mut dyn FnMut() -> u64,
) -> Result<DrainReport, Error> {
    let drain = Drain::start('w', config.budget_ms, clock, random);
    let mut report = DrainReport::default();
    if config.retention.is_some() {
        retention::schedule(sql, drain.started()).map_err(from_store)?;
    }
    drain.rounds(|| {
        let mut ran = 0;
        for lane in Lane::ALL {
            let now = clock();
            let share = config.shares[lane as usize];
            let claimed = jobs::claim(
                sql,
                lane,
                share,
                config.key_cap,
                drain.lease(),
                config.lease_ms,
                now,
            )
            .map_err(from_store)?;
            for job in claimed {
                ran += 1;
                match run(sql, config, &job, clock) {
                    Ok(Ran::Finished) => {
                        report.done += 1;
                        report
                            .completed
                            .push((lane.name().into(), job.kind.clone()));
                    }
                    Ok(Ran::Yielded) | Ok(Ran::LeaseLost) => {}
                    Err(e) => {
                        let wait = queue::retry_wait(job.attempts, None, random);
                        let why = e.to_string();
                        match queue::fail(sql, "job", &job, &why, wait, config.hold_ms, clock())? {
                            Failed::DeadLettered => report.dead_lettered += 1,
                            Failed::Retried => report.retried += 1,
                        }
                    }
                }
            }
        }
        Ok(ran)
    })?;
    let now = clock();
    report.remaining = jobs::due_count(sql, now).map_err(from_store)? as u64;
    report.dead = jobs::dead_count(sql).map_err(from_store)? as u64;
    Ok(report)
}

/// A stepped job's progress as its payload.
fn progress<T: serde::Serialize>(progress: &T) -> Result<String, StoreError> {
    serde_json::to_string(progress).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn run<S: Sql + ?Sized>(
    sql: &S,
    config: &DrainConfig,
    job: &Claimed,
    clock: &dyn Fn() -> i64,
) -> Result<Ran, StoreError> {
    let slice_end = clock() + config.slice_ms;
    match job.kind.as_str() {
        fanout::KIND => run_stepped(sql, job, slice_end, clock, |job| {
            let (step, done) = fanout::step(sql, job, config.chunk, &config.push, clock())?;
            Ok(match step {
                fanout::Step::Done => Step::Done,
                fanout::Step::LeaseLost => Step::LeaseLost,
                fanout::Step::Wrote => Step::More {
                    payload: progress(&done)?,
                },
            })
        }),
        recall::KIND => run_stepped(sql, job, slice_end, clock, |job| {
            Ok(match recall::step(sql, job, config.chunk, clock())? {
                recall::Step::LeaseLost => Step::LeaseLost,
                recall::Step::Done => Step::Done,
                recall::Step::More { payload } => Step::More { payload },
            })
        }),
        retention::KIND => {
            let policy = config.retention.unwrap_or_default();
            run_stepped(sql, job, slice_end, clock, |job| {
                let (step, done) = retention::step(sql, job, &policy, clock())?;
                Ok(match step {
                    retention::Step::LeaseLost => Step::LeaseLost,
                    retention::Step::Done => {
                        log_purged(&done.purged);
                        Step::Done
                    }
                    retention::Step::More => Step::More {
                        payload: progress(&done)?,
                    },
                })
            })
        }
        messages::RETRY_KIND => {
            match messages::run_retry(sql, job, config.inline_fanout_max, &config.push, clock())? {
                true => Ok(Ran::Finished),
                false => Ok(Ran::LeaseLost),
            }
        }
        receipts::KIND => match receipts::run_job(sql, job, clock())? {
            None => Ok(Ran::LeaseLost),
            Some(_) => Ok(Ran::Finished),
        },
        other => Err(StoreError::Invalid(format!("unknown job kind {other}"))),
    }
}

/// Logs what a finished retention pass purged, if anything.
fn log_purged(n: &retention::Counts) {
    if *n != retention::Counts::default() {
        eprintln!(
            "courier: retention purged {} entries, {} conversations, {} messages, \
             {} receipts, {} push deliveries, {} dead jobs",
            n.entries, n.conversations, n.messages, n.receipts, n.deliveries, n.dead_jobs
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_store::native::NativeSqlite;

    #[test]
    fn a_delivery_lane_has_due_work_when_its_count_says_so_or_fails() {
        let db = NativeSqlite::memory().unwrap();
        for lane in DeliveryLane::ALL {
            assert!(lane.has_due(&db, 0), "{}: no store yet", lane.name());
        }
        courier_store::schema::migrate(&db).unwrap();
        for lane in DeliveryLane::ALL {
            assert!(!lane.has_due(&db, 0), "{}: nothing queued", lane.name());
        }
        assert_eq!(due_jobs(&db, 0), Ok(0));
    }
}
