//! The queue, the worker and the features built on them, with a fake clock, on real
//! SQLite — and on PostgreSQL too when `COURIER_TEST_DATABASE_URL` is set (a fresh
//! schema per test): large-group fan-out, merged inserts, leases, retries and dead
//! letters, lanes, receipts under concurrency, recall.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use support::who;

use std::cell::Cell;

use courier_core::Config;
use courier_messaging::worker::{DrainConfig, DrainReport, drain};
use courier_messaging::{Reply, recall, receipts, send};
use courier_store::jobs::{self, Lane, NewJob};
use courier_store::sql::Sql;
use courier_store::testdb::TestDb;
use courier_store::{directory, reads, schema};
use serde_json::{Value, json};

fn config() -> Config {
    Config {
        inline_fanout_max: 10,
        ..support::unthrottled()
    }
}

/// Runs `test` on a fresh database of every backend.
fn each(test: impl Fn(&TestDb, &dyn Sql)) {
    for t in TestDb::all().unwrap() {
        eprintln!("on {}", t.dialect());
        test(&t, &*t.connect().unwrap());
    }
}

fn setup(db: &impl Sql, members: usize) -> Vec<String> {
    schema::migrate(db).unwrap();
    let uids: Vec<String> = (0..members).map(|i| format!("u{i:05}")).collect();
    for uid in &uids {
        directory::put_user(db, uid, uid, "acme", 0).unwrap();
    }
    let policy = directory::ControlPolicy { max_members: 0 };
    directory::put_group(db, "big", "Big", &uids[0], &uids, policy, 0).unwrap();
    uids
}

fn send_text(db: &impl Sql, from: &str, to: Value, cmid: &str, now: i64) -> Value {
    let (status, reply) = support::send_text(db, &config(), from, to, cmid, now);
    assert!(status == 201 || status == 200, "{status} {reply}");
    reply
}

fn run_drain(db: &impl Sql, now: i64) -> DrainReport {
    let clock = || now;
    let mut n = 0u64;
    let mut random = || {
        n += 1;
        n
    };
    drain(
        db,
        &DrainConfig {
            chunk: 7,
            ..DrainConfig::default()
        },
        &clock,
        &mut random,
    )
    .unwrap()
}

fn message_ids(db: &impl Sql, uid: &str) -> Vec<String> {
    reads::sync_page(db, uid, 0, 10_000)
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.kind == "message")
        .filter_map(|e| e.msg_id)
        .collect()
}

fn assert_dense(db: &impl Sql, uid: &str) {
    let page = reads::sync_page(db, uid, 0, 100_000).unwrap();
    let seqs: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=page.head).collect::<Vec<_>>(),
        "{uid}: dense seqs"
    );
}

#[test]
fn large_group_message_reaches_every_member_once_through_the_queue_in_send_order() {
    each(|_, db| {
        large_group_message_reaches_every_member_once_through_the_queue_in_send_order_on(db)
    });
}

fn large_group_message_reaches_every_member_once_through_the_queue_in_send_order_on(db: &dyn Sql) {
    let uids = setup(&db, 40);
    let first = send_text(&db, &uids[3], json!({ "group": "big" }), "one", 10);
    assert_eq!(first["status"], "accepted");
    let second = send_text(&db, &uids[5], json!({ "group": "big" }), "two", 11);
    assert_eq!(
        message_ids(&db, &uids[3]),
        [first["msg_id"].as_str().unwrap()],
        "the sender has it at once"
    );
    assert!(message_ids(&db, &uids[9]).is_empty());
    let report = run_drain(&db, 20);
    assert_eq!(
        (report.done, report.remaining),
        (1, 0),
        "one coalesced job for the group"
    );
    let expected = [
        first["msg_id"].as_str().unwrap(),
        second["msg_id"].as_str().unwrap(),
    ];
    for uid in &uids {
        let mut got = message_ids(&db, uid);
        if uid != &uids[5] {
            assert_eq!(got, expected, "{uid}: each message once, in send order");
        }
        // A sender has its own message at once, before earlier ones still in the queue.
        got.sort();
        assert_eq!(got, expected, "{uid}: each message once");
        assert_dense(&db, uid);
    }
    let convs = reads::conversations(&db, &uids[9], 10).unwrap();
    assert_eq!((convs[0].conv.as_str(), convs[0].unread), ("g:big", 2));
}

#[test]
fn a_crashed_workers_lease_expires_and_the_job_resumes_without_duplicates() {
    each(|_, db| a_crashed_workers_lease_expires_and_the_job_resumes_without_duplicates_on(db));
}

fn a_crashed_workers_lease_expires_and_the_job_resumes_without_duplicates_on(db: &dyn Sql) {
    let uids = setup(&db, 30);
    send_text(&db, &uids[0], json!({ "group": "big" }), "m", 10);
    // A worker claims the job, writes one chunk, and dies.
    let claimed = jobs::claim(&db, Lane::High, 1, 5, "dead-worker", 30_000, 20).unwrap();
    let (step, _) =
        courier_store::fanout::step(&db, &claimed[0], 7, &Default::default(), 20).unwrap();
    assert!(matches!(step, courier_store::fanout::Step::Wrote));
    // While the lease holds, nobody else takes the job.
    assert_eq!(run_drain(&db, 1_000).done, 0);
    // After it expires, another worker finishes it; the dead worker can write nothing.
    let report = run_drain(&db, 31_000);
    assert_eq!(report.done, 1);
    let (late, _) =
        courier_store::fanout::step(&db, &claimed[0], 7, &Default::default(), 31_001).unwrap();
    assert_eq!(late, courier_store::fanout::Step::LeaseLost);
    for uid in &uids {
        assert_eq!(message_ids(&db, uid).len(), 1, "{uid}");
        assert_dense(&db, uid);
    }
}

#[test]
fn failing_jobs_back_off_then_are_dead_lettered_after_thirty_minutes() {
    each(|_, db| failing_jobs_back_off_then_are_dead_lettered_after_thirty_minutes_on(db));
}

fn failing_jobs_back_off_then_are_dead_lettered_after_thirty_minutes_on(db: &dyn Sql) {
    schema::migrate(&db).unwrap();
    let job = NewJob {
        id: "bad",
        lane: Lane::High,
        kind: "no-such-kind",
        key: None,
        payload: "{}",
        run_at: 0,
        org: None,
    };
    jobs::enqueue(&db, &job, 0).unwrap();
    let first = run_drain(&db, 0);
    assert_eq!((first.done, first.retried, first.remaining), (0, 1, 0));
    let run_at = |db: &dyn Sql| {
        db.query_i64("SELECT run_at FROM jobs WHERE id = 'bad'", &[])
            .unwrap()
            .unwrap()
    };
    let first_retry = run_at(&db);
    assert!(
        (1_000..=1_500).contains(&first_retry),
        "1 s plus up to 50 % jitter: {first_retry}"
    );
    assert_eq!(
        run_drain(&db, first_retry - 1).retried,
        0,
        "not due before its time"
    );
    run_drain(&db, first_retry);
    let second_retry = run_at(&db);
    assert!(second_retry - first_retry >= 2_000, "backoff grows");
    let mut now = second_retry;
    let mut dead_lettered = 0;
    while dead_lettered == 0 {
        now = run_at(&db).max(now);
        dead_lettered = run_drain(&db, now).dead_lettered;
        assert!(now < 40 * 60 * 1000, "must give up within the hold");
    }
    assert!(
        now >= 30 * 60 * 1000,
        "held 30 minutes from the first attempt"
    );
    let state = db
        .query_row("SELECT state, last_error FROM jobs WHERE id = 'bad'", &[])
        .unwrap()
        .unwrap();
    assert_eq!(state[0].as_str(), Some("dead"), "kept for inspection");
    assert!(state[1].as_str().unwrap().contains("unknown job kind"));
    assert_eq!(run_drain(&db, now + 3_600_000).dead, 1);
}

#[test]
fn high_lane_work_completes_before_a_low_lane_backlog() {
    each(|_, db| high_lane_work_completes_before_a_low_lane_backlog_on(db));
}

fn high_lane_work_completes_before_a_low_lane_backlog_on(db: &dyn Sql) {
    let uids = setup(&db, 3000);
    for (i, sender) in uids.iter().take(3).enumerate() {
        send_text(
            &db,
            sender,
            json!({ "group": "big" }),
            &format!("flood{i}"),
            10,
        );
    }
    // A 1:1 conversation's receipt: high-lane work queued after the flood.
    let dm = send_text(&db, &uids[1], json!({ "user": uids[2] }), "dm", 11);
    let body = json!({ "msg_ids": [dm["msg_id"]] }).to_string();
    receipts::mark_read(&db, &config(), &who(&uids[2]), body.as_bytes(), 12).unwrap();
    let clock = Cell::new(20i64);
    let tick = || {
        clock.set(clock.get() + 1);
        clock.get()
    };
    let mut random = || 7u64;
    let config = DrainConfig {
        chunk: 100,
        slice_ms: 3,
        ..DrainConfig::default()
    };
    let report = drain(&db, &config, &tick, &mut random).unwrap();
    let order: Vec<&str> = report
        .completed
        .iter()
        .map(|(lane, _)| lane.as_str())
        .collect();
    assert_eq!(order.first(), Some(&"high"), "completion order: {order:?}");
    assert!(order.contains(&"low"));
}

#[test]
fn two_hundred_concurrent_readers_are_all_counted() {
    each(two_hundred_concurrent_readers_are_all_counted_on);
}

fn two_hundred_concurrent_readers_are_all_counted_on(t: &TestDb, db: &dyn Sql) {
    let uids = setup(&db, 201);
    let msg = {
        let reply = send_text(&db, &uids[0], json!({ "group": "big" }), "read-me", 10);
        while run_drain(&db, 20).remaining > 0 {}
        reply["msg_id"].as_str().unwrap().to_string()
    };
    std::thread::scope(|scope| {
        for readers in uids[1..].chunks(25) {
            let msg = &msg;
            scope.spawn(move || {
                let db = t.connect().unwrap();
                for reader in readers {
                    let body = json!({ "msg_ids": [msg] }).to_string();
                    let Reply {
                        status,
                        body: reply,
                        ..
                    } = receipts::mark_read(&db, &config(), &who(reader), body.as_bytes(), 30)
                        .unwrap();
                    assert_eq!((status, reply["read"].as_array().unwrap().len()), (200, 1));
                    // Drains run concurrently with the readers.
                    run_drain(&db, 31);
                }
            });
        }
    });
    while run_drain(&db, 40).remaining > 0 {}
    assert_eq!(newest_receipt(&db, &uids[0]), (Some(200), Some(0)));
    let Reply { body: view, .. } = receipts::readers(&db, &who(&uids[0]), &msg).unwrap();
    assert_eq!(view["read"].as_array().unwrap().len(), 200);
    assert_eq!(view["unread"].as_array().unwrap().len(), 0);
    assert_dense(&db, &uids[0]);
}

/// The counts of `sender`'s newest `receipt` entry: `(read_count, unread_count)`.
fn newest_receipt(db: &impl Sql, sender: &str) -> (Option<i64>, Option<i64>) {
    let page = reads::sync_page(db, sender, 0, 10_000).unwrap();
    let last = page
        .entries
        .iter()
        .rev()
        .find(|e| e.kind == "receipt")
        .expect("a receipt entry");
    let data: Value = serde_json::from_str(last.data.as_deref().unwrap()).unwrap();
    (data["read_count"].as_i64(), data["unread_count"].as_i64())
}

/// Found by the crash test: a receipt handled while the message's fan-out was still
/// running counted as recipients only the members the fan-out had reached.
#[test]
fn a_receipt_handled_mid_fan_out_counts_every_member_as_a_recipient() {
    each(|_, db| a_receipt_handled_mid_fan_out_counts_every_member_as_a_recipient_on(db));
}

fn a_receipt_handled_mid_fan_out_counts_every_member_as_a_recipient_on(db: &dyn Sql) {
    let uids = setup(&db, 30);
    let sender = &uids[3];
    let reply = send_text(&db, sender, json!({ "group": "big" }), "crowd", 10);
    let msg = reply["msg_id"].as_str().unwrap().to_string();
    // A worker writes the first chunk (7 members, the sender among them) and holds
    // the lease: the rest of the fan-out waits.
    let claimed = jobs::claim(&db, Lane::High, 1, 5, "slow-worker", 30_000, 20).unwrap();
    let (step, _) =
        courier_store::fanout::step(&db, &claimed[0], 7, &Default::default(), 20).unwrap();
    assert!(matches!(step, courier_store::fanout::Step::Wrote));
    let reached = uids.iter().filter(|u| message_ids(&db, u).contains(&msg));
    assert_eq!(reached.count(), 7, "the sender and 6 members have it");
    let body = json!({ "msg_ids": [msg] }).to_string();
    let Reply { status, .. } =
        receipts::mark_read(&db, &config(), &who(&uids[1]), body.as_bytes(), 25).unwrap();
    assert_eq!(status, 200);
    // The receipt job runs; the fan-out job is still leased.
    assert_eq!(run_drain(&db, 1_000).done, 1);
    assert_eq!(
        newest_receipt(&db, sender),
        (Some(1), Some(28)),
        "29 recipients (every member but the sender), 1 read"
    );
    // Once fanned out, the holders count: the same 29.
    while run_drain(&db, 31_000).remaining > 0 {}
    let Reply { status, .. } =
        receipts::mark_read(&db, &config(), &who(&uids[20]), body.as_bytes(), 31_001).unwrap();
    assert_eq!(status, 200);
    while run_drain(&db, 31_002).remaining > 0 {}
    assert_eq!(newest_receipt(&db, sender), (Some(2), Some(27)));
    assert_dense(&db, sender);
}

#[test]
fn recall_is_sender_only_within_the_window_and_idempotent() {
    each(|_, db| recall_is_sender_only_within_the_window_and_idempotent_on(db));
}

fn recall_is_sender_only_within_the_window_and_idempotent_on(db: &dyn Sql) {
    let uids = setup(&db, 3);
    let reply = send_text(&db, &uids[0], json!({ "user": uids[1] }), "oops", 1_000);
    let msg = reply["msg_id"].as_str().unwrap();
    let cfg = Config {
        recall_window_secs: 60,
        ..config()
    };
    let err = recall::recall(&db, &cfg, &who(&uids[1]), msg, 2_000).unwrap_err();
    assert_eq!(err.status(), 403);
    let late = recall::recall(&db, &cfg, &who(&uids[0]), msg, 1_000 + 60_001).unwrap_err();
    assert_eq!(late.code(), "recall_window_expired");
    let Reply { status, .. } =
        recall::recall(&db, &cfg, &who(&uids[0]), msg, 1_000 + 60_000).unwrap();
    assert_eq!(status, 200, "the window end is inclusive");
    let again = recall::recall(&db, &cfg, &who(&uids[0]), msg, 1_000 + 90_000).unwrap();
    assert_eq!(
        again.status, 200,
        "a repeat succeeds, even after the window"
    );
    for uid in &uids[..2] {
        let page = reads::sync_page(&db, uid, 0, 100).unwrap();
        let kinds: Vec<&str> = page.entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "recall").count(),
            1,
            "{uid}: one recall entry: {kinds:?}"
        );
        let original = page.entries.iter().find(|e| e.kind == "message").unwrap();
        assert!(
            original.recalled && original.content.is_none(),
            "content erased"
        );
    }
}

#[test]
fn recall_of_a_large_group_message_reaches_every_holder_through_the_queue() {
    each(|_, db| recall_of_a_large_group_message_reaches_every_holder_through_the_queue_on(db));
}

fn recall_of_a_large_group_message_reaches_every_holder_through_the_queue_on(db: &dyn Sql) {
    let uids = setup(&db, 50);
    let reply = send_text(&db, &uids[0], json!({ "group": "big" }), "oops", 1_000);
    while run_drain(&db, 1_001).remaining > 0 {}
    recall::recall(
        &db,
        &config(),
        &who(&uids[0]),
        reply["msg_id"].as_str().unwrap(),
        2_000,
    )
    .unwrap();
    while run_drain(&db, 2_001).remaining > 0 {}
    for uid in &uids {
        let page = reads::sync_page(&db, uid, 0, 100).unwrap();
        assert_eq!(
            page.entries.iter().filter(|e| e.kind == "recall").count(),
            1,
            "{uid}"
        );
        assert_dense(&db, uid);
    }
}

/// An executor that fails statements starting with `prefix` (transiently) while
/// `failing` is set.
struct Flaky<'a> {
    db: &'a dyn Sql,
    prefix: &'static str,
    failing: Cell<bool>,
}

impl Sql for Flaky<'_> {
    fn dialect(&self) -> courier_store::Dialect {
        self.db.dialect()
    }

    fn query(
        &self,
        sql: &str,
        params: &[courier_store::SqlValue],
    ) -> Result<Vec<courier_store::Row>, courier_store::SqlError> {
        self.refuse(sql)?;
        self.db.query(sql, params)
    }

    fn execute(
        &self,
        sql: &str,
        params: &[courier_store::SqlValue],
    ) -> Result<(), courier_store::SqlError> {
        self.refuse(sql)?;
        self.db.execute(sql, params)
    }
}

impl Flaky<'_> {
    fn refuse(&self, sql: &str) -> Result<(), courier_store::SqlError> {
        if self.failing.get() && sql.trim_start().starts_with(self.prefix) {
            return Err(courier_store::SqlError::Transient(
                "database is locked".into(),
            ));
        }
        Ok(())
    }
}

#[test]
fn a_send_that_hits_a_busy_store_is_queued_accepted_and_delivered_exactly_once() {
    each(|_, db| {
        a_send_that_hits_a_busy_store_is_queued_accepted_and_delivered_exactly_once_on(db)
    });
}

fn a_send_that_hits_a_busy_store_is_queued_accepted_and_delivered_exactly_once_on(db: &dyn Sql) {
    let db = Flaky {
        db,
        prefix: "INSERT INTO entries",
        failing: Cell::new(false),
    };
    let uids = setup(&db, 3);
    let body = json!({ "client_msg_id": "busy", "to": { "user": uids[1] }, "content": { "type": "text", "text": "hi" } }).to_string();
    db.failing.set(true);
    let Reply {
        status,
        body: first,
        ..
    } = send::send(&db, &config(), &who(&uids[0]), body.as_bytes(), 100, 1).unwrap();
    assert_eq!(
        (status, first["status"].as_str(), first["seq"].as_i64()),
        (201, Some("accepted"), Some(0))
    );
    assert!(message_ids(&db, &uids[1]).is_empty(), "not written yet");
    // A client retry while it is queued gets the same answer and writes nothing.
    let Reply { body: again, .. } =
        send::send(&db, &config(), &who(&uids[0]), body.as_bytes(), 150, 2).unwrap();
    assert_eq!(again, first);
    let other = json!({ "client_msg_id": "busy", "to": { "user": uids[1] }, "content": { "type": "text", "text": "changed" } }).to_string();
    assert_eq!(
        send::send(&db, &config(), &who(&uids[0]), other.as_bytes(), 160, 3)
            .unwrap_err()
            .status(),
        409
    );
    // The worker writes it once the store recovers.
    db.failing.set(false);
    assert_eq!(run_drain(&db, 200).done, 1);
    for uid in &uids[..2] {
        assert_eq!(
            message_ids(&db, uid),
            [first["msg_id"].as_str().unwrap()],
            "{uid}"
        );
        assert_dense(&db, uid);
    }
    let Reply {
        status,
        body: after,
        ..
    } = send::send(&db, &config(), &who(&uids[0]), body.as_bytes(), 300, 4).unwrap();
    assert_eq!(
        (status, after["msg_id"].clone()),
        (200, first["msg_id"].clone())
    );
}

#[test]
fn when_even_queueing_fails_the_send_is_503_and_nothing_is_written() {
    each(|_, db| when_even_queueing_fails_the_send_is_503_and_nothing_is_written_on(db));
}

fn when_even_queueing_fails_the_send_is_503_and_nothing_is_written_on(db: &dyn Sql) {
    let db = Flaky {
        db,
        prefix: "INSERT",
        failing: Cell::new(false),
    };
    let uids = setup(&db, 2);
    db.failing.set(true);
    let body = json!({ "client_msg_id": "down", "to": { "user": uids[1] }, "content": { "type": "text", "text": "hi" } }).to_string();
    let err = send::send(&db, &config(), &who(&uids[0]), body.as_bytes(), 100, 1).unwrap_err();
    assert_eq!((err.status(), err.retry_after().is_some()), (503, true));
    db.failing.set(false);
    assert_eq!(
        db.query_i64("SELECT count(*) FROM jobs", &[]).unwrap(),
        Some(0)
    );
    assert_eq!(
        db.query_i64("SELECT count(*) FROM messages", &[]).unwrap(),
        Some(0)
    );
}

#[test]
fn concurrent_senders_and_drains_deliver_every_message_once_in_dense_streams() {
    each(concurrent_senders_and_drains_on);
}

fn concurrent_senders_and_drains_on(t: &TestDb, db: &dyn Sql) {
    let uids = setup(&db, 60);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..3)
            .map(|s| {
                let uids = &uids;
                scope.spawn(move || {
                    let db = t.connect().unwrap();
                    for i in 0..15 {
                        let cmid = format!("s{s}-{i}");
                        let from = &uids[s * 7];
                        if i % 3 == 0 {
                            send_text(&db, from, json!({ "user": uids[s * 7 + 1] }), &cmid, 10);
                        } else {
                            send_text(&db, from, json!({ "group": "big" }), &cmid, 10);
                        }
                        // The same key again, as a client retry would.
                        if i % 5 == 0 {
                            send_text(
                                &db,
                                from,
                                json!({ "group": "big" }),
                                &format!("{cmid}-r"),
                                10,
                            );
                            send_text(
                                &db,
                                from,
                                json!({ "group": "big" }),
                                &format!("{cmid}-r"),
                                10,
                            );
                        }
                    }
                })
            })
            .collect();
        for w in 0..3u64 {
            let done = &done;
            scope.spawn(move || {
                let db = t.connect().unwrap();
                let clock = || 20;
                let mut n = w << 32;
                let mut random = || {
                    n += 1;
                    n
                };
                let config = DrainConfig {
                    chunk: 7,
                    slice_ms: 0,
                    ..DrainConfig::default()
                };
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    drain(&db, &config, &clock, &mut random).unwrap();
                }
            });
        }
        for s in senders {
            s.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    while run_drain(&db, 40).remaining > 0 {}
    let group_messages = db
        .query_i64("SELECT count(*) FROM messages WHERE conv = 'g:big'", &[])
        .unwrap()
        .unwrap();
    assert_eq!(group_messages, 3 * (10 + 3), "one row per client_msg_id");
    for uid in &uids {
        assert_dense(&db, uid);
        let ids = message_ids(&db, uid);
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{uid}: no message twice");
        let in_group = db
            .query_i64(
                "SELECT count(*) FROM entries e JOIN messages m ON m.msg_id = e.msg_id
                 WHERE e.uid = ? AND e.kind = 'message' AND m.conv = 'g:big'",
                &[uid.as_str().into()],
            )
            .unwrap()
            .unwrap();
        assert_eq!(in_group, group_messages, "{uid}: every group message");
    }
}

/// The service says whether its answer queued work (the shell marks such an answer
/// `x-courier-queued`): a group send past `inline_fanout_max` and its repeat, a recall,
/// and receipts that newly read something do; a send fanned out inline and receipts
/// that read nothing new do not.
#[test]
fn answers_say_whether_they_queued_work() {
    each(|_, db| {
        let uids = setup(&db, 20);
        let send = |to: Value, cmid: &str| {
            let body = json!({ "client_msg_id": cmid, "to": to, "content": { "type": "text", "text": cmid } });
            send::send(
                db,
                &config(),
                &who(&uids[0]),
                body.to_string().as_bytes(),
                10,
                cmid.len() as u64,
            )
            .unwrap()
        };
        let direct = send(json!({ "user": &uids[1] }), "direct");
        assert_eq!(
            (direct.status, direct.body["status"].clone(), direct.queued),
            (201, json!("sent"), false)
        );
        let group = send(json!({ "group": "big" }), "group");
        assert_eq!(
            (group.status, group.body["status"].clone(), group.queued),
            (201, json!("accepted"), true)
        );
        let again = send(json!({ "group": "big" }), "group");
        assert_eq!(
            (again.status, again.queued),
            (200, true),
            "a repeat of an accepted send"
        );

        let read = json!({ "msg_ids": [direct.body["msg_id"]] }).to_string();
        let first =
            receipts::mark_read(db, &config(), &who(&uids[1]), read.as_bytes(), 20).unwrap();
        assert_eq!(
            (first.body["read"].as_array().map(Vec::len), first.queued),
            (Some(1), true)
        );
        let repeat =
            receipts::mark_read(db, &config(), &who(&uids[1]), read.as_bytes(), 21).unwrap();
        assert_eq!(
            (repeat.body["read"].as_array().map(Vec::len), repeat.queued),
            (Some(0), false)
        );

        let msg_id = direct.body["msg_id"].as_str().unwrap();
        let recalled = recall::recall(db, &config(), &who(&uids[0]), msg_id, 30).unwrap();
        assert_eq!((recalled.status, recalled.queued), (200, true));
    });
}
