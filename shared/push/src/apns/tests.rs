//! Device tokens, provider tokens and their cache, the request, and the answer table.

use super::*;
use crate::jwt::tests::tamper_claims;
use crate::notification::tests::sample;
use crate::outcome::tests::{answer, assert_classifies};
use p256::SecretKey;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;

const TEAM: &str = "DEF123GHIJ";
const KID: &str = "ABC123DEFG";
const NOW_MS: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;
const TOKEN: &str = "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad";

fn p8(seed: u64) -> String {
    let secret = SecretKey::random(&mut ChaCha20Rng::seed_from_u64(seed));
    secret
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encodes")
        .to_string()
}

fn key() -> ProviderKey {
    ProviderKey::new(TEAM, KID, &p8(1)).expect("valid key")
}

#[test]
fn device_tokens_are_hex_of_64_characters_or_more() {
    let token = DeviceToken::parse(&TOKEN.to_uppercase()).expect("valid");
    assert_eq!(token.as_str(), TOKEN, "lowered");
    assert!(!format!("{token:?}").contains(TOKEN));
    assert!(DeviceToken::parse(&"ab".repeat(50)).is_ok());
    for bad in [
        "",
        &TOKEN[..62],
        &format!("{TOKEN}a"),
        &TOKEN.replace('7', "g"),
        &format!("{} ", &TOKEN[..63]),
        &"ab".repeat(101),
    ] {
        assert!(
            matches!(DeviceToken::parse(bad), Err(Error::InvalidDevice(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn provider_keys_need_ids_and_a_p256_pem() {
    assert!(ProviderKey::new("", KID, &p8(1)).is_err());
    assert!(ProviderKey::new(TEAM, "bad id!", &p8(1)).is_err());
    assert!(ProviderKey::new(TEAM, KID, "not a pem").is_err());
    let rsa = crate::jwt::tests::RSA_KEY_A;
    assert!(matches!(
        ProviderKey::new(TEAM, KID, rsa),
        Err(Error::Config(_))
    ));
    assert!(!format!("{:?}", key()).contains("PRIVATE"));
}

#[test]
fn provider_tokens_carry_kid_iss_iat_and_verify() {
    let token = key().sign(NOW_MS);
    assert_eq!(token.issued_at_ms, NOW_MS);
    let claims =
        verify_provider_token(&token.jwt, &key().verifying_key(), NOW_MS).expect("verifies");
    assert_eq!(
        claims,
        ProviderClaims {
            team_id: TEAM.into(),
            key_id: KID.into(),
            issued_at_secs: 1_767_225_600,
        }
    );
}

#[test]
fn provider_token_verification_refuses_tampering_other_keys_and_age() {
    let token = key().sign(NOW_MS).jwt;
    let vk = key().verifying_key();
    assert!(verify_provider_token(&tamper_claims(&token), &vk, NOW_MS).is_err());
    let other = ProviderKey::new(TEAM, KID, &p8(2)).expect("valid");
    assert!(verify_provider_token(&token, &other.verifying_key(), NOW_MS).is_err());
    assert!(
        verify_provider_token(&token, &vk, NOW_MS + 60 * MINUTE).is_err(),
        "an hour old"
    );
    assert!(verify_provider_token(&token, &vk, NOW_MS + 59 * MINUTE).is_ok());
    assert!(
        verify_provider_token(&token, &vk, NOW_MS - 2 * MINUTE).is_err(),
        "future iat"
    );
}

#[test]
fn the_cache_reuses_for_20_minutes_then_refreshes() {
    let mut cache = ProviderTokenCache::default();
    assert_eq!(cache.decide(NOW_MS), TokenDecision::Refresh, "empty");
    let (first, new) = cache.token(&key(), NOW_MS);
    let first = first.clone();
    assert!(new);
    for (age, decision) in [
        (0, TokenDecision::Reuse),
        (19 * MINUTE, TokenDecision::Reuse),
        (20 * MINUTE - 1, TokenDecision::Reuse),
        (20 * MINUTE, TokenDecision::Refresh),
        (59 * MINUTE, TokenDecision::Refresh),
        (-1, TokenDecision::Refresh),
    ] {
        assert_eq!(cache.decide(NOW_MS + age), decision, "age {age}");
    }
    let (again, new) = cache.token(&key(), NOW_MS + 10 * MINUTE);
    assert!(!new);
    assert_eq!(again, &first);
    let (fresh, new) = cache.token(&key(), NOW_MS + 25 * MINUTE);
    assert!(new);
    assert_eq!(fresh.issued_at_ms, NOW_MS + 25 * MINUTE);
    assert_ne!(fresh.jwt, first.jwt);
    cache.invalidate();
    assert_eq!(cache.current(), None);
    let kept = ProviderTokenCache::with(Some(first.clone()));
    assert_eq!(kept.decide(NOW_MS + MINUTE), TokenDecision::Reuse);
    assert!(!format!("{first:?}").contains(&first.jwt));
}

fn client() -> Client {
    Client::new("https://api.sandbox.push.apple.com/", "com.example.courier").expect("valid")
}

#[test]
fn an_alert_request_has_every_apns_header() {
    let token = key().sign(NOW_MS);
    let device = DeviceToken::parse(TOKEN).expect("valid");
    let n = sample(true);
    let request = client()
        .request(&token, &device, &n, PushType::Alert, NOW_MS)
        .expect("builds");
    assert_eq!(request.method(), Method::POST);
    assert_eq!(
        request.uri(),
        &format!("https://api.sandbox.push.apple.com/3/device/{TOKEN}")[..]
    );
    let header = |name: &str| request.headers()[name].to_str().expect("ASCII").to_string();
    assert_eq!(header("authorization"), format!("bearer {}", token.jwt));
    assert_eq!(header("apns-topic"), "com.example.courier");
    assert_eq!(header("apns-push-type"), "alert");
    assert_eq!(header("apns-priority"), "10");
    assert_eq!(
        header("apns-expiration"),
        (1_767_225_600 + DEFAULT_TTL_SECS).to_string()
    );
    assert_eq!(header("apns-collapse-id"), n.topic());
    assert_eq!(header("content-type"), "application/json");
    let body: Value = serde_json::from_slice(request.body()).expect("JSON");
    assert_eq!(
        body["aps"]["alert"],
        json!({"title": "Ann", "body": "lunch?"})
    );
    assert_eq!(body["aps"]["badge"], 3);
    assert_eq!(body["aps"]["thread-id"], n.topic());
    assert_eq!(body["msg_id"], "m-42");
}

#[test]
fn background_pushes_and_preview_off_alerts_carry_no_text() {
    let n = sample(false);
    let alert = payload(&n, PushType::Alert);
    assert_eq!(
        alert["aps"]["alert"],
        json!({"loc-key": GENERIC_ALERT_LOC_KEY})
    );
    assert!(!alert.to_string().contains("lunch"));
    let background = payload(&sample(true), PushType::Background);
    assert_eq!(background["aps"], json!({"content-available": 1}));
    let request = client()
        .request(
            &key().sign(NOW_MS),
            &DeviceToken::parse(TOKEN).expect("valid"),
            &n,
            PushType::Background,
            NOW_MS,
        )
        .expect("builds");
    assert_eq!(request.headers()["apns-push-type"], "background");
    assert_eq!(request.headers()["apns-priority"], "5");
}

#[test]
fn bad_client_settings_are_config_errors() {
    assert!(Client::new("api.push.apple.com", "com.example").is_err());
    assert!(Client::new(PRODUCTION_BASE, "").is_err());
    assert!(Client::new(PRODUCTION_BASE, "com.example/evil").is_err());
    assert!(Client::new("http://127.0.0.1:9001", "com.example").is_ok());
}

#[test]
fn apns_answers_are_classified() {
    let reason = |r: &str| format!(r#"{{"reason":"{r}"}}"#);
    let gone = |r: &str| Outcome::TokenGone { reason: r.into() };
    let permanent = |s: u16, r: &str| Outcome::Permanent {
        status: s,
        reason: r.into(),
    };
    let table = vec![
        (answer(200, "", None), Outcome::Delivered),
        (
            answer(
                410,
                r#"{"reason":"Unregistered","timestamp":1767225000000}"#,
                None,
            ),
            gone("Unregistered since 1767225000000"),
        ),
        (answer(410, "", None), gone("Unregistered")),
        (
            answer(400, &reason("BadDeviceToken"), None),
            gone("BadDeviceToken"),
        ),
        (
            answer(400, &reason("DeviceTokenNotForTopic"), None),
            gone("DeviceTokenNotForTopic"),
        ),
        (
            answer(403, &reason("ExpiredProviderToken"), None),
            Outcome::RefreshAuth,
        ),
        (
            answer(403, &reason("InvalidProviderToken"), None),
            permanent(403, "InvalidProviderToken"),
        ),
        (
            answer(400, &reason("BadCollapseId"), None),
            permanent(400, "BadCollapseId"),
        ),
        (
            answer(413, &reason("PayloadTooLarge"), None),
            permanent(413, "PayloadTooLarge"),
        ),
        (
            answer(405, "not json", None),
            permanent(405, "no reason given"),
        ),
        (
            answer(429, &reason("TooManyRequests"), Some("12")),
            Outcome::Retry {
                after_ms: Some(12_000),
            },
        ),
        (
            answer(500, &reason("InternalServerError"), None),
            Outcome::Retry { after_ms: None },
        ),
        (
            answer(503, &reason("ServiceUnavailable"), None),
            Outcome::Retry { after_ms: None },
        ),
    ];
    assert_classifies(classify, table, NOW_MS);
}

#[test]
fn the_unregistered_timestamp_is_read_from_410s_only() {
    let body = r#"{"reason":"Unregistered","timestamp":1767225000000}"#;
    assert_eq!(
        unregistered_at_ms(&answer(410, body, None)),
        Some(1_767_225_000_000)
    );
    assert_eq!(unregistered_at_ms(&answer(400, body, None)), None);
    assert_eq!(unregistered_at_ms(&answer(410, "{}", None)), None);
}
