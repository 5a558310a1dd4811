//! Push delivery on real SQLite with a fake clock and a scripted Web Push service:
//! the encrypted body decrypts to the coalesced notification, `Retry-After` is
//! honoured, a device served before a retry is not notified twice, dead tokens are
//! deleted, and a push failing for 30 minutes is dead-lettered.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use support::who;

use std::collections::VecDeque;

use courier_core::Config;
use courier_messaging::push::deliver::{Cache, DeliverConfig, PushReport, Transport, deliver};
use courier_messaging::push::{self, Vendors};
use courier_messaging::{Reply, send};
use courier_push::p256::SecretKey;
use courier_push::webpush::{VapidKey, decrypt, verify_vapid};
use courier_store::native::NativeSqlite;
use courier_store::sql::Sql;
use courier_store::{devices, directory, schema};
use http::{Request, Response};
use serde_json::{Value, json};

const VAPID: [u8; 32] = [7; 32];
const AUTH: [u8; 16] = [9; 16];

fn ua_key(n: u8) -> SecretKey {
    SecretKey::from_slice(&[n; 32]).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn config() -> Config {
    support::unthrottled()
}

fn vendors(preview: bool) -> Vendors {
    let vapid = b64(&VAPID);
    let lookup = move |name: &str| match name {
        "vapid_private_key" => Some(vapid.clone()),
        "vapid_subject" => Some("mailto:ops@example.com".into()),
        "webpush_allow_http" => Some("true".into()),
        "push_preview" => Some(preview.to_string()),
        _ => None,
    };
    Vendors::from_lookup(lookup).unwrap()
}

/// A Web Push service answering from a script (default 201), keeping every request.
#[derive(Default)]
struct FakeService {
    script: VecDeque<Response<Vec<u8>>>,
    seen: Vec<Request<Vec<u8>>>,
}

impl Transport for FakeService {
    fn send_all(
        &mut self,
        requests: Vec<Request<Vec<u8>>>,
    ) -> Vec<Result<Response<Vec<u8>>, String>> {
        requests
            .into_iter()
            .map(|req| {
                self.seen.push(req);
                Ok(self.script.pop_front().unwrap_or_else(|| {
                    Response::builder()
                        .status(201)
                        .header("location", format!("/m/{}", self.seen.len()))
                        .body(Vec::new())
                        .unwrap()
                }))
            })
            .collect()
    }
}

#[derive(Default)]
struct MemCache(std::collections::HashMap<String, String>);

impl Cache for MemCache {
    fn get(&mut self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set(&mut self, key: &str, value: &str) {
        self.0.insert(key.into(), value.into());
    }
}

fn answer(status: u16, retry_after: Option<&str>) -> Response<Vec<u8>> {
    let mut b = Response::builder().status(status);
    if let Some(r) = retry_after {
        b = b.header("retry-after", r);
    }
    b.body(Vec::new()).unwrap()
}

struct World {
    db: NativeSqlite,
    service: FakeService,
    cache: MemCache,
}

impl World {
    fn new(users: &[&str]) -> World {
        let db = NativeSqlite::memory().unwrap();
        schema::migrate(&db).unwrap();
        for uid in users {
            directory::put_user(&db, uid, &format!("Name {uid}"), "acme", 0).unwrap();
        }
        World {
            db,
            service: FakeService::default(),
            cache: MemCache::default(),
        }
    }

    fn subscribe(&self, uid: &str, device: &str, key: u8) {
        let public = ua_key(key).public_key();
        let p256dh = b64(courier_push::p256::EncodedPoint::from(public).as_bytes());
        let body = json!({"vendor": "webpush", "endpoint": format!("http://push.test/wp/{uid}-{device}"),
                          "keys": {"p256dh": p256dh, "auth": b64(&AUTH)}});
        let Reply { status, .. } = push::register(
            &self.db,
            &config(),
            &vendors(false),
            &who(uid),
            device,
            body.to_string().as_bytes(),
            0,
        )
        .unwrap();
        assert_eq!(status, 200);
    }

    fn send(&self, from: &str, to: &str, n: usize, now: i64) {
        let body = json!({"client_msg_id": format!("c{n}"), "to": {"user": to},
                          "content": {"type": "text", "text": format!("hello {n}")}});
        let Reply { status, .. } = send::send(
            &self.db,
            &config(),
            &who(from),
            body.to_string().as_bytes(),
            now,
            n as u64,
        )
        .unwrap();
        assert_eq!(status, 201);
    }

    fn drain(&mut self, now: i64, preview: bool) -> PushReport {
        let mut n = 0u64;
        let mut random = || {
            n += 1;
            n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        };
        let settings = DeliverConfig {
            policy: push::policy(&config()),
            ..DeliverConfig::default()
        };
        deliver(
            &self.db,
            &vendors(preview),
            &mut self.service,
            &mut self.cache,
            &settings,
            &|| now,
            &mut random,
        )
        .unwrap()
    }

    /// The notification in the `i`th request, decrypted with subscription key `key`.
    fn opened(&self, i: usize, key: u8, now: i64) -> Value {
        let req = &self.service.seen[i];
        let auth = req.headers()["authorization"].to_str().unwrap();
        verify_vapid(auth, "http://push.test", now).unwrap();
        let plain = decrypt(&ua_key(key), &AUTH, req.body()).unwrap();
        serde_json::from_slice(&plain).unwrap()
    }
}

#[test]
fn a_burst_is_one_encrypted_notification_with_the_unread_total() {
    let mut w = World::new(&["a", "b"]);
    w.subscribe("b", "laptop", 1);
    for n in 0..100 {
        w.send("a", "b", n, 10_000 + n as i64);
    }
    assert_eq!(w.drain(10_500, false).done, 0, "not before push_delay_ms");
    let report = w.drain(11_000, false);
    assert_eq!((report.done, report.sent), (1, 1));
    let note = w.opened(0, 1, 11_000);
    assert_eq!(note["unread"], 100);
    assert_eq!(note["uid"], "b");
    assert_eq!(note["conv"], "dm:a:b");
    assert!(note.get("text").is_none(), "no preview by default");
    assert_eq!(w.drain(60_000, false).done, 0, "nothing more to push");
}

#[test]
fn previews_carry_the_sender_name_and_text_only_when_enabled() {
    let mut w = World::new(&["a", "b"]);
    w.subscribe("b", "laptop", 1);
    w.send("a", "b", 1, 10_000);
    w.drain(20_000, true);
    let note = w.opened(0, 1, 20_000);
    assert_eq!(note["text"], "hello 1");
    assert_eq!(note["sender"], "Name a");
}

#[test]
fn retry_after_is_honoured_and_served_devices_are_not_pushed_twice() {
    let mut w = World::new(&["a", "b"]);
    w.subscribe("b", "laptop", 1);
    w.subscribe("b", "phone", 2);
    w.send("a", "b", 1, 10_000);
    // Devices are served in order: laptop gets through, phone is told to wait 120 s.
    w.service.script.push_back(answer(201, None));
    w.service.script.push_back(answer(429, Some("120")));
    let report = w.drain(20_000, false);
    assert_eq!((report.sent, report.retried), (1, 1));
    assert_eq!(w.drain(139_999, false).done, 0, "Retry-After 120 s holds");
    let report = w.drain(140_000, false);
    assert_eq!((report.done, report.sent), (1, 1));
    let endpoints: Vec<String> = w
        .service
        .seen
        .iter()
        .map(|r| r.uri().path().to_string())
        .collect();
    assert_eq!(endpoints, ["/wp/b-laptop", "/wp/b-phone", "/wp/b-phone"]);
}

#[test]
fn a_dead_token_is_deleted_and_never_pushed_again() {
    let mut w = World::new(&["a", "b"]);
    w.subscribe("b", "laptop", 1);
    w.send("a", "b", 1, 10_000);
    w.service.script.push_back(answer(410, None));
    let report = w.drain(20_000, false);
    assert_eq!((report.done, report.tokens_removed), (1, 1));
    assert!(
        courier_store::push::registrations(&w.db, "b")
            .unwrap()
            .is_empty()
    );
    w.send("a", "b", 2, 30_000);
    assert_eq!(
        w.drain(60_000, false).done,
        0,
        "no registration: no push job"
    );
    assert_eq!(w.service.seen.len(), 1);
}

#[test]
fn a_push_failing_for_30_minutes_is_dead_lettered() {
    let mut w = World::new(&["a", "b"]);
    w.subscribe("b", "laptop", 1);
    w.send("a", "b", 1, 0);
    let mut now = 1_000;
    let mut attempts = 0;
    loop {
        w.service.script.push_back(answer(503, None));
        let report = w.drain(now, false);
        attempts += 1;
        if report.dead_lettered == 1 {
            break;
        }
        assert_eq!(report.retried, 1, "attempt {attempts} at {now}");
        let run_at =
            w.db.query_i64("SELECT run_at FROM jobs WHERE id = 'push:b'", &[])
                .unwrap()
                .unwrap();
        assert!(run_at > now);
        now = run_at;
    }
    assert!(now >= 30 * 60 * 1000 + 1_000, "held 30 minutes: {now}");
    assert!(attempts < 40, "backoff grows: {attempts}");
    assert_eq!(
        w.db.query_i64("SELECT count(*) FROM jobs WHERE state = 'dead'", &[])
            .unwrap(),
        Some(1)
    );
}

#[test]
fn online_or_acked_users_are_skipped_when_the_job_runs() {
    let mut w = World::new(&["a", "b", "c"]);
    w.subscribe("b", "laptop", 1);
    w.subscribe("c", "laptop", 2);
    w.send("a", "b", 1, 10_000);
    w.send("a", "c", 2, 10_000);
    devices::touch(&w.db, "b", "web", 10_500, 0).unwrap();
    devices::ack(&w.db, "c", "tablet", 1, 10_500).unwrap();
    // b synced 500 ms later (online); c acked (and is online for the TTL too).
    let report = w.drain(11_000, false);
    assert_eq!((report.done, report.skipped, report.sent), (2, 2, 0));
    assert!(w.service.seen.is_empty());
}

#[test]
fn registration_is_validated_and_changes_nothing_when_refused() {
    let w = World::new(&["b"]);
    let bad = [
        json!({"vendor": "webpush", "endpoint": "ftp://x/y", "keys": {"p256dh": b64(&[4; 65]), "auth": b64(&AUTH)}}),
        json!({"vendor": "webpush", "endpoint": "https://x/y", "keys": {"p256dh": b64(&[4; 65]), "auth": b64(&AUTH)}}),
        json!({"vendor": "webpush", "endpoint": "https://x/y", "keys": {"p256dh": "!!", "auth": b64(&AUTH)}}),
        json!({"vendor": "webpush", "endpoint": "https://x/y", "token": "t"}),
        json!({"vendor": "apns", "token": "not-hex"}),
        json!({"vendor": "fcm", "token": "abc"}),
        json!({"vendor": "carrier-pigeon", "token": "abc"}),
        json!({"token": "abc"}),
    ];
    for body in bad {
        let err = push::register(
            &w.db,
            &config(),
            &vendors(false),
            &who("b"),
            "phone",
            body.to_string().as_bytes(),
            0,
        )
        .expect_err(&body.to_string());
        assert_eq!(err.code(), "bad_request", "{body}: {err}");
    }
    assert!(
        courier_store::push::registrations(&w.db, "b")
            .unwrap()
            .is_empty()
    );
    let Reply {
        status,
        body: config,
        ..
    } = push::client_config(&vendors(false));
    assert_eq!(status, 200);
    assert_eq!(config["vendors"], json!(["webpush"]));
    let key = VapidKey::from_bytes(&VAPID).unwrap().public_key();
    assert_eq!(config["webpush"]["vapid_public_key"], key);
}
