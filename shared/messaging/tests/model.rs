//! Model-based property test: random sequences of operations run against the real
//! services over a real database (SQLite; PostgreSQL too when
//! `COURIER_TEST_DATABASE_URL` is set) and against a small in-memory model of the
//! documented behaviour. Every answer must match the model's; at checkpoints and at
//! the end, after draining the queue, every user's stream (all of it, paged through
//! sync), conversation list, history and read lists must equal the model's.
//!
//! The operations: direct and group sends (inline and through the fan-out queue, with
//! duplicates and conflicting reuses of a `client_msg_id`), read receipts, acks,
//! recalls (inside and outside the window), membership changes, partial worker
//! drains (one round, one step per job, so fan-out, recall and receipt jobs are
//! pending while later operations run), clock jumps, busy sends (the transaction
//! fails transiently, so the request is queued and the worker writes it later), and
//! crashes: an operation runs on a connection that fails every statement after the
//! first `after`, then the connection is dropped and the store reopened — the model
//! keeps exactly the transactions (and autocommitted writes) that committed before
//! the crash.
//!
//! On failure proptest prints the smallest failing sequence and records its seed in
//! `proptest-regressions/model.txt`; `PROPTEST_CASES` overrides the case count. The
//! sequences that found bugs are kept below as plain tests on every backend.
//!
//! # Layout
//! - this file: the fixed directory, running one operation on both sides, the
//!   proptest runner and its coverage figures, the regressions.
//! - `model/ops.rs`: the operations, their strategies, the messages they pick.
//! - `model/state.rs`: the model of each route.
//! - `model/worker.rs`: the model of `worker::drain`, transaction by transaction.
//! - `model/views.rs`: entries as a client sees them; every view compared.
//! - `model/flaky.rs`: the connection that crashes or is busy on demand.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use support::{identity, who};

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use courier_core::api::{HistoryQuery, SyncQuery};
use courier_core::auth::{Identity, Role};
use courier_core::{Config, Error, Seq};
use courier_messaging::worker::{DrainConfig, drain};
use courier_messaging::{Reply, ack, directory, reads, recall, receipts, send};
use courier_store::sql::{Dialect, Row, Sql, SqlError, SqlValue, TX_ATTEMPTS};
use courier_store::streams;
use courier_store::testdb::{TestDb, postgres_url};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, FileFailurePersistence};
use serde_json::{Value, json};

const USERS: [&str; 5] = ["u0", "u1", "u2", "u3", "u4"];
const ORGS: [&str; 5] = ["a", "a", "a", "b", "b"];
/// Not a user / not a group: requests naming them get 404.
const NO_USER: &str = "ux";
const NO_GROUP: &str = "gx";
const GROUPS: [(&str, &[usize]); 2] = [("g0", &[0, 1]), ("g1", &[0, 2, 3, 4])];
/// Groups over this size fan out through the queue (`accepted`).
const INLINE_MAX: usize = 2;
/// Groups over this size get no `control` entries.
const CONTROL_MAX: usize = 3;
const WINDOW_MS: i64 = 86_400_000;
const LEASE_MS: i64 = 20;
const TEXTS: [&str; 3] = ["hi", "hello", "bye"];
const START: i64 = 1_764_000_000_000;
/// Fan-out messages per batch (`courier_store::fanout::MAX_BATCH`).
const MAX_BATCH: usize = 32;

fn config() -> Config {
    Config {
        inline_fanout_max: INLINE_MAX,
        control_fanout_max_members: CONTROL_MAX,
        recall_window_secs: (WINDOW_MS / 1000) as u64,
        rate_per_user_per_sec: 1_000_000,
        rate_burst: 1_000_000,
        rate_per_org_per_sec: 1_000_000,
        org_queue_floor: 1_000_000,
        ..Config::default()
    }
}

fn admin() -> Identity {
    identity("admin", Role::Admin)
}

fn user_name(i: usize) -> &'static str {
    USERS.get(i).copied().unwrap_or(NO_USER)
}

/// `i` in 0..7: mostly the two groups, now and then one that does not exist.
fn group_name(i: usize) -> &'static str {
    if i >= 6 { NO_GROUP } else { GROUPS[i % 2].0 }
}

fn dm(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("dm:{x}:{y}")
}

#[path = "model/flaky.rs"]
mod flaky;
#[path = "model/ops.rs"]
mod ops;
#[path = "model/state.rs"]
mod state;
#[path = "model/views.rs"]
mod views;
#[path = "model/worker.rs"]
mod worker;

use flaky::*;
use ops::*;
use state::*;
use views::*;

fn outcome(result: Result<Reply, Error>) -> Outcome {
    result.map_err(|e| code(&e)).map(
        |Reply {
             status, mut body, ..
         }| {
            // Ids newly read: a set.
            if let Some(read) = body.get_mut("read").and_then(Value::as_array_mut) {
                read.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            (status, body)
        },
    )
}

/// Runs one operation on the store (through a connection that may crash) and on
/// the model; returns whether the connection crashed.
fn apply(db: &dyn Sql, model: &mut Model, op: &Op, crash: Option<usize>, ctx: &str) -> bool {
    let flaky = Flaky::new(db, crash);
    let now = model.now;
    let serial = model.serial;
    let config = config();
    let mut next = model.clone();
    let (actual, expected, durable): (Outcome, Outcome, usize) = match op {
        Op::SendUser { .. } | Op::SendGroup { .. } | Op::Resend { .. } | Op::Busy(_) => {
            let (send_op, busy) = match op {
                Op::Busy(inner) => (&**inner, true),
                other => (other, false),
            };
            if busy {
                // Every attempt of the send's transaction fails (PostgreSQL's
                // `write_tx` tries again on a transient error).
                flaky.busy.set(match db.dialect() {
                    Dialect::Sqlite => 1,
                    Dialect::Postgres => TX_ATTEMPTS,
                });
            }
            let Some((from, to, cmid, text)) = resolve_send(model, send_op) else {
                return false;
            };
            let to_json = match &to {
                Ok(peer) => json!({ "user": peer }),
                Err(gid) => json!({ "group": gid }),
            };
            let body = json!({ "client_msg_id": cmid, "to": to_json, "content": { "type": "text", "text": text } });
            let actual = send::send(
                &flaky,
                &config,
                &who(&from),
                body.to_string().as_bytes(),
                now,
                serial,
            );
            let to = match &to {
                Ok(peer) => Ok(peer.as_str()),
                Err(gid) => Err(gid.as_str()),
            };
            let (expected, durable) = next.send(&from, to, &cmid, text, busy);
            (outcome(actual), expected, durable)
        }
        Op::Read { reader, picks } => {
            let reader = USERS[*reader];
            let ids: Vec<String> = picks
                .iter()
                .map(|&(mine, i)| pick(model, |m| !mine || m.holders.contains(reader), i))
                .collect();
            let body = json!({ "msg_ids": ids });
            let actual = receipts::mark_read(
                &flaky,
                &config,
                &who(reader),
                body.to_string().as_bytes(),
                now,
            );
            let (expected, durable) = next.read(reader, &ids);
            (outcome(actual), expected, durable)
        }
        Op::Ack { user, at } => {
            let uid = USERS[*user];
            let seq = (*at % (model.head(uid) as usize + 2)) as i64;
            let body = json!({ "seq": seq });
            let actual = ack::ack(&flaky, &config, &who(uid), body.to_string().as_bytes(), now);
            let (expected, durable) = next.ack(uid, seq);
            (outcome(actual), expected, durable)
        }
        Op::Recall {
            caller,
            own,
            pick: i,
        } => {
            let caller = USERS[*caller];
            let msg_id = pick(model, |m| !own || m.sender == caller, *i);
            let actual = recall::recall(&flaky, &config, &who(caller), &msg_id, now);
            let (expected, durable) = next.recall(caller, &msg_id);
            (outcome(actual), expected, durable)
        }
        Op::Members { group, add, remove } => {
            let gid = group_name(*group);
            let add: Vec<&str> = add.iter().map(|&i| user_name(i)).collect();
            let remove: Vec<&str> = remove.iter().map(|&i| user_name(i)).collect();
            let body = json!({ "add": add, "remove": remove });
            let actual = directory::change_members(
                &flaky,
                &config,
                &admin(),
                gid,
                body.to_string().as_bytes(),
                now,
            );
            let (expected, durable) = next.members(gid, &add, &remove);
            (outcome(actual), expected, durable)
        }
        Op::Drain(spec) => {
            let mut random = serial << 8;
            let report = drain(&flaky, &spec.config(), &|| now, &mut || {
                random += 1;
                random
            });
            let actual = report
                .map(|r| (200, json!({ "done": r.done, "remaining": r.remaining })))
                .map_err(|e| code(&e));
            let mut budget = Budget {
                left: flaky.crashed.get().then(|| flaky.durable.get()),
                used: 0,
            };
            let done = next.drain(*spec, &mut budget);
            let expected = match done {
                Ok(done) => Ok((200, json!({ "done": done, "remaining": next.remaining() }))),
                Err(()) => Err("crashed".into()),
            };
            (actual, expected, budget.used)
        }
        Op::Wait { .. } | Op::WindowEdge { .. } | Op::Crash { .. } | Op::Check => {
            unreachable!("not a store operation")
        }
    };
    let committed = flaky.durable.get();
    note(op, &actual);
    if flaky.crashed.get() {
        STATS.with(|s| *s.borrow_mut().crashes.entry(committed).or_default() += 1);
        assert!(
            committed <= durable,
            "{ctx}: the store made {committed} durable writes before the crash, the model expected at most {durable}"
        );
        if committed == durable {
            *model = next;
        } else if matches!(op, Op::Drain(_)) {
            unreachable!("a crashed drain's model ran exactly {committed} transactions");
        }
        // A single-transaction operation that did not commit changed nothing.
        return true;
    }
    assert_eq!(actual, expected, "{ctx}: answer");
    assert_eq!(
        committed, durable,
        "{ctx}: durable writes (commits and autocommitted statements)"
    );
    *model = next;
    false
}

fn full_drain(db: &dyn Sql, model: &mut Model, ctx: &str) {
    let crashed = apply(db, model, &Op::Drain(DrainSpec::FULL), None, ctx);
    assert!(!crashed);
}

/// One case: fresh database, the fixed directory, then `ops`.
fn run(target: &TestDb, ops: &[Op], limit: u32) {
    let mut db = target.migrated().unwrap();
    let mut model = Model {
        now: START,
        ..Model::default()
    };
    for (i, uid) in USERS.iter().enumerate() {
        let body = json!({ "name": uid, "org": ORGS[i] }).to_string();
        directory::put_user(&*db, &config(), &admin(), uid, body.as_bytes(), START).unwrap();
    }
    for (gid, members) in GROUPS {
        let members: Vec<&str> = members.iter().map(|&i| USERS[i]).collect();
        let body = json!({ "name": gid, "owner": members[0], "members": members }).to_string();
        directory::put_group(&*db, &config(), &admin(), gid, body.as_bytes(), START).unwrap();
    }
    model.setup();
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.cases += 1;
        s.ops += ops.len() as u64;
    });
    for (i, op) in ops.iter().enumerate() {
        model.now += 1;
        model.serial += 1;
        let ctx = format!("{} op {i} {op:?}", target.dialect());
        match op {
            Op::Wait { ms } => model.now += ms,
            Op::WindowEdge { pick: p, delta } => {
                if !model.msgs.is_empty() {
                    let m = &model.msgs[p % model.msgs.len()];
                    model.now = model.now.max(m.sent_at + WINDOW_MS + delta);
                }
            }
            Op::Check => {
                full_drain(&*db, &mut model, &ctx);
                views_agree(&*db, &model, limit, &ctx);
            }
            Op::Crash { op, after } => {
                apply(&*db, &mut model, op, Some(*after), &ctx);
                // The process is gone: its connection (and any open transaction)
                // with it. Reopen the store as a restart would.
                drop(db);
                db = target.migrated().unwrap();
            }
            op => {
                apply(&*db, &mut model, op, None, &ctx);
            }
        }
        heads_agree(&*db, &model, &ctx);
    }
    // Leases of crashed drains expire; then everything drains.
    model.now += LEASE_MS + 1;
    let ctx = format!("{} after {} ops", target.dialect(), ops.len());
    full_drain(&*db, &mut model, &ctx);
    assert_eq!(model.remaining(), 0, "{ctx}: the model drained");
    assert!(model.jobs.is_empty(), "{ctx}: jobs left {:?}", model.jobs);
    views_agree(&*db, &model, limit, &ctx);
}

/// `cases` unless `PROPTEST_CASES` says otherwise.
fn runner_config(cases: u32) -> RunnerConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    RunnerConfig {
        cases,
        // A failure is reported within minutes, shrunk as far as that allows.
        max_shrink_iters: 2_000,
        max_shrink_time: 180_000,
        // Relative to the package: `shared/messaging/proptest-regressions/model.txt`.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..RunnerConfig::default()
    }
}

/// What a backend's run exercised, printed at the end (the figures for
/// docs/RELIABILITY.md) and on failure.
#[derive(Debug, Default)]
struct Stats {
    cases: u64,
    ops: u64,
    /// `(operation, outcome)` → count.
    outcomes: BTreeMap<(&'static str, String), u64>,
    /// Crashes that hit, by durable writes made before them.
    crashes: BTreeMap<usize, u64>,
    entries: u64,
}

impl Stats {
    fn note(&mut self, op: &Op, outcome: &str) {
        let name = match op {
            Op::SendUser { .. } => "send user",
            Op::SendGroup { .. } => "send group",
            Op::Resend { .. } => "resend",
            Op::Read { .. } => "read",
            Op::Ack { .. } => "ack",
            Op::Recall { .. } => "recall",
            Op::Members { .. } => "members",
            Op::Drain(_) => "drain",
            Op::Wait { .. } | Op::WindowEdge { .. } => "clock",
            Op::Crash { .. } => "crash",
            Op::Busy(_) => "busy send",
            Op::Check => "check",
        };
        *self
            .outcomes
            .entry((name, outcome.to_string()))
            .or_default() += 1;
    }
}

thread_local! {
    static STATS: std::cell::RefCell<Stats> = std::cell::RefCell::default();
}

fn note(op: &Op, outcome: &Outcome) {
    let outcome = match outcome {
        Ok((status, _)) => status.to_string(),
        Err(code) => code.clone(),
    };
    STATS.with(|s| s.borrow_mut().note(op, &outcome));
}

/// Runs the property on fresh databases from `backend`; prints what it covered.
fn check(backend: &str, cases: u32, open: impl Fn() -> TestDb) {
    let started = std::time::Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new(runner_config(cases));
    let strategy = (
        prop::collection::vec(op(), 1..40),
        prop_oneof![1..8u32, Just(500u32)],
    );
    let result = runner.run(&strategy, |(ops, limit)| {
        run(&open(), &ops, limit);
        Ok(())
    });
    STATS.with(|s| {
        let s = s.borrow();
        eprintln!(
            "model on {backend}: {} cases, {} operations, {} stream entries checked, {:.1} s",
            s.cases,
            s.ops,
            s.entries,
            started.elapsed().as_secs_f64()
        );
        for ((op, outcome), n) in &s.outcomes {
            eprintln!("  {op:<10} {outcome:<22} {n}");
        }
        for (committed, n) in &s.crashes {
            eprintln!("  crashes after {committed} durable writes: {n}");
        }
    });
    if let Err(e) = result {
        panic!("{backend}: {e}");
    }
}

#[test]
fn store_agrees_with_the_model_on_sqlite() {
    check("sqlite", 128, || TestDb::sqlite().unwrap());
}

#[test]
fn store_agrees_with_the_model_on_postgres() {
    // Without a server there is nothing to run (CI sets the variable).
    let Some(url) = postgres_url() else {
        eprintln!(
            "model on postgres: skipped, {} is not set",
            courier_store::testdb::ENV
        );
        return;
    };
    // Fewer cases: each opens a schema and many more round trips (~0.5 s a case).
    check("postgres", 64, || TestDb::postgres(&url).unwrap());
}

/// A sequence on every backend, with one-entry and whole-stream sync pages.
fn regression(ops: &[Op]) {
    for limit in [1, 500] {
        for target in TestDb::all().unwrap() {
            run(&target, ops, limit);
        }
    }
}

/// Found by the model: fan-out rewrote the conversation row of every member of a
/// chunk, also of those it gave no message (here the sender), so the row's
/// `updated_at` moved and its `last` became the member's newest entry — a DM.
#[test]
fn fan_out_leaves_alone_the_conversations_of_members_it_gave_nothing() {
    regression(&[
        Op::SendGroup {
            from: 2,
            member: false,
            group: 1,
            cmid: 0,
            text: 0,
        },
        Op::SendUser {
            from: 0,
            to: 2,
            cmid: 0,
            text: 0,
        },
    ]);
}

/// Found by the model: once a large group shrank to the inline size, the next send
/// was written inline and overtook the messages still waiting for fan-out.
#[test]
fn a_group_that_shrank_while_messages_wait_for_fan_out_keeps_send_order() {
    regression(&[
        Op::SendGroup {
            from: 0,
            member: false,
            group: 1,
            cmid: 0,
            text: 0,
        },
        Op::Members {
            group: 1,
            add: vec![],
            remove: vec![0, 3],
        },
        Op::SendGroup {
            from: 2,
            member: false,
            group: 1,
            cmid: 0,
            text: 0,
        },
    ]);
}

/// Found by the model: a fan-out chunk that gave nothing to a member with an empty
/// stream (the batch recalled) set its head to NULL; the job failed until it was
/// dead-lettered, with every later message of the group.
#[test]
fn a_fan_out_whose_batch_was_recalled_completes() {
    regression(&[
        Op::SendGroup {
            from: 4,
            member: false,
            group: 1,
            cmid: 0,
            text: 0,
        },
        Op::Drain(DrainSpec {
            jobs: 1,
            chunk: 1,
            step: true,
            all: false,
        }),
        Op::Recall {
            caller: 4,
            own: true,
            pick: 0,
        },
    ]);
}

/// A retry of a send that waits in the queue gets 200 and the first answer, also
/// while the store is still busy (then the retry goes the overload path too).
#[test]
fn a_retry_of_a_queued_send_while_the_store_is_busy_gets_the_first_answer() {
    let send = Op::SendUser {
        from: 0,
        to: 1,
        cmid: 0,
        text: 0,
    };
    regression(&[
        Op::Busy(Box::new(send.clone())),
        Op::Busy(Box::new(send.clone())),
        send,
    ]);
}

/// Found by the model: a send queued after a transient failure was written to the
/// group's members when the worker ran it; its sender, who had left the group in
/// between, never got its own message (and its `seq` named another entry).
#[test]
fn a_queued_send_reaches_its_sender_who_left_the_group_meanwhile() {
    regression(&[
        Op::Busy(Box::new(Op::SendGroup {
            from: 0,
            member: false,
            group: 0,
            cmid: 0,
            text: 0,
        })),
        Op::Members {
            group: 0,
            add: vec![],
            remove: vec![0],
        },
        Op::Check,
        Op::Resend {
            pick: 0,
            other_text: false,
        },
    ]);
}

/// The queue's rule the model first missed: a fan-out job enqueued again while it
/// is claimed (by the queued send the same drain writes) runs once more.
#[test]
fn a_job_enqueued_again_while_claimed_runs_once_more() {
    regression(&[
        Op::Busy(Box::new(Op::SendGroup {
            from: 0,
            member: false,
            group: 1,
            cmid: 0,
            text: 0,
        })),
        Op::SendGroup {
            from: 2,
            member: false,
            group: 1,
            cmid: 0,
            text: 0,
        },
    ]);
}

/// Found by the crash test: a receipt handled while the message's fan-out was still
/// running counted as recipients only the members the fan-out had reached (here one
/// chunk), not every member but the sender.
#[test]
fn a_receipt_handled_mid_fan_out_counts_every_member() {
    let drain = |step| {
        Op::Drain(DrainSpec {
            jobs: 1,
            chunk: 1,
            step,
            all: false,
        })
    };
    regression(&[
        Op::SendGroup {
            from: 1,
            member: true,
            group: 1,
            cmid: 0,
            text: 0,
        },
        drain(true),
        Op::Crash {
            op: Box::new(drain(false)),
            after: 4,
        },
        Op::Read {
            reader: 0,
            picks: vec![(false, 0)],
        },
        drain(false),
    ]);
}
