//! The operations of a sequence, their strategies, and the messages they pick.

use super::*;

#[derive(Debug, Clone)]
pub(super) enum Op {
    SendUser {
        from: usize,
        to: usize,
        cmid: u8,
        text: usize,
    },
    /// `from` indexes the group's current members if `member`, else every user.
    SendGroup {
        from: usize,
        member: bool,
        group: usize,
        cmid: u8,
        text: usize,
    },
    /// Sends a sent message again: same sender, `client_msg_id` and recipient, the
    /// same text (200, the first answer) or another one (409).
    Resend {
        pick: usize,
        other_text: bool,
    },
    /// `(from the reader's stream, index)` per id.
    Read {
        reader: usize,
        picks: Vec<(bool, usize)>,
    },
    Ack {
        user: usize,
        at: usize,
    },
    Recall {
        caller: usize,
        own: bool,
        pick: usize,
    },
    Members {
        group: usize,
        add: Vec<usize>,
        remove: Vec<usize>,
    },
    Drain(DrainSpec),
    Wait {
        ms: i64,
    },
    /// Moves the clock to a message's recall deadline, `delta` ms around it.
    WindowEdge {
        pick: usize,
        delta: i64,
    },
    /// A send whose transaction fails transiently (the overload path).
    Busy(Box<Op>),
    /// Runs `op` on a connection that dies after `after` statements, then reopens.
    Crash {
        op: Box<Op>,
        after: usize,
    },
    /// Drains everything, then compares every view with the model.
    Check,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct DrainSpec {
    /// Jobs claimed per round (the high lane's share).
    pub(super) jobs: usize,
    /// Members written per fan-out / recall transaction.
    pub(super) chunk: i64,
    /// One transaction per claimed job, then it yields (`slice_ms` 0).
    pub(super) step: bool,
    /// Rounds until nothing is due (else one round).
    pub(super) all: bool,
}

impl DrainSpec {
    pub(super) const FULL: DrainSpec = DrainSpec {
        jobs: 32,
        chunk: 3,
        step: false,
        all: true,
    };

    pub(super) fn config(self) -> DrainConfig {
        DrainConfig {
            budget_ms: if self.all { 5_000 } else { 0 },
            lease_ms: LEASE_MS,
            chunk: self.chunk,
            slice_ms: if self.step { 0 } else { 1_000 },
            shares: [self.jobs, 1, 1],
            ..DrainConfig::default()
        }
    }
}

pub(super) fn crashable() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..5usize, 0..6usize, 0..6u8, 0..3usize)
            .prop_map(|(from, to, cmid, text)| Op::SendUser { from, to, cmid, text }),
        3 => (0..5usize, prop::bool::weighted(0.8), 0..7usize, 0..6u8, 0..3usize)
            .prop_map(|(from, member, group, cmid, text)| Op::SendGroup { from, member, group, cmid, text }),
        1 => (any::<usize>(), prop::bool::weighted(0.3))
            .prop_map(|(pick, other_text)| Op::Resend { pick, other_text }),
        2 => (0..5usize, prop::collection::vec((prop::bool::weighted(0.8), any::<usize>()), 1..4))
            .prop_map(|(reader, picks)| Op::Read { reader, picks }),
        1 => (0..5usize, any::<usize>()).prop_map(|(user, at)| Op::Ack { user, at }),
        2 => (0..5usize, prop::bool::weighted(0.8), any::<usize>())
            .prop_map(|(caller, own, pick)| Op::Recall { caller, own, pick }),
        2 => (
            0..7usize,
            prop::sample::subsequence((0..6).collect::<Vec<usize>>(), 0..3),
            prop::sample::subsequence((0..6).collect::<Vec<usize>>(), 0..3),
        )
            .prop_map(|(group, add, remove)| Op::Members { group, add, remove }),
        4 => (1..4usize, 1..4i64, prop::bool::weighted(0.7), prop::bool::weighted(0.2))
            .prop_map(|(jobs, chunk, step, all)| Op::Drain(DrainSpec { jobs, chunk, step, all })),
    ]
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => crashable(),
        1 => (1..40i64).prop_map(|ms| Op::Wait { ms }),
        1 => (any::<usize>(), -1..2i64).prop_map(|(pick, delta)| Op::WindowEdge { pick, delta }),
        2 => (0..5usize, prop::bool::weighted(0.5), 0..7usize, 0..6u8, 0..3usize).prop_map(
            |(from, member, group, cmid, text)| {
                let send = if member {
                    Op::SendGroup { from, member, group, cmid, text }
                } else {
                    Op::SendUser { from, to: group % 6, cmid, text }
                };
                Op::Busy(Box::new(send))
            }
        ),
        3 => (crashable(), 0..30usize).prop_map(|(op, after)| Op::Crash { op: Box::new(op), after }),
        1 => Just(Op::Check),
    ]
}

/// A message the op picks: from the caller's own, its stream, or all of them.
pub(super) fn pick(model: &Model, filter: impl Fn(&Msg) -> bool, index: usize) -> String {
    let candidates: Vec<&Msg> = model.msgs.iter().filter(|m| filter(m)).collect();
    match candidates.len() {
        0 => "m9999999999999ffffffffffffffff".into(),
        n => candidates[index % n].msg_id.clone(),
    }
}

/// A send's sender, recipient (`Ok(user)` or `Err(group)`), `client_msg_id` and
/// text; `None` for a resend before any message was sent.
#[allow(clippy::type_complexity, reason = "a test helper's one tuple")]
pub(super) fn resolve_send(
    model: &Model,
    op: &Op,
) -> Option<(String, Result<String, String>, String, &'static str)> {
    Some(match *op {
        Op::SendUser {
            from,
            to,
            cmid,
            text,
        } => (
            USERS[from].into(),
            Ok(user_name(to).into()),
            format!("c{cmid}"),
            TEXTS[text],
        ),
        Op::SendGroup {
            from,
            member,
            group,
            cmid,
            text,
        } => {
            let gid = group_name(group);
            let members: Vec<&String> = model
                .groups
                .get(gid)
                .map_or(Vec::new(), |g| g.0.iter().collect());
            let from = match member && !members.is_empty() {
                true => members[from % members.len()].clone(),
                false => USERS[from].into(),
            };
            (from, Err(gid.into()), format!("c{cmid}"), TEXTS[text])
        }
        Op::Resend { pick, other_text } => {
            let m = model.msgs.get(pick % model.msgs.len().max(1))?;
            let to = match m.conv.strip_prefix("g:") {
                Some(gid) => Err(gid.to_string()),
                None => {
                    let mut pair = m.conv.splitn(3, ':').skip(1);
                    let (a, b) = (pair.next()?, pair.next()?);
                    Ok(if a == m.sender { b } else { a }.to_string())
                }
            };
            let text = TEXTS.iter().position(|t| *t == m.text)?;
            let text = TEXTS[(text + usize::from(other_text)) % TEXTS.len()];
            (m.sender.clone(), to, m.cmid.clone(), text)
        }
        _ => return None,
    })
}
