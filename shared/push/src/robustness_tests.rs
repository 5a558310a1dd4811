//! No input panics: every parser and classifier fed seeded random bytes and mangled
//! versions of valid inputs answers with a value or an error.

use http::Response;
use p256::SecretKey;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore as _, SeedableRng as _};

use crate::callbacks::{self, HmsCallbackKey, SigningSecret, signature};
use crate::fcm::ServiceAccount;
use crate::webpush::{self, Subscription};
use crate::{apns, fcm, hms, oauth};

const NOW_MS: i64 = 1_767_225_600_000;

/// Random bytes, random text, and cuts of `seeds` at random places.
fn inputs(rng: &mut ChaCha20Rng, seeds: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..200 {
        let mut bytes = vec![0u8; (rng.next_u32() % 300) as usize];
        rng.fill_bytes(&mut bytes);
        out.push(bytes.clone());
        out.push(bytes.iter().map(|b| b' ' + b % 95).collect());
    }
    for seed in seeds {
        for _ in 0..50 {
            let mut mangled = seed.clone();
            if !mangled.is_empty() {
                let at = rng.next_u32() as usize % mangled.len();
                mangled[at] = rng.next_u32() as u8;
                mangled.truncate(rng.next_u32() as usize % (mangled.len() + 1));
            }
            out.push(mangled);
        }
    }
    out
}

#[test]
fn parsers_and_classifiers_never_panic() {
    let mut rng = ChaCha20Rng::seed_from_u64(404);
    let ua = SecretKey::random(&mut rng);
    let hms_key = HmsCallbackKey::from_utf8_secret("courier", "secret").expect("valid");
    let secret = SigningSecret::new(b"0123456789abcdef").expect("valid");
    let vapid = webpush::VapidKey::generate(&mut rng);
    let seeds = vec![
        br#"{"statuses":[{"token":"t","status":0,"timestamp":1}]}"#.to_vec(),
        br#"{"error":{"status":"INVALID_ARGUMENT","details":[{"errorCode":"UNREGISTERED"}]}}"#
            .to_vec(),
        br#"{"code":"80100000","msg":"{\"illegal_tokens\":[\"a\"]}"}"#.to_vec(),
        br#"{"access_token":"t","expires_in":3600}"#.to_vec(),
        callbacks::sign_hms(&hms_key, NOW_MS, "n").into_bytes(),
        signature::sign(&secret, NOW_MS / 1000, b"{}").into_bytes(),
        vapid
            .authorization("https://p.example", "mailto:a@b.example", NOW_MS)
            .into_bytes(),
    ];
    for input in inputs(&mut rng, &seeds) {
        let text = String::from_utf8_lossy(&input);
        let _ = webpush::decrypt(&ua, &[0; 16], &input);
        let _ = webpush::verify_vapid(&text, "https://p.example", NOW_MS);
        let _ = Subscription::parse(&text, &text, &text);
        let _ = webpush::VapidKey::parse(&text);
        let _ = callbacks::verify_hms(&hms_key, &text, NOW_MS);
        let _ = callbacks::parse_hms_receipts(&input);
        let _ = signature::verify(&secret, &text, &input, NOW_MS);
        let _ = ServiceAccount::from_json(&text);
        let _ = fcm::read_token_request(&input);
        let _ = hms::read_token_request(&input);
        let _ = apns::DeviceToken::parse(&text);
        for status in [200, 400, 401, 403, 404, 410, 429, 500] {
            let mut answer = Response::new(input.clone());
            *answer.status_mut() = http::StatusCode::from_u16(status).expect("valid");
            let _ = webpush::classify(&answer, NOW_MS);
            let _ = apns::classify(&answer, NOW_MS);
            let _ = apns::unregistered_at_ms(&answer);
            let _ = fcm::classify(&answer, NOW_MS);
            let _ = hms::classify_batch(&answer, NOW_MS);
            let _ = oauth::parse_token_answer(&answer, NOW_MS);
        }
    }
}

#[test]
fn extreme_clocks_do_not_overflow() {
    let hms_key = HmsCallbackKey::from_utf8_secret("courier", "secret").expect("valid");
    let secret = SigningSecret::new(b"0123456789abcdef").expect("valid");
    for now in [i64::MIN, -1, 0, i64::MAX] {
        let header = callbacks::sign_hms(&hms_key, 1, "n");
        let _ = callbacks::verify_hms(&hms_key, &header, now);
        let _ = signature::verify(&secret, &signature::sign(&secret, 0, b""), b"", now);
        let _ = crate::outcome::parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now);
        let cache = apns::ProviderTokenCache::default();
        let _ = cache.decide(now);
    }
}
