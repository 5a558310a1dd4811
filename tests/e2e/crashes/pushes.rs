//! Pushes after the crashes: every offline user was notified through the fake Web
//! Push service, and a user who acks everything gets no push afterwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use courier_store::Sql;
use serde_json::json;

use super::workload::{Cast, Ledger, PHONE, Sent, To};
use super::{PUSH_DELAY_MS, drained, invariants};
use crate::client::{Client, Expect, device_token, text_to_user};
use crate::harness::Gateway;
use crate::vendors::{FakeVendors, Target};

/// Every offline user (all registered, none ever synced, all with unread messages)
/// got a push naming a message of theirs; nobody else got one. Registering again,
/// across kills too, left one registration per phone.
pub fn check_pushes(
    db: &dyn Sql,
    fake: &FakeVendors,
    cast: &Cast,
    ledger: &Ledger,
) -> BTreeMap<String, usize> {
    let registered: Vec<String> = db
        .query(
            "SELECT uid, device, vendor FROM push_devices ORDER BY uid, device",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let phones: Vec<String> = cast
        .offline
        .iter()
        .map(|u| format!("{u} {PHONE} webpush"))
        .collect();
    assert_eq!(
        registered, phones,
        "one registration per offline user's phone"
    );
    fake.assert_checks_passed();
    let mut per_user = BTreeMap::new();
    for push in fake.pushes() {
        let n = &push.notification;
        let uid = n["uid"].as_str().unwrap_or_default().to_string();
        assert_eq!(push.target, Target::WebPush(uid.clone()), "{n}");
        assert!(cast.offline.contains(&uid), "a push to {uid}: {n}");
        assert!(n["unread"].as_i64() > Some(0), "{n}");
        let named = ledger.sends.iter().find(|s| s.msg_id() == n["msg_id"]);
        assert!(
            named.is_some_and(|s| invariants::holders(cast, s).contains(&uid)),
            "a push naming a message not in {uid}'s stream: {n}"
        );
        *per_user.entry(uid).or_insert(0) += 1;
    }
    for uid in &cast.offline {
        assert!(
            per_user.contains_key(uid),
            "{uid} got no push: {per_user:?}"
        );
    }
    per_user
}

/// A message to each offline user, which the user's phone acks at once, well within
/// the push delay: no push may follow the ack. Returns the sends (accepted, for the
/// invariants).
pub fn acked_users_get_no_push(
    gw: &Gateway,
    db: &dyn Sql,
    fake: &FakeVendors,
    cast: &Cast,
) -> Vec<Sent> {
    let client = Client::of(gw);
    let sender = &cast.actives[0];
    let mut sends = Vec::new();
    let mut acked_at = BTreeMap::new();
    for uid in &cast.offline {
        for attempt in 0.. {
            assert!(
                attempt < 3,
                "{uid}: send, sync and ack took over 2 s thrice"
            );
            let began = Instant::now();
            let body = text_to_user(&format!("last.{uid}.{attempt}"), uid, "read me");
            let answer = client.send_as(sender, &body).expect_json(201);
            sends.push(Sent {
                sender: sender.clone(),
                to: To::User(uid.clone()),
                body,
                answer,
            });
            let phone = device_token(uid, PHONE);
            let head = client.sync(&phone, "after=0&limit=1").expect_json(200)["head"].clone();
            let acked = client.ack(&phone, head.as_i64().unwrap()).expect_json(200);
            assert_eq!(acked, json!({ "acked": head }));
            if began.elapsed() < Duration::from_millis(PUSH_DELAY_MS - 1_000) {
                acked_at.insert(uid.clone(), Instant::now());
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(PUSH_DELAY_MS));
    drained(gw, db);
    for push in fake.pushes() {
        let uid = push.notification["uid"].as_str().unwrap_or_default();
        assert!(
            acked_at.get(uid).is_none_or(|acked| push.at < *acked),
            "{uid} got a push after acking everything: {}",
            push.notification
        );
    }
    sends
}
