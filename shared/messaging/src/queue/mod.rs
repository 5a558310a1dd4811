//! The queue engine the three lanes run on: the worker's jobs (`POST /internal/drain`),
//! push delivery and webhook delivery. Each lane claims its own rows and does its own
//! work; how long a drain runs, how a failed job waits and when it is dead-lettered,
//! and how a long job runs in slices are decided here, once.
//!
//! # Layout
//! - `mod.rs`: [`Drain`], the budgeted loop of rounds every lane's drain is.
//! - `retry.rs`: the retry delay (backoff, jitter, `Retry-After`), retrying and
//!   dead-lettering a failed job.
//! - `stepped.rs`: a job that runs in steps and yields at the end of its slice.

mod retry;
mod stepped;

pub use retry::{Failed, backoff_ms, dead_letter, fail, retry_wait};
pub use stepped::{Ran, Step, run_stepped};

use courier_core::Error;

/// One drain of a lane: its lease name and its time budget.
pub struct Drain<'c> {
    clock: &'c dyn Fn() -> i64,
    started: i64,
    budget_ms: i64,
    lease: String,
}

impl<'c> Drain<'c> {
    /// Starts a drain now. Its lease is `prefix` and 16 random hex digits, so the
    /// leases of concurrent drains (and of the lanes) are told apart.
    pub fn start(
        prefix: char,
        budget_ms: i64,
        clock: &'c dyn Fn() -> i64,
        random: &mut dyn FnMut() -> u64,
    ) -> Self {
        Self {
            clock,
            started: clock(),
            budget_ms,
            lease: format!("{prefix}{:016x}", random()),
        }
    }

    /// When the drain started.
    pub fn started(&self) -> i64 {
        self.started
    }

    /// The lease this drain's claims take.
    pub fn lease(&self) -> &str {
        &self.lease
    }

    /// Runs rounds until one claims nothing or the budget is spent. The first round
    /// always runs (a budget of 0 is one round); `round` returns how many jobs it
    /// claimed, and no round starts once the budget is spent.
    pub fn rounds(&self, mut round: impl FnMut() -> Result<usize, Error>) -> Result<(), Error> {
        loop {
            if round()? == 0 || (self.clock)() - self.started >= self.budget_ms {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_drain_runs_rounds_until_one_claims_nothing_or_the_budget_is_spent() {
        let t = Cell::new(0);
        let clock = || t.get();
        let mut n = 0;
        let mut random = || 0xab;
        let drain = Drain::start('w', 100, &clock, &mut random);
        assert_eq!(drain.lease(), "w00000000000000ab");

        // Work keeps coming: rounds run until the budget is spent.
        let mut rounds = 0;
        drain
            .rounds(|| {
                rounds += 1;
                t.set(t.get() + 30);
                Ok(1)
            })
            .unwrap();
        assert_eq!(rounds, 4, "rounds end at 30, 60, 90, 120 ms");

        // A round that claims nothing ends the drain.
        let drain = Drain::start('w', 100, &clock, &mut random);
        drain
            .rounds(|| {
                n += 1;
                Ok(if n < 3 { 1 } else { 0 })
            })
            .unwrap();
        assert_eq!(n, 3);

        // A budget of 0 is one round; an error ends the drain with it.
        let drain = Drain::start('w', 0, &clock, &mut random);
        let mut once = 0;
        drain
            .rounds(|| {
                once += 1;
                Ok(1)
            })
            .unwrap();
        assert_eq!(once, 1);
        let failed = drain.rounds(|| Err(Error::Internal("store".into())));
        assert!(failed.is_err());
    }
}
