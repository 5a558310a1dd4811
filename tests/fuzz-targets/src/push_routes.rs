//! `push_routes`: the push routes of `courier_messaging` over a real (in-memory
//! SQLite) store with every vendor configured — device registration
//! (`PUT /v1/push/devices/{device}`) and vendor callbacks
//! (`POST /v1/push/callbacks/{vendor}`). Each input starts from the same database: the
//! two tables these routes write (`push_devices`, `push_nonces`) are emptied first.
//!
//! The first byte picks a mode (and with its high bit `webpush_allow_http`):
//! 0. registration: the first line is the device, the rest the body. Client input
//!    never makes a 500; an accepted registration is stored once under its device, a
//!    repeat replaces it, and a stored Web Push subscription parses back;
//! 1. a callback with the first line as its header: an accepted generic callback
//!    carries the body's HMAC (recomputed here); errors are 4xx only;
//! 2. a callback correctly signed for the body: accepted (or a 400 for a bad body)
//!    exactly once — a replay, also with the header rewritten so that it still
//!    verifies, and also on another vendor's route, is a 401;
//! 3. the same for an HMS callback with a correct `X-HUAWEI-CALLBACK-ID`.

use courier_core::auth::{Identity, Role};
use courier_core::{Config, DeviceId, Error, UserId};
use courier_messaging::push::{self, Vendors, callbacks};
use courier_push::callbacks::signature::{self, SIGNATURE_HEADER};
use courier_push::callbacks::{HMS_CALLBACK_HEADER, sign_hms};
use courier_push::p256::SecretKey;
use courier_push::p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use courier_push::webpush::Subscription;
use courier_store::native::NativeSqlite;
use courier_store::{Sql as _, directory, schema};
use serde_json::{Value, json};

use crate::NOW_MS;
use crate::bytes::{Bytes, text};
use crate::callbacks::{CALLBACK_SECRET, HMS_SECRET_BASE64, HMS_USER, signing_secret};

const RSA_KEY: &str = include_str!("../../../shared/push/src/testdata/rsa_key_a.pem");
const GENERIC_VENDORS: [&str; 3] = ["webpush", "apns", "fcm"];

fn vendors(allow_http: bool) -> Vendors {
    use base64::Engine as _;
    let vapid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
    let apns_key = SecretKey::from_slice(&[3; 32])
        .expect("a valid scalar")
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encodes")
        .to_string();
    let account = json!({
        "client_email": "push@courier-fuzz.iam.gserviceaccount.com",
        "private_key": RSA_KEY,
        "token_uri": "https://oauth2.googleapis.com/token",
        "project_id": "courier-fuzz",
    })
    .to_string();
    let lookup = move |name: &str| {
        let value = match name {
            "vapid_private_key" => vapid.as_str(),
            "vapid_subject" => "mailto:ops@courier.example",
            "webpush_allow_http" => {
                if allow_http {
                    "true"
                } else {
                    "false"
                }
            }
            "apns_key" => apns_key.as_str(),
            "apns_key_id" => "ABCDE12345",
            "apns_team_id" => "FGHIJ67890",
            "apns_topic" => "com.example.courier",
            "fcm_service_account" => account.as_str(),
            "hms_app_id" => "104789123",
            "hms_client_secret" => "hms-client-secret",
            "hms_callback_user" => HMS_USER,
            "hms_callback_secret" => HMS_SECRET_BASE64,
            "push_callback_secret" => CALLBACK_SECRET,
            _ => return None,
        };
        Some(value.to_string())
    };
    Vendors::from_lookup(lookup).expect("every vendor configured")
}

thread_local! {
    /// Building the vendors parses an RSA key: once per thread, not per input.
    static VENDORS: [Vendors; 2] = [vendors(false), vendors(true)];
    /// Migrating a database takes milliseconds: once per thread, emptied per input.
    static DB: NativeSqlite = {
        let sql = NativeSqlite::memory().expect("an in-memory database");
        schema::migrate(&sql).expect("the schema applies");
        directory::put_user(&sql, "u1", "Ann", "acme", 0).expect("the caller exists");
        sql
    };
}

fn caller() -> Identity {
    Identity {
        user: UserId::parse("u1").expect("valid"),
        device: DeviceId::default_device(),
        role: Role::User,
        expires_at_secs: (NOW_MS / 1000) as u64 + 3600,
    }
}

pub fn push_routes(data: &[u8]) {
    let mut input = Bytes::new(data);
    let selector = input.u8();
    DB.with(|sql| {
        for table in ["push_devices", "push_nonces"] {
            sql.execute(&format!("DELETE FROM {table}"), &[])
                .expect("empties");
        }
        VENDORS.with(|vendors| {
            let vendors = &vendors[usize::from(selector >> 7)];
            match selector % 4 {
                0 => register(sql, vendors, &mut input),
                1 => any_callback(sql, vendors, &mut input),
                2 => signed_callback(sql, vendors, &mut input),
                _ => hms_callback(sql, vendors, &mut input),
            }
        });
    });
}

fn client_error(e: &Error, allowed: &[&str]) {
    assert!(allowed.contains(&e.code()), "client input gave {e:?}");
}

fn register(sql: &NativeSqlite, vendors: &Vendors, input: &mut Bytes<'_>) {
    let config = Config::default();
    let device = text(input.line());
    let body = input.rest();
    let first = push::register(sql, &config, vendors, &caller(), &device, body, NOW_MS);
    let reply = match first {
        Ok(courier_messaging::Reply {
            status,
            body: reply,
            ..
        }) => {
            assert_eq!(status, 200);
            reply
        }
        Err(e) => return client_error(&e, &["bad_request", "too_large"]),
    };
    assert_eq!(reply["device"].as_str(), Some(device.as_str()));
    let vendor = reply["vendor"].as_str().expect("a vendor").to_string();
    assert!(["webpush", "apns", "fcm", "hms"].contains(&vendor.as_str()));
    let again = push::register(sql, &config, vendors, &caller(), &device, body, NOW_MS);
    assert_eq!(
        again.map(|r| (r.status, r.body)),
        Ok((200, reply)),
        "registering again"
    );
    let stored = courier_store::push::registrations(sql, "u1").expect("reads");
    assert_eq!(stored.len(), 1, "one registration per device: {stored:?}");
    let registration = &stored[0];
    assert_eq!(
        (registration.device.as_str(), registration.vendor.as_str()),
        (device.as_str(), vendor.as_str())
    );
    if vendor == "webpush" {
        let keys: Value = serde_json::from_str(registration.keys.as_deref().unwrap_or_default())
            .expect("stored keys are JSON");
        let sub = Subscription::parse_allowing_http(
            &registration.token,
            keys["p256dh"].as_str().unwrap_or_default(),
            keys["auth"].as_str().unwrap_or_default(),
        );
        assert!(sub.is_ok(), "the stored subscription parses: {sub:?}");
    } else {
        assert!(registration.keys.is_none());
        assert!(!registration.token.is_empty());
    }
}

/// Calls the callback route with `header` as the vendor's authentication header.
fn receive(
    sql: &NativeSqlite,
    vendors: &Vendors,
    vendor: &str,
    header: &str,
    body: &[u8],
) -> Result<courier_messaging::Reply, Error> {
    let name = if vendor == "hms" {
        HMS_CALLBACK_HEADER
    } else {
        SIGNATURE_HEADER
    }
    .to_ascii_lowercase();
    let lookup = |asked: &str| (asked == name).then(|| header.to_string());
    callbacks::receive(sql, vendors, vendor, &lookup, body, NOW_MS)
}

fn any_callback(sql: &NativeSqlite, vendors: &Vendors, input: &mut Bytes<'_>) {
    let vendor = ["webpush", "apns", "fcm", "hms", "mqtt"][usize::from(input.u8() % 5)];
    let header = text(input.line());
    let body = input.rest();
    match receive(sql, vendors, vendor, &header, body) {
        Ok(courier_messaging::Reply { status, .. }) => {
            assert_eq!(status, 200);
            if vendor == "hms" {
                crate::callbacks::hms(&header);
            } else {
                let signed = crate::callbacks::generic(&header, body);
                assert!(signed.is_some(), "an accepted callback is signed");
            }
        }
        Err(e) => client_error(
            &e,
            &["unauthorized", "bad_request", "too_large", "not_found"],
        ),
    }
}

fn signed_callback(sql: &NativeSqlite, vendors: &Vendors, input: &mut Bytes<'_>) {
    let vendor = GENERIC_VENDORS[usize::from(input.u8() % 3)];
    let other = GENERIC_VENDORS[usize::from(input.u8() % 3)];
    let edits = input.take(6).to_vec();
    let pool = text(input.line());
    let body = input.rest();
    let header = signature::sign(&signing_secret(), NOW_MS / 1000, body);
    match receive(sql, vendors, vendor, &header, body) {
        Ok(_) => {}
        Err(e) => return client_error(&e, &["bad_request", "too_large"]),
    }
    let replay = receive(sql, vendors, other, &header, body);
    assert_eq!(replay.map_err(|e| e.code()), Err("unauthorized"), "replay");
    let rewritten = crate::callbacks::edit(&header, &edits, &pool);
    if signature::verify(&signing_secret(), &rewritten, body, NOW_MS).is_ok() {
        let replay = receive(sql, vendors, other, &rewritten, body);
        assert_eq!(
            replay.map_err(|e| e.code()),
            Err("unauthorized"),
            "replay rewritten as {rewritten:?}"
        );
    }
}

fn hms_callback(sql: &NativeSqlite, vendors: &Vendors, input: &mut Bytes<'_>) {
    let edits = input.take(6).to_vec();
    let nonce_len = usize::from(input.u8() % 40) + 1;
    let nonce: String = text(input.take(nonce_len))
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let nonce = if nonce.is_empty() { "n".into() } else { nonce };
    let pool = text(input.line());
    let body = input.rest();
    let header = sign_hms(&crate::callbacks::hms_key(), NOW_MS, &nonce);
    match receive(sql, vendors, "hms", &header, body) {
        Ok(_) => {}
        Err(e) => return client_error(&e, &["bad_request", "too_large"]),
    }
    let replay = receive(sql, vendors, "hms", &header, body);
    assert_eq!(replay.map_err(|e| e.code()), Err("unauthorized"), "replay");
    let rewritten = crate::callbacks::edit(&header, &edits, &pool);
    let key = crate::callbacks::hms_key();
    if courier_push::callbacks::verify_hms(&key, &rewritten, NOW_MS).is_ok() {
        let replay = receive(sql, vendors, "hms", &rewritten, body);
        assert_eq!(
            replay.map_err(|e| e.code()),
            Err("unauthorized"),
            "replay rewritten as {rewritten:?}"
        );
    }
}
