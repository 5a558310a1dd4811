//! A job that runs in steps (a fan-out, a large group's recall, a retention pass):
//! each step is one transaction that records the job's progress, and the job gives
//! its lease back at the end of its slice so the rest of its lane is not held up.

use courier_store::StoreError;
use courier_store::jobs::{self, Claimed};

/// The outcome of running one claimed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    Finished,
    /// Its slice ended: it runs again at once, behind the other due work.
    Yielded,
    /// Another worker holds it now; this run changed nothing more.
    LeaseLost,
}

/// What one step of a stepped job did.
pub enum Step {
    Done,
    LeaseLost,
    /// It wrote and has more to do; its progress so far is `payload`.
    More {
        payload: String,
    },
}

/// Runs `job` step by step until it is done, loses its lease, or its slice ends
/// (`slice_end`); then it gives its lease back, keeping its progress.
pub fn run_stepped<S: courier_store::Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    slice_end: i64,
    clock: &dyn Fn() -> i64,
    mut step: impl FnMut(&Claimed) -> Result<Step, StoreError>,
) -> Result<Ran, StoreError> {
    let mut job = job.clone();
    loop {
        match step(&job)? {
            Step::Done => return Ok(Ran::Finished),
            Step::LeaseLost => return Ok(Ran::LeaseLost),
            Step::More { payload } => {
                job.payload = payload;
                if clock() >= slice_end {
                    return match jobs::advance(sql, &job, &job.payload, Some(clock())) {
                        Ok(()) => Ok(Ran::Yielded),
                        Err(StoreError::LeaseLost) => Ok(Ran::LeaseLost),
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }
}
