//! Fixtures the messaging test binaries share: callers, an unthrottled config, and a
//! text send. Each binary uses a part of them.
#![allow(dead_code)]

use courier_core::auth::{Identity, Role};
use courier_core::{Config, DeviceId, Error, UserId};
use courier_messaging::send;
use courier_store::sql::Sql;
use serde_json::{Value, json};

/// `uid` on its default device, with `role`, with a token far from expiry.
pub fn identity(uid: &str, role: Role) -> Identity {
    Identity {
        user: UserId::parse(uid).unwrap(),
        device: DeviceId::default_device(),
        role,
        expires_at_secs: u64::MAX / 2,
    }
}

/// The user `uid`.
pub fn who(uid: &str) -> Identity {
    identity(uid, Role::User)
}

/// The defaults, with the per-user rate limit out of the way.
pub fn unthrottled() -> Config {
    Config {
        rate_per_user_per_sec: 1_000_000,
        rate_burst: 1_000_000,
        ..Config::default()
    }
}

/// `POST /v1/messages` of a text (its text is `cmid`) from `from` to `to`
/// (`{"user": …}` or `{"group": …}`) at `now`; the service's status and body.
pub fn send_text(
    db: &impl Sql,
    config: &Config,
    from: &str,
    to: Value,
    cmid: &str,
    now: i64,
) -> (u16, Value) {
    try_send_text(db, config, from, to, cmid, now).unwrap()
}

/// [`send_text`], its refusal returned.
pub fn try_send_text(
    db: &impl Sql,
    config: &Config,
    from: &str,
    to: Value,
    cmid: &str,
    now: i64,
) -> Result<(u16, Value), Error> {
    let body =
        json!({ "client_msg_id": cmid, "to": to, "content": { "type": "text", "text": cmid } });
    let random = cmid.bytes().fold(now as u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    send::send(
        db,
        config,
        &who(from),
        body.to_string().as_bytes(),
        now,
        random,
    )
    .map(|reply| (reply.status, reply.body))
}
