//! `webpush`: the Web Push decoder side of `courier_push::webpush` — RFC 8291
//! decryption (what the e2e fake user agent runs), subscriptions, VAPID keys and the
//! VAPID `Authorization` check (what the fake push service runs).
//!
//! The first byte picks a mode:
//! 0. the rest is an `aes128gcm` body: decryption may fail, never panic, and never
//!    returns more than the record holds;
//! 1. 48 random bytes and a plaintext: encrypting and decrypting gives the plaintext
//!    back, the body has the RFC's size, an over-long plaintext is `TooLarge`;
//! 2. a fixed message is encrypted, then bytes chosen by the input are changed:
//!    decryption refuses it unless only the (unauthenticated) record size changed,
//!    and then it gives the original plaintext;
//! 3. three lines `endpoint`, `p256dh`, `auth`: a subscription that parses keeps
//!    its keys (stored form re-parses to the same subscription) and an https origin;
//! 4. the rest is an `Authorization` header and a `vapid_private_key`: a header that
//!    verifies names the expected audience and a current expiry; a key that parses
//!    round-trips through its stored form;
//! 5. a header signed by the server's key is changed at input-chosen places: if it
//!    still verifies, its claims are the signed ones.

use courier_push::Error;
use courier_push::p256::SecretKey;
use courier_push::p256::elliptic_curve::sec1::ToEncodedPoint as _;
use courier_push::webpush::{
    self, MAX_PLAINTEXT_BYTES, RANDOM_BYTES, Subscription, VapidKey, decrypt,
    encrypt_with_random_bytes, verify_vapid,
};

use crate::NOW_MS;
use crate::bytes::{Bytes, text};

const AUD: &str = "https://push.example";
const SUBJECT: &str = "mailto:ops@courier.example";
const HEADER_BYTES: usize = 86;
const TAG_BYTES: usize = 16;

fn user_agent() -> (SecretKey, [u8; 16], Subscription) {
    let secret = SecretKey::from_slice(&[5; 32]).expect("a valid scalar");
    let auth = [9u8; 16];
    let point = secret.public_key().to_encoded_point(false);
    let sub = Subscription::parse(
        "https://push.example/send/abc",
        &b64(point.as_bytes()),
        &b64(&auth),
    )
    .expect("a valid subscription");
    (secret, auth, sub)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn webpush(data: &[u8]) {
    let mut input = Bytes::new(data);
    match input.u8() % 6 {
        0 => any_body(input.rest()),
        1 => round_trip(&mut input),
        2 => tampered_body(&mut input),
        3 => subscription(&mut input),
        4 => vapid_inputs(&text(input.rest())),
        _ => tampered_vapid(&mut input),
    }
}

fn any_body(body: &[u8]) {
    let (ua, auth, _) = user_agent();
    match decrypt(&ua, &auth, body) {
        Ok(plain) => assert!(plain.len() < body.len() - HEADER_BYTES - TAG_BYTES),
        Err(e) => assert!(matches!(e, Error::Decrypt(_)), "{e:?}"),
    }
}

fn round_trip(input: &mut Bytes<'_>) {
    let (ua, auth, sub) = user_agent();
    let random: [u8; RANDOM_BYTES] = pad(input.take(RANDOM_BYTES));
    let plaintext = input.rest();
    match encrypt_with_random_bytes(&sub, plaintext, &random) {
        Ok(body) => {
            assert!(plaintext.len() <= MAX_PLAINTEXT_BYTES);
            assert_eq!(body.len(), HEADER_BYTES + plaintext.len() + 1 + TAG_BYTES);
            assert!(body.len() <= webpush::RECORD_SIZE as usize);
            assert_eq!(
                decrypt(&ua, &auth, &body).as_deref(),
                Ok(plaintext),
                "decrypts"
            );
            let other_auth = [8u8; 16];
            assert!(decrypt(&ua, &other_auth, &body).is_err(), "auth is bound");
        }
        Err(Error::TooLarge(_)) => assert!(plaintext.len() > MAX_PLAINTEXT_BYTES),
        Err(Error::Config(_)) => {
            // Only a scalar that is zero or over the group order is refused.
            assert!(SecretKey::from_slice(&random[16..]).is_err());
        }
        Err(e) => panic!("encrypting gave {e:?}"),
    }
}

fn pad<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out[..bytes.len()].copy_from_slice(bytes);
    out
}

fn tampered_body(input: &mut Bytes<'_>) {
    let (ua, auth, sub) = user_agent();
    let plaintext = b"{\"kind\":\"message\",\"conv\":\"dm:u1:u2\"}";
    let random: [u8; RANDOM_BYTES] = std::array::from_fn(|i| i as u8 + 1);
    let original = encrypt_with_random_bytes(&sub, plaintext, &random).expect("encrypts");
    let mut body = original.clone();
    for _ in 0..(input.u8() % 4) + 1 {
        let at = usize::from(input.u16()) % (body.len() + 8);
        let change = input.u8();
        if at >= body.len() {
            body.push(change); // a byte appended after the record
        } else {
            body[at] ^= change;
        }
    }
    // Where the body now differs (two changes of one byte may cancel out).
    let mut touched: Vec<usize> = (0..original.len())
        .filter(|&at| body[at] != original[at])
        .collect();
    if body.len() > original.len() {
        touched.push(usize::MAX);
    }
    if touched.is_empty() {
        return;
    }
    if let Ok(plain) = decrypt(&ua, &auth, &body) {
        assert_eq!(
            plain, plaintext,
            "a changed body decrypted to something else"
        );
        let record_size = 16..20;
        assert!(
            touched.iter().all(|at| record_size.contains(at)),
            "changes at {touched:?} went unnoticed"
        );
    }
}

fn subscription(input: &mut Bytes<'_>) {
    let endpoint = text(input.line());
    let p256dh = text(input.line());
    let auth = text(input.line());
    let strict = Subscription::parse(&endpoint, &p256dh, &auth);
    let lax = Subscription::parse_allowing_http(&endpoint, &p256dh, &auth);
    if let Ok(sub) = &strict {
        assert_eq!(lax.as_ref(), Ok(sub), "http mode accepts every https one");
        assert!(sub.origin().starts_with("https://"), "{}", sub.origin());
    }
    match lax {
        Ok(sub) => {
            assert!(endpoint.len() <= webpush::MAX_ENDPOINT_BYTES);
            assert!(!sub.origin().contains('@'));
            assert_eq!(webpush::origin_of(&endpoint).as_deref(), Ok(sub.origin()));
            // What the store keeps parses back to the same subscription.
            let stored = Subscription::parse_allowing_http(
                &endpoint,
                &sub.p256dh_base64url(),
                &sub.auth_base64url(),
            );
            assert_eq!(stored, Ok(sub));
        }
        Err(e) => assert!(matches!(e, Error::InvalidDevice(_)), "{e:?}"),
    }
}

fn vapid_inputs(value: &str) {
    match verify_vapid(value, AUD, NOW_MS) {
        Ok(claims) => {
            assert_eq!(claims.aud, AUD);
            let now = (NOW_MS / 1000) as u64;
            assert!(claims.exp > now && claims.exp <= now + webpush::MAX_VAPID_TTL_SECS);
        }
        Err(e) => assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}"),
    }
    match VapidKey::parse(value) {
        Ok(key) => {
            let again = VapidKey::parse(&key.private_key_base64url()).expect("stored form");
            assert_eq!(again.public_key(), key.public_key());
        }
        Err(e) => {
            assert!(matches!(e, Error::Config(_)), "{e:?}");
            // Messages are short and fixed: a long key never shows up in one.
            assert!(
                value.len() <= 100 || !e.to_string().contains(value),
                "echoed"
            );
        }
    }
}

fn tampered_vapid(input: &mut Bytes<'_>) {
    let key = VapidKey::from_bytes(&[7; 32]).expect("a valid scalar");
    let header = key.authorization(AUD, SUBJECT, NOW_MS);
    let original = verify_vapid(&header, AUD, NOW_MS).expect("the server's header verifies");
    let mut bytes = header.into_bytes();
    for _ in 0..(input.u8() % 3) + 1 {
        let at = usize::from(input.u16()) % bytes.len();
        bytes[at] = input.u8();
    }
    let changed = String::from_utf8_lossy(&bytes).into_owned();
    if let Ok(claims) = verify_vapid(&changed, AUD, NOW_MS) {
        assert_eq!(claims, original, "changed header {changed:?}");
    }
}
