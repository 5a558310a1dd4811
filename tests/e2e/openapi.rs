//! `GET /openapi.json`: the served OpenAPI description covers every route of spin.toml
//! (and names no route spin.toml lacks), and path ids encoded the way generic OpenAPI
//! clients encode them reach their routes. The contract test (tests/contract/run.sh)
//! checks the answers against the document.

use serde_json::{Value, json};

use crate::client::{Api, Expect, text_to_user, user_token};
use crate::harness::{get, root};

/// The `route`s of spin.toml's `[[trigger.http]]` tables, but the catch-all `/...`:
/// it serves only the 404 of paths no API route has, and would route every path.
fn manifest_routes() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("spin.toml")).expect("read spin.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("spin.toml parses");
    manifest["trigger"]["http"]
        .as_array()
        .expect("[[trigger.http]] tables")
        .iter()
        .map(|trigger| trigger["route"].as_str().expect("route").to_string())
        .filter(|route| route != "/...")
        .collect()
}

/// Whether the OpenAPI path `path` (`/v1/messages/{msg_id}/recall`) is served by the
/// Spin route `route` (`/v1/messages/:msg_id/recall`, `/v1/users/...`).
fn serves(route: &str, path: &str) -> bool {
    if let Some(prefix) = route.strip_suffix("/...") {
        return path == prefix || path.starts_with(&format!("{prefix}/"));
    }
    let route: Vec<&str> = route.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    route.len() == path.len()
        && route.iter().zip(&path).all(|(r, p)| {
            r == p || (r.starts_with(':') && p.strip_prefix('{') == Some(&format!("{}}}", &r[1..])))
        })
}

#[test]
fn openapi_json_is_served_and_describes_every_route_of_the_manifest() {
    let api = Api::start();
    let reply = get(&api.url("/openapi.json"));
    let doc = reply.expect_json(200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    let routes = manifest_routes();
    for route in &routes {
        assert!(
            paths.iter().any(|path| serves(route, path)),
            "no OpenAPI path for the route {route}"
        );
    }
    for path in &paths {
        assert!(
            routes.iter().any(|route| serves(route, path)),
            "the OpenAPI path {path} is not routed by spin.toml"
        );
    }
    let served: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("functions/openapi/openapi.json"))
            .expect("read openapi.json"),
    )
    .expect("openapi.json parses");
    assert_eq!(
        doc, served,
        "the component serves the file in the repository"
    );
    let post = api.call("POST", "/openapi.json", None, None);
    post.expect_error(405, "method_not_allowed");
    assert_eq!(post.header("allow"), Some("GET"));
}

#[test]
fn percent_encoded_path_ids_reach_their_routes() {
    let api = Api::start();
    let reply = api.admin(
        "PUT",
        "/v1/users/a%3A1",
        &json!({"name": "", "org": "acme"}),
    );
    assert_eq!(reply.expect_json(200), json!({"uid": "a:1"}));
    api.user("u2", "acme");
    let sent = api
        .send_as("a:1", &text_to_user("c1", "u2", "hi"))
        .expect_json(201);
    let history = api
        .call(
            "GET",
            "/v1/conversations/dm%3Aa%3A1%3Au2/messages",
            Some(&user_token("a:1")),
            None,
        )
        .expect_json(200);
    assert_eq!(history["entries"][0]["msg_id"], sent["msg_id"]);
    let msg_id = sent["msg_id"].as_str().expect("msg_id");
    let encoded = format!("/v1/messages/{}/receipts", msg_id.replace('m', "%6D"));
    let readers = api
        .call("GET", &encoded, Some(&user_token("a:1")), None)
        .expect_json(200);
    assert_eq!(readers["unread"], json!(["u2"]));
}
