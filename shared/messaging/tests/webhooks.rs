//! Webhooks on real SQLite with a fake clock and a scripted subscriber: the admin
//! routes, events queued with their data and delivered signed, retries with backoff
//! until success, `Retry-After`, dead letters after 30 minutes and their purge after
//! `dead_letter_days`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::VecDeque;

use courier_core::Config;
use courier_core::api::OriginPattern;
use courier_core::auth::{Identity, Role};
use courier_messaging::webhooks::deliver::{DeliverConfig, Transport, WebhookReport, deliver};
use courier_messaging::worker::{DrainConfig, drain};
use courier_messaging::{Reply, recall, receipts, send, webhooks};
use courier_push::callbacks::signature::{SigningSecret, verify};
use courier_store::native::NativeSqlite;
use courier_store::retention::Policy;
use courier_store::sql::Sql;
use courier_store::{directory, schema};
use http::{Request, Response};
use serde_json::{Value, json};

const T0: i64 = 1_767_225_600_000;
const SECRET: &str = "whsec-0123456789abcdef";

fn who(uid: &str) -> Identity {
    let role = if uid == "admin" {
        Role::Admin
    } else {
        Role::User
    };
    support::identity(uid, role)
}

fn config() -> Config {
    support::unthrottled()
}

fn origins() -> Vec<OriginPattern> {
    OriginPattern::parse_list("https://*:*").unwrap()
}

/// A subscriber answering from a script (default 200), keeping every request.
#[derive(Default)]
struct Subscriber {
    script: VecDeque<Result<Response<Vec<u8>>, String>>,
    seen: Vec<Request<Vec<u8>>>,
}

impl Transport for Subscriber {
    fn send_all(
        &mut self,
        requests: Vec<Request<Vec<u8>>>,
    ) -> Vec<Result<Response<Vec<u8>>, String>> {
        requests
            .into_iter()
            .map(|req| {
                self.seen.push(req);
                self.script.pop_front().unwrap_or_else(|| Ok(status(200)))
            })
            .collect()
    }
}

fn status(code: u16) -> Response<Vec<u8>> {
    Response::builder().status(code).body(Vec::new()).unwrap()
}

fn setup(db: &impl Sql) {
    schema::migrate(db).unwrap();
    for (uid, org) in [("ann", "acme"), ("bob", "acme"), ("zoe", "beta")] {
        directory::put_user(db, uid, uid, org, 0).unwrap();
    }
    directory::put_relation(db, "ann", "zoe", "friend").unwrap();
}

fn put_hook(db: &impl Sql, id: &str, org: &str, url: &str, events: Value) -> (u16, Value) {
    let body = json!({ "org": org, "url": url, "events": events, "secret": SECRET });
    let Reply { status, body, .. } = webhooks::put(
        db,
        &config(),
        &origins(),
        &who("admin"),
        id,
        body.to_string().as_bytes(),
        T0,
    )
    .unwrap();
    (status, body)
}

fn send_text(db: &impl Sql, from: &str, to: &str, cmid: &str, now: i64) -> String {
    let (status, reply) = support::send_text(db, &config(), from, json!({ "user": to }), cmid, now);
    assert_eq!(status, 201, "{reply}");
    reply["msg_id"].as_str().unwrap().to_string()
}

fn run(db: &impl Sql, subscriber: &mut Subscriber, now: i64) -> WebhookReport {
    let clock = || now;
    let mut random = || 0u64;
    deliver(
        db,
        &origins(),
        subscriber,
        &DeliverConfig::default(),
        &clock,
        &mut random,
    )
    .unwrap()
}

fn header<'a>(req: &'a Request<Vec<u8>>, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Checks the request the way a receiver does; returns its event.
fn verified(req: &Request<Vec<u8>>, now: i64) -> Value {
    let secret = SigningSecret::new(SECRET.as_bytes()).unwrap();
    verify(&secret, header(req, "x-courier-signature"), req.body(), now).expect("signed");
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(header(req, "content-type"), "application/json");
    let event: Value = serde_json::from_slice(req.body()).unwrap();
    assert_eq!(header(req, "x-courier-event"), event["type"]);
    assert_eq!(header(req, "x-courier-event-id"), event["id"]);
    event
}

fn webhook_jobs(db: &impl Sql) -> i64 {
    db.query_i64("SELECT count(*) FROM jobs WHERE kind = 'webhook'", &[])
        .unwrap()
        .unwrap()
}

#[test]
fn events_are_delivered_signed_to_the_webhooks_of_the_acting_users_org() {
    let db = NativeSqlite::memory().unwrap();
    setup(&db);
    put_hook(
        &db,
        "all",
        "acme",
        "https://crm.example/all",
        json!(["message.sent", "message.recalled", "message.read"]),
    );
    put_hook(
        &db,
        "reads",
        "acme",
        "https://audit.example/r",
        json!(["message.read"]),
    );
    put_hook(
        &db,
        "beta",
        "beta",
        "https://beta.example/h",
        json!(["message.sent"]),
    );
    let msg = send_text(&db, "ann", "bob", "hello", T0 + 1);
    let read = json!({ "msg_ids": [msg] }).to_string();
    receipts::mark_read(&db, &config(), &who("bob"), read.as_bytes(), T0 + 2).unwrap();
    recall::recall(&db, &config(), &who("ann"), &msg, T0 + 3).unwrap();
    assert_eq!(
        webhook_jobs(&db),
        4,
        "sent, read ×2, recalled: nothing for beta"
    );

    let mut subscriber = Subscriber::default();
    let report = run(&db, &mut subscriber, T0 + 10);
    assert_eq!((report.done, report.delivered, report.remaining), (4, 4, 0));
    assert_eq!(webhook_jobs(&db), 0);
    let mut got: Vec<(String, String, Value)> = subscriber
        .seen
        .iter()
        .map(|req| {
            let event = verified(req, T0 + 10);
            (
                req.uri().to_string(),
                event["type"].as_str().unwrap().to_string(),
                event,
            )
        })
        .collect();
    got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|(u, k, _)| (u.as_str(), k.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("https://audit.example/r", "message.read"),
            ("https://crm.example/all", "message.read"),
            ("https://crm.example/all", "message.recalled"),
            ("https://crm.example/all", "message.sent"),
        ]
    );
    let sent = &got[3].2;
    assert_eq!(sent["id"], format!("msg:{msg}:sent"));
    assert_eq!(sent["org"], "acme");
    assert_eq!(sent["created_at"], T0 + 1);
    assert_eq!(sent["data"]["msg_id"], msg.as_str());
    assert_eq!(sent["data"]["from"], "ann");
    assert_eq!(sent["data"]["to"], json!({ "user": "bob" }));
    assert_eq!(sent["data"]["conv"], "dm:ann:bob");
    assert_eq!(
        sent["data"]["content"],
        json!({ "type": "text", "text": "hello" })
    );
    let read = &got[1].2;
    assert_eq!(read["data"]["reader"], "bob");
    assert_eq!(read["data"]["msg_ids"], json!([msg]));
    assert_eq!(read["id"], got[0].2["id"], "one event id for every webhook");
    assert_eq!(got[2].2["data"]["recalled_at"], T0 + 3);

    // zoe (beta) sending gives beta's webhook its copy, acme's nothing.
    send_text(&db, "zoe", "ann", "hi-ann", T0 + 20);
    let mut subscriber = Subscriber::default();
    run(&db, &mut subscriber, T0 + 30);
    assert_eq!(subscriber.seen.len(), 1);
    assert_eq!(subscriber.seen[0].uri(), "https://beta.example/h");
}

#[test]
fn a_send_that_fails_queues_no_event_and_a_repeat_queues_none_twice() {
    let db = NativeSqlite::memory().unwrap();
    setup(&db);
    put_hook(
        &db,
        "all",
        "acme",
        "https://crm.example/all",
        json!(["message.sent"]),
    );
    let limited = Config {
        rate_per_user_per_sec: 1,
        rate_burst: 1,
        ..config()
    };
    let body = |cmid: &str| {
        json!({ "client_msg_id": cmid, "to": { "user": "bob" },
                "content": { "type": "text", "text": "x" } })
        .to_string()
    };
    let send = |cmid: &str| send::send(&db, &limited, &who("ann"), body(cmid).as_bytes(), T0, 1);
    assert_eq!(send("c1").unwrap().status, 201);
    assert_eq!(send("c1").unwrap().status, 200, "a repeat");
    assert_eq!(send("c2").unwrap_err().code(), "rate_limited");
    assert_eq!(webhook_jobs(&db), 1);
}

#[test]
fn failed_deliveries_back_off_and_retry_with_the_same_event_until_one_succeeds() {
    let db = NativeSqlite::memory().unwrap();
    setup(&db);
    put_hook(
        &db,
        "h",
        "acme",
        "https://crm.example/h",
        json!(["message.sent"]),
    );
    send_text(&db, "ann", "bob", "hello", T0);
    let mut subscriber = Subscriber::default();
    subscriber.script.extend([
        Ok(status(500)),
        Err("connection refused".to_string()),
        Ok(Response::builder()
            .status(503)
            .header("retry-after", "120")
            .body(Vec::new())
            .unwrap()),
    ]);
    let run_at = |db: &NativeSqlite| {
        db.query_i64("SELECT run_at FROM jobs WHERE kind = 'webhook'", &[])
            .unwrap()
    };
    let mut now = T0;
    let mut waits = Vec::new();
    for _ in 0..3 {
        let report = run(&db, &mut subscriber, now);
        assert_eq!((report.retried, report.done), (1, 0));
        let next = run_at(&db).unwrap();
        waits.push(next - now);
        // Not due before its time.
        assert_eq!(run(&db, &mut subscriber, next - 1).retried, 0);
        now = next;
    }
    assert_eq!(
        waits[..2],
        [1_000, 2_000],
        "exponential backoff (no jitter)"
    );
    assert_eq!(waits[2], 120_000, "a 503's Retry-After is honoured");
    let report = run(&db, &mut subscriber, now);
    assert_eq!((report.delivered, report.remaining), (1, 0));
    assert_eq!(run_at(&db), None, "done");
    let ids: Vec<&str> = subscriber
        .seen
        .iter()
        .map(|r| header(r, "x-courier-event-id"))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let attempts: Vec<&str> = subscriber
        .seen
        .iter()
        .map(|r| header(r, "x-courier-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    // Each attempt is signed at its own time.
    verified(&subscriber.seen[0], T0);
    verified(subscriber.seen.last().unwrap(), now);
    assert!(
        header(&subscriber.seen[0], "x-courier-signature")
            .starts_with(&format!("t={},", T0 / 1000))
    );
    assert!(
        header(subscriber.seen.last().unwrap(), "x-courier-signature")
            .starts_with(&format!("t={},", now / 1000))
    );
}

#[test]
fn a_delivery_failing_for_thirty_minutes_is_dead_lettered_then_purged_after_the_hold() {
    let db = NativeSqlite::memory().unwrap();
    setup(&db);
    put_hook(
        &db,
        "h",
        "acme",
        "https://crm.example/h",
        json!(["message.sent"]),
    );
    send_text(&db, "ann", "bob", "hello", T0);
    let mut now = T0;
    let mut dead = 0;
    let mut attempts = 0;
    while dead == 0 {
        let mut down = Subscriber::default();
        down.script.push_back(Err("timed out".into()));
        let report = run(&db, &mut down, now);
        attempts += down.seen.len();
        dead = report.dead_lettered;
        now = db
            .query_i64("SELECT run_at FROM jobs WHERE kind = 'webhook'", &[])
            .unwrap()
            .unwrap()
            .max(now);
        assert!(now < T0 + 40 * 60_000, "gives up within the hold");
    }
    assert!(
        now >= T0 + 30 * 60_000,
        "retried for 30 minutes: {attempts} attempts"
    );
    assert!(attempts > 5, "{attempts}");
    let state = db
        .query_row(
            "SELECT state, last_error FROM jobs WHERE kind = 'webhook'",
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(state[0].as_str(), Some("dead"));
    assert!(state[1].as_str().unwrap().contains("timed out"));
    // Dead: never delivered again.
    let mut subscriber = Subscriber::default();
    assert_eq!(run(&db, &mut subscriber, now + 3_600_000).done, 0);
    assert!(subscriber.seen.is_empty());

    // The worker's retention keeps it `dead_letter_days`, then purges it.
    let worker = |at: i64| {
        let clock = || at;
        let mut random = || 1u64;
        let config = DrainConfig {
            retention: Some(Policy::default()),
            ..DrainConfig::default()
        };
        drain(&db, &config, &clock, &mut random).unwrap();
    };
    worker(now + 6 * 86_400_000);
    assert_eq!(webhook_jobs(&db), 1, "kept for inspection");
    worker(now + 8 * 86_400_000);
    assert_eq!(webhook_jobs(&db), 0, "purged after 7 days");
}

#[test]
fn admin_routes_validate_store_and_never_show_the_secret() {
    let db = NativeSqlite::memory().unwrap();
    setup(&db);
    let (status, hook) = put_hook(
        &db,
        "crm",
        "acme",
        "https://crm.example/h",
        json!(["message.sent", "message.sent"]),
    );
    assert_eq!(status, 200);
    assert_eq!(
        hook,
        json!({ "id": "crm", "org": "acme", "url": "https://crm.example/h",
                "events": ["message.sent"], "created_at": T0, "updated_at": T0 })
    );
    assert!(!hook.to_string().contains(SECRET));
    let Reply { body: got, .. } = webhooks::get(&db, &who("admin"), "crm").unwrap();
    assert_eq!(got, hook);
    put_hook(
        &db,
        "other",
        "beta",
        "https://b.example/",
        json!(["message.read"]),
    );
    let Reply { body: all, .. } = webhooks::list(&db, &who("admin"), "").unwrap();
    assert_eq!(all["webhooks"].as_array().unwrap().len(), 2);
    let Reply { body: acme, .. } = webhooks::list(&db, &who("admin"), "org=acme").unwrap();
    assert_eq!(acme["webhooks"], json!([hook]));

    // Refusals change nothing.
    let forbidden = webhooks::get(&db, &who("ann"), "crm").unwrap_err();
    assert_eq!(forbidden.code(), "forbidden");
    assert_eq!(
        webhooks::delete(&db, &who("ann"), "crm")
            .unwrap_err()
            .code(),
        "forbidden"
    );
    let http_url = json!({ "org": "acme", "url": "http://crm.example/h",
                           "events": ["message.sent"], "secret": SECRET });
    let refused = webhooks::put(
        &db,
        &config(),
        &origins(),
        &who("admin"),
        "crm",
        http_url.to_string().as_bytes(),
        T0 + 5,
    )
    .unwrap_err();
    assert_eq!(refused.code(), "bad_request");
    assert!(refused.public_message().contains("webhook_allowed_origins"));
    assert_eq!(webhooks::get(&db, &who("admin"), "crm").unwrap().body, hook);
    assert_eq!(
        webhooks::get(&db, &who("admin"), "a b").unwrap_err().code(),
        "bad_request"
    );

    // A pending delivery goes with its webhook.
    send_text(&db, "ann", "bob", "hello", T0 + 6);
    assert_eq!(webhook_jobs(&db), 1);
    assert_eq!(
        webhooks::delete(&db, &who("admin"), "crm").unwrap().status,
        204
    );
    assert_eq!(
        webhooks::delete(&db, &who("admin"), "crm").unwrap().status,
        204
    );
    assert_eq!(webhook_jobs(&db), 0);
    assert_eq!(
        webhooks::get(&db, &who("admin"), "crm").unwrap_err().code(),
        "not_found"
    );
    send_text(&db, "ann", "bob", "again", T0 + 7);
    assert_eq!(webhook_jobs(&db), 0, "no subscription left");
}

#[test]
fn a_webhook_whose_url_is_no_longer_allowed_is_dead_lettered_at_once() {
    let db = NativeSqlite::memory().unwrap();
    setup(&db);
    put_hook(
        &db,
        "h",
        "acme",
        "https://crm.example/h",
        json!(["message.sent"]),
    );
    send_text(&db, "ann", "bob", "hello", T0);
    let clock = || T0;
    let mut random = || 0u64;
    let mut subscriber = Subscriber::default();
    let narrower = OriginPattern::parse_list("https://*.corp.example").unwrap();
    let report = deliver(
        &db,
        &narrower,
        &mut subscriber,
        &DeliverConfig::default(),
        &clock,
        &mut random,
    )
    .unwrap();
    assert_eq!(report.dead_lettered, 1);
    assert!(subscriber.seen.is_empty(), "nothing was sent");
}

/// A connection whose first statement containing `needle` fails, once.
struct FailsOnce<'a> {
    inner: &'a NativeSqlite,
    needle: &'static str,
    fired: std::cell::Cell<bool>,
}

impl courier_store::Sql for FailsOnce<'_> {
    fn dialect(&self) -> courier_store::Dialect {
        self.inner.dialect()
    }

    fn query(
        &self,
        sql: &str,
        params: &[courier_store::SqlValue],
    ) -> Result<Vec<courier_store::Row>, courier_store::SqlError> {
        if !self.fired.get() && sql.contains(self.needle) {
            self.fired.set(true);
            return Err(courier_store::SqlError::Other(
                "disk I/O error (simulated)".into(),
            ));
        }
        self.inner.query(sql, params)
    }
}

#[test]
fn a_drain_cut_short_by_a_store_error_releases_its_deliveries_at_once() {
    let db = NativeSqlite::memory().unwrap();
    setup(&db);
    put_hook(
        &db,
        "h",
        "acme",
        "https://crm.example/h",
        json!(["message.sent"]),
    );
    send_text(&db, "ann", "bob", "one", T0);
    send_text(&db, "ann", "bob", "two", T0);
    assert_eq!(webhook_jobs(&db), 2);
    // The store fails while the round settles its first answer.
    let failing = FailsOnce {
        inner: &db,
        needle: "DELETE FROM jobs",
        fired: std::cell::Cell::new(false),
    };
    let mut subscriber = Subscriber::default();
    let clock = || T0;
    let mut random = || 0u64;
    let outcome = deliver(
        &failing,
        &origins(),
        &mut subscriber,
        &DeliverConfig::default(),
        &clock,
        &mut random,
    );
    assert!(failing.fired.get() && outcome.is_err(), "{outcome:?}");
    // Both are due again at once, not when their 30 s leases would run out.
    assert_eq!(courier_store::webhooks::due_count(&db, T0).unwrap(), 2);
    let report = run(&db, &mut subscriber, T0);
    assert_eq!((report.delivered, report.remaining), (2, 0));
    assert_eq!(webhook_jobs(&db), 0);
    // At least once: the request whose settling failed went out again.
    assert_eq!(subscriber.seen.len(), 4);
}
