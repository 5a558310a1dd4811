//! Who may do what, as pure functions over facts the store looked up.
//!
//! - Direct messages: allowed iff the two users share an org, are `friend`s, or share
//!   a group. Messaging yourself is always allowed ("note to self", conversation
//!   `dm:u:u`); the message then lands once in the user's own stream.
//! - Group messages: the sender must be a member.
//! - Read receipts: only messages in the caller's stream; the caller's own messages are
//!   skipped (there is nothing to mark), ids not in the stream are `NotFound` (not
//!   `Forbidden`: whether a message exists elsewhere is not the caller's business).
//! - Reading a message's receipts and recalling it: the sender only; recall within
//!   `recall_window_secs` of `sent_at`, and a repeat recall is a no-op success.

use std::collections::BTreeSet;

use crate::error::Error;
use crate::ids::{MsgId, UserId};

/// What the store knows about a sender and a recipient user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectFacts {
    /// Both users belong to the same org.
    pub same_org: bool,
    /// A `friend` relation links them (relations are symmetric).
    pub friends: bool,
    /// Some group has both as members.
    pub shared_group: bool,
}

/// Whether `sender` may message `recipient` directly.
pub fn authorize_direct(
    sender: &UserId,
    recipient: &UserId,
    facts: DirectFacts,
) -> Result<(), Error> {
    if sender == recipient || facts.same_org || facts.friends || facts.shared_group {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "no relation with user {recipient}"
        )))
    }
}

/// Whether a user may message a group.
pub fn authorize_group(is_member: bool) -> Result<(), Error> {
    if is_member {
        Ok(())
    } else {
        Err(Error::Forbidden("not a member of the group".into()))
    }
}

/// A message found in the caller's stream, with its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMessage {
    /// The message.
    pub msg_id: MsgId,
    /// Who sent it.
    pub sender: UserId,
}

/// Which of `requested` (already free of repeats) to mark read now, in request order.
/// `found` are the requested messages the store found in the caller's stream;
/// `already_read` those the caller had marked before. Any requested id missing from
/// `found` makes the whole request `NotFound`, so nothing is marked.
pub fn plan_read(
    caller: &UserId,
    requested: &[MsgId],
    found: &[StreamMessage],
    already_read: &BTreeSet<MsgId>,
) -> Result<Vec<MsgId>, Error> {
    let mut newly = Vec::new();
    for msg_id in requested {
        let message = found
            .iter()
            .find(|m| &m.msg_id == msg_id)
            .ok_or_else(|| Error::NotFound(format!("message {msg_id} is not in your stream")))?;
        if &message.sender != caller && !already_read.contains(msg_id) {
            newly.push(msg_id.clone());
        }
    }
    Ok(newly)
}

/// Only a message's sender may list who read it.
pub fn authorize_receipts_view(caller: &UserId, sender: &UserId) -> Result<(), Error> {
    if caller == sender {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only the sender may see a message's receipts".into(),
        ))
    }
}

/// What the store knows about a message someone wants to recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecallFacts<'a> {
    /// Who sent it.
    pub sender: &'a UserId,
    /// When, Unix ms.
    pub sent_at_ms: i64,
    /// Whether it was recalled before.
    pub already_recalled: bool,
}

/// What a permitted recall does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecallDecision {
    /// Erase the content and fan out `recall` entries.
    Recall,
    /// Done before: answer success and change nothing (also after the window closed).
    AlreadyRecalled,
}

/// The recall rule: sender only (`Forbidden`); a first recall must come at most
/// `recall_window_secs` after `sent_at` (`RecallWindowExpired`).
pub fn authorize_recall(
    caller: &UserId,
    facts: RecallFacts<'_>,
    now_ms: i64,
    recall_window_secs: u64,
) -> Result<RecallDecision, Error> {
    if caller != facts.sender {
        return Err(Error::Forbidden(
            "only the sender may recall a message".into(),
        ));
    }
    if facts.already_recalled {
        return Ok(RecallDecision::AlreadyRecalled);
    }
    let window_ms = i64::try_from(recall_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if now_ms.saturating_sub(facts.sent_at_ms) > window_ms {
        return Err(Error::RecallWindowExpired);
    }
    Ok(RecallDecision::Recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> UserId {
        UserId::parse(s).expect("valid")
    }

    fn mid(s: &str) -> MsgId {
        MsgId::parse(s).expect("valid")
    }

    const DAY_SECS: u64 = 86_400;
    const SENT: i64 = 1_764_000_000_000;

    #[test]
    fn direct_message_is_allowed_by_any_one_relation() {
        let (a, b) = (uid("a"), uid("b"));
        for facts in [
            DirectFacts {
                same_org: true,
                ..DirectFacts::default()
            },
            DirectFacts {
                friends: true,
                ..DirectFacts::default()
            },
            DirectFacts {
                shared_group: true,
                ..DirectFacts::default()
            },
        ] {
            assert_eq!(authorize_direct(&a, &b, facts), Ok(()), "{facts:?}");
        }
    }

    #[test]
    fn direct_message_without_relation_is_forbidden() {
        let err = authorize_direct(&uid("a"), &uid("b"), DirectFacts::default()).expect_err("none");
        assert_eq!(err.code(), "forbidden");
    }

    #[test]
    fn messaging_yourself_is_allowed_without_relations() {
        assert_eq!(
            authorize_direct(&uid("a"), &uid("a"), DirectFacts::default()),
            Ok(())
        );
    }

    #[test]
    fn group_message_needs_membership() {
        assert_eq!(authorize_group(true), Ok(()));
        assert_eq!(
            authorize_group(false).map_err(|e| e.code()),
            Err("forbidden")
        );
    }

    #[test]
    fn read_marks_only_others_messages_not_read_before_in_request_order() {
        let me = uid("me");
        let found = vec![
            StreamMessage {
                msg_id: mid("m1"),
                sender: uid("ann"),
            },
            StreamMessage {
                msg_id: mid("m2"),
                sender: me.clone(),
            },
            StreamMessage {
                msg_id: mid("m3"),
                sender: uid("bob"),
            },
            StreamMessage {
                msg_id: mid("m4"),
                sender: uid("bob"),
            },
        ];
        let already: BTreeSet<MsgId> = [mid("m3")].into();
        let requested = [mid("m4"), mid("m3"), mid("m2"), mid("m1")];
        assert_eq!(
            plan_read(&me, &requested, &found, &already),
            Ok(vec![mid("m4"), mid("m1")])
        );
    }

    #[test]
    fn reading_a_message_outside_your_stream_is_not_found_and_marks_nothing() {
        let found = vec![StreamMessage {
            msg_id: mid("m1"),
            sender: uid("ann"),
        }];
        let result = plan_read(
            &uid("me"),
            &[mid("m1"), mid("m9")],
            &found,
            &BTreeSet::new(),
        );
        assert_eq!(result.map_err(|e| e.code()), Err("not_found"));
    }

    #[test]
    fn only_the_sender_sees_receipts() {
        assert_eq!(authorize_receipts_view(&uid("a"), &uid("a")), Ok(()));
        assert_eq!(
            authorize_receipts_view(&uid("b"), &uid("a")).map_err(|e| e.code()),
            Err("forbidden")
        );
    }

    fn recall(caller: &str, now_ms: i64, already_recalled: bool) -> Result<RecallDecision, Error> {
        let sender = uid("ann");
        let facts = RecallFacts {
            sender: &sender,
            sent_at_ms: SENT,
            already_recalled,
        };
        authorize_recall(&uid(caller), facts, now_ms, DAY_SECS)
    }

    #[test]
    fn sender_may_recall_up_to_the_end_of_the_window() {
        assert_eq!(recall("ann", SENT, false), Ok(RecallDecision::Recall));
        assert_eq!(
            recall("ann", SENT + 86_400_000, false),
            Ok(RecallDecision::Recall)
        );
    }

    #[test]
    fn recall_after_the_window_is_recall_window_expired() {
        assert_eq!(
            recall("ann", SENT + 86_400_001, false),
            Err(Error::RecallWindowExpired)
        );
    }

    #[test]
    fn only_the_sender_may_recall() {
        assert_eq!(
            recall("bob", SENT, false).map_err(|e| e.code()),
            Err("forbidden")
        );
        assert_eq!(
            recall("bob", SENT, true).map_err(|e| e.code()),
            Err("forbidden")
        );
    }

    #[test]
    fn repeating_a_recall_succeeds_even_after_the_window() {
        assert_eq!(
            recall("ann", SENT + 10 * 86_400_000, true),
            Ok(RecallDecision::AlreadyRecalled)
        );
    }

    #[test]
    fn zero_window_allows_recall_only_at_the_same_millisecond() {
        let sender = uid("ann");
        let facts = RecallFacts {
            sender: &sender,
            sent_at_ms: SENT,
            already_recalled: false,
        };
        assert_eq!(
            authorize_recall(&sender, facts, SENT, 0),
            Ok(RecallDecision::Recall)
        );
        assert_eq!(
            authorize_recall(&sender, facts, SENT + 1, 0),
            Err(Error::RecallWindowExpired)
        );
    }
}
