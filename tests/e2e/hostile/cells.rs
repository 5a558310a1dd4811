//! The matrix: the cells of a route (every hostile case that applies to it) and the
//! check of an answer against its cell.

use serde_json::Value;

use super::bodies::{BAD_INTS, ODD_IDS, bad_bodies, bad_ids};
use super::tokens::{bad_tokens, non_admin_tokens, valid};
use super::wire::Wire;
use super::world::{Auth, GATEWAY_MAX_BODY, Route};
use crate::client::{INTERNAL_SECRET, admin_token};
use crate::harness::Reply;
use crate::vendors::{HMS_CALLBACK_USER, now_ms};
use courier_push::callbacks::signature::{SigningSecret, sign};
use courier_push::callbacks::{HmsCallbackKey, sign_hms};

/// One cell: a request and the answer it must get.
pub(super) struct Cell {
    pub(super) case: String,
    pub(super) wire: Wire,
    pub(super) status: u16,
    /// The error code; `None` for a success (whose body is not looked at) or an
    /// answer from the HTTP parser itself (which has no body).
    pub(super) code: Option<&'static str>,
}

pub(super) fn cell(
    case: impl Into<String>,
    wire: Wire,
    (status, code): (u16, &'static str),
) -> Cell {
    Cell {
        case: case.into(),
        wire,
        status,
        code: (!code.is_empty()).then_some(code),
    }
}

/// Header pairs with owned names.
fn owned(headers: Vec<(&str, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The cells of `route`.
pub(super) fn cells(route: &Route) -> Vec<Cell> {
    let mut cells = Vec::new();
    let body = route.body_bytes();
    // The gateway's limit (`--max-body-bytes`), on every route: declared, and
    // streamed. Spin has no host-wide body limit: it hands any body on, and a route
    // that reads none (`/healthz`) answers as usual, so these cells are the gateway's.
    // The components' own limits (`max_body_bytes`) are cells on both hosts below.
    if crate::harness::host() == crate::harness::Host::Gateway {
        let mut declared = valid(route, &route.path, Vec::new());
        declared.declared_only = Some(GATEWAY_MAX_BODY + 1);
        cells.push(cell(
            "body over the gateway limit (Content-Length)",
            declared,
            (413, "too_large"),
        ));
        let mut streamed = valid(route, &route.path, vec![b' '; GATEWAY_MAX_BODY + 1024]);
        streamed.chunked = true;
        cells.push(cell(
            "body over the gateway limit (chunked)",
            streamed,
            (413, "too_large"),
        ));
    }
    // Credentials.
    let plain = |headers: &[(String, String)]| {
        let mut wire =
            Wire::new(route.method, route.path.as_str()).header("content-type", "application/json");
        for (k, v) in headers {
            wire = wire.header(k, v);
        }
        wire.body(body.clone())
    };
    match route.auth {
        Auth::User | Auth::Admin => {
            for (case, value) in bad_tokens() {
                let headers: Vec<(String, String)> = value
                    .into_iter()
                    .map(|v| ("authorization".to_string(), v))
                    .collect();
                cells.push(cell(case, plain(&headers), (401, "unauthorized")));
            }
            if route.auth == Auth::Admin {
                for (case, value) in non_admin_tokens() {
                    let headers = [("authorization".to_string(), value)];
                    cells.push(cell(case, plain(&headers), (403, "forbidden")));
                }
            }
        }
        Auth::Internal => {
            let wrong_same_length: String = INTERNAL_SECRET.chars().rev().collect();
            for (case, headers) in [
                ("no secret", vec![]),
                (
                    "wrong secret of the same length",
                    vec![("x-internal-secret", wrong_same_length)],
                ),
                (
                    "the secret's prefix",
                    vec![("x-internal-secret", INTERNAL_SECRET[..10].to_string())],
                ),
                (
                    "the secret with a suffix",
                    vec![("x-internal-secret", format!("{INTERNAL_SECRET}x"))],
                ),
                (
                    "an empty secret",
                    vec![("x-internal-secret", String::new())],
                ),
                (
                    "the secret as a bearer token",
                    vec![("authorization", format!("Bearer {INTERNAL_SECRET}"))],
                ),
                (
                    "an admin token",
                    vec![("authorization", format!("Bearer {}", admin_token()))],
                ),
            ] {
                let headers = owned(headers);
                cells.push(cell(case, plain(&headers), (401, "unauthorized")));
                let mut get = plain(&headers);
                get.method = "GET".into();
                cells.push(cell(format!("{case} (GET)"), get, (401, "unauthorized")));
            }
            let mut query = plain(&[]);
            query.path = format!("{}?secret={INTERNAL_SECRET}", route.path).into_bytes();
            cells.push(cell(
                "the secret in the query",
                query,
                (401, "unauthorized"),
            ));
        }
        Auth::Signed | Auth::Huawei => {
            let other = SigningSecret::new(b"not-the-configured-secret-0123").expect("secret");
            let key =
                HmsCallbackKey::from_utf8_secret(HMS_CALLBACK_USER, "some-other-key").expect("key");
            for (case, headers) in [
                ("unsigned", vec![]),
                (
                    "garbage signature",
                    vec![
                        ("x-courier-signature", "t=1,v1=zz".to_string()),
                        ("x-huawei-callback-id", "timestamp=1;nonce=2;value=3".into()),
                    ],
                ),
                (
                    "signed with another secret",
                    vec![
                        ("x-courier-signature", sign(&other, now_ms() / 1000, &body)),
                        (
                            "x-huawei-callback-id",
                            sign_hms(&key, now_ms(), "hostile-other-key"),
                        ),
                    ],
                ),
                (
                    "a bearer token instead",
                    vec![("authorization", format!("Bearer {}", admin_token()))],
                ),
            ] {
                let headers = owned(headers);
                cells.push(cell(case, plain(&headers), (401, "unauthorized")));
            }
        }
        Auth::Public => {}
    }
    // Bodies, with valid credentials.
    if let Some(json_body) = &route.body {
        if let Some(limit) = route.limit {
            let mut padded = body.clone();
            padded.resize(limit + 1, b' ');
            cells.push(cell(
                "body over the route's limit",
                valid(route, &route.path, padded),
                (413, "too_large"),
            ));
        }
        for (case, bytes, content_type) in bad_bodies(route, json_body) {
            let mut wire = valid(route, &route.path, bytes);
            if let Some(content_type) = content_type {
                wire.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
                wire = wire.header("content-type", content_type);
            }
            cells.push(cell(case, wire, (400, "bad_request")));
        }
    }
    // Path ids, with valid credentials.
    for &index in &route.ids {
        for (case, id) in bad_ids() {
            let path = route.with_id(index, &String::from_utf8_lossy(&id));
            cells.push(cell(
                format!("id {index}: {case}"),
                valid(route, &path, body.clone()),
                route.bad_id,
            ));
        }
        // Raw bytes no client would send: the HTTP parser refuses them.
        let mut raw = route.path.as_bytes().to_vec();
        let at = route
            .path
            .split('/')
            .take(index)
            .map(|s| s.len() + 1)
            .sum::<usize>();
        raw.splice(at..at, b"\xff\xfe".iter().copied());
        let mut wire = valid(route, &route.path, body.clone());
        wire.path = raw;
        cells.push(Cell {
            case: format!("id {index}: raw invalid UTF-8"),
            wire,
            status: 400,
            code: None,
        });
        if let Some(expected) = route.unknown_id {
            for id in ODD_IDS {
                let path = route.with_id(index, id);
                cells.push(cell(
                    format!("id {index}: {id:?}"),
                    valid(route, &path, body.clone()),
                    expected,
                ));
            }
        }
    }
    // Query values, with valid credentials.
    for key in route.int_keys {
        for value in BAD_INTS {
            let path = format!("{}?{key}={value}", route.bare_path());
            cells.push(cell(
                format!("{key}={value}"),
                valid(route, &path, body.clone()),
                (400, "bad_request"),
            ));
        }
        let path = format!("{}?{key}=1&{key}=1", route.bare_path());
        cells.push(cell(
            format!("{key} twice"),
            valid(route, &path, body.clone()),
            (400, "bad_request"),
        ));
    }
    if route.bare_path() == "/v1/sync" {
        for (query, case) in [("wait=31", "wait over 30"), ("limit=501", "limit over 500")] {
            let path = format!("/v1/sync?{query}");
            cells.push(cell(
                case,
                valid(route, &path, Vec::new()),
                (400, "bad_request"),
            ));
        }
    }
    if route.bare_path() == "/v1/webhooks" {
        for value in ["other'%20OR%20'1'='1", "%00", "%ZZ", "a%20b", "%FF"] {
            let path = format!("/v1/webhooks?org={value}");
            cells.push(cell(
                format!("org={value}"),
                valid(route, &path, Vec::new()),
                (400, "bad_request"),
            ));
        }
        cells.push(cell(
            "org twice",
            valid(route, "/v1/webhooks?org=other&org=acme", Vec::new()),
            (400, "bad_request"),
        ));
    }
    cells
}

/// Checks one answer against its cell.
pub(super) fn check(route: &Route, cell: &Cell, reply: &Reply) {
    let what = format!("{} / {}", route.name(), cell.case);
    assert_eq!(reply.status, cell.status, "{what}: {}", reply.body);
    if let Some(code) = cell.code {
        let body: Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", reply.body));
        assert_eq!(body["error"]["code"], code, "{what}: {}", reply.body);
        assert!(
            body["error"]["message"].is_string(),
            "{what}: {}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{what}"
        );
    }
}
