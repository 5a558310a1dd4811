//! Two gateway processes on one PostgreSQL database (run with
//! `COURIER_TEST_DATABASE_URL`): concurrent sends through both — 1:1 in both
//! directions, duplicates of one `client_msg_id` split across them, a 10,000-member
//! group — while both drain the queue. Afterwards every stream is dense with each
//! message once, and every duplicate got the first answer's body.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use courier_store::sql::Sql;
use serde_json::{Value, json};

use crate::client::{JWT_SECRET, admin_token, text_to_group, text_to_user, user_token};
use crate::harness::{Gateway, call};

const MEMBERS: usize = 10_000;

fn send(base: &str, uid: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {}", user_token(uid));
    let reply = call(
        "POST",
        &format!("{base}/v1/messages"),
        &[("authorization", &auth)],
        Some(body.to_string().as_bytes()),
    );
    (reply.status, reply.json())
}

#[test]
fn two_gateways_on_one_postgres_keep_every_stream_dense_and_sends_idempotent() {
    if courier_store::testdb::postgres_url().is_none() {
        eprintln!("needs {} (a PostgreSQL server)", courier_store::testdb::ENV);
        return;
    }
    let env = [
        ("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET),
        (
            "SPIN_VARIABLE_INTERNAL_SECRET",
            "e2e-internal-secret-0123456789",
        ),
        ("SPIN_VARIABLE_RATE_PER_USER_PER_SEC", "100000"),
        ("SPIN_VARIABLE_RATE_BURST", "100000"),
    ];
    let a = Gateway::start("spin.toml", &env);
    let b = Gateway::start_replica("spin.toml", &a, &env);
    let bases = [a.base.clone(), b.base.clone()];
    let admin = format!("Bearer {}", admin_token());
    let uids: Vec<String> = (0..MEMBERS).map(|i| format!("r{i:05}")).collect();
    std::thread::scope(|scope| {
        for (n, part) in uids.chunks(MEMBERS / 8).enumerate() {
            let (base, admin) = (&bases[n % 2], &admin);
            scope.spawn(move || {
                for u in part {
                    let body = json!({ "name": u, "org": "one" }).to_string();
                    let reply = call(
                        "PUT",
                        &format!("{base}/v1/users/{u}"),
                        &[("authorization", admin)],
                        Some(body.as_bytes()),
                    );
                    assert_eq!(reply.status, 200, "{}", reply.body);
                }
            });
        }
    });
    let body = json!({ "name": "All", "owner": uids[0], "members": uids }).to_string();
    let reply = call(
        "PUT",
        &format!("{}/v1/groups/all", bases[1]),
        &[("authorization", &admin)],
        Some(body.as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Eight senders, each through both gateways in turn: 1:1 both ways among the
    // first users, group sends, and every tenth message sent twice at once, once
    // through each gateway.
    let answers: Vec<(String, Vec<(u16, Value)>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (uids, bases) = (&uids, &bases);
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    for i in 0..30 {
                        let from = &uids[w];
                        let cmid = format!("w{w}-{i}");
                        let body = match i % 3 {
                            0 => text_to_group(&cmid, "all", "to all"),
                            _ => text_to_user(&cmid, &uids[(w + 1 + i % 2) % 8], "hi"),
                        };
                        let key = format!("{from}/{cmid}");
                        if i % 10 == 0 {
                            let pair: Vec<(u16, Value)> = std::thread::scope(|s| {
                                let twice: Vec<_> = bases
                                    .iter()
                                    .map(|base| s.spawn(|| send(base, from, &body)))
                                    .collect();
                                twice.into_iter().map(|t| t.join().unwrap()).collect()
                            });
                            answers.push((key, pair));
                        } else {
                            answers.push((key, vec![send(&bases[i % 2], from, &body)]));
                        }
                    }
                    answers
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    for (key, replies) in &answers {
        let created = replies.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(created, 1, "{key}: one send creates: {replies:?}");
        for (status, body) in replies {
            assert!(*status == 201 || *status == 200, "{key}: {status} {body}");
            assert_eq!(body, &replies[0].1, "{key}: identical bodies");
        }
    }

    // Both gateways drain; wait for the queue to empty (but for the recurring
    // retention job, which is always scheduled).
    let db = a.db();
    let deadline = Instant::now() + Duration::from_secs(240);
    while db
        .query_i64("SELECT count(*) FROM jobs WHERE kind <> 'retention'", &[])
        .unwrap()
        != Some(0)
    {
        assert!(Instant::now() < deadline, "the queue did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
    let group_messages = db
        .query_i64("SELECT count(*) FROM messages WHERE conv = 'g:all'", &[])
        .unwrap()
        .unwrap();
    assert_eq!(group_messages, 8 * 10, "one message per client_msg_id");
    let per_user: BTreeMap<String, (i64, i64, i64)> = db
        .query(
            "SELECT uid, count(*), min(seq), max(seq) FROM entries GROUP BY uid",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| {
            let n = |i: usize| r[i].as_i64().unwrap();
            (r[0].as_str().unwrap().to_string(), (n(1), n(2), n(3)))
        })
        .collect();
    let duplicates = db
        .query(
            "SELECT uid, msg_id FROM entries WHERE kind = 'message'
             GROUP BY uid, msg_id HAVING count(*) > 1 LIMIT 5",
            &[],
        )
        .unwrap();
    assert!(
        duplicates.is_empty(),
        "a message twice in a stream: {duplicates:?}"
    );
    let in_group: BTreeSet<String> = uids.iter().cloned().collect();
    for u in &in_group {
        let (count, min, max) = per_user[u];
        assert_eq!(
            (min, max),
            (1, count),
            "{u}: dense seqs, no gaps, no duplicates"
        );
        assert!(count >= group_messages, "{u}: every group message");
    }
    let heads = db
        .query("SELECT uid, head_seq FROM users", &[])
        .unwrap()
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap()))
        .collect::<BTreeMap<_, _>>();
    for (u, (count, ..)) in &per_user {
        assert_eq!(heads[u], *count, "{u}: head_seq is the last seq");
    }
}
