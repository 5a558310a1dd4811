//! Store tests on real databases: each test runs on SQLite, and on PostgreSQL too
//! when `COURIER_TEST_DATABASE_URL` is set (a fresh schema per test); concurrency
//! tests open one connection per thread.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;

use courier_store::directory::{self, ControlPolicy, RelationFacts};
use courier_store::messages::{self, NewMessage, Recipients, SendOutcome};
use courier_store::sql::Sql;
use courier_store::testdb::TestDb;
use courier_store::{StoreError, devices, reads};

const POLICY: ControlPolicy = ControlPolicy { max_members: 2000 };

fn unlimited(_: Option<(f64, i64)>) -> Result<(f64, i64), u64> {
    Ok((1.0, 0))
}

/// Runs `test` on a fresh, migrated database of every backend.
fn each(test: impl Fn(&dyn Sql)) {
    for t in TestDb::all().unwrap() {
        eprintln!("on {}", t.dialect());
        test(&*t.migrated().unwrap());
    }
}

fn users(db: &impl Sql, uids: &[&str], org: &str) {
    for uid in uids {
        directory::put_user(db, uid, uid, org, 0).unwrap();
    }
}

fn dm<'a>(
    msg_id: &'a str,
    sender: &'a str,
    peer: &'a str,
    cmid: &'a str,
    conv: &'a str,
) -> NewMessage<'a> {
    NewMessage {
        msg_id,
        sender,
        client_msg_id: cmid,
        conv,
        content: r#"{"text":"hi","type":"text"}"#,
        fingerprint: "fp-hi",
        to: Recipients::Direct { peer },
        sent_at: 1000,
        from_queue: false,
        accepted_for_fanout: false,
        inline_fanout_max: 100,
        push: Default::default(),
    }
}

fn seqs(db: &impl Sql, uid: &str) -> Vec<i64> {
    reads::sync_page(db, uid, 0, 10_000)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.seq)
        .collect()
}

#[test]
fn direct_message_lands_in_both_streams_with_dense_seqs() {
    each(direct_message_lands_in_both_streams_with_dense_seqs_on);
}

fn direct_message_lands_in_both_streams_with_dense_seqs_on(db: &dyn Sql) {
    users(&db, &["u1", "u2"], "acme");
    let first = messages::send(&db, &dm("m1", "u1", "u2", "c1", "dm:u1:u2"), &unlimited).unwrap();
    let SendOutcome::Created(sent) = first else {
        panic!("{first:?}")
    };
    assert_eq!((sent.seq, sent.status.as_str()), (1, "sent"));
    messages::send(&db, &dm("m2", "u2", "u1", "c1", "dm:u1:u2"), &unlimited).unwrap();
    assert_eq!(seqs(&db, "u1"), [1, 2]);
    assert_eq!(seqs(&db, "u2"), [1, 2]);
    let page = reads::sync_page(&db, "u2", 0, 100).unwrap();
    assert_eq!(page.entries[0].sender.as_deref(), Some("u1"));
    assert_eq!(
        page.entries[0].content.as_deref(),
        Some(r#"{"text":"hi","type":"text"}"#)
    );
    assert_eq!((page.head, page.more), (2, false));
}

#[test]
fn duplicate_client_msg_id_returns_original_seq_and_writes_nothing() {
    each(duplicate_client_msg_id_returns_original_seq_and_writes_nothing_on);
}

fn duplicate_client_msg_id_returns_original_seq_and_writes_nothing_on(db: &dyn Sql) {
    users(&db, &["u1", "u2"], "acme");
    let SendOutcome::Created(first) =
        messages::send(&db, &dm("m1", "u1", "u2", "c1", "dm:u1:u2"), &unlimited).unwrap()
    else {
        panic!()
    };
    let again = messages::send(
        &db,
        &dm("m-other", "u1", "u2", "c1", "dm:u1:u2"),
        &unlimited,
    )
    .unwrap();
    assert_eq!(again, SendOutcome::Duplicate(first));
    assert_eq!(seqs(&db, "u2"), [1]);
    let mut changed = dm("m3", "u1", "u2", "c1", "dm:u1:u2");
    changed.fingerprint = "fp-other";
    assert!(matches!(
        messages::send(&db, &changed, &unlimited),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        db.query_i64("SELECT count(*) FROM messages", &[]).unwrap(),
        Some(1)
    );
}

#[test]
fn rate_limited_send_changes_nothing_but_retries_are_free() {
    each(rate_limited_send_changes_nothing_but_retries_are_free_on);
}

fn rate_limited_send_changes_nothing_but_retries_are_free_on(db: &dyn Sql) {
    users(&db, &["u1", "u2"], "acme");
    messages::send(&db, &dm("m1", "u1", "u2", "c1", "dm:u1:u2"), &unlimited).unwrap();
    let limited = |_: Option<(f64, i64)>| Err(3);
    let err = messages::send(&db, &dm("m2", "u1", "u2", "c2", "dm:u1:u2"), &limited).unwrap_err();
    assert_eq!(
        err,
        StoreError::RateLimited {
            retry_after_secs: 3
        }
    );
    assert_eq!(seqs(&db, "u1"), [1]);
    // The retry of the first message is answered even while limited.
    assert!(matches!(
        messages::send(&db, &dm("m1", "u1", "u2", "c1", "dm:u1:u2"), &limited),
        Ok(SendOutcome::Duplicate(_))
    ));
}

#[test]
fn group_message_reaches_every_member_and_control_entries_announce_changes() {
    each(group_message_reaches_every_member_and_control_entries_announce_changes_on);
}

fn group_message_reaches_every_member_and_control_entries_announce_changes_on(db: &dyn Sql) {
    users(&db, &["a", "b", "c", "d"], "acme");
    let info = directory::put_group(
        &db,
        "g1",
        "G",
        "a",
        &["a".into(), "b".into(), "c".into()],
        POLICY,
        5,
    )
    .unwrap();
    assert_eq!((info.version, info.members), (1, 3));
    assert_eq!(seqs(&db, "b"), [1], "control entry on creation");
    let msg = NewMessage {
        to: Recipients::Group {
            gid: "g1",
            members: 3,
        },
        ..dm("m1", "a", "", "c1", "g:g1")
    };
    messages::send(&db, &msg, &unlimited).unwrap();
    assert_eq!(seqs(&db, "c"), [1, 2]);
    assert_eq!(seqs(&db, "d"), Vec::<i64>::new());
    let info =
        directory::change_members(&db, "g1", &["d".into()], &["c".into()], 10_000, POLICY, 6)
            .unwrap();
    assert_eq!((info.version, info.members), (2, 3));
    let c = reads::sync_page(&db, "c", 2, 10).unwrap();
    assert_eq!(c.entries[0].kind, "control", "a removed member learns it");
    assert!(
        c.entries[0]
            .data
            .as_deref()
            .unwrap()
            .contains("\"version\":2")
    );
    assert_eq!(seqs(&db, "d"), [1]);
    assert!(directory::is_member(&db, "g1", "d").unwrap());
    assert!(!directory::is_member(&db, "g1", "c").unwrap());
}

#[test]
fn groups_over_the_control_limit_get_no_control_entries() {
    each(groups_over_the_control_limit_get_no_control_entries_on);
}

fn groups_over_the_control_limit_get_no_control_entries_on(db: &dyn Sql) {
    users(&db, &["a", "b", "c"], "acme");
    let small = ControlPolicy { max_members: 2 };
    directory::put_group(&db, "g", "G", "a", &["b".into(), "c".into()], small, 1).unwrap();
    assert!(seqs(&db, "a").is_empty());
}

#[test]
fn group_with_an_unknown_member_is_not_found_and_not_written() {
    each(group_with_an_unknown_member_is_not_found_and_not_written_on);
}

fn group_with_an_unknown_member_is_not_found_and_not_written_on(db: &dyn Sql) {
    users(&db, &["a"], "acme");
    let err = directory::put_group(&db, "g", "G", "a", &["ghost".into()], POLICY, 1).unwrap_err();
    assert_eq!(err, StoreError::NotFound("user ghost".into()));
    assert_eq!(directory::group_size(&db, "g").unwrap(), None);
    assert_eq!(
        db.query_i64("SELECT count(*) FROM members", &[]).unwrap(),
        Some(0)
    );
}

#[test]
fn relation_facts_cover_org_friend_and_shared_group() {
    each(relation_facts_cover_org_friend_and_shared_group_on);
}

fn relation_facts_cover_org_friend_and_shared_group_on(db: &dyn Sql) {
    users(&db, &["a", "b"], "acme");
    users(&db, &["x", "y"], "other");
    let facts = |a, b| directory::relation_facts(&db, a, b).unwrap();
    assert_eq!(
        facts("a", "b"),
        Some(RelationFacts {
            same_org: true,
            ..Default::default()
        })
    );
    assert_eq!(facts("a", "x"), Some(RelationFacts::default()));
    assert_eq!(facts("a", "ghost"), None);
    directory::put_relation(&db, "a", "x", "friend").unwrap();
    assert!(facts("x", "a").unwrap().friend, "relations are symmetric");
    directory::delete_relation(&db, "x", "a").unwrap();
    assert!(!facts("a", "x").unwrap().friend);
    directory::put_group(&db, "g", "G", "a", &["y".into()], POLICY, 1).unwrap();
    assert!(facts("y", "a").unwrap().shared_group);
}

#[test]
fn ack_is_monotonic_and_bounded_by_head() {
    each(ack_is_monotonic_and_bounded_by_head_on);
}

fn ack_is_monotonic_and_bounded_by_head_on(db: &dyn Sql) {
    users(&db, &["u1", "u2"], "acme");
    for (i, cmid) in ["a", "b", "c"].iter().enumerate() {
        messages::send(
            &db,
            &dm(&format!("m{i}"), "u1", "u2", cmid, "dm:u1:u2"),
            &unlimited,
        )
        .unwrap();
    }
    assert_eq!(devices::ack(&db, "u2", "phone", 2, 1).unwrap(), 2);
    assert_eq!(
        devices::ack(&db, "u2", "phone", 1, 2).unwrap(),
        2,
        "lower ack is a no-op"
    );
    assert_eq!(
        devices::ack(&db, "u2", "laptop", 1, 2).unwrap(),
        1,
        "per device"
    );
    assert!(matches!(
        devices::ack(&db, "u2", "phone", 4, 3),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn conversations_count_unread_from_others_newest_first() {
    each(conversations_count_unread_from_others_newest_first_on);
}

fn conversations_count_unread_from_others_newest_first_on(db: &dyn Sql) {
    users(&db, &["a", "b", "c"], "acme");
    messages::send(&db, &dm("m1", "b", "a", "1", "dm:a:b"), &unlimited).unwrap();
    messages::send(&db, &dm("m2", "b", "a", "2", "dm:a:b"), &unlimited).unwrap();
    let mut later = dm("m3", "a", "c", "3", "dm:a:c");
    later.sent_at = 2000;
    messages::send(&db, &later, &unlimited).unwrap();
    let convs = reads::conversations(&db, "a", 100).unwrap();
    let summary: Vec<(&str, i64)> = convs.iter().map(|c| (c.conv.as_str(), c.unread)).collect();
    assert_eq!(summary, [("dm:a:c", 0), ("dm:a:b", 2)]);
    assert_eq!(convs[1].last.msg_id.as_deref(), Some("m2"));
}

#[test]
fn history_pages_newest_first() {
    each(history_pages_newest_first_on);
}

fn history_pages_newest_first_on(db: &dyn Sql) {
    users(&db, &["a", "b"], "acme");
    for i in 0..5 {
        messages::send(
            &db,
            &dm(&format!("m{i}"), "a", "b", &format!("c{i}"), "dm:a:b"),
            &unlimited,
        )
        .unwrap();
    }
    let (page, more) = reads::history(&db, "b", "dm:a:b", None, 2).unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4]);
    assert!(more);
    let (page, more) = reads::history(&db, "b", "dm:a:b", Some(2), 2).unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
    assert!(!more);
}

#[test]
fn seqs_stay_dense_under_concurrent_writers() {
    for t in TestDb::all().unwrap() {
        eprintln!("on {}", t.dialect());
        let db = t.migrated().unwrap();
        users(&db, &["a", "b", "c"], "acme");
        directory::put_group(
            &db,
            "g",
            "G",
            "a",
            &["b".into(), "c".into()],
            ControlPolicy { max_members: 0 },
            0,
        )
        .unwrap();
        std::thread::scope(|scope| {
            for t_id in 0..4 {
                let t = &t;
                scope.spawn(move || {
                    let db = t.connect().unwrap();
                    for i in 0..50 {
                        let (msg_id, cmid) = (format!("m{t_id}-{i}"), format!("c{t_id}-{i}"));
                        // Both directions and the group, so writers lock overlapping
                        // user sets from either end.
                        let msg = match (t_id + i) % 3 {
                            0 => dm(&msg_id, "a", "b", &cmid, "dm:a:b"),
                            1 => dm(&msg_id, "b", "a", &cmid, "dm:a:b"),
                            _ => NewMessage {
                                to: Recipients::Group {
                                    gid: "g",
                                    members: 3,
                                },
                                ..dm(&msg_id, "c", "", &cmid, "g:g")
                            },
                        };
                        messages::send(&db, &msg, &unlimited).unwrap();
                    }
                });
            }
        });
        let count = |uid: &str| {
            db.query_i64("SELECT count(*) FROM entries WHERE uid = ?", &[uid.into()])
                .unwrap()
                .unwrap()
        };
        let group_sends = (0..4)
            .flat_map(|t| (0..50).map(move |i| (t + i) % 3))
            .filter(|k| *k == 2)
            .count() as i64;
        for (uid, expected) in [("a", 200), ("b", 200), ("c", group_sends)] {
            assert_eq!(count(uid), expected, "{uid}");
            let s = seqs(&db, uid);
            assert_eq!(
                s,
                (1..=expected).collect::<Vec<_>>(),
                "{uid}: dense, no gaps, no duplicates"
            );
            let ids: BTreeSet<_> = reads::sync_page(&db, uid, 0, 1000)
                .unwrap()
                .entries
                .into_iter()
                .map(|e| e.msg_id)
                .collect();
            assert_eq!(ids.len() as i64, expected);
        }
        assert_eq!(
            db.query_i64("SELECT count(*) FROM messages", &[]).unwrap(),
            Some(200)
        );
    }
}

#[test]
fn concurrent_duplicate_sends_store_one_message_and_answer_the_same() {
    for t in TestDb::all().unwrap() {
        eprintln!("on {}", t.dialect());
        let db = t.migrated().unwrap();
        users(&db, &["a", "b"], "acme");
        let outcomes: Vec<SendOutcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let t = &t;
                    scope.spawn(move || {
                        let db = t.connect().unwrap();
                        let msg_id = format!("m{i}");
                        messages::send(&db, &dm(&msg_id, "a", "b", "same", "dm:a:b"), &unlimited)
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created: Vec<_> = outcomes
            .iter()
            .filter_map(|o| match o {
                SendOutcome::Created(s) => Some(s.clone()),
                SendOutcome::Duplicate(_) => None,
            })
            .collect();
        assert_eq!(created.len(), 1, "{outcomes:?}");
        for o in &outcomes {
            let (SendOutcome::Created(s) | SendOutcome::Duplicate(s)) = o;
            assert_eq!(s, &created[0]);
        }
        assert_eq!(seqs(&db, "a"), [1]);
        assert_eq!(seqs(&db, "b"), [1]);
    }
}

#[test]
fn concurrent_claims_never_hand_one_job_to_two_workers_nor_exceed_the_key_cap() {
    use courier_store::jobs::{self, Lane, NewJob};
    for t in TestDb::all().unwrap() {
        eprintln!("on {}", t.dialect());
        let db = t.migrated().unwrap();
        for i in 0..60 {
            let (id, key) = (format!("j{i:02}"), format!("k{}", i % 4));
            let job = NewJob {
                id: &id,
                lane: Lane::High,
                kind: "test",
                key: (i % 2 == 0).then_some(key.as_str()),
                org: None,
                payload: "{}",
                run_at: 0,
            };
            jobs::enqueue(&db, &job, 0).unwrap();
        }
        let claimed: Vec<jobs::Claimed> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let t = &t;
                    scope.spawn(move || {
                        let db = t.connect().unwrap();
                        let mut mine = Vec::new();
                        for _ in 0..20 {
                            let lease = format!("w{w}");
                            mine.extend(
                                jobs::claim(&db, Lane::High, 3, 2, &lease, 30_000, 10).unwrap(),
                            );
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let ids: BTreeSet<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), claimed.len(), "a job claimed twice");
        for key in ["k0", "k2"] {
            let holders = claimed
                .iter()
                .filter(|c| c.key.as_deref() == Some(key))
                .count();
            assert_eq!(holders, 2, "{key}: the cap of 2 leases at once");
        }
        assert_eq!(
            claimed.len(),
            30 + 2 * 2,
            "every keyless job, capped keyed ones"
        );
        let leased = db
            .query_i64("SELECT count(*) FROM jobs WHERE lease IS NOT NULL", &[])
            .unwrap();
        assert_eq!(leased, Some(claimed.len() as i64));
    }
}

/// A bucket of `capacity` tokens that never refills.
fn fixed(capacity: f64) -> impl Fn(Option<(f64, i64)>) -> Result<(f64, i64), u64> {
    move |bucket| {
        let tokens = bucket.map_or(capacity, |(tokens, _)| tokens);
        if tokens >= 1.0 {
            Ok((tokens - 1.0, 0))
        } else {
            Err(1)
        }
    }
}

#[test]
fn concurrent_sends_of_one_org_spend_each_token_once_and_refusals_spend_none() {
    use courier_store::messages::Limits;
    for t in TestDb::all().unwrap() {
        eprintln!("on {}", t.dialect());
        let db = t.migrated().unwrap();
        let senders: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        let mut uids: Vec<&str> = senders.iter().map(String::as_str).collect();
        uids.push("peer");
        users(&db, &uids, "acme");
        // 8 senders × 5 sends at once, against an org bucket of 12 that every send
        // also locks: both buckets of each sender are created by the race itself.
        let (user, org) = (fixed(100.0), fixed(12.0));
        let sent: Vec<usize> = std::thread::scope(|scope| {
            let handles: Vec<_> = senders
                .iter()
                .map(|sender| {
                    let (t, user, org) = (&t, &user, &org);
                    scope.spawn(move || {
                        let db = t.connect().unwrap();
                        let limits = Limits {
                            user,
                            org: Some(org),
                            queue_share: None,
                        };
                        (0..5)
                            .filter(|i| {
                                let (id, cmid) = (format!("m-{sender}-{i}"), format!("c{i}"));
                                let conv = format!("dm:peer:{sender}");
                                let msg = dm(&id, sender, "peer", &cmid, &conv);
                                match messages::send_with(&db, &msg, &limits) {
                                    Ok(SendOutcome::Created(_)) => true,
                                    Err(StoreError::RateLimited {
                                        retry_after_secs: 1,
                                    }) => false,
                                    other => panic!("{other:?}"),
                                }
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(sent.iter().sum::<usize>(), 12, "{sent:?}");
        let tokens = |key: &str| {
            db.query_row(
                "SELECT tokens FROM rate_buckets WHERE key = ?",
                &[key.into()],
            )
            .unwrap()
            .and_then(|row| row[0].as_f64())
        };
        assert_eq!(tokens("org:acme"), Some(0.0));
        for (sender, sent) in senders.iter().zip(&sent) {
            // A refused send rolled its user token back with the rest.
            // (None: every send of it was refused, its bucket never created.)
            let expected = (*sent > 0).then_some(100.0 - *sent as f64);
            assert_eq!(tokens(&format!("user:{sender}")), expected, "{sender}");
        }
        assert_eq!(
            db.query_i64("SELECT count(*) FROM messages", &[]).unwrap(),
            Some(12)
        );
    }
}
