//! The set-up every cell runs against, and the route table: every route of
//! spin.toml with one valid request that would change or read the store.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Api, Expect, user_token};
use crate::vendors::{FakeVendors, HMS_APP_ID, now_ms};

/// The gateway's default `--max-body-bytes`.
pub(super) const GATEWAY_MAX_BODY: usize = 1 << 20;
/// `max_body_bytes` (messaging, push and webhook bodies).
pub(super) const MAX_BODY: usize = 64 * 1024;
/// The push callbacks' own limit.
pub(super) const MAX_CALLBACK_BODY: usize = 512 * 1024;
/// The users whose streams and conversation lists must not change.
pub(super) const USERS: &[&str] = &["ann", "bob", "carl", "eve", "olga"];

/// How a route is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Auth {
    Public,
    /// A user token (of the route's `who`).
    User,
    /// An admin token.
    Admin,
    /// `X-Internal-Secret`.
    Internal,
    /// `X-Courier-Signature` over the body.
    Signed,
    /// Huawei's `X-HUAWEI-CALLBACK-ID`.
    Huawei,
}

/// A route of spin.toml with one valid request to it.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub(super) method: &'static str,
    /// The path (and query) of the valid request.
    pub(super) path: String,
    pub(super) auth: Auth,
    /// Whose user token the valid request carries.
    pub(super) who: &'static str,
    pub(super) body: Option<Value>,
    /// The status of the valid request.
    pub(super) ok: u16,
    /// The route's own body limit, under the gateway's.
    pub(super) limit: Option<usize>,
    /// The indices of the path's id segments (split on `/`).
    pub(super) ids: Vec<usize>,
    /// The answer to an id segment that is not an id.
    pub(super) bad_id: (u16, &'static str),
    /// The answer to a well-formed id naming nothing; `None`: such a request succeeds.
    pub(super) unknown_id: Option<(u16, &'static str)>,
    /// The integer query keys.
    pub(super) int_keys: &'static [&'static str],
    /// The body is parsed strictly (duplicate keys, exact number types); Huawei's
    /// receipts are read leniently, as Huawei sends them.
    pub(super) strict: bool,
}

impl Route {
    pub(super) fn new(method: &'static str, path: &str, auth: Auth, ok: u16) -> Route {
        Route {
            method,
            path: path.to_string(),
            auth,
            who: "ann",
            body: None,
            ok,
            limit: None,
            ids: Vec::new(),
            bad_id: (400, "bad_request"),
            unknown_id: None,
            int_keys: &[],
            strict: true,
        }
    }

    pub(super) fn body(mut self, body: Value) -> Route {
        self.body = Some(body);
        self
    }

    pub(super) fn limit(mut self, limit: usize) -> Route {
        self.limit = Some(limit);
        self
    }

    pub(super) fn ids(mut self, ids: &[usize], unknown: Option<(u16, &'static str)>) -> Route {
        self.ids = ids.to_vec();
        self.unknown_id = unknown;
        self
    }

    pub(super) fn who(mut self, who: &'static str) -> Route {
        self.who = who;
        self
    }

    pub(super) fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    pub(super) fn body_bytes(&self) -> Vec<u8> {
        self.body
            .as_ref()
            .map(|b| b.to_string().into_bytes())
            .unwrap_or_default()
    }

    /// The path without its query.
    pub(super) fn bare_path(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// The path with id segment `index` replaced by `id`.
    pub(super) fn with_id(&self, index: usize, id: &str) -> String {
        let (path, query) = match self.path.split_once('?') {
            Some((p, q)) => (p, format!("?{q}")),
            None => (self.path.as_str(), String::new()),
        };
        let mut segments: Vec<&str> = path.split('/').collect();
        segments[index] = id;
        format!("{}{query}", segments.join("/"))
    }
}

/// The set-up: who exists and what they hold.
pub(super) struct World {
    pub(super) api: Api,
    _fake: FakeVendors,
    /// ann → bob.
    pub(super) m1: String,
    /// bob → ann.
    pub(super) m2: String,
}

pub(super) fn world() -> World {
    let fake = FakeVendors::start();
    let env = fake.env();
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let api = Api::start_with(&vars);
    for uid in ["ann", "bob", "carl"] {
        api.user(uid, "acme");
    }
    api.user("eve", "evil");
    api.user("olga", "other");
    api.group("g1", "ann", &["bob"]);
    api.group("g2", "eve", &[]);
    api.friends("bob", "eve");
    let m1 = api
        .send_as("ann", &crate::client::text_to_user("s1", "bob", "hi bob"))
        .expect_json(201)["msg_id"]
        .as_str()
        .expect("msg_id")
        .to_string();
    let m2 = api
        .send_as("bob", &crate::client::text_to_user("s2", "ann", "hi ann"))
        .expect_json(201)["msg_id"]
        .as_str()
        .expect("msg_id")
        .to_string();
    let phone = json!({"vendor": "hms", "token": "hms-token-eve"}).to_string();
    let reply = api.call(
        "PUT",
        "/v1/push/devices/phone",
        Some(&user_token("eve")),
        Some(phone.as_bytes()),
    );
    reply.expect_json(200);
    let hook = json!({"org": "other", "url": "https://crm.example/hook",
                      "events": ["message.sent"], "secret": "0123456789abcdef"});
    api.admin("PUT", "/v1/webhooks/w1", &hook).expect_json(200);
    settle(&api);
    World {
        api,
        _fake: fake,
        m1,
        m2,
    }
}

/// Waits until the store holds still (the drainer has nothing left from the set-up).
pub(super) fn settle(api: &Api) {
    let rows = || {
        let mut rows = api.gw.rows();
        if let Some(jobs) = rows.get_mut("jobs") {
            jobs.retain(|row| !row.starts_with("[Text(\"retention\")"));
        }
        rows
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = rows();
    let mut still = 0;
    while still < 3 {
        assert!(Instant::now() < deadline, "the store never held still");
        std::thread::sleep(Duration::from_millis(300));
        let now = rows();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
}

/// Every route of spin.toml, with a valid request that would change the store or
/// read it.
pub(super) fn routes(w: &World) -> Vec<Route> {
    use Auth::*;
    let (m1, m2) = (&w.m1, &w.m2);
    let hms = |token: &str| json!({"vendor": "hms", "token": token});
    let hook = json!({"org": "other", "url": "https://crm.example/two",
                      "events": ["message.sent", "message.read"], "secret": "fedcba9876543210"});
    let huawei = json!({"statuses": [{"biTag": "x", "appid": HMS_APP_ID, "token": "nobody",
                        "status": 0, "timestamp": now_ms(), "requestId": "r-1"}]});
    let mut routes = vec![
        Route::new("GET", "/healthz", Public, 200),
        Route::new("GET", "/openapi.json", Public, 200),
        Route::new("GET", "/", Public, 200),
        Route {
            bad_id: (404, "not_found"),
            ..Route::new("GET", "/web/app.js", Public, 200).ids(&[2], Some((404, "not_found")))
        },
        Route::new("PUT", "/v1/users/u9", Admin, 200)
            .body(json!({"name": "U9", "org": "acme"}))
            .ids(&[3], None),
        Route::new("PUT", "/v1/groups/g9", Admin, 200)
            .body(json!({"name": "G9", "owner": "ann", "members": ["bob", "carl"]}))
            .ids(&[3], None),
        Route::new("POST", "/v1/groups/g1/members", Admin, 200)
            .body(json!({"add": ["carl"], "remove": ["bob"]}))
            .ids(&[3], Some((404, "not_found"))),
        Route::new("PUT", "/v1/relations/ann/eve", Admin, 200)
            .body(json!({"kind": "friend"}))
            .ids(&[3, 4], Some((404, "not_found"))),
        Route::new("DELETE", "/v1/relations/bob/eve", Admin, 204).ids(&[3, 4], Some((204, ""))),
        Route {
            int_keys: &[],
            ..Route::new("GET", "/v1/webhooks?org=other", Admin, 200)
        },
        Route::new("GET", "/v1/webhooks/w1", Admin, 200).ids(&[3], Some((404, "not_found"))),
        Route::new("PUT", "/v1/webhooks/w2", Admin, 200)
            .body(hook)
            .limit(MAX_BODY)
            .ids(&[3], None),
        Route::new("DELETE", "/v1/webhooks/w1", Admin, 204).ids(&[3], Some((204, ""))),
        Route::new("POST", "/v1/messages", User, 201)
            .body(crate::client::text_to_user("h1", "bob", "hello"))
            .limit(MAX_BODY),
        Route {
            int_keys: &["after", "limit", "wait"],
            ..Route::new("GET", "/v1/sync?after=0&limit=10", User, 200)
        },
        Route {
            int_keys: &["after", "wait"],
            // `wait=0`: the backlog, then the end of the stream.
            ..Route::new("GET", "/v1/stream?after=0&wait=0", User, 200)
        },
        Route::new("POST", "/v1/ack", User, 200)
            .body(json!({"seq": 1}))
            .limit(MAX_BODY),
        Route::new("GET", "/v1/conversations", User, 200),
        Route {
            int_keys: &["before", "limit"],
            ..Route::new(
                "GET",
                "/v1/conversations/dm:ann:bob/messages?before=9&limit=10",
                User,
                200,
            )
            .ids(&[3], Some((400, "bad_request")))
        },
        Route::new("POST", "/v1/receipts", User, 200)
            .body(json!({"msg_ids": [m2]}))
            .limit(MAX_BODY),
        Route::new("GET", &format!("/v1/messages/{m1}/receipts"), User, 200)
            .ids(&[3], Some((404, "not_found"))),
        Route::new("POST", &format!("/v1/messages/{m1}/recall"), User, 200)
            .ids(&[3], Some((404, "not_found"))),
        Route::new("GET", "/v1/push/config", User, 200),
        Route::new("PUT", "/v1/push/devices/tablet", User, 200)
            .body(hms("hms-token-ann"))
            .limit(MAX_BODY)
            .ids(&[4], None),
        Route::new("DELETE", "/v1/push/devices/phone", User, 204)
            .who("eve")
            .ids(&[4], Some((204, ""))),
        Route {
            strict: false,
            bad_id: (404, "not_found"),
            ..Route::new("POST", "/v1/push/callbacks/hms", Huawei, 200)
                .body(huawei)
                .limit(MAX_CALLBACK_BODY)
                .ids(&[4], Some((404, "not_found")))
        },
    ];
    for vendor in ["fcm", "apns", "webpush"] {
        routes.push(Route {
            bad_id: (404, "not_found"),
            ..Route::new("POST", &format!("/v1/push/callbacks/{vendor}"), Signed, 200)
                .body(
                    json!({"receipts": [{"token": "nobody", "status": "delivered",
                                       "detail": vendor}]}),
                )
                .limit(MAX_CALLBACK_BODY)
                .ids(&[4], Some((404, "not_found")))
        });
    }
    for path in [
        "/internal/drain",
        "/internal/push/drain",
        "/internal/webhooks/drain",
    ] {
        routes.push(Route::new("POST", path, Internal, 200));
    }
    routes
}
