//! Who gets a push and when: one coalesced push per offline user and device, none to
//! the online or caught-up, previews in groups, and once more after the interval for
//! a message that arrives while a push is in flight.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Push, apns_token, start, token_registration};
use crate::client::{Expect, text_to_group, text_to_user, user_token};
use crate::vendors::{Answer, Target};

/// Keeps `uid` online (a sync every 200 ms) until the returned flag is set.
fn keep_online(p: &Push, uid: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let client = p.api.client().clone();
    let token = user_token(uid);
    client.sync(&token, "after=0").expect_json(200);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !stopped.load(Ordering::SeqCst) {
            client.sync(&token, "after=0&limit=1").expect_json(200);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    (stop, thread)
}

#[test]
fn a_burst_of_100_messages_gives_each_offline_user_one_push_per_vendor_with_the_unread_total() {
    const DELAY_MS: u64 = 6000;
    const PRESENCE_TTL_MS: u64 = 2000;
    let p = start(&[
        ("SPIN_VARIABLE_PUSH_DELAY_MS", "6000"),
        ("SPIN_VARIABLE_PRESENCE_TTL_SECS", "2"),
        ("SPIN_VARIABLE_RATE_BURST", "1000"),
        ("SPIN_VARIABLE_RATE_PER_USER_PER_SEC", "1000"),
    ]);
    let everyone = ["cs", "cw", "ca", "cf", "ch", "co", "ck", "cl"];
    p.users("c", &everyone);
    p.api.group("cg", "cs", &everyone);
    p.registered("cs", "cs-web", &p.fake.webpush_registration("cs"));
    p.registered("cw", "cw-web", &p.fake.webpush_registration("cw"));
    p.registered(
        "ca",
        "ca-ios",
        &token_registration("apns", &apns_token(0xca)),
    );
    p.registered(
        "cf",
        "cf-android",
        &token_registration("fcm", "fcm-token-cf"),
    );
    p.registered(
        "ch",
        "ch-huawei",
        &token_registration("hms", "hms-token-ch"),
    );
    p.registered("co", "co-web", &p.fake.webpush_registration("co"));
    p.registered("ck", "ck-web", &p.fake.webpush_registration("ck"));
    p.registered("cl", "cl-web", &p.fake.webpush_registration("cl"));
    let (online, syncing) = keep_online(&p, "co");

    // 100 messages from four threads, well inside the coalescing delay.
    let started = Instant::now();
    let client = p.api.client();
    let sent: BTreeSet<String> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..4)
            .map(|t| {
                scope.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let n = t * 25 + i;
                            let body = text_to_group(&format!("burst-{n}"), "cg", &format!("#{n}"));
                            let sent = client.send_as("cs", &body).expect_json(201);
                            sent["msg_id"].as_str().unwrap().to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        senders
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect()
    });
    assert_eq!(sent.len(), 100);
    // `ck` reads and acks everything on its phone, then goes offline.
    let ck = user_token("ck");
    let head = p.api.sync(&ck, "after=0&limit=500").expect_json(200)["head"]
        .as_i64()
        .unwrap();
    assert_eq!(
        p.api.ack(&ck, head).expect_json(200),
        json!({ "acked": head })
    );
    let caught_up = started.elapsed();
    // `cl` was offline while the burst arrived, and comes online before the push.
    let (late, late_syncing) = keep_online(&p, "cl");
    assert!(
        caught_up + Duration::from_millis(PRESENCE_TTL_MS + 500) < Duration::from_millis(DELAY_MS),
        "sending and acking took {caught_up:?}: too slow for the coalescing window"
    );

    let expected = [
        ("cw", Target::WebPush("cw".into())),
        ("ca", Target::Apns(apns_token(0xca))),
        ("cf", Target::Fcm("fcm-token-cf".into())),
        ("ch", Target::Hms("hms-token-ch".into())),
    ];
    p.settle("a push to each offline user", || p.fake.pushes().len() >= 4);
    for (flag, thread) in [(online, syncing), (late, late_syncing)] {
        flag.store(true, Ordering::SeqCst);
        thread.join().unwrap();
    }
    p.fake.assert_checks_passed();

    let pushes = p.fake.pushes();
    let targets: Vec<&Target> = pushes.iter().map(|s| &s.target).collect();
    assert_eq!(
        pushes.len(),
        4,
        "one push per offline user; none to the sender, the online, the acked or the one \
         who came online: {targets:?}"
    );
    for (uid, target) in &expected {
        let seen = p.fake.seen(target);
        assert_eq!(seen.len(), 1, "{uid}: exactly one push");
        let push = &seen[0];
        assert!(
            push.at >= started + Duration::from_millis(DELAY_MS - 50),
            "{uid}: the push waited for the burst to coalesce"
        );
        let n = &push.notification;
        assert_eq!(
            (&n["type"], &n["uid"], &n["conv"], &n["unread"]),
            (&json!("message"), &json!(uid), &json!("g:cg"), &json!(100)),
            "{uid}: {n}"
        );
        let msg_id = n["msg_id"].as_str().unwrap();
        assert!(sent.contains(msg_id));
        assert_eq!(
            msg_id,
            p.newest_message(uid),
            "{uid}: names the newest message"
        );
        assert!(
            n.get("sender").is_none() && n.get("text").is_none(),
            "previews are off by default: {n}"
        );
        let deliveries = p.deliveries(uid);
        assert_eq!(deliveries.len(), 1, "{uid}: {deliveries:?}");
        assert_eq!(
            (deliveries[0].state.as_str(), deliveries[0].unread),
            ("sent", 100)
        );
    }
    let apns = &p.fake.seen(&expected[1].1)[0];
    assert_eq!(apns.body["aps"]["badge"], 100);
    assert_eq!(
        apns.body["aps"]["alert"],
        json!({ "loc-key": "COURIER_NEW_MESSAGE" }),
        "no text leaves the server without previews"
    );
    assert!(p.fake.seen(&expected[3].1)[0].body["message"]["android"]["notification"].is_null());
    for quiet in ["cs", "co", "ck", "cl"] {
        assert!(p.deliveries(quiet).is_empty(), "{quiet} got a push");
    }
}

#[test]
fn a_group_message_pushes_each_offline_member_once_with_a_preview_when_enabled() {
    let p = start(&[
        ("SPIN_VARIABLE_PUSH_DELAY_MS", "200"),
        ("SPIN_VARIABLE_PUSH_PREVIEW", "true"),
    ]);
    let members = ["gs", "g1", "g2", "g3", "g4"];
    p.users("g", &members);
    p.api.group("team", "gs", &members);
    p.registered("gs", "gs-web", &p.fake.webpush_registration("gs"));
    p.registered("g1", "g1-web", &p.fake.webpush_registration("g1"));
    p.registered(
        "g2",
        "g2-ios",
        &token_registration("apns", &apns_token(0x02)),
    );
    p.registered(
        "g3",
        "g3-android",
        &token_registration("fcm", "fcm-token-g3"),
    );
    p.registered(
        "g4",
        "g4-huawei",
        &token_registration("hms", "hms-token-g4"),
    );
    let sent = p
        .api
        .send_as("gs", &text_to_group("team-1", "team", "standup in 5"))
        .expect_json(201);
    p.settle("a push to each member", || p.fake.pushes().len() >= 4);
    p.fake.assert_checks_passed();

    let pushes = p.fake.pushes();
    assert_eq!(pushes.len(), 4, "not to the sender");
    let mut uids: Vec<&str> = pushes
        .iter()
        .map(|s| s.notification["uid"].as_str().unwrap())
        .collect();
    uids.sort_unstable();
    assert_eq!(uids, ["g1", "g2", "g3", "g4"]);
    for push in &pushes {
        let n = &push.notification;
        assert_eq!(
            (&n["conv"], &n["msg_id"], &n["unread"]),
            (&json!("g:team"), &sent["msg_id"], &json!(1)),
            "{n}"
        );
        assert_eq!(
            (&n["sender"], &n["text"]),
            (&json!("GS"), &json!("standup in 5")),
            "{:?}",
            push.target
        );
    }
    let apns = &p.fake.seen(&Target::Apns(apns_token(0x02)))[0];
    assert_eq!(
        apns.body["aps"]["alert"],
        json!({ "title": "GS", "body": "standup in 5" })
    );
    assert_eq!(
        apns.header("apns-collapse-id"),
        apns.body["aps"]["thread-id"].as_str(),
        "one conversation, one collapse id"
    );
    let hms = &p.fake.seen(&Target::Hms("hms-token-g4".into()))[0];
    let shown: &Value = &hms.body["message"]["android"]["notification"];
    assert_eq!(
        (&shown["title"], &shown["body"]),
        (&json!("GS"), &json!("standup in 5"))
    );
}

#[test]
fn a_message_arriving_during_a_delivery_is_pushed_once_more_after_the_interval() {
    let p = start(&[
        ("SPIN_VARIABLE_PUSH_DELAY_MS", "200"),
        ("SPIN_VARIABLE_PUSH_INTERVAL_MS", "1000"),
    ]);
    p.users("i", &["is", "ir"]);
    p.registered("ir", "ir-web", &p.fake.webpush_registration("ir"));
    let web = Target::WebPush("ir".into());
    let slow = Answer::status(201).after(Duration::from_millis(1500));
    p.fake.script(web.clone(), [slow]);

    p.api
        .send_as("is", &text_to_user("i-1", "ir", "one"))
        .expect_json(201);
    // Only watched, not drained: a drain call would wait for the slow push to end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.fake.seen(&web).is_empty() {
        assert!(Instant::now() < deadline, "the first push never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = p
        .api
        .send_as("is", &text_to_user("i-2", "ir", "two"))
        .expect_json(201);
    p.settle("the second push", || p.fake.seen(&web).len() >= 2);
    p.fake.assert_checks_passed();

    let seen = p.fake.seen(&web);
    assert_eq!(seen.len(), 2, "two pushes, no more");
    assert_eq!(seen[0].notification["unread"], 1);
    assert_eq!(
        (
            &seen[1].notification["unread"],
            &seen[1].notification["msg_id"]
        ),
        (&json!(2), &second["msg_id"])
    );
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(2400),
        "the second push came the interval after the slow first one ended: {gap:?}"
    );
    let deliveries = p.deliveries("ir");
    assert_eq!(deliveries.len(), 2, "two attempts recorded: {deliveries:?}");
    assert!(deliveries.iter().all(|d| d.state == "sent"));
}

/// APNs speaks only HTTP/2 over TLS: the app host negotiates `h2` by ALPN, as Spin
/// does, and trusts the vendor's CA through the runtime config's `[[client_tls]]`.
#[test]
fn apns_is_reached_over_tls_and_http2_with_a_ca_from_the_runtime_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = super::start_apns_h2(dir.path());
    p.users("h", &["hs", "hi", "hj", "hw"]);
    p.registered(
        "hi",
        "hi-ios",
        &token_registration("apns", &apns_token(0x2a)),
    );
    p.registered("hw", "hw-web", &p.fake.webpush_registration("hw"));
    let sent = p
        .api
        .send_as("hs", &text_to_user("h2-1", "hi", "over h2"))
        .expect_json(201);
    p.api
        .send_as("hs", &text_to_user("h2-2", "hw", "over h1"))
        .expect_json(201);
    p.settle("a push to each", || p.fake.pushes().len() >= 2);
    p.fake.assert_checks_passed();

    let apns = p.fake.seen(&Target::Apns(apns_token(0x2a)));
    assert_eq!(apns.len(), 1, "{apns:?}");
    assert_eq!(apns[0].version, http::Version::HTTP_2);
    assert_eq!(apns[0].status, 200);
    assert_eq!(apns[0].notification["msg_id"], sent["msg_id"]);
    let delivered = p.deliveries("hi");
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].state, "sent", "{delivered:?}");
    assert!(
        delivered[0]
            .vendor_id
            .as_deref()
            .is_some_and(|id| id.starts_with("0e2e")),
        "the apns-id of the HTTP/2 answer: {delivered:?}"
    );
    // A second push, after the first is done, goes over the same connection: APNs
    // asks providers to keep theirs open, and both hosts pool them.
    p.registered(
        "hj",
        "hj-ios",
        &token_registration("apns", &apns_token(0x2b)),
    );
    p.api
        .send_as("hs", &text_to_user("h2-3", "hj", "again"))
        .expect_json(201);
    p.settle("the second APNs push", || {
        !p.fake.seen(&Target::Apns(apns_token(0x2b))).is_empty()
    });
    p.fake.assert_checks_passed();
    assert_eq!(p.fake.apns_h2_connections(), 1, "one pooled connection");

    // The other vendors are plain HTTP/1.1 (http://), sent as before.
    let web = p.fake.pushes();
    assert!(
        web.iter()
            .any(|s| matches!(&s.target, Target::WebPush(_)) && s.version == http::Version::HTTP_11),
        "{web:?}"
    );
}

/// Without the runtime config's CA, the APNs certificate is not trusted: the push is
/// never sent in the clear or to an unverified server, and is not recorded as sent.
#[test]
fn apns_with_an_untrusted_certificate_is_never_sent() {
    let p = super::start_on(crate::vendors::FakeVendors::start_with_apns_h2(), &[], &[]);
    p.users("u", &["us", "ui"]);
    p.registered(
        "ui",
        "ui-ios",
        &token_registration("apns", &apns_token(0x2c)),
    );
    p.api
        .send_as("us", &text_to_user("u-1", "ui", "not trusted"))
        .expect_json(201);
    p.wait_until("a TLS handshake with the APNs fake", || {
        p.fake.apns_h2_connections() >= 1
    });
    p.drain();
    assert!(p.fake.seen(&Target::Apns(apns_token(0x2c))).is_empty());
    assert!(
        p.deliveries("ui").iter().all(|d| d.state != "sent"),
        "{:?}",
        p.deliveries("ui")
    );
    let failures = p.fake.failures();
    assert!(
        !failures.is_empty() && failures.iter().all(|f| f.contains("TLS handshake failed")),
        "{failures:?}"
    );
}
