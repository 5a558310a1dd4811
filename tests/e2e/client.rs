//! A client of courier's HTTP API for the end-to-end tests: a gateway on courier's
//! spin.toml, tokens signed with its `jwt_secret`, directory set-up, request bodies,
//! and a user's view (stream and conversation list) for checking that a request that
//! failed changed nothing.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use courier_core::auth::{Role, TokenClaims, TokenKey};
use courier_core::{DeviceId, UserId};
use serde_json::{Value, json};

use crate::harness::{Gateway, Reply, call};

/// The gateway's `jwt_secret` (SPIN_VARIABLE_JWT_SECRET).
pub const JWT_SECRET: &str = "e2e-jwt-secret-0123456789abcdef";
/// The gateway's `internal_secret` (`X-Internal-Secret` of `POST /internal/drain`).
pub const INTERNAL_SECRET: &str = "e2e-internal-secret-0123456789";
pub const SECRETS: &[(&str, &str)] = &[
    ("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET),
    ("SPIN_VARIABLE_INTERNAL_SECRET", INTERNAL_SECRET),
];

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The claims of an ordinary user token for `uid`, valid for an hour.
pub fn claims(uid: &str) -> TokenClaims {
    TokenClaims {
        user: UserId::parse(uid).expect("valid user id"),
        expires_at_secs: now_secs() + 3600,
        not_before_secs: None,
        issued_at_secs: None,
        device: None,
        role: Role::User,
    }
}

/// Signs `claims` with `secret` (HS256).
pub fn sign(secret: &str, claims: &TokenClaims) -> String {
    TokenKey::hs256(secret)
        .expect("secret long enough")
        .issue(claims)
        .expect("token issued")
}

/// A user token for `uid` (device `default`).
pub fn user_token(uid: &str) -> String {
    sign(JWT_SECRET, &claims(uid))
}

/// A user token for `uid` on device `dev`.
pub fn device_token(uid: &str, dev: &str) -> String {
    let claims = TokenClaims {
        device: Some(DeviceId::parse(dev).expect("valid device id")),
        ..claims(uid)
    };
    sign(JWT_SECRET, &claims)
}

/// An admin token (directory routes).
pub fn admin_token() -> String {
    let claims = TokenClaims {
        role: Role::Admin,
        ..claims("admin")
    };
    sign(JWT_SECRET, &claims)
}

/// A text message body to a user.
pub fn text_to_user(client_msg_id: &str, to: &str, text: &str) -> Value {
    json!({
        "client_msg_id": client_msg_id,
        "to": { "user": to },
        "content": { "type": "text", "text": text },
    })
}

/// A text message body to a group.
pub fn text_to_group(client_msg_id: &str, gid: &str, text: &str) -> Value {
    json!({
        "client_msg_id": client_msg_id,
        "to": { "group": gid },
        "content": { "type": "text", "text": text },
    })
}

/// Status checks on a [`Reply`] that show the body when they fail.
pub trait Expect {
    /// Asserts the status and returns the JSON body.
    fn expect_json(&self, status: u16) -> Value;
    /// Asserts an error in the API shape with this status and code.
    fn expect_error(&self, status: u16, code: &str);
}

impl Expect for Reply {
    fn expect_json(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.json()
    }

    fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.body
        );
        assert!(self.json()["error"]["message"].is_string(), "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// A user's whole stream, read with `GET /v1/sync`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub head: i64,
    pub entries: Vec<Value>,
}

impl Stream {
    /// The `message` entries.
    pub fn messages(&self) -> Vec<&Value> {
        self.of_kind("message")
    }

    /// The entries of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.entries.iter().filter(|e| e["kind"] == kind).collect()
    }

    /// The `client_msg_id`s of the message entries, in stream order.
    pub fn client_msg_ids(&self) -> Vec<&str> {
        self.messages()
            .iter()
            .filter_map(|e| e["client_msg_id"].as_str())
            .collect()
    }
}

/// A gateway on courier's spin.toml, and the [`Client`] the tests talk to it with.
pub struct Api {
    pub gw: Gateway,
    client: Client,
}

impl std::ops::Deref for Api {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The requests the tests make; shareable between threads (a [`Gateway`] is not).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    admin: String,
}

impl Client {
    /// A client of `gw`, a gateway started with this module's secrets some other way
    /// than [`Api::start`] (e.g. restarted on its data with `Gateway::start_in`).
    pub fn of(gw: &Gateway) -> Client {
        Client {
            base: gw.base.clone(),
            admin: admin_token(),
        }
    }

    /// The URL of `path` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with an optional bearer token; a body is sent as JSON.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        call(method, &self.url(path), &headers, body)
    }

    /// A directory request with the admin token.
    pub fn admin(&self, method: &str, path: &str, body: &Value) -> Reply {
        let bytes = body.to_string();
        let body = (!body.is_null()).then_some(bytes.as_bytes());
        self.call(method, path, Some(&self.admin), body)
    }

    /// Creates or updates a user.
    pub fn user(&self, uid: &str, org: &str) {
        let body = json!({ "name": uid.to_uppercase(), "org": org });
        let reply = self.admin("PUT", &format!("/v1/users/{uid}"), &body);
        assert_eq!(reply.expect_json(200), json!({ "uid": uid }));
    }

    /// Creates or replaces a group; returns the answer.
    pub fn group(&self, gid: &str, owner: &str, members: &[&str]) -> Value {
        let body = json!({ "name": gid, "owner": owner, "members": members });
        self.admin("PUT", &format!("/v1/groups/{gid}"), &body)
            .expect_json(200)
    }

    /// Makes `a` and `b` friends.
    pub fn friends(&self, a: &str, b: &str) {
        let body = json!({ "kind": "friend" });
        self.admin("PUT", &format!("/v1/relations/{a}/{b}"), &body)
            .expect_json(200);
    }

    /// `POST /v1/messages` with `token`.
    pub fn send(&self, token: &str, body: &Value) -> Reply {
        self.call(
            "POST",
            "/v1/messages",
            Some(token),
            Some(body.to_string().as_bytes()),
        )
    }

    /// `uid` sends `body` (default device).
    pub fn send_as(&self, uid: &str, body: &Value) -> Reply {
        self.send(&user_token(uid), body)
    }

    /// `GET /v1/sync?<query>` with `token`.
    pub fn sync(&self, token: &str, query: &str) -> Reply {
        self.call("GET", &format!("/v1/sync?{query}"), Some(token), None)
    }

    /// `POST /v1/ack` with `token`.
    pub fn ack(&self, token: &str, seq: i64) -> Reply {
        let body = json!({ "seq": seq }).to_string();
        self.call("POST", "/v1/ack", Some(token), Some(body.as_bytes()))
    }

    /// `GET /v1/conversations` of `uid`.
    pub fn conversations(&self, uid: &str) -> Value {
        self.call("GET", "/v1/conversations", Some(&user_token(uid)), None)
            .expect_json(200)
    }

    /// The whole stream of `uid`, page by page.
    pub fn stream(&self, uid: &str) -> Stream {
        let token = user_token(uid);
        let (mut after, mut entries) = (0, Vec::new());
        loop {
            let page = self
                .sync(&token, &format!("after={after}&limit=500"))
                .expect_json(200);
            entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
            after = page["next"].as_i64().expect("next");
            if page["more"] != true {
                return Stream {
                    head: page["head"].as_i64().expect("head"),
                    entries,
                };
            }
        }
    }

    /// What `users` can see of the store: their streams and conversation lists.
    pub fn views(&self, users: &[&str]) -> Vec<(Stream, Value)> {
        users
            .iter()
            .map(|u| (self.stream(u), self.conversations(u)))
            .collect()
    }
}

impl Api {
    pub fn start() -> Api {
        Api::start_with(&[])
    }

    /// With extra environment, e.g. `SPIN_VARIABLE_<NAME>` to set a variable.
    pub fn start_with(env: &[(&str, &str)]) -> Api {
        Api::start_with_args(env, &[])
    }

    /// With extra environment and flags of the app host (those both hosts take).
    pub fn start_with_args(env: &[(&str, &str)], args: &[&str]) -> Api {
        let env: Vec<(&str, &str)> = SECRETS.iter().chain(env).copied().collect();
        let gw = Gateway::start_with("spin.toml", &env, args);
        let client = Client {
            base: gw.base.clone(),
            admin: admin_token(),
        };
        Api { gw, client }
    }

    /// The client alone, to share with threads.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `requests` (which should all fail) and checks they changed nothing: the
    /// database holds the same rows, and `users` see the same streams and lists.
    pub fn unchanged<T>(&self, users: &[&str], requests: impl FnOnce() -> T) -> T {
        let views = self.views(users);
        let rows = self.rows();
        let result = requests();
        let after = self.rows();
        for (table, before) in &rows {
            let now = after.get(table).map(Vec::as_slice).unwrap_or_default();
            let added: Vec<_> = now.iter().filter(|r| !before.contains(r)).collect();
            let gone: Vec<_> = before.iter().filter(|r| !now.contains(r)).collect();
            assert!(
                added.is_empty() && gone.is_empty(),
                "table {table} changed: added {added:?}, removed {gone:?}"
            );
        }
        assert_eq!(
            rows.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        assert_eq!(self.views(users), views, "a user's view changed");
        result
    }

    /// Every row of every table of the app's store (SQLite or PostgreSQL), read
    /// beside the gateway.
    /// The store's rows, but for the worker's own housekeeping: the recurring
    /// `retention` job advances on the gateway's drain timer whatever a request does.
    fn rows(&self) -> BTreeMap<String, Vec<String>> {
        let mut rows = self.gw.rows();
        if let Some(jobs) = rows.get_mut("jobs") {
            jobs.retain(|row| !row.starts_with("[Text(\"retention\")"));
        }
        rows
    }
}
