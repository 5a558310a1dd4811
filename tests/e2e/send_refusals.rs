//! `POST /v1/messages` refused, end to end, each writing nothing: a malformed body
//! (400), a body or text over the limits (413), no relation or membership (403), an
//! unknown recipient (404), and the rate limit (429 with `Retry-After`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{Api, Expect, text_to_group, text_to_user, user_token};

#[test]
fn malformed_send_requests_are_400_and_change_nothing() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "acme");
    let text = json!({"type": "text", "text": "hi"});
    let bodies = [
        json!({}),
        json!({"to": {"user": "u2"}, "content": text}),
        json!({"client_msg_id": "c1", "content": text}),
        json!({"client_msg_id": "c1", "to": {"user": "u2"}}),
        json!({"client_msg_id": "c1", "to": {}, "content": text}),
        json!({"client_msg_id": "c1", "to": {"user": "u2", "group": "g1"}, "content": text}),
        json!({"client_msg_id": "c1", "to": {"user": "u 2"}, "content": text}),
        json!({"client_msg_id": "c/1", "to": {"user": "u2"}, "content": text}),
        json!({"client_msg_id": "c".repeat(65), "to": {"user": "u2"}, "content": text}),
        json!({"client_msg_id": "c1", "to": {"user": "u2"}, "content": {"type": "video"}}),
        json!({"client_msg_id": "c1", "to": {"user": "u2"}, "content": {"type": "text", "text": ""}}),
        json!({"client_msg_id": "c1", "to": {"user": "u2"}, "content": {"type": "text", "text": 7}}),
        json!({"client_msg_id": "c1", "to": {"user": "u2"}, "content": {"type": "image", "url": "ftp://x/y"}}),
        json!({"client_msg_id": "c1", "to": {"user": "u2"}, "content": text, "priority": "urgent"}),
        json!([1, 2]),
    ];
    let raw: [&[u8]; 4] = [
        br#"{"client_msg_id": "c1", "to": {"user": "u2"}, "content": {"type": "text", "text": "\ud800"}}"#,
        b"{\"client_msg_id\": \"c1\", ",
        b"",
        b"{\"client_msg_id\": \"c1\", \"to\": {\"user\": \"u2\"}, \"content\": {\"type\": \"text\", \"text\": \"\xc3\x28\"}}",
    ];
    let token = user_token("u1");
    api.unchanged(&["u1", "u2"], || {
        for body in &bodies {
            let reply = api.send(&token, body);
            assert_eq!(reply.status, 400, "{body}: {}", reply.body);
            reply.expect_error(400, "bad_request");
        }
        for body in raw {
            let reply = api.call("POST", "/v1/messages", Some(&token), Some(body));
            assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
            reply.expect_error(400, "bad_request");
        }
    });
}

#[test]
fn oversize_body_and_text_are_413_and_change_nothing() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "acme");
    let mut big_body = text_to_user("c1", "u2", "hi");
    big_body["padding"] = json!("x".repeat(64 * 1024));
    let too_large = [
        big_body,
        text_to_user("c2", "u2", &"a".repeat(4097)),
        text_to_user("c3", "u2", &"é".repeat(2049)),
        json!({"client_msg_id": "c4", "to": {"user": "u2"},
               "content": {"type": "custom", "data": {"k": "x".repeat(16 * 1024)}}}),
    ];
    api.unchanged(&["u1", "u2"], || {
        for body in &too_large {
            api.send_as("u1", body).expect_error(413, "too_large");
        }
    });
    for (cid, text) in [("c5", "a".repeat(4096)), ("c6", "é".repeat(2048))] {
        api.send_as("u1", &text_to_user(cid, "u2", &text))
            .expect_json(201);
    }
}

#[test]
fn messages_without_a_relation_or_membership_are_403_and_change_nothing() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "acme");
    api.user("cid", "beta");
    api.group("g1", "bob", &["cid"]);
    api.unchanged(&["ann", "bob", "cid"], || {
        api.send_as("ann", &text_to_user("c1", "cid", "hi"))
            .expect_error(403, "forbidden");
        api.send_as("ann", &text_to_group("c2", "g1", "hi"))
            .expect_error(403, "forbidden");
    });
    api.send_as(
        "bob",
        &text_to_user("c1", "cid", "a shared group is a relation"),
    )
    .expect_json(201);
}

#[test]
fn unknown_recipients_are_404_and_change_nothing() {
    let api = Api::start();
    api.user("ann", "acme");
    api.unchanged(&["ann"], || {
        api.send_as("ann", &text_to_user("c1", "ghost", "hi"))
            .expect_error(404, "not_found");
        api.send_as("ann", &text_to_group("c2", "nogroup", "hi"))
            .expect_error(404, "not_found");
    });
}

#[test]
fn the_21st_rapid_send_is_rate_limited_with_retry_after_and_writes_nothing() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "acme");
    let token = user_token("u1");
    let send = |cid: &str| api.send(&token, &text_to_user(cid, "u2", "hi"));
    let started = Instant::now();
    let mut passed = Vec::new();
    let first_refusal = loop {
        let cid = format!("c{}", passed.len());
        let reply = send(&cid);
        if reply.status != 201 {
            break (cid, reply);
        }
        passed.push(cid);
        assert!(passed.len() < 100, "never rate limited");
    };
    // A full bucket of 20, plus at most what 10/s refilled while we were sending.
    let refill = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    assert!(
        (20..=20 + refill).contains(&passed.len()),
        "{} passed",
        passed.len()
    );
    let (refused_cid, refused) = first_refusal;
    refused.expect_error(429, "rate_limited");
    let retry_after: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("secs");
    assert!(retry_after >= 1);

    let repeat = send("c0");
    assert_eq!(
        repeat.status, 200,
        "a retry of a stored send is free: {}",
        repeat.body
    );
    for i in 0..5 {
        let cid = format!("more{i}");
        match send(&cid) {
            reply if reply.status == 201 => passed.push(cid),
            reply => reply.expect_error(429, "rate_limited"),
        }
    }
    for uid in ["u1", "u2"] {
        let stream = api.stream(uid);
        assert_eq!(
            stream.client_msg_ids(),
            passed,
            "only the sends that passed, in {uid}"
        );
        assert_eq!(stream.head, passed.len() as i64);
    }
    std::thread::sleep(Duration::from_secs(retry_after));
    let later = send(&refused_cid);
    assert_eq!(
        later.status, 201,
        "the refused send left no trace: {}",
        later.body
    );
}
