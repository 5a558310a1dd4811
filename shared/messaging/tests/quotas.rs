//! Per-org quotas on real SQLite with a fake clock: an org over its rate, or holding
//! more than its share of the queue, gets 429 + `Retry-After` and nothing written,
//! while another org's sends all go through.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use courier_core::{Config, Error};
use courier_messaging::worker::{DrainConfig, drain};
use courier_store::native::NativeSqlite;
use courier_store::sql::Sql;
use courier_store::{directory, schema};
use serde_json::json;

const T0: i64 = 1_767_225_600_000;

fn users(db: &impl Sql) {
    schema::migrate(db).unwrap();
    for i in 0..5 {
        directory::put_user(db, &format!("a{i}"), "", "acme", 0).unwrap();
        directory::put_user(db, &format!("b{i}"), "", "beta", 0).unwrap();
    }
}

fn send_to(
    db: &impl Sql,
    config: &Config,
    from: &str,
    to: serde_json::Value,
    cmid: &str,
    now: i64,
) -> Result<u16, Error> {
    support::try_send_text(db, config, from, to, cmid, now).map(|(status, _)| status)
}

fn messages(db: &impl Sql) -> i64 {
    db.query_i64("SELECT count(*) FROM messages", &[])
        .unwrap()
        .unwrap()
}

#[test]
fn an_org_over_its_rate_is_limited_while_another_org_sends_freely() {
    let db = NativeSqlite::memory().unwrap();
    users(&db);
    // 5 sends a second per org (a bucket of 10); users are far from their own limit.
    let config = Config {
        rate_per_org_per_sec: 5,
        ..Config::default()
    };
    let mut limited = Vec::new();
    let mut sent = 0;
    for i in 0..30 {
        // acme's five users take turns flooding their colleagues.
        let from = format!("a{}", i % 5);
        let to = format!("a{}", (i + 1) % 5);
        match send_to(
            &db,
            &config,
            &from,
            json!({ "user": to }),
            &format!("f{i}"),
            T0,
        ) {
            Ok(201) => sent += 1,
            Err(e) => limited.push(e),
            other => panic!("{other:?}"),
        }
        // beta sends in between, well within its own org's rate.
        if i % 5 == 0 {
            let status = send_to(
                &db,
                &config,
                "b0",
                json!({ "user": "b1" }),
                &format!("b{i}"),
                T0,
            );
            assert_eq!(status.unwrap(), 201, "beta is never limited by acme");
        }
    }
    assert_eq!(sent, 10, "acme's burst");
    assert_eq!(limited.len(), 20);
    assert!(
        limited
            .iter()
            .all(|e| e.code() == "rate_limited" && e.retry_after() == Some(1))
    );
    assert_eq!(messages(&db), 10 + 6, "refused sends wrote nothing");
    // The org's bucket refills at its rate.
    let later = |n: i64| T0 + 1000 * n;
    assert_eq!(
        send_to(&db, &config, "a0", json!({ "user": "a1" }), "r1", later(1)).unwrap(),
        201
    );
}

#[test]
fn an_org_holding_more_than_its_share_of_the_queue_waits_until_it_drains() {
    let db = NativeSqlite::memory().unwrap();
    users(&db);
    // Every group send is queued (inline_fanout_max 1), one fan-out job per group.
    let config = Config {
        inline_fanout_max: 1,
        org_queue_share_percent: 20,
        org_queue_floor: 5,
        ..Config::default()
    };
    let policy = directory::ControlPolicy { max_members: 0 };
    for i in 0..10 {
        let members = [format!("a{}", i % 5), format!("a{}", (i + 1) % 5)];
        directory::put_group(&db, &format!("ga{i}"), "", &members[0], &members, policy, 0).unwrap();
    }
    let beta = ["b0".to_string(), "b1".to_string()];
    directory::put_group(&db, "gb", "", "b0", &beta, policy, 0).unwrap();
    let group = |i: usize| json!({ "group": format!("ga{i}") });
    // acme fills the queue up to its floor; the next send is over it and over 20 %.
    for i in 0..6 {
        let from = format!("a{}", i % 5);
        assert_eq!(
            send_to(&db, &config, &from, group(i), &format!("q{i}"), T0).unwrap(),
            201
        );
    }
    let refused = send_to(&db, &config, "a1", group(6), "q6", T0).unwrap_err();
    assert_eq!(
        (refused.code(), refused.retry_after()),
        ("rate_limited", Some(5))
    );
    assert_eq!(messages(&db), 6, "the refused send wrote nothing");
    // beta is not affected: its one job is under the floor.
    for i in 0..3 {
        assert_eq!(
            send_to(
                &db,
                &config,
                "b0",
                json!({ "group": "gb" }),
                &format!("b{i}"),
                T0
            )
            .unwrap(),
            201
        );
    }
    // Once the worker has worked the backlog down, acme sends again.
    let clock = || T0 + 10;
    let mut random = || 1u64;
    let report = drain(&db, &DrainConfig::default(), &clock, &mut random).unwrap();
    assert_eq!(report.remaining, 0);
    assert_eq!(
        send_to(&db, &config, "a1", group(6), "q6", T0 + 20).unwrap(),
        201
    );
}
