//! The directory routes (admin token) end to end: users, groups, members, relations,
//! the `control` entries they write, and every way they refuse a request without
//! writing anything.

use serde_json::{Value, json};

use crate::client::{Api, Expect, admin_token, text_to_group, text_to_user, user_token};

/// The `control` entries of `uid`'s stream as `(group, version)`, in stream order.
fn controls(api: &Api, uid: &str) -> Vec<(String, i64)> {
    api.stream(uid)
        .of_kind("control")
        .iter()
        .map(|e| {
            assert_eq!(e["event"], "members_changed", "{e}");
            let group = e["group"].as_str().expect("group").to_string();
            (group, e["version"].as_i64().expect("version"))
        })
        .collect()
}

fn g1(version: i64) -> (String, i64) {
    ("g1".to_string(), version)
}

#[test]
fn put_user_answers_the_uid_and_repeating_it_changes_nothing() {
    let api = Api::start();
    api.user("ann", "acme");
    let again = api.unchanged(&["ann"], || {
        api.admin(
            "PUT",
            "/v1/users/ann",
            &json!({"name": "ANN", "org": "acme"}),
        )
    });
    assert_eq!(again.expect_json(200), json!({ "uid": "ann" }));
    assert_eq!(api.stream("ann").head, 0, "a new user has an empty stream");
}

#[test]
fn updating_a_users_org_changes_who_may_message_them() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "beta");
    let hi = text_to_user("c1", "bob", "hi");
    api.send_as("ann", &hi).expect_error(403, "forbidden");
    api.user("bob", "acme");
    api.send_as("ann", &hi).expect_json(201);
}

#[test]
fn put_group_answers_version_and_count_and_tells_added_and_removed_members() {
    let api = Api::start();
    for uid in ["u1", "u2", "u3"] {
        api.user(uid, "acme");
    }
    let created = api.group("g1", "u1", &["u2"]);
    assert_eq!(
        created,
        json!({"gid": "g1", "version": 1, "members": 2}),
        "the owner is a member"
    );
    let replaced = api.group("g1", "u1", &["u3", "u3"]);
    assert_eq!(replaced, json!({"gid": "g1", "version": 2, "members": 2}));
    assert_eq!(controls(&api, "u1"), [g1(1), g1(2)]);
    assert_eq!(
        controls(&api, "u2"),
        [g1(1), g1(2)],
        "removed users hear it"
    );
    assert_eq!(controls(&api, "u3"), [g1(2)]);
    api.send_as("u2", &text_to_group("c1", "g1", "hi"))
        .expect_error(403, "forbidden");
    api.send_as("u3", &text_to_group("c1", "g1", "hi"))
        .expect_json(201);
}

#[test]
fn member_changes_bump_the_version_and_tell_added_and_removed_users() {
    let api = Api::start();
    for uid in ["u1", "u2", "u3"] {
        api.user(uid, "acme");
    }
    api.group("g1", "u1", &["u2"]);
    let change = json!({"add": ["u3"], "remove": ["u2"]});
    let changed = api.admin("POST", "/v1/groups/g1/members", &change);
    assert_eq!(
        changed.expect_json(200),
        json!({"version": 2, "members": 2})
    );
    assert_eq!(controls(&api, "u1"), [g1(1), g1(2)]);
    assert_eq!(controls(&api, "u2"), [g1(1), g1(2)]);
    assert_eq!(controls(&api, "u3"), [g1(2)]);

    let no_op = api.unchanged(&["u1", "u2", "u3"], || {
        let change = json!({"add": ["u1"], "remove": ["u2"]});
        api.admin("POST", "/v1/groups/g1/members", &change)
    });
    assert_eq!(
        no_op.expect_json(200),
        json!({"version": 2, "members": 2}),
        "adding a member and removing a non-member changes nothing"
    );
}

#[test]
fn friend_relations_are_symmetric_and_deleting_one_answers_204() {
    let api = Api::start();
    api.user("ann", "acme");
    api.user("bob", "beta");
    api.send_as("ann", &text_to_user("c1", "bob", "hi"))
        .expect_error(403, "forbidden");
    let put = api.admin("PUT", "/v1/relations/ann/bob", &json!({"kind": "friend"}));
    assert_eq!(put.status, 200, "{}", put.body);
    api.send_as("bob", &text_to_user("c1", "ann", "hi"))
        .expect_json(201);
    api.send_as("ann", &text_to_user("c1", "bob", "hi"))
        .expect_json(201);

    let deleted = api.admin("DELETE", "/v1/relations/bob/ann", &Value::Null);
    assert_eq!((deleted.status, deleted.body.as_str()), (204, ""));
    api.send_as("ann", &text_to_user("c2", "bob", "again"))
        .expect_error(403, "forbidden");
    api.send_as("bob", &text_to_user("c2", "ann", "again"))
        .expect_error(403, "forbidden");
    let again = api.admin("DELETE", "/v1/relations/ann/bob", &Value::Null);
    assert_eq!(again.status, 204, "deleting a missing relation is fine");
}

/// Every directory route with a valid body.
fn directory_requests() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("PUT", "/v1/users/u9", json!({"name": "x", "org": "acme"})),
        (
            "PUT",
            "/v1/groups/g9",
            json!({"name": "x", "owner": "u1", "members": ["u2"]}),
        ),
        ("POST", "/v1/groups/g1/members", json!({"add": ["u2"]})),
        ("PUT", "/v1/relations/u1/u2", json!({"kind": "friend"})),
        ("DELETE", "/v1/relations/u1/u3", Value::Null),
    ]
}

#[test]
fn directory_routes_refuse_user_tokens_with_403_and_no_token_with_401() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "beta");
    api.user("u3", "beta");
    api.friends("u1", "u3");
    api.group("g1", "u1", &[]);
    let user = user_token("u1");
    api.unchanged(&["u1", "u2", "u3"], || {
        for (method, path, body) in directory_requests() {
            let bytes = body.to_string();
            let body = (!body.is_null()).then_some(bytes.as_bytes());
            api.call(method, path, Some(&user), body)
                .expect_error(403, "forbidden");
            api.call(method, path, None, body)
                .expect_error(401, "unauthorized");
        }
    });
}

#[test]
fn malformed_directory_requests_are_400_and_change_nothing() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "acme");
    api.group("g1", "u1", &["u2"]);
    let long_id = "u".repeat(65);
    let too_many: Vec<String> = (0..10_001).map(|i| format!("m{i}")).collect();
    let bad_json: Vec<(&str, String, Value)> = vec![
        ("PUT", "/v1/users/u9".into(), json!({"name": "x"})),
        (
            "PUT",
            "/v1/users/u9".into(),
            json!({"name": "x", "org": "a cme"}),
        ),
        (
            "PUT",
            "/v1/users/u9".into(),
            json!({"name": "x".repeat(257), "org": "acme"}),
        ),
        (
            "PUT",
            "/v1/users/bad%20id".into(),
            json!({"name": "x", "org": "acme"}),
        ),
        (
            "PUT",
            "/v1/users/a$b".into(),
            json!({"name": "x", "org": "acme"}),
        ),
        (
            "PUT",
            format!("/v1/users/{long_id}"),
            json!({"name": "x", "org": "acme"}),
        ),
        (
            "PUT",
            "/v1/groups/g9".into(),
            json!({"name": "x", "members": ["u1"]}),
        ),
        (
            "PUT",
            "/v1/groups/g9".into(),
            json!({"name": "x", "owner": "u1", "members": "u2"}),
        ),
        (
            "PUT",
            "/v1/groups/g9".into(),
            json!({"name": "x", "owner": "u1", "members": ["u 2"]}),
        ),
        (
            "PUT",
            "/v1/groups/g9".into(),
            json!({"name": "x", "owner": "u1", "members": too_many}),
        ),
        (
            "PUT",
            "/v1/groups/g%219".into(),
            json!({"name": "x", "owner": "u1", "members": []}),
        ),
        ("POST", "/v1/groups/g1/members".into(), json!({})),
        (
            "POST",
            "/v1/groups/g1/members".into(),
            json!({"add": ["u2"], "remove": ["u2"]}),
        ),
        ("POST", "/v1/groups/g1/members".into(), json!({"add": "u2"})),
        (
            "PUT",
            "/v1/relations/u1/u2".into(),
            json!({"kind": "enemy"}),
        ),
        ("PUT", "/v1/relations/u1/u2".into(), json!({})),
        (
            "PUT",
            "/v1/relations/u1/b%20d".into(),
            json!({"kind": "friend"}),
        ),
        ("DELETE", "/v1/relations/u1/a$b".into(), Value::Null),
    ];
    let admin = admin_token();
    api.unchanged(&["u1", "u2"], || {
        for (method, path, body) in &bad_json {
            let reply = api.admin(method, path, body);
            assert_eq!(reply.status, 400, "{method} {path} {body}: {}", reply.body);
            reply.expect_error(400, "bad_request");
        }
        for (method, path) in [
            ("PUT", "/v1/users/u9"),
            ("PUT", "/v1/groups/g9"),
            ("POST", "/v1/groups/g1/members"),
            ("PUT", "/v1/relations/u1/u2"),
        ] {
            for raw in [
                &b"{\"name\": \"x\", "[..],
                b"[]",
                b"",
                b"{\"name\": \"\xff\xfe\"}",
            ] {
                let reply = api.call(method, path, Some(&admin), Some(raw));
                assert_eq!(reply.status, 400, "{method} {path} {raw:?}: {}", reply.body);
                reply.expect_error(400, "bad_request");
            }
        }
    });
}

#[test]
fn unknown_users_and_groups_in_directory_requests_are_404_and_change_nothing() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "beta");
    api.group("g1", "u1", &[]);
    api.unchanged(&["u1", "u2"], || {
        for (method, path, body) in [
            (
                "PUT",
                "/v1/groups/g9",
                json!({"name": "x", "owner": "u1", "members": ["u2", "ghost"]}),
            ),
            (
                "PUT",
                "/v1/groups/g1",
                json!({"name": "x", "owner": "ghost", "members": ["u1"]}),
            ),
            (
                "POST",
                "/v1/groups/g1/members",
                json!({"add": ["u2", "ghost"]}),
            ),
            ("POST", "/v1/groups/nope/members", json!({"add": ["u2"]})),
            ("PUT", "/v1/relations/u1/ghost", json!({"kind": "friend"})),
        ] {
            let reply = api.admin(method, path, &body);
            assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
            reply.expect_error(404, "not_found");
        }
    });
    api.send_as("u1", &text_to_group("c1", "g9", "hi"))
        .expect_error(404, "not_found");
}
