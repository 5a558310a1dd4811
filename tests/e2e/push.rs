//! Push end to end: the real gateway and `push-notify` delivering to fake vendors
//! (`vendors`) that check every request the way the real vendor does.
//!
//! # Layout
//! - this file: a gateway configured for the fakes, and what the tests read back (the
//!   gateway's database, its drain route).
//! - `registration`: `PUT`/`DELETE /v1/push/devices/{device}`, `GET /v1/push/config`.
//! - `delivery`: coalescing, presence and acks, groups and previews, a message during a
//!   delivery.
//! - `failures`: retries and their waits, renewed credentials, tokens reported gone.
//! - `callbacks`: vendor delivery receipts and their authentication.

mod callbacks;
mod delivery;
mod failures;
mod registration;

use std::time::{Duration, Instant};

use courier_store::{Sql, SqlValue};
use serde_json::{Value, json};

use crate::client::{Api, Expect, INTERNAL_SECRET, user_token};
use crate::harness::{Reply, call};
use crate::vendors::FakeVendors;

/// A gateway whose push vendors are all the fake; dropped gateway first.
pub struct Push {
    pub api: Api,
    pub fake: FakeVendors,
}

/// Starts the fake vendors and a gateway configured for them, with `extra` variables.
pub fn start(extra: &[(&str, &str)]) -> Push {
    start_on(FakeVendors::start(), extra, &[])
}

/// An app host configured for `fake`, with `extra` variables and `args` (flags both
/// hosts take).
pub fn start_on(fake: FakeVendors, extra: &[(&str, &str)], args: &[&str]) -> Push {
    let env = fake.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.extend_from_slice(extra);
    Push {
        api: Api::start_with_args(&vars, args),
        fake,
    }
}

/// [`start`], with APNs served over TLS and HTTP/2 only, its certificate trusted by the
/// app host through `--runtime-config-file` (in `dir`, which must outlive the app).
pub fn start_apns_h2(dir: &std::path::Path) -> Push {
    let fake = FakeVendors::start_with_apns_h2();
    let config = fake.apns_runtime_config(dir).expect("an HTTP/2 APNs");
    let config = config.to_str().expect("a UTF-8 path");
    start_on(fake, &[], &["--runtime-config-file", config])
}

/// A 64-hex-character APNs device token made of the byte `n`.
pub fn apns_token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// `{"vendor": vendor, "token": token}`.
pub fn token_registration(vendor: &str, token: &str) -> Value {
    json!({ "vendor": vendor, "token": token })
}

/// One row of `push_deliveries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub device: String,
    pub vendor: String,
    pub token: String,
    pub state: String,
    pub vendor_id: Option<String>,
    pub unread: i64,
}

impl Push {
    /// Creates `uids` in `org` (so they may message each other).
    pub fn users(&self, org: &str, uids: &[&str]) {
        for uid in uids {
            self.api.user(uid, org);
        }
    }

    /// `PUT /v1/push/devices/{device}` as `uid`.
    pub fn register(&self, uid: &str, device: &str, body: &Value) -> Reply {
        self.api.call(
            "PUT",
            &format!("/v1/push/devices/{device}"),
            Some(&user_token(uid)),
            Some(body.to_string().as_bytes()),
        )
    }

    /// Registers and checks the answer.
    pub fn registered(&self, uid: &str, device: &str, body: &Value) {
        let reply = self.register(uid, device, body);
        assert_eq!(
            reply.expect_json(200),
            json!({ "device": device, "vendor": body["vendor"] })
        );
    }

    /// The gateway's store (SQLite or PostgreSQL), read with portable SQL.
    pub fn db(&self) -> Box<dyn Sql> {
        self.api.gw.db()
    }

    /// `(device, vendor)` of `uid`'s push registrations.
    pub fn devices(&self, uid: &str) -> Vec<(String, String)> {
        self.db()
            .query(
                "SELECT device, vendor FROM push_devices WHERE uid = ? ORDER BY device",
                &[uid.into()],
            )
            .unwrap()
            .into_iter()
            .map(|r| (text(&r[0]), text(&r[1])))
            .collect()
    }

    /// The delivery records of `uid`, by device.
    pub fn deliveries(&self, uid: &str) -> Vec<Delivery> {
        self.db()
            .query(
                "SELECT device, vendor, token, state, vendor_id, unread FROM push_deliveries
                 WHERE uid = ? ORDER BY device, created_at",
                &[uid.into()],
            )
            .unwrap()
            .into_iter()
            .map(|r| Delivery {
                device: text(&r[0]),
                vendor: text(&r[1]),
                token: text(&r[2]),
                state: text(&r[3]),
                vendor_id: r[4].as_str().map(str::to_string),
                unread: r[5].as_i64().unwrap(),
            })
            .collect()
    }

    /// Push jobs in the queue, in any state.
    pub fn push_jobs(&self) -> i64 {
        self.db()
            .query_i64("SELECT count(*) FROM jobs WHERE lane = 3", &[])
            .unwrap()
            .unwrap_or(0)
    }

    /// The `msg_id` of the newest message entry in `uid`'s stream (read from the
    /// database: a sync would mark the user online).
    pub fn newest_message(&self, uid: &str) -> String {
        let rows = self
            .db()
            .query(
                "SELECT msg_id FROM entries WHERE uid = ? AND kind = 'message'
                 ORDER BY seq DESC LIMIT 1",
                &[uid.into()],
            )
            .unwrap();
        text(&rows[0][0])
    }

    /// `POST /internal/drain` with the internal secret (the worker, then push-notify).
    pub fn drain(&self) -> Value {
        let reply = call(
            "POST",
            &self.api.url("/internal/drain"),
            &[("x-internal-secret", INTERNAL_SECRET)],
            None,
        );
        reply.expect_json(200)
    }

    /// Drains until `done` holds (the gateway's own drainer runs too), for at most 30 s.
    pub fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; vendor checks failed: {:?}; gateway log:\n{}",
                self.fake.failures(),
                self.api.gw.log().join("\n")
            );
            self.drain();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// [`Push::wait_until`] `done` holds and no push job is left: every request of
    /// every push has been made.
    pub fn settle(&self, what: &str, mut done: impl FnMut() -> bool) {
        self.wait_until(what, || done() && self.push_jobs() == 0);
    }
}

/// A text column's value.
pub fn text(v: &SqlValue) -> String {
    v.as_str().unwrap_or_default().to_string()
}
