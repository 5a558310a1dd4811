//! VAPID keys, signing and the push service's verification.

use super::*;
use crate::jwt::tests::tamper_claims;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;

/// The key pair of the web-push-libs examples (a public test key).
const PRIVATE: &str = "RS0WdYWWo1HajXg3NZR1olzCf31i-ZBGDkFyCs7j1jw";
const AUD: &str = "https://push.example.net";
const SUBJECT: &str = "mailto:ops@courier.example";
/// 2026-01-01T00:00:00Z.
const NOW_MS: i64 = 1_767_225_600_000;
const NOW_SECS: u64 = 1_767_225_600;

fn key() -> VapidKey {
    VapidKey::parse(PRIVATE).expect("valid key")
}

#[test]
fn public_key_is_the_65_byte_point_of_the_private_scalar() {
    let public = b64::url_decode(&key().public_key()).expect("base64url");
    assert_eq!(public.len(), 65);
    assert_eq!(public[0], 4);
    assert_eq!(key().private_key_base64url(), PRIVATE);
    assert!(
        !format!("{:?}", key()).contains(PRIVATE),
        "Debug hides the secret"
    );
}

#[test]
fn pem_keys_give_the_same_public_key() {
    let secret = SecretKey::from_slice(&b64::url_decode(PRIVATE).expect("decodes")).expect("valid");
    let pkcs8 = secret.to_pkcs8_pem(LineEnding::LF).expect("encodes");
    assert_eq!(
        VapidKey::parse(&pkcs8).expect("pkcs8").public_key(),
        key().public_key()
    );
    let sec1 = secret.to_sec1_pem(LineEnding::LF).expect("encodes");
    assert_eq!(
        VapidKey::parse(&sec1).expect("sec1").public_key(),
        key().public_key()
    );
}

#[test]
fn bad_keys_are_config_errors_that_do_not_echo_the_input() {
    for text in [
        "",
        "not base64 at all!",
        "AAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "__________________________________________8",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ] {
        match VapidKey::parse(text) {
            Err(Error::Config(m)) => assert!(text.len() < 5 || !m.contains(text), "{m}"),
            other => panic!("{text:?} gave {other:?}"),
        }
    }
}

#[test]
fn a_signed_header_verifies_with_its_claims() {
    let header = key().authorization(AUD, SUBJECT, NOW_MS);
    assert!(header.starts_with("vapid t="));
    assert!(header.ends_with(&format!(", k={}", key().public_key())));
    let claims = verify_vapid(&header, AUD, NOW_MS).expect("verifies");
    assert_eq!(
        claims,
        VapidClaims {
            aud: AUD.into(),
            exp: NOW_SECS + VAPID_TTL_SECS,
            sub: Some(SUBJECT.into()),
            public_key: key().public_key(),
        }
    );
}

#[test]
fn the_jwt_header_names_es256() {
    let jwt = key().jwt(AUD, SUBJECT, NOW_SECS + 60);
    let header = jwt.split('.').next().expect("header");
    let header: serde_json::Value =
        serde_json::from_slice(&b64::url_decode(header).expect("decodes")).expect("json");
    assert_eq!(header, json!({"typ": "JWT", "alg": "ES256"}));
}

#[test]
fn verification_refuses_wrong_audience_expiry_and_far_future() {
    let header = key().authorization(AUD, SUBJECT, NOW_MS);
    assert!(verify_vapid(&header, "https://other.example", NOW_MS).is_err());
    let after_exp = NOW_MS + (VAPID_TTL_SECS as i64) * 1000;
    assert!(verify_vapid(&header, AUD, after_exp).is_err());
    assert!(verify_vapid(&header, AUD, after_exp - 1000).is_ok());

    let too_far = format!(
        "vapid t={}, k={}",
        key().jwt(AUD, SUBJECT, NOW_SECS + MAX_VAPID_TTL_SECS + 1),
        key().public_key()
    );
    assert!(verify_vapid(&too_far, AUD, NOW_MS).is_err());
    let at_limit = format!(
        "vapid t={}, k={}",
        key().jwt(AUD, SUBJECT, NOW_SECS + MAX_VAPID_TTL_SECS),
        key().public_key()
    );
    assert!(verify_vapid(&at_limit, AUD, NOW_MS).is_ok());
}

#[test]
fn verification_refuses_tampering_and_a_swapped_key() {
    let jwt = key().jwt(AUD, SUBJECT, NOW_SECS + 60);
    let tampered = format!("vapid t={}, k={}", tamper_claims(&jwt), key().public_key());
    assert!(verify_vapid(&tampered, AUD, NOW_MS).is_err());
    let other = VapidKey::generate(&mut ChaCha20Rng::seed_from_u64(3));
    let swapped = format!("vapid t={jwt}, k={}", other.public_key());
    assert!(verify_vapid(&swapped, AUD, NOW_MS).is_err());
}

#[test]
fn malformed_headers_are_refused() {
    let jwt = key().jwt(AUD, SUBJECT, NOW_SECS + 60);
    let k = key().public_key();
    for header in [
        String::new(),
        format!("Bearer {jwt}"),
        format!("vapid t={jwt}"),
        format!("vapid k={k}"),
        format!("vapid t={jwt}, k={k}, x=1"),
        format!("vapid t={jwt}, t={jwt}, k={k}"),
        format!("vapid t={jwt}, k=AAAA"),
        format!("vapid t={jwt}, k={}", &k[..43]),
        format!("vapid t=a.b.c, k={k}"),
    ] {
        assert!(verify_vapid(&header, AUD, NOW_MS).is_err(), "{header}");
    }
    assert!(verify_vapid(&format!("VAPID   k={k} ,t={jwt}"), AUD, NOW_MS).is_ok());
}

#[test]
fn subjects_must_be_mailto_or_https() {
    for ok in ["mailto:a@b.example", "https://courier.example/contact"] {
        assert!(check_subject(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "mailto:",
        "http://x.example",
        "ops@courier.example",
        "mailto:a\nb",
    ] {
        assert!(check_subject(bad).is_err(), "{bad:?}");
    }
}
