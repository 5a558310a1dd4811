//! Push decisions on real SQLite: who gets a push job, coalescing, the state a job
//! finds when it runs, registrations and vendor receipts.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use courier_store::directory::{self, ControlPolicy};
use courier_store::jobs::{self, Lane};
use courier_store::messages::{self, NewMessage, Recipients};
use courier_store::push::{self, Policy, Receipt, Registration};
use courier_store::sql::Sql;
use courier_store::testdb::TestDb;
use courier_store::{devices, fanout};

const CONTROL: ControlPolicy = ControlPolicy { max_members: 0 };
const POLICY: Policy = Policy {
    presence_ttl_ms: 60_000,
    delay_ms: 1_000,
    interval_ms: 10_000,
};

fn unlimited(_: Option<(f64, i64)>) -> Result<(f64, i64), u64> {
    Ok((1.0, 0))
}

/// Runs `test` on a fresh, migrated database of every backend holding `uids`.
fn each(uids: &[&str], test: impl Fn(&dyn Sql)) {
    for t in TestDb::all().unwrap() {
        eprintln!("on {}", t.dialect());
        let db = t.migrated().unwrap();
        for uid in uids {
            directory::put_user(&*db, uid, uid, "acme", 0).unwrap();
        }
        test(&*db);
    }
}

fn apns(device: &str, token: &str) -> Registration {
    Registration {
        device: device.into(),
        vendor: "apns".into(),
        token: token.into(),
        keys: None,
    }
}

fn send(db: &dyn Sql, n: usize, sender: &str, to: Recipients<'_>, conv: &str, at: i64) {
    let (msg_id, cmid) = (format!("m{n}"), format!("c{n}"));
    let msg = NewMessage {
        msg_id: &msg_id,
        sender,
        client_msg_id: &cmid,
        conv,
        content: r#"{"text":"hi","type":"text"}"#,
        fingerprint: &cmid,
        to,
        sent_at: at,
        from_queue: false,
        accepted_for_fanout: false,
        inline_fanout_max: 100,
        push: POLICY,
    };
    messages::send(db, &msg, &unlimited).unwrap();
}

/// `(id, generation, run_at)` of every push job.
fn push_jobs(db: &dyn Sql) -> Vec<(String, i64, i64)> {
    db.query(
        "SELECT id, generation, run_at FROM jobs WHERE kind = 'push' ORDER BY id",
        &[],
    )
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r[0].as_str().unwrap().to_string(),
            r[1].as_i64().unwrap(),
            r[2].as_i64().unwrap(),
        )
    })
    .collect()
}

#[test]
fn only_registered_offline_recipients_get_a_push_never_the_sender() {
    each(&["a", "b", "c", "d", "e"], |db| {
        for uid in ["a", "b", "c", "d"] {
            push::register(db, uid, &apns("phone", &format!("tok-{uid}")), 0).unwrap();
        }
        // c synced recently (online); e has no registration.
        devices::touch(db, "c", "web", 100_000, 0).unwrap();
        directory::put_group(
            &db,
            "g",
            "G",
            "a",
            &["a", "b", "c", "d", "e"].map(String::from),
            CONTROL,
            1,
        )
        .unwrap();
        send(
            db,
            1,
            "a",
            Recipients::Group {
                gid: "g",
                members: 5,
            },
            "g:g",
            120_000,
        );
        let ids: Vec<String> = push_jobs(db).into_iter().map(|j| j.0).collect();
        assert_eq!(ids, ["push:b", "push:d"]);
        let (_, _, run_at) = push_jobs(db)[0];
        assert_eq!(run_at, 121_000, "waits delay_ms to coalesce");

        // Once c's presence has expired, c is offline too.
        send(
            &db,
            2,
            "a",
            Recipients::Direct { peer: "c" },
            "dm:a:c",
            170_000,
        );
        let ids: Vec<String> = push_jobs(db).into_iter().map(|j| j.0).collect();
        assert_eq!(ids, ["push:b", "push:c", "push:d"]);
    });
}

#[test]
fn a_burst_coalesces_into_one_job_naming_the_newest_message() {
    each(&["a", "b"], |db| {
        push::register(db, "b", &apns("phone", "tok-b"), 0).unwrap();
        for n in 0..100 {
            send(
                &db,
                n,
                "a",
                Recipients::Direct { peer: "b" },
                "dm:a:b",
                1_000 + n as i64,
            );
        }
        let jobs = push_jobs(db);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].1, 99, "each later message bumped the generation");
        assert_eq!(jobs[0].2, 2_000, "the first message's deadline holds");

        let claimed = push::claim(db, 10, "w1", 30_000, 2_000).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].lane, Lane::Push);
        let pending = push::pending(db, &claimed[0], &POLICY, 2_000).unwrap();
        assert_eq!(pending.trigger.msg_id, "m99");
        assert_eq!(pending.unread, 100);
        assert!(pending.is_due());
        assert!(push::finish(db, &claimed[0], &POLICY, 2_500).unwrap());
        assert!(push_jobs(db).is_empty(), "nothing arrived meanwhile: done");
    });
}

#[test]
fn a_message_during_delivery_pushes_once_more_after_the_interval() {
    each(&["a", "b"], |db| {
        push::register(db, "b", &apns("phone", "tok-b"), 0).unwrap();
        send(
            &db,
            1,
            "a",
            Recipients::Direct { peer: "b" },
            "dm:a:b",
            1_000,
        );
        let claimed = push::claim(db, 10, "w1", 30_000, 2_000).unwrap();
        send(
            &db,
            2,
            "a",
            Recipients::Direct { peer: "b" },
            "dm:a:b",
            2_100,
        );
        assert!(push::finish(db, &claimed[0], &POLICY, 2_200).unwrap());
        let jobs = push_jobs(db);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].2, 12_200, "not before the interval");
        assert!(
            push::claim(db, 10, "w2", 30_000, 12_199)
                .unwrap()
                .is_empty()
        );
        assert_eq!(push::claim(db, 10, "w2", 30_000, 12_200).unwrap().len(), 1);
    });
}

#[test]
fn a_job_finds_nothing_due_for_users_who_came_online_or_acked() {
    each(&["a", "b"], |db| {
        push::register(db, "b", &apns("phone", "tok-b"), 0).unwrap();
        send(
            &db,
            1,
            "a",
            Recipients::Direct { peer: "b" },
            "dm:a:b",
            1_000,
        );
        let claimed = push::claim(db, 10, "w1", 30_000, 2_000).unwrap();
        devices::ack(db, "b", "tablet", 1, 1_500).unwrap();
        let acked = push::pending(db, &claimed[0], &POLICY, 70_000).unwrap();
        assert!(acked.acked && !acked.online && !acked.is_due());
        let online = push::pending(db, &claimed[0], &POLICY, 2_000).unwrap();
        assert!(online.online && !online.is_due());
        assert!(
            !push::finish(db, &claimed[0], &POLICY, 100_000).unwrap() || push_jobs(db).is_empty()
        );
    });
}

#[test]
fn the_worker_never_claims_push_jobs() {
    each(&["a", "b"], |db| {
        push::register(db, "b", &apns("phone", "tok-b"), 0).unwrap();
        send(
            &db,
            1,
            "a",
            Recipients::Direct { peer: "b" },
            "dm:a:b",
            1_000,
        );
        for lane in Lane::ALL {
            assert!(
                jobs::claim(db, lane, 10, 5, "w", 30_000, 5_000)
                    .unwrap()
                    .is_empty()
            );
        }
        assert_eq!(push::due_count(db, 5_000).unwrap(), 1);
    });
}

#[test]
fn large_group_fan_out_queues_pushes_per_chunk_set_based() {
    let uids: Vec<String> = (0..1000).map(|i| format!("u{i:04}")).collect();
    let refs: Vec<&str> = uids.iter().map(String::as_str).collect();
    each(&refs, |db| {
        for (i, uid) in uids.iter().enumerate() {
            if i % 3 == 0 {
                push::register(db, uid, &apns("phone", &format!("tok-{uid}")), 0).unwrap();
            }
            if i % 2 == 0 {
                devices::touch(db, uid, "web", 50_000, 0).unwrap();
            }
        }
        directory::put_group(db, "big", "Big", "u0000", &uids, CONTROL, 1).unwrap();
        send(
            &db,
            1,
            "u0000",
            Recipients::Group {
                gid: "big",
                members: 1000,
            },
            "g:big",
            60_000,
        );
        assert!(push_jobs(db).is_empty(), "the fan-out job writes them");
        let mut job = jobs::claim(db, Lane::for_group(1000), 1, 5, "w", 30_000, 60_000)
            .unwrap()
            .remove(0);
        loop {
            let (step, progress) = fanout::step(db, &job, 300, &POLICY, 60_001).unwrap();
            if step == fanout::Step::Done {
                break;
            }
            job.payload = serde_json::to_string(&progress).unwrap();
        }
        // Registered (i % 3 == 0), offline (i odd), not the sender (i = 0).
        let expected: Vec<String> = (0..1000)
            .filter(|i| i % 3 == 0 && i % 2 == 1)
            .map(|i| format!("push:u{i:04}"))
            .collect();
        let ids: Vec<String> = push_jobs(db).into_iter().map(|j| j.0).collect();
        assert_eq!(ids, expected);
    });
}

#[test]
fn registrations_move_with_their_token_and_receipts_drop_dead_tokens() {
    each(&["a", "b"], |db| {
        push::register(db, "a", &apns("phone", "tok-1"), 0).unwrap();
        // The same phone signs in as b: a must not get b's pushes or vice versa.
        push::register(db, "b", &apns("phone", "tok-1"), 1).unwrap();
        assert!(push::registrations(db, "a").unwrap().is_empty());
        assert_eq!(
            push::registrations(db, "b").unwrap(),
            [apns("phone", "tok-1")]
        );
        assert!(matches!(
            push::register(db, "ghost", &apns("x", "tok-2"), 0),
            Err(courier_store::StoreError::NotFound(_))
        ));

        send(
            &db,
            1,
            "a",
            Recipients::Direct { peer: "b" },
            "dm:a:b",
            1_000,
        );
        let claimed = push::claim(db, 10, "w1", 30_000, 2_000).unwrap();
        let attempt = push::attempt_id(&claimed[0]);
        let delivery = push::Delivery {
            uid: "b",
            device: "phone",
            vendor: "apns",
            token: "tok-1",
            state: "sent",
            vendor_id: Some("apns-id-1"),
            detail: None,
            unread: 1,
        };
        push::record(db, &attempt, &delivery, 2_000).unwrap();
        assert_eq!(push::served_devices(db, &attempt).unwrap(), ["phone"]);
        let receipt = Receipt {
            vendor: "apns",
            vendor_id: Some("apns-id-1"),
            token: Some("tok-1"),
            state: "token_gone",
            detail: Some("Unregistered"),
        };
        assert_eq!(
            push::apply_callback(
                &db,
                "apns",
                "n1",
                600_000,
                std::slice::from_ref(&receipt),
                3_000
            )
            .unwrap(),
            Some(1)
        );
        assert_eq!(
            push::apply_callback(
                &db,
                "apns",
                "n1",
                600_000,
                std::slice::from_ref(&receipt),
                3_001
            )
            .unwrap(),
            None,
            "a replayed nonce changes nothing"
        );
        assert!(push::registrations(db, "b").unwrap().is_empty());
        let unknown = Receipt {
            vendor_id: Some("nope"),
            ..receipt
        };
        assert_eq!(
            push::apply_callback(db, "apns", "n2", 600_000, &[unknown], 3_000).unwrap(),
            Some(0)
        );
        assert!(push::unregister(db, "b", "phone").is_ok_and(|found| !found));
    });
}

#[test]
fn the_next_push_of_a_user_is_a_new_attempt_that_serves_every_device_again() {
    each(&["a", "b"], |db| {
        push::register(db, "b", &apns("phone", "tok-1"), 0).unwrap();
        let dm = || Recipients::Direct { peer: "b" };
        send(db, 1, "a", dm(), "dm:a:b", 1_000);
        let first = push::claim(db, 10, "w1", 30_000, 2_000).unwrap();
        let attempt = push::attempt_id(&first[0]);
        let delivery = push::Delivery {
            uid: "b",
            device: "phone",
            vendor: "apns",
            token: "tok-1",
            state: "sent",
            vendor_id: None,
            detail: None,
            unread: 1,
        };
        push::record(db, &attempt, &delivery, 2_000).unwrap();
        assert!(push::finish(db, &first[0], &POLICY, 2_000).unwrap());
        assert!(push_jobs(db).is_empty(), "done: the job is deleted");

        // A later message queues a new job, at generation 0 again.
        send(db, 2, "a", dm(), "dm:a:b", 5_000);
        let second = push::claim(db, 10, "w2", 30_000, 6_000).unwrap();
        assert_eq!(second[0].generation, first[0].generation);
        let next = push::attempt_id(&second[0]);
        assert_ne!(next, attempt);
        assert!(
            push::served_devices(db, &next).unwrap().is_empty(),
            "the phone is owed the new push"
        );
        // A retry of that job is the same attempt.
        jobs::fail(db, &second[0], "vendor 503", 6_500, 1_800_000, 6_000).unwrap();
        let retry = push::claim(db, 10, "w3", 30_000, 7_000).unwrap();
        assert_eq!(push::attempt_id(&retry[0]), next);
    });
}

#[test]
fn a_token_invalid_receipt_naming_only_the_vendor_id_drops_that_registration() {
    each(&["a", "b"], |db| {
        push::register(db, "b", &apns("phone", "tok-1"), 0).unwrap();
        push::register(db, "b", &apns("tablet", "tok-2"), 0).unwrap();
        send(
            db,
            1,
            "a",
            Recipients::Direct { peer: "b" },
            "dm:a:b",
            1_000,
        );
        let claimed = push::claim(db, 10, "w1", 30_000, 2_000).unwrap();
        let attempt = push::attempt_id(&claimed[0]);
        for (device, token, id) in [("phone", "tok-1", "id-1"), ("tablet", "tok-2", "id-2")] {
            let delivery = push::Delivery {
                uid: "b",
                device,
                vendor: "apns",
                token,
                state: "sent",
                vendor_id: Some(id),
                detail: None,
                unread: 1,
            };
            push::record(db, &attempt, &delivery, 2_000).unwrap();
        }
        let receipt = Receipt {
            vendor: "apns",
            vendor_id: Some("id-1"),
            token: None,
            state: "token_gone",
            detail: None,
        };
        let applied = push::apply_callback(db, "signed", "n1", 600_000, &[receipt], 3_000);
        assert_eq!(applied.unwrap(), Some(1));
        assert_eq!(
            push::registrations(db, "b").unwrap(),
            [apns("tablet", "tok-2")]
        );
    });
}
