//! A send's plan: what `POST /v1/messages` (or its queued retry) writes, decided from
//! the facts the store reads in the send's transaction. "When is a send `accepted`?"
//! is answered here and only here.

use super::{Lane, Reach, reach};
use crate::api::SendStatus;

/// Where a send goes, as far as the plan cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A direct message to another user.
    Peer,
    /// A note to self.
    OwnNote,
    /// A group of `members` (counted when the send was authorized). `fanout_pending`:
    /// earlier messages of the group still wait in its outbox (read in the send's
    /// transaction).
    Group { members: i64, fanout_pending: bool },
}

/// What the plan of one send is decided from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendFacts {
    pub target: Target,
    /// `inline_fanout_max`: the largest group written in the send's transaction.
    pub inline_fanout_max: usize,
    /// The worker runs a send queued after a transient store failure.
    pub from_queue: bool,
    /// That queued send was accepted as a fan-out (its group was over
    /// `inline_fanout_max` then): it stays one.
    pub accepted_for_fanout: bool,
}

/// Whose streams the send's transaction writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Sender and peer.
    Direct,
    /// The sender only.
    OwnNote,
    /// Every member, and the sender (who may have left the group since a queued
    /// retry was accepted: the message still belongs in its stream).
    Group,
    /// The sender only; the members through the group's fan-out job on `lane`.
    Fanout { lane: Lane },
}

/// What one send does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPlan {
    pub route: Route,
    /// `accepted` when the members get the message through the queue, else `sent`.
    pub status: SendStatus,
    /// Charged to the sender's and its org's buckets and checked against the org's
    /// share of the queue. A queued retry is not: it was charged when accepted.
    pub charge: bool,
    /// A send of the same key waiting in the queue answers this one (as the
    /// duplicate it is). Not in the queued send's own run.
    pub answer_queued: bool,
    /// Offline recipients but the sender are pushed in the send's transaction. A
    /// fan-out job pushes the members as it writes them.
    pub push: bool,
}

/// The status of a send made durable as a queue job after a transient store failure
/// (and of every retry of it meanwhile): it will reach every recipient.
pub const QUEUED_STATUS: SendStatus = SendStatus::Accepted;

/// A group send goes through the group's fan-out job when the group is over
/// `inline_fanout_max`, or when earlier messages of the group still wait there
/// (written inline, this one would overtake them in every stream), or when it was
/// accepted as a fan-out before it was queued; such a send is `accepted`. Every other send is written now and `sent`.
pub fn plan_send(facts: SendFacts) -> SendPlan {
    let route = match facts.target {
        Target::Peer => Route::Direct,
        Target::OwnNote => Route::OwnNote,
        Target::Group {
            members,
            fanout_pending,
        } => match reach(members, facts.inline_fanout_max) {
            Reach::Queued { lane } => Route::Fanout { lane },
            Reach::Inline if fanout_pending || facts.accepted_for_fanout => Route::Fanout {
                lane: Lane::for_group(members),
            },
            Reach::Inline => Route::Group,
        },
    };
    SendPlan {
        route,
        status: match route {
            Route::Fanout { .. } => SendStatus::Accepted,
            _ => SendStatus::Sent,
        },
        charge: !facts.from_queue,
        answer_queued: !facts.from_queue,
        push: matches!(route, Route::Direct | Route::Group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(target: Target, from_queue: bool) -> SendPlan {
        plan_send(SendFacts {
            target,
            inline_fanout_max: 100,
            from_queue,
            accepted_for_fanout: false,
        })
    }

    fn group(members: i64, fanout_pending: bool) -> Target {
        Target::Group {
            members,
            fanout_pending,
        }
    }

    #[test]
    fn direct_messages_and_notes_are_sent_at_once() {
        let direct = plan(Target::Peer, false);
        assert_eq!(
            (direct.route, direct.status, direct.push),
            (Route::Direct, SendStatus::Sent, true)
        );
        let note = plan(Target::OwnNote, false);
        assert_eq!(
            (note.route, note.status, note.push),
            (Route::OwnNote, SendStatus::Sent, false)
        );
    }

    #[test]
    fn a_group_up_to_the_inline_maximum_is_written_in_the_transaction() {
        let small = plan(group(100, false), false);
        assert_eq!(
            (small.route, small.status, small.push),
            (Route::Group, SendStatus::Sent, true)
        );
    }

    #[test]
    fn a_larger_group_is_accepted_and_fanned_out_on_its_lane() {
        let large = plan(group(101, false), false);
        assert_eq!(
            (large.route, large.status, large.push),
            (
                Route::Fanout { lane: Lane::Medium },
                SendStatus::Accepted,
                false
            )
        );
        let huge = plan(group(10_000, false), false);
        assert_eq!(huge.route, Route::Fanout { lane: Lane::Low });
    }

    #[test]
    fn a_small_group_with_fanout_pending_queues_behind_it() {
        let behind = plan(group(5, true), false);
        assert_eq!(
            (behind.route, behind.status),
            (Route::Fanout { lane: Lane::High }, SendStatus::Accepted)
        );
    }

    #[test]
    fn a_queued_send_accepted_as_a_fanout_stays_one() {
        let queued = plan_send(SendFacts {
            target: group(5, false),
            inline_fanout_max: 100,
            from_queue: true,
            accepted_for_fanout: true,
        });
        assert_eq!(
            (queued.route, queued.status),
            (Route::Fanout { lane: Lane::High }, SendStatus::Accepted)
        );
    }

    #[test]
    fn a_queued_retry_is_not_charged_again_nor_answered_by_itself() {
        let first = plan(Target::Peer, false);
        assert!(first.charge && first.answer_queued);
        let retry = plan(Target::Peer, true);
        assert!(!retry.charge && !retry.answer_queued);
        assert_eq!(QUEUED_STATUS, SendStatus::Accepted);
    }
}
