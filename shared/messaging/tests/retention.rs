//! Retention on real SQLite with a fake clock: old stream entries, bodies, receipts,
//! conversation rows, push delivery records and dead letters are purged by the
//! worker's retention job in bounded batches; a sync from purged history says so.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use support::who;

use courier_core::Config;
use courier_messaging::worker::{DrainConfig, DrainReport, drain};
use courier_messaging::{reads, receipts};
use courier_store::jobs::{self, Lane, NewJob};
use courier_store::native::NativeSqlite;
use courier_store::retention::{self, Counts, Policy, Step};
use courier_store::sql::Sql;
use courier_store::{directory, schema};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000;

fn config() -> Config {
    support::unthrottled()
}

fn policy(batch: i64) -> Policy {
    Policy {
        keep_ms: 180 * DAY,
        dead_keep_ms: 7 * DAY,
        every_ms: 600_000,
        batch,
    }
}

fn send_text(db: &impl Sql, from: &str, to: Value, cmid: &str, now: i64) -> String {
    let (status, reply) = support::send_text(db, &config(), from, to, cmid, now);
    assert_eq!(status, 201, "{reply}");
    reply["msg_id"].as_str().unwrap().to_string()
}

fn run_drain(db: &impl Sql, now: i64, retention: Option<Policy>) -> DrainReport {
    let clock = || now;
    let mut random = || 3u64;
    let config = DrainConfig {
        retention,
        ..DrainConfig::default()
    };
    drain(db, &config, &clock, &mut random).unwrap()
}

fn count(db: &impl Sql, table: &str) -> i64 {
    db.query_i64(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .unwrap()
}

fn sync(db: &impl Sql, uid: &str, after: i64) -> Value {
    let query = courier_core::api::SyncQuery::parse(&format!("after={after}&limit=500")).unwrap();
    serde_json::to_value(reads::sync_once(db, &who(uid), &query).unwrap()).unwrap()
}

/// ann, bob, cat (acme); group `g` of all three. Old history at T0 (a direct
/// conversation read by bob, a group message), new history 100 days later.
fn history(db: &impl Sql) -> (Vec<String>, Vec<String>) {
    schema::migrate(db).unwrap();
    for uid in ["ann", "bob", "cat"] {
        directory::put_user(db, uid, uid, "acme", 0).unwrap();
    }
    let all = ["ann", "bob", "cat"].map(String::from);
    let policy = directory::ControlPolicy { max_members: 0 };
    directory::put_group(db, "g", "G", "ann", &all, policy, 0).unwrap();
    let mut old: Vec<String> = (0..5)
        .map(|i| {
            send_text(
                db,
                "ann",
                json!({ "user": "bob" }),
                &format!("old{i}"),
                T0 + i,
            )
        })
        .collect();
    let read = json!({ "msg_ids": old }).to_string();
    receipts::mark_read(db, &config(), &who("bob"), read.as_bytes(), T0 + 10).unwrap();
    old.push(send_text(
        db,
        "cat",
        json!({ "group": "g" }),
        "old-group",
        T0 + 20,
    ));
    // ann's receipt entries come from the worker (no retention yet).
    run_drain(db, T0 + 30, None);
    let new = (0..2)
        .map(|i| {
            send_text(
                db,
                "ann",
                json!({ "user": "bob" }),
                &format!("new{i}"),
                T0 + 100 * DAY + i,
            )
        })
        .collect();
    (old, new)
}

#[test]
fn old_history_is_purged_and_a_sync_from_it_reports_the_trim() {
    let db = NativeSqlite::memory().unwrap();
    let (old, new) = history(&db);
    assert_eq!(count(&db, "messages"), 8);
    assert_eq!(count(&db, "receipts"), 5);
    let bob_before = sync(&db, "bob", 0);
    let bob_old_entries = bob_before["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() <= 7)
        .count();
    // bob: 5 messages, his read entry, the group message; then the 2 new ones.
    assert_eq!((bob_old_entries, bob_before["head"].as_i64()), (7, Some(9)));

    // 181 days after the old history: the worker schedules and runs a pass.
    let now = T0 + 181 * DAY;
    let report = run_drain(&db, now, Some(policy(3)));
    assert_eq!(report.done, 1, "one pass");

    // Bodies: the 6 old ones gone with their 5 receipts; the new ones stay.
    let bodies: Vec<String> = db
        .query("SELECT msg_id FROM messages ORDER BY msg_id", &[])
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, new);
    assert!(old.iter().all(|m| !bodies.contains(m)));
    assert_eq!(count(&db, "receipts"), 0);

    // bob's stream now starts after seq 7; a sync from 0 gets the rest and the trim.
    let bob = sync(&db, "bob", 0);
    assert_eq!(bob["trimmed_before"], 7);
    let seqs: Vec<i64> = bob["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [8, 9]);
    assert_eq!(
        (bob["next"].as_i64(), bob["more"].as_bool()),
        (Some(9), Some(false))
    );
    // From inside the purged range too; from the trim on, nothing is reported.
    assert_eq!(sync(&db, "bob", 5)["trimmed_before"], 7);
    assert!(sync(&db, "bob", 7).get("trimmed_before").is_none());

    // cat had only old history: all of it gone, and a sync from 0 cannot loop.
    let cat = sync(&db, "cat", 0);
    let cat_head = cat["head"].as_i64().unwrap();
    assert_eq!(cat["entries"], json!([]));
    assert_eq!(cat["trimmed_before"].as_i64(), Some(cat_head));
    assert_eq!(
        (cat["next"].as_i64(), cat["more"].as_bool()),
        (Some(cat_head), Some(false))
    );

    // Conversation rows pointing at purged entries are gone; live ones stay.
    let convs = |uid: &str| -> Vec<String> {
        db.query(
            "SELECT conv FROM conversations WHERE uid = ? ORDER BY conv",
            &[uid.into()],
        )
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
    };
    assert_eq!(convs("bob"), ["dm:ann:bob"]);
    assert!(convs("cat").is_empty());
    let listed = reads::conversations(&db, &who("bob")).unwrap();
    assert_eq!(listed.conversations.len(), 1);
    // Every remaining entry is within the retention time, every stream dense above
    // its trim.
    assert_eq!(
        db.query_i64(
            "SELECT count(*) FROM entries WHERE created_at < ?",
            &[(now - 180 * DAY).into()]
        )
        .unwrap(),
        Some(0)
    );
    for uid in ["ann", "bob", "cat"] {
        let row = db
            .query_row(
                "SELECT head_seq - trimmed_seq, (SELECT count(*) FROM entries WHERE uid = ?) FROM users WHERE uid = ?",
                &[uid.into(), uid.into()],
            )
            .unwrap()
            .unwrap();
        assert_eq!(row[0], row[1], "{uid}: dense above the trim");
    }

    // The next pass waits `every_ms`.
    assert_eq!(run_drain(&db, now + 1000, Some(policy(3))).done, 0);
    assert_eq!(run_drain(&db, now + 600_000, Some(policy(3))).done, 1);
}

#[test]
fn a_pass_deletes_at_most_one_batch_per_transaction_and_counts_what_it_purged() {
    let db = NativeSqlite::memory().unwrap();
    history(&db);
    // A finished push delivery and a dead letter, both old.
    db.execute(
        "INSERT INTO push_deliveries (attempt, device, uid, vendor, token, state, unread, created_at, updated_at)
         VALUES ('push:bob@1.0', 'phone', 'bob', 'fcm', 't', 'sent', 1, ?, ?)",
        &[T0.into(), T0.into()],
    )
    .unwrap();
    jobs::enqueue(
        &db,
        &NewJob {
            id: "broken",
            lane: Lane::High,
            kind: "no-such-kind",
            key: None,
            payload: "{}",
            run_at: T0,
            org: None,
        },
        T0,
    )
    .unwrap();
    db.execute("UPDATE jobs SET state = 'dead' WHERE id = 'broken'", &[])
        .unwrap();
    let now = T0 + 181 * DAY;
    retention::schedule(&db, now).unwrap();
    let mut steps = 0;
    let last = loop {
        let claimed = jobs::claim(&db, Lane::Low, 1, 1, "w", 30_000, now).unwrap();
        let job = claimed.into_iter().next().expect("the retention job");
        let before = total(&db);
        let (step, progress) = retention::step(&db, &job, &policy(4), now).unwrap();
        let deleted = before - total(&db);
        assert!(
            deleted <= 4 + 4,
            "one batch of rows (plus its conversation rows): {deleted}"
        );
        steps += 1;
        match step {
            Step::More => {
                // The worker gives the lease back between slices; here, every step.
                jobs::advance(
                    &db,
                    &job,
                    &serde_json::to_string(&progress).unwrap(),
                    Some(now),
                )
                .unwrap();
            }
            Step::Done => break progress.purged,
            Step::LeaseLost => panic!("lease lost"),
        }
    };
    assert!(steps > 4, "several bounded steps: {steps}");
    // ann: 5 sent + group message + 5 receipts = 11 old entries; bob 7; cat 1. The
    // group conversation of all three pointed at purged entries only.
    assert_eq!(
        last,
        Counts {
            entries: 19,
            conversations: 3,
            messages: 6,
            receipts: 5,
            deliveries: 1,
            dead_jobs: 1,
        }
    );
    assert_eq!(count(&db, "push_deliveries"), 0);
    assert_eq!(
        db.query_i64("SELECT count(*) FROM jobs WHERE state = 'dead'", &[])
            .unwrap(),
        Some(0)
    );
    // The job stays for the next pass.
    let next = db
        .query_i64("SELECT run_at FROM jobs WHERE id = 'retention'", &[])
        .unwrap();
    assert_eq!(next, Some(now + 600_000));
}

fn total(db: &impl Sql) -> i64 {
    ["entries", "messages", "receipts", "push_deliveries", "jobs"]
        .iter()
        .map(|t| count(db, t))
        .sum()
}

#[test]
fn a_stream_is_trimmed_only_from_the_front() {
    let db = NativeSqlite::memory().unwrap();
    schema::migrate(&db).unwrap();
    for uid in ["ann", "bob"] {
        directory::put_user(&db, uid, uid, "acme", 0).unwrap();
    }
    send_text(&db, "ann", json!({ "user": "bob" }), "a", T0);
    send_text(&db, "ann", json!({ "user": "bob" }), "b", T0 + 100 * DAY);
    // An entry older than the one before it (as a late fan-out writes them) stays
    // until everything before it may go.
    send_text(&db, "ann", json!({ "user": "bob" }), "c", T0 + 2 * DAY);
    db.execute(
        "UPDATE entries SET created_at = ? WHERE seq = 3",
        &[T0.into()],
    )
    .unwrap();
    db.execute(
        "UPDATE messages SET sent_at = ? WHERE client_msg_id = 'c'",
        &[T0.into()],
    )
    .unwrap();
    run_drain(&db, T0 + 181 * DAY, Some(policy(1000)));
    let bob = sync(&db, "bob", 0);
    assert_eq!(bob["trimmed_before"], 1);
    let seqs: Vec<i64> = bob["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3], "seq 3 waits behind seq 2");
    // An old body stays while a stream holds its entry: `a` went, `c` stays.
    let bodies: Vec<String> = db
        .query(
            "SELECT client_msg_id FROM messages ORDER BY client_msg_id",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["b", "c"]);
}
