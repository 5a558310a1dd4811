//! The decisions of the write flows, as pure functions over facts: the store reads
//! the facts in its transaction, asks here what to do, and applies the answer with
//! its set-based SQL in the same transaction (the sans-IO split of `shared/push`).
//!
//! # Layout
//! - [`lane`]: the queue's priority [`Lane`]s and which lane a group's work takes.
//! - [`send`]: a send's [`SendPlan`] — its route, its status, whether it is charged
//!   to the quotas and whether it pushes.
//! - [`reach`] (here): whether a write reaches its audience in the request's
//!   transaction or through the queue — the one rule behind `accepted` sends and
//!   queued recalls.

pub mod lane;
pub mod send;

pub use lane::Lane;
pub use send::{Route, SendFacts, SendPlan, Target, plan_send};

/// How a write reaches the streams of its audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every stream in the request's transaction.
    Inline,
    /// Through a queued job on `lane`, chunk by chunk.
    Queued { lane: Lane },
}

/// An audience of more than `inline_max` streams (`inline_fanout_max`) is written
/// through the queue, on its size's lane; a smaller one inline.
pub fn reach(audience: i64, inline_max: usize) -> Reach {
    if audience > i64::try_from(inline_max).unwrap_or(i64::MAX) {
        Reach::Queued {
            lane: Lane::for_group(audience),
        }
    } else {
        Reach::Inline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_over_the_inline_maximum_is_queued_on_its_lane() {
        assert_eq!(reach(100, 100), Reach::Inline);
        assert_eq!(reach(0, 0), Reach::Inline);
        assert_eq!(reach(101, 100), Reach::Queued { lane: Lane::Medium });
        assert_eq!(reach(1, 0), Reach::Queued { lane: Lane::High });
        assert_eq!(reach(10_000, 100), Reach::Queued { lane: Lane::Low });
        assert_eq!(reach(i64::MAX, usize::MAX), Reach::Inline);
    }
}
