//! `POST /v1/messages` end to end: delivery to direct and group streams, idempotency
//! (also under 50 concurrent retries), dense seqs under concurrent senders, and the
//! `sent` / `accepted` boundary of `inline_fanout_max`. Refused sends are in
//! `send_refusals`; token checks, shared by every route, in `routes`.

use std::sync::Barrier;

use serde_json::{Value, json};

use crate::client::{Api, Expect, device_token, text_to_group, text_to_user, user_token};

#[test]
fn direct_message_is_201_sent_and_lands_in_both_streams() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    let sent = api
        .send_as("bob", &text_to_user("c1", "ann", "hi"))
        .expect_json(201);
    assert_eq!(sent["conv"], "dm:ann:bob", "the two ids sorted");
    assert_eq!(
        (sent["seq"].as_i64(), sent["status"].as_str()),
        (Some(1), Some("sent"))
    );
    assert!(
        sent["msg_id"].is_string() && sent["sent_at"].is_i64(),
        "{sent}"
    );
    let expected = json!({
        "seq": 1, "kind": "message", "conv": "dm:ann:bob", "msg_id": sent["msg_id"],
        "client_msg_id": "c1", "from": "bob", "sent_at": sent["sent_at"],
        "content": {"type": "text", "text": "hi"},
    });
    for uid in ["ann", "bob"] {
        let entries = api.stream(uid).entries;
        assert_eq!(
            entries,
            std::slice::from_ref(&expected),
            "{uid}: the sender has a copy"
        );
    }

    let image = json!({"type": "image", "url": "https://cdn.example/a.png", "name": "a.png",
                       "size": 1234, "mime": "image/png"});
    let custom = json!({"type": "custom", "data": {"poll": {"options": ["a", "b"]}}});
    for (cid, content, priority) in [("c2", &image, "high"), ("c3", &custom, "low")] {
        let body = json!({"client_msg_id": cid, "to": {"user": "bob"}, "content": content,
                          "priority": priority});
        api.send_as("ann", &body).expect_json(201);
    }
    let bob = api.stream("bob");
    assert_eq!(bob.client_msg_ids(), ["c1", "c2", "c3"]);
    assert_eq!(
        (&bob.entries[1]["content"], &bob.entries[2]["content"]),
        (&image, &custom)
    );
}

#[test]
fn message_to_yourself_lands_once_in_your_stream() {
    let api = Api::start();
    api.user("ann", "acme");
    let sent = api
        .send_as("ann", &text_to_user("c1", "ann", "note"))
        .expect_json(201);
    assert_eq!(
        (sent["conv"].as_str(), sent["seq"].as_i64()),
        (Some("dm:ann:ann"), Some(1))
    );
    assert_eq!(api.stream("ann").client_msg_ids(), ["c1"]);
}

#[test]
fn group_message_reaches_every_member_including_the_sender() {
    let api = Api::start();
    for uid in ["u1", "u2", "u3", "u4"] {
        api.user(uid, "acme");
    }
    api.group("g1", "u1", &["u2", "u3"]);
    let sent = api
        .send_as("u2", &text_to_group("c1", "g1", "hello all"))
        .expect_json(201);
    assert_eq!(sent["conv"], "g:g1");
    assert_eq!(sent["seq"], 2, "after the group's control entry");
    for uid in ["u1", "u2", "u3"] {
        let stream = api.stream(uid);
        let messages = stream.messages();
        assert_eq!(messages.len(), 1, "{uid}");
        assert_eq!(messages[0]["msg_id"], sent["msg_id"]);
        assert_eq!(messages[0]["from"], "u2");
    }
    assert_eq!(api.stream("u4").head, 0, "not a member");
}

#[test]
fn duplicate_client_msg_id_returns_the_original_body() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "acme");
    let body = json!({"client_msg_id": "c1", "to": {"user": "u2"},
                      "content": {"type": "custom", "data": {"a": 1, "b": [true]}}});
    let first = api.send_as("u1", &body);
    assert_eq!(first.status, 201, "{}", first.body);
    let reordered = json!({"content": {"data": {"b": [true], "a": 1}, "type": "custom"},
                           "to": {"user": "u2"}, "client_msg_id": "c1"});
    api.unchanged(&["u1", "u2"], || {
        for retry in [
            api.send_as("u1", &body),
            api.send_as("u1", &reordered),
            api.send(&device_token("u1", "laptop"), &body),
        ] {
            assert_eq!(retry.status, 200, "{}", retry.body);
            assert_eq!(retry.json(), first.json());
        }
    });
    let other_sender = api.send_as("u2", &text_to_user("c1", "u1", "mine"));
    assert_eq!(
        other_sender.status, 201,
        "keys are per sender: {}",
        other_sender.body
    );
}

#[test]
fn a_retry_after_the_relation_or_membership_ended_still_returns_the_original_body() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "beta");
    api.friends("ann", "bob");
    api.group("g1", "bob", &["ann"]);
    let direct = text_to_user("c1", "bob", "hi");
    let group = text_to_group("c2", "g1", "hi all");
    let first_direct = api.send_as("ann", &direct).expect_json(201);
    let first_group = api.send_as("ann", &group).expect_json(201);
    let unfriend = api.admin("DELETE", "/v1/relations/ann/bob", &Value::Null);
    assert_eq!(unfriend.status, 204);
    let leave = json!({"remove": ["ann"]});
    api.admin("POST", "/v1/groups/g1/members", &leave)
        .expect_json(200);
    api.unchanged(&["ann", "bob"], || {
        assert_eq!(api.send_as("ann", &direct).expect_json(200), first_direct);
        assert_eq!(api.send_as("ann", &group).expect_json(200), first_group);
    });
    api.send_as("ann", &text_to_user("c3", "bob", "new"))
        .expect_error(403, "forbidden");
    api.send_as("ann", &text_to_group("c4", "g1", "new"))
        .expect_error(403, "forbidden");
}

#[test]
fn reused_client_msg_id_with_other_content_or_recipient_is_409_and_changes_nothing() {
    let api = Api::start();
    for uid in ["u1", "u2", "u3"] {
        api.user(uid, "acme");
    }
    api.send_as("u1", &text_to_user("c1", "u2", "hi"))
        .expect_json(201);
    api.unchanged(&["u1", "u2", "u3"], || {
        for body in [
            text_to_user("c1", "u2", "hi!"),
            text_to_user("c1", "u3", "hi"),
        ] {
            api.send_as("u1", &body).expect_error(409, "conflict");
        }
    });
}

#[test]
fn fifty_concurrent_identical_sends_store_the_message_once() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "acme");
    let body = text_to_user("c-race", "u2", "once");
    let token = user_token("u1");
    let start = Barrier::new(50);
    let client = api.client();
    let replies: Vec<(u16, Value)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let reply = client.send(&token, &body);
                    (reply.status, reply.json())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect()
    });
    let created = replies.iter().filter(|(status, _)| *status == 201).count();
    let repeated = replies.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!((created, repeated), (1, 49), "{replies:?}");
    assert!(
        replies.iter().all(|(_, b)| *b == replies[0].1),
        "{replies:?}"
    );
    for uid in ["u1", "u2"] {
        let stream = api.stream(uid);
        assert_eq!(
            (stream.head, stream.client_msg_ids()),
            (1, vec!["c-race"]),
            "{uid}"
        );
    }
}

#[test]
fn concurrent_senders_get_distinct_dense_seqs_in_the_recipients_stream() {
    let api = Api::start();
    let senders: Vec<String> = (0..20).map(|i| format!("s{i:02}")).collect();
    for uid in senders.iter().map(String::as_str).chain(["ann"]) {
        api.user(uid, "acme");
    }
    let start = Barrier::new(senders.len());
    let client = api.client();
    std::thread::scope(|s| {
        for uid in &senders {
            let start = &start;
            s.spawn(move || {
                let token = user_token(uid);
                start.wait();
                let reply = client.send(&token, &text_to_user(uid, "ann", "hi"));
                assert_eq!(reply.status, 201, "{uid}: {}", reply.body);
            });
        }
    });
    let ann = api.stream("ann");
    let seqs: Vec<i64> = ann
        .entries
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>());
    let mut from: Vec<&str> = ann.client_msg_ids();
    from.sort_unstable();
    assert_eq!(from, senders);
}

#[test]
fn groups_up_to_inline_fanout_max_are_sent_inline_and_larger_ones_accepted_then_delivered() {
    let api = Api::start();
    let members: Vec<String> = (0..101).map(|i| format!("m{i:03}")).collect();
    for uid in &members {
        api.user(uid, "acme");
    }
    let names: Vec<&str> = members.iter().map(String::as_str).collect();
    assert_eq!(api.group("inline", "m000", &names[1..100])["members"], 100);
    assert_eq!(api.group("queued", "m000", &names[1..])["members"], 101);

    let sent = api
        .send_as("m000", &text_to_group("c1", "inline", "hi"))
        .expect_json(201);
    assert_eq!(sent["status"], "sent", "{sent}");
    let heads: Vec<i64> = names
        .iter()
        .map(|uid| {
            let stream = api.stream(uid);
            let holds = stream.client_msg_ids() == ["c1"];
            assert_eq!(holds, *uid != "m100", "{uid} at the answer: {stream:?}");
            stream.head
        })
        .collect();

    let accepted = api
        .send_as("m000", &text_to_group("c2", "queued", "hi all"))
        .expect_json(201);
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    assert_eq!(
        api.stream("m000").client_msg_ids(),
        ["c1", "c2"],
        "the sender's copy at once"
    );
    for (uid, head) in names.iter().zip(heads).skip(1) {
        let page = api.sync(&user_token(uid), &format!("after={head}&wait=10"));
        let entries = page.expect_json(200)["entries"].clone();
        assert_eq!(entries[0]["msg_id"], accepted["msg_id"], "{uid}: {entries}");
        assert_eq!(
            entries.as_array().map(Vec::len),
            Some(1),
            "{uid}: {entries}"
        );
    }
}
