//! What every route shares, end to end: authentication (401 for a missing, malformed,
//! expired, not-yet-valid or forged token, changing nothing), CORS (preflight and the
//! allowed origin on answers, `/healthz` and `/openapi.json` included), and 405 (with
//! `Allow`) / 404 for other methods and paths off the routes.

use courier_core::auth::{Role, TokenClaims};
use serde_json::Value;

use crate::client::{Api, Expect, JWT_SECRET, claims, now_secs, sign, text_to_user, user_token};
use crate::harness::call;

#[test]
fn bad_tokens_are_401_on_every_route_and_change_nothing() {
    let api = Api::start();
    api.user("u1", "acme");
    api.user("u2", "acme");
    api.group("g1", "u1", &["u2"]);
    api.send_as("u1", &text_to_user("c0", "u2", "hi"))
        .expect_json(201);
    let now = now_secs();
    let expired = sign(
        JWT_SECRET,
        &TokenClaims {
            expires_at_secs: now - 120,
            ..claims("u1")
        },
    );
    let not_yet = sign(
        JWT_SECRET,
        &TokenClaims {
            not_before_secs: Some(now + 300),
            ..claims("u1")
        },
    );
    let issued_later = sign(
        JWT_SECRET,
        &TokenClaims {
            issued_at_secs: Some(now + 300),
            ..claims("u1")
        },
    );
    let forged = sign("another-secret-0123456789", &claims("u1"));
    let forged_admin = sign(
        "another-secret-0123456789",
        &TokenClaims {
            role: Role::Admin,
            ..claims("admin")
        },
    );
    let valid = user_token("u1");
    let headers: Vec<Option<String>> = vec![
        None,
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {not_yet}")),
        Some(format!("Bearer {issued_later}")),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer {forged_admin}")),
        Some("Bearer not.a.jwt".into()),
        Some("Bearer".into()),
        Some(format!("Basic {valid}")),
        Some(valid.clone()),
    ];
    let send = text_to_user("c1", "u2", "hi").to_string();
    let routes: [(&str, &str, Option<&str>); 10] = [
        (
            "PUT",
            "/v1/users/u9",
            Some(r#"{"name": "x", "org": "acme"}"#),
        ),
        (
            "PUT",
            "/v1/groups/g9",
            Some(r#"{"name": "x", "owner": "u1", "members": []}"#),
        ),
        (
            "POST",
            "/v1/groups/g1/members",
            Some(r#"{"remove": ["u2"]}"#),
        ),
        ("PUT", "/v1/relations/u1/u2", Some(r#"{"kind": "friend"}"#)),
        ("DELETE", "/v1/relations/u1/u2", None),
        ("POST", "/v1/messages", Some(&send)),
        ("GET", "/v1/sync?wait=1", None),
        ("POST", "/v1/ack", Some(r#"{"seq": 1}"#)),
        ("GET", "/v1/conversations", None),
        ("GET", "/v1/conversations/dm:u1:u2/messages", None),
    ];
    api.unchanged(&["u1", "u2"], || {
        for (method, path, body) in routes {
            for header in &headers {
                let mut h = vec![("content-type", "application/json")];
                h.extend(header.as_deref().map(|v| ("authorization", v)));
                let reply = call(method, &api.url(path), &h, body.map(str::as_bytes));
                assert_eq!(
                    reply.status, 401,
                    "{method} {path} {header:?}: {}",
                    reply.body
                );
                reply.expect_error(401, "unauthorized");
            }
        }
    });
    let skewed = sign(
        JWT_SECRET,
        &TokenClaims {
            expires_at_secs: now - 30,
            ..claims("u1")
        },
    );
    api.sync(&skewed, "").expect_json(200);
}

#[test]
fn cors_preflight_is_204_and_answers_carry_the_allowed_origin() {
    let api = Api::start();
    api.user("ann", "acme");
    let origin = "https://app.example";
    for path in [
        "/v1/users/ann",
        "/v1/groups/g1/members",
        "/v1/relations/ann/bob",
        "/v1/messages",
        "/v1/sync",
        "/v1/ack",
        "/v1/conversations",
        "/v1/conversations/dm:ann:bob/messages",
        "/healthz",
        "/openapi.json",
    ] {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ];
        let reply = call("OPTIONS", &api.url(path), &headers, None);
        assert_eq!(reply.status, 204, "{path}: {}", reply.body);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(origin),
            "{path}"
        );
        let methods = reply
            .header("access-control-allow-methods")
            .unwrap_or_default();
        assert!(
            methods.contains("POST") && methods.contains("GET"),
            "{methods}"
        );
        let allowed = reply
            .header("access-control-allow-headers")
            .unwrap_or_default();
        assert!(
            allowed.to_ascii_lowercase().contains("authorization"),
            "{allowed}"
        );
    }
    let ann = format!("Bearer {}", user_token("ann"));
    let with_origin = [("origin", origin), ("authorization", ann.as_str())];
    let ok = call("GET", &api.url("/v1/sync"), &with_origin, None);
    assert_eq!(
        (ok.status, ok.header("access-control-allow-origin")),
        (200, Some(origin))
    );
    let refused = call("GET", &api.url("/v1/sync"), &[("origin", origin)], None);
    refused.expect_error(401, "unauthorized");
    assert_eq!(refused.header("access-control-allow-origin"), Some(origin));
    for path in ["/healthz", "/openapi.json"] {
        let reply = call("GET", &api.url(path), &[("origin", origin)], None);
        assert_eq!(
            (reply.status, reply.header("access-control-allow-origin")),
            (200, Some(origin)),
            "{path}"
        );
    }
    let plain = api.sync(&user_token("ann"), "");
    assert_eq!(
        (plain.status, plain.header("access-control-allow-origin")),
        (200, None)
    );
}

#[test]
fn cors_answers_only_the_origins_of_cors_allowed_origins() {
    let allowed = "https://app.example";
    let list = format!("https://other.example, {allowed}");
    let api = Api::start_with(&[("SPIN_VARIABLE_CORS_ALLOWED_ORIGINS", &list)]);
    api.user("ann", "acme");
    let bearer = format!("Bearer {}", user_token("ann"));
    for (origin, expected) in [(allowed, Some(allowed)), ("https://evil.example", None)] {
        let preflight = [("origin", origin), ("access-control-request-method", "GET")];
        let reply = call("OPTIONS", &api.url("/v1/sync"), &preflight, None);
        assert_eq!(reply.status, 204, "{origin}: {}", reply.body);
        assert_eq!(reply.header("access-control-allow-origin"), expected);
        let headers = [("origin", origin), ("authorization", bearer.as_str())];
        let reply = call("GET", &api.url("/v1/sync"), &headers, None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("access-control-allow-origin"), expected);
    }
}

#[test]
fn directory_paths_answer_405_to_other_methods_and_404_off_the_routes() {
    let api = Api::start();
    api.user("u1", "acme");
    for (method, path, allow) in [
        ("GET", "/v1/users/u1", "PUT"),
        ("DELETE", "/v1/users/u1", "PUT"),
        ("POST", "/v1/groups/g1", "PUT"),
        ("PUT", "/v1/groups/g1/members", "POST"),
        ("GET", "/v1/relations/u1/u2", "PUT, DELETE"),
    ] {
        let reply = api.admin(method, path, &Value::Null);
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.body);
        reply.expect_error(405, "method_not_allowed");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
    for path in [
        "/v1/users",
        "/v1/users/u1/extra",
        "/v1/groups/g1/owners",
        "/v1/relations/u1",
        "/v1/relations/u1/u2/u3",
    ] {
        let reply = api.call("PUT", path, None, Some(b"{}"));
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        reply.expect_error(404, "not_found");
    }
}

#[test]
fn messaging_paths_answer_405_to_other_methods_and_404_off_the_routes() {
    let api = Api::start();
    api.user("ann", "acme");
    let ann = user_token("ann");
    for (method, path, allow) in [
        ("GET", "/v1/messages", "POST"),
        ("PUT", "/v1/messages", "POST"),
        ("POST", "/v1/sync", "GET"),
        ("DELETE", "/v1/sync", "GET"),
        ("GET", "/v1/ack", "POST"),
        ("POST", "/v1/conversations", "GET"),
        ("DELETE", "/v1/conversations/dm:ann:bob/messages", "GET"),
        ("GET", "/v1/receipts", "POST"),
        ("POST", "/v1/messages/m1/receipts", "GET"),
        ("GET", "/v1/messages/m1/recall", "POST"),
        ("PUT", "/openapi.json", "GET"),
    ] {
        let reply = api.call(method, path, Some(&ann), Some(b"{}"));
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.body);
        reply.expect_error(405, "method_not_allowed");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
    for path in [
        "/v1/conversations/dm:ann:bob",
        "/v1/conversations/dm:ann:bob/messages/x",
        "/v1/sync/more",
    ] {
        let reply = api.call("GET", path, Some(&ann), None);
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        reply.expect_error(404, "not_found");
    }
}
