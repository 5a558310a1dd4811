//! The read side end to end: sync paging and long-poll, several devices of one user,
//! per-device acks, the conversation list, history, and the refusals of each, writing
//! nothing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Api, Expect, device_token, text_to_group, text_to_user, user_token};

/// `from` sends `n` texts to `to`, with client ids `<prefix>1..=n`.
fn send_texts(api: &Api, from: &str, to: &str, prefix: &str, n: usize) {
    for i in 1..=n {
        let cid = format!("{prefix}{i}");
        api.send_as(from, &text_to_user(&cid, to, &cid))
            .expect_json(201);
    }
}

fn seqs(page: &Value) -> Vec<i64> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

/// `(seqs, next, head, more)` of a sync page.
fn page_of(page: &Value) -> (Vec<i64>, i64, i64, bool) {
    (
        seqs(page),
        page["next"].as_i64().expect("next"),
        page["head"].as_i64().expect("head"),
        page["more"].as_bool().expect("more"),
    )
}

#[test]
fn sync_pages_the_stream_ascending_with_next_head_and_more() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    let ann = user_token("ann");
    let empty = api.sync(&ann, "").expect_json(200);
    assert_eq!(
        empty,
        json!({"entries": [], "next": 0, "head": 0, "more": false})
    );
    send_texts(&api, "bob", "ann", "c", 5);
    for (query, expected) in [
        ("after=0&limit=2", (vec![1, 2], 2, 5, true)),
        ("after=2&limit=2", (vec![3, 4], 4, 5, true)),
        ("after=4&limit=2&_=cache-buster", (vec![5], 5, 5, false)),
        ("after=5", (vec![], 5, 5, false)),
        ("", (vec![1, 2, 3, 4, 5], 5, 5, false)),
    ] {
        let page = api.sync(&ann, query).expect_json(200);
        assert_eq!(page_of(&page), expected, "{query}");
    }
    let page = api.sync(&ann, "after=3&limit=1").expect_json(200);
    assert_eq!(page["entries"][0]["client_msg_id"], "c4");
}

#[test]
fn bad_sync_queries_and_unknown_users_are_refused_and_change_nothing() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    send_texts(&api, "bob", "ann", "c", 2);
    // A device that never synced: a refused sync must not mark it online either.
    let tablet = device_token("ann", "tablet");
    let ghost = user_token("ghost");
    api.unchanged(&["ann", "bob"], || {
        for query in [
            "limit=0",
            "limit=501",
            "limit=1.5",
            "wait=31",
            "wait=-1",
            "after=-1",
            "after=x",
            "after=3",
            "after=1&after=2",
        ] {
            let reply = api.sync(&tablet, query);
            assert_eq!(reply.status, 400, "{query}: {}", reply.body);
            reply.expect_error(400, "bad_request");
        }
        api.sync(&ghost, "").expect_error(404, "not_found");
        api.sync(&ghost, "wait=1").expect_error(404, "not_found");
        api.call("GET", "/v1/conversations", Some(&ghost), None)
            .expect_error(404, "not_found");
        api.ack(&ghost, 0).expect_error(404, "not_found");
    });
}

#[test]
fn long_poll_answers_within_a_second_of_a_send() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    let ann = user_token("ann");
    let client = api.client();
    let (page, sent, woke) = std::thread::scope(|s| {
        let poll = s.spawn(|| {
            let page = client.sync(&ann, "after=0&wait=5").expect_json(200);
            (page, Instant::now())
        });
        // Give the poll time to reach the server and start waiting.
        std::thread::sleep(Duration::from_millis(500));
        api.send_as("bob", &text_to_user("c1", "ann", "wake up"))
            .expect_json(201);
        let sent = Instant::now();
        let (page, woke) = poll.join().expect("poll thread");
        (page, sent, woke)
    });
    assert_eq!(page["entries"][0]["client_msg_id"], "c1", "{page}");
    let delay = woke.saturating_duration_since(sent);
    assert!(
        delay < Duration::from_secs(1),
        "answered {delay:?} after the send"
    );
}

#[test]
fn long_poll_without_news_answers_an_empty_page_when_wait_passes() {
    let api = Api::start();
    api.user("ann", "acme");
    let page = api.sync(&user_token("ann"), "wait=1").expect_json(200);
    assert_eq!(
        page,
        json!({"entries": [], "next": 0, "head": 0, "more": false})
    );
}

#[test]
fn every_device_of_the_sender_sees_its_own_message() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    let (phone, laptop) = (device_token("ann", "phone"), device_token("ann", "laptop"));
    let sent = api
        .send(&phone, &text_to_user("c1", "bob", "from my phone"))
        .expect_json(201);
    for token in [&phone, &laptop] {
        let page = api.sync(token, "").expect_json(200);
        assert_eq!(seqs(&page), [1]);
        let entry = &page["entries"][0];
        assert_eq!(
            (&entry["msg_id"], &entry["from"]),
            (&sent["msg_id"], &json!("ann"))
        );
        assert_eq!(entry["content"]["text"], "from my phone");
    }
    assert_eq!(api.stream("bob").client_msg_ids(), ["c1"]);
}

#[test]
fn acks_are_per_device_and_never_go_back() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    send_texts(&api, "bob", "ann", "c", 3);
    let (phone, laptop) = (device_token("ann", "phone"), device_token("ann", "laptop"));
    for (token, seq, acked) in [
        (&phone, 3, 3),
        (&laptop, 1, 1),
        (&phone, 2, 3),
        (&laptop, 2, 2),
        (&laptop, 0, 2),
    ] {
        let reply = api.ack(token, seq);
        assert_eq!(
            reply.expect_json(200),
            json!({ "acked": acked }),
            "ack {seq}"
        );
    }
}

#[test]
fn ack_above_head_or_malformed_is_400_and_changes_nothing() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    send_texts(&api, "bob", "ann", "c", 3);
    let phone = device_token("ann", "phone");
    api.ack(&phone, 1).expect_json(200);
    let tablet = device_token("ann", "tablet");
    let bodies: [&[u8]; 7] = [
        br#"{"seq": 4}"#,
        br#"{"seq": -1}"#,
        br#"{"seq": "1"}"#,
        br#"{"seq": 1.5}"#,
        b"{}",
        b"{\"seq\": ",
        b"{\"seq\": 1, \"x\": \"\xff\"}",
    ];
    api.unchanged(&["ann"], || {
        for token in [&phone, &tablet] {
            for body in bodies {
                let reply = api.call("POST", "/v1/ack", Some(token), Some(body));
                assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
                reply.expect_error(400, "bad_request");
            }
        }
    });
    assert_eq!(api.ack(&phone, 0).expect_json(200), json!({"acked": 1}));
}

#[test]
fn conversations_list_most_recent_first_with_unread_counts() {
    let api = Api::start();
    for uid in ["ann", "bob", "cid"] {
        api.user(uid, "acme");
    }
    api.group("g1", "cid", &["ann", "bob"]);
    assert_eq!(api.conversations("ann"), json!({"conversations": []}));
    let step = || std::thread::sleep(Duration::from_millis(5));
    send_texts(&api, "bob", "ann", "b", 2);
    step();
    api.send_as("cid", &text_to_group("g1", "g1", "to all"))
        .expect_json(201);
    step();
    let last = api
        .send_as("ann", &text_to_user("a1", "cid", "mine"))
        .expect_json(201);
    let list = api.conversations("ann");
    let summary: Vec<(&str, i64, &str)> = list["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| {
            let unread = c["unread"].as_i64().expect("unread");
            let last = c["last"]["client_msg_id"].as_str().expect("last");
            (c["conv"].as_str().expect("conv"), unread, last)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("dm:ann:cid", 0, "a1"),
            ("g:g1", 1, "g1"),
            ("dm:ann:bob", 2, "b2")
        ],
        "own messages are not unread"
    );
    let newest = &list["conversations"][0];
    assert_eq!(newest["updated_at"], last["sent_at"]);
    assert_eq!(newest["last"]["msg_id"], last["msg_id"]);
}

#[test]
fn history_pages_one_conversation_newest_first() {
    let api = Api::start();
    for uid in ["ann", "bob", "cid"] {
        api.user(uid, "acme");
    }
    send_texts(&api, "bob", "ann", "b", 3);
    send_texts(&api, "cid", "ann", "c", 1);
    send_texts(&api, "ann", "bob", "a", 2);
    let ann = user_token("ann");
    let history = |query: &str| {
        let path = format!("/v1/conversations/dm:ann:bob/messages?{query}");
        api.call("GET", &path, Some(&ann), None)
    };
    let ids = |page: &Value| -> Vec<String> {
        let entries = page["entries"].as_array().expect("entries");
        entries
            .iter()
            .map(|e| e["client_msg_id"].as_str().expect("id").to_string())
            .collect()
    };
    let first = history("limit=2").expect_json(200);
    assert_eq!(
        (ids(&first), &first["more"]),
        (vec!["a2".into(), "a1".into()], &json!(true))
    );
    let before = first["entries"][1]["seq"].as_i64().expect("seq");
    let second = history(&format!("before={before}&limit=2")).expect_json(200);
    assert_eq!(
        (ids(&second), &second["more"]),
        (vec!["b3".into(), "b2".into()], &json!(true))
    );
    let all = history("").expect_json(200);
    assert_eq!(ids(&all), ["a2", "a1", "b3", "b2", "b1"]);
    assert_eq!(all["more"], false);

    api.unchanged(&["ann"], || {
        for query in ["limit=0", "limit=101", "before=-1", "before=x"] {
            history(query).expect_error(400, "bad_request");
        }
        // Two other users' conversation: not the caller's (403, as for a group).
        let reply = api.call(
            "GET",
            "/v1/conversations/dm:bob:cid/messages",
            Some(&ann),
            None,
        );
        reply.expect_error(403, "forbidden");
        for conv in ["nonsense", "g:bad%20id"] {
            let path = format!("/v1/conversations/{conv}/messages");
            let reply = api.call("GET", &path, Some(&ann), None);
            assert_eq!(reply.status, 400, "{conv}: {}", reply.body);
            reply.expect_error(400, "bad_request");
        }
    });
}
